/* The render entry point: collect routes and per-host buckets once, render
 * every host's NixOS inputs and the proxy host's routes file, and hand back the
 * outputs sorted by host and path (or only one host's, or only the inputs). Also writing one host's outputs to a directory. */
#include "render/render_int.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_output(tend_render_result *r, size_t *cap, const char *host, tend_output_kind kind,
		      const char *path, const char *dest, int dest_absolute, char *data, size_t len)
{
	tend_render_output *o;

	if (r->n_outputs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		tend_render_output *n = realloc(r->outputs, ncap * sizeof(*n));

		if (!n)
			goto oom;
		r->outputs = n;
		*cap = ncap;
	}
	o = &r->outputs[r->n_outputs];
	memset(o, 0, sizeof(*o));
	if (!(o->host = strdup(host)) || !(o->path = strdup(path)) || !(o->dest = strdup(dest))) {
		free(o->host);
		free(o->path);
		goto oom;
	}
	o->kind = kind;
	o->dest_absolute = dest_absolute;
	o->data = data;
	o->len = len;
	o->mode = 0644;
	r->n_outputs++;
	return 0;
oom:
	free(data);
	tend_error_set("out of memory");
	return TEND_ERROR;
}

static int output_cmp(const void *a, const void *b)
{
	const tend_render_output *x = a, *y = b;
	int c = strcmp(x->host, y->host);

	return c ? c : strcmp(x->path, y->path);
}

static int render_routes_file(tend_render_result *r, size_t *cap, const tend_manifest *m,
			      const tend_route *routes, size_t n, const char *commit,
			      const tend_render_eff *eff)
{
	const tend_proxy_config *p = m->proxy;
	const tend_service *svc = tend_manifest_service(m, p->service);
	json_t *doc = NULL;
	char *data = NULL;
	size_t len = 0;
	int error;

	if (!svc) {
		tend_error_set("fleet.yaml: proxy.service '%s' is not a service", p->service);
		return TEND_EINVALID;
	}
	if (p->kind == TEND_PROXY_TRAEFIK) {
		if ((error = tend_render_traefik_file(&data, &len, m, routes, n, eff, commit)) < 0)
			goto out;
		error = add_output(r, cap, svc->host, TEND_OUTPUT_ROUTES, "routes/traefik.yml",
				   p->routes_file, 1, data, len);
	} else {
		if ((error = tend_render_caddy_build(&doc, m, routes, n, eff)) < 0 ||
		    (error = tend_render_json_dump(&data, &len, doc)) < 0)
			goto out;
		error = add_output(r, cap, svc->host, TEND_OUTPUT_ROUTES, "routes/caddy.json",
				   p->routes_file, 1, data, len);
	}
out:
	json_decref(doc);
	return error;
}

/* What to render: every host's inputs or only_host's (each stamped with
 * inputs_commit, each with revision), and the proxy's routes file (stamped with
 * routes_commit) or not, or only when only_host runs the proxy. One code path,
 * so a subset is byte-identical to the same outputs of the whole fleet. */
typedef struct {
	const char *only_host;      /* NULL: no host filter */
	int all_inputs;             /* every host's inputs even with only_host */
	const char *inputs_commit;
	int want_routes;
	const char *routes_commit;
	const char *revision;       /* the commit rendered (NULL: a working tree) */
} render_sel;

static int render_select(tend_render_result **out, const tend_manifest *m,
			 const tend_render_options *opts, const render_sel *sel)
{
	tend_render_result *r = calloc(1, sizeof(*r));
	tend_render_index *ix = NULL;
	tend_render_eff eff;
	tend_route *routes = NULL;
	const char *only_host = sel->only_host;
	const char *commit = sel->want_routes ? sel->routes_commit : sel->inputs_commit;
	size_t n_routes = 0, cap = 0, i, first = 0, end = m->n_hosts;
	int error = TEND_ERROR;

	*out = NULL;
	if (!r || (commit && !(r->commit = strdup(commit)))) {
		tend_error_set("out of memory");
		goto out;
	}
	if (only_host) {
		long hi = tend_render_host_index(m, only_host);

		if (hi < 0) {
			tend_error_set("host '%s' is not in fleet.yaml", only_host);
			error = TEND_ENOTFOUND;
			goto out;
		}
		if (!sel->all_inputs) {
			first = (size_t)hi;
			end = first + 1;
		}
	}
	tend_render_eff_init(&eff, m, opts);
	/* the routes and the index cover the whole fleet: a host's inputs name
	 * what other hosts serve it (databases, OIDC clients, routes) */
	if ((error = tend_render_routes_collect(&routes, &n_routes, m)) < 0 ||
	    (error = tend_render_index_build(&ix, m)) < 0)
		goto out;
	for (i = first; i < end; i++) {
		const char *name = m->hosts[i].name;
		char path[512], dest[512];
		tend_buf data = TEND_BUF_INIT;
		size_t len;

		if ((error = tend_render_host_inputs_write(&data, m, ix, i, routes, n_routes,
							   sel->inputs_commit, sel->revision, &eff)) < 0) {
			tend_buf_dispose(&data);
			goto out;
		}
		len = data.size;
		snprintf(path, sizeof(path), "hosts/%s.json", name);
		snprintf(dest, sizeof(dest), ".tend/hosts/%s.json", name);
		if ((error = add_output(r, &cap, name, TEND_OUTPUT_HOST_INPUTS, path, dest, 0,
					tend_buf_detach(&data), len)) < 0)
			goto out;
	}
	if (sel->want_routes && m->proxy) {
		const tend_service *ps = tend_manifest_service(m, m->proxy->service);

		/* an unknown proxy service is an error whichever host asks */
		if ((!only_host || !ps || !strcmp(ps->host, only_host)) &&
		    (error = render_routes_file(r, &cap, m, routes, n_routes, sel->routes_commit, &eff)) < 0)
			goto out;
	}
	if (r->n_outputs > 1)
		qsort(r->outputs, r->n_outputs, sizeof(*r->outputs), output_cmp);
	*out = r;
	r = NULL;
	error = 0;
out:
	tend_render_result_free(r);
	tend_render_index_free(ix);
	tend_render_routes_free(routes, n_routes);
	return error;
}

int tend_render_fleet_opts(tend_render_result **out, const tend_manifest *m, const char *commit,
			   const tend_render_options *opts)
{
	render_sel sel = { NULL, 1, commit, 1, commit, commit };

	return render_select(out, m, opts, &sel);
}

int tend_render_host_opts(tend_render_result **out, const tend_manifest *m, const char *host,
			  const char *commit, const tend_render_options *opts)
{
	render_sel sel = { host, 0, commit, 1, commit, commit };

	return render_select(out, m, opts, &sel);
}

int tend_render_inputs_opts(tend_render_result **out, const tend_manifest *m, const char *commit,
			    const tend_render_options *opts)
{
	render_sel sel = { NULL, 1, commit, 0, NULL, commit };

	return render_select(out, m, opts, &sel);
}

int tend_render_agent_opts(tend_render_result **out, const tend_manifest *m, const char *host,
			   const char *commit, const char *inputs_commit,
			   const tend_render_options *opts)
{
	render_sel sel = { host, 1, inputs_commit, 1, commit, commit };

	return render_select(out, m, opts, &sel);
}

int tend_render_fleet(tend_render_result **out, const tend_manifest *m, const char *commit)
{
	return tend_render_fleet_opts(out, m, commit, NULL);
}

void tend_render_result_free(tend_render_result *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n_outputs; i++) {
		free(r->outputs[i].host);
		free(r->outputs[i].path);
		free(r->outputs[i].dest);
		free(r->outputs[i].data);
	}
	free(r->outputs);
	free(r->commit);
	free(r);
}

const tend_render_output *tend_render_result_host(const tend_render_result *r, const char *host,
						  size_t *n)
{
	size_t lo = 0, hi = r->n_outputs, first;

	*n = 0;
	while (lo < hi) {   /* first output whose host is >= host */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(r->outputs[mid].host, host) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	while (lo < r->n_outputs && !strcmp(r->outputs[lo].host, host))
		lo++;
	*n = lo - first;
	return *n ? &r->outputs[first] : NULL;
}

const tend_render_output *tend_render_result_find(const tend_render_result *r, const char *host,
						  const char *path)
{
	const tend_render_output *o;
	size_t n, i;

	o = tend_render_result_host(r, host, &n);
	for (i = 0; i < n; i++)
		if (!strcmp(o[i].path, path))
			return &o[i];
	return NULL;
}

int tend_render_result_write_host(const tend_render_result *r, const char *host, const char *dir)
{
	const tend_render_output *o;
	size_t n, i;
	int error = 0;

	o = tend_render_result_host(r, host, &n);
	for (i = 0; i < n && !error; i++) {
		char *path = tend_path_join(dir, o[i].path), *slash;

		if (!path) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		slash = strrchr(path, '/');
		*slash = '\0';
		error = tend_dir_create_all(path, 0755);
		*slash = '/';
		if (!error)
			/* a render directory is re-created by rendering
			 * again: replaced atomically, not synced */
			error = tend_file_rewrite(path, o[i].data, o[i].len, o[i].mode);
		free(path);
	}
	return error;
}
