/* Paths beneath a root (util/beneath.h): plain relative paths only, no
 * symbolic link followed at any component for reading, writing, creating
 * directories or removing, whatever the link points to. */
#include "tests/support/support.h"
#include "util/beneath.h"
#include "util/error.h"
#include "util/fs.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_lexical(void **state)
{
	(void)state;
	assert_int_equal(tend_path_rel_check("a/b.yml"), 0);
	assert_int_equal(tend_path_rel_check(".tend/hosts/x.json"), 0);
	assert_int_not_equal(tend_path_rel_check(""), 0);
	assert_int_not_equal(tend_path_rel_check("/a"), 0);
	assert_int_not_equal(tend_path_rel_check("a//b"), 0);
	assert_int_not_equal(tend_path_rel_check("a/./b"), 0);
	assert_int_not_equal(tend_path_rel_check("../../victim/x.yml"), 0);
	assert_int_not_equal(tend_path_rel_check("a/.."), 0);
	assert_int_not_equal(tend_path_rel_check("a/"), 0);
	assert_string_equal(tend_path_beneath("/srv/root", "/srv/root/etc/x"), "etc/x");
	assert_string_equal(tend_path_beneath("/srv/root/", "/srv/root/etc/x"), "etc/x");
	assert_string_equal(tend_path_beneath("/", "/etc/x"), "etc/x");
	assert_null(tend_path_beneath("/srv/root", "/srv/rootx/etc"));
	assert_null(tend_path_beneath("/srv/root", "/srv/root"));
	assert_null(tend_path_beneath("/srv/root", "/srv/root/../../victim/x.yml"));
	assert_null(tend_path_beneath("/run/tend/secrets", "/etc/shadow"));
}

/* root/inside, and three links: to a directory outside, to a file outside,
 * to a file inside (refused as well: the rule is "no link", not "no escape") */
static void make_tree(char **root, char **outside)
{
	char *p;

	*root = test_tmpdir_make("beneath");
	*outside = test_tmpdir_make("beneath-outside");
	test_write_file(*root, "inside/a.txt", "inside");
	test_write_file(*outside, "secret.txt", "outside");
	p = tend_path_join(*root, "dirlink");
	assert_int_equal(symlink(*outside, p), 0);
	free(p);
	{
		char *target = tend_path_join(*outside, "secret.txt");
		p = tend_path_join(*root, "filelink");
		assert_int_equal(symlink(target, p), 0);
		free(p);
		free(target);
	}
	p = tend_path_join(*root, "inside/link.txt");
	assert_int_equal(symlink("a.txt", p), 0);
	free(p);
}

static void test_read(void **state)
{
	char *root, *outside;
	tend_buf b = TEND_BUF_INIT;

	(void)state;
	make_tree(&root, &outside);
	assert_int_equal(tend_beneath_read(&b, root, "inside/a.txt", 0), 0);
	assert_string_equal(b.ptr, "inside");
	tend_buf_dispose(&b);
	assert_int_equal(tend_beneath_read(&b, root, "dirlink/secret.txt", 0), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "'dirlink' is a symbolic link; tend follows none"));
	assert_int_equal(tend_beneath_read(&b, root, "filelink", 0), TEND_EREFUSED);
	assert_int_equal(tend_beneath_read(&b, root, "inside/link.txt", 0), TEND_EREFUSED);
	assert_int_equal(tend_beneath_read(&b, root, "inside/../../x", 0), TEND_EREFUSED);
	assert_int_equal(tend_beneath_read(&b, root, "inside/none", 0), TEND_ENOTFOUND);
	assert_int_equal(tend_beneath_read(&b, root, "inside", 0), TEND_EINVALID);   /* a directory */
	{
		char *fifo = tend_path_join(root, "inside/fifo");
		assert_int_equal(mkfifo(fifo, 0600), 0);   /* never blocks the read */
		assert_int_equal(tend_beneath_read(&b, root, "inside/fifo", 0), TEND_EINVALID);
		free(fifo);
	}
	assert_null(b.ptr);
	test_tmpdir_remove(outside);
	test_tmpdir_remove(root);
}

static void test_write_and_unlink(void **state)
{
	char *root, *outside, *p, *got;
	struct stat st;
	int fd = -1;

	(void)state;
	make_tree(&root, &outside);
	/* missing directories are created, the file has the exact mode */
	assert_int_equal(tend_beneath_write_atomic(root, "new/dir/f", "x", 1, 0640, (uid_t)-1,
						   (gid_t)-1), 0);
	p = tend_path_join(root, "new/dir/f");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	free(p);
	/* through a linked directory: refused, nothing outside */
	assert_int_equal(tend_beneath_write_atomic(root, "dirlink/planted", "x", 1, 0644,
						   (uid_t)-1, (gid_t)-1), TEND_EREFUSED);
	p = tend_path_join(outside, "planted");
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	/* a link as the file itself is replaced, its target untouched */
	assert_int_equal(tend_beneath_write_atomic(root, "filelink", "new", 3, 0600, (uid_t)-1,
						   (gid_t)-1), 0);
	p = tend_path_join(outside, "secret.txt");
	got = test_read_file(p);
	assert_string_equal(got, "outside");
	free(got);
	/* removing through a linked directory: refused, the target stays */
	assert_int_equal(tend_beneath_unlink(root, "dirlink/secret.txt"), TEND_EREFUSED);
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	assert_int_equal(tend_beneath_unlink(root, "new/dir/f"), 0);
	assert_int_equal(tend_beneath_unlink(root, "new/dir/f"), 0);   /* already gone */
	assert_int_equal(tend_beneath_unlink(root, "nodir/f"), 0);
	/* the descriptor form, as the manifest uses it */
	{
		int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(rfd >= 0);
		assert_int_equal(tend_beneath_open(&fd, rfd, root, "inside/a.txt", O_RDONLY, 0), 0);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(tend_beneath_is_file(rfd, "inside/a.txt"), 1);
		assert_int_equal(tend_beneath_is_file(rfd, "inside/link.txt"), 0);
		assert_int_equal(tend_beneath_is_file(rfd, "dirlink/secret.txt"), 0);
		assert_int_equal(tend_beneath_is_file(rfd, "inside"), 0);
		close(rfd);
	}
	test_tmpdir_remove(outside);
	test_tmpdir_remove(root);
}

/* The same checks through the per-component walk (kernels before 5.6, or a
 * seccomp filter refusing openat2). */
static int walk_only(void **state)
{
	(void)state;
	tend_beneath_walk_only = 1;
	return 0;
}

static int openat2_again(void **state)
{
	(void)state;
	tend_beneath_walk_only = 0;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lexical),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_write_and_unlink),
		cmocka_unit_test_setup_teardown(test_read, walk_only, openat2_again),
		cmocka_unit_test_setup_teardown(test_write_and_unlink, walk_only, openat2_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
