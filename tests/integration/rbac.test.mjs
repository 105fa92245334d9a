// Azure RBAC on the admin socket of a real keylessd: built-in and custom role
// definitions, role assignments at every scope level with Azure's list and filter
// semantics, the refusals of the contract, enforcement that sees every change on the very
// next request (x-keyless-principal, checkAccess, `keyless role check`), Azure's
// inheritance rules, escalation limits, cascades, the CLI, and persistence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { ARM_API, RG, SUB, accountPath, makeTempDir, removeTempDir, startDaemon, writeStormAndCrash } from '../lib/harness.mjs';
import {
  ACTION,
  AUTH_API,
  GUID,
  ISO,
  ROLE,
  ROLE_NAMES,
  allAssignments,
  asPrincipal,
  assertApiError,
  assertAuthzFailed,
  assertGraphError,
  assign,
  authzFailed,
  checkAccess,
  createApp,
  customRoleBody,
  deleteAssignment,
  listAssignments,
  newGuid,
  principalNotFound,
  putAssignment,
  putRole,
  raPath,
  rdPath,
  rgScope,
  rootPrincipal,
  setSpEnabled,
  sortedNames,
  subScope,
  tenantId,
} from '../lib/authz.mjs';

const OTHER_SUB = '11111111-2222-3333-4444-555555555555';

// Every test starts its own daemon (about 70 ms): what it asserts on, lists of every
// assignment included, is only its own.
const err = (code, message) => ({ error: { code, message } });
function assertError(r, status, body, what = '') {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, what);
  assert.deepEqual(r.json, body, what);
}
const invalidRole = (why) => err('InvalidRoleDefinition', `The role definition is invalid: ${why}.`);
const undeserializable = (why) => err('InvalidRequestContent', `The request content was invalid and could not be deserialized: ${why}.`);
const noSuchRole = (guid) => err('RoleDefinitionDoesNotExist', `The specified role definition with ID '${guid}' does not exist.`);
const lastOwner = err('LastOwnerCannotBeRemoved', "This is the last Owner role assignment at scope '/' of an enabled principal; assign Owner at '/' to another principal first.");

const listKeysAs = (d, name, oid, opts) =>
  d.admin('POST', `${accountPath(name, opts)}/listKeys?${ARM_API}`, undefined, { headers: asPrincipal(oid) });
const roleDefId = (scope, guid) => `${scope === '/' ? '' : scope}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;

// A refused roleAssignments/write or delete names, as Azure does, the assignment's full id
// as the scope (the check itself is at the scope the assignment lies in).
function assertWriteDenied(r, oid, scope, name, action = ACTION.raWrite) {
  assertError(r, 403, authzFailed(oid, action, raPath(scope, name)), `${action} at ${scope} as ${oid}`);
}

test('built-in role definitions: Azure GUIDs, visible at every scope, immutable', async (t) => {
  const d = await startDaemon(t);
  for (const scope of ['/', subScope(), rgScope('any-rg'), accountPath('not-hosted-here')]) {
    const r = await d.admin('GET', `${rdPath(scope)}?${AUTH_API}`);
    assert.equal(r.status, 200, `list role definitions at ${scope}: ${r.text}`);
    for (const [guid, roleName] of Object.entries(ROLE_NAMES)) {
      const found = r.json.value.filter((x) => x.name === guid);
      assert.equal(found.length, 1, `${roleName} (${guid}) listed once at ${scope}`);
      const rd = found[0];
      assert.equal(rd.id, roleDefId(scope, guid), `id echoes the request scope ${scope}`);
      assert.equal(rd.type, 'Microsoft.Authorization/roleDefinitions');
      assert.equal(rd.properties.roleName, roleName);
      assert.equal(rd.properties.type, 'BuiltInRole');
      assert.deepEqual(rd.properties.assignableScopes, ['/']);
      assert.ok(Array.isArray(rd.properties.permissions) && rd.properties.permissions.length >= 1);
    }
  }
  const get = async (guid, scope = '/') => {
    const r = await d.admin('GET', `${rdPath(scope, guid)}?${AUTH_API}`);
    assert.equal(r.status, 200, `GET role ${guid}: ${r.text}`);
    return r.json;
  };
  const owner = await get(ROLE.owner);
  assert.equal(owner.id, `/providers/Microsoft.Authorization/roleDefinitions/${ROLE.owner}`);
  assert.deepEqual(owner.properties.permissions, [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }]);
  assert.equal(typeof owner.properties.description, 'string');
  assert.equal(owner.properties.createdBy, null);
  assert.equal(owner.properties.updatedBy, null);
  assert.match(owner.properties.createdOn, ISO);
  assert.match(owner.properties.updatedOn, ISO);
  const reader = await get(ROLE.reader, subScope());
  assert.equal(reader.id, `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${ROLE.reader}`);
  assert.deepEqual(reader.properties.permissions[0].actions, ['*/read']);
  const oaiUser = await get(ROLE.openaiUser);
  assert.ok(oaiUser.properties.permissions[0].dataActions.includes(ACTION.chat), JSON.stringify(oaiUser.properties.permissions));
  const csContrib = await get(ROLE.csContributor);
  assert.ok(csContrib.properties.permissions[0].actions.includes('Microsoft.CognitiveServices/*'));
  const contrib = await get(ROLE.contributor);
  assert.ok(contrib.properties.permissions[0].notActions.includes('Microsoft.Authorization/*/Write'));

  // Filters.
  const byName = await d.admin('GET', `${rdPath('/')}?${AUTH_API}&$filter=${encodeURIComponent("roleName eq 'Reader'")}`);
  assert.equal(byName.status, 200, byName.text);
  assert.deepEqual(byName.json.value.map((x) => x.name), [ROLE.reader]);
  const byLongName = await d.admin('GET', `${rdPath(subScope())}?${AUTH_API}&$filter=${encodeURIComponent("roleName eq 'Cognitive Services OpenAI User'")}`);
  assert.deepEqual(byLongName.json.value.map((x) => x.name), [ROLE.openaiUser], byLongName.text);
  const customOnly = await d.admin('GET', `${rdPath('/')}?${AUTH_API}&$filter=${encodeURIComponent("type eq 'CustomRole'")}`);
  assert.equal(customOnly.status, 200, customOnly.text);
  assert.ok(customOnly.json.value.every((x) => x.properties.type === 'CustomRole'), customOnly.text);
  assert.ok(!customOnly.json.value.some((x) => x.name === ROLE.owner));

  // Built-ins cannot be changed or deleted, at any scope.
  const before = await get(ROLE.reader);
  for (const scope of ['/', subScope()]) {
    for (const guid of [ROLE.reader, ROLE.owner]) {
      const put = await putRole(d, scope, guid, customRoleBody('Reader', { actions: ['*'], assignableScopes: ['/'] }));
      assertApiError(put, 400, 'BuiltInRoleCannotBeModified', `PUT built-in ${guid} at ${scope}`);
      const del = await d.admin('DELETE', `${rdPath(scope, guid)}?${AUTH_API}`);
      assertApiError(del, 400, 'BuiltInRoleCannotBeModified', `DELETE built-in ${guid} at ${scope}`);
    }
  }
  assert.deepEqual(await get(ROLE.reader), before);
  const unknownGuid = newGuid();
  const unknown = await d.admin('GET', `${rdPath('/', unknownGuid)}?${AUTH_API}`);
  assertError(unknown, 404, noSuchRole(unknownGuid), 'GET unknown role definition');
});

test('custom roles: create, get, list, update, name clashes, invalid definitions, delete while assigned', async (t) => {
  const d = await startDaemon(t);
  const guid = newGuid();
  const body = customRoleBody('Key Lister', { actions: [ACTION.listKeys, ACTION.accountRead] });
  const c = await putRole(d, subScope(), guid, body);
  assert.equal(c.status, 201, c.text);
  assert.equal(c.json.id, roleDefId(subScope(), guid));
  assert.equal(c.json.name, guid);
  assert.equal(c.json.type, 'Microsoft.Authorization/roleDefinitions');
  assert.equal(c.json.properties.roleName, 'Key Lister');
  assert.equal(c.json.properties.type, 'CustomRole');
  assert.equal(c.json.properties.description, body.description);
  assert.deepEqual(c.json.properties.assignableScopes, [subScope()]);
  assert.deepEqual(c.json.properties.permissions, body.permissions);
  assert.match(c.json.properties.createdOn, ISO);
  assert.match(c.json.properties.updatedOn, ISO);
  const g = await d.admin('GET', `${rdPath(subScope(), guid)}?${AUTH_API}`);
  assert.equal(g.status, 200, g.text);
  assert.deepEqual(g.json, c.json);

  const listed = async (scope, filter) => {
    const q = filter ? `&$filter=${encodeURIComponent(filter)}` : '';
    const r = await d.admin('GET', `${rdPath(scope)}?${AUTH_API}${q}`);
    assert.equal(r.status, 200, `list roles at ${scope}: ${r.text}`);
    return r.json.value;
  };
  for (const scope of ['/', subScope(), rgScope('under-sub')]) {
    const hit = (await listed(scope)).filter((x) => x.name === guid);
    assert.equal(hit.length, 1, `custom role listed at ${scope}`);
    assert.deepEqual(hit[0].properties, c.json.properties);
  }
  assert.ok(!(await listed(subScope(OTHER_SUB))).some((x) => x.name === guid), 'listed under a subscription it is not assignable in');
  const customs = await listed(subScope(), "type eq 'CustomRole'");
  assert.ok(customs.some((x) => x.name === guid));
  assert.ok(customs.every((x) => x.properties.type === 'CustomRole'));
  assert.deepEqual((await listed(subScope(), "roleName eq 'Key Lister'")).map((x) => x.name), [guid]);

  // Update: 200, creation kept.
  const upd = await putRole(d, subScope(), guid, { ...body, description: 'lists keys, nothing else' });
  assert.equal(upd.status, 200, upd.text);
  assert.equal(upd.json.properties.description, 'lists keys, nothing else');
  assert.equal(upd.json.properties.createdOn, c.json.properties.createdOn);
  assert.equal((await d.admin('GET', `${rdPath(subScope(), guid)}?${AUTH_API}`)).json.properties.description, 'lists keys, nothing else');

  // Name clashes (case-insensitive, built-in names included).
  const nCustoms = (await listed('/', "type eq 'CustomRole'")).length;
  for (const roleName of ['Key Lister', 'KEY LISTER', 'Reader']) {
    const r = await putRole(d, subScope(), newGuid(), customRoleBody(roleName));
    assertApiError(r, 409, 'RoleDefinitionWithSameNameExists', roleName);
  }
  // Invalid definitions.
  const invalid = [
    ['empty roleName', customRoleBody('')],
    ['no permissions', { ...customRoleBody('No Perms'), permissions: [] }],
    ['action with a space', customRoleBody('Bad Action', { actions: ['Microsoft.CognitiveServices/accounts/list Keys/action'] })],
    ['empty action', customRoleBody('Empty Action', { actions: [''] })],
    ['non-ASCII action', customRoleBody('Accented Action', { actions: ['Microsoft.CognitiveServices/accounts/réad'] })],
    ['empty assignableScopes', customRoleBody('No Scopes', { assignableScopes: [] })],
    ['assignable scope with ..', customRoleBody('Dot Dot', { assignableScopes: [`${subScope()}/resourceGroups/../x`] })],
    ['assignable scope with //', customRoleBody('Slash Slash', { assignableScopes: [`${subScope()}//resourceGroups/x`] })],
  ];
  const badGuids = [];
  for (const [what, props] of invalid) {
    const id = newGuid();
    badGuids.push(id);
    assertApiError(await putRole(d, subScope(), id, props), 400, 'InvalidRoleDefinition', what);
  }
  // assignableScopes must lie at or below the scope the role is created at.
  const outside = newGuid();
  badGuids.push(outside);
  const escapes = invalidRole('every assignable scope must lie at or below the scope the role is created at');
  assertError(await putRole(d, rgScope('home-rg'), outside, customRoleBody('Escapes Its Group', { assignableScopes: [subScope()] })), 400, escapes, 'assignable scope above the creation scope');
  const outside2 = newGuid();
  badGuids.push(outside2);
  assertError(await putRole(d, subScope(), outside2, customRoleBody('Other Sub', { assignableScopes: [subScope(OTHER_SUB)] })), 400, escapes, 'assignable scope in another subscription');
  for (const id of badGuids) assertError(await d.admin('GET', `${rdPath('/', id)}?${AUTH_API}`), 404, noSuchRole(id), `refused role ${id} was stored`);
  assert.equal((await listed('/', "type eq 'CustomRole'")).length, nCustoms, 'a refused PUT stored a role');

  // A custom role grants exactly its actions; it cannot be deleted while assigned.
  const app = await createApp(d, 'key-lister-app');
  await d.setupAccount('custom-role-acct', { deployments: {} });
  const sp = app.servicePrincipalId;
  assertAuthzFailed(await listKeysAs(d, 'custom-role-acct', sp), sp, ACTION.listKeys, accountPath('custom-role-acct'));
  const a = await assign(d, accountPath('custom-role-acct'), sp, guid);
  assert.equal(a.properties.roleDefinitionId, roleDefId(subScope(), guid));
  assert.equal((await listKeysAs(d, 'custom-role-acct', sp)).status, 200);
  const regen = await d.admin('POST', `${accountPath('custom-role-acct')}/regenerateKey?${ARM_API}`, { keyName: 'Key1' }, { headers: asPrincipal(sp) });
  assertAuthzFailed(regen, sp, ACTION.regenerateKey, accountPath('custom-role-acct'));
  const busy = await d.admin('DELETE', `${rdPath(subScope(), guid)}?${AUTH_API}`);
  assertApiError(busy, 409, 'RoleDefinitionHasAssignments');
  assert.equal((await d.admin('GET', `${rdPath(subScope(), guid)}?${AUTH_API}`)).status, 200, 'role deleted despite 409');
  assert.equal((await listKeysAs(d, 'custom-role-acct', sp)).status, 200, 'the assignment stopped working after a refused role delete');

  assert.equal((await deleteAssignment(d, accountPath('custom-role-acct'), a.name)).status, 200);
  const del = await d.admin('DELETE', `${rdPath(subScope(), guid)}?${AUTH_API}`);
  assert.equal(del.status, 200, del.text);
  assert.equal(del.json.name, guid);
  assert.equal(del.json.properties.roleName, 'Key Lister');
  assertError(await d.admin('GET', `${rdPath(subScope(), guid)}?${AUTH_API}`), 404, noSuchRole(guid));
  assert.equal((await d.admin('DELETE', `${rdPath(subScope(), guid)}?${AUTH_API}`)).status, 204);
  assert.ok(!(await listed('/')).some((x) => x.name === guid));
  // Its name is free again.
  const reuse = await putRole(d, subScope(), newGuid(), customRoleBody('Key Lister'));
  assert.equal(reuse.status, 201, reuse.text);
});

test('role assignments at every scope level: shape, get, idempotent PUT, list and filters, delete', async (t) => {
  const d = await startDaemon(t);
  const root = await rootPrincipal(d);
  const app = await createApp(d, 'levels-app');
  const sp = app.servicePrincipalId;
  const acct = accountPath('levels-acct', { rg: 'levels-rg' }); // need not be hosted
  const rg = rgScope('levels-rg');
  const levels = [
    { scope: '/', role: ROLE.reader, roleId: ROLE.reader /* bare GUID */, description: 'root reader' },
    { scope: subScope(), role: ROLE.reader, roleId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${ROLE.reader}` },
    { scope: rg, role: ROLE.contributor, roleId: `/providers/Microsoft.Authorization/roleDefinitions/${ROLE.contributor}` },
    { scope: acct, role: ROLE.openaiUser, roleId: `/subscriptions/${OTHER_SUB}/providers/Microsoft.Authorization/roleDefinitions/${ROLE.openaiUser}` },
  ];
  const made = {};
  for (const l of levels) {
    const name = newGuid();
    const r = await putAssignment(d, l.scope, sp, l.role, { name, roleId: l.roleId, description: l.description });
    assert.equal(r.status, 201, `PUT at ${l.scope}: ${r.text}`);
    assert.match(r.headers['content-type'] || '', /^application\/json/);
    const p = r.json.properties;
    assert.match(p.createdOn, ISO);
    assert.match(p.updatedOn, ISO);
    assert.deepEqual(r.json, {
      id: raPath(l.scope, name),
      name,
      type: 'Microsoft.Authorization/roleAssignments',
      properties: {
        roleDefinitionId: l.scope === '/'
          ? `/providers/Microsoft.Authorization/roleDefinitions/${l.role}`
          : `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${l.role}`,
        principalId: sp,
        principalType: 'ServicePrincipal',
        scope: l.scope,
        description: l.description ?? null,
        condition: null,
        conditionVersion: null,
        createdOn: p.createdOn,
        updatedOn: p.updatedOn,
        createdBy: root.oid,
        updatedBy: root.oid,
        delegatedManagedIdentityResourceId: null,
      },
    }, `assignment body at ${l.scope}`);
    const g = await d.admin('GET', `${raPath(l.scope, name)}?${AUTH_API}`);
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.json, r.json);
    // Idempotent re-PUT; a changed one is refused.
    const again = await putAssignment(d, l.scope, sp, l.role, { name, roleId: l.roleId, description: l.description });
    assert.equal(again.status, 201, `identical re-PUT at ${l.scope}: ${again.text}`);
    assert.equal(again.json.name, name);
    assert.equal(again.json.properties.principalId, sp);
    const changed = await putAssignment(d, l.scope, sp, ROLE.csUser, { name });
    assertApiError(changed, 400, 'RoleAssignmentUpdateNotPermitted', `changed re-PUT at ${l.scope}`);
    assert.deepEqual((await d.admin('GET', `${raPath(l.scope, name)}?${AUTH_API}`)).json.properties.roleDefinitionId, r.json.properties.roleDefinitionId);
    made[l.scope] = r.json;
  }
  // A sibling group whose name extends "levels-rg".
  const sibling = await assign(d, rgScope('levels-rg2'), sp, ROLE.reader);
  const other = await createApp(d, 'levels-other');
  const otherAtRg = await assign(d, rg, other.servicePrincipalId, ROLE.reader);
  const n = (a) => a.name.toLowerCase();
  const names = (list) => new Set(list.map(n));

  // At the group: everything above, at and below it; not the sibling group.
  const atRg = names(await listAssignments(d, rg));
  for (const s of ['/', subScope(), rg, acct]) assert.ok(atRg.has(n(made[s])), `list at rg misses the one at ${s}`);
  assert.ok(atRg.has(n(root.assignment)), 'list at rg misses the bootstrap Owner at "/"');
  assert.ok(atRg.has(n(otherAtRg)));
  assert.ok(!atRg.has(n(sibling)), 'an assignment on levels-rg2 listed under levels-rg');
  // principalId filter: that principal's, at/above/below.
  const mine = await listAssignments(d, rg, `principalId eq '${sp}'`);
  assert.deepEqual(sortedNames(mine), sortedNames(Object.values(made)));
  assert.ok(mine.every((a) => a.properties.principalId === sp));
  // atScope(): at and above only.
  const atAbove = names(await listAssignments(d, rg, 'atScope()'));
  for (const s of ['/', subScope(), rg]) assert.ok(atAbove.has(n(made[s])), `atScope() misses ${s}`);
  assert.ok(!atAbove.has(n(made[acct])), 'atScope() lists one below the scope');
  assert.ok(atAbove.has(n(root.assignment)));
  const both = await listAssignments(d, rg, `atScope() and principalId eq '${sp}'`);
  assert.deepEqual(sortedNames(both), sortedNames([made['/'], made[subScope()], made[rg]]));
  // assignedTo('{id}'), alone and after atScope(), is what `az role assignment list
  // --assignee X --include-groups` sends; without groups it is principalId eq.
  const raw = async (f) => {
    const r = await d.admin('GET', `${raPath(rg)}?${AUTH_API}&$filter=${encodeURIComponent(f)}`);
    assert.equal(r.status, 200, `${f}: ${r.text}`);
    return r.json;
  };
  const byName = (list) => [...list].sort((x, y) => x.name.localeCompare(y.name));
  // As stored now (the identical re-PUTs above moved updatedOn).
  const now = {};
  for (const [scope, a] of Object.entries(made)) now[scope] = (await d.admin('GET', `${a.id}?${AUTH_API}`)).json;
  const assigned = await raw(`assignedTo('${sp}')`);
  assert.deepEqual(Object.keys(assigned), ['value']);
  assert.deepEqual(byName(assigned.value), byName(Object.values(now)));
  assert.deepEqual(assigned, await raw(`principalId eq '${sp}'`));
  const assignedAtScope = await raw(`atScope() and assignedTo('${sp.toUpperCase()}')`);
  assert.deepEqual(byName(assignedAtScope.value), byName([now['/'], now[subScope()], now[rg]]));
  assert.deepEqual(assignedAtScope, await raw(`atScope() and principalId eq '${sp}'`));
  assert.deepEqual((await raw(`assignedTo('${other.servicePrincipalId}')`)).value, [otherAtRg]);
  // From the account: everything above; from another subscription: only the root ones.
  const atAcct = names(await listAssignments(d, acct));
  for (const s of ['/', subScope(), rg, acct]) assert.ok(atAcct.has(n(made[s])));
  assert.ok(!atAcct.has(n(sibling)));
  const elsewhere = await listAssignments(d, subScope(OTHER_SUB), `principalId eq '${sp}'`);
  assert.deepEqual(sortedNames(elsewhere), sortedNames([made['/']]));
  // Unsupported filters: the grammar's refusal, or (well-formed but not served) the list
  // of what is served.
  const malformed = err('InvalidFilterInQueryString', "The $filter is malformed or not supported: use terms such as name() or property eq 'value', joined by 'and'.");
  const unsupported = err('InvalidFilterInQueryString', "The filter is not supported: use atScope(), principalId eq '{id}' or assignedTo('{id}'), joined by 'and'.");
  for (const [f, body] of [
    ['foo eq 1', malformed], ['principalId eq', malformed], [`atScope() or principalId eq '${sp}'`, malformed],
    ["principalId eq 'not-closed", malformed], ['atScope(', malformed], [`principalId ne '${sp}'`, malformed],
    [`assignedTo(${sp})`, malformed], ["foo eq '1'", unsupported], ["assignedTo('not-a-guid')", unsupported],
    ['assignedTo()', unsupported], [`atScope('${sp}')`, unsupported], [`assignedTo('${sp}') and principalId eq '${sp}'`, unsupported],
  ]) {
    const r = await d.admin('GET', `${raPath(rg)}?${AUTH_API}&$filter=${encodeURIComponent(f)}`);
    assertError(r, 400, body, `filter ${f}`);
  }

  assertApiError(await d.admin('GET', `${raPath(rg, newGuid())}?${AUTH_API}`), 404, 'RoleAssignmentNotFound');
  for (const l of levels) {
    const a = made[l.scope];
    const del = await deleteAssignment(d, l.scope, a.name);
    assert.equal(del.status, 200, del.text);
    // The deleted assignment as it was stored (an identical re-PUT moves updatedOn).
    assert.deepEqual(del.json, now[l.scope]);
    assertApiError(await d.admin('GET', `${raPath(l.scope, a.name)}?${AUTH_API}`), 404, 'RoleAssignmentNotFound');
    assert.equal((await deleteAssignment(d, l.scope, a.name)).status, 204);
  }
  assert.deepEqual(sortedNames(await listAssignments(d, '/', `principalId eq '${sp}'`)), sortedNames([sibling]));
});

test('refusals: duplicate, unknown principal, unknown role, wrong principalType, scope not assignable; nothing stored', async (t) => {
  const d = await startDaemon(t);
  const tenant = await tenantId(d);
  const app = await createApp(d, 'refusals-app');
  const sp = app.servicePrincipalId;
  const before = sortedNames(await allAssignments(d));
  const kept = [];

  const first = await assign(d, rgScope('dup-rg'), sp, ROLE.reader);
  kept.push(first);
  for (const roleId of [undefined, ROLE.reader, `/providers/Microsoft.Authorization/roleDefinitions/${ROLE.reader.toUpperCase()}`]) {
    const dup = await putAssignment(d, rgScope('dup-rg'), sp, ROLE.reader, { roleId });
    assert.equal(dup.status, 409, `duplicate (${roleId}): ${dup.status} ${dup.text}`);
    assert.deepEqual(dup.json, { error: { code: 'RoleAssignmentExists', message: 'The role assignment already exists.' } });
  }
  // Another role at the same scope is not a duplicate.
  kept.push(await assign(d, rgScope('dup-rg'), sp, ROLE.openaiUser));

  const ghost = newGuid();
  const gname = newGuid();
  const nf = await putAssignment(d, rgScope('dup-rg'), ghost, ROLE.reader, { name: gname });
  assert.equal(nf.status, 400, nf.text);
  assert.deepEqual(nf.json, principalNotFound(ghost, tenant));
  assertApiError(await d.admin('GET', `${raPath(rgScope('dup-rg'), gname)}?${AUTH_API}`), 404, 'RoleAssignmentNotFound');

  const noRoleGuid = newGuid();
  assertError(await putAssignment(d, rgScope('dup-rg'), sp, noRoleGuid), 400, noSuchRole(noRoleGuid));
  assertError(await putAssignment(d, rgScope('dup-rg'), sp, ROLE.csUser, { principalType: 'User' }), 400,
    err('UnmatchedPrincipalType', `The PrincipalId '${sp}' has type 'ServicePrincipal', which is different from specified PrincipalType 'User'.`), 'principalType User for a service principal');
  assertError(await putAssignment(d, rgScope('dup-rg'), sp, ROLE.csUser, { principalType: 'Banana' }), 400,
    undeserializable('properties.principalType must be User, Group, ServicePrincipal, ForeignGroup or Device'), 'principalType Banana');
  kept.push(await assign(d, rgScope('dup-rg'), sp, ROLE.csUser, { principalType: 'ServicePrincipal' }));
  const noPrincipal = await d.admin('PUT', `${raPath(rgScope('dup-rg'), newGuid())}?${AUTH_API}`, { properties: { roleDefinitionId: ROLE.reader } });
  assertError(noPrincipal, 400, undeserializable('properties.principalId is required'), 'no principalId');
  const noRole = await d.admin('PUT', `${raPath(rgScope('dup-rg'), newGuid())}?${AUTH_API}`, { properties: { principalId: sp } });
  assertError(noRole, 400, undeserializable('properties.roleDefinitionId is required'), 'no roleDefinitionId');
  const badJson = await d.admin('PUT', `${raPath(rgScope('dup-rg'), newGuid())}?${AUTH_API}`, '{"properties":', { headers: { 'content-type': 'application/json' } });
  assertApiError(badJson, 400, 'InvalidRequestContent');
  const noApi = await d.admin('PUT', raPath(rgScope('dup-rg'), newGuid()), { properties: { principalId: sp, roleDefinitionId: ROLE.reader } });
  assertApiError(noApi, 400, 'MissingApiVersionParameter');

  // A custom role assignable in one subscription only.
  const narrow = newGuid();
  const cr = await putRole(d, subScope(), narrow, customRoleBody('Only In Default Sub', { actions: [ACTION.accountRead] }));
  assert.equal(cr.status, 201, cr.text);
  for (const scope of [subScope(OTHER_SUB), rgScope('x', OTHER_SUB), accountPath('far', { sub: OTHER_SUB, rg: 'x' }), '/']) {
    const r = await putAssignment(d, scope, sp, narrow);
    assertApiError(r, 400, 'RoleAssignmentScopeNotAssignable', `custom role at ${scope}`);
  }
  kept.push(await assign(d, rgScope('inside-rg'), sp, narrow));
  kept.push(await assign(d, subScope(), sp, narrow));

  const after = sortedNames(await allAssignments(d));
  assert.deepEqual(after, [...before, ...sortedNames(kept)].sort(), 'only the accepted assignments were stored');
});

test('the next request sees every change: listKeys, checkAccess and `keyless role check` flip at once', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'next-check');
  const sp = app.servicePrincipalId;
  const { keys } = await d.setupAccount('nextcheck', { deployments: {} });
  const acct = accountPath('nextcheck');
  const check = () => checkAccess(d, sp, ACTION.listKeys, acct);
  const cliCheck = (assignee = 'next-check') => d.cli(['role', 'check', '--assignee', assignee, '--action', ACTION.listKeys, '--scope', acct]);
  // `keyless role check` exits 0 when allowed, 1 when denied (keyless role --help).
  const assertCliDenied = (r, what) => {
    assert.equal(r.code, 1, `role check (${what}) should deny: exit ${r.code} ${r.stdout} ${r.stderr}`);
    assert.match(r.stdout, /DENIED/, what);
  };

  assertAuthzFailed(await listKeysAs(d, 'nextcheck', sp), sp, ACTION.listKeys, acct, 'listKeys before any assignment');
  assertAuthzFailed(await d.admin('GET', `${acct}?${ARM_API}`, undefined, { headers: asPrincipal(sp) }), sp, ACTION.accountRead, acct, 'GET account');
  const denied = await check();
  assert.equal(denied.allowed, false);
  assert.equal(denied.roleAssignmentId, null);
  assert.equal(denied.roleDefinitionId, null);
  assert.equal(typeof denied.reason, 'string');
  assertCliDenied(await cliCheck(), 'before');

  for (let round = 0; round < 5; round++) {
    const a = await assign(d, acct, sp, ROLE.csContributor);
    const ok = await listKeysAs(d, 'nextcheck', sp);
    assert.equal(ok.status, 200, `round ${round}: listKeys right after the assignment: ${ok.text}`);
    assert.deepEqual(ok.json, keys);
    const yes = await check();
    assert.equal(yes.allowed, true, JSON.stringify(yes));
    assert.ok(yes.roleAssignmentId.toLowerCase().endsWith(a.name.toLowerCase()), `roleAssignmentId ${yes.roleAssignmentId} is not ${a.name}`);
    assert.ok(yes.roleDefinitionId.toLowerCase().endsWith(ROLE.csContributor), yes.roleDefinitionId);
    if (round === 0) {
      for (const assignee of ['next-check', app.appId, sp]) {
        const r = await cliCheck(assignee);
        assert.equal(r.code, 0, `role check --assignee ${assignee} should allow: exit ${r.code} ${r.stdout} ${r.stderr}`);
        assert.match(r.stdout, /ALLOWED/);
      }
    }
    const del = await deleteAssignment(d, acct, a.name);
    assert.equal(del.status, 200, del.text);
    assertAuthzFailed(await listKeysAs(d, 'nextcheck', sp), sp, ACTION.listKeys, acct, `round ${round}: listKeys right after the delete`);
    const no = await check();
    assert.equal(no.allowed, false, `round ${round}: checkAccess after delete: ${JSON.stringify(no)}`);
    if (round === 0) assertCliDenied(await cliCheck(), 'after delete');
  }

  // The header names a principal; the bootstrap administrator may be named too.
  const root = await rootPrincipal(d);
  assert.equal((await listKeysAs(d, 'nextcheck', root.oid)).status, 200);
  const ghost = newGuid();
  const tenant = await tenantId(d);
  assertError(await listKeysAs(d, 'nextcheck', ghost), 400, principalNotFound(ghost, tenant));
  const ghostCheck = await d.admin('POST', `/providers/Microsoft.Authorization/checkAccess?${AUTH_API}`, { principalId: ghost, action: ACTION.listKeys, scope: acct, dataAction: false });
  assertError(ghostCheck, 400, principalNotFound(ghost, tenant), 'checkAccess for an unknown principal');
});

test('Azure semantics: data actions per account, OpenAI Contributor, prefix-sharing names, Owner and data actions', async (t) => {
  const d = await startDaemon(t);
  const rg = 'sem-rg';
  for (const name of ['sem-a', 'sem-a2']) await d.setupAccount(name, { rg, deployments: { chat: {} } });
  await d.setupAccount('sem-team', { rg: 'team', deployments: {} });
  await d.setupAccount('sem-team2', { rg: 'team2', deployments: {} });
  const A = accountPath('sem-a', { rg });
  const B = accountPath('sem-a2', { rg });
  const user = (await createApp(d, 'sem-user')).servicePrincipalId;
  const contrib = (await createApp(d, 'sem-contrib')).servicePrincipalId;
  const teamReader = (await createApp(d, 'sem-team-reader')).servicePrincipalId;
  const owner = (await createApp(d, 'sem-owner')).servicePrincipalId;
  await assign(d, A, user, ROLE.openaiUser);
  await assign(d, rgScope(rg), contrib, ROLE.openaiContributor);
  await assign(d, rgScope('team'), teamReader, ROLE.reader);
  await assign(d, rgScope(rg), owner, ROLE.owner);

  // OpenAI User on A: inference at A (and its deployments), not at A2, not as a control action.
  assert.equal((await checkAccess(d, user, ACTION.chat, A, true)).allowed, true);
  assert.equal((await checkAccess(d, user, ACTION.embeddings, A, true)).allowed, true);
  assert.equal((await checkAccess(d, user, ACTION.chat, `${A}/deployments/chat`, true)).allowed, true);
  assert.equal((await checkAccess(d, user, ACTION.chat, B, true)).allowed, false, 'OpenAI User on sem-a leaks to sem-a2');
  assert.equal((await checkAccess(d, user, ACTION.chat, A, false)).allowed, false, 'a data action granted as a control action');
  assert.equal((await d.admin('GET', `${A}?${ARM_API}`, undefined, { headers: asPrincipal(user) })).status, 200);
  assertAuthzFailed(await listKeysAs(d, 'sem-a', user, { rg }), user, ACTION.listKeys, A);
  assertAuthzFailed(await d.admin('GET', `${B}?${ARM_API}`, undefined, { headers: asPrincipal(user) }), user, ACTION.accountRead, B);

  // OpenAI Contributor on the group: deployments under it, never listKeys or account writes.
  for (const acct of [A, B]) {
    const dep = await d.admin('PUT', `${acct}/deployments/by-contrib?${ARM_API}`, {}, { headers: asPrincipal(contrib) });
    assert.equal(dep.status, 201, `deployments/write under the group: ${dep.text}`);
    assert.equal((await checkAccess(d, contrib, ACTION.deploymentWrite, `${acct}/deployments/x`)).allowed, true);
    assert.equal((await checkAccess(d, contrib, ACTION.listKeys, acct)).allowed, false);
    assert.equal((await checkAccess(d, contrib, ACTION.chat, acct, true)).allowed, true);
  }
  assertAuthzFailed(await listKeysAs(d, 'sem-a', contrib, { rg }), contrib, ACTION.listKeys, A);
  assertAuthzFailed(await d.admin('PUT', `${A}?${ARM_API}`, { properties: { disableLocalAuth: true } }, { headers: asPrincipal(contrib) }), contrib, ACTION.accountWrite, A);
  assert.equal((await d.admin('GET', `${A}?${ARM_API}`)).json.properties.disableLocalAuth, false, 'a refused PUT applied');
  const outside = accountPath('sem-team', { rg: 'team' });
  assertAuthzFailed(await d.admin('PUT', `${outside}/deployments/by-contrib?${ARM_API}`, {}, { headers: asPrincipal(contrib) }), contrib, ACTION.deploymentWrite, `${outside}/deployments/by-contrib`);

  // "team" never covers "team2".
  const C = accountPath('sem-team2', { rg: 'team2' });
  assert.equal((await d.admin('GET', `${outside}?${ARM_API}`, undefined, { headers: asPrincipal(teamReader) })).status, 200);
  assertAuthzFailed(await d.admin('GET', `${C}?${ARM_API}`, undefined, { headers: asPrincipal(teamReader) }), teamReader, ACTION.accountRead, C);
  assert.equal((await checkAccess(d, teamReader, ACTION.accountRead, rgScope('team'))).allowed, true);
  assert.equal((await checkAccess(d, teamReader, ACTION.accountRead, rgScope('team2'))).allowed, false);
  assert.equal((await checkAccess(d, teamReader, ACTION.accountRead, rgScope('tea'))).allowed, false);
  const rgList = await d.admin('GET', `/subscriptions/${SUB}/resourceGroups/team/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`, undefined, { headers: asPrincipal(teamReader) });
  assert.equal(rgList.status, 200, rgList.text);
  assert.deepEqual(rgList.json.value.map((x) => x.name), ['sem-team']);

  // Owner's "*" is control plane only.
  assert.equal((await checkAccess(d, owner, ACTION.accountWrite, A)).allowed, true);
  assert.equal((await checkAccess(d, owner, ACTION.listKeys, A)).allowed, true);
  assert.equal((await checkAccess(d, owner, ACTION.chat, A, true)).allowed, false, "Owner's * granted a data action");
  assert.equal((await checkAccess(d, owner, ACTION.accountWrite, outside)).allowed, false);

  // Effective permissions of the caller at a scope.
  const perms = async (scope, oid) => {
    const r = await d.admin('GET', `${scope}/providers/Microsoft.Authorization/permissions?${AUTH_API}`, undefined, oid ? { headers: asPrincipal(oid) } : {});
    assert.equal(r.status, 200, `permissions at ${scope}: ${r.text}`);
    return r.json.value;
  };
  const atA = await perms(A, user);
  assert.equal(atA.length, 1, JSON.stringify(atA));
  assert.ok(atA[0].dataActions.includes(ACTION.chat));
  assert.deepEqual(await perms(B, user), []);
  const rootPerms = await perms(subScope());
  assert.ok(rootPerms.some((p) => p.actions.includes('*') && p.dataActions.length === 0), JSON.stringify(rootPerms));
});

test('escalation: roleAssignments/write is needed at the scope; User Access Administrator grants there and below only', async (t) => {
  const d = await startDaemon(t);
  const helper = (await createApp(d, 'esc-contributor')).servicePrincipalId;
  const uaa = (await createApp(d, 'esc-uaa')).servicePrincipalId;
  const target = (await createApp(d, 'esc-target')).servicePrincipalId;
  await assign(d, subScope(), helper, ROLE.contributor);
  await assign(d, rgScope('uaa-rg'), uaa, ROLE.userAccessAdmin);
  const before = sortedNames(await allAssignments(d));

  // Contributor (notActions Microsoft.Authorization/*/Write) cannot grant, not even to itself.
  for (const [scope, who, role] of [[rgScope('esc-rg'), target, ROLE.reader], [subScope(), helper, ROLE.owner], [rgScope('uaa-rg'), target, ROLE.reader]]) {
    const name = newGuid();
    assertWriteDenied(await putAssignment(d, scope, who, role, { name, headers: asPrincipal(helper) }), helper, scope, name);
  }
  // A principal with no role at all cannot either.
  const name0 = newGuid();
  assertWriteDenied(await putAssignment(d, rgScope('esc-rg'), helper, ROLE.owner, { name: name0, headers: asPrincipal(target) }), target, rgScope('esc-rg'), name0);
  assert.deepEqual(sortedNames(await allAssignments(d)), before, 'a refused grant was stored');

  // UAA at uaa-rg: there and below.
  const acct = accountPath('uaa-acct', { rg: 'uaa-rg' });
  const granted = [];
  for (const scope of [rgScope('uaa-rg'), acct, `${acct}/deployments/chat`]) {
    const r = await putAssignment(d, scope, target, ROLE.openaiUser, { headers: asPrincipal(uaa) });
    assert.equal(r.status, 201, `UAA grants at ${scope}: ${r.text}`);
    assert.equal(r.json.properties.createdBy, uaa);
    granted.push(r.json);
  }
  const selfOwner = await putAssignment(d, rgScope('uaa-rg'), uaa, ROLE.owner, { headers: asPrincipal(uaa) });
  assert.equal(selfOwner.status, 201, `UAA may grant Owner inside its own scope: ${selfOwner.text}`);
  granted.push(selfOwner.json);
  for (const scope of [subScope(), rgScope('uaa-rg2'), rgScope('uaa'), '/', rgScope('uaa-rg', OTHER_SUB), accountPath('x-acct', { rg: 'uaa-rg2' })]) {
    const name = newGuid();
    assertWriteDenied(await putAssignment(d, scope, target, ROLE.reader, { name, headers: asPrincipal(uaa) }), uaa, scope, name);
  }
  const outsideOwner = newGuid();
  assertWriteDenied(await putAssignment(d, subScope(), uaa, ROLE.owner, { name: outsideOwner, headers: asPrincipal(uaa) }), uaa, subScope(), outsideOwner);
  assert.deepEqual(sortedNames(await allAssignments(d)), [...before, ...sortedNames(granted)].sort());

  // Deleting follows the same rule (roleAssignments/delete at the assignment's scope).
  const atSub = await assign(d, subScope(), target, ROLE.reader);
  const refused = await deleteAssignment(d, subScope(), atSub.name, { headers: asPrincipal(uaa) });
  assertWriteDenied(refused, uaa, subScope(), atSub.name, ACTION.raDelete);
  assert.equal((await d.admin('GET', `${atSub.id}?${AUTH_API}`)).status, 200, 'refused delete applied');
  const mine = await deleteAssignment(d, acct, granted[1].name, { headers: asPrincipal(uaa) });
  assert.equal(mine.status, 200, mine.text);
  assert.equal((await checkAccess(d, uaa, ACTION.raWrite, rgScope('uaa-rg'))).allowed, true);
  assert.equal((await checkAccess(d, uaa, ACTION.raWrite, subScope())).allowed, false);
});

test('cascades: deleting an account removes the assignments at and below it only; the last root Owner stays', async (t) => {
  const d = await startDaemon(t);
  const sp = (await createApp(d, 'cascade-app')).servicePrincipalId;
  await d.setupAccount('cascade', { deployments: { chat: {} } });
  await d.setupAccount('cascade2', { deployments: { chat: {} } });
  const A = accountPath('cascade');
  const A2 = accountPath('cascade2');
  const gone = [await assign(d, A, sp, ROLE.csContributor), await assign(d, `${A}/deployments/chat`, sp, ROLE.openaiUser)];
  const stay = [
    await assign(d, A2, sp, ROLE.csContributor),
    await assign(d, `${A2}/deployments/chat`, sp, ROLE.openaiUser),
    await assign(d, rgScope(RG), sp, ROLE.reader),
  ];
  assert.equal((await d.admin('DELETE', `${A}?${ARM_API}`)).status, 200);
  const all = new Set((await allAssignments(d)).map((a) => a.name.toLowerCase()));
  for (const a of gone) assert.ok(!all.has(a.name.toLowerCase()), `assignment at ${a.properties.scope} survived the account's deletion`);
  for (const a of stay) assert.ok(all.has(a.name.toLowerCase()), `assignment at ${a.properties.scope} was removed with account "cascade"`);
  // A new account of the same name does not inherit the old grants.
  await d.setupAccount('cascade', { deployments: {} });
  assertAuthzFailed(await listKeysAs(d, 'cascade', sp), sp, ACTION.listKeys, A);
  assert.equal((await listKeysAs(d, 'cascade2', sp)).status, 200);

  // The last Owner at "/" cannot be removed; another one can.
  const root = await rootPrincipal(d);
  const last = await deleteAssignment(d, '/', root.assignment.name);
  assertError(last, 409, lastOwner);
  const second = await assign(d, '/', sp, ROLE.owner);
  assert.equal((await deleteAssignment(d, '/', second.name)).status, 200);
  assertError(await deleteAssignment(d, '/', root.assignment.name), 409, lastOwner);
  const still = await d.admin('GET', `${raPath('/', root.assignment.name)}?${AUTH_API}`);
  assert.equal(still.status, 200, still.text);
  assert.deepEqual(still.json, root.assignment);
  // An Owner lower down does not count as a root Owner.
  await assign(d, subScope(), sp, ROLE.owner);
  assertError(await deleteAssignment(d, '/', root.assignment.name), 409, lastOwner);
});

test('deleting a deployment alone removes the assignments at it; the account and its other deployments keep theirs', async (t) => {
  const d = await startDaemon(t);
  const sp = (await createApp(d, 'dep-cascade-app')).servicePrincipalId;
  await d.setupAccount('depcascade', { deployments: { chat: {}, keep: {} } });
  const A = accountPath('depcascade');
  const chat = `${A}/deployments/chat`;
  const gone = await assign(d, chat, sp, ROLE.openaiUser);
  const kept = await assign(d, `${A}/deployments/keep`, sp, ROLE.openaiUser);
  const atAccount = await assign(d, A, sp, ROLE.reader);
  // `keyless role check` exits 0 when allowed, 1 when denied.
  const cliCheck = (scope) => d.cli(['role', 'check', '--assignee', 'dep-cascade-app', '--data', '--action', ACTION.chat, '--scope', scope]);
  const before = await cliCheck(chat);
  assert.equal(before.code, 0, `role check before the delete: ${before.stdout} ${before.stderr}`);

  const del = await d.admin('DELETE', `${chat}?${ARM_API}`);
  assert.equal(del.status, 200, del.text);
  const got = await d.admin('GET', `${raPath(chat, gone.name)}?${AUTH_API}`);
  assertApiError(got, 404, 'RoleAssignmentNotFound');
  assert.deepEqual(got.json, { error: { code: 'RoleAssignmentNotFound', message: `The role assignment '${gone.name}' is not found.` } });
  const mine = await listAssignments(d, A, `principalId eq '${sp}'`);
  assert.deepEqual(sortedNames(mine), sortedNames([kept, atAccount]));
  const denied = await cliCheck(chat);
  assert.equal(denied.code, 1, `role check after the delete: exit ${denied.code} ${denied.stdout} ${denied.stderr}`);
  assert.match(denied.stdout, /DENIED/);
  assert.equal((await checkAccess(d, sp, ACTION.chat, chat, true)).allowed, false);

  // A new deployment of the same name does not inherit the old grant; the sibling keeps its own.
  assert.equal((await d.putDeployment('depcascade', 'chat', {})).status, 201);
  assert.equal((await cliCheck(chat)).code, 1);
  assert.equal((await cliCheck(`${A}/deployments/keep`)).code, 0);
  assert.equal((await d.admin('GET', `${raPath(`${A}/deployments/keep`, kept.name)}?${AUTH_API}`)).status, 200);
});

test('root ownership can be handed over, but the last Owner at "/" never removed', async (t) => {
  const d = await startDaemon(t);
  const root = await rootPrincipal(d);
  const heir = (await createApp(d, 'heir')).servicePrincipalId;
  const heirOwner = await assign(d, '/', heir, ROLE.owner);
  assert.equal((await deleteAssignment(d, '/', root.assignment.name)).status, 200);
  // The admin socket now acts as a principal without any role.
  const refused = await d.putAccount('after-handover');
  assertAuthzFailed(refused, root.oid, ACTION.accountWrite, accountPath('after-handover'), 'former Owner creates an account');
  const asHeir = await d.admin('PUT', `${accountPath('after-handover')}?${ARM_API}`, {}, { headers: asPrincipal(heir) });
  assert.equal(asHeir.status, 201, asHeir.text);
  assertError(await deleteAssignment(d, '/', heirOwner.name, { headers: asPrincipal(heir) }), 409, lastOwner);
  // Nor can it go with its application, and the only root Owner cannot be disabled.
  const heirApp = (await d.admin('GET', `/v1.0/servicePrincipals/${heir}`, undefined, { headers: asPrincipal(heir) })).json;
  const apps = (await d.admin('GET', '/v1.0/applications', undefined, { headers: asPrincipal(heir) })).json.value;
  const heirAppId = apps.find((a) => a.appId === heirApp.appId).id;
  assertApiError(await d.admin('DELETE', `/v1.0/applications/${heirAppId}`, undefined, { headers: asPrincipal(heir) }), 409, 'LastOwnerCannotBeRemoved');
  const disable = await setSpEnabled(d, heir, false, { headers: asPrincipal(heir) });
  assertGraphError(disable, 409, err('LastOwnerCannotBeRemoved', "The change would leave no enabled principal with the Owner role at scope '/'. Assign Owner at '/' to another principal first."), 'disabling the only root Owner');
  assert.equal((await d.admin('GET', `/v1.0/servicePrincipals/${heir}`, undefined, { headers: asPrincipal(heir) })).json.accountEnabled, true);
  assert.equal((await d.admin('GET', `${raPath('/', heirOwner.name)}?${AUTH_API}`, undefined, { headers: asPrincipal(heir) })).status, 200);
  const back = await putAssignment(d, '/', root.oid, ROLE.owner, { headers: asPrincipal(heir) });
  assert.equal(back.status, 201, back.text);
  assert.equal(back.json.properties.principalType, 'User');
  assert.equal((await d.listKeys('after-handover')).status, 200, 'root is Owner again');
  assert.equal((await deleteAssignment(d, '/', heirOwner.name)).status, 200);
  assertError(await deleteAssignment(d, '/', back.json.name), 409, lastOwner);
});

test('CLI: role assignment create/list/delete by app name, role name and --account; role definitions', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('cli-rbac', { deployments: {} });
  const app = await createApp(d, 'cli-assignee');
  const sp = app.servicePrincipalId;
  const acct = accountPath('cli-rbac');

  const c = await d.cli(['role', 'assignment', 'create', '--assignee', 'cli-assignee', '--role', 'Cognitive Services OpenAI User', '--account', 'cli-rbac', '-o', 'json']);
  assert.equal(c.code, 0, `assignment create: ${c.stdout} ${c.stderr}`);
  assert.ok(c.json, `-o json output is not JSON: ${c.stdout}`);
  assert.match(c.json.name, GUID);
  assert.equal(c.json.properties.principalId, sp);
  assert.equal(c.json.properties.scope, acct);
  assert.equal(c.json.properties.roleDefinitionId, `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${ROLE.openaiUser}`);
  const viaApi = await listAssignments(d, acct, `principalId eq '${sp}'`);
  assert.deepEqual(viaApi.map((a) => a.name), [c.json.name]);
  assert.equal((await checkAccess(d, sp, ACTION.chat, acct, true)).allowed, true);

  // By appId with a role GUID and a full scope; by object id at a subscription.
  const c2 = await d.cli(['role', 'assignment', 'create', '--assignee', app.appId, '--role', ROLE.reader, '--scope', rgScope('cli-rg'), '-o', 'json']);
  assert.equal(c2.code, 0, `${c2.stdout} ${c2.stderr}`);
  assert.equal(c2.json.properties.scope, rgScope('cli-rg'));
  assert.equal(c2.json.properties.principalId, sp);
  const c3 = await d.cli(['role', 'assignment', 'create', '--assignee', sp, '--role', 'Reader', '--scope', subScope(), '-o', 'json']);
  assert.equal(c3.code, 0, `by object id: ${c3.stdout} ${c3.stderr}`);
  const dup = await d.cli(['role', 'assignment', 'create', '--assignee', 'cli-assignee', '--role', 'Cognitive Services OpenAI User', '--account', 'cli-rbac']);
  assert.equal(dup.code, 1, `duplicate: exit ${dup.code}`);
  assert.match(dup.stderr, /RoleAssignmentExists/);
  const ghost = await d.cli(['role', 'assignment', 'create', '--assignee', newGuid(), '--role', 'Reader', '--account', 'cli-rbac']);
  assert.equal(ghost.code, 1, `unknown principal id: exit ${ghost.code} ${ghost.stderr}`);
  assert.match(ghost.stderr, /PrincipalNotFound/);
  // Names that resolve to nothing: exit 4 (keyless --help).
  const noApp = await d.cli(['role', 'assignment', 'create', '--assignee', 'no-such-app-name', '--role', 'Reader', '--account', 'cli-rbac']);
  assert.equal(noApp.code, 4, `unknown app name: exit ${noApp.code} ${noApp.stderr}`);
  const noRole = await d.cli(['role', 'assignment', 'create', '--assignee', 'cli-assignee', '--role', 'No Such Role', '--account', 'cli-rbac']);
  assert.equal(noRole.code, 4, `unknown role name: exit ${noRole.code} ${noRole.stderr}`);
  assert.deepEqual(sortedNames(await listAssignments(d, '/', `principalId eq '${sp}'`)), sortedNames([c.json, c2.json, c3.json]));

  // Human output names roles and principals.
  // (list shows what applies at the scope, there and above; --all adds what lies below.)
  const human = await d.cli(['role', 'assignment', 'list', '--assignee', 'cli-assignee', '--account', 'cli-rbac']);
  assert.equal(human.code, 0, human.stderr);
  for (const s of ['Cognitive Services OpenAI User', 'Reader', 'cli-assignee', sp, c.json.name, c3.json.name, acct])
    assert.ok(human.stdout.includes(s), `assignment list shows ${s}:\n${human.stdout}`);
  assert.ok(!human.stdout.includes(c2.json.name), `an assignment on another group listed at the account:\n${human.stdout}`);
  const humanAll = await d.cli(['role', 'assignment', 'list', '--assignee', 'cli-assignee', '--all']);
  assert.equal(humanAll.code, 0, humanAll.stderr);
  for (const s of [c.json.name, c2.json.name, c3.json.name, rgScope('cli-rg')])
    assert.ok(humanAll.stdout.includes(s), `assignment list --all shows ${s}:\n${humanAll.stdout}`);
  const byScope = await d.cli(['role', 'assignment', 'list', '--scope', acct]);
  assert.equal(byScope.code, 0, byScope.stderr);
  assert.ok(byScope.stdout.includes(c.json.name), byScope.stdout);
  assert.ok(byScope.stdout.includes('Owner'), `the bootstrap Owner at "/" is listed above the account:\n${byScope.stdout}`);
  assert.ok(!byScope.stdout.includes(c2.json.name), `an assignment on another group listed at the account:\n${byScope.stdout}`);
  const asJson = await d.cli(['role', 'assignment', 'list', '--assignee', app.appId, '--all', '-o', 'json']);
  assert.equal(asJson.code, 0, asJson.stderr);
  const arr = Array.isArray(asJson.json) ? asJson.json : asJson.json?.value;
  assert.deepEqual(sortedNames(arr), sortedNames([c.json, c2.json, c3.json]));

  // role check: --data selects the data plane.
  const chk = (scope, data) => d.cli(['role', 'check', '--assignee', 'cli-assignee', '--action', ACTION.chat, '--scope', scope, ...(data ? ['--data'] : [])]);
  assert.equal((await chk(acct, true)).code, 0);
  const ctl = await chk(acct, false);
  assert.equal(ctl.code, 1, `a data action checked as a control action: exit ${ctl.code} ${ctl.stdout} ${ctl.stderr}`);
  const other = await chk(accountPath('cli-rbac2'), true);
  assert.equal(other.code, 1, `another account: exit ${other.code} ${other.stdout} ${other.stderr}`);

  const del = await d.cli(['role', 'assignment', 'delete', c.json.name, '--scope', acct]);
  assert.equal(del.code, 0, `${del.stdout} ${del.stderr}`);
  assertApiError(await d.admin('GET', `${raPath(acct, c.json.name)}?${AUTH_API}`), 404, 'RoleAssignmentNotFound');
  const after = await chk(acct, true);
  assert.equal(after.code, 1, `after delete: exit ${after.code} ${after.stdout} ${after.stderr}`);
  const del2 = await d.cli(['role', 'assignment', 'delete', c2.json.name, '--scope', rgScope('cli-rg')]);
  assert.equal(del2.code, 0, del2.stderr);
  assert.deepEqual(sortedNames(await listAssignments(d, '/', `principalId eq '${sp}'`)), sortedNames([c3.json]));

  // Role definitions.
  const defs = await d.cli(['role', 'definition', 'list']);
  assert.equal(defs.code, 0, defs.stderr);
  for (const [guid, name] of Object.entries(ROLE_NAMES)) {
    assert.ok(defs.stdout.includes(guid), `definition list shows ${guid}`);
    assert.ok(defs.stdout.includes(name), `definition list shows ${name}`);
  }
  const show = await d.cli(['role', 'definition', 'show', 'Cognitive Services OpenAI User', '-o', 'json']);
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.json.name, ROLE.openaiUser);
  const showGuid = await d.cli(['role', 'definition', 'show', ROLE.reader, '-o', 'json']);
  assert.equal(showGuid.code, 0, showGuid.stderr);
  assert.equal(showGuid.json.properties.roleName, 'Reader');
  const dir = makeTempDir('kl-role-');
  try {
    const file = join(dir, 'role.json');
    const guid = newGuid();
    writeFileSync(file, JSON.stringify({ name: guid, properties: customRoleBody('CLI Made Role', { actions: [ACTION.accountRead] }) }));
    const cr = await d.cli(['role', 'definition', 'create', '--file', file, '-o', 'json']);
    assert.equal(cr.code, 0, `definition create --file: ${cr.stdout} ${cr.stderr}`);
    const made = cr.json;
    assert.equal(made.properties.roleName, 'CLI Made Role');
    assert.equal(made.properties.type, 'CustomRole');
    const custom = await d.cli(['role', 'definition', 'list', '--custom']);
    assert.equal(custom.code, 0, custom.stderr);
    assert.ok(custom.stdout.includes('CLI Made Role'), custom.stdout);
    assert.ok(!custom.stdout.includes(ROLE.owner), `--custom lists built-ins:\n${custom.stdout}`);
    const rm = await d.cli(['role', 'definition', 'delete', 'CLI Made Role']);
    assert.equal(rm.code, 0, rm.stderr);
    const roles = await d.admin('GET', `${rdPath('/')}?${AUTH_API}&$filter=${encodeURIComponent("roleName eq 'CLI Made Role'")}`);
    assert.deepEqual(roles.json.value, []);
    const builtinDel = await d.cli(['role', 'definition', 'delete', 'Owner']);
    assert.equal(builtinDel.code, 1, `deleting a built-in: exit ${builtinDel.code}`);
    assert.match(builtinDel.stderr, /BuiltInRoleCannotBeModified/);
  } finally {
    removeTempDir(dir);
  }
});

test('apps, custom roles and assignments persist across restarts (graceful and SIGKILL)', async (t) => {
  const d = await startDaemon(t);
  const tenant = await tenantId(d);
  const app = await createApp(d, 'persistent-app');
  const sp = app.servicePrincipalId;
  await d.setupAccount('persist', { deployments: {} });
  const acct = accountPath('persist');
  const roleGuid = newGuid();
  const role = await putRole(d, subScope(), roleGuid, customRoleBody('Persistent Key Lister', { actions: [ACTION.listKeys] }));
  assert.equal(role.status, 201, role.text);
  const a1 = await assign(d, acct, sp, roleGuid);
  await assign(d, rgScope('persist-rg'), sp, ROLE.reader);
  await assign(d, '/', sp, ROLE.openaiUser);
  const disabled = await createApp(d, 'persistent-disabled');
  const p = await setSpEnabled(d, disabled.servicePrincipalId, false);
  assert.equal(p.status, 204, p.text);
  assert.equal(p.text, '');
  const snapshot = async () => ({
    org: (await d.admin('GET', '/v1.0/organization')).json,
    apps: (await d.admin('GET', '/v1.0/applications')).json.value.sort((x, y) => x.id.localeCompare(y.id)),
    sps: (await d.admin('GET', '/v1.0/servicePrincipals')).json.value.sort((x, y) => x.id.localeCompare(y.id)),
    role: (await d.admin('GET', `${rdPath(subScope(), roleGuid)}?${AUTH_API}`)).json,
    assignments: (await allAssignments(d)).sort((x, y) => x.name.localeCompare(y.name)),
  });
  const before = await snapshot();
  assert.equal((await listKeysAs(d, 'persist', sp)).status, 200);

  await d.restart();
  assert.deepEqual(await snapshot(), before, 'state after a graceful restart');
  assert.equal(await tenantId(d), tenant);
  assert.equal((await listKeysAs(d, 'persist', sp)).status, 200, 'the persisted assignment is enforced right after start');
  assert.equal((await checkAccess(d, sp, ACTION.chat, acct, true)).allowed, true);
  assert.equal(before.sps.find((s) => s.id === disabled.servicePrincipalId).accountEnabled, false);

  // Changes acknowledged just before a crash are kept too: 12 writers keep creates and
  // deletes of assignments outstanding, and the kill lands with at least 8 in flight.
  const late = await assign(d, rgScope('late-rg'), sp, ROLE.contributor);
  assert.equal((await deleteAssignment(d, acct, a1.name)).status, 200);
  const doomed = [];
  for (let i = 0; i < 60; i++) doomed.push((await assign(d, rgScope(`doomed-rg-${i}`), sp, ROLE.reader)).name);
  const fresh = Array.from({ length: 60 }, () => newGuid());
  // Even writes create fresh[i/2], odd ones delete doomed[(i-1)/2].
  const storm = await writeStormAndCrash({
    total: 120,
    concurrency: 12,
    minInFlight: 8,
    killAfterAcks: 10 + Math.floor(Math.random() * 80),
    write: (i) => (i % 2 === 0
      ? putAssignment(d, rgScope(`fresh-rg-${i / 2}`), sp, ROLE.reader, { name: fresh[i / 2] })
      : deleteAssignment(d, rgScope(`doomed-rg-${(i - 1) / 2}`), doomed[(i - 1) / 2])),
    ok: (r) => r.status === 201 || r.status === 200,
    crash: () => d.kill9(),
  });
  t.diagnostic(`kill with ${storm.inFlightAtCrash} writes in flight; ${storm.acked.length} of ${storm.sent} acknowledged`);
  assert.ok(storm.inFlightAtCrash >= 8, `${storm.inFlightAtCrash} writes in flight at the kill`);
  await d.start();
  const names = sortedNames(await allAssignments(d));
  assert.ok(names.includes(late.name.toLowerCase()), 'an acknowledged assignment was lost by a crash');
  assert.ok(!names.includes(a1.name.toLowerCase()), 'an acknowledged delete was undone by a crash');
  const lostCreates = storm.acked.filter((i) => i % 2 === 0).map((i) => fresh[i / 2]).filter((n) => !names.includes(n));
  const undoneDeletes = storm.acked.filter((i) => i % 2 === 1).map((i) => doomed[(i - 1) / 2]).filter((n) => names.includes(n));
  assert.deepEqual(lostCreates, [], 'acknowledged assignments lost by a crash');
  assert.deepEqual(undoneDeletes, [], 'acknowledged deletes undone by a crash');
  assertAuthzFailed(await listKeysAs(d, 'persist', sp), sp, ACTION.listKeys, acct);
  assert.equal(await tenantId(d), tenant);
});
