/* The remote head, cheaply and without libgit2 in the calling process: a
 * checker process (forked once, libgit2 initialised once) runs the ls-remote
 * step per request and answers over a socket; the caller reads the answer
 * under the ls-remote time limit (plus a grace) and kills the checker when it
 * runs out, as tend_source_poll kills its child. A fresh child per look would
 * cost more than the look: the ls-remote itself is ~0.1 ms of CPU, a fork,
 * its page faults and exit ~1.5 ms. */
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG_MAX 4096
/* On top of the ls-remote limit, so that the checker's own (callback)
 * deadline and its more precise message win when it can still answer, and
 * for a new checker's start (libgit2's initialisation). */
#define CHECKER_GRACE_MS 1000
#define DEFAULT_LS_MS 30000
/* A checker is replaced after this many looks: whatever libgit2 may keep
 * per remote (1.5.1 leaks with some remotes) stays bounded. */
#define CHECKER_LOOKS 1000

struct tend_source_watch {
	char *url, *branch, *mirror_dir, *known_hosts, *ssh_key, *ssh_passphrase_file;
	char *https_token_file, *https_basic_file, *ca_file;
	int ssh_agent, ls_remote_timeout_ms;
	pid_t parent;              /* the caller, as the checker sees it at its start */
	pid_t pid;                 /* the checker; 0: none */
	int looks;                 /* requests it answered */
	int fd;                    /* our end of the socket pair: requests out, answers in */
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int tend_source_watch_open(tend_source_watch **out, const tend_source_opts *o)
{
	tend_source_watch *w;

	*out = NULL;
	if (!o->url || !*o->url) {
		tend_error_set("source: url is required");
		return TEND_EINVALID;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	w->fd = -1;
	w->url = strdup(o->url);
	w->branch = dup_or_null(o->branch);
	w->mirror_dir = strdup(o->mirror_dir ? o->mirror_dir : ".");
	w->known_hosts = dup_or_null(o->known_hosts);
	w->ssh_key = dup_or_null(o->ssh_key);
	w->ssh_passphrase_file = dup_or_null(o->ssh_passphrase_file);
	w->https_token_file = dup_or_null(o->https_token_file);
	w->https_basic_file = dup_or_null(o->https_basic_file);
	w->ca_file = dup_or_null(o->ca_file);
	w->ssh_agent = o->ssh_agent;
	w->ls_remote_timeout_ms = o->ls_remote_timeout_ms > 0 ? o->ls_remote_timeout_ms : DEFAULT_LS_MS;
	if (!w->url || !w->mirror_dir) {
		tend_source_watch_free(w);
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	*out = w;
	return 0;
}

static void checker_stop(tend_source_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	w->pid = 0;
	w->looks = 0;
}

void tend_source_watch_free(tend_source_watch *w)
{
	if (!w)
		return;
	checker_stop(w);
	free(w->url);
	free(w->branch);
	free(w->mirror_dir);
	free(w->known_hosts);
	free(w->ssh_key);
	free(w->ssh_passphrase_file);
	free(w->https_token_file);
	free(w->https_basic_file);
	free(w->ca_file);
	free(w);
}

int tend_source_watch_pid(const tend_source_watch *w)
{
	return w ? (int)w->pid : 0;
}

/* send(MSG_NOSIGNAL): a peer that is gone is an error, never SIGPIPE. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- in the checker ---- */

/* Keep only stdio and our socket: the caller's descriptors (a lock, a
 * listening socket) must not outlive it in us. */
static void close_others(int fd)
{
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0U, 0);
}

static void checker_main(tend_source_watch *w, int fd)
{
	tend_source_opts o = TEND_SOURCE_OPTS_INIT;
	tend_source *s = NULL;
	struct sigaction sa;
	sigset_t none;
	char open_msg[MSG_MAX] = "", c;
	int open_rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Never outlive the caller, also not in a look that hangs. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != w->parent)
		_exit(0);
	close_others(fd);
	o.url = w->url;
	o.branch = w->branch;
	o.mirror_dir = w->mirror_dir;
	o.known_hosts = w->known_hosts;
	o.ssh_key = w->ssh_key;
	o.ssh_passphrase_file = w->ssh_passphrase_file;
	o.ssh_agent = w->ssh_agent;
	o.https_token_file = w->https_token_file;
	o.https_basic_file = w->https_basic_file;
	o.ca_file = w->ca_file;
	o.ls_remote_timeout_ms = w->ls_remote_timeout_ms;
	if ((open_rc = tend_source_open(&s, &o)) < 0)
		snprintf(open_msg, sizeof(open_msg), "%s", tend_error_last());
	for (;;) {
		char head[41] = "-", line[128];
		const char *msg = "";
		ssize_t n = read(fd, &c, 1);
		int rc, len;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);   /* the caller is gone or done with us */
		if (open_rc < 0) {
			rc = open_rc;
			msg = open_msg;
		} else {
			rc = tend_source_remote_head_direct(s, head);
			if (rc < 0)
				msg = tend_error_last();
		}
		len = snprintf(line, sizeof(line), "R %d %s %zu\n", rc, rc == 0 ? head : "-",
			       strnlen(msg, MSG_MAX - 1));
		if (write_all(fd, line, (size_t)len) < 0 ||
		    write_all(fd, msg, strnlen(msg, MSG_MAX - 1)) < 0)
			_exit(0);
	}
}

/* ---- in the caller ---- */

static int checker_start(tend_source_watch *w)
{
	int sv[2] = { -1, -1 };
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		tend_error_set_errno("%s: ls-remote: socketpair", w->url);
		return TEND_ERROR;
	}
	fflush(NULL);
	w->parent = getpid();
	if ((pid = fork()) < 0) {
		tend_error_set_errno("%s: ls-remote: fork", w->url);
		close(sv[0]);
		close(sv[1]);
		return TEND_ERROR;
	}
	if (pid == 0) {
		close(sv[0]);
		checker_main(w, sv[1]);
		_exit(0);
	}
	close(sv[1]);
	w->pid = pid;
	w->fd = sv[0];
	return 0;
}

static int64_t now_ms(void)
{
	return tend_source_now_ms();
}

int tend_source_watch_head(tend_source_watch *w, char out_head[41])
{
	char buf[128 + MSG_MAX + 1], head[41], *url = NULL;
	size_t len = 0, msg_len = 0, hdr = 0;
	int64_t deadline;
	int rc = 0, error = TEND_ERROR;

	if (w->pid && w->looks >= CHECKER_LOOKS)
		checker_stop(w);
	if (!w->pid && (error = checker_start(w)) < 0)
		return error;
	w->looks++;
	error = TEND_ERROR;
	url = tend_source_url_display(w->url);
	if (write_all(w->fd, "h", 1) < 0) {
		tend_error_set_errno("%s: ls-remote: the git process is gone", url ? url : w->url);
		checker_stop(w);
		goto out;
	}
	deadline = now_ms() + w->ls_remote_timeout_ms + CHECKER_GRACE_MS;
	for (;;) {
		struct pollfd pfd = { w->fd, POLLIN, 0 };
		int64_t left = deadline - now_ms();
		ssize_t n;
		char *nl;

		if (hdr && len >= hdr + msg_len)
			break;
		if (left <= 0) {
			checker_stop(w);
			tend_error_set("%s: ls-remote: time limit of %d ms exceeded (no answer from the server)",
				       url ? url : w->url, w->ls_remote_timeout_ms);
			error = TEND_ETIMEOUT;
			goto out;
		}
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			tend_error_set_errno("%s: ls-remote: poll", url ? url : w->url);
			checker_stop(w);
			goto out;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(w->fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			tend_error_set("%s: ls-remote: the git process died", url ? url : w->url);
			checker_stop(w);
			goto out;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (!hdr && (nl = memchr(buf, '\n', len))) {
			hdr = (size_t)(nl - buf) + 1;
			if (sscanf(buf, "R %d %40s %zu", &rc, head, &msg_len) != 3 || msg_len >= MSG_MAX) {
				tend_error_set("%s: ls-remote: garbled answer from the git process",
					       url ? url : w->url);
				checker_stop(w);
				goto out;
			}
		}
		if (len >= sizeof(buf) - 1 && !(hdr && len >= hdr + msg_len)) {
			tend_error_set("%s: ls-remote: garbled answer from the git process", url ? url : w->url);
			checker_stop(w);
			goto out;
		}
	}
	if (len != hdr + msg_len) {
		tend_error_set("%s: ls-remote: garbled answer from the git process", url ? url : w->url);
		checker_stop(w);
		goto out;
	}
	if (rc < 0) {
		tend_error_set("%.*s", (int)msg_len, buf + hdr);
		error = rc;
		goto out;
	}
	if (strlen(head) != 40) {
		tend_error_set("%s: ls-remote: garbled answer from the git process", url ? url : w->url);
		checker_stop(w);
		goto out;
	}
	memcpy(out_head, head, 41);
	error = 0;
out:
	free(url);
	return error;
}
