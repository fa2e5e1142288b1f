/* A commit's manifests read from a real git repository's objects (source/docs.c): fleet.yaml
 * and each services/<name>/service.yaml with their bytes, a directory without one listed with
 * no data, nothing written anywhere; a link in place of a manifest and an oversized one
 * refused; an unknown commit an error naming it. */
#include "tests/support/support.h"
#include "source/source.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const tend_source_doc *find(const tend_source_doc *docs, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(docs[i].name, name))
			return &docs[i];
	return NULL;
}

static void test_read(void **state)
{
	char *dir = test_tmpdir_make("source-docs"), *c1, *c2, *c3;
	tend_source_doc fleet, *docs = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(test_sh(NULL, dir, "git init -q -b main ."), 0);
	test_write_file(dir, "fleet.yaml", "fleet: lab\n");
	test_write_file(dir, "services/web/service.yaml", "name: web\nhost: a\n");
	test_write_file(dir, "services/db/service.yaml", "name: db\nhost: b\n");
	test_write_file(dir, "services/empty/README", "no manifest here\n");
	test_write_file(dir, "README.md", "not read\n");
	c1 = test_git_commit_all(dir, "two services");
	/* the working tree moves on: what is read is the commit's */
	test_write_file(dir, "services/web/service.yaml", "name: web\nhost: changed\n");

	assert_int_equal(tend_source_read_manifests(&fleet, &docs, &n, dir, c1), 0);
	assert_string_equal(fleet.data, "fleet: lab\n");
	assert_int_equal(fleet.len, 11);
	assert_int_equal(n, 3);
	assert_string_equal(find(docs, n, "web")->data, "name: web\nhost: a\n");
	assert_string_equal(find(docs, n, "db")->data, "name: db\nhost: b\n");
	assert_null(find(docs, n, "empty")->data);
	tend_source_docs_free(docs, n);
	free(fleet.data);

	/* a link where a manifest should be */
	assert_int_equal(test_sh(NULL, dir, "rm services/db/service.yaml && "
				 "ln -s ../../fleet.yaml services/db/service.yaml"), 0);
	c2 = test_git_commit_all(dir, "db: its manifest is a link");
	assert_int_equal(tend_source_read_manifests(&fleet, &docs, &n, dir, c2), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "services/db/service.yaml: not a regular file"));
	assert_null(fleet.data);
	assert_null(docs);

	/* more than 1 MiB */
	assert_int_equal(test_sh(NULL, dir, "rm services/db/service.yaml && "
				 "head -c 1100000 /dev/zero | tr '\\0' x > services/db/service.yaml"), 0);
	c3 = test_git_commit_all(dir, "db: its manifest is huge");
	assert_int_equal(tend_source_read_manifests(&fleet, &docs, &n, dir, c3), TEND_ELIMIT);
	assert_non_null(strstr(tend_error_last(), "services/db/service.yaml: 1100000 bytes"));

	assert_int_equal(tend_source_read_manifests(&fleet, &docs, &n, dir,
						    "0123456789abcdef0123456789abcdef01234567"),
			 TEND_ENOTFOUND);
	assert_non_null(strstr(tend_error_last(), "0123456789abcdef0123456789abcdef01234567"));
	free(c1);
	free(c2);
	free(c3);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
