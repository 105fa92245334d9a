// One sign-in and chat with ClientCertificateCredential (PS256 client assertion with
// x5t#S256, as @azure/identity sends it; x5c too with KL_SEND_X5C=1), pointed at keyless
// by authorityHost with disableInstanceDiscovery, then getBearerTokenProvider and
// openai's AzureOpenAI. The private CA is trusted through NODE_EXTRA_CA_CERTS.
// Settings: KL_AUTHORITY, KL_TENANT, KL_CLIENT_ID, KL_CERT_PEM (certificate and private
// key, PEM), KL_SEND_X5C, KL_ENDPOINT. Prints one JSON line like identity-client.mjs.
import { ClientCertificateCredential, getBearerTokenProvider } from '@azure/identity';
import { AzureOpenAI } from 'openai';

const credential = new ClientCertificateCredential(process.env.KL_TENANT, process.env.KL_CLIENT_ID, { certificate: process.env.KL_CERT_PEM }, {
  authorityHost: process.env.KL_AUTHORITY,
  disableInstanceDiscovery: true,
  sendCertificateChain: process.env.KL_SEND_X5C === '1',
});
const azureADTokenProvider = getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default');
const client = new AzureOpenAI({ endpoint: process.env.KL_ENDPOINT, azureADTokenProvider, apiVersion: '2024-10-21', deployment: 'chat', maxRetries: 0 });
try {
  const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello from a certificate' }] });
  console.log(JSON.stringify({ status: 200, content: r.choices[0].message.content }));
} catch (e) {
  console.log(JSON.stringify({ status: e.status ?? null, code: e.code ?? null, message: e.message, name: e.name }));
}
