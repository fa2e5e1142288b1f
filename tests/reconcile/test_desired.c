/* What a commit wants, read and written beneath the exported revision
 * without following a committed symbolic link (issue 17 F2, F3), the commit in
 * the inputs the flake reads and the inputs flake.lock pins (issue 18 item 4):
 * end to end with the real tend binary, git, age and nix. */
#include "tests/reconcile/e2e.h"

/* F2: a committed `.tend` link to a directory outside the repository made
 * `tend plan` (documented as changing nothing) and reconcile write every
 * host's inputs into the link's target. Fails on 247ba6c: the victim got
 * hosts/web1.json. */
static void test_committed_tend_link_not_written_through(void **state)
{
	e2e *e = *state;
	char *victim = NULL, *link = NULL, *out = NULL, *path = NULL;
	struct stat sb;

	assert_true(asprintf(&victim, "%s/victim", e->dir) > 0);
	assert_int_equal(mkdir(victim, 0755), 0);
	assert_true(asprintf(&link, "%s/.tend", e->repo) > 0);
	assert_int_equal(symlink(victim, link), 0);
	write_web(e, 200, "one", NULL);
	free(commit(e, "web, and .tend as a link"));
	assert_true(asprintf(&path, "%s/hosts", victim) > 0);
	tend(e, &out, "plan", NULL, NULL);
	assert_int_equal(lstat(path, &sb), -1);   /* nothing written through the link */
	expect_contains(out, "'.tend' is a symbolic link; tend follows none beneath");
	free(out);
	assert_int_not_equal(tend(e, &out, "plan", NULL, NULL), 0);
	free(out);
	assert_int_not_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	free(out);
	assert_int_equal(lstat(path, &sb), -1);
	free(path);
	free(link);
	free(victim);
}

/* F3: a committed link to a directory on a secret's path: an age file
 * outside the repository (root-only there) was decrypted and installed.
 * Now the manifests are invalid and nothing is installed. Fails on 247ba6c:
 * secrets/web/token held the outside file's plaintext. */
static void test_secret_through_linked_directory_refused(void **state)
{
	e2e *e = *state;
	char *token = NULL, *out = NULL, *link = NULL, *outside = NULL;
	struct stat sb;

	assert_int_equal(test_sh(NULL, e->dir,
		"mkdir -p outside && printf 'outside-plaintext' | age -r $(age-keygen -y age.key) "
		"-o outside/web.age && chmod 0400 outside/web.age"), 0);
	assert_true(asprintf(&outside, "%s/outside", e->dir) > 0);
	assert_true(asprintf(&link, "%s/secrets", e->repo) > 0);
	assert_int_equal(symlink(outside, link), 0);
	write_web(e, 200, "one", "secrets:\n  - {name: token, file: secrets/web.age}\n");
	free(commit(e, "web with a token behind a link"));
	assert_true(asprintf(&token, "%s/secrets/web/token", e->dir) > 0);
	tend(e, &out, "reconcile", NULL, NULL);
	assert_int_equal(lstat(token, &sb), -1);   /* nothing decrypted, nothing installed */
	expect_contains(out, "'secrets/web.age' does not exist in the repository");
	free(out);
	free(token);
	free(link);
	free(outside);
}

/* The inputs written into the exported revision carry the commit as
 * "revision" (for system.configurationRevision), and a commit that changes
 * nothing a host is told (a README) builds the same system: the test flake, like
 * the example's, keeps "revision" out of it. No switch, no new generation. */
static void test_revision_in_inputs_same_system(void **state)
{
	e2e *e = *state;
	char *c1, *c2, *s1, *s2, *path = NULL, *inputs, *want = NULL;
	tend_state *st;
	long gen;

	write_web(e, 200, "one", NULL);
	c1 = commit(e, "web");
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	expect_web(e, "one");
	s1 = current_system(e);
	assert_non_null(s1);
	st = load_state(e);
	gen = st->generation;
	tend_state_free(st);

	test_write_file(e->repo, "README.md", "The test fleet.\n");
	c2 = commit(e, "README only");
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	s2 = current_system(e);
	assert_string_equal(s2, s1);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c2);
	assert_int_equal(st->generation, gen);
	tend_state_free(st);

	assert_true(asprintf(&path, "%s/revisions/%s/.tend/hosts/web1.json", e->state_dir, c2) > 0);
	inputs = test_read_file(path);
	assert_non_null(inputs);
	assert_true(asprintf(&want, "\n  \"revision\": \"%s\",\n", c2) > 0);
	expect_contains(inputs, want);
	expect_contains(inputs, "\n  \"commit\": null,\n");
	free(want);
	free(inputs);
	free(path);
	free(s1);
	free(s2);
	free(c1);
	free(c2);
}

/* The test flake with input dep (a local flake at url): its outputs take it. */
static void write_flake_with_input(e2e *e, const char *url)
{
	char *text = test_read_file(TEND_SOURCE_DIR "/tests/fixtures/flake/flake.nix"), *flake = NULL;
	const char *outputs = "outputs = { self }:";
	const char *at = strstr(text, outputs);

	assert_non_null(at);
	assert_true(asprintf(&flake, "%.*sinputs.dep.url = \"%s\";\n  outputs = { self, dep }:%s",
			     (int)(at - text), text, url, at + strlen(outputs)) > 0);
	test_write_file(e->repo, "flake.nix", flake);
	free(flake);
	free(text);
}

/* A commit whose flake has an input flake.lock does not pin is a bad commit:
 * refused before anything changes (validate's message when the lock lacks the
 * input, nix's through the build when the lock pins another source), the host
 * keeps its system and service; with the lock nix writes, the next commit applies. */
static void test_commit_without_lock_refused(void **state)
{
	e2e *e = *state;
	char *c1, *c2, *c3, *c4, *s1, *s, *out = NULL, *dep = NULL, *dep2 = NULL, *url = NULL;
	tend_state *st;

	write_web(e, 200, "one", NULL);
	c1 = commit(e, "web");
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	s1 = current_system(e);
	assert_non_null(s1);

	assert_true(asprintf(&dep, "%s/dep", e->dir) > 0);
	assert_true(asprintf(&dep2, "%s/dep2", e->dir) > 0);
	test_write_file(dep, "flake.nix", "{ outputs = { self }: { }; }\n");
	test_write_file(dep2, "flake.nix", "{ outputs = { self }: { }; }\n");
	assert_true(asprintf(&url, "path:%s", dep) > 0);
	write_flake_with_input(e, url);
	write_web(e, 200, "two", NULL);
	c2 = commit(e, "web two, and an input without a lock");
	assert_int_not_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "flake.lock: error: input 'dep' (flake.nix:");
	expect_contains(out, ") is not locked: run 'nix flake lock' and commit flake.lock (tend builds "
			"with --no-update-lock-file, so every host uses the same inputs)");
	free(out);
	s = current_system(e);
	assert_string_equal(s, s1);
	free(s);
	expect_web(e, "one");
	st = load_state(e);
	assert_string_equal(st->applied_commit, c1);
	assert_true(tend_state_failed_has(st, c2));
	tend_state_free(st);

	/* locked, then the input moved to another source without locking again:
	 * the names agree, nix's build refuses */
	assert_int_equal(test_sh(NULL, e->repo, "nix --extra-experimental-features 'nix-command flakes' "
				 "--option substituters '' flake lock 'path:%s' 2>&1", e->repo), 0);
	free(url);
	assert_true(asprintf(&url, "path:%s", dep2) > 0);
	write_flake_with_input(e, url);
	c3 = commit(e, "the input moved, the lock not");
	assert_int_not_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "failed: flake.lock is missing or does not match flake.nix's inputs: "
			"run 'nix flake lock' and commit flake.lock");
	free(out);
	s = current_system(e);
	assert_string_equal(s, s1);
	free(s);
	expect_web(e, "one");

	assert_int_equal(test_sh(NULL, e->repo, "nix --extra-experimental-features 'nix-command flakes' "
				 "--option substituters '' flake lock 'path:%s' 2>&1", e->repo), 0);
	c4 = commit(e, "flake.lock");
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	expect_web(e, "two");
	st = load_state(e);
	assert_string_equal(st->applied_commit, c4);
	tend_state_free(st);
	free(s1);
	free(url);
	free(dep);
	free(dep2);
	free(c1);
	free(c2);
	free(c3);
	free(c4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_committed_tend_link_not_written_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_through_linked_directory_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revision_in_inputs_same_system, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_without_lock_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
