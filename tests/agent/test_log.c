/* The agent's log lines: one line per event whatever the message holds, a
 * journald "<N>" priority prefix under systemd, a UTC timestamp otherwise,
 * and the level filter. Lines are read back from a real pipe. */
#include "tests/agent/helpers.h"
#include "agent/log.h"

#include <regex.h>

/* Run fn in a child whose stderr is a pipe; return what it wrote. */
static char *capture(void (*fn)(void))
{
	tend_buf b = TEND_BUF_INIT;
	int p[2], status;
	char buf[512];
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 2);
		fn();
		_exit(0);
	}
	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		tend_buf_put(&b, buf, (size_t)n);
	close(p[0]);
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (!b.ptr)
		tend_buf_puts(&b, "");
	return tend_buf_detach(&b);
}

static void under_systemd(void)
{
	setenv("JOURNAL_STREAM", "8:12345", 1);
	tend_log_init();
	tend_log(TEND_LOG_ERR, "reconcile %s: rolled-back", "abc");
	tend_log(TEND_LOG_NOTICE, "probe output:\nline two\r\x1b[31m");
	tend_log(TEND_LOG_DEBUG, "not shown");
}

static void on_a_terminal(void)
{
	unsetenv("JOURNAL_STREAM");
	unsetenv("NOTIFY_SOCKET");
	tend_log_init();
	tend_log_set_level(TEND_LOG_DEBUG);
	tend_log(TEND_LOG_WARNING, "fetch failed: %s", "timeout");
	tend_log(TEND_LOG_DEBUG, "shown at debug");
}

static void test_journald_prefixes(void **state)
{
	char *out = capture(under_systemd);

	assert_string_equal(out, "<3>reconcile abc: rolled-back\n"
				 "<5>probe output: line two  [31m\n");
	free(out);
}

static void test_timestamps_otherwise(void **state)
{
	char *out = capture(on_a_terminal);
	regex_t re;

	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z "
				 "warning: fetch failed: timeout\n"
				 "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z "
				 "debug: shown at debug\n$", REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
	regfree(&re);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journald_prefixes),
		cmocka_unit_test(test_timestamps_otherwise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
