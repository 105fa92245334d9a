// The ARM-shaped control plane over the admin socket: resource shapes, lists, errors,
// name rules, conflicts, secrets never returned; file modes of the data directory;
// /healthz and /metrics; and the public listener refusing control-plane paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

import {
  ARM_API,
  ERR,
  KEYLESSD,
  REPO_ROOT,
  accountEndpoints,
  RG,
  SUB,
  accountPath,
  findSecrets,
  makeTempDir,
  onCleanup,
  removeTempDir,
  startDaemon,
} from '../lib/harness.mjs';
import { AUTH_API, ROLE, createApp, newGuid, raPath, rootPrincipal, tenantId } from '../lib/authz.mjs';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const OTHER_SUB = '11111111-2222-3333-4444-555555555555';

const armError = (code, message) => ({ error: { code, message } });
const notFoundFix = (name, rg = RG) =>
  armError('ResourceNotFound', `The Resource 'Microsoft.CognitiveServices/accounts/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
const ACCOUNT_VERSIONS = '2025-12-01,2025-10-01-preview,2025-09-01,2025-07-01-preview,2025-06-01,2025-04-01-preview,2024-10-01,2024-06-01-preview,2024-04-01-preview,2023-10-01-preview,2023-05-01,2022-12-01,2022-10-01,2022-03-01,2021-10-01,2021-04-30,2017-04-18';
const DEPLOYMENT_VERSIONS = '2025-12-01,2025-10-01-preview,2025-09-01,2025-07-01-preview,2025-06-01,2025-04-01-preview,2024-10-01,2024-06-01-preview,2024-04-01-preview,2023-10-01-preview,2023-05-01,2022-12-01,2022-10-01,2022-03-01,2021-10-01';

// The one status and the whole body the contract names.
function assertBody(r, status, body, what = '') {
  assert.equal(r.status, status, `${what} expected ${status}, got ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, what);
  assert.deepEqual(r.json, body, what);
}

function assertAccountShape(a, d, name, { sub = SUB, rg = RG, kind = 'OpenAI', disableLocalAuth = false, tags = {} } = {}) {
  assert.equal(a.id, accountPath(name, { sub, rg }));
  assert.equal(a.name, name);
  assert.equal(a.type, 'Microsoft.CognitiveServices/accounts');
  assert.equal(a.location, 'local');
  assert.equal(a.kind, kind);
  assert.deepEqual(a.sku, { name: 'S0' });
  assert.deepEqual(a.tags, tags);
  assert.match(a.etag, /^"[0-9a-f-]{36}"$/i);
  assert.equal(a.properties.provisioningState, 'Succeeded');
  assert.equal(a.properties.endpoint, `${d.publicUrl}/accounts/${name}/`);
  // Azure's map of endpoint names; scripts read endpoints["OpenAI Language Model Instance API"].
  assert.deepEqual(a.properties.endpoints, accountEndpoints(`${d.publicUrl}/accounts/${name}/`));
  assert.equal(a.properties.disableLocalAuth, disableLocalAuth);
  assert.equal(a.properties.customSubDomainName, name);
  assert.equal(a.properties.publicNetworkAccess, 'Enabled');
  assert.match(a.properties.dateCreated, ISO);
  assert.match(a.systemData.createdAt, ISO);
  assert.match(a.systemData.lastModifiedAt, ISO);
}

test('accounts: create, read, update, list by group and subscription, delete', async (t) => {
  const d = await startDaemon(t);
  const url = `${accountPath('demo')}?${ARM_API}`;
  const c = await d.admin('PUT', url, { location: 'local', kind: 'OpenAI', sku: { name: 'S0' }, properties: { disableLocalAuth: false }, tags: { team: 'a' } });
  assert.equal(c.status, 201, c.text);
  assert.match(c.headers['content-type'] || '', /^application\/json/);
  assert.match(c.headers['x-ms-request-id'] || '', GUID);
  assertAccountShape(c.json, d, 'demo', { tags: { team: 'a' } });
  const g = await d.admin('GET', url);
  assert.equal(g.status, 200);
  assert.deepEqual(g.json, c.json);

  // Defaults when the body is empty; AIServices kind accepted.
  const e = await d.admin('PUT', `${accountPath('empty')}?${ARM_API}`, {});
  assert.equal(e.status, 201, e.text);
  assertAccountShape(e.json, d, 'empty');
  const ai = await d.admin('PUT', `${accountPath('services')}?${ARM_API}`, { kind: 'AIServices' });
  assert.equal(ai.status, 201, ai.text);
  assertAccountShape(ai.json, d, 'services', { kind: 'AIServices' });
  assertBody(await d.admin('PUT', `${accountPath('badkind')}?${ARM_API}`, { kind: 'Speech' }), 400,
    armError('InvalidApiSetId', 'The account kind is invalid or unavailable: use OpenAI or AIServices.'));

  // Update: 200, new tags and flag, creation date kept.
  const u = await d.admin('PUT', url, { tags: { team: 'b' }, properties: { disableLocalAuth: true } });
  assert.equal(u.status, 200, u.text);
  assertAccountShape(u.json, d, 'demo', { tags: { team: 'b' }, disableLocalAuth: true });
  assert.equal(u.json.properties.dateCreated, c.json.properties.dateCreated);
  assert.equal(u.json.systemData.createdAt, c.json.systemData.createdAt);

  // Path segments are case-insensitive, as in ARM.
  const ci = await d.admin('GET', `/subscriptions/${SUB}/resourcegroups/${RG}/providers/microsoft.cognitiveservices/ACCOUNTS/demo?${ARM_API}`);
  assert.equal(ci.status, 200, ci.text);
  assert.equal(ci.json.name, 'demo');

  // Another group in the same subscription, and another subscription.
  const rg2 = await d.admin('PUT', `${accountPath('team2', { rg: 'rg-2' })}?${ARM_API}`, {});
  assert.equal(rg2.status, 201, rg2.text);
  const sub2 = await d.admin('PUT', `${accountPath('elsewhere', { sub: OTHER_SUB, rg: 'x' })}?${ARM_API}`, {});
  assert.equal(sub2.status, 201, sub2.text);

  const names = (r) => r.json.value.map((a) => a.name).sort();
  const byRg = await d.admin('GET', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`);
  assert.equal(byRg.status, 200, byRg.text);
  assert.deepEqual(names(byRg), ['demo', 'empty', 'services']);
  assert.deepEqual(byRg.json.value.find((a) => a.name === 'demo'), u.json);
  const bySub = await d.admin('GET', `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`);
  assert.equal(bySub.status, 200, bySub.text);
  assert.deepEqual(names(bySub), ['demo', 'empty', 'services', 'team2']);
  const byOther = await d.admin('GET', `/subscriptions/${OTHER_SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`);
  assert.deepEqual(names(byOther), ['elsewhere']);
  const emptyRg = await d.admin('GET', `/subscriptions/${SUB}/resourceGroups/nothing-here/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`);
  assert.equal(emptyRg.status, 200);
  assert.deepEqual(emptyRg.json, { value: [] });
  // The account is not visible through another group's path.
  const wrongRg = await d.admin('GET', `${accountPath('demo', { rg: 'rg-2' })}?${ARM_API}`);
  assertBody(wrongRg, 404, notFoundFix('demo', 'rg-2'));

  const del = await d.admin('DELETE', url);
  assert.equal(del.status, 200, del.text);
  const gone = await d.admin('GET', url);
  assertBody(gone, 404, notFoundFix('demo'));
  const again = await d.admin('DELETE', url);
  assert.equal(again.status, 204, again.text);
  assert.deepEqual(names(await d.admin('GET', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`)), ['empty', 'services']);
  assertBody(await d.listKeys('demo'), 404, notFoundFix('demo'));
});

test('deployments: shapes, backends, defaults, credential never returned, cascade delete', async (t) => {
  const d = await startDaemon(t);
  const { keys } = await d.setupAccount('demo', { deployments: {} });
  const dep = (n) => `${accountPath('demo')}/deployments/${n}`;
  const credential = 'sk-upstream-SECRET-0123456789abcdef';

  const echo = await d.admin('PUT', `${dep('chat')}?${ARM_API}`, {
    sku: { name: 'Standard', capacity: 1 },
    properties: { model: { format: 'OpenAI', name: 'gpt-4o-mini', version: '1' }, backend: { type: 'echo' } },
  });
  assert.equal(echo.status, 201, echo.text);
  assert.equal(echo.json.id, dep('chat'));
  assert.equal(echo.json.name, 'chat');
  assert.equal(echo.json.type, 'Microsoft.CognitiveServices/accounts/deployments');
  assert.deepEqual(echo.json.sku, { name: 'Standard', capacity: 1 });
  assert.equal(echo.json.properties.provisioningState, 'Succeeded');
  assert.deepEqual(echo.json.properties.model, { format: 'OpenAI', name: 'gpt-4o-mini', version: '1' });
  assert.equal(echo.json.properties.backend.type, 'echo');
  assert.ok(echo.json.systemData);
  assert.deepEqual((await d.admin('GET', `${dep('chat')}?${ARM_API}`)).json, echo.json);

  const up = await d.admin('PUT', `${dep('up')}?${ARM_API}`, {
    properties: {
      model: { format: 'OpenAI', name: 'llama3-named', version: '1' },
      backend: { type: 'upstream', url: 'http://127.0.0.1:9/v1', model: 'llama3', credential },
    },
  });
  assert.equal(up.status, 201, up.text);
  assert.deepEqual(up.json.properties.backend, { type: 'upstream', url: 'http://127.0.0.1:9/v1', model: 'llama3', hasCredential: true });
  // "model" defaults to properties.model.name, then to the deployment name.
  const byModel = await d.admin('PUT', `${dep('by-model')}?${ARM_API}`, {
    properties: { model: { format: 'OpenAI', name: 'from-model', version: '1' }, backend: { type: 'upstream', url: 'https://example.invalid/v1' } },
  });
  assert.equal(byModel.status, 201, byModel.text);
  assert.equal(byModel.json.properties.backend.model, 'from-model');
  assert.equal(byModel.json.properties.backend.hasCredential, false);
  const byName = await d.admin('PUT', `${dep('by.name_1')}?${ARM_API}`, { properties: { backend: { type: 'upstream', url: 'http://127.0.0.1:9/v1' } } });
  assert.equal(byName.status, 201, byName.text);
  assert.equal(byName.json.properties.backend.model, 'by.name_1');
  // No backend: echo.
  const plain = await d.admin('PUT', `${dep('plain')}?${ARM_API}`, {});
  assert.equal(plain.status, 201, plain.text);
  assert.equal(plain.json.properties.backend.type, 'echo');

  // Update keeps the sealed credential unless a new one is given.
  const upd = await d.admin('PUT', `${dep('up')}?${ARM_API}`, {
    properties: { backend: { type: 'upstream', url: 'http://127.0.0.1:9/v2', model: 'llama3', credential } },
  });
  assert.equal(upd.status, 200, upd.text);
  assert.equal(upd.json.properties.backend.url, 'http://127.0.0.1:9/v2');

  // Bad backends.
  const badUrl = armError('InvalidRequestContent', 'properties.backend.url must be an http:// or https:// URL of at most 2048 characters, without user information, query or fragment.');
  for (const [backend, body] of [
    [{ type: 'upstream', url: 'ftp://127.0.0.1/v1' }, badUrl],
    [{ type: 'upstream', url: 'file:///etc/passwd' }, badUrl],
    [{ type: 'upstream', url: `http://127.0.0.1/${'a'.repeat(2100)}` }, badUrl],
    [{ type: 'upstream' }, badUrl],
    [{ type: 'teleport' }, armError('InvalidRequestContent', 'properties.backend.type must be echo or upstream.')],
  ]) {
    const r = await d.admin('PUT', `${dep('bad')}?${ARM_API}`, { properties: { backend } });
    assertBody(r, 400, body, JSON.stringify(backend).slice(0, 80));
  }
  // A missing deployment is what the resource provider answers: NotFound with the full id.
  const missing = (n) => armError('NotFound', `Specified resource '${dep(n)}' cannot be found.`);
  assertBody(await d.admin('GET', `${dep('bad')}?${ARM_API}`), 404, missing('bad'));

  const list = await d.admin('GET', `${accountPath('demo')}/deployments?${ARM_API}`);
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json.value.map((x) => x.name).sort(), ['by-model', 'by.name_1', 'chat', 'plain', 'up']);
  assert.deepEqual(list.json.value.find((x) => x.name === 'up'), (await d.admin('GET', `${dep('up')}?${ARM_API}`)).json);

  // The credential never comes back, in any response.
  const everything = [up, upd, list, await d.admin('GET', `${dep('up')}?${ARM_API}`)].map((r) => r.text).join('\n');
  assert.ok(!everything.includes(credential), 'the credential is returned by the control plane');
  assert.ok(!/"credential"/.test(everything), 'a "credential" field is returned');
  assert.deepEqual(findSecrets(d.stderr, [credential, keys.key1, keys.key2]), [], 'a secret is in the log');

  const del = await d.admin('DELETE', `${dep('plain')}?${ARM_API}`);
  assert.equal(del.status, 200, del.text);
  assert.equal((await d.admin('DELETE', `${dep('plain')}?${ARM_API}`)).status, 204);
  const nf = await d.admin('GET', `${dep('plain')}?${ARM_API}`);
  assertBody(nf, 404, missing('plain'));
  // Deployments under a missing account.
  assertBody(await d.admin('PUT', `${accountPath('ghost')}/deployments/x1?${ARM_API}`, {}), 404,
    armError('ParentResourceNotFound', "Can not perform requested operation on nested resource. Parent resource 'ghost' not found."));
  assertBody(await d.admin('GET', `${accountPath('ghost')}/deployments?${ARM_API}`), 404, notFoundFix('ghost'));

  // Deleting the account removes its deployments and keys.
  assert.equal((await d.admin('DELETE', `${accountPath('demo')}?${ARM_API}`)).status, 200);
  assertBody(await d.admin('GET', `${dep('up')}?${ARM_API}`), 404, notFoundFix('demo'));
  const again = await d.setupAccount('demo', { deployments: { fresh: {} } });
  const relist = await d.admin('GET', `${accountPath('demo')}/deployments?${ARM_API}`);
  assert.deepEqual(relist.json.value.map((x) => x.name), ['fresh']);
  assert.notEqual(again.keys.key1, keys.key1);
  assert.notEqual(again.keys.key2, keys.key2);
  const oldKey = await d.chat('demo', 'fresh', keys.key1);
  assert.equal(oldKey.status, 401, `old key after delete: ${oldKey.status} ${oldKey.text}`);
  assert.deepEqual(oldKey.json, ERR.invalidKey);
  assert.equal((await d.chat('demo', 'fresh', again.keys.key1)).status, 200);
});

test('api-version is required and checked; malformed bodies are refused', async (t) => {
  const d = await startDaemon(t);
  for (const path of [accountPath('demo'), `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts`]) {
    const r = await d.admin('GET', path);
    assert.equal(r.status, 400, `${path}: ${r.status} ${r.text}`);
    assert.deepEqual(r.json, ERR.missingApiVersion);
  }
  const put = await d.admin('PUT', accountPath('demo'), {});
  assert.deepEqual(put.json, ERR.missingApiVersion);
  assertBody(await d.admin('GET', `${accountPath('demo')}?api-version=`), 400, ERR.missingApiVersion);
  // ARM's refusal lists the versions of the resource type, newest first.
  for (const v of ['abc', '2024-13', '2024-10-01x', '20241001', '2099-01-01', '2024-10-01-preview']) {
    const r = await d.admin('GET', `${accountPath('demo')}?api-version=${v}`);
    assertBody(r, 400, armError('InvalidApiVersionParameter', `The api-version '${v}' is invalid. The supported versions are '${ACCOUNT_VERSIONS}'.`), v);
  }
  // What does not look like a version is not echoed.
  assertBody(await d.admin('GET', `${accountPath('demo')}?api-version=%3Cb%3E`), 400,
    armError('InvalidApiVersionParameter', `The api-version is invalid. The supported versions are '${ACCOUNT_VERSIONS}'.`));
  // Deployments have their own list: they did not exist in 2017-04-18 or 2021-04-30.
  assertBody(await d.admin('GET', `${accountPath('demo')}/deployments?api-version=2021-04-30`), 400,
    armError('InvalidApiVersionParameter', `The api-version '2021-04-30' is invalid. The supported versions are '${DEPLOYMENT_VERSIONS}'.`));
  const preview = await d.admin('PUT', `${accountPath('demo')}?api-version=2023-10-01-preview`, {});
  assert.equal(preview.status, 201, preview.text);
  // Every version in the list is served (ARM compares them case-insensitively).
  for (const v of [...ACCOUNT_VERSIONS.split(','), '2023-10-01-PREVIEW']) {
    const r = await d.admin('GET', `${accountPath('demo')}?api-version=${v}`);
    assert.equal(r.status, 200, `${v}: ${r.status} ${r.text}`);
  }
  for (const v of DEPLOYMENT_VERSIONS.split(',')) {
    const r = await d.admin('GET', `${accountPath('demo')}/deployments?api-version=${v}`);
    assert.equal(r.status, 200, `${v}: ${r.status} ${r.text}`);
  }
  // Nothing was created by the refused PUT above.
  const list = await d.admin('GET', `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`);
  assert.deepEqual(list.json.value.map((a) => a.name), ['demo']);

  const undeserializable = (why) => armError('InvalidRequestContent', `The request content was invalid and could not be deserialized: ${why}.`);
  for (const [body, want] of [
    ['{', undeserializable('malformed JSON at line 1, column 1')],
    ['[]', undeserializable('the body must be a JSON object')],
    ['"x"', undeserializable('malformed JSON at line 1, column 3')],
    ['{"properties":', undeserializable('malformed JSON at line 1, column 14')],
    ['null', undeserializable('malformed JSON at line 1, column 4')],
    ['{"kind":5}', armError('InvalidApiSetId', 'The account kind is invalid or unavailable: use OpenAI or AIServices.')],
  ]) {
    const r = await d.admin('PUT', `${accountPath('json-bad')}?${ARM_API}`, body, { headers: { 'content-type': 'application/json' } });
    assertBody(r, 400, want, body);
  }
  const rk = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, '{oops', { headers: { 'content-type': 'application/json' } });
  assertBody(rk, 400, undeserializable('malformed JSON at line 1, column 5'));
  for (const keyName of ['Key3', '', 'key', null]) {
    const r = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName });
    assertBody(r, 400, armError('BadRequest', 'The keyName must be Key1 or Key2.'), `keyName ${keyName}`);
  }
  assertBody(await d.admin('GET', `${accountPath('json-bad')}?${ARM_API}`), 404, notFoundFix('json-bad'));
});

test('invalid names are refused with 400 and nothing is stored', async (t) => {
  const d = await startDaemon(t);
  for (const name of ['a', '-ab', 'ab-', 'a_b', 'a.b', 'a b'.replace(' ', '%20'), 'x'.repeat(65), 'é1']) {
    const r = await d.admin('PUT', `${accountPath(encodeURI(name))}?${ARM_API}`, {});
    assertBody(r, 400, armError('InvalidResourceName', "The account name is invalid: use 2-64 letters, digits or '-', starting and ending with a letter or digit."), name);
  }
  const ok64 = await d.admin('PUT', `${accountPath('a'.repeat(63) + '1')}?${ARM_API}`, {});
  assert.equal(ok64.status, 201, ok64.text);
  const ok2 = await d.admin('PUT', `${accountPath('a1')}?${ARM_API}`, {});
  assert.equal(ok2.status, 201, ok2.text);

  for (const rg of ['rg.', 'x'.repeat(91), 'a%2Fb', 'rg!', 'r g'.replace(' ', '%20')]) {
    const r = await d.admin('PUT', `${accountPath('okname', { rg })}?${ARM_API}`, {});
    assertBody(r, 400, armError('InvalidResourceGroupName', 'Resource group names only allow up to 90 characters and can only include alphanumeric, underscore, parentheses, hyphen, period (except at end) characters.'), rg);
  }
  const okRg = await d.admin('PUT', `${accountPath('okname', { rg: 'My_rg-1.(x)' })}?${ARM_API}`, {});
  assert.equal(okRg.status, 201, okRg.text);

  for (const dn of ['d', 'd$', 'x'.repeat(65), 'a%2Fb', 'a:b']) {
    const r = await d.admin('PUT', `${accountPath('a1')}/deployments/${dn}?${ARM_API}`, {});
    assertBody(r, 400, armError('InvalidResourceName', "The deployment name is invalid: use 2-64 letters, digits, '-', '_' or '.', without '..'."), dn);
  }
  const okDep = await d.admin('PUT', `${accountPath('a1')}/deployments/a.b_c-d?${ARM_API}`, {});
  assert.equal(okDep.status, 201, okDep.text);

  const all = await d.admin('GET', `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`);
  assert.deepEqual(all.json.value.map((a) => a.name).sort(), ['a'.repeat(63) + '1', 'a1', 'okname'].sort());
  const deps = await d.admin('GET', `${accountPath('a1')}/deployments?${ARM_API}`);
  assert.deepEqual(deps.json.value.map((x) => x.name), ['a.b_c-d']);
});

test('unknown types are 404 InvalidResourceType, other paths 404 NotFound, wrong methods 405, name clashes 409', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('demo', { deployments: {} });
  const noType = (type, ns, v) => armError('InvalidResourceType', `The resource type '${type}' could not be found in the namespace '${ns}' for api version '${v}'.`);
  for (const [path, status, body] of [
    [`/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/x?${ARM_API}`, 404, noType('storageAccounts', 'Microsoft.Storage', '2024-10-01')],
    [`${accountPath('demo')}/nothing?${ARM_API}`, 404, noType('accounts/nothing', 'Microsoft.CognitiveServices', '2024-10-01')],
    [`${accountPath('demo')}/deployments/chat/extra/x?api-version=2023-05-01`, 404, noType('accounts/deployments/extra', 'Microsoft.CognitiveServices', '2023-05-01')],
    [`${accountPath('demo')}/providers/Microsoft.Authorization/denyAssignments?api-version=2022-04-01`, 404, noType('denyAssignments', 'Microsoft.Authorization', '2022-04-01')],
    // ARM asks for the api-version before it looks the type up.
    [`${accountPath('demo')}/nothing`, 400, ERR.missingApiVersion],
  ]) {
    assertBody(await d.admin('GET', path), status, body, path);
  }
  // What names no provider and type is not ARM-shaped: NotFound.
  for (const path of [`/subscriptions/${SUB}/foo?${ARM_API}`, `/subscriptions/${SUB}/providers?${ARM_API}`, `/providers/Microsoft.X?${ARM_API}`]) {
    assertBody(await d.admin('GET', path), 404, armError('NotFound', 'No control-plane resource matches the path.'), path);
  }
  // Outside the control plane's paths, the daemon's own 404.
  assertBody(await d.admin('GET', `/nothing?${ARM_API}`), 404, armError('NotFound', 'The requested resource does not exist.'));
  for (const [method, path] of [
    // (PATCH on an account is ARM's update, so it is not in this list.)
    ['POST', `${accountPath('demo')}?${ARM_API}`],
    ['GET', `${accountPath('demo')}/listKeys?${ARM_API}`],
    ['PUT', `${accountPath('demo')}/regenerateKey?${ARM_API}`],
    ['DELETE', `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`],
    ['POST', `${accountPath('demo')}/deployments?${ARM_API}`],
  ]) {
    assertBody(await d.admin(method, path, method === 'GET' || method === 'DELETE' ? undefined : {}), 405,
      armError('MethodNotAllowed', `The requested resource does not support http method '${method}'.`), `${method} ${path}`);
  }
  // Account names are global (case-insensitive): another group or subscription clashes.
  for (const [name, opts] of [['demo', { rg: 'other' }], ['DEMO', { rg: 'other' }], ['Demo', { sub: OTHER_SUB, rg: RG }]]) {
    const r = await d.admin('PUT', `${accountPath(name, opts)}?${ARM_API}`, {});
    assertBody(r, 409, armError('CustomDomainInUse', `The subdomain name '${name}' is not available as it's already used by a resource.`), name);
  }
  const list = await d.admin('GET', `/subscriptions/${OTHER_SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`);
  assert.deepEqual(list.json, { value: [] });
});

test('data directory and secret files are private', async (t) => {
  const parent = makeTempDir('kl-modes-');
  onCleanup(t, () => removeTempDir(parent));
  const dir = join(parent, 'data');
  const d = await startDaemon(t, { dataDir: dir });
  await d.setupAccount('demo');
  const mode = (p) => statSync(p).mode & 0o777;
  assert.equal(mode(dir), 0o700, 'data dir');
  for (const f of ['kek', 'keyless.db', 'admin.sock', 'tls/ca.key', 'tls/server.key']) {
    assert.ok(existsSync(join(dir, f)), `${f} exists`);
    assert.equal(mode(join(dir, f)).toString(8), (0o600).toString(8), f);
  }
  for (const f of ['keyless.db-wal', 'keyless.db-shm']) {
    if (existsSync(join(dir, f))) assert.equal(mode(join(dir, f)) & 0o077, 0, `${f} is readable by others`);
  }
  assert.equal(mode(join(dir, 'tls')) & 0o077, 0, 'tls dir is open to others');
  assert.ok(statSync(join(dir, 'admin.sock')).isSocket());
});

test('admin /healthz and /metrics; metrics count requests and auth failures', async (t) => {
  const d = await startDaemon(t);
  const { keys } = await d.setupAccount('demo');
  const h = await d.admin('GET', '/healthz');
  assert.equal(h.status, 200, h.text);
  assert.match(h.headers['content-type'] || '', /^application\/json/);
  assert.deepEqual(h.json, { status: 'ok' });

  assert.equal((await d.chat('demo', 'chat', keys.key1)).status, 200);
  assert.equal((await d.chat('demo', 'chat', 'definitely-not-a-key')).status, 401);
  const m = await d.admin('GET', '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type'] || '', /^text\/plain/);
  const sample = (re) => {
    const line = m.text.split('\n').find((l) => !l.startsWith('#') && re.test(l));
    return line ? Number(line.trim().split(/\s+/).at(-1)) : undefined;
  };
  // This daemon is the test's own: every count is known (setupAccount made two PUTs and
  // one listKeys; /healthz once).
  const requests = Object.fromEntries(m.text.split('\n').filter((l) => l.startsWith('keyless_http_requests_total{'))
    .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
  assert.deepEqual(requests, {
    'keyless_http_requests_total{route="chat",status="200"}': 1,
    'keyless_http_requests_total{route="chat",status="401"}': 1,
    'keyless_http_requests_total{route="mgmt",status="200"}': 1,
    'keyless_http_requests_total{route="mgmt",status="201"}': 2,
    'keyless_http_requests_total{route="health",status="200"}': 1,
  }, m.text);
  const invalid = sample(/^keyless_auth_failures_total\{[^}]*kind="invalid_key"[^}]*\}/);
  assert.equal(invalid, 1, `keyless_auth_failures_total{kind="invalid_key"} = ${invalid}:\n${m.text}`);
  assert.match(m.text, /# TYPE keyless_http_requests_total counter/);
  assert.deepEqual(findSecrets(m.text, [keys.key1, keys.key2, 'definitely-not-a-key']), []);
});

// Every control-plane route, from the list the unit tests hold equal to the daemon's
// route table (tests/lib/control-plane-routes.txt): a new route is covered here.
function controlPlaneRoutes() {
  const text = readFileSync(join(REPO_ROOT, 'tests', 'lib', 'control-plane-routes.txt'), 'utf8');
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
    const [method, pattern] = l.split(' ');
    return { method, pattern };
  });
}

// Concrete paths for a route pattern: every {scope} form (root, subscription, group,
// resource) and names that exist in the daemon.
function instantiate(pattern, names) {
  const scopes = pattern.startsWith('/{scope}')
    ? ['', `/subscriptions/${SUB}`, `/subscriptions/${SUB}/resourceGroups/${RG}`, accountPath('demo')]
    : [null];
  return scopes.map((scope) => {
    let p = scope === null ? pattern : pattern.replace('/{scope}', scope);
    for (const [k, v] of Object.entries(names)) p = p.replaceAll(`{${k}}`, v);
    assert.ok(!p.includes('{'), `a capture without a test value: ${pattern}`);
    return p;
  });
}

test('the public listener refuses every control-plane route without a token with 401, x-keyless-principal or not', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('demo');
  const h = await d.request('GET', '/healthz');
  assert.equal(h.status, 200, h.text);
  const { oid: admin } = await rootPrincipal(d);
  const tid = await tenantId(d);
  const app = await createApp(d, 'tls-probe');
  const armChallenge = `Bearer authorization_uri="${d.publicUrl}/${tid}", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`;
  const graphChallenge = `Bearer realm="", authorization_uri="${d.publicUrl}/${tid}/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`;
  const names = {
    subscription: SUB,
    resourceGroup: RG,
    account: 'demo',
    deployment: 'chat',
    roleAssignment: newGuid(),
    roleDefinition: ROLE.owner,
    object: app.id,
    credential: newGuid(),
    site: 'web',
    launch: newGuid(),
    vm: 'host1',
    identity: 'id1',
    user: admin,
    member: newGuid(),
  };
  // What the admin socket shows before: nothing below may change it.
  const snapshot = async () => Promise.all([
    d.admin('GET', `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`),
    d.admin('GET', `${raPath('/')}?${AUTH_API}`),
    d.admin('GET', '/v1.0/applications'),
    d.listKeys('demo'),
    d.admin('GET', '/keyless/signingKeys'),
  ]).then((rs) => rs.map((r) => r.json));
  const before = await snapshot();
  const routes = controlPlaneRoutes();
  assert.equal(routes.length, 78, 'the route list changed: check the paths below still cover it');
  let sent = 0;
  for (const { method, pattern } of routes) {
    const body = ['PUT', 'PATCH', 'POST'].includes(method)
      ? { keyName: 'Key1', displayName: 'x', properties: { roleDefinitionId: ROLE.owner, principalId: admin, roleName: 'x', permissions: [{ actions: ['*'] }] }, principalId: admin, action: '*', scope: '/' }
      : undefined;
    const query = pattern.startsWith('/v1.0') ? '' : `?${pattern.includes('Authorization') ? AUTH_API : ARM_API}`;
    for (const path of instantiate(pattern, names)) {
      // The header names the administrator itself: it must mean nothing off the admin socket.
      for (const headers of [{ 'x-keyless-principal': admin }, {}]) {
        const r = await d.request(method, `${path}${query}`, { body, headers });
        const what = `${method} ${path} ${JSON.stringify(headers)}`;
        if (pattern.startsWith('/v1.0')) {
          // Graph's own refusal: InvalidAuthenticationToken with innerError.
          assert.equal(r.status, 401, `${what}: ${r.text}`);
          const { innerError, ...rest } = r.json.error;
          assert.deepEqual(rest, { code: 'InvalidAuthenticationToken', message: 'Access token is empty.' }, what);
          assert.equal(innerError['request-id'], r.headers['x-ms-request-id'], what);
          assert.equal(r.headers['www-authenticate'], graphChallenge, what);
        } else {
          assertBody(r, 401, ERR.publicArm401, what);
          assert.equal(r.headers['www-authenticate'], armChallenge, what);
        }
        sent++;
      }
    }
  }
  assert.equal(sent, 2 * (routes.length + 3 * routes.filter((r) => r.pattern.startsWith('/{scope}')).length));
  assert.deepEqual(await snapshot(), before, 'a refused request changed something');

  assertBody(await d.request('GET', '/definitely/not/here'), 404, armError('NotFound', 'The requested resource does not exist.'));
  // The IMDS listener does not answer ARM either.
  assertBody(await d.imds('GET', `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`), 404,
    armError('NotFound', 'The requested resource does not exist.'));
});

test('optional metrics listener serves /metrics and nothing else', async (t) => {
  const d = await startDaemon(t, { args: ['--metrics-listen', '127.0.0.1:0'] });
  assert.match(d.ready.metrics || '', /^127\.0\.0\.1:\d+$/, `ready line: ${JSON.stringify(d.ready)}`);
  const port = Number(d.ready.metrics.split(':')[1]);
  await d.setupAccount('demo');
  const get = (path) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
  const m = await get('/metrics');
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type'] || '', /^text\/plain/);
  assert.match(m.body, /^keyless_http_requests_total/m);
  const arm = await get(`/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`);
  assert.equal(arm.status, 404, arm.body);
  assert.deepEqual(JSON.parse(arm.body), armError('NotFound', 'The requested resource does not exist.'));
});

test('keylessd --check validates the configuration', async (t) => {
  const dir = makeTempDir('kl-check-');
  onCleanup(t, () => removeTempDir(dir));
  const run = (args) => spawnSync(KEYLESSD, args, { encoding: 'utf8', timeout: 20000 });
  const ok = run(['--check', '--data-dir', join(dir, 'data')]);
  assert.equal(ok.status, 0, `--check on a fresh dir: ${ok.status} ${ok.stderr}`);
  const badTls = run(['--check', '--data-dir', join(dir, 'data'), '--tls-cert', join(dir, 'nope.pem'), '--tls-key', join(dir, 'nope.key')]);
  assert.equal(badTls.status, 1, `--check with missing TLS files: ${badTls.status} ${badTls.stderr}`);
  const badDir = run(['--check', '--data-dir', '/proc/keyless-cannot-exist']);
  assert.equal(badDir.status, 1, `--check with an unusable data dir: ${badDir.status} ${badDir.stderr}`);
  const badFlag = run(['--no-such-flag']);
  assert.equal(badFlag.status, 2, `an unknown option is a usage error: ${badFlag.status} ${badFlag.stderr}`);
});
