// An https model server: keylessd verifies its certificate against the system store,
// which it reads on the first https handshake rather than at start-up (SSL_CERT_FILE
// points it at a throwaway CA here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';

import { AOAI_API, ERR, makeTempDir, onCleanup, removeTempDir, startDaemon } from '../lib/harness.mjs';

// A CA and a certificate it signs for 127.0.0.1, made with the openssl tool.
function makePki(t) {
  const dir = makeTempDir('kl-pki-');
  onCleanup(t, () => removeTempDir(dir));
  const r = spawnSync('sh', ['-c', [
    'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=test model CA" -keyout ca.key -out ca.pem',
    'openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.csr',
    'openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -set_serial 9 -days 1 -copy_extensions copy -out srv.pem',
  ].join(' && ') + ' 2>&1'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout);
  return { ca: join(dir, 'ca.pem'), key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) };
}

// An https model server answering every chat completion with one fixed message.
async function startModelServer(t, pki) {
  const server = https.createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ id: 'chatcmpl-tls', object: 'chat.completion', model: 'M', choices: [{ index: 0, message: { role: 'assistant', content: 'over tls' }, finish_reason: 'stop' }] });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise((resolveP) => server.listen(0, '127.0.0.1', resolveP));
  onCleanup(t, () => new Promise((resolveP) => { server.closeAllConnections(); server.close(resolveP); }));
  return `https://127.0.0.1:${server.address().port}`;
}

async function deploy(d, url) {
  const a = await d.cli(['account', 'create', 'demo']);
  assert.equal(a.code, 0, a.stderr);
  const dep = await d.cli(['deployment', 'create', 'demo', 'up', '--backend', `${url}/v1`, '--upstream-model', 'M']);
  assert.equal(dep.code, 0, dep.stderr);
  const k = await d.cli(['-o', 'json', 'keys', 'list', 'demo']);
  return k.json.key1;
}

const chat = (d, key) => d.request('POST', `/accounts/demo/openai/deployments/up/chat/completions?${AOAI_API}`, {
  headers: { 'api-key': key },
  body: { messages: [{ role: 'user', content: 'hi' }] },
});

test('an https model server whose CA is in the system store is reached', async (t) => {
  const pki = makePki(t);
  const url = await startModelServer(t, pki);
  const d = await startDaemon(t, { env: { SSL_CERT_FILE: pki.ca } });
  const key = await deploy(d, url);
  const r = await chat(d, key);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'over tls');
});

test('an https model server with an untrusted certificate gives 502', async (t) => {
  const pki = makePki(t);
  const url = await startModelServer(t, pki);
  const d = await startDaemon(t);
  const key = await deploy(d, url);
  const r = await chat(d, key);
  assert.equal(r.status, 502, r.text);
  assert.deepEqual(r.json, ERR.badGateway);
});
