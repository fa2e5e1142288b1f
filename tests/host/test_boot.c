/* Reboots on a real systemd (a Debian 12 VM of tests/host/lab, tend as the module's unit): a
 * commit that changes the kernel is applied live and reported as needing a reboot (status,
 * metric, fleet table, one alert) until the host boots it; an operator who boots an older
 * generation from the boot menu is not switched forward again (phase held, one alert) until
 * `tend resume`; after a reboot with the repository unreachable, services start with their
 * secrets; a host with `operation: boot` gets the new system as the boot default and tend
 * reboots it in its reboot_window, then the probes decide: a failing boot goes back to the
 * previous system. ctest label `host`. */
#include "tests/host/lab.h"

static lab_host *h;

static int group_setup(void **state)
{
	(void)state;
	h = lab_host_up("boot");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	lab_host_down(h);
	return 0;
}

static void expect_status(const char *field, const char *want)
{
	char *v = lab_status(h, field);

	if (!v || strcmp(v, want))
		fail_msg("/v1/status %s is %s, not %s", field, v ? v : "absent", want);
	free(v);
}

static void wait_status(const char *field, const char *want, int timeout_s)
{
	char *v = NULL;
	int i;

	for (i = 0; i < timeout_s; i++) {
		free(v);
		v = lab_status(h, field);
		if (v && !strcmp(v, want))
			break;
		sleep(1);
	}
	if (!v || strcmp(v, want))
		fail_msg("/v1/status %s stayed %s, not %s", field, v ? v : "absent", want);
	free(v);
}

/* The generation the system profile's default is (N of system-N-link). */
static long profile_generation(void)
{
	char *s = lab_out(h, "readlink /nix/var/nix/profiles/system | sed -e 's/^system-//' -e 's/-link$//'");
	long n;

	assert_non_null(s);
	n = atol(s);
	free(s);
	assert_true(n > 0);
	return n;
}

/* The first commit: web, and a vault service that reads its secret when it starts. Then the
 * host's first boot of a tend-applied system, with the git server gone: /run is empty, tend
 * cannot fetch, and the vault still starts with its secret, because tend-secrets (the
 * module's oneshot, before sysinit.target) put it back from local state first. The boot also
 * sets /run/booted-system, as a NixOS host's would. */
static void test_first_boot_secrets(void **state)
{
	char *c, *out;

	(void)state;
	assert_int_equal(test_sh(NULL, h->repo, "mkdir -p secrets && printf 's3cret-at-boot' | "
				 "age -r %s -o secrets/vault-token.age", h->age_recipient), 0);
	assert_true(asprintf(&out,
		"name: vault\n"
		"host: %s\n"
		"secrets:\n"
		"  - {name: token, file: secrets/vault-token.age}\n"
		"health:\n"
		"  startup:\n"
		"    - http: {url: 'http://127.0.0.1:8082/', status: 200}\n"
		"      interval: 500ms\n"
		"      timeout: 2s\n"
		"      retries: 60\n"
		"settings:\n"
		"  lab_port: 8082\n"
		"  lab_body_file: /run/tend/secrets/vault/token\n", h->vm) > 0);
	test_write_file(h->repo, "services/vault/service.yaml", out);
	free(out);
	lab_write_web(h, "one", NULL);
	c = lab_push(h, "web one, and a vault with a secret");
	assert_int_equal(lab_run(h, "systemctl start tend.service"), 0);
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the first commit did not converge");
	}
	lab_expect_web(h, "one");
	out = lab_http(h, 8082);
	assert_string_equal(out, "s3cret-at-boot");
	free(out);

	/* the git server goes away, then the host reboots */
	assert_int_equal(lab_run(h, "mv /srv/fleet.git /srv/fleet.git.away"), 0);
	assert_int_equal(lab_sh(NULL, 900, "%s reboot %s", LAB, h->vm), 0);
	assert_true(lab_wait_guest(h, "systemctl is-active -q lab-vault.service", 120));
	out = lab_http(h, 8082);
	if (strcmp(out, "s3cret-at-boot")) {
		lab_show(h, "journalctl -b -u tend-secrets -u lab-vault -u tend --no-pager | tail -40");
		fail_msg("after a reboot without the git server the vault answers '%s'", out);
	}
	free(out);
	out = lab_out(h, "journalctl -b -u tend-secrets --no-pager -o cat | grep ' installed$' | tail -1");
	assert_non_null(out);
	if (!strstr(out, "1 secret, 1 installed"))
		fail_msg("tend-secrets at boot said: %s", out);
	free(out);
	assert_int_equal(lab_run(h, "test \"$(systemctl show -P ActiveEnterTimestampMonotonic tend-secrets)\" "
				    "-le \"$(systemctl show -P ExecMainStartTimestampMonotonic lab-vault)\""), 0);
	/* the agent cannot fetch, and says so */
	assert_true(lab_wait_guest(h, "journalctl -b -u tend --no-pager | grep -q 'fetch failed'", 120));
	assert_int_equal(lab_run(h, "mv /srv/fleet.git.away /srv/fleet.git"), 0);

	assert_true(lab_wait_phase(h, "converged", c, 300));
	assert_int_equal(lab_run(h, "test \"$(readlink -f /run/booted-system)\" = "
				    "\"$(readlink -f /run/current-system)\""), 0);
	expect_status("reboot_required", "false");
	lab_expect_web(h, "one");
	free(c);
}

/* A new kernel is switched to live (converged), and the host says it needs a reboot: status,
 * metric, the fleet table's REBOOT column, one reboot-required alert. After the reboot it runs
 * the kernel it booted: no reboot needed, and the alert is resolved. */
static void test_kernel_change_needs_reboot(void **state)
{
	char *c, *out;

	(void)state;
	lab_write_web(h, "two", "  lab_kernel: \"2\"\n");
	c = lab_push(h, "web two with a new kernel");
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the kernel change did not converge");
	}
	lab_expect_web(h, "two");
	expect_status("reboot_required", "true");
	assert_int_equal(lab_sh(NULL, 10, "curl -s --max-time 3 http://127.0.0.1:%d/metrics | "
				"grep -qx 'tend_reboot_required 1'", h->agent_port), 0);
	assert_true(lab_wait_guest(h, "grep -q '\"reboot-required\"' /var/lib/tend/alerts.json", 30));
	out = lab_out(h, "tend status --config /etc/tend/agent.yaml --fleet | awk '$1 == \"boot\" {print $7}'");
	assert_non_null(out);
	assert_string_equal(out, "yes");
	free(out);

	assert_int_equal(lab_sh(NULL, 900, "%s reboot %s", LAB, h->vm), 0);
	assert_true(lab_wait_phase(h, "converged", c, 300));
	wait_status("reboot_required", "false", 120);
	assert_int_equal(lab_run(h, "test \"$(readlink -f /run/booted-system)\" = "
				    "\"$(readlink -f /run/current-system)\""), 0);
	lab_expect_web(h, "two");
	free(c);
}

/* The operator boots the generation before the current one from the boot menu: tend holds
 * (phase held, the older system keeps running, one held alert), also across polls; `tend
 * resume` switches the host forward again. */
static void test_older_generation_booted_is_held(void **state)
{
	char *c, *cmd = NULL, *msg;
	long gen;
	int i;

	(void)state;
	lab_write_web(h, "three", NULL);
	c = lab_push(h, "web three");
	assert_true(lab_wait_phase(h, "converged", c, 300));
	lab_expect_web(h, "three");
	gen = profile_generation();

	/* the boot menu: generation gen-1 once */
	assert_true(asprintf(&cmd, "echo %ld > /nix/var/nix/profiles/boot-once && sync", gen - 1) > 0);
	assert_int_equal(lab_run(h, cmd), 0);
	free(cmd);
	assert_int_equal(lab_sh(NULL, 900, "%s reboot %s", LAB, h->vm), 0);
	assert_true(lab_wait_phase(h, "held", c, 300));
	lab_expect_web(h, "two");
	msg = lab_status(h, "last_error");
	assert_non_null(msg);
	if (!strstr(msg, "tend resume"))
		fail_msg("last_error of a held host: %s", msg);
	free(msg);
	assert_true(lab_wait_guest(h, "grep -q '\"held\"' /var/lib/tend/alerts.json", 30));
	/* polls go on; nothing switches */
	for (i = 0; i < 10; i++) {
		sleep(1);
		expect_status("phase", "held");
	}
	assert_int_equal(lab_run(h, "test \"$(readlink -f /run/current-system)\" != "
				    "\"$(readlink -f /nix/var/nix/profiles/system)\""), 0);
	lab_expect_web(h, "two");

	/* the operator is done: resume */
	assert_int_equal(lab_run(h, "tend resume --config /etc/tend/agent.yaml"), 0);
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -b -u tend --no-pager | tail -40");
		fail_msg("tend resume did not switch the host forward again");
	}
	assert_int_equal(lab_run(h, "test \"$(readlink -f /run/current-system)\" = "
				    "\"$(readlink -f /nix/var/nix/profiles/system)\""), 0);
	lab_expect_web(h, "three");
	free(c);
}

static char *boot_id(void)
{
	char *id = lab_out(h, "cat /proc/sys/kernel/random/boot_id");

	assert_non_null(id);
	return id;
}

/* Waits for the guest to run another boot than old (tend rebooted it) and finish booting. */
static void wait_rebooted(const char *old)
{
	char *cmd = NULL;

	assert_true(asprintf(&cmd, "test \"$(cat /proc/sys/kernel/random/boot_id)\" != %s && "
			     "{ systemctl is-active -q nixos-boot.service || "
			     "systemctl is-failed -q nixos-boot.service; }", old) > 0);
	if (!lab_wait_guest(h, cmd, 900)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("tend did not reboot the host");
	}
	free(cmd);
}

static void write_fleet(const char *host_extra)
{
	char *fleet = NULL;

	assert_true(asprintf(&fleet, "fleet: lab\ndomain: lab.test\nhosts:\n  %s: {address: 127.0.0.1%s}\n",
			     h->vm, host_extra) > 0);
	test_write_file(h->repo, "fleet.yaml", fleet);
	free(fleet);
}

/* operation: boot with a reboot_window that is closed: the new system is the boot default,
 * the old one runs on, and the host waits for the window (phase reboot-required, no reboot).
 * A commit that opens the window: tend reboots the host, the probes after the reboot pass. */
static void test_boot_operation_in_reboot_window(void **state)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	char *c, *open_c, *id, *msg, *extra = NULL, *out;
	time_t now = time(NULL);
	struct tm tm;
	int i;

	(void)state;
	gmtime_r(&now, &tm);   /* the guest's local time is UTC */
	assert_true(asprintf(&extra, ", operation: boot, reboot_window: \"%s 03:00-04:00\"",
			     days[(tm.tm_wday + 3) % 7]) > 0);
	write_fleet(extra);
	free(extra);
	lab_write_web(h, "four", NULL);
	id = boot_id();
	c = lab_push(h, "web four, as the boot default; reboots in a closed window");
	if (!lab_wait_phase(h, "reboot-required", c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("operation: boot did not leave the host waiting for its reboot");
	}
	msg = lab_status(h, "last_message");
	assert_non_null(msg);
	if (!strstr(msg, "operation: boot") || !strstr(msg, "reboot_window") || !strstr(msg, "opens"))
		fail_msg("last_message while the reboot waits: %s", msg);
	free(msg);
	lab_expect_web(h, "three");
	assert_int_equal(lab_run(h, "test \"$(readlink -f /nix/var/nix/profiles/system)\" != "
				    "\"$(readlink -f /run/current-system)\""), 0);
	for (i = 0; i < 10; i++) {
		sleep(1);
		expect_status("phase", "reboot-required");
	}
	out = boot_id();
	assert_string_equal(out, id);
	free(out);

	/* the window opens (all day): tend reboots, and the probes after it pass */
	write_fleet(", operation: boot, reboot_window: \"00:00-23:59\"");
	open_c = lab_push(h, "the reboot window is open");
	wait_rebooted(id);
	if (!lab_wait_phase(h, "converged", open_c, 300)) {
		lab_show(h, "journalctl -b -1 -u tend --no-pager | tail -20; journalctl -b -u tend --no-pager | tail -30");
		fail_msg("after tend's reboot the host did not converge");
	}
	lab_expect_web(h, "four");
	expect_status("reboot_required", "false");
	assert_int_equal(lab_run(h, "tend history --config /etc/tend/agent.yaml | grep -q 'reboot' && "
				    "tend history --config /etc/tend/agent.yaml | grep -q 'booted into'"), 0);
	free(id);
	free(open_c);
	free(c);
}

/* The number of reboots tend recorded in its history. */
static long reboots_recorded(void)
{
	char *s = lab_out(h, "python3 -c \"import json; d=json.load(open('/var/lib/tend/state.json')); "
			  "print(len([x for x in d['history'] if x['outcome'] == 'reboot']))\"");
	long n;

	assert_non_null(s);
	n = atol(s);
	free(s);
	return n;
}

/* A boot whose probes fail: the previous system is the boot default again and tend reboots
 * into it; the commit is not retried (the head is reported failed, the host runs the previous
 * commit). */
static void test_failed_boot_goes_back(void **state)
{
	char *good = lab_status(h, "applied_commit"), *bad, *cmd = NULL;
	long n;

	(void)state;
	assert_non_null(good);
	n = reboots_recorded();
	lab_write_web(h, "five", "  lab_status: 500\n");
	bad = lab_push(h, "web five, which answers 500");
	/* two reboots (into the bad system, and back), and no reboot pending any more */
	assert_true(asprintf(&cmd, "python3 -c \"import json, sys; d=json.load(open('/var/lib/tend/state.json')); "
			     "r=[x for x in d['history'] if x['outcome'] == 'reboot']; "
			     "sys.exit(0 if len(r) >= %ld and 'reboot_pending_boot' not in d else 1)\" && "
			     "{ systemctl is-active -q nixos-boot.service || systemctl is-failed -q nixos-boot.service; }",
			     n + 2) > 0);
	if (!lab_wait_guest(h, cmd, 1200)) {
		lab_show(h, "journalctl -b -1 -u tend --no-pager | tail -30; journalctl -b -u tend --no-pager | tail -30");
		fail_msg("tend did not reboot into the failing system and back");
	}
	free(cmd);
	if (!lab_wait_phase(h, "failed", good, 300)) {
		lab_show(h, "journalctl -b -u tend --no-pager | tail -30");
		fail_msg("after a failed boot the host is not back on the previous commit");
	}
	lab_expect_web(h, "four");
	assert_int_equal(lab_run(h, "test \"$(readlink -f /run/booted-system)\" = "
				    "\"$(readlink -f /run/current-system)\""), 0);
	assert_int_equal(lab_run(h, "tend history --config /etc/tend/agent.yaml | grep 'rolled-back' | "
				    "grep -q 'after the reboot into'"), 0);
	free(bad);
	free(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_boot_secrets),
		cmocka_unit_test(test_kernel_change_needs_reboot),
		cmocka_unit_test(test_older_generation_booted_is_held),
		cmocka_unit_test(test_boot_operation_in_reboot_window),
		cmocka_unit_test(test_failed_boot_goes_back),
	};
	if (!test_have("qemu-system-x86_64") || !test_have("debootstrap") || !test_have("nix-instantiate")) {
		fprintf(stderr, "SKIP: the host lab needs qemu-system-x86_64, debootstrap and nix\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
