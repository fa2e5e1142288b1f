/* Secrets at boot: the secrets of the commit this host runs (or is in the middle of applying)
 * installed again from the state directory alone (its mirror, the configured identities), with
 * no fetch, no build and no other host: after a reboot /run is empty, and services must not
 * start without their secrets while the repository, or the hosts it depends on, are not up. */
#include "reconcile/internal.h"
#include "reconcile/reconcile.h"
#include "agent/config.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Is the secret on disk already what w wants (content, mode, owner)? */
static int secret_current(const tend_config *cfg, const tend_want_file *w)
{
	tend_buf old = TEND_BUF_INIT;
	struct stat sb;
	int same;

	if (tend_reconcile_file_stat(&sb, cfg, w->path, 1) < 0) {
		tend_error_clear();
		return 0;
	}
	same = tend_reconcile_file_read(&old, cfg, w->path, 1, w->len + 1) == 0 &&
	       old.size == w->len && (!w->len || !memcmp(old.ptr, w->data, w->len)) &&
	       (sb.st_mode & 07777) == (w->mode & 07777) &&
	       (w->uid == (uid_t)-1 || sb.st_uid == w->uid) &&
	       (w->gid == (gid_t)-1 || sb.st_gid == w->gid);
	tend_error_clear();
	tend_buf_dispose_secure(&old);
	return same;
}

int tend_reconcile_secrets_restore(tend_secrets_restored *out, const tend_config *cfg)
{
	tend_state_lock *lock = NULL;
	tend_state *st = NULL;
	tend_desired d;
	const char *commit, *system;
	char *dir = NULL;
	size_t i;
	int error;

	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if ((error = tend_state_lock_take(&lock, cfg->state_dir)) < 0 ||
	    (error = tend_state_load(&st, cfg->state_dir)) < 0 ||
	    (error = tend_reconcile_state_check(cfg, st)) < 0)
		goto out;
	/* A change in flight: its files were written before the switch, so its secrets are
	 * what the system being activated expects; a rollback restores the old ones from the
	 * backup on disk. */
	commit = st->inflight.active ? st->inflight.commit : st->applied_commit;
	system = st->inflight.active && st->inflight.target_system ? st->inflight.target_system
								      : st->system;
	if (!commit[0]) {
		error = 0;   /* nothing applied yet: nothing to restore */
		goto out;
	}
	snprintf(out->commit, sizeof(out->commit), "%s", commit);
	if ((error = tend_reconcile_export(&dir, cfg, commit)) < 0 ||
	    (error = tend_desired_load(&d, cfg, dir, commit)) < 0 ||
	    /* the system it runs is known: rendering and decrypting only, no build */
	    (error = tend_desired_prepare(&d, cfg, system ? system : "", NULL)) < 0)
		goto out;
	for (i = 0; i < d.n_files; i++) {
		const tend_want_file *w = &d.files[i];

		if (w->kind != TEND_FILE_SECRET)
			continue;
		out->secrets++;
		if (secret_current(cfg, w))
			continue;
		if ((error = tend_reconcile_file_write(cfg, w->path, 1, w->data, w->len, w->mode,
						       w->uid, w->gid)) < 0) {
			tend_error_prefix("commit %.12s: installing %s: ", commit, w->path);
			goto out;
		}
		out->installed++;
	}
	error = 0;
out:
	tend_desired_dispose(&d);
	free(dir);
	tend_state_free(st);
	tend_state_lock_release(lock);
	return error;
}
