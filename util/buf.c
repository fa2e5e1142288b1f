/* Growable NUL-terminated byte buffer with an optional cap. */
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

int tend_buf_grow(tend_buf *buf, size_t target)
{
	size_t nsize;
	char *n;

	if (target + 1 <= buf->asize)
		return 0;
	if (buf->max && target > buf->max) {
		tend_error_set("size limit of %zu bytes exceeded", buf->max);
		return TEND_ELIMIT;
	}
	nsize = buf->asize ? buf->asize : 64;
	while (nsize < target + 1) {
		if (nsize > ((size_t)-1) / 2) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		nsize *= 2;
	}
	n = realloc(buf->ptr, nsize);
	if (!n) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	if (!buf->ptr)
		n[0] = '\0';   /* a fresh buffer is "" (tend_proc_run grows empty outputs) */
	buf->ptr = n;
	buf->asize = nsize;
	return 0;
}

int tend_buf_put(tend_buf *buf, const void *data, size_t len)
{
	int error;

	if (len > ((size_t)-1) - buf->size - 1) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	if ((error = tend_buf_grow(buf, buf->size + len)) < 0)
		return error;
	if (len)
		memcpy(buf->ptr + buf->size, data, len);
	buf->size += len;
	buf->ptr[buf->size] = '\0';
	return 0;
}

int tend_buf_puts(tend_buf *buf, const char *s)
{
	return tend_buf_put(buf, s, strlen(s));
}

int tend_buf_putc(tend_buf *buf, char c)
{
	return tend_buf_put(buf, &c, 1);
}

int tend_buf_printf(tend_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int len, error;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0) {
		tend_error_set("format error");
		return TEND_ERROR;
	}
	if ((error = tend_buf_grow(buf, buf->size + (size_t)len)) < 0)
		return error;
	va_start(ap, fmt);
	vsnprintf(buf->ptr + buf->size, (size_t)len + 1, fmt, ap);
	va_end(ap);
	buf->size += (size_t)len;
	return 0;
}

void tend_buf_clear(tend_buf *buf)
{
	buf->size = 0;
	if (buf->ptr)
		buf->ptr[0] = '\0';
}

char *tend_buf_detach(tend_buf *buf)
{
	char *p = buf->ptr;

	if (!p)
		p = calloc(1, 1);
	buf->ptr = NULL;
	buf->size = buf->asize = 0;
	return p;
}

void tend_buf_dispose(tend_buf *buf)
{
	if (!buf)
		return;
	free(buf->ptr);
	buf->ptr = NULL;
	buf->size = buf->asize = 0;
}

void tend_buf_dispose_secure(tend_buf *buf)
{
	if (!buf)
		return;
	if (buf->ptr)
		sodium_memzero(buf->ptr, buf->asize);
	tend_buf_dispose(buf);
}
