/* AES-256-GCM decryption with sops's 32-byte IVs, which libsodium cannot
 * take: the one place tend uses OpenSSL's libcrypto (EVP), never hand-written AES. */
#ifndef TEND_SECRETS_AESGCM_H
#define TEND_SECRETS_AESGCM_H

#include <stddef.h>

/* Decrypt ct (ct_len bytes) into out (ct_len bytes) and check the 16-byte tag.
 * iv_len 1..128 bytes (OpenSSL's GCM limit). Returns 0, TEND_EAUTH (out wiped), or TEND_EINVALID. */
int tend_aes256gcm_open(unsigned char *out, const unsigned char key[32],
			const unsigned char *iv, size_t iv_len,
			const unsigned char *aad, size_t aad_len,
			const unsigned char *ct, size_t ct_len, const unsigned char tag[16]);

#endif
