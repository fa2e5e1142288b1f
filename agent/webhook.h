/* Webhook authentication: an HMAC-SHA256 of the request body with a shared
 * secret, sent as "sha256=<hex>" (GitHub's X-Hub-Signature-256, or tend's
 * X-Tend-Signature), compared in constant time. */
#ifndef TEND_AGENT_WEBHOOK_H
#define TEND_AGENT_WEBHOOK_H

#include <stddef.h>

#define TEND_WEBHOOK_SECRET_MAX 1024

/* Parse "sha256=" followed by exactly 64 hex digits (either case) into 32
 * bytes. TEND_EINVALID for anything else. len is the header's length. */
int tend_webhook_signature_parse(unsigned char out[32], const char *header, size_t len);

/* 0 when header carries the HMAC-SHA256 of body under secret; TEND_EAUTH
 * when it does not (or is malformed); TEND_EINVALID for an empty secret. */
int tend_webhook_verify(const unsigned char *secret, size_t secret_len,
			const void *body, size_t body_len, const char *header);

/* Read the secret from a file (trailing newline dropped, at most
 * TEND_WEBHOOK_SECRET_MAX bytes, at least 16). The caller wipes and frees *out. */
int tend_webhook_secret_load(unsigned char **out, size_t *out_len, const char *path);

#endif
