// Self-test of the harness and the upstream stub: the tools the real suites rely on must
// themselves be right (ready-line parsing, CA trust, admin socket, raw HTTP parsing,
// sanitizer detection, stub answers, streaming pace and connection counting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  Daemon,
  parseHttpResponse,
  rawExchange,
  sanitizerReport,
  startStub,
  unusedPort,
} from './harness.mjs';


test('parseHttpResponse: content-length, chunked, incomplete, close-delimited', () => {
  const cl = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\nhi');
  const r = parseHttpResponse(cl);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hi');
  assert.equal(r.headers['x-a'], '1, 2');
  assert.equal(parseHttpResponse(cl.subarray(0, cl.length - 1)), null);
  const ch = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
  assert.equal(parseHttpResponse(ch).body.toString(), 'abcde');
  assert.equal(parseHttpResponse(ch.subarray(0, ch.length - 2)), null);
  const cd = Buffer.from('HTTP/1.0 408 Request Timeout\r\n\r\n{"a":1}');
  assert.equal(parseHttpResponse(cd, false), null);
  assert.equal(parseHttpResponse(cd, true).body.toString(), '{"a":1}');
  assert.throws(() => parseHttpResponse(Buffer.from('garbage\r\n\r\n')));
});

test('sanitizerReport finds ASan and UBSan reports only', () => {
  assert.equal(sanitizerReport('{"level":"info"}\n'), null);
  assert.ok(sanitizerReport('x\n==12==ERROR: AddressSanitizer: heap-buffer-overflow\n'));
  assert.ok(sanitizerReport('src/a.c:3:5: runtime error: signed integer overflow\n'));
});

test('Daemon harness: a daemon that exits before ready is reported with its stderr', async () => {
  const d = new Daemon({ binary: '/bin/sh', args: [] });
  // /bin/sh --data-dir ... fails at once with a message on stderr.
  await assert.rejects(() => d.start(), /exited .* before ready/);
  await d.cleanup();
});

test('stub: chat, completions, embeddings, /_last, errors', async (t) => {
  const stub = await startStub(t);
  const post = (path, body, headers = {}) =>
    rawExchange({ port: stub.port, useTls: false }, [
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\napi-key: client-key\r\n` +
        Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    ]);
  const c = await post('/v1/chat/completions', JSON.stringify({ model: 'm1', messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'héllo there' }] }));
  assert.equal(c.status, 200);
  assert.match(c.headers['content-type'], /application\/json/);
  assert.equal(c.json.choices[0].message.content, 'stub:m1:héllo there');
  assert.equal(c.json.model, 'm1');
  const last = await stub.last();
  assert.equal(last.method, 'POST');
  assert.equal(last.path, '/v1/chat/completions');
  assert.equal(last.headers['api-key'], 'client-key');
  assert.equal(JSON.parse(last.body).model, 'm1');
  const p = await post('/v1/completions', JSON.stringify({ model: 'm2', prompt: ['a b'] }));
  assert.equal(p.json.choices[0].text, 'stub:m2:a b');
  const e = await post('/v1/embeddings', JSON.stringify({ model: 'e', input: ['x', 'y'] }));
  assert.equal(e.json.data.length, 2);
  assert.equal(e.json.data[1].embedding.length, 8);
  const bad = await post('/v1/chat/completions', '{nope');
  assert.equal(bad.status, 400);
  assert.ok(bad.json.error.message);
  const forced = await post('/v1/chat/completions', '{}', { 'x-stub-status': '503' });
  assert.equal(forced.status, 503);
  const viaBody = await post('/v1/chat/completions', JSON.stringify({ model: 'm', x_stub: { status: 418 } }));
  assert.equal(viaBody.status, 418);
  const nf = await post('/v1/other', '{}');
  assert.equal(nf.status, 404);
});

test('stub: streaming is paced and framed as SSE; keep-alive counted', async (t) => {
  const stub = await startStub(t);
  const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'one two three' }] });
  const times = [];
  let buf = Buffer.alloc(0);
  const net = await import('node:net');
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const s = net.connect(stub.port, '127.0.0.1', () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-stub-chunks: 4\r\nx-stub-chunk-delay-ms: 100\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    s.on('data', (d) => {
      times.push(performance.now() - t0);
      buf = Buffer.concat([buf, d]);
      if (parseHttpResponse(buf)) {
        s.end();
        resolve();
      }
    });
    s.on('error', reject);
  });
  const r = parseHttpResponse(buf);
  assert.equal(r.headers['content-type'], 'text/event-stream');
  const events = r.body.toString().split('\n\n').filter(Boolean);
  // role, 4 content pieces, finish, [DONE]
  assert.equal(events.length, 7);
  assert.equal(events.at(-1), 'data: [DONE]');
  const chunks = events.slice(0, -1).map((ev) => JSON.parse(ev.slice(6)));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.map((c) => c.choices[0].delta.content || '').join(''), 'stub:m:one two three');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.ok(times.at(-1) - times[0] >= 500, `events spread over ${times.at(-1) - times[0]} ms`);

  const before = await stub.stats();
  // Three requests on one connection, then one more on a new connection.
  const one = 'GET /_stats HTTP/1.1\r\nHost: x\r\n\r\n';
  const net2 = await import('node:net');
  await new Promise((resolve, reject) => {
    let b = Buffer.alloc(0);
    let n = 0;
    const s = net2.connect(stub.port, '127.0.0.1', () => s.write(one));
    s.on('data', (d) => {
      b = Buffer.concat([b, d]);
      const p = parseHttpResponse(b);
      if (p) {
        b = b.subarray(p.bytes);
        if (++n === 3) {
          s.end();
          resolve();
        } else s.write(one);
      }
    });
    s.on('error', reject);
  });
  const after = await stub.stats();
  // +1 for the keep-alive connection, +1 for each stats() call's own connection.
  assert.equal(after.connections_accepted - before.connections_accepted, 2);
  assert.equal(after.requests - before.requests, 4);
});

test('stub: delayed answer, client gone while waiting does not crash it', async (t) => {
  const stub = await startStub(t);
  const body = '{"model":"m","messages":[]}';
  const t0 = performance.now();
  const r = await rawExchange({ port: stub.port, useTls: false }, [
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-stub-delay-ms: 300\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  ]);
  assert.equal(r.status, 200);
  assert.ok(performance.now() - t0 >= 290);
  const gone = await rawExchange({ port: stub.port, useTls: false }, [
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-stub-delay-ms: 300\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  ], { timeoutMs: 50 });
  assert.equal(gone.status, undefined);
  const sbody = '{"model":"m","stream":true,"messages":[]}';
  const streamGone = await rawExchange({ port: stub.port, useTls: false }, [
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-stub-chunk-delay-ms: 100\r\nContent-Length: ${sbody.length}\r\n\r\n${sbody}`,
  ], { timeoutMs: 150 });
  assert.match(streamGone.raw.toString(), /^HTTP\/1\.1 200/);
  assert.ok(!streamGone.raw.toString().includes('[DONE]'));
  await new Promise((res) => setTimeout(res, 1000));
  assert.equal((await stub.stats()).requests > 0, true);
  assert.equal(stub.proc.exitCode, null);
});

test('unusedPort gives a port that refuses connections', async () => {
  const port = await unusedPort();
  const r = await rawExchange({ port, useTls: false }, ['GET / HTTP/1.1\r\n\r\n'], { timeoutMs: 2000 });
  assert.equal(r.error, 'ECONNREFUSED');
});

test('paths resolve inside the repository', () => {
  assert.ok(existsSync(join(fileURLToPath(new URL('.', import.meta.url)), 'harness.mjs')));
});
