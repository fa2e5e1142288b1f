/* HTTPS probes (reconcile/probe.c) against real TLS servers on 127.0.0.1
 * (tests/support/https_server.py) with a throwaway CA made by the openssl
 * CLI: trusted through probes.ca_file or $SSL_CERT_FILE, refused with the URL
 * and the reason (unknown CA, hostname mismatch, unusable CA file), and, end
 * to end, a probe refusing a certificate rolls the change back. */
#include "tests/reconcile/e2e.h"
#include "tests/support/tls.h"
#include "reconcile/probe.h"

static struct {
	char *dir;                 /* CA, certificates, the served files */
	char *ca, *rogue_ca;       /* PEM files: the test CA, and one nobody trusts */
	pid_t good, other_name, rogue;
	int good_port, other_name_port, rogue_port;
} g;

static pid_t start_https(const char *cert, int *port)
{
	char *pem = NULL, *key = NULL, *portfile = NULL, *www = tend_path_join(g.dir, "www");
	char *argv[] = { "python3", TEND_SOURCE_DIR "/tests/support/https_server.py", www, NULL, NULL, NULL,
			 NULL };
	pid_t pid;

	assert_true(asprintf(&pem, "%s/%s.pem", g.dir, cert) > 0);
	assert_true(asprintf(&key, "%s/%s.key", g.dir, cert) > 0);
	assert_true(asprintf(&portfile, "%s/%s.port", g.dir, cert) > 0);
	argv[3] = pem;
	argv[4] = key;
	argv[5] = portfile;
	pid = tls_start_server(argv, portfile, port);
	free(pem);
	free(key);
	free(portfile);
	free(www);
	return pid;
}

static int group_setup(void **state)
{
	(void)state;
	if (!test_have("openssl") || !test_have("python3"))
		return 0; /* every test skips, loudly */
	g.dir = test_tmpdir_make("probe-tls");
	g.ca = tend_path_join(g.dir, "ca.pem");
	g.rogue_ca = tend_path_join(g.dir, "rogue-ca.pem");
	tls_make_ca(g.dir, "ca");
	tls_make_ca(g.dir, "rogue-ca");
	tls_make_cert(g.dir, "ca", "good", "DNS:127.0.0.1,IP:127.0.0.1");
	tls_make_cert(g.dir, "ca", "other-name", "DNS:web.other.example");
	tls_make_cert(g.dir, "rogue-ca", "rogue", "DNS:127.0.0.1,IP:127.0.0.1");
	test_write_file(g.dir, "www/health", "all good\n");
	g.good = start_https("good", &g.good_port);
	g.other_name = start_https("other-name", &g.other_name_port);
	g.rogue = start_https("rogue", &g.rogue_port);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tls_stop_server(g.good);
	tls_stop_server(g.other_name);
	tls_stop_server(g.rogue);
	free(g.ca);
	free(g.rogue_ca);
	test_tmpdir_remove(g.dir);
	return 0;
}

static tend_probe https_probe(int port, const char *body)
{
	static char url[128];
	tend_probe p;

	memset(&p, 0, sizeof(p));
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/health", port);
	p.kind = TEND_PROBE_HTTP;
	p.url = url;
	p.expect_status = 200;
	p.body_match = (char *)body;
	p.interval_ms = 50;
	p.timeout_ms = 5000;
	p.retries = 1;
	return p;
}

/* Run p expecting a TLS refusal whose error names the URL and holds needle. */
static void expect_tls_refusal(const tend_probe *p, const tend_probe_opts *o, const char *needle,
			       const char *ca)
{
	tend_probe_result r;
	char *what = NULL;

	assert_int_equal(tend_probe_run(&r, p, o), TEND_ERROR);
	assert_false(r.healthy);
	assert_true(asprintf(&what, "probe http %s failed after 1 try: TLS: ", p->url) > 0);
	if (!strstr(tend_error_last(), what) || !strstr(tend_error_last(), needle) ||
	    !strstr(tend_error_last(), ca) || strchr(tend_error_last(), '\n'))
		fail_msg("expected '%s', '%s' and '%s' in one line: %s", what, needle, ca, tend_error_last());
	assert_non_null(strstr(r.output.ptr, needle));
	free(what);
	tend_probe_result_dispose(&r);
}

static void test_https_probe_trust(void **state)
{
	tend_probe_opts o = TEND_PROBE_OPTS_INIT;
	tend_probe_result r;
	tend_probe p;
	char *old = getenv("SSL_CERT_FILE"), *missing = NULL;

	(void)state;
	tls_require_tools();
	old = old ? strdup(old) : NULL;
	unsetenv("SSL_CERT_FILE");

	/* the test CA named: healthy, body checked as over http */
	o.ca_file = g.ca;
	p = https_probe(g.good_port, "all good");
	if (tend_probe_run(&r, &p, &o) != 0)
		fail_msg("https probe with the test CA: %s", tend_error_last());
	assert_true(r.healthy);
	tend_probe_result_dispose(&r);

	/* a server whose CA is not the named one */
	p = https_probe(g.rogue_port, NULL);
	expect_tls_refusal(&p, &o, "TLS: the certificate of 127.0.0.1 is not trusted (CA file ", g.ca);
	/* the right CA, another name */
	p = https_probe(g.other_name_port, NULL);
	expect_tls_refusal(&p, &o, "TLS: the certificate of 127.0.0.1 is for another host name (hostname mismatch; CA file ", g.ca);
	/* a CA file that is gone: no try without it */
	assert_true(asprintf(&missing, "%s/gone.pem", g.dir) > 0);
	o.ca_file = missing;
	p = https_probe(g.good_port, NULL);
	expect_tls_refusal(&p, &o, "cannot use the CA file ", missing);

	/* nothing named: the system bundle, which does not hold the test CA ... */
	o.ca_file = NULL;
	if (tend_path_exists("/etc/ssl/certs/ca-certificates.crt"))
		expect_tls_refusal(&p, &o, "is not trusted (CA file /etc/ssl/certs/ca-certificates.crt)",
				   "/etc/ssl/certs/ca-certificates.crt");
	/* ... or $SSL_CERT_FILE when set */
	setenv("SSL_CERT_FILE", g.ca, 1);
	if (tend_probe_run(&r, &p, &o) != 0)
		fail_msg("https probe with SSL_CERT_FILE: %s", tend_error_last());
	tend_probe_result_dispose(&r);

	if (old)
		setenv("SSL_CERT_FILE", old, 1);
	else
		unsetenv("SSL_CERT_FILE");
	free(old);
	free(missing);
}

/* services/web with its http probe and an https probe on port (the agent
 * trusts the test CA through probes.ca_file). */
static void write_web_https(e2e *e, const char *body, int https_port)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"name: web\n"
		"host: web1\n"
		"depends_on: [traefik]\n"
		"proxy: {domain: web.lab.test, port: %d}\n"
		"health:\n"
		"  startup:\n"
		"    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n"
		"      timeout: 1s\n"
		"      retries: 30\n"
		"    - http: {url: 'https://127.0.0.1:%d/health', body: good}\n"
		"      interval: 100ms\n"
		"      timeout: 2s\n"
		"      retries: 2\n"
		"settings:\n"
		"  test_port: %d\n"
		"  test_body: '%s'\n",
		e->port, e->port, https_port, e->port, body) > 0);
	test_write_file(e->repo, "services/web/service.yaml", text);
	free(text);
}

static int e2e_setup(void **state)
{
	*state = NULL;
	if (!g.dir || !test_have("nix") || !test_have("git") || !test_have("curl") || !test_have("age"))
		return 0; /* the test skips, loudly */
	return setup(state);
}

static int e2e_teardown(void **state)
{
	return *state ? teardown(state) : 0;
}

/* End to end: a commit whose https probe reaches a server the configured CA
 * did not issue is rolled back like any failing probe. */
static void test_reconcile_rolls_back_untrusted(void **state)
{
	e2e *e = *state;
	char *yaml, *text = NULL, *at, *out = NULL, *body, *c2, *sys1, *url = NULL;
	const char *old = "probes: {deadline: 30s}\n";
	tend_state *st;

	if (!e) {
		fprintf(stderr, "\n*** SKIPPING the TLS reconcile test: needs openssl, python3, nix, git, curl "
			"and age ***\n\n");
		skip();
	}
	yaml = test_read_file(e->config);
	assert_non_null(at = strstr(yaml, old));
	assert_true(asprintf(&text, "%.*sprobes: {deadline: 30s, ca_file: '%s'}\n%s", (int)(at - yaml), yaml, g.ca,
			     at + strlen(old)) > 0);
	test_write_file(e->dir, "agent.yaml", text);
	free(text);
	free(yaml);

	write_web_https(e, "one", g.good_port);
	free(commit(e, "web one, https probe"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "web1: applied: applied commit ");
	free(out);
	sys1 = current_system(e);
	assert_non_null(sys1);

	write_web_https(e, "two", g.rogue_port);
	c2 = commit(e, "web two, probed on a server of another CA");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	assert_true(asprintf(&url, "https://127.0.0.1:%d/health", g.rogue_port) > 0);
	expect_contains(out, url);
	expect_contains(out, "TLS: the certificate of 127.0.0.1 is not trusted (CA file ");
	expect_contains(out, g.ca);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	st = load_state(e);
	assert_true(tend_state_failed_has(st, c2));
	assert_string_equal(st->history[st->n_history - 1].outcome, "rolled-back");
	expect_contains(st->history[st->n_history - 1].failed_probe, url);
	tend_state_free(st);
	free(url);
	free(sys1);
	free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_https_probe_trust),
		cmocka_unit_test_setup_teardown(test_reconcile_rolls_back_untrusted, e2e_setup, e2e_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
