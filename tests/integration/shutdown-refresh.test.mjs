// A daemon stopped while refresh-token rotations wait for their group commit
// (gateway/refreshq.h): the grace period (--stop-grace-ms) runs out with one batch being
// committed (the writer's debug line says it took it) and, as a rule, more queued behind
// it. The commit is held from outside: the sqlite3 tool
// keeps the database's write lock, so the writer thread sits in its transaction until
// the test lets go, after every client has seen its connection cut. Each worker must
// settle its rotations before its event loop is freed: the daemon exits 0, with no
// sanitizer report (a completion delivered onto a freed loop is a use-after-free, one
// never delivered a leak), no client sees a 200 without tokens, and afterwards each
// old refresh token is either spent (its rotation committed whole) or still good (never
// written).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { onCleanup, startDaemon } from '../lib/harness.mjs';
import { tenantId } from '../lib/authz.mjs';

const AZURE_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const PASSWORD = 'Tr0ub4dor&3-horse-battery';
const SCOPE = 'https://cognitiveservices.azure.com/.default openid offline_access';
const REDEEMERS = 8; // refresh tokens redeemed at once, each of its own family
const GRACE_MS = 300; // the daemon's grace: short, the commit is held far longer

const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
const token = (d, tid, fields) =>
  d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ client_id: AZURE_CLI, ...fields }),
  });

// Holds the write lock of the SQLite database at path (the sqlite3 tool, its own
// connection) until release(); readers go on, every writer waits for it.
async function holdWriteLock(t, path) {
  const p = spawn('sqlite3', [path], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise((r) => p.once('exit', (code) => r(code)));
  onCleanup(t, async () => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await exited;
  });
  await new Promise((resolveP, reject) => {
    p.stdout.on('data', (c) => {
      out += c.toString('utf8');
      if (out.includes('locked\n')) resolveP();
    });
    p.stderr.on('data', (c) => {
      err += c.toString('utf8');
    });
    p.once('exit', (code) => reject(new Error(`sqlite3 exited (${code}) before it held the lock: ${err}`)));
    p.stdin.write(".timeout 5000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n");
  });
  return {
    async release() {
      p.stdin.end('COMMIT;\n');
      assert.equal(await exited, 0, `sqlite3: ${err}`);
    },
  };
}

// An answer to a refresh: tokens whole, or an error; never a 200 without its tokens.
function assertWholeOrError(r, what) {
  if (r.status === 200) {
    assert.equal(typeof r.json?.access_token, 'string', `${what}: 200 without an access token: ${r.text}`);
    assert.equal(typeof r.json?.refresh_token, 'string', `${what}: 200 without a refresh token: ${r.text}`);
    return 'tokens';
  }
  assert.ok(r.status >= 400, `${what}: ${r.status} ${r.text}`);
  assert.equal(typeof r.json?.error, 'string', `${what}: an error without its body: ${r.text}`);
  return 'error';
}

test('SIGTERM with rotations committing and queued past the grace: each is settled before its loop goes, exit 0', async (t) => {
  const d = await startDaemon(t, { args: ['--stop-grace-ms', String(GRACE_MS), '--log-level', 'debug'] });
  const tid = await tenantId(d);
  const user = await d.admin('POST', '/v1.0/users', {
    accountEnabled: true, displayName: 'Ida', mailNickname: 'ida', userPrincipalName: 'ida@example.com',
    passwordProfile: { forceChangePasswordNextSignIn: false, password: PASSWORD },
  });
  assert.equal(user.status, 201, user.text);
  const on = await d.admin('PATCH', '/keyless/tenantSettings', { passwordGrantEnabled: true });
  assert.equal(on.status, 200, on.text);
  const olds = [];
  for (let i = 0; i < REDEEMERS; i++) {
    const r = await token(d, tid, { grant_type: 'password', username: 'ida@example.com', password: PASSWORD, scope: SCOPE });
    assert.equal(r.status, 200, r.text);
    olds.push(r.json.refresh_token);
  }

  const lock = await holdWriteLock(t, join(d.dataDir, 'keyless.db'));
  // The writer has taken a batch and waits for the lock: a commit is in flight.
  const committing = d.waitForLog((j) => j.event === 'refresh_batch', 20000);
  const answers = olds.map((rt) =>
    token(d, tid, { grant_type: 'refresh_token', refresh_token: rt }).then((r) => ({ r }), (e) => ({ e })));
  await committing;
  const stopped = d.stop();
  // The grace runs out with the commit still held: every connection is cut (or answered).
  const outcomes = await Promise.all(answers);
  await lock.release();
  const exit = await stopped;
  assert.deepEqual(exit, { code: 0, signal: null, timedOut: false }, d.stderr.slice(-4000));
  assert.equal(d.sanitizerReport(), null);
  for (const [i, o] of outcomes.entries()) if (o.r) assertWholeOrError(o.r, `redeemer ${i} during the stop`);

  // Every rotation is all or nothing: the old token is spent, or it still works.
  await d.start();
  for (const [i, rt] of olds.entries()) {
    const r = await token(d, tid, { grant_type: 'refresh_token', refresh_token: rt });
    if (assertWholeOrError(r, `old token ${i} after the restart`) === 'error')
      assert.equal(r.json.error, 'invalid_grant', `old token ${i}: ${r.text}`);
  }
});
