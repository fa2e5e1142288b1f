/* Rendering: the fleet model of one revision turned into the files each host
 * must have (proxy routes for Traefik or Caddy, per-host NixOS inputs). A pure
 * function: the same manifest and commit give byte-identical outputs. */
#ifndef TEND_RENDER_H
#define TEND_RENDER_H

#include <stddef.h>
#include <jansson.h>
#include "manifest/manifest.h"
#include "util/buf.h"

typedef enum {
	TEND_OUTPUT_HOST_INPUTS = 1, /* hosts/<host>.json, read by the host's NixOS configuration */
	TEND_OUTPUT_ROUTES           /* the proxy's routes file (Traefik YAML or Caddy JSON) */
} tend_output_kind;

typedef struct {
	char *host;            /* the host the output belongs to */
	tend_output_kind kind;
	char *path;            /* relative name in a render directory: "hosts/db1.json",
				* "routes/traefik.yml", "routes/caddy.json" */
	char *dest;            /* where it goes on the host: absolute (routes: proxy.routes_file),
				* or relative to the exported revision (".tend/hosts/db1.json") */
	int dest_absolute;     /* 1 when dest is an absolute path on the host */
	char *data;            /* the bytes (NUL-terminated for convenience; use len) */
	size_t len;
	unsigned mode;         /* file mode to write it with (0644) */
} tend_render_output;

typedef struct {
	char *commit;          /* the commit rendered, or NULL */
	tend_render_output *outputs;  /* sorted by host, then path */
	size_t n_outputs;
} tend_render_result;

/* Overrides for tests and special deployments; zero/NULL fields keep the fleet's values. */
typedef struct {
	const char *secrets_root;    /* where secrets are decrypted on hosts; default /run/tend/secrets */
	const char *listen_address;  /* proxy bind address (Caddy listen, e.g. 127.0.0.1); NULL: all */
	int http_port;               /* proxy ports; 0: the fleet's proxy.ports */
	int https_port;
	int plain_http;              /* Caddy: serve every route over plain HTTP on http_port
				      * (no TLS, no redirect): for loopback tests */
	const char *caddy_admin;     /* Caddy admin endpoint ("127.0.0.1:2999"); "off" disables;
				      * NULL keeps Caddy's default (localhost:2019) */
} tend_render_options;

#define TEND_RENDER_OPTIONS_INIT { NULL, NULL, 0, 0, 0, NULL }
#define TEND_RENDER_SECRETS_ROOT "/run/tend/secrets"

/* Render every host's outputs. commit (may be NULL) is written into every
 * output's "generated from" header, and is every host inputs' "revision" (null
 * when NULL). Fails with TEND_EINVALID (message naming the service file and
 * field) when the model cannot be rendered. */
int tend_render_fleet(tend_render_result **out, const tend_manifest *m, const char *commit);
int tend_render_fleet_opts(tend_render_result **out, const tend_manifest *m, const char *commit,
			   const tend_render_options *opts);
/* Only the outputs host needs (what its agent writes: its inputs, and the
 * routes file when it runs the proxy), byte-identical to the same outputs of
 * tend_render_fleet_opts; the cost of one host, not of the fleet's outputs.
 * TEND_ENOTFOUND when host is not in the fleet. */
int tend_render_host_opts(tend_render_result **out, const tend_manifest *m, const char *host,
			  const char *commit, const tend_render_options *opts);
/* Every host's inputs (hosts/<host>.json) and no routes file. */
int tend_render_inputs_opts(tend_render_result **out, const tend_manifest *m, const char *commit,
			    const tend_render_options *opts);
/* What host's agent writes, in one pass over the fleet: every host's inputs
 * stamped with inputs_commit (NULL: unstamped, the revision's .tend/) and with
 * commit as their "revision", and the routes file stamped with commit when host
 * runs the proxy. The routes file is byte-identical to tend_render_fleet_opts's
 * with commit; each host inputs file to its one with inputs_commit but for
 * "revision" (the same with inputs_commit == commit). TEND_ENOTFOUND when host
 * is not in the fleet. */
int tend_render_agent_opts(tend_render_result **out, const tend_manifest *m, const char *host,
			   const char *commit, const char *inputs_commit,
			   const tend_render_options *opts);
void tend_render_result_free(tend_render_result *r);

/* One host's outputs: a pointer into r->outputs and their count (0 and NULL when
 * the host has none; outputs of a host are contiguous). */
const tend_render_output *tend_render_result_host(const tend_render_result *r, const char *host,
						  size_t *n);
/* The output of host with relative path, or NULL. */
const tend_render_output *tend_render_result_find(const tend_render_result *r, const char *host,
						  const char *path);
/* Write one host's outputs under dir/<path> (creating directories; each file
 * replaced atomically when it differs, not synced: util/rewrite.h). */
int tend_render_result_write_host(const tend_render_result *r, const char *host, const char *dir);

/* ---- the pieces, exposed for tests and checks ------------------------ */

/* The Traefik dynamic configuration as a JSON document: exactly what the .yml
 * says (the tests validate this JSON form against Traefik's schema too).
 * TEND_EINVALID when the fleet's proxy is not Traefik. */
int tend_render_traefik_doc(json_t **out, const tend_manifest *m, const tend_render_options *opts);
/* What the JSON schema cannot check: every router's service and middlewares
 * exist (in this document, or qualified with "@provider"), every rule parses
 * (matchers with backquoted arguments, &&, ||, !, parentheses). Returns 0, or
 * TEND_EINVALID with every problem, one per line, in the error message. */
int tend_render_traefik_check(const json_t *config);
/* The Caddy JSON configuration (apps.http + apps.tls; see docs/render.md). */
int tend_render_caddy_doc(json_t **out, const tend_manifest *m, const tend_render_options *opts);
/* hosts/<host>.json as a JSON document. */
int tend_render_host_inputs_doc(json_t **out, const tend_manifest *m, const char *host,
				const char *commit, const tend_render_options *opts);

/* Emit a JSON document as block-style YAML: keys sorted, every string
 * double-quoted (so no value changes type), deterministic. Appends to out. */
int tend_render_yaml_emit(tend_buf *out, const json_t *doc);
/* A YAML node as JSON: plain scalars typed (int, float, bool, null), quoted
 * ones strings. NULL on failure (error set; e.g. a non-finite float). */
json_t *tend_render_yaml_to_json(const tend_yaml_node *node);

/* 1 when two renders of an output are the same but for the generated-from
 * stamp (the Traefik header line, the host inputs' top-level "commit" and
 * "revision"): what decides whether a host must rewrite a file after a new
 * commit. */
int tend_render_output_equivalent(const char *a, size_t alen, const char *b, size_t blen);

/* ---- diffs ------------------------------------------------------------- */

/* Unified diff (3 lines of context) of a and b, with ---/+++ headers naming
 * a_name and b_name, appended to out. Sets *changed to whether they differ;
 * nothing is appended when they are equal. */
int tend_render_diff_unified(tend_buf *out, int *changed, const char *a_name, const char *a,
			     size_t alen, const char *b_name, const char *b, size_t blen);

typedef struct {
	unsigned added, changed, removed;
} tend_render_counts;

/* What changed for one host between two renders, by category (the summary line). */
typedef struct {
	char *host;
	int differs;                 /* any output differs */
	tend_render_counts services, databases, oidc_clients, routes, other;
	char *diff;                  /* unified diffs of every differing output */
	size_t diff_len;
	char **paths;                /* differing output paths */
	size_t n_paths;
} tend_render_host_diff;

typedef struct {
	tend_render_host_diff *hosts;  /* every host of either side, sorted by name */
	size_t n_hosts;
	int differs;
} tend_render_diff;

/* Compare two renders (host may be NULL for all hosts). */
int tend_render_diff_compute(tend_render_diff **out, const tend_render_result *from,
			     const tend_render_result *to, const char *host);
/* "gateway: routes +1 ~0 -0; services +0 ~1 -0" (or "gateway: no changes"). */
char *tend_render_host_diff_summary(const tend_render_host_diff *d);
void tend_render_diff_free(tend_render_diff *d);

#endif
