/* Stripping control characters: one pass, UTF-8 decoded by hand only to
 * tell sequences apart (no conversion), the output never longer than the
 * input so it works in place. */
#include "util/text.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (2..4), or 0 when it is not one
 * (overlong forms, surrogates and code points over U+10FFFF included). */
static size_t utf8_len(const unsigned char *p, unsigned *cp)
{
	size_t n, i;
	unsigned c;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)   /* also stops at the NUL */
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (n == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	*cp = c;
	return n;
}

void tend_text_strip_controls(char *s, int multiline)
{
	unsigned char *r = (unsigned char *)s, *w = (unsigned char *)s;

	if (!s)
		return;
	while (*r) {
		unsigned cp = 0;
		size_t n;

		if (*r < 0x80) {
			if ((*r < 0x20 && !(multiline && (*r == '\n' || *r == '\t'))) || *r == 0x7f)
				*w++ = '?';
			else
				*w++ = *r;
			r++;
			continue;
		}
		if (!(n = utf8_len(r, &cp)) || (cp >= 0x80 && cp <= 0x9f)) {
			*w++ = '?';
			r += n ? n : 1;
			continue;
		}
		memmove(w, r, n);
		w += n;
		r += n;
	}
	*w = '\0';
}

char *tend_text_clean_dup(const char *s, int multiline)
{
	char *copy;

	if (!s || !(copy = strdup(s)))
		return NULL;
	tend_text_strip_controls(copy, multiline);
	return copy;
}
