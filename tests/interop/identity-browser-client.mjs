// @azure/identity's InteractiveBrowserCredential as a developer's script uses it: it opens
// the system browser on keylessd's sign-in page (here $BROWSER is browser-driver.mjs, which
// signs in as a person would), receives the code on its own loopback redirect URI, and the
// token calls AzureOpenAI through getBearerTokenProvider. Settings: KL_BASE, KL_TENANT,
// KL_CLIENT_ID (none: the credential's default client), KL_ENDPOINT. Prints one JSON line.
import { InteractiveBrowserCredential, getBearerTokenProvider } from '@azure/identity';
import { AzureOpenAI } from 'openai';

const env = process.env;
const scope = 'https://cognitiveservices.azure.com/.default';
const credential = new InteractiveBrowserCredential({
  tenantId: env.KL_TENANT, authorityHost: env.KL_BASE, disableInstanceDiscovery: true,
  // Without KL_CLIENT_ID: the credential's default, the Azure CLI's well-known public client.
  ...(env.KL_CLIENT_ID ? { clientId: env.KL_CLIENT_ID } : {}),
});
const token = await credential.getToken(scope);
const ai = new AzureOpenAI({ endpoint: env.KL_ENDPOINT, apiVersion: '2024-10-21', deployment: 'chat', azureADTokenProvider: getBearerTokenProvider(credential, scope), maxRetries: 0 });
const chat = await ai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello from the interactive credential' }] });
console.log(JSON.stringify({ appid: JSON.parse(Buffer.from(token.token.split('.')[1], 'base64url')).appid, oid: JSON.parse(Buffer.from(token.token.split('.')[1], 'base64url')).oid, content: chat.choices[0].message.content }));
