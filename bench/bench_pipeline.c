/* validate + render + plan of one fleet, in one process, several runs:
 *   validate: tend_manifest_load of the work tree (what `tend validate` does);
 *   render:   tend_render_fleet and every host's outputs written under a
 *             scratch directory (what `tend render --host H --out` does, for
 *             every host at once);
 *   plan:     tend_reconcile_once(plan_only, no_fetch) for one host with the
 *             agent configuration (what `tend plan` does after its poll):
 *             export (reused once made), load, render, decrypt that host's
 *             secrets, the configured nix command (a stub printing a fixed
 *             store path), plan against the host.
 * The first run is reported apart (cold: the export is written then).
 * Prints one JSON object; peak RSS covers the whole process.
 *   bench_pipeline REPO_DIR CONFIG SCRATCH_DIR RUNS */
#include "agent/config.h"
#include "bench/benchutil.h"
#include "manifest/manifest.h"
#include "reconcile/reconcile.h"
#include "render/render.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	double validate, render, plan;
} run_times;

static void one_run(run_times *t, const char *repo, const tend_config *cfg, const char *scratch,
		    size_t *n_services, size_t *n_hosts, size_t *n_actions, size_t *bytes)
{
	tend_manifest *m = NULL;
	tend_render_result *r = NULL;
	tend_diags diags;
	tend_reconcile_opts opts = TEND_RECONCILE_OPTS_INIT;
	tend_reconcile_report rep;
	bench_clock a, b, d;
	size_t i;

	memset(&diags, 0, sizeof(diags));
	memset(&rep, 0, sizeof(rep));
	bench_clock_now(&a);
	if (tend_manifest_load(&m, &diags, repo) < 0) {
		if (diags.count) {
			char *s = tend_diag_format(&diags.items[0]);
			fprintf(stderr, "bench: %s\n", s);
			free(s);
		}
		bench_die("validate");
	}
	bench_clock_now(&b);
	bench_clock_diff(&d, &a, &b);
	t->validate = d.cpu_self_ms + d.cpu_children_ms;

	bench_clock_now(&a);
	if (tend_render_fleet(&r, m, NULL) < 0)
		bench_die("render");
	for (i = 0; i < m->n_hosts; i++)
		if (tend_render_result_write_host(r, m->hosts[i].name, scratch) < 0)
			bench_die("render write");
	bench_clock_now(&b);
	bench_clock_diff(&d, &a, &b);
	t->render = d.cpu_self_ms + d.cpu_children_ms;
	*n_services = m->n_services;
	*n_hosts = m->n_hosts;
	*bytes = 0;
	for (i = 0; i < r->n_outputs; i++)
		*bytes += r->outputs[i].len;
	tend_render_result_free(r);
	tend_manifest_free(m);
	tend_diags_dispose(&diags);

	opts.plan_only = 1;
	opts.no_fetch = 1;
	bench_clock_now(&a);
	if (tend_reconcile_once(&rep, cfg, &opts) < 0)
		bench_die("plan");
	bench_clock_now(&b);
	if (rep.outcome != TEND_RECONCILE_PLANNED && rep.outcome != TEND_RECONCILE_NOTHING) {
		fprintf(stderr, "bench: plan: %s: %s\n", tend_reconcile_outcome_name(rep.outcome),
			rep.message ? rep.message : "");
		exit(1);
	}
	bench_clock_diff(&d, &a, &b);
	t->plan = d.cpu_self_ms + d.cpu_children_ms;
	*n_actions = rep.plan.count;
	tend_reconcile_report_dispose(&rep);
}

int main(int argc, char **argv)
{
	tend_config *cfg = NULL;
	run_times cold, *t;
	size_t ns = 0, nh = 0, na = 0, bytes = 0;
	int i, n;

	bench_init();
	if (argc != 5) {
		fprintf(stderr, "usage: bench_pipeline REPO_DIR CONFIG SCRATCH_DIR RUNS\n");
		return 2;
	}
	n = atoi(argv[4]);
	t = calloc(n, sizeof(*t));
	if (tend_config_load(&cfg, argv[2]) < 0)
		bench_die("config");
	one_run(&cold, argv[1], cfg, argv[3], &ns, &nh, &na, &bytes);
	for (i = 0; i < n; i++)
		one_run(&t[i], argv[1], cfg, argv[3], &ns, &nh, &na, &bytes);
	printf("{\"services\": %zu, \"hosts\": %zu, \"plan_actions\": %zu, \"render_bytes\": %zu,\n",
	       ns, nh, na, bytes);
	printf("\"cold_ms\": {\"validate\": %.3f, \"render\": %.3f, \"plan\": %.3f},\n", cold.validate,
	       cold.render, cold.plan);
	printf("\"validate_ms\": [");
	for (i = 0; i < n; i++)
		printf("%s%.3f", i ? ", " : "", t[i].validate);
	printf("],\n\"render_ms\": [");
	for (i = 0; i < n; i++)
		printf("%s%.3f", i ? ", " : "", t[i].render);
	printf("],\n\"plan_ms\": [");
	for (i = 0; i < n; i++)
		printf("%s%.3f", i ? ", " : "", t[i].plan);
	printf("],\n\"maxrss_kb\": %ld}\n", bench_maxrss_kb());
	tend_config_free(cfg);
	free(t);
	return 0;
}
