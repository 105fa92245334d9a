// Interop with the official, pinned @azure/identity WorkloadIdentityCredential: a
// federated token file issued by a test OIDC issuer (tests/lib/oidc-issuer.mjs) is
// accepted as the application's client assertion through its federated identity
// credential; keylessd fetches the issuer's discovery document and keys itself (through
// the egress policy, trusting --federation-ca-file). Then chat completions through
// AzureOpenAI with getBearerTokenProvider: 200. The same token file serves a second
// sign-in (no jti rule for federated tokens); a token about another subject fails with
// Entra's 700213.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { runClient } from '../lib/interop.mjs';
import { ROLE, assign, createApp, tenantId } from '../lib/authz.mjs';
import { startIssuer } from '../lib/oidc-issuer.mjs';

const CLIENT = fileURLToPath(new URL('./identity-workload-client.mjs', import.meta.url));
const SUBJECT = 'system:serviceaccount:prod:api';

const run = (d, env) => runClient(d, CLIENT, env);

test('WorkloadIdentityCredential with a federated token file -> AzureOpenAI: 200; another subject is 700213', async (t) => {
  const iss = await startIssuer(t);
  const d = await startDaemon(t, { args: ['--federation-ca-file', iss.caFile] });
  const { account } = await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'workload-interop');
  const fic = await d.admin('POST', `/v1.0/applications/${app.id}/federatedIdentityCredentials`, {
    name: 'prod-api', issuer: iss.issuer, subject: SUBJECT, audiences: ['api://AzureADTokenExchange'],
  });
  assert.equal(fic.status, 201, fic.text);
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  const env = {
    KL_AUTHORITY: `https://${d.publicHost}:${d.publicPort}`,
    KL_TENANT: tid,
    KL_CLIENT_ID: app.appId,
    KL_TOKEN_FILE: iss.writeToken(iss.mint({ sub: SUBJECT })),
    KL_ENDPOINT: account.properties.endpoint,
  };
  let r = await run(d, env);
  assert.deepEqual(r, { status: 200, content: 'hello from a workload' });
  assert.equal(iss.hits.keys, 1, 'keylessd fetched the issuer keys');
  // The same file again (a new process): accepted, and the keys came from the cache.
  r = await run(d, env);
  assert.deepEqual(r, { status: 200, content: 'hello from a workload' });
  assert.equal(iss.hits.keys, 1, 'the issuer keys were cached');
  // A token about another workload of the same issuer.
  r = await run(d, { ...env, KL_TOKEN_FILE: iss.writeToken(iss.mint({ sub: 'system:serviceaccount:dev:api' })) });
  assert.notEqual(r.status, 200);
  assert.match(r.message, /700213/, JSON.stringify(r));
});
