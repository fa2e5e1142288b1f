/* Activating a system as nixos-rebuild does (reconcile/switch.c) end to end with the real tend,
 * nix and profiles: switch-to-configuration's lock held by another switch means waiting, not
 * failing; exit 100 keeps the new generation as the boot default (reboot required, no
 * rollback); exit 4 rolls back naming the units that failed; a host on a specialisation is
 * not drift, and a new commit takes it to the same specialisation of the new system. The
 * transient unit itself is tested on a real systemd in tests/host. */
#include "tests/reconcile/e2e.h"

#include "agent/config.h"
#include "reconcile/nix.h"
#include "util/fs.h"

#include <sys/file.h>

/* The lock switch-to-configuration takes: beside current_system's directory
 * (/run/nixos/switch-to-configuration.lock on NixOS). */
static int hold_lock(e2e *e)
{
	char *path = NULL;
	int fd;

	assert_true(asprintf(&path, "%s/web1/nixos", e->root) > 0);
	assert_int_equal(tend_dir_create_all(path, 0755), 0);
	free(path);
	assert_true(asprintf(&path, "%s/web1/nixos/switch-to-configuration.lock", e->root) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	free(path);
	return fd;
}

/* services/web answering body, committed and reconciled: the system now current (caller frees). */
static char *apply_web(e2e *e, const char *body)
{
	char msg[64];

	write_web(e, 200, body, NULL);
	snprintf(msg, sizeof(msg), "web %s", body);
	free(commit(e, msg));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	return current_system(e);
}

/* An operator's switch to system, by hand, as `nixos-rebuild switch --rollback` would. */
static void switch_by_hand(e2e *e, const char *system)
{
	assert_int_equal(test_sh(NULL, NULL, "TEND_TEST_ROOT=%s %s/bin/switch-to-configuration switch",
				 e->root, system), 0);
}

static void test_lock_held_waits(void **state)
{
	e2e *e = *state;
	char *c2, *out = NULL, *sys1, *body, *now;
	tend_state *st;
	long gen1;
	int fd;

	sys1 = apply_web(e, "one");
	st = load_state(e);
	gen1 = st->generation;
	tend_state_free(st);

	/* an operator's switch holds the lock: tend waits, touching nothing */
	fd = hold_lock(e);
	write_web(e, 200, "two", NULL);
	c2 = commit(e, "web two while an operator switches");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "waiting");
	expect_contains(out, "switch-to-configuration.lock");
	free(out);
	now = current_system(e);
	assert_string_equal(now, sys1);
	free(now);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	st = load_state(e);
	assert_false(st->inflight.active);
	assert_int_equal(st->generation, gen1);       /* the profile was not touched */
	assert_false(tend_state_failed_has(st, c2));  /* not a failure: not blocked */
	tend_state_free(st);

	/* the operator is done: the next reconcile applies it */
	close(fd);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "applied");
	free(out);
	body = web_body(e);
	assert_string_equal(body, "two");
	free(body);
	free(sys1);
	free(c2);
}

static void test_exit_100_reboot_required(void **state)
{
	e2e *e = *state;
	char *c2, *out = NULL, *sys1, *now, *body, *profile = NULL;
	tend_state *st;

	sys1 = apply_web(e, "one");

	write_web(e, 200, "two", "  test_switch_exit: 100\n");
	c2 = commit(e, "web two with a new init");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "reboot-required");
	expect_contains(out, "takes effect at the next boot");
	free(out);
	/* no rollback: the new generation is the boot default, the running system untouched */
	st = load_state(e);
	assert_false(st->inflight.active);
	assert_string_equal(st->applied_commit, c2);
	assert_false(tend_state_failed_has(st, c2));
	assert_string_not_equal(st->system, sys1);
	assert_true(asprintf(&profile, "%s/profiles/system", e->dir) > 0);
	now = realpath(profile, NULL);
	assert_non_null(now);
	assert_string_equal(now, st->system);         /* the profile (boot default) is the new system */
	free(now);
	tend_state_free(st);
	now = current_system(e);
	assert_string_equal(now, sys1);               /* what runs until the reboot */
	free(now);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	assert_int_equal(tend(e, &out, "history", NULL, NULL), 0);
	expect_contains(out, "reboot-required");
	free(out);
	/* the same boot: still waiting for the reboot, not an operator's rollback; nothing switched */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "reboot-required");
	expect_contains(out, "takes effect at the next boot");
	free(out);
	now = current_system(e);
	assert_string_equal(now, sys1);
	free(now);
	free(profile);
	free(sys1);
	free(c2);
}

static void test_exit_4_names_units(void **state)
{
	e2e *e = *state;
	char *c2, *out = NULL, *sys1, *now;
	tend_state *st;

	sys1 = apply_web(e, "one");

	write_web(e, 200, "two", "  test_switch_exit: 4\n");
	c2 = commit(e, "web two, a unit fails");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "units failed to start: web.service, web-worker.service");
	free(out);
	st = load_state(e);
	assert_true(tend_state_failed_has(st, c2));
	assert_string_equal(st->system, sys1);
	tend_state_free(st);
	now = current_system(e);
	assert_string_equal(now, sys1);
	free(now);
	expect_web(e, "one");
	free(sys1);
	free(c2);
}

/* An operator rolls the host back by hand (switch-to-configuration of the older system):
 * tend holds (no switch forward, exit 1, "held"), also on the next reconcile; `tend resume`
 * lifts the hold and the next reconcile switches forward; a new commit lifts it too. */
static void test_operator_rollback_held(void **state)
{
	e2e *e = *state;
	char *c3, *out = NULL, *sys1, *sys2, *now;
	int i;

	sys1 = apply_web(e, "one");
	sys2 = apply_web(e, "two");
	assert_string_not_equal(sys1, sys2);

	/* the operator's escape: the older system, switched to by hand */
	switch_by_hand(e, sys1);
	assert_true(fx_wait_listening(e->port, 5000));
	for (i = 0; i < 2; i++) {
		assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
		expect_contains(out, "held");
		expect_contains(out, sys1);
		expect_contains(out, "tend resume");
		free(out);
		now = current_system(e);
		assert_string_equal(now, sys1);
		free(now);
	}
	expect_web(e, "one");

	/* tend resume: the next reconcile switches forward again */
	assert_int_equal(tend(e, &out, "resume", NULL, NULL), 0);
	expect_contains(out, "hold is lifted");
	free(out);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	free(out);
	now = current_system(e);
	assert_string_equal(now, sys2);
	free(now);
	expect_web(e, "two");

	/* held again, then a new commit lifts it */
	switch_by_hand(e, sys1);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "held");
	free(out);
	write_web(e, 200, "three", NULL);
	c3 = commit(e, "web three");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "applied");
	free(out);
	expect_web(e, "three");
	free(sys1);
	free(sys2);
	free(c3);
}

/* What the supervisor reads while a worker waits on the switch unit: a switch started this
 * boot and without a result runs; one with a result, or from another boot (a power cut),
 * does not. */
static void test_switch_running(void **state)
{
	tend_config cfg;
	char *dir = test_tmpdir_make("running"), *text = NULL, *target = NULL, bid[64] = "";
	tend_buf b = TEND_BUF_INIT;
	time_t since = 0;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.state_dir = dir;
	assert_int_equal(tend_nix_switch_running(&target, &since, &cfg), 0);
	assert_int_equal(tend_file_read(&b, "/proc/sys/kernel/random/boot_id", 64), 0);
	snprintf(bid, sizeof(bid), "%.*s", (int)strcspn(b.ptr, "\n"), b.ptr);
	assert_true(asprintf(&text, "TEND_SWITCH_TARGET=/nix/store/abc-system\nBOOT_ID=%s\n"
				    "STARTED=1700000000\n", bid) > 0);
	test_write_file(dir, "switch/started", text);
	assert_int_equal(tend_nix_switch_running(&target, &since, &cfg), 1);
	assert_string_equal(target, "/nix/store/abc-system");
	assert_int_equal((long long)since, 1700000000LL);
	free(target);
	/* ended: its ExecStopPost wrote the result */
	test_write_file(dir, "switch/result", "SERVICE_RESULT=success\n");
	assert_int_equal(tend_nix_switch_running(&target, &since, &cfg), 0);
	assert_null(target);
	/* started before a power cut: another boot */
	test_write_file(dir, "switch/started", "TEND_SWITCH_TARGET=/nix/store/abc-system\n"
			"BOOT_ID=00000000-0000-0000-0000-000000000000\nSTARTED=1700000000\n");
	free(text);
	assert_true(asprintf(&text, "%s/switch/result", dir) > 0);
	assert_int_equal(unlink(text), 0);
	assert_int_equal(tend_nix_switch_running(&target, &since, &cfg), 0);
	free(text);
	tend_buf_dispose(&b);
	test_tmpdir_remove(dir);
}

static char *variant_of(const char *system)
{
	char *path = NULL, *text;

	assert_true(asprintf(&path, "%s/variant", system) > 0);
	text = test_read_file(path);
	free(path);
	return text;
}

/* switched by hand to specialisation "quiet" (as nixos-rebuild switch --specialisation quiet) */
static void test_specialisation_kept(void **state)
{
	e2e *e = *state;
	char *base, *spec = NULL, *now, *out = NULL, *v;

	write_web(e, 200, "one", "  test_specialisation: quiet\n");
	free(commit(e, "web one, with a specialisation"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	base = current_system(e);
	assert_true(asprintf(&spec, "%s/specialisation/quiet", base) > 0);
	switch_by_hand(e, spec);
	now = current_system(e);
	assert_string_not_equal(now, base);
	v = variant_of(now);
	assert_string_equal(v, "quiet\n");
	free(v);
	/* not drift: nothing to plan, and a reconcile leaves it on the specialisation */
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 0);
	assert_null(strstr(out, "switch"));
	free(out);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "nothing");
	free(out);
	free(now);
	now = current_system(e);
	v = variant_of(now);
	assert_string_equal(v, "quiet\n");
	free(v);
	free(now);

	/* a new commit: the same specialisation of the new system */
	write_web(e, 200, "two", "  test_specialisation: quiet\n");
	free(commit(e, "web two"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "applied");
	free(out);
	now = current_system(e);
	v = variant_of(now);
	assert_non_null(v);
	assert_string_equal(v, "quiet\n");
	free(v);
	expect_web(e, "two");
	assert_int_equal(tend(e, &out, "history", "--json", NULL), 0);
	expect_contains(out, "runs specialisation 'quiet': switching to the new system's");
	free(out);
	free(now);
	free(base);
	free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lock_held_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_100_reboot_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_4_names_units, setup, teardown),
		cmocka_unit_test_setup_teardown(test_operator_rollback_held, setup, teardown),
		cmocka_unit_test(test_switch_running),
		cmocka_unit_test_setup_teardown(test_specialisation_kept, setup, teardown),
	};
	if (!test_have("nix") || !test_have("git") || !test_have("curl") || !test_have("python3") ||
	    !test_have("age")) {
		fprintf(stderr, "SKIP: needs nix, git, curl, python3 and age\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
