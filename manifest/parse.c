/* From the positioned YAML tree to the typed model, one document at a time:
 * types, required fields, unknown keys (with suggestions), value syntax and
 * defaults. Cross-references between documents are checked in validate.c. */
#include "manifest/internal.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const http_schemes[] = { "http", "https", NULL };
static const char *const smtp_schemes[] = { "smtp", "smtps", NULL };

/* ---- context, paths, messages ---------------------------------------- */

static size_t path_push(tend_mctx *c, const char *key)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s",
			 c->plen ? "." : "", key);
	if (n > 0)
		c->plen += (size_t)n < sizeof(c->path) - c->plen ? (size_t)n : sizeof(c->path) - c->plen - 1;
	return old;
}

static size_t path_push_index(tend_mctx *c, size_t i)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", i);
	if (n > 0)
		c->plen += (size_t)n < sizeof(c->path) - c->plen ? (size_t)n : sizeof(c->path) - c->plen - 1;
	return old;
}

static void path_pop(tend_mctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

static tend_pos pos_of(const tend_mctx *c, const tend_yaml_node *n)
{
	tend_pos p = { c->file, n ? n->line : 0, n ? n->col : 0 };
	return p;
}

void tend_mctx_error(tend_mctx *c, const tend_yaml_node *at, const char *fmt, ...)
{
	char msg[512];
	tend_pos p = pos_of(c, at);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->plen)
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p, "%s: %s", c->path, msg);
	else
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p, "%s", msg);
}

static const char *describe(const tend_yaml_node *n)
{
	if (n->kind != TEND_YAML_SCALAR)
		return n->kind == TEND_YAML_MAP ? "a mapping" : "a sequence";
	if (tend_yaml_is_null(n))
		return "null";
	return n->plain ? "a plain scalar" : "a quoted string";
}

static int expect_kind(tend_mctx *c, const tend_yaml_node *n, tend_yaml_kind kind)
{
	if (n->kind == kind)
		return 0;
	tend_mctx_error(c, n, "expected a %s, got %s", tend_yaml_kind_name(kind), describe(n));
	return -1;
}

/* Report every key of map not in allowed, suggesting the closest allowed one. */
static void check_keys(tend_mctx *c, const tend_yaml_node *map, const char *const *allowed)
{
	size_t i, j;

	for (i = 0; i < map->count; i++) {
		const char *k = map->keys[i]->value;
		const char *hint;
		for (j = 0; allowed[j]; j++)
			if (!strcmp(k, allowed[j]))
				break;
		if (allowed[j])
			continue;
		if ((hint = tend_suggest_list(k, allowed)))
			tend_mctx_error(c, map->keys[i], "unknown key '%s' (did you mean '%s'?)", k, hint);
		else
			tend_mctx_error(c, map->keys[i], "unknown key '%s'", k);
	}
}

/* Where key itself is written (sections point at their key, not their first child). */
static tend_pos key_pos(const tend_mctx *c, const tend_yaml_node *map, const char *key)
{
	size_t i;

	for (i = 0; i < map->count; i++)
		if (!strcmp(map->keys[i]->value, key))
			return pos_of(c, map->keys[i]);
	return pos_of(c, map);
}

/* The value of key, or NULL when absent or null (reported when required). */
static const tend_yaml_node *field(tend_mctx *c, const tend_yaml_node *map, const char *key,
				   int required)
{
	const tend_yaml_node *v = tend_yaml_map_get(map, key);

	if (v && v->kind == TEND_YAML_SCALAR && tend_yaml_is_null(v))
		v = NULL;
	if (!v && required)
		tend_mctx_error(c, map, "missing required field '%s'", key);
	return v;
}

static char *sdup(tend_mctx *c, const tend_yaml_node *n)
{
	return tend_arena_strndup(c->arena, n->value, n->len);
}

/* A string scalar; also checks for embedded NULs, which no field may hold. */
static int get_string(char **out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		      const char *key, int required)
{
	const tend_yaml_node *v = field(c, map, key, required);
	size_t old;
	int error = -1;

	if (!v)
		return required ? -1 : 0;
	old = path_push(c, key);
	if (expect_kind(c, v, TEND_YAML_SCALAR) < 0)
		goto out;
	if (strlen(v->value) != v->len) {
		tend_mctx_error(c, v, "contains a NUL character");
		goto out;
	}
	if (v->len == 0) {
		tend_mctx_error(c, v, "must not be empty");
		goto out;
	}
	*out = sdup(c, v);
	if (pos)
		*pos = pos_of(c, v);
	error = 0;
out:
	path_pop(c, old);
	return error;
}

static int scalar_int(long *out, const tend_yaml_node *v)
{
	char *end;
	long x;

	if (v->kind != TEND_YAML_SCALAR || !v->plain || v->len == 0 || v->len > 18)
		return -1;
	if (v->value[0] != '-' && (v->value[0] < '0' || v->value[0] > '9'))
		return -1;
	x = strtol(v->value, &end, 10);
	if (*end)
		return -1;
	*out = x;
	return 0;
}

static int get_int(int *out, tend_mctx *c, const tend_yaml_node *map, const char *key,
		   int required, long min, long max, const char *what)
{
	const tend_yaml_node *v = field(c, map, key, required);
	size_t old;
	long x;
	int error = -1;

	if (!v)
		return required ? -1 : 0;
	old = path_push(c, key);
	if (v->kind != TEND_YAML_SCALAR) {
		expect_kind(c, v, TEND_YAML_SCALAR);
		goto out;
	}
	if (scalar_int(&x, v) < 0) {
		tend_mctx_error(c, v, "expected %s, got '%s'", what, v->value);
		goto out;
	}
	if (x < min || x > max) {
		tend_mctx_error(c, v, "%ld is out of range (%ld-%ld)", x, min, max);
		goto out;
	}
	*out = (int)x;
	error = 0;
out:
	path_pop(c, old);
	return error;
}

static int get_port(int *out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		    const char *key, int required)
{
	const tend_yaml_node *v = tend_yaml_map_get(map, key);
	if (pos && v)
		*pos = pos_of(c, v);
	return get_int(out, c, map, key, required, 1, 65535, "a port number (1-65535)");
}

static int get_bool(int *out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		    const char *key)
{
	const tend_yaml_node *v = field(c, map, key, 0);
	size_t old;
	int error = -1;

	if (!v)
		return 0;
	old = path_push(c, key);
	if (v->kind == TEND_YAML_SCALAR && v->plain &&
	    (!strcmp(v->value, "true") || !strcmp(v->value, "True") || !strcmp(v->value, "TRUE"))) {
		*out = 1;
		error = 0;
	} else if (v->kind == TEND_YAML_SCALAR && v->plain &&
		   (!strcmp(v->value, "false") || !strcmp(v->value, "False") ||
		    !strcmp(v->value, "FALSE"))) {
		*out = 0;
		error = 0;
	} else if (v->kind != TEND_YAML_SCALAR) {
		expect_kind(c, v, TEND_YAML_SCALAR);
	} else {
		tend_mctx_error(c, v, "expected true or false, got '%s'", v->value);
	}
	if (pos)
		*pos = pos_of(c, v);
	path_pop(c, old);
	return error;
}

static int get_url(char **out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		   const char *key, int required, const char *const *schemes)
{
	const tend_yaml_node *v;
	size_t old;

	if (get_string(out, pos, c, map, key, required) < 0)
		return -1;
	if (!*out || tend_check_url(*out, schemes) == 0)
		return 0;
	v = tend_yaml_map_get(map, key);
	old = path_push(c, key);
	tend_mctx_error(c, v, "'%s' is not a valid %s:// URL", *out, schemes[0]);
	path_pop(c, old);
	*out = NULL;
	return -1;
}

static int get_duration(uint64_t *out, tend_mctx *c, const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *v = field(c, map, key, 0);
	size_t old;
	int error = -1;

	if (!v)
		return 0;
	old = path_push(c, key);
	if (expect_kind(c, v, TEND_YAML_SCALAR) < 0)
		goto out;
	if (tend_parse_duration(out, v->value) < 0) {
		tend_mctx_error(c, v, "invalid duration '%s' (use a number with ms, s, m or h, "
				"such as 500ms, 2s or 1m30s)", v->value);
		goto out;
	}
	error = 0;
out:
	path_pop(c, old);
	return error;
}

/* A sequence of non-empty strings (a single string is not accepted: the
 * format is explicit so that `depends_on: a, b` is not silently one name). */
static int get_string_list(char ***out, size_t *n, tend_pos **pos, tend_mctx *c,
			   const tend_yaml_node *map, const char *key, int required)
{
	const tend_yaml_node *v = field(c, map, key, required);
	size_t old, i, k = 0;
	int error = -1;

	*out = NULL;
	*n = 0;
	if (pos)
		*pos = NULL;
	if (!v)
		return required ? -1 : 0;
	old = path_push(c, key);
	if (expect_kind(c, v, TEND_YAML_SEQ) < 0)
		goto out;
	if (required && v->count == 0) {
		tend_mctx_error(c, v, "must not be empty");
		goto out;
	}
	*out = tend_arena_alloc(c->arena, (v->count + 1) * sizeof(char *));
	if (pos)
		*pos = tend_arena_alloc(c->arena, (v->count + 1) * sizeof(tend_pos));
	if (!*out || (pos && !*pos))
		goto out;
	error = 0;
	for (i = 0; i < v->count; i++) {
		const tend_yaml_node *it = v->items[i];
		size_t o2 = path_push_index(c, i);
		if (it->kind != TEND_YAML_SCALAR || tend_yaml_is_null(it)) {
			tend_mctx_error(c, it, "expected a string, got %s", describe(it));
			error = -1;
		} else if (strlen(it->value) != it->len || it->len == 0) {
			tend_mctx_error(c, it, "expected a non-empty string");
			error = -1;
		} else {
			if (pos)
				(*pos)[k] = pos_of(c, it);
			(*out)[k++] = sdup(c, it);
		}
		path_pop(c, o2);
	}
	*n = k;
out:
	path_pop(c, old);
	return error;
}

/* Deep copy of a YAML subtree into the manifest's arena (the documents are
 * freed once parsed; aliases become copies, bounded by the parser's caps). */
static tend_yaml_node *copy_node(tend_arena *a, const tend_yaml_node *n)
{
	tend_yaml_node *c = tend_arena_alloc(a, sizeof(*c));
	size_t i;

	if (!c)
		return NULL;
	*c = *n;
	if (n->value && !(c->value = tend_arena_strndup(a, n->value, n->len)))
		return NULL;
	if (n->tag && !(c->tag = tend_arena_strdup(a, n->tag)))
		return NULL;
	c->items = c->keys = NULL;
	if (n->count) {
		if (!(c->items = tend_arena_alloc(a, n->count * sizeof(*c->items))))
			return NULL;
		if (n->kind == TEND_YAML_MAP &&
		    !(c->keys = tend_arena_alloc(a, n->count * sizeof(*c->keys))))
			return NULL;
		for (i = 0; i < n->count; i++) {
			if (!(c->items[i] = copy_node(a, n->items[i])))
				return NULL;
			if (n->kind == TEND_YAML_MAP && !(c->keys[i] = copy_node(a, n->keys[i])))
				return NULL;
		}
	}
	return c;
}

/* Enter an optional sub-mapping: NULL when absent, or when not a mapping (reported). */
static const tend_yaml_node *enter_map(tend_mctx *c, const tend_yaml_node *map, const char *key,
				       int required, const char *const *allowed)
{
	const tend_yaml_node *v = field(c, map, key, required);
	size_t old;

	if (!v)
		return NULL;
	old = path_push(c, key);
	if (expect_kind(c, v, TEND_YAML_MAP) < 0)
		v = NULL;
	else if (allowed)
		check_keys(c, v, allowed);
	path_pop(c, old);
	return v;
}

/* ---- fleet.yaml --------------------------------------------------------- */

static const char *const fleet_keys[] = { "fleet", "domain", "network", "agent_port", "hosts",
					  "proxy", "auth", "alerts", NULL };
static const char *const network_keys[] = { "internal_cidrs", NULL };
static const char *const host_keys[] = { "address", "role", "flake_attr", "age_recipient",
					 "agent_port", NULL };
static const char *const proxy_keys[] = { "service", "kind", "routes_file", "entrypoints", "ports",
					  "redirect_http", "tls", NULL };
static const char *const pair_keys[] = { "http", "https", NULL };
static const char *const resolver_keys[] = { "kind", "suffixes", "ca_url", "email", NULL };
static const char *const auth_keys[] = { "service", "forward_auth_url", "response_headers", NULL };
static const char *const alerts_keys[] = { "email", NULL };
static const char *const email_keys[] = { "to", "from", "smtp_url", NULL };

static void parse_host(tend_host *h, tend_host_aux *ha, tend_mctx *c, const tend_yaml_node *key,
		       const tend_yaml_node *v, int fleet_port)
{
	size_t old = path_push(c, key->value);

	h->name = sdup(c, key);
	h->pos = pos_of(c, key);
	h->agent_port = fleet_port;
	if (tend_check_name(h->name) < 0)
		tend_mctx_error(c, key, "invalid host name (use letters, digits, '-', '_', '.')");
	if (expect_kind(c, v, TEND_YAML_MAP) < 0)
		goto out;
	check_keys(c, v, host_keys);
	if (get_string(&h->address, &ha->address, c, v, "address", 1) == 0 &&
	    tend_check_address(h->address) < 0) {
		size_t o2 = path_push(c, "address");
		tend_mctx_error(c, tend_yaml_map_get(v, "address"),
				"'%s' is neither an IP address nor a DNS name", h->address);
		path_pop(c, o2);
	}
	get_string(&h->role, NULL, c, v, "role", 0);
	get_string(&h->flake_attr, NULL, c, v, "flake_attr", 0);
	if (get_string(&h->age_recipient, NULL, c, v, "age_recipient", 0) == 0 && h->age_recipient &&
	    strncmp(h->age_recipient, "age1", 4) && strncmp(h->age_recipient, "ssh-ed25519 ", 12) &&
	    strncmp(h->age_recipient, "ssh-rsa ", 8)) {
		size_t o2 = path_push(c, "age_recipient");
		tend_mctx_error(c, tend_yaml_map_get(v, "age_recipient"),
				"expected an age recipient (age1...) or an SSH public key");
		path_pop(c, o2);
	}
	get_port(&h->agent_port, NULL, c, v, "agent_port", 0);
out:
	if (!h->flake_attr)
		h->flake_attr = h->name;
	path_pop(c, old);
}

static void parse_proxy(tend_manifest *m, tend_fleet_aux *fa, tend_mctx *c,
			const tend_yaml_node *root)
{
	const tend_yaml_node *p = enter_map(c, root, "proxy", 0, proxy_keys), *sub, *tls;
	tend_proxy_config *px;
	char *kind = NULL;
	size_t old, i;

	if (!p || !(px = tend_arena_alloc(c->arena, sizeof(*px))))
		return;
	m->proxy = px;
	px->pos = key_pos(c, root, "proxy");
	px->entry_http = "web";
	px->entry_https = "websecure";
	px->http_port = 80;
	px->https_port = 443;
	px->redirect_http = 1;
	px->kind = TEND_PROXY_TRAEFIK;
	old = path_push(c, "proxy");
	get_string(&px->service, &fa->proxy_service, c, p, "service", 1);
	if (get_string(&kind, NULL, c, p, "kind", 1) == 0) {
		if (!strcmp(kind, "traefik"))
			px->kind = TEND_PROXY_TRAEFIK;
		else if (!strcmp(kind, "caddy"))
			px->kind = TEND_PROXY_CADDY;
		else {
			size_t o2 = path_push(c, "kind");
			tend_mctx_error(c, tend_yaml_map_get(p, "kind"),
					"unknown proxy kind '%s' (expected traefik or caddy)", kind);
			path_pop(c, o2);
		}
	}
	if (get_string(&px->routes_file, NULL, c, p, "routes_file", 1) == 0 &&
	    px->routes_file[0] != '/') {
		size_t o2 = path_push(c, "routes_file");
		tend_mctx_error(c, tend_yaml_map_get(p, "routes_file"),
				"must be an absolute path on the proxy's host");
		path_pop(c, o2);
	}
	if ((sub = enter_map(c, p, "entrypoints", 0, pair_keys))) {
		size_t o2 = path_push(c, "entrypoints");
		get_string(&px->entry_http, NULL, c, sub, "http", 0);
		get_string(&px->entry_https, NULL, c, sub, "https", 0);
		path_pop(c, o2);
	}
	if ((sub = enter_map(c, p, "ports", 0, pair_keys))) {
		size_t o2 = path_push(c, "ports");
		get_port(&px->http_port, NULL, c, sub, "http", 0);
		get_port(&px->https_port, NULL, c, sub, "https", 0);
		path_pop(c, o2);
	}
	get_bool(&px->redirect_http, NULL, c, p, "redirect_http");
	if ((tls = enter_map(c, p, "tls", 0, NULL)) && tls->count) {
		size_t o2 = path_push(c, "tls");
		px->resolvers = tend_arena_alloc(c->arena, tls->count * sizeof(*px->resolvers));
		for (i = 0; px->resolvers && i < tls->count; i++) {
			tend_tls_resolver *r = &px->resolvers[px->n_resolvers++];
			const tend_yaml_node *rv = tls->items[i];
			char *rk = NULL;
			size_t o3 = path_push(c, tls->keys[i]->value);
			r->name = sdup(c, tls->keys[i]);
			r->pos = pos_of(c, tls->keys[i]);
			if (expect_kind(c, rv, TEND_YAML_MAP) < 0) {
				path_pop(c, o3);
				continue;
			}
			check_keys(c, rv, resolver_keys);
			if (get_string(&rk, NULL, c, rv, "kind", 1) == 0) {
				if (!strcmp(rk, "internal"))
					r->kind = TEND_TLS_INTERNAL;
				else if (!strcmp(rk, "acme"))
					r->kind = TEND_TLS_ACME;
				else {
					size_t o4 = path_push(c, "kind");
					tend_mctx_error(c, tend_yaml_map_get(rv, "kind"),
							"unknown resolver kind '%s' (expected internal or acme)", rk);
					path_pop(c, o4);
				}
			}
			get_string_list(&r->suffixes, &r->n_suffixes, NULL, c, rv, "suffixes", 0);
			if (r->n_suffixes && r->kind == TEND_TLS_ACME) {
				size_t o4 = path_push(c, "suffixes");
				tend_mctx_error(c, tend_yaml_map_get(rv, "suffixes"),
						"only internal resolvers take suffixes (an acme resolver serves every other domain)");
				path_pop(c, o4);
			}
			get_url(&r->ca_url, NULL, c, rv, "ca_url", 0, http_schemes);
			get_string(&r->email, NULL, c, rv, "email", 0);
			path_pop(c, o3);
		}
		path_pop(c, o2);
	}
	path_pop(c, old);
}

static void parse_auth_alerts(tend_manifest *m, tend_fleet_aux *fa, tend_mctx *c,
			      const tend_yaml_node *root)
{
	const tend_yaml_node *a = enter_map(c, root, "auth", 0, auth_keys), *e;
	size_t old;

	if (a && (m->auth = tend_arena_alloc(c->arena, sizeof(*m->auth)))) {
		m->auth->pos = key_pos(c, root, "auth");
		old = path_push(c, "auth");
		get_string(&m->auth->service, &fa->auth_service, c, a, "service", 1);
		get_url(&m->auth->forward_auth_url, NULL, c, a, "forward_auth_url", 1, http_schemes);
		get_string_list(&m->auth->response_headers, &m->auth->n_response_headers, NULL, c, a,
				"response_headers", 0);
		path_pop(c, old);
	}
	a = enter_map(c, root, "alerts", 0, alerts_keys);
	if (a && (m->alerts = tend_arena_alloc(c->arena, sizeof(*m->alerts)))) {
		m->alerts->pos = key_pos(c, root, "alerts");
		old = path_push(c, "alerts");
		if ((e = enter_map(c, a, "email", 1, email_keys))) {
			size_t o2 = path_push(c, "email");
			get_string_list(&m->alerts->to, &m->alerts->n_to, NULL, c, e, "to", 1);
			get_string(&m->alerts->from, NULL, c, e, "from", 0);
			get_url(&m->alerts->smtp_url, NULL, c, e, "smtp_url", 0, smtp_schemes);
			path_pop(c, o2);
		}
		path_pop(c, old);
	}
}

int tend_manifest__parse_fleet(tend_manifest *m, tend_fleet_aux *fa, tend_host_aux **haux,
			       tend_mctx *c, const tend_yaml_node *root)
{
	const tend_yaml_node *hosts, *net, *v;
	size_t i;

	m->agent_port = 8470;
	*haux = NULL;
	if (!root) {
		tend_pos p = { c->file, 0, 0 };
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p, "empty document (expected a mapping with 'fleet', 'domain' and 'hosts')");
		return 0;
	}
	if (expect_kind(c, root, TEND_YAML_MAP) < 0)
		return 0;
	check_keys(c, root, fleet_keys);
	if (get_string(&m->fleet, NULL, c, root, "fleet", 1) == 0 && tend_check_name(m->fleet) < 0) {
		size_t old = path_push(c, "fleet");
		tend_mctx_error(c, tend_yaml_map_get(root, "fleet"),
				"invalid fleet name '%s' (use letters, digits, '-', '_', '.')", m->fleet);
		path_pop(c, old);
	}
	if (get_string(&m->domain, NULL, c, root, "domain", 1) == 0 &&
	    tend_check_dns_name(m->domain) < 0) {
		size_t old = path_push(c, "domain");
		tend_mctx_error(c, tend_yaml_map_get(root, "domain"), "'%s' is not a DNS name", m->domain);
		path_pop(c, old);
	}
	if ((net = enter_map(c, root, "network", 0, network_keys))) {
		size_t old = path_push(c, "network");
		tend_pos *pp = NULL;
		if (get_string_list(&m->internal_cidrs, &m->n_internal_cidrs, &pp, c, net,
				    "internal_cidrs", 0) == 0) {
			const tend_yaml_node *list = tend_yaml_map_get(net, "internal_cidrs");
			for (i = 0; i < m->n_internal_cidrs; i++) {
				if (tend_check_cidr(m->internal_cidrs[i]) == 0)
					continue;
				size_t o2 = path_push(c, "internal_cidrs");
				size_t o3 = path_push_index(c, i);
				tend_mctx_error(c, list->items[i], "'%s' is not a CIDR such as 10.0.0.0/24",
						m->internal_cidrs[i]);
				path_pop(c, o3);
				path_pop(c, o2);
			}
		}
		path_pop(c, old);
	}
	get_port(&m->agent_port, NULL, c, root, "agent_port", 0);
	hosts = field(c, root, "hosts", 1);
	if (hosts) {
		size_t old = path_push(c, "hosts");
		if (expect_kind(c, hosts, TEND_YAML_MAP) == 0 && hosts->count) {
			m->hosts = tend_arena_alloc(c->arena, hosts->count * sizeof(*m->hosts));
			*haux = tend_arena_alloc(c->arena, hosts->count * sizeof(**haux));
			if (!m->hosts || !*haux)
				return TEND_ERROR;
			for (i = 0; i < hosts->count; i++)
				parse_host(&m->hosts[i], &(*haux)[i], c, hosts->keys[i], hosts->items[i],
					   m->agent_port);
			m->n_hosts = hosts->count;
		} else if (hosts->kind == TEND_YAML_MAP) {
			tend_mctx_error(c, hosts, "a fleet needs at least one host");
		}
		path_pop(c, old);
	}
	parse_proxy(m, fa, c, root);
	parse_auth_alerts(m, fa, c, root);
	(void)v;
	return 0;
}

/* ---- services/<name>/service.yaml ---------------------------------------- */

static const char *const service_keys[] = { "name", "host", "depends_on", "provides", "database",
					    "proxy", "oidc", "health", "secrets", "settings", NULL };
static const char *const database_keys[] = { "engine", "name", "user", "password_secret",
					     "provider", "extensions", NULL };
static const char *const route_keys[] = { "domain", "path_prefix", "port", "upstream", "tls",
					  "auth", "middlewares", NULL };
static const char *const oidc_keys[] = { "provider", "client_id", "redirect_uris",
					 "client_secret", NULL };
static const char *const health_keys[] = { "startup", "liveness", NULL };
static const char *const probe_keys[] = { "http", "tcp", "command", "interval", "timeout",
					  "retries", "grace", NULL };
static const char *const http_probe_keys[] = { "url", "status", "body", NULL };
static const char *const tcp_probe_keys[] = { "host", "port", NULL };
static const char *const secret_keys[] = { "name", "file", "key", "owner", "group", "mode",
					   "restart", NULL };
static const char *const capabilities[] = { "postgresql", "mysql", "oidc", "forward-auth", NULL };
static const char *const engines[] = { "postgresql", "mysql", NULL };

static void parse_database(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
			   const tend_yaml_node *root)
{
	const tend_yaml_node *d = enter_map(c, root, "database", 0, database_keys);
	tend_database_req *db;
	size_t old;

	if (!d || !(db = tend_arena_alloc(c->arena, sizeof(*db))))
		return;
	svc->database = db;
	db->pos = key_pos(c, root, "database");
	old = path_push(c, "database");
	if (get_string(&db->engine, &aux->db_engine, c, d, "engine", 1) == 0 &&
	    strcmp(db->engine, "postgresql") && strcmp(db->engine, "mysql")) {
		const char *hint = tend_suggest_list(db->engine, engines);
		size_t o2 = path_push(c, "engine");
		tend_mctx_error(c, tend_yaml_map_get(d, "engine"),
				"unknown engine '%s'%s%s%s (expected postgresql or mysql)", db->engine,
				hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
		path_pop(c, o2);
		db->engine = NULL;
	}
	get_string(&db->name, NULL, c, d, "name", 1);
	get_string(&db->user, NULL, c, d, "user", 1);
	get_string(&db->password_secret, &aux->db_password, c, d, "password_secret", 0);
	get_string(&db->provider, &aux->db_provider, c, d, "provider", 0);
	get_string_list(&db->extensions, &db->n_extensions, NULL, c, d, "extensions", 0);
	path_pop(c, old);
}

static void parse_route(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
			const tend_yaml_node *root)
{
	const tend_yaml_node *r = enter_map(c, root, "proxy", 0, route_keys);
	tend_proxy_req *px;
	size_t old;

	if (!r || !(px = tend_arena_alloc(c->arena, sizeof(*px))))
		return;
	svc->proxy = px;
	px->pos = key_pos(c, root, "proxy");
	old = path_push(c, "proxy");
	if (get_string(&px->domain, &aux->proxy_domain, c, r, "domain", 1) == 0 &&
	    tend_check_dns_name(px->domain) < 0) {
		size_t o2 = path_push(c, "domain");
		tend_mctx_error(c, tend_yaml_map_get(r, "domain"), "'%s' is not a DNS name", px->domain);
		path_pop(c, o2);
		px->domain = NULL;
	}
	if (get_string(&px->path_prefix, NULL, c, r, "path_prefix", 0) == 0 && px->path_prefix &&
	    px->path_prefix[0] != '/') {
		size_t o2 = path_push(c, "path_prefix");
		tend_mctx_error(c, tend_yaml_map_get(r, "path_prefix"), "must start with '/'");
		path_pop(c, o2);
	}
	if (!px->path_prefix)
		px->path_prefix = "/";
	get_port(&px->port, &aux->proxy_port, c, r, "port", 0);
	get_url(&px->upstream, NULL, c, r, "upstream", 0, http_schemes);
	if (tend_yaml_map_get(r, "port") && tend_yaml_map_get(r, "upstream"))
		tend_mctx_error(c, tend_yaml_map_get(r, "upstream"),
				"give either 'port' or 'upstream', not both");
	else if (!field(c, r, "port", 0) && !field(c, r, "upstream", 0))
		tend_mctx_error(c, r, "missing required field 'port' (or 'upstream')");
	get_string(&px->tls, &aux->proxy_tls, c, r, "tls", 0);
	get_bool(&px->auth, &aux->proxy_auth, c, r, "auth");
	get_string_list(&px->middlewares, &px->n_middlewares, NULL, c, r, "middlewares", 0);
	path_pop(c, old);
}

static void parse_oidc(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
		       const tend_yaml_node *root)
{
	const tend_yaml_node *o = enter_map(c, root, "oidc", 0, oidc_keys), *list;
	tend_oidc_req *oi;
	size_t old, i;

	if (!o || !(oi = tend_arena_alloc(c->arena, sizeof(*oi))))
		return;
	svc->oidc = oi;
	oi->pos = key_pos(c, root, "oidc");
	old = path_push(c, "oidc");
	get_string(&oi->provider, &aux->oidc_provider, c, o, "provider", 0);
	get_string(&oi->client_id, NULL, c, o, "client_id", 1);
	if (get_string_list(&oi->redirect_uris, &oi->n_redirect_uris, NULL, c, o, "redirect_uris", 1) == 0) {
		list = tend_yaml_map_get(o, "redirect_uris");
		for (i = 0; i < oi->n_redirect_uris; i++) {
			if (tend_check_url(oi->redirect_uris[i], http_schemes) == 0)
				continue;
			size_t o2 = path_push(c, "redirect_uris");
			size_t o3 = path_push_index(c, i);
			tend_mctx_error(c, list->items[i], "'%s' is not a valid http:// URL",
					oi->redirect_uris[i]);
			path_pop(c, o3);
			path_pop(c, o2);
		}
	}
	get_string(&oi->client_secret, &aux->oidc_secret, c, o, "client_secret", 0);
	path_pop(c, old);
}

static void parse_probe(tend_probe *pr, tend_mctx *c, const tend_yaml_node *v)
{
	const tend_yaml_node *kind_node = NULL, *sub;
	const char *kinds[] = { "http", "tcp", "command" };
	int n_kinds = 0, i, retries = 3;

	pr->pos = pos_of(c, v);
	pr->interval_ms = 2000;
	pr->timeout_ms = 5000;
	pr->grace_ms = 0;
	pr->retries = 3;
	pr->expect_status = 200;
	if (expect_kind(c, v, TEND_YAML_MAP) < 0)
		return;
	check_keys(c, v, probe_keys);
	for (i = 0; i < 3; i++) {
		if (tend_yaml_map_get(v, kinds[i])) {
			n_kinds++;
			if (!kind_node) {
				kind_node = tend_yaml_map_get(v, kinds[i]);
				pr->kind = (tend_probe_kind)(i + 1);
			}
		}
	}
	if (n_kinds != 1) {
		tend_mctx_error(c, v, n_kinds ? "a probe has exactly one of 'http', 'tcp' or 'command'"
					      : "missing required field 'http', 'tcp' or 'command'");
		return;
	}
	if (pr->kind == TEND_PROBE_HTTP) {
		if ((sub = enter_map(c, v, "http", 1, http_probe_keys))) {
			size_t old = path_push(c, "http");
			get_url(&pr->url, NULL, c, sub, "url", 1, http_schemes);
			get_int(&pr->expect_status, c, sub, "status", 0, 100, 599, "an HTTP status");
			get_string(&pr->body_match, NULL, c, sub, "body", 0);
			path_pop(c, old);
		}
	} else if (pr->kind == TEND_PROBE_TCP) {
		if ((sub = enter_map(c, v, "tcp", 1, tcp_probe_keys))) {
			size_t old = path_push(c, "tcp");
			if (get_string(&pr->host, NULL, c, sub, "host", 1) == 0 &&
			    tend_check_address(pr->host) < 0) {
				size_t o2 = path_push(c, "host");
				tend_mctx_error(c, tend_yaml_map_get(sub, "host"),
						"'%s' is neither an IP address nor a DNS name", pr->host);
				path_pop(c, o2);
			}
			get_port(&pr->port, NULL, c, sub, "port", 1);
			path_pop(c, old);
		}
	} else {
		char **argv = NULL;
		size_t argc = 0;
		if (get_string_list(&argv, &argc, NULL, c, v, "command", 1) == 0) {
			pr->argv = argv;
			pr->argc = argc;
			argv[argc] = NULL;
		}
	}
	get_duration(&pr->interval_ms, c, v, "interval");
	get_duration(&pr->timeout_ms, c, v, "timeout");
	get_duration(&pr->grace_ms, c, v, "grace");
	if (get_int(&retries, c, v, "retries", 0, 1, 10000, "a number of tries") == 0)
		pr->retries = (unsigned)retries;
}

static void parse_health(tend_service *svc, tend_mctx *c, const tend_yaml_node *root)
{
	const tend_yaml_node *h = enter_map(c, root, "health", 0, health_keys), *lists[2];
	const char *names[2] = { "startup", "liveness" };
	size_t total = 0, old, i, p;

	if (!h)
		return;
	old = path_push(c, "health");
	for (p = 0; p < 2; p++) {
		lists[p] = field(c, h, names[p], 0);
		if (lists[p]) {
			size_t o2 = path_push(c, names[p]);
			if (expect_kind(c, lists[p], TEND_YAML_SEQ) < 0)
				lists[p] = NULL;
			else
				total += lists[p]->count;
			path_pop(c, o2);
		}
	}
	if (total && (svc->probes = tend_arena_alloc(c->arena, total * sizeof(*svc->probes)))) {
		for (p = 0; p < 2; p++) {
			size_t o2;
			if (!lists[p])
				continue;
			o2 = path_push(c, names[p]);
			for (i = 0; i < lists[p]->count; i++) {
				tend_probe *pr = &svc->probes[svc->n_probes++];
				size_t o3 = path_push_index(c, i);
				pr->phase = p == 0 ? TEND_PROBE_STARTUP : TEND_PROBE_LIVENESS;
				parse_probe(pr, c, lists[p]->items[i]);
				path_pop(c, o3);
			}
			path_pop(c, o2);
		}
	}
	path_pop(c, old);
}

static int secret_name_ok(const char *s)
{
	const char *p;

	if (!strcmp(s, ".") || !strcmp(s, "..") || strlen(s) > 128)
		return 0;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

static int repo_path_ok(const char *s)
{
	const char *p = s;

	if (s[0] == '/')
		return 0;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static void parse_secret(tend_secret_decl *s, tend_pos *file_pos, tend_mctx *c,
			 const tend_yaml_node *v)
{
	const tend_yaml_node *mode;

	s->pos = pos_of(c, v);
	s->owner = "root";
	s->group = "root";
	s->mode = 0400;
	if (expect_kind(c, v, TEND_YAML_MAP) < 0)
		return;
	check_keys(c, v, secret_keys);
	if (get_string(&s->name, NULL, c, v, "name", 1) == 0 && !secret_name_ok(s->name)) {
		size_t o = path_push(c, "name");
		tend_mctx_error(c, tend_yaml_map_get(v, "name"),
				"invalid secret name '%s' (a file name of letters, digits, '.', '_', '-')",
				s->name);
		path_pop(c, o);
	}
	if (get_string(&s->file, file_pos, c, v, "file", 1) == 0 && !repo_path_ok(s->file)) {
		size_t o = path_push(c, "file");
		tend_mctx_error(c, tend_yaml_map_get(v, "file"),
				"'%s' must be a path inside the repository (relative, without '..')", s->file);
		path_pop(c, o);
		s->file = NULL;
	}
	if (get_string(&s->key, NULL, c, v, "key", 0) == 0 && s->key && s->file &&
	    has_suffix(s->file, ".age")) {
		size_t o = path_push(c, "key");
		tend_mctx_error(c, tend_yaml_map_get(v, "key"),
				"only sops files have keys; '%s' is an age file (decrypted whole)", s->file);
		path_pop(c, o);
	}
	get_string(&s->owner, NULL, c, v, "owner", 0);
	get_string(&s->group, NULL, c, v, "group", 0);
	if ((mode = field(c, v, "mode", 0))) {
		size_t o = path_push(c, "mode");
		if (expect_kind(c, mode, TEND_YAML_SCALAR) == 0 && tend_parse_mode(&s->mode, mode->value) < 0)
			tend_mctx_error(c, mode, "invalid mode '%s' (an octal file mode such as \"0400\", at most 0777)",
					mode->value);
		path_pop(c, o);
	}
	get_string_list(&s->restart, &s->n_restart, NULL, c, v, "restart", 0);
}

static void parse_secrets(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
			  const tend_yaml_node *root)
{
	const tend_yaml_node *list = field(c, root, "secrets", 0);
	size_t old, i, j;

	if (!list)
		return;
	old = path_push(c, "secrets");
	if (expect_kind(c, list, TEND_YAML_SEQ) == 0 && list->count) {
		svc->secrets = tend_arena_alloc(c->arena, list->count * sizeof(*svc->secrets));
		aux->secret_file = tend_arena_alloc(c->arena, list->count * sizeof(tend_pos));
		for (i = 0; svc->secrets && aux->secret_file && i < list->count; i++) {
			size_t o2 = path_push_index(c, i);
			parse_secret(&svc->secrets[i], &aux->secret_file[i], c, list->items[i]);
			for (j = 0; j < i && svc->secrets[i].name; j++) {
				if (svc->secrets[j].name && !strcmp(svc->secrets[j].name, svc->secrets[i].name)) {
					size_t o3 = path_push(c, "name");
					tend_mctx_error(c, tend_yaml_map_get(list->items[i], "name"),
							"secret '%s' is already declared at line %u",
							svc->secrets[i].name, svc->secrets[j].pos.line);
					path_pop(c, o3);
					break;
				}
			}
			path_pop(c, o2);
		}
		svc->n_secrets = svc->secrets ? list->count : 0;
	}
	path_pop(c, old);
}

int tend_manifest__parse_service(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
				 const tend_yaml_node *root, const char *dir_name)
{
	const tend_yaml_node *v;
	char *name = NULL;
	size_t i;

	svc->name = tend_arena_strdup(c->arena, dir_name);
	svc->dir = tend_arena_printf(c->arena, "services/%s", dir_name);
	svc->pos.file = c->file;
	svc->pos.line = root ? root->line : 0;
	svc->pos.col = root ? root->col : 0;
	if (!svc->name || !svc->dir)
		return TEND_ERROR;
	if (!root) {
		tend_pos p = { c->file, 0, 0 };
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p,
			       "empty document (expected a mapping with 'name' and 'host')");
		return 0;
	}
	if (expect_kind(c, root, TEND_YAML_MAP) < 0)
		return 0;
	aux->parsed = 1;
	check_keys(c, root, service_keys);
	if (get_string(&name, &aux->name, c, root, "name", 1) == 0 && strcmp(name, dir_name)) {
		size_t old = path_push(c, "name");
		tend_mctx_error(c, tend_yaml_map_get(root, "name"),
				"'%s' does not match its directory services/%s/ (rename one of them)",
				name, dir_name);
		path_pop(c, old);
	}
	get_string(&svc->host, &aux->host, c, root, "host", 1);
	get_string_list(&svc->depends_on, &svc->n_depends_on, &svc->depends_on_pos, c, root,
			"depends_on", 0);
	if (get_string_list(&svc->provides, &svc->n_provides, &aux->provides, c, root, "provides", 0) == 0) {
		for (i = 0; i < svc->n_provides; i++) {
			const char *hint;
			size_t old, o2, j;
			for (j = 0; capabilities[j] && strcmp(capabilities[j], svc->provides[i]); j++)
				;
			if (capabilities[j])
				continue;
			hint = tend_suggest_list(svc->provides[i], capabilities);
			v = tend_yaml_map_get(root, "provides")->items[i];
			old = path_push(c, "provides");
			o2 = path_push_index(c, i);
			if (hint)
				tend_mctx_error(c, v, "unknown capability '%s' (did you mean '%s'?)",
						svc->provides[i], hint);
			else
				tend_mctx_error(c, v, "unknown capability '%s' (expected postgresql, mysql, oidc or forward-auth)",
						svc->provides[i]);
			path_pop(c, o2);
			path_pop(c, old);
			svc->provides[i] = "";
		}
	}
	parse_database(svc, aux, c, root);
	parse_route(svc, aux, c, root);
	parse_oidc(svc, aux, c, root);
	parse_health(svc, c, root);
	parse_secrets(svc, aux, c, root);
	if ((v = enter_map(c, root, "settings", 0, NULL)))
		svc->settings = copy_node(c->arena, v);
	return 0;
}
