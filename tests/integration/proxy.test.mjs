// The upstream proxy: what keylessd forwards to a model server (model replaced, the
// client's key dropped, the deployment's credential sent), SSE streamed as it arrives,
// 502/504 when the model server is down or silent, and kept-alive upstream connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  AOAI_API,
  ERR,
  findSecrets,
  startDaemon,
  startStub,
  unusedPort,
} from '../lib/harness.mjs';

const CRED = 'sk-stub-credential-7f3a9c01';

async function cliOk(d, args, env) {
  const r = await d.cli(args, { env });
  assert.equal(r.code, 0, `keyless ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

// Account demo with deployment "up" -> stub model "M" with the credential (via the CLI),
// and "nocred" -> the same stub without a credential.
async function setup(d, stub) {
  await cliOk(d, ['-o', 'json', 'account', 'create', 'demo']);
  await cliOk(d, ['-o', 'json', 'deployment', 'create', 'demo', 'up', '--backend', `${stub.url}/v1`,
    '--upstream-model', 'M', '--credential-env', 'KL_TEST_UPSTREAM_CRED'], { KL_TEST_UPSTREAM_CRED: CRED });
  await cliOk(d, ['-o', 'json', 'deployment', 'create', 'demo', 'nocred', '--backend', `${stub.url}/v1`,
    '--upstream-model', 'plain-model']);
  const k = await cliOk(d, ['-o', 'json', 'keys', 'list', 'demo']);
  return k.json;
}

const chatPath = (dep) => `/accounts/demo/openai/deployments/${dep}/chat/completions?${AOAI_API}`;

test('non-streaming calls reach the model server with the model and credential replaced', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  const show = await d.cli(['-o', 'json', 'deployment', 'show', 'demo', 'up']);
  assert.ok(!show.stdout.includes(CRED), 'the CLI shows the credential');

  const r = await d.request('POST', chatPath('up'), {
    headers: { 'api-key': keys.key1, 'x-custom': 'kept?' },
    body: { model: 'client-model', messages: [{ role: 'user', content: 'hi there' }], temperature: 0.5 },
  });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  assert.equal(r.json.choices[0].message.content, 'stub:M:hi there');
  const last = await stub.last();
  assert.equal(last.method, 'POST');
  assert.equal(last.path, '/v1/chat/completions');
  const fwd = JSON.parse(last.body);
  assert.equal(fwd.model, 'M');
  assert.equal(fwd.temperature, 0.5);
  assert.deepEqual(fwd.messages, [{ role: 'user', content: 'hi there' }]);
  assert.equal(last.headers.authorization, `Bearer ${CRED}`);
  assert.equal(last.headers['api-key'], undefined, 'the client api-key header was forwarded');
  assert.deepEqual(findSecrets(JSON.stringify(last), [keys.key1, keys.key2]), [], 'a client key reached the model server');

  // On /openai/v1 the client's Bearer api key is replaced by the credential too.
  const v1 = await d.request('POST', '/accounts/demo/openai/v1/chat/completions', {
    headers: { authorization: `Bearer ${keys.key2}` },
    body: { model: 'up', messages: [{ role: 'user', content: 'v1 route' }] },
  });
  assert.equal(v1.status, 200, v1.text);
  assert.equal(v1.json.choices[0].message.content, 'stub:M:v1 route');
  const last2 = await stub.last();
  assert.equal(last2.headers.authorization, `Bearer ${CRED}`);
  assert.equal(JSON.parse(last2.body).model, 'M');
  assert.deepEqual(findSecrets(JSON.stringify(last2), [keys.key1, keys.key2]), []);

  // A deployment without a credential sends no Authorization at all.
  const nc = await d.request('POST', chatPath('nocred'), {
    headers: { 'api-key': keys.key1 },
    body: { messages: [{ role: 'user', content: 'no cred' }] },
  });
  assert.equal(nc.status, 200, nc.text);
  assert.equal(nc.json.choices[0].message.content, 'stub:plain-model:no cred');
  const last3 = await stub.last();
  assert.equal(last3.headers.authorization, undefined);
  assert.equal(last3.headers['api-key'], undefined);

  // Completions and embeddings go to their own upstream routes.
  const c = await d.request('POST', `/accounts/demo/openai/deployments/up/completions?${AOAI_API}`, {
    headers: { 'api-key': keys.key1 }, body: { prompt: 'complete me' },
  });
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.choices[0].text, 'stub:M:complete me');
  assert.equal((await stub.last()).path, '/v1/completions');
  const e = await d.request('POST', `/accounts/demo/openai/deployments/up/embeddings?${AOAI_API}`, {
    headers: { 'api-key': keys.key1 }, body: { input: ['a', 'b'] },
  });
  assert.equal(e.status, 200, e.text);
  assert.equal(e.json.data.length, 2);
  const le = await stub.last();
  assert.equal(le.path, '/v1/embeddings');
  assert.equal(JSON.parse(le.body).model, 'M');

  // A bad key never reaches the model server.
  const before = (await stub.stats()).requests;
  const bad = await d.request('POST', chatPath('up'), { headers: { 'api-key': 'wrong' }, body: { messages: [] } });
  assert.equal(bad.status, 401);
  assert.equal((await stub.stats()).requests, before + 1 /* the stats call itself */);
  assert.deepEqual(findSecrets(d.stderr, [CRED, keys.key1, keys.key2]), [], 'a secret is in the daemon log');
});

test('streamed calls never forward the caller\'s key either', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  // Classic route with api-key, and /openai/v1 with the key as a Bearer token.
  const calls = [
    [chatPath('up'), { 'api-key': keys.key1 }, { messages: [{ role: 'user', content: 'streamed key' }] }],
    ['/accounts/demo/openai/v1/chat/completions', { authorization: `Bearer ${keys.key2}` },
      { model: 'up', messages: [{ role: 'user', content: 'streamed key' }] }],
  ];
  for (const [path, headers, body] of calls) {
    const r = await d.requestStream('POST', path, { headers, body: { ...body, stream: true } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.events.at(-1).data, '[DONE]');
    const last = await stub.last();
    assert.equal(JSON.parse(last.body).stream, true);
    assert.equal(last.headers.authorization, `Bearer ${CRED}`);
    assert.equal(last.headers['api-key'], undefined, 'the client api-key header was forwarded');
    assert.deepEqual(findSecrets(JSON.stringify(last), [keys.key1, keys.key2]), [], 'a client key reached the model server');
  }
});

test('streaming answers are passed through as they arrive', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  const r = await d.requestStream('POST', chatPath('up'), {
    headers: { 'api-key': keys.key1, 'x-stub-chunk-delay-ms': '200', 'x-stub-chunks': '5' },
    body: {
      stream: true,
      messages: [{ role: 'user', content: 'stream this please' }],
      x_stub: { chunk_delay_ms: 200, chunks: 5 },
    },
  });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'] || '', /^text\/event-stream/);
  assert.equal(r.events.at(-1).data, '[DONE]');
  const chunks = r.events.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'stub:M:stream this please');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  // role + 5 pieces + finish + [DONE], 200 ms apart at the stub: the first event must
  // arrive long before the last, or the gateway buffered the stream.
  assert.equal(r.events.length, 8);
  const first = r.events[0].t;
  const last = r.events.at(-1).t;
  t.diagnostic(`event arrival (ms): ${r.events.map((e) => Math.round(e.t)).join(', ')}`);
  assert.ok(first < last - 500, `first event at ${first.toFixed(0)} ms, last at ${last.toFixed(0)} ms`);
  // And they arrive spread out, not in one burst at the end.
  const distinct = new Set(r.events.map((e) => Math.round(e.t / 100))).size;
  assert.ok(distinct >= 5, `events arrived in ${distinct} bursts`);
  assert.equal(JSON.parse((await stub.last()).body).stream, true);
});

test('an unreachable model server gives 502, and the daemon keeps serving', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  const port = await unusedPort();
  await cliOk(d, ['-o', 'json', 'deployment', 'create', 'demo', 'down', '--backend', `http://127.0.0.1:${port}/v1`]);
  const body = { messages: [{ role: 'user', content: 'anyone?' }] };
  const r = await d.request('POST', chatPath('down'), { headers: { 'api-key': keys.key1 }, body });
  assert.equal(r.status, 502, r.text);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  assert.deepEqual(r.json, ERR.badGateway);
  const s = await d.request('POST', chatPath('down'), { headers: { 'api-key': keys.key1 }, body: { ...body, stream: true } });
  assert.equal(s.status, 502, s.text);
  assert.deepEqual(s.json, ERR.badGateway);

  // A model server that was up (with a kept-alive connection) and then died.
  const ok = await d.request('POST', chatPath('up'), { headers: { 'api-key': keys.key1 }, body });
  assert.equal(ok.status, 200, ok.text);
  await stub.stop();
  const dead = await d.request('POST', chatPath('up'), { headers: { 'api-key': keys.key1 }, body });
  assert.equal(dead.status, 502, dead.text);
  assert.deepEqual(dead.json, ERR.badGateway);
  const echo = await d.request('GET', '/healthz');
  assert.equal(echo.status, 200);
});

test('a model server slower than --upstream-timeout-ms gives 504', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t, { args: ['--upstream-timeout-ms', '1000'] });
  const keys = await setup(d, stub);
  // The stub would answer after 60 s, past this request's own 30 s limit and far short of
  // the daemon's default 120 s: a 504 here is the 1 s timeout, and the stub still holding
  // its answer afterwards shows the daemon did not wait for it.
  const t0 = performance.now();
  const r = await d.request('POST', chatPath('up'), {
    headers: { 'api-key': keys.key1, 'x-stub-delay-ms': '60000' },
    body: { messages: [{ role: 'user', content: 'slow' }], x_stub: { delay_ms: 60000 } },
    timeoutMs: 30000,
  });
  const elapsed = performance.now() - t0;
  assert.equal(r.status, 504, r.text);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  assert.deepEqual(r.json, ERR.gatewayTimeout);
  // A timer does not fire early, whatever the load: this bound cannot be flaky.
  assert.ok(elapsed >= 900, `504 after ${elapsed.toFixed(0)} ms, before the 1000 ms timeout`);
  assert.equal((await stub.stats()).answers_pending, 1, 'the model server had already answered');
  // The next request is served normally.
  const ok = await d.request('POST', chatPath('up'), { headers: { 'api-key': keys.key1 }, body: { messages: [{ role: 'user', content: 'fast' }] } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.choices[0].message.content, 'stub:M:fast');
});

test('upstream connections are kept alive and reused', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t, { args: ['--workers', '2'] });
  const keys = await setup(d, stub);
  const before = await stub.stats();
  for (let i = 0; i < 20; i++) {
    const r = await d.request('POST', chatPath('up'), { headers: { 'api-key': keys.key1 }, body: { messages: [{ role: 'user', content: `n${i}` }] } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, `stub:M:n${i}`);
  }
  const after = await stub.stats();
  // Each stats() call is one connection and one request of its own.
  const conns = after.connections_accepted - before.connections_accepted - 1;
  const reqs = after.requests - before.requests - 1;
  t.diagnostic(`20 proxied requests used ${conns} upstream connections`);
  assert.equal(reqs, 20);
  assert.ok(conns <= 4, `20 sequential requests opened ${conns} upstream connections (expected <= 2 per worker)`);
});

test('SIGTERM lets a request in flight finish, then exits 0', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  // 5 chunks 300 ms apart: the signal goes out when the first event has arrived, so the
  // stream is still running when it lands.
  let firstEvent;
  const gotFirst = new Promise((r) => (firstEvent = r));
  const streaming = d.requestStream('POST', chatPath('up'), {
    headers: { 'api-key': keys.key1 },
    body: {
      stream: true,
      messages: [{ role: 'user', content: 'finish me' }],
      x_stub: { chunk_delay_ms: 300, chunks: 5 },
    },
    onEvent: () => firstEvent(),
  });
  await gotFirst;
  const t0 = performance.now();
  const stopping = d.stop(15000);
  const r = await streaming;
  const st = await stopping;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.events.at(-1).data, '[DONE]', 'the stream was cut short by the stop');
  const text = r.events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'stub:M:finish me');
  assert.equal(st.timedOut, false);
  assert.equal(st.code, 0, `exit: ${JSON.stringify(st)}`);
  // It waited for the stream (about a second left), not for its 10 s grace period: a
  // daemon that waits out the grace cannot exit sooner than that after the signal, so
  // this bound is exact rather than a guess about the machine's speed.
  const DAEMON_GRACE_MS = 10000;
  assert.ok(performance.now() - t0 < DAEMON_GRACE_MS, 'stop waited for the grace period instead of the request');
  assert.match(d.stderr, /"event":"stopped"/);
});
