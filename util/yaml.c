/* libyaml event parser building a positioned tree. Aliases are shared, not
 * copied, but every use is charged the aliased subtree's expanded weight, so
 * "billion laughs" documents hit max_nodes long before they cost anything. */
#include "util/yaml.h"
#include "util/yaml_fast.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const tend_yaml_limits tend_yaml_default_limits = {
	4u << 20, 64, 64, 1000000
};

typedef struct {
	char *name;
	tend_yaml_node *node;
	int open;                  /* collection not yet closed: an alias to it would be a cycle */
} anchor;

typedef struct {
	tend_yaml_node *node;
	tend_yaml_node *pending_key;
	size_t cap;
	long anchor_idx;           /* this collection's anchor in builder.anchors, or -1 */
} frame;

typedef struct {
	tend_yaml_doc *doc;
	const tend_yaml_limits *lim;
	tend_yaml_error *err;
	frame *stack;
	size_t depth, stack_cap;
	anchor *anchors;
	size_t n_anchors, anchors_cap;
	unsigned aliases;
	size_t nodes;
} builder;

static int fail(builder *b, int code, unsigned line, unsigned col, const char *fmt, ...)
	TEND_PRINTF(5, 6);

static int fail(builder *b, int code, unsigned line, unsigned col, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (b->err) {
		b->err->line = line;
		b->err->col = col;
		snprintf(b->err->message, sizeof(b->err->message), "%s", msg);
	}
	tend_error_set("%s:%u:%u: %s", b->doc->file, line, col, msg);
	return code;
}

static tend_yaml_node *node_new(builder *b, tend_yaml_kind kind, const yaml_mark_t *mark)
{
	tend_yaml_node *n = tend_arena_alloc(b->doc->arena, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	n->line = (unsigned)mark->line + 1;
	n->col = (unsigned)mark->column + 1;
	n->weight = 1;
	return n;
}

static int grow_children(builder *b, frame *f)
{
	tend_yaml_node *n = f->node;
	size_t ncap = f->cap ? f->cap * 2 : 4;
	tend_yaml_node **items, **keys = NULL;

	if (!(items = tend_arena_alloc(b->doc->arena, ncap * sizeof(*items))))
		return TEND_ERROR;
	if (n->count)
		memcpy(items, n->items, n->count * sizeof(*items));
	if (n->kind == TEND_YAML_MAP) {
		if (!(keys = tend_arena_alloc(b->doc->arena, ncap * sizeof(*keys))))
			return TEND_ERROR;
		if (n->count)
			memcpy(keys, n->keys, n->count * sizeof(*keys));
	}
	n->items = items;
	n->keys = keys;
	f->cap = ncap;
	return 0;
}

static int attach(builder *b, tend_yaml_node *n)
{
	frame *f;

	if (b->depth == 0) {
		if (!b->doc->root)
			b->doc->root = n;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (f->node->kind == TEND_YAML_MAP && !f->pending_key) {
		if (n->kind != TEND_YAML_SCALAR)
			return fail(b, TEND_EINVALID, n->line, n->col,
				    "mapping keys must be scalars, not a %s", tend_yaml_kind_name(n->kind));
		f->pending_key = n;
		return 0;
	}
	if (f->node->count == f->cap && grow_children(b, f) < 0)
		return TEND_ERROR;
	if (f->node->kind == TEND_YAML_MAP) {
		f->node->keys[f->node->count] = f->pending_key;
		f->pending_key = NULL;
	}
	f->node->items[f->node->count++] = n;
	return 0;
}

static int add_anchor(builder *b, const yaml_char_t *name, tend_yaml_node *n, int open)
{
	if (!name)
		return 0;
	if (b->n_anchors == b->anchors_cap) {
		size_t ncap = b->anchors_cap ? b->anchors_cap * 2 : 8;
		anchor *na = realloc(b->anchors, ncap * sizeof(*na));
		if (!na)
			return fail(b, TEND_ERROR, n->line, n->col, "out of memory");
		b->anchors = na;
		b->anchors_cap = ncap;
	}
	b->anchors[b->n_anchors].name = tend_arena_strdup(b->doc->arena, (const char *)name);
	b->anchors[b->n_anchors].node = n;
	b->anchors[b->n_anchors].open = open;
	b->n_anchors++;
	return 0;
}

static int count_node(builder *b, const tend_yaml_node *n, size_t weight)
{
	b->nodes += weight;
	if (b->nodes > b->lim->max_nodes)
		return fail(b, TEND_ELIMIT, n->line, n->col,
			    "document expands to more than %zu nodes (alias bomb?)", b->lim->max_nodes);
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	const tend_yaml_node *x = *(tend_yaml_node *const *)a, *y = *(tend_yaml_node *const *)b;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->value, y->value, m);

	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : (x->col > y->col);
}

static int close_collection(builder *b)
{
	frame *f = &b->stack[--b->depth];
	tend_yaml_node *n = f->node;
	size_t i;

	if (f->anchor_idx >= 0)
		b->anchors[f->anchor_idx].open = 0;
	for (i = 0; i < n->count; i++) {
		n->weight += n->items[i]->weight;
		if (n->kind == TEND_YAML_MAP)
			n->weight += 1;
	}
	if (n->kind == TEND_YAML_MAP && n->count > 1) {
		tend_yaml_node **sorted = malloc(n->count * sizeof(*sorted));
		int error = 0;
		if (!sorted)
			return fail(b, TEND_ERROR, n->line, n->col, "out of memory");
		memcpy(sorted, n->keys, n->count * sizeof(*sorted));
		qsort(sorted, n->count, sizeof(*sorted), key_cmp);
		for (i = 1; i < n->count; i++) {
			if (sorted[i]->len == sorted[i - 1]->len &&
			    !memcmp(sorted[i]->value, sorted[i - 1]->value, sorted[i]->len)) {
				error = fail(b, TEND_EINVALID, sorted[i]->line, sorted[i]->col,
					     "duplicate key '%s' (first defined at line %u)",
					     sorted[i]->value, sorted[i - 1]->line);
				break;
			}
		}
		free(sorted);
		if (error)
			return error;
	}
	return 0;
}

static int open_collection(builder *b, tend_yaml_kind kind, const yaml_event_t *ev,
			   const yaml_char_t *anchor_name, const yaml_char_t *tag)
{
	tend_yaml_node *n;
	long anchor_idx = anchor_name ? (long)b->n_anchors : -1;
	int error;

	if (b->depth >= b->lim->max_depth)
		return fail(b, TEND_ELIMIT, (unsigned)ev->start_mark.line + 1,
			    (unsigned)ev->start_mark.column + 1,
			    "nesting deeper than %u levels", b->lim->max_depth);
	if (!(n = node_new(b, kind, &ev->start_mark)))
		return TEND_ERROR;
	if (tag)
		n->tag = tend_arena_strdup(b->doc->arena, (const char *)tag);
	if ((error = count_node(b, n, 1)) < 0 || (error = attach(b, n)) < 0 ||
	    (error = add_anchor(b, anchor_name, n, 1)) < 0)
		return error;
	if (b->depth == b->stack_cap) {
		size_t ncap = b->stack_cap ? b->stack_cap * 2 : 16;
		frame *ns = realloc(b->stack, ncap * sizeof(*ns));
		if (!ns)
			return fail(b, TEND_ERROR, n->line, n->col, "out of memory");
		b->stack = ns;
		b->stack_cap = ncap;
	}
	b->stack[b->depth++] = (frame){ n, NULL, 0, anchor_idx };
	return 0;
}

static int on_alias(builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	unsigned line = (unsigned)ev->start_mark.line + 1, col = (unsigned)ev->start_mark.column + 1;
	size_t i;

	if (++b->aliases > b->lim->max_aliases)
		return fail(b, TEND_ELIMIT, line, col, "more than %u aliases", b->lim->max_aliases);
	/* the latest definition of a name wins, as in YAML */
	for (i = b->n_anchors; i-- > 0;) {
		if (strcmp(b->anchors[i].name, name))
			continue;
		if (b->anchors[i].open)
			return fail(b, TEND_EINVALID, line, col, "alias *%s refers to an enclosing node", name);
		if (count_node(b, b->anchors[i].node, b->anchors[i].node->weight) < 0)
			return TEND_ELIMIT;
		return attach(b, b->anchors[i].node);
	}
	return fail(b, TEND_EINVALID, line, col, "unknown alias *%s", name);
}

/* Line and column (1-based, the column in characters as libyaml counts
 * them) of byte offset off in data. */
static void offset_position(unsigned *line, unsigned *col, const char *data, size_t len,
			    size_t off)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (c == '\n') {
			(*line)++;
			*col = 1;
		} else if ((c & 0xc0) != 0x80) {   /* not a UTF-8 continuation byte */
			(*col)++;
		}
	}
}

int tend_yaml__parse_libyaml(tend_yaml_doc **out, const char *file, const char *data, size_t len,
			     const tend_yaml_limits *limits, tend_yaml_error *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	builder b;
	int error = TEND_ERROR, done = 0, have_parser = 0, documents = 0;

	*out = NULL;
	memset(&b, 0, sizeof(b));
	b.lim = limits ? limits : &tend_yaml_default_limits;
	b.err = err;
	if (err)
		memset(err, 0, sizeof(*err));
	if (!(b.doc = calloc(1, sizeof(*b.doc))) || !(b.doc->arena = tend_arena_new())) {
		tend_error_set("out of memory");
		goto out;
	}
	b.doc->file = tend_arena_strdup(b.doc->arena, file ? file : "<input>");
	if (len > b.lim->max_bytes) {
		error = fail(&b, TEND_ELIMIT, 0, 0, "document is %zu bytes, larger than the limit of %zu",
			     len, b.lim->max_bytes);
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		tend_error_set("out of memory");
		goto out;
	}
	have_parser = 1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

	while (!done) {
		tend_yaml_node *n;
		int rc = 0;

		if (!yaml_parser_parse(&parser, &ev)) {
			unsigned line = (unsigned)parser.problem_mark.line + 1;
			unsigned col = (unsigned)parser.problem_mark.column + 1;

			/* the reader (a NUL, a control character, invalid UTF-8)
			 * gives a byte offset, not a mark */
			if (parser.error == YAML_READER_ERROR)
				offset_position(&line, &col, data, len, parser.problem_offset);
			/* the value is an octet (bad UTF-8) or a code point (a
			 * control character, U+0080 say) */
			if (parser.error == YAML_READER_ERROR && parser.problem_value >= 0 &&
			    (parser.problem_value < 0x80 || (parser.problem && strstr(parser.problem, "octet"))))
				error = fail(&b, TEND_EINVALID, line, col, "%s (byte 0x%02X)",
					     parser.problem ? parser.problem : "invalid character",
					     (unsigned)parser.problem_value & 0xff);
			else if (parser.error == YAML_READER_ERROR && parser.problem_value >= 0)
				error = fail(&b, TEND_EINVALID, line, col, "%s (U+%04X)",
					     parser.problem ? parser.problem : "invalid character",
					     (unsigned)parser.problem_value);
			else
				error = fail(&b, TEND_EINVALID, line, col, "%s%s%s",
					     parser.problem ? parser.problem : "syntax error",
					     parser.context ? " " : "", parser.context ? parser.context : "");
			goto out;
		}
		switch (ev.type) {
		case YAML_SCALAR_EVENT:
			if (!(n = node_new(&b, TEND_YAML_SCALAR, &ev.start_mark))) {
				rc = TEND_ERROR;
				break;
			}
			n->value = tend_arena_strndup(b.doc->arena, (const char *)ev.data.scalar.value,
						      ev.data.scalar.length);
			n->len = ev.data.scalar.length;
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			if (ev.data.scalar.tag)
				n->tag = tend_arena_strdup(b.doc->arena, (const char *)ev.data.scalar.tag);
			if (!n->value)
				rc = TEND_ERROR;
			if (!rc) rc = count_node(&b, n, 1);
			if (!rc) rc = attach(&b, n);
			if (!rc) rc = add_anchor(&b, ev.data.scalar.anchor, n, 0);
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = open_collection(&b, TEND_YAML_SEQ, &ev, ev.data.sequence_start.anchor,
					     ev.data.sequence_start.tag);
			break;
		case YAML_MAPPING_START_EVENT:
			rc = open_collection(&b, TEND_YAML_MAP, &ev, ev.data.mapping_start.anchor,
					     ev.data.mapping_start.tag);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			rc = close_collection(&b);
			break;
		case YAML_ALIAS_EVENT:
			rc = on_alias(&b, &ev);
			break;
		case YAML_DOCUMENT_START_EVENT:
			/* one document a file: what follows a second "---" would
			 * otherwise be ignored, garbage included */
			if (documents++)
				rc = fail(&b, TEND_EINVALID, (unsigned)ev.start_mark.line + 1,
					  (unsigned)ev.start_mark.column + 1,
					  "a second YAML document: tend reads one document a file");
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc < 0) {
			error = rc;
			goto out;
		}
	}
	*out = b.doc;
	b.doc = NULL;
	error = 0;
out:
	if (have_parser)
		yaml_parser_delete(&parser);
	free(b.stack);
	free(b.anchors);
	tend_yaml_doc_free(b.doc);
	return error;
}

int tend_yaml_parse(tend_yaml_doc **out, const char *file, const char *data, size_t len,
		    const tend_yaml_limits *limits, tend_yaml_error *err)
{
	const tend_yaml_limits *lim = limits ? limits : &tend_yaml_default_limits;
	int rc;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	/* plain block documents (every manifest) directly; anything else, and
	 * every error and cap message, through libyaml */
	if (len <= lim->max_bytes &&
	    (rc = tend_yaml__parse_fast(out, file, data, len, lim)) != TEND_YAML_DECLINED)
		return rc;
	return tend_yaml__parse_libyaml(out, file, data, len, limits, err);
}

int tend_yaml_parse_file(tend_yaml_doc **out, const char *path, const char *display,
			 const tend_yaml_limits *limits, tend_yaml_error *err)
{
	tend_buf buf = TEND_BUF_INIT;
	const tend_yaml_limits *lim = limits ? limits : &tend_yaml_default_limits;
	int error;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if ((error = tend_file_read(&buf, path, lim->max_bytes)) < 0) {
		if (err)
			snprintf(err->message, sizeof(err->message), "%s", tend_error_last());
		goto out;
	}
	error = tend_yaml_parse(out, display ? display : path, buf.ptr, buf.size, lim, err);
out:
	tend_buf_dispose(&buf);
	return error;
}

void tend_yaml_doc_free(tend_yaml_doc *doc)
{
	if (!doc)
		return;
	tend_arena_free(doc->arena);
	free(doc);
}

const tend_yaml_node *tend_yaml_doc_root(const tend_yaml_doc *doc)
{
	return doc ? doc->root : NULL;
}

const char *tend_yaml_doc_file(const tend_yaml_doc *doc)
{
	return doc ? doc->file : NULL;
}

const tend_yaml_node *tend_yaml_map_get(const tend_yaml_node *map, const char *key)
{
	size_t i, klen;

	if (!map || map->kind != TEND_YAML_MAP)
		return NULL;
	klen = strlen(key);
	for (i = 0; i < map->count; i++)
		if (map->keys[i]->len == klen && !memcmp(map->keys[i]->value, key, klen))
			return map->items[i];
	return NULL;
}

const char *tend_yaml_kind_name(tend_yaml_kind kind)
{
	switch (kind) {
	case TEND_YAML_MAP: return "mapping";
	case TEND_YAML_SEQ: return "sequence";
	default: return "scalar";
	}
}

int tend_yaml_is_null(const tend_yaml_node *node)
{
	if (!node)
		return 1;
	if (node->kind != TEND_YAML_SCALAR || !node->plain)
		return 0;
	/* by length first: asked for every field read */
	switch (node->len) {
	case 0:
		return 1;
	case 1:
		return node->value[0] == '~';
	case 4:
		return !strcmp(node->value, "null") || !strcmp(node->value, "Null") ||
		       !strcmp(node->value, "NULL");
	default:
		return 0;
	}
}
