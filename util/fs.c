/* Capped reads and crash-safe writes; the only file I/O primitives tend uses. */
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

int tend_file_read(tend_buf *out, const char *path, size_t max)
{
	int error, fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		tend_error_set_errno("%s", path);
		return errno == ENOENT ? TEND_ENOTFOUND : TEND_ERROR;
	}
	error = tend_fd_read(out, fd, path, max);
	close(fd);
	return error;
}

int tend_fd_read(tend_buf *out, int fd, const char *path, size_t max)
{
	int error = TEND_ERROR;
	struct stat st;
	char chunk[65536];
	ssize_t n;
	size_t total = 0, used = 0;   /* used: bytes of chunk ever written, the ones to wipe */

	if (fstat(fd, &st) < 0) {
		tend_error_set_errno("%s", path);
		goto out;
	}
	if (max && st.st_size > 0 && (size_t)st.st_size > max) {
		tend_error_set("%s: file is %lld bytes, larger than the limit of %zu",
			       path, (long long)st.st_size, max);
		error = TEND_ELIMIT;
		goto out;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tend_error_set_errno("%s", path);
			goto out;
		}
		if (n == 0)
			break;
		if ((size_t)n > used)
			used = (size_t)n;
		total += (size_t)n;
		if (max && total > max) {
			tend_error_set("%s: file is larger than the limit of %zu bytes", path, max);
			error = TEND_ELIMIT;
			goto out;
		}
		if ((error = tend_buf_put(out, chunk, (size_t)n)) < 0)
			goto out;
		error = TEND_ERROR;
	}
	if (!out->ptr) {   /* an empty file: still a NUL-terminated (empty) string */
		if (tend_buf_grow(out, 0) < 0)
			goto out;
		out->ptr[0] = '\0';
	}
	error = 0;
out:
	/* only what was read into it: wiping all 64 KiB for a 1 KiB file was a
	 * fifth of a manifest load */
	sodium_memzero(chunk, used);
	return error;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int tend_dir_fsync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		tend_error_set_errno("%s", dir);
		return TEND_ERROR;
	}
	if (fsync(fd) < 0 && errno != EINVAL) {
		tend_error_set_errno("fsync %s", dir);
		close(fd);
		return TEND_ERROR;
	}
	close(fd);
	return 0;
}

int tend_file_write_atomic(const char *path, const void *data, size_t len,
			   mode_t mode, uid_t uid, gid_t gid)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	int dfd = -1, error = TEND_ERROR;

	if (!(dir = dir_of(path))) {
		tend_error_set("out of memory");
		goto out;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		tend_error_set_errno("%s", dir);
		goto out;
	}
	error = tend_file_write_atomic_at(dfd, slash ? slash + 1 : path, path, data, len, mode, uid, gid);
out:
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return error;
}

int tend_file_write_atomic_at(int dirfd, const char *name, const char *path, const void *data,
			      size_t len, mode_t mode, uid_t uid, gid_t gid)
{
	int error = TEND_ERROR, fd = -1;
	char *tmp = NULL;
	const char *p = data;
	size_t left = len;

	if (asprintf(&tmp, "%s.tend-tmp.%ld", name, (long)getpid()) < 0) {
		tmp = NULL;
		tend_error_set("out of memory");
		goto out;
	}
	/* a leftover of a crashed run (same pid after a reboot) goes first: O_EXCL */
	unlinkat(dirfd, tmp, 0);
	if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		tend_error_set_errno("%s.tend-tmp", path);
		goto out;
	}
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tend_error_set_errno("write %s", path);
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0) {
		tend_error_set_errno("chown %s", path);
		goto out;
	}
	/* chmod after chown: chown clears set-id bits, and the mode must be exact. */
	if (fchmod(fd, mode) < 0) {
		tend_error_set_errno("chmod %s", path);
		goto out;
	}
	if (fsync(fd) < 0) {
		tend_error_set_errno("fsync %s", path);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		tend_error_set_errno("close %s", path);
		goto out;
	}
	fd = -1;
	/* renameat replaces a link in name's place, never what it points to */
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		tend_error_set_errno("rename %s", path);
		goto out;
	}
	if (fsync(dirfd) < 0 && errno != EINVAL) {
		tend_error_set_errno("fsync the directory of %s", path);
		goto out;
	}
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	if (error < 0 && tmp)
		unlinkat(dirfd, tmp, 0);
	free(tmp);
	return error;
}

int tend_dir_create_all(const char *path, mode_t mode)
{
	char *copy, *p;
	int error = TEND_ERROR;

	if (!(copy = strdup(path))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (p = copy + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;
			*p = '\0';
			if (mkdir(copy, mode) < 0 && errno != EEXIST) {
				tend_error_set_errno("mkdir %s", copy);
				goto out;
			}
			*p = saved;
			if (!saved)
				break;
		}
	}
	error = 0;
out:
	free(copy);
	return error;
}

int tend_dir_remove_all(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int error = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : (tend_error_set_errno("%s", path), TEND_ERROR);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0) {
			tend_error_set_errno("unlink %s", path);
			return TEND_ERROR;
		}
		return 0;
	}
	if (!(d = opendir(path))) {
		tend_error_set_errno("%s", path);
		return TEND_ERROR;
	}
	while (!error && (e = readdir(d))) {
		char *child;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!(child = tend_path_join(path, e->d_name))) {
			error = TEND_ERROR;
			break;
		}
		error = tend_dir_remove_all(child);
		free(child);
	}
	closedir(d);
	if (!error && rmdir(path) < 0) {
		tend_error_set_errno("rmdir %s", path);
		error = TEND_ERROR;
	}
	return error;
}

int tend_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

void tend_sha256_hex(char out[65], const void *data, size_t len)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, len);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

int tend_file_sha256_hex(char out[65], const char *path)
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES], chunk[65536];
	int fd;
	ssize_t n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		tend_error_set_errno("%s", path);
		return errno == ENOENT ? TEND_ENOTFOUND : TEND_ERROR;
	}
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tend_error_set_errno("%s", path);
			close(fd);
			return TEND_ERROR;
		}
		crypto_hash_sha256_update(&st, chunk, (unsigned long long)n);
	}
	close(fd);
	crypto_hash_sha256_final(&st, h);
	sodium_memzero(chunk, sizeof(chunk));
	sodium_bin2hex(out, 65, h, sizeof(h));
	return 0;
}

char *tend_path_join(const char *a, const char *b)
{
	char *out = NULL;
	size_t la = strlen(a);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	if (asprintf(&out, "%.*s/%s", (int)la, a, b) < 0) {
		tend_error_set("out of memory");
		return NULL;
	}
	return out;
}
