/* A host's health after a change: every service's startup probes (or its
 * liveness probes when it has no startup ones), services in dependency order,
 * all under the configured overall deadline. The first failure stops the run:
 * its dependents would fail for the same reason. */
#include "reconcile/internal.h"
#include "reconcile/probe.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tend_probe_failure_dispose(tend_probe_failure *f)
{
	if (!f)
		return;
	free(f->failed_probe);
	free(f->output);
	memset(f, 0, sizeof(*f));
}

static int probe_service(tend_probe_failure *out, const tend_service *s, tend_probe_phase phase,
			 const tend_probe_opts *po, int *ran)
{
	size_t i;

	for (i = 0; i < s->n_probes; i++) {
		const tend_probe *p = &s->probes[i];
		tend_probe_result r;
		char *what;
		int error;

		if (p->phase != phase)
			continue;
		*ran = 1;
		error = tend_probe_run(&r, p, po);
		if (error == 0) {
			tend_probe_result_dispose(&r);
			continue;
		}
		what = tend_probe_describe(p);
		if (asprintf(&out->failed_probe, "%s: %s", s->name, what ? what : "?") < 0)
			out->failed_probe = NULL;
		free(what);
		out->output = r.output.ptr ? strdup(r.output.ptr) : NULL;
		out->aborted = r.aborted;
		tend_probe_result_dispose(&r);
		tend_error_prefix("service %s: ", s->name);
		return error;
	}
	return 0;
}

int tend_reconcile_probe_host(tend_probe_failure *out, const tend_config *cfg,
			      const tend_manifest *m, const char *host,
			      volatile sig_atomic_t *abort)
{
	tend_probe_opts po = TEND_PROBE_OPTS_INIT;
	const char **order = NULL;
	size_t i;
	int error;

	memset(out, 0, sizeof(*out));
	po.output_limit = cfg->probes.output_limit;
	po.body_limit = cfg->probes.body_limit;
	po.abort = abort;
	if (cfg->probes.deadline_ms)
		po.deadline_ms = tend_probe_now_ms() + (int64_t)cfg->probes.deadline_ms;
	if ((error = tend_manifest_service_order(&order, m)) < 0)
		return error;
	for (i = 0; order[i]; i++) {
		const tend_service *s = tend_manifest_service(m, order[i]);
		int ran = 0;

		if (!s || strcmp(s->host, host))
			continue;
		if ((error = probe_service(out, s, TEND_PROBE_STARTUP, &po, &ran)) < 0)
			break;
		if (!ran && (error = probe_service(out, s, TEND_PROBE_LIVENESS, &po, &ran)) < 0)
			break;
	}
	free(order);
	return error;
}
