// `keyless login --browser`: the authorization-code flow with PKCE, the browser sent back
// to a one-time listener of the CLI on 127.0.0.1. The test plays the browser: it opens
// the address the CLI prints, signs in on keylessd's page, follows the redirect to the
// CLI's listener and reads what the CLI answers there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { KEYLESS_CLI, runCli, startDaemon } from '../lib/harness.mjs';
import { tenantId } from '../lib/authz.mjs';
import { Jar, createUser, postForm } from '../lib/signin.mjs';

const UPN = 'bob@example.com';

// Starts `keyless login --browser ...`; resolves the sign-in address once printed.
function startLogin(args, env) {
  const p = spawn(KEYLESS_CLI, ['login', '--browser', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const done = new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr })));
  const url = new Promise((resolve, reject) => {
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => {
      stderr += c;
      const m = /^ {2}(https:\/\/\S+)$/m.exec(stderr);
      if (m) resolve(new URL(m[1]));
    });
    p.on('close', (c) => reject(new Error(`keyless login ended (${c}) before printing the address: ${stderr}`)));
  });
  return { url, done, kill: () => p.kill('SIGKILL') };
}

// The browser following a redirect to the CLI's loopback listener.
function follow(location) {
  return new Promise((resolve, reject) => {
    http.get(location, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('keyless login --browser: PKCE S256, state checked, the code redeemed; the user is signed in', async (t) => {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  await createUser(d, UPN);
  const home = mkdtempSync(join(tmpdir(), 'kl-cli-browser-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const env = { HOME: home, XDG_CONFIG_HOME: '', KEYLESS_DATA_DIR: '', DISPLAY: '', WAYLAND_DISPLAY: '' };

  const login = startLogin(['--server', d.publicUrl, '--tenant', tid, '--ca-file', join(d.dataDir, 'tls', 'ca.pem')], env);
  t.after(login.kill);
  const url = await login.url;
  const q = url.searchParams;
  assert.equal(q.get('client_id'), '04b07795-8ddb-461a-bbee-02f9e1bf7b46');
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  assert.match(q.get('redirect_uri'), /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(q.get('state').length >= 16);

  // Something other than the redirect first (a browser's favicon): 404, still waiting.
  const favicon = await follow(`${q.get('redirect_uri')}/favicon.ico`);
  assert.equal(favicon.status, 404);

  const jar = new Jar();
  const page = jar.take(await d.request('GET', `${url.pathname}${url.search}`));
  assert.equal(page.status, 200, page.text.slice(0, 300));
  const back = await postForm(d, page, jar, { username: UPN });
  assert.equal(back.status, 302, back.text.slice(0, 300));
  const loc = new URL(back.headers.location);
  assert.equal(`${loc.origin}`, q.get('redirect_uri'));
  assert.equal(loc.searchParams.get('state'), q.get('state'));
  const answered = await follow(loc.href);
  assert.equal(answered.status, 200);
  assert.match(answered.body, /signed in to keyless/);

  const r = await login.done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `signed in to ${d.publicUrl} as ${UPN} (tenant ${tid})\n`);
  const file = join(home, '.config', 'keyless', 'login.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.ok(JSON.parse(readFileSync(file, 'utf8')).refreshToken);
  // The sign-in works for later commands: the user's own token, judged by RBAC.
  const c = await runCli(['account', 'list'], { env });
  assert.equal(c.code, 1, c.stderr);
  assert.match(c.stderr, /^error: AuthorizationFailed: /);
});

test('keyless login --browser: a redirect with another state is refused and nothing is saved', async (t) => {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const home = mkdtempSync(join(tmpdir(), 'kl-cli-browser-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const env = { HOME: home, XDG_CONFIG_HOME: '', KEYLESS_DATA_DIR: '', DISPLAY: '', WAYLAND_DISPLAY: '' };
  const login = startLogin(['--server', d.publicUrl, '--tenant', tid, '--ca-file', join(d.dataDir, 'tls', 'ca.pem')], env);
  t.after(login.kill);
  const url = await login.url;
  const forged = await follow(`${url.searchParams.get('redirect_uri')}/?code=stolen&state=not-this-one`);
  assert.equal(forged.status, 400);
  const r = await login.done;
  assert.equal(r.code, 1);
  assert.match(r.stderr, /does not carry this sign-in's state/);
  assert.throws(() => statSync(join(home, '.config', 'keyless', 'login.json')), /ENOENT/);
});
