/* Shared between the reconcile sources: what a commit wants on this host
 * (desired), the plan, converging with backups, probing in dependency order,
 * and rolling back. Not part of the public API (reconcile/reconcile.h). */
#ifndef TEND_RECONCILE_INTERNAL_H
#define TEND_RECONCILE_INTERNAL_H

#include <sys/stat.h>
#include <signal.h>
#include <sys/types.h>
#include "agent/config.h"
#include "manifest/manifest.h"
#include "reconcile/probe.h"
#include "reconcile/reconcile.h"
#include "state/state.h"
#include "util/buf.h"

/* A file this host must have: a rendered route file or a decrypted secret. */
typedef struct {
	char *path;                /* absolute path on the host (root prefix applied) */
	char *data;
	size_t len;
	unsigned mode;
	uid_t uid;                 /* (uid_t)-1: leave as the writer's */
	gid_t gid;
	tend_state_file_kind kind;
	char *service;             /* the service it belongs to (may be NULL) */
	char **restart;            /* units to restart when it changes */
	size_t n_restart;
	char sha256[65];
	int secret;                /* wipe data on dispose */
	int equivalent_ok;         /* a file on disk that differs only in the render stamp is fine */
	int owner_pending;         /* a secret whose owner or group this host does not have yet:
				    * installed after the switch that creates it (uid, gid -1) */
	char *owner, *group;       /* a pending secret's names, looked up after the switch */
} tend_want_file;

typedef struct {
	char commit[41];
	char *rev_dir;             /* the exported revision (with .tend/ written into it) */
	tend_manifest *manifest;
	char *flake_attr;
	char *system;              /* store path the build produced (NULL before the build) */
	tend_want_file *files;
	size_t n_files;
	const char **order;        /* this host's services, dependencies first */
	size_t n_order;
} tend_desired;

void tend_desired_dispose(tend_desired *d);
/* Load and validate the manifest of the revision in rev_dir; the host must be
 * in it. The first diagnostic becomes the error. */
int tend_desired_load(tend_desired *d, const tend_config *cfg, const char *rev_dir,
		      const char *commit);
/* Render, write .tend/ into the revision, collect the files (routes, secrets),
 * build the system, or take known_system (not NULL) as the build's result:
 * a commit already built and applied needs no second evaluation. */
int tend_desired_prepare(tend_desired *d, const tend_config *cfg, const char *known_system,
			 tend_buf *build_log);
/* Every secret of d whose owner exists, as a new generation of the secrets store made
 * current (secrets/install.h); the previous generation is kept. */
int tend_reconcile_secrets_install(const tend_config *cfg, const tend_desired *d);
/* Index of a service in d->order, or n_order when not on this host. */
size_t tend_desired_service_rank(const tend_desired *d, const char *service);

/* ---- probes ------------------------------------------------------------ */

typedef struct {
	char *failed_probe;        /* "service: http http://..." */
	char *output;
	int aborted;
	tend_service_health *services; /* every service of the host, in order, with its result */
	size_t n_services;
} tend_probe_failure;

void tend_probe_failure_dispose(tend_probe_failure *f);
/* Run the startup probes (or, for services without any, the liveness probes)
 * of every service of host in m, in dependency order. 0 when all are healthy. */
int tend_reconcile_probe_host(tend_probe_failure *out, const tend_config *cfg,
			      const tend_manifest *m, const char *host,
			      volatile sig_atomic_t *abort);

/* ---- backups of a change (reconcile/backup.c) ------------------------------ */

/* The file of d wanted at path, or NULL. */
const tend_want_file *tend_reconcile_want_find(const tend_desired *d, const char *path);
/* 1 when the plan installs or removes a secret. */
int tend_reconcile_plan_has_secrets(const tend_plan *plan);
/* <state_dir>/backups/<commit>/: the files plan replaces with their index (path, mode, owner,
 * new hash), the secrets' generation before the change, the units it restarts. *out_dir. */
int tend_reconcile_backup_write(char **out_dir, const tend_config *cfg, const tend_desired *d,
				const tend_plan *plan);
/* Every file back as it was, the previous secrets' generation linked again (written again
 * from prev_d, may be NULL, when a reboot took it). */
int tend_reconcile_backup_restore(const tend_config *cfg, const char *backup_dir,
				  const tend_desired *prev_d);
/* The secrets' generations but the current one deleted (the change is adopted). */
void tend_reconcile_backup_prune_secrets(const tend_config *cfg, const char *backup_dir);
/* The new files' hashes recorded in the state (removed ones forgotten). */
int tend_reconcile_backup_adopt(tend_state *st, const char *backup_dir);
/* The units the change restarts, restarted (all, the first failure kept in log). */
int tend_reconcile_backup_restart(const char *backup_dir, tend_buf *log);

/* ---- carrying a plan out (reconcile/apply.c) ------------------------------- */

/* Files written and removed; with secrets in the plan, a new generation of all of d's
 * secrets (but those whose owner is pending) made current. */
int tend_reconcile_apply_files(const tend_config *cfg, const tend_desired *d, const tend_plan *plan);
/* systemctl try-restart of unit (restart when it is failed); output into log. */
int tend_reconcile_apply_restart(const char *unit, tend_buf *log);
/* The plan's unit restarts, in order; the first failure stops. */
int tend_reconcile_apply_restarts(const tend_plan *plan, tend_buf *log);
/* After the switch: d's secrets whose owner is now there added to the current generation,
 * their units restarted; an owner still missing is TEND_ENOTFOUND naming it. */
int tend_reconcile_apply_pending(const tend_config *cfg, const tend_desired *d, tend_buf *log);
/* 1 when every unit in units ("a.service, b.service") is one a pending secret restarts. */
int tend_reconcile_apply_pending_explains(const tend_desired *d, const char *units);

/* ---- the units a service names (reconcile/units.c) ------------------------ */

/* Wait until each of s's units is ready (active or reloading, or a oneshot that ran and
 * succeeded), within po's deadline and abort flag. A unit that failed, is not loaded, or stays
 * stopped or crash-restarting for 30 s: negative at once, the error naming the unit and its
 * state, *failed_unit the unit, *journal (caller frees; may be NULL) its journal's last lines. */
int tend_reconcile_units_wait(char **journal, const char **failed_unit, const tend_service *s,
			      const tend_probe_opts *po);
/* The unit's last journal lines (journalctl -u), at most limit bytes (0: 4096), control
 * characters removed; NULL when there is none. Caller frees. */
char *tend_reconcile_unit_journal(const char *unit, size_t limit);
/* One look: negative naming the first unit failed, stopped, not loaded or in a crash loop (3
 * automatic restarts; one restarting after a crash or two, or a oneshot that has not run yet,
 * is not down). */
int tend_reconcile_units_check(const char **failed_unit, const tend_service *s);

/* ---- reachability guard (reconcile/guard.c) ------------------------------ */

typedef struct {
	int repository_before;     /* the repository answered an ls-remote before the switch */
	char *agent_url;           /* this host's agent address, when other hosts depend on it */
	int agent_before;          /* it answered before the switch */
} tend_guard;

/* Before a switch: what the guard will hold the switch to (m: the commit's manifest). */
int tend_guard_prepare(tend_guard *out, const tend_config *cfg, const tend_manifest *m);
/* After a switch: 0 when the repository and the agent address (each when it answered before)
 * answer again, both within system.reachability_timeout;
 * TEND_ERROR saying which did not. 0 at once when the timeout is 0. */
int tend_guard_check(const tend_guard *g, const tend_config *cfg, volatile sig_atomic_t *abort);
void tend_guard_dispose(tend_guard *g);

/* ---- reboots (reconcile/reboot.c) ------------------------------------------ */

/* After a reboot into the system tend applied while a reboot was pending (st->reboot_boot_id
 * of another boot): the applied commit's probes decide; failing, the previous system becomes
 * the boot default again and *reboot_now asks for the reboot into it. Returns 1 with the
 * report set when it concluded this reconcile, 0 when there was nothing to decide. */
int tend_reboot_probation(tend_reconcile_report *out, const tend_config *cfg, tend_state *st,
			  const tend_reconcile_opts *opts, int *reboot_now);
/* After a reconcile: when the host needs a reboot (the outcome, or its kernel) and the
 * reboot_window of st is open (or reboot_now), record it and reboot; otherwise the report
 * says when the window opens. */
void tend_reboot_maybe(tend_reconcile_report *out, const tend_config *cfg, tend_state *st,
		       int reboot_now);

/* ---- plan -------------------------------------------------------------- */

/* The actions that take the host from what it runs (current_system, files on
 * disk, st) to d. */
int tend_plan_compute(tend_plan *out, const tend_config *cfg, const tend_state *st,
		      const tend_desired *d, const char *current_system);
/* The closure diff of the plan's switch (reconcile/closure.h), when it has one from a running
 * system: two nix-store queries, so only for a plan that is shown or carried out. */
int tend_plan_closure(tend_plan *plan, const tend_config *cfg);
int tend_plan_add(tend_plan *plan, tend_action_kind kind, const char *service, const char *path,
		  const char *from, const char *to, const char *reason);
/* 1 when the plan changes something on the host (anything but probes). */
int tend_plan_changes(const tend_plan *plan);

/* ---- converge / roll back ------------------------------------------------ */

/* Apply plan (computed from d); on failure roll back. Fills the report. With guarded, a
 * switch is held to the reachability guard (not for an operator's rollback). */
int tend_converge(tend_reconcile_report *rep, const tend_config *cfg, tend_state *st,
		  const tend_desired *d, const tend_plan *plan,
		  const tend_manifest *prev_manifest, const tend_reconcile_opts *opts, int guarded);

/* Finish or undo a change a crash left in flight (st->inflight.active). */
int tend_recover(tend_reconcile_report *rep, const tend_config *cfg, tend_state *st,
		 const tend_reconcile_opts *opts);

/* Files tend installs live beneath a root: routes beneath cfg->root, secrets
 * beneath cfg->secrets_root. Every read, write and removal of one goes
 * through these, beneath that root and following no link (util/beneath.h);
 * a path outside its root (a tampered state file, a bad routes_file) is
 * TEND_EREFUSED, naming it. */
int tend_reconcile_file_where(const char **root, const char **rel, const tend_config *cfg,
			      const char *path, int secret);
int tend_reconcile_file_read(tend_buf *out, const tend_config *cfg, const char *path, int secret,
			     size_t max);
int tend_reconcile_file_write(const tend_config *cfg, const char *path, int secret,
			      const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid);
int tend_reconcile_file_unlink(const tend_config *cfg, const char *path, int secret);
/* 0 and *st when path is there (not a link), TEND_ENOTFOUND when absent. */
int tend_reconcile_file_stat(struct stat *out, const tend_config *cfg, const char *path,
			     int secret);
/* Refuse a state whose recorded paths lie outside the roots: every files[]
 * entry beneath its root, in_flight.backup_dir exactly
 * <state_dir>/backups/<in-flight commit>. */
int tend_reconcile_state_check(const tend_config *cfg, const tend_state *st);

/* Secret values to mask ("***") in stored or sent text (reconcile/mask.c). */
typedef struct {
	tend_buf *vals;
	size_t n;
} tend_mask;
/* The commit's secrets (d, may be NULL), those installed (st's secret files)
 * and those in the in-flight backup. */
int tend_mask_collect(tend_mask *m, const tend_config *cfg, const tend_state *st,
		      const tend_desired *d);
int tend_mask_add(tend_mask *m, const char *v, size_t len);
/* A copy of text with every value replaced by "***"; NULL for NULL. */
char *tend_mask_apply(const tend_mask *m, const char *text);
void tend_mask_inplace(const tend_mask *m, char **text);
void tend_mask_dispose(tend_mask *m);

struct tend_source;
/* The repository as the agent configuration describes it, its mirror under the state
 * directory; ls_remote_timeout_ms <= 0: the source's default. */
int tend_reconcile_source_open(struct tend_source **out, const tend_config *cfg,
			       int ls_remote_timeout_ms);

/* <state_dir>/<name>; caller frees. */
char *tend_reconcile_state_path(const tend_config *cfg, const char *name);
/* Make sure revision commit is exported under <state_dir>/revisions; *out is its dir. */
int tend_reconcile_export(char **out, const tend_config *cfg, const char *commit);

int64_t tend_reconcile_now(void);
/* Append rep as a history entry of st (outcome, and the rollback target and failing probe,
 * each may be NULL); strings are copied. */
void tend_report_history(tend_state *st, const tend_reconcile_report *rep, int64_t start,
			 const char *outcome, const char *rollback_target, const char *failed_probe,
			 const char *probe_output);
void tend_report_set(tend_reconcile_report *rep, tend_reconcile_outcome outcome,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
