/* The agent's worker processes (agent/worker.c, agent/cmd_worker.c) with the
 * real binary, git, nix and the test flake: a worker killed mid-switch is a
 * clear step error, the state stays valid and the next steps roll back and
 * apply; after SIGHUP with a broken configuration file the steps go on with
 * the configuration the agent adopted; SIGTERM during a probe wait reaches
 * the worker, `tend run` exits 0 and the next start finishes the change.
 * Also the hidden command itself: the document from stdin, errors naming
 * the real file. */
#define TEST_WITH_HTTP_CLIENT
#include "tests/agent/helpers.h"
#include "tests/reconcile/fixture.h"
#include "agent/agent.h"
#include "agent/log.h"
#include "state/state.h"

#include <jansson.h>
#include <pthread.h>

static const char *hook_secret = "webhook-secret-for-the-worker-test";

typedef struct {
	char *dir, *repo, *root, *config, *log, *state;
	int port, agent_port;
	char base[64];
} wk;

#define HTTP_PROBE "    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n" \
		   "      interval: 100ms\n      timeout: 1s\n      retries: 50\n"

/* services/web: body, its startup probe (HTTP_PROBE when NULL), more settings. */
static void write_web(wk *w, const char *body, const char *probe, const char *settings)
{
	char *text = NULL, *p = NULL;

	if (!probe)
		assert_true(asprintf(&p, HTTP_PROBE, w->port) > 0);
	assert_true(asprintf(&text, "name: web\nhost: web1\nhealth:\n  startup:\n%s"
			     "settings: {test_port: %d, test_body: '%s'%s}\n", probe ? probe : p,
			     w->port, body, settings ? settings : "") > 0);
	test_write_file(w->repo, "services/web/service.yaml", text);
	free(text);
	free(p);
}

/* Relative paths throughout: they resolve against the file's directory,
 * never the agent's working directory (the test's build directory). */
static void write_config(wk *w, const char *extra)
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
		"system: {profile: profiles/system, current_system: run/web1/current-system, "
		"switch_timeout: 90s}\n"
		"probes: {deadline: 90s}\n"
		"poll: {interval: 1h, jitter: 0s}\n"
		"listen: {address: 127.0.0.1, port: %d}\n"
		"webhook_secret_file: hook.secret\n"
		"%s", w->agent_port, extra ? extra : "") > 0);
	test_write_file(w->dir, "agent.yaml", yaml);
	free(yaml);
}

static int setup(void **state)
{
	wk *w = calloc(1, sizeof(*w));

	if (!test_have("nix")) {
		free(w);
		return -1;
	}
	w->dir = test_tmpdir_make("worker");
	assert_true(asprintf(&w->repo, "%s/repo", w->dir) > 0);
	assert_true(asprintf(&w->root, "%s/run", w->dir) > 0);
	assert_true(asprintf(&w->config, "%s/agent.yaml", w->dir) > 0);
	assert_true(asprintf(&w->log, "%s/agent.log", w->dir) > 0);
	assert_true(asprintf(&w->state, "%s/state", w->dir) > 0);
	setenv("TEND_TEST_ROOT", w->root, 1);
	w->port = test_free_port();
	w->agent_port = test_free_port();
	snprintf(w->base, sizeof(w->base), "http://127.0.0.1:%d", w->agent_port);
	assert_int_equal(test_sh(NULL, w->dir, "git init -q -b main repo"), 0);
	test_write_file(w->dir, "hook.secret", hook_secret);
	fx_copy_flake(w->repo);
	test_write_file(w->repo, "fleet.yaml",
			"fleet: test\ndomain: lab.test\nhosts:\n  web1: {address: 127.0.0.1}\n");
	write_config(w, NULL);
	tend_log_set_level(TEND_LOG_ERR - 1);   /* the in-process failures are expected */
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	wk *w = *state;

	fx_stop_services(w->root);
	free(w->repo);
	free(w->root);
	free(w->config);
	free(w->log);
	free(w->state);
	test_tmpdir_remove(w->dir);
	free(w);
	return 0;
}

static char *web_body(wk *w)
{
	tend_buf out = TEND_BUF_INIT;
	char url[64], *s;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", w->port);
	test_http("GET", url, NULL, NULL, 0, &out);
	s = strdup(out.ptr ? out.ptr : "");
	tend_buf_dispose(&out);
	return s;
}

static int wait_body(wk *w, const char *want, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;

	do {
		char *b = web_body(w);
		int ok = !strcmp(b, want);

		free(b);
		if (ok)
			return 1;
		test_sleep_ms(100);
	} while (test_now_ms() < end);
	return 0;
}

/* The pid of a process whose parent is parent and whose command line
 * (arguments joined by spaces) contains needle; 0 when there is none. */
static pid_t find_process(pid_t parent, const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	assert_non_null(d);
	while (!found && (de = readdir(d))) {
		char path[64], buf[4096], *rp;
		long pid = strtol(de->d_name, &rp, 10), ppid = 0;
		ssize_t n, i;
		int fd;

		if (*rp || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (!(rp = strrchr(buf, ')')) || sscanf(rp + 1, " %*c %ld", &ppid) != 1)
			continue;
		if (parent && ppid != parent)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[n] = '\0';
		if (strstr(buf, needle))
			found = (pid_t)pid;
	}
	closedir(d);
	return found;
}

static long read_pid(const char *path)
{
	char *t = test_read_file(path);
	long pid = t ? strtol(t, NULL, 10) : 0;

	free(t);
	return pid;
}

/* ---- in-process: tend_agent_step, the worker killed under it ---- */

typedef struct {
	tend_agent *a;
	int rc;
} step_thread;

static int step(tend_agent *a)
{
	static volatile sig_atomic_t no_abort;
	tend_daemon_step_args args = { TEND_TRIGGER_TIMER, 0, &no_abort };

	return tend_agent_step(a, &args);
}

static void *step_main(void *arg)
{
	step_thread *t = arg;

	t->rc = step(t->a);
	return NULL;
}

static void expect_status(tend_agent *a, tend_agent_phase phase, const char *applied,
			  const char *error)
{
	tend_agent_status *st = tend_agent_status_get(a);

	tend_agent_status_lock(st);
	assert_string_equal(tend_agent_phase_name(st->phase), tend_agent_phase_name(phase));
	if (applied) {
		assert_non_null(st->applied_commit);
		assert_string_equal(st->applied_commit, applied);
	}
	if (error) {
		assert_non_null(st->last_error);
		assert_non_null(strstr(st->last_error, error));
	}
	tend_agent_status_unlock(st);
}

static void test_killed_worker_then_good_step(void **state)
{
	wk *w = *state;
	char *c1, *c2, *c3, *body, *pidfile = NULL;
	tend_agent *a;
	tend_state *st;
	step_thread t;
	pthread_t th;
	pid_t worker = 0;
	long spid = 0;
	int i;

	assert_int_equal(tend_agent_open(&a, w->config), 0);
	/* This process is the test, not tend: the workers run the built binary. */
	assert_int_equal(tend_agent_set_worker(a, TEND_BINARY), 0);
	write_web(w, "one", NULL, NULL);
	c1 = test_git_commit_all(w->repo, "web one");
	assert_int_equal(step(a), 0);
	expect_status(a, TEND_PHASE_CONVERGED, c1, NULL);
	assert_true(wait_body(w, "one", 5000));

	/* The next switch waits up to 60 s: kill -9 the worker (and its switch's
	 * process group, as a crash of both would) while it runs. */
	write_web(w, "two", NULL, ", test_switch_sleep: 60");
	c2 = test_git_commit_all(w->repo, "web two, slow switch");
	assert_true(asprintf(&pidfile, "%s/web1/switch.pid", w->root) > 0);
	unlink(pidfile);
	t.a = a;
	t.rc = 99;
	assert_int_equal(pthread_create(&th, NULL, step_main, &t), 0);
	for (i = 0; i < 1200 && !(spid = read_pid(pidfile)); i++)
		test_sleep_ms(50);
	assert_true(spid > 0);
	worker = find_process(getpid(), " worker reconcile ");
	assert_true(worker > 0);
	kill(worker, SIGKILL);
	kill(-(pid_t)spid, SIGKILL);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* A clear step error; this process (the supervisor) is fine. */
	assert_int_equal(t.rc, -1);
	expect_status(a, TEND_PHASE_FAILED, c1, "reconcile worker killed by signal 9");
	{
		tend_agent_status *s = tend_agent_status_get(a);

		tend_agent_status_lock(s);
		assert_string_equal(s->target_commit, c2);   /* what it was applying */
		tend_agent_status_unlock(s);
	}
	/* The state file is valid and says what was in flight. */
	assert_int_equal(tend_state_load(&st, w->state), 0);
	assert_true(st->inflight.active);
	assert_string_equal(st->inflight.commit, c2);
	assert_int_equal(st->inflight.phase, TEND_PHASE_SWITCH);
	tend_state_free(st);

	/* The next step undoes the interrupted change (the system never became c2). */
	assert_int_equal(step(a), 0);
	expect_status(a, TEND_PHASE_ROLLED_BACK, c1, "interrupted during switch");
	body = web_body(w);
	assert_string_equal(body, "one");
	free(body);
	/* And a good commit after it applies. */
	write_web(w, "three", NULL, NULL);
	c3 = test_git_commit_all(w->repo, "web three");
	assert_int_equal(step(a), 0);
	expect_status(a, TEND_PHASE_CONVERGED, c3, NULL);
	assert_true(wait_body(w, "three", 5000));
	/* No worker left behind. */
	assert_int_equal(find_process(getpid(), " worker "), 0);
	tend_agent_free(a);
	free(pidfile);
	free(c1);
	free(c2);
	free(c3);
}

static int log_count(wk *w, const char *needle)
{
	char *log = test_read_file(w->log), *p;
	int n = 0;

	for (p = log; p && (p = strstr(p, needle)); p++)
		n++;
	free(log);
	return n;
}

static int wait_log(wk *w, const char *needle, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;

	while (!log_count(w, needle) && test_now_ms() < end)
		test_sleep_ms(20);
	return log_count(w, needle) > 0;
}

/* POST /v1/hook signed with the secret (HMAC computed by Python). */
static long hook(wk *w)
{
	const char *body = "{\"ref\":\"refs/heads/main\"}";
	tend_buf sig = TEND_BUF_INIT;
	char hdr[160], url[96];
	const char *headers[] = { hdr, NULL };
	long code;

	assert_int_equal(test_sh(&sig, NULL, "/usr/bin/python3 -c 'import hmac, hashlib, sys; "
				 "sys.stdout.write(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), "
				 "hashlib.sha256).hexdigest())' '%s' '%s'", hook_secret, body), 0);
	snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: sha256=%s", sig.ptr);
	snprintf(url, sizeof(url), "%s/v1/hook", w->base);
	code = test_http("POST", url, headers, body, strlen(body), NULL);
	tend_buf_dispose(&sig);
	return code;
}

static void test_sighup_broken_config_steps_go_on(void **state)
{
	wk *w = *state;
	char *argv[] = { (char *)TEND_BINARY, "run", "--config", w->config, NULL };
	char *c1, *c2;
	pid_t agent;
	int wstatus;

	write_web(w, "one", NULL, NULL);
	c1 = test_git_commit_all(w->repo, "web one");
	agent = test_spawn(argv, w->log);
	test_agent_wait_phase(w->base, w->log, "converged", c1, 240000);

	/* A broken file, then SIGHUP: the agent keeps what it adopted... */
	write_config(w, "poll: {interval: soon}\n");
	kill(agent, SIGHUP);
	assert_true(wait_log(w, "SIGHUP: keeping the previous configuration: ", 5000));
	assert_true(log_count(w, "agent.yaml:") >= 1);
	/* ...and so do its workers, which never read the file: the next commit applies. */
	write_web(w, "two", NULL, NULL);
	c2 = test_git_commit_all(w->repo, "web two");
	assert_int_equal(hook(w), 202);
	test_agent_wait_phase(w->base, w->log, "converged", c2, 120000);
	assert_true(wait_body(w, "two", 5000));
	assert_int_equal(log_count(w, "failed"), 0);
	/* The steps ran in workers: counted, with their peak memory. */
	assert_true(test_agent_metric(w->base, "tend_worker_runs_total") >= 2);
	assert_true(test_agent_metric(w->base, "tend_worker_max_resident_bytes") > 1e6);
	assert_true(test_agent_metric(w->base, "tend_worker_cpu_seconds_total") > 0);
	wstatus = test_signal_wait(agent, SIGTERM, 10000);
	assert_true(wstatus != -1 && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
	free(c1);
	free(c2);
}

static void test_sigterm_during_probe_wait_leaves_change(void **state)
{
	wk *w = *state;
	char *argv[] = { (char *)TEND_BINARY, "run", "--config", w->config, NULL };
	char *c1, *c2, *probe = NULL, *needle = NULL;
	long long sent;
	tend_state *st;
	pid_t agent;
	int wstatus;

	write_web(w, "one", NULL, NULL);
	c1 = test_git_commit_all(w->repo, "web one");
	agent = test_spawn(argv, w->log);
	test_agent_wait_phase(w->base, w->log, "converged", c1, 240000);

	/* c2's probe waits for a file (up to 60 s of retries). */
	assert_true(asprintf(&probe, "    - command: [test, -e, '%s/ready']\n"
			     "      interval: 100ms\n      retries: 600\n", w->dir) > 0);
	write_web(w, "two", probe, NULL);
	c2 = test_git_commit_all(w->repo, "web two, probe waits");
	assert_int_equal(hook(w), 202);
	assert_true(wait_body(w, "two", 120000));   /* switched; probing */
	test_sleep_ms(300);
	sent = test_now_ms();
	wstatus = test_signal_wait(agent, SIGTERM, 10000);
	assert_true(wstatus != -1);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);
	assert_true(test_now_ms() - sent < 5000);
	assert_int_equal(log_count(w, "agent stopping"), 1);
	assert_int_equal(log_count(w, "killed by signal"), 0);
	/* The worker got the stop, answered and was waited for: none is left. */
	assert_true(asprintf(&needle, "worker reconcile --config %s", w->config) > 0);
	assert_int_equal(find_process(0, needle), 0);
	/* The change is left in flight, for the next start. */
	assert_int_equal(tend_state_load(&st, w->state), 0);
	assert_true(st->inflight.active);
	assert_string_equal(st->inflight.commit, c2);
	assert_int_equal(st->inflight.phase, TEND_PHASE_PROBES);
	tend_state_free(st);

	/* The next start finishes it: the probe passes now. */
	test_write_file(w->dir, "ready", "");
	agent = test_spawn(argv, w->log);
	test_agent_wait_phase(w->base, w->log, "converged", c2, 120000);
	assert_int_equal(tend_state_load(&st, w->state), 0);
	assert_false(st->inflight.active);
	assert_string_equal(st->applied_commit, c2);
	/* Recorded as the probes passing, not as a commit with nothing to do. */
	assert_string_equal(st->history[st->n_history - 1].outcome, "applied");
	assert_string_equal(st->history[st->n_history - 1].commit, c2);
	tend_state_free(st);
	wstatus = test_signal_wait(agent, SIGTERM, 10000);
	assert_true(wstatus != -1 && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
	free(needle);
	free(probe);
	free(c1);
	free(c2);
}

/* The hidden command: the document on stdin, parsed against --base, its
 * errors naming the file the supervisor loaded; refused when run by hand. */
static void test_worker_command(void **state)
{
	wk *w = *state;
	const char *hand[] = { "worker", "reconcile", "--config", w->config, NULL };
	tend_proc_result res;
	tend_buf out = TEND_BUF_INIT;
	json_t *j;

	assert_int_equal(test_tend(&res, NULL, hand), 0);
	assert_int_equal(res.exit_code, 1);
	assert_non_null(strstr(res.err.ptr, "internal to 'tend run'"));
	tend_proc_result_dispose(&res);
	/* A broken document: the answer is the error, naming the file and line. */
	assert_int_equal(test_sh(&out, NULL, "printf 'host: web1\\nstate_dir: state\\npolll: 1\\n' | "
				 "'%s' worker reconcile --plan-only --config '%s' --base '%s' 2>/dev/null",
				 TEND_BINARY, w->config, w->dir), 0);
	j = json_loads(out.ptr, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "return")), -4);
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "agent.yaml:3:1:"));
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "polll"));
	json_decref(j);
	tend_buf_clear(&out);
	/* The file on disk is not what it reads: a valid document, a missing
	 * repository (relative, so resolved against --base) is its answer. */
	test_write_file(w->dir, "agent.yaml", "not: [valid");
	assert_int_equal(test_sh(&out, NULL, "printf 'host: web1\\nstate_dir: state\\n"
				 "repository: {url: no-such-repo}\\n' | '%s' worker reconcile "
				 "--plan-only --config '%s' --base '%s' 2>/dev/null", TEND_BINARY,
				 w->config, w->dir), 0);
	j = json_loads(out.ptr, 0, NULL);
	assert_non_null(j);
	assert_true(json_integer_value(json_object_get(j, "return")) < 0);
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), w->dir));
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "no-such-repo"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "report"), "commit")), "");
	json_decref(j);
	tend_buf_clear(&out);
	/* A mail request that is not one: refused, nothing sent. */
	assert_int_equal(test_sh(&out, NULL, "printf '{\"smtp\": {}}' | '%s' worker mail 2>/dev/null",
				 TEND_BINARY), 0);
	j = json_loads(out.ptr, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "return")), -4);
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "not a mail request"));
	json_decref(j);
	tend_buf_dispose(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_worker_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_worker_then_good_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sighup_broken_config_steps_go_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_during_probe_wait_leaves_change, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
