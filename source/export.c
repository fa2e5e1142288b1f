/* Exact revisions: resolve a revspec and write a commit's tree (no .git) into
 * a directory through a temporary sibling and a rename, so a crash never
 * leaves a half-written tree in use; prune old revision directories. */
#include "source/source.h"
#include "source/internal.h"
#include "util/error.h"
#include "util/fs.h"

#include <dirent.h>
#include <libssh2.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Caps on what a pushed commit can make us write. */
#define EXPORT_MAX_DEPTH 128
#define EXPORT_MAX_ENTRIES 200000
#define EXPORT_MAX_BYTES (4ULL << 30)
#define EXPORT_DEFAULT_TIMEOUT_MS 120000

static pthread_once_t git_once = PTHREAD_ONCE_INIT;

static void git_init_once(void)
{
	/* libssh2 first, without its crypto initialisation: git_libgit2_init
	 * calls libssh2_init(0), which makes OpenSSL load every algorithm and
	 * engine, 1.4 MiB of libcrypto resident in the agent for good, for ssh
	 * that only ever runs in a forked child (source/fetch.c). libssh2 counts
	 * initialisations, so libgit2's call then does nothing more; OpenSSL 3
	 * initialises itself when first used. */
	libssh2_init(LIBSSH2_INIT_NO_CRYPTO);
	git_libgit2_init();
}

void tend_source_git_init(void)
{
	pthread_once(&git_once, git_init_once);
}

const char *tend_source_git_msg(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown libgit2 error";
}

int64_t tend_source_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *tend_source_commit_describe(git_commit *commit)
{
	char hex[GIT_OID_HEXSZ + 1];
	const char *summary = git_commit_summary(commit);
	char *out = NULL;

	git_oid_tostr(hex, sizeof(hex), git_commit_id(commit));
	hex[7] = '\0';
	if (asprintf(&out, "%s \"%s\"", hex, summary ? summary : "") < 0)
		return NULL;
	return out;
}

typedef struct {
	git_repository *repo;
	const char *dest;       /* for messages */
	int64_t deadline_ms;
	size_t entries;
	unsigned long long bytes;
} export_ctx;

static int name_ok(const char *name)
{
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return 0;
	return strcasecmp(name, ".git") != 0;
}

static int write_all_fd(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int export_blob(export_ctx *ctx, int dirfd, const char *path, const git_tree_entry *e)
{
	git_blob *blob = NULL;
	mode_t mode = git_tree_entry_filemode(e) == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
	const char *name = git_tree_entry_name(e);
	int fd = -1, error = -1;
	size_t len;

	if (git_blob_lookup(&blob, ctx->repo, git_tree_entry_id(e)) < 0) {
		tend_error_set("export %s: %s: %s", ctx->dest, path, tend_source_git_msg());
		goto out;
	}
	len = (size_t)git_blob_rawsize(blob);
	ctx->bytes += len;
	if (ctx->bytes > EXPORT_MAX_BYTES) {
		tend_error_set("export %s: the tree is larger than %llu bytes", ctx->dest, EXPORT_MAX_BYTES);
		error = TEND_ELIMIT;
		goto out;
	}
	if (git_tree_entry_filemode(e) == GIT_FILEMODE_LINK) {
		char *target = strndup(git_blob_rawcontent(blob), len);

		if (!target || strlen(target) != len || symlinkat(target, dirfd, name) < 0) {
			tend_error_set_errno("export %s: symlink %s", ctx->dest, path);
			free(target);
			goto out;
		}
		free(target);
		error = 0;
		goto out;
	}
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0 || write_all_fd(fd, git_blob_rawcontent(blob), len) < 0 ||
	    fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		tend_error_set_errno("export %s: write %s", ctx->dest, path);
		goto out;
	}
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	git_blob_free(blob);
	return error;
}

static int export_tree(export_ctx *ctx, int dirfd, const git_tree *tree, const char *prefix, int depth)
{
	size_t i, n = git_tree_entrycount(tree);
	int error = 0;

	if (depth > EXPORT_MAX_DEPTH) {
		tend_error_set("export %s: %s: directories nested deeper than %d", ctx->dest, prefix, EXPORT_MAX_DEPTH);
		return TEND_ELIMIT;
	}
	for (i = 0; i < n && error == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		char *path = NULL;

		if (asprintf(&path, "%s%s%s", prefix, *prefix ? "/" : "", name) < 0)
			return -1;
		if (++ctx->entries > EXPORT_MAX_ENTRIES) {
			tend_error_set("export %s: more than %d entries", ctx->dest, EXPORT_MAX_ENTRIES);
			error = TEND_ELIMIT;
		} else if (ctx->deadline_ms && tend_source_now_ms() > ctx->deadline_ms) {
			tend_error_set("export %s: time limit exceeded", ctx->dest);
			error = TEND_ETIMEOUT;
		} else if (!name_ok(name)) {
			tend_error_set("export %s: refusing tree entry '%s'", ctx->dest, path);
			error = TEND_EREFUSED;
		} else if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
			git_tree *sub = NULL;
			int subfd = -1;

			if (git_tree_lookup(&sub, ctx->repo, git_tree_entry_id(e)) < 0) {
				tend_error_set("export %s: %s: %s", ctx->dest, path, tend_source_git_msg());
				error = -1;
			} else if (mkdirat(dirfd, name, 0755) < 0 ||
				   (subfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				tend_error_set_errno("export %s: mkdir %s", ctx->dest, path);
				error = -1;
			} else {
				error = export_tree(ctx, subfd, sub, path, depth + 1);
				if (error == 0 && fsync(subfd) < 0) {
					tend_error_set_errno("export %s: fsync %s", ctx->dest, path);
					error = -1;
				}
			}
			if (subfd >= 0)
				close(subfd);
			git_tree_free(sub);
		} else if (git_tree_entry_type(e) == GIT_OBJECT_COMMIT) {
			/* A submodule: its content is not in this repository. */
			if (mkdirat(dirfd, name, 0755) < 0) {
				tend_error_set_errno("export %s: mkdir %s", ctx->dest, path);
				error = -1;
			}
		} else {
			error = export_blob(ctx, dirfd, path, e);
		}
		free(path);
	}
	return error;
}

/* Put tmp in place of dest: a plain rename, or an atomic exchange when dest
 * exists (the old tree then sits at tmp and is removed). */
static int swap_into_place(const char *tmp, const char *dest)
{
	struct stat st;
	char *parent = NULL, *slash;
	int error = -1;

	if (lstat(dest, &st) == 0) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_EXCHANGE) < 0) {
			tend_error_set_errno("export: exchange %s", dest);
			goto out;
		}
		tend_dir_remove_all(tmp);
	} else if (rename(tmp, dest) < 0) {
		tend_error_set_errno("export: rename %s to %s", tmp, dest);
		goto out;
	}
	parent = strdup(dest);
	if (!parent)
		goto out;
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(parent, ".");
	tend_dir_fsync(parent);
	error = 0;
out:
	free(parent);
	return error;
}

int tend_source_export_oid(git_repository *repo, const git_oid *oid, const char *dest_dir,
			   int64_t deadline_ms)
{
	export_ctx ctx = { repo, dest_dir, deadline_ms, 0, 0 };
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	char *tmp = NULL;
	int fd = -1, error = -1;

	if (git_commit_lookup(&commit, repo, oid) < 0 || git_commit_tree(&tree, commit) < 0) {
		tend_error_set("export %s: %s", dest_dir, tend_source_git_msg());
		goto out;
	}
	if (asprintf(&tmp, "%s.tmp-XXXXXX", dest_dir) < 0) {
		tmp = NULL;
		goto out;
	}
	if (!mkdtemp(tmp)) {
		tend_error_set_errno("export: create %s", tmp);
		free(tmp);
		tmp = NULL;
		goto out;
	}
	chmod(tmp, 0755);
	fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		tend_error_set_errno("export: open %s", tmp);
		goto out;
	}
	if ((error = export_tree(&ctx, fd, tree, "", 0)) < 0)
		goto out;
	error = -1;
	if (fsync(fd) < 0) {
		tend_error_set_errno("export: fsync %s", tmp);
		goto out;
	}
	if (swap_into_place(tmp, dest_dir) < 0)
		goto out;
	free(tmp);
	tmp = NULL;
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		tend_dir_remove_all(tmp);
		free(tmp);
	}
	git_tree_free(tree);
	git_commit_free(commit);
	return error;
}

static int open_repo(git_repository **out, const char *repo_dir)
{
	tend_source_git_init();
	if (git_repository_open_ext(out, repo_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		tend_error_set("open repository %s: %s", repo_dir, tend_source_git_msg());
		return TEND_ENOTFOUND;
	}
	return 0;
}

static int resolve_in(git_oid *out, git_repository *repo, const char *repo_dir, const char *rev)
{
	git_object *obj = NULL, *peeled = NULL;
	int error = TEND_ENOTFOUND;

	if (git_revparse_single(&obj, repo, rev) < 0 ||
	    git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		tend_error_set("%s: cannot resolve '%s' to a commit: %s", repo_dir, rev, tend_source_git_msg());
		goto out;
	}
	git_oid_cpy(out, git_object_id(peeled));
	error = 0;
out:
	git_object_free(peeled);
	git_object_free(obj);
	return error;
}

int tend_source_resolve(char out_hex[41], const char *repo_dir, const char *rev)
{
	git_repository *repo = NULL;
	git_oid oid;
	int error;

	if ((error = open_repo(&repo, repo_dir)) < 0)
		return error;
	if ((error = resolve_in(&oid, repo, repo_dir, rev)) == 0)
		git_oid_tostr(out_hex, 41, &oid);
	git_repository_free(repo);
	return error;
}

int tend_source_export_commit(const char *repo_dir, const char *rev, const char *dest_dir)
{
	git_repository *repo = NULL;
	git_oid oid;
	int error;

	if ((error = open_repo(&repo, repo_dir)) < 0)
		return error;
	if ((error = resolve_in(&oid, repo, repo_dir, rev)) == 0)
		error = tend_source_export_oid(repo, &oid, dest_dir,
					       tend_source_now_ms() + EXPORT_DEFAULT_TIMEOUT_MS);
	git_repository_free(repo);
	return error;
}

int tend_source_prune(const char *revs_dir, const char *keep1, const char *keep2)
{
	DIR *d;
	struct dirent *de;
	int error = 0;

	if (!(d = opendir(revs_dir))) {
		if (errno == ENOENT)
			return 0;
		tend_error_set_errno("prune %s", revs_dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char *path;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((keep1 && !strcmp(de->d_name, keep1)) || (keep2 && !strcmp(de->d_name, keep2)))
			continue;
		if (!(path = tend_path_join(revs_dir, de->d_name))) {
			error = -1;
			break;
		}
		if (tend_dir_remove_all(path) < 0)
			error = -1;
		free(path);
	}
	closedir(d);
	return error;
}
