/* Trust checks (source/verify.c) on commits made and signed by the real git
 * (gpg.format=ssh) with keys from ssh-keygen, pushed to a bare repository
 * and fetched over file:// into the mirror. */
#include "tests/support/support.h"
#include "source/source.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIT "git -c user.name=Operator -c user.email=op@example.org -c init.defaultBranch=main " \
	"-c gpg.format=ssh -c commit.gpgsign=false"

typedef struct {
	char *tmp;
	char *work;     /* the operator's checkout */
	char *url;      /* file:// of the bare remote */
	char *signers;  /* allowed_signers listing only key.pub */
	tend_source *src;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	char *mirror;

	f->tmp = test_tmpdir_make("verify");
	f->work = tend_path_join(f->tmp, "work");
	f->signers = tend_path_join(f->tmp, "allowed_signers");
	assert_true(asprintf(&f->url, "file://%s/remote.git", f->tmp) > 0);
	assert_int_equal(test_sh(NULL, f->tmp,
				 "ssh-keygen -q -t ed25519 -N '' -C op -f key && "
				 "ssh-keygen -q -t ed25519 -N '' -C intruder -f intruder && "
				 "chmod 600 key intruder && "
				 "echo \"op@example.org namespaces=\\\"git\\\" $(cut -d' ' -f1,2 key.pub)\" > allowed_signers && "
				 "git init -q --bare -b main remote.git && " GIT " init -q work && "
				 "cd work && git remote add origin ../remote.git"), 0);
	mirror = tend_path_join(f->tmp, "state/mirror.git");
	opts.url = f->url;
	opts.branch = "main";
	opts.mirror_dir = mirror;
	opts.allowed_signers = f->signers;
	assert_int_equal(tend_source_open(&f->src, &opts), 0);
	free(mirror);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tend_source_free(f->src);
	free(f->work);
	free(f->url);
	free(f->signers);
	test_tmpdir_remove(f->tmp);
	free(f);
	return 0;
}

/* Commit a file change; key: NULL (unsigned), "key" or "intruder". out gets the hash. */
static void commit(fixture *f, char out[41], const char *file, const char *subject, const char *key)
{
	char *sign = NULL;

	test_write_file(f->work, file, subject);
	if (key)
		assert_true(asprintf(&sign, "-c user.signingkey=%s/%s commit -S", f->tmp, key) > 0);
	else
		sign = strdup("commit");
	assert_int_equal(test_sh(NULL, f->work, GIT " add -A && " GIT " %s -q -m '%s'", sign, subject), 0);
	assert_int_equal(tend_source_resolve(out, f->work, "HEAD"), 0);
	free(sign);
}

static void push_and_poll(fixture *f, const char *expect_head)
{
	char head[41];

	assert_int_equal(test_sh(NULL, f->work, "git push -q --force origin HEAD:main"), 0);
	assert_int_equal(tend_source_poll(f->src, head, NULL), 0);
	assert_string_equal(head, expect_head);
}

static void assert_refused(const char *commit_hex, const char *subject, const char *cause)
{
	char *want = NULL;

	assert_true(asprintf(&want, "commit %.7s \"%s\": %s", commit_hex, subject, cause) > 0);
	if (strncmp(tend_error_last(), want, strlen(want)) != 0)
		fail_msg("error '%s' does not start with '%s'", tend_error_last(), want);
	free(want);
}

static void test_valid_signed_range_accepted(void **state)
{
	fixture *f = *state;
	char c1[41], c2[41], c3[41];

	commit(f, c1, "fleet.yaml", "initial fleet", "key");
	push_and_poll(f, c1);
	assert_int_equal(tend_source_verify_range(f->src, NULL, c1, 0), 0);
	commit(f, c2, "services/db.yaml", "add postgres", "key");
	commit(f, c3, "services/cloud.yaml", "add nextcloud", "key");
	push_and_poll(f, c3);
	assert_int_equal(tend_source_verify_range(f->src, c1, c3, 0), 0);
	/* Unchanged head: nothing to check. */
	assert_int_equal(tend_source_verify_range(f->src, c3, c3, 0), 0);
}

static void test_unsigned_in_middle_refused(void **state)
{
	fixture *f = *state;
	char c1[41], c2[41], c3[41];

	commit(f, c1, "fleet.yaml", "initial fleet", "key");
	commit(f, c2, "services/db.yaml", "sneak in a change", NULL);
	commit(f, c3, "services/cloud.yaml", "add nextcloud", "key");
	push_and_poll(f, c3);
	assert_int_equal(tend_source_verify_range(f->src, c1, c3, 0), TEND_EREFUSED);
	assert_refused(c2, "sneak in a change", "not signed");
	/* The head alone is fine; the range is not. */
	assert_int_equal(tend_source_verify_range(f->src, c2, c3, 0), 0);
}

static void test_unsigned_second_parent_refused(void **state)
{
	fixture *f = *state;
	char c1[41], side[41], merge[41];

	commit(f, c1, "fleet.yaml", "initial fleet", "key");
	assert_int_equal(test_sh(NULL, f->work, "git checkout -q -b side"), 0);
	commit(f, side, "side.yaml", "side change", NULL);
	assert_int_equal(test_sh(NULL, f->work, "git checkout -q main && "
				 GIT " -c user.signingkey=%s/key commit -S -q --allow-empty -m other", f->tmp), 0);
	assert_int_equal(test_sh(NULL, f->work, GIT " -c user.signingkey=%s/key merge -q -S --no-ff -m 'merge side' side", f->tmp), 0);
	assert_int_equal(tend_source_resolve(merge, f->work, "HEAD"), 0);
	push_and_poll(f, merge);
	assert_int_equal(tend_source_verify_range(f->src, c1, merge, 0), TEND_EREFUSED);
	assert_refused(side, "side change", "not signed");
}

static void test_unlisted_key_refused(void **state)
{
	fixture *f = *state;
	char c1[41], c2[41], *want = NULL;
	tend_buf fp = TEND_BUF_INIT;

	commit(f, c1, "fleet.yaml", "initial fleet", "key");
	commit(f, c2, "services/db.yaml", "add postgres", "intruder");
	push_and_poll(f, c2);
	assert_int_equal(tend_source_verify_range(f->src, c1, c2, 0), TEND_EREFUSED);
	assert_int_equal(test_sh(&fp, f->tmp, "ssh-keygen -l -E sha256 -f intruder.pub | cut -d' ' -f2 | tr -d '\\n'"), 0);
	assert_true(asprintf(&want, "signed by a key not in allowed_signers (%s)", fp.ptr) > 0);
	assert_refused(c2, "add postgres", want);
	/* Also as the first commit ever applied. */
	assert_int_equal(tend_source_verify_range(f->src, NULL, c2, 0), TEND_EREFUSED);
	assert_refused(c2, "add postgres", want);
	free(want);
	tend_buf_dispose(&fp);
}

static void test_tampered_signature_refused(void **state)
{
	fixture *f = *state;
	char c1[41], c2[41], forged[41];
	tend_buf out = TEND_BUF_INIT;

	commit(f, c1, "fleet.yaml", "initial fleet", "key");
	commit(f, c2, "services/db.yaml", "add postgres", "key");
	/* Same signature header, changed message: what an attacker rewriting a
	 * signed commit produces. */
	assert_int_equal(test_sh(&out, f->work, "git cat-file commit HEAD | sed 's/^add postgres$/add postgres and a backdoor/' "
				 "| git hash-object -t commit -w --stdin | tr -d '\\n'"), 0);
	assert_int_equal(strlen(out.ptr), 40);
	memcpy(forged, out.ptr, 41);
	assert_string_not_equal(forged, c2);
	assert_int_equal(test_sh(NULL, f->work, "git reset -q --hard %s", forged), 0);
	push_and_poll(f, forged);
	assert_int_equal(tend_source_verify_range(f->src, c1, forged, 0), TEND_EREFUSED);
	assert_refused(forged, "add postgres and a backdoor", "bad signature (key SHA256:");
	tend_buf_dispose(&out);
}

static void test_force_push_refused(void **state)
{
	fixture *f = *state;
	char c1[41], c2[41], c3[41];

	commit(f, c1, "fleet.yaml", "initial fleet", "key");
	commit(f, c2, "services/db.yaml", "fix CVE", "key");
	push_and_poll(f, c2);
	assert_int_equal(tend_source_verify_range(f->src, c1, c2, 0), 0);
	/* An attacker (or a mistake) moves the branch back to the older commit. */
	assert_int_equal(test_sh(NULL, f->work, "git reset -q --hard %s", c1), 0);
	push_and_poll(f, c1);
	assert_int_equal(tend_source_verify_range(f->src, c2, c1, 0), TEND_EREFUSED);
	{
		char *want = NULL;

		assert_true(asprintf(&want, "branch main moved from %.7s to %.7s, which does not descend from it "
				     "(force-push?); refusing", c2, c1) > 0);
		if (strncmp(tend_error_last(), want, strlen(want)) != 0)
			fail_msg("error '%s' does not start with '%s'", tend_error_last(), want);
		free(want);
	}
	/* Allowed once by the operator: accepted, the head is signed. */
	assert_int_equal(tend_source_verify_range(f->src, c2, c1, 1), 0);
	/* A rewritten history (diverged) is refused too, and with permission
	 * its new commits are still checked. */
	commit(f, c3, "services/web.yaml", "rewrite", NULL);
	push_and_poll(f, c3);
	assert_int_equal(tend_source_verify_range(f->src, c2, c3, 0), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "does not descend"));
	assert_int_equal(tend_source_verify_range(f->src, c2, c3, 1), TEND_EREFUSED);
	assert_refused(c3, "rewrite", "not signed");
}

/* Issue 17 F10: a key whose valid-before is past signs a commit whose
 * committer date is set back into the window: refused by this host's clock.
 * Fails on 247ba6c (accepted: only the commit date was checked). */
static void test_expired_key_backdated_commit_refused(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	char c1[41], head[41], *mirror = tend_path_join(f->tmp, "state/mirror3.git");
	char *signers = tend_path_join(f->tmp, "expired_signers");

	assert_int_equal(test_sh(NULL, f->tmp,
				 "echo \"op@example.org namespaces=\\\"git\\\",valid-after=\\\"20190101Z\\\","
				 "valid-before=\\\"20200101Z\\\" $(cut -d' ' -f1,2 key.pub)\" > expired_signers"), 0);
	opts.url = f->url;
	opts.branch = "main";
	opts.mirror_dir = mirror;
	opts.allowed_signers = signers;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	test_write_file(f->work, "fleet.yaml", "backdated");
	assert_int_equal(test_sh(NULL, f->work, GIT " add -A && GIT_COMMITTER_DATE='2019-06-01T00:00:00Z' "
				 "GIT_AUTHOR_DATE='2019-06-01T00:00:00Z' " GIT " -c user.signingkey=%s/key "
				 "commit -S -q -m backdated", f->tmp), 0);
	assert_int_equal(tend_source_resolve(c1, f->work, "HEAD"), 0);
	assert_int_equal(test_sh(NULL, f->work, "git push -q --force origin HEAD:main"), 0);
	assert_int_equal(tend_source_poll(src, head, NULL), 0);
	assert_int_equal(tend_source_verify_range(src, NULL, c1, 0), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "is expired (valid-before) by this host's clock"));
	tend_source_free(src);
	free(signers);
	free(mirror);
}

static void test_without_allowed_signers(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *plain = NULL;
	char c1[41], c2[41], head[41], *mirror = tend_path_join(f->tmp, "state/mirror2.git");

	opts.url = f->url;
	opts.mirror_dir = mirror;
	assert_int_equal(tend_source_open(&plain, &opts), 0);
	commit(f, c1, "fleet.yaml", "initial fleet", NULL);
	commit(f, c2, "services/db.yaml", "add postgres", NULL);
	assert_int_equal(test_sh(NULL, f->work, "git push -q origin HEAD:main"), 0);
	assert_int_equal(tend_source_poll(plain, head, NULL), 0);
	assert_int_equal(tend_source_verify_range(plain, c1, c2, 0), 0);
	/* Fast-forward is enforced regardless of signatures. */
	assert_int_equal(tend_source_verify_range(plain, c2, c1, 0), TEND_EREFUSED);
	/* A commit the mirror does not have. */
	assert_int_equal(tend_source_verify_range(plain, c1, "0123456789012345678901234567890123456789", 0), TEND_ENOTFOUND);
	assert_int_equal(tend_source_verify_range(plain, c1, "HEAD", 0), TEND_EINVALID);
	tend_source_free(plain);
	free(mirror);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid_signed_range_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsigned_in_middle_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsigned_second_parent_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlisted_key_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_signature_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_force_push_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_allowed_signers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_key_backdated_commit_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
