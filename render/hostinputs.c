/* hosts/<host>.json: what a host's NixOS configuration reads. The services it
 * runs (settings, health probes, secret paths, never values) and what other
 * services ask of it: databases and users on a database provider's host, OIDC
 * clients on the identity provider's host, routes on the proxy's host. */
#include "render/render_int.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	size_t *items;
	size_t n, cap;
} idx_list;

typedef struct {
	idx_list services;   /* services running on the host */
	idx_list databases;  /* services whose database the host serves */
	idx_list oidc;       /* services whose OIDC client the host serves */
	int db_provider;     /* runs a service providing postgresql or mysql */
	int oidc_provider;   /* runs a service providing oidc */
} host_bucket;

struct tend_render_index {
	host_bucket *hosts;
	size_t n_hosts;
};

static int list_push(idx_list *l, size_t v)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		size_t *n = realloc(l->items, ncap * sizeof(*n));

		if (!n) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		l->items = n;
		l->cap = ncap;
	}
	l->items[l->n++] = v;
	return 0;
}

static int has_cap(const tend_service *s, const char *cap)
{
	size_t i;

	for (i = 0; i < s->n_provides; i++)
		if (!strcmp(s->provides[i], cap))
			return 1;
	return 0;
}

long tend_render_host_index(const tend_manifest *m, const char *name)
{
	size_t lo = 0, hi = m->n_hosts, i;

	while (lo < hi) {   /* hosts are sorted by name */
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->hosts[mid].name, name);

		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = 0; i < m->n_hosts; i++)   /* in case a model is not sorted */
		if (!strcmp(m->hosts[i].name, name))
			return (long)i;
	return -1;
}

static const tend_service *find_service(const tend_manifest *m, const char *name)
{
	size_t lo = 0, hi = m->n_services, i;

	if (!name)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->services[mid].name, name);

		if (!c)
			return &m->services[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = 0; i < m->n_services; i++)
		if (!strcmp(m->services[i].name, name))
			return &m->services[i];
	return NULL;
}

/* The provider named, or the only service providing the capability. */
static const tend_service *provider_of(const tend_manifest *m, const char *named, const char *cap)
{
	const tend_service *found = NULL;
	size_t i;

	if (named)
		return find_service(m, named);
	for (i = 0; i < m->n_services; i++) {
		if (has_cap(&m->services[i], cap)) {
			if (found)
				return NULL;
			found = &m->services[i];
		}
	}
	return found;
}

void tend_render_index_free(tend_render_index *ix)
{
	size_t i;

	if (!ix)
		return;
	for (i = 0; i < ix->n_hosts; i++) {
		free(ix->hosts[i].services.items);
		free(ix->hosts[i].databases.items);
		free(ix->hosts[i].oidc.items);
	}
	free(ix->hosts);
	free(ix);
}

int tend_render_index_build(tend_render_index **out, const tend_manifest *m)
{
	tend_render_index *ix = calloc(1, sizeof(*ix));
	const tend_service *oidc_default = NULL;
	size_t i;
	long h;
	int error = TEND_ERROR, oidc_default_done = 0;

	*out = NULL;
	if (!ix || (m->n_hosts && !(ix->hosts = calloc(m->n_hosts, sizeof(*ix->hosts))))) {
		tend_error_set("out of memory");
		goto out;
	}
	ix->n_hosts = m->n_hosts;
	for (i = 0; i < m->n_services; i++) {
		const tend_service *s = &m->services[i], *p;

		if ((h = tend_render_host_index(m, s->host)) < 0) {
			tend_error_set("service '%s' runs on unknown host '%s'", s->name, s->host);
			error = TEND_EINVALID;
			goto out;
		}
		if (list_push(&ix->hosts[h].services, i) < 0)
			goto out;
		if (has_cap(s, "postgresql") || has_cap(s, "mysql"))
			ix->hosts[h].db_provider = 1;
		if (has_cap(s, "oidc"))
			ix->hosts[h].oidc_provider = 1;
		if (s->database) {
			p = provider_of(m, s->database->provider, s->database->engine);
			if (!p || (h = tend_render_host_index(m, p->host)) < 0) {
				tend_error_set("service '%s': no provider for its %s database", s->name, s->database->engine);
				error = TEND_EINVALID;
				goto out;
			}
			if (list_push(&ix->hosts[h].databases, i) < 0)
				goto out;
		}
		if (s->oidc) {
			if (s->oidc->provider) {
				p = find_service(m, s->oidc->provider);
			} else {
				if (!oidc_default_done)   /* the scan is O(n): do it once */
					oidc_default = provider_of(m, NULL, "oidc");
				oidc_default_done = 1;
				p = oidc_default;
			}
			if (!p || (h = tend_render_host_index(m, p->host)) < 0) {
				tend_error_set("service '%s': no provider for its OIDC client", s->name);
				error = TEND_EINVALID;
				goto out;
			}
			if (list_push(&ix->hosts[h].oidc, i) < 0)
				goto out;
		}
	}
	*out = ix;
	ix = NULL;
	error = 0;
out:
	tend_render_index_free(ix);
	return error;
}

/* ---- JSON pieces ------------------------------------------------------- */

static char *secret_path(const tend_render_eff *eff, const char *service, const char *name)
{
	char *s = NULL;

	if (!name)
		return NULL;
	return asprintf(&s, "%s/%s/%s", eff->secrets_root, service, name) < 0 ? NULL : s;
}

static int set_secret_path(json_t *obj, const char *key, const tend_render_eff *eff,
			   const char *service, const char *name)
{
	char *path;
	int error;

	if (!name)
		return tend_json_set(obj, key, json_null());
	if (!(path = secret_path(eff, service, name)))
		return -1;
	error = tend_json_set(obj, key, json_string(path));
	free(path);
	return error;
}

/* An object of n key/value pairs, values stolen (released on failure; a NULL
 * value fails, as json_pack's would): json_pack without parsing a format
 * string per object, which was a tenth of rendering a fleet's inputs. */
static json_t *obj_of(size_t n, ...)
{
	json_t *o = json_object();
	va_list ap;
	size_t i;
	int ok = o != NULL;

	va_start(ap, n);
	for (i = 0; i < n; i++) {
		const char *k = va_arg(ap, const char *);
		json_t *v = va_arg(ap, json_t *);

		if (!ok || !v) {
			json_decref(v);
			ok = 0;
		} else if (json_object_set_new_nocheck(o, k, v) < 0) {   /* v released */
			ok = 0;
		}
	}
	va_end(ap);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* json_pack's "s": NULL for a NULL string (the object then fails). */
static json_t *str(const char *s)
{
	return s ? json_string(s) : NULL;
}

static json_t *probe_json(const tend_probe *p)
{
	json_t *o = obj_of(4, "interval_ms", json_integer((json_int_t)p->interval_ms),
			   "timeout_ms", json_integer((json_int_t)p->timeout_ms),
			   "grace_ms", json_integer((json_int_t)p->grace_ms),
			   "retries", json_integer((int)p->retries));
	int error = -1;

	if (!o)
		return NULL;
	switch (p->kind) {
	case TEND_PROBE_HTTP:
		error = tend_json_set(o, "http", obj_of(3, "url", str(p->url ? p->url : ""),
							"status", json_integer(p->expect_status ? p->expect_status : 200),
							"body", tend_json_str_or_null(p->body_match)));
		break;
	case TEND_PROBE_TCP:
		error = tend_json_set(o, "tcp", obj_of(2, "host", str(p->host ? p->host : ""),
						       "port", json_integer(p->port)));
		break;
	case TEND_PROBE_COMMAND:
		error = tend_json_set(o, "command", tend_json_str_array(p->argv, p->argc));
		break;
	}
	if (error < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *health_json(const tend_service *s)
{
	json_t *startup = json_array(), *liveness = json_array();
	size_t i;

	if (!startup || !liveness)
		goto fail;
	for (i = 0; i < s->n_probes; i++)
		if (tend_json_append(s->probes[i].phase == TEND_PROBE_STARTUP ? startup : liveness,
				     probe_json(&s->probes[i])) < 0)
			goto fail;
	return obj_of(2, "startup", startup, "liveness", liveness);
fail:
	json_decref(startup);
	json_decref(liveness);
	return NULL;
}

static json_t *secrets_json(const tend_service *s, const tend_render_eff *eff)
{
	json_t *arr = json_array(), *o;
	char mode[16];
	size_t i;

	if (!arr)
		return NULL;
	for (i = 0; i < s->n_secrets; i++) {
		const tend_secret_decl *d = &s->secrets[i];

		snprintf(mode, sizeof(mode), "%04o", d->mode & 07777);
		o = obj_of(5, "name", str(d->name),
			   "owner", str(d->owner ? d->owner : "root"), "group", str(d->group ? d->group : "root"),
			   "mode", str(mode), "restart", tend_json_str_array(d->restart, d->n_restart));
		if (!o || set_secret_path(o, "path", eff, s->name, d->name) < 0 || tend_json_append(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static const char *host_address(const tend_manifest *m, const char *host)
{
	long h = tend_render_host_index(m, host);

	return h < 0 ? NULL : m->hosts[h].address;
}

static json_t *service_json(const tend_manifest *m, const tend_service *s, const tend_render_eff *eff)
{
	json_t *o = json_object(), *settings;
	const char **deps = NULL;
	size_t n_deps = 0, i;

	if (!o)
		return NULL;
	if (tend_manifest_service_deps(&deps, &n_deps, m, s) < 0)
		goto fail;
	if (s->settings) {
		if (!(settings = tend_render_yaml_to_json(s->settings))) {
			char *pos = tend_render_pos_str(&s->pos);
			tend_error_prefix("%ssettings: ", pos ? pos : "");
			free(pos);
			goto fail_set;
		}
	} else {
		settings = json_object();
	}
	if (tend_json_set(o, "settings", settings) < 0 ||
	    tend_json_set(o, "depends_on", json_array()) < 0 ||
	    tend_json_set(o, "provides", tend_json_str_array(s->provides, s->n_provides)) < 0 ||
	    tend_json_set(o, "health", health_json(s)) < 0 ||
	    tend_json_set(o, "secrets", secrets_json(s, eff)) < 0)
		goto fail;
	for (i = 0; i < n_deps; i++)
		if (tend_json_append(json_object_get(o, "depends_on"), json_string(deps[i])) < 0)
			goto fail;
	if (s->database) {
		const tend_database_req *d = s->database;
		const tend_service *p = provider_of(m, d->provider, d->engine);
		json_t *db = obj_of(6, "engine", str(d->engine), "name", str(d->name),
				       "user", str(d->user), "provider", tend_json_str_or_null(p ? p->name : NULL),
				       "provider_host", tend_json_str_or_null(p ? p->host : NULL),
				       "provider_address", tend_json_str_or_null(p ? host_address(m, p->host) : NULL));

		if (!db || tend_json_set(o, "database", db) < 0 ||
		    set_secret_path(db, "password_file", eff, s->name, d->password_secret) < 0)
			goto fail;
	}
	if (s->oidc) {
		json_t *oi = obj_of(3, "client_id", str(s->oidc->client_id),
				       "redirect_uris", tend_json_str_array(s->oidc->redirect_uris, s->oidc->n_redirect_uris),
				       "provider", tend_json_str_or_null(s->oidc->provider));

		if (!oi || tend_json_set(o, "oidc", oi) < 0 ||
		    set_secret_path(oi, "client_secret_file", eff, s->name, s->oidc->client_secret) < 0)
			goto fail;
	}
	free(deps);
	return o;
fail:
	tend_error_set("out of memory");
fail_set:
	free(deps);
	json_decref(o);
	return NULL;
}

static int db_cmp(const void *a, const void *b, void *ctx)
{
	const tend_manifest *m = ctx;
	const tend_database_req *x = m->services[*(const size_t *)a].database;
	const tend_database_req *y = m->services[*(const size_t *)b].database;
	int c;

	if ((c = strcmp(x->engine, y->engine)) || (c = strcmp(x->name, y->name)) || (c = strcmp(x->user, y->user)))
		return c;
	return *(const size_t *)a < *(const size_t *)b ? -1 : *(const size_t *)a > *(const size_t *)b;
}

static int oidc_cmp(const void *a, const void *b, void *ctx)
{
	const tend_manifest *m = ctx;
	int c = strcmp(m->services[*(const size_t *)a].oidc->client_id,
		       m->services[*(const size_t *)b].oidc->client_id);

	if (c)
		return c;
	return *(const size_t *)a < *(const size_t *)b ? -1 : *(const size_t *)a > *(const size_t *)b;
}

static json_t *databases_json(const tend_manifest *m, const idx_list *l, const tend_render_eff *eff)
{
	json_t *arr = json_array(), *o;
	size_t i;

	if (!arr)
		return NULL;
	if (l->n > 1)
		qsort_r(l->items, l->n, sizeof(*l->items), db_cmp, (void *)m);
	for (i = 0; i < l->n; i++) {
		const tend_service *s = &m->services[l->items[i]];
		const tend_database_req *d = s->database;

		o = obj_of(7, "engine", str(d->engine), "name", str(d->name),
			      "user", str(d->user), "owner_service", str(s->name), "owner_host", str(s->host),
			      "provider", tend_json_str_or_null(d->provider),
			      "extensions", tend_json_str_array(d->extensions, d->n_extensions));
		if (!o || set_secret_path(o, "password_file", eff, s->name, d->password_secret) < 0 ||
		    tend_json_append(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *oidc_json(const tend_manifest *m, const idx_list *l, const tend_render_eff *eff)
{
	json_t *arr = json_array(), *o;
	size_t i;

	if (!arr)
		return NULL;
	if (l->n > 1)
		qsort_r(l->items, l->n, sizeof(*l->items), oidc_cmp, (void *)m);
	for (i = 0; i < l->n; i++) {
		const tend_service *s = &m->services[l->items[i]];

		o = obj_of(4, "client_id", str(s->oidc->client_id),
			      "redirect_uris", tend_json_str_array(s->oidc->redirect_uris, s->oidc->n_redirect_uris),
			      "service", str(s->name), "service_host", str(s->host));
		if (!o || set_secret_path(o, "client_secret_file", eff, s->name, s->oidc->client_secret) < 0 ||
		    tend_json_append(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *routes_json(const tend_route *routes, size_t n)
{
	json_t *arr = json_array(), *o;
	size_t i;

	if (!arr)
		return NULL;
	for (i = 0; i < n; i++) {
		const tend_route *r = &routes[i];

		o = obj_of(7, "service", str(r->svc->name),
			      "domain", str(r->domain), "path_prefix", str(r->prefix), "upstream", str(r->upstream),
			      "auth", json_boolean(r->auth), "tls", tend_json_str_or_null(r->resolver ? r->resolver->name : NULL),
			      "middlewares", tend_json_str_array(r->svc->proxy->middlewares, r->svc->proxy->n_middlewares));
		if (tend_json_append(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

int tend_render_host_inputs_build(json_t **out, const tend_manifest *m, const tend_render_index *ix,
				  size_t host_i, const tend_route *routes, size_t n,
				  const char *commit, const tend_render_eff *eff)
{
	const tend_host *h = &m->hosts[host_i];
	const host_bucket *b = &ix->hosts[host_i];
	const tend_service *proxy_svc = m->proxy ? find_service(m, m->proxy->service) : NULL;
	json_t *doc = NULL, *services = NULL, *v;
	size_t i;
	int error = TEND_ERROR;

	*out = NULL;
	if (!(doc = json_object()) || !(services = json_object()))
		goto oom;
	if (tend_json_set(doc, "generated_by", json_string("tend")) < 0 ||
	    tend_json_set(doc, "commit", tend_json_str_or_null(commit)) < 0 ||
	    tend_json_set(doc, "fleet", obj_of(3, "name", str(m->fleet), "domain", str(m->domain),
						  "internal_cidrs",
						  tend_json_str_array(m->internal_cidrs, m->n_internal_cidrs))) < 0 ||
	    tend_json_set(doc, "host", obj_of(6, "name", str(h->name),
						 "address", str(h->address), "role", tend_json_str_or_null(h->role),
						 "flake_attr", str(h->flake_attr ? h->flake_attr : h->name),
						 "agent_port", json_integer(h->agent_port ? h->agent_port : m->agent_port),
						 "age_recipient", tend_json_str_or_null(h->age_recipient))) < 0 ||
	    tend_json_set(doc, "secrets_root", json_string(eff->secrets_root)) < 0)
		goto oom;
	for (i = 0; i < b->services.n; i++) {
		const tend_service *s = &m->services[b->services.items[i]];

		if (!(v = service_json(m, s, eff))) {
			error = TEND_EINVALID;
			goto out;
		}
		if (tend_json_set(services, s->name, v) < 0)
			goto oom;
	}
	if (json_object_set(doc, "services", services) < 0)
		goto oom;
	if ((b->db_provider || b->databases.n) &&
	    tend_json_set(doc, "databases", databases_json(m, &b->databases, eff)) < 0)
		goto oom;
	if ((b->oidc_provider || b->oidc.n) &&
	    tend_json_set(doc, "oidc_clients", oidc_json(m, &b->oidc, eff)) < 0)
		goto oom;
	if (proxy_svc && !strcmp(proxy_svc->host, h->name)) {
		if (tend_json_set(doc, "proxy", obj_of(4, "service", str(m->proxy->service),
							  "kind", str(m->proxy->kind == TEND_PROXY_CADDY ? "caddy" : "traefik"),
							  "routes_file", str(m->proxy->routes_file),
							  "routes", routes_json(routes, n))) < 0)
			goto oom;
	}
	*out = doc;
	doc = NULL;
	error = 0;
	goto out;
oom:
	tend_error_set("out of memory");
out:
	json_decref(doc);
	json_decref(services);
	return error;
}

int tend_render_host_inputs_doc(json_t **out, const tend_manifest *m, const char *host,
				const char *commit, const tend_render_options *opts)
{
	tend_render_index *ix = NULL;
	tend_render_eff eff;
	tend_route *routes = NULL;
	size_t n = 0;
	long h;
	int error;

	*out = NULL;
	if ((h = tend_render_host_index(m, host)) < 0) {
		tend_error_set("no host named '%s' in fleet.yaml", host);
		return TEND_ENOTFOUND;
	}
	tend_render_eff_init(&eff, m, opts);
	if ((error = tend_render_routes_collect(&routes, &n, m)) < 0 ||
	    (error = tend_render_index_build(&ix, m)) < 0)
		goto out;
	error = tend_render_host_inputs_build(out, m, ix, (size_t)h, routes, n, commit, &eff);
out:
	tend_render_index_free(ix);
	tend_render_routes_free(routes, n);
	return error;
}
