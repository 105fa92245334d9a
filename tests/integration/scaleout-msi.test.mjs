// Launch secrets on two nodes sharing one PostgreSQL: a secret made on node A (keyless
// run's PUT) is honoured by B's App-Service-style endpoint within PROPAGATION_MS, with
// no database read per request (it is in B's snapshot), and revoking it on A is refused
// on B within the same bound. Both nodes carry the site's identity the same way: the
// token B hands out names it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { PROPAGATION_MS, Postgres, twoNodes, within } from '../lib/pg.mjs';
import { SITE_API, claims, msiGet, putSite, siteId } from '../lib/identity-endpoints.mjs';

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

test('a launch secret made on A works on B; revoked on A, refused on B', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const site = await putSite(a, 'web', true);
  const id = crypto.randomUUID();
  const path = `${siteId('web')}/identityHeaders/${id}?${SITE_API}`;
  const l = await a.admin('PUT', path);
  assert.equal(l.status, 201, l.text);
  const header = l.json.properties.identityHeader;
  let tok;
  await within(PROPAGATION_MS, async () => {
    const r = await msiGet(b, header);
    tok = r.status === 200 ? r.json.access_token : undefined;
    return tok !== undefined;
  }, 'the launch secret on B');
  assert.equal(claims(tok).oid, site.identity.principalId);
  assert.equal((await a.admin('DELETE', path)).status, 200);
  await within(PROPAGATION_MS, async () => (await msiGet(b, header)).status === 401, 'the revocation on B');
});
