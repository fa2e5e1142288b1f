/* age v1 (C2SP) decryption: the header with its stanzas and MAC, the ASCII
 * armor, and the STREAM payload (ChaCha20-Poly1305, 64 KiB chunks), all on
 * libsodium. Staged so callers and tests can tell header, MAC and payload
 * failures apart; tend_age_decrypt does everything for one buffer. */
#ifndef TEND_SECRETS_AGE_H
#define TEND_SECRETS_AGE_H

#include <stddef.h>
#include "util/buf.h"
#include "secrets/identity.h"

typedef struct {
	size_t max_payload;         /* plaintext bytes; 0: 64 MiB */
	size_t max_header;          /* header bytes up to the MAC line; 0: 64 KiB */
	size_t max_stanzas;         /* 0: 128 */
	unsigned max_scrypt_log_n;  /* 0 or above 22: 22 */
} tend_age_limits;

typedef struct {
	char *type;                 /* first argument ("X25519", "ssh-ed25519", "scrypt", ...) */
	char **args;                /* the other arguments */
	size_t nargs;
	unsigned char *body;
	size_t body_len;
} tend_age_stanza;

typedef struct {
	tend_age_stanza *stanzas;
	size_t count;
	unsigned char mac[32];
	unsigned char nonce[16];
	const unsigned char *raw;   /* the parsed input (not owned) */
	size_t mac_covered;         /* bytes of raw the MAC covers (through "---") */
	const unsigned char *payload; /* after the nonce, inside raw */
	size_t payload_len;
} tend_age_header;

/* 1 if data looks like an age file: binary intro line or the armor's BEGIN
 * line after optional whitespace; 2 if it is the armored form. 0 otherwise. */
int tend_age_detect(const char *data, size_t len);

/* Remove the ASCII armor (strict: 64-column lines, canonical padded base64,
 * CRLF allowed, whitespace only around the armor). TEND_EINVALID on failure. */
int tend_age_dearmor(tend_buf *out, const char *data, size_t len);

/* Parse a binary header and the payload nonce. TEND_EINVALID (header
 * failure) or TEND_ELIMIT. out refers into data, which must outlive it. */
int tend_age_header_parse(tend_age_header *out, const unsigned char *data, size_t len,
			  const tend_age_limits *limits);
void tend_age_header_dispose(tend_age_header *hdr);

/* Find the file key with the identities and check the header MAC.
 * TEND_ENOMATCH (message lists the stanzas), TEND_EINVALID (malformed
 * stanza, scrypt not alone, low-order share), TEND_EAUTH (bad header MAC). */
int tend_age_header_unwrap(unsigned char file_key[16], const tend_age_header *hdr,
			   const tend_age_identities *ids, const tend_age_limits *limits);

/* Receives each authenticated chunk of plaintext, in order. Non-zero stops. */
typedef int (*tend_age_sink)(void *ctx, const unsigned char *data, size_t len);

/* Decrypt the STREAM payload. TEND_EAUTH on a bad or truncated chunk or
 * trailing data, TEND_ELIMIT past max_payload. Chunks already handed to the
 * sink stay handed: buffer callers must discard them on failure. */
int tend_age_payload_decrypt(const unsigned char file_key[16], const tend_age_header *hdr,
			     const tend_age_limits *limits, tend_age_sink sink, void *ctx);

/* All steps for one file in memory (armored or binary). out gets the
 * plaintext; on any failure nothing is left in out (wiped). `display` names
 * the file in messages. */
int tend_age_decrypt(tend_buf *out, const char *data, size_t len, const char *display,
		     const tend_age_identities *ids, const tend_age_limits *limits);

#endif
