/* The fleet model: fleet.yaml and services/<name>/service.yaml parsed into
 * typed structs whose values remember file, line and column. Services are
 * self-contained and declare what they need (a database, a proxy route, an
 * OIDC client); tend inverts those needs onto the hosts that serve them.
 * The format is documented in docs/manifest.md. All memory lives in the
 * manifest's arena; tend_manifest_free releases it. */
#ifndef TEND_MANIFEST_H
#define TEND_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include "util/window.h"
#include "util/yaml.h"

typedef struct {
	const char *file;      /* repository-relative: "fleet.yaml", "services/db/service.yaml" */
	unsigned line, col;    /* 1-based; 0 when not from a file */
} tend_pos;

/* ---- diagnostics ---------------------------------------------------- */

typedef enum { TEND_DIAG_ERROR = 0, TEND_DIAG_WARNING = 1 } tend_diag_severity;

typedef struct {
	tend_diag_severity severity;
	tend_pos pos;
	char *message;         /* without position or severity */
} tend_diag;

typedef struct {
	tend_diag *items;
	size_t count, cap;
	size_t errors;
} tend_diags;

void tend_diags_add(tend_diags *d, tend_diag_severity sev, const tend_pos *pos,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Sort by file, line, column (stable), so output order is deterministic. */
void tend_diags_sort(tend_diags *d);
/* "path:line:col: error: message" (path only, or "path:line" when unknown). */
char *tend_diag_format(const tend_diag *diag);
void tend_diags_dispose(tend_diags *d);

/* ---- model ---------------------------------------------------------- */

typedef enum { TEND_PROXY_TRAEFIK = 1, TEND_PROXY_CADDY } tend_proxy_kind;
typedef enum { TEND_TLS_NONE = 0, TEND_TLS_INTERNAL, TEND_TLS_ACME } tend_tls_kind;
typedef enum { TEND_PROBE_HTTP = 1, TEND_PROBE_TCP, TEND_PROBE_COMMAND } tend_probe_kind;
typedef enum { TEND_PROBE_STARTUP = 1, TEND_PROBE_LIVENESS } tend_probe_phase;
/* How a host takes a new system (fleet.yaml `operation`): switch-to-configuration switch
 * (live), or boot (the boot default; it runs after the next reboot). */
typedef enum { TEND_OPERATION_SWITCH = 0, TEND_OPERATION_BOOT } tend_operation;

typedef struct {
	char *name;
	char *address;         /* IPv4/IPv6 literal or DNS name the fleet reaches it at */
	char *role;            /* free text: gateway, database, apps, ... (may be NULL) */
	char *flake_attr;      /* nixosConfigurations.<flake_attr>; defaults to name */
	char *age_recipient;   /* age1... or ssh-ed25519 ...; may be NULL */
	int agent_port;        /* tend agent's HTTP endpoint port (fleet default 8470) */
	char *apply_window;    /* when changes may be applied ("Sun 03:00-05:00", util/window.h;
				  the fleet's default when not its own); NULL: any time */
	tend_window window;    /* apply_window, parsed (when apply_window is set) */
	tend_operation operation;   /* `operation` (the fleet's default when not its own) */
	char *reboot_window;   /* when tend may reboot the host itself (the fleet's default when
				  not its own); NULL: tend never reboots it */
	tend_window reboot;    /* reboot_window, parsed */
	tend_pos pos;
} tend_host;

typedef struct {
	char *name;            /* Traefik certResolver name, or Caddy issuer module */
	tend_tls_kind kind;
	char **suffixes;       /* domains this resolver serves, e.g. ".lab.example.net"; internal only */
	size_t n_suffixes;
	char *email;           /* ACME account e-mail (may be NULL) */
	char *ca_url;          /* internal CA's ACME directory (may be NULL) */
	tend_pos pos;
} tend_tls_resolver;

typedef struct {
	char *service;         /* the service that is the reverse proxy */
	tend_proxy_kind kind;
	char *routes_file;     /* absolute path on the proxy's host that the proxy watches */
	char *entry_http;      /* Traefik entry point names (default "web", "websecure") */
	char *entry_https;
	int http_port;         /* listen ports (default 80 and 443) */
	int https_port;
	int redirect_http;     /* redirect HTTP to HTTPS (default 1) */
	tend_tls_resolver *resolvers;
	size_t n_resolvers;
	tend_pos pos;
} tend_proxy_config;

typedef struct {
	char *service;         /* the auth provider service (e.g. authentik), or NULL */
	char *forward_auth_url;/* URL the proxy asks before passing an `auth: true` request */
	char **response_headers;/* headers copied from the auth response */
	size_t n_response_headers;
	tend_pos pos;
} tend_auth_config;

typedef struct {
	char **to;
	size_t n_to;
	char *from;
	char *smtp_url;        /* smtp://host:port or smtps:// (may be NULL: agent config decides) */
	tend_pos pos;
} tend_alert_config;

typedef struct {
	char *engine;          /* "postgresql" or "mysql" */
	char *name;            /* database name */
	char *user;
	char *password_secret; /* name of one of this service's secrets (may be NULL) */
	char *provider;        /* service that serves it; resolved at load time */
	char **extensions;     /* e.g. pgvector; may be empty */
	size_t n_extensions;
	tend_pos pos;
} tend_database_req;

typedef struct {
	char *domain;
	char *path_prefix;     /* "/" when not given */
	char *upstream;        /* full URL; filled at load time with http://<host address>:<port> */
	int port;              /* 0 when upstream is given */
	char *tls;             /* resolver name; when not written, chosen at load time by domain
				* suffix (internal) or the ACME one; NULL only when the fleet's
				* proxy has no TLS resolvers (plain HTTP) */
	int auth;              /* forward auth through the fleet's auth provider */
	char **middlewares;    /* extra Traefik middleware names defined in fleet.yaml (may be empty) */
	size_t n_middlewares;
	tend_pos pos;
} tend_proxy_req;

typedef struct {
	char *provider;        /* service providing OIDC; resolved at load time */
	char *client_id;
	char **redirect_uris;
	size_t n_redirect_uris;
	char *client_secret;   /* name of one of this service's secrets (may be NULL) */
	tend_pos pos;
} tend_oidc_req;

typedef struct {
	tend_probe_kind kind;
	tend_probe_phase phase;
	char *url;             /* http */
	int expect_status;     /* http; default 200 */
	char *body_match;      /* http; substring the body must contain; may be NULL */
	char *host;            /* tcp */
	int port;              /* tcp */
	char **argv;           /* command; argv[argc] == NULL */
	size_t argc;
	uint64_t interval_ms;  /* default 2s */
	uint64_t timeout_ms;   /* per try; default 5s */
	uint64_t grace_ms;     /* wait before the first try; default 0 */
	unsigned retries;      /* tries before failing; default 3 */
	tend_pos pos;
} tend_probe;

typedef struct {
	char *name;            /* destination file name under <secrets root>/<service>/ */
	char *file;            /* repository-relative source: *.age or a sops file */
	char *key;             /* one value of a sops file, as '["a"]["b"]'; NULL: whole file */
	char *owner;           /* default "root" */
	char *group;           /* default "root" */
	unsigned mode;         /* default 0400 */
	char **restart;        /* systemd units to restart when it changes */
	size_t n_restart;
	tend_pos pos;
} tend_secret_decl;

typedef struct {
	char *name;
	char *host;
	char *dir;             /* "services/<name>" */
	char **depends_on;     /* declared, in file order */
	tend_pos *depends_on_pos;
	size_t n_depends_on;
	char **provides;       /* capabilities: "postgresql", "mysql", "oidc", "forward-auth" */
	size_t n_provides;
	tend_database_req *database;   /* NULL when none */
	tend_proxy_req *proxy;         /* NULL when none */
	tend_oidc_req *oidc;           /* NULL when none */
	tend_probe *probes;
	size_t n_probes;
	tend_secret_decl *secrets;
	size_t n_secrets;
	char **units;          /* systemd units the probes wait for (active, or a oneshot done) */
	size_t n_units;
	uint64_t start_timeout_ms; /* health.start_timeout: with units, how long the startup
				    * probes keep trying while the units run; default 60s */
	const tend_yaml_node *settings; /* free-form mapping passed to the host's inputs; may be NULL */
	tend_pos pos;
} tend_service;

typedef struct tend_manifest {
	char *fleet;           /* fleet name */
	char *domain;          /* base domain */
	char **internal_cidrs; /* network facts (may be empty) */
	size_t n_internal_cidrs;
	int agent_port;        /* default for hosts */
	char *apply_window;    /* default for hosts (NULL: any time) */
	tend_window window;    /* apply_window, parsed */
	tend_operation operation;   /* default for hosts: switch */
	char *reboot_window;   /* default for hosts (NULL: tend never reboots) */
	tend_window reboot;    /* reboot_window, parsed */
	tend_host *hosts;      /* sorted by name */
	size_t n_hosts;
	tend_service *services;/* sorted by name */
	size_t n_services;
	tend_proxy_config *proxy;   /* NULL when the fleet has no proxy */
	tend_auth_config *auth;     /* NULL when none */
	tend_alert_config *alerts;  /* NULL when none */
	void *priv;            /* arena and parsed documents */
} tend_manifest;

/* ---- loading -------------------------------------------------------- */

/* Load and validate the fleet in repo_dir (fleet.yaml, services/ *\/service.yaml).
 * Every problem is added to diags (not just the first). Returns 0 when the fleet
 * is valid (diags may hold warnings); TEND_EINVALID when diags has errors (and *out
 * is NULL); other negative codes for I/O failures. */
int tend_manifest_load(tend_manifest **out, tend_diags *diags, const char *repo_dir);
void tend_manifest_free(tend_manifest *m);

/* One services/<name>/service.yaml given as bytes (for `render --commit`,
 * which reads blobs from git, and for the fuzzer). */
typedef struct {
	const char *name;      /* the directory name under services/ */
	const char *data;      /* the document; NULL: it could not be read and the
				* caller already added a diagnostic (the service is
				* kept as a placeholder so references to it resolve) */
	size_t len;
} tend_manifest_source;

/* Is this repository-relative path a file? (secrets' `file` must exist) */
typedef int (*tend_manifest_exists_fn)(const char *rel_path, void *payload);

/* Like tend_manifest_load, from documents in memory. fleet_yaml NULL means
 * the repository has no fleet.yaml. exists NULL skips the secret file check. */
int tend_manifest_load_sources(tend_manifest **out, tend_diags *diags,
			       const char *fleet_yaml, size_t fleet_len,
			       const tend_manifest_source *services, size_t n_services,
			       tend_manifest_exists_fn exists, void *payload);

/* 1 when s can be rendered into a route (a Traefik backquoted rule argument,
 * a Caddy matcher) as it is: no '`', '"', '\\', control character or DEL.
 * validate and render apply this one check (a path_prefix, a domain). */
int tend_manifest_route_text_ok(const char *s);

const tend_host *tend_manifest_host(const tend_manifest *m, const char *name);
const tend_service *tend_manifest_service(const tend_manifest *m, const char *name);

/* Direct and implied dependencies of a service (depends_on, plus the provider of
 * its database and OIDC client, plus the auth provider for `auth: true` routes),
 * deduplicated and sorted; the caller frees the array (not the strings). */
int tend_manifest_service_deps(const char ***out, size_t *n, const tend_manifest *m,
			       const tend_service *svc);
/* Service names in dependency order (dependencies first; ties by name). The
 * fleet is acyclic once loaded, so this cannot fail but for memory. */
int tend_manifest_service_order(const char ***out, const tend_manifest *m);
/* Hosts a host depends on through its services' dependencies, sorted; caller frees. */
int tend_manifest_host_deps(const char ***out, size_t *n, const tend_manifest *m,
			    const char *host);

#endif
