// Two keylessd nodes on one PostgreSQL (started by this file, one database per test):
// a key made on one node works on the other, a key regenerated or a role assignment
// removed on one is refused on the other within a second, and a node with another KEK
// refuses to start; a node that cannot build another node's change fails
// closed until a build succeeds. (Outages, kill -9 and store migrate: scaleout-durability.test.mjs.)
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
  // B learns of A's writes by NOTIFY or its 500 ms poll (docs/scale-out.md: the other
  // node serves them within a second); A answered once its own snapshot held them.
  let r;
  const seen = await within(PROPAGATION_MS, async () => (r = await b.chat('shared', 'chat', keys.key1, 'from b')).status === 200,
    'the new account, deployment and key on node B');
  t.diagnostic(`new key served on the other node ${seen} ms after the acknowledgement`);
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

const PENDING = {
  error: {
    code: 'ServiceUnavailable',
    message:
      'A recent change to this resource has not been applied yet; requests to it are refused until it is. Try again shortly.',
  },
};

test('a node that cannot build another node\'s change fences everything (503) until a build succeeds', async (t) => {
  const { a, b, url } = await twoNodes(t, pg);
  const demo = await a.setupAccount('demo');
  const other = await a.setupAccount('other');
  await a.setupAccount('third');
  await within(PROPAGATION_MS, async () => (await b.chat('other', 'chat', other.keys.key1, 'b')).status === 200,
    'the accounts on node B');
  assert.equal((await b.chat('demo', 'chat', demo.keys.key1, 'b')).status, 200);

  // Two accounts of one name: no snapshot can be built from this store. Node B learns
  // of it through A's next change, whose scopes it cannot know.
  const bFenced = b.waitForLog((j) => j.event === 'snapshot_build_failed' && j.fenced === '/', 10000);
  pg.sql(url, "UPDATE accounts SET name = 'other' WHERE name = 'third'");
  const regen = await a.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName: 'Key1' });
  assert.equal(regen.status, 200, regen.text);
  await bFenced;

  // Fail closed on B: the old key, and every other account too, answer 503.
  for (const [acct, key, what] of [['demo', demo.keys.key1, 'old Key1'], ['other', other.keys.key1, 'other account']]) {
    const r = await b.chat(acct, 'chat', key, 'fenced');
    assert.equal(r.status, 503, `${what} on B while fenced: ${r.status} ${r.text}`);
    assert.deepEqual(r.json, PENDING, `${what} on B while fenced`);
  }

  // Repaired from outside (no new generation): B's watcher retries and lifts the fence.
  const lifted = b.waitForLog((j) => j.event === 'snapshot_fence_lifted' && j.by === 'store_watcher', 10000);
  pg.sql(url, "UPDATE accounts SET name = 'third' WHERE name_lower = 'third'");
  await lifted;
  const old = await b.chat('demo', 'chat', demo.keys.key1, 'old');
  assert.equal(old.status, 401, old.text);
  const fresh = await b.chat('demo', 'chat', regen.json.key1, 'new');
  assert.equal(fresh.status, 200, fresh.text);
  assert.equal((await b.chat('other', 'chat', other.keys.key1, 'other')).status, 200);
});
