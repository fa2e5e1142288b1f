/* Secrets at boot (reconcile/restore.c) with the real tend, nix and age: `tend secret install`
 * puts the applied commit's secrets back (content, mode) after /run was emptied, with the
 * repository gone (no fetch) and without building; it leaves secrets that are right alone, and
 * with nothing applied it installs nothing. */
#include "tests/reconcile/e2e.h"

#include <sys/stat.h>

/* tend secret install --config FILE; its exit code, its output in *out. */
static int install(e2e *e, char **out)
{
	const char *args[] = { "secret", "install", "--config", e->config, NULL };
	tend_proc_result res;
	int code;

	assert_int_equal(test_tend(&res, NULL, args), 0);
	code = res.exit_code;
	assert_true(asprintf(out, "%s%s", res.out.ptr ? res.out.ptr : "", res.err.ptr ? res.err.ptr : "") >= 0);
	tend_proc_result_dispose(&res);
	return code;
}

static void test_install_from_local_state(void **state)
{
	e2e *e = *state;
	char *out = NULL, *token = NULL, *value, *secrets = NULL, *c2;
	const char *decl = "secrets:\n  - {name: token, file: secrets/web.age, mode: '0440'}\n";
	struct stat sb;

	assert_true(asprintf(&token, "%s/secrets/web/token", e->dir) > 0);
	assert_true(asprintf(&secrets, "%s/secrets", e->dir) > 0);

	/* nothing applied yet */
	assert_int_equal(install(e, &out), 0);
	expect_contains(out, "nothing applied yet");
	free(out);

	encrypt_secret(e, "secrets/web.age", "s3cret-one");
	write_web(e, 200, "one", decl);
	free(commit(e, "web with a token"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	/* a newer commit that is not applied: install keeps to the applied one */
	encrypt_secret(e, "secrets/web.age", "s3cret-two");
	c2 = commit(e, "a new token, not applied yet");

	/* the reboot: /run (the secrets root) is empty; the repository is unreachable */
	assert_int_equal(tend_dir_remove_all(secrets), 0);
	assert_int_equal(test_sh(NULL, e->dir, "mv repo repo.away"), 0);
	assert_int_equal(install(e, &out), 0);
	expect_contains(out, "1 secret, 1 installed");
	free(out);
	value = test_read_file(token);
	assert_string_equal(value, "s3cret-one");
	free(value);
	assert_int_equal(stat(token, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0440);

	/* again: nothing to write */
	assert_int_equal(install(e, &out), 0);
	expect_contains(out, "1 secret, 0 installed");
	free(out);
	/* a tampered one is put back */
	assert_int_equal(chmod(token, 0600), 0);
	test_write_file(e->dir, "secrets/web/token", "tampered");
	assert_int_equal(install(e, &out), 0);
	expect_contains(out, "1 secret, 1 installed");
	free(out);
	value = test_read_file(token);
	assert_string_equal(value, "s3cret-one");
	free(value);
	assert_int_equal(test_sh(NULL, e->dir, "mv repo.away repo"), 0);
	free(token);
	free(secrets);
	free(c2);
}

/* An identity that no longer opens the secret: a clear error naming the file, exit 1. */
static void test_install_error(void **state)
{
	e2e *e = *state;
	char *out = NULL;
	const char *decl = "secrets:\n  - {name: token, file: secrets/web.age}\n";

	encrypt_secret(e, "secrets/web.age", "s3cret-one");
	write_web(e, 200, "one", decl);
	free(commit(e, "web with a token"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	assert_int_equal(test_sh(NULL, e->dir, "age-keygen -o age.key.new 2>/dev/null && mv age.key.new age.key"), 0);
	assert_int_equal(install(e, &out), 1);
	expect_contains(out, "secrets/web.age");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_install_from_local_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_install_error, setup, teardown),
	};
	if (!test_have("nix") || !test_have("git") || !test_have("curl") || !test_have("python3") ||
	    !test_have("age")) {
		fprintf(stderr, "SKIP: needs nix, git, curl, python3 and age\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
