/* `tend run` wiring: configuration -> status, alerts, HTTP endpoint, daemon.
 * One step: plan (fetch + verify + compare); if this host depends on others,
 * wait until they run the new commit; then converge; then map the report onto
 * the status and the alerts. The plan, the dependency check and the converge
 * each run in a short-lived worker process (agent/worker.h) given the
 * configuration this process adopted. Reload (SIGHUP) swaps the configuration
 * in only when the new one is valid and its HTTP endpoint could be started. */
#include "agent/agent.h"
#include "agent/alert.h"
#include "agent/config.h"
#include "agent/fleet_status.h"
#include "agent/http.h"
#include "agent/idle.h"
#include "agent/liveness.h"
#include "agent/log.h"
#include "agent/webhook.h"
#include "agent/worker.h"
#include "reconcile/nix.h"
#include "reconcile/reconcile.h"
#include "state/state.h"
#include "util/fs.h"
#include "util/proc.h"

#include <limits.h>
#include <sodium.h>
#include <sys/auxv.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tend_agent {
	tend_config *cfg;
	char *cfg_data;                 /* the document cfg was parsed from, and the */
	size_t cfg_len;                 /* directory of its relative paths: what the */
	char *cfg_base;                 /* workers parse (they never re-read the file) */
	char *worker_bin;               /* NULL: /proc/self/exe */
	tend_agent_status status;
	tend_alerter *alerter;
	tend_http *http;
	tend_daemon daemon;
	tend_agent_tunables tun;
	time_t fetch_failing_since;     /* 0: the last fetch worked */
	time_t blocked_since;           /* 0: not waiting on other hosts */
	char blocked_commit[41];
	int blocked_verdict;
	char last_commit[41];           /* the last concluded reconcile, to log repeats quietly */
	int last_outcome;
	char *invoked;                  /* absolute path tend was started as */
	char *running;                  /* the file that runs (/proc/self/exe) */
	char **argv;                    /* for re-exec: invoked, "run", ... */
	char *unit_file;                /* system.unit_file as configured at start */
	char *unit_target;              /* what it resolved to then; NULL: not watched */
	tend_agent_idle idle;           /* timer polls that only look at the remote head */
	time_t overdue_mailed;          /* start of the switch last reported past its limit */
};

static void watch_unit(tend_agent *a);
static int liveness_between(void *ctx, volatile sig_atomic_t *abort);
static int send_mail(void *ctx, const tend_smtp_opts *smtp, const char *subject, const char *body);

static void smtp_from_config(tend_smtp_opts *o, const tend_config *cfg)
{
	const tend_config_email *e = &cfg->alerts.email;

	memset(o, 0, sizeof(*o));
	o->url = e->smtp_url;
	o->from = e->from;
	o->to = (const char *const *)e->to;
	o->n_to = e->n_to;
	o->username = e->username;
	o->password_file = e->password_file;
	o->allow_plain = !e->starttls;
	o->timeout_ms = 20000;
}

static void tunables_default(tend_agent_tunables *t, const tend_config *cfg)
{
	t->backoff_min_ms = cfg->poll.backoff_initial_ms;
	t->backoff_max_ms = cfg->poll.backoff_max_ms;
	if (!t->backoff_max_ms)   /* not set: 5 minutes, or the poll interval when longer */
		t->backoff_max_ms = cfg->poll.interval_ms > 300000 ? cfg->poll.interval_ms : 300000;
	if (t->backoff_max_ms < t->backoff_min_ms)
		t->backoff_max_ms = t->backoff_min_ms;
	t->fetch_alert_after_ms = cfg->alerts.fetch_failing_after_ms;
	t->dep_recheck_ms = cfg->dependencies.recheck_ms;
	t->dep_deadline_ms = cfg->dependencies.deadline_ms;
}

/* Everything a configuration needs beyond parsing: a readable webhook secret
 * and well-formed email settings. Returns the secret (caller wipes). */
static int config_complete(const tend_config *cfg, unsigned char **secret, size_t *secret_len)
{
	int error;

	*secret = NULL;
	*secret_len = 0;
	if (cfg->webhook_secret_file &&
	    (error = tend_webhook_secret_load(secret, secret_len, cfg->webhook_secret_file)) < 0)
		return error;
	if (cfg->alerts.email.configured) {
		tend_smtp_opts o;
		char *msg = NULL;

		smtp_from_config(&o, cfg);
		if ((error = tend_smtp_message_build(&msg, &o, "check", "check")) < 0) {
			tend_error_prefix("%s: alerts.email: ", cfg->path);
			return error;
		}
		free(msg);
	}
	return 0;
}

static void secret_free(unsigned char *s, size_t len)
{
	if (s) {
		sodium_memzero(s, len);
		free(s);
	}
}

int tend_agent_check_config(const char *config_path)
{
	tend_config *cfg = NULL;
	unsigned char *secret = NULL;
	size_t len = 0;
	int error;

	if ((error = tend_config_load(&cfg, config_path)) == 0)
		error = config_complete(cfg, &secret, &len);
	secret_free(secret, len);
	tend_config_free(cfg);
	return error;
}

static void on_hook(void *ctx)
{
	tend_daemon_wake();
}

static int http_start(tend_http **out, tend_agent *a, const tend_config *cfg,
		      const unsigned char *secret, size_t secret_len)
{
	tend_http_opts o;

	*out = NULL;
	if (cfg->listen.port == 0)
		return 0;
	memset(&o, 0, sizeof(o));
	o.address = cfg->listen.address;
	o.port = cfg->listen.port;
	o.hook_secret = secret;
	o.hook_secret_len = secret_len;
	o.on_hook = on_hook;
	o.status = &a->status;
	return tend_http_start(out, &o);
}

static int reload(void *ctx)
{
	tend_agent *a = ctx;
	tend_config *cfg = NULL;
	tend_http *http = NULL;
	unsigned char *secret = NULL;
	char *data = NULL, *base = NULL;
	size_t len = 0, data_len = 0;
	tend_smtp_opts smtp;
	int error, same_listen;

	if ((error = tend_config_load_document(&cfg, &data, &data_len, &base, a->cfg->path)) < 0 ||
	    (error = config_complete(cfg, &secret, &len)) < 0)
		goto out;
	if (strcmp(cfg->host, a->cfg->host) || strcmp(cfg->state_dir, a->cfg->state_dir)) {
		tend_error_set("%s: 'host' and 'state_dir' cannot change while the agent runs; restart it",
			       cfg->path);
		error = TEND_EINVALID;
		goto out;
	}
	same_listen = cfg->listen.port == a->cfg->listen.port &&
		      !strcmp(cfg->listen.address, a->cfg->listen.address);
	if (same_listen) {
		if (a->http && (error = tend_http_set_hook_secret(a->http, secret, len)) < 0)
			goto out;
	} else {
		/* The new endpoint must come up before the old one goes. */
		if ((error = http_start(&http, a, cfg, secret, len)) < 0)
			goto out;
		tend_http_stop(a->http);
		a->http = http;
	}
	if (cfg->alerts.email.configured)
		smtp_from_config(&smtp, cfg);
	tend_alerter_set_smtp(a->alerter, cfg->alerts.email.configured ? &smtp : NULL);
	tend_config_free(a->cfg);
	a->cfg = cfg;
	cfg = NULL;
	free(a->cfg_data);
	free(a->cfg_base);
	a->cfg_data = data;
	a->cfg_len = data_len;
	a->cfg_base = base;
	data = base = NULL;
	tunables_default(&a->tun, a->cfg);
	tend_agent_idle_reset(&a->idle);   /* the remote may have changed: reconcile next */
	if (strcmp(a->unit_file ? a->unit_file : "", a->cfg->system.unit_file))
		watch_unit(a);
	a->daemon.interval_ms = a->cfg->poll.interval_ms;
	a->daemon.jitter_ms = a->cfg->poll.jitter_ms;
	a->daemon.backoff_min_ms = a->tun.backoff_min_ms;
	a->daemon.backoff_max_ms = a->tun.backoff_max_ms;
	if (a->daemon.between_interval_ms && !a->cfg->probes.liveness_interval_ms)
		tend_agent_liveness_off(&a->status, a->alerter, time(NULL));
	a->daemon.between_interval_ms = a->cfg->probes.liveness_interval_ms;
	error = 0;
out:
	secret_free(secret, len);
	tend_config_free(cfg);
	free(data);
	free(base);
	return error;
}

static void on_sent(void *ctx)
{
	tend_agent *a = ctx;

	tend_agent_status_lock(&a->status);
	a->status.alerts_sent++;
	tend_agent_status_unlock(&a->status);
}

/* The status's recent reconciles from the state's history, so that a restarted agent's page
 * and /v1/status still show them. A state that cannot be read shows none (the first
 * reconcile says why). */
static void seed_events(tend_agent *a)
{
	tend_state *st = NULL;
	size_t i;

	if (tend_state_load(&st, a->cfg->state_dir) < 0) {
		tend_error_clear();
		return;
	}
	for (i = st->n_history > TEND_STATUS_EVENTS ? st->n_history - TEND_STATUS_EVENTS : 0;
	     i < st->n_history; i++) {
		const tend_state_history *h = &st->history[i];

		tend_agent_status_event_add(&a->status, (time_t)h->end, h->commit, h->outcome,
					    h->message, h->changes);
	}
	tend_state_free(st);
}

int tend_agent_open(tend_agent **out, const char *config_path)
{
	tend_agent *a;
	tend_smtp_opts smtp;
	char *alerts = NULL;
	int error = TEND_ERROR;

	*out = NULL;
	if (!(a = calloc(1, sizeof(*a))))
		return TEND_ERROR;
	if ((error = tend_config_load_document(&a->cfg, &a->cfg_data, &a->cfg_len, &a->cfg_base,
					       config_path)) < 0)
		goto fail;
	if ((error = tend_agent_status_init(&a->status, a->cfg->host)) < 0)
		goto fail;
	seed_events(a);
	if ((error = tend_dir_create_all(a->cfg->state_dir, 0700)) < 0 ||
	    !(alerts = tend_path_join(a->cfg->state_dir, "alerts.json"))) {
		error = error < 0 ? error : TEND_ERROR;
		goto fail;
	}
	if (a->cfg->alerts.email.configured)
		smtp_from_config(&smtp, a->cfg);
	if ((error = tend_alerter_open(&a->alerter, alerts, a->cfg->host,
				       a->cfg->alerts.email.configured ? &smtp : NULL)) < 0)
		goto fail;
	tunables_default(&a->tun, a->cfg);
	/* Mails go out from worker processes: libcurl stays out of this one. */
	tend_alerter_set_sender(a->alerter, send_mail, a);
	/* A mail server that is back should not wait long for the queue. */
	tend_alerter_set_backoff(a->alerter, 5, 600);
	free(alerts);
	*out = a;
	return 0;
fail:
	free(alerts);
	tend_agent_free(a);
	return error;
}

int tend_agent_set_args(tend_agent *a, int argc, char **argv)
{
	const char *execfn = (const char *)getauxval(AT_EXECFN);
	char buf[PATH_MAX], cwd[PATH_MAX];
	ssize_t n;
	int i;

	if (!execfn || (n = readlink("/proc/self/exe", buf, sizeof(buf) - 1)) < 0)
		return 0;   /* no re-exec: not fatal */
	buf[n] = '\0';
	a->running = strdup(buf);
	if (execfn[0] == '/')
		a->invoked = strdup(execfn);
	else if (getcwd(cwd, sizeof(cwd)) && asprintf(&a->invoked, "%s/%s", cwd, execfn) < 0)
		a->invoked = NULL;
	if (!a->running || !a->invoked || !(a->argv = calloc((size_t)argc + 2, sizeof(char *))))
		return TEND_ERROR;
	a->argv[0] = strdup(a->invoked);
	for (i = 0; i < argc; i++)
		a->argv[i + 1] = strdup(argv[i]);
	return 0;
}

/* After an applied commit: does the path we were started as lead elsewhere now? */
static void check_binary(tend_agent *a)
{
	char *now;

	if (!a->invoked || !a->running || !(now = realpath(a->invoked, NULL)))
		return;
	if (strcmp(now, a->running)) {
		tend_log(TEND_LOG_NOTICE, "tend's binary changed (%s -> %s): re-executing after this reconcile",
			 a->running, now);
		a->daemon.reexec = 1;
	}
	free(now);
}

/* tend's own unit file, fully resolved: on NixOS
 * /etc/systemd/system/tend.service leads through /etc/static (a new store
 * path with every generation) to the unit's own store path, which changes
 * only when the unit does. */
static void watch_unit(tend_agent *a)
{
	free(a->unit_file);
	free(a->unit_target);
	a->unit_file = strdup(a->cfg->system.unit_file);
	a->unit_target = realpath(a->cfg->system.unit_file, NULL);
}

/* After an applied commit: did the switch install another unit for tend?
 * Then exit (after recording the reconcile) rather than exec: the new unit
 * may change ExecStart, the environment or the sandboxing, which only
 * systemd can apply; Restart=always starts it, and restartIfChanged=false
 * kept the switch itself from restarting tend mid-switch. */
static int check_unit(tend_agent *a)
{
	char *now;
	int changed = 0;

	if (!a->unit_target || !(now = realpath(a->unit_file, NULL)))
		return 0;   /* not watched, or removed: nothing to start instead */
	if (strcmp(now, a->unit_target)) {
		tend_log(TEND_LOG_NOTICE, "tend's unit %s changed (%s -> %s): exiting after this "
			 "reconcile so that systemd starts the new unit", a->unit_file,
			 a->unit_target, now);
		a->daemon.restart = 1;
		changed = 1;
	}
	free(now);
	return changed;
}

void tend_agent_free(tend_agent *a)
{
	if (!a)
		return;
	tend_agent_idle_dispose(&a->idle);
	free(a->unit_file);
	free(a->unit_target);
	free(a->worker_bin);
	free(a->cfg_data);
	free(a->cfg_base);
	if (a->argv) {
		for (char **p = a->argv; *p; p++)
			free(*p);
		free(a->argv);
	}
	free(a->invoked);
	free(a->running);
	tend_http_stop(a->http);
	tend_alerter_free(a->alerter);
	tend_agent_status_dispose(&a->status);
	tend_config_free(a->cfg);
	free(a);
}

int tend_agent_set_worker(tend_agent *a, const char *binary)
{
	char *copy = NULL;

	if (binary && !(copy = strdup(binary))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	free(a->worker_bin);
	a->worker_bin = copy;
	return 0;
}

tend_agent_tunables *tend_agent_tunables_get(tend_agent *a)
{
	return &a->tun;
}

tend_agent_status *tend_agent_status_get(tend_agent *a)
{
	return &a->status;
}

typedef struct {
	tend_agent *a;
	const unsigned char *secret;
	size_t len;
} start_args;

/* Before anything that needs the network: the applied commit's secrets back in place (a
 * reboot emptied /run), by `tend secret install` in a process of its own, as every
 * decryption happens outside the supervisor. A failure is logged; the reconciles that
 * follow still try. */
static void restore_secrets(tend_agent *a)
{
	char *argv[] = { a->worker_bin ? a->worker_bin : "/proc/self/exe", "secret", "install",
			 "--config", a->cfg->path, NULL };
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	char line[512];

	/* before READY=1: well inside systemd's default start timeout (90 s) */
	opts.timeout_ms = 60000;
	opts.merge_stderr = 1;
	opts.max_output = 64 * 1024;
	if (tend_proc_run(&res, argv, &opts) < 0) {
		tend_log(TEND_LOG_WARNING, "cannot restore the secrets of the applied commit: %s",
			 tend_error_last());
		return;
	}
	snprintf(line, sizeof(line), "%.*s", (int)res.out.size, res.out.ptr ? res.out.ptr : "");
	line[strcspn(line, "\n")] = '\0';
	if (res.exit_code || res.timed_out)
		tend_log(TEND_LOG_WARNING, "cannot restore the secrets of the applied commit: %s",
			 res.timed_out ? "tend secret install timed out" : line);
	else
		tend_log(TEND_LOG_INFO, "secrets restored from local state: %s", line);
	tend_proc_result_dispose(&res);
}

static int start_http(void *ctx)
{
	start_args *s = ctx;
	tend_agent *a = s->a;
	int error;

	restore_secrets(a);
	if ((error = http_start(&a->http, a, a->cfg, s->secret, s->len)) < 0)
		return error;
	/* Mails go out from their own thread: a mail server that hangs never
	 * holds up reconciling or stopping. */
	tend_alerter_on_sent(a->alerter, on_sent, a);
	if ((error = tend_alerter_start(a->alerter)) < 0)
		return error;
	if (a->http)
		tend_log(TEND_LOG_INFO, "serving status on %s:%d%s", a->cfg->listen.address,
			 tend_http_port(a->http), s->secret ? " (webhook enabled)" : "");
	return 0;
}

int tend_agent_run(tend_agent *a)
{
	unsigned char *secret = NULL;
	size_t len = 0;
	start_args sa;
	int error;

	if ((error = config_complete(a->cfg, &secret, &len)) < 0)
		goto out;
	watch_unit(a);
	sa.a = a;
	sa.secret = secret;
	sa.len = len;
	memset(&a->daemon, 0, sizeof(a->daemon));
	a->daemon.lock_dir = a->cfg->state_dir;
	a->daemon.interval_ms = a->cfg->poll.interval_ms;
	a->daemon.jitter_ms = a->cfg->poll.jitter_ms;
	a->daemon.backoff_min_ms = a->tun.backoff_min_ms;
	a->daemon.backoff_max_ms = a->tun.backoff_max_ms;
	a->daemon.step = tend_agent_step;
	a->daemon.step_ctx = a;
	a->daemon.reload = reload;
	a->daemon.reload_ctx = a;
	a->daemon.start = start_http;
	a->daemon.start_ctx = &sa;
	a->daemon.between = liveness_between;
	a->daemon.between_ctx = a;
	a->daemon.between_interval_ms = a->cfg->probes.liveness_interval_ms;
	error = tend_daemon_run(&a->daemon);
	tend_alerter_stop(a->alerter);   /* unsent mails stay queued on disk */
	if (error == 0 && a->daemon.reexec && a->argv) {
		/* Release the port; the lock and every other descriptor are O_CLOEXEC. */
		tend_http_stop(a->http);
		a->http = NULL;
		tend_log(TEND_LOG_NOTICE, "re-executing %s", a->argv[0]);
		execv(a->argv[0], a->argv);
		tend_error_set_errno("cannot re-execute %s", a->argv[0]);
		error = TEND_ERROR;
	}
out:
	secret_free(secret, len);
	return error;
}

/* ---- the step ---- */

static const char *short_commit(const char *c)
{
	return c && *c ? c : "(none)";
}

/* "\nWhat the switch changes:\n  package ...\n" for a mail body, or "". */
static void put_changes(tend_buf *d, const tend_reconcile_report *r, const char *title)
{
	char *changes = tend_reconcile_report_changes(r);
	const char *p = changes;

	if (!changes)
		return;
	tend_buf_printf(d, "\n%s:\n", title);
	while (*p) {
		size_t n = strcspn(p, "\n");

		tend_buf_printf(d, "  %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
	free(changes);
}

static void raise_for_report(tend_agent *a, const tend_reconcile_report *r, time_t now)
{
	tend_buf d = TEND_BUF_INIT;

	switch (r->outcome) {
	case TEND_RECONCILE_ROLLED_BACK:
	case TEND_RECONCILE_ROLLBACK_FAILED:
		tend_buf_printf(&d, "Commit %s was applied and failed; %s.\n\n",
				short_commit(r->commit),
				r->outcome == TEND_RECONCILE_ROLLED_BACK
					? "the previous system was re-activated and is healthy"
					: "the rollback did NOT become healthy either: act now");
		if (r->failed_probe)
			tend_buf_printf(&d, "Failing probe: %s\n", r->failed_probe);
		tend_buf_printf(&d, "Generations:   %ld -> %ld\n", r->generation_before, r->generation_after);
		if (r->system_before)
			tend_buf_printf(&d, "System before: %s\n", r->system_before);
		if (r->system_after)
			tend_buf_printf(&d, "System now:    %s\n", r->system_after);
		tend_buf_printf(&d, "Still running: %s\n", short_commit(r->applied_commit));
		put_changes(&d, r, "What the switch changed (undone)");
		if (r->probe_output && *r->probe_output)
			tend_buf_printf(&d, "\nProbe output:\n%s\n", r->probe_output);
		tend_alerter_raise(a->alerter, TEND_ALERT_ROLLBACK, r->commit,
				   r->message ? r->message : "rolled back", d.ptr, now);
		break;
	case TEND_RECONCILE_REBOOT_REQUIRED:
		tend_buf_printf(&d, "Commit %s was applied as the boot default, but its system takes "
				"effect only at the next boot.\n\n%s\n", short_commit(r->commit),
				r->message ? r->message : "");
		if (r->system_after)
			tend_buf_printf(&d, "Running now:   %s\n", r->system_after);
		put_changes(&d, r, "What the next boot changes");
		tend_alerter_raise(a->alerter, TEND_ALERT_REBOOT_REQUIRED, r->commit,
				   r->message ? r->message : "reboot required", d.ptr, now);
		break;
	case TEND_RECONCILE_HELD:
		tend_buf_printf(&d, "%s\n\ntend does not switch this host forward again until a new "
				"commit arrives or an operator runs `tend resume --config FILE` on it.\n",
				r->message ? r->message : "");
		tend_alerter_raise(a->alerter, TEND_ALERT_HELD, r->commit,
				   r->message ? r->message : "held", d.ptr, now);
		break;
	case TEND_RECONCILE_REFUSED:
		tend_buf_printf(&d, "Commit %s was refused and not applied.\n\n%s\n",
				short_commit(r->commit), r->message ? r->message : "");
		tend_alerter_raise(a->alerter, TEND_ALERT_REFUSED_COMMIT, r->commit,
				   r->message ? r->message : "commit refused", d.ptr, now);
		break;
	case TEND_RECONCILE_FAILED:
		tend_buf_printf(&d, "Reconciling commit %s failed before anything changed.\n\n%s\n",
				short_commit(r->commit), r->message ? r->message : "");
		tend_alerter_raise(a->alerter, TEND_ALERT_RECONCILE_FAILED, r->commit,
				   r->message ? r->message : "reconcile failed", d.ptr, now);
		break;
	default:
		break;
	}
	tend_buf_dispose(&d);
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Applied live, but the kernel, initrd or kernel modules are the booted system's no more:
 * one mail per applied commit, open until a boot runs them (system.autoUpgrade's test). */
static void raise_reboot(tend_agent *a, const tend_reconcile_report *r)
{
	char summary[256];

	/* one mail until the host boots: later commits while it waits are not new news */
	if (tend_alerter_is_open(a->alerter, TEND_ALERT_REBOOT_REQUIRED))
		return;
	snprintf(summary, sizeof(summary), "the host runs commit %.12s with another kernel, initrd "
		 "or kernel modules than it booted: they take effect at the next boot",
		 r->applied_commit);
	tend_alerter_raise(a->alerter, TEND_ALERT_REBOOT_REQUIRED, r->applied_commit, summary,
			   "The running system was switched live; /run/booted-system still names "
			   "the kernel, initrd and modules\nthe host booted with. Reboot to run the "
			   "new ones (tend_reboot_required is 1 until then).\n", time(NULL));
}

/* While a worker runs (about once a second): a switch in its transient unit past
 * system.switch_timeout is reported once (status, log, one mail) and left to finish; killing
 * switch-to-configuration half-way would leave the host between two systems. */
static void switch_watch(void *ctx)
{
	tend_agent *a = ctx;
	char *target = NULL, commit[41] = "", summary[512];
	time_t since, now = time(NULL);
	uint64_t limit_ms = a->cfg->system.switch_timeout_ms;

	if (!tend_nix_switch_running(&target, &since, a->cfg)) {
		tend_agent_status_lock(&a->status);
		a->status.switch_overdue = 0;
		tend_agent_status_unlock(&a->status);
		return;
	}
	if (now < since || (uint64_t)(now - since) * 1000 < limit_ms || since == a->overdue_mailed) {
		free(target);
		return;
	}
	a->overdue_mailed = since;
	tend_agent_status_lock(&a->status);
	a->status.switch_overdue = 1;
	if (a->status.target_commit)
		snprintf(commit, sizeof(commit), "%s", a->status.target_commit);
	tend_agent_status_unlock(&a->status);
	snprintf(summary, sizeof(summary), "the switch to %s has run for %lld s, past "
		 "system.switch_timeout (%llu ms); tend waits for it and does not stop it",
		 target, (long long)(now - since), (unsigned long long)limit_ms);
	tend_log(TEND_LOG_WARNING, "%s", summary);
	tend_alerter_raise(a->alerter, TEND_ALERT_SWITCH_OVERDUE, commit, summary,
			   "switch-to-configuration runs in the transient unit "
			   "tend-switch-to-configuration.service; its output so far is in\n"
			   "<state_dir>/switch/output and in `journalctl -u tend-switch-to-configuration`.\n"
			   "tend records the outcome when it ends.\n", now);
	free(target);
}

/* The worker for this step: the adopted configuration, the abort flag, and
 * the daemon's step limit as the longest any worker may take. */
static void worker_opts(tend_worker_opts *w, const tend_agent *a, volatile sig_atomic_t *abort)
{
	memset(w, 0, sizeof(*w));
	w->binary = a->worker_bin;
	w->config_path = a->cfg->path;
	w->config_base = a->cfg_base;
	w->config_data = a->cfg_data;
	w->config_len = a->cfg_len;
	w->abort = abort;
	w->limit_ms = a->daemon.step_limit_ms ? a->daemon.step_limit_ms : 2 * 3600 * 1000;
	w->tick = switch_watch;
	w->tick_ctx = (void *)a;
}

static void count_worker(tend_agent *a, const tend_worker_usage *u)
{
	tend_agent_status_lock(&a->status);
	a->status.worker_runs++;
	a->status.worker_cpu_s += u->cpu_s;
	if (u->max_rss_kb > a->status.worker_max_rss_kb)
		a->status.worker_max_rss_kb = u->max_rss_kb;
	tend_agent_status_unlock(&a->status);
}

/* Between steps, every probes.liveness_interval (agent/liveness.h). */
static int liveness_between(void *ctx, volatile sig_atomic_t *abort)
{
	tend_agent *a = ctx;
	tend_worker_opts w;
	tend_worker_usage u;
	int error;

	worker_opts(&w, a, abort);
	memset(&u, 0, sizeof(u));
	if ((error = tend_agent_liveness_run(&a->status, a->alerter, &w, &u)) != 0)
		count_worker(a, &u);
	return error < 0 ? error : 0;
}

/* The alerter's sender (its own thread, no alerter lock held): one mail, in
 * a worker process. Only what does not change on reload is read here. */
static int send_mail(void *ctx, const tend_smtp_opts *smtp, const char *subject, const char *body)
{
	tend_agent *a = ctx;
	tend_worker_opts w;
	tend_worker_usage u = { 0, 0, 0 };
	char msg[2048];
	int error;

	memset(&w, 0, sizeof(w));
	w.binary = a->worker_bin;
	/* libcurl's own limits (connect 10 s, the transfer timeout_ms) end it first. */
	w.limit_ms = (uint64_t)(smtp->timeout_ms > 0 ? smtp->timeout_ms : 30000) + 30000;
	error = tend_worker_mail(&u, &w, smtp, subject, body);
	snprintf(msg, sizeof(msg), "%s", error < 0 ? tend_error_last() : "");
	count_worker(a, &u);
	if (error < 0)
		tend_error_set("%s", msg);
	return error;
}

/* tend_reconcile_once, in a worker process. *answered: 0 when the worker
 * died or could not run (not a failed fetch: that is its answer). */
static int reconcile(tend_agent *a, tend_reconcile_report *out, const tend_reconcile_opts *ro,
		     int *answered)
{
	tend_worker_opts w;
	tend_worker_usage u = { 0, 0, 0 };
	char msg[2048];
	int error;

	worker_opts(&w, a, ro->abort);
	error = tend_worker_reconcile(out, &u, &w, ro);
	snprintf(msg, sizeof(msg), "%s", error < 0 ? tend_error_last() : "");
	count_worker(a, &u);
	if (error < 0)
		tend_error_set("%s", msg);
	*answered = u.answered;
	return error;
}

/* Hosts this host depends on at commit: READY when none or all run it. */
static int deps_verdict(tend_agent *a, const char *commit, tend_deps_verdict *v, char **reason,
			volatile sig_atomic_t *abort)
{
	tend_worker_opts w;
	tend_worker_usage u = { 0, 0, 0 };
	int error;

	worker_opts(&w, a, abort);
	error = tend_worker_deps(v, reason, &u, &w, commit);
	count_worker(a, &u);
	return error;
}

/* Waiting on other hosts: phase blocked, alert once past the deadline. */
static void set_blocked(tend_agent *a, const char *commit, const char *reason, int failed_dep)
{
	time_t now = time(NULL);

	if (strcmp(a->blocked_commit, commit)) {
		snprintf(a->blocked_commit, sizeof(a->blocked_commit), "%s", commit);
		a->blocked_since = now;
		a->blocked_verdict = -1;
	}
	if (a->blocked_verdict != failed_dep) {
		a->blocked_verdict = failed_dep;
		tend_log(failed_dep ? TEND_LOG_WARNING : TEND_LOG_NOTICE,
			 "blocked before applying %.12s: %s", commit, reason);
	}
	tend_agent_status_lock(&a->status);
	a->status.phase = TEND_PHASE_BLOCKED;
	a->status.last_outcome = TEND_OUTCOME_BLOCKED;
	tend_agent_status_set_str(&a->status.target_commit, commit);
	tend_agent_status_set_str(&a->status.last_error, reason);
	tend_agent_status_unlock(&a->status);
	if ((uint64_t)(now - a->blocked_since) * 1000 >= a->tun.dep_deadline_ms)
		tend_alerter_raise(a->alerter, TEND_ALERT_DEPENDENCY_BLOCKED, commit,
				   failed_dep ? "a host this one depends on failed this commit"
					      : "still waiting for the hosts this one depends on",
				   reason, now);
}

static int fetch_failed(tend_agent *a, double secs)
{
	time_t now = time(NULL);
	const char *why = tend_error_last();
	char *msg = strdup(why);

	if (!a->fetch_failing_since)
		a->fetch_failing_since = now;
	tend_log(TEND_LOG_ERR, "fetch failed: %s", msg ? msg : why);
	tend_agent_status_lock(&a->status);
	a->status.fetch_failures++;
	tend_agent_status_set_str(&a->status.last_error, msg);
	tend_agent_status_unlock(&a->status);
	if ((uint64_t)(now - a->fetch_failing_since) * 1000 >= a->tun.fetch_alert_after_ms) {
		char summary[128], applied[41] = "";

		snprintf(summary, sizeof(summary), "fetching the repository has failed for %lld minutes",
			 (long long)(now - a->fetch_failing_since) / 60);
		tend_agent_status_lock(&a->status);
		if (a->status.applied_commit)
			snprintf(applied, sizeof(applied), "%s", a->status.applied_commit);
		tend_agent_status_unlock(&a->status);
		/* Never with the status lock held: the mail thread takes it after a send. */
		tend_alerter_raise(a->alerter, TEND_ALERT_FETCH_FAILING, applied, summary,
				   msg ? msg : "", now);
	}
	free(msg);
	(void)secs;
	return -1;
}

static int full_step(tend_agent *a, const tend_daemon_step_args *args)
{
	tend_reconcile_opts ro = TEND_RECONCILE_OPTS_INIT;
	tend_reconcile_report plan, rep;
	struct timespec t0;
	tend_deps_verdict v;
	char *reason = NULL, planned[41];
	int error, answered, rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ro.abort = args->abort;
	/* 1. Fetch, verify and compare, changing nothing. */
	ro.plan_only = 1;
	ro.settle_unchanged = 1;
	if ((error = reconcile(a, &plan, &ro, &answered)) < 0) {
		if (answered && !plan.commit[0]) {
			tend_reconcile_report_dispose(&plan);
			return fetch_failed(a, elapsed(&t0));
		}
		tend_log(TEND_LOG_ERR, "reconcile of %.12s failed: %s", short_commit(plan.commit), tend_error_last());
		goto failed;
	}
	a->fetch_failing_since = 0;
	if (plan.outcome != TEND_RECONCILE_PLANNED) {
		/* Nothing to do, refused or a commit that failed before: that is the result. */
		if (plan.outcome == TEND_RECONCILE_REFUSED) {
			/* Run it for real so that the refusal is recorded in the history. */
			tend_reconcile_report_dispose(&plan);
			ro.plan_only = 0;
			ro.no_fetch = 1;
			if ((error = reconcile(a, &plan, &ro, &answered)) < 0)
				goto failed;
		}
		goto conclude_plan;
	}
	if (*args->abort) {
		/* Stopping: no switch is started now; the next start plans again. */
		tend_log(TEND_LOG_NOTICE, "stopping before applying %.12s", plan.commit);
		tend_reconcile_report_dispose(&plan);
		return 0;
	}
	/* 2. Dependency order: the hosts this one depends on go first. */
	if (deps_verdict(a, plan.commit, &v, &reason, args->abort) < 0) {
		tend_log(TEND_LOG_WARNING, "cannot check dependencies of %.12s: %s", plan.commit,
			 tend_error_last());
		v = TEND_DEPS_READY;   /* the manifests will fail the reconcile itself */
	}
	if (v != TEND_DEPS_READY) {
		set_blocked(a, plan.commit, reason, v == TEND_DEPS_BLOCKED);
		free(reason);
		tend_reconcile_report_dispose(&plan);
		/* Ask again soon: a failed dependency may be fixed by a new commit. */
		a->daemon.interval_ms = a->tun.dep_recheck_ms;
		a->daemon.jitter_ms = 0;
		return 0;
	}
	a->daemon.interval_ms = a->cfg->poll.interval_ms;
	a->daemon.jitter_ms = a->cfg->poll.jitter_ms;
	a->blocked_commit[0] = '\0';
	a->blocked_since = 0;
	if (*args->abort) {
		tend_log(TEND_LOG_NOTICE, "stopping before applying %.12s", plan.commit);
		tend_reconcile_report_dispose(&plan);
		return 0;
	}
	/* 3. Converge. The mirror is what we planned against. Repairing drift of
	 * the commit already applied is not "applying" a new one: the phase (say,
	 * rolled-back, which other hosts' agents look at) stays. */
	tend_agent_status_lock(&a->status);
	if (!a->status.applied_commit || strcmp(a->status.applied_commit, plan.commit)) {
		a->status.phase = TEND_PHASE_APPLYING;
		tend_agent_status_set_str(&a->status.target_commit, plan.commit);
	}
	tend_agent_status_unlock(&a->status);
	memcpy(planned, plan.commit, sizeof(planned));
	tend_reconcile_report_dispose(&plan);
	ro.plan_only = 0;
	ro.no_fetch = 1;
	if ((error = reconcile(a, &rep, &ro, &answered)) < 0) {
		/* A worker that died said nothing: it was applying what we planned. */
		if (!answered && !rep.commit[0])
			memcpy(rep.commit, planned, sizeof(rep.commit));
		plan = rep;
		tend_log(TEND_LOG_ERR, "reconcile of %.12s failed: %s", short_commit(rep.commit),
			 tend_error_last());
		goto failed;
	}
	plan = rep;
conclude_plan:
	if (*args->abort)
		tend_log(TEND_LOG_NOTICE, "stopping: reconcile of %.12s %s", short_commit(plan.commit),
			 tend_reconcile_outcome_name(plan.outcome));
	{
		/* Every poll that finds the same thing again is logged at debug level. */
		int repeat = !strcmp(a->last_commit, plan.commit) && a->last_outcome == (int)plan.outcome;
		int prio = plan.outcome == TEND_RECONCILE_APPLIED ? TEND_LOG_NOTICE :
			   plan.outcome == TEND_RECONCILE_NOTHING ? TEND_LOG_INFO : TEND_LOG_ERR;

		tend_log(repeat ? TEND_LOG_DEBUG : prio, "reconcile %.12s: %s%s%s",
			 short_commit(plan.commit), tend_reconcile_outcome_name(plan.outcome),
			 plan.message ? ": " : "", plan.message ? plan.message : "");
		snprintf(a->last_commit, sizeof(a->last_commit), "%s", plan.commit);
		a->last_outcome = (int)plan.outcome;
	}
	tend_agent_status_record(&a->status, &plan, elapsed(&t0));
	tend_agent_idle_concluded(&a->idle, &plan, *args->abort);
	if (plan.outcome == TEND_RECONCILE_APPLIED && !check_unit(a))
		check_binary(a);
	if (plan.outcome == TEND_RECONCILE_NOTHING || plan.outcome == TEND_RECONCILE_APPLIED) {
		tend_alerter_resolve_keep(a->alerter, plan.applied_commit, time(NULL),
					  plan.reboot_required ? TEND_ALERT_REBOOT_REQUIRED : -1);
		if (plan.reboot_required)
			raise_reboot(a, &plan);
	} else {
		raise_for_report(a, &plan, time(NULL));
	}
	/* Failed before changing anything (a build, a render, a decryption): tried again after
	 * the backoff (poll.backoff_initial, doubling up to backoff_max), not at every poll; a
	 * new commit is planned at that retry. The alert went out once for the commit. */
	if (plan.outcome == TEND_RECONCILE_FAILED)
		rc = -1;
	tend_reconcile_report_dispose(&plan);
	return rc;
failed:
	if (*args->abort) {
		/* Stopping: the state records what is in flight; the next start finishes it. */
		tend_log(TEND_LOG_NOTICE, "stopping: %s", tend_error_last());
		tend_reconcile_report_dispose(&plan);
		return -1;
	}
	{
		char *msg = strdup(tend_error_last());
		time_t now = time(NULL);

		tend_agent_status_lock(&a->status);
		a->status.phase = TEND_PHASE_FAILED;
		a->status.last_outcome = TEND_OUTCOME_FAILED;
		a->status.reconciles[TEND_OUTCOME_FAILED]++;
		a->status.last_duration_s = elapsed(&t0);
		a->status.last_reconcile = now;
		tend_agent_status_set_str(&a->status.last_error, msg);
		tend_agent_status_set_str(&a->status.target_commit, plan.commit[0] ? plan.commit : NULL);
		tend_agent_status_unlock(&a->status);
		tend_alerter_raise(a->alerter, TEND_ALERT_RECONCILE_FAILED, plan.commit,
				   msg ? msg : "reconcile failed", msg ? msg : "", now);
		free(msg);
		tend_reconcile_report_dispose(&plan);
	}
	return -1;
}

/* A timer poll of an unchanged remote only looks (agent/idle.h). */
int tend_agent_step(void *ctx, const tend_daemon_step_args *args)
{
	tend_agent *a = ctx;
	int unchanged = tend_agent_idle_begin(&a->idle, a->cfg, args->trigger), rc = 0;

	if (!unchanged)
		rc = full_step(a, args);
	tend_agent_status_polled(&a->status, unchanged);
	return rc;
}
