"""One chat as a Python workload with a managed identity would write it: Debian's
azure-identity (python3-azure) ManagedIdentityCredential with no secret and no endpoint
configuration of its own (IDENTITY_ENDPOINT/IDENTITY_HEADER, set by `keyless run`, pick
the App Service source), then a plain HTTPS call to chat completions with the token.
Settings: KL_ENDPOINT (the account's endpoint, ending in '/'), KL_CA (the CA to trust for
the gateway), KL_MI_CLIENT_ID (optional: a user-assigned identity).
Prints one JSON line: {"status":200,"content":...} or {"status":N,"code":...,"message":...}.
"""
import json
import os

import requests
from azure.identity import ManagedIdentityCredential

client_id = os.environ.get("KL_MI_CLIENT_ID") or None
credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
token = credential.get_token("https://cognitiveservices.azure.com/.default")
r = requests.post(
    os.environ["KL_ENDPOINT"] + "openai/deployments/chat/chat/completions?api-version=2024-10-21",
    headers={"Authorization": "Bearer " + token.token},
    json={"messages": [{"role": "user", "content": "hello from python"}]},
    verify=os.environ["KL_CA"],
    timeout=20,
)
body = r.json()
if r.status_code == 200:
    print(json.dumps({"status": 200, "content": body["choices"][0]["message"]["content"]}))
else:
    err = body.get("error", {}) if isinstance(body, dict) else {}
    print(json.dumps({"status": r.status_code, "code": err.get("code"), "message": err.get("message")}))
