// Interop with MSAL for Python (Debian 12's python3-msal, installed by scripts/bootstrap
// --test) through keyless's ADFS-style authority: ConfidentialClientApplication with
// authority https://host:port/adfs signs in with a client secret while every request to
// any host but keyless goes to a proxy that takes nothing (a listener here that counts
// and drops connections), and the token it gets calls chat completions. A tenant
// authority, by contrast, makes MSAL call Microsoft's instance discovery first: that is
// why the ADFS-style authority exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { accountPath, onCleanup, startDaemon } from '../lib/harness.mjs';
import { runPython } from '../lib/interop.mjs';
import { ROLE, assign, createApp, tenantId } from '../lib/authz.mjs';

const CLIENT = fileURLToPath(new URL('./msal-adfs-client.py', import.meta.url));
const DATA = 'https://cognitiveservices.azure.com';

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

// A proxy that proxies nothing: it records the first bytes each connection sends (a
// CONNECT line names the host the client wanted) and closes it.
async function deadProxy(t) {
  const seen = [];
  const server = net.createServer((sock) => {
    sock.once('data', (b) => {
      seen.push(b.toString('latin1').split('\r\n')[0]);
      sock.destroy();
    });
    sock.on('error', () => {});
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  onCleanup(t, () => new Promise((res) => server.close(res)));
  return { url: `http://127.0.0.1:${server.address().port}`, seen };
}

async function setup(t) {
  const d = await startDaemon(t);
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'msal-python');
  const pw = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: { displayName: 'msal' } });
  assert.equal(pw.status, 200, pw.text);
  const proxy = await deadProxy(t);
  const env = (authority) => {
    const p = proxy.url;
    return {
      KL_AUTHORITY: authority,
      KL_CA: join(d.dataDir, 'tls', 'ca.pem'),
      KL_CLIENT_ID: app.appId,
      KL_CLIENT_SECRET: pw.json.secretText,
      KL_SCOPE: `${DATA}/.default`,
      HTTPS_PROXY: p, https_proxy: p, HTTP_PROXY: p, http_proxy: p, ALL_PROXY: p, all_proxy: p,
      NO_PROXY: d.publicHost, no_proxy: d.publicHost,
      REQUESTS_CA_BUNDLE: '', CURL_CA_BUNDLE: '',
    };
  };
  return { d, tid, app, proxy, env, base: `https://${d.publicHost}:${d.publicPort}` };
}

// The access log's "METHOD path" of the requests logged in stderr from offset on.
function requestsSince(d, offset) {
  return d.stderr.slice(offset).split('\n').flatMap((l) => {
    try {
      const j = JSON.parse(l);
      return j.event === 'request' ? [`${j.method} ${j.path}`] : [];
    } catch {
      return [];
    }
  });
}

test('MSAL Python with the /adfs authority: a token with no request to any other host, and that token calls chat completions', async (t) => {
  const { d, tid, app, proxy, env, base } = await setup(t);
  const mark = d.stderr.length;
  const tokenLogged = d.waitForLog((j) => j.event === 'request' && j.path === '/adfs/oauth2/token', 30000);
  const r = await runPython(CLIENT, env(`${base}/adfs`));
  await tokenLogged;
  assert.equal(r.exception, undefined, JSON.stringify(r));
  assert.equal(r.msal_version, '1.21.0', 'the pinned Debian 12 package');
  assert.equal(r.token_type, 'Bearer', JSON.stringify(r));
  assert.equal(r.token_endpoint, `${base}/adfs/oauth2/token`);
  assert.deepEqual(proxy.seen, [], 'no request went anywhere but keyless');
  assert.deepEqual(requestsSince(d, mark), ['GET /adfs/.well-known/openid-configuration', 'POST /adfs/oauth2/token']);
  // The default tenant's v1 token, as its own endpoints sign it.
  const payload = b64json(r.access_token.split('.')[1]);
  assert.equal(payload.iss, `https://sts.windows.net/${tid}/`);
  assert.equal(payload.aud, DATA);
  assert.equal(payload.appid, app.appId);
  const bearer = { authorization: `Bearer ${r.access_token}` };
  let c = await d.chat('demo', 'chat', null, 'hello from msal python', { headers: bearer });
  assert.equal(c.status, 401, c.text);
  assert.equal(c.json.error.code, 'PermissionDenied');
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  c = await d.chat('demo', 'chat', null, 'hello from msal python', { headers: bearer });
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.choices[0].message.content, 'hello from msal python');
});

test('MSAL Python with a tenant authority asks Microsoft\'s instance discovery first', async (t) => {
  const { tid, proxy, env, base } = await setup(t);
  const r = await runPython(CLIENT, env(`${base}/${tid}`));
  assert.match(r.exception ?? '', /ProxyError|ConnectionError/, JSON.stringify(r));
  assert.ok(proxy.seen.length >= 1, 'the proxy saw the attempt');
  for (const l of proxy.seen) assert.match(l, /^CONNECT login\.microsoftonline\.com:443 HTTP\/1\.[01]$/);
});
