// Proxied 20 MB streams over TLS, in one burst and after a pause at the model server,
// compared byte for byte and ending in [DONE] (the echo model's 20 MB stream is in
// streams-20mb-echo.test.mjs: a file each keeps both well inside the per-file limit).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon, startStub } from '../lib/harness.mjs';
import {
  MB, assertWhole, call, chatBody, chatPath, setup, stubAnswer, wordsPrompt,
} from '../lib/streams.mjs';

test('proxied 20 MB streams over TLS arrive byte for byte, in one burst and after a pause', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  const expected = stubAnswer(20 * MB);
  for (const [what, x_stub] of [
    ['proxied, one burst', { answer_bytes: 20 * MB, chunks: 1000 }],
    ['proxied, after a pause', { answer_bytes: 20 * MB, chunks: 1000, pause_ms: 300 }],
  ]) {
    const t0 = performance.now();
    const c = call(d, chatPath('up'), { headers: { 'api-key': keys.key1 }, body: chatBody('big', { stream: true, x_stub }) });
    const r = await c.result();
    assertWhole(r, expected, what);
    t.diagnostic(`${what}: ${r.body.length} bytes of SSE in ${Math.round(performance.now() - t0)} ms`);
  }
});
