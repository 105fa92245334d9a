// DefaultAzureCredential with no configuration at all, as on an Azure VM: its 1-second
// IMDS probe and its token request go to 169.254.169.254:80. The test serves that address
// from keylessd (--imds-listen 169.254.169.254:80 --vm vm1) inside a network namespace it
// creates, the address on that namespace's loopback, and runs the client in the same
// namespace; the host's own namespace (where that address may be the machine provider's)
// is never touched. The admin socket is a file, so the test drives the control plane from
// outside the namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Daemon, KEYLESSD, accountPath } from '../lib/harness.mjs';
import { ROLE, assign, deleteAssignment } from '../lib/authz.mjs';
import { putVm } from '../lib/identity-endpoints.mjs';

const CLIENT = fileURLToPath(new URL('./identity-mi-client.mjs', import.meta.url));

// Runs the client inside namespace ns with only what an app on a VM would have.
function runInNs(ns, d, env) {
  return new Promise((resolve, reject) => {
    const e = { ...process.env, NODE_EXTRA_CA_CERTS: join(d.dataDir, 'tls', 'ca.pem'), ...env };
    for (const k of ['AZURE_POD_IDENTITY_AUTHORITY_HOST', 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'MSI_ENDPOINT', 'MSI_SECRET', 'AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_AUTHORITY_HOST', 'NODE_TLS_REJECT_UNAUTHORIZED'])
      delete e[k];
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, CLIENT], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      assert.equal(code, 0, `client exited ${code}:\n${err}\n${out}`);
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

test('DefaultAzureCredential, no variables: probe and token at 169.254.169.254:80 in a namespace of the test; the role decides', async (t) => {
  assert.equal(process.getuid(), 0, 'network namespaces need root');
  const ns = `kl-imds-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.after(() => execFileSync('ip', ['netns', 'del', ns]));
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', ns, 'addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
  // keylessd started inside the namespace: ip netns exec execs it, so the pid the harness
  // signals is keylessd's own.
  const dir = mkdtempSync(join(tmpdir(), 'kl-ns-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wrapper = join(dir, 'keylessd-in-ns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${KEYLESSD} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const d = new Daemon({ binary: wrapper, args: ['--vm', 'vm1', '--imds-listen', '169.254.169.254:80'] });
  t.after(() => d.cleanup());
  await d.start();
  assert.equal(d.ready.imds, '169.254.169.254:80');
  const { account } = await d.setupAccount('demo');
  const vm = await putVm(d, 'vm1', true);
  const env = { KL_ENDPOINT: account.properties.endpoint, KL_DEFAULT_CREDENTIAL: '1' };
  const a = await assign(d, accountPath('demo'), vm.identity.principalId, ROLE.openaiUser);
  assert.deepEqual(await runInNs(ns, d, env), { status: 200, content: 'hello from a managed identity' });
  assert.equal((await deleteAssignment(d, accountPath('demo'), a.name)).status, 200);
  const r = await runInNs(ns, d, env);
  assert.equal(r.status, 401, JSON.stringify(r));
  assert.equal(r.code, 'PermissionDenied', JSON.stringify(r));
});
