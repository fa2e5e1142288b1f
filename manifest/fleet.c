/* fleet.yaml into the model: fleet facts, hosts, the proxy with its TLS
 * resolvers, the forward-auth provider and alert settings. */
#include "manifest/internal.h"
#include "util/beneath.h"
#include "util/error.h"
#include "util/window.h"

#include <string.h>

/* ---- fleet.yaml --------------------------------------------------------- */

static const char *const fleet_keys[] = { "fleet", "domain", "network", "agent_port", "hosts",
					  "proxy", "auth", "alerts", "apply_window", "operation",
					  "reboot_window", NULL };
static const char *const network_keys[] = { "internal_cidrs", NULL };
static const char *const host_keys[] = { "address", "role", "flake_attr", "age_recipient",
					 "agent_port", "apply_window", "operation", "reboot_window",
					 NULL };
static const char *const proxy_keys[] = { "service", "kind", "routes_file", "entrypoints", "ports",
					  "redirect_http", "tls", NULL };
static const char *const pair_keys[] = { "http", "https", NULL };
static const char *const resolver_keys[] = { "kind", "suffixes", "ca_url", "email", NULL };
static const char *const auth_keys[] = { "service", "forward_auth_url", "response_headers", NULL };
static const char *const alerts_keys[] = { "email", NULL };
static const char *const email_keys[] = { "to", "from", "smtp_url", NULL };

/* map[key], when present, a window as util/window.h reads it: *out keeps the text, *w the
 * window; both untouched when absent or invalid. */
static void parse_window(char **out, tend_window *win, tend_mctx *c, const tend_yaml_node *map,
			 const char *key)
{
	tend_window w;
	char *text = NULL;

	if (tend_mctx_string(&text, NULL, c, map, key, 0) < 0 || !text)
		return;
	if (tend_window_parse(&w, text) < 0) {
		size_t old = tend_mctx_push(c, key);

		tend_mctx_error(c, tend_yaml_map_get(map, key), "%s", tend_error_last());
		tend_error_clear();
		tend_mctx_pop(c, old);
		return;
	}
	*out = text;
	*win = w;
}

/* map[key], when present: "switch" or "boot" into *out (untouched when absent or invalid). */
static void parse_operation(tend_operation *out, tend_mctx *c, const tend_yaml_node *map)
{
	char *text = NULL;

	if (tend_mctx_string(&text, NULL, c, map, "operation", 0) < 0 || !text)
		return;
	if (!strcmp(text, "switch")) {
		*out = TEND_OPERATION_SWITCH;
	} else if (!strcmp(text, "boot")) {
		*out = TEND_OPERATION_BOOT;
	} else {
		size_t old = tend_mctx_push(c, "operation");

		tend_mctx_error(c, tend_yaml_map_get(map, "operation"),
				"unknown operation '%s' (expected switch or boot)", text);
		tend_mctx_pop(c, old);
	}
}

static void parse_host(tend_host *h, tend_host_aux *ha, tend_mctx *c, const tend_yaml_node *key,
		       const tend_yaml_node *v, const tend_manifest *m)
{
	int fleet_port = m->agent_port;
	size_t old = tend_mctx_push(c, key->value);

	h->name = tend_mctx_strdup(c, key);
	h->pos = tend_mctx_pos(c, key);
	h->agent_port = fleet_port;
	if (tend_check_name(h->name) < 0)
		tend_mctx_error(c, key, "invalid host name (use letters, digits, '-', '_', '.')");
	if (tend_mctx_expect_kind(c, v, TEND_YAML_MAP) < 0)
		goto out;
	tend_mctx_check_keys(c, v, host_keys);
	if (tend_mctx_string(&h->address, &ha->address, c, v, "address", 1) == 0 &&
	    tend_check_address(h->address) < 0) {
		size_t o2 = tend_mctx_push(c, "address");
		tend_mctx_error(c, tend_yaml_map_get(v, "address"),
				"'%s' is neither an IP address nor a DNS name", h->address);
		tend_mctx_pop(c, o2);
	}
	tend_mctx_string(&h->role, NULL, c, v, "role", 0);
	tend_mctx_string(&h->flake_attr, NULL, c, v, "flake_attr", 0);
	if (tend_mctx_string(&h->age_recipient, NULL, c, v, "age_recipient", 0) == 0 && h->age_recipient &&
	    strncmp(h->age_recipient, "age1", 4) && strncmp(h->age_recipient, "ssh-ed25519 ", 12) &&
	    strncmp(h->age_recipient, "ssh-rsa ", 8)) {
		size_t o2 = tend_mctx_push(c, "age_recipient");
		tend_mctx_error(c, tend_yaml_map_get(v, "age_recipient"),
				"expected an age recipient (age1...) or an SSH public key");
		tend_mctx_pop(c, o2);
	}
	tend_mctx_port(&h->agent_port, NULL, c, v, "agent_port", 0);
	h->apply_window = m->apply_window;
	h->window = m->window;
	parse_window(&h->apply_window, &h->window, c, v, "apply_window");
	h->operation = m->operation;
	parse_operation(&h->operation, c, v);
	h->reboot_window = m->reboot_window;
	h->reboot = m->reboot;
	parse_window(&h->reboot_window, &h->reboot, c, v, "reboot_window");
out:
	if (!h->flake_attr)
		h->flake_attr = h->name;
	tend_mctx_pop(c, old);
}

static void parse_proxy(tend_manifest *m, tend_fleet_aux *fa, tend_mctx *c,
			const tend_yaml_node *root)
{
	const tend_yaml_node *p = tend_mctx_enter_map(c, root, "proxy", 0, proxy_keys), *sub, *tls;
	tend_proxy_config *px;
	char *kind = NULL;
	size_t old, i;

	if (!p || !(px = tend_arena_alloc(c->arena, sizeof(*px))))
		return;
	m->proxy = px;
	px->pos = tend_mctx_key_pos(c, root, "proxy");
	px->entry_http = "web";
	px->entry_https = "websecure";
	px->http_port = 80;
	px->https_port = 443;
	px->redirect_http = 1;
	px->kind = TEND_PROXY_TRAEFIK;
	old = tend_mctx_push(c, "proxy");
	tend_mctx_string(&px->service, &fa->proxy_service, c, p, "service", 1);
	if (tend_mctx_string(&kind, NULL, c, p, "kind", 1) == 0) {
		if (!strcmp(kind, "traefik"))
			px->kind = TEND_PROXY_TRAEFIK;
		else if (!strcmp(kind, "caddy"))
			px->kind = TEND_PROXY_CADDY;
		else {
			size_t o2 = tend_mctx_push(c, "kind");
			tend_mctx_error(c, tend_yaml_map_get(p, "kind"),
					"unknown proxy kind '%s' (expected traefik or caddy)", kind);
			tend_mctx_pop(c, o2);
		}
	}
	if (tend_mctx_string(&px->routes_file, NULL, c, p, "routes_file", 1) == 0 &&
	    px->routes_file[0] != '/') {
		size_t o2 = tend_mctx_push(c, "routes_file");
		tend_mctx_error(c, tend_yaml_map_get(p, "routes_file"),
				"must be an absolute path on the proxy's host");
		tend_mctx_pop(c, o2);
	} else if (px->routes_file && tend_path_rel_check(px->routes_file + 1) < 0) {
		/* written beneath the agent's root: a ".." would leave it */
		size_t o2 = tend_mctx_push(c, "routes_file");
		tend_mctx_error(c, tend_yaml_map_get(p, "routes_file"),
				"must be a plain absolute path (no '..', '.' or empty component)");
		tend_mctx_pop(c, o2);
	}
	if ((sub = tend_mctx_enter_map(c, p, "entrypoints", 0, pair_keys))) {
		size_t o2 = tend_mctx_push(c, "entrypoints");
		tend_mctx_string(&px->entry_http, NULL, c, sub, "http", 0);
		tend_mctx_string(&px->entry_https, NULL, c, sub, "https", 0);
		tend_mctx_pop(c, o2);
	}
	if ((sub = tend_mctx_enter_map(c, p, "ports", 0, pair_keys))) {
		size_t o2 = tend_mctx_push(c, "ports");
		tend_mctx_port(&px->http_port, NULL, c, sub, "http", 0);
		tend_mctx_port(&px->https_port, NULL, c, sub, "https", 0);
		tend_mctx_pop(c, o2);
	}
	tend_mctx_bool(&px->redirect_http, NULL, c, p, "redirect_http");
	if ((tls = tend_mctx_enter_map(c, p, "tls", 0, NULL)) && tls->count) {
		size_t o2 = tend_mctx_push(c, "tls");
		px->resolvers = tend_arena_alloc(c->arena, tls->count * sizeof(*px->resolvers));
		for (i = 0; px->resolvers && i < tls->count; i++) {
			tend_tls_resolver *r = &px->resolvers[px->n_resolvers++];
			const tend_yaml_node *rv = tls->items[i];
			char *rk = NULL;
			size_t o3 = tend_mctx_push(c, tls->keys[i]->value);
			r->name = tend_mctx_strdup(c, tls->keys[i]);
			r->pos = tend_mctx_pos(c, tls->keys[i]);
			if (tend_mctx_expect_kind(c, rv, TEND_YAML_MAP) < 0) {
				tend_mctx_pop(c, o3);
				continue;
			}
			tend_mctx_check_keys(c, rv, resolver_keys);
			if (tend_mctx_string(&rk, NULL, c, rv, "kind", 1) == 0) {
				if (!strcmp(rk, "internal"))
					r->kind = TEND_TLS_INTERNAL;
				else if (!strcmp(rk, "acme"))
					r->kind = TEND_TLS_ACME;
				else {
					size_t o4 = tend_mctx_push(c, "kind");
					tend_mctx_error(c, tend_yaml_map_get(rv, "kind"),
							"unknown resolver kind '%s' (expected internal or acme)", rk);
					tend_mctx_pop(c, o4);
				}
			}
			tend_mctx_string_list(&r->suffixes, &r->n_suffixes, NULL, c, rv, "suffixes", 0);
			if (r->n_suffixes && r->kind == TEND_TLS_ACME) {
				size_t o4 = tend_mctx_push(c, "suffixes");
				tend_mctx_error(c, tend_yaml_map_get(rv, "suffixes"),
						"only internal resolvers take suffixes (an acme resolver serves every other domain)");
				tend_mctx_pop(c, o4);
			}
			tend_mctx_url(&r->ca_url, NULL, c, rv, "ca_url", 0, tend_http_schemes);
			tend_mctx_string(&r->email, NULL, c, rv, "email", 0);
			tend_mctx_pop(c, o3);
		}
		tend_mctx_pop(c, o2);
	}
	tend_mctx_pop(c, old);
}

static void parse_auth_alerts(tend_manifest *m, tend_fleet_aux *fa, tend_mctx *c,
			      const tend_yaml_node *root)
{
	const tend_yaml_node *a = tend_mctx_enter_map(c, root, "auth", 0, auth_keys), *e;
	size_t old;

	if (a && (m->auth = tend_arena_alloc(c->arena, sizeof(*m->auth)))) {
		m->auth->pos = tend_mctx_key_pos(c, root, "auth");
		old = tend_mctx_push(c, "auth");
		tend_mctx_string(&m->auth->service, &fa->auth_service, c, a, "service", 1);
		tend_mctx_url(&m->auth->forward_auth_url, NULL, c, a, "forward_auth_url", 1, tend_http_schemes);
		tend_mctx_string_list(&m->auth->response_headers, &m->auth->n_response_headers, NULL, c, a,
				"response_headers", 0);
		tend_mctx_pop(c, old);
	}
	a = tend_mctx_enter_map(c, root, "alerts", 0, alerts_keys);
	if (a && (m->alerts = tend_arena_alloc(c->arena, sizeof(*m->alerts)))) {
		m->alerts->pos = tend_mctx_key_pos(c, root, "alerts");
		old = tend_mctx_push(c, "alerts");
		if ((e = tend_mctx_enter_map(c, a, "email", 1, email_keys))) {
			size_t o2 = tend_mctx_push(c, "email");
			tend_mctx_string_list(&m->alerts->to, &m->alerts->n_to, NULL, c, e, "to", 1);
			tend_mctx_string(&m->alerts->from, NULL, c, e, "from", 0);
			tend_mctx_url(&m->alerts->smtp_url, NULL, c, e, "smtp_url", 0, tend_smtp_schemes);
			tend_mctx_pop(c, o2);
		}
		tend_mctx_pop(c, old);
	}
}

int tend_manifest__parse_fleet(tend_manifest *m, tend_fleet_aux *fa, tend_host_aux **haux,
			       tend_mctx *c, const tend_yaml_node *root)
{
	const tend_yaml_node *hosts, *net;
	size_t i;

	m->agent_port = 8470;
	*haux = NULL;
	if (!root) {
		tend_pos p = { c->file, 0, 0 };
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p, "empty document (expected a mapping with 'fleet', 'domain' and 'hosts')");
		return 0;
	}
	if (tend_mctx_expect_kind(c, root, TEND_YAML_MAP) < 0)
		return 0;
	fa->partial = 0;
	fa->proxy_written = tend_yaml_map_get(root, "proxy") != NULL;
	fa->auth_written = tend_yaml_map_get(root, "auth") != NULL;
	tend_mctx_check_keys(c, root, fleet_keys);
	if (tend_mctx_string(&m->fleet, NULL, c, root, "fleet", 1) == 0 && tend_check_name(m->fleet) < 0) {
		size_t old = tend_mctx_push(c, "fleet");
		tend_mctx_error(c, tend_yaml_map_get(root, "fleet"),
				"invalid fleet name '%s' (use letters, digits, '-', '_', '.')", m->fleet);
		tend_mctx_pop(c, old);
	}
	if (tend_mctx_string(&m->domain, NULL, c, root, "domain", 1) == 0 &&
	    tend_check_dns_name(m->domain) < 0) {
		size_t old = tend_mctx_push(c, "domain");
		tend_mctx_error(c, tend_yaml_map_get(root, "domain"), "'%s' is not a DNS name", m->domain);
		tend_mctx_pop(c, old);
	}
	if ((net = tend_mctx_enter_map(c, root, "network", 0, network_keys))) {
		size_t old = tend_mctx_push(c, "network");
		tend_pos *pp = NULL;
		if (tend_mctx_string_list(&m->internal_cidrs, &m->n_internal_cidrs, &pp, c, net,
				    "internal_cidrs", 0) == 0) {
			const tend_yaml_node *list = tend_yaml_map_get(net, "internal_cidrs");
			for (i = 0; i < m->n_internal_cidrs; i++) {
				if (tend_check_cidr(m->internal_cidrs[i]) == 0)
					continue;
				size_t o2 = tend_mctx_push(c, "internal_cidrs");
				size_t o3 = tend_mctx_push_index(c, i);
				tend_mctx_error(c, list->items[i], "'%s' is not a CIDR such as 10.0.0.0/24",
						m->internal_cidrs[i]);
				tend_mctx_pop(c, o3);
				tend_mctx_pop(c, o2);
			}
		}
		tend_mctx_pop(c, old);
	}
	tend_mctx_port(&m->agent_port, NULL, c, root, "agent_port", 0);
	parse_window(&m->apply_window, &m->window, c, root, "apply_window");
	parse_operation(&m->operation, c, root);
	parse_window(&m->reboot_window, &m->reboot, c, root, "reboot_window");
	hosts = tend_mctx_field(c, root, "hosts", 1);
	if (hosts) {
		size_t old = tend_mctx_push(c, "hosts");
		if (hosts->kind != TEND_YAML_MAP)
			fa->partial = 1;
		if (tend_mctx_expect_kind(c, hosts, TEND_YAML_MAP) == 0 && hosts->count) {
			m->hosts = tend_arena_alloc(c->arena, hosts->count * sizeof(*m->hosts));
			*haux = tend_arena_alloc(c->arena, hosts->count * sizeof(**haux));
			if (!m->hosts || !*haux)
				return TEND_ERROR;
			for (i = 0; i < hosts->count; i++)
				parse_host(&m->hosts[i], &(*haux)[i], c, hosts->keys[i], hosts->items[i],
					   m);
			m->n_hosts = hosts->count;
		} else if (hosts->kind == TEND_YAML_MAP) {
			tend_mctx_error(c, hosts, "a fleet needs at least one host");
		}
		tend_mctx_pop(c, old);
	}
	parse_proxy(m, fa, c, root);
	parse_auth_alerts(m, fa, c, root);
	return 0;
}
