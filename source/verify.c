/* Trust checks before anything is rendered: the new branch head must descend
 * from the applied commit (no force-push, no downgrade), and every new commit
 * must carry a valid SSH signature by a key in allowed_signers. */
#include "source/source.h"
#include "source/internal.h"
#include "source/sshsig.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Cap on the commits checked in one range (a runaway range is an error, not a hang). */
#define VERIFY_MAX_COMMITS 100000

static int lookup(git_commit **out, tend_source *s, const char *hex, const char *what)
{
	git_oid oid;

	if (!hex || strlen(hex) != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex) < 0) {
		tend_error_set("%s '%s' is not a full commit hash", what, hex ? hex : "(null)");
		return TEND_EINVALID;
	}
	if (git_commit_lookup(out, s->repo, &oid) < 0) {
		tend_error_set("%s %.7s is not in the mirror %s: %s", what, hex, s->mirror_dir, tend_source_git_msg());
		return TEND_ENOTFOUND;
	}
	return 0;
}

/* Refuse (TEND_EREFUSED) with `commit <short> "<subject>": <cause>`. */
static int refuse(git_commit *c, const char *cause)
{
	char *desc = tend_source_commit_describe(c);
	char *why = strdup(cause); /* cause may be tend_error_last()'s buffer */

	tend_error_set("commit %s: %s", desc ? desc : "?", why ? why : "refused");
	free(why);
	free(desc);
	return TEND_EREFUSED;
}

static int check_signature(tend_source *s, const git_oid *oid)
{
	git_buf sig = GIT_BUF_INIT, data = GIT_BUF_INIT;
	git_commit *c = NULL;
	tend_sshsig parsed;
	char fp[TEND_SSH_FINGERPRINT_SIZE], *cause = NULL;
	int have_sig = 0, rc, error = -1;

	memset(&parsed, 0, sizeof(parsed));
	if (git_commit_lookup(&c, s->repo, oid) < 0) {
		tend_error_set("%s: %s", s->mirror_dir, tend_source_git_msg());
		goto out;
	}
	rc = git_commit_extract_signature(&sig, &data, s->repo, (git_oid *)oid, NULL);
	if (rc == GIT_ENOTFOUND) {
		error = refuse(c, "not signed");
		goto out;
	} else if (rc < 0) {
		tend_error_set("%s: reading the signature of %s: %s", s->mirror_dir,
			       git_oid_tostr_s(oid), tend_source_git_msg());
		goto out;
	}
	if (!strncmp(sig.ptr, "-----BEGIN PGP", 14)) {
		error = refuse(c, "signed with OpenPGP; only SSH signatures are accepted");
		goto out;
	}
	if ((rc = tend_sshsig_parse(&parsed, sig.ptr, sig.size)) < 0) {
		if (asprintf(&cause, "malformed SSH signature: %s", tend_error_last()) < 0)
			cause = NULL;
		error = refuse(c, cause ? cause : "malformed SSH signature");
		goto out;
	}
	have_sig = 1;
	tend_ssh_fingerprint(fp, parsed.pubkey, parsed.pubkey_len);
	if ((rc = tend_allowed_signers_check(s->signers, parsed.pubkey, parsed.pubkey_len, "git",
					     (int64_t)git_commit_time(c), (int64_t)time(NULL))) < 0) {
		if (rc == -1)
			goto out;
		error = refuse(c, tend_error_last());
		goto out;
	}
	if ((rc = tend_sshsig_verify(&parsed, "git", data.ptr, data.size)) < 0) {
		if (rc == -1)
			goto out;
		if (asprintf(&cause, "%s (key %s)", tend_error_last(), fp) < 0)
			cause = NULL;
		error = refuse(c, cause ? cause : "bad signature");
		goto out;
	}
	error = 0;
out:
	if (have_sig)
		tend_sshsig_dispose(&parsed);
	free(cause);
	git_buf_dispose(&sig);
	git_buf_dispose(&data);
	git_commit_free(c);
	return error;
}

int tend_source_verify_range(tend_source *s, const char *applied, const char *new_head,
			     int allow_non_fast_forward)
{
	git_commit *head = NULL, *base = NULL;
	git_revwalk *walk = NULL;
	git_oid oid;
	int head_seen = 0, rc, error = -1;
	size_t n = 0;

	if ((error = tend_source_mirror_open(s)) < 0)
		goto out;
	if ((error = lookup(&head, s, new_head, "new head")) < 0)
		goto out;
	if (applied && (error = lookup(&base, s, applied, "applied commit")) < 0)
		goto out;
	error = -1;
	if (base && git_oid_equal(git_commit_id(base), git_commit_id(head))) {
		error = 0; /* nothing new; the applied commit was verified when applied */
		goto out;
	}
	if (base) {
		rc = git_graph_descendant_of(s->repo, git_commit_id(head), git_commit_id(base));
		if (rc < 0) {
			tend_error_set("%s: %s", s->mirror_dir, tend_source_git_msg());
			goto out;
		}
		if (rc == 0 && !allow_non_fast_forward) {
			char a[8], b[8];

			git_oid_tostr(a, sizeof(a), git_commit_id(base));
			git_oid_tostr(b, sizeof(b), git_commit_id(head));
			tend_error_set("branch %s moved from %s to %s, which does not descend from it "
				       "(force-push?); refusing (--allow-non-fast-forward applies it once)",
				       s->branch, a, b);
			error = TEND_EREFUSED;
			goto out;
		}
	}
	if (!s->signers) {
		error = 0;
		goto out;
	}
	/* With nothing applied yet only the head is checked: its signature
	 * covers its history by hash, and older history predating signing
	 * must not lock a fresh node out. */
	if (base) {
		if (git_revwalk_new(&walk, s->repo) < 0 ||
		    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) < 0 ||
		    git_revwalk_push(walk, git_commit_id(head)) < 0 ||
		    git_revwalk_hide(walk, git_commit_id(base)) < 0) {
			tend_error_set("%s: walking %.7s..%.7s: %s", s->mirror_dir, applied, new_head,
				       tend_source_git_msg());
			goto out;
		}
		while ((rc = git_revwalk_next(&oid, walk)) == 0) {
			if (++n > VERIFY_MAX_COMMITS) {
				tend_error_set("more than %d new commits between %.7s and %.7s",
					       VERIFY_MAX_COMMITS, applied, new_head);
				error = TEND_ELIMIT;
				goto out;
			}
			if (git_oid_equal(&oid, git_commit_id(head)))
				head_seen = 1;
			if ((error = check_signature(s, &oid)) < 0)
				goto out;
		}
		error = -1;
		if (rc != GIT_ITEROVER) {
			tend_error_set("%s: walking %.7s..%.7s: %s", s->mirror_dir, applied, new_head,
				       tend_source_git_msg());
			goto out;
		}
	}
	/* The head is always checked, also when it is an ancestor of the applied
	 * commit (an allowed non-fast-forward move back). */
	if (!head_seen && (error = check_signature(s, git_commit_id(head))) < 0)
		goto out;
	error = 0;
out:
	git_revwalk_free(walk);
	git_commit_free(base);
	git_commit_free(head);
	return error;
}
