// Two keylessd nodes on one PostgreSQL (started by this file, one database per test):
// a key made on one node works on the other, a key regenerated or a role assignment
// removed on one is refused on the other within a second, both nodes keep serving
// through a database outage (writes 503, /healthz not ready) and catch up after it, a
// node killed during writes loses no acknowledged one, and a node with another KEK
// refuses to start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { ARM_API, Daemon, accountPath, onCleanup, startDaemon } from '../lib/harness.mjs';
import { ROLE, ACTION, asPrincipal, assign, assertAuthzFailed, createApp, deleteAssignment } from '../lib/authz.mjs';
import { Postgres } from '../lib/pg.mjs';

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

const PROPAGATION_MS = 1000;

// Two nodes sharing one fresh database and one KEK.
async function twoNodes(t) {
  const url = await pg.createDatabase();
  const env = { KEYLESS_KEK: randomBytes(32).toString('base64') };
  const a = await startDaemon(t, { args: ['--store', url], env });
  const b = await startDaemon(t, { args: ['--store', url], env });
  return { a, b, url, env };
}

// Polls fn (an async check returning true when the expected state is in force) until it
// holds; returns the milliseconds it took, or fails after limitMs.
async function within(limitMs, fn, what) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > limitMs) assert.fail(`${what}: not in force within ${limitMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

test('a key made on node A works on B; regenerated on B, it is refused on A within 1 s', async (t) => {
  const { a, b } = await twoNodes(t);
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
  const { a, b } = await twoNodes(t);
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

test('with PostgreSQL down both nodes serve keys, answer writes 503 and are not ready; then recover', async (t) => {
  const { a, b } = await twoNodes(t);
  const { keys } = await a.setupAccount('outage');
  await within(PROPAGATION_MS, async () => (await b.chat('outage', 'chat', keys.key1)).status === 200, 'key on B');

  await pg.pause();
  let paused = true;
  onCleanup(t, async () => {
    if (paused) await pg.resume();
  });
  for (const d of [a, b]) {
    const r = await d.chat('outage', 'chat', keys.key2, 'still here');
    assert.equal(r.status, 200, r.text);
    const w = await d.putDeployment('outage', 'during', {});
    assert.equal(w.status, 503, w.text);
    assert.equal(w.headers['retry-after'], '5');
    assert.deepEqual(w.json, {
      error: {
        code: 'ServiceUnavailable',
        message: 'The service is temporarily unavailable: its database cannot be reached. Retry the request later.',
      },
    });
    await within(2 * PROPAGATION_MS, async () => (await d.admin('GET', '/healthz')).status === 503, 'not ready');
    assert.deepEqual((await d.admin('GET', '/healthz')).json, { status: 'not_ready', reason: 'store_unreachable' });
  }

  await pg.resume();
  paused = false;
  for (const d of [a, b])
    await within(5000, async () => (await d.admin('GET', '/healthz')).status === 200, 'ready again');
  const w = await b.putDeployment('outage', 'after', {});
  assert.equal(w.status, 201, w.text);
  await within(PROPAGATION_MS, async () => (await a.chat('outage', 'after', keys.key1)).status === 200,
    'a deployment made on B after the outage, on A');
});

test('kill -9 of a node during 500 writes loses no acknowledged write', async (t) => {
  const { a, b } = await twoNodes(t);
  await a.setupAccount('durable', { deployments: {} });
  const total = 500;
  const killAfter = 50 + Math.floor(Math.random() * 400);
  const acked = [];
  let killed = null;
  for (let i = 0; i < total; i++) {
    const name = `dep-${String(i).padStart(3, '0')}`;
    if (i === killAfter)
      killed = new Promise((r) => setTimeout(r, Math.floor(Math.random() * 4))).then(() => a.kill9());
    try {
      const r = await a.putDeployment('durable', name, { properties: { model: { format: 'OpenAI', name: `m${i}`, version: '1' } } });
      if (r.status !== 201) break;
      acked.push(name);
    } catch {
      break;
    }
  }
  await killed;
  assert.ok(acked.length >= killAfter && acked.length < total, `${acked.length} acknowledged, kill at ${killAfter}`);
  const list = await b.admin('GET', `${accountPath('durable')}/deployments?${ARM_API}`);
  assert.equal(list.status, 200, list.text);
  const present = new Set(list.json.value.map((x) => x.name));
  assert.deepEqual(acked.filter((n) => !present.has(n)), [], 'acknowledged deployments missing on node B');
  assert.ok(present.size <= acked.length + 1, `${present.size} present, ${acked.length} acknowledged`);
});

test('a node whose KEK does not open the store refuses to start, before serving', async (t) => {
  const { url } = await twoNodes(t);
  const c = new Daemon({ args: ['--store', url], env: { KEYLESS_KEK: randomBytes(32).toString('base64') } });
  onCleanup(t, () => c.cleanup());
  await assert.rejects(c.start({ timeoutMs: 20000 }), /exited \(code 1/);
  const lines = c.stderr.split('\n').filter((l) => l.includes('"kek_mismatch"'));
  assert.equal(lines.length, 1, c.stderr);
  assert.match(lines[0], /does not open the store's sealed values/);
  assert.ok(!c.stderr.includes('"event":"ready"'));
});
