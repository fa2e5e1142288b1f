/* Loading the agent configuration: a strict YAML reader (unknown keys refused
 * with file:line:col and a did-you-mean), defaults for every optional key, and
 * relative paths resolved against the configuration file's directory. */
#include "agent/config.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/tls.h"
#include "util/yaml.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES (256u * 1024)

typedef struct {
	const char *file;          /* display name for messages */
	char *base;                /* absolute directory of the file */
	int failed;                /* first error already recorded */
} loader;

static void fail_at(loader *l, const tend_yaml_node *n, const char *fmt, ...) TEND_PRINTF(3, 4);

static void fail_at(loader *l, const tend_yaml_node *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (l->failed)
		return;
	l->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n)
		tend_error_set("%s:%u:%u: %s", l->file, n->line, n->col, msg);
	else
		tend_error_set("%s: %s", l->file, msg);
}

int tend_config_parse_duration(uint64_t *out_ms, const char *s)
{
	uint64_t total = 0;
	int any = 0;

	if (!s || !*s)
		return TEND_EINVALID;
	while (*s) {
		uint64_t n = 0, unit;
		int digits = 0;

		while (isdigit((unsigned char)*s)) {
			if (n > UINT64_MAX / 10 - 10)
				return TEND_EINVALID;
			n = n * 10 + (uint64_t)(*s++ - '0');
			digits++;
		}
		if (!digits)
			return TEND_EINVALID;
		if (!strncmp(s, "ms", 2)) {
			unit = 1;
			s += 2;
		} else if (*s == 's') {
			unit = 1000;
			s++;
		} else if (*s == 'm') {
			unit = 60000;
			s++;
		} else if (*s == 'h') {
			unit = 3600000;
			s++;
		} else {
			return TEND_EINVALID;
		}
		if (n > (UINT64_MAX - total) / unit)
			return TEND_EINVALID;
		total += n * unit;
		any = 1;
	}
	if (!any)
		return TEND_EINVALID;
	*out_ms = total;
	return 0;
}

/* Levenshtein distance, for "did you mean". Keys are short. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64], prev;

	if (la >= 63 || lb >= 63)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t best = prev + (a[i - 1] == b[j - 1] ? 0 : 1);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

/* Refuse keys not in allowed (NULL-terminated); where names the section. */
static void check_keys(loader *l, const tend_yaml_node *map, const char *const *allowed,
		       const char *where)
{
	size_t i;

	for (i = 0; i < map->count; i++) {
		const char *key = map->keys[i]->value;
		const char *best = NULL;
		size_t best_d = (size_t)-1, k;
		int known = 0;

		for (k = 0; allowed[k]; k++) {
			size_t d;
			if (!strcmp(key, allowed[k])) {
				known = 1;
				break;
			}
			d = edit_distance(key, allowed[k]);
			if (d < best_d) {
				best_d = d;
				best = allowed[k];
			}
		}
		if (known)
			continue;
		if (best && best_d <= (strlen(key) > 6 ? 3u : 2u))
			fail_at(l, map->keys[i], "unknown key '%s' in %s (did you mean '%s'?)",
				key, where, best);
		else
			fail_at(l, map->keys[i], "unknown key '%s' in %s", key, where);
	}
}

/* The value of key in map, NULL when absent or null. */
static const tend_yaml_node *get(const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *n = map ? tend_yaml_map_get(map, key) : NULL;

	if (n && tend_yaml_is_null(n))
		return NULL;
	return n;
}

static const tend_yaml_node *get_map(loader *l, const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *n = get(map, key);

	if (n && n->kind != TEND_YAML_MAP) {
		fail_at(l, n, "'%s': expected a mapping, got a %s", key, tend_yaml_kind_name(n->kind));
		return NULL;
	}
	return n;
}

static void set_str(char **dst, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return;
	free(*dst);
	*dst = copy;
}

static const char *scalar(loader *l, const tend_yaml_node *n, const char *key)
{
	if (n->kind != TEND_YAML_SCALAR) {
		fail_at(l, n, "'%s': expected a scalar, got a %s", key, tend_yaml_kind_name(n->kind));
		return NULL;
	}
	if (strlen(n->value) != n->len) {
		fail_at(l, n, "'%s': contains a NUL byte", key);
		return NULL;
	}
	return n->value;
}

static void get_str(loader *l, char **dst, const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *n = get(map, key);
	const char *v;

	if (!n || !(v = scalar(l, n, key)))
		return;
	if (!*v) {
		fail_at(l, n, "'%s' must not be empty", key);
		return;
	}
	set_str(dst, v);
}

static char *resolve(loader *l, const char *path)
{
	char *joined = NULL;

	if (path[0] == '/')
		return strdup(path);
	if (asprintf(&joined, "%s/%s", l->base, path) < 0)
		return NULL;
	return joined;
}

static void get_path(loader *l, char **dst, const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *n = get(map, key);
	const char *v;
	char *abs;

	if (!n || !(v = scalar(l, n, key)))
		return;
	if (!*v) {
		fail_at(l, n, "'%s' must not be empty", key);
		return;
	}
	if (!(abs = resolve(l, v)))
		return;
	free(*dst);
	*dst = abs;
}

/* A CA file: a path that must already hold a PEM certificate, so that a
 * typo shows here, at its line, rather than as a TLS failure later. */
static void get_ca_file(loader *l, char **dst, const tend_yaml_node *map, const char *key)
{
	get_path(l, dst, map, key);
	if (*dst && !l->failed && tend_tls_ca_file_check(*dst) < 0)
		fail_at(l, get(map, key), "'%s': %s", key, tend_error_last());
}

static void get_duration(loader *l, uint64_t *dst, const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *n = get(map, key);
	const char *v;

	if (!n || !(v = scalar(l, n, key)))
		return;
	if (tend_config_parse_duration(dst, v) < 0)
		fail_at(l, n, "'%s': bad duration '%s' (expected e.g. 500ms, 30s, 5m, 1h30m)", key, v);
}

/* A duration, or a plain 0 for a feature turned off (reachability_timeout, drift_interval,
 * liveness_interval). */
static void get_duration_or_off(loader *l, uint64_t *dst, const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *n = get(map, key);

	if (n && n->kind == TEND_YAML_SCALAR && !strcmp(n->value, "0"))
		*dst = 0;
	else
		get_duration(l, dst, map, key);
}

static void get_int(loader *l, long long *dst, const tend_yaml_node *map, const char *key,
		    long long min, long long max)
{
	const tend_yaml_node *n = get(map, key);
	const char *v;
	char *end;
	long long x;

	if (!n || !(v = scalar(l, n, key)))
		return;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (!n->plain || !*v || *end || errno || x < min || x > max) {
		fail_at(l, n, "'%s': expected an integer from %lld to %lld, got '%s'", key, min, max, v);
		return;
	}
	*dst = x;
}

static void get_bool(loader *l, int *dst, const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *n = get(map, key);
	const char *v;

	if (!n || !(v = scalar(l, n, key)))
		return;
	if (n->plain && (!strcmp(v, "true") || !strcmp(v, "yes")))
		*dst = 1;
	else if (n->plain && (!strcmp(v, "false") || !strcmp(v, "no")))
		*dst = 0;
	else
		fail_at(l, n, "'%s': expected true or false, got '%s'", key, v);
}

/* A string or a sequence of strings; paths resolved when as_paths. */
static void get_list(loader *l, char ***dst, size_t *n_dst, const tend_yaml_node *map,
		     const char *key, int as_paths, int allow_empty)
{
	const tend_yaml_node *n = get(map, key);
	const tend_yaml_node *const *items;
	const tend_yaml_node *single[1];
	size_t count, i;
	char **list;

	if (!n)
		return;
	if (n->kind == TEND_YAML_SEQ) {
		items = (const tend_yaml_node *const *)n->items;
		count = n->count;
	} else if (n->kind == TEND_YAML_SCALAR) {
		single[0] = n;
		items = single;
		count = 1;
	} else {
		fail_at(l, n, "'%s': expected a sequence, got a mapping", key);
		return;
	}
	if (!(list = calloc(count + 1, sizeof(*list))))
		return;
	for (i = 0; i < count; i++) {
		const char *v = scalar(l, items[i], key);
		if (!v)
			break;
		if (!*v && !allow_empty) {
			fail_at(l, items[i], "'%s': empty item", key);
			break;
		}
		list[i] = as_paths ? resolve(l, v) : strdup(v);
	}
	*dst = list;
	*n_dst = i;
}

static void load_repository(loader *l, tend_config *c, const tend_yaml_node *root)
{
	static const char *const keys[] = { "url", "branch", "ssh_key_file",
		"ssh_passphrase_file", "known_hosts", "token_file", "basic_auth_file",
		"allowed_signers", "ca_file", NULL };
	const tend_yaml_node *m = get_map(l, root, "repository");
	tend_config_repository *r = &c->repository;

	if (!m) {
		if (!get(root, "repository"))
			fail_at(l, root, "missing required field 'repository'");
		return;
	}
	check_keys(l, m, keys, "repository");
	get_str(l, &r->url, m, "url");
	if (!r->url)
		fail_at(l, m, "missing required field 'repository.url'");
	get_str(l, &r->branch, m, "branch");
	get_path(l, &r->ssh_key_file, m, "ssh_key_file");
	get_path(l, &r->ssh_passphrase_file, m, "ssh_passphrase_file");
	get_path(l, &r->known_hosts, m, "known_hosts");
	get_path(l, &r->token_file, m, "token_file");
	get_path(l, &r->basic_auth_file, m, "basic_auth_file");
	get_path(l, &r->allowed_signers, m, "allowed_signers");
	get_ca_file(l, &r->ca_file, m, "ca_file");
	/* A local path (not a URL) is resolved like every other path. */
	if (r->url && !strstr(r->url, "://") && r->url[0] != '/' && !strchr(r->url, '@')) {
		char *abs = resolve(l, r->url);
		if (abs) {
			free(r->url);
			r->url = abs;
		}
	}
}

static void load_alerts(loader *l, tend_config *c, const tend_yaml_node *root)
{
	static const char *const keys[] = { "email", "fetch_failing_after", NULL };
	static const char *const email_keys[] = { "to", "from", "smtp_url", "username",
		"password_file", "starttls", NULL };
	const tend_yaml_node *m = get_map(l, root, "alerts"), *e;
	tend_config_email *em = &c->alerts.email;

	if (!m)
		return;
	check_keys(l, m, keys, "alerts");
	get_duration(l, &c->alerts.fetch_failing_after_ms, m, "fetch_failing_after");
	if (!(e = get_map(l, m, "email")))
		return;
	check_keys(l, e, email_keys, "alerts.email");
	em->configured = 1;
	get_list(l, &em->to, &em->n_to, e, "to", 0, 0);
	get_str(l, &em->from, e, "from");
	get_str(l, &em->smtp_url, e, "smtp_url");
	get_str(l, &em->username, e, "username");
	get_path(l, &em->password_file, e, "password_file");
	get_bool(l, &em->starttls, e, "starttls");
	if (!em->n_to)
		fail_at(l, e, "missing required field 'alerts.email.to'");
	else if (!em->from)
		fail_at(l, e, "missing required field 'alerts.email.from'");
	else if (!em->smtp_url)
		fail_at(l, e, "missing required field 'alerts.email.smtp_url'");
	else if (strncmp(em->smtp_url, "smtp://", 7) && strncmp(em->smtp_url, "smtps://", 8))
		fail_at(l, get(e, "smtp_url"), "'smtp_url' must start with smtp:// or smtps://");
}

static int set_defaults(tend_config *c)
{
	c->repository.branch = strdup("main");
	c->secrets_root = strdup("/run/tend/secrets");
	c->root = strdup("/");
	c->nix.command = strdup("nix");
	c->nix.build_timeout_ms = 30 * 60000;
	c->system.profile = strdup("/nix/var/nix/profiles/system");
	c->system.current_system = strdup("/run/current-system");
	c->system.switch_timeout_ms = 10 * 60000;
	c->system.reachability_timeout_ms = 60000;
	c->poll.interval_ms = 60000;
	c->poll.jitter_ms = 10000;
	c->poll.backoff_initial_ms = 5000;
	c->poll.backoff_max_ms = 0;
	c->poll.drift_interval_ms = 600000;
	c->alerts.fetch_failing_after_ms = 15 * 60000;
	c->dependencies.deadline_ms = 30 * 60000;
	c->dependencies.recheck_ms = 2000;
	c->system.unit_file = strdup("/etc/systemd/system/tend.service");
	c->listen.address = strdup("127.0.0.1");
	c->listen.port = 8470;
	c->alerts.email.starttls = 1;
	c->probes.deadline_ms = 10 * 60000;
	c->probes.liveness_interval_ms = 60000;
	c->probes.output_limit = 4096;
	c->probes.body_limit = 64 * 1024;
	c->history_limit = 100;
	if (!c->repository.branch || !c->secrets_root || !c->root || !c->nix.command ||
	    !c->system.profile || !c->system.current_system || !c->system.unit_file ||
	    !c->listen.address) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	return 0;
}

static int valid_host_name(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

static void load_root(loader *l, tend_config *c, const tend_yaml_node *root)
{
	static const char *const keys[] = { "host", "repository", "state_dir",
		"age_identities", "secrets_root", "secrets_storage", "root", "nix", "system", "poll",
		"listen", "webhook_secret_file", "alerts", "probes", "history_limit", "dependencies",
		NULL };
	static const char *const nix_keys[] = { "command", "extra_options", "build_timeout", NULL };
	static const char *const sys_keys[] = { "profile", "current_system", "switch_timeout",
		"unit_file", "reachability_timeout", "reboot_command", NULL };
	static const char *const poll_keys[] = { "interval", "jitter", "backoff_initial",
		"backoff_max", "drift_interval", NULL };
	static const char *const dep_keys[] = { "deadline", "recheck", NULL };
	static const char *const listen_keys[] = { "address", "port", NULL };
	static const char *const probe_keys[] = { "deadline", "output_limit", "body_limit", "ca_file",
		"liveness_interval", NULL };
	const tend_yaml_node *m;
	long long v;

	check_keys(l, root, keys, "the configuration");
	get_str(l, &c->host, root, "host");
	if (!c->host)
		fail_at(l, root, "missing required field 'host'");
	else if (!valid_host_name(c->host))
		fail_at(l, get(root, "host"), "'host': '%s' is not a host name", c->host);
	load_repository(l, c, root);
	get_path(l, &c->state_dir, root, "state_dir");
	if (!c->state_dir)
		fail_at(l, root, "missing required field 'state_dir'");
	else if (c->state_dir[strspn(c->state_dir, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789/._+-")])
		/* revisions are built as path:<state_dir>/... flake references */
		fail_at(l, get(root, "state_dir"), "'state_dir': '%s' may only hold letters, digits "
			"and / . _ + - (nix builds revisions under it)", c->state_dir);
	get_list(l, &c->age_identities, &c->n_age_identities, root, "age_identities", 1, 0);
	get_path(l, &c->secrets_root, root, "secrets_root");
	if (get(root, "secrets_storage")) {
		char *storage = NULL;

		get_str(l, &storage, root, "secrets_storage");
		if (storage && !strcmp(storage, "disk"))
			c->secrets_storage = TEND_SECRETS_DISK;
		else if (storage && strcmp(storage, "ram"))
			fail_at(l, get(root, "secrets_storage"), "'secrets_storage': '%s' is neither "
				"ram (a ramfs, the default) nor disk", storage);
		free(storage);
	}
	get_path(l, &c->root, root, "root");
	if ((m = get_map(l, root, "nix"))) {
		check_keys(l, m, nix_keys, "nix");
		get_str(l, &c->nix.command, m, "command");
		get_list(l, &c->nix.extra_options, &c->nix.n_extra_options, m, "extra_options", 0, 1);
		get_duration(l, &c->nix.build_timeout_ms, m, "build_timeout");
	}
	if ((m = get_map(l, root, "system"))) {
		check_keys(l, m, sys_keys, "system");
		get_path(l, &c->system.profile, m, "profile");
		get_path(l, &c->system.current_system, m, "current_system");
		get_duration(l, &c->system.switch_timeout_ms, m, "switch_timeout");
		get_path(l, &c->system.unit_file, m, "unit_file");
		get_duration_or_off(l, &c->system.reachability_timeout_ms, m, "reachability_timeout");
		get_list(l, &c->system.reboot_command, &c->system.n_reboot_command, m,
			 "reboot_command", 0, 0);
	}
	if ((m = get_map(l, root, "poll"))) {
		check_keys(l, m, poll_keys, "poll");
		get_duration(l, &c->poll.interval_ms, m, "interval");
		get_duration(l, &c->poll.jitter_ms, m, "jitter");
		get_duration(l, &c->poll.backoff_initial_ms, m, "backoff_initial");
		get_duration(l, &c->poll.backoff_max_ms, m, "backoff_max");
		/* 0: every poll is a full reconcile (as before the setting) */
		get_duration_or_off(l, &c->poll.drift_interval_ms, m, "drift_interval");
		if (!c->poll.interval_ms)
			fail_at(l, get(m, "interval"), "'interval' must be more than 0");
		if (!c->poll.backoff_initial_ms)
			fail_at(l, get(m, "backoff_initial"), "'backoff_initial' must be more than 0");
		else if (get(m, "backoff_max") && c->poll.backoff_max_ms < c->poll.backoff_initial_ms)
			fail_at(l, get(m, "backoff_max"), "'backoff_max' must not be less than "
				"'backoff_initial'");
	}
	if ((m = get_map(l, root, "dependencies"))) {
		check_keys(l, m, dep_keys, "dependencies");
		get_duration(l, &c->dependencies.deadline_ms, m, "deadline");
		get_duration(l, &c->dependencies.recheck_ms, m, "recheck");
		if (!c->dependencies.recheck_ms)
			fail_at(l, get(m, "recheck"), "'recheck' must be more than 0");
	}
	if ((m = get_map(l, root, "listen"))) {
		check_keys(l, m, listen_keys, "listen");
		get_str(l, &c->listen.address, m, "address");
		v = c->listen.port;
		get_int(l, &v, m, "port", 0, 65535);
		c->listen.port = (int)v;
	}
	get_path(l, &c->webhook_secret_file, root, "webhook_secret_file");
	load_alerts(l, c, root);
	if ((m = get_map(l, root, "probes"))) {
		check_keys(l, m, probe_keys, "probes");
		get_duration(l, &c->probes.deadline_ms, m, "deadline");
		v = (long long)c->probes.output_limit;
		get_int(l, &v, m, "output_limit", 256, 1 << 20);
		c->probes.output_limit = (size_t)v;
		v = (long long)c->probes.body_limit;
		get_int(l, &v, m, "body_limit", 1, 16 << 20);
		c->probes.body_limit = (size_t)v;
		get_ca_file(l, &c->probes.ca_file, m, "ca_file");
		get_duration_or_off(l, &c->probes.liveness_interval_ms, m, "liveness_interval");
		/* each run is a worker process: not a busy loop */
		if (c->probes.liveness_interval_ms && c->probes.liveness_interval_ms < 1000)
			fail_at(l, get(m, "liveness_interval"),
				"'liveness_interval' must be 0 (off) or at least 1s");
	}
	v = c->history_limit;
	get_int(l, &v, root, "history_limit", 1, 100000);
	c->history_limit = (unsigned)v;
}

/* Parse an already-read document; base is the absolute directory relative
 * paths are taken from. */
static int config_from_doc(tend_config **out, const char *display, tend_yaml_doc *doc,
			   const char *base)
{
	const tend_yaml_node *root = tend_yaml_doc_root(doc);
	tend_config *c = NULL;
	loader l = { display, (char *)base, 0 };
	int error = TEND_ERROR;

	if (!(c = calloc(1, sizeof(*c))) || !(c->path = strdup(display))) {
		tend_error_set("out of memory");
		goto out;
	}
	if (set_defaults(c) < 0)
		goto out;
	error = TEND_EINVALID;
	if (!root) {
		tend_error_set("%s: the configuration is empty", display);
		goto out;
	}
	if (root->kind != TEND_YAML_MAP) {
		tend_error_set("%s:%u:%u: expected a mapping, got a %s", display, root->line,
			       root->col, tend_yaml_kind_name(root->kind));
		goto out;
	}
	load_root(&l, c, root);
	if (l.failed)
		goto out;
	*out = c;
	c = NULL;
	error = 0;
out:
	tend_config_free(c);
	return error;
}

int tend_config_parse(tend_config **out, const char *display, const char *data, size_t len,
		      const char *base_dir)
{
	tend_yaml_limits limits = tend_yaml_default_limits;
	tend_yaml_doc *doc = NULL;
	int error;

	*out = NULL;
	limits.max_bytes = CONFIG_MAX_BYTES;
	if ((error = tend_yaml_parse(&doc, display, data, len, &limits, NULL)) < 0)
		return error;
	error = config_from_doc(out, display, doc, base_dir);
	tend_yaml_doc_free(doc);
	return error;
}

int tend_config_load_document(tend_config **out, char **data, size_t *len, char **base_dir,
			      const char *path)
{
	tend_buf buf = TEND_BUF_INIT;
	char *dir = NULL, *base = NULL, *slash;
	int error;

	*out = NULL;
	if ((error = tend_file_read(&buf, path, CONFIG_MAX_BYTES)) < 0)
		return error;
	error = TEND_ERROR;
	if (!(dir = strdup(path))) {
		tend_error_set("out of memory");
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (!(base = realpath(slash ? dir : ".", NULL))) {
		tend_error_set_errno("%s: cannot resolve its directory", path);
		goto out;
	}
	if ((error = tend_config_parse(out, path, buf.ptr ? buf.ptr : "", buf.size, base)) < 0)
		goto out;
	if (data) {
		*len = buf.size;
		*data = tend_buf_detach(&buf);
		if (!*data && !(*data = strdup(""))) {
			error = TEND_ERROR;
			goto out;
		}
	}
	if (base_dir) {
		*base_dir = base;
		base = NULL;
	}
out:
	if (error < 0) {
		tend_config_free(*out);
		*out = NULL;
	}
	tend_buf_dispose(&buf);
	free(base);
	free(dir);
	return error;
}

int tend_config_load(tend_config **out, const char *path)
{
	return tend_config_load_document(out, NULL, NULL, NULL, path);
}

static void free_list(char **list, size_t n)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void tend_config_free(tend_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->host);
	free(c->repository.url);
	free(c->repository.branch);
	free(c->repository.ssh_key_file);
	free(c->repository.ssh_passphrase_file);
	free(c->repository.known_hosts);
	free(c->repository.token_file);
	free(c->repository.basic_auth_file);
	free(c->repository.allowed_signers);
	free(c->repository.ca_file);
	free(c->state_dir);
	free_list(c->age_identities, c->n_age_identities);
	free(c->secrets_root);
	free(c->root);
	free(c->nix.command);
	free_list(c->nix.extra_options, c->nix.n_extra_options);
	free(c->system.profile);
	free(c->system.current_system);
	free(c->system.unit_file);
	free_list(c->system.reboot_command, c->system.n_reboot_command);
	free(c->listen.address);
	free(c->webhook_secret_file);
	free_list(c->alerts.email.to, c->alerts.email.n_to);
	free(c->alerts.email.from);
	free(c->alerts.email.smtp_url);
	free(c->alerts.email.username);
	free(c->alerts.email.password_file);
	free(c->probes.ca_file);
	free(c);
}
