// Runs one of the interop clients (tests/interop/*-client.mjs) in a fresh Node process
// against daemon d, trusting d's CA and nothing else: the official clients see what they
// would see in production. env is added to the client's environment; the client prints
// one JSON line last, which is what this resolves to. A client that exits non-zero (or
// is still running after 30 s) fails the test with its output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export function runClient(d, clientPath, env) {
  return new Promise((resolve, reject) => {
    const e = { ...process.env, NODE_EXTRA_CA_CERTS: join(d.dataDir, 'tls', 'ca.pem'), ...env };
    delete e.NODE_TLS_REJECT_UNAUTHORIZED;
    delete e.AZURE_AUTHORITY_HOST;
    const p = spawn(process.execPath, [clientPath], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      assert.equal(code, 0, `client exited ${code}:\n${err}\n${out}`);
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

// Debian's own interpreter, where Debian's python3-msal is installed (scripts/bootstrap
// --test): not whatever python3 comes first on PATH.
export const PYTHON = process.env.KL_PYTHON || '/usr/bin/python3';

// Runs a Python interop client (tests/interop/*-client.py) the way runClient runs a Node
// one: env is added to the client's environment (the client is told where d's CA is by
// its own setting, as Python's libraries take it as an argument), the last line it prints
// is JSON and is what this resolves to; a non-zero exit or 30 s fails the test.
export function runPython(scriptPath, env) {
  return new Promise((resolve, reject) => {
    const e = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env };
    const p = spawn(PYTHON, [scriptPath], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      assert.equal(code, 0, `${scriptPath} exited ${code}:\n${err}\n${out}`);
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}
