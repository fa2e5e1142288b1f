/* Parsing sops documents into the typed tree: plain YAML scalars typed the
 * way sops's YAML decoder types them, JSON through jansson (insertion order
 * kept), and dotenv lines with sops's flattened metadata keys. */
#include "secrets/sops_priv.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *file;
	const tend_sops_limits *lim;
} pctx;

/* ---- typing plain scalars the way sops's YAML decoder (yaml.v3) does ---- */

/* An integer the way sops reads it: Go's strconv.Atoi for decrypted "int"
 * values (yaml 0), or yaml.v3's plain scalars (yaml 1: underscores dropped,
 * then strconv.ParseInt base 0: 0x, 0o, 0b and a leading 0 for octal). */
int tend_sops_match_int(const char *v, size_t len, long long *out, int yaml)
{
	char buf[72], *end;
	const char *p = buf;
	unsigned long long u;
	size_t i, n = 0;
	int neg = 0, base = 10;

	if (!len || len >= sizeof(buf))
		return 0;
	for (i = 0; i < len; i++)
		if (!(yaml && v[i] == '_'))
			buf[n++] = v[i];
	buf[n] = '\0';
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (yaml && p[0] == '0' && p[1]) {
		if (p[1] == 'x' || p[1] == 'X')
			base = 16, p += 2;
		else if (p[1] == 'o' || p[1] == 'O')
			base = 8, p += 2;
		else if (p[1] == 'b' || p[1] == 'B')
			base = 2, p += 2;
		else
			base = 8, p += 1;
	}
	if (!*p)
		return 0;
	for (i = 0; p[i]; i++) {
		int d = p[i] >= '0' && p[i] <= '9' ? p[i] - '0'
			: p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
			: p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 10 : 99;
		if (d >= base)
			return 0;
	}
	errno = 0;
	u = strtoull(p, &end, base);
	if (errno || *end || u > (unsigned long long)LLONG_MAX + (neg ? 1u : 0u))
		return 0;
	*out = neg ? (u ? -(long long)(u - 1) - 1 : 0) : (long long)u;
	return 1;
}

static int match_float(const char *v, size_t len)
{
	const char *p = v;
	int digits = 0;

	if (!len || len > 64)
		return 0;
	if (*p == '+' || *p == '-')
		p++;
	if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF"))
		return 1;
	if (!strcmp(v, ".nan") || !strcmp(v, ".NaN") || !strcmp(v, ".NAN"))
		return 1;
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++, digits++;
	}
	if (!digits)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

double tend_sops_parse_float(const char *v)
{
	const char *p = v + (*v == '+' || *v == '-');

	if (p[0] == '.' && (p[1] == 'i' || p[1] == 'I'))
		return *v == '-' ? -INFINITY : INFINITY;
	if (p[0] == '.' && (p[1] == 'n' || p[1] == 'N'))
		return NAN;
	return strtod(v, NULL);
}

static tend_sops_kind plain_kind(const char *v, size_t len, char *norm, size_t norm_size)
{
	long long i;

	*norm = '\0';
	if (!len || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"))
		return TEND_SOPS_NULL;
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
		snprintf(norm, norm_size, "true");
		return TEND_SOPS_BOOL;
	}
	if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
		snprintf(norm, norm_size, "false");
		return TEND_SOPS_BOOL;
	}
	if (tend_sops_match_int(v, len, &i, 1)) {
		snprintf(norm, norm_size, "%lld", i);
		return TEND_SOPS_INT;
	}
	if (match_float(v, len))
		return TEND_SOPS_FLOAT;
	return TEND_SOPS_STR;
}

int tend_sops_plain_is_str(const char *v, size_t len)
{
	char norm[64];

	return plain_kind(v, len, norm, sizeof(norm)) == TEND_SOPS_STR;
}

/* ---- converting parsed documents ---- */

static int from_yaml(tend_sops_node **out, const tend_yaml_node *y, unsigned depth, const pctx *c)
{
	tend_sops_node *n;
	size_t i;
	int error;

	if (depth > c->lim->max_depth) {
		tend_error_set("%s:%u:%u: nested deeper than %u levels", c->file, y->line, y->col,
			       c->lim->max_depth);
		return TEND_ELIMIT;
	}
	if (y->kind == TEND_YAML_SCALAR) {
		char norm[64] = "";
		tend_sops_kind k = y->plain && !y->tag ? plain_kind(y->value, y->len, norm, sizeof(norm))
						       : TEND_SOPS_STR;
		if (!(n = tend_sops_node_new(k)))
			return TEND_ERROR;
		if (*norm)
			error = tend_sops_node_set(n, norm, strlen(norm));
		else
			error = tend_sops_node_set(n, y->value, y->len);
	} else {
		if (!(n = tend_sops_node_new(y->kind == TEND_YAML_MAP ? TEND_SOPS_MAP : TEND_SOPS_SEQ)))
			return TEND_ERROR;
		error = 0;
		for (i = 0; i < y->count && !error; i++) {
			tend_sops_node *child;
			if ((error = from_yaml(&child, y->items[i], depth + 1, c)) < 0)
				break;
			error = tend_sops_node_add(n, y->kind == TEND_YAML_MAP ? y->keys[i]->value : NULL,
						   y->kind == TEND_YAML_MAP ? y->keys[i]->len : 0, child);
		}
	}
	n->line = y->line;
	n->col = y->col;
	if (error < 0) {
		tend_sops_node_free(n);
		return error;
	}
	*out = n;
	return 0;
}

static int from_json(tend_sops_node **out, json_t *j, unsigned depth, const pctx *c)
{
	tend_sops_node *n = NULL;
	char num[512];
	int error = 0;

	if (depth > c->lim->max_depth) {
		tend_error_set("%s: nested deeper than %u levels", c->file, c->lim->max_depth);
		return TEND_ELIMIT;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		if (!(n = tend_sops_node_new(TEND_SOPS_MAP)))
			return TEND_ERROR;
		json_object_foreach(j, k, v) {
			tend_sops_node *child;
			if ((error = from_json(&child, v, depth + 1, c)) < 0 ||
			    (error = tend_sops_node_add(n, k, strlen(k), child)) < 0)
				break;
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		if (!(n = tend_sops_node_new(TEND_SOPS_SEQ)))
			return TEND_ERROR;
		json_array_foreach(j, i, v) {
			tend_sops_node *child;
			if ((error = from_json(&child, v, depth + 1, c)) < 0 ||
			    (error = tend_sops_node_add(n, NULL, 0, child)) < 0)
				break;
		}
		break;
	}
	case JSON_STRING:
		if ((n = tend_sops_node_new(TEND_SOPS_STR)))
			error = tend_sops_node_set(n, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		if ((n = tend_sops_node_new(TEND_SOPS_INT)))
			error = tend_sops_node_set(n, num, strlen(num));
		break;
	case JSON_REAL:
		tend_sops_format_float(num, sizeof(num), json_real_value(j));
		if ((n = tend_sops_node_new(TEND_SOPS_FLOAT)))
			error = tend_sops_node_set(n, num, strlen(num));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		if ((n = tend_sops_node_new(TEND_SOPS_BOOL)))
			error = tend_sops_node_set(n, json_is_true(j) ? "true" : "false",
						   json_is_true(j) ? 4 : 5);
		break;
	default:
		n = tend_sops_node_new(TEND_SOPS_NULL);
	}
	if (!n)
		return TEND_ERROR;
	if (error < 0) {
		tend_sops_node_free(n);
		return error;
	}
	*out = n;
	return 0;
}

/* sops's flattened metadata keys (dotenv): age__list_0__map_enc */
static int unflatten_put(tend_sops_node *root, const char *key, const char *value, size_t vlen)
{
	tend_sops_node *cur = root;
	const char *p = key;

	for (;;) {
		const char *m = strstr(p, "__map_"), *l = strstr(p, "__list_"), *next = NULL;
		size_t seg_len;
		tend_sops_node *child = NULL, *existing = NULL;
		tend_sops_kind kind;
		size_t i;

		if (m && (!l || m < l))
			next = m;
		else if (l)
			next = l;
		seg_len = next ? (size_t)(next - p) : strlen(p);
		kind = !next ? TEND_SOPS_STR : next == l ? TEND_SOPS_SEQ : TEND_SOPS_MAP;
		if (cur->kind == TEND_SOPS_MAP) {
			for (i = 0; i < cur->count; i++)
				if (strlen(cur->keys[i]) == seg_len && !memcmp(cur->keys[i], p, seg_len))
					existing = cur->items[i];
		} else {
			unsigned long idx = strtoul(p, NULL, 10);
			if (idx > 1024)
				return TEND_ELIMIT;
			while (cur->count <= idx) {
				tend_sops_node *nul = tend_sops_node_new(TEND_SOPS_NULL);
				if (!nul || tend_sops_node_add(cur, NULL, 0, nul) < 0)
					return TEND_ERROR;
			}
			existing = cur->items[idx];
			if (existing->kind == TEND_SOPS_NULL) {
				if (!(child = tend_sops_node_new(kind)))
					return TEND_ERROR;
				tend_sops_node_free(existing);
				cur->items[idx] = existing = child;
			}
		}
		if (!existing) {
			if (!(existing = tend_sops_node_new(kind)) ||
			    tend_sops_node_add(cur, p, seg_len, existing) < 0)
				return TEND_ERROR;
		}
		if (!next) {
			if (existing->kind != TEND_SOPS_STR)
				return TEND_EINVALID;
			return tend_sops_node_set(existing, value, vlen);
		}
		if (existing->kind != kind)
			return TEND_EINVALID;
		cur = existing;
		p = next + (next == l ? 7 : 6);
	}
}

int tend_sops_parse_dotenv(tend_sops_node **out, tend_sops_node **meta, const char *data, size_t len,
			   const char *file)
{
	tend_sops_node *root = tend_sops_node_new(TEND_SOPS_MAP), *md = tend_sops_node_new(TEND_SOPS_MAP);
	tend_buf val = TEND_BUF_INIT;
	size_t pos = 0;
	unsigned lineno = 0;
	int error = TEND_ERROR;

	if (!root || !md)
		goto out;
	while (pos < len) {
		const char *line = data + pos, *nl = memchr(line, '\n', len - pos), *eq, *s;
		size_t line_len = nl ? (size_t)(nl - line) : len - pos;
		tend_sops_node *n;

		pos += line_len + (nl ? 1 : 0);
		lineno++;
		if (!line_len || line[0] == '#')
			continue;
		if (!(eq = memchr(line, '=', line_len))) {
			tend_error_set("%s:%u:1: invalid dotenv line (no '=')", file, lineno);
			error = TEND_EINVALID;
			goto out;
		}
		tend_buf_clear(&val);
		for (s = eq + 1; s < line + line_len; s++) {
			if (s[0] == '\\' && s + 1 < line + line_len && s[1] == 'n') {
				error = tend_buf_putc(&val, '\n');
				s++;
			} else {
				error = tend_buf_putc(&val, *s);
			}
			if (error < 0)
				goto out;
		}
		if ((size_t)(eq - line) > 5 && !strncmp(line, "sops_", 5)) {
			char *k = strndup(line + 5, (size_t)(eq - line) - 5);
			error = k ? unflatten_put(md, k, val.ptr ? val.ptr : "", val.size) : TEND_ERROR;
			free(k);
			if (error < 0) {
				tend_error_set("%s:%u:1: invalid sops metadata key", file, lineno);
				goto out;
			}
			continue;
		}
		error = TEND_ERROR;
		if (!(n = tend_sops_node_new(TEND_SOPS_STR)) ||
		    tend_sops_node_set(n, val.ptr ? val.ptr : "", val.size) < 0 ||
		    tend_sops_node_add(root, line, (size_t)(eq - line), n) < 0)
			goto out;
		n->line = lineno;
		n->col = (unsigned)(eq - line) + 2;
	}
	*out = root;
	*meta = md;
	root = md = NULL;
	error = 0;
out:
	tend_buf_dispose_secure(&val);
	tend_sops_node_free(root);
	tend_sops_node_free(md);
	return error;
}


int tend_sops_tree_from_yaml(tend_sops_node **out, const tend_yaml_node *root, const char *file,
			     const tend_sops_limits *lim)
{
	pctx c = { file, lim };

	return from_yaml(out, root, 0, &c);
}

int tend_sops_tree_from_json(tend_sops_node **out, json_t *root, const char *file,
			     const tend_sops_limits *lim)
{
	pctx c = { file, lim };

	return from_json(out, root, 0, &c);
}
