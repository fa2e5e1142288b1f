/* Secret values masked ("***") in every text a reconcile stores or sends:
 * history, the report (status, logs, mails) and failed-commit reasons; the
 * values are the commit's secrets and every value in the secrets store. */
#include "reconcile/internal.h"
#include "util/beneath.h"
#include "secrets/install.h"
#include "util/error.h"
#include "util/fs.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Shorter values are not masked: "***" for every "ab" in a probe body would
 * hide the text without protecting a secret worth the name. */
#define MASK_MIN_LEN 4
#define MASK_MAX_VALUES 4096

void tend_mask_dispose(tend_mask *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		tend_buf_dispose_secure(&m->vals[i]);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

int tend_mask_add(tend_mask *m, const char *v, size_t len)
{
	tend_buf *grown;
	size_t i;

	while (len && (v[len - 1] == '\n' || v[len - 1] == '\r'))   /* a file's last newline */
		len--;
	if (len < MASK_MIN_LEN || m->n >= MASK_MAX_VALUES)
		return 0;
	for (i = 0; i < m->n; i++)
		if (m->vals[i].size == len && !memcmp(m->vals[i].ptr, v, len))
			return 0;
	if (!(grown = realloc(m->vals, (m->n + 1) * sizeof(*grown)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	m->vals = grown;
	memset(&m->vals[m->n], 0, sizeof(tend_buf));
	if (tend_buf_put(&m->vals[m->n], v, len) < 0)
		return TEND_ERROR;
	m->n++;
	return 0;
}

/* Every value in the secrets store's generations: the installed set, the one a change in
 * flight replaced (a rollback puts it back), and any left by an interrupted change. */
static int add_stored(void *payload, const char *data, size_t len)
{
	return tend_mask_add(payload, data, len);
}

int tend_mask_collect(tend_mask *m, const tend_config *cfg, const tend_state *st,
		      const tend_desired *d)
{
	tend_buf v = TEND_BUF_INIT;
	size_t i;
	int error = 0;

	for (i = 0; d && i < d->n_files && !error; i++)
		if (d->files[i].secret)
			error = tend_mask_add(m, d->files[i].data, d->files[i].len);
	for (i = 0; st && i < st->n_files && !error; i++) {
		if (st->files[i].kind != TEND_FILE_SECRET)
			continue;
		if (tend_reconcile_file_read(&v, cfg, st->files[i].path, 1, 64u << 20) == 0)
			error = tend_mask_add(m, v.ptr, v.size);
		else
			tend_error_clear();
		tend_buf_dispose_secure(&v);
	}
	if (!error && tend_secrets_store_values(cfg->secrets_root, add_stored, m) < 0) {
		tend_error_clear();   /* what cannot be read cannot leak through tend either */
	}
	return error;
}

char *tend_mask_apply(const tend_mask *m, const char *text)
{
	tend_buf out = TEND_BUF_INIT;
	const char *p;
	size_t i;

	if (!text)
		return NULL;
	if (!m || !m->n)
		return strdup(text);
	for (p = text; *p;) {
		size_t hit = 0;

		for (i = 0; i < m->n && !hit; i++)
			if (*p == m->vals[i].ptr[0] && !strncmp(p, m->vals[i].ptr, m->vals[i].size))
				hit = m->vals[i].size;
		if (hit) {
			tend_buf_puts(&out, "***");
			p += hit;
		} else {
			tend_buf_putc(&out, *p++);
		}
	}
	if (!out.ptr)
		return strdup("");
	return tend_buf_detach(&out);
}

void tend_mask_inplace(const tend_mask *m, char **text)
{
	char *masked;

	if (!m || !m->n || !*text || !(masked = tend_mask_apply(m, *text)))
		return;
	free(*text);
	*text = masked;
}
