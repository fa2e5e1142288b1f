/* tend secret decrypt through the real binary: age files (binary, armored,
 * passphrase, SSH key), sops documents and --extract, the wrong key (exit 1,
 * "no identity matched" and the recipients), tampering, and usage errors. */
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIX TEND_VECTORS_DIR "/sops-nix"
#define KS TEND_VECTORS_DIR "/sops-keysource"

static int run(tend_proc_result *res, const char *const *args)
{
	memset(res, 0, sizeof(*res));
	assert_int_equal(test_tend(res, NULL, args), 0);
	return res->exit_code;
}

static void test_sops_document_and_extract(void **state)
{
	tend_proc_result res;
	const char *doc[] = { "secret", "decrypt", "-i", NIX "/age-keys.txt", NIX "/secrets.yaml", NULL };
	const char *one[] = { "secret", "decrypt", "-i", NIX "/age-keys.txt", NIX "/secrets.yaml",
			      "--extract", "[\"a_list\"][1]", NULL };
	const char *sub[] = { "secret", "decrypt", "-i", NIX "/age-keys.txt", "--extract", "[\"nested\"]",
			      NIX "/secrets.yaml", NULL };
	const char *missing[] = { "secret", "decrypt", "-i", NIX "/age-keys.txt", "--extract", "[\"nope\"]",
				  NIX "/secrets.yaml", NULL };

	assert_int_equal(run(&res, doc), 0);
	assert_string_equal(res.out.ptr, "test_key: test_value\na_list:\n- e1\n- e3\nnested:\n    test:\n"
					 "        file: another value\n");
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, one), 0);
	assert_string_equal(res.out.ptr, "e3");
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, sub), 0);
	assert_string_equal(res.out.ptr, "test:\n    file: another value\n");
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, missing), 1);
	assert_non_null(strstr(res.err.ptr, "no key \"nope\""));
	tend_proc_result_dispose(&res);
}

static void test_ssh_host_key_and_wrong_key(void **state)
{
	char *dir = test_tmpdir_make("cli-secret"), *key = test_read_file(NIX "/ssh-ed25519-key"), path[1024];
	tend_proc_result res;
	const char *wrong[] = { "secret", "decrypt", "-i", KS "/identity.txt", NIX "/secrets.yaml", NULL };
	const char *args[] = { "secret", "decrypt", "-i", path, NIX "/secrets.yaml", "--extract",
			       "[\"test_key\"]", NULL };

	test_write_file(dir, "host_key", key);
	snprintf(path, sizeof(path), "%s/host_key", dir);
	assert_int_equal(run(&res, args), 0);
	assert_string_equal(res.out.ptr, "test_value");
	tend_proc_result_dispose(&res);

	assert_int_equal(run(&res, wrong), 1);
	assert_int_equal(res.out.size, 0);
	assert_non_null(strstr(res.err.ptr, "tend: error: "));
	assert_non_null(strstr(res.err.ptr, "no identity matched"));
	assert_non_null(strstr(res.err.ptr, "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw"));
	assert_non_null(strstr(res.err.ptr, "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"));
	tend_proc_result_dispose(&res);

	/* a tampered value: exit 1, nothing on stdout */
	{
		char *data = test_read_file(NIX "/secrets.yaml"), *p = strstr(data, "data:") + 5;
		const char *t[] = { "secret", "decrypt", "-i", NIX "/age-keys.txt", path, NULL };
		*p = *p == 'A' ? 'B' : 'A';
		test_write_file(dir, "tampered.yaml", data);
		snprintf(path, sizeof(path), "%s/tampered.yaml", dir);
		assert_int_equal(run(&res, t), 1);
		assert_int_equal(res.out.size, 0);
		assert_non_null(strstr(res.err.ptr, "authentication failed"));
		assert_null(strstr(res.err.ptr, "test_value"));
		tend_proc_result_dispose(&res);
		free(data);
	}
	free(key);
	test_tmpdir_remove(dir);
}

static void test_age_files(void **state)
{
	tend_proc_result res;
	char *plain = test_read_file(KS "/encrypted-key.plain"), *dir = test_tmpdir_make("cli-age");
	char path[1024];
	const char *armored[] = { "secret", "decrypt", "-i", KS "/identity.txt", KS "/encrypted-key.age", NULL };
	const char *ssh[] = { "secret", "decrypt", "-i", path, KS "/encrypted-ssh-key.age", NULL };
	/* a passphrase-protected identity file unlocks the key that opens the file */
	const char *pass[] = { "secret", "decrypt", "--passphrase-file", KS "/encrypted-identity.passphrase",
			       "-i", KS "/encrypted-identity.age", KS "/encrypted-key.age", NULL };
	const char *ident[] = { "secret", "decrypt", "--passphrase-file", KS "/encrypted-identity.passphrase",
				KS "/encrypted-identity.age", NULL };
	const char *extract[] = { "secret", "decrypt", "-i", KS "/identity.txt", KS "/encrypted-key.age",
				  "--extract", "[\"a\"]", NULL };
	char *identity = test_read_file(KS "/identity.txt"), *key = test_read_file(KS "/ssh-identity");

	test_write_file(dir, "ssh", key);
	snprintf(path, sizeof(path), "%s/ssh", dir);
	assert_int_equal(run(&res, armored), 0);
	assert_string_equal(res.out.ptr, plain);
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, ssh), 0);
	assert_string_equal(res.out.ptr, plain);
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, pass), 0);
	assert_string_equal(res.out.ptr, plain);
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, ident), 0);
	assert_non_null(strstr(res.out.ptr, identity));
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, extract), 1);
	assert_non_null(strstr(res.err.ptr, "applies to sops files; this is an age file"));
	tend_proc_result_dispose(&res);
	free(plain);
	free(identity);
	free(key);
	test_tmpdir_remove(dir);
}

static void test_usage(void **state)
{
	tend_proc_result res;
	const char *help[] = { "secret", "--help", NULL };
	const char *noid[] = { "secret", "decrypt", NIX "/secrets.yaml", NULL };
	const char *nofile[] = { "secret", "decrypt", "-i", NIX "/age-keys.txt", NULL };
	const char *notsecret[] = { "secret", "decrypt", "-i", NIX "/age-keys.txt", NIX "/age-keys.txt", NULL };

	assert_int_equal(run(&res, help), 0);
	assert_non_null(strstr(res.out.ptr, "usage: tend secret decrypt"));
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, noid), 1);
	assert_non_null(strstr(res.err.ptr, "no identity"));
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, nofile), 1);
	assert_non_null(strstr(res.err.ptr, "exactly one FILE"));
	tend_proc_result_dispose(&res);
	assert_int_equal(run(&res, notsecret), 1);
	assert_non_null(strstr(res.err.ptr, "neither an age file nor a sops file"));
	tend_proc_result_dispose(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sops_document_and_extract),
		cmocka_unit_test(test_ssh_host_key_and_wrong_key),
		cmocka_unit_test(test_age_files),
		cmocka_unit_test(test_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
