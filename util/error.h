/* Error reporting shared by every library: functions return 0 or a negative
 * TEND_E* code and set a one-line message where the failure is detected
 * (libgit2's convention). Only agent/ prints or logs the message. */
#ifndef TEND_UTIL_ERROR_H
#define TEND_UTIL_ERROR_H

#include <stdarg.h>

enum {
	TEND_OK = 0,
	TEND_ERROR = -1,      /* generic failure, see tend_error_last() */
	TEND_ENOTFOUND = -3,  /* a named thing does not exist */
	TEND_EINVALID = -4,   /* bad input: manifest, config, file format */
	TEND_EREFUSED = -5,   /* refused on purpose: signature, fast-forward, policy */
	TEND_ETIMEOUT = -6,   /* a time limit ran out */
	TEND_ENOMATCH = -7,   /* no identity / key matched */
	TEND_EAUTH = -8,      /* authentication or integrity check failed */
	TEND_ELIMIT = -9,     /* a size, depth or count cap was hit */
	TEND_ELOCKED = -10,   /* another process holds the lock */
	TEND_EUNSUPPORTED = -11
};

#if defined(__GNUC__)
#define TEND_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TEND_PRINTF(a, b)
#endif

/* Replace the current thread's error message. */
void tend_error_set(const char *fmt, ...) TEND_PRINTF(1, 2);
void tend_error_vset(const char *fmt, va_list ap) TEND_PRINTF(1, 0);
/* Set the message to strerror(errno) prefixed by the formatted context. */
void tend_error_set_errno(const char *fmt, ...) TEND_PRINTF(1, 2);
/* Prepend context ("while fetching origin: ") to the current message. */
void tend_error_prefix(const char *fmt, ...) TEND_PRINTF(1, 2);
/* The current message, never NULL ("unknown error" when none was set). */
const char *tend_error_last(void);
void tend_error_clear(void);

#endif
