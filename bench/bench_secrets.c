/* Decrypting many small secrets: tend in one process (identities loaded
 * once, tend_secret_decrypt_file per age file and per sops value) against the
 * `age` CLI spawned once per file. Prints one JSON object.
 *   bench_secrets POOL_DIR N [--cli] */
#include "bench/benchutil.h"
#include "secrets/decrypt.h"
#include "secrets/identity.h"
#include "util/buf.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
	tend_age_identities *ids = NULL;
	tend_buf out = TEND_BUF_INIT;
	char path[4096], key[4096], want[64];
	bench_clock a, b, d;
	double t_age, t_sops, t_cli = -1, w_cli = -1;
	int i, n;

	bench_init();
	if (argc < 3) {
		fprintf(stderr, "usage: bench_secrets POOL_DIR N [--cli]\n");
		return 2;
	}
	n = atoi(argv[2]);
	snprintf(key, sizeof(key), "%s/key.txt", argv[1]);

	bench_clock_now(&a);
	if (tend_age_identities_new(&ids) < 0 || tend_age_identities_add_file(ids, key) < 0)
		bench_die("identity");
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/age/s%05d.age", argv[1], i);
		if (tend_secret_decrypt_file(&out, path, NULL, NULL, ids) < 0)
			bench_die(path);
		snprintf(want, sizeof(want), "secret-%05d-", i);
		if (out.size < strlen(want) || memcmp(out.ptr, want, strlen(want)))
			bench_die("age plaintext mismatch");
		tend_buf_dispose_secure(&out);
	}
	bench_clock_now(&b);
	bench_clock_diff(&d, &a, &b);
	t_age = d.cpu_self_ms;

	bench_clock_now(&a);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/sops/s%05d.yaml", argv[1], i);
		if (tend_secret_decrypt_file(&out, path, NULL, "[\"client_secret\"]", ids) < 0)
			bench_die(path);
		snprintf(want, sizeof(want), "client-secret-%05d", i);
		if (out.size != strlen(want) || memcmp(out.ptr, want, out.size))
			bench_die("sops plaintext mismatch");
		tend_buf_dispose_secure(&out);
	}
	bench_clock_now(&b);
	bench_clock_diff(&d, &a, &b);
	t_sops = d.cpu_self_ms;
	tend_age_identities_free(ids);

	if (argc > 3 && !strcmp(argv[3], "--cli")) {
		posix_spawn_file_actions_t fa;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		bench_clock_now(&a);
		for (i = 0; i < n; i++) {
			char *av[] = { "age", "-d", "-i", key, path, NULL };
			pid_t pid;
			int st;

			snprintf(path, sizeof(path), "%s/age/s%05d.age", argv[1], i);
			if (posix_spawnp(&pid, "age", &fa, NULL, av, environ) != 0)
				bench_die("spawn age");
			if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				bench_die("age -d");
		}
		bench_clock_now(&b);
		bench_clock_diff(&d, &a, &b);
		t_cli = d.cpu_self_ms + d.cpu_children_ms;
		w_cli = d.wall_ms;
		posix_spawn_file_actions_destroy(&fa);
	}
	printf("{\"n\": %d, \"tend_age_ms\": %.3f, \"tend_sops_ms\": %.3f, \"age_cli_cpu_ms\": %.3f, "
	       "\"age_cli_wall_ms\": %.3f}\n", n, t_age, t_sops, t_cli, w_cli);
	return 0;
}
