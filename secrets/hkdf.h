/* HKDF-SHA-256 (RFC 5869) on libsodium's HMAC-SHA-256: the key derivation
 * that age uses for stanza wrapping keys, the header MAC and the payload key. */
#ifndef TEND_SECRETS_HKDF_H
#define TEND_SECRETS_HKDF_H

#include <stddef.h>

/* Derive outlen bytes (at most 255*32) into out. salt may be NULL/0 (RFC 5869:
 * a zero-length salt is the same as 32 zero bytes). Returns 0, or
 * TEND_EINVALID if outlen is too large. */
int tend_hkdf_sha256(unsigned char *out, size_t outlen,
		     const unsigned char *salt, size_t salt_len,
		     const unsigned char *ikm, size_t ikm_len,
		     const unsigned char *info, size_t info_len);

/* HMAC-SHA-256 with a key of any length (libsodium's, exposed for tests). */
void tend_hmac_sha256(unsigned char out[32], const unsigned char *key, size_t key_len,
		      const unsigned char *msg, size_t msg_len);

#endif
