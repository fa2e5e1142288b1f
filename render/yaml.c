/* JSON <-> YAML for rendering: a small deterministic block-style YAML emitter
 * for the Traefik file provider (sorted keys, every string double-quoted so no
 * value can change type), and YAML nodes (service settings) typed into JSON. */
#include "render/render_int.h"
#include "util/error.h"
#include "util/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- emitter ---------------------------------------------------------- */

static int put_indent(tend_buf *out, unsigned indent)
{
	static const char spaces[] = "                                ";
	int error = 0;

	while (indent > 0 && !error) {
		unsigned n = indent > 32 ? 32 : indent;
		error = tend_buf_put(out, spaces, n);
		indent -= n;
	}
	return error;
}

/* A YAML double-quoted scalar; the JSON escapes are a subset of YAML's. */
int tend_render_yaml_put_quoted(tend_buf *out, const char *s, size_t len)
{
	size_t i;
	int error;

	if ((error = tend_buf_putc(out, '"')) < 0)
		return error;
	for (i = 0; i < len && !error; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t run = i;

		while (run < len && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\' &&
		       s[run] != 0x7f)
			run++;
		if (run > i) {   /* plain bytes in one go */
			error = tend_buf_put(out, s + i, run - i);
			i = run - 1;
			continue;
		}
		switch (c) {
		case '"': error = tend_buf_puts(out, "\\\""); break;
		case '\\': error = tend_buf_puts(out, "\\\\"); break;
		case '\n': error = tend_buf_puts(out, "\\n"); break;
		case '\t': error = tend_buf_puts(out, "\\t"); break;
		case '\r': error = tend_buf_puts(out, "\\r"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				error = tend_buf_printf(out, "\\x%02x", c);
			else
				error = tend_buf_putc(out, (char)c);
		}
	}
	return error ? error : tend_buf_putc(out, '"');
}

static int key_needs_quotes(const char *k)
{
	static const char *const reserved[] = {
		"y", "n", "yes", "no", "on", "off", "true", "false", "null", NULL
	};
	const char *p;
	size_t i;

	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
		return 1;
	for (p = k; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return 1;
	if (p - k > 5)          /* longer than any reserved word */
		return 0;
	for (i = 0; reserved[i]; i++)
		if (!strcasecmp(k, reserved[i]))
			return 1;
	return 0;
}

int tend_render_yaml_put_key(tend_buf *out, const char *k)
{
	int error;

	if (key_needs_quotes(k))
		error = tend_render_yaml_put_quoted(out, k, strlen(k));
	else
		error = tend_buf_puts(out, k);
	return error ? error : tend_buf_putc(out, ':');
}

static int put_scalar(tend_buf *out, const json_t *v)
{
	char num[64];

	switch (json_typeof(v)) {
	case JSON_STRING:
		return tend_render_yaml_put_quoted(out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER: {   /* without printf: a routes file holds thousands */
		char *p = num + sizeof(num);
		json_int_t x = json_integer_value(v);
		unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;

		do {
			*--p = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (x < 0)
			*--p = '-';
		return tend_buf_put(out, p, (size_t)(num + sizeof(num) - p));
	}
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.15g", json_real_value(v));
		if (!strpbrk(num, ".eE"))
			strcat(num, ".0");
		return tend_buf_puts(out, num);
	case JSON_TRUE:
		return tend_buf_puts(out, "true");
	case JSON_FALSE:
		return tend_buf_puts(out, "false");
	case JSON_NULL:
		return tend_buf_puts(out, "null");
	case JSON_OBJECT:
		return tend_buf_puts(out, "{}");
	case JSON_ARRAY:
		return tend_buf_puts(out, "[]");
	}
	return 0;
}

static int is_block(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v));
}

typedef struct {
	const char *key;
	const json_t *value;
} member;

static int cmp_member(const void *a, const void *b)
{
	return strcmp(((const member *)a)->key, ((const member *)b)->key);
}

static int emit(tend_buf *out, const json_t *v, unsigned indent, int inline_first, unsigned depth);

static int emit_object(tend_buf *out, const json_t *obj, unsigned indent, int inline_first,
		       unsigned depth)
{
	size_t n = json_object_size(obj), i = 0;
	member small[16], *members = small;   /* most objects are small */
	const char *k;
	json_t *val;
	int error = 0;

	if (n > sizeof(small) / sizeof(small[0]) && !(members = malloc(n * sizeof(*members)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	/* keys with their values: no lookup per key once sorted */
	json_object_foreach((json_t *)obj, k, val) {
		members[i].key = k;
		members[i++].value = val;
	}
	if (n > 1)
		qsort(members, n, sizeof(*members), cmp_member);
	for (i = 0; i < n && !error; i++) {
		const json_t *v = members[i].value;

		if (!(i == 0 && inline_first))
			error = put_indent(out, indent);
		if (!error)
			error = tend_render_yaml_put_key(out, members[i].key);
		if (error)
			break;
		if (is_block(v)) {
			error = tend_buf_putc(out, '\n');
			if (!error)
				error = emit(out, v, indent + 2, 0, depth + 1);
		} else {
			error = tend_buf_putc(out, ' ');
			if (!error)
				error = put_scalar(out, v);
			if (!error)
				error = tend_buf_putc(out, '\n');
		}
	}
	if (members != small)
		free(members);
	return error;
}

static int emit_array(tend_buf *out, const json_t *arr, unsigned indent, int inline_first,
		      unsigned depth)
{
	size_t i;
	int error = 0;

	for (i = 0; i < json_array_size(arr) && !error; i++) {
		const json_t *val = json_array_get(arr, i);

		if (!(i == 0 && inline_first))
			error = put_indent(out, indent);
		if (!error)
			error = tend_buf_puts(out, "- ");
		if (error)
			break;
		if (is_block(val))
			error = emit(out, val, indent + 2, 1, depth + 1);
		else if (!(error = put_scalar(out, val)))
			error = tend_buf_putc(out, '\n');
	}
	return error;
}

static int emit(tend_buf *out, const json_t *v, unsigned indent, int inline_first, unsigned depth)
{
	if (depth > 64) {
		tend_error_set("document nested too deeply for YAML output");
		return TEND_ELIMIT;
	}
	if (json_is_object(v))
		return emit_object(out, v, indent, inline_first, depth);
	if (json_is_array(v))
		return emit_array(out, v, indent, inline_first, depth);
	return TEND_ERROR;
}

int tend_render_yaml_emit(tend_buf *out, const json_t *doc)
{
	int error;

	if (!is_block(doc)) {
		if ((error = put_scalar(out, doc)) < 0)
			return error;
		return tend_buf_putc(out, '\n');
	}
	return emit(out, doc, 0, 0, 0);
}

/* ---- YAML nodes to JSON (YAML 1.2 core schema for plain scalars) ------ */

static int all_in(const char *s, const char *set)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!strchr(set, *s))
			return 0;
	return 1;
}

static json_t *string_node(const tend_yaml_node *n)
{
	json_t *v = json_stringn(n->value, n->len);

	if (!v)
		tend_error_set("line %u, column %u: value is not valid UTF-8", n->line, n->col);
	return v;
}

/* What a scalar is in JSON: one classification for the document builder
 * and the streaming writer, so both type every value the same way. */
typedef enum { SC_STRING, SC_NULL, SC_TRUE, SC_FALSE, SC_INT, SC_REAL, SC_FAIL } scalar_kind;

static scalar_kind classify_plain(const tend_yaml_node *n, long long *ll_out, double *d_out)
{
	const char *s = n->value;
	const char *digits = s + (*s == '-' || *s == '+');
	long long ll;
	char *end;

	if (tend_yaml_is_null(n))
		return SC_NULL;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return SC_TRUE;
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return SC_FALSE;
	if (all_in(digits, "0123456789") ||
	    (!strncmp(s, "0x", 2) && all_in(s + 2, "0123456789abcdefABCDEF")) ||
	    (!strncmp(s, "0o", 2) && all_in(s + 2, "01234567"))) {
		errno = 0;
		if (!strncmp(s, "0o", 2))
			ll = strtoll(s + 2, &end, 8);
		else
			ll = strtoll(s, &end, !strncmp(s, "0x", 2) ? 16 : 10);
		if (errno == 0 && *end == '\0') {
			*ll_out = ll;
			return SC_INT;
		}
		return SC_STRING;   /* too large for an integer: keep the text */
	}
	/* [-+]? ( . digits | digits [. digits*] ) ( [eE] [-+]? digits )? */
	{
		const char *p = digits;
		int mant = 0;
		double d;

		while (*p >= '0' && *p <= '9') { p++; mant = 1; }
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9') { p++; mant = 1; }
		}
		if (mant && (*p == 'e' || *p == 'E')) {
			p++;
			if (*p == '-' || *p == '+')
				p++;
			if (!(*p >= '0' && *p <= '9'))
				mant = 0;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		if (mant && *p == '\0' && (strchr(s, '.') || strpbrk(s, "eE"))) {
			d = strtod(s, NULL);
			if (isfinite(d)) {
				*d_out = d;
				return SC_REAL;
			}
		}
		if (!strcasecmp(digits, ".inf") || !strcasecmp(s, ".nan")) {
			tend_error_set("line %u, column %u: '%s' has no JSON form", n->line, n->col, s);
			return SC_FAIL;
		}
	}
	return SC_STRING;
}

static scalar_kind classify(const tend_yaml_node *n, long long *ll, double *d)
{
	if (!n->plain || (n->tag && (!strcmp(n->tag, "tag:yaml.org,2002:str") || !strcmp(n->tag, "!!str"))))
		return SC_STRING;
	return classify_plain(n, ll, d);
}

static json_t *to_json(const tend_yaml_node *n, unsigned depth)
{
	json_t *v = NULL, *item;
	size_t i;

	if (depth > 64) {
		tend_error_set("line %u, column %u: nested too deeply", n->line, n->col);
		return NULL;
	}
	switch (n->kind) {
	case TEND_YAML_SCALAR: {
		long long ll = 0;
		double d = 0;

		switch (classify(n, &ll, &d)) {
		case SC_NULL: return json_null();
		case SC_TRUE: return json_true();
		case SC_FALSE: return json_false();
		case SC_INT: return json_integer(ll);
		case SC_REAL: return json_real(d);
		case SC_FAIL: return NULL;
		case SC_STRING: break;
		}
		return string_node(n);
	}
	case TEND_YAML_SEQ:
		if (!(v = json_array()))
			return NULL;
		for (i = 0; i < n->count; i++) {
			if (!(item = to_json(n->items[i], depth + 1)) || json_array_append_new(v, item) < 0) {
				json_decref(v);
				return NULL;
			}
		}
		return v;
	case TEND_YAML_MAP:
		if (!(v = json_object()))
			return NULL;
		for (i = 0; i < n->count; i++) {
			const tend_yaml_node *k = n->keys[i];

			if (strlen(k->value) != k->len) {
				tend_error_set("line %u, column %u: key contains a NUL byte", k->line, k->col);
				json_decref(v);
				return NULL;
			}
			if (!(item = to_json(n->items[i], depth + 1))) {
				json_decref(v);
				return NULL;
			}
			if (json_object_set_new(v, k->value, item) < 0) {
				tend_error_set("line %u, column %u: key is not valid UTF-8", k->line, k->col);
				json_decref(v);
				return NULL;
			}
		}
		return v;
	}
	return NULL;
}

json_t *tend_render_yaml_to_json(const tend_yaml_node *node)
{
	if (!node)
		return json_null();
	return to_json(node, 0);
}

/* ---- YAML nodes streamed as JSON ---------------------------------------- */

/* Mapping keys in strcmp order (the order json_dumps sorts them in); keys
 * are distinct, the parser refuses duplicates. */
static void sort_keys(size_t *ix, const tend_yaml_node *map)
{
	size_t i, j;

	for (i = 0; i < map->count; i++) {
		size_t x = ix[i];

		for (j = i; j > 0 && strcmp(map->keys[ix[j - 1]]->value, map->keys[x]->value) > 0; j--)
			ix[j] = ix[j - 1];
		ix[j] = x;
	}
}

static int key_cmp_ix(const void *a, const void *b, void *ctx)
{
	const tend_yaml_node *map = ctx;

	return strcmp(map->keys[*(const size_t *)a]->value, map->keys[*(const size_t *)b]->value);
}

static int write_json(tend_jw *w, const tend_yaml_node *n, unsigned depth)
{
	size_t i, small[16], *ix = small;
	long long ll = 0;
	double d = 0;

	if (depth > 64)
		return TEND_EINVALID;
	switch (n->kind) {
	case TEND_YAML_SCALAR:
		switch (classify(n, &ll, &d)) {
		case SC_NULL: tend_jw_null(w); break;
		case SC_TRUE: tend_jw_bool(w, 1); break;
		case SC_FALSE: tend_jw_bool(w, 0); break;
		case SC_INT: tend_jw_int(w, ll); break;
		case SC_REAL: tend_jw_real(w, d); break;
		case SC_FAIL: return TEND_EINVALID;
		case SC_STRING: tend_jw_strn(w, n->value, n->len); break;
		}
		return w->error;
	case TEND_YAML_SEQ:
		tend_jw_arr(w);
		for (i = 0; i < n->count && !w->error; i++)
			if (write_json(w, n->items[i], depth + 1) < 0)
				return w->error ? w->error : TEND_EINVALID;
		tend_jw_end(w);
		return w->error;
	case TEND_YAML_MAP:
		for (i = 0; i < n->count; i++)
			if (strlen(n->keys[i]->value) != n->keys[i]->len)
				return TEND_EINVALID;
		if (n->count > sizeof(small) / sizeof(small[0]) && !(ix = malloc(n->count * sizeof(*ix)))) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		for (i = 0; i < n->count; i++)
			ix[i] = i;
		if (ix == small)
			sort_keys(ix, n);
		else
			qsort_r(ix, n->count, sizeof(*ix), key_cmp_ix, (void *)n);
		tend_jw_obj(w);
		for (i = 0; i < n->count && !w->error; i++) {
			tend_jw_key(w, n->keys[ix[i]]->value);
			if (write_json(w, n->items[ix[i]], depth + 1) < 0) {
				if (!w->error)
					w->error = TEND_EINVALID;
				break;
			}
		}
		if (ix != small)
			free(ix);
		tend_jw_end(w);
		return w->error;
	}
	return TEND_EINVALID;
}

int tend_render_yaml_write_json(tend_jw *w, const tend_yaml_node *node)
{
	json_t *v;
	int error;

	if (!node) {
		tend_jw_null(w);
		return w->error;
	}
	if ((error = write_json(w, node, 0)) < 0 && error != TEND_ERROR && error != TEND_ELIMIT) {
		/* the message and its position: what building the document says */
		if ((v = tend_render_yaml_to_json(node)))
			json_decref(v);
		else
			error = TEND_EINVALID;
		w->error = error;
	}
	return error;
}
