// A developer's script signing in with @azure/identity's DeviceCodeCredential, as its
// documentation writes it: every default (the Azure CLI's client id, its scopes) except
// where the authority is (authorityHost, the tenant, and disableInstanceDiscovery, since
// the authority is not Microsoft's). userPromptCallback prints the prompt as one JSON line
// ({"prompt":{userCode,verificationUri,message}}) for the test, which completes the page
// as the person would. Then openai's AzureOpenAI with getBearerTokenProvider calls the
// model and prints {"status":200,"content":...} or {"status":N,"code":...,"message":...};
// it then waits for a line on stdin and calls again with the same credential (its token
// cached: no new sign-in), so the test can change the user's groups in between.
// Settings: KL_AUTHORITY, KL_TENANT, KL_ENDPOINT.
import { createInterface } from 'node:readline';
import { DeviceCodeCredential, getBearerTokenProvider } from '@azure/identity';
import { AzureOpenAI } from 'openai';

const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const credential = new DeviceCodeCredential({
  tenantId: process.env.KL_TENANT,
  authorityHost: process.env.KL_AUTHORITY,
  disableInstanceDiscovery: true,
  userPromptCallback: (info) => say({ prompt: { userCode: info.userCode, verificationUri: info.verificationUri, message: info.message } }),
});
const azureADTokenProvider = getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default');
const client = new AzureOpenAI({ endpoint: process.env.KL_ENDPOINT, azureADTokenProvider, apiVersion: '2024-10-21', deployment: 'chat', maxRetries: 0 });

async function call() {
  try {
    const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello from a device' }] });
    say({ status: 200, content: r.choices[0].message.content });
  } catch (e) {
    say({ status: e.status ?? null, code: e.code ?? null, message: e.message, name: e.name });
  }
}

await call();
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === 'again') await call();
  else break;
}
