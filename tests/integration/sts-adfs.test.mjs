// The ADFS-style authority of the default tenant (/adfs/...): its discovery document names
// endpoints under /adfs only and the tenant's v1 issuer; its token endpoint signs the same
// v1 tokens as the tenant's own (the gateway takes them), a client assertion's aud is the
// /adfs endpoint's URL; there are no v2.0 token or key routes under /adfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon } from '../lib/harness.mjs';
import { createApp, tenantId } from '../lib/authz.mjs';
import { makeCert } from '../lib/certs.mjs';
import { makeAssertion } from '../lib/assertion.mjs';

const DATA = 'https://cognitiveservices.azure.com';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

async function setup(t) {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const app = await createApp(d, 'adfs-app');
  const pw = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: {} });
  assert.equal(pw.status, 200, pw.text);
  const token = (fields, path = '/adfs/oauth2/token') => d.request('POST', path, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  return { d, tid, app, secret: pw.json.secretText, token, base: `https://${d.publicHost}:${d.publicPort}` };
}

test('/adfs discovery: endpoints under /adfs, the tenant\'s v1 issuer, its keys; any case, and under v2.0 as MSAL asks for /ADFS', async (t) => {
  const { d, tid, base } = await setup(t);
  for (const p of ['/adfs/.well-known/openid-configuration', '/ADFS/v2.0/.well-known/openid-configuration']) {
    const r = await d.request('GET', p);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    assert.equal(r.json.token_endpoint, `${base}/adfs/oauth2/token`);
    assert.equal(r.json.authorization_endpoint, `${base}/adfs/oauth2/authorize`);
    assert.equal(r.json.jwks_uri, `${base}/adfs/discovery/keys`);
    assert.equal(r.json.issuer, `https://sts.windows.net/${tid}/`);
    assert.equal(r.json.access_token_issuer, r.json.issuer);
    assert.deepEqual(r.json.grant_types_supported, ['client_credentials']);
  }
  const keys = await d.request('GET', '/adfs/discovery/keys');
  const tenantKeys = await d.request('GET', `/${tid}/discovery/keys`);
  assert.equal(keys.status, 200, keys.text);
  assert.deepEqual(keys.json, tenantKeys.json);
  for (const p of ['/adfs/discovery/v2.0/keys']) assert.equal((await d.request('GET', p)).status, 404, p);
  assert.equal((await d.request('POST', '/adfs/oauth2/v2.0/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).status, 404);
});

test('/adfs/oauth2/token: a v1 token of the default tenant by secret (scope or resource, Graph too) and by an assertion for the /adfs endpoint', async (t) => {
  const { d, tid, app, secret, token, base } = await setup(t);
  const cc = { grant_type: 'client_credentials', client_id: app.appId, client_secret: secret };
  let r = await token({ ...cc, scope: `${DATA}/.default`, client_info: '1' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.token_type, 'Bearer');
  assert.equal(r.json.resource, DATA);
  let c = claimsOf(r.json.access_token);
  assert.equal(c.iss, `https://sts.windows.net/${tid}/`);
  assert.equal(c.tid, tid);
  assert.equal(c.aud, DATA);
  assert.equal(c.appidacr, '1');
  r = await token({ ...cc, resource: 'https://graph.microsoft.com' });
  assert.equal(r.status, 200, r.text);
  assert.equal(claimsOf(r.json.access_token).aud, 'https://graph.microsoft.com');
  r = await token({ ...cc, client_secret: 'wrong', scope: `${DATA}/.default` });
  assert.equal(r.status, 401, r.text);
  assert.deepEqual(r.json.error_codes, [7000215]);

  const cert = makeCert({ cn: 'adfs-cert' });
  const p = await d.admin('PATCH', `/v1.0/applications/${app.id}`, { keyCredentials: [{ key: cert.derB64 }] });
  assert.equal(p.status, 204, p.text);
  const withAssertion = (aud) => token({ grant_type: 'client_credentials', client_id: app.appId, scope: `${DATA}/.default`, client_assertion_type: JWT_BEARER, client_assertion: makeAssertion({ cert, clientId: app.appId, aud, alg: 'RS256' }) });
  r = await withAssertion(`${base}/${tid}/oauth2/token`);
  assert.equal(r.status, 401, r.text);
  assert.deepEqual(r.json.error_codes, [700023], 'aud must be the /adfs endpoint posted to');
  r = await withAssertion(`${base}/adfs/oauth2/token`);
  assert.equal(r.status, 200, r.text);
  c = claimsOf(r.json.access_token);
  assert.equal(c.appidacr, '2');
  assert.equal(c.iss, `https://sts.windows.net/${tid}/`);
});
