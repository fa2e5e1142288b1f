/* What a commit wants, read and written beneath the exported revision
 * without following a committed symbolic link (issue 17 F2, F3): end to end
 * with the real tend binary, git and age. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_committed_tend_link_not_written_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_through_linked_directory_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
