/* Nix as NixOS uses it: build a host's system from a flake revision, and
 * activate a store path (nix-env -p <profile> --set, then its
 * bin/switch-to-configuration switch), reading generations from the profile's
 * <profile>-<N>-link names. Every path comes from the agent configuration. */
#ifndef TEND_RECONCILE_NIX_H
#define TEND_RECONCILE_NIX_H

#include <signal.h>
#include <stddef.h>
#include <time.h>
#include "util/buf.h"

struct tend_config;

/* Output kept from nix and switch-to-configuration. */
#define TEND_NIX_MAX_OUTPUT (256u * 1024)

/* nix build --json --no-link --no-update-lock-file
 * path:<flake_dir>#nixosConfigurations.<attr>.config.system.build.toplevel
 * with the configured command, extra options and time limit: the inputs are
 * the ones flake.lock pins, so a flake with inputs and no flake.lock (or one
 * that does not match flake.nix) fails, and the error says flake.lock. *out is
 * the store path of outputs.out (caller frees). log (optional) receives nix's
 * stderr. Errors name the flake reference and carry nix's "error:" line. */
int tend_nix_build_system(char **out, const struct tend_config *cfg, const char *flake_dir,
			  const char *attr, tend_buf *log);

typedef struct {
	int exit_code;         /* switch-to-configuration's exit status (128+N: signal N) */
	int timed_out;
	int interrupted;       /* tend was told to stop while the switch ran in its unit: it goes
				* on there, and the next start learns how it ended */
	long generation;       /* the profile generation now current (0: unknown) */
	tend_buf output;       /* nix-env and switch-to-configuration, stdout and stderr merged */
} tend_switch_result;

void tend_switch_result_dispose(tend_switch_result *res);

/* Activate store_path as nixos-rebuild switch does (reconcile/switch.c): try-lock
 * switch-to-configuration's lock (busy: TEND_ELOCKED, nothing touched), set the
 * profile to it (creating its directory), then run
 * <store_path>/bin/switch-to-configuration switch. On a host whose systemd manages
 * the real system (/run/systemd/system exists and system.current_system is
 * /run/current-system) it runs in the transient unit tend-switch-to-configuration,
 * so stopping or killing tend.service does not kill it half-way, and it is never
 * killed for a time limit; elsewhere it is tend's child, killed past
 * system.switch_timeout. Returns 0 when it succeeded; TEND_ERROR (or
 * TEND_ETIMEOUT) when it failed, with the error set and out->exit_code and the
 * output in out. abort (may be NULL), set by a signal handler, stops the wait for a
 * switch in its unit (never the switch): TEND_ERROR with out->interrupted. */
int tend_nix_switch(tend_switch_result *out, const struct tend_config *cfg, const char *store_path,
		    volatile sig_atomic_t *abort);

/* Make store_path the boot default as nixos-rebuild boot does: the switch lock tried, the
 * profile set, then <store_path>/bin/switch-to-configuration boot (tend's child, limited by
 * system.switch_timeout). The running system is untouched: it takes effect at the next boot.
 * Results as tend_nix_switch. */
int tend_nix_boot(tend_switch_result *out, const struct tend_config *cfg, const char *store_path);

/* Reboot the host: system.reboot_command, else `systemctl reboot` where system.current_system
 * is /run/current-system (elsewhere TEND_EINVALID: a test's stand-in never reboots the machine
 * it runs on). Returns when the command did (systemd then stops tend); its output in log (may
 * be NULL). */
int tend_nix_reboot(const struct tend_config *cfg, tend_buf *log);

/* The switch of store_path as an interrupted run (a crash, a stop of tend, a
 * power cut) left it: waits for a transient switch unit still running, then
 * reads the result it recorded. *known is 1 with out filled (exit code, output)
 * when the result of a switch to store_path is on record, 0 when not (the switch
 * never finished, or ran as tend's child and died with it). abort ends the wait
 * for a unit still running: TEND_ERROR with out->interrupted. */
int tend_nix_switch_outcome(int *known, tend_switch_result *out, const struct tend_config *cfg,
			    const char *store_path, volatile sig_atomic_t *abort);

/* 1 when a switch tend started in its transient unit has not ended yet (during this
 * boot), with *target its store path (caller frees) and *since when it started
 * (wall clock); 0 otherwise. Reads only files in the state directory: the
 * supervisor calls it while a worker runs the switch. */
int tend_nix_switch_running(char **target, time_t *since, const struct tend_config *cfg);

/* Run store_path's switch-to-configuration again (the profile already points
 * at it): what an interrupted switch needs before its system can be trusted.
 * Same results as tend_nix_switch. */
int tend_nix_switch_again(tend_switch_result *out, const struct tend_config *cfg,
			  const char *store_path, volatile sig_atomic_t *abort);

/* 1 when switch-to-configuration's lock (beside system.current_system's
 * directory: /run/nixos/switch-to-configuration.lock on NixOS) is held by
 * another process, such as an operator's nixos-rebuild (the error then names
 * the lock); 0 otherwise. */
int tend_nix_switch_busy(const struct tend_config *cfg);

/* 1 when the current system's kernel, initrd or kernel-modules are not the booted system's
 * (booted-system beside system.current_system: /run/booted-system), as NixOS's
 * system.autoUpgrade decides a reboot: symlinks compare by target, files by content. 0 when
 * they are the same, or nothing was booted from a system (no booted-system). */
int tend_nix_reboot_required(const struct tend_config *cfg);

/* This boot's id (/proc/sys/kernel/random/boot_id), "" when unreadable: tells a record made
 * before a reboot or power cut from one made during this boot. */
void tend_nix_boot_id(char *dst, size_t size);

/* A Nix tool ("nix-env", "nix-store") next to a configured nix binary, else from PATH. Caller
 * frees; NULL (error set) when out of memory. */
char *tend_nix_sibling(const struct tend_config *cfg, const char *tool);

/* The last non-empty line of a tool's output, for one-line error messages. */
const char *tend_nix_last_line(const tend_buf *b, char *dst, size_t size);

/* The store path the host runs now: readlink of system.current_system; when that is a
 * specialisation of the profile's system (<profile>/specialisation/<name>), the profile's
 * system, so a host on a specialisation is not "drifted" from the system it runs a variant
 * of. TEND_ENOTFOUND (error set) when the link does not exist. */
int tend_nix_current_system(char **out, const struct tend_config *cfg);

/* The name of the specialisation of the profile's system the host runs (caller frees), or
 * NULL when it runs a system itself. A switch to a new system takes the same specialisation
 * of it when it has one (reconcile/switch.c). */
int tend_nix_specialisation(char **out, const struct tend_config *cfg);

/* The profile's current generation number (readlink <profile> = <name>-<N>-link);
 * TEND_ENOTFOUND when the profile does not exist. */
int tend_nix_profile_generation(long *out, const char *profile);
/* The store path of generation N of the profile; TEND_ENOTFOUND if there is none. */
int tend_nix_generation_path(char **out, const char *profile, long generation);
/* The generation numbers of the profile, ascending (caller frees). */
int tend_nix_generations(long **out, size_t *n, const char *profile);

#endif
