/* The supervisor's side of a worker: posix_spawn of tend's own binary (never a
 * bare fork: the supervisor's HTTP, mail and watchdog threads may hold locks),
 * the adopted configuration on its stdin (a memfd), its answer read from a
 * pipe while watching the abort flag and the time limit, and the answer
 * turned back into a return code, an error message and a report. The
 * worker's side is agent/cmd_worker.c. */
#include "agent/worker.h"
#include "reconcile/report_json.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A report with a large plan is a few MB at most; anything past this is not
 * an answer from tend. */
#define ANSWER_MAX (64u << 20)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The worker's stdin (the configuration document, or a mail's request) as a
 * file: any size, no writer to keep alive, gone with the last descriptor. */
static int input_fd(const char *data, size_t len)
{
	size_t off = 0;
	int fd = memfd_create("tend-worker-input", MFD_CLOEXEC);

	if (fd < 0) {
		tend_error_set_errno("memfd_create");
		return -1;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			tend_error_set_errno("cannot pass its input to the worker");
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		tend_error_set_errno("lseek");
		close(fd);
		return -1;
	}
	return fd;
}

static int spawn(pid_t *pid, const tend_worker_opts *w, char *const argv[], int in_fd, int out_fd)
{
	const char *bin = w->binary ? w->binary : "/proc/self/exe";
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t mask, def;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	/* stderr stays the supervisor's (journald). Every other descriptor is
	 * O_CLOEXEC already; this also covers one a library made without it. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/* SIGTERM and SIGINT stay blocked until the worker has its handlers, so
	 * an abort right at the start is not a kill. The supervisor ignores
	 * SIGPIPE; the worker must not inherit that. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGHUP);
	posix_spawnattr_setsigmask(&attr, &mask);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, bin, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		tend_error_set_errno("cannot start the worker %s", bin);
		return TEND_ERROR;
	}
	return 0;
}

/* Read what is there (nonblocking). 1: more may come, 0: end of file, <0: error. */
static int drain(tend_buf *b, int fd)
{
	char chunk[16384];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n > 0) {
			if (tend_buf_put(b, chunk, (size_t)n) < 0)
				return TEND_ELIMIT;
			continue;
		}
		if (n == 0)
			return 0;
		return errno == EAGAIN || errno == EINTR ? 1 : TEND_ERROR;
	}
}

/* Run argv as a worker with input on its stdin and collect its answer (one
 * JSON document). */
static int worker_run(json_t **answer, tend_worker_usage *usage, const tend_worker_opts *w,
		      char *const argv[], const char *input, size_t input_len, const char *what)
{
	tend_buf out = TEND_BUF_INIT;
	struct rusage ru;
	uint64_t deadline = w->limit_ms ? now_ms() + w->limit_ms : 0, next_tick = now_ms() + 1000;
	int in_fd = -1, pipefd[2] = { -1, -1 }, status = 0, reaped = 0, forwarded = 0;
	int killed_for_time = 0, too_big = 0, error = TEND_ERROR;
	json_error_t jerr;
	pid_t pid = -1;

	*answer = NULL;
	if (usage)
		memset(usage, 0, sizeof(*usage));
	out.max = ANSWER_MAX;
	memset(&ru, 0, sizeof(ru));
	if ((in_fd = input_fd(input, input_len)) < 0)
		goto out;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		tend_error_set_errno("pipe");
		goto out;
	}
	if ((error = spawn(&pid, w, argv, in_fd, pipefd[1])) < 0)
		goto out;
	error = TEND_ERROR;
	close(in_fd);
	in_fd = -1;
	close(pipefd[1]);
	pipefd[1] = -1;
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	/* Until the worker is reaped: its answer may be larger than the pipe. */
	while (!reaped) {
		struct pollfd pfd = { pipefd[0], POLLIN, 0 };
		int wait = 100, rc;
		pid_t r;

		if (w->abort && *w->abort && !forwarded) {
			kill(pid, SIGTERM);   /* it finishes or undoes, records, answers */
			forwarded = 1;
		}
		if (w->tick && now_ms() >= next_tick) {
			w->tick(w->tick_ctx);
			next_tick = now_ms() + 1000;
		}
		if (deadline && !killed_for_time && now_ms() >= deadline) {
			kill(pid, SIGKILL);
			killed_for_time = 1;
		}
		if (pipefd[0] >= 0) {
			if (poll(&pfd, 1, wait) > 0 && (rc = drain(&out, pipefd[0])) <= 0) {
				if (rc < 0 && !too_big) {
					/* Not an answer from tend: stop it rather than block on it. */
					too_big = 1;
					kill(pid, SIGKILL);
				}
				close(pipefd[0]);
				pipefd[0] = -1;
			}
		} else {
			/* Answer complete; the exit follows at once. A short sleep
			 * rather than a blocking wait keeps abort and limit honoured. */
			poll(NULL, 0, 10);
		}
		r = wait4(pid, &status, WNOHANG, &ru);
		if (r == pid || (r < 0 && errno != EINTR))
			reaped = 1;
	}
	if (pipefd[0] >= 0 && !too_big && drain(&out, pipefd[0]) < 0)
		too_big = 1;
	if (usage) {
		usage->max_rss_kb = ru.ru_maxrss;
		usage->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	}
	if (killed_for_time) {
		tend_error_set("%s still running after %llu s (the step limit): killed", what,
			       (unsigned long long)(w->limit_ms / 1000));
		goto out;
	}
	if (too_big) {
		tend_error_set("%s: its answer was not readable or larger than %u MiB: killed",
			       what, ANSWER_MAX >> 20);
		goto out;
	}
	if (WIFSIGNALED(status)) {
		tend_error_set("%s killed by signal %d", what, WTERMSIG(status));
		goto out;
	}
	if (!(*answer = json_loadb(out.ptr ? out.ptr : "", out.size, 0, &jerr)) ||
	    !json_is_object(*answer)) {
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			tend_error_set("%s exited with status %d without an answer", what,
				       WEXITSTATUS(status));
		else
			tend_error_set("%s: unreadable answer: %s", what, jerr.text);
		json_decref(*answer);
		*answer = NULL;
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		/* It answers, then exits 0; anything else (a sanitizer's report
		 * at exit, say) is not to be taken for a clean run. */
		tend_error_set("%s exited with status %d after answering", what, WEXITSTATUS(status));
		json_decref(*answer);
		*answer = NULL;
		goto out;
	}
	if (usage)
		usage->answered = 1;
	error = 0;
out:
	if (in_fd >= 0)
		close(in_fd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	tend_buf_dispose(&out);
	return error;
}

/* The worker's own return: 0, or its error code with its message set here. */
static int answer_return(const json_t *answer, const char *what)
{
	const json_t *ret = json_object_get(answer, "return");
	const char *msg = json_string_value(json_object_get(answer, "error"));
	json_int_t code;

	if (!json_is_integer(ret)) {
		tend_error_set("%s: answer without a return code", what);
		return TEND_ERROR;
	}
	code = json_integer_value(ret);
	if (code >= 0)
		return 0;
	tend_error_set("%s", msg ? msg : "the worker failed without saying why");
	return code < -1000 ? TEND_ERROR : (int)code;
}

static void common_args(char **argv, int *n, const tend_worker_opts *w, const char *cmd)
{
	argv[(*n)++] = (char *)"tend";
	argv[(*n)++] = (char *)"worker";
	argv[(*n)++] = (char *)cmd;
	argv[(*n)++] = (char *)"--config";
	argv[(*n)++] = (char *)w->config_path;
	argv[(*n)++] = (char *)"--base";
	argv[(*n)++] = (char *)w->config_base;
}

int tend_worker_reconcile(tend_reconcile_report *out, tend_worker_usage *usage,
			  const tend_worker_opts *w, const tend_reconcile_opts *opts)
{
	static const char *what = "reconcile worker";
	char *argv[16];
	json_t *answer = NULL, *rep;
	int n = 0, error, ret;
	char saved[2048];   /* the size of util/error.c's message */

	memset(out, 0, sizeof(*out));
	common_args(argv, &n, w, "reconcile");
	if (opts->plan_only)
		argv[n++] = (char *)"--plan-only";
	if (opts->settle_unchanged)
		argv[n++] = (char *)"--settle-unchanged";
	if (opts->no_fetch)
		argv[n++] = (char *)"--no-fetch";
	if (opts->retry)
		argv[n++] = (char *)"--retry";
	if (opts->allow_non_fast_forward)
		argv[n++] = (char *)"--allow-non-fast-forward";
	argv[n] = NULL;
	if ((error = worker_run(&answer, usage, w, argv, w->config_data, w->config_len, what)) < 0)
		return error;
	ret = answer_return(answer, what);
	snprintf(saved, sizeof(saved), "%s", ret < 0 ? tend_error_last() : "");
	rep = json_object_get(answer, "report");
	if (!rep && ret == 0) {
		tend_error_set("%s: answer without a report", what);
		json_decref(answer);
		return TEND_ERROR;
	}
	if (rep && (error = tend_reconcile_report_from_json(out, rep)) < 0) {
		tend_error_prefix("%s: ", what);
		json_decref(answer);
		return error;
	}
	json_decref(answer);
	if (ret < 0)
		tend_error_set("%s", saved);   /* the worker's own words */
	return ret;
}

int tend_worker_deps(tend_deps_verdict *out, char **reason, tend_worker_usage *usage,
		     const tend_worker_opts *w, const char *commit)
{
	static const char *what = "dependency check worker";
	char *argv[16];
	json_t *answer = NULL;
	const char *v, *why;
	int n = 0, error;

	*out = TEND_DEPS_READY;
	*reason = NULL;
	common_args(argv, &n, w, "deps");
	argv[n++] = (char *)commit;
	argv[n] = NULL;
	if ((error = worker_run(&answer, usage, w, argv, w->config_data, w->config_len, what)) < 0)
		return error;
	if ((error = answer_return(answer, what)) < 0)
		goto out;
	v = json_string_value(json_object_get(answer, "verdict"));
	why = json_string_value(json_object_get(answer, "reason"));
	if (v && !strcmp(v, "ready")) {
		*out = TEND_DEPS_READY;
	} else if (v && !strcmp(v, "waiting")) {
		*out = TEND_DEPS_WAITING;
	} else if (v && !strcmp(v, "blocked")) {
		*out = TEND_DEPS_BLOCKED;
	} else {
		tend_error_set("%s: answer without a verdict", what);
		error = TEND_ERROR;
		goto out;
	}
	if (why && !(*reason = strdup(why))) {
		tend_error_set("out of memory");
		error = TEND_ERROR;
	}
out:
	json_decref(answer);
	return error;
}

int tend_worker_liveness(tend_liveness **out, size_t *n, char **fleet, tend_worker_usage *usage,
			 const tend_worker_opts *w, const char *commit)
{
	static const char *what = "liveness worker";
	char *argv[16];
	json_t *answer = NULL, *svcs, *e;
	tend_liveness *l = NULL;
	size_t i;
	int k = 0, error;

	*out = NULL;
	*n = 0;
	*fleet = NULL;
	common_args(argv, &k, w, "liveness");
	argv[k++] = (char *)commit;
	argv[k] = NULL;
	if ((error = worker_run(&answer, usage, w, argv, w->config_data, w->config_len, what)) < 0)
		return error;
	if ((error = answer_return(answer, what)) < 0)
		goto out;
	error = TEND_ERROR;
	svcs = json_object_get(answer, "services");
	if (!json_is_array(svcs)) {
		tend_error_set("%s: answer without services", what);
		goto out;
	}
	if (!(l = calloc(json_array_size(svcs) + 1, sizeof(*l))))
		goto oom;
	json_array_foreach(svcs, i, e) {
		const char *name = json_string_value(json_object_get(e, "service"));
		const char *probe = json_string_value(json_object_get(e, "probe"));
		const char *why = json_string_value(json_object_get(e, "error"));

		if (!name || !json_is_boolean(json_object_get(e, "up"))) {
			tend_error_set("%s: a service without a name or result", what);
			goto out;
		}
		if (!(l[*n].service = strdup(name)) || (probe && !(l[*n].probe = strdup(probe))) ||
		    (why && !(l[*n].error = strdup(why)))) {
			(*n)++;
			goto oom;
		}
		l[*n].up = json_is_true(json_object_get(e, "up"));
		l[*n].checked_at = (time_t)json_integer_value(json_object_get(e, "checked_at"));
		(*n)++;
	}
	if (json_is_object(json_object_get(answer, "fleet")))
		*fleet = json_dumps(json_object_get(answer, "fleet"), JSON_COMPACT);
	*out = l;
	l = NULL;
	error = 0;
	goto out;
oom:
	tend_error_set("out of memory");
out:
	if (l) {
		tend_liveness_free(l, *n);
		*n = 0;
	}
	json_decref(answer);
	return error;
}

/* The mail settings as the worker's request (the password stays in its file). */
static json_t *smtp_json(const tend_smtp_opts *o)
{
	json_t *to = json_array();
	size_t i;

	for (i = 0; to && i < o->n_to; i++)
		json_array_append_new(to, json_string(o->to[i]));
	/* Absent settings are left out ("s*"), not null. */
	return json_pack("{s:s?, s:s?, s:o, s:s*, s:s*, s:b, s:s*, s:I}", "url", o->url,
			 "from", o->from, "to", to ? to : json_null(), "username", o->username,
			 "password_file", o->password_file, "allow_plain", o->allow_plain,
			 "ca_file", o->ca_file, "timeout_ms", (json_int_t)o->timeout_ms);
}

int tend_worker_mail(tend_worker_usage *usage, const tend_worker_opts *w,
		     const tend_smtp_opts *smtp, const char *subject, const char *body)
{
	static const char *what = "mail worker";
	char *argv[] = { (char *)"tend", (char *)"worker", (char *)"mail", NULL };
	json_t *req, *answer = NULL;
	char *text = NULL;
	int error;

	req = json_pack("{s:o, s:s, s:s}", "smtp", smtp_json(smtp), "subject", subject, "body", body);
	if (!req || !(text = json_dumps(req, JSON_COMPACT))) {
		json_decref(req);
		tend_error_set("email: out of memory");
		return TEND_ERROR;
	}
	json_decref(req);
	if ((error = worker_run(&answer, usage, w, argv, text, strlen(text), what)) == 0)
		error = answer_return(answer, what);
	json_decref(answer);
	free(text);
	return error;
}
