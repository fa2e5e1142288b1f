/* Internal to the render library: the resolved route model shared by the
 * Traefik and Caddy renderers and the host inputs, and small JSON helpers. */
#ifndef TEND_RENDER_INT_H
#define TEND_RENDER_INT_H

#include "render/render.h"

/* One proxied service with everything resolved: upstream URL, TLS resolver. */
typedef struct {
	const tend_service *svc;
	const char *domain;
	const char *prefix;                 /* "/" when the whole domain */
	char *upstream;                     /* full URL (owned) */
	const tend_tls_resolver *resolver;  /* NULL: plain HTTP (the fleet has no resolver) */
	int auth;
} tend_route;

/* Every route of the fleet, sorted by domain, then longer path prefixes first
 * (the order a first-match proxy needs), then service name. */
int tend_render_routes_collect(tend_route **out, size_t *n, const tend_manifest *m);
void tend_render_routes_free(tend_route *routes, size_t n);

/* Options with defaults filled in from the fleet. */
typedef struct {
	const char *secrets_root;
	const char *listen_address;
	int http_port, https_port;
	int plain_http;
	const char *caddy_admin;
	const char *entry_http, *entry_https;   /* Traefik entry points */
} tend_render_eff;
void tend_render_eff_init(tend_render_eff *e, const tend_manifest *m, const tend_render_options *o);

/* "file:line:col: " prefix for a position (static buffer per call site is not
 * thread-safe; these return malloc'd strings the caller frees). */
char *tend_render_pos_str(const tend_pos *pos);

/* JSON building helpers: steal the value, return -1 on allocation failure. */
int tend_json_set(json_t *obj, const char *key, json_t *value);
int tend_json_append(json_t *arr, json_t *value);
json_t *tend_json_str_or_null(const char *s);
json_t *tend_json_str_array(char *const *items, size_t n);

/* A generated-from stamp line (Traefik header, host inputs' top-level "commit"
 * and "revision"): the length of its fixed prefix, 0 for any other line. */
size_t tend_render_is_stamp_line(const char *p, size_t len);
/* Unified diff where stamp lines compare equal to each other (shown as context). */
int tend_render_diff_unified_nostamp(tend_buf *out, int *changed, const char *a_name, const char *a,
				     size_t alen, const char *b_name, const char *b, size_t blen);

/* Serialise with sorted keys and 2-space indentation, plus a final newline. */
int tend_render_json_dump(char **out, size_t *len, const json_t *doc);

/* A streaming JSON writer producing exactly tend_render_json_dump's text
 * without building a document: keys must come in strcmp order (checked: a
 * writer out of order fails rather than write different bytes). Errors are
 * sticky; tend_jw_finish adds the final newline and returns the first error. */
#define TEND_JW_MAX_DEPTH 256
typedef struct {
	const char *key;           /* the last key written in this object */
	size_t n;                  /* members or items written */
	int obj, key_pending;
} tend_jw_level;
typedef struct {
	tend_buf *out;
	unsigned depth;
	int error;
	tend_jw_level lv[TEND_JW_MAX_DEPTH];
} tend_jw;
void tend_jw_init(tend_jw *w, tend_buf *out);
void tend_jw_key(tend_jw *w, const char *key);   /* key must outlive the object */
/* A key of letters, digits and '_' (nothing to escape): a string literal,
 * written without scanning it. */
void tend_jw_key_plain(tend_jw *w, const char *key, size_t klen);
#define TEND_JW_KEY(w, lit) tend_jw_key_plain((w), "" lit "", sizeof(lit) - 1)
void tend_jw_obj(tend_jw *w);
void tend_jw_arr(tend_jw *w);
void tend_jw_end(tend_jw *w);
void tend_jw_str(tend_jw *w, const char *s);     /* NULL: TEND_EINVALID */
void tend_jw_strn(tend_jw *w, const char *s, size_t len);
void tend_jw_str_or_null(tend_jw *w, const char *s);
void tend_jw_int(tend_jw *w, long long v);
void tend_jw_real(tend_jw *w, double v);
void tend_jw_bool(tend_jw *w, int v);
void tend_jw_null(tend_jw *w);
void tend_jw_str_array(tend_jw *w, char *const *items, size_t n);
int tend_jw_finish(tend_jw *w);

/* Pieces of the block YAML emitter (tend_render_yaml_emit): a double-quoted
 * scalar, and a mapping key (quoted when it could read as something else)
 * with its ':'. */
int tend_render_yaml_put_quoted(tend_buf *out, const char *s, size_t len);
int tend_render_yaml_put_key(tend_buf *out, const char *k);

/* A YAML node (service settings) written as tend_render_yaml_to_json's value
 * would be dumped; on failure the error is tend_render_yaml_to_json's. */
int tend_render_yaml_write_json(tend_jw *w, const tend_yaml_node *node);

/* Builders taking the collected routes (render.c collects them once). */
int tend_render_traefik_build(json_t **out, const tend_manifest *m, const tend_route *routes,
			      size_t n, const tend_render_eff *eff);
int tend_render_traefik_yaml(char **out, size_t *len, const json_t *doc, const char *commit);
/* The routes file itself: tend_render_traefik_yaml's bytes for the document
 * tend_render_traefik_build makes, written straight from the routes (any
 * problem: the document path, for its exact message). */
int tend_render_traefik_file(char **out, size_t *len, const tend_manifest *m, const tend_route *routes,
			     size_t n, const tend_render_eff *eff, const char *commit);
int tend_render_caddy_build(json_t **out, const tend_manifest *m, const tend_route *routes,
			    size_t n, const tend_render_eff *eff);

/* Per-host buckets (services run, databases and OIDC clients served), built in
 * one pass so rendering every host stays linear in the fleet's size. */
typedef struct tend_render_index tend_render_index;
int tend_render_index_build(tend_render_index **out, const tend_manifest *m);
void tend_render_index_free(tend_render_index *ix);
/* Index of a host in m->hosts, or -1. */
long tend_render_host_index(const tend_manifest *m, const char *name);
/* hosts/<host>.json appended to out, in its final form: "commit" is the stamp
 * (NULL: unstamped), "revision" the commit the inputs come from (NULL: not known). */
int tend_render_host_inputs_write(tend_buf *out, const tend_manifest *m, const tend_render_index *ix,
				  size_t host_i, const tend_route *routes, size_t n,
				  const char *commit, const char *revision, const tend_render_eff *eff);

#endif

