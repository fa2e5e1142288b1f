/* Idle polls: when the last step concluded for the remote's current head and
 * the last full reconcile is younger than poll.drift_interval, a timer poll
 * only looks at the remote head (source/watch.c: no worker, no libgit2 in the
 * supervisor) instead of running a full reconcile. */
#ifndef TEND_AGENT_IDLE_H
#define TEND_AGENT_IDLE_H

#include <stdint.h>
#include "agent/daemon.h"
#include "source/source.h"

struct tend_config;

typedef struct {
	tend_source_watch *watch;  /* created at the first idle poll; NULL: none */
	char head[41];             /* the head the last full step concluded for; "": the next step is full */
	uint64_t last_full_ms;     /* monotonic start of the last full step */
	int force_full;            /* the next step is full (configuration reloaded) */
	int64_t looks;             /* idle polls that found the head unchanged */
} tend_agent_idle;

/* 1 when this step may skip the reconcile: a timer poll, the last full step
 * concluded for head H, no reload since, the last full reconcile younger
 * than cfg's poll.drift_interval (0: never skip) and the remote's head is
 * still H. 0 otherwise, also when the look failed (the full step then meets
 * and reports the same failure). */
int tend_agent_idle_unchanged(tend_agent_idle *s, const struct tend_config *cfg,
			      tend_daemon_trigger trigger);
/* A full step starts: forget the concluded head, note the time. */
void tend_agent_idle_full(tend_agent_idle *s);
/* The full step concluded for head (nothing to do, applied, or a blocked
 * head): the next timer polls may only look. */
void tend_agent_idle_concluded(tend_agent_idle *s, const char *head);
/* The configuration changed (SIGHUP): the checker goes, the next step is full. */
void tend_agent_idle_reset(tend_agent_idle *s);
void tend_agent_idle_dispose(tend_agent_idle *s);

#endif
