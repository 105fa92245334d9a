// Test certificates made with the openssl command line (Node's crypto cannot write
// X.509): self-signed, with the key, the PEM and DER forms and both thumbprints.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// kind: 'rsa:2048' (default), 'rsa:1024', 'ec'.
export function makeCert({ cn = 'keyless-test', kind = 'rsa:2048', days = 30 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kl-cert-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    const keyArgs = kind === 'ec'
      ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
      : ['-newkey', kind];
    const dates = ['-days', String(days)];
    execFileSync('openssl', ['req', '-x509', ...keyArgs, '-nodes', '-keyout', keyPath, '-out', certPath,
      ...dates, '-subj', `/CN=${cn}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    const keyPem = readFileSync(keyPath, 'utf8');
    const certPem = readFileSync(certPath, 'utf8');
    const b64 = certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const der = Buffer.from(b64, 'base64');
    return {
      keyPem,
      certPem,
      der,
      derB64: b64,
      sha1Hex: createHash('sha1').update(der).digest('hex').toUpperCase(),
      sha256B64url: createHash('sha256').update(der).digest('base64url'),
      sha1B64url: createHash('sha1').update(der).digest('base64url'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The certificate's notBefore / notAfter as ISO strings (seconds precision).
export function certDates(cert) {
  const out = execFileSync('openssl', ['x509', '-noout', '-startdate', '-enddate'], { input: cert.certPem }).toString();
  const get = (k) => new Date(out.match(new RegExp(`${k}=(.*)`))[1]).toISOString().replace(/\.\d+Z$/, '');
  return { start: get('notBefore'), end: get('notAfter') };
}
