/* The agent's step in-process (tend_agent_step) with its tunables shortened:
 * fetches failing longer than the threshold raise one "fetch failing" alert,
 * and waiting on an unreachable dependency past the deadline raises one
 * "dependency blocked" alert, with the status saying why; both thresholds
 * (and the backoff) come from the configuration. Real git, nix and
 * the alert state file; no mail server (alerts are logged and kept open). */
#include "tests/agent/helpers.h"
#include "tests/reconcile/fixture.h"
#include "agent/agent.h"
#include "agent/log.h"
#include "state/state.h"

#include <jansson.h>

typedef struct {
	char *dir, *repo, *config;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!test_have("nix")) {
		free(f);
		return -1;
	}
	tend_log_set_level(TEND_LOG_ERR - 1);   /* the failures are expected */
	f->dir = test_tmpdir_make("agent");
	assert_true(asprintf(&f->repo, "%s/repo", f->dir) > 0);
	assert_true(asprintf(&f->config, "%s/agent.yaml", f->dir) > 0);
	setenv("TEND_TEST_ROOT", f->dir, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	fx_stop_services(f->dir);
	free(f->repo);
	free(f->config);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void write_config(fixture *f, const char *host, const char *url, const char *extra)
{
	char *yaml = NULL;

	assert_true(asprintf(&yaml,
		"host: %s\nrepository: {url: %s}\nstate_dir: state\nroot: root\nsecrets_root: secrets\nsecrets_storage: disk\n"
		"nix: {extra_options: [--option, substituters, '']}\n"
		"system: {profile: profiles/system, current_system: run/%s/current-system}\n"
		"listen: {port: 0}\n%s", host, url, host, extra ? extra : "") > 0);
	test_write_file(f->dir, "agent.yaml", yaml);
	free(yaml);
}

/* The open problems recorded in state/alerts.json, as "kind@commit" lines. */
static char *open_alerts(fixture *f)
{
	char *path = NULL, *text;
	json_t *j, *v;
	tend_buf b = TEND_BUF_INIT;
	size_t i;

	assert_true(asprintf(&path, "%s/state/alerts.json", f->dir) > 0);
	text = test_read_file(path);
	free(path);
	tend_buf_puts(&b, "");
	if (text && (j = json_loads(text, 0, NULL))) {
		json_array_foreach(json_object_get(j, "open"), i, v)
			tend_buf_printf(&b, "%s@%s: %s\n",
					json_string_value(json_object_get(v, "kind")),
					json_string_value(json_object_get(v, "commit")),
					json_string_value(json_object_get(v, "summary")));
		json_decref(j);
	}
	free(text);
	return tend_buf_detach(&b);
}

static int step(tend_agent *a)
{
	static volatile sig_atomic_t no_abort;
	tend_daemon_step_args args = { TEND_TRIGGER_TIMER, 0, &no_abort };

	return tend_agent_step(a, &args);
}

/* The timing keys of the configuration reach the agent; absent ones keep
 * their defaults (the backoff cap follows a long poll interval). */
static void test_timing_from_config(void **state)
{
	fixture *f = *state;
	tend_agent *a;
	tend_agent_tunables *t;

	write_config(f, "web1", "repo", "poll: {interval: 1h, backoff_initial: 300ms, backoff_max: 2s}\n"
		     "dependencies: {deadline: 45s, recheck: 150ms}\n"
		     "alerts: {fetch_failing_after: 20s}\n");
	assert_int_equal(tend_agent_open(&a, f->config), 0);
	t = tend_agent_tunables_get(a);
	assert_int_equal(t->backoff_min_ms, 300);
	assert_int_equal(t->backoff_max_ms, 2000);
	assert_int_equal(t->dep_deadline_ms, 45000);
	assert_int_equal(t->dep_recheck_ms, 150);
	assert_int_equal(t->fetch_alert_after_ms, 20000);
	tend_agent_free(a);
	write_config(f, "web1", "repo", "poll: {interval: 1h}\n");
	assert_int_equal(tend_agent_open(&a, f->config), 0);
	t = tend_agent_tunables_get(a);
	assert_int_equal(t->backoff_min_ms, 5000);
	assert_int_equal(t->backoff_max_ms, 3600000);
	assert_int_equal(t->dep_deadline_ms, 30 * 60000);
	assert_int_equal(t->dep_recheck_ms, 2000);
	assert_int_equal(t->fetch_alert_after_ms, 15 * 60000);
	tend_agent_free(a);
}

static void test_fetch_failing_alerts_once(void **state)
{
	fixture *f = *state;
	tend_agent *a;
	tend_agent_status *st;
	char *alerts;
	int i;

	write_config(f, "web1", "missing-repo", "alerts: {fetch_failing_after: 1s}\n");
	assert_int_equal(tend_agent_open(&a, f->config), 0);
	assert_int_equal(tend_agent_set_worker(a, TEND_BINARY), 0);
	/* Below the threshold: failures are counted, no alert. */
	assert_int_equal(step(a), -1);
	alerts = open_alerts(f);
	assert_string_equal(alerts, "");
	free(alerts);
	/* Past it (alerts.fetch_failing_after: 1s): one alert, however many failures follow. */
	test_sleep_ms(2100);
	for (i = 0; i < 3; i++)
		assert_int_equal(step(a), -1);
	alerts = open_alerts(f);
	assert_non_null(strstr(alerts, "fetch-failing@: fetching the repository has failed for 0 minutes"));
	assert_null(strstr(strstr(alerts, "fetch-failing") + 1, "fetch-failing"));
	free(alerts);
	st = tend_agent_status_get(a);
	tend_agent_status_lock(st);
	assert_int_equal(st->fetch_failures, 4);
	assert_non_null(st->last_error);
	assert_non_null(strstr(st->last_error, "missing-repo"));
	tend_agent_status_unlock(st);
	tend_agent_free(a);
}

/* A head that fails to build: each step fails (the daemon backs off, doubling up to
 * poll.backoff_max) instead of concluding, the failure is in the history once and mailed
 * once however often it repeats, the commit is not blocked (each retry builds it again, a
 * passing failure heals), and the fix applies. */
static void test_build_failure_backs_off(void **state)
{
	fixture *f = *state;
	tend_agent *a;
	tend_agent_status *st;
	tend_state *s = NULL;
	char *c1, *c2, *alerts, *statedir = NULL, *want = NULL;
	size_t i, failed = 0;

	assert_int_equal(test_sh(NULL, f->dir, "git init -q -b main repo"), 0);
	fx_copy_flake(f->repo);
	test_write_file(f->repo, "fleet.yaml",
			"fleet: test\ndomain: lab.test\nhosts:\n  web1: {address: 127.0.0.1}\n");
	/* a package name nix refuses: the system does not build */
	test_write_file(f->repo, "services/web/service.yaml",
			"name: web\nhost: web1\nsettings: {test_package: 'web 1.0'}\n");
	c1 = test_git_commit_all(f->repo, "web, unbuildable");
	write_config(f, "web1", "repo", NULL);
	assert_int_equal(tend_agent_open(&a, f->config), 0);
	assert_int_equal(tend_agent_set_worker(a, TEND_BINARY), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(step(a), -1);
	st = tend_agent_status_get(a);
	tend_agent_status_lock(st);
	assert_int_equal(st->phase, TEND_PHASE_FAILED);
	assert_non_null(st->last_error);
	assert_non_null(strstr(st->last_error, "nix build"));
	assert_int_equal(st->reconciles[TEND_OUTCOME_FAILED], 3);
	tend_agent_status_unlock(st);
	alerts = open_alerts(f);
	assert_true(asprintf(&want, "reconcile-failed@%s: ", c1) > 0);
	assert_non_null(strstr(alerts, want));
	assert_null(strstr(strstr(alerts, want) + 1, "reconcile-failed@"));
	free(alerts);
	assert_true(asprintf(&statedir, "%s/state", f->dir) > 0);
	assert_int_equal(tend_state_load(&s, statedir), 0);
	for (i = 0; i < s->n_history; i++)
		failed += !strcmp(s->history[i].commit, c1) && !strcmp(s->history[i].outcome, "failed");
	assert_int_equal(failed, 1);
	assert_int_equal(s->n_failed, 0);   /* not blocked: the next retry builds it again */
	tend_state_free(s);

	/* The fix. */
	test_write_file(f->repo, "services/web/service.yaml",
			"name: web\nhost: web1\nsettings: {test_package: web-1.0}\n");
	c2 = test_git_commit_all(f->repo, "web 1.0");
	assert_int_equal(step(a), 0);
	tend_agent_status_lock(st);
	assert_int_equal(st->phase, TEND_PHASE_CONVERGED);
	assert_string_equal(st->applied_commit, c2);
	tend_agent_status_unlock(st);
	alerts = open_alerts(f);
	assert_string_equal(alerts, "");
	free(alerts);
	tend_agent_free(a);
	free(want);
	free(statedir);
	free(c1);
	free(c2);
}

static void test_dependency_blocked_past_deadline(void **state)
{
	fixture *f = *state;
	tend_agent *a;
	tend_agent_status *st;
	char *alerts, *fleet = NULL, *c = NULL;
	tend_buf head = TEND_BUF_INIT;

	assert_int_equal(test_sh(NULL, f->dir, "git init -q -b main repo"), 0);
	fx_copy_flake(f->repo);
	/* db1's agent is on a port where nothing listens. */
	assert_true(asprintf(&fleet, "fleet: test\ndomain: lab.test\nhosts:\n"
			     "  db1: {address: 127.0.0.2, agent_port: %d}\n"
			     "  apps1: {address: 127.0.0.3}\n", test_free_port()) > 0);
	test_write_file(f->repo, "fleet.yaml", fleet);
	test_write_file(f->repo, "services/db/service.yaml", "name: db\nhost: db1\n");
	test_write_file(f->repo, "services/app/service.yaml",
			"name: app\nhost: apps1\ndepends_on: [db]\nsettings: {colour: blue}\n");
	assert_int_equal(test_sh(NULL, f->repo, "git add -A && git -c user.name=t -c user.email=t@t commit -qm one"), 0);
	assert_int_equal(test_sh(&head, f->repo, "git rev-parse HEAD"), 0);
	c = strndup(head.ptr, 40);
	write_config(f, "apps1", "repo", "dependencies: {deadline: 1s}\n");
	assert_int_equal(tend_agent_open(&a, f->config), 0);
	assert_int_equal(tend_agent_set_worker(a, TEND_BINARY), 0);
	/* Blocked, within the deadline: status says why, no alert. */
	assert_int_equal(step(a), 0);
	st = tend_agent_status_get(a);
	tend_agent_status_lock(st);
	assert_int_equal(st->phase, TEND_PHASE_BLOCKED);
	assert_string_equal(st->target_commit, c);
	assert_non_null(strstr(st->last_error, "host db1 unreachable"));
	assert_null(st->applied_commit);
	tend_agent_status_unlock(st);
	alerts = open_alerts(f);
	assert_string_equal(alerts, "");
	free(alerts);
	/* Past the deadline (dependencies.deadline: 1s): one alert naming the commit. */
	test_sleep_ms(2100);
	assert_int_equal(step(a), 0);
	assert_int_equal(step(a), 0);
	alerts = open_alerts(f);
	assert_non_null(strstr(alerts, "dependency-blocked@"));
	assert_non_null(strstr(alerts, c));
	assert_null(strstr(strstr(alerts, "dependency-blocked") + 1, "dependency-blocked"));
	free(alerts);
	tend_agent_free(a);
	free(fleet);
	free(c);
	tend_buf_dispose(&head);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_timing_from_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_failing_alerts_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dependency_blocked_past_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_failure_backs_off, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
