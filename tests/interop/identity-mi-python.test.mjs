// A Python workload with no secret anywhere: Debian's azure-identity (python3-azure)
// ManagedIdentityCredential, unchanged, started by `keyless run --site`, gets its site's
// identity's token from the App-Service-style endpoint and calls chat completions with it.
// 200 with "Cognitive Services OpenAI User" on the account (system-assigned, then a
// user-assigned one by client id), PermissionDenied once the role is removed, no restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { PYTHON } from '../lib/interop.mjs';
import { ROLE, assign, deleteAssignment } from '../lib/authz.mjs';
import { putSite, putUami } from '../lib/identity-endpoints.mjs';

const CLIENT = fileURLToPath(new URL('./identity-mi-client.py', import.meta.url));

async function run(d, site, endpoint, env = {}) {
  const r = await d.cli(['run', '--site', site, '--', PYTHON, CLIENT], {
    env: { KL_ENDPOINT: endpoint, KL_CA: join(d.dataDir, 'tls', 'ca.pem'), PYTHONDONTWRITEBYTECODE: '1', ...env },
    timeoutMs: 30000,
  });
  assert.equal(r.code, 0, `keyless run exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

test('Python ManagedIdentityCredential under keyless run: system- and user-assigned, refused once the role is gone', async (t) => {
  const d = await startDaemon(t);
  const { account } = await d.setupAccount('demo');
  const endpoint = account.properties.endpoint;
  const ua = await putUami(d, 'py-ua');
  const site = await putSite(d, 'pyweb', true, [ua.id]);
  const oid = site.identity.principalId;
  const a = await assign(d, accountPath('demo'), oid, ROLE.openaiUser);
  assert.deepEqual(await run(d, 'pyweb', endpoint), { status: 200, content: 'hello from python' });
  // The user-assigned one has no role yet.
  let r = await run(d, 'pyweb', endpoint, { KL_MI_CLIENT_ID: ua.clientId });
  assert.equal(r.status, 401, JSON.stringify(r));
  assert.equal(r.code, 'PermissionDenied', JSON.stringify(r));
  await assign(d, accountPath('demo'), ua.principalId, ROLE.openaiUser);
  assert.deepEqual(await run(d, 'pyweb', endpoint, { KL_MI_CLIENT_ID: ua.clientId }), { status: 200, content: 'hello from python' });
  assert.equal((await deleteAssignment(d, accountPath('demo'), a.name)).status, 200);
  r = await run(d, 'pyweb', endpoint);
  assert.equal(r.status, 401, JSON.stringify(r));
  assert.match(r.message, new RegExp(`The principal \`${oid}\` lacks the required data action`));
});
