/* Value syntax of the manifest: durations, octal modes, URLs, DNS names,
 * addresses, CIDRs and names, accepted and refused at their edges. */
#include "tests/support/support.h"
#include "manifest/internal.h"

#include <stdint.h>

static void test_durations(void **state)
{
	uint64_t ms = 1;

	(void)state;
	assert_int_equal(tend_parse_duration(&ms, "0"), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(tend_parse_duration(&ms, "500ms"), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(tend_parse_duration(&ms, "2s"), 0);
	assert_int_equal(ms, 2000);
	assert_int_equal(tend_parse_duration(&ms, "1m30s"), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(tend_parse_duration(&ms, "1h2m3s4ms"), 0);
	assert_int_equal(ms, 3723004);
	assert_int_equal(tend_parse_duration(&ms, "168h"), 0);
	assert_int_equal(ms, 168ull * 3600 * 1000);
	ms = 7;
	assert_int_equal(tend_parse_duration(&ms, ""), -1);
	assert_int_equal(tend_parse_duration(&ms, "5"), -1);      /* no unit */
	assert_int_equal(tend_parse_duration(&ms, "5x"), -1);
	assert_int_equal(tend_parse_duration(&ms, "s"), -1);
	assert_int_equal(tend_parse_duration(&ms, "-1s"), -1);
	assert_int_equal(tend_parse_duration(&ms, "1.5s"), -1);
	assert_int_equal(tend_parse_duration(&ms, "1d"), -1);
	assert_int_equal(tend_parse_duration(&ms, "2s "), -1);
	assert_int_equal(tend_parse_duration(&ms, "169h"), -1);   /* over a week */
	assert_int_equal(tend_parse_duration(&ms, "99999999999999999999s"), -1);
	assert_int_equal(tend_parse_duration(&ms, "18446744073709551615ms"), -1);
	assert_int_equal(ms, 7);                                   /* untouched on failure */
}

static void test_modes(void **state)
{
	unsigned mode = 1;

	(void)state;
	assert_int_equal(tend_parse_mode(&mode, "0400"), 0);
	assert_int_equal(mode, 0400);
	assert_int_equal(tend_parse_mode(&mode, "640"), 0);
	assert_int_equal(mode, 0640);
	assert_int_equal(tend_parse_mode(&mode, "0777"), 0);
	assert_int_equal(mode, 0777);
	assert_int_equal(tend_parse_mode(&mode, "000"), 0);
	assert_int_equal(mode, 0);
	assert_int_equal(tend_parse_mode(&mode, "0999"), -1);
	assert_int_equal(tend_parse_mode(&mode, "1777"), -1);     /* sticky: more than 0777 */
	assert_int_equal(tend_parse_mode(&mode, "40"), -1);
	assert_int_equal(tend_parse_mode(&mode, "00400"), -1);
	assert_int_equal(tend_parse_mode(&mode, "rw-"), -1);
	assert_int_equal(tend_parse_mode(&mode, ""), -1);
}

static void test_urls(void **state)
{
	static const char *const http[] = { "http", "https", NULL };
	static const char *const smtp[] = { "smtp", "smtps", NULL };

	(void)state;
	assert_int_equal(tend_check_url("http://127.0.0.1:8080/health", http), 0);
	assert_int_equal(tend_check_url("https://vault.lab.example.net", http), 0);
	assert_int_equal(tend_check_url("HTTPS://x/y?z#w", http), 0);
	assert_int_equal(tend_check_url("http://[::1]:9000/", http), 0);
	assert_int_equal(tend_check_url("http://[fe80::1]", http), 0);
	assert_int_equal(tend_check_url("smtp://mail.example.net:587", smtp), 0);
	assert_int_equal(tend_check_url("smtp://mail.example.net:587", http), -1);
	assert_int_equal(tend_check_url("htp://x/", http), -1);
	assert_int_equal(tend_check_url("http:/x", http), -1);
	assert_int_equal(tend_check_url("http://", http), -1);
	assert_int_equal(tend_check_url("http:///path", http), -1);
	assert_int_equal(tend_check_url("http://x:0/", http), -1);
	assert_int_equal(tend_check_url("http://x:65536/", http), -1);
	assert_int_equal(tend_check_url("http://x:/", http), -1);
	assert_int_equal(tend_check_url("http://x:80a/", http), -1);
	assert_int_equal(tend_check_url("http://user@x/", http), -1);
	assert_int_equal(tend_check_url("http://x y/", http), -1);
	assert_int_equal(tend_check_url("http://x/a b", http), -1);
	assert_int_equal(tend_check_url("http://[::1/", http), -1);
	assert_int_equal(tend_check_url("http://[nothex]/", http), -1);
	assert_int_equal(tend_check_url("http://10.0.0.300/", http), -1);
	assert_int_equal(tend_check_url("vault.lab.example.net", http), -1);
}

static void test_names_and_addresses(void **state)
{
	(void)state;
	assert_int_equal(tend_check_dns_name("lab.example.net"), 0);
	assert_int_equal(tend_check_dns_name("a"), 0);
	assert_int_equal(tend_check_dns_name("x-1.y_2.z"), 0);
	assert_int_equal(tend_check_dns_name(""), -1);
	assert_int_equal(tend_check_dns_name(".a"), -1);
	assert_int_equal(tend_check_dns_name("a..b"), -1);
	assert_int_equal(tend_check_dns_name("a."), -1);
	assert_int_equal(tend_check_dns_name("-a.b"), -1);
	assert_int_equal(tend_check_dns_name("a-.b"), -1);
	assert_int_equal(tend_check_dns_name("a b"), -1);
	assert_int_equal(tend_check_dns_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b"), -1);

	assert_int_equal(tend_check_address("10.10.0.1"), 0);
	assert_int_equal(tend_check_address("::1"), 0);
	assert_int_equal(tend_check_address("fd00::10"), 0);
	assert_int_equal(tend_check_address("db1.lab.example.net"), 0);
	assert_int_equal(tend_check_address("10.0.0.256"), -1);
	assert_int_equal(tend_check_address("10.0.0"), -1);
	assert_int_equal(tend_check_address(""), -1);
	assert_int_equal(tend_check_address("host name"), -1);

	assert_int_equal(tend_check_cidr("10.10.0.0/24"), 0);
	assert_int_equal(tend_check_cidr("0.0.0.0/0"), 0);
	assert_int_equal(tend_check_cidr("fd00::/8"), 0);
	assert_int_equal(tend_check_cidr("fd00::/128"), 0);
	assert_int_equal(tend_check_cidr("10.0.0.0/33"), -1);
	assert_int_equal(tend_check_cidr("fd00::/129"), -1);
	assert_int_equal(tend_check_cidr("10.0.0.0"), -1);
	assert_int_equal(tend_check_cidr("10.0.0.0/"), -1);
	assert_int_equal(tend_check_cidr("10.0.0.0/2a"), -1);
	assert_int_equal(tend_check_cidr("lab/24"), -1);

	assert_int_equal(tend_check_name("home-assistant"), 0);
	assert_int_equal(tend_check_name("db1"), 0);
	assert_int_equal(tend_check_name("a.b_c"), 0);
	assert_int_equal(tend_check_name(""), -1);
	assert_int_equal(tend_check_name("-x"), -1);
	assert_int_equal(tend_check_name("a/b"), -1);
	assert_int_equal(tend_check_name("a b"), -1);
	assert_int_equal(tend_check_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_names_and_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
