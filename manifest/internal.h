/* Shared between the manifest's source files (not installed for other areas):
 * the parse context with its field path for messages, positions of values that
 * cross-reference checks point at, the dependency graph and name suggestions. */
#ifndef TEND_MANIFEST_INTERNAL_H
#define TEND_MANIFEST_INTERNAL_H

#include "manifest/manifest.h"
#include "util/arena.h"

/* Where the values that later checks refer to were written. */
typedef struct {
	tend_pos name, host;
	tend_pos db_provider, db_password, db_engine;
	tend_pos proxy_domain, proxy_tls, proxy_auth, proxy_port;
	tend_pos oidc_provider, oidc_secret;
	tend_pos *provides;          /* parallel to svc->provides */
	tend_pos *secret_file;       /* parallel to svc->secrets */
	int parsed;                  /* the document was a mapping (not a YAML error) */
} tend_svc_aux;

typedef struct {
	tend_pos address;
} tend_host_aux;

typedef struct {
	tend_pos proxy_service, auth_service;
	/* fleet.yaml could not be read as a whole (missing, a YAML error, not a
	 * mapping, hosts not a mapping): checks against its hosts would only
	 * repeat that error once per service */
	int partial;
	int proxy_written, auth_written;   /* the key is there, even if invalid */
} tend_fleet_aux;

/* One dependency edge: service `from` needs service `to`. */
typedef struct {
	size_t from, to;
	tend_pos pos;                /* where the need is written */
	const char *why;             /* "depends_on", "database", "oidc", "auth" */
} tend_dep_edge;

typedef struct {
	tend_arena *arena;
	/* dependency graph in CSR form: the edges of service i are
	 * edges[off[i] .. off[i+1]), sorted by target, deduplicated */
	size_t *off;
	tend_dep_edge *edges;
	size_t n_edges;
	size_t *svc_host;            /* host index of each service */
	/* host graph in CSR form: hosts host i needs are host_to[host_off[i] .. host_off[i+1]) */
	size_t *host_off, *host_to;
} tend_manifest_priv;

/* Parse context: the file being read and a dotted path to the current field. */
typedef struct {
	tend_arena *arena;
	tend_diags *diags;
	const char *file;            /* arena copy, used by every tend_pos */
	char path[256];
	size_t plen;
} tend_mctx;

/* schema.c: typed getters. Each reports its own problems (with the field
 * path) and returns 0 when the value is absent or valid, -1 otherwise; an
 * absent optional field leaves *out untouched, so callers preset defaults. */
extern const char *const tend_http_schemes[];   /* {"http", "https", NULL} */
extern const char *const tend_smtp_schemes[];
size_t tend_mctx_push(tend_mctx *c, const char *key);       /* returns the old length */
size_t tend_mctx_push_index(tend_mctx *c, size_t i);
void tend_mctx_pop(tend_mctx *c, size_t old);
tend_pos tend_mctx_pos(const tend_mctx *c, const tend_yaml_node *n);
void tend_mctx_error(tend_mctx *c, const tend_yaml_node *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *tend_mctx_describe(const tend_yaml_node *n);    /* "a mapping", "null", ... */
int tend_mctx_expect_kind(tend_mctx *c, const tend_yaml_node *n, tend_yaml_kind kind);
void tend_mctx_check_keys(tend_mctx *c, const tend_yaml_node *map, const char *const *allowed);
tend_pos tend_mctx_key_pos(const tend_mctx *c, const tend_yaml_node *map, const char *key);
const tend_yaml_node *tend_mctx_field(tend_mctx *c, const tend_yaml_node *map, const char *key,
				      int required);
char *tend_mctx_strdup(tend_mctx *c, const tend_yaml_node *n);
int tend_mctx_string(char **out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		     const char *key, int required);
int tend_mctx_int(int *out, tend_mctx *c, const tend_yaml_node *map, const char *key,
		  int required, long min, long max, const char *what);
int tend_mctx_port(int *out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		   const char *key, int required);
int tend_mctx_bool(int *out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		   const char *key);
int tend_mctx_url(char **out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		  const char *key, int required, const char *const *schemes);
int tend_mctx_duration(uint64_t *out, tend_mctx *c, const tend_yaml_node *map, const char *key);
int tend_mctx_string_list(char ***out, size_t *n, tend_pos **pos, tend_mctx *c,
			  const tend_yaml_node *map, const char *key, int required);
tend_yaml_node *tend_mctx_copy_node(tend_arena *a, const tend_yaml_node *n);
/* The NULL-terminated list of strings joined into the arena (no printf:
 * names are built per service, and formatting was a tenth of a load). */
char *tend_mctx_concat(tend_arena *a, const char *first, ...) __attribute__((sentinel));
/* A sub-mapping (its unknown keys checked against allowed when given); NULL
 * when absent or not a mapping (reported). */
const tend_yaml_node *tend_mctx_enter_map(tend_mctx *c, const tend_yaml_node *map, const char *key,
					  int required, const char *const *allowed);

/* fleet.c and service.c: one document each into the model */
int tend_manifest__parse_fleet(tend_manifest *m, tend_fleet_aux *fa, tend_host_aux **haux,
			       tend_mctx *c, const tend_yaml_node *root);
int tend_manifest__parse_service(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
				 const tend_yaml_node *root, const char *dir_name);

/* values.c: value syntax; each returns 0 when valid */
int tend_parse_duration(uint64_t *out_ms, const char *s);
int tend_parse_mode(unsigned *out, const char *s);
/* schemes: NULL-terminated list such as {"http", "https", NULL} */
int tend_check_url(const char *s, const char *const *schemes);
int tend_check_dns_name(const char *s);
int tend_check_address(const char *s);
int tend_check_cidr(const char *s);
int tend_check_name(const char *s);

/* diag.c: did-you-mean by edit distance over n candidates got by index */
typedef const char *(*tend_name_at)(const void *ctx, size_t i);
const char *tend_suggest(const char *word, const void *ctx, size_t n, tend_name_at at);
const char *tend_suggest_list(const char *word, const char *const *cands);
size_t tend_edit_distance(const char *a, const char *b);

/* validate.c: cross-reference rules and the graph, once everything is parsed */
int tend_manifest__validate(tend_manifest *m, const tend_fleet_aux *fa, const tend_host_aux *haux,
			    const tend_svc_aux *saux, tend_diags *diags,
			    int (*exists)(const char *rel, void *payload), void *payload);

#endif
