// Client assertions as the official clients build them (clients.md §3): PS256 with
// x5t#S256 (ClientCertificateCredential / msal-node with a SHA-256 thumbprint), or RS256
// with x5t; optional x5c; claims aud, iss = sub = client id, exp = now + 600, nbf = iat =
// now, jti a fresh GUID. Every part can be overridden to build hostile ones.
import { createPrivateKey, createSign, randomUUID, sign as cryptoSign, constants } from 'node:crypto';

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

export function makeAssertion({ cert, clientId, aud, alg = 'PS256', x5c = false, now = Math.floor(Date.now() / 1000), lifetime = 600, jti = randomUUID(), header = {}, claims = {}, signWith } = {}) {
  const h = { alg, typ: 'JWT' };
  if (alg === 'PS256') h['x5t#S256'] = cert.sha256B64url;
  else h.x5t = cert.sha1B64url;
  if (x5c) h.x5c = [cert.derB64];
  Object.assign(h, header);
  for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
  const c = { aud, iss: clientId, sub: clientId, exp: now + lifetime, nbf: now, iat: now, jti, ...claims };
  for (const [k, v] of Object.entries(c)) if (v === undefined) delete c[k];
  const input = `${b64url(h)}.${b64url(c)}`;
  const key = createPrivateKey(signWith || cert.keyPem);
  const sig = alg === 'PS256'
    ? cryptoSign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    : createSign('RSA-SHA256').update(input).sign(key);
  return `${input}.${sig.toString('base64url')}`;
}
