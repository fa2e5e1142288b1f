/* The state file: round trip of every field, bounded history, corrupt files
 * named in the error, crash safety under kill -9, and the directory lock
 * between processes. */
#include "tests/support/support.h"
#include "state/state.h"
#include "util/error.h"
#include "util/fs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define C1 "1111111111111111111111111111111111111111"
#define C2 "2222222222222222222222222222222222222222"
#define H1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void add_history(tend_state *st, const char *commit, const char *outcome, int64_t t)
{
	tend_state_history h;

	memset(&h, 0, sizeof(h));
	strcpy(h.commit, commit);
	h.start = t;
	h.end = t + 3;
	h.outcome = (char *)outcome;
	h.message = (char *)"probe failed";
	h.failed_probe = (char *)"web: http http://127.0.0.1:1/";
	h.probe_output = (char *)"HTTP 500\nbroken \xff\xfe body";
	h.system_before = (char *)"/nix/store/aaa-system";
	h.system_after = (char *)"/nix/store/bbb-system";
	h.generation_before = 3;
	h.generation_after = 4;
	h.rollback_target = (char *)"/nix/store/aaa-system";
	assert_int_equal(tend_state_history_add(st, &h), 0);
}

static void test_round_trip(void **state)
{
	char *dir = test_tmpdir_make("state");
	tend_state *st = tend_state_new(), *back;

	assert_non_null(st);
	strcpy(st->applied_commit, C1);
	st->system = strdup("/nix/store/aaa-system");
	st->generation = 3;
	assert_int_equal(tend_state_file_set(st, "/etc/traefik/tend.yml", H1, "traefik", TEND_FILE_ROUTE), 0);
	assert_int_equal(tend_state_file_set(st, "/run/s/web/pw", H1, "web", TEND_FILE_SECRET), 0);
	assert_int_equal(tend_state_file_set(st, "/a/first", H1, NULL, TEND_FILE_ROUTE), 0);
	assert_int_equal(tend_state_inflight_begin(st, C2, "/nix/store/aaa-system", 3,
						   "/nix/store/bbb-system", "/s/backup", 1700000000), 0);
	st->inflight.phase = TEND_PHASE_PROBES;
	assert_int_equal(tend_state_failed_add(st, C2, 1700000005, "probe failed"), 0);
	add_history(st, C2, "rolled-back", 1700000000);
	assert_int_equal(tend_state_save(st, dir, 0), 0);

	assert_int_equal(tend_state_load(&back, dir), 0);
	assert_string_equal(back->applied_commit, C1);
	assert_string_equal(back->system, "/nix/store/aaa-system");
	assert_int_equal(back->generation, 3);
	assert_int_equal(back->n_files, 3);
	assert_string_equal(back->files[0].path, "/a/first");      /* sorted */
	assert_null(back->files[0].service);
	assert_non_null(tend_state_file_get(back, "/run/s/web/pw"));
	assert_int_equal(tend_state_file_get(back, "/run/s/web/pw")->kind, TEND_FILE_SECRET);
	assert_string_equal(tend_state_file_get(back, "/etc/traefik/tend.yml")->sha256, H1);
	assert_true(back->inflight.active);
	assert_string_equal(back->inflight.commit, C2);
	assert_string_equal(back->inflight.prev_commit, C1);
	assert_string_equal(back->inflight.prev_system, "/nix/store/aaa-system");
	assert_int_equal(back->inflight.prev_generation, 3);
	assert_string_equal(back->inflight.target_system, "/nix/store/bbb-system");
	assert_string_equal(back->inflight.backup_dir, "/s/backup");
	assert_int_equal(back->inflight.phase, TEND_PHASE_PROBES);
	assert_int_equal(back->inflight.started, 1700000000);
	assert_true(tend_state_failed_has(back, C2));
	assert_false(tend_state_failed_has(back, C1));
	assert_int_equal(back->n_history, 1);
	assert_string_equal(back->history[0].outcome, "rolled-back");
	/* bytes that are not UTF-8 are kept visible, not lost with the entry */
	assert_string_equal(back->history[0].probe_output, "HTTP 500\nbroken ?? body");
	assert_string_equal(back->history[0].rollback_target, "/nix/store/aaa-system");
	assert_int_equal(back->history[0].generation_after, 4);

	/* edits: clear in-flight, clear a failure, remove a file */
	tend_state_inflight_clear(back);
	tend_state_failed_clear(back, C2);
	tend_state_file_remove(back, "/a/first");
	assert_int_equal(tend_state_save(back, dir, 0), 0);
	tend_state_free(st);
	tend_state_free(back);
	assert_int_equal(tend_state_load(&back, dir), 0);
	assert_false(back->inflight.active);
	assert_int_equal(back->n_failed, 0);
	assert_int_equal(back->n_files, 2);
	tend_state_free(back);
	test_tmpdir_remove(dir);
}

static void test_missing_is_empty_and_history_bounded(void **state)
{
	char *dir = test_tmpdir_make("state");
	tend_state *st;
	int i;

	assert_int_equal(tend_state_load(&st, dir), 0);
	assert_string_equal(st->applied_commit, "");
	assert_int_equal(st->n_history, 0);
	for (i = 0; i < 10; i++)
		add_history(st, i % 2 ? C1 : C2, i == 9 ? "last" : "applied", 1000 + i);
	assert_int_equal(tend_state_save(st, dir, 4), 0);
	tend_state_free(st);
	assert_int_equal(tend_state_load(&st, dir), 0);
	assert_int_equal(st->n_history, 4);
	assert_int_equal(st->history[0].start, 1006);
	assert_string_equal(st->history[3].outcome, "last");
	tend_state_free(st);
	test_tmpdir_remove(dir);
}

static void expect_corrupt(const char *content, const char *needle)
{
	char *dir = test_tmpdir_make("state"), *path;
	tend_state *st = (tend_state *)1;

	test_write_file(dir, "state.json", content);
	path = tend_path_join(dir, "state.json");
	assert_int_equal(tend_state_load(&st, dir), TEND_EINVALID);
	assert_null(st);
	assert_true(strstr(tend_error_last(), path) == tend_error_last());
	if (!strstr(tend_error_last(), needle))
		fail_msg("'%s' does not mention '%s'", tend_error_last(), needle);
	free(path);
	test_tmpdir_remove(dir);
}

static void test_corrupt(void **state)
{
	expect_corrupt("{\"schema\": 1, \"applied_commit\": ", "invalid state file");
	expect_corrupt("[]", "not a JSON object");
	expect_corrupt("{\"applied_commit\": null}", "schema missing");
	expect_corrupt("{\"schema\": 99}", "this tend reads schema 1");
	expect_corrupt("{\"schema\": 1, \"generation\": \"three\"}", "generation");
	expect_corrupt("{\"schema\": 1, \"files\": [{\"path\": \"/x\"}]}", "without path or sha256");
	expect_corrupt("{\"schema\": 1, \"in_flight\": {\"phase\": \"switch\"}}", "in_flight without a commit");
}

/* A child saves two different states in a loop; kill -9 at random moments
 * must always leave a file that parses and is one of the two. */
static void test_crash_safety(void **state)
{
	char *dir = test_tmpdir_make("state");
	int round;

	/* the old state exists before the first kill */
	{
		tend_state *first = tend_state_new();
		strcpy(first->applied_commit, C1);
		assert_int_equal(tend_state_save(first, dir, 0), 0);
		tend_state_free(first);
	}
	srand((unsigned)time(NULL));
	for (round = 0; round < 15; round++) {
		struct timespec ts = { 0, (long)(rand() % 30 + 5) * 1000000L };
		tend_state *st;
		pid_t pid;
		int status;

		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			tend_state *a = tend_state_new(), *b = tend_state_new();
			int i;
			strcpy(a->applied_commit, C1);
			strcpy(b->applied_commit, C2);
			for (i = 0; i < 300; i++)
				add_history(b, C2, "applied", i);
			for (;;) {
				if (tend_state_save(a, dir, 0) < 0 || tend_state_save(b, dir, 0) < 0)
					_exit(3);
			}
		}
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(tend_state_load(&st, dir), 0);
		if (strcmp(st->applied_commit, C1) && strcmp(st->applied_commit, C2))
			fail_msg("round %d: state is neither old nor new (applied_commit '%s')",
				 round, st->applied_commit);
		if (!strcmp(st->applied_commit, C2))
			assert_int_equal(st->n_history, 300);
		else
			assert_int_equal(st->n_history, 0);
		tend_state_free(st);
	}
	test_tmpdir_remove(dir);
}

static void test_lock_between_processes(void **state)
{
	char *dir = test_tmpdir_make("state"), *sub = tend_path_join(dir, "new/state");
	tend_state_lock *lock = NULL;
	int ready[2], go[2];
	char c, pidtext[64];
	pid_t pid;
	int status;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tend_state_lock *held;
		if (tend_state_lock_take(&held, sub) < 0)
			_exit(3);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(4);
		tend_state_lock_release(held);
		_exit(0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(tend_state_lock_take(&lock, sub), TEND_ELOCKED);
	assert_null(lock);
	snprintf(pidtext, sizeof(pidtext), "(pid %ld)", (long)pid);
	assert_non_null(strstr(tend_error_last(), sub));
	assert_non_null(strstr(tend_error_last(), pidtext));
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* released: now we get it, and a second taker in this process is refused too */
	assert_int_equal(tend_state_lock_take(&lock, sub), 0);
	{
		tend_state_lock *second = NULL;
		assert_int_equal(tend_state_lock_take(&second, sub), TEND_ELOCKED);
	}
	tend_state_lock_release(lock);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	free(sub);
	test_tmpdir_remove(dir);
}

/* A process killed while holding the lock does not leave it held. */
static void test_lock_freed_by_kill(void **state)
{
	char *dir = test_tmpdir_make("state");
	tend_state_lock *lock = NULL;
	int ready[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		tend_state_lock *held;
		if (tend_state_lock_take(&held, dir) < 0 || write(ready[1], "r", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(tend_state_lock_take(&lock, dir), TEND_ELOCKED);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(tend_state_lock_take(&lock, dir), 0);
	tend_state_lock_release(lock);
	close(ready[0]);
	close(ready[1]);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_missing_is_empty_and_history_bounded),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_crash_safety),
		cmocka_unit_test(test_lock_between_processes),
		cmocka_unit_test(test_lock_freed_by_kill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
