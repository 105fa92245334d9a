# One sign-in with MSAL for Python as an application on Azure Stack Hub writes it: a
# ConfidentialClientApplication whose authority is keyless's ADFS-style authority
# (https://host:port/adfs), trusting keyless's CA through verify=, and
# acquire_token_for_client for one resource. MSAL skips its instance discovery at
# login.microsoftonline.com for such an authority; the parent runs this with HTTPS_PROXY
# pointing at a closed port (and NO_PROXY naming only keyless's host), so a request to
# any other host would fail here instead of leaving the machine.
# Settings: KL_AUTHORITY, KL_CA, KL_CLIENT_ID, KL_CLIENT_SECRET, KL_SCOPE.
# Prints one JSON line: the token response as MSAL returns it, or {"exception": ...}.
import json
import os
import sys

import msal

try:
    app = msal.ConfidentialClientApplication(
        os.environ["KL_CLIENT_ID"],
        client_credential=os.environ["KL_CLIENT_SECRET"],
        authority=os.environ["KL_AUTHORITY"],
        verify=os.environ["KL_CA"],
    )
    result = app.acquire_token_for_client([os.environ["KL_SCOPE"]])
    result["msal_version"] = msal.__version__
    result["token_endpoint"] = app.authority.token_endpoint
except Exception as e:  # the parent asserts on what went wrong
    result = {"exception": "%s: %s" % (type(e).__name__, e)}
print(json.dumps(result))
sys.stdout.flush()
