// A throw-away PostgreSQL server for a test file (tests/lib/pg-server does the work):
// one server per file, one database per test, so each test owns its state.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import assert from 'node:assert/strict';

import { REPO_ROOT, makeTempDir, removeTempDir, startDaemon } from './harness.mjs';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'tests', 'lib', 'pg-server');

export class Postgres {
  async start() {
    // The directory must not exist yet for pg-server's own checks; it owns it.
    const parent = makeTempDir('kl-pg-');
    this.parent = parent;
    chmodSync(parent, 0o711); // the server runs as "nobody" when the tests run as root
    this.dir = join(parent, 'pg');
    const { stdout } = await run(SCRIPT, ['start', this.dir], { timeout: 120000 });
    this.hostPort = stdout.trim();
    return this;
  }

  // A fresh database; returns its store URL.
  async createDatabase(prefix = 'kl') {
    const name = `${prefix}_${randomBytes(6).toString('hex')}`;
    await run(SCRIPT, ['createdb', this.hostPort, name], { timeout: 60000 });
    return `postgres://keyless@${this.hostPort}/${name}?sslmode=disable`;
  }

  // Runs statement in the database of storeUrl with psql (its own connection, as an
  // operator's tool or a fault would); nothing in keylessd knows about it.
  sql(storeUrl, statement) {
    const db = new URL(storeUrl).pathname.slice(1);
    return execFileSync(SCRIPT, ['psql', this.hostPort, db], { input: statement, encoding: 'utf8', timeout: 60000 });
  }

  async pause() {
    await run(SCRIPT, ['pause', this.dir], { timeout: 60000 });
  }

  async resume() {
    await run(SCRIPT, ['resume', this.dir], { timeout: 120000 });
  }

  async stop() {
    if (!this.dir) return;
    await run(SCRIPT, ['stop', this.dir], { timeout: 60000 });
    removeTempDir(this.parent);
    this.dir = null;
  }
}

export const PROPAGATION_MS = 1000;

// Two nodes sharing one fresh database and one KEK.
export async function twoNodes(t, pg) {
  const url = await pg.createDatabase();
  const env = { KEYLESS_KEK: randomBytes(32).toString('base64') };
  const a = await startDaemon(t, { args: ['--store', url], env });
  const b = await startDaemon(t, { args: ['--store', url], env });
  return { a, b, url, env };
}

// Polls fn (an async check returning true when the expected state is in force) until it
// holds; returns the milliseconds it took, or fails after limitMs.
export async function within(limitMs, fn, what) {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > limitMs) assert.fail(`${what}: not in force within ${limitMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

