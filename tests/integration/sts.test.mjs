// The token service against the real daemon: client secrets through Graph's
// addPassword/removePassword, OIDC discovery and JWKS, the token endpoint's success and
// every error it names (Entra's bodies and AADSTS codes), the v1 claims of the tokens it
// signs, bearer tokens on the data plane (RBAC, disabled principals, cached tokens),
// and signing key rotation (old tokens stay valid, new ones carry the new kid; with
// --revoke-previous the old ones are refused at once).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { accountPath, sleep, startDaemon } from '../lib/harness.mjs';
import { GUID, ISO, ROLE, assign, createApp, setSpEnabled, tenantId } from '../lib/authz.mjs';

const DATA = 'https://cognitiveservices.azure.com';
const TS = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/;
const TOKEN_401 = { statusCode: 401, message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.' };

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
export function decodeJwt(tok) {
  const [h, p] = tok.split('.');
  return { header: b64json(h), payload: b64json(p) };
}

async function addSecret(d, app, passwordCredential = {}) {
  const r = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential });
  assert.equal(r.status, 200, `addPassword: ${r.status} ${r.text}`);
  return r.json;
}

const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

function tokenRequest(d, tenant, fields, { headers = {}, v1 = false, query = '' } = {}) {
  return d.request('POST', `/${tenant}/oauth2/${v1 ? '' : 'v2.0/'}token${query}`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8', ...headers },
    body: form(fields),
  });
}

const cc = (clientId, secret, scope = `${DATA}/.default`) => ({ client_id: clientId, scope, grant_type: 'client_credentials', client_secret: secret });

function assertEntraError(r, status, error, code, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, what);
  assert.equal(r.headers['cache-control'], 'no-store, no-cache', what);
  const j = r.json;
  assert.equal(j.error, error, what);
  assert.deepEqual(j.error_codes, [code], what);
  assert.match(j.error_description, new RegExp(`^AADSTS${code}: .+\\r\\nTrace ID: ${j.trace_id}\\r\\nCorrelation ID: ${j.correlation_id}\\r\\nTimestamp: ${j.timestamp}$`, 's'), what);
  assert.match(j.timestamp, TS, what);
  assert.match(j.trace_id, GUID, what);
  assert.match(j.correlation_id, GUID, what);
  return j;
}

async function setup(t, opts = {}) {
  const d = await startDaemon(t, opts);
  const tid = await tenantId(d);
  const app = await createApp(d, 'sts-app');
  const cred = await addSecret(d, app, { displayName: 'ci' });
  await d.setupAccount('demo');
  return { d, tid, app, secret: cred.secretText, cred };
}

async function getToken(d, tid, app, secret, scope) {
  const r = await tokenRequest(d, tid, cc(app.appId, secret, scope));
  assert.equal(r.status, 200, r.text);
  return r.json.access_token;
}

test('addPassword answers a passwordCredential with the secret once; lists never show it; removePassword deletes it', async (t) => {
  const { d, app, secret, cred } = await setup(t);
  assert.match(cred.keyId, GUID);
  assert.equal(cred.displayName, 'ci');
  assert.equal(secret.length, 40);
  assert.equal(cred.hint, secret.slice(0, 3));
  assert.match(cred.startDateTime, ISO);
  const days = (Date.parse(cred.endDateTime) - Date.parse(cred.startDateTime)) / 86400000;
  assert.equal(Math.round(days), 180, 'default expiry 180 days');
  const got = await d.admin('GET', `/v1.0/applications/${app.id}`);
  assert.equal(got.status, 200);
  assert.equal(got.json.passwordCredentials.length, 1);
  assert.equal(got.json.passwordCredentials[0].keyId, cred.keyId);
  assert.equal(got.json.passwordCredentials[0].secretText, null, 'as Graph: secretText null');
  assert.ok(!got.text.includes(secret), 'the secret is never shown again');
  const cli = d.cli(['app', 'secret', 'list', 'sts-app']);
  const out = await cli;
  assert.equal(out.code, 0, out.stderr);
  assert.ok(out.stdout.includes(cred.keyId) && !out.stdout.includes(secret), out.stdout);
  // Two years at most; an end in the past is refused.
  const far = new Date(Date.now() + 3 * 365 * 86400000).toISOString();
  let r = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: { endDateTime: far } });
  assert.equal(r.status, 400, r.text);
  // 16 at most.
  for (let i = 1; i < 16; i++) await addSecret(d, app);
  r = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, {});
  assert.equal(r.status, 400, r.text);
  r = await d.admin('POST', `/v1.0/applications/${app.id}/removePassword`, { keyId: cred.keyId });
  assert.equal(r.status, 204, r.text);
  r = await tokenRequest(d, await tenantId(d), cc(app.appId, secret));
  assertEntraError(r, 401, 'invalid_client', 7000215, 'a removed secret');
});

test('OIDC discovery v2 and v1, by tenant id or name, and the JWKS of the signing keys', async (t) => {
  const { d, tid } = await setup(t);
  const base = `https://${d.publicHost}:${d.publicPort}`;
  for (const tenant of [tid, tid.toUpperCase(), 'keyless']) {
    const r = await d.request('GET', `/${tenant}/v2.0/.well-known/openid-configuration`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.token_endpoint, `${base}/${tid}/oauth2/v2.0/token`);
    assert.equal(r.json.authorization_endpoint, `${base}/${tid}/oauth2/v2.0/authorize`);
    assert.equal(r.json.jwks_uri, `${base}/${tid}/discovery/v2.0/keys`);
    assert.equal(r.json.issuer, `${base}/${tid}/v2.0`);
  }
  const v1 = await d.request('GET', `/${tid}/.well-known/openid-configuration`);
  assert.equal(v1.status, 200, v1.text);
  assert.equal(v1.json.issuer, `https://sts.windows.net/${tid}/`);
  assert.equal(v1.json.token_endpoint, `${base}/${tid}/oauth2/token`);
  for (const p of [`/${tid}/discovery/v2.0/keys`, `/${tid}/discovery/keys`]) {
    const k = await d.request('GET', p);
    assert.equal(k.status, 200, k.text);
    assert.equal(k.json.keys.length, 1);
    const jwk = k.json.keys[0];
    assert.equal(jwk.kty, 'RSA');
    assert.equal(jwk.use, 'sig');
    assert.equal(jwk.e, 'AQAB');
    assert.equal(Buffer.from(jwk.n, 'base64url').length, 256, 'RSA-2048');
    assert.equal(jwk.x5t, jwk.kid);
  }
  const bad = await d.request('GET', '/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration');
  assertEntraError(bad, 400, 'invalid_tenant', 90002, 'unknown tenant');
});

test('client_credentials with a secret: a v1 token for the data plane, by post or basic, MSAL telemetry tolerated', async (t) => {
  const { d, tid, app, secret } = await setup(t);
  const corr = '0f0e0d0c-0b0a-4009-8807-060504030201';
  const fields = {
    client_id: app.appId, scope: `${DATA}/.default`, grant_type: 'client_credentials',
    'x-client-SKU': 'msal.js.node', 'x-client-VER': '5.6.0', 'x-client-OS': 'linux', 'x-client-CPU': 'x64',
    'x-ms-lib-capability': 'retry-after, h429', 'x-client-current-telemetry': '5|771,2,,,|,',
    'x-client-last-telemetry': '5|0|||0,0', 'client-request-id': corr, client_secret: secret,
  };
  const before = Math.floor(Date.now() / 1000);
  const r = await tokenRequest(d, tid, fields, { query: `?client-request-id=${corr}` });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['cache-control'], 'no-store, no-cache');
  assert.equal(r.headers['client-request-id'], corr);
  assert.deepEqual(Object.keys(r.json).sort(), ['access_token', 'expires_in', 'ext_expires_in', 'token_type']);
  assert.equal(r.json.token_type, 'Bearer');
  assert.equal(r.json.expires_in, 3600);
  const { header, payload } = decodeJwt(r.json.access_token);
  assert.deepEqual(Object.keys(header), ['typ', 'alg', 'kid', 'x5t']);
  assert.equal(header.alg, 'RS256');
  assert.equal(header.x5t, header.kid);
  const keys = await d.request('GET', `/${tid}/discovery/v2.0/keys`);
  assert.equal(header.kid, keys.json.keys[0].kid);
  assert.deepEqual(Object.keys(payload), ['aud', 'iss', 'iat', 'nbf', 'exp', 'appid', 'appidacr', 'idp', 'idtyp', 'oid', 'sub', 'tid', 'uti', 'ver']);
  assert.equal(payload.aud, DATA);
  assert.equal(payload.iss, `https://sts.windows.net/${tid}/`);
  assert.equal(payload.idp, payload.iss);
  assert.equal(payload.appid, app.appId);
  assert.equal(payload.appidacr, '1');
  assert.equal(payload.idtyp, 'app');
  assert.equal(payload.oid, app.servicePrincipalId);
  assert.equal(payload.sub, payload.oid);
  assert.equal(payload.tid, tid);
  assert.equal(payload.ver, '1.0');
  assert.ok(payload.iat >= before && payload.nbf === payload.iat && payload.exp === payload.iat + 3600);
  // client_secret_basic, the tenant by name, and the v1 endpoint with resource=.
  const basic = Buffer.from(`${encodeURIComponent(app.appId)}:${encodeURIComponent(secret)}`).toString('base64');
  const b = await tokenRequest(d, 'keyless', { grant_type: 'client_credentials', scope: 'https://management.azure.com//.default' }, { headers: { authorization: `Basic ${basic}` } });
  assert.equal(b.status, 200, b.text);
  assert.equal(decodeJwt(b.json.access_token).payload.aud, 'https://management.azure.com/');
  const v1 = await tokenRequest(d, tid, { grant_type: 'client_credentials', client_id: app.appId, client_secret: secret, resource: DATA }, { v1: true });
  assert.equal(v1.status, 200, v1.text);
  assert.equal(v1.json.resource, DATA);
  assert.match(v1.json.expires_on, /^\d+$/);
});

test('the token endpoint refuses with Entra\'s errors', async (t) => {
  const { d, tid, app, secret } = await setup(t);
  const cases = [
    ['wrong secret', tid, cc(app.appId, `${secret.slice(0, -1)}x`), 401, 'invalid_client', 7000215],
    ['the key id instead of the secret', tid, cc(app.appId, app.id), 401, 'invalid_client', 7000215],
    ['unknown client', tid, cc('6a1b2c3d-0000-4000-8000-000000000000', secret), 400, 'unauthorized_client', 700016],
    ['a service principal object id as client', tid, cc(app.servicePrincipalId, secret), 400, 'unauthorized_client', 700016],
    ['unknown tenant', '99999999-9999-4999-8999-999999999999', cc(app.appId, secret), 400, 'invalid_request', 90002],
    ['unknown tenant name', 'contoso', cc(app.appId, secret), 400, 'invalid_request', 90002],
    ['scope without /.default', tid, cc(app.appId, secret, DATA), 400, 'invalid_scope', 70011],
    ['two scopes', tid, cc(app.appId, secret, `${DATA}/.default openid`), 400, 'invalid_scope', 70011],
    ['unknown resource', tid, cc(app.appId, secret, 'https://vault.azure.net/.default'), 400, 'invalid_resource', 500011],
    ['no scope', tid, { client_id: app.appId, client_secret: secret, grant_type: 'client_credentials' }, 400, 'invalid_request', 900144],
    ['no grant_type', tid, { client_id: app.appId, client_secret: secret, scope: `${DATA}/.default` }, 400, 'invalid_request', 900144],
    ['password grant', tid, { ...cc(app.appId, secret), grant_type: 'password' }, 400, 'unsupported_grant_type', 70003],
    ['no client_id', tid, { client_secret: secret, scope: `${DATA}/.default`, grant_type: 'client_credentials' }, 400, 'invalid_request', 900144],
    ['no credential', tid, { client_id: app.appId, scope: `${DATA}/.default`, grant_type: 'client_credentials' }, 401, 'invalid_client', 7000218],
  ];
  for (const [what, tenant, fields, status, error, code] of cases) {
    const r = await tokenRequest(d, tenant, fields);
    const j = assertEntraError(r, status, error, code, what);
    assert.ok(!r.text.includes(secret), `${what}: the secret is never echoed`);
    if (code === 7000215) assert.match(j.error_description, new RegExp(`app '${app.appId}'`));
  }
  const get = await d.request('GET', `/${tid}/oauth2/v2.0/token`);
  assertEntraError(get, 405, 'invalid_request', 900561, 'GET on the token endpoint');
  const dup = await d.request('POST', `/${tid}/oauth2/v2.0/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `${form(cc(app.appId, secret))}&scope=x` });
  assertEntraError(dup, 400, 'invalid_request', 90015, 'a repeated parameter');
  // The client-request-id becomes the correlation id.
  const corr = 'a1b2c3d4-0000-4000-8000-00000000abcd';
  const c = await tokenRequest(d, tid, cc(app.appId, 'nope'), { query: `?client-request-id=${corr}` });
  assert.equal(assertEntraError(c, 401, 'invalid_client', 7000215).correlation_id, corr);
  // A disabled application.
  const p = await setSpEnabled(d, app.servicePrincipalId, false);
  assert.ok(p.status === 204 || p.status === 200, p.text);
  assertEntraError(await tokenRequest(d, tid, cc(app.appId, secret)), 400, 'unauthorized_client', 7000112, 'disabled');
});

test('an expired client secret is AADSTS7000222', async (t) => {
  const { d, tid, app } = await setup(t);
  const end = new Date(Date.now() + 2000);
  const s = await addSecret(d, app, { endDateTime: end.toISOString() });
  assert.equal((await tokenRequest(d, tid, cc(app.appId, s.secretText))).status, 200);
  // A lower bound on time: the secret's end has passed once the clock shows it.
  while (Date.now() < Math.ceil(end.getTime() / 1000) * 1000 + 1100) await sleep(200);
  assertEntraError(await tokenRequest(d, tid, cc(app.appId, s.secretText)), 401, 'invalid_client', 7000222, 'expired');
});

test('bearer tokens on the data plane: 401 PermissionDenied without a role, 200 with it, refused once disabled', async (t) => {
  const { d, tid, app, secret } = await setup(t);
  const tok = await getToken(d, tid, app, secret);
  const bearer = { authorization: `Bearer ${tok}` };
  let r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'PermissionDenied');
  assert.match(r.json.error.message, new RegExp(`principal \`${app.servicePrincipalId}\` lacks the required data action`));
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer });
  assert.equal(r.status, 200, r.text);
  r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer }); // from the cache
  assert.equal(r.status, 200, r.text);
  // Every data-plane route takes the token: the v1 API and the listings too.
  r = await d.request('POST', '/accounts/demo/openai/v1/chat/completions', { headers: bearer, body: { model: 'chat', messages: [{ role: 'user', content: 'v1' }] } });
  assert.equal(r.status, 200, r.text);
  r = await d.request('GET', '/accounts/demo/openai/v1/models', { headers: bearer });
  assert.equal(r.status, 200, r.text);
  r = await d.request('GET', '/accounts/demo/openai/deployments?api-version=2022-12-01', { headers: bearer });
  assert.equal(r.status, 200, r.text);
  // A management token is not a data-plane token.
  const mgmt = await getToken(d, tid, app, secret, 'https://management.azure.com/.default');
  r = await d.chat('demo', 'chat', null, 'hi', { headers: { authorization: `Bearer ${mgmt}` } });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, TOKEN_401);
  // Disabling the application refuses its cached token on the next request.
  const p = await setSpEnabled(d, app.servicePrincipalId, false);
  assert.ok(p.status === 204 || p.status === 200, p.text);
  r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, TOKEN_401);
  // Garbage and tampering.
  const [h, pl, sig] = tok.split('.');
  const forged = Buffer.from(JSON.stringify({ ...decodeJwt(tok).payload, oid: '00000000-0000-4000-8000-000000000000' })).toString('base64url');
  for (const bad of ['x', `${h}.${forged}.${sig}`, `${h}.${pl}.${sig.slice(0, -2)}AA`, `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${pl}.`]) {
    r = await d.chat('demo', 'chat', null, 'hi', { headers: { authorization: `Bearer ${bad}` } });
    assert.equal(r.status, 401, bad);
    assert.deepEqual(r.json, TOKEN_401);
  }
});

test('rotation: old tokens stay valid, new tokens carry the new kid; --revoke-previous refuses old tokens at once', async (t) => {
  const { d, tid, app, secret } = await setup(t);
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  const t1 = await getToken(d, tid, app, secret);
  const kid1 = decodeJwt(t1).header.kid;
  const chat = (tok) => d.chat('demo', 'chat', null, 'hi', { headers: { authorization: `Bearer ${tok}` } });
  assert.equal((await chat(t1)).status, 200);
  let out = await d.cli(['signing-key', 'rotate']);
  assert.equal(out.code, 0, out.stderr);
  const t2 = await getToken(d, tid, app, secret);
  const kid2 = decodeJwt(t2).header.kid;
  assert.notEqual(kid2, kid1);
  assert.equal((await chat(t1)).status, 200, 'a token of the previous key is valid until it expires');
  assert.equal((await chat(t2)).status, 200);
  const keys = await d.request('GET', `/${tid}/discovery/v2.0/keys`);
  assert.deepEqual(keys.json.keys.map((k) => k.kid).sort(), [kid1, kid2].sort(), 'both keys published');
  const list = await d.cli(['--output', 'json', 'signing-key', 'list']);
  const byKid = Object.fromEntries(JSON.parse(list.stdout).value.map((k) => [k.kid, k]));
  assert.equal(byKid[kid1].status, 'retiring');
  assert.equal(byKid[kid2].status, 'active');
  out = await d.cli(['signing-key', 'rotate', '--revoke-previous']);
  assert.equal(out.code, 0, out.stderr);
  for (const old of [t1, t2]) {
    const r = await chat(old);
    assert.equal(r.status, 401, 'revoked at once');
    assert.deepEqual(r.json, TOKEN_401);
  }
  const t3 = await getToken(d, tid, app, secret);
  assert.equal((await chat(t3)).status, 200);
  const k3 = await d.request('GET', `/${tid}/discovery/v2.0/keys`);
  assert.deepEqual(k3.json.keys.map((k) => k.kid), [decodeJwt(t3).header.kid]);
  // The ring survives a restart (the private key is sealed in the store).
  await d.restart();
  assert.equal((await chat(t3)).status, 200);
  assert.equal(decodeJwt(await getToken(d, tid, app, secret)).header.kid, decodeJwt(t3).header.kid);
});

test('the sign-in log records every token issued or refused, never the secret; keyless signin list filters', async (t) => {
  const { d, tid, app, secret } = await setup(t);
  const other = await createApp(d, 'other-app');
  const otherPw = await addSecret(d, other);
  assert.equal((await tokenRequest(d, tid, cc(app.appId, secret))).status, 200);
  assert.equal((await tokenRequest(d, tid, cc(app.appId, 'wrong-secret-value'))).status, 401);
  assert.equal((await tokenRequest(d, tid, cc(other.appId, otherPw.secretText))).status, 200);
  // Written by the log's own thread: wait until all three are there.
  let rows;
  const deadline = Date.now() + 10000;
  for (;;) {
    const r = await d.admin('GET', '/keyless/signIns');
    assert.equal(r.status, 200, r.text);
    rows = r.json.value;
    if (rows.length >= 3 || Date.now() > deadline) break;
    await sleep(50);
  }
  assert.equal(rows.length, 3, JSON.stringify(rows));
  const refused = rows.find((x) => x.status === 'failure');
  assert.equal(refused.appId, app.appId);
  assert.equal(refused.servicePrincipalId, app.servicePrincipalId);
  assert.equal(refused.credentialType, 'client_secret');
  assert.equal(refused.errorCode, 7000215);
  assert.equal(refused.ipAddress, '127.0.0.1');
  assert.equal(refused.resource, DATA);
  assert.match(refused.failureReason, /^Invalid client secret provided/);
  const ok = rows.filter((x) => x.status === 'success');
  assert.equal(ok.length, 2);
  assert.equal(ok.every((x) => x.errorCode === 0), true);

  const failed = await d.cli(['--output', 'json', 'signin', 'list', '--failed', '--client', app.appId]);
  assert.equal(failed.code, 0, failed.stderr);
  assert.deepEqual(JSON.parse(failed.stdout).value.map((x) => x.errorCode), [7000215]);
  const mine = await d.cli(['--output', 'json', 'signin', 'list', '--client', other.appId]);
  assert.deepEqual(JSON.parse(mine.stdout).value.map((x) => x.appId), [other.appId]);
  const table = await d.cli(['signin', 'list']);
  assert.equal(table.code, 0, table.stderr);
  for (const text of [table.stdout, failed.stdout, mine.stdout, JSON.stringify(rows)]) {
    for (const s of [secret, otherPw.secretText, 'wrong-secret-value']) assert.ok(!text.includes(s), 'no secret in the log');
  }
});

test('--signing-key-alg ES256 signs with P-256 and the gateway verifies it; --token-lifetime-min sets expires_in', async (t) => {
  const { d, tid, app, secret } = await setup(t, { args: ['--signing-key-alg', 'ES256', '--token-lifetime-min', '90'] });
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  const r = await tokenRequest(d, tid, cc(app.appId, secret));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.expires_in, 5400);
  const { header, payload } = decodeJwt(r.json.access_token);
  assert.equal(header.alg, 'ES256');
  assert.equal(payload.exp - payload.iat, 5400);
  const keys = await d.request('GET', `/${tid}/discovery/v2.0/keys`);
  assert.equal(keys.json.keys[0].kty, 'EC');
  assert.equal(keys.json.keys[0].crv, 'P-256');
  const c = await d.chat('demo', 'chat', null, 'hi', { headers: { authorization: `Bearer ${r.json.access_token}` } });
  assert.equal(c.status, 200, c.text);
});
