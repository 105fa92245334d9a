// A 20 MB stream from the echo model over TLS, compared byte for byte and ending in
// [DONE]. The echo answer is the prompt, and a body is at most 4 MiB, so 20 MB of SSE is
// a prompt of short words (one event each); see tests/lib/streams.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startDaemon } from '../lib/harness.mjs';
import {
  KB, MB, assertWhole, call, chatBody, chatPath, setup, wordsPrompt,
} from '../lib/streams.mjs';

test('a 20 MB echo stream over TLS arrives byte for byte', async (t) => {
  const d = await startDaemon(t);
  const keys = await setup(d);
  const prompt = wordsPrompt(560 * KB);
  const t0 = performance.now();
  const c = call(d, chatPath('chat'), { headers: { 'api-key': keys.key1 }, body: chatBody(prompt, { stream: true }) });
  const r = await c.result();
  assertWhole(r, prompt, 'echo');
  assert.ok(r.body.length >= 20 * MB, `the echo stream is only ${r.body.length} bytes`);
  t.diagnostic(`echo: ${r.body.length} bytes of SSE in ${Math.round(performance.now() - t0)} ms`);
});
