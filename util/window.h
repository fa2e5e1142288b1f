/* Time windows in the host's local time, as operators write them in fleet.yaml: "Sun
 * 03:00-05:00", "Mon-Fri 22:00-02:00" (past midnight: it ends the next day), "Sat,Sun
 * 01:00-06:00", "daily 02:00-04:00" or "02:00-04:00". Parsing names what is wrong; tests of a
 * moment and the next opening use localtime_r (TZ and /etc/localtime decide). */
#ifndef TEND_UTIL_WINDOW_H
#define TEND_UTIL_WINDOW_H

#include <time.h>

typedef struct {
	unsigned days;     /* bit d (0 Sunday .. 6 Saturday): the window opens on that day */
	int start, end;    /* minutes after midnight; end <= start: it ends the next day */
} tend_window;

/* Parse text; on error TEND_EINVALID with a message saying what was expected (the caller
 * adds where it came from). */
int tend_window_parse(tend_window *out, const char *text);
/* 1 when t (local time) lies in the window (start inclusive, end exclusive). */
int tend_window_contains(const tend_window *w, time_t t);
/* The next moment at or after t when the window opens (t itself when it is open at t). */
time_t tend_window_next(const tend_window *w, time_t t);

#endif
