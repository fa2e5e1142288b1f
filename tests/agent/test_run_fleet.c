/* Dependency order across hosts, end to end: three `tend run` agents on one
 * machine, each its own host (own 127.0.0.x address and agent port, state,
 * profile, root), pulling one repository. A commit adding a database on db1
 * and an app on apps1 that depends on it is applied on db1 first, then apps1;
 * a commit breaking db1's probe rolls db1 back and leaves apps1 on the previous
 * commit, blocked, while gw1 (no dependencies) goes ahead; a fix converges all.
 * `tend status --fleet` shows every host. */
#define TEST_WITH_HTTP_CLIENT
#include "tests/agent/helpers.h"
#include "tests/reconcile/fixture.h"
#include "state/state.h"

#include <jansson.h>

static const char *const hosts[3] = { "db1", "apps1", "gw1" };
static const char *const addrs[3] = { "127.0.0.2", "127.0.0.3", "127.0.0.4" };

typedef struct {
	char *dir, *repo, *root;
	int agent_port[3], svc_port[3];
	pid_t pid[3];
} fleet;

/* dir/<host><suffix> */
static char *path(fleet *f, const char *suffix, const char *host)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s%s", f->dir, host, suffix) > 0);
	return p;
}

static void write_repo(fleet *f, int with_app, int db_status, const char *colour)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"fleet: test\ndomain: lab.test\nhosts:\n"
		"  db1: {address: %s, agent_port: %d}\n"
		"  apps1: {address: %s, agent_port: %d}\n"
		"  gw1: {address: %s, agent_port: %d}\n",
		addrs[0], f->agent_port[0], addrs[1], f->agent_port[1], addrs[2], f->agent_port[2]) > 0);
	test_write_file(f->repo, "fleet.yaml", text);
	free(text);
	assert_true(asprintf(&text,
		"name: tool\nhost: gw1\n"
		"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n      retries: 30\n"
		"settings: {test_port: %d, colour: %s}\n", f->svc_port[2], f->svc_port[2], colour) > 0);
	test_write_file(f->repo, "services/tool/service.yaml", text);
	free(text);
	if (!with_app)
		return;
	assert_true(asprintf(&text,
		"name: db\nhost: db1\n"
		"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n      retries: 15\n"
		"settings: {test_port: %d, test_status: %d, test_body: 'db %s'}\n",
		f->svc_port[0], f->svc_port[0], db_status, colour) > 0);
	test_write_file(f->repo, "services/db/service.yaml", text);
	free(text);
	assert_true(asprintf(&text,
		"name: app\nhost: apps1\ndepends_on: [db]\n"
		"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n      retries: 30\n"
		"settings: {test_port: %d, test_body: 'app %s'}\n",
		f->svc_port[1], f->svc_port[1], colour) > 0);
	test_write_file(f->repo, "services/app/service.yaml", text);
	free(text);
}

static int setup(void **state)
{
	fleet *f = calloc(1, sizeof(*f));
	int i;

	if (!test_have("nix")) {
		free(f);
		return -1;
	}
	f->dir = test_tmpdir_make("fleet-run");
	assert_true(asprintf(&f->repo, "%s/repo", f->dir) > 0);
	assert_true(asprintf(&f->root, "%s/run", f->dir) > 0);
	setenv("TEND_TEST_ROOT", f->root, 1);
	assert_int_equal(test_sh(NULL, f->dir, "git init -q -b main repo"), 0);
	fx_copy_flake(f->repo);
	for (i = 0; i < 3; i++) {
		char *yaml = NULL, name[64];

		f->agent_port[i] = test_free_port();
		f->svc_port[i] = test_free_port();
		assert_true(asprintf(&yaml,
			"host: %s\n"
			"repository: {url: repo, branch: main}\n"
			"state_dir: %s/state\n"
			"root: %s/root\n"
			"secrets_root: %s/secrets\n"
			"nix: {extra_options: [--option, substituters, ''], build_timeout: 2m}\n"
			"system: {profile: %s/profiles/system, current_system: run/%s/current-system, switch_timeout: 20s}\n"
			"probes: {deadline: 60s}\n"
			"poll: {interval: 1s, jitter: 0s}\n"
			"listen: {address: %s, port: %d}\n",
			hosts[i], hosts[i], hosts[i], hosts[i], hosts[i], hosts[i], addrs[i],
			f->agent_port[i]) > 0);
		snprintf(name, sizeof(name), "%s.yaml", hosts[i]);
		test_write_file(f->dir, name, yaml);
		free(yaml);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fleet *f = *state;
	int i;

	for (i = 0; i < 3; i++)
		if (f->pid[i] > 0)
			test_signal_wait(f->pid[i], SIGTERM, 10000);
	fx_stop_services(f->root);
	free(f->repo);
	free(f->root);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static json_t *status(fleet *f, int i)
{
	char base[64];

	snprintf(base, sizeof(base), "http://%s:%d", addrs[i], f->agent_port[i]);
	return test_agent_status(base);
}

static char *log_of(fleet *f, int i)
{
	char *p = path(f, "/agent.log", hosts[i]), *text = test_read_file(p);

	free(p);
	return text ? text : strdup("");
}

/* Wait until host i reports phase at applied; error text must contain err if given. */
static void wait_host(fleet *f, int i, const char *phase, const char *applied, const char *err,
		      long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;
	char last[512] = "";

	do {
		json_t *j = status(f, i);

		if (j) {
			const char *p = json_string_value(json_object_get(j, "phase"));
			const char *a = json_string_value(json_object_get(j, "applied_commit"));
			const char *e = json_string_value(json_object_get(j, "last_error"));

			snprintf(last, sizeof(last), "%s at %.12s (%s)", p ? p : "?", a ? a : "-", e ? e : "");
			if (p && !strcmp(p, phase) && a && !strcmp(a, applied) && (!err || (e && strstr(e, err)))) {
				json_decref(j);
				return;
			}
			json_decref(j);
		}
		test_sleep_ms(100);
	} while (test_now_ms() < end);
	{
		char *l0 = log_of(f, 0), *l1 = log_of(f, 1), *l2 = log_of(f, 2);

		fail_msg("%s never reached %s at %.12s (last: %s)\n--- db1\n%s--- apps1\n%s--- gw1\n%s",
			 hosts[i], phase, applied, last, l0, l1, l2);
	}
}

static const tend_state_history *applied_entry(const tend_state *st, const char *commit)
{
	size_t i;

	for (i = 0; i < st->n_history; i++)
		if (!strcmp(st->history[i].commit, commit) && !strcmp(st->history[i].outcome, "applied"))
			return &st->history[i];
	return NULL;
}

static void test_three_agents_in_dependency_order(void **state)
{
	fleet *f = *state;
	char *c1, *c2, *c3, *c4, *dbdir, *appsdir, *log, *cfg;
	tend_state *db = NULL, *apps = NULL;
	const tend_state_history *hdb, *happs;
	tend_proc_result res;
	int i;

	write_repo(f, 0, 200, "blue");
	c1 = test_git_commit_all(f->repo, "gateway tool");
	for (i = 0; i < 3; i++) {
		char *config = path(f, ".yaml", hosts[i]), *logp = path(f, "/agent.log", hosts[i]);
		char *argv[] = { (char *)TEND_BINARY, "run", "--config", config, NULL };

		assert_int_equal(test_sh(NULL, f->dir, "mkdir -p %s", hosts[i]), 0);
		f->pid[i] = test_spawn(argv, logp);
		free(config);
		free(logp);
	}
	for (i = 0; i < 3; i++)
		wait_host(f, i, "converged", c1, NULL, 180000);

	/* A database on db1 and an app on apps1 that needs it: db1 first. */
	write_repo(f, 1, 200, "green");
	c2 = test_git_commit_all(f->repo, "db and app");
	for (i = 0; i < 3; i++)
		wait_host(f, i, "converged", c2, NULL, 180000);
	dbdir = path(f, "/state", "db1");
	appsdir = path(f, "/state", "apps1");
	assert_int_equal(tend_state_load(&db, dbdir), 0);
	assert_int_equal(tend_state_load(&apps, appsdir), 0);
	hdb = applied_entry(db, c2);
	happs = applied_entry(apps, c2);
	assert_non_null(hdb);
	assert_non_null(happs);
	assert_true(hdb->end <= happs->start);
	tend_state_free(db);
	tend_state_free(apps);
	log = log_of(f, 1);
	assert_non_null(strstr(log, "waiting for host db1"));
	free(log);

	/* db1's probe breaks: db1 rolls back, apps1 stays on c2, blocked; gw1 goes on. */
	write_repo(f, 1, 500, "red");
	c3 = test_git_commit_all(f->repo, "db broken");
	wait_host(f, 0, "rolled-back", c2, NULL, 120000);
	wait_host(f, 1, "blocked", c2, "host db1 rolled back commit", 60000);
	wait_host(f, 2, "converged", c3, NULL, 60000);
	test_sleep_ms(2000);
	wait_host(f, 1, "blocked", c2, "host db1 rolled back commit", 1000);

	/* The fix converges both. */
	write_repo(f, 1, 200, "yellow");
	c4 = test_git_commit_all(f->repo, "db fixed");
	for (i = 0; i < 3; i++)
		wait_host(f, i, "converged", c4, NULL, 180000);

	/* A commit that changes only apps1: db1 has nothing to do for it, records
	 * it as applied (it runs what c5 describes, so the fleet table does not
	 * show it behind), and apps1 must not wait for it forever. */
	{
		char *text = NULL, *c5;

		assert_true(asprintf(&text, "name: app\nhost: apps1\ndepends_on: [db]\n"
			"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
			"      interval: 100ms\n      retries: 30\n"
			"settings: {test_port: %d, test_body: 'app only'}\n",
			f->svc_port[1], f->svc_port[1]) > 0);
		test_write_file(f->repo, "services/app/service.yaml", text);
		free(text);
		c5 = test_git_commit_all(f->repo, "app only");
		wait_host(f, 1, "converged", c5, NULL, 60000);
		wait_host(f, 0, "converged", c5, NULL, 10000);
		free(c5);
	}

	/* tend status --fleet: every host's agent. */
	cfg = path(f, ".yaml", "apps1");
	{
		const char *args[] = { "status", "--fleet", "--config", cfg, NULL };

		assert_int_equal(test_tend(&res, NULL, args), 0);
		assert_int_equal(res.exit_code, 0);
		for (i = 0; i < 3; i++)
			assert_non_null(strstr(res.out.ptr, hosts[i]));
		assert_non_null(strstr(res.out.ptr, "converged"));
		tend_proc_result_dispose(&res);
	}
	/* One agent down: the table says so and the exit code is 1. */
	test_signal_wait(f->pid[2], SIGTERM, 10000);
	f->pid[2] = 0;
	{
		const char *args[] = { "status", "--fleet", "--config", cfg, NULL };

		assert_int_equal(test_tend(&res, NULL, args), 0);
		assert_int_equal(res.exit_code, 1);
		assert_non_null(strstr(res.out.ptr, "unreachable"));
		tend_proc_result_dispose(&res);
	}
	free(cfg);
	free(dbdir);
	free(appsdir);
	free(c1);
	free(c2);
	free(c3);
	free(c4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_three_agents_in_dependency_order, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
