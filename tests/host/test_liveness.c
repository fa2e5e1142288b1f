/* Liveness between reconciles and what a switch changes, on a real systemd (a Debian 12 VM of
 * tests/host/lab, tend as the module's unit, livenessInterval from the module option): an
 * operator stops the web service's unit by hand; within the liveness interval the host is
 * `degraded`, tend_probe_up says 0, one mail arrives (an SMTP server on the host's loopback,
 * 10.0.2.2 to the guest), and tend restarts or rolls back nothing; started again by hand, it
 * is `converged` with one "recovered" mail. A commit that changes the service's unit: the
 * status names the real unit restarted. The fleet page answers. ctest label `host`. */
#define TEST_WITH_HTTP_CLIENT
#include "tests/agent/helpers.h"
#include "tests/host/lab.h"

static lab_host *h;
static char *maildir;
static pid_t smtpd;

static int group_setup(void **state)
{
	lab_opts o = { NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	char *settings = NULL, *dir;
	int port;

	(void)state;
	if (!test_have_aiosmtpd())
		return -1;
	dir = test_tmpdir_make("lab-mail");
	assert_true(asprintf(&maildir, "%s/mail", dir) > 0);
	free(dir);
	port = test_free_port();
	smtpd = test_smtp_start(port, maildir, NULL);
	assert_true(asprintf(&settings, "\"alerts\": {\"email\": {\"to\": [\"ops@lab.test\"], "
			     "\"from\": \"tend@lab.test\", \"smtp_url\": \"smtp://10.0.2.2:%d\", "
			     "\"starttls\": false}}", port) > 0);
	o.settings = settings;
	o.module = "\"livenessInterval\": \"3s\"";
	h = lab_host_up_with("live", &o);
	free(settings);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	lab_host_down(h);
	if (smtpd > 0)
		test_smtp_stop(smtpd);
	free(maildir);
	return 0;
}

static void write_web(const char *body)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"name: web\nhost: live\n"
		"health:\n"
		"  startup:\n"
		"    - http: {url: 'http://127.0.0.1:8081/', status: 200}\n"
		"      interval: 500ms\n      timeout: 2s\n      retries: 60\n"
		"  liveness:\n"
		"    - http: {url: 'http://127.0.0.1:8081/', status: 200}\n"
		"      interval: 500ms\n      timeout: 2s\n      retries: 2\n"
		"settings:\n  lab_port: 8081\n  lab_body: %s\n", body) > 0);
	test_write_file(h->repo, "services/web/service.yaml", text);
	free(text);
}

/* GET path on the guest's agent (forwarded to the host's loopback). */
static char *agent_get(const char *path)
{
	tend_buf b = TEND_BUF_INIT;
	char url[96], *s;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", h->agent_port, path);
	test_http("GET", url, NULL, NULL, 0, &b);
	s = strdup(b.ptr ? b.ptr : "");
	tend_buf_dispose(&b);
	return s;
}

static int mails_within(int n, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;

	while (test_maildir_count(maildir, NULL) < n && time(NULL) < end)
		sleep(1);
	return test_maildir_count(maildir, NULL);
}

static void test_stopped_by_hand_then_started(void **state)
{
	tend_buf mails = TEND_BUF_INIT;
	char *c, *metrics, *page;
	time_t t0;

	(void)state;
	write_web("one");
	c = lab_push(h, "web one, with a liveness probe");
	assert_int_equal(lab_run(h, "systemctl start tend.service"), 0);
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the first commit did not converge");
	}
	/* the first liveness run */
	t0 = time(NULL);
	do {
		metrics = agent_get("/metrics");
		if (strstr(metrics, "\ntend_probe_up{service=\"web\"} 1\n"))
			break;
		free(metrics);
		metrics = NULL;
		sleep(1);
	} while (time(NULL) - t0 < 30);
	assert_non_null(metrics);
	free(metrics);

	/* An operator stops the unit. */
	assert_int_equal(lab_run(h, "systemctl stop lab-web.service"), 0);
	t0 = time(NULL);
	if (!lab_wait_phase(h, "degraded", c, 60)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the stopped service did not make the host degraded");
	}
	/* 3 s interval and two tries; the VM under TCG is slow, so with room */
	assert_true(time(NULL) - t0 < 30);
	metrics = agent_get("/metrics");
	assert_non_null(strstr(metrics, "\ntend_probe_up{service=\"web\"} 0\n"));
	free(metrics);
	if (mails_within(1, 60) != 1) {
		tend_buf all = TEND_BUF_INIT;

		test_maildir_count(maildir, &all);
		fail_msg("expected one mail, got:\n%s", all.ptr ? all.ptr : "");
	}
	sleep(8);   /* more liveness runs: still one mail, and tend touched nothing */
	assert_int_equal(test_maildir_count(maildir, &mails), 1);
	assert_non_null(strstr(mails.ptr, "Subject: [tend] live: degraded at "));
	assert_non_null(strstr(mails.ptr, "1 service down: web"));
	assert_int_equal(lab_run(h, "! systemctl is-active -q lab-web.service"), 0);
	{
		char *applied = lab_status(h, "applied_commit");

		assert_string_equal(applied, c);
		free(applied);
	}

	/* Started again by hand. */
	assert_int_equal(lab_run(h, "systemctl start lab-web.service"), 0);
	if (!lab_wait_phase(h, "converged", c, 60))
		fail_msg("the host did not come back to converged");
	assert_int_equal(mails_within(2, 60), 2);
	tend_buf_clear(&mails);
	test_maildir_count(maildir, &mails);
	assert_non_null(strstr(mails.ptr, "Subject: [tend] live: recovered at "));
	/* The fleet page. */
	page = agent_get("/");
	assert_non_null(strstr(page, "<tr class=\"host\" data-host=\"live\" data-phase=\"converged\">"));
	assert_non_null(strstr(page, "data-service=\"web\" data-up=\"1\""));
	free(page);
	tend_buf_dispose(&mails);
	free(c);
}

/* A commit that changes the web service's unit: what the switch changed names the real unit. */
static void test_changes_name_the_unit(void **state)
{
	char *c, *status;

	(void)state;
	write_web("two");
	c = lab_push(h, "web two");
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("web two did not converge");
	}
	lab_expect_web(h, "two");
	status = agent_get("/v1/status");
	if (!strstr(status, "unit restart lab-web.service"))
		fail_msg("/v1/status does not name the unit restarted: %s", status);
	free(status);
	assert_int_equal(lab_run(h, "tend history --config /etc/tend/agent.yaml --limit 1 | "
				    "grep -q 'unit restart lab-web.service'"), 0);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stopped_by_hand_then_started),
		cmocka_unit_test(test_changes_name_the_unit),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
