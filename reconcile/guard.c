/* The reachability guard: a switch that breaks the network passes local probes, and a pull
 * agent would then never fetch the fix. What answered just before the switch must answer after
 * it within system.reachability_timeout: the repository (an ls-remote) and, for a host others
 * depend on, its agent address; converge rolls back otherwise, saying which failed. */
#include "reconcile/internal.h"
#include "reconcile/probe.h"
#include "source/source.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Another host's services depend on this host's. */
static int depended_on(const tend_manifest *m, const char *host)
{
	const char **deps = NULL;
	size_t i, j, n = 0;
	int found = 0;

	for (i = 0; i < m->n_hosts && !found; i++) {
		if (!strcmp(m->hosts[i].name, host) ||
		    tend_manifest_host_deps(&deps, &n, m, m->hosts[i].name) < 0)
			continue;
		for (j = 0; j < n && !found; j++)
			found = !strcmp(deps[j], host);
		free(deps);
		deps = NULL;
	}
	tend_error_clear();
	return found;
}

static int agent_try(const char *url, int64_t deadline_ms, volatile sig_atomic_t *abort)
{
	tend_probe p;
	tend_probe_opts po = TEND_PROBE_OPTS_INIT;
	tend_probe_result res;
	int error;

	memset(&p, 0, sizeof(p));
	memset(&res, 0, sizeof(res));
	p.kind = TEND_PROBE_HTTP;
	p.phase = TEND_PROBE_STARTUP;
	p.url = (char *)url;
	p.expect_status = 200;
	p.interval_ms = 2000;
	p.timeout_ms = 3000;
	p.retries = deadline_ms ? 100000 : 1;
	po.deadline_ms = deadline_ms;
	po.abort = abort;
	error = tend_probe_run(&res, &p, &po);
	tend_probe_result_dispose(&res);
	return error;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Until deadline (0: one try of at most 10 s), an ls-remote of the repository. */
static int repository_check(const tend_config *cfg, int64_t deadline, volatile sig_atomic_t *abort)
{
	tend_source *src = NULL;
	char head[41], *url = NULL;
	int error;

	for (;;) {
		int64_t left = deadline ? deadline - tend_probe_now_ms() : 10000;

		if ((error = tend_reconcile_source_open(&src, cfg, left > 15000 ? 15000 : left < 1000 ?
							1000 : (int)left)) == 0)
			error = tend_source_remote_head(src, head);
		tend_source_free(src);
		src = NULL;
		if (error == 0 || tend_probe_now_ms() + 2000 >= deadline || (abort && *abort))
			break;
		sleep_ms(2000);
	}
	if (error < 0 && deadline) {
		char why[1024];

		snprintf(why, sizeof(why), "%s", tend_error_last());
		url = tend_source_url_display(cfg->repository.url);
		tend_error_set("after the switch the repository %s does not answer within "
			       "reachability_timeout %llus (%s)", url ? url : "?",
			       (unsigned long long)(cfg->system.reachability_timeout_ms / 1000), why);
		free(url);
	}
	return error;
}

int tend_guard_prepare(tend_guard *out, const tend_config *cfg, const tend_manifest *m)
{
	const tend_host *h;

	memset(out, 0, sizeof(*out));
	if (!cfg->system.reachability_timeout_ms)
		return 0;
	/* only what answered before the switch is held against it */
	out->repository_before = repository_check(cfg, 0, NULL) == 0;
	tend_error_clear();
	if (!m || !(h = tend_manifest_host(m, cfg->host)) || !h->address || !depended_on(m, cfg->host))
		return 0;
	if (asprintf(&out->agent_url, strchr(h->address, ':') ? "http://[%s]:%d/healthz" :
		     "http://%s:%d/healthz", h->address, h->agent_port) < 0) {
		out->agent_url = NULL;
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	out->agent_before = agent_try(out->agent_url, 0, NULL) == 0;
	tend_error_clear();
	return 0;
}

void tend_guard_dispose(tend_guard *g)
{
	if (g) {
		free(g->agent_url);
		memset(g, 0, sizeof(*g));
	}
}

int tend_guard_check(const tend_guard *g, const tend_config *cfg, volatile sig_atomic_t *abort)
{
	int64_t deadline;
	int error;

	if (!cfg->system.reachability_timeout_ms)
		return 0;
	deadline = tend_probe_now_ms() + (int64_t)cfg->system.reachability_timeout_ms;
	if (g->repository_before && (error = repository_check(cfg, deadline, abort)) < 0)
		return error;
	if (g->agent_url && g->agent_before && agent_try(g->agent_url, deadline, abort) < 0) {
		char why[1024];

		snprintf(why, sizeof(why), "%s", tend_error_last());
		tend_error_set("after the switch this host's agent address %s, which other hosts "
			       "depend on, does not answer within reachability_timeout %llus (%s)",
			       g->agent_url,
			       (unsigned long long)(cfg->system.reachability_timeout_ms / 1000), why);
		return TEND_ERROR;
	}
	return 0;
}
