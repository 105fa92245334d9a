// Clients that stop: one that never resumes reading (cut off after the write timeout,
// without the terminating chunk) and a request body that drips (408 after the body
// timeout). The timeouts are lowered through the documented options.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon, startStub } from '../lib/harness.mjs';
import {
  KB, MB, call, chatBody, chatPath, setup, wordsPrompt,
} from '../lib/streams.mjs';

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
    // The kernel's buffers take several MB before the daemon's writes stall, and a
    // sanitized daemon on a loaded machine may take a while to produce them; 25 s is
    // still less than the default write timeout (30 s), which must not be what acts.
    const aborted = d.waitForLog((j) => j.event === 'request' && j.aborted === true && j.status === 200, 25000);
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
  // A valid key: the head is vetted before any body byte is read.
  const keys = await setup(d);
  const chunks = [`POST ${chatPath('chat')} HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: ${keys.key1}\r\n` +
    'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n'];
  for (let i = 0; i < 200; i++) chunks.push('{', { delayMs: 50 });
  const r = await d.raw(chunks, { timeoutMs: 15000 });
  assert.equal(r.status, 408);
  assert.equal(r.text, '{"error":{"code":"RequestTimeout","message":"The request was not received in time."}}');
  assert.ok(r.elapsedMs >= 1000, `refused after ${r.elapsedMs} ms, before the body timeout`);
});
