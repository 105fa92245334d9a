// The token endpoint with certificate client assertions (client_assertion_type
// jwt-bearer): what ClientCertificateCredential sends (PS256 + x5t#S256) and RS256 + x5t
// get tokens; a replayed assertion, a wrong aud, an expired one and an unregistered
// certificate are refused with Entra's codes; repeated failed client authentication is
// slowed and then refused with 429 + Retry-After.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon } from '../lib/harness.mjs';
import { createApp, tenantId } from '../lib/authz.mjs';
import { makeCert } from '../lib/certs.mjs';
import { makeAssertion } from '../lib/assertion.mjs';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SCOPE = 'https://cognitiveservices.azure.com/.default';

async function setup(t) {
  const d = await startDaemon(t);
  const tenant = await tenantId(d);
  const disc = await d.request('GET', `/${tenant}/v2.0/.well-known/openid-configuration`);
  assert.equal(disc.status, 200, disc.text);
  const endpoint = disc.json.token_endpoint;
  const app = await createApp(d, 'cert-client');
  const cert = makeCert({ cn: 'cert-client' });
  const r = await d.admin('PATCH', `/v1.0/applications/${app.id}`, { keyCredentials: [{ key: cert.derB64 }] });
  assert.equal(r.status, 204, r.text);
  const path = new URL(endpoint).pathname;
  const token = (form, { headers = {}, from } = {}) => d.request('POST', path, {
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
    localAddress: from,
  });
  const withAssertion = (assertion, extra = {}, from) => token({ client_id: app.appId, scope: SCOPE, grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: assertion, ...extra }, { from });
  return { d, tenant, endpoint, app, cert, token, withAssertion };
}

function assertRefused(r, status, code, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json.error, 'invalid_client', `${what}: ${r.text}`);
  assert.deepEqual(r.json.error_codes, [code], `${what}: ${r.text}`);
  assert.match(r.json.error_description, new RegExp(`^AADSTS${code}: `), what);
}

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

test('certificate assertions: PS256 + x5t#S256 and RS256 + x5t get tokens; each only once; the sign-in log', async (t) => {
  const { d, endpoint, app, cert, withAssertion } = await setup(t);
  const ps = makeAssertion({ cert, clientId: app.appId, aud: endpoint });
  const ok = await withAssertion(ps);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.token_type, 'Bearer');
  const claims = claimsOf(ok.json.access_token);
  assert.equal(claims.appid, app.appId);
  assert.equal(claims.appidacr, '2', 'a certificate credential');
  assert.equal(claims.oid, app.servicePrincipalId);

  const rs = await withAssertion(makeAssertion({ cert, clientId: app.appId, aud: endpoint, alg: 'RS256', x5c: true }));
  assert.equal(rs.status, 200, rs.text);

  // The same assertion again: refused, and it does not become valid later either.
  assertRefused(await withAssertion(ps), 401, 50013, 'replayed assertion');

  // The sign-in log names the credential type and the refusal (written by its own
  // thread: wait for all three rows), and never holds an assertion.
  let rows = [];
  for (const deadline = Date.now() + 10000; rows.length < 3 && Date.now() < deadline;) {
    rows = (await d.admin('GET', '/keyless/signIns')).json.value;
    if (rows.length < 3) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(rows.length, 3, JSON.stringify(rows));
  assert.deepEqual(rows.map((x) => x.credentialType).sort(), Array(3).fill('client_assertion_certificate'));
  const refused = rows.find((x) => x.status === 'failure');
  assert.equal(refused.errorCode, 50013);
  assert.ok(!JSON.stringify(rows).includes(ps.split('.')[2]), 'no assertion in the log');
});

test('certificate assertions: wrong aud, expired, unregistered certificate, wrong iss, bad signature', async (t) => {
  const { endpoint, app, cert, withAssertion } = await setup(t);
  const other = makeCert({ cn: 'not-registered' });
  const now = Math.floor(Date.now() / 1000);
  const good = async (what) => {
    const ok = await withAssertion(makeAssertion({ cert, clientId: app.appId, aud: endpoint }));
    assert.equal(ok.status, 200, `${what}: ${ok.text}`);
  };
  // Each refusal is followed by a success: a success from this address starts its count
  // of failures again, so the throttle (tested below) stays out of the way.
  await good('first');
  const cases = [
    [makeAssertion({ cert, clientId: app.appId, aud: 'https://login.microsoftonline.com/x/oauth2/v2.0/token' }), 700023, 'wrong aud'],
    [makeAssertion({ cert, clientId: app.appId, aud: endpoint, now: now - 3600 }), 700024, 'expired'],
    [makeAssertion({ cert, clientId: app.appId, aud: endpoint, lifetime: 3600 }), 700024, 'valid for an hour'],
    [makeAssertion({ cert: other, clientId: app.appId, aud: endpoint }), 700027, 'unregistered certificate'],
    [makeAssertion({ cert, clientId: app.appId, aud: endpoint, signWith: other.keyPem }), 700027, 'signed by another key'],
    [makeAssertion({ cert, clientId: app.appId, aud: endpoint, alg: 'RS256', header: { x5c: [other.derB64] } }), 700027, 'x5c of another certificate'],
    [makeAssertion({ cert, clientId: app.appId, aud: endpoint, claims: { iss: 'someone-else' } }), 700021, 'iss not the client'],
    [makeAssertion({ cert, clientId: app.appId, aud: endpoint, claims: { jti: undefined } }), 50027, 'no jti'],
    ['not.a.jwt', 50027, 'malformed'],
  ];
  for (const [assertion, code, what] of cases) {
    assertRefused(await withAssertion(assertion), 401, code, what);
    await good(`after ${what}`);
  }
});

test('throttling: repeated failed client authentication ends in 429 with Retry-After', async (t) => {
  const { endpoint, app, cert, withAssertion } = await setup(t);
  const other = makeCert({ cn: 'attacker' });
  let r;
  let refusedAt = -1;
  for (let i = 0; i < 40; i++) {
    r = await withAssertion(makeAssertion({ cert: other, clientId: app.appId, aud: endpoint }));
    if (r.status === 429) {
      refusedAt = i;
      break;
    }
    assert.equal(r.status, 401, `attempt ${i}: ${r.text}`);
  }
  assert.ok(refusedAt >= 5, `throttled after ${refusedAt} failures: backoff starts after 5`);
  const retry = Number(r.headers['retry-after']);
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 300, `Retry-After: ${r.headers['retry-after']}`);
  // A correct assertion from this address is refused meanwhile too (the address and
  // the client id are both throttled); it is never told which part was wrong.
  const good = await withAssertion(makeAssertion({ cert, clientId: app.appId, aud: endpoint }));
  assert.equal(good.status, 429, good.text);
});

test('throttling: others failing for a client id never lock its owner out of an address it has used', async (t) => {
  const { endpoint, app, cert, withAssertion, token } = await setup(t);
  const other = makeCert({ cn: 'attacker' });
  const good = () => makeAssertion({ cert, clientId: app.appId, aud: endpoint });
  const first = await withAssertion(good(), {}, '127.0.0.1');
  assert.equal(first.status, 200, first.text);
  // Someone at another address fails for this client id until refused, with certificates
  // and with secrets.
  let refused = false;
  for (let i = 0; i < 30 && !refused; i++) {
    const r = i % 2
      ? await withAssertion(makeAssertion({ cert: other, clientId: app.appId, aud: endpoint }), {}, '127.0.0.2')
      : await token({ client_id: app.appId, scope: SCOPE, grant_type: 'client_credentials', client_secret: 'guess' }, { from: '127.0.0.2' });
    refused = r.status === 429;
    if (!refused) assert.equal(r.status, 401, r.text);
  }
  assert.ok(refused, 'the attacker was never throttled');
  // The owner, from its usual address, is served; a correct assertion from an address
  // that never succeeded is refused while the client id is locked.
  const owner = await withAssertion(good(), {}, '127.0.0.1');
  assert.equal(owner.status, 200, owner.text);
  const fresh = await withAssertion(good(), {}, '127.0.0.3');
  assert.equal(fresh.status, 429, fresh.text);
  assert.ok(Number(fresh.headers['retry-after']) >= 1, fresh.headers['retry-after']);
  // An unknown client id is a failure too (it is throttled like any other).
  const ghost = '6f1f3c3e-6c1b-4b7e-9d55-0a0d2a4c9e11';
  let last;
  for (let i = 0; i < 8; i++) last = await token({ client_id: ghost, scope: SCOPE, grant_type: 'client_credentials', client_secret: 'x' }, { from: '127.0.0.4' });
  assert.equal(last.status, 429, last.text);
});
