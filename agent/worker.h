/* The agent's heavy work in a short-lived process. `tend run` stays a small
 * supervisor (loop, HTTP, status, alerts, logs); each reconcile and each
 * dependency check runs in `tend worker ...`, a fresh exec of tend's own
 * binary that parses the configuration the supervisor adopted (from its
 * stdin), does the work and answers with one JSON document on stdout. Alert
 * mails go out the same way, so libcurl never initialises in the supervisor. */
#ifndef TEND_AGENT_WORKER_H
#define TEND_AGENT_WORKER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "agent/fleet_status.h"
#include "agent/smtp.h"
#include "agent/status.h"
#include "reconcile/reconcile.h"

typedef struct {
	const char *binary;           /* the tend to execute; NULL: /proc/self/exe, the
					 binary this process runs even after a switch
					 replaced the file on disk */
	const char *config_path;      /* the configuration's name, for messages */
	const char *config_base;      /* absolute directory of its relative paths */
	const char *config_data;      /* the document the supervisor adopted */
	size_t config_len;
	volatile sig_atomic_t *abort; /* once nonzero: SIGTERM to the worker, which
					 finishes or undoes and answers (may be NULL) */
	uint64_t limit_ms;            /* killed (SIGKILL) after this long; 0: never */
	void (*tick)(void *ctx);      /* called about once a second while the worker runs,
					 in the supervisor (may be NULL) */
	void *tick_ctx;
} tend_worker_opts;

/* What one worker cost (wait4's rusage: the worker and the children it waited for). */
typedef struct {
	long max_rss_kb;              /* peak resident set */
	double cpu_s;                 /* user + system */
	int answered;                 /* 1: it ran to its answer (whatever that says);
					 0: it could not start, died or did not answer */
} tend_worker_usage;

/* tend_reconcile_once in a worker: the same return, error message and report
 * (on an error, what the report held: the commit considered, if any). A worker
 * that dies or does not answer is an error ("reconcile worker killed by
 * signal 9"). usage may be NULL. */
int tend_worker_reconcile(tend_reconcile_report *out, tend_worker_usage *usage,
			  const tend_worker_opts *w, const tend_reconcile_opts *opts);

/* May this host apply commit, given the hosts it depends on (the manifests of
 * commit from the state directory's mirror, their agents asked over HTTP)?
 * *reason (caller frees) says why not when the verdict is not READY. */
int tend_worker_deps(tend_deps_verdict *out, char **reason, tend_worker_usage *usage,
		     const tend_worker_opts *w, const char *commit);

/* The liveness probes of this host's services at commit (its manifests from the mirror), in
 * a worker: *out (tend_liveness_free) one entry a service that declares liveness probes;
 * *fleet (caller frees) the commit's hosts as JSON for the fleet page. */
int tend_worker_liveness(tend_liveness **out, size_t *n, char **fleet, tend_worker_usage *usage,
			 const tend_worker_opts *w, const char *commit);

/* tend_smtp_send in a worker (what the agent's alerter sends with): the
 * same return and error. The worker reads the password file itself. */
int tend_worker_mail(tend_worker_usage *usage, const tend_worker_opts *w,
		     const tend_smtp_opts *smtp, const char *subject, const char *body);

#endif
