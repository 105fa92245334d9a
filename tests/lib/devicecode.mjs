// The device-code flow as a person and a device drive it: the devicecode endpoint, the
// token endpoint's polls, and the verification page at /devicelogin completed over HTTPS
// with the sign-in tests' cookie jar (as a browser would: the CSRF cookie is sent back,
// the hidden field copied from the page). Used by tests/integration/devicecode.test.mjs and
// tests/interop/identity-devicecode.test.mjs.
import assert from 'node:assert/strict';

import { Jar, PASSWORD, createUser, form } from './signin.mjs';

export { PASSWORD, createUser, form };

// The Azure CLI's client id: DeviceCodeCredential's default, a public client in every
// keyless tenant.
export const AZURE_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
export const DATA_SCOPE = 'https://cognitiveservices.azure.com/.default';
export const USER_SCOPE = `${DATA_SCOPE} openid profile offline_access`;
export const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

const FORM = { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' };

export function requestDeviceCode(d, tenant, { clientId = AZURE_CLI, scope = USER_SCOPE, v1 = false, extra = {}, localAddress, headers = {} } = {}) {
  const fields = { client_id: clientId, ...(scope === null ? {} : { scope }), ...extra };
  return d.request('POST', `/${tenant}/oauth2/${v1 ? '' : 'v2.0/'}devicecode`, { headers: { ...FORM, ...headers }, body: form(fields), localAddress });
}

export async function deviceCode(d, tenant, opts) {
  const r = await requestDeviceCode(d, tenant, opts);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

// One poll, as MSAL sends it (grant_type=device_code) unless grant says otherwise.
export function poll(d, tenant, code, { clientId = AZURE_CLI, grant = 'device_code', scope = USER_SCOPE, v1 = false } = {}) {
  return d.request('POST', `/${tenant}/oauth2/${v1 ? '' : 'v2.0/'}token`, {
    headers: FORM,
    body: form({ client_id: clientId, grant_type: grant, device_code: code, scope, client_info: '1' }),
  });
}

export function assertOAuthError(r, error, code, what = '') {
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json?.error, error, `${what}: ${r.text}`);
  assert.deepEqual(r.json.error_codes, [code], `${what}: ${r.text}`);
  assert.match(r.json.error_description, new RegExp(`^AADSTS${code}: `), what);
}

// A browser at the verification page: cookies kept by hand, the CSRF field copied from
// each page into the next form.
export class Browser {
  constructor(d, { localAddress } = {}) {
    this.d = d;
    this.jar = new Jar();
    this.localAddress = localAddress;
    this.csrf = null;
  }

  take(r) {
    this.jar.take(r);
    const m = /name="csrf_token" value="([^"]+)"/.exec(r.text);
    if (m) this.csrf = m[1];
    return r;
  }

  async get(path = '/devicelogin') {
    const cookie = this.jar.header();
    const headers = cookie ? { cookie } : {};
    return this.take(await this.d.request('GET', path, { headers, localAddress: this.localAddress }));
  }

  async post(fields, { path = '/devicelogin', csrf = this.csrf, cookies = true } = {}) {
    const headers = { ...FORM };
    if (cookies && this.jar.header()) headers.cookie = this.jar.header();
    const body = form({ ...(csrf === null ? {} : { csrf_token: csrf }), ...fields });
    return this.take(await this.d.request('POST', path, { headers, body, localAddress: this.localAddress }));
  }

  // Step 1: the code, typed as a person might (any case, with or without the dash).
  async enterCode(userCode) {
    if (!this.csrf) {
      const g = await this.get();
      assert.equal(g.status, 200, g.text);
    }
    return this.post({ user_code: userCode, action: 'next' });
  }

  // Steps 1 and 2: the code, then the user's name and password (Continue).
  async approve(userCode, upn, password = PASSWORD) {
    const s1 = await this.enterCode(userCode);
    assert.equal(s1.status, 200, s1.text);
    const hidden = /name="user_code" value="([^"]+)"/.exec(s1.text)[1];
    return this.post({ user_code: hidden, username: upn, password, action: 'continue' });
  }

  async decline(userCode) {
    const s1 = await this.enterCode(userCode);
    assert.equal(s1.status, 200, s1.text);
    const hidden = /name="user_code" value="([^"]+)"/.exec(s1.text)[1];
    return this.post({ user_code: hidden, action: 'cancel' });
  }
}

// Resolves once the clock has passed the polling interval since t0 (ms, Date.now()):
// the protocol's own wait, not a guess at how long something takes.
export function afterInterval(t0, intervalS) {
  const left = t0 + intervalS * 1000 + 100 - Date.now();
  return new Promise((r) => setTimeout(r, Math.max(0, left)));
}
