// Helpers for the streaming tests (tests/integration/streams*.test.mjs,
// tests/hostile/backpressure.test.mjs): a raw TLS client that reads as a test says
// (pausing, slowly, or not at all), a chunked-body decoder that tells whether the
// terminating chunk arrived, SSE reassembly, the stub's generated answers, and the
// daemon's resident memory.
//
// Sizes. The echo model answers with the prompt, and a request body is at most 4 MiB,
// so an echo answer's text is at most about 4 MiB; its SSE stream is much larger than
// its text (one event of about 150 bytes per word), so "a 20 MB echo stream" is a
// prompt of about 100,000 short words. Proxied answers come from the stub's generated
// text (x_stub.answer_bytes), up to tens of MB.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

import { AOAI_API } from './harness.mjs';

export const CRED = 'sk-stub-credential-streams-5d1e';
export const KB = 1024;
export const MB = 1024 * 1024;
export const chatPath = (dep) => `/accounts/demo/openai/deployments/${dep}/chat/completions?${AOAI_API}`;

export async function cliOk(d, args, env) {
  const r = await d.cli(args, { env });
  assert.equal(r.code, 0, `keyless ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

// Account demo with deployment "chat" (echo) and, with a stub, "up" (proxied to it).
export async function setup(d, stub) {
  const { keys } = await d.setupAccount('demo');
  if (stub)
    await cliOk(d, ['-o', 'json', 'deployment', 'create', 'demo', 'up', '--backend', `${stub.url}/v1`,
      '--upstream-model', 'M', '--credential-env', 'KL_TEST_UPSTREAM_CRED'], { KL_TEST_UPSTREAM_CRED: CRED });
  return keys;
}

// The stub's generated answer of n bytes (tests/stub/upstream_stub.c, make_answer).
export function stubAnswer(n) {
  const parts = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const s = Buffer.from(`${String(i).padStart(8, '0')} "\u00e9"\n`);
    parts.push(s);
    len += s.length;
  }
  const b = Buffer.concat(parts);
  let cut = n;
  while (cut > 0 && (b[cut] & 0xc0) === 0x80) cut--;
  return b.subarray(0, cut).toString('utf8');
}

// A prompt of distinct words (padded to `pad` characters), at least `bytes` long.
export function wordsPrompt(bytes, pad = 0) {
  const out = [];
  let len = 0;
  for (let i = 0; len < bytes; i++) {
    const w = `w${i.toString(36).padStart(pad, '-')} `;
    out.push(w);
    len += w.length;
  }
  return out.join('');
}

// Decodes a raw HTTP/1.1 response: {status, headers, body (de-chunked), complete} where
// complete means the terminating chunk arrived (chunked) or the length was met.
export function decodeResponse(raw) {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { status: undefined, headers: {}, body: Buffer.alloc(0), complete: false };
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  let pos = end + 4;
  if (!/chunked/i.test(headers['transfer-encoding'] || '')) {
    const n = Number(headers['content-length']);
    const body = raw.subarray(pos, pos + n);
    return { status, headers, body, complete: body.length === n };
  }
  const parts = [];
  for (;;) {
    const le = raw.indexOf('\r\n', pos);
    if (le < 0) break;
    const size = parseInt(raw.subarray(pos, le).toString('latin1'), 16);
    if (Number.isNaN(size)) break;
    if (size === 0) {
      const complete = raw.length >= le + 4 && raw.subarray(le, le + 4).toString('latin1') === '\r\n\r\n';
      return { status, headers, body: Buffer.concat(parts), complete };
    }
    if (raw.length < le + 2 + size + 2) break;
    parts.push(raw.subarray(le + 2, le + 2 + size));
    pos = le + 2 + size + 2;
  }
  return { status, headers, body: Buffer.concat(parts), complete: false };
}

// The SSE events of a chat stream: {content (the deltas joined), events, done (last
// event is [DONE])}. Every event must be one "data: " line.
export function chatEvents(body) {
  const text = body.toString('utf8');
  const evs = text.split('\n\n');
  assert.equal(evs.pop(), '', 'the stream does not end with a complete event');
  const deltas = [];
  let done = false;
  for (const [i, ev] of evs.entries()) {
    assert.ok(ev.startsWith('data: '), `event ${i} is not a data line: ${ev.slice(0, 80)}`);
    const data = ev.slice(6);
    if (data === '[DONE]') {
      done = i === evs.length - 1;
      continue;
    }
    deltas.push(JSON.parse(data).choices[0]?.delta?.content ?? '');
  }
  return { content: deltas.join(''), events: evs.length, done };
}

// One request on its own TLS connection ("Connection: close"), read as the test says.
// Returns {sock, bytes (so far), waitBytes(n), result()}; result() resolves once the
// server closed, with the decoded response and any socket error.
export function call(d, path, { headers = {}, body }) {
  const payload = Buffer.from(JSON.stringify(body));
  const sock = tls.connect({ host: '127.0.0.1', port: d.publicPort, ca: d.ca, servername: '' });
  const parts = [];
  const waiters = new Set();
  let bytes = 0;
  let error;
  let closed = false;
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  sock.on('data', (c) => {
    parts.push(c);
    bytes += c.length;
    wake();
  });
  sock.on('error', (e) => {
    error = e.code || e.message;
  });
  const done = new Promise((resolveP) => sock.on('close', () => {
    closed = true;
    wake();
    resolveP();
  }));
  let head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${payload.length}\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  sock.write(head + '\r\n');
  sock.write(payload);
  return {
    sock,
    get bytes() {
      return bytes;
    },
    // Resolves once n bytes arrived (or the connection closed).
    waitBytes(n) {
      return new Promise((resolveP) => {
        const w = () => {
          if (bytes >= n || closed) {
            waiters.delete(w);
            resolveP(bytes);
          }
        };
        waiters.add(w);
        w();
      });
    },
    async result() {
      await done;
      return { ...decodeResponse(Buffer.concat(parts)), error };
    },
  };
}

// A reader that takes its time: after every piece it stops reading for `ms`.
export function readSlowly(c, ms) {
  c.sock.on('data', () => {
    c.sock.pause();
    setTimeout(() => c.sock.resume(), ms);
  });
}

export function chatBody(content, extra = {}) {
  return { messages: [{ role: 'user', content }], ...extra };
}

export function assertWhole(r, expected, what) {
  assert.equal(r.status, 200, `${what}: status`);
  assert.equal(r.complete, true, `${what}: no terminating chunk (socket error: ${r.error})`);
  const ev = chatEvents(r.body);
  assert.equal(ev.done, true, `${what}: the stream does not end in [DONE]`);
  assert.equal(ev.content.length, expected.length, `${what}: answer length`);
  assert.ok(ev.content === expected, `${what}: the answer differs from what was asked for`);
  return ev;
}

export function vmRssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

