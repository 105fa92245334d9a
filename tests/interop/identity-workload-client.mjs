// One sign-in and chat with WorkloadIdentityCredential: the federated token file (an
// external issuer's JWT, as Kubernetes projects it) is the client assertion, pointed at
// keyless by authorityHost with disableInstanceDiscovery; then getBearerTokenProvider and
// openai's AzureOpenAI. The private CA is trusted through NODE_EXTRA_CA_CERTS.
// Settings: KL_AUTHORITY, KL_TENANT, KL_CLIENT_ID, KL_TOKEN_FILE, KL_ENDPOINT.
import { WorkloadIdentityCredential, getBearerTokenProvider } from '@azure/identity';
import { AzureOpenAI } from 'openai';

const credential = new WorkloadIdentityCredential({
  tenantId: process.env.KL_TENANT,
  clientId: process.env.KL_CLIENT_ID,
  tokenFilePath: process.env.KL_TOKEN_FILE,
  authorityHost: process.env.KL_AUTHORITY,
  disableInstanceDiscovery: true,
});
const azureADTokenProvider = getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default');
const client = new AzureOpenAI({ endpoint: process.env.KL_ENDPOINT, azureADTokenProvider, apiVersion: '2024-10-21', deployment: 'chat', maxRetries: 0 });
try {
  const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello from a workload' }] });
  console.log(JSON.stringify({ status: 200, content: r.choices[0].message.content }));
} catch (e) {
  console.log(JSON.stringify({ status: e.status ?? null, code: e.code ?? null, message: e.message, name: e.name }));
}
