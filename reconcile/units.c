/* The systemd units a service names (`units:` in service.yaml), asked of systemd itself: after
 * a change its probes start only once these are ready, and a unit that failed fails the change
 * at once with its journal's tail instead of after every retry of the probes. */
#include "reconcile/internal.h"
#include "reconcile/probe.h"
#include "util/error.h"
#include "util/proc.h"
#include "util/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A unit not started (inactive, not a finished oneshot) or crash-restarting this long is not
 * coming up: systemd starts what a switch wants before switch-to-configuration returns; this
 * leaves room for a start job queued behind others and a restart or two of a first start that
 * raced a dependency. */
#define STALL_GRACE_MS 30000
#define CRASH_LOOP_RESTARTS 3
#define POLL_MS 250
#define JOURNAL_LINES "20"

typedef struct {
	char load[32], active[32], sub[32], result[32], type[32];
	int ran;                 /* ExecMainStartTimestampMonotonic is set: it ran in this boot */
	long restarts;           /* NRestarts: automatic restarts since it was last started */
} unit_state;

/* UNIT_STALLED: not started; UNIT_RESTARTING: waiting to restart after a crash (auto-restart).
 * Both get the grace above to come up, then fail the change: a crash loop may never reach
 * "failed", and its starts in between (activating) do not reset its clock. */
enum { UNIT_READY, UNIT_WAIT, UNIT_STALLED, UNIT_RESTARTING, UNIT_FAILED, UNIT_MISSING };

static void field(char *dst, size_t size, const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text;

	dst[0] = '\0';
	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			const char *v = p + klen + 1, *end = strchr(v, '\n');
			size_t n = end ? (size_t)(end - v) : strlen(v);

			snprintf(dst, size, "%.*s", (int)n, v);
			return;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
}

/* systemctl show of one unit; TEND_ERROR when systemctl cannot answer (no systemd). */
static int unit_show(unit_state *out, const char *unit)
{
	tend_proc_opts po = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	char *argv[] = { "systemctl", "show", "--property=LoadState", "--property=ActiveState",
			 "--property=SubState", "--property=Result", "--property=Type",
			 "--property=ExecMainStartTimestampMonotonic", "--property=NRestarts", "--",
			 (char *)unit, NULL };
	char ran[32], restarts[32];
	int error = 0;

	memset(out, 0, sizeof(*out));
	po.timeout_ms = 10000;
	po.max_output = 16384;
	if (tend_proc_run(&res, argv, &po) < 0) {
		tend_error_prefix("asking systemd about %s: ", unit);
		return TEND_ERROR;
	}
	if (res.timed_out || res.exit_code) {
		tend_error_set("systemctl show %s failed (%s): %.200s", unit,
			       res.timed_out ? "timed out" : "exit status not 0",
			       res.err.ptr ? res.err.ptr : "");
		error = TEND_ERROR;
	} else {
		const char *t = res.out.ptr ? res.out.ptr : "";

		field(out->load, sizeof(out->load), t, "LoadState");
		field(out->active, sizeof(out->active), t, "ActiveState");
		field(out->sub, sizeof(out->sub), t, "SubState");
		field(out->result, sizeof(out->result), t, "Result");
		field(out->type, sizeof(out->type), t, "Type");
		field(ran, sizeof(ran), t, "ExecMainStartTimestampMonotonic");
		out->ran = ran[0] && strcmp(ran, "0");
		field(restarts, sizeof(restarts), t, "NRestarts");
		out->restarts = strtol(restarts, NULL, 10);
	}
	tend_proc_result_dispose(&res);
	return error;
}

static int unit_classify(const unit_state *u)
{
	if (strcmp(u->load, "loaded"))
		return UNIT_MISSING;
	if (!strcmp(u->active, "active") || !strcmp(u->active, "reloading"))
		return UNIT_READY;
	if (!strcmp(u->active, "failed"))
		return UNIT_FAILED;
	if (!strcmp(u->active, "inactive")) {
		/* a oneshot without RemainAfterExit (a migration, a setup step) is done when it ran */
		if (!strcmp(u->type, "oneshot") && !strcmp(u->result, "success") && u->ran)
			return UNIT_READY;
		return strcmp(u->result, "success") && u->ran ? UNIT_FAILED : UNIT_STALLED;
	}
	if (!strcmp(u->sub, "auto-restart"))
		return UNIT_RESTARTING;
	return UNIT_WAIT;   /* activating (start-pre, migrations), deactivating */
}

char *tend_reconcile_unit_journal(const char *unit, size_t limit)
{
	tend_proc_opts po = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	char *argv[] = { "journalctl", "--no-pager", "--quiet", "-o", "short-iso", "-n",
			 JOURNAL_LINES, "-u", (char *)unit, NULL };
	char *text = NULL;
	size_t len;

	if (!limit)
		limit = 4096;
	po.timeout_ms = 10000;
	po.max_output = 256 * 1024;
	if (tend_proc_run(&res, argv, &po) < 0) {
		tend_error_clear();
		return NULL;
	}
	if (!res.timed_out && res.out.ptr && res.out.size) {
		/* the last lines that fit: the end of the journal is what says why */
		const char *p = res.out.ptr;

		len = res.out.size;
		if (limit && len > limit) {
			p += len - limit;
			len = limit;
			while (len && (*p & 0xc0) == 0x80) {   /* not in the middle of a character */
				p++;
				len--;
			}
		}
		if ((text = strndup(p, len)))
			tend_text_strip_controls(text, 1);
	}
	tend_proc_result_dispose(&res);
	return text;
}

/* POLL_MS in slices of 50 ms, so that a stop is seen as the probes see it; 1 when stopping. */
static int pause_aborted(const tend_probe_opts *po)
{
	struct timespec ts = { 0, 50 * 1000000L };
	int k;

	for (k = 0; k < POLL_MS / 50; k++) {
		if (po->abort && *po->abort)
			return 1;
		nanosleep(&ts, NULL);
	}
	return po->abort && *po->abort;
}

static void describe(char *dst, size_t size, const char *unit, const unit_state *u)
{
	snprintf(dst, size, "unit %s is %s (%s%s%s)", unit, u->active[0] ? u->active : "unknown",
		 u->sub[0] ? u->sub : "?", u->result[0] ? ", result " : "", u->result);
}

int tend_reconcile_units_wait(char **journal, const char **failed_unit, const tend_service *s,
			      const tend_probe_opts *po)
{
	int64_t start = tend_probe_now_ms();
	size_t i;
	char what[512];

	*journal = NULL;
	*failed_unit = NULL;
	for (i = 0; i < s->n_units; i++) {
		const char *unit = s->units[i];
		int64_t stalled = 0, restarting = 0;   /* each unit's own */
		unit_state u;
		int state;

		for (;;) {
			int64_t now;

			if (unit_show(&u, unit) < 0) {
				*failed_unit = unit;
				return TEND_ERROR;
			}
			state = unit_classify(&u);
			if (state == UNIT_READY)
				break;
			if (state == UNIT_MISSING) {
				*failed_unit = unit;
				tend_error_set("unit %s is not loaded (LoadState %s): the service names a "
					       "unit its system does not have", unit,
					       u.load[0] ? u.load : "unknown");
				return TEND_ERROR;
			}
			describe(what, sizeof(what), unit, &u);
			if (state == UNIT_FAILED) {
				*failed_unit = unit;
				*journal = tend_reconcile_unit_journal(unit, po->output_limit);
				tend_error_set("%s", what);
				return TEND_ERROR;
			}
			now = tend_probe_now_ms();
			/* not started: reset by any progress; crash-restarting: since the first */
			if (state != UNIT_STALLED)
				stalled = 0;
			else if (!stalled)
				stalled = now;
			if (state == UNIT_RESTARTING && !restarting)
				restarting = now;
			if ((po->deadline_ms && now >= po->deadline_ms) ||
			    (stalled && now - stalled >= STALL_GRACE_MS) ||
			    (restarting && now - restarting >= STALL_GRACE_MS)) {
				*failed_unit = unit;
				*journal = tend_reconcile_unit_journal(unit, po->output_limit);
				tend_error_set("%s after %lld s of waiting for it to be active", what,
					       (long long)((now - start) / 1000));
				return TEND_ETIMEOUT;
			}
			if (pause_aborted(po)) {
				tend_error_set("waiting for unit %s: stopped (the agent is shutting down)",
					       unit);
				return TEND_ERROR;
			}
		}
	}
	return 0;
}

int tend_reconcile_units_check(const char **failed_unit, const tend_service *s)
{
	char what[512];
	size_t i;

	*failed_unit = NULL;
	for (i = 0; i < s->n_units; i++) {
		unit_state u;
		int state;

		if (unit_show(&u, s->units[i]) < 0) {
			*failed_unit = s->units[i];
			return TEND_ERROR;
		}
		state = unit_classify(&u);
		/* A unit in a crash loop (not up, 3 automatic restarts or more) is down; one starting,
		 * or restarting on its own after a crash or two, is not yet (the probes say more); a
		 * oneshot that has not run yet (its timer has not fired) is not down. */
		if (state != UNIT_READY && u.restarts >= CRASH_LOOP_RESTARTS) {
			*failed_unit = s->units[i];
			tend_error_set("unit %s is in a crash loop (%ld automatic restarts)",
				       s->units[i], u.restarts);
			return TEND_ERROR;
		}
		if (state == UNIT_READY || state == UNIT_WAIT || state == UNIT_RESTARTING ||
		    (state == UNIT_STALLED && !strcmp(u.type, "oneshot") && !u.ran))
			continue;
		*failed_unit = s->units[i];
		if (state == UNIT_MISSING)
			tend_error_set("unit %s is not loaded (LoadState %s)", s->units[i],
				       u.load[0] ? u.load : "unknown");
		else {
			describe(what, sizeof(what), s->units[i], &u);
			tend_error_set("%s", what);
		}
		return TEND_ERROR;
	}
	return 0;
}
