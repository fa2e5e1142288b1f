/* Paths beneath a root: every file tend reads from an exported revision or
 * writes, removes or records under one of its roots goes through here. A path
 * never leaves its root and no symbolic link is followed at any component. */
#ifndef TEND_UTIL_BENEATH_H
#define TEND_UTIL_BENEATH_H

#include <stddef.h>
#include <sys/types.h>
#include "util/buf.h"

/* 0 when rel is a clean relative path: not empty, no leading '/', no empty,
 * "." or ".." component. TEND_EINVALID otherwise (no message set). */
int tend_path_rel_check(const char *rel);

/* rel of path when path lies beneath root (lexically: root, a '/', a clean
 * relative path), NULL otherwise. root "/" holds every clean absolute path. */
const char *tend_path_beneath(const char *root, const char *path);

/* Open rel beneath the directory dirfd with flags (O_CLOEXEC and O_NOFOLLOW
 * added): openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a walk opening
 * each component with O_NOFOLLOW where the kernel lacks openat2. A symbolic
 * link at any component, or a "..", is TEND_EREFUSED; a missing component
 * TEND_ENOTFOUND. root names dirfd in messages. */
int tend_beneath_open(int *out, int dirfd, const char *root, const char *rel, int flags,
		      mode_t mode);

/* The directory holding rel's last component, opened beneath dirfd, its
 * missing directories created with dir_mode when dir_mode is not 0; *name is
 * the last component (a pointer into rel). */
int tend_beneath_parent(int *out, const char **name, int dirfd, const char *root,
			const char *rel, mode_t dir_mode);

/* Nonzero: tend_beneath_open always takes the O_NOFOLLOW walk, as on a
 * kernel without openat2 (for the tests of that path). */
extern int tend_beneath_walk_only;

/* tend_file_read, tend_file_write_atomic and unlink for rel beneath root. */
int tend_beneath_read(tend_buf *out, const char *root, const char *rel, size_t max);
int tend_beneath_write_atomic(const char *root, const char *rel, const void *data, size_t len,
			      mode_t mode, uid_t uid, gid_t gid);
/* A missing file is not an error. */
int tend_beneath_unlink(const char *root, const char *rel);
/* 1 when rel is a regular file beneath root reached without a link, else 0. */
int tend_beneath_is_file(int dirfd, const char *rel);

#endif
