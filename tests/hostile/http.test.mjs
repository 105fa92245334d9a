// Hostile HTTP against the public TLS listener (raw sockets, so nothing is cleaned up by
// a client library) and hostile ARM names against the admin socket. Every attack must
// get its exact refusal as a JSON error, and the daemon must serve the next request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';

import { AOAI_API, ARM_API, ERR, SUB, accountPath, findSecrets, parseHttpResponse, startDaemon } from '../lib/harness.mjs';

const CHAT = `/accounts/demo/openai/deployments/chat/chat/completions?${AOAI_API}`;
const MAX_BODY = 4 * 1024 * 1024; // KL_MAX_BODY_BYTES
const BUDGET = 256 * 1024 * 1024; // KL_MAX_BUFFERED_REQUEST_BYTES
const BUDGET_STEP = 4096; // KL_REQUEST_BUDGET_STEP

// The one status and error code the contract names for this refusal.
function assertJsonError(r, status, code, what) {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} (error ${r.error}, closed ${r.closed}) ${r.raw.subarray(0, 600).toString('latin1')}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, `${what}: content-type`);
  assert.ok(r.json && r.json.error && typeof r.json.error.message === 'string',
    `${what}: body is not {"error":{"code","message"}}: ${r.text.slice(0, 300)}`);
  assert.equal(r.json.error.code, code, `${what}: error code`);
}

// For exchanges read with untilClose: the server answered exactly once and closed the
// connection. A smuggled second request would show as a second response (its own
// answer, even a 400) or as a connection left open.
function assertOnlyResponse(r, what) {
  assert.ok(r.closed, `${what}: the connection was left open`);
  const p = parseHttpResponse(r.raw, true);
  assert.ok(p, `${what}: no complete response`);
  assert.equal(p.bytes, r.raw.length, `${what}: more than one response: ${r.raw.toString('latin1').slice(0, 800)}`);
}

// The daemon still answers healthz and a real chat call.
async function assertAlive(d, keys, what) {
  const h = await d.request('GET', '/healthz');
  assert.equal(h.status, 200, `after ${what}: healthz ${h.status}`);
  const c = await d.chat('demo', 'chat', keys.key1, `alive after ${what}`);
  assert.equal(c.status, 200, `after ${what}: chat ${c.status} ${c.text}`);
  assert.equal(c.json.choices[0].message.content, `alive after ${what}`);
  assert.ok(d.running, `daemon died after ${what}`);
}

function req(method, path, headers, body = '') {
  const lines = [`${method} ${path} HTTP/1.1`, ...headers.map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

async function setup(t, opts) {
  const d = await startDaemon(t, opts);
  const { keys } = await d.setupAccount('demo');
  return { d, keys };
}

test('bodies and keys: bad JSON, missing/empty/huge keys, deep JSON', async (t) => {
  const { d, keys } = await setup(t);
  const host = ['Host', `127.0.0.1:${d.publicPort}`];

  await t.test('bad JSON', async () => {
    for (const body of ['{', '{"messages":[', 'nope', '\u0000', '{"messages":[{"role":"user","content":"x"}]}garbage']) {
      const r = await d.raw([req('POST', CHAT, [host, ['api-key', keys.key1], ['Content-Type', 'application/json'], ['Content-Length', Buffer.byteLength(body)]], body)]);
      assertJsonError(r, 400, 'BadRequest', `body ${JSON.stringify(body)}`);
    }
    const noMsg = await d.raw([req('POST', CHAT, [host, ['api-key', keys.key1], ['Content-Length', 2]], '{}')]);
    assertJsonError(noMsg, 400, 'BadRequest', 'no messages');
    assert.equal(noMsg.json.error.param, 'messages');
    assert.equal(noMsg.json.error.type, 'invalid_request_error');
    await assertAlive(d, keys, 'bad JSON');
  });

  await t.test('missing, empty and oversized api-key', async () => {
    const body = '{"messages":[{"role":"user","content":"x"}]}';
    for (const [name, headers] of [
      ['missing', []],
      ['empty', [['api-key', '']]],
      ['blank', [['api-key', '   ']]],
      ['huge (20 KB, within the header limit)', [['api-key', 'k'.repeat(20000)]]],
      ['valid key with junk appended', [['api-key', `${keys.key1}${'k'.repeat(100)}`]]],
    ]) {
      const r = await d.raw([req('POST', CHAT, [host, ...headers, ['Content-Length', body.length]], body)]);
      assert.equal(r.status, 401, `${name} api-key: ${r.status}`);
      assert.deepEqual(r.json, ERR.invalidKey, name);
    }
    await assertAlive(d, keys, 'bad keys');
  });

  await t.test('deeply nested and wide JSON', async () => {
    for (const body of ['['.repeat(200000), `{"messages":${'['.repeat(5000)}${']'.repeat(5000)}}`, `{"messages":[${'{"role":"user","content":"x"},'.repeat(50000)}{"role":"user","content":"last"}]}`]) {
      const r = await d.raw([req('POST', CHAT, [host, ['api-key', keys.key1], ['Content-Length', Buffer.byteLength(body)]], body)]);
      if (body.startsWith('{"messages":[{')) {
        // Valid, wide but well under the body limit: served.
        assert.equal(r.status, 200, r.text.slice(0, 200));
        assert.equal(r.json.choices[0].message.content, 'last');
      } else {
        assertJsonError(r, 400, 'BadRequest', `nested JSON of ${body.length} bytes`);
      }
    }
    await assertAlive(d, keys, 'deep JSON');
  });
});

test('framing: body limits, header limits, conflicting lengths, malformed lines', async (t) => {
  const { d, keys } = await setup(t);
  const host = ['Host', `127.0.0.1:${d.publicPort}`];
  const auth = ['api-key', keys.key1];

  await t.test('Content-Length 10 MB is refused with 413 before the body is sent', async () => {
    const r = await d.raw([req('POST', CHAT, [host, auth, ['Content-Type', 'application/json'], ['Content-Length', 10485760]]), Buffer.alloc(65536, 0x20)], { timeoutMs: 10000 });
    assertJsonError(r, 413, 'RequestEntityTooLarge', 'Content-Length 10 MB');
    await assertAlive(d, keys, '413 by length');
  });

  await t.test('a chunked 10 MB body is refused with 413', async () => {
    const piece = Buffer.alloc(65536, 0x20);
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    const chunks = [req('POST', CHAT, [host, auth, ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']])];
    for (let i = 0; i < 160; i++) chunks.push(chunk);
    chunks.push('0\r\n\r\n');
    const r = await d.raw(chunks, { timeoutMs: 20000 });
    assertJsonError(r, 413, 'RequestEntityTooLarge', 'chunked 10 MB');
    await assertAlive(d, keys, '413 chunked');
  });

  await t.test('100 KB of headers is refused with 431', async () => {
    const big = [];
    for (let i = 0; i < 25; i++) big.push([`x-filler-${i}`, 'f'.repeat(4000)]);
    const r = await d.raw([req('GET', '/healthz', [host, ...big])]);
    assertJsonError(r, 431, 'RequestHeaderFieldsTooLarge', '100 KB headers');
    const one = await d.raw([req('GET', '/healthz', [host, ['x-one', 'g'.repeat(100 * 1024)]])]);
    assertJsonError(one, 431, 'RequestHeaderFieldsTooLarge', 'one 100 KB header');
    const many = [];
    for (let i = 0; i < 150; i++) many.push([`x-h${i}`, '1']);
    const cnt = await d.raw([req('GET', '/healthz', [host, ...many])]);
    assertJsonError(cnt, 431, 'RequestHeaderFieldsTooLarge', '150 headers');
    await assertAlive(d, keys, '431');
  });

  await t.test('a header line without a colon is refused with 400', async () => {
    const r = await d.raw([`GET /healthz HTTP/1.1\r\nHost: x\r\nthis line has no colon\r\n\r\n`], { untilClose: true });
    assertJsonError(r, 400, 'BadRequest', 'header without colon');
    assertOnlyResponse(r, 'header without colon');
    await assertAlive(d, keys, 'no colon');
  });

  await t.test('Content-Length together with Transfer-Encoding is refused with 400', async () => {
    const body = '{"messages":[{"role":"user","content":"x"}]}';
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    for (const order of [[['Content-Length', body.length], ['Transfer-Encoding', 'chunked']], [['Transfer-Encoding', 'chunked'], ['Content-Length', chunked.length]]]) {
      const r = await d.raw([req('POST', CHAT, [host, auth, ...order], chunked)], { untilClose: true });
      const what = `CL+TE ${order.map((h) => h[0]).join(',')}`;
      assertJsonError(r, 400, 'BadRequest', what);
      assertOnlyResponse(r, what);
    }
    await assertAlive(d, keys, 'CL+TE');
  });

  await t.test('two different Content-Length headers are refused with 400', async () => {
    const body = '{"messages":[{"role":"user","content":"x"}]}';
    const r = await d.raw([req('POST', CHAT, [host, auth, ['Content-Length', body.length], ['Content-Length', body.length + 5]], `${body}xxxxx`)], { untilClose: true });
    assertJsonError(r, 400, 'BadRequest', 'two Content-Length');
    assertOnlyResponse(r, 'two Content-Length');
    const list = await d.raw([req('POST', CHAT, [host, auth, ['Content-Length', `${body.length}, ${body.length + 1}`]], `${body}x`)], { untilClose: true });
    assertJsonError(list, 400, 'BadRequest', 'Content-Length list');
    assertOnlyResponse(list, 'Content-Length list');
    const neg = await d.raw([req('POST', CHAT, [host, auth, ['Content-Length', '-1']], body)], { untilClose: true });
    assertJsonError(neg, 400, 'BadRequest', 'negative Content-Length');
    assertOnlyResponse(neg, 'negative Content-Length');
    await assertAlive(d, keys, 'two CL');
  });

  await t.test('bad chunk sizes are refused with 400, unknown transfer codings with 501', async () => {
    const r = await d.raw([req('POST', CHAT, [host, auth, ['Transfer-Encoding', 'chunked']], 'zz\r\nabc\r\n0\r\n\r\n')], { untilClose: true });
    assertJsonError(r, 400, 'BadRequest', 'bad chunk size');
    assertOnlyResponse(r, 'bad chunk size');
    // RFC 9112 section 6.1: a transfer coding the server does not understand is a 501.
    for (const coding of ['gzip, chunked', 'gzip']) {
      const te = await d.raw([req('POST', CHAT, [host, auth, ['Transfer-Encoding', coding]], '0\r\n\r\n')], { untilClose: true });
      assertJsonError(te, 501, 'NotImplemented', `TE ${coding}`);
      assertOnlyResponse(te, `TE ${coding}`);
    }
    await assertAlive(d, keys, 'bad chunks');
  });

  await t.test('an 8 KB+ path is refused with 414', async () => {
    const r = await d.raw([req('GET', `/openai/${'a'.repeat(9000)}`, [host])]);
    assertJsonError(r, 414, 'RequestUriTooLong', '9 KB path');
    await assertAlive(d, keys, '414');
  });

  await t.test('invalid methods, versions and request lines', async () => {
    // RFC 9110 section 9.1: an unknown method is 501; RFC 9112 section 3: a request line
    // that does not parse (a method that is not a token, no target) is 400; section
    // 2.3 and RFC 9110 section 15.6.6: another major version is 505.
    for (const [line, status, code] of [
      ['FOO / HTTP/1.1', 501, 'NotImplemented'],
      ['G@T / HTTP/1.1', 400, 'BadRequest'],
      ['GET / HTTP/9.9', 505, 'HTTPVersionNotSupported'],
      ['GET  HTTP/1.1', 400, 'BadRequest'],
      ['\u0001\u0002\u0003 / HTTP/1.1', 400, 'BadRequest'],
    ]) {
      const r = await d.raw([`${line}\r\nHost: x\r\n\r\n`], { untilClose: true });
      assertJsonError(r, status, code, JSON.stringify(line));
      assertOnlyResponse(r, JSON.stringify(line));
    }
    // TRACE is a method the server knows; /healthz allows GET and HEAD only.
    const trace = await d.raw([req('TRACE', '/healthz', [host])]);
    assertJsonError(trace, 405, 'MethodNotAllowed', 'TRACE');
    assert.equal(trace.headers.allow, 'GET, HEAD');
    await assertAlive(d, keys, 'bad methods');
  });

  await t.test('NUL bytes and non-ASCII in headers and paths', async () => {
    const nulHeader = await d.raw([Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nx-a: a\u0000b\r\n\r\n`, 'latin1')]);
    assertJsonError(nulHeader, 400, 'BadRequest', 'NUL in a header value');
    const nulPath = await d.raw([Buffer.from(`GET /heal\u0000thz HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1')]);
    assertJsonError(nulPath, 400, 'BadRequest', 'NUL in the path');
    const nonAsciiName = await d.raw([Buffer.concat([Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n'), Buffer.from('x-ü: 1\r\n\r\n', 'utf8')])]);
    assertJsonError(nonAsciiName, 400, 'BadRequest', 'non-ASCII header name');
    // A non-ASCII value (obs-text, RFC 9110 section 5.5) is tolerated on an unrelated
    // header.
    const nonAsciiValue = await d.raw([Buffer.concat([Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n'), Buffer.from('x-v: héllo\r\n\r\n', 'utf8')])]);
    assert.equal(nonAsciiValue.status, 200, `non-ASCII value -> ${nonAsciiValue.status}`);
    assert.deepEqual(nonAsciiValue.json, { status: 'ok' });
    // A non-ASCII key value is just a wrong key.
    const body = '{"messages":[{"role":"user","content":"x"}]}';
    const badKey = await d.raw([Buffer.concat([Buffer.from(`POST ${CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n`), Buffer.from('api-key: ключ\r\n\r\n', 'utf8'), Buffer.from(body)])]);
    assert.equal(badKey.status, 401, `non-ASCII api-key -> ${badKey.status}`);
    assert.deepEqual(badKey.json, ERR.invalidKey);
    await assertAlive(d, keys, 'NUL and non-ASCII');
  });

  await t.test('pipelined requests are answered in order', async () => {
    const body = (s) => JSON.stringify({ messages: [{ role: 'user', content: s }] });
    const one = (s) => req('POST', CHAT, [host, auth, ['Content-Length', body(s).length]], body(s));
    const r = await d.raw([one('first') + one('second') + req('GET', '/healthz', [host, ['Connection', 'close']])], { untilClose: true });
    const text = r.raw.toString('utf8');
    const i1 = text.indexOf('"content":"first"');
    const i2 = text.indexOf('"content":"second"');
    assert.ok(i1 > 0 && i2 > i1, `pipelined answers out of order or missing: ${text.slice(0, 400)}`);
    assert.equal((text.match(/HTTP\/1\.1 200/g) || []).length, 3);
  });
});

// Opens a TLS connection, sends a request head and resolves once the server answered
// "100 Continue" (the head was accepted and its body charged); the socket stays open.
function holdHead(d, head) {
  return new Promise((resolveP, reject) => {
    let buf = '';
    const sock = tls.connect({ host: d.publicHost, port: d.publicPort, ca: d.ca, servername: '' }, () => sock.write(head));
    sock.on('data', (c) => {
      buf += c.toString('latin1');
      if (buf === 'HTTP/1.1 100 Continue\r\n\r\n') resolveP(sock);
      else if (!'HTTP/1.1 100 Continue\r\n\r\n'.startsWith(buf)) reject(new Error(`held head answered: ${buf.slice(0, 300)}`));
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`held connection closed: ${buf.slice(0, 300)}`)));
  });
}

test('credentials are checked from the head: a refused request never has its body read', async (t) => {
  const { d, keys } = await setup(t);
  const host = ['Host', `127.0.0.1:${d.publicPort}`];
  const big = ['Content-Length', MAX_BODY];
  const json = ['Content-Type', 'application/json'];

  await t.test('a wrong key with a 4 MiB body is answered 401 before the body is sent', async () => {
    // Only the head is sent: the answer can only come from the head.
    const r = await d.raw([req('POST', CHAT, [host, ['api-key', `${keys.key2.slice(0, -1)}x`], json, big])], { untilClose: true });
    assert.equal(r.status, 401, r.raw.toString('latin1').slice(0, 400));
    assert.deepEqual(r.json, ERR.invalidKey);
    assert.equal(r.headers.connection, 'close');
    assertOnlyResponse(r, 'wrong key, body unsent');
    const none = await d.raw([req('POST', CHAT, [host, json, big])], { untilClose: true });
    assert.equal(none.status, 401);
    assert.deepEqual(none.json, ERR.invalidKey);
    assertOnlyResponse(none, 'no key, body unsent');
  });

  await t.test('Expect: 100-continue gets the 401 instead of 100 Continue', async () => {
    const r = await d.raw([req('POST', CHAT, [host, ['api-key', 'nope'], json, big, ['Expect', '100-continue']])], { untilClose: true });
    assert.ok(r.raw.toString('latin1').startsWith('HTTP/1.1 401 '), r.raw.toString('latin1').slice(0, 200));
    assert.deepEqual(r.json, ERR.invalidKey);
    assertOnlyResponse(r, 'Expect with a wrong key');
  });

  await t.test('a client that sends the 4 MiB body anyway still reads its one 401', async () => {
    const r = await d.raw([req('POST', CHAT, [host, ['api-key', 'nope'], json, big]), Buffer.alloc(MAX_BODY, 0x20)], { untilClose: true, timeoutMs: 20000 });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, ERR.invalidKey);
    assertOnlyResponse(r, 'wrong key, body sent');
  });

  await t.test('an unknown account is refused from the head too', async () => {
    const r = await d.raw([req('POST', CHAT.replace('/accounts/demo/', '/accounts/nobody/'), [host, ['api-key', keys.key1], json, big])], { untilClose: true });
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, ERR.accountNotFound);
    assertOnlyResponse(r, 'unknown account');
  });
  await assertAlive(d, keys, 'refusals from the head');
});

test('one daemon-wide budget for buffered request bytes: 503 ServerBusy beyond it', async (t) => {
  const { d, keys } = await setup(t);
  const head = req('POST', CHAT, [['Host', 'x'], ['api-key', keys.key1], ['Content-Type', 'application/json'], ['Content-Length', MAX_BODY], ['Expect', '100-continue']]);
  // Each accepted head is charged its body (rounded up to the budget's step) and one
  // step for the head itself.
  const per = MAX_BODY + 2 * BUDGET_STEP;
  const n = Math.floor(BUDGET / per);
  const held = [];
  t.after(() => held.forEach((s) => s.destroy()));
  // The connections spread over both workers: the budget is shared by all of them.
  for (let i = 0; i < n; i++) held.push(await holdHead(d, head));
  const r = await d.raw([head], { untilClose: true });
  assertJsonError(r, 503, 'ServerBusy', 'over the budget');
  assert.equal(r.headers['retry-after'], '1');
  assertOnlyResponse(r, 'over the budget');
  // A small request still fits, and the daemon is otherwise well.
  await assertAlive(d, keys, 'a full budget');
  // Finishing one held request gives its share back: the daemon frees a request when
  // its answer is queued, so once the answer is read a new full-size head is accepted.
  // (A body of blanks is answered 400 at once, without an echo of 4 MiB to build.)
  const body = Buffer.alloc(MAX_BODY, 0x20);
  const first = held.shift();
  const answer = await new Promise((resolveP) => {
    let buf = Buffer.alloc(0);
    first.removeAllListeners('close');
    first.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      const p = parseHttpResponse(buf, false);
      if (p) resolveP(p);
    });
    first.write(body);
  });
  first.destroy();
  assert.equal(answer.status, 400);
  const again = await holdHead(d, head);
  again.destroy();
  // Gone before the daemon's stop, which would otherwise wait for them.
  held.forEach((s) => s.destroy());
});

test('a bad byte in the target: one refusal, and the access log escapes what it keeps', async (t) => {
  const { d, keys } = await setup(t);
  // http_parser lets TAB and form feed through in a target; the server refuses them and
  // (under ASan) must not read the half-built path when it logs the refusal.
  for (const ch of ['\f', '\t']) {
    const logged = d.waitForLog((j) => j.event === 'request' && j.status === 400);
    const r = await d.raw([Buffer.from(`GET /x${ch}yz HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1')], { untilClose: true });
    assertJsonError(r, 400, 'BadRequest', `target with ${JSON.stringify(ch)}`);
    assert.equal(r.json.error.message, 'The request target is malformed.');
    assertOnlyResponse(r, `target with ${JSON.stringify(ch)}`);
    const line = await logged;
    assert.equal(line.request_id, r.headers['x-ms-request-id']);
    assert.equal(line.path, '');
  }
  // Bytes that are not UTF-8 are kept in the log line as \xNN, never dropped.
  const logged = d.waitForLog((j) => j.event === 'request' && j.status === 404);
  const r = await d.raw([Buffer.from('GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1')]);
  assert.equal(r.status, 404);
  const line = await logged;
  assert.equal(line.request_id, r.headers['x-ms-request-id']);
  assert.equal(line.path, '/\\xff\\xfe');
  await assertAlive(d, keys, 'bad targets');
});

test('keys never reach the log, at debug level either', async (t) => {
  const { d, keys } = await setup(t, { args: ['--log-level', 'debug'] });
  const wrong = `${keys.key1.slice(0, -1)}${keys.key1.endsWith('A') ? 'B' : 'A'}`;
  assert.equal((await d.chat('demo', 'chat', keys.key1, 'k1')).status, 200);
  assert.equal((await d.chat('demo', 'chat', keys.key2, 'k2')).status, 200);
  assert.equal((await d.chat('demo', 'chat', wrong, 'wrong')).status, 401);
  const bearer = await d.chat('demo', 'chat', null, 'bearer', { headers: { authorization: `Bearer ${keys.key1}` } });
  assert.equal(bearer.status, 401);
  // The level took effect: debug lines were written.
  assert.match(d.stderr, /"level":"debug"/);
  assert.deepEqual(findSecrets(d.stderr, [keys.key1, keys.key2, wrong]), [], 'a key is in the debug log');
});

test('slow client: half the headers then silence -> 408 within the header timeout', async (t) => {
  const { d, keys } = await setup(t);
  // The daemon's header timeout is 10 s (no flag): the whole header block must arrive in
  // it. Two slow clients at once: one sends half its headers and goes silent (the test
  // waits for the server's close, nothing else), the other dribbles a header byte a
  // second (the pacing is the attack; it stops when the server closes) which must not
  // reset the clock.
  const drip = [`GET /healthz HTTP/1.1\r\nHost: x\r\n`];
  for (let i = 0; i < 14; i++) drip.push({ waitMs: 1000 }, 'x');
  const [r, r2] = await Promise.all([
    d.raw([`POST ${CHAT} HTTP/1.1\r\nHost: x\r\napi-key: ${keys.key1}\r\n`], { untilClose: true, timeoutMs: 16000 }),
    d.raw(drip, { untilClose: true, timeoutMs: 16000 }),
  ]);
  t.diagnostic(`silent client closed after ${r.elapsedMs.toFixed(0)} ms, dripping client after ${r2.elapsedMs.toFixed(0)} ms`);
  assert.ok(r.closed, 'the connection was not closed');
  assert.ok(r.elapsedMs >= 9000 && r.elapsedMs <= 12500, `closed after ${r.elapsedMs.toFixed(0)} ms`);
  assertJsonError(r, 408, 'RequestTimeout', 'slow headers');
  assertOnlyResponse(r, 'slow headers');
  assert.ok(r2.closed && r2.elapsedMs >= 9000 && r2.elapsedMs <= 12500, `drip closed=${r2.closed} after ${r2.elapsedMs.toFixed(0)} ms`);
  assertJsonError(r2, 408, 'RequestTimeout', 'dripping headers');
  assertOnlyResponse(r2, 'dripping headers');
  await assertAlive(d, keys, 'slow client');
});

test('hostile ARM names on the admin socket are refused and nothing is stored', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('demo', { deployments: {} });
  const listAll = async () => (await d.admin('GET', `/subscriptions/${SUB}/providers/Microsoft.CognitiveServices/accounts?${ARM_API}`)).json.value.map((a) => a.name);
  const names = [
    "';--",
    "x';DROP TABLE accounts;--",
    "x';DROP%20TABLE%20accounts;--",
    '..',
    '%2e%2e',
    '%2E%2E%2Fetc',
    'demo%00',
    'a%20b',
    "a'b",
    'a"b',
    'n'.repeat(7000),
  ];
  for (const name of names) {
    // Sent raw: node:http would refuse some of these request lines itself.
    const send = (method, path) => d.adminRaw([`${method} ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`]);
    const r = await send('PUT', `${accountPath(name)}?${ARM_API}`);
    const what = JSON.stringify(name.slice(0, 40));
    if (name.includes(' ')) {
      // A space ends the request target: the request line itself is malformed.
      assertJsonError(r, 400, 'BadRequest', what);
      continue;
    }
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
    assert.equal(r.json?.error?.code, 'InvalidResourceName', `${what}: ${r.text.slice(0, 200)}`);
    const g = await send('GET', `${accountPath(name)}?${ARM_API}`);
    assert.equal(g.status, 400, `GET ${what}: ${g.status}`);
    assert.equal(g.json?.error?.code, 'InvalidResourceName', `GET ${what}: ${g.text.slice(0, 200)}`);
    const dep = await send('PUT', `${accountPath('demo')}/deployments/${name}?${ARM_API}`);
    assert.equal(dep.status, 400, `deployment ${what}: ${dep.status} ${dep.text.slice(0, 200)}`);
    assert.equal(dep.json?.error?.code, 'InvalidResourceName');
  }
  // A 10 KB name does not even fit the request line (8 KB): 414 from the server.
  const huge = await d.admin('PUT', `${accountPath('n'.repeat(10240))}?${ARM_API}`, {});
  assert.equal(huge.status, 414, `10 KB name: ${huge.status}`);
  assert.equal(huge.json?.error?.code, 'RequestUriTooLong');
  for (const rg of ["rg';--", '..', '%2e%2e', 'rg%00', "x'%20OR%20'1'='1"]) {
    const r = await d.admin('PUT', `${accountPath('okname', { rg })}?${ARM_API}`, {});
    assert.equal(r.status, 400, `rg ${rg}: ${r.status} ${r.text}`);
    assert.equal(r.json?.error?.code, 'InvalidResourceGroupName');
  }
  // Hostile JSON in an accepted request is stored as data, not executed.
  const tags = await d.admin('PUT', `${accountPath('tagged')}?${ARM_API}`, { tags: { "x'); DROP TABLE accounts;--": "'; SELECT 1;--" } });
  assert.equal(tags.status, 201, tags.text);
  assert.deepEqual(tags.json.tags, { "x'); DROP TABLE accounts;--": "'; SELECT 1;--" });
  assert.deepEqual((await listAll()).sort(), ['demo', 'tagged']);
  assert.deepEqual((await d.admin('GET', `${accountPath('demo')}/deployments?${ARM_API}`)).json, { value: [] });
  const h = await d.admin('GET', '/healthz');
  assert.equal(h.status, 200);
});
