/* Helpers for the end-to-end reconcile tests (header-only: the test glob
 * builds only test_*.c): a temp "host" with a fleet repository holding the
 * test flake, an agent configuration, the real tend binary, and checks on
 * what the host runs. */
#ifndef TEND_TESTS_RECONCILE_E2E_H
#define TEND_TESTS_RECONCILE_E2E_H

#include "tests/reconcile/fixture.h"

#include "state/state.h"
#include "util/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

typedef struct {
	char *dir;        /* everything lives here */
	char *repo;       /* the operator's repository (work tree) */
	char *root;       /* TEND_TEST_ROOT: where the test systems run */
	char *config;     /* agent.yaml */
	char *routes;     /* the routes file on the "host" */
	char *state_dir;
	int port;         /* the web service's port */
} e2e;

static inline void write_fleet(e2e *e)
{
	test_write_file(e->repo, "fleet.yaml",
		"fleet: test\n"
		"domain: lab.test\n"
		"hosts:\n"
		"  web1: {address: 127.0.0.1}\n"
		"  web2: {address: 127.0.0.2}\n"
		"proxy:\n"
		"  service: traefik\n"
		"  kind: traefik\n"
		"  routes_file: /etc/traefik/tend.yml\n"
		"  tls:\n"
		"    internal-ca: {kind: internal, suffixes: [.lab.test]}\n");
	test_write_file(e->repo, "services/traefik/service.yaml",
		"name: traefik\nhost: web1\n");
	test_write_file(e->repo, "services/other/service.yaml",
		"name: other\nhost: web2\nsettings: {colour: blue}\n");
}

/* The web service's startup probe waits this long before its first try. */
static const char *web_grace = "0s";

/* services/web: answers `status` with `body` on e->port; extra settings appended. */
static inline void write_web(e2e *e, int status, const char *body, const char *extra)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"name: web\n"
		"host: web1\n"
		"depends_on: [traefik]\n"
		"proxy: {domain: web.lab.test, port: %d}\n"
		"health:\n"
		"  startup:\n"
		"    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n"
		"      timeout: 1s\n"
		"      retries: 30\n"
		"      grace: %s\n"
		"settings:\n"
		"  test_port: %d\n"
		"  test_status: %d\n"
		"  test_body: '%s'\n"
		"%s",
		e->port, e->port, web_grace, e->port, status, body, extra ? extra : "") > 0);
	test_write_file(e->repo, "services/web/service.yaml", text);
	free(text);
}

static inline char *commit(e2e *e, const char *message)
{
	tend_buf out = TEND_BUF_INIT;
	char *hash;

	assert_int_equal(test_sh(NULL, e->repo,
		"git add -A && git -c user.name=op -c user.email=op@lab.test commit -q -m '%s'",
		message), 0);
	assert_int_equal(test_sh(&out, e->repo, "git rev-parse HEAD"), 0);
	hash = strndup(out.ptr, 40);
	tend_buf_dispose(&out);
	return hash;
}

static inline int setup(void **state)
{
	e2e *e = calloc(1, sizeof(*e));
	char *yaml = NULL;

	e->dir = test_tmpdir_make("e2e");
	assert_true(asprintf(&e->repo, "%s/repo", e->dir) > 0);
	assert_true(asprintf(&e->root, "%s/run", e->dir) > 0);
	assert_true(asprintf(&e->config, "%s/agent.yaml", e->dir) > 0);
	assert_true(asprintf(&e->routes, "%s/hostroot/etc/traefik/tend.yml", e->dir) > 0);
	assert_true(asprintf(&e->state_dir, "%s/state", e->dir) > 0);
	setenv("TEND_TEST_ROOT", e->root, 1);
	/* the tend processes: see lsan.supp (a libgit2 1.5 leak) */
	setenv("LSAN_OPTIONS", "suppressions=" TEND_SOURCE_DIR "/tests/reconcile/lsan.supp:print_suppressions=0", 1);
	e->port = test_free_port();
	assert_int_equal(test_sh(NULL, e->dir, "git init -q -b main repo"), 0);
	fx_copy_flake(e->repo);
	write_fleet(e);
	/* nix runs with the tests' own nix.conf (NIX_CONF_DIR, scripts/nix-conf.sh):
	 * offline, in the build sandbox where the kernel allows it. */
	assert_true(asprintf(&yaml,
		"host: web1\n"
		"repository: {url: repo, branch: main}\n"
		"state_dir: state\n"
		"root: hostroot\n"
		"secrets_root: secrets\n"
		"secrets_storage: disk\n"
		"nix: {extra_options: [--option, substituters, ''], build_timeout: 2m}\n"
		"system:\n"
		"  profile: profiles/system\n"
		"  current_system: run/web1/current-system\n"
		"  switch_timeout: 20s\n"
		"probes: {deadline: 30s}\n"
		"age_identities: [age.key]\n") > 0);
	assert_int_equal(test_sh(NULL, e->dir, "age-keygen -o age.key 2>/dev/null"), 0);
	test_write_file(e->dir, "agent.yaml", yaml);
	free(yaml);
	*state = e;
	return 0;
}

static inline int teardown(void **state)
{
	e2e *e = *state;

	fx_stop_services(e->root);
	free(e->repo);
	free(e->root);
	free(e->config);
	free(e->routes);
	free(e->state_dir);
	test_tmpdir_remove(e->dir);
	free(e);
	return 0;
}

/* Run tend with args (then --config); returns the exit code, output in *out if given. */
static inline int tend(e2e *e, char **out, const char *cmd, const char *a1, const char *a2)
{
	const char *args[8];
	tend_proc_result res;
	size_t n = 0;
	int code;

	args[n++] = cmd;
	if (!strcmp(cmd, "reconcile"))
		args[n++] = "--once";
	args[n++] = "--config";
	args[n++] = e->config;
	if (a1)
		args[n++] = a1;
	if (a2)
		args[n++] = a2;
	args[n] = NULL;
	{
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(test_tend(&res, NULL, args), 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (getenv("TEND_E2E_TIMES"))
			fprintf(stderr, "TIME tend %s %s: %ld ms\n", cmd, a1 ? a1 : "",
				(long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
	}
	code = res.exit_code;
	if (out)
		assert_true(asprintf(out, "%s%s", res.out.ptr, res.err.ptr) >= 0);
	else
		print_message("tend %s: exit %d\n%s%s", cmd, code, res.out.ptr, res.err.ptr);
	tend_proc_result_dispose(&res);
	return code;
}

/* What the web service answers now ("" when nothing answers). */
static inline char *web_body(e2e *e)
{
	tend_buf out = TEND_BUF_INIT;
	char *s;

	test_sh(&out, NULL, "curl -s --max-time 2 http://127.0.0.1:%d/", e->port);
	s = strdup(out.ptr ? out.ptr : "");
	tend_buf_dispose(&out);
	return s;
}

/* The web service answers want (waiting up to 5 s for it to listen). */
static inline void expect_web(e2e *e, const char *want)
{
	char *body;

	assert_true(fx_wait_listening(e->port, 5000));
	body = web_body(e);
	if (strcmp(body, want))
		fail_msg("the web service answers '%s', not '%s'", body, want);
	free(body);
}

static inline char *current_system(e2e *e)
{
	char *link = NULL, buf[4096];
	ssize_t n;

	assert_true(asprintf(&link, "%s/web1/current-system", e->root) > 0);
	n = readlink(link, buf, sizeof(buf) - 1);
	free(link);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

static inline tend_state *load_state(e2e *e)
{
	tend_state *st = NULL;

	if (tend_state_load(&st, e->state_dir) < 0)
		fail_msg("state: %s", tend_error_last());
	return st;
}

static inline void expect_contains(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("expected '%s' in:\n%s", needle, hay ? hay : "(null)");
}

static inline long read_pid(const char *path)
{
	char *text = test_read_file(path);
	long pid = text ? strtol(text, NULL, 10) : 0;

	free(text);
	return pid;
}


/* Encrypt text to the agent's age key into the repository at rel. */
static inline void encrypt_secret(e2e *e, const char *rel, const char *text)
{
	assert_int_equal(test_sh(NULL, e->dir,
		"mkdir -p repo/secrets && printf '%%s' '%s' | age -r $(age-keygen -y age.key) -o repo/%s",
		text, rel), 0);
}


/* Start `tend reconcile --once` in the background; returns its pid. */
static inline pid_t start_reconcile(e2e *e)
{
	char *argv[6];
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		argv[0] = (char *)TEND_BINARY;
		argv[1] = "reconcile";
		argv[2] = "--once";
		argv[3] = "--config";
		argv[4] = e->config;
		argv[5] = NULL;
		execv(TEND_BINARY, argv);
		_exit(127);
	}
	return pid;
}


#define SIGNED_COMMIT "git add -A && git -c user.name=op -c user.email=op@lab.test " \
	"-c gpg.format=ssh -c user.signingkey=%s/signkey commit -q -S"

#endif
