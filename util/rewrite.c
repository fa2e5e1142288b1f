/* Replace-when-different writes of re-creatable outputs, without fsync: a
 * render of a thousand services writes dozens of files, and a disk flush per
 * file and per directory was most of what writing them cost. */
#include "util/rewrite.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 1 when path is a regular file of exactly len bytes, mode and content data.
 * Read in 64 KiB pieces (as tend_file_read does): a host's inputs are ~100
 * KiB, and 8 KiB reads were a dozen system calls per unchanged file; a heap
 * buffer that size cost more than the calls it saved. */
static int holds(int dirfd, const char *path, const void *data, size_t len, unsigned mode)
{
	char chunk[65536];
	struct stat st;
	size_t off = 0;
	int fd, same = 0;

	if ((fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != len ||
	    (st.st_mode & 07777) != (mode & 07777))
		goto out;
	while (off < len) {
		size_t want = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
		ssize_t n = read(fd, chunk, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || memcmp(chunk, (const char *)data + off, (size_t)n))
			goto out;
		off += (size_t)n;
	}
	same = 1;
out:
	close(fd);
	return same;
}

int tend_file_rewrite(const char *path, const void *data, size_t len, unsigned mode)
{
	return tend_file_rewrite_at(AT_FDCWD, path, path, data, len, mode);
}

int tend_file_rewrite_at(int dirfd, const char *name, const char *path, const void *data,
			 size_t len, unsigned mode)
{
	const char *p = data;
	char *tmp = NULL;
	int fd = -1, error = TEND_ERROR;
	size_t off = 0;

	if (holds(dirfd, name, data, len, mode))
		return 0;
	if (asprintf(&tmp, "%s.tend-tmp.%ld", name, (long)getpid()) < 0) {
		tmp = NULL;
		tend_error_set("out of memory");
		goto out;
	}
	if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		tend_error_set_errno("%s.tend-tmp", path);
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tend_error_set_errno("write %s", path);
			goto out;
		}
		off += (size_t)n;
	}
	/* the exact mode, whatever the umask */
	if (fchmod(fd, (mode_t)mode) < 0) {
		tend_error_set_errno("chmod %s", path);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		tend_error_set_errno("close %s", path);
		goto out;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		tend_error_set_errno("rename %s", path);
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
