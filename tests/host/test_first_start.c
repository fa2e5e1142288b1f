/* A service's first start on a real systemd (a Debian 12 VM of tests/host/lab, tend as the
 * module's unit): one commit adds a service, the system user it runs as and its secret owned by
 * that user, and converges (the secret is installed after the switch creates the user, then its
 * unit restarted); the secrets live in generations on a ramfs behind the /run/tend/secrets link,
 * never in the state directory; a rotation try-restarts the unit, and leaves a unit stopped by
 * hand stopped. A service that listens 20 s after it starts passes with the default probe
 * settings because tend sees its unit running; one whose unit crashes after the switch is
 * rolled back at once with the unit's journal in the history. ctest label `host`. */
#include "tests/agent/helpers.h"
#include "tests/host/lab.h"

static lab_host *h;

static int group_setup(void **state)
{
	(void)state;
	h = lab_host_up("first");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	lab_host_down(h);
	return 0;
}

static void encrypt(const char *file, const char *value)
{
	assert_int_equal(test_sh(NULL, h->repo, "mkdir -p secrets && printf '%s' | age -r %s -o %s",
				 value, h->age_recipient, file), 0);
}

/* web: runs as websvc, which its system creates; answers its secret as read at start. */
static void write_web(const char *extra)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"name: web\n"
		"host: first\n"
		"units: [lab-web.service]\n"
		"secrets:\n"
		"  - {name: token, file: secrets/web-token.age, owner: websvc, restart: [lab-web.service]}\n"
		"health:\n"
		"  startup:\n"
		"    - http: {url: 'http://127.0.0.1:8081/', status: 200}\n"
		"settings:\n"
		"  lab_port: 8081\n"
		"  lab_user: websvc\n"
		"  lab_body_file: /run/tend/secrets/web/token\n"
		"%s", extra ? extra : "") > 0);
	test_write_file(h->repo, "services/web/service.yaml", text);
	free(text);
}

static void converge(const char *c, const char *what)
{
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -60");
		lab_show(h, "tend history --config /etc/tend/agent.yaml --limit 2");
		fail_msg("%s did not converge", what);
	}
}

static void expect_guest(const char *cmd, const char *want)
{
	char *got = lab_out(h, cmd);

	if (!got || strcmp(got, want))
		fail_msg("`%s` says '%s', not '%s'", cmd, got ? got : "(failed)", want);
	free(got);
}

static void test_user_and_secret_in_one_commit(void **state)
{
	char *c, *gen;

	(void)state;
	assert_int_equal(lab_run(h, "! getent passwd websvc"), 0);
	encrypt("secrets/web-token.age", "first-secret");
	write_web(NULL);
	c = lab_push(h, "web, its user and its secret");
	assert_int_equal(lab_run(h, "systemctl start tend.service"), 0);
	converge(c, "a commit adding a service, its user and its secret");
	/* the unit was restarted once its secret was there: it answers the secret */
	lab_expect_web(h, "first-secret");
	expect_guest("stat -L -c '%U %a' /run/tend/secrets/web/token", "websvc 400");
	expect_guest("systemctl show -P User lab-web.service", "websvc");
	/* a generation on a ramfs behind the link */
	expect_guest("stat -f -c %T /run/tend/secrets.d", "ramfs");
	gen = lab_out(h, "readlink /run/tend/secrets");
	assert_non_null(gen);
	assert_non_null(strstr(gen, "/run/tend/secrets.d/"));
	free(gen);
	expect_guest("stat -c %a /run/tend/secrets/", "751");
	/* nothing of it in the state directory (test_slow_first_start looks while in flight) */
	assert_int_equal(lab_run(h, "! grep -r -q first-secret /var/lib/tend"), 0);
	free(c);
}

static void test_rotation(void **state)
{
	char *c, *before, *after;

	(void)state;
	before = lab_out(h, "readlink /run/tend/secrets");
	encrypt("secrets/web-token.age", "second-secret");
	c = lab_push(h, "rotate the web token");
	converge(c, "a rotation");
	lab_expect_web(h, "second-secret");
	after = lab_out(h, "readlink /run/tend/secrets");
	assert_non_null(before);
	assert_non_null(after);
	if (!strcmp(before, after))
		fail_msg("a rotation did not make a new generation (%s)", after);
	/* the previous generation is gone once the change is adopted */
	{
		char *cmd = NULL;

		assert_true(asprintf(&cmd, "! test -e %s", before) > 0);
		assert_int_equal(lab_run(h, cmd), 0);
		free(cmd);
	}
	free(before);
	free(after);
	free(c);

	/* stopped by an operator: a rotation updates the secret and leaves the unit stopped */
	assert_int_equal(lab_run(h, "systemctl stop lab-web.service"), 0);
	encrypt("secrets/web-token.age", "third-secret");
	c = lab_push(h, "rotate again, web stopped");
	if (!lab_wait_guest(h, "tend history --config /etc/tend/agent.yaml --limit 1 | "
			    "grep -q rolled-back || cat /run/tend/secrets/web/token | grep -q third", 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the second rotation was not applied");
	}
	sleep(3);
	expect_guest("cat /run/tend/secrets/web/token", "third-secret");
	assert_int_equal(lab_run(h, "! systemctl is-active -q lab-web.service"), 0);
	assert_int_equal(lab_run(h, "systemctl start lab-web.service"), 0);
	free(c);
}

/* Listening 20 s after its start, with the default probe (3 tries 2 s apart): tend waits
 * because the unit runs (health.start_timeout, 60 s by default). */
static void test_slow_first_start(void **state)
{
	char *c, *out;

	(void)state;
	write_web("  lab_delay: 20\n");
	c = lab_push(h, "web takes 20 s to listen");
	/* while the change is in flight (its backup written, probes waiting): no secret in the
	 * state directory */
	{
		time_t t0 = time(NULL);
		int in_flight = 0;

		while (time(NULL) - t0 < 60 && !in_flight) {
			in_flight = lab_run(h, "ls /var/lib/tend/backups/*/index.json >/dev/null 2>&1") == 0;
			assert_int_equal(lab_run(h, "! grep -r -q third-secret /var/lib/tend"), 0);
			if (!in_flight)
				sleep(1);
		}
		if (!in_flight)
			fail_msg("never saw the change in flight");
		assert_int_equal(lab_run(h, "! grep -r -q third-secret /var/lib/tend"), 0);
	}
	converge(c, "a service that listens 20 s after it starts");
	lab_expect_web(h, "third-secret");
	out = lab_out(h, "tend history --config /etc/tend/agent.yaml --limit 1");
	assert_non_null(out);
	if (!strstr(out, "applied"))
		fail_msg("history:\n%s", out);
	free(out);
	free(c);
}

/* A unit that starts, then exits 1: rolled back at once, its journal in the history. */
static void test_crash_after_switch(void **state)
{
	char *c, *out, *applied;
	time_t t0;

	(void)state;
	applied = lab_status(h, "applied_commit");
	test_write_file(h->repo, "services/crasher/service.yaml",
		"name: crasher\n"
		"host: first\n"
		"units: [lab-crasher.service]\n"
		"health:\n"
		"  startup:\n"
		"    - http: {url: 'http://127.0.0.1:8099/', status: 200}\n"
		"settings:\n"
		"  lab_crash: 'config error: no listen address'\n");
	c = lab_push(h, "a service that crashes after its start");
	t0 = time(NULL);
	if (!lab_wait_guest(h, "tend history --config /etc/tend/agent.yaml --limit 1 | grep -q rolled-back",
			    300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -60");
		fail_msg("the crashing service was not rolled back");
	}
	/* at once: not after the 60 s start budget */
	if (time(NULL) - t0 > 55)
		fail_msg("the rollback took %lld s", (long long)(time(NULL) - t0));
	out = lab_out(h, "tend history --config /etc/tend/agent.yaml --limit 1");
	assert_non_null(out);
	if (!strstr(out, "unit lab-crasher.service") || !strstr(out, "config error: no listen address"))
		fail_msg("history of the crash:\n%s", out);
	free(out);
	out = lab_status(h, "applied_commit");
	assert_string_equal(out, applied);
	free(out);
	lab_expect_web(h, "third-secret");
	free(applied);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_and_secret_in_one_commit),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_slow_first_start),
		cmocka_unit_test(test_crash_after_switch),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
