// Application certificates (Graph keyCredentials): upload as PEM or base64 DER through
// PATCH /v1.0/applications/{id}, shown with the SHA-1 thumbprint as customKeyIdentifier,
// the SHA-256 one, and the certificate's own dates; kept by keyId, removed by omission;
// refusals (not RSA, too small, garbage, duplicates, an unknown keyId); the CLI's
// app cert add|list|remove; and that it all survives a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startDaemon } from '../lib/harness.mjs';
import { GUID, ISO, assertApiError, assertGraphError, createApp, newGuid } from '../lib/authz.mjs';
import { certDates, makeCert } from '../lib/certs.mjs';

const appPath = (id) => `/v1.0/applications/${id}`;
const noMillis = (s) => s.replace(/\.\d+Z$/, '').replace(/Z$/, '');

function assertCredential(kc, cert, displayName) {
  const dates = certDates(cert);
  assert.match(kc.keyId, GUID);
  assert.equal(kc.customKeyIdentifier, cert.sha1Hex, 'customKeyIdentifier is the SHA-1 thumbprint');
  assert.equal(kc.thumbprintSha256, cert.sha256B64url, 'SHA-256 thumbprint (x5t#S256)');
  assert.equal(kc.type, 'AsymmetricX509Cert');
  assert.equal(kc.usage, 'Verify');
  assert.equal(kc.key, null, 'the key is never returned');
  assert.equal(kc.displayName, displayName);
  assert.match(kc.startDateTime, ISO);
  assert.equal(noMillis(kc.startDateTime), dates.start, 'startDateTime from the certificate');
  assert.equal(noMillis(kc.endDateTime), dates.end, 'endDateTime from the certificate');
}

test('keyCredentials: PEM and base64 DER uploads, kept by keyId, removed by omission, survive a restart', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'cert-app');
  const a = makeCert({ cn: 'cert-app-a' });
  const b = makeCert({ cn: 'cert-app-b' });

  // PEM text as the key, then base64 of DER, with a display name of our choosing.
  const r1 = await d.admin('PATCH', appPath(app.id), { keyCredentials: [{ type: 'AsymmetricX509Cert', usage: 'Verify', key: a.certPem }] });
  assert.equal(r1.status, 204, r1.text);
  let got = (await d.admin('GET', appPath(app.id))).json;
  assert.equal(got.keyCredentials.length, 1, JSON.stringify(got));
  assertCredential(got.keyCredentials[0], a, 'CN=cert-app-a');
  const aId = got.keyCredentials[0].keyId;

  const r2 = await d.admin('PATCH', appPath(app.id), { keyCredentials: [{ keyId: aId }, { type: 'AsymmetricX509Cert', usage: 'Verify', key: b.derB64, displayName: 'second' }] });
  assert.equal(r2.status, 204, r2.text);
  got = (await d.admin('GET', appPath(app.appId))).json;
  assert.deepEqual(got.keyCredentials.map((k) => k.customKeyIdentifier), [a.sha1Hex, b.sha1Hex]);
  assert.equal(got.keyCredentials[0].keyId, aId, 'a kept credential keeps its keyId');
  assertCredential(got.keyCredentials[1], b, 'second');
  // Listed with the applications too.
  const listed = (await d.admin('GET', '/v1.0/applications')).json.value.find((x) => x.id === app.id);
  assert.deepEqual(listed.keyCredentials, got.keyCredentials);
  // base64 of a PEM file (what Graph tools send for a .cer in PEM form).
  const c = makeCert({ cn: 'cert-app-c' });
  const r3 = await d.admin('PATCH', appPath(app.id), { keyCredentials: [...got.keyCredentials.map((k) => ({ keyId: k.keyId })), { key: Buffer.from(c.certPem).toString('base64') }] });
  assert.equal(r3.status, 204, r3.text);

  await d.restart();
  got = (await d.admin('GET', appPath(app.id))).json;
  assert.deepEqual(got.keyCredentials.map((k) => k.customKeyIdentifier), [a.sha1Hex, b.sha1Hex, c.sha1Hex]);

  // Leaving one out removes it; an empty list removes all.
  const bId = got.keyCredentials[1].keyId;
  assert.equal((await d.admin('PATCH', appPath(app.id), { keyCredentials: [{ keyId: bId }] })).status, 204);
  got = (await d.admin('GET', appPath(app.id))).json;
  assert.deepEqual(got.keyCredentials.map((k) => k.keyId), [bId]);
  // A PATCH without keyCredentials leaves them.
  assert.equal((await d.admin('PATCH', appPath(app.id), { displayName: 'cert-app-renamed' })).status, 204);
  assert.deepEqual((await d.admin('GET', appPath(app.id))).json.keyCredentials.map((k) => k.keyId), [bId]);
  assert.equal((await d.admin('PATCH', appPath(app.id), { keyCredentials: [] })).status, 204);
  assert.deepEqual((await d.admin('GET', appPath(app.id))).json.keyCredentials, []);
});

test('keyCredentials: refusals change nothing', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'cert-refusals');
  const good = makeCert({ cn: 'good' });
  assert.equal((await d.admin('PATCH', appPath(app.id), { keyCredentials: [{ key: good.derB64 }] })).status, 204);
  const before = (await d.admin('GET', appPath(app.id))).json.keyCredentials;
  const keep = { keyId: before[0].keyId };
  const bad = (what, kc, message) => ({ what, kc, message });
  const cases = [
    bad('not an array', { key: good.derB64 }, 'keyCredentials must be an array.'),
    bad('EC certificate', [keep, { key: makeCert({ kind: 'ec' }).derB64 }], 'Invalid keyCredential: Only RSA certificates of 2048 to 4096 bits are supported.'),
    bad('RSA-1024', [keep, { key: makeCert({ kind: 'rsa:1024' }).derB64 }], 'Invalid keyCredential: Only RSA certificates of 2048 to 4096 bits are supported.'),
    bad('garbage', [keep, { key: Buffer.from('not a certificate').toString('base64') }], 'Invalid keyCredential: key is not a base64-encoded X.509 certificate (DER or PEM).'),
    bad('DER with trailing bytes', [keep, { key: Buffer.concat([good.der, Buffer.from([0])]).toString('base64') }], 'Invalid keyCredential: key is not a base64-encoded X.509 certificate (DER or PEM).'),
    bad('the same certificate twice', [keep, { key: good.certPem }], 'The keyCredentials list a certificate or a keyId twice, or a keyId that is in use.'),
    bad('unknown keyId', [{ keyId: newGuid() }], 'A keyCredential without a key must name an existing keyId.'),
    bad('a password type', [keep, { type: 'Symmetric', key: good.derB64 }], 'Only keyCredentials of type AsymmetricX509Cert and usage Verify are supported.'),
    bad('Sign usage', [keep, { usage: 'Sign', key: good.derB64 }], 'Only keyCredentials of type AsymmetricX509Cert and usage Verify are supported.'),
    bad('keyId not a GUID', [{ keyId: 'abc' }], 'keyId must be a GUID.'),
    bad('too many', Array.from({ length: 17 }, () => keep), 'An application can have at most 16 keyCredentials.'),
  ];
  for (const { what, kc, message } of cases) {
    const r = await d.admin('PATCH', appPath(app.id), { keyCredentials: kc });
    assertGraphError(r, 400, { error: { code: 'Request_BadRequest', message } }, what);
  }
  // Another application cannot take over a keyId in use.
  const other = await createApp(d, 'cert-other');
  const stolen = await d.admin('PATCH', appPath(other.id), { keyCredentials: [{ keyId: before[0].keyId, key: makeCert().derB64 }] });
  assertApiError(stolen, 400, 'Request_BadRequest', 'keyId of another application');
  assert.deepEqual((await d.admin('GET', appPath(app.id))).json.keyCredentials, before, 'a refused PATCH changed the set');
  assert.deepEqual((await d.admin('GET', appPath(other.id))).json.keyCredentials, []);
  assertApiError(await d.admin('PATCH', appPath(newGuid()), { keyCredentials: [] }), 404, 'Request_ResourceNotFound');
});

test('CLI: app cert add, list, remove', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'cli-cert-app');
  const dir = mkdtempSync(join(tmpdir(), 'kl-cli-cert-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = makeCert({ cn: 'cli-a' });
  const b = makeCert({ cn: 'cli-b' });
  writeFileSync(join(dir, 'a.pem'), a.certPem);
  writeFileSync(join(dir, 'b.der'), b.der);

  const addA = await d.cli(['app', 'cert', 'add', 'cli-cert-app', join(dir, 'a.pem'), '-o', 'json']);
  assert.equal(addA.code, 0, addA.stderr);
  assertCredential(addA.json, a, 'CN=cli-a');
  const addB = await d.cli(['app', 'cert', 'add', app.appId, join(dir, 'b.der')]);
  assert.equal(addB.code, 0, addB.stderr);
  assert.ok(addB.stdout.includes(b.sha1Hex), addB.stdout);

  const list = await d.cli(['app', 'cert', 'list', 'cli-cert-app']);
  assert.equal(list.code, 0, list.stderr);
  for (const s of [a.sha1Hex, b.sha1Hex, addA.json.keyId]) assert.ok(list.stdout.includes(s), `list shows ${s}: ${list.stdout}`);

  // Remove by thumbprint, then by keyId; removing what is not there is not an error.
  const rmB = await d.cli(['app', 'cert', 'remove', 'cli-cert-app', b.sha1Hex]);
  assert.equal(rmB.code, 0, rmB.stderr);
  let kc = (await d.admin('GET', appPath(app.id))).json.keyCredentials;
  assert.deepEqual(kc.map((k) => k.customKeyIdentifier), [a.sha1Hex]);
  const rmA = await d.cli(['app', 'cert', 'remove', 'cli-cert-app', addA.json.keyId]);
  assert.equal(rmA.code, 0, rmA.stderr);
  assert.deepEqual((await d.admin('GET', appPath(app.id))).json.keyCredentials, []);
  const again = await d.cli(['app', 'cert', 'remove', 'cli-cert-app', addA.json.keyId]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /nothing to remove/);

  writeFileSync(join(dir, 'junk.pem'), 'junk');
  const junk = await d.cli(['app', 'cert', 'add', 'cli-cert-app', join(dir, 'junk.pem')]);
  assert.equal(junk.code, 1, `${junk.stdout} ${junk.stderr}`);
  assert.match(junk.stderr, /Request_BadRequest/);
  const missing = await d.cli(['app', 'cert', 'add', 'cli-cert-app', join(dir, 'none.pem')]);
  assert.notEqual(missing.code, 0);
});

const ficPath = (app, id) => `/v1.0/applications/${app}/federatedIdentityCredentials${id ? `/${id}` : ''}`;

test('federatedIdentityCredentials: create, list, get, patch, delete in Graph shape; refusals', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'workload-app');
  const body = { name: 'github-main', issuer: 'https://token.actions.example.com', subject: 'repo:org/app:ref:refs/heads/main', audiences: ['api://AzureADTokenExchange'], description: 'CI' };
  const made = await d.admin('POST', ficPath(app.id), body);
  assert.equal(made.status, 201, made.text);
  assert.match(made.json.id, GUID);
  assert.deepEqual(made.json, { id: made.json.id, ...body });
  // By app id too; list; get.
  const list = await d.admin('GET', ficPath(app.appId));
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json, { value: [made.json] });
  const got = await d.admin('GET', ficPath(app.id, made.json.id.toUpperCase()));
  assert.deepEqual(got.json, made.json);

  // Refusals: each names its field, and nothing is stored.
  const cases = [
    [{ ...body, name: 'ab' }, 400, 'Request_BadRequest'],
    [{ ...body, name: 'has space' }, 400, 'Request_BadRequest'],
    [{ ...body, name: 'other', issuer: 'http://insecure.example.com' }, 400, 'Request_BadRequest'],
    [{ ...body, name: 'other', subject: '' }, 400, 'Request_BadRequest'],
    [{ ...body, name: 'other', audiences: [] }, 400, 'Request_BadRequest'],
    [{ ...body, name: 'other', audiences: ['a', 'b'] }, 400, 'Request_BadRequest'],
    [{ ...body, name: 'other', audiences: 'api://AzureADTokenExchange' }, 400, 'Request_BadRequest'],
    [{ name: 'other', subject: 's', audiences: ['a'] }, 400, 'Request_BadRequest'],
    [{ ...body, name: 'GITHUB-MAIN', subject: 'another' }, 409, 'Request_MultipleObjectsWithSameKeyValue'],
    [{ ...body, name: 'same-pair' }, 409, 'Request_MultipleObjectsWithSameKeyValue'],
  ];
  for (const [b, status, code] of cases) {
    assertApiError(await d.admin('POST', ficPath(app.id), b), status, code, JSON.stringify(b).slice(0, 80));
  }
  assert.equal((await d.admin('GET', ficPath(app.id))).json.value.length, 1);
  assertApiError(await d.admin('POST', ficPath(newGuid()), body), 404, 'Request_ResourceNotFound');
  assertApiError(await d.admin('GET', ficPath(app.id, newGuid())), 404, 'Request_ResourceNotFound');
  assertApiError(await d.admin('GET', ficPath(app.id, 'not-a-guid')), 400, 'Request_BadRequest');

  // PATCH changes what it names; the name is fixed.
  const p = await d.admin('PATCH', ficPath(app.id, made.json.id), { subject: 'repo:org/app:environment:prod', description: null });
  assert.equal(p.status, 204, p.text);
  const after = (await d.admin('GET', ficPath(app.id, made.json.id))).json;
  assert.deepEqual(after, { ...made.json, subject: 'repo:org/app:environment:prod', description: null });
  assertApiError(await d.admin('PATCH', ficPath(app.id, made.json.id), { name: 'renamed' }), 400, 'Request_BadRequest');
  assertApiError(await d.admin('PATCH', ficPath(app.id, made.json.id), { issuer: 'ftp://x' }), 400, 'Request_BadRequest');

  // At most 20 per application.
  for (let i = 1; i < 20; i++) {
    const r = await d.admin('POST', ficPath(app.id), { ...body, name: `n-${i}`, subject: `s-${i}` });
    assert.equal(r.status, 201, r.text);
  }
  assertApiError(await d.admin('POST', ficPath(app.id), { ...body, name: 'n-21', subject: 's-21' }), 400, 'Request_BadRequest');

  // Survives a restart; delete; gone with its application.
  await d.restart();
  assert.equal((await d.admin('GET', ficPath(app.id))).json.value.length, 20);
  assert.equal((await d.admin('DELETE', ficPath(app.id, made.json.id))).status, 204);
  assertApiError(await d.admin('DELETE', ficPath(app.id, made.json.id)), 404, 'Request_ResourceNotFound');
  assert.equal((await d.admin('GET', ficPath(app.id))).json.value.length, 19);
  assert.equal((await d.admin('DELETE', `/v1.0/applications/${app.id}`)).status, 204);
  const again = await createApp(d, 'workload-app');
  assert.deepEqual((await d.admin('GET', ficPath(again.id))).json.value, []);
  assertApiError(await d.admin('GET', ficPath(app.id)), 404, 'Request_ResourceNotFound');
});

test('CLI: app federated add, list, remove', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'cli-fed-app');
  const add = await d.cli(['app', 'federated', 'add', 'cli-fed-app', 'k8s-prod', 'https://oidc.cluster.example', 'system:serviceaccount:prod:api', '-o', 'json']);
  assert.equal(add.code, 0, add.stderr);
  assert.deepEqual(add.json, { id: add.json.id, name: 'k8s-prod', issuer: 'https://oidc.cluster.example', subject: 'system:serviceaccount:prod:api', description: null, audiences: ['api://AzureADTokenExchange'] });
  const add2 = await d.cli(['app', 'federated', 'add', app.appId, 'ci-main', 'https://ci.example', 'repo:x']);
  assert.equal(add2.code, 0, add2.stderr);
  const list = await d.cli(['app', 'federated', 'list', 'cli-fed-app']);
  assert.equal(list.code, 0, list.stderr);
  for (const s of ['k8s-prod', 'ci-main', 'https://ci.example', add.json.id]) assert.ok(list.stdout.includes(s), `${s}: ${list.stdout}`);
  const bad = await d.cli(['app', 'federated', 'add', 'cli-fed-app', 'x', 'http://plain', 's']);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /Request_BadRequest/);
  assert.equal((await d.cli(['app', 'federated', 'remove', 'cli-fed-app', 'K8S-PROD'])).code, 0);
  assert.equal((await d.cli(['app', 'federated', 'remove', 'cli-fed-app', (await d.admin('GET', ficPath(app.id))).json.value[0].id])).code, 0);
  assert.deepEqual((await d.admin('GET', ficPath(app.id))).json.value, []);
  const none = await d.cli(['app', 'federated', 'remove', 'cli-fed-app', 'ci-main']);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout, /nothing to remove/);
});
