/* Activating a system as nixos-rebuild switch does: switch-to-configuration's lock tried first, the
 * profile set, then switch-to-configuration switch, in a transient systemd unit on a host whose
 * systemd runs the real system, so that nothing that happens to tend.service (stop, crash,
 * watchdog, a switch that restarts it) kills a switch half-way. The unit records its result in
 * <state_dir>/switch/, so a restarted tend knows how an interrupted switch ended. */
#include "reconcile/nix.h"
#include "agent/config.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* The transient unit's name (one switch at a time on a host, as nixos-rebuild's). */
#define SWITCH_UNIT "tend-switch-to-configuration"

void tend_switch_result_dispose(tend_switch_result *res)
{
	if (res)
		tend_buf_dispose(&res->output);
}

/* As nixos-rebuild decides: systemd runs this host and the system switched is the host's own.
 * A system under another path (the tests' stand-ins) is switched as tend's child. */
static int in_unit(const tend_config *cfg)
{
	return access("/run/systemd/system", F_OK) == 0 &&
	       !strcmp(cfg->system.current_system, "/run/current-system");
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int run_into(tend_switch_result *out, char *const argv[], int timeout_ms, const char *what,
		    volatile sig_atomic_t *abort)
{
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	char last[512];
	int error;

	opts.timeout_ms = timeout_ms;
	opts.abort = abort;
	opts.merge_stderr = 1;
	opts.max_output = TEND_NIX_MAX_OUTPUT;
	if ((error = tend_proc_run(&res, argv, &opts)) < 0) {
		tend_error_prefix("%s: ", what);
		return error;
	}
	tend_buf_put(&out->output, res.out.ptr, res.out.size);
	out->exit_code = res.exit_code;
	out->timed_out = res.timed_out;
	error = 0;
	if (res.aborted) {
		tend_error_set("%s: stopped waiting (tend is stopping)", what);
		out->interrupted = 1;
		error = TEND_ERROR;
	} else if (res.timed_out) {
		tend_error_set("%s: killed after %d ms (time limit)", what, timeout_ms);
		error = TEND_ETIMEOUT;
	} else if (res.exit_code != 0) {
		tend_error_set("%s failed (exit %d): %s", what, res.exit_code,
			       tend_nix_last_line(&res.out, last, sizeof(last)));
		error = TEND_ERROR;
	}
	tend_proc_result_dispose(&res);
	return error;
}

/* ---- switch-to-configuration's lock ---------------------------------------- */

/* <dir of current_system>/nixos/switch-to-configuration.lock: /run/nixos/... on NixOS. */
static char *lock_path(const tend_config *cfg)
{
	const char *cs = cfg->system.current_system, *slash = strrchr(cs, '/');
	char *path = NULL;

	if (asprintf(&path, "%.*s/nixos/switch-to-configuration.lock",
		     slash ? (int)(slash - cs) : 0, cs) < 0)
		return NULL;
	return path;
}

/* Opens and try-locks the lock file: *out is the descriptor holding it, or -1 when another
 * process holds it (TEND_ELOCKED). switch-to-configuration takes it with LOCK_EX|LOCK_NB. */
static int lock_try(int *out, const tend_config *cfg)
{
	char *path = lock_path(cfg), *dir = NULL, *slash;
	int fd = -1, error = TEND_ERROR;

	*out = -1;
	if (!path || !(dir = strdup(path))) {
		tend_error_set("out of memory");
		goto out;
	}
	if ((slash = strrchr(dir, '/')))
		*slash = '\0';
	if (tend_dir_create_all(dir, 0755) < 0)
		goto out;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0) {
		tend_error_set_errno("open %s", path);
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			tend_error_set("another switch holds %s (an operator's nixos-rebuild?): "
				       "waiting for it", path);
			error = TEND_ELOCKED;
		} else {
			tend_error_set_errno("flock %s", path);
		}
		close(fd);
		fd = -1;
		goto out;
	}
	*out = fd;
	fd = -1;
	error = 0;
out:
	free(path);
	free(dir);
	return error;
}

int tend_nix_switch_busy(const tend_config *cfg)
{
	int fd, error = lock_try(&fd, cfg);

	if (fd >= 0)
		close(fd);
	if (error != TEND_ELOCKED)
		tend_error_clear();
	return error == TEND_ELOCKED;
}

/* ---- the transient unit ---------------------------------------------------- */

/* <state_dir>/switch/<name>: where the unit leaves its output and result. */
static char *switch_file(const tend_config *cfg, const char *name)
{
	char *path = NULL;

	if (asprintf(&path, "%s/switch/%s", cfg->state_dir, name) < 0)
		return NULL;
	return path;
}

/* "active", "activating", "inactive", ... of the switch unit ("" when systemctl says nothing). */
static void unit_state(char *dst, size_t size)
{
	char *argv[] = { "systemctl", "is-active", SWITCH_UNIT ".service", NULL };
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	size_t n;

	dst[0] = '\0';
	opts.timeout_ms = 30000;
	if (tend_proc_run(&res, argv, &opts) < 0)
		return;
	n = res.out.size < size - 1 ? res.out.size : size - 1;
	memcpy(dst, res.out.ptr, n);
	dst[n] = '\0';
	dst[strcspn(dst, "\n")] = '\0';
	tend_proc_result_dispose(&res);
}

/* A switch unit started by an earlier tend may still run: it is waited for, never stopped.
 * abort (may be NULL) ends the wait: TEND_ERROR, the unit still running. */
static int unit_wait_inactive(const char *store_path, volatile sig_atomic_t *abort)
{
	char state[64];

	for (;;) {
		unit_state(state, sizeof(state));
		if (strcmp(state, "active") && strcmp(state, "activating") &&
		    strcmp(state, "deactivating") && strcmp(state, "reloading"))
			return 0;
		if (abort && *abort) {
			tend_error_set("stopping while %s (a switch to %s) still runs; the next start "
				       "waits for it again", SWITCH_UNIT, store_path);
			return TEND_ERROR;
		}
		sleep_ms(500);
	}
}

void tend_nix_boot_id(char *dst, size_t size)
{
	static char id[64];   /* a process lives in one boot: read once */
	tend_buf b = TEND_BUF_INIT;

	if (!id[0] && tend_file_read(&b, "/proc/sys/kernel/random/boot_id", 64) == 0 && b.ptr)
		snprintf(id, sizeof(id), "%.*s", (int)strcspn(b.ptr, "\n"), b.ptr);
	tend_error_clear();
	tend_buf_dispose(&b);
	snprintf(dst, size, "%s", id);
}

static void started_remove(const tend_config *cfg)
{
	char *path = switch_file(cfg, "started");

	if (path)
		unlink(path);
	free(path);
}

/* <state_dir>/switch/started, written just before the unit starts: what the supervisor reads
 * to tell a switch running past system.switch_timeout (tend_nix_switch_running). */
static int started_write(const tend_config *cfg, const char *store_path)
{
	char *path = switch_file(cfg, "started"), *text = NULL, id[64];
	int error = TEND_ERROR;

	tend_nix_boot_id(id, sizeof(id));
	if (!path || asprintf(&text, "TEND_SWITCH_TARGET=%s\nBOOT_ID=%s\nSTARTED=%lld\n", store_path,
			      id, (long long)time(NULL)) < 0) {
		tend_error_set("out of memory");
		goto out;
	}
	error = tend_file_write_atomic(path, text, strlen(text), 0600, (uid_t)-1, (gid_t)-1);
out:
	free(path);
	free(text);
	return error;
}

/* NAME's value in the environment the unit's ExecStopPost wrote (NAME=value lines), or "". */
static void env_get(char *dst, size_t size, const tend_buf *env, const char *name)
{
	size_t nl = strlen(name);
	const char *p = env->ptr, *end = env->ptr + env->size;

	dst[0] = '\0';
	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (len > nl && !memcmp(p, name, nl) && p[nl] == '=') {
			snprintf(dst, size, "%.*s", (int)(len - nl - 1), p + nl + 1);
			return;
		}
		p = eol ? eol + 1 : NULL;
	}
}

/* The result the unit's ExecStopPost left: its environment, with systemd's SERVICE_RESULT,
 * EXIT_CODE and EXIT_STATUS and the TEND_SWITCH_TARGET the unit was started with. */
static int result_read(int *known, tend_switch_result *out, const tend_config *cfg,
		       const char *store_path)
{
	char *rpath = switch_file(cfg, "result"), *opath = switch_file(cfg, "output");
	char path[PATH_MAX], result[64], code[32], status[32];
	tend_buf b = TEND_BUF_INIT;
	int error = TEND_ERROR;

	*known = 0;
	if (!rpath || !opath) {
		tend_error_set("out of memory");
		goto out;
	}
	if (tend_file_read(&b, rpath, 256 * 1024) < 0 || !b.ptr) {
		tend_error_clear();
		error = 0;
		goto out;
	}
	env_get(path, sizeof(path), &b, "TEND_SWITCH_TARGET");
	env_get(result, sizeof(result), &b, "SERVICE_RESULT");
	env_get(code, sizeof(code), &b, "EXIT_CODE");
	env_get(status, sizeof(status), &b, "EXIT_STATUS");
	if (strcmp(path, store_path) || !result[0] || !code[0]) {
		error = 0;
		goto out;
	}
	tend_buf_dispose(&b);
	if (tend_file_read(&b, opath, TEND_NIX_MAX_OUTPUT) == 0)
		tend_buf_put(&out->output, b.ptr, b.size);
	tend_error_clear();
	*known = 1;
	if (!strcmp(code, "exited"))
		out->exit_code = atoi(status);
	else
		out->exit_code = 128 + 9; /* killed or dumped: its signal is named in the message */
	if (out->exit_code == 0 && strcmp(result, "success"))
		out->exit_code = 1;
	error = 0;
	if (out->exit_code != 0) {
		char last[512];

		tend_error_set("%s/bin/switch-to-configuration failed (%s %s, unit %s): %s", store_path,
			       code, status, SWITCH_UNIT, tend_nix_last_line(&out->output, last, sizeof(last)));
		error = TEND_ERROR;
	}
out:
	tend_buf_dispose(&b);
	free(rpath);
	free(opath);
	return error;
}

/* systemd-run as nixos-rebuild runs it, with the output in a file and the result recorded by
 * ExecStopPost (also when switch-to-configuration is killed), instead of --pipe: a pipe to
 * tend would break when tend stops, and the switch would die of it. */
static int unit_run(tend_switch_result *out, const tend_config *cfg, const char *stc,
		    const char *store_path, volatile sig_atomic_t *abort)
{
	char *dir = switch_file(cfg, ""), *rpath = switch_file(cfg, "result"),
	     *opath = switch_file(cfg, "output"), *p_out = NULL, *p_post = NULL, *desc = NULL,
	     *target = NULL;
	int error = TEND_ERROR, known = 0;

	if (!dir || !rpath || !opath) {
		tend_error_set("out of memory");
		goto out;
	}
	if (tend_dir_create_all(dir, 0700) < 0)
		goto out;
	if (unit_wait_inactive(store_path, abort) < 0) {
		out->interrupted = 1;
		goto out;
	}
	/* the marker first: with the old result gone and no new marker, an old marker would
	 * read as a switch running since long ago */
	if (started_write(cfg, store_path) < 0)
		goto out;
	/* append, not truncate: ExecStopPost opens the output again and would empty it */
	if ((unlink(rpath) < 0 && errno != ENOENT) || (unlink(opath) < 0 && errno != ENOENT)) {
		tend_error_set_errno("clearing %s", dir);
		goto out;
	}
	/* ExecStopPost keeps its whole environment, which holds systemd's SERVICE_RESULT,
	 * EXIT_CODE and EXIT_STATUS: no $ in the command, since systemd 252 mangles "$$" when
	 * switch-to-configuration's daemon-reload re-reads the transient unit. */
	if (asprintf(&p_out, "StandardOutput=append:%s", opath) < 0 ||
	    asprintf(&p_post, "ExecStopPost=/bin/sh -c 'env > %s.tmp && mv -f %s.tmp %s'",
		     rpath, rpath, rpath) < 0 ||
	    asprintf(&target, "TEND_SWITCH_TARGET=%s", store_path) < 0 ||
	    asprintf(&desc, "--description=tend: switch to %s", store_path) < 0) {
		tend_error_set("out of memory");
		goto out;
	}
	{
		char *argv[] = { "systemd-run", "-E", "LOCALE_ARCHIVE", "-E", "NIXOS_INSTALL_BOOTLOADER",
				 "-E", target,
				 "--collect", "--no-ask-password", "--quiet", "--wait",
				 "--service-type=exec", "--unit=" SWITCH_UNIT, desc,
				 "-p", p_out, "-p", "StandardError=inherit", "-p", p_post,
				 (char *)stc, "switch", NULL };
		tend_switch_result run;

		memset(&run, 0, sizeof(run));
		run.output.max = TEND_NIX_MAX_OUTPUT;
		/* No time limit: past system.switch_timeout the switch goes on (killing it half-way
		 * is worse than waiting); systemd-run only waits for the unit. */
		error = run_into(&run, argv, 0, "systemd-run " SWITCH_UNIT, abort);
		if (run.interrupted) {
			/* the unit goes on; the next start waits for it and reads its result */
			out->interrupted = 1;
			tend_error_set("stopping while the switch to %s runs in %s; the next start "
				       "learns how it ended", store_path, SWITCH_UNIT);
			tend_switch_result_dispose(&run);
			error = TEND_ERROR;
			goto out;
		}
		if (error < 0 && !tend_path_exists(rpath)) {
			/* the unit never ran: systemd-run's own words say why; no switch runs */
			started_remove(cfg);
			tend_buf_put(&out->output, run.output.ptr, run.output.size);
			out->exit_code = run.exit_code;
			tend_switch_result_dispose(&run);
			goto out;
		}
		tend_switch_result_dispose(&run);
	}
	if ((error = result_read(&known, out, cfg, store_path)) < 0)
		goto out;
	if (!known) {
		tend_error_set("systemd-run " SWITCH_UNIT ": the switch to %s left no result", store_path);
		error = TEND_ERROR;
	}
out:
	free(dir);
	free(rpath);
	free(opath);
	free(p_out);
	free(p_post);
	free(desc);
	free(target);
	return error;
}

/* ---- the switch ------------------------------------------------------------ */

/* <store_path>/bin/switch-to-configuration ACTION: a switch in its transient unit on a real
 * host (unit_run), anything else (boot; a switch of a stand-in system) as tend's child, limited
 * by system.switch_timeout (a stop of tend ends a child anyway: not abandoned on abort). */
static int stc_run(tend_switch_result *out, const tend_config *cfg, const char *store_path,
		   const char *spec, const char *action, volatile sig_atomic_t *abort)
{
	char *stc = tend_path_join(store_path, "bin/switch-to-configuration"), *argv[3];
	int error = TEND_ERROR, timeout;

	if (!stc) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	/* a host on a specialisation stays on the same specialisation of the new system (the
	 * profile names the new system itself, as nixos-rebuild switch --specialisation does) */
	if (spec) {
		char *alt = NULL;

		if (asprintf(&alt, "%s/specialisation/%s/bin/switch-to-configuration", store_path,
			     spec) < 0)
			alt = NULL;
		if (alt && access(alt, X_OK) == 0) {
			tend_buf_printf(&out->output, "tend: the host runs specialisation '%s': "
					"switching to the new system's\n", spec);
			free(stc);
			stc = alt;
		} else {
			tend_buf_printf(&out->output, "tend: the host runs specialisation '%s', which "
					"the new system does not have: switching to the system itself\n",
					spec);
			free(alt);
		}
	}
	if (access(stc, X_OK) < 0) {
		tend_error_set_errno("%s is not a NixOS system: %s", store_path, stc);
		goto out;
	}
	if (!strcmp(action, "switch") && in_unit(cfg)) {
		error = unit_run(out, cfg, stc, store_path, abort);
		goto out;
	}
	argv[0] = stc;
	argv[1] = (char *)action;
	argv[2] = NULL;
	timeout = cfg->system.switch_timeout_ms > INT_MAX ? INT_MAX : (int)cfg->system.switch_timeout_ms;
	error = run_into(out, argv, timeout, stc, NULL);
out:
	free(stc);
	return error;
}

/* nix does not fsync what it builds: before the profile (the boot default) names a system, its
 * files go to disk, or a power cut soon after boots a generation of empty files (seen in the
 * lab: tend.service empty, so masked). NixOS's switch-to-configuration-ng syncs the store too,
 * but older ones do not, and the profile is set before it runs. */
static void store_sync(const char *store_path)
{
	int fd = open(store_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
}

/* What switch and boot share: switch-to-configuration's lock tried (an operator's switch in
 * progress leaves the profile alone; switch-to-configuration takes this lock itself, so it is
 * released before it runs), the store path synced, the profile set to it. */
static int profile_set(tend_switch_result *out, const tend_config *cfg, const char *store_path)
{
	char *nix_env = NULL, *profile_dir = NULL, *slash;
	char *argv[6];
	int error = TEND_ERROR, lock = -1;
	long gen;

	memset(out, 0, sizeof(*out));
	out->output.max = TEND_NIX_MAX_OUTPUT;
	if (!(nix_env = tend_nix_sibling(cfg, "nix-env")) || !(profile_dir = strdup(cfg->system.profile))) {
		tend_error_set("out of memory");
		goto out;
	}
	if ((slash = strrchr(profile_dir, '/')) && slash != profile_dir) {
		*slash = '\0';
		if (tend_dir_create_all(profile_dir, 0755) < 0)
			goto out;
	}
	if ((error = lock_try(&lock, cfg)) < 0)
		goto out;
	store_sync(store_path);
	argv[0] = nix_env;
	argv[1] = "-p";
	argv[2] = cfg->system.profile;
	argv[3] = "--set";
	argv[4] = (char *)store_path;
	argv[5] = NULL;
	error = run_into(out, argv, 120000, "nix-env --set", NULL);
	close(lock);
	if (error < 0)
		goto out;
	if (tend_nix_profile_generation(&gen, cfg->system.profile) == 0)
		out->generation = gen;
	tend_error_clear();
out:
	free(nix_env);
	free(profile_dir);
	return error;
}

int tend_nix_switch(tend_switch_result *out, const tend_config *cfg, const char *store_path,
		    volatile sig_atomic_t *abort)
{
	char *spec = NULL;
	int error;

	/* asked before the profile changes: a specialisation of the system it names now */
	tend_nix_specialisation(&spec, cfg);
	tend_error_clear();
	if ((error = profile_set(out, cfg, store_path)) == 0)
		error = stc_run(out, cfg, store_path, spec, "switch", abort);
	free(spec);
	return error;
}

int tend_nix_boot(tend_switch_result *out, const tend_config *cfg, const char *store_path)
{
	int error;

	if ((error = profile_set(out, cfg, store_path)) < 0)
		return error;
	return stc_run(out, cfg, store_path, NULL, "boot", NULL);
}

int tend_nix_reboot(const tend_config *cfg, tend_buf *log)
{
	static char *const fallback[] = { "systemctl", "reboot", NULL };
	char **argv = cfg->system.reboot_command;
	tend_switch_result run;
	int error;

	if (!argv || !cfg->system.n_reboot_command) {
		/* never the machine running a test's stand-in systems */
		if (strcmp(cfg->system.current_system, "/run/current-system")) {
			tend_error_set("no system.reboot_command, and system.current_system is %s, not "
				       "/run/current-system: not rebooting this machine",
				       cfg->system.current_system);
			return TEND_EINVALID;
		}
		argv = (char **)fallback;
	}
	memset(&run, 0, sizeof(run));
	run.output.max = 4096;
	error = run_into(&run, argv, 60000, argv[0], NULL);
	if (log)
		tend_buf_put(log, run.output.ptr, run.output.size);
	tend_switch_result_dispose(&run);
	return error;
}

int tend_nix_switch_again(tend_switch_result *out, const tend_config *cfg, const char *store_path,
			  volatile sig_atomic_t *abort)
{
	long gen;

	memset(out, 0, sizeof(*out));
	out->output.max = TEND_NIX_MAX_OUTPUT;
	if (tend_nix_profile_generation(&gen, cfg->system.profile) == 0)
		out->generation = gen;
	tend_error_clear();
	return stc_run(out, cfg, store_path, NULL, "switch", abort);
}

int tend_nix_switch_outcome(int *known, tend_switch_result *out, const tend_config *cfg,
			    const char *store_path, volatile sig_atomic_t *abort)
{
	memset(out, 0, sizeof(*out));
	out->output.max = TEND_NIX_MAX_OUTPUT;
	*known = 0;
	if (in_unit(cfg) && unit_wait_inactive(store_path, abort) < 0) {
		out->interrupted = 1;
		return TEND_ERROR;
	}
	return result_read(known, out, cfg, store_path);
}

int tend_nix_switch_running(char **target, time_t *since, const tend_config *cfg)
{
	char *spath = switch_file(cfg, "started"), *rpath = switch_file(cfg, "result");
	char path[PATH_MAX], id[64], now_id[64], when[32];
	tend_buf b = TEND_BUF_INIT;
	int running = 0;

	*target = NULL;
	*since = 0;
	if (!spath || !rpath || tend_path_exists(rpath) ||
	    tend_file_read(&b, spath, 16 * 1024) < 0 || !b.ptr)
		goto out;
	env_get(path, sizeof(path), &b, "TEND_SWITCH_TARGET");
	env_get(id, sizeof(id), &b, "BOOT_ID");
	env_get(when, sizeof(when), &b, "STARTED");
	tend_nix_boot_id(now_id, sizeof(now_id));
	if (!path[0] || !when[0] || strcmp(id, now_id) || !(*target = strdup(path)))
		goto out;
	*since = (time_t)strtoll(when, NULL, 10);
	running = 1;
out:
	tend_error_clear();
	tend_buf_dispose(&b);
	free(spath);
	free(rpath);
	return running;
}
