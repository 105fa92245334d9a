// The data directory and the secrets in the process: keylessd refuses a directory (or a
// file in it) that another user owns or could swap, refuses to share its directory with
// a second keylessd, keeps itself out of core dumps and takes KEYLESS_KEK out of its
// environment; its local CA can vouch for no other site.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { KEYLESSD, makeTempDir, onCleanup, removeTempDir, startDaemon } from '../lib/harness.mjs';

const NOBODY = 65534;

function tempRoot(t) {
  const root = makeTempDir('kl-dd-');
  onCleanup(t, () => removeTempDir(root));
  return root;
}

// The binary under test may live where nobody cannot reach it (a clone under /root, whose
// mode is 0700): runs as nobody use a copy in a directory every user may enter.
function keylessdForNobody(t) {
  const root = tempRoot(t);
  chmodSync(root, 0o711);
  const bin = join(root, 'keylessd');
  copyFileSync(KEYLESSD, bin);
  chmodSync(bin, 0o755);
  return bin;
}

// Runs keylessd to completion (args after the data dir); returns its exit status and
// its error lines without their timestamps.
function run(dir, args = ['--check'], { env = process.env, uid } = {}) {
  const r = spawnSync(KEYLESSD, ['--data-dir', dir, '--listen', '127.0.0.1:0', '--imds-listen', '127.0.0.1:0', ...args], {
    encoding: 'utf8',
    timeout: 20000,
    env,
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  const errors = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((j) => j.level === 'error')
    .map(({ ts, ...rest }) => rest);
  return { status: r.status, signal: r.signal, errors, stderr: r.stderr, stdout: r.stdout };
}

function assertRefused(r, reason) {
  assert.equal(r.status, 1, `exit status; stderr:\n${r.stderr}`);
  assert.deepEqual(r.errors, [{ level: 'error', event: 'data_dir_refused', reason }]);
}

test('a data directory owned by another user is refused before anything is written in it', (t) => {
  const dir = join(tempRoot(t), 'data');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, NOBODY, NOBODY);
  const r = run(dir);
  assertRefused(r, `${dir} is owned by uid 65534, not by uid 0 that keylessd runs as; chown it to uid 0 or run keylessd as its owner`);
  assert.deepEqual(readdirSync(dir), []);
});

test('a data directory that is a symbolic link is refused', (t) => {
  const root = tempRoot(t);
  mkdirSync(join(root, 'real'), { mode: 0o700 });
  symlinkSync(join(root, 'real'), join(root, 'data'));
  const r = run(join(root, 'data'));
  assertRefused(r, `${join(root, 'data')} is a symbolic link; give --data-dir the real directory`);
  assert.deepEqual(readdirSync(join(root, 'real')), []);
});

test('a kek that is a symbolic link is refused', (t) => {
  const root = tempRoot(t);
  const dir = join(root, 'data');
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(root, 'elsewhere'), randomBytes(32), { mode: 0o600 });
  symlinkSync(join(root, 'elsewhere'), join(dir, 'kek'));
  const r = run(dir);
  assertRefused(r, `${dir}/kek is a symbolic link; keylessd opens nothing in its data directory through a link: put the real file there`);
});

// --kek-file names a KEK outside the data directory: it gets the same checks as DIR/kek.
function kekFileRefused(kekFile) {
  return [{ level: 'error', event: 'kek', reason: `--kek-file ${kekFile} is not usable: it must be an existing regular file (not a link) of exactly 32 bytes, owned by this user, with mode 0600` }];
}

function kekFileCase(t) {
  const root = tempRoot(t);
  const dir = join(root, 'data');
  mkdirSync(dir, { mode: 0o700 });
  const real = join(root, 'cluster-kek');
  writeFileSync(real, randomBytes(32), { mode: 0o600 });
  return { root, dir, real };
}

test('a --kek-file of the right kind is used and DIR/kek is never made', (t) => {
  const { dir, real } = kekFileCase(t);
  const r = run(dir, ['--check', '--kek-file', real]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(join(dir, 'kek')), false);
});

test('a --kek-file that is a symbolic link is refused', (t) => {
  const { root, dir, real } = kekFileCase(t);
  symlinkSync(real, join(root, 'link-kek'));
  const r = run(dir, ['--check', '--kek-file', join(root, 'link-kek')]);
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(r.errors, kekFileRefused(join(root, 'link-kek')));
});

test('a --kek-file owned by another user is refused', (t) => {
  const { dir, real } = kekFileCase(t);
  chownSync(real, NOBODY, NOBODY);
  const r = run(dir, ['--check', '--kek-file', real]);
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(r.errors, kekFileRefused(real));
});

test('a --kek-file that group or others may read is refused', (t) => {
  const { dir, real } = kekFileCase(t);
  chmodSync(real, 0o640);
  const r = run(dir, ['--check', '--kek-file', real]);
  assert.equal(r.status, 1, r.stderr);
  assert.deepEqual(r.errors, kekFileRefused(real));
});

test('a database file owned by another user is refused', (t) => {
  const dir = join(tempRoot(t), 'data');
  assert.equal(run(dir).status, 0, 'first start');
  chownSync(join(dir, 'keyless.db'), NOBODY, NOBODY);
  const r = run(dir);
  assertRefused(r, `${dir}/keyless.db is owned by uid 65534, not by uid 0 that keylessd runs as; if it is keylessd's own, chown it to uid 0, else move it away`);
});

test('a TLS key owned by another user is refused', (t) => {
  const dir = join(tempRoot(t), 'data');
  assert.equal(run(dir).status, 0, 'first start');
  chownSync(join(dir, 'tls', 'ca.key'), NOBODY, NOBODY);
  const r = run(dir);
  assertRefused(r, `${dir}/tls/ca.key is owned by uid 65534, not by uid 0 that keylessd runs as; if it is keylessd's own, chown it to uid 0, else move it away`);
});

test('a parent directory writable by others is refused', (t) => {
  const parent = join(tempRoot(t), 'shared');
  mkdirSync(parent);
  chmodSync(parent, 0o777);
  const r = run(join(parent, 'data'));
  assertRefused(r, `${parent} (the data directory's parent) is writable by other users, who could swap the data directory; use a parent only root or uid 0 can write`);
  assert.equal(existsSync(join(parent, 'data')), false);
});

test('a sticky parent writable by others (like /tmp) is refused too', (t) => {
  const parent = join(tempRoot(t), 'tmp');
  mkdirSync(parent);
  chmodSync(parent, 0o1777);
  const r = run(join(parent, 'data'));
  assertRefused(r, `${parent} (the data directory's parent) is writable by other users, who could swap the data directory; use a parent only root or uid 0 can write`);
});

test('a directory further up owned by another user is refused', (t) => {
  const alien = join(tempRoot(t), 'alien');
  mkdirSync(join(alien, 'sub'), { recursive: true, mode: 0o755 });
  chownSync(alien, NOBODY, NOBODY);
  const r = run(join(alien, 'sub', 'data'));
  assertRefused(r, `${alien} is owned by uid 65534, who could swap the data directory below it; use a --data-dir under directories owned by root or uid 0`);
});

test('a directory further up writable by others without the sticky bit is refused', (t) => {
  const open = join(tempRoot(t), 'open');
  mkdirSync(join(open, 'sub'), { recursive: true, mode: 0o755 });
  chmodSync(open, 0o777);
  const r = run(join(open, 'sub', 'data'));
  assertRefused(r, `${open} is writable by other users and not sticky, so they could swap the data directory below it; use a --data-dir under directories only root or uid 0 can write`);
});

test('without HOME there is no default data directory (no fallback under /tmp)', (t) => {
  const env = { ...process.env };
  delete env.HOME;
  delete env.XDG_DATA_HOME;
  delete env.KEYLESS_DATA_DIR;
  const r = spawnSync(keylessdForNobody(t), ['--check'], { encoding: 'utf8', timeout: 20000, env, uid: NOBODY, gid: NOBODY });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, 'keylessd: no data directory: HOME is not set, so there is no default; give --data-dir DIR (or KEYLESS_DATA_DIR), in a directory only you or root can write\n');
});

test('a second keylessd on the same data directory is refused and the first keeps serving', async (t) => {
  const d = await startDaemon(t);
  const r = run(d.dataDir, ['--workers', '1']);
  assertRefused(r, `${d.dataDir} is in use by another keylessd; stop that one first or give this one another --data-dir`);
  // The first one's admin socket was left alone.
  const h = await d.admin('GET', '/healthz');
  assert.equal(h.status, 200);
});

// Runs keylessd as nobody, with the core-file limit raised first (so a daemon that did not
// lower it would show it), in a data directory nobody owns.
async function startAsNobody(t, args = []) {
  const root = tempRoot(t);
  chmodSync(root, 0o711);
  const dir = join(root, 'data');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, NOBODY, NOBODY);
  const wrapper = join(root, 'keylessd-unlimited-core');
  writeFileSync(wrapper, `#!/bin/sh\nulimit -c unlimited\nexec '${keylessdForNobody(t)}' "$@"\n`, { mode: 0o755 });
  // The wrapper already runs as nobody: it raises the soft limit up to the hard one, which
  // the suite inherits as unlimited.
  // AddressSanitizer lowers the soft core limit itself unless told not to.
  const asan = `${process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : ''}disable_coredump=0`;
  return startDaemon(t, { dataDir: dir, binary: wrapper, uid: NOBODY, args, env: { ASAN_OPTIONS: asan } });
}

function coreLimit(pid) {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
  return line.replace(/\s+/g, ' ').trim();
}

test('core dumps are off by default: no core limit and not dumpable', async (t) => {
  const d = await startAsNobody(t);
  assert.equal(coreLimit(d.proc.pid), 'Max core file size 0 0 bytes');
  // A process that is not dumpable has its /proc files owned by root.
  assert.equal(statSync(`/proc/${d.proc.pid}/status`).uid, 0);
});

test('--allow-core-dumps on leaves the process dumpable', async (t) => {
  const d = await startAsNobody(t, ['--allow-core-dumps', 'on']);
  assert.equal(statSync(`/proc/${d.proc.pid}/status`).uid, NOBODY);
  assert.equal(coreLimit(d.proc.pid), 'Max core file size unlimited unlimited bytes');
});

test('KEYLESS_KEK is used and then gone from the process environment', async (t) => {
  const kek = randomBytes(32).toString('base64');
  const d = await startDaemon(t, { env: { KEYLESS_KEK: kek } });
  const environ = readFileSync(`/proc/${d.proc.pid}/environ`, 'latin1');
  assert.ok(environ.includes('PATH='), 'the rest of the environment is still there');
  assert.equal(environ.includes('KEYLESS_KEK'), false, 'the name');
  assert.equal(environ.includes(kek), false, 'the value');
  // The KEK from the environment was the one used: no kek file was made.
  assert.equal(existsSync(join(d.dataDir, 'kek')), false);
  const { keys } = await d.setupAccount('demo');
  const r = await d.chat('demo', 'chat', keys.key1);
  assert.equal(r.status, 200, r.text);
});

test('the local CA cannot vouch for another site', async (t) => {
  const d = await startDaemon(t);
  const root = tempRoot(t);
  const tls = join(d.dataDir, 'tls');
  const sh = (cmd) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8', cwd: root });
  const sign = (name) => {
    const r = sh(`openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=${name} ` +
      `-addext subjectAltName=DNS:${name} -keyout ${name}.key -out ${name}.csr 2>&1 && ` +
      `openssl x509 -req -in ${name}.csr -CA '${tls}/ca.pem' -CAkey '${tls}/ca.key' -set_serial 7 -days 1 ` +
      `-copy_extensions copy -out ${name}.pem 2>&1`);
    assert.equal(r.status, 0, r.stdout);
  };
  sign('demo.openai.localhost');
  const inside = sh(`openssl verify -CAfile '${tls}/ca.pem' -verify_hostname demo.openai.localhost demo.openai.localhost.pem 2>&1`);
  assert.equal(inside.status, 0, `a name the CA may sign for: ${inside.stdout}`);
  sign('example.com');
  const outside = sh(`openssl verify -CAfile '${tls}/ca.pem' -verify_hostname example.com example.com.pem 2>&1`);
  assert.equal(outside.status, 2, outside.stdout);
  assert.match(outside.stdout, /error 47 at 0 depth lookup: permitted subtree violation/);
});
