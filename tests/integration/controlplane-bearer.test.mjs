// The control plane on the public TLS listener, served to bearer tokens: ARM's paths to
// tokens for either ARM audience, Graph's to tokens for https://graph.microsoft.com,
// each call authorised by RBAC as the token's principal, and every refusal in the
// API's own shape with its WWW-Authenticate challenge. Tokens with bad claims are signed
// by a key the test holds (put into the store with kl-put-signing-key, as the hostile
// gateway tests do), so each claim check is reached past the signature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { ARM_API, KEYLESSD, accountPath, runCli, startDaemon } from '../lib/harness.mjs';
import { ROLE, assign, authzFailed, createApp, rootPrincipal, setSpEnabled, tenantId } from '../lib/authz.mjs';

const TOOL = process.env.KL_PUT_SIGNING_KEY || join(dirname(KEYLESSD), 'kl-put-signing-key');
const ARM = 'https://management.azure.com';
const GRAPH = 'https://graph.microsoft.com';
const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

async function addSecret(d, app) {
  const r = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: {} });
  assert.equal(r.status, 200, r.text);
  return r.json.secretText;
}

async function token(d, tid, app, secret, scope) {
  const r = await d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'client_credentials', client_id: app.appId, client_secret: secret, scope }),
  });
  assert.equal(r.status, 200, `${scope}: ${r.text}`);
  return r.json.access_token;
}

const bearer = (tok) => ({ authorization: `Bearer ${tok}` });
const armChallenge = (d, tid, desc) =>
  `Bearer authorization_uri="${d.publicUrl}/${tid}", error="invalid_token", error_description="${desc}"`;

function assertArm401(r, d, tid, code, message, what, desc = message) {
  assert.equal(r.status, 401, `${what}: ${r.status} ${r.text}`);
  assert.deepEqual(r.json, { error: { code, message } }, what);
  assert.equal(r.headers['www-authenticate'], armChallenge(d, tid, desc), what);
}

async function setup(t, opts) {
  const d = await startDaemon(t, opts);
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'arm-caller');
  const secret = await addSecret(d, app);
  return { d, tid, app, secret };
}

test('an ARM token acts as its principal: 403 without a role, the call with one, no restart', async (t) => {
  const { d, tid, app, secret } = await setup(t);
  const acct = accountPath('demo');
  const tok = await token(d, tid, app, secret, `${ARM}/.default`);
  const get = () => d.request('GET', `${acct}?${ARM_API}`, { headers: bearer(tok) });

  let r = await get();
  assert.equal(r.status, 403, r.text);
  const denied = authzFailed(app.servicePrincipalId, 'Microsoft.CognitiveServices/accounts/read', acct);
  denied.error.message = denied.error.message.replace(`The client '${app.servicePrincipalId}'`, `The client '${app.appId}'`);
  assert.deepEqual(r.json, denied, 'the 403 names the client id and the object id');
  r = await d.request('POST', `${acct}/listKeys?${ARM_API}`, { headers: bearer(tok) });
  assert.equal(r.status, 403, `listKeys without a role: ${r.text}`);

  await assign(d, acct, app.servicePrincipalId, ROLE.csContributor);
  r = await get();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.name, 'demo');

  // The admin's name in x-keyless-principal means nothing off the admin socket.
  const { oid: admin } = await rootPrincipal(d);
  r = await d.request('PUT', `${accountPath('other')}?${ARM_API}`, {
    headers: { ...bearer(tok), 'x-keyless-principal': admin },
    body: { location: 'local', kind: 'OpenAI', sku: { name: 'S0' }, properties: {} },
  });
  assert.equal(r.status, 403, `a write outside the account's scope: ${r.text}`);

  // A token for ARM's older audience is just as good.
  const old = await token(d, tid, app, secret, 'https://management.core.windows.net//.default');
  r = await d.request('POST', `${acct}/listKeys?${ARM_API}`, { headers: bearer(old) });
  assert.equal(r.status, 200, r.text);
  assert.equal(typeof r.json.key1, 'string');

  // Disabling the principal ends its tokens on the next request.
  await setSpEnabled(d, app.servicePrincipalId, false);
  assertArm401(await get(), d, tid, 'InvalidAuthenticationToken', 'The access token is invalid.', 'disabled principal');
});

test('missing, malformed and misdirected tokens get ARM\'s 401 with its challenge; Graph answers its own', async (t) => {
  const { d, tid, app, secret } = await setup(t);
  await assign(d, '/', app.servicePrincipalId, ROLE.owner);
  const acct = `${accountPath('demo')}?${ARM_API}`;

  assertArm401(await d.request('GET', acct), d, tid, 'AuthenticationFailed',
    "Authentication failed. The 'Authorization' header is missing.", 'no header',
    "The authentication failed because of missing 'Authorization' header.");
  let r = await d.request('GET', acct, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'AuthenticationFailed');
  assert.match(r.headers['www-authenticate'], /^Bearer authorization_uri="/);
  assertArm401(await d.request('GET', acct, { headers: bearer('not.a.token') }), d, tid,
    'InvalidAuthenticationToken', 'The access token is invalid.', 'garbage');

  const data = await token(d, tid, app, secret, 'https://cognitiveservices.azure.com/.default');
  const msg = "The access token has been obtained for wrong audience or resource 'https://cognitiveservices.azure.com'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.";
  assertArm401(await d.request('GET', acct, { headers: bearer(data) }), d, tid,
    'InvalidAuthenticationTokenAudience', msg, 'a data-plane token');

  // Graph: its own audience, its own refusals.
  const graph = await token(d, tid, app, secret, `${GRAPH}/.default`);
  const arm = await token(d, tid, app, secret, `${ARM}/.default`);
  r = await d.request('GET', '/v1.0/applications', { headers: bearer(graph) });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.value.some((a) => a.appId === app.appId));
  r = await d.request('GET', '/v1.0/applications', { headers: bearer(arm) });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'InvalidAuthenticationToken');
  assert.equal(r.json.error.message, 'Access token validation failure. Invalid audience.');
  assert.equal(r.json.error.innerError['request-id'], r.headers['x-ms-request-id']);
  // A Graph token is not an ARM token.
  r = await d.request('GET', acct, { headers: bearer(graph) });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'InvalidAuthenticationTokenAudience');

  // A refused token's body is never read: a 4 MiB body behind a bad token is answered
  // from the head alone.
  r = await d.request('PUT', acct, { headers: bearer('x.y.z'), body: 'x'.repeat(4 * 1024 * 1024) });
  assert.equal(r.status, 401, r.text.slice(0, 200));
  assert.equal(r.json.error.code, 'InvalidAuthenticationToken');
});

test('correctly signed control-plane tokens with bad claims are refused with the matching ARM code', async (t) => {
  const kek = randomBytes(32).toString('base64');
  const d = await startDaemon(t, { env: { KEYLESS_KEK: kek } });
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'arm-hostile');
  await assign(d, '/', app.servicePrincipalId, ROLE.reader);

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pemPath = join(d.dataDir, '..', 'arm-signing-key.pem');
  writeFileSync(pemPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await d.stop();
  const put = await runCli([`sqlite:${join(d.dataDir, 'keyless.db')}`, pemPath], { binary: TOOL, env: { KEYLESS_KEK: kek } });
  assert.equal(put.code, 0, put.stderr);
  const kid = put.stdout.trim();
  await d.start();

  const now = Math.floor(Date.now() / 1000);
  const iss = `https://sts.windows.net/${tid}/`;
  const good = {
    aud: `${ARM}/`, iss, iat: now, nbf: now, exp: now + 3600, appid: app.appId, appidacr: '1',
    idp: iss, idtyp: 'app', oid: app.servicePrincipalId, sub: app.servicePrincipalId, tid, uti: 'x', ver: '1.0',
  };
  const header = { typ: 'JWT', alg: 'RS256', kid, x5t: kid };
  const rs256 = (p) => {
    const input = `${b64u(header)}.${b64u(p)}`;
    return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  };
  const acct = `${accountPath('demo')}?${ARM_API}`;
  const get = (p) => d.request('GET', acct, { headers: bearer(rs256(p)) });

  const ok = await get(good);
  assert.equal(ok.status, 200, `the control token must pass: ${ok.text}`);

  const exp = now - 600;
  const r = await get({ ...good, iat: now - 7200, nbf: now - 7200, exp });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'ExpiredAuthenticationToken');
  const when = (s) => { const t = new Date(s * 1000); const h = t.getUTCHours() % 12 || 12; return `${t.getUTCMonth() + 1}/${t.getUTCDate()}/${t.getUTCFullYear()} ${h}:${String(t.getUTCMinutes()).padStart(2, '0')}:${String(t.getUTCSeconds()).padStart(2, '0')} ${t.getUTCHours() < 12 ? 'AM' : 'PM'}`; };
  assert.match(r.json.error.message, new RegExp(`^The access token expiry UTC time '${when(exp).replace(/\//g, '\\/')}' is earlier than current UTC time '[0-9/: APM]+'\\.$`));
  assert.equal(r.headers['www-authenticate'], armChallenge(d, tid, r.json.error.message));

  const other = '0b0b0b0b-0000-4000-8000-000000000000';
  const wrong = await get({ ...good, iss: `https://sts.windows.net/${other}/`, tid: other });
  assertArm401(wrong, d, tid, 'InvalidAuthenticationTokenTenant',
    `The access token is from the wrong issuer 'https://sts.windows.net/${other}/'. It must match the tenant '${iss}' associated with this subscription. Please use the authority (URL) '${d.publicUrl}/${tid}' to get the token.`,
    'another tenant');

  const quoted = await get({ ...good, aud: 'https://evil"example' });
  assert.equal(quoted.status, 401);
  assert.equal(quoted.json.error.code, 'InvalidAuthenticationTokenAudience');
  assert.ok(!quoted.headers['www-authenticate'].includes('evil'), 'a claim with a quote is never echoed into the header');

  for (const [what, p] of Object.entries({
    'not yet valid': { ...good, nbf: now + 900 },
    'unknown principal': { ...good, oid: '0c0c0c0c-0000-4000-8000-000000000000' },
    'no oid': (({ oid, ...rest }) => rest)(good),
  })) {
    assertArm401(await get(p), d, tid, 'InvalidAuthenticationToken', 'The access token is invalid.', what);
  }
});
