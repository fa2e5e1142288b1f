/* The SMTP client against a real server on loopback: a well-formed RFC 5322
 * message to several recipients, no header injection, STARTTLS required by default. */
#include "tests/agent/helpers.h"
#include "agent/smtp.h"
#include "agent/worker.h"
#include "util/error.h"

#include <regex.h>

static const char *const rcpts[] = { "ops@example.org", "oncall@example.org" };

static void opts_init(tend_smtp_opts *o, char *url, size_t len, int port)
{
	memset(o, 0, sizeof(*o));
	snprintf(url, len, "smtp://127.0.0.1:%d", port);
	o->url = url;
	o->from = "tend@db1.example.org";
	o->to = rcpts;
	o->n_to = 2;
	o->allow_plain = 1;
	o->timeout_ms = 10000;
}

static void test_message_is_rfc5322(void **state)
{
	tend_smtp_opts o;
	char url[64], *msg = NULL, *line, *save = NULL, *hdr_end;
	regex_t date;
	int saw_date = 0, saw_id = 0, saw_to = 0, saw_subject = 0;
	char body[3000];

	opts_init(&o, url, sizeof(url), 25);
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	assert_int_equal(tend_smtp_message_build(&msg, &o,
		"probe failed\r\nBcc: attacker@evil.example", body), 0);
	/* Every line ends in CRLF and is at most 998 octets. */
	for (const char *p = msg; *p; ) {
		const char *nl = strchr(p, '\n');

		assert_non_null(nl);
		assert_true(nl > p);
		assert_int_equal(nl[-1], '\r');
		assert_true(nl - p - 1 <= 998);
		p = nl + 1;
	}
	hdr_end = strstr(msg, "\r\n\r\n");
	assert_non_null(hdr_end);
	*hdr_end = '\0';
	assert_int_equal(regcomp(&date, "^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
				 "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
				 "[0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000\r$", REG_EXTENDED), 0);
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* Injected header must not appear as its own line. */
		assert_false(!strncasecmp(line, "Bcc:", 4));
		if (!regexec(&date, line, 0, NULL, 0))
			saw_date++;
		if (!strncmp(line, "Message-ID: <", 13) && strstr(line, "@db1.example.org>\r"))
			saw_id++;
		if (!strcmp(line, "To: ops@example.org, oncall@example.org\r"))
			saw_to++;
		if (!strncmp(line, "Subject: probe failed", 21))
			saw_subject++;
	}
	regfree(&date);
	assert_int_equal(saw_date, 1);
	assert_int_equal(saw_id, 1);
	assert_int_equal(saw_to, 1);
	assert_int_equal(saw_subject, 1);
	free(msg);
}

static void test_rejects_bad_addresses(void **state)
{
	tend_smtp_opts o;
	char url[64], *msg = NULL;
	const char *bad[] = { "ops@example.org>\r\nRCPT TO:<x@y" };

	opts_init(&o, url, sizeof(url), 25);
	o.to = bad;
	o.n_to = 1;
	assert_int_equal(tend_smtp_message_build(&msg, &o, "s", "b"), TEND_EINVALID);
	assert_null(msg);
	opts_init(&o, url, sizeof(url), 25);
	o.url = "http://127.0.0.1:25";
	assert_int_equal(tend_smtp_send(&o, "s", "b"), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "smtp://"));
}

static void test_delivers_to_every_recipient(void **state)
{
	char *dir = test_tmpdir_make("smtp"), *maildir = NULL, *log = NULL, url[64];
	tend_buf mails = TEND_BUF_INIT;
	tend_smtp_opts o;
	int port = test_free_port();
	pid_t pid;

	if (!test_have_aiosmtpd())
		skip();
	assert_true(asprintf(&maildir, "%s/mail", dir) > 0);
	assert_true(asprintf(&log, "%s/smtpd.log", dir) > 0);
	pid = test_smtp_start(port, maildir, log);
	opts_init(&o, url, sizeof(url), port);
	assert_int_equal(tend_smtp_send(&o, "hello", "line one\n.\nline three\n"), 0);
	test_smtp_stop(pid);
	assert_int_equal(test_maildir_count(maildir, &mails), 1);
	assert_non_null(strstr(mails.ptr, "X-RcptTo: ops@example.org, oncall@example.org"));
	assert_non_null(strstr(mails.ptr, "Subject: hello"));
	/* The lone dot survived SMTP's end-of-data convention (dot-stuffing). */
	assert_non_null(strstr(mails.ptr, "line one\n.\nline three"));
	tend_buf_dispose(&mails);
	free(maildir);
	free(log);
	test_tmpdir_remove(dir);
}

static void test_starttls_required_by_default(void **state)
{
	char *dir = test_tmpdir_make("smtp"), *maildir = NULL, url[64];
	tend_smtp_opts o;
	int port = test_free_port();
	pid_t pid;

	if (!test_have_aiosmtpd())
		skip();
	assert_true(asprintf(&maildir, "%s/mail", dir) > 0);
	pid = test_smtp_start(port, maildir, NULL);
	opts_init(&o, url, sizeof(url), port);
	o.allow_plain = 0;   /* the default: this server offers no STARTTLS */
	assert_int_equal(tend_smtp_send(&o, "secret-ish", "must not travel in clear"),
			 TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), url));
	test_smtp_stop(pid);
	assert_int_equal(test_maildir_count(maildir, NULL), 0);
	free(maildir);
	test_tmpdir_remove(dir);
}

/* A self-signed certificate for 127.0.0.1 (openssl(1), a dependency of ca-certificates). */
static void make_cert(const char *dir)
{
	assert_int_equal(test_sh(NULL, dir, "openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem "
				 "-out cert.pem -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
				 ">/dev/null 2>&1"), 0);
}

static pid_t start_tls_server(const char *dir, int port, int smtps, const char *maildir)
{
	char listen[64], cert[512], key[512];
	char *argv[] = { (char *)AIOSMTPD_PYTHON, "-m", "aiosmtpd", "-n", "-l", listen,
			 smtps ? "--smtpscert" : "--tlscert", cert, smtps ? "--smtpskey" : "--tlskey", key,
			 "-c", "aiosmtpd.handlers.Mailbox", (char *)maildir, NULL };
	pid_t pid;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	pid = test_spawn(argv, NULL);
	assert_true(test_wait_port(port, 15000));
	return pid;
}

static void test_starttls_and_smtps(void **state)
{
	char *dir = test_tmpdir_make("smtptls"), *maildir = NULL, *ca = NULL, url[64];
	tend_smtp_opts o;
	tend_buf mails = TEND_BUF_INIT;
	int port;
	pid_t pid;

	if (!test_have_aiosmtpd() || !test_have("openssl"))
		skip();
	make_cert(dir);
	assert_true(asprintf(&maildir, "%s/mail", dir) > 0);
	assert_true(asprintf(&ca, "%s/cert.pem", dir) > 0);

	/* STARTTLS, required (the default): delivered when the certificate verifies... */
	port = test_free_port();
	pid = start_tls_server(dir, port, 0, maildir);
	opts_init(&o, url, sizeof(url), port);
	o.allow_plain = 0;
	o.ca_file = ca;
	assert_int_equal(tend_smtp_send(&o, "over starttls", "hello"), 0);
	/* ...and refused when it does not (the system CAs do not know it). */
	o.ca_file = NULL;
	assert_true(tend_smtp_send(&o, "unverified", "must not be sent") < 0);
	test_smtp_stop(pid);

	/* SMTPS: TLS from the first byte. */
	port = test_free_port();
	pid = start_tls_server(dir, port, 1, maildir);
	snprintf(url, sizeof(url), "smtps://127.0.0.1:%d", port);
	o.ca_file = ca;
	assert_int_equal(tend_smtp_send(&o, "over smtps", "hello"), 0);
	test_smtp_stop(pid);

	assert_int_equal(test_maildir_count(maildir, &mails), 2);
	assert_non_null(strstr(mails.ptr, "Subject: over starttls"));
	assert_non_null(strstr(mails.ptr, "Subject: over smtps"));
	assert_null(strstr(mails.ptr, "unverified"));
	tend_buf_dispose(&mails);
	free(maildir);
	free(ca);
	test_tmpdir_remove(dir);
}

/* Login with the password read from a file, over required STARTTLS. */
static void test_login_with_password_file(void **state)
{
	char *dir = test_tmpdir_make("smtpauth"), *maildir = NULL, *ca = NULL, *pwfile = NULL;
	char *script = TEND_SOURCE_DIR "/tests/agent/smtp_auth_server.py", url[64], portstr[16];
	char cert[512], key[512];
	char *argv[] = { (char *)AIOSMTPD_PYTHON, script, portstr, NULL, cert, key, "tend",
			 "s3cret-pw", NULL };
	tend_smtp_opts o;
	tend_worker_opts w;
	tend_worker_usage u;
	tend_buf mails = TEND_BUF_INIT;
	int port = test_free_port();
	pid_t pid;

	if (!test_have_aiosmtpd() || !test_have("openssl"))
		skip();
	make_cert(dir);
	assert_true(asprintf(&maildir, "%s/mail", dir) > 0);
	assert_true(asprintf(&ca, "%s/cert.pem", dir) > 0);
	assert_true(asprintf(&pwfile, "%s/password", dir) > 0);
	assert_int_equal(test_sh(NULL, dir, "mkdir -p mail/new mail/cur mail/tmp"), 0);
	snprintf(portstr, sizeof(portstr), "%d", port);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	argv[3] = maildir;
	pid = test_spawn(argv, NULL);
	assert_true(test_wait_port(port, 15000));
	opts_init(&o, url, sizeof(url), port);
	o.allow_plain = 0;
	o.ca_file = ca;
	o.username = "tend";
	o.password_file = pwfile;
	test_write_file(dir, "password", "wrong-pw\n");
	assert_int_equal(tend_smtp_send(&o, "wrong password", "must not arrive"), TEND_EAUTH);
	test_write_file(dir, "password", "s3cret-pw\n");
	assert_int_equal(tend_smtp_send(&o, "logged in", "hello"), 0);
	/* The same from a worker process, as the agent sends: every setting
	 * crosses, the password is read there, the error code comes back. */
	memset(&w, 0, sizeof(w));
	w.binary = TEND_BINARY;
	w.limit_ms = 60000;
	assert_int_equal(tend_worker_mail(&u, &w, &o, "logged in from a worker", "hello"), 0);
	assert_true(u.answered && u.max_rss_kb > 0);
	test_write_file(dir, "password", "wrong-pw\n");
	assert_int_equal(tend_worker_mail(&u, &w, &o, "wrong password", "must not arrive"), TEND_EAUTH);
	assert_non_null(strstr(tend_error_last(), url));
	o.password_file = "/nonexistent/password";
	assert_true(tend_smtp_send(&o, "no password", "x") < 0);
	assert_non_null(strstr(tend_error_last(), "password_file"));
	test_smtp_stop(pid);
	assert_int_equal(test_maildir_count(maildir, &mails), 2);
	assert_non_null(strstr(mails.ptr, "Subject: logged in\n"));
	assert_non_null(strstr(mails.ptr, "Subject: logged in from a worker"));
	assert_null(strstr(mails.ptr, "s3cret-pw"));
	tend_buf_dispose(&mails);
	free(maildir);
	free(ca);
	free(pwfile);
	test_tmpdir_remove(dir);
}

static void test_server_down_is_an_error(void **state)
{
	tend_smtp_opts o;
	char url[64];

	opts_init(&o, url, sizeof(url), test_free_port());
	assert_true(tend_smtp_send(&o, "s", "b") < 0);
	assert_non_null(strstr(tend_error_last(), url));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_is_rfc5322),
		cmocka_unit_test(test_rejects_bad_addresses),
		cmocka_unit_test(test_delivers_to_every_recipient),
		cmocka_unit_test(test_starttls_required_by_default),
		cmocka_unit_test(test_starttls_and_smtps),
		cmocka_unit_test(test_login_with_password_file),
		cmocka_unit_test(test_server_down_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
