// Interop with the official `openai` package (pinned in package-lock.json). Each scenario
// runs in a fresh Node process that trusts the daemon's CA through NODE_EXTRA_CA_CERTS,
// read at process start as in a real deployment: nothing changes but the endpoint settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ARM_API, accountPath, findSecrets, startDaemon } from '../lib/harness.mjs';

const CLIENT = fileURLToPath(new URL('./openai-client.mjs', import.meta.url));

function runScenario(d, scenario, { key, endpoint, revoked = '' }) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(d.dataDir, 'tls', 'ca.pem'), KL_ENDPOINT: endpoint, KL_KEY: key, KL_DEPLOYMENT: 'chat', KL_EMBED_DEPLOYMENT: 'emb', KL_REVOKED_KEY: revoked };
    delete env.NODE_TLS_REJECT_UNAUTHORIZED;
    const p = spawn(process.execPath, [CLIENT, scenario], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

async function runOk(d, scenario, settings) {
  const r = await runScenario(d, scenario, settings);
  assert.equal(r.code, 0, `scenario ${scenario} failed:\n${r.err}\n${r.out}`);
}

async function setup(t) {
  const d = await startDaemon(t);
  const { keys, account } = await d.setupAccount('demo', { deployments: { chat: {}, emb: {} } });
  // Scripts take the endpoint from properties.endpoints, as Azure returns it; the
  // scenarios use exactly that value.
  const endpoint = account.properties.endpoints['OpenAI Language Model Instance API'];
  assert.equal(endpoint, `${d.publicUrl}/accounts/demo/`);
  assert.equal(account.properties.endpoint, endpoint);
  return { d, keys, endpoint };
}

test('AzureOpenAI and OpenAI clients work unchanged against keylessd', async (t) => {
  const { d, keys, endpoint } = await setup(t);
  const settings = { key: keys.key1, endpoint };
  for (const scenario of ['chat', 'stream', 'streamHelper', 'embeddings', 'completions', 'v1Chat', 'v1Models', 'azureV1BaseUrl']) {
    await t.test(scenario, () => runOk(d, scenario, settings));
  }
  await t.test('Key2 works the same', () => runOk(d, 'chat', { key: keys.key2, endpoint }));
  assert.deepEqual(findSecrets(d.stderr, [keys.key1, keys.key2]), []);
});

// Each client-side error owns its daemon: revoking a key or turning keys off changes what
// every later call would see.
test('client-side errors: wrong or revoked key -> AuthenticationError 401', async (t) => {
  const { d, keys, endpoint } = await setup(t);
  const r = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName: 'key2' });
  assert.equal(r.status, 200, r.text);
  await runOk(d, 'wrongKey', { key: keys.key1, endpoint, revoked: keys.key2 });
});

test('client-side errors: unknown deployment -> NotFoundError DeploymentNotFound', async (t) => {
  const { d, keys, endpoint } = await setup(t);
  await runOk(d, 'unknownDeployment', { key: keys.key1, endpoint });
});

test('client-side errors: disableLocalAuth -> PermissionDeniedError AuthenticationTypeDisabled', async (t) => {
  const { d, keys, endpoint } = await setup(t);
  const r = await d.admin('PUT', `${accountPath('demo')}?${ARM_API}`, { properties: { disableLocalAuth: true } });
  assert.equal(r.status, 200, r.text);
  await runOk(d, 'keyDisabled', { key: keys.key1, endpoint });
});
