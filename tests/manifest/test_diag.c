/* Diagnostics: formatting with and without positions, sorting by file, line
 * and column, deduplication, ownership of file names, and the "did you mean"
 * suggestions by edit distance. */
#include "tests/support/support.h"
#include "manifest/internal.h"

#include <stdlib.h>
#include <string.h>

static void expect_format(const tend_diag *d, const char *expected)
{
	char *s = tend_diag_format(d);

	assert_non_null(s);
	assert_string_equal(s, expected);
	free(s);
}

static void test_format(void **state)
{
	tend_diags d = { NULL, 0, 0, 0 };
	tend_pos full = { "services/db/service.yaml", 4, 3 }, line_only = { "fleet.yaml", 7, 0 },
		 file_only = { "fleet.yaml", 0, 0 };

	(void)state;
	tend_diags_add(&d, TEND_DIAG_ERROR, &full, "missing required field '%s'", "host");
	tend_diags_add(&d, TEND_DIAG_WARNING, &line_only, "odd");
	tend_diags_add(&d, TEND_DIAG_ERROR, &file_only, "file not found");
	tend_diags_add(&d, TEND_DIAG_ERROR, NULL, "no position");
	assert_int_equal(d.count, 4);
	assert_int_equal(d.errors, 3);
	expect_format(&d.items[0], "services/db/service.yaml:4:3: error: missing required field 'host'");
	expect_format(&d.items[1], "fleet.yaml:7: warning: odd");
	expect_format(&d.items[2], "fleet.yaml: error: file not found");
	expect_format(&d.items[3], "<fleet>: error: no position");
	tend_diags_dispose(&d);
	assert_int_equal(d.count, 0);
	tend_diags_dispose(&d);   /* twice is harmless */
}

static void test_sort_and_dedup(void **state)
{
	tend_diags d = { NULL, 0, 0, 0 };
	char file[32];
	tend_pos a = { "services/b/service.yaml", 10, 1 }, b = { "services/b/service.yaml", 2, 9 },
		 c = { "fleet.yaml", 30, 1 }, e = { "services/b/service.yaml", 2, 3 };

	(void)state;
	/* the diagnostics own a copy of the file name */
	strcpy(file, "services/a/service.yaml");
	{
		tend_pos p = { file, 1, 1 };
		tend_diags_add(&d, TEND_DIAG_ERROR, &p, "in a");
	}
	memset(file, 'x', sizeof(file) - 1);
	tend_diags_add(&d, TEND_DIAG_ERROR, &a, "ten");
	tend_diags_add(&d, TEND_DIAG_ERROR, &b, "two-nine");
	tend_diags_add(&d, TEND_DIAG_ERROR, &c, "fleet");
	tend_diags_add(&d, TEND_DIAG_ERROR, &e, "two-three");
	tend_diags_add(&d, TEND_DIAG_ERROR, &b, "two-nine");   /* the same problem found twice */
	assert_int_equal(d.errors, 6);
	tend_diags_sort(&d);
	assert_int_equal(d.count, 5);
	assert_int_equal(d.errors, 5);
	assert_string_equal(d.items[0].message, "fleet");
	assert_string_equal(d.items[1].message, "in a");
	assert_string_equal(d.items[1].pos.file, "services/a/service.yaml");
	assert_string_equal(d.items[2].message, "two-three");
	assert_string_equal(d.items[3].message, "two-nine");
	assert_string_equal(d.items[4].message, "ten");
	tend_diags_dispose(&d);
}

static void test_edit_distance(void **state)
{
	(void)state;
	assert_int_equal(tend_edit_distance("host", "host"), 0);
	assert_int_equal(tend_edit_distance("hots", "host"), 1);       /* swap */
	assert_int_equal(tend_edit_distance("hst", "host"), 1);
	assert_int_equal(tend_edit_distance("hoost", "host"), 1);
	assert_int_equal(tend_edit_distance("", "abc"), 3);
	assert_int_equal(tend_edit_distance("kitten", "sitting"), 3);
	assert_true(tend_edit_distance("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a") > 100);
}

static void test_suggest(void **state)
{
	const char *keys[] = { "depends_on", "database", "health", "host", "name", NULL };

	(void)state;
	assert_string_equal(tend_suggest_list("depend_on", keys), "depends_on");
	assert_string_equal(tend_suggest_list("hots", keys), "host");
	assert_string_equal(tend_suggest_list("helth", keys), "health");
	assert_string_equal(tend_suggest_list("databse", keys), "database");
	assert_null(tend_suggest_list("frobnicate", keys));
	assert_null(tend_suggest_list("x", keys));                /* one letter is no evidence */
	assert_null(tend_suggest_list("settings", keys));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_sort_and_dedup),
		cmocka_unit_test(test_edit_distance),
		cmocka_unit_test(test_suggest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
