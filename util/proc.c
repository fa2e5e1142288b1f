/* fork/exec with pipes, poll() for output and the deadline, SIGKILL to the
 * child's process group when time runs out. */
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int capture(tend_buf *b, int fd, size_t max, int *truncated)
{
	char chunk[8192];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	if (b->size + (size_t)n > max) {
		size_t room = max > b->size ? max - b->size : 0;
		*truncated = 1;
		if (room)
			tend_buf_put(b, chunk, room);
	} else if (tend_buf_put(b, chunk, (size_t)n) < 0) {
		return 0;
	}
	return 1;
}

int tend_proc_run(tend_proc_result *out, char *const argv[], const tend_proc_opts *opts)
{
	tend_proc_opts defaults = TEND_PROC_OPTS_INIT;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, inp[2] = { -1, -1 };
	int error = TEND_ERROR, status = 0;
	size_t max, in_off = 0;
	long long deadline = 0;
	pid_t pid;

	if (!opts)
		opts = &defaults;
	memset(out, 0, sizeof(*out));
	max = opts->max_output ? opts->max_output : (1u << 20);
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    pipe2(inp, O_CLOEXEC) < 0) {
		tend_error_set_errno("pipe");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		tend_error_set_errno("fork");
		goto out;
	}
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		dup2(inp[0], 0);
		dup2(outp[1], 1);
		dup2(opts->merge_stderr ? outp[1] : errp[1], 2);
		if (opts->cwd && chdir(opts->cwd) < 0) {
			dprintf(2, "chdir %s: %s\n", opts->cwd, strerror(errno));
			_exit(127);
		}
		if (opts->env)
			environ = (char **)opts->env;
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(inp[0]); inp[0] = -1;
	close(outp[1]); outp[1] = -1;
	close(errp[1]); errp[1] = -1;
	if (!opts->stdin_data || !opts->stdin_len) {
		close(inp[1]);
		inp[1] = -1;
	} else {
		fcntl(inp[1], F_SETFL, O_NONBLOCK);
	}
	if (opts->timeout_ms > 0)
		deadline = now_ms() + opts->timeout_ms;

	while (outp[0] >= 0 || errp[0] >= 0 || inp[1] >= 0) {
		struct pollfd fds[3];
		int nfds = 0, wait_ms = -1, i;

		if (outp[0] >= 0) fds[nfds++] = (struct pollfd){ outp[0], POLLIN, 0 };
		if (errp[0] >= 0) fds[nfds++] = (struct pollfd){ errp[0], POLLIN, 0 };
		if (inp[1] >= 0) fds[nfds++] = (struct pollfd){ inp[1], POLLOUT, 0 };
		if (opts->abort && *opts->abort) {
			out->aborted = 1;
			kill(-pid, SIGKILL);
			break;
		}
		if (deadline) {
			long long left = deadline - now_ms();
			if (left <= 0) {
				out->timed_out = 1;
				kill(-pid, SIGKILL);
				break;
			}
			wait_ms = (int)left;
		}
		/* a signal between the check above and poll() is seen within half a second */
		if (opts->abort && (wait_ms < 0 || wait_ms > 500))
			wait_ms = 500;
		if (poll(fds, (nfds_t)nfds, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			tend_error_set_errno("poll");
			kill(-pid, SIGKILL);
			waitpid(pid, NULL, 0);
			goto out;
		}
		for (i = 0; i < nfds; i++) {
			if (!fds[i].revents)
				continue;
			if (fds[i].fd == inp[1]) {
				ssize_t n = write(inp[1], opts->stdin_data + in_off, opts->stdin_len - in_off);
				if (n > 0)
					in_off += (size_t)n;
				if (n < 0 && errno != EAGAIN && errno != EINTR)
					in_off = opts->stdin_len;
				if (in_off >= opts->stdin_len) {
					close(inp[1]);
					inp[1] = -1;
				}
			} else if (fds[i].fd == outp[0]) {
				if (!capture(&out->out, outp[0], max, &out->truncated)) {
					close(outp[0]);
					outp[0] = -1;
				}
			} else if (fds[i].fd == errp[0]) {
				if (!capture(&out->err, errp[0], max, &out->truncated)) {
					close(errp[0]);
					errp[0] = -1;
				}
			}
		}
	}
	/* The pipes may close before the child exits: keep honouring the deadline. */
	for (;;) {
		pid_t r = waitpid(pid, &status, out->timed_out || out->aborted ? 0 : WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			tend_error_set_errno("waitpid");
			goto out;
		}
		if (deadline && now_ms() >= deadline && !out->timed_out) {
			out->timed_out = 1;
			kill(-pid, SIGKILL);
			continue;
		}
		if (opts->abort && *opts->abort && !out->aborted) {
			out->aborted = 1;
			kill(-pid, SIGKILL);
			continue;
		}
		if (r == 0) {
			struct timespec ts = { 0, 5 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	if (out->timed_out)
		kill(-pid, SIGKILL); /* grandchildren that kept running */
	if (WIFEXITED(status))
		out->exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		out->exit_code = 128 + WTERMSIG(status);
	if (!out->out.ptr) tend_buf_grow(&out->out, 0);
	if (!out->err.ptr) tend_buf_grow(&out->err, 0);
	error = 0;
out:
	if (inp[0] >= 0) close(inp[0]);
	if (inp[1] >= 0) close(inp[1]);
	if (outp[0] >= 0) close(outp[0]);
	if (outp[1] >= 0) close(outp[1]);
	if (errp[0] >= 0) close(errp[0]);
	if (errp[1] >= 0) close(errp[1]);
	if (error < 0)
		tend_proc_result_dispose(out);
	return error;
}

void tend_proc_result_dispose(tend_proc_result *res)
{
	if (!res)
		return;
	tend_buf_dispose(&res->out);
	tend_buf_dispose(&res->err);
}
