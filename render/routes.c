/* The route model shared by the proxy renderers: each proxied service with its
 * upstream and TLS resolver resolved, in a stable order; JSON helpers. */
#include "render/render_int.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tend_render_pos_str(const tend_pos *pos)
{
	char *s = NULL;

	if (!pos || !pos->file)
		return strdup("");
	if (pos->line && pos->col)
		return asprintf(&s, "%s:%u:%u: ", pos->file, pos->line, pos->col) < 0 ? NULL : s;
	if (pos->line)
		return asprintf(&s, "%s:%u: ", pos->file, pos->line) < 0 ? NULL : s;
	return asprintf(&s, "%s: ", pos->file) < 0 ? NULL : s;
}

int tend_json_set(json_t *obj, const char *key, json_t *value)
{
	if (!value)
		return -1;
	return json_object_set_new(obj, key, value);
}

int tend_json_append(json_t *arr, json_t *value)
{
	if (!value)
		return -1;
	return json_array_append_new(arr, value);
}

json_t *tend_json_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *tend_json_str_array(char *const *items, size_t n)
{
	json_t *arr = json_array();
	size_t i;

	if (!arr)
		return NULL;
	for (i = 0; i < n; i++) {
		if (tend_json_append(arr, json_string(items[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

void tend_render_eff_init(tend_render_eff *e, const tend_manifest *m, const tend_render_options *o)
{
	const tend_proxy_config *p = m->proxy;

	memset(e, 0, sizeof(*e));
	e->secrets_root = (o && o->secrets_root) ? o->secrets_root : TEND_RENDER_SECRETS_ROOT;
	e->listen_address = o ? o->listen_address : NULL;
	e->http_port = (o && o->http_port) ? o->http_port : (p && p->http_port ? p->http_port : 80);
	e->https_port = (o && o->https_port) ? o->https_port : (p && p->https_port ? p->https_port : 443);
	e->plain_http = o ? o->plain_http : 0;
	e->caddy_admin = o ? o->caddy_admin : NULL;
	e->entry_http = p && p->entry_http ? p->entry_http : "web";
	e->entry_https = p && p->entry_https ? p->entry_https : "websecure";
}

/* An internal resolver serves a domain when the domain ends with one of its
 * suffixes: ".lab.example.net" covers "a.lab.example.net" and "lab.example.net";
 * "lab.example.net" (no dot) the same. Returns the matched suffix length. */
static size_t suffix_match(const tend_tls_resolver *r, const char *domain)
{
	size_t best = 0, i, dl = strlen(domain);

	for (i = 0; i < r->n_suffixes; i++) {
		const char *s = r->suffixes[i];
		const char *bare = s[0] == '.' ? s + 1 : s;
		size_t bl = strlen(bare);

		if (!bl)
			continue;
		if (dl == bl && !strcasecmp(domain, bare)) {
			if (bl + 1 > best)
				best = bl + 1;
		} else if (dl > bl && domain[dl - bl - 1] == '.' && !strcasecmp(domain + dl - bl, bare)) {
			if (bl + 1 > best)
				best = bl + 1;
		}
	}
	return best;
}

static int pick_resolver(const tend_tls_resolver **out, const tend_manifest *m, const tend_service *svc)
{
	const tend_proxy_config *p = m->proxy;
	const tend_tls_resolver *best = NULL, *acme = NULL;
	size_t i, best_len = 0;

	*out = NULL;
	if (svc->proxy->tls) {
		for (i = 0; i < p->n_resolvers; i++) {
			if (!strcmp(p->resolvers[i].name, svc->proxy->tls)) {
				*out = &p->resolvers[i];
				return 0;
			}
		}
		char *pos = tend_render_pos_str(&svc->proxy->pos);
		tend_error_set("%sproxy.tls: no TLS resolver named '%s' in fleet.yaml proxy.tls",
			       pos ? pos : "", svc->proxy->tls);
		free(pos);
		return TEND_EINVALID;
	}
	for (i = 0; i < p->n_resolvers; i++) {
		const tend_tls_resolver *r = &p->resolvers[i];
		size_t l;

		if (r->kind == TEND_TLS_INTERNAL && (l = suffix_match(r, svc->proxy->domain)) > best_len) {
			best = r;
			best_len = l;
		} else if (r->kind == TEND_TLS_ACME && !acme) {
			acme = r;
		}
	}
	*out = best ? best : acme;
	return 0;
}

static char *default_upstream(const tend_manifest *m, const tend_service *svc)
{
	const tend_host *h = tend_manifest_host(m, svc->host);
	char *s = NULL;

	if (!h) {
		tend_error_set("service '%s': unknown host '%s'", svc->name, svc->host);
		return NULL;
	}
	if (strchr(h->address, ':'))
		return asprintf(&s, "http://[%s]:%d", h->address, svc->proxy->port) < 0 ? NULL : s;
	return asprintf(&s, "http://%s:%d", h->address, svc->proxy->port) < 0 ? NULL : s;
}

static int route_cmp(const void *a, const void *b)
{
	const tend_route *x = a, *y = b;
	size_t lx, ly;
	int c;

	if ((c = strcmp(x->domain, y->domain)))
		return c;
	lx = strlen(x->prefix);
	ly = strlen(y->prefix);
	if (lx != ly)
		return lx > ly ? -1 : 1;
	if ((c = strcmp(x->prefix, y->prefix)))
		return c;
	return strcmp(x->svc->name, y->svc->name);
}

int tend_render_routes_collect(tend_route **out, size_t *n, const tend_manifest *m)
{
	tend_route *routes = NULL;
	size_t i, count = 0;
	int error = -1;

	*out = NULL;
	*n = 0;
	if (!m->proxy)
		return 0;
	if (m->n_services && !(routes = calloc(m->n_services, sizeof(*routes)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (i = 0; i < m->n_services; i++) {
		const tend_service *svc = &m->services[i];
		tend_route *r;

		if (!svc->proxy)
			continue;
		r = &routes[count++];
		r->svc = svc;
		r->domain = svc->proxy->domain;
		r->prefix = svc->proxy->path_prefix ? svc->proxy->path_prefix : "/";
		r->auth = svc->proxy->auth;
		/* validate refuses these already (the same check, with a
		 * position); a model built otherwise still renders safely */
		if (!tend_manifest_route_text_ok(r->domain) || !tend_manifest_route_text_ok(r->prefix) ||
		    r->prefix[0] != '/') {
			char *pos = tend_render_pos_str(&svc->proxy->pos);
			tend_error_set("%sproxy: domain '%s' or path_prefix '%s' cannot be rendered safely",
				       pos ? pos : "", r->domain, r->prefix);
			free(pos);
			error = TEND_EINVALID;
			goto out;
		}
		if (r->auth && (!m->auth || !m->auth->forward_auth_url)) {
			char *pos = tend_render_pos_str(&svc->proxy->pos);
			tend_error_set("%sproxy.auth: true needs fleet.yaml auth.forward_auth_url", pos ? pos : "");
			free(pos);
			error = TEND_EINVALID;
			goto out;
		}
		r->upstream = svc->proxy->upstream ? strdup(svc->proxy->upstream) : default_upstream(m, svc);
		if (!r->upstream) {
			if (svc->proxy->upstream)
				tend_error_set("out of memory");
			goto out;
		}
		if ((error = pick_resolver(&r->resolver, m, svc)) < 0)
			goto out;
		error = -1;
	}
	if (count > 1)
		qsort(routes, count, sizeof(*routes), route_cmp);
	*out = routes;
	*n = count;
	routes = NULL;
	error = 0;
out:
	if (routes)
		tend_render_routes_free(routes, count);
	return error;
}

void tend_render_routes_free(tend_route *routes, size_t n)
{
	size_t i;

	if (!routes)
		return;
	for (i = 0; i < n; i++)
		free(routes[i].upstream);
	free(routes);
}
