/* Exact revisions (source/export.c): a commit's tree is exported exactly
 * (content, exec bits, symlinks, no .git), through a temporary name, and old
 * revision directories are pruned. The oracle is git's own `git archive`. */
#include "tests/support/support.h"
#include "source/source.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIT "git -c user.name=Test -c user.email=test@example.org -c init.defaultBranch=main"

typedef struct {
	char *tmp;
	char *repo;
	char first[41];
	char second[41];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->tmp = test_tmpdir_make("export");
	f->repo = tend_path_join(f->tmp, "repo");
	assert_int_equal(test_sh(NULL, f->tmp, GIT " init -q repo"), 0);
	test_write_file(f->repo, "fleet.yaml", "fleet: lab\n");
	test_write_file(f->repo, "services/db/service.yaml", "name: db\nhost: db1\n");
	test_write_file(f->repo, "bin/deploy.sh", "#!/bin/sh\necho deploy\n");
	assert_int_equal(test_sh(NULL, f->repo, "chmod 755 bin/deploy.sh && ln -s services/db/service.yaml db-link"
				 " && " GIT " add -A && " GIT " commit -q -m 'first commit'"), 0);
	assert_int_equal(tend_source_resolve(f->first, f->repo, "HEAD"), 0);
	test_write_file(f->repo, "services/web/service.yaml", "name: web\n");
	assert_int_equal(test_sh(NULL, f->repo, "git rm -q fleet.yaml && chmod 644 bin/deploy.sh && "
				 GIT " add -A && " GIT " commit -q -m 'second commit'"), 0);
	assert_int_equal(tend_source_resolve(f->second, f->repo, "main"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	free(f->repo);
	test_tmpdir_remove(f->tmp);
	free(f);
	return 0;
}

/* dest must equal `git archive rev` unpacked: same files, bytes, modes, links. */
static void assert_same_as_archive(fixture *f, const char *rev, const char *dest)
{
	tend_buf out = TEND_BUF_INIT;
	char *ref = tend_path_join(f->tmp, "archive-ref");
	int rc;

	tend_dir_remove_all(ref);
	assert_int_equal(test_sh(NULL, f->tmp, "mkdir %s && git -c tar.umask=0022 -C %s archive %s | tar -x -C %s", ref, f->repo, rev, ref), 0);
	/* diff -r compares content and symlink targets (--no-dereference); find
	 * lists every path with its type and permission bits. */
	rc = test_sh(&out, f->tmp, "diff -r --no-dereference %s %s && "
				 "cd %s && find . -printf '%%y %%m %%p %%l\\n' | sort > ../a.lst && "
				 "cd %s && find . -printf '%%y %%m %%p %%l\\n' | sort > %s/b.lst && "
				 "sed -i 's/^d [0-9]* /d /' %s/a.lst %s/b.lst && diff %s/a.lst %s/b.lst",
				 ref, dest, ref, dest, f->tmp, f->tmp, f->tmp, f->tmp, f->tmp);
	if (rc != 0)
		fprintf(stderr, "export differs from git archive:\n%s", out.ptr ? out.ptr : "");
	assert_int_equal(rc, 0);
	tend_buf_dispose(&out);
	tend_dir_remove_all(ref);
	free(ref);
}

static void test_resolve_revspecs(void **state)
{
	fixture *f = *state;
	char hex[41], shorthash[8];

	assert_int_equal(tend_source_resolve(hex, f->repo, "HEAD~1"), 0);
	assert_string_equal(hex, f->first);
	memcpy(shorthash, f->second, 7);
	shorthash[7] = '\0';
	assert_int_equal(tend_source_resolve(hex, f->repo, shorthash), 0);
	assert_string_equal(hex, f->second);
	assert_int_equal(tend_source_resolve(hex, f->repo, "no-such-branch"), TEND_ENOTFOUND);
	assert_non_null(strstr(tend_error_last(), "no-such-branch"));
	assert_int_equal(tend_source_resolve(hex, "/nonexistent/repo", "HEAD"), TEND_ENOTFOUND);
}

static void test_export_exact(void **state)
{
	fixture *f = *state;
	char *dest = tend_path_join(f->tmp, "out-first");
	char *p;
	char link[256];
	ssize_t n;
	struct stat st;

	assert_int_equal(tend_source_export_commit(f->repo, "HEAD~1", dest), 0);
	assert_same_as_archive(f, f->first, dest);
	/* What a user checks by hand: exec bit, symlink, no .git. */
	p = tend_path_join(dest, "bin/deploy.sh");
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_mode & S_IXUSR);
	free(p);
	p = tend_path_join(dest, "db-link");
	n = readlink(p, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, "services/db/service.yaml");
	free(p);
	p = tend_path_join(dest, ".git");
	assert_false(tend_path_exists(p));
	free(p);
	free(dest);
}

static void test_export_bare_and_replace(void **state)
{
	fixture *f = *state;
	char *bare = tend_path_join(f->tmp, "bare.git");
	char *dest = tend_path_join(f->tmp, "out-replace");
	char *p;
	struct stat st;

	assert_int_equal(test_sh(NULL, f->tmp, "git clone -q --bare repo bare.git"), 0);
	assert_int_equal(tend_source_export_commit(bare, f->first, dest), 0);
	assert_same_as_archive(f, f->first, dest);
	/* Exporting over an existing tree swaps it: fleet.yaml (deleted in the
	 * second commit) must be gone, the exec bit cleared. */
	assert_int_equal(tend_source_export_commit(bare, "main", dest), 0);
	assert_same_as_archive(f, f->second, dest);
	p = tend_path_join(dest, "fleet.yaml");
	assert_false(tend_path_exists(p));
	free(p);
	p = tend_path_join(dest, "bin/deploy.sh");
	assert_int_equal(stat(p, &st), 0);
	assert_false(st.st_mode & S_IXUSR);
	free(p);
	/* No temporary sibling left behind. */
	assert_int_equal(test_sh(NULL, f->tmp, "test -z \"$(ls -d out-replace.tmp-* 2>/dev/null)\""), 0);
	free(dest);
	free(bare);
}

/* A crash between writing and renaming leaves a temporary directory: the
 * previous revision stays in force, the leftover is never used, and prune
 * removes it. */
static void test_crash_before_rename_and_prune(void **state)
{
	fixture *f = *state;
	char *revs = tend_path_join(f->tmp, "revs");
	char *first = NULL, *second = NULL, *leftover = NULL, *p;

	assert_int_equal(tend_dir_create_all(revs, 0755), 0);
	assert_true(asprintf(&first, "%s/%s", revs, f->first) > 0);
	assert_true(asprintf(&second, "%s/%s", revs, f->second) > 0);
	assert_true(asprintf(&leftover, "%s.tmp-Ab12Cd", second) > 0);
	assert_int_equal(tend_source_export_commit(f->repo, f->first, first), 0);
	/* The interrupted export of the second commit: half its files. */
	assert_int_equal(tend_dir_create_all(leftover, 0755), 0);
	test_write_file(leftover, "services/web/service.yaml", "name: w");
	assert_false(tend_path_exists(second));
	assert_same_as_archive(f, f->first, first);

	/* The retried export ignores the leftover and produces the exact tree. */
	assert_int_equal(tend_source_export_commit(f->repo, f->second, second), 0);
	assert_same_as_archive(f, f->second, second);
	assert_same_as_archive(f, f->first, first);

	assert_int_equal(tend_source_prune(revs, f->second, f->first), 0);
	assert_false(tend_path_exists(leftover));
	assert_true(tend_path_exists(first));
	assert_true(tend_path_exists(second));
	assert_int_equal(tend_source_prune(revs, f->second, NULL), 0);
	assert_false(tend_path_exists(first));
	p = tend_path_join(second, "services/web/service.yaml");
	assert_true(tend_path_exists(p));
	free(p);
	/* A missing revs_dir is nothing to prune. */
	p = tend_path_join(f->tmp, "no-revs");
	assert_int_equal(tend_source_prune(p, NULL, NULL), 0);
	free(p);
	free(first);
	free(second);
	free(leftover);
	free(revs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_revspecs),
		cmocka_unit_test(test_export_exact),
		cmocka_unit_test(test_export_bare_and_replace),
		cmocka_unit_test(test_crash_before_rename_and_prune),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
