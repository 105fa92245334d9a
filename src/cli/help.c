/* Help pages of the keyless CLI; docs/cli.md says the same at more length. */
#include "cli/help.h"

#include <stdbool.h>
#include <string.h>

#include "cli/commands.h"
#include "common/limits.h"

/* The texts: one literal a line of output, limits spliced in with KL_STR. */
/* clang-format off */
static const char OVERVIEW_HEAD[] =
    "keyless - manage keylessd: a local one through its admin socket, or a remote one\n"
    "over TLS as yourself after 'keyless login'\n"
    "\n"
    "Usage: keyless [global options] COMMAND [ARGUMENTS] [options]\n"
    "\n"
    "Commands:\n";

static const char OVERVIEW_TAIL[] =
    "  (SCOPE is --scope ARM-SCOPE or --account NAME; 'keyless role --help')\n"
    "\n"
    "Global options (accepted anywhere on the line):\n"
    "  --data-dir DIR         data directory of keylessd; the CLI connects to\n"
    "                         DIR/admin.sock (env KEYLESS_DATA_DIR; default\n"
    "                         /var/lib/keyless as root, else $XDG_DATA_HOME/keyless\n"
    "                         if absolute, else $HOME/.local/share/keyless)\n"
    "  --server URL           the keylessd signed in to with 'keyless login' (https://\n"
    "                         HOST:PORT); without it, the login file's server is used\n"
    "                         unless a data directory is named ('keyless login --help')\n"
    "  -o, --output FORMAT    table (default) or json (the server's JSON, indented)\n"
    "  --subscription ID      subscription (env KEYLESS_SUBSCRIPTION; default\n"
    "                         00000000-0000-0000-0000-000000000000)\n"
    "  --resource-group NAME  resource group (env KEYLESS_RESOURCE_GROUP; default\n"
    "                         \"default\")\n"
    "  -h, --help             this help; 'keyless account --help' for a command group\n"
    "  --version              print the version\n"
    "\n"
    "Exit codes:\n"
    "  0  success (deleting something that does not exist also succeeds)\n"
    "  1  keylessd refused the request (HTTP 4xx other than 404, or 5xx; the\n"
    "     server's error is printed as \"error: <code>: <message>\"), or its answer\n"
    "     was unusable; for 'role check': access is denied\n"
    "  2  usage error: unknown command or option, missing or invalid argument\n"
    "  3  keylessd cannot be reached: the admin socket is missing, refuses the\n"
    "     connection or did not answer\n"
    "  4  not found: keylessd answered 404, or no application or role has the\n"
    "     name given\n"
    "\n"
    "Secrets are never taken from the command line: an upstream credential is read\n"
    "from the environment variable named by --credential-env, a user's password\n"
    "from standard input (or a prompt with echo off on a terminal).\n";

static const char USER[] =
    "Users of the directory (Graph's /v1.0/users). UPN is a user principal name,\n"
    "local@domain; USER is one, or an object id. The password is read from standard\n"
    "input (its first line) or, on a terminal, from a prompt that asks twice with echo\n"
    "off; never from the command line. It must be " KL_STR(KL_MIN_PASSWORD) " to " KL_STR(KL_MAX_PASSWORD) " bytes and differ from\n"
    "the name. --force-change makes the user change it at the next sign-in\n"
    "(an administrator's temporary password).\n"
    "  printf '%s\\n' \"$PW\" | keyless user create ann@example.com --display-name Ann\n";

static const char GROUP[] =
    "Security groups (Graph's /v1.0/groups). GROUP is a group's object id or display\n"
    "name. MEMBER is a user principal name, a group's name, an application's name or\n"
    "client id, or any object id; groups may contain groups (no cycles). A role\n"
    "assigned to a group (role assignment create --assignee GROUP-ID) applies to every\n"
    "member, however deeply nested, from the next request on.\n";

static const char ACCOUNT[] =
    "An account is a Microsoft.CognitiveServices account: an endpoint with its own\n"
    "deployments and two API keys (key1, key2), created with the account.\n"
    "\n"
    "  create   creates the account in the resource group; refuses a name that\n"
    "           already exists there (use update). --disable-local-auth turns API\n"
    "           keys off from the start; --location defaults to \"local\", --kind\n"
    "           to OpenAI.\n"
    "  update   changes what its options say; everything else is kept.\n"
    "             --disable-local-auth true|false  API keys off (true) or on\n"
    "             --public-network-access Disabled answers only on private\n"
    "                                  listeners (keylessd --private-listen)\n"
    "             --default-action Deny  refuses callers outside the ip rules\n"
    "             --allow-ip CIDR      adds an ip rule (repeatable; an address or\n"
    "                                  CIDR, IPv4 or IPv6)\n"
    "           See docs/network-rules.md.\n"
    "  show     prints one account.\n"
    "  list     lists the accounts of the resource group given with\n"
    "           --resource-group (or KEYLESS_RESOURCE_GROUP); without one, of the\n"
    "           whole subscription.\n"
    "  delete   deletes the account with its deployments and keys.\n";

static const char DEPLOYMENT[] =
    "A deployment is a model served under a name of the account, from a backend:\n"
    "the built-in echo model, or an OpenAI-compatible model server.\n"
    "\n"
    "  create   creates the deployment, or replaces it if it exists.\n"
    "             --backend echo       the echo model (the default)\n"
    "             --backend URL        forward to the model server at URL\n"
    "                                  (http:// or https://, e.g.\n"
    "                                  http://127.0.0.1:8000/v1)\n"
    "             --model NAME         the model name clients see (default: the\n"
    "                                  deployment name)\n"
    "             --upstream-model N   the model name sent to the model server\n"
    "                                  (default: --model)\n"
    "             --credential-env VAR send the value of environment variable VAR\n"
    "                                  to the model server as its API key. keylessd\n"
    "                                  stores it sealed and never returns it.\n"
    "  show     prints one deployment (whether a credential is stored, never it).\n"
    "  list     lists the deployments of the account.\n"
    "  delete   deletes the deployment.\n"
    "\n"
    "Example:\n"
    "  UPSTREAM_KEY=sk-... keyless deployment create demo llama --backend \\\n"
    "      http://127.0.0.1:8000/v1 --upstream-model llama3 --credential-env UPSTREAM_KEY\n";

static const char KEYS[] =
    "Prints the two API keys of the account, with AGE (since the key was created or\n"
    "regenerated) and LAST-USED (the day, UTC, of its last use; \"never\").\n"
    "--older-than AGE (e.g. 90d, 12h, 2w) shows only keys at least that old, for\n"
    "scripts that rotate them. regenerate replaces one key; the old\n"
    "value stops working on the next request, the other key keeps working, so\n"
    "clients can be moved from one key to the other without downtime. Both fail\n"
    "while the account has API keys turned off (account update NAME\n"
    "--disable-local-auth true).\n";

static const char HEALTH[] = "Asks keylessd whether it is up (GET /healthz on the admin socket).\n"
                             "Exits 0 when it is, 3 when it cannot be reached.\n";

static const char STORE[] =
    "Copies every row of one store into another, keys and sealed values as they are,\n"
    "so API keys, credentials and role assignments keep working when keylessd is\n"
    "pointed at the new store with the same key-encryption key. Stop keylessd first.\n"
    "The destination is created (migrated) if needed and must be empty. The password\n"
    "comes from PGPASSFILE or PGPASSWORD, never from the URL. Exits 0 on success, 1\n"
    "when the copy was refused or failed (nothing is written then), 2 on a usage error.\n";

static const char TENANT[] =
    "  show   prints the directory tenant keylessd created on its first start: its id\n"
    "         (the tenant of tokens and of the Entra-style endpoints), name and creation\n"
    "         time. It never changes.\n"
    "  set    changes the tenant's settings: --password-grant on|off allows or refuses\n"
    "         the password grant (ROPC; off by default), for clients that still send a\n"
    "         user's name and password to the token endpoint.\n";

static const char SIGNING_KEY[] =
    "The keys the token service signs access tokens with (RSA-2048 unless keylessd runs\n"
    "with --signing-key-alg ES256), kept sealed under the key-encryption key. keylessd\n"
    "rotates them by itself (--signing-key-rotation-days, default 30): a new key is\n"
    "published in JWKS " KL_STR(KL_SIGNING_PUBLISH_LEAD_MIN) " minutes before it signs, and the one it replaces stays\n"
    "published until the last token it signed has expired.\n"
    "\n"
    "  list     kid, algorithm, status (active, pending, retiring, retired, revoked) and\n"
    "           dates of every key.\n"
    "  rotate   makes a new key that signs from now on; tokens signed by the earlier keys\n"
    "           stay valid until they expire. With --revoke-previous (a key may have\n"
    "           leaked) every earlier key is revoked: its tokens are refused at once.\n";

static const char SIGNIN[] =
    "The sign-in log: every token the token service issued or refused, newest first\n"
    "(at most 100): time, client id, credential type, address, result and, for a\n"
    "refusal, the AADSTS code and why. Secrets are never recorded.\n";

static const char RUN[] =
    "Starts COMMAND as a workload of the site NAME (Microsoft.Web/sites), the way App\n"
    "Service starts an app: IDENTITY_ENDPOINT and IDENTITY_HEADER are set, so\n"
    "ManagedIdentityCredential and DefaultAzureCredential inside it get the site's\n"
    "managed identities' tokens with no secret in its code or configuration.\n"
    "IDENTITY_HEADER is a fresh secret for this launch only; keylessd keeps only its\n"
    "keyed hash. It is revoked when COMMAND exits, and it lapses by itself within 15\n"
    "minutes if this command is killed without a chance to revoke it (it renews the\n"
    "lease while COMMAND runs). Signals (INT, TERM, HUP, QUIT, USR1, USR2, WINCH) are\n"
    "passed on to COMMAND; the exit status is COMMAND's (128+N if a signal N ended\n"
    "it). Needs Microsoft.Web/sites/identityHeaders/write on the site (and /delete to\n"
    "revoke), which Owner and Contributor have.\n";

static const char APP[] =
    "An application is an identity for a program. Creating one also creates its\n"
    "service principal, the object roles are assigned to. APP is the application's\n"
    "name (without regard to case), object id or client id (appId).\n"
    "\n"
    "  create   creates the application NAME (1-" KL_STR(KL_DIRECTORY_MAX_APP_NAME) " characters, unique without\n"
    "           regard to case) and prints its client id and service principal id.\n"
    "           For signing users in: --public-client makes it a client with no\n"
    "           secret (a CLI, a desktop or mobile app), --redirect-uri URI (repeat\n"
    "           it) where the sign-in page may send the browser back to, matched\n"
    "           exactly (any port for http://localhost and http://127.0.0.1).\n"
    "  list     lists the applications.\n"
    "  show     prints one application.\n"
    "  delete   deletes the application, its service principal and every role\n"
    "           assignment of it.\n"
    "  disable  turns the application's service principal off; enable turns it\n"
    "           back on.\n"
    "  cert add     registers the certificate in FILE (PEM or DER, RSA) so the\n"
    "               application can sign client assertions with its key; prints\n"
    "               its keyId and thumbprints.\n"
    "  cert list    lists the application's certificates.\n"
    "  cert remove  removes the certificate KEY (its keyId or SHA-1 thumbprint).\n"
    "  federated add     trusts tokens of the OIDC issuer ISSUER (https) about\n"
    "                    SUBJECT, for audience api://AzureADTokenExchange, as the\n"
    "                    application's; NAME names the trust.\n"
    "  federated list    lists them; federated remove removes NAME (or its id).\n"
    "  secret add     makes a client secret (Graph addPassword) and prints it, this\n"
    "                 once only: keylessd keeps only a keyed hash of it. It expires\n"
    "                 after --days N (default 180, at most 730); an application has\n"
    "                 at most 16.\n"
    "  secret list    key id, hint (first three characters), display name and dates\n"
    "                 of each secret; never the secret.\n"
    "  secret remove  deletes the secret KEY-ID (Graph removePassword).\n";

static const char ROLE[] =
    "SCOPE is one of\n"
    "  --scope ARM-SCOPE  \"/\", /subscriptions/ID, /subscriptions/ID/resourceGroups/RG\n"
    "                     or a resource id (default \"/\" where it is optional)\n"
    "  --account NAME     the id of account NAME in the subscription and resource\n"
    "                     group (--subscription, --resource-group)\n"
    "ROLE is a role name (without regard to case) or GUID. WHO is a principal's\n"
    "object id, an application's client id, or an application's name.\n"
    "\n"
    "  definition list    built-in and custom roles visible at the scope;\n"
    "                     --custom: custom roles only.\n"
    "  definition show    one role with its permissions.\n"
    "  definition create  creates (or, for the GUID of an existing custom role,\n"
    "                     replaces) a custom role from a JSON file: the ARM form\n"
    "                     {\"properties\":{\"roleName\",..,\"permissions\":[..]}} or the\n"
    "                     form of 'az role definition create' {\"roleName\" (or\n"
    "                     \"Name\"),\"description\",\"actions\",\"notActions\",\n"
    "                     \"dataActions\",\"notDataActions\",\"assignableScopes\"}.\n"
    "                     The GUID is the file's \"name\" or \"id\", else a new one;\n"
    "                     assignableScopes defaults to [SCOPE].\n"
    "  definition delete  deletes a custom role (not while it is assigned).\n"
    "  assignment create  gives WHO the role at the scope.\n"
    "  assignment list    the assignments that apply at the scope (there and\n"
    "                     above); --all adds those below it; --assignee keeps\n"
    "                     those of one principal.\n"
    "  assignment delete  deletes an assignment given by GUID (found at any scope,\n"
    "                     or at SCOPE when given) or by its full id.\n"
    "  check              says whether WHO may perform ACTION at the scope (--data:\n"
    "                     ACTION is a data action) and why: prints ALLOWED or\n"
    "                     DENIED; exits 0 when allowed, 1 when denied.\n"
    "\n"
    "Example:\n"
    "  keyless app create my-app\n"
    "  keyless role assignment create --assignee my-app \\\n"
    "      --role \"Cognitive Services OpenAI User\" --account demo\n"
    "  keyless role check --assignee my-app --account demo --data \\\n"
    "      --action "
    "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action\n";

static const char IDENTITY[] =
    "A managed identity is a principal with no secret of any kind: its tokens come\n"
    "only from the identity endpoint of a resource that carries it. A user-assigned\n"
    "identity (Microsoft.ManagedIdentity/userAssignedIdentities) is a resource of its\n"
    "own; IDENTITY is its name in the resource group, or its full id.\n"
    "\n"
    "  create   creates one; it gets a client id and a principal id (give roles\n"
    "           to the principal id with 'keyless role assignment create').\n"
    "  show     prints one.   list  lists those of the resource group given with\n"
    "           --resource-group, or of the whole subscription.\n"
    "  delete   deletes it: it is detached from every resource, and its role\n"
    "           assignments go with it.\n"
    "  assign   attaches it to each resource (the id of a site, VM or account);\n"
    "           IDENTITY 'system' enables the resource's system-assigned identity.\n"
    "           Attaching needs Microsoft.ManagedIdentity/userAssignedIdentities/\n"
    "           assign/action on the identity (Managed Identity Operator).\n"
    "  remove   detaches it (never deletes it); 'system' disables the\n"
    "           system-assigned identity, which deletes it with its role\n"
    "           assignments (enabling it again makes a new one).\n"
    "\n"
    "See docs/managed-identities.md.\n";

static const char COMPUTE[] =
    "A site (Microsoft.Web/sites) is an app whose workloads get the App-Service-style\n"
    "identity endpoint; a vm (Microsoft.Compute/virtualMachines) is a host whose\n"
    "IMDS-style endpoint serves its identities. Names are unique per kind.\n"
    "\n"
    "  create   creates it; --assign-identity system gives it a system-assigned\n"
    "           identity, --assign-identity IDENTITY attaches a user-assigned one\n"
    "           (its name or id; repeatable). Change them later with 'keyless\n"
    "           identity assign|remove'.\n"
    "  show     prints it with its identities.\n"
    "  delete   deletes it with its system-assigned identity and that identity's\n"
    "           role assignments; user-assigned identities are only detached.\n";

static const char LOGIN[] =
    "Signs in to a keylessd as yourself, the way 'az login' signs in to Azure: with a\n"
    "device code by default (the command prints a code and an address; open it in any\n"
    "browser, on any machine, enter the code and sign in), or with --browser through\n"
    "the sign-in page (authorization code with PKCE; the browser comes back to a\n"
    "one-time listener of this command on 127.0.0.1). The CLI signs in as the Azure\n"
    "CLI's public client (04b07795-8ddb-461a-bbee-02f9e1bf7b46).\n"
    "\n"
    "  --server URL    the keylessd's public listener (default https://127.0.0.1:8443)\n"
    "  --tenant T      the tenant to sign in to, its id or name (default \"keyless\",\n"
    "                  the name of keylessd's tenant; the id the token names is kept)\n"
    "  --ca-file FILE  the CA certificate (PEM) that signs the server's certificate\n"
    "                  (default: the system's; for the default server, the local\n"
    "                  keylessd's DATA-DIR/tls/ca.pem when it is readable)\n"
    "\n"
    "The refresh token is kept in $XDG_CONFIG_HOME/keyless/login.json (else\n"
    "~/.config/keyless/login.json), mode 0600 in a 0700 directory; tokens are never\n"
    "printed. From then on every command goes to that keylessd over TLS with your\n"
    "token, and its role assignments decide what you may do (a refusal prints the\n"
    "server's 403), unless --data-dir or KEYLESS_DATA_DIR names a local keylessd,\n"
    "whose admin socket is then used. --server URL on any command insists on that\n"
    "server (it must be the one signed in to).\n"
    "\n"
    "logout revokes the refresh token at the server and deletes the login file (it\n"
    "is deleted even when the server cannot be reached; the exit code says so).\n";
/* clang-format on */

/* The page of each noun; nouns is a space-separated list of those it covers. */
static const struct page {
    const char *nouns;
    const char *text;
} PAGES[] = {
    {"login logout", LOGIN},
    {"account", ACCOUNT},
    {"deployment", DEPLOYMENT},
    {"keys", KEYS},
    {"health", HEALTH},
    {"tenant", TENANT},
    {"store", STORE},
    {"app", APP},
    {"role", ROLE},
    {"signing-key", SIGNING_KEY},
    {"signin", SIGNIN},
    {"identity", IDENTITY},
    {"site vm", COMPUTE},
    {"run", RUN},
    {"user", USER},
    {"group", GROUP},
};

/* True when word[0..n) is one of the space-separated nouns. */
static bool among(const char *nouns, const char *word, size_t n)
{
    const char *w;
    size_t m;
    for (size_t i = 0; (m = kl_cli_command_word(nouns, i, &w)) > 0; i++)
        if (m == n && memcmp(w, word, n) == 0)
            return true;
    return false;
}

/* One usage line: prefix, the command's words, its arguments; the arguments' further
 * lines are aligned under the first. */
static void usage_line(FILE *f, const char *prefix, const kl_cli_command *c)
{
    int indent = (int)(strlen(prefix) + strlen(c->name) + 1);
    fprintf(f, "%s%s", prefix, c->name);
    const char *u = c->usage;
    if (u[0])
        fputc(' ', f);
    while (*u) {
        size_t n = strcspn(u, "\n");
        fwrite(u, 1, n, f);
        u += n;
        if (*u == '\n') {
            u++;
            fprintf(f, "\n%*s", indent, "");
        }
    }
    fputc('\n', f);
}

void kl_cli_help(FILE *f, const char *noun)
{
    const kl_cli_command *c;
    const struct page *page = NULL;
    for (size_t i = 0; noun && i < sizeof(PAGES) / sizeof(PAGES[0]) && !page; i++)
        if (among(PAGES[i].nouns, noun, strlen(noun)))
            page = &PAGES[i];
    if (!page) {
        fputs(OVERVIEW_HEAD, f);
        for (size_t i = 0; (c = kl_cli_command_at(i)) != NULL; i++)
            usage_line(f, "  ", c);
        fputs(OVERVIEW_TAIL, f);
        return;
    }
    fputs("Usage:\n", f);
    for (size_t i = 0; (c = kl_cli_command_at(i)) != NULL; i++) {
        const char *w;
        size_t n = kl_cli_command_word(c->name, 0, &w);
        if (among(page->nouns, w, n))
            usage_line(f, "  keyless ", c);
    }
    fputs("\n", f);
    fputs(page->text, f);
    fputs("\nGlobal options and exit codes: keyless --help\n", f);
}
