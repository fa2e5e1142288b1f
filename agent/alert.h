/* Operator alerts by email, deduplicated: one mail per (host, commit, kind)
 * however often the failure repeats, one "resolved" mail when the host is
 * healthy again. Pending mails survive restarts (a JSON file in the state
 * directory) and are retried with backoff while the mail server is down. */
#ifndef TEND_AGENT_ALERT_H
#define TEND_AGENT_ALERT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "agent/smtp.h"

typedef enum {
	TEND_ALERT_RECONCILE_FAILED = 0,
	TEND_ALERT_ROLLBACK,
	TEND_ALERT_REFUSED_COMMIT,     /* unsigned, non-fast-forward, invalid manifests */
	TEND_ALERT_DEPENDENCY_BLOCKED, /* blocked on another host past the deadline */
	TEND_ALERT_FETCH_FAILING,      /* fetches failing longer than the threshold */
	TEND_ALERT_REBOOT_REQUIRED,    /* applied; takes effect at the next boot */
	TEND_ALERT_SWITCH_OVERDUE,     /* a switch runs past system.switch_timeout */
	TEND_ALERT_HELD,               /* an operator's rollback kept: not switched forward */
	TEND_ALERT_DEGRADED,           /* a service's liveness probe fails between reconciles;
					  closed only by tend_alerter_recover */
	TEND_ALERT_RESOLVED,
	TEND_ALERT_RECOVERED,          /* the mail that closes a degraded alert */
	TEND_ALERT__COUNT
} tend_alert_kind;

typedef struct tend_alerter tend_alerter;

/* "reconcile-failed", "rollback", ...; NULL for an unknown kind. */
const char *tend_alert_kind_name(tend_alert_kind kind);

/* Open the alerter of host, persisting to state_file (created on first
 * change). smtp NULL: alerts are only logged. An unreadable or corrupt state
 * file is logged and replaced, never fatal: alerts must keep working. */
int tend_alerter_open(tend_alerter **out, const char *state_file, const char *host,
		      const tend_smtp_opts *smtp);
void tend_alerter_free(tend_alerter *a);

/* Replace the mail settings (after a configuration reload); copied. */
int tend_alerter_set_smtp(tend_alerter *a, const tend_smtp_opts *smtp);
/* Retry delays: base * 2^(attempt-1), at most max seconds (default 30, 3600). */
void tend_alerter_set_backoff(tend_alerter *a, unsigned base_s, unsigned max_s);

/* Record a problem. summary is one line, detail the mail body's text (probe
 * output, validation errors); both are capped and sanitised. Returns 1 when
 * a mail was queued, 0 when (kind, commit) was already raised and is not
 * resolved yet, negative on error. kind must not be TEND_ALERT_RESOLVED. */
int tend_alerter_raise(tend_alerter *a, tend_alert_kind kind, const char *commit,
		       const char *summary, const char *detail, time_t now);

/* The host is healthy at commit: if problems were raised, queue one
 * "resolved" mail naming them and forget them. Returns 1 when queued. */
int tend_alerter_resolve(tend_alerter *a, const char *commit, time_t now);
/* The problem of kind (at any commit) is over: close it and queue one "recovered" mail
 * (summary in its subject and body). Returns 1 when queued, 0 when kind was not open. */
int tend_alerter_recover(tend_alerter *a, tend_alert_kind kind, const char *summary,
			 const char *detail, time_t now);

/* 1 when a problem of kind is open (raised, not resolved yet). */
int tend_alerter_is_open(tend_alerter *a, tend_alert_kind kind);
/* The same, keeping the problems of kind keep open (-1: none kept): a reboot still
 * required is not resolved by an otherwise healthy reconcile. A degraded service is never
 * resolved by a reconcile, only by tend_alerter_recover. */
int tend_alerter_resolve_keep(tend_alerter *a, const char *commit, time_t now, int keep);

/* Send the pending mails that are due. Failures are logged and retried
 * later; returns the number of mails sent. Takes up to the SMTP time limit
 * per mail, but never holds the alerter's lock while talking to the server,
 * so raise/resolve from other threads never wait for the mail server. */
int tend_alerter_flush(tend_alerter *a, time_t now);

/* A background thread that sends due mails as they are queued and retries
 * on the backoff (the agent's way; tests may call flush themselves). stop
 * waits for a conversation in progress (at most the SMTP time limit);
 * unsent mails stay queued on disk. free stops it too. */
int tend_alerter_start(tend_alerter *a);
void tend_alerter_stop(tend_alerter *a);
/* Called (from the sending thread, no alerter lock held) after each delivered mail. */
void tend_alerter_on_sent(tend_alerter *a, void (*fn)(void *ctx), void *ctx);

/* How a mail goes out: tend_smtp_send by default. The agent sends from a
 * worker process (agent/worker.h), so that libcurl and its TLS stack never
 * load into the long-running supervisor. Called without the alerter's lock. */
typedef int (*tend_alert_send_fn)(void *ctx, const tend_smtp_opts *smtp, const char *subject,
				  const char *body);
void tend_alerter_set_sender(tend_alerter *a, tend_alert_send_fn fn, void *ctx);

/* When the next pending mail is due (0: none pending). */
time_t tend_alerter_next_due(const tend_alerter *a);
size_t tend_alerter_pending(const tend_alerter *a);
/* Problems raised and not resolved yet. */
size_t tend_alerter_open_problems(const tend_alerter *a);
/* Mails delivered since open (for /metrics). */
uint64_t tend_alerter_sent(const tend_alerter *a);

#endif
