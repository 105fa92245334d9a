// `keyless login` as a person uses it: the CLI asks for a device code over TLS, prints
// the code, the test (playing the person) completes the verification page over HTTPS,
// and the CLI stores the refresh token in a 0600 file. Every later command then goes to
// keylessd's public listener with the user's token: refused (the daemon's 403) until the
// user is in a group holding Reader, allowed after. `keyless logout` revokes the refresh
// token at the server and deletes the file. A login file others could read is not used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { KEYLESS_CLI, runCli, startDaemon } from '../lib/harness.mjs';
import { ROLE, assign, subScope, tenantId } from '../lib/authz.mjs';
import { AZURE_CLI, Browser, createUser, form } from '../lib/devicecode.mjs';

const UPN = 'ann@example.com';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

// Starts `keyless login ...` and resolves with the user code once the CLI has printed
// it, and with a promise of the CLI's end.
function startLogin(args, env) {
  const p = spawn(KEYLESS_CLI, ['login', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const done = new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr })));
  const code = new Promise((resolve, reject) => {
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => {
      stderr += c;
      const m = /enter the code ([A-Z]{4}-[A-Z]{4})/.exec(stderr);
      if (m) resolve(m[1]);
    });
    p.on('close', (c) => reject(new Error(`keyless login ended (${c}) before printing a code: ${stderr}`)));
  });
  return { code, done, kill: () => p.kill('SIGKILL') };
}

function refresh(d, tid, refreshToken) {
  return d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: FORM,
    body: form({ grant_type: 'refresh_token', client_id: AZURE_CLI, refresh_token: refreshToken, scope: 'https://management.azure.com/.default offline_access' }),
  });
}

test('keyless login with a device code; commands run as the user (403, then Reader through a group); logout revokes', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  const user = await createUser(d, UPN);
  const home = mkdtempSync(join(tmpdir(), 'kl-cli-login-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  // No data directory named: the login file decides where commands go.
  const env = { HOME: home, XDG_CONFIG_HOME: '', KEYLESS_DATA_DIR: '' };
  const dir = join(home, '.config', 'keyless');
  const file = join(dir, 'login.json');
  const ca = join(d.dataDir, 'tls', 'ca.pem');

  const login = startLogin(['--server', d.publicUrl, '--tenant', tid, '--ca-file', ca], env);
  t.after(login.kill);
  const userCode = await login.code;
  const page = await new Browser(d).approve(userCode, UPN);
  assert.equal(page.status, 200, page.text);
  const r = await login.done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `signed in to ${d.publicUrl} as ${UPN} (tenant ${tid})\n`);

  // The file: 0600 in a 0700 directory, naming the server, and the token in no output.
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(Object.keys(saved).sort(), ['caFile', 'refreshToken', 'server', 'tenant']);
  assert.equal(saved.server, d.publicUrl);
  assert.equal(saved.tenant, tid);
  assert.equal(saved.caFile, ca);
  assert.ok(!r.stdout.includes(saved.refreshToken) && !r.stderr.includes(saved.refreshToken));

  // As the user, without a role: the daemon's 403, shown as the daemon says it.
  let c = await runCli(['account', 'list', '-o', 'json'], { env });
  assert.equal(c.code, 1, c.stderr);
  // ARM names a user by UPN, not by the client application it signed in with.
  assert.ok(c.stderr.startsWith(`error: AuthorizationFailed: The client '${UPN}' with object id '`), c.stderr);
  assert.match(c.stderr, /with object id '[0-9a-f-]{36}' does not have authorization to perform action 'Microsoft\.CognitiveServices\/accounts\/read'/);
  assert.ok(c.stderr.includes(user.id), c.stderr);
  // Each redemption rotated the refresh token, and the new one was saved.
  const rotated = JSON.parse(readFileSync(file, 'utf8')).refreshToken;
  assert.notEqual(rotated, saved.refreshToken);
  assert.equal(statSync(file).mode & 0o777, 0o600);

  // Reader given to a group the user is in: allowed from the next command on.
  const g = await d.admin('POST', '/v1.0/groups', { displayName: 'readers', mailNickname: 'readers', mailEnabled: false, securityEnabled: true });
  assert.equal(g.status, 201, g.text);
  const add = await d.admin('POST', `/v1.0/groups/${g.json.id}/members/$ref`, { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${user.id}` });
  assert.equal(add.status, 204, add.text);
  await assign(d, subScope(), g.json.id, ROLE.reader);
  c = await runCli(['account', 'list', '-o', 'json'], { env });
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual(c.json.value.map((a) => a.name), ['demo']);
  // Commands run at once take turns with the refresh token (each redemption rotates it,
  // and redeeming a spent one would end the sign-in): all succeed, and the sign-in lives.
  const runs = await Promise.all([1, 2, 3, 4].map(() => runCli(['account', 'list', '-o', 'json'], { env })));
  for (const p of runs) assert.equal(p.code, 0, p.stderr);
  c = await runCli(['account', 'list', '-o', 'json'], { env });
  assert.equal(c.code, 0, c.stderr);
  // A directory call (Graph's /v1.0/organization) needs a Graph token, redeemed from the
  // same refresh token: accepted as the user's (a token for another audience would be a
  // 401), then judged by RBAC, where Reader on the subscription does not reach "/".
  c = await runCli(['tenant', 'show', '-o', 'json'], { env });
  assert.equal(c.code, 1, c.stderr);
  assert.match(c.stderr, /^error: AuthorizationFailed: .*'microsoft\.directory\/organization\/standard\/read' over scope '\/'/);
  assert.ok(c.stderr.includes(user.id), c.stderr);
  // Reader does not write.
  c = await runCli(['account', 'delete', 'demo'], { env });
  assert.equal(c.code, 1, c.stderr);
  assert.match(c.stderr, /^error: AuthorizationFailed: .*accounts\/delete/);

  // logout: the token is revoked at the server and the file is gone.
  const last = JSON.parse(readFileSync(file, 'utf8')).refreshToken;
  c = await runCli(['logout'], { env });
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stdout, `signed out of ${d.publicUrl}\n`);
  assert.equal(existsSync(file), false);
  const after = await refresh(d, tid, last);
  assert.equal(after.status, 400, after.text);
  assert.equal(after.json.error, 'invalid_grant', after.text);
  // Signed out, with no data directory: the CLI looks for the local admin socket again.
  c = await runCli(['account', 'list'], { env });
  assert.equal(c.code, 3, c.stderr);
  assert.match(c.stderr, /admin\.sock/);
});

test('a login file others can read is not used', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'kl-cli-login-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const env = { HOME: home, XDG_CONFIG_HOME: '', KEYLESS_DATA_DIR: '' };
  mkdirSync(join(home, '.config', 'keyless'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, '.config', 'keyless', 'login.json'),
    JSON.stringify({ server: 'https://127.0.0.1:1', tenant: 't', caFile: '', refreshToken: 'x' }), { mode: 0o644 });
  const c = await runCli(['account', 'list'], { env });
  assert.equal(c.code, 1, c.stderr);
  assert.match(c.stderr, /only you can read \(mode 0600\); it is not used/);
});

test('app create --public-client --redirect-uri, and tenant set --password-grant', async (t) => {
  const d = await startDaemon(t);
  let c = await d.cli(['app', 'create', 'my-tool', '--public-client', '--redirect-uri', 'http://localhost', '-o', 'json']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.json.isFallbackPublicClient, true);
  assert.deepEqual(c.json.publicClient.redirectUris, ['http://localhost']);
  c = await d.cli(['app', 'show', 'my-tool']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /^PUBLIC-CLIENT +true$/m);
  assert.match(c.stdout, /^REDIRECT-URIS +http:\/\/localhost$/m);
  // A confidential client's redirect URIs are web ones; an app that signs nobody in
  // shows neither line.
  c = await d.cli(['app', 'create', 'my-site', '--redirect-uri', 'https://site.example/cb', '-o', 'json']);
  assert.equal(c.code, 0, c.stderr);
  assert.notEqual(c.json.isFallbackPublicClient, true);
  assert.deepEqual(c.json.web.redirectUris, ['https://site.example/cb']);
  c = await d.cli(['app', 'create', 'plain']);
  assert.equal(c.code, 0, c.stderr);
  assert.doesNotMatch(c.stdout, /PUBLIC-CLIENT|REDIRECT-URIS/);

  c = await d.cli(['tenant', 'set', '--password-grant', 'on']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stdout, 'PASSWORD-GRANT  on\n');
  let r = await d.admin('GET', '/keyless/tenantSettings');
  assert.deepEqual(r.json, { passwordGrantEnabled: true });
  c = await d.cli(['tenant', 'set', '--password-grant', 'off', '-o', 'json']);
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual(c.json, { passwordGrantEnabled: false });
  r = await d.admin('GET', '/keyless/tenantSettings');
  assert.deepEqual(r.json, { passwordGrantEnabled: false });
});
