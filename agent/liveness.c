/* Liveness results into status and alerts (agent/liveness.h). Transitions are logged once:
 * a service that stops answering, a service that answers again. */
#include "agent/liveness.h"
#include "agent/log.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The previous run's result for service: 1 up, 0 down, -1 not probed before. */
static int was_up(const tend_agent_status *st, const char *service)
{
	size_t i;

	for (i = 0; i < st->n_liveness; i++)
		if (!strcmp(st->liveness[i].service, service))
			return st->liveness[i].up;
	return -1;
}

size_t tend_agent_liveness_apply(tend_agent_status *st, tend_alerter *alerter, const char *commit,
				 const tend_liveness *l, size_t n, time_t now)
{
	tend_buf summary = TEND_BUF_INIT, detail = TEND_BUF_INIT;
	size_t i, down = 0;

	tend_agent_status_lock(st);
	for (i = 0; i < n; i++) {
		int before = was_up(st, l[i].service);

		if (!l[i].up) {
			down++;
			tend_buf_printf(&summary, "%s%s", summary.size ? ", " : "", l[i].service);
			tend_buf_printf(&detail, "Service %s is not answering its liveness probe %s:\n  %s\n\n",
					l[i].service, l[i].probe ? l[i].probe : "?",
					l[i].error ? l[i].error : "failed");
			if (before != 0)
				tend_log(TEND_LOG_WARNING, "liveness: service %s is down: %s", l[i].service,
					 l[i].error ? l[i].error : "probe failed");
		} else if (before == 0) {
			tend_log(TEND_LOG_NOTICE, "liveness: service %s answers again", l[i].service);
		}
	}
	tend_agent_status_unlock(st);
	tend_agent_status_set_liveness(st, l, n);
	/* One mail while services are down, whatever commits come meanwhile. */
	if (alerter && down && !tend_alerter_is_open(alerter, TEND_ALERT_DEGRADED)) {
		char *sum = NULL;

		tend_buf_puts(&detail, "tend does not roll back for a liveness failure; the host stays on "
			      "this commit. Another mail follows when every service answers again.\n");
		if (asprintf(&sum, "%zu service%s down: %s", down, down == 1 ? "" : "s",
			     summary.ptr ? summary.ptr : "") < 0)
			sum = NULL;
		tend_alerter_raise(alerter, TEND_ALERT_DEGRADED, commit, sum ? sum : "services down",
				   detail.ptr ? detail.ptr : "", now);
		free(sum);
	} else if (alerter && !down) {
		tend_buf_clear(&detail);
		for (i = 0; i < n; i++)
			tend_buf_printf(&detail, "Service %s answers %s\n", l[i].service,
					l[i].probe ? l[i].probe : "its liveness probe");
		tend_alerter_recover(alerter, TEND_ALERT_DEGRADED,
				     "every service answers its liveness probes again",
				     detail.ptr ? detail.ptr : "", now);
	}
	tend_buf_dispose(&summary);
	tend_buf_dispose(&detail);
	return down;
}

int tend_agent_liveness_run(tend_agent_status *st, tend_alerter *alerter,
			    const tend_worker_opts *w, tend_worker_usage *u)
{
	tend_liveness *l = NULL;
	char commit[41], *fleet = NULL;
	size_t n = 0;
	int error;

	tend_agent_status_lock(st);
	snprintf(commit, sizeof(commit), "%s", st->applied_commit ? st->applied_commit : "");
	tend_agent_status_unlock(st);
	if (!commit[0])
		return 0;
	if ((error = tend_worker_liveness(&l, &n, &fleet, u, w, commit)) < 0) {
		tend_log(TEND_LOG_WARNING, "liveness: %s", tend_error_last());
		return error;
	}
	/* a run cut short by a stop says nothing about the services */
	if (!(w->abort && *w->abort))
		tend_agent_liveness_apply(st, alerter, commit, l, n, time(NULL));
	if (fleet) {
		tend_agent_status_lock(st);
		free(st->fleet);
		st->fleet = fleet;
		tend_agent_status_unlock(st);
	}
	tend_liveness_free(l, n);
	return 1;
}

void tend_agent_liveness_off(tend_agent_status *st, tend_alerter *alerter, time_t now)
{
	tend_agent_status_set_liveness(st, NULL, 0);
	if (alerter)
		tend_alerter_recover(alerter, TEND_ALERT_DEGRADED, "liveness probes turned off",
				     "probes.liveness_interval is 0 now: the services are no longer "
				     "probed between reconciles.\n", now);
}
