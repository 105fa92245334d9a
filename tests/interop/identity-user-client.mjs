// A person's script as they would write it: @azure/identity's UsernamePasswordCredential
// (ROPC, with the Azure CLI's well-known public client id, as the credential's docs show)
// pointed at keyless by authorityHost, getBearerTokenProvider for the Cognitive Services
// scope, and openai's AzureOpenAI with azureADTokenProvider. It calls chat completions,
// prints one JSON line, then waits for a line on stdin and calls again with the same
// credential (so the token MSAL cached is sent again) and prints a second line.
// Settings: KL_AUTHORITY, KL_TENANT, KL_CLIENT_ID, KL_USERNAME, KL_PASSWORD, KL_ENDPOINT.
// Each line: {"status":200,"content":...} or {"status":N,"code":...,"message":...}.
import { createInterface } from 'node:readline';

import { UsernamePasswordCredential, getBearerTokenProvider } from '@azure/identity';
import { AzureOpenAI } from 'openai';

const credential = new UsernamePasswordCredential(process.env.KL_TENANT, process.env.KL_CLIENT_ID, process.env.KL_USERNAME, process.env.KL_PASSWORD, {
  authorityHost: process.env.KL_AUTHORITY,
  disableInstanceDiscovery: true,
});
const azureADTokenProvider = getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default');
const client = new AzureOpenAI({ endpoint: process.env.KL_ENDPOINT, azureADTokenProvider, apiVersion: '2024-10-21', deployment: 'chat', maxRetries: 0 });

async function call() {
  try {
    const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello from a user' }] });
    console.log(JSON.stringify({ status: 200, content: r.choices[0].message.content }));
  } catch (e) {
    console.log(JSON.stringify({ status: e.status ?? null, code: e.code ?? null, message: e.message, name: e.name }));
  }
}

await call();
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line === 'again') await call();
  else break;
}
