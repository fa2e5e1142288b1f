/* The reachability guard on a real systemd (a Debian 12 VM of tests/host/lab, tend as the
 * module's unit): the guest fetches its fleet from a git daemon on the host's loopback
 * (git://10.0.2.2, QEMU's user network), and a commit whose firewall cuts the guest off from
 * it, or from its own agent address that another host depends on, passes its local probes and
 * is still rolled back within reachability_timeout, saying why; the fix then arrives. Also the
 * apply window: a change outside it waits, and applies once a commit opens it. ctest label
 * `host`. */
#include "tests/host/lab.h"

static lab_host *h;
static char *gitd;      /* the git daemon's directory on the host (fleet.git, pid) */
static int git_port;

static int group_setup(void **state)
{
	tend_buf out = TEND_BUF_INIT;
	char *fleet = NULL, *url = NULL, *push = NULL;
	lab_opts o = { NULL, NULL, NULL, NULL, NULL, NULL, NULL };

	(void)state;
	gitd = test_tmpdir_make("gitd");
	assert_int_equal(test_sh(&out, NULL, "python3 -c 'import socket; s=socket.socket(); "
				 "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'"), 0);
	git_port = atoi(out.ptr);
	tend_buf_dispose(&out);
	assert_int_equal(test_sh(NULL, gitd, "git init -q --bare -b main fleet.git && "
				 "git daemon --reuseaddr --base-path=%s --export-all --listen=127.0.0.1 "
				 "--port=%d --detach --pid-file=%s/pid %s", gitd, git_port, gitd, gitd), 0);
	/* the lab host at the guest's own address (QEMU's user network gives it 10.0.2.15), and
	 * a host whose service depends on the lab host's web */
	assert_true(asprintf(&fleet, "fleet: lab\ndomain: lab.test\nhosts:\n"
			     "  guard: {address: 10.0.2.15}\n  peer: {address: 10.0.2.16}\n") > 0);
	assert_true(asprintf(&url, "git://10.0.2.2:%d/fleet.git", git_port) > 0);
	assert_true(asprintf(&push, "%s/fleet.git", gitd) > 0);
	o.url = url;
	o.push = push;
	o.fleet = fleet;
	o.system = "\"switch_timeout\": \"8s\", \"reachability_timeout\": \"15s\"";
	h = lab_host_up_with("guard", &o);
	test_write_file(h->repo, "services/client/service.yaml",
			"name: client\nhost: peer\ndepends_on: [web]\n");
	free(fleet);
	free(url);
	free(push);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	lab_host_down(h);
	if (gitd) {
		test_sh(NULL, gitd, "kill $(cat pid) 2>/dev/null; true");
		test_tmpdir_remove(gitd);   /* frees it */
	}
	return 0;
}

/* Waits for /v1/status to say rolled-back back to good, and its last_error to name want. */
static void expect_rolled_back(const char *good, const char *want)
{
	char *msg;

	if (!lab_wait_phase(h, "rolled-back", good, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the commit that cut the guest off was not rolled back");
	}
	msg = lab_status(h, "last_error");
	assert_non_null(msg);
	if (!strstr(msg, want) || !strstr(msg, "reachability_timeout"))
		fail_msg("last_error of the rollback: %s", msg);
	free(msg);
	/* the firewall went with the system that brought it */
	assert_int_equal(lab_run(h, "! nft list table inet labfw >/dev/null 2>&1"), 0);
	lab_expect_web(h, "one");
}

static void test_first_commit(void **state)
{
	char *c;

	(void)state;
	lab_write_web(h, "one", NULL);
	c = lab_push(h, "web one");
	assert_int_equal(lab_run(h, "systemctl start tend.service"), 0);
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the first commit did not converge");
	}
	lab_expect_web(h, "one");
	free(c);
}

/* A firewall that rejects what the guest sends to the git server: the web service is fine and
 * its probe passes, but tend would never fetch again; the switch is rolled back. */
static void test_repository_cut_off(void **state)
{
	char *good = lab_status(h, "applied_commit"), *extra = NULL, *bad, *fix;

	(void)state;
	assert_non_null(good);
	assert_true(asprintf(&extra, "  lab_firewall: \"ip daddr 10.0.2.2 tcp dport %d\"\n", git_port) > 0);
	lab_write_web(h, "two", extra);
	free(extra);
	bad = lab_push(h, "web two, behind a firewall that cuts off the git server");
	expect_rolled_back(good, "the repository git://10.0.2.2");

	/* the fix arrives, because the guest can fetch again */
	lab_write_web(h, "three", NULL);
	fix = lab_push(h, "web three, no firewall");
	if (!lab_wait_phase(h, "converged", fix, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the fix did not arrive after the rollback");
	}
	lab_expect_web(h, "three");
	lab_write_web(h, "one", NULL);
	free(fix);
	fix = lab_push(h, "web one again");
	assert_true(lab_wait_phase(h, "converged", fix, 300));
	free(fix);
	free(bad);
	free(good);
}

/* A firewall that rejects what the guest sends to its own agent port at its fleet address:
 * peer's client depends on this host, so its agent must answer there; rolled back. */
static void test_agent_address_cut_off(void **state)
{
	char *good = lab_status(h, "applied_commit"), *bad;

	(void)state;
	assert_non_null(good);
	lab_write_web(h, "four", "  lab_firewall: \"ip daddr 10.0.2.15 tcp dport 8470\"\n");
	bad = lab_push(h, "web four, behind a firewall that cuts off the agent address");
	expect_rolled_back(good, "agent address http://10.0.2.15:8470");
	free(bad);
	free(good);
}

static void write_fleet(const char *guard_extra)
{
	char *fleet = NULL;

	assert_true(asprintf(&fleet, "fleet: lab\ndomain: lab.test\nhosts:\n"
			     "  guard: {address: 10.0.2.15%s}\n  peer: {address: 10.0.2.16}\n",
			     guard_extra) > 0);
	test_write_file(h->repo, "fleet.yaml", fleet);
	free(fleet);
}

/* A change outside the host's apply_window is planned, not applied (phase waiting, the status
 * saying when the window opens); the commit that opens the window applies it. */
static void test_apply_window(void **state)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	char *good = lab_status(h, "applied_commit"), *waiting, *open_c, *msg, *extra = NULL;
	time_t now = time(NULL);
	struct tm tm;
	int i;

	(void)state;
	assert_non_null(good);
	gmtime_r(&now, &tm);   /* the guest's local time is UTC */
	assert_true(asprintf(&extra, ", apply_window: \"%s 03:00-04:00\"", days[(tm.tm_wday + 3) % 7]) > 0);
	write_fleet(extra);
	free(extra);
	lab_write_web(h, "five", NULL);
	waiting = lab_push(h, "web five, outside the apply window");
	if (!lab_wait_phase(h, "waiting", good, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -30");
		fail_msg("a change outside the apply window did not wait");
	}
	msg = lab_status(h, "last_error");
	assert_non_null(msg);
	if (!strstr(msg, "waiting for window") || !strstr(msg, "opens"))
		fail_msg("last_error while waiting: %s", msg);
	free(msg);
	for (i = 0; i < 5; i++) {
		sleep(1);
		lab_expect_web(h, "one");
	}
	write_fleet("");
	open_c = lab_push(h, "no apply window");
	if (!lab_wait_phase(h, "converged", open_c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -30");
		fail_msg("the change did not apply once the window was gone");
	}
	lab_expect_web(h, "five");
	free(open_c);
	free(waiting);
	free(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_commit),
		cmocka_unit_test(test_repository_cut_off),
		cmocka_unit_test(test_agent_address_cut_off),
		cmocka_unit_test(test_apply_window),
	};
	if (!test_have("qemu-system-x86_64") || !test_have("debootstrap") || !test_have("nix-instantiate")) {
		fprintf(stderr, "SKIP: the host lab needs qemu-system-x86_64, debootstrap and nix\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
