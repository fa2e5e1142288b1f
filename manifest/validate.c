/* Cross-reference rules, once every document is parsed: hosts, depends_on and
 * providers name things that exist, secrets exist, routes and addresses are
 * unique, TLS resolvers and upstreams are resolved, and neither the service
 * graph nor the host graph has a cycle (a NixOS host switches as a whole). */
#include "manifest/internal.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdarg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NONE ((size_t)-1)

typedef struct {
	tend_manifest *m;
	const tend_fleet_aux *fa;
	tend_manifest_priv *priv;
	const tend_svc_aux *saux;
	tend_diags *diags;
	int any_unparsed;           /* a service.yaml did not parse: its `provides` are unknown */
	tend_dep_edge *edges;
	size_t n_edges, cap_edges;
	int oom;
} vctx;

static const char *service_name_at(const void *ctx, size_t i)
{
	return ((const tend_manifest *)ctx)->services[i].name;
}

static const char *host_name_at(const void *ctx, size_t i)
{
	return ((const tend_manifest *)ctx)->hosts[i].name;
}

static const char *resolver_name_at(const void *ctx, size_t i)
{
	return ((const tend_proxy_config *)ctx)->resolvers[i].name;
}

static size_t service_index(const tend_manifest *m, const char *name)
{
	const tend_service *s = tend_manifest_service(m, name);
	return s ? (size_t)(s - m->services) : NONE;
}

static size_t host_index(const tend_manifest *m, const char *name)
{
	const tend_host *h = tend_manifest_host(m, name);
	return h ? (size_t)(h - m->hosts) : NONE;
}

static void error_at(vctx *v, const tend_pos *pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void error_at(vctx *v, const tend_pos *pos, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tend_diags_add(v->diags, TEND_DIAG_ERROR, pos, "%s", msg);
}

/* " (did you mean 'x'?)" or "" */
static const char *hint_text(char *buf, size_t size, const char *hint)
{
	if (!hint)
		return "";
	snprintf(buf, size, " (did you mean '%s'?)", hint);
	return buf;
}

/* The service named `name` referenced from `what` at pos, or NONE (reported). */
static size_t resolve_service(vctx *v, const char *name, const tend_pos *pos, const char *what)
{
	size_t i = service_index(v->m, name);
	char hb[300];

	if (i == NONE)
		error_at(v, pos, "%s: unknown service '%s'%s", what, name,
			 hint_text(hb, sizeof(hb), tend_suggest(name, v->m, v->m->n_services,
								service_name_at)));
	return i;
}

static void add_edge(vctx *v, size_t from, size_t to, const tend_pos *pos, const char *why)
{
	if (v->n_edges == v->cap_edges) {
		size_t ncap = v->cap_edges ? v->cap_edges * 2 : 256;
		tend_dep_edge *n = realloc(v->edges, ncap * sizeof(*n));
		if (!n) {
			v->oom = 1;
			return;
		}
		v->edges = n;
		v->cap_edges = ncap;
	}
	v->edges[v->n_edges++] = (tend_dep_edge){ from, to, *pos, why };
}

static int provides(const tend_service *s, const char *cap)
{
	size_t i;

	for (i = 0; i < s->n_provides; i++)
		if (!strcmp(s->provides[i], cap))
			return 1;
	return 0;
}

static int has_secret(const tend_service *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n_secrets; i++)
		if (s->secrets[i].name && !strcmp(s->secrets[i].name, name))
			return 1;
	return 0;
}

/* The provider of a database engine or of OIDC: the named service, which must
 * provide the capability, or else the only service that provides it. */
static size_t resolve_provider(vctx *v, char **provider, const tend_pos *provider_pos,
			       const tend_pos *section_pos, const char *cap, const char *what,
			       const size_t *cap_list, size_t cap_n)
{
	size_t p;

	if (*provider) {
		char w[64];
		size_t wl = strlen(what) < sizeof(w) - 10 ? strlen(what) : sizeof(w) - 10;

		memcpy(w, what, wl);   /* "<what>.provider", without printf (per service) */
		memcpy(w + wl, ".provider", 10);
		if ((p = resolve_service(v, *provider, provider_pos, w)) == NONE)
			return NONE;
		if (!provides(&v->m->services[p], cap)) {
			if (!v->saux[p].parsed)
				return NONE;    /* its own error says why */
			error_at(v, provider_pos, "%s.provider: service '%s' does not provide '%s' "
				 "(add '%s' to its 'provides')", what, *provider, cap, cap);
			return NONE;
		}
		return p;
	}
	if (cap_n == 1) {
		*provider = v->m->services[cap_list[0]].name;
		return cap_list[0];
	}
	if (cap_n == 0 && v->any_unparsed)
		return NONE;            /* the provider may be the service that did not parse */
	if (cap_n == 0)
		error_at(v, section_pos, "%s: no service provides '%s' (a service declares "
			 "'provides: [%s]')", what, cap, cap);
	else
		error_at(v, section_pos, "%s: %zu services provide '%s' ('%s', '%s'%s); choose one "
			 "with '%s.provider'", what, cap_n, cap, v->m->services[cap_list[0]].name,
			 v->m->services[cap_list[1]].name, cap_n > 2 ? ", ..." : "", what);
	return NONE;
}

/* ---- hosts -------------------------------------------------------------- */

typedef struct {
	const tend_manifest *m;
	const tend_host_aux *haux;
} addr_sort;

/* by address, then by where the host is written (the first one keeps it) */
static int addr_cmp(const void *a, const void *b, void *arg)
{
	const addr_sort *as = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcasecmp(as->m->hosts[x].address, as->m->hosts[y].address);

	if (c)
		return c;
	if (as->haux[x].address.line != as->haux[y].address.line)
		return as->haux[x].address.line < as->haux[y].address.line ? -1 : 1;
	return x < y ? -1 : (x > y);
}

static void check_addresses(vctx *v, const tend_host_aux *haux)
{
	size_t *idx, n = 0, i;

	if (!v->m->n_hosts || !(idx = malloc(v->m->n_hosts * sizeof(*idx)))) {
		return;
	}
	for (i = 0; i < v->m->n_hosts; i++)
		if (v->m->hosts[i].address)
			idx[n++] = i;
	{
		addr_sort as = { v->m, haux };
		qsort_r(idx, n, sizeof(*idx), addr_cmp, &as);
	}
	for (i = 1; i < n; i++) {
		size_t first = i - 1;
		while (first > 0 && !strcasecmp(v->m->hosts[idx[first - 1]].address,
						 v->m->hosts[idx[i]].address))
			first--;
		if (strcasecmp(v->m->hosts[idx[first]].address, v->m->hosts[idx[i]].address))
			continue;
		error_at(v, &haux[idx[i]].address, "hosts.%s.address: %s is already the address of host '%s'",
			 v->m->hosts[idx[i]].name, v->m->hosts[idx[i]].address,
			 v->m->hosts[idx[first]].name);
	}
	free(idx);
}

/* ---- routes --------------------------------------------------------------- */

typedef struct {
	const char *domain;
	char path[256];
	size_t svc;
} route_key;

static int route_cmp(const void *a, const void *b)
{
	const route_key *x = a, *y = b;
	int c = strcasecmp(x->domain, y->domain);

	if (c)
		return c;
	if ((c = strcmp(x->path, y->path)))
		return c;
	return x->svc < y->svc ? -1 : (x->svc > y->svc);
}

static void check_routes(vctx *v)
{
	route_key *keys;
	size_t n = 0, i;

	if (!v->m->n_services || !(keys = malloc(v->m->n_services * sizeof(*keys))))
		return;
	for (i = 0; i < v->m->n_services; i++) {
		const tend_proxy_req *r = v->m->services[i].proxy;
		size_t len;
		if (!r || !r->domain)
			continue;
		keys[n].domain = r->domain;
		keys[n].svc = i;
		snprintf(keys[n].path, sizeof(keys[n].path), "%s", r->path_prefix ? r->path_prefix : "/");
		/* "/app" and "/app/" route the same requests */
		len = strlen(keys[n].path);
		while (len > 1 && keys[n].path[len - 1] == '/')
			keys[n].path[--len] = '\0';
		n++;
	}
	if (n > 1)
		qsort(keys, n, sizeof(*keys), route_cmp);
	for (i = 1; i < n; i++) {
		size_t first = i - 1;
		while (first > 0 && !strcasecmp(keys[first - 1].domain, keys[i].domain) &&
		       !strcmp(keys[first - 1].path, keys[i].path))
			first--;
		if (strcasecmp(keys[first].domain, keys[i].domain) || strcmp(keys[first].path, keys[i].path))
			continue;
		error_at(v, &v->saux[keys[i].svc].proxy_domain,
			 "proxy: route %s%s is already claimed by service '%s' (%s:%u:%u)",
			 keys[i].domain, keys[i].path, v->m->services[keys[first].svc].name,
			 v->saux[keys[first].svc].proxy_domain.file,
			 v->saux[keys[first].svc].proxy_domain.line,
			 v->saux[keys[first].svc].proxy_domain.col);
	}
	free(keys);
}

static int suffix_matches(const char *domain, const char *suffix)
{
	size_t d = strlen(domain), s = strlen(suffix);

	if (suffix[0] == '.') {
		if (d > s && !strcasecmp(domain + d - s, suffix))
			return 1;
		return !strcasecmp(domain, suffix + 1);
	}
	return d > s ? domain[d - s - 1] == '.' && !strcasecmp(domain + d - s, suffix)
		     : !strcasecmp(domain, suffix);
}

/* An explicit resolver must exist; otherwise the internal resolver with the
 * longest matching suffix, else the only ACME resolver ("dual horizon"). */
static void resolve_tls(vctx *v, tend_service *s, const tend_svc_aux *aux)
{
	const tend_proxy_config *px = v->m->proxy;
	tend_proxy_req *r = s->proxy;
	const char *best = NULL, *acme = NULL;
	size_t best_len = 0, n_acme = 0, i, j;
	char hb[300];

	if (r->tls) {
		for (i = 0; i < px->n_resolvers; i++)
			if (!strcmp(px->resolvers[i].name, r->tls))
				return;
		error_at(v, &aux->proxy_tls, "proxy.tls: unknown TLS resolver '%s'%s", r->tls,
			 hint_text(hb, sizeof(hb), tend_suggest(r->tls, px, px->n_resolvers,
								resolver_name_at)));
		return;
	}
	if (!px->n_resolvers || !r->domain)
		return;     /* plain HTTP: the fleet has no TLS resolvers */
	for (i = 0; i < px->n_resolvers; i++) {
		const tend_tls_resolver *res = &px->resolvers[i];
		if (res->kind == TEND_TLS_ACME) {
			acme = res->name;
			n_acme++;
		}
		if (res->kind != TEND_TLS_INTERNAL)
			continue;
		for (j = 0; j < res->n_suffixes; j++) {
			if (suffix_matches(r->domain, res->suffixes[j]) && strlen(res->suffixes[j]) > best_len) {
				best = res->name;
				best_len = strlen(res->suffixes[j]);
			}
		}
	}
	if (best)
		r->tls = (char *)best;
	else if (n_acme == 1)
		r->tls = (char *)acme;
	else if (n_acme == 0)
		error_at(v, &aux->proxy_domain, "proxy.domain: no TLS resolver serves '%s' (no internal "
			 "resolver's suffix matches and fleet.yaml has no acme resolver); set 'proxy.tls'",
			 r->domain);
	else
		error_at(v, &aux->proxy_domain, "proxy.domain: %zu acme resolvers could serve '%s'; "
			 "choose one with 'proxy.tls'", n_acme, r->domain);
}

static void check_route(vctx *v, size_t i, const tend_svc_aux *aux)
{
	tend_service *s = &v->m->services[i];
	tend_proxy_req *r = s->proxy;
	const tend_host *h;

	if (!v->m->proxy) {
		if (v->fa->partial || v->fa->proxy_written)
			return;     /* fleet.yaml's own error says why */
		error_at(v, &(tend_pos){ aux->proxy_domain.file, r->pos.line, r->pos.col },
			 "proxy: fleet.yaml has no 'proxy' to route %s through",
			 r->domain ? r->domain : "this service");
		return;
	}
	if (r->auth) {
		if (!v->m->auth && !v->fa->partial && !v->fa->auth_written)
			error_at(v, &aux->proxy_auth, "proxy.auth: fleet.yaml has no 'auth' provider "
				 "for forward authentication");
		else if (v->m->auth && v->m->auth->service && service_index(v->m, v->m->auth->service) != NONE)
			add_edge(v, i, service_index(v->m, v->m->auth->service), &aux->proxy_auth, "auth");
	}
	resolve_tls(v, s, aux);
	if (!r->upstream && r->port && s->host && (h = tend_manifest_host(v->m, s->host)) && h->address) {
		int v6 = strchr(h->address, ':') != NULL;
		char port[16], *d = port + sizeof(port);
		int x = r->port;

		*--d = '\0';
		do {   /* a port is 1-65535 */
			*--d = (char)('0' + x % 10);
			x /= 10;
		} while (x > 0);
		if (!(r->upstream = tend_mctx_concat(v->priv->arena, "http://", v6 ? "[" : "", h->address,
						     v6 ? "]:" : ":", d, NULL)))
			v->oom = 1;
	}
}

/* ---- cycles ------------------------------------------------------------- */

/* Tarjan's strongly connected components, iteratively (deep chains must not
 * overflow the stack). comp[i] gets the component id of node i. */
static int scc(size_t *comp, size_t n, const size_t *off, const size_t *to)
{
	size_t *idx = malloc(n * sizeof(size_t)), *low = malloc(n * sizeof(size_t));
	size_t *stk = malloc(n * sizeof(size_t)), *cs_v = malloc(n * sizeof(size_t));
	size_t *cs_k = malloc(n * sizeof(size_t));
	unsigned char *on = calloc(n ? n : 1, 1);
	size_t counter = 0, ncomp = 0, sp = 0, csp, s;
	int error = -1;

	if (!idx || !low || !stk || !cs_v || !cs_k || !on)
		goto out;
	for (s = 0; s < n; s++)
		idx[s] = NONE;
	for (s = 0; s < n; s++) {
		if (idx[s] != NONE)
			continue;
		idx[s] = low[s] = counter++;
		stk[sp++] = s;
		on[s] = 1;
		csp = 0;
		cs_v[csp] = s;
		cs_k[csp++] = off[s];
		while (csp) {
			size_t vtx = cs_v[csp - 1], k = cs_k[csp - 1];
			if (k < off[vtx + 1]) {
				size_t w = to[k];
				cs_k[csp - 1]++;
				if (idx[w] == NONE) {
					idx[w] = low[w] = counter++;
					stk[sp++] = w;
					on[w] = 1;
					cs_v[csp] = w;
					cs_k[csp++] = off[w];
				} else if (on[w] && idx[w] < low[vtx]) {
					low[vtx] = idx[w];
				}
				continue;
			}
			csp--;
			if (csp && low[vtx] < low[cs_v[csp - 1]])
				low[cs_v[csp - 1]] = low[vtx];
			if (low[vtx] == idx[vtx]) {
				size_t w;
				do {
					w = stk[--sp];
					on[w] = 0;
					comp[w] = ncomp;
				} while (w != vtx);
				ncomp++;
			}
		}
	}
	error = 0;
out:
	free(idx);
	free(low);
	free(stk);
	free(cs_v);
	free(cs_k);
	free(on);
	return error;
}

/* Calls report(path, len) once per cycle-forming component, with a shortest
 * cycle through the component's first node (by index, which is by name). */
typedef void (*cycle_fn)(vctx *v, const size_t *path, size_t len, void *payload);

static int find_cycles(vctx *v, size_t n, const size_t *off, const size_t *to, cycle_fn report,
		       void *payload)
{
	size_t *comp = malloc((n ? n : 1) * sizeof(size_t)), *parent = malloc((n ? n : 1) * sizeof(size_t));
	size_t *queue = malloc((n ? n : 1) * sizeof(size_t)), *path = malloc((n ? n : 1) * sizeof(size_t));
	unsigned char *seen_comp = calloc(n ? n : 1, 1);
	size_t s, k;
	int error = -1, found = 0;

	if (!comp || !parent || !queue || !path || !seen_comp || scc(comp, n, off, to) < 0)
		goto out;
	for (s = 0; s < n; s++)
		parent[s] = NONE;
	for (s = 0; s < n; s++) {
		size_t head = 0, tail = 0, last = NONE, len = 0, x;
		if (seen_comp[comp[s]])
			continue;
		seen_comp[comp[s]] = 1;
		/* s is the component's first node; BFS inside it back to s */
		parent[s] = s;
		queue[tail++] = s;
		while (head < tail && last == NONE) {
			size_t u = queue[head++];
			for (k = off[u]; k < off[u + 1]; k++) {
				size_t w = to[k];
				if (w == s) {
					last = u;
					break;
				}
				if (comp[w] != comp[s] || parent[w] != NONE)
					continue;
				parent[w] = u;
				queue[tail++] = w;
			}
		}
		if (last != NONE) {
			for (x = last; x != s; x = parent[x])
				path[len++] = x;
			path[len++] = s;
			for (k = 0; k < len / 2; k++) {
				size_t t = path[k];
				path[k] = path[len - 1 - k];
				path[len - 1 - k] = t;
			}
			report(v, path, len, payload);
			found++;
		}
		for (k = 0; k < tail; k++)
			parent[queue[k]] = NONE;
	}
	error = found;
out:
	free(comp);
	free(parent);
	free(queue);
	free(path);
	free(seen_comp);
	return error;
}

static const tend_dep_edge *edge_between(const tend_manifest_priv *p, size_t from, size_t to)
{
	size_t lo = p->off[from], hi = p->off[from + 1];

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->edges[mid].to == to)
			return &p->edges[mid];
		if (p->edges[mid].to < to)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void report_service_cycle(vctx *v, const size_t *path, size_t len, void *payload)
{
	tend_buf msg = TEND_BUF_INIT;
	const tend_dep_edge *e = edge_between(v->priv, path[0], path[len > 1 ? 1 : 0]);
	size_t i;

	(void)payload;
	tend_buf_puts(&msg, "dependency cycle: ");
	for (i = 0; i < len; i++)
		tend_buf_printf(&msg, "%s -> ", v->m->services[path[i]].name);
	tend_buf_puts(&msg, v->m->services[path[0]].name);
	tend_diags_add(v->diags, TEND_DIAG_ERROR, e ? &e->pos : &v->m->services[path[0]].pos, "%s", msg.ptr ? msg.ptr : "dependency cycle");
	tend_buf_dispose(&msg);
}

typedef struct {
	size_t *via;        /* parallel to host_to: the service edge behind each host edge */
} host_graph;

static const char *need_text(const tend_dep_edge *e)
{
	if (!strcmp(e->why, "database"))
		return "needs its database from";
	if (!strcmp(e->why, "oidc"))
		return "is an OIDC client of";
	if (!strcmp(e->why, "auth"))
		return "is behind the forward auth of";
	return "needs";
}

static void report_host_cycle(vctx *v, const size_t *path, size_t len, void *payload)
{
	const host_graph *hg = payload;
	const tend_manifest_priv *p = v->priv;
	tend_buf msg = TEND_BUF_INIT;
	const tend_dep_edge *first = NULL;
	size_t i, k;

	tend_buf_printf(&msg, "a NixOS host switches as a whole, so hosts cannot depend on each other %s: ",
			len == 2 ? "in both directions" : "in a cycle");
	for (i = 0; i < len; i++) {
		size_t a = path[i], b = path[(i + 1) % len];
		const tend_dep_edge *e = NULL;
		for (k = p->host_off[a]; k < p->host_off[a + 1]; k++)
			if (p->host_to[k] == b)
				e = &p->edges[hg->via[k]];
		if (!e)
			continue;
		if (!first)
			first = e;
		tend_buf_printf(&msg, "%s%s -> %s (%s %s %s)", i == 0 ? "" : i + 1 == len ? " and " : ", ",
				v->m->hosts[a].name, v->m->hosts[b].name, v->m->services[e->from].name,
				need_text(e), v->m->services[e->to].name);
	}
	tend_diags_add(v->diags, TEND_DIAG_ERROR, first ? &first->pos : &v->m->hosts[path[0]].pos, "%s", msg.ptr ? msg.ptr : "host cycle");
	tend_buf_dispose(&msg);
}

static int edge_cmp(const void *a, const void *b)
{
	const tend_dep_edge *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	return x->pos.col < y->pos.col ? -1 : (x->pos.col > y->pos.col);
}

typedef struct {
	size_t from, to, via;
} host_edge;

static int host_edge_cmp(const void *a, const void *b)
{
	const host_edge *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return x->via < y->via ? -1 : (x->via > y->via);
}

/* Sort and deduplicate the service edges into CSR form, then the host graph. */
static int build_graphs(vctx *v, host_graph *hg)
{
	tend_manifest_priv *p = v->priv;
	size_t ns = v->m->n_services, nh = v->m->n_hosts, i, j, nhe = 0;
	host_edge *he = NULL;
	int error = -1;

	if (v->n_edges > 1)
		qsort(v->edges, v->n_edges, sizeof(*v->edges), edge_cmp);
	for (i = j = 0; i < v->n_edges; i++) {
		if (j && v->edges[j - 1].from == v->edges[i].from && v->edges[j - 1].to == v->edges[i].to)
			continue;
		v->edges[j++] = v->edges[i];
	}
	p->edges = v->edges;
	p->n_edges = j;
	v->edges = NULL;
	if (!(p->off = calloc(ns + 1, sizeof(size_t))) || !(p->host_off = calloc(nh + 1, sizeof(size_t))))
		goto out;
	for (i = 0; i < p->n_edges; i++)
		p->off[p->edges[i].from + 1]++;
	for (i = 0; i < ns; i++)
		p->off[i + 1] += p->off[i];

	if (p->n_edges && !(he = malloc(p->n_edges * sizeof(*he))))
		goto out;
	for (i = 0; i < p->n_edges; i++) {
		size_t a = p->svc_host[p->edges[i].from], b = p->svc_host[p->edges[i].to];
		if (a == NONE || b == NONE || a == b)
			continue;
		he[nhe++] = (host_edge){ a, b, i };
	}
	if (nhe > 1)
		qsort(he, nhe, sizeof(*he), host_edge_cmp);
	for (i = j = 0; i < nhe; i++) {
		if (j && he[j - 1].from == he[i].from && he[j - 1].to == he[i].to)
			continue;
		he[j++] = he[i];
	}
	nhe = j;
	if (!(p->host_to = malloc((nhe ? nhe : 1) * sizeof(size_t))) ||
	    !(hg->via = malloc((nhe ? nhe : 1) * sizeof(size_t))))
		goto out;
	for (i = 0; i < nhe; i++) {
		p->host_off[he[i].from + 1]++;
		p->host_to[i] = he[i].to;
		hg->via[i] = he[i].via;
	}
	for (i = 0; i < nh; i++)
		p->host_off[i + 1] += p->host_off[i];
	error = 0;
out:
	free(he);
	return error;
}

/* ---- entry ------------------------------------------------------------------ */

static const char *const caps[] = { "postgresql", "mysql", "oidc", NULL };

int tend_manifest__validate(tend_manifest *m, const tend_fleet_aux *fa, const tend_host_aux *haux,
			    const tend_svc_aux *saux, tend_diags *diags,
			    int (*exists)(const char *rel, void *payload), void *payload)
{
	vctx v;
	host_graph hg = { NULL };
	size_t *cap_list[3] = { NULL, NULL, NULL }, cap_n[3] = { 0, 0, 0 };
	size_t *to = NULL, i, j, k;
	char hb[300];
	int error = TEND_ERROR, cycles;

	memset(&v, 0, sizeof(v));
	v.m = m;
	v.fa = fa;
	v.priv = m->priv;
	v.saux = saux;
	v.diags = diags;
	if (!(v.priv->svc_host = malloc((m->n_services ? m->n_services : 1) * sizeof(size_t))))
		goto out;
	for (k = 0; k < 3; k++)
		if (!(cap_list[k] = malloc((m->n_services ? m->n_services : 1) * sizeof(size_t))))
			goto out;

	check_addresses(&v, haux);
	if (m->proxy && m->proxy->service)
		resolve_service(&v, m->proxy->service, &fa->proxy_service, "proxy.service");
	if (m->auth && m->auth->service)
		resolve_service(&v, m->auth->service, &fa->auth_service, "auth.service");

	for (i = 0; i < m->n_services; i++)
		v.any_unparsed |= !saux[i].parsed;
	for (i = 0; i < m->n_services; i++)
		for (k = 0; caps[k]; k++)
			if (provides(&m->services[i], caps[k]))
				cap_list[k][cap_n[k]++] = i;

	for (i = 0; i < m->n_services; i++) {
		tend_service *s = &m->services[i];
		const tend_svc_aux *a = &saux[i];
		size_t p;

		v.priv->svc_host[i] = NONE;
		if (s->host && (v.priv->svc_host[i] = host_index(m, s->host)) == NONE && !fa->partial)
			error_at(&v, &a->host, "host: unknown host '%s'%s", s->host,
				 hint_text(hb, sizeof(hb), tend_suggest(s->host, m, m->n_hosts, host_name_at)));
		for (j = 0; j < s->n_depends_on; j++) {
			char w[64], *d = w + sizeof(w);
			size_t x = j;

			/* "depends_on[<j>]", without printf (per dependency) */
			*--d = '\0';
			*--d = ']';
			do {
				*--d = (char)('0' + x % 10);
				x /= 10;
			} while (x);
			memcpy(d - 11, "depends_on[", 11);
			d -= 11;
			if ((p = resolve_service(&v, s->depends_on[j], &s->depends_on_pos[j], d)) != NONE)
				add_edge(&v, i, p, &s->depends_on_pos[j], "depends_on");
		}
		if (s->database && s->database->engine) {
			k = !strcmp(s->database->engine, "postgresql") ? 0 : 1;
			p = resolve_provider(&v, &s->database->provider, &a->db_provider, &s->database->pos,
					     s->database->engine, "database", cap_list[k], cap_n[k]);
			if (p != NONE)
				add_edge(&v, i, p, s->database->provider && a->db_provider.line ?
					 &a->db_provider : &s->database->pos, "database");
		}
		if (s->database && s->database->password_secret && !has_secret(s, s->database->password_secret))
			error_at(&v, &a->db_password, "database.password_secret: '%s' is not one of this "
				 "service's secrets", s->database->password_secret);
		if (s->oidc) {
			p = resolve_provider(&v, &s->oidc->provider, &a->oidc_provider, &s->oidc->pos,
					     "oidc", "oidc", cap_list[2], cap_n[2]);
			if (p != NONE && p != i)
				add_edge(&v, i, p, a->oidc_provider.line ? &a->oidc_provider : &s->oidc->pos, "oidc");
			if (s->oidc->client_secret && !has_secret(s, s->oidc->client_secret))
				error_at(&v, &a->oidc_secret, "oidc.client_secret: '%s' is not one of this "
					 "service's secrets", s->oidc->client_secret);
		}
		if (s->proxy)
			check_route(&v, i, a);
		for (j = 0; exists && j < s->n_secrets; j++) {
			const tend_secret_decl *sec = &s->secrets[j];
			if (sec->file && a->secret_file && !exists(sec->file, payload))
				error_at(&v, &a->secret_file[j], "secrets[%zu].file: '%s' does not exist in "
					 "the repository", j, sec->file);
		}
	}
	check_routes(&v);
	if (v.oom || build_graphs(&v, &hg) < 0)
		goto out;
	if (!(to = malloc((v.priv->n_edges ? v.priv->n_edges : 1) * sizeof(size_t))))
		goto out;
	for (i = 0; i < v.priv->n_edges; i++)
		to[i] = v.priv->edges[i].to;
	if ((cycles = find_cycles(&v, m->n_services, v.priv->off, to, report_service_cycle, NULL)) < 0)
		goto out;
	/* a service cycle across hosts is also a host cycle: report it once */
	if (cycles == 0 && find_cycles(&v, m->n_hosts, v.priv->host_off, v.priv->host_to,
				       report_host_cycle, &hg) < 0)
		goto out;
	error = 0;
out:
	if (error < 0 && !strcmp(tend_error_last(), "unknown error"))
		tend_error_set("out of memory");
	free(v.edges);
	free(hg.via);
	free(to);
	for (k = 0; k < 3; k++)
		free(cap_list[k]);
	return error;
}
