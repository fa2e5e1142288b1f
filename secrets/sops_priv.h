/* Private: the sops document and tree-building helpers shared by sops.c
 * (parsing, decryption) and sops_emit.c (nodes, output, --extract). */
#ifndef TEND_SECRETS_SOPS_PRIV_H
#define TEND_SECRETS_SOPS_PRIV_H

#include <jansson.h>
#include "secrets/sops.h"
#include "util/yaml.h"

struct tend_sops_doc {
	tend_sops_format format;
	tend_sops_node *root;      /* without the "sops" key */
	char **recipients;         /* NULL-terminated */
};

tend_sops_node *tend_sops_node_new(tend_sops_kind kind);
/* Wipes scalar values; accepts NULL. */
void tend_sops_node_free(tend_sops_node *n);
/* Replace a scalar's value (the old one is wiped). */
int tend_sops_node_set(tend_sops_node *n, const char *value, size_t len);
/* Append to a map (key given) or a sequence (key NULL); takes child. On
 * failure child is freed. */
int tend_sops_node_add(tend_sops_node *n, const char *key, size_t key_len, tend_sops_node *child);
/* 1 if a plain YAML scalar with this text reads as a string (not null, bool, number). */
int tend_sops_plain_is_str(const char *v, size_t len);
const tend_sops_node *tend_sops_map_get(const tend_sops_node *map, const char *key);

/* sops_parse.c */
int tend_sops_match_int(const char *v, size_t len, long long *out, int yaml);
double tend_sops_parse_float(const char *v);
int tend_sops_tree_from_yaml(tend_sops_node **out, const tend_yaml_node *root, const char *file,
			     const tend_sops_limits *lim);
int tend_sops_tree_from_json(tend_sops_node **out, json_t *root, const char *file,
			     const tend_sops_limits *lim);
/* Values into out; "sops_*" keys unflattened into meta. */
int tend_sops_parse_dotenv(tend_sops_node **out, tend_sops_node **meta, const char *data, size_t len,
			   const char *file);

#endif
