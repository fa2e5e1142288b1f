/* Rendering the agent's status as JSON (/v1/status) and as Prometheus text
 * (/metrics), each from one consistent snapshot taken under the mutex. */
#include "agent/status.h"
#include "util/buf.h"
#include "util/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const phase_names[TEND_PHASE__COUNT] = {
	"starting", "converged", "applying", "blocked", "failed", "rolled-back", "waiting",
	"reboot-required", "held", "degraded"
};

static const char *const outcome_names[TEND_OUTCOME__COUNT] = {
	"none", "success", "failed", "rolled-back", "refused", "blocked"
};

const char *tend_agent_phase_name(tend_agent_phase phase)
{
	return (unsigned)phase < TEND_PHASE__COUNT ? phase_names[phase] : "unknown";
}

int tend_agent_phase_parse(const char *name)
{
	int i;

	for (i = 0; name && i < TEND_PHASE__COUNT; i++)
		if (!strcmp(name, phase_names[i]))
			return i;
	return -1;
}

const char *tend_agent_outcome_name(tend_agent_outcome outcome)
{
	return (unsigned)outcome < TEND_OUTCOME__COUNT ? outcome_names[outcome] : "unknown";
}

int tend_agent_status_init(tend_agent_status *st, const char *host)
{
	memset(st, 0, sizeof(*st));
	if (pthread_mutex_init(&st->lock, NULL) != 0) {
		tend_error_set("status: cannot create mutex");
		return TEND_ERROR;
	}
	st->generation = -1;
	if (!(st->host = strdup(host ? host : ""))) {
		pthread_mutex_destroy(&st->lock);
		return TEND_ERROR;
	}
	return 0;
}

void tend_agent_status_dispose(tend_agent_status *st)
{
	if (!st || !st->host)
		return;
	free(st->host);
	free(st->applied_commit);
	free(st->target_commit);
	free(st->last_error);
	free(st->last_message);
	free(st->changes);
	free(st->fleet);
	tend_liveness_free(st->liveness, st->n_liveness);
	for (size_t i = 0; i < st->n_events; i++) {
		free(st->events[i].outcome);
		free(st->events[i].message);
		free(st->events[i].changes);
	}
	tend_service_health_free(st->services, st->n_services);
	pthread_mutex_destroy(&st->lock);
	memset(st, 0, sizeof(*st));
}

void tend_agent_status_lock(tend_agent_status *st)
{
	pthread_mutex_lock(&st->lock);
}

void tend_agent_status_unlock(tend_agent_status *st)
{
	pthread_mutex_unlock(&st->lock);
}

int tend_agent_status_set_str(char **field, const char *value)
{
	char *copy = NULL;

	if (value && !(copy = strdup(value)))
		return TEND_ERROR;
	free(*field);
	*field = copy;
	return 0;
}

int tend_agent_status_set_services(tend_agent_status *st,
				   const tend_service_health *svcs, size_t n)
{
	tend_service_health *copy = NULL;
	size_t i;

	if (n && !(copy = calloc(n, sizeof(*copy))))
		return TEND_ERROR;
	for (i = 0; i < n; i++) {
		copy[i].health = svcs[i].health;
		copy[i].checked_at = svcs[i].checked_at;
		if (!(copy[i].service = strdup(svcs[i].service ? svcs[i].service : "")) ||
		    (svcs[i].probe && !(copy[i].probe = strdup(svcs[i].probe)))) {
			tend_service_health_free(copy, n);
			return TEND_ERROR;
		}
	}
	tend_service_health_free(st->services, st->n_services);
	st->services = copy;
	st->n_services = n;
	return 0;
}

void tend_liveness_free(tend_liveness *l, size_t n)
{
	size_t i;

	for (i = 0; l && i < n; i++) {
		free(l[i].service);
		free(l[i].probe);
		free(l[i].error);
	}
	free(l);
}

static int liveness_down(const tend_agent_status *st)
{
	size_t i;

	for (i = 0; i < st->n_liveness; i++)
		if (!st->liveness[i].up)
			return 1;
	return 0;
}

/* Converged and degraded are one state seen with or without the liveness results. */
static void phase_liveness(tend_agent_status *st)
{
	if (st->phase == TEND_PHASE_CONVERGED && liveness_down(st))
		st->phase = TEND_PHASE_DEGRADED;
	else if (st->phase == TEND_PHASE_DEGRADED && !liveness_down(st))
		st->phase = TEND_PHASE_CONVERGED;
}

int tend_agent_status_set_liveness(tend_agent_status *st, const tend_liveness *l, size_t n)
{
	tend_liveness *copy = calloc(n ? n : 1, sizeof(*copy));
	size_t i;

	if (!copy)
		return TEND_ERROR;
	for (i = 0; i < n; i++) {
		copy[i].up = l[i].up;
		copy[i].checked_at = l[i].checked_at;
		if (!(copy[i].service = strdup(l[i].service ? l[i].service : "")) ||
		    (l[i].probe && !(copy[i].probe = strdup(l[i].probe))) ||
		    (l[i].error && !(copy[i].error = strdup(l[i].error)))) {
			tend_liveness_free(copy, n);
			return TEND_ERROR;
		}
	}
	tend_agent_status_lock(st);
	tend_liveness_free(st->liveness, st->n_liveness);
	st->liveness = copy;
	st->n_liveness = n;
	phase_liveness(st);
	tend_agent_status_unlock(st);
	return 0;
}

/* A closure diff for the status: at most STATUS_CHANGES_MAX bytes, cut at a line, so that
 * /v1/status stays well under what other agents read of it (agent/fleet_status.c) even
 * after a nixpkgs bump that changes a thousand packages. tend history keeps it whole. */
#define STATUS_CHANGES_MAX 4096

static char *changes_capped(const char *s)
{
	size_t len, cut, lines = 0;
	const char *p;
	char *out;

	if (!s || !*s)
		return NULL;
	len = strlen(s);
	if (len <= STATUS_CHANGES_MAX)
		return strdup(s);
	for (cut = STATUS_CHANGES_MAX; cut > 0 && s[cut - 1] != '\n'; cut--)
		;
	for (p = s + cut; *p; p++)
		lines += *p == '\n';
	if (asprintf(&out, "%.*s... and %zu more (tend history has them all)\n", (int)cut, s,
		     lines) < 0)
		return NULL;
	return out;
}

void tend_agent_status_event_add(tend_agent_status *st, time_t when, const char *commit,
				 const char *outcome, const char *message, const char *changes)
{
	tend_status_event *e;

	if (st->n_events == TEND_STATUS_EVENTS) {
		free(st->events[0].outcome);
		free(st->events[0].message);
		free(st->events[0].changes);
		memmove(st->events, st->events + 1, (TEND_STATUS_EVENTS - 1) * sizeof(*e));
		st->n_events--;
	}
	e = &st->events[st->n_events++];
	memset(e, 0, sizeof(*e));
	e->when = when;
	snprintf(e->commit, sizeof(e->commit), "%s", commit ? commit : "");
	e->outcome = outcome ? strdup(outcome) : NULL;
	e->message = message ? strdup(message) : NULL;
	e->changes = changes_capped(changes);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *time_or_null(time_t t)
{
	char when[32];
	struct tm tm;

	if (!t)
		return json_null();
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(when);
}

/* liveness: {service: {up, probe, error, checked_at}}; null before the first run. */
static json_t *liveness_json(const tend_agent_status *st)
{
	json_t *o;
	size_t i;

	if (!st->liveness)
		return json_null();
	o = json_object();
	for (i = 0; o && i < st->n_liveness; i++)
		json_object_set_new(o, st->liveness[i].service, json_pack("{s:b, s:o, s:o, s:o}",
			"up", st->liveness[i].up, "probe", str_or_null(st->liveness[i].probe),
			"error", str_or_null(st->liveness[i].error),
			"checked_at", time_or_null(st->liveness[i].checked_at)));
	return o ? o : json_null();
}

/* history: the latest reconciles, newest first. */
static json_t *events_json(const tend_agent_status *st)
{
	json_t *a = json_array();
	size_t i;

	for (i = st->n_events; a && i-- > 0;) {
		const tend_status_event *e = &st->events[i];

		json_array_append_new(a, json_pack("{s:o, s:s, s:o, s:o, s:o}",
			"time", time_or_null(e->when), "commit", e->commit,
			"outcome", str_or_null(e->outcome), "message", str_or_null(e->message),
			"changes", str_or_null(e->changes)));
	}
	return a ? a : json_array();
}

int tend_agent_status_json(char **out, tend_agent_status *st)
{
	json_t *root, *svcs;
	char when[32] = "", polled[32] = "";
	size_t i;
	int error = TEND_ERROR;

	*out = NULL;
	tend_agent_status_lock(st);
	if (st->last_reconcile) {
		struct tm tm;

		gmtime_r(&st->last_reconcile, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (st->last_poll) {
		struct tm tm;

		gmtime_r(&st->last_poll, &tm);
		strftime(polled, sizeof(polled), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	/* services: {name: {health, probe, checked_at}}, in dependency order. */
	svcs = json_object();
	for (i = 0; svcs && i < st->n_services; i++)
		json_object_set_new(svcs, st->services[i].service, json_pack("{s:s, s:o, s:o}",
			"health", tend_health_name(st->services[i].health),
			"probe", str_or_null(st->services[i].probe),
			"checked_at", time_or_null((time_t)st->services[i].checked_at)));
	root = json_pack("{s:s, s:o, s:o, s:s, s:b, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:s}",
		"host", st->host,
		"applied_commit", str_or_null(st->applied_commit),
		"target_commit", str_or_null(st->target_commit),
		"phase", tend_agent_phase_name(st->phase),
		"switch_overdue", st->switch_overdue,
		"reboot_required", st->reboot_required,
		"last_error", str_or_null(st->last_error),
		"last_message", str_or_null(st->last_message),
		"generation", st->generation >= 0 ? json_integer(st->generation) : json_null(),
		"services", svcs ? svcs : json_object(),
		"liveness", liveness_json(st),
		"changes", str_or_null(st->changes),
		"history", events_json(st),
		"last_outcome", tend_agent_outcome_name(st->last_outcome),
		"last_reconcile", when[0] ? json_string(when) : json_null(),
		"last_poll", polled[0] ? json_string(polled) : json_null(),
		"version", TEND_VERSION);
	tend_agent_status_unlock(st);
	if (root && (*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		char *nl = NULL;

		if (asprintf(&nl, "%s\n", *out) >= 0) {
			free(*out);
			*out = nl;
			error = 0;
		}
	}
	json_decref(root);
	if (error < 0) {
		free(*out);
		*out = NULL;
		tend_error_set("status: cannot build JSON");
	}
	return error;
}

/* Label values: backslash, double quote and newline escaped (exposition format). */
static void put_label(tend_buf *b, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\')
			tend_buf_puts(b, "\\\\");
		else if (*v == '"')
			tend_buf_puts(b, "\\\"");
		else if (*v == '\n')
			tend_buf_puts(b, "\\n");
		else
			tend_buf_putc(b, *v);
	}
}

static void family(tend_buf *b, const char *name, const char *type, const char *help)
{
	tend_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int tend_agent_status_metrics(char **out, tend_agent_status *st)
{
	tend_buf b = TEND_BUF_INIT;
	int i;

	tend_agent_status_lock(st);
	family(&b, "tend_up", "gauge", "1 while the tend agent runs.");
	tend_buf_puts(&b, "tend_up 1\n");
	family(&b, "tend_last_reconcile_success", "gauge",
	       "1 if the last reconcile converged (or had nothing to do), 0 otherwise.");
	tend_buf_printf(&b, "tend_last_reconcile_success %d\n",
			st->last_outcome == TEND_OUTCOME_SUCCESS);
	family(&b, "tend_last_reconcile_outcome", "gauge",
	       "1 for the outcome of the last reconcile, 0 for the others.");
	for (i = 0; i < TEND_OUTCOME__COUNT; i++)
		tend_buf_printf(&b, "tend_last_reconcile_outcome{outcome=\"%s\"} %d\n",
				outcome_names[i], st->last_outcome == (tend_agent_outcome)i);
	family(&b, "tend_last_reconcile_duration_seconds", "gauge",
	       "How long the last reconcile took.");
	tend_buf_printf(&b, "tend_last_reconcile_duration_seconds %.3f\n", st->last_duration_s);
	family(&b, "tend_last_reconcile_timestamp_seconds", "gauge",
	       "When the last reconcile ended (Unix time), 0 if none yet.");
	tend_buf_printf(&b, "tend_last_reconcile_timestamp_seconds %lld\n",
			(long long)st->last_reconcile);
	family(&b, "tend_applied_commit_info", "gauge",
	       "The commit this host runs, as a label; value always 1.");
	tend_buf_puts(&b, "tend_applied_commit_info{host=\"");
	put_label(&b, st->host);
	tend_buf_puts(&b, "\",commit=\"");
	put_label(&b, st->applied_commit ? st->applied_commit : "");
	tend_buf_puts(&b, "\"} 1\n");
	family(&b, "tend_phase", "gauge", "1 for the agent's current phase, 0 for the others.");
	for (i = 0; i < TEND_PHASE__COUNT; i++)
		tend_buf_printf(&b, "tend_phase{phase=\"%s\"} %d\n", phase_names[i],
				st->phase == (tend_agent_phase)i);
	family(&b, "tend_reboot_required", "gauge",
	       "1 when the host must reboot to run what tend applied (kernel, initrd, modules or init).");
	tend_buf_printf(&b, "tend_reboot_required %d\n", st->reboot_required ? 1 : 0);
	family(&b, "tend_switch_overdue", "gauge",
	       "1 while a switch runs past system.switch_timeout (tend waits for it).");
	tend_buf_printf(&b, "tend_switch_overdue %d\n", st->switch_overdue ? 1 : 0);
	family(&b, "tend_generation", "gauge", "The active system profile generation (-1 unknown).");
	tend_buf_printf(&b, "tend_generation %lld\n", st->generation);
	family(&b, "tend_reconciles_total", "counter", "Reconciles run, by outcome.");
	for (i = 1; i < TEND_OUTCOME__COUNT; i++)
		tend_buf_printf(&b, "tend_reconciles_total{outcome=\"%s\"} %llu\n", outcome_names[i],
				(unsigned long long)st->reconciles[i]);
	family(&b, "tend_rollbacks_total", "counter", "Changes rolled back after failing probes.");
	tend_buf_printf(&b, "tend_rollbacks_total %llu\n", (unsigned long long)st->rollbacks);
	family(&b, "tend_fetch_failures_total", "counter", "Fetches of the repository that failed.");
	tend_buf_printf(&b, "tend_fetch_failures_total %llu\n", (unsigned long long)st->fetch_failures);
	family(&b, "tend_refused_commits_total", "counter",
	       "Commits refused: unsigned, not a fast-forward, invalid manifests.");
	tend_buf_printf(&b, "tend_refused_commits_total %llu\n",
			(unsigned long long)st->refused_commits);
	family(&b, "tend_alerts_sent_total", "counter", "Alert mails delivered.");
	tend_buf_printf(&b, "tend_alerts_sent_total %llu\n", (unsigned long long)st->alerts_sent);
	family(&b, "tend_webhooks_total", "counter", "Webhook requests, by result.");
	tend_buf_printf(&b, "tend_webhooks_total{result=\"accepted\"} %llu\n",
			(unsigned long long)st->webhooks_accepted);
	tend_buf_printf(&b, "tend_webhooks_total{result=\"rejected\"} %llu\n",
			(unsigned long long)st->webhooks_rejected);
	family(&b, "tend_polls_total", "counter",
	       "Steps, by result: a full reconcile, or the remote head unchanged (no worker).");
	tend_buf_printf(&b, "tend_polls_total{result=\"reconciled\"} %llu\n",
			(unsigned long long)st->polls_full);
	tend_buf_printf(&b, "tend_polls_total{result=\"unchanged\"} %llu\n",
			(unsigned long long)st->polls_unchanged);
	family(&b, "tend_last_poll_timestamp_seconds", "gauge",
	       "Unix time the last step (full or unchanged) ended.");
	tend_buf_printf(&b, "tend_last_poll_timestamp_seconds %lld\n", (long long)st->last_poll);
	family(&b, "tend_worker_runs_total", "counter",
	       "Worker processes run (each reconcile, dependency check and alert mail is one).");
	tend_buf_printf(&b, "tend_worker_runs_total %llu\n", (unsigned long long)st->worker_runs);
	family(&b, "tend_worker_cpu_seconds_total", "counter",
	       "CPU time (user + system) of the worker processes and what they ran.");
	tend_buf_printf(&b, "tend_worker_cpu_seconds_total %.3f\n", st->worker_cpu_s);
	family(&b, "tend_worker_max_resident_bytes", "gauge",
	       "The largest peak resident set of any worker process so far.");
	tend_buf_printf(&b, "tend_worker_max_resident_bytes %lld\n",
			(long long)st->worker_max_rss_kb * 1024);
	family(&b, "tend_service_healthy", "gauge",
	       "1 if the service's last probe passed, 0 if it failed (not probed: absent).");
	for (size_t k = 0; k < st->n_services; k++) {
		if (st->services[k].health == TEND_HEALTH_UNKNOWN)
			continue;
		tend_buf_puts(&b, "tend_service_healthy{service=\"");
		put_label(&b, st->services[k].service);
		tend_buf_printf(&b, "\"} %d\n", st->services[k].health == TEND_HEALTH_HEALTHY);
	}
	family(&b, "tend_probe_up", "gauge",
	       "1 if the service's liveness probes passed at the last liveness run "
	       "(probes.liveness_interval), 0 if not.");
	for (size_t k = 0; k < st->n_liveness; k++) {
		tend_buf_puts(&b, "tend_probe_up{service=\"");
		put_label(&b, st->liveness[k].service);
		tend_buf_printf(&b, "\"} %d\n", st->liveness[k].up ? 1 : 0);
	}
	tend_agent_status_unlock(st);
	if (!b.ptr) {
		tend_error_set("metrics: out of memory");
		return TEND_ERROR;
	}
	*out = tend_buf_detach(&b);
	return 0;
}

/* ---- a concluded reconcile ---- */

static tend_agent_outcome outcome_of(tend_reconcile_outcome o)
{
	switch (o) {
	case TEND_RECONCILE_NOTHING:
	case TEND_RECONCILE_APPLIED:
	case TEND_RECONCILE_PLANNED:
	case TEND_RECONCILE_REBOOT_REQUIRED:
		return TEND_OUTCOME_SUCCESS;
	case TEND_RECONCILE_WAITING:
	case TEND_RECONCILE_HELD:
		return TEND_OUTCOME_BLOCKED;
	case TEND_RECONCILE_ROLLED_BACK:
	case TEND_RECONCILE_ROLLBACK_FAILED:
		return TEND_OUTCOME_ROLLED_BACK;
	case TEND_RECONCILE_REFUSED:
		return TEND_OUTCOME_REFUSED;
	case TEND_RECONCILE_BLOCKED:
	case TEND_RECONCILE_FAILED:
		return TEND_OUTCOME_FAILED;
	}
	return TEND_OUTCOME_FAILED;
}

void tend_agent_status_record(tend_agent_status *st, const tend_reconcile_report *r, double secs)
{
	tend_agent_outcome oc = outcome_of(r->outcome);
	const char *err = oc == TEND_OUTCOME_SUCCESS ? NULL : (r->message ? r->message : "failed");

	tend_agent_status_lock(st);
	/* Another system runs now: the last liveness run judged the one before. */
	if (r->switched && st->liveness) {
		tend_liveness_free(st->liveness, st->n_liveness);
		st->liveness = NULL;
		st->n_liveness = 0;
	}
	if (r->applied_commit[0])
		tend_agent_status_set_str(&st->applied_commit, r->applied_commit);
	tend_agent_status_set_str(&st->target_commit, r->commit[0] ? r->commit : NULL);
	tend_agent_status_set_str(&st->last_error, err);
	if (r->outcome != TEND_RECONCILE_PLANNED)
		tend_agent_status_set_str(&st->last_message, r->message);
	switch (r->outcome) {
	case TEND_RECONCILE_NOTHING:
	case TEND_RECONCILE_APPLIED:
	case TEND_RECONCILE_PLANNED:
		st->phase = TEND_PHASE_CONVERGED;
		break;
	case TEND_RECONCILE_ROLLED_BACK:
	case TEND_RECONCILE_ROLLBACK_FAILED:
		st->phase = TEND_PHASE_ROLLED_BACK;
		st->rollbacks++;
		break;
	case TEND_RECONCILE_REFUSED:
		st->phase = TEND_PHASE_FAILED;
		st->refused_commits++;
		break;
	case TEND_RECONCILE_BLOCKED:
		/* A commit that failed before: keep saying how it failed. */
		if (st->phase != TEND_PHASE_ROLLED_BACK && st->phase != TEND_PHASE_FAILED)
			st->phase = TEND_PHASE_FAILED;
		break;
	case TEND_RECONCILE_FAILED:
		st->phase = TEND_PHASE_FAILED;
		break;
	case TEND_RECONCILE_WAITING:
		st->phase = TEND_PHASE_WAITING;
		break;
	case TEND_RECONCILE_REBOOT_REQUIRED:
		st->phase = TEND_PHASE_REBOOT_REQUIRED;
		break;
	case TEND_RECONCILE_HELD:
		st->phase = TEND_PHASE_HELD;
		break;
	}
	phase_liveness(st);
	if (r->outcome != TEND_RECONCILE_PLANNED) {
		char *changes = tend_reconcile_report_changes(r);

		if (changes) {
			free(st->changes);
			st->changes = changes_capped(changes);
		}
		/* What tend history records (not the polls that found nothing to do, waited or
		 * were blocked), and the same conclusion at every poll once. */
		if (r->outcome != TEND_RECONCILE_NOTHING && r->outcome != TEND_RECONCILE_WAITING &&
		    r->outcome != TEND_RECONCILE_BLOCKED &&
		    (!st->n_events || strcmp(st->events[st->n_events - 1].commit, r->commit) ||
		    strcmp(st->events[st->n_events - 1].outcome ? st->events[st->n_events - 1].outcome : "",
			   tend_reconcile_outcome_name(r->outcome)) ||
		    strcmp(st->events[st->n_events - 1].message ? st->events[st->n_events - 1].message : "",
			   r->message ? r->message : "")))
			tend_agent_status_event_add(st, time(NULL), r->commit,
						    tend_reconcile_outcome_name(r->outcome), r->message,
						    changes);
		free(changes);
	}
	st->switch_overdue = 0;
	if (r->outcome != TEND_RECONCILE_PLANNED)
		st->reboot_required = r->reboot_required || r->outcome == TEND_RECONCILE_REBOOT_REQUIRED;
	/* Probes ran (apply, rollback, drift repair): that is the services'
	 * health now. Otherwise the last results stand. */
	if (r->n_services)
		tend_agent_status_set_services(st, r->services, r->n_services);
	if (r->generation_after > 0)
		st->generation = r->generation_after;
	else if (r->generation_before > 0)
		st->generation = r->generation_before;
	st->last_outcome = oc;
	st->reconciles[oc]++;
	st->last_duration_s = secs;
	st->last_reconcile = time(NULL);
	tend_agent_status_unlock(st);
}

void tend_agent_status_polled(tend_agent_status *st, int unchanged)
{
	tend_agent_status_lock(st);
	if (unchanged)
		st->polls_unchanged++;
	else
		st->polls_full++;
	st->last_poll = time(NULL);
	tend_agent_status_unlock(st);
}
