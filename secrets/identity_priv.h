/* Private: the identity records that age.c unwraps stanzas with. */
#ifndef TEND_SECRETS_IDENTITY_PRIV_H
#define TEND_SECRETS_IDENTITY_PRIV_H

#include <stddef.h>
#include "secrets/identity.h"

enum {
	TEND_AGE_ID_X25519 = 1,
	TEND_AGE_ID_SSH_ED25519,
	TEND_AGE_ID_SCRYPT
};

typedef struct {
	int kind;
	unsigned char secret[32];     /* X25519 scalar (also the SSH key's converted scalar) */
	unsigned char pub[32];        /* our X25519 public key (for the HKDF salt) */
	unsigned char ssh_key[51];    /* SSH wire public key: string "ssh-ed25519", string pk */
	char tag[8];                  /* base64 (no padding) of SHA-256(ssh_key)[:4] */
	unsigned char tweak[32];      /* HKDF(ikm "", salt ssh_key, "age-encryption.org/v1/ssh-ed25519") */
	char *pass;                   /* scrypt passphrase */
	size_t pass_len;
	char describe[128];
} tend_age_identity;

struct tend_age_identities {
	tend_age_identity *items;
	size_t count, alloc;
};

#endif
