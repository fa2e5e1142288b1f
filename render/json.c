/* A fast deterministic JSON writer for rendered outputs: the same text as
 * jansson's json_dumps(JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENSURE_ASCII)
 * (tests compare the two), but writing runs of plain bytes at once, which
 * matters when a host's inputs list ten thousand databases. Reals are written
 * in the shortest form that reads back exactly. */
#include "render/render_int.h"
#include "util/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONES 0x0101010101010101ULL

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80) and its code
 * point, or 0: no overlong forms, surrogates or code points past U+10FFFF. */
static size_t utf8_decode(unsigned *cp, const unsigned char *p, size_t avail)
{
	unsigned c = p[0], v, min;
	size_t n, i;

	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

/* Room for n more bytes (and the NUL) written straight into out->ptr: one
 * check per string instead of one call per byte. The cap, if any, is
 * tend_buf_grow's to enforce. */
static int reserve(tend_buf *out, size_t n)
{
	if (out->size + n < out->asize && (!out->max || out->size + n <= out->max))
		return 0;
	return tend_buf_grow(out, out->size + n);
}

/* ",\n" (or "\n" for the first member) and the indentation of depth */
static int put_sep(tend_buf *out, int comma, unsigned depth)
{
	size_t n = (size_t)depth * 2;
	char *d;
	int error;

	if ((error = reserve(out, n + 2)) < 0)
		return error;
	d = out->ptr + out->size;
	if (comma)
		*d++ = ',';
	*d++ = '\n';
	memset(d, ' ', n);
	d[n] = '\0';
	out->size = (size_t)(d + n - out->ptr);
	return 0;
}

static int put_escaped(tend_buf *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run;
	char seq[16];
	int error;

	if ((error = reserve(out, len + 2)) < 0)
		return error;
	out->ptr[out->size++] = '"';
	for (;;) {
		unsigned cp;
		size_t n;

		run = p;
		/* eight bytes at a time while none needs escaping (a control
		 * character, '"', '\\', or a byte past ASCII) */
		while (end - p >= 8) {
			uint64_t x;

			memcpy(&x, p, 8);
			if (((x - ONES * 0x20) | x | ((x ^ ONES * '"') - ONES) | ((x ^ ONES * '\\') - ONES)) &
			    ONES * 0x80)
				break;
			p += 8;
		}
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		memcpy(out->ptr + out->size, run, (size_t)(p - run));
		out->size += (size_t)(p - run);
		if (p >= end)
			break;
		switch (*p) {
		case '"': memcpy(seq, "\\\"", 3); n = 1; break;
		case '\\': memcpy(seq, "\\\\", 3); n = 1; break;
		case '\b': memcpy(seq, "\\b", 3); n = 1; break;
		case '\f': memcpy(seq, "\\f", 3); n = 1; break;
		case '\n': memcpy(seq, "\\n", 3); n = 1; break;
		case '\r': memcpy(seq, "\\r", 3); n = 1; break;
		case '\t': memcpy(seq, "\\t", 3); n = 1; break;
		default:
			/* A control character or a UTF-8 sequence, checked as strictly
			 * as jansson checks its strings (the streaming writer's strings
			 * do not pass through jansson) */
			if (*p < 0x80) {
				cp = *p;
				n = 1;
			} else if ((n = utf8_decode(&cp, p, (size_t)(end - p))) == 0) {
				out->ptr[out->size] = '\0';
				tend_error_set("invalid UTF-8 in a JSON string");
				return TEND_EINVALID;
			}
			if (cp > 0xFFFF) {
				cp -= 0x10000;
				snprintf(seq, sizeof(seq), "\\u%04X\\u%04X", 0xD800 | (cp >> 10),
					 0xDC00 | (cp & 0x3FF));
			} else {
				snprintf(seq, sizeof(seq), "\\u%04X", cp);
			}
			break;
		}
		p += n;
		/* the escape, and room again for the rest and the closing quote */
		if ((error = reserve(out, strlen(seq) + (size_t)(end - p) + 1)) < 0)
			return error;
		memcpy(out->ptr + out->size, seq, strlen(seq));
		out->size += strlen(seq);
	}
	out->ptr[out->size++] = '"';
	out->ptr[out->size] = '\0';
	return 0;
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
	int error;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	if ((error = reserve(out, (size_t)(num + sizeof(num) - p))) < 0)
		return error;
	memcpy(out->ptr + out->size, p, (size_t)(num + sizeof(num) - p));
	out->size += (size_t)(num + sizeof(num) - p);
	out->ptr[out->size] = '\0';
	return 0;
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
			if ((i && (error = tend_buf_putc(out, ',')) < 0) || (error = put_sep(out, 0, depth + 1)) < 0 ||
			    (error = put_escaped(out, members[i].key, strlen(members[i].key))) < 0 ||
			    (error = tend_buf_put(out, ": ", 2)) < 0)
				break;
			error = write_value(out, members[i].value, depth + 1);
		}
		if (members != small)
			free(members);
		if (!error && !(error = put_sep(out, 0, depth)))
			error = tend_buf_putc(out, '}');
		return error;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v), i;

		if (!n)
			return tend_buf_puts(out, "[]");
		error = tend_buf_putc(out, '[');
		for (i = 0; i < n && !error; i++) {
			if ((i && (error = tend_buf_putc(out, ',')) < 0) || (error = put_sep(out, 0, depth + 1)) < 0)
				break;
			error = write_value(out, json_array_get(v, i), depth + 1);
		}
		if (!error && !(error = put_sep(out, 0, depth)))
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

/* ---- streaming --------------------------------------------------------- */

void tend_jw_init(tend_jw *w, tend_buf *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
}

/* The separator and indentation before an array item (object members get
 * theirs from tend_jw_key). */
static int jw_before_value(tend_jw *w)
{
	tend_jw_level *l;

	if (w->error)
		return w->error;
	if (!w->depth)
		return 0;
	l = &w->lv[w->depth - 1];
	if (l->obj) {
		if (!l->key_pending) {
			tend_error_set("render: a JSON object member without a key");
			return w->error = TEND_ERROR;
		}
		l->key_pending = 0;
		return 0;
	}
	return w->error = put_sep(w->out, l->n++ != 0, w->depth);
}

void tend_jw_key(tend_jw *w, const char *key)
{
	tend_jw_level *l;
	size_t klen;

	if (w->error)
		return;
	l = w->depth ? &w->lv[w->depth - 1] : NULL;
	if (!l || !l->obj || l->key_pending) {
		tend_error_set("render: a JSON key outside an object");
		w->error = TEND_ERROR;
		return;
	}
	/* the bytes json_dumps(JSON_SORT_KEYS) writes: members sorted by
	 * strcmp, each key once; a writer out of order is a bug, not output */
	if (l->n && strcmp(l->key, key) >= 0) {
		tend_error_set("render: JSON key '%s' written after '%s'", key, l->key);
		w->error = TEND_ERROR;
		return;
	}
	klen = strlen(key);
	if ((w->error = put_sep(w->out, l->n++ != 0, w->depth)) < 0 ||
	    (w->error = put_escaped(w->out, key, klen)) < 0 ||
	    (w->error = reserve(w->out, 2)) < 0)
		return;
	memcpy(w->out->ptr + w->out->size, ": ", 3);   /* with the NUL */
	w->out->size += 2;
	l->key = key;
	l->key_pending = 1;
}

void tend_jw_key_plain(tend_jw *w, const char *key, size_t klen)
{
	tend_jw_level *l;
	size_t n;
	char *d;

	if (w->error)
		return;
	l = w->depth ? &w->lv[w->depth - 1] : NULL;
	if (!l || !l->obj || l->key_pending) {
		tend_error_set("render: a JSON key outside an object");
		w->error = TEND_ERROR;
		return;
	}
	if (l->n && strcmp(l->key, key) >= 0) {
		tend_error_set("render: JSON key '%s' written after '%s'", key, l->key);
		w->error = TEND_ERROR;
		return;
	}
	/* ",\n", the indentation, the quoted key and ": " in one piece */
	n = (size_t)w->depth * 2;
	if ((w->error = reserve(w->out, n + klen + 6)) < 0)
		return;
	d = w->out->ptr + w->out->size;
	if (l->n++)
		*d++ = ',';
	*d++ = '\n';
	memset(d, ' ', n);
	d += n;
	*d++ = '"';
	memcpy(d, key, klen);
	d += klen;
	memcpy(d, "\": ", 4);   /* with the NUL */
	w->out->size = (size_t)(d + 3 - w->out->ptr);
	l->key = key;
	l->key_pending = 1;
}

static void jw_open(tend_jw *w, int obj)
{
	if (jw_before_value(w) < 0)
		return;
	if (w->depth >= TEND_JW_MAX_DEPTH) {
		tend_error_set("JSON document nested too deeply");
		w->error = TEND_ELIMIT;
		return;
	}
	memset(&w->lv[w->depth], 0, sizeof(w->lv[w->depth]));
	w->lv[w->depth++].obj = obj;
	if ((w->error = reserve(w->out, 1)) == 0) {
		w->out->ptr[w->out->size++] = obj ? '{' : '[';
		w->out->ptr[w->out->size] = '\0';
	}
}

void tend_jw_obj(tend_jw *w)
{
	jw_open(w, 1);
}

void tend_jw_arr(tend_jw *w)
{
	jw_open(w, 0);
}

void tend_jw_end(tend_jw *w)
{
	tend_jw_level *l;

	if (w->error)
		return;
	l = w->depth ? &w->lv[w->depth - 1] : NULL;
	if (!l || l->key_pending) {
		tend_error_set("render: unbalanced JSON writer");
		w->error = TEND_ERROR;
		return;
	}
	w->depth--;
	if ((l->n && (w->error = put_sep(w->out, 0, w->depth)) < 0) || (w->error = reserve(w->out, 1)) < 0)
		return;
	w->out->ptr[w->out->size++] = l->obj ? '}' : ']';
	w->out->ptr[w->out->size] = '\0';
}

void tend_jw_strn(tend_jw *w, const char *s, size_t len)
{
	if (jw_before_value(w) == 0)
		w->error = put_escaped(w->out, s, len);
}

void tend_jw_str(tend_jw *w, const char *s)
{
	if (!s) {   /* a required string missing: the model was not validated */
		if (!w->error) {
			tend_error_set("render: a required value is missing");
			w->error = TEND_EINVALID;
		}
		return;
	}
	tend_jw_strn(w, s, strlen(s));
}

void tend_jw_str_or_null(tend_jw *w, const char *s)
{
	if (s)
		tend_jw_strn(w, s, strlen(s));
	else
		tend_jw_null(w);
}

void tend_jw_int(tend_jw *w, long long v)
{
	if (jw_before_value(w) == 0)
		w->error = put_integer(w->out, (json_int_t)v);
}

void tend_jw_real(tend_jw *w, double v)
{
	if (jw_before_value(w) == 0)
		w->error = put_real(w->out, v);
}

void tend_jw_bool(tend_jw *w, int v)
{
	if (jw_before_value(w) == 0)
		w->error = v ? tend_buf_put(w->out, "true", 4) : tend_buf_put(w->out, "false", 5);
}

void tend_jw_null(tend_jw *w)
{
	if (jw_before_value(w) == 0)
		w->error = tend_buf_put(w->out, "null", 4);
}

void tend_jw_str_array(tend_jw *w, char *const *items, size_t n)
{
	size_t i;

	tend_jw_arr(w);
	for (i = 0; i < n; i++)
		tend_jw_str(w, items[i]);
	tend_jw_end(w);
}

int tend_jw_finish(tend_jw *w)
{
	if (!w->error && w->depth) {
		tend_error_set("render: unbalanced JSON writer");
		w->error = TEND_ERROR;
	}
	if (!w->error)
		w->error = tend_buf_putc(w->out, '\n');
	return w->error;
}
