// Clients that do not keep up: one that reads slowly, and one that pauses mid-stream
// and resumes (every byte checked, and the daemon's memory stays bounded meanwhile: it
// stops reading the model server instead of buffering). Clients that stop for good are
// in stalled-clients.test.mjs.
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
  readSlowly(up, 2);
  readSlowly(echo, 2);
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
    ['proxied', chatPath('up'), chatBody('pause', { stream: true, x_stub: { answer_bytes: 20 * MB, chunks: 1000 } }), stubAnswer(20 * MB)],
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
