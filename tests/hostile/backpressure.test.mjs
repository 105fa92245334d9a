// Clients that do not keep up: one that reads slowly, one that pauses mid-stream and
// resumes (every byte checked, and the daemon's memory stays bounded meanwhile: it
// stops reading the model server instead of buffering), one that never resumes (cut
// off after the write timeout, without the terminating chunk), and a request body
// that drips (408 after the body timeout). The timeouts are lowered through the
// documented options.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon, startStub } from '../lib/harness.mjs';
import {
  KB, MB, assertWhole, call, chatBody, chatPath, readSlowly, setup, stubAnswer, vmRssKb, wordsPrompt,
} from '../lib/streams.mjs';

test('a client that reads slowly gets every byte', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  const expected = stubAnswer(2 * MB);
  const prompt = wordsPrompt(60 * KB);
  const up = call(d, chatPath('up'), {
    headers: { 'api-key': keys.key1 },
    body: chatBody('slow', { stream: true, x_stub: { answer_bytes: 2 * MB, chunks: 200 } }),
  });
  const echo = call(d, chatPath('chat'), { headers: { 'api-key': keys.key1 }, body: chatBody(prompt, { stream: true }) });
  readSlowly(up, 5);
  readSlowly(echo, 5);
  assertWhole(await up.result(), expected, 'proxied');
  assertWhole(await echo.result(), prompt, 'echo');
});

// The bound: the daemon may hold KL_MAX_OUTPUT_BUFFER (1 MiB) per stream plus what one
// read from the model server brings (the TLS layer keeps a copy of what it encrypts);
// the rest waits in the kernel and at the model server. 10 MB leaves room for the
// allocator's own caching, and is far below the 20-odd MB the proxied stream would add
// if the daemon kept reading the model server while the client paused.
const RSS_BOUND_KB = 10 * 1024;
// Under AddressSanitizer freed memory is kept in a quarantine (256 MB by default) to
// catch use after free, so resident memory grows with every byte that passed through,
// not with what is held. This test's daemon runs without the quarantine so that its
// memory measures what it holds; every other check of the sanitizer stays on.
const NO_QUARANTINE = { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0'].filter(Boolean).join(':') };

test('a client that pauses mid-stream and resumes gets every byte, and the daemon does not buffer the stream', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t, { env: NO_QUARANTINE });
  const keys = await setup(d, stub);
  // Warm up both paths, so the baseline includes TLS, pools and the allocator's arenas.
  const warm = call(d, chatPath('up'), { headers: { 'api-key': keys.key1 }, body: chatBody('warm', { stream: true, x_stub: { answer_bytes: MB } }) });
  assertWhole(await warm.result(), stubAnswer(MB), 'warm-up');
  const cases = [
    ['proxied', chatPath('up'), chatBody('pause', { stream: true, x_stub: { answer_bytes: 24 * MB, chunks: 1000 } }), stubAnswer(24 * MB)],
  ];
  const prompt = wordsPrompt(300 * KB);
  cases.push(['echo', chatPath('chat'), chatBody(prompt, { stream: true }), prompt]);
  for (const [what, path, body, expected] of cases) {
    const base = vmRssKb(d.proc.pid);
    const c = call(d, path, { headers: { 'api-key': keys.key1 }, body });
    await c.waitBytes(MB);
    c.sock.pause();
    // While the client reads nothing, watch the daemon for a second.
    let peak = base;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 50));
      peak = Math.max(peak, vmRssKb(d.proc.pid));
    }
    const atPause = c.bytes;
    c.sock.resume();
    const r = await c.result();
    t.diagnostic(`${what}: paused at ${atPause} bytes; daemon RSS ${base} kB before, peak ${peak} kB while paused (+${peak - base} kB)`);
    assertWhole(r, expected, what);
    assert.ok(peak - base < RSS_BOUND_KB, `${what}: the daemon grew by ${peak - base} kB while the client paused`);
  }
});

test('a client that never resumes is cut off after the write timeout, without the terminating chunk', async (t) => {
  const stub = await startStub(t);
  // 3 s rather than the minimum: on a loaded machine (and under the sanitizer) the
  // client itself may not get to read for a second, which must not count as stalling.
  const d = await startDaemon(t, { args: ['--write-timeout-ms', '3000'] });
  const keys = await setup(d, stub);
  const cases = [
    ['proxied', chatPath('up'), chatBody('stall', { stream: true, x_stub: { answer_bytes: 16 * MB, chunks: 1000 } })],
    ['echo', chatPath('chat'), chatBody(wordsPrompt(900 * KB), { stream: true })],
  ];
  for (const [what, path, body] of cases) {
    const aborted = d.waitForLog((j) => j.event === 'request' && j.aborted === true && j.status === 200, 15000);
    const c = call(d, path, { headers: { 'api-key': keys.key1 }, body });
    await c.waitBytes(1);
    c.sock.pause();
    const t0 = performance.now();
    await aborted;
    const waited = performance.now() - t0;
    t.diagnostic(`${what}: cut off ${Math.round(waited)} ms after the client stopped reading`);
    c.sock.resume();
    const r = await c.result();
    assert.equal(r.status, 200);
    assert.equal(r.complete, false, `${what}: a cut-off stream ended with the terminating chunk`);
    assert.ok(!r.body.toString('utf8').includes('data: [DONE]'), `${what}: [DONE] arrived`);
  }
  // The daemon still serves.
  const ok = await d.chat('demo', 'chat', keys.key1, 'still here');
  assert.equal(ok.json.choices[0].message.content, 'still here');
});

test('a request body that drips is refused with 408 after the body timeout', async (t) => {
  const d = await startDaemon(t, { args: ['--body-timeout-ms', '1000'] });
  const chunks = [`POST ${chatPath('chat')} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`];
  for (let i = 0; i < 200; i++) chunks.push('{', { delayMs: 50 });
  const r = await d.raw(chunks, { timeoutMs: 15000 });
  assert.equal(r.status, 408);
  assert.equal(r.text, '{"error":{"code":"RequestTimeout","message":"The request was not received in time."}}');
  assert.ok(r.elapsedMs >= 1000, `refused after ${r.elapsedMs} ms, before the body timeout`);
});
