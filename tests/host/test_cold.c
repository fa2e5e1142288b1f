/* A cold start of a fleet whose git server is one of its hosts, on real systemd (three Debian 12
 * VMs of tests/host/lab, tend as the module's unit in each): cold-a serves the repository over
 * ssh, cold-b and cold-c fetch from it. The power goes off everywhere; b and c come back first,
 * with the git server still down, and their services start with their secrets (tend-secrets,
 * from local state); once a is back, a commit pushed to it reaches all three. ctest label `host`. */
#include "tests/host/lab.h"

#define N 3
static lab_host *hosts[N];
static const char *const names[N] = { "cold-a", "cold-b", "cold-c" };

static int group_setup(void **state)
{
	tend_buf out = TEND_BUF_INIT;
	char *url = NULL, *fleet = NULL, *cmd = NULL, *kh = NULL;
	lab_opts o = { NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	int i, a_ssh;

	(void)state;
	assert_true(asprintf(&fleet, "fleet: lab\ndomain: lab.test\nhosts:\n"
			     "  cold-a: {address: 10.0.2.15}\n  cold-b: {address: 10.0.2.16}\n"
			     "  cold-c: {address: 10.0.2.17}\n") > 0);
	o.fleet = fleet;
	/* retries after failed fetches (the git server down) stay short */
	o.settings = "\"poll\": {\"backoff_max\": \"10s\"}";
	hosts[0] = lab_host_up_with(names[0], &o);
	/* b and c fetch from a's sshd, which the host forwards to its loopback (10.0.2.2 in the
	 * guests), with the lab's key (root's on every guest) and a's host key */
	assert_int_equal(lab_sh(&out, 10, "%s port cold-a 22", LAB), 0);
	a_ssh = atoi(out.ptr);
	tend_buf_clear(&out);
	assert_true(asprintf(&url, "ssh://root@10.0.2.2:%d/srv/fleet.git", a_ssh) > 0);
	/* every host key of a (libssh2 picks the type), as [10.0.2.2]:port entries */
	assert_true(asprintf(&cmd, "cat /etc/ssh/ssh_host_*_key.pub | cut -d' ' -f1,2 | "
			     "sed 's/^/[10.0.2.2]:%d /' > /etc/tend/known_hosts", a_ssh) > 0);
	assert_int_equal(lab_run(hosts[0], cmd), 0);
	free(cmd);
	assert_true(asprintf(&kh, "%s/known_hosts", hosts[0]->dir) > 0);
	assert_int_equal(lab_sh(NULL, 60, "%s copy cold-a :/etc/tend/known_hosts %s", LAB, kh), 0);
	o.url = url;
	o.repository = "\"sshKeyFile\": \"/etc/tend/git_key\", \"knownHosts\": \"/etc/tend/known_hosts\"";
	for (i = 1; i < N; i++) {
		hosts[i] = lab_host_up_with(names[i], &o);
		assert_int_equal(lab_sh(NULL, 60, "%s copy %s %s /etc/tend/known_hosts", LAB, names[i], kh), 0);
		assert_int_equal(lab_sh(NULL, 60, "%s copy %s /tmp/tend-lab/cold-a/id_ed25519 /etc/tend/git_key",
					LAB, names[i]), 0);
		assert_int_equal(lab_run(hosts[i], "chmod 0600 /etc/tend/git_key"), 0);
	}
	tend_buf_dispose(&out);
	free(kh);
	free(url);
	free(fleet);
	return 0;
}

static int group_teardown(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < N; i++)
		lab_host_down(hosts[i]);
	return 0;
}

/* The fleet's services, in a's repository: on each host a vault with a secret of its own
 * (encrypted to that host), and a web service answering body. */
static void write_services(const char *body)
{
	lab_host *a = hosts[0];
	char *text = NULL;
	int i;

	for (i = 0; i < N; i++) {
		assert_int_equal(test_sh(NULL, a->repo, "mkdir -p secrets && printf 'secret-of-%s' | "
					 "age -r %s -o secrets/vault-%s.age", names[i],
					 hosts[i]->age_recipient, names[i]), 0);
		assert_true(asprintf(&text,
			"name: vault-%s\nhost: %s\n"
			"secrets:\n  - {name: token, file: secrets/vault-%s.age}\n"
			"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:8082/', status: 200}\n"
			"      interval: 500ms\n      timeout: 2s\n      retries: 120\n"
			"settings:\n  lab_port: 8082\n  lab_body_file: /run/tend/secrets/vault-%s/token\n",
			names[i], names[i], names[i], names[i]) > 0);
		{
			char *path = NULL;

			assert_true(asprintf(&path, "services/vault-%s/service.yaml", names[i]) > 0);
			test_write_file(a->repo, path, text);
			free(path);
		}
		free(text);
		assert_true(asprintf(&text,
			"name: web-%s\nhost: %s\n"
			"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:8081/', status: 200}\n"
			"      interval: 500ms\n      timeout: 2s\n      retries: 120\n"
			"settings:\n  lab_port: 8081\n  lab_body: %s\n", names[i], names[i], body) > 0);
		{
			char *path = NULL;

			assert_true(asprintf(&path, "services/web-%s/service.yaml", names[i]) > 0);
			test_write_file(a->repo, path, text);
			free(path);
		}
		free(text);
	}
}

static void wait_converged(const char *commit)
{
	int i;

	for (i = 0; i < N; i++) {
		if (!lab_wait_phase(hosts[i], "converged", commit, 900)) {
			lab_show(hosts[i], "journalctl -b -u tend --no-pager | tail -40");
			fail_msg("%s did not converge on %.12s", names[i], commit);
		}
	}
}

static void expect_secrets(int from)
{
	char *want = NULL, *got;
	int i;

	for (i = from; i < N; i++) {
		got = lab_http(hosts[i], 8082);
		assert_true(asprintf(&want, "secret-of-%s", names[i]) > 0);
		if (strcmp(got, want)) {
			lab_show(hosts[i], "journalctl -b -u tend-secrets -u lab-vault-* --no-pager | tail -30");
			fail_msg("%s's vault answers '%s', not '%s'", names[i], got, want);
		}
		free(want);
		free(got);
	}
}

static void test_cold_start(void **state)
{
	char *c1, *c2, *got;
	int i;

	(void)state;
	write_services("one");
	c1 = lab_push(hosts[0], "three hosts, a vault with a secret and a web service each");
	for (i = 0; i < N; i++)
		assert_int_equal(lab_run(hosts[i], "systemctl start tend.service"), 0);
	wait_converged(c1);
	expect_secrets(0);

	/* the power goes off everywhere; b and c come back while the git server stays down */
	for (i = 0; i < N; i++)
		assert_int_equal(lab_sh(NULL, 60, "%s stop %s", LAB, names[i]), 0);
	for (i = 1; i < N; i++)
		assert_int_equal(lab_sh(NULL, 60, "%s start %s --no-wait", LAB, names[i]), 0);
	for (i = 1; i < N; i++)
		assert_int_equal(lab_sh(NULL, 900, "%s wait %s", LAB, names[i]), 0);
	for (i = 1; i < N; i++)
		assert_true(lab_wait_guest(hosts[i], "systemctl is-active -q lab-vault-*.service", 300));
	expect_secrets(1);
	for (i = 1; i < N; i++)
		if (!lab_wait_guest(hosts[i], "journalctl -b -u tend --no-pager | grep -q 'fetch failed'", 300)) {
			lab_show(hosts[i], "journalctl -b -u tend --no-pager | tail -20");
			fail_msg("%s did not report the git server unreachable", names[i]);
		}

	/* the git server comes back: its own secrets too, and a new commit reaches everyone */
	assert_int_equal(lab_sh(NULL, 900, "%s start cold-a", LAB), 0);
	assert_true(lab_wait_guest(hosts[0], "systemctl is-active -q lab-vault-cold-a.service", 300));
	expect_secrets(0);
	write_services("two");
	c2 = lab_push(hosts[0], "web two everywhere");
	wait_converged(c2);
	for (i = 0; i < N; i++) {
		got = lab_http(hosts[i], 8081);
		if (strcmp(got, "two"))
			fail_msg("%s's web answers '%s' after the cold start", names[i], got);
		free(got);
	}
	free(c1);
	free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cold_start),
	};
	if (!test_have("qemu-system-x86_64") || !test_have("debootstrap") || !test_have("nix-instantiate")) {
		fprintf(stderr, "SKIP: the host lab needs qemu-system-x86_64, debootstrap and nix\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
