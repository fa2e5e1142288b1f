/* Typed access to the positioned YAML tree for the manifest parsers: every
 * getter checks the type, reports problems as diagnostics with the dotted
 * field path ("health.startup[0].interval: ..."), and fills defaults only
 * when the field is absent. */
#include "manifest/internal.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tend_http_schemes[] = { "http", "https", NULL };
const char *const tend_smtp_schemes[] = { "smtp", "smtps", NULL };

/* ---- context, paths, messages ---------------------------------------- */

/* Append to the path, truncating as snprintf would; without snprintf, which
 * was a tenth of a manifest load (a push per field read). */
static void path_append(tend_mctx *c, const char *a, size_t alen, const char *b, size_t blen)
{
	size_t room = sizeof(c->path) - c->plen - 1;   /* bytes that fit before the NUL */
	char *p = c->path + c->plen;

	if (alen > room)
		alen = room;
	memcpy(p, a, alen);
	room -= alen;
	if (blen > room)
		blen = room;
	memcpy(p + alen, b, blen);
	c->plen += alen + blen;
	c->path[c->plen] = '\0';
}

size_t tend_mctx_push(tend_mctx *c, const char *key)
{
	size_t old = c->plen;

	path_append(c, ".", c->plen ? 1 : 0, key, strlen(key));
	return old;
}

size_t tend_mctx_push_index(tend_mctx *c, size_t i)
{
	size_t old = c->plen;
	char num[24], *p = num + sizeof(num);

	*--p = ']';
	do {
		*--p = (char)('0' + i % 10);
		i /= 10;
	} while (i);
	*--p = '[';
	path_append(c, p, (size_t)(num + sizeof(num) - p), "", 0);
	return old;
}

void tend_mctx_pop(tend_mctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

tend_pos tend_mctx_pos(const tend_mctx *c, const tend_yaml_node *n)
{
	tend_pos p = { c->file, n ? n->line : 0, n ? n->col : 0 };
	return p;
}

void tend_mctx_error(tend_mctx *c, const tend_yaml_node *at, const char *fmt, ...)
{
	char msg[512];
	tend_pos p = tend_mctx_pos(c, at);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->plen)
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p, "%s: %s", c->path, msg);
	else
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p, "%s", msg);
}

const char *tend_mctx_describe(const tend_yaml_node *n)
{
	if (n->kind != TEND_YAML_SCALAR)
		return n->kind == TEND_YAML_MAP ? "a mapping" : "a sequence";
	if (tend_yaml_is_null(n))
		return "null";
	return n->plain ? "a plain scalar" : "a quoted string";
}

int tend_mctx_expect_kind(tend_mctx *c, const tend_yaml_node *n, tend_yaml_kind kind)
{
	if (n->kind == kind)
		return 0;
	tend_mctx_error(c, n, "expected a %s, got %s", tend_yaml_kind_name(kind), tend_mctx_describe(n));
	return -1;
}

/* Report every key of map not in allowed, suggesting the closest allowed one. */
void tend_mctx_check_keys(tend_mctx *c, const tend_yaml_node *map, const char *const *allowed)
{
	size_t i, j;

	for (i = 0; i < map->count; i++) {
		const char *k = map->keys[i]->value;
		const char *hint;
		for (j = 0; allowed[j]; j++)
			if (k[0] == allowed[j][0] && !strcmp(k, allowed[j]))
				break;
		if (allowed[j])
			continue;
		if ((hint = tend_suggest_list(k, allowed)))
			tend_mctx_error(c, map->keys[i], "unknown key '%s' (did you mean '%s'?)", k, hint);
		else
			tend_mctx_error(c, map->keys[i], "unknown key '%s'", k);
	}
}

/* Where key itself is written (sections point at their key, not their first child). */
tend_pos tend_mctx_key_pos(const tend_mctx *c, const tend_yaml_node *map, const char *key)
{
	size_t i;

	for (i = 0; i < map->count; i++)
		if (!strcmp(map->keys[i]->value, key))
			return tend_mctx_pos(c, map->keys[i]);
	return tend_mctx_pos(c, map);
}

/* The value of key, or NULL when absent or null (reported when required). */
const tend_yaml_node *tend_mctx_field(tend_mctx *c, const tend_yaml_node *map, const char *key,
				   int required)
{
	const tend_yaml_node *v = tend_yaml_map_get(map, key);

	if (v && v->kind == TEND_YAML_SCALAR && tend_yaml_is_null(v))
		v = NULL;
	if (!v && required)
		tend_mctx_error(c, map, "missing required field '%s'", key);
	return v;
}

char *tend_mctx_strdup(tend_mctx *c, const tend_yaml_node *n)
{
	return tend_arena_strndup(c->arena, n->value, n->len);
}

/* A string scalar; also checks for embedded NULs, which no tend_mctx_field may hold. */
int tend_mctx_string(char **out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		      const char *key, int required)
{
	const tend_yaml_node *v = tend_mctx_field(c, map, key, required);
	size_t old;
	int error = -1;

	if (!v)
		return required ? -1 : 0;
	old = tend_mctx_push(c, key);
	if (tend_mctx_expect_kind(c, v, TEND_YAML_SCALAR) < 0)
		goto out;
	if (strlen(v->value) != v->len) {
		tend_mctx_error(c, v, "contains a NUL character");
		goto out;
	}
	if (v->len == 0) {
		tend_mctx_error(c, v, "must not be empty");
		goto out;
	}
	*out = tend_mctx_strdup(c, v);
	if (pos)
		*pos = tend_mctx_pos(c, v);
	error = 0;
out:
	tend_mctx_pop(c, old);
	return error;
}

static int scalar_int(long *out, const tend_yaml_node *v)
{
	char *end;
	long x;

	if (v->kind != TEND_YAML_SCALAR || !v->plain || v->len == 0 || v->len > 18)
		return -1;
	if (v->value[0] != '-' && (v->value[0] < '0' || v->value[0] > '9'))
		return -1;
	x = strtol(v->value, &end, 10);
	if (*end)
		return -1;
	*out = x;
	return 0;
}

int tend_mctx_int(int *out, tend_mctx *c, const tend_yaml_node *map, const char *key,
		   int required, long min, long max, const char *what)
{
	const tend_yaml_node *v = tend_mctx_field(c, map, key, required);
	size_t old;
	long x;
	int error = -1;

	if (!v)
		return required ? -1 : 0;
	old = tend_mctx_push(c, key);
	if (v->kind != TEND_YAML_SCALAR) {
		tend_mctx_expect_kind(c, v, TEND_YAML_SCALAR);
		goto out;
	}
	if (scalar_int(&x, v) < 0) {
		tend_mctx_error(c, v, "expected %s, got '%s'", what, v->value);
		goto out;
	}
	if (x < min || x > max) {
		tend_mctx_error(c, v, "%ld is out of range (%ld-%ld)", x, min, max);
		goto out;
	}
	*out = (int)x;
	error = 0;
out:
	tend_mctx_pop(c, old);
	return error;
}

int tend_mctx_port(int *out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		    const char *key, int required)
{
	const tend_yaml_node *v = tend_yaml_map_get(map, key);
	if (pos && v)
		*pos = tend_mctx_pos(c, v);
	return tend_mctx_int(out, c, map, key, required, 1, 65535, "a port number (1-65535)");
}

int tend_mctx_bool(int *out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		    const char *key)
{
	const tend_yaml_node *v = tend_mctx_field(c, map, key, 0);
	size_t old;
	int error = -1;

	if (!v)
		return 0;
	old = tend_mctx_push(c, key);
	if (v->kind == TEND_YAML_SCALAR && v->plain &&
	    (!strcmp(v->value, "true") || !strcmp(v->value, "True") || !strcmp(v->value, "TRUE"))) {
		*out = 1;
		error = 0;
	} else if (v->kind == TEND_YAML_SCALAR && v->plain &&
		   (!strcmp(v->value, "false") || !strcmp(v->value, "False") ||
		    !strcmp(v->value, "FALSE"))) {
		*out = 0;
		error = 0;
	} else if (v->kind != TEND_YAML_SCALAR) {
		tend_mctx_expect_kind(c, v, TEND_YAML_SCALAR);
	} else {
		tend_mctx_error(c, v, "expected true or false, got '%s'", v->value);
	}
	if (pos)
		*pos = tend_mctx_pos(c, v);
	tend_mctx_pop(c, old);
	return error;
}

int tend_mctx_url(char **out, tend_pos *pos, tend_mctx *c, const tend_yaml_node *map,
		   const char *key, int required, const char *const *schemes)
{
	const tend_yaml_node *v;
	size_t old;

	if (tend_mctx_string(out, pos, c, map, key, required) < 0)
		return -1;
	if (!*out || tend_check_url(*out, schemes) == 0)
		return 0;
	v = tend_yaml_map_get(map, key);
	old = tend_mctx_push(c, key);
	tend_mctx_error(c, v, "'%s' is not a valid %s:// URL", *out, schemes[0]);
	tend_mctx_pop(c, old);
	*out = NULL;
	return -1;
}

int tend_mctx_duration(uint64_t *out, tend_mctx *c, const tend_yaml_node *map, const char *key)
{
	const tend_yaml_node *v = tend_mctx_field(c, map, key, 0);
	size_t old;
	int error = -1;

	if (!v)
		return 0;
	old = tend_mctx_push(c, key);
	if (tend_mctx_expect_kind(c, v, TEND_YAML_SCALAR) < 0)
		goto out;
	if (tend_parse_duration(out, v->value) < 0) {
		tend_mctx_error(c, v, "invalid duration '%s' (use a number with ms, s, m or h, "
				"such as 500ms, 2s or 1m30s)", v->value);
		goto out;
	}
	error = 0;
out:
	tend_mctx_pop(c, old);
	return error;
}

/* A sequence of non-empty strings (a single string is not accepted: the
 * format is explicit so that `depends_on: a, b` is not silently one name). */
int tend_mctx_string_list(char ***out, size_t *n, tend_pos **pos, tend_mctx *c,
			   const tend_yaml_node *map, const char *key, int required)
{
	const tend_yaml_node *v = tend_mctx_field(c, map, key, required);
	size_t old, i, k = 0;
	int error = -1;

	*out = NULL;
	*n = 0;
	if (pos)
		*pos = NULL;
	if (!v)
		return required ? -1 : 0;
	old = tend_mctx_push(c, key);
	if (tend_mctx_expect_kind(c, v, TEND_YAML_SEQ) < 0)
		goto out;
	if (required && v->count == 0) {
		tend_mctx_error(c, v, "must not be empty");
		goto out;
	}
	*out = tend_arena_alloc(c->arena, (v->count + 1) * sizeof(char *));
	if (pos)
		*pos = tend_arena_alloc(c->arena, (v->count + 1) * sizeof(tend_pos));
	if (!*out || (pos && !*pos))
		goto out;
	error = 0;
	for (i = 0; i < v->count; i++) {
		const tend_yaml_node *it = v->items[i];
		size_t o2 = tend_mctx_push_index(c, i);
		if (it->kind != TEND_YAML_SCALAR || tend_yaml_is_null(it)) {
			tend_mctx_error(c, it, "expected a string, got %s", tend_mctx_describe(it));
			error = -1;
		} else if (strlen(it->value) != it->len || it->len == 0) {
			tend_mctx_error(c, it, "expected a non-empty string");
			error = -1;
		} else {
			if (pos)
				(*pos)[k] = tend_mctx_pos(c, it);
			(*out)[k++] = tend_mctx_strdup(c, it);
		}
		tend_mctx_pop(c, o2);
	}
	*n = k;
out:
	tend_mctx_pop(c, old);
	return error;
}

char *tend_mctx_concat(tend_arena *a, const char *first, ...)
{
	va_list ap;
	const char *p;
	size_t len = 0;
	char *out, *d;

	va_start(ap, first);
	for (p = first; p; p = va_arg(ap, const char *))
		len += strlen(p);
	va_end(ap);
	if (!(out = d = tend_arena_alloc(a, len + 1)))
		return NULL;
	va_start(ap, first);
	for (p = first; p; p = va_arg(ap, const char *)) {
		size_t n = strlen(p);

		memcpy(d, p, n);
		d += n;
	}
	va_end(ap);
	*d = '\0';
	return out;
}

/* Deep copy of a YAML subtree into the manifest's arena (the documents are
 * freed once parsed; aliases become copies, bounded by the parser's caps). */
tend_yaml_node *tend_mctx_copy_node(tend_arena *a, const tend_yaml_node *n)
{
	tend_yaml_node *c = tend_arena_alloc(a, sizeof(*c));
	size_t i;

	if (!c)
		return NULL;
	*c = *n;
	if (n->value && !(c->value = tend_arena_strndup(a, n->value, n->len)))
		return NULL;
	if (n->tag && !(c->tag = tend_arena_strdup(a, n->tag)))
		return NULL;
	c->items = c->keys = NULL;
	if (n->count) {
		if (!(c->items = tend_arena_alloc(a, n->count * sizeof(*c->items))))
			return NULL;
		if (n->kind == TEND_YAML_MAP &&
		    !(c->keys = tend_arena_alloc(a, n->count * sizeof(*c->keys))))
			return NULL;
		for (i = 0; i < n->count; i++) {
			if (!(c->items[i] = tend_mctx_copy_node(a, n->items[i])))
				return NULL;
			if (n->kind == TEND_YAML_MAP && !(c->keys[i] = tend_mctx_copy_node(a, n->keys[i])))
				return NULL;
		}
	}
	return c;
}

/* Enter an optional sub-mapping: NULL when absent, or when not a mapping (reported). */
const tend_yaml_node *tend_mctx_enter_map(tend_mctx *c, const tend_yaml_node *map, const char *key,
				       int required, const char *const *allowed)
{
	const tend_yaml_node *v = tend_mctx_field(c, map, key, required);
	size_t old;

	if (!v)
		return NULL;
	old = tend_mctx_push(c, key);
	if (tend_mctx_expect_kind(c, v, TEND_YAML_MAP) < 0)
		v = NULL;
	else if (allowed)
		tend_mctx_check_keys(c, v, allowed);
	tend_mctx_pop(c, old);
	return v;
}
