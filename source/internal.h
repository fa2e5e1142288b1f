/* Helpers shared by the files of the source library (not part of its API). */
#ifndef TEND_SOURCE_INTERNAL_H
#define TEND_SOURCE_INTERNAL_H

#include <stdint.h>
#include <git2.h>

/* git_libgit2_init once per process (never shut down: other threads may use it). */
void tend_source_git_init(void);
/* libgit2's last message, never NULL. */
const char *tend_source_git_msg(void);
/* Milliseconds on the monotonic clock. */
int64_t tend_source_now_ms(void);
/* Write the tree of commit into dest_dir (temporary sibling + rename);
 * deadline_ms 0: none. */
int tend_source_export_oid(git_repository *repo, const git_oid *commit, const char *dest_dir,
			   int64_t deadline_ms);
/* "1a2b3c4 \"subject\"" for messages; caller frees. Never NULL on success. */
char *tend_source_commit_describe(git_commit *commit);

#endif
