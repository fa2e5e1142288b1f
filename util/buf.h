/* A growable byte buffer, always NUL-terminated, with a size cap so that
 * nothing a user controls can grow without bound. */
#ifndef TEND_UTIL_BUF_H
#define TEND_UTIL_BUF_H

#include <stddef.h>
#include "util/error.h"

typedef struct {
	char *ptr;
	size_t size;   /* bytes used, not counting the terminating NUL */
	size_t asize;  /* bytes allocated */
	size_t max;    /* 0: no cap; otherwise appends past max fail with TEND_ELIMIT */
} tend_buf;

#define TEND_BUF_INIT { NULL, 0, 0, 0 }

int tend_buf_grow(tend_buf *buf, size_t target);
int tend_buf_put(tend_buf *buf, const void *data, size_t len);
int tend_buf_puts(tend_buf *buf, const char *s);
int tend_buf_putc(tend_buf *buf, char c);
int tend_buf_printf(tend_buf *buf, const char *fmt, ...) TEND_PRINTF(2, 3);
void tend_buf_clear(tend_buf *buf);
/* Hand the memory to the caller (who frees it); the buffer is reset. */
char *tend_buf_detach(tend_buf *buf);
void tend_buf_dispose(tend_buf *buf);
/* Like dispose, but wipes the bytes first: for plaintext secrets. */
void tend_buf_dispose_secure(tend_buf *buf);

#endif
