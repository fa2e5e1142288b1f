/* util/proc.c: a child under a time limit, and under an abort flag that a signal handler sets
 * (how tend stops waiting for systemd-run while the switch goes on in its unit). */
#include "tests/support/support.h"
#include "util/proc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t flag;

static void on_alarm(int sig)
{
	(void)sig;
	flag = 1;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A signal arrives while the child runs: the wait ends, the child's group is killed. */
static void test_abort_by_signal(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "echo started; sleep 60 & wait", NULL };
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	struct sigaction sa;
	struct timespec t0;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	flag = 0;
	opts.abort = &flag;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	alarm(1);
	assert_int_equal(tend_proc_run(&res, argv, &opts), 0);
	assert_true(res.aborted);
	assert_false(res.timed_out);
	assert_int_equal(res.exit_code, 128 + 9);
	assert_non_null(strstr(res.out.ptr, "started"));
	assert_true(seconds_since(&t0) < 30);
	tend_proc_result_dispose(&res);
}

/* The flag already set: the child is not waited for at all; unset, it runs to its end. */
static void test_abort_flag(void **state)
{
	char *slow[] = { "/bin/sh", "-c", "sleep 60", NULL };
	char *quick[] = { "/bin/sh", "-c", "echo done; exit 3", NULL };
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;

	(void)state;
	flag = 1;
	opts.abort = &flag;
	assert_int_equal(tend_proc_run(&res, slow, &opts), 0);
	assert_true(res.aborted);
	tend_proc_result_dispose(&res);
	flag = 0;
	assert_int_equal(tend_proc_run(&res, quick, &opts), 0);
	assert_false(res.aborted);
	assert_int_equal(res.exit_code, 3);
	assert_string_equal(res.out.ptr, "done\n");
	tend_proc_result_dispose(&res);
}

static void test_time_limit(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "sleep 60", NULL };
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;

	(void)state;
	opts.timeout_ms = 200;
	assert_int_equal(tend_proc_run(&res, argv, &opts), 0);
	assert_true(res.timed_out);
	assert_false(res.aborted);
	tend_proc_result_dispose(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abort_by_signal),
		cmocka_unit_test(test_abort_flag),
		cmocka_unit_test(test_time_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
