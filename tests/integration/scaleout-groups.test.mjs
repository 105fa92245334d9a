// Two keylessd nodes on one PostgreSQL (started by this file): a role given to a group on
// node A reaches the group's members on node B, and a member taken out of the group on A
// is refused on B within the propagation bound. A membership change is logged as a change
// of everything, so the other node rebuilds in full: this is that path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { ARM_API, accountPath } from '../lib/harness.mjs';
import { ROLE, ACTION, asPrincipal, assign, assertAuthzFailed, createApp } from '../lib/authz.mjs';
import { PROPAGATION_MS, Postgres, twoNodes, within } from '../lib/pg.mjs';

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

test('a group role given on node A reaches its member on B; the member taken out on A is refused on B within 1 s', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  await a.setupAccount('grouped');
  const sp = (await createApp(a, 'member-app')).servicePrincipalId;
  const acct = accountPath('grouped');
  const g = await a.admin('POST', '/v1.0/groups', { displayName: 'readers', mailNickname: 'readers', mailEnabled: false, securityEnabled: true });
  assert.equal(g.status, 201, g.text);
  const add = await a.admin('POST', `/v1.0/groups/${g.json.id}/members/$ref`, { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${sp}` });
  assert.equal(add.status, 204, add.text);
  await assign(a, acct, g.json.id, ROLE.reader, { principalType: 'Group' });
  const read = () => b.admin('GET', `${acct}?${ARM_API}`, undefined, { headers: asPrincipal(sp) });
  await within(PROPAGATION_MS, async () => (await read()).status === 200, 'the group role on node B');

  const del = await a.admin('DELETE', `/v1.0/groups/${g.json.id}/members/${sp}/$ref`);
  assert.equal(del.status, 204, del.text);
  const ms = await within(PROPAGATION_MS, async () => (await read()).status === 403, 'the removal on node B');
  t.diagnostic(`removal from the group in force on the other node ${ms} ms after the acknowledgement`);
  assertAuthzFailed(await read(), sp, ACTION.accountRead, acct, 'GET account on B');
});
