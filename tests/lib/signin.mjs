// The browser sign-in as a person's browser does it, over the daemon's TLS with cookies
// handled by hand: GET the authorize URL, read the sign-in page's form (its hidden
// fields, the CSRF cookie), POST it back with a user name and password. Used by the
// sign-in tests (integration and interop).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

export const PASSWORD = 'Tr0ub4dor&3-horse-battery';
export const DATA = 'https://cognitiveservices.azure.com';

export const form = (o) => Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

// A PKCE pair (RFC 7636, S256).
export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// The Set-Cookie headers of a response as { name: { value, attrs } } (attrs: the
// attribute string after the value, as sent).
export function setCookies(res) {
  const out = {};
  for (const line of [].concat(res.headers['set-cookie'] || [])) {
    const semi = line.indexOf(';');
    const pair = semi < 0 ? line : line.slice(0, semi);
    const eq = pair.indexOf('=');
    out[pair.slice(0, eq).trim()] = { value: pair.slice(eq + 1), attrs: semi < 0 ? '' : line.slice(semi + 1).trim() };
  }
  return out;
}

// A cookie jar: remembers what responses set (Max-Age=0 deletes) and writes the Cookie
// header.
export class Jar {
  constructor() { this.c = new Map(); }
  take(res) {
    for (const [k, v] of Object.entries(setCookies(res))) {
      if (/Max-Age=0/i.test(v.attrs)) this.c.delete(k);
      else this.c.set(k, v.value);
    }
    return res;
  }
  header() { return [...this.c].map(([k, v]) => `${k}=${v}`).join('; '); }
  get(k) { return this.c.get(k); }
  set(k, v) { this.c.set(k, v); }
}

const unescapeHtml = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

// The sign-in page's form: its action and every named input's value.
export function readForm(html) {
  const action = /<form method="post" action="([^"]*)"/.exec(html);
  assert.ok(action, `no sign-in form in: ${html.slice(0, 400)}`);
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]] = unescapeHtml(m[2]);
  return { action: unescapeHtml(action[1]), fields };
}

export function authorizePath(tid, params, v1 = false) {
  return `/${tid}/oauth2/${v1 ? '' : 'v2.0/'}authorize?${new URLSearchParams(params)}`;
}

// GET the authorize URL with the jar's cookies.
export async function authorize(d, tid, params, jar = new Jar(), { v1 = false } = {}) {
  return jar.take(await d.request('GET', authorizePath(tid, params, v1), { headers: { cookie: jar.header() } }));
}

// POSTs the page's form with these credentials (and overrides of its fields).
export async function postForm(d, page, jar, { username, password = PASSWORD, fields = {}, cookie, localAddress, timeoutMs, headers = {} } = {}) {
  const f = readForm(page.text);
  return jar.take(await d.request('POST', f.action, {
    localAddress,
    timeoutMs,
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookie ?? jar.header(), ...headers },
    body: form({ ...f.fields, username, password, ...fields }),
  }));
}

// The code and state of a redirect to the client; asserts it is one.
export function codeOf(res, redirectUri) {
  assert.equal(res.status, 302, `expected a redirect: ${res.status} ${res.text.slice(0, 500)}`);
  const loc = new URL(res.headers.location);
  assert.equal(`${loc.origin}${loc.pathname}`, redirectUri.replace(/\?.*$/, ''), 'redirected to the client');
  return { code: loc.searchParams.get('code'), state: loc.searchParams.get('state'), params: loc.searchParams };
}

// Signs user in through the page; returns the code's redirect (response) and the jar.
export async function signIn(d, tid, params, username, { jar = new Jar(), password = PASSWORD } = {}) {
  const page = await authorize(d, tid, params, jar);
  assert.equal(page.status, 200, page.text.slice(0, 500));
  const res = await postForm(d, page, jar, { username, password });
  return { res, jar };
}

export function redeem(d, tid, fields) {
  return d.request('POST', `/${tid}/oauth2/v2.0/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' },
    body: form({ grant_type: 'authorization_code', ...fields }),
  });
}

// A user with a password (Graph, admin socket).
export async function createUser(d, upn, extra = {}) {
  const r = await d.admin('POST', '/v1.0/users', {
    accountEnabled: true, displayName: upn.split('@')[0], mailNickname: upn.split('@')[0], userPrincipalName: upn,
    passwordProfile: { forceChangePasswordNextSignIn: false, password: PASSWORD }, ...extra,
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

// Registers an application for user sign-in (Graph's isFallbackPublicClient,
// publicClient.redirectUris / web.redirectUris).
export async function registerClient(d, app, { publicClient = true, redirectUris }) {
  const body = publicClient
    ? { isFallbackPublicClient: true, publicClient: { redirectUris } }
    : { isFallbackPublicClient: false, web: { redirectUris } };
  const r = await d.admin('PATCH', `/v1.0/applications/${app.id}`, body);
  assert.equal(r.status, 204, `PATCH application ${app.id}: ${r.status} ${r.text}`);
}
