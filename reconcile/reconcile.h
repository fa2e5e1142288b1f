/* One reconcile of this host: fetch and verify the branch head, render what the
 * manifests want here, compare it with what the host runs, converge (files and
 * secrets, then the NixOS switch, then probes in dependency order) and roll
 * back on a failed switch or probe. The daemon (agent/daemon.c) and the CLI
 * (`tend plan`, `tend reconcile --once`, `tend rollback`) call this. */
#ifndef TEND_RECONCILE_H
#define TEND_RECONCILE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct tend_config;
struct tend_closure_diff;
struct tend_manifest;

typedef enum {
	TEND_RECONCILE_NOTHING = 0,    /* the host already runs what the head commit wants */
	TEND_RECONCILE_APPLIED,        /* changes applied and probed healthy */
	TEND_RECONCILE_PLANNED,        /* plan_only: there are changes (see the report's plan) */
	TEND_RECONCILE_FAILED,         /* failed before changing anything (build, render, decrypt) */
	TEND_RECONCILE_ROLLED_BACK,    /* applied, failed (switch or probe), rolled back */
	TEND_RECONCILE_ROLLBACK_FAILED,/* failed and the rollback did not become healthy either */
	TEND_RECONCILE_REFUSED,        /* the commit was refused: signature or fast-forward */
	TEND_RECONCILE_BLOCKED,        /* the head is a commit that failed before; not retried */
	TEND_RECONCILE_WAITING,        /* another switch (an operator's) holds the switch lock:
					* nothing touched, tried again at the next poll */
	TEND_RECONCILE_REBOOT_REQUIRED,/* applied as the boot default; switch-to-configuration
					* exited 100: it takes effect at the next boot */
	TEND_RECONCILE_HELD            /* the host runs another system than tend applied (an
					* older generation booted, a rollback by hand) and no new
					* commit: nothing switched until one arrives or tend resume */
} tend_reconcile_outcome;

#define TEND_RECONCILE__LAST TEND_RECONCILE_HELD

const char *tend_reconcile_outcome_name(tend_reconcile_outcome outcome);

typedef struct {
	int retry;                     /* apply the head even if it failed before */
	int allow_non_fast_forward;    /* accept a head that does not descend from the applied commit */
	int plan_only;                 /* observe and plan, change nothing (tend plan) */
	int no_fetch;                  /* use the mirror as it is (tests, tend plan --offline) */
	volatile sig_atomic_t *abort;  /* set by a signal handler: stop waiting (probes, between steps) */
	/* With plan_only, holding the state lock: a commit that changes nothing on
	 * this host is recorded as applied (the host runs what it describes), as a
	 * full reconcile would, instead of stopping at the plan. The agent's first
	 * pass uses it, so an unaffected commit costs one pass, not two. */
	int settle_unchanged;
	int now;                       /* apply outside the host's apply_window (--now) */
} tend_reconcile_opts;

#define TEND_RECONCILE_OPTS_INIT { 0, 0, 0, 0, NULL, 0, 0 }

typedef enum {
	TEND_ACTION_WRITE_FILE = 1,    /* a rendered file (a route file) */
	TEND_ACTION_REMOVE_FILE,
	TEND_ACTION_INSTALL_SECRET,
	TEND_ACTION_REMOVE_SECRET,
	TEND_ACTION_RESTART_UNIT,      /* a secret changed whose declaration names units to restart */
	TEND_ACTION_SWITCH,            /* nix-env --set + switch-to-configuration: from -> to */
	TEND_ACTION_PROBE              /* a service's health probes */
} tend_action_kind;

typedef struct {
	tend_action_kind kind;
	char *service;                 /* the service it belongs to (may be NULL) */
	char *path;                    /* file / secret destination; unit name for restarts */
	char *from;                    /* switch: store path now (may be NULL); file: old sha256 */
	char *to;                      /* switch: store path wanted; file: new sha256 */
	char *reason;                  /* "drift", "changed", "new", ... (may be NULL) */
	struct tend_closure_diff *closure; /* switch: what it changes, packages and units
					    * (reconcile/closure.h); NULL on a first activation */
} tend_action;

typedef struct {
	tend_action *items;
	size_t count, cap;
} tend_plan;

void tend_plan_dispose(tend_plan *plan);
/* The plan as text, one action a line (what `tend plan` prints), a switch followed by its
 * closure diff, indented. Caller frees. */
char *tend_plan_format(const tend_plan *plan);
/* The plan as a JSON array (what `tend plan --json` prints). Caller frees. */
char *tend_plan_format_json(const tend_plan *plan);

/* A service's health as this reconcile's probes saw it. */
typedef enum {
	TEND_HEALTH_UNKNOWN = 0,       /* not probed: no probes, or a service before it failed */
	TEND_HEALTH_HEALTHY,
	TEND_HEALTH_FAILING
} tend_health;

const char *tend_health_name(tend_health h);   /* "unknown", "healthy", "failing" */

typedef struct {
	char *service;
	tend_health health;
	char *probe;                   /* what decided: the failing probe, or the last one that
					* passed ("http http://..."); NULL when none ran */
	int64_t checked_at;            /* Unix time of that probe; 0 when not probed */
} tend_service_health;

void tend_service_health_free(tend_service_health *list, size_t n);

typedef struct {
	tend_reconcile_outcome outcome;
	char commit[41];               /* the commit considered (head), "" if none */
	char applied_commit[41];       /* the commit the host runs afterwards, "" if none */
	char *message;                 /* one line for humans and alerts (may be NULL) */
	char *probe_output;            /* the failing probe's output (capped), or NULL */
	char *failed_probe;            /* "service: http http://..." of the failing probe, or NULL */
	long generation_before;        /* profile generation before (0: unknown) */
	long generation_after;         /* and after (after a rollback: the one re-activated) */
	char *system_before;           /* store paths; may be NULL */
	char *system_after;
	tend_plan plan;                /* what was (or, with plan_only, would be) done */
	/* This host's services, dependencies first, as the probes of this
	 * reconcile left them: after an apply, the new commit's probes; after a
	 * rollback, the probes of what runs again, with the service whose probe
	 * failed the commit marked failing. Empty when no probes ran. */
	tend_service_health *services;
	size_t n_services;
	int planned_beside_agent;      /* plan_only while another tend held the state lock:
					* planned from the mirror as last fetched */
	int64_t window_opens;          /* outcome waiting for the host's apply_window: when it
					* opens next (Unix time); 0 otherwise */
	int switched;                  /* the plan's switch ran in this reconcile (switch-to-
					* configuration, or the boot default set): its closure diff
					* is what changed, even when it was rolled back */
	int reboot_required;           /* afterwards, the running system's kernel, initrd or
					* kernel modules are not the booted system's: they take
					* effect at the next boot (tend_nix_reboot_required) */
} tend_reconcile_report;

void tend_reconcile_report_dispose(tend_reconcile_report *report);

/* What the report's system switch changed, one change a line (reconcile/closure.h), or NULL
 * when no switch ran (report->switched), it had no closure diff, or it changed no package or
 * unit. Caller frees. */
char *tend_reconcile_report_changes(const tend_reconcile_report *report);

typedef struct {
	char commit[41];               /* whose secrets ("" when nothing was applied yet) */
	size_t secrets;                /* this host's secrets at that commit */
	size_t installed;              /* of them, written (missing or different on disk) */
} tend_secrets_restored;

/* Install the secrets of the commit this host runs (of the change in flight, if any) from
 * the state directory alone: its mirror, the recorded system, the configured identities; no
 * fetch, no build, no other host (reconcile/restore.c). What `tend secret install` and the
 * agent's start do, so services find their secrets after a reboot before any network. */
int tend_reconcile_secrets_restore(tend_secrets_restored *out, const struct tend_config *cfg);

/* Run the liveness probes of every service of host in m that declares any, in dependency
 * order, each service on its own: one failing does not stop the others. Each probe runs
 * without its grace, its tries spread over at most probes.liveness_interval. *out (caller frees
 * with tend_service_health_free) gets one entry a service, healthy or failing; errors[i]
 * (caller frees each and the array) says why a failing one failed, in one line. */
int tend_reconcile_liveness_host(tend_service_health **out, char ***errors, size_t *n,
				 const struct tend_config *cfg, const struct tend_manifest *m, const char *host,
				 volatile sig_atomic_t *abort);

/* <state_dir>/resume, left by `tend resume`: the next reconcile of a held host (outcome
 * held: it runs another system than tend applied, with no new commit) switches it forward
 * again, and removes the file. */
#define TEND_RESUME_FILE "resume"

/* Lift a hold: write <state_dir>/resume (the state directory must exist). */
int tend_reconcile_resume(const struct tend_config *cfg);

/* Run one reconcile for cfg->host. Returns 0 when it ran to a conclusion (see
 * out->outcome, including rolled back and refused), negative on an error that
 * stopped it (state locked: TEND_ELOCKED; fetch failed; interrupted through
 * opts->abort while probing, which leaves the change in flight; the error is
 * set). A change left in flight by a crash or an abort is finished (the system
 * is already the target: probe, adopt) or undone (roll back) first, and that
 * is this call's outcome; the next call looks at the branch head again. While
 * the head is blocked, the applied commit is still kept in shape (drifted files
 * are put back), and the outcome says so. With plan_only nothing is changed
 * (the mirror is fetched, the revision exported and built); when another tend
 * holds the lock, plan_only works beside it without fetching, in a private
 * directory, and says so (planned_beside_agent). */
int tend_reconcile_once(tend_reconcile_report *out, const struct tend_config *cfg,
			const tend_reconcile_opts *opts);

/* Re-activate a previous system generation by hand (tend rollback): generation
 * 0 means the one before the current. Restores the files of the commit that
 * generation belongs to when the state knows it, runs the probes, records it
 * in the history. */
int tend_reconcile_rollback(tend_reconcile_report *out, const struct tend_config *cfg,
			    long generation, const tend_reconcile_opts *opts);

#endif
