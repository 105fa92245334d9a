// Network rules of accounts (publicNetworkAccess, networkAcls) end to end, as the
// leaked-key drill in docs/network-rules.md runs it: different loopback addresses
// (127.0.0.2, 127.0.0.3; all of 127/8 is local) are different callers.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ARM_API, Daemon, accountPath, onCleanup, startDaemon } from '../lib/harness.mjs';
import { ROLE, assign, createApp, tenantId } from '../lib/authz.mjs';

const FIREWALL = { error: { code: '403', message: 'Access denied due to Virtual Network/Firewall rules.' } };
const PUBLIC_OFF = { error: { code: '403', message: 'Public access is disabled. Please configure private endpoint.' } };

function patch(d, name, properties) {
  return d.admin('PATCH', `${accountPath(name)}?${ARM_API}`, { properties });
}

async function patchOk(d, name, properties) {
  const r = await patch(d, name, properties);
  assert.equal(r.status, 200, `PATCH ${JSON.stringify(properties)}: ${r.status} ${r.text}`);
  return r.json;
}

function assertServed(r, who) {
  assert.equal(r.status, 200, `${who}: expected 200, got ${r.status} ${r.text}`);
  assert.equal(r.json.object, 'chat.completion');
}

test('drill: only callers inside ipRules are served; a leaked key is useless outside', async (t) => {
  const d = await startDaemon(t);
  const { keys } = await d.setupAccount('demo');
  const inside = { localAddress: '127.0.0.2' };
  const outside = { localAddress: '127.0.0.3' };
  assertServed(await d.chat('demo', 'chat', keys.key1, 'before', outside), 'before the rules');

  const a = await patchOk(d, 'demo', { networkAcls: { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.2' }, { value: '10.0.0.0/8' }] } });
  assert.deepEqual(a.properties.networkAcls, { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.2' }, { value: '10.0.0.0/8' }], virtualNetworkRules: [] });
  const got = await d.admin('GET', `${accountPath('demo')}?${ARM_API}`);
  assert.deepEqual(got.json.properties.networkAcls, a.properties.networkAcls);

  assertServed(await d.chat('demo', 'chat', keys.key1, 'inside', inside), '127.0.0.2');
  const out = await d.chat('demo', 'chat', keys.key1, 'outside', outside);
  assert.equal(out.status, 403);
  assert.deepEqual(out.json, FIREWALL);
  // Checked before authentication: a wrong key from outside gets the same answer.
  const wrong = await d.chat('demo', 'chat', 'not-a-key', 'outside', outside);
  assert.deepEqual([wrong.status, wrong.json], [403, FIREWALL]);
  // A CIDR rule: 127.0.0.0/30 lets .3 in on the next request.
  await patchOk(d, 'demo', { networkAcls: { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.0/30' }] } });
  assertServed(await d.chat('demo', 'chat', keys.key1, 'now inside', outside), '127.0.0.3 in /30');
  // defaultAction Allow: the rules no longer matter.
  await patchOk(d, 'demo', { networkAcls: { defaultAction: 'Allow', ipRules: [] } });
  assertServed(await d.chat('demo', 'chat', keys.key2, 'allow', { localAddress: '127.0.0.9' }), 'Allow');
});

test('bearer tokens meet the same rules as keys: refused outside ipRules, served inside', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'netrules-app');
  const pw = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: { displayName: 'ci' } });
  assert.equal(pw.status, 200, pw.text);
  await assign(d, accountPath('demo'), app.servicePrincipalId, ROLE.openaiUser);
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, client_secret: pw.json.secretText, scope: 'https://cognitiveservices.azure.com/.default' });
  const tr = await d.request('POST', `/${tid}/oauth2/v2.0/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  assert.equal(tr.status, 200, tr.text);
  const bearer = { authorization: `Bearer ${tr.json.access_token}` };
  await patchOk(d, 'demo', { networkAcls: { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.2' }] } });
  assertServed(await d.chat('demo', 'chat', null, 'inside', { headers: bearer, localAddress: '127.0.0.2' }), 'token from 127.0.0.2');
  const out = await d.chat('demo', 'chat', null, 'outside', { headers: bearer, localAddress: '127.0.0.3' });
  assert.deepEqual([out.status, out.json], [403, FIREWALL]);
});

test('publicNetworkAccess Disabled: the same key works only through the private listener', async (t) => {
  const d = await startDaemon(t, { args: ['--private-listen', '127.0.0.1:0'] });
  assert.equal(d.privatePorts.length, 1, `ready line: ${JSON.stringify(d.ready)}`);
  const { keys } = await d.setupAccount('demo');
  await patchOk(d, 'demo', { publicNetworkAccess: 'Disabled' });
  const pub = await d.chat('demo', 'chat', keys.key1, 'public');
  assert.equal(pub.status, 403);
  assert.deepEqual(pub.json, PUBLIC_OFF);
  assertServed(await d.chat('demo', 'chat', keys.key1, 'private', { port: d.privatePorts[0] }), 'private listener');
  // The private listener ignores the public firewall too (Azure's private endpoints).
  await patchOk(d, 'demo', { networkAcls: { defaultAction: 'Deny', ipRules: [] } });
  assertServed(await d.chat('demo', 'chat', keys.key1, 'private', { port: d.privatePorts[0] }), 'private, Deny');
  await patchOk(d, 'demo', { publicNetworkAccess: 'Enabled', networkAcls: null });
  assertServed(await d.chat('demo', 'chat', keys.key1, 'public again'), 'public again');
});

test('X-Forwarded-For is ignored without --trusted-proxy', async (t) => {
  const d = await startDaemon(t);
  const { keys } = await d.setupAccount('demo');
  await patchOk(d, 'demo', { networkAcls: { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.2' }] } });
  for (const xff of ['127.0.0.2', '10.0.0.1, 127.0.0.2', '127.0.0.2, 127.0.0.2']) {
    const r = await d.chat('demo', 'chat', keys.key1, 'spoof', { localAddress: '127.0.0.3', headers: { 'x-forwarded-for': xff } });
    assert.deepEqual([r.status, r.json], [403, FIREWALL], `XFF ${xff} let 127.0.0.3 in`);
  }
  // And it takes nothing away from a caller who is inside.
  assertServed(await d.chat('demo', 'chat', keys.key1, 'inside', { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '8.8.8.8' } }), 'inside with XFF');
});

test('with --trusted-proxy only the right-most untrusted X-Forwarded-For hop counts', async (t) => {
  // 127.0.0.5 and 127.0.0.6 are our proxies; the caller behind them is what counts.
  const d = await startDaemon(t, { args: ['--trusted-proxy', '127.0.0.5', '--trusted-proxy', '127.0.0.6/32'] });
  const { keys } = await d.setupAccount('demo');
  await patchOk(d, 'demo', { networkAcls: { defaultAction: 'Deny', ipRules: [{ value: '192.0.2.0/24' }, { value: '2001:db8::/32' }] } });
  const viaProxy = (xff) => d.chat('demo', 'chat', keys.key1, 'hop', { localAddress: '127.0.0.5', headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });
  const cases = [
    ['192.0.2.7', 200],                      // the client as the proxy saw it
    ['192.0.2.7, 127.0.0.6', 200],           // through two of our proxies
    ['2001:db8::5', 200],
    ['198.51.100.1', 403],                   // outside
    ['192.0.2.7, 198.51.100.1', 403],        // a spoofed left part does not count
    ['198.51.100.1, 192.0.2.7', 200],        // ...whatever it says
    ['192.0.2.7, not-an-address', 403],      // malformed: unknown caller
    ['192.0.2.7,,', 403],
    [undefined, 403],                        // the proxy itself is the caller
  ];
  for (const [xff, want] of cases) {
    const r = await viaProxy(xff);
    assert.equal(r.status, want, `XFF ${xff}: ${r.status} ${r.text}`);
    if (want === 403) assert.deepEqual(r.json, FIREWALL);
  }
  // Not from a trusted proxy: X-Forwarded-For is ignored again.
  const direct = await d.chat('demo', 'chat', keys.key1, 'direct', { localAddress: '127.0.0.7', headers: { 'x-forwarded-for': '192.0.2.7' } });
  assert.deepEqual([direct.status, direct.json], [403, FIREWALL]);
});

test('malformed rules are refused at write time and nothing changes', async (t) => {
  const d = await startDaemon(t);
  const { keys } = await d.setupAccount('demo');
  for (const value of ['10.0.0.0/33', '10.0.0', '::1/129', 'fe80::1%lo', '010.0.0.1', 'example.com', '10.0.0.0/8 ']) {
    const r = await patch(d, 'demo', { networkAcls: { defaultAction: 'Deny', ipRules: [{ value }] } });
    assert.equal(r.status, 400, `${value}: ${r.status} ${r.text}`);
    assert.equal(r.json.error.code, 'InvalidValuesForRequestParameters');
    assert.match(r.json.error.message, /properties\.networkAcls\.ipRules\[0\]\.value/);
  }
  const bad = await patch(d, 'demo', { networkAcls: { defaultAction: 'Block' } });
  assert.equal(bad.status, 400);
  const got = await d.admin('GET', `${accountPath('demo')}?${ARM_API}`);
  assert.equal(got.json.properties.networkAcls, undefined);
  assertServed(await d.chat('demo', 'chat', keys.key1, 'still open', { localAddress: '127.0.0.3' }), 'after refusals');
});

test('keyless account update sets the same rules from the command line', async (t) => {
  const d = await startDaemon(t);
  const { keys } = await d.setupAccount('demo');
  const run = async (args) => {
    const r = await d.cli(args);
    assert.equal(r.code, 0, `keyless ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    return r;
  };
  const shown = await run(['account', 'update', 'demo', '--default-action', 'Deny', '--allow-ip', '127.0.0.2', '--allow-ip', '2001:db8::/32']);
  assert.match(shown.stdout, /^DEFAULT-ACTION\s+Deny$/m);
  await run(['account', 'update', 'demo', '--allow-ip', '127.0.0.2']); // already there: added once
  const got = await d.admin('GET', `${accountPath('demo')}?${ARM_API}`);
  assert.deepEqual(got.json.properties.networkAcls.ipRules, [{ value: '127.0.0.2' }, { value: '2001:db8::/32' }]);
  assert.equal(got.json.properties.disableLocalAuth, false, 'update changed what it was not asked to');
  assertServed(await d.chat('demo', 'chat', keys.key1, 'in', { localAddress: '127.0.0.2' }), '127.0.0.2');
  assert.deepEqual((await d.chat('demo', 'chat', keys.key1, 'out', { localAddress: '127.0.0.3' })).json, FIREWALL);
  await run(['account', 'update', 'demo', '--public-network-access', 'Disabled']);
  assert.deepEqual((await d.chat('demo', 'chat', keys.key1, 'in', { localAddress: '127.0.0.2' })).json, PUBLIC_OFF);
  const bad = await d.cli(['account', 'update', 'demo', '--allow-ip', '10.0.0.0/33']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /InvalidValuesForRequestParameters/);
});

test('keylessd refuses a fifth private listener and a malformed trusted proxy at start', async (t) => {
  const cases = [
    [['--private-listen', '127.0.0.1:0', '--private-listen', '127.0.0.1:0', '--private-listen', '127.0.0.1:0',
      '--private-listen', '127.0.0.1:0', '--private-listen', '127.0.0.1:0'], /--private-listen: at most 4 listeners/],
    [['--trusted-proxy', '10.0.0.0/33'], /--trusted-proxy: '10.0.0.0\/33' is not an address or CIDR/],
    [['--private-listen', 'nowhere'], /--private-listen: cannot listen/],
  ];
  for (const [args, why] of cases) {
    const d = new Daemon({ args });
    onCleanup(t, () => d.cleanup());
    await assert.rejects(d.start(), /exited \(code 2/, args.join(' '));
    assert.match(d.stderr, why);
  }
  // Four are fine, each with its own port.
  const d = await startDaemon(t, { args: Array(4).fill(['--private-listen', '127.0.0.1:0']).flat() });
  assert.equal(new Set(d.privatePorts).size, 4);
});
