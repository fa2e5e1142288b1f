/* The closure diff of a system switch (reconcile/closure.h): packages by name and version
 * from the store paths of both closures, units by the content of both systems' unit files.
 * Store paths come from nix-store, never from repository content. */
#include "reconcile/closure.h"
#include "reconcile/internal.h"
#include "reconcile/nix.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_PREFIX "/nix/store/"
#define HASH_LEN 32
/* nix-store's answer for a closure: a real NixOS system has a few thousand paths. */
#define CLOSURE_OUTPUT_MAX (16u << 20)
#define CLOSURE_TIMEOUT_MS 60000
/* One unit file or drop-in read for the comparison. */
#define UNIT_FILE_MAX (1u << 20)
#define UNITS_MAX 20000

static const char *const unit_action_names[] = { "", "start", "stop", "restart", "reload" };

const char *tend_unit_action_name(tend_unit_action a)
{
	return (unsigned)a < sizeof(unit_action_names) / sizeof(unit_action_names[0])
		? unit_action_names[a] : "";
}

void tend_closure_diff_free(tend_closure_diff *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n_packages; i++) {
		free(d->packages[i].name);
		free(d->packages[i].from);
		free(d->packages[i].to);
	}
	for (i = 0; i < d->n_units; i++)
		free(d->units[i].unit);
	free(d->packages);
	free(d->units);
	free(d->error);
	free(d);
}

/* ---- packages ------------------------------------------------------------ */

typedef struct {
	const char *name;          /* into the path; not terminated: name_len */
	size_t name_len;
	const char *version;       /* terminated (end of the path) */
} pkg;

/* /nix/store/<hash>-<name>-<version>: the name ends at the first '-' not followed by a
 * letter (builtins.parseDrvName). 0 when the path is not a store path worth listing. */
static int pkg_parse(pkg *out, const char *path)
{
	const char *base, *p;
	size_t len;

	if (strncmp(path, STORE_PREFIX, sizeof(STORE_PREFIX) - 1))
		return 0;
	base = path + sizeof(STORE_PREFIX) - 1;
	len = strlen(base);
	if (len <= HASH_LEN + 1 || base[HASH_LEN] != '-' || strchr(base, '/') ||
	    (len > 4 && !strcmp(base + len - 4, ".drv")))
		return 0;
	base += HASH_LEN + 1;
	for (p = base; *p; p++)
		if (*p == '-' && p[1] && !isalpha((unsigned char)p[1]))
			break;
	out->name = base;
	out->name_len = (size_t)(p - base);
	out->version = *p ? p + 1 : p;
	return 1;
}

static int pkg_cmp(const void *a, const void *b)
{
	const pkg *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);

	if (c)
		return c;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return strcmp(x->version, y->version);
}

static pkg *pkgs_collect(size_t *n_out, char *const *paths, size_t n)
{
	pkg *v = calloc(n ? n : 1, sizeof(*v));
	size_t i, k = 0;

	if (!v)
		return NULL;
	for (i = 0; i < n; i++)
		if (paths[i] && pkg_parse(&v[k], paths[i]))
			k++;
	qsort(v, k, sizeof(*v), pkg_cmp);
	*n_out = k;
	return v;
}

static int same_name(const pkg *a, const pkg *b)
{
	return a->name_len == b->name_len && !memcmp(a->name, b->name, a->name_len);
}

/* The distinct versions of the run v[i..j) of one name, ", "-joined; NULL when all are "". */
static char *versions_join(const pkg *v, size_t i, size_t j, int *oom)
{
	tend_buf b = TEND_BUF_INIT;
	size_t k;

	for (k = i; k < j; k++) {
		if (!*v[k].version || (k > i && !strcmp(v[k].version, v[k - 1].version)))
			continue;
		if ((b.size && tend_buf_puts(&b, ", ") < 0) || tend_buf_puts(&b, v[k].version) < 0) {
			*oom = 1;
			break;
		}
	}
	if (!b.size) {
		tend_buf_dispose(&b);
		return NULL;
	}
	return tend_buf_detach(&b);
}

static int package_add(tend_closure_diff *d, size_t *cap, const pkg *p, char *from, char *to)
{
	tend_package_change *c;

	if (d->n_packages == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		tend_package_change *n = realloc(d->packages, ncap * sizeof(*n));

		if (!n)
			goto oom;
		d->packages = n;
		*cap = ncap;
	}
	c = &d->packages[d->n_packages];
	if (!(c->name = strndup(p->name, p->name_len)))
		goto oom;
	c->from = from;
	c->to = to;
	d->n_packages++;
	return 0;
oom:
	free(from);
	free(to);
	tend_error_set("closure diff: out of memory");
	return TEND_ERROR;
}

int tend_closure_diff_packages(tend_closure_diff *out, char *const *before, size_t n_before,
			       char *const *after, size_t n_after)
{
	size_t na = 0, nb = 0, i = 0, j = 0, cap = out->n_packages;
	pkg *a = pkgs_collect(&na, before, n_before), *b = pkgs_collect(&nb, after, n_after);
	int error = TEND_ERROR, oom = 0;

	out->paths_before = n_before;
	out->paths_after = n_after;
	if (!a || !b) {
		tend_error_set("closure diff: out of memory");
		goto out;
	}
	/* Walk both sorted lists a name at a time. */
	while (i < na || j < nb) {
		size_t i2 = i, j2 = j;
		const pkg *key;
		char *from = NULL, *to = NULL;
		int c;

		c = i >= na ? 1 : j >= nb ? -1 : pkg_cmp(&(pkg){ a[i].name, a[i].name_len, "" },
							 &(pkg){ b[j].name, b[j].name_len, "" });
		key = c <= 0 ? &a[i] : &b[j];
		if (c <= 0)
			while (i2 < na && same_name(&a[i2], key))
				i2++;
		if (c >= 0)
			while (j2 < nb && same_name(&b[j2], key))
				j2++;
		from = c <= 0 ? versions_join(a, i, i2, &oom) : NULL;
		to = c >= 0 ? versions_join(b, j, j2, &oom) : NULL;
		i = i2;
		j = j2;
		if (oom) {
			free(from);
			free(to);
			tend_error_set("closure diff: out of memory");
			goto out;
		}
		/* Unversioned names (etc, system-path) change with every build: not packages. A
		 * name on both sides is a change when its versions differ (one may have none). */
		if ((!from && !to) || (c == 0 && from && to && !strcmp(from, to))) {
			free(from);
			free(to);
			continue;
		}
		if (c == 0 && ((!from && !(from = strdup(""))) || (!to && !(to = strdup("")))))
			oom = 1;
		if (oom || package_add(out, &cap, key, from, to) < 0) {
			if (oom) {
				free(from);
				free(to);
				tend_error_set("closure diff: out of memory");
			}
			goto out;
		}
	}
	error = 0;
out:
	free(a);
	free(b);
	return error;
}

/* ---- units --------------------------------------------------------------- */

typedef struct {
	char *name;
	int side;                  /* bit 0: before, bit 1: after */
	char hash[2][65];          /* unit file + drop-ins, each side */
	int reload;                /* after: X-ReloadIfChanged=true */
	int no_restart;            /* after: X-RestartIfChanged=false */
} unit_entry;

static int is_unit_name(const char *n)
{
	static const char *const types[] = { ".service", ".socket", ".timer", ".path", ".mount",
		".automount", ".swap", ".target", ".slice", NULL };
	size_t len = strlen(n), i;

	for (i = 0; types[i]; i++) {
		size_t t = strlen(types[i]);

		if (len > t && !strcmp(n + len - t, types[i]))
			return 1;
	}
	return 0;
}

static const char *unit_type(const char *n)
{
	const char *dot = strrchr(n, '.');

	return dot ? dot + 1 : "";
}

/* The unit file and its drop-ins (<name>.d/ *.conf, in name order) as one hash. */
static int unit_hash(char out[65], int *reload, int *no_restart, const char *dir, const char *name)
{
	tend_buf all = TEND_BUF_INIT, f = TEND_BUF_INIT;
	struct dirent **ents = NULL;
	char *path = NULL, *dropdir = NULL;
	int n = -1, i, error = TEND_ERROR;

	all.max = 16 * UNIT_FILE_MAX;
	if (!(path = tend_path_join(dir, name)) || asprintf(&dropdir, "%s.d", path) < 0) {
		dropdir = NULL;
		goto out;
	}
	if (tend_file_read(&f, path, UNIT_FILE_MAX) == 0 && tend_buf_put(&all, f.ptr, f.size) < 0)
		goto out;
	if (f.ptr) {
		*reload = strstr(f.ptr, "\nX-ReloadIfChanged=true") != NULL;
		*no_restart = strstr(f.ptr, "\nX-RestartIfChanged=false") != NULL;
	}
	n = scandir(dropdir, &ents, NULL, alphasort);
	for (i = 0; i < n; i++) {
		char *p;

		if (ents[i]->d_name[0] == '.' || !strstr(ents[i]->d_name, ".conf"))
			continue;
		tend_buf_clear(&f);
		if (!(p = tend_path_join(dropdir, ents[i]->d_name)))
			goto out;
		if (tend_file_read(&f, p, UNIT_FILE_MAX) == 0 &&
		    (tend_buf_printf(&all, "\n--%s\n", ents[i]->d_name) < 0 ||
		     tend_buf_put(&all, f.ptr, f.size) < 0)) {
			free(p);
			goto out;
		}
		free(p);
	}
	tend_sha256_hex(out, all.ptr ? all.ptr : "", all.size);
	error = 0;
out:
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	free(path);
	free(dropdir);
	tend_buf_dispose(&f);
	tend_buf_dispose(&all);
	return error;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const unit_entry *)a)->name, ((const unit_entry *)b)->name);
}

/* Add system/etc/systemd/system's units to v as side s (0 or 1). */
static int units_read(unit_entry **v, size_t *n, size_t *cap, const char *system, int s)
{
	char *dir = system ? tend_path_join(system, "etc/systemd/system") : NULL;
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	size_t before = *n;
	int error = 0;

	if (system && !dir) {
		tend_error_set("closure diff: out of memory");
		return TEND_ERROR;
	}

	while (d && (e = readdir(d))) {
		unit_entry key, *hit = NULL;

		if (e->d_name[0] == '.' || !is_unit_name(e->d_name))
			continue;
		key.name = e->d_name;
		/* The before side is sorted by the time the after side is read. */
		if (s == 1 && before)
			hit = bsearch(&key, *v, before, sizeof(**v), entry_cmp);
		if (!hit) {
			if (*n == *cap) {
				size_t ncap = *cap ? *cap * 2 : 64;
				unit_entry *nv;

				if (ncap > UNITS_MAX) {
					error = TEND_ELIMIT;
					break;
				}
				if (!(nv = realloc(*v, ncap * sizeof(*nv)))) {
					error = TEND_ERROR;
					break;
				}
				*v = nv;
				*cap = ncap;
			}
			hit = &(*v)[(*n)++];
			memset(hit, 0, sizeof(*hit));
			if (!(hit->name = strdup(e->d_name))) {
				(*n)--;
				error = TEND_ERROR;
				break;
			}
		}
		hit->side |= 1 << s;
		if (unit_hash(hit->hash[s], s ? &hit->reload : &(int){ 0 },
			      s ? &hit->no_restart : &(int){ 0 }, dir, e->d_name) < 0) {
			error = TEND_ERROR;
			break;
		}
	}
	if (d)
		closedir(d);
	if (s == 0 && *n)
		qsort(*v, *n, sizeof(**v), entry_cmp);
	if (error == TEND_ELIMIT)
		tend_error_set("closure diff: %s and the system before have more than %zu units", dir, *n);
	else if (error)
		tend_error_set("closure diff: out of memory reading the units of %s", system);
	free(dir);
	return error;
}

static int unit_change_cmp(const void *a, const void *b)
{
	const tend_unit_change *x = a, *y = b;

	if (x->action != y->action)
		return (int)x->action - (int)y->action;
	return strcmp(x->unit, y->unit);
}

int tend_closure_diff_units(tend_closure_diff *out, const char *before_system,
			    const char *after_system)
{
	unit_entry *v = NULL;
	size_t n = 0, cap = 0, i;
	int error = TEND_ERROR;

	if (units_read(&v, &n, &cap, before_system, 0) < 0 ||
	    units_read(&v, &n, &cap, after_system, 1) < 0)
		goto out;
	if (n && !(out->units = calloc(n, sizeof(*out->units)))) {
		tend_error_set("closure diff: out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *type = unit_type(v[i].name);
		tend_unit_action a = 0;

		if (v[i].side == 2 && strcmp(type, "slice"))
			a = TEND_UNIT_START;
		else if (v[i].side == 1)
			a = TEND_UNIT_STOP;
		else if (v[i].side == 3 && strcmp(v[i].hash[0], v[i].hash[1])) {
			/* As switch-to-configuration: mounts are remounted, targets and slices
			 * are left alone, services honour X-ReloadIfChanged/X-RestartIfChanged. */
			if (!strcmp(type, "mount"))
				a = TEND_UNIT_RELOAD;
			else if (!strcmp(type, "service") || !strcmp(type, "socket") ||
				 !strcmp(type, "timer") || !strcmp(type, "path"))
				a = v[i].reload ? TEND_UNIT_RELOAD : v[i].no_restart ? 0 : TEND_UNIT_RESTART;
		}
		if (!a)
			continue;
		out->units[out->n_units].unit = v[i].name;
		out->units[out->n_units++].action = a;
		v[i].name = NULL;
	}
	if (out->n_units)
		qsort(out->units, out->n_units, sizeof(*out->units), unit_change_cmp);
	error = 0;
out:
	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	return error;
}

/* ---- from the store ------------------------------------------------------ */

static int closure_read(char ***out, size_t *n, const struct tend_config *cfg, const char *system,
			char **why)
{
	char *tool = tend_nix_sibling(cfg, "nix-store");
	char *argv[] = { tool, "--query", "--requisites", (char *)system, NULL };
	tend_proc_opts po = TEND_PROC_OPTS_INIT;
	tend_proc_result r;
	char **v = NULL, *p, line[200];
	size_t cap = 0;
	int error = TEND_ERROR;

	*out = NULL;
	*n = 0;
	memset(&r, 0, sizeof(r));
	if (!tool)
		return TEND_ERROR;
	po.timeout_ms = CLOSURE_TIMEOUT_MS;
	po.max_output = CLOSURE_OUTPUT_MAX;
	if (tend_proc_run(&r, argv, &po) < 0 || r.exit_code || r.truncated) {
		if (asprintf(why, "nix-store --query --requisites %s: %s", system,
			     r.truncated ? "answer too large"
			     : r.exit_code ? tend_nix_last_line(&r.err, line, sizeof(line))
			     : tend_error_last()) < 0) {
			*why = NULL;
			goto out;
		}
		error = 0;
		goto out;
	}
	for (p = r.out.ptr; p && *p;) {
		char *nl = strchr(p, '\n');

		if (nl)
			*nl = '\0';
		if (*p) {
			if (*n == cap) {
				size_t ncap = cap ? cap * 2 : 256;
				char **nv = realloc(v, ncap * sizeof(*nv));

				if (!nv)
					goto out;
				v = nv;
				cap = ncap;
			}
			if (!(v[*n] = strdup(p)))
				goto out;
			(*n)++;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	*out = v;
	v = NULL;
	error = 0;
out:
	if (v) {
		while (*n)
			free(v[--*n]);
		free(v);
	}
	tend_proc_result_dispose(&r);
	free(tool);
	return error;
}

static void paths_free(char **v, size_t n)
{
	while (n)
		free(v[--n]);
	free(v);
}

int tend_closure_diff_systems(tend_closure_diff **out, const struct tend_config *cfg,
			      const char *before_system, const char *after_system)
{
	tend_closure_diff *d = calloc(1, sizeof(*d));
	char **a = NULL, **b = NULL, *why = NULL;
	size_t na = 0, nb = 0;
	int error = TEND_ERROR;

	*out = NULL;
	if (!d)
		goto oom;
	if (closure_read(&a, &na, cfg, before_system, &why) < 0 ||
	    (!why && closure_read(&b, &nb, cfg, after_system, &why) < 0))
		goto oom;
	if (why) {
		d->error = why;
		why = NULL;
	} else if (tend_closure_diff_packages(d, a, na, b, nb) < 0 ||
		   tend_closure_diff_units(d, before_system, after_system) < 0) {
		/* no half a diff: what could not be read is said instead */
		tend_closure_diff *empty = calloc(1, sizeof(*empty));

		if (!empty || !(empty->error = strdup(tend_error_last()))) {
			tend_closure_diff_free(empty);
			goto oom;
		}
		tend_closure_diff_free(d);
		d = empty;
	}
	*out = d;
	d = NULL;
	error = 0;
	goto out;
oom:
	tend_error_set("closure diff: out of memory");
out:
	paths_free(a, na);
	paths_free(b, nb);
	free(why);
	tend_closure_diff_free(d);
	return error;
}

/* ---- text and JSON ------------------------------------------------------- */

char *tend_closure_diff_format(const tend_closure_diff *d, const char *prefix)
{
	tend_buf b = TEND_BUF_INIT;
	size_t i;

	tend_buf_puts(&b, "");
	if (!d)
		return tend_buf_detach(&b);
	if (d->error)
		tend_buf_printf(&b, "%s(no closure diff: %s)\n", prefix, d->error);
	for (i = 0; i < d->n_packages; i++) {
		const tend_package_change *c = &d->packages[i];

		if (c->from && c->to)
			tend_buf_printf(&b, "%spackage %s %s -> %s\n", prefix, c->name,
					*c->from ? c->from : "(no version)", *c->to ? c->to : "(no version)");
		else
			tend_buf_printf(&b, "%spackage %s %s %s\n", prefix, c->from ? "removed" : "added",
					c->name, c->from ? c->from : c->to);
	}
	for (i = 0; i < d->n_units; i++)
		tend_buf_printf(&b, "%sunit %s %s\n", prefix, tend_unit_action_name(d->units[i].action),
				d->units[i].unit);
	return tend_buf_detach(&b);
}

char *tend_reconcile_report_changes(const tend_reconcile_report *report)
{
	char *text = NULL;
	size_t i;

	for (i = 0; report->switched && i < report->plan.count && !text; i++)
		if (report->plan.items[i].kind == TEND_ACTION_SWITCH && report->plan.items[i].closure)
			text = tend_closure_diff_format(report->plan.items[i].closure, "");
	if (text && !*text) {
		free(text);
		text = NULL;
	}
	return text;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *tend_closure_diff_to_json(const tend_closure_diff *d)
{
	json_t *o = json_object(), *p = json_array(), *u = json_array();
	size_t i;
	int failed = !o || !p || !u;

	for (i = 0; !failed && i < d->n_packages; i++)
		failed = json_array_append_new(p, json_pack("{s:s, s:o, s:o}", "name", d->packages[i].name,
					       "from", str_or_null(d->packages[i].from),
					       "to", str_or_null(d->packages[i].to))) < 0;
	for (i = 0; !failed && i < d->n_units; i++)
		failed = json_array_append_new(u, json_pack("{s:s, s:s}", "unit", d->units[i].unit,
					       "action", tend_unit_action_name(d->units[i].action))) < 0;
	if (!failed)
		failed = json_object_set(o, "packages", p) < 0 || json_object_set(o, "units", u) < 0 ||
			 json_object_set_new(o, "paths_before", json_integer((json_int_t)d->paths_before)) < 0 ||
			 json_object_set_new(o, "paths_after", json_integer((json_int_t)d->paths_after)) < 0 ||
			 json_object_set_new(o, "error", str_or_null(d->error)) < 0;
	json_decref(p);
	json_decref(u);
	if (failed) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int opt_str(char **out, const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		tend_error_set("closure diff: \"%s\" is not a string", key);
		return TEND_EINVALID;
	}
	if (!(*out = strdup(json_string_value(v)))) {
		tend_error_set("closure diff: out of memory");
		return TEND_ERROR;
	}
	return 0;
}

int tend_closure_diff_from_json(tend_closure_diff **out, const json_t *j)
{
	tend_closure_diff *d = calloc(1, sizeof(*d));
	const json_t *p = json_object_get(j, "packages"), *u = json_object_get(j, "units");
	size_t i;
	int error = TEND_EINVALID, k;

	*out = NULL;
	if (!d) {
		tend_error_set("closure diff: out of memory");
		return TEND_ERROR;
	}
	if (!json_is_object(j) || !json_is_array(p) || !json_is_array(u)) {
		tend_error_set("closure diff: not an object with \"packages\" and \"units\" arrays");
		goto out;
	}
	if ((json_array_size(p) && !(d->packages = calloc(json_array_size(p), sizeof(*d->packages)))) ||
	    (json_array_size(u) && !(d->units = calloc(json_array_size(u), sizeof(*d->units))))) {
		tend_error_set("closure diff: out of memory");
		error = TEND_ERROR;
		goto out;
	}
	for (i = 0; i < json_array_size(p); i++) {
		const json_t *e = json_array_get(p, i);
		tend_package_change *c = &d->packages[d->n_packages++];

		if ((error = opt_str(&c->name, e, "name")) < 0 || (error = opt_str(&c->from, e, "from")) < 0 ||
		    (error = opt_str(&c->to, e, "to")) < 0)
			goto out;
		if (!c->name || (!c->from && !c->to)) {
			tend_error_set("closure diff: a package without a name or versions");
			error = TEND_EINVALID;
			goto out;
		}
	}
	for (i = 0; i < json_array_size(u); i++) {
		const json_t *e = json_array_get(u, i);
		const char *a = json_string_value(json_object_get(e, "action"));
		tend_unit_change *c = &d->units[d->n_units++];

		if ((error = opt_str(&c->unit, e, "unit")) < 0)
			goto out;
		for (k = TEND_UNIT_START; a && k <= TEND_UNIT_RELOAD; k++)
			if (!strcmp(a, unit_action_names[k]))
				c->action = (tend_unit_action)k;
		if (!c->unit || !c->action) {
			tend_error_set("closure diff: a unit without a name or a known action");
			error = TEND_EINVALID;
			goto out;
		}
	}
	for (k = 0; k < 2; k++) {
		const char *key = k ? "paths_after" : "paths_before";
		const json_t *v = json_object_get(j, key);

		if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
			tend_error_set("closure diff: \"%s\" is not a count", key);
			error = TEND_EINVALID;
			goto out;
		}
		*(k ? &d->paths_after : &d->paths_before) = (size_t)json_integer_value(v);
	}
	if ((error = opt_str(&d->error, j, "error")) < 0)
		goto out;
	*out = d;
	d = NULL;
	error = 0;
out:
	tend_closure_diff_free(d);
	return error;
}
