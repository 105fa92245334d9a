// Users and security groups on the control plane, in Graph v1.0 shapes, against the real
// daemon: create/read/update/delete users (the password never comes back and never
// reaches the log), the password policy and unique names, groups and their members
// through $ref (users, service principals, groups), cycles refused, and RBAC through
// nested groups: an application's service principal five groups deep calls the model
// with a client-credentials token because the top group holds the role, the control
// plane and assignedTo()/checkAccess see the same, and taking it out of a group is
// refused on the next request; the same for a managed identity's identity-endpoint
// token; and the CLI's user and group commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { accountPath, findSecrets, runCli, startDaemon } from '../lib/harness.mjs';
import { imdsToken, putUami, putVm } from '../lib/identity-endpoints.mjs';
import {
  AUTH_API, GUID, ISO, ROLE, asPrincipal, assertGraphError, assign, checkAccess, createApp,
  listAssignments, raPath, tenantId,
} from '../lib/authz.mjs';

const PASSWORD = 'Tr0ub4dor&3-horse-battery';
const DATA = 'https://cognitiveservices.azure.com';
const ref = (id) => ({ '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${id}` });
const notFound = (id) => ({ error: { code: 'Request_ResourceNotFound', message: `Resource '${id}' does not exist or one of its queried reference-property objects are not present.` } });

async function createUser(d, upn, extra = {}) {
  const r = await d.admin('POST', '/v1.0/users', {
    accountEnabled: true, displayName: 'Ann Example', mailNickname: 'ann', userPrincipalName: upn,
    passwordProfile: { forceChangePasswordNextSignIn: false, password: PASSWORD }, ...extra,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function createGroup(d, name) {
  const r = await d.admin('POST', '/v1.0/groups', { displayName: name, mailEnabled: false, mailNickname: name, securityEnabled: true });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function addMember(d, group, id) {
  const r = await d.admin('POST', `/v1.0/groups/${group}/members/$ref`, ref(id));
  assert.equal(r.status, 204, r.text);
}

test('users: Graph shapes, unique names, the password policy, updates and deletion; the password is never shown or logged', async (t) => {
  const d = await startDaemon(t);
  const u = await createUser(d, 'Ann@Example.com');
  assert.deepEqual(Object.keys(u).sort(), ['accountEnabled', 'createdDateTime', 'displayName', 'id', 'userPrincipalName', 'userType']);
  assert.match(u.id, GUID);
  assert.match(u.createdDateTime, ISO);
  assert.equal(u.userPrincipalName, 'Ann@Example.com');
  assert.equal(u.accountEnabled, true);
  for (const key of [u.id, 'ann@example.COM', 'ANN@example.com']) {
    const r = await d.admin('GET', `/v1.0/users/${key}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, u);
  }
  const list = await d.admin('GET', '/v1.0/users');
  assert.deepEqual(list.json.value.map((x) => x.id), [u.id]);
  const q = (f) => `/v1.0/users?$filter=${encodeURIComponent(f)}`;
  assert.deepEqual((await d.admin('GET', q("userPrincipalName eq 'ANN@example.com'"))).json.value.map((x) => x.id), [u.id]);
  assert.deepEqual((await d.admin('GET', q("displayName eq 'nobody'"))).json.value, []);
  assertGraphError(await d.admin('GET', q("mail eq 'x'")), 400,
    { error: { code: 'Request_UnsupportedQuery', message: "Unsupported filter: use userPrincipalName eq '{value}' or displayName eq '{value}', joined by 'and'." } });

  assertGraphError(await d.admin('POST', '/v1.0/users', { displayName: 'Dup', userPrincipalName: 'ANN@example.com', passwordProfile: { password: PASSWORD } }), 400,
    { error: { code: 'Request_BadRequest', message: 'Another object with the same value for property userPrincipalName already exists.' } }, 'duplicate, other case');
  assertGraphError(await d.admin('POST', '/v1.0/users', { displayName: 'X', userPrincipalName: 'no-domain', passwordProfile: { password: PASSWORD } }), 400,
    { error: { code: 'Request_BadRequest', message: 'Property userPrincipalName is invalid: use local@domain.' } }, 'bad name');
  const weak = await d.admin('POST', '/v1.0/users', { displayName: 'Bo', userPrincipalName: 'bo@example.com', passwordProfile: { password: 'short' } });
  assert.equal(weak.status, 400, weak.text);
  assert.match(weak.json.error.message, /^The specified password does not comply with password complexity requirements/);
  const same = await d.admin('POST', '/v1.0/users', { displayName: 'Bo', userPrincipalName: 'bo@example.com', passwordProfile: { password: 'BO@example.com' } });
  assert.equal(same.status, 400, same.text);
  assertGraphError(await d.admin('POST', '/v1.0/users', { displayName: 'Bo', userPrincipalName: 'bo@example.com' }), 400,
    { error: { code: 'Request_BadRequest', message: 'Property passwordProfile is required.' } }, 'no password');
  assertGraphError(await d.admin('GET', '/v1.0/users/bo@example.com'), 404, notFound('bo@example.com'));
  assertGraphError(await d.admin('GET', '/v1.0/users/not%20a%20name'), 400,
    { error: { code: 'Request_BadRequest', message: "Invalid object identifier: use the user's id (a GUID) or its userPrincipalName." } });

  let r = await d.admin('PATCH', `/v1.0/users/${u.id}`, { displayName: 'Ann E.', accountEnabled: false });
  assert.equal(r.status, 204, r.text);
  r = await d.admin('GET', `/v1.0/users/${u.id}`);
  assert.equal(r.json.displayName, 'Ann E.');
  assert.equal(r.json.accountEnabled, false);
  r = await d.admin('PATCH', `/v1.0/users/${u.id}`, { passwordProfile: { password: 'another-long-secret-1', forceChangePasswordNextSignIn: true } });
  assert.equal(r.status, 204, r.text);
  r = await d.admin('PATCH', `/v1.0/users/${u.id}`, { passwordProfile: { password: 'tiny' } });
  assert.equal(r.status, 400, r.text);
  assertGraphError(await d.admin('PATCH', `/v1.0/users/${u.id}`, { userPrincipalName: 'z@example.com' }), 400,
    { error: { code: 'Request_BadRequest', message: 'userPrincipalName cannot be changed: create a new user.' } });
  r = await d.admin('DELETE', `/v1.0/users/${u.id}`);
  assert.equal(r.status, 204, r.text);
  assertGraphError(await d.admin('GET', `/v1.0/users/${u.id}`), 404, notFound(u.id));
  assert.deepEqual(findSecrets(d.stderr, [PASSWORD, 'another-long-secret-1']), []);
});

test('groups: Graph shapes, members of every kind through $ref, cycles and duplicates refused, removal', async (t) => {
  const d = await startDaemon(t);
  const g = await createGroup(d, 'readers');
  assert.deepEqual(g, { id: g.id, displayName: 'readers', mailNickname: 'readers', description: null, mailEnabled: false, securityEnabled: true, groupTypes: [], createdDateTime: g.createdDateTime });
  assertGraphError(await d.admin('POST', '/v1.0/groups', { displayName: 'm365', mailNickname: 'm', mailEnabled: true, securityEnabled: false, groupTypes: ['Unified'] }), 400,
    { error: { code: 'Request_BadRequest', message: 'Only security groups are supported: mailEnabled false, securityEnabled true, groupTypes [].' } });
  const inner = await createGroup(d, 'inner');
  const u = await createUser(d, 'ann@example.com');
  const app = await createApp(d, 'grouped-app');
  await addMember(d, g.id, u.id);
  await addMember(d, g.id, app.servicePrincipalId);
  await addMember(d, g.id, inner.id);
  const m = await d.admin('GET', `/v1.0/groups/${g.id}/members`);
  assert.equal(m.status, 200, m.text);
  const byId = Object.fromEntries(m.json.value.map((x) => [x.id, x['@odata.type']]));
  assert.deepEqual(byId, { [u.id]: '#microsoft.graph.user', [app.servicePrincipalId]: '#microsoft.graph.servicePrincipal', [inner.id]: '#microsoft.graph.group' });
  assertGraphError(await d.admin('POST', `/v1.0/groups/${g.id}/members/$ref`, ref(u.id)), 400,
    { error: { code: 'Request_BadRequest', message: "One or more added object references already exist for the following modified properties: 'members'." } });
  assertGraphError(await d.admin('POST', `/v1.0/groups/${inner.id}/members/$ref`, ref(g.id)), 400,
    { error: { code: 'Request_BadRequest', message: `The member '${g.id}' cannot be added: the group would contain itself (a circular membership).` } }, 'cycle');
  assertGraphError(await d.admin('POST', `/v1.0/groups/${g.id}/members/$ref`, ref(g.id)), 400,
    { error: { code: 'Request_BadRequest', message: `The member '${g.id}' cannot be added: the group would contain itself (a circular membership).` } }, 'itself');
  const ghost = '00000000-0000-4000-8000-00000000dead';
  assertGraphError(await d.admin('POST', `/v1.0/groups/${g.id}/members/$ref`, ref(ghost)), 404, notFound(ghost));
  assertGraphError(await d.admin('POST', `/v1.0/groups/${g.id}/members/$ref`, { '@odata.id': 'https://graph.microsoft.com/v1.0/me' }), 400,
    { error: { code: 'Request_BadRequest', message: 'Invalid @odata.id: use "https://graph.microsoft.com/v1.0/directoryObjects/{id}".' } });
  assertGraphError(await d.admin('GET', `/v1.0/groups/${u.id}`), 404, notFound(u.id), 'a user is no group');
  let r = await d.admin('DELETE', `/v1.0/groups/${g.id}/members/${u.id}/$ref`);
  assert.equal(r.status, 204, r.text);
  assertGraphError(await d.admin('DELETE', `/v1.0/groups/${g.id}/members/${u.id}/$ref`), 404, notFound(u.id));
  r = await d.admin('GET', '/v1.0/groups');
  assert.deepEqual(r.json.value.map((x) => x.id).sort(), [g.id, inner.id].sort());
  r = await d.admin('GET', `/v1.0/groups?$filter=${encodeURIComponent("displayName eq 'INNER'")}`);
  assert.deepEqual(r.json.value.map((x) => x.id), [inner.id]);
  r = await d.admin('DELETE', `/v1.0/groups/${inner.id}`);
  assert.equal(r.status, 204, r.text);
  r = await d.admin('GET', `/v1.0/groups/${g.id}/members`);
  assert.deepEqual(r.json.value.map((x) => x.id), [app.servicePrincipalId]);
});

const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

async function clientCredentialsToken(d, tid, app) {
  const s = await d.admin('POST', `/v1.0/applications/${app.id}/addPassword`, { passwordCredential: {} });
  assert.equal(s.status, 200, s.text);
  const r = await d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ client_id: app.appId, client_secret: s.json.secretText, grant_type: 'client_credentials', scope: `${DATA}/.default` }),
  });
  assert.equal(r.status, 200, r.text);
  return r.json.access_token;
}

test('RBAC through nested groups: a service principal five groups deep is served through the top group, and refused on the next request once out', async (t) => {
  const d = await startDaemon(t);
  await d.setupAccount('demo');
  const tid = await tenantId(d);
  const app = await createApp(d, 'deep-app');
  const sp = app.servicePrincipalId;
  const groups = [];
  for (let i = 0; i < 5; i++) groups.push(await createGroup(d, `level${i}`));
  await addMember(d, groups[0].id, sp);
  for (let i = 0; i + 1 < groups.length; i++) await addMember(d, groups[i + 1].id, groups[i].id);
  const top = groups[4].id;
  const bearer = { authorization: `Bearer ${await clientCredentialsToken(d, tid, app)}` };
  let r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'PermissionDenied');

  const asg = await assign(d, accountPath('demo'), top, ROLE.openaiUser, { principalType: 'Group' });
  assert.equal(asg.properties.principalType, 'Group');
  r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer });
  assert.equal(r.status, 200, r.text);

  // assignedTo() includes the groups' assignments; principalId eq does not.
  const viaGroups = await listAssignments(d, accountPath('demo'), `assignedTo('${sp}')`);
  assert.deepEqual(viaGroups.map((a) => a.name), [asg.name]);
  assert.deepEqual(await listAssignments(d, accountPath('demo'), `principalId eq '${sp}'`), []);
  const ca = await checkAccess(d, sp, 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action', accountPath('demo'), true);
  assert.equal(ca.allowed, true);
  assert.match(ca.reason, new RegExp(`to ${top}$`));

  // The control plane counts groups too: listKeys through the bottom group's role.
  const asPrin = { headers: asPrincipal(sp) };
  const listKeys = () => d.admin('POST', `${accountPath('demo')}/listKeys?api-version=2024-10-01`, undefined, asPrin);
  r = await listKeys();
  assert.equal(r.status, 403, r.text);
  await assign(d, '/', groups[0].id, ROLE.csUser, { principalType: 'Group' });
  r = await listKeys();
  assert.equal(r.status, 200, r.text);
  r = await d.admin('GET', `${raPath(accountPath('demo'))}?${AUTH_API}&$filter=${encodeURIComponent(`assignedTo('${sp}')`)}`, undefined, asPrin);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.value.length, 2, r.text);

  // Out of the bottom group: the very next request is refused (the token still verifies).
  r = await d.admin('DELETE', `/v1.0/groups/${groups[0].id}/members/${sp}/$ref`);
  assert.equal(r.status, 204, r.text);
  r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'PermissionDenied');
  r = await listKeys();
  assert.equal(r.status, 403, r.text);
});

test('the CLI: user and group commands, the password read from standard input only', async (t) => {
  const d = await startDaemon(t);
  const cli = (args, input) => runCli(['--data-dir', d.dataDir, '-o', 'json', ...args], { input });
  let r = await cli(['user', 'create', 'cli@example.com', '--display-name', 'Cli User'], `${PASSWORD}\n`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.userPrincipalName, 'cli@example.com');
  const uid = r.json.id;
  r = await cli(['user', 'create', 'nopw@example.com'], '');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no password/);
  r = await cli(['user', 'create', 'weak@example.com'], 'short\n');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /password complexity/);
  r = await cli(['user', 'disable', 'CLI@example.com']);
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['user', 'show', uid]);
  assert.equal(r.json.accountEnabled, false);
  r = await cli(['user', 'reset-password', 'cli@example.com', '--force-change'], 'a-brand-new-password\n');
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['group', 'create', 'ops team']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.mailNickname, 'opsteam');
  const gid = r.json.id;
  r = await cli(['group', 'create', 'outer']);
  assert.equal(r.code, 0, r.stderr);
  const app = await createApp(d, 'cli-app');
  for (const m of ['cli@example.com', 'cli-app', 'ops team']) {
    r = await cli(['group', 'member', 'add', m === 'ops team' ? 'outer' : 'ops team', m]);
    assert.equal(r.code, 0, `${m}: ${r.stderr}`);
  }
  r = await cli(['group', 'member', 'list', 'ops team']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json.value.map((x) => x.id).sort(), [uid, app.servicePrincipalId].sort());
  r = await cli(['group', 'member', 'add', 'ops team', 'outer']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /circular membership/);
  r = await cli(['group', 'member', 'remove', 'ops team', 'cli@example.com']);
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['group', 'show', gid]);
  assert.equal(r.json.displayName, 'ops team');
  r = await cli(['group', 'delete', 'ops team']);
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['user', 'delete', 'cli@example.com']);
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['user', 'list']);
  assert.deepEqual(r.json.value, []);
  assert.deepEqual(findSecrets(d.stderr, [PASSWORD, 'a-brand-new-password']), []);
});

test('a managed identity in a group: its identity-endpoint token is served through the group, and refused once it is out', async (t) => {
  const d = await startDaemon(t, { args: ['--vm', 'vm1'] });
  await d.setupAccount('demo');
  const mi = await putUami(d, 'ua-grouped');
  await putVm(d, 'vm1', false, [mi.id]);
  const g = await createGroup(d, 'workloads');
  await addMember(d, g.id, mi.principalId);
  const m = await d.admin('GET', `/v1.0/groups/${g.id}/members`);
  assert.deepEqual(m.json.value.map((x) => [x.id, x['@odata.type'], x.appId]), [[mi.principalId, '#microsoft.graph.servicePrincipal', mi.clientId]]);
  await assign(d, accountPath('demo'), g.id, ROLE.openaiUser, { principalType: 'Group' });
  const tok = await imdsToken(d);
  assert.equal(tok.status, 200, tok.text);
  const bearer = { authorization: `Bearer ${tok.json.access_token}` };
  let r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer });
  assert.equal(r.status, 200, r.text);
  r = await d.admin('DELETE', `/v1.0/groups/${g.id}/members/${mi.principalId}/$ref`);
  assert.equal(r.status, 204, r.text);
  r = await d.chat('demo', 'chat', null, 'hi', { headers: bearer });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error.code, 'PermissionDenied');
});

test('hostile input on the user and group routes: refused in Graph\'s shape, nothing echoed, nothing written', async (t) => {
  const d = await startDaemon(t);
  const g = await createGroup(d, 'target');
  const long = `${'a'.repeat(5000)}@example.com`;
  let r = await d.admin('GET', `/v1.0/users/${long}`);
  assert.equal(r.status, 400, r.text);
  assert.ok(!r.text.includes('aaaaaaaaaa'), 'the name is not echoed');
  r = await d.admin('POST', '/v1.0/users', { displayName: 'x', userPrincipalName: long, passwordProfile: { password: PASSWORD } });
  assert.equal(r.status, 400, r.text);
  r = await d.admin('POST', '/v1.0/users', { displayName: 'x', userPrincipalName: 'nul@example.com', passwordProfile: { password: `${PASSWORD}\u0000tail` } });
  assert.equal(r.status, 400, r.text);
  r = await d.admin('POST', '/v1.0/users', { displayName: 'x', userPrincipalName: 'big@example.com', passwordProfile: { password: 'p'.repeat(257) } });
  assert.equal(r.status, 400, r.text);
  assert.ok(!r.text.includes('pppppppp'), 'the password is not echoed');
  r = await d.admin('POST', '/v1.0/users', { displayName: 'x', userPrincipalName: 'obj@example.com', passwordProfile: 'not an object' });
  assert.equal(r.status, 400, r.text);
  for (const ref of [`https://graph.microsoft.com/v1.0/directoryObjects/${'f'.repeat(100000)}`, 42, null, '../../x', 'https://evil.example/directoryObjects/not-a-guid']) {
    r = await d.admin('POST', `/v1.0/groups/${g.id}/members/$ref`, { '@odata.id': ref });
    assert.equal(r.status, 400, `${String(ref).slice(0, 60)}: ${r.text.slice(0, 300)}`);
    assert.equal(r.json.error.code, 'Request_BadRequest');
    assert.ok(r.json.error.innerError, 'Graph\'s innerError');
  }
  r = await d.admin('POST', '/v1.0/groups', { displayName: 'x'.repeat(300), mailNickname: 'x' });
  assert.equal(r.status, 400, r.text);
  r = await d.admin('POST', '/v1.0/groups', { displayName: 'ok', mailNickname: 'has space' });
  assert.equal(r.status, 400, r.text);
  assert.deepEqual((await d.admin('GET', '/v1.0/users')).json.value, []);
  assert.deepEqual((await d.admin('GET', '/v1.0/groups')).json.value.map((x) => x.id), [g.id]);
  assert.deepEqual((await d.admin('GET', `/v1.0/groups/${g.id}/members`)).json.value, []);
});
