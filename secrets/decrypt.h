/* One declared secret's plaintext, whatever its source: a whole age file
 * (binary or armored), a whole sops document (printed in its own format), or
 * one value of a sops file (a key path such as '["db"]["password"]'). What
 * the reconcile helper and `tend secret decrypt` both use. */
#ifndef TEND_SECRETS_DECRYPT_H
#define TEND_SECRETS_DECRYPT_H

#include <stddef.h>
#include "util/buf.h"
#include "secrets/identity.h"

/* Cap on an encrypted input file: 64 MiB of age payload plus its overhead. */
#define TEND_SECRET_MAX_INPUT ((size_t)80 << 20)

/* Decrypt data (named `display` in messages) into out; key is a sops
 * --extract path or NULL. On failure out is left empty (wiped) and the error
 * is one of TEND_ENOMATCH, TEND_EAUTH, TEND_EINVALID, TEND_EUNSUPPORTED,
 * TEND_ENOTFOUND (key), TEND_ELIMIT; the message never holds plaintext. */
int tend_secret_decrypt(tend_buf *out, const char *data, size_t len, const char *display,
			const char *key, const tend_age_identities *ids);
/* Same, reading path (capped at TEND_SECRET_MAX_INPUT); display NULL: path. */
int tend_secret_decrypt_file(tend_buf *out, const char *path, const char *display,
			     const char *key, const tend_age_identities *ids);

#endif
