/* The state file as JSON (jansson): conversion both ways with strict type
 * checks, atomic saves, and the small edits reconcile makes. Every string that
 * came from a child process is capped before it is stored. Also the state
 * directory's lock: an flock on <state_dir>/lock held for as long as one tend
 * process acts on the host, with the holder's pid in the file so that the
 * refusal can name it. */
#include "state/state.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const char *const phase_names[] = { "none", "files", "switch", "probes", "rollback" };

const char *tend_state_phase_name(tend_state_phase phase)
{
	if ((unsigned)phase < sizeof(phase_names) / sizeof(phase_names[0]))
		return phase_names[phase];
	return "unknown";
}

tend_state *tend_state_new(void)
{
	tend_state *st = calloc(1, sizeof(*st));

	if (!st)
		tend_error_set("out of memory");
	return st;
}

static char *dup_capped(const char *s, size_t cap)
{
	size_t len;
	char *d;

	if (!s)
		return NULL;
	len = strlen(s);
	if (len > cap)
		len = cap;
	if (!(d = malloc(len + 1)))
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

static void history_dispose(tend_state_history *h)
{
	free(h->outcome);
	free(h->message);
	free(h->failed_probe);
	free(h->probe_output);
	free(h->switch_output);
	free(h->system_before);
	free(h->system_after);
	free(h->rollback_target);
	free(h->changes);
}

void tend_state_inflight_clear(tend_state *st)
{
	free(st->inflight.prev_system);
	free(st->inflight.target_system);
	free(st->inflight.backup_dir);
	memset(&st->inflight, 0, sizeof(st->inflight));
}

void tend_state_free(tend_state *st)
{
	size_t i;

	if (!st)
		return;
	free(st->system);
	free(st->reboot_boot_id);
	free(st->reboot_prev_system);
	free(st->reboot_window);
	for (i = 0; i < st->n_files; i++) {
		free(st->files[i].path);
		free(st->files[i].service);
	}
	free(st->files);
	tend_state_inflight_clear(st);
	for (i = 0; i < st->n_failed; i++)
		free(st->failed[i].reason);
	free(st->failed);
	for (i = 0; i < st->n_history; i++)
		history_dispose(&st->history[i]);
	free(st->history);
	free(st);
}

/* ---- JSON -> struct -------------------------------------------------- */

typedef struct {
	const char *file;
	int failed;
} reader;

static void bad(reader *r, const char *what)
{
	if (!r->failed)
		tend_error_set("%s: invalid state file: %s", r->file, what);
	r->failed = 1;
}

static char *opt_str(reader *r, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	char *s;

	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		bad(r, key);
		return NULL;
	}
	if (!(s = strdup(json_string_value(v))))
		bad(r, "out of memory");
	return s;
}

static void hash_str(reader *r, char *dst, size_t size, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	dst[0] = '\0';
	if (!v || json_is_null(v))
		return;
	if (!json_is_string(v) || strlen(s = json_string_value(v)) >= size) {
		bad(r, key);
		return;
	}
	strcpy(dst, s);
}

static json_int_t opt_int(reader *r, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v)) {
		bad(r, key);
		return 0;
	}
	return json_integer_value(v);
}

static json_t *opt_array(reader *r, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v && !json_is_array(v)) {
		bad(r, key);
		return NULL;
	}
	return v;
}

static void read_files(reader *r, tend_state *st, json_t *arr)
{
	size_t i;
	json_t *f;

	if (!arr || !json_array_size(arr))
		return;
	if (!(st->files = calloc(json_array_size(arr), sizeof(*st->files)))) {
		bad(r, "out of memory");
		return;
	}
	json_array_foreach(arr, i, f) {
		tend_state_file *sf = &st->files[st->n_files];
		const char *kind;

		if (!json_is_object(f)) {
			bad(r, "files");
			return;
		}
		st->n_files++;
		sf->path = opt_str(r, f, "path");
		hash_str(r, sf->sha256, sizeof(sf->sha256), f, "sha256");
		sf->service = opt_str(r, f, "service");
		kind = json_string_value(json_object_get(f, "kind"));
		sf->kind = kind && !strcmp(kind, "secret") ? TEND_FILE_SECRET : TEND_FILE_ROUTE;
		if (!sf->path || strlen(sf->sha256) != 64)
			bad(r, "files: an entry without path or sha256");
	}
}

static void read_inflight(reader *r, tend_state *st, json_t *o)
{
	tend_state_inflight *in = &st->inflight;
	const char *phase;
	size_t p;

	if (!o || json_is_null(o))
		return;
	if (!json_is_object(o)) {
		bad(r, "in_flight");
		return;
	}
	in->active = 1;
	hash_str(r, in->commit, sizeof(in->commit), o, "commit");
	hash_str(r, in->prev_commit, sizeof(in->prev_commit), o, "previous_commit");
	in->prev_system = opt_str(r, o, "previous_system");
	in->prev_generation = (long)opt_int(r, o, "previous_generation");
	in->target_system = opt_str(r, o, "target_system");
	in->started = opt_int(r, o, "started");
	in->backup_dir = opt_str(r, o, "backup_dir");
	phase = json_string_value(json_object_get(o, "phase"));
	for (p = 0; phase && p < sizeof(phase_names) / sizeof(phase_names[0]); p++)
		if (!strcmp(phase, phase_names[p]))
			in->phase = (tend_state_phase)p;
	if (!in->commit[0])
		bad(r, "in_flight without a commit");
}

static void read_failed(reader *r, tend_state *st, json_t *arr)
{
	size_t i;
	json_t *f;

	if (!arr || !json_array_size(arr))
		return;
	if (!(st->failed = calloc(json_array_size(arr), sizeof(*st->failed)))) {
		bad(r, "out of memory");
		return;
	}
	json_array_foreach(arr, i, f) {
		tend_state_failed *sf = &st->failed[st->n_failed];
		if (!json_is_object(f)) {
			bad(r, "failed_commits");
			return;
		}
		st->n_failed++;
		hash_str(r, sf->commit, sizeof(sf->commit), f, "commit");
		sf->when = opt_int(r, f, "when");
		sf->reason = opt_str(r, f, "reason");
	}
}

static void read_history(reader *r, tend_state *st, json_t *arr)
{
	size_t i;
	json_t *o;

	if (!arr || !json_array_size(arr))
		return;
	if (!(st->history = calloc(json_array_size(arr), sizeof(*st->history)))) {
		bad(r, "out of memory");
		return;
	}
	json_array_foreach(arr, i, o) {
		tend_state_history *h = &st->history[st->n_history];
		if (!json_is_object(o)) {
			bad(r, "history");
			return;
		}
		st->n_history++;
		hash_str(r, h->commit, sizeof(h->commit), o, "commit");
		h->start = opt_int(r, o, "start");
		h->end = opt_int(r, o, "end");
		h->outcome = opt_str(r, o, "outcome");
		h->message = opt_str(r, o, "message");
		h->failed_probe = opt_str(r, o, "failed_probe");
		h->probe_output = opt_str(r, o, "probe_output");
		h->switch_output = opt_str(r, o, "switch_output");
		h->system_before = opt_str(r, o, "system_before");
		h->system_after = opt_str(r, o, "system_after");
		h->generation_before = (long)opt_int(r, o, "generation_before");
		h->generation_after = (long)opt_int(r, o, "generation_after");
		h->rollback_target = opt_str(r, o, "rollback_target");
		h->changes = opt_str(r, o, "changes");
	}
}

int tend_state_parse(tend_state **out, const char *display, const char *data, size_t len)
{
	tend_state *st = NULL;
	json_error_t jerr;
	json_t *root = NULL, *schema;
	reader r = { display, 0 };
	int error = TEND_EINVALID;

	*out = NULL;
	if (!(st = tend_state_new()))
		return TEND_ERROR;
	if (!(root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr))) {
		tend_error_set("%s:%d:%d: invalid state file: %s", display, jerr.line, jerr.column,
			       jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		tend_error_set("%s: invalid state file: not a JSON object", display);
		goto out;
	}
	schema = json_object_get(root, "schema");
	if (!json_is_integer(schema) || json_integer_value(schema) != TEND_STATE_SCHEMA) {
		tend_error_set("%s: invalid state file: schema %s, this tend reads schema %d", display,
			       json_is_integer(schema) ? "other than expected" : "missing",
			       TEND_STATE_SCHEMA);
		goto out;
	}
	hash_str(&r, st->applied_commit, sizeof(st->applied_commit), root, "applied_commit");
	st->system = opt_str(&r, root, "system");
	st->generation = (long)opt_int(&r, root, "generation");
	st->reboot_boot_id = opt_str(&r, root, "reboot_pending_boot");
	st->reboot_prev_system = opt_str(&r, root, "reboot_previous_system");
	hash_str(&r, st->reboot_prev_commit, sizeof(st->reboot_prev_commit), root,
		 "reboot_previous_commit");
	st->reboot_back = opt_int(&r, root, "reboot_back") != 0;
	st->reboot_window = opt_str(&r, root, "reboot_window");
	read_files(&r, st, opt_array(&r, root, "files"));
	read_inflight(&r, st, json_object_get(root, "in_flight"));
	read_failed(&r, st, opt_array(&r, root, "failed_commits"));
	read_history(&r, st, opt_array(&r, root, "history"));
	if (r.failed)
		goto out;
	*out = st;
	st = NULL;
	error = 0;
out:
	json_decref(root);
	tend_state_free(st);
	return error;
}

int tend_state_load(tend_state **out, const char *dir)
{
	tend_buf data = TEND_BUF_INIT;
	char *path = NULL;
	int error = TEND_ERROR, rc;

	*out = NULL;
	if (!(path = tend_path_join(dir, TEND_STATE_FILE)))
		goto out;
	rc = tend_file_read(&data, path, TEND_STATE_MAX_BYTES);
	if (rc == TEND_ENOTFOUND) {
		tend_error_clear();
		if ((*out = tend_state_new()))
			error = 0;
		goto out;
	}
	if ((error = rc) < 0)
		goto out;
	error = tend_state_parse(out, path, data.ptr, data.size);
out:
	tend_buf_dispose(&data);
	free(path);
	return error;
}

/* ---- struct -> JSON -------------------------------------------------- */

/* Child output may not be UTF-8 (or be cut inside a character): such bytes
 * become '?', since JSON strings must be valid UTF-8. */
static json_t *string_lossy(const char *value)
{
	json_t *v = json_string(value);
	char *copy, *p;

	if (v || !(copy = strdup(value)))
		return v;
	for (p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80 || ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t'))
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

static int put_str(json_t *obj, const char *key, const char *value)
{
	return json_object_set_new(obj, key, value && *value ? string_lossy(value) : json_null());
}

static json_t *history_json(const tend_state_history *h)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	put_str(o, "commit", h->commit);
	json_object_set_new(o, "start", json_integer(h->start));
	json_object_set_new(o, "end", json_integer(h->end));
	put_str(o, "outcome", h->outcome);
	put_str(o, "message", h->message);
	put_str(o, "failed_probe", h->failed_probe);
	put_str(o, "probe_output", h->probe_output);
	put_str(o, "switch_output", h->switch_output);
	put_str(o, "system_before", h->system_before);
	put_str(o, "system_after", h->system_after);
	json_object_set_new(o, "generation_before", json_integer(h->generation_before));
	json_object_set_new(o, "generation_after", json_integer(h->generation_after));
	put_str(o, "rollback_target", h->rollback_target);
	put_str(o, "changes", h->changes);
	return o;
}

static json_t *state_json(const tend_state *st, unsigned history_limit)
{
	json_t *root = json_object(), *arr, *o;
	size_t i, first = 0;

	if (!root)
		return NULL;
	json_object_set_new(root, "schema", json_integer(TEND_STATE_SCHEMA));
	put_str(root, "applied_commit", st->applied_commit);
	put_str(root, "system", st->system);
	json_object_set_new(root, "generation", json_integer(st->generation));
	if (st->reboot_boot_id)
		put_str(root, "reboot_pending_boot", st->reboot_boot_id);
	if (st->reboot_prev_system)
		put_str(root, "reboot_previous_system", st->reboot_prev_system);
	if (st->reboot_prev_commit[0])
		put_str(root, "reboot_previous_commit", st->reboot_prev_commit);
	if (st->reboot_back)
		json_object_set_new(root, "reboot_back", json_integer(1));
	if (st->reboot_window)
		put_str(root, "reboot_window", st->reboot_window);
	arr = json_array();
	for (i = 0; i < st->n_files; i++) {
		o = json_object();
		put_str(o, "path", st->files[i].path);
		put_str(o, "sha256", st->files[i].sha256);
		put_str(o, "service", st->files[i].service);
		put_str(o, "kind", st->files[i].kind == TEND_FILE_SECRET ? "secret" : "route");
		json_array_append_new(arr, o);
	}
	json_object_set_new(root, "files", arr);
	if (st->inflight.active) {
		const tend_state_inflight *in = &st->inflight;
		o = json_object();
		put_str(o, "commit", in->commit);
		put_str(o, "previous_commit", in->prev_commit);
		put_str(o, "previous_system", in->prev_system);
		json_object_set_new(o, "previous_generation", json_integer(in->prev_generation));
		put_str(o, "target_system", in->target_system);
		put_str(o, "phase", tend_state_phase_name(in->phase));
		json_object_set_new(o, "started", json_integer(in->started));
		put_str(o, "backup_dir", in->backup_dir);
		json_object_set_new(root, "in_flight", o);
	} else {
		json_object_set_new(root, "in_flight", json_null());
	}
	arr = json_array();
	for (i = 0; i < st->n_failed; i++) {
		o = json_object();
		put_str(o, "commit", st->failed[i].commit);
		json_object_set_new(o, "when", json_integer(st->failed[i].when));
		put_str(o, "reason", st->failed[i].reason);
		json_array_append_new(arr, o);
	}
	json_object_set_new(root, "failed_commits", arr);
	if (history_limit && st->n_history > history_limit)
		first = st->n_history - history_limit;
	arr = json_array();
	for (i = first; i < st->n_history; i++)
		json_array_append_new(arr, history_json(&st->history[i]));
	json_object_set_new(root, "history", arr);
	return root;
}

int tend_state_save(const tend_state *st, const char *dir, unsigned history_limit)
{
	json_t *root = NULL;
	char *text = NULL, *path = NULL;
	int error = TEND_ERROR;

	if (!(path = tend_path_join(dir, TEND_STATE_FILE)))
		goto out;
	if (!(root = state_json(st, history_limit)) ||
	    !(text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		tend_error_set("%s: out of memory", path);
		goto out;
	}
	if ((error = tend_file_write_atomic(path, text, strlen(text), 0600, (uid_t)-1, (gid_t)-1)) < 0) {
		tend_error_prefix("saving the state: ");
		goto out;
	}
	error = 0;
out:
	free(text);
	free(path);
	json_decref(root);
	return error;
}

/* ---- edits ----------------------------------------------------------- */

const tend_state_file *tend_state_file_get(const tend_state *st, const char *path)
{
	size_t i;

	for (i = 0; i < st->n_files; i++)
		if (!strcmp(st->files[i].path, path))
			return &st->files[i];
	return NULL;
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const tend_state_file *)a)->path, ((const tend_state_file *)b)->path);
}

int tend_state_file_set(tend_state *st, const char *path, const char sha256[65],
			const char *service, tend_state_file_kind kind)
{
	tend_state_file *f = (tend_state_file *)tend_state_file_get(st, path), *grown;
	char *svc = service ? strdup(service) : NULL;

	if (service && !svc)
		goto oom;
	if (!f) {
		if (!(grown = realloc(st->files, (st->n_files + 1) * sizeof(*grown))))
			goto oom;
		st->files = grown;
		f = &st->files[st->n_files];
		memset(f, 0, sizeof(*f));
		if (!(f->path = strdup(path)))
			goto oom;
		st->n_files++;
	}
	free(f->service);
	f->service = svc;
	memcpy(f->sha256, sha256, 64);
	f->sha256[64] = '\0';
	f->kind = kind;
	qsort(st->files, st->n_files, sizeof(*st->files), file_cmp);
	return 0;
oom:
	free(svc);
	tend_error_set("out of memory");
	return TEND_ERROR;
}

void tend_state_file_remove(tend_state *st, const char *path)
{
	size_t i;

	for (i = 0; i < st->n_files; i++) {
		if (strcmp(st->files[i].path, path))
			continue;
		free(st->files[i].path);
		free(st->files[i].service);
		memmove(&st->files[i], &st->files[i + 1], (st->n_files - i - 1) * sizeof(*st->files));
		st->n_files--;
		return;
	}
}

int tend_state_failed_has(const tend_state *st, const char *commit)
{
	size_t i;

	for (i = 0; i < st->n_failed; i++)
		if (!strcmp(st->failed[i].commit, commit))
			return 1;
	return 0;
}

int tend_state_failed_add(tend_state *st, const char *commit, int64_t when, const char *reason)
{
	tend_state_failed *grown, *f;

	if (strlen(commit) > 40) {
		tend_error_set("not a commit id: %s", commit);
		return TEND_EINVALID;
	}
	tend_state_failed_clear(st, commit);
	if (!(grown = realloc(st->failed, (st->n_failed + 1) * sizeof(*grown)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	st->failed = grown;
	f = &st->failed[st->n_failed++];
	memset(f, 0, sizeof(*f));
	strcpy(f->commit, commit);
	f->when = when;
	f->reason = dup_capped(reason, 1024);
	return 0;
}

void tend_state_failed_clear(tend_state *st, const char *commit)
{
	size_t i;

	for (i = 0; i < st->n_failed; i++) {
		if (strcmp(st->failed[i].commit, commit))
			continue;
		free(st->failed[i].reason);
		memmove(&st->failed[i], &st->failed[i + 1], (st->n_failed - i - 1) * sizeof(*st->failed));
		st->n_failed--;
		return;
	}
}

int tend_state_history_add(tend_state *st, const tend_state_history *e)
{
	tend_state_history *grown, *h;

	if (!(grown = realloc(st->history, (st->n_history + 1) * sizeof(*grown)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	st->history = grown;
	h = &st->history[st->n_history++];
	memset(h, 0, sizeof(*h));
	snprintf(h->commit, sizeof(h->commit), "%s", e->commit);
	h->start = e->start;
	h->end = e->end;
	h->outcome = dup_capped(e->outcome, 64);
	h->message = dup_capped(e->message, 4096);
	h->failed_probe = dup_capped(e->failed_probe, 1024);
	h->probe_output = dup_capped(e->probe_output, TEND_STATE_MAX_OUTPUT);
	h->switch_output = dup_capped(e->switch_output, TEND_STATE_MAX_OUTPUT);
	h->system_before = dup_capped(e->system_before, 4096);
	h->system_after = dup_capped(e->system_after, 4096);
	h->generation_before = e->generation_before;
	h->generation_after = e->generation_after;
	h->rollback_target = dup_capped(e->rollback_target, 4096);
	h->changes = dup_capped(e->changes, TEND_STATE_MAX_OUTPUT);
	return 0;
}

int tend_state_inflight_begin(tend_state *st, const char *commit, const char *prev_system,
			      long prev_generation, const char *target_system,
			      const char *backup_dir, int64_t started)
{
	tend_state_inflight *in = &st->inflight;

	tend_state_inflight_clear(st);
	in->active = 1;
	snprintf(in->commit, sizeof(in->commit), "%s", commit);
	snprintf(in->prev_commit, sizeof(in->prev_commit), "%s", st->applied_commit);
	in->prev_generation = prev_generation;
	in->phase = TEND_PHASE_FILES;
	in->started = started;
	if ((prev_system && !(in->prev_system = strdup(prev_system))) ||
	    (target_system && !(in->target_system = strdup(target_system))) ||
	    (backup_dir && !(in->backup_dir = strdup(backup_dir)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	return 0;
}

/* ---- lock ------------------------------------------------------------ */

struct tend_state_lock {
	int fd;
};

int tend_state_lock_take(tend_state_lock **out, const char *dir)
{
	tend_state_lock *lock = NULL;
	char *path = NULL, pid[32] = "";
	int fd = -1, error = TEND_ERROR, len;
	ssize_t n;

	*out = NULL;
	if (tend_dir_create_all(dir, 0700) < 0)
		return TEND_ERROR;
	if (!(path = tend_path_join(dir, TEND_STATE_LOCK)))
		return TEND_ERROR;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		tend_error_set_errno("cannot open the lock %s", path);
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			tend_error_set("the state directory %s is locked by another tend process%s%s%s",
				       dir, *pid ? " (pid " : "", pid, *pid ? ")" : "");
			error = TEND_ELOCKED;
		} else {
			tend_error_set_errno("cannot lock %s", path);
		}
		goto out;
	}
	len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		tend_error_set_errno("cannot write the lock %s", path);
		goto out;
	}
	if (!(lock = malloc(sizeof(*lock)))) {
		tend_error_set("out of memory");
		goto out;
	}
	lock->fd = fd;
	fd = -1;
	*out = lock;
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return error;
}

void tend_state_lock_release(tend_state_lock *lock)
{
	if (!lock)
		return;
	/* Leave the file: removing it would race with a process opening it. */
	if (ftruncate(lock->fd, 0) < 0) {
		/* nothing to do: the pid is only used in messages */
	}
	close(lock->fd);
	free(lock);
}
