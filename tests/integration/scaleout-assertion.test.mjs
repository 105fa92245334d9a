// Client assertions on two nodes sharing one PostgreSQL (behind one public URL, as behind
// a load balancer): a certificate registered on A signs in on B, and an assertion
// accepted by one node is refused as replayed (AADSTS50013) by the other, however the
// requests are spread.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { startDaemon } from '../lib/harness.mjs';
import { createApp, tenantId } from '../lib/authz.mjs';
import { makeAssertion } from '../lib/assertion.mjs';
import { makeCert } from '../lib/certs.mjs';
import { PROPAGATION_MS, Postgres, within } from '../lib/pg.mjs';

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

const PUBLIC = 'https://keyless.test';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

test('an assertion spent on one node is refused on the other', async (t) => {
  const url = await pg.createDatabase();
  const env = { KEYLESS_KEK: randomBytes(32).toString('base64') };
  const args = ['--store', url, '--public-url', PUBLIC];
  const [a, b] = await Promise.all([startDaemon(t, { args, env }), startDaemon(t, { args, env })]);
  const tid = await tenantId(a);
  const endpoint = `${PUBLIC}/${tid}/oauth2/v2.0/token`;
  const disc = await b.request('GET', `/${tid}/v2.0/.well-known/openid-configuration`);
  assert.equal(disc.json.token_endpoint, endpoint, 'both nodes name one token endpoint');
  const app = await createApp(a, 'scaleout-cert');
  const cert = makeCert({ cn: 'scaleout-cert' });
  const up = await a.admin('PATCH', `/v1.0/applications/${app.id}`, { keyCredentials: [{ key: cert.derB64 }] });
  assert.equal(up.status, 204, up.text);
  const send = (d, assertion) => d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, scope: 'https://cognitiveservices.azure.com/.default', client_assertion_type: JWT_BEARER, client_assertion: assertion }).toString(),
  });
  // The certificate reaches B through the store's change notification. Polling with
  // assertions would count failures against the client, so wait instead for a later
  // change to show in B's snapshot (a service principal found there by its app id).
  const marker = await createApp(a, 'scaleout-marker');
  await within(PROPAGATION_MS, async () => (await b.admin('GET', `/v1.0/servicePrincipals/${marker.appId}`)).status === 200, 'B saw the change');
  const viaB = await send(b, makeAssertion({ cert, clientId: app.appId, aud: endpoint }));
  assert.equal(viaB.status, 200, viaB.text);
  for (const [first, second] of [[a, b], [b, a]]) {
    const x = makeAssertion({ cert, clientId: app.appId, aud: endpoint });
    const ok = await send(first, x);
    assert.equal(ok.status, 200, ok.text);
    const again = await send(second, x);
    assert.equal(again.status, 401, again.text);
    assert.deepEqual(again.json.error_codes, [50013], again.text);
  }
  // Both at once: exactly one wins.
  const y = makeAssertion({ cert, clientId: app.appId, aud: endpoint });
  const rs = await Promise.all([send(a, y), send(b, y), send(a, y), send(b, y)]);
  assert.deepEqual(rs.map((r) => r.status).sort(), [200, 401, 401, 401], rs.map((r) => r.text).join('\n'));
});
