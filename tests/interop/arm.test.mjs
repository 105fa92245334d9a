// Interop with the official, pinned @azure/arm-cognitiveservices (tests/package-lock.json)
// over the public TLS listener: an application's token from ClientSecretCredential calls
// accounts.listKeys and accounts.regenerateKey. Refused (403 AuthorizationFailed) without a
// role; with "Cognitive Services Contributor" on the account the keys come back and Key2
// is regenerated (Key1 kept, the old Key2 refused by the gateway); the daemon is never
// restarted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { RG, SUB, accountPath, startDaemon } from '../lib/harness.mjs';
import { runClient } from '../lib/interop.mjs';
import { ROLE, assign, createApp, tenantId } from '../lib/authz.mjs';

const CLIENT = fileURLToPath(new URL('./arm-client.mjs', import.meta.url));

test('@azure/arm-cognitiveservices listKeys and regenerateKey: refused without a role, served with Cognitive Services Contributor', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'arm-interop');
  const pw = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: { displayName: 'arm' } });
  assert.equal(pw.status, 200, pw.text);
  const base = `https://${d.publicHost}:${d.publicPort}`;
  const env = {
    KL_AUTHORITY: base, KL_TENANT: tid, KL_CLIENT_ID: app.appId, KL_CLIENT_SECRET: pw.json.secretText,
    KL_ARM: base, KL_SUB: SUB, KL_RG: RG, KL_ACCOUNT: 'demo',
  };

  let r = await runClient(d, CLIENT, env);
  assert.equal(r.status, 403, JSON.stringify(r));
  assert.equal(r.code, 'AuthorizationFailed', JSON.stringify(r));
  assert.match(r.message, new RegExp(`The client '${app.appId}' with object id '${app.servicePrincipalId}' does not have authorization to perform action 'Microsoft.CognitiveServices/accounts/listKeys/action'`));

  const before = (await d.listKeys('demo')).json;
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.csContributor);
  r = await runClient(d, CLIENT, env);
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.equal(r.key1, before.key1);
  assert.equal(r.key2, before.key2);
  assert.equal(r.key1After, before.key1, 'Key1 is kept');
  assert.notEqual(r.key2After, before.key2, 'Key2 is new');
  const now = (await d.listKeys('demo')).json;
  assert.equal(now.key2, r.key2After, 'the regenerated key is the stored one');
  const old = await d.chat('demo', 'chat', before.key2, 'hi');
  assert.equal(old.status, 401, old.text);
  const fresh = await d.chat('demo', 'chat', r.key2After, 'hi');
  assert.equal(fresh.status, 200, fresh.text);
});
