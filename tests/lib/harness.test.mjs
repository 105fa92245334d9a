// Self-test of the harness and the upstream stub: the tools the real suites rely on must
// themselves be right (ready-line parsing, CA trust, admin socket, raw HTTP parsing,
// sanitizer detection, stub answers, streaming pace and connection counting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { applyPowerCut, parseUndoJournal } from './crashsim.mjs';
import {
  Daemon,
  KEYLESS_CLI,
  KEYLESSD,
  KL_CRASHSIM,
  KL_STUB,
  makeTempDir,
  parseHttpResponse,
  rawExchange,
  REPO_ROOT,
  removeTempDir,
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

test('parseUndoJournal: a header torn by the kill is nothing recorded; anything else is damage', () => {
  const path = Buffer.from('/x/keyless.db');
  const hdr = Buffer.alloc(20 + path.length);
  hdr.write('KLUNDO1\n', 0, 'latin1');
  hdr.writeBigUInt64LE(4096n, 8);
  hdr.writeUInt32LE(path.length, 16);
  path.copy(hdr, 20);
  for (const cut of [1, 7, 8, 12, 19, 20, 20 + path.length - 1])
    assert.equal(parseUndoJournal(hdr.subarray(0, cut)), null, `cut at ${cut}`);
  assert.deepEqual(parseUndoJournal(hdr), { path: '/x/keyless.db', syncedSize: 4096, records: [] });
  assert.throws(() => parseUndoJournal(Buffer.from('KLUNDX')), /without its header/);
  assert.throws(() => parseUndoJournal(Buffer.concat([hdr, Buffer.alloc(16, 1)])), /damaged/);
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
  // Wait until the stub has tried to answer both departed clients, then check it counted
  // exactly what was sent (3 model requests and each /_stats poll) and still answers.
  let polls = 0;
  let stats;
  for (;;) {
    stats = await stub.stats();
    polls++;
    if (stats.answers_pending === 0) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.equal(stats.requests, 3 + polls);
  assert.equal(stub.proc.exitCode, null);
  const after = await post200();
  assert.equal(after.json.choices[0].message.content, 'stub:m:still here');

  function post200() {
    const b = '{"model":"m","messages":[{"role":"user","content":"still here"}]}';
    return rawExchange({ port: stub.port, useTls: false }, [
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\n\r\n${b}`,
    ]);
  }
});

test('unusedPort gives a port that refuses connections', async () => {
  const port = await unusedPort();
  const r = await rawExchange({ port, useTls: false }, ['GET / HTTP/1.1\r\n\r\n'], { timeoutMs: 2000 });
  assert.equal(r.error, 'ECONNREFUSED');
});

test('the harness finds the repository and the programs under test', () => {
  assert.match(readFileSync(join(REPO_ROOT, 'CMakeLists.txt'), 'utf8'), /^project\(keyless C\)$/m);
  for (const bin of [KEYLESSD, KEYLESS_CLI, KL_STUB, KL_CRASHSIM])
    assert.doesNotThrow(() => accessSync(bin, constants.X_OK), `${bin} is not an executable file`);
});

// A stand-in for keylessd: prints a ready line, then answers SIGTERM with exit code
// termCode (or not at all when termCode is null).
function fakeDaemon(dir, termCode) {
  const path = join(dir, 'fake-keylessd');
  const trap = termCode === null ? "trap '' TERM" : `trap 'exit ${termCode}' TERM`;
  writeFileSync(path, `#!/bin/sh
${trap}
mkdir -p "$2/tls" && echo ca > "$2/tls/ca.pem"
echo '{"event":"ready","public":"127.0.0.1:1"}' >&2
while :; do sleep 0.05; done
`, { mode: 0o755 });
  return path;
}

test('Daemon harness: a daemon that exits 0 on SIGTERM passes, one killed on purpose too', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeTempDir(dir));
  const clean = new Daemon({ binary: fakeDaemon(dir, 0) });
  await clean.start();
  await clean.restart();
  await clean.cleanup();
  const killed = new Daemon({ binary: fakeDaemon(dir, 0) });
  await killed.start();
  await killed.kill9();
  await killed.start();
  await killed.kill9();
  await killed.cleanup();
});

test('Daemon harness: a daemon that exits non-zero on SIGTERM fails its test', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeTempDir(dir));
  const d = new Daemon({ binary: fakeDaemon(dir, 3) });
  await d.start();
  await assert.rejects(() => d.cleanup(), /keylessd \(run 1\) answered SIGTERM with exit code 3, signal null/);
  // A restart hides nothing: the first run's exit is still reported.
  const r = new Daemon({ binary: fakeDaemon(dir, 3) });
  await r.start();
  await r.restart();
  await r.kill9();
  await assert.rejects(() => r.cleanup(), /keylessd \(run 1\) answered SIGTERM with exit code 3/);
});

test('Daemon harness: a daemon that needs SIGKILL after the grace fails its test', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeTempDir(dir));
  const d = new Daemon({ binary: fakeDaemon(dir, null) });
  await d.start();
  const st = await d.stop(300);
  assert.deepEqual(st, { code: null, signal: null, timedOut: true });
  await assert.rejects(() => d.cleanup(), /keylessd \(run 1\) did not exit within 300 ms of SIGTERM; SIGKILL was needed/);
});

test('Daemon harness: a daemon that dies on its own fails its test', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeTempDir(dir));
  const d = new Daemon({ binary: fakeDaemon(dir, 0) });
  await d.start();
  const gone = new Promise((r) => d.proc.once('exit', r));
  d.proc.kill('SIGSEGV');
  await gone;
  await assert.rejects(() => d.cleanup(), /keylessd \(run 1\) ended on its own with exit code null, signal SIGSEGV/);
});

test('stub harness: a stub that exits non-zero on SIGTERM is reported', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeTempDir(dir));
  const path = join(dir, 'fake-stub');
  writeFileSync(path, `#!/bin/sh
trap 'exit 4' TERM
echo '{"event":"ready","listen":"127.0.0.1:1"}'
while :; do sleep 0.05; done
`, { mode: 0o755 });
  const stub = await startStub(null, { binary: path });
  const st = await stub.stop();
  assert.deepEqual(st, { code: 4, signal: null, timedOut: false });
  assert.deepEqual(stub.exitProblems, ['stub answered SIGTERM with exit code 4, signal null']);
});

test('crashsim: a power cut keeps synced writes and drops the rest', async (t) => {
  const root = makeTempDir();
  t.after(() => removeTempDir(root));
  const data = join(root, 'data');
  const journal = join(root, 'journal');
  const outside = join(root, 'outside');
  const sh = (script) => {
    const r = spawnSync('/bin/sh', ['-ec', script], {
      cwd: root,
      env: { ...process.env, LD_PRELOAD: KL_CRASHSIM, KL_CRASHSIM_DIR: data, KL_CRASHSIM_JOURNAL: journal },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
  };
  spawnSync('mkdir', ['-p', data, journal]);
  writeFileSync(join(data, 'old'), 'base');
  sh(`printf one > data/synced
      sync data/synced
      printf two >> data/synced
      printf AAAA > data/patched
      sync data/patched
      printf BB | dd of=data/patched bs=1 seek=1 conv=notrunc status=none
      printf new > data/never-synced
      printf XY >> data/old
      printf s > data/db-shm
      printf o > outside`);
  assert.equal(readFileSync(join(data, 'patched'), 'utf8'), 'ABBA');
  const undone = applyPowerCut(journal);
  assert.deepEqual(undone.map((u) => u.path.slice(data.length + 1)).sort(), ['never-synced', 'old', 'patched', 'synced']);
  assert.equal(readFileSync(join(data, 'synced'), 'utf8'), 'one');
  assert.equal(readFileSync(join(data, 'patched'), 'utf8'), 'AAAA');
  assert.equal(readFileSync(join(data, 'never-synced'), 'utf8'), '');
  assert.equal(readFileSync(join(data, 'old'), 'utf8'), 'base');
  // Not watched: SQLite's shared-memory index and anything outside the directory.
  assert.equal(readFileSync(join(data, 'db-shm'), 'utf8'), 's');
  assert.equal(readFileSync(join(root, 'outside'), 'utf8'), 'o');
});
