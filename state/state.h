/* What this host has applied, kept in <state_dir>/state.json (schema-versioned
 * JSON, written atomically) under a lock on the state directory so that two
 * agents on one host cannot interleave. A crash leaves either the old or the
 * new file; the in-flight record tells the next start what to finish or undo. */
#ifndef TEND_STATE_H
#define TEND_STATE_H

#include <stddef.h>
#include <stdint.h>

#define TEND_STATE_SCHEMA 1
#define TEND_STATE_FILE "state.json"
#define TEND_STATE_LOCK "lock"
/* Caps on text kept in the state, whatever the caller passes. */
#define TEND_STATE_MAX_OUTPUT (64u * 1024)
#define TEND_STATE_MAX_BYTES (16u << 20)

typedef enum {
	TEND_FILE_ROUTE = 1,       /* a rendered file (proxy routes) */
	TEND_FILE_SECRET           /* a decrypted secret */
} tend_state_file_kind;

typedef struct {
	char *path;                /* absolute path on the host (with the root prefix) */
	char sha256[65];           /* of what tend wrote */
	char *service;             /* the service it belongs to (may be NULL) */
	tend_state_file_kind kind;
} tend_state_file;

typedef enum {
	TEND_PHASE_NONE = 0,
	TEND_PHASE_FILES,          /* writing files and secrets */
	TEND_PHASE_SWITCH,         /* nix-env --set / switch-to-configuration running */
	TEND_PHASE_PROBES,         /* switched; probing */
	TEND_PHASE_ROLLBACK        /* failed; returning to the previous system */
} tend_state_phase;

const char *tend_state_phase_name(tend_state_phase phase);

typedef struct {
	int active;                /* a change is in flight */
	char commit[41];           /* the commit being applied */
	char prev_commit[41];      /* the commit applied before ("" if none) */
	char *prev_system;         /* store path it replaced (may be NULL: first apply) */
	long prev_generation;
	char *target_system;       /* store path being activated (may be NULL: no switch) */
	tend_state_phase phase;
	int64_t started;           /* unix seconds */
	char *backup_dir;          /* saved copies of the files it replaced */
} tend_state_inflight;

typedef struct {
	char commit[41];
	int64_t when;
	char *reason;              /* one line */
} tend_state_failed;

typedef struct {
	char commit[41];
	int64_t start, end;        /* unix seconds */
	char *outcome;             /* tend_reconcile_outcome_name(): "applied", "rolled-back", ... */
	char *message;             /* one line (may be NULL) */
	char *failed_probe;        /* may be NULL */
	char *probe_output;        /* capped; may be NULL */
	char *switch_output;       /* capped; may be NULL */
	char *system_before, *system_after;   /* store paths; may be NULL */
	long generation_before, generation_after;
	char *rollback_target;     /* store path re-activated; may be NULL */
	char *changes;             /* what the system switch changed, one change a line
				      ("package grafana 10.4.2 -> 11.0.1"); may be NULL */
} tend_state_history;

typedef struct tend_state {
	char applied_commit[41];   /* "" when nothing applied yet */
	char *system;              /* store path of the system tend last activated (may be NULL) */
	long generation;           /* its profile generation (0: unknown) */
	char *reboot_boot_id;      /* switch-to-configuration exited 100 during this boot
				      (/proc/sys/kernel/random/boot_id): system is the boot
				      default and waits for a reboot, or tend rebooted into
				      system: after a reboot (another boot id) the applied
				      commit's probes decide; NULL otherwise */
	char *reboot_prev_system;  /* what a failed boot goes back to: the system tend's last
				      switch replaced (may be NULL) */
	char reboot_prev_commit[41]; /* and its commit ("" if unknown) */
	int reboot_back;           /* the pending reboot goes back to the previous system after
				      failed probes: failing again is not undone again */
	char *reboot_window;       /* the newest loaded commit's reboot_window for this host
				      (fleet.yaml); NULL: tend never reboots the host */
	tend_state_file *files;    /* every file tend wrote, sorted by path */
	size_t n_files;
	tend_state_inflight inflight;
	tend_state_failed *failed; /* commits that failed and are not retried */
	size_t n_failed;
	tend_state_history *history; /* oldest first */
	size_t n_history;
} tend_state;

/* ---- lock ----------------------------------------------------------- */

typedef struct tend_state_lock tend_state_lock;

/* Create dir (0700) if needed and take an exclusive flock on dir/lock without
 * waiting. TEND_ELOCKED (naming the holder's pid) when another process has it. */
int tend_state_lock_take(tend_state_lock **out, const char *dir);
void tend_state_lock_release(tend_state_lock *lock);

/* ---- load / save ---------------------------------------------------- */

tend_state *tend_state_new(void);
/* Load dir/state.json; a missing file gives an empty state. TEND_EINVALID
 * naming the file for anything unreadable or of another schema. */
int tend_state_load(tend_state **out, const char *dir);
/* The same for a document in memory; display names it in messages. */
int tend_state_parse(tend_state **out, const char *display, const char *data, size_t len);
/* Write dir/state.json atomically (temporary file, fsync, rename, fsync dir),
 * dropping the oldest history entries beyond history_limit (0: keep all). */
int tend_state_save(const tend_state *st, const char *dir, unsigned history_limit);
void tend_state_free(tend_state *st);

/* ---- edits ---------------------------------------------------------- */

const tend_state_file *tend_state_file_get(const tend_state *st, const char *path);
int tend_state_file_set(tend_state *st, const char *path, const char sha256[65],
			const char *service, tend_state_file_kind kind);
void tend_state_file_remove(tend_state *st, const char *path);

int tend_state_failed_has(const tend_state *st, const char *commit);
int tend_state_failed_add(tend_state *st, const char *commit, int64_t when, const char *reason);
void tend_state_failed_clear(tend_state *st, const char *commit);

/* Append a copy of entry (strings duplicated and capped). */
int tend_state_history_add(tend_state *st, const tend_state_history *entry);

/* Start / end an in-flight record (strings duplicated). */
int tend_state_inflight_begin(tend_state *st, const char *commit, const char *prev_system,
			      long prev_generation, const char *target_system,
			      const char *backup_dir, int64_t started);
void tend_state_inflight_clear(tend_state *st);

#endif
