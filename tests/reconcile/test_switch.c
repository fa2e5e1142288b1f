/* Activating a system as nixos-rebuild does (reconcile/switch.c) end to end with the real tend,
 * nix and profiles: switch-to-configuration's lock held by another switch means waiting, not
 * failing; exit 100 keeps the new generation as the boot default (reboot required, no
 * rollback); exit 4 rolls back naming the units that failed. The transient unit itself is
 * tested on a real systemd in tests/host. */
#include "tests/reconcile/e2e.h"

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

static void test_lock_held_waits(void **state)
{
	e2e *e = *state;
	char *c2, *out = NULL, *sys1, *body, *now;
	tend_state *st;
	long gen1;
	int fd;

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);
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

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);

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
	free(profile);
	free(sys1);
	free(c2);
}

static void test_exit_4_names_units(void **state)
{
	e2e *e = *state;
	char *c2, *out = NULL, *sys1, *now, *body;
	tend_state *st;

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);

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
	assert_true(fx_wait_listening(e->port, 5000));
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	free(sys1);
	free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lock_held_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_100_reboot_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_4_names_units, setup, teardown),
	};
	if (!test_have("nix") || !test_have("git") || !test_have("curl") || !test_have("python3") ||
	    !test_have("age")) {
		fprintf(stderr, "SKIP: needs nix, git, curl, python3 and age\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
