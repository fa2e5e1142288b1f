/* Resolution beneath a root without links: openat2 where the kernel has it
 * (5.6+), a per-component O_NOFOLLOW walk where it does not. Paths are
 * checked lexically first, so ".." never reaches the kernel either way. */
#include "util/beneath.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BENEATH_MAX_PATH 4096

int tend_beneath_walk_only;

int tend_path_rel_check(const char *rel)
{
	const char *p = rel, *end;

	if (!rel || !*rel || *rel == '/' || strlen(rel) >= BENEATH_MAX_PATH)
		return TEND_EINVALID;
	for (;;) {
		size_t n;

		end = strchr(p, '/');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return TEND_EINVALID;
		if (!end)
			return 0;
		p = end + 1;
	}
}

const char *tend_path_beneath(const char *root, const char *path)
{
	size_t n = strlen(root);

	while (n > 0 && root[n - 1] == '/')
		n--;
	if (!path || strncmp(root, path, n) || path[n] != '/')
		return NULL;
	path += n + 1;
	return tend_path_rel_check(path) == 0 ? path : NULL;
}

/* Why the walk stopped at component comp of rel: a link, a missing entry or
 * something else; sets the message. */
static int walk_error(int dirfd, const char *root, const char *rel, const char *comp, int err)
{
	struct stat st;

	if (err == ELOOP || err == EXDEV ||
	    (err == ENOTDIR && fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	     S_ISLNK(st.st_mode))) {
		tend_error_set("%s/%s: '%s' is a symbolic link; tend follows none beneath %s",
			       root, rel, comp, root);
		return TEND_EREFUSED;
	}
	errno = err;
	tend_error_set_errno("%s/%s", root, rel);
	errno = err;
	return err == ENOENT ? TEND_ENOTFOUND : TEND_ERROR;
}

static int open_walk(int *out, int dirfd, const char *root, const char *rel, int flags,
		     mode_t mode)
{
	char buf[BENEATH_MAX_PATH], *comp = buf, *slash;
	int cur = dirfd, next, error = TEND_ERROR;

	snprintf(buf, sizeof(buf), "%s", rel);
	while ((slash = strchr(comp, '/'))) {
		*slash = '\0';
		next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			error = walk_error(cur, root, rel, comp, errno);
			goto out;
		}
		if (cur != dirfd)
			close(cur);
		cur = next;
		comp = slash + 1;
	}
	if ((next = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode)) < 0) {
		error = walk_error(cur, root, rel, comp, errno);
		goto out;
	}
	*out = next;
	error = 0;
out:
	if (cur != dirfd)
		close(cur);
	return error;
}

int tend_beneath_open(int *out, int dirfd, const char *root, const char *rel, int flags,
		      mode_t mode)
{
	struct open_how how;
	int fd;

	*out = -1;
	if (tend_path_rel_check(rel) < 0) {
		tend_error_set("%s: '%s' is not a plain relative path (no '..', no '.', no empty "
			       "component)", root, rel);
		return TEND_EREFUSED;
	}
	if (tend_beneath_walk_only)
		return open_walk(out, dirfd, root, rel, flags, mode);
	memset(&how, 0, sizeof(how));
	how.flags = (unsigned long long)(flags | O_NOFOLLOW | O_CLOEXEC);
	how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
	for (int tries = 0; tries < 3; tries++) {
		fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
		if (fd >= 0) {
			*out = fd;
			return 0;
		}
		if (errno != EAGAIN)   /* EAGAIN: a rename raced the lookup */
			break;
	}
	if (errno == ENOSYS || errno == EPERM || errno == EAGAIN)   /* EPERM: a seccomp filter */
		return open_walk(out, dirfd, root, rel, flags, mode);
	if (errno == ELOOP || errno == EXDEV || errno == ENOTDIR)
		/* which component: the walk finds it and says so */
		return open_walk(out, dirfd, root, rel, flags, mode);
	fd = errno;
	tend_error_set_errno("%s/%s", root, rel);
	errno = fd;   /* for a caller telling a socket (ENXIO) from the rest */
	return errno == ENOENT ? TEND_ENOTFOUND : TEND_ERROR;
}

int tend_beneath_parent(int *out, const char **name, int dirfd, const char *root,
			const char *rel, mode_t dir_mode)
{
	char buf[BENEATH_MAX_PATH], *comp = buf, *slash;
	const char *last;
	int cur = -1, next, error;

	*out = -1;
	if (tend_path_rel_check(rel) < 0) {
		tend_error_set("%s: '%s' is not a plain relative path (no '..', no '.', no empty "
			       "component)", root, rel);
		return TEND_EREFUSED;
	}
	last = strrchr(rel, '/');
	*name = last ? last + 1 : rel;
	if (!last) {
		if ((cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0) {
			tend_error_set_errno("%s", root);
			return TEND_ERROR;
		}
		*out = cur;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%.*s", (int)(last - rel), rel);
	if (!dir_mode)
		return tend_beneath_open(out, dirfd, root, buf, O_RDONLY | O_DIRECTORY, 0);
	/* creating: one component at a time, each opened without following */
	for (;;) {
		slash = strchr(comp, '/');
		if (slash)
			*slash = '\0';
		if (mkdirat(cur < 0 ? dirfd : cur, comp, dir_mode) < 0 && errno != EEXIST) {
			tend_error_set_errno("mkdir %s/%s", root, buf);
			error = TEND_ERROR;
			goto fail;
		}
		next = openat(cur < 0 ? dirfd : cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			error = walk_error(cur < 0 ? dirfd : cur, root, rel, comp, errno);
			goto fail;
		}
		if (cur >= 0)
			close(cur);
		cur = next;
		if (!slash)
			break;
		*slash = '/';
		comp = slash + 1;
	}
	*out = cur;
	return 0;
fail:
	if (cur >= 0)
		close(cur);
	return error;
}

static int open_root(int *out, const char *root)
{
	if ((*out = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		tend_error_set_errno("%s", root);
		return errno == ENOENT ? TEND_ENOTFOUND : TEND_ERROR;
	}
	return 0;
}

int tend_beneath_read(tend_buf *out, const char *root, const char *rel, size_t max)
{
	struct stat st;
	int rfd = -1, fd = -1, error;
	char *path = NULL;

	if ((error = open_root(&rfd, root)) < 0)
		goto out;
	/* O_NONBLOCK: a FIFO in the file's place must not hang the open */
	if ((error = tend_beneath_open(&fd, rfd, root, rel, O_RDONLY | O_NONBLOCK, 0)) < 0)
		goto out;
	error = TEND_ERROR;
	if (!(path = tend_path_join(root, rel)))
		goto out;
	if (fstat(fd, &st) < 0) {
		tend_error_set_errno("%s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {   /* a FIFO or device would block or never end */
		tend_error_set("%s: not a regular file", path);
		error = TEND_EINVALID;
		goto out;
	}
	error = tend_fd_read(out, fd, path, max);
out:
	if (fd >= 0)
		close(fd);
	if (rfd >= 0)
		close(rfd);
	free(path);
	return error;
}

int tend_beneath_write_atomic(const char *root, const char *rel, const void *data, size_t len,
			      mode_t mode, uid_t uid, gid_t gid)
{
	int rfd = -1, dfd = -1, error;
	const char *name;
	char *path = NULL;

	/* the root itself comes from the configuration, not from content:
	 * created when missing (a fresh tmpfs for the secrets) */
	if ((error = open_root(&rfd, root)) == TEND_ENOTFOUND &&
	    (error = tend_dir_create_all(root, 0755)) == 0)
		error = open_root(&rfd, root);
	if (error < 0 || (error = tend_beneath_parent(&dfd, &name, rfd, root, rel, 0755)) < 0)
		goto out;
	error = TEND_ERROR;
	if (!(path = tend_path_join(root, rel)))
		goto out;
	error = tend_file_write_atomic_at(dfd, name, path, data, len, mode, uid, gid);
out:
	if (dfd >= 0)
		close(dfd);
	if (rfd >= 0)
		close(rfd);
	free(path);
	return error;
}

int tend_beneath_unlink(const char *root, const char *rel)
{
	int rfd = -1, dfd = -1, error;
	const char *name;

	if ((error = open_root(&rfd, root)) < 0 ||
	    (error = tend_beneath_parent(&dfd, &name, rfd, root, rel, 0)) < 0) {
		if (error == TEND_ENOTFOUND) {   /* no directory, no file */
			tend_error_clear();
			error = 0;
		}
		goto out;
	}
	error = 0;
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
		tend_error_set_errno("unlink %s/%s", root, rel);
		error = TEND_ERROR;
	}
out:
	if (dfd >= 0)
		close(dfd);
	if (rfd >= 0)
		close(rfd);
	return error;
}

int tend_beneath_is_file(int dirfd, const char *rel)
{
	struct stat st;
	int fd, ok;

	if (tend_beneath_open(&fd, dirfd, ".", rel, O_PATH, 0) < 0) {
		tend_error_clear();
		return 0;
	}
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	return ok;
}
