/* The agent's configuration (--config FILE): which host this is, where the
 * fleet repository lives, and every host path tend touches, so tests and the
 * demo can run several "hosts" on one machine. Documented in docs/agent-config.md. */
#ifndef TEND_AGENT_CONFIG_H
#define TEND_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "secrets/install.h"

typedef struct {
	char *url;                 /* git remote: ssh://, https://, file:// or a local path */
	char *branch;              /* default "main" */
	char *ssh_key_file;        /* OpenSSH private key (may be NULL) */
	char *ssh_passphrase_file; /* its passphrase (may be NULL) */
	char *known_hosts;         /* OpenSSH known_hosts for ssh:// remotes (may be NULL) */
	char *token_file;          /* HTTPS bearer token (may be NULL) */
	char *basic_auth_file;     /* HTTPS "user:password" (may be NULL) */
	char *allowed_signers;     /* ssh-keygen allowed_signers; NULL: signatures not required */
	char *ca_file;             /* https: PEM CAs to trust; NULL: $SSL_CERT_FILE or the system bundle */
} tend_config_repository;

typedef struct {
	char *command;             /* default "nix" (searched in PATH) */
	char **extra_options;      /* appended to every nix invocation */
	size_t n_extra_options;
	uint64_t build_timeout_ms; /* default 30m */
} tend_config_nix;

typedef struct {
	char *profile;             /* default /nix/var/nix/profiles/system */
	char *current_system;      /* default /run/current-system */
	uint64_t switch_timeout_ms;/* default 10m */
	char *unit_file;           /* tend's own unit (a store symlink on NixOS); default
				      /etc/systemd/system/tend.service; a missing file: not watched */
	uint64_t reachability_timeout_ms; /* after a switch, the repository (and, for a host
				      others depend on, its agent address) must answer within
				      this; default 60s; 0: not checked */
	char **reboot_command;     /* how tend reboots the host in its reboot_window; NULL:
				      systemctl reboot, and only where current_system is
				      /run/current-system (a real host) */
	size_t n_reboot_command;
} tend_config_system;

typedef struct {
	int configured;            /* 1 when alerts.email is present */
	char **to;
	size_t n_to;
	char *from;
	char *smtp_url;            /* smtp://host:port or smtps://host:port */
	char *username;            /* may be NULL */
	char *password_file;       /* may be NULL */
	int starttls;              /* default 1 for smtp://, ignored for smtps:// */
} tend_config_email;

typedef struct {
	uint64_t deadline_ms;      /* all startup probes of one reconcile; default 10m */
	size_t output_limit;       /* bytes of a failing try's output kept; default 4096 */
	size_t body_limit;         /* bytes of an HTTP body read; default 64 KiB */
	char *ca_file;             /* https probes: PEM CAs to trust; NULL: $SSL_CERT_FILE or the system bundle */
	uint64_t liveness_interval_ms; /* the liveness probes run this often between reconciles;
					  default 60s, 0: never */
} tend_config_probes;

typedef struct tend_config {
	char *path;                /* the file it was loaded from */
	char *host;                /* this host's name in fleet.yaml (required) */
	tend_config_repository repository;
	char *state_dir;           /* required */
	char **age_identities;     /* age key files / OpenSSH Ed25519 keys */
	size_t n_age_identities;
	char *secrets_root;        /* default /run/tend/secrets */
	tend_secrets_storage secrets_storage;   /* ram (default): generations on a ramfs */
	char *root;                /* prefix for rendered files (routes); default "/" */
	tend_config_nix nix;
	tend_config_system system;
	struct {
		uint64_t interval_ms;  /* default 60s */
		uint64_t jitter_ms;    /* default 10s */
		uint64_t backoff_initial_ms; /* first retry after a failed step; default 5s */
		uint64_t backoff_max_ms;     /* 0 (default): 5m, or interval_ms when longer */
		/* A poll that finds the head of the last concluded reconcile
		 * only looks at the remote (no worker) unless the last full
		 * reconcile is this old; default 10m; 0: every poll is full. */
		uint64_t drift_interval_ms;
	} poll;
	struct {
		char *address;     /* default 127.0.0.1 */
		int port;          /* default 8470; 0 disables the HTTP endpoint */
	} listen;
	char *webhook_secret_file; /* may be NULL: no webhook */
	struct {
		tend_config_email email;
		uint64_t fetch_failing_after_ms; /* fetches failing this long: mail; default 15m */
	} alerts;
	struct {
		uint64_t deadline_ms;  /* blocked on other hosts this long: mail; default 30m */
		uint64_t recheck_ms;   /* ask the other hosts again this often; default 2s */
	} dependencies;
	tend_config_probes probes;
	unsigned history_limit;    /* reconciles kept in the state file; default 100 */
} tend_config;

/* Load and validate path. Relative paths inside the file are resolved against
 * the file's directory. On failure returns TEND_ENOTFOUND, TEND_EINVALID or
 * TEND_ELIMIT with the error "path:line:col: message" (unknown keys with a
 * "did you mean" suggestion). */
int tend_config_load(tend_config **out, const char *path);
/* tend_config_load that also hands back the document it parsed (*data, *len)
 * and the absolute directory relative paths were resolved against
 * (*base_dir), both for the caller to free (data and base_dir may be NULL):
 * what tend_config_parse needs to rebuild exactly this configuration in
 * another process (the agent's worker) without reading the file again. */
int tend_config_load_document(tend_config **out, char **data, size_t *len, char **base_dir,
			      const char *path);
/* The same from a document in memory (display names it in messages);
 * relative paths are resolved against base_dir (absolute). */
int tend_config_parse(tend_config **out, const char *display, const char *data, size_t len,
		      const char *base_dir);
void tend_config_free(tend_config *cfg);

/* Parse a duration such as "500ms", "30s", "1m30s", "2h". 0 on success,
 * TEND_EINVALID otherwise (no error message set). */
int tend_config_parse_duration(uint64_t *out_ms, const char *s);

#endif
