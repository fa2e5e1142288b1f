/* Secret files on the host: owner, group and mode as declared (real users
 * nobody and daemon; tests run as root), atomic rewrite only on change,
 * change report by hash, pruning, and clear errors for unknown users. */
#include "tests/support/support.h"
#include "secrets/install.h"
#include "util/error.h"
#include "util/fs.h"

#include <pwd.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const tend_secret_change *find(const tend_secret_report *r, const char *svc, const char *name)
{
	size_t i;

	for (i = 0; i < r->count; i++)
		if (!strcmp(r->items[i].service, svc) && !strcmp(r->items[i].name, name))
			return &r->items[i];
	return NULL;
}

static void test_install_update_prune(void **state)
{
	char *dir = test_tmpdir_make("secrets-install"), *root, path[1024], hash[65], *content;
	tend_secret_report r;
	struct stat st;
	struct passwd *pw;
	uid_t nobody_uid, daemon_uid;
	gid_t nobody_gid, daemon_gid;
	tend_secret_file files[3] = {
		{ "db", "password", "hunter2\n", 8, "nobody", NULL, 0400 },
		{ "db", "tls.key", "KEY", 3, "daemon", "daemon", 0440 },
		{ "web", "token", "t0k", 3, NULL, NULL, 0 },
	};

	if (geteuid() != 0) {
		printf("SKIP: install tests need root (chown to real users)\n");
		test_tmpdir_remove(dir);
		skip();
	}
	/* getpwnam's result is overwritten by the next call: copy the ids */
	assert_non_null(pw = getpwnam("nobody"));
	nobody_uid = pw->pw_uid;
	nobody_gid = pw->pw_gid;
	assert_non_null(pw = getpwnam("daemon"));
	daemon_uid = pw->pw_uid;
	assert_non_null(getgrnam("daemon"));
	daemon_gid = getgrnam("daemon")->gr_gid;
	assert_int_equal(asprintf(&root, "%s/run/tend/secrets", dir) > 0, 1);

	assert_int_equal(tend_secrets_install(&r, root, files, 3), 0);
	assert_int_equal(r.count, 3);
	assert_int_equal(find(&r, "db", "password")->status, TEND_SECRET_CREATED);
	tend_sha256_hex(hash, "hunter2\n", 8);
	assert_string_equal(find(&r, "db", "password")->sha256, hash);
	assert_true(tend_secret_report_changed(&r, "web", "token"));
	tend_secret_report_dispose(&r);

	snprintf(path, sizeof(path), "%s/db/password", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, nobody_uid);
	assert_int_equal(st.st_gid, nobody_gid);
	assert_int_equal(st.st_mode & 07777, 0400);
	content = test_read_file(path);
	assert_string_equal(content, "hunter2\n");
	free(content);
	snprintf(path, sizeof(path), "%s/db/tls.key", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, daemon_uid);
	assert_int_equal(st.st_gid, daemon_gid);
	assert_int_equal(st.st_mode & 07777, 0440);
	snprintf(path, sizeof(path), "%s/web/token", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0400);

	/* same again: nothing changes, the files keep their inode */
	{
		ino_t ino;
		snprintf(path, sizeof(path), "%s/db/password", root);
		stat(path, &st);
		ino = st.st_ino;
		assert_int_equal(tend_secrets_install(&r, root, files, 3), 0);
		assert_int_equal(find(&r, "db", "password")->status, TEND_SECRET_UNCHANGED);
		assert_false(tend_secret_report_changed(&r, "db", "password"));
		tend_secret_report_dispose(&r);
		stat(path, &st);
		assert_int_equal(st.st_ino, ino);
	}

	/* new content for one, new mode for another, a secret and a service dropped */
	files[0].data = "correct horse";
	files[0].len = 13;
	files[1].mode = 0400;
	assert_int_equal(tend_secrets_install(&r, root, files, 2), 0);
	assert_int_equal(find(&r, "db", "password")->status, TEND_SECRET_UPDATED);
	assert_true(tend_secret_report_changed(&r, "db", "password"));
	assert_int_equal(find(&r, "db", "tls.key")->status, TEND_SECRET_PERMS);
	assert_false(tend_secret_report_changed(&r, "db", "tls.key"));
	assert_int_equal(find(&r, "web", "token")->status, TEND_SECRET_REMOVED);
	tend_secret_report_dispose(&r);
	snprintf(path, sizeof(path), "%s/web", root);
	assert_false(tend_path_exists(path));
	snprintf(path, sizeof(path), "%s/db/tls.key", root);
	stat(path, &st);
	assert_int_equal(st.st_mode & 07777, 0400);
	snprintf(path, sizeof(path), "%s/db/password", root);
	content = test_read_file(path);
	assert_string_equal(content, "correct horse");
	free(content);

	/* an undeclared file appearing in a service directory is removed */
	snprintf(path, sizeof(path), "%s/db", root);
	test_write_file(path, "stray", "x");
	assert_int_equal(tend_secrets_install(&r, root, files, 1), 0);
	assert_int_equal(find(&r, "db", "stray")->status, TEND_SECRET_REMOVED);
	assert_int_equal(find(&r, "db", "tls.key")->status, TEND_SECRET_REMOVED);
	tend_secret_report_dispose(&r);
	snprintf(path, sizeof(path), "%s/db/stray", root);
	assert_false(tend_path_exists(path));

	free(root);
	test_tmpdir_remove(dir);
}

static void test_install_errors(void **state)
{
	char *dir = test_tmpdir_make("secrets-install-err"), path[1024];
	tend_secret_report r;
	tend_secret_file files[2] = {
		{ "db", "password", "hunter2", 7, "nobody", NULL, 0400 },
		{ "db", "other", "x", 1, "no-such-user-tend", NULL, 0400 },
	};

	/* unknown owner: clear error, and nothing at all is written */
	assert_int_equal(tend_secrets_install(&r, dir, files, 2), TEND_ENOTFOUND);
	assert_string_equal(tend_error_last(), "secret db/other: unknown owner 'no-such-user-tend'");
	assert_null(strstr(tend_error_last(), "hunter2"));
	snprintf(path, sizeof(path), "%s/db/password", dir);
	assert_false(tend_path_exists(path));
	assert_int_equal(r.count, 0);

	files[1].owner = "nobody";
	files[1].group = "no-such-group-tend";
	assert_int_equal(tend_secrets_install(&r, dir, files, 2), TEND_ENOTFOUND);
	assert_string_equal(tend_error_last(), "secret db/other: unknown group 'no-such-group-tend'");

	files[1].group = NULL;
	files[1].name = "../escape";
	assert_int_equal(tend_secrets_install(&r, dir, files, 2), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "single path components"));

	files[1].name = "password";
	assert_int_equal(tend_secrets_install(&r, dir, files, 2), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "declared twice"));
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_install_update_prune),
		cmocka_unit_test(test_install_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
