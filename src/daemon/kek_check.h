/* The start-up check that this node's key-encryption key is the cluster's: the store
 * keeps one value sealed with the KEK of the first node that started; a node whose KEK
 * does not open it must not serve (it could not open keys or credentials either). */
#ifndef KL_DAEMON_KEK_CHECK_H
#define KL_DAEMON_KEK_CHECK_H

#include "crypto/keys.h"
#include "store/store.h"

/* Opens the store's check value with keys, first sealing and storing one if the store
 * has none; a store without one that already holds API keys (made before the check
 * value existed) gets one only if keys open the first account's first key. 0 when it opens;
 * KL_ECRYPTO (logged in one line saying what to do) when it does not; a store error otherwise. */
int kl_kek_check(kl_store *st, const kl_keys *keys);

#endif
