/* The fleet page as the agent renders it: markup in a peer's status stays text, the page's
 * only script is the one its Content-Security-Policy hash allows (checked over HTTP), hosts
 * are drawn in dependency order, and before any liveness run the page shows this host alone.
 * The page in a real browser, with running agents: tests/agent/test_run_fleet.c. */
#define TEST_WITH_HTTP_CLIENT
#include "tests/agent/helpers.h"
#include "agent/http.h"
#include "agent/page.h"
#include "agent/status.h"

#include <sodium.h>

static const char *hostile_fleet =
	"{\"hosts\": ["
	"{\"name\": \"web1\", \"address\": \"127.0.0.1\", \"port\": 8470, \"depends_on\": [\"db1\"]},"
	"{\"name\": \"db1\", \"address\": \"127.0.0.2\", \"port\": 8470, \"depends_on\": [],"
	" \"reachable\": true, \"status\": {\"phase\": \"<script>alert(1)</script>\","
	" \"applied_commit\": \"\\\"><img src=x>\", \"last_error\": \"<img src=x onerror=alert(3)>\","
	" \"history\": [{\"time\": \"t\", \"commit\": \"c0ffee\", \"outcome\": \"applied\","
	"  \"message\": \"</li><script>alert(4)</script>\", \"changes\": \"package a 1 -> 2\\n</pre><b>x\"}],"
	" \"liveness\": {\"db\": {\"up\": false, \"error\": \"<script>alert(5)</script>\"},"
	"  \"q\\\" onmouseover=\\\"alert(8)\": {\"up\": true}}}},"
	"{\"name\": \"gw1\", \"address\": \"127.0.0.3\", \"port\": 8470, \"depends_on\": [\"web1\"],"
	" \"reachable\": false, \"error\": \"connection refused <iframe>\"}],"
	" \"checked_at\": 1700000000}";

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strstr(s, needle))) {
		n++;
		s++;
	}
	return n;
}

static void test_remote_text_stays_text(void **state)
{
	tend_agent_status st;
	char *html = NULL;

	(void)state;
	assert_int_equal(tend_agent_status_init(&st, "web1"), 0);
	st.phase = TEND_PHASE_CONVERGED;
	st.applied_commit = strdup("0123456789abcdef0123456789abcdef01234567");
	st.fleet = strdup(hostile_fleet);
	tend_agent_status_event_add(&st, 1700000000, "0123456789abcdef0123456789abcdef01234567",
				    "applied", "applied commit 0123456789ab", "package grafana 10.4.2 -> 11.0.1\n");
	assert_int_equal(tend_agent_page_html(&html, &st), 0);
	assert_int_equal(count(html, "<script"), 1);
	assert_int_equal(count(html, "<img"), 0);
	assert_int_equal(count(html, "<iframe"), 0);
	assert_int_equal(count(html, "<b>x"), 0);
	/* a quote in an attribute's value stays in the value */
	assert_int_equal(count(html, "onmouseover=\""), 0);
	assert_non_null(strstr(html, "data-service=\"q&quot; onmouseover=&quot;alert(8)\""));
	assert_non_null(strstr(html, "&lt;img src=x onerror=alert(3)&gt;"));
	assert_non_null(strstr(html, "data-phase=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
	assert_non_null(strstr(html, "connection refused &lt;iframe&gt;"));
	/* Our own host: live status, with its last switch's closure diff. */
	assert_non_null(strstr(html, "<tr class=\"host\" data-host=\"web1\" data-phase=\"converged\">"));
	assert_non_null(strstr(html, "<pre class=\"changes\">package grafana 10.4.2 -&gt; 11.0.1\n</pre>"));
	/* A peer that did not answer says why. */
	assert_non_null(strstr(html, "<tr class=\"host\" data-host=\"gw1\" data-phase=\"unreachable\">"));
	/* Dependency order: db1 in the first column, web1 in the second, gw1 in the third. */
	assert_non_null(strstr(html, "<g class=\"node\" data-host=\"db1\"><rect x=\"10\""));
	assert_non_null(strstr(html, "<g class=\"node\" data-host=\"web1\"><rect x=\"210\""));
	assert_non_null(strstr(html, "<g class=\"node\" data-host=\"gw1\"><rect x=\"410\""));
	assert_non_null(strstr(html, "<line class=\"edge\" data-from=\"db1\" data-to=\"web1\""));
	free(html);

	/* Before any liveness run: this host alone. */
	free(st.fleet);
	st.fleet = NULL;
	assert_int_equal(tend_agent_page_html(&html, &st), 0);
	assert_int_equal(count(html, "<tr class=\"host\""), 1);
	assert_non_null(strstr(html, "not asked yet"));
	free(html);
	tend_agent_status_dispose(&st);
}

/* GET / over HTTP: HTML, and a policy whose script hash is the page's own script. */
static void test_served_with_its_policy(void **state)
{
	tend_agent_status st;
	tend_http_opts o = { 0 };
	tend_http *h = NULL;
	tend_buf body = TEND_BUF_INIT, hdrs = TEND_BUF_INIT;
	unsigned char digest[crypto_hash_sha256_BYTES];
	char url[64], b64[64], want[128];
	const char *s, *e;
	CURL *c;

	(void)state;
	assert_int_equal(tend_agent_status_init(&st, "web1"), 0);
	o.status = &st;
	assert_int_equal(tend_http_start(&h, &o), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", tend_http_port(h));
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_http_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, test_http_sink);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hdrs);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
	assert_non_null(strstr(hdrs.ptr, "200 OK"));
	assert_non_null(strstr(hdrs.ptr, "Content-Type: text/html; charset=utf-8"));
	assert_non_null(strstr(body.ptr, "<!DOCTYPE html>"));
	s = strstr(body.ptr, "<script>");
	assert_non_null(s);
	s += strlen("<script>");
	e = strstr(s, "</script>");
	assert_non_null(e);
	crypto_hash_sha256(digest, (const unsigned char *)s, (unsigned long long)(e - s));
	sodium_bin2base64(b64, sizeof(b64), digest, sizeof(digest), sodium_base64_VARIANT_ORIGINAL);
	snprintf(want, sizeof(want), "script-src 'sha256-%s'", b64);
	assert_non_null(strstr(hdrs.ptr, want));
	assert_non_null(strstr(hdrs.ptr, "default-src 'none'"));
	/* The status and metrics stay where they were. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/status", tend_http_port(h));
	assert_int_equal(test_http("GET", url, NULL, NULL, 0, NULL), 200);
	tend_http_stop(h);
	tend_buf_dispose(&body);
	tend_buf_dispose(&hdrs);
	tend_agent_status_dispose(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remote_text_stays_text),
		cmocka_unit_test(test_served_with_its_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
