// Durability across a power cut. keylessd runs with the crashsim shim preloaded
// (tests/crashsim/crashsim.c, see docs/testing.md): when the test pulls the plug, the
// daemon is killed with SIGKILL and every write it made since the last fsync/fdatasync
// of its file is undone, as a disk would after losing power. A kill -9 alone leaves the
// page cache intact and so cannot tell "committed" from "on disk"; this can. Every write
// acknowledged before the cut must be there after a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { ARM_API, KL_CRASHSIM, accountPath, startDaemon, writeStormAndCrash } from '../lib/harness.mjs';
import { ROLE, allAssignments, createApp, putAssignment, newGuid, rgScope, sortedNames } from '../lib/authz.mjs';

// The shim must really be in the daemon, or the test proves nothing.
function assertShimLoaded(d) {
  const maps = readFileSync(`/proc/${d.proc.pid}/maps`, 'utf8');
  assert.ok(maps.includes(KL_CRASHSIM), `${KL_CRASHSIM} is not mapped into keylessd`);
}

const model = (i) => ({ properties: { model: { format: 'OpenAI', name: `m${i}`, version: '1' } } });
const depName = (i) => `dep-${String(i).padStart(3, '0')}`;

test('a power cut during concurrent deployment writes loses no acknowledged write', async (t) => {
  const d = await startDaemon(t, { crashsim: true });
  assertShimLoaded(d);
  const keys = (await d.setupAccount('demo', { deployments: {} })).keys;
  const total = 200;
  const storm = await writeStormAndCrash({
    total,
    concurrency: 12,
    minInFlight: 8,
    killAfterAcks: 20 + Math.floor(Math.random() * 120),
    write: (i) => d.putDeployment('demo', depName(i), model(i)),
    ok: (r) => r.status === 201,
    crash: () => d.powerCut(),
  });
  const undone = storm.crashResult.map((u) => `${u.path.split('/').pop()}: ${u.records} overwrites undone, ${u.sizeBefore} -> ${u.syncedSize} bytes`);
  t.diagnostic(`power cut with ${storm.inFlightAtCrash} writes in flight, ${storm.acked.length} of ${storm.sent} acknowledged; ${undone.join('; ') || 'nothing unsynced'}`);
  assert.ok(storm.inFlightAtCrash >= 8, `${storm.inFlightAtCrash} writes in flight at the cut`);

  await d.start();
  const list = await d.admin('GET', `${accountPath('demo')}/deployments?${ARM_API}`);
  assert.equal(list.status, 200, list.text);
  const present = new Set(list.json.value.map((x) => x.name));
  const lost = storm.acked.map(depName).filter((n) => !present.has(n));
  assert.deepEqual(lost, [], 'acknowledged deployments lost by a power cut');
  for (const dep of list.json.value) assert.equal(dep.properties.model.name, `m${Number(dep.name.slice(4))}`);
  assert.deepEqual((await d.listKeys('demo')).json, keys);
});

test('a power cut during concurrent key regenerations and role assignments loses no acknowledged write', async (t) => {
  const d = await startDaemon(t, { crashsim: true });
  assertShimLoaded(d);
  const accounts = 40;
  for (let a = 0; a < accounts; a++) await d.setupAccount(`acct-${a}`, { deployments: {} });
  const app = await createApp(d, 'durable-app');
  const guids = Array.from({ length: accounts }, () => newGuid());
  // Even writes regenerate Key1 of account i/2 (the answer holds the new key); odd ones
  // create role assignment guids[(i-1)/2].
  const newKeys = new Map();
  const storm = await writeStormAndCrash({
    total: 2 * accounts,
    concurrency: 12,
    minInFlight: 8,
    killAfterAcks: 10 + Math.floor(Math.random() * 50),
    write: async (i) => {
      if (i % 2 === 1) return putAssignment(d, rgScope(`durable-rg-${(i - 1) / 2}`), app.servicePrincipalId, ROLE.reader, { name: guids[(i - 1) / 2] });
      const r = await d.admin('POST', `${accountPath(`acct-${i / 2}`)}/regenerateKey?${ARM_API}`, { keyName: 'Key1' });
      if (r.status === 200) newKeys.set(i / 2, r.json.key1);
      return r;
    },
    ok: (r) => r.status === 200 || r.status === 201,
    crash: () => d.powerCut(),
  });
  const undone = storm.crashResult.map((u) => `${u.path.split('/').pop()}: ${u.records} overwrites undone, ${u.sizeBefore} -> ${u.syncedSize} bytes`);
  t.diagnostic(`power cut with ${storm.inFlightAtCrash} writes in flight, ${storm.acked.length} of ${storm.sent} acknowledged; ${undone.join('; ') || 'nothing unsynced'}`);
  assert.ok(storm.inFlightAtCrash >= 8, `${storm.inFlightAtCrash} writes in flight at the cut`);

  await d.start();
  const staleKeys = [];
  for (const i of storm.acked.filter((x) => x % 2 === 0)) {
    const k = await d.listKeys(`acct-${i / 2}`);
    assert.equal(k.status, 200, k.text);
    if (k.json.key1 !== newKeys.get(i / 2)) staleKeys.push(`acct-${i / 2}`);
  }
  assert.deepEqual(staleKeys, [], 'acknowledged key regenerations lost by a power cut');
  const names = sortedNames(await allAssignments(d));
  const lost = storm.acked.filter((x) => x % 2 === 1).map((x) => guids[(x - 1) / 2]).filter((n) => !names.includes(n));
  assert.deepEqual(lost, [], 'acknowledged role assignments lost by a power cut');
});
