// A node on PostgreSQL whose writes are stuck behind another writer that holds the
// store's writers' lock and never lets go: the write answers ARM's 503 after the lock
// bound instead of holding its worker, the node stays ready (busy is not down), and
// writes again once the lock is gone. The bound is shortened through the store URL, the
// operator's override (docs/scale-out.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { REPO_ROOT, onCleanup, startDaemon } from '../lib/harness.mjs';
import { Postgres } from '../lib/pg.mjs';

const LOCK_MS = 300;

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

// A psql session that takes the writers' lock (PG_WRITE_LOCK_KEY in src/store/db_pg.c)
// in a transaction it keeps open until release() ends its input.
async function holdWritersLock(t, url) {
  const db = new URL(url).pathname.slice(1);
  const p = spawn(join(REPO_ROOT, 'tests', 'lib', 'pg-server'), ['psql', pg.hostPort, db], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise((r) => p.on('exit', r));
  let out = '';
  const held = new Promise((resolve, reject) => {
    p.stdout.on('data', (b) => {
      out += b;
      if (out.includes('held')) resolve();
    });
    p.on('exit', () => reject(new Error(`psql exited before taking the lock: ${out}`)));
  });
  p.stdin.write('BEGIN;\nSELECT pg_advisory_xact_lock(30506865001702259);\n\\echo held\n');
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    p.stdin.end();
    await exited;
  };
  onCleanup(t, release);
  await held;
  return release;
}

test('a write behind a writers\' lock that is never let go answers 503 within the bound; the node stays ready', async (t) => {
  const url = await pg.createDatabase();
  const a = await startDaemon(t, { args: ['--store', `${url}&options=-c%20lock_timeout%3D${LOCK_MS}`] });
  await a.setupAccount('held');

  const release = await holdWritersLock(t, url);
  const t0 = Date.now();
  const w = await a.putDeployment('held', 'during', {});
  const took = Date.now() - t0;
  assert.equal(w.status, 503, w.text);
  assert.equal(w.headers['retry-after'], '5');
  assert.equal(w.json.error.code, 'ServiceUnavailable');
  assert.ok(took >= LOCK_MS * 0.9 && took < 5000, `answered after ${took} ms`);
  assert.deepEqual((await a.admin('GET', '/healthz')).json, { status: 'ok' });

  await release();
  const after = await a.putDeployment('held', 'after', {});
  assert.equal(after.status, 201, after.text);
});
