/* Idle polls (agent/idle.c) with the real `tend run`: on an unchanged remote
 * polled every 100 ms no worker runs between drift checks (only the remote
 * head is looked at), a hand-edited route file stays until the next drift
 * check, which restores it; a new commit is reconciled at the next poll;
 * `poll.drift_interval: 0` makes every poll a full reconcile again. The
 * settings change through SIGHUP, which itself reconciles. */
#define TEST_WITH_HTTP_CLIENT
#include "tests/agent/helpers.h"
#include "tests/reconcile/fixture.h"

#include <jansson.h>

typedef struct {
	char *dir, *repo, *root, *config, *log, *route;
	int port, agent_port;
	char base[64];
} idle;

static void write_config(idle *r, const char *poll)
{
	char *yaml = NULL;

	assert_true(asprintf(&yaml,
		"host: web1\n"
		"repository: {url: repo, branch: main}\n"
		"state_dir: state\n"
		"root: hostroot\n"
		"secrets_root: secrets\n"
		"secrets_storage: disk\n"
		"nix: {extra_options: [--option, substituters, ''], build_timeout: 2m}\n"
		"system: {profile: profiles/system, current_system: run/web1/current-system, switch_timeout: 20s}\n"
		"probes: {deadline: 60s}\n"
		"age_identities: [age.key]\n"
		"poll: %s\n"
		"listen: {address: 127.0.0.1, port: %d}\n", poll, r->agent_port) > 0);
	test_write_file(r->dir, "agent.yaml", yaml);
	free(yaml);
}

static int setup(void **state)
{
	idle *r = calloc(1, sizeof(*r));

	if (!test_have("nix") || !test_have("age-keygen")) {
		free(r);
		return -1;
	}
	r->dir = test_tmpdir_make("idle");
	assert_true(asprintf(&r->repo, "%s/repo", r->dir) > 0);
	assert_true(asprintf(&r->root, "%s/run", r->dir) > 0);
	assert_true(asprintf(&r->config, "%s/agent.yaml", r->dir) > 0);
	assert_true(asprintf(&r->log, "%s/agent.log", r->dir) > 0);
	assert_true(asprintf(&r->route, "%s/hostroot/etc/traefik/tend.yml", r->dir) > 0);
	setenv("TEND_TEST_ROOT", r->root, 1);
	r->port = test_free_port();
	r->agent_port = test_free_port();
	snprintf(r->base, sizeof(r->base), "http://127.0.0.1:%d", r->agent_port);
	assert_int_equal(test_sh(NULL, r->dir, "git init -q -b main repo && age-keygen -o age.key 2>/dev/null"), 0);
	fx_copy_flake(r->repo);
	test_write_file(r->repo, "fleet.yaml",
		"fleet: test\ndomain: lab.test\nhosts:\n  web1: {address: 127.0.0.1}\n"
		"proxy:\n  service: traefik\n  kind: traefik\n  routes_file: /etc/traefik/tend.yml\n"
		"  tls:\n    internal-ca: {kind: internal, suffixes: [.lab.test]}\n");
	test_write_file(r->repo, "services/traefik/service.yaml", "name: traefik\nhost: web1\n");
	{
		char *web = NULL;

		assert_true(asprintf(&web, "name: web\nhost: web1\ndepends_on: [traefik]\n"
				     "proxy: {domain: web.lab.test, port: %d}\n", r->port) > 0);
		test_write_file(r->repo, "services/web/service.yaml", web);
		free(web);
	}
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	idle *r = *state;

	fx_stop_services(r->root);
	free(r->repo);
	free(r->root);
	free(r->config);
	free(r->log);
	free(r->route);
	test_tmpdir_remove(r->dir);
	free(r);
	return 0;
}

#define WORKERS "tend_worker_runs_total"
#define UNCHANGED "tend_polls_total{result=\"unchanged\"}"
#define FULL "tend_polls_total{result=\"reconciled\"}"

static const char *applied(idle *r, char *buf, size_t size)
{
	json_t *j = test_agent_status(r->base);

	buf[0] = '\0';
	if (j) {
		const char *a = json_string_value(json_object_get(j, "applied_commit"));
		const char *p = json_string_value(json_object_get(j, "phase"));

		if (a && p && !strcmp(p, "converged"))
			snprintf(buf, size, "%s", a);
		json_decref(j);
	}
	return buf;
}

static void wait_applied(idle *r, const char *commit_hash, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;
	char buf[64];

	while (strcmp(applied(r, buf, sizeof(buf)), commit_hash) && test_now_ms() < end)
		test_sleep_ms(50);
	if (strcmp(buf, commit_hash)) {
		char *log = test_read_file(r->log);

		fail_msg("agent never converged at %s; log:\n%s", commit_hash, log ? log : "");
	}
}

/* Wait until the metric reaches at least min. */
static double wait_metric(idle *r, const char *name, double min, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;
	double v;

	while ((v = test_agent_metric(r->base, name)) < min && test_now_ms() < end)
		test_sleep_ms(20);
	return v;
}

static int route_edited(idle *r)
{
	char *text = test_read_file(r->route);
	int edited = text && strstr(text, "# edited by hand") != NULL;

	free(text);
	return edited;
}

static void edit_route(idle *r)
{
	char *text = test_read_file(r->route), *edited = NULL;

	assert_non_null(text);
	assert_non_null(strstr(text, "web.lab.test"));
	assert_true(asprintf(&edited, "%s# edited by hand\n", text) > 0);
	assert_int_equal(tend_file_write_atomic(r->route, edited, strlen(edited), 0644, (uid_t)-1, (gid_t)-1), 0);
	free(text);
	free(edited);
}

static void reload(idle *r, pid_t agent, const char *poll, int n)
{
	write_config(r, poll);
	kill(agent, SIGHUP);
	assert_true(wait_metric(r, FULL, n, 60000) >= n);
}

static void test_idle_polls(void **state)
{
	idle *r = *state;
	char *argv[] = { (char *)TEND_BINARY, "run", "--config", r->config, NULL };
	char *c1, *c2;
	double w0, u0, full, u;
	long long t0;
	pid_t agent;

	write_config(r, "{interval: 100ms, jitter: 0s, drift_interval: 1h}");
	c1 = test_git_commit_all(r->repo, "web");
	agent = test_spawn(argv, r->log);
	wait_applied(r, c1, 240000);

	/* Unchanged remote: polls every 100 ms only look; no worker runs, and
	 * a hand-edited route file stays until a full reconcile. */
	assert_true(wait_metric(r, UNCHANGED, 3, 20000) >= 3);
	w0 = test_agent_metric(r->base, WORKERS);
	u0 = test_agent_metric(r->base, UNCHANGED);
	full = test_agent_metric(r->base, FULL);
	edit_route(r);
	assert_true(wait_metric(r, UNCHANGED, u0 + 10, 20000) >= u0 + 10);
	assert_true(test_agent_metric(r->base, WORKERS) == w0);
	assert_true(test_agent_metric(r->base, FULL) == full);
	assert_true(route_edited(r));

	/* A new commit: reconciled at the next poll (it also repairs the drift). */
	test_write_file(r->repo, "README.md", "the fleet\n");
	c2 = test_git_commit_all(r->repo, "readme");
	t0 = test_now_ms();
	wait_applied(r, c2, 60000);
	assert_true(test_now_ms() - t0 < 30000);
	assert_true(test_agent_metric(r->base, WORKERS) > w0);
	assert_false(route_edited(r));

	/* A short drift interval: the route file edited by hand is put back by
	 * the next drift check, with idle polls in between. */
	reload(r, agent, "{interval: 100ms, jitter: 0s, drift_interval: 1500ms}", (int)full + 2);
	assert_true(wait_metric(r, UNCHANGED, test_agent_metric(r->base, UNCHANGED) + 2, 20000) > 0);
	u0 = test_agent_metric(r->base, UNCHANGED);
	edit_route(r);
	t0 = test_now_ms();
	while (route_edited(r) && test_now_ms() - t0 < 20000)
		test_sleep_ms(20);
	assert_false(route_edited(r));
	assert_true(test_agent_metric(r->base, UNCHANGED) > u0);

	/* drift_interval 0: every poll is a full reconcile, as before. */
	full = test_agent_metric(r->base, FULL);
	reload(r, agent, "{interval: 100ms, jitter: 0s, drift_interval: 0}", (int)full + 1);
	u = test_agent_metric(r->base, UNCHANGED);
	w0 = test_agent_metric(r->base, WORKERS);
	assert_true(wait_metric(r, WORKERS, w0 + 3, 30000) >= w0 + 3);
	assert_true(test_agent_metric(r->base, UNCHANGED) == u);

	assert_int_equal(test_signal_wait(agent, SIGTERM, 30000), 0);
	free(c1);
	free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_idle_polls, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
