// A real browser signs in: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) completes keylessd's authorization-code sign-in for
// @azure/msal-node's PublicClientApplication (PKCE from its CryptoProvider, a loopback
// redirect URI the client serves), and the user's token calls AzureOpenAI through the
// role the user holds. A screenshot of the sign-in page is kept as a test artifact
// (tests/artifacts/, or $KL_ARTIFACTS_DIR).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { REPO_ROOT, accountPath, startDaemon } from '../lib/harness.mjs';
import { ROLE, assign, createApp, tenantId } from '../lib/authz.mjs';
import { runClient } from '../lib/interop.mjs';
import { PASSWORD, createUser, registerClient } from '../lib/signin.mjs';

const CLIENT = fileURLToPath(new URL('./browser-signin-client.mjs', import.meta.url));
const IDENTITY_CLIENT = fileURLToPath(new URL('./identity-browser-client.mjs', import.meta.url));
const DRIVER = fileURLToPath(new URL('./browser-driver.mjs', import.meta.url));
const CHROMIUM = process.env.KL_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.KL_ARTIFACTS_DIR || join(REPO_ROOT, 'tests', 'artifacts');

test('Chromium signs a user in for msal-node (auth code + PKCE); the token calls AzureOpenAI through the user\'s role', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, async (t) => {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const { endpoint } = await d.setupAccount('demo');
  const app = await createApp(d, 'desktop-app');
  // Registered on one port; a public client's loopback URI matches on any port (RFC 8252).
  await registerClient(d, app, { publicClient: true, redirectUris: ['http://127.0.0.1:8400/callback'] });
  const user = await createUser(d, 'ann@example.com');
  await assign(d, accountPath('demo'), user.id, ROLE.openaiUser, { principalType: 'User' });
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = join(ARTIFACTS, 'signin-page.png');
  const out = await runClient(d, CLIENT, {
    KL_BASE: d.publicUrl, KL_TENANT: tid, KL_CLIENT_ID: app.appId, KL_UPN: 'ann@example.com',
    KL_PASSWORD: PASSWORD, KL_ENDPOINT: endpoint, KL_SCREENSHOT: shot, KL_CHROMIUM: CHROMIUM,
  });
  assert.equal(out.oid, user.id, 'the token is the user\'s');
  assert.equal(out.content, 'hello from a signed-in user', 'the model answered');
  assert.equal(out.method, 'GET', 'the code came in the redirect\'s query');
  assert.ok(statSync(shot).size > 1000, 'a screenshot of the sign-in page');
  // response_mode=form_post: the page posts the code to the client by its one script,
  // which its policy allows by hash (a policy violation would fail the client).
  const posted = await runClient(d, CLIENT, {
    KL_BASE: d.publicUrl, KL_TENANT: tid, KL_CLIENT_ID: app.appId, KL_UPN: 'ann@example.com',
    KL_PASSWORD: PASSWORD, KL_ENDPOINT: endpoint, KL_CHROMIUM: CHROMIUM, KL_RESPONSE_MODE: 'form_post',
  });
  assert.equal(posted.method, 'POST', 'the code was posted');
  assert.equal(posted.oid, user.id);
  t.diagnostic(`sign-in page screenshot: ${shot}`);
  t.diagnostic(`msal-node's authorize parameters: ${out.authParams.join(' ')}; scopes granted: ${out.scopes.join(' ')}`);
});

test('InteractiveBrowserCredential (@azure/identity) opens the browser on the sign-in page, with an app\'s client id and with its default one; its token calls AzureOpenAI', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, async (t) => {
  const d = await startDaemon(t);
  const tid = await tenantId(d);
  const { endpoint } = await d.setupAccount('demo');
  const app = await createApp(d, 'dev-script');
  // @azure/identity's default redirect URI for Node is http://localhost on a port MSAL picks.
  await registerClient(d, app, { publicClient: true, redirectUris: ['http://localhost'] });
  const user = await createUser(d, 'ann@example.com');
  await assign(d, accountPath('demo'), user.id, ROLE.openaiUser, { principalType: 'User' });
  // The system browser the credential opens (through xdg-open and $BROWSER) is the driver.
  const dir = mkdtempSync(join(tmpdir(), 'kl-browser-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const browserCmd = join(dir, 'browser');
  writeFileSync(browserCmd, `#!/bin/sh\nexec "${process.execPath}" "${DRIVER}" "$@"\n`);
  chmodSync(browserCmd, 0o755);
  const driverLog = join(dir, 'driver.log');
  const run = async (clientId) => {
    try {
      return await runClient(d, IDENTITY_CLIENT, {
        KL_BASE: d.publicUrl, KL_TENANT: tid, KL_CLIENT_ID: clientId, KL_ENDPOINT: endpoint,
        BROWSER: browserCmd, DISPLAY: '', XDG_CURRENT_DESKTOP: '', KL_UPN: 'ann@example.com', KL_PASSWORD: PASSWORD,
        KL_CHROMIUM: CHROMIUM, KL_DRIVER_LOG: driverLog,
      });
    } catch (e) {
      throw new Error(`${e.message}\ndriver: ${existsSync(driverLog) ? readFileSync(driverLog, 'utf8') : '(no log)'}`);
    }
  };
  let out = await run(app.appId);
  assert.equal(out.oid, user.id, 'the token is the user\'s');
  assert.equal(out.appid, app.appId);
  assert.equal(out.content, 'hello from the interactive credential');
  // With no client id at all: the credential's default, the Azure CLI's public client,
  // which every tenant knows with loopback redirect URIs.
  out = await run('');
  assert.equal(out.appid, '04b07795-8ddb-461a-bbee-02f9e1bf7b46');
  assert.equal(out.oid, user.id);
  assert.equal(out.content, 'hello from the interactive credential');
});
