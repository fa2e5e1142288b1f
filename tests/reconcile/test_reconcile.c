/* One reconcile's bookends end to end (real tend, git, nix, profiles,
 * probes): finishing or undoing a change after kill -9 during the switch or
 * SIGTERM during the probes, and refusing heads that are not fast-forwards or
 * not signed by an allowed signer; a host's apply_window holds changes until it opens or
 * --now. */
#include "tests/reconcile/e2e.h"

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

	/* the next switch waits up to 60 s (a short wait raced against the plan
	 * below on a loaded machine; the test kills it long before tend's 20 s
	 * switch_timeout): kill -9 tend (and the switch's process group, as a
	 * crash or systemd stopping the unit would) while it runs */
	write_web(e, 200, "two", "  test_switch_sleep: 60\n");
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
	/* while it works: a second reconcile is refused, a plan works beside it */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "is locked by another tend process (pid ");
	free(out);
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "note: the agent holds the state lock");
	expect_contains(out, "switch system ");
	free(out);
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
	/* and --retry applies it for real this time (the slow switch told to go on) */
	test_write_file(e->root, "web1/switch.go", "");
	assert_int_equal(tend(e, &out, "reconcile", "--retry", NULL), 0);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "two");
	free(body);
	free(switch_pid_file);
	free(sys1);
	free(c2);
}


/* SIGTERM while probing: tend stops within a moment, the change stays in
 * flight, and the next start (the system being the target) probes and
 * finishes it. */
static void test_sigterm_during_probes(void **state)
{
	e2e *e = *state;
	struct timespec ts = { 0, 50 * 1000000L };
	char *c2, *sys2;
	tend_state *st = NULL;
	int64_t t0;
	pid_t pid;
	int i, status, phase = 0;

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	web_grace = "3s";
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
	expect_web(e, "two");
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


/* Issue 17 F13, F14: a state file naming paths outside the roots (a files[]
 * entry tend "wrote", an in-flight backup directory) made tend delete them.
 * Now the state is refused, naming the entry, and they stay. Both fail on
 * 247ba6c: victim/x.yml was removed as "no longer wanted", victim/ as the
 * finished change's backups. */
static void test_state_files_outside_roots_refused(void **state)
{
	e2e *e = *state;
	char *victim = NULL, *file = NULL, *out = NULL, sha[65];
	tend_state *st;

	assert_true(asprintf(&victim, "%s/victim", e->dir) > 0);
	assert_true(asprintf(&file, "%s/x.yml", victim) > 0);
	test_write_file(victim, "x.yml", "keep me");
	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));

	tend_sha256_hex(sha, "keep me", 7);
	assert_int_equal(mkdir(e->state_dir, 0700), 0);
	st = tend_state_new();
	assert_int_equal(tend_state_file_set(st, file, sha, "web", TEND_FILE_ROUTE), 0);
	assert_int_equal(tend_state_save(st, e->state_dir, 0), 0);
	tend_state_free(st);
	tend(e, &out, "reconcile", NULL, NULL);
	assert_int_equal(access(file, F_OK), 0);   /* first: what 247ba6c got wrong */
	expect_contains(out, "state.json: files[0]: ");
	expect_contains(out, "/victim/x.yml: outside the root ");
	free(out);
	assert_int_not_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	free(file);
	free(victim);
}

static void test_state_backup_dir_outside_refused(void **state)
{
	e2e *e = *state;
	char *victim = NULL, *file = NULL, *out = NULL;
	tend_state *st;

	assert_true(asprintf(&victim, "%s/victim", e->dir) > 0);
	assert_true(asprintf(&file, "%s/x.yml", victim) > 0);
	test_write_file(victim, "x.yml", "keep me");
	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(mkdir(e->state_dir, 0700), 0);
	st = tend_state_new();
	assert_int_equal(tend_state_inflight_begin(st, "1111111111111111111111111111111111111111",
						   NULL, 0, NULL, victim, 1), 0);
	assert_int_equal(tend_state_save(st, e->state_dir, 0), 0);
	tend_state_free(st);
	tend(e, &out, "reconcile", NULL, NULL);
	assert_int_equal(access(file, F_OK), 0);   /* first: what 247ba6c got wrong */
	expect_contains(out, "in_flight.backup_dir ");
	free(out);
	assert_int_not_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	free(file);
	free(victim);
}

/* fleet.yaml with web1's apply_window (NULL: none). */
static void write_fleet_host(e2e *e, const char *window, const char *extra)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"fleet: test\ndomain: lab.test\nhosts:\n"
		"  web1: {address: 127.0.0.1%s%s%s%s}\n"
		"  web2: {address: 127.0.0.2}\n"
		"proxy:\n  service: traefik\n  kind: traefik\n  routes_file: /etc/traefik/tend.yml\n"
		"  tls:\n    internal-ca: {kind: internal, suffixes: [.lab.test]}\n",
		window ? ", apply_window: '" : "", window ? window : "", window ? "'" : "",
		extra ? extra : "") > 0);
	test_write_file(e->repo, "fleet.yaml", text);
	free(text);
}

static void write_fleet_window(e2e *e, const char *window)
{
	write_fleet_host(e, window, NULL);
}

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, c;

	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* One more line in agent.yaml's system: section (after switch_timeout). */
static void system_setting(e2e *e, const char *line)
{
	assert_int_equal(test_sh(NULL, e->dir, "sed -i 's|^  switch_timeout: 20s$|&\\n  %s|' agent.yaml",
				 line), 0);
}

/* A switch that cuts the host off from its repository (the test system renames it) passes
 * its probes and is rolled back by the reachability guard, naming the repository. */
static void test_reachability_guard(void **state)
{
	e2e *e = *state;
	char *out = NULL, *sys1, *now, *extra = NULL;

	system_setting(e, "reachability_timeout: 3s");
	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);

	assert_true(asprintf(&extra, "  test_switch_hide: %s\n", e->repo) > 0);
	write_web(e, 200, "two", extra);
	free(extra);
	free(commit(e, "web two, and the repository goes away"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back: ");
	expect_contains(out, "after the switch the repository ");
	expect_contains(out, "does not answer within reachability_timeout 3s");
	free(out);
	now = current_system(e);
	assert_string_equal(now, sys1);
	free(now);
	expect_web(e, "one");
	assert_int_equal(test_sh(NULL, e->dir, "mv repo.hidden repo"), 0);

	/* with the guard off, the same kind of commit is kept */
	assert_int_equal(test_sh(NULL, e->dir, "sed -i 's|^  reachability_timeout: 3s$|  "
				 "reachability_timeout: 0|' agent.yaml"), 0);
	assert_true(asprintf(&extra, "  test_switch_hide: %s\n", e->repo) > 0);
	write_web(e, 200, "three", extra);
	free(extra);
	free(commit(e, "web three, the guard off"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	free(out);
	expect_web(e, "three");
	assert_int_equal(test_sh(NULL, e->dir, "mv repo.hidden repo"), 0);
	free(sys1);
}

/* operation: boot makes the new system the boot default and leaves the running one alone;
 * tend reboots (system.reboot_command, a stand-in here) only inside the reboot_window, and
 * only once into a system. */
static void test_boot_operation_reboot_window(void **state)
{
	e2e *e = *state;
	char *out = NULL, *sys1, *now, *profile = NULL, *reboots = NULL, *extra = NULL, *link;
	char window[64];
	time_t t = time(NULL);
	struct tm tm;
	tend_state *st;

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);
	assert_true(asprintf(&reboots, "%s/reboots", e->dir) > 0);
	{
		char *line = NULL;

		assert_true(asprintf(&line, "reboot_command: [sh, -c, \"echo reboot >> %s\"]", reboots) > 0);
		system_setting(e, line);
		free(line);
	}

	/* a reboot window that opens in two hours: the boot default waits for it */
	localtime_r(&t, &tm);
	snprintf(window, sizeof(window), "daily %02d:00-%02d:00", (tm.tm_hour + 2) % 24,
		 (tm.tm_hour + 3) % 24);
	assert_true(asprintf(&extra, ", operation: boot, reboot_window: '%s'", window) > 0);
	write_fleet_host(e, NULL, extra);
	free(extra);
	write_web(e, 200, "two", NULL);
	free(commit(e, "web two, as the boot default"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "reboot-required: ");
	expect_contains(out, "operation: boot");
	expect_contains(out, "tend reboots the host in its reboot_window daily");
	free(out);
	now = current_system(e);
	assert_string_equal(now, sys1);
	free(now);
	expect_web(e, "one");
	assert_true(asprintf(&profile, "%s/profiles/system", e->dir) > 0);
	link = realpath(profile, NULL);
	assert_non_null(link);
	assert_string_not_equal(link, sys1);
	free(link);
	assert_int_equal(count_lines(reboots), 0);
	st = load_state(e);
	assert_non_null(st->reboot_boot_id);
	assert_string_equal(st->reboot_window, window);
	tend_state_free(st);

	/* the window is open: one reboot, recorded in the history */
	write_fleet_host(e, NULL, ", operation: boot, reboot_window: '00:00-23:59'");
	free(commit(e, "reboots any time"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "rebooting now (reboot_window 00:00-23:59)");
	free(out);
	assert_int_equal(count_lines(reboots), 1);
	st = load_state(e);
	assert_true(st->n_history > 0);
	assert_string_equal(st->history[st->n_history - 1].outcome, "reboot");
	assert_non_null(st->history[st->n_history - 1].system_after);
	assert_string_not_equal(st->history[st->n_history - 1].system_after, sys1);
	tend_state_free(st);
	/* the stand-in did not reboot: tend does not reboot into the same system twice */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "does not again: reboot by hand");
	free(out);
	assert_int_equal(count_lines(reboots), 1);
	free(profile);
	free(reboots);
	free(sys1);
}

static void test_apply_window(void **state)
{
	e2e *e = *state;
	char *out = NULL, *sys1, *now, *body, window[32];
	time_t t = time(NULL);
	struct tm tm;

	/* a window that opens in two hours, local time: closed now */
	localtime_r(&t, &tm);
	snprintf(window, sizeof(window), "daily %02d:00-%02d:00", (tm.tm_hour + 2) % 24,
		 (tm.tm_hour + 3) % 24);
	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);

	write_fleet_window(e, window);
	write_web(e, 200, "two", NULL);
	free(commit(e, "web two, in the window only"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "waiting: ");
	expect_contains(out, "waiting for window daily");
	expect_contains(out, "--now");
	free(out);
	now = current_system(e);
	assert_string_equal(now, sys1);
	free(now);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	/* tend plan still shows what the window will apply */
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "switch");
	free(out);

	/* --now: applied at once */
	assert_int_equal(tend(e, &out, "reconcile", "--now", NULL), 0);
	expect_contains(out, "applied");
	free(out);
	expect_web(e, "two");

	/* a window open now applies without --now */
	write_fleet_window(e, "daily 00:00-24:00");
	write_web(e, 200, "three", NULL);
	free(commit(e, "web three, the window is open"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "applied");
	free(out);
	expect_web(e, "three");
	free(sys1);
}

/* nix with a count of its `nix build` runs (evaluations) in <dir>/builds.count; nix-env and
 * nix-store beside it, as tend finds them next to nix.command. */
static void counting_nix(e2e *e)
{
	char *yaml = NULL, *conf;

	assert_int_equal(test_sh(NULL, e->dir,
		"mkdir -p bin && real=$(command -v nix) && "
		"ln -sf \"$(command -v nix-env)\" bin/nix-env && ln -sf \"$(command -v nix-store)\" bin/nix-store && "
		"printf '#!/bin/sh\\n[ \"$1\" = build ] && echo build >> %s/builds.count\\nexec %%s \"$@\"\\n' \"$real\" > bin/nix && "
		"chmod 0755 bin/nix", e->dir), 0);
	conf = test_read_file(e->config);
	assert_non_null(conf);
	assert_true(asprintf(&yaml, "%s", conf) > 0);
	free(conf);
	{
		char *at = strstr(yaml, "nix: {"), *fixed = NULL;

		assert_non_null(at);
		assert_true(asprintf(&fixed, "%.*snix: {command: %s/bin/nix, %s", (int)(at - yaml), yaml,
				     e->dir, at + strlen("nix: {")) > 0);
		test_write_file(e->dir, "agent.yaml", fixed);
		free(fixed);
	}
	free(yaml);
}

static int builds(e2e *e)
{
	char *path = NULL, *text;
	int n = 0;
	const char *p;

	assert_true(asprintf(&path, "%s/builds.count", e->dir) > 0);
	text = test_read_file(path);
	for (p = text; p && (p = strstr(p, "build")); p++)
		n++;
	free(text);
	free(path);
	return n;
}

/* One evaluation per change: tend plan builds the commit's system; the reconcile that follows
 * (the agent's converge pass does the same) switches to that result without evaluating again. */
static void test_one_evaluation_per_change(void **state)
{
	e2e *e = *state;
	char *out = NULL, *c;

	counting_nix(e);
	write_web(e, 200, "one", NULL);
	c = commit(e, "web one");
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	free(out);
	assert_int_equal(builds(e), 1);
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	free(out);
	assert_int_equal(builds(e), 1);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "applied");
	free(out);
	assert_int_equal(builds(e), 1);
	expect_web(e, "one");
	/* the next change is evaluated once too */
	write_web(e, 200, "two", NULL);
	free(c);
	c = commit(e, "web two");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	free(out);
	assert_int_equal(builds(e), 2);
	expect_web(e, "two");
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kill_during_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_during_probes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_fast_forward, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_files_outside_roots_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_backup_dir_outside_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_operation_reboot_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reachability_guard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_evaluation_per_change, setup, teardown),
	};
	if (!test_have("nix") || !test_have("git") || !test_have("curl") || !test_have("python3") ||
	    !test_have("age")) {
		fprintf(stderr, "SKIP: needs nix, git, curl, python3 and age\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
