// The official ARM SDK as an operator's tool would use it: @azure/arm-cognitiveservices'
// CognitiveServicesManagementClient with @azure/identity's ClientSecretCredential, pointed
// at keyless by endpoint settings only (endpoint/$host, and the ARM scope, which the SDK
// otherwise derives from the endpoint). It reads the account's keys and regenerates Key2.
// Settings: KL_AUTHORITY, KL_TENANT, KL_CLIENT_ID, KL_CLIENT_SECRET, KL_ARM, KL_SUB, KL_RG,
// KL_ACCOUNT. Prints one JSON line: {"status":200,"key1":...,"key2":...,"key2After":...}
// or {"status":N,"code":...,"message":...}.
import { ClientSecretCredential } from '@azure/identity';
import { CognitiveServicesManagementClient } from '@azure/arm-cognitiveservices';

const credential = new ClientSecretCredential(process.env.KL_TENANT, process.env.KL_CLIENT_ID, process.env.KL_CLIENT_SECRET, {
  authorityHost: process.env.KL_AUTHORITY,
  disableInstanceDiscovery: true,
});
const client = new CognitiveServicesManagementClient(credential, process.env.KL_SUB, {
  endpoint: process.env.KL_ARM,
  $host: process.env.KL_ARM,
  credentialScopes: ['https://management.azure.com/.default'],
  retryOptions: { maxRetries: 0 },
});
const rg = process.env.KL_RG;
const name = process.env.KL_ACCOUNT;
try {
  const keys = await client.accounts.listKeys(rg, name);
  const after = await client.accounts.regenerateKey(rg, name, 'Key2');
  console.log(JSON.stringify({ status: 200, key1: keys.key1, key2: keys.key2, key1After: after.key1, key2After: after.key2 }));
} catch (e) {
  console.log(JSON.stringify({ status: e.statusCode ?? null, code: e.code ?? null, message: e.message, name: e.name }));
}
