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
#include <math.h>
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

/* ---- typing plain scalars the way sops's YAML decoder (yaml.v3) does ---- */

static int match_int(const char *v, size_t len, long long *out)
{
	char *end;
	int base = 10;
	const char *p = v;

	if (!len || len > 40)
		return 0;
	if (*p == '+' || *p == '-')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o' || p[1] == 'b')) {
		base = p[1] == 'x' ? 16 : p[1] == 'o' ? 8 : 2;
		if (*v != '0')
			return 0;
		p += 2;
	}
	if (!*p)
		return 0;
	for (; *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (base == 16 && strchr("abcdefABCDEF", *p))))
			return 0;
	}
	errno = 0;
	if (base == 10)
		*out = strtoll(v, &end, 10);
	else
		*out = strtoll(v + 2, &end, base);
	return errno == 0 && *end == '\0';
}

static int match_float(const char *v, size_t len)
{
	const char *p = v;
	int digits = 0;

	if (!len || len > 64)
		return 0;
	if (*p == '+' || *p == '-')
		p++;
	if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF"))
		return 1;
	if (!strcmp(v, ".nan") || !strcmp(v, ".NaN") || !strcmp(v, ".NAN"))
		return 1;
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++, digits++;
	}
	if (!digits)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static double parse_float(const char *v)
{
	const char *p = v + (*v == '+' || *v == '-');

	if (p[0] == '.' && (p[1] == 'i' || p[1] == 'I'))
		return *v == '-' ? -INFINITY : INFINITY;
	if (p[0] == '.' && (p[1] == 'n' || p[1] == 'N'))
		return NAN;
	return strtod(v, NULL);
}

static tend_sops_kind plain_kind(const char *v, size_t len, char *norm, size_t norm_size)
{
	long long i;

	*norm = '\0';
	if (!len || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"))
		return TEND_SOPS_NULL;
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
		snprintf(norm, norm_size, "true");
		return TEND_SOPS_BOOL;
	}
	if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
		snprintf(norm, norm_size, "false");
		return TEND_SOPS_BOOL;
	}
	if (match_int(v, len, &i)) {
		snprintf(norm, norm_size, "%lld", i);
		return TEND_SOPS_INT;
	}
	if (match_float(v, len))
		return TEND_SOPS_FLOAT;
	return TEND_SOPS_STR;
}

int tend_sops_plain_is_str(const char *v, size_t len)
{
	char norm[64];

	return plain_kind(v, len, norm, sizeof(norm)) == TEND_SOPS_STR;
}

/* ---- converting parsed documents ---- */

static int from_yaml(tend_sops_node **out, const tend_yaml_node *y, unsigned depth, ctx *c)
{
	tend_sops_node *n;
	size_t i;
	int error;

	if (depth > c->lim->max_depth) {
		tend_error_set("%s:%u:%u: nested deeper than %u levels", c->file, y->line, y->col,
			       c->lim->max_depth);
		return TEND_ELIMIT;
	}
	if (y->kind == TEND_YAML_SCALAR) {
		char norm[64] = "";
		tend_sops_kind k = y->plain && !y->tag ? plain_kind(y->value, y->len, norm, sizeof(norm))
						       : TEND_SOPS_STR;
		if (!(n = tend_sops_node_new(k)))
			return TEND_ERROR;
		if (*norm)
			error = tend_sops_node_set(n, norm, strlen(norm));
		else
			error = tend_sops_node_set(n, y->value, y->len);
	} else {
		if (!(n = tend_sops_node_new(y->kind == TEND_YAML_MAP ? TEND_SOPS_MAP : TEND_SOPS_SEQ)))
			return TEND_ERROR;
		error = 0;
		for (i = 0; i < y->count && !error; i++) {
			tend_sops_node *child;
			if ((error = from_yaml(&child, y->items[i], depth + 1, c)) < 0)
				break;
			error = tend_sops_node_add(n, y->kind == TEND_YAML_MAP ? y->keys[i]->value : NULL,
						   y->kind == TEND_YAML_MAP ? y->keys[i]->len : 0, child);
		}
	}
	n->line = y->line;
	n->col = y->col;
	if (error < 0) {
		tend_sops_node_free(n);
		return error;
	}
	*out = n;
	return 0;
}

static int from_json(tend_sops_node **out, json_t *j, unsigned depth, ctx *c)
{
	tend_sops_node *n = NULL;
	char num[512];
	int error = 0;

	if (depth > c->lim->max_depth) {
		tend_error_set("%s: nested deeper than %u levels", c->file, c->lim->max_depth);
		return TEND_ELIMIT;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		if (!(n = tend_sops_node_new(TEND_SOPS_MAP)))
			return TEND_ERROR;
		json_object_foreach(j, k, v) {
			tend_sops_node *child;
			if ((error = from_json(&child, v, depth + 1, c)) < 0 ||
			    (error = tend_sops_node_add(n, k, strlen(k), child)) < 0)
				break;
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		if (!(n = tend_sops_node_new(TEND_SOPS_SEQ)))
			return TEND_ERROR;
		json_array_foreach(j, i, v) {
			tend_sops_node *child;
			if ((error = from_json(&child, v, depth + 1, c)) < 0 ||
			    (error = tend_sops_node_add(n, NULL, 0, child)) < 0)
				break;
		}
		break;
	}
	case JSON_STRING:
		if ((n = tend_sops_node_new(TEND_SOPS_STR)))
			error = tend_sops_node_set(n, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		if ((n = tend_sops_node_new(TEND_SOPS_INT)))
			error = tend_sops_node_set(n, num, strlen(num));
		break;
	case JSON_REAL:
		tend_sops_format_float(num, sizeof(num), json_real_value(j));
		if ((n = tend_sops_node_new(TEND_SOPS_FLOAT)))
			error = tend_sops_node_set(n, num, strlen(num));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		if ((n = tend_sops_node_new(TEND_SOPS_BOOL)))
			error = tend_sops_node_set(n, json_is_true(j) ? "true" : "false",
						   json_is_true(j) ? 4 : 5);
		break;
	default:
		n = tend_sops_node_new(TEND_SOPS_NULL);
	}
	if (!n)
		return TEND_ERROR;
	if (error < 0) {
		tend_sops_node_free(n);
		return error;
	}
	*out = n;
	return 0;
}

/* sops's flattened metadata keys (dotenv): age__list_0__map_enc */
static int unflatten_put(tend_sops_node *root, const char *key, const char *value, size_t vlen)
{
	tend_sops_node *cur = root;
	const char *p = key;

	for (;;) {
		const char *m = strstr(p, "__map_"), *l = strstr(p, "__list_"), *next = NULL;
		size_t seg_len;
		tend_sops_node *child = NULL, *existing = NULL;
		tend_sops_kind kind;
		size_t i;

		if (m && (!l || m < l))
			next = m;
		else if (l)
			next = l;
		seg_len = next ? (size_t)(next - p) : strlen(p);
		kind = !next ? TEND_SOPS_STR : next == l ? TEND_SOPS_SEQ : TEND_SOPS_MAP;
		if (cur->kind == TEND_SOPS_MAP) {
			for (i = 0; i < cur->count; i++)
				if (strlen(cur->keys[i]) == seg_len && !memcmp(cur->keys[i], p, seg_len))
					existing = cur->items[i];
		} else {
			unsigned long idx = strtoul(p, NULL, 10);
			if (idx > 1024)
				return TEND_ELIMIT;
			while (cur->count <= idx) {
				tend_sops_node *nul = tend_sops_node_new(TEND_SOPS_NULL);
				if (!nul || tend_sops_node_add(cur, NULL, 0, nul) < 0)
					return TEND_ERROR;
			}
			existing = cur->items[idx];
			if (existing->kind == TEND_SOPS_NULL) {
				if (!(child = tend_sops_node_new(kind)))
					return TEND_ERROR;
				tend_sops_node_free(existing);
				cur->items[idx] = existing = child;
			}
		}
		if (!existing) {
			if (!(existing = tend_sops_node_new(kind)) ||
			    tend_sops_node_add(cur, p, seg_len, existing) < 0)
				return TEND_ERROR;
		}
		if (!next) {
			if (existing->kind != TEND_SOPS_STR)
				return TEND_EINVALID;
			return tend_sops_node_set(existing, value, vlen);
		}
		if (existing->kind != kind)
			return TEND_EINVALID;
		cur = existing;
		p = next + (next == l ? 7 : 6);
	}
}

static int parse_dotenv(tend_sops_node **out, tend_sops_node **meta, const char *data, size_t len,
			ctx *c)
{
	tend_sops_node *root = tend_sops_node_new(TEND_SOPS_MAP), *md = tend_sops_node_new(TEND_SOPS_MAP);
	tend_buf val = TEND_BUF_INIT;
	size_t pos = 0;
	unsigned lineno = 0;
	int error = TEND_ERROR;

	if (!root || !md)
		goto out;
	while (pos < len) {
		const char *line = data + pos, *nl = memchr(line, '\n', len - pos), *eq, *s;
		size_t line_len = nl ? (size_t)(nl - line) : len - pos;
		tend_sops_node *n;

		pos += line_len + (nl ? 1 : 0);
		lineno++;
		if (!line_len || line[0] == '#')
			continue;
		if (!(eq = memchr(line, '=', line_len))) {
			tend_error_set("%s:%u:1: invalid dotenv line (no '=')", c->file, lineno);
			error = TEND_EINVALID;
			goto out;
		}
		tend_buf_clear(&val);
		for (s = eq + 1; s < line + line_len; s++) {
			if (s[0] == '\\' && s + 1 < line + line_len && s[1] == 'n') {
				error = tend_buf_putc(&val, '\n');
				s++;
			} else {
				error = tend_buf_putc(&val, *s);
			}
			if (error < 0)
				goto out;
		}
		if ((size_t)(eq - line) > 5 && !strncmp(line, "sops_", 5)) {
			char *k = strndup(line + 5, (size_t)(eq - line) - 5);
			error = k ? unflatten_put(md, k, val.ptr ? val.ptr : "", val.size) : TEND_ERROR;
			free(k);
			if (error < 0) {
				tend_error_set("%s:%u:1: invalid sops metadata key", c->file, lineno);
				goto out;
			}
			continue;
		}
		error = TEND_ERROR;
		if (!(n = tend_sops_node_new(TEND_SOPS_STR)) ||
		    tend_sops_node_set(n, val.ptr ? val.ptr : "", val.size) < 0 ||
		    tend_sops_node_add(root, line, (size_t)(eq - line), n) < 0)
			goto out;
		n->line = lineno;
		n->col = (unsigned)(eq - line) + 2;
	}
	*out = root;
	*meta = md;
	root = md = NULL;
	error = 0;
out:
	tend_buf_dispose_secure(&val);
	tend_sops_node_free(root);
	tend_sops_node_free(md);
	return error;
}

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
	for (i = 0; i < nrec; i++)
		tend_buf_printf(&msg, "%s%s", i ? ", " : "", doc->recipients[i] ? doc->recipients[i] : "?");
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

	if (strncmp(v, "ENC[AES256_GCM,data:", 20) || v[vlen - 1] != ']' ||
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
		tend_sops_format_float(num, sizeof(num), parse_float(n->value));
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
			if (!match_int(plain.ptr, plain.size, &v) || strchr(plain.ptr, 'x') ||
			    strchr(plain.ptr, 'o') || strchr(plain.ptr, 'b')) {
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
		if ((error = from_yaml(&tree, root, 0, &c)) < 0)
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
		if ((error = from_json(&tree, j, 0, &c)) < 0)
			goto out;
	} else {
		if ((error = parse_dotenv(&tree, &md, data, len, &c)) < 0)
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
