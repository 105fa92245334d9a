// The operator's egress policy (security.md T17): a deployment's backend can never be a
// link-local, multicast or unspecified address, nor one of keylessd's own listeners; an
// operator's allowlist (--egress-allow / KEYLESS_EGRESS_ALLOW) narrows everything else.
// Literal addresses are refused when the deployment is written (400); names are judged on
// what they resolve to, before any connection is made (502). No test sends a packet to a
// refused address: every refusal happens before connect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import {
  AOAI_API,
  ERR,
  KEYLESSD,
  makeTempDir,
  removeTempDir,
  startDaemon,
  startStub,
} from '../lib/harness.mjs';

const refusedBody = (what) => ({
  error: {
    code: 'BackendAddressNotAllowed',
    message: `properties.backend.url is refused by this service's egress policy: it names ${what}.`,
  },
});

const upstream = (url) => ({ properties: { backend: { type: 'upstream', url } } });

// The access log lines of requests that reached keylessd's own listeners on path.
const requestsTo = (d, path) =>
  d.stderr.split('\n').filter((l) => l.includes('"event":"request"') && l.includes(`"path":"${path}"`));

async function account(d) {
  const a = await d.putAccount('demo');
  assert.equal(a.status, 201, a.text);
  const k = await d.listKeys('demo');
  assert.equal(k.status, 200, k.text);
  return k.json.key1;
}

test('literal backends in the always-refused classes are refused when written', async (t) => {
  const d = await startDaemon(t);
  await account(d);
  const cases = [
    ['http://169.254.169.254/v1', 'a link-local address'],
    ['http://169.254.0.1:8000/v1', 'a link-local address'],
    ['http://[::ffff:169.254.169.254]/v1', 'a link-local address'],
    ['http://[fe80::1]:8000/v1', 'a link-local address'],
    ['https://224.0.0.1/v1', 'a multicast address'],
    ['http://[ff02::1]:8000/v1', 'a multicast address'],
    ['http://0.0.0.0:8000/v1', 'an unspecified address'],
    ['http://[::]:8000/v1', 'an unspecified address'],
    ['http://255.255.255.255/v1', 'a broadcast address'],
  ];
  for (const [url, what] of cases) {
    const r = await d.putDeployment('demo', 'mm', upstream(url));
    assert.equal(r.status, 400, `${url}: ${r.text}`);
    assert.deepEqual(r.json, refusedBody(what), url);
  }
  // Nothing was stored.
  const g = await d.admin('GET', '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.CognitiveServices/accounts/demo/deployments?api-version=2024-10-01');
  assert.equal(g.status, 200, g.text);
  assert.deepEqual(g.json, { value: [] });
});

test("keylessd's own listeners are refused as backends", async (t) => {
  const d = await startDaemon(t, { args: ['--metrics-listen', '127.0.0.1:0'] });
  await account(d);
  const metricsPort = Number(/:(\d+)$/.exec(d.ready.metrics)[1]);
  for (const port of [d.publicPort, d.imdsPort, metricsPort]) {
    for (const host of ['127.0.0.1', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]']) {
      const url = `http://${host}:${port}/v1`;
      const r = await d.putDeployment('demo', 'mm', upstream(url));
      assert.equal(r.status, 400, `${url}: ${r.text}`);
      assert.deepEqual(r.json, refusedBody("one of this service's own listeners"), url);
    }
  }
  // The same address on another port is an ordinary backend.
  const ok = await d.putDeployment('demo', 'mm', upstream('http://127.0.0.1:1/v1'));
  assert.equal(ok.status, 201, ok.text);
});

test('a host name that resolves to an own listener is refused before connecting (502)', async (t) => {
  const d = await startDaemon(t);
  const key = await account(d);
  // A name cannot be judged before it is resolved: the write is accepted.
  const w = await d.putDeployment('demo', 'loop', upstream(`http://localhost:${d.publicPort}/v1`));
  assert.equal(w.status, 201, w.text);
  const logged = d.waitForLog((j) => j.event === 'upstream_refused');
  const r = await d.chat('demo', 'loop', key);
  assert.equal(r.status, 502, r.text);
  assert.deepEqual(r.json, ERR.egressRefused);
  const line = await logged;
  assert.equal(line.reason, "one of this service's own listeners");
  assert.equal(line.address, '127.0.0.1');
  assert.equal(line.upstream, `localhost:${d.publicPort}`);
  // No connection was made: the public listener never saw the forwarded request.
  assert.deepEqual(requestsTo(d, '/v1/chat/completions'), []);
});

test('allowlist mode: only listed CIDRs are reachable, by literal or by name', async (t) => {
  // The allowed model server lives on 127.0.0.2; another one on 127.0.0.1 must never be
  // reached, neither by its literal address nor through "localhost".
  const allowed = await startStub(t, { host: '127.0.0.2' });
  const outside = await startStub(t);
  const d = await startDaemon(t, { args: ['--egress-allow', '127.0.0.2/32'] });
  assert.equal(d.ready.egress, 'allowlist');
  const key = await account(d);

  const good = await d.putDeployment('demo', 'good', upstream(`${allowed.url}/v1`));
  assert.equal(good.status, 201, good.text);
  const ok = await d.chat('demo', 'good', key, 'through the allowlist');
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.choices[0].message.content, 'stub:good:through the allowlist');

  const literal = await d.putDeployment('demo', 'lit', upstream(`http://127.0.0.1:${outside.port}/v1`));
  assert.equal(literal.status, 400, literal.text);
  assert.deepEqual(literal.json, refusedBody('an address outside the egress allowlist'));

  const byName = await d.putDeployment('demo', 'name', upstream(`http://localhost:${outside.port}/v1`));
  assert.equal(byName.status, 201, byName.text);
  const logged = d.waitForLog((j) => j.event === 'upstream_refused');
  const r = await d.chat('demo', 'name', key);
  assert.equal(r.status, 502, r.text);
  assert.deepEqual(r.json, ERR.egressRefused);
  assert.equal((await logged).reason, 'an address outside the egress allowlist');
  // The outside stub never saw a request (its only one is this stats call).
  assert.equal((await outside.stats()).requests, 1);
});

test('allowlist mode: a listed host name may be used; set through the environment', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t, { env: { KEYLESS_EGRESS_ALLOW: 'LocalHost, 10.0.0.0/8' } });
  assert.equal(d.ready.egress, 'allowlist');
  const key = await account(d);
  const w = await d.putDeployment('demo', 'named', upstream(`http://localhost:${stub.port}/v1`));
  assert.equal(w.status, 201, w.text);
  const r = await d.chat('demo', 'named', key, 'by name');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'stub:named:by name');
  // The name is allowed, not the address it resolves to.
  const lit = await d.putDeployment('demo', 'lit', upstream(`${stub.url}/v1`));
  assert.equal(lit.status, 400, lit.text);
  assert.deepEqual(lit.json, refusedBody('an address outside the egress allowlist'));
});

test('a stored backend the policy now refuses is refused at connect time', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const key = await account(d);
  const w = await d.putDeployment('demo', 'up', upstream(`${stub.url}/v1`));
  assert.equal(w.status, 201, w.text);
  const before = await d.chat('demo', 'up', key, 'before');
  assert.equal(before.status, 200, before.text);
  const seen = (await stub.stats()).requests;

  // The operator narrows the policy; the deployment stays as it was stored.
  d.extraArgs = ['--egress-allow', '192.0.2.0/24'];
  await d.restart();
  const logged = d.waitForLog((j) => j.event === 'upstream_refused');
  const r = await d.chat('demo', 'up', key, 'after');
  assert.equal(r.status, 502, r.text);
  assert.deepEqual(r.json, ERR.egressRefused);
  const line = await logged;
  assert.equal(line.reason, 'an address outside the egress allowlist');
  assert.equal(line.address, '127.0.0.1');
  assert.equal((await stub.stats()).requests, seen + 1 /* the stats call itself */);
});

test('an invalid allowlist stops the daemon at start with the reason', async (t) => {
  const dir = makeTempDir('kl-egress-');
  t.after(() => removeTempDir(dir));
  const p = spawn(KEYLESSD, ['--data-dir', dir, '--listen', '127.0.0.1:0', '--imds-listen', '127.0.0.1:0',
    '--egress-allow', '10.0.0.0/8,10.1.2.3/8', '--check'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (c) => (stderr += c.toString('utf8')));
  const code = await new Promise((resolveP) => p.on('close', (c) => resolveP(c)));
  assert.equal(code, 2, stderr);
  const line = JSON.parse(stderr.trim().split('\n').at(-1));
  assert.equal(line.event, 'config');
  assert.equal(line.reason, 'egress allowlist entry "10.1.2.3/8" has bits set past its prefix length');
});
