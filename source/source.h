/* The git source: a bare mirror of the operator's repository, polled cheaply,
 * verified (fast-forward only, SSH-signed commits) and exported as exact
 * per-revision trees. All functions return 0 or a negative TEND_E* code and
 * set tend_error_last() to a one-line message. */
#ifndef TEND_SOURCE_SOURCE_H
#define TEND_SOURCE_SOURCE_H

#include <stddef.h>

/* Resolve any revspec (full or short hash, branch, tag, HEAD~1) in a local
 * repository (bare or with a work tree) to a commit; out_hex gets its full
 * lowercase hash. */
int tend_source_resolve(char out_hex[41], const char *repo_dir, const char *rev);

/* Write the tree of the commit `rev` resolves to into dest_dir: regular files
 * with their exec bit (0755/0644), symlinks as symlinks, directories 0755, no
 * .git, submodules as empty directories. The tree is written under a temporary
 * sibling name (dest_dir.tmp-XXXXXX), fsynced, then renamed into place; an
 * existing dest_dir is swapped out atomically and removed. A crash therefore
 * leaves either the old dest_dir or the new one, never a half-written tree. */
int tend_source_export_commit(const char *repo_dir, const char *rev, const char *dest_dir);

typedef struct tend_source tend_source;

typedef struct {
	const char *url;              /* file://, /path, https://, ssh://[user@]host[:port]/path, user@host:path */
	const char *branch;           /* tracked branch; NULL: "main" */
	const char *mirror_dir;       /* bare mirror, created on first poll (under the state dir) */
	const char *known_hosts;      /* ssh: known_hosts file (plain, hashed |1| and [host]:port entries); required for ssh */
	const char *ssh_key;          /* ssh: private key file (its .pub next to it is used when present) */
	const char *ssh_passphrase_file; /* ssh: optional file holding the key's passphrase */
	int ssh_agent;                /* ssh: authenticate with ssh-agent ($SSH_AUTH_SOCK) instead of a key file */
	const char *https_token_file; /* https: token, sent as the password (user from the URL, else "x-access-token") */
	const char *https_basic_file; /* https: "user:password" */
	const char *ca_file;          /* https: PEM bundle of the CAs to trust; NULL: $SSL_CERT_FILE, else the
				       * system bundle (util/tls.h). Never "trust anything". */
	const char *allowed_signers;  /* git's gpg.ssh.allowedSignersFile format; NULL: signatures not required */
	int ls_remote_timeout_ms;     /* <= 0: 30 s. See tend_source_poll for what the limits cover. */
	int fetch_timeout_ms;         /* <= 0: 300 s */
	int export_timeout_ms;        /* <= 0: 120 s */
} tend_source_opts;

#define TEND_SOURCE_OPTS_INIT { 0 }

/* Copy the options (strings are duplicated) and load allowed_signers when set
 * (a malformed file is TEND_EINVALID naming file:line). No network. The CA
 * file is read at each poll (it may be installed after the agent starts). */
int tend_source_open(tend_source **out, const tend_source_opts *opts);
void tend_source_free(tend_source *s);

/* List the remote's refs (one round trip); fetch the tracked branch into the
 * mirror only when its remote head differs from the mirror's. out_head gets
 * the branch head, *out_fetched (may be NULL) 1 when the remote head differed
 * from the mirror's and a fetch ran (0: one round trip, nothing transferred).
 *
 * Time limits: the network part runs in a forked child process that reports
 * its step (ls-remote, then fetch) over a pipe; when a step's limit
 * (ls_remote_timeout_ms, fetch_timeout_ms) runs out the child is killed and
 * TEND_ETIMEOUT returned, so also a server that accepts and then stays silent
 * is bounded. The limit covers connecting, host key check, authentication and
 * the ref listing (ls-remote) or the negotiation and pack transfer (fetch).
 * Killing is safe: the mirror's branch ref moves only after the objects are
 * in. On any failure the mirror keeps its previous refs. Call from one thread.
 *
 * https: the server's certificate must chain to a CA in the CA file and name
 * the host; a refusal is TEND_EAUTH with a message such as
 *   https://git.lab:3000/ops/fleet.git: ls-remote: the TLS certificate of
 *   git.lab is not trusted: no CA in /etc/ssl/certs/ca-certificates.crt signed it */
int tend_source_poll(tend_source *s, char out_head[41], int *out_fetched);

/* The URL for messages, without a password; caller frees. */
char *tend_source_url_display(const char *url);

/* The ls-remote step of tend_source_poll alone (no mirror, nothing fetched), under its time
 * limit in a child process: is the remote still reachable, and where is the branch. */
int tend_source_remote_head(tend_source *s, char out_head[41]);

/* A cheap look at the remote's branch head for a long-running process that
 * must not load libgit2 itself (tend run): this process never initialises
 * libgit2 nor opens the mirror. The first call forks a checker process that
 * initialises libgit2 once (parsing the CA bundle is most of its start) and
 * then answers each call with the ls-remote of tend_source_poll (same
 * transports, auth, known_hosts, CA file read at each look) as a detached
 * remote. The answer is awaited for ls_remote_timeout_ms (plus a grace); past
 * that the checker is killed (TEND_ETIMEOUT) and the next call starts a new
 * one, as is one that died, and one that answered 1000 calls. The checker
 * keeps none of this process's descriptors and exits when this process closes
 * its end (exit, exec, tend_source_watch_free) or dies. */
typedef struct tend_source_watch tend_source_watch;

/* Copy the options (allowed_signers and mirror_dir are not used). No fork,
 * no network yet. */
int tend_source_watch_open(tend_source_watch **out, const tend_source_opts *opts);
/* The remote head of the tracked branch into out_head; errors as from
 * tend_source_poll's ls-remote step (TEND_ETIMEOUT, TEND_EAUTH,
 * TEND_ENOTFOUND for a missing branch, ...). Call from one thread. */
int tend_source_watch_head(tend_source_watch *w, char out_head[41]);
/* The checker's pid (0: none running), for tests and measurements. */
int tend_source_watch_pid(const tend_source_watch *w);
void tend_source_watch_free(tend_source_watch *w);

/* Check that new_head may be applied on top of applied (NULL: nothing applied
 * yet): it must descend from applied (or equal it) unless
 * allow_non_fast_forward, and with allowed_signers every commit reachable from
 * new_head but not from applied (all parents walked) must carry a valid SSH
 * signature (SSHSIG, namespace "git", Ed25519) by a listed key; new_head
 * itself is always checked. With nothing applied only new_head is checked
 * (history from before signing was adopted must not lock a new node out;
 * the head's signature covers its ancestors by hash). Refusals are
 * TEND_EREFUSED with a message such as
 *   commit 1a2b3c4 "add nextcloud": not signed */
int tend_source_verify_range(tend_source *s, const char *applied, const char *new_head,
			     int allow_non_fast_forward);

/* Export commit (full hash) from the mirror into revs_dir/<full hash>
 * (temporary name + rename; an existing directory is reused). *out_dir gets
 * the path (caller frees). export_timeout_ms is checked between tree entries;
 * sizes are capped (4 GiB, 200000 entries, depth 128). */
int tend_source_export(char **out_dir, tend_source *s, const char *commit, const char *revs_dir);

/* One document of a commit: name (a service's directory name), its bytes (NUL-terminated;
 * NULL when absent). */
typedef struct {
	char *name;
	char *data;
	size_t len;
} tend_source_doc;

/* fleet.yaml (data NULL when absent) and every services/<name>/service.yaml of commit (full
 * hash) in repo_dir, read from the repository's objects, nothing written; each at most 1 MiB,
 * links refused. *out (n entries, name set, data NULL for a directory without service.yaml)
 * freed with tend_source_docs_free, fleet->data with free. */
int tend_source_read_manifests(tend_source_doc *fleet, tend_source_doc **out, size_t *n,
			       const char *repo_dir, const char *commit);
void tend_source_docs_free(tend_source_doc *docs, size_t n);

/* Remove every entry of revs_dir except keep1 and keep2 (full hashes, either
 * may be NULL), including leftover temporary directories of interrupted exports. */
int tend_source_prune(const char *revs_dir, const char *keep1, const char *keep2);

/* The mirror repository path and the tracked branch (for status output). */
const char *tend_source_mirror_dir(const tend_source *s);
const char *tend_source_branch(const tend_source *s);

#endif
