// A test OIDC issuer (a stand-in for a Kubernetes cluster or a CI system): an HTTPS
// server on 127.0.0.1 with its own self-signed certificate (IP SAN), serving its discovery
// document and JWKS, and minting RS256 JWTs with its key. keylessd trusts its certificate
// through --federation-ca-file.
import { execFileSync } from 'node:child_process';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function startIssuer(t) {
  const dir = mkdtempSync(join(tmpdir(), 'kl-issuer-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'tls.key'),
    '-out', join(dir, 'tls.pem'), '-days', '2', '-subj', '/CN=test-issuer', '-addext', 'subjectAltName=IP:127.0.0.1'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' };
  const hits = { discovery: 0, keys: 0 };
  let issuer = '';
  const server = https.createServer({ key: readFileSync(join(dir, 'tls.key')), cert: readFileSync(join(dir, 'tls.pem')) }, (req, res) => {
    const send = (o) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(o)); };
    if (req.url === '/.well-known/openid-configuration') {
      hits.discovery++;
      send({ issuer, jwks_uri: `${issuer}/keys`, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] });
    } else if (req.url === '/keys') {
      hits.keys++;
      send({ keys: [jwk] });
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  issuer = `https://127.0.0.1:${server.address().port}`;
  t.after(() => new Promise((r) => { server.close(r); rmSync(dir, { recursive: true, force: true }); }));
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return {
    issuer,
    caFile: join(dir, 'tls.pem'),
    hits,
    // A token about sub for aud, valid for lifetime seconds (Kubernetes: an hour).
    mint({ sub, aud = 'api://AzureADTokenExchange', lifetime = 3600, kid = 'k1', iss = issuer } = {}) {
      const now = Math.floor(Date.now() / 1000);
      const input = `${b64({ alg: 'RS256', kid, typ: 'JWT' })}.${b64({ iss, sub, aud: [aud], exp: now + lifetime, nbf: now, iat: now })}`;
      return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
    },
    writeToken(token) {
      const p = join(dir, `token-${Math.random().toString(36).slice(2)}`);
      writeFileSync(p, token);
      return p;
    },
  };
}
