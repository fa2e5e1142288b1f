/* The dependency graph questions of a loaded fleet: a service's direct and
 * implied dependencies, the deterministic dependency order, host dependencies,
 * and that a 10,000-service fleet loads, validates and orders (time: bench/). */
#include "tests/manifest/fixture.h"
#include "manifest/manifest.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tend_manifest *load_ok(const char *fleet, const char *const *svcs)
{
	char *text;
	tend_manifest *m = load(&text, fleet, svcs);

	if (!m)
		fail_msg("unexpected errors:\n%s", text);
	free(text);
	return m;
}

static void test_providers_resolved_and_deps(void **state)
{
	const char *svcs[] = {
		"postgresql", "name: postgresql\nhost: db1\nprovides: [postgresql]\n",
		"authentik", "name: authentik\nhost: apps1\nprovides: [oidc]\n"
			     "database: {engine: postgresql, name: ak, user: ak}\n",
		"traefik", "name: traefik\nhost: gateway\n",
		"grafana", "name: grafana\nhost: apps1\ndepends_on: [loki, postgresql]\n"
			   "database: {engine: postgresql, name: g, user: g, password_secret: pw}\n"
			   "oidc: {client_id: grafana, redirect_uris: ['https://g.lab.example.net/cb']}\n"
			   "proxy: {domain: g.lab.example.net, port: 3000, auth: true}\n"
			   "secrets: [{name: pw, file: secrets/pw.age}]\n",
		"loki", "name: loki\nhost: apps1\n",
		"zz-backup", "name: zz-backup\nhost: db1\n",
		"aa-tool", "name: aa-tool\nhost: gateway\ndepends_on: [zz-backup]\n",
		NULL
	};
	tend_manifest *m = load_ok(FLEET PROXY, svcs);
	const tend_service *g = tend_manifest_service(m, "grafana");
	const char **deps = NULL, **order = NULL;
	size_t n, i;

	(void)state;
	assert_string_equal(g->database->provider, "postgresql");
	assert_string_equal(g->oidc->provider, "authentik");
	assert_int_equal(tend_manifest_service_deps(&deps, &n, m, g), 0);
	/* depends_on, database provider (deduplicated), oidc and auth provider; sorted */
	assert_int_equal(n, 3);
	assert_string_equal(deps[0], "authentik");
	assert_string_equal(deps[1], "loki");
	assert_string_equal(deps[2], "postgresql");
	free(deps);
	assert_int_equal(tend_manifest_service_deps(&deps, &n, m, tend_manifest_service(m, "loki")), 0);
	assert_int_equal(n, 0);
	free(deps);

	assert_int_equal(tend_manifest_service_order(&order, m), 0);
	{
		/* dependencies first; among the ready ones the smallest name goes next */
		const char *expected[] = { "loki", "postgresql", "authentik", "grafana",
					   "traefik", "zz-backup", "aa-tool", NULL };
		for (i = 0; expected[i]; i++)
			assert_string_equal(order[i], expected[i]);
		assert_null(order[i]);
	}
	free(order);

	assert_int_equal(tend_manifest_host_deps(&deps, &n, m, "apps1"), 0);
	assert_int_equal(n, 1);
	assert_string_equal(deps[0], "db1");
	free(deps);
	assert_int_equal(tend_manifest_host_deps(&deps, &n, m, "gateway"), 0);
	assert_int_equal(n, 1);
	assert_string_equal(deps[0], "db1");
	free(deps);
	assert_int_equal(tend_manifest_host_deps(&deps, &n, m, "db1"), 0);
	assert_int_equal(n, 0);
	free(deps);
	assert_int_equal(tend_manifest_host_deps(&deps, &n, m, "nope"), TEND_ENOTFOUND);
	tend_manifest_free(m);
}

/* 10,000 services over 50 hosts with chains of dependencies, databases,
 * routes and probes load, validate and order with the right counts. How long
 * that takes is measured by bench/run (docs/benchmarks.md), not asserted here. */
static void test_ten_thousand_services(void **state)
{
	enum { N = 10000, H = 50 };
	tend_manifest_source *src = calloc(N, sizeof(*src));
	char **names = calloc(N, sizeof(char *)), **docs = calloc(N, sizeof(char *));
	tend_buf fleet = TEND_BUF_INIT;
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;
	const char **order = NULL;
	size_t i;

	(void)state;
	tend_buf_puts(&fleet, "fleet: big\ndomain: lab.example.net\nproxy: {service: s00000, kind: traefik, "
		      "routes_file: /x, tls: {ca: {kind: internal, suffixes: [.lab.example.net]}}}\nhosts:\n");
	for (i = 0; i < H; i++)
		tend_buf_printf(&fleet, "  h%03zu: {address: 10.0.%zu.%zu}\n", i, i / 250, i % 250 + 1);
	for (i = 0; i < N; i++) {
		size_t h = i * H / N;
		assert_true(asprintf(&names[i], "s%05zu", i) > 0);
		/* depend on the previous service and one 100 back, never on a later host */
		assert_true(asprintf(&docs[i],
			"name: s%05zu\nhost: h%03zu\ndepends_on: [%s%s%s]\n%s"
			"proxy: {domain: s%zu.lab.example.net, port: 8080}\n"
			"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:8080/health'}\n"
			"secrets: [{name: pw, file: secrets/x.age}]\nsettings: {a: 1}\n",
			i, h, i ? names[i - 1] : "", i >= 100 ? ", " : "", i >= 100 ? names[i - 100] : "",
			i == 0 ? "provides: [postgresql]\n" :
				 "database: {engine: postgresql, name: d, user: u, password_secret: pw}\n",
			i) > 0);
		src[i].name = names[i];
		src[i].data = docs[i];
		src[i].len = strlen(docs[i]);
	}
	assert_int_equal(tend_manifest_load_sources(&m, &diags, fleet.ptr, fleet.size, src, N,
						    exists_cb, NULL), 0);
	assert_int_equal(tend_manifest_service_order(&order, m), 0);
	assert_int_equal(m->n_services, N);
	assert_string_equal(order[0], "s00000");
	assert_string_equal(order[N - 1], "s09999");
	free(order);
	tend_manifest_free(m);
	tend_diags_dispose(&diags);
	for (i = 0; i < N; i++) {
		free(names[i]);
		free(docs[i]);
	}
	free(names);
	free(docs);
	free(src);
	tend_buf_dispose(&fleet);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_providers_resolved_and_deps),
		cmocka_unit_test(test_ten_thousand_services),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
