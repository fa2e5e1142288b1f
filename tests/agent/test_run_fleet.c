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

/* Each host's agent configuration, with the probes mapping given. */
static void write_configs(fleet *f, const char *probes)
{
	int i;

	for (i = 0; i < 3; i++) {
		char *yaml = NULL, name[64];

		assert_true(asprintf(&yaml,
			"host: %s\n"
			"repository: {url: repo, branch: main}\n"
			"state_dir: %s/state\n"
			"root: %s/root\n"
			"secrets_root: %s/secrets\n"
			"secrets_storage: disk\n"
			"nix: {extra_options: [--option, substituters, ''], build_timeout: 2m}\n"
			"system: {profile: %s/profiles/system, current_system: run/%s/current-system, switch_timeout: 20s}\n"
			"probes: %s\n"
			"poll: {interval: 1s, jitter: 0s}\n"
			"listen: {address: %s, port: %d}\n",
			hosts[i], hosts[i], hosts[i], hosts[i], hosts[i], hosts[i], probes, addrs[i],
			f->agent_port[i]) > 0);
		snprintf(name, sizeof(name), "%s.yaml", hosts[i]);
		test_write_file(f->dir, name, yaml);
		free(yaml);
	}
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
		f->agent_port[i] = test_free_port();
		f->svc_port[i] = test_free_port();
	}
	write_configs(f, "{deadline: 60s}");
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

/* A stand-in for gw1's agent that answers /v1/status with markup in every text field. */
static pid_t hostile_agent(fleet *f)
{
	char *script = NULL, *log = path(f, "/hostile.log", "gw1"), port[16];
	char *argv[] = { "/usr/bin/python3", NULL, NULL, NULL, NULL };
	pid_t pid;

	test_write_file(f->dir, "hostile.py",
		"import http.server, json, sys\n"
		"doc = {'host': 'gw1', 'phase': '<script>alert(1)</script>',\n"
		"  'applied_commit': '\\\"><img src=x onerror=alert(2)>',\n"
		"  'last_error': '<img src=x onerror=alert(3)> x\\\" onmouseover=\\\"alert(6)',\n"
		"  'history': [{'time': '<i>now</i>', 'commit': 'c0ffee', 'outcome': '<b>applied</b>',\n"
		"    'message': '</li></ol><script>alert(4)</script>', 'changes': '</pre><img src=x>'}],\n"
		"  'liveness': {'svc\\\"><img src=x>': {'up': False, 'error': '<script>alert(5)</script>'},\n"
		"    'q\\\" onmouseover=\\\"alert(7)': {'up': True}}}\n"
		"class H(http.server.BaseHTTPRequestHandler):\n"
		"    def do_GET(self):\n"
		"        body = json.dumps(doc).encode()\n"
		"        self.send_response(200)\n"
		"        self.send_header('Content-Type', 'application/json')\n"
		"        self.send_header('Content-Length', str(len(body)))\n"
		"        self.end_headers()\n"
		"        self.wfile.write(body)\n"
		"    def log_message(self, *a):\n"
		"        pass\n"
		"http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()\n");
	assert_true(asprintf(&script, "%s/hostile.py", f->dir) > 0);
	snprintf(port, sizeof(port), "%d", f->agent_port[2]);
	argv[1] = script;
	argv[2] = (char *)addrs[2];
	argv[3] = port;
	pid = test_spawn(argv, log);
	{
		char url[96];
		long long end = test_now_ms() + 10000;

		snprintf(url, sizeof(url), "http://%s:%d/v1/status", addrs[2], f->agent_port[2]);
		while (test_http("GET", url, NULL, NULL, 0, NULL) != 200 && test_now_ms() < end)
			test_sleep_ms(100);
		assert_int_equal(test_http("GET", url, NULL, NULL, 0, NULL), 200);
	}
	free(script);
	free(log);
	return pid;
}

/* GET url's body into a string ("" when it does not answer). */
static char *get(const char *url)
{
	tend_buf b = TEND_BUF_INIT;
	char *s;

	test_http("GET", url, NULL, NULL, 0, &b);
	s = strdup(b.ptr ? b.ptr : "");
	tend_buf_dispose(&b);
	return s;
}

/* The fleet page in a real headless Chromium: loaded from apps1's agent while db1 is degraded
 * (its service killed by hand) and gw1's "agent" answers with markup in every field. The DOM
 * the browser built shows each host's phase, the graph, liveness and the closure diff of
 * apps1's last switch; no remote text became an element; the page's script ran under its
 * policy. A screenshot is kept (fleet-page.png in the test's directory). */
static void test_fleet_page_in_a_browser(void **state)
{
	fleet *f = *state;
	char *c1, *c2, *text = NULL, *pidfile = NULL, *pid, *page, url[96];
	tend_buf out = TEND_BUF_INIT;
	json_t *j, *rows;
	json_error_t jerr;
	pid_t hostile;
	long long end;
	int i;

	if (!test_have("chromium"))
		skip(); /* CI installs it (scripts/bootstrap.sh) */
	write_configs(f, "{deadline: 60s, liveness_interval: 1s}");
	write_repo(f, 0, 200, "blue");
	assert_true(asprintf(&text,
		"name: db\nhost: db1\n"
		"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n      retries: 15\n"
		"  liveness:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 200ms\n      retries: 2\n"
		"settings: {test_port: %d}\n", f->svc_port[0], f->svc_port[0], f->svc_port[0]) > 0);
	test_write_file(f->repo, "services/db/service.yaml", text);
	free(text);
	assert_true(asprintf(&text,
		"name: app\nhost: apps1\ndepends_on: [db]\n"
		"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n      retries: 30\n"
		"settings: {test_port: %d, test_package: app-2.0}\n", f->svc_port[1], f->svc_port[1]) > 0);
	test_write_file(f->repo, "services/app/service.yaml", text);
	free(text);
	c1 = test_git_commit_all(f->repo, "db and app 2.0");
	hostile = hostile_agent(f);
	for (i = 0; i < 2; i++) {
		char *config = path(f, ".yaml", hosts[i]), *logp = path(f, "/agent.log", hosts[i]);
		char *argv[] = { (char *)TEND_BINARY, "run", "--config", config, NULL };

		assert_int_equal(test_sh(NULL, f->dir, "mkdir -p %s", hosts[i]), 0);
		f->pid[i] = test_spawn(argv, logp);
		free(config);
		free(logp);
	}
	wait_host(f, 0, "converged", c1, NULL, 180000);
	wait_host(f, 1, "converged", c1, NULL, 180000);
	/* app 2.1: apps1's switch changes one package. */
	assert_int_equal(test_sh(NULL, f->repo, "sed -i 's/app-2.0/app-2.1/' services/app/service.yaml"), 0);
	c2 = test_git_commit_all(f->repo, "app 2.1");
	wait_host(f, 1, "converged", c2, NULL, 120000);
	/* db's service killed by hand: db1 degraded at its next liveness run. */
	assert_true(asprintf(&pidfile, "%s/db1/service.pid", f->root) > 0);
	pid = test_read_file(pidfile);
	assert_non_null(pid);
	assert_int_equal(kill((pid_t)strtol(pid, NULL, 10), SIGKILL), 0);
	free(pid);
	wait_host(f, 0, "degraded", c2, NULL, 20000);
	/* apps1's page shows it once apps1's own liveness run asked db1 again. */
	snprintf(url, sizeof(url), "http://%s:%d/", addrs[1], f->agent_port[1]);
	end = test_now_ms() + 20000;
	do {
		page = get(url);
		if (strstr(page, "data-host=\"db1\" data-phase=\"degraded\""))
			break;
		free(page);
		page = NULL;
		test_sleep_ms(200);
	} while (test_now_ms() < end);
	assert_non_null(page);
	free(page);

	/* What the browser built. */
	assert_int_equal(test_sh(&out, f->dir, "chromium --headless=new --no-sandbox --disable-gpu "
				 "--disable-dev-shm-usage --no-first-run --user-data-dir=%s/chromium "
				 "--dump-dom '%s' 2>/dev/null | python3 '%s/tests/agent/page_dom.py'",
				 f->dir, url, TEND_SOURCE_DIR), 0);
	j = json_loads(out.ptr, 0, &jerr);
	if (!j)
		fail_msg("page_dom.py: %s: %s", jerr.text, out.ptr);
	assert_string_equal(json_string_value(json_object_get(j, "live")), "1");
	assert_string_equal(json_string_value(json_object_get(j, "title")), "tend: apps1");
	rows = json_object_get(j, "rows");
	assert_string_equal(json_string_value(json_object_get(rows, "db1")), "degraded");
	assert_string_equal(json_string_value(json_object_get(rows, "apps1")), "converged");
	assert_string_equal(json_string_value(json_object_get(rows, "gw1")), "<script>alert(1)</script>");
	/* Remote text stayed text: one script (the page's), no img, the error shown as written. */
	assert_int_equal(json_integer_value(json_object_get(j, "scripts")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "imgs")), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "errors"), "gw1")),
			    "<img src=x onerror=alert(3)> x\" onmouseover=\"alert(6)");
	assert_int_equal(json_integer_value(json_object_get(j, "handlers")), 0);
	/* The graph: three hosts, db1 before apps1. */
	assert_int_equal(json_array_size(json_object_get(j, "nodes")), 3);
	assert_int_equal(json_array_size(json_object_get(j, "edges")), 1);
	assert_string_equal(json_string_value(json_array_get(json_array_get(json_object_get(j, "edges"), 0), 0)), "db1");
	assert_string_equal(json_string_value(json_array_get(json_array_get(json_object_get(j, "edges"), 0), 1)), "apps1");
	/* Liveness per service, and apps1's last switch with its closure diff. */
	assert_true(json_is_false(json_object_get(json_object_get(json_object_get(j, "liveness"), "db1"), "db")));
	assert_non_null(strstr(json_string_value(json_array_get(json_object_get(json_object_get(j, "changes"), "apps1"), 0)),
			       "package app 2.0 -> 2.1"));
	json_decref(j);

	/* The screenshot the README shows. */
	tend_buf_clear(&out);
	assert_int_equal(test_sh(&out, NULL, "chromium --headless=new --no-sandbox --disable-gpu "
				 "--disable-dev-shm-usage --no-first-run --user-data-dir=%s/chromium "
				 "--hide-scrollbars --window-size=1100,1300 --screenshot=\"$PWD/fleet-page.png\" "
				 "'%s' >/dev/null 2>&1 && head -c 8 fleet-page.png | od -An -c | tr -d ' \n'",
				 f->dir, url), 0);
	assert_string_equal(out.ptr, "211PNG\\r\\n032\\n");
	test_signal_wait(hostile, SIGTERM, 5000);
	tend_buf_dispose(&out);
	free(pidfile);
	free(c1);
	free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_three_agents_in_dependency_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fleet_page_in_a_browser, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
