/* Re-creatable outputs (util/rewrite.h): written with the exact mode, left
 * alone when they already hold the bytes, replaced (a new file, never the old
 * one written in place) when they differ, and a link in their place replaced,
 * not followed. */
#include "tests/support/support.h"
#include "util/rewrite.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ino_t inode_of(const char *path, mode_t *mode)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	if (mode)
		*mode = st.st_mode & 07777;
	return st.st_ino;
}

static void test_write_keep_replace(void **state)
{
	char *dir = test_tmpdir_make("rewrite"), *path = tend_path_join(dir, "h.json"), *got;
	mode_t mode;
	ino_t first, again;

	(void)state;
	umask(077);   /* the mode must not depend on it */
	assert_int_equal(tend_file_rewrite(path, "{\"a\": 1}\n", 9, 0644), 0);
	got = test_read_file(path);
	assert_string_equal(got, "{\"a\": 1}\n");
	free(got);
	first = inode_of(path, &mode);
	assert_int_equal(mode, 0644);

	/* the same bytes: nothing written, the very same file */
	assert_int_equal(tend_file_rewrite(path, "{\"a\": 1}\n", 9, 0644), 0);
	again = inode_of(path, NULL);
	assert_true(first == again);

	/* other bytes of the same length: replaced by a new file */
	assert_int_equal(tend_file_rewrite(path, "{\"a\": 2}\n", 9, 0644), 0);
	got = test_read_file(path);
	assert_string_equal(got, "{\"a\": 2}\n");
	free(got);
	again = inode_of(path, NULL);
	assert_true(first != again);

	/* the same bytes with another mode: rewritten with that mode */
	assert_int_equal(tend_file_rewrite(path, "{\"a\": 2}\n", 9, 0600), 0);
	inode_of(path, &mode);
	assert_int_equal(mode, 0600);

	/* empty content */
	assert_int_equal(tend_file_rewrite(path, "", 0, 0600), 0);
	got = test_read_file(path);
	assert_string_equal(got, "");
	free(got);
	umask(022);
	free(path);
	test_tmpdir_remove(dir);
}

static void test_link_replaced_not_followed(void **state)
{
	char *dir = test_tmpdir_make("rewrite-link"), *path = tend_path_join(dir, "h.json"),
	     *target = tend_path_join(dir, "elsewhere"), *got;
	struct stat st;

	(void)state;
	test_write_file(dir, "elsewhere", "keep\n");
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(tend_file_rewrite(path, "keep\n", 5, 0644), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));   /* the link itself was replaced */
	got = test_read_file(target);
	assert_string_equal(got, "keep\n");
	free(got);
	free(target);
	free(path);
	test_tmpdir_remove(dir);
}

static void test_missing_directory(void **state)
{
	char *dir = test_tmpdir_make("rewrite-missing"), *path = tend_path_join(dir, "no/such/h.json");

	(void)state;
	assert_true(tend_file_rewrite(path, "x", 1, 0644) < 0);
	assert_non_null(strstr(tend_error_last(), "h.json"));
	free(path);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_keep_replace),
		cmocka_unit_test(test_link_replaced_not_followed),
		cmocka_unit_test(test_missing_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
