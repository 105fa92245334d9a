/* Every protocol and resource limit in one place, so an operator (and a reviewer) can
 * see at a glance what keylessd will refuse. Values are bytes, counts or milliseconds. */
#ifndef KL_COMMON_LIMITS_H
#define KL_COMMON_LIMITS_H

/* A limit's value as a string literal, for error texts built from the constant rather
 * than typed in (KL_STR(KL_MAX_ROLE_NAME) is "512"); only for plain integer limits. */
#define KL_STR_(x) #x
#define KL_STR(x) KL_STR_(x)

/* HTTP server */
#define KL_MAX_REQUEST_LINE 8192        /* method + target + version */
#define KL_MAX_HEADER_BYTES (32 * 1024) /* all header names and values together */
#define KL_MAX_HEADER_COUNT 100
#define KL_MAX_BODY_BYTES (4 * 1024 * 1024) /* request body; larger gets 413 */
#define KL_HEADER_TIMEOUT_MS 10000          /* whole header block must arrive within this */
#define KL_BODY_TIMEOUT_MS 30000            /* whole body must arrive within this */
#define KL_IDLE_TIMEOUT_MS 60000            /* keep-alive connection with no request */
#define KL_WRITE_TIMEOUT_MS 30000           /* a client that stops reading a response */
#define KL_MAX_CONNECTIONS 10000            /* per worker */
/* Request heads and bodies held in memory, all workers together; a request that would
 * go beyond it gets 503 ServerBusy (Retry-After: KL_BUSY_RETRY_AFTER_S). Without it,
 * 10,000 connections per worker could each hold a 4 MiB body. */
#define KL_MAX_BUFFERED_REQUEST_BYTES (256 * 1024 * 1024)
#define KL_REQUEST_BUDGET_STEP 4096 /* bytes taken from that budget at a time */
#define KL_BUSY_RETRY_AFTER_S "1"   /* Retry-After on that 503, seconds */
/* Streamed bytes queued to one client, at most; producers pause at half (backpressure). */
#define KL_MAX_OUTPUT_BUFFER (1024 * 1024)
#define KL_MIN_CLIENT_TIMEOUT_MS 100 /* --write-timeout-ms, --body-timeout-ms range */
#define KL_MAX_CLIENT_TIMEOUT_MS 3600000
/* SIGTERM: how long requests in flight may take to finish before they are cut off
 * (--stop-grace-ms); refresh-token rotations still waiting for their commit then are
 * settled without an answer (gateway/refreshq.h). */
#define KL_STOP_GRACE_MS 10000
#define KL_MIN_STOP_GRACE_MS 100
#define KL_MAX_STOP_GRACE_MS 600000
/* The other ranges keylessd's options accept (daemon/config.c; its --help states them). */
#define KL_MIN_WORKERS 1
#define KL_MAX_WORKERS 64
#define KL_MIN_UPSTREAM_TIMEOUT_MS 100
#define KL_MAX_UPSTREAM_TIMEOUT_MS 3600000
#define KL_MIN_SIGNING_KEY_ROTATION_DAYS 1
#define KL_MAX_SIGNING_KEY_ROTATION_DAYS 3650
#define KL_MIN_TOKEN_LIFETIME_MIN 5 /* --token-lifetime-min: issued access tokens */
#define KL_MAX_TOKEN_LIFETIME_MIN 1440
#define KL_KEK_BYTES 32 /* the key-encryption key: AES-256 and HKDF input */
/* A new signing key is in JWKS this long before it signs (policy/signing.c); the CLI's
 * help states it in minutes. */
#define KL_SIGNING_PUBLISH_LEAD_MIN 10
#define KL_SIGNING_PUBLISH_LEAD_S (KL_SIGNING_PUBLISH_LEAD_MIN * 60)
/* Bytes read from a connection beyond a full head while its request is being handled
 * (pipelined requests wait in the kernel past this). */
#define KL_READ_AHEAD_BYTES (64 * 1024)
/* Streamed bytes handed to the socket at once, not per event-loop turn. */
#define KL_STREAM_FLUSH_BYTES (64 * 1024)
#define KL_LISTEN_BACKLOG 1024                 /* TCP listeners */
#define KL_ADMIN_LISTEN_BACKLOG 128            /* the admin socket (one local operator) */
#define KL_MAX_METRICS_BYTES (4 * 1024 * 1024) /* one /metrics answer */

/* Built-in echo model */
#define KL_MAX_ECHO_DELTA 4096 /* answer bytes in one streamed event (a longer word is split) */

/* Tokens and keys */
#define KL_MAX_TOKEN_BYTES 16384 /* bearer token or api-key header value */
#define KL_MAX_JSON_DEPTH 64
#define KL_MAX_KEK_ENV 128     /* KEYLESS_KEK's value (base64 of KL_KEK_BYTES is 44) */
#define KL_MAX_JWS_KID 128     /* a JWS "kid"; only [A-Za-z0-9_-] */
#define KL_MAX_JWS_SIG 512     /* a decoded signature (RSA-4096 is 512 bytes) */
#define KL_MAX_KEYRING_KEYS 16 /* public keys a token verifier trusts at once */
#define KL_MIN_RSA_BITS 2048   /* smaller RSA keys are refused for signing and verifying */
#define KL_MAX_RSA_BITS (8 * KL_MAX_JWS_SIG) /* larger keys could never fit a signature */
#define KL_TOKEN_CLOCK_SKEW_S 300            /* exp/nbf/iat tolerance; never more than 5 minutes */
#define KL_TOKEN_DEFAULT_LIFETIME_S 3600     /* access tokens we issue */
#define KL_TOKEN_MAX_LIFETIME_S (25 * 3600)  /* longest exp - nbf we accept (MI: 24 h + 5 min) */
#define KL_ASSERTION_MAX_LIFETIME_S 600      /* client assertions: exp - nbf (or iat) */
#define KL_MAX_JTI 256                       /* a client assertion's "jti" */
#define KL_MAX_CLAIM_STRING 1024             /* aud, iss, appid, oid, tid ... in a token */
/* The JSON text of one access token's claim set: 8 strings of KL_MAX_CLAIM_STRING, each
 * at most doubled by escaping, and the rest. */
#define KL_MAX_ACCESS_CLAIMS (16 * KL_MAX_CLAIM_STRING + 1024)
#define KL_MAX_TOKCACHE_ENTRIES (1 << 20) /* verified-token cache, per worker */

#define KL_MAX_SIGNIN_QUEUE 4096 /* sign-in log records waiting for the store */
#define KL_SIGNIN_LINGER_MS 10   /* the sign-in writer waits this long for a batch to fill */

/* Managed-identity endpoints (src/imds/) */
/* A token request's query string (the server's own limit is KL_MAX_REQUEST_LINE). */
#define KL_MAX_MI_QUERY 4096
#define KL_MAX_MI_RESOURCE 512      /* the resource parameter (an App ID URI) */
#define KL_MAX_MI_SELECTOR 1024     /* client_id, object_id, msi_res_id ... (an ARM id fits) */
#define KL_MAX_IDENTITY_HEADER 256  /* X-IDENTITY-HEADER's value */
#define KL_IDENTITY_HEADER_BYTES 32 /* random bytes of a launch secret (base64url: 43) */
#define KL_MI_TOKEN_DEFAULT_LIFETIME_S (24 * 3600) /* as Azure's managed-identity tokens */
#define KL_MI_TOKEN_MIN_LIFETIME_MIN 5             /* --mi-token-lifetime-min range */
#define KL_MI_TOKEN_MAX_LIFETIME_MIN 1440
#define KL_MI_TOKEN_MIN_LIFETIME_S (KL_MI_TOKEN_MIN_LIFETIME_MIN * 60)
#define KL_MI_TOKEN_MAX_LIFETIME_S (KL_MI_TOKEN_MAX_LIFETIME_MIN * 60)
/* A cached token is handed out again until this much of its life is left (at most a
 * quarter of its lifetime), so a client never gets one about to expire: MSAL refetches a
 * token within 5 minutes of expiry on every call. */
#define KL_MI_TOKEN_RENEW_MARGIN_S 3600
#define KL_MI_TOKEN_CACHE_SLOTS 4096   /* (identity, resource) pairs cached per node */
#define KL_IDENTITY_HEADER_LEASE_S 900 /* a launch secret lives this long unless renewed */
#define KL_MAX_IDENTITY_HEADERS 65536  /* launch secrets alive at once, all sites */

/* application/x-www-form-urlencoded token requests */
#define KL_MAX_FORM_BYTES (64 * 1024) /* whole body; an assertion fits (KL_MAX_TOKEN_BYTES) */
#define KL_MAX_FORM_PARAMS 64         /* MSAL sends about 15, telemetry included */
#define KL_MAX_FORM_NAME 128          /* a decoded parameter name */
#define KL_MAX_FORM_VALUE KL_MAX_TOKEN_BYTES /* a decoded value (client_assertion is longest) */

/* Failed client authentication at the token endpoint (src/token/throttle.c): counted per
 * client id and per source address in fixed windows; after BACKOFF_AFTER failures each
 * further attempt waits 1 s, 2 s, 4 s ... (at most MAX_BACKOFF); at the limits every
 * attempt is refused (429) until the window ends. */
#define KL_THROTTLE_WINDOW_MS (5 * 60 * 1000)
#define KL_THROTTLE_BACKOFF_AFTER 5
#define KL_THROTTLE_MAX_BACKOFF_MS (30 * 1000)
#define KL_THROTTLE_CLIENT_LIMIT 20 /* failures per client id in a window */
#define KL_THROTTLE_ADDR_LIMIT 100  /* failures per source address in a window */
#define KL_THROTTLE_FAMILIAR_MS (30LL * 24 * 3600 * 1000) /* a success vouches for its address */
#define KL_MAX_THROTTLE_ENTRIES (1 << 20)
#define KL_THROTTLE_DEFAULT_ENTRIES 65536

/* Application credentials (certificates as keyCredentials) */
#define KL_MAX_APP_CERT_BITS 4096           /* RSA modulus of a certificate (= KL_MAX_RSA_BITS) */
#define KL_MAX_APP_CERT_DER 16384           /* a registered certificate, DER */
#define KL_MAX_APP_KEY_CREDENTIALS 16       /* certificates per application */
#define KL_MAX_APP_FEDERATED_CREDENTIALS 20 /* federated credentials per application (Graph's) */
#define KL_MAX_FEDERATED_NAME 120           /* a federated credential's name (Graph: 3-120) */
#define KL_MAX_FEDERATED_ISSUER 600         /* its issuer URL (Graph: 600) */
#define KL_MAX_FEDERATED_SUBJECT 600        /* its subject (Graph: 600) */
#define KL_MAX_FEDERATED_DESCRIPTION 600

/* External issuers' keys (federated credentials), src/policy/jwks.c */
#define KL_MAX_JWKS_BYTES (64 * 1024) /* a discovery document or JWKS we fetch */
#define KL_MAX_JWKS_ISSUERS 64        /* issuers whose keys are cached at once */
#define KL_JWKS_MIN_REFRESH_S 60      /* an unknown kid refetches at most this often */
#define KL_JWKS_MAX_AGE_S (24 * 3600) /* keys are refetched after this long anyway */
#define KL_JWKS_FETCH_TIMEOUT_MS 5000

/* Upstream model servers */
#define KL_UPSTREAM_CONNECT_TIMEOUT_MS 5000
#define KL_UPSTREAM_TIMEOUT_MS 120000 /* no byte from upstream for this long: 504 */
#define KL_UPSTREAM_MAX_IDLE_CONNS 64 /* kept-alive connections per upstream per worker */
#define KL_MAX_UPSTREAM_RESPONSE (64 * 1024 * 1024)
#define KL_MAX_HOSTNAME 253           /* a DNS name, without the trailing dot */
#define KL_MAX_EGRESS_RULES 64        /* CIDRs and host names in the egress allowlist */
#define KL_MAX_EGRESS_LISTENERS 8     /* keylessd's own TCP listeners the policy knows */
#define KL_MAX_EGRESS_LOCAL_ADDRS 128 /* this host's addresses, for wildcard listeners */

/* Network rules of accounts (networkAcls) and the daemon's listeners */
#define KL_MAX_NETWORK_RULES 4096 /* networkAcls.ipRules of one account (and trusted proxies) */
#define KL_MAX_NETRULE_TEXT 64    /* one rule's text: "ffff:...:255.255.255.255/128" fits */
#define KL_MAX_VNET_RULES 512     /* networkAcls.virtualNetworkRules, stored and echoed */
#define KL_MAX_NETWORK_ACLS_JSON (512 * 1024) /* networkAcls as stored, serialised */
#define KL_MAX_TRUSTED_PROXIES 64             /* --trusted-proxy CIDRs */
#define KL_MAX_PRIVATE_LISTENERS 4            /* --private-listen addresses */
#define KL_MAX_XFF_HOPS 32                    /* X-Forwarded-For entries looked at, right to left */
/* Listeners of the HTTP server, all faces: public, IMDS, metrics, the admin socket and
 * the private ones. KL_MAX_EGRESS_LISTENERS must hold every TCP one of them. */
#define KL_MAX_HTTP_LISTENERS 8
/* Key usage (last day each key was used) is written to the store this often, in one
 * batch, and at a clean stop: a crash loses at most this much of it. */
#define KL_KEYUSAGE_FLUSH_MS 60000

/* Snapshot rebuilds that fail after a saved change: the change's scope is fenced (503)
 * and the build retried from the control thread, the delay doubling up to the cap. */
#define KL_SNAPSHOT_RETRY_FIRST_MS 100
#define KL_SNAPSHOT_RETRY_MAX_MS 5000
#define KL_SNAPSHOT_RETRY_AFTER "1" /* Retry-After (seconds) on a fenced 503 */
#define KL_MAX_FENCED_SCOPES 64     /* more fenced scopes than this: fence everything */

/* ARM names and identifiers */
#define KL_MAX_NAME 90 /* subscription, resource group, resource names */
/* Each resource type's own name lengths (Azure's naming rules); the messages that state
 * them are built from these (KL_STR). */
#define KL_ARM_MIN_ACCOUNT_NAME 2
#define KL_ARM_MAX_ACCOUNT_NAME 64
#define KL_ARM_MIN_DEPLOYMENT_NAME 2
#define KL_ARM_MAX_DEPLOYMENT_NAME 64
#define KL_ARM_MIN_SITE_NAME 2
#define KL_ARM_MAX_SITE_NAME 60
#define KL_ARM_MIN_VM_NAME 1
#define KL_ARM_MAX_VM_NAME 64
#define KL_ARM_MIN_IDENTITY_NAME 3
#define KL_MAX_SCOPE 1024 /* an ARM scope string */
#define KL_MAX_URL 2048
/* Applications' redirect URIs (user sign-in): Entra allows 256 bytes per URI and 256
 * URIs per app; we keep a smaller list, it is searched on every authorize request. */
#define KL_MAX_REDIRECT_URI 256
#define KL_MAX_REDIRECT_URIS 64
/* User sign-in: the OAuth scope parameter (space-separated scopes) we keep with a
 * refresh token; refresh tokens (opaque: 256 random bits, base64url) live 90 days as
 * Entra's do, each rotation starting the count again. */
#define KL_MAX_SCOPE_TEXT 1024
#define KL_REFRESH_TOKEN_LIFETIME_S (90LL * 24 * 3600)
#define KL_REFRESH_TOKEN_BYTES 32
#define KL_MAX_REFRESH_TOKEN 128 /* longest refresh_token parameter looked at */
/* Refresh-token rotations waiting for the writer (gateway/refreshq.c), and the most it
 * commits in one transaction. */
#define KL_MAX_REFRESH_QUEUE 4096
#define KL_MAX_REFRESH_BATCH 256
#define KL_REFRESH_PRUNE_S 3600        /* expired refresh tokens are deleted this often */
#define KL_ARM_MAX_API_VERSION 32      /* longest api-version value echoed back in an error */
#define KL_ARM_MAX_VERSION_LIST 512    /* the supported api-versions of one type, comma-joined */
#define KL_MAX_HOST_USER_IDENTITIES 64 /* user-assigned identities one resource carries */

/* ARM resource bodies (ARM's own tag limits) */
#define KL_ARM_MAX_TAGS 50
#define KL_ARM_MAX_TAG_NAME 512
#define KL_ARM_MAX_TAG_VALUE 256
#define KL_ARM_MAX_SHORT_STRING 256            /* model names/versions, upstream model */
#define KL_ARM_MAX_SKU_NAME 64                 /* an account's sku name and tier */
#define KL_ARM_MAX_IDENTITY_TYPE 64            /* "SystemAssigned, UserAssigned", spaces free */
#define KL_ARM_MAX_PROPERTIES_JSON 16384       /* stored extra properties, serialised */
#define KL_ARM_MAX_ASSIGNMENT_DESCRIPTION 2048 /* a role assignment's description */

/* Directory display names. The directory's rule for applications is in characters
 * (Entra's 120); the store's bound is in bytes and holds any name the directory
 * accepts (120 characters of UTF-8 are at most 480 bytes), users' and groups' too. */
#define KL_DIRECTORY_MAX_APP_NAME 120 /* characters */
#define KL_STORE_MAX_DISPLAY_NAME 512 /* bytes */
_Static_assert(KL_DIRECTORY_MAX_APP_NAME * 4 <= KL_STORE_MAX_DISPLAY_NAME,
               "the store holds every application name the directory accepts");

/* RBAC */
#define KL_MAX_SCOPE_DEPTH 16    /* levels in a scope: "/", subscription, group, resources */
#define KL_MAX_ACTION 512        /* an action, or an action pattern in a role */
#define KL_MAX_ROLE_PATTERNS 512 /* entries in one of a role's four permission lists */
#define KL_MAX_ROLE_NAME 512
#define KL_MAX_ROLE_DESCRIPTION 2048
#define KL_MAX_ASSIGNABLE_SCOPES 64 /* assignableScopes of a custom role */
#define KL_MAX_PRINCIPAL_ID 128     /* an object id (GUID) or similar principal name */
#define KL_MAX_CHECK_PRINCIPALS 512 /* a principal plus its groups in one check */

/* How long a store writer waits for the writers' lock before it gives up with KL_EUNAVAIL
 * (a request answers 503 with Retry-After), on both engines: SQLite's busy timeout and
 * PostgreSQL's lock_timeout, which covers the writers' advisory lock like any other.
 * A healthy store holds that lock for one transaction, milliseconds; five seconds is a
 * queue of hundreds of writers, so a wait this long is behind something stuck (a node's
 * transaction that stopped answering, a tool holding the SQLite file), and a worker
 * freed to answer 503 is worth more than one waiting for ever. */
#define KL_STORE_LOCK_TIMEOUT_MS 5000

/* The store on PostgreSQL */
#define KL_STORE_PG_CONNECT_TIMEOUT_S 5 /* connect_timeout unless the store URL sets one */
/* statement_timeout: the longest statements a healthy store runs are a snapshot's reads
 * of whole tables, well under a second for any store the limits above allow; 30 s is
 * the time a client is given to send a body or read an answer (KL_BODY_TIMEOUT_MS,
 * KL_WRITE_TIMEOUT_MS), so a request never waits on the store longer than on its client.
 * Migrations and `keyless store migrate` lift it in their own transactions. */
#define KL_STORE_STATEMENT_TIMEOUT_MS 30000
/* A server or network that stops answering (no error, no FIN): TCP keepalive probes
 * after this much silence, then every interval, the connection dropped after count
 * unanswered (10 + 3 * 5 = 25 s); tcp_user_timeout drops one whose sent data goes
 * unacknowledged as long. A live server acknowledges probes while it works, so neither
 * cuts a slow statement: that is statement_timeout's job. */
#define KL_STORE_PG_KEEPALIVE_IDLE_S 10
#define KL_STORE_PG_KEEPALIVE_INTERVAL_S 5
#define KL_STORE_PG_KEEPALIVE_COUNT 3
#define KL_STORE_PG_TCP_USER_TIMEOUT_MS 25000
_Static_assert(KL_STORE_LOCK_TIMEOUT_MS < KL_STORE_STATEMENT_TIMEOUT_MS,
               "a lock wait is reported as one, not as a statement timeout");
#define KL_STORE_POLL_MS 500 /* generation poll when a notification is lost */
#define KL_MAX_STORE_URL 1024

/* Incremental snapshots */
#define KL_STORE_CHANGES_KEPT 4096 /* generations whose changes the store keeps (store_changes) */
#define KL_STORE_MAX_CHANGED 64    /* keys one load_since returns; more means a full build */
#define KL_RBAC_MAX_OVERLAY_PRINCIPALS 1024   /* principals a derived RBAC index overrides */
#define KL_RBAC_MAX_OVERLAY_ASSIGNMENTS 16384 /* assignments a derived RBAC index holds */
#define KL_MGMT_RETRY_AFTER_S "5" /* Retry-After of a control-plane 503 (database down) */

/* Users (directory/users.h) and their passwords. Argon2id parameters follow OWASP's
 * first choice (19 MiB, 2 passes, 1 lane); every stored hash records its own, so raising
 * them takes effect for each user at their next password change. */
#define KL_MAX_UPN 113          /* userPrincipalName: 64 before '@', 48 after (Graph's) */
#define KL_MAX_UPN_LOCAL 64     /* the part before '@' */
#define KL_MIN_PASSWORD 12      /* bytes */
#define KL_MAX_PASSWORD 256     /* bytes; longer is refused, never truncated */
#define KL_ARGON2_T_COST 2      /* passes */
#define KL_ARGON2_M_COST 19456  /* KiB */
#define KL_ARGON2_PARALLELISM 1 /* lanes */
#define KL_ARGON2_SALT_LEN 16   /* bytes, from the OS CSPRNG, one per hash */
#define KL_ARGON2_HASH_LEN 32   /* bytes */
#define KL_ARGON2_MAX_M_COST (1024 * 1024) /* KiB: a stored row asking for more is refused */
#define KL_ARGON2_MAX_T_COST 16
/* Failed password sign-ins, counted per user principal name (whether or not such a user
 * exists, so that the answers tell an attacker nothing) in the store, so every node sees
 * them: after KL_SIGNIN_SLOWDOWN_AFTER failures inside KL_SIGNIN_FAILURE_WINDOW_S each
 * further failure asks the caller to wait (doubling from KL_SIGNIN_SLOWDOWN_MS up to
 * KL_SIGNIN_MAX_SLOWDOWN_MS); at KL_SIGNIN_LOCKOUT_THRESHOLD the name is locked for
 * KL_SIGNIN_LOCKOUT_S, during which even the right password is refused. */
#define KL_SIGNIN_FAILURE_WINDOW_S 900
#define KL_SIGNIN_SLOWDOWN_AFTER 3
#define KL_SIGNIN_SLOWDOWN_MS 500
#define KL_SIGNIN_MAX_SLOWDOWN_MS 8000
#define KL_SIGNIN_LOCKOUT_THRESHOLD 10
#define KL_SIGNIN_LOCKOUT_S 60

/* Groups: direct members of one group, and the longest chain of groups inside groups
 * (a user in G1, G1 in G2, ... G5 is 5 deep). A principal's transitive groups are
 * bounded by KL_MAX_GROUP_MEMBERSHIPS (one RBAC check takes them all at once). */
#define KL_MAX_GROUP_MEMBERS 50000
#define KL_MAX_GROUP_NESTING 8
#define KL_MAX_GROUP_MEMBERSHIPS (KL_MAX_CHECK_PRINCIPALS - 1)
#define KL_MAX_MAIL_NICKNAME 64 /* a group's mailNickname (Graph's) */
#define KL_MAX_GROUP_DESCRIPTION 1024

/* Browser sign-in (authorization code + PKCE, security.md T14): an authorization code
 * lives at most KL_AUTHCODE_LIFETIME_S (Entra: 10 minutes) and is redeemed once; the
 * sign-in session behind the kl_session cookie lasts KL_SIGNIN_SESSION_S; the pages
 * themselves are small. */
#define KL_AUTHCODE_LIFETIME_S 300
#define KL_SIGNIN_SESSION_S (8 * 3600)
#define KL_MAX_WEBPAGE_BYTES (64 * 1024)
#define KL_MAX_AUTHZ_STATE 2048 /* the client's state, round-tripped verbatim */
#define KL_MAX_AUTHZ_NONCE 512
#define KL_MAX_AUTHZ_SCOPE 1024
#define KL_MAX_PKCE_VERIFIER 128 /* RFC 7636: 43..128 characters */

/* The device-code flow (RFC 8628 as Entra speaks it). A code lives
 * KL_DEVICE_CODE_LIFETIME_S (Entra's 15 minutes; --device-code-lifetime-s moves it within
 * the bounds, for tests); the client is told to poll every KL_DEVICE_CODE_INTERVAL_S. A
 * poll that comes sooner than the interval less KL_DEVICE_CODE_POLL_SLACK_MS after the
 * code's last poll on this node (or, across nodes, sooner than the interval less one
 * second by the store's clock) is answered authorization_pending without reading the
 * store: never slow_down, which MSAL treats as fatal. The per-node table of last polls
 * has KL_DEVICE_CODE_POLL_SLOTS slots (a collision only forgets a poll). Expired codes
 * are kept KL_DEVICE_CODE_KEEP_S so that they answer expired_token rather than
 * bad_verification_code, then pruned. User codes are KL_USER_CODE_LEN letters of a
 * 20-letter alphabet (20^8, about 2^34.6), shown as XXXX-XXXX; wrong guesses on the
 * verification page are throttled per source address (token/throttle.h). */
#define KL_DEVICE_CODE_LIFETIME_S 900
#define KL_DEVICE_CODE_MIN_LIFETIME_S 5
#define KL_DEVICE_CODE_MAX_LIFETIME_S 3600
#define KL_DEVICE_CODE_INTERVAL_S 5
#define KL_DEVICE_CODE_POLL_SLACK_MS 1000
#define KL_DEVICE_CODE_POLL_SLOTS 4096
#define KL_DEVICE_CODE_KEEP_S (24 * 3600)
#define KL_DEVICE_CODE_BYTES 32 /* random bytes of a device_code (base64url on the wire) */
#define KL_MAX_DEVICE_CODE 128  /* longest device_code accepted in a token request */
#define KL_USER_CODE_LEN 8
#define KL_USER_CODE_TYPED_MAX 16    /* the verification page's code field, with - or spaces */
#define KL_DEVICE_SCOPE_MAX 1024     /* the scope a device code carries */
#define KL_MAX_DEVICE_SIGNIN_ID 64   /* the user object id and session id an approval records */
#define KL_DEVICE_GUESS_ENTRIES 4096 /* addresses the verification page's throttle tracks */
/* Live device codes (neither expired, redeemed nor declined) one source address may hold;
 * the devicecode endpoint refuses the next with 429 until one is done. A person signs in
 * with one code at a time, and even an office behind one NAT address seldom has more than
 * a few dozen sign-ins waiting within one code's lifetime; 100 is far above that. What it
 * bounds: every live code is one more target for user-code guesses on the verification
 * page, and every code is a row kept until KL_DEVICE_CODE_KEEP_S after it expires, so
 * one address could otherwise fill the store. Counted in the store, inside the insert's
 * transaction (writers are serialised on both engines), so it holds across nodes. */
#define KL_MAX_DEVICE_CODES_PER_ADDRESS 100
#define KL_MAX_DEVICE_CLIENT_ADDR 64 /* the source address a device code records (text) */

#endif
