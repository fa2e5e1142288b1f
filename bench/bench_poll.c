/* Idle poll of an unchanged remote: tend_source_poll (libgit2 ls-remote in a
 * forked child with a time limit, no fetch when the head is unchanged) against
 * spawning `git fetch` in a clone, as a shell-script agent would. CPU of this
 * process and of its waited-for children (the poll's forked child, git) per
 * poll, and wall time. Prints one JSON object.
 * For ssh:// remotes the key and known_hosts are given after POLLS; the
 * clone's `git fetch` gets them from GIT_SSH_COMMAND (set by the caller).
 *   bench_poll URL MIRROR_DIR GIT_CLONE_DIR POLLS [SSH_KEY KNOWN_HOSTS] */
#include "bench/benchutil.h"
#include "source/source.h"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

static void print_series(const char *name, const double *v, int n, int last)
{
	int i;

	printf("\"%s\": [", name);
	for (i = 0; i < n; i++)
		printf("%s%.4f", i ? ", " : "", v[i]);
	printf("]%s\n", last ? "" : ",");
}

static void git_fetch(const char *dir)
{
	char *argv[] = { "git", "-C", (char *)dir, "fetch", "-q", "origin", "main", NULL };
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, "git", NULL, NULL, argv, environ) != 0)
		bench_die("spawn git");
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bench_die("git fetch");
}

int main(int argc, char **argv)
{
	tend_source_opts o = TEND_SOURCE_OPTS_INIT;
	tend_source *s = NULL;
	char head[41];
	int i, n, fetched = 0;
	double *t_wall, *t_cpu, *t_self, *g_wall, *g_cpu;
	bench_clock a, b, d;

	bench_init();
	if (argc != 5 && argc != 7) {
		fprintf(stderr, "usage: bench_poll URL MIRROR_DIR GIT_CLONE_DIR POLLS [SSH_KEY KNOWN_HOSTS]\n");
		return 2;
	}
	n = atoi(argv[4]);
	t_wall = calloc(n, sizeof(double));
	t_cpu = calloc(n, sizeof(double));
	t_self = calloc(n, sizeof(double));
	g_wall = calloc(n, sizeof(double));
	g_cpu = calloc(n, sizeof(double));
	o.url = argv[1];
	o.mirror_dir = argv[2];
	o.branch = "main";
	if (argc == 7) {
		o.ssh_key = argv[5];
		o.known_hosts = argv[6];
	}
	if (tend_source_open(&s, &o) < 0)
		bench_die("tend_source_open");
	if (tend_source_poll(s, head, &fetched) < 0) /* first poll fills the mirror */
		bench_die("first poll");
	git_fetch(argv[3]);
	for (i = 0; i < n; i++) {
		bench_clock_now(&a);
		if (tend_source_poll(s, head, &fetched) < 0)
			bench_die("tend_source_poll");
		bench_clock_now(&b);
		if (fetched)
			bench_die("unchanged remote was fetched");
		bench_clock_diff(&d, &a, &b);
		t_wall[i] = d.wall_ms;
		t_self[i] = d.cpu_self_ms;
		t_cpu[i] = d.cpu_self_ms + d.cpu_children_ms;

		bench_clock_now(&a);
		git_fetch(argv[3]);
		bench_clock_now(&b);
		bench_clock_diff(&d, &a, &b);
		g_wall[i] = d.wall_ms;
		g_cpu[i] = d.cpu_self_ms + d.cpu_children_ms;
	}
	printf("{\n");
	print_series("tend_wall_ms", t_wall, n, 0);
	print_series("tend_cpu_ms", t_cpu, n, 0);
	print_series("tend_cpu_parent_ms", t_self, n, 0);
	print_series("git_wall_ms", g_wall, n, 0);
	print_series("git_cpu_ms", g_cpu, n, 1);
	printf("}\n");
	tend_source_free(s);
	return 0;
}
