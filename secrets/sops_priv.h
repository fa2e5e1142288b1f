/* Private: the sops document and tree-building helpers shared by sops.c
 * (parsing, decryption) and sops_emit.c (nodes, output, --extract). */
#ifndef TEND_SECRETS_SOPS_PRIV_H
#define TEND_SECRETS_SOPS_PRIV_H

#include "secrets/sops.h"

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

#endif
