/* sops decryption: parse YAML (util/yaml.h), JSON (jansson) or dotenv into a
 * typed tree, recover the data key from the age stanzas, decrypt each value
 * with its "a:b:c:" path as additional data and check sops's MAC (SHA-512
 * over the values in tree order, as sops's ToBytes spells them). */
#include "secrets/sops.h"
#include "secrets/sops_priv.h"
#include "secrets/age.h"
#include "secrets/aesgcm.h"
#include "util/error.h"
#include "util/yaml.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

typedef struct {
	const char *file;
	const tend_sops_limits *lim;
	const char *mac, *lastmodified;
	const char *unencrypted_suffix, *encrypted_suffix;
	regex_t unenc_re, enc_re;
	int have_unenc_re, have_enc_re, mac_only_encrypted;
	unsigned char key[32];
	crypto_hash_sha512_state mac_state;
	const char *path[128];
	size_t depth;
} ctx;

/* ---- metadata and the data key ---- */

static const char *meta_str(const tend_sops_node *md, const char *key)
{
	const tend_sops_node *n = tend_sops_map_get(md, key);

	return n && n->kind != TEND_SOPS_MAP && n->kind != TEND_SOPS_SEQ && n->kind != TEND_SOPS_NULL
		       ? n->value : NULL;
}

static int load_meta(ctx *c, const tend_sops_node *md, const tend_sops_node **age)
{
	const tend_sops_node *groups = tend_sops_map_get(md, "key_groups");
	const char *re, *moe;

	if (tend_sops_map_get(md, "shamir_threshold") ||
	    (groups && groups->kind == TEND_SOPS_SEQ && groups->count > 1)) {
		tend_error_set("%s: sops key groups with Shamir's secret sharing (key_groups, "
			       "shamir_threshold) are not supported; encrypt to age recipients "
			       "in a single group", c->file);
		return TEND_EUNSUPPORTED;
	}
	*age = tend_sops_map_get(md, "age");
	if (groups && groups->kind == TEND_SOPS_SEQ && groups->count == 1)
		*age = tend_sops_map_get(groups->items[0], "age");
	c->mac = meta_str(md, "mac");
	c->lastmodified = meta_str(md, "lastmodified");
	if (!c->mac || !c->lastmodified) {
		tend_error_set("%s: sops metadata without %s", c->file, c->mac ? "lastmodified" : "a MAC");
		return TEND_EINVALID;
	}
	c->unencrypted_suffix = meta_str(md, "unencrypted_suffix");
	c->encrypted_suffix = meta_str(md, "encrypted_suffix");
	if ((re = meta_str(md, "unencrypted_regex")) && *re) {
		if (regcomp(&c->unenc_re, re, REG_EXTENDED | REG_NOSUB) != 0) {
			tend_error_set("%s: sops unencrypted_regex is not a valid regular expression", c->file);
			return TEND_EUNSUPPORTED;
		}
		c->have_unenc_re = 1;
	}
	if ((re = meta_str(md, "encrypted_regex")) && *re) {
		if (regcomp(&c->enc_re, re, REG_EXTENDED | REG_NOSUB) != 0) {
			tend_error_set("%s: sops encrypted_regex is not a valid regular expression", c->file);
			return TEND_EUNSUPPORTED;
		}
		c->have_enc_re = 1;
	}
	if (c->unencrypted_suffix && !*c->unencrypted_suffix)
		c->unencrypted_suffix = NULL;
	if (c->encrypted_suffix && !*c->encrypted_suffix)
		c->encrypted_suffix = NULL;
	/* sops's default when the file names none of the four */
	if (!c->unencrypted_suffix && !c->encrypted_suffix && !c->have_unenc_re && !c->have_enc_re)
		c->unencrypted_suffix = "_unencrypted";
	moe = meta_str(md, "mac_only_encrypted");
	c->mac_only_encrypted = moe && !strcmp(moe, "true");
	return 0;
}

static int recover_key(ctx *c, const tend_sops_node *age, const tend_age_identities *ids,
		       tend_sops_doc *doc)
{
	tend_buf key = TEND_BUF_INIT, msg = TEND_BUF_INIT;
	size_t i, nrec = 0;
	int error = TEND_ENOMATCH, other = 0;
	char other_msg[512] = "";

	if (age && age->kind == TEND_SOPS_SEQ) {
		if (!(doc->recipients = calloc(age->count + 1, sizeof(char *)))) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		for (i = 0; i < age->count; i++) {
			const char *r = meta_str(age->items[i], "recipient");
			const char *enc = meta_str(age->items[i], "enc");
			int rc;

			if (r)
				doc->recipients[nrec++] = strdup(r);
			if (!enc)
				continue;
			tend_buf_clear(&key);
			rc = tend_age_decrypt(&key, enc, strlen(enc), "sops age stanza", ids, NULL);
			if (rc == 0 && key.size == 32) {
				memcpy(c->key, key.ptr, 32);
				error = 0;
				goto out;
			}
			if (rc == 0) {
				other = 1;
				snprintf(other_msg, sizeof(other_msg), "the data key is %zu bytes, not 32",
					 key.size);
			} else if (rc != TEND_ENOMATCH && !other) {
				other = 1;
				snprintf(other_msg, sizeof(other_msg), "%s", tend_error_last());
			}
		}
	}
	tend_buf_printf(&msg, "%s: no identity matched; the file is encrypted to ", c->file);
	if (!nrec)
		tend_buf_puts(&msg, "no age recipients");
	for (i = 0; i < nrec; i++) {
		const char *r = doc->recipients[i] ? doc->recipients[i] : "?";
		tend_buf_printf(&msg, "%s%s%s", i ? ", " : "", r,
				!strncmp(r, "age1pq", 6) ? " (post-quantum: not supported)" : "");
	}
	tend_buf_printf(&msg, "; tried %zu identities", tend_age_identities_count(ids));
	for (i = 0; i < tend_age_identities_count(ids) && i < 8; i++)
		tend_buf_printf(&msg, "%s%s", i ? ", " : ": ", tend_age_identities_describe(ids, i));
	if (other)
		tend_buf_printf(&msg, " (also: %s)", other_msg);
	tend_error_set("%s", msg.ptr ? msg.ptr : "no identity matched");
out:
	tend_buf_dispose_secure(&key);
	tend_buf_dispose(&msg);
	return error;
}

/* ---- values ---- */

static int b64(unsigned char *out, size_t max, size_t *len, const char *s, size_t n)
{
	return sodium_base642bin(out, max, s, n, NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL);
}

/* Decrypt "ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]" into plain. */
static int open_value(tend_buf *plain, char *type, size_t type_size, const ctx *c,
		      const char *v, const char *aad, size_t aad_len)
{
	const char *data, *iv, *tag, *ty, *end;
	unsigned char ivb[128], tagb[16], *ct = NULL;
	size_t ct_len, iv_len, tag_len, vlen = strlen(v);
	int error = TEND_EINVALID;

	if (vlen < 21 || strncmp(v, "ENC[AES256_GCM,data:", 20) || v[vlen - 1] != ']' ||
	    !(iv = strstr(v, ",iv:")) || !(tag = strstr(v, ",tag:")) || !(ty = strstr(v, ",type:")) ||
	    !(iv < tag && tag < ty)) {
		tend_error_set("not an ENC[AES256_GCM,data:...,iv:...,tag:...,type:...] value");
		return TEND_EINVALID;
	}
	data = v + 20;
	end = v + vlen - 1;
	if ((size_t)(ty + 6 - v) >= vlen || (size_t)(end - (ty + 6)) >= type_size) {
		tend_error_set("invalid value type");
		return TEND_EINVALID;
	}
	memcpy(type, ty + 6, (size_t)(end - (ty + 6)));
	type[end - (ty + 6)] = '\0';
	if (!(ct = malloc((size_t)(iv - data) + 1))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	if (b64(ct, (size_t)(iv - data) + 1, &ct_len, data, (size_t)(iv - data)) != 0 ||
	    b64(ivb, sizeof(ivb), &iv_len, iv + 4, (size_t)(tag - iv - 4)) != 0 || !iv_len ||
	    b64(tagb, sizeof(tagb), &tag_len, tag + 5, (size_t)(ty - tag - 5)) != 0 || tag_len != 16) {
		tend_error_set("invalid base64 in data, iv or tag");
		goto out;
	}
	tend_buf_clear(plain);
	if ((error = tend_buf_grow(plain, ct_len)) < 0)
		goto out;
	if ((error = tend_aes256gcm_open((unsigned char *)plain->ptr, c->key, ivb, iv_len,
					 (const unsigned char *)aad, aad_len, ct, ct_len, tagb)) < 0) {
		tend_error_set("authentication failed (the value or its place in the file was changed, "
			       "or the data key is wrong)");
		goto out;
	}
	plain->size = ct_len;
	plain->ptr[ct_len] = '\0';
	error = 0;
out:
	free(ct);
	return error;
}

static int path_encrypted(const ctx *c)
{
	size_t i, n;
	int enc = 1;

	if (c->unencrypted_suffix) {
		for (i = 0; i < c->depth; i++) {
			n = strlen(c->path[i]);
			if (n >= strlen(c->unencrypted_suffix) &&
			    !strcmp(c->path[i] + n - strlen(c->unencrypted_suffix), c->unencrypted_suffix))
				enc = 0;
		}
	}
	if (c->encrypted_suffix) {
		enc = 0;
		for (i = 0; i < c->depth; i++) {
			n = strlen(c->path[i]);
			if (n >= strlen(c->encrypted_suffix) &&
			    !strcmp(c->path[i] + n - strlen(c->encrypted_suffix), c->encrypted_suffix))
				enc = 1;
		}
	}
	if (c->have_unenc_re)
		for (i = 0; i < c->depth; i++)
			if (regexec(&c->unenc_re, c->path[i], 0, NULL, 0) == 0)
				enc = 0;
	if (c->have_enc_re) {
		enc = 0;
		for (i = 0; i < c->depth; i++)
			if (regexec(&c->enc_re, c->path[i], 0, NULL, 0) == 0)
				enc = 1;
	}
	return enc;
}

/* Go's strconv.ParseBool */
static int parse_bool(const char *s, int *out)
{
	static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };
	size_t i;

	for (i = 0; i < 6; i++) {
		if (!strcmp(s, t[i]))
			return *out = 1, 0;
		if (!strcmp(s, f[i]))
			return *out = 0, 0;
	}
	return -1;
}

static void mac_add(ctx *c, const tend_sops_node *n)
{
	char num[512];

	switch (n->kind) {
	case TEND_SOPS_BOOL:
		crypto_hash_sha512_update(&c->mac_state, (const unsigned char *)(*n->value == 't' ? "True" : "False"),
					  *n->value == 't' ? 4 : 5);
		break;
	case TEND_SOPS_FLOAT:
		tend_sops_format_float(num, sizeof(num), tend_sops_parse_float(n->value));
		crypto_hash_sha512_update(&c->mac_state, (const unsigned char *)num, strlen(num));
		break;
	default:
		crypto_hash_sha512_update(&c->mac_state, (const unsigned char *)n->value, n->len);
	}
}

static int leaf(ctx *c, tend_sops_node *n)
{
	tend_buf aad = TEND_BUF_INIT, plain = TEND_BUF_INIT;
	char type[16];
	size_t i;
	int error = 0, encrypted = path_encrypted(c), comment = 0;

	if (n->kind == TEND_SOPS_NULL)
		return 0;
	if (encrypted && n->len) {
		if (n->kind != TEND_SOPS_STR) {
			error = TEND_EINVALID;
			tend_error_set("a value that should be encrypted is not");
			goto fail;
		}
		for (i = 0; i < c->depth; i++)
			tend_buf_printf(&aad, "%s:", c->path[i]);
		if (!aad.ptr)
			tend_buf_puts(&aad, ":");
		if ((error = open_value(&plain, type, sizeof(type), c, n->value, aad.ptr, aad.size)) < 0)
			goto fail;
		if (!strcmp(type, "str") || !strcmp(type, "bytes") || !strcmp(type, "comment")) {
			n->kind = !strcmp(type, "bytes") ? TEND_SOPS_BYTES : TEND_SOPS_STR;
			comment = !strcmp(type, "comment");
		} else if (!strcmp(type, "int")) {
			long long v;
			char num[32];
			if (!tend_sops_match_int(plain.ptr, plain.size, &v, 0)) {
				error = TEND_EINVALID;
				tend_error_set("decrypted int value is not a number");
				goto fail;
			}
			n->kind = TEND_SOPS_INT;
			snprintf(num, sizeof(num), "%lld", v);
			tend_buf_clear(&plain);
			tend_buf_puts(&plain, num);
			sodium_memzero(num, sizeof(num));
		} else if (!strcmp(type, "float")) {
			char *end;
			errno = 0;
			strtod(plain.ptr, &end);
			if (!plain.size || *end) {
				error = TEND_EINVALID;
				tend_error_set("decrypted float value is not a number");
				goto fail;
			}
			n->kind = TEND_SOPS_FLOAT;
		} else if (!strcmp(type, "bool")) {
			int b;
			if (parse_bool(plain.ptr, &b) < 0) {
				error = TEND_EINVALID;
				tend_error_set("decrypted bool value is not a boolean");
				goto fail;
			}
			n->kind = TEND_SOPS_BOOL;
			tend_buf_clear(&plain);
			tend_buf_puts(&plain, b ? "true" : "false");
		} else {
			error = TEND_EINVALID;
			tend_error_set("unknown value type '%s'", type);
			goto fail;
		}
		if ((error = tend_sops_node_set(n, plain.ptr ? plain.ptr : "", plain.size)) < 0)
			goto fail;
	}
	if (!comment && (!c->mac_only_encrypted || encrypted))
		mac_add(c, n);
	goto out;
fail:
	tend_error_prefix("%s:%u:%u: value at '%s': ", c->file, n->line, n->col,
			  aad.ptr ? aad.ptr : "");
out:
	tend_buf_dispose(&aad);
	tend_buf_dispose_secure(&plain);
	return error;
}

static int walk(ctx *c, tend_sops_node *n)
{
	size_t i;
	int error;

	if (n->kind == TEND_SOPS_MAP) {
		if (c->depth >= sizeof(c->path) / sizeof(c->path[0])) {
			tend_error_set("%s: nested too deeply", c->file);
			return TEND_ELIMIT;
		}
		for (i = 0; i < n->count; i++) {
			c->path[c->depth++] = n->keys[i];
			error = walk(c, n->items[i]);
			c->depth--;
			if (error < 0)
				return error;
		}
		return 0;
	}
	if (n->kind == TEND_SOPS_SEQ) {
		/* list items keep the list's path */
		for (i = 0; i < n->count; i++)
			if ((error = walk(c, n->items[i])) < 0)
				return error;
		return 0;
	}
	return leaf(c, n);
}

static int check_mac(ctx *c)
{
	unsigned char digest[64];
	char hex[129];
	tend_buf stored = TEND_BUF_INIT;
	char type[16];
	size_t i;
	int error;

	crypto_hash_sha512_final(&c->mac_state, digest);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	for (i = 0; hex[i]; i++)
		if (hex[i] >= 'a' && hex[i] <= 'f')
			hex[i] = (char)(hex[i] - 32);
	if ((error = open_value(&stored, type, sizeof(type), c, c->mac, c->lastmodified,
				strlen(c->lastmodified))) < 0) {
		tend_error_prefix("%s: sops MAC: ", c->file);
		error = error == TEND_EAUTH ? TEND_EAUTH : error;
		goto out;
	}
	if (stored.size != 128 || sodium_memcmp(stored.ptr, hex, 128) != 0) {
		tend_error_set("%s: sops MAC mismatch: the file's values were modified", c->file);
		error = TEND_EAUTH;
		goto out;
	}
	error = 0;
out:
	tend_buf_dispose(&stored);
	return error;
}

tend_sops_format tend_sops_detect(const char *data, size_t len, const char *name)
{
	size_t i = 0;
	const char *n;

	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	if (i < len && data[i] == '{') {
		if (!memmem(data, len, "\"sops\"", 6) || !memmem(data, len, "\"mac\"", 5))
			return TEND_SOPS_AUTO;
		n = name ? strrchr(name, '.') : NULL;
		if ((!n || strcmp(n, ".json")) && memmem(data, len, "\"data\"", 6)) {
			/* binary files are JSON with only "data" and "sops" */
			json_t *j = json_loadb(data, len, 0, NULL);
			int bin = j && json_is_object(j) && json_object_size(j) == 2 &&
				  json_is_string(json_object_get(j, "data"));
			json_decref(j);
			if (bin)
				return TEND_SOPS_BINARY;
		}
		return TEND_SOPS_JSON;
	}
	if ((len >= 9 && !memcmp(data, "sops_mac=", 9)) || memmem(data, len, "\nsops_mac=", 10))
		return TEND_SOPS_DOTENV;
	if ((len >= 5 && !memcmp(data, "sops:", 5)) || memmem(data, len, "\nsops:", 6))
		return TEND_SOPS_YAML;
	return TEND_SOPS_AUTO;
}

int tend_sops_decrypt(tend_sops_doc **out, const char *data, size_t len, const char *display,
		      tend_sops_format format, const tend_age_identities *ids,
		      const tend_sops_limits *limits)
{
	tend_sops_limits lim = { 0, 0 };
	tend_sops_doc *doc = NULL;
	tend_sops_node *tree = NULL, *md = NULL;
	tend_yaml_doc *ydoc = NULL;
	json_t *j = NULL;
	const tend_sops_node *age = NULL;
	ctx c;
	size_t i;
	int error = TEND_EINVALID;

	memset(&c, 0, sizeof(c));
	if (limits)
		lim = *limits;
	if (!lim.max_bytes)
		lim.max_bytes = 16u << 20;
	if (!lim.max_depth)
		lim.max_depth = 64;
	if (lim.max_depth > 120)
		lim.max_depth = 120;
	c.lim = &lim;
	c.file = display ? display : "sops file";
	*out = NULL;
	if (len > lim.max_bytes) {
		tend_error_set("%s: %zu bytes, larger than the limit of %zu", c.file, len, lim.max_bytes);
		return TEND_ELIMIT;
	}
	if (format == TEND_SOPS_AUTO && !(format = tend_sops_detect(data, len, display))) {
		tend_error_set("%s: not a sops file (no sops metadata with a MAC)", c.file);
		return TEND_EINVALID;
	}
	if (!(doc = calloc(1, sizeof(*doc)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	doc->format = format;
	if (format == TEND_SOPS_YAML) {
		tend_yaml_limits yl = tend_yaml_default_limits;
		const tend_yaml_node *root;
		yl.max_bytes = lim.max_bytes;
		yl.max_depth = lim.max_depth;
		if ((error = tend_yaml_parse(&ydoc, c.file, data, len, &yl, NULL)) < 0)
			goto out;
		root = tend_yaml_doc_root(ydoc);
		if (!root || root->kind != TEND_YAML_MAP) {
			tend_error_set("%s: a sops YAML file is a mapping at the top", c.file);
			error = TEND_EINVALID;
			goto out;
		}
		if ((error = tend_sops_tree_from_yaml(&tree, root, c.file, &lim)) < 0)
			goto out;
	} else if (format == TEND_SOPS_JSON || format == TEND_SOPS_BINARY) {
		json_error_t jerr;
		if (!(j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(j)) {
			if (j)
				tend_error_set("%s: a sops JSON file is an object at the top", c.file);
			else
				tend_error_set("%s:%d:%d: %s", c.file, jerr.line, jerr.column, jerr.text);
			error = TEND_EINVALID;
			goto out;
		}
		if ((error = tend_sops_tree_from_json(&tree, j, c.file, &lim)) < 0)
			goto out;
	} else {
		if ((error = tend_sops_parse_dotenv(&tree, &md, data, len, c.file)) < 0)
			goto out;
	}
	if (!md) {
		/* take the "sops" key out of the tree */
		for (i = 0; i < tree->count; i++) {
			if (!strcmp(tree->keys[i], "sops")) {
				md = tree->items[i];
				free(tree->keys[i]);
				memmove(tree->keys + i, tree->keys + i + 1, (tree->count - i - 1) * sizeof(char *));
				memmove(tree->items + i, tree->items + i + 1,
					(tree->count - i - 1) * sizeof(tend_sops_node *));
				tree->count--;
				break;
			}
		}
		if (!md || md->kind != TEND_SOPS_MAP) {
			tend_error_set("%s: no sops metadata ('sops' key)", c.file);
			error = TEND_EINVALID;
			goto out;
		}
	}
	if ((error = load_meta(&c, md, &age)) < 0)
		goto out;
	if ((error = recover_key(&c, age, ids, doc)) < 0)
		goto out;
	crypto_hash_sha512_init(&c.mac_state);
	if ((error = walk(&c, tree)) < 0)
		goto out;
	if ((error = check_mac(&c)) < 0)
		goto out;
	doc->root = tree;
	tree = NULL;
	*out = doc;
	doc = NULL;
	error = 0;
out:
	sodium_memzero(c.key, sizeof(c.key));
	sodium_memzero(&c.mac_state, sizeof(c.mac_state));
	if (c.have_unenc_re)
		regfree(&c.unenc_re);
	if (c.have_enc_re)
		regfree(&c.enc_re);
	tend_sops_node_free(tree);
	tend_sops_node_free(md);
	tend_sops_doc_free(doc);
	tend_yaml_doc_free(ydoc);
	json_decref(j);
	return error;
}
