// Interop with the official, pinned @azure/identity (4.13.1, tests/package-lock.json) for
// a person rather than an app: UsernamePasswordCredential signs a user in with the
// password grant (turned on for the tenant), and openai's AzureOpenAI calls chat
// completions with that user's token. The user holds no role itself: "Cognitive Services
// OpenAI User" on the account is given to a security group the user is a member of.
// Then the user is taken out of the group, and the same client process's next request,
// with the token it already holds, is refused (Azure OpenAI's 401 PermissionDenied).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { ROLE, assign, tenantId } from '../lib/authz.mjs';

const CLIENT = fileURLToPath(new URL('./identity-user-client.mjs', import.meta.url));
const AZURE_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const PASSWORD = 'Tr0ub4dor&3-horse-battery';

// The client in its own Node process, trusting only the daemon's CA (as runClient does);
// next() resolves to the next JSON line it prints, again() asks it to call once more.
function startClient(t, d, env) {
  const e = { ...process.env, NODE_EXTRA_CA_CERTS: join(d.dataDir, 'tls', 'ca.pem'), ...env };
  delete e.NODE_TLS_REJECT_UNAUTHORIZED;
  delete e.AZURE_AUTHORITY_HOST;
  const p = spawn(process.execPath, [CLIENT], { env: e, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiting = [];
  const lines = [];
  p.stdout.on('data', (c) => {
    out += c;
    let i;
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      if (!line.startsWith('{')) continue;
      const w = waiting.shift();
      if (w) w.resolve(JSON.parse(line));
      else lines.push(JSON.parse(line));
    }
  });
  p.stderr.on('data', (c) => (err += c));
  p.on('close', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`client exited ${code}: ${err}`));
  });
  t.after(() => p.kill('SIGKILL'));
  return {
    next: () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((resolve, reject) => waiting.push({ resolve, reject }))),
    again: () => p.stdin.write('again\n'),
    end: () => p.stdin.end(),
  };
}

test('UsernamePasswordCredential -> AzureOpenAI: allowed through a group role; the user taken out of the group is refused on the next request', async (t) => {
  const d = await startDaemon(t);
  const { account } = await d.setupAccount('demo');
  const tid = await tenantId(d);
  const u = await d.admin('POST', '/v1.0/users', {
    accountEnabled: true, displayName: 'Ada Lovelace', mailNickname: 'ada', userPrincipalName: 'ada@example.com',
    passwordProfile: { forceChangePasswordNextSignIn: false, password: PASSWORD },
  });
  assert.equal(u.status, 201, u.text);
  const g = await d.admin('POST', '/v1.0/groups', { displayName: 'model-users', mailNickname: 'model-users', mailEnabled: false, securityEnabled: true });
  assert.equal(g.status, 201, g.text);
  const add = await d.admin('POST', `/v1.0/groups/${g.json.id}/members/$ref`, { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${u.json.id}` });
  assert.equal(add.status, 204, add.text);
  await assign(d, accountPath('demo'), g.json.id, ROLE.openaiUser, { principalType: 'Group' });
  const s = await d.admin('PATCH', '/keyless/tenantSettings', { passwordGrantEnabled: true });
  assert.equal(s.status, 200, s.text);

  const c = startClient(t, d, {
    KL_AUTHORITY: `https://${d.publicHost}:${d.publicPort}`,
    KL_TENANT: tid,
    KL_CLIENT_ID: AZURE_CLI,
    KL_USERNAME: 'ada@example.com',
    KL_PASSWORD: PASSWORD,
    KL_ENDPOINT: account.properties.endpoint,
  });
  let r = await c.next();
  assert.deepEqual(r, { status: 200, content: 'hello from a user' });
  c.again();
  r = await c.next();
  assert.deepEqual(r, { status: 200, content: 'hello from a user' }, 'the cached token works again');

  const del = await d.admin('DELETE', `/v1.0/groups/${g.json.id}/members/${u.json.id}/$ref`);
  assert.equal(del.status, 204, del.text);
  c.again();
  r = await c.next();
  assert.equal(r.status, 401, JSON.stringify(r));
  assert.equal(r.code, 'PermissionDenied', JSON.stringify(r));
  assert.match(r.message, new RegExp(`The principal \`${u.json.id}\` lacks the required data action`));
  c.end();
});
