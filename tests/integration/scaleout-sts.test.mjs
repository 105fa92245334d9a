// The token service on two nodes sharing one PostgreSQL: nodes started at the same
// moment make one signing key between them; a token issued by one node is accepted by
// the other; an emergency rotation (--revoke-previous) on one node refuses the old
// tokens on the other within PROPAGATION_MS; a client secret added on one node signs in
// on the other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { ROLE, assign, createApp, tenantId } from '../lib/authz.mjs';
import { PROPAGATION_MS, Postgres, within } from '../lib/pg.mjs';

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
const kidOf = (tok) => JSON.parse(Buffer.from(tok.split('.')[0], 'base64url').toString()).kid;

async function token(d, tid, app, secret) {
  const r = await d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'client_credentials', client_id: app.appId, client_secret: secret, scope: 'https://cognitiveservices.azure.com/.default' }),
  });
  assert.equal(r.status, 200, r.text);
  return r.json.access_token;
}

test('two nodes started at once make one signing key; tokens of either work on both; a revoke on A is refused on B', async (t) => {
  const url = await pg.createDatabase();
  const env = { KEYLESS_KEK: randomBytes(32).toString('base64') };
  const [a, b] = await Promise.all([
    startDaemon(t, { args: ['--store', url], env }),
    startDaemon(t, { args: ['--store', url], env }),
  ]);
  const la = await a.admin('GET', '/keyless/signingKeys');
  const lb = await b.admin('GET', '/keyless/signingKeys');
  assert.equal(la.json.value.length, 1, la.text);
  assert.deepEqual(lb.json.value.map((k) => k.kid), la.json.value.map((k) => k.kid));

  await a.setupAccount('shared');
  const tid = await tenantId(a);
  const app = await createApp(a, 'scaleout-sts');
  const pw = await a.admin('POST', `/v1.0/applications/${app.id}/addPassword`, {});
  assert.equal(pw.status, 200, pw.text);
  await assign(a, accountPath('shared'), app.servicePrincipalId, ROLE.openaiUser);
  const chat = (d, tok) => d.chat('shared', 'chat', null, 'hi', { headers: { authorization: `Bearer ${tok}` } });
  // The secret and the grant reach B through the store's change notification.
  let fromB;
  await within(PROPAGATION_MS, async () => {
    const r = await b.request('POST', `/${tid}/oauth2/v2.0/token`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ grant_type: 'client_credentials', client_id: app.appId, client_secret: pw.json.secretText, scope: 'https://cognitiveservices.azure.com/.default' }),
    });
    fromB = r.json?.access_token;
    return r.status === 200 && (await chat(b, fromB)).status === 200;
  }, 'the secret and the role on node B');
  const fromA = await token(a, tid, app, pw.json.secretText);
  assert.equal((await chat(b, fromA)).status, 200);
  assert.equal((await chat(a, fromB)).status, 200);

  const rot = await a.admin('POST', '/keyless/signingKeys/rotate', { revokePrevious: true });
  assert.equal(rot.status, 200, rot.text);
  const ms = await within(PROPAGATION_MS, async () => (await chat(b, fromA)).status === 401, 'the revoked key on node B');
  t.diagnostic(`revoked key refused on the other node ${ms} ms after the acknowledgement`);
  assert.equal((await chat(b, fromB)).status, 401);
  const fresh = await token(b, tid, app, pw.json.secretText);
  assert.equal(kidOf(fresh), rot.json.kid);
  assert.equal((await chat(a, fresh)).status, 200);
});
