// Two keylessd nodes on one PostgreSQL (started by this file, one database per test):
// a key made on one node works on the other, a key regenerated or a role assignment
// removed on one is refused on the other within a second, and a node with another KEK
// refuses to start. (Outages, kill -9 and store migrate: scaleout-durability.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { ARM_API, Daemon, accountPath, onCleanup } from '../lib/harness.mjs';
import { ROLE, ACTION, asPrincipal, assign, assertAuthzFailed, createApp, deleteAssignment } from '../lib/authz.mjs';
import { PROPAGATION_MS, Postgres, twoNodes, within } from '../lib/pg.mjs';

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

test('a key made on node A works on B; regenerated on B, it is refused on A within 1 s', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const { keys } = await a.setupAccount('shared');
  const r = await b.chat('shared', 'chat', keys.key1, 'from b');
  assert.equal(r.status, 200, r.text);
  assert.equal((await a.chat('shared', 'chat', keys.key1, 'from a')).status, 200);

  const regen = await b.admin('POST', `${accountPath('shared')}/regenerateKey?${ARM_API}`, { keyName: 'Key1' });
  assert.equal(regen.status, 200, regen.text);
  assert.notEqual(regen.json.key1, keys.key1);
  const ms = await within(PROPAGATION_MS, async () => (await a.chat('shared', 'chat', keys.key1)).status === 401,
    'old Key1 on node A');
  t.diagnostic(`old key refused on the other node ${ms} ms after the acknowledgement`);
  const fresh = await a.chat('shared', 'chat', regen.json.key1, 'new key on a');
  assert.equal(fresh.status, 200, fresh.text);
});

test('a role assignment removed on node A is refused on B within 1 s', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  await a.setupAccount('guarded');
  const sp = (await createApp(a, 'reader-app')).servicePrincipalId;
  const acct = accountPath('guarded');
  const ra = await assign(a, acct, sp, ROLE.reader);
  await within(PROPAGATION_MS, async () =>
    (await b.admin('GET', `${acct}?${ARM_API}`, undefined, { headers: asPrincipal(sp) })).status === 200,
  'the new assignment on node B');

  const del = await deleteAssignment(a, acct, ra.name);
  assert.equal(del.status, 200, del.text);
  const ms = await within(PROPAGATION_MS, async () =>
    (await b.admin('GET', `${acct}?${ARM_API}`, undefined, { headers: asPrincipal(sp) })).status === 403,
  'the removal on node B');
  t.diagnostic(`removal in force on the other node ${ms} ms after the acknowledgement`);
  assertAuthzFailed(await b.admin('GET', `${acct}?${ARM_API}`, undefined, { headers: asPrincipal(sp) }), sp,
    ACTION.accountRead, acct, 'GET account on B');
});

test('a node whose KEK does not open the store refuses to start, before serving', async (t) => {
  const { url } = await twoNodes(t, pg);
  const c = new Daemon({ args: ['--store', url], env: { KEYLESS_KEK: randomBytes(32).toString('base64') } });
  onCleanup(t, () => c.cleanup());
  await assert.rejects(c.start({ timeoutMs: 20000 }), /exited \(code 1/);
  const lines = c.stderr.split('\n').filter((l) => l.includes('"kek_mismatch"'));
  assert.equal(lines.length, 1, c.stderr);
  assert.match(lines[0], /does not open the store's sealed values/);
  assert.ok(!c.stderr.includes('"event":"ready"'));
});
