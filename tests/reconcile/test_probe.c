/* Probes against real loopback listeners: an HTTP server (python3), plain TCP
 * sockets, commands; grace, retries, per-try timeout, deadline, output caps
 * and the abort flag. */
#include "tests/reconcile/fixture.h"
#include "reconcile/probe.h"
#include "util/error.h"

#include <fcntl.h>
#include <sys/time.h>
#include <sys/wait.h>

static pid_t http_pid;
static int http_port;
static char *http_dir;

/* python3 serving a directory: /ok.txt -> 200 "all good", anything else 404. */
static int start_http(void **state)
{
	char port[16];

	http_dir = test_tmpdir_make("probe");
	test_write_file(http_dir, "ok.txt", "all good\n");
	test_write_file(http_dir, "big.txt", "");
	test_write_file(http_dir, "escapes.txt", "pwned \x1b]0;title\x07\x1b[2J\x9b" "31m end\n");
	assert_int_equal(test_sh(NULL, http_dir, "head -c 100000 /dev/zero | tr '\\0' x > big.txt"), 0);
	http_port = test_free_port();
	snprintf(port, sizeof(port), "%d", http_port);
	http_pid = fork();
	assert_true(http_pid >= 0);
	if (http_pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		if (chdir(http_dir) < 0)
			_exit(127);
		execlp("python3", "python3", "-m", "http.server", "--bind", "127.0.0.1", port, (char *)NULL);
		_exit(127);
	}
	assert_true(fx_wait_listening(http_port, 10000));
	return 0;
}

static int stop_http(void **state)
{
	kill(http_pid, SIGKILL);
	waitpid(http_pid, NULL, 0);
	test_tmpdir_remove(http_dir);
	return 0;
}

static tend_probe http_probe(const char *path, int status, const char *body)
{
	static char url[256];
	tend_probe p;

	memset(&p, 0, sizeof(p));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", http_port, path);
	p.kind = TEND_PROBE_HTTP;
	p.url = url;
	p.expect_status = status;
	p.body_match = (char *)body;
	p.interval_ms = 50;
	p.timeout_ms = 2000;
	p.retries = 2;
	return p;
}

static void test_http(void **state)
{
	tend_probe_result r;
	tend_probe p;
	char *d;

	p = http_probe("/ok.txt", 200, "good");
	assert_int_equal(tend_probe_run(&r, &p, NULL), 0);
	assert_true(r.healthy);
	assert_int_equal(r.tries, 1);
	tend_probe_result_dispose(&r);

	p = http_probe("/missing", 200, NULL);
	assert_int_equal(tend_probe_run(&r, &p, NULL), TEND_ERROR);
	assert_false(r.healthy);
	assert_int_equal(r.tries, 2);
	assert_true(!strncmp(r.output.ptr, "HTTP 404 (expected 200)\n", 24));
	assert_non_null(strstr(tend_error_last(), "failed after 2 tries: HTTP 404 (expected 200)"));
	d = tend_probe_describe(&p);
	assert_non_null(strstr(tend_error_last(), d));
	free(d);
	tend_probe_result_dispose(&r);

	/* an expected non-200 status is healthy */
	p = http_probe("/missing", 404, NULL);
	assert_int_equal(tend_probe_run(&r, &p, NULL), 0);
	tend_probe_result_dispose(&r);

	p = http_probe("/ok.txt", 200, "bad news");
	assert_int_equal(tend_probe_run(&r, &p, NULL), TEND_ERROR);
	assert_non_null(strstr(r.output.ptr, "does not contain \"bad news\""));
	assert_non_null(strstr(r.output.ptr, "all good"));
	tend_probe_result_dispose(&r);
}

/* Issue 17 F12: a probed body's terminal escapes reached tend reconcile's
 * and tend history's output (and the history, and mails). Now the output
 * keeps its text and line feeds, every control character is '?'. Fails on
 * 247ba6c (the ESC bytes were kept). */
static void test_http_output_stripped(void **state)
{
	tend_probe_result r;
	tend_probe p = http_probe("/escapes.txt", 200, "never there");

	(void)state;
	p.retries = 1;
	assert_int_equal(tend_probe_run(&r, &p, NULL), TEND_ERROR);
	assert_null(strchr(r.output.ptr, '\x1b'));
	assert_null(strchr(r.output.ptr, '\x07'));
	assert_non_null(strstr(r.output.ptr, "pwned ?]0;title??[2J?31m end\n"));
	assert_int_equal(r.output.size, strlen(r.output.ptr));
	tend_probe_result_dispose(&r);
}

static void test_http_output_capped(void **state)
{
	tend_probe_opts o = TEND_PROBE_OPTS_INIT;
	tend_probe_result r;
	tend_probe p = http_probe("/big.txt", 200, "never");

	o.output_limit = 300;
	o.body_limit = 1000;
	p.retries = 1;
	assert_int_equal(tend_probe_run(&r, &p, &o), TEND_ERROR);
	assert_int_equal(r.output.size, 300);
	assert_non_null(strstr(r.output.ptr, "xxxxxxxxxx"));
	tend_probe_result_dispose(&r);
}

static void test_tcp(void **state)
{
	int port;
	tend_probe_result r;
	tend_probe p;
	int fd;

	fd = test_listen_silent(&port);
	memset(&p, 0, sizeof(p));
	p.kind = TEND_PROBE_TCP;
	p.host = "127.0.0.1";
	p.port = port;
	p.timeout_ms = 1000;
	p.retries = 1;
	assert_int_equal(tend_probe_run(&r, &p, NULL), 0);
	tend_probe_result_dispose(&r);
	close(fd);
	/* nothing listens any more */
	assert_int_equal(tend_probe_run(&r, &p, NULL), TEND_ERROR);
	assert_non_null(strstr(r.output.ptr, "Connection refused"));
	assert_non_null(strstr(tend_error_last(), "tcp 127.0.0.1:"));
	tend_probe_result_dispose(&r);
	p.host = "no-such-host.invalid";
	assert_int_equal(tend_probe_run(&r, &p, NULL), TEND_ERROR);
	assert_non_null(strstr(r.output.ptr, "cannot resolve no-such-host.invalid"));
	tend_probe_result_dispose(&r);
}

/* A listener that accepts connections but never answers: the per-try timeout ends each try. */
static void test_timeout_and_deadline(void **state)
{
	int port;
	tend_probe_opts o = TEND_PROBE_OPTS_INIT;
	tend_probe_result r;
	tend_probe p;
	char url[64];
	int64_t t0;
	int fd;

	fd = test_listen_silent(&port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	memset(&p, 0, sizeof(p));
	p.kind = TEND_PROBE_HTTP;
	p.url = url;
	p.expect_status = 200;
	p.timeout_ms = 300;
	p.interval_ms = 10;
	p.retries = 2;
	t0 = tend_probe_now_ms();
	assert_int_equal(tend_probe_run(&r, &p, NULL), TEND_ERROR);
	assert_true(tend_probe_now_ms() - t0 >= 600);
	assert_true(tend_probe_now_ms() - t0 < 3000);
	if (!strstr(r.output.ptr, "imeout") && !strstr(r.output.ptr, "timed out"))
		fail_msg("output: %s", r.output.ptr);
	tend_probe_result_dispose(&r);

	/* the deadline bounds many retries */
	p.retries = 100;
	o.deadline_ms = tend_probe_now_ms() + 700;
	t0 = tend_probe_now_ms();
	assert_int_equal(tend_probe_run(&r, &p, &o), TEND_ETIMEOUT);
	assert_true(tend_probe_now_ms() - t0 < 1500);
	assert_non_null(strstr(tend_error_last(), "deadline reached"));
	tend_probe_result_dispose(&r);
	close(fd);
}

static void test_command_grace_retries(void **state)
{
	char *dir = test_tmpdir_make("probe"), *flag = tend_path_join(dir, "flag");
	char *argv_ok[] = { "test", "-e", flag, NULL };
	char *argv_out[] = { "sh", "-c", "echo not ready; exit 4", NULL };
	tend_probe_result r;
	tend_probe p;
	int64_t t0;
	pid_t pid;

	memset(&p, 0, sizeof(p));
	p.kind = TEND_PROBE_COMMAND;
	p.argv = argv_out;
	p.argc = 3;
	p.retries = 1;
	p.timeout_ms = 2000;
	assert_int_equal(tend_probe_run(&r, &p, NULL), TEND_ERROR);
	assert_string_equal(r.output.ptr, "exit 4\nnot ready\n");
	tend_probe_result_dispose(&r);

	/* the flag appears after 400 ms: a grace of 200 ms and retries 100 ms apart get there */
	pid = fork();
	if (pid == 0) {
		usleep(400000);
		test_write_file(dir, "flag", "x");
		_exit(0);
	}
	p.argv = argv_ok;
	p.argc = 3;
	p.grace_ms = 200;
	p.interval_ms = 100;
	p.retries = 20;
	t0 = tend_probe_now_ms();
	assert_int_equal(tend_probe_run(&r, &p, NULL), 0);
	assert_true(tend_probe_now_ms() - t0 >= 350);
	assert_true(r.tries >= 2);
	tend_probe_result_dispose(&r);
	waitpid(pid, NULL, 0);

	/* grace is waited before the first try */
	p.grace_ms = 300;
	t0 = tend_probe_now_ms();
	assert_int_equal(tend_probe_run(&r, &p, NULL), 0);
	assert_true(tend_probe_now_ms() - t0 >= 300);
	assert_int_equal(r.tries, 1);
	tend_probe_result_dispose(&r);
	free(flag);
	test_tmpdir_remove(dir);
}

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void test_abort(void **state)
{
	struct itimerval it = { { 0, 0 }, { 0, 300000 } };
	tend_probe_opts o = TEND_PROBE_OPTS_INIT;
	char *argv[] = { "false", NULL };
	tend_probe_result r;
	tend_probe p;
	int64_t t0;

	memset(&p, 0, sizeof(p));
	p.kind = TEND_PROBE_COMMAND;
	p.argv = argv;
	p.argc = 1;
	p.retries = 1000;
	p.interval_ms = 1000;
	p.timeout_ms = 1000;
	o.abort = &stop_flag;
	signal(SIGALRM, on_alarm);
	setitimer(ITIMER_REAL, &it, NULL);
	t0 = tend_probe_now_ms();
	assert_int_equal(tend_probe_run(&r, &p, &o), TEND_ERROR);
	assert_true(r.aborted);
	assert_true(tend_probe_now_ms() - t0 < 800);
	assert_non_null(strstr(tend_error_last(), "stopped"));
	tend_probe_result_dispose(&r);
	signal(SIGALRM, SIG_DFL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_output_capped),
		cmocka_unit_test(test_http_output_stripped),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_timeout_and_deadline),
		cmocka_unit_test(test_command_grace_retries),
		cmocka_unit_test(test_abort),
	};
	return cmocka_run_group_tests(tests, start_http, stop_http);
}
