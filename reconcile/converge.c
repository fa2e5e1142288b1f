/* Converge and roll back: the step protocol of one change. The in-flight record and the
 * backup (reconcile/backup.c) come first, so a crash at any point can be finished or undone
 * from the state alone. Order: files and the secrets' new generation (reconcile/apply.c), the
 * switch, the secrets whose owner the switch created, try-restart of the units of changed
 * secrets, then probes; a failure returns the files, the secrets and the previous system,
 * and probes it again. tend_recover finishes or undoes a change a crash interrupted. */
#include "reconcile/internal.h"
#include "reconcile/closure.h"
#include "reconcile/nix.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


typedef struct {
	const tend_config *cfg;
	tend_state *st;
	tend_reconcile_report *rep;
	const tend_reconcile_opts *opts;
	int64_t start;
	tend_buf switch_output;
	int switch_attempted;
	tend_mask mask;          /* secret values: masked in every text kept or sent */
	const tend_action *sw;   /* the plan's switch (its closure diff goes to the history) */
	const tend_desired *prev_desired;   /* the previous commit with its secrets, when a
					     * rollback may have to write them again (a reboot
					     * emptied the ramfs mid-change); may be NULL */
} conv;

static int save(conv *c)
{
	return tend_state_save(c->st, c->cfg->state_dir, c->cfg->history_limit);
}

static const tend_action *plan_switch(const tend_plan *plan)
{
	size_t i;

	for (i = 0; i < plan->count; i++)
		if (plan->items[i].kind == TEND_ACTION_SWITCH)
			return &plan->items[i];
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void history(conv *c, const char *commit, const char *outcome, const char *message,
		    const tend_probe_failure *pf, const char *rollback_target)
{
	tend_reconcile_report *rep = c->rep;
	tend_state_history h;

	memset(&h, 0, sizeof(h));
	snprintf(h.commit, sizeof(h.commit), "%s", commit);
	h.start = c->start;
	h.end = tend_reconcile_now();
	h.outcome = (char *)outcome;
	/* masked copies: history is kept, shown by tend history and mailed */
	h.message = tend_mask_apply(&c->mask, message);
	h.failed_probe = pf ? pf->failed_probe : NULL;
	h.probe_output = tend_mask_apply(&c->mask, pf ? pf->output : NULL);
	h.switch_output = tend_mask_apply(&c->mask, c->switch_output.ptr);
	h.system_before = rep->system_before;
	h.system_after = rep->system_after;
	h.generation_before = rep->generation_before;
	h.generation_after = rep->generation_after;
	h.rollback_target = (char *)rollback_target;
	h.changes = rep->switched && c->sw && c->sw->closure
		? tend_closure_diff_format(c->sw->closure, "") : NULL;
	if (h.changes && !*h.changes) {
		free(h.changes);
		h.changes = NULL;
	}
	tend_state_history_add(c->st, &h);
	free(h.changes);
	free(h.message);
	free(h.probe_output);
	free(h.switch_output);
}

/* The report's texts (status, logs, alert mails, the CLI) masked. */
static void mask_report(conv *c)
{
	tend_mask_inplace(&c->mask, &c->rep->message);
	tend_mask_inplace(&c->mask, &c->rep->probe_output);
}

static void report_probe(tend_reconcile_report *rep, const tend_probe_failure *pf)
{
	if (!pf || !pf->failed_probe)
		return;
	free(rep->failed_probe);
	free(rep->probe_output);
	rep->failed_probe = strdup(pf->failed_probe);
	rep->probe_output = dup_or_null(pf->output);
}

static int health_copy(tend_service_health *dst, const tend_service_health *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->health = src->health;
	dst->checked_at = src->checked_at;
	if (!(dst->service = strdup(src->service ? src->service : "")) ||
	    (src->probe && !(dst->probe = strdup(src->probe)))) {
		free(dst->service);
		return TEND_ERROR;
	}
	return 0;
}

/* The report's per-service health: what the probes of what runs now (runs,
 * may be NULL) found, with the service whose probe failed the commit
 * (failure, may be NULL) marked failing whether or not it runs again. */
static void report_services(tend_reconcile_report *rep, const tend_probe_failure *runs,
			    const tend_probe_failure *failure)
{
	const tend_service_health *bad = NULL;
	tend_service_health *list;
	size_t i, n = 0, cap;

	for (i = 0; failure && i < failure->n_services; i++)
		if (failure->services[i].health == TEND_HEALTH_FAILING)
			bad = &failure->services[i];
	if (!runs || !runs->n_services)
		runs = failure;   /* nothing probed afterwards: the commit's own results */
	cap = (runs ? runs->n_services : 0) + 1;
	if (!(list = calloc(cap, sizeof(*list))))
		return;
	for (i = 0; runs && i < runs->n_services; i++) {
		const tend_service_health *h = &runs->services[i];

		if (bad && h->service && bad->service && !strcmp(h->service, bad->service))
			h = bad;
		if (health_copy(&list[n], h) == 0)
			n++;
		if (h == bad)
			bad = NULL;
	}
	if (bad && health_copy(&list[n], bad) == 0)   /* a service the previous commit did not have */
		n++;
	tend_service_health_free(rep->services, rep->n_services);
	rep->services = list;
	rep->n_services = n;
}

/* Undo the in-flight change: files back, previous system re-activated, probes
 * of the previous commit (prev_manifest, may be NULL) to confirm. */
static int roll_back(conv *c, const char *why, const tend_probe_failure *first_failure,
		     const tend_manifest *prev_manifest)
{
	tend_state_inflight *in = &c->st->inflight;
	tend_reconcile_report *rep = c->rep;
	tend_probe_failure again;
	tend_switch_result sw;
	char commit[41], *reason = strdup(why ? why : "failed");
	char *message = NULL, *current = NULL;
	int healthy = 1, error = 0;

	tend_mask_inplace(&c->mask, &reason);

	memset(&again, 0, sizeof(again));
	snprintf(commit, sizeof(commit), "%s", in->commit);
	in->phase = TEND_PHASE_ROLLBACK;
	if (save(c) < 0)
		goto out;
	if (in->backup_dir && tend_reconcile_backup_restore(c->cfg, in->backup_dir, c->prev_desired) < 0) {
		healthy = 0;
		tend_buf_printf(&c->switch_output, "restoring files: %s\n", tend_error_last());
	}
	tend_nix_current_system(&current, c->cfg);
	if (in->prev_system && (c->switch_attempted || !current || strcmp(current, in->prev_system))) {
		if (tend_nix_switch(&sw, c->cfg, in->prev_system, NULL) < 0) {
			healthy = 0;
			tend_buf_printf(&c->switch_output, "rollback switch: %s\n", tend_error_last());
		}
		tend_buf_put(&c->switch_output, sw.output.ptr, sw.output.size);
		if (sw.generation)
			rep->generation_after = sw.generation;
		tend_switch_result_dispose(&sw);
	} else if (!in->prev_system && c->switch_attempted) {
		healthy = 0;
		tend_buf_puts(&c->switch_output, "no previous system to return to\n");
	}
	/* the previous secrets' units, once the previous units are back (try-restart) */
	if (healthy && in->backup_dir && tend_reconcile_backup_restart(in->backup_dir, &c->switch_output) < 0)
		healthy = 0;
	free(rep->system_after);
	rep->system_after = NULL;
	tend_nix_current_system(&rep->system_after, c->cfg);
	if (healthy && prev_manifest &&
	    tend_reconcile_probe_host(&again, c->cfg, prev_manifest, c->cfg->host,
				      c->opts ? c->opts->abort : NULL) < 0)
		healthy = 0;
	if (asprintf(&message, "%s; rolled back to %s%s", reason ? reason : "failed",
		     in->prev_system ? in->prev_system : "the previous files",
		     healthy ? (prev_manifest ? ", healthy again" : "")
			     : (again.failed_probe ? ", which is unhealthy too" : ", which failed too")) < 0)
		message = NULL;
	/* A new commit that failed is not retried; a repair of the applied commit
	 * (drift) that failed is tried again on the next poll. */
	if (strcmp(commit, c->st->applied_commit))
		tend_state_failed_add(c->st, commit, tend_reconcile_now(), reason);   /* masked above */
	if (in->prev_system) {
		free(c->st->system);
		free(c->st->reboot_boot_id);
		c->st->reboot_boot_id = NULL;
		c->st->system = strdup(in->prev_system);
		c->st->generation = rep->generation_after;
	}
	report_probe(rep, first_failure);
	report_services(rep, &again, first_failure);
	history(c, commit, healthy ? "rolled-back" : "rollback-failed", message, first_failure,
		in->prev_system);
	tend_report_set(rep, healthy ? TEND_RECONCILE_ROLLED_BACK : TEND_RECONCILE_ROLLBACK_FAILED,
			"%s", message ? message : "rolled back");
	snprintf(rep->applied_commit, sizeof(rep->applied_commit), "%s", c->st->applied_commit);
	if (in->backup_dir)
		tend_dir_remove_all(in->backup_dir);
	tend_state_inflight_clear(c->st);
	error = save(c);
out:
	tend_probe_failure_dispose(&again);
	free(current);
	free(message);
	free(reason);
	return error;
}

/* The change is healthy (or, with TEND_RECONCILE_REBOOT_REQUIRED, the boot
 * default waiting for a reboot): adopt it in the state. */
static int finish(conv *c, const char *commit, const char *system, const char *message,
		  tend_reconcile_outcome outcome)
{
	tend_state_inflight *in = &c->st->inflight;
	tend_reconcile_report *rep = c->rep;
	/* the previous commit is known to be what the previous system ran only when tend had
	 * applied that system (not during a pending boot, nor over an operator's switch) */
	int prev_known = c->st->system && in->prev_system && !strcmp(c->st->system, in->prev_system);
	int error;

	if (in->backup_dir && (error = tend_reconcile_backup_adopt(c->st, in->backup_dir)) < 0)
		return error;
	if (in->backup_dir)
		tend_reconcile_backup_prune_secrets(c->cfg, in->backup_dir);
	snprintf(c->st->applied_commit, sizeof(c->st->applied_commit), "%s", commit);
	if (system) {
		free(c->st->system);
		c->st->system = strdup(system);
	}
	free(c->st->reboot_boot_id);
	c->st->reboot_boot_id = NULL;
	c->st->reboot_back = 0;
	if (in->active && in->target_system && in->prev_system &&
	    strcmp(in->target_system, in->prev_system)) {
		/* what a boot into this system that fails its probes goes back to */
		free(c->st->reboot_prev_system);
		c->st->reboot_prev_system = strdup(in->prev_system);
		snprintf(c->st->reboot_prev_commit, sizeof(c->st->reboot_prev_commit), "%s",
			 prev_known && strcmp(in->prev_commit, commit) ? in->prev_commit : "");
	}
	if (outcome == TEND_RECONCILE_REBOOT_REQUIRED) {
		char id[64];

		/* the running system stays until the next boot; this boot's id tells the next
		 * reconciles that it still waits (not an operator's rollback) */
		tend_nix_boot_id(id, sizeof(id));
		c->st->reboot_boot_id = strdup(id);
	}
	tend_nix_profile_generation(&c->st->generation, c->cfg->system.profile);
	if (!rep->system_after)
		tend_nix_current_system(&rep->system_after, c->cfg);
	tend_error_clear();
	rep->generation_after = c->st->generation;
	tend_state_failed_clear(c->st, commit);
	history(c, commit, tend_reconcile_outcome_name(outcome), message, NULL, NULL);
	tend_report_set(rep, outcome, "%s", message);
	snprintf(rep->applied_commit, sizeof(rep->applied_commit), "%s", commit);
	if (in->backup_dir)
		tend_dir_remove_all(in->backup_dir);
	tend_state_inflight_clear(c->st);
	return save(c);
}

/* "the following units failed: a.service, b.service" from switch-to-configuration's output, or NULL. */
static char *failed_units(const tend_buf *output)
{
	static const char needle[] = "the following units failed: ";
	const char *p, *end;

	if (!output->ptr || !(p = memmem(output->ptr, output->size, needle, sizeof(needle) - 1)))
		return NULL;
	p += sizeof(needle) - 1;
	end = memchr(p, '\n', output->size - (size_t)(p - output->ptr));
	return strndup(p, end ? (size_t)(end - p) : output->size - (size_t)(p - output->ptr));
}

/* A switch that exited 4 naming only units that failed for want of a secret whose owner it
 * created: not the commit's failure (the secret is installed next and the units restarted;
 * the probes decide). 1 when so, the note in the switch output. */
static int switch_forgiven(conv *c, const tend_desired *d, const tend_switch_result *sw)
{
	char *units;
	int yes;

	if (!d || sw->exit_code != 4 || !(units = failed_units(&sw->output)))
		return 0;
	if ((yes = tend_reconcile_apply_pending_explains(d, units)))
		tend_buf_printf(&c->switch_output, "units failed before their secrets could be "
				"installed (their owner is new): %s\n", units);
	free(units);
	if (yes)
		tend_error_clear();
	return yes;
}

/* switch-to-configuration failed (docs/reconcile.md, "When a switch fails"): exit 100 means
 * the new system is the boot default and takes effect at the next boot, which is not a
 * failure (no rollback: the running system is untouched); anything else, 4 (units failed,
 * named) included, rolls back. */
static int switch_failed(conv *c, const char *commit, const char *to, const tend_switch_result *sw,
			 const tend_manifest *prev_manifest)
{
	char *why = NULL, *units = NULL;
	int error;

	if (sw->exit_code == 100) {
		if (asprintf(&why, "commit %.12s: switched the boot default to %s; switch-to-configuration "
			     "exited 100: it takes effect at the next boot (reboot required)", commit, to) < 0)
			why = NULL;
		error = finish(c, commit, to, why ? why : "reboot required", TEND_RECONCILE_REBOOT_REQUIRED);
		free(why);
		return error;
	}
	if (sw->exit_code == 4 && (units = failed_units(&sw->output)) != NULL) {
		if (asprintf(&why, "commit %.12s: switch failed: units failed to start: %s", commit, units) < 0)
			why = NULL;
	} else if (asprintf(&why, "commit %.12s: switch failed: %s", commit, tend_error_last()) < 0) {
		why = NULL;
	}
	error = roll_back(c, why, NULL, prev_manifest);
	free(units);
	free(why);
	return error;
}

/* operation: boot (fleet.yaml): the new system becomes the boot default, as nixos-rebuild boot
 * does, and runs after the next reboot, whose probes decide (reconcile/reboot.c). Files and
 * secrets are tend's and are in place already. */
static int boot_default(conv *c, const char *commit, const char *to, const tend_manifest *prev_manifest)
{
	tend_switch_result sw;
	char *why = NULL;
	int error;

	c->st->inflight.phase = TEND_PHASE_SWITCH;
	if ((error = save(c)) < 0)
		return error;
	error = tend_nix_boot(&sw, c->cfg, to);
	tend_buf_put(&c->switch_output, sw.output.ptr, sw.output.size);
	c->rep->generation_after = sw.generation;
	tend_switch_result_dispose(&sw);
	if (error < 0) {
		/* the running system is untouched; the boot default and the files go back */
		if (asprintf(&why, "commit %.12s: switch-to-configuration boot failed: %s", commit,
			     tend_error_last()) < 0)
			why = NULL;
		if (c->st->inflight.prev_system) {
			if (tend_nix_boot(&sw, c->cfg, c->st->inflight.prev_system) < 0)
				tend_buf_printf(&c->switch_output, "restoring the boot default: %s\n",
						tend_error_last());
			tend_switch_result_dispose(&sw);
		}
		error = roll_back(c, why, NULL, prev_manifest);
		free(why);
		return error;
	}
	free(c->rep->system_after);
	c->rep->system_after = NULL;
	if (asprintf(&why, "commit %.12s: %s is the boot default (operation: boot); it runs after "
		     "the next reboot", commit, to) < 0)
		why = NULL;
	error = finish(c, commit, to, why ? why : "boot default set", TEND_RECONCILE_REBOOT_REQUIRED);
	free(why);
	return error;
}

int tend_converge(tend_reconcile_report *rep, const tend_config *cfg, tend_state *st,
		  const tend_desired *d, const tend_plan *plan,
		  const tend_manifest *prev_manifest, const tend_reconcile_opts *opts, int guarded)
{
	const tend_action *sw_action = plan_switch(plan);
	conv c = { cfg, st, rep, opts, tend_reconcile_now(), TEND_BUF_INIT, 0, { NULL, 0 }, sw_action,
		   NULL };
	const tend_host *host = d->manifest ? tend_manifest_host(d->manifest, cfg->host) : NULL;
	/* operation: boot, unless the operator asked for the change at once (--now, tend rollback) */
	int boot = host && host->operation == TEND_OPERATION_BOOT && !(opts && opts->now);
	tend_probe_failure pf;
	tend_switch_result sw;
	tend_guard guard;
	char *backup = NULL, *why = NULL, *msg = NULL;
	int error;

	memset(&pf, 0, sizeof(pf));
	memset(&guard, 0, sizeof(guard));
	c.switch_output.max = TEND_STATE_MAX_OUTPUT;
	/* An operator's nixos-rebuild (or any switch) in progress: touch nothing, try again later. */
	if (sw_action && tend_nix_switch_busy(cfg)) {
		tend_report_set(rep, TEND_RECONCILE_WAITING, "commit %.12s: %s", d->commit,
				tend_error_last());
		error = 0;
		goto out;
	}
	/* what the switch must leave reachable, asked before anything changes */
	if (sw_action && !boot && guarded && (error = tend_guard_prepare(&guard, cfg, d->manifest)) < 0)
		goto out;
	/* before anything is written: the installed (old) values are on disk */
	if ((error = tend_mask_collect(&c.mask, cfg, st, d)) < 0 ||
	    (error = tend_reconcile_backup_write(&backup, cfg, d, plan)) < 0)
		goto out;
	if ((error = tend_state_inflight_begin(st, d->commit, rep->system_before,
					       rep->generation_before,
					       sw_action ? sw_action->to : NULL, backup, c.start)) < 0 ||
	    (error = save(&c)) < 0)
		goto out;
	/* Units of changed secrets: try-restarted once the units themselves are updated (after
	 * the switch); with operation: boot the running units are the ones to restart, now. */
	if (tend_reconcile_apply_files(cfg, d, plan) < 0 ||
	    ((boot || !sw_action) && tend_reconcile_apply_restarts(plan, &c.switch_output) < 0) ||
	    (!sw_action && tend_reconcile_apply_pending(cfg, d, &c.switch_output) < 0)) {
		why = strdup(tend_error_last());
		error = roll_back(&c, why, NULL, prev_manifest);
		goto out;
	}
	if (sw_action && boot) {
		rep->switched = 1;
		error = boot_default(&c, d->commit, sw_action->to, prev_manifest);
		goto out;
	}
	if (sw_action) {
		st->inflight.phase = TEND_PHASE_SWITCH;
		if ((error = save(&c)) < 0)
			goto out;
		c.switch_attempted = 1;
		rep->switched = 1;
		error = tend_nix_switch(&sw, cfg, sw_action->to, opts ? opts->abort : NULL);
		tend_buf_put(&c.switch_output, sw.output.ptr, sw.output.size);
		rep->generation_after = sw.generation;
		if (error < 0 && sw.interrupted) {
			/* Stopping while the switch runs in its unit: the change stays in flight, and
			 * the next start finishes it from the switch's recorded result. */
			tend_switch_result_dispose(&sw);
			goto out;
		}
		if (error < 0 && switch_forgiven(&c, d, &sw))
			error = 0;
		if (error < 0) {
			error = switch_failed(&c, d->commit, sw_action->to, &sw, prev_manifest);
			tend_switch_result_dispose(&sw);
			goto out;
		}
		tend_switch_result_dispose(&sw);
		free(rep->system_after);
		rep->system_after = strdup(sw_action->to);
		if (tend_reconcile_apply_pending(cfg, d, &c.switch_output) < 0 ||
		    tend_reconcile_apply_restarts(plan, &c.switch_output) < 0) {
			if (asprintf(&why, "commit %.12s: %s", d->commit, tend_error_last()) < 0)
				why = NULL;
			error = roll_back(&c, why, NULL, prev_manifest);
			goto out;
		}
		if (guarded && tend_guard_check(&guard, cfg, opts ? opts->abort : NULL) < 0) {
			if (opts && opts->abort && *opts->abort) {
				/* stopping: the next start finishes the change (probes decide) */
				tend_error_set("interrupted while checking reachability after switching "
					       "to %s; it is finished on the next start", sw_action->to);
				error = TEND_ERROR;
				goto out;
			}
			if (asprintf(&why, "commit %.12s: %s", d->commit, tend_error_last()) < 0)
				why = NULL;
			error = roll_back(&c, why, NULL, prev_manifest);
			goto out;
		}
	}
	st->inflight.phase = TEND_PHASE_PROBES;
	if ((error = save(&c)) < 0)
		goto out;
	if (d->manifest &&
	    tend_reconcile_probe_host(&pf, cfg, d->manifest, cfg->host, opts ? opts->abort : NULL) < 0) {
		if (pf.aborted) {
			/* Shutting down: leave the change in flight; the next start finishes it. */
			tend_error_set("interrupted while probing commit %.12s; it is finished on the next start",
				       d->commit);
			error = TEND_ERROR;
			goto out;
		}
		if (asprintf(&why, "commit %.12s: %s", d->commit, tend_error_last()) < 0)
			why = NULL;
		error = roll_back(&c, why, &pf, prev_manifest);
		goto out;
	}
	report_services(rep, &pf, NULL);
	if (asprintf(&msg, "applied commit %.12s%s%s", d->commit, sw_action ? ", switched to " : "",
		     sw_action ? sw_action->to : "") < 0)
		msg = NULL;
	error = finish(&c, d->commit, d->system, msg ? msg : "applied", TEND_RECONCILE_APPLIED);
out:
	tend_guard_dispose(&guard);
	mask_report(&c);
	tend_mask_dispose(&c.mask);
	tend_probe_failure_dispose(&pf);
	tend_buf_dispose(&c.switch_output);
	free(backup);
	free(why);
	free(msg);
	return error;
}

/* A change interrupted during its switch (a crash, a stop of tend, a power cut). The switch's
 * recorded result, when the transient unit left one, is what tend would have seen; without
 * one, a system already activated (current is the target) is switched again, as
 * switch-to-configuration resumes an interrupted run, and then probed; one never activated
 * is rolled back by the caller. Returns 0 when the caller goes on (probe, or roll back),
 * 1 when this concluded the change, negative on error. */
static int resume_switch(conv *c, tend_state_inflight *in, char **current,
			 const tend_desired *now, const tend_manifest *prev_manifest)
{
	tend_switch_result sw;
	int known = 0, error;

	error = tend_nix_switch_outcome(&known, &sw, c->cfg, in->target_system,
					c->opts ? c->opts->abort : NULL);
	if (error < 0 && sw.interrupted) {
		tend_switch_result_dispose(&sw);
		return error;
	}
	if (!known) {
		tend_switch_result_dispose(&sw);
		if (!*current || strcmp(*current, in->target_system))
			return 0;
		tend_buf_printf(&c->switch_output, "the switch to %s was interrupted: running it again\n",
				in->target_system);
		error = tend_nix_switch_again(&sw, c->cfg, in->target_system,
					      c->opts ? c->opts->abort : NULL);
	}
	tend_buf_put(&c->switch_output, sw.output.ptr, sw.output.size);
	if (sw.generation)
		c->rep->generation_after = sw.generation;
	if (error < 0 && sw.interrupted) {
		tend_switch_result_dispose(&sw);
		return error;
	}
	if (error < 0 && switch_forgiven(c, now, &sw))
		error = 0;
	if (error < 0) {
		error = switch_failed(c, in->commit, in->target_system, &sw, prev_manifest);
		tend_switch_result_dispose(&sw);
		return error < 0 ? error : 1;
	}
	tend_switch_result_dispose(&sw);
	free(*current);
	*current = NULL;
	tend_nix_current_system(current, c->cfg);
	tend_error_clear();
	return 0;
}

int tend_recover(tend_reconcile_report *rep, const tend_config *cfg, tend_state *st,
		 const tend_reconcile_opts *opts)
{
	conv c = { cfg, st, rep, opts, tend_reconcile_now(), TEND_BUF_INIT, 1, { NULL, 0 }, NULL, NULL };
	tend_state_inflight *in = &st->inflight;
	tend_desired now, prev;
	tend_probe_failure pf;
	char *current = NULL, *dir = NULL, *msg = NULL, *why = NULL;
	size_t i;
	int error, have_now = 0, have_prev = 0, now_secrets = 0;

	memset(&pf, 0, sizeof(pf));
	memset(&now, 0, sizeof(now));
	memset(&prev, 0, sizeof(prev));
	c.switch_output.max = TEND_STATE_MAX_OUTPUT;
	/* what is installed and what the backup saved (nothing decrypted here) */
	if ((error = tend_mask_collect(&c.mask, cfg, st, NULL)) < 0)
		return error;
	snprintf(rep->commit, sizeof(rep->commit), "%s", in->commit);
	rep->system_before = dup_or_null(in->prev_system);
	rep->generation_before = in->prev_generation;
	tend_nix_current_system(&current, cfg);
	tend_error_clear();
	rep->system_after = dup_or_null(current);
	/* The manifests, for probes: the one being applied and the previous one. */
	if (tend_reconcile_export(&dir, cfg, in->commit) == 0 &&
	    tend_desired_load(&now, cfg, dir, in->commit) == 0)
		have_now = 1;
	free(dir);
	dir = NULL;
	if (in->prev_commit[0] && tend_reconcile_export(&dir, cfg, in->prev_commit) == 0 &&
	    tend_desired_load(&prev, cfg, dir, in->prev_commit) == 0)
		have_prev = 1;
	free(dir);
	/* Their secrets (rendered and decrypted, the systems known: nothing built): the ones
	 * whose owner the switch creates, and the previous ones should a reboot have taken
	 * their generation. */
	if (have_now && tend_desired_prepare(&now, cfg, in->target_system ? in->target_system :
					     current ? current : "", NULL) == 0)
		now_secrets = 1;
	if (have_prev && tend_desired_prepare(&prev, cfg, in->prev_system ? in->prev_system : "",
					      NULL) == 0)
		c.prev_desired = &prev;
	tend_error_clear();
	/* what the switch may have made possible meanwhile: a secret of the change not in the
	 * current generation waits for the post-switch step (its owner may exist by now) */
	for (i = 0; now_secrets && i < now.n_files; i++) {
		struct stat sb;

		if (now.files[i].kind == TEND_FILE_SECRET && !now.files[i].owner_pending &&
		    tend_reconcile_file_stat(&sb, cfg, now.files[i].path, 1) == TEND_ENOTFOUND)
			now.files[i].owner_pending = 1;
		tend_error_clear();
	}
	/* the values decrypted here are masked too */
	if ((now_secrets && tend_mask_collect(&c.mask, cfg, NULL, &now) < 0) ||
	    (c.prev_desired && tend_mask_collect(&c.mask, cfg, NULL, &prev) < 0))
		tend_error_clear();
	/* Interrupted during the switch: how it ended decides, never the probes alone. */
	if (in->phase == TEND_PHASE_SWITCH && in->target_system && have_now) {
		int resumed = resume_switch(&c, in, &current, have_now ? &now : NULL,
					    have_prev ? prev.manifest : NULL);

		if (resumed != 0) {
			error = resumed > 0 ? 0 : resumed;
			goto out;
		}
		/* switched: what comes after the switch (the phase is still "switch" until then) */
		if (current && !strcmp(current, in->target_system) &&
		    ((now_secrets && tend_reconcile_apply_pending(cfg, &now, &c.switch_output) < 0) ||
		     (in->backup_dir && tend_reconcile_backup_restart(in->backup_dir, &c.switch_output) < 0))) {
			if (asprintf(&why, "commit %.12s: %s", in->commit, tend_error_last()) < 0)
				why = NULL;
			error = roll_back(&c, why, NULL, have_prev ? prev.manifest : NULL);
			goto out;
		}
	}
	/* Not switched (no switch was needed, or it never finished): the system
	 * on disk decides. Files written but not confirmed: probe them. */
	if (in->phase != TEND_PHASE_ROLLBACK && in->phase != TEND_PHASE_FILES && have_now &&
	    (!in->target_system || (current && !strcmp(current, in->target_system)))) {
		c.switch_attempted = 0;
		if (tend_reconcile_probe_host(&pf, cfg, now.manifest, cfg->host,
					      opts ? opts->abort : NULL) == 0) {
			report_services(rep, &pf, NULL);
			if (asprintf(&msg, "applied commit %.12s (finished after an interrupted run)",
				     in->commit) < 0)
				msg = NULL;
			error = finish(&c, in->commit, in->target_system ? in->target_system : current,
				       msg ? msg : "applied", TEND_RECONCILE_APPLIED);
			goto out;
		}
		if (pf.aborted) {
			error = TEND_ERROR;
			goto out;
		}
		if (asprintf(&why, "commit %.12s: %s", in->commit, tend_error_last()) < 0)
			why = NULL;
	} else if (asprintf(&why, "commit %.12s was interrupted during %s (the host runs %s)",
			    in->commit, tend_state_phase_name(in->phase),
			    current ? current : "nothing") < 0) {
		why = NULL;
	}
	error = roll_back(&c, why, pf.failed_probe ? &pf : NULL, have_prev ? prev.manifest : NULL);
out:
	mask_report(&c);
	tend_mask_dispose(&c.mask);
	tend_desired_dispose(&now);
	tend_desired_dispose(&prev);
	tend_probe_failure_dispose(&pf);
	tend_buf_dispose(&c.switch_output);
	free(current);
	free(msg);
	free(why);
	return error;
}
