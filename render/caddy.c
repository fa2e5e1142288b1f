/* Caddy's native JSON configuration (chosen over a Caddyfile: it is what Caddy
 * runs, needs no adapter, and is rendered with sorted keys like everything else):
 * one HTTPS server whose routes match host (+ path prefix) and reverse_proxy to
 * the upstream, forward auth as Caddy's forward_auth expands (a reverse_proxy to
 * the auth service with rewrite + handle_response), TLS automation per domain. */
#include "render/render_int.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* scheme://host[:port][/path] into a Caddy dial address "host:port" and the rest. */
static int split_url(const char *url, int *https, char **dial, const char **rest)
{
	const char *p, *host, *end;
	int port;

	if (!strncmp(url, "http://", 7)) {
		*https = 0;
		p = url + 7;
	} else if (!strncmp(url, "https://", 8)) {
		*https = 1;
		p = url + 8;
	} else {
		return -1;
	}
	host = p;
	if (*p == '[') {
		if (!(p = strchr(p, ']')))
			return -1;
		p++;
	} else {
		while (*p && *p != ':' && *p != '/' && *p != '?')
			p++;
	}
	if (p == host)
		return -1;
	end = p;
	if (*p == ':') {
		char *e;
		long v = strtol(p + 1, &e, 10);

		if (e == p + 1 || v < 1 || v > 65535)
			return -1;
		port = (int)v;
		p = e;
	} else {
		port = *https ? 443 : 80;
	}
	if (*p && *p != '/' && *p != '?')
		return -1;
	*rest = p;
	return asprintf(dial, "%.*s:%d", (int)(end - host), host, port) < 0 ? -1 : 0;
}

static json_t *proxy_handler(const char *dial, int https)
{
	json_t *h = json_pack("{s:s, s:[{s:s}]}", "handler", "reverse_proxy", "upstreams", "dial", dial);

	if (h && https && tend_json_set(h, "transport", json_pack("{s:s, s:{}}", "protocol", "http", "tls")) < 0) {
		json_decref(h);
		return NULL;
	}
	return h;
}

/* What Caddy's `forward_auth` directive expands to: ask the auth service with a
 * GET to its URI carrying X-Forwarded-Method/Uri; a 2xx answer copies the listed
 * headers into the request and lets it continue, any other answer is returned
 * to the client as is (401, 403, or a redirect to the login page). */
static json_t *auth_handler(const tend_auth_config *a)
{
	json_t *h = NULL, *set = json_object();
	const char *rest;
	char *dial = NULL, *uri = NULL, *placeholder = NULL;
	int https;
	size_t i;

	if (!set)
		return NULL;
	if (split_url(a->forward_auth_url, &https, &dial, &rest) < 0) {
		char *pos = tend_render_pos_str(&a->pos);
		tend_error_set("%sauth.forward_auth_url '%s' is not an http(s) URL", pos ? pos : "",
			       a->forward_auth_url);
		free(pos);
		json_decref(set);
		return NULL;
	}
	for (i = 0; i < a->n_response_headers; i++) {
		free(placeholder);
		if (asprintf(&placeholder, "{http.reverse_proxy.header.%s}", a->response_headers[i]) < 0 ||
		    tend_json_set(set, a->response_headers[i], json_pack("[s]", placeholder)) < 0)
			goto oom;
	}
	if (asprintf(&uri, "%s%s", *rest == '/' ? "" : "/", rest) < 0)
		goto oom;
	h = proxy_handler(dial, https);
	if (!h ||
	    tend_json_set(h, "rewrite", json_pack("{s:s, s:s}", "method", "GET", "uri", uri)) < 0 ||
	    tend_json_set(h, "headers", json_pack("{s:{s:{s:[s], s:[s]}}}", "request", "set",
						  "X-Forwarded-Method", "{http.request.method}",
						  "X-Forwarded-Uri", "{http.request.uri}")) < 0 ||
	    tend_json_set(h, "handle_response",
			  json_pack("[{s:{s:[i]}, s:[{s:[{s:s, s:{s:O}}]}]}]",
				    "match", "status_code", 2,
				    "routes", "handle", "handler", "headers", "request", "set", set)) < 0)
		goto oom;
	json_decref(set);
	free(dial);
	free(uri);
	free(placeholder);
	return h;
oom:
	tend_error_set("out of memory");
	json_decref(h);
	json_decref(set);
	free(dial);
	free(uri);
	free(placeholder);
	return NULL;
}

static json_t *route_for(const tend_route *r, const tend_manifest *m)
{
	json_t *route = NULL, *match, *handle;
	const char *rest;
	char *dial = NULL, *path = NULL, *pos;
	int https;

	if (r->svc->proxy->n_middlewares) {
		pos = tend_render_pos_str(&r->svc->proxy->pos);
		tend_error_set("%sproxy.middlewares name Traefik middlewares; the fleet's proxy is Caddy",
			       pos ? pos : "");
		free(pos);
		return NULL;
	}
	if (split_url(r->upstream, &https, &dial, &rest) < 0 || (*rest && strcmp(rest, "/"))) {
		pos = tend_render_pos_str(&r->svc->proxy->pos);
		tend_error_set("%sproxy.upstream '%s': Caddy needs scheme://host[:port] without a path",
			       pos ? pos : "", r->upstream);
		free(pos);
		free(dial);
		return NULL;
	}
	/* "/app*" matches like Traefik's PathPrefix(`/app`). */
	if (strcmp(r->prefix, "/") && asprintf(&path, "%s*", r->prefix) < 0)
		goto oom;
	if (!(route = json_object()) || !(match = json_pack("{s:[s]}", "host", r->domain)) ||
	    tend_json_set(route, "match", json_pack("[o]", match)) < 0 ||
	    (path && tend_json_set(match, "path", json_pack("[s]", path)) < 0) ||
	    !(handle = json_array()) || tend_json_set(route, "handle", handle) < 0 ||
	    tend_json_set(route, "terminal", json_true()) < 0)
		goto oom;
	if (r->auth) {
		json_t *ah = auth_handler(m->auth);

		if (!ah)
			goto fail;
		if (tend_json_append(handle, ah) < 0)
			goto oom;
	}
	if (tend_json_append(handle, proxy_handler(dial, https)) < 0)
		goto oom;
	free(dial);
	free(path);
	return route;
oom:
	tend_error_set("out of memory");
fail:
	json_decref(route);
	free(dial);
	free(path);
	return NULL;
}

static json_t *issuer_for(const tend_tls_resolver *res)
{
	json_t *iss;

	if (res->kind == TEND_TLS_INTERNAL && !res->ca_url)
		return json_pack("{s:s}", "module", "internal");
	/* ACME, or an internal CA that speaks ACME (step-ca and the like). */
	iss = json_pack("{s:s}", "module", "acme");
	if (iss && res->ca_url && tend_json_set(iss, "ca", json_string(res->ca_url)) < 0)
		goto fail;
	if (iss && res->email && tend_json_set(iss, "email", json_string(res->email)) < 0)
		goto fail;
	return iss;
fail:
	json_decref(iss);
	return NULL;
}

/* One automation policy per resolver, subjects sorted (routes are sorted by domain). */
static int tls_policies(json_t **out, const tend_manifest *m, const tend_route *routes, size_t n)
{
	const tend_proxy_config *p = m->proxy;
	json_t *policies = json_array(), *subjects = NULL;
	size_t ri, i;

	if (!policies)
		return -1;
	for (ri = 0; ri < p->n_resolvers; ri++) {
		const char *last = NULL;

		if (!(subjects = json_array()))
			goto fail;
		for (i = 0; i < n; i++) {
			if (routes[i].resolver != &p->resolvers[ri])
				continue;
			if (last && !strcmp(last, routes[i].domain))
				continue;
			last = routes[i].domain;
			if (tend_json_append(subjects, json_string(last)) < 0)
				goto fail;
		}
		if (json_array_size(subjects) &&
		    tend_json_append(policies, json_pack("{s:o, s:[o]}", "subjects", subjects,
							 "issuers", issuer_for(&p->resolvers[ri]))) < 0) {
			subjects = NULL;
			goto fail;
		}
		if (!json_array_size(subjects))
			json_decref(subjects);
		subjects = NULL;
	}
	*out = policies;
	return 0;
fail:
	json_decref(subjects);
	json_decref(policies);
	return -1;
}

static char *listen_addr(const tend_render_eff *eff, int port)
{
	char *s = NULL;
	const char *a = eff->listen_address;

	if (a && strchr(a, ':'))
		return asprintf(&s, "[%s]:%d", a, port) < 0 ? NULL : s;
	return asprintf(&s, "%s:%d", a ? a : "", port) < 0 ? NULL : s;
}

int tend_render_caddy_build(json_t **out, const tend_manifest *m, const tend_route *routes,
			    size_t n, const tend_render_eff *eff)
{
	json_t *doc = NULL, *http = NULL, *servers, *tls_routes = NULL, *plain_routes = NULL, *policies = NULL;
	json_t *route;
	char *tls_listen = NULL, *plain_listen = NULL;
	size_t i;
	int error = -1;

	*out = NULL;
	/* One domain, one certificate issuer: Caddy cannot serve a domain from two policies. */
	for (i = 1; i < n; i++) {
		if (!strcmp(routes[i].domain, routes[i - 1].domain) && routes[i].resolver != routes[i - 1].resolver) {
			char *pos = tend_render_pos_str(&routes[i].svc->proxy->pos);
			tend_error_set("%sproxy.tls: domain '%s' is also served by service '%s' with a different TLS resolver",
				       pos ? pos : "", routes[i].domain, routes[i - 1].svc->name);
			free(pos);
			return TEND_EINVALID;
		}
	}
	if (!(doc = json_object()) || !(http = json_object()) || !(servers = json_object()) ||
	    tend_json_set(http, "servers", servers) < 0 ||
	    !(tls_routes = json_array()) || !(plain_routes = json_array()) ||
	    !(tls_listen = listen_addr(eff, eff->https_port)) || !(plain_listen = listen_addr(eff, eff->http_port)))
		goto oom;
	for (i = 0; i < n; i++) {
		if (!(route = route_for(&routes[i], m))) {
			error = TEND_EINVALID;
			goto out;
		}
		if (tend_json_append(routes[i].resolver && !eff->plain_http ? tls_routes : plain_routes, route) < 0)
			goto oom;
	}
	if (tend_json_set(http, "http_port", json_integer(eff->http_port)) < 0 ||
	    tend_json_set(http, "https_port", json_integer(eff->https_port)) < 0)
		goto oom;
	if (json_array_size(tls_routes)) {
		json_t *srv = json_pack("{s:[s], s:O}", "listen", tls_listen, "routes", tls_routes);

		if (!srv || tend_json_set(servers, "tend-https", srv) < 0)
			goto oom;
		if (!m->proxy->redirect_http &&
		    tend_json_set(srv, "automatic_https", json_pack("{s:b}", "disable_redirects", 1)) < 0)
			goto oom;
		if (tls_policies(&policies, m, routes, n) < 0 ||
		    tend_json_set(doc, "apps", json_pack("{s:O, s:{s:{s:o}}}", "http", http, "tls",
							 "automation", "policies", policies)) < 0)
			goto oom;
	} else if (tend_json_set(doc, "apps", json_pack("{s:O}", "http", http)) < 0) {
		goto oom;
	}
	if (json_array_size(plain_routes)) {
		json_t *srv = json_pack("{s:[s], s:O}", "listen", plain_listen, "routes", plain_routes);

		if (!srv || tend_json_set(servers, "tend-http", srv) < 0)
			goto oom;
		/* A server on the HTTP port gets no certificates; say so to be explicit. */
		if (tend_json_set(srv, "automatic_https", json_pack("{s:b}", "disable", 1)) < 0)
			goto oom;
	}
	if (eff->caddy_admin) {
		json_t *admin = !strcmp(eff->caddy_admin, "off") ? json_pack("{s:b}", "disabled", 1)
								 : json_pack("{s:s}", "listen", eff->caddy_admin);
		if (tend_json_set(doc, "admin", admin) < 0)
			goto oom;
	}
	*out = doc;
	doc = NULL;
	error = 0;
	goto out;
oom:
	tend_error_set("out of memory");
	error = TEND_ERROR;
out:
	json_decref(tls_routes);
	json_decref(plain_routes);
	json_decref(doc);
	json_decref(http);
	free(tls_listen);
	free(plain_listen);
	return error;
}

int tend_render_caddy_doc(json_t **out, const tend_manifest *m, const tend_render_options *opts)
{
	tend_render_eff eff;
	tend_route *routes = NULL;
	size_t n = 0;
	int error;

	*out = NULL;
	if (!m->proxy || m->proxy->kind != TEND_PROXY_CADDY) {
		tend_error_set("the fleet's proxy is not Caddy");
		return TEND_EINVALID;
	}
	tend_render_eff_init(&eff, m, opts);
	if ((error = tend_render_routes_collect(&routes, &n, m)) < 0)
		return error;
	error = tend_render_caddy_build(out, m, routes, n, &eff);
	tend_render_routes_free(routes, n);
	return error;
}
