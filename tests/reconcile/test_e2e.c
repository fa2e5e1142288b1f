/* End to end with the real tend binary, a real git repository holding a fleet
 * and the test flake, real `nix build`, real profiles (in a temp dir), the
 * test systems' switch-to-configuration starting a real HTTP service, and
 * real probes: apply, plan, roll back a broken commit, not retry it, apply a
 * fix, repair drift, skip an unchanged system, roll back by hand, and recover
 * from kill -9 in the middle of a switch. */
#include "tests/reconcile/fixture.h"
#include "state/state.h"
#include "util/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

typedef struct {
	char *dir;        /* everything lives here */
	char *repo;       /* the operator's repository (work tree) */
	char *root;       /* TEND_TEST_ROOT: where the test systems run */
	char *config;     /* agent.yaml */
	char *routes;     /* the routes file on the "host" */
	char *state_dir;
	int port;         /* the web service's port */
} e2e;

static void write_fleet(e2e *e)
{
	test_write_file(e->repo, "fleet.yaml",
		"fleet: test\n"
		"domain: lab.test\n"
		"hosts:\n"
		"  web1: {address: 127.0.0.1}\n"
		"  web2: {address: 127.0.0.2}\n"
		"proxy:\n"
		"  service: traefik\n"
		"  kind: traefik\n"
		"  routes_file: /etc/traefik/tend.yml\n"
		"  tls:\n"
		"    internal-ca: {kind: internal, suffixes: [.lab.test]}\n");
	test_write_file(e->repo, "services/traefik/service.yaml",
		"name: traefik\nhost: web1\n");
	test_write_file(e->repo, "services/other/service.yaml",
		"name: other\nhost: web2\nsettings: {colour: blue}\n");
}

/* The web service's startup probe waits this long before its first try. */
static const char *web_grace = "0s";

/* services/web: answers `status` with `body` on e->port; extra settings appended. */
static void write_web(e2e *e, int status, const char *body, const char *extra)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"name: web\n"
		"host: web1\n"
		"depends_on: [traefik]\n"
		"proxy: {domain: web.lab.test, port: %d}\n"
		"health:\n"
		"  startup:\n"
		"    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n"
		"      timeout: 1s\n"
		"      retries: 10\n"
		"      grace: %s\n"
		"settings:\n"
		"  test_port: %d\n"
		"  test_status: %d\n"
		"  test_body: '%s'\n"
		"%s",
		e->port, e->port, web_grace, e->port, status, body, extra ? extra : "") > 0);
	test_write_file(e->repo, "services/web/service.yaml", text);
	free(text);
}

static char *commit(e2e *e, const char *message)
{
	tend_buf out = TEND_BUF_INIT;
	char *hash;

	assert_int_equal(test_sh(NULL, e->repo,
		"git add -A && git -c user.name=op -c user.email=op@lab.test commit -q -m '%s'",
		message), 0);
	assert_int_equal(test_sh(&out, e->repo, "git rev-parse HEAD"), 0);
	hash = strndup(out.ptr, 40);
	tend_buf_dispose(&out);
	return hash;
}

static int setup(void **state)
{
	e2e *e = calloc(1, sizeof(*e));
	char *yaml = NULL;

	e->dir = test_tmpdir_make("e2e");
	assert_true(asprintf(&e->repo, "%s/repo", e->dir) > 0);
	assert_true(asprintf(&e->root, "%s/run", e->dir) > 0);
	assert_true(asprintf(&e->config, "%s/agent.yaml", e->dir) > 0);
	assert_true(asprintf(&e->routes, "%s/hostroot/etc/traefik/tend.yml", e->dir) > 0);
	assert_true(asprintf(&e->state_dir, "%s/state", e->dir) > 0);
	setenv("TEND_TEST_ROOT", e->root, 1);
	/* the tend processes: see lsan.supp (a libgit2 1.5 leak) */
	setenv("LSAN_OPTIONS", "suppressions=" TEND_SOURCE_DIR "/tests/reconcile/lsan.supp:print_suppressions=0", 1);
	e->port = fx_free_port();
	assert_int_equal(test_sh(NULL, e->dir, "git init -q -b main repo"), 0);
	fx_copy_flake(e->repo);
	write_fleet(e);
	/* Offline, and as root without Debian's nix.conf (CI installs nix-bin without
	 * recommends): no binary cache, no sandbox (the builder is /bin/sh), no
	 * build users. */
	assert_true(asprintf(&yaml,
		"host: web1\n"
		"repository: {url: repo, branch: main}\n"
		"state_dir: state\n"
		"root: hostroot\n"
		"secrets_root: secrets\n"
		"nix: {extra_options: [--option, substituters, '', --option, sandbox, 'false', --option, build-users-group, ''], build_timeout: 2m}\n"
		"system:\n"
		"  profile: profiles/system\n"
		"  current_system: run/web1/current-system\n"
		"  switch_timeout: 20s\n"
		"probes: {deadline: 30s}\n"
		"age_identities: [age.key]\n") > 0);
	assert_int_equal(test_sh(NULL, e->dir, "age-keygen -o age.key 2>/dev/null"), 0);
	test_write_file(e->dir, "agent.yaml", yaml);
	free(yaml);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	e2e *e = *state;

	fx_stop_services(e->root);
	free(e->repo);
	free(e->root);
	free(e->config);
	free(e->routes);
	free(e->state_dir);
	test_tmpdir_remove(e->dir);
	free(e);
	return 0;
}

/* Run tend with args (then --config); returns the exit code, output in *out if given. */
static int tend(e2e *e, char **out, const char *cmd, const char *a1, const char *a2)
{
	const char *args[8];
	tend_proc_result res;
	size_t n = 0;
	int code;

	args[n++] = cmd;
	if (!strcmp(cmd, "reconcile"))
		args[n++] = "--once";
	args[n++] = "--config";
	args[n++] = e->config;
	if (a1)
		args[n++] = a1;
	if (a2)
		args[n++] = a2;
	args[n] = NULL;
	{
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(test_tend(&res, NULL, args), 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (getenv("TEND_E2E_TIMES"))
			fprintf(stderr, "TIME tend %s %s: %ld ms\n", cmd, a1 ? a1 : "",
				(long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
	}
	code = res.exit_code;
	if (out)
		assert_true(asprintf(out, "%s%s", res.out.ptr, res.err.ptr) >= 0);
	else
		print_message("tend %s: exit %d\n%s%s", cmd, code, res.out.ptr, res.err.ptr);
	tend_proc_result_dispose(&res);
	return code;
}

/* What the web service answers now ("" when nothing answers). */
static char *web_body(e2e *e)
{
	tend_buf out = TEND_BUF_INIT;
	char *s;

	test_sh(&out, NULL, "curl -s --max-time 2 http://127.0.0.1:%d/", e->port);
	s = strdup(out.ptr ? out.ptr : "");
	tend_buf_dispose(&out);
	return s;
}

static char *current_system(e2e *e)
{
	char *link = NULL, buf[4096];
	ssize_t n;

	assert_true(asprintf(&link, "%s/web1/current-system", e->root) > 0);
	n = readlink(link, buf, sizeof(buf) - 1);
	free(link);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

static tend_state *load_state(e2e *e)
{
	tend_state *st = NULL;

	if (tend_state_load(&st, e->state_dir) < 0)
		fail_msg("state: %s", tend_error_last());
	return st;
}

static void expect_contains(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("expected '%s' in:\n%s", needle, hay ? hay : "(null)");
}

static void test_apply_rollback_fix_drift(void **state)
{
	e2e *e = *state;
	char *c1, *c2, *c3, *c4, *out = NULL, *sys1, *sys3, *body, *routes, *edited;
	tend_state *st;
	long gens_before;

	write_web(e, 200, "one", NULL);
	c1 = commit(e, "web one");

	/* a good commit: planned (exit 2), applied, probed healthy, recorded */
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "switch system (none) -> /nix/store/");
	expect_contains(out, "write file ");
	expect_contains(out, "/hostroot/etc/traefik/tend.yml (traefik, new)");
	expect_contains(out, "probe web");
	/* files first, then the switch, then the probes */
	assert_true(strstr(out, "write file ") < strstr(out, "switch system"));
	assert_true(strstr(out, "switch system") < strstr(out, "probe web"));
	free(out);
	/* planning changed nothing on the host */
	assert_null(current_system(e));
	assert_false(tend_path_exists(e->routes));
	assert_int_equal(tend(e, &out, "plan", "--json", NULL), 2);
	expect_contains(out, "\"action\": \"write_file\"");
	expect_contains(out, "\"action\": \"switch\"");
	expect_contains(out, "\"outcome\": \"planned\"");
	free(out);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "web1: applied: applied commit ");
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	sys1 = current_system(e);
	assert_non_null(sys1);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c1);
	assert_string_equal(st->system, sys1);
	assert_int_equal(st->generation, 1);
	assert_non_null(tend_state_file_get(st, e->routes));
	assert_false(st->inflight.active);
	tend_state_free(st);
	routes = test_read_file(e->routes);
	expect_contains(routes, "web.lab.test");
	/* nothing left to do */
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 0);
	expect_contains(out, "nothing to do");
	free(out);

	/* a commit that breaks the service: applied, probe fails, rolled back */
	write_web(e, 500, "broken", NULL);
	c2 = commit(e, "web broken");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "HTTP 500 (expected 200)");
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");          /* the previous generation answers again */
	free(body);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	assert_int_equal(tend(e, &out, "history", "--json", NULL), 0);
	expect_contains(out, "\"outcome\": \"rolled-back\"");
	expect_contains(out, "\"failed_probe\": \"web: http http://127.0.0.1:");
	expect_contains(out, "HTTP 500 (expected 200)\\nbroken");
	expect_contains(out, c2);
	free(out);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c1);
	assert_true(tend_state_failed_has(st, c2));
	assert_string_equal(st->history[st->n_history - 1].rollback_target, sys1);
	gens_before = st->generation;
	tend_state_free(st);

	/* the next poll does not re-apply it */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "blocked");
	expect_contains(out, "not retried");
	free(out);
	st = load_state(e);
	assert_int_equal(st->generation, gens_before);
	tend_state_free(st);
	/* while the head is blocked, drift of the applied commit is still repaired */
	test_write_file(e->dir, "hostroot/etc/traefik/tend.yml", "# edited by hand\n");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	{
		char short1[13];
		snprintf(short1, sizeof(short1), "%.12s", c1);
		expect_contains(out, short1);
	}
	free(out);
	edited = test_read_file(e->routes);
	assert_string_equal(edited, routes);
	free(edited);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "blocked");
	free(out);

	/* a fix is applied */
	write_web(e, 200, "fixed", NULL);
	c3 = commit(e, "web fixed");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "fixed");
	free(body);
	sys3 = current_system(e);
	assert_string_not_equal(sys3, sys1);

	/* a hand-edited route file is drift: planned and put back */
	free(routes);
	routes = test_read_file(e->routes);
	test_write_file(e->dir, "hostroot/etc/traefik/tend.yml", "# edited by hand\n");
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "(traefik, drift)");
	assert_null(strstr(out, "switch system"));
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	edited = test_read_file(e->routes);
	/* the same routes; the "generated from commit" header names the commit applied now */
	assert_true(!strncmp(edited, "# Generated by tend from commit ", 32));
	assert_string_equal(strchr(edited, '\n'), strchr(routes, '\n'));
	free(edited);

	/* a commit that leaves web1's system as it is: no switch */
	test_write_file(e->repo, "services/other/service.yaml",
			"name: other\nhost: web2\nsettings: {colour: red}\n");
	c4 = commit(e, "other is red");
	st = load_state(e);
	gens_before = st->generation;
	tend_state_free(st);
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 0);
	expect_contains(out, "nothing to do");
	free(out);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "nothing to change");
	free(out);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c4);
	assert_int_equal(st->generation, gens_before);
	assert_string_equal(st->system, sys3);
	tend_state_free(st);

	/* by hand: back to the generation before (commit 1's system and files) */
	assert_int_equal(tend(e, &out, "rollback", NULL, NULL), 0);
	expect_contains(out, "rolled back by hand to generation");
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	/* and the commit rolled away from is not re-applied by the next poll */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "blocked");
	free(out);
	assert_int_equal(tend(e, &out, "history", NULL, NULL), 0);
	expect_contains(out, "manual-rollback");
	expect_contains(out, "rolled-back");
	expect_contains(out, "failing probe: web: http");
	free(out);

	free(routes);
	free(sys1);
	free(sys3);
	free(c1);
	free(c2);
	free(c3);
	free(c4);
}

static long read_pid(const char *path)
{
	char *text = test_read_file(path);
	long pid = text ? strtol(text, NULL, 10) : 0;

	free(text);
	return pid;
}

/* Encrypt text to the agent's age key into the repository at rel. */
static void encrypt_secret(e2e *e, const char *rel, const char *text)
{
	assert_int_equal(test_sh(NULL, e->dir,
		"mkdir -p repo/secrets && printf '%%s' '%s' | age -r $(age-keygen -y age.key) -o repo/%s",
		text, rel), 0);
}

static void test_secrets(void **state)
{
	e2e *e = *state;
	char *out = NULL, *token = NULL, *value;
	const char *decl = "secrets:\n  - {name: token, file: secrets/web.age, mode: '0440'}\n";
	struct stat sb;

	assert_true(asprintf(&token, "%s/secrets/web/token", e->dir) > 0);
	encrypt_secret(e, "secrets/web.age", "s3cret-one");
	write_web(e, 200, "one", decl);
	free(commit(e, "web with a token"));
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "install secret ");
	expect_contains(out, "/secrets/web/token (web, new)");
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	value = test_read_file(token);
	assert_string_equal(value, "s3cret-one");
	free(value);
	assert_int_equal(stat(token, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0440);

	/* a hand-edited secret is drift */
	assert_int_equal(chmod(token, 0600), 0);
	test_write_file(e->dir, "secrets/web/token", "tampered");
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "(web, drift)");
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	value = test_read_file(token);
	assert_string_equal(value, "s3cret-one");
	free(value);
	assert_int_equal(stat(token, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0440);

	/* a new secret in a commit that fails its probe: the old secret comes back */
	encrypt_secret(e, "secrets/web.age", "s3cret-two");
	write_web(e, 500, "broken", decl);
	free(commit(e, "new token, broken web"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	free(out);
	value = test_read_file(token);
	assert_string_equal(value, "s3cret-one");
	free(value);

	/* a secret no longer declared is removed */
	write_web(e, 200, "one", NULL);
	free(commit(e, "no token"));
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "remove secret ");
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	assert_false(tend_path_exists(token));
	free(token);
}

static void test_kill_during_switch(void **state)
{
	e2e *e = *state;
	char *c2, *out = NULL, *sys1, *body, *switch_pid_file = NULL, *argv[6];
	struct timespec ts = { 0, 50 * 1000000L };
	tend_state *st;
	pid_t pid;
	long spid = 0;
	int i, status;

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);

	/* the next switch takes 3 s: kill -9 tend (and the switch's process group,
	 * as a crash or systemd stopping the unit would) while it runs */
	write_web(e, 200, "two", "  test_switch_sleep: 3\n");
	c2 = commit(e, "web two, slow switch");
	assert_true(asprintf(&switch_pid_file, "%s/web1/switch.pid", e->root) > 0);
	unlink(switch_pid_file);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		argv[0] = (char *)TEND_BINARY;
		argv[1] = "reconcile";
		argv[2] = "--once";
		argv[3] = "--config";
		argv[4] = e->config;
		argv[5] = NULL;
		execv(TEND_BINARY, argv);
		_exit(127);
	}
	for (i = 0; i < 600 && !(spid = read_pid(switch_pid_file)); i++)
		nanosleep(&ts, NULL);
	assert_true(spid > 0);
	nanosleep(&ts, NULL);
	kill(pid, SIGKILL);
	kill(-(pid_t)spid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));

	/* the state file is valid and says what was in flight */
	st = load_state(e);
	assert_true(st->inflight.active);
	assert_string_equal(st->inflight.commit, c2);
	assert_int_equal(st->inflight.phase, TEND_PHASE_SWITCH);
	assert_string_equal(st->inflight.prev_system, sys1);
	tend_state_free(st);

	/* restart: the system never became the target, so it returns to the previous one */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "interrupted during switch");
	free(out);
	st = load_state(e);
	assert_false(st->inflight.active);
	assert_true(tend_state_failed_has(st, c2));
	assert_string_equal(st->system, sys1);
	tend_state_free(st);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	/* and --retry applies it for real this time */
	assert_int_equal(tend(e, &out, "reconcile", "--retry", NULL), 0);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "two");
	free(body);
	free(switch_pid_file);
	free(sys1);
	free(c2);
}

/* Start `tend reconcile --once` in the background; returns its pid. */
static pid_t start_reconcile(e2e *e)
{
	char *argv[6];
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		argv[0] = (char *)TEND_BINARY;
		argv[1] = "reconcile";
		argv[2] = "--once";
		argv[3] = "--config";
		argv[4] = e->config;
		argv[5] = NULL;
		execv(TEND_BINARY, argv);
		_exit(127);
	}
	return pid;
}

/* SIGTERM while probing: tend stops within a moment, the change stays in
 * flight, and the next start (the system being the target) probes and
 * finishes it. */
static void test_sigterm_during_probes(void **state)
{
	e2e *e = *state;
	struct timespec ts = { 0, 50 * 1000000L };
	char *c2, *body, *sys2;
	tend_state *st = NULL;
	int64_t t0;
	pid_t pid;
	int i, status, phase = 0;

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	web_grace = "2500ms";
	write_web(e, 200, "two", NULL);
	web_grace = "0s";
	c2 = commit(e, "web two, probed after a long grace");
	pid = start_reconcile(e);
	for (i = 0; i < 600 && phase != TEND_PHASE_PROBES; i++) {
		nanosleep(&ts, NULL);
		if (tend_state_load(&st, e->state_dir) == 0) {
			phase = st->inflight.active ? (int)st->inflight.phase : 0;
			tend_state_free(st);
		}
	}
	assert_int_equal(phase, TEND_PHASE_PROBES);
	t0 = (int64_t)time(NULL);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	assert_true((int64_t)time(NULL) - t0 <= 3);
	st = load_state(e);
	assert_true(st->inflight.active);
	assert_string_equal(st->inflight.commit, c2);
	tend_state_free(st);
	/* the system is already the target: the restart only probes, then adopts it */
	sys2 = current_system(e);
	assert_true(fx_wait_listening(e->port, 5000));
	body = web_body(e);
	assert_string_equal(body, "two");
	free(body);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	st = load_state(e);
	assert_false(st->inflight.active);
	assert_string_equal(st->applied_commit, c2);
	assert_string_equal(st->system, sys2);
	assert_string_equal(st->history[st->n_history - 1].outcome, "applied");
	tend_state_free(st);
	free(sys2);
	free(c2);
}

/* A branch head that does not descend from the applied commit is refused,
 * unless the operator says so for one reconcile. */
static void test_non_fast_forward(void **state)
{
	e2e *e = *state;
	char *out = NULL, *c1, *c2, *body;
	tend_state *st;

	write_web(e, 200, "one", NULL);
	c1 = commit(e, "web one");
	write_web(e, 200, "two", NULL);
	c2 = commit(e, "web two");
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	assert_int_equal(test_sh(NULL, e->repo, "git reset -q --hard %s", c1), 0);
	write_web(e, 200, "three", NULL);
	free(commit(e, "rewritten history"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "refused");
	free(out);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c2);
	tend_state_free(st);
	body = web_body(e);
	assert_string_equal(body, "two");
	free(body);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "blocked");
	free(out);
	assert_int_equal(tend(e, &out, "reconcile", "--allow-non-fast-forward", NULL), 0);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "three");
	free(body);
	free(c1);
	free(c2);
}

/* A switch that fails is rolled back like a failed probe; rollback --to picks
 * a generation by number. */
static void test_failed_switch_and_rollback_to(void **state)
{
	e2e *e = *state;
	char *out = NULL, *sys1, *sys2, *body;
	tend_state *st;

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);
	write_web(e, 200, "two", "  test_switch_exit: 4\n");
	free(commit(e, "switch fails"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "switch failed");
	free(out);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	assert_true(fx_wait_listening(e->port, 5000));
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	assert_int_equal(tend(e, &out, "history", "--json", NULL), 0);
	expect_contains(out, "switch failed as the settings ask (exit 4)");
	free(out);

	write_web(e, 200, "three", NULL);
	free(commit(e, "web three"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys2 = current_system(e);
	assert_string_not_equal(sys2, sys1);
	/* generation 1 is commit one's system */
	assert_int_equal(tend(e, &out, "rollback", "--to", "1"), 0);
	expect_contains(out, "rolled back by hand to generation 1");
	free(out);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	assert_int_equal(tend(e, &out, "rollback", "--to", "99"), 1);
	expect_contains(out, "has no generation 99");
	free(out);
	st = load_state(e);
	assert_string_equal(st->system, sys1);
	tend_state_free(st);
	free(sys1);
	free(sys2);
}

#define SIGNED_COMMIT "git add -A && git -c user.name=op -c user.email=op@lab.test " \
	"-c gpg.format=ssh -c user.signingkey=%s/signkey commit -q -S"

/* With allowed_signers, an unsigned commit is refused and nothing changes; a
 * commit signed by a listed key is applied. */
static void test_signatures(void **state)
{
	e2e *e = *state;
	char *out = NULL, *yaml, *body;

	assert_int_equal(test_sh(NULL, e->dir,
		"ssh-keygen -q -t ed25519 -N '' -C op -f signkey && "
		"echo \"op@lab.test namespaces=\\\"git\\\" $(cut -d' ' -f1,2 signkey.pub)\" > allowed_signers"), 0);
	yaml = test_read_file(e->config);
	{
		char *text = NULL;
		char *at = strstr(yaml, "repository: {url: repo, branch: main}");
		assert_non_null(at);
		assert_true(asprintf(&text, "%.*srepository: {url: repo, branch: main, allowed_signers: allowed_signers}%s",
				     (int)(at - yaml), yaml, at + strlen("repository: {url: repo, branch: main}")) > 0);
		test_write_file(e->dir, "agent.yaml", text);
		free(text);
	}
	free(yaml);
	write_web(e, 200, "unsigned", NULL);
	free(commit(e, "not signed"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "refused");
	expect_contains(out, "not signed");
	free(out);
	assert_null(current_system(e));
	/* with nothing applied yet only the head's signature counts */
	write_web(e, 200, "signed", NULL);
	assert_int_equal(test_sh(NULL, e->repo, SIGNED_COMMIT " -m signed", e->dir), 0);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "signed");
	free(body);
	/* afterwards every new commit must be signed, also one under a signed head */
	write_web(e, 200, "sneaky", NULL);
	free(commit(e, "unsigned again"));
	write_web(e, 200, "signed on top", NULL);
	assert_int_equal(test_sh(NULL, e->repo, SIGNED_COMMIT " -m 'signed on top'", e->dir), 0);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "refused");
	expect_contains(out, "not signed");
	free(out);
	body = web_body(e);
	assert_string_equal(body, "signed");
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_rollback_fix_drift, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_during_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_during_probes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_fast_forward, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_switch_and_rollback_to, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
	};
	if (!test_have("nix") || !test_have("git") || !test_have("curl") || !test_have("python3") || !test_have("age")) {
		fprintf(stderr, "SKIP: needs nix, git, curl and python3\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
