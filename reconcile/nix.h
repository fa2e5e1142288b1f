/* Nix as NixOS uses it: build a host's system from a flake revision, and
 * activate a store path (nix-env -p <profile> --set, then its
 * bin/switch-to-configuration switch), reading generations from the profile's
 * <profile>-<N>-link names. Every path comes from the agent configuration. */
#ifndef TEND_RECONCILE_NIX_H
#define TEND_RECONCILE_NIX_H

#include <stddef.h>
#include "util/buf.h"

struct tend_config;

/* Output kept from nix and switch-to-configuration. */
#define TEND_NIX_MAX_OUTPUT (256u * 1024)

/* nix build --json --no-link path:<flake_dir>#nixosConfigurations.<attr>.config.system.build.toplevel
 * with the configured command, extra options and time limit. *out is the
 * store path of outputs.out (caller frees). log (optional) receives nix's
 * stderr. Errors name the flake reference and carry nix's last lines. */
int tend_nix_build_system(char **out, const struct tend_config *cfg, const char *flake_dir,
			  const char *attr, tend_buf *log);

typedef struct {
	int exit_code;         /* switch-to-configuration's exit status (128+N: signal N) */
	int timed_out;
	long generation;       /* the profile generation now current (0: unknown) */
	tend_buf output;       /* nix-env and switch-to-configuration, stdout and stderr merged */
} tend_switch_result;

void tend_switch_result_dispose(tend_switch_result *res);

/* Activate store_path: set the profile to it (creating its directory), then
 * run <store_path>/bin/switch-to-configuration switch with the configured time
 * limit. Returns 0 when both succeeded; TEND_ERROR (or TEND_ETIMEOUT) when
 * either failed, with the error set and the output in out. */
int tend_nix_switch(tend_switch_result *out, const struct tend_config *cfg, const char *store_path);

/* The store path the host runs now: readlink of system.current_system.
 * TEND_ENOTFOUND (error set) when the link does not exist. */
int tend_nix_current_system(char **out, const struct tend_config *cfg);

/* The profile's current generation number (readlink <profile> = <name>-<N>-link);
 * TEND_ENOTFOUND when the profile does not exist. */
int tend_nix_profile_generation(long *out, const char *profile);
/* The store path of generation N of the profile; TEND_ENOTFOUND if there is none. */
int tend_nix_generation_path(char **out, const char *profile, long generation);
/* The generation numbers of the profile, ascending (caller frees). */
int tend_nix_generations(long **out, size_t *n, const char *profile);

#endif
