/* One reconcile, start to end: lock the state, finish or undo a change a crash
 * left in flight, fetch and verify the branch head, prepare what it wants
 * (render, .tend/ inputs, nix build), plan against what the host runs, and
 * converge. Also the hand-driven rollback to an earlier generation. */
#include "reconcile/internal.h"
#include "reconcile/nix.h"
#include "source/source.h"
#include "util/error.h"
#include "util/beneath.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const outcome_names[] = {
	"nothing", "applied", "planned", "failed", "rolled-back", "rollback-failed", "refused",
	"blocked", "waiting", "reboot-required", "held"
};

const char *tend_reconcile_outcome_name(tend_reconcile_outcome o)
{
	if ((unsigned)o < sizeof(outcome_names) / sizeof(outcome_names[0]))
		return outcome_names[o];
	return "unknown";
}

int64_t tend_reconcile_now(void)
{
	return (int64_t)time(NULL);
}

void tend_report_set(tend_reconcile_report *rep, tend_reconcile_outcome outcome, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	rep->outcome = outcome;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	free(rep->message);
	rep->message = msg;
}

void tend_reconcile_report_dispose(tend_reconcile_report *rep)
{
	if (!rep)
		return;
	free(rep->message);
	free(rep->probe_output);
	free(rep->failed_probe);
	free(rep->system_before);
	free(rep->system_after);
	tend_plan_dispose(&rep->plan);
	tend_service_health_free(rep->services, rep->n_services);
	memset(rep, 0, sizeof(*rep));
}

int tend_reconcile_file_where(const char **root, const char **rel, const tend_config *cfg,
			      const char *path, int secret)
{
	*root = secret ? cfg->secrets_root : cfg->root;
	if (!*root)
		*root = "/";
	if (!path || !(*rel = tend_path_beneath(*root, path))) {
		tend_error_set("%s: outside the %s %s (or not a plain path): refusing to touch it",
			       path ? path : "(no path)", secret ? "secrets root" : "root", *root);
		return TEND_EREFUSED;
	}
	return 0;
}

int tend_reconcile_file_read(tend_buf *out, const tend_config *cfg, const char *path, int secret,
			     size_t max)
{
	const char *root, *rel;
	int error;

	if ((error = tend_reconcile_file_where(&root, &rel, cfg, path, secret)) < 0)
		return error;
	return tend_beneath_read(out, root, rel, max);
}

int tend_reconcile_file_write(const tend_config *cfg, const char *path, int secret,
			      const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid)
{
	const char *root, *rel;
	int error;

	if ((error = tend_reconcile_file_where(&root, &rel, cfg, path, secret)) < 0)
		return error;
	return tend_beneath_write_atomic(root, rel, data, len, mode, uid, gid);
}

int tend_reconcile_file_unlink(const tend_config *cfg, const char *path, int secret)
{
	const char *root, *rel;
	int error;

	if ((error = tend_reconcile_file_where(&root, &rel, cfg, path, secret)) < 0)
		return error;
	return tend_beneath_unlink(root, rel);
}

int tend_reconcile_file_stat(struct stat *out, const tend_config *cfg, const char *path,
			     int secret)
{
	const char *root, *rel;
	int rfd = -1, fd = -1, error;

	if ((error = tend_reconcile_file_where(&root, &rel, cfg, path, secret)) < 0)
		return error;
	if ((rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		tend_error_set_errno("%s", root);
		return errno == ENOENT ? TEND_ENOTFOUND : TEND_ERROR;
	}
	if ((error = tend_beneath_open(&fd, rfd, root, rel, O_PATH, 0)) == 0 && fstat(fd, out) < 0) {
		tend_error_set_errno("%s", path);
		error = TEND_ERROR;
	}
	if (fd >= 0)
		close(fd);
	close(rfd);
	return error;
}

int tend_reconcile_state_check(const tend_config *cfg, const tend_state *st)
{
	const char *root, *rel;
	char *want = NULL, *name = NULL;
	size_t i;
	int error = 0;

	for (i = 0; i < st->n_files && !error; i++)
		if ((error = tend_reconcile_file_where(&root, &rel, cfg, st->files[i].path,
						       st->files[i].kind == TEND_FILE_SECRET)) < 0)
			tend_error_prefix("%s/state.json: files[%zu]: ", cfg->state_dir, i);
	if (error || !st->inflight.active || !st->inflight.backup_dir)
		return error;
	if (asprintf(&name, "backups/%s", st->inflight.commit) < 0 ||
	    !(want = tend_reconcile_state_path(cfg, name))) {
		want = NULL;
		error = TEND_ERROR;
	} else if (strcmp(want, st->inflight.backup_dir)) {
		tend_error_set("%s/state.json: in_flight.backup_dir %s is not %s: refusing to use it",
			       cfg->state_dir, st->inflight.backup_dir, want);
		error = TEND_EREFUSED;
	}
	free(name);
	free(want);
	return error;
}

char *tend_reconcile_state_path(const tend_config *cfg, const char *name)
{
	char *p = tend_path_join(cfg->state_dir, name);

	if (!p)
		tend_error_set("out of memory");
	return p;
}

int tend_reconcile_source_open(tend_source **out, const tend_config *cfg, int ls_remote_timeout_ms)
{
	tend_source_opts so = TEND_SOURCE_OPTS_INIT;
	char *mirror = tend_reconcile_state_path(cfg, "mirror");
	int error;

	if (!mirror)
		return TEND_ERROR;
	so.url = cfg->repository.url;
	so.branch = cfg->repository.branch;
	so.mirror_dir = mirror;
	so.known_hosts = cfg->repository.known_hosts;
	so.ssh_key = cfg->repository.ssh_key_file;
	so.ssh_passphrase_file = cfg->repository.ssh_passphrase_file;
	so.https_token_file = cfg->repository.token_file;
	so.https_basic_file = cfg->repository.basic_auth_file;
	so.ca_file = cfg->repository.ca_file;
	so.allowed_signers = cfg->repository.allowed_signers;
	so.ls_remote_timeout_ms = ls_remote_timeout_ms;
	error = tend_source_open(out, &so);
	free(mirror);
	return error;
}

static int source_open(tend_source **out, const tend_config *cfg)
{
	return tend_reconcile_source_open(out, cfg, 0);
}

static char *revisions_dir(const tend_config *cfg)
{
	return tend_reconcile_state_path(cfg, "revisions");
}

static int export_with(char **out, tend_source *src, const char *revs, const char *commit)
{
	int error;

	if ((error = tend_dir_create_all(revs, 0700)) == 0)
		error = tend_source_export(out, src, commit, revs);
	return error;
}

int tend_reconcile_export(char **out, const tend_config *cfg, const char *commit)
{
	tend_source *src = NULL;
	int error;

	char *revs = revisions_dir(cfg);

	*out = NULL;
	if (!revs)
		return TEND_ERROR;
	if ((error = source_open(&src, cfg)) == 0)
		error = export_with(out, src, revs, commit);
	tend_source_free(src);
	free(revs);
	return error;
}

void tend_report_history(tend_state *st, const tend_reconcile_report *rep, int64_t start,
			 const char *outcome, const char *rollback_target, const char *failed_probe,
			 const char *probe_output)
{
	tend_state_history h;

	memset(&h, 0, sizeof(h));
	h.changes = tend_reconcile_report_changes(rep);
	snprintf(h.commit, sizeof(h.commit), "%s", rep->commit);
	h.start = start;
	h.end = tend_reconcile_now();
	h.outcome = (char *)outcome;
	h.message = rep->message;
	h.system_before = rep->system_before;
	h.system_after = rep->system_after;
	h.generation_before = rep->generation_before;
	h.generation_after = rep->generation_after;
	h.rollback_target = (char *)rollback_target;
	h.failed_probe = (char *)failed_probe;
	h.probe_output = (char *)probe_output;
	tend_state_history_add(st, &h);
	free(h.changes);
}

static void record(tend_state *st, const tend_reconcile_report *rep, int64_t start,
		   const char *outcome)
{
	const tend_state_history *last = st->n_history ? &st->history[st->n_history - 1] : NULL;

	/* The same failure on every poll is recorded once. */
	if (last && !strcmp(last->commit, rep->commit) && last->outcome &&
	    !strcmp(last->outcome, outcome) && last->message && rep->message &&
	    !strcmp(last->message, rep->message))
		return;
	tend_report_history(st, rep, start, outcome, NULL, NULL, NULL);
}

/* The previous commit's manifest, for probing after a rollback (NULL if unknown). */
static void load_prev(tend_desired *prev, int *have, tend_source *src, const char *revs,
		      const tend_config *cfg, const char *commit)
{
	char *dir = NULL;

	*have = 0;
	if (!commit[0])
		return;
	if (export_with(&dir, src, revs, commit) == 0 && tend_desired_load(prev, cfg, dir, commit) == 0)
		*have = 1;
	free(dir);
	tend_error_clear();
}

/* Changes to apply, and the host's apply_window (fleet.yaml) is closed: fetched, verified,
 * built and planned, not applied; the report says when the window opens. */
static int outside_window(tend_reconcile_report *rep, const tend_desired *d, const char *host)
{
	const tend_host *h = tend_manifest_host(d->manifest, host);
	time_t now = time(NULL), opens;
	struct tm tm;
	char when[64] = "?";

	if (!h || !h->apply_window || tend_window_contains(&h->window, now))
		return 0;
	opens = tend_window_next(&h->window, now);
	if (opens && localtime_r(&opens, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M %Z", &tm);
	rep->window_opens = (int64_t)opens;
	tend_report_set(rep, TEND_RECONCILE_WAITING, "commit %.12s: waiting for window %s (opens %s): "
			"%zu action%s planned; `tend reconcile --once --now` applies at once", d->commit,
			h->apply_window, when, rep->plan.count, rep->plan.count == 1 ? "" : "s");
	return 1;
}

/* The newest loaded commit's reboot_window for this host is the one tend keeps to. */
static void remember_reboot_window(tend_state *st, const tend_desired *d, const tend_config *cfg)
{
	const tend_host *h = tend_manifest_host(d->manifest, cfg->host);
	const char *want = h ? h->reboot_window : NULL;

	if ((!want && !st->reboot_window) || (want && st->reboot_window && !strcmp(want, st->reboot_window)))
		return;
	free(st->reboot_window);
	st->reboot_window = want ? strdup(want) : NULL;
	if (tend_state_save(st, cfg->state_dir, cfg->history_limit) < 0)
		tend_error_clear();   /* kept in memory; the next save writes it */
}

/* Steps after the lock is held and the state loaded, shared by reconcile and
 * the hand-driven rollback: prepare `commit`, plan, converge. force_system
 * (may be NULL) replaces the built system. */
static int reconcile_commit(tend_reconcile_report *rep, const tend_config *cfg, tend_state *st,
			    tend_source *src, const char *revs, const char *commit,
			    const char *force_system, const tend_reconcile_opts *opts, int64_t start,
			    int guarded)
{
	tend_desired d, prev;
	char *dir = NULL;
	int error, have_prev = 0;

	memset(&d, 0, sizeof(d));
	memset(&prev, 0, sizeof(prev));
	snprintf(rep->commit, sizeof(rep->commit), "%s", commit);
	if (opts->abort && *opts->abort) {
		tend_error_set("interrupted before preparing commit %.12s", commit);
		return TEND_ERROR;
	}
	if ((error = export_with(&dir, src, revs, commit)) < 0 ||
	    (error = tend_desired_load(&d, cfg, dir, commit)) < 0 ||
	    (error = tend_desired_prepare(&d, cfg, force_system ? force_system :
					  (!strcmp(commit, st->applied_commit) ? st->system : NULL),
					  NULL)) < 0) {
		tend_report_set(rep, TEND_RECONCILE_FAILED, "%s", tend_error_last());
		if (!opts->plan_only) {
			if (strcmp(commit, st->applied_commit))
				tend_state_failed_add(st, commit, tend_reconcile_now(), rep->message);
			record(st, rep, start, "failed");
			error = tend_state_save(st, cfg->state_dir, cfg->history_limit);
		} else if (opts->settle_unchanged) {
			/* The agent's pass, holding the lock: the failure is in the history (once,
			 * however often it repeats), not blocked: the agent tries the head again
			 * after its backoff, since a build can fail for a passing reason (a
			 * substituter down, memory short). */
			record(st, rep, start, "failed");
			error = tend_state_save(st, cfg->state_dir, cfg->history_limit);
		} else {
			error = 0;
		}
		goto out;
	}
	if (!opts->plan_only || opts->settle_unchanged)
		remember_reboot_window(st, &d, cfg);
	if ((error = tend_plan_compute(&rep->plan, cfg, st, &d, rep->system_before)) < 0)
		goto out;
	/* The agent's first pass only decides whether to go on: its converge pass (or tend plan)
	 * is the one whose switch is shown and recorded, and it asks the store then. */
	if (!(opts->plan_only && opts->settle_unchanged) &&
	    (error = tend_plan_closure(&rep->plan, cfg)) < 0)
		goto out;
	if ((!opts->plan_only || opts->settle_unchanged) && !opts->now && tend_plan_changes(&rep->plan) &&
	    outside_window(rep, &d, cfg->host))
		goto out;
	if (opts->plan_only && !(opts->settle_unchanged && !tend_plan_changes(&rep->plan))) {
		tend_report_set(rep, rep->plan.count ? TEND_RECONCILE_PLANNED : TEND_RECONCILE_NOTHING,
				"commit %.12s: %zu action%s", commit, rep->plan.count,
				rep->plan.count == 1 ? "" : "s");
		goto out;
	}
	if (!tend_plan_changes(&rep->plan)) {
		tend_report_set(rep, TEND_RECONCILE_NOTHING, "commit %.12s: nothing to change on this host",
				commit);
		if (strcmp(st->applied_commit, commit)) {
			snprintf(st->applied_commit, sizeof(st->applied_commit), "%s", commit);
			tend_state_failed_clear(st, commit);
			if (!st->system && d.system)
				st->system = strdup(d.system);
			rep->system_after = rep->system_before ? strdup(rep->system_before) : NULL;
			rep->generation_after = rep->generation_before;
			record(st, rep, start, "applied");
			error = tend_state_save(st, cfg->state_dir, cfg->history_limit);
		}
		snprintf(rep->applied_commit, sizeof(rep->applied_commit), "%s", st->applied_commit);
		goto out;
	}
	if (strcmp(st->applied_commit, commit))
		load_prev(&prev, &have_prev, src, revs, cfg, st->applied_commit);
	if (opts->abort && *opts->abort) {
		tend_error_set("interrupted before applying commit %.12s", commit);
		error = TEND_ERROR;
		goto out;
	}
	error = tend_converge(rep, cfg, st, &d, &rep->plan,
			      have_prev ? prev.manifest : (strcmp(st->applied_commit, commit) ? NULL : d.manifest),
			      opts, guarded);
out:
	tend_desired_dispose(&d);
	tend_desired_dispose(&prev);
	free(dir);
	return error;
}

static void observe_system(tend_reconcile_report *rep, const tend_config *cfg)
{
	tend_nix_current_system(&rep->system_before, cfg);
	tend_nix_profile_generation(&rep->generation_before, cfg->system.profile);
	tend_error_clear();
}

/* No new commit, and the host runs another system than the one tend applied. While the boot
 * in which switch-to-configuration exited 100 lasts, that is the reboot still to come;
 * otherwise an operator booted an older generation or rolled back by hand, and switching
 * forward again would undo their escape from a bad system: tend holds until a new commit
 * arrives or `tend resume` leaves <state_dir>/resume. Returns 1 with the report set when it
 * holds, 0 to go on, negative on error. */
static int hold_check(tend_reconcile_report *out, const tend_config *cfg, const tend_state *st)
{
	const char *current = out->system_before;
	const tend_state_history *last = st->n_history ? &st->history[st->n_history - 1] : NULL;
	char id[64], *resume;

	if (!(resume = tend_reconcile_state_path(cfg, TEND_RESUME_FILE)))
		return TEND_ERROR;
	/* the host runs what tend applied (a pending reboot's probes are tend_reboot_probation's) */
	if (!st->system || !current || !strcmp(current, st->system)) {
		free(resume);
		return 0;
	}
	/* tend's own rollback did not get back to the recorded system: the host runs what tend
	 * left, and repairing that is tend's job, not a hold */
	if (last && last->outcome && !strcmp(last->outcome, "rollback-failed")) {
		free(resume);
		return 0;
	}
	tend_nix_boot_id(id, sizeof(id));
	if (st->reboot_boot_id && !strcmp(st->reboot_boot_id, id)) {
		free(resume);
		tend_report_set(out, TEND_RECONCILE_REBOOT_REQUIRED, "commit %.12s: %s is the boot "
				"default and takes effect at the next boot; %s runs until then",
				st->applied_commit, st->system, current);
		return 1;
	}
	if (tend_path_exists(resume)) {
		/* the operator said to go on: switch forward; the file goes once the host runs
		 * what tend applied (a failed or interrupted switch keeps the operator's word) */
		free(resume);
		return 0;
	}
	free(resume);
	tend_report_set(out, TEND_RECONCILE_HELD, "holding: the host runs %s, not %s that tend "
			"applied at commit %.12s (an older generation was booted or rolled back to by "
			"hand); tend switches again at a new commit or after `tend resume`",
			current, st->system, st->applied_commit);
	return 1;
}

static void resume_done(const tend_config *cfg)
{
	char *path = tend_reconcile_state_path(cfg, TEND_RESUME_FILE);

	if (path)
		unlink(path);
	free(path);
}

int tend_reconcile_resume(const tend_config *cfg)
{
	char *path = tend_reconcile_state_path(cfg, TEND_RESUME_FILE);
	static const char text[] = "switch forward at the next reconcile (tend resume)\n";
	int error;

	if (!path)
		return TEND_ERROR;
	if (!tend_path_exists(cfg->state_dir)) {
		tend_error_set("%s does not exist: tend has applied nothing on this host", cfg->state_dir);
		free(path);
		return TEND_ENOTFOUND;
	}
	error = tend_file_write_atomic(path, text, sizeof(text) - 1, 0600, (uid_t)-1, (gid_t)-1);
	free(path);
	return error;
}

int tend_reconcile_once(tend_reconcile_report *out, const tend_config *cfg,
			const tend_reconcile_opts *opts)
{
	tend_reconcile_opts defaults = TEND_RECONCILE_OPTS_INIT, unlocked;
	tend_state_lock *lock = NULL;
	tend_state *st = NULL;
	tend_source *src = NULL;
	char head[41] = "", *revs = NULL;
	int64_t start = tend_reconcile_now();
	int error, rc, beside = 0, records, reboot_now = 0;

	if (!opts)
		opts = &defaults;
	memset(out, 0, sizeof(*out));
	error = tend_state_lock_take(&lock, cfg->state_dir);
	if (error == TEND_ELOCKED && opts->plan_only) {
		/* The agent is working on the host: plan beside it, from the mirror
		 * as last fetched, in a private directory, touching nothing of its. */
		beside = 1;
		out->planned_beside_agent = 1;
		tend_error_clear();
		error = 0;
		if (opts->settle_unchanged) {
			/* without the lock, nothing may be recorded */
			unlocked = *opts;
			unlocked.settle_unchanged = 0;
			opts = &unlocked;
		}
	}
	if (error < 0 || (error = tend_state_load(&st, cfg->state_dir)) < 0 ||
	    (error = tend_reconcile_state_check(cfg, st)) < 0)
		goto out;
	if (beside) {
		char *tmpl = tend_reconcile_state_path(cfg, "plan-XXXXXX");
		if (!tmpl || !mkdtemp(tmpl)) {
			tend_error_set_errno("cannot create a directory under %s", cfg->state_dir);
			free(tmpl);
			error = TEND_ERROR;
			goto out;
		}
		revs = tmpl;
	} else if (!(revs = revisions_dir(cfg))) {
		error = TEND_ERROR;
		goto out;
	}
	if (st->inflight.active && !opts->plan_only) {
		error = tend_recover(out, cfg, st, opts);
		goto out;
	}
	if (st->inflight.active && opts->settle_unchanged) {
		/* The agent's first pass never settles over a change left in flight
		 * (a crash, a stop while probing): there is work, and the full pass
		 * finishes or undoes it. */
		snprintf(out->commit, sizeof(out->commit), "%s", st->inflight.commit);
		snprintf(out->applied_commit, sizeof(out->applied_commit), "%s", st->applied_commit);
		observe_system(out, cfg);
		tend_report_set(out, TEND_RECONCILE_PLANNED, "commit %.12s was interrupted (%s); "
				"the next reconcile finishes or undoes it", st->inflight.commit,
				tend_state_phase_name(st->inflight.phase));
		error = 0;
		goto out;
	}
	/* rebooted into what tend applied, with a reboot pending: its probes decide first, before
	 * any fetch (a system that broke the network must still go back) */
	observe_system(out, cfg);
	records = !beside && (!opts->plan_only || opts->settle_unchanged);
	if (records && (rc = tend_reboot_probation(out, cfg, st, opts, &reboot_now)) != 0) {
		error = rc < 0 ? rc : 0;
		goto out;
	}
	if ((error = source_open(&src, cfg)) < 0)
		goto out;
	if (opts->no_fetch || beside)
		error = tend_source_resolve(head, tend_source_mirror_dir(src), tend_source_branch(src));
	else
		error = tend_source_poll(src, head, NULL);
	if (error < 0)
		goto out;
	snprintf(out->commit, sizeof(out->commit), "%s", head);
	snprintf(out->applied_commit, sizeof(out->applied_commit), "%s", st->applied_commit);
	if ((!strcmp(head, st->applied_commit) || (tend_state_failed_has(st, head) && !opts->retry)) &&
	    (rc = hold_check(out, cfg, st)) != 0) {
		error = rc < 0 ? rc : 0;
		goto out;
	}
	if (tend_state_failed_has(st, head) && !opts->retry) {
		char reason[1100] = "", applied[41];
		size_t i;
		for (i = 0; i < st->n_failed; i++)
			if (!strcmp(st->failed[i].commit, head) && st->failed[i].reason)
				snprintf(reason, sizeof(reason), "%s", st->failed[i].reason);
		/* A head refused for its ancestry is what --allow-non-fast-forward is
		 * for (verification still refuses bad signatures). */
		if (opts->allow_non_fast_forward && !strncmp(reason, "refused: ", 9))
			goto verify;
		/* Meanwhile the applied commit is kept in shape (drift is repaired). */
		snprintf(applied, sizeof(applied), "%s", st->applied_commit);
		if (applied[0] && strcmp(applied, head)) {
			if ((error = reconcile_commit(out, cfg, st, src, revs, applied, NULL, opts, start, 1)) < 0)
				goto out;
			if (out->outcome != TEND_RECONCILE_NOTHING)
				goto out;
		}
		snprintf(out->commit, sizeof(out->commit), "%s", head);
		tend_report_set(out, TEND_RECONCILE_BLOCKED,
				"commit %.12s failed before and is not retried until a new commit "
				"arrives or --retry is given (%s)", head, reason);
		error = 0;
		goto out;
	}
verify:
	if (strcmp(head, st->applied_commit)) {
		rc = tend_source_verify_range(src, st->applied_commit[0] ? st->applied_commit : NULL,
					      head, opts->allow_non_fast_forward);
		if (rc == TEND_EREFUSED) {
			char reason[1100];
			tend_report_set(out, TEND_RECONCILE_REFUSED, "%s", tend_error_last());
			snprintf(reason, sizeof(reason), "refused: %s", out->message ? out->message : "");
			if (!opts->plan_only) {
				tend_state_failed_add(st, head, tend_reconcile_now(), reason);
				record(st, out, start, "refused");
				error = tend_state_save(st, cfg->state_dir, cfg->history_limit);
			} else {
				error = 0;
			}
			goto out;
		}
		if ((error = rc) < 0)
			goto out;
	}
	if ((error = reconcile_commit(out, cfg, st, src, revs, head, NULL, opts, start, 1)) < 0)
		goto out;
	/* the agent's settling pass holds the lock too: it prunes like a reconcile */
	if (!opts->plan_only || opts->settle_unchanged)
		tend_source_prune(revs, st->applied_commit[0] ? st->applied_commit : NULL, head);
out:
	/* what the host runs now against what it booted, whatever this reconcile did */
	if (error == 0)
		out->reboot_required = tend_nix_reboot_required(cfg);
	/* a reboot due, in the reboot_window (or back after a failed one): now */
	if (error == 0 && st && !beside && (!opts->plan_only || opts->settle_unchanged)) {
		tend_reboot_maybe(out, cfg, st, reboot_now);
	}
	/* the host runs what tend applied: a `tend resume` has done its work (or had none) */
	if (error == 0 && !beside && (!opts->plan_only || opts->settle_unchanged) &&
	    (out->outcome == TEND_RECONCILE_APPLIED || out->outcome == TEND_RECONCILE_NOTHING))
		resume_done(cfg);
	if (beside && revs)
		tend_dir_remove_all(revs);
	free(revs);
	tend_source_free(src);
	tend_state_free(st);
	tend_state_lock_release(lock);
	return error;
}

/* The generation before the current one whose system differs from it. */
static int previous_generation(long *out, const tend_config *cfg, const char *current)
{
	long *gens = NULL, cur = 0;
	size_t n = 0, i;
	int error;

	*out = 0;
	if ((error = tend_nix_generations(&gens, &n, cfg->system.profile)) < 0)
		return error;
	tend_nix_profile_generation(&cur, cfg->system.profile);
	for (i = n; i-- > 0;) {
		char *path = NULL;
		if (gens[i] >= cur && cur)
			continue;
		if (tend_nix_generation_path(&path, cfg->system.profile, gens[i]) == 0 &&
		    (!current || strcmp(path, current))) {
			*out = gens[i];
			free(path);
			break;
		}
		free(path);
	}
	free(gens);
	if (!*out) {
		tend_error_set("%s has no earlier generation to roll back to", cfg->system.profile);
		return TEND_ENOTFOUND;
	}
	return 0;
}

int tend_reconcile_rollback(tend_reconcile_report *out, const tend_config *cfg,
			    long generation, const tend_reconcile_opts *opts)
{
	tend_reconcile_opts defaults = TEND_RECONCILE_OPTS_INIT, at_once;
	tend_state_lock *lock = NULL;
	tend_state *st = NULL;
	tend_source *src = NULL;
	char *target = NULL, was[41], *revs = NULL;
	const char *commit = NULL;
	int64_t start = tend_reconcile_now();
	size_t i;
	int error;

	if (!opts)
		opts = &defaults;
	/* an operator's rollback is not held to the apply window */
	at_once = *opts;
	at_once.now = 1;
	opts = &at_once;
	memset(out, 0, sizeof(*out));
	if ((error = tend_state_lock_take(&lock, cfg->state_dir)) < 0 ||
	    (error = tend_state_load(&st, cfg->state_dir)) < 0 ||
	    (error = tend_reconcile_state_check(cfg, st)) < 0)
		goto out;
	if (st->inflight.active) {
		error = tend_recover(out, cfg, st, opts);
		goto out;
	}
	observe_system(out, cfg);
	if (!generation && (error = previous_generation(&generation, cfg, out->system_before)) < 0)
		goto out;
	if ((error = tend_nix_generation_path(&target, cfg->system.profile, generation)) < 0)
		goto out;
	/* The commit that system came from, if the history knows it. */
	for (i = st->n_history; i-- > 0 && !commit;)
		if (st->history[i].system_after && !strcmp(st->history[i].system_after, target) &&
		    st->history[i].outcome && !strcmp(st->history[i].outcome, "applied"))
			commit = st->history[i].commit;
	snprintf(was, sizeof(was), "%s", st->applied_commit);
	if (commit && commit[0]) {
		char c[41];
		snprintf(c, sizeof(c), "%s", commit);
		snprintf(out->commit, sizeof(out->commit), "%s", c);
		if ((error = source_open(&src, cfg)) < 0)
			goto out;
		if (!(revs = revisions_dir(cfg))) {
			error = TEND_ERROR;
			goto out;
		}
		if ((error = reconcile_commit(out, cfg, st, src, revs, c, target, opts, start, 0)) < 0)
			goto out;
	} else {
		/* Unknown origin: only the system goes back. */
		tend_plan plan = { 0 };
		tend_desired d;
		memset(&d, 0, sizeof(d));
		snprintf(d.commit, sizeof(d.commit), "%s", st->applied_commit);
		if (!d.commit[0]) {
			tend_error_set("nothing was applied by tend yet; nothing to roll back");
			error = TEND_ENOTFOUND;
			goto out;
		}
		if ((error = tend_plan_add(&plan, TEND_ACTION_SWITCH, NULL, NULL, out->system_before,
					   target, "rollback")) < 0)
			goto out;
		d.system = target;
		error = tend_converge(out, cfg, st, &d, &plan, NULL, opts, 0);
		d.system = NULL;
		out->plan = plan;
		if (error < 0)
			goto out;
	}
	/* The commit rolled away from is not re-applied by the next poll, and the
	 * history says this was a hand-driven rollback. */
	if (out->outcome == TEND_RECONCILE_APPLIED || out->outcome == TEND_RECONCILE_NOTHING) {
		char reason[160];
		snprintf(reason, sizeof(reason), "rolled back by hand to generation %ld", generation);
		if (was[0] && strcmp(was, st->applied_commit))
			tend_state_failed_add(st, was, tend_reconcile_now(), reason);
		if (st->n_history && st->history[st->n_history - 1].start >= start) {
			tend_state_history *h = &st->history[st->n_history - 1];
			char *o = strdup("manual-rollback"), *m = NULL;
			if (asprintf(&m, "%s (%s)", reason, target) < 0)
				m = NULL;
			if (o && m) {
				free(h->outcome);
				free(h->message);
				h->outcome = o;
				h->message = m;
				free(h->rollback_target);
				h->rollback_target = strdup(target);
			} else {
				free(o);
				free(m);
			}
		}
		error = tend_state_save(st, cfg->state_dir, cfg->history_limit);
		tend_report_set(out, TEND_RECONCILE_APPLIED, "%s (%s)", reason, target);
	}
out:
	free(revs);
	free(target);
	tend_source_free(src);
	tend_state_free(st);
	tend_state_lock_release(lock);
	return error;
}
