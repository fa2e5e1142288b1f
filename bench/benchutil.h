/* Shared by the bench programs: CPU and wall clocks (self and waited-for
 * children), peak and current resident memory, and one JSON result line. */
#ifndef TEND_BENCH_UTIL_H
#define TEND_BENCH_UTIL_H

typedef struct {
	double wall_ms;
	double cpu_self_ms;        /* user+system of this process */
	double cpu_children_ms;    /* user+system of waited-for children */
} bench_clock;

void bench_clock_now(bench_clock *out);
/* b - a into out */
void bench_clock_diff(bench_clock *out, const bench_clock *a, const bench_clock *b);
/* Peak RSS of this process in KiB (ru_maxrss). */
long bench_maxrss_kb(void);
/* A field of /proc/self/status in KiB ("VmRSS:", "RssAnon:", "RssFile:"). */
long bench_status_kb(const char *field);
#define bench_vmrss_kb() bench_status_kb("VmRSS:")
/* sodium_init and friends, as tend's main does. */
void bench_init(void);
/* Exit with a message (the bench programs stop at the first failure). */
void bench_die(const char *what) __attribute__((noreturn));

#endif
