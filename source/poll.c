/* Hard time limits for ls-remote and fetch. libgit2 1.5 has no socket
 * timeouts, and a server that accepts a connection and then says nothing
 * would block it forever; so the network part of a poll runs in a forked
 * child that reports its step and result over a pipe, and is killed when its
 * step's time limit runs out. Killing it is safe: the mirror only changes by
 * libgit2's lockfile renames (packs, then the branch ref, last). */
#include "source/source.h"
#include "source/internal.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RESULT_MAX 4096
/* Grace on top of the child's own (callback) deadline, so that the child's
 * more precise message wins when it can still report. */
#define GRACE_MS 1000

static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* In the child: run fn, report "R rc head fetched\n" and the message. */
static void child_main(tend_source_child_fn fn, void *arg, int fd)
{
	char head[41] = "-", line[128];
	int fetched = 0, rc, n;

	rc = fn(arg, fd, head, &fetched);
	n = snprintf(line, sizeof(line), "R %d %s %d\n", rc, rc == 0 ? head : "-", fetched);
	write_all(fd, line, (size_t)n);
	if (rc < 0)
		write_all(fd, tend_error_last(), strlen(tend_error_last()));
	_exit(0);
}

static int poll_child(void *arg, int fd, char head[41], int *fetched)
{
	tend_source *s = arg;

	/* The parent's handle shares descriptors with us; use our own. */
	s->repo = NULL;
	s->progress_fd = fd;
	return tend_source_poll_direct(s, head, fetched);
}

int tend_source_poll(tend_source *s, char out_head[41], int *out_fetched)
{
	int error;

	if (out_fetched)
		*out_fetched = 0;
	if ((error = tend_source_mirror_open(s)) < 0)
		return error;
	return tend_source_supervise(out_head, out_fetched, s->url, s->ls_remote_timeout_ms,
				     s->fetch_timeout_ms, poll_child, s);
}

static int ls_child(void *arg, int fd, char head[41], int *fetched)
{
	tend_source *s = arg;

	(void)fetched;
	s->repo = NULL;
	s->progress_fd = fd;
	return tend_source_remote_head_direct(s, head);
}

int tend_source_remote_head(tend_source *s, char out_head[41])
{
	return tend_source_supervise(out_head, NULL, s->url, s->ls_remote_timeout_ms,
				     s->fetch_timeout_ms, ls_child, s);
}

int tend_source_supervise(char out_head[41], int *out_fetched, const char *s_url, int ls_ms,
			  int fetch_ms, tend_source_child_fn fn, void *arg)
{
	char buf[RESULT_MAX + 1], step[32] = "ls-remote", *url = NULL, *res;
	size_t len = 0;
	int fds[2] = { -1, -1 }, limit = ls_ms, status = 0, error = -1;
	int64_t deadline;
	pid_t pid;

	if (out_fetched)
		*out_fetched = 0;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		tend_error_set_errno("poll %s: pipe", s_url);
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		tend_error_set_errno("poll %s: fork", s_url);
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fn, arg, fds[1]);
	}
	close(fds[1]);
	url = tend_source_url_display(s_url);
	deadline = tend_source_now_ms() + limit + GRACE_MS;
	for (;;) {
		struct pollfd pfd = { fds[0], POLLIN, 0 };
		int64_t left = deadline - tend_source_now_ms();
		ssize_t n;
		char *nl;

		if (left <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			pid = -1;
			tend_error_set("%s: %s: time limit of %d ms exceeded (no answer from the server)",
				       url ? url : s_url, step, limit);
			error = TEND_ETIMEOUT;
			goto out;
		}
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			tend_error_set_errno("poll %s", s_url);
			goto out;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(fds[0], buf + len, RESULT_MAX - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tend_error_set_errno("poll %s: read", s_url);
			goto out;
		}
		if (n == 0 || len + (size_t)n >= RESULT_MAX)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		/* Step lines restart the clock with that step's limit. */
		while (!strncmp(buf, "S ", 2) && (nl = strchr(buf, '\n'))) {
			*nl = '\0';
			snprintf(step, sizeof(step), "%.*s", (int)sizeof(step) - 1, buf + 2);
			limit = !strcmp(step, "fetch") ? fetch_ms : ls_ms;
			deadline = tend_source_now_ms() + limit + GRACE_MS;
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
	}
	buf[len] = '\0';
	waitpid(pid, &status, 0);
	pid = -1;
	if (strncmp(buf, "R ", 2) != 0) {
		tend_error_set("%s: %s: the git process died (%s %d)", url ? url : s_url, step,
			       WIFSIGNALED(status) ? "signal" : "exit status",
			       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		goto out;
	}
	{
		char head[41];
		int rc = 0, fetched = 0;

		if (sscanf(buf, "R %d %40s %d", &rc, head, &fetched) != 3) {
			tend_error_set("%s: %s: garbled result from the git process", url ? url : s_url, step);
			goto out;
		}
		if (rc < 0) {
			res = strchr(buf, '\n');
			tend_error_set("%s", res && res[1] ? res + 1 : "poll failed");
			error = rc;
			goto out;
		}
		memcpy(out_head, head, 41);
		if (out_fetched)
			*out_fetched = fetched;
	}
	error = 0;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(fds[0]);
	free(url);
	return error;
}
