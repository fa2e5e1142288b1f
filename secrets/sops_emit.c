/* The decrypted sops tree: nodes (wiped on free), --extract paths, and output
 * in the document's own format: YAML through libyaml's emitter, JSON through
 * jansson, dotenv lines, or the raw data of a binary file. */
#include "secrets/sops_priv.h"
#include "util/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>
#include <yaml.h>

tend_sops_node *tend_sops_node_new(tend_sops_kind kind)
{
	tend_sops_node *n = calloc(1, sizeof(*n));

	if (!n) {
		tend_error_set("out of memory");
		return NULL;
	}
	n->kind = kind;
	return n;
}

void tend_sops_node_free(tend_sops_node *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->count; i++) {
		if (n->keys)
			free(n->keys[i]);
		tend_sops_node_free(n->items[i]);
	}
	free(n->keys);
	free(n->items);
	if (n->value) {
		sodium_memzero(n->value, n->len);
		free(n->value);
	}
	free(n);
}

int tend_sops_node_set(tend_sops_node *n, const char *value, size_t len)
{
	char *v = malloc(len + 1);

	if (!v) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	memcpy(v, value, len);
	v[len] = '\0';
	if (n->value) {
		sodium_memzero(n->value, n->len);
		free(n->value);
	}
	n->value = v;
	n->len = len;
	return 0;
}

int tend_sops_node_add(tend_sops_node *n, const char *key, size_t key_len, tend_sops_node *child)
{
	tend_sops_node **items;
	char **keys;

	if (!(items = realloc(n->items, (n->count + 1) * sizeof(*items))))
		goto oom;
	n->items = items;
	if (n->kind == TEND_SOPS_MAP) {
		if (!(keys = realloc(n->keys, (n->count + 1) * sizeof(*keys))))
			goto oom;
		n->keys = keys;
		if (!(keys[n->count] = strndup(key ? key : "", key_len)))
			goto oom;
	}
	items[n->count++] = child;
	return 0;
oom:
	tend_sops_node_free(child);
	tend_error_set("out of memory");
	return TEND_ERROR;
}

const tend_sops_node *tend_sops_map_get(const tend_sops_node *map, const char *key)
{
	size_t i;

	if (!map || map->kind != TEND_SOPS_MAP)
		return NULL;
	for (i = 0; i < map->count; i++)
		if (!strcmp(map->keys[i], key))
			return map->items[i];
	return NULL;
}

void tend_sops_doc_free(tend_sops_doc *doc)
{
	size_t i;

	if (!doc)
		return;
	tend_sops_node_free(doc->root);
	for (i = 0; doc->recipients && doc->recipients[i]; i++)
		free(doc->recipients[i]);
	free(doc->recipients);
	free(doc);
}

tend_sops_format tend_sops_doc_format(const tend_sops_doc *doc)
{
	return doc->format;
}

const tend_sops_node *tend_sops_doc_root(const tend_sops_doc *doc)
{
	return doc->root;
}

const char *const *tend_sops_doc_recipients(const tend_sops_doc *doc)
{
	static const char *const none[] = { NULL };

	return doc->recipients ? (const char *const *)doc->recipients : none;
}

void tend_sops_format_float(char *out, size_t out_size, double v)
{
	char e[64], digits[32];
	int p, exp, nd = 0, i;
	const char *s;
	tend_buf b = TEND_BUF_INIT;

	if (isnan(v)) {
		snprintf(out, out_size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, out_size, "%sInf", v < 0 ? "-" : "+");
		return;
	}
	if (v == 0) {
		snprintf(out, out_size, "%s", signbit(v) ? "-0" : "0");
		return;
	}
	/* the shortest precision that reads back as the same double */
	for (p = 1; p <= 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p - 1, v);
		if (strtod(e, NULL) == v)
			break;
	}
	for (s = e; *s && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9')
			digits[nd++] = *s;
	digits[nd] = '\0';
	exp = atoi(s + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = '\0';
	if (v < 0)
		tend_buf_putc(&b, '-');
	if (exp < 0) {
		tend_buf_puts(&b, "0.");
		for (i = 0; i < -exp - 1; i++)
			tend_buf_putc(&b, '0');
		tend_buf_puts(&b, digits);
	} else if (exp + 1 >= nd) {
		tend_buf_puts(&b, digits);
		for (i = 0; i < exp + 1 - nd; i++)
			tend_buf_putc(&b, '0');
	} else {
		tend_buf_put(&b, digits, (size_t)exp + 1);
		tend_buf_putc(&b, '.');
		tend_buf_puts(&b, digits + exp + 1);
	}
	snprintf(out, out_size, "%s", b.ptr ? b.ptr : "0");
	tend_buf_dispose(&b);
}

int tend_sops_extract(const tend_sops_node **out, const tend_sops_doc *doc, const char *path)
{
	const tend_sops_node *cur = doc->root;
	const char *p = path;
	char step[512];

	while (*p) {
		size_t n;
		if (*p != '[')
			goto bad;
		p++;
		if (*p == '"' || *p == '\'') {
			char q = *p++;
			const char *end = strchr(p, q);
			if (!end || end[1] != ']' || (size_t)(end - p) >= sizeof(step))
				goto bad;
			n = (size_t)(end - p);
			memcpy(step, p, n);
			step[n] = '\0';
			p = end + 2;
			if (!(cur = tend_sops_map_get(cur, step))) {
				tend_error_set("--extract %s: no key \"%s\"", path, step);
				return TEND_ENOTFOUND;
			}
		} else if (*p >= '0' && *p <= '9') {
			char *end;
			unsigned long idx = strtoul(p, &end, 10);
			if (*end != ']')
				goto bad;
			p = end + 1;
			if (cur->kind != TEND_SOPS_SEQ || idx >= cur->count) {
				tend_error_set("--extract %s: no item [%lu]", path, idx);
				return TEND_ENOTFOUND;
			}
			cur = cur->items[idx];
		} else {
			goto bad;
		}
	}
	*out = cur;
	return 0;
bad:
	tend_error_set("--extract %s: invalid path (expected [\"key\"] or [index] steps)", path);
	return TEND_EINVALID;
}

/* ---- YAML ---- */

static int yaml_write(void *data, unsigned char *buffer, size_t size)
{
	return tend_buf_put(data, buffer, size) == 0;
}

static int yaml_scalar(yaml_emitter_t *em, tend_sops_kind kind, const char *v, size_t len)
{
	yaml_event_t ev;
	int plain_ok = 1;
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;

	if (kind == TEND_SOPS_NULL) {
		v = "null";
		len = 4;
	} else if (kind == TEND_SOPS_STR || kind == TEND_SOPS_BYTES) {
		/* a string that would read back as another type is quoted */
		plain_ok = strlen(v) == len && tend_sops_plain_is_str(v, len);
		if (memchr(v, '\n', len))
			style = YAML_LITERAL_SCALAR_STYLE;
	}
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)len, plain_ok, 1, style))
		return -1;
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int yaml_node(yaml_emitter_t *em, const tend_sops_node *n)
{
	yaml_event_t ev;
	size_t i;

	if (n->kind == TEND_SOPS_MAP) {
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		for (i = 0; i < n->count; i++)
			if (yaml_scalar(em, TEND_SOPS_STR, n->keys[i], strlen(n->keys[i])) < 0 ||
			    yaml_node(em, n->items[i]) < 0)
				return -1;
		return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev) ? 0 : -1;
	}
	if (n->kind == TEND_SOPS_SEQ) {
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		for (i = 0; i < n->count; i++)
			if (yaml_node(em, n->items[i]) < 0)
				return -1;
		return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev) ? 0 : -1;
	}
	return yaml_scalar(em, n->kind, n->value, n->len);
}

static int emit_yaml(tend_buf *out, const tend_sops_node *n)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int ok;

	if (!yaml_emitter_initialize(&em)) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	yaml_emitter_set_output(&em, yaml_write, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_indent(&em, 4);
	yaml_emitter_set_width(&em, -1);
	ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&em, &ev) &&
	     yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && yaml_emitter_emit(&em, &ev) &&
	     yaml_node(&em, n) == 0 &&
	     yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
	     yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
	     yaml_emitter_flush(&em);
	if (!ok)
		tend_error_set("YAML output failed: %s", em.problem ? em.problem : "invalid value");
	/* the emitter's buffer held plaintext */
	if (em.buffer.start)
		sodium_memzero(em.buffer.start, (size_t)(em.buffer.end - em.buffer.start));
	yaml_emitter_delete(&em);
	return ok ? 0 : TEND_ERROR;
}

/* ---- JSON ---- */

static json_t *to_json(const tend_sops_node *n)
{
	json_t *j = NULL, *c;
	size_t i;

	switch (n->kind) {
	case TEND_SOPS_MAP:
		if (!(j = json_object()))
			return NULL;
		for (i = 0; i < n->count; i++)
			if (!(c = to_json(n->items[i])) || json_object_set_new(j, n->keys[i], c) < 0)
				return json_decref(j), NULL;
		return j;
	case TEND_SOPS_SEQ:
		if (!(j = json_array()))
			return NULL;
		for (i = 0; i < n->count; i++)
			if (!(c = to_json(n->items[i])) || json_array_append_new(j, c) < 0)
				return json_decref(j), NULL;
		return j;
	case TEND_SOPS_INT:
		return json_integer(strtoll(n->value, NULL, 10));
	case TEND_SOPS_FLOAT:
		return json_real(strtod(n->value, NULL));
	case TEND_SOPS_BOOL:
		return json_boolean(*n->value == 't');
	case TEND_SOPS_NULL:
		return json_null();
	default:
		return json_stringn(n->value, n->len);
	}
}

/* jansson frees without wiping: wipe the strings we handed it first */
static void json_wipe(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			json_wipe(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			json_wipe(v);
	} else if (json_is_string(j)) {
		sodium_memzero((char *)json_string_value(j), json_string_length(j));
	}
}

static int emit_json(tend_buf *out, const tend_sops_node *n)
{
	json_t *j = to_json(n);
	size_t need;
	int error = TEND_ERROR;

	if (!j) {
		tend_error_set("JSON output failed (a value is not valid UTF-8?)");
		return TEND_ERROR;
	}
	need = json_dumpb(j, NULL, 0, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	if (!need || tend_buf_grow(out, out->size + need + 1) < 0) {
		tend_error_set("JSON output failed");
		goto out;
	}
	json_dumpb(j, out->ptr + out->size, need, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	out->size += need;
	out->ptr[out->size] = '\0';
	error = tend_buf_putc(out, '\n');
out:
	json_wipe(j);
	json_decref(j);
	return error;
}

static int emit_dotenv(tend_buf *out, const tend_sops_node *root)
{
	size_t i, k;

	for (i = 0; i < root->count; i++) {
		const tend_sops_node *v = root->items[i];
		if (v->kind == TEND_SOPS_MAP || v->kind == TEND_SOPS_SEQ) {
			tend_error_set("dotenv output: '%s' is not a single value", root->keys[i]);
			return TEND_EINVALID;
		}
		tend_buf_printf(out, "%s=", root->keys[i]);
		for (k = 0; k < v->len; k++) {
			if (v->value[k] == '\n')
				tend_buf_puts(out, "\\n");
			else
				tend_buf_putc(out, v->value[k]);
		}
		if (tend_buf_putc(out, '\n') < 0)
			return TEND_ERROR;
	}
	return 0;
}

int tend_sops_emit_node(tend_buf *out, const tend_sops_doc *doc, const tend_sops_node *node)
{
	if (node->kind != TEND_SOPS_MAP && node->kind != TEND_SOPS_SEQ) {
		if (node->kind == TEND_SOPS_NULL)
			return 0;
		return tend_buf_put(out, node->value, node->len);
	}
	return doc->format == TEND_SOPS_JSON ? emit_json(out, node) : emit_yaml(out, node);
}

int tend_sops_emit(tend_buf *out, const tend_sops_doc *doc)
{
	const tend_sops_node *data;

	switch (doc->format) {
	case TEND_SOPS_JSON:
		return emit_json(out, doc->root);
	case TEND_SOPS_DOTENV:
		return emit_dotenv(out, doc->root);
	case TEND_SOPS_BINARY:
		if (!(data = tend_sops_map_get(doc->root, "data")) || !data->value) {
			tend_error_set("binary sops file without 'data'");
			return TEND_EINVALID;
		}
		return tend_buf_put(out, data->value, data->len);
	default:
		return emit_yaml(out, doc->root);
	}
}
