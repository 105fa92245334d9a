// The IMDS-style identity endpoint (GET /metadata/identity/oauth2/token on the IMDS
// listener) of a real keylessd configured as VM vm1: Azure's request rules (Metadata:
// true, no proxies, GET only), its default-identity rules and selectors, its exact bodies
// (protocols.md 1.2-1.3), the token's claims, the token cache, and the hostile inputs of
// issue 9. Identities and the VM are made through ARM on the admin socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { accountPath, sleep, startDaemon, Daemon, rawExchange } from '../lib/harness.mjs';
import { ROLE, assign } from '../lib/authz.mjs';
import {
  COG,
  IMDS_ERR,
  IMDS_PATH,
  claims,
  deleteUami,
  header,
  imdsGet,
  imdsToken,
  putUami,
  putVm,
  uamiId,
  vmId,
} from '../lib/identity-endpoints.mjs';

const vmDaemon = (t, args = []) => startDaemon(t, { args: ['--vm', 'vm1', ...args] });

test('the caller must send Metadata: true exactly, no forwarding header, and GET', async (t) => {
  const d = await vmDaemon(t);
  await putVm(d, 'vm1', true);
  // DefaultAzureCredential's probe: no query, no Metadata header.
  let r = await imdsGet(d, '', { headers: {} });
  assert.equal(r.status, 400);
  assert.equal(r.text, IMDS_ERR.metadata);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(r.headers['content-length'], '88');
  for (const h of [{}, { Metadata: 'false' }, { Metadata: 'True' }, { Metadata: 'true ' }, { Metadata: '' }]) {
    r = await imdsToken(d, {}, { headers: h });
    assert.equal(r.status, 400, JSON.stringify(h));
    assert.equal(r.text, IMDS_ERR.metadata, JSON.stringify(h));
  }
  // Two Metadata headers are not one "true".
  const raw = await rawExchange(
    { port: d.imdsPort, useTls: false },
    [`GET ${IMDS_PATH}?api-version=2018-02-01&resource=${COG} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nMetadata: true\r\nConnection: close\r\n\r\n`],
    { untilClose: true },
  );
  assert.equal(raw.status, 400, JSON.stringify(raw));
  assert.equal(raw.body.toString(), IMDS_ERR.metadata);
  // Through a proxy: refused whatever the header says.
  for (const h of [{ 'X-Forwarded-For': '10.0.0.1' }, { 'X-Forwarded-For': '127.0.0.1' }, { Forwarded: 'for=10.0.0.1' }]) {
    r = await imdsToken(d, {}, { headers: { Metadata: 'true', ...h } });
    assert.equal(r.status, 400, JSON.stringify(h));
    assert.equal(r.json.error, 'invalid_request');
    assert.match(r.json.error_description, /X-Forwarded-For/);
  }
  for (const m of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
    r = await imdsToken(d, {}, { method: m });
    assert.equal(r.status, 405, m);
    assert.equal(r.headers.allow, 'GET', m);
  }
  r = await imdsGet(d, '', { path: '/metadata/instance' });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'NotFound');
  // And the good request works, with MSAL's trailing slash and a doubled one.
  for (const path of [IMDS_PATH, `${IMDS_PATH}/`, `/${IMDS_PATH}/`]) {
    r = await imdsToken(d, {}, { path });
    assert.equal(r.status, 200, `${path}: ${r.text}`);
  }
});

test('success body: Azure fields, numbers as strings, a v1 token with xms_mirid and idtyp', async (t) => {
  const d = await vmDaemon(t);
  const vm = await putVm(d, 'vm1', true);
  const before = Math.floor(Date.now() / 1000);
  const r = await imdsToken(d);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  assert.deepEqual(Object.keys(r.json), ['access_token', 'client_id', 'expires_in', 'expires_on', 'ext_expires_in', 'not_before', 'resource', 'token_type']);
  for (const k of Object.keys(r.json)) assert.equal(typeof r.json[k], 'string', k);
  assert.equal(r.json.token_type, 'Bearer');
  assert.equal(r.json.resource, COG);
  assert.equal(r.json.expires_in, '86400');
  const exp = Number(r.json.expires_on);
  assert.ok(exp >= before + 86400 && exp <= Math.floor(Date.now() / 1000) + 86400, r.text);
  assert.equal(Number(r.json.not_before), exp - 86400);
  const c = claims(r.json.access_token);
  const tid = c.tid;
  assert.equal(c.aud, COG);
  assert.equal(c.iss, `https://sts.windows.net/${tid}/`);
  assert.equal(c.ver, '1.0');
  assert.equal(c.idtyp, 'app');
  assert.equal(c.appidacr, '2');
  assert.equal(c.oid, vm.identity.principalId);
  assert.equal(c.sub, vm.identity.principalId);
  assert.equal(c.appid, r.json.client_id);
  assert.equal(c.exp, exp);
  // The system-assigned identity's xms_mirid is its host, with Azure's lower-case segment.
  assert.equal(c.xms_mirid, vmId('vm1').replace('/resourceGroups/', '/resourcegroups/'));
  const h = header(r.json.access_token);
  assert.equal(h.alg, 'RS256');
  assert.equal(h.kid, h.x5t);
});

test('default identity: system-assigned, else the only user-assigned, else Multiple; none: Identity not found', async (t) => {
  const d = await vmDaemon(t);
  // No VM of that name yet.
  let r = await imdsToken(d);
  assert.equal(r.status, 400);
  assert.equal(r.text, IMDS_ERR.notFound);
  assert.equal(r.headers['content-length'], '68');
  const a = await putUami(d, 'ua-a');
  const b = await putUami(d, 'ua-b');
  const vm = await putVm(d, 'vm1', true, [a.id, b.id]);
  r = await imdsToken(d);
  assert.equal(r.status, 200, r.text);
  assert.equal(claims(r.json.access_token).oid, vm.identity.principalId);
  await putVm(d, 'vm1', false, [a.id]);
  r = await imdsToken(d);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.client_id, a.clientId);
  assert.equal(claims(r.json.access_token).xms_mirid, uamiId('ua-a').replace('/resourceGroups/', '/resourcegroups/'));
  await putVm(d, 'vm1', false, [a.id, b.id]);
  r = await imdsToken(d);
  assert.equal(r.status, 400);
  assert.equal(r.text, IMDS_ERR.multiple);
  assert.equal(r.headers['content-length'], '168');
  await putVm(d, 'vm1', false, []);
  r = await imdsToken(d);
  assert.equal(r.status, 400);
  assert.equal(r.text, IMDS_ERR.notFound);
});

test('selectors: client_id, object_id, msi_res_id and mi_res_id; at most one; unknown values are Identity not found', async (t) => {
  const d = await vmDaemon(t);
  const a = await putUami(d, 'ua-a');
  const b = await putUami(d, 'ua-b');
  const other = await putUami(d, 'not-on-this-vm');
  const vm = await putVm(d, 'vm1', true, [a.id, b.id]);
  const cases = [
    [{ client_id: b.clientId }, b.principalId],
    [{ client_id: b.clientId.toUpperCase() }, b.principalId],
    [{ object_id: a.principalId }, a.principalId],
    [{ msi_res_id: uamiId('ua-b') }, b.principalId],
    [{ mi_res_id: uamiId('ua-a').toLowerCase() }, a.principalId],
    [{ object_id: vm.identity.principalId }, vm.identity.principalId],
  ];
  for (const [q, oid] of cases) {
    const r = await imdsToken(d, q);
    assert.equal(r.status, 200, `${JSON.stringify(q)}: ${r.text}`);
    assert.equal(claims(r.json.access_token).oid, oid, JSON.stringify(q));
  }
  const unknown = [
    { client_id: other.clientId },
    { object_id: other.principalId },
    { msi_res_id: uamiId('not-on-this-vm') },
    { msi_res_id: vmId('vm1') }, // the host's id never names its system-assigned identity
    { client_id: a.principalId }, // an object id is not a client id
    { client_id: '00000000-0000-0000-0000-000000000000' },
    { client_id: '' },
    { client_id: 'not-a-guid' },
  ];
  for (const q of unknown) {
    const r = await imdsToken(d, q);
    assert.equal(r.status, 400, JSON.stringify(q));
    assert.equal(r.text, IMDS_ERR.notFound, JSON.stringify(q));
  }
  for (const q of [{ client_id: a.clientId, object_id: a.principalId }, { msi_res_id: a.id, mi_res_id: a.id }]) {
    const r = await imdsToken(d, q);
    assert.equal(r.status, 400, JSON.stringify(q));
    assert.equal(r.json.error, 'invalid_request');
    assert.match(r.json.error_description, /Only one of/);
  }
});

test('resource: known audiences only (Azure invalid_resource), bounded, and no encoding tricks', async (t) => {
  const d = await vmDaemon(t);
  await putVm(d, 'vm1', true);
  const tid = claims((await imdsToken(d)).json.access_token).tid;
  for (const res of ['https://management.azure.com/', 'https://management.core.windows.net/', 'https://graph.microsoft.com', COG]) {
    const r = await imdsToken(d, { resource: res });
    assert.equal(r.status, 200, `${res}: ${r.text}`);
    assert.equal(r.json.resource, res);
    assert.equal(claims(r.json.access_token).aud, res);
  }
  // Case variants are one audience in one spelling (the caller's trailing slash kept),
  // so they share the cached token instead of costing a signature each.
  const plain = await imdsToken(d);
  for (const res of ['HTTPS://COGNITIVESERVICES.AZURE.COM', 'https://CognitiveServices.Azure.com']) {
    const r = await imdsToken(d, { resource: res });
    assert.equal(r.status, 200, `${res}: ${r.text}`);
    assert.equal(r.json.resource, COG);
    assert.equal(r.json.access_token, plain.json.access_token);
  }
  const slashed = await imdsToken(d, { resource: 'HTTPS://COGNITIVESERVICES.AZURE.COM/' });
  assert.equal(claims(slashed.json.access_token).aud, `${COG}/`);
  let r = await imdsToken(d, { resource: 'https://vault.azure.net' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_resource');
  assert.equal(
    r.json.error_description,
    `AADSTS500011: The resource principal named https://vault.azure.net was not found in the tenant named ${tid}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
  );
  // Double-encoded: %252F decodes once to %2F, which is not a known resource.
  r = await imdsGet(d, 'api-version=2018-02-01&resource=https%3A%252F%252Fcognitiveservices.azure.com');
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_resource');
  // Missing and empty.
  r = await imdsGet(d, 'api-version=2018-02-01');
  assert.equal(r.status, 400);
  assert.equal(r.json.error_description, "Required query variable 'resource' is missing");
  r = await imdsGet(d, { resource: COG });
  assert.equal(r.status, 400);
  assert.equal(r.json.error_description, "Required query variable 'api-version' is missing");
  r = await imdsGet(d, { 'api-version': '2017-01-01', resource: COG });
  assert.equal(r.status, 400);
  assert.match(r.json.error_description, /api-version/);
  // Twice, with a different value: which one a proxy would have read is unknowable.
  r = await imdsGet(d, `api-version=2018-02-01&resource=${encodeURIComponent(COG)}&resource=https%3A%2F%2Fgraph.microsoft.com`);
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_request');
  // Header injection: CR LF in the resource never reaches a header or the token.
  for (const q of [`resource=${encodeURIComponent(COG)}%0D%0ASet-Cookie:%20x=1`, `resource=${encodeURIComponent(COG)}%0ASet-Cookie:%20x=1`, 'resource=%00']) {
    r = await imdsGet(d, `api-version=2018-02-01&${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error, 'invalid_request', q);
    assert.equal(r.headers['set-cookie'], undefined);
  }
  // 600 bytes: our own limit (KL_MAX_MI_RESOURCE); 10 KB: the server's request line limit.
  r = await imdsToken(d, { resource: `https://${'a'.repeat(600)}` });
  assert.equal(r.status, 400);
  assert.equal(r.json.error_description, "The query variable 'resource' is invalid");
  r = await imdsToken(d, { resource: `https://${'a'.repeat(10 * 1024)}` });
  assert.equal(r.status, 414);
  assert.deepEqual(r.json, { error: 'invalid_request', error_description: 'The request URI is too long.' }, 'in the endpoint\'s own shape');
  // The daemon is still fine.
  assert.equal((await imdsToken(d)).status, 200);
});

test('token cache: the same token with a shrinking expires_in; never for a detached or deleted identity, nor under a revoked key', async (t) => {
  const d = await vmDaemon(t);
  const a = await putUami(d, 'ua-a');
  await putVm(d, 'vm1', true, [a.id]);
  const first = await imdsToken(d, { client_id: a.clientId });
  assert.equal(first.status, 200);
  const again = await imdsToken(d, { client_id: a.clientId });
  assert.equal(again.json.access_token, first.json.access_token);
  assert.equal(again.json.expires_on, first.json.expires_on);
  assert.ok(Number(again.json.expires_in) <= Number(first.json.expires_in));
  // By resource id: the same identity and resource, so the same token.
  const byRes = await imdsToken(d, { msi_res_id: a.id });
  assert.equal(byRes.json.access_token, first.json.access_token);
  // Another resource, another identity: other tokens.
  const arm = await imdsToken(d, { client_id: a.clientId, resource: 'https://management.azure.com/' });
  assert.notEqual(arm.json.access_token, first.json.access_token);
  const sys = await imdsToken(d);
  assert.notEqual(sys.json.access_token, first.json.access_token);
  // A signing key revoked: the cached token is never handed out again.
  const rot = await d.cli(['signing-key', 'rotate', '--revoke-previous']);
  assert.equal(rot.code, 0, rot.stderr);
  const afterRotate = await imdsToken(d, { client_id: a.clientId });
  assert.equal(afterRotate.status, 200);
  assert.notEqual(afterRotate.json.access_token, first.json.access_token);
  assert.notEqual(header(afterRotate.json.access_token).kid, header(first.json.access_token).kid);
  // Detached: not found at once, cache or not.
  await putVm(d, 'vm1', true, []);
  let r = await imdsToken(d, { client_id: a.clientId });
  assert.equal(r.status, 400);
  assert.equal(r.text, IMDS_ERR.notFound);
  // Attached again, then the identity deleted: not found.
  await putVm(d, 'vm1', true, [a.id]);
  assert.equal((await imdsToken(d, { client_id: a.clientId })).status, 200);
  await deleteUami(d, 'ua-a');
  r = await imdsToken(d, { client_id: a.clientId });
  assert.equal(r.status, 400);
  assert.equal(r.text, IMDS_ERR.notFound);
  // The system-assigned identity disabled and enabled again is a new principal: a new token.
  await putVm(d, 'vm1', false, []);
  const vm2 = await putVm(d, 'vm1', true, []);
  r = await imdsToken(d);
  assert.equal(r.status, 200);
  assert.notEqual(r.json.access_token, sys.json.access_token);
  assert.equal(claims(r.json.access_token).oid, vm2.identity.principalId);
});

test('--imds-listen: loopback or 169.254.169.254:80; any other address needs --imds-listen-unsafe on', async (t) => {
  const d = new Daemon({ args: ['--imds-listen', '0.0.0.0:0'] });
  t.after(() => d.cleanup());
  await assert.rejects(d.start(), /imds-listen must be a loopback address or 169\.254\.169\.254:80/);
  const ok = new Daemon({ args: ['--imds-listen', '0.0.0.0:0', '--imds-listen-unsafe', 'on'] });
  t.after(() => ok.cleanup());
  await ok.start();
  assert.match(ok.stderr, /"event":"imds_listen_unsafe"/);
  await ok.stop();
  // --vm must be a name a VM can have.
  const badVm = new Daemon({ args: ['--vm', 'no/such name'] });
  t.after(() => badVm.cleanup());
  await assert.rejects(badVm.start(), /--vm is not a virtual machine name/);
});

test('a token handed out works at the gateway with the role, and stops the moment its identity is deleted', async (t) => {
  const d = await vmDaemon(t);
  await d.setupAccount('demo');
  const a = await putUami(d, 'ua-a');
  await putVm(d, 'vm1', false, [a.id]);
  await assign(d, accountPath('demo'), a.principalId, ROLE.openaiUser);
  const r = await imdsToken(d);
  assert.equal(r.status, 200, r.text);
  const bearer = { authorization: `Bearer ${r.json.access_token}` };
  let chat = await d.chat('demo', 'chat', null, 'hello', { headers: bearer });
  assert.equal(chat.status, 200, chat.text);
  await deleteUami(d, 'ua-a');
  chat = await d.chat('demo', 'chat', null, 'hello', { headers: bearer });
  assert.equal(chat.status, 401, chat.text);
});

test('--mi-token-lifetime-min sets the tokens\' lifetime (5 to 1440 minutes)', async (t) => {
  const d = await vmDaemon(t, ['--mi-token-lifetime-min', '10']);
  await putVm(d, 'vm1', true);
  const r = await imdsToken(d);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.expires_in, '600');
  const c = claims(r.json.access_token);
  assert.equal(c.exp - c.nbf, 600);
  for (const bad of ['4', '1441']) {
    const x = new Daemon({ args: ['--mi-token-lifetime-min', bad] });
    t.after(() => x.cleanup());
    await assert.rejects(x.start(), /mi-token-lifetime-min/);
  }
});

test('the sign-in log records each managed-identity token minted, not the ones handed out again', async (t) => {
  const d = await vmDaemon(t);
  const vm = await putVm(d, 'vm1', true);
  const first = await imdsToken(d);
  assert.equal((await imdsToken(d)).json.access_token, first.json.access_token);
  assert.equal((await imdsToken(d, { resource: 'https://management.azure.com/' })).status, 200);
  // Written by the log's own thread: wait until both mints are there.
  let rows;
  const deadline = Date.now() + 10000;
  for (;;) {
    rows = (await d.admin('GET', '/keyless/signIns')).json.value;
    if (rows.length >= 2 || Date.now() > deadline) break;
    await sleep(50);
  }
  assert.equal(rows.length, 2, JSON.stringify(rows));
  for (const row of rows) {
    assert.equal(row.appId, first.json.client_id);
    assert.equal(row.servicePrincipalId, vm.identity.principalId);
    assert.equal(row.credentialType, 'managed_identity');
    assert.equal(row.status, 'success');
    assert.equal(row.ipAddress, '127.0.0.1');
  }
  assert.deepEqual(rows.map((x) => x.resource).sort(), [COG, 'https://management.azure.com/']);
});
