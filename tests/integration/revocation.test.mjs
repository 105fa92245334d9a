// A saved revocation always takes effect (fail closed): a deployment whose sealed
// credential no longer opens costs that deployment alone (503 DeploymentUnavailable,
// logged once) and never keeps the daemon from starting; a change that is saved but
// cannot be built into a snapshot fences its account (503 everywhere, old and new
// credentials alike) until a retry builds it, and other accounts keep being served.
// The database is damaged from outside with the sqlite3 tool, as an operator's tool or
// a disk fault would; nothing in keylessd knows about the tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { AOAI_API, ARM_API, ERR, accountPath, startDaemon, startStub } from '../lib/harness.mjs';
import { ACTION, ROLE, asPrincipal, assertAuthzFailed, assign, checkAccess, createApp, deleteAssignment } from '../lib/authz.mjs';

const WORKERS = 3;
const CRED = 'sk-revocation-cred-51c2e8';

const UNAVAILABLE = {
  error: {
    code: 'DeploymentUnavailable',
    message:
      'The deployment cannot be served: its upstream credential could not be opened. Update the deployment with its credential to restore it.',
  },
};
const PENDING = {
  error: {
    code: 'ServiceUnavailable',
    message:
      'A recent change to this resource has not been applied yet; requests to it are refused until it is. Try again shortly.',
  },
};
const ARM_PENDING = {
  error: {
    code: 'ServiceUnavailable',
    message:
      'A saved change to this scope has not been applied yet; requests to it are refused until it is. Try again shortly.',
  },
};

// One statement on the daemon's database through the sqlite3 tool (its own connection,
// waiting for the daemon's locks like any other client).
function sql(d, statement) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', join(d.dataDir, 'keyless.db'), statement], {
    encoding: 'utf8',
  });
}

async function cliOk(d, args, env) {
  const r = await d.cli(args, { env });
  assert.equal(r.code, 0, `keyless ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function upstreamDeployment(d, account, name, stub) {
  return cliOk(d, ['-o', 'json', 'deployment', 'create', account, name, '--backend', `${stub.url}/v1`,
    '--upstream-model', 'M', '--credential-env', 'KL_TEST_REVOKE_CRED'], { KL_TEST_REVOKE_CRED: CRED });
}

// Every probe is a fresh TLS connection (the harness uses no agent): with 2 x workers of
// them, each worker's cached snapshot is met with high likelihood, not just one.
async function probeAll(d, account, deployment, key, status, body, what) {
  for (let i = 0; i < 2 * WORKERS; i++) {
    const r = await d.chat(account, deployment, key, `probe ${i}`);
    assert.equal(r.status, status, `${what}, probe ${i}: ${r.status} ${r.text}`);
    assert.match(r.headers['content-type'] || '', /^application\/json/);
    assert.deepEqual(r.json, body, `${what}, probe ${i}`);
  }
}

function assertServed(r, content, what) {
  assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json.choices[0].message.content, content, what);
}

const unavailableLines = (text, deployment) =>
  text.split('\n').filter((l) => l.includes('"snapshot_deployment_unavailable"') && l.includes(`"deployment":"${deployment}"`));

test('a credential that no longer opens: the daemon starts, that deployment answers 503, the rest serve, keys still rotate', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t, { args: ['--workers', String(WORKERS)] });
  await cliOk(d, ['-o', 'json', 'account', 'create', 'demo']);
  await upstreamDeployment(d, 'demo', 'up', stub);
  await upstreamDeployment(d, 'demo', 'up2', stub);
  await cliOk(d, ['-o', 'json', 'deployment', 'create', 'demo', 'chat']);
  const other = await d.setupAccount('other');
  const keys = (await cliOk(d, ['-o', 'json', 'keys', 'list', 'demo'])).json;
  assertServed(await d.chat('demo', 'up', keys.key1, 'before'), 'stub:M:before', 'up before the damage');

  // Damage one character in the middle of up's sealed credential, daemon stopped.
  const stopped = await d.stop();
  assert.equal(stopped.code, 0, `keylessd exit: ${JSON.stringify(stopped)}`);
  sql(d, "UPDATE deployments SET credential_sealed = substr(credential_sealed, 1, 19) || " +
    "CASE substr(credential_sealed, 20, 1) WHEN 'A' THEN 'B' ELSE 'A' END || substr(credential_sealed, 21) " +
    "WHERE name = 'up'");
  const runStart = d.stderr.length;
  await d.start();

  await probeAll(d, 'demo', 'up', keys.key1, 503, UNAVAILABLE, 'damaged deployment');
  // Its neighbours, with credentials of their own, and other accounts are served.
  assertServed(await d.chat('demo', 'up2', keys.key1, 'neighbour'), 'stub:M:neighbour', 'up2');
  assert.equal((await stub.last()).headers.authorization, `Bearer ${CRED}`);
  assertServed(await d.chat('demo', 'chat', keys.key2, 'echo'), 'echo', 'echo deployment');
  assertServed(await d.chat('other', 'chat', other.keys.key1, 'other'), 'other', 'other account');
  // Listed as it is: the deployment still exists.
  const list = await d.request('GET', `/accounts/demo/openai/deployments?${AOAI_API}`, { headers: { 'api-key': keys.key1 } });
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json.data.map((x) => x.id).sort(), ['chat', 'up', 'up2']);

  // Rebuilds after changes do not make it valid, nor log it again.
  const regen = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName: 'key1' });
  assert.equal(regen.status, 200, regen.text);
  await probeAll(d, 'demo', 'chat', keys.key1, 401, ERR.invalidKey, 'old Key1 after regeneration');
  assertServed(await d.chat('demo', 'chat', regen.json.key1, 'new key'), 'new key', 'new Key1');
  await probeAll(d, 'demo', 'up', regen.json.key1, 503, UNAVAILABLE, 'damaged deployment, new key');
  assert.equal(unavailableLines(d.stderr.slice(runStart), 'up').length, 1,
    `"snapshot_deployment_unavailable" for up should be logged once:\n${d.stderr.slice(runStart)}`);
  assert.equal(unavailableLines(d.stderr.slice(runStart), 'up2').length, 0);
  assert.ok(!d.stderr.includes(CRED), 'the credential reached the log');

  // Setting the credential again restores it.
  await upstreamDeployment(d, 'demo', 'up', stub);
  assertServed(await d.chat('demo', 'up', regen.json.key1, 'restored'), 'stub:M:restored', 'up restored');
  assert.equal((await stub.last()).headers.authorization, `Bearer ${CRED}`);
});

test('a revocation saved but not built fences its account (503) until a retry builds it; other accounts serve', async (t) => {
  const d = await startDaemon(t, { args: ['--workers', String(WORKERS)] });
  const demo = await d.setupAccount('demo');
  const other = await d.setupAccount('other');
  await d.setupAccount('third');
  const old1 = demo.keys.key1;
  // Every worker serves the key first, so each holds a cached snapshot that knows it.
  for (let i = 0; i < 2 * WORKERS; i++)
    assertServed(await d.chat('demo', 'chat', old1, `warm ${i}`), `warm ${i}`, `old Key1 before the change, probe ${i}`);

  // Two accounts of one name: no snapshot can be built from this store, and the
  // daemon cannot leave one out (which of the two is meant?).
  sql(d, "UPDATE accounts SET name = 'other' WHERE name = 'third'");
  const fenced = d.waitForLog((j) => j.event === 'mgmt_change_fenced', 10000);
  const regen = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName: 'Key1' });
  // The key was saved and the revocation is in force: the call succeeds.
  assert.equal(regen.status, 200, regen.text);
  assert.notEqual(regen.json.key1, old1);
  const line = await fenced;
  assert.equal(line.scope, accountPath('demo'));

  // The old key is refused on every worker: not with the 401 of a snapshot that knows
  // the new key (there is none yet), never with a 200 from the stale one.
  await probeAll(d, 'demo', 'chat', old1, 503, PENDING, 'old Key1 while fenced');
  const pending = await d.chat('demo', 'chat', demo.keys.key2, 'key2');
  assert.equal(pending.status, 503);
  assert.equal(pending.headers['retry-after'], '1');
  assert.deepEqual(pending.json, PENDING);
  await probeAll(d, 'demo', 'chat', regen.json.key1, 503, PENDING, 'new Key1 while fenced');
  // The control plane refuses the fenced account too, and serves the others.
  const arm = await d.admin('GET', `${accountPath('demo')}?${ARM_API}`);
  assert.equal(arm.status, 503, arm.text);
  assert.deepEqual(arm.json, ARM_PENDING);
  assert.equal((await d.admin('GET', `${accountPath('other')}?${ARM_API}`)).status, 200);
  // Another account is served from the snapshot it was last built into.
  assertServed(await d.chat('other', 'chat', other.keys.key1, 'other'), 'other', 'other account while demo is fenced');

  // Repaired: the control thread's retry builds the snapshot and lifts the fence.
  const lifted = d.waitForLog((j) => j.event === 'snapshot_fence_lifted', 15000);
  sql(d, "UPDATE accounts SET name = 'third' WHERE name_lower = 'third'");
  await lifted;
  await probeAll(d, 'demo', 'chat', old1, 401, ERR.invalidKey, 'old Key1 after the retry');
  assertServed(await d.chat('demo', 'chat', regen.json.key1, 'new'), 'new', 'new Key1 after the retry');
  assertServed(await d.chat('demo', 'chat', demo.keys.key2, 'two'), 'two', 'Key2 after the retry');
  assert.equal((await d.admin('GET', `${accountPath('demo')}?${ARM_API}`)).status, 200);
});

test('a role assignment deleted but not built: the grant is refused (503), never used, and denied once built', async (t) => {
  const d = await startDaemon(t);
  const sp = (await createApp(d, 'revoked-app')).servicePrincipalId;
  const demo = await d.setupAccount('demo');
  await d.setupAccount('other');
  await d.setupAccount('third');
  const A = accountPath('demo');
  const listKeysAsSp = () => d.admin('POST', `${A}/listKeys?${ARM_API}`, undefined, { headers: asPrincipal(sp) });
  const grant = await assign(d, A, sp, ROLE.csContributor);
  const ok = await listKeysAsSp();
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.json, demo.keys);

  sql(d, "UPDATE accounts SET name = 'other' WHERE name = 'third'");
  const fenced = d.waitForLog((j) => j.event === 'mgmt_change_fenced', 10000);
  const del = await deleteAssignment(d, A, grant.name);
  assert.equal(del.status, 200, del.text);
  assert.equal((await fenced).scope, A);
  // The stale snapshot still holds the grant: it must not be used.
  const refused = await listKeysAsSp();
  assert.equal(refused.status, 503, refused.text);
  assert.equal(refused.headers['retry-after'], '1');
  assert.deepEqual(refused.json, ARM_PENDING);
  const pending = await d.chat('demo', 'chat', demo.keys.key1, 'x');
  assert.equal(pending.status, 503, pending.text);
  assert.deepEqual(pending.json, PENDING);

  const lifted = d.waitForLog((j) => j.event === 'snapshot_fence_lifted', 15000);
  sql(d, "UPDATE accounts SET name = 'third' WHERE name_lower = 'third'");
  await lifted;
  assertAuthzFailed(await listKeysAsSp(), sp, ACTION.listKeys, A, 'listKeys after the deletion is built');
  assert.equal((await checkAccess(d, sp, ACTION.listKeys, A)).allowed, false);
  assertServed(await d.chat('demo', 'chat', demo.keys.key1, 'back'), 'back', 'Key1 after the retry');
});
