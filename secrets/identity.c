/* Loading age identities: age key files, unencrypted OpenSSH Ed25519 private
 * keys (native ssh-ed25519 plus the ssh-to-age X25519 mapping sops-nix uses),
 * passphrases, and age-encrypted key files. Keys are wiped on free. */
#include "secrets/identity_priv.h"
#include "secrets/age.h"
#include "secrets/bech32.h"
#include "secrets/hkdf.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_END "-----END OPENSSH PRIVATE KEY-----"

int tend_age_identities_new(tend_age_identities **out)
{
	if (!(*out = calloc(1, sizeof(**out)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	return 0;
}

void tend_age_identities_free(tend_age_identities *ids)
{
	size_t i;

	if (!ids)
		return;
	for (i = 0; i < ids->count; i++) {
		if (ids->items[i].pass) {
			sodium_memzero(ids->items[i].pass, ids->items[i].pass_len);
			free(ids->items[i].pass);
		}
	}
	if (ids->items)
		sodium_memzero(ids->items, ids->alloc * sizeof(*ids->items));
	free(ids->items);
	free(ids);
}

size_t tend_age_identities_count(const tend_age_identities *ids)
{
	return ids ? ids->count : 0;
}

const char *tend_age_identities_describe(const tend_age_identities *ids, size_t i)
{
	return ids && i < ids->count ? ids->items[i].describe : NULL;
}

static tend_age_identity *push(tend_age_identities *ids)
{
	tend_age_identity *n;
	size_t alloc;

	if (ids->count == ids->alloc) {
		alloc = ids->alloc ? ids->alloc * 2 : 4;
		if (ids->count >= 1024) {
			tend_error_set("more than 1024 identities");
			return NULL;
		}
		if (!(n = calloc(alloc, sizeof(*n)))) {
			tend_error_set("out of memory");
			return NULL;
		}
		if (ids->items) {
			memcpy(n, ids->items, ids->count * sizeof(*n));
			sodium_memzero(ids->items, ids->alloc * sizeof(*n));
			free(ids->items);
		}
		ids->items = n;
		ids->alloc = alloc;
	}
	n = &ids->items[ids->count++];
	memset(n, 0, sizeof(*n));
	return n;
}

int tend_age_identities_add_passphrase(tend_age_identities *ids, const char *pass, size_t len)
{
	tend_age_identity *id;

	if (!(id = push(ids)))
		return TEND_ERROR;
	id->kind = TEND_AGE_ID_SCRYPT;
	if (!(id->pass = malloc(len + 1))) {
		ids->count--;
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	memcpy(id->pass, pass, len);
	id->pass[len] = '\0';
	id->pass_len = len;
	snprintf(id->describe, sizeof(id->describe), "scrypt passphrase");
	return 0;
}

int tend_age_ssh_to_age_recipient(char *out, size_t out_size, const unsigned char ed25519_pk[32])
{
	unsigned char x[32];

	if (crypto_sign_ed25519_pk_to_curve25519(x, ed25519_pk) != 0) {
		tend_error_set("invalid Ed25519 public key");
		return TEND_EINVALID;
	}
	return tend_bech32_encode(out, out_size, "age", x, 32);
}

static int add_x25519(tend_age_identities *ids, const unsigned char secret[32])
{
	tend_age_identity *id;

	if (!(id = push(ids)))
		return TEND_ERROR;
	id->kind = TEND_AGE_ID_X25519;
	memcpy(id->secret, secret, 32);
	crypto_scalarmult_base(id->pub, id->secret);
	if (tend_bech32_encode(id->describe, sizeof(id->describe), "age", id->pub, 32) < 0)
		return TEND_ERROR;
	return 0;
}

static int add_age_keys(tend_age_identities *ids, const char *data, size_t len, const char *display)
{
	size_t pos = 0, lineno = 0, found = 0;
	int error = TEND_EINVALID;

	while (pos < len) {
		const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - line) : len - pos;
		char hrp[32];
		unsigned char key[64];
		size_t key_len;

		pos += line_len + (nl ? 1 : 0);
		lineno++;
		while (line_len && (line[line_len - 1] == '\r' || line[line_len - 1] == ' ' ||
				    line[line_len - 1] == '\t'))
			line_len--;
		while (line_len && (*line == ' ' || *line == '\t')) {
			line++;
			line_len--;
		}
		if (!line_len || *line == '#')
			continue;
		if (line_len > 18 && !strncmp(line, "AGE-SECRET-KEY-PQ-", 18)) {
			tend_error_set("%s:%zu: post-quantum identity (AGE-SECRET-KEY-PQ-...) is not supported",
				       display, lineno);
			return TEND_EUNSUPPORTED;
		}
		if (line_len > 11 && !strncmp(line, "AGE-PLUGIN-", 11)) {
			tend_error_set("%s:%zu: age plugin identities (AGE-PLUGIN-...) are not supported",
				       display, lineno);
			return TEND_EUNSUPPORTED;
		}
		if (line_len > 200 ||
		    tend_bech32_decode(hrp, sizeof(hrp), key, sizeof(key), &key_len, line, line_len) < 0 ||
		    strcmp(hrp, "age-secret-key-") || key_len != 32) {
			sodium_memzero(key, sizeof(key));
			tend_error_set("%s:%zu: not an age identity (expected AGE-SECRET-KEY-1...)",
				       display, lineno);
			return TEND_EINVALID;
		}
		error = add_x25519(ids, key);
		sodium_memzero(key, sizeof(key));
		if (error < 0)
			return error;
		found++;
	}
	if (!found) {
		tend_error_set("%s: no identities found", display);
		return TEND_EINVALID;
	}
	return 0;
}

/* SSH wire format readers over the decoded key blob. */
typedef struct {
	const unsigned char *p;
	size_t left;
} rd;

static int rd_u32(rd *r, unsigned long *v)
{
	if (r->left < 4)
		return -1;
	*v = ((unsigned long)r->p[0] << 24) | ((unsigned long)r->p[1] << 16) |
	     ((unsigned long)r->p[2] << 8) | r->p[3];
	r->p += 4;
	r->left -= 4;
	return 0;
}

static int rd_str(rd *r, const unsigned char **s, size_t *len)
{
	unsigned long n;

	if (rd_u32(r, &n) < 0 || n > r->left)
		return -1;
	*s = r->p;
	*len = n;
	r->p += n;
	r->left -= n;
	return 0;
}

static int str_is(const unsigned char *s, size_t len, const char *what)
{
	return len == strlen(what) && !memcmp(s, what, len);
}

static int add_openssh(tend_age_identities *ids, const char *data, size_t len, const char *display)
{
	const char *b = strstr(data, OPENSSH_BEGIN), *e;
	unsigned char *blob = NULL, x[32], hash[32];
	size_t blob_len = 0, n, slen;
	const unsigned char *s, *pub, *priv;
	size_t pub_len, priv_len;
	unsigned long nkeys, c1, c2;
	tend_age_identity *native;
	rd r;
	int error = TEND_EINVALID;

	(void)len;
	b += strlen(OPENSSH_BEGIN);
	if (!(e = strstr(b, OPENSSH_END))) {
		tend_error_set("%s: OpenSSH private key without its END line", display);
		goto out;
	}
	if (!(blob = malloc((size_t)(e - b)))) {
		tend_error_set("out of memory");
		error = TEND_ERROR;
		goto out;
	}
	if (sodium_base642bin(blob, (size_t)(e - b), b, (size_t)(e - b), " \t\r\n", &blob_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		tend_error_set("%s: OpenSSH private key: invalid base64", display);
		goto out;
	}
	r.p = blob;
	r.left = blob_len;
	if (r.left < 15 || memcmp(r.p, "openssh-key-v1", 15)) {
		tend_error_set("%s: not an openssh-key-v1 private key", display);
		goto out;
	}
	r.p += 15;
	r.left -= 15;
	if (rd_str(&r, &s, &slen) < 0)
		goto malformed;
	if (!str_is(s, slen, "none")) {
		tend_error_set("%s: the OpenSSH private key is passphrase-protected; tend needs an "
			       "unencrypted key (like a host key)", display);
		error = TEND_EUNSUPPORTED;
		goto out;
	}
	if (rd_str(&r, &s, &slen) < 0 || rd_str(&r, &s, &slen) < 0 || rd_u32(&r, &nkeys) < 0 ||
	    nkeys != 1 || rd_str(&r, &s, &slen) < 0)
		goto malformed;
	/* private section: check ints, type, pub, priv (seed || pub), comment */
	if (rd_str(&r, &s, &slen) < 0)
		goto malformed;
	r.p = s;
	r.left = slen;
	if (rd_u32(&r, &c1) < 0 || rd_u32(&r, &c2) < 0 || c1 != c2 || rd_str(&r, &s, &slen) < 0)
		goto malformed;
	if (!str_is(s, slen, "ssh-ed25519")) {
		tend_error_set("%s: OpenSSH key of type '%.*s': only ssh-ed25519 is supported",
			       display, (int)(slen > 32 ? 32 : slen), (const char *)s);
		error = TEND_EUNSUPPORTED;
		goto out;
	}
	if (rd_str(&r, &pub, &pub_len) < 0 || pub_len != 32 || rd_str(&r, &priv, &priv_len) < 0 ||
	    priv_len != 64 || memcmp(priv + 32, pub, 32))
		goto malformed;

	/* native ssh-ed25519 identity */
	if (!(native = push(ids))) {
		error = TEND_ERROR;
		goto out;
	}
	native->kind = TEND_AGE_ID_SSH_ED25519;
	if (crypto_sign_ed25519_sk_to_curve25519(native->secret, priv) != 0 ||
	    crypto_sign_ed25519_pk_to_curve25519(native->pub, pub) != 0) {
		ids->count--;
		tend_error_set("%s: invalid Ed25519 key", display);
		goto out;
	}
	memcpy(native->ssh_key, "\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
	memcpy(native->ssh_key + 19, pub, 32);
	crypto_hash_sha256(hash, native->ssh_key, sizeof(native->ssh_key));
	sodium_bin2base64(native->tag, sizeof(native->tag), hash, 4,
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	/* age: HKDF with an empty secret and the SSH public key as the salt */
	tend_hkdf_sha256(native->tweak, 32, native->ssh_key, sizeof(native->ssh_key), NULL, 0,
			 (const unsigned char *)"age-encryption.org/v1/ssh-ed25519", 33);
	snprintf(native->describe, sizeof(native->describe), "ssh-ed25519 key tag %s", native->tag);

	/* ssh-to-age: the same scalar as a plain X25519 identity */
	memcpy(x, native->secret, 32);
	error = add_x25519(ids, x);
	sodium_memzero(x, sizeof(x));
	if (error < 0)
		goto out;
	n = strlen(ids->items[ids->count - 1].describe);
	snprintf(ids->items[ids->count - 1].describe + n,
		 sizeof(ids->items[0].describe) - n, " (ssh-to-age)");
	error = 0;
	goto out;
malformed:
	tend_error_set("%s: malformed OpenSSH private key", display);
	error = TEND_EINVALID;
out:
	if (blob) {
		sodium_memzero(blob, blob_len);
		free(blob);
	}
	return error;
}

int tend_age_identities_add_data(tend_age_identities *ids, const char *data, size_t len,
				 const char *display)
{
	tend_buf plain = TEND_BUF_INIT;
	int error;

	if (!display)
		display = "identity";
	if (memchr(data, '\0', len)) {
		if (tend_age_detect(data, len) != 1) {
			tend_error_set("%s: binary data is not an identity file", display);
			return TEND_EINVALID;
		}
	}
	if (tend_age_detect(data, len)) {
		/* an encrypted identity file (e.g. with a passphrase): decrypt, then parse */
		if ((error = tend_age_decrypt(&plain, data, len, display, ids, NULL)) < 0) {
			tend_error_prefix("encrypted identity file: ");
			return error;
		}
		if (tend_age_detect(plain.ptr, plain.size)) {
			tend_error_set("%s: an encrypted identity file inside an encrypted identity file",
				       display);
			error = TEND_EINVALID;
		} else {
			error = tend_age_identities_add_data(ids, plain.ptr, plain.size, display);
		}
		tend_buf_dispose_secure(&plain);
		return error;
	}
	/* NUL-terminated copy for strstr */
	if ((error = tend_buf_put(&plain, data, len)) < 0)
		return error;
	if (strstr(plain.ptr, OPENSSH_BEGIN))
		error = add_openssh(ids, plain.ptr, plain.size, display);
	else if (!strncmp(plain.ptr, "ssh-", 4) || !strncmp(plain.ptr, "age1", 4))
		tend_error_set("%s: is a public key (recipient), not an identity", display),
			error = TEND_EINVALID;
	else
		error = add_age_keys(ids, plain.ptr, plain.size, display);
	tend_buf_dispose_secure(&plain);
	return error;
}

int tend_age_identities_add_file(tend_age_identities *ids, const char *path)
{
	tend_buf data = TEND_BUF_INIT;
	int error;

	if ((error = tend_file_read(&data, path, 1u << 20)) < 0)
		goto out;
	error = tend_age_identities_add_data(ids, data.ptr ? data.ptr : "", data.size, path);
out:
	tend_buf_dispose_secure(&data);
	return error;
}
