/* Observe and plan: compare the files on disk (by hash, so a hand-edited file
 * is drift), the state and the running system with what a commit wants, and
 * list the actions in the order converge takes them: files and secrets in
 * their services' dependency order, then the switch, then the probes. */
#include "reconcile/internal.h"
#include "reconcile/closure.h"
#include "render/render.h"
#include "util/error.h"
#include "util/fs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const action_names[] = {
	"", "write_file", "remove_file", "install_secret", "remove_secret", "restart_unit",
	"switch", "probe"
};

void tend_plan_dispose(tend_plan *plan)
{
	size_t i;

	if (!plan)
		return;
	for (i = 0; i < plan->count; i++) {
		free(plan->items[i].service);
		free(plan->items[i].path);
		free(plan->items[i].from);
		free(plan->items[i].to);
		free(plan->items[i].reason);
		tend_closure_diff_free(plan->items[i].closure);
	}
	free(plan->items);
	memset(plan, 0, sizeof(*plan));
}

int tend_plan_add(tend_plan *plan, tend_action_kind kind, const char *service, const char *path,
		  const char *from, const char *to, const char *reason)
{
	tend_action *a;

	if (plan->count == plan->cap) {
		size_t ncap = plan->cap ? plan->cap * 2 : 8;
		tend_action *n = realloc(plan->items, ncap * sizeof(*n));
		if (!n)
			goto oom;
		plan->items = n;
		plan->cap = ncap;
	}
	a = &plan->items[plan->count];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	if ((service && !(a->service = strdup(service))) || (path && !(a->path = strdup(path))) ||
	    (from && !(a->from = strdup(from))) || (to && !(a->to = strdup(to))) ||
	    (reason && !(a->reason = strdup(reason)))) {
		free(a->service);
		free(a->path);
		free(a->from);
		free(a->to);
		goto oom;
	}
	plan->count++;
	return 0;
oom:
	tend_error_set("out of memory");
	return TEND_ERROR;
}

int tend_plan_changes(const tend_plan *plan)
{
	size_t i;

	for (i = 0; i < plan->count; i++)
		if (plan->items[i].kind != TEND_ACTION_PROBE)
			return 1;
	return 0;
}

typedef struct {
	const tend_want_file *f;
	size_t rank;
	const char *reason;
	char old_sha[65];
} file_change;

static int change_cmp(const void *a, const void *b)
{
	const file_change *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->f->path, y->f->path);
}

/* Decide whether f must be written; reason is NULL when the disk is right. */
static int file_needs_write(const char **reason, char old_sha[65], const tend_config *cfg,
			    const tend_state *st, const tend_want_file *f)
{
	const tend_state_file *known = tend_state_file_get(st, f->path);
	tend_buf disk = TEND_BUF_INIT;
	int rc;

	*reason = NULL;
	old_sha[0] = '\0';
	rc = tend_reconcile_file_read(&disk, cfg, f->path, f->kind == TEND_FILE_SECRET, 64u << 20);
	if (rc == TEND_ENOTFOUND) {
		tend_error_clear();
		*reason = known ? "missing" : "new";
		return 0;
	}
	if (rc < 0)
		return rc;
	tend_sha256_hex(old_sha, disk.ptr, disk.size);
	if (!strcmp(old_sha, f->sha256)) {
		/* right bytes already */
	} else if (known && strcmp(known->sha256, old_sha)) {
		*reason = "drift";        /* edited by hand since tend wrote it */
	} else if (f->equivalent_ok && known &&
		   tend_render_output_equivalent(disk.ptr, disk.size, f->data, f->len)) {
		/* only the generated-from stamp differs */
	} else {
		*reason = known ? "changed" : "replace";
	}
	if (f->secret)
		tend_buf_dispose_secure(&disk);
	else
		tend_buf_dispose(&disk);
	return 0;
}

/* 1 when sf's file holds exactly what tend recorded writing, 0 when not (or
 * when it is not a regular file), negative on a read error. */
static int still_written(const tend_config *cfg, const tend_state_file *sf)
{
	tend_buf disk = TEND_BUF_INIT;
	char sha[65];
	int rc;

	rc = tend_reconcile_file_read(&disk, cfg, sf->path, sf->kind == TEND_FILE_SECRET, 64u << 20);
	if (rc == TEND_ENOTFOUND || rc == TEND_ELIMIT || rc == TEND_EREFUSED ||
	    rc == TEND_EINVALID) {   /* not there, or not a file tend could have written */
		tend_error_clear();
		tend_buf_dispose_secure(&disk);
		return 0;
	}
	if (rc < 0)
		return rc;
	tend_sha256_hex(sha, disk.ptr ? disk.ptr : "", disk.size);
	tend_buf_dispose_secure(&disk);
	return !strcmp(sha, sf->sha256);
}

static int want_has(const tend_desired *d, const char *path)
{
	size_t i;

	for (i = 0; i < d->n_files; i++)
		if (!strcmp(d->files[i].path, path))
			return 1;
	return 0;
}

static int plan_has_restart(const tend_plan *plan, const char *unit)
{
	size_t i;

	for (i = 0; i < plan->count; i++)
		if (plan->items[i].kind == TEND_ACTION_RESTART_UNIT && !strcmp(plan->items[i].path, unit))
			return 1;
	return 0;
}

int tend_plan_compute(tend_plan *out, const tend_config *cfg, const tend_state *st,
		      const tend_desired *d, const char *current_system)
{
	file_change *changes = NULL;
	const tend_host *host;
	size_t n = 0, i, k;
	int error = TEND_ERROR, system_changes, boot;

	memset(out, 0, sizeof(*out));
	if (d->n_files && !(changes = calloc(d->n_files, sizeof(*changes)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (i = 0; i < d->n_files; i++) {
		file_change *c = &changes[n];
		if ((error = file_needs_write(&c->reason, c->old_sha, cfg, st, &d->files[i])) < 0)
			goto out;
		if (!c->reason)
			continue;
		c->f = &d->files[i];
		c->rank = tend_desired_service_rank(d, d->files[i].service);
		n++;
	}
	if (n > 1)   /* qsort(NULL, 0) is undefined: a host with no files */
		qsort(changes, n, sizeof(*changes), change_cmp);
	for (i = 0; i < n; i++) {
		const tend_want_file *f = changes[i].f;
		/* a secret's action carries no digest: an unkeyed SHA-256 of a
		 * short plaintext (a PIN) is the plaintext; the reason says
		 * new / changed / drift / missing */
		int secret = f->kind == TEND_FILE_SECRET;

		if ((error = tend_plan_add(out, secret ? TEND_ACTION_INSTALL_SECRET
					   : TEND_ACTION_WRITE_FILE, f->service, f->path,
					   !secret && changes[i].old_sha[0] ? changes[i].old_sha : NULL,
					   secret ? NULL : f->sha256, changes[i].reason)) < 0)
			goto out;
	}
	/* Files tend wrote that the commit no longer wants (still on disk). */
	for (i = 0; i < st->n_files; i++) {
		const tend_state_file *sf = &st->files[i];
		struct stat sb;

		if (want_has(d, sf->path))
			continue;
		/* beneath its root or refused: a state naming /etc/shadow must not
		 * make tend delete it */
		if ((error = tend_reconcile_file_stat(&sb, cfg, sf->path,
						      sf->kind == TEND_FILE_SECRET)) == TEND_ENOTFOUND) {
			tend_error_clear();
			continue;
		}
		if (error < 0)
			goto out;
		/* only what tend wrote, unchanged since: with root "/" every path
		 * is beneath the root, and a file edited by hand (or one a
		 * tampered state names) is not tend's to delete */
		if ((error = still_written(cfg, sf)) < 0)
			goto out;
		if (!error)
			continue;
		if ((error = tend_plan_add(out, sf->kind == TEND_FILE_SECRET ? TEND_ACTION_REMOVE_SECRET
					   : TEND_ACTION_REMOVE_FILE, sf->service, sf->path,
					   sf->kind == TEND_FILE_SECRET ? NULL : sf->sha256, NULL,
					   "no longer wanted")) < 0)
			goto out;
	}
	/* The switch, then the restarts: units are try-restarted once the new system's are in
	 * place (with operation: boot the running system's units, before it is set). */
	system_changes = d->system && (!current_system || strcmp(current_system, d->system));
	host = d->manifest ? tend_manifest_host(d->manifest, cfg->host) : NULL;
	boot = host && host->operation == TEND_OPERATION_BOOT;
	if (system_changes && !boot &&
	    (error = tend_plan_add(out, TEND_ACTION_SWITCH, NULL, NULL, current_system, d->system,
				   current_system ? "changed" : "first activation")) < 0)
		goto out;
	/* A secret that is new (never there before) restarts nothing: its service
	 * reads it when it starts, and a unit the same commit introduces does not
	 * exist before the switch. Each unit is restarted once, at its first
	 * (dependency-ordered) mention. */
	for (i = 0; i < n; i++) {
		const tend_want_file *f = changes[i].f;
		if (!strcmp(changes[i].reason, "new"))
			continue;
		for (k = 0; k < f->n_restart; k++)
			if (!plan_has_restart(out, f->restart[k]) &&
			    (error = tend_plan_add(out, TEND_ACTION_RESTART_UNIT, f->service,
						   f->restart[k], NULL, NULL, "secret changed")) < 0)
				goto out;
	}
	if (system_changes && boot &&
	    (error = tend_plan_add(out, TEND_ACTION_SWITCH, NULL, NULL, current_system, d->system,
				   current_system ? "changed" : "first activation")) < 0)
		goto out;
	if (out->count) {
		for (i = 0; i < d->n_order; i++) {
			const tend_service *s = tend_manifest_service(d->manifest, d->order[i]);
			if (s && s->n_probes &&
			    (error = tend_plan_add(out, TEND_ACTION_PROBE, s->name, NULL, NULL, NULL,
						   NULL)) < 0)
				goto out;
		}
	}
	error = 0;
out:
	free(changes);
	if (error < 0)
		tend_plan_dispose(out);
	return error;
}

int tend_plan_closure(tend_plan *plan, const tend_config *cfg)
{
	size_t i;

	/* What the switch changes, as nvd would show it; a first activation changes everything. */
	for (i = 0; i < plan->count; i++) {
		tend_action *a = &plan->items[i];

		if (a->kind == TEND_ACTION_SWITCH && a->from && a->to && !a->closure)
			return tend_closure_diff_systems(&a->closure, cfg, a->from, a->to);
	}
	return 0;
}

char *tend_plan_format(const tend_plan *plan)
{
	tend_buf b = TEND_BUF_INIT;
	size_t i;

	tend_buf_puts(&b, "");
	for (i = 0; i < plan->count; i++) {
		const tend_action *a = &plan->items[i];
		switch (a->kind) {
		case TEND_ACTION_WRITE_FILE:
		case TEND_ACTION_INSTALL_SECRET:
		case TEND_ACTION_REMOVE_FILE:
		case TEND_ACTION_REMOVE_SECRET:
			tend_buf_printf(&b, "%s %s %s", a->kind == TEND_ACTION_WRITE_FILE ? "write" :
					a->kind == TEND_ACTION_INSTALL_SECRET ? "install" : "remove",
					a->kind == TEND_ACTION_WRITE_FILE || a->kind == TEND_ACTION_REMOVE_FILE
					? "file" : "secret", a->path);
			break;
		case TEND_ACTION_RESTART_UNIT:
			tend_buf_printf(&b, "restart unit %s", a->path);
			break;
		case TEND_ACTION_SWITCH:
			tend_buf_printf(&b, "switch system %s -> %s", a->from ? a->from : "(none)", a->to);
			break;
		case TEND_ACTION_PROBE:
			tend_buf_printf(&b, "probe %s", a->service);
			break;
		}
		if (a->kind != TEND_ACTION_PROBE && (a->service || a->reason))
			tend_buf_printf(&b, " (%s%s%s)", a->service ? a->service : "",
					a->service && a->reason ? ", " : "", a->reason ? a->reason : "");
		tend_buf_putc(&b, '\n');
		if (a->closure) {
			char *diff = tend_closure_diff_format(a->closure, "  ");

			if (diff)
				tend_buf_puts(&b, diff);
			free(diff);
		}
	}
	return tend_buf_detach(&b);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *tend_plan_format_json(const tend_plan *plan)
{
	json_t *arr = json_array();
	char *text;
	size_t i;

	if (!arr)
		return NULL;
	for (i = 0; i < plan->count; i++) {
		const tend_action *a = &plan->items[i];
		json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}",
			"action", action_names[a->kind], "service", str_or_null(a->service),
			"path", str_or_null(a->path), "from", str_or_null(a->from),
			"to", str_or_null(a->to), "reason", str_or_null(a->reason));

		if (o && a->kind == TEND_ACTION_SWITCH)
			json_object_set_new(o, "closure", a->closure ? tend_closure_diff_to_json(a->closure)
					    : json_null());
		json_array_append_new(arr, o);
	}
	text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(arr);
	return text;
}
