// Driven by bench/revocation/run (which builds, and starts PostgreSQL as KL_PG).
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';

import { REPO_ROOT, SUB, accountPath, startDaemon } from '../../tests/lib/harness.mjs';
import { ROLE, asPrincipal, putAssignment, deleteAssignment, createApp } from '../../tests/lib/authz.mjs';

const run = promisify(execFile);
const PG = process.env.KL_PG;
const BUILD = process.env.KL_BUILD_DIR;
const CHANGES = Number(process.env.CHANGES || 100);
const ASSIGNMENTS = Number(process.env.ASSIGNMENTS || 100000);
const SCRIPT = join(REPO_ROOT, 'tests', 'lib', 'pg-server');
const SCOPES = 10; // assignments per seeded principal

function psql(db, sql) {
  return new Promise((resolveP, reject) => {
    const p = spawn(SCRIPT, ['psql', PG, db], { stdio: ['pipe', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolveP() : reject(new Error(`psql exited ${code}`))));
    p.stdin.end(sql);
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (ns) => Number(ns) / 1e6;
const fmt = (x) => x.toFixed(2).padStart(9);

async function main() {
  const db = `bench_${randomBytes(4).toString('hex')}`;
  await run(SCRIPT, ['createdb', PG, db]);
  const url = `postgres://keyless@${PG}/${db}?sslmode=disable`;
  const env = { KEYLESS_KEK: randomBytes(32).toString('base64') };
  const a = await startDaemon(null, { args: ['--store', url, '--access-log', 'off'], env });
  const principals = Math.ceil(ASSIGNMENTS / SCOPES);
  console.log(`== seeding ${principals * SCOPES} role assignments over ${principals} principals`);
  await psql(db, `
    INSERT INTO principals (object_id, type, display_name, app_id, application_pk, account_enabled, created_at)
      SELECT '00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'), 'User', 'bench ' || i, NULL, NULL, 1, 0
      FROM generate_series(1, ${principals}) i;
    INSERT INTO role_assignments (name, scope, scope_lower, principal_pk, role_id, description,
                                  created_at, updated_at, created_by, updated_by)
      SELECT '10000000-0000-4000-8000-' || lpad(to_hex(p.pk * 16 + g), 12, '0'),
             '/subscriptions/${SUB}/resourceGroups/rg' || g, '/subscriptions/${SUB}/resourcegroups/rg' || g,
             p.pk, '${ROLE.reader}', NULL, 0, 0, NULL, NULL
      FROM principals p, generate_series(0, ${SCOPES - 1}) g
      WHERE p.object_id LIKE '00000000-0000-4000-8000-%';
    UPDATE store_generation SET generation = generation + 1 WHERE id = 1;
    NOTIFY keyless_store;`);
  const b = await startDaemon(null, { args: ['--store', url, '--access-log', 'off'], env });
  await a.setupAccount('bench', { deployments: {} });
  const sp = (await createApp(a, 'bench-reader')).servicePrincipalId;
  const acct = accountPath('bench');
  const read = (d) => d.admin('GET', `${acct}?api-version=2024-10-01`, undefined, { headers: asPrincipal(sp) });
  const waitStatus = async (d, status) => {
    for (;;) if ((await read(d)).status === status) return process.hrtime.bigint();
  };

  const write = [], onA = [], onB = [];
  console.log(`== ${CHANGES} removals`);
  for (let i = 0; i < CHANGES; i++) {
    const name = randomUUID();
    const put = await putAssignment(a, acct, sp, ROLE.reader, { name });
    if (put.status !== 201) throw new Error(`PUT assignment: ${put.status} ${put.text}`);
    await waitStatus(b, 200);
    const t0 = process.hrtime.bigint();
    const del = await deleteAssignment(a, acct, name);
    const ack = process.hrtime.bigint();
    if (del.status !== 200) throw new Error(`DELETE assignment: ${del.status} ${del.text}`);
    const [ta, tb] = await Promise.all([waitStatus(a, 403), waitStatus(b, 403)]);
    write.push(ms(ack - t0));
    onA.push(ms(ta - ack));
    onB.push(ms(tb - ack));
  }
  const { stdout } = await run(join(BUILD, 'bench_rebuild'), [url]);
  const [rebuildMedian, rebuildMax, deriveMedian, deriveMax, applyMedian, applyMax] = stdout.trim().split(' ').map(Number);

  console.log(`\nrole assignments in the store: ${principals * SCOPES + 1}`);
  console.log('                                        p50 (ms)  p99 (ms)');
  console.log(`write round trip (request -> ack)      ${fmt(pct(write, 50))} ${fmt(pct(write, 99))}`);
  console.log(`ack -> refused on the writing node     ${fmt(pct(onA, 50))} ${fmt(pct(onA, 99))}`);
  console.log(`ack -> refused on the other node       ${fmt(pct(onB, 50))} ${fmt(pct(onB, 99))}`);
  console.log(`full snapshot rebuild (bench_rebuild)  ${fmt(rebuildMedian)} ${fmt(rebuildMax)}  (median, max of 7)`);
  const us = (x) => `${(x * 1000).toFixed(0)} us`.padStart(9);
  console.log(`one derive of the RBAC index           ${us(deriveMedian)} ${us(deriveMax)}  (median, max of 7)`);
  console.log(`incremental apply after a write        ${fmt(applyMedian)} ${fmt(applyMax)}  (median, max of 7; kl_policy_apply)`);
  await b.cleanup();
  await a.cleanup();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
