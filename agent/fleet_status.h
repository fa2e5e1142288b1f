/* Asking other hosts' agents for their status (/v1/status at the address and
 * agent_port fleet.yaml gives them): `tend status --fleet`, and dependency
 * order across hosts, each host's agent waiting until the hosts it depends on
 * run the commit it is about to apply. */
#ifndef TEND_AGENT_FLEET_STATUS_H
#define TEND_AGENT_FLEET_STATUS_H

#include <jansson.h>
#include "manifest/manifest.h"

typedef struct {
	char *host;
	char *address;
	int port;
	int reachable;            /* 1 when a valid status document came back */
	char *error;              /* why not (connection refused, HTTP 500, bad JSON) */
	char *applied_commit;     /* may be NULL */
	char *target_commit;      /* may be NULL */
	char *phase;              /* "converged", "rolled-back", ... (NULL if unreachable) */
	char *last_error;         /* may be NULL */
	long long generation;     /* -1 unknown */
	int reboot_required;      /* its agent says the host must reboot to run what it applied */
	json_t *doc;              /* the whole status document when reachable (untrusted text:
				     escape it wherever it goes), else NULL */
} tend_fleet_host_status;

/* GET http://address:port/v1/status (loopback, LAN) within timeout_ms. Returns
 * 0 and fills out even when the agent is unreachable (reachable = 0, error). */
int tend_fleet_status_fetch(tend_fleet_host_status *out, const char *host,
			    const char *address, int port, long timeout_ms);
void tend_fleet_host_status_dispose(tend_fleet_host_status *st);

typedef enum {
	TEND_DEPS_READY = 0,      /* every dependency is converged at commit or a descendant
				     (applied, or considered with nothing to change) */
	TEND_DEPS_WAITING,        /* some have not got there yet (or cannot be reached) */
	TEND_DEPS_BLOCKED         /* one reported commit failed or rolled back */
} tend_deps_verdict;

/* May host switch to commit? Asks the agent of every host it depends on in m.
 * mirror_dir (a git repository holding commit; may be NULL) decides "a
 * descendant of commit". *reason (caller frees) says which host and why
 * when the verdict is not READY. */
int tend_fleet_deps_check(tend_deps_verdict *out, char **reason, const tend_manifest *m,
			  const char *host, const char *commit, const char *mirror_dir,
			  long timeout_ms);

#endif
