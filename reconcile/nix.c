/* Building a host's system with `nix build --json` and activating it the way
 * NixOS does, with time limits and captured output. We never use
 * `nix-env --rollback`: going back means setting the profile to a recorded
 * store path, so the generation we return to is the one we know was healthy. */
#include "reconcile/nix.h"
#include "agent/config.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tend_nix_sibling(const tend_config *cfg, const char *tool)
{
	const char *slash = strrchr(cfg->nix.command, '/');
	char *cmd = NULL;

	if (!slash)
		cmd = strdup(tool);
	else if (asprintf(&cmd, "%.*s/%s", (int)(slash - cfg->nix.command), cfg->nix.command, tool) < 0)
		cmd = NULL;
	if (!cmd)
		tend_error_set("out of memory");
	return cmd;
}

const char *tend_nix_last_line(const tend_buf *b, char *dst, size_t size)
{
	size_t end, start;

	dst[0] = '\0';
	if (!b->ptr || !b->size)
		return dst;
	end = b->size;
	while (end > 0 && isspace((unsigned char)b->ptr[end - 1]))
		end--;
	start = end;
	while (start > 0 && b->ptr[start - 1] != '\n')
		start--;
	snprintf(dst, size, "%.*s", (int)(end - start), b->ptr + start);
	return dst;
}

/* The line of a failed nix build that says why: nix ends with its last
 * "error: ..." line and, for an evaluation error, a "(use '--show-trace' ...)"
 * hint after it, which says nothing. The last "error:" line, else the last line. */
static const char *build_error_line(const tend_buf *b, char *dst, size_t size)
{
	const char *p, *end, *found = NULL;
	size_t len = 0;

	for (p = b->ptr, end = b->ptr ? b->ptr + b->size : NULL; p && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;

		if ((size_t)(e - p) > 6 && !memcmp(p, "error:", 6)) {
			found = p;
			len = (size_t)(e - p);
		}
		p = nl ? nl + 1 : end;
	}
	if (!found)
		return tend_nix_last_line(b, dst, size);
	snprintf(dst, size, "%.*s", (int)len, found);
	return dst;
}

/* Characters that survive in a path: flake reference without quoting. */
static int flake_path_ok(const char *p)
{
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/._-+", *p))
			return 0;
	return 1;
}

int tend_nix_build_system(char **out, const tend_config *cfg, const char *flake_dir,
			  const char *attr, tend_buf *log)
{
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	json_error_t jerr;
	json_t *root = NULL, *path;
	char *ref = NULL, **argv = NULL, last[512];
	size_t argc = 0, i;
	int error = TEND_ERROR, ran = 0;

	*out = NULL;
	memset(&res, 0, sizeof(res));
	if (!flake_path_ok(flake_dir) || !flake_path_ok(attr) || flake_dir[0] != '/') {
		tend_error_set("cannot build '%s#%s': the flake directory must be an absolute path "
			       "and both may only hold letters, digits and / . _ - +", flake_dir, attr);
		return TEND_EINVALID;
	}
	if (asprintf(&ref, "path:%s#nixosConfigurations.%s.config.system.build.toplevel",
		     flake_dir, attr) < 0) {
		ref = NULL;
		goto oom;
	}
	/* 7 fixed arguments, the extra options, the reference and the NULL */
	if (!(argv = calloc(cfg->nix.n_extra_options + 9, sizeof(*argv))))
		goto oom;
	argv[argc++] = cfg->nix.command;
	argv[argc++] = "build";
	argv[argc++] = "--json";
	argv[argc++] = "--no-link";
	argv[argc++] = "--extra-experimental-features";
	argv[argc++] = "nix-command flakes";
	/* The inputs are the commit's flake.lock, never resolved here: without a
	 * lock (or with one that does not match flake.nix) each host would lock
	 * its own nixpkgs at its own build time. Not --no-write-lock-file: with
	 * it nix only warns "not writing modified lock file" and resolves anyway;
	 * without it nix refuses before it writes anything. */
	argv[argc++] = "--no-update-lock-file";
	for (i = 0; i < cfg->nix.n_extra_options; i++)
		argv[argc++] = cfg->nix.extra_options[i];
	argv[argc++] = ref;
	argv[argc] = NULL;
	opts.timeout_ms = cfg->nix.build_timeout_ms > INT_MAX ? INT_MAX : (int)cfg->nix.build_timeout_ms;
	opts.max_output = TEND_NIX_MAX_OUTPUT;
	opts.cwd = flake_dir;
	if (tend_proc_run(&res, argv, &opts) < 0) {
		tend_error_prefix("nix build %s: ", ref);
		goto out;
	}
	ran = 1;
	if (log)
		tend_buf_put(log, res.err.ptr, res.err.size);
	if (res.timed_out) {
		tend_error_set("nix build %s: no result after %llu ms (nix.build_timeout)", ref,
			       (unsigned long long)cfg->nix.build_timeout_ms);
		error = TEND_ETIMEOUT;
		goto out;
	}
	if (res.exit_code != 0) {
		build_error_line(&res.err, last, sizeof(last));
		if (strstr(last, "'--no-update-lock-file'"))
			tend_error_set("nix build %s failed: flake.lock is missing or does not match "
				       "flake.nix's inputs: run 'nix flake lock' and commit "
				       "flake.lock (tend builds with --no-update-lock-file, so every host "
				       "uses the same inputs): %s", ref, last);
		else
			tend_error_set("nix build %s failed (exit %d): %s", ref, res.exit_code, last);
		goto out;
	}
	/* [{"drvPath": "...", "outputs": {"out": "/nix/store/..."}}] */
	root = json_loadb(res.out.ptr, res.out.size, 0, &jerr);
	path = json_object_get(json_object_get(json_array_get(root, 0), "outputs"), "out");
	if (!json_is_string(path) || json_string_value(path)[0] != '/') {
		tend_error_set("nix build %s: unexpected output (no outputs.out): %.200s", ref,
			       res.out.ptr ? res.out.ptr : "");
		goto out;
	}
	if (!(*out = strdup(json_string_value(path))))
		goto oom;
	error = 0;
	goto out;
oom:
	tend_error_set("out of memory");
out:
	if (ran)
		tend_proc_result_dispose(&res);
	json_decref(root);
	free(argv);
	free(ref);
	return error;
}

static int read_link(char **out, const char *path)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	*out = NULL;
	if (n < 0) {
		int code = errno == ENOENT ? TEND_ENOTFOUND : TEND_ERROR;
		tend_error_set_errno("readlink %s", path);
		return code;
	}
	buf[n] = '\0';
	if (!(*out = strdup(buf))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	return 0;
}

/* The name of base's specialisation (<base>/specialisation/<name>, a link to a system) that
 * current is, or NULL. */
static char *specialisation_of(const char *base, const char *current)
{
	char *dir = tend_path_join(base, "specialisation"), *name = NULL, *path, *target;
	struct dirent *e;
	DIR *d;

	if (!dir || !(d = opendir(dir))) {
		free(dir);
		return NULL;
	}
	while (!name && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !(path = tend_path_join(dir, e->d_name)))
			continue;
		if ((target = realpath(path, NULL)) && !strcmp(target, current))
			name = strdup(e->d_name);
		free(target);
		free(path);
	}
	closedir(d);
	free(dir);
	return name;
}

/* The profile's system (the base) when the host runs one of its specialisations, else NULL. */
static char *running_specialisation(char **name, const tend_config *cfg, const char *current)
{
	char *base = realpath(cfg->system.profile, NULL);

	*name = NULL;
	if (!base || !strcmp(base, current) || !(*name = specialisation_of(base, current))) {
		free(base);
		return NULL;
	}
	return base;
}

int tend_nix_current_system(char **out, const tend_config *cfg)
{
	char *base, *name;
	int error;

	if ((error = read_link(out, cfg->system.current_system)) < 0)
		return error;
	/* A specialisation of the profile's system (nixos-rebuild switch --specialisation, or its
	 * own switch-to-configuration): the host runs that system, in one of its variants. */
	if ((base = running_specialisation(&name, cfg, *out))) {
		free(*out);
		*out = base;
		free(name);
	}
	return 0;
}

int tend_nix_specialisation(char **out, const tend_config *cfg)
{
	char *current = NULL, *base;
	int error;

	*out = NULL;
	if ((error = read_link(&current, cfg->system.current_system)) < 0) {
		if (error == TEND_ENOTFOUND) {
			tend_error_clear();
			error = 0;
		}
		return error;
	}
	base = running_specialisation(out, cfg, current);
	free(base);
	free(current);
	return 0;
}

/* "<name>-<N>-link" -> N, or 0 when name does not match. */
static long link_generation(const char *entry, const char *base)
{
	size_t bl = strlen(base);
	char *end;
	long n;

	if (strncmp(entry, base, bl) || entry[bl] != '-' || !isdigit((unsigned char)entry[bl + 1]))
		return 0;
	n = strtol(entry + bl + 1, &end, 10);
	if (strcmp(end, "-link") || n <= 0)
		return 0;
	return n;
}

int tend_nix_profile_generation(long *out, const char *profile)
{
	const char *base = strrchr(profile, '/');
	char *target = NULL;
	int error;

	*out = 0;
	if ((error = read_link(&target, profile)) < 0)
		return error;
	base = base ? base + 1 : profile;
	/* nix-env writes a relative link: "system-7-link". */
	*out = link_generation(strrchr(target, '/') ? strrchr(target, '/') + 1 : target, base);
	free(target);
	if (!*out) {
		tend_error_set("%s does not point to a generation link", profile);
		return TEND_EINVALID;
	}
	return 0;
}

int tend_nix_generation_path(char **out, const char *profile, long generation)
{
	char *link = NULL;
	int error;

	if (asprintf(&link, "%s-%ld-link", profile, generation) < 0) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	error = read_link(out, link);
	if (error == TEND_ENOTFOUND)
		tend_error_set("%s has no generation %ld", profile, generation);
	free(link);
	return error;
}

static int long_cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

int tend_nix_generations(long **out, size_t *n, const char *profile)
{
	char *dir = strdup(profile), *slash;
	const char *base;
	struct dirent *de;
	long *list = NULL, *grown;
	size_t count = 0;
	DIR *d = NULL;
	int error = TEND_ERROR;

	*out = NULL;
	*n = 0;
	if (!dir)
		goto out;
	slash = strrchr(dir, '/');
	if (!slash) {
		tend_error_set("the profile %s is not an absolute path", profile);
		goto out;
	}
	*slash = '\0';
	base = slash + 1;
	if (!(d = opendir(*dir ? dir : "/"))) {
		error = errno == ENOENT ? 0 : TEND_ERROR;
		if (error)
			tend_error_set_errno("opendir %s", dir);
		goto out;
	}
	while ((de = readdir(d))) {
		long g = link_generation(de->d_name, base);
		if (!g)
			continue;
		if (!(grown = realloc(list, (count + 1) * sizeof(*list)))) {
			tend_error_set("out of memory");
			goto out;
		}
		list = grown;
		list[count++] = g;
	}
	if (count > 1)
		qsort(list, count, sizeof(*list), long_cmp);
	*out = list;
	*n = count;
	list = NULL;
	error = 0;
out:
	if (d)
		closedir(d);
	free(list);
	free(dir);
	return error;
}

/* The same boot file in both systems: two links to one target, or two files of one content
 * (the host lab's stand-in systems carry their "kernel" as a file), or absent from both. */
static int boot_file_same(const char *booted, const char *current, const char *name)
{
	char *a = tend_path_join(booted, name), *b = tend_path_join(current, name);
	char la[PATH_MAX], lb[PATH_MAX];
	ssize_t na, nb;
	tend_buf ca = TEND_BUF_INIT, cb = TEND_BUF_INIT;
	int same = 0;

	if (!a || !b)
		goto out;
	na = readlink(a, la, sizeof(la) - 1);
	nb = readlink(b, lb, sizeof(lb) - 1);
	if (na >= 0 || nb >= 0) {
		same = na >= 0 && nb >= 0 && na == nb && !memcmp(la, lb, (size_t)na);
		goto out;
	}
	if (!tend_path_exists(a) && !tend_path_exists(b)) {
		same = 1;
		goto out;
	}
	same = tend_file_read(&ca, a, 1u << 20) == 0 && tend_file_read(&cb, b, 1u << 20) == 0 &&
	       ca.size == cb.size && (!ca.size || !memcmp(ca.ptr, cb.ptr, ca.size));
out:
	tend_error_clear();
	tend_buf_dispose(&ca);
	tend_buf_dispose(&cb);
	free(a);
	free(b);
	return same;
}

int tend_nix_reboot_required(const tend_config *cfg)
{
	static const char *const names[] = { "kernel", "initrd", "kernel-modules" };
	const char *cs = cfg->system.current_system, *slash = strrchr(cs, '/');
	char *booted = NULL, *b = NULL, *c = NULL;
	size_t i;
	int required = 0;

	if (asprintf(&booted, "%.*s/booted-system", slash ? (int)(slash - cs) : 0, cs) < 0)
		return 0;
	/* both resolved: each system's own files, not the links' */
	if ((b = realpath(booted, NULL)) && (c = realpath(cs, NULL)) && strcmp(b, c))
		for (i = 0; i < sizeof(names) / sizeof(names[0]) && !required; i++)
			required = !boot_file_same(b, c, names[i]);
	free(booted);
	free(b);
	free(c);
	return required;
}
