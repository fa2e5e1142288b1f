/* hosts/<host>.json: what a host's NixOS configuration reads. The services it
 * runs (settings, health probes, secret paths, never values) and what other
 * services ask of it: databases and users on a database provider's host, OIDC
 * clients on the identity provider's host, routes on the proxy's host. */
#include "render/render_int.h"
#include "util/error.h"

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

/* ---- JSON pieces --------------------------------------------------------
 * Written straight into the output in the layout tend_render_json_dump gives
 * a document (keys in strcmp order, the writer checks it): building, dumping
 * and freeing a jansson document per host was most of a fleet render. */

/* <secrets root>/<service>/<name>, or null when the secret is not named */
static void secret_path(tend_jw *w, tend_buf *scratch, const tend_render_eff *eff,
			const char *service, const char *name)
{
	if (!name) {
		tend_jw_null(w);
		return;
	}
	tend_buf_clear(scratch);
	if (!w->error &&
	    ((w->error = tend_buf_puts(scratch, eff->secrets_root)) < 0 ||
	     (w->error = tend_buf_putc(scratch, '/')) < 0 || (w->error = tend_buf_puts(scratch, service)) < 0 ||
	     (w->error = tend_buf_putc(scratch, '/')) < 0 || (w->error = tend_buf_puts(scratch, name)) < 0))
		return;
	tend_jw_strn(w, scratch->ptr, scratch->size);
}

static void probe_json(tend_jw *w, const tend_probe *p)
{
	tend_jw_obj(w);
	if (p->kind == TEND_PROBE_COMMAND) {
		TEND_JW_KEY(w, "command");
		tend_jw_str_array(w, p->argv, p->argc);
	}
	TEND_JW_KEY(w, "grace_ms");
	tend_jw_int(w, (long long)p->grace_ms);
	if (p->kind == TEND_PROBE_HTTP) {
		TEND_JW_KEY(w, "http");
		tend_jw_obj(w);
		TEND_JW_KEY(w, "body");
		tend_jw_str_or_null(w, p->body_match);
		TEND_JW_KEY(w, "status");
		tend_jw_int(w, p->expect_status ? p->expect_status : 200);
		TEND_JW_KEY(w, "url");
		tend_jw_str(w, p->url ? p->url : "");
		tend_jw_end(w);
	}
	TEND_JW_KEY(w, "interval_ms");
	tend_jw_int(w, (long long)p->interval_ms);
	TEND_JW_KEY(w, "retries");
	tend_jw_int(w, (int)p->retries);
	if (p->kind == TEND_PROBE_TCP) {
		TEND_JW_KEY(w, "tcp");
		tend_jw_obj(w);
		TEND_JW_KEY(w, "host");
		tend_jw_str(w, p->host ? p->host : "");
		TEND_JW_KEY(w, "port");
		tend_jw_int(w, p->port);
		tend_jw_end(w);
	}
	TEND_JW_KEY(w, "timeout_ms");
	tend_jw_int(w, (long long)p->timeout_ms);
	tend_jw_end(w);
}

static void health_json(tend_jw *w, const tend_service *s)
{
	size_t i;

	tend_jw_obj(w);
	TEND_JW_KEY(w, "liveness");
	tend_jw_arr(w);
	for (i = 0; i < s->n_probes; i++)
		if (s->probes[i].phase != TEND_PROBE_STARTUP)
			probe_json(w, &s->probes[i]);
	tend_jw_end(w);
	TEND_JW_KEY(w, "startup");
	tend_jw_arr(w);
	for (i = 0; i < s->n_probes; i++)
		if (s->probes[i].phase == TEND_PROBE_STARTUP)
			probe_json(w, &s->probes[i]);
	tend_jw_end(w);
	tend_jw_end(w);
}

static void secrets_json(tend_jw *w, tend_buf *scratch, const tend_service *s,
			 const tend_render_eff *eff)
{
	char mode[16];
	size_t i;

	tend_jw_arr(w);
	for (i = 0; i < s->n_secrets; i++) {
		const tend_secret_decl *d = &s->secrets[i];

		snprintf(mode, sizeof(mode), "%04o", d->mode & 07777);
		tend_jw_obj(w);
		TEND_JW_KEY(w, "group");
		tend_jw_str(w, d->group ? d->group : "root");
		TEND_JW_KEY(w, "mode");
		tend_jw_str(w, mode);
		TEND_JW_KEY(w, "name");
		tend_jw_str(w, d->name);
		TEND_JW_KEY(w, "owner");
		tend_jw_str(w, d->owner ? d->owner : "root");
		TEND_JW_KEY(w, "path");
		secret_path(w, scratch, eff, s->name, d->name);
		TEND_JW_KEY(w, "restart");
		tend_jw_str_array(w, d->restart, d->n_restart);
		tend_jw_end(w);
	}
	tend_jw_end(w);
}

static const char *host_address(const tend_manifest *m, const char *host)
{
	long h = tend_render_host_index(m, host);

	return h < 0 ? NULL : m->hosts[h].address;
}

static int service_json(tend_jw *w, tend_buf *scratch, const tend_manifest *m,
			const tend_service *s, const tend_render_eff *eff)
{
	const char **deps = NULL;
	size_t n_deps = 0, i;
	int error;

	if ((error = tend_manifest_service_deps(&deps, &n_deps, m, s)) < 0)
		return error;
	tend_jw_obj(w);
	if (s->database) {
		const tend_database_req *d = s->database;
		const tend_service *p = provider_of(m, d->provider, d->engine);

		TEND_JW_KEY(w, "database");
		tend_jw_obj(w);
		TEND_JW_KEY(w, "engine");
		tend_jw_str(w, d->engine);
		TEND_JW_KEY(w, "name");
		tend_jw_str(w, d->name);
		TEND_JW_KEY(w, "password_file");
		secret_path(w, scratch, eff, s->name, d->password_secret);
		TEND_JW_KEY(w, "provider");
		tend_jw_str_or_null(w, p ? p->name : NULL);
		TEND_JW_KEY(w, "provider_address");
		tend_jw_str_or_null(w, p ? host_address(m, p->host) : NULL);
		TEND_JW_KEY(w, "provider_host");
		tend_jw_str_or_null(w, p ? p->host : NULL);
		TEND_JW_KEY(w, "user");
		tend_jw_str(w, d->user);
		tend_jw_end(w);
	}
	TEND_JW_KEY(w, "depends_on");
	tend_jw_arr(w);
	for (i = 0; i < n_deps; i++)
		tend_jw_str(w, deps[i]);
	tend_jw_end(w);
	free(deps);
	TEND_JW_KEY(w, "health");
	health_json(w, s);
	if (s->oidc) {
		TEND_JW_KEY(w, "oidc");
		tend_jw_obj(w);
		TEND_JW_KEY(w, "client_id");
		tend_jw_str(w, s->oidc->client_id);
		TEND_JW_KEY(w, "client_secret_file");
		secret_path(w, scratch, eff, s->name, s->oidc->client_secret);
		TEND_JW_KEY(w, "provider");
		tend_jw_str_or_null(w, s->oidc->provider);
		TEND_JW_KEY(w, "redirect_uris");
		tend_jw_str_array(w, s->oidc->redirect_uris, s->oidc->n_redirect_uris);
		tend_jw_end(w);
	}
	TEND_JW_KEY(w, "provides");
	tend_jw_str_array(w, s->provides, s->n_provides);
	TEND_JW_KEY(w, "secrets");
	secrets_json(w, scratch, s, eff);
	TEND_JW_KEY(w, "settings");
	if (s->settings) {
		if (!w->error && tend_render_yaml_write_json(w, s->settings) == TEND_EINVALID) {
			char *pos = tend_render_pos_str(&s->pos);
			tend_error_prefix("%ssettings: ", pos ? pos : "");
			free(pos);
		}
	} else {
		tend_jw_obj(w);
		tend_jw_end(w);
	}
	tend_jw_end(w);
	return w->error;
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

static void databases_json(tend_jw *w, tend_buf *scratch, const tend_manifest *m, const idx_list *l,
			   const tend_render_eff *eff)
{
	size_t i;

	if (l->n > 1)
		qsort_r(l->items, l->n, sizeof(*l->items), db_cmp, (void *)m);
	tend_jw_arr(w);
	for (i = 0; i < l->n; i++) {
		const tend_service *s = &m->services[l->items[i]];
		const tend_database_req *d = s->database;

		tend_jw_obj(w);
		TEND_JW_KEY(w, "engine");
		tend_jw_str(w, d->engine);
		TEND_JW_KEY(w, "extensions");
		tend_jw_str_array(w, d->extensions, d->n_extensions);
		TEND_JW_KEY(w, "name");
		tend_jw_str(w, d->name);
		TEND_JW_KEY(w, "owner_host");
		tend_jw_str(w, s->host);
		TEND_JW_KEY(w, "owner_service");
		tend_jw_str(w, s->name);
		TEND_JW_KEY(w, "password_file");
		secret_path(w, scratch, eff, s->name, d->password_secret);
		TEND_JW_KEY(w, "provider");
		tend_jw_str_or_null(w, d->provider);
		TEND_JW_KEY(w, "user");
		tend_jw_str(w, d->user);
		tend_jw_end(w);
	}
	tend_jw_end(w);
}

static void oidc_json(tend_jw *w, tend_buf *scratch, const tend_manifest *m, const idx_list *l,
		      const tend_render_eff *eff)
{
	size_t i;

	if (l->n > 1)
		qsort_r(l->items, l->n, sizeof(*l->items), oidc_cmp, (void *)m);
	tend_jw_arr(w);
	for (i = 0; i < l->n; i++) {
		const tend_service *s = &m->services[l->items[i]];

		tend_jw_obj(w);
		TEND_JW_KEY(w, "client_id");
		tend_jw_str(w, s->oidc->client_id);
		TEND_JW_KEY(w, "client_secret_file");
		secret_path(w, scratch, eff, s->name, s->oidc->client_secret);
		TEND_JW_KEY(w, "redirect_uris");
		tend_jw_str_array(w, s->oidc->redirect_uris, s->oidc->n_redirect_uris);
		TEND_JW_KEY(w, "service");
		tend_jw_str(w, s->name);
		TEND_JW_KEY(w, "service_host");
		tend_jw_str(w, s->host);
		tend_jw_end(w);
	}
	tend_jw_end(w);
}

static void routes_json(tend_jw *w, const tend_route *routes, size_t n)
{
	size_t i;

	tend_jw_arr(w);
	for (i = 0; i < n; i++) {
		const tend_route *r = &routes[i];

		tend_jw_obj(w);
		TEND_JW_KEY(w, "auth");
		tend_jw_bool(w, r->auth);
		TEND_JW_KEY(w, "domain");
		tend_jw_str(w, r->domain);
		TEND_JW_KEY(w, "middlewares");
		tend_jw_str_array(w, r->svc->proxy->middlewares, r->svc->proxy->n_middlewares);
		TEND_JW_KEY(w, "path_prefix");
		tend_jw_str(w, r->prefix);
		TEND_JW_KEY(w, "service");
		tend_jw_str(w, r->svc->name);
		TEND_JW_KEY(w, "tls");
		tend_jw_str_or_null(w, r->resolver ? r->resolver->name : NULL);
		TEND_JW_KEY(w, "upstream");
		tend_jw_str(w, r->upstream);
		tend_jw_end(w);
	}
	tend_jw_end(w);
}

int tend_render_host_inputs_write(tend_buf *out, const tend_manifest *m, const tend_render_index *ix,
				  size_t host_i, const tend_route *routes, size_t n,
				  const char *commit, const char *revision, const tend_render_eff *eff)
{
	const tend_host *h = &m->hosts[host_i];
	const host_bucket *b = &ix->hosts[host_i];
	const tend_service *proxy_svc = m->proxy ? find_service(m, m->proxy->service) : NULL;
	tend_buf scratch = TEND_BUF_INIT;
	tend_jw *w;
	size_t i;
	int error;

	if (!(w = malloc(sizeof(*w)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	tend_jw_init(w, out);
	tend_jw_obj(w);
	TEND_JW_KEY(w, "commit");
	tend_jw_str_or_null(w, commit);
	if (b->db_provider || b->databases.n) {
		TEND_JW_KEY(w, "databases");
		databases_json(w, &scratch, m, &b->databases, eff);
	}
	TEND_JW_KEY(w, "fleet");
	tend_jw_obj(w);
	TEND_JW_KEY(w, "domain");
	tend_jw_str(w, m->domain);
	TEND_JW_KEY(w, "internal_cidrs");
	tend_jw_str_array(w, m->internal_cidrs, m->n_internal_cidrs);
	TEND_JW_KEY(w, "name");
	tend_jw_str(w, m->fleet);
	tend_jw_end(w);
	TEND_JW_KEY(w, "generated_by");
	tend_jw_str(w, "tend");
	TEND_JW_KEY(w, "host");
	tend_jw_obj(w);
	TEND_JW_KEY(w, "address");
	tend_jw_str(w, h->address);
	TEND_JW_KEY(w, "age_recipient");
	tend_jw_str_or_null(w, h->age_recipient);
	TEND_JW_KEY(w, "agent_port");
	tend_jw_int(w, h->agent_port ? h->agent_port : m->agent_port);
	TEND_JW_KEY(w, "flake_attr");
	tend_jw_str(w, h->flake_attr ? h->flake_attr : h->name);
	TEND_JW_KEY(w, "name");
	tend_jw_str(w, h->name);
	TEND_JW_KEY(w, "role");
	tend_jw_str_or_null(w, h->role);
	tend_jw_end(w);
	if (b->oidc_provider || b->oidc.n) {
		TEND_JW_KEY(w, "oidc_clients");
		oidc_json(w, &scratch, m, &b->oidc, eff);
	}
	if (proxy_svc && !strcmp(proxy_svc->host, h->name)) {
		TEND_JW_KEY(w, "proxy");
		tend_jw_obj(w);
		TEND_JW_KEY(w, "kind");
		tend_jw_str(w, m->proxy->kind == TEND_PROXY_CADDY ? "caddy" : "traefik");
		TEND_JW_KEY(w, "routes");
		routes_json(w, routes, n);
		TEND_JW_KEY(w, "routes_file");
		tend_jw_str(w, m->proxy->routes_file);
		TEND_JW_KEY(w, "service");
		tend_jw_str(w, m->proxy->service);
		tend_jw_end(w);
	}
	/* for the flake's system.configurationRevision; a flake that puts it into
	 * the system makes every commit a new system on every host */
	TEND_JW_KEY(w, "revision");
	tend_jw_str_or_null(w, revision && *revision ? revision : NULL);
	TEND_JW_KEY(w, "secrets_root");
	tend_jw_str(w, eff->secrets_root);
	TEND_JW_KEY(w, "services");
	tend_jw_obj(w);
	/* services are sorted by name, and each bucket lists them in that order */
	for (i = 0; i < b->services.n && !w->error; i++) {
		const tend_service *s = &m->services[b->services.items[i]];

		tend_jw_key(w, s->name);
		if (service_json(w, &scratch, m, s, eff) < 0 && !w->error)
			w->error = TEND_ERROR;
	}
	tend_jw_end(w);
	tend_jw_end(w);
	error = tend_jw_finish(w);
	free(w);
	tend_buf_dispose(&scratch);
	return error;
}

int tend_render_host_inputs_doc(json_t **out, const tend_manifest *m, const char *host,
				const char *commit, const tend_render_options *opts)
{
	tend_render_index *ix = NULL;
	tend_render_eff eff;
	tend_route *routes = NULL;
	tend_buf buf = TEND_BUF_INIT;
	json_error_t jerr;
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
	if ((error = tend_render_host_inputs_write(&buf, m, ix, (size_t)h, routes, n, commit, commit,
						  &eff)) < 0)
		goto out;
	/* the document is the text read back: one way to render the inputs */
	if (!(*out = json_loadb(buf.ptr, buf.size, JSON_ALLOW_NUL, &jerr))) {
		tend_error_set("render: host inputs do not read back: %s", jerr.text);
		error = TEND_ERROR;
	}
out:
	tend_buf_dispose(&buf);
	tend_render_index_free(ix);
	tend_render_routes_free(routes, n);
	return error;
}
