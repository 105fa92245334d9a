// A store made before the KEK check value existed (no kek_check row) but holding API
// keys: a node given another KEK must not seal a check value with it. It tries the first
// account's first key, and when that does not open it says so and refuses to start,
// before serving anything; the cluster's KEK then starts, seals the check value, and the
// old keys still work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { Daemon, onCleanup, startDaemon } from '../lib/harness.mjs';

function sqlInt(dataDir, statement) {
  return Number(execFileSync('sqlite3', ['-cmd', '.timeout 5000', join(dataDir, 'keyless.db'), statement], {
    encoding: 'utf8',
  }).trim());
}

test('a store without a check value refuses a KEK that does not open its keys, before serving', async (t) => {
  const first = await startDaemon(t);
  const { keys } = await first.setupAccount('legacy');
  await first.stop();
  const dataDir = first.dataDir;
  // As a store migrated from before the check value: keys sealed, no check row.
  sqlInt(dataDir, 'DELETE FROM kek_check; SELECT 0');
  assert.equal(sqlInt(dataDir, 'SELECT count(*) FROM kek_check'), 0);

  const wrong = new Daemon({ dataDir, env: { KEYLESS_KEK: randomBytes(32).toString('base64') } });
  onCleanup(t, () => wrong.cleanup());
  await assert.rejects(wrong.start({ timeoutMs: 20000 }), /exited \(code 1/);
  const lines = wrong.stderr.split('\n').filter((l) => l.includes('"kek_mismatch"'));
  assert.equal(lines.length, 1, wrong.stderr);
  assert.match(lines[0], /does not open the store's sealed values/);
  assert.ok(!wrong.stderr.includes('"event":"ready"'), wrong.stderr);
  // Nothing was sealed with the wrong KEK.
  assert.equal(sqlInt(dataDir, 'SELECT count(*) FROM kek_check'), 0);

  // The cluster's KEK (the data directory's own) opens the keys and seals the check.
  const right = new Daemon({ dataDir });
  onCleanup(t, () => right.cleanup());
  await right.start();
  assert.equal(sqlInt(dataDir, 'SELECT count(*) FROM kek_check'), 1);
  const r = await right.chat('legacy', 'chat', keys.key1, 'after');
  assert.equal(r.status, 200, r.text);
});
