/* Liveness between reconciles: every probes.liveness_interval the agent runs the liveness
 * probes of its services at the applied commit (in a worker, agent/worker.h) and hands the
 * results here: into the status (phase degraded while one fails, tend_probe_up), one
 * "degraded" mail when services stop answering, one "recovered" mail when all answer again.
 * A liveness failure never rolls anything back. */
#ifndef TEND_AGENT_LIVENESS_H
#define TEND_AGENT_LIVENESS_H

#include <stddef.h>
#include <time.h>
#include "agent/alert.h"
#include "agent/status.h"
#include "agent/worker.h"

/* One liveness run for the commit st says is applied: the worker, its results applied as
 * below, the fleet page's snapshot replaced. 1 when a worker ran (u: its cost), 0 when there
 * was nothing to probe yet (no applied commit), negative (logged) when the worker failed. */
int tend_agent_liveness_run(tend_agent_status *st, tend_alerter *alerter,
			    const tend_worker_opts *w, tend_worker_usage *u);

/* Apply one liveness run's results (n entries) for commit; alerter may be NULL. Returns the
 * number of services down. */
size_t tend_agent_liveness_apply(tend_agent_status *st, tend_alerter *alerter, const char *commit,
				 const tend_liveness *l, size_t n, time_t now);

/* probes.liveness_interval became 0 (a reload): no results kept, not degraded, and an open
 * degraded alert closed with a "recovered" mail that says why. */
void tend_agent_liveness_off(tend_agent_status *st, tend_alerter *alerter, time_t now);

#endif
