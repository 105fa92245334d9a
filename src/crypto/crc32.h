/* CRC-32 as used by zlib, gzip and PNG (reflected polynomial 0xEDB88320, initial value and
 * final XOR 0xFFFFFFFF): the API key checksum. Internal to crypto/; exposed so the format
 * can be checked against the standard check value CRC-32("123456789") = 0xCBF43926. */
#ifndef KL_CRYPTO_CRC32_H
#define KL_CRYPTO_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 of p[0..n). p may be NULL when n is 0. */
uint32_t kl_crc32(const void *p, size_t n);

#endif
