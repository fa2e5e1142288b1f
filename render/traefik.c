/* Traefik's file-provider dynamic configuration: one router and one service
 * per proxied service, forward auth and HTTP->HTTPS redirect middlewares, TLS
 * resolver per route; emitted as YAML. And the checks the JSON schema cannot do. */
#include "render/render_int.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MW_AUTH "tend-forward-auth"
#define MW_REDIRECT "tend-redirect-https"
#define ROUTER_REDIRECT "tend-redirect-http"

/* ["s"]: json_pack without parsing a format per router */
static json_t *one_string(const char *s)
{
	json_t *a = json_array();

	if (a && tend_json_append(a, json_string(s)) < 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *router_for(const tend_route *r, const tend_render_eff *eff)
{
	json_t *router = json_object(), *mws = json_array(), *tls;
	char *rule = NULL;
	size_t i;
	int ok;

	if (!router || !mws)
		goto fail;
	if (!strcmp(r->prefix, "/"))
		ok = asprintf(&rule, "Host(`%s`)", r->domain) >= 0;
	else
		ok = asprintf(&rule, "Host(`%s`) && PathPrefix(`%s`)", r->domain, r->prefix) >= 0;
	if (!ok)
		goto fail;
	if (tend_json_set(router, "rule", json_string(rule)) < 0 ||
	    tend_json_set(router, "service", json_string(r->svc->name)) < 0)
		goto fail;
	if (r->resolver) {
		if (tend_json_set(router, "entryPoints", one_string(eff->entry_https)) < 0 ||
		    !(tls = json_object()) || tend_json_set(router, "tls", tls) < 0 ||
		    tend_json_set(tls, "certResolver", json_string(r->resolver->name)) < 0)
			goto fail;
	} else if (tend_json_set(router, "entryPoints", one_string(eff->entry_http)) < 0) {
		goto fail;
	}
	if (r->auth && tend_json_append(mws, json_string(MW_AUTH)) < 0)
		goto fail;
	/* Extra middlewares are defined outside tend's file (another file of the
	 * file provider, or another provider): an unqualified name means @file. */
	for (i = 0; i < r->svc->proxy->n_middlewares; i++) {
		const char *name = r->svc->proxy->middlewares[i];
		char *q = NULL;

		if (!strchr(name, '@') && asprintf(&q, "%s@file", name) < 0)
			goto fail;
		ok = tend_json_append(mws, json_string(q ? q : name)) == 0;
		free(q);
		if (!ok)
			goto fail;
	}
	if (json_array_size(mws)) {
		if (json_object_set(router, "middlewares", mws) < 0)
			goto fail;
	}
	json_decref(mws);
	free(rule);
	return router;
fail:
	json_decref(router);
	json_decref(mws);
	free(rule);
	return NULL;
}

static json_t *service_for(const tend_route *r)
{
	json_t *svc = json_object(), *lb = json_object(), *servers = json_array(), *srv = json_object();

	if (!svc || !lb || !servers || !srv)
		goto fail;
	if (tend_json_set(srv, "url", json_string(r->upstream)) < 0)
		goto fail;
	if (json_array_append(servers, srv) < 0 || json_object_set(lb, "servers", servers) < 0 ||
	    json_object_set(svc, "loadBalancer", lb) < 0)
		goto fail;
	json_decref(lb);
	json_decref(servers);
	json_decref(srv);
	return svc;
fail:
	json_decref(svc);
	json_decref(lb);
	json_decref(servers);
	json_decref(srv);
	return NULL;
}

static int add_middlewares(json_t *mws, const tend_manifest *m, int need_auth, int need_redirect,
			   const tend_render_eff *eff)
{
	json_t *mw, *body;
	char port[16];

	if (need_auth) {
		const tend_auth_config *a = m->auth;

		if (!(mw = json_object()) || tend_json_set(mws, MW_AUTH, mw) < 0 ||
		    !(body = json_object()) || tend_json_set(mw, "forwardAuth", body) < 0 ||
		    tend_json_set(body, "address", json_string(a->forward_auth_url)) < 0 ||
		    tend_json_set(body, "trustForwardHeader", json_true()) < 0)
			return -1;
		if (a->n_response_headers &&
		    tend_json_set(body, "authResponseHeaders",
				  tend_json_str_array(a->response_headers, a->n_response_headers)) < 0)
			return -1;
	}
	if (need_redirect) {
		if (!(mw = json_object()) || tend_json_set(mws, MW_REDIRECT, mw) < 0 ||
		    !(body = json_object()) || tend_json_set(mw, "redirectScheme", body) < 0 ||
		    tend_json_set(body, "scheme", json_string("https")) < 0 ||
		    tend_json_set(body, "permanent", json_true()) < 0)
			return -1;
		if (eff->https_port != 443) {
			snprintf(port, sizeof(port), "%d", eff->https_port);
			if (tend_json_set(body, "port", json_string(port)) < 0)
				return -1;
		}
	}
	return 0;
}

int tend_render_traefik_build(json_t **out, const tend_manifest *m, const tend_route *routes,
			      size_t n, const tend_render_eff *eff)
{
	json_t *doc = json_object(), *http = json_object(), *routers = json_object(),
	       *services = json_object(), *mws = json_object(), *redirect;
	int need_auth = 0, any_tls = 0, error = -1;
	size_t i;

	*out = NULL;
	if (!doc || !http || !routers || !services || !mws)
		goto oom;
	for (i = 0; i < n; i++) {
		const tend_route *r = &routes[i];

		if (json_object_get(routers, r->svc->name)) {
			tend_error_set("service '%s' has two routes", r->svc->name);
			error = TEND_EINVALID;
			goto out;
		}
		if (tend_json_set(routers, r->svc->name, router_for(r, eff)) < 0 ||
		    tend_json_set(services, r->svc->name, service_for(r)) < 0)
			goto oom;
		need_auth |= r->auth;
		any_tls |= r->resolver != NULL;
	}
	if (json_object_get(routers, ROUTER_REDIRECT)) {
		tend_error_set("service name '%s' is reserved for tend's HTTP->HTTPS redirect router",
			       ROUTER_REDIRECT);
		error = TEND_EINVALID;
		goto out;
	}
	if (m->proxy->redirect_http && any_tls) {
		/* Lowest priority: plain-HTTP routes (no resolver) still win on the http entry point. */
		if (!(redirect = json_object()) || tend_json_set(routers, ROUTER_REDIRECT, redirect) < 0 ||
		    tend_json_set(redirect, "rule", json_string("PathPrefix(`/`)")) < 0 ||
		    tend_json_set(redirect, "entryPoints", one_string(eff->entry_http)) < 0 ||
		    tend_json_set(redirect, "middlewares", one_string(MW_REDIRECT)) < 0 ||
		    tend_json_set(redirect, "service", json_string("noop@internal")) < 0 ||
		    tend_json_set(redirect, "priority", json_integer(1)) < 0)
			goto oom;
	}
	if (add_middlewares(mws, m, need_auth, m->proxy->redirect_http && any_tls, eff) < 0)
		goto oom;
	if (json_object_set(http, "routers", routers) < 0 || json_object_set(http, "services", services) < 0 ||
	    (json_object_size(mws) && json_object_set(http, "middlewares", mws) < 0) ||
	    json_object_set(doc, "http", http) < 0)
		goto oom;
	if ((error = tend_render_traefik_check(doc)) < 0)
		goto out;
	*out = doc;
	doc = NULL;
	error = 0;
	goto out;
oom:
	tend_error_set("out of memory");
	error = TEND_ERROR;
out:
	json_decref(doc);
	json_decref(http);
	json_decref(routers);
	json_decref(services);
	json_decref(mws);
	return error;
}

int tend_render_traefik_yaml(char **out, size_t *len, const json_t *doc, const char *commit)
{
	tend_buf b = TEND_BUF_INIT;
	int error;

	if ((error = tend_buf_printf(&b, "# Generated by tend from commit %s. Do not edit: changes are overwritten.\n",
				     commit ? commit : "(working tree)")) < 0 ||
	    (error = tend_render_yaml_emit(&b, doc)) < 0) {
		tend_buf_dispose(&b);
		return error;
	}
	*len = b.size;
	*out = tend_buf_detach(&b);
	return 0;
}

int tend_render_traefik_doc(json_t **out, const tend_manifest *m, const tend_render_options *opts)
{
	tend_render_eff eff;
	tend_route *routes = NULL;
	size_t n = 0;
	int error;

	*out = NULL;
	if (!m->proxy || m->proxy->kind != TEND_PROXY_TRAEFIK) {
		tend_error_set("the fleet's proxy is not Traefik");
		return TEND_EINVALID;
	}
	tend_render_eff_init(&eff, m, opts);
	if ((error = tend_render_routes_collect(&routes, &n, m)) < 0)
		return error;
	error = tend_render_traefik_build(out, m, routes, n, &eff);
	tend_render_routes_free(routes, n);
	return error;
}

static int rule_check(const char *rule, const char **err, size_t *at);

/* ---- the file, streamed --------------------------------------------------
 * The routes file is the document above emitted as block YAML; written here
 * straight from the routes in that emitter's layout (keys sorted, strings
 * double-quoted), since building and freeing a jansson document of a router
 * and a service per route was most of rendering it. Whatever the document's
 * checks could refuse (a rule, an empty resolver name, a name taken twice or
 * reserved) sends the render down the document path for its exact message. */

typedef struct {
	tend_buf *b;
	int error;
} yw;

static void y_raw(yw *w, const char *s, size_t len)
{
	if (!w->error)
		w->error = tend_buf_put(w->b, s, len);
}

#define Y_LIT(w, lit) y_raw((w), "" lit "", sizeof(lit) - 1)

static void y_str(yw *w, const char *s)
{
	if (!w->error)
		w->error = tend_render_yaml_put_quoted(w->b, s, strlen(s));
}

/* indent spaces, then the key and ':' */
static void y_key(yw *w, unsigned indent, const char *key)
{
	static const char spaces[] = "                ";

	if (indent < sizeof(spaces))
		y_raw(w, spaces, indent);
	if (!w->error)
		w->error = tend_render_yaml_put_key(w->b, key);
}

static int route_name_cmp(const void *a, const void *b)
{
	return strcmp((*(const tend_route *const *)a)->svc->name, (*(const tend_route *const *)b)->svc->name);
}

static int rule_of(tend_buf *rule, const tend_route *r)
{
	tend_buf_clear(rule);
	if (!strcmp(r->prefix, "/"))
		return tend_buf_printf(rule, "Host(`%s`)", r->domain);
	return tend_buf_printf(rule, "Host(`%s`) && PathPrefix(`%s`)", r->domain, r->prefix);
}

/* A router as router_for builds it (indent 4: its name; 6: its fields). */
static void y_router(yw *w, const tend_route *r, const char *rule, const tend_render_eff *eff)
{
	size_t i;

	y_key(w, 4, r->svc->name);
	Y_LIT(w, "\n      entryPoints:\n        - ");
	y_str(w, r->resolver ? eff->entry_https : eff->entry_http);
	if (r->auth || r->svc->proxy->n_middlewares) {
		Y_LIT(w, "\n      middlewares:");
		if (r->auth) {
			Y_LIT(w, "\n        - ");
			y_str(w, MW_AUTH);
		}
		for (i = 0; i < r->svc->proxy->n_middlewares; i++) {
			const char *name = r->svc->proxy->middlewares[i];

			Y_LIT(w, "\n        - ");
			if (strchr(name, '@')) {
				y_str(w, name);
			} else if (!w->error) {   /* an unqualified name means @file */
				size_t nl = strlen(name);
				char *q = malloc(nl + 6);

				if (!q) {
					tend_error_set("out of memory");
					w->error = TEND_ERROR;
					return;
				}
				memcpy(q, name, nl);
				memcpy(q + nl, "@file", 6);
				y_str(w, q);
				free(q);
			}
		}
	}
	Y_LIT(w, "\n      rule: ");
	y_str(w, rule);
	Y_LIT(w, "\n      service: ");
	y_str(w, r->svc->name);
	if (r->resolver) {
		Y_LIT(w, "\n      tls:\n        certResolver: ");
		y_str(w, r->resolver->name);
	}
	Y_LIT(w, "\n");
}

static void y_redirect_router(yw *w, const tend_render_eff *eff)
{
	y_key(w, 4, ROUTER_REDIRECT);
	Y_LIT(w, "\n      entryPoints:\n        - ");
	y_str(w, eff->entry_http);
	Y_LIT(w, "\n      middlewares:\n        - ");
	y_str(w, MW_REDIRECT);
	Y_LIT(w, "\n      priority: 1\n      rule: ");
	y_str(w, "PathPrefix(`/`)");
	Y_LIT(w, "\n      service: ");
	y_str(w, "noop@internal");
	Y_LIT(w, "\n");
}

static void y_middlewares(yw *w, const tend_manifest *m, int need_auth, int need_redirect,
			  const tend_render_eff *eff)
{
	char port[16];
	size_t i;

	if (!need_auth && !need_redirect)
		return;
	Y_LIT(w, "  middlewares:\n");
	if (need_auth) {
		const tend_auth_config *a = m->auth;

		Y_LIT(w, "    " MW_AUTH ":\n      forwardAuth:\n        address: ");
		y_str(w, a->forward_auth_url);
		if (a->n_response_headers) {
			Y_LIT(w, "\n        authResponseHeaders:");
			for (i = 0; i < a->n_response_headers; i++) {
				Y_LIT(w, "\n          - ");
				y_str(w, a->response_headers[i]);
			}
		}
		Y_LIT(w, "\n        trustForwardHeader: true\n");
	}
	if (need_redirect) {
		Y_LIT(w, "    " MW_REDIRECT ":\n      redirectScheme:\n        permanent: true\n");
		if (eff->https_port != 443) {
			snprintf(port, sizeof(port), "%d", eff->https_port);
			Y_LIT(w, "        port: ");
			y_str(w, port);
			Y_LIT(w, "\n");
		}
		Y_LIT(w, "        scheme: \"https\"\n");
	}
}

/* 1: written; 0: the document path must say what is wrong; < 0: an error. */
static int stream_file(tend_buf *b, const tend_manifest *m, const tend_route *routes, size_t n,
		       const tend_render_eff *eff, const char *commit)
{
	const tend_route **byname = NULL;
	tend_buf rule = TEND_BUF_INIT;
	yw w = { b, 0 };
	int need_auth = 0, any_tls = 0, redirect, done = 0, rc = 0;
	const char *err;
	size_t i, at;

	if (n && !(byname = malloc(n * sizeof(*byname)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (i = 0; i < n; i++) {
		byname[i] = &routes[i];
		need_auth |= routes[i].auth;
		any_tls |= routes[i].resolver != NULL;
		if ((routes[i].auth && (!m->auth || !m->auth->forward_auth_url)) ||
		    (routes[i].resolver && !*routes[i].resolver->name) ||
		    !strcmp(routes[i].svc->name, ROUTER_REDIRECT))
			goto out;   /* the document's checks say what */
	}
	if (n > 1)
		qsort(byname, n, sizeof(*byname), route_name_cmp);
	for (i = 1; i < n; i++)
		if (!strcmp(byname[i]->svc->name, byname[i - 1]->svc->name))
			goto out;   /* two routes: the document path names the one it meets first */
	redirect = m->proxy->redirect_http && any_tls;
	if (tend_buf_printf(b, "# Generated by tend from commit %s. Do not edit: changes are overwritten.\n",
			    commit ? commit : "(working tree)") < 0) {
		rc = TEND_ERROR;
		goto out;
	}
	Y_LIT(&w, "http:\n");
	y_middlewares(&w, m, need_auth, redirect, eff);
	if (!n && !redirect) {
		Y_LIT(&w, "  routers: {}\n");
	} else {
		Y_LIT(&w, "  routers:\n");
		for (i = 0; i <= n && !w.error; i++) {
			/* the redirect router in its place among the names */
			if (redirect && (i == n || strcmp(ROUTER_REDIRECT, byname[i]->svc->name) < 0) &&
			    (i == 0 || strcmp(ROUTER_REDIRECT, byname[i - 1]->svc->name) > 0))
				y_redirect_router(&w, eff);
			if (i == n)
				break;
			if ((rc = rule_of(&rule, byname[i])) < 0)
				goto out;
			if (rule_check(rule.ptr, &err, &at) < 0)
				goto out;
			y_router(&w, byname[i], rule.ptr, eff);
		}
	}
	if (!n) {
		Y_LIT(&w, "  services: {}\n");
	} else {
		Y_LIT(&w, "  services:\n");
		for (i = 0; i < n && !w.error; i++) {
			y_key(&w, 4, byname[i]->svc->name);
			Y_LIT(&w, "\n      loadBalancer:\n        servers:\n          - url: ");
			y_str(&w, byname[i]->upstream);
			Y_LIT(&w, "\n");
		}
	}
	if ((rc = w.error) == 0)
		done = 1;
out:
	tend_buf_dispose(&rule);
	free(byname);
	return rc < 0 ? rc : done;
}

int tend_render_traefik_file(char **out, size_t *len, const tend_manifest *m, const tend_route *routes,
			     size_t n, const tend_render_eff *eff, const char *commit)
{
	tend_buf b = TEND_BUF_INIT;
	json_t *doc = NULL;
	int rc;

	if ((rc = stream_file(&b, m, routes, n, eff, commit)) == 1) {
		*len = b.size;
		*out = tend_buf_detach(&b);
		return 0;
	}
	tend_buf_dispose(&b);
	if (rc < 0)
		return rc;
	if ((rc = tend_render_traefik_build(&doc, m, routes, n, eff)) == 0)
		rc = tend_render_traefik_yaml(out, len, doc, commit);
	json_decref(doc);
	return rc;
}

/* ---- checks ------------------------------------------------------------ */

typedef struct {
	const char *s, *p;
	const char *err;
} rule_parser;

static void skip_ws(rule_parser *rp)
{
	while (*rp->p == ' ' || *rp->p == '\t' || *rp->p == '\n')
		rp->p++;
}

static int parse_or(rule_parser *rp, unsigned depth);

/* Matchers of Traefik v3 with their argument counts (min, max). */
static const struct { const char *name; int min, max; } matchers[] = {
	{ "ClientIP", 1, 1 }, { "Header", 2, 2 }, { "HeaderRegexp", 2, 2 }, { "Host", 1, 1 },
	{ "HostRegexp", 1, 1 }, { "Method", 1, 1 }, { "Path", 1, 1 }, { "PathPrefix", 1, 1 },
	{ "PathRegexp", 1, 1 }, { "Query", 1, 2 }, { "QueryRegexp", 1, 2 }, { NULL, 0, 0 }
};

static int parse_matcher(rule_parser *rp)
{
	const char *start = rp->p, *arg;
	size_t len, i, arglen;
	int argc = 0, which = -1;

	while ((*rp->p >= 'A' && *rp->p <= 'Z') || (*rp->p >= 'a' && *rp->p <= 'z'))
		rp->p++;
	len = (size_t)(rp->p - start);
	for (i = 0; matchers[i].name; i++)
		if (strlen(matchers[i].name) == len && !strncmp(matchers[i].name, start, len))
			which = (int)i;
	if (which < 0) {
		rp->err = len ? "unknown matcher" : "expected a matcher, '!' or '('";
		return -1;
	}
	skip_ws(rp);
	if (*rp->p != '(') {
		rp->err = "expected '(' after the matcher";
		return -1;
	}
	rp->p++;
	for (;;) {
		char q;

		skip_ws(rp);
		q = *rp->p;
		if (q != '`' && q != '"') {
			rp->err = "expected a `quoted` argument";
			return -1;
		}
		arg = ++rp->p;
		while (*rp->p && *rp->p != q)
			rp->p++;
		if (!*rp->p) {
			rp->err = "unterminated argument";
			return -1;
		}
		arglen = (size_t)(rp->p - arg);
		rp->p++;
		argc++;
		if (!arglen) {
			rp->err = "empty argument";
			return -1;
		}
		if (!strcmp(matchers[which].name, "PathPrefix") || !strcmp(matchers[which].name, "Path")) {
			if (arg[0] != '/') {
				rp->err = "path argument must start with '/'";
				return -1;
			}
		}
		skip_ws(rp);
		if (*rp->p == ',') {
			rp->p++;
			continue;
		}
		if (*rp->p == ')') {
			rp->p++;
			break;
		}
		rp->err = "expected ',' or ')'";
		return -1;
	}
	if (argc < matchers[which].min || argc > matchers[which].max) {
		rp->err = "wrong number of arguments for the matcher";
		return -1;
	}
	return 0;
}

static int parse_unary(rule_parser *rp, unsigned depth)
{
	if (depth > 32) {
		rp->err = "nested too deeply";
		return -1;
	}
	skip_ws(rp);
	if (*rp->p == '!') {
		rp->p++;
		return parse_unary(rp, depth + 1);
	}
	if (*rp->p == '(') {
		rp->p++;
		if (parse_or(rp, depth + 1) < 0)
			return -1;
		skip_ws(rp);
		if (*rp->p != ')') {
			rp->err = "expected ')'";
			return -1;
		}
		rp->p++;
		return 0;
	}
	return parse_matcher(rp);
}

static int parse_and(rule_parser *rp, unsigned depth)
{
	if (parse_unary(rp, depth) < 0)
		return -1;
	for (;;) {
		skip_ws(rp);
		if (strncmp(rp->p, "&&", 2))
			return 0;
		rp->p += 2;
		if (parse_unary(rp, depth) < 0)
			return -1;
	}
}

static int parse_or(rule_parser *rp, unsigned depth)
{
	if (parse_and(rp, depth) < 0)
		return -1;
	for (;;) {
		skip_ws(rp);
		if (strncmp(rp->p, "||", 2))
			return 0;
		rp->p += 2;
		if (parse_and(rp, depth) < 0)
			return -1;
	}
}

static int rule_check(const char *rule, const char **err, size_t *at)
{
	rule_parser rp = { rule, rule, NULL };

	if (parse_or(&rp, 0) == 0) {
		skip_ws(&rp);
		if (!*rp.p)
			return 0;
		rp.err = "unexpected text after the rule";
	}
	*err = rp.err;
	*at = (size_t)(rp.p - rule);
	return -1;
}

/* A reference is satisfied by this document, or by another provider ("x@internal"). */
static int ref_ok(const json_t *defs, const char *name)
{
	return strchr(name, '@') || json_object_get(defs, name);
}

int tend_render_traefik_check(const json_t *config)
{
	tend_buf problems = TEND_BUF_INIT;
	const json_t *http = json_object_get(config, "http");
	const json_t *routers = json_object_get(http, "routers");
	const json_t *services = json_object_get(http, "services");
	const json_t *mws = json_object_get(http, "middlewares");
	const char *name, *err;
	json_t *router;
	size_t count = 0, at, i;

	json_object_foreach((json_t *)routers, name, router) {
		const json_t *rule = json_object_get(router, "rule");
		const json_t *svc = json_object_get(router, "service");
		const json_t *list = json_object_get(router, "middlewares");
		const json_t *tls = json_object_get(router, "tls");

		if (!json_is_string(rule)) {
			tend_buf_printf(&problems, "%srouter '%s': no rule", count++ ? "\n" : "", name);
		} else if (rule_check(json_string_value(rule), &err, &at) < 0) {
			tend_buf_printf(&problems, "%srouter '%s': rule '%s': %s at offset %zu",
					count++ ? "\n" : "", name, json_string_value(rule), err, at);
		}
		if (!json_is_string(svc))
			tend_buf_printf(&problems, "%srouter '%s': no service", count++ ? "\n" : "", name);
		else if (!ref_ok(services, json_string_value(svc)))
			tend_buf_printf(&problems, "%srouter '%s': service '%s' is not defined",
					count++ ? "\n" : "", name, json_string_value(svc));
		for (i = 0; i < json_array_size(list); i++) {
			const json_t *mw = json_array_get(list, i);

			if (!json_is_string(mw) || !ref_ok(mws, json_string_value(mw)))
				tend_buf_printf(&problems, "%srouter '%s': middleware '%s' is not defined "
						"(define it, or qualify it with its provider: name@file)",
						count++ ? "\n" : "", name,
						json_is_string(mw) ? json_string_value(mw) : "?");
		}
		if (tls && json_object_get(tls, "certResolver") &&
		    (!json_is_string(json_object_get(tls, "certResolver")) ||
		     !*json_string_value(json_object_get(tls, "certResolver"))))
			tend_buf_printf(&problems, "%srouter '%s': empty tls.certResolver", count++ ? "\n" : "", name);
	}
	if (!count) {
		tend_buf_dispose(&problems);
		return 0;
	}
	tend_error_set("%s", problems.ptr ? problems.ptr : "out of memory");
	tend_buf_dispose(&problems);
	return TEND_EINVALID;
}
