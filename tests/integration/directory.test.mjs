// The directory (Graph-shaped, on the admin socket): the tenant made on first start, and
// applications with their service principals — create (two Graph calls, one CLI step),
// list, show by name/id/appId, enable/disable (on the service principal), delete with
// everything assigned to them — through the API and the CLI, Graph's innerError on every
// error, and that all of it survives a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import {
  GUID,
  ISO,
  ROLE,
  allAssignments,
  asPrincipal,
  assertApiError,
  assertGraphError,
  assign,
  authzFailed,
  createApp,
  listAssignments,
  newGuid,
  principalNotFound,
  raPath,
  rgScope,
  setSpEnabled,
  sortedNames,
  subScope,
  tenantId,
  AUTH_API,
} from '../lib/authz.mjs';

// Every test starts its own daemon: counts and lists it asserts on are its own.
function assertError(r, status, body, what = '') {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, what);
  assert.deepEqual(r.json, body, what);
}
const graphNotFound = (id) => ({ error: { code: 'Request_ResourceNotFound', message: `Resource '${id}' does not exist or one of its queried reference-property objects are not present.` } });

// Graph's application: no accountEnabled or servicePrincipalId (those are the service
// principal's).
function assertAppShape(a, displayName) {
  assert.deepEqual(Object.keys(a).sort(), ['appId', 'createdDateTime', 'displayName', 'id', 'isFallbackPublicClient', 'keyCredentials', 'passwordCredentials', 'publicClient', 'web'], JSON.stringify(a));
  assert.deepEqual([a.isFallbackPublicClient, a.publicClient, a.web], [false, { redirectUris: [] }, { redirectUris: [] }], 'a new application is confidential, without redirect URIs');
  assert.deepEqual(a.keyCredentials, [], 'a new application has no certificates');
  assert.deepEqual(a.passwordCredentials, [], 'nor secrets');
  assert.match(a.id, GUID, 'id');
  assert.match(a.appId, GUID, 'appId');
  assert.notEqual(a.id.toLowerCase(), a.appId.toLowerCase(), 'object id and appId differ');
  assert.equal(a.displayName, displayName);
  assert.match(a.createdDateTime, ISO);
}

const spPath = (id) => `/v1.0/servicePrincipals/${id}`;
const appPath = (id) => `/v1.0/applications/${id}`;

test('the tenant exists from the first start and keeps its id across restarts', async (t) => {
  const d = await startDaemon(t);
  const org = await d.admin('GET', '/v1.0/organization');
  assert.equal(org.status, 200, org.text);
  assert.match(org.headers['content-type'] || '', /^application\/json/);
  assert.equal(org.json.value.length, 1, org.text);
  const tenant = org.json.value[0];
  assert.match(tenant.id, GUID);
  assert.equal(tenant.displayName, 'keyless');
  assert.match(tenant.createdDateTime, ISO);

  const cli = await d.cli(['tenant', 'show']);
  assert.equal(cli.code, 0, `tenant show: ${cli.stderr}`);
  assert.ok(cli.stdout.includes(tenant.id), `tenant show prints the tenant id: ${cli.stdout}`);
  assert.ok(cli.stdout.includes('keyless'), cli.stdout);
  const cliJson = await d.cli(['tenant', 'show', '-o', 'json']);
  assert.equal(cliJson.code, 0, cliJson.stderr);
  assert.ok(cliJson.json, `tenant show -o json is not JSON: ${cliJson.stdout}`);
  const shown = cliJson.json.value ? cliJson.json.value[0] : cliJson.json;
  assert.equal(shown.id, tenant.id);

  // The bootstrap administrator holds Owner at "/".
  const atRoot = await listAssignments(d, '/', 'atScope()');
  const owner = atRoot.filter((a) => a.properties.scope === '/' && a.properties.roleDefinitionId.endsWith(`/${ROLE.owner}`));
  assert.equal(owner.length, 1, JSON.stringify(atRoot));
  assert.equal(owner[0].properties.principalType, 'User');

  const app = await createApp(d, 'survivor');
  await d.restart();
  const again = await d.admin('GET', '/v1.0/organization');
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.json, org.json, 'the tenant is the same after a restart');
  const got = await d.admin('GET', appPath(app.id));
  assert.equal(got.status, 200, got.text);
  assert.equal(got.json.appId, app.appId);
  const sp = await d.admin('GET', spPath(app.servicePrincipalId));
  assert.equal(sp.status, 200, sp.text);
  assert.equal(sp.json.appId, app.appId);
  // The bootstrap Owner was not duplicated by the second start.
  const rootAfter = await listAssignments(d, '/', 'atScope()');
  assert.deepEqual(sortedNames(rootAfter), sortedNames(atRoot));
  const cli2 = await d.cli(['tenant', 'show', '-o', 'json']);
  assert.equal((cli2.json.value ? cli2.json.value[0] : cli2.json).id, tenant.id);
});

test('applications: create gives GUIDs, POST servicePrincipals {appId} its principal; list and show by id and appId', async (t) => {
  const d = await startDaemon(t);
  const before = await d.admin('GET', '/v1.0/applications');
  assert.equal(before.status, 200, before.text);
  const spsBefore = (await d.admin('GET', '/v1.0/servicePrincipals')).json.value.length;

  const r = await d.admin('POST', '/v1.0/applications', { displayName: 'billing-api' });
  assert.equal(r.status, 201, r.text);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  assertAppShape(r.json, 'billing-api');
  // As in Graph, registering an application makes no service principal.
  assert.equal((await d.admin('GET', '/v1.0/servicePrincipals')).json.value.length, spsBefore, 'POST /applications made a principal');
  const made = await d.admin('POST', '/v1.0/servicePrincipals', { appId: r.json.appId });
  assert.equal(made.status, 201, made.text);
  assert.match(made.json.id, GUID);
  assert.notEqual(made.json.id, r.json.id, 'application and SP object ids differ');
  const app = { ...r.json, servicePrincipalId: made.json.id };
  // A second principal for the same app, an unknown appId, the object id instead of the
  // appId, or no appId at all are refused.
  assertGraphError(await d.admin('POST', '/v1.0/servicePrincipals', { appId: app.appId }), 409,
    { error: { code: 'Request_MultipleObjectsWithSameKeyValue', message: 'The service principal cannot be created: the application already has one.' } }, 'second SP');
  for (const appId of [newGuid(), app.id]) {
    assertGraphError(await d.admin('POST', '/v1.0/servicePrincipals', { appId }), 400,
      { error: { code: 'Request_BadRequest', message: `The appId '${appId}' of the service principal does not reference a valid application object.` } }, `appId ${appId}`);
  }
  for (const body of [{}, { appId: 'not-a-guid' }, { appId: 7 }]) {
    assertApiError(await d.admin('POST', '/v1.0/servicePrincipals', body), 400, 'Request_BadRequest', JSON.stringify(body));
  }
  assert.equal((await d.admin('GET', '/v1.0/servicePrincipals')).json.value.length, spsBefore + 1, 'refused creates stored a principal');

  // Show by object id and by appId give the same application.
  for (const key of [app.id, app.appId, app.id.toUpperCase()]) {
    const g = await d.admin('GET', appPath(key));
    assert.equal(g.status, 200, `GET application ${key}: ${g.text}`);
    assert.equal(g.json.id, app.id);
    assert.equal(g.json.appId, app.appId);
    assert.equal(g.json.displayName, 'billing-api');
  }
  const list = await d.admin('GET', '/v1.0/applications');
  assert.equal(list.status, 200, list.text);
  const listed = list.json.value.filter((a) => a.id === app.id);
  assert.equal(listed.length, 1, list.text);
  assert.equal(listed[0].appId, app.appId);
  assert.equal(list.json.value.length, before.json.value.length + 1);

  // Its service principal.
  const sp = await d.admin('GET', spPath(app.servicePrincipalId));
  assert.equal(sp.status, 200, sp.text);
  assert.deepEqual(made.json, sp.json, 'POST answers the principal as GET shows it');
  assert.deepEqual(sp.json, {
    id: app.servicePrincipalId,
    appId: app.appId,
    displayName: 'billing-api',
    accountEnabled: true,
    servicePrincipalType: 'Application',
  });
  const sps = await d.admin('GET', '/v1.0/servicePrincipals');
  assert.equal(sps.status, 200, sps.text);
  assert.ok(sps.json.value.some((s) => s.id === app.servicePrincipalId && s.appId === app.appId), sps.text);
  const other = await createApp(d, 'billing-worker');
  const filtered = await d.admin('GET', `/v1.0/servicePrincipals?$filter=${encodeURIComponent(`appId eq '${app.appId}'`)}`);
  assert.equal(filtered.status, 200, filtered.text);
  assert.deepEqual(filtered.json.value.map((s) => s.id), [app.servicePrincipalId]);
  const filtered2 = await d.admin('GET', `/v1.0/servicePrincipals?$filter=${encodeURIComponent(`appId eq '${other.appId}'`)}`);
  assert.deepEqual(filtered2.json.value.map((s) => s.id), [other.servicePrincipalId]);
  const none = await d.admin('GET', `/v1.0/servicePrincipals?$filter=${encodeURIComponent(`appId eq '${newGuid()}'`)}`);
  assert.equal(none.status, 200, none.text);
  assert.deepEqual(none.json.value, []);

  // Unknown ids: Graph's 404, with innerError; the client's request id is echoed.
  for (const p of [appPath(newGuid()), spPath(newGuid())]) {
    const r404 = await d.admin('GET', p);
    assertGraphError(r404, 404, graphNotFound(p.split('/').pop()), p);
  }
  const cid = newGuid();
  const echoed = await d.admin('GET', appPath(newGuid()), undefined, { headers: { 'client-request-id': cid } });
  assert.equal(echoed.status, 404);
  assert.equal(echoed.json.error.innerError['client-request-id'], cid, echoed.text);
  const unsafe = await d.admin('GET', appPath(newGuid()), undefined, { headers: { 'client-request-id': '<script>' } });
  assert.equal(unsafe.json.error.innerError['client-request-id'], unsafe.headers['x-ms-request-id'], 'a non-GUID client id is not echoed');
  // ARM's errors keep ARM's shape.
  const arm = await d.admin('GET', `${accountPath('nope')}?api-version=2024-10-01`);
  assert.equal(arm.status, 404, arm.text);
  assert.equal(arm.json.error.innerError, undefined, arm.text);
});

test('applications: display names are 1-120 chars and unique case-insensitively (409)', async (t) => {
  const d = await startDaemon(t);
  const first = await createApp(d, 'dup-name');
  const count = async () => (await d.admin('GET', '/v1.0/applications')).json.value.length;
  const n = await count();
  for (const name of ['dup-name', 'DUP-NAME', 'Dup-Name']) {
    const r = await d.admin('POST', '/v1.0/applications', { displayName: name });
    assertApiError(r, 409, 'Request_MultipleObjectsWithSameKeyValue', name);
  }
  for (const body of [{ displayName: '' }, { displayName: 'x'.repeat(121) }, {}, { displayName: 42 }]) {
    const r = await d.admin('POST', '/v1.0/applications', body);
    assertApiError(r, 400, 'Request_BadRequest', JSON.stringify(body).slice(0, 60));
  }
  const bad = await d.admin('POST', '/v1.0/applications', '{"displayName":', { headers: { 'content-type': 'application/json' } });
  assertGraphError(bad, 400, { error: { code: 'Request_BadRequest', message: 'The request content was invalid and could not be deserialized: malformed JSON at line 1, column 15.' } }, 'malformed JSON');
  assert.equal(await count(), n, 'a refused create stored nothing');
  const long = await createApp(d, 'y'.repeat(120));
  assert.equal(long.displayName.length, 120);
  // The original is untouched.
  const g = await d.admin('GET', appPath(first.id));
  assert.equal(g.json.displayName, 'dup-name');
});

test('service principals: PATCH accountEnabled disables and enables; applications have no accountEnabled', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'toggle-me');
  const account = await d.setupAccount('dir-toggle', { deployments: {} });
  assert.ok(account.keys.key1);
  await assign(d, accountPath('dir-toggle'), app.servicePrincipalId, ROLE.csContributor);
  const asSp = asPrincipal(app.servicePrincipalId);
  const ok = await d.admin('POST', `${accountPath('dir-toggle')}/listKeys?api-version=2024-10-01`, undefined, { headers: asSp });
  assert.equal(ok.status, 200, `enabled SP with Cognitive Services Contributor: ${ok.text}`);

  // The application refuses accountEnabled, as Graph does, and changes nothing.
  assertGraphError(await d.admin('PATCH', appPath(app.id), { accountEnabled: false }), 400,
    { error: { code: 'Request_BadRequest', message: "Property 'accountEnabled' does not exist on type 'microsoft.graph.application'." } });
  assert.equal((await d.admin('GET', spPath(app.servicePrincipalId))).json.accountEnabled, true);
  const off = await setSpEnabled(d, app.servicePrincipalId, false);
  assert.equal(off.status, 204, `PATCH accountEnabled false: ${off.status} ${off.text}`);
  assert.equal(off.text, '');
  const sp = await d.admin('GET', spPath(app.servicePrincipalId));
  assert.equal(sp.json.accountEnabled, false, sp.text);
  const listed = (await d.admin('GET', '/v1.0/servicePrincipals')).json.value.find((s) => s.id === app.servicePrincipalId);
  assert.equal(listed.accountEnabled, false);
  // A disabled principal has no authority on the very next request.
  const denied = await d.admin('POST', `${accountPath('dir-toggle')}/listKeys?api-version=2024-10-01`, undefined, { headers: asSp });
  assertError(denied, 403, authzFailed(app.servicePrincipalId, 'Microsoft.CognitiveServices/accounts/listKeys/action', accountPath('dir-toggle')), 'disabled SP listKeys');

  const cliOn = await d.cli(['app', 'enable', 'toggle-me']);
  assert.equal(cliOn.code, 0, cliOn.stderr);
  assert.equal((await d.admin('GET', spPath(app.servicePrincipalId))).json.accountEnabled, true);
  const again = await d.admin('POST', `${accountPath('dir-toggle')}/listKeys?api-version=2024-10-01`, undefined, { headers: asSp });
  assert.equal(again.status, 200, `re-enabled SP: ${again.text}`);
  const cliOff = await d.cli(['app', 'disable', app.appId]);
  assert.equal(cliOff.code, 0, cliOff.stderr);
  assert.equal((await d.admin('GET', spPath(app.servicePrincipalId))).json.accountEnabled, false);
  // By app id too (as GET accepts it).
  const on = await setSpEnabled(d, app.appId, true);
  assert.equal(on.status, 204, `${on.status} ${on.text}`);
  assert.equal(on.text, '');
  assert.equal((await d.admin('GET', spPath(app.servicePrincipalId))).json.accountEnabled, true);
  assertApiError(await setSpEnabled(d, newGuid(), false), 404, 'Request_ResourceNotFound');
  assertApiError(await setSpEnabled(d, app.servicePrincipalId, 'no'), 400, 'Request_BadRequest');
  // An application's object id is not a service principal's.
  assertApiError(await setSpEnabled(d, app.id, false), 404, 'Request_ResourceNotFound');
  assert.equal((await d.admin('GET', spPath(app.servicePrincipalId))).json.accountEnabled, true);
});

test('applications: delete removes the app, its service principal and every assignment of it', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'doomed');
  const keep = await createApp(d, 'doomed-neighbour');
  await d.setupAccount('dir-doomed', { deployments: { chat: {} } });
  const acct = accountPath('dir-doomed');
  const mine = [
    await assign(d, '/', app.servicePrincipalId, ROLE.reader),
    await assign(d, subScope(), app.servicePrincipalId, ROLE.reader),
    await assign(d, rgScope('doomed-rg'), app.servicePrincipalId, ROLE.contributor),
    await assign(d, acct, app.servicePrincipalId, ROLE.openaiUser),
    await assign(d, `${acct}/deployments/chat`, app.servicePrincipalId, ROLE.openaiContributor),
  ];
  const theirs = await assign(d, acct, keep.servicePrincipalId, ROLE.openaiUser);
  const byPrincipal = await listAssignments(d, '/', `principalId eq '${app.servicePrincipalId}'`);
  assert.deepEqual(sortedNames(byPrincipal), sortedNames(mine));

  const del = await d.admin('DELETE', appPath(app.id));
  assert.equal(del.status, 204, del.text);
  assertApiError(await d.admin('GET', appPath(app.id)), 404, 'Request_ResourceNotFound');
  assertApiError(await d.admin('GET', appPath(app.appId)), 404, 'Request_ResourceNotFound');
  assertApiError(await d.admin('GET', spPath(app.servicePrincipalId)), 404, 'Request_ResourceNotFound');
  const sps = (await d.admin('GET', '/v1.0/servicePrincipals')).json.value;
  assert.ok(!sps.some((s) => s.id === app.servicePrincipalId), 'the SP is still listed');
  const all = await allAssignments(d);
  for (const a of mine) {
    assert.ok(!all.some((x) => x.name.toLowerCase() === a.name.toLowerCase()), `assignment ${a.id} survived the app's deletion`);
    assertApiError(await d.admin('GET', `${a.id}?${AUTH_API}`), 404, 'RoleAssignmentNotFound');
  }
  assert.ok(all.some((x) => x.name === theirs.name), "another principal's assignment was removed");
  assert.deepEqual(await listAssignments(d, '/', `principalId eq '${app.servicePrincipalId}'`), []);
  // The deleted principal is gone for checks too.
  const h = await d.admin('GET', `${acct}?api-version=2024-10-01`, undefined, { headers: asPrincipal(app.servicePrincipalId) });
  assertError(h, 400, principalNotFound(app.servicePrincipalId, await tenantId(d)));
  // Its name is free again; deleting twice is not an error of the caller's making.
  const reborn = await createApp(d, 'doomed');
  assert.notEqual(reborn.id, app.id);
  assert.notEqual(reborn.appId, app.appId);
  assert.deepEqual(await listAssignments(d, '/', `principalId eq '${reborn.servicePrincipalId}'`), []);
  const again = await d.admin('DELETE', appPath(app.id));
  assertGraphError(again, 404, graphNotFound(app.id), 'second DELETE');
});

test('CLI: app create, list, show by name/id/appId, delete', async (t) => {
  const d = await startDaemon(t);
  const c = await d.cli(['app', 'create', 'cli-app', '-o', 'json']);
  assert.equal(c.code, 0, `app create: ${c.stderr}`);
  assert.ok(c.json, `app create -o json: ${c.stdout}`);
  // The CLI still makes both in one step and shows the principal with the application.
  const { servicePrincipalId, accountEnabled, ...appPart } = c.json;
  assertAppShape(appPart, 'cli-app');
  assert.equal(accountEnabled, true);
  const cliSp = await d.admin('GET', spPath(servicePrincipalId));
  assert.equal(cliSp.status, 200, cliSp.text);
  assert.equal(cliSp.json.appId, c.json.appId);
  const api = await d.admin('GET', appPath(c.json.id));
  assert.equal(api.status, 200, api.text);
  assert.equal(api.json.appId, c.json.appId);
  const human = await d.cli(['app', 'create', 'cli-app-2']);
  assert.equal(human.code, 0, human.stderr);
  const created2 = (await d.admin('GET', '/v1.0/applications')).json.value.find((a) => a.displayName === 'cli-app-2');
  assert.ok(created2, 'cli-app-2 was created');
  assert.ok(human.stdout.includes(created2.appId), `human create output shows the appId: ${human.stdout}`);

  const dup = await d.cli(['app', 'create', 'CLI-APP']);
  assert.equal(dup.code, 1, `duplicate name: exit ${dup.code} ${dup.stdout} ${dup.stderr}`);
  assert.match(dup.stderr, /Request_MultipleObjectsWithSameKeyValue/);

  const list = await d.cli(['app', 'list']);
  assert.equal(list.code, 0, list.stderr);
  for (const s of ['cli-app', c.json.appId, 'cli-app-2', created2.appId]) assert.ok(list.stdout.includes(s), `app list shows ${s}: ${list.stdout}`);
  const listJson = await d.cli(['app', 'list', '-o', 'json']);
  assert.equal(listJson.code, 0, listJson.stderr);
  const arr = Array.isArray(listJson.json) ? listJson.json : listJson.json.value;
  assert.ok(arr.some((a) => a.id === c.json.id), listJson.stdout);

  for (const key of ['cli-app', 'CLI-App', c.json.id, c.json.appId]) {
    const s = await d.cli(['app', 'show', key, '-o', 'json']);
    assert.equal(s.code, 0, `app show ${key}: ${s.stderr}`);
    assert.equal(s.json.id, c.json.id, `app show ${key}`);
    assert.equal(s.json.appId, c.json.appId);
  }
  const humanShow = await d.cli(['app', 'show', 'cli-app']);
  assert.equal(humanShow.code, 0);
  for (const s of [c.json.id, c.json.appId, c.json.servicePrincipalId]) assert.ok(humanShow.stdout.includes(s), `show prints ${s}: ${humanShow.stdout}`);
  const missing = await d.cli(['app', 'show', 'no-such-app']);
  assert.equal(missing.code, 4, `show of a missing app: ${missing.code} ${missing.stderr}`);

  await assign(d, rgScope('cli-app-rg'), c.json.servicePrincipalId, ROLE.reader);
  const del = await d.cli(['app', 'delete', 'cli-app']);
  assert.equal(del.code, 0, del.stderr);
  assertApiError(await d.admin('GET', appPath(c.json.id)), 404, 'Request_ResourceNotFound');
  assertApiError(await d.admin('GET', spPath(c.json.servicePrincipalId)), 404, 'Request_ResourceNotFound');
  assert.deepEqual(await listAssignments(d, '/', `principalId eq '${c.json.servicePrincipalId}'`), []);
  const byAppId = await d.cli(['app', 'delete', created2.appId]);
  assert.equal(byAppId.code, 0, byAppId.stderr);
  assertApiError(await d.admin('GET', appPath(created2.id)), 404, 'Request_ResourceNotFound');
});

test('directory routes are authorised: a principal without a role is refused, unknown principals are 400', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'nobody-special');
  const asSp = asPrincipal(app.servicePrincipalId);
  const before = (await d.admin('GET', '/v1.0/applications')).json.value.length;
  const sp = app.servicePrincipalId;
  for (const [method, path, body, action] of [
    ['GET', '/v1.0/applications', undefined, 'applications/standard/read'],
    ['GET', appPath(app.id), undefined, 'applications/standard/read'],
    ['GET', '/v1.0/servicePrincipals', undefined, 'servicePrincipals/standard/read'],
    ['GET', '/v1.0/organization', undefined, 'organization/standard/read'],
    ['POST', '/v1.0/applications', { displayName: 'made-by-nobody' }, 'applications/create'],
    ['PATCH', appPath(app.id), { displayName: 'renamed-by-nobody' }, 'applications/basic/update'],
    ['POST', '/v1.0/servicePrincipals', { appId: app.appId }, 'servicePrincipals/create'],
    ['PATCH', spPath(sp), { accountEnabled: false }, 'servicePrincipals/basic/update'],
    ['GET', `${appPath(app.id)}/federatedIdentityCredentials`, undefined, 'applications/standard/read'],
    ['POST', `${appPath(app.id)}/federatedIdentityCredentials`, { name: 'nobody', issuer: 'https://i.example', subject: 's', audiences: ['a'] }, 'applications/credentials/update'],
    ['DELETE', appPath(app.id), undefined, 'applications/delete'],
  ]) {
    const r = await d.admin(method, path, body, { headers: asSp });
    // The directory is authorised at "/" with Entra's permission names (docs/directory.md).
    assertGraphError(r, 403, authzFailed(sp, `microsoft.directory/${action}`, '/'), `${method} ${path} as a principal without roles`);
  }
  assert.equal((await d.admin('GET', '/v1.0/applications')).json.value.length, before, 'a refused POST created an app');
  assert.equal((await d.admin('GET', spPath(app.servicePrincipalId))).json.accountEnabled, true, 'a refused PATCH applied');
  assert.equal((await d.admin('GET', appPath(app.id))).status, 200, 'a refused DELETE applied');

  const ghost = newGuid();
  const tenant = await tenantId(d);
  for (const [method, path] of [['GET', '/v1.0/applications'], ['GET', `${accountPath('whatever')}?api-version=2024-10-01`], ['GET', `${raPath('/')}?${AUTH_API}`]]) {
    const r = await d.admin(method, path, undefined, { headers: asPrincipal(ghost) });
    (path.startsWith('/v1.0') ? assertGraphError : assertError)(r, 400, principalNotFound(ghost, tenant), `${method} ${path} as an unknown principal`);
  }
  assert.ok(d.running);
});
