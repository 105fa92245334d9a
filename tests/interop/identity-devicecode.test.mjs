// Interop with the official, pinned @azure/identity (4.13.1) DeviceCodeCredential and its
// defaults (the Azure CLI's well-known public client id, MSAL's device-code polling):
// the credential shows the prompt, the test completes the verification page over HTTPS as
// a person would (fetching pages, keeping the cookies by hand, typing the code and the
// password), MSAL's polling gets the user's token, and openai's AzureOpenAI calls the
// model through a role given to a GROUP the user is in ("Cognitive Services OpenAI
// User"). The user is then taken out of the group: the very next request, with the same
// cached token, is refused (401 PermissionDenied, Azure's data-plane answer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { accountPath, startDaemon } from '../lib/harness.mjs';
import { ROLE, assign, tenantId } from '../lib/authz.mjs';
import { Browser, createUser } from '../lib/devicecode.mjs';

const CLIENT = fileURLToPath(new URL('./identity-devicecode-client.mjs', import.meta.url));

// The client as a child whose JSON lines arrive one by one (the prompt comes long before
// the end), trusting the daemon's CA and nothing else.
function startClient(t, d, env) {
  const e = { ...process.env, NODE_EXTRA_CA_CERTS: join(d.dataDir, 'tls', 'ca.pem'), ...env };
  delete e.NODE_TLS_REJECT_UNAUTHORIZED;
  delete e.AZURE_AUTHORITY_HOST;
  const p = spawn(process.execPath, [CLIENT], { env: e, stdio: ['pipe', 'pipe', 'pipe'] });
  let buf = '';
  let err = '';
  const queue = [];
  const waiters = [];
  p.stdout.on('data', (c) => {
    buf += c;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let j;
      try {
        j = JSON.parse(line);
      } catch {
        continue;
      }
      if (waiters.length) waiters.shift()(j);
      else queue.push(j);
    }
  });
  p.stderr.on('data', (c) => (err += c));
  const timer = setTimeout(() => p.kill('SIGKILL'), 60000);
  t.after(() => {
    clearTimeout(timer);
    p.kill('SIGKILL');
  });
  const next = () => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift());
    waiters.push(resolve);
    p.once('close', (code) => reject(new Error(`client exited ${code}:\n${err}`)));
  });
  return { next, send: (line) => p.stdin.write(`${line}\n`), end: () => p.stdin.end() };
}

test('DeviceCodeCredential (defaults) -> the page completed as a person -> AzureOpenAI through a group\'s role; out of the group, the next request is refused', async (t) => {
  const d = await startDaemon(t);
  const { account } = await d.setupAccount('demo');
  const tid = await tenantId(d);
  const user = await createUser(d, 'dev@example.com');
  const g = await d.admin('POST', '/v1.0/groups', { displayName: 'model-users', mailEnabled: false, mailNickname: 'model-users', securityEnabled: true });
  assert.equal(g.status, 201, g.text);
  const add = await d.admin('POST', `/v1.0/groups/${g.json.id}/members/$ref`, { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${user.id}` });
  assert.equal(add.status, 204, add.text);
  await assign(d, accountPath('demo'), g.json.id, ROLE.openaiUser, { principalType: 'Group' });

  // No tenant given: the credential's default authority, /organizations, is the one
  // tenant's (its discovery is asked there).
  const viaOrganizations = d.waitForLog((j) => typeof j.path === 'string' && j.path.startsWith('/organizations/'), 60000);
  const c = startClient(t, d, { KL_AUTHORITY: d.publicUrl, KL_ENDPOINT: account.properties.endpoint });
  const { prompt } = await c.next();
  assert.ok(prompt, 'the credential shows the prompt first');
  await viaOrganizations;
  assert.equal(prompt.verificationUri, `${d.publicUrl}/devicelogin`);
  assert.match(prompt.message, new RegExp(`enter the code ${prompt.userCode} to authenticate`));

  // The person: opens the page, types the code, checks it is the Azure CLI asking, signs in.
  const browser = new Browser(d);
  const page = await browser.get(new URL(prompt.verificationUri).pathname);
  assert.equal(page.status, 200, page.text);
  const done = await browser.approve(prompt.userCode, 'dev@example.com');
  assert.equal(done.status, 200, done.text);

  let r = await c.next();
  assert.deepEqual(r, { status: 200, content: 'hello from a device' });

  const del = await d.admin('DELETE', `/v1.0/groups/${g.json.id}/members/${user.id}/$ref`);
  assert.equal(del.status, 204, del.text);
  c.send('again');
  r = await c.next();
  assert.equal(r.status, 401, JSON.stringify(r));
  assert.equal(r.code, 'PermissionDenied', JSON.stringify(r));
  assert.match(r.message, new RegExp(`The principal \`${user.id}\` lacks the required data action`));
  c.end();
});
