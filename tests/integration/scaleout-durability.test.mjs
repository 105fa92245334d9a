// Two keylessd nodes on one PostgreSQL (started by this file, one database per test):
// both keep serving through a database outage (writes 503, /healthz not ready) and
// catch up after it; a node killed during writes loses no acknowledged one; and an
// installation on SQLite moved with keyless store migrate keeps its keys and role
// assignments on PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { ARM_API, accountPath, onCleanup, runCli, startDaemon } from '../lib/harness.mjs';
import { AUTH_API, ROLE, asPrincipal, assign, createApp, graphErrorBody } from '../lib/authz.mjs';
import { PROPAGATION_MS, Postgres, twoNodes, within } from '../lib/pg.mjs';
import { makeAssertion } from '../lib/assertion.mjs';
import { makeCert } from '../lib/certs.mjs';
import { assertOAuthError, deviceCode, poll } from '../lib/devicecode.mjs';

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

test('with PostgreSQL down both nodes serve keys, answer writes 503 and are not ready; then recover', async (t) => {
  const { a, b } = await twoNodes(t, pg);
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

test('with PostgreSQL down the control plane answers reads 503 too, as ARM does; then serves them again', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const A = accountPath('reads');
  const { keys } = await a.setupAccount('reads');
  await within(PROPAGATION_MS, async () => (await b.chat('reads', 'chat', keys.key1)).status === 200, 'key on B');
  const reads = [
    ['GET', `${A}?${ARM_API}`],
    ['GET', `${A}/deployments?${ARM_API}`],
    ['GET', `${A}/deployments/chat?${ARM_API}`],
    ['POST', `${A}/listKeys?${ARM_API}`],
    ['GET', `${A}/providers/Microsoft.Authorization/roleAssignments?${AUTH_API}`],
    ['GET', `/subscriptions/${A.split('/')[2]}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`],
    ['GET', `${A}/providers/Microsoft.Authorization/roleDefinitions?${AUTH_API}`],
    ['GET', `${A}/providers/Microsoft.Authorization/roleDefinitions/${ROLE.reader}?${AUTH_API}`],
    ['GET', `${A}/providers/Microsoft.Authorization/permissions?${AUTH_API}`],
    ['GET', '/v1.0/organization'],
    ['GET', '/v1.0/applications'],
    ['GET', '/v1.0/servicePrincipals'],
  ];
  for (const [method, path] of reads)
    assert.equal((await a.admin(method, path)).status, 200, `${method} ${path} before the outage`);

  await pg.pause();
  let paused = true;
  onCleanup(t, async () => {
    if (paused) await pg.resume();
  });
  for (const d of [a, b]) {
    await within(2 * PROPAGATION_MS, async () => (await d.admin('GET', '/healthz')).status === 503, 'not ready');
    for (const [method, path] of reads) {
      const r = await d.admin(method, path);
      assert.equal(r.status, 503, `${method} ${path}: ${r.status} ${r.text}`);
      assert.equal(r.headers['retry-after'], '5', `${method} ${path}`);
      // Graph's routes answer Graph's shape: the same error with its innerError.
      assert.deepEqual(path.startsWith('/v1.0/') ? graphErrorBody(r) : r.json, {
        error: {
          code: 'ServiceUnavailable',
          message: 'The service is temporarily unavailable: its database cannot be reached. Retry the request later.',
        },
      }, `${method} ${path}`);
    }
    // The data plane keeps serving from the snapshot.
    assert.equal((await d.chat('reads', 'chat', keys.key2, 'still')).status, 200);
  }

  await pg.resume();
  paused = false;
  for (const d of [a, b]) {
    await within(5000, async () => (await d.admin('GET', '/healthz')).status === 200, 'ready again');
    for (const [method, path] of reads)
      assert.equal((await d.admin(method, path)).status, 200, `${method} ${path} after the outage`);
  }
});

test('kill -9 of a node during 500 writes loses no acknowledged write', async (t) => {
  const { a, b } = await twoNodes(t, pg);
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


test('keyless store migrate moves a populated SQLite store to PostgreSQL; keys, roles and live sign-ins keep working', async (t) => {
  const kek = randomBytes(32).toString('base64');
  const env = { KEYLESS_KEK: kek };
  // One public URL before and after, so that an assertion's audience names both.
  const PUBLIC = 'https://keyless.test';
  const old = await startDaemon(t, { env, args: ['--public-url', PUBLIC] });
  const { keys } = await old.setupAccount('moved');
  const sp = (await createApp(old, 'moved-reader')).servicePrincipalId;
  const acct = accountPath('moved');
  await assign(old, acct, sp, ROLE.reader);
  const tenant = (await old.admin('GET', '/v1.0/organization')).json.value[0].id;
  // Network rules and key usage move too.
  const acls = { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.1' }], virtualNetworkRules: [] };
  const p = await old.admin('PATCH', `${acct}?${ARM_API}`, { properties: { networkAcls: acls } });
  assert.equal(p.status, 200, p.text);
  assert.equal((await old.chat('moved', 'chat', keys.key1, 'used before the move')).status, 200);
  // A client assertion spent before the move, and a device code still waiting for its
  // user: the replay cache and the sign-in move with the store.
  const certApp = await createApp(old, 'moved-cert');
  const cert = makeCert({ cn: 'moved-cert' });
  const up = await old.admin('PATCH', `/v1.0/applications/${certApp.id}`, { keyCredentials: [{ key: cert.derB64 }] });
  assert.equal(up.status, 204, up.text);
  const spent = makeAssertion({ cert, clientId: certApp.appId, aud: `${PUBLIC}/${tenant}/oauth2/v2.0/token` });
  const withAssertion = (d) => d.request('POST', `/${tenant}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: certApp.appId, scope: 'https://cognitiveservices.azure.com/.default', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: spent }).toString(),
  });
  const first = await withAssertion(old);
  assert.equal(first.status, 200, first.text);
  const dc = await deviceCode(old, tenant);
  const stopped = await old.stop();
  assert.equal(stopped.code, 0);

  const url = await pg.createDatabase();
  const m = await runCli(['store', 'migrate', '--from', `sqlite:${old.dataDir}/keyless.db`, '--to', url]);
  assert.equal(m.code, 0, `${m.stdout}\n${m.stderr}`);
  assert.match(m.stdout, /^copied \d+ rows from sqlite to postgres\n$/);

  const node = await startDaemon(t, { args: ['--store', url, '--public-url', PUBLIC], env });
  const chat = await node.chat('moved', 'chat', keys.key1, 'after the move');
  assert.equal(chat.status, 200, chat.text);
  assert.equal((await node.chat('moved', 'chat', keys.key2)).status, 200);
  assert.deepEqual((await node.listKeys('moved')).json, keys);
  const read = await node.admin('GET', `${acct}?${ARM_API}`, undefined, { headers: asPrincipal(sp) });
  assert.equal(read.status, 200, read.text);
  assert.equal((await node.admin('GET', '/v1.0/organization')).json.value[0].id, tenant);
  assert.deepEqual((await node.admin('GET', `${acct}?${ARM_API}`)).json.properties.networkAcls, acls);
  assert.equal((await node.chat('moved', 'chat', keys.key1, 'x', { localAddress: '127.0.0.3' })).status, 403);
  const usage = (await node.admin('GET', `${acct}/listKeyUsage?${ARM_API}`)).json.value;
  assert.match(usage.find((u) => u.keyName === 'Key1').lastUsed || '', /^\d{4}-\d\d-\d\dT00:00:00/);
  const replay = await withAssertion(node);
  assert.equal(replay.status, 401, replay.text);
  assert.deepEqual(replay.json.error_codes, [50013], replay.text);
  assertOAuthError(await poll(node, tenant, dc.device_code), 'authorization_pending', 70016, 'a device code from before the move');
  // New rows get new keys past the copied ones.
  const more = await node.putDeployment('moved', 'later', {});
  assert.equal(more.status, 201, more.text);

  // A second migration into the now populated database is refused, and writes nothing.
  const again = await runCli(['store', 'migrate', '--from', `sqlite:${old.dataDir}/keyless.db`, '--to', url]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /keyless: store migrate failed \(the destination store is not empty\); nothing was written/);
});
