/* File helpers: capped reads, atomic writes (temporary file in the same
 * directory, fsync, rename, fsync of the directory), directories, hashes.
 * Every descriptor is opened O_CLOEXEC. */
#ifndef TEND_UTIL_FS_H
#define TEND_UTIL_FS_H

#include <stddef.h>
#include <sys/types.h>
#include "util/buf.h"

/* Read a whole file into out (appending). Fails with TEND_ELIMIT, naming the
 * file, when it is larger than max bytes (0: no cap). TEND_ENOTFOUND if absent. */
int tend_file_read(tend_buf *out, const char *path, size_t max);
/* The same from an open descriptor (read to its end; not closed). */
int tend_fd_read(tend_buf *out, int fd, const char *path, size_t max);

/* Write data to path atomically with the given mode. If uid/gid are not -1
 * the temporary file is chowned before the rename. */
int tend_file_write_atomic(const char *path, const void *data, size_t len,
			   mode_t mode, uid_t uid, gid_t gid);
/* The same for name in the directory dirfd (path names it in messages). */
int tend_file_write_atomic_at(int dirfd, const char *name, const char *path, const void *data,
			      size_t len, mode_t mode, uid_t uid, gid_t gid);

/* mkdir -p with the given mode for created directories. */
int tend_dir_create_all(const char *path, mode_t mode);
/* rm -rf; a missing path is not an error. */
int tend_dir_remove_all(const char *path);
int tend_dir_fsync(const char *dir);
/* 1 if path exists (any type, not following a final link), 0 if not. */
int tend_path_exists(const char *path);

/* Lowercase hex SHA-256 (65 bytes with NUL) of a buffer or of a file's content. */
void tend_sha256_hex(char out[65], const void *data, size_t len);
int tend_file_sha256_hex(char out[65], const char *path);

/* Join two path parts with exactly one '/'; caller frees. */
char *tend_path_join(const char *a, const char *b);

#endif
