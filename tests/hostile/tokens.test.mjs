// Hostile bearer tokens at the gateway. A key the test holds is put into the store with
// the test tool kl-put-signing-key (published, never signing), so tokens can be
// correctly signed and still carry bad claims; a well-formed token signed by that key is
// accepted (the control), and every variant below must get the data plane's token 401
// exactly, never a 500, and leave the daemon serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { KEYLESSD, accountPath, runCli, startDaemon } from '../lib/harness.mjs';
import { ROLE, assign, createApp, tenantId } from '../lib/authz.mjs';

const TOOL = process.env.KL_PUT_SIGNING_KEY || join(dirname(KEYLESSD), 'kl-put-signing-key');
const DATA = 'https://cognitiveservices.azure.com';
const TOKEN_401 = { statusCode: 401, message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.' };
const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

test('correctly signed tokens with bad claims, and forged ones, are refused with the token 401', async (t) => {
  const kek = randomBytes(32).toString('base64');
  const d = await startDaemon(t, { env: { KEYLESS_KEK: kek } });
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'hostile-tokens');
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pemPath = join(d.dataDir, '..', 'test-signing-key.pem');
  writeFileSync(pemPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await d.stop();
  const put = await runCli([`sqlite:${join(d.dataDir, 'keyless.db')}`, pemPath], { binary: TOOL, env: { KEYLESS_KEK: kek } });
  assert.equal(put.code, 0, put.stderr);
  const kid = put.stdout.trim();
  await d.start();

  const now = Math.floor(Date.now() / 1000);
  const good = {
    aud: DATA, iss: `https://sts.windows.net/${tid}/`, iat: now, nbf: now, exp: now + 3600,
    appid: app.appId, appidacr: '1', idp: `https://sts.windows.net/${tid}/`, idtyp: 'app',
    oid: app.servicePrincipalId, sub: app.servicePrincipalId, tid, uti: 'x', ver: '1.0',
  };
  const header = { typ: 'JWT', alg: 'RS256', kid, x5t: kid };
  const rs256 = (h, p) => {
    const input = `${typeof h === 'string' ? h : b64u(h)}.${typeof p === 'string' ? p : b64u(p)}`;
    return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  };
  const chat = (tok) => d.chat('demo', 'chat', null, 'hi', { headers: { authorization: `Bearer ${tok}` } });

  const control = await chat(rs256(header, good));
  assert.equal(control.status, 200, `the control token must pass: ${control.text}`);

  const otherTenant = '0b0b0b0b-0000-4000-8000-000000000000';
  const pubDer = publicKey.export({ type: 'spki', format: 'pem' });
  const hsInput = `${b64u({ ...header, alg: 'HS256' })}.${b64u(good)}`;
  const cases = {
    'alg none': `${b64u({ ...header, alg: 'none' })}.${b64u(good)}.`,
    'alg none, signature kept': `${b64u({ ...header, alg: 'none' })}.${b64u(good)}.${rs256(header, good).split('.')[2]}`,
    'HS256 keyed with our public key': `${hsInput}.${createHmac('sha256', pubDer).update(hsInput).digest('base64url')}`,
    'unknown kid': rs256({ ...header, kid: 'nosuchkid' }, good),
    'kid with path characters': rs256({ ...header, kid: '../../etc/passwd' }, good),
    'bad signature': (() => { const p = rs256(header, good).split('.'); p[2] = `${p[2].slice(0, 10)}${p[2][10] === 'A' ? 'B' : 'A'}${p[2].slice(11)}`; return p.join('.'); })(),
    expired: rs256(header, { ...good, iat: now - 7200, nbf: now - 7200, exp: now - 600 }),
    'not yet valid': rs256(header, { ...good, nbf: now + 900, iat: now, exp: now + 3600 }),
    'wrong audience': rs256(header, { ...good, aud: 'https://management.azure.com' }),
    'wrong issuer': rs256(header, { ...good, iss: 'https://evil.example/' }),
    "another tenant's token": rs256(header, { ...good, iss: `https://sts.windows.net/${otherTenant}/`, tid: otherTenant }),
    'unknown principal': rs256(header, { ...good, oid: '0c0c0c0c-0000-4000-8000-000000000000' }),
    'exp as a string': rs256(header, { ...good, exp: String(now + 3600) }),
    'no oid': rs256(header, (({ oid, ...rest }) => rest)(good)),
    'lifetime above the limit': rs256(header, { ...good, exp: now + 30 * 3600 }),
    truncated: rs256(header, good).slice(0, -20),
    '10 KB of base64': 'A'.repeat(10240),
    'non-JSON payload': rs256(header, b64u('this is not json')),
    'duplicate claims': rs256(header, b64u(JSON.stringify(good).replace('{', `{"oid":"${app.servicePrincipalId}",`))),
    'crit header': rs256({ ...header, crit: ['exp'] }, good),
  };
  for (const [what, tok] of Object.entries(cases)) {
    const r = await chat(tok);
    assert.equal(r.status, 401, `${what}: ${r.status} ${r.text}`);
    assert.deepEqual(r.json, TOKEN_401, what);
  }
  // Still serving, and the control still passes.
  assert.equal((await chat(rs256(header, good))).status, 200);
  const h = await d.request('GET', '/healthz');
  assert.equal(h.status, 200);
});
