// Managed identities on the control plane of a real keylessd: sites, VMs and user-assigned
// identities in ARM's shapes, the identity block of sites, VMs and accounts, the
// lifecycle rules (a system-assigned identity and its role assignments go with its
// resource; a user-assigned one survives detachment and resource deletion, and deleting
// it detaches it everywhere), Azure's linked authorization on assigning an identity, and
// "no secret, ever": the token endpoint and Graph refuse every credential for one.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ARM_API, RG, SUB, accountPath, startDaemon } from '../lib/harness.mjs';
import {
  AUTH_API,
  GUID,
  ROLE,
  asPrincipal,
  assign,
  createApp,
  customRoleBody,
  newGuid,
  putRole,
  raPath,
  rgScope,
  tenantId,
} from '../lib/authz.mjs';

const MI_API = 'api-version=2023-01-31';
const WEB_API = 'api-version=2024-04-01';
const VM_API = 'api-version=2024-07-01';
const MI_OPERATOR = 'f1a07417-d97a-45cb-824c-7a7467783830';
const ASSIGN = 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action';
const DATA = 'https://cognitiveservices.azure.com';

const rgPath = (rg = RG) => `/subscriptions/${SUB}/resourceGroups/${rg}`;
const uamiPath = (name, rg = RG) => `${rgPath(rg)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
const sitePath = (name, rg = RG) => `${rgPath(rg)}/providers/Microsoft.Web/sites/${name}`;
const vmPath = (name, rg = RG) => `${rgPath(rg)}/providers/Microsoft.Compute/virtualMachines/${name}`;
const err = (code, message) => ({ error: { code, message } });

function assertError(r, status, body, what = '') {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, what);
  assert.deepEqual(r.json, body, what);
}

async function ok(r, status, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  return r.json;
}

const putUami = (d, name, body = { location: 'westeurope' }, opts) => d.admin('PUT', `${uamiPath(name)}?${MI_API}`, body, opts);
const putSite = (d, name, body, opts) => d.admin('PUT', `${sitePath(name)}?${WEB_API}`, { location: 'westeurope', ...body }, opts);
const putVm = (d, name, body, opts) => d.admin('PUT', `${vmPath(name)}?${VM_API}`, { location: 'westeurope', ...body }, opts);
const principalOf = (d, oid) => d.admin('GET', `/v1.0/servicePrincipals/${oid}`);
const assignmentOf = (d, scope, name) => d.admin('GET', `${raPath(scope, name)}?${AUTH_API}`);
const userAssigned = (...ids) => ({ type: 'UserAssigned', userAssignedIdentities: Object.fromEntries(ids.map((id) => [id, {}])) });

test('user-assigned identities: ARM shape, ids kept on update, lists, delete', async (t) => {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const c = await ok(await putUami(d, 'api-id', { location: 'westeurope', tags: { team: 'a' } }), 201, 'create');
  assert.deepEqual(Object.keys(c).sort(), ['id', 'location', 'name', 'properties', 'tags', 'type']);
  assert.equal(c.id, uamiPath('api-id'));
  assert.equal(c.name, 'api-id');
  assert.equal(c.type, 'Microsoft.ManagedIdentity/userAssignedIdentities');
  assert.equal(c.location, 'westeurope');
  assert.deepEqual(c.tags, { team: 'a' });
  assert.deepEqual(Object.keys(c.properties).sort(), ['clientId', 'principalId', 'tenantId']);
  assert.match(c.properties.clientId, GUID);
  assert.match(c.properties.principalId, GUID);
  assert.notEqual(c.properties.clientId, c.properties.principalId);
  assert.equal(c.properties.tenantId, tid);

  // Its principal is a managed identity of the directory, with no application.
  const sp = await ok(await principalOf(d, c.properties.principalId), 200, 'its service principal');
  assert.equal(sp.servicePrincipalType, 'ManagedIdentity');
  assert.equal(sp.appId, c.properties.clientId);
  assert.equal(sp.displayName, 'api-id');
  assert.equal((await d.admin('GET', `/v1.0/applications/${c.properties.clientId}`)).status, 404);

  const u = await ok(await putUami(d, 'API-ID', { location: 'westeurope', tags: { team: 'b' } }), 200, 'update');
  assert.deepEqual(u.properties, c.properties, 'an update keeps the ids');
  assert.deepEqual(u.tags, { team: 'b' });
  assert.equal(u.id, uamiPath('api-id'), 'the id as created');
  assert.deepEqual(await ok(await d.admin('GET', `${uamiPath('Api-Id')}?${MI_API}`), 200, 'get'), u);

  await ok(await putUami(d, 'other', { location: 'x' }, {}), 201, 'second');
  await ok(await d.admin('PUT', `${uamiPath('elsewhere', 'rg-2')}?${MI_API}`, { location: 'x' }), 201, 'other group');
  const inRg = await ok(await d.admin('GET', `${rgPath()}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?${MI_API}`), 200, 'list rg');
  assert.deepEqual(inRg.value.map((x) => x.name), ['api-id', 'other']);
  const inSub = await ok(await d.admin('GET', `/subscriptions/${SUB}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?${MI_API}`), 200, 'list sub');
  assert.equal(inSub.value.length, 3);

  assert.equal((await d.admin('DELETE', `${uamiPath('api-id')}?${MI_API}`)).status, 200);
  assert.equal((await d.admin('DELETE', `${uamiPath('api-id')}?${MI_API}`)).status, 204);
  assertError(await d.admin('GET', `${uamiPath('api-id')}?${MI_API}`), 404,
    err('ResourceNotFound', `The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/api-id' under resource group '${RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`));
  assert.equal((await principalOf(d, c.properties.principalId)).status, 404, 'its principal is gone');
});

test('identity blocks of sites, VMs and accounts: round trip and identities/default', async (t) => {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const a = await ok(await putUami(d, 'shared'), 201, 'uami a');
  const b = await ok(await putUami(d, 'Beta'), 201, 'uami b');
  // Keys are the ids the client sent, in any case; answers show the ids as created.
  const site = await ok(await putSite(d, 'web', { tags: { x: 'y' }, identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [a.id.toUpperCase()]: {}, [b.id]: {} } } }), 201, 'site');
  assert.equal(site.id, sitePath('web'));
  assert.equal(site.type, 'Microsoft.Web/sites');
  assert.equal(site.kind, 'app');
  assert.equal(site.properties.provisioningState, 'Succeeded');
  assert.deepEqual(Object.keys(site.identity).sort(), ['principalId', 'tenantId', 'type', 'userAssignedIdentities']);
  assert.equal(site.identity.type, 'SystemAssigned, UserAssigned');
  assert.match(site.identity.principalId, GUID);
  assert.equal(site.identity.tenantId, tid);
  assert.deepEqual(site.identity.userAssignedIdentities, {
    [b.id]: { principalId: b.properties.principalId, clientId: b.properties.clientId },
    [a.id]: { principalId: a.properties.principalId, clientId: a.properties.clientId },
  });
  assert.deepEqual(Object.keys(site.identity.userAssignedIdentities), [b.id, a.id], 'by lower-case id');
  assert.deepEqual(await ok(await d.admin('GET', `${sitePath('WEB')}?${WEB_API}`), 200, 'get site'), site);

  // The system-assigned identity, as the identity service shows it; no credential URL.
  const def = await ok(await d.admin('GET', `${sitePath('web')}/providers/Microsoft.ManagedIdentity/identities/default?${MI_API}`), 200, 'default');
  assert.deepEqual(def, {
    id: `${sitePath('web')}/providers/Microsoft.ManagedIdentity/identities/default`,
    name: 'default',
    type: 'Microsoft.ManagedIdentity/identities',
    location: 'westeurope',
    tags: {},
    properties: { tenantId: tid, principalId: site.identity.principalId, clientId: def.properties.clientId },
  });
  assert.match(def.properties.clientId, GUID);
  const sp = await ok(await principalOf(d, site.identity.principalId), 200, 'system principal');
  assert.equal(sp.servicePrincipalType, 'ManagedIdentity');
  assert.equal(sp.appId, def.properties.clientId);

  const vm = await ok(await putVm(d, 'host1', { identity: userAssigned(a.id) }), 201, 'vm');
  assert.equal(vm.type, 'Microsoft.Compute/virtualMachines');
  assert.deepEqual(vm.identity, { type: 'UserAssigned', userAssignedIdentities: { [a.id]: { principalId: a.properties.principalId, clientId: a.properties.clientId } } });
  assertError(await d.admin('GET', `${vmPath('host1')}/providers/Microsoft.ManagedIdentity/identities/default?${MI_API}`), 404,
    err('ResourceNotFound', `The resource '${vmPath('host1')}' has no system-assigned identity, or does not exist.`));

  // Accounts take the same block; an account written without one keeps what it has.
  const acct = await ok(await d.admin('PUT', `${accountPath('demo')}?${ARM_API}`, { identity: { type: 'SystemAssigned' } }), 201, 'account');
  assert.deepEqual(Object.keys(acct.identity).sort(), ['principalId', 'tenantId', 'type']);
  assert.equal(acct.identity.type, 'SystemAssigned');
  const again = await ok(await d.admin('PUT', `${accountPath('demo')}?${ARM_API}`, { tags: { t: '1' } }), 200, 'account again');
  assert.deepEqual(again.identity, acct.identity);
  const listed = await ok(await d.admin('GET', `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`), 200, 'accounts');
  assert.deepEqual(listed.value[0].identity, acct.identity);

  // PATCH: null detaches, {} attaches, the rest stays.
  const p = await ok(await d.admin('PATCH', `${sitePath('web')}?${WEB_API}`, { identity: { type: 'SystemAssigned,UserAssigned', userAssignedIdentities: { [b.id]: null } } }), 200, 'patch');
  assert.deepEqual(Object.keys(p.identity.userAssignedIdentities), [a.id]);
  assert.equal(p.identity.principalId, site.identity.principalId, 'the system-assigned one stays');
  assert.deepEqual(p.tags, { x: 'y' }, 'a PATCH keeps what it does not name');
  const none = await ok(await d.admin('PATCH', `${sitePath('web')}?${WEB_API}`, { identity: { type: 'None' } }), 200, 'none');
  assert.equal(none.identity, undefined);

  const sites = await ok(await d.admin('GET', `${rgPath()}/providers/Microsoft.Web/sites?${WEB_API}`), 200, 'list sites');
  assert.deepEqual(sites.value.map((s) => s.name), ['web']);
  const vms = await ok(await d.admin('GET', `/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${VM_API}`), 200, 'list vms');
  assert.deepEqual(vms.value.map((s) => s.identity.type), ['UserAssigned']);
});

test('lifecycle: system-assigned goes with its resource, user-assigned survives and detaches everywhere', async (t) => {
  const d = await startDaemon(t);
  const u = await ok(await putUami(d, 'worker'), 201, 'uami');
  const site = await ok(await putSite(d, 'web', { identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u.id]: {} } } }), 201, 'site');
  await ok(await putVm(d, 'host1', { identity: userAssigned(u.id) }), 201, 'vm');
  const sys = site.identity.principalId;
  const sysGrant = await assign(d, rgScope(), sys, ROLE.openaiUser);
  const uGrant = await assign(d, rgScope(), u.properties.principalId, ROLE.openaiUser);

  // Disabled and enabled again: a new identity, and the old one's grants are gone.
  const off = await ok(await putSite(d, 'web', { identity: userAssigned(u.id) }), 200, 'disable');
  assert.equal(off.identity.principalId, undefined);
  assert.equal((await principalOf(d, sys)).status, 404);
  assert.equal((await assignmentOf(d, rgScope(), sysGrant.name)).status, 404);
  const on = await ok(await putSite(d, 'web', { identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u.id]: {} } } }), 200, 'enable');
  assert.match(on.identity.principalId, GUID);
  assert.notEqual(on.identity.principalId, sys, 're-enabling makes a new identity');
  const grant2 = await assign(d, rgScope(), on.identity.principalId, ROLE.openaiUser);
  const atSite = await assign(d, sitePath('web'), u.properties.principalId, ROLE.reader);

  // The site deleted: its identity and that identity's grants go; the user-assigned one
  // stays, with its grants, on the VM.
  assert.equal((await d.admin('DELETE', `${sitePath('web')}?${WEB_API}`)).status, 200);
  assert.equal((await principalOf(d, on.identity.principalId)).status, 404);
  assert.equal((await assignmentOf(d, rgScope(), grant2.name)).status, 404);
  assert.equal((await assignmentOf(d, sitePath('web'), atSite.name)).status, 404, 'grants at the site go with it');
  assert.equal((await principalOf(d, u.properties.principalId)).status, 200);
  assert.equal((await assignmentOf(d, rgScope(), uGrant.name)).status, 200);
  const vm = await ok(await d.admin('GET', `${vmPath('host1')}?${VM_API}`), 200, 'vm');
  assert.deepEqual(Object.keys(vm.identity.userAssignedIdentities), [u.id]);

  // Detaching never deletes it.
  await ok(await d.admin('PATCH', `${vmPath('host1')}?${VM_API}`, { identity: { type: 'None' } }), 200, 'detach');
  assert.equal((await d.admin('GET', `${uamiPath('worker')}?${MI_API}`)).status, 200);
  await ok(await d.admin('PATCH', `${vmPath('host1')}?${VM_API}`, { identity: userAssigned(u.id) }), 200, 'attach');

  // Deleting it detaches it everywhere and takes its grants.
  assert.equal((await d.admin('DELETE', `${uamiPath('worker')}?${MI_API}`)).status, 200);
  const after = await ok(await d.admin('GET', `${vmPath('host1')}?${VM_API}`), 200, 'vm after');
  assert.equal(after.identity, undefined);
  assert.equal((await principalOf(d, u.properties.principalId)).status, 404);
  assert.equal((await assignmentOf(d, rgScope(), uGrant.name)).status, 404);

  // An account deleted takes its system-assigned identity too.
  const acct = await ok(await d.admin('PUT', `${accountPath('demo')}?${ARM_API}`, { identity: { type: 'SystemAssigned' } }), 201, 'account');
  assert.equal((await d.admin('DELETE', `${accountPath('demo')}?${ARM_API}`)).status, 200);
  assert.equal((await principalOf(d, acct.identity.principalId)).status, 404);
  // And a managed identity's principal is never deleted on its own through the directory:
  // there is no route for it, and its client id is no application.
  assert.equal((await d.admin('DELETE', `/v1.0/applications/${acct.identity.principalId}`)).status, 404);
});

test('assigning a user-assigned identity needs assign/action on it (LinkedAuthorizationFailed)', async (t) => {
  const d = await startDaemon(t);
  const u = await ok(await putUami(d, 'guarded'), 201, 'uami');
  const app = await createApp(d, 'deployer');
  const caller = app.servicePrincipalId;
  const roleId = newGuid();
  const rd = await putRole(d, `/subscriptions/${SUB}`, roleId, customRoleBody('Site writer', {
    actions: ['Microsoft.Web/sites/*', 'Microsoft.Compute/virtualMachines/*', 'Microsoft.ManagedIdentity/userAssignedIdentities/read'],
  }));
  assert.equal(rd.status, 201, rd.text);
  await assign(d, rgScope(), caller, roleId);
  const as = { headers: asPrincipal(caller) };

  // A system-assigned identity needs only write on the resource.
  await ok(await putSite(d, 'mine', { identity: { type: 'SystemAssigned' } }, as), 201, 'system only');
  const denied = await putSite(d, 'mine', { identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [u.id]: {} } } }, as);
  assertError(denied, 403, err('LinkedAuthorizationFailed',
    `The client '${caller}' with object id '${caller}' has permission to perform action 'Microsoft.Web/sites/write' on scope '${sitePath('mine')}'; however, it does not have permission to perform action '${ASSIGN}' on the linked scope(s) '${u.id}' or the linked scope(s) are invalid.`), 'site');
  const vmDenied = await putVm(d, 'box', { identity: userAssigned(u.id) }, as);
  assert.equal(vmDenied.status, 403, vmDenied.text);
  assert.equal(vmDenied.json.error.code, 'LinkedAuthorizationFailed');
  assert.equal((await d.admin('GET', `${vmPath('box')}?${VM_API}`)).status, 404, 'nothing written');
  const site = await ok(await d.admin('GET', `${sitePath('mine')}?${WEB_API}`), 200, 'site unchanged');
  assert.equal(site.identity.type, 'SystemAssigned');

  // Managed Identity Operator on the identity (its */assign/action) is what Azure asks for.
  await assign(d, u.id, caller, MI_OPERATOR);
  const now = await ok(await putVm(d, 'box', { identity: userAssigned(u.id) }, as), 201, 'allowed');
  assert.deepEqual(Object.keys(now.identity.userAssignedIdentities), [u.id]);
  // Detaching names no identity to assign: write on the resource is enough.
  await ok(await d.admin('PATCH', `${vmPath('box')}?${VM_API}`, { identity: { type: 'None' } }, as), 200, 'detach');
});

test('bad input answers in ARM\'s own shapes', async (t) => {
  const d = await startDaemon(t);
  const u = await ok(await putUami(d, 'good'), 201, 'uami');
  const cases = [
    ['type missing', { identity: {} }, 400, 'InvalidRequestContent', "identity.type is required: None, SystemAssigned, UserAssigned or 'SystemAssigned, UserAssigned'."],
    ['type unknown', { identity: { type: 'Magic' } }, 400, 'InvalidRequestContent', "identity.type is invalid: use None, SystemAssigned, UserAssigned or 'SystemAssigned, UserAssigned'."],
    ['None with another', { identity: { type: 'None, SystemAssigned' } }, 400, 'InvalidRequestContent', 'identity.type None cannot be combined with another type.'],
    ['not an object', { identity: 'SystemAssigned' }, 400, 'InvalidRequestContent', 'identity must be an object.'],
    ['map on a non-UserAssigned type', { identity: { type: 'SystemAssigned', userAssignedIdentities: { [u.id]: {} } } }, 400, 'FailedIdentityOperation',
      `Identity operation failed with error 'Failed to perform resource identity operation. Status: 'BadRequest'. Response: '{"error":{"code":"BadRequest","message":"The request format was unexpected, a non-UserAssigned identity type should not contain: userAssignedIdentities"}}'.'.`],
    ['UserAssigned without ids', { identity: { type: 'UserAssigned' } }, 400, 'FailedIdentityOperation',
      `Identity operation failed with error 'Failed to perform resource identity operation. Status: 'BadRequest'. Response: '{"error":{"code":"BadRequest","message":"The identity ids must not be null or empty for 'UserAssigned' identity type."}}'.'.`],
    ['a key that is no identity id', { identity: { type: 'UserAssigned', userAssignedIdentities: { [sitePath('x')]: {} } } }, 400, 'InvalidRequestContent',
      'A key of identity.userAssignedIdentities is not the id of a user-assigned identity: /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}.'],
    ['null on a PUT', { identity: { type: 'UserAssigned', userAssignedIdentities: { [u.id]: null } } }, 400, 'InvalidRequestContent', 'Each value of identity.userAssignedIdentities must be {}.'],
    ['an identity twice', { identity: { type: 'UserAssigned', userAssignedIdentities: { [u.id]: {}, [u.id.toLowerCase()]: {} } } }, 400, 'InvalidRequestContent', 'identity.userAssignedIdentities names an identity twice.'],
    ['an identity that does not exist', { identity: userAssigned(uamiPath('ghost')) }, 400, 'FailedIdentityOperation',
      `Identity operation for resource '${sitePath('web')}' failed with error 'Failed to perform resource identity operation. Status: 'NotFound'. Response: '{"error":{"code":"NotFound","message":"Resource '${uamiPath('ghost')}' was not found."}}'.'.`],
    ['properties not an object', { properties: [] }, 400, 'InvalidRequestContent', 'The properties must be an object of at most 16384 bytes.'],
  ];
  for (const [what, body, status, code, message] of cases) {
    assertError(await putSite(d, 'web', body), status, err(code, message), what);
    assert.equal((await d.admin('GET', `${sitePath('web')}?${WEB_API}`)).status, 404, `${what}: nothing written`);
  }
  assertError(await d.admin('PUT', `${rgPath()}/providers/Microsoft.Web/sites/-bad-?${WEB_API}`, { location: 'x' }), 400,
    err('InvalidResourceName', "The site name is invalid: use 2-60 letters, digits or '-', not starting or ending with '-'."));
  assertError(await d.admin('PUT', `${uamiPath('ab')}?${MI_API}`, { location: 'x' }), 400,
    err('InvalidResourceName', "The identity name is invalid: use 3-90 letters, digits, '-' or '_', starting with a letter or digit."));
  assertError(await d.admin('PUT', `${vmPath('a..b')}?${VM_API}`, { location: 'x' }), 400,
    err('InvalidResourceName', "The virtual machine name is invalid: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit and not ending with '.' or '-'."));
  const nov = await d.admin('PUT', `${uamiPath('good')}?api-version=2024-10-01`, { location: 'x' });
  assert.equal(nov.status, 400, nov.text);
  assert.equal(nov.json.error.code, 'InvalidApiVersionParameter');
  // A name is unique per kind across the store, as account names are.
  await ok(await putVm(d, 'vm1', {}), 201, 'vm1');
  assertError(await d.admin('PUT', `${vmPath('VM1', 'rg-2')}?${VM_API}`, { location: 'x' }), 409,
    err('Conflict', "The name 'VM1' is already used by a Microsoft.Compute/virtualMachines in another resource group."));
  assertError(await d.admin('GET', `${vmPath('vm1', 'rg-2')}?${VM_API}`), 404,
    err('ResourceNotFound', "The Resource 'Microsoft.Compute/virtualMachines/vm1' under resource group 'rg-2' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"));
});

const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

test('no secret, ever: the token endpoint and Graph refuse every credential of a managed identity', async (t) => {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const u = await ok(await putUami(d, 'leaky'), 201, 'uami');
  const site = await ok(await putSite(d, 'web', { identity: { type: 'SystemAssigned' } }), 201, 'site');
  const sysClient = (await ok(await d.admin('GET', `${sitePath('web')}/providers/Microsoft.ManagedIdentity/identities/default?${MI_API}`), 200, 'default')).properties.clientId;

  // Graph: no password, certificate or federated credential, by object id or client id.
  const refused = (id) => err('Request_BadRequest', `'${id}' is a managed identity: it takes no password, certificate or federated credential. Its tokens come only from the identity endpoint of a resource that carries it.`);
  for (const id of [u.properties.principalId, u.properties.clientId, site.identity.principalId, sysClient]) {
    const pw = await d.admin('POST', `/v1.0/applications/${id}/addPassword`, { passwordCredential: { displayName: 'x' } });
    assert.equal(pw.status, 400, pw.text);
    assert.deepEqual({ error: { code: pw.json.error.code, message: pw.json.error.message } }, refused(id), 'addPassword');
    const fic = await d.admin('POST', `/v1.0/applications/${id}/federatedIdentityCredentials`, { name: 'gh', issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:x/y:ref:refs/heads/main', audiences: ['api://AzureADTokenExchange'] });
    assert.equal(fic.status, 400, fic.text);
    assert.equal(fic.json.error.message, refused(id).error.message, 'federated credential');
    const kc = await d.admin('PATCH', `/v1.0/applications/${id}`, { keyCredentials: [] });
    assert.equal(kc.status, 400, kc.text);
    assert.equal(kc.json.error.message, refused(id).error.message, 'keyCredentials');
  }
  // Not an application either.
  const apps = await ok(await d.admin('GET', '/v1.0/applications'), 200, 'applications');
  assert.ok(!apps.value.some((a) => [u.properties.clientId, sysClient].includes(a.appId)));

  // The token endpoint: Entra's AADSTS700016 for a client id with no application, whatever
  // credential comes with it.
  const token = (fields) => d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ scope: `${DATA}/.default`, grant_type: 'client_credentials', ...fields }),
  });
  for (const clientId of [u.properties.clientId, sysClient]) {
    for (const cred of [
      { client_secret: 'anything' },
      { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln' },
      {},
    ]) {
      const r = await token({ client_id: clientId, ...cred });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error, 'unauthorized_client');
      assert.deepEqual(r.json.error_codes, [700016]);
      assert.ok(r.json.error_description.startsWith(`AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tid}'.`), r.json.error_description);
    }
  }
});

test('CLI: identity create|show|list|delete|assign|remove, site and vm create|show|delete', async (t) => {
  const d = await startDaemon(t);
  const cli = async (args, code = 0) => {
    const r = await d.cli(args);
    assert.equal(r.code, code, `keyless ${args.join(' ')}: ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const created = (await cli(['identity', 'create', 'ci-id', '-o', 'json'])).json;
  assert.equal(created.id, uamiPath('ci-id'));
  assert.match(created.properties.clientId, GUID);
  const shown = await cli(['identity', 'show', 'ci-id']);
  assert.match(shown.stdout, new RegExp(`CLIENT-ID\\s+${created.properties.clientId}`));
  assert.match((await cli(['identity', 'create', 'ci-id'], 1)).stderr, /already exists/);
  assert.match((await cli(['identity', 'list'])).stdout, /ci-id/);
  assert.deepEqual((await cli(['identity', 'show', uamiPath('ci-id'), '-o', 'json'])).json, created, 'by id too');

  const site = (await cli(['site', 'create', 'web', '--assign-identity', 'system', '--assign-identity', 'ci-id', '-o', 'json'])).json;
  assert.equal(site.identity.type, 'SystemAssigned, UserAssigned');
  assert.deepEqual(Object.keys(site.identity.userAssignedIdentities), [created.id]);
  const vm = (await cli(['vm', 'create', 'host1', '-o', 'json'])).json;
  assert.equal(vm.identity, undefined);
  await d.putAccount('demo');

  // Assign to a VM and an account at once; again is nothing to change.
  const assigned = await cli(['identity', 'assign', 'ci-id', '--resource', vmPath('host1'), '--resource', accountPath('demo')]);
  assert.match(assigned.stdout, /USER-ASSIGNED\s+ci-id/);
  assert.match((await cli(['identity', 'assign', 'ci-id', '--resource', vmPath('host1')])).stdout, /already has that identity/);
  assert.deepEqual(Object.keys((await cli(['vm', 'show', 'host1', '-o', 'json'])).json.identity.userAssignedIdentities), [created.id]);
  const acct = await ok(await d.admin('GET', `${accountPath('demo')}?${ARM_API}`), 200, 'account');
  assert.deepEqual(Object.keys(acct.identity.userAssignedIdentities), [created.id]);

  // system on and off; removing detaches without deleting.
  const sys = (await cli(['identity', 'assign', 'system', '--resource', vmPath('host1'), '-o', 'json'])).json;
  assert.equal(sys.identity.type, 'SystemAssigned, UserAssigned');
  assert.equal((await principalOf(d, sys.identity.principalId)).status, 200);
  const off = (await cli(['identity', 'remove', 'system', '--resource', vmPath('host1'), '-o', 'json'])).json;
  assert.equal(off.identity.type, 'UserAssigned');
  assert.equal((await principalOf(d, sys.identity.principalId)).status, 404);
  const gone = (await cli(['identity', 'remove', 'ci-id', '--resource', vmPath('host1'), '-o', 'json'])).json;
  assert.equal(gone.identity, undefined);
  const kept = (await cli(['identity', 'remove', 'ci-id', '--resource', sitePath('web'), '-o', 'json'])).json;
  assert.equal(kept.identity.type, 'SystemAssigned', 'the system-assigned one stays');
  assert.equal((await d.admin('GET', `${uamiPath('ci-id')}?${MI_API}`)).status, 200, 'detaching never deletes');

  // Usage errors before anything is sent.
  assert.match((await cli(['identity', 'assign', 'ci-id'], 2)).stderr, /missing --resource/);
  assert.match((await cli(['identity', 'assign', 'ci-id', '--resource', uamiPath('x')], 2)).stderr, /--resource must be the id of a site, VM or account/);
  assert.match((await cli(['identity', 'assign', '/not/an/identity', '--resource', vmPath('host1')], 2)).stderr, /IDENTITY must be 'system'/);
  assert.match((await cli(['site', 'create', 'x', '--assign-identity', 'system', '--assign-identity', 'system'], 2)).stderr, /given twice/);
  assert.match((await cli(['identity', 'show', 'nope'], 4)).stderr, /ResourceNotFound/);

  // Deleting: the site takes its system-assigned identity; the identity detaches everywhere.
  assert.match((await cli(['site', 'delete', 'web'])).stdout, /deleted site 'web'/);
  assert.equal((await principalOf(d, site.identity.principalId)).status, 404);
  assert.match((await cli(['identity', 'delete', 'ci-id'])).stdout, /deleted identity 'ci-id' \(detached from every resource/);
  const acctAfter = await ok(await d.admin('GET', `${accountPath('demo')}?${ARM_API}`), 200, 'account after');
  assert.equal(acctAfter.identity, undefined);
  assert.match((await cli(['identity', 'delete', 'ci-id'])).stdout, /did not exist/);
  assert.match((await cli(['vm', 'delete', 'host1'])).stdout, /deleted vm 'host1'/);
});
