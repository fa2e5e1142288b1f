/* Traefik's file-provider dynamic configuration: one router and one service
 * per proxied service, forward auth and HTTP->HTTPS redirect middlewares, TLS
 * resolver per route; emitted as YAML. And the checks the JSON schema cannot do. */
#include "render/render_int.h"
#include "util/error.h"

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
