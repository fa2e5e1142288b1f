/* What a system switch changes, as nvd shows it: the packages of the two closures (added,
 * removed, and changed with both versions, names and versions parsed from the store paths as
 * Nix's parseDrvName does) and the units switch-to-configuration will start, stop, restart or
 * reload (from the two systems' etc/systemd/system). Read from the store, no extra tool. */
#ifndef TEND_RECONCILE_CLOSURE_H
#define TEND_RECONCILE_CLOSURE_H

#include <jansson.h>
#include <stddef.h>

struct tend_config;

typedef struct {
	char *name;
	char *from;                /* the versions before, ", "-joined; NULL: added */
	char *to;                  /* after; NULL: removed */
} tend_package_change;

typedef enum {
	TEND_UNIT_START = 1,       /* new in the system */
	TEND_UNIT_STOP,            /* gone from it */
	TEND_UNIT_RESTART,         /* its unit file or drop-ins changed */
	TEND_UNIT_RELOAD           /* changed, and it asks to be reloaded (X-ReloadIfChanged, mounts) */
} tend_unit_action;

const char *tend_unit_action_name(tend_unit_action a);   /* "start", "stop", ... */

typedef struct {
	char *unit;
	tend_unit_action action;
} tend_unit_change;

typedef struct tend_closure_diff {
	tend_package_change *packages; /* sorted by name */
	size_t n_packages;
	tend_unit_change *units;   /* sorted by action, then name */
	size_t n_units;
	size_t paths_before, paths_after;   /* store paths in each closure */
	char *error;               /* why the diff is missing (NULL when it is here) */
} tend_closure_diff;

void tend_closure_diff_free(tend_closure_diff *d);

/* The package part from two closures' store paths (any order, duplicates allowed). Paths
 * that are not /nix/store/<hash>-<name> or are .drv files are ignored, as are names without
 * a version on both sides (etc, unit-*.service: the units say those). */
int tend_closure_diff_packages(tend_closure_diff *out, char *const *before, size_t n_before,
			       char *const *after, size_t n_after);

/* The unit part: before_system/etc/systemd/system against after_system's (either may lack it). */
int tend_closure_diff_units(tend_closure_diff *out, const char *before_system,
			    const char *after_system);

/* Both parts for two built systems: their closures from `nix-store --query --requisites`
 * (next to nix.command). Returns 0 with *out set even when the store could not say
 * (then (*out)->error says why); negative only when out of memory. */
int tend_closure_diff_systems(tend_closure_diff **out, const struct tend_config *cfg,
			      const char *before_system, const char *after_system);

/* One change a line, each line starting with prefix: "package grafana 10.4.2 -> 11.0.1",
 * "package added redis 7.2.4", "unit restart grafana.service". "" when nothing changed.
 * Caller frees. */
char *tend_closure_diff_format(const tend_closure_diff *d, const char *prefix);

/* {"packages": [{"name", "from", "to"}], "units": [{"unit", "action"}], "paths_before",
 * "paths_after", "error"}; and back (strict: a field that does not fit is refused). */
json_t *tend_closure_diff_to_json(const tend_closure_diff *d);
int tend_closure_diff_from_json(tend_closure_diff **out, const json_t *j);

#endif
