/* AES-256-GCM open via OpenSSL EVP with arbitrary IV lengths (sops: 32 bytes). */
#include "secrets/aesgcm.h"
#include "util/error.h"

#include <limits.h>
#include <openssl/evp.h>
#include <sodium.h>

int tend_aes256gcm_open(unsigned char *out, const unsigned char key[32],
			const unsigned char *iv, size_t iv_len,
			const unsigned char *aad, size_t aad_len,
			const unsigned char *ct, size_t ct_len, const unsigned char tag[16])
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char final[16];
	int n = 0, error = TEND_EINVALID;

	if (iv_len == 0 || iv_len > 128 || ct_len > INT_MAX || aad_len > INT_MAX) {
		tend_error_set("AES-GCM: invalid IV or input length");
		return TEND_EINVALID;
	}
	if (!(ctx = EVP_CIPHER_CTX_new())) {
		tend_error_set("AES-GCM: out of memory");
		return TEND_ERROR;
	}
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, iv) != 1) {
		tend_error_set("AES-GCM: cannot initialise");
		goto out;
	}
	if (aad_len && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
		tend_error_set("AES-GCM: cannot process additional data");
		goto out;
	}
	if (ct_len && EVP_DecryptUpdate(ctx, out, &n, ct, (int)ct_len) != 1) {
		tend_error_set("AES-GCM: cannot decrypt");
		goto out;
	}
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1 ||
	    EVP_DecryptFinal_ex(ctx, final, &n) != 1) {
		tend_error_set("AES-GCM: authentication failed");
		error = TEND_EAUTH;
		if (ct_len)
			sodium_memzero(out, ct_len);
		goto out;
	}
	error = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return error;
}
