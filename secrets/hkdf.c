/* HKDF-SHA-256 (RFC 5869) built on libsodium's HMAC-SHA-256: extract, then
 * expand one 32-byte block at a time. No hashing is written here. */
#include "secrets/hkdf.h"
#include "util/error.h"

#include <string.h>
#include <sodium.h>

void tend_hmac_sha256(unsigned char out[32], const unsigned char *key, size_t key_len,
		      const unsigned char *msg, size_t msg_len)
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, key_len);
	crypto_auth_hmacsha256_update(&st, msg, msg_len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

int tend_hkdf_sha256(unsigned char *out, size_t outlen,
		     const unsigned char *salt, size_t salt_len,
		     const unsigned char *ikm, size_t ikm_len,
		     const unsigned char *info, size_t info_len)
{
	static const unsigned char zero_salt[32];
	unsigned char prk[32], t[32];
	crypto_auth_hmacsha256_state st;
	size_t done = 0, n;
	unsigned char counter = 1;

	if (outlen > 255 * 32) {
		tend_error_set("HKDF: %zu bytes requested, at most %d possible", outlen, 255 * 32);
		return TEND_EINVALID;
	}
	if (!salt || !salt_len) {
		salt = zero_salt;
		salt_len = sizeof(zero_salt);
	}
	tend_hmac_sha256(prk, salt, salt_len, ikm, ikm_len);
	while (done < outlen) {
		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		if (counter > 1)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		if (info_len)
			crypto_auth_hmacsha256_update(&st, info, info_len);
		crypto_auth_hmacsha256_update(&st, &counter, 1);
		crypto_auth_hmacsha256_final(&st, t);
		n = outlen - done < sizeof(t) ? outlen - done : sizeof(t);
		memcpy(out + done, t, n);
		done += n;
		counter++;
	}
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
	return 0;
}
