/* age identities: X25519 keys from age key files, OpenSSH Ed25519 private keys
 * (used natively for ssh-ed25519 stanzas and, mapped the ssh-to-age way, for
 * X25519 stanzas), and passphrases for scrypt stanzas. */
#ifndef TEND_SECRETS_IDENTITY_H
#define TEND_SECRETS_IDENTITY_H

#include <stddef.h>

typedef struct tend_age_identities tend_age_identities;

int tend_age_identities_new(tend_age_identities **out);
/* Wipes every key and passphrase; accepts NULL. */
void tend_age_identities_free(tend_age_identities *ids);

/* A passphrase for scrypt stanzas (copied; trailing newline is not stripped). */
int tend_age_identities_add_passphrase(tend_age_identities *ids, const char *pass, size_t len);

/* Parse identities from text: an age key file (AGE-SECRET-KEY-1..., comments
 * and blank lines allowed) or an unencrypted OpenSSH Ed25519 private key. An
 * age-encrypted key file (armored or binary, e.g. passphrase-protected) is
 * decrypted first with the identities already present. `display` names the
 * source in messages (never the key). Post-quantum (AGE-SECRET-KEY-PQ-) and
 * plugin identities fail with TEND_EUNSUPPORTED, by name. */
int tend_age_identities_add_data(tend_age_identities *ids, const char *data, size_t len,
				 const char *display);
/* Same, reading the file (capped at 1 MiB). */
int tend_age_identities_add_file(tend_age_identities *ids, const char *path);

size_t tend_age_identities_count(const tend_age_identities *ids);
/* The public side of identity i for messages: "age1..." for X25519 (also for
 * an SSH key's ssh-to-age mapping), "ssh-ed25519 <key tag>" for the native
 * SSH identity, "scrypt passphrase" for a passphrase. */
const char *tend_age_identities_describe(const tend_age_identities *ids, size_t i);

/* The age1... recipient of an Ed25519 public key (32 bytes) the ssh-to-age
 * way; out needs 100 bytes. */
int tend_age_ssh_to_age_recipient(char *out, size_t out_size, const unsigned char ed25519_pk[32]);

#endif
