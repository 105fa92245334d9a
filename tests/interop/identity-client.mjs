// One sign-in and chat with the official clients, as an application would write it:
// @azure/identity's ClientSecretCredential pointed at keyless by authorityHost (with
// disableInstanceDiscovery, since the authority is not Microsoft's), getBearerTokenProvider
// for the Cognitive Services scope, and openai's AzureOpenAI with azureADTokenProvider.
// The private CA is trusted through NODE_EXTRA_CA_CERTS (set by the parent at start).
// Settings: KL_AUTHORITY, KL_TENANT, KL_CLIENT_ID, KL_CLIENT_SECRET, KL_ENDPOINT.
// Prints one JSON line: {"status":200,"content":...} or {"status":N,"code":...,"message":...}.
import { ClientSecretCredential, getBearerTokenProvider } from '@azure/identity';
import { AzureOpenAI } from 'openai';

const credential = new ClientSecretCredential(process.env.KL_TENANT, process.env.KL_CLIENT_ID, process.env.KL_CLIENT_SECRET, {
  authorityHost: process.env.KL_AUTHORITY,
  disableInstanceDiscovery: true,
});
const azureADTokenProvider = getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default');
const client = new AzureOpenAI({ endpoint: process.env.KL_ENDPOINT, azureADTokenProvider, apiVersion: '2024-10-21', deployment: 'chat', maxRetries: 0 });
try {
  const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello from identity' }] });
  console.log(JSON.stringify({ status: 200, content: r.choices[0].message.content }));
} catch (e) {
  console.log(JSON.stringify({ status: e.status ?? null, code: e.code ?? null, message: e.message, name: e.name }));
}
