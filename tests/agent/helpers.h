/* Helpers shared by the agent tests (header-only: each test file is its own
 * executable): free loopback ports, background processes, a real SMTP server. */
#ifndef TEND_TESTS_AGENT_HELPERS_H
#define TEND_TESTS_AGENT_HELPERS_H

#include "tests/support/support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AIOSMTPD_PYTHON "/usr/bin/python3"

static inline long long test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void test_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* 1 once something accepts TCP connections on 127.0.0.1:port. */
static inline int test_wait_port(int port, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;

	do {
		struct sockaddr_in sa;
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return 1;
		test_sleep_ms(50);
	} while (test_now_ms() < end);
	return 0;
}

/* Start argv in the background, its output appended to log (if given). */
static inline pid_t test_spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setpgid(0, 0);
		/* Never outlive the test (a failed assertion skips the cleanup). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Send sig and wait up to timeout_ms; returns the wait status or -1 if the
 * process did not exit (it is then killed). */
static inline int test_signal_wait(pid_t pid, int sig, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;
	int status;

	if (sig)
		kill(pid, sig);
	do {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		test_sleep_ms(20);
	} while (test_now_ms() < end);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static inline int test_have_aiosmtpd(void)
{
	return system(AIOSMTPD_PYTHON " -c 'import aiosmtpd' >/dev/null 2>&1") == 0;
}

/* A real SMTP server (aiosmtpd, Mailbox handler: one file per message in
 * maildir/new) on 127.0.0.1:port. */
static inline pid_t test_smtp_start(int port, const char *maildir, const char *log)
{
	char listen[64];
	char *argv[] = { (char *)AIOSMTPD_PYTHON, "-m", "aiosmtpd", "-n", "-l", listen,
			 "-c", "aiosmtpd.handlers.Mailbox", (char *)maildir, NULL };
	pid_t pid;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	pid = test_spawn(argv, log);
	assert_true(test_wait_port(port, 15000));
	return pid;
}

static inline void test_smtp_stop(pid_t pid)
{
	test_signal_wait(pid, SIGTERM, 5000);
}

/* Number of messages delivered into maildir, and (if out) their concatenation. */
static inline int test_maildir_count(const char *maildir, tend_buf *out)
{
	char *dir = NULL;
	struct dirent *de;
	DIR *d;
	int n = 0;

	assert_true(asprintf(&dir, "%s/new", maildir) > 0);
	if ((d = opendir(dir))) {
		while ((de = readdir(d))) {
			char *path = NULL, *text;

			if (de->d_name[0] == '.')
				continue;
			n++;
			assert_true(asprintf(&path, "%s/%s", dir, de->d_name) > 0);
			if (out && (text = test_read_file(path))) {
				tend_buf_puts(out, text);
				tend_buf_puts(out, "\n--- end of message ---\n");
				free(text);
			}
			free(path);
		}
		closedir(d);
	}
	free(dir);
	return n;
}

#endif

#ifdef TEST_WITH_HTTP_CLIENT
#include <curl/curl.h>

static inline size_t test_http_sink(char *p, size_t size, size_t n, void *ud)
{
	tend_buf_put(ud, p, size * n);
	return size * n;
}

/* One real HTTP request with libcurl; returns the status code (0: no reply). */
static inline long test_http(const char *method, const char *url, const char *const *headers,
			     const char *body, size_t body_len, tend_buf *out)
{
	CURL *c = curl_easy_init();
	tend_buf discard = TEND_BUF_INIT;
	struct curl_slist *h = NULL;
	long code = 0;
	size_t i;

	assert_non_null(c);
	for (i = 0; headers && headers[i]; i++)
		h = curl_slist_append(h, headers[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_http_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out ? out : &discard);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	tend_buf_dispose(&discard);
	return code;
}

#include <jansson.h>

/* A running agent's /v1/status (base: "http://127.0.0.1:PORT"), or NULL when
 * it does not answer. Caller decrefs. */
static inline json_t *test_agent_status(const char *base)
{
	tend_buf b = TEND_BUF_INIT;
	char url[128];
	json_t *j = NULL;

	snprintf(url, sizeof(url), "%s/v1/status", base);
	if (test_http("GET", url, NULL, NULL, 0, &b) == 200)
		j = json_loads(b.ptr, 0, NULL);
	tend_buf_dispose(&b);
	return j;
}

/* Wait until the agent reports phase (and, if given, that applied commit);
 * fails with the last phase seen and the agent's log otherwise. */
static inline void test_agent_wait_phase(const char *base, const char *log_path, const char *phase,
					 const char *applied, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;
	char last[256] = "";
	char *log;

	do {
		json_t *j = test_agent_status(base);

		if (j) {
			const char *p = json_string_value(json_object_get(j, "phase"));
			const char *a = json_string_value(json_object_get(j, "applied_commit"));

			snprintf(last, sizeof(last), "%s at %s", p ? p : "?", a ? a : "-");
			if (p && !strcmp(p, phase) && (!applied || (a && !strcmp(a, applied)))) {
				json_decref(j);
				return;
			}
			json_decref(j);
		}
		test_sleep_ms(100);
	} while (test_now_ms() < end);
	log = test_read_file(log_path);
	fail_msg("agent never reached %s (last: %s); log:\n%s", phase, last, log ? log : "");
}

/* A /metrics sample's value (name with its labels, at the start of a line),
 * -1 when absent. */
static inline double test_agent_metric(const char *base, const char *name)
{
	tend_buf b = TEND_BUF_INIT;
	char url[128], *p;
	size_t n = strlen(name);
	double v = -1;

	snprintf(url, sizeof(url), "%s/metrics", base);
	if (test_http("GET", url, NULL, NULL, 0, &b) == 200 && b.ptr) {
		for (p = b.ptr; (p = strstr(p, name)); p++) {
			if ((p == b.ptr || p[-1] == '\n') && p[n] == ' ') {
				v = strtod(p + n + 1, NULL);
				break;
			}
		}
	}
	tend_buf_dispose(&b);
	return v;
}
#endif
