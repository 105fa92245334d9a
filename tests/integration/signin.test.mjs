// The browser sign-in (authorization code + PKCE) and sign-out against the real daemon
// over TLS, with cookies handled by hand (tests/lib/signin.mjs): the page and its
// headers, the cookies' attributes, state round-tripped, the code redeemed once with
// its verifier; and every refusal security.md T14 names: CSRF (no token, wrong token),
// a redirect URI that is not registered (a page, never a redirect), PKCE missing or
// plain for a public client, a wrong or missing verifier, a code used twice, lockout
// through the form (the answer held by a timer); an existing session skips the form
// unless prompt=login; sign-out revokes the session and its refresh tokens and
// redirects only to a registered URI.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon } from '../lib/harness.mjs';
import { GUID, createApp, tenantId } from '../lib/authz.mjs';
import {
  DATA, Jar, PASSWORD, authorize, codeOf, createUser, form, pkce, postForm, readForm, redeem,
  registerClient, setCookies, signIn,
} from '../lib/signin.mjs';

const REDIRECT = 'http://127.0.0.1:8400/callback';
const SCOPE = `${DATA}/.default openid profile offline_access`;
const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

async function setup(t) {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const app = await createApp(d, 'signin-app');
  await registerClient(d, app, { publicClient: true, redirectUris: [REDIRECT] });
  const user = await createUser(d, 'ann@example.com');
  return { d, tid, app, user };
}

const params = (app, p, extra = {}) => ({
  client_id: app.appId, response_type: 'code', redirect_uri: REDIRECT, scope: SCOPE,
  state: 'st-é&=/?x', code_challenge: p.challenge, code_challenge_method: 'S256', ...extra,
});

function assertEntra(r, error, code, what) {
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json.error, error, what);
  assert.deepEqual(r.json.error_codes, [code], what);
}

// A refusal shown as a page: never a redirect, never a code.
function assertPage(r, status, text, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(r.headers.location, undefined, `${what}: no redirect`);
  assert.match(r.headers['content-type'], /^text\/html/, what);
  if (text) assert.match(r.text, text, what);
}

test('sign-in page: headers, cookies, state round-trip, a code redeemed with its verifier for a user token', async (t) => {
  const { d, tid, app, user } = await setup(t);
  const p = pkce();
  const jar = new Jar();
  const page = await authorize(d, tid, params(app, p), jar);
  assert.equal(page.status, 200, page.text);
  assert.match(page.headers['content-type'], /^text\/html; charset=utf-8/);
  const csp = page.headers['content-security-policy'];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:8400;/, 'the form may lead to the client');
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.equal(page.headers['referrer-policy'], 'no-referrer');
  assert.match(page.headers['cache-control'], /no-store/);
  assert.match(page.text, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  assert.doesNotMatch(page.text, /<(script|link|img|iframe|object)\b|\b(src|href)=|url\(/i, 'no script, no external asset');
  const csrf = setCookies(page).kl_csrf;
  assert.ok(csrf, 'a CSRF cookie');
  assert.equal(csrf.attrs, 'Path=/; Secure; HttpOnly; SameSite=Lax');
  assert.equal(readForm(page.text).fields.csrf_token, csrf.value, 'the same token in the form');

  const res = await postForm(d, page, jar, { username: 'Ann@Example.com' });
  const { code, state, params: back } = codeOf(res, REDIRECT);
  assert.equal(state, 'st-é&=/?x', 'state comes back unchanged');
  assert.match(back.get('session_state'), GUID);
  const sess = setCookies(res).kl_session;
  assert.ok(sess, 'a session cookie');
  assert.match(sess.attrs, /^Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=\d+$/);

  const tok = await redeem(d, tid, { client_id: app.appId, code, redirect_uri: REDIRECT, code_verifier: p.verifier, scope: SCOPE, client_info: '1' });
  assert.equal(tok.status, 200, tok.text);
  const claims = b64json(tok.json.access_token.split('.')[1]);
  assert.equal(claims.oid, user.id);
  assert.equal(claims.aud, DATA);
  assert.equal(claims.appid, app.appId);
  assert.equal(claims.appidacr, '0');

  // A live session skips the form; prompt=login asks again.
  const again = await authorize(d, tid, params(app, pkce(), { state: 's2' }), jar);
  assert.equal(codeOf(again, REDIRECT).state, 's2');
  const login = await authorize(d, tid, params(app, pkce(), { prompt: 'login' }), jar);
  assert.equal(login.status, 200, 'prompt=login shows the form');
  readForm(login.text);
  // prompt=none without a session goes back with login_required.
  const none = await authorize(d, tid, params(app, pkce(), { prompt: 'none', state: 'n' }));
  const loc = new URL(none.headers.location);
  assert.equal(loc.searchParams.get('error'), 'login_required');
  assert.equal(loc.searchParams.get('state'), 'n');
});

test('v1 authorize (resource= instead of a scope), under the tenant and under /adfs', async (t) => {
  const { d, tid, app, user } = await setup(t);
  for (const realm of [tid, 'adfs']) {
    const p = pkce();
    const jar = new Jar();
    const v1 = { client_id: app.appId, response_type: 'code', redirect_uri: REDIRECT, resource: DATA, state: realm, code_challenge: p.challenge, code_challenge_method: 'S256' };
    const page = await authorize(d, realm, v1, jar, { v1: true });
    assert.equal(page.status, 200, page.text.slice(0, 300));
    assert.equal(readForm(page.text).action, `/${realm}/oauth2/authorize`);
    const { code, state } = codeOf(await postForm(d, page, jar, { username: 'ann@example.com' }), REDIRECT);
    assert.equal(state, realm);
    const tok = await redeem(d, tid, { client_id: app.appId, code, redirect_uri: REDIRECT, code_verifier: p.verifier });
    assert.equal(tok.status, 200, tok.text);
    const claims = b64json(tok.json.access_token.split('.')[1]);
    assert.equal(claims.oid, user.id);
    assert.equal(claims.aud, DATA);
  }
});

test('response_mode=form_post: code and state are posted by a page whose only script is allowed by hash', async (t) => {
  const { d, tid, app } = await setup(t);
  const p = pkce();
  const jar = new Jar();
  const page = await authorize(d, tid, params(app, p, { response_mode: 'form_post' }), jar);
  const res = await postForm(d, page, jar, { username: 'ann@example.com' });
  assertPage(res, 200, /<script>document\.forms\[0\]\.submit\(\);<\/script>/, 'the posting page');
  const csp = res.headers['content-security-policy'];
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+';/);
  assert.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:8400;/);
  const f = readForm(res.text);
  assert.equal(f.action, REDIRECT);
  assert.equal(f.fields.state, 'st-é&=/?x');
  assert.match(f.fields.session_state, GUID);
  const tok = await redeem(d, tid, { client_id: app.appId, code: f.fields.code, redirect_uri: REDIRECT, code_verifier: p.verifier, scope: SCOPE });
  assert.equal(tok.status, 200, tok.text);
  // Refusals after the redirect URI is trusted are posted the same way.
  const none = await authorize(d, tid, params(app, p, { response_mode: 'form_post', prompt: 'none' }));
  assert.equal(readForm(none.text).fields.error, 'login_required');
  // Other pages run no script at all.
  assert.doesNotMatch(page.headers['content-security-policy'], /script-src/);
  const bad = await authorize(d, tid, params(app, p, { response_mode: 'fragment' }));
  assert.equal(new URL(bad.headers.location).searchParams.get('error'), 'invalid_request');
});

test('CSRF: a form posted without the cookie, without the field or with another token gives no code', async (t) => {
  const { d, tid, app } = await setup(t);
  const jar = new Jar();
  const page = await authorize(d, tid, params(app, pkce()), jar);
  const other = '0'.repeat(43);
  for (const [what, opts] of [
    ['no cookie', { cookie: '' }],
    ['no field', { fields: { csrf_token: '' } }],
    ['another token in the field', { fields: { csrf_token: other } }],
    ['another token in the cookie', { cookie: `kl_csrf=${other}` }],
  ]) {
    const r = await postForm(d, page, new Jar(), { username: 'ann@example.com', ...opts });
    assertPage(r, 403, /This sign-in page has expired/, what);
    assert.equal(setCookies(r).kl_session, undefined, `${what}: no session`);
  }
  // The same page, posted as it was served, works.
  codeOf(await postForm(d, page, jar, { username: 'ann@example.com' }), REDIRECT);
});

test('redirect URI not registered, unknown client: an error page, never a redirect', async (t) => {
  const { d, tid, app } = await setup(t);
  const p = pkce();
  for (const [what, uri] of [
    ['another host', 'https://evil.example/callback'],
    ['another path', 'http://127.0.0.1:8400/other'],
    ['a prefix', 'http://127.0.0.1:8400/callback/x'],
    ['a query added', `${REDIRECT}?x=1`],
  ]) {
    const r = await authorize(d, tid, params(app, p, { redirect_uri: uri }));
    assertPage(r, 400, /AADSTS50011/, what);
  }
  // Even with every other parameter wrong, the answer is the page.
  assertPage(await authorize(d, tid, params(app, p, { redirect_uri: 'https://evil.example/', response_type: 'token', scope: 'x' })), 400, /AADSTS50011/, 'all wrong');
  assertPage(await authorize(d, tid, params(app, p, { client_id: '11111111-2222-3333-4444-555555555555' })), 400, /AADSTS700016/, 'unknown client');
  assertPage(await authorize(d, tid, params(app, p, { redirect_uri: '' })), 400, /AADSTS900144/, 'no redirect_uri');
  // A loopback redirect URI of a public client matches on any port (RFC 8252 7.3).
  codeOf(await signIn(d, tid, params(app, p, { redirect_uri: 'http://127.0.0.1:9999/callback' }), 'ann@example.com').then((x) => x.res), 'http://127.0.0.1:9999/callback');
});

test('PKCE: required and S256 only for a public client; a missing or wrong verifier is refused (AADSTS501481)', async (t) => {
  const { d, tid, app } = await setup(t);
  const p = pkce();
  const back = (r) => {
    assert.equal(r.status, 302, r.text);
    return new URL(r.headers.location).searchParams;
  };
  let q = back(await authorize(d, tid, params(app, p, { code_challenge: '', code_challenge_method: '' })));
  assert.equal(q.get('error'), 'invalid_request');
  assert.match(q.get('error_description'), /^AADSTS9002325: Proof Key for Code Exchange is required/);
  assert.equal(q.get('state'), 'st-é&=/?x');
  assert.equal(q.get('code'), null);
  q = back(await authorize(d, tid, params(app, p, { code_challenge_method: 'plain' })));
  assert.match(q.get('error_description'), /^AADSTS50149: /);
  q = back(await authorize(d, tid, params(app, p, { code_challenge_method: '' })));
  assert.match(q.get('error_description'), /^AADSTS50149: /, 'no method means plain');

  const get = async () => codeOf((await signIn(d, tid, params(app, p), 'ann@example.com')).res, REDIRECT).code;
  const base = { client_id: app.appId, redirect_uri: REDIRECT, scope: SCOPE };
  assertEntra(await redeem(d, tid, { ...base, code: await get() }), 'invalid_grant', 501481, 'no verifier');
  assertEntra(await redeem(d, tid, { ...base, code: await get(), code_verifier: pkce().verifier }), 'invalid_grant', 501481, 'another verifier');
  assertEntra(await redeem(d, tid, { ...base, code: await get(), code_verifier: p.challenge }), 'invalid_grant', 501481, 'the challenge itself');
  assertEntra(await redeem(d, tid, { ...base, code: await get(), code_verifier: p.verifier, redirect_uri: 'http://127.0.0.1:8400/other' }), 'invalid_grant', 70000, 'another redirect_uri');
  const other = await createApp(d, 'other-app');
  await registerClient(d, other, { publicClient: true, redirectUris: [REDIRECT] });
  assertEntra(await redeem(d, tid, { ...base, client_id: other.appId, code: await get(), code_verifier: p.verifier }), 'invalid_grant', 70000, 'another client');
  const ok = await redeem(d, tid, { ...base, code: await get(), code_verifier: p.verifier });
  assert.equal(ok.status, 200, ok.text);
});

test('a confidential client (web redirect URI, client secret) may leave PKCE out; its code needs its secret', async (t) => {
  const { d, tid } = await setup(t);
  const web = await createApp(d, 'web-app');
  const uri = 'https://app.example/signin-oidc';
  await registerClient(d, web, { publicClient: false, redirectUris: [uri] });
  const sec = await d.admin('POST', `/v1.0/applications/${web.id}/addPassword`, { passwordCredential: { displayName: 'web' } });
  assert.equal(sec.status, 200, sec.text);
  const p = { client_id: web.appId, response_type: 'code', redirect_uri: uri, scope: `${DATA}/.default openid`, state: 'w' };
  const { res } = await signIn(d, tid, p, 'ann@example.com');
  const page = setCookies(res);
  assert.ok(page.kl_session, 'signed in');
  const { code } = codeOf(res, uri);
  const body = { client_id: web.appId, code, redirect_uri: uri, scope: `${DATA}/.default openid` };
  const noSecret = await redeem(d, tid, body);
  assert.equal(noSecret.status, 401, `no secret: ${noSecret.text}`);
  const ok = await redeem(d, tid, { ...body, client_secret: sec.json.secretText });
  // The code was spent by the refused attempt? No: the client is authenticated before
  // the grant looks at the code.
  assert.equal(ok.status, 200, ok.text);
  assert.equal(b64json(ok.json.access_token.split('.')[1]).appidacr, '1');
  // An https redirect URI must match exactly: no port freedom for it.
  assertPage(await authorize(d, tid, { ...p, redirect_uri: 'https://app.example:8443/signin-oidc' }), 400, /AADSTS50011/, 'another port');
});

test('a code is redeemed once: the second redemption is refused (AADSTS54005)', async (t) => {
  const { d, tid, app } = await setup(t);
  const p = pkce();
  const { code } = codeOf((await signIn(d, tid, params(app, p), 'ann@example.com')).res, REDIRECT);
  const body = { client_id: app.appId, code, redirect_uri: REDIRECT, code_verifier: p.verifier, scope: SCOPE };
  const [x, y] = await Promise.all([redeem(d, tid, body), redeem(d, tid, body)]);
  assert.deepEqual([x.status, y.status].sort(), [200, 400], `${x.text} / ${y.text}`);
  assertEntra(x.status === 400 ? x : y, 'invalid_grant', 54005, 'the second of two at once');
  assertEntra(await redeem(d, tid, body), 'invalid_grant', 54005, 'a third, later');
  assertEntra(await redeem(d, tid, { ...body, code: 'x'.repeat(43) }), 'invalid_grant', 9002313, 'a code never issued');
});

test('lockout through the form: one generic text, failures held by a timer, then locked even with the right password', async (t) => {
  const { d, tid, app } = await setup(t);
  const jar = new Jar();
  const page = await authorize(d, tid, params(app, pkce()), jar);
  // Each failure from an address of its own: the per-address throttle (next test) does
  // not come into it; the lockout counts per name, wherever the attempts come from.
  let n = 1;
  const wrong = (username) => postForm(d, page, jar, { username, password: 'not-the-password-1A!', localAddress: `127.0.0.${++n}` });
  const a = await wrong('ann@example.com');
  const b = await wrong('nobody@example.com');
  assertPage(a, 400, /Your account or password is incorrect\./, 'wrong password');
  assertPage(b, 400, /Your account or password is incorrect\./, 'no such user');
  // Failures past the slowdown threshold are answered late, without holding the worker:
  // the rest arrive together, and a page is served meanwhile.
  const t0 = performance.now();
  const rest = Array.from({ length: 9 }, () => wrong('ann@example.com'));
  const meanwhile = await authorize(d, tid, params(app, pkce()), new Jar());
  const servedAfter = performance.now() - t0;
  const answers = await Promise.all(rest);
  const allAfter = performance.now() - t0;
  assert.equal(meanwhile.status, 200);
  t.diagnostic(`a page served ${servedAfter.toFixed(0)} ms into held failures that took ${allAfter.toFixed(0)} ms`);
  assert.ok(allAfter >= 500, `failures past the threshold were held (${allAfter} ms)`);
  assert.ok(servedAfter < allAfter, 'the worker kept serving while answers were held');
  for (const r of answers) assert.equal(r.status, 400);
  assert.ok(answers.some((r) => /temporarily locked/.test(r.text)), 'the name got locked');
  // A client that leaves while its answer is held: the held page is dropped (under
  // AddressSanitizer: without a leak or a use after free) and the daemon goes on.
  for (let i = 0; i < 3; i++) await wrong('bob@example.com');
  const gone = await postForm(d, page, jar, { username: 'bob@example.com', password: 'x', localAddress: '127.0.0.51', timeoutMs: 200 }).then(() => 'answered', (e) => e.message);
  assert.match(gone, /timed out/, 'the fourth failure was held past 200 ms');
  const right = await postForm(d, page, jar, { username: 'ann@example.com', password: PASSWORD });
  assertPage(right, 400, /Your account is temporarily locked/, 'right password while locked');
  assert.equal(setCookies(right).kl_session, undefined);
});

test('one address failing over many names is throttled before any password is checked', async (t) => {
  const { d, tid, app } = await setup(t);
  const jar = new Jar();
  const page = await authorize(d, tid, params(app, pkce()), jar);
  const from = '127.0.0.77';
  for (let i = 0; i < 5; i++) {
    const r = await postForm(d, page, jar, { username: `spray${i}@example.com`, password: 'Spring2026!x', localAddress: from });
    assertPage(r, 400, /Your account or password is incorrect\./, `name ${i}`);
  }
  const r = await postForm(d, page, jar, { username: 'ann@example.com', password: PASSWORD, localAddress: from });
  assertPage(r, 429, /Too many failed sign-in attempts from this address/, 'the sixth, right password and all');
  assert.match(r.headers['retry-after'], /^\d+$/);
  assert.equal(setCookies(r).kl_session, undefined);
  // Another address is not affected.
  codeOf(await postForm(d, page, jar, { username: 'ann@example.com', localAddress: '127.0.0.78' }), REDIRECT);
});

test('sign-out revokes the session, clears the cookie, redirects only to a registered URI', async (t) => {
  const { d, tid, app } = await setup(t);
  const p = pkce();
  const { res, jar } = await signIn(d, tid, params(app, p), 'ann@example.com');
  codeOf(res, REDIRECT);
  // A code issued before sign-out is refused after it.
  const pending = codeOf(await authorize(d, tid, params(app, p), jar), REDIRECT).code;

  // HEAD is safe: it signs nobody out (a link checker or a prefetch must not).
  const head = await d.request('HEAD', `/${tid}/oauth2/v2.0/logout`, { headers: { cookie: jar.header() } });
  assert.equal(head.status, 200);
  assert.equal(setCookies(head).kl_session, undefined, 'HEAD clears no cookie');
  codeOf(await authorize(d, tid, params(app, p), jar), REDIRECT);

  const out = jar.take(await d.request('GET', `/${tid}/oauth2/v2.0/logout?${new URLSearchParams({ post_logout_redirect_uri: 'https://evil.example/', client_id: app.appId })}`, { headers: { cookie: jar.header() } }));
  assertPage(out, 200, /You have signed out/, 'an unregistered URI: a page');
  assert.match(setCookies(out).kl_session.attrs, /Max-Age=0/, 'the cookie is cleared');
  assertEntra(await redeem(d, tid, { client_id: app.appId, code: pending, redirect_uri: REDIRECT, code_verifier: p.verifier, scope: SCOPE }), 'invalid_grant', 50173, 'a code of the signed-out session');
  // The old cookie opens nothing any more.
  const old = new Jar();
  old.set('kl_session', setCookies(res).kl_session.value);
  const stale = await authorize(d, tid, params(app, p), old);
  assert.equal(stale.status, 200, 'the form again');
  readForm(stale.text);
  // Without client_id, or to a URI the client did not register: a page.
  assertPage(await d.request('GET', `/${tid}/oauth2/v2.0/logout?${new URLSearchParams({ post_logout_redirect_uri: REDIRECT })}`), 200, /You have signed out/, 'no client_id');
  // To a registered URI of the named client: a redirect.
  const back = await d.request('GET', `/${tid}/oauth2/v2.0/logout?${new URLSearchParams({ post_logout_redirect_uri: REDIRECT, client_id: app.appId, state: 'bye' })}`);
  assert.equal(back.status, 302);
  assert.equal(back.headers.location, `${REDIRECT}?state=bye`);
});

test('sign-out revokes the refresh tokens of the session', async (t) => {
  const { d, tid, app } = await setup(t);
  const p = pkce();
  const { res, jar } = await signIn(d, tid, params(app, p), 'ann@example.com');
  const { code } = codeOf(res, REDIRECT);
  const tok = await redeem(d, tid, { client_id: app.appId, code, redirect_uri: REDIRECT, code_verifier: p.verifier, scope: SCOPE });
  assert.equal(tok.status, 200, tok.text);
  assert.ok(tok.json.refresh_token, 'offline_access gave a refresh token');
  const refresh = () => d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'refresh_token', client_id: app.appId, refresh_token: tok.json.refresh_token, scope: SCOPE }),
  });
  const out = await d.request('GET', `/${tid}/oauth2/v2.0/logout`, { headers: { cookie: jar.header() } });
  assert.equal(out.status, 200, out.text);
  const r = await refresh();
  assert.equal(r.status, 400, `refresh after sign-out: ${r.text}`);
  assert.equal(r.json.error, 'invalid_grant');
});
