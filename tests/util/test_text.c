/* Control characters stripped from text shown in a terminal (util/text.h):
 * escapes, C1 controls and broken UTF-8 become '?', text and valid UTF-8
 * stay as they are. */
#include "tests/support/support.h"
#include "util/text.h"

#include <stdlib.h>
#include <string.h>

static void expect(const char *in, int multiline, const char *want)
{
	char *got = tend_text_clean_dup(in, multiline);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_strip(void **state)
{
	(void)state;
	expect("plain text, caf\xc3\xa9 \xe2\x9c\x93", 0, "plain text, caf\xc3\xa9 \xe2\x9c\x93");
	expect("boom \x1b]0;pwned\x07 \x1b[2J", 0, "boom ?]0;pwned? ?[2J");
	expect("a\nb\tc\r", 1, "a\nb\tc?");
	expect("a\nb\tc", 0, "a?b?c");
	expect("del\x7f c1\xc2\x9b[31m", 0, "del? c1?[31m");        /* U+009B: an 8-bit CSI */
	expect("raw \x9b bad \xff \xc3", 0, "raw ? bad ? ?");
	expect("overlong \xc0\xaf \xe0\x80\xaf", 0, "overlong ?? ???");
	assert_null(tend_text_clean_dup(NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
