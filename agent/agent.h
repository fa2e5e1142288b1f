/* The running agent (`tend run`): the configuration wired to the daemon loop,
 * one reconcile per step (after the hosts this one depends on are ready), the
 * live status behind the HTTP endpoint, and deduplicated email alerts. */
#ifndef TEND_AGENT_AGENT_H
#define TEND_AGENT_AGENT_H

#include <stdint.h>
#include "agent/daemon.h"
#include "agent/status.h"

struct tend_config;
typedef struct tend_agent tend_agent;

/* Timing taken from the configuration (poll.backoff_initial/backoff_max,
 * alerts.fetch_failing_after, dependencies.deadline/recheck); defaults in
 * brackets. Tests may shorten them in-process (tend_agent_tunables_get). */
typedef struct {
	uint64_t backoff_min_ms;        /* [5 s] first retry after a failed step */
	uint64_t backoff_max_ms;        /* [5 min, or the poll interval if larger] */
	uint64_t fetch_alert_after_ms;  /* [15 min] fetches failing this long: mail */
	uint64_t dep_recheck_ms;        /* [2 s] while waiting on other hosts */
	uint64_t dep_deadline_ms;       /* [30 min] blocked this long on a dependency: mail */
} tend_agent_tunables;

/* Load the configuration and prepare status and alerts (no network yet). */
int tend_agent_open(tend_agent **out, const char *config_path);
void tend_agent_free(tend_agent *a);
tend_agent_tunables *tend_agent_tunables_get(tend_agent *a);

/* The `tend run` arguments (argv[0] = "run"), so that the agent can
 * re-execute itself after a switch replaced its binary. Copied. */
int tend_agent_set_args(tend_agent *a, int argc, char **argv);

/* The tend binary each step's worker process runs (agent/worker.h): NULL,
 * the default, is /proc/self/exe, the binary this process runs (still it
 * after a switch replaced the file). Tests driving tend_agent_step in their
 * own process set the built tend. Copied. */
int tend_agent_set_worker(tend_agent *a, const char *binary);

/* Serve HTTP, run the loop until SIGTERM. 0 on a clean stop. After an applied
 * commit changed the binary the agent was started as (the path, e.g.
 * /run/current-system/sw/bin/tend, now resolves to another file than the one
 * running), it finishes the reconcile, then execs the new binary with the same
 * arguments and pid (systemd sees RELOADING=1, then READY=1). After one that
 * changed tend's unit (system.unit_file resolves elsewhere than at start), it
 * finishes the reconcile and returns 0, for the caller to exit and systemd
 * (Restart=always) to start the new unit. */
int tend_agent_run(tend_agent *a);

/* `tend run -n`: load and check everything a start would need (config,
 * webhook secret, email settings). 0 when valid, the error set otherwise. */
int tend_agent_check_config(const char *config_path);

/* The daemon step (exposed for tests): one reconcile mapped onto status and alerts. */
int tend_agent_step(void *ctx, const tend_daemon_step_args *args);
tend_agent_status *tend_agent_status_get(tend_agent *a);

#endif
