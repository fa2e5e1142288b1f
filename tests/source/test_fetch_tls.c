/* git over https with real TLS (source/fetch.c, source/tls.c): git's smart
 * HTTP (tests/source/data/git_http_server.py) behind python's ssl on
 * 127.0.0.1, with a throwaway CA and certificates made by the openssl CLI.
 * A trusted server is polled, fetched and verified with basic and token
 * auth; an unknown CA, a certificate for another name and an unusable CA
 * file are refused in one line that says so. */
#include "tests/support/support.h"
#include "tests/support/tls.h"
#include "source/source.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIT "git -c user.name=Operator -c user.email=op@example.org -c init.defaultBranch=main " \
	"-c gpg.format=ssh -c commit.gpgsign=false"
#define PASSWORD "s3cret pass"

/* One CA, certificates and servers for the whole file (openssl and the
 * servers' start-up are the slow part); each test gets a fresh mirror. */
static struct {
	char *tmp;
	char *work;                /* the operator's checkout; pushes to tmp/remote.git */
	char *ca, *rogue_ca;       /* PEM files: the test CA, and one nobody trusts */
	char *signers;             /* allowed_signers for key.pub */
	pid_t good, other_name, rogue, ip_only;
	int good_port, other_name_port, rogue_port, ip_only_port;
	int mirrors;
} g;

/* The git server over TLS with dir/<cert>.pem; returns its pid. */
static pid_t start_git_https(const char *cert, int *port)
{
	char *pem = NULL, *key = NULL, *portfile = NULL;
	char *argv[] = { "python3", TEND_SOURCE_DIR "/tests/source/data/git_http_server.py", g.tmp, NULL,
			 "op", PASSWORD, NULL, NULL, NULL };
	pid_t pid;

	assert_true(asprintf(&pem, "%s/%s.pem", g.tmp, cert) > 0);
	assert_true(asprintf(&key, "%s/%s.key", g.tmp, cert) > 0);
	assert_true(asprintf(&portfile, "%s/%s.port", g.tmp, cert) > 0);
	argv[3] = portfile;
	argv[6] = pem;
	argv[7] = key;
	pid = tls_start_server(argv, portfile, port);
	free(pem);
	free(key);
	free(portfile);
	return pid;
}

static int group_setup(void **state)
{
	(void)state;
	if (!test_have("openssl") || !test_have("python3"))
		return 0; /* every test skips, loudly */
	g.tmp = test_tmpdir_make("fetch-tls");
	g.work = tend_path_join(g.tmp, "work");
	g.ca = tend_path_join(g.tmp, "ca.pem");
	g.rogue_ca = tend_path_join(g.tmp, "rogue-ca.pem");
	g.signers = tend_path_join(g.tmp, "allowed_signers");
	tls_make_ca(g.tmp, "ca");
	tls_make_ca(g.tmp, "rogue-ca");
	/* DNS:127.0.0.1 as well: Debian's libgit2 (mbedTLS 2.28) matches an
	 * address only against DNS names; OpenSSL-built ones use IP:. */
	tls_make_cert(g.tmp, "ca", "good", "DNS:127.0.0.1,IP:127.0.0.1");
	tls_make_cert(g.tmp, "ca", "other-name", "DNS:git.other.example");
	tls_make_cert(g.tmp, "rogue-ca", "rogue", "DNS:127.0.0.1,IP:127.0.0.1");
	tls_make_cert(g.tmp, "ca", "ip-only", "IP:127.0.0.1");
	assert_int_equal(test_sh(NULL, g.tmp,
				 "ssh-keygen -q -t ed25519 -N '' -C op -f key && chmod 600 key && "
				 "echo \"op@example.org namespaces=\\\"git\\\" $(cut -d' ' -f1,2 key.pub)\" > allowed_signers && "
				 "git init -q --bare -b main remote.git && " GIT " init -q work && "
				 "cd work && git remote add origin ../remote.git && "
				 "printf 'op:" PASSWORD "\\n' > ../basic && printf 'op:guess\\n' > ../basic.wrong && "
				 "printf '" PASSWORD "\\n' > ../token && printf 'n0t-the-t0ken\\n' > ../token.wrong"), 0);
	g.good = start_git_https("good", &g.good_port);
	g.other_name = start_git_https("other-name", &g.other_name_port);
	g.rogue = start_git_https("rogue", &g.rogue_port);
	g.ip_only = start_git_https("ip-only", &g.ip_only_port);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tls_stop_server(g.good);
	tls_stop_server(g.other_name);
	tls_stop_server(g.rogue);
	tls_stop_server(g.ip_only);
	free(g.work);
	free(g.ca);
	free(g.rogue_ca);
	free(g.signers);
	test_tmpdir_remove(g.tmp);
	return 0;
}

/* Commit (signed by key) and push; out gets the hash. */
static void commit_push(char out[41], const char *file, const char *subject)
{
	test_write_file(g.work, file, subject);
	assert_int_equal(test_sh(NULL, g.work, GIT " add -A && " GIT " -c user.signingkey=%s/key commit -S -q -m '%s' && "
				 "git push -q origin HEAD:main", g.tmp, subject), 0);
	assert_int_equal(tend_source_resolve(out, g.work, "HEAD"), 0);
}

/* Options for https://[user@]127.0.0.1:port/remote.git with a fresh mirror.
 * Strings live until the next call. */
static tend_source_opts opts_for(int port, const char *user)
{
	static char url[128], *mirror;
	tend_source_opts o = TEND_SOURCE_OPTS_INIT;
	char name[32];

	snprintf(url, sizeof(url), "https://%s%s127.0.0.1:%d/remote.git", user ? user : "", user ? "@" : "", port);
	snprintf(name, sizeof(name), "state/mirror%d.git", ++g.mirrors);
	free(mirror);
	mirror = tend_path_join(g.tmp, name);
	o.url = url;
	o.mirror_dir = mirror;
	o.ls_remote_timeout_ms = 20000;
	o.fetch_timeout_ms = 20000;
	return o;
}

static void require_tools(void)
{
	tls_require_tools();
	assert_non_null(g.tmp);
}

/* Poll expecting a refusal with code; the message must contain every needle
 * (NULL-terminated) and never the password or token. */
static void expect_refused(const tend_source_opts *o, int code, ...)
{
	tend_source *src = NULL;
	const char *needle;
	char head[41];
	va_list ap;

	assert_int_equal(tend_source_open(&src, o), 0);
	if (tend_source_poll(src, head, NULL) != code)
		fail_msg("expected %d from %s, got: %s", code, o->url, tend_error_last());
	va_start(ap, code);
	while ((needle = va_arg(ap, const char *)))
		if (!strstr(tend_error_last(), needle))
			fail_msg("expected '%s' in: %s", needle, tend_error_last());
	va_end(ap);
	if (strchr(tend_error_last(), '\n') || strstr(tend_error_last(), PASSWORD))
		fail_msg("not one line, or shows the secret: %s", tend_error_last());
	/* nothing came in: the mirror has no branch */
	assert_int_not_equal(tend_source_resolve(head, o->mirror_dir, "main"), 0);
	tend_source_free(src);
}

static void test_trusted_ca_basic_token_verify(void **state)
{
	tend_source_opts o;
	tend_source *src = NULL;
	char *basic = tend_path_join(g.tmp ? g.tmp : "/", "basic"), *token = tend_path_join(g.tmp ? g.tmp : "/", "token");
	char *bad_basic = tend_path_join(g.tmp ? g.tmp : "/", "basic.wrong");
	char *bad_token = tend_path_join(g.tmp ? g.tmp : "/", "token.wrong");
	char *revs = NULL, *dir = NULL, c1[41], c2[41], head[41];
	int fetched = -1;

	(void)state;
	require_tools();
	commit_push(c1, "fleet.yaml", "initial fleet");

	/* The test CA named in the options: basic auth over TLS, fetched, verified, exported. */
	o = opts_for(g.good_port, NULL);
	o.ca_file = g.ca;
	o.https_basic_file = basic;
	o.allowed_signers = g.signers;
	assert_int_equal(tend_source_open(&src, &o), 0);
	if (tend_source_poll(src, head, &fetched) != 0)
		fail_msg("https poll with the test CA: %s", tend_error_last());
	assert_string_equal(head, c1);
	assert_int_equal(fetched, 1);
	assert_int_equal(tend_source_verify_range(src, NULL, head, 0), 0);
	revs = tend_path_join(g.tmp, "revs");
	assert_int_equal(tend_source_export(&dir, src, head, revs), 0);
	{
		char *text = NULL, *path = tend_path_join(dir, "fleet.yaml");

		text = test_read_file(path);
		assert_non_null(text);
		assert_string_equal(text, "initial fleet");
		free(text);
		free(path);
	}
	/* a new commit arrives over the same TLS remote; an unchanged one transfers nothing */
	commit_push(c2, "services/db.yaml", "add postgres");
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_string_equal(head, c2);
	assert_int_equal(fetched, 1);
	assert_int_equal(tend_source_verify_range(src, c1, c2, 0), 0);
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_int_equal(fetched, 0);
	tend_source_free(src);

	/* A token, with the user from the URL. */
	o = opts_for(g.good_port, "op");
	o.ca_file = g.ca;
	o.https_token_file = token;
	assert_int_equal(tend_source_open(&src, &o), 0);
	if (tend_source_poll(src, head, &fetched) != 0)
		fail_msg("https poll with a token: %s", tend_error_last());
	assert_string_equal(head, c2);
	tend_source_free(src);

	/* Wrong credentials and none: refused after the handshake, secrets never shown. */
	o = opts_for(g.good_port, "op");
	o.ca_file = g.ca;
	o.https_token_file = bad_token;
	expect_refused(&o, TEND_EAUTH, o.url, "ls-remote: authentication failed", "token.wrong", (char *)NULL);
	if (strstr(tend_error_last(), "n0t-the-t0ken"))
		fail_msg("the token is in the message: %s", tend_error_last());
	o = opts_for(g.good_port, NULL);
	o.ca_file = g.ca;
	o.https_basic_file = bad_basic;
	expect_refused(&o, TEND_EAUTH, "authentication failed", (char *)NULL);
	if (strstr(tend_error_last(), "guess"))
		fail_msg("the password is in the message: %s", tend_error_last());
	o = opts_for(g.good_port, NULL);
	o.ca_file = g.ca;
	expect_refused(&o, TEND_EAUTH, "the server wants a password", (char *)NULL);

	free(revs);
	free(dir);
	free(basic);
	free(token);
	free(bad_basic);
	free(bad_token);
}

/* A certificate from a CA that is not in the CA file: refused before any
 * credential is sent, naming the remote and the CA file. */
static void test_unknown_ca_refused(void **state)
{
	tend_source_opts o;
	char *basic = tend_path_join(g.tmp ? g.tmp : "/", "basic");

	(void)state;
	require_tools();
	o = opts_for(g.rogue_port, NULL);
	o.ca_file = g.ca;
	o.https_basic_file = basic;
	expect_refused(&o, TEND_EAUTH, o.url, ": ls-remote: the TLS certificate of 127.0.0.1 is not trusted",
		       g.ca, (char *)NULL);

	/* The other way round: the good server, but only the rogue CA trusted. */
	o = opts_for(g.good_port, NULL);
	o.ca_file = g.rogue_ca;
	o.https_basic_file = basic;
	expect_refused(&o, TEND_EAUTH, "is not trusted", g.rogue_ca, (char *)NULL);
	free(basic);
}

/* Nothing configured: $SSL_CERT_FILE when set (which mbedTLS-built libgit2
 * ignores on its own), else the system bundle, which does not hold the test CA. */
static void test_default_bundle_and_ssl_cert_file(void **state)
{
	tend_source_opts o;
	tend_source *src = NULL;
	char *basic = tend_path_join(g.tmp ? g.tmp : "/", "basic"), *old = getenv("SSL_CERT_FILE");
	char head[41];

	(void)state;
	require_tools();
	old = old ? strdup(old) : NULL;
	commit_push(head, "README", "readme");

	setenv("SSL_CERT_FILE", g.ca, 1);
	o = opts_for(g.good_port, NULL);
	o.https_basic_file = basic;
	assert_int_equal(tend_source_open(&src, &o), 0);
	if (tend_source_poll(src, head, NULL) != 0)
		fail_msg("https poll with SSL_CERT_FILE=%s: %s", g.ca, tend_error_last());
	tend_source_free(src);
	/* and the rogue server is still refused under it */
	o = opts_for(g.rogue_port, NULL);
	o.https_basic_file = basic;
	expect_refused(&o, TEND_EAUTH, "is not trusted", g.ca, (char *)NULL);

	unsetenv("SSL_CERT_FILE");
	o = opts_for(g.good_port, NULL);
	o.https_basic_file = basic;
	if (tend_path_exists("/etc/ssl/certs/ca-certificates.crt"))
		expect_refused(&o, TEND_EAUTH, "is not trusted: no CA in /etc/ssl/certs/ca-certificates.crt",
			       (char *)NULL);
	else
		fprintf(stderr, "(no /etc/ssl/certs/ca-certificates.crt here: system bundle case not checked)\n");
	if (old)
		setenv("SSL_CERT_FILE", old, 1);
	free(old);
	free(basic);
}

/* A certificate from the trusted CA, but for another name. */
static void test_hostname_mismatch(void **state)
{
	tend_source_opts o;
	tend_source *src = NULL;
	char *basic = tend_path_join(g.tmp ? g.tmp : "/", "basic"), head[41];
	int rc;

	(void)state;
	require_tools();
	o = opts_for(g.other_name_port, NULL);
	o.ca_file = g.ca;
	o.https_basic_file = basic;
	expect_refused(&o, TEND_EAUTH, o.url,
		       ": ls-remote: the TLS certificate of 127.0.0.1 is for another host name (hostname mismatch)",
		       (char *)NULL);
	if (strstr(tend_error_last(), "not trusted"))
		fail_msg("a trusted certificate called untrusted: %s", tend_error_last());

	/* A certificate naming the address only as IP: accepted by OpenSSL-built
	 * libgit2; mbedTLS-built (Debian's) says what to do about it. */
	commit_push(head, "ip.txt", "ip only");
	o = opts_for(g.ip_only_port, NULL);
	o.ca_file = g.ca;
	o.https_basic_file = basic;
	assert_int_equal(tend_source_open(&src, &o), 0);
	rc = tend_source_poll(src, head, NULL);
	if (rc != 0 && !(rc == TEND_EAUTH && strstr(tend_error_last(), "(hostname mismatch)") &&
			 strstr(tend_error_last(), "needs DNS:127.0.0.1 too")))
		fail_msg("IP-only certificate: %d %s", rc, tend_error_last());
	tend_source_free(src);
	free(basic);
}

/* A CA file that is missing or holds no certificate: an error naming it, and
 * no connection with laxer checking. */
static void test_bad_ca_file(void **state)
{
	tend_source_opts o;
	char *missing = tend_path_join(g.tmp ? g.tmp : "/", "no-such-ca.pem");
	char *keyfile = tend_path_join(g.tmp ? g.tmp : "/", "ca.key");

	(void)state;
	require_tools();
	o = opts_for(g.good_port, NULL);
	o.ca_file = missing;
	expect_refused(&o, TEND_ENOTFOUND, o.url, ": ls-remote: CA file ", missing, "No such file", (char *)NULL);
	o = opts_for(g.good_port, NULL);
	o.ca_file = keyfile;
	expect_refused(&o, TEND_EINVALID, keyfile, "holds no PEM certificate", (char *)NULL);
	free(missing);
	free(keyfile);
}

/* The idle-poll checker over https: one long-lived process that looks again
 * and again. It hands its CA file to libgit2 once, yet a CA file replaced on
 * disk is the one trusted at the next look, and restored, trusted again. */
static void test_watch_looks_follow_the_ca_file(void **state)
{
	tend_source_opts o;
	tend_source_watch *w = NULL;
	char *basic = tend_path_join(g.tmp ? g.tmp : "/", "basic");
	char *ca = tend_path_join(g.tmp ? g.tmp : "/", "watch-ca.pem"), *good = NULL, *rogue = NULL;
	char head[41], c[41];
	pid_t pid;
	int i;

	(void)state;
	require_tools();
	good = test_read_file(g.ca);
	rogue = test_read_file(g.rogue_ca);
	assert_non_null(good);
	assert_non_null(rogue);
	commit_push(c, "WATCH", "watched");
	test_write_file(g.tmp, "watch-ca.pem", good);
	o = opts_for(g.good_port, NULL);
	o.ca_file = ca;
	o.https_basic_file = basic;
	assert_int_equal(tend_source_watch_open(&w, &o), 0);
	for (i = 0; i < 3; i++) {
		if (tend_source_watch_head(w, head) != 0)
			fail_msg("https look %d through the checker: %s", i, tend_error_last());
		assert_string_equal(head, c);
	}
	pid = tend_source_watch_pid(w);
	assert_true(pid > 0);
	/* Another CA in its place (a new file renamed over it, as package
	 * managers do): refused by the same checker. */
	test_write_file(g.tmp, "watch-ca.pem.new", rogue);
	assert_int_equal(test_sh(NULL, g.tmp, "mv watch-ca.pem.new watch-ca.pem"), 0);
	assert_int_equal(tend_source_watch_head(w, head), TEND_EAUTH);
	assert_non_null(strstr(tend_error_last(), "is not trusted"));
	assert_non_null(strstr(tend_error_last(), ca));
	assert_int_equal(tend_source_watch_pid(w), pid);
	/* Rewritten in place with the right CA: trusted again. */
	test_write_file(g.tmp, "watch-ca.pem", good);
	if (tend_source_watch_head(w, head) != 0)
		fail_msg("https look after the CA file was restored: %s", tend_error_last());
	assert_string_equal(head, c);
	assert_int_equal(tend_source_watch_pid(w), pid);
	tend_source_watch_free(w);
	free(good);
	free(rogue);
	free(ca);
	free(basic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trusted_ca_basic_token_verify),
		cmocka_unit_test(test_unknown_ca_refused),
		cmocka_unit_test(test_default_bundle_and_ssl_cert_file),
		cmocka_unit_test(test_hostname_mismatch),
		cmocka_unit_test(test_bad_ca_file),
		cmocka_unit_test(test_watch_looks_follow_the_ca_file),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
