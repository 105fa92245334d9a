// The password grant against guessing (security.md T9): one generic refusal for a wrong
// password and for a name that does not exist, failures past the slowdown threshold
// answered late (held by a timer, not a worker), the lock at the threshold refusing even
// the right password, its end, and the per-address throttle in front of Argon2. Each
// lockout attempt comes from its own loopback address, so that the per-address throttle
// stays out of the lockout's way.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon } from '../lib/harness.mjs';
import { tenantId } from '../lib/authz.mjs';

const AZURE_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const DATA = 'https://cognitiveservices.azure.com';
const PASSWORD = 'Tr0ub4dor&3-horse-battery';
const WRONG = 'Wrong-password-1';
const LOCKOUT_S = 60; // KL_SIGNIN_LOCKOUT_S
const LOCKOUT_THRESHOLD = 10; // KL_SIGNIN_LOCKOUT_THRESHOLD
const SLOWDOWN_AFTER = 3; // KL_SIGNIN_SLOWDOWN_AFTER
const BACKOFF_AFTER = 5; // KL_THROTTLE_BACKOFF_AFTER

const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let nextAddr = 10;

function signIn(d, tid, username, password, localAddress = `127.0.0.${nextAddr++}`) {
  return d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'password', client_id: AZURE_CLI, username, password, scope: `${DATA}/.default openid offline_access` }),
    localAddress,
  });
}

function assertEntraError(r, status, error, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json.error, error, `${what}: ${r.text}`);
  assert.deepEqual(r.json.error_codes, [code], `${what}: ${r.text}`);
}

async function setup(t) {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const u = await d.admin('POST', '/v1.0/users', {
    accountEnabled: true, displayName: 'Bob', mailNickname: 'bob', userPrincipalName: 'bob@example.com',
    passwordProfile: { forceChangePasswordNextSignIn: false, password: PASSWORD },
  });
  assert.equal(u.status, 201, u.text);
  const s = await d.admin('PATCH', '/keyless/tenantSettings', { passwordGrantEnabled: true });
  assert.equal(s.status, 200, s.text);
  return { d, tid };
}

test('wrong passwords: one generic refusal, held back past the threshold; the lock refuses the right password until it ends', async (t) => {
  const { d, tid } = await setup(t);
  const unknown = await signIn(d, tid, 'nobody@example.com', WRONG);
  assertEntraError(unknown, 400, 'invalid_grant', 50126, 'unknown user');
  const wrong = await signIn(d, tid, 'bob@example.com', WRONG);
  assertEntraError(wrong, 400, 'invalid_grant', 50126, 'wrong password');
  assert.equal(unknown.json.error_description.split('\r\n')[0], wrong.json.error_description.split('\r\n')[0], 'the same text for both');
  // Up to one failure short of the lock, at once: the late answers wait on timers.
  const t0 = Date.now();
  const times = await Promise.all(Array.from({ length: LOCKOUT_THRESHOLD - 2 }, async () => {
    const t1 = Date.now();
    const r = await signIn(d, tid, 'bob@example.com', WRONG);
    assertEntraError(r, 400, 'invalid_grant', 50126, 'failure below the threshold');
    return Date.now() - t1;
  }));
  times.sort((x, y) => x - y);
  assert.ok(times[0] < 500 && times[times.length - 1] >= 4000, `early failures answered at once, later ones held: ${times.join(', ')} ms`);
  assert.ok(Date.now() - t0 < 15000, 'held answers overlap: no worker sleeps');
  assert.ok(LOCKOUT_THRESHOLD - 1 > SLOWDOWN_AFTER);
  // The failure that reaches the threshold locks the name; then even the right password
  // is refused (on every node sharing the store), from any address.
  assertEntraError(await signIn(d, tid, 'bob@example.com', WRONG), 400, 'invalid_grant', 50053, 'the locking failure');
  const lockedAt = Date.now();
  assertEntraError(await signIn(d, tid, 'bob@example.com', PASSWORD), 400, 'invalid_grant', 50053, 'locked');
  await sleep(Math.max(0, lockedAt + (LOCKOUT_S + 2) * 1000 - Date.now()));
  const after = await signIn(d, tid, 'bob@example.com', PASSWORD);
  assert.equal(after.status, 200, `after the lock: ${after.text}`);
  assert.ok(after.json.access_token);
});

test('one address failing with many names is throttled before any password is hashed', async (t) => {
  const { d, tid } = await setup(t);
  const from = '127.0.0.3';
  for (let i = 0; i < BACKOFF_AFTER; i++)
    assertEntraError(await signIn(d, tid, `spray${i}@example.com`, WRONG, from), 400, 'invalid_grant', 50126, `spray ${i}`);
  const r = await signIn(d, tid, 'bob@example.com', PASSWORD, from);
  assertEntraError(r, 429, 'temporarily_unavailable', 90055, 'throttled');
  assert.ok(Number(r.headers['retry-after']) >= 1, r.headers['retry-after']);
  // Another address is not held back by it.
  const other = await signIn(d, tid, 'bob@example.com', PASSWORD, '127.0.0.4');
  assert.equal(other.status, 200, other.text);
});
