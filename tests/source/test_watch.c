/* The remote-head check for the long-running agent (source/watch.c): the head
 * of a file:// remote as it moves, a missing branch and a vanished remote,
 * a silent ssh server bounded by the ls-remote limit (the checker killed), a
 * checker that keeps none of the caller's descriptors, is replaced after it
 * died and after 1000 looks, and the mirror left untouched (it is only ever
 * fetched into by tend_source_poll). */
#include "tests/support/support.h"
#include "source/source.h"
#include "util/error.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GIT "git -c user.name=Operator -c user.email=op@example.org -c init.defaultBranch=main"

typedef struct {
	char *tmp, *work, *remote, *url;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->tmp = test_tmpdir_make("watch");
	f->work = tend_path_join(f->tmp, "work");
	f->remote = tend_path_join(f->tmp, "remote.git");
	assert_true(asprintf(&f->url, "file://%s", f->remote) > 0);
	assert_int_equal(test_sh(NULL, f->tmp, "git init -q --bare -b main remote.git && " GIT " init -q work && "
				 "cd work && git remote add origin ../remote.git"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	free(f->work);
	free(f->remote);
	free(f->url);
	test_tmpdir_remove(f->tmp);
	free(f);
	return 0;
}

static void commit_push(fixture *f, char out[41], const char *file, const char *content)
{
	test_write_file(f->work, file, content);
	assert_int_equal(test_sh(NULL, f->work, GIT " add -A && " GIT " commit -q -m change && "
				 "git push -q origin HEAD:main"), 0);
	assert_int_equal(tend_source_resolve(out, f->work, "HEAD"), 0);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_file_remote_head_moves(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source_watch *w = NULL;
	char *mirror = tend_path_join(f->tmp, "state/mirror"), c1[41], c2[41], head[41];
	int pid;

	commit_push(f, c1, "fleet.yaml", "fleet: lab\n");
	opts.url = f->url;
	opts.mirror_dir = mirror;
	assert_int_equal(tend_source_watch_open(&w, &opts), 0);
	assert_int_equal(tend_source_watch_pid(w), 0);   /* nothing forked before the first look */
	assert_int_equal(tend_source_watch_head(w, head), 0);
	assert_string_equal(head, c1);
	pid = tend_source_watch_pid(w);
	assert_true(pid > 0);
	/* The same checker answers again, and sees a pushed commit. */
	assert_int_equal(tend_source_watch_head(w, head), 0);
	assert_string_equal(head, c1);
	commit_push(f, c2, "fleet.yaml", "fleet: lab2\n");
	assert_int_equal(tend_source_watch_head(w, head), 0);
	assert_string_equal(head, c2);
	assert_int_equal(tend_source_watch_pid(w), pid);
	/* A look is no fetch: no mirror appears. */
	assert_false(tend_path_exists(mirror));

	/* A checker that died is replaced at the next look. */
	kill(pid, SIGKILL);
	usleep(50000);
	{
		int rc = tend_source_watch_head(w, head);

		if (rc < 0) {   /* the look that found it dead says so; the next one works */
			assert_non_null(strstr(tend_error_last(), "the git process"));
			assert_int_equal(tend_source_watch_head(w, head), 0);
		}
	}
	assert_string_equal(head, c2);
	assert_true(tend_source_watch_pid(w) > 0);
	assert_int_not_equal(tend_source_watch_pid(w), pid);
	tend_source_watch_free(w);
	/* Freed: the checker is gone (reaped, no zombie left). */
	assert_int_equal(kill(pid, 0), -1);
	free(mirror);
}

static void test_checker_replaced_after_1000_looks(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source_watch *w = NULL;
	char c1[41], head[41];
	int i, first;

	commit_push(f, c1, "fleet.yaml", "fleet: lab\n");
	opts.url = f->url;
	assert_int_equal(tend_source_watch_open(&w, &opts), 0);
	assert_int_equal(tend_source_watch_head(w, head), 0);
	first = tend_source_watch_pid(w);
	for (i = 1; i < 1000; i++) {
		assert_int_equal(tend_source_watch_head(w, head), 0);
		assert_string_equal(head, c1);
	}
	assert_int_equal(tend_source_watch_pid(w), first);
	assert_int_equal(tend_source_watch_head(w, head), 0);
	assert_string_equal(head, c1);
	assert_int_not_equal(tend_source_watch_pid(w), first);
	tend_source_watch_free(w);
}

static void test_errors(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source_watch *w = NULL;
	char *gone = NULL, c1[41], head[41];

	commit_push(f, c1, "fleet.yaml", "fleet: lab\n");
	opts.url = f->url;
	opts.branch = "production";
	assert_int_equal(tend_source_watch_open(&w, &opts), 0);
	assert_int_equal(tend_source_watch_head(w, head), TEND_ENOTFOUND);
	assert_non_null(strstr(tend_error_last(), "ls-remote: the remote has no branch 'production'"));
	assert_non_null(strstr(tend_error_last(), f->url));
	tend_source_watch_free(w);

	assert_true(asprintf(&gone, "file://%s/gone.git", f->tmp) > 0);
	opts.url = gone;
	opts.branch = NULL;
	assert_int_equal(tend_source_watch_open(&w, &opts), 0);
	assert_true(tend_source_watch_head(w, head) < 0);
	assert_non_null(strstr(tend_error_last(), gone));
	assert_non_null(strstr(tend_error_last(), ": ls-remote: "));
	tend_source_watch_free(w);

	/* What tend_source_open refuses is the answer of every look. */
	opts.url = "ssh://git@127.0.0.1:1/repo.git";
	assert_int_equal(tend_source_watch_open(&w, &opts), 0);
	assert_int_equal(tend_source_watch_head(w, head), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "known_hosts"));
	assert_int_equal(tend_source_watch_head(w, head), TEND_EINVALID);
	tend_source_watch_free(w);
	free(gone);
}

/* The checker must not hold the caller's descriptors: a lock held through
 * one would outlive the agent that took it. */
static void test_checker_keeps_no_descriptors(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source_watch *w = NULL;
	char *lock = tend_path_join(f->tmp, "agent.lock"), head[41], c1[41], *cmd = NULL;
	tend_buf out = TEND_BUF_INIT;
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	commit_push(f, c1, "fleet.yaml", "fleet: lab\n");
	opts.url = f->url;
	assert_int_equal(tend_source_watch_open(&w, &opts), 0);
	assert_int_equal(tend_source_watch_head(w, head), 0);
	assert_true(asprintf(&cmd, "ls -l /proc/%d/fd", tend_source_watch_pid(w)) > 0);
	assert_int_equal(test_sh(&out, f->tmp, "%s", cmd), 0);
	assert_non_null(strstr(out.ptr, "pipe:"));
	assert_null(strstr(out.ptr, "agent.lock"));
	tend_source_watch_free(w);
	tend_buf_dispose(&out);
	close(fd);
	free(cmd);
	free(lock);
}

static void test_silent_server_times_out(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source_watch *w = NULL;
	int port;
	char *url = NULL, *kh = tend_path_join(f->tmp, "known_hosts"), head[41];
	int lfd;
	int64_t t0, ms;

	lfd = test_listen_silent(&port);
	test_write_file(f->tmp, "known_hosts", "");
	assert_true(asprintf(&url, "ssh://git@127.0.0.1:%d/repo.git", port) > 0);
	opts.url = url;
	opts.known_hosts = kh;
	opts.ssh_key = kh; /* never reached */
	opts.ls_remote_timeout_ms = 300;
	assert_int_equal(tend_source_watch_open(&w, &opts), 0);
	t0 = mono_ms();
	assert_int_equal(tend_source_watch_head(w, head), TEND_ETIMEOUT);
	ms = mono_ms() - t0;
	assert_true(ms >= 300);
	assert_true(ms < 5000);
	assert_non_null(strstr(tend_error_last(), url));
	assert_non_null(strstr(tend_error_last(), "ls-remote: time limit of 300 ms exceeded"));
	/* The checker that ran out of time is gone; the next look starts another. */
	assert_int_equal(tend_source_watch_pid(w), 0);
	assert_int_equal(tend_source_watch_head(w, head), TEND_ETIMEOUT);
	tend_source_watch_free(w);
	close(lfd);
	free(url);
	free(kh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_remote_head_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checker_replaced_after_1000_looks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checker_keeps_no_descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
