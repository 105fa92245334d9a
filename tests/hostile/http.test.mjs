// Hostile HTTP against the public TLS listener (raw sockets, so nothing is cleaned up by
// a client library) and hostile ARM names against the admin socket. Every attack must
// get its exact refusal as a JSON error, and the daemon must serve the next request.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { AOAI_API, ARM_API, ERR, SUB, accountPath, startDaemon } from '../lib/harness.mjs';

const CHAT = `/accounts/demo/openai/deployments/chat/chat/completions?${AOAI_API}`;

function assertJsonError(r, status, what) {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status} (error ${r.error}, closed ${r.closed}) ${r.raw.subarray(0, 600).toString('latin1')}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, `${what}: content-type`);
  assert.ok(r.json && r.json.error && typeof r.json.error.code === 'string' && typeof r.json.error.message === 'string',
    `${what}: body is not {"error":{"code","message"}}: ${r.text.slice(0, 300)}`);
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
      assertJsonError(r, 400, `body ${JSON.stringify(body)}`);
      assert.equal(r.json.error.code, 'BadRequest');
    }
    const noMsg = await d.raw([req('POST', CHAT, [host, ['api-key', keys.key1], ['Content-Length', 2]], '{}')]);
    assertJsonError(noMsg, 400, 'no messages');
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
      assertJsonError(r, 401, `${name} api-key`);
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
        assertJsonError(r, 400, `nested JSON of ${body.length} bytes`);
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
    assertJsonError(r, 413, 'Content-Length 10 MB');
    assert.equal(r.json.error.code, 'RequestEntityTooLarge');
    await assertAlive(d, keys, '413 by length');
  });

  await t.test('a chunked 10 MB body is refused with 413', async () => {
    const piece = Buffer.alloc(65536, 0x20);
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    const chunks = [req('POST', CHAT, [host, auth, ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']])];
    for (let i = 0; i < 160; i++) chunks.push(chunk);
    chunks.push('0\r\n\r\n');
    const r = await d.raw(chunks, { timeoutMs: 20000 });
    assertJsonError(r, 413, 'chunked 10 MB');
    assert.equal(r.json.error.code, 'RequestEntityTooLarge');
    await assertAlive(d, keys, '413 chunked');
  });

  await t.test('100 KB of headers is refused with 431', async () => {
    const big = [];
    for (let i = 0; i < 25; i++) big.push([`x-filler-${i}`, 'f'.repeat(4000)]);
    const r = await d.raw([req('GET', '/healthz', [host, ...big])]);
    assertJsonError(r, 431, '100 KB headers');
    const one = await d.raw([req('GET', '/healthz', [host, ['x-one', 'g'.repeat(100 * 1024)]])]);
    assertJsonError(one, 431, 'one 100 KB header');
    const many = [];
    for (let i = 0; i < 150; i++) many.push([`x-h${i}`, '1']);
    const cnt = await d.raw([req('GET', '/healthz', [host, ...many])]);
    assertJsonError(cnt, 431, '150 headers');
    await assertAlive(d, keys, '431');
  });

  await t.test('a header line without a colon is refused with 400', async () => {
    const r = await d.raw([`GET /healthz HTTP/1.1\r\nHost: x\r\nthis line has no colon\r\n\r\n`]);
    assertJsonError(r, 400, 'header without colon');
    await assertAlive(d, keys, 'no colon');
  });

  await t.test('Content-Length together with Transfer-Encoding is refused with 400', async () => {
    const body = '{"messages":[{"role":"user","content":"x"}]}';
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    for (const order of [[['Content-Length', body.length], ['Transfer-Encoding', 'chunked']], [['Transfer-Encoding', 'chunked'], ['Content-Length', chunked.length]]]) {
      const r = await d.raw([req('POST', CHAT, [host, auth, ...order], chunked)]);
      assertJsonError(r, 400, `CL+TE ${order.map((h) => h[0]).join(',')}`);
    }
    await assertAlive(d, keys, 'CL+TE');
  });

  await t.test('two different Content-Length headers are refused with 400', async () => {
    const body = '{"messages":[{"role":"user","content":"x"}]}';
    const r = await d.raw([req('POST', CHAT, [host, auth, ['Content-Length', body.length], ['Content-Length', body.length + 5]], `${body}xxxxx`)]);
    assertJsonError(r, 400, 'two Content-Length');
    const list = await d.raw([req('POST', CHAT, [host, auth, ['Content-Length', `${body.length}, ${body.length + 1}`]], `${body}x`)]);
    assertJsonError(list, 400, 'Content-Length list');
    const neg = await d.raw([req('POST', CHAT, [host, auth, ['Content-Length', '-1']], body)]);
    assertJsonError(neg, 400, 'negative Content-Length');
    await assertAlive(d, keys, 'two CL');
  });

  await t.test('bad chunk sizes and unknown transfer codings are refused with 400', async () => {
    const r = await d.raw([req('POST', CHAT, [host, auth, ['Transfer-Encoding', 'chunked']], 'zz\r\nabc\r\n0\r\n\r\n')]);
    assertJsonError(r, 400, 'bad chunk size');
    const te = await d.raw([req('POST', CHAT, [host, auth, ['Transfer-Encoding', 'gzip, chunked']], '0\r\n\r\n')]);
    assert.ok(te.status === 400 || te.status === 501, `TE gzip: ${te.status}`);
    assertJsonError(te, te.status, 'TE gzip');
    await assertAlive(d, keys, 'bad chunks');
  });

  await t.test('an 8 KB+ path is refused with 414', async () => {
    const r = await d.raw([req('GET', `/openai/${'a'.repeat(9000)}`, [host])]);
    assertJsonError(r, 414, '9 KB path');
    await assertAlive(d, keys, '414');
  });

  await t.test('invalid methods, versions and request lines', async () => {
    for (const line of ['FOO / HTTP/1.1', 'G@T / HTTP/1.1', 'GET / HTTP/9.9', 'GET  HTTP/1.1', '\u0001\u0002\u0003 / HTTP/1.1']) {
      const r = await d.raw([`${line}\r\nHost: x\r\n\r\n`]);
      assert.ok(r.status >= 400 && r.status < 600 && r.status !== 500, `${JSON.stringify(line)} -> ${r.status}`);
      assertJsonError(r, r.status, JSON.stringify(line));
    }
    const trace = await d.raw([req('TRACE', '/healthz', [host])]);
    assert.ok([400, 404, 405, 501].includes(trace.status), `TRACE -> ${trace.status}`);
    await assertAlive(d, keys, 'bad methods');
  });

  await t.test('NUL bytes and non-ASCII in headers and paths', async () => {
    const nulHeader = await d.raw([Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nx-a: a\u0000b\r\n\r\n`, 'latin1')]);
    assertJsonError(nulHeader, 400, 'NUL in a header value');
    const nulPath = await d.raw([Buffer.from(`GET /heal\u0000thz HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1')]);
    assertJsonError(nulPath, 400, 'NUL in the path');
    const nonAsciiName = await d.raw([Buffer.concat([Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n'), Buffer.from('x-ü: 1\r\n\r\n', 'utf8')])]);
    assertJsonError(nonAsciiName, 400, 'non-ASCII header name');
    // A non-ASCII value (obs-text) is tolerated on an unrelated header, never a crash.
    const nonAsciiValue = await d.raw([Buffer.concat([Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n'), Buffer.from('x-v: héllo\r\n\r\n', 'utf8')])]);
    assert.ok(nonAsciiValue.status === 200 || nonAsciiValue.status === 400, `non-ASCII value -> ${nonAsciiValue.status}`);
    // A non-ASCII key value is just a wrong key.
    const body = '{"messages":[{"role":"user","content":"x"}]}';
    const badKey = await d.raw([Buffer.concat([Buffer.from(`POST ${CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n`), Buffer.from('api-key: ключ\r\n\r\n', 'utf8'), Buffer.from(body)])]);
    assert.ok(badKey.status === 401 || badKey.status === 400, `non-ASCII api-key -> ${badKey.status}`);
    assertJsonError(badKey, badKey.status, 'non-ASCII api-key');
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

test('slow client: half the headers then silence -> 408 within the header timeout', async (t) => {
  const { d, keys } = await setup(t);
  // The daemon's header timeout is 10 s (no flag): the whole header block must arrive in
  // it. Two slow clients at once: one sends half its headers and goes silent, the other
  // dribbles a header byte a second (which must not reset the clock).
  const drip = [`GET /healthz HTTP/1.1\r\nHost: x\r\n`];
  for (let i = 0; i < 14; i++) drip.push({ waitMs: 1000 }, 'x');
  const [r, r2] = await Promise.all([
    d.raw([`POST ${CHAT} HTTP/1.1\r\nHost: x\r\napi-key: ${keys.key1}\r\n`, { waitMs: 14000 }], { untilClose: true, timeoutMs: 16000 }),
    d.raw(drip, { untilClose: true, timeoutMs: 16000 }),
  ]);
  t.diagnostic(`silent client closed after ${r.elapsedMs.toFixed(0)} ms, dripping client after ${r2.elapsedMs.toFixed(0)} ms`);
  assert.ok(r.closed, 'the connection was not closed');
  assert.ok(r.elapsedMs >= 9000 && r.elapsedMs <= 12500, `closed after ${r.elapsedMs.toFixed(0)} ms`);
  assertJsonError(r, 408, 'slow headers');
  assert.ok(r2.closed && r2.elapsedMs >= 9000 && r2.elapsedMs <= 12500, `drip closed=${r2.closed} after ${r2.elapsedMs.toFixed(0)} ms`);
  assertJsonError(r2, 408, 'dripping headers');
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
      assert.equal(r.status, 400, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.ok(r.json?.error?.code, `${what}: ${r.text.slice(0, 200)}`);
      continue;
    }
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
    assert.equal(r.json?.error?.code, 'InvalidResourceName', `${what}: ${r.text.slice(0, 200)}`);
    const g = await send('GET', `${accountPath(name)}?${ARM_API}`);
    assert.equal(g.status, 400, `GET ${what}: ${g.status}`);
    const dep = await send('PUT', `${accountPath('demo')}/deployments/${name}?${ARM_API}`);
    assert.equal(dep.status, 400, `deployment ${what}: ${dep.status} ${dep.text.slice(0, 200)}`);
    assert.equal(dep.json?.error?.code, 'InvalidResourceName');
  }
  // A 10 KB name does not even fit the request line (8 KB): 414 from the server.
  const huge = await d.admin('PUT', `${accountPath('n'.repeat(10240))}?${ARM_API}`, {});
  assert.equal(huge.status, 414, `10 KB name: ${huge.status}`);
  assert.ok(huge.json?.error?.code);
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
