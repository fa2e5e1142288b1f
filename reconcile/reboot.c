/* Reboots tend drives: a host with a reboot_window (fleet.yaml) that needs a reboot (a kernel
 * change, switch-to-configuration exit 100, operation: boot) is rebooted inside the window, and
 * after a reboot into a system tend applied, that commit's probes decide: failing, the previous
 * system becomes the boot default again and the host reboots into it. The state records the
 * pending reboot (reboot_pending_boot), so the decision survives the reboot itself. */
#include "reconcile/internal.h"
#include "reconcile/nix.h"
#include "util/error.h"
#include "util/window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void history_add(tend_state *st, const tend_reconcile_report *rep, const char *outcome,
			int64_t start, const char *target, const tend_probe_failure *pf)
{
	tend_report_history(st, rep, start, outcome, target, pf ? pf->failed_probe : NULL,
			    pf ? pf->output : NULL);
}

static void report_health(tend_reconcile_report *rep, tend_probe_failure *pf)
{
	tend_service_health_free(rep->services, rep->n_services);
	rep->services = pf->services;
	rep->n_services = pf->n_services;
	pf->services = NULL;
	pf->n_services = 0;
	if (pf->failed_probe) {
		free(rep->failed_probe);
		rep->failed_probe = strdup(pf->failed_probe);
		free(rep->probe_output);
		rep->probe_output = pf->output ? strdup(pf->output) : NULL;
	}
}

/* The probes failed after the reboot into st->system: back to the previous system (the commit
 * is not retried), as the boot default and a reboot into it when the host has a reboot_window,
 * else switched to live (nobody would reboot it); or say why there is none. */
static int boot_back(tend_reconcile_report *out, const tend_config *cfg, tend_state *st,
		     const char *why, const tend_probe_failure *pf, int *reboot_now, int64_t start)
{
	tend_switch_result sw;
	char id[64], *prev = st->reboot_prev_system;
	int by_boot = st->reboot_window != NULL, error;

	if (st->reboot_back || !prev || !strcmp(prev, st->system)) {
		tend_report_set(out, TEND_RECONCILE_ROLLBACK_FAILED, "%s; %s", why,
				st->reboot_back ? "this is the system booted back into, which fails too"
						: "there is no earlier system to boot back into");
		history_add(st, out, "rollback-failed", start, NULL, pf);
		free(st->reboot_boot_id);
		st->reboot_boot_id = NULL;
		st->reboot_back = 0;
		return 0;
	}
	error = by_boot ? tend_nix_boot(&sw, cfg, prev) : tend_nix_switch(&sw, cfg, prev, NULL);
	if (error < 0) {
		tend_report_set(out, TEND_RECONCILE_ROLLBACK_FAILED, "%s; %s %s failed: %s", why,
				by_boot ? "making the boot default again" : "switching back to", prev,
				tend_error_last());
		tend_switch_result_dispose(&sw);
		history_add(st, out, "rollback-failed", start, prev, pf);
		free(st->reboot_boot_id);
		st->reboot_boot_id = NULL;
		return 0;
	}
	out->generation_after = sw.generation;
	tend_switch_result_dispose(&sw);
	if (by_boot)
		tend_report_set(out, TEND_RECONCILE_ROLLED_BACK, "%s; %s (commit %.12s) is the boot "
				"default again: rebooting into it", why, prev,
				st->reboot_prev_commit[0] ? st->reboot_prev_commit : "unknown");
	else
		tend_report_set(out, TEND_RECONCILE_ROLLED_BACK, "%s; switched back to %s (commit %.12s)",
				why, prev, st->reboot_prev_commit[0] ? st->reboot_prev_commit : "unknown");
	tend_state_failed_add(st, st->applied_commit, tend_reconcile_now(), why);
	free(out->system_after);
	out->system_after = strdup(prev);
	history_add(st, out, "rolled-back", start, prev, pf);
	snprintf(st->applied_commit, sizeof(st->applied_commit), "%s", st->reboot_prev_commit);
	free(st->system);
	st->system = prev;
	st->reboot_prev_system = NULL;
	st->reboot_prev_commit[0] = '\0';
	st->generation = out->generation_after;
	free(st->reboot_boot_id);
	st->reboot_boot_id = NULL;
	st->reboot_back = 0;
	if (by_boot) {
		tend_nix_boot_id(id, sizeof(id));
		st->reboot_boot_id = strdup(id);
		st->reboot_back = 1;
		*reboot_now = 1;
	}
	return 0;
}

int tend_reboot_probation(tend_reconcile_report *out, const tend_config *cfg, tend_state *st,
			  const tend_reconcile_opts *opts, int *reboot_now)
{
	tend_desired d;
	tend_probe_failure pf;
	int64_t start = tend_reconcile_now();
	const char *current = out->system_before;
	char id[64], *dir = NULL, *why = NULL;
	int error = 0;

	*reboot_now = 0;
	tend_nix_boot_id(id, sizeof(id));
	if (!st->reboot_boot_id || !id[0] || !strcmp(st->reboot_boot_id, id) || !current ||
	    !st->system || strcmp(current, st->system))
		return 0;
	memset(&d, 0, sizeof(d));
	memset(&pf, 0, sizeof(pf));
	if (st->reboot_back || !st->applied_commit[0]) {
		/* booted back into the previous system: the reconcile that follows repairs its
		 * files (the failed commit's are still in place) and probes it */
		free(st->reboot_boot_id);
		st->reboot_boot_id = NULL;
		st->reboot_back = 0;
		error = tend_state_save(st, cfg->state_dir, cfg->history_limit);
		return error < 0 ? error : 0;
	}
	snprintf(out->commit, sizeof(out->commit), "%s", st->applied_commit);
	out->system_after = strdup(current);
	if (tend_reconcile_export(&dir, cfg, st->applied_commit) < 0 ||
	    tend_desired_load(&d, cfg, dir, st->applied_commit) < 0) {
		/* not decidable from here: said once, the marker goes (never stuck on it) */
		tend_report_set(out, TEND_RECONCILE_FAILED, "commit %.12s: after the reboot into %s its "
				"probes cannot run: %s", st->applied_commit, current, tend_error_last());
		history_add(st, out, "failed", start, NULL, NULL);
		free(st->reboot_boot_id);
		st->reboot_boot_id = NULL;
	} else if (tend_reconcile_probe_host(&pf, cfg, d.manifest, cfg->host, opts->abort) < 0) {
		if (pf.aborted) {
			tend_error_set("interrupted while probing after the reboot into %s; probed "
				       "again on the next start", current);
			error = TEND_ERROR;
			goto out;
		}
		if (asprintf(&why, "commit %.12s: after the reboot into %s: %s", st->applied_commit,
			     current, tend_error_last()) < 0)
			why = NULL;
		report_health(out, &pf);
		boot_back(out, cfg, st, why ? why : "probes failed after the reboot", &pf, reboot_now,
			  start);
	} else {
		report_health(out, &pf);
		free(st->reboot_boot_id);
		st->reboot_boot_id = NULL;
		tend_report_set(out, TEND_RECONCILE_APPLIED, "commit %.12s: booted into %s; probes "
				"healthy", st->applied_commit, current);
		history_add(st, out, "applied", start, NULL, NULL);
	}
	snprintf(out->applied_commit, sizeof(out->applied_commit), "%s", st->applied_commit);
	error = tend_state_save(st, cfg->state_dir, cfg->history_limit);
out:
	tend_desired_dispose(&d);
	tend_probe_failure_dispose(&pf);
	free(dir);
	free(why);
	return error < 0 ? error : 1;
}

/* tend rebooted into this system before (the newest "reboot" in the history): a reboot that
 * did not help is not repeated. */
static int rebooted_into(const tend_state *st, const char *system)
{
	size_t i;

	for (i = st->n_history; i-- > 0;)
		if (st->history[i].outcome && !strcmp(st->history[i].outcome, "reboot"))
			return st->history[i].system_after && system &&
			       !strcmp(st->history[i].system_after, system);
	return 0;
}

void tend_reboot_maybe(tend_reconcile_report *out, const tend_config *cfg, tend_state *st,
		       int reboot_now)
{
	tend_window w;
	tend_buf log = TEND_BUF_INIT;
	time_t now = time(NULL), opens;
	char id[64], when[64] = "?", *was = out->message ? strdup(out->message) : NULL;
	int64_t start = tend_reconcile_now();
	struct tm tm;

	/* a planning pass (the agent's first) leaves the reboot to the pass that applies */
	if ((!reboot_now && out->outcome != TEND_RECONCILE_REBOOT_REQUIRED && !out->reboot_required) ||
	    /* an operator's switch in progress, an operator's escape held: not now */
	    out->outcome == TEND_RECONCILE_WAITING || out->outcome == TEND_RECONCILE_HELD ||
	    out->outcome == TEND_RECONCILE_PLANNED || !st->reboot_window || tend_window_parse(&w, st->reboot_window) < 0)
		goto out;
	if (!reboot_now && !tend_window_contains(&w, now)) {
		opens = tend_window_next(&w, now);
		if (opens && (!out->window_opens || (int64_t)opens < out->window_opens))
			out->window_opens = (int64_t)opens;
		if (opens && localtime_r(&opens, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M %Z", &tm);
		tend_report_set(out, out->outcome, "%s; tend reboots the host in its reboot_window %s "
				"(opens %s)", was ? was : "reboot required", st->reboot_window, when);
		goto out;
	}
	if (!reboot_now && rebooted_into(st, st->system)) {
		tend_report_set(out, out->outcome, "%s; tend rebooted into %s already and does not "
				"again: reboot by hand", was ? was : "reboot required", st->system);
		goto out;
	}
	/* the next boot's reconcile probes what it booted */
	if (!st->reboot_boot_id) {
		tend_nix_boot_id(id, sizeof(id));
		st->reboot_boot_id = strdup(id);
	}
	tend_report_set(out, out->outcome, "%s; rebooting now (reboot_window %s)",
			was ? was : "reboot required", st->reboot_window);
	{
		tend_reconcile_report r;

		memset(&r, 0, sizeof(r));
		snprintf(r.commit, sizeof(r.commit), "%s", st->applied_commit);
		r.message = out->message;
		r.system_before = out->system_before;
		r.system_after = st->system;
		history_add(st, &r, "reboot", start, NULL, NULL);
	}
	if (tend_state_save(st, cfg->state_dir, cfg->history_limit) < 0 ||
	    tend_nix_reboot(cfg, &log) < 0) {
		tend_state_history *h = st->n_history ? &st->history[st->n_history - 1] : NULL;
		char *o = strdup("reboot-failed");

		/* not a reboot into that system: the next window tries again */
		tend_report_set(out, out->outcome, "%s; the reboot failed: %s",
				was ? was : "reboot required", tend_error_last());
		if (o && h && h->outcome && !strcmp(h->outcome, "reboot")) {
			free(h->outcome);
			h->outcome = o;
			o = NULL;
			tend_state_save(st, cfg->state_dir, cfg->history_limit);
		}
		free(o);
	}
	tend_error_clear();
out:
	tend_buf_dispose(&log);
	free(was);
}
