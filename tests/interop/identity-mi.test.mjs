// Interop with the official, pinned @azure/identity: ManagedIdentityCredential, unchanged,
// gets a managed identity's token from keyless's identity endpoints and openai's
// AzureOpenAI calls chat completions with it: through IMDS (AZURE_POD_IDENTITY_AUTHORITY_HOST,
// the variable AKS pod identity sets) as VM vm1, and through the App Service variables that
// `keyless run --site` sets. System-assigned and user-assigned by clientId, resourceId and
// objectId; 200 with "Cognitive Services OpenAI User" on the account, refused once the role
// or the identity is gone, with no restart. Each run is a fresh Node process (no cache).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { runClient } from '../lib/interop.mjs';
import { ROLE, assign, deleteAssignment } from '../lib/authz.mjs';
import { deleteUami, putSite, putUami, putVm } from '../lib/identity-endpoints.mjs';

const CLIENT = fileURLToPath(new URL('./identity-mi-client.mjs', import.meta.url));
const OK = { status: 200, content: 'hello from a managed identity' };

async function setup(t) {
  const d = await startDaemon(t, { args: ['--vm', 'vm1'] });
  const { account } = await d.setupAccount('demo');
  return { d, endpoint: account.properties.endpoint };
}

// The client through IMDS: only the pod-identity host is set, as on AKS.
const viaImds = (d, endpoint, env = {}) =>
  runClient(d, CLIENT, { KL_ENDPOINT: endpoint, AZURE_POD_IDENTITY_AUTHORITY_HOST: d.imdsUrl, ...env });

// The client started by keyless run for site: IDENTITY_ENDPOINT and IDENTITY_HEADER come
// from the CLI; the test sets neither.
async function viaRun(d, site, endpoint, env = {}) {
  const r = await d.cli(['run', '--site', site, '--', process.execPath, CLIENT], {
    env: { KL_ENDPOINT: endpoint, NODE_EXTRA_CA_CERTS: join(d.dataDir, 'tls', 'ca.pem'), ...env },
    timeoutMs: 30000,
  });
  assert.equal(r.code, 0, `keyless run exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function assertPermissionDenied(r, oid) {
  assert.equal(r.status, 401, JSON.stringify(r));
  assert.equal(r.code, 'PermissionDenied', JSON.stringify(r));
  assert.match(r.message, new RegExp(`The principal \`${oid}\` lacks the required data action`));
}

test('IMDS, system-assigned: 200 with the role, PermissionDenied without, nothing once the identity is disabled', async (t) => {
  const { d, endpoint } = await setup(t);
  const vm = await putVm(d, 'vm1', true);
  const oid = vm.identity.principalId;
  const a = await assign(d, accountPath('demo'), oid, ROLE.openaiUser);
  assert.deepEqual(await viaImds(d, endpoint), OK);
  assert.equal((await deleteAssignment(d, accountPath('demo'), a.name)).status, 200);
  assertPermissionDenied(await viaImds(d, endpoint), oid);
  await assign(d, accountPath('demo'), oid, ROLE.openaiUser);
  assert.deepEqual(await viaImds(d, endpoint), OK);
  // Disabled: the identity and its role assignments are gone; the endpoint says so.
  await putVm(d, 'vm1', false);
  const r = await viaImds(d, endpoint);
  assert.notEqual(r.status, 200, JSON.stringify(r));
  assert.match(r.message, /Identity not found/, JSON.stringify(r));
});

test('IMDS, user-assigned by clientId, resourceId and objectId; refused once the identity is deleted', async (t) => {
  const { d, endpoint } = await setup(t);
  const a = await putUami(d, 'ua-a');
  const b = await putUami(d, 'ua-b');
  await putVm(d, 'vm1', false, [a.id, b.id]);
  await assign(d, accountPath('demo'), a.principalId, ROLE.openaiUser);
  assert.deepEqual(await viaImds(d, endpoint, { KL_MI_CLIENT_ID: a.clientId }), OK);
  assert.deepEqual(await viaImds(d, endpoint, { KL_MI_RESOURCE_ID: a.id }), OK);
  assert.deepEqual(await viaImds(d, endpoint, { KL_MI_OBJECT_ID: a.principalId }), OK);
  // b is on the VM too, but has no role.
  assertPermissionDenied(await viaImds(d, endpoint, { KL_MI_CLIENT_ID: b.clientId }), b.principalId);
  // Two user-assigned and no selector: Azure's "Multiple user assigned identities".
  let r = await viaImds(d, endpoint);
  assert.match(r.message, /Multiple user assigned identities exist/, JSON.stringify(r));
  await deleteUami(d, 'ua-a');
  r = await viaImds(d, endpoint, { KL_MI_CLIENT_ID: a.clientId });
  assert.notEqual(r.status, 200, JSON.stringify(r));
  assert.match(r.message, /Identity not found/, JSON.stringify(r));
});

test('App Service variables from keyless run: system-assigned and user-assigned by clientId, resourceId and objectId', async (t) => {
  const { d, endpoint } = await setup(t);
  const u = await putUami(d, 'ua-web');
  const site = await putSite(d, 'web', true, [u.id]);
  const sys = site.identity.principalId;
  const a = await assign(d, accountPath('demo'), sys, ROLE.openaiUser);
  assert.deepEqual(await viaRun(d, 'web', endpoint), OK);
  assert.equal((await deleteAssignment(d, accountPath('demo'), a.name)).status, 200);
  assertPermissionDenied(await viaRun(d, 'web', endpoint), sys);
  await assign(d, accountPath('demo'), u.principalId, ROLE.openaiUser);
  assert.deepEqual(await viaRun(d, 'web', endpoint, { KL_MI_CLIENT_ID: u.clientId }), OK);
  assert.deepEqual(await viaRun(d, 'web', endpoint, { KL_MI_RESOURCE_ID: u.id }), OK);
  assert.deepEqual(await viaRun(d, 'web', endpoint, { KL_MI_OBJECT_ID: u.principalId }), OK);
  await deleteUami(d, 'ua-web');
  const r = await viaRun(d, 'web', endpoint, { KL_MI_CLIENT_ID: u.clientId });
  assert.notEqual(r.status, 200, JSON.stringify(r));
  assert.match(r.message, /No User Assigned or Delegated Managed Identity found/, JSON.stringify(r));
});
