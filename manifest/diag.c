/* Diagnostics: positioned messages collected (never just the first), sorted
 * by file, line and column, printed as "path:line:col: error: message"; and
 * the "did you mean" suggestions by edit distance. */
#include "manifest/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tend_diags_add(tend_diags *d, tend_diag_severity sev, const tend_pos *pos,
		    const char *fmt, ...)
{
	tend_diag *item;
	va_list ap;
	char *msg = NULL;
	char *file = NULL;

	if (d->count == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		tend_diag *n = realloc(d->items, ncap * sizeof(*n));
		if (!n)
			return;
		d->items = n;
		d->cap = ncap;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* the diagnostics outlive the model they describe: own the file name */
	if (pos && pos->file && !(file = strdup(pos->file))) {
		free(msg);
		return;
	}
	if (!msg) {
		free(file);
		return;
	}
	item = &d->items[d->count++];
	item->severity = sev;
	item->pos.file = file;
	item->pos.line = pos ? pos->line : 0;
	item->pos.col = pos ? pos->col : 0;
	item->message = msg;
	if (sev == TEND_DIAG_ERROR)
		d->errors++;
}

static int diag_cmp(const void *a, const void *b)
{
	const tend_diag *x = a, *y = b;
	const char *fx = x->pos.file ? x->pos.file : "", *fy = y->pos.file ? y->pos.file : "";
	int c = strcmp(fx, fy);

	if (c)
		return c;
	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	if (x->pos.col != y->pos.col)
		return x->pos.col < y->pos.col ? -1 : 1;
	return strcmp(x->message, y->message);
}

void tend_diags_sort(tend_diags *d)
{
	size_t i, j;

	if (d->count > 1)
		qsort(d->items, d->count, sizeof(*d->items), diag_cmp);
	/* the same problem found twice (e.g. through two paths) is reported once */
	for (i = j = 0; i < d->count; i++) {
		if (j > 0 && !diag_cmp(&d->items[j - 1], &d->items[i]) &&
		    d->items[j - 1].severity == d->items[i].severity) {
			if (d->items[i].severity == TEND_DIAG_ERROR)
				d->errors--;
			free(d->items[i].message);
			free((char *)d->items[i].pos.file);
			continue;
		}
		d->items[j++] = d->items[i];
	}
	d->count = j;
}

char *tend_diag_format(const tend_diag *diag)
{
	const char *sev = diag->severity == TEND_DIAG_ERROR ? "error" : "warning";
	const char *file = diag->pos.file ? diag->pos.file : "<fleet>";
	char *s = NULL;
	int rc;

	if (diag->pos.line && diag->pos.col)
		rc = asprintf(&s, "%s:%u:%u: %s: %s", file, diag->pos.line, diag->pos.col, sev,
			      diag->message);
	else if (diag->pos.line)
		rc = asprintf(&s, "%s:%u: %s: %s", file, diag->pos.line, sev, diag->message);
	else
		rc = asprintf(&s, "%s: %s: %s", file, sev, diag->message);
	return rc < 0 ? NULL : s;
}

void tend_diags_dispose(tend_diags *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->count; i++) {
		free(d->items[i].message);
		free((char *)d->items[i].pos.file);
	}
	free(d->items);
	memset(d, 0, sizeof(*d));
}

/* Edit distance counting a swap of two neighbours as one edit (optimal string
 * alignment), since "hsot" for "host" is the commonest typo; words longer
 * than 64 are "far". */
size_t tend_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t rows[3][65], *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

	if (la > 64 || lb > 64)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		size_t *t;
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
		t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

/* A candidate is close enough when at most a third of the word (at least one
 * edit, at most three) differs; ties go to the first (callers pass sorted lists). */
const char *tend_suggest(const char *word, const void *ctx, size_t n, tend_name_at at)
{
	size_t len = strlen(word), limit = len / 3, best = (size_t)-1, i;
	const char *found = NULL;

	if (limit < 1)
		limit = 1;
	if (limit > 3)
		limit = 3;
	for (i = 0; i < n; i++) {
		const char *cand = at(ctx, i);
		size_t d;
		if (!cand)
			continue;
		d = tend_edit_distance(word, cand);
		if (d <= limit && d < best && d < strlen(cand)) {
			best = d;
			found = cand;
		}
	}
	return found;
}

static const char *list_at(const void *ctx, size_t i)
{
	return ((const char *const *)ctx)[i];
}

const char *tend_suggest_list(const char *word, const char *const *cands)
{
	size_t n = 0;

	while (cands[n])
		n++;
	return tend_suggest(word, cands, n, list_at);
}
