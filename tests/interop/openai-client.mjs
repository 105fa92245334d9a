// Runs one scenario with the official `openai` package, exactly as an application would:
// the only settings are the endpoint, the key, the API version and the deployment (the
// private CA is trusted through NODE_EXTRA_CA_CERTS, set by the parent at process start).
// Usage: node openai-client.mjs <scenario>; settings come from KL_ENDPOINT, KL_KEY,
// KL_DEPLOYMENT, KL_EMBED_DEPLOYMENT (and KL_REVOKED_KEY for wrongKey). Exits 0 when every check of the scenario passed.
import assert from 'node:assert/strict';
import OpenAI, { AzureOpenAI } from 'openai';

const endpoint = process.env.KL_ENDPOINT;
const apiKey = process.env.KL_KEY;
const deployment = process.env.KL_DEPLOYMENT || 'chat';
const embedDeployment = process.env.KL_EMBED_DEPLOYMENT || 'emb';
const apiVersion = '2024-10-21';
const ECHO = 'hello from the official client';
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: ECHO },
];

const azure = (opts = {}) => new AzureOpenAI({ apiKey, endpoint, apiVersion, deployment, maxRetries: 0, ...opts });
const v1 = () => new OpenAI({ baseURL: `${endpoint}openai/v1/`, apiKey, maxRetries: 0 });

async function expectError(what, fn, Cls, status, code) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${what}: the call did not fail`);
  const seen = `${err?.constructor?.name} status=${err?.status} code=${err?.code} error=${JSON.stringify(err?.error)} message=${err?.message}`;
  assert.ok(err instanceof Cls, `${what}: expected ${Cls.name}, got ${seen}`);
  assert.equal(err.status, status, `${what}: ${seen}`);
  assert.equal(err.code, code, `${what}: ${seen}`);
  assert.equal(typeof err.error?.message, 'string', `${what}: ${seen}`);
  return err;
}

const scenarios = {
  async chat() {
    const r = await azure().chat.completions.create({ model: 'gpt-4o-mini', messages });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, ECHO);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(typeof r.id, 'string');
    assert.equal(typeof r.created, 'number');
    assert.ok(r.usage.prompt_tokens >= 5 && r.usage.completion_tokens === 5, JSON.stringify(r.usage));
    // withResponse exposes the headers Azure sends.
    const { response } = await azure().chat.completions.create({ model: 'x', messages }).withResponse();
    assert.match(response.headers.get('x-ms-request-id') || '', /^[0-9a-f-]{36}$/i);
    assert.match(response.headers.get('content-type') || '', /^application\/json/);
  },

  async stream() {
    const s = await azure().chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish = null;
    let role = null;
    let usage = null;
    let n = 0;
    for await (const chunk of s) {
      n++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta?.role) role = c.delta.role;
        if (c.delta?.content) text += c.delta.content;
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(text, ECHO);
    assert.equal(role, 'assistant');
    assert.equal(finish, 'stop');
    assert.ok(n >= 3, `only ${n} chunks`);
    assert.ok(usage && usage.completion_tokens === 5, `usage chunk: ${JSON.stringify(usage)}`);
  },

  async streamHelper() {
    const runner = azure().chat.completions.stream({ model: 'gpt-4o-mini', messages });
    const deltas = [];
    runner.on('content', (delta) => deltas.push(delta));
    const final = await runner.finalContent();
    assert.equal(final, ECHO);
    assert.equal(deltas.join(''), ECHO);
    const completion = await runner.finalChatCompletion();
    assert.equal(completion.choices[0].finish_reason, 'stop');
  },

  async embeddings() {
    const client = azure({ deployment: embedDeployment });
    const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'embed me' });
    assert.equal(r.object, 'list');
    assert.equal(r.data.length, 1);
    const v = r.data[0].embedding;
    assert.equal(v.length, 16);
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    // float32 on the wire (the SDK asks for base64 unless told otherwise).
    assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
    const again = await client.embeddings.create({ model: 'x', input: ['embed me', 'something else'] });
    assert.equal(again.data.length, 2);
    assert.deepEqual(again.data[0].embedding, v, 'embeddings are not deterministic');
    assert.notDeepEqual(again.data[1].embedding, v);
    assert.deepEqual(again.data.map((d) => d.index), [0, 1]);
    // Explicit floats: plain JSON numbers, the same vector up to float32 rounding.
    const floats = await client.embeddings.create({ model: 'x', input: 'embed me', encoding_format: 'float' });
    const f = floats.data[0].embedding;
    assert.equal(f.length, 16);
    f.forEach((x, i) => assert.ok(Math.abs(x - v[i]) < 1e-6, `component ${i}: ${x} vs ${v[i]}`));
  },

  async completions() {
    const r = await azure().completions.create({ model: 'x', prompt: 'complete this prompt' });
    assert.equal(r.choices[0].text, 'complete this prompt');
  },

  async v1Chat() {
    const client = v1();
    const r = await client.chat.completions.create({ model: deployment, messages });
    assert.equal(r.choices[0].message.content, ECHO);
    const s = await client.chat.completions.create({ model: deployment, messages, stream: true });
    let text = '';
    for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, ECHO);
    const e = await client.embeddings.create({ model: embedDeployment, input: 'v1 embed' });
    assert.equal(e.data[0].embedding.length, 16);
  },

  async v1Models() {
    const page = await v1().models.list();
    const ids = [];
    for await (const m of page) {
      ids.push(m.id);
      assert.equal(m.object, 'model');
      assert.equal(m.owned_by, 'keyless');
      assert.equal(typeof m.created, 'number');
    }
    assert.deepEqual(ids.sort(), [deployment, embedDeployment].sort());
  },

  async azureV1BaseUrl() {
    // AzureOpenAI pointed at the v1 base URL sends /openai/v1/deployments/{d}/... .
    const client = new AzureOpenAI({ apiKey, baseURL: `${endpoint}openai/v1/`, apiVersion: 'preview', deployment, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'x', messages });
    assert.equal(r.choices[0].message.content, ECHO);
  },

  async wrongKey() {
    const err = await expectError('AzureOpenAI chat, wrong key',
      () => new AzureOpenAI({ apiKey: 'wrong-key', endpoint, apiVersion, deployment, maxRetries: 0 }).chat.completions.create({ model: 'x', messages }),
      OpenAI.AuthenticationError, 401, '401');
    assert.match(err.message, /^401 Access denied due to invalid subscription key/);
    await expectError('AzureOpenAI streaming chat, wrong key',
      () => new AzureOpenAI({ apiKey: 'wrong-key', endpoint, apiVersion, deployment, maxRetries: 0 }).chat.completions.create({ model: 'x', messages, stream: true }),
      OpenAI.AuthenticationError, 401, '401');
    // A revoked key (well-formed, no longer valid) in both clients.
    const revoked = process.env.KL_REVOKED_KEY;
    assert.ok(revoked, 'KL_REVOKED_KEY not set');
    await expectError('AzureOpenAI chat, revoked key',
      () => new AzureOpenAI({ apiKey: revoked, endpoint, apiVersion, deployment, maxRetries: 0 }).chat.completions.create({ model: 'x', messages }),
      OpenAI.AuthenticationError, 401, '401');
    await expectError('OpenAI v1 chat, revoked key',
      () => new OpenAI({ baseURL: `${endpoint}openai/v1/`, apiKey: revoked, maxRetries: 0 }).chat.completions.create({ model: deployment, messages }),
      OpenAI.AuthenticationError, 401, '401');
    // A Bearer value that is not shaped like a key is taken for a token: still a 401.
    let tokenErr;
    try {
      await new OpenAI({ baseURL: `${endpoint}openai/v1/`, apiKey: 'not-a-key', maxRetries: 0 }).chat.completions.create({ model: deployment, messages });
    } catch (e) {
      tokenErr = e;
    }
    assert.ok(tokenErr instanceof OpenAI.AuthenticationError, `garbage Bearer: ${tokenErr?.constructor?.name} ${tokenErr?.message}`);
    assert.equal(tokenErr.status, 401);
  },

  async keyDisabled() {
    await expectError('AzureOpenAI chat', () => azure().chat.completions.create({ model: 'x', messages }), OpenAI.PermissionDeniedError, 403, 'AuthenticationTypeDisabled');
    await expectError('OpenAI v1 chat', () => v1().chat.completions.create({ model: deployment, messages }), OpenAI.PermissionDeniedError, 403, 'AuthenticationTypeDisabled');
  },

  async unknownDeployment() {
    await expectError('AzureOpenAI chat', () => azure({ deployment: 'no-such-deployment' }).chat.completions.create({ model: 'x', messages }), OpenAI.NotFoundError, 404, 'DeploymentNotFound');
    await expectError('OpenAI v1 chat', () => v1().chat.completions.create({ model: 'no-such-deployment', messages }), OpenAI.NotFoundError, 404, 'DeploymentNotFound');
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
try {
  await scenarios[name]();
  console.log(JSON.stringify({ scenario: name, ok: true }));
} catch (e) {
  console.error(`scenario ${name} failed: ${e.stack || e}`);
  if (e.cause) console.error(`cause: ${e.cause.stack || e.cause}`);
  process.exit(1);
}
