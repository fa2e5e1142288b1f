/* Time windows (util/window.h): a day set and a span of minutes, checked against the local
 * time of a moment. The span may run past midnight; it then belongs to the day it opens on. */
#include "util/window.h"
#include "util/error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static int day_parse(int *out, const char *s, size_t len)
{
	int d;

	if (len != 3)
		return -1;
	for (d = 0; d < 7; d++)
		if (!strncasecmp(s, day_names[d], 3)) {
			*out = d;
			return 0;
		}
	return -1;
}

/* "Mon", "Mon-Fri", "Sat,Sun", "Mon-Wed,Sat" into a bit set. */
static int days_parse(unsigned *out, const char *s, size_t len)
{
	size_t i = 0;

	*out = 0;
	if (len == 5 && !strncasecmp(s, "daily", 5)) {
		*out = 0x7f;
		return 0;
	}
	while (i < len) {
		size_t j = i;
		int a, b;

		while (j < len && s[j] != ',' && s[j] != '-')
			j++;
		if (day_parse(&a, s + i, j - i) < 0)
			return -1;
		b = a;
		if (j < len && s[j] == '-') {
			size_t k = ++j;

			while (j < len && s[j] != ',')
				j++;
			if (day_parse(&b, s + k, j - k) < 0)
				return -1;
		}
		for (;;) {
			*out |= 1u << a;
			if (a == b)
				break;
			a = (a + 1) % 7;
		}
		if (j < len && s[j] == ',' && j + 1 == len)
			return -1;
		i = j < len ? j + 1 : j;
	}
	return *out ? 0 : -1;
}

static int clock_parse(int *out, const char *s, size_t len)
{
	int h, m;

	if (len != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 24 || m > 59 || (h == 24 && m))
		return -1;
	*out = h * 60 + m;
	return 0;
}

int tend_window_parse(tend_window *out, const char *text)
{
	const char *sp = strrchr(text, ' '), *span = sp ? sp + 1 : text, *dash = strchr(span, '-');

	memset(out, 0, sizeof(*out));
	out->days = 0x7f;
	if (sp && days_parse(&out->days, text, (size_t)(sp - text)) < 0) {
		tend_error_set("'%s': expected days like Sun, Mon-Fri, Sat,Sun or daily before the "
			       "times", text);
		return TEND_EINVALID;
	}
	if (!dash || clock_parse(&out->start, span, (size_t)(dash - span)) < 0 ||
	    clock_parse(&out->end, dash + 1, strlen(dash + 1)) < 0) {
		tend_error_set("'%s': expected a span like 03:00-05:00 (24-hour HH:MM, local time)", text);
		return TEND_EINVALID;
	}
	if (out->start == out->end) {
		tend_error_set("'%s': the window is empty (it starts when it ends)", text);
		return TEND_EINVALID;
	}
	if (out->start == 24 * 60) {
		tend_error_set("'%s': a window cannot start at 24:00", text);
		return TEND_EINVALID;
	}
	return 0;
}

int tend_window_contains(const tend_window *w, time_t t)
{
	struct tm tm;
	int now, yday;

	if (!localtime_r(&t, &tm))
		return 0;
	now = tm.tm_hour * 60 + tm.tm_min;
	if (w->end > w->start)
		return (w->days >> tm.tm_wday & 1) && now >= w->start && now < w->end;
	/* past midnight: the evening part opens today, the morning part opened yesterday */
	yday = (tm.tm_wday + 6) % 7;
	return ((w->days >> tm.tm_wday & 1) && now >= w->start) ||
	       ((w->days >> yday & 1) && now < w->end);
}

time_t tend_window_next(const tend_window *w, time_t t)
{
	struct tm today, tm;
	int i;

	if (tend_window_contains(w, t))
		return t;
	if (!localtime_r(&t, &today))
		return 0;
	/* calendar days, not 86400 s steps: a day of a DST change is 23 or 25 hours long */
	for (i = 0; i < 8; i++) {
		time_t at;

		tm = today;
		tm.tm_mday += i;
		tm.tm_hour = w->start / 60;
		tm.tm_min = w->start % 60;
		tm.tm_sec = 0;
		tm.tm_isdst = -1;
		if ((at = mktime(&tm)) == (time_t)-1)
			return 0;
		/* mktime normalised the date: tm_wday is that day's */
		if ((w->days >> tm.tm_wday & 1) && at >= t)
			return at;
	}
	return 0;
}
