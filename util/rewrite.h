/* Writing re-creatable outputs (a render directory, the exported revision's
 * .tend/ inputs): replaced atomically when they differ, never synced. */
#ifndef TEND_UTIL_REWRITE_H
#define TEND_UTIL_REWRITE_H

#include <stddef.h>

/* Make path hold exactly data with exactly mode: nothing is written when it
 * already does; otherwise a temporary file renamed over it, so a reader sees
 * the old or the new file, never a part. No fsync of the file or of its
 * directory: for files derived from something durable (a commit) and checked
 * again (this call compares) every time before they are used; a file lost or
 * torn by a power cut is rewritten then. Not for state or installed files
 * (tend_file_write_atomic). Returns 0 or a negative TEND_E* code. */
int tend_file_rewrite(const char *path, const void *data, size_t len, unsigned mode);
/* The same for name in the directory dirfd (path names it in messages). */
int tend_file_rewrite_at(int dirfd, const char *name, const char *path, const void *data,
			 size_t len, unsigned mode);

#endif
