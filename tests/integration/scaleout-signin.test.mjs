// Browser sign-in on two keylessd nodes sharing one PostgreSQL (started by this file): a
// code issued on node A and presented to A and B at the same moment is redeemed exactly
// once, and the session cookie A set opens B's authorize endpoint without the form
// (codes and sessions live in the store, not in a node).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { createApp, tenantId } from '../lib/authz.mjs';
import { PROPAGATION_MS, Postgres, twoNodes, within } from '../lib/pg.mjs';
import { DATA, Jar, authorize, codeOf, createUser, pkce, redeem, registerClient, signIn } from '../lib/signin.mjs';

const REDIRECT = 'http://127.0.0.1:8400/callback';
const SCOPE = `${DATA}/.default openid`;

const pg = new Postgres();
before(async () => {
  await pg.start();
});
after(async () => {
  await pg.stop();
});

test('a code raced to two nodes is redeemed once; a session made on A is known on B', async (t) => {
  const { a, b } = await twoNodes(t, pg);
  const tid = await tenantId(a);
  const app = await createApp(a, 'signin-app');
  await registerClient(a, app, { publicClient: true, redirectUris: [REDIRECT] });
  await createUser(a, 'ann@example.com');
  const p = pkce();
  const params = (state) => ({
    client_id: app.appId, response_type: 'code', redirect_uri: REDIRECT, scope: SCOPE, state,
    code_challenge: p.challenge, code_challenge_method: 'S256',
  });
  // B knows the app and the user once its snapshot has them.
  await within(PROPAGATION_MS, async () => (await authorize(b, tid, params('probe'))).status === 200, 'the app on node B');

  let wins = 0;
  for (let i = 0; i < 5; i++) {
    const { res, jar } = await signIn(a, tid, params(`s${i}`), 'ann@example.com');
    const { code } = codeOf(res, REDIRECT);
    const body = { client_id: app.appId, code, redirect_uri: REDIRECT, code_verifier: p.verifier, scope: SCOPE };
    // Which node is asked first alternates, so each gets its chance to win.
    const [x, y] = i % 2 ? (await Promise.all([redeem(b, tid, body), redeem(a, tid, body)])).reverse()
      : await Promise.all([redeem(a, tid, body), redeem(b, tid, body)]);
    const statuses = [x.status, y.status].sort();
    assert.deepEqual(statuses, [200, 400], `round ${i}: ${x.text} / ${y.text}`);
    const loser = x.status === 400 ? x : y;
    assert.equal(loser.json.error, 'invalid_grant');
    assert.deepEqual(loser.json.error_codes, [54005]);
    if (x.status === 200) wins++;
    // The session cookie set by A: B signs the user in without the form.
    const viaB = await authorize(b, tid, params(`b${i}`), jar);
    assert.equal(codeOf(viaB, REDIRECT).state, `b${i}`, 'B skipped the form');
  }
  t.diagnostic(`node A won ${wins} of 5 races, node B ${5 - wins}`);
  // Without the cookie B shows the form.
  assert.equal((await authorize(b, tid, params('none'), new Jar())).status, 200);
});
