// Managed identities on two nodes sharing one PostgreSQL: what one node creates (a
// user-assigned identity, a site with a system-assigned identity) the other shows and
// guards (Graph refuses a credential for it within PROPAGATION_MS, which needs the other
// node's snapshot); a site deleted on the other node takes its identity and that
// identity's role assignments in the same transaction, and the user-assigned one survives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { RG, SUB } from '../lib/harness.mjs';
import { AUTH_API, ROLE, assign, raPath, rgScope } from '../lib/authz.mjs';
import { PROPAGATION_MS, Postgres, twoNodes, within } from '../lib/pg.mjs';

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

const MI_API = 'api-version=2023-01-31';
const WEB_API = 'api-version=2024-04-01';
const rgPath = `/subscriptions/${SUB}/resourceGroups/${RG}`;
const uamiPath = (name) => `${rgPath}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
const sitePath = (name) => `${rgPath}/providers/Microsoft.Web/sites/${name}`;

test('identities made on one node are shown and guarded on the other; a delete there cascades', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const u = await a.admin('PUT', `${uamiPath('shared')}?${MI_API}`, { location: 'x' });
  assert.equal(u.status, 201, u.text);
  const site = await a.admin('PUT', `${sitePath('web')}?${WEB_API}`, {
    location: 'x',
    identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u.json.id]: {} } },
  });
  assert.equal(site.status, 201, site.text);
  const sys = site.json.identity.principalId;
  const grant = await assign(a, rgScope(), sys, ROLE.openaiUser);

  const onB = await b.admin('GET', `${sitePath('web')}?${WEB_API}`);
  assert.equal(onB.status, 200, onB.text);
  assert.deepEqual(onB.json.identity, site.json.identity);

  // B refuses a credential for the identity once its snapshot knows it.
  await within(PROPAGATION_MS, async () => {
    const r = await b.admin('POST', `/v1.0/applications/${u.json.properties.clientId}/addPassword`, {});
    return r.status === 400 && r.json.error.code === 'Request_BadRequest';
  }, 'B refuses addPassword on the managed identity');

  const del = await b.admin('DELETE', `${sitePath('web')}?${WEB_API}`);
  assert.equal(del.status, 200, del.text);
  assert.equal((await a.admin('GET', `/v1.0/servicePrincipals/${sys}`)).status, 404, 'the system-assigned identity is gone');
  assert.equal((await a.admin('GET', `${raPath(rgScope(), grant.name)}?${AUTH_API}`)).status, 404, 'with its grant');
  assert.equal((await a.admin('GET', `${uamiPath('shared')}?${MI_API}`)).status, 200, 'the user-assigned one stays');
});
