// Interop with the official, pinned @azure/identity: ClientCertificateCredential (which
// signs its client assertion PS256 with x5t#S256, and adds x5c with
// sendCertificateChain) against keyless's token endpoint, then chat completions through
// openai's AzureOpenAI with getBearerTokenProvider: 200 with "Cognitive Services OpenAI
// User", 401 PermissionDenied without it; a certificate that is not registered fails
// with Entra's 700027. Each run is a fresh Node process, so every run signs in anew (and
// each sign-in's assertion has a fresh jti).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { runClient } from '../lib/interop.mjs';
import { ROLE, assign, createApp, deleteAssignment, tenantId } from '../lib/authz.mjs';
import { makeCert } from '../lib/certs.mjs';

const CLIENT = fileURLToPath(new URL('./identity-cert-client.mjs', import.meta.url));

const run = (d, env) => runClient(d, CLIENT, env);

test('ClientCertificateCredential -> getBearerTokenProvider -> AzureOpenAI: 200 with the role, 401 PermissionDenied without, 700027 for an unregistered certificate', async (t) => {
  const d = await startDaemon(t);
  const { account } = await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'cert-interop');
  const cert = makeCert({ cn: 'cert-interop' });
  const up = await d.admin('PATCH', `/v1.0/applications/${app.id}`, { keyCredentials: [{ type: 'AsymmetricX509Cert', usage: 'Verify', key: cert.derB64 }] });
  assert.equal(up.status, 204, up.text);
  const env = {
    KL_AUTHORITY: `https://${d.publicHost}:${d.publicPort}`,
    KL_TENANT: tid,
    KL_CLIENT_ID: app.appId,
    KL_CERT_PEM: `${cert.keyPem}\n${cert.certPem}`,
    KL_ENDPOINT: account.properties.endpoint,
  };
  const a = await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  let r = await run(d, env);
  assert.deepEqual(r, { status: 200, content: 'hello from a certificate' });
  r = await run(d, { ...env, KL_SEND_X5C: '1' });
  assert.deepEqual(r, { status: 200, content: 'hello from a certificate' }, 'with x5c');
  const del = await deleteAssignment(d, accountPath('demo'), a.name);
  assert.equal(del.status, 200, del.text);
  r = await run(d, env);
  assert.equal(r.status, 401, JSON.stringify(r));
  assert.equal(r.code, 'PermissionDenied', JSON.stringify(r));
  // A certificate keyless does not know: the credential's own error, with Entra's code.
  const stranger = makeCert({ cn: 'stranger' });
  r = await run(d, { ...env, KL_CERT_PEM: `${stranger.keyPem}\n${stranger.certPem}` });
  assert.notEqual(r.status, 200);
  assert.match(r.message, /700027/, JSON.stringify(r));
});
