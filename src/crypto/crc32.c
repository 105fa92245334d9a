/* Bitwise CRC-32 (zlib polynomial). Only short strings (API keys) are checksummed, so a
 * table buys nothing worth its 1 KiB. */
#include "crypto/crc32.h"

uint32_t kl_crc32(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}
