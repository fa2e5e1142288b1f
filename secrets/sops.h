/* sops files (YAML, JSON, dotenv, binary) with age recipients: recover the
 * data key with local age identities, decrypt every ENC[AES256_GCM,...]
 * value with its path as additional data, and check the MAC. The result is a
 * typed tree (order kept) that can be printed in the file's own format or
 * queried for one value. Shamir key groups are refused. */
#ifndef TEND_SECRETS_SOPS_H
#define TEND_SECRETS_SOPS_H

#include <stddef.h>
#include "util/buf.h"
#include "secrets/identity.h"

typedef enum {
	TEND_SOPS_AUTO = 0,
	TEND_SOPS_YAML,
	TEND_SOPS_JSON,
	TEND_SOPS_DOTENV,
	TEND_SOPS_BINARY        /* JSON {"data": ENC[...], "sops": ...}; prints the raw data */
} tend_sops_format;

typedef enum {
	TEND_SOPS_NULL = 1,
	TEND_SOPS_STR,
	TEND_SOPS_INT,
	TEND_SOPS_FLOAT,
	TEND_SOPS_BOOL,
	TEND_SOPS_BYTES,
	TEND_SOPS_MAP,
	TEND_SOPS_SEQ
} tend_sops_kind;

typedef struct tend_sops_node tend_sops_node;
struct tend_sops_node {
	tend_sops_kind kind;
	char *value;            /* scalars: text (decrypted); bools "true"/"false"; NUL-terminated */
	size_t len;
	size_t count;           /* map pairs or sequence items */
	char **keys;            /* map keys, parallel to items */
	tend_sops_node **items;
	unsigned line, col;     /* position in the file (0 when unknown) */
};

typedef struct {
	size_t max_bytes;       /* input size; 0: 16 MiB */
	unsigned max_depth;     /* nesting; 0: 64 */
} tend_sops_limits;

typedef struct tend_sops_doc tend_sops_doc;

/* The sops format of data if it is a sops file (has sops metadata with a MAC),
 * else TEND_SOPS_AUTO (0). `name` (may be NULL) helps: ".json" is never binary. */
tend_sops_format tend_sops_detect(const char *data, size_t len, const char *name);

/* Parse and decrypt. `display` names the file in messages (and its extension
 * picks binary vs JSON). Errors: TEND_EINVALID (syntax, bad ENC value, with
 * file:line:col), TEND_ENOMATCH ("no identity matched" and the file's age
 * recipients), TEND_EAUTH (a value or the MAC fails to authenticate: nothing
 * is returned), TEND_EUNSUPPORTED (Shamir key groups), TEND_ELIMIT. */
int tend_sops_decrypt(tend_sops_doc **out, const char *data, size_t len, const char *display,
		      tend_sops_format format, const tend_age_identities *ids,
		      const tend_sops_limits *limits);
/* Wipes every value; accepts NULL. */
void tend_sops_doc_free(tend_sops_doc *doc);

tend_sops_format tend_sops_doc_format(const tend_sops_doc *doc);
/* The document without its "sops" metadata (a map). */
const tend_sops_node *tend_sops_doc_root(const tend_sops_doc *doc);
/* The age recipients named in the metadata (NULL-terminated). */
const char *const *tend_sops_doc_recipients(const tend_sops_doc *doc);

/* Follow a sops --extract path: ["a"]["b"][0]. TEND_ENOTFOUND names the
 * missing step; TEND_EINVALID for a malformed path. */
int tend_sops_extract(const tend_sops_node **out, const tend_sops_doc *doc, const char *path);

/* Print the decrypted document in its own format (YAML via libyaml's
 * emitter, JSON via jansson, dotenv lines, or the raw binary data). */
int tend_sops_emit(tend_buf *out, const tend_sops_doc *doc);
/* Print one node: a scalar's text as is, a map or sequence in the
 * document's format (dotenv and binary documents use YAML). */
int tend_sops_emit_node(tend_buf *out, const tend_sops_doc *doc, const tend_sops_node *node);

/* Go's strconv.FormatFloat(v, 'f', -1, 64), which sops's MAC uses for floats. */
void tend_sops_format_float(char *out, size_t out_size, double v);

#endif
