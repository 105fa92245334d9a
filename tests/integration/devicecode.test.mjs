// The device-code flow against the real daemon over TLS: the devicecode endpoint's fields
// and types (interval always sent), the verification page at /devicelogin completed as a
// person would (code, then name and password), the token endpoint's polling answers
// (authorization_pending, authorization_declined, expired_token, bad_verification_code,
// and a poll sooner than the interval answered authorization_pending, never slow_down,
// without reaching the store), the page's refusals (wrong code, CSRF, throttling of
// guesses), and redemption at most once — on one node and across two nodes sharing one
// PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon } from '../lib/harness.mjs';
import { createApp, tenantId } from '../lib/authz.mjs';
import { Postgres, PROPAGATION_MS, twoNodes, within } from '../lib/pg.mjs';
import {
  AZURE_CLI, Browser, USER_CODE, afterInterval, assertOAuthError,
  createUser, deviceCode, poll, requestDeviceCode,
} from '../lib/devicecode.mjs';

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
const claims = (tok) => b64json(tok.split('.')[1]);

async function setup(t, opts) {
  const d = await startDaemon(t, opts);
  const tid = await tenantId(d);
  const user = await createUser(d, 'dev@example.com');
  return { d, tid, user };
}

test('devicecode: the fields and their types, interval always sent; the page approves; the token is the user\'s; redeemed once', async (t) => {
  const { d, tid, user } = await setup(t);
  const r = await requestDeviceCode(d, tid);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['cache-control'], 'no-store, no-cache');
  const dc = r.json;
  assert.deepEqual(Object.keys(dc).sort(), ['device_code', 'expires_in', 'interval', 'message', 'user_code', 'verification_uri']);
  assert.equal(typeof dc.device_code, 'string');
  assert.ok(dc.device_code.length >= 40, dc.device_code);
  assert.match(dc.user_code, USER_CODE);
  assert.equal(dc.verification_uri, `${d.publicUrl}/devicelogin`);
  assert.ok(Number.isInteger(dc.expires_in) && dc.expires_in === 900, String(dc.expires_in));
  assert.ok(Number.isInteger(dc.interval) && dc.interval === 5, String(dc.interval));
  assert.equal(dc.message, `To sign in, use a web browser to open the page ${dc.verification_uri} and enter the code ${dc.user_code} to authenticate.`);

  // The tenant's name works as its id does; the v1 path (MSAL's /token -> /devicecode on
  // a v1 authority) answers the same fields, plus ADAL's verification_url.
  const v1 = await requestDeviceCode(d, 'keyless', { v1: true, scope: null, extra: { resource: 'https://cognitiveservices.azure.com' } });
  assert.equal(v1.status, 200, v1.text);
  assert.equal(v1.json.interval, 5);
  assert.equal(v1.json.verification_url, v1.json.verification_uri);

  let t0 = Date.now();
  assertOAuthError(await poll(d, tid, dc.device_code), 'authorization_pending', 70016, 'before the user signs in');

  // The person types the code in lower case without the dash.
  const browser = new Browser(d);
  const page = await browser.get(dc.verification_uri.slice(d.publicUrl.length));
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type'], /^text\/html/);
  const step2 = await browser.enterCode(dc.user_code.replace('-', '').toLowerCase());
  assert.equal(step2.status, 200, step2.text);
  assert.match(step2.text, /Azure CLI|04b07795/, 'the page names the app');
  assert.match(step2.text, /cognitiveservices\.azure\.com\/\.default/, 'and what it asks for');
  const hidden = /name="user_code" value="([^"]+)"/.exec(step2.text)[1];
  const done = await browser.post({ user_code: hidden, username: 'DEV@example.com', password: 'Tr0ub4dor&3-horse-battery', action: 'continue' });
  assert.equal(done.status, 200, done.text);
  assert.match(done.text, /signed in/);

  await afterInterval(t0, dc.interval);
  t0 = Date.now();
  const tok = await poll(d, tid, dc.device_code, { grant: 'urn:ietf:params:oauth:grant-type:device_code' });
  assert.equal(tok.status, 200, tok.text);
  const c = claims(tok.json.access_token);
  assert.equal(c.oid, user.id);
  assert.equal(c.appid, AZURE_CLI);
  assert.equal(c.aud, 'https://cognitiveservices.azure.com');
  assert.equal(c.tid, tid);
  assert.equal(c.upn, 'dev@example.com');
  assert.deepEqual(c.amr, ['pwd']);
  // What MSAL needs of a user grant's answer: the scopes, an id_token (openid was
  // asked), client_info naming the user, a refresh token (offline_access).
  assert.equal(typeof tok.json.refresh_token, 'string');
  assert.equal(claims(tok.json.id_token).oid, user.id);
  assert.deepEqual(b64json(tok.json.client_info), { uid: user.id, utid: tid });
  assert.match(tok.json.scope, /cognitiveservices\.azure\.com/);
  // Past the device_code grant, the refresh token the device got works as any other.
  const rt = await d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: AZURE_CLI, grant_type: 'refresh_token', refresh_token: tok.json.refresh_token, scope: 'https://cognitiveservices.azure.com/.default offline_access' }).toString(),
  });
  assert.equal(rt.status, 200, rt.text);
  assert.equal(claims(rt.json.access_token).oid, user.id);

  // Spent: the same code again, after the interval, is refused.
  await afterInterval(t0, dc.interval);
  assertOAuthError(await poll(d, tid, dc.device_code), 'invalid_grant', 70000, 'a second redemption');
  // A code nobody issued.
  assertOAuthError(await poll(d, tid, 'A'.repeat(43)), 'bad_verification_code', 70018, 'an unknown device_code');
  // The code belongs to the client it was issued to.
  const other = await deviceCode(d, tid);
  const app = await createApp(d, 'not-the-cli');
  const pw = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: {} });
  const stolen = await d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: app.appId, client_secret: pw.json.secretText, grant_type: 'device_code', device_code: other.device_code }).toString(),
  });
  assertOAuthError(stolen, 'bad_verification_code', 70018, 'another client\'s device_code');
});

test('devicecode endpoint refusals: no client, an unknown app, a confidential app, a secret from a public client, a bad scope', async (t) => {
  const { d, tid } = await setup(t);
  let r = await requestDeviceCode(d, tid, { clientId: '' });
  assert.equal(r.status, 400, r.text);
  assert.deepEqual(r.json.error_codes, [900144]);
  r = await requestDeviceCode(d, tid, { clientId: '11111111-2222-3333-4444-555555555555' });
  assert.equal(r.json.error, 'unauthorized_client', r.text);
  assert.deepEqual(r.json.error_codes, [700016]);
  const app = await createApp(d, 'confidential');
  r = await requestDeviceCode(d, tid, { clientId: app.appId });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error, 'invalid_client');
  assert.deepEqual(r.json.error_codes, [7000218]);
  r = await requestDeviceCode(d, tid, { extra: { client_secret: 'x' } });
  assert.equal(r.status, 401, r.text);
  assert.deepEqual(r.json.error_codes, [700025]);
  r = await requestDeviceCode(d, tid, { scope: 'https://example.com/.default' });
  assert.equal(r.json.error, 'invalid_scope', r.text);
  assert.deepEqual(r.json.error_codes, [70011]);
  r = await requestDeviceCode(d, tid, { scope: null });
  assert.deepEqual(r.json.error_codes, [900144], r.text);
  r = await d.request('GET', `/${tid}/oauth2/v2.0/devicecode`);
  assert.equal(r.status, 405, r.text);
  // Another tenant: the token endpoint's answer. DeviceCodeCredential's default,
  // "organizations" (and "common"), name the one tenant.
  for (const alias of ['organizations', 'common']) {
    r = await requestDeviceCode(d, alias);
    assert.equal(r.status, 200, r.text);
    assert.equal(typeof r.json.device_code, 'string');
  }
  r = await requestDeviceCode(d, 'contoso.onmicrosoft.com');
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error, 'invalid_request');
  assert.deepEqual(r.json.error_codes, [90002]);
});

test('polled faster than the interval: authorization_pending (never slow_down), even once approved, and the store is not read for it', async (t) => {
  const { d, tid } = await setup(t);
  const dc = await deviceCode(d, tid);
  const t0 = Date.now();
  assertOAuthError(await poll(d, tid, dc.device_code), 'authorization_pending', 70016, 'first poll');
  const done = await new Browser(d).approve(dc.user_code, 'dev@example.com');
  assert.equal(done.status, 200, done.text);
  // Approved, but asked again at once: the answer must stay pending, and say why in
  // the access log rather than in a slow_down the client would die of.
  const logged = d.waitForLog((j) => j.poll === 'too_fast');
  const fast = await poll(d, tid, dc.device_code);
  assertOAuthError(fast, 'authorization_pending', 70016, 'a poll sooner than the interval');
  assert.notEqual(fast.json.error, 'slow_down');
  await logged;
  await afterInterval(t0, dc.interval);
  const tok = await poll(d, tid, dc.device_code);
  assert.equal(tok.status, 200, tok.text);
});

test('declined on the page: authorization_declined; the code cannot then be approved', async (t) => {
  const { d, tid } = await setup(t);
  const dc = await deviceCode(d, tid);
  const browser = new Browser(d);
  const r = await browser.decline(dc.user_code);
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /declined/);
  assertOAuthError(await poll(d, tid, dc.device_code), 'authorization_declined', 70000, 'after Cancel');
  const again = await new Browser(d).enterCode(dc.user_code);
  assert.equal(again.status, 400, again.text);
  assert.match(again.text, /expired or has already been used/);
});

test('expired: expired_token once the lifetime has passed (--device-code-lifetime-s), and the page refuses the code', async (t) => {
  const { d, tid } = await setup(t, { args: ['--device-code-lifetime-s', '5'] });
  const dc = await deviceCode(d, tid);
  assert.equal(dc.expires_in, 5);
  const browser = new Browser(d);
  const s1 = await browser.enterCode(dc.user_code);
  assert.equal(s1.status, 200, s1.text);
  await afterInterval(Date.now() - 100, dc.expires_in + 1);
  assertOAuthError(await poll(d, tid, dc.device_code), 'expired_token', 70019, 'after expires_in');
  const hidden = /name="user_code" value="([^"]+)"/.exec(s1.text)[1];
  const late = await browser.post({ user_code: hidden, username: 'dev@example.com', password: 'Tr0ub4dor&3-horse-battery', action: 'continue' });
  assert.equal(late.status, 400, late.text);
  assert.match(late.text, /expired/);
});

test('the page: CSRF refused, wrong codes refused and then throttled per address, a wrong password refused generically', async (t) => {
  const { d, tid } = await setup(t);
  const dc = await deviceCode(d, tid);

  // No CSRF cookie, or a field that does not match it: 403, nothing decided.
  const browser = new Browser(d);
  await browser.get();
  assert.ok(browser.csrf, 'the page carries a CSRF field');
  let r = await browser.post({ user_code: dc.user_code, action: 'next' }, { cookies: false });
  assert.equal(r.status, 403, r.text);
  r = await browser.post({ user_code: dc.user_code, action: 'cancel' }, { csrf: 'A'.repeat(43) });
  assert.equal(r.status, 403, r.text);
  assertOAuthError(await poll(d, tid, dc.device_code), 'authorization_pending', 70016, 'a forged Cancel decided nothing');

  // A wrong password: the generic refusal, the code still pending.
  r = await browser.approve(dc.user_code, 'dev@example.com', 'wrong-password-1');
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /account or password is incorrect/);
  r = await browser.approve(dc.user_code, 'nobody@example.com', 'wrong-password-1');
  assert.match(r.text, /account or password is incorrect/, 'the same words for a user that does not exist');

  // Wrong codes from one address: refused, then throttled (even the right code), while
  // another address is not held back.
  const guesser = new Browser(d, { localAddress: '127.0.0.7' });
  for (let i = 0; i < 5; i++) {
    r = await guesser.enterCode('BCDF-GHJK');
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /didn(&#39;|')t work/);
  }
  r = await guesser.enterCode(dc.user_code);
  assert.equal(r.status, 429, r.text);
  assert.ok(Number(r.headers['retry-after']) >= 1, JSON.stringify(r.headers));
  r = await new Browser(d, { localAddress: '127.0.0.8' }).enterCode(dc.user_code);
  assert.equal(r.status, 200, r.text);
  // Junk is a wrong code too, and nothing of it is echoed as markup.
  r = await new Browser(d, { localAddress: '127.0.0.9' }).enterCode('<b>x</b>');
  assert.equal(r.status, 400, r.text);
  assert.ok(!r.text.includes('<b>x</b>'), 'the typed value is escaped');
});

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

test('two nodes on one PostgreSQL: issued on A, approved on B, redeemed once when both are polled at once', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const tid = await tenantId(a);
  const user = await createUser(a, 'dev@example.com');
  const dc = await deviceCode(a, tid);
  await within(PROPAGATION_MS, async () => (await new Browser(b).enterCode(dc.user_code)).status === 200, 'the code on B');
  const done = await new Browser(b).approve(dc.user_code, 'dev@example.com');
  assert.equal(done.status, 200, done.text);
  await within(PROPAGATION_MS, async () => (await b.admin('GET', `/v1.0/users/${user.id}`)).status === 200, 'the user on B');
  const t0 = Date.now();
  const both = await Promise.all([poll(a, tid, dc.device_code), poll(b, tid, dc.device_code)]);
  const ok = both.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, both.map((r) => r.text).join('\n'));
  assert.equal(claims(ok[0].json.access_token).oid, user.id);
  const loser = both.find((r) => r.status !== 200);
  assert.ok(['authorization_pending', 'invalid_grant'].includes(loser.json.error), loser.text);
  // Asked again after the interval, the code is spent.
  await afterInterval(t0, dc.interval);
  assertOAuthError(await poll(b, tid, dc.device_code), 'invalid_grant', 70000, 'after the one redemption');
});

// KL_MAX_DEVICE_CODES_PER_ADDRESS (src/common/limits.h).
const MAX_LIVE_CODES = 100;

test('two nodes on one PostgreSQL: one address holds at most the limit of live codes across both; another address is served; a declined code frees a place', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const tid = await tenantId(a);
  // More than the limit at once, spread over both nodes: exactly the limit gets through.
  // (That the count cannot race between nodes is shown deterministically in
  // tests/unit/store/test_devicecodes.c, test_limit_holds_across_nodes.)
  const extra = 6;
  const rs = await Promise.all(Array.from({ length: MAX_LIVE_CODES + extra }, (_, i) => requestDeviceCode(i % 2 ? b : a, tid)));
  const ok = rs.filter((r) => r.status === 200);
  const refused = rs.filter((r) => r.status !== 200);
  assert.equal(ok.length, MAX_LIVE_CODES, refused.slice(0, 1).map((r) => r.text).join(''));
  assert.equal(refused.length, extra);
  for (const r of refused) {
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error, 'temporarily_unavailable', r.text);
    assert.deepEqual(r.json.error_codes, [90055], r.text);
    assert.match(r.json.error_description, new RegExp(`^AADSTS90055: Too many device codes are waiting for sign-in from this address \\(at most ${MAX_LIVE_CODES}\\)\\.`));
    const retry = Number(r.headers['retry-after']);
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 900, r.headers['retry-after']);
  }
  // Another address is served, by either node.
  const other = await requestDeviceCode(b, tid, { localAddress: '127.0.0.2' });
  assert.equal(other.status, 200, other.text);
  // The person cancels one sign-in on the page: its place is free, once.
  const declined = await new Browser(a).decline(ok[0].json.user_code);
  assert.equal(declined.status, 200, declined.text);
  assert.equal((await requestDeviceCode(b, tid)).status, 200);
  assert.equal((await requestDeviceCode(a, tid)).status, 429);
});
