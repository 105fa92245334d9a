/* libcurl over the admin socket; see http.h. */
#include "cli/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/util.h"

/* Longest request URL built: a few ARM names, each at most 3x longer once escaped. */
#define TARGET_MAX 16384

typedef struct sink {
    kl_buf *buf;
    bool overflow;
} sink;

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    if (kl_buf_append(s->buf, p, n) < 0) {
        s->overflow = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return n;
}

int kl_cli_http_init(kl_cli_http *h, const char *sock_path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    memset(h, 0, sizeof(*h));
    if (strlen(sock_path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "admin socket path %s is too long (at most %zu bytes)", sock_path,
                 sizeof(sun.sun_path) - 1);
        return KL_ETOOBIG;
    }
    h->sock_path = sock_path;
    h->curl = curl_easy_init();
    if (!h->curl) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return KL_ENOMEM;
    }
    return 0;
}

int kl_cli_http_init_remote(kl_cli_http *h, const char *base_url, const char *ca_file, char *err,
                            size_t errlen)
{
    memset(h, 0, sizeof(*h));
    if (!kl_str_istarts(base_url, "https://") || strlen(base_url) <= strlen("https://")) {
        snprintf(err, errlen, "the server must be an https:// URL, not '%s'", base_url);
        return KL_EINVAL;
    }
    h->base_url = base_url;
    h->ca_file = ca_file && ca_file[0] ? ca_file : NULL;
    h->curl = curl_easy_init();
    if (!h->curl) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return KL_ENOMEM;
    }
    return 0;
}

void kl_cli_http_free(kl_cli_http *h)
{
    if (h->curl)
        curl_easy_cleanup(h->curl);
    h->curl = NULL;
}

void kl_cli_response_free(kl_cli_response *r)
{
    kl_buf_cleanse_free(&r->body);
    r->status = 0;
}

bool kl_cli_http_diagnose(const char *sock_path, char *out, size_t outlen)
{
    struct stat st;
    struct sockaddr_un sun;
    bool listening = false;
    int fd = -1;

    if (stat(sock_path, &st) != 0) {
        if (errno == ENOENT)
            snprintf(out, outlen, "%s does not exist", sock_path);
        else
            snprintf(out, outlen, "cannot reach %s: %s", sock_path, strerror(errno));
        goto out;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(out, outlen, "%s is not a socket", sock_path);
        goto out;
    }
    size_t n = strlen(sock_path);
    if (n >= sizeof(sun.sun_path)) {
        snprintf(out, outlen, "%s is too long for a socket address", sock_path);
        goto out;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(out, outlen, "cannot create a socket: %s", strerror(errno));
        goto out;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, sock_path, n);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        /* Something listens: the daemon dropped the earlier connection on purpose. */
        snprintf(out, outlen,
                 "keylessd on %s closed the connection without answering (is this user "
                 "allowed to use the admin socket?)",
                 sock_path);
        listening = true;
    } else if (errno == ECONNREFUSED) {
        snprintf(out, outlen, "connection refused on %s (no keylessd is listening)", sock_path);
    } else if (errno == EACCES || errno == EPERM) {
        snprintf(out, outlen, "permission denied on %s (run as the user keylessd runs as, or root)",
                 sock_path);
    } else {
        snprintf(out, outlen, "cannot connect to %s: %s", sock_path, strerror(errno));
    }
out:
    if (fd >= 0)
        close(fd);
    return listening;
}

int kl_cli_http_append_encoded(kl_buf *out, const char *s, bool (*keep)(unsigned char c))
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        int rc;
        if (keep(c)) {
            rc = kl_buf_append(out, p, 1);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = kl_buf_append(out, enc, sizeof(enc));
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static bool segment_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '(' || c == ')';
}

static bool no_char(unsigned char c)
{
    (void)c;
    return false;
}

int kl_cli_append_segment(kl_buf *out, const char *s)
{
    bool only_dots = s[0] != '\0' && strspn(s, ".") == strlen(s);
    return kl_cli_http_append_encoded(out, s, only_dots ? no_char : segment_char);
}

static int describe_remote_failure(kl_cli_http *h, CURLcode cc, char *err, size_t errlen)
{
    const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(err, errlen,
                 "the certificate of %s is not trusted (%s); give the CA that signs it with "
                 "'keyless login --ca-file FILE'",
                 h->base_url, why);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(err, errlen, "keylessd at %s did not answer in time", h->base_url);
        break;
    default:
        h->connect_failed = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST;
        snprintf(err, errlen, "cannot reach keylessd at %s: %s", h->base_url, why);
        break;
    }
    return KL_EIO;
}

static int describe_failure(kl_cli_http *h, CURLcode cc, char *err, size_t errlen)
{
    if (h->base_url)
        return describe_remote_failure(h, cc, err, errlen);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST: {
        char why[512];
        if (kl_cli_http_diagnose(h->sock_path, why, sizeof(why))) {
            snprintf(err, errlen, "%s", why);
        } else {
            h->connect_failed = true;
            snprintf(err, errlen, "cannot reach keylessd: %s", why);
        }
        break;
    }
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(err, errlen, "keylessd on %s did not answer in time", h->sock_path);
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        /* What a daemon that refuses this user's uid on the socket looks like. */
        snprintf(err, errlen,
                 "keylessd on %s closed the connection without answering (is this user "
                 "allowed to use the admin socket?)",
                 h->sock_path);
        break;
    default:
        snprintf(err, errlen, "cannot talk to keylessd on %s: %s", h->sock_path,
                 h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
        break;
    }
    return KL_EIO;
}

int kl_cli_http_request(kl_cli_http *h, const char *method, const char *target, const char *body,
                        size_t body_len, kl_cli_response *resp, char *err, size_t errlen)
{
    kl_cli_http_msg m = {method, target, NULL, body, body_len, NULL};
    return kl_cli_http_send(h, &m, resp, err, errlen);
}

/* Appends one header to *headers. 0 or KL_ENOMEM (the list is kept). */
static int add_header(struct curl_slist **headers, const char *h)
{
    struct curl_slist *tmp = curl_slist_append(*headers, h);
    if (!tmp)
        return KL_ENOMEM;
    *headers = tmp;
    return 0;
}

/* Points the handle at the admin socket, or at the remote keylessd with its TLS
 * checks. 0 or KL_EIO (why in err). */
static int set_transport(kl_cli_http *h, char *err, size_t errlen)
{
    CURL *c = h->curl;
    if (!h->base_url) {
        /* Without these two, a libcurl built differently would quietly use TCP to
         * localhost:80 (whatever listens there) instead of the admin socket. */
        if (curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->sock_path) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK) {
            snprintf(err, errlen, "this libcurl cannot use Unix sockets");
            return KL_EIO;
        }
        return 0;
    }
    /* https only, redirects never followed (a bearer token must not travel elsewhere),
     * the certificate and its name always checked. */
    if (curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        (h->ca_file && curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file) != CURLE_OK)) {
        snprintf(err, errlen, "this libcurl cannot use TLS as needed");
        return KL_EIO;
    }
    return 0;
}

int kl_cli_http_send(kl_cli_http *h, const kl_cli_http_msg *m, kl_cli_response *resp, char *err,
                     size_t errlen)
{
    struct curl_slist *headers = NULL;
    kl_buf url, auth;
    sink s = {&resp->body, false};
    char reqid[64] = "x-ms-client-request-id: ";
    char ctype[128];
    char uuid[KL_UUID_LEN + 1];
    int rc = 0;
    CURL *c = h->curl;
    const char *body = m->body;

    resp->status = 0;
    kl_buf_init(&resp->body, KL_CLI_MAX_RESPONSE);
    kl_buf_init(&url, TARGET_MAX);
    kl_buf_init_secret(&auth, TARGET_MAX);
    if ((rc = kl_buf_append_str(&url, h->base_url ? h->base_url : "http://localhost")) < 0 ||
        (rc = kl_buf_append_str(&url, m->target)) < 0) {
        snprintf(err, errlen, "request target too long");
        goto out;
    }

    /* Headers: JSON answers; no "Expect: 100-continue" round trip; a request id the
     * daemon's logs can be searched for. "Content-Type:" with no value stops curl
     * labelling an empty POST as a form. */
    snprintf(ctype, sizeof(ctype), "Content-Type: %s",
             !body             ? ""
             : m->content_type ? m->content_type
                               : "application/json");
    if ((rc = add_header(&headers, "Accept: application/json")) < 0 ||
        (rc = add_header(&headers, "Expect:")) < 0 ||
        (rc = add_header(&headers, body ? ctype : "Content-Type:")) < 0)
        goto out;
    if (kl_uuid_v4(uuid) == 0) {
        size_t n = strlen(reqid);
        memcpy(reqid + n, uuid, sizeof(uuid));
        if ((rc = add_header(&headers, reqid)) < 0)
            goto out;
    }
    if (m->bearer) {
        if ((rc = kl_buf_appendf(&auth, "Authorization: Bearer %s", m->bearer)) < 0) {
            snprintf(err, errlen, "the access token is too long");
            goto out;
        }
        if ((rc = add_header(&headers, auth.data)) < 0)
            goto out;
    }

    curl_easy_reset(c);
    h->errbuf[0] = '\0';
    h->connect_failed = false;
    if ((rc = set_transport(h, err, errlen)) < 0)
        goto out;
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    /* Send the path exactly as built (segments are escaped; no dot-segment squashing). */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, KL_CLI_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, KL_CLI_TOTAL_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KL_CLI_MAX_RESPONSE);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "keyless-cli");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);

    if (strcmp(m->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m->method, "DELETE") == 0 && !body) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? m->body_len : 0));
        if (strcmp(m->method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m->method);
    }

    CURLcode cc = curl_easy_perform(c);
    if ((cc == CURLE_WRITE_ERROR && s.overflow) || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, errlen, "the answer of keylessd is larger than %u MiB",
                 KL_CLI_MAX_RESPONSE >> 20);
        rc = KL_ETOOBIG;
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = describe_failure(h, cc, err, errlen);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
out:
    /* The handle keeps pointers to these until the next reset; clear them now. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    /* The list holds its own copy of the Authorization header: wipe it too. */
    for (struct curl_slist *e = headers; e; e = e->next)
        if (kl_str_istarts(e->data, "Authorization:"))
            OPENSSL_cleanse(e->data, strlen(e->data));
    curl_slist_free_all(headers);
    kl_buf_free(&url);
    kl_buf_cleanse_free(&auth);
    return rc;
}
