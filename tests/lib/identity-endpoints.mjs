// Helpers for the identity-endpoint suites: ARM calls over the admin socket that make
// user-assigned identities, VMs and sites with Azure's identity block, and requests to
// the two identity endpoints (IMDS style and App Service style) on the daemon's IMDS
// listener.
import assert from 'node:assert/strict';

import { RG, SUB } from './harness.mjs';

export const UAMI_API = 'api-version=2023-01-31';
export const VM_API = 'api-version=2024-07-01';
export const SITE_API = 'api-version=2024-04-01';
export const COG = 'https://cognitiveservices.azure.com';
export const IMDS_PATH = '/metadata/identity/oauth2/token';

export const uamiId = (name, { sub = SUB, rg = RG } = {}) =>
  `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
export const vmId = (name, { sub = SUB, rg = RG } = {}) =>
  `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachines/${name}`;
export const siteId = (name, { sub = SUB, rg = RG } = {}) =>
  `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Web/sites/${name}`;

// PUT a user-assigned identity; resolves with {id, clientId, principalId}.
export async function putUami(d, name) {
  const r = await d.admin('PUT', `${uamiId(name)}?${UAMI_API}`, { location: 'local' });
  assert.ok(r.status === 200 || r.status === 201, `PUT identity ${name}: ${r.status} ${r.text}`);
  return { id: r.json.id, clientId: r.json.properties.clientId, principalId: r.json.properties.principalId };
}

export async function deleteUami(d, name) {
  const r = await d.admin('DELETE', `${uamiId(name)}?${UAMI_API}`);
  assert.ok(r.status === 200 || r.status === 204, `DELETE identity ${name}: ${r.status} ${r.text}`);
}

// The identity block for system (bool) and the user-assigned ids given.
export function identityBlock(system, userIds = []) {
  const types = [];
  if (system) types.push('SystemAssigned');
  if (userIds.length) types.push('UserAssigned');
  const block = { type: types.length ? types.join(', ') : 'None' };
  if (userIds.length) block.userAssignedIdentities = Object.fromEntries(userIds.map((id) => [id, {}]));
  return block;
}

async function putCompute(d, path, api, system, userIds) {
  const r = await d.admin('PUT', `${path}?${api}`, { location: 'local', identity: identityBlock(system, userIds) });
  assert.ok(r.status === 200 || r.status === 201, `PUT ${path}: ${r.status} ${r.text}`);
  return r.json;
}

// PUT a VM / site with a system-assigned identity (system) and user-assigned ones
// (their ARM ids); resolves with the resource as ARM answered it.
export const putVm = (d, name, system, userIds) => putCompute(d, vmId(name), VM_API, system, userIds);
export const putSite = (d, name, system, userIds) => putCompute(d, siteId(name), SITE_API, system, userIds);

export async function deleteSite(d, name) {
  const r = await d.admin('DELETE', `${siteId(name)}?${SITE_API}`);
  assert.ok(r.status === 200 || r.status === 204, `DELETE site ${name}: ${r.status} ${r.text}`);
}

// GET the IMDS-style token endpoint. query: an object or a raw string; headers default to
// Metadata: true.
export function imdsGet(d, query, { headers = { Metadata: 'true' }, method = 'GET', path = IMDS_PATH } = {}) {
  const q = typeof query === 'string' ? query : new URLSearchParams(query).toString();
  return d.imds(method, q ? `${path}?${q}` : path, { headers });
}

export function imdsToken(d, extra = {}, opts) {
  return imdsGet(d, { 'api-version': '2018-02-01', resource: COG, ...extra }, opts);
}

// GET the App-Service-style endpoint with header (undefined: none).
export function msiGet(d, header, extra = {}, { method = 'GET' } = {}) {
  const q = new URLSearchParams({ 'api-version': '2019-08-01', resource: COG, ...extra }).toString();
  return d.imds(method, `/msi/token?${q}`, { headers: header === undefined ? {} : { 'X-IDENTITY-HEADER': header } });
}

// The claims of a compact JWS (no verification: the gateway verifies).
export function claims(tok) {
  return JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString('utf8'));
}
export function header(tok) {
  return JSON.parse(Buffer.from(tok.split('.')[0], 'base64url').toString('utf8'));
}

// Azure's exact IMDS error bodies (protocols.md 1.3).
export const IMDS_ERR = {
  metadata: '{"error":"invalid_request","error_description":"Required metadata header not specified"}',
  notFound: '{"error":"invalid_request","error_description":"Identity not found"}',
  multiple:
    '{"error":"invalid_request","error_description":"Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"}',
};
