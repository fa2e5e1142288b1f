/* The homelab demo flake with real nix: each host's system builds from its
 * rendered inputs (store path changes exactly when they do), and its
 * switch-to-configuration starts loopback stand-ins that answer the host's
 * health probes, or fail them when a service's settings say demo_fail. */
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <signal.h>

#define NIX "nix --extra-experimental-features 'nix-command flakes' --option substituters ''"

/* Render every host into dir/.tend and build host's system; returns the store path. */
static char *build_host(const char *dir, const char *host)
{
	tend_buf out = TEND_BUF_INIT;
	char *p, *q, *path;

	assert_int_equal(test_sh(NULL, dir, "rm -rf .tend && for h in gateway db1 apps1 home1 nas1; do "
				 "'%s' render --repo . --host $h --out .tend >/dev/null || exit 1; done",
				 TEND_BINARY), 0);
	assert_int_equal(test_sh(&out, dir, NIX " build --no-link --json "
				 "'path:%s#nixosConfigurations.%s.config.system.build.toplevel' 2>/dev/null",
				 dir, host), 0);
	p = strstr(out.ptr, "\"out\":\"");
	assert_non_null(p);
	p += 7;
	q = strchr(p, '"');
	assert_non_null(q);
	path = strndup(p, (size_t)(q - p));
	tend_buf_dispose(&out);
	return path;
}

static char *make_fleet(void)
{
	char *dir = test_tmpdir_make("homelab-flake");
	struct utsname u;
	char system[128];

	assert_int_equal(test_sh(NULL, NULL, "cp -r '%s/examples/homelab/.' '%s/' && rm -rf '%s/.tend'",
				 TEND_SOURCE_DIR, dir, dir), 0);
	assert_int_equal(uname(&u), 0);
	snprintf(system, sizeof(system), "%s-linux\n", u.machine);
	test_write_file(dir, "nix/system.txt", system);
	return dir;
}

static void test_store_path_follows_inputs(void **state)
{
	char *dir = make_fleet(), *db1, *apps1, *db1_again, *apps1_after, *db1_after;

	(void)state;
	db1 = build_host(dir, "db1");
	apps1 = build_host(dir, "apps1");
	assert_non_null(strstr(db1, "homelab-demo-system-db1"));
	db1_again = build_host(dir, "db1");
	assert_string_equal(db1, db1_again);
	/* A change to one of apps1's services changes apps1's system only. */
	assert_int_equal(test_sh(NULL, dir, "sed -i 's/error_reporting: false/error_reporting: true/' "
				 "services/authentik/service.yaml && grep -q 'error_reporting: true' services/authentik/service.yaml"), 0);
	apps1_after = build_host(dir, "apps1");
	db1_after = build_host(dir, "db1");
	assert_string_not_equal(apps1, apps1_after);
	assert_string_equal(db1, db1_after);
	free(db1);
	free(apps1);
	free(db1_again);
	free(apps1_after);
	free(db1_after);
	test_tmpdir_remove(dir);
}

static void stop_standin(const char *root, const char *host)
{
	char *path = NULL, *pid;

	assert_true(asprintf(&path, "%s/%s/standin.pid", root, host) > 0);
	if ((pid = test_read_file(path))) {
		long p = strtol(pid, NULL, 10);
		if (p > 1)
			kill((pid_t)p, SIGTERM);
		free(pid);
	}
	free(path);
}

/* GET url; returns "<status> <body>" or "" when nothing answers (caller frees). */
static char *get(const char *url)
{
	tend_buf out = TEND_BUF_INIT;

	test_sh(&out, NULL, "for i in $(seq 50); do r=$(curl -s -m 2 -w ' %%{http_code}' '%s') && "
		"{ echo \"$r\"; exit 0; }; sleep 0.1; done", url);
	return tend_buf_detach(&out);
}

/* The stand-ins' root, so that a failing assertion still stops them (teardown). */
static char *standin_root;

static int stop_all_standins(void **state)
{
	(void)state;
	if (standin_root)
		test_kill_matching(standin_root);
	return 0;
}

static void test_switch_starts_standins(void **state)
{
	char *dir = make_fleet(), *root = test_tmpdir_make("homelab-root"), *sys, *r, *link = NULL;
	char target[4096];
	ssize_t n;

	(void)state;
	standin_root = root;
	sys = build_host(dir, "nas1");
	assert_int_equal(test_sh(NULL, NULL, "TEND_DEMO_ROOT='%s' '%s/bin/switch-to-configuration' switch",
				 root, sys), 0);
	/* The host's config is installed and current-system points at the system. */
	assert_true(asprintf(&link, "%s/nas1/current-system", root) > 0);
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, sys);
	/* jellyfin's startup probe wants 200 with "Healthy" on 127.0.0.1:8096/health. */
	r = get("http://127.0.0.1:8096/health");
	assert_string_equal(r, "Healthy 200\n");
	free(r);

	/* The breaking commit: demo_fail in jellyfin's settings makes its probes fail. */
	assert_int_equal(test_sh(NULL, dir, "printf '  demo_fail: true\\n' >> services/jellyfin/service.yaml && "
				 "tail -3 services/jellyfin/service.yaml | grep -q '^settings:\\|demo_fail'"), 0);
	free(sys);
	sys = build_host(dir, "nas1");
	assert_int_equal(test_sh(NULL, NULL, "TEND_DEMO_ROOT='%s' '%s/bin/switch-to-configuration' switch",
				 root, sys), 0);
	r = get("http://127.0.0.1:8096/health");
	assert_non_null(strstr(r, " 503"));
	assert_non_null(strstr(r, "jellyfin: failing"));
	free(r);
	stop_standin(root, "nas1");
	test_kill_matching(root);
	standin_root = NULL;
	free(link);
	free(sys);
	test_tmpdir_remove(root);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_path_follows_inputs),
		cmocka_unit_test_teardown(test_switch_starts_standins, stop_all_standins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
