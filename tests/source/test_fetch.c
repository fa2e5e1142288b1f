/* Polling and fetching (source/fetch.c): a bare repository over file:// and
 * over ssh:// served by a real sshd on a loopback port, with known_hosts
 * checking; an unchanged remote transfers nothing; exports are exact. */
#include "tests/support/support.h"
#include "source/source.h"
#include "util/error.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GIT "git -c user.name=Operator -c user.email=op@example.org -c init.defaultBranch=main"

typedef struct {
	char *tmp;
	char *work;
	char *remote;   /* path of the bare repository */
	pid_t sshd;     /* killed by teardown, also when an assertion failed */
	pid_t agent;    /* ssh-agent, likewise */
	pid_t http;     /* the git smart-HTTP server, likewise */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->tmp = test_tmpdir_make("fetch");
	f->work = tend_path_join(f->tmp, "work");
	f->remote = tend_path_join(f->tmp, "remote.git");
	assert_int_equal(test_sh(NULL, f->tmp, "git init -q --bare -b main remote.git && " GIT " init -q work && "
				 "cd work && git remote add origin ../remote.git"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	if (f->sshd > 0) {
		kill(f->sshd, SIGTERM);
		waitpid(f->sshd, NULL, 0);
	}
	if (f->http > 0) {
		kill(f->http, SIGTERM);
		waitpid(f->http, NULL, 0);
	}
	if (f->agent > 0)
		kill(f->agent, SIGTERM); /* not our child: ssh-agent daemonizes */
	free(f->work);
	free(f->remote);
	test_tmpdir_remove(f->tmp);
	free(f);
	return 0;
}

static void commit_push(fixture *f, char out[41], const char *file, const char *content, const char *subject)
{
	test_write_file(f->work, file, content);
	assert_int_equal(test_sh(NULL, f->work, GIT " add -A && " GIT " commit -q -m '%s' && git push -q origin HEAD:main",
				 subject), 0);
	assert_int_equal(tend_source_resolve(out, f->work, "HEAD"), 0);
}

/* Number of files under the mirror's objects/ (loose objects and packs). */
static long object_files(const char *mirror)
{
	tend_buf out = TEND_BUF_INIT;
	long n;

	assert_int_equal(test_sh(&out, NULL, "find %s/objects -type f | wc -l", mirror), 0);
	n = strtol(out.ptr, NULL, 10);
	tend_buf_dispose(&out);
	return n;
}

static void assert_export_matches(fixture *f, const char *dir, const char *commit)
{
	tend_buf out = TEND_BUF_INIT;
	int rc = test_sh(&out, f->tmp, "rm -rf ref && mkdir ref && git -C work archive %s | tar -x -C ref && "
			 "diff -r --no-dereference ref %s && test ! -e %s/.git", commit, dir, dir);

	if (rc != 0)
		fail_msg("export %s differs from git archive %s:\n%s", dir, commit, out.ptr);
	tend_buf_dispose(&out);
}

static void test_file_remote_poll_fetch_export(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	char *url = NULL, *mirror = tend_path_join(f->tmp, "state/mirror.git");
	char *revs = tend_path_join(f->tmp, "state/revs"), *dir = NULL, *dir2 = NULL;
	char c1[41], c2[41], head[41];
	int fetched = -1;
	long before;

	commit_push(f, c1, "fleet.yaml", "fleet: lab\n", "initial fleet");
	assert_true(asprintf(&url, "file://%s", f->remote) > 0);
	opts.url = url;
	opts.mirror_dir = mirror;
	assert_int_equal(tend_source_open(&src, &opts), 0);

	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_string_equal(head, c1);
	assert_int_equal(fetched, 1);
	assert_int_equal(tend_source_export(&dir, src, head, revs), 0);
	assert_export_matches(f, dir, c1);

	/* Unchanged remote: no fetch, no new object files in the mirror. */
	before = object_files(mirror);
	assert_true(before > 0);
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_int_equal(fetched, 0);
	assert_string_equal(head, c1);
	assert_int_equal(object_files(mirror), before);

	/* A new commit is seen, fetched and exported exactly. */
	commit_push(f, c2, "services/db/service.yaml", "name: db\n", "add postgres");
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_int_equal(fetched, 1);
	assert_string_equal(head, c2);
	assert_true(object_files(mirror) > before);
	/* An earlier export of c2 was interrupted before its rename: its
	 * leftover is ignored, c1 stays in force until c2 is complete. */
	{
		char *leftover = NULL;

		assert_true(asprintf(&leftover, "%s/%s.tmp-x1Y2z3", revs, c2) > 0);
		test_write_file(leftover, "services/db/service.yaml", "na");
		assert_export_matches(f, dir, c1);
		assert_int_equal(tend_source_export(&dir2, src, head, revs), 0);
		assert_export_matches(f, dir2, c2);
		assert_export_matches(f, dir, c1);
		/* Exporting again reuses the complete directory. */
		test_write_file(dir2, "reuse-marker", "x");
		free(dir2);
		assert_int_equal(tend_source_export(&dir2, src, c2, revs), 0);
		{
			char *marker = tend_path_join(dir2, "reuse-marker");

			assert_true(tend_path_exists(marker));
			unlink(marker);
			free(marker);
		}
		/* Prune keeps the applied revision and its predecessor only. */
		assert_int_equal(tend_source_prune(revs, c2, c1), 0);
		assert_false(tend_path_exists(leftover));
		assert_true(tend_path_exists(dir));
		free(leftover);
	}
	assert_int_equal(tend_source_prune(revs, c2, NULL), 0);
	assert_false(tend_path_exists(dir));
	assert_true(tend_path_exists(dir2));
	/* Not a full hash. */
	{
		char *bad = NULL;

		assert_int_equal(tend_source_export(&bad, src, "HEAD", revs), TEND_EINVALID);
		assert_null(bad);
	}

	/* A fresh handle on the existing mirror sees it up to date. */
	tend_source_free(src);
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_int_equal(fetched, 0);
	assert_string_equal(head, c2);

	tend_source_free(src);
	free(dir);
	free(dir2);
	free(url);
	free(mirror);
	free(revs);
}

static void test_file_remote_errors(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	char *url = NULL, *mirror = tend_path_join(f->tmp, "state/mirror.git");
	char c1[41], head[41], resolved[41];

	commit_push(f, c1, "fleet.yaml", "fleet: lab\n", "initial fleet");
	assert_true(asprintf(&url, "file://%s", f->remote) > 0);
	opts.url = url;
	opts.mirror_dir = mirror;
	opts.branch = "production";
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, NULL), TEND_ENOTFOUND);
	assert_non_null(strstr(tend_error_last(), "ls-remote: the remote has no branch 'production'"));
	assert_non_null(strstr(tend_error_last(), url));
	tend_source_free(src);

	/* First a good poll, then the remote disappears: the error names the
	 * remote and the step, and the mirror still has the last good head. */
	opts.branch = NULL;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, NULL), 0);
	tend_source_free(src);
	free(url);
	assert_true(asprintf(&url, "file://%s/gone.git", f->tmp) > 0);
	opts.url = url;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_true(tend_source_poll(src, head, NULL) < 0);
	assert_non_null(strstr(tend_error_last(), url));
	assert_non_null(strstr(tend_error_last(), ": ls-remote: "));
	assert_int_equal(tend_source_resolve(resolved, mirror, "main"), 0);
	assert_string_equal(resolved, c1);
	tend_source_free(src);

	/* ssh without known_hosts is refused up front. */
	opts.url = "ssh://git@127.0.0.1:1/repo.git";
	assert_int_equal(tend_source_open(&src, &opts), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "known_hosts"));
	opts.url = "git@127.0.0.1:repo.git";
	assert_int_equal(tend_source_open(&src, &opts), TEND_EINVALID);
	free(url);
	free(mirror);
}

/* ---- ssh ---------------------------------------------------------------- */

static int port_open(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Start sshd -D on a free loopback port; returns its pid (0 if it cannot run here). */
static pid_t start_sshd(const char *dir, int *out_port)
{
	char *cfg = tend_path_join(dir, "sshd_config"), *log = tend_path_join(dir, "sshd.log");
	int attempt;

	for (attempt = 0; attempt < 5; attempt++) {
		int port = 20000 + (int)((getpid() * 7 + attempt * 7919 + time(NULL)) % 30000), i;
		char *text = NULL;
		pid_t pid;

		if (port_open(port))
			continue;
		assert_true(asprintf(&text,
				     "Port %d\nListenAddress 127.0.0.1\nHostKey %s/hostkey\n"
				     "AuthorizedKeysFile %s/authorized_keys\nPidFile %s/sshd.pid\n"
				     "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
				     "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
				     "PermitRootLogin prohibit-password\nAllowTcpForwarding no\n"
				     "X11Forwarding no\nLogLevel VERBOSE\n",
				     port, dir, dir, dir) > 0);
		test_write_file(dir, "sshd_config", text);
		free(text);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", cfg, (char *)NULL);
			_exit(127);
		}
		for (i = 0; i < 100; i++) {
			int st;

			if (port_open(port)) {
				*out_port = port;
				free(cfg);
				free(log);
				return pid;
			}
			if (waitpid(pid, &st, WNOHANG) == pid)
				break;
			usleep(50000);
		}
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	{
		char *msg = test_read_file(log);

		fprintf(stderr, "sshd could not start:\n%s\n", msg ? msg : "");
		free(msg);
	}
	free(cfg);
	free(log);
	return 0;
}

/* Keys (hostkey, client, otherhost) and a running sshd; returns its port.
 * Skips the calling test, loudly, when sshd cannot run here. */
static int ssh_server(fixture *f)
{
	int port = 0;

	if (access("/usr/sbin/sshd", X_OK) != 0) {
		fprintf(stderr, "\n*** SKIPPING the ssh:// test: /usr/sbin/sshd is not installed ***\n\n");
		skip();
	}
	/* sshd started by root insists on its privilege separation directory. */
	if (geteuid() == 0 && access("/run/sshd", F_OK) != 0 && mkdir("/run/sshd", 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "\n*** SKIPPING the ssh:// test: cannot create /run/sshd ***\n\n");
		skip();
	}
	assert_int_equal(test_sh(NULL, f->tmp,
				 "ssh-keygen -q -t ed25519 -N '' -f hostkey && ssh-keygen -q -t ed25519 -N '' -f client && "
				 "ssh-keygen -q -t ed25519 -N '' -f otherhost && cp client.pub authorized_keys && "
				 "chmod 600 hostkey client authorized_keys && : > known_hosts.empty"), 0);
	f->sshd = start_sshd(f->tmp, &port);
	if (!f->sshd) {
		fprintf(stderr, "\n*** SKIPPING the ssh:// test: sshd cannot run in this environment (see above) ***\n\n");
		skip();
	}
	return port;
}

static void test_ssh_remote_known_hosts(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	struct passwd *pw = getpwuid(getuid());
	char *url = NULL, *mirror = tend_path_join(f->tmp, "state/mirror.git");
	char *key = tend_path_join(f->tmp, "client"), *kh = tend_path_join(f->tmp, "known_hosts");
	char *kh_wrong = tend_path_join(f->tmp, "known_hosts.wrong");
	char *kh_empty = tend_path_join(f->tmp, "known_hosts.empty");
	char c1[41], c2[41], head[41];
	tend_buf fp = TEND_BUF_INIT;
	int port = 0, fetched = -1;

	port = ssh_server(f);
	assert_int_equal(test_sh(NULL, f->tmp,
				 "echo \"[127.0.0.1]:%d $(cat hostkey.pub)\" > known_hosts && "
				 "echo \"[127.0.0.1]:%d $(cat otherhost.pub)\" > known_hosts.wrong", port, port), 0);
	assert_non_null(pw);
	assert_int_equal(test_sh(&fp, f->tmp, "ssh-keygen -l -E sha256 -f hostkey.pub | cut -d' ' -f2 | tr -d '\\n'"), 0);
	commit_push(f, c1, "fleet.yaml", "fleet: lab\n", "initial fleet");

	assert_true(asprintf(&url, "ssh://%s@127.0.0.1:%d%s", pw->pw_name, port, f->remote) > 0);
	opts.url = url;
	opts.mirror_dir = mirror;
	opts.ssh_key = key;
	opts.known_hosts = kh;
	opts.ls_remote_timeout_ms = 20000;
	opts.fetch_timeout_ms = 20000;

	/* The right known_hosts: fetched. */
	assert_int_equal(tend_source_open(&src, &opts), 0);
	if (tend_source_poll(src, head, &fetched) != 0) {
		char *log = tend_path_join(f->tmp, "sshd.log"), *msg = test_read_file(log);

		fprintf(stderr, "sshd log:\n%s\n", msg ? msg : "");
		free(msg);
		free(log);
		fail_msg("ssh poll failed: %s", tend_error_last());
	}
	assert_string_equal(head, c1);
	assert_int_equal(fetched, 1);
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_int_equal(fetched, 0);
	tend_source_free(src);

	/* The same entry hashed (ssh-keygen -H): still accepted. */
	commit_push(f, c2, "services/db.yaml", "name: db\n", "add postgres");
	assert_int_equal(test_sh(NULL, f->tmp, "ssh-keygen -q -H -f known_hosts >/dev/null 2>&1 && grep -q '^|1|' known_hosts"), 0);
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_string_equal(head, c2);
	assert_int_equal(fetched, 1);
	tend_source_free(src);

	/* A changed host key: refused, naming the host and the fingerprint. */
	opts.known_hosts = kh_wrong;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, &fetched), TEND_EAUTH);
	{
		char *host = NULL;

		assert_true(asprintf(&host, "[127.0.0.1]:%d", port) > 0);
		if (!strstr(tend_error_last(), host) || !strstr(tend_error_last(), fp.ptr) ||
		    !strstr(tend_error_last(), "changed") || !strstr(tend_error_last(), "ls-remote"))
			fail_msg("unexpected error: %s", tend_error_last());
		free(host);
	}
	tend_source_free(src);

	/* A plain entry without the port does not vouch for a non-standard port
	 * (OpenSSH's rule). */
	assert_int_equal(test_sh(NULL, f->tmp, "echo \"127.0.0.1 $(cat hostkey.pub)\" > known_hosts.noport"), 0);
	{
		char *kh_noport = tend_path_join(f->tmp, "known_hosts.noport");

		opts.known_hosts = kh_noport;
		assert_int_equal(tend_source_open(&src, &opts), 0);
		assert_int_equal(tend_source_poll(src, head, &fetched), TEND_EAUTH);
		assert_non_null(strstr(tend_error_last(), "unknown host key"));
		tend_source_free(src);
		free(kh_noport);
	}

	/* An unknown host: refused the same way. */
	opts.known_hosts = kh_empty;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, &fetched), TEND_EAUTH);
	if (!strstr(tend_error_last(), "unknown host key") || !strstr(tend_error_last(), fp.ptr))
		fail_msg("unexpected error: %s", tend_error_last());
	tend_source_free(src);

	tend_buf_dispose(&fp);
	free(url);
	free(mirror);
	free(key);
	free(kh);
	free(kh_wrong);
	free(kh_empty);
}

/* git's smart HTTP behind basic auth (tests/source/data/git_http_server.py,
 * plain HTTP on loopback; the same over TLS is in test_fetch_tls.c). */
static void test_http_basic_and_token(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	char *portfile = tend_path_join(f->tmp, "http.port"), *mirror = tend_path_join(f->tmp, "state/mirror.git");
	char *basic = tend_path_join(f->tmp, "basic"), *badbasic = tend_path_join(f->tmp, "basic.wrong");
	char *token = tend_path_join(f->tmp, "token"), *url = NULL, *url_user = NULL, *port = NULL;
	char c1[41], head[41];
	int i;

	if (!test_have("python3")) {
		fprintf(stderr, "\n*** SKIPPING the http test: python3 is not installed ***\n\n");
		skip();
	}
	commit_push(f, c1, "fleet.yaml", "fleet: lab\n", "initial fleet");
	test_write_file(f->tmp, "basic", "op:s3cret pass\n");
	test_write_file(f->tmp, "basic.wrong", "op:guess\n");
	test_write_file(f->tmp, "token", "s3cret pass\n");
	f->http = fork();
	assert_true(f->http >= 0);
	if (f->http == 0) {
		execlp("python3", "python3", TEND_SOURCE_DIR "/tests/source/data/git_http_server.py",
		       f->tmp, portfile, "op", "s3cret pass", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200 && !(port = test_read_file(portfile)); i++)
		usleep(25000);
	assert_non_null(port);
	assert_true(asprintf(&url, "http://127.0.0.1:%s/remote.git", port) > 0);
	assert_true(asprintf(&url_user, "http://op@127.0.0.1:%s/remote.git", port) > 0);
	opts.url = url;
	opts.mirror_dir = mirror;
	opts.ls_remote_timeout_ms = 20000;

	/* No credentials configured. */
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, NULL), TEND_EAUTH);
	assert_non_null(strstr(tend_error_last(), "ls-remote: the server wants a password"));
	tend_source_free(src);

	/* Wrong password. */
	opts.https_basic_file = badbasic;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, NULL), TEND_EAUTH);
	if (!strstr(tend_error_last(), url) || !strstr(tend_error_last(), "ls-remote: authentication failed"))
		fail_msg("unexpected error: %s", tend_error_last());
	tend_source_free(src);

	/* Basic auth from a user:password file. */
	opts.https_basic_file = basic;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	if (tend_source_poll(src, head, NULL) != 0)
		fail_msg("basic auth: %s", tend_error_last());
	assert_string_equal(head, c1);
	tend_source_free(src);

	/* A token, with the user from the URL. */
	opts.https_basic_file = NULL;
	opts.https_token_file = token;
	opts.url = url_user;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	if (tend_source_poll(src, head, NULL) != 0)
		fail_msg("token: %s", tend_error_last());
	assert_string_equal(head, c1);
	tend_source_free(src);

	free(portfile);
	free(mirror);
	free(basic);
	free(badbasic);
	free(token);
	free(url);
	free(url_user);
	free(port);
}

/* A server that accepts the connection and then says nothing: the poll
 * still ends, at the ls-remote limit. */
static void test_silent_server_times_out(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	int port;
	char *url = NULL, *mirror = tend_path_join(f->tmp, "state/mirror.git");
	char *kh = tend_path_join(f->tmp, "known_hosts"), head[41];
	int64_t t0, ms;
	struct timespec ts;
	int lfd;

	lfd = test_listen_silent(&port);
	test_write_file(f->tmp, "known_hosts", "");
	assert_true(asprintf(&url, "ssh://git@127.0.0.1:%d/repo.git", port) > 0);
	opts.url = url;
	opts.mirror_dir = mirror;
	opts.known_hosts = kh;
	opts.ssh_key = kh; /* never reached */
	opts.ls_remote_timeout_ms = 300;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	assert_int_equal(tend_source_poll(src, head, NULL), TEND_ETIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - t0;
	assert_true(ms >= 300);
	assert_true(ms < 5000);
	assert_non_null(strstr(tend_error_last(), url));
	assert_non_null(strstr(tend_error_last(), "ls-remote: time limit of 300 ms exceeded"));
	tend_source_free(src);
	close(lfd);
	free(url);
	free(mirror);
	free(kh);
}

/* Client authentication: a passphrase-protected key with its passphrase
 * file, ssh-agent, and a key the server does not know. */
static void test_ssh_auth(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	struct passwd *pw = getpwuid(getuid());
	char *url = NULL, *mirror = tend_path_join(f->tmp, "state/mirror.git");
	char *kh = tend_path_join(f->tmp, "known_hosts"), *locked = tend_path_join(f->tmp, "locked");
	char *pass = tend_path_join(f->tmp, "passphrase"), *stranger = tend_path_join(f->tmp, "stranger");
	char *sock = tend_path_join(f->tmp, "agent.sock"), *old_sock = getenv("SSH_AUTH_SOCK");
	char c1[41], head[41];
	tend_buf out = TEND_BUF_INIT;
	int port;

	port = ssh_server(f);
	assert_non_null(pw);
	old_sock = old_sock ? strdup(old_sock) : NULL;
	assert_int_equal(test_sh(NULL, f->tmp,
				 "ssh-keygen -q -t ed25519 -N 'correct horse' -f locked && printf 'correct horse\\n' > passphrase && "
				 "ssh-keygen -q -t ed25519 -N '' -f stranger && cat locked.pub >> authorized_keys && "
				 "echo \"[127.0.0.1]:%d $(cat hostkey.pub)\" > known_hosts", port), 0);
	commit_push(f, c1, "fleet.yaml", "fleet: lab\n", "initial fleet");
	assert_true(asprintf(&url, "ssh://%s@127.0.0.1:%d%s", pw->pw_name, port, f->remote) > 0);
	opts.url = url;
	opts.mirror_dir = mirror;
	opts.known_hosts = kh;
	opts.ls_remote_timeout_ms = 20000;

	/* Passphrase-protected key. */
	opts.ssh_key = locked;
	opts.ssh_passphrase_file = pass;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	if (tend_source_poll(src, head, NULL) != 0)
		fail_msg("passphrase key: %s", tend_error_last());
	assert_string_equal(head, c1);
	tend_source_free(src);

	/* A key the server does not accept: an error naming the remote and step. */
	opts.ssh_key = stranger;
	opts.ssh_passphrase_file = NULL;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_true(tend_source_poll(src, head, NULL) < 0);
	if (!strstr(tend_error_last(), url) || !strstr(tend_error_last(), ": ls-remote: "))
		fail_msg("unexpected error: %s", tend_error_last());
	tend_source_free(src);

	/* ssh-agent holding the passphrase-less client key. */
	assert_int_equal(test_sh(&out, f->tmp, "ssh-agent -s -a %s | sed -n 's/^SSH_AGENT_PID=\\([0-9]*\\);.*/\\1/p'", sock), 0);
	f->agent = (pid_t)strtol(out.ptr, NULL, 10);
	assert_true(f->agent > 0);
	assert_int_equal(test_sh(NULL, f->tmp, "SSH_AUTH_SOCK=%s ssh-add -q client 2>/dev/null", sock), 0);
	setenv("SSH_AUTH_SOCK", sock, 1);
	opts.ssh_key = NULL;
	opts.ssh_agent = 1;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	if (tend_source_poll(src, head, NULL) != 0)
		fail_msg("ssh-agent: %s", tend_error_last());
	assert_string_equal(head, c1);
	tend_source_free(src);
	if (old_sock)
		setenv("SSH_AUTH_SOCK", old_sock, 1);
	else
		unsetenv("SSH_AUTH_SOCK");

	tend_buf_dispose(&out);
	free(old_sock);
	free(url);
	free(mirror);
	free(kh);
	free(locked);
	free(pass);
	free(stranger);
	free(sock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_remote_poll_fetch_export, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_remote_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_remote_known_hosts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_basic_and_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
