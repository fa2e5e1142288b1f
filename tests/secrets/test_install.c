/* The secrets store: generations written whole under <root>.d and made current by renaming
 * the link <root> (as sops-nix keeps /run/secrets), owner, group and mode as declared (real
 * users nobody and daemon when the tests run as root), a rollback as the link put back,
 * pruning, an older tend's plain directory replaced, bad names refused with nothing left, and
 * the ramfs: mounted when tend may, refused naming the file system when it may not. */
#include "tests/support/support.h"
#include "secrets/install.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

static char *link_target(const char *root)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(root, buf, sizeof(buf) - 1);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

static char *read_at(const char *root, const char *rel)
{
	char *path = NULL, *text;

	assert_true(asprintf(&path, "%s/%s", root, rel) > 0);
	text = test_read_file(path);
	free(path);
	return text;
}

static void expect_mode(const char *root, const char *rel, mode_t mode, uid_t uid, gid_t gid)
{
	char *path = NULL;
	struct stat st;

	assert_true(asprintf(&path, "%s/%s", root, rel) > 0);
	assert_int_equal(stat(path, &st), 0);
	if ((st.st_mode & 07777) != mode)
		fail_msg("%s: mode %o, expected %o", path, st.st_mode & 07777, mode);
	if (uid != (uid_t)-1)
		assert_int_equal(st.st_uid, uid);
	if (gid != (gid_t)-1)
		assert_int_equal(st.st_gid, gid);
	free(path);
}

static int collect(void *payload, const char *data, size_t len)
{
	tend_buf_printf(payload, "[%.*s]", (int)len, data);
	return 0;
}

static void test_generations(void **state)
{
	char *dir = test_tmpdir_make("secrets-store"), *root = NULL, *want = NULL, *t, *text;
	int as_root = geteuid() == 0;
	uid_t nobody = (uid_t)-1, daemon_uid = (uid_t)-1;
	gid_t nobody_gid = (gid_t)-1, daemon_gid = (gid_t)-1;
	struct passwd *pw;
	unsigned gen, cur, g1;

	(void)state;
	if (as_root) {
		/* getpwnam's result is overwritten by the next call: copy the ids */
		assert_non_null(pw = getpwnam("nobody"));
		nobody = pw->pw_uid;
		nobody_gid = pw->pw_gid;
		assert_non_null(pw = getpwnam("daemon"));
		daemon_uid = pw->pw_uid;
		daemon_gid = getgrnam("daemon")->gr_gid;
	}
	assert_true(asprintf(&root, "%s/run/tend/secrets", dir) > 0);
	{
		tend_secret_file one[3] = {
			{ "db/password", "hunter2\n", 8, 0400, nobody, nobody_gid },
			{ "db/tls.key", "KEY", 3, 0440, daemon_uid, daemon_gid },
			{ "web/token", "t0k", 3, 0, (uid_t)-1, (gid_t)-1 },
		};

		assert_int_equal(tend_secrets_generation_current(&cur, root), 0);
		assert_int_equal(cur, 0);
		assert_int_equal(tend_secrets_store_prepare(root, TEND_SECRETS_DISK), 0);
		assert_int_equal(tend_secrets_generation_write(&g1, root, one, 3), 0);
		assert_true(g1 > 0);
		/* written, not current yet */
		assert_null(link_target(root));
		assert_int_equal(tend_secrets_generation_switch(root, g1), 0);
	}
	assert_true(asprintf(&want, "%s.d/%u", root, g1) > 0);
	t = link_target(root);
	assert_string_equal(t, want);
	free(t);
	free(want);
	assert_int_equal(tend_secrets_generation_current(&cur, root), 0);
	assert_int_equal(cur, g1);
	text = read_at(root, "db/password");
	assert_string_equal(text, "hunter2\n");
	free(text);
	expect_mode(root, "db/password", 0400, nobody, nobody_gid);
	expect_mode(root, "db/tls.key", 0440, daemon_uid, daemon_gid);
	expect_mode(root, "web/token", 0400, (uid_t)-1, (gid_t)-1);
	/* traversable by the services' users, not listable by others */
	expect_mode(root, "db", 0751, (uid_t)-1, (gid_t)-1);
	expect_mode(root, ".", 0751, (uid_t)-1, (gid_t)-1);

	/* a change: the new set whole, a removed secret gone, the old generation kept */
	{
		tend_secret_file two[1] = { { "db/password", "rotated", 7, 0400, nobody, nobody_gid } };

		assert_int_equal(tend_secrets_generation_write(&gen, root, two, 1), 0);
		assert_true(gen > g1);
		text = read_at(root, "db/password");
		assert_string_equal(text, "hunter2\n");   /* not current before the switch */
		free(text);
		assert_int_equal(tend_secrets_generation_switch(root, gen), 0);
	}
	text = read_at(root, "db/password");
	assert_string_equal(text, "rotated");
	free(text);
	assert_null(read_at(root, "web/token"));
	/* a rollback: the previous generation linked again */
	assert_int_equal(tend_secrets_generation_switch(root, g1), 0);
	text = read_at(root, "web/token");
	assert_string_equal(text, "t0k");
	free(text);
	assert_int_equal(tend_secrets_generation_switch(root, gen), 0);
	assert_int_equal(tend_secrets_generation_prune(root, gen, 0), 0);
	assert_true(asprintf(&want, "%s.d/%u", root, g1) > 0);
	assert_int_equal(access(want, F_OK), -1);
	/* a generation that is gone (a reboot emptied the ramfs) is not linked to */
	assert_int_equal(tend_secrets_generation_switch(root, g1), TEND_ENOTFOUND);
	assert_non_null(strstr(tend_error_last(), "generation"));
	free(want);
	assert_int_equal(tend_secrets_generation_current(&cur, root), 0);
	assert_int_equal(cur, gen);
	/* no secrets at all: the link goes */
	assert_int_equal(tend_secrets_generation_switch(root, 0), 0);
	assert_int_equal(access(root, F_OK), -1);
	free(root);
	test_tmpdir_remove(dir);
}

/* An older tend kept plain files in a directory at <root>: they become the first generation
 * (mode kept), so the first change after the upgrade has them to roll back to. */
static void test_plain_directory_migrated(void **state)
{
	char *dir = test_tmpdir_make("secrets-legacy"), *root = NULL, *path = NULL, *text;
	tend_secret_file f[1] = { { "web/token", "new", 3, 0400, (uid_t)-1, (gid_t)-1 } };
	unsigned before, gen;
	struct stat st;

	(void)state;
	assert_true(asprintf(&root, "%s/secrets", dir) > 0);
	test_write_file(dir, "secrets/web/token", "old");
	assert_true(asprintf(&path, "%s/web/token", root) > 0);
	assert_int_equal(chmod(path, 0440), 0);
	free(path);
	assert_int_equal(tend_secrets_store_prepare(root, TEND_SECRETS_DISK), 0);
	assert_int_equal(lstat(root, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(tend_secrets_generation_current(&before, root), 0);
	assert_true(before > 0);
	text = read_at(root, "web/token");
	assert_string_equal(text, "old");
	free(text);
	expect_mode(root, "web/token", 0440, (uid_t)-1, (gid_t)-1);
	/* a change, then its rollback: the old value is back */
	assert_int_equal(tend_secrets_generation_write(&gen, root, f, 1), 0);
	assert_int_equal(tend_secrets_generation_switch(root, gen), 0);
	text = read_at(root, "web/token");
	assert_string_equal(text, "new");
	free(text);
	assert_int_equal(tend_secrets_generation_switch(root, before), 0);
	text = read_at(root, "web/token");
	assert_string_equal(text, "old");
	free(text);
	free(root);
	test_tmpdir_remove(dir);
}

/* A reboot empties the ramfs: the numbers go on from the clock, so a generation recorded
 * before it is missing afterwards rather than another one under its number. */
static void test_numbers_not_reused(void **state)
{
	char *dir = test_tmpdir_make("secrets-reboot"), *root = NULL, *store = NULL;
	tend_secret_file f[1] = { { "web/token", "x", 1, 0400, (uid_t)-1, (gid_t)-1 } };
	unsigned first, second;

	(void)state;
	assert_true(asprintf(&root, "%s/secrets", dir) > 0);
	assert_true(asprintf(&store, "%s/secrets.d", dir) > 0);
	assert_int_equal(tend_secrets_store_prepare(root, TEND_SECRETS_DISK), 0);
	assert_int_equal(tend_secrets_generation_write(&first, root, f, 1), 0);
	assert_true(first >= (unsigned)time(NULL) - 5);
	assert_int_equal(tend_secrets_generation_switch(root, first), 0);
	/* the reboot (which takes more than the clock's second) */
	assert_int_equal(tend_dir_remove_all(store), 0);
	sleep(1);
	assert_int_equal(tend_secrets_store_prepare(root, TEND_SECRETS_DISK), 0);
	assert_int_equal(tend_secrets_generation_write(&second, root, f, 1), 0);
	assert_true(second > first);
	assert_int_equal(tend_secrets_generation_switch(root, first), TEND_ENOTFOUND);
	free(store);
	free(root);
	test_tmpdir_remove(dir);
}

/* A secret added to the current generation (its owner exists only after the switch): its
 * directory as a written generation's; the values of every generation for masking. */
static void test_add_and_values(void **state)
{
	char *dir = test_tmpdir_make("secrets-add"), *root = NULL, *text;
	tend_secret_file one[1] = { { "web/token", "first", 5, 0400, (uid_t)-1, (gid_t)-1 } };
	tend_secret_file two[1] = { { "web/token", "second", 6, 0400, (uid_t)-1, (gid_t)-1 } };
	tend_secret_file late = { "grafana/db-password", "late", 4, 0400, (uid_t)-1, (gid_t)-1 };
	tend_buf seen = TEND_BUF_INIT;
	unsigned g1, g2;

	(void)state;
	assert_true(asprintf(&root, "%s/secrets", dir) > 0);
	assert_int_equal(tend_secrets_current_add(root, &late), TEND_ENOTFOUND);
	assert_int_equal(tend_secrets_store_prepare(root, TEND_SECRETS_DISK), 0);
	assert_int_equal(tend_secrets_generation_write(&g1, root, one, 1), 0);
	assert_int_equal(tend_secrets_generation_write(&g2, root, two, 1), 0);
	assert_int_equal(tend_secrets_generation_switch(root, g2), 0);
	assert_int_equal(tend_secrets_current_add(root, &late), 0);
	text = read_at(root, "grafana/db-password");
	assert_string_equal(text, "late");
	free(text);
	expect_mode(root, "grafana", 0751, (uid_t)-1, (gid_t)-1);
	assert_int_equal(tend_secrets_store_values(root, collect, &seen), 0);
	assert_non_null(strstr(seen.ptr, "[first]"));
	assert_non_null(strstr(seen.ptr, "[second]"));
	assert_non_null(strstr(seen.ptr, "[late]"));
	tend_buf_dispose(&seen);
	/* a written generation that did not become current goes alone */
	assert_int_equal(tend_secrets_generation_remove(root, g1), 0);
	text = read_at(root, "web/token");
	assert_string_equal(text, "second");
	free(text);
	free(root);
	test_tmpdir_remove(dir);
}

static void test_bad_names(void **state)
{
	char *dir = test_tmpdir_make("secrets-bad"), *root = NULL, *gdir = NULL;
	tend_buf ls = TEND_BUF_INIT;
	const char *bad[] = { "../etc/passwd", "web", "web/../../x", "a/b/c", "/abs/x", "web/", NULL };
	unsigned gen;
	size_t i;

	(void)state;
	assert_true(asprintf(&root, "%s/secrets", dir) > 0);
	assert_true(asprintf(&gdir, "%s/secrets.d", dir) > 0);
	assert_int_equal(tend_secrets_store_prepare(root, TEND_SECRETS_DISK), 0);
	for (i = 0; bad[i]; i++) {
		tend_secret_file f[2] = { { "ok/fine", "x", 1, 0400, (uid_t)-1, (gid_t)-1 },
					  { bad[i], "x", 1, 0400, (uid_t)-1, (gid_t)-1 } };

		assert_int_equal(tend_secrets_generation_write(&gen, root, f, 2), TEND_EINVALID);
		if (!strstr(tend_error_last(), "is not <service>/<name>"))
			fail_msg("%s: %s", bad[i], tend_error_last());
		/* nothing of the refused generation is left */
		assert_int_equal(test_sh(&ls, gdir, "ls -A"), 0);
		if (ls.size)
			fail_msg("%s: left %s", bad[i], ls.ptr);
		tend_buf_clear(&ls);
	}
	tend_buf_dispose(&ls);
	free(gdir);
	free(root);
	test_tmpdir_remove(dir);
}

/* storage ram: a ramfs under the generations, mounted by tend where it may (root with the
 * right to mount); where it may not, refused naming the directory and its file system. */
static void test_ram_storage(void **state)
{
	char *dir = test_tmpdir_make("secrets-ram"), *root = NULL, *store = NULL;
	struct statfs sf;
	int rc;

	(void)state;
	assert_true(asprintf(&root, "%s/secrets", dir) > 0);
	assert_true(asprintf(&store, "%s/secrets.d", dir) > 0);
	rc = tend_secrets_store_prepare(root, TEND_SECRETS_RAM);
	if (rc == 0) {
		assert_int_equal(statfs(store, &sf), 0);
		assert_int_equal((unsigned long)sf.f_type, 0x858458f6UL);   /* RAMFS_MAGIC */
		/* already a ramfs: nothing mounted twice */
		assert_int_equal(tend_secrets_store_prepare(root, TEND_SECRETS_RAM), 0);
		assert_int_equal(umount2(store, MNT_DETACH), 0);
		if (statfs(store, &sf) == 0 && (unsigned long)sf.f_type == 0x858458f6UL)
			fail_msg("%s: mounted twice", store);
	} else {
		assert_int_equal(rc, TEND_EREFUSED);
		assert_non_null(strstr(tend_error_last(), store));
		assert_non_null(strstr(tend_error_last(), "mounting a ramfs there failed"));
		assert_non_null(strstr(tend_error_last(), "secrets_storage: disk"));
	}
	free(store);
	free(root);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_plain_directory_migrated),
		cmocka_unit_test(test_numbers_not_reused),
		cmocka_unit_test(test_add_and_values),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_ram_storage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
