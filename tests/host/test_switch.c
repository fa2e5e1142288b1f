/* The switch on a real systemd (a Debian 12 VM of tests/host/lab, tend as the unit the NixOS
 * module declares): switch-to-configuration runs in its own transient unit, so `systemctl stop
 * tend` and `systemctl kill -s KILL tend` in the middle of a switch do not interrupt it, and the
 * agent that starts again records the commit applied; an operator's switch holding the lock
 * makes tend wait; exit 4 rolls back naming the failed unit; after a power cut mid-switch the
 * switch runs again before probes; a commit changing tend's own unit or binary restarts tend
 * with it; a switch past system.switch_timeout is reported, never stopped.
 * ctest label `host`. */
#include "tests/host/lab.h"

static lab_host *h;

static int group_setup(void **state)
{
	(void)state;
	h = lab_host_up("switch");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	lab_host_down(h);
	return 0;
}

/* The first commit converges; tend runs as the module's unit. */
static void test_first_commit(void **state)
{
	char *c1;

	(void)state;
	lab_write_web(h, "one", NULL);
	c1 = lab_push(h, "web one");
	assert_int_equal(lab_run(h, "systemctl start tend.service"), 0);
	if (!lab_wait_phase(h, "converged", c1, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the first commit did not converge");
	}
	lab_expect_web(h, "one");
	free(c1);
}

/* stop (SIGTERM) or kill (SIGKILL, the whole cgroup) tend while the switch's transient unit
 * sleeps between activation and starting units: the switch still completes, and tend, started
 * again (by systemd: the switch starts multi-user.target, which wants tend; or Restart=always),
 * records the commit applied. A stop of tend during a switch may be reported "canceled": the
 * switch's start of multi-user.target starts tend again, as on NixOS. */
static void interrupt_switch(const char *body, const char *how)
{
	char *c, *out, *before, *after;

	lab_write_web(h, body, "  lab_switch_sleep: 15\n");
	c = lab_push(h, body);
	if (!lab_wait_guest(h, "systemctl is-active -q tend-switch-to-configuration.service", 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("no switch unit started for %s", body);
	}
	before = lab_out(h, "systemctl show -P InvocationID tend.service");
	assert_non_null(before);
	lab_run(h, how);
	/* the switch goes on without tend, and completes */
	out = lab_out(h, "systemctl is-active tend-switch-to-configuration.service || true");
	assert_non_null(out);
	if (strcmp(out, "active") && strcmp(out, "inactive"))
		fail_msg("the switch unit is '%s' right after `%s`", out, how);
	free(out);
	assert_true(lab_wait_guest(h, "! systemctl is-active -q tend-switch-to-configuration.service", 180));
	assert_true(lab_wait_guest(h, "test ! -e /run/nixos/start-list", 10));
	lab_expect_web(h, body);
	/* tend did stop (another invocation runs now, or none yet) */
	assert_int_equal(lab_run(h, "systemctl start tend.service"), 0);
	after = lab_out(h, "systemctl show -P InvocationID tend.service");
	assert_non_null(after);
	if (!strcmp(before, after))
		fail_msg("tend.service was not stopped by `%s` (invocation %s)", how, before);
	if (!lab_wait_phase(h, "converged", c, 180)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -60");
		fail_msg("after `%s` mid-switch, %s was not recorded converged", how, body);
	}
	out = lab_out(h, "tend history --config /etc/tend/agent.yaml --limit 1");
	assert_non_null(out);
	if (!strstr(out, "applied"))
		fail_msg("history after `%s`:\n%s", how, out);
	free(out);
	free(before);
	free(after);
	free(c);
}

static void test_stop_during_switch(void **state)
{
	(void)state;
	interrupt_switch("two", "systemctl stop tend.service");
}

static void test_kill_during_switch(void **state)
{
	(void)state;
	interrupt_switch("three", "systemctl kill -s KILL tend.service");
}

/* An operator's switch holds switch-to-configuration's lock: tend waits (phase waiting), then
 * applies once the lock is free. */
static int operator_done(void **state)
{
	(void)state;
	lab_run(h, "systemctl stop operator-switch.service 2>/dev/null || true");
	return 0;
}

static void test_operator_lock(void **state)
{
	char *c, *phase = NULL;
	int i;

	(void)state;
	assert_int_equal(lab_run(h, "mkdir -p /run/nixos && systemd-run -q --unit=operator-switch "
				    "flock -x /run/nixos/switch-to-configuration.lock sleep 600"), 0);
	assert_true(lab_wait_guest(h, "systemctl is-active -q operator-switch.service", 30));
	lab_write_web(h, "four", NULL);
	c = lab_push(h, "web four while an operator switches");
	for (i = 0; i < 120; i++) {
		free(phase);
		phase = lab_status(h, "phase");
		if (phase && !strcmp(phase, "waiting"))
			break;
		sleep(1);
	}
	assert_non_null(phase);
	assert_string_equal(phase, "waiting");
	free(phase);
	lab_expect_web(h, "three");
	assert_int_equal(lab_run(h, "systemctl stop operator-switch.service"), 0);
	assert_true(lab_wait_phase(h, "converged", c, 180));
	lab_expect_web(h, "four");
	free(c);
}

/* A unit that fails to start: switch-to-configuration exits 4, tend rolls back and names it. */
static void test_failed_unit_rolls_back(void **state)
{
	char *c, *err = NULL, *phase = NULL;
	int i;

	(void)state;
	lab_write_web(h, "five", NULL);
	test_write_file(h->repo, "services/broken/service.yaml",
			"name: broken\nhost: switch\nsettings:\n  lab_broken: true\n");
	c = lab_push(h, "web five and a broken unit");
	for (i = 0; i < 300; i++) {
		free(phase);
		phase = lab_status(h, "phase");
		if (phase && !strcmp(phase, "rolled-back"))
			break;
		sleep(1);
	}
	assert_non_null(phase);
	assert_string_equal(phase, "rolled-back");
	free(phase);
	err = lab_status(h, "last_error");
	assert_non_null(err);
	if (!strstr(err, "units failed to start: lab-broken.service"))
		fail_msg("last_error: %s", err);
	free(err);
	lab_expect_web(h, "four");
	/* the next commits do without it */
	assert_int_equal(test_sh(NULL, h->repo, "git rm -q -r services/broken"), 0);
	free(c);
}

/* A power cut in the middle of a switch (after activation, before units start): the guest boots
 * the new generation (the profile's default), and tend runs the target's switch-to-configuration
 * again before probing, never adopting it on probes alone. */
static void test_crash_during_switch(void **state)
{
	char *c, *out;

	(void)state;
	lab_write_web(h, "six", "  lab_switch_sleep: 20\n");
	c = lab_push(h, "web six, power cut mid-switch");
	if (!lab_wait_guest(h, "grep -q '^sleeping' /var/lib/tend/switch/output", 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the switch to six never reached its activation");
	}
	assert_int_equal(lab_sh(NULL, 900, "%s crash %s", LAB, h->vm), 0);
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -b -u tend -u nixos-boot --no-pager | tail -60");
		fail_msg("after a power cut mid-switch, six was not recorded converged");
	}
	lab_expect_web(h, "six");
	out = lab_out(h, "tend history --json --config /etc/tend/agent.yaml --limit 1");
	assert_non_null(out);
	if (!strstr(out, "was interrupted: running it again") || !strstr(out, "\"applied\""))
		fail_msg("history after a power cut mid-switch:\n%s", out);
	free(out);
	free(c);
}

/* A commit that changes tend's own unit: the switch does not restart tend (X-RestartIfChanged
 * =false), tend finishes the reconcile, then exits so that systemd starts it with the new unit,
 * and reports the commit applied. */
static void test_own_unit_changed(void **state)
{
	char *c, *out, *pid, *cmd = NULL;

	(void)state;
	assert_int_equal(test_sh(NULL, h->dir, "python3 %s/tests/host/unit-from-module.py "
				 "Environment=TEND_LAB_UNIT=2 < eval.json > %s/lab/tend.service",
				 TEND_SOURCE_DIR, h->repo), 0);
	lab_write_web(h, "seven", NULL);
	c = lab_push(h, "web seven and a new unit for tend");
	if (!lab_wait_guest(h, "systemctl show -P Environment tend.service | grep -q TEND_LAB_UNIT=2", 300) ||
	    !lab_wait_phase(h, "converged", c, 180)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("tend did not restart with its new unit and record seven");
	}
	/* the tend that answers runs from the new unit */
	pid = lab_out(h, "systemctl show -P MainPID tend.service");
	assert_non_null(pid);
	assert_true(asprintf(&cmd, "tr '\\0' '\\n' < /proc/%s/environ | grep -x TEND_LAB_UNIT=2", pid) > 0);
	assert_int_equal(lab_run(h, cmd), 0);
	out = lab_out(h, "journalctl -u tend --no-pager | grep -c \"unit /etc/systemd/system/tend.service changed\" || true");
	assert_non_null(out);
	assert_true(atoi(out) >= 1);
	lab_expect_web(h, "seven");
	free(out);
	free(cmd);
	free(pid);
	free(c);
}

/* switch-to-configuration exits 100 (the new init needs a reboot): nothing rolls back, the new
 * generation is the boot default (phase reboot-required), and after the reboot the host runs it
 * and tend reports it converged. */
static void test_reboot_required(void **state)
{
	char *c, *phase = NULL, *booted;
	int i;

	(void)state;
	lab_write_web(h, "eight", "  lab_init: v2\n");
	c = lab_push(h, "web eight with a new init");
	for (i = 0; i < 300; i++) {
		free(phase);
		phase = lab_status(h, "phase");
		if (phase && !strcmp(phase, "reboot-required"))
			break;
		sleep(1);
	}
	assert_non_null(phase);
	assert_string_equal(phase, "reboot-required");
	free(phase);
	lab_expect_web(h, "seven");   /* the running system is untouched */
	assert_int_equal(lab_run(h, "test \"$(readlink -f /nix/var/nix/profiles/system)\" != "
				    "\"$(readlink -f /run/current-system)\""), 0);
	assert_int_equal(lab_sh(NULL, 900, "%s reboot %s", LAB, h->vm), 0);
	booted = lab_out(h, "test \"$(readlink -f /run/booted-system)\" = "
			    "\"$(readlink -f /nix/var/nix/profiles/system)\" && echo booted-new");
	assert_non_null(booted);
	assert_string_equal(booted, "booted-new");
	free(booted);
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -b -u tend --no-pager | tail -30");
		fail_msg("after the reboot, eight was not reported converged");
	}
	lab_expect_web(h, "eight");
	free(c);
}

/* A commit that gives tend a new binary (on NixOS a new store path of the package, so a new
 * ExecStart in its unit; here /opt/tend-2/bin/tend, a copy of the guest's tend): the switch
 * finishes, tend exits after recording it, and systemd starts the new binary, which reports
 * the commit applied. */
static void test_own_binary_changed(void **state)
{
	char *c, *exe;

	(void)state;
	assert_int_equal(lab_run(h, "mkdir -p /opt/tend-2/bin && cp /usr/local/bin/tend /opt/tend-2/bin/tend"), 0);
	assert_int_equal(test_sh(NULL, h->dir, "python3 %s/tests/host/unit-from-module.py "
				 "Environment=TEND_LAB_UNIT=2 < eval.json | "
				 "sed -e 's|/usr/local/bin/tend|/opt/tend-2/bin/tend|g' > %s/lab/tend.service",
				 TEND_SOURCE_DIR, h->repo), 0);
	assert_int_equal(test_sh(NULL, h->repo, "grep -q '^ExecStart=/opt/tend-2/bin/tend' lab/tend.service"), 0);
	/* the host runs eight's init (test_reboot_required): keep it, or the switch exits 100 */
	lab_write_web(h, "nine", "  lab_init: v2\n");
	c = lab_push(h, "web nine and tend from a new binary");
	if (!lab_wait_guest(h, "test \"$(readlink /proc/$(systemctl show -P MainPID tend.service)/exe)\" = "
			    "/opt/tend-2/bin/tend", 300) ||
	    !lab_wait_phase(h, "converged", c, 180)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("tend did not restart from its new binary and record nine");
	}
	exe = lab_out(h, "readlink /proc/$(systemctl show -P MainPID tend.service)/exe");
	assert_non_null(exe);
	assert_string_equal(exe, "/opt/tend-2/bin/tend");
	lab_expect_web(h, "nine");
	free(exe);
	free(c);
}

/* A switch that runs past system.switch_timeout (8 s in the lab's settings): tend says so
 * (status switch_overdue, the metric, one switch-overdue alert), never stops it, and records
 * the commit applied when it ends. */
static void test_switch_overdue(void **state)
{
	char *c, *v = NULL;
	int i;

	(void)state;
	lab_write_web(h, "ten", "  lab_switch_sleep: 30\n  lab_init: v2\n");
	c = lab_push(h, "web ten, a switch that takes longer than switch_timeout");
	for (i = 0; i < 300; i++) {
		free(v);
		v = lab_status(h, "switch_overdue");
		if (v && !strcmp(v, "true"))
			break;
		sleep(1);
	}
	if (!v || strcmp(v, "true")) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("switch_overdue never became true (last: %s)", v ? v : "absent");
	}
	free(v);
	/* still running: tend did not stop it */
	assert_int_equal(lab_run(h, "systemctl is-active -q tend-switch-to-configuration.service"), 0);
	assert_int_equal(lab_run(h, "grep -q '\"switch-overdue\"' /var/lib/tend/alerts.json"), 0);
	assert_int_equal(lab_sh(NULL, 10, "curl -s --max-time 3 http://127.0.0.1:%d/metrics | "
				"grep -qx 'tend_switch_overdue 1'", h->agent_port), 0);
	assert_int_equal(lab_run(h, "journalctl -u tend --no-pager | grep -q 'past system.switch_timeout'"), 0);
	if (!lab_wait_phase(h, "converged", c, 300)) {
		lab_show(h, "journalctl -u tend --no-pager | tail -40");
		fail_msg("the long switch to ten was not recorded converged");
	}
	v = lab_status(h, "switch_overdue");
	assert_non_null(v);
	assert_string_equal(v, "false");
	free(v);
	lab_expect_web(h, "ten");
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_commit),
		cmocka_unit_test(test_stop_during_switch),
		cmocka_unit_test(test_kill_during_switch),
		cmocka_unit_test_teardown(test_operator_lock, operator_done),
		cmocka_unit_test(test_failed_unit_rolls_back),
		cmocka_unit_test(test_crash_during_switch),
		cmocka_unit_test(test_own_unit_changed),
		cmocka_unit_test(test_reboot_required),
		cmocka_unit_test(test_own_binary_changed),
		cmocka_unit_test(test_switch_overdue),
	};
	if (!test_have("qemu-system-x86_64") || !test_have("debootstrap") || !test_have("nix-instantiate")) {
		fprintf(stderr, "SKIP: the host lab needs qemu-system-x86_64, debootstrap and nix\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
