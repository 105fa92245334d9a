// The App-Service-style identity endpoint (GET /msi/token with X-IDENTITY-HEADER) and
// keyless run, against a real keylessd: launch secrets made and revoked through the
// control plane, the endpoint's rules and bodies, what keyless run hands its command and
// what it does with signals and exit codes; then the "leaked client ID" drill beside the
// "leaked API key" one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

import { ARM_API, KEYLESS_CLI, accountPath, startDaemon } from '../lib/harness.mjs';
import { GUID, ROLE, assign, tenantId } from '../lib/authz.mjs';
import {
  COG,
  IMDS_ERR,
  SITE_API,
  claims,
  deleteSite,
  imdsToken,
  msiGet,
  putSite,
  putUami,
  putVm,
  siteId,
} from '../lib/identity-endpoints.mjs';

const launchPath = (site, id) => `${siteId(site)}/identityHeaders/${id}?${SITE_API}`;

async function launch(d, site, id = crypto.randomUUID()) {
  const r = await d.admin('PUT', launchPath(site, id));
  assert.equal(r.status, 201, r.text);
  return { id, header: r.json.properties.identityHeader, json: r.json };
}

test('launch secrets: shown once, renewed without a new secret, revoked; the endpoint honours exactly the live ones', async (t) => {
  const d = await startDaemon(t);
  const site = await putSite(d, 'web', true);
  const l = await launch(d, 'web');
  assert.match(l.header, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(l.json.name, l.id);
  assert.equal(l.json.type, 'Microsoft.Web/sites/identityHeaders');
  assert.equal(l.json.properties.identityEndpoint, `${d.imdsUrl}/msi/token`);
  assert.equal(l.json.properties.leaseSeconds, 900);
  let r = await msiGet(d, l.header);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json), ['access_token', 'expires_on', 'resource', 'token_type', 'client_id', 'not_before']);
  for (const k of Object.keys(r.json)) assert.equal(typeof r.json[k], 'string', k);
  assert.equal(r.json.resource, COG);
  assert.equal(claims(r.json.access_token).oid, site.identity.principalId);
  assert.equal(claims(r.json.access_token).xms_mirid, siteId('web').replace('/resourceGroups/', '/resourcegroups/'));
  // Renewed: 200, no secret in the answer, the old one still works.
  const again = await d.admin('PUT', launchPath('web', l.id));
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.properties.identityHeader, undefined);
  assert.equal((await msiGet(d, l.header)).status, 200);
  // The secret never reaches the log.
  assert.ok(!d.stderr.includes(l.header), 'the launch secret was logged');
  // Revoked: 401 at once; a second DELETE finds nothing.
  assert.equal((await d.admin('DELETE', launchPath('web', l.id))).status, 200);
  r = await msiGet(d, l.header);
  assert.equal(r.status, 401);
  assert.equal((await d.admin('DELETE', launchPath('web', l.id))).status, 204);
  // Another site's launch id, a launch for a site that does not exist, a bad id.
  const other = await launch(d, 'web');
  await putSite(d, 'api', true);
  assert.equal((await d.admin('PUT', launchPath('api', other.id))).status, 409);
  assert.equal((await d.admin('PUT', launchPath('nope', crypto.randomUUID()))).status, 404);
  assert.equal((await d.admin('PUT', launchPath('web', 'not-a-guid'))).status, 400);
  // Deleting the site takes its launches with it.
  await deleteSite(d, 'web');
  assert.equal((await msiGet(d, other.header)).status, 401);
});

test('App Service endpoint: 401 that reveals nothing, GET only, no proxies, its selectors and errors', async (t) => {
  const d = await startDaemon(t);
  const u = await putUami(d, 'ua-web');
  const stranger = await putUami(d, 'ua-elsewhere');
  const site = await putSite(d, 'web', true, [u.id]);
  const { header } = await launch(d, 'web');
  // Missing, empty, wrong, a prefix, the right one twice: one 401 for all.
  const unauthorized = [];
  unauthorized.push(await msiGet(d, undefined));
  unauthorized.push(await msiGet(d, ''));
  unauthorized.push(await msiGet(d, 'x'.repeat(43)));
  unauthorized.push(await msiGet(d, header.slice(0, 42)));
  unauthorized.push(await msiGet(d, `${header}A`));
  unauthorized.push(await msiGet(d, 'x'.repeat(5000)));
  unauthorized.push(await d.imds('GET', `/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(COG)}`, { headers: { 'X-IDENTITY-HEADER': [header, header] } }));
  for (const r of unauthorized) {
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.statusCode, 401);
    assert.equal(r.json.message, 'Unauthorized.');
  }
  // The header is checked before anything else is read: a bad query still gets 401.
  let r = await d.imds('GET', '/msi/token?resource=nonsense', { headers: {} });
  assert.equal(r.status, 401);
  r = await d.imds('POST', `/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(COG)}`, { headers: { 'X-IDENTITY-HEADER': header } });
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, 'GET');
  r = await d.imds('GET', `/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(COG)}`, { headers: { 'X-IDENTITY-HEADER': header, 'X-Forwarded-For': '10.1.1.1' } });
  assert.equal(r.status, 400);
  // Azure's sample spells the path /MSI/token.
  r = await d.imds('GET', `/MSI/token?api-version=2019-08-01&resource=${encodeURIComponent(COG)}`, { headers: { 'X-IDENTITY-HEADER': header } });
  assert.equal(r.status, 200, r.text);
  // Selectors.
  for (const [q, oid] of [
    [{}, site.identity.principalId],
    [{ client_id: u.clientId }, u.principalId],
    [{ principal_id: u.principalId }, u.principalId],
    [{ object_id: u.principalId }, u.principalId],
    [{ mi_res_id: u.id }, u.principalId],
  ]) {
    r = await msiGet(d, header, q);
    assert.equal(r.status, 200, `${JSON.stringify(q)}: ${r.text}`);
    assert.equal(claims(r.json.access_token).oid, oid, JSON.stringify(q));
  }
  for (const q of [{ client_id: stranger.clientId }, { mi_res_id: stranger.id }, { principal_id: '00000000-0000-0000-0000-000000000000' }]) {
    r = await msiGet(d, header, q);
    assert.equal(r.status, 400, JSON.stringify(q));
    assert.equal(r.json.message, 'No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.');
    assert.match(r.json.correlationId, GUID);
  }
  r = await msiGet(d, header, { client_id: u.clientId, principal_id: u.principalId });
  assert.equal(r.status, 400);
  r = await msiGet(d, header, { 'api-version': '2017-09-01' });
  assert.equal(r.status, 400);
  r = await msiGet(d, header, { resource: 'https://vault.azure.net' });
  assert.equal(r.status, 400);
  assert.match(r.json.message, /^AADSTS500011: /);
  // Without a system-assigned identity, no selector finds nothing (App Service's rule).
  await putSite(d, 'web', false, [u.id]);
  r = await msiGet(d, header);
  assert.equal(r.status, 400);
  assert.equal(r.json.message, 'No system assigned Managed Identity found for this site.');
});

// Runs keyless run with args; resolves with {code, signal, stdout, stderr}.
function keylessRun(d, site, argv, { env = {}, onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(KEYLESS_CLI, ['--data-dir', d.dataDir, 'run', '--site', site, '--', ...argv], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => {
      stdout += c;
      if (onSpawn) onSpawn(p, stdout);
    });
    p.stderr.on('data', (c) => (stderr += c));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test('keyless run: the command gets the endpoint and a live header, its exit status and signals pass through, the header dies with it', async (t) => {
  const d = await startDaemon(t);
  await putSite(d, 'web', true);
  const dir = mkdtempSync(join(tmpdir(), 'kl-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const envFile = join(dir, 'env.json');
  const script = `require('fs').writeFileSync(${JSON.stringify(envFile)}, JSON.stringify({e: process.env.IDENTITY_ENDPOINT, h: process.env.IDENTITY_HEADER, t: process.env.IDENTITY_SERVER_THUMBPRINT}));` +
    `fetch(process.env.IDENTITY_ENDPOINT + '?api-version=2019-08-01&resource=${encodeURIComponent(COG)}', {headers: {'X-IDENTITY-HEADER': process.env.IDENTITY_HEADER}})` +
    `.then((r) => { console.log('status ' + r.status); process.exit(7); });`;
  const r = await keylessRun(d, 'web', [process.execPath, '-e', script], { env: { IDENTITY_SERVER_THUMBPRINT: 'abc' } });
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout, /status 200/);
  const seen = JSON.parse(readFileSync(envFile, 'utf8'));
  assert.equal(seen.e, `${d.imdsUrl}/msi/token`);
  assert.match(seen.h, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(seen.t, undefined);
  // Revoked when the command exited.
  assert.equal((await msiGet(d, seen.h)).status, 401);
  // A signal to keyless run reaches the command; its status is 128 + the signal.
  const sig = await keylessRun(d, 'web', [process.execPath, '-e', "process.on('SIGTERM', () => process.exit(42)); console.log('ready'); setInterval(() => {}, 1000);"], {
    onSpawn: (p, out) => {
      if (out.includes('ready') && !p.klSent) {
        p.klSent = true;
        p.kill('SIGTERM');
      }
    },
  });
  assert.equal(sig.code, 42, sig.stderr);
  const killed = await keylessRun(d, 'web', [process.execPath, '-e', "console.log('ready'); setInterval(() => {}, 1000);"], {
    onSpawn: (p, out) => {
      if (out.includes('ready') && !p.klSent) {
        p.klSent = true;
        p.kill('SIGINT');
      }
    },
  });
  assert.equal(killed.code, 128 + 2, killed.stderr);
  // A site that does not exist: nothing is started.
  const none = await keylessRun(d, 'nope', [process.execPath, '-e', "console.log('started')"]);
  assert.notEqual(none.code, 0);
  assert.doesNotMatch(none.stdout, /started/);
  assert.match(none.stderr, /ResourceNotFound/);
});

test('drill: a leaked managed-identity client ID gets nothing; a leaked API key works until it is regenerated', async (t) => {
  const d = await startDaemon(t, { args: ['--vm', 'vm1'] });
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  // The victim: a user-assigned identity on another host (site "web", not this VM), with
  // the role that lets it call the model.
  const victim = await putUami(d, 'victim');
  await putSite(d, 'web', false, [victim.id]);
  await assign(d, accountPath('demo'), victim.principalId, ROLE.openaiUser);
  await putVm(d, 'vm1', true);
  // 1. The token service: client credentials with the client id and any secret.
  const form = (o) => new URLSearchParams(o).toString();
  let r = await d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ client_id: victim.clientId, client_secret: 'guess', scope: `${COG}/.default`, grant_type: 'client_credentials' }),
  });
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'unauthorized_client');
  assert.deepEqual(r.json.error_codes, [700016]);
  // 2. The App Service endpoint without the header.
  r = await msiGet(d, undefined, { client_id: victim.clientId });
  assert.equal(r.status, 401);
  // 3. Through a proxy (a server-side request forgery relayed with X-Forwarded-For).
  r = await imdsToken(d, { client_id: victim.clientId }, { headers: { Metadata: 'true', 'X-Forwarded-For': '203.0.113.9' } });
  assert.equal(r.status, 400);
  // 4. From this host, which does not carry the identity.
  r = await imdsToken(d, { client_id: victim.clientId });
  assert.equal(r.status, 400);
  assert.equal(r.text, IMDS_ERR.notFound);
  // Nothing above produced a token the gateway would take for the victim.
  // Beside it, a leaked API key: it works until it is regenerated, then never again.
  const keys = await d.listKeys('demo');
  const leaked = keys.json.key1;
  assert.equal((await d.chat('demo', 'chat', leaked)).status, 200);
  const regen = await d.admin('POST', `${accountPath('demo')}/regenerateKey?${ARM_API}`, { keyName: 'Key1' });
  assert.equal(regen.status, 200, regen.text);
  assert.equal((await d.chat('demo', 'chat', leaked)).status, 401);
  assert.equal((await d.chat('demo', 'chat', regen.json.key1)).status, 200);
});
