// A throw-away PostgreSQL server for a test file (tests/lib/pg-server does the work):
// one server per file, one database per test, so each test owns its state.
import { execFile } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import { REPO_ROOT, makeTempDir, removeTempDir } from './harness.mjs';

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
