/* Thread-local last-error message, set where a failure is detected. */
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TEND_ERROR_MAX 2048

static _Thread_local char tend_error_buf[TEND_ERROR_MAX];

void tend_error_vset(const char *fmt, va_list ap)
{
	vsnprintf(tend_error_buf, sizeof(tend_error_buf), fmt, ap);
}

void tend_error_set(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tend_error_vset(fmt, ap);
	va_end(ap);
}

void tend_error_set_errno(const char *fmt, ...)
{
	int saved = errno;
	char ctx[TEND_ERROR_MAX / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	snprintf(tend_error_buf, sizeof(tend_error_buf), "%s: %s", ctx, strerror(saved));
	errno = saved;
}

void tend_error_prefix(const char *fmt, ...)
{
	char old[TEND_ERROR_MAX];
	va_list ap;
	int n;

	memcpy(old, tend_error_buf, sizeof(old));
	if (!old[0])
		strcpy(old, "unknown error");
	va_start(ap, fmt);
	n = vsnprintf(tend_error_buf, sizeof(tend_error_buf), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(tend_error_buf))
		memcpy(tend_error_buf + n, old,
		       strnlen(old, sizeof(tend_error_buf) - (size_t)n - 1) + 0);
	tend_error_buf[sizeof(tend_error_buf) - 1] = '\0';
	if (n >= 0 && (size_t)n < sizeof(tend_error_buf))
		tend_error_buf[n + strnlen(old, sizeof(tend_error_buf) - (size_t)n - 1)] = '\0';
}

const char *tend_error_last(void)
{
	return tend_error_buf[0] ? tend_error_buf : "unknown error";
}

void tend_error_clear(void)
{
	tend_error_buf[0] = '\0';
}
