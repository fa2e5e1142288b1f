/* Secret files on the host: write each service's declared secrets under a
 * secrets root (default /run/tend/secrets/<service>/<name>) atomically with
 * their owner, group and mode, remove what is no longer declared, and report
 * what changed by SHA-256 (hashes only, never plaintext) so the reconcile
 * step can restart the services that use a changed secret. */
#ifndef TEND_SECRETS_INSTALL_H
#define TEND_SECRETS_INSTALL_H

#include <stddef.h>
#include <sys/types.h>

#define TEND_SECRETS_DEFAULT_ROOT "/run/tend/secrets"

typedef struct {
	const char *service;        /* directory name under the root */
	const char *name;           /* file name */
	const void *data;           /* plaintext (not copied, not wiped here) */
	size_t len;
	const char *owner;          /* user name; NULL: root */
	const char *group;          /* group name; NULL: the owner's primary group */
	mode_t mode;                /* 0: 0400 */
} tend_secret_file;

typedef enum {
	TEND_SECRET_UNCHANGED = 0,
	TEND_SECRET_CREATED,        /* new file */
	TEND_SECRET_UPDATED,        /* content changed: restart the users */
	TEND_SECRET_PERMS,          /* same content, owner/group/mode fixed in place */
	TEND_SECRET_REMOVED         /* no longer declared, deleted */
} tend_secret_status;

typedef struct {
	char *service;
	char *name;
	char sha256[65];            /* of the content now installed ("" when removed) */
	tend_secret_status status;
} tend_secret_change;

typedef struct {
	tend_secret_change *items;  /* declared secrets in order, then removals */
	size_t count;
} tend_secret_report;

/* Install files[0..count) under root (NULL: the default). Every owner and
 * group is resolved before anything is written: an unknown one fails with
 * TEND_ENOTFOUND naming the secret and the user or group. Names must be
 * single path components. Files and service directories under root that are
 * not declared are removed. On success fills out (dispose it); on failure
 * out is empty and the message says which secret failed. */
int tend_secrets_install(tend_secret_report *out, const char *root,
			 const tend_secret_file *files, size_t count);
void tend_secret_report_dispose(tend_secret_report *report);

/* 1 if the secret service/name changed content (created or updated). */
int tend_secret_report_changed(const tend_secret_report *report, const char *service,
			       const char *name);

#endif
