// Test harness for the Node suites: starts a real keylessd (and the upstream stub) on
// free loopback ports with a fresh data directory, and talks to it over HTTPS (trusting
// the daemon's own CA), over the admin Unix socket, over raw TCP/TLS, and through the CLI.
// Every process and temp directory a test starts is torn down by that test's hooks.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

import { applyPowerCut } from './crashsim.mjs';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_DIR = process.env.KL_BUILD_DIR
  ? resolve(process.env.KL_BUILD_DIR)
  : join(REPO_ROOT, 'build');
export const KEYLESSD = process.env.KEYLESSD || join(BUILD_DIR, 'keylessd');
export const KEYLESS_CLI = process.env.KEYLESS_CLI || join(BUILD_DIR, 'keyless');
export const KL_STUB = process.env.KL_STUB || join(BUILD_DIR, 'kl-upstream-stub');
// The power-cut shim (tests/crashsim), preloaded into a daemon started with crashsim.
export const KL_CRASHSIM = process.env.KL_CRASHSIM || join(BUILD_DIR, 'libkl-crashsim.so');

// How long a daemon may take to exit after SIGTERM: its own grace for requests in flight
// (KL_STOP_GRACE_MS, 10 s, --stop-grace-ms) plus room for a sanitizer build on a loaded machine. A daemon
// that needs SIGKILL after this fails its test, as does one that exits non-zero.
export const STOP_GRACE_MS = 15000;
// The same for the upstream stub, which has nothing to drain.
export const STUB_STOP_GRACE_MS = 5000;

export const SUB = '00000000-0000-0000-0000-000000000000';
export const RG = 'default';
export const ARM_API = 'api-version=2024-10-01';
export const AOAI_API = 'api-version=2024-10-21';

// properties.endpoints of an account (docs/control-plane.md): Azure's names for an
// OpenAI account, each mapped to the account's endpoint.
export const ENDPOINT_NAMES = [
  'Azure OpenAI Legacy API - Latest moniker',
  'OpenAI Dall-E API',
  'OpenAI Language Model Instance API',
  'OpenAI Model Scaleset API',
  'OpenAI Moderations API',
  'OpenAI Realtime API',
  'OpenAI Sora API',
  'OpenAI Whisper API',
  'Token Service API',
];
export const accountEndpoints = (endpoint) => Object.fromEntries(ENDPOINT_NAMES.map((n) => [n, endpoint]));

// Exact bodies from the wire contract.
export const ERR = {
  invalidKey: {
    error: {
      code: '401',
      message:
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
    },
  },
  keyDisabled: {
    error: {
      code: 'AuthenticationTypeDisabled',
      message: 'Key based authentication is disabled for this resource.',
    },
  },
  listKeysDisabled: {
    error: {
      code: 'BadRequest',
      message: 'Failed to list key. disableLocalAuth is set to be true',
    },
  },
  accountNotFound: { error: { code: '404', message: 'Resource not found' } },
  apiVersionUnsupported: { error: { code: 'BadRequest', message: 'API version not supported' } },
  deploymentNotFound: {
    error: {
      code: 'DeploymentNotFound',
      message:
        'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
    },
  },
  missingApiVersion: {
    error: {
      code: 'MissingApiVersionParameter',
      message:
        'The api-version query parameter (?api-version=) is required for all requests.',
    },
  },
  publicArm401: {
    error: {
      code: 'AuthenticationFailed',
      message: "Authentication failed. The 'Authorization' header is missing.",
    },
  },
  badGateway: {
    error: { code: 'BadGateway', message: 'The model server could not be reached.' },
  },
  egressRefused: {
    error: {
      code: 'BadGateway',
      message: "The model server's address is not allowed by this service's egress policy.",
    },
  },
  gatewayTimeout: {
    error: { code: 'GatewayTimeout', message: 'The model server did not answer in time.' },
  },
};

const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer'];

// Backstop: whatever a test forgot (or could not) clean up dies with the test process.
const liveProcs = new Set();
const liveDirs = new Set();
function killAll() {
  for (const p of liveProcs) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const d of liveDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}
process.on('exit', killAll);
// The test runner stops a file that overran its timeout with a signal: take the
// daemons down with us instead of leaving them orphaned.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.once(sig, () => {
    killAll();
    process.exit(128 + ({ SIGTERM: 15, SIGINT: 2, SIGHUP: 1 })[sig]);
  });
}

export function makeTempDir(prefix = 'kl-test-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  liveDirs.add(d);
  return d;
}

export function removeTempDir(d) {
  rmSync(d, { recursive: true, force: true });
  liveDirs.delete(d);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitExit(proc, ms) {
  return new Promise((resolveP) => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      resolveP({ code: proc.exitCode, signal: proc.signalCode, timedOut: false });
      return;
    }
    const timer = setTimeout(() => {
      proc.off('exit', onExit);
      resolveP({ code: null, signal: null, timedOut: true });
    }, ms);
    function onExit(code, signal) {
      clearTimeout(timer);
      resolveP({ code, signal, timedOut: false });
    }
    proc.once('exit', onExit);
  });
}

export function sanitizerReport(text) {
  for (const m of SANITIZER_MARKERS) {
    const i = text.indexOf(m);
    if (i >= 0) return text.slice(Math.max(0, i - 200), i + 4000);
  }
  return null;
}

// Parses one HTTP/1.x response from the start of buf. Returns null while incomplete
// (closed = false), else {status, reason, headers (lower-case names; repeated ones
// joined by ", "), rawHeaders, body (Buffer), bytes}.
export function parseHttpResponse(buf, closed = false) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
  const headers = {};
  const rawHeaders = [];
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c <= 0) throw new Error(`bad header line: ${JSON.stringify(l)}`);
    const name = l.slice(0, c).trim().toLowerCase();
    const value = l.slice(c + 1).trim();
    rawHeaders.push([name, value]);
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  const status = Number(m[1]);
  let pos = end + 4;
  const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
  if (noBody) return { status, reason: m[2] || '', headers, rawHeaders, body: Buffer.alloc(0), bytes: pos };
  if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    const parts = [];
    for (;;) {
      const le = buf.indexOf('\r\n', pos);
      if (le < 0) return null;
      const size = parseInt(buf.subarray(pos, le).toString('latin1').split(';')[0], 16);
      if (Number.isNaN(size)) throw new Error('bad chunk size');
      if (size === 0) {
        const te = buf.indexOf('\r\n\r\n', le);
        // No trailers: "0\r\n\r\n".
        if (buf.subarray(le, le + 2).toString() === '\r\n' && buf.length >= le + 4 &&
            buf.subarray(le + 2, le + 4).toString() === '\r\n') {
          pos = le + 4;
        } else if (te >= 0) {
          pos = te + 4;
        } else {
          return null;
        }
        break;
      }
      if (buf.length < le + 2 + size + 2) return null;
      parts.push(buf.subarray(le + 2, le + 2 + size));
      pos = le + 2 + size + 2;
    }
    return { status, reason: m[2] || '', headers, rawHeaders, body: Buffer.concat(parts), bytes: pos };
  }
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (buf.length < pos + n) return null;
    return { status, reason: m[2] || '', headers, rawHeaders, body: buf.subarray(pos, pos + n), bytes: pos + n };
  }
  if (!closed) return null;
  return { status, reason: m[2] || '', headers, rawHeaders, body: buf.subarray(pos), bytes: buf.length };
}

function tryJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function nodeRequest(mod, options, body, timeoutMs) {
  return new Promise((resolveP, reject) => {
    const req = mod.request(options, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const buffer = Buffer.concat(parts);
        const text = buffer.toString('utf8');
        resolveP({ status: res.statusCode, headers: res.headers, buffer, text, json: tryJson(text) });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function encodeBody(body, headers) {
  if (body === undefined) return undefined;
  if (typeof body === 'string' || Buffer.isBuffer(body)) return body;
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
    headers['content-type'] = 'application/json';
  return JSON.stringify(body);
}

// A running keylessd with its own data directory.
//
// Exit status: every run of the daemon must end with exit code 0, within
// STOP_GRACE_MS of the SIGTERM that stop() sends, unless the test killed it on purpose
// (kill9, powerCut) or it never became ready (start() then rejected, and the test saw
// that). Anything else (a non-zero code, a signal, SIGKILL needed) is recorded and
// cleanup() fails the test with it.
//
// crashsim: preload the power-cut shim (tests/crashsim/crashsim.c) with the data
// directory watched, so that powerCut() can drop every write not yet synced.
export class Daemon {
  // uid/gid: run the daemon as that user (the suite runs as root).
  constructor({ args = [], env = {}, dataDir, binary = KEYLESSD, crashsim = false, uid, gid } = {}) {
    this.binary = binary;
    this.ids = uid === undefined ? {} : { uid, gid: gid ?? uid };
    this.extraArgs = args;
    this.extraEnv = env;
    this.ownsDataDir = !dataDir;
    // keylessd refuses a data directory whose parent others can write (such as /tmp), so
    // the directory goes one level down in a private temporary directory.
    this.tempRoot = dataDir ? null : makeTempDir('kl-data-');
    this.dataDir = dataDir || join(this.tempRoot, 'data');
    if (!dataDir) mkdirSync(this.dataDir, { mode: 0o700 }); // exists before start, as before
    this.stderr = ''; // all stderr of every run (restarts included)
    this.runs = 0;
    this.proc = null;
    this.exitProblems = []; // unclean exits, reported by cleanup()
    this.crashsim = crashsim;
    if (crashsim) {
      this.journalDir = makeTempDir('kl-undo-');
      mkdirSync(this.journalDir, { recursive: true });
    }
  }

  // The environment of the daemon process: the test's, extraEnv, and the shim's.
  processEnv() {
    const env = { ...process.env, ...this.extraEnv };
    if (this.crashsim) {
      env.LD_PRELOAD = KL_CRASHSIM;
      env.KL_CRASHSIM_DIR = this.dataDir;
      env.KL_CRASHSIM_JOURNAL = this.journalDir;
      // A sanitizer build wants its runtime first; the shim only wraps libc's write and
      // sync calls, which the sanitizer runtime then still sees.
      env.ASAN_OPTIONS = [env.ASAN_OPTIONS, 'verify_asan_link_order=0'].filter(Boolean).join(':');
    }
    return env;
  }

  // Records an unclean end of run p (see the class comment).
  noteExit(p, { code, signal, timedOut }) {
    if (p.klKilled || !p.klReady) return;
    if (timedOut)
      this.exitProblems.push(`keylessd (run ${p.klRun}) did not exit within ${p.klGraceMs} ms of SIGTERM; SIGKILL was needed`);
    else if (code !== 0 || signal !== null)
      this.exitProblems.push(`keylessd (run ${p.klRun}) ${p.klStopRequested ? 'answered SIGTERM with' : 'ended on its own with'} exit code ${code}, signal ${signal}`);
  }

  get adminSock() {
    return join(this.dataDir, 'admin.sock');
  }

  async start({ timeoutMs = 20000 } = {}) {
    const args = [
      '--data-dir', this.dataDir,
      '--listen', '127.0.0.1:0',
      '--imds-listen', '127.0.0.1:0',
      ...this.extraArgs,
    ];
    const proc = spawn(this.binary, args, {
      env: this.processEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...this.ids,
    });
    this.proc = proc;
    this.runs++;
    proc.klRun = this.runs;
    liveProcs.add(proc);
    proc.on('exit', (code, signal) => {
      liveProcs.delete(proc);
      // Ends that stop() does not see (the daemon died on its own) are judged here;
      // stop() judges the ones it caused, timeouts included.
      if (!proc.klStopRequested) this.noteExit(proc, { code, signal, timedOut: false });
    });
    proc.stdout.on('data', (c) => {
      this.stdout = (this.stdout || '') + c.toString('utf8');
    });
    const runStart = this.stderr.length;
    let partial = '';
    const lineWaiters = [];
    this.lineWaiters = lineWaiters;
    proc.stderr.on('data', (c) => {
      const s = c.toString('utf8');
      this.stderr += s;
      partial += s;
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        const j = tryJson(line);
        for (const w of [...lineWaiters]) w(line, j);
      }
    });
    const ready = await new Promise((resolveP, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`keylessd did not print its ready line within ${timeoutMs} ms; stderr:\n${this.stderr.slice(runStart)}`));
      }, timeoutMs);
      const onLine = (line, j) => {
        if (j && j.event === 'ready') {
          cleanup();
          proc.klReady = true;
          resolveP(j);
        }
      };
      const onExit = (code, signal) => {
        cleanup();
        reject(new Error(`keylessd exited (code ${code}, signal ${signal}) before ready; args ${JSON.stringify(args)}; stderr:\n${this.stderr.slice(runStart)}`));
      };
      const onError = (e) => {
        cleanup();
        reject(new Error(`cannot start ${this.binary}: ${e.message}`));
      };
      function cleanup() {
        clearTimeout(timer);
        const i = lineWaiters.indexOf(onLine);
        if (i >= 0) lineWaiters.splice(i, 1);
        proc.off('exit', onExit);
        proc.off('error', onError);
      }
      lineWaiters.push(onLine);
      proc.once('exit', onExit);
      proc.once('error', onError);
    });
    this.ready = ready;
    const [, , pubPort] = /^(.*):(\d+)$/.exec(ready.public) || [];
    const [, , imdsPort] = /^(.*):(\d+)$/.exec(ready.imds || '') || [];
    if (!pubPort) throw new Error(`ready line without a usable "public": ${JSON.stringify(ready)}`);
    this.publicHost = '127.0.0.1';
    this.publicPort = Number(pubPort);
    this.publicUrl = `https://127.0.0.1:${this.publicPort}`;
    // --private-listen: "host:port,..." in the ready line.
    this.privatePorts = (ready.private || '').split(',').filter(Boolean).map((hp) => Number(/:(\d+)$/.exec(hp)[1]));
    this.imdsPort = imdsPort ? Number(imdsPort) : undefined;
    this.imdsUrl = imdsPort ? `http://127.0.0.1:${this.imdsPort}` : undefined;
    if (ready.admin && ready.admin !== this.adminSock)
      throw new Error(`ready line names admin socket ${ready.admin}, expected ${this.adminSock}`);
    this.ca = readFileSync(join(this.dataDir, 'tls', 'ca.pem'), 'utf8');
    return this;
  }

  // Resolves with the next stderr line whose parsed JSON satisfies pred.
  waitForLog(pred, timeoutMs = 5000) {
    return new Promise((resolveP, reject) => {
      const timer = setTimeout(() => {
        const i = this.lineWaiters.indexOf(w);
        if (i >= 0) this.lineWaiters.splice(i, 1);
        reject(new Error('log line not seen in time'));
      }, timeoutMs);
      const w = (line, j) => {
        if (j && pred(j)) {
          clearTimeout(timer);
          this.lineWaiters.splice(this.lineWaiters.indexOf(w), 1);
          resolveP(j);
        }
      };
      this.lineWaiters.push(w);
    });
  }

  get running() {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  // SIGTERM and wait; returns {code, signal, timedOut}. SIGKILL after graceMs. An
  // unclean end (see the class comment) is recorded for cleanup() to report.
  async stop(graceMs = STOP_GRACE_MS) {
    if (!this.proc) return { code: null, signal: null, timedOut: false };
    const p = this.proc;
    if (p.exitCode !== null || p.signalCode !== null)
      return { code: p.exitCode, signal: p.signalCode, timedOut: false };
    p.klStopRequested = true;
    p.klGraceMs = graceMs;
    p.kill('SIGTERM');
    const r = await waitExit(p, graceMs);
    if (r.timedOut) {
      p.kill('SIGKILL');
      await waitExit(p, 5000);
    }
    this.noteExit(p, r);
    return r;
  }

  // SIGKILL on purpose: this run's end is not held against the test.
  async kill9() {
    if (!this.running) return;
    const p = this.proc;
    p.klKilled = true;
    p.kill('SIGKILL');
    await waitExit(p, 5000);
  }

  // A simulated power cut (needs crashsim): SIGKILL, then every write the daemon made
  // since the last fsync/fdatasync of its file is undone. Returns what was undone per
  // file ({path, records, syncedSize}).
  async powerCut() {
    if (!this.crashsim) throw new Error('powerCut() needs a daemon started with crashsim: true');
    await this.kill9();
    return applyPowerCut(this.journalDir);
  }

  // Stops (gracefully unless already dead) and starts again on the same data directory.
  async restart(opts) {
    const r = await this.stop();
    await this.start(opts);
    return r;
  }

  sanitizerReport() {
    return sanitizerReport(this.stderr);
  }

  async cleanup() {
    try {
      await this.stop();
    } finally {
      if (this.ownsDataDir) removeTempDir(this.tempRoot);
      if (this.journalDir) removeTempDir(this.journalDir);
    }
    const rep = this.sanitizerReport();
    if (rep) throw new Error(`sanitizer report in keylessd stderr:\n${rep}`);
    if (this.exitProblems.length > 0)
      throw new Error(`${this.exitProblems.join('\n')}\nstderr (last 4000 bytes):\n${this.stderr.slice(-4000)}`);
  }

  // HTTPS request to the public listener, verifying the daemon's CA (against 127.0.0.1,
  // whatever Host header is sent). body: object (sent as JSON), string or Buffer.
  // localAddress picks the caller's address (any of 127/8); port another listener of
  // the public face (a private one).
  request(method, path, { headers = {}, body, timeoutMs = 20000, localAddress, port } = {}) {
    const h = { ...headers };
    const payload = encodeBody(body, h);
    return nodeRequest(https, {
      host: this.publicHost,
      port: port || this.publicPort,
      ...(localAddress ? { localAddress } : {}),
      servername: '',
      ca: this.ca,
      method,
      path,
      headers: h,
      agent: false,
      ...(localAddress ? { localAddress } : {}),
    }, payload, timeoutMs);
  }

  // Streams an HTTPS response; resolves with {status, headers, text, events}, where
  // events are the SSE "data:" payloads with their arrival time (ms since the request
  // was sent) and pieces are the raw body pieces as they arrived. onEvent, if given, is
  // called with each event as it arrives (to act on the first one, say).
  requestStream(method, path, { headers = {}, body, timeoutMs = 20000, onEvent } = {}) {
    const h = { ...headers };
    const payload = encodeBody(body, h);
    return new Promise((resolveP, reject) => {
      const t0 = performance.now();
      const req = https.request({
        host: this.publicHost,
        port: this.publicPort,
        servername: '',
        ca: this.ca,
        method,
        path,
        headers: h,
        agent: false,
      }, (res) => {
        const pieces = [];
        const events = [];
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (s) => {
          const t = performance.now() - t0;
          pieces.push({ t, data: s });
          pending += s;
          let sep;
          while ((sep = pending.indexOf('\n\n')) >= 0) {
            const ev = pending.slice(0, sep);
            pending = pending.slice(sep + 2);
            for (const line of ev.split('\n')) {
              if (!line.startsWith('data:')) continue;
              const e = { t, data: line.slice(5).trimStart() };
              events.push(e);
              if (onEvent) onEvent(e);
            }
          }
        });
        res.on('end', () =>
          resolveP({ status: res.statusCode, headers: res.headers, text: pieces.map((p) => p.data).join(''), pieces, events, rest: pending }));
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  // HTTP over the admin Unix socket. path is sent as given (add ?api-version yourself).
  admin(method, path, body, { headers = {}, timeoutMs = 20000 } = {}) {
    const h = { ...headers };
    const payload = encodeBody(body, h);
    return nodeRequest(http, { socketPath: this.adminSock, method, path, headers: h, agent: false }, payload, timeoutMs);
  }

  // Plain HTTP to the IMDS listener.
  imds(method, path, { headers = {}, body, timeoutMs = 20000 } = {}) {
    const h = { ...headers };
    const payload = encodeBody(body, h);
    return nodeRequest(http, { host: '127.0.0.1', port: this.imdsPort, method, path, headers: h, agent: false }, payload, timeoutMs);
  }

  // Runs the CLI against this daemon's data directory.
  cli(args, opts = {}) {
    return runCli(['--data-dir', this.dataDir, ...args], opts);
  }

  // --- ARM helpers over the admin socket ---
  async putAccount(name, body = {}, { sub = SUB, rg = RG } = {}) {
    return this.admin('PUT', `${accountPath(name, { sub, rg })}?${ARM_API}`, body);
  }

  async listKeys(name, { sub = SUB, rg = RG } = {}) {
    return this.admin('POST', `${accountPath(name, { sub, rg })}/listKeys?${ARM_API}`);
  }

  async putDeployment(account, name, body = {}, { sub = SUB, rg = RG } = {}) {
    return this.admin('PUT', `${accountPath(account, { sub, rg })}/deployments/${name}?${ARM_API}`, body);
  }

  // Creates account (echo deployment "chat" unless deployments is given) through the
  // admin socket and returns {account, keys:{key1,key2}, endpoint}.
  async setupAccount(name = 'demo', { deployments = { chat: {} }, account = {}, sub = SUB, rg = RG } = {}) {
    const a = await this.putAccount(name, account, { sub, rg });
    if (a.status !== 201 && a.status !== 200)
      throw new Error(`PUT account ${name}: ${a.status} ${a.text}`);
    for (const [d, body] of Object.entries(deployments)) {
      const r = await this.putDeployment(name, d, body, { sub, rg });
      if (r.status !== 201 && r.status !== 200)
        throw new Error(`PUT deployment ${d}: ${r.status} ${r.text}`);
    }
    const k = await this.listKeys(name, { sub, rg });
    if (k.status !== 200) throw new Error(`listKeys ${name}: ${k.status} ${k.text}`);
    return { account: a.json, keys: k.json, endpoint: a.json?.properties?.endpoint };
  }

  // POST a chat completion to /accounts/{account}/openai/deployments/{d}/chat/completions.
  chat(account, deployment, key, content = 'hello world', { headers = {}, extraBody = {}, stream = false, localAddress, port } = {}) {
    const h = { ...headers };
    if (key !== undefined && key !== null) h['api-key'] = key;
    const body = { messages: [{ role: 'user', content }], ...extraBody };
    if (stream) body.stream = true;
    return this.request('POST', `/accounts/${account}/openai/deployments/${deployment}/chat/completions?${AOAI_API}`, { headers: h, body, localAddress, port });
  }

  // Opens a raw TLS connection to the public listener (see rawExchange).
  raw(chunks, opts = {}) {
    return rawExchange({ host: this.publicHost, port: this.publicPort, ca: this.ca, useTls: true }, chunks, opts);
  }

  // A raw exchange on the admin socket (for request lines node:http refuses to send).
  adminRaw(chunks, opts = {}) {
    return rawExchange({ socketPath: this.adminSock }, chunks, opts);
  }
}

export function accountPath(name, { sub = SUB, rg = RG } = {}) {
  return `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.CognitiveServices/accounts/${name}`;
}

// Everything a test started is torn down by one after hook per test, in reverse order;
// every cleanup runs even if an earlier one failed, then the failures are reported.
const cleanups = new WeakMap();
export function onCleanup(t, fn) {
  let list = cleanups.get(t);
  if (!list) {
    list = [];
    cleanups.set(t, list);
    t.after(async () => {
      const errors = [];
      for (const f of list.reverse()) {
        try {
          await f();
        } catch (e) {
          errors.push(e);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('\n---\n'));
    });
  }
  list.push(fn);
}

// Starts a daemon owned by test context t (stopped, checked for sanitizer reports and
// removed in t's after hook).
export async function startDaemon(t, opts = {}) {
  const d = new Daemon(opts);
  if (t) onCleanup(t, () => d.cleanup());
  await d.start();
  return d;
}

export function runCli(args, { env = {}, input, timeoutMs = 20000, binary = KEYLESS_CLI } = {}) {
  return new Promise((resolveP, reject) => {
    const p = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    liveProcs.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c.toString('utf8')));
    p.stderr.on('data', (c) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      liveProcs.delete(p);
      reject(new Error(`cannot run ${binary}: ${e.message}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      liveProcs.delete(p);
      const rep = sanitizerReport(stderr);
      if (rep) {
        reject(new Error(`sanitizer report from the CLI (${args.join(' ')}):\n${rep}`));
        return;
      }
      resolveP({ code, signal, stdout, stderr, json: tryJson(stdout) });
    });
    if (input !== undefined) p.stdin.write(input);
    p.stdin.end();
  });
}

// Starts kl-upstream-stub on a free port of host (a loopback address); stopped in t's
// after hook.
export async function startStub(t, { binary = KL_STUB, host = '127.0.0.1' } = {}) {
  const proc = spawn(binary, ['--listen', `${host}:0`], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveProcs.add(proc);
  // The stub's end is judged like the daemon's: exit code 0 on SIGTERM, in time.
  const exitProblems = [];
  let stopRequested = false;
  proc.on('exit', (code, signal) => {
    liveProcs.delete(proc);
    if (!stopRequested && (code !== 0 || signal !== null))
      exitProblems.push(`stub ended on its own with exit code ${code}, signal ${signal}`);
  });
  let stderr = '';
  proc.stderr.on('data', (c) => (stderr += c.toString('utf8')));
  const ready = await new Promise((resolveP, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`stub not ready; stderr: ${stderr}`)), 10000);
    proc.stdout.on('data', (c) => {
      out += c.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        const j = tryJson(out.slice(0, nl));
        if (j && j.event === 'ready') resolveP(j);
        else reject(new Error(`bad stub ready line: ${out}`));
      }
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${binary}: ${e.message}`));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`stub exited (${code}) before ready: ${stderr}`));
    });
  });
  const [, port] = /:(\d+)$/.exec(ready.listen);
  const stub = {
    proc,
    port: Number(port),
    host,
    url: `http://${host}:${port}`,
    get stderr() {
      return stderr;
    },
    async get(path) {
      const r = await nodeRequest(http, { host, port: Number(port), method: 'GET', path, agent: false }, undefined, 10000);
      return r.json;
    },
    last() {
      return stub.get('/_last');
    },
    stats() {
      return stub.get('/_stats');
    },
    // SIGTERM and wait; returns {code, signal, timedOut} (SIGKILL after the grace).
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null)
        return { code: proc.exitCode, signal: proc.signalCode, timedOut: false };
      stopRequested = true;
      proc.kill('SIGTERM');
      const r = await waitExit(proc, STUB_STOP_GRACE_MS);
      if (r.timedOut) {
        proc.kill('SIGKILL');
        await waitExit(proc, 5000);
        exitProblems.push(`stub did not exit within ${STUB_STOP_GRACE_MS} ms of SIGTERM; SIGKILL was needed`);
      } else if (r.code !== 0 || r.signal !== null) {
        exitProblems.push(`stub answered SIGTERM with exit code ${r.code}, signal ${r.signal}`);
      }
      return r;
    },
    get exitProblems() {
      return [...exitProblems];
    },
  };
  if (t)
    onCleanup(t, async () => {
      await stub.stop();
      const rep = sanitizerReport(stderr);
      if (rep) throw new Error(`sanitizer report in stub stderr:\n${rep}`);
      if (exitProblems.length > 0) throw new Error(`${exitProblems.join('\n')}\nstub stderr:\n${stderr.slice(-4000)}`);
    });
  return stub;
}

// A loopback port nobody listens on (bound then released).
export function unusedPort() {
  return new Promise((resolveP, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolveP(port));
    });
  });
}

// Raw exchange over TCP or TLS. chunks: array of strings/Buffers written in order, or
// {delayMs} entries to pause, or {waitMs} to pause without ending. Resolves with
// {status, headers, body, text, json, raw (Buffer), closed, elapsedMs, error} once a
// complete response arrived (or, with untilClose, once the peer closed), or when
// timeoutMs passes. A write error (peer closed while we were still sending) is recorded,
// not thrown: the answer the server sent before closing is what matters.
export function rawExchange({ host = '127.0.0.1', port, ca, useTls = true, socketPath }, chunks, { timeoutMs = 15000, untilClose = false, endAfterWrite = false } = {}) {
  return new Promise((resolveP) => {
    const t0 = performance.now();
    let buf = Buffer.alloc(0);
    let closed = false;
    let done = false;
    let error;
    let sock;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      let parsed = null;
      let perr;
      try {
        parsed = parseHttpResponse(buf, true);
      } catch (e) {
        perr = e.message;
      }
      const text = parsed ? parsed.body.toString('utf8') : '';
      resolveP({
        status: parsed ? parsed.status : undefined,
        headers: parsed ? parsed.headers : undefined,
        rawHeaders: parsed ? parsed.rawHeaders : undefined,
        body: parsed ? parsed.body : undefined,
        text,
        json: parsed ? tryJson(text) : undefined,
        raw: buf,
        closed,
        elapsedMs: performance.now() - t0,
        error,
        parseError: perr,
      });
      sock.destroy();
    };
    const timer = setTimeout(finish, timeoutMs);
    const onConnect = async () => {
      for (const c of chunks) {
        if (done || closed) break;
        if (c && typeof c === 'object' && !Buffer.isBuffer(c)) {
          await sleep(c.delayMs ?? c.waitMs ?? 0);
          continue;
        }
        const ok = sock.write(c);
        if (!ok) await new Promise((r) => {
          const t = setInterval(() => {
            if (done || closed) {
              clearInterval(t);
              r();
            }
          }, 20);
          sock.once('drain', () => {
            clearInterval(t);
            r();
          });
        });
      }
      if (endAfterWrite && !done && !closed) sock.end();
    };
    const opts = socketPath ? { path: socketPath } : { host, port };
    sock = useTls && !socketPath
      ? tls.connect({ ...opts, ca, servername: '' }, onConnect)
      : net.connect(opts, onConnect);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!untilClose) {
        try {
          if (parseHttpResponse(buf, false)) finish();
        } catch {
          finish();
        }
      }
    });
    sock.on('error', (e) => {
      error = e.code || e.message;
    });
    sock.on('close', () => {
      closed = true;
      finish();
    });
  });
}

// Asserts no secret value appears in text (e.g. the daemon's log).
export function findSecrets(text, secrets) {
  return secrets.filter((s) => s && text.includes(s));
}

// Crash tests: keeps `concurrency` writes in flight against d (write(i) for i = 0, 1, ...
// up to total; it resolves with the response, and a write counts as acknowledged when
// ok(response) holds), and once `killAfterAcks` writes were acknowledged calls crash()
// at a moment when at least minInFlight writes are outstanding (sent, no answer yet).
// Requests that fail after the crash are expected; any failure before it is an error.
// Resolves with {acked (indices, in acknowledgement order), inFlightAtCrash, sent,
// crashResult}.
export async function writeStormAndCrash({ total, concurrency = 12, minInFlight = 8, killAfterAcks, write, ok, crash }) {
  if (concurrency < minInFlight) throw new Error('concurrency below minInFlight');
  const acked = [];
  let next = 0;
  let inFlight = 0;
  let crashing = null;
  let inFlightAtCrash = 0;
  let failure = null;
  const maybeCrash = () => {
    if (crashing || acked.length < killAfterAcks || inFlight < minInFlight) return;
    inFlightAtCrash = inFlight;
    crashing = crash();
  };
  const worker = async () => {
    while (!failure && next < total) {
      const i = next++;
      inFlight++;
      maybeCrash();
      let r;
      try {
        r = await write(i);
      } catch (e) {
        inFlight--;
        if (!crashing) failure = `write ${i} failed before the crash: ${e.message}`;
        return;
      }
      inFlight--;
      if (ok(r)) acked.push(i);
      else if (!crashing) {
        failure = `write ${i} answered ${r.status} ${r.text} before the crash`;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure) throw new Error(failure);
  if (!crashing) throw new Error(`all ${total} writes were answered before the crash point (${killAfterAcks} acknowledgements)`);
  const crashResult = await crashing;
  return { acked, inFlightAtCrash, sent: next, crashResult };
}
