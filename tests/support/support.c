/* Temporary directories, files and child processes for the test suite. */
#include "tests/support/support.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

char *test_tmpdir_make(const char *label)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = NULL;

	if (!base || !*base)
		base = "/tmp";
	assert_true(asprintf(&tmpl, "%s/tend-%s-XXXXXX", base, label) > 0);
	assert_non_null(mkdtemp(tmpl));
	return tmpl;
}

void test_tmpdir_remove(char *dir)
{
	if (!dir)
		return;
	if (!getenv("TEND_KEEP_TMP"))
		tend_dir_remove_all(dir);
	free(dir);
}

void test_write_file(const char *dir, const char *rel, const char *content)
{
	char *path = tend_path_join(dir, rel), *slash;
	FILE *f;

	assert_non_null(path);
	slash = strrchr(path, '/');
	*slash = '\0';
	assert_int_equal(tend_dir_create_all(path, 0755), 0);
	*slash = '/';
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
	free(path);
}

char *test_read_file(const char *path)
{
	tend_buf b = TEND_BUF_INIT;

	if (tend_file_read(&b, path, 0) < 0) {
		tend_buf_dispose(&b);
		return NULL;
	}
	return tend_buf_detach(&b);
}

int test_sh(tend_buf *out, const char *cwd, const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = test_shv(out, cwd, 120, fmt, ap);
	va_end(ap);
	return code;
}

int test_shv(tend_buf *out, const char *cwd, int timeout_s, const char *fmt, va_list ap)
{
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	char *cmd = NULL;
	char *argv[4];
	int code;

	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = cmd;
	argv[3] = NULL;
	opts.cwd = cwd;
	opts.timeout_ms = timeout_s * 1000;
	opts.merge_stderr = 1;
	opts.max_output = 4u << 20;
	assert_int_equal(tend_proc_run(&res, argv, &opts), 0);
	code = res.timed_out ? -1 : res.exit_code;
	if (out)
		tend_buf_put(out, res.out.ptr, res.out.size);
	else if (code != 0)
		fprintf(stderr, "command failed (%d): %s\n%s", code, cmd, res.out.ptr);
	tend_proc_result_dispose(&res);
	free(cmd);
	return code;
}

int test_tend(tend_proc_result *res, const char *cwd, const char *const *args)
{
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	char *argv[64];
	size_t i, n = 0;

	argv[n++] = (char *)TEND_BINARY;
	for (i = 0; args[i] && n < 63; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	opts.cwd = cwd;
	opts.timeout_ms = 120000;
	return tend_proc_run(res, argv, &opts);
}

int test_have(const char *tool)
{
	char *cmd = NULL;
	int rc;

	assert_true(asprintf(&cmd, "command -v %s >/dev/null 2>&1", tool) > 0);
	rc = system(cmd);
	free(cmd);
	return rc == 0;
}

char *test_git_commit_all(const char *repo, const char *message)
{
	tend_buf out = TEND_BUF_INIT;
	char *hash;

	assert_int_equal(test_sh(NULL, repo, "git add -A && git -c user.name=op "
				 "-c user.email=op@lab.test commit -q -m '%s'", message), 0);
	assert_int_equal(test_sh(&out, repo, "git rev-parse HEAD"), 0);
	assert_true(out.size >= 40);
	hash = strndup(out.ptr, 40);
	tend_buf_dispose(&out);
	return hash;
}

void test_kill_matching(const char *needle)
{
	int i;

	if (!needle || strlen(needle) < 8)
		return; /* never a pattern that could match unrelated processes */
	test_sh(NULL, NULL, "pkill -TERM -f '%s' >/dev/null 2>&1; true", needle);
	for (i = 0; i < 100; i++) {
		if (test_sh(NULL, NULL, "pgrep -f '%s' >/dev/null 2>&1", needle) != 0)
			return;
		usleep(100 * 1000);
	}
	test_sh(NULL, NULL, "pkill -KILL -f '%s' >/dev/null 2>&1; true", needle);
}

int test_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

int test_listen_silent(int *out_port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*out_port = ntohs(sa.sin_port);
	return fd;
}
