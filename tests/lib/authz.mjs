// Helpers for the directory and RBAC suites: Graph-shaped directory calls and ARM
// Microsoft.Authorization calls over the admin socket of a real keylessd, the built-in
// role GUIDs, and the exact error shapes of the wire contract.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { RG, SUB, accountPath } from './harness.mjs';

export const AUTH_API = 'api-version=2022-04-01';
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
export const newGuid = () => randomUUID();

// Azure's built-in role GUIDs.
export const ROLE = {
  owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  openaiUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd',
  openaiContributor: 'a001fd3d-188f-4b5d-821b-7da978bf7442',
  csContributor: '25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68',
  csUser: 'a97b65f3-24c7-4388-baec-2e87135dc908',
  userAccessAdmin: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
};
export const ROLE_NAMES = {
  [ROLE.owner]: 'Owner',
  [ROLE.contributor]: 'Contributor',
  [ROLE.reader]: 'Reader',
  [ROLE.openaiUser]: 'Cognitive Services OpenAI User',
  [ROLE.openaiContributor]: 'Cognitive Services OpenAI Contributor',
  [ROLE.csContributor]: 'Cognitive Services Contributor',
  [ROLE.csUser]: 'Cognitive Services User',
};

export const ACTION = {
  listKeys: 'Microsoft.CognitiveServices/accounts/listKeys/action',
  regenerateKey: 'Microsoft.CognitiveServices/accounts/regenerateKey/action',
  accountRead: 'Microsoft.CognitiveServices/accounts/read',
  accountWrite: 'Microsoft.CognitiveServices/accounts/write',
  deploymentWrite: 'Microsoft.CognitiveServices/accounts/deployments/write',
  raWrite: 'Microsoft.Authorization/roleAssignments/write',
  raDelete: 'Microsoft.Authorization/roleAssignments/delete',
  chat: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action',
  embeddings: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action',
};

export const asPrincipal = (oid) => ({ 'x-keyless-principal': oid });

// "/" -> "", anything else unchanged: the prefix before "/providers/Microsoft.Authorization".
const scopePrefix = (scope) => (scope === '/' ? '' : scope);

export function raPath(scope, name) {
  return `${scopePrefix(scope)}/providers/Microsoft.Authorization/roleAssignments${name ? `/${name}` : ''}`;
}

export function rdPath(scope, name) {
  return `${scopePrefix(scope)}/providers/Microsoft.Authorization/roleDefinitions${name ? `/${name}` : ''}`;
}

export const subScope = (sub = SUB) => `/subscriptions/${sub}`;
export const rgScope = (rg = RG, sub = SUB) => `/subscriptions/${sub}/resourceGroups/${rg}`;
export const accountScope = (name, opts) => accountPath(name, opts);

export function authzFailed(oid, action, scope) {
  return {
    error: {
      code: 'AuthorizationFailed',
      message: `The client '${oid}' with object id '${oid}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    },
  };
}

// 400 PrincipalNotFound: Azure's whole text, for an object id that is a GUID.
export function principalNotFound(oid, tenant) {
  return {
    error: {
      code: 'PrincipalNotFound',
      message: `Principal ${oid} does not exist in the directory ${tenant}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`,
    },
  };
}

// An ARM- or Graph-shaped error: {"error":{"code","message"}} as JSON with the status.
export function assertApiError(r, status, code, what = '') {
  const ctx = what ? `${what}: ` : '';
  assert.equal(r.status, status, `${ctx}expected ${status} ${code || ''}, got ${r.status} ${r.text.slice(0, 600)}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, `${ctx}content-type`);
  assert.ok(r.json && typeof r.json.error === 'object' && r.json.error, `${ctx}not an error body: ${r.text.slice(0, 300)}`);
  if (code) assert.equal(r.json.error.code, code, `${ctx}${r.text.slice(0, 600)}`);
  assert.equal(typeof r.json.error.code, 'string', `${ctx}error.code`);
  assert.equal(typeof r.json.error.message, 'string', `${ctx}error.message`);
  assert.ok(r.json.error.message.length > 0, `${ctx}empty error.message`);
}

// 403 AuthorizationFailed with the contract's exact message.
export function assertAuthzFailed(r, oid, action, scope, what = '') {
  assertApiError(r, 403, 'AuthorizationFailed', what);
  assert.deepEqual(r.json, authzFailed(oid, action, scope), what);
}

// --- directory ---

export async function tenantId(d) {
  const r = await d.admin('GET', '/v1.0/organization');
  assert.equal(r.status, 200, `GET /v1.0/organization: ${r.status} ${r.text}`);
  return r.json.value[0].id;
}

// Registers an application and (as Graph wants, a second call) its service principal;
// returns the application with the principal's object id as servicePrincipalId.
export async function createApp(d, displayName, { headers } = {}) {
  const r = await d.admin('POST', '/v1.0/applications', { displayName }, { headers });
  assert.equal(r.status, 201, `POST /v1.0/applications ${displayName}: ${r.status} ${r.text}`);
  const sp = await d.admin('POST', '/v1.0/servicePrincipals', { appId: r.json.appId }, { headers });
  assert.equal(sp.status, 201, `POST /v1.0/servicePrincipals ${displayName}: ${sp.status} ${sp.text}`);
  return { ...r.json, servicePrincipalId: sp.json.id };
}

// Enables or disables a service principal (Graph: accountEnabled lives there). Raw response.
export function setSpEnabled(d, spId, enabled, { headers } = {}) {
  return d.admin('PATCH', `/v1.0/servicePrincipals/${spId}`, { accountEnabled: enabled }, { headers });
}

// A Graph error body without its innerError, after checking innerError is Graph's:
// date (ISO 8601), request-id (= x-ms-request-id) and client-request-id (the client's
// GUID when it sent one, else the request id).
export function graphErrorBody(r, clientRequestId) {
  const inner = r.json?.error?.innerError;
  assert.ok(inner && typeof inner === 'object', `no error.innerError: ${r.text.slice(0, 300)}`);
  assert.deepEqual(Object.keys(inner).sort(), ['client-request-id', 'date', 'request-id'], r.text);
  assert.match(inner.date, ISO, 'innerError.date');
  assert.match(inner['request-id'], GUID, 'innerError.request-id');
  assert.equal(inner['request-id'], r.headers['x-ms-request-id'], 'innerError.request-id is the request id');
  assert.equal(inner['client-request-id'], clientRequestId ?? inner['request-id'], 'innerError.client-request-id');
  const { innerError, ...error } = r.json.error;
  return { ...r.json, error };
}

export function assertGraphError(r, status, body, what = '') {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, what);
  assert.deepEqual(graphErrorBody(r), body, what);
}

// The bootstrap administrator: the principal of the Owner assignment at "/".
export async function rootPrincipal(d) {
  const r = await d.admin('GET', `${raPath('/')}?${AUTH_API}&$filter=atScope()`);
  assert.equal(r.status, 200, `list at / : ${r.status} ${r.text}`);
  const owners = r.json.value.filter((a) => a.properties.scope === '/' &&
    a.properties.roleDefinitionId.toLowerCase().endsWith(`/${ROLE.owner}`) &&
    a.properties.principalType === 'User');
  assert.equal(owners.length, 1, `exactly one bootstrap Owner at "/": ${r.text}`);
  return { oid: owners[0].properties.principalId, assignment: owners[0] };
}

// --- role assignments ---

// PUT an assignment; role is a GUID (sent as a subscription-scoped id unless roleId is
// given). Returns the raw response.
export function putAssignment(d, scope, principalId, role, { name = newGuid(), roleId, principalType, description, headers } = {}) {
  const properties = {
    roleDefinitionId: roleId ?? `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${role}`,
    principalId,
  };
  if (principalType !== undefined) properties.principalType = principalType;
  if (description !== undefined) properties.description = description;
  return d.admin('PUT', `${raPath(scope, name)}?${AUTH_API}`, { properties }, { headers });
}

export async function assign(d, scope, principalId, role, opts = {}) {
  const r = await putAssignment(d, scope, principalId, role, opts);
  assert.equal(r.status, 201, `PUT assignment ${ROLE_NAMES[role] || role} at ${scope} for ${principalId}: ${r.status} ${r.text}`);
  return r.json;
}

export function deleteAssignment(d, scope, name, { headers } = {}) {
  return d.admin('DELETE', `${raPath(scope, name)}?${AUTH_API}`, undefined, { headers });
}

export async function listAssignments(d, scope, filter, { headers } = {}) {
  const q = filter ? `&$filter=${encodeURIComponent(filter)}` : '';
  const r = await d.admin('GET', `${raPath(scope)}?${AUTH_API}${q}`, undefined, { headers });
  assert.equal(r.status, 200, `list assignments at ${scope} ${filter || ''}: ${r.status} ${r.text}`);
  assert.ok(Array.isArray(r.json.value), r.text);
  return r.json.value;
}

// Every assignment in the daemon (a list at "/" returns those at and below it).
export async function allAssignments(d) {
  return listAssignments(d, '/');
}

export const sortedNames = (list) => list.map((a) => a.name.toLowerCase()).sort();

export async function checkAccess(d, principalId, action, scope, dataAction = false, { headers } = {}) {
  const r = await d.admin('POST', `/providers/Microsoft.Authorization/checkAccess?${AUTH_API}`,
    { principalId, action, scope, dataAction }, { headers });
  assert.equal(r.status, 200, `checkAccess ${principalId} ${action} ${scope}: ${r.status} ${r.text}`);
  assert.equal(typeof r.json.allowed, 'boolean', r.text);
  return r.json;
}

export function putRole(d, scope, guid, properties, { headers } = {}) {
  return d.admin('PUT', `${rdPath(scope, guid)}?${AUTH_API}`, { properties }, { headers });
}

export function customRoleBody(roleName, { actions = [ACTION.accountRead], notActions = [], dataActions = [], notDataActions = [], assignableScopes = [subScope()], description = `${roleName} (test role)` } = {}) {
  return { roleName, description, assignableScopes, permissions: [{ actions, notActions, dataActions, notDataActions }] };
}
