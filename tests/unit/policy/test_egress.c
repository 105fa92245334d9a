/* Unit tests of the egress policy: every always-refused class in IPv4, IPv6 and
 * IPv4-mapped/NAT64 spellings, the daemon's own listeners (specific and wildcard), the
 * default mode and the allowlist mode, and the allowlist parser's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "policy/egress.h"

/* "1.2.3.4" or "::1" with a port, as a socket address. */
static struct sockaddr_storage sa(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
    }
    return ss;
}

static kl_egress_verdict check(const kl_egress *e, const char *host, const char *ip, uint16_t port)
{
    struct sockaddr_storage ss = sa(ip, port);
    return kl_egress_check(e, host, (const struct sockaddr *)&ss);
}

typedef struct vector {
    const char *ip;
    kl_egress_verdict want;
} vector;

static void run_vectors(const kl_egress *e, const vector *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kl_egress_verdict got = check(e, NULL, v[i].ip, 8000);
        if (got != v[i].want)
            fail_msg("%s: got %d (%s), want %d (%s)", v[i].ip, got, kl_egress_reason(got),
                     v[i].want, kl_egress_reason(v[i].want));
    }
}

static void test_always_refused_classes(void **state)
{
    (void)state;
    kl_egress *e = NULL;
    assert_int_equal(kl_egress_new(&e), 0);
    static const vector v[] = {
        /* unspecified / "this network" */
        {"0.0.0.0", KL_EGRESS_UNSPECIFIED},
        {"0.1.2.3", KL_EGRESS_UNSPECIFIED},
        {"::", KL_EGRESS_UNSPECIFIED},
        {"::ffff:0.0.0.0", KL_EGRESS_UNSPECIFIED},
        /* link-local: cloud metadata */
        {"169.254.169.254", KL_EGRESS_LINK_LOCAL},
        {"169.254.0.0", KL_EGRESS_LINK_LOCAL},
        {"169.254.255.255", KL_EGRESS_LINK_LOCAL},
        {"::ffff:169.254.169.254", KL_EGRESS_LINK_LOCAL},
        {"64:ff9b::169.254.169.254", KL_EGRESS_LINK_LOCAL},
        {"fe80::1", KL_EGRESS_LINK_LOCAL},
        {"febf:ffff::1", KL_EGRESS_LINK_LOCAL},
        {"fd00:ec2::254", KL_EGRESS_ALLOWED}, /* a ULA: private, allowed by default */
        /* multicast */
        {"224.0.0.1", KL_EGRESS_MULTICAST},
        {"239.255.255.250", KL_EGRESS_MULTICAST},
        {"::ffff:224.0.0.251", KL_EGRESS_MULTICAST},
        {"ff02::1", KL_EGRESS_MULTICAST},
        {"ff0e::1", KL_EGRESS_MULTICAST},
        /* broadcast */
        {"255.255.255.255", KL_EGRESS_BROADCAST},
        /* neighbours of the refused ranges stay allowed */
        {"169.253.255.255", KL_EGRESS_ALLOWED},
        {"169.255.0.0", KL_EGRESS_ALLOWED},
        {"223.255.255.255", KL_EGRESS_ALLOWED},
        {"240.0.0.1", KL_EGRESS_ALLOWED},
        {"fec0::1", KL_EGRESS_ALLOWED},
        {"fe7f::1", KL_EGRESS_ALLOWED},
        {"1.0.0.0", KL_EGRESS_ALLOWED},
        /* default mode: loopback, private and public ranges are allowed */
        {"127.0.0.1", KL_EGRESS_ALLOWED},
        {"127.9.9.9", KL_EGRESS_ALLOWED},
        {"::1", KL_EGRESS_ALLOWED},
        {"10.1.2.3", KL_EGRESS_ALLOWED},
        {"172.16.0.1", KL_EGRESS_ALLOWED},
        {"192.168.1.10", KL_EGRESS_ALLOWED},
        {"fd12:3456::1", KL_EGRESS_ALLOWED},
        {"8.8.8.8", KL_EGRESS_ALLOWED},
        {"2001:db8::1", KL_EGRESS_ALLOWED},
        {"::ffff:10.0.0.1", KL_EGRESS_ALLOWED},
    };
    run_vectors(e, v, sizeof(v) / sizeof(v[0]));
    assert_false(kl_egress_has_allowlist(e));
    /* An allowlist that covers everything cannot reopen an always-refused class. */
    char err[256];
    assert_int_equal(kl_egress_allow(e, "0.0.0.0/0, ::/0", err, sizeof(err)), 0);
    assert_int_equal(check(e, NULL, "169.254.169.254", 80), KL_EGRESS_LINK_LOCAL);
    assert_int_equal(check(e, NULL, "::ffff:169.254.169.254", 80), KL_EGRESS_LINK_LOCAL);
    assert_int_equal(check(e, NULL, "ff02::1", 80), KL_EGRESS_MULTICAST);
    assert_int_equal(check(e, NULL, "0.0.0.0", 80), KL_EGRESS_UNSPECIFIED);
    assert_int_equal(check(e, NULL, "8.8.8.8", 80), KL_EGRESS_ALLOWED);
    kl_egress_free(e);
}

static void test_non_ip_family_is_refused(void **state)
{
    (void)state;
    kl_egress *e = NULL;
    assert_int_equal(kl_egress_new(&e), 0);
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(kl_egress_check(e, NULL, &un), KL_EGRESS_UNSUPPORTED);
    assert_int_equal(kl_egress_check(e, NULL, NULL), KL_EGRESS_UNSUPPORTED);
    kl_egress_free(e);
}

static void test_own_listeners(void **state)
{
    (void)state;
    kl_egress *e = NULL;
    assert_int_equal(kl_egress_new(&e), 0);
    struct sockaddr_storage pub = sa("127.0.0.1", 8443);
    struct sockaddr_storage met = sa("::1", 9100);
    struct sockaddr_storage any = sa("0.0.0.0", 9443);
    struct sockaddr_storage local = sa("10.0.0.5", 0);
    assert_int_equal(kl_egress_add_listener(e, (struct sockaddr *)&pub), 0);
    assert_int_equal(kl_egress_add_listener(e, (struct sockaddr *)&met), 0);
    assert_int_equal(kl_egress_add_listener(e, (struct sockaddr *)&any), 0);
    assert_int_equal(kl_egress_add_local(e, (struct sockaddr *)&local), 0);
    /* Specific listeners: that address and port, in any spelling. */
    assert_int_equal(check(e, NULL, "127.0.0.1", 8443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "::ffff:127.0.0.1", 8443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "::1", 9100), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "127.0.0.1", 8444), KL_EGRESS_ALLOWED);
    assert_int_equal(check(e, NULL, "127.0.0.2", 8443), KL_EGRESS_ALLOWED);
    assert_int_equal(check(e, NULL, "127.0.0.1", 9100), KL_EGRESS_ALLOWED);
    /* A wildcard listener: its port on loopback and on every recorded local address,
     * whichever family; other hosts on that port stay reachable. */
    assert_int_equal(check(e, NULL, "127.0.0.1", 9443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "127.3.2.1", 9443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "::1", 9443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "10.0.0.5", 9443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "::ffff:10.0.0.5", 9443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "10.0.0.6", 9443), KL_EGRESS_ALLOWED);
    assert_int_equal(check(e, NULL, "10.0.0.5", 9444), KL_EGRESS_ALLOWED);
    /* The write-time form: literals are judged, names are left to connect time. */
    assert_int_equal(kl_egress_check_literal(e, "127.0.0.1", 8443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(kl_egress_check_literal(e, "::ffff:127.0.0.1", 8443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(kl_egress_check_literal(e, "169.254.169.254", 80), KL_EGRESS_LINK_LOCAL);
    assert_int_equal(kl_egress_check_literal(e, "localhost", 8443), KL_EGRESS_ALLOWED);
    assert_int_equal(kl_egress_check_literal(e, "fe80::1%eth0", 80), KL_EGRESS_LINK_LOCAL);
    assert_int_equal(kl_egress_check_literal(e, "fe80::1%25eth0", 80), KL_EGRESS_LINK_LOCAL);
    assert_int_equal(kl_egress_check_literal(e, "ff02::1%lo", 80), KL_EGRESS_MULTICAST);
    kl_egress_free(e);
}

static void test_wildcard_ipv6_listener(void **state)
{
    (void)state;
    kl_egress *e = NULL;
    assert_int_equal(kl_egress_new(&e), 0);
    struct sockaddr_storage any6 = sa("::", 8443);
    assert_int_equal(kl_egress_add_listener(e, (struct sockaddr *)&any6), 0);
    assert_int_equal(check(e, NULL, "127.0.0.1", 8443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "::1", 8443), KL_EGRESS_OWN_LISTENER);
    assert_int_equal(check(e, NULL, "192.0.2.1", 8443), KL_EGRESS_ALLOWED);
    kl_egress_free(e);
}

static void test_allowlist_mode(void **state)
{
    (void)state;
    kl_egress *e = NULL;
    char err[256] = "";
    assert_int_equal(kl_egress_new(&e), 0);
    assert_int_equal(
        kl_egress_allow(e, " 10.0.0.0/8,fd00::/8 127.0.0.2 Models.Internal. ", err, sizeof(err)),
        0);
    assert_true(kl_egress_has_allowlist(e));
    static const vector v[] = {
        {"10.0.0.0", KL_EGRESS_ALLOWED},
        {"10.255.255.255", KL_EGRESS_ALLOWED},
        {"::ffff:10.1.1.1", KL_EGRESS_ALLOWED},
        {"11.0.0.0", KL_EGRESS_NOT_ALLOWED},
        {"9.255.255.255", KL_EGRESS_NOT_ALLOWED},
        {"127.0.0.2", KL_EGRESS_ALLOWED},
        {"127.0.0.1", KL_EGRESS_NOT_ALLOWED},
        {"::1", KL_EGRESS_NOT_ALLOWED},
        {"fd00::1", KL_EGRESS_ALLOWED},
        {"fdff:ffff::1", KL_EGRESS_ALLOWED},
        {"fe00::1", KL_EGRESS_NOT_ALLOWED},
        {"192.168.0.1", KL_EGRESS_NOT_ALLOWED},
        {"169.254.169.254", KL_EGRESS_LINK_LOCAL},
    };
    run_vectors(e, v, sizeof(v) / sizeof(v[0]));
    /* A listed host name may connect wherever it resolves (not to refused classes). */
    assert_int_equal(check(e, "models.internal", "192.168.0.1", 80), KL_EGRESS_ALLOWED);
    assert_int_equal(check(e, "MODELS.internal.", "192.168.0.1", 80), KL_EGRESS_ALLOWED);
    assert_int_equal(check(e, "models.internal", "169.254.169.254", 80), KL_EGRESS_LINK_LOCAL);
    assert_int_equal(check(e, "other.internal", "192.168.0.1", 80), KL_EGRESS_NOT_ALLOWED);
    assert_int_equal(check(e, "models.internal.evil", "192.168.0.1", 80), KL_EGRESS_NOT_ALLOWED);
    assert_int_equal(check(e, "internal", "192.168.0.1", 80), KL_EGRESS_NOT_ALLOWED);
    assert_int_equal(kl_egress_check_literal(e, "127.0.0.1", 80), KL_EGRESS_NOT_ALLOWED);
    assert_int_equal(kl_egress_check_literal(e, "127.0.0.2", 80), KL_EGRESS_ALLOWED);
    /* An IPv4-mapped CIDR is an IPv4 network. */
    kl_egress_free(e);
    assert_int_equal(kl_egress_new(&e), 0);
    assert_int_equal(kl_egress_allow(e, "::ffff:192.168.0.0/112", err, sizeof(err)), 0);
    assert_int_equal(check(e, NULL, "192.168.3.4", 80), KL_EGRESS_ALLOWED);
    assert_int_equal(check(e, NULL, "192.169.0.1", 80), KL_EGRESS_NOT_ALLOWED);
    /* Odd prefix lengths. */
    kl_egress_free(e);
    assert_int_equal(kl_egress_new(&e), 0);
    assert_int_equal(kl_egress_allow(e, "172.16.0.0/12", err, sizeof(err)), 0);
    assert_int_equal(check(e, NULL, "172.31.255.255", 80), KL_EGRESS_ALLOWED);
    assert_int_equal(check(e, NULL, "172.32.0.0", 80), KL_EGRESS_NOT_ALLOWED);
    assert_int_equal(check(e, NULL, "172.15.255.255", 80), KL_EGRESS_NOT_ALLOWED);
    kl_egress_free(e);
}

static void test_allowlist_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *list;
        int rc;
        const char *msg;
    } bad[] = {
        {"10.0.0.1/8", KL_EINVAL,
         "egress allowlist entry \"10.0.0.1/8\" has bits set past its prefix length"},
        {"10.0.0.0/33", KL_EINVAL,
         "egress allowlist entry \"10.0.0.0/33\" is neither an address, a CIDR nor a host name"},
        {"10.0.0.0/", KL_EINVAL,
         "egress allowlist entry \"10.0.0.0/\" is neither an address, a CIDR nor a host name"},
        {"::/129", KL_EINVAL,
         "egress allowlist entry \"::/129\" is neither an address, a CIDR nor a host name"},
        {"[::1]", KL_EINVAL,
         "egress allowlist entry \"[::1]\" is neither an address, a CIDR nor a host name"},
        {"fe80::1%eth0", KL_EINVAL,
         "egress allowlist entry \"fe80::1%eth0\" is neither an address, a CIDR nor a host "
         "name"},
        {"a..b", KL_EINVAL,
         "egress allowlist entry \"a..b\" is neither an address, a CIDR nor a host name"},
        {"http://x", KL_EINVAL,
         "egress allowlist entry \"http://x\" is neither an address, a CIDR nor a host name"},
        {"10.0.0.0/8 *.example.com", KL_EINVAL,
         "egress allowlist entry \"*.example.com\" is neither an address, a CIDR nor a host "
         "name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kl_egress *e = NULL;
        char err[256] = "";
        assert_int_equal(kl_egress_new(&e), 0);
        assert_int_equal(kl_egress_allow(e, bad[i].list, err, sizeof(err)), bad[i].rc);
        assert_string_equal(err, bad[i].msg);
        /* A refused list leaves the policy as it was. */
        assert_false(kl_egress_has_allowlist(e));
        kl_egress_free(e);
    }
    /* Too many entries. */
    char list[KL_MAX_EGRESS_RULES * 16 + 16] = "";
    size_t used = 0;
    for (int i = 0; i <= KL_MAX_EGRESS_RULES; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "10.0.%d.0/24,", i);
    kl_egress *e = NULL;
    char err[256] = "";
    assert_int_equal(kl_egress_new(&e), 0);
    assert_int_equal(kl_egress_allow(e, list, err, sizeof(err)), KL_ETOOBIG);
    assert_false(kl_egress_has_allowlist(e));
    /* Blank lists mean the default mode. */
    assert_int_equal(kl_egress_allow(e, "", err, sizeof(err)), 0);
    assert_int_equal(kl_egress_allow(e, " , ,", err, sizeof(err)), 0);
    assert_false(kl_egress_has_allowlist(e));
    kl_egress_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_always_refused_classes),
        cmocka_unit_test(test_non_ip_family_is_refused),
        cmocka_unit_test(test_own_listeners),
        cmocka_unit_test(test_wildcard_ipv6_listener),
        cmocka_unit_test(test_allowlist_mode),
        cmocka_unit_test(test_allowlist_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
