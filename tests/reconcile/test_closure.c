/* The closure diff: packages by name and version as nvd shows them (parseDrvName's split,
 * several versions of one name, unversioned names left out, .drv files ignored), units as
 * switch-to-configuration treats them (start, stop, restart, reload, X-RestartIfChanged=false
 * and targets left alone, a changed drop-in restarts), and two systems built by the real nix,
 * whose closures come from the store. JSON round trip, strict reading. */
#include "tests/support/support.h"
#include "agent/config.h"
#include "reconcile/closure.h"
#include "util/error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define H "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-"

static char *text_of(const tend_closure_diff *d)
{
	char *t = tend_closure_diff_format(d, "");

	assert_non_null(t);
	return t;
}

static void test_packages(void **state)
{
	char *before[] = { H "grafana-10.4.2", H "glibc-2.39-52", H "glibc-2.39-52-bin",
		H "python3.11-requests-2.31.0", H "etc", H "unit-grafana.service", H "redis-7.2.4",
		H "openssl-3.0.14", H "openssl-1.1.1w", H "grafana-10.4.2.drv", "/not/a/store/path-1.0",
		H "system-path" };
	char *after[] = { H "grafana-11.0.1", H "glibc-2.39-52", H "glibc-2.39-52-bin",
		H "python3.11-requests-2.32.3", H "etc", H "unit-loki.service", H "loki-3.1.1",
		H "openssl-3.0.14", H "system-path", H "glibc-2.39-52" };
	tend_closure_diff *d = calloc(1, sizeof(*d));
	char *t;

	(void)state;
	assert_int_equal(tend_closure_diff_packages(d, before, 12, after, 10), 0);
	assert_int_equal(d->paths_before, 12);
	assert_int_equal(d->paths_after, 10);
	t = text_of(d);
	assert_string_equal(t,
		"package grafana 10.4.2 -> 11.0.1\n"
		"package added loki 3.1.1\n"
		"package openssl 1.1.1w, 3.0.14 -> 3.0.14\n"
		"package python3.11-requests 2.31.0 -> 2.32.3\n"
		"package removed redis 7.2.4\n");
	free(t);
	tend_closure_diff_free(d);
}

static void unit(const char *dir, const char *rel, const char *text)
{
	char *path = NULL;

	assert_true(asprintf(&path, "etc/systemd/system/%s", rel) > 0);
	test_write_file(dir, path, text);
	free(path);
}

static void test_units(void **state)
{
	char *dir = test_tmpdir_make("closure-units"), *a = NULL, *b = NULL, *t;
	tend_closure_diff *d = calloc(1, sizeof(*d));

	(void)state;
	assert_true(asprintf(&a, "%s/a", dir) > 0 && asprintf(&b, "%s/b", dir) > 0);
	unit(a, "same.service", "[Service]\nExecStart=/bin/true\n");
	unit(b, "same.service", "[Service]\nExecStart=/bin/true\n");
	unit(a, "grafana.service", "[Service]\nExecStart=/nix/store/x-grafana-10\n");
	unit(b, "grafana.service", "[Service]\nExecStart=/nix/store/x-grafana-11\n");
	unit(a, "nginx.service", "[Unit]\nX-ReloadIfChanged=true\n[Service]\nExecStart=a\n");
	unit(b, "nginx.service", "[Unit]\nX-ReloadIfChanged=true\n[Service]\nExecStart=b\n");
	unit(a, "dbus.service", "[Unit]\nX-RestartIfChanged=false\n[Service]\nExecStart=a\n");
	unit(b, "dbus.service", "[Unit]\nX-RestartIfChanged=false\n[Service]\nExecStart=b\n");
	unit(a, "redis.service", "[Service]\nExecStart=redis\n");
	unit(b, "loki.service", "[Service]\nExecStart=loki\n");
	unit(b, "backup.timer", "[Timer]\nOnCalendar=daily\n");
	unit(a, "multi-user.target", "[Unit]\nDescription=a\n");
	unit(b, "multi-user.target", "[Unit]\nDescription=b\n");
	unit(a, "home.mount", "[Mount]\nOptions=ro\n");
	unit(b, "home.mount", "[Mount]\nOptions=rw\n");
	unit(a, "vault.service", "[Service]\nExecStart=vault\n");
	unit(b, "vault.service", "[Service]\nExecStart=vault\n");
	unit(a, "vault.service.d/overrides.conf", "[Service]\nEnvironment=A=1\n");
	unit(b, "vault.service.d/overrides.conf", "[Service]\nEnvironment=A=2\n");
	unit(b, "multi-user.target.wants/loki.service", "[Service]\nExecStart=loki\n");
	unit(a, "README", "not a unit\n");
	assert_int_equal(tend_closure_diff_units(d, a, b), 0);
	t = text_of(d);
	assert_string_equal(t,
		"unit start backup.timer\n"
		"unit start loki.service\n"
		"unit stop redis.service\n"
		"unit restart grafana.service\n"
		"unit restart vault.service\n"
		"unit reload home.mount\n"
		"unit reload nginx.service\n");
	free(t);
	tend_closure_diff_free(d);
	/* A system without units (the tests' stand-ins): nothing, not an error. */
	d = calloc(1, sizeof(*d));
	assert_int_equal(tend_closure_diff_units(d, dir, NULL), 0);
	assert_int_equal(d->n_units, 0);
	tend_closure_diff_free(d);
	test_tmpdir_remove(dir);
	free(a);
	free(b);
}

static void test_json_round_trip(void **state)
{
	char *before[] = { H "grafana-10.4.2", H "redis-7.2.4" };
	char *after[] = { H "grafana-11.0.1", H "loki-3.1.1" };
	tend_closure_diff *d = calloc(1, sizeof(*d)), *back = NULL;
	json_t *j, *bad;
	char *t1, *t2;

	(void)state;
	assert_int_equal(tend_closure_diff_packages(d, before, 2, after, 2), 0);
	assert_non_null(d->units = calloc(1, sizeof(*d->units)));
	d->units[0].unit = strdup("grafana.service");
	d->units[0].action = TEND_UNIT_RESTART;
	d->n_units = 1;
	j = tend_closure_diff_to_json(d);
	assert_non_null(j);
	assert_int_equal(tend_closure_diff_from_json(&back, j), 0);
	t1 = text_of(d);
	t2 = text_of(back);
	assert_string_equal(t1, t2);
	assert_int_equal(back->paths_before, 2);
	free(t1);
	free(t2);
	tend_closure_diff_free(back);
	/* A unit with an action tend does not know is refused, not half-read. */
	bad = json_deep_copy(j);
	json_object_set_new(json_array_get(json_object_get(bad, "units"), 0), "action",
			    json_string("explode"));
	back = NULL;
	assert_int_equal(tend_closure_diff_from_json(&back, bad), TEND_EINVALID);
	assert_null(back);
	assert_non_null(strstr(tend_error_last(), "known action"));
	json_decref(bad);
	json_decref(j);
	tend_closure_diff_free(d);
}

/* Two systems built by nix from one expression: the closure comes from the real store. */
static void test_systems_from_the_store(void **state)
{
	char *dir, *a, *b, *t, *cfg_text = NULL;
	tend_buf out = TEND_BUF_INIT;
	tend_closure_diff *d = NULL;
	tend_config *cfg = NULL;

	(void)state;
	if (!test_have("nix-build"))
		skip();
	dir = test_tmpdir_make("closure-nix");
	test_write_file(dir, "sys.nix",
		"{ v }: let\n"
		"  sys = builtins.currentSystem;\n"
		"  pkg = name: derivation { inherit name; system = sys; builder = \"/bin/sh\";\n"
		"    args = [ \"-c\" \"echo ${name} > $out\" ]; };\n"
		"  grafana = pkg \"grafana-${v}\";\n"
		"  extra = if v == \"10.4.2\" then pkg \"redis-7.2.4\" else pkg \"loki-3.1.1\";\n"
		"in derivation { name = \"test-system\"; system = sys; builder = \"/bin/sh\";\n"
		"  PATH = \"/usr/bin:/bin\";\n"
		"  args = [ \"-c\" ''\n"
		"    mkdir -p $out/etc/systemd/system\n"
		"    printf '[Service]\\nExecStart=%s\\n' ${grafana} > $out/etc/systemd/system/grafana.service\n"
		"    echo ${extra} > $out/extra\n"
		"  '' ]; }\n");
	assert_int_equal(test_sh(&out, dir, "nix-build --no-out-link --argstr v 10.4.2 sys.nix "
				 "--option substituters '' 2>/dev/null | tail -n1"), 0);
	a = strndup(out.ptr, strcspn(out.ptr, "\n"));
	tend_buf_clear(&out);
	assert_int_equal(test_sh(&out, dir, "nix-build --no-out-link --argstr v 11.0.1 sys.nix "
				 "--option substituters '' 2>/dev/null | tail -n1"), 0);
	b = strndup(out.ptr, strcspn(out.ptr, "\n"));
	assert_true(asprintf(&cfg_text, "host: h\nrepository: {url: r}\nstate_dir: %s/state\n", dir) > 0);
	assert_int_equal(tend_config_parse(&cfg, "agent.yaml", cfg_text, strlen(cfg_text), dir), 0);
	assert_int_equal(tend_closure_diff_systems(&d, cfg, a, b), 0);
	assert_null(d->error);
	t = text_of(d);
	assert_string_equal(t,
		"package grafana 10.4.2 -> 11.0.1\n"
		"package added loki 3.1.1\n"
		"package removed redis 7.2.4\n"
		"unit restart grafana.service\n");
	assert_int_equal(d->paths_before, 3);
	free(t);
	tend_closure_diff_free(d);
	/* A path the store does not have: the diff says why, the caller goes on. */
	assert_int_equal(tend_closure_diff_systems(&d, cfg, H "gone-1.0", b), 0);
	assert_non_null(d->error);
	assert_non_null(strstr(d->error, "nix-store --query --requisites"));
	tend_closure_diff_free(d);
	tend_config_free(cfg);
	tend_buf_dispose(&out);
	free(cfg_text);
	free(a);
	free(b);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packages),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_systems_from_the_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
