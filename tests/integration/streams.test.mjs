// Large answers arrive whole over TLS: echo and proxied answers of 40 KB, 100 KB and
// 1 MB produced at once, streamed (byte for byte, ending in [DONE]) and not; an answer
// cut short by the model server is visibly incomplete (no terminating chunk); the
// timeout options are validated. The 20 MB streams are in streams-20mb*.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { KEYLESSD, startDaemon, startStub } from '../lib/harness.mjs';
import {
  KB, MB, assertWhole, call, chatBody, chatPath, setup, stubAnswer, wordsPrompt,
} from '../lib/streams.mjs';

test('echo answers of 40 KB, 100 KB and 1 MB made in one loop turn arrive whole, streamed and not', async (t) => {
  const d = await startDaemon(t);
  const keys = await setup(d);
  for (const size of [40 * KB, 100 * KB, MB]) {
    // One word of two-byte characters (one event's worth, split by the echo model) and
    // a prompt of many short words (many events in one batch).
    for (const [shape, prompt] of [['one word', '\u00e9'.repeat(size / 2)], ['words', wordsPrompt(size, 60)]]) {
      const what = `${size / KB} KB, ${shape}`;
      const c = call(d, chatPath('chat'), { headers: { 'api-key': keys.key1 }, body: chatBody(prompt, { stream: true }) });
      assertWhole(await c.result(), prompt, `streamed ${what}`);
      const r = await d.chat('demo', 'chat', keys.key1, prompt);
      assert.equal(r.status, 200, r.text.slice(0, 200));
      assert.ok(r.json.choices[0].message.content === prompt, `non-streaming ${what}: the answer differs`);
    }
  }
});

test('proxied answers of 40 KB, 100 KB and 1 MB sent as one event arrive whole, streamed and not', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  for (const size of [40 * KB, 100 * KB, MB]) {
    const expected = stubAnswer(size);
    const c = call(d, chatPath('up'), {
      headers: { 'api-key': keys.key1 },
      body: chatBody('big', { stream: true, x_stub: { answer_bytes: size, chunks: 1 } }),
    });
    const ev = assertWhole(await c.result(), expected, `streamed ${size / KB} KB`);
    assert.equal(ev.events, 4); // role, the whole answer, finish, [DONE]
    const r = await d.request('POST', chatPath('up'), {
      headers: { 'api-key': keys.key1 },
      body: chatBody('big', { x_stub: { answer_bytes: size } }),
    });
    assert.equal(r.status, 200, r.text.slice(0, 200));
    assert.ok(r.json.choices[0].message.content === expected, `non-streaming ${size / KB} KB: the answer differs`);
  }
  // 1 MB in ten events, the last nine in one burst after a pause at the model server.
  const c = call(d, chatPath('up'), {
    headers: { 'api-key': keys.key1 },
    body: chatBody('big', { stream: true, x_stub: { answer_bytes: MB, chunks: 10, pause_ms: 300 } }),
  });
  assertWhole(await c.result(), stubAnswer(MB), 'streamed 1 MB after a pause');
});

test('a model server that dies mid-stream leaves the client an answer it can tell is incomplete', async (t) => {
  const stub = await startStub(t);
  const d = await startDaemon(t);
  const keys = await setup(d, stub);
  const c = call(d, chatPath('up'), {
    headers: { 'api-key': keys.key1 },
    body: chatBody('cut', { stream: true, x_stub: { answer_bytes: 10 * KB, chunks: 10, pause_ms: 60000 } }),
  });
  // The first content piece (about 1 KB) has arrived when the stub pauses; stopping the
  // stub then closes its connection in the middle of the chunked answer.
  await c.waitBytes(1024);
  await stub.stop();
  const r = await c.result();
  assert.equal(r.status, 200);
  assert.equal(r.complete, false, 'the cut-short stream ended with the terminating chunk');
  assert.ok(!r.body.toString('utf8').includes('[DONE]'));
  const ok = await d.chat('demo', 'chat', keys.key1, 'still here');
  assert.equal(ok.json.choices[0].message.content, 'still here');
});

test('the write and body timeout options refuse values out of range', async () => {
  for (const [flag, v] of [['--write-timeout-ms', '99'], ['--body-timeout-ms', '3600001'], ['--write-timeout-ms', '1s']]) {
    const p = spawn(KEYLESSD, [flag, v, '--check'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c) => (err += c));
    const code = await new Promise((r) => p.on('close', r));
    assert.equal(code, 2);
    assert.equal(err, `keylessd: ${flag} must be a whole number from 100 to 3600000\n`);
  }
});
