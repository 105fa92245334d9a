// Hostile scopes and principals against the role-assignment API on the admin socket:
// path tricks ("..", "//", trailing slashes), case games, oversized names, SQL
// metacharacters, control bytes, unknown and malformed principals. Each must get a clear
// 4xx ARM error, store nothing, and leave the daemon serving; mixed case must address the
// same assignment.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ARM_API, SUB, accountPath, startDaemon } from '../lib/harness.mjs';
import {
  ACTION,
  AUTH_API,
  ROLE,
  allAssignments,
  assertApiError,
  assign,
  checkAccess,
  createApp,
  listAssignments,
  newGuid,
  principalNotFound,
  putAssignment,
  raPath,
  rgScope,
  sortedNames,
  subScope,
  tenantId,
} from '../lib/authz.mjs';

const CHECK = `/providers/Microsoft.Authorization/checkAccess?${AUTH_API}`;
const roleId = (g) => `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${g}`;

// Sends a request exactly as written (node:http refuses some of these targets itself).
function send(d, method, path, body, headers = []) {
  const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const lines = [
    `${method} ${path} HTTP/1.1`,
    'Host: localhost',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(payload)}`,
    'Connection: close',
    ...headers.map(([k, v]) => `${k}: ${v}`),
  ];
  return d.adminRaw([`${lines.join('\r\n')}\r\n\r\n${payload}`]);
}

const err = (code, message) => ({ error: { code, message } });
const INVALID_SCOPE = err('InvalidScope', "The scope is invalid: use '/', /subscriptions/{id}, /subscriptions/{id}/resourceGroups/{name} or a resource id, without empty segments, '.' or '..', control characters or spaces, at most 1024 characters.");
const BAD_ROLE_ID = err('InvalidRoleDefinitionId', "The role definition ID is not valid: use the role's GUID or {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}.");
const BAD_ASSIGNMENT_ID = err('InvalidRoleAssignmentId', 'The role assignment ID is not valid. The role assignment ID must be a GUID.');
const NO_PRINCIPAL = err('InvalidRequestContent', 'The request content was invalid and could not be deserialized: properties.principalId is required.');
// A principalId that is no GUID is not echoed.
const notAnObjectId = (tenant) => err('PrincipalNotFound', `Principal does not exist in the directory ${tenant}: principalId must be an object id (GUID).`);
const badHeader = (tenant) => err('PrincipalNotFound', `The x-keyless-principal header must be one principal object id (a GUID) of the directory ${tenant}.`);

// The one status and the whole body.
function assertBody(r, status, body, what) {
  assertRefused(r, status, body.error.code, what);
  assert.deepEqual(r.json, body, what);
}

function assertRefused(r, status, code, what) {
  assert.equal(r.status, status, `${what}: expected ${status} ${code || ''}, got ${r.status} (error ${r.error}) ${(r.raw || Buffer.alloc(0)).subarray(0, 500).toString('latin1')}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, `${what}: content-type`);
  assert.ok(r.json && r.json.error && typeof r.json.error.code === 'string' && typeof r.json.error.message === 'string' && r.json.error.message.length > 0,
    `${what}: not an ARM error: ${r.text.slice(0, 300)}`);
  if (code) assert.equal(r.json.error.code, code, `${what}: ${r.text.slice(0, 300)}`);
}

// Each test starts its own daemon with the same objects: an application whose service
// principal holds OpenAI User on account "hostile". Nothing one test stores is seen by
// another.
async function setup(t) {
  const d = await startDaemon(t);
  const app = await createApp(d, 'hostile-target');
  const sp = app.servicePrincipalId;
  await d.setupAccount('hostile', { deployments: { chat: {} } });
  const baseline = await assign(d, accountPath('hostile'), sp, ROLE.openaiUser);
  const h = { d, app, sp, baseline, stored: sortedNames(await allAssignments(d)) };

  // Nothing new stored, the daemon alive and still enforcing.
  h.assertUnchanged = async (what) => {
    assert.ok(d.running, `daemon died after ${what}`);
    const hz = await d.admin('GET', '/healthz');
    assert.equal(hz.status, 200, `after ${what}: healthz ${hz.status}`);
    assert.deepEqual(sortedNames(await allAssignments(d)), h.stored, `after ${what}: the stored assignments changed`);
    assert.equal((await checkAccess(d, sp, ACTION.chat, accountPath('hostile'), true)).allowed, true, `after ${what}: enforcement broke`);
  };
  h.putRaw = (scope, { name = newGuid(), principalId = sp, role = ROLE.reader, headers } = {}) =>
    send(d, 'PUT', `${raPath(scope, name)}?${AUTH_API}`, { properties: { roleDefinitionId: roleId(role), principalId } }, headers);
  return h;
}

test('"..", ".", "//" and trailing slashes in the path are InvalidScope', async (t) => {
  const h = await setup(t);
  const { d, app, sp, baseline, putRaw, assertUnchanged } = h;
  const scopes = [
    `/subscriptions/${SUB}/resourceGroups/..`,
    `/subscriptions/${SUB}/resourceGroups/rg/..`,
    `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/..`,
    `/subscriptions/${SUB}/resourceGroups/%2e%2e`,
    `/subscriptions/${SUB}/resourceGroups/%2E%2E/providers/Microsoft.CognitiveServices/accounts/hostile`,
    `/subscriptions/${SUB}/resourceGroups/.`,
    `/subscriptions/..`,
    `/subscriptions/${SUB}//resourceGroups/rg`,
    `//subscriptions/${SUB}`,
    `/subscriptions/${SUB}/resourceGroups/rg/`, // the trailing '/' meets "/providers": "//"
    `/subscriptions/${SUB}/resourceGroups/rg//`,
    `/subscriptions//resourceGroups/rg`,
    `/subscriptions/${SUB}/resourceGroups/a%2Fb`,
    `/subscriptions/${SUB}/resourceGroups/a%5Cb`,
  ];
  for (const scope of scopes) {
    const name = newGuid();
    const r = await putRaw(scope, { name });
    assertRefused(r, 400, 'InvalidScope', `PUT at ${scope}`);
    const g = await send(d, 'GET', `${raPath(scope)}?${AUTH_API}`);
    assertRefused(g, 400, 'InvalidScope', `list at ${scope}`);
    const del = await send(d, 'DELETE', `${raPath(scope, name)}?${AUTH_API}`);
    assertRefused(del, 400, 'InvalidScope', `DELETE at ${scope}`);
  }
  await assertUnchanged('path tricks');
});

test('scopes in checkAccess: one trailing slash is the same scope, malformed ones are InvalidScope', async (t) => {
  const h = await setup(t);
  const { d, app, sp, baseline, putRaw, assertUnchanged } = h;
  const acct = accountPath('hostile');
  const plain = await checkAccess(d, sp, ACTION.chat, acct, true);
  const slash = await checkAccess(d, sp, ACTION.chat, `${acct}/`, true);
  assert.equal(slash.allowed, plain.allowed);
  assert.equal(slash.allowed, true);
  for (const scope of [`${acct}//`, `${acct}/..`, `${acct}/../../rg2`, `/subscriptions/${SUB}//resourceGroups/x`, 'subscriptions/x', '', `${acct}\u0000`, `${acct}\n`, `/subscriptions/${'s'.repeat(10240)}`]) {
    const r = await d.admin('POST', CHECK, { principalId: sp, action: ACTION.chat, scope, dataAction: true });
    assertApiError(r, 400, 'InvalidScope', `checkAccess scope ${JSON.stringify(scope.slice(0, 60))}`);
  }
  await assertUnchanged('checkAccess scopes');
});

test('mixed case addresses the same scope and the same assignment', async (t) => {
  const h = await setup(t);
  const { d, app, sp, baseline, putRaw, assertUnchanged } = h;
  const sub = 'abcdef01-2345-6789-abcd-ef0123456789';
  const first = newGuid();
  const upperPath = `/SUBSCRIPTIONS/${sub.toUpperCase()}/RESOURCEGROUPS/MixedCaseRG/PROVIDERS/MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/${first}?${AUTH_API}`;
  const c = await d.admin('PUT', upperPath, { properties: { roleDefinitionId: roleId(ROLE.reader), principalId: sp } });
  assert.equal(c.status, 201, `upper-case PUT: ${c.text}`);
  assert.equal(c.json.properties.scope.toLowerCase(), rgScope('mixedcaserg', sub).toLowerCase());
  h.stored = sortedNames(await allAssignments(d));
  // The same (scope, principal, role) in another spelling is a duplicate.
  for (const scope of [rgScope('mixedcaserg', sub), rgScope('MIXEDCASERG', sub.toUpperCase()), `/subscriptions/${sub}/resourcegroups/MixedCaseRg`]) {
    const dup = await putAssignment(d, scope, sp, ROLE.reader);
    assertApiError(dup, 409, 'RoleAssignmentExists', `duplicate at ${scope}`);
  }
  // Readable, listable and checkable through any spelling.
  const lower = rgScope('mixedcaserg', sub);
  const g = await d.admin('GET', `${raPath(lower, first.toUpperCase())}?${AUTH_API}`);
  assert.equal(g.status, 200, `GET through the lower-case scope and an upper-case name: ${g.text}`);
  assert.equal(g.json.name.toLowerCase(), first.toLowerCase());
  const listed = await listAssignments(d, rgScope('MIXEDCASERG', sub.toUpperCase()), `principalId eq '${sp}'`);
  assert.ok(listed.some((a) => a.name.toLowerCase() === first.toLowerCase()), JSON.stringify(listed));
  assert.equal((await checkAccess(d, sp, ACTION.accountRead, accountPath('x', { sub: sub.toUpperCase(), rg: 'MIXEDCASERG' }))).allowed, true);
  assert.equal((await checkAccess(d, sp, ACTION.accountRead, accountPath('x', { sub, rg: 'mixedcaserg2' }))).allowed, false);
  await assertUnchanged('mixed case');
  const del = await d.admin('DELETE', `${raPath(`/subscriptions/${sub}/resourcegroups/MIXEDcaseRG`, first)}?${AUTH_API}`);
  assert.equal(del.status, 200, `DELETE through another spelling: ${del.text}`);
  h.stored = sortedNames(await allAssignments(d));
  assert.equal((await checkAccess(d, sp, ACTION.accountRead, accountPath('x', { sub, rg: 'MixedCaseRG' }))).allowed, false);
});

test('oversized scopes, names, principals and headers', async (t) => {
  const h = await setup(t);
  const { d, app, sp, baseline, putRaw, assertUnchanged } = h;
  // 10 KB does not fit the request line: the HTTP layer refuses it.
  const huge = await putRaw(rgScope('r'.repeat(10240)));
  assertRefused(huge, 414, 'RequestUriTooLong', '10 KB resource group');
  // Over KL_MAX_SCOPE (1024) but within the request line.
  const long = await putRaw(rgScope('r'.repeat(1100)));
  assertRefused(long, 400, 'InvalidScope', '1100-char resource group');
  const deep = await putRaw(`/subscriptions/${SUB}/resourceGroups/rg/providers/${Array.from({ length: 20 }, (_, i) => `Ns.T/t${i}/n${i}`).join('/')}`);
  assertBody(deep, 400, INVALID_SCOPE, '20-level resource id');
  const longList = await send(d, 'GET', `${raPath(rgScope('r'.repeat(1100)))}?${AUTH_API}`);
  assertRefused(longList, 400, 'InvalidScope', 'list at an 1100-char scope');
  // Oversized principal ids and role ids in the body.
  const tenant = await tenantId(d);
  assertBody(await putRaw(rgScope('rg'), { principalId: 'p'.repeat(10240) }), 400, notAnObjectId(tenant), '10 KB principalId');
  const bigRole = await send(d, 'PUT', `${raPath(rgScope('rg'), newGuid())}?${AUTH_API}`, { properties: { roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${'f'.repeat(10240)}`, principalId: sp } });
  assertBody(bigRole, 400, BAD_ROLE_ID, '10 KB roleDefinitionId');
  // An assignment name that is not a GUID.
  for (const name of ['not-a-guid', 'g'.repeat(300), `${newGuid()}x`]) {
    assertBody(await putRaw(rgScope('rg'), { name }), 400, BAD_ASSIGNMENT_ID, `assignment name ${name.slice(0, 40)}`);
  }
  // The principal header: malformed and oversized.
  const viaHeader = (v) => send(d, 'POST', `${accountPath('hostile')}/listKeys?${ARM_API}`, undefined, [['x-keyless-principal', v]]);
  for (const v of ['not-a-guid', 'p'.repeat(10240), "'; DROP TABLE principals;--"]) {
    assertBody(await viaHeader(v), 400, badHeader(tenant), `x-keyless-principal ${v.slice(0, 40)}`);
  }
  const ghost = newGuid();
  assertBody(await viaHeader(ghost), 400, principalNotFound(ghost, tenant), 'x-keyless-principal unknown GUID');
  await assertUnchanged('oversized input');
});

test('SQL metacharacters are refused or stored verbatim, never executed', async (t) => {
  const h = await setup(t);
  const { d, app, sp, baseline, putRaw, assertUnchanged } = h;
  const sqlRg = "x'; DROP TABLE role_assignments;--";
  const enc = encodeURIComponent(sqlRg);
  for (const scope of [`/subscriptions/${SUB}/resourceGroups/${enc}`, `/subscriptions/${enc}`, `${accountPath('hostile')}/deployments/${enc}`]) {
    assertRefused(await putRaw(scope), 400, 'InvalidScope', `PUT at ${scope}`);
    assertRefused(await send(d, 'GET', `${raPath(scope)}?${AUTH_API}`), 400, 'InvalidScope', `list at ${scope}`);
  }
  const tenant = await tenantId(d);
  assertBody(await putRaw(rgScope('rg'), { principalId: "' OR '1'='1" }), 400, notAnObjectId(tenant), 'SQL principalId');
  assertBody(await putRaw(rgScope('rg'), { principalId: `${sp}' OR '1'='1` }), 400, notAnObjectId(tenant), 'SQL after a real principalId');
  const sqlRole = await send(d, 'PUT', `${raPath(rgScope('rg'), newGuid())}?${AUTH_API}`, { properties: { roleDefinitionId: "x'; DROP TABLE role_definitions;--", principalId: sp } });
  assertBody(sqlRole, 400, BAD_ROLE_ID, 'SQL roleDefinitionId');
  for (const f of [`principalId eq '' OR 1=1 --'`, `principalId eq '${sp}'; DROP TABLE role_assignments;--`, `principalId eq '${sp}' or 1 eq 1`]) {
    const r = await send(d, 'GET', `${raPath(rgScope('rg'))}?${AUTH_API}&$filter=${encodeURIComponent(f)}`);
    assertRefused(r, 400, 'InvalidFilterInQueryString', `filter ${f}`);
  }
  // OData's doubled quote is a quote inside the value: the value is no GUID, so the term
  // is not one that is served.
  const quoted = await send(d, 'GET', `${raPath(rgScope('rg'))}?${AUTH_API}&$filter=${encodeURIComponent("principalId eq ''' OR ''1''=''1'")}`);
  assertBody(quoted, 400, err('InvalidFilterInQueryString', "The filter is not supported: use atScope(), principalId eq '{id}' or assignedTo('{id}'), joined by 'and'."), 'doubled-quote filter');
  const ck = await d.admin('POST', CHECK, { principalId: "' OR 1=1 --", action: ACTION.listKeys, scope: accountPath('hostile'), dataAction: false });
  assert.equal(ck.status, 400, `checkAccess with an SQL principal: ${ck.status} ${ck.text}`);
  assert.deepEqual(ck.json, err('InvalidRequestContent', 'principalId is required and must be an object id (GUID).'));
  await assertUnchanged('SQL metacharacters');
  // A display name is free text: stored and returned exactly.
  const evilName = "x'); DROP TABLE principals;--";
  const evil = await createApp(d, evilName);
  const back = await d.admin('GET', `/v1.0/applications/${evil.id}`);
  assert.equal(back.json.displayName, evilName);
  const a = await assign(d, rgScope('rg-evil'), evil.servicePrincipalId, ROLE.reader);
  h.stored = sortedNames(await allAssignments(d));
  assert.ok(h.stored.includes(a.name.toLowerCase()));
  assert.ok(h.stored.includes(baseline.name.toLowerCase()), 'the table lost rows');
});

test('NUL and control bytes, percent-encoded, are InvalidScope', async (t) => {
  const h = await setup(t);
  const { d, app, sp, baseline, putRaw, assertUnchanged } = h;
  for (const bad of ['%00', 'rg%00', 'rg%00x', 'rg%01', 'rg%0a', 'rg%0d%0aX-Evil:%201', 'rg%1b[31m', 'rg%7f', 'rg%09']) {
    const scope = `/subscriptions/${SUB}/resourceGroups/${bad}`;
    assertRefused(await putRaw(scope), 400, 'InvalidScope', `PUT at ${scope}`);
    assertRefused(await send(d, 'GET', `${raPath(scope)}?${AUTH_API}`), 400, 'InvalidScope', `list at ${scope}`);
  }
  // Non-ASCII and spaces are not valid in a scope either.
  for (const bad of ['%C3%A9', '%FF', '%E2%80%AE', '%20x']) {
    assertBody(await putRaw(`/subscriptions/${SUB}/resourceGroups/rg${bad}`), 400, INVALID_SCOPE, `scope with ${bad}`);
  }
  // Malformed percent-encoding.
  for (const bad of ['rg%', 'rg%zz', 'rg%0']) {
    assertBody(await putRaw(`/subscriptions/${SUB}/resourceGroups/${bad}`), 400, INVALID_SCOPE, `malformed escape ${bad}`);
  }
  await assertUnchanged('control bytes');
  // The log stays one JSON object per line: no raw control byte got through.
  for (const line of d.stderr.split('\n').filter(Boolean)) {
    if (/^(==|SUMMARY|\s)/.test(line)) continue;
    assert.doesNotThrow(() => JSON.parse(line), `log line is not JSON: ${line.slice(0, 200)}`);
  }
});

test('an unknown or malformed assignee is PrincipalNotFound and nothing is stored', async (t) => {
  const h = await setup(t);
  const { d, app, sp, baseline, putRaw, assertUnchanged } = h;
  const tenant = await tenantId(d);
  for (const scope of ['/', subScope(), rgScope('rg'), accountPath('hostile')]) {
    const ghost = newGuid();
    const name = newGuid();
    const r = await putRaw(scope, { name, principalId: ghost });
    assertRefused(r, 400, 'PrincipalNotFound', `unknown principal at ${scope}`);
    assert.deepEqual(r.json, principalNotFound(ghost, tenant));
    assertRefused(await send(d, 'GET', `${raPath(scope, name)}?${AUTH_API}`), 404, 'RoleAssignmentNotFound', 'the refused assignment');
  }
  // The tenant id and the application's appId name no principal that can be assigned to
  // by object id; an app object id is not its service principal either.
  for (const id of [tenant, app.appId, app.id]) {
    assertBody(await putRaw(rgScope('rg'), { principalId: id }), 400, principalNotFound(id, tenant), `principalId ${id}`);
  }
  for (const [principalId, body] of [['', notAnObjectId(tenant)], [' ', notAnObjectId(tenant)], ['not-a-guid', notAnObjectId(tenant)],
    [42, NO_PRINCIPAL], [null, NO_PRINCIPAL], [['x'], NO_PRINCIPAL], [{ id: sp }, NO_PRINCIPAL]]) {
    const r = await send(d, 'PUT', `${raPath(rgScope('rg'), newGuid())}?${AUTH_API}`, { properties: { roleDefinitionId: roleId(ROLE.reader), principalId } });
    assertBody(r, 400, body, `principalId ${JSON.stringify(principalId)}`);
  }
  await assertUnchanged('unknown assignees');
});
