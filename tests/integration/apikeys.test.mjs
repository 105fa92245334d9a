// API keys end to end: accounts and deployments made with the CLI, Key1/Key2 rotation,
// disableLocalAuth, routing by Host, cross-account keys, persistence across restarts
// and across kill -9 in the middle of control-plane writes. Keys never reach the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  AOAI_API,
  ARM_API,
  ERR,
  accountEndpoints,
  accountPath,
  findSecrets,
  startDaemon,
  writeStormAndCrash,
} from '../lib/harness.mjs';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function assertNoKeysInLog(d, keys) {
  const leaked = findSecrets(d.stderr, keys);
  assert.deepEqual(leaked, [], 'a key value appears in the daemon log');
}

async function cliOk(d, args, env) {
  const r = await d.cli(args, { env });
  assert.equal(r.code, 0, `keyless ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

// Account "demo" with echo deployment "chat", made with the CLI; returns the keys.
async function cliSetup(d, account = 'demo', deployment = 'chat') {
  await cliOk(d, ['-o', 'json', 'account', 'create', account]);
  await cliOk(d, ['-o', 'json', 'deployment', 'create', account, deployment]);
  const k = await cliOk(d, ['-o', 'json', 'keys', 'list', account]);
  assert.ok(k.json, `keys list -o json printed no JSON: ${k.stdout}`);
  assert.equal(typeof k.json.key1, 'string');
  assert.equal(typeof k.json.key2, 'string');
  return k.json;
}

function assertEcho(r, content, model = 'chat') {
  assert.equal(r.status, 200, `expected 200, got ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  assert.equal(r.json.object, 'chat.completion');
  assert.match(r.json.id, /^chatcmpl-[0-9a-f]+$/);
  assert.equal(r.json.model, model);
  assert.equal(r.json.choices.length, 1);
  assert.equal(r.json.choices[0].index, 0);
  assert.equal(r.json.choices[0].message.role, 'assistant');
  assert.equal(r.json.choices[0].message.content, content);
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  const words = content.split(/\s+/).filter(Boolean).length;
  assert.deepEqual(r.json.usage, { prompt_tokens: words, completion_tokens: words, total_tokens: 2 * words });
}

test('CLI-made account and deployment serve chat with Key1 and Key2', async (t) => {
  const d = await startDaemon(t);
  const keys = await cliSetup(d);
  assert.notEqual(keys.key1, keys.key2);
  // The CLI and the ARM API agree on the keys.
  const arm = await d.listKeys('demo');
  assert.equal(arm.status, 200);
  assert.deepEqual(arm.json, { key1: keys.key1, key2: keys.key2 });

  const r1 = await d.chat('demo', 'chat', keys.key1, 'hello keyless world');
  assertEcho(r1, 'hello keyless world');
  assert.match(r1.headers['x-ms-request-id'] || '', GUID);
  assert.match(r1.headers['apim-request-id'] || '', GUID);
  const r2 = await d.chat('demo', 'chat', keys.key2, 'second key');
  assertEcho(r2, 'second key');

  // The access log has one line for the request, without the query string or the key.
  const id = r1.headers['x-ms-request-id'];
  const lines = d.stderr.split('\n').filter((l) => l.includes(id));
  assert.equal(lines.length, 1, `log lines naming request ${id}: ${lines.join('\n')}`);
  const line = JSON.parse(lines[0]);
  assert.equal(line.status, 200);
  assert.equal(line.path, '/accounts/demo/openai/deployments/chat/chat/completions');
  assert.ok(!lines[0].includes('api-version'), 'the logged path carries the query string');
  assertNoKeysInLog(d, [keys.key1, keys.key2]);
});

// Each worker caches its own snapshot reference: a revoked key is probed on 2 x workers
// fresh connections (the harness keeps no connection alive), not once.
const WORKERS = 3;
async function assertKeyRefusedEverywhere(d, key, what) {
  for (let i = 0; i < 2 * WORKERS; i++) {
    const r = await d.chat('demo', 'chat', key, `probe ${i}`);
    assert.equal(r.status, 401, `${what}, probe ${i}: ${r.status} ${r.text}`);
    assert.match(r.headers['content-type'] || '', /^application\/json/);
    assert.deepEqual(r.json, ERR.invalidKey, `${what}, probe ${i}`);
  }
}

test('regenerating Key1 revokes the old Key1 at once and leaves Key2 working', async (t) => {
  const d = await startDaemon(t, { args: ['--workers', String(WORKERS)] });
  const keys = await cliSetup(d);
  assertEcho(await d.chat('demo', 'chat', keys.key1, 'before'), 'before');

  const regen = await cliOk(d, ['-o', 'json', 'keys', 'regenerate', 'demo', 'key1']);
  assert.ok(regen.json, `keys regenerate printed no JSON: ${regen.stdout}`);
  const newKey1 = regen.json.key1;
  assert.equal(typeof newKey1, 'string');
  assert.notEqual(newKey1, keys.key1);
  assert.equal(regen.json.key2, keys.key2);

  await assertKeyRefusedEverywhere(d, keys.key1, 'old Key1');
  assertEcho(await d.chat('demo', 'chat', keys.key2, 'key two'), 'key two');
  assertEcho(await d.chat('demo', 'chat', newKey1, 'new key one'), 'new key one');

  // Key2 through the ARM API, keyName case-insensitive.
  const r = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName: 'KEY2' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.key1, newKey1);
  assert.notEqual(r.json.key2, keys.key2);
  await assertKeyRefusedEverywhere(d, keys.key2, 'old Key2');
  assertEcho(await d.chat('demo', 'chat', r.json.key2, 'fresh'), 'fresh');
  assertNoKeysInLog(d, [keys.key1, keys.key2, newKey1, r.json.key2]);
});

test('disableLocalAuth turns keys off (403) and listKeys/regenerateKey refuse (400)', async (t) => {
  const d = await startDaemon(t);
  const keys = await cliSetup(d);
  assertEcho(await d.chat('demo', 'chat', keys.key1, 'on'), 'on');

  await cliOk(d, ['-o', 'json', 'account', 'update', 'demo', '--disable-local-auth', 'true']);
  const g = await d.admin('GET', `${accountPath('demo')}?${ARM_API}`);
  assert.equal(g.json.properties.disableLocalAuth, true);

  for (const key of [keys.key1, keys.key2]) {
    const r = await d.chat('demo', 'chat', key, 'off');
    assert.equal(r.status, 403, `${r.status} ${r.text}`);
    assert.match(r.headers['content-type'] || '', /^application\/json/);
    assert.deepEqual(r.json, ERR.keyDisabled);
  }
  const lk = await d.listKeys('demo');
  assert.equal(lk.status, 400);
  assert.deepEqual(lk.json, ERR.listKeysDisabled);
  const rg = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName: 'Key1' });
  assert.equal(rg.status, 400);
  assert.deepEqual(rg.json, ERR.listKeysDisabled);
  const cliKeys = await d.cli(['-o', 'json', 'keys', 'list', 'demo']);
  assert.equal(cliKeys.code, 1, `keys list while disabled exited ${cliKeys.code}: ${cliKeys.stdout} ${cliKeys.stderr}`);
  assert.ok(!cliKeys.stdout.includes(keys.key1) && !cliKeys.stderr.includes(keys.key1));

  // Turning it back on restores the same keys.
  await cliOk(d, ['-o', 'json', 'account', 'update', 'demo', '--disable-local-auth', 'false']);
  assertEcho(await d.chat('demo', 'chat', keys.key1, 'back on'), 'back on');
  assertNoKeysInLog(d, [keys.key1, keys.key2]);
});

test('accounts are reached by Host {account}.openai.localhost', async (t) => {
  const d = await startDaemon(t);
  const keys = await cliSetup(d);
  const path = `/openai/deployments/chat/chat/completions?${AOAI_API}`;
  const body = { messages: [{ role: 'user', content: 'by host' }] };
  for (const host of ['demo.openai.localhost', `demo.openai.localhost:${d.publicPort}`, 'DEMO.OpenAI.localhost']) {
    const r = await d.request('POST', path, { headers: { host, 'api-key': keys.key1 }, body });
    assertEcho(r, 'by host');
  }
  const other = await d.request('POST', path, { headers: { host: 'nosuch.openai.localhost', 'api-key': keys.key1 }, body });
  assert.equal(other.status, 404, `${other.status} ${other.text}`);
  assert.deepEqual(other.json, ERR.accountNotFound);
  // Unknown deployment on a known account.
  const nod = await d.request('POST', `/openai/deployments/nope/chat/completions?${AOAI_API}`, { headers: { host: 'demo.openai.localhost', 'api-key': keys.key1 }, body });
  assert.equal(nod.status, 404);
  assert.deepEqual(nod.json, ERR.deploymentNotFound);
});

test('data-plane api-version: every published version is served, others are 400 before the key is looked at', async (t) => {
  const d = await startDaemon(t);
  const keys = await cliSetup(d);
  const body = { messages: [{ role: 'user', content: 'v' }] };
  const chat = (query, key = keys.key1) =>
    d.request('POST', `/accounts/demo/openai/deployments/chat/chat/completions${query}`, { headers: { 'api-key': key }, body });
  // The GA versions and a preview the openai package's users pin.
  for (const v of ['2022-12-01', '2023-05-15', '2024-02-01', '2024-06-01', '2024-10-21', '2025-04-01-preview'])
    assertEcho(await chat(`?api-version=${v}`), 'v');
  for (const v of ['2024-10-22', 'preview', 'latest', '2024-10-21-preview', '2099-01-01']) {
    for (const key of [keys.key1, 'not-a-key']) {
      const r = await chat(`?api-version=${v}`, key);
      assert.equal(r.status, 400, `${v}: ${r.status} ${r.text}`);
      assert.deepEqual(r.json, ERR.apiVersionUnsupported, v);
    }
  }
  // Absent is Azure's 404, as before.
  const none = await chat('');
  assert.equal(none.status, 404, none.text);
  assert.deepEqual(none.json, ERR.accountNotFound);
  // v1 takes none, or "preview"; a dated version is not v1's.
  const v1 = (query) => d.request('POST', `/accounts/demo/openai/v1/chat/completions${query}`, { headers: { 'api-key': keys.key1 }, body: { ...body, model: 'chat' } });
  assertEcho(await v1(''), 'v');
  assertEcho(await v1('?api-version=preview'), 'v');
  const dated = await v1('?api-version=2024-10-21');
  assert.equal(dated.status, 400, dated.text);
  assert.deepEqual(dated.json, ERR.apiVersionUnsupported);
});

test('a key of one account is refused on another; missing and malformed keys are 401', async (t) => {
  const d = await startDaemon(t);
  const a = await cliSetup(d, 'alpha');
  const b = await cliSetup(d, 'bravo');
  assertEcho(await d.chat('alpha', 'chat', a.key1, 'mine'), 'mine');
  for (const key of [a.key1, a.key2]) {
    const r = await d.chat('bravo', 'chat', key, 'not mine');
    assert.equal(r.status, 401, `${r.status} ${r.text}`);
    assert.deepEqual(r.json, ERR.invalidKey);
  }
  const r = await d.chat('alpha', 'chat', b.key1, 'not mine either');
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, ERR.invalidKey);
  const flipped = a.key1.toUpperCase() === a.key1 ? a.key1.toLowerCase() : a.key1.toUpperCase();
  const badKeys = [undefined, '', 'x', `${a.key1}x`, a.key1.slice(0, -1), flipped].filter((k) => k !== a.key1);
  for (const key of badKeys) {
    const bad = await d.chat('alpha', 'chat', key, 'bad key');
    assert.equal(bad.status, 401, `key ${JSON.stringify(key)}: ${bad.status} ${bad.text}`);
    assert.deepEqual(bad.json, ERR.invalidKey);
  }
  assertNoKeysInLog(d, [a.key1, a.key2, b.key1, b.key2]);
});

test('restart keeps accounts, deployments and keys', async (t) => {
  const d = await startDaemon(t);
  const keys = await cliSetup(d);
  await cliOk(d, ['-o', 'json', 'deployment', 'create', 'demo', 'second', '--model', 'gpt-4o-mini']);
  const other = await cliSetup(d, 'other', 'dep');
  const regen = await cliOk(d, ['-o', 'json', 'keys', 'regenerate', 'demo', 'key2']);
  const key2 = regen.json.key2;
  const acctBefore = await d.admin('GET', `${accountPath('demo')}?${ARM_API}`);
  const depsBefore = await d.admin('GET', `${accountPath('demo')}/deployments?${ARM_API}`);

  const st = await d.restart();
  assert.equal(st.code, 0, `SIGTERM exit: ${JSON.stringify(st)}`);
  assert.equal(d.runs, 2);

  const lk = await d.listKeys('demo');
  assert.deepEqual(lk.json, { key1: keys.key1, key2 });
  assert.deepEqual((await d.listKeys('other')).json, other);
  const acctAfter = await d.admin('GET', `${accountPath('demo')}?${ARM_API}`);
  assert.equal(acctAfter.status, 200);
  // The endpoints follow the new port; everything else is unchanged.
  const strip = (a) => ({ ...a, properties: { ...a.properties, endpoint: undefined, endpoints: undefined } });
  assert.deepEqual(strip(acctAfter.json), strip(acctBefore.json));
  assert.equal(acctAfter.json.properties.endpoint, `${d.publicUrl}/accounts/demo/`);
  assert.deepEqual(acctAfter.json.properties.endpoints, accountEndpoints(`${d.publicUrl}/accounts/demo/`));
  const depsAfter = await d.admin('GET', `${accountPath('demo')}/deployments?${ARM_API}`);
  const names = (l) => l.value.map((x) => x.name).sort();
  assert.deepEqual(names(depsAfter.json), ['chat', 'second']);
  assert.deepEqual(depsAfter.json.value.sort((x, y) => x.name.localeCompare(y.name)),
    depsBefore.json.value.sort((x, y) => x.name.localeCompare(y.name)));

  assertEcho(await d.chat('demo', 'chat', keys.key1, 'after restart'), 'after restart');
  assertEcho(await d.chat('demo', 'second', key2, 'second deployment'), 'second deployment', 'gpt-4o-mini');
  assertEcho(await d.chat('other', 'dep', other.key1, 'other account'), 'other account', 'dep');
  const oldKey2 = await d.chat('demo', 'chat', keys.key2, 'revoked before restart');
  assert.equal(oldKey2.status, 401);
  assertNoKeysInLog(d, [keys.key1, keys.key2, key2, other.key1, other.key2]);
});

test('kill -9 during concurrent control-plane writes loses no acknowledged write', async (t) => {
  const d = await startDaemon(t);
  const keys = (await d.setupAccount('demo', { deployments: {} })).keys;
  const total = 200;
  const killAfterAcks = 20 + Math.floor(Math.random() * 120);
  const name = (i) => `dep-${String(i).padStart(3, '0')}`;
  // 12 writers keep 12 deployment PUTs outstanding; the kill lands with at least 8 of
  // them sent and unanswered.
  const storm = await writeStormAndCrash({
    total,
    concurrency: 12,
    minInFlight: 8,
    killAfterAcks,
    write: (i) => d.putDeployment('demo', name(i), { properties: { model: { format: 'OpenAI', name: `m${i}`, version: '1' } } }),
    ok: (r) => r.status === 201,
    crash: () => d.kill9(),
  });
  const acked = storm.acked.map(name);
  t.diagnostic(`kill after ${killAfterAcks} acknowledgements with ${storm.inFlightAtCrash} writes in flight; ${acked.length} of ${storm.sent} sent were acknowledged`);
  assert.ok(storm.inFlightAtCrash >= 8, `${storm.inFlightAtCrash} writes in flight at the kill`);
  assert.ok(acked.length < total, 'the kill did not interrupt the writes');

  await d.start();
  const list = await d.admin('GET', `${accountPath('demo')}/deployments?${ARM_API}`);
  assert.equal(list.status, 200, list.text);
  const present = new Set(list.json.value.map((x) => x.name));
  const lost = acked.filter((n) => !present.has(n));
  assert.deepEqual(lost, [], 'acknowledged deployments missing after kill -9 + restart');
  // Whatever is there is whole (its own model) and was at least sent.
  for (const dep of list.json.value) {
    const i = Number(dep.name.slice(4));
    assert.ok(i < storm.sent, `${dep.name} was never sent`);
    assert.equal(dep.properties.model.name, `m${i}`);
  }
  // Beyond the acknowledged ones, at most the writes outstanding when it died.
  assert.ok(present.size <= acked.length + 12, `${present.size} present, ${acked.length} acknowledged`);
  assert.deepEqual((await d.listKeys('demo')).json, keys);
  const last = acked.at(-1);
  assertEcho(await d.chat('demo', last, keys.key1, 'survived'), 'survived', `m${Number(last.slice(4))}`);
  assertNoKeysInLog(d, [keys.key1, keys.key2]);
});
