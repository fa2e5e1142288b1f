/* Line diffs of rendered outputs: Myers' O(ND) algorithm in linear space (the
 * middle-snake recursion GNU diff uses), printed as unified diffs with three
 * lines of context. Lines are interned to integers first so comparing is cheap. */
#include "render/render_int.h"
#include "util/error.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONTEXT 3

typedef struct {
	const char *p;
	size_t len;      /* without the newline */
	int newline;     /* ends with '\n' */
} line;

typedef struct {
	const int *xv, *yv;   /* interned lines */
	char *xchg, *ychg;    /* 1: deleted from x / inserted into y */
	long *fd, *bd;        /* diagonal vectors, offset so index -ny-1 .. nx+1 is valid */
	long too_expensive;   /* edit cost after which a good-enough split is taken */
} diff_ctx;

static int split_lines(line **out, size_t *n, const char *s, size_t len)
{
	size_t count = 0, i, start = 0, k = 0;
	line *l;

	for (i = 0; i < len; i++)
		if (s[i] == '\n')
			count++;
	if (len && s[len - 1] != '\n')
		count++;
	if (!(l = calloc(count ? count : 1, sizeof(*l)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '\n') {
			l[k].p = s + start;
			l[k].len = i - start;
			l[k].newline = 1;
			k++;
			start = i + 1;
		}
	}
	if (start < len) {
		l[k].p = s + start;
		l[k].len = len - start;
		l[k].newline = 0;
	}
	*out = l;
	*n = count;
	return 0;
}

/* The part of a line that decides equality: all of it, or for a stamp line
 * (when stamps are ignored) only the stamp's fixed prefix. */
static size_t key_len(const line *l, int nostamp)
{
	size_t prefix = nostamp ? tend_render_is_stamp_line(l->p, l->len) : 0;

	return prefix ? prefix : l->len;
}

static uint64_t line_hash(const line *l, size_t len)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)l->p[i];
		h *= 1099511628211ULL;
	}
	return h ^ (uint64_t)l->newline;
}

/* Give equal lines equal numbers (open addressing on the line hash). */
static int intern(int **xv, int **yv, const line *a, size_t na, const line *b, size_t nb, int nostamp)
{
	size_t cap = 16, total = na + nb, i, mask;
	const line **slots = NULL;
	int *ids = NULL, next = 0, *out[2] = { NULL, NULL };

	while (cap < total * 2)
		cap *= 2;
	mask = cap - 1;
	if (!(slots = calloc(cap, sizeof(*slots))) || !(ids = calloc(cap, sizeof(*ids))) ||
	    !(out[0] = malloc((na ? na : 1) * sizeof(int))) || !(out[1] = malloc((nb ? nb : 1) * sizeof(int)))) {
		tend_error_set("out of memory");
		free(slots);
		free(ids);
		free(out[0]);
		free(out[1]);
		return TEND_ERROR;
	}
	for (i = 0; i < total; i++) {
		const line *l = i < na ? &a[i] : &b[i - na];
		size_t kl = key_len(l, nostamp), s = (size_t)line_hash(l, kl) & mask;

		while (slots[s] && !(key_len(slots[s], nostamp) == kl && slots[s]->newline == l->newline &&
				     !memcmp(slots[s]->p, l->p, kl)))
			s = (s + 1) & mask;
		if (!slots[s]) {
			slots[s] = l;
			ids[s] = next++;
		}
		if (i < na)
			out[0][i] = ids[s];
		else
			out[1][i - na] = ids[s];
	}
	free(slots);
	free(ids);
	*xv = out[0];
	*yv = out[1];
	return 0;
}

/* Find the midpoint of the shortest edit script of x[xoff,xlim) and y[yoff,ylim). */
static void middle_snake(diff_ctx *c, long xoff, long xlim, long yoff, long ylim, long *xmid, long *ymid)
{
	long *fd = c->fd, *bd = c->bd;
	const int *xv = c->xv, *yv = c->yv;
	const long dmin = xoff - ylim, dmax = xlim - yoff;
	const long fmid = xoff - yoff, bmid = xlim - ylim;
	long fmin = fmid, fmax = fmid, bmin = bmid, bmax = bmid, d, cost = 0;
	const int odd = (fmid - bmid) & 1;

	fd[fmid] = xoff;
	bd[bmid] = xlim;
	for (;;) {
		if (fmin > dmin)
			fd[--fmin - 1] = -1;
		else
			++fmin;
		if (fmax < dmax)
			fd[++fmax + 1] = -1;
		else
			--fmax;
		for (d = fmax; d >= fmin; d -= 2) {
			long x, y, tlo = fd[d - 1], thi = fd[d + 1];

			x = tlo >= thi ? tlo + 1 : thi;
			y = x - d;
			while (x < xlim && y < ylim && xv[x] == yv[y]) {
				x++;
				y++;
			}
			fd[d] = x;
			if (odd && bmin <= d && d <= bmax && bd[d] <= x) {
				*xmid = x;
				*ymid = y;
				return;
			}
		}
		if (bmin > dmin)
			bd[--bmin - 1] = LONG_MAX;
		else
			++bmin;
		if (bmax < dmax)
			bd[++bmax + 1] = LONG_MAX;
		else
			--bmax;
		for (d = bmax; d >= bmin; d -= 2) {
			long x, y, tlo = bd[d - 1], thi = bd[d + 1];

			x = tlo < thi ? tlo : thi - 1;
			y = x - d;
			while (x > xoff && y > yoff && xv[x - 1] == yv[y - 1]) {
				x--;
				y--;
			}
			bd[d] = x;
			if (!odd && fmin <= d && d <= fmax && x <= fd[d]) {
				*xmid = x;
				*ymid = y;
				return;
			}
		}
		/* Very different inputs: stop searching for the optimal split (which is
		 * quadratic) and take the furthest-reaching diagonal, as GNU diff does.
		 * The diff stays correct, just not always minimal. */
		if (++cost >= c->too_expensive) {
			long fxybest = -1, fxbest = xoff, bxybest = LONG_MAX, bxbest = xlim;

			for (d = fmax; d >= fmin; d -= 2) {
				long x = fd[d] < xlim ? fd[d] : xlim, y = x - d;

				if (ylim < y) {
					x = ylim + d;
					y = ylim;
				}
				if (fxybest < x + y) {
					fxybest = x + y;
					fxbest = x;
				}
			}
			for (d = bmax; d >= bmin; d -= 2) {
				long x = bd[d] > xoff ? bd[d] : xoff, y = x - d;

				if (y < yoff) {
					x = yoff + d;
					y = yoff;
				}
				if (x + y < bxybest) {
					bxybest = x + y;
					bxbest = x;
				}
			}
			if ((xlim + ylim) - bxybest < fxybest - (xoff + yoff)) {
				*xmid = fxbest;
				*ymid = fxybest - fxbest;
			} else {
				*xmid = bxbest;
				*ymid = bxybest - bxbest;
			}
			return;
		}
	}
}

static void compare(diff_ctx *c, long xoff, long xlim, long yoff, long ylim)
{
	long xmid, ymid;

	while (xoff < xlim && yoff < ylim && c->xv[xoff] == c->yv[yoff]) {
		xoff++;
		yoff++;
	}
	while (xlim > xoff && ylim > yoff && c->xv[xlim - 1] == c->yv[ylim - 1]) {
		xlim--;
		ylim--;
	}
	if (xoff == xlim) {
		while (yoff < ylim)
			c->ychg[yoff++] = 1;
	} else if (yoff == ylim) {
		while (xoff < xlim)
			c->xchg[xoff++] = 1;
	} else {
		middle_snake(c, xoff, xlim, yoff, ylim, &xmid, &ymid);
		compare(c, xoff, xmid, yoff, ymid);
		compare(c, xmid, xlim, ymid, ylim);
	}
}

static int put_line(tend_buf *out, char tag, const line *l)
{
	int error;

	if ((error = tend_buf_putc(out, tag)) < 0 || (error = tend_buf_put(out, l->p, l->len)) < 0 ||
	    (error = tend_buf_putc(out, '\n')) < 0)
		return error;
	if (!l->newline)
		return tend_buf_puts(out, "\\ No newline at end of file\n");
	return 0;
}

static int put_range(tend_buf *out, size_t start, size_t len)
{
	if (len == 1)
		return tend_buf_printf(out, "%zu", start + 1);
	if (len == 0)
		return tend_buf_printf(out, "%zu,0", start);
	return tend_buf_printf(out, "%zu,%zu", start + 1, len);
}

typedef struct { size_t a, alen, b, blen; } block;

static int emit_hunks(tend_buf *out, const line *a, size_t na, const line *b, size_t nb,
		      const char *xchg, const char *ychg)
{
	block *blocks = NULL;
	size_t nblocks = 0, i = 0, j = 0, h, k;
	int error = 0;

	if (!(blocks = malloc((na + nb + 1) * sizeof(*blocks)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	while (i < na || j < nb) {
		if ((i < na && xchg[i]) || (j < nb && ychg[j])) {
			block *bl = &blocks[nblocks++];

			bl->a = i;
			bl->b = j;
			while (i < na && xchg[i])
				i++;
			while (j < nb && ychg[j])
				j++;
			bl->alen = i - bl->a;
			bl->blen = j - bl->b;
		} else {
			i++;
			j++;
		}
	}
	for (h = 0; h < nblocks && !error; h = k) {
		size_t astart, aend, bstart, bend, pa, pb;

		/* Blocks closer than twice the context share a hunk. */
		for (k = h + 1; k < nblocks; k++)
			if (blocks[k].a - (blocks[k - 1].a + blocks[k - 1].alen) > 2 * CONTEXT)
				break;
		astart = blocks[h].a > CONTEXT ? blocks[h].a - CONTEXT : 0;
		bstart = blocks[h].b - (blocks[h].a - astart);
		aend = blocks[k - 1].a + blocks[k - 1].alen + CONTEXT;
		if (aend > na)
			aend = na;
		bend = blocks[k - 1].b + blocks[k - 1].blen + (aend - (blocks[k - 1].a + blocks[k - 1].alen));
		if ((error = tend_buf_puts(out, "@@ -")) < 0 || (error = put_range(out, astart, aend - astart)) < 0 ||
		    (error = tend_buf_puts(out, " +")) < 0 || (error = put_range(out, bstart, bend - bstart)) < 0 ||
		    (error = tend_buf_puts(out, " @@\n")) < 0)
			break;
		pa = astart;
		pb = bstart;
		for (i = h; i < k && !error; i++) {
			for (; pa < blocks[i].a && !error; pa++, pb++)
				error = put_line(out, ' ', &a[pa]);
			for (j = 0; j < blocks[i].alen && !error; j++)
				error = put_line(out, '-', &a[pa++]);
			for (j = 0; j < blocks[i].blen && !error; j++)
				error = put_line(out, '+', &b[pb++]);
		}
		for (; pa < aend && !error; pa++)
			error = put_line(out, ' ', &a[pa]);
	}
	free(blocks);
	return error;
}

static int diff_unified(tend_buf *out, int *changed, const char *a_name, const char *a, size_t alen,
			const char *b_name, const char *b, size_t blen, int nostamp)
{
	line *la = NULL, *lb = NULL;
	size_t na = 0, nb = 0, i;
	diff_ctx c;
	long *fdv = NULL, *bdv = NULL;
	int error = TEND_ERROR;

	memset(&c, 0, sizeof(c));
	*changed = !(alen == blen && (!alen || !memcmp(a, b, alen)));
	if (!*changed)
		return 0;
	if ((error = split_lines(&la, &na, a, alen)) < 0 || (error = split_lines(&lb, &nb, b, blen)) < 0 ||
	    (error = intern((int **)&c.xv, (int **)&c.yv, la, na, lb, nb, nostamp)) < 0)
		goto out;
	error = TEND_ERROR;
	if (!(c.xchg = calloc(na + 1, 1)) || !(c.ychg = calloc(nb + 1, 1)) ||
	    !(fdv = malloc((na + nb + 3) * sizeof(long))) || !(bdv = malloc((na + nb + 3) * sizeof(long)))) {
		tend_error_set("out of memory");
		goto out;
	}
	c.fd = fdv + nb + 1;
	c.bd = bdv + nb + 1;
	/* About the square root of the input size, at least 4096 (GNU diff's bound). */
	c.too_expensive = 1;
	for (i = na + nb + 3; i; i >>= 2)
		c.too_expensive <<= 1;
	if (c.too_expensive < 4096)
		c.too_expensive = 4096;
	compare(&c, 0, (long)na, 0, (long)nb);
	if (nostamp && !memchr(c.xchg, 1, na) && !memchr(c.ychg, 1, nb)) {
		*changed = 0;   /* only stamps differ */
		error = 0;
		goto out;
	}
	if ((error = tend_buf_printf(out, "--- %s\n+++ %s\n", a_name, b_name)) < 0)
		goto out;
	error = emit_hunks(out, la, na, lb, nb, c.xchg, c.ychg);
out:
	free(la);
	free(lb);
	free((void *)c.xv);
	free((void *)c.yv);
	free(c.xchg);
	free(c.ychg);
	free(fdv);
	free(bdv);
	return error;
}

int tend_render_diff_unified(tend_buf *out, int *changed, const char *a_name, const char *a,
			     size_t alen, const char *b_name, const char *b, size_t blen)
{
	return diff_unified(out, changed, a_name, a, alen, b_name, b, blen, 0);
}

int tend_render_diff_unified_nostamp(tend_buf *out, int *changed, const char *a_name, const char *a,
				     size_t alen, const char *b_name, const char *b, size_t blen)
{
	return diff_unified(out, changed, a_name, a, alen, b_name, b, blen, 1);
}
