/* Clocks and memory readings for the bench programs (see benchutil.h). */
#include "bench/benchutil.h"
#include "util/error.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double tv_ms(const struct timeval *tv)
{
	return tv->tv_sec * 1000.0 + tv->tv_usec / 1000.0;
}

void bench_clock_now(bench_clock *out)
{
	struct timespec ts;
	struct rusage self, kids;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	out->wall_ms = ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
	out->cpu_self_ms = tv_ms(&self.ru_utime) + tv_ms(&self.ru_stime);
	out->cpu_children_ms = tv_ms(&kids.ru_utime) + tv_ms(&kids.ru_stime);
}

void bench_clock_diff(bench_clock *out, const bench_clock *a, const bench_clock *b)
{
	out->wall_ms = b->wall_ms - a->wall_ms;
	out->cpu_self_ms = b->cpu_self_ms - a->cpu_self_ms;
	out->cpu_children_ms = b->cpu_children_ms - a->cpu_children_ms;
}

long bench_maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

long bench_status_kb(const char *field)
{
	FILE *fp = fopen("/proc/self/status", "re");
	char line[256];
	long kb = -1;

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, field, strlen(field))) {
			kb = strtol(line + strlen(field), NULL, 10);
			break;
		}
	fclose(fp);
	return kb;
}

void bench_die(const char *what)
{
	const char *e = tend_error_last();

	fprintf(stderr, "bench: %s: %s\n", what, e && *e ? e : "failed");
	exit(1);
}

void bench_init(void)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "bench: sodium_init failed\n");
		exit(1);
	}
}
