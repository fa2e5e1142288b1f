/* Helpers shared by the files of the source library (not part of its API). */
#ifndef TEND_SOURCE_INTERNAL_H
#define TEND_SOURCE_INTERNAL_H

#include <stdint.h>
#include <git2.h>

#include "source/sshsig.h"

/* The source handle (opaque in source.h). */
struct tend_source {
	char *url, *branch, *mirror_dir, *known_hosts, *ssh_key, *ssh_passphrase_file;
	char *https_token_file, *https_basic_file, *allowed_signers_path;
	char *ca_file;                   /* configured CA file; NULL: the default (util/tls.h) */
	int ssh_agent;
	int ls_remote_timeout_ms, fetch_timeout_ms, export_timeout_ms;
	tend_allowed_signers *signers;   /* NULL: signatures not required */
	git_repository *repo;            /* the mirror, opened or created on first use */

	/* State of the network operation in progress, for the callbacks. */
	const char *step;                /* "ls-remote", "fetch" */
	int64_t deadline_ms;
	int timed_out;
	char *cb_error;                  /* message set by a callback that failed */
	int cb_code;                     /* and its TEND_E* code */
	int cred_attempts;
	unsigned int received_objects;   /* of the last fetch */
	int progress_fd;                 /* in the poll child: where step changes are reported; else -1 */
	char *ca_used;                   /* https: the CA file the last poll trusted (for messages) */
	char *tls_host;                  /* https: the host whose certificate libgit2 rejected */
};

/* The poll itself, in this process (tend_source_poll runs it in a child
 * process under a hard time limit). */
int tend_source_poll_direct(struct tend_source *s, char out_head[41], int *out_fetched);
/* The ls-remote step alone, in this process, as a detached remote (no
 * mirror): the tracked branch's head on the remote. */
int tend_source_remote_head_direct(struct tend_source *s, char out_head[41]);

/* What tend_source_supervise runs in its child: write "S <step>\n" to
 * progress_fd when a step with its own limit begins, return 0 and fill head
 * (and *fetched) or a negative code with the error set. */
typedef int (*tend_source_child_fn)(void *arg, int progress_fd, char head[41], int *fetched);
/* Run fn in a forked child under the time limits of tend_source_poll
 * (ls_ms for ls-remote, fetch_ms for fetch, each plus a grace, restarted
 * at each step line); the child is killed when one runs out (TEND_ETIMEOUT
 * naming url and the step). The child's result and error become ours. */
int tend_source_supervise(char out_head[41], int *out_fetched, const char *url, int ls_ms,
			  int fetch_ms, tend_source_child_fn fn, void *arg);

/* https: choose and check the CA file and hand it to libgit2 (a process-wide
 * setting: call it in the poll child). 0 for other URLs; on failure the error
 * names the URL, the step and the file. */
int tend_source_tls_prepare(struct tend_source *s, const char *url_display);
/* After libgit2 rejected a server certificate (s->tls_host set): set the
 * one-line error "<url>: <step>: the TLS certificate of <host> ..." from
 * libgit2's reason. Returns TEND_EAUTH. */
int tend_source_tls_failed(struct tend_source *s, const char *url_display);

/* Open (creating it when missing) the bare mirror. */
int tend_source_mirror_open(struct tend_source *s);

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
