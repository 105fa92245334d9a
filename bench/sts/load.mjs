// A small closed-loop load generator for the token endpoint, for what wrk cannot do:
// requests whose body depends on the previous answer (a refresh token is spent by its
// use, so each chain posts the token the last answer carried). Every mode uses the
// same client code, keep-alive TLS agent and concurrency, so that their rates compare.
// Usage: node load.mjs MODE URL CONCURRENCY SECONDS BODY_OR_SEEDS_FILE
//   MODE cc|password: BODY is the form sent every time.
//   MODE refresh: the file holds one "client_id refresh_token" per line, one per chain;
//   each chain posts grant_type=refresh_token and continues with the token it gets back.
// Prints one JSON line: {"mode","requests","ok","seconds","per_second"}.
// TLS: the daemon's own CA from NODE_EXTRA_CA_CERTS (set by bench/sts/run).
import https from 'node:https';
import { readFileSync } from 'node:fs';

const [mode, url, conc, secs, arg] = process.argv.slice(2);
const n = Number(conc);
const deadline = Date.now() + Number(secs) * 1000;
const agent = new https.Agent({ keepAlive: true, maxSockets: n });
const u = new URL(url);

function post(body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let requests = 0;
let ok = 0;
let firstError = null;
const t0 = Date.now();
async function chain(i) {
  let seed = null;
  if (mode === 'refresh') {
    const line = readFileSync(arg, 'utf8').trim().split('\n')[i];
    const [clientId, rt] = line.split(' ');
    seed = { clientId, rt };
  }
  while (Date.now() < deadline) {
    const body = mode === 'refresh'
      ? `grant_type=refresh_token&client_id=${seed.clientId}&refresh_token=${encodeURIComponent(seed.rt)}`
      : arg;
    const r = await post(body);
    requests++;
    if (r.status === 200) {
      ok++;
      if (mode === 'refresh') seed.rt = JSON.parse(r.data).refresh_token;
    } else {
      if (!firstError) firstError = `${r.status} ${r.data.slice(0, 200)}`;
      if (mode === 'refresh') break; // the chain's token is gone
    }
  }
}
await Promise.all(Array.from({ length: n }, (_, i) => chain(i)));
const seconds = (Date.now() - t0) / 1000;
agent.destroy();
console.log(JSON.stringify({ mode, requests, ok, seconds, per_second: ok / seconds, first_error: firstError }));
