// Hostile scopes and principals against the role-assignment API on the admin socket:
// path tricks ("..", "//", trailing slashes), case games, oversized names, SQL
// metacharacters, control bytes, unknown and malformed principals. Each must get a clear
// 4xx ARM error, store nothing, and leave the daemon serving; mixed case must address the
// same assignment.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ARM_API, SUB, accountPath, startDaemon } from '../lib/harness.mjs';
import {
  ACTION,
  AUTH_API,
  ROLE,
  allAssignments,
  assertApiError,
  assign,
  checkAccess,
  createApp,
  listAssignments,
  newGuid,
  principalNotFound,
  putAssignment,
  raPath,
  rgScope,
  sortedNames,
  subScope,
  tenantId,
} from '../lib/authz.mjs';

const CHECK = `/providers/Microsoft.Authorization/checkAccess?${AUTH_API}`;
const roleId = (g) => `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${g}`;

// Sends a request exactly as written (node:http refuses some of these targets itself).
function send(d, method, path, body, headers = []) {
  const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const lines = [
    `${method} ${path} HTTP/1.1`,
    'Host: localhost',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(payload)}`,
    'Connection: close',
    ...headers.map(([k, v]) => `${k}: ${v}`),
  ];
  return d.adminRaw([`${lines.join('\r\n')}\r\n\r\n${payload}`]);
}

function assertRefused(r, status, code, what) {
  assert.equal(r.status, status, `${what}: expected ${status} ${code || ''}, got ${r.status} (error ${r.error}) ${(r.raw || Buffer.alloc(0)).subarray(0, 500).toString('latin1')}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, `${what}: content-type`);
  assert.ok(r.json && r.json.error && typeof r.json.error.code === 'string' && typeof r.json.error.message === 'string' && r.json.error.message.length > 0,
    `${what}: not an ARM error: ${r.text.slice(0, 300)}`);
  if (code) assert.equal(r.json.error.code, code, `${what}: ${r.text.slice(0, 300)}`);
}

test('hostile scopes and principals on role assignments', async (t) => {
  const d = await startDaemon(t);
  const app = await createApp(d, 'hostile-target');
  const sp = app.servicePrincipalId;
  await d.setupAccount('hostile', { deployments: { chat: {} } });
  const baseline = await assign(d, accountPath('hostile'), sp, ROLE.openaiUser);
  let stored = sortedNames(await allAssignments(d));

  // Nothing new stored, the daemon alive and still enforcing.
  async function assertUnchanged(what) {
    assert.ok(d.running, `daemon died after ${what}`);
    const h = await d.admin('GET', '/healthz');
    assert.equal(h.status, 200, `after ${what}: healthz ${h.status}`);
    assert.deepEqual(sortedNames(await allAssignments(d)), stored, `after ${what}: the stored assignments changed`);
    assert.equal((await checkAccess(d, sp, ACTION.chat, accountPath('hostile'), true)).allowed, true, `after ${what}: enforcement broke`);
  }
  const putRaw = (scope, { name = newGuid(), principalId = sp, role = ROLE.reader, headers } = {}) =>
    send(d, 'PUT', `${raPath(scope, name)}?${AUTH_API}`, { properties: { roleDefinitionId: roleId(role), principalId } }, headers);

  await t.test('"..", ".", "//" and trailing slashes in the path are InvalidScope', async () => {
    const scopes = [
      `/subscriptions/${SUB}/resourceGroups/..`,
      `/subscriptions/${SUB}/resourceGroups/rg/..`,
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/..`,
      `/subscriptions/${SUB}/resourceGroups/%2e%2e`,
      `/subscriptions/${SUB}/resourceGroups/%2E%2E/providers/Microsoft.CognitiveServices/accounts/hostile`,
      `/subscriptions/${SUB}/resourceGroups/.`,
      `/subscriptions/..`,
      `/subscriptions/${SUB}//resourceGroups/rg`,
      `//subscriptions/${SUB}`,
      `/subscriptions/${SUB}/resourceGroups/rg/`, // the trailing '/' meets "/providers": "//"
      `/subscriptions/${SUB}/resourceGroups/rg//`,
      `/subscriptions//resourceGroups/rg`,
      `/subscriptions/${SUB}/resourceGroups/a%2Fb`,
      `/subscriptions/${SUB}/resourceGroups/a%5Cb`,
    ];
    for (const scope of scopes) {
      const name = newGuid();
      const r = await putRaw(scope, { name });
      assertRefused(r, 400, 'InvalidScope', `PUT at ${scope}`);
      const g = await send(d, 'GET', `${raPath(scope)}?${AUTH_API}`);
      assertRefused(g, 400, 'InvalidScope', `list at ${scope}`);
      const del = await send(d, 'DELETE', `${raPath(scope, name)}?${AUTH_API}`);
      assertRefused(del, 400, 'InvalidScope', `DELETE at ${scope}`);
    }
    await assertUnchanged('path tricks');
  });

  await t.test('scopes in checkAccess: one trailing slash is the same scope, malformed ones are InvalidScope', async () => {
    const acct = accountPath('hostile');
    const plain = await checkAccess(d, sp, ACTION.chat, acct, true);
    const slash = await checkAccess(d, sp, ACTION.chat, `${acct}/`, true);
    assert.equal(slash.allowed, plain.allowed);
    assert.equal(slash.allowed, true);
    for (const scope of [`${acct}//`, `${acct}/..`, `${acct}/../../rg2`, `/subscriptions/${SUB}//resourceGroups/x`, 'subscriptions/x', '', `${acct}\u0000`, `${acct}\n`, `/subscriptions/${'s'.repeat(10240)}`]) {
      const r = await d.admin('POST', CHECK, { principalId: sp, action: ACTION.chat, scope, dataAction: true });
      assertApiError(r, 400, 'InvalidScope', `checkAccess scope ${JSON.stringify(scope.slice(0, 60))}`);
    }
    await assertUnchanged('checkAccess scopes');
  });

  await t.test('mixed case addresses the same scope and the same assignment', async () => {
    const sub = 'abcdef01-2345-6789-abcd-ef0123456789';
    const first = newGuid();
    const upperPath = `/SUBSCRIPTIONS/${sub.toUpperCase()}/RESOURCEGROUPS/MixedCaseRG/PROVIDERS/MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/${first}?${AUTH_API}`;
    const c = await d.admin('PUT', upperPath, { properties: { roleDefinitionId: roleId(ROLE.reader), principalId: sp } });
    assert.equal(c.status, 201, `upper-case PUT: ${c.text}`);
    assert.equal(c.json.properties.scope.toLowerCase(), rgScope('mixedcaserg', sub).toLowerCase());
    stored = sortedNames(await allAssignments(d));
    // The same (scope, principal, role) in another spelling is a duplicate.
    for (const scope of [rgScope('mixedcaserg', sub), rgScope('MIXEDCASERG', sub.toUpperCase()), `/subscriptions/${sub}/resourcegroups/MixedCaseRg`]) {
      const dup = await putAssignment(d, scope, sp, ROLE.reader);
      assertApiError(dup, 409, 'RoleAssignmentExists', `duplicate at ${scope}`);
    }
    // Readable, listable and checkable through any spelling.
    const lower = rgScope('mixedcaserg', sub);
    const g = await d.admin('GET', `${raPath(lower, first.toUpperCase())}?${AUTH_API}`);
    assert.equal(g.status, 200, `GET through the lower-case scope and an upper-case name: ${g.text}`);
    assert.equal(g.json.name.toLowerCase(), first.toLowerCase());
    const listed = await listAssignments(d, rgScope('MIXEDCASERG', sub.toUpperCase()), `principalId eq '${sp}'`);
    assert.ok(listed.some((a) => a.name.toLowerCase() === first.toLowerCase()), JSON.stringify(listed));
    assert.equal((await checkAccess(d, sp, ACTION.accountRead, accountPath('x', { sub: sub.toUpperCase(), rg: 'MIXEDCASERG' }))).allowed, true);
    assert.equal((await checkAccess(d, sp, ACTION.accountRead, accountPath('x', { sub, rg: 'mixedcaserg2' }))).allowed, false);
    await assertUnchanged('mixed case');
    const del = await d.admin('DELETE', `${raPath(`/subscriptions/${sub}/resourcegroups/MIXEDcaseRG`, first)}?${AUTH_API}`);
    assert.equal(del.status, 200, `DELETE through another spelling: ${del.text}`);
    stored = sortedNames(await allAssignments(d));
    assert.equal((await checkAccess(d, sp, ACTION.accountRead, accountPath('x', { sub, rg: 'MixedCaseRG' }))).allowed, false);
  });

  await t.test('oversized scopes, names, principals and headers', async () => {
    // 10 KB does not fit the request line: the HTTP layer refuses it.
    const huge = await putRaw(rgScope('r'.repeat(10240)));
    assertRefused(huge, 414, 'RequestUriTooLong', '10 KB resource group');
    // Over KL_MAX_SCOPE (1024) but within the request line.
    const long = await putRaw(rgScope('r'.repeat(1100)));
    assertRefused(long, 400, 'InvalidScope', '1100-char resource group');
    const deep = await putRaw(`/subscriptions/${SUB}/resourceGroups/rg/providers/${Array.from({ length: 20 }, (_, i) => `Ns.T/t${i}/n${i}`).join('/')}`);
    assertRefused(deep, 400, undefined, '20-level resource id');
    const longList = await send(d, 'GET', `${raPath(rgScope('r'.repeat(1100)))}?${AUTH_API}`);
    assertRefused(longList, 400, 'InvalidScope', 'list at an 1100-char scope');
    // Oversized principal ids and role ids in the body.
    assertRefused(await putRaw(rgScope('rg'), { principalId: 'p'.repeat(10240) }), 400, undefined, '10 KB principalId');
    const bigRole = await send(d, 'PUT', `${raPath(rgScope('rg'), newGuid())}?${AUTH_API}`, { properties: { roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${'f'.repeat(10240)}`, principalId: sp } });
    assertRefused(bigRole, 400, undefined, '10 KB roleDefinitionId');
    // An assignment name that is not a GUID.
    for (const name of ['not-a-guid', 'g'.repeat(300), `${newGuid()}x`]) {
      assertRefused(await putRaw(rgScope('rg'), { name }), 400, undefined, `assignment name ${name.slice(0, 40)}`);
    }
    // The principal header: malformed and oversized.
    const viaHeader = (v) => send(d, 'POST', `${accountPath('hostile')}/listKeys?${ARM_API}`, undefined, [['x-keyless-principal', v]]);
    for (const v of ['not-a-guid', 'p'.repeat(10240), "'; DROP TABLE principals;--", newGuid()]) {
      const r = await viaHeader(v);
      assertRefused(r, 400, undefined, `x-keyless-principal ${v.slice(0, 40)}`);
      assert.ok(!/key1/.test(r.text), 'keys returned for a bogus principal');
    }
    assertRefused(await viaHeader(newGuid()), 400, 'PrincipalNotFound', 'x-keyless-principal unknown GUID');
    await assertUnchanged('oversized input');
  });

  await t.test('SQL metacharacters are refused or stored verbatim, never executed', async () => {
    const sqlRg = "x'; DROP TABLE role_assignments;--";
    const enc = encodeURIComponent(sqlRg);
    for (const scope of [`/subscriptions/${SUB}/resourceGroups/${enc}`, `/subscriptions/${enc}`, `${accountPath('hostile')}/deployments/${enc}`]) {
      assertRefused(await putRaw(scope), 400, 'InvalidScope', `PUT at ${scope}`);
      assertRefused(await send(d, 'GET', `${raPath(scope)}?${AUTH_API}`), 400, 'InvalidScope', `list at ${scope}`);
    }
    assertRefused(await putRaw(rgScope('rg'), { principalId: "' OR '1'='1" }), 400, undefined, 'SQL principalId');
    assertRefused(await putRaw(rgScope('rg'), { principalId: `${sp}' OR '1'='1` }), 400, undefined, 'SQL after a real principalId');
    const sqlRole = await send(d, 'PUT', `${raPath(rgScope('rg'), newGuid())}?${AUTH_API}`, { properties: { roleDefinitionId: "x'; DROP TABLE role_definitions;--", principalId: sp } });
    assertRefused(sqlRole, 400, undefined, 'SQL roleDefinitionId');
    for (const f of [`principalId eq '' OR 1=1 --'`, `principalId eq '${sp}'; DROP TABLE role_assignments;--`, `principalId eq '${sp}' or 1 eq 1`]) {
      const r = await send(d, 'GET', `${raPath(rgScope('rg'))}?${AUTH_API}&$filter=${encodeURIComponent(f)}`);
      assertRefused(r, 400, 'InvalidFilterInQueryString', `filter ${f}`);
    }
    // OData's doubled quote: either refused, or a literal principal id that matches nobody.
    const quoted = await send(d, 'GET', `${raPath(rgScope('rg'))}?${AUTH_API}&$filter=${encodeURIComponent("principalId eq ''' OR ''1''=''1'")}`);
    if (quoted.status === 200) assert.deepEqual(quoted.json.value, [], `doubled-quote filter matched: ${quoted.text.slice(0, 300)}`);
    else assertRefused(quoted, 400, 'InvalidFilterInQueryString', 'doubled-quote filter');
    const ck = await d.admin('POST', CHECK, { principalId: "' OR 1=1 --", action: ACTION.listKeys, scope: accountPath('hostile'), dataAction: false });
    assert.ok(ck.status === 400 || (ck.status === 200 && ck.json.allowed === false), `checkAccess with an SQL principal: ${ck.status} ${ck.text}`);
    await assertUnchanged('SQL metacharacters');
    // A display name is free text: stored and returned exactly.
    const evilName = "x'); DROP TABLE principals;--";
    const evil = await createApp(d, evilName);
    const back = await d.admin('GET', `/v1.0/applications/${evil.id}`);
    assert.equal(back.json.displayName, evilName);
    const a = await assign(d, rgScope('rg-evil'), evil.servicePrincipalId, ROLE.reader);
    stored = sortedNames(await allAssignments(d));
    assert.ok(stored.includes(a.name.toLowerCase()));
    assert.ok(stored.includes(baseline.name.toLowerCase()), 'the table lost rows');
  });

  await t.test('NUL and control bytes, percent-encoded, are InvalidScope', async () => {
    for (const bad of ['%00', 'rg%00', 'rg%00x', 'rg%01', 'rg%0a', 'rg%0d%0aX-Evil:%201', 'rg%1b[31m', 'rg%7f', 'rg%09']) {
      const scope = `/subscriptions/${SUB}/resourceGroups/${bad}`;
      assertRefused(await putRaw(scope), 400, 'InvalidScope', `PUT at ${scope}`);
      assertRefused(await send(d, 'GET', `${raPath(scope)}?${AUTH_API}`), 400, 'InvalidScope', `list at ${scope}`);
    }
    // Non-ASCII and spaces are not valid in a scope either.
    for (const bad of ['%C3%A9', '%FF', '%E2%80%AE', '%20x']) {
      assertRefused(await putRaw(`/subscriptions/${SUB}/resourceGroups/rg${bad}`), 400, undefined, `scope with ${bad}`);
    }
    // Malformed percent-encoding.
    for (const bad of ['rg%', 'rg%zz', 'rg%0']) {
      const r = await putRaw(`/subscriptions/${SUB}/resourceGroups/${bad}`);
      assert.ok(r.status === 400 || r.status === 404, `malformed escape ${bad}: ${r.status} ${r.text}`);
      assertRefused(r, r.status, undefined, `malformed escape ${bad}`);
    }
    await assertUnchanged('control bytes');
    // The log stays one JSON object per line: no raw control byte got through.
    for (const line of d.stderr.split('\n').filter(Boolean)) {
      if (/^(==|SUMMARY|\s)/.test(line)) continue;
      assert.doesNotThrow(() => JSON.parse(line), `log line is not JSON: ${line.slice(0, 200)}`);
    }
  });

  await t.test('an unknown or malformed assignee is PrincipalNotFound and nothing is stored', async () => {
    const tenant = await tenantId(d);
    for (const scope of ['/', subScope(), rgScope('rg'), accountPath('hostile')]) {
      const ghost = newGuid();
      const name = newGuid();
      const r = await putRaw(scope, { name, principalId: ghost });
      assertRefused(r, 400, 'PrincipalNotFound', `unknown principal at ${scope}`);
      assert.deepEqual(r.json, principalNotFound(ghost, tenant));
      assertRefused(await send(d, 'GET', `${raPath(scope, name)}?${AUTH_API}`), 404, 'RoleAssignmentNotFound', 'the refused assignment');
    }
    // The tenant id and the application's appId name no principal that can be assigned to
    // by object id; an app object id is not its service principal either.
    for (const id of [tenant, app.appId, app.id]) {
      const r = await putRaw(rgScope('rg'), { principalId: id });
      assert.equal(r.status, 400, `principalId ${id}: ${r.status} ${r.text}`);
      assert.equal(r.json?.error?.code, 'PrincipalNotFound');
    }
    for (const principalId of ['', ' ', 'not-a-guid', 42, null, ['x'], { id: sp }]) {
      const r = await send(d, 'PUT', `${raPath(rgScope('rg'), newGuid())}?${AUTH_API}`, { properties: { roleDefinitionId: roleId(ROLE.reader), principalId } });
      assertRefused(r, 400, undefined, `principalId ${JSON.stringify(principalId)}`);
    }
    await assertUnchanged('unknown assignees');
  });
});
