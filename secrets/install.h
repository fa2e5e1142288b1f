/* Decrypted secrets on the host, kept as sops-nix keeps them: <root> (default
 * /run/tend/secrets) is a symbolic link to a generation <root>.d/<N>, a directory holding every
 * secret of one commit as <service>/<name>, written whole before it is made current by one
 * rename of the link, so a service never sees half of a change and a rollback is the link put
 * back. The generations live on a ramfs: never swapped out, gone at power-off. */
#ifndef TEND_SECRETS_INSTALL_H
#define TEND_SECRETS_INSTALL_H

#include <stddef.h>
#include <sys/types.h>

#define TEND_SECRETS_DEFAULT_ROOT "/run/tend/secrets"

typedef enum {
	TEND_SECRETS_RAM = 0,       /* <root>.d on a ramfs, mounted by tend when it is not one */
	TEND_SECRETS_DISK           /* <root>.d wherever it is (tests; a host without ramfs) */
} tend_secrets_storage;

typedef struct {
	const char *rel;            /* "<service>/<name>": two plain path components */
	const void *data;           /* plaintext (not copied, not wiped here) */
	size_t len;
	mode_t mode;                /* 0: 0400 */
	uid_t uid;                  /* (uid_t)-1: the writer's */
	gid_t gid;                  /* (gid_t)-1: the writer's */
} tend_secret_file;

/* <root>.d ready for generations. TEND_SECRETS_RAM: a ramfs there, mounted (mode 0751, nodev,
 * nosuid, noexec) when it is not one yet; when it cannot be (not root), TEND_EREFUSED naming the
 * directory and its file system. Creates <root>'s parent when missing. A plain directory at
 * <root> (an older tend's) becomes the first generation, contents, modes and owners kept. */
int tend_secrets_store_prepare(const char *root, tend_secrets_storage storage);

/* The generation <root> links to; 0 when <root> is absent or not a link to a generation. */
int tend_secrets_generation_current(unsigned *out, const char *root);

/* A new generation holding files, directories 0751, each file with its mode and owner; not
 * current yet. Its number is past every one present and past the clock's seconds, so it is not
 * reused after a reboot empties the ramfs. On failure nothing of it is left. */
int tend_secrets_generation_write(unsigned *out, const char *root, const tend_secret_file *files,
				  size_t count);

/* Make generation n current: a link renamed over <root>, atomically (a plain directory there,
 * left by an older tend, is replaced). n == 0: no secrets, <root> removed. */
int tend_secrets_generation_switch(const char *root, unsigned n);

/* Delete every generation but keep and keep2 (0: none). */
int tend_secrets_generation_prune(const char *root, unsigned keep, unsigned keep2);

/* Delete generation n (a written one that did not become current). */
int tend_secrets_generation_remove(const char *root, unsigned n);

/* Add f to the current generation (a secret whose owner exists only after the switch),
 * directories 0751 as in a written generation. TEND_ENOTFOUND when <root> links to none. */
int tend_secrets_current_add(const char *root, const tend_secret_file *f);

/* Every secret's bytes in every generation present, passed to fn (the values to mask in
 * texts that are kept or mailed); fn's negative return stops the walk and is returned. */
int tend_secrets_store_values(const char *root, int (*fn)(void *payload, const char *data, size_t len),
			      void *payload);

#endif
