/* Bech32 (BIP 173, the original checksum constant 1) as age uses it for
 * recipients (age1...) and identities (AGE-SECRET-KEY-1...), without BIP 173's
 * 90-character limit, which age does not apply. */
#ifndef TEND_SECRETS_BECH32_H
#define TEND_SECRETS_BECH32_H

#include <stddef.h>

/* Decode str (all lower or all upper case). hrp_out gets the human-readable
 * part in lower case (NUL-terminated, hrp_size bytes available); data gets the
 * 8-bit payload. Returns 0 or TEND_EINVALID (message set, without the input,
 * which may be a secret key). */
int tend_bech32_decode(char *hrp_out, size_t hrp_size, unsigned char *data, size_t data_size,
		       size_t *data_len, const char *str, size_t len);

/* Encode hrp (lower case) and data into a NUL-terminated lower-case string in
 * out (out_size bytes available). Returns 0 or TEND_ELIMIT. */
int tend_bech32_encode(char *out, size_t out_size, const char *hrp,
		       const unsigned char *data, size_t data_len);

#endif
