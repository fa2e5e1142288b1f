/* scp-style remotes (user@host:/path, source/fetch.c) against a real sshd.
 * scp-style URLs have no port: they always reach port 22. So this executable
 * moves itself into a private network namespace first (it runs as root in
 * CI): its 127.0.0.1:22 is its own, no traffic leaves the namespace, and the
 * machine's own port 22 is untouched. Where that is impossible it says so and
 * skips. */
#include "tests/support/support.h"
#include "source/source.h"
#include "util/error.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GIT "git -c user.name=Operator -c user.email=op@example.org -c init.defaultBranch=main"

typedef struct {
	char *tmp;
	char *work;
	char *remote;
	pid_t sshd;
} fixture;

static int port22_open(void)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(22);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void stop_sshd(fixture *f)
{
	if (f->sshd > 0) {
		kill(f->sshd, SIGTERM);
		waitpid(f->sshd, NULL, 0);
		f->sshd = 0;
	}
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char *cfg = NULL;
	int i;

	f->tmp = test_tmpdir_make("scp");
	f->work = tend_path_join(f->tmp, "work");
	f->remote = tend_path_join(f->tmp, "remote.git");
	assert_int_equal(test_sh(NULL, f->tmp,
		"git init -q --bare -b main remote.git && " GIT " init -q work && "
		"cd work && git remote add origin ../remote.git && "
		"cd .. && ssh-keygen -q -t ed25519 -N '' -f hostkey && ssh-keygen -q -t ed25519 -N '' -f client && "
		"cp client.pub authorized_keys && chmod 600 hostkey client authorized_keys"), 0);
	assert_true(asprintf(&cfg,
		"Port 22\nListenAddress 127.0.0.1\nHostKey %s/hostkey\n"
		"AuthorizedKeysFile %s/authorized_keys\nPidFile %s/sshd.pid\n"
		"StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
		"KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
		"PermitRootLogin prohibit-password\nAllowTcpForwarding no\n"
		"X11Forwarding no\nLogLevel VERBOSE\n", f->tmp, f->tmp, f->tmp) > 0);
	test_write_file(f->tmp, "sshd_config", cfg);
	free(cfg);
	assert_false(port22_open());   /* our namespace: nobody else is here */
	f->sshd = fork();
	assert_true(f->sshd >= 0);
	if (f->sshd == 0) {
		char *log = tend_path_join(f->tmp, "sshd.log"), *conf = tend_path_join(f->tmp, "sshd_config");
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", conf, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && !port22_open(); i++)
		usleep(50000);
	if (!port22_open()) {
		char *log = tend_path_join(f->tmp, "sshd.log"), *msg = test_read_file(log);
		fail_msg("sshd did not start on 127.0.0.1:22:\n%s", msg ? msg : "");
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	stop_sshd(f);
	free(f->work);
	free(f->remote);
	test_tmpdir_remove(f->tmp);
	free(f);
	return 0;
}

static void commit_push(fixture *f, char out[41], const char *file, const char *content)
{
	test_write_file(f->work, file, content);
	assert_int_equal(test_sh(NULL, f->work, GIT " add -A && " GIT " commit -q -m change && "
				 "git push -q origin HEAD:main"), 0);
	assert_int_equal(tend_source_resolve(out, f->work, "HEAD"), 0);
}

static void expect_error(const char *what)
{
	if (!strstr(tend_error_last(), what))
		fail_msg("expected '%s' in the error: %s", what, tend_error_last());
}

static void test_scp_style_fetch(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	struct passwd *pw = getpwuid(getuid());
	char *url = NULL, *mirror = tend_path_join(f->tmp, "mirror.git");
	char *key = tend_path_join(f->tmp, "client"), *kh = tend_path_join(f->tmp, "known_hosts");
	char *kh_port = tend_path_join(f->tmp, "known_hosts.port"), *kh_empty = tend_path_join(f->tmp, "known_hosts.empty");
	char c1[41], c2[41], head[41];
	tend_buf fp = TEND_BUF_INIT;
	int fetched = -1;

	assert_non_null(pw);
	/* what `ssh root@127.0.0.1` would have recorded: the plain host name on port 22 */
	assert_int_equal(test_sh(NULL, f->tmp,
		"echo \"127.0.0.1 $(cat hostkey.pub)\" > known_hosts && "
		"echo \"[127.0.0.1]:2222 $(cat hostkey.pub)\" > known_hosts.port && : > known_hosts.empty"), 0);
	assert_int_equal(test_sh(&fp, f->tmp, "ssh-keygen -l -E sha256 -f hostkey.pub | cut -d' ' -f2 | tr -d '\\n'"), 0);
	commit_push(f, c1, "fleet.yaml", "fleet: lab\n");
	assert_true(asprintf(&url, "%s@127.0.0.1:%s", pw->pw_name, f->remote) > 0);
	opts.url = url;
	opts.mirror_dir = mirror;
	opts.ssh_key = key;
	opts.ls_remote_timeout_ms = 20000;
	opts.fetch_timeout_ms = 20000;

	/* An scp-style URL is ssh: no known_hosts, no source. */
	assert_int_equal(tend_source_open(&src, &opts), TEND_EINVALID);
	expect_error("needs a known_hosts file");
	assert_null(src);

	/* Fetched over port 22, the host key checked against the plain entry. */
	opts.known_hosts = kh;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	if (tend_source_poll(src, head, &fetched) != 0) {
		char *log = tend_path_join(f->tmp, "sshd.log"), *msg = test_read_file(log);
		fail_msg("scp-style poll failed: %s\nsshd log:\n%s", tend_error_last(), msg ? msg : "");
	}
	assert_string_equal(head, c1);
	assert_int_equal(fetched, 1);
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_int_equal(fetched, 0);
	commit_push(f, c2, "services/db.yaml", "name: db\n");
	assert_int_equal(tend_source_poll(src, head, &fetched), 0);
	assert_string_equal(head, c2);
	assert_int_equal(fetched, 1);
	tend_source_free(src);
	{
		char got[41];
		assert_int_equal(tend_source_resolve(got, mirror, "refs/heads/main"), 0);
		assert_string_equal(got, c2);
	}

	/* An entry for another port does not vouch for port 22. */
	opts.known_hosts = kh_port;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, &fetched), TEND_EAUTH);
	expect_error("unknown host key for 127.0.0.1:");
	expect_error(fp.ptr);
	tend_source_free(src);

	/* An unknown host: refused, naming the host and the fingerprint. */
	opts.known_hosts = kh_empty;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_int_equal(tend_source_poll(src, head, &fetched), TEND_EAUTH);
	expect_error("unknown host key for 127.0.0.1:");
	expect_error(fp.ptr);
	tend_source_free(src);

	/* Nothing listening on port 22: an error naming the remote, nothing lost. */
	stop_sshd(f);
	opts.known_hosts = kh;
	assert_int_equal(tend_source_open(&src, &opts), 0);
	assert_true(tend_source_poll(src, head, &fetched) < 0);
	expect_error(url);
	expect_error("failed to connect to 127.0.0.1");
	expect_error("port 22: an scp-style URL cannot name a port");
	print_message("nothing listening: %s\n", tend_error_last());
	tend_source_free(src);
	{
		char got[41];
		assert_int_equal(tend_source_resolve(got, mirror, "refs/heads/main"), 0);
		assert_string_equal(got, c2);
	}

	tend_buf_dispose(&fp);
	free(url);
	free(mirror);
	free(key);
	free(kh);
	free(kh_port);
	free(kh_empty);
}

/* Which URLs are scp-style ssh (and so need known_hosts) and which are paths. */
static void test_scp_style_parsing(void **state)
{
	fixture *f = *state;
	tend_source_opts opts = TEND_SOURCE_OPTS_INIT;
	tend_source *src = NULL;
	char *mirror = tend_path_join(f->tmp, "m.git");
	static const char *const ssh_urls[] = {
		"git@127.0.0.1:fleet.git", "127.0.0.1:/srv/fleet.git", "git@[::1]:fleet.git", NULL
	};
	static const char *const local[] = { "./dir:with/colon", "/srv/a:b.git", "dir/sub:x", NULL };
	size_t i;

	opts.mirror_dir = mirror;
	for (i = 0; ssh_urls[i]; i++) {
		opts.url = ssh_urls[i];
		assert_int_equal(tend_source_open(&src, &opts), TEND_EINVALID);
		expect_error("needs a known_hosts file");
		expect_error(ssh_urls[i]);
	}
	for (i = 0; local[i]; i++) {
		opts.url = local[i];
		if (tend_source_open(&src, &opts) != 0)
			fail_msg("%s is a local path, not ssh: %s", local[i], tend_error_last());
		tend_source_free(src);
		src = NULL;
	}
	free(mirror);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scp_style_parsing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scp_style_fetch, setup, teardown),
	};

	if (access("/usr/sbin/sshd", X_OK) != 0 || !test_have("ssh-keygen") || !test_have("ip")) {
		fprintf(stderr, "\n*** SKIPPING scp-style tests: needs /usr/sbin/sshd, ssh-keygen and ip ***\n\n");
		return 0;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "\n*** SKIPPING scp-style tests: cannot create a private network namespace "
			"(unshare: %s; needs root or user namespaces) ***\n\n", strerror(errno));
		return 0;
	}
	if (test_sh(NULL, NULL, "ip link set lo up") != 0) {
		fprintf(stderr, "\n*** SKIPPING scp-style tests: cannot bring up loopback in the namespace ***\n\n");
		return 0;
	}
	/* sshd started by root insists on its privilege separation directory. */
	if (geteuid() == 0 && access("/run/sshd", F_OK) != 0 && mkdir("/run/sshd", 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "\n*** SKIPPING scp-style tests: cannot create /run/sshd ***\n\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
