/* The agent's memory over many reconcile cycles against an unchanged
 * repository, in one process: tend_reconcile_once N times (poll over the
 * remote, export reused, load, render, decrypt the host's secrets, the nix
 * stub, plan, converge: the first cycle applies, the others find nothing to
 * change). With --plan, plan_only. VmRSS after the first cycle and after the
 * last, and samples between. As `tend run` does (agent/mem.h): one malloc
 * arena, freed memory given back after every cycle. Prints one JSON object.
 *   bench_agent CONFIG CYCLES [--plan] */
#include "agent/config.h"
#include "agent/mem.h"
#include "bench/benchutil.h"
#include "reconcile/reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	tend_config *cfg = NULL;
	tend_reconcile_opts opts = TEND_RECONCILE_OPTS_INIT;
	long rss_start = 0, rss_first = 0, *samples;
	bench_clock a, b, d;
	int i, n, k = 0;

	bench_init();
	tend_agent_mem_init();
	if (argc < 3) {
		fprintf(stderr, "usage: bench_agent CONFIG CYCLES [--plan]\n");
		return 2;
	}
	n = atoi(argv[2]);
	samples = calloc(n / 100 + 2, sizeof(long));
	rss_start = bench_vmrss_kb();
	if (tend_config_load(&cfg, argv[1]) < 0)
		bench_die("config");
	opts.plan_only = argc > 3 && !strcmp(argv[3], "--plan");
	bench_clock_now(&a);
	for (i = 0; i < n; i++) {
		tend_reconcile_report rep;

		memset(&rep, 0, sizeof(rep));
		if (tend_reconcile_once(&rep, cfg, &opts) < 0)
			bench_die("reconcile");
		if (rep.outcome != TEND_RECONCILE_PLANNED && rep.outcome != TEND_RECONCILE_NOTHING &&
		    !(i == 0 && rep.outcome == TEND_RECONCILE_APPLIED)) {
			fprintf(stderr, "bench: cycle %d: %s: %s\n", i, tend_reconcile_outcome_name(rep.outcome),
				rep.message ? rep.message : "");
			return 1;
		}
		tend_reconcile_report_dispose(&rep);
		tend_agent_mem_release();   /* what the daemon does after each step */
		if (i == 0)
			rss_first = bench_vmrss_kb();
		if (i % 100 == 99)
			samples[k++] = bench_vmrss_kb();
	}
	bench_clock_now(&b);
	bench_clock_diff(&d, &a, &b);
	printf("{\"cycles\": %d, \"rss_start_kb\": %ld, \"rss_after_first_kb\": %ld, \"rss_after_last_kb\": %ld, "
	       "\"rss_anon_kb\": %ld, \"rss_file_kb\": %ld, \"maxrss_kb\": %ld, \"plan_only\": %d, \"cycle_wall_ms\": %.3f, \"cycle_cpu_ms\": %.3f, \"samples_kb\": [",
	       n, rss_start, rss_first, bench_vmrss_kb(), bench_status_kb("RssAnon:"),
	       bench_status_kb("RssFile:"), bench_maxrss_kb(), opts.plan_only, d.wall_ms / n,
	       (d.cpu_self_ms + d.cpu_children_ms) / n);
	for (i = 0; i < k; i++)
		printf("%s%ld", i ? ", " : "", samples[i]);
	printf("]}\n");
	tend_config_free(cfg);
	free(samples);
	return 0;
}
