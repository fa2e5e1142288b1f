/* Child processes with a time limit and captured, capped output: how tend runs
 * nix, switch-to-configuration, probe commands and service restarts. */
#ifndef TEND_UTIL_PROC_H
#define TEND_UTIL_PROC_H

#include <signal.h>
#include <stddef.h>
#include "util/buf.h"

typedef struct {
	const char *cwd;          /* NULL: inherit */
	char *const *env;         /* NULL: inherit environ */
	const char *stdin_data;   /* NULL: /dev/null */
	size_t stdin_len;
	int timeout_ms;           /* <= 0: no limit */
	size_t max_output;        /* cap on captured stdout and stderr each; 0: 1 MiB */
	int merge_stderr;         /* capture stderr into the stdout buffer */
	/* Set by a signal handler (NULL: never): stop waiting, kill the child's process group
	 * (result: aborted). For a child that only waits on something that goes on without it,
	 * such as systemd-run --wait. */
	volatile sig_atomic_t *abort;
} tend_proc_opts;

#define TEND_PROC_OPTS_INIT { NULL, NULL, NULL, 0, 0, 0, 0, NULL }

typedef struct {
	int exit_code;     /* exit status, or 128+signal if killed by a signal */
	int timed_out;     /* 1 if the time limit ran out and the child was killed */
	int aborted;       /* 1 if opts->abort was set and the child was killed */
	int truncated;     /* 1 if output went past max_output (the rest is dropped) */
	tend_buf out;      /* stdout (and stderr if merged) */
	tend_buf err;      /* stderr */
} tend_proc_result;

/* Run argv[0] (searched in PATH) with argv. Returns 0 when the child ran to
 * completion or was killed for its time limit (see result), negative when it
 * could not be started. The child gets its own process group, which is killed
 * whole on timeout. */
int tend_proc_run(tend_proc_result *out, char *const argv[], const tend_proc_opts *opts);
void tend_proc_result_dispose(tend_proc_result *res);

#endif
