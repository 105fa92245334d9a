// Tokens for users at the token endpoint, against the real daemon: the password grant
// (off by default per tenant, then on through /keyless/tenantSettings), the claims of the
// user's access token, id_token and client_info (lockout is sts-user-lockout.test.mjs),
// refresh-token rotation, reuse revoking the whole family, revocation (RFC 7009,
// advertised in discovery), an admin's password reset ending the user's sign-ins, public
// clients refused when they present a secret, applications' redirect URIs and
// public-client flag on Graph, and one refresh token raced by two nodes on one PostgreSQL
// (and by two requests on one SQLite node): exactly one wins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { GUID, ROLE, assign, createApp, tenantId } from '../lib/authz.mjs';
import { Postgres, twoNodes } from '../lib/pg.mjs';

const DATA = 'https://cognitiveservices.azure.com';
const ARM = 'https://management.azure.com';
const AZURE_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const PASSWORD = 'Tr0ub4dor&3-horse-battery';
const SCOPE = `${DATA}/.default openid profile offline_access`;

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
const claims = (tok) => b64json(tok.split('.')[1]);
const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

function post(d, tenant, path, fields) {
  return d.request('POST', `/${tenant}/oauth2/${path}`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form(fields),
  });
}
const tokenRequest = (d, tid, fields, { v1 = false } = {}) => post(d, tid, v1 ? 'token' : 'v2.0/token', fields);
const ropc = (username, password = PASSWORD, extra = {}) => ({
  grant_type: 'password', client_id: AZURE_CLI, username, password, scope: SCOPE, ...extra,
});
const refresh = (rt, extra = {}) => ({ grant_type: 'refresh_token', client_id: AZURE_CLI, refresh_token: rt, ...extra });

function assertEntraError(r, status, error, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json.error, error, `${what}: ${r.text}`);
  assert.deepEqual(r.json.error_codes, [code], `${what}: ${r.text}`);
  assert.match(r.json.error_description, new RegExp(`^AADSTS${code}: `), what);
}

async function createUser(d, upn, displayName = 'Ann Example') {
  const r = await d.admin('POST', '/v1.0/users', {
    accountEnabled: true, displayName, mailNickname: upn.split('@')[0], userPrincipalName: upn,
    passwordProfile: { forceChangePasswordNextSignIn: false, password: PASSWORD },
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function enablePasswordGrant(d, on = true) {
  const r = await d.admin('PATCH', '/keyless/tenantSettings', { passwordGrantEnabled: on });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { passwordGrantEnabled: on });
}

async function setup(t, opts) {
  const d = await startDaemon(t, opts);
  const tid = await tenantId(d);
  return { d, tid };
}

test('the password grant is off by default; an Owner turns it on; a user then gets v1 access, v2 id_token, client_info and a refresh token', async (t) => {
  const { d, tid } = await setup(t);
  const user = await createUser(d, 'ann@example.com', 'Ann Exämple');
  const got = await d.admin('GET', '/keyless/tenantSettings');
  assert.equal(got.status, 200, got.text);
  assert.deepEqual(got.json, { passwordGrantEnabled: false });
  assertEntraError(await tokenRequest(d, tid, ropc('ann@example.com')), 400, 'unsupported_grant_type', 70003, 'ROPC off');
  const bad = await d.admin('PATCH', '/keyless/tenantSettings', { passwordGrantEnabled: 'yes' });
  assert.equal(bad.status, 400, bad.text);
  const unknown = await d.admin('PATCH', '/keyless/tenantSettings', { somethingElse: true });
  assert.equal(unknown.status, 400, unknown.text);
  await enablePasswordGrant(d);

  const t0 = Math.floor(Date.now() / 1000);
  const r = await tokenRequest(d, tid, ropc('ANN@example.com'));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['cache-control'], 'no-store, no-cache');
  const j = r.json;
  assert.equal(j.token_type, 'Bearer');
  assert.equal(j.scope, SCOPE);
  assert.equal(typeof j.expires_in, 'number');
  assert.match(j.refresh_token, /^[A-Za-z0-9_-]{43}$/);
  const at = claims(j.access_token);
  assert.equal(at.aud, DATA);
  assert.equal(at.iss, `https://sts.windows.net/${tid}/`);
  assert.equal(at.idp, at.iss);
  assert.equal(at.tid, tid);
  assert.equal(at.oid, user.id);
  assert.equal(at.sub, user.id);
  assert.equal(at.appid, AZURE_CLI);
  assert.equal(at.appidacr, '0');
  assert.equal(at.ver, '1.0');
  assert.equal(at.idtyp, 'user');
  assert.equal(at.scp, 'user_impersonation');
  assert.equal(at.name, 'Ann Exämple');
  assert.equal(at.upn, 'ann@example.com');
  assert.equal(at.unique_name, 'ann@example.com');
  assert.deepEqual(at.amr, ['pwd']);
  assert.ok(at.iat >= t0 - 5 && at.nbf === at.iat && at.exp > at.iat, JSON.stringify(at));
  assert.match(at.uti, /^[A-Za-z0-9_-]{22}$/);
  const idt = claims(j.id_token);
  assert.equal(idt.aud, AZURE_CLI);
  assert.equal(idt.iss, `${d.publicUrl}/${tid}/v2.0`);
  const disco = await d.request('GET', `/${tid}/v2.0/.well-known/openid-configuration`);
  assert.equal(idt.iss, disco.json.issuer, 'the id_token issuer is the v2 discovery issuer');
  assert.equal(disco.json.revocation_endpoint, `${d.publicUrl}/${tid}/oauth2/v2.0/revoke`);
  assert.equal(idt.oid, user.id);
  assert.equal(idt.sub, user.id);
  assert.equal(idt.tid, tid);
  assert.equal(idt.preferred_username, 'ann@example.com');
  assert.equal(idt.name, 'Ann Exämple');
  assert.equal(idt.ver, '2.0');
  assert.deepEqual(b64json(j.client_info), { uid: user.id, utid: tid });

  // Without openid / offline_access: no id_token, no refresh token.
  const bare = await tokenRequest(d, tid, ropc('ann@example.com', PASSWORD, { scope: `${DATA}/.default` }));
  assert.equal(bare.status, 200, bare.text);
  assert.equal(bare.json.id_token, undefined);
  assert.equal(bare.json.refresh_token, undefined);
  // The v1 endpoint adds Entra's v1 fields.
  const v1 = await tokenRequest(d, tid, ropc('ann@example.com'), { v1: true });
  assert.equal(v1.status, 200, v1.text);
  assert.equal(v1.json.resource, DATA);
  assert.match(v1.json.expires_on, /^\d+$/);
  // A scope naming no known resource is refused before the password is looked at.
  assertEntraError(await tokenRequest(d, tid, ropc('ann@example.com', PASSWORD, { scope: 'https://example.com/.default openid' })), 400, 'invalid_scope', 70011, 'unknown resource');

  // The user's token calls the data plane by the user's own role.
  await d.setupAccount('demo');
  const chat = (tok) => d.chat('demo', 'chat', null, 'hi', { headers: { authorization: `Bearer ${tok}` } });
  const denied = await chat(j.access_token);
  assert.equal(denied.status, 401, denied.text); // Azure OpenAI's answer for a missing data action
  assert.equal(denied.json.error.code, 'PermissionDenied');
  assert.match(denied.json.error.message, new RegExp(`principal \`${user.id}\``));
  await assign(d, accountPath('demo'), user.id, ROLE.openaiUser, { principalType: 'User' });
  const ok = await chat(j.access_token);
  assert.equal(ok.status, 200, ok.text);

  // Turning it off again refuses the next sign-in.
  await enablePasswordGrant(d, false);
  assertEntraError(await tokenRequest(d, tid, ropc('ann@example.com')), 400, 'unsupported_grant_type', 70003, 'ROPC off again');
});

test('refresh tokens rotate; reusing a spent one revokes the whole family, the newest token included', async (t) => {
  const { d, tid } = await setup(t);
  const user = await createUser(d, 'cy@example.com', 'Cy');
  await enablePasswordGrant(d);
  const first = await tokenRequest(d, tid, ropc('cy@example.com'));
  assert.equal(first.status, 200, first.text);
  const rt1 = first.json.refresh_token;
  const second = await tokenRequest(d, tid, refresh(rt1));
  assert.equal(second.status, 200, second.text);
  const rt2 = second.json.refresh_token;
  assert.notEqual(rt2, rt1, 'a new token on every use');
  assert.equal(claims(second.json.access_token).oid, user.id);
  assert.equal(second.json.scope, SCOPE);
  // Another known resource for the same sign-in.
  const arm = await tokenRequest(d, tid, refresh(rt2, { scope: `${ARM}/.default` }));
  assert.equal(arm.status, 200, arm.text);
  assert.equal(claims(arm.json.access_token).aud, ARM);
  const rt3 = arm.json.refresh_token;
  assertEntraError(await tokenRequest(d, tid, refresh(rt3, { scope: 'https://example.com/.default' })), 400, 'invalid_scope', 70011, 'unknown resource on refresh');

  // rt1 again: reuse. The family goes, so rt3 (never used) stops working too.
  assertEntraError(await tokenRequest(d, tid, refresh(rt1)), 400, 'invalid_grant', 70008, 'reuse');
  assertEntraError(await tokenRequest(d, tid, refresh(rt3)), 400, 'invalid_grant', 50173, 'the newest of a revoked family');
  // Another client cannot redeem a user's token; a made-up one is unknown.
  const app = await createApp(d, 'other-public');
  const pub = await d.admin('PATCH', `/v1.0/applications/${app.id}`, { isFallbackPublicClient: true });
  assert.equal(pub.status, 204, pub.text);
  const fresh = (await tokenRequest(d, tid, ropc('cy@example.com'))).json.refresh_token;
  assertEntraError(await tokenRequest(d, tid, refresh(fresh, { client_id: app.appId })), 400, 'invalid_grant', 70000, 'other client');
  assertEntraError(await tokenRequest(d, tid, refresh('A'.repeat(43))), 400, 'invalid_grant', 9002313, 'unknown');
  // The user disabled: refused; an admin's password reset ends every sign-in.
  let r = await d.admin('PATCH', `/v1.0/users/${user.id}`, { accountEnabled: false });
  assert.equal(r.status, 204, r.text);
  assertEntraError(await tokenRequest(d, tid, refresh(fresh)), 400, 'invalid_grant', 50057, 'disabled');
  r = await d.admin('PATCH', `/v1.0/users/${user.id}`, { accountEnabled: true, passwordProfile: { forceChangePasswordNextSignIn: false, password: `${PASSWORD}-2` } });
  assert.equal(r.status, 204, r.text);
  assertEntraError(await tokenRequest(d, tid, refresh(fresh)), 400, 'invalid_grant', 50173, 'after a password reset');
});

test('revocation (RFC 7009): the family is revoked; unknown tokens answer 200; only the owning client may revoke', async (t) => {
  const { d, tid } = await setup(t);
  await createUser(d, 'di@example.com', 'Di');
  await enablePasswordGrant(d);
  const rt = (await tokenRequest(d, tid, ropc('di@example.com'))).json.refresh_token;
  const rotated = (await tokenRequest(d, tid, refresh(rt))).json.refresh_token;
  const app = await createApp(d, 'other');
  await d.admin('PATCH', `/v1.0/applications/${app.id}`, { isFallbackPublicClient: true });
  let r = await post(d, tid, 'v2.0/revoke', { token: rotated, client_id: app.appId });
  assertEntraError(r, 400, 'unauthorized_client', 70000, 'another client');
  r = await post(d, tid, 'v2.0/revoke', { token: rotated, client_id: AZURE_CLI });
  assert.equal(r.status, 200, r.text);
  assertEntraError(await tokenRequest(d, tid, refresh(rotated)), 400, 'invalid_grant', 50173, 'revoked');
  r = await post(d, tid, 'v2.0/revoke', { token: 'not-a-token', client_id: AZURE_CLI });
  assert.equal(r.status, 200, r.text);
  r = await post(d, tid, 'v2.0/revoke', { client_id: AZURE_CLI });
  assertEntraError(r, 400, 'invalid_request', 900144, 'no token');
});

test('public clients must not present a secret; applications carry Graph redirect URIs and the public-client flag', async (t) => {
  const { d, tid } = await setup(t);
  await createUser(d, 'ed@example.com', 'Ed');
  await enablePasswordGrant(d);
  assertEntraError(await tokenRequest(d, tid, ropc('ed@example.com', PASSWORD, { client_secret: 'x' })), 401, 'invalid_client', 700025, 'secret from a public client');

  // Redirect URIs: https, or http on loopback; no fragment; within the limits.
  const bodies = [
    { web: { redirectUris: ['http://example.com/cb'] } },
    { web: { redirectUris: ['https://example.com/cb#frag'] } },
    { publicClient: { redirectUris: ['ftp://localhost'] } },
    { publicClient: { redirectUris: [`https://example.com/${'a'.repeat(300)}`] } },
    { publicClient: { redirectUris: Array.from({ length: 65 }, (_, i) => `https://example.com/${i}`) } },
    { web: { redirectUris: 'https://example.com' } },
    { isFallbackPublicClient: 'yes' },
  ];
  for (const body of bodies) {
    const r = await d.admin('POST', '/v1.0/applications', { displayName: 'bad', ...body });
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
    assert.equal(r.json.error.code, 'Request_BadRequest');
  }
  const created = await d.admin('POST', '/v1.0/applications', {
    displayName: 'native', isFallbackPublicClient: true,
    publicClient: { redirectUris: ['http://localhost', 'http://127.0.0.1:8400/cb'] },
    web: { redirectUris: ['https://app.example.com/signin-oidc'] },
  });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.isFallbackPublicClient, true);
  assert.deepEqual(created.json.publicClient, { redirectUris: ['http://localhost', 'http://127.0.0.1:8400/cb'] });
  assert.deepEqual(created.json.web, { redirectUris: ['https://app.example.com/signin-oidc'] });
  const patched = await d.admin('PATCH', `/v1.0/applications/${created.json.id}`, { web: { redirectUris: [] }, isFallbackPublicClient: false });
  assert.equal(patched.status, 204, patched.text);
  const got = await d.admin('GET', `/v1.0/applications/${created.json.id}`);
  assert.equal(got.json.isFallbackPublicClient, false);
  assert.deepEqual(got.json.web, { redirectUris: [] });
  assert.deepEqual(got.json.publicClient.redirectUris, ['http://localhost', 'http://127.0.0.1:8400/cb']);
  // A plain app has empty lists and is confidential: without a secret it is refused.
  const plain = await createApp(d, 'plain');
  const p = await d.admin('GET', `/v1.0/applications/${plain.id}`);
  assert.deepEqual([p.json.isFallbackPublicClient, p.json.web, p.json.publicClient], [false, { redirectUris: [] }, { redirectUris: [] }]);
  assertEntraError(await tokenRequest(d, tid, ropc('ed@example.com', PASSWORD, { client_id: plain.appId })), 401, 'invalid_client', 7000218, 'confidential without a secret');
});

test('one refresh token sent twice at once to one SQLite node: exactly one answer carries tokens', async (t) => {
  const { d, tid } = await setup(t);
  await createUser(d, 'fay@example.com', 'Fay');
  await enablePasswordGrant(d);
  for (let round = 0; round < 5; round++) {
    const rt = (await tokenRequest(d, tid, ropc('fay@example.com'))).json.refresh_token;
    const rs = await Promise.all([tokenRequest(d, tid, refresh(rt)), tokenRequest(d, tid, refresh(rt))]);
    assert.deepEqual(rs.map((r) => r.status).sort(), [200, 400], rs.map((r) => r.text).join('\n'));
  }
});

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

test('two nodes on one PostgreSQL race to redeem one refresh token: exactly one wins; the other node then refuses the family', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const tid = await tenantId(a);
  await createUser(a, 'gus@example.com', 'Gus');
  await enablePasswordGrant(a);
  for (let round = 0; round < 5; round++) {
    const first = await tokenRequest(a, tid, ropc('gus@example.com'));
    assert.equal(first.status, 200, first.text);
    const rt = first.json.refresh_token;
    const rs = await Promise.all([tokenRequest(a, tid, refresh(rt)), tokenRequest(b, tid, refresh(rt))]);
    assert.deepEqual(rs.map((r) => r.status).sort(), [200, 400], rs.map((r) => r.text).join('\n'));
    const winner = rs.find((r) => r.status === 200).json.refresh_token;
    // The loser's presentation was a reuse: the winner's new token is revoked on both nodes.
    assertEntraError(await tokenRequest(b, tid, refresh(winner)), 400, 'invalid_grant', 50173, 'family revoked on B');
  }
  // Without a race, B redeems what A issued, and A what B rotated.
  const rt = (await tokenRequest(a, tid, ropc('gus@example.com'))).json.refresh_token;
  const onB = await tokenRequest(b, tid, refresh(rt));
  assert.equal(onB.status, 200, onB.text);
  const onA = await tokenRequest(a, tid, refresh(onB.json.refresh_token));
  assert.equal(onA.status, 200, onA.text);
  assert.match(claims(onA.json.access_token).oid, GUID);
});
