/* A YAML document as a tree whose every node remembers its line and column,
 * parsed with libyaml under caps on size, depth, aliases and expanded node
 * count, so a YAML bomb is refused in milliseconds (plain block documents,
 * which manifests are, take a direct path to the same tree: util/yaml_fast.h).
 * Used by the manifest, the agent configuration and sops files. Nodes live in
 * the document's arena. */
#ifndef TEND_UTIL_YAML_H
#define TEND_UTIL_YAML_H

#include <stddef.h>

typedef enum {
	TEND_YAML_SCALAR = 1,
	TEND_YAML_MAP,
	TEND_YAML_SEQ
} tend_yaml_kind;

typedef struct tend_yaml_node tend_yaml_node;
struct tend_yaml_node {
	tend_yaml_kind kind;
	unsigned line, col;        /* 1-based position of the node's first character */
	int plain;                 /* scalar written unquoted: its type may be inferred (int, bool, null) */
	char *value;               /* scalar text, NUL-terminated (may contain NULs: use len) */
	size_t len;
	char *tag;                 /* explicit tag such as "!!binary", or NULL */
	size_t count;              /* sequence items, or mapping pairs */
	tend_yaml_node **items;    /* sequence items; mapping values */
	tend_yaml_node **keys;     /* mapping keys (always scalars), parallel to items */
	size_t weight;             /* nodes in this subtree with aliases expanded */
};

typedef struct {
	size_t max_bytes;          /* document size */
	unsigned max_depth;        /* nesting of mappings and sequences */
	unsigned max_aliases;      /* alias uses in one document */
	size_t max_nodes;          /* nodes with every alias expanded */
} tend_yaml_limits;

/* 4 MiB, depth 64, 64 aliases, 1,000,000 expanded nodes. */
extern const tend_yaml_limits tend_yaml_default_limits;

typedef struct {
	unsigned line, col;        /* where the problem is; 0 if unknown */
	char message[256];         /* without the position */
} tend_yaml_error;

typedef struct tend_yaml_doc tend_yaml_doc;

/* Parse the first document of data. `file` is the name used in messages
 * (kept by pointer copy: it is duplicated into the arena). On failure returns
 * TEND_EINVALID (syntax, duplicate key, non-scalar key) or TEND_ELIMIT (a cap),
 * fills err if given, and sets the error to "file:line:col: message".
 * An empty document gives a NULL root. */
int tend_yaml_parse(tend_yaml_doc **out, const char *file, const char *data, size_t len,
		    const tend_yaml_limits *limits, tend_yaml_error *err);
/* Read the file (capped at limits->max_bytes) and parse it; `display` is the
 * name used in messages (for example the path relative to the repository). */
int tend_yaml_parse_file(tend_yaml_doc **out, const char *path, const char *display,
			 const tend_yaml_limits *limits, tend_yaml_error *err);
void tend_yaml_doc_free(tend_yaml_doc *doc);

const tend_yaml_node *tend_yaml_doc_root(const tend_yaml_doc *doc);
const char *tend_yaml_doc_file(const tend_yaml_doc *doc);

/* The value for key in a mapping, or NULL (also NULL if map is not a mapping). */
const tend_yaml_node *tend_yaml_map_get(const tend_yaml_node *map, const char *key);
/* "mapping", "sequence" or "scalar" (for messages). */
const char *tend_yaml_kind_name(tend_yaml_kind kind);
/* A plain scalar spelling null ("", "~", "null", "Null", "NULL"). */
int tend_yaml_is_null(const tend_yaml_node *node);

#endif
