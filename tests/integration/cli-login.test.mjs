// `keyless login`'s file as later commands find it: a login file others could read is
// not used (the command stops and says why, instead of going anywhere). The sign-in
// itself against keylessd's device-code flow is tested once the server side of it is in
// the tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { runCli } from '../lib/harness.mjs';

test('a login file others can read is not used', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'kl-cli-login-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const env = { HOME: home, XDG_CONFIG_HOME: '', KEYLESS_DATA_DIR: '' };
  mkdirSync(join(home, '.config', 'keyless'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, '.config', 'keyless', 'login.json'),
    JSON.stringify({ server: 'https://127.0.0.1:1', tenant: 't', caFile: '', refreshToken: 'x' }), { mode: 0o644 });
  const c = await runCli(['account', 'list'], { env });
  assert.equal(c.code, 1, c.stderr);
  assert.match(c.stderr, /only you can read \(mode 0600\); it is not used/);
});
