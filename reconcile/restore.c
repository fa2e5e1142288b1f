/* Secrets at boot: the secrets of the commit this host runs (or is in the middle of applying)
 * installed again from the state directory alone (its mirror, the configured identities), with
 * no fetch, no build and no other host: after a reboot /run is empty, and services must not
 * start without their secrets while the repository, or the hosts it depends on, are not up. */
#include "reconcile/internal.h"
#include "reconcile/reconcile.h"
#include "agent/config.h"
#include "secrets/install.h"
#include "util/beneath.h"
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

int tend_reconcile_secrets_install(const tend_config *cfg, const tend_desired *d)
{
	tend_secret_file *files = NULL;
	size_t i, n = 0;
	unsigned gen;
	int error = TEND_ERROR;

	if (d->n_files && !(files = calloc(d->n_files, sizeof(*files)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (i = 0; i < d->n_files; i++) {
		const tend_want_file *w = &d->files[i];

		if (w->kind != TEND_FILE_SECRET || w->owner_pending)
			continue;
		if (!(files[n].rel = tend_path_beneath(cfg->secrets_root, w->path))) {
			tend_error_set("%s: not beneath the secrets root %s", w->path, cfg->secrets_root);
			goto out;
		}
		files[n].data = w->data;
		files[n].len = w->len;
		files[n].mode = w->mode;
		files[n].uid = w->uid;
		files[n].gid = w->gid;
		n++;
	}
	if ((error = tend_secrets_store_prepare(cfg->secrets_root, cfg->secrets_storage)) < 0 ||
	    (error = tend_secrets_generation_write(&gen, cfg->secrets_root, files, n)) < 0)
		goto out;
	if ((error = tend_secrets_generation_switch(cfg->secrets_root, gen)) < 0)
		tend_secrets_generation_remove(cfg->secrets_root, gen);
out:
	free(files);
	return error;
}

int tend_reconcile_secrets_restore(tend_secrets_restored *out, const tend_config *cfg)
{
	tend_state_lock *lock = NULL;
	tend_state *st = NULL;
	tend_desired d;
	const char *commit, *system;
	char *dir = NULL;
	unsigned gen;
	size_t i;
	int error, stale = 0, flight;

	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if ((error = tend_state_lock_take(&lock, cfg->state_dir)) < 0 ||
	    (error = tend_state_load(&st, cfg->state_dir)) < 0 ||
	    (error = tend_reconcile_state_check(cfg, st)) < 0)
		goto out;
	/* A change in flight: from its switch on, its secrets are what the system expects; before
	 * (files) or while rolling back, the applied commit's are. */
	flight = st->inflight.active && (st->inflight.phase == TEND_PHASE_SWITCH ||
					 st->inflight.phase == TEND_PHASE_PROBES);
	commit = flight ? st->inflight.commit : st->applied_commit;
	system = flight && st->inflight.target_system ? st->inflight.target_system : st->system;
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
		/* one whose owner is not there yet cannot be installed (the change's own steps,
		 * or the next reconcile, do it) */
		if (!w->owner_pending && !secret_current(cfg, w))
			stale++;
	}
	/* after a reboot the ramfs is empty: one generation with them all, made current */
	if (stale && (error = tend_reconcile_secrets_install(cfg, &d)) < 0) {
		tend_error_prefix("commit %.12s: installing its secrets: ", commit);
		goto out;
	}
	/* older generations go, unless a change in flight may link its previous one again
	 * (its rollback or finish prunes) */
	if (stale && !st->inflight.active &&
	    tend_secrets_generation_current(&gen, cfg->secrets_root) == 0 && gen)
		tend_secrets_generation_prune(cfg->secrets_root, gen, 0);
	tend_error_clear();
	out->installed = stale;
	error = 0;
out:
	tend_desired_dispose(&d);
	free(dir);
	tend_state_free(st);
	tend_state_lock_release(lock);
	return error;
}
