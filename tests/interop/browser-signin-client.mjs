// A desktop app's interactive sign-in, as @azure/msal-node's samples do it, with a real
// browser: PublicClientApplication.getAuthCodeUrl with PKCE from its CryptoProvider, a
// loopback HTTP server as the redirect URI, headless Chromium (Debian's, driven by
// playwright-core) filling keylessd's sign-in page as a person would, then
// acquireTokenByCode and an AzureOpenAI call with the user's token. Only the endpoints
// differ from Azure. Settings: KL_BASE (https://host:port), KL_TENANT, KL_CLIENT_ID,
// KL_UPN, KL_PASSWORD, KL_ENDPOINT (the account's OpenAI endpoint), KL_SCREENSHOT (a
// path for the sign-in page's picture), KL_RESPONSE_MODE (form_post, or msal's default).
// Prints one JSON line.
import assert from 'node:assert/strict';
import http from 'node:http';

import { CryptoProvider, PublicClientApplication } from '@azure/msal-node';
import { AzureOpenAI } from 'openai';
import { chromium } from 'playwright-core';

const env = process.env;
const SCOPES = ['https://cognitiveservices.azure.com/.default'];
const CHROMIUM = env.KL_CHROMIUM || '/usr/bin/chromium';

// The redirect URI: a one-shot loopback server that hands over ?code=&state=.
function loopback() {
  let deliver;
  const got = new Promise((r) => (deliver = r));
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    if (u.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    // response_mode=query: in the URL; form_post: a form body.
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in. You can close this window.');
      deliver({ method: req.method, ...Object.fromEntries(req.method === 'POST' ? new URLSearchParams(body) : u.searchParams) });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, got, uri: `http://127.0.0.1:${server.address().port}/callback` })));
}

const { server, got, uri: redirectUri } = await loopback();
const pca = new PublicClientApplication({
  auth: { clientId: env.KL_CLIENT_ID, authority: `${env.KL_BASE}/${env.KL_TENANT}`, knownAuthorities: [new URL(env.KL_BASE).host] },
});
const crypto = new CryptoProvider();
const { verifier, challenge } = await crypto.generatePkceCodes();
const state = crypto.createNewGuid();
const responseMode = env.KL_RESPONSE_MODE || undefined; // 'form_post', or msal's default (query)
const authUrl = await pca.getAuthCodeUrl({ scopes: SCOPES, redirectUri, codeChallenge: challenge, codeChallengeMethod: 'S256', state, responseMode });

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
let cb;
try {
  // keylessd's certificate comes from its own CA, which the browser does not know.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 760 } });
  const page = await context.newPage();
  const violations = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await page.goto(authUrl);
  await page.waitForSelector('#username');
  if (env.KL_SCREENSHOT) await page.screenshot({ path: env.KL_SCREENSHOT, fullPage: true });
  await page.fill('#username', env.KL_UPN);
  await page.fill('#password', env.KL_PASSWORD);
  await Promise.all([got, page.click('button[type=submit]')]);
  cb = await got;
  assert.deepEqual(violations, [], 'the page broke none of its own policy');
} finally {
  await browser.close();
  server.close();
}
assert.equal(cb.state, state, 'state came back');
assert.ok(cb.code, `a code: ${JSON.stringify(cb)}`);

const result = await pca.acquireTokenByCode({ code: cb.code, scopes: SCOPES, redirectUri, codeVerifier: verifier });
assert.ok(result.accessToken);
const ai = new AzureOpenAI({ endpoint: env.KL_ENDPOINT, apiVersion: '2024-10-21', deployment: 'chat', azureADTokenProvider: async () => result.accessToken, maxRetries: 0 });
const chat = await ai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello from a signed-in user' }] });
console.log(JSON.stringify({
  account: result.account?.username ?? null,
  oid: result.uniqueId || JSON.parse(Buffer.from(result.accessToken.split('.')[1], 'base64url')).oid,
  content: chat.choices[0].message.content,
  scopes: result.scopes,
  method: cb.method,
  authParams: [...new URL(authUrl).searchParams.keys()],
}));
