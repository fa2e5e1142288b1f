/* Backups of a change (<state_dir>/backups/<commit>/): the files a plan replaces, copied
 * with an index naming each one's path, mode, owner and new hash, the secrets' generation
 * before the change and the units it restarts, so a crash at any point can be finished or
 * undone from the state alone; restoring, adopting and pruning them. Never secret bytes. */
#include "reconcile/internal.h"
#include "secrets/install.h"
#include "util/beneath.h"
#include "util/error.h"
#include "util/fs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INDEX_FILE "index.json"

const tend_want_file *tend_reconcile_want_find(const tend_desired *d, const char *path)
{
	size_t i;

	for (i = 0; i < d->n_files; i++)
		if (!strcmp(d->files[i].path, path))
			return &d->files[i];
	return NULL;
}

int tend_reconcile_plan_has_secrets(const tend_plan *plan)
{
	size_t i;

	for (i = 0; i < plan->count; i++)
		if (plan->items[i].kind == TEND_ACTION_INSTALL_SECRET ||
		    plan->items[i].kind == TEND_ACTION_REMOVE_SECRET)
			return 1;
	return 0;
}

int tend_reconcile_backup_write(char **out_dir, const tend_config *cfg, const tend_desired *d,
			const tend_plan *plan)
{
	json_t *index = json_array();
	char *dir = NULL, *name = NULL, *text = NULL, *ipath = NULL;
	size_t i, n = 0;
	int error = TEND_ERROR;

	*out_dir = NULL;
	if (!index || asprintf(&name, "backups/%s", d->commit) < 0 ||
	    !(dir = tend_reconcile_state_path(cfg, name))) {
		tend_error_set("out of memory");
		goto out;
	}
	if (tend_dir_remove_all(dir) < 0 || tend_dir_create_all(dir, 0700) < 0)
		goto out;
	for (i = 0; i < plan->count; i++) {
		const tend_action *a = &plan->items[i];
		const tend_want_file *w;
		tend_buf old = TEND_BUF_INIT;
		struct stat sb;
		char bname[32], *bpath;
		json_t *e;
		int had, rc, secret;

		if (a->kind != TEND_ACTION_WRITE_FILE && a->kind != TEND_ACTION_INSTALL_SECRET &&
		    a->kind != TEND_ACTION_REMOVE_FILE && a->kind != TEND_ACTION_REMOVE_SECRET)
			continue;
		w = tend_reconcile_want_find(d, a->path);
		secret = a->kind == TEND_ACTION_INSTALL_SECRET || a->kind == TEND_ACTION_REMOVE_SECRET;
		rc = tend_reconcile_file_stat(&sb, cfg, a->path, secret);
		if (rc < 0 && rc != TEND_ENOTFOUND)
			goto out;
		tend_error_clear();
		had = rc == 0 && S_ISREG(sb.st_mode);
		e = json_pack("{s:s, s:b, s:o, s:o, s:s, s:o}", "path", a->path, "had", had,
			      "new_sha256", w ? json_string(w->sha256) : json_null(),
			      "service", a->service ? json_string(a->service) : json_null(),
			      "kind", secret ? "secret" : "route",
			      "backup", json_null());
		if (!e || json_array_append_new(index, e) < 0) {
			tend_error_set("out of memory");
			goto out;
		}
		if (!had || secret)   /* secrets: the previous generation is their backup */
			continue;
		snprintf(bname, sizeof(bname), "%zu", n++);
		if (!(bpath = tend_path_join(dir, bname)))
			goto out;
		rc = tend_reconcile_file_read(&old, cfg, a->path, secret, 64u << 20);
		if (rc == 0)
			rc = tend_file_write_atomic(bpath, old.ptr, old.size, 0600, (uid_t)-1, (gid_t)-1);
		tend_buf_dispose_secure(&old);
		free(bpath);
		if (rc < 0) {
			tend_error_prefix("backing up %s: ", a->path);
			goto out;
		}
		json_object_set_new(e, "backup", json_string(bname));
		json_object_set_new(e, "mode", json_integer(sb.st_mode & 07777));
		json_object_set_new(e, "uid", json_integer(sb.st_uid));
		json_object_set_new(e, "gid", json_integer(sb.st_gid));
	}
	/* The secrets' generation before the change: what a rollback links again. */
	if (tend_reconcile_plan_has_secrets(plan)) {
		unsigned gen;
		json_t *e;

		/* ready first: an older tend's plain directory becomes a generation here, so that
		 * a rollback of this change has it to go back to */
		if (tend_secrets_store_prepare(cfg->secrets_root, cfg->secrets_storage) < 0 ||
		    tend_secrets_generation_current(&gen, cfg->secrets_root) < 0)
			goto out;
		if (!(e = json_pack("{s:I}", "secrets_before", (json_int_t)gen)) ||
		    json_array_append_new(index, e) < 0) {
			tend_error_set("out of memory");
			goto out;
		}
	}
	/* The units this change restarts: a rollback restarts them again once the
	 * previous secrets are back, so the services do not keep the new values. */
	for (i = 0; i < plan->count; i++) {
		json_t *e;
		if (plan->items[i].kind != TEND_ACTION_RESTART_UNIT)
			continue;
		if (!(e = json_pack("{s:s}", "restart_unit", plan->items[i].path)) ||
		    json_array_append_new(index, e) < 0) {
			tend_error_set("out of memory");
			goto out;
		}
	}
	if (!(text = json_dumps(index, JSON_INDENT(1))) || !(ipath = tend_path_join(dir, INDEX_FILE)))
		goto out;
	if (tend_file_write_atomic(ipath, text, strlen(text), 0600, (uid_t)-1, (gid_t)-1) < 0)
		goto out;
	*out_dir = dir;
	dir = NULL;
	error = 0;
out:
	json_decref(index);
	free(text);
	free(ipath);
	free(name);
	free(dir);
	return error;
}

static int load_index(json_t **out, const char *backup_dir)
{
	tend_buf b = TEND_BUF_INIT;
	json_error_t jerr;
	char *path = tend_path_join(backup_dir, INDEX_FILE);
	int error;

	*out = NULL;
	if (!path)
		return TEND_ERROR;
	if ((error = tend_file_read(&b, path, 16u << 20)) == 0) {
		*out = json_loadb(b.ptr, b.size, 0, &jerr);
		if (!json_is_array(*out)) {
			json_decref(*out);
			*out = NULL;
			tend_error_set("%s: unreadable backup index", path);
			error = TEND_EINVALID;
		}
	}
	tend_buf_dispose(&b);
	free(path);
	return error;
}

/* Put every file of the backup back as it was (absent files removed), and the secrets'
 * previous generation; one a reboot took is written again from prev_d (may be NULL: then no
 * secrets until the next reconcile installs them). */
int tend_reconcile_backup_restore(const tend_config *cfg, const char *backup_dir, const tend_desired *prev_d)
{
	json_t *index = NULL, *e;
	size_t i;
	int error, failed = 0;

	if ((error = load_index(&index, backup_dir)) < 0)
		return error;
	json_array_foreach(index, i, e) {
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *bname = json_string_value(json_object_get(e, "backup"));
		const char *kind = json_string_value(json_object_get(e, "kind"));
		int secret = kind && !strcmp(kind, "secret");
		tend_buf data = TEND_BUF_INIT;
		char *bpath;

		if (json_is_integer(json_object_get(e, "secrets_before"))) {
			unsigned gen = (unsigned)json_integer_value(json_object_get(e, "secrets_before"));

			int rc = tend_secrets_generation_switch(cfg->secrets_root, gen);

			/* gone with a reboot during the change: written again from the previous
			 * commit; without it none rather than the new ones (the applied commit's
			 * next reconcile installs them, "missing") */
			if (rc == TEND_ENOTFOUND && prev_d) {
				if ((rc = tend_reconcile_secrets_install(cfg, prev_d)) == 0 &&
				    (rc = tend_secrets_generation_current(&gen, cfg->secrets_root)) == 0)
					rc = tend_secrets_generation_prune(cfg->secrets_root, gen, 0);
			} else if (rc == TEND_ENOTFOUND) {
				if ((rc = tend_secrets_generation_switch(cfg->secrets_root, 0)) == 0)
					rc = tend_secrets_generation_prune(cfg->secrets_root, 0, 0);
			} else if (rc == 0) {
				rc = tend_secrets_generation_prune(cfg->secrets_root, gen, 0);
			}
			if (rc < 0) {
				tend_error_prefix("restoring the secrets: ");
				failed = 1;
			}
			continue;
		}
		if (!path || secret)   /* secrets: their generation above */
			continue;
		if (!bname) {
			if (tend_reconcile_file_unlink(cfg, path, secret) < 0) {
				tend_error_prefix("restoring %s: ", path);
				failed = 1;
			}
			continue;
		}
		if (tend_path_rel_check(bname) < 0 || strchr(bname, '/')) {
			tend_error_set("%s/%s: backup name '%s' is not a plain name", backup_dir,
				       INDEX_FILE, bname);
			failed = 1;
			continue;
		}
		if (!(bpath = tend_path_join(backup_dir, bname)))
			return TEND_ERROR;
		if (tend_file_read(&data, bpath, 64u << 20) < 0 ||
		    tend_reconcile_file_write(cfg, path, secret, data.ptr, data.size,
					   (mode_t)json_integer_value(json_object_get(e, "mode")),
					   (uid_t)json_integer_value(json_object_get(e, "uid")),
					   (gid_t)json_integer_value(json_object_get(e, "gid"))) < 0) {
			tend_error_prefix("restoring %s: ", path);
			failed = 1;
		}
		tend_buf_dispose_secure(&data);
		free(bpath);
	}
	json_decref(index);
	return failed ? TEND_ERROR : 0;
}

/* The change is adopted: the secrets' generations but the current one go (a failure to
 * delete one leaves it for the next change). */
void tend_reconcile_backup_prune_secrets(const tend_config *cfg, const char *backup_dir)
{
	json_t *index = NULL, *e;
	unsigned gen;
	size_t i;

	if (load_index(&index, backup_dir) < 0) {
		tend_error_clear();
		return;
	}
	json_array_foreach(index, i, e)
		if (json_object_get(e, "secrets_before") &&
		    tend_secrets_generation_current(&gen, cfg->secrets_root) == 0 && gen)
			tend_secrets_generation_prune(cfg->secrets_root, gen, 0);
	json_decref(index);
	tend_error_clear();
}

/* Record the new files' hashes in the state (and forget removed ones). */
int tend_reconcile_backup_adopt(tend_state *st, const char *backup_dir)
{
	json_t *index = NULL, *e;
	size_t i;
	int error;

	if ((error = load_index(&index, backup_dir)) < 0)
		return error;
	json_array_foreach(index, i, e) {
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *sha = json_string_value(json_object_get(e, "new_sha256"));
		const char *kind = json_string_value(json_object_get(e, "kind"));

		if (!path)
			continue;
		if (!sha)
			tend_state_file_remove(st, path);
		else if (strlen(sha) == 64 &&
			 (error = tend_state_file_set(st, path, sha,
						      json_string_value(json_object_get(e, "service")),
						      kind && !strcmp(kind, "secret") ? TEND_FILE_SECRET
						      : TEND_FILE_ROUTE)) < 0)
			break;
	}
	json_decref(index);
	return error;
}

/* After the files are back: restart the units the change restarted (all of
 * them, even after one failed; the first failure is kept in the log). */
int tend_reconcile_backup_restart(const char *backup_dir, tend_buf *log)
{
	json_t *index = NULL, *e;
	size_t i;
	int error, failed = 0;

	if ((error = load_index(&index, backup_dir)) < 0)
		return error;
	json_array_foreach(index, i, e) {
		const char *unit = json_string_value(json_object_get(e, "restart_unit"));
		if (unit && tend_reconcile_apply_restart(unit, log) < 0) {
			if (!failed)
				tend_buf_printf(log, "rollback restart: %s\n", tend_error_last());
			failed = 1;
		}
	}
	json_decref(index);
	return failed ? TEND_ERROR : 0;
}

