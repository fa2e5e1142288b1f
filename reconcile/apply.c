/* Carrying a plan out on the host: files written, the secrets' new generation made current,
 * secrets whose owner the switch created added after it, and systemd units restarted for
 * changed secrets (try-restart; restart for a failed one), all as systemd and sops-nix do. */
#include "reconcile/internal.h"
#include "secrets/install.h"
#include "util/beneath.h"
#include "util/error.h"
#include "util/proc.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tend_reconcile_apply_files(const tend_config *cfg, const tend_desired *d, const tend_plan *plan)
{
	size_t i;

	for (i = 0; i < plan->count; i++) {
		const tend_action *a = &plan->items[i];
		const tend_want_file *w;

		if (a->kind == TEND_ACTION_REMOVE_FILE) {
			if (tend_reconcile_file_unlink(cfg, a->path, 0) < 0) {
				tend_error_prefix("removing %s: ", a->path);
				return TEND_ERROR;
			}
			continue;
		}
		if (a->kind != TEND_ACTION_WRITE_FILE)
			continue;
		if (!(w = tend_reconcile_want_find(d, a->path)))
			continue;
		if (tend_reconcile_file_write(cfg, w->path, 0, w->data, w->len, w->mode, w->uid,
					      w->gid) < 0) {
			tend_error_prefix("writing %s: ", w->path);
			return TEND_ERROR;
		}
	}
	if (tend_reconcile_plan_has_secrets(plan) && tend_reconcile_secrets_install(cfg, d) < 0) {
		tend_error_prefix("installing the secrets: ");
		return TEND_ERROR;
	}
	return 0;
}

/* systemctl VERB -- UNIT: try-restart for a changed secret (a unit stopped on purpose stays
 * stopped, as sops-nix and agenix do), restart to start one that failed without its secret. */
static int unit_verb(const char *verb, const char *unit, tend_buf *log)
{
	tend_proc_opts po = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	char *argv[] = { "systemctl", (char *)verb, "--", (char *)unit, NULL };
	int error = 0;

	po.timeout_ms = 120000;
	po.merge_stderr = 1;
	if (tend_proc_run(&res, argv, &po) < 0)
		return TEND_ERROR;
	tend_buf_put(log, res.out.ptr, res.out.size);
	if (res.timed_out) {
		tend_error_set("systemctl %s %s timed out", verb, unit);
		error = TEND_ETIMEOUT;
	} else if (res.exit_code) {
		tend_error_set("systemctl %s %s failed (exit %d)", verb, unit, res.exit_code);
		error = TEND_ERROR;
	}
	tend_proc_result_dispose(&res);
	return error;
}

/* 1 when systemd has unit failed (try-restart would leave it so). */
static int unit_failed(const char *unit)
{
	tend_proc_opts po = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	char *argv[] = { "systemctl", "is-failed", "--quiet", "--", (char *)unit, NULL };
	int failed = 0;

	po.timeout_ms = 10000;
	if (tend_proc_run(&res, argv, &po) == 0 && !res.timed_out && res.exit_code == 0)
		failed = 1;
	tend_proc_result_dispose(&res);
	tend_error_clear();
	return failed;
}

/* A running unit restarted to read its secret again, a stopped one left stopped, a failed one
 * (a previous value it could not start with) started again. */
int tend_reconcile_apply_restart(const char *unit, tend_buf *log)
{
	return unit_verb(unit_failed(unit) ? "restart" : "try-restart", unit, log);
}

int tend_reconcile_apply_restarts(const tend_plan *plan, tend_buf *log)
{
	size_t i;

	for (i = 0; i < plan->count; i++)
		if (plan->items[i].kind == TEND_ACTION_RESTART_UNIT &&
		    tend_reconcile_apply_restart(plan->items[i].path, log) < 0)
			return TEND_ERROR;
	return 0;
}

/* Is unit one that a secret with a pending owner names (restart:)? */
static int pending_unit(const tend_desired *d, const char *unit, size_t len)
{
	size_t i, k;

	for (i = 0; i < d->n_files; i++)
		for (k = 0; d->files[i].owner_pending && k < d->files[i].n_restart; k++)
			if (strlen(d->files[i].restart[k]) == len &&
			    !strncmp(d->files[i].restart[k], unit, len))
				return 1;
	return 0;
}

/* After the switch: the secrets whose owner it created, into the current generation, and
 * their units restarted (try-restart; restart for one that failed, or that the switch left
 * failed, without the secret). An owner still missing fails the change. */
int tend_reconcile_apply_pending(const tend_config *cfg, const tend_desired *d, tend_buf *log)
{
	size_t i, k;
	int any = 0;

	for (i = 0; i < d->n_files; i++) {
		const tend_want_file *w = &d->files[i];
		tend_secret_file f;
		struct passwd *pw;
		struct group *gr;
		uid_t uid;
		gid_t gid;

		if (!w->owner_pending)
			continue;
		if (!w->owner) {   /* recovery: resolved already, missing from the generation */
			uid = w->uid;
			gid = w->gid;
		} else if (!(pw = getpwnam(w->owner))) {
			tend_error_set("service %s, secret %s: no user '%s' on this host, even after the "
				       "switch (does the new system create it?)", w->service,
				       strrchr(w->path, '/') + 1, w->owner);
			return TEND_ENOTFOUND;
		} else {
			uid = pw->pw_uid;
			gid = pw->pw_gid;
		}
		if (w->owner && w->group) {
			if (!(gr = getgrnam(w->group))) {
				tend_error_set("service %s, secret %s: no group '%s' on this host, even "
					       "after the switch (does the new system create it?)",
					       w->service, strrchr(w->path, '/') + 1, w->group);
				return TEND_ENOTFOUND;
			}
			gid = gr->gr_gid;
		}
		f.rel = tend_path_beneath(cfg->secrets_root, w->path);
		f.data = w->data;
		f.len = w->len;
		f.mode = w->mode;
		f.uid = uid;
		f.gid = gid;
		if (!f.rel || tend_secrets_current_add(cfg->secrets_root, &f) < 0) {
			if (!f.rel)
				tend_error_set("not beneath the secrets root %s", cfg->secrets_root);
			tend_error_prefix("installing %s: ", w->path);
			return TEND_ERROR;
		}
		any = 1;
	}
	/* each unit once, at its first mention */
	for (i = 0; any && i < d->n_files; i++)
		for (k = 0; d->files[i].owner_pending && k < d->files[i].n_restart; k++) {
			const char *unit = d->files[i].restart[k];
			size_t j, m;
			int seen = 0;

			for (j = 0; j <= i && !seen; j++)
				for (m = 0; d->files[j].owner_pending && m < d->files[j].n_restart &&
				     (j < i || m < k); m++)
					seen |= !strcmp(d->files[j].restart[m], unit);
			if (!seen && tend_reconcile_apply_restart(unit, log) < 0)
				return TEND_ERROR;
		}
	return 0;
}

/* A switch that exited 4 only because units failed that wait for a secret whose owner it
 * created: every unit it names is one a pending secret restarts. */
int tend_reconcile_apply_pending_explains(const tend_desired *d, const char *units)
{
	const char *p = units;
	int any = 0;

	while (p && *p) {
		size_t len = strcspn(p, ", ");

		if (len) {
			if (!pending_unit(d, p, len))
				return 0;
			any = 1;
		}
		p += len;
		p += strspn(p, ", ");
	}
	return any;
}

