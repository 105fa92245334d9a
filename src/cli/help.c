/* Help pages of the keyless CLI; docs/cli.md says the same at more length. */
#include "cli/help.h"

#include <string.h>

static const char OVERVIEW[] =
    "keyless - manage a local keylessd through its admin socket\n"
    "\n"
    "Usage: keyless [global options] COMMAND [ARGUMENTS] [options]\n"
    "\n"
    "Commands:\n"
    "  account create NAME [--disable-local-auth] [--location LOC]\n"
    "                 [--kind OpenAI|AIServices]\n"
    "  account update NAME [--disable-local-auth true|false]\n"
    "                 [--public-network-access Enabled|Disabled]\n"
    "                 [--default-action Allow|Deny] [--allow-ip CIDR]...\n"
    "  account show NAME\n"
    "  account list\n"
    "  account delete NAME\n"
    "  deployment create ACCOUNT NAME [--backend echo|URL] [--model NAME]\n"
    "                    [--upstream-model NAME] [--credential-env VAR]\n"
    "  deployment show ACCOUNT NAME\n"
    "  deployment list ACCOUNT\n"
    "  deployment delete ACCOUNT NAME\n"
    "  keys list ACCOUNT [--older-than AGE]\n"
    "  keys regenerate ACCOUNT key1|key2\n"
    "  health\n"
    "  tenant show\n"
    "  store migrate --from URL --to URL\n"
    "  app create NAME\n"
    "  app list\n"
    "  app show|delete|disable|enable APP\n"
    "  role definition list [--custom] [SCOPE]\n"
    "  role definition show|delete ROLE [SCOPE]\n"
    "  role definition create --file ROLE.json [SCOPE]\n"
    "  role assignment create --assignee WHO --role ROLE SCOPE\n"
    "  role assignment list [--assignee WHO] [--all] [SCOPE]\n"
    "  role assignment delete ASSIGNMENT [SCOPE]\n"
    "  role check --assignee WHO --action ACTION [--data] SCOPE\n"
    "  (SCOPE is --scope ARM-SCOPE or --account NAME; 'keyless role --help')\n"
    "\n"
    "Global options (accepted anywhere on the line):\n"
    "  --data-dir DIR         data directory of keylessd; the CLI connects to\n"
    "                         DIR/admin.sock (env KEYLESS_DATA_DIR; default\n"
    "                         /var/lib/keyless as root, else $XDG_DATA_HOME/keyless\n"
    "                         if absolute, else $HOME/.local/share/keyless)\n"
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
    "from the environment variable named by --credential-env.\n";

static const char ACCOUNT[] =
    "Usage:\n"
    "  keyless account create NAME [--disable-local-auth] [--location LOC]\n"
    "                 [--kind OpenAI|AIServices]\n"
    "  keyless account update NAME [--disable-local-auth true|false]\n"
    "                 [--public-network-access Enabled|Disabled]\n"
    "                 [--default-action Allow|Deny] [--allow-ip CIDR]...\n"
    "  keyless account show NAME\n"
    "  keyless account list\n"
    "  keyless account delete NAME\n"
    "\n"
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
    "Usage:\n"
    "  keyless deployment create ACCOUNT NAME [--backend echo|URL] [--model NAME]\n"
    "                    [--upstream-model NAME] [--credential-env VAR]\n"
    "  keyless deployment show ACCOUNT NAME\n"
    "  keyless deployment list ACCOUNT\n"
    "  keyless deployment delete ACCOUNT NAME\n"
    "\n"
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
    "Usage:\n"
    "  keyless keys list ACCOUNT [--older-than AGE]\n"
    "  keyless keys regenerate ACCOUNT key1|key2\n"
    "\n"
    "Prints the two API keys of the account, with AGE (since the key was created or\n"
    "regenerated) and LAST-USED (the day, UTC, of its last use; \"never\").\n"
    "--older-than AGE (e.g. 90d, 12h, 2w) shows only keys at least that old, for\n"
    "scripts that rotate them. regenerate replaces one key; the old\n"
    "value stops working on the next request, the other key keeps working, so\n"
    "clients can be moved from one key to the other without downtime. Both fail\n"
    "while the account has API keys turned off (account update NAME\n"
    "--disable-local-auth true).\n";

static const char HEALTH[] = "Usage:\n"
                             "  keyless health\n"
                             "\n"
                             "Asks keylessd whether it is up (GET /healthz on the admin socket).\n"
                             "Exits 0 when it is, 3 when it cannot be reached.\n";

static const char STORE[] =
    "Usage:\n"
    "  keyless store migrate --from sqlite:PATH --to postgres://USER@HOST:PORT/DB?...\n"
    "\n"
    "Copies every row of one store into another, keys and sealed values as they are,\n"
    "so API keys, credentials and role assignments keep working when keylessd is\n"
    "pointed at the new store with the same key-encryption key. Stop keylessd first.\n"
    "The destination is created (migrated) if needed and must be empty. The password\n"
    "comes from PGPASSFILE or PGPASSWORD, never from the URL. Exits 0 on success, 1\n"
    "when the copy was refused or failed (nothing is written then), 2 on a usage error.\n";

static const char TENANT[] = "Usage:\n"
                             "  keyless tenant show\n"
                             "\n"
                             "Prints the directory tenant keylessd created on its first start:\n"
                             "its id (the tenant of tokens and of the Entra-style endpoints),\n"
                             "name and creation time. It never changes.\n";

static const char APP[] =
    "Usage:\n"
    "  keyless app create NAME\n"
    "  keyless app list\n"
    "  keyless app show APP\n"
    "  keyless app delete APP\n"
    "  keyless app disable APP\n"
    "  keyless app enable APP\n"
    "\n"
    "An application is an identity for a program. Creating one also creates its\n"
    "service principal, the object roles are assigned to. APP is the application's\n"
    "name (without regard to case), object id or client id (appId).\n"
    "\n"
    "  create   creates the application NAME (1-120 characters, unique without\n"
    "           regard to case) and prints its client id and service principal id.\n"
    "  list     lists the applications.\n"
    "  show     prints one application.\n"
    "  delete   deletes the application, its service principal and every role\n"
    "           assignment of it.\n"
    "  disable  turns the application's service principal off; enable turns it\n"
    "           back on.\n";

static const char ROLE[] =
    "Usage:\n"
    "  keyless role definition list [--custom] [SCOPE]\n"
    "  keyless role definition show ROLE [SCOPE]\n"
    "  keyless role definition create --file ROLE.json [SCOPE]\n"
    "  keyless role definition delete ROLE [SCOPE]\n"
    "  keyless role assignment create --assignee WHO --role ROLE SCOPE\n"
    "  keyless role assignment list [--assignee WHO] [--all] [SCOPE]\n"
    "  keyless role assignment delete ASSIGNMENT [SCOPE]\n"
    "  keyless role check --assignee WHO --action ACTION [--data] SCOPE\n"
    "\n"
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

void kl_cli_help(FILE *f, const char *noun)
{
    const char *text = OVERVIEW;
    if (noun && strcmp(noun, "account") == 0)
        text = ACCOUNT;
    else if (noun && strcmp(noun, "deployment") == 0)
        text = DEPLOYMENT;
    else if (noun && strcmp(noun, "keys") == 0)
        text = KEYS;
    else if (noun && strcmp(noun, "health") == 0)
        text = HEALTH;
    else if (noun && strcmp(noun, "tenant") == 0)
        text = TENANT;
    else if (noun && strcmp(noun, "store") == 0)
        text = STORE;
    else if (noun && strcmp(noun, "app") == 0)
        text = APP;
    else if (noun && strcmp(noun, "role") == 0)
        text = ROLE;
    fputs(text, f);
    if (text != OVERVIEW)
        fputs("\nGlobal options and exit codes: keyless --help\n", f);
}
