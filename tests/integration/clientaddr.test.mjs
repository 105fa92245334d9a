// Whose address the token service's per-address rules count (gateway/clientaddr.h):
// behind a --trusted-proxy, the caller X-Forwarded-For names, so one client's failed
// sign-ins throttle that client and not everyone behind the proxy, failures for a client
// id at another client do not lock its owner out, the sign-in log records the client,
// and the device-code cap is per client; a caller the proxy names badly shares the
// proxy's own bucket; without --trusted-proxy the header counts for nothing and cannot
// pick a bucket. The proxy is 127.0.0.1, the clients are whatever X-Forwarded-For says.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon } from '../lib/harness.mjs';
import { createApp, tenantId } from '../lib/authz.mjs';
import { DATA, Jar, PASSWORD, authorize, codeOf, createUser, form, pkce, postForm, registerClient } from '../lib/signin.mjs';
import { requestDeviceCode } from '../lib/devicecode.mjs';

const AZURE_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const REDIRECT = 'http://127.0.0.1:8400/callback';
const SCOPE = `${DATA}/.default openid profile offline_access`;
const PROXY = '127.0.0.1';
const BACKOFF_AFTER = 5; // KL_THROTTLE_BACKOFF_AFTER
const MAX_LIVE_CODES = 100; // KL_MAX_DEVICE_CODES_PER_ADDRESS
const A = '203.0.113.10';
const B = '198.51.100.20';
const xff = (v) => (v === undefined ? {} : { 'x-forwarded-for': v });

async function setup(t, args = []) {
  const d = await startDaemon(t, { args });
  const tid = await tenantId(d);
  const app = await createApp(d, 'clientaddr-app');
  await registerClient(d, app, { publicClient: true, redirectUris: [REDIRECT] });
  await createUser(d, 'ann@example.com');
  const s = await d.admin('PATCH', '/keyless/tenantSettings', { passwordGrantEnabled: true });
  assert.equal(s.status, 200, s.text);
  const jar = new Jar();
  const p = pkce();
  const page = await authorize(d, tid, {
    client_id: app.appId, response_type: 'code', redirect_uri: REDIRECT, scope: SCOPE,
    state: 's', code_challenge: p.challenge, code_challenge_method: 'S256',
  }, jar);
  assert.equal(page.status, 200, page.text.slice(0, 300));
  // The sign-in page's form, posted through the proxy as the client named by `from`.
  const pageSignIn = (username, password, from) => postForm(d, page, jar, { username, password, localAddress: PROXY, headers: xff(from) });
  // The password grant, the same way.
  const grant = (username, password, from) => d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...xff(from) },
    body: form({ grant_type: 'password', client_id: AZURE_CLI, username, password, scope: SCOPE }),
    localAddress: PROXY,
  });
  return { d, tid, pageSignIn, grant };
}

function assertPage(r, status, text, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.match(r.headers['content-type'], /^text\/html/, what);
  assert.match(r.text, text, what);
}

function assertEntra(r, status, error, code, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json.error, error, `${what}: ${r.text}`);
  assert.deepEqual(r.json.error_codes, [code], `${what}: ${r.text}`);
}

const WRONG_PAGE = /Your account or password is incorrect\./;
const THROTTLED_PAGE = /Too many failed sign-in attempts from this address/;

test('behind a trusted proxy, one client failing its sign-ins is throttled and another client of the same proxy is not', async (t) => {
  const { pageSignIn, grant } = await setup(t, ['--trusted-proxy', PROXY]);
  // The sign-in page: A sprays, A is throttled, B signs in through the same proxy.
  for (let i = 0; i < BACKOFF_AFTER; i++)
    assertPage(await pageSignIn(`spray${i}@example.com`, 'Spring2026!x', A), 400, WRONG_PAGE, `page, A's failure ${i}`);
  const a = await pageSignIn('ann@example.com', PASSWORD, A);
  assertPage(a, 429, THROTTLED_PAGE, 'page, A after its failures, right password and all');
  assert.match(a.headers['retry-after'], /^\d+$/);
  // Only the right-most hop counts: A cannot hide behind a forged left part.
  assertPage(await pageSignIn('ann@example.com', PASSWORD, `${B}, ${A}`), 429, THROTTLED_PAGE, 'page, A with a forged hop on the left');
  codeOf(await pageSignIn('ann@example.com', PASSWORD, B), REDIRECT);

  // The password grant: the same, with Entra's throttling answer.
  const C = '192.0.2.30';
  for (let i = 0; i < BACKOFF_AFTER; i++)
    assertEntra(await grant(`spray${i}@example.com`, 'Spring2026!x', C), 400, 'invalid_grant', 50126, `grant, C's failure ${i}`);
  assertEntra(await grant('ann@example.com', PASSWORD, C), 429, 'temporarily_unavailable', 90055, 'grant, C after its failures');
  const other = await grant('ann@example.com', PASSWORD, '192.0.2.31');
  assert.equal(other.status, 200, other.text);
  assert.ok(other.json.access_token);
});

test('behind a trusted proxy, another client failing for a client id does not lock its owner out of the token endpoint', async (t) => {
  const { d, tid } = await setup(t, ['--trusted-proxy', PROXY]);
  const app = await createApp(d, 'clientaddr-daemon');
  const sec = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: {} });
  assert.equal(sec.status, 200, sec.text);
  const cc = (secret, from) => d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...xff(from) },
    body: form({ client_id: app.appId, scope: `${DATA}/.default`, grant_type: 'client_credentials', client_secret: secret }),
    localAddress: PROXY,
  });
  // The owner, at A, has used the client id before: (client id, A) is familiar.
  const first = await cc(sec.json.secretText, A);
  assert.equal(first.status, 200, first.text);
  // Someone at B, through the same proxy, fails for it until refused.
  let refused;
  for (let i = 0; i < 30 && !refused; i++) {
    const r = await cc('guess', B);
    if (r.status === 429) refused = r;
    else assertEntra(r, 401, 'invalid_client', 7000215, `B's failure ${i}`);
  }
  assert.ok(refused, 'B was never throttled');
  assertEntra(refused, 429, 'temporarily_unavailable', 90055, 'B throttled');
  // The owner at A is judged by its own record, not B's.
  const owner = await cc(sec.json.secretText, A);
  assert.equal(owner.status, 200, `the owner at A: ${owner.text}`);
  // The sign-in log records each caller's address, not the proxy's. It is written by
  // its own thread: wait until the owner's second success is there.
  let rows = [];
  for (const deadline = Date.now() + 10000; Date.now() < deadline;) {
    const r = await d.admin('GET', '/keyless/signIns');
    assert.equal(r.status, 200, r.text);
    rows = r.json.value.filter((x) => x.appId === app.appId);
    if (rows.filter((x) => x.status === 'success').length >= 2) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.deepEqual([...new Set(rows.filter((x) => x.status === 'success').map((x) => x.ipAddress))], [A]);
  assert.deepEqual([...new Set(rows.filter((x) => x.status === 'failure').map((x) => x.ipAddress))], [B]);
});

test('behind a trusted proxy, the device-code cap is per client, not per proxy', async (t) => {
  const { d, tid } = await setup(t, ['--trusted-proxy', PROXY]);
  const ask = (from) => requestDeviceCode(d, tid, { localAddress: PROXY, headers: xff(from) });
  const rs = await Promise.all(Array.from({ length: MAX_LIVE_CODES }, () => ask(A)));
  assert.deepEqual(rs.filter((r) => r.status !== 200).map((r) => r.text), [], 'A gets the limit');
  const over = await ask(A);
  assertEntra(over, 429, 'temporarily_unavailable', 90055, 'A over the cap');
  assert.match(over.json.error_description, new RegExp(`^AADSTS90055: Too many device codes are waiting for sign-in from this address \\(at most ${MAX_LIVE_CODES}\\)\\.`));
  const b = await ask(B);
  assert.equal(b.status, 200, `B through the same proxy: ${b.text}`);
});

test('behind a trusted proxy, callers it names badly share the proxy\'s own bucket, never a fresh one', async (t) => {
  const { pageSignIn } = await setup(t, ['--trusted-proxy', PROXY]);
  const bad = [`${A}, garbage`, 'unknown', `${A}:443`, `[${A}]`, `garbage, ${PROXY}`];
  for (let i = 0; i < BACKOFF_AFTER; i++)
    assertPage(await pageSignIn(`spray${i}@example.com`, 'Spring2026!x', bad[i]), 400, WRONG_PAGE, `unknown caller's failure ${i} (${bad[i]})`);
  // The proxy's own request (no X-Forwarded-For) is in that bucket, as is A named so.
  assertPage(await pageSignIn('ann@example.com', PASSWORD, undefined), 429, THROTTLED_PAGE, 'the proxy itself');
  assertPage(await pageSignIn('ann@example.com', PASSWORD, `${A}, nonsense`), 429, THROTTLED_PAGE, 'another malformed header');
  // A client the proxy names properly is not held back.
  codeOf(await pageSignIn('ann@example.com', PASSWORD, A), REDIRECT);
});

test('without --trusted-proxy, X-Forwarded-For picks no throttle bucket: the peer\'s address counts', async (t) => {
  const { pageSignIn, grant } = await setup(t);
  for (let i = 0; i < BACKOFF_AFTER; i++)
    assertPage(await pageSignIn(`spray${i}@example.com`, 'Spring2026!x', `203.0.113.${i + 1}`), 400, WRONG_PAGE, `page failure ${i}`);
  assertPage(await pageSignIn('ann@example.com', PASSWORD, '198.51.100.99'), 429, THROTTLED_PAGE, 'page, a new X-Forwarded-For');
  assertPage(await pageSignIn('ann@example.com', PASSWORD, undefined), 429, THROTTLED_PAGE, 'page, no X-Forwarded-For');
  // The password grant shares that bucket (one throttle of passwords per address).
  assertEntra(await grant('ann@example.com', PASSWORD, '192.0.2.77'), 429, 'temporarily_unavailable', 90055, 'grant, a new X-Forwarded-For');
});
