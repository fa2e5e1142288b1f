/* The demo fleet end to end with the real tend and nix: examples/homelab
 * derived for one machine (nix/demo-fleet.py) validates, and db1 converges on
 * its demo system, rolls back a commit that breaks PostgreSQL's probe
 * (demo_fail), and applies the fix. */
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
	char *dir;
	char *fleet;
	char *config;
} demo;

static int listening(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int run_tend(demo *d, const char *const *args, char **out)
{
	tend_proc_result res;
	int code;

	assert_int_equal(test_tend(&res, d->dir, args), 0);
	code = res.exit_code;
	*out = NULL;
	assert_true(asprintf(out, "%s%s", res.out.ptr ? res.out.ptr : "", res.err.ptr ? res.err.ptr : "") >= 0);
	tend_proc_result_dispose(&res);
	return code;
}

static void commit(demo *d, const char *msg)
{
	assert_int_equal(test_sh(NULL, d->fleet, "git add -A && git -c user.name=op -c user.email=op@lab "
				 "commit -q -m '%s'", msg), 0);
}

static int setup(void **state)
{
	demo *d = calloc(1, sizeof(*d));
	char *path = NULL, *run = NULL;

	assert_non_null(d);
	d->dir = test_tmpdir_make("demo-fleet");
	assert_true(asprintf(&d->fleet, "%s/fleet", d->dir) > 0);
	assert_true(asprintf(&d->config, "%s/db1.yaml", d->dir) > 0);
	assert_int_equal(test_sh(NULL, NULL, "python3 '%s/examples/homelab/nix/demo-fleet.py' '%s/examples/homelab' '%s'",
				 TEND_SOURCE_DIR, TEND_SOURCE_DIR, d->fleet), 0);
	assert_int_equal(test_sh(NULL, d->fleet, "git init -q -b main"), 0);
	commit(d, "homelab");
	test_write_file(d->dir, "db1.yaml",
		"host: db1\n"
		"repository: {url: fleet, branch: main}\n"
		"state_dir: state\n"
		"root: root\n"
		"secrets_root: secrets\n"
		"secrets_storage: disk\n"
		"age_identities: [fleet/demo-keys/DEMO-ONLY-age-key.txt]\n"
		"nix: {extra_options: [--option, substituters, '']}\n"
		"system: {profile: profiles/system, current_system: run/db1/current-system}\n"
		"probes: {deadline: 60s}\n");
	/* switch-to-configuration finds its root here; demo-bin holds the demo's systemctl. */
	assert_true(asprintf(&run, "%s/run", d->dir) > 0);
	setenv("TEND_DEMO_ROOT", run, 1);
	assert_true(asprintf(&path, "%s/examples/homelab/nix/demo-bin:%s", TEND_SOURCE_DIR, getenv("PATH")) > 0);
	setenv("PATH", path, 1);
	free(path);
	free(run);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	demo *d = *state;
	char *pidfile = NULL, *pid;

	assert_true(asprintf(&pidfile, "%s/run/db1/standin.pid", d->dir) > 0);
	if ((pid = test_read_file(pidfile))) {
		long p = strtol(pid, NULL, 10);
		if (p > 1)
			kill((pid_t)p, SIGTERM);
		free(pid);
	}
	free(pidfile);
	test_kill_matching(d->dir); /* stand-ins still starting have no pid file yet */
	test_tmpdir_remove(d->dir);
	free(d->fleet);
	free(d->config);
	free(d);
	return 0;
}

static void test_demo_fleet_validates_on_loopback(void **state)
{
	demo *d = *state;
	tend_buf out = TEND_BUF_INIT;
	const char *validate[] = { "validate", "--repo", d->fleet, NULL };
	char *text;

	assert_int_equal(run_tend(d, validate, &text), 0);
	assert_non_null(strstr(text, "homelab: 5 hosts, 13 services, valid"));
	free(text);
	/* Every host on loopback, no probe below port 1024, no pg_isready. */
	assert_int_equal(test_sh(&out, d->fleet, "grep -c 'address: 127.77.0.' fleet.yaml"), 0);
	assert_string_equal(out.ptr, "5\n");
	tend_buf_clear(&out);
	assert_int_not_equal(test_sh(&out, d->fleet, "grep -rn '10\\.10\\.0\\.\\|pg_isready\\|port: 443}\\|port: 445}' services fleet.yaml"), 0);
	assert_int_equal(test_sh(NULL, d->fleet, "grep -q 'tcp: {host: 127.0.0.1, port: 10443}' services/traefik/service.yaml"), 0);
	tend_buf_dispose(&out);
}

static void test_db1_converges_rolls_back_and_fixes(void **state)
{
	demo *d = *state;
	const char *reconcile[] = { "reconcile", "--once", "--config", d->config, NULL };
	const char *plan[] = { "plan", "--config", d->config, NULL };
	char *text, *secret_path = NULL, *secret, *plain;
	tend_buf out = TEND_BUF_INIT;

	if (listening(5432))
		skip(); /* a real PostgreSQL on this machine: the stand-in cannot take its port */
	assert_int_equal(run_tend(d, plan, &text), 2);
	assert_non_null(strstr(text, "probe postgresql"));
	free(text);
	assert_int_equal(run_tend(d, reconcile, &text), 0);
	assert_non_null(strstr(text, "db1: applied"));
	free(text);
	assert_true(listening(5432));
	/* The secret was decrypted with the demo key and installed where the inputs say. */
	assert_true(asprintf(&secret_path, "%s/secrets/postgresql/superuser-password", d->dir) > 0);
	secret = test_read_file(secret_path);
	assert_non_null(secret);
	assert_int_equal(test_sh(&out, d->fleet, "age -d -i demo-keys/DEMO-ONLY-age-key.txt "
				 "secrets/postgresql/superuser-password.age"), 0);
	plain = tend_buf_detach(&out);
	assert_string_equal(secret, plain);
	free(plain);
	free(secret);

	/* The breaking commit: PostgreSQL stops answering; db1 rolls back. */
	assert_int_equal(test_sh(NULL, d->fleet, "printf '  demo_fail: true\\n' >> services/postgresql/service.yaml"), 0);
	commit(d, "postgresql: tune shared_buffers");
	assert_int_equal(run_tend(d, reconcile, &text), 1);
	assert_non_null(strstr(text, "db1: rolled-back"));
	assert_non_null(strstr(text, "service postgresql: probe tcp"));
	assert_non_null(strstr(text, "healthy again"));
	free(text);
	assert_true(listening(5432)); /* the previous generation's stand-in */

	/* The fix converges. */
	assert_int_equal(test_sh(NULL, d->fleet, "sed -i '/demo_fail/d; s/shared_buffers: 512MB/shared_buffers: 1GB/' "
				 "services/postgresql/service.yaml"), 0);
	commit(d, "postgresql: fix");
	assert_int_equal(run_tend(d, reconcile, &text), 0);
	assert_non_null(strstr(text, "db1: applied"));
	free(text);
	assert_true(listening(5432));

	/* An upgrade: the plan names the package with both versions and the unit it restarts,
	 * and the history keeps what the switch changed. */
	assert_int_equal(test_sh(NULL, d->fleet, "sed -i 's/postgresql = \"16.4\"/postgresql = \"16.6\"/' "
				 "nix/packages.nix && grep -q '16.6' nix/packages.nix"), 0);
	commit(d, "postgresql 16.6");
	assert_int_equal(run_tend(d, plan, &text), 2);
	assert_non_null(strstr(text, "  package postgresql 16.4 -> 16.6\n"));
	assert_non_null(strstr(text, "  unit restart postgresql.service\n"));
	assert_null(strstr(text, "package grafana")); /* not on db1 */
	free(text);
	{
		const char *plan_json[] = { "plan", "--json", "--config", d->config, NULL };

		assert_int_equal(run_tend(d, plan_json, &text), 2);
		assert_non_null(strstr(text, "\"closure\": {"));
		assert_non_null(strstr(text, "\"name\": \"postgresql\",\n"));
		assert_non_null(strstr(text, "\"from\": \"16.4\",\n"));
		assert_non_null(strstr(text, "\"to\": \"16.6\"\n"));
		assert_non_null(strstr(text, "\"unit\": \"postgresql.service\",\n"));
		free(text);
	}
	assert_int_equal(run_tend(d, reconcile, &text), 0);
	assert_non_null(strstr(text, "db1: applied"));
	free(text);
	{
		const char *history[] = { "history", "--config", d->config, "--limit", "1", NULL };

		assert_int_equal(run_tend(d, history, &text), 0);
		assert_non_null(strstr(text, "    changes:\n      package postgresql 16.4 -> 16.6\n"));
		free(text);
	}
	free(secret_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_demo_fleet_validates_on_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db1_converges_rolls_back_and_fixes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
