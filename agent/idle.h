/* Idle polls: when the last step concluded for the remote's current head and
 * the last full reconcile is younger than poll.drift_interval, a timer poll
 * only looks at the remote head (source/watch.c: no worker, no libgit2 in the
 * supervisor) instead of running a full reconcile. */
#ifndef TEND_AGENT_IDLE_H
#define TEND_AGENT_IDLE_H

#include <stdint.h>
#include "agent/daemon.h"
#include "reconcile/reconcile.h"
#include "source/source.h"

struct tend_config;

typedef struct {
	tend_source_watch *watch;  /* created at the first idle poll; NULL: none */
	char head[41];             /* the head the last full step concluded for; "": the next step is full */
	uint64_t last_full_ms;     /* monotonic start of the last full step */
	int force_full;            /* the next step is full (configuration reloaded) */
	time_t window_opens;       /* the concluded step waits for the apply window: a full
				      step once it opens (0: none) */
} tend_agent_idle;

/* At the start of a step: 1 when it only looked, as it may: a timer poll,
 * the last full step concluded for head H, no reload since, the last full
 * reconcile younger than cfg's poll.drift_interval (0: never only look) and
 * the remote's head still H. Otherwise 0 (also when the look failed: the full
 * step then meets and reports the same failure), and a full step starts:
 * the concluded head is forgotten, its start time noted. */
int tend_agent_idle_begin(tend_agent_idle *s, const struct tend_config *cfg,
			  tend_daemon_trigger trigger);
/* The full step concluded with report r: when nothing was to do, it applied,
 * or the head is blocked (failed before), the next timer polls may only look
 * while the head stays r->commit. Not after a rollback (it needs attention;
 * the next step reports the head blocked), a refusal, a failure or a stop. */
void tend_agent_idle_concluded(tend_agent_idle *s, const tend_reconcile_report *r, int aborted);
/* The configuration changed (SIGHUP): the checker goes, the next step is full. */
void tend_agent_idle_reset(tend_agent_idle *s);
void tend_agent_idle_dispose(tend_agent_idle *s);

#endif
