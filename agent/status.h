/* The agent's live status: what /v1/status and /metrics serve and what
 * `tend status` prints. The daemon updates it under the mutex; the HTTP
 * thread reads it under the mutex. Strings are owned (malloc'd). */
#ifndef TEND_AGENT_STATUS_H
#define TEND_AGENT_STATUS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "reconcile/reconcile.h"

typedef enum {
	TEND_PHASE_STARTING = 0,   /* no reconcile finished yet */
	TEND_PHASE_CONVERGED,
	TEND_PHASE_APPLYING,
	TEND_PHASE_BLOCKED,        /* waiting on (or refused because of) another host */
	TEND_PHASE_FAILED,
	TEND_PHASE_ROLLED_BACK,
	TEND_PHASE_WAITING,        /* another switch holds switch-to-configuration's lock, or the
				      host's apply_window is closed */
	TEND_PHASE_REBOOT_REQUIRED,/* the applied system takes effect at the next boot */
	TEND_PHASE_HELD,           /* the host runs another system than tend applied (an
				      operator's rollback): not switched until a new commit
				      or tend resume */
	TEND_PHASE_DEGRADED,       /* converged, but a service's liveness probe fails now
				      (probes.liveness_interval); nothing is rolled back */
	TEND_PHASE__COUNT
} tend_agent_phase;

typedef enum {
	TEND_OUTCOME_NONE = 0,     /* no reconcile yet */
	TEND_OUTCOME_SUCCESS,      /* converged or nothing to do */
	TEND_OUTCOME_FAILED,
	TEND_OUTCOME_ROLLED_BACK,
	TEND_OUTCOME_REFUSED,      /* commit refused: signature, fast-forward, manifests */
	TEND_OUTCOME_BLOCKED,      /* waiting on another host */
	TEND_OUTCOME__COUNT
} tend_agent_outcome;

/* A service's liveness as the last liveness run saw it (agent/liveness.c). */
typedef struct {
	char *service;
	int up;                    /* the liveness probes passed */
	char *probe;               /* the probe that decided */
	char *error;               /* why it failed (one line); NULL when up */
	time_t checked_at;
} tend_liveness;

/* One concluded reconcile, for the fleet page and /v1/status's "history". */
typedef struct {
	time_t when;
	char commit[41];
	char *outcome;             /* tend_reconcile_outcome_name() */
	char *message;
	char *changes;             /* what the switch changed (closure diff lines); may be NULL */
} tend_status_event;

#define TEND_STATUS_EVENTS 8

typedef struct tend_agent_status {
	pthread_mutex_t lock;
	char *host;
	char *applied_commit;      /* NULL before anything was applied */
	char *target_commit;       /* the commit being applied or blocked on; may be NULL */
	tend_agent_phase phase;
	char *last_error;          /* one line, NULL when the last reconcile succeeded */
	char *last_message;        /* the last concluded reconcile's one line, whatever its
				      outcome (a reboot-required host: when tend reboots it) */
	long long generation;      /* system profile generation; -1 unknown */
	int switch_overdue;        /* a switch runs past system.switch_timeout, waited for */
	int reboot_required;       /* the running kernel/initrd/modules are not the booted ones,
				      or an applied system waits for the next boot */
	tend_service_health *services; /* this host's services as the last probes saw them */
	size_t n_services;
	tend_liveness *liveness;   /* the last liveness run's results, this host's services with
				      liveness probes; NULL before the first run */
	size_t n_liveness;
	char *changes;             /* the last switch's closure diff, one change a line; may be NULL */
	tend_status_event events[TEND_STATUS_EVENTS]; /* the latest reconciles, oldest first */
	size_t n_events;
	char *fleet;               /* for the fleet page: the applied commit's hosts and what their
				      agents said at the last liveness run, JSON ({"hosts": [{name,
				      address, port, depends_on, reachable, error, status}],
				      "checked_at"}); NULL before the first run */

	/* For /metrics. */
	tend_agent_outcome last_outcome;
	double last_duration_s;
	time_t last_reconcile;     /* end of the last reconcile, 0: none */
	uint64_t reconciles[TEND_OUTCOME__COUNT]; /* by outcome */
	uint64_t rollbacks, fetch_failures, refused_commits, alerts_sent;
	uint64_t webhooks_accepted, webhooks_rejected;
	/* Steps: full reconciles (a worker), and polls that found the remote
	 * head unchanged and only looked (no worker; poll.drift_interval). */
	uint64_t polls_full, polls_unchanged;
	time_t last_poll;          /* end of the last step of either kind, 0: none */
	/* The worker processes the steps ran in (agent/worker.h). */
	uint64_t worker_runs;
	double worker_cpu_s;       /* their CPU, user + system, summed */
	long worker_max_rss_kb;    /* the largest peak resident set of any of them */
} tend_agent_status;

int tend_agent_status_init(tend_agent_status *st, const char *host);
void tend_agent_status_dispose(tend_agent_status *st);
void tend_agent_status_lock(tend_agent_status *st);
void tend_agent_status_unlock(tend_agent_status *st);

/* Replace an owned string field (value may be NULL). Caller holds the lock. */
int tend_agent_status_set_str(char **field, const char *value);
/* Replace the per-service health (copied). Caller holds the lock. */
int tend_agent_status_set_services(tend_agent_status *st,
				   const tend_service_health *svcs, size_t n);

/* Replace the liveness results (copied); the phase becomes degraded while one is down and
 * the host is otherwise converged, converged again when all are up. Locks. */
int tend_agent_status_set_liveness(tend_agent_status *st, const tend_liveness *l, size_t n);
void tend_liveness_free(tend_liveness *l, size_t n);

/* Add a concluded reconcile to the events (the oldest dropped). Caller holds the lock. */
void tend_agent_status_event_add(tend_agent_status *st, time_t when, const char *commit,
				 const char *outcome, const char *message, const char *changes);

/* Record a concluded reconcile (its report, how long it took): phase,
 * commits, last error, per-service health, generation, counters. Locks. */
void tend_agent_status_record(tend_agent_status *st, const tend_reconcile_report *r, double secs);

/* A step ended: a full reconcile (unchanged 0) or a poll that found the
 * remote head unchanged (1). Counts it, sets last_poll. Locks. */
void tend_agent_status_polled(tend_agent_status *st, int unchanged);

/* "converged", "applying", "blocked", "failed", "rolled-back", "starting". */
const char *tend_agent_phase_name(tend_agent_phase phase);
/* -1 if unknown. */
int tend_agent_phase_parse(const char *name);
const char *tend_agent_outcome_name(tend_agent_outcome outcome);

/* The /v1/status document (JSON, one object, newline-terminated). Locks. */
int tend_agent_status_json(char **out, tend_agent_status *st);
/* The /metrics page (Prometheus text exposition format 0.0.4). Locks. */
int tend_agent_status_metrics(char **out, tend_agent_status *st);

#endif
