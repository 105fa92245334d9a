// One chat as a workload with a managed identity would write it: @azure/identity's
// ManagedIdentityCredential with no secret and no endpoint configuration of its own (the
// platform's variables pick the source: IDENTITY_ENDPOINT/IDENTITY_HEADER for App Service,
// AZURE_POD_IDENTITY_AUTHORITY_HOST for IMDS), getBearerTokenProvider for the Cognitive
// Services scope, and openai's AzureOpenAI with azureADTokenProvider.
// Settings: KL_ENDPOINT; at most one of KL_MI_CLIENT_ID, KL_MI_RESOURCE_ID, KL_MI_OBJECT_ID
// (none: the default identity); KL_DEFAULT_CREDENTIAL=1 uses DefaultAzureCredential.
// Prints one JSON line: {"status":200,"content":...} or {"status":N,"code":...,"message":...}.
import { DefaultAzureCredential, ManagedIdentityCredential, getBearerTokenProvider } from '@azure/identity';
import { AzureOpenAI } from 'openai';

const opts = {};
if (process.env.KL_MI_CLIENT_ID) opts.clientId = process.env.KL_MI_CLIENT_ID;
if (process.env.KL_MI_RESOURCE_ID) opts.resourceId = process.env.KL_MI_RESOURCE_ID;
if (process.env.KL_MI_OBJECT_ID) opts.objectId = process.env.KL_MI_OBJECT_ID;
const credential = process.env.KL_DEFAULT_CREDENTIAL === '1'
  ? new DefaultAzureCredential(opts.clientId ? { managedIdentityClientId: opts.clientId } : {})
  : new ManagedIdentityCredential(opts);
const azureADTokenProvider = getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default');
const client = new AzureOpenAI({ endpoint: process.env.KL_ENDPOINT, azureADTokenProvider, apiVersion: '2024-10-21', deployment: 'chat', maxRetries: 0 });
try {
  const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello from a managed identity' }] });
  console.log(JSON.stringify({ status: 200, content: r.choices[0].message.content }));
} catch (e) {
  console.log(JSON.stringify({ status: e.status ?? null, code: e.code ?? null, message: e.message, name: e.name }));
}
