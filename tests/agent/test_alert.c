/* Alert deduplication and delivery through a real SMTP server on loopback:
 * one mail per (host, commit, kind), one "resolved" mail, retries while the
 * server is down, and nothing lost or repeated across a restart. */
#include "tests/agent/helpers.h"
#include "agent/alert.h"
#include "agent/log.h"
#include "util/error.h"

static const char *const rcpts[] = { "ops@example.org", "oncall@example.org" };

typedef struct {
	char *dir, *maildir, *statefile, url[64];
	int port;
	tend_smtp_opts smtp;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!test_have_aiosmtpd()) {
		free(f);
		return -1;
	}
	f->dir = test_tmpdir_make("alert");
	assert_true(asprintf(&f->maildir, "%s/mail", f->dir) > 0);
	assert_true(asprintf(&f->statefile, "%s/state/alerts.json", f->dir) > 0);
	assert_int_equal(test_sh(NULL, f->dir, "mkdir -p state"), 0);
	f->port = test_free_port();
	snprintf(f->url, sizeof(f->url), "smtp://127.0.0.1:%d", f->port);
	f->smtp.url = f->url;
	f->smtp.from = "tend@example.org";
	f->smtp.to = rcpts;
	f->smtp.n_to = 2;
	f->smtp.allow_plain = 1;
	f->smtp.timeout_ms = 10000;
	tend_log_set_level(TEND_LOG_ERR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	free(f->maildir);
	free(f->statefile);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static const char *probe_output =
	"probe http://127.0.0.1:5432/health failed after 3 tries:\n"
	"connection refused\n\x1b[31mred\x1b[0m \xff\xfe bad utf-8\n";

static void test_one_mail_per_failure_and_one_resolved(void **state)
{
	fixture *f = *state;
	tend_alerter *a;
	tend_buf mails = TEND_BUF_INIT;
	time_t now = 1700000000;
	pid_t pid = test_smtp_start(f->port, f->maildir, NULL);
	int i;

	assert_int_equal(tend_alerter_open(&a, f->statefile, "db1", &f->smtp), 0);
	/* The same rollback seen on ten polls: one mail. */
	for (i = 0; i < 10; i++) {
		assert_int_equal(tend_alerter_raise(a, TEND_ALERT_ROLLBACK, "0123456789abcdef0123",
						    "probe db-health failed; rolled back to generation 41",
						    probe_output, now + i), i == 0);
		tend_alerter_flush(a, now + i);
	}
	assert_int_equal(test_maildir_count(f->maildir, NULL), 1);
	/* Another kind for the same commit is a different problem. */
	assert_int_equal(tend_alerter_raise(a, TEND_ALERT_FETCH_FAILING, "0123456789abcdef0123",
					    "fetch failing for 31 minutes", "ssh: connection refused",
					    now + 20), 1);
	assert_int_equal(tend_alerter_flush(a, now + 20), 1);
	assert_int_equal(tend_alerter_open_problems(a), 2);
	/* Healthy again: one resolved mail, however often it is reported. */
	for (i = 0; i < 5; i++) {
		assert_int_equal(tend_alerter_resolve(a, "fedcba9876543210", now + 30 + i), i == 0);
		tend_alerter_flush(a, now + 30 + i);
	}
	assert_int_equal(tend_alerter_sent(a), 3);
	assert_int_equal(tend_alerter_pending(a), 0);
	test_smtp_stop(pid);
	assert_int_equal(test_maildir_count(f->maildir, &mails), 3);
	assert_non_null(strstr(mails.ptr, "Subject: [tend] db1: rolled back at 0123456789ab: probe db-health failed"));
	assert_non_null(strstr(mails.ptr, "connection refused\n"));
	/* Terminal escapes and invalid UTF-8 from a probe do not reach the mail. */
	assert_null(strstr(mails.ptr, "\x1b"));
	assert_null(strstr(mails.ptr, "\xff"));
	assert_non_null(strstr(mails.ptr, "Subject: [tend] db1: resolved, healthy at fedcba987654"));
	assert_non_null(strstr(mails.ptr, "  - rollback at 0123456789abcdef0123"));
	assert_non_null(strstr(mails.ptr, "  - fetch-failing at 0123456789abcdef0123"));
	/* A later failure of the same kind and commit mails again: it was resolved. */
	assert_int_equal(tend_alerter_raise(a, TEND_ALERT_ROLLBACK, "0123456789abcdef0123",
					    "again", "", now + 40), 1);
	tend_alerter_free(a);
	tend_buf_dispose(&mails);
}

/* A degraded service: one mail however many liveness runs see it, untouched by a healthy
 * reconcile's "resolved", closed by one "recovered" mail; kept open across a restart. */
static void test_degraded_then_recovered(void **state)
{
	fixture *f = *state;
	tend_alerter *a;
	tend_buf mails = TEND_BUF_INIT;
	time_t now = 1700000000;
	pid_t pid = test_smtp_start(f->port, f->maildir, NULL);
	int i;

	assert_int_equal(tend_alerter_open(&a, f->statefile, "nas1", &f->smtp), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(tend_alerter_raise(a, TEND_ALERT_DEGRADED, "0123456789abcdef0123",
						    "1 service down: jellyfin", "connection refused", now + i),
				 i == 0);
	/* Not recovered: nothing to say. */
	assert_int_equal(tend_alerter_recover(a, TEND_ALERT_HELD, "x", "", now + 5), 0);
	/* A healthy reconcile resolves other problems, never the degraded one. */
	assert_int_equal(tend_alerter_resolve(a, "0123456789abcdef0123", now + 6), 0);
	assert_int_equal(tend_alerter_is_open(a, TEND_ALERT_DEGRADED), 1);
	tend_alerter_flush(a, now + 6);
	tend_alerter_free(a);
	assert_int_equal(tend_alerter_open(&a, f->statefile, "nas1", &f->smtp), 0);
	assert_int_equal(tend_alerter_is_open(a, TEND_ALERT_DEGRADED), 1);
	for (i = 0; i < 3; i++)
		assert_int_equal(tend_alerter_recover(a, TEND_ALERT_DEGRADED, "every service answers again",
						      "Service jellyfin answers", now + 10 + i), i == 0);
	assert_int_equal(tend_alerter_is_open(a, TEND_ALERT_DEGRADED), 0);
	tend_alerter_flush(a, now + 20);
	test_smtp_stop(pid);
	assert_int_equal(test_maildir_count(f->maildir, &mails), 2);
	assert_non_null(strstr(mails.ptr, "Subject: [tend] nas1: degraded at 0123456789ab: 1 service down: jellyfin"));
	assert_non_null(strstr(mails.ptr, "Subject: [tend] nas1: recovered at 0123456789ab: every service answers again"));
	assert_non_null(strstr(mails.ptr, "Was degraded since 2023-11-14T22:13:20Z: 1 service down: jellyfin"));
	assert_null(strstr(mails.ptr, "resolved"));
	tend_alerter_free(a);
	tend_buf_dispose(&mails);
}

static void test_server_down_retries_and_survives_restart(void **state)
{
	fixture *f = *state;
	tend_alerter *a;
	tend_buf mails = TEND_BUF_INIT;
	time_t now = 1700000000, due;
	pid_t pid;

	assert_int_equal(tend_alerter_open(&a, f->statefile, "apps1", &f->smtp), 0);
	tend_alerter_set_backoff(a, 10, 100);
	assert_int_equal(tend_alerter_raise(a, TEND_ALERT_REFUSED_COMMIT, "abc123",
					    "commit abc123 is not signed by an allowed key",
					    "services/web/service.yaml:4:3: unknown key 'prot'", now), 1);
	/* No server: nothing sent, the mail stays pending, backoff doubles. */
	assert_int_equal(tend_alerter_flush(a, now), 0);
	assert_int_equal(tend_alerter_pending(a), 1);
	assert_int_equal(tend_alerter_next_due(a), now + 10);
	assert_int_equal(tend_alerter_flush(a, now + 5), 0);   /* not due: no attempt */
	assert_int_equal(tend_alerter_next_due(a), now + 10);
	assert_int_equal(tend_alerter_flush(a, now + 10), 0);
	assert_int_equal(tend_alerter_next_due(a), now + 30);
	tend_alerter_free(a);

	/* The agent restarts: the pending mail and the open problem are still known. */
	assert_int_equal(tend_alerter_open(&a, f->statefile, "apps1", &f->smtp), 0);
	assert_int_equal(tend_alerter_pending(a), 1);
	assert_int_equal(tend_alerter_raise(a, TEND_ALERT_REFUSED_COMMIT, "abc123", "same", "",
					    now + 40), 0);
	pid = test_smtp_start(f->port, f->maildir, NULL);
	due = tend_alerter_next_due(a);
	assert_int_equal(tend_alerter_flush(a, due), 1);
	assert_int_equal(tend_alerter_pending(a), 0);
	assert_int_equal(tend_alerter_flush(a, due + 1000), 0);
	test_smtp_stop(pid);
	assert_int_equal(test_maildir_count(f->maildir, &mails), 1);
	assert_non_null(strstr(mails.ptr, "unknown key 'prot'"));
	tend_alerter_free(a);
	tend_buf_dispose(&mails);
}

static void test_corrupt_state_is_not_fatal(void **state)
{
	fixture *f = *state;
	tend_alerter *a;

	test_write_file(f->dir, "state/alerts.json", "{\"open\": [ not json");
	assert_int_equal(tend_alerter_open(&a, f->statefile, "db1", NULL), 0);
	assert_int_equal(tend_alerter_pending(a), 0);
	assert_int_equal(tend_alerter_raise(a, TEND_ALERT_RECONCILE_FAILED, "c0ffee", "nix build failed",
					    "error: attribute 'x' missing", 1700000000), 1);
	/* No mail configured: the alert is logged and dropped from the queue. */
	assert_int_equal(tend_alerter_flush(a, 1700000000), 0);
	assert_int_equal(tend_alerter_pending(a), 0);
	assert_int_equal(tend_alerter_open_problems(a), 1);
	assert_int_equal(tend_alerter_raise(a, TEND_ALERT_RESOLVED, "c0ffee", "", "", 1), TEND_EINVALID);
	tend_alerter_free(a);
}

static void test_detail_is_capped(void **state)
{
	fixture *f = *state;
	tend_alerter *a;
	char *big = malloc(200000), *saved;

	memset(big, 'A', 199999);
	big[199999] = '\0';
	assert_int_equal(tend_alerter_open(&a, f->statefile, "db1", &f->smtp), 0);
	assert_int_equal(tend_alerter_raise(a, TEND_ALERT_RECONCILE_FAILED, "c0ffee", big, big, 1), 1);
	saved = test_read_file(f->statefile);
	assert_non_null(saved);
	assert_true(strlen(saved) < 40000);
	assert_non_null(strstr(saved, "[... truncated]"));
	free(saved);
	free(big);
	tend_alerter_free(a);
}

static int wait_count(const char *maildir, int n, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;

	while (test_maildir_count(maildir, NULL) < n && test_now_ms() < end)
		test_sleep_ms(20);
	return test_maildir_count(maildir, NULL);
}

static void on_sent(void *ctx)
{
	(*(int *)ctx)++;
}

/* The sender thread: mails go out as they are queued, nobody calls flush. */
static void test_sender_thread_delivers(void **state)
{
	fixture *f = *state;
	tend_alerter *a;
	pid_t pid = test_smtp_start(f->port, f->maildir, NULL);
	int sent = 0;

	assert_int_equal(tend_alerter_open(&a, f->statefile, "db1", &f->smtp), 0);
	tend_alerter_on_sent(a, on_sent, &sent);
	assert_int_equal(tend_alerter_start(a), 0);
	assert_int_equal(tend_alerter_raise(a, TEND_ALERT_ROLLBACK, "c0ffee", "probe failed", "out",
					    time(NULL)), 1);
	assert_int_equal(wait_count(f->maildir, 1, 5000), 1);
	assert_int_equal(tend_alerter_resolve(a, "c0ffee", time(NULL)), 1);
	assert_int_equal(wait_count(f->maildir, 2, 5000), 2);
	tend_alerter_stop(a);
	assert_int_equal(sent, 2);
	assert_int_equal(tend_alerter_pending(a), 0);
	tend_alerter_free(a);
	test_smtp_stop(pid);
}

/* A mail server that accepts the connection and never answers holds only the
 * sender thread: raising alerts returns at once. */
static void test_hung_server_blocks_nothing(void **state)
{
	fixture *f = *state;
	struct sockaddr_in sa;
	tend_alerter *a;
	long long t0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), i;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)f->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);   /* never accepted, never answered */
	f->smtp.timeout_ms = 1500;
	assert_int_equal(tend_alerter_open(&a, f->statefile, "db1", &f->smtp), 0);
	assert_int_equal(tend_alerter_start(a), 0);
	t0 = test_now_ms();
	for (i = 0; i < 5; i++) {
		char commit[16];

		snprintf(commit, sizeof(commit), "c%d", i);
		assert_int_equal(tend_alerter_raise(a, TEND_ALERT_RECONCILE_FAILED, commit, "failed", "",
						    time(NULL)), 1);
		test_sleep_ms(50);
	}
	assert_true(test_now_ms() - t0 < 1000);
	test_sleep_ms(2000);   /* the first attempt times out; all stay queued */
	t0 = test_now_ms();
	tend_alerter_stop(a);
	assert_true(test_now_ms() - t0 < 2000);
	assert_int_equal(tend_alerter_pending(a), 5);
	tend_alerter_free(a);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_mail_per_failure_and_one_resolved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_degraded_then_recovered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_down_retries_and_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_state_is_not_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detail_is_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_thread_delivers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_server_blocks_nothing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
