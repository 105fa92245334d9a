// Network rules on two keylessd nodes sharing one PostgreSQL: a rule set on node A is
// in force on node B within a second, and lifting it on B opens A again. Each step waits
// for the state it needs (a node learns of another's change from the store's
// notification, not before), never assumes it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { ARM_API, accountPath } from '../lib/harness.mjs';
import { PROPAGATION_MS, Postgres, twoNodes, within } from '../lib/pg.mjs';

const FIREWALL = { error: { code: '403', message: 'Access denied due to Virtual Network/Firewall rules.' } };
const PUBLIC_OFF = { error: { code: '403', message: 'Public access is disabled. Please configure private endpoint.' } };

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

test('a rule set on node A refuses on node B within 1 s; lifted on B, A serves again', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const { keys } = await a.setupAccount('shared');
  const outside = { localAddress: '127.0.0.3' };
  // B must know the account and its keys before the rule is the thing being measured.
  await within(5000, async () => (await b.chat('shared', 'chat', keys.key1, 'x', outside)).status === 200,
    'the account on node B');

  const p = await a.admin('PATCH', `${accountPath('shared')}?${ARM_API}`,
    { properties: { networkAcls: { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.2' }] } } });
  assert.equal(p.status, 200, p.text);
  const ms = await within(PROPAGATION_MS, async () => (await b.chat('shared', 'chat', keys.key1, 'x', outside)).status === 403,
    'the firewall on node B');
  t.diagnostic(`rule in force on the other node ${ms} ms after the acknowledgement`);
  const r = await b.chat('shared', 'chat', keys.key1, 'x', outside);
  assert.deepEqual([r.status, r.json], [403, FIREWALL]);
  const inside = await b.chat('shared', 'chat', keys.key1, 'x', { localAddress: '127.0.0.2' });
  assert.equal(inside.status, 200, inside.text);
  // On A it was in force before the PATCH was answered.
  assert.deepEqual((await a.chat('shared', 'chat', keys.key1, 'x', outside)).json, FIREWALL);

  // publicNetworkAccess from B, seen on A.
  const q = await b.admin('PATCH', `${accountPath('shared')}?${ARM_API}`, { properties: { publicNetworkAccess: 'Disabled' } });
  assert.equal(q.status, 200, q.text);
  await within(PROPAGATION_MS, async () => (await a.chat('shared', 'chat', keys.key1, 'x', { localAddress: '127.0.0.2' })).status === 403,
    'publicNetworkAccess Disabled on node A');
  assert.deepEqual((await a.chat('shared', 'chat', keys.key1, 'x', { localAddress: '127.0.0.2' })).json, PUBLIC_OFF);

  // Lifted on B: A serves the outside caller again.
  const l = await b.admin('PATCH', `${accountPath('shared')}?${ARM_API}`,
    { properties: { publicNetworkAccess: 'Enabled', networkAcls: null } });
  assert.equal(l.status, 200, l.text);
  await within(PROPAGATION_MS, async () => (await a.chat('shared', 'chat', keys.key1, 'x', outside)).status === 200,
    'the lifted rules on node A');
});
