// Interop with the official, pinned @azure/identity (tests/package-lock.json): an app
// signs in with ClientSecretCredential against keyless's token endpoint and calls chat
// completions through openai's AzureOpenAI with getBearerTokenProvider. 200 with
// "Cognitive Services OpenAI User" on the account, Azure's 401 PermissionDenied without
// it, 200 again once it is assigned again; the daemon is never restarted. Each run is a
// fresh Node process, so every run signs in anew.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { runClient } from '../lib/interop.mjs';
import { ROLE, assign, createApp, deleteAssignment, tenantId } from '../lib/authz.mjs';

const CLIENT = fileURLToPath(new URL('./identity-client.mjs', import.meta.url));

const run = (d, env) => runClient(d, CLIENT, env);

test('ClientSecretCredential -> getBearerTokenProvider -> AzureOpenAI: 200 with the role, 401 PermissionDenied without, 200 again', async (t) => {
  const d = await startDaemon(t);
  const { account } = await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'identity-interop');
  const pw = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: { displayName: 'interop' } });
  assert.equal(pw.status, 200, pw.text);
  const env = {
    KL_AUTHORITY: `https://${d.publicHost}:${d.publicPort}`,
    KL_TENANT: tid,
    KL_CLIENT_ID: app.appId,
    KL_CLIENT_SECRET: pw.json.secretText,
    KL_ENDPOINT: account.properties.endpoint,
  };
  const a = await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  let r = await run(d, env);
  assert.deepEqual(r, { status: 200, content: 'hello from identity' });
  const del = await deleteAssignment(d, accountPath('demo'), a.name);
  assert.equal(del.status, 200, del.text);
  r = await run(d, env);
  assert.equal(r.status, 401, JSON.stringify(r));
  assert.equal(r.code, 'PermissionDenied', JSON.stringify(r));
  assert.match(r.message, new RegExp(`The principal \`${app.servicePrincipalId}\` lacks the required data action`));
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  r = await run(d, env);
  assert.deepEqual(r, { status: 200, content: 'hello from identity' });
  // A wrong secret surfaces as the credential's own error, with Entra's code in it.
  r = await run(d, { ...env, KL_CLIENT_SECRET: 'not-the-secret' });
  assert.notEqual(r.status, 200);
  assert.match(r.message, /7000215/, JSON.stringify(r));
});
