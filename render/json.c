/* A fast deterministic JSON writer for rendered outputs: the same text as
 * jansson's json_dumps(JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENSURE_ASCII)
 * (tests compare the two), but writing runs of plain bytes at once, which
 * matters when a host's inputs list ten thousand databases. Reals are written
 * in the shortest form that reads back exactly. */
#include "render/render_int.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put_escaped(tend_buf *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run;
	char seq[16];
	int error = tend_buf_putc(out, '"');

	while (!error && p < end) {
		unsigned cp;
		size_t n;

		for (run = p; p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\'; p++)
			;
		if (p > run && (error = tend_buf_put(out, run, (size_t)(p - run))) < 0)
			break;
		if (p >= end)
			break;
		switch (*p) {
		case '"': error = tend_buf_puts(out, "\\\""); p++; continue;
		case '\\': error = tend_buf_puts(out, "\\\\"); p++; continue;
		case '\b': error = tend_buf_puts(out, "\\b"); p++; continue;
		case '\f': error = tend_buf_puts(out, "\\f"); p++; continue;
		case '\n': error = tend_buf_puts(out, "\\n"); p++; continue;
		case '\r': error = tend_buf_puts(out, "\\r"); p++; continue;
		case '\t': error = tend_buf_puts(out, "\\t"); p++; continue;
		default: break;
		}
		/* A control character or a UTF-8 sequence (jansson strings are valid UTF-8). */
		if (*p < 0x80) {
			cp = *p;
			n = 1;
		} else if ((*p & 0xE0) == 0xC0 && p + 1 < end) {
			cp = ((unsigned)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
			n = 2;
		} else if ((*p & 0xF0) == 0xE0 && p + 2 < end) {
			cp = ((unsigned)(p[0] & 0x0F) << 12) | ((unsigned)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
			n = 3;
		} else if ((*p & 0xF8) == 0xF0 && p + 3 < end) {
			cp = ((unsigned)(p[0] & 0x07) << 18) | ((unsigned)(p[1] & 0x3F) << 12) |
			     ((unsigned)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
			n = 4;
		} else {
			tend_error_set("invalid UTF-8 in a JSON string");
			return TEND_EINVALID;
		}
		if (cp > 0xFFFF) {
			cp -= 0x10000;
			snprintf(seq, sizeof(seq), "\\u%04X\\u%04X", 0xD800 | (cp >> 10), 0xDC00 | (cp & 0x3FF));
		} else {
			snprintf(seq, sizeof(seq), "\\u%04X", cp);
		}
		error = tend_buf_puts(out, seq);
		p += n;
	}
	return error ? error : tend_buf_putc(out, '"');
}

static int put_real(tend_buf *out, double v)
{
	char num[64], *e;
	int prec;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(num, sizeof(num), "%.*g", prec, v);
		if (strtod(num, NULL) == v)
			break;
	}
	if (!strpbrk(num, ".eE"))
		strcat(num, ".0");
	/* "1e+20" -> "1e20", "1e-05" -> "1e-5", as jansson writes exponents. */
	if ((e = strpbrk(num, "eE"))) {
		char *d = e + 1, *src;

		if (*d == '+')
			memmove(d, d + 1, strlen(d));
		if (*d == '-')
			d++;
		for (src = d; *src == '0' && src[1]; src++)
			;
		if (src != d)
			memmove(d, src, strlen(src) + 1);
	}
	return tend_buf_puts(out, num);
}

static int put_indent(tend_buf *out, unsigned depth)
{
	static const char spaces[] = "\n                                                                ";
	unsigned n = depth * 2;

	if (n + 1 < sizeof(spaces))
		return tend_buf_put(out, spaces, n + 1);
	if (tend_buf_putc(out, '\n') < 0)
		return TEND_ERROR;
	while (n--)
		if (tend_buf_putc(out, ' ') < 0)
			return TEND_ERROR;
	return 0;
}

typedef struct {
	const char *key;
	const json_t *value;
} member;

static int cmp_member(const void *a, const void *b)
{
	return strcmp(((const member *)a)->key, ((const member *)b)->key);
}

/* A JSON integer without printf (a host's inputs hold thousands of ports). */
static int put_integer(tend_buf *out, json_int_t v)
{
	char num[24], *p = num + sizeof(num);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return tend_buf_put(out, p, (size_t)(num + sizeof(num) - p));
}

static int write_value(tend_buf *out, const json_t *v, unsigned depth)
{
	int error = 0;

	if (depth > 256) {
		tend_error_set("JSON document nested too deeply");
		return TEND_ELIMIT;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		member small[16], *members = small;   /* most objects are small */
		const char *k;
		json_t *item;

		if (!n)
			return tend_buf_puts(out, "{}");
		if (n > sizeof(small) / sizeof(small[0]) && !(members = malloc(n * sizeof(*members)))) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		/* keys and values together: no hash lookup per key after sorting */
		json_object_foreach((json_t *)v, k, item) {
			members[i].key = k;
			members[i++].value = item;
		}
		if (n > 1)
			qsort(members, n, sizeof(*members), cmp_member);
		error = tend_buf_putc(out, '{');
		for (i = 0; i < n && !error; i++) {
			if ((i && (error = tend_buf_putc(out, ',')) < 0) || (error = put_indent(out, depth + 1)) < 0 ||
			    (error = put_escaped(out, members[i].key, strlen(members[i].key))) < 0 ||
			    (error = tend_buf_put(out, ": ", 2)) < 0)
				break;
			error = write_value(out, members[i].value, depth + 1);
		}
		if (members != small)
			free(members);
		if (!error && !(error = put_indent(out, depth)))
			error = tend_buf_putc(out, '}');
		return error;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v), i;

		if (!n)
			return tend_buf_puts(out, "[]");
		error = tend_buf_putc(out, '[');
		for (i = 0; i < n && !error; i++) {
			if ((i && (error = tend_buf_putc(out, ',')) < 0) || (error = put_indent(out, depth + 1)) < 0)
				break;
			error = write_value(out, json_array_get(v, i), depth + 1);
		}
		if (!error && !(error = put_indent(out, depth)))
			error = tend_buf_putc(out, ']');
		return error;
	}
	case JSON_STRING:
		return put_escaped(out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return put_integer(out, json_integer_value(v));
	case JSON_REAL:
		return put_real(out, json_real_value(v));
	case JSON_TRUE:
		return tend_buf_puts(out, "true");
	case JSON_FALSE:
		return tend_buf_puts(out, "false");
	case JSON_NULL:
		return tend_buf_puts(out, "null");
	}
	return 0;
}

int tend_render_json_dump(char **out, size_t *len, const json_t *doc)
{
	tend_buf b = TEND_BUF_INIT;
	int error;

	if ((error = write_value(&b, doc, 0)) < 0 || (error = tend_buf_putc(&b, '\n')) < 0) {
		tend_buf_dispose(&b);
		return error;
	}
	*len = b.size;
	*out = tend_buf_detach(&b);
	return 0;
}
