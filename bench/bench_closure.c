/* The closure diff of a system switch (reconcile/closure.h) at NixOS size: two closures of
 * N store paths each (a tenth of the packages at a new version, a few added and removed) and
 * two systems of U unit files each (a tenth changed, a few added and removed), diffed the way
 * `tend plan` does after nix-store has listed the closures. Prints one JSON object.
 * RUNS diffs in a row; the last one (warm caches, as at the second plan) is reported.
 *   bench_closure WORK_DIR N U RUNS */
#include "bench/benchutil.h"
#include "reconcile/closure.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char **closure(int n, int side)
{
	char **v = calloc((size_t)n, sizeof(*v));
	int i;

	if (!v)
		bench_die("out of memory");
	for (i = 0; i < n; i++) {
		/* path i: package p<i>, version 1.<i%50>.0, a tenth bumped on side 1; the last
		 * ten differ in name (five removed, five added) */
		int bumped = side && i % 10 == 3, gone = i >= n - 10 && (i % 2 == side);

		if (asprintf(&v[i], "/nix/store/%032d-%s%d-1.%d.%d", i, gone ? "only" : "p", i,
			     i % 50, bumped) < 0)
			bench_die("out of memory");
	}
	return v;
}

static void units(const char *dir, int u, int side)
{
	char path[4096];
	int i;

	snprintf(path, sizeof(path), "%s/s%d/etc/systemd/system", dir, side);
	if (tend_dir_create_all(path, 0755) < 0)
		bench_die("mkdir");
	for (i = 0; i < u; i++) {
		FILE *f;

		if (i >= u - 4 && i % 2 == side)
			continue;   /* two added, two removed */
		snprintf(path, sizeof(path), "%s/s%d/etc/systemd/system/unit%d.service", dir, side, i);
		if (!(f = fopen(path, "w")))
			bench_die(path);
		fprintf(f, "[Unit]\nDescription=unit %d\n\n[Service]\nExecStart=/nix/store/%032d-p%d-1.%d.%d/bin/x\n",
			i, i, i, i % 50, side && i % 10 == 3);
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	char **a, **b, sa[4096], sb[4096];
	bench_clock t0, t1, d;
	double pk = 0, un = 0;
	size_t changes = 0, unit_changes = 0;
	int n, u, runs, r;

	bench_init();
	if (argc < 5) {
		fprintf(stderr, "usage: bench_closure WORK_DIR N U RUNS\n");
		return 2;
	}
	n = atoi(argv[2]);
	u = atoi(argv[3]);
	runs = atoi(argv[4]);
	a = closure(n, 0);
	b = closure(n, 1);
	units(argv[1], u, 0);
	units(argv[1], u, 1);
	snprintf(sa, sizeof(sa), "%s/s0", argv[1]);
	snprintf(sb, sizeof(sb), "%s/s1", argv[1]);
	for (r = 0; r < runs; r++) {
		tend_closure_diff *dp = calloc(1, sizeof(*dp)), *du = calloc(1, sizeof(*du));

		bench_clock_now(&t0);
		if (tend_closure_diff_packages(dp, a, (size_t)n, b, (size_t)n) < 0)
			bench_die("packages");
		bench_clock_now(&t1);
		bench_clock_diff(&d, &t0, &t1);
		pk = d.wall_ms;
		bench_clock_now(&t0);
		if (tend_closure_diff_units(du, sa, sb) < 0)
			bench_die("units");
		bench_clock_now(&t1);
		bench_clock_diff(&d, &t0, &t1);
		un = d.wall_ms;
		changes = dp->n_packages;
		unit_changes = du->n_units;
		tend_closure_diff_free(dp);
		tend_closure_diff_free(du);
	}
	printf("{\"paths\": %d, \"units\": %d, \"packages_ms\": %.3f, \"units_ms\": %.3f, "
	       "\"package_changes\": %zu, \"unit_changes\": %zu}\n", n, u, pk, un, changes,
	       unit_changes);
	return 0;
}
