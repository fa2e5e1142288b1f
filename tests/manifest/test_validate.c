/* `tend validate` end to end with the real binary: the example fleet is valid,
 * each broken fixture (one per error class) fails with exactly its expected
 * message, and YAML bombs are refused within a second. */
#include "tests/support/support.h"
#include "util/buf.h"
#include "util/fs.h"
#include "manifest/manifest.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIXTURES TEND_SOURCE_DIR "/tests/fixtures/broken"

static const char *const fixture_cases[] = {
	"bad-duration", "bad-mode", "bad-port", "bad-url", "cycle", "duplicate-address",
	"duplicate-route", "flake-lock-stale", "flake-without-lock", "host-cycle", "missing-field",
	"name-mismatch", "unknown-depends-on", "unknown-host", "unknown-key", "wrong-type",
	"yaml-syntax", NULL
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_homelab_is_valid(void **state)
{
	const char *args[] = { "validate", "--repo", TEND_SOURCE_DIR "/examples/homelab", NULL };
	tend_proc_result res;

	(void)state;
	assert_int_equal(test_tend(&res, NULL, args), 0);
	assert_int_equal(res.exit_code, 0);
	assert_string_equal(res.out.ptr, "homelab: 5 hosts, 13 services, valid\n");
	assert_true(res.err.size == 0);
	tend_proc_result_dispose(&res);
}

static void test_homelab_json(void **state)
{
	const char *args[] = { "validate", "--json", "--repo", TEND_SOURCE_DIR "/examples/homelab", NULL };
	tend_proc_result res;

	(void)state;
	assert_int_equal(test_tend(&res, NULL, args), 0);
	assert_int_equal(res.exit_code, 0);
	assert_non_null(strstr(res.out.ptr, "\"valid\": true"));
	assert_non_null(strstr(res.out.ptr, "\"services\": 13"));
	tend_proc_result_dispose(&res);
}

static void test_invalid_json(void **state)
{
	const char *args[] = { "validate", "--json", "--repo", FIXTURES "/unknown-host", NULL };
	tend_proc_result res;

	(void)state;
	assert_int_equal(test_tend(&res, NULL, args), 0);
	assert_int_equal(res.exit_code, 1);
	assert_true(res.err.size == 0);
	assert_non_null(strstr(res.out.ptr, "\"valid\": false"));
	assert_non_null(strstr(res.out.ptr, "\"errors\": 1"));
	assert_non_null(strstr(res.out.ptr, "\"file\": \"services/app/service.yaml\""));
	assert_non_null(strstr(res.out.ptr, "\"line\": 2"));
	assert_non_null(strstr(res.out.ptr, "\"col\": 7"));
	assert_non_null(strstr(res.out.ptr, "unknown host 'app1' (did you mean 'apps1'?)"));
	tend_proc_result_dispose(&res);
}

static void test_bad_usage(void **state)
{
	const char *args[] = { "validate", "--repo", TEND_SOURCE_DIR "/examples/homelab", "extra", NULL };
	const char *help[] = { "validate", "--help", NULL };
	tend_proc_result res;

	(void)state;
	assert_int_equal(test_tend(&res, NULL, args), 0);
	assert_int_equal(res.exit_code, 1);
	assert_non_null(strstr(res.err.ptr, "unexpected argument 'extra'"));
	tend_proc_result_dispose(&res);
	assert_int_equal(test_tend(&res, NULL, help), 0);
	assert_int_equal(res.exit_code, 0);
	assert_non_null(strstr(res.out.ptr, "usage: tend validate [--repo DIR] [--json]"));
	tend_proc_result_dispose(&res);
}

/* Issue 17 item 2: what render refuses, validate refuses, at render's
 * position: a Caddy fleet with a service naming Traefik middlewares. Fails
 * on 247ba6c (validate said valid; render refused). */
static void test_render_refusals_are_validate_errors(void **state)
{
	char *dir = test_tmpdir_make("validate-render");
	const char *args[] = { "validate", "--repo", dir, NULL };
	tend_proc_result res;

	(void)state;
	test_write_file(dir, "fleet.yaml",
			"fleet: t\ndomain: lab.test\nhosts:\n  h1: {address: 10.0.0.1}\n"
			"proxy: {service: caddy, kind: caddy, routes_file: /etc/caddy/tend.json}\n");
	test_write_file(dir, "services/caddy/service.yaml", "name: caddy\nhost: h1\n");
	test_write_file(dir, "services/web/service.yaml",
			"name: web\nhost: h1\nproxy:\n  domain: web.lab.test\n  port: 80\n"
			"  middlewares: [strip-prefix]\n");
	assert_int_equal(test_tend(&res, NULL, args), 0);
	assert_int_equal(res.exit_code, 1);
	assert_string_equal(res.err.ptr, "services/web/service.yaml:3:1: error: proxy.middlewares name "
			    "Traefik middlewares; the fleet's proxy is Caddy\n");
	assert_true(res.out.size == 0);
	tend_proc_result_dispose(&res);
	test_tmpdir_remove(dir);
}

static void test_default_repo_is_cwd(void **state)
{
	const char *args[] = { "validate", NULL };
	tend_proc_result res;

	(void)state;
	assert_int_equal(test_tend(&res, TEND_SOURCE_DIR "/examples/homelab", args), 0);
	assert_int_equal(res.exit_code, 0);
	tend_proc_result_dispose(&res);
}

/* Every secret the example fleet references decrypts with the committed
 * demo key, using the real age CLI (armored and binary files alike). */
static void test_homelab_secrets_decrypt(void **state)
{
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;
	size_t i, j, n = 0;

	(void)state;
	if (!test_have("age")) {
		print_message("SKIP: age is not installed\n");
		skip();
	}
	assert_int_equal(tend_manifest_load(&m, &diags, TEND_SOURCE_DIR "/examples/homelab"), 0);
	for (i = 0; i < m->n_services; i++) {
		for (j = 0; j < m->services[i].n_secrets; j++) {
			tend_buf out = TEND_BUF_INIT;
			const char *file = m->services[i].secrets[j].file;
			int rc = test_sh(&out, TEND_SOURCE_DIR "/examples/homelab",
					 "age -d -i demo-keys/DEMO-ONLY-age-key.txt '%s'", file);
			if (rc != 0 || out.size == 0)
				fail_msg("%s: age -d exited %d: %s", file, rc, out.ptr ? out.ptr : "");
			tend_buf_dispose_secure(&out);
			n++;
		}
	}
	assert_true(n >= 10);
	tend_manifest_free(m);
	tend_diags_dispose(&diags);
}

/* Every directory under broken/ is listed above (so none is silently skipped). */
static void test_every_fixture_is_listed(void **state)
{
	DIR *d = opendir(FIXTURES);
	struct dirent *de;
	size_t seen = 0, listed = 0, i;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d))) {
		int found = 0;
		if (de->d_name[0] == '.')
			continue;
		for (i = 0; fixture_cases[i]; i++)
			found |= !strcmp(fixture_cases[i], de->d_name);
		if (!found)
			fail_msg("fixture %s is not in fixture_cases", de->d_name);
		seen++;
	}
	closedir(d);
	while (fixture_cases[listed])
		listed++;
	assert_int_equal(seen, listed);
}

static void test_broken_fixtures(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; fixture_cases[i]; i++) {
		char *dir = NULL, *expected_path = NULL, *expected;
		const char *args[] = { "validate", "--repo", NULL, NULL };
		tend_proc_result res;

		assert_true(asprintf(&dir, "%s/%s", FIXTURES, fixture_cases[i]) > 0);
		assert_true(asprintf(&expected_path, "%s/expected.txt", dir) > 0);
		expected = test_read_file(expected_path);
		assert_non_null(expected);
		args[2] = dir;
		assert_int_equal(test_tend(&res, NULL, args), 0);
		if (res.exit_code != 1 || strcmp(res.err.ptr ? res.err.ptr : "", expected))
			fail_msg("%s: exit %d, stderr:\n%s\nexpected:\n%s", fixture_cases[i],
				 res.exit_code, res.err.ptr ? res.err.ptr : "", expected);
		assert_true(res.out.size == 0);
		tend_proc_result_dispose(&res);
		free(expected);
		free(expected_path);
		free(dir);
	}
}

static const char *fleet =
	"fleet: bomb\ndomain: lab.example.net\nhosts:\n  apps1:\n    address: 10.0.0.3\n";

/* A fleet whose one service.yaml is about 1 MB of YAML bomb; returns the repo. */
static char *bomb_repo(const char *label, const char *bomb)
{
	char *repo = test_tmpdir_make(label);

	test_write_file(repo, "fleet.yaml", fleet);
	test_write_file(repo, "services/bomb/service.yaml", bomb);
	return repo;
}

static void run_bomb(const char *label, const char *bomb, const char *expect)
{
	char *repo = bomb_repo(label, bomb);
	const char *args[] = { "validate", "--repo", repo, NULL };
	tend_proc_result res;
	double t0 = now_s(), dt;

	assert_true(strlen(bomb) >= 1000000);
	assert_int_equal(test_tend(&res, NULL, args), 0);
	dt = now_s() - t0;
	assert_int_equal(res.exit_code, 1);
	if (!strstr(res.err.ptr ? res.err.ptr : "", expect))
		fail_msg("stderr: %s (expected %s)", res.err.ptr ? res.err.ptr : "", expect);
	assert_non_null(strstr(res.err.ptr, "services/bomb/service.yaml:"));
	/* Refused by a cap, not by running out of memory: about 60 ms in the
	 * Release build (bench/), seconds at most under ASan on a loaded machine;
	 * an uncapped expansion takes minutes and gigabytes. */
	if (dt >= 15.0)
		fail_msg("the bomb took %.3f s to refuse", dt);
	tend_proc_result_dispose(&res);
	test_tmpdir_remove(repo);
}

/* "Billion laughs": nine levels of nine aliases each, padded to 1 MB. */
static void test_alias_bomb_refused_fast(void **state)
{
	tend_buf b = TEND_BUF_INIT;
	int level, i;

	(void)state;
	tend_buf_puts(&b, "name: bomb\nhost: apps1\nsettings:\n  l0: &l0 [");
	while (b.size < 1000000)
		tend_buf_puts(&b, "\"lol\", ");
	tend_buf_puts(&b, "\"lol\"]\n");
	for (level = 1; level < 10; level++) {
		tend_buf_printf(&b, "  l%d: &l%d [", level, level);
		for (i = 0; i < 9; i++)
			tend_buf_printf(&b, "%s*l%d", i ? ", " : "", level - 1);
		tend_buf_puts(&b, "]\n");
	}
	run_bomb("bomb-alias", b.ptr, "error: document expands to more than 1000000 nodes (alias bomb?)");
	tend_buf_dispose(&b);
}

/* Nesting: half a million '[' (depth cap). */
static void test_depth_bomb_refused_fast(void **state)
{
	tend_buf b = TEND_BUF_INIT;

	(void)state;
	tend_buf_puts(&b, "name: bomb\nhost: apps1\nsettings:\n  x: ");
	while (b.size < 1000000)
		tend_buf_puts(&b, "[[[[[[[[[[");
	tend_buf_puts(&b, "\n");
	run_bomb("bomb-depth", b.ptr, "nesting deeper than");
	tend_buf_dispose(&b);
}

/* Larger than the size cap: refused before parsing. */
static void test_oversized_file_refused(void **state)
{
	tend_buf b = TEND_BUF_INIT;

	(void)state;
	tend_buf_puts(&b, "name: bomb\nhost: apps1\n");
	while (b.size < (5u << 20))
		tend_buf_puts(&b, "# padding padding padding padding padding padding padding padding\n");
	run_bomb("bomb-size", b.ptr, "larger than the limit");
	tend_buf_dispose(&b);
}

static void test_missing_repo_and_fleet(void **state)
{
	char *repo = test_tmpdir_make("nofleet");
	const char *args[] = { "validate", "--repo", repo, NULL };
	const char *args2[] = { "validate", "--repo", "/nonexistent/tend-repo", NULL };
	tend_proc_result res;

	(void)state;
	assert_int_equal(test_tend(&res, NULL, args), 0);
	assert_int_equal(res.exit_code, 1);
	assert_string_equal(res.err.ptr, "fleet.yaml: error: no fleet.yaml at the repository root "
			    "(is this a fleet repository?)\n");
	tend_proc_result_dispose(&res);
	assert_int_equal(test_tend(&res, NULL, args2), 0);
	assert_int_equal(res.exit_code, 1);
	assert_non_null(strstr(res.err.ptr, "tend: error: /nonexistent/tend-repo: not a directory"));
	tend_proc_result_dispose(&res);
	test_tmpdir_remove(repo);
}

/* Several problems in several files: all reported, sorted by file, line, column. */
static void test_all_errors_sorted(void **state)
{
	char *repo = test_tmpdir_make("many");
	const char *args[] = { "validate", "--repo", repo, NULL };
	tend_proc_result res;

	(void)state;
	test_write_file(repo, "fleet.yaml",
			"fleet: many\ndomain: lab.example.net\nhots: {}\nhosts:\n  a:\n    address: 10.0.0.1\n");
	test_write_file(repo, "services/zed/service.yaml", "name: zed\nhost: b\n");
	test_write_file(repo, "services/alpha/service.yaml",
			"name: alpha\nhost: a\ndepends_on: [zed, nope]\nhealth:\n  liveness:\n"
			"    - tcp: {host: 127.0.0.1, port: 0}\n      timeout: forever\n");
	assert_int_equal(test_tend(&res, NULL, args), 0);
	assert_int_equal(res.exit_code, 1);
	assert_string_equal(res.err.ptr,
		"fleet.yaml:3:1: error: unknown key 'hots' (did you mean 'hosts'?)\n"
		"services/alpha/service.yaml:3:19: error: depends_on[1]: unknown service 'nope'\n"
		"services/alpha/service.yaml:6:36: error: health.liveness[0].tcp.port: 0 is out of range (1-65535)\n"
		"services/alpha/service.yaml:7:16: error: health.liveness[0].timeout: invalid duration 'forever' "
		"(use a number with ms, s, m or h, such as 500ms, 2s or 1m30s)\n"
		"services/zed/service.yaml:2:7: error: host: unknown host 'b'\n");
	tend_proc_result_dispose(&res);
	test_tmpdir_remove(repo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_homelab_is_valid),
		cmocka_unit_test(test_homelab_json),
		cmocka_unit_test(test_homelab_secrets_decrypt),
		cmocka_unit_test(test_default_repo_is_cwd),
		cmocka_unit_test(test_render_refusals_are_validate_errors),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_bad_usage),
		cmocka_unit_test(test_every_fixture_is_listed),
		cmocka_unit_test(test_broken_fixtures),
		cmocka_unit_test(test_alias_bomb_refused_fast),
		cmocka_unit_test(test_depth_bomb_refused_fast),
		cmocka_unit_test(test_oversized_file_refused),
		cmocka_unit_test(test_missing_repo_and_fleet),
		cmocka_unit_test(test_all_errors_sorted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
