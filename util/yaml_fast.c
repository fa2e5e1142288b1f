/* A direct parser for the YAML manifests are written in: printable ASCII,
 * block mappings and sequences indented with spaces, one-line plain and
 * quoted scalars, one-line flow collections, comments. It builds the same
 * positioned tree libyaml's events build in util/yaml.c and declines
 * (TEND_YAML_DECLINED) anything else, so libyaml still reads every other
 * document and reports every error. libyaml's scanner was four fifths of
 * loading a fleet; tests/util/test_yaml_fast.c and fuzz/fuzz_yaml_fast.c
 * hold the two parsers to the same trees. */
#include "util/yaml_fast.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define DECLINE TEND_YAML_DECLINED

typedef struct {
	const char *p, *end;
	const char *ls;            /* start of the current line */
	unsigned line;             /* 1-based number of the current line */
	int ind;                   /* indentation of the content line at p; -1 at the end */
	tend_arena *arena;
	const tend_yaml_limits *lim;
	size_t nodes;
	unsigned depth;
	tend_yaml_node **stk;      /* children of the open collections */
	size_t sp, scap;
} fp;

static unsigned col0(const fp *f, const char *at)
{
	return (unsigned)(at - f->ls);
}

/* A node with room for a value of extra bytes right after it: one arena
 * allocation per scalar instead of two. */
static int node_alloc(tend_yaml_node **out, fp *f, tend_yaml_kind kind, unsigned line,
		      unsigned col0_, size_t extra)
{
	tend_yaml_node *n;

	if (++f->nodes > f->lim->max_nodes)
		return DECLINE;       /* libyaml says which cap */
	if (!(n = tend_arena_alloc(f->arena, sizeof(*n) + extra)))
		return TEND_ERROR;
	n->kind = kind;
	n->line = line;
	n->col = col0_ + 1;
	n->weight = 1;
	*out = n;
	return 0;
}

static int node_new(tend_yaml_node **out, fp *f, tend_yaml_kind kind, unsigned line, unsigned col0_)
{
	return node_alloc(out, f, kind, line, col0_, 0);
}

static int scalar_new(tend_yaml_node **out, fp *f, unsigned line, unsigned col0_, const char *s,
		      size_t len, int plain)
{
	int rc = node_alloc(out, f, TEND_YAML_SCALAR, line, col0_, len + 1);

	if (rc)
		return rc;
	(*out)->value = (char *)(*out + 1);
	memcpy((*out)->value, s, len);     /* the NUL: the arena zeroes */
	(*out)->len = len;
	(*out)->plain = plain;
	return 0;
}

static int push(fp *f, tend_yaml_node *n)
{
	if (f->sp == f->scap) {
		size_t ncap = f->scap ? f->scap * 2 : 256;
		tend_yaml_node **ns = realloc(f->stk, ncap * sizeof(*ns));

		if (!ns) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		f->stk = ns;
		f->scap = ncap;
	}
	f->stk[f->sp++] = n;
	return 0;
}

static int same_key(const tend_yaml_node *a, const tend_yaml_node *b)
{
	return a->len == b->len && !memcmp(a->value, b->value, a->len);
}

static int key_order(const void *a, const void *b)
{
	const tend_yaml_node *x = *(tend_yaml_node *const *)a, *y = *(tend_yaml_node *const *)b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->value, y->value, x->len);
}

/* Close collection n whose children (key, value pairs for a mapping) are
 * the stack's top entries from base; duplicate keys are libyaml's to report. */
static int close_collection(fp *f, tend_yaml_node *n, size_t base)
{
	size_t k = f->sp - base, count, i, j;
	int map = n->kind == TEND_YAML_MAP;

	count = map ? k / 2 : k;
	f->depth--;
	if (count) {
		if (!(n->items = tend_arena_alloc(f->arena, count * sizeof(*n->items))))
			return TEND_ERROR;
		if (map && !(n->keys = tend_arena_alloc(f->arena, count * sizeof(*n->keys))))
			return TEND_ERROR;
	}
	for (i = 0; i < count; i++) {
		if (map) {
			n->keys[i] = f->stk[base + 2 * i];
			n->items[i] = f->stk[base + 2 * i + 1];
			n->weight += 1 + n->items[i]->weight;
		} else {
			n->items[i] = f->stk[base + i];
			n->weight += n->items[i]->weight;
		}
	}
	n->count = count;
	f->sp = base;
	if (map && count > 1 && count <= 16) {
		for (i = 1; i < count; i++)
			for (j = 0; j < i; j++)
				if (same_key(n->keys[i], n->keys[j]))
					return DECLINE;
	} else if (map && count > 16) {
		tend_yaml_node **sorted = malloc(count * sizeof(*sorted));
		int rc = 0;

		if (!sorted) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		memcpy(sorted, n->keys, count * sizeof(*sorted));
		qsort(sorted, count, sizeof(*sorted), key_order);
		for (i = 1; i < count && !rc; i++)
			if (same_key(sorted[i], sorted[i - 1]))
				rc = DECLINE;
		free(sorted);
		return rc;
	}
	return 0;
}

static int open_collection(tend_yaml_node **out, fp *f, tend_yaml_kind kind, unsigned line,
			   unsigned col0_)
{
	if (f->depth >= f->lim->max_depth)
		return DECLINE;
	f->depth++;
	return node_new(out, f, kind, line, col0_);
}

/* ---- lines ---------------------------------------------------------------- */

static int at_eol(const fp *f, const char *q)
{
	return q >= f->end || *q == '\n';
}

/* '-' starting a block sequence entry: followed by a space or the line's end */
static int is_entry(const fp *f, const char *q)
{
	return *q == '-' && (q + 1 >= f->end || q[1] == ' ' || q[1] == '\n');
}

/* From a line's start, past blank and comment lines to the next content line:
 * f->ind its indentation (f->p at its first character), or -1 at the end. */
static int next_line(fp *f)
{
	for (;;) {
		const char *s = f->p;

		while (f->p < f->end && *f->p == ' ')
			f->p++;
		if (f->p >= f->end) {
			f->ind = -1;
			return 0;
		}
		if (*f->p == '#')
			while (f->p < f->end && *f->p != '\n')
				f->p++;
		if (f->p < f->end && *f->p == '\n') {
			f->p++;
			f->line++;
			f->ls = f->p;
			continue;
		}
		if (f->p >= f->end) {
			f->ind = -1;
			return 0;
		}
		f->ind = (int)(f->p - s);
		/* document markers and directives: libyaml's */
		if (f->ind == 0 && (*f->p == '%' ||
				    (f->end - f->p >= 3 && (!memcmp(f->p, "---", 3) || !memcmp(f->p, "...", 3)))))
			return DECLINE;
		return 0;
	}
}

/* After a value: spaces, a comment (after a space), the line's end; then on
 * to the next content line. */
static int finish_line(fp *f)
{
	const char *s = f->p;

	while (f->p < f->end && *f->p == ' ')
		f->p++;
	if (f->p < f->end && *f->p == '#') {
		if (f->p == s)
			return DECLINE;
		while (f->p < f->end && *f->p != '\n')
			f->p++;
	}
	if (f->p < f->end) {
		if (*f->p != '\n')
			return DECLINE;
		f->p++;
		f->line++;
		f->ls = f->p;
	}
	return next_line(f);
}

static void skip_spaces(fp *f)
{
	while (f->p < f->end && *f->p == ' ')
		f->p++;
}

/* ---- scalars -------------------------------------------------------------- */

/* Can a plain scalar start at q? Not at an indicator; '-' only before a
 * character that is not a space (a sign, "-x"). */
static int plain_start(const fp *f, const char *q, int flow)
{
	switch (*q) {
	case '-':
		return q + 1 < f->end && q[1] != ' ' && q[1] != '\n' && !(flow && strchr(",[]{}", q[1]));
	case '?': case ':': case ',': case '[': case ']': case '{': case '}': case '#':
	case '&': case '*': case '!': case '|': case '>': case '\'': case '"': case '%':
	case '@': case '`': case ' ': case '\n':
		return 0;
	default:
		return 1;
	}
}

/* A one-line quoted scalar at f->p. Double-quoted: the single-character
 * escapes only. */
static int quoted(tend_yaml_node **out, fp *f)
{
	const char *s = f->p + 1, *q;
	char qc = *f->p, *v;
	size_t n = 0;
	unsigned line = f->line, col = col0(f, f->p);
	int rc;

	for (q = s; q < f->end && *q != '\n'; q++) {
		if (qc == '\'' && *q == '\'') {
			if (q + 1 < f->end && q[1] == '\'') {
				q++;
				continue;
			}
			break;
		}
		if (qc == '"' && *q == '"')
			break;
		if (qc == '"' && *q == '\\') {
			if (q + 1 >= f->end || !strchr("0abtnvfre \"\\", q[1]) || q[1] == '\0')
				return DECLINE;
			q++;
		}
	}
	if (q >= f->end || *q != qc)
		return DECLINE;       /* runs on past the line, or unterminated */
	if ((rc = node_alloc(out, f, TEND_YAML_SCALAR, line, col, (size_t)(q - s) + 1)))
		return rc;
	v = (char *)(*out + 1);
	for (f->p = s; f->p < q; f->p++) {
		char c = *f->p;

		if (qc == '\'' && c == '\'') {
			f->p++;       /* '' is one quote */
		} else if (qc == '"' && c == '\\') {
			switch (*++f->p) {
			case '0': c = '\0'; break;
			case 'a': c = '\a'; break;
			case 'b': c = '\b'; break;
			case 't': c = '\t'; break;
			case 'n': c = '\n'; break;
			case 'v': c = '\v'; break;
			case 'f': c = '\f'; break;
			case 'r': c = '\r'; break;
			case 'e': c = '\x1b'; break;
			default: c = *f->p; break;   /* ' ', '"', '\\' */
			}
		}
		v[n++] = c;
	}
	v[n] = '\0';
	(*out)->value = v;
	(*out)->len = n;
	f->p = q + 1;
	return 0;
}

/* A plain scalar in a flow collection: up to ',', a bracket, ':' or the
 * line's end (which declines: the collection spans lines). */
static int plain_flow(tend_yaml_node **out, fp *f)
{
	const char *s = f->p, *q = s, *last = s;

	if (!plain_start(f, s, 1))
		return DECLINE;
	while (q < f->end && *q != ',' && *q != '[' && *q != ']' && *q != '{' && *q != '}' &&
	       *q != ':' && *q != '\n') {
		if (*q == ' ') {
			if (q + 1 < f->end && q[1] == '#')
				return DECLINE;
		} else {
			last = q + 1;
		}
		q++;
	}
	if (q >= f->end || *q == '\n')
		return DECLINE;
	f->p = last;
	return scalar_new(out, f, f->line, col0(f, s), s, (size_t)(last - s), 1);
}

static int flow_node(tend_yaml_node **out, fp *f);

static int flow_collection(tend_yaml_node **out, fp *f)
{
	int map = *f->p == '{', rc;
	char close = map ? '}' : ']';
	size_t base = f->sp;
	tend_yaml_node *n, *k, *v;

	if ((rc = open_collection(&n, f, map ? TEND_YAML_MAP : TEND_YAML_SEQ, f->line, col0(f, f->p))))
		return rc;
	f->p++;
	skip_spaces(f);
	if (f->p < f->end && *f->p == close) {
		f->p++;
		*out = n;
		return close_collection(f, n, base);
	}
	for (;;) {
		if (f->p >= f->end)
			return DECLINE;
		if (map) {
			if (*f->p == '"' || *f->p == '\'')
				rc = quoted(&k, f);
			else
				rc = plain_flow(&k, f);
			if (rc || (rc = push(f, k)))
				return rc;
			skip_spaces(f);
			/* "key: value"; an empty value, or ':' not before a space, is libyaml's */
			if (f->end - f->p < 2 || f->p[0] != ':' || f->p[1] != ' ')
				return DECLINE;
			f->p += 2;
			skip_spaces(f);
			if (f->p >= f->end || *f->p == ',' || *f->p == '}')
				return DECLINE;
		}
		if ((rc = flow_node(&v, f)) || (rc = push(f, v)))
			return rc;
		skip_spaces(f);
		if (f->p < f->end && *f->p == ',') {
			f->p++;
			skip_spaces(f);
			if (f->p < f->end && (*f->p == close || *f->p == ','))
				return DECLINE;   /* a trailing or empty entry */
			continue;
		}
		if (f->p < f->end && *f->p == close) {
			f->p++;
			*out = n;
			return close_collection(f, n, base);
		}
		return DECLINE;
	}
}

static int flow_node(tend_yaml_node **out, fp *f)
{
	if (*f->p == '[' || *f->p == '{')
		return flow_collection(out, f);
	if (*f->p == '"' || *f->p == '\'')
		return quoted(out, f);
	return plain_flow(out, f);
}

/* ---- block collections ---------------------------------------------------- */

/* Does a key start at q: a one-line plain or quoted scalar followed by ':'
 * and a space or the line's end? *colon gets the ':'. */
static int key_ahead(const fp *f, const char *q, const char **colon)
{
	if (*q == '"' || *q == '\'') {
		char qc = *q;

		for (q++; q < f->end && *q != '\n'; q++) {
			if (qc == '"' && *q == '\\' && q + 1 < f->end && q[1] != '\n') {
				q++;
				continue;
			}
			if (*q == qc) {
				if (qc == '\'' && q + 1 < f->end && q[1] == '\'') {
					q++;
					continue;
				}
				break;
			}
		}
		if (q >= f->end || *q != qc)
			return 0;
		for (q++; q < f->end && *q == ' '; q++)
			;
	} else {
		if (!plain_start(f, q, 0))
			return 0;
		for (; q < f->end && *q != '\n'; q++) {
			if (*q == ':' && (q + 1 >= f->end || q[1] == ' ' || q[1] == '\n'))
				break;
			if (*q == ' ' && q + 1 < f->end && q[1] == '#')
				return 0;
		}
	}
	if (q >= f->end || *q != ':' || !(q + 1 >= f->end || q[1] == ' ' || q[1] == '\n'))
		return 0;
	*colon = q;
	return 1;
}

static int block_node(tend_yaml_node **out, fp *f);
static int block_seq(tend_yaml_node **out, fp *f, int indent);
static int block_map(tend_yaml_node **out, fp *f, int indent);

/* A value on the line after "key: " or "- ": a scalar or a flow collection. */
static int inline_value(tend_yaml_node **out, fp *f)
{
	const char *s = f->p, *q = s, *last = s;

	if (*s == '[' || *s == '{' || *s == '"' || *s == '\'')
		return flow_node(out, f);
	if (!plain_start(f, s, 0))
		return DECLINE;
	for (; q < f->end && *q != '\n'; q++) {
		if (*q == ' ') {
			if (q + 1 < f->end && q[1] == '#')
				break;
			continue;
		}
		/* a mapping value where a scalar ends: libyaml's error */
		if (*q == ':' && (q + 1 >= f->end || q[1] == ' ' || q[1] == '\n'))
			return DECLINE;
		last = q + 1;
	}
	f->p = last;
	return scalar_new(out, f, f->line, col0(f, s), s, (size_t)(last - s), 1);
}

/* What follows "key:" or "-" (f->p after it): a value on the same line, or a
 * block collection on the next lines (deeper, or an indentless sequence
 * after a key), or nothing: an empty plain scalar where the indicator ends. */
static int block_value(tend_yaml_node **out, fp *f, int indent, int after_key, unsigned line,
		       unsigned end_col0)
{
	int rc;

	skip_spaces(f);
	if (!at_eol(f, f->p) && *f->p != '#') {
		if ((rc = inline_value(out, f)) || (rc = finish_line(f)))
			return rc;
		/* more indented: a multi-line scalar or an error */
		return f->ind > indent ? DECLINE : 0;
	}
	while (!at_eol(f, f->p))   /* a comment: after a space, as the indicator needs one */
		f->p++;
	if ((rc = finish_line(f)))
		return rc;
	if (f->ind > indent)
		return block_node(out, f);
	if (after_key && f->ind == indent && is_entry(f, f->p))
		return block_seq(out, f, indent);
	return scalar_new(out, f, line, end_col0, "", 0, 1);
}

static int block_seq(tend_yaml_node **out, fp *f, int indent)
{
	size_t base = f->sp;
	tend_yaml_node *n, *v;
	int rc;

	if ((rc = open_collection(&n, f, TEND_YAML_SEQ, f->line, col0(f, f->p))))
		return rc;
	while (f->ind == indent && is_entry(f, f->p)) {
		unsigned line = f->line, dash = col0(f, f->p);
		const char *colon;

		f->p++;
		skip_spaces(f);
		if (!at_eol(f, f->p) && *f->p != '#' && key_ahead(f, f->p, &colon)) {
			/* "- key: value": a mapping at the key's column */
			f->ind = (int)col0(f, f->p);
			rc = block_map(&v, f, f->ind);
		} else if (!at_eol(f, f->p) && is_entry(f, f->p)) {
			return DECLINE;   /* "- - x" */
		} else {
			rc = block_value(&v, f, indent, 0, line, dash + 1);
		}
		if (rc || (rc = push(f, v)))
			return rc;
		if (f->ind > indent)
			return DECLINE;
	}
	*out = n;
	return close_collection(f, n, base);
}

static int block_map(tend_yaml_node **out, fp *f, int indent)
{
	size_t base = f->sp;
	tend_yaml_node *n, *k, *v;
	int rc;

	if ((rc = open_collection(&n, f, TEND_YAML_MAP, f->line, col0(f, f->p))))
		return rc;
	while (f->ind == indent) {
		const char *colon, *s = f->p;
		unsigned line = f->line;

		if (!key_ahead(f, s, &colon) || colon - s > 1000)
			return DECLINE;   /* not a key (libyaml's error), or too long a simple key */
		if (*s == '"' || *s == '\'') {
			if ((rc = quoted(&k, f)))
				return rc;
		} else {
			const char *last = colon;

			while (last > s && last[-1] == ' ')
				last--;
			if ((rc = scalar_new(&k, f, line, col0(f, s), s, (size_t)(last - s), 1)))
				return rc;
		}
		if ((rc = push(f, k)))
			return rc;
		f->p = colon + 1;
		if ((rc = block_value(&v, f, indent, 1, line, col0(f, colon) + 1)) || (rc = push(f, v)))
			return rc;
		if (f->ind > indent)
			return DECLINE;
	}
	*out = n;
	return close_collection(f, n, base);
}

/* A block collection starting at f->p, indented f->ind. */
static int block_node(tend_yaml_node **out, fp *f)
{
	const char *colon;

	if (is_entry(f, f->p))
		return block_seq(out, f, f->ind);
	if (key_ahead(f, f->p, &colon))
		return block_map(out, f, f->ind);
	return DECLINE;           /* a scalar on its own line, or an error */
}

/* 1 for the bytes the fast path leaves to libyaml: all but 0x20..0x7e and '\n' */
static const unsigned char outside[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	[0x7f] = 1,
	[0x80] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

int tend_yaml__parse_fast(tend_yaml_doc **out, const char *file, const char *data, size_t len,
			  const tend_yaml_limits *limits)
{
	tend_yaml_doc *doc = NULL;
	fp f;
	size_t i;
	int rc = TEND_ERROR;

	*out = NULL;
	/* printable ASCII and line feeds only: no encodings, tabs, CR or
	 * control characters to reason about */
	for (i = 0; i + 8 <= len; i += 8) {
		const unsigned char *u = (const unsigned char *)data + i;

		if (outside[u[0]] | outside[u[1]] | outside[u[2]] | outside[u[3]] |
		    outside[u[4]] | outside[u[5]] | outside[u[6]] | outside[u[7]])
			return DECLINE;
	}
	for (; i < len; i++)
		if (outside[(unsigned char)data[i]])
			return DECLINE;
	memset(&f, 0, sizeof(f));
	f.p = f.ls = data;
	f.end = data + len;
	f.line = 1;
	f.lim = limits ? limits : &tend_yaml_default_limits;
	if (!(doc = calloc(1, sizeof(*doc))) || !(doc->arena = tend_arena_new())) {
		tend_error_set("out of memory");
		goto out;
	}
	f.arena = doc->arena;
	if (!(doc->file = tend_arena_strdup(doc->arena, file ? file : "<input>")))
		goto out;
	if ((rc = next_line(&f)))
		goto out;
	if (f.ind >= 0) {
		if ((rc = block_node(&doc->root, &f)))
			goto out;
		if (f.ind >= 0) {
			rc = DECLINE;     /* something after the document's node */
			goto out;
		}
	}
	*out = doc;
	doc = NULL;
	rc = 0;
out:
	free(f.stk);
	if (doc) {
		tend_arena_free(doc->arena);
		free(doc);
	}
	return rc;
}
