/* Webhook signatures with libsodium's HMAC-SHA256 and sodium_memcmp. The
 * header is untrusted input: its parser is fuzzed (fuzz/fuzz_webhook.c). */
#include "agent/webhook.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int tend_webhook_signature_parse(unsigned char out[32], const char *header, size_t len)
{
	size_t i, bin_len = 0;

	if (!header || len != 7 + 64 || memcmp(header, "sha256=", 7) != 0)
		return TEND_EINVALID;
	for (i = 7; i < len; i++) {
		char c = header[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return TEND_EINVALID;
	}
	if (sodium_hex2bin(out, 32, header + 7, 64, NULL, &bin_len, NULL) != 0 || bin_len != 32)
		return TEND_EINVALID;
	return 0;
}

int tend_webhook_verify(const unsigned char *secret, size_t secret_len,
			const void *body, size_t body_len, const char *header)
{
	crypto_auth_hmacsha256_state st;
	unsigned char want[32], got[32];
	int error = TEND_EAUTH;

	if (!secret || secret_len == 0) {
		tend_error_set("webhook: no secret configured");
		return TEND_EINVALID;
	}
	if (!header || tend_webhook_signature_parse(got, header, strlen(header)) < 0) {
		tend_error_set("webhook: missing or malformed signature (want sha256=<64 hex digits>)");
		goto out;
	}
	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, body, body_len);
	crypto_auth_hmacsha256_final(&st, want);
	if (sodium_memcmp(want, got, sizeof(want)) != 0) {
		tend_error_set("webhook: signature does not match the body");
		goto out;
	}
	error = 0;
out:
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(want, sizeof(want));
	return error;
}

int tend_webhook_secret_load(unsigned char **out, size_t *out_len, const char *path)
{
	tend_buf b = TEND_BUF_INIT;
	int error;

	*out = NULL;
	*out_len = 0;
	b.max = TEND_WEBHOOK_SECRET_MAX + 2;
	if ((error = tend_file_read(&b, path, TEND_WEBHOOK_SECRET_MAX + 2)) < 0) {
		tend_error_prefix("webhook_secret_file: ");
		goto out;
	}
	while (b.size && (b.ptr[b.size - 1] == '\n' || b.ptr[b.size - 1] == '\r'))
		b.ptr[--b.size] = '\0';
	if (b.size < 16 || b.size > TEND_WEBHOOK_SECRET_MAX) {
		tend_error_set("webhook_secret_file: %s: the secret must be 16 to %d bytes",
			       path, TEND_WEBHOOK_SECRET_MAX);
		error = TEND_EINVALID;
		goto out;
	}
	*out_len = b.size;
	*out = (unsigned char *)tend_buf_detach(&b);
	error = 0;
out:
	tend_buf_dispose_secure(&b);
	return error;
}
