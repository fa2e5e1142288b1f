/* Real nix: building the test flake's host system from a revision directory
 * (same inputs, same store path; a flake input only as flake.lock pins it),
 * switching a profile in a temp dir the way NixOS does, generations, and
 * failing or hanging switches. */
#include "tests/reconcile/fixture.h"
#include "agent/config.h"
#include "reconcile/nix.h"
#include "util/error.h"

#include <time.h>

typedef struct {
	char *dir;
	char *root;      /* TEND_TEST_ROOT */
	tend_config *cfg;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	char *yaml = NULL, *path;

	f->dir = test_tmpdir_make("nix");
	assert_true(asprintf(&f->root, "%s/root", f->dir) > 0);
	setenv("TEND_TEST_ROOT", f->root, 1);
	/* nix runs with the tests' own nix.conf (NIX_CONF_DIR, scripts/nix-conf.sh):
	 * offline, in the build sandbox where the kernel allows it. */
	assert_true(asprintf(&yaml,
		"host: web1\n"
		"repository: {url: /nonexistent}\n"
		"state_dir: state\n"
		"nix: {extra_options: [--option, substituters, ''], build_timeout: 2m}\n"
		"system:\n"
		"  profile: profiles/system\n"
		"  current_system: root/web1/current-system\n"
		"  switch_timeout: 1500ms\n") > 0);
	test_write_file(f->dir, "agent.yaml", yaml);
	free(yaml);
	path = tend_path_join(f->dir, "agent.yaml");
	assert_int_equal(tend_config_load(&f->cfg, path), 0);
	free(path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	fx_stop_services(f->root);
	tend_config_free(f->cfg);
	free(f->root);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* A revision directory holding the flake and web1's inputs; caller frees. */
static char *revision(fx *f, const char *name, const char *settings)
{
	char *rev = tend_path_join(f->dir, name), *json = NULL;

	fx_copy_flake(rev);
	assert_true(asprintf(&json, "{\"host\": \"web1\", \"services\": {\"web\": {\"settings\": %s}}}\n",
			     settings) > 0);
	test_write_file(rev, ".tend/hosts/web1.json", json);
	free(json);
	return rev;
}

static char *build(fx *f, const char *rev)
{
	struct timespec a, b;
	char *out = NULL;

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (tend_nix_build_system(&out, f->cfg, rev, "web1", NULL) < 0)
		fail_msg("build: %s", tend_error_last());
	clock_gettime(CLOCK_MONOTONIC, &b);
	print_message("nix build took %ld ms\n",
		      (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
	assert_non_null(out);
	return out;
}

static void test_build_is_deterministic(void **state)
{
	fx *f = *state;
	char *r1 = revision(f, "r1", "{\"test_port\": 1}");
	char *r2 = revision(f, "r2", "{\"test_port\": 1}");
	char *r3 = revision(f, "r3", "{\"test_port\": 2}");
	char *p1 = build(f, r1), *p2 = build(f, r2), *p3 = build(f, r3), *stc;

	assert_true(!strncmp(p1, "/nix/store/", 11));
	assert_non_null(strstr(p1, "tend-test-system-web1"));
	/* same inputs in another directory: the same system; other inputs: another */
	assert_string_equal(p1, p2);
	assert_string_not_equal(p1, p3);
	stc = tend_path_join(p1, "bin/switch-to-configuration");
	assert_int_equal(access(stc, X_OK), 0);
	free(stc);
	free(p1); free(p2); free(p3);
	free(r1); free(r2); free(r3);
}

static void test_build_errors(void **state)
{
	fx *f = *state;
	char *rev = revision(f, "r", "{}"), *out = NULL;

	assert_int_equal(tend_nix_build_system(&out, f->cfg, rev, "nosuchhost", NULL), TEND_ERROR);
	assert_null(out);
	assert_non_null(strstr(tend_error_last(), "nixosConfigurations.nosuchhost"));
	assert_non_null(strstr(tend_error_last(), "failed (exit 1): error: flake "));
	assert_int_equal(tend_nix_build_system(&out, f->cfg, "relative/dir", "web1", NULL), TEND_EINVALID);
	assert_int_equal(tend_nix_build_system(&out, f->cfg, rev, "web1#x", NULL), TEND_EINVALID);
	free(rev);
}

/* The revision's flake with an input (a local flake, no network): the build takes
 * the inputs flake.lock pins and no other. A lock that does not have the input, or
 * none, fails the build with an error that says flake.lock (with
 * --no-write-lock-file nix would only warn and lock the input itself, on each host
 * its own); nothing is written into the revision; with the lock nix writes, it builds. */
static void test_build_needs_lock(void **state)
{
	fx *f = *state;
	char *rev = revision(f, "r", "{}"), *dep = tend_path_join(f->dir, "dep"), *text, *flake = NULL;
	char *lock = tend_path_join(rev, "flake.lock"), *before, *after, *out = NULL;
	const char *want = "failed: flake.lock is missing or does not match flake.nix's inputs: "
			   "run 'nix flake lock' and commit flake.lock (tend builds with "
			   "--no-update-lock-file, so every host uses the same inputs): error: ";

	test_write_file(dep, "flake.nix", "{ outputs = { self }: { }; }\n");
	text = test_read_file(TEND_SOURCE_DIR "/tests/fixtures/flake/flake.nix");
	assert_non_null(strstr(text, "outputs = { self }:"));
	assert_true(asprintf(&flake, "%.*sinputs.dep.url = \"path:%s\";\n  outputs = { self, dep }:%s",
			     (int)(strstr(text, "outputs = { self }:") - text), text, dep,
			     strstr(text, "outputs = { self }:") + strlen("outputs = { self }:")) > 0);
	test_write_file(rev, "flake.nix", flake);

	/* the test flake's lock: no inputs */
	before = test_read_file(lock);
	assert_int_equal(tend_nix_build_system(&out, f->cfg, rev, "web1", NULL), TEND_ERROR);
	assert_null(out);
	assert_non_null(strstr(tend_error_last(), want));
	assert_non_null(strstr(tend_error_last(), "requires lock file changes but they're not allowed "
			       "due to '--no-update-lock-file'"));
	after = test_read_file(lock);
	assert_string_equal(after, before);
	free(before);
	free(after);

	/* no lock */
	assert_int_equal(unlink(lock), 0);
	assert_int_equal(tend_nix_build_system(&out, f->cfg, rev, "web1", NULL), TEND_ERROR);
	assert_non_null(strstr(tend_error_last(), want));
	assert_false(tend_path_exists(lock));

	assert_int_equal(test_sh(NULL, rev, "nix --extra-experimental-features 'nix-command flakes' "
				 "--option substituters '' flake lock 'path:%s' 2>&1", rev), 0);
	after = test_read_file(lock);
	assert_non_null(after);
	assert_non_null(strstr(after, "\"dep\""));
	free(after);
	out = build(f, rev);
	assert_non_null(strstr(out, "tend-test-system-web1"));
	free(out);
	free(lock);
	free(flake);
	free(text);
	free(dep);
	free(rev);
}

static void test_switch_and_generations(void **state)
{
	fx *f = *state;
	int port = test_free_port();
	char settings[128], *ra, *rb, *pa, *pb, *cur = NULL, *g1 = NULL, *body = NULL;
	tend_switch_result sw;
	long gen, *gens;
	size_t n;
	struct timespec a, b;

	snprintf(settings, sizeof(settings), "{\"test_port\": %d, \"test_body\": \"A\"}", port);
	ra = revision(f, "ra", settings);
	snprintf(settings, sizeof(settings), "{\"test_port\": %d, \"test_body\": \"B\"}", port);
	rb = revision(f, "rb", settings);
	pa = build(f, ra);
	pb = build(f, rb);

	assert_int_equal(tend_nix_current_system(&cur, f->cfg), TEND_ENOTFOUND);
	assert_int_equal(tend_nix_profile_generation(&gen, f->cfg->system.profile), TEND_ENOTFOUND);

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (tend_nix_switch(&sw, f->cfg, pa, NULL) < 0)
		fail_msg("switch: %s\n%s", tend_error_last(), sw.output.ptr);
	clock_gettime(CLOCK_MONOTONIC, &b);
	print_message("switch took %ld ms\n",
		      (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
	assert_int_equal(sw.generation, 1);
	assert_non_null(strstr(sw.output.ptr, "activating"));
	tend_switch_result_dispose(&sw);
	assert_int_equal(tend_nix_current_system(&cur, f->cfg), 0);
	assert_string_equal(cur, pa);
	free(cur);
	assert_true(fx_wait_listening(port, 5000));
	assert_int_equal(test_sh(NULL, NULL, "curl -sf http://127.0.0.1:%d/ | grep -qx A", port), 0);

	assert_int_equal(tend_nix_switch(&sw, f->cfg, pb, NULL), 0);
	assert_int_equal(sw.generation, 2);
	tend_switch_result_dispose(&sw);
	assert_int_equal(tend_nix_current_system(&cur, f->cfg), 0);
	assert_string_equal(cur, pb);
	free(cur);
	assert_int_equal(test_sh(NULL, NULL, "for i in $(seq 50); do curl -sf http://127.0.0.1:%d/ | grep -qx B && exit 0; sleep 0.1; done; exit 1", port), 0);

	/* back to A by store path: a new generation pointing to A, never --rollback */
	assert_int_equal(tend_nix_generation_path(&g1, f->cfg->system.profile, 1), 0);
	assert_string_equal(g1, pa);
	assert_int_equal(tend_nix_switch(&sw, f->cfg, g1, NULL), 0);
	assert_int_equal(sw.generation, 3);
	tend_switch_result_dispose(&sw);
	assert_int_equal(tend_nix_profile_generation(&gen, f->cfg->system.profile), 0);
	assert_int_equal(gen, 3);
	assert_int_equal(tend_nix_generations(&gens, &n, f->cfg->system.profile), 0);
	assert_int_equal(n, 3);
	assert_int_equal(gens[0], 1);
	assert_int_equal(gens[2], 3);
	free(gens);
	assert_int_equal(tend_nix_generation_path(&body, f->cfg->system.profile, 9), TEND_ENOTFOUND);
	free(g1);
	free(pa); free(pb); free(ra); free(rb);
}

static void test_switch_failure_and_timeout(void **state)
{
	fx *f = *state;
	int port = test_free_port();
	char settings[160], *rev, *p;
	tend_switch_result sw;

	snprintf(settings, sizeof(settings), "{\"test_port\": %d, \"test_switch_exit\": 3}", port);
	rev = revision(f, "bad", settings);
	p = build(f, rev);
	assert_int_equal(tend_nix_switch(&sw, f->cfg, p, NULL), TEND_ERROR);
	assert_int_equal(sw.exit_code, 3);
	assert_non_null(strstr(sw.output.ptr, "switch failed as the settings ask"));
	assert_non_null(strstr(tend_error_last(), "failed (exit 3)"));
	tend_switch_result_dispose(&sw);
	free(p);
	free(rev);

	snprintf(settings, sizeof(settings), "{\"test_port\": %d, \"test_switch_sleep\": 30}", port);
	rev = revision(f, "slow", settings);
	p = build(f, rev);
	assert_int_equal(tend_nix_switch(&sw, f->cfg, p, NULL), TEND_ETIMEOUT);
	assert_true(sw.timed_out);
	assert_non_null(strstr(tend_error_last(), "time limit"));
	tend_switch_result_dispose(&sw);
	free(p);
	free(rev);
}

/* A reboot is needed when the running system's kernel, initrd or kernel modules are not the
 * booted system's (NixOS's system.autoUpgrade test): links compare by target, files by
 * content; nothing booted from a system (no booted-system) needs none. */
static void test_reboot_required(void **state)
{
	tend_config cfg;
	char *dir = test_tmpdir_make("reboot"), *cs = NULL;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_true(asprintf(&cs, "%s/current-system", dir) > 0);
	cfg.system.current_system = cs;
	assert_int_equal(test_sh(NULL, dir, "mkdir -p k1 k2 s1 s2 s3 s4 && "
				 "ln -s ../k1/bzImage s1/kernel && ln -s ../k1/initrd s1/initrd && "
				 "ln -s ../k1/bzImage s2/kernel && ln -s ../k1/initrd s2/initrd && "
				 "ln -s ../k2/bzImage s3/kernel && ln -s ../k1/initrd s3/initrd && "
				 "ln -s ../k1/bzImage s4/kernel && ln -s ../k1/initrd s4/initrd && "
				 "ln -s ../k2/modules s4/kernel-modules && ln -s s1 current-system"), 0);
	assert_int_equal(tend_nix_reboot_required(&cfg), 0);        /* nothing booted */
	assert_int_equal(test_sh(NULL, dir, "ln -s s1 booted-system"), 0);
	assert_int_equal(tend_nix_reboot_required(&cfg), 0);        /* runs what it booted */
	assert_int_equal(test_sh(NULL, dir, "ln -sfn s2 current-system"), 0);
	assert_int_equal(tend_nix_reboot_required(&cfg), 0);        /* another system, same kernel */
	assert_int_equal(test_sh(NULL, dir, "ln -sfn s3 current-system"), 0);
	assert_int_equal(tend_nix_reboot_required(&cfg), 1);        /* a new kernel */
	assert_int_equal(test_sh(NULL, dir, "ln -sfn s4 current-system"), 0);
	assert_int_equal(tend_nix_reboot_required(&cfg), 1);        /* modules appeared */
	/* files (the host lab's stand-ins): by content */
	assert_int_equal(test_sh(NULL, dir, "mkdir f1 f2 f3 && echo k-1 > f1/kernel && echo k-1 > f2/kernel && "
				 "echo k-2 > f3/kernel && ln -sfn f1 booted-system && ln -sfn f2 current-system"), 0);
	assert_int_equal(tend_nix_reboot_required(&cfg), 0);
	assert_int_equal(test_sh(NULL, dir, "ln -sfn f3 current-system"), 0);
	assert_int_equal(tend_nix_reboot_required(&cfg), 1);
	free(cs);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_build_is_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_needs_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_switch_and_generations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_switch_failure_and_timeout, setup, teardown),
		cmocka_unit_test(test_reboot_required),
	};
	if (!test_have("nix")) {
		fprintf(stderr, "SKIP: nix is not installed\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
