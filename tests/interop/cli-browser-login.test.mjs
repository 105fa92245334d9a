// `keyless login --browser` through keylessd's sign-in page, as a person does it: the CLI
// listens on a loopback port, prints the sign-in address (no desktop here, so it opens
// nothing), headless Chromium (Debian's, via playwright-core) goes there and signs in, the
// CLI checks the state that comes back, redeems the code with its PKCE verifier and keeps
// the refresh token in a 0600 login file; `keyless logout` then revokes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { KEYLESS_CLI, runCli, startDaemon } from '../lib/harness.mjs';
import { tenantId } from '../lib/authz.mjs';
import { PASSWORD, createUser } from '../lib/signin.mjs';

const CHROMIUM = process.env.KL_CHROMIUM || '/usr/bin/chromium';

test('keyless login --browser signs in through the page with Chromium; logout ends it', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, async (t) => {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  await createUser(d, 'ann@example.com');
  const home = mkdtempSync(join(tmpdir(), 'kl-cli-browser-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  // No desktop: the CLI prints the address and opens nothing.
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  const cli = spawn(KEYLESS_CLI, ['login', '--server', d.publicUrl, '--tenant', tid, '--ca-file', join(d.dataDir, 'tls', 'ca.pem'), '--browser'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => cli.exitCode === null && cli.kill('SIGKILL'));
  let out = '';
  let err = '';
  cli.stdout.on('data', (c) => (out += c));
  const url = await new Promise((resolve, reject) => {
    cli.stderr.on('data', (c) => {
      err += c;
      const m = /(https:\/\/\S+\/oauth2\/v2\.0\/authorize\?\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    cli.on('close', (code) => reject(new Error(`the CLI ended (${code}) before printing an address:\n${err}`)));
  });
  const done = new Promise((resolve) => cli.on('close', (code) => resolve(code)));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
    await page.goto(url);
    await page.fill('#username', 'ann@example.com');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\//), page.click('button[type=submit]')]);
  } finally {
    await browser.close();
  }
  assert.equal(await done, 0, `keyless login: ${err}\n${out}`);
  assert.match(`${out}${err}`, /signed in to .* as ann@example\.com/i);
  const file = join(home, '.config', 'keyless', 'login.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const lo = await runCli(['logout'], { env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config') } });
  assert.equal(lo.code, 0, lo.stderr);
  assert.equal(existsSync(file), false, 'the login file is gone');
});
