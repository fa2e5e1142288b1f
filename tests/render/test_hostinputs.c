/* Per-host NixOS inputs (render/hostinputs.c): each host gets the services it
 * runs (typed settings, probes, secret paths but never values) and what other
 * services ask of it: databases, OIDC clients, routes. */
#include "tests/render/fixture.h"

static const char *const FLEET =
	"fleet: hi\n"
	"domain: lab.test\n"
	"agent_port: 9000\n"
	"network: {internal_cidrs: [10.9.0.0/24]}\n"
	"hosts:\n"
	"  gw: {address: 10.9.0.1, role: gateway}\n"
	"  db1: {address: 10.9.0.2, flake_attr: database-one, agent_port: 9100}\n"
	"  apps: {address: 10.9.0.3}\n"
	"  idp: {address: 10.9.0.4}\n"
	"  spare: {address: 10.9.0.5}\n"
	"proxy:\n"
	"  service: traefik\n"
	"  kind: traefik\n"
	"  routes_file: /var/lib/traefik/tend.yml\n"
	"  tls: {inside: {kind: internal, suffixes: [.lab.test]}}\n"
	"auth: {service: sso, forward_auth_url: \"http://10.9.0.4:9000/auth\"}\n";

static const char *const SERVICES[] = {
	"traefik", "name: traefik\nhost: gw\n",
	"postgresql", "name: postgresql\nhost: db1\nprovides: [postgresql]\n",
	"mariadb", "name: mariadb\nhost: db1\nprovides: [mysql]\n",
	"sso", "name: sso\nhost: idp\nprovides: [oidc, forward-auth]\n",
	"wiki",
	"name: wiki\n"
	"host: apps\n"
	"depends_on: [cache]\n"
	"database: {engine: postgresql, name: wiki, user: wiki_user, password_secret: db-password,"
	" extensions: [pg_trgm, vector]}\n"
	"proxy: {domain: wiki.lab.test, port: 8080, auth: true}\n"
	"oidc: {client_id: wiki-client, redirect_uris: [\"https://wiki.lab.test/cb\", \"https://wiki.lab.test/cb2\"],"
	" client_secret: oidc-secret}\n"
	"health:\n"
	"  startup:\n"
	"    - http: {url: \"http://127.0.0.1:8080/health\", status: 204, body: ok}\n"
	"      interval: 1m30s\n"
	"      timeout: 500ms\n"
	"      retries: 7\n"
	"      grace: 2s\n"
	"  liveness:\n"
	"    - tcp: {host: 127.0.0.1, port: 8080}\n"
	"    - command: [systemctl, is-active, wiki.service]\n"
	"secrets:\n"
	"  - {name: db-password, file: secrets/wiki/db.age, owner: wiki, group: wiki, restart: [wiki.service]}\n"
	"  - {name: oidc-secret, file: secrets/wiki/oidc.age, mode: \"0440\"}\n"
	"settings:\n"
	"  port: 8080\n"
	"  ratio: 0.25\n"
	"  enabled: true\n"
	"  disabled: False\n"
	"  nothing: null\n"
	"  tilde: ~\n"
	"  quoted_num: \"8080\"\n"
	"  quoted_bool: 'true'\n"
	"  hex: 0x1F\n"
	"  exp: 1e3\n"
	"  negative: -12\n"
	"  text: hello world\n"
	"  yes_word: yes\n"
	"  big: 123456789012345678901234567890\n"
	"  nested: {list: [1, \"2\", three, {deep: 1.5}]}\n",
	"blog", "name: blog\nhost: apps\ndatabase: {engine: mysql, name: blog, user: blogger}\n",
	"cache", "name: cache\nhost: apps\n",
	NULL
};

typedef struct {
	char *dir;
	tend_manifest *m;
	tend_render_result *r;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->dir = fx_repo("hostinputs", FLEET, SERVICES);
	test_write_file(f->dir, "secrets/wiki/db.age", "SUPERSECRET-VALUE-1\n");
	test_write_file(f->dir, "secrets/wiki/oidc.age", "SUPERSECRET-VALUE-2\n");
	f->m = fx_load(f->dir);
	f->r = fx_render(f->m, "feedface", NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tend_render_result_free(f->r);
	tend_manifest_free(f->m);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

#define S(j) json_string_value(j)
#define I(j) json_integer_value(j)
#define G(o, k) json_object_get(o, k)
#define A(a, i) json_array_get(a, i)

static void test_every_host_has_inputs(void **state)
{
	fixture *f = *state;
	const char *hosts[] = { "apps", "db1", "gw", "idp", "spare" };
	const tend_render_output *o;
	size_t i, n;

	for (i = 0; i < 5; i++) {
		char path[64], dest[64];

		snprintf(path, sizeof(path), "hosts/%s.json", hosts[i]);
		snprintf(dest, sizeof(dest), ".tend/hosts/%s.json", hosts[i]);
		o = tend_render_result_find(f->r, hosts[i], path);
		assert_non_null(o);
		assert_int_equal(o->kind, TEND_OUTPUT_HOST_INPUTS);
		assert_string_equal(o->dest, dest);
		assert_false(o->dest_absolute);
		assert_int_equal(o->mode, 0644);
		assert_null(strstr(o->data, "SUPERSECRET"));
	}
	o = tend_render_result_host(f->r, "gw", &n);
	assert_int_equal(n, 2);
	assert_string_equal(o[0].path, "hosts/gw.json");
	assert_string_equal(o[1].path, "routes/traefik.yml");
	assert_null(tend_render_result_host(f->r, "nohost", &n));
	assert_int_equal(n, 0);
	assert_int_equal(f->r->n_outputs, 6);
	for (i = 0; i < f->r->n_outputs; i++)
		assert_null(strstr(f->r->outputs[i].data, "SUPERSECRET"));
}

static void test_host_facts(void **state)
{
	fixture *f = *state;
	json_t *db1 = fx_json(f->r, "db1", "hosts/db1.json"), *gw = fx_json(f->r, "gw", "hosts/gw.json");

	assert_string_equal(S(G(db1, "commit")), "feedface");
	assert_string_equal(S(G(G(db1, "host"), "flake_attr")), "database-one");
	assert_int_equal(I(G(G(db1, "host"), "agent_port")), 9100);
	assert_true(json_is_null(G(G(db1, "host"), "role")));
	assert_string_equal(S(G(G(gw, "host"), "role")), "gateway");
	assert_string_equal(S(G(G(gw, "host"), "flake_attr")), "gw");
	assert_int_equal(I(G(G(gw, "host"), "agent_port")), 9000);
	assert_string_equal(S(A(G(G(gw, "fleet"), "internal_cidrs"), 0)), "10.9.0.0/24");
	json_decref(db1);
	json_decref(gw);
}

static void test_settings_typed(void **state)
{
	fixture *f = *state;
	json_t *apps = fx_json(f->r, "apps", "hosts/apps.json");
	json_t *s = G(G(G(apps, "services"), "wiki"), "settings"), *list;

	assert_true(json_is_integer(G(s, "port")) && I(G(s, "port")) == 8080);
	assert_true(json_is_real(G(s, "ratio")) && json_real_value(G(s, "ratio")) == 0.25);
	assert_true(json_is_true(G(s, "enabled")));
	assert_true(json_is_false(G(s, "disabled")));
	assert_true(json_is_null(G(s, "nothing")));
	assert_true(json_is_null(G(s, "tilde")));
	assert_string_equal(S(G(s, "quoted_num")), "8080");
	assert_string_equal(S(G(s, "quoted_bool")), "true");
	assert_int_equal(I(G(s, "hex")), 31);
	assert_true(json_is_real(G(s, "exp")) && json_real_value(G(s, "exp")) == 1000.0);
	assert_int_equal(I(G(s, "negative")), -12);
	assert_string_equal(S(G(s, "text")), "hello world");
	assert_string_equal(S(G(s, "yes_word")), "yes");
	assert_string_equal(S(G(s, "big")), "123456789012345678901234567890");
	list = G(G(s, "nested"), "list");
	assert_int_equal(I(A(list, 0)), 1);
	assert_string_equal(S(A(list, 1)), "2");
	assert_string_equal(S(A(list, 2)), "three");
	assert_true(json_real_value(G(A(list, 3), "deep")) == 1.5);
	/* A service without settings gets an empty mapping. */
	assert_int_equal(json_object_size(G(G(G(apps, "services"), "cache"), "settings")), 0);
	assert_true(json_is_object(G(G(G(apps, "services"), "cache"), "settings")));
	json_decref(apps);
}

static void test_services_probes_secrets(void **state)
{
	fixture *f = *state;
	json_t *apps = fx_json(f->r, "apps", "hosts/apps.json");
	json_t *services = G(apps, "services"), *wiki = G(services, "wiki"), *p, *sec, *deps;

	assert_int_equal(json_object_size(services), 3);   /* blog, cache, wiki */
	assert_non_null(G(services, "blog"));
	assert_null(G(services, "traefik"));
	deps = G(wiki, "depends_on");   /* declared plus implied, sorted */
	assert_int_equal(json_array_size(deps), 3);
	assert_string_equal(S(A(deps, 0)), "cache");
	assert_string_equal(S(A(deps, 1)), "postgresql");
	assert_string_equal(S(A(deps, 2)), "sso");

	p = A(G(G(wiki, "health"), "startup"), 0);
	assert_string_equal(S(G(G(p, "http"), "url")), "http://127.0.0.1:8080/health");
	assert_int_equal(I(G(G(p, "http"), "status")), 204);
	assert_string_equal(S(G(G(p, "http"), "body")), "ok");
	assert_int_equal(I(G(p, "interval_ms")), 90000);
	assert_int_equal(I(G(p, "timeout_ms")), 500);
	assert_int_equal(I(G(p, "grace_ms")), 2000);
	assert_int_equal(I(G(p, "retries")), 7);
	p = G(G(wiki, "health"), "liveness");
	assert_int_equal(I(G(G(A(p, 0), "tcp"), "port")), 8080);
	assert_string_equal(S(A(G(A(p, 1), "command"), 2)), "wiki.service");

	sec = G(wiki, "secrets");
	assert_int_equal(json_array_size(sec), 2);
	assert_string_equal(S(G(A(sec, 0), "path")), "/run/tend/secrets/wiki/db-password");
	assert_string_equal(S(G(A(sec, 0), "owner")), "wiki");
	assert_string_equal(S(G(A(sec, 0), "mode")), "0400");
	assert_string_equal(S(A(G(A(sec, 0), "restart"), 0)), "wiki.service");
	assert_string_equal(S(G(A(sec, 1), "mode")), "0440");
	assert_string_equal(S(G(A(sec, 1), "owner")), "root");
	assert_null(G(A(sec, 0), "file"));   /* where the ciphertext is does not matter to the host */

	assert_string_equal(S(G(G(wiki, "database"), "provider_host")), "db1");
	assert_string_equal(S(G(G(wiki, "database"), "provider_address")), "10.9.0.2");
	assert_string_equal(S(G(G(wiki, "database"), "password_file")), "/run/tend/secrets/wiki/db-password");
	assert_string_equal(S(G(G(wiki, "oidc"), "client_secret_file")), "/run/tend/secrets/wiki/oidc-secret");
	assert_null(G(apps, "databases"));
	assert_null(G(apps, "oidc_clients"));
	assert_null(G(apps, "proxy"));
	json_decref(apps);
}

static void test_what_others_ask(void **state)
{
	fixture *f = *state;
	json_t *db1 = fx_json(f->r, "db1", "hosts/db1.json"), *idp = fx_json(f->r, "idp", "hosts/idp.json");
	json_t *gw = fx_json(f->r, "gw", "hosts/gw.json"), *spare = fx_json(f->r, "spare", "hosts/spare.json");
	json_t *dbs = G(db1, "databases"), *clients = G(idp, "oidc_clients"), *routes;

	/* Sorted by engine, then name. */
	assert_int_equal(json_array_size(dbs), 2);
	assert_string_equal(S(G(A(dbs, 0), "engine")), "mysql");
	assert_string_equal(S(G(A(dbs, 0), "name")), "blog");
	assert_string_equal(S(G(A(dbs, 0), "user")), "blogger");
	assert_string_equal(S(G(A(dbs, 0), "provider")), "mariadb");
	assert_true(json_is_null(G(A(dbs, 0), "password_file")));
	assert_string_equal(S(G(A(dbs, 1), "name")), "wiki");
	assert_string_equal(S(G(A(dbs, 1), "user")), "wiki_user");
	assert_string_equal(S(G(A(dbs, 1), "owner_service")), "wiki");
	assert_string_equal(S(G(A(dbs, 1), "owner_host")), "apps");
	assert_string_equal(S(A(G(A(dbs, 1), "extensions"), 1)), "vector");
	assert_string_equal(S(G(A(dbs, 1), "password_file")), "/run/tend/secrets/wiki/db-password");

	assert_int_equal(json_array_size(clients), 1);
	assert_string_equal(S(G(A(clients, 0), "client_id")), "wiki-client");
	assert_string_equal(S(G(A(clients, 0), "service")), "wiki");
	assert_string_equal(S(A(G(A(clients, 0), "redirect_uris"), 1)), "https://wiki.lab.test/cb2");

	routes = G(G(gw, "proxy"), "routes");
	assert_string_equal(S(G(G(gw, "proxy"), "routes_file")), "/var/lib/traefik/tend.yml");
	assert_int_equal(json_array_size(routes), 1);
	assert_string_equal(S(G(A(routes, 0), "domain")), "wiki.lab.test");
	assert_string_equal(S(G(A(routes, 0), "upstream")), "http://10.9.0.3:8080");
	assert_string_equal(S(G(A(routes, 0), "tls")), "inside");
	assert_true(json_is_true(G(A(routes, 0), "auth")));

	assert_null(G(spare, "databases"));
	assert_null(G(spare, "proxy"));
	assert_int_equal(json_object_size(G(spare, "services")), 0);
	json_decref(db1);
	json_decref(idp);
	json_decref(gw);
	json_decref(spare);
}

static void test_options_and_write(void **state)
{
	fixture *f = *state;
	tend_render_options opts = TEND_RENDER_OPTIONS_INIT;
	json_t *doc;
	char *out = test_tmpdir_make("hostinputs-out"), *path, *data;

	opts.secrets_root = "/var/run/s";
	assert_int_equal(tend_render_host_inputs_doc(&doc, f->m, "apps", NULL, &opts), 0);
	assert_string_equal(S(G(A(G(G(G(doc, "services"), "wiki"), "secrets"), 0), "path")), "/var/run/s/wiki/db-password");
	assert_true(json_is_null(G(doc, "commit")));
	assert_true(json_is_null(G(doc, "revision")));
	json_decref(doc);
	assert_int_equal(tend_render_host_inputs_doc(&doc, f->m, "nope", NULL, NULL), TEND_ENOTFOUND);

	assert_int_equal(tend_render_result_write_host(f->r, "gw", out), 0);
	path = tend_path_join(out, "routes/traefik.yml");
	data = test_read_file(path);
	assert_non_null(data);
	assert_string_equal(data, fx_output(f->r, "gw", "routes/traefik.yml"));
	free(data);
	free(path);
	path = tend_path_join(out, "hosts/db1.json");
	assert_false(tend_path_exists(path));
	free(path);
	test_tmpdir_remove(out);
}

/* "revision" is the commit rendered, in every host's inputs, for the flake's
 * system.configurationRevision: also in what an agent writes into the revision
 * (whose "commit" stamp is null), null for a working tree, and like the stamp
 * it is no change (a plan must not rewrite or rediff a file for it alone). */
static void test_revision(void **state)
{
	fixture *f = *state;
	static const char c1[] = "0123456789abcdef0123456789abcdef01234567";
	static const char c2[] = "89abcdef0123456789abcdef0123456789abcdef";
	tend_render_result *r1 = fx_render(f->m, c1, NULL), *r2 = fx_render(f->m, c2, NULL);
	tend_render_result *plain = fx_render(f->m, NULL, NULL), *agent = NULL;
	tend_render_diff *d = NULL;
	size_t i;

	assert_int_equal(tend_render_agent_opts(&agent, f->m, "gw", c2, NULL, NULL), 0);
	for (i = 0; i < f->m->n_hosts; i++) {
		const char *host = f->m->hosts[i].name;
		char path[64];
		json_t *a, *b, *p, *g;

		snprintf(path, sizeof(path), "hosts/%s.json", host);
		a = fx_json(r1, host, path);
		b = fx_json(r2, host, path);
		p = fx_json(plain, host, path);
		g = fx_json(agent, host, path);
		assert_string_equal(S(G(a, "revision")), c1);
		assert_string_equal(S(G(b, "revision")), c2);
		assert_non_null(G(p, "revision"));
		assert_true(json_is_null(G(p, "revision")));
		assert_true(json_is_null(G(g, "commit")));
		assert_string_equal(S(G(g, "revision")), c2);
		assert_true(tend_render_output_equivalent(fx_output(r1, host, path), strlen(fx_output(r1, host, path)),
							  fx_output(agent, host, path),
							  strlen(fx_output(agent, host, path))));
		json_decref(a);
		json_decref(b);
		json_decref(p);
		json_decref(g);
	}
	assert_int_equal(tend_render_diff_compute(&d, r1, r2, NULL), 0);
	assert_false(d->differs);
	tend_render_diff_free(d);
	tend_render_result_free(r1);
	tend_render_result_free(r2);
	tend_render_result_free(plain);
	tend_render_result_free(agent);
}

static void test_yaml_values_without_json_form(void **state)
{
	const char *src = "a: .inf\n";
	tend_yaml_doc *doc;

	assert_int_equal(tend_yaml_parse(&doc, "x.yaml", src, strlen(src), NULL, NULL), 0);
	assert_null(tend_render_yaml_to_json(tend_yaml_doc_root(doc)));
	assert_non_null(strstr(tend_error_last(), "line 1, column 4"));
	tend_yaml_doc_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_host_has_inputs),
		cmocka_unit_test(test_host_facts),
		cmocka_unit_test(test_settings_typed),
		cmocka_unit_test(test_services_probes_secrets),
		cmocka_unit_test(test_what_others_ask),
		cmocka_unit_test(test_options_and_write),
		cmocka_unit_test(test_revision),
		cmocka_unit_test(test_yaml_values_without_json_form),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
