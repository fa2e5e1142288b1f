/* Decrypting one declared secret: detect age or sops, decrypt, and take the
 * whole document or one value. Output is wiped on every failure path. */
#include "secrets/decrypt.h"
#include "secrets/age.h"
#include "secrets/sops.h"
#include "util/error.h"
#include "util/fs.h"

#include <string.h>
#include <sodium.h>

static void discard(tend_buf *out, size_t start)
{
	if (out->ptr && out->size > start)
		sodium_memzero(out->ptr + start, out->size - start);
	out->size = start;
	if (out->ptr)
		out->ptr[start] = '\0';
}

int tend_secret_decrypt(tend_buf *out, const char *data, size_t len, const char *display,
			const char *key, const tend_age_identities *ids)
{
	tend_sops_doc *doc = NULL;
	tend_sops_format fmt;
	const tend_sops_node *node;
	size_t start = out->size;
	int error;

	if (!display)
		display = "secret";
	if (!data)
		data = "";
	if (tend_age_detect(data, len)) {
		if (key) {
			tend_error_set("%s: a key (%s) applies to sops files; this is an age file", display, key);
			return TEND_EINVALID;
		}
		return tend_age_decrypt(out, data, len, display, ids, NULL);
	}
	if (!(fmt = tend_sops_detect(data, len, display))) {
		tend_error_set("%s: neither an age file nor a sops file (no age header or armor, "
			       "no sops metadata)", display);
		return TEND_EINVALID;
	}
	if ((error = tend_sops_decrypt(&doc, data, len, display, fmt, ids, NULL)) < 0)
		return error;
	if (key) {
		if ((error = tend_sops_extract(&node, doc, key)) < 0 ||
		    (error = tend_sops_emit_node(out, doc, node)) < 0)
			tend_error_prefix("%s: ", display);
	} else if ((error = tend_sops_emit(out, doc)) < 0) {
		tend_error_prefix("%s: ", display);
	}
	if (error < 0)
		discard(out, start);
	tend_sops_doc_free(doc);
	return error;
}

int tend_secret_decrypt_file(tend_buf *out, const char *path, const char *display,
			     const char *key, const tend_age_identities *ids)
{
	tend_buf in = TEND_BUF_INIT;
	int error;

	if ((error = tend_file_read(&in, path, TEND_SECRET_MAX_INPUT)) < 0)
		return error;
	error = tend_secret_decrypt(out, in.ptr, in.size, display ? display : path, key, ids);
	tend_buf_dispose(&in);
	return error;
}
