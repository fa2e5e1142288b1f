/* Apply windows (util/window.c): what operators write parses, what they mistype is named, and
 * a moment is inside or outside as the host's local time says (TZ fixed here), also for a
 * window past midnight; the next opening is found. */
#include "util/window.h"
#include "util/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

/* 2026-12-06 was a Sunday; local time is UTC here. */
static time_t at(int mday, int hour, int min)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = 2026 - 1900;
	tm.tm_mon = 11;
	tm.tm_mday = mday;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

static void test_parse(void **state)
{
	tend_window w;

	(void)state;
	assert_int_equal(tend_window_parse(&w, "Sun 03:00-05:00"), 0);
	assert_int_equal(w.days, 1u << 0);
	assert_int_equal(w.start, 180);
	assert_int_equal(w.end, 300);
	assert_int_equal(tend_window_parse(&w, "Mon-Fri 22:00-02:00"), 0);
	assert_int_equal(w.days, 0x3e);
	assert_int_equal(tend_window_parse(&w, "Sat,sun 01:00-06:00"), 0);
	assert_int_equal(w.days, (1u << 6) | 1u);
	assert_int_equal(tend_window_parse(&w, "Fri-Mon 00:00-24:00"), 0);
	assert_int_equal(w.days, (1u << 5) | (1u << 6) | 1u | (1u << 1));
	assert_int_equal(tend_window_parse(&w, "daily 02:00-04:00"), 0);
	assert_int_equal(w.days, 0x7f);
	assert_int_equal(tend_window_parse(&w, "02:00-04:00"), 0);
	assert_int_equal(w.days, 0x7f);

	assert_int_equal(tend_window_parse(&w, "Sunday 03:00-05:00"), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "expected days"));
	assert_int_equal(tend_window_parse(&w, "Sun 3:00-05:00"), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "expected a span like 03:00-05:00"));
	assert_int_equal(tend_window_parse(&w, "Sun 03:00-25:00"), TEND_EINVALID);
	assert_int_equal(tend_window_parse(&w, "Sun 03:00"), TEND_EINVALID);
	assert_int_equal(tend_window_parse(&w, "Sat, 03:00-04:00"), TEND_EINVALID);
	assert_int_equal(tend_window_parse(&w, "Sat,Sun, 03:00-04:00"), TEND_EINVALID);
	assert_int_equal(tend_window_parse(&w, "03:00-03:00"), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "empty"));
	assert_int_equal(tend_window_parse(&w, ""), TEND_EINVALID);
}

static void test_contains_and_next(void **state)
{
	tend_window w;

	(void)state;
	assert_int_equal(tend_window_parse(&w, "Sun 03:00-05:00"), 0);
	assert_true(tend_window_contains(&w, at(6, 3, 0)));
	assert_true(tend_window_contains(&w, at(6, 4, 59)));
	assert_false(tend_window_contains(&w, at(6, 5, 0)));
	assert_false(tend_window_contains(&w, at(6, 2, 59)));
	assert_false(tend_window_contains(&w, at(7, 3, 30)));          /* Monday */
	assert_true(tend_window_next(&w, at(6, 4, 0)) == at(6, 4, 0));
	assert_true(tend_window_next(&w, at(6, 5, 0)) == at(13, 3, 0));
	assert_true(tend_window_next(&w, at(9, 12, 0)) == at(13, 3, 0));

	/* past midnight: Friday 22:00 to Saturday 02:00 belongs to Friday */
	assert_int_equal(tend_window_parse(&w, "Fri 22:00-02:00"), 0);
	assert_true(tend_window_contains(&w, at(11, 23, 0)));          /* Friday night */
	assert_true(tend_window_contains(&w, at(12, 1, 59)));          /* Saturday morning */
	assert_false(tend_window_contains(&w, at(12, 2, 0)));
	assert_false(tend_window_contains(&w, at(11, 1, 0)));          /* Friday morning */
	assert_false(tend_window_contains(&w, at(12, 23, 0)));         /* Saturday night */
	assert_true(tend_window_next(&w, at(12, 3, 0)) == at(18, 22, 0));

	assert_int_equal(tend_window_parse(&w, "daily 00:00-24:00"), 0);
	assert_true(tend_window_contains(&w, at(9, 23, 59)));
}

/* Europe's spring-forward night (2027-03-28, a Sunday): asked at 23:30 on Saturday, the
 * Sunday window is the next one, not the Sunday after (a day of 23 hours). */
static void test_next_across_dst(void **state)
{
	tend_window w;
	struct tm tm;
	time_t t, next;

	(void)state;
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = 2027 - 1900;
	tm.tm_mon = 2;
	tm.tm_mday = 27;
	tm.tm_hour = 23;
	tm.tm_min = 30;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	assert_int_equal(tend_window_parse(&w, "Sun 03:00-05:00"), 0);
	next = tend_window_next(&w, t);
	assert_true(localtime_r(&next, &tm) != NULL);
	assert_int_equal(tm.tm_mday, 28);
	assert_int_equal(tm.tm_hour, 3);
	setenv("TZ", "UTC", 1);
	tzset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_contains_and_next),
		cmocka_unit_test(test_next_across_dst),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
