// When each API key was last used: kept in memory on the request path, written to the
// store in batches (and at a clean stop), shown by listKeyUsage and `keyless keys list`,
// reset by regeneration; and each key's age as a Prometheus gauge.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ARM_API, accountPath, startDaemon } from '../lib/harness.mjs';

const dayOf = (ms) => new Date(ms - (ms % 86400000)).toISOString();

async function usage(d, name = 'demo') {
  const r = await d.admin('GET', `${accountPath(name)}/listKeyUsage?${ARM_API}`);
  assert.equal(r.status, 200, r.text);
  const by = Object.fromEntries(r.json.value.map((u) => [u.keyName, u]));
  assert.deepEqual(Object.keys(by).sort(), ['Key1', 'Key2']);
  return by;
}

test('a call with Key1 sets its lastUsed and not Key2\'s; kept across a restart; regenerate resets', async (t) => {
  const d = await startDaemon(t);
  const { keys } = await d.setupAccount('demo');
  const u0 = await usage(d);
  assert.equal(u0.Key1.lastUsed, null);
  assert.equal(u0.Key2.lastUsed, null);
  assert.match(u0.Key1.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);

  const before = Date.now();
  const r = await d.chat('demo', 'chat', keys.key1, 'use key1');
  assert.equal(r.status, 200, r.text);
  const after = Date.now();
  const days = [dayOf(before), dayOf(after)];
  const u1 = await usage(d);
  assert.ok(days.includes(u1.Key1.lastUsed), `Key1 lastUsed ${u1.Key1.lastUsed}, expected one of ${days}`);
  assert.equal(u1.Key2.lastUsed, null);
  // A refused key (wrong account) marks nothing.
  const { keys: other } = await d.setupAccount('other');
  assert.equal((await d.chat('demo', 'chat', other.key2, 'wrong')).status, 401);
  assert.equal((await usage(d, 'other')).Key2.lastUsed, null);

  // The CLI shows AGE and LAST-USED.
  const table = await d.cli(['keys', 'list', 'demo']);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[0], /^KEY\s+VALUE\s+AGE\s+LAST-USED\s*$/);
  assert.match(lines[1], new RegExp(`^key1\\s+${keys.key1}\\s+\\d+[smhd]\\s+${u1.Key1.lastUsed.slice(0, 10)}\\s*$`));
  assert.match(lines[2], new RegExp(`^key2\\s+${keys.key2}\\s+\\d+[smhd]\\s+never\\s*$`));
  // --older-than: a day-old key is none of these.
  const old = await d.cli(['-o', 'json', 'keys', 'list', 'demo', '--older-than', '1d']);
  assert.equal(old.code, 0, old.stderr);
  assert.deepEqual(old.json, {});
  const all = await d.cli(['-o', 'json', 'keys', 'list', 'demo']);
  assert.deepEqual(all.json, keys);

  // A clean stop writes what is in memory; after the restart it comes from the store.
  await d.restart();
  const u2 = await usage(d);
  assert.equal(u2.Key1.lastUsed, u1.Key1.lastUsed);
  assert.equal(u2.Key2.lastUsed, null);
  assert.equal(u2.Key1.createdAt, u1.Key1.createdAt);

  // Regenerating Key1 resets it; Key2 is untouched.
  const rg = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName: 'Key1' });
  assert.equal(rg.status, 200, rg.text);
  const u3 = await usage(d);
  assert.equal(u3.Key1.lastUsed, null);
  assert.equal(u3.Key2.lastUsed, null);
  // And stays reset after another restart (the old key's usage is not written to it).
  await d.restart();
  assert.equal((await usage(d)).Key1.lastUsed, null);
});

test('keyless_api_key_age_seconds: one gauge per account and key', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('demo');
  const m = await d.admin('GET', '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.text, /^# TYPE keyless_api_key_age_seconds gauge$/m);
  for (const slot of ['key1', 'key2'])
    assert.match(m.text, new RegExp(`^keyless_api_key_age_seconds\\{account="demo",slot="${slot}"\\} \\d+$`, 'm'));
});
