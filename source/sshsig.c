/* SSHSIG parsing and Ed25519 verification (libsodium), following OpenSSH's
 * PROTOCOL.sshsig: the signed data is "SSHSIG" || string namespace ||
 * string reserved || string hash_alg || string H(message). */
#include "source/sshsig.h"
#include "util/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SSHSIG_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define SSHSIG_END "-----END SSH SIGNATURE-----"
#define SSHSIG_MAGIC "SSHSIG"

typedef struct {
	const unsigned char *p;
	size_t n;
} wire;

static int wire_u32(wire *w, uint32_t *out)
{
	if (w->n < 4)
		return -1;
	*out = (uint32_t)w->p[0] << 24 | (uint32_t)w->p[1] << 16 | (uint32_t)w->p[2] << 8 | w->p[3];
	w->p += 4;
	w->n -= 4;
	return 0;
}

static int wire_string(wire *w, const unsigned char **out, size_t *out_len)
{
	uint32_t len;

	if (wire_u32(w, &len) < 0 || len > w->n)
		return -1;
	*out = w->p;
	*out_len = len;
	w->p += len;
	w->n -= len;
	return 0;
}

/* A string field copied into a NUL-terminated buffer; refuses embedded NULs. */
static int wire_cstring(wire *w, char *out, size_t size)
{
	const unsigned char *s;
	size_t len;

	if (wire_string(w, &s, &len) < 0 || len >= size || memchr(s, '\0', len))
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

void tend_ssh_fingerprint(char out[TEND_SSH_FINGERPRINT_SIZE], const unsigned char *blob, size_t len)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, blob, len);
	memcpy(out, "SHA256:", 7);
	sodium_bin2base64(out + 7, TEND_SSH_FINGERPRINT_SIZE - 7, h, sizeof(h),
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

void tend_sshsig_dispose(tend_sshsig *sig)
{
	if (!sig)
		return;
	free(sig->pubkey);
	memset(sig, 0, sizeof(*sig));
}

/* Split a public key blob: its type, and the raw key for Ed25519. */
static int parse_pubkey(tend_sshsig *out, const unsigned char *blob, size_t len)
{
	wire w = { blob, len };
	const unsigned char *key;
	size_t key_len;

	if (wire_cstring(&w, out->keytype, sizeof(out->keytype)) < 0)
		return -1;
	if (strcmp(out->keytype, "ssh-ed25519") != 0)
		return 0; /* kept for messages; refused at verification */
	if (wire_string(&w, &key, &key_len) < 0 || key_len != 32 || w.n != 0)
		return -1;
	memcpy(out->ed25519, key, 32);
	return 0;
}

int tend_sshsig_parse(tend_sshsig *out, const char *armored, size_t len)
{
	const char *begin, *body, *end;
	unsigned char *bin = NULL;
	size_t bin_len = 0;
	const char *b64_end = NULL;
	int error = TEND_EINVALID;

	memset(out, 0, sizeof(*out));
	if (len > TEND_SSHSIG_MAX_ARMORED) {
		tend_error_set("SSH signature larger than %d bytes", TEND_SSHSIG_MAX_ARMORED);
		return TEND_ELIMIT;
	}
	begin = memmem(armored, len, SSHSIG_BEGIN, strlen(SSHSIG_BEGIN));
	if (!begin) {
		tend_error_set("not an SSH signature (no '" SSHSIG_BEGIN "')");
		goto out;
	}
	body = begin + strlen(SSHSIG_BEGIN);
	end = memmem(body, len - (size_t)(body - armored), SSHSIG_END, strlen(SSHSIG_END));
	if (!end) {
		tend_error_set("SSH signature has no '" SSHSIG_END "' line");
		goto out;
	}
	bin = malloc((size_t)(end - body) + 1);
	if (!bin) {
		error = -1;
		goto out;
	}
	if (sodium_base642bin(bin, (size_t)(end - body) + 1, body, (size_t)(end - body), " \t\r\n",
			      &bin_len, &b64_end, sodium_base64_VARIANT_ORIGINAL) != 0 || b64_end != end) {
		tend_error_set("SSH signature: invalid base64");
		goto out;
	}
	error = tend_sshsig_parse_blob(out, bin, bin_len);
out:
	free(bin);
	return error;
}

int tend_sshsig_parse_blob(tend_sshsig *out, const unsigned char *bin, size_t bin_len)
{
	size_t field_len;
	const unsigned char *field;
	uint32_t version;
	wire w, sw;
	int error = TEND_EINVALID;

	memset(out, 0, sizeof(*out));
	w.p = bin;
	w.n = bin_len;
	if (w.n < 6 || memcmp(w.p, SSHSIG_MAGIC, 6) != 0) {
		tend_error_set("SSH signature: missing SSHSIG magic");
		goto out;
	}
	w.p += 6;
	w.n -= 6;
	if (wire_u32(&w, &version) < 0 || version != 1) {
		tend_error_set("SSH signature: unsupported version");
		goto out;
	}
	if (wire_string(&w, &field, &field_len) < 0 || field_len == 0) {
		tend_error_set("SSH signature: truncated public key");
		goto out;
	}
	if (!(out->pubkey = malloc(field_len))) {
		error = -1;
		goto out;
	}
	memcpy(out->pubkey, field, field_len);
	out->pubkey_len = field_len;
	if (parse_pubkey(out, field, field_len) < 0) {
		tend_error_set("SSH signature: malformed public key");
		goto out;
	}
	if (wire_cstring(&w, out->namespace, sizeof(out->namespace)) < 0 ||
	    wire_string(&w, &field, &field_len) < 0 || /* reserved */
	    wire_cstring(&w, out->hash_alg, sizeof(out->hash_alg)) < 0 ||
	    wire_string(&w, &field, &field_len) < 0 || w.n != 0) {
		tend_error_set("SSH signature: truncated or malformed fields");
		goto out;
	}
	sw.p = field;
	sw.n = field_len;
	if (wire_cstring(&sw, out->sigtype, sizeof(out->sigtype)) < 0 ||
	    wire_string(&sw, &field, &field_len) < 0) {
		tend_error_set("SSH signature: malformed signature blob");
		goto out;
	}
	if (!strcmp(out->sigtype, "ssh-ed25519")) {
		if (field_len != 64 || sw.n != 0) {
			tend_error_set("SSH signature: malformed Ed25519 signature");
			goto out;
		}
		memcpy(out->sig, field, 64);
		out->sig_len = 64;
	}
	error = 0;
out:
	if (error < 0)
		tend_sshsig_dispose(out);
	return error;
}

int tend_sshsig_verify(const tend_sshsig *sig, const char *ns, const void *msg, size_t len)
{
	unsigned char h[crypto_hash_sha512_BYTES];
	unsigned char *signed_data = NULL;
	size_t h_len, nl = strlen(sig->namespace), al = strlen(sig->hash_alg), n = 0;
	int error = TEND_EAUTH;

	if (sodium_init() < 0)
		return -1;
	if (strcmp(sig->keytype, "ssh-ed25519") != 0 || strcmp(sig->sigtype, "ssh-ed25519") != 0) {
		tend_error_set("unsupported signature key type %s (only ssh-ed25519 is accepted)",
			       strcmp(sig->keytype, "ssh-ed25519") ? sig->keytype : sig->sigtype);
		return TEND_EUNSUPPORTED;
	}
	if (strcmp(sig->namespace, ns) != 0) {
		tend_error_set("signature namespace is \"%s\", not \"%s\"", sig->namespace, ns);
		return TEND_EAUTH;
	}
	if (!strcmp(sig->hash_alg, "sha512")) {
		crypto_hash_sha512(h, msg, len);
		h_len = crypto_hash_sha512_BYTES;
	} else if (!strcmp(sig->hash_alg, "sha256")) {
		crypto_hash_sha256(h, msg, len);
		h_len = crypto_hash_sha256_BYTES;
	} else {
		tend_error_set("unsupported signature hash algorithm \"%s\"", sig->hash_alg);
		return TEND_EUNSUPPORTED;
	}
	if (!(signed_data = malloc(6 + 4 + nl + 4 + 4 + al + 4 + h_len)))
		return -1;
#define PUT_U32(v) do { uint32_t v_ = (uint32_t)(v); signed_data[n++] = (unsigned char)(v_ >> 24); \
	signed_data[n++] = (unsigned char)(v_ >> 16); signed_data[n++] = (unsigned char)(v_ >> 8); \
	signed_data[n++] = (unsigned char)v_; } while (0)
	memcpy(signed_data, SSHSIG_MAGIC, 6);
	n = 6;
	PUT_U32(nl);
	memcpy(signed_data + n, sig->namespace, nl);
	n += nl;
	PUT_U32(0); /* reserved */
	PUT_U32(al);
	memcpy(signed_data + n, sig->hash_alg, al);
	n += al;
	PUT_U32(h_len);
	memcpy(signed_data + n, h, h_len);
	n += h_len;
#undef PUT_U32
	if (sig->sig_len == 64 && crypto_sign_verify_detached(sig->sig, signed_data, n, sig->ed25519) == 0)
		error = 0;
	else
		tend_error_set("bad signature");
	free(signed_data);
	return error;
}
