/* A fleet of 10,000 services on 50 hosts (each with a route, a database, an
 * OIDC client, settings and probes) renders with every service in place, and
 * the diff of two such renders finds exactly the one service removed. How
 * long that takes is measured by bench/run (docs/benchmarks.md). */
#include "tests/render/fixture.h"

#define N_HOSTS 50

#if defined(__SANITIZE_ADDRESS__)
/* ASan+UBSan builds check memory on a smaller fleet. */
#define N_SERVICES 2000
#else
#define N_SERVICES 10000
#endif

static tend_manifest *big_fleet(size_t n_services)
{
	tend_buf fleet = TEND_BUF_INIT;
	tend_manifest_source *srcs = calloc(n_services + 3, sizeof(*srcs));
	char **docs = calloc(n_services + 3, sizeof(*docs)), **names = calloc(n_services + 3, sizeof(*names));
	tend_manifest *m = NULL;
	tend_diags diags;
	size_t i, n = 0;
	int rc;

	memset(&diags, 0, sizeof(diags));
	tend_buf_puts(&fleet, "fleet: big\ndomain: big.test\nhosts:\n");
	for (i = 0; i < N_HOSTS; i++)
		tend_buf_printf(&fleet, "  h%02zu: {address: 10.1.%zu.%zu}\n", i, i / 200, i % 200 + 1);
	tend_buf_puts(&fleet, "proxy:\n  service: aaproxy\n  kind: traefik\n  routes_file: /etc/traefik/tend.yml\n"
		      "  tls:\n    inside: {kind: internal, suffixes: [.big.test]}\n    le: {kind: acme}\n"
		      "auth: {service: aaidp, forward_auth_url: \"http://10.1.0.2:9000/auth\"}\n");
	names[n] = strdup("aaproxy");
	docs[n++] = strdup("name: aaproxy\nhost: h00\n");
	names[n] = strdup("aaidp");
	docs[n++] = strdup("name: aaidp\nhost: h01\nprovides: [oidc, forward-auth]\n");
	names[n] = strdup("aapg");
	docs[n++] = strdup("name: aapg\nhost: h02\nprovides: [postgresql]\n");
	for (i = 0; i < n_services; i++, n++) {
		assert_true(asprintf(&names[n], "svc%05zu", i) > 0);
		assert_true(asprintf(&docs[n],
			"name: svc%05zu\nhost: h%02zu\n"
			"database: {engine: postgresql, name: db%05zu, user: u%05zu}\n"
			"proxy: {domain: s%05zu.%s, port: %zu, auth: %s}\n"
			"oidc: {client_id: c%05zu, redirect_uris: [\"https://s%05zu.big.test/cb\"]}\n"
			"health:\n  startup:\n    - http: {url: \"http://127.0.0.1:%zu/health\"}\n"
			"  liveness:\n    - tcp: {host: 127.0.0.1, port: %zu}\n"
			"settings: {workers: %zu, name: \"svc %zu\", flags: [a, b, c]}\n",
			i, 3 + i % (N_HOSTS - 3), i, i, i, i % 10 ? "big.test" : "example.org", 10000 + i % 50000,
			i % 7 ? "false" : "true", i, i, 10000 + i % 50000, 10000 + i % 50000, i % 16, i) > 0);
	}
	for (i = 0; i < n; i++) {
		srcs[i].name = names[i];
		srcs[i].data = docs[i];
		srcs[i].len = strlen(docs[i]);
	}
	rc = tend_manifest_load_sources(&m, &diags, fleet.ptr, fleet.size, srcs, n, NULL, NULL);
	if (rc < 0 && diags.count) {
		char *s = tend_diag_format(&diags.items[0]);
		fprintf(stderr, "%s\n", s);
		free(s);
	}
	assert_int_equal(rc, 0);
	tend_diags_dispose(&diags);
	for (i = 0; i < n; i++) {
		free(names[i]);
		free(docs[i]);
	}
	free(names);
	free(docs);
	free(srcs);
	tend_buf_dispose(&fleet);
	return m;
}

static void test_ten_thousand_services(void **state)
{
	tend_manifest *m, *m2;
	tend_render_result *r, *r2;
	tend_render_diff *d;
	const tend_render_output *o;
	size_t i, bytes = 0;
	char last[64], last_host[8];

	m = big_fleet(N_SERVICES);
	r = fx_render(m, "c0ffee", NULL);
	for (i = 0; i < r->n_outputs; i++)
		bytes += r->outputs[i].len;
	fprintf(stderr, "%zu services, %zu outputs, %zu bytes\n", m->n_services, r->n_outputs, bytes);
	assert_int_equal(m->n_services, N_SERVICES + 3);
	assert_int_equal(r->n_outputs, N_HOSTS + 1);
	snprintf(last, sizeof(last), "\"name\": \"db%05d\"", N_SERVICES - 1);
	o = tend_render_result_find(r, "h02", "hosts/h02.json");
	assert_non_null(strstr(o->data, last));
	snprintf(last, sizeof(last), "\"client_id\": \"c%05d\"", N_SERVICES - 1);
	o = tend_render_result_find(r, "h01", "hosts/h01.json");
	assert_non_null(strstr(o->data, last));

	/* One service fewer: the diff finds exactly it. */
	m2 = big_fleet(N_SERVICES - 1);
	r2 = fx_render(m2, "c0ffee2", NULL);
	snprintf(last_host, sizeof(last_host), "h%02d", 3 + (N_SERVICES - 1) % (N_HOSTS - 3));
	assert_int_equal(tend_render_diff_compute(&d, r, r2, NULL), 0);
	assert_true(d->differs);
	for (i = 0; i < d->n_hosts; i++) {
		const tend_render_host_diff *h = &d->hosts[i];
		unsigned total = h->services.removed + h->databases.removed + h->oidc_clients.removed + h->routes.removed;

		if (!strcmp(h->host, "h00") || !strcmp(h->host, "h01") || !strcmp(h->host, "h02") ||
		    !strcmp(h->host, last_host))   /* where the last service ran */
			assert_int_equal(total, 1);
		else
			assert_false(h->differs);
	}
	tend_render_diff_free(d);
	tend_render_result_free(r);
	tend_render_result_free(r2);
	tend_manifest_free(m);
	tend_manifest_free(m2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ten_thousand_services),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
