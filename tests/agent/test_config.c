/* The agent configuration: every documented key read, defaults, relative paths,
 * and bad files refused with file:line:col (unknown keys with a suggestion). */
#include "tests/support/support.h"
#include "agent/config.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *write_config(char *dir, const char *text)
{
	char *path = NULL;

	test_write_file(dir, "agent.yaml", text);
	assert_true(asprintf(&path, "%s/agent.yaml", dir) > 0);
	return path;
}

static void test_full(void **state)
{
	char *dir = test_tmpdir_make("config"), *path, *expect = NULL;
	tend_config *c;

	path = write_config(dir,
		"host: db1\n"
		"repository:\n"
		"  url: ssh://git@127.0.0.1:2222/fleet.git\n"
		"  branch: prod\n"
		"  ssh_key_file: keys/id_ed25519\n"
		"  ssh_passphrase_file: /etc/tend/pass\n"
		"  known_hosts: /etc/tend/known_hosts\n"
		"  token_file: /etc/tend/token\n"
		"  basic_auth_file: /etc/tend/basic\n"
		"  allowed_signers: /etc/tend/allowed_signers\n"
		"state_dir: /var/lib/tend\n"
		"age_identities: [/etc/tend/age.key, keys/host.key]\n"
		"secrets_root: /run/s\n"
		"secrets_storage: disk\n"
		"root: /srv/root\n"
		"nix:\n"
		"  command: /usr/bin/nix\n"
		"  extra_options: [--option, substituters, '']\n"
		"  build_timeout: 1m30s\n"
		"system:\n"
		"  profile: /p/system\n"
		"  current_system: /p/current\n"
		"  switch_timeout: 2m\n"
		"  unit_file: units/tend.service\n"
		"poll: {interval: 15s, jitter: 500ms, backoff_initial: 250ms, backoff_max: 1m, drift_interval: 0}\n"
		"dependencies: {deadline: 90s, recheck: 750ms}\n"
		"listen: {address: '::1', port: 9000}\n"
		"webhook_secret_file: /etc/tend/webhook\n"
		"alerts:\n"
		"  email:\n"
		"    to: [ops@example.net, b@example.net]\n"
		"    from: tend@example.net\n"
		"    smtp_url: smtp://127.0.0.1:2525\n"
		"    username: tend\n"
		"    password_file: /etc/tend/smtp\n"
		"    starttls: false\n"
		"  fetch_failing_after: 3m\n"
		"probes: {deadline: 3m, output_limit: 1024, body_limit: 2048, liveness_interval: 0}\n"
		"history_limit: 7\n");
	assert_int_equal(tend_config_load(&c, path), 0);
	assert_string_equal(c->host, "db1");
	assert_string_equal(c->repository.url, "ssh://git@127.0.0.1:2222/fleet.git");
	assert_string_equal(c->repository.branch, "prod");
	/* relative paths are taken from the configuration file's directory */
	assert_true(asprintf(&expect, "%s/keys/id_ed25519", dir) > 0);
	assert_string_equal(c->repository.ssh_key_file, expect);
	free(expect);
	assert_string_equal(c->repository.ssh_passphrase_file, "/etc/tend/pass");
	assert_string_equal(c->repository.known_hosts, "/etc/tend/known_hosts");
	assert_string_equal(c->repository.token_file, "/etc/tend/token");
	assert_string_equal(c->repository.basic_auth_file, "/etc/tend/basic");
	assert_string_equal(c->repository.allowed_signers, "/etc/tend/allowed_signers");
	assert_string_equal(c->state_dir, "/var/lib/tend");
	assert_int_equal(c->n_age_identities, 2);
	assert_string_equal(c->age_identities[0], "/etc/tend/age.key");
	assert_true(asprintf(&expect, "%s/keys/host.key", dir) > 0);
	assert_string_equal(c->age_identities[1], expect);
	free(expect);
	assert_string_equal(c->secrets_root, "/run/s");
	assert_int_equal(c->secrets_storage, TEND_SECRETS_DISK);
	assert_string_equal(c->root, "/srv/root");
	assert_string_equal(c->nix.command, "/usr/bin/nix");
	assert_int_equal(c->nix.n_extra_options, 3);
	assert_string_equal(c->nix.extra_options[2], "");
	assert_int_equal(c->nix.build_timeout_ms, 90000);
	assert_string_equal(c->system.profile, "/p/system");
	assert_string_equal(c->system.current_system, "/p/current");
	assert_int_equal(c->system.switch_timeout_ms, 120000);
	assert_int_equal(c->poll.interval_ms, 15000);
	assert_int_equal(c->poll.jitter_ms, 500);
	assert_int_equal(c->poll.backoff_initial_ms, 250);
	assert_int_equal(c->poll.backoff_max_ms, 60000);
	assert_int_equal(c->poll.drift_interval_ms, 0);   /* every poll a full reconcile */
	assert_int_equal(c->dependencies.deadline_ms, 90000);
	assert_int_equal(c->dependencies.recheck_ms, 750);
	assert_int_equal(c->alerts.fetch_failing_after_ms, 180000);
	assert_true(asprintf(&expect, "%s/units/tend.service", dir) > 0);
	assert_string_equal(c->system.unit_file, expect);
	free(expect);
	assert_string_equal(c->listen.address, "::1");
	assert_int_equal(c->listen.port, 9000);
	assert_string_equal(c->webhook_secret_file, "/etc/tend/webhook");
	assert_true(c->alerts.email.configured);
	assert_int_equal(c->alerts.email.n_to, 2);
	assert_string_equal(c->alerts.email.to[1], "b@example.net");
	assert_string_equal(c->alerts.email.from, "tend@example.net");
	assert_string_equal(c->alerts.email.smtp_url, "smtp://127.0.0.1:2525");
	assert_string_equal(c->alerts.email.username, "tend");
	assert_string_equal(c->alerts.email.password_file, "/etc/tend/smtp");
	assert_int_equal(c->alerts.email.starttls, 0);
	assert_int_equal(c->probes.deadline_ms, 180000);
	assert_int_equal(c->probes.output_limit, 1024);
	assert_int_equal(c->probes.body_limit, 2048);
	assert_int_equal(c->probes.liveness_interval_ms, 0);   /* no liveness runs */
	assert_int_equal(c->history_limit, 7);
	tend_config_free(c);
	free(path);
	test_tmpdir_remove(dir);
}

static void test_defaults(void **state)
{
	char *dir = test_tmpdir_make("config"), *path, *expect = NULL;
	tend_config *c;

	path = write_config(dir, "host: apps1\nrepository: {url: fleet}\nstate_dir: state\n");
	assert_int_equal(tend_config_load(&c, path), 0);
	assert_true(asprintf(&expect, "%s/fleet", dir) > 0);
	assert_string_equal(c->repository.url, expect);
	free(expect);
	assert_string_equal(c->repository.branch, "main");
	assert_null(c->repository.allowed_signers);
	assert_string_equal(c->secrets_root, "/run/tend/secrets");
	assert_int_equal(c->secrets_storage, TEND_SECRETS_RAM);
	assert_string_equal(c->root, "/");
	assert_string_equal(c->nix.command, "nix");
	assert_int_equal(c->nix.n_extra_options, 0);
	assert_int_equal(c->nix.build_timeout_ms, 30 * 60000);
	assert_string_equal(c->system.profile, "/nix/var/nix/profiles/system");
	assert_string_equal(c->system.current_system, "/run/current-system");
	assert_int_equal(c->system.switch_timeout_ms, 10 * 60000);
	assert_int_equal(c->poll.interval_ms, 60000);
	assert_int_equal(c->poll.backoff_initial_ms, 5000);
	assert_int_equal(c->poll.backoff_max_ms, 0);   /* 5m, or the interval when longer */
	assert_int_equal(c->poll.drift_interval_ms, 600000);
	assert_int_equal(c->dependencies.deadline_ms, 30 * 60000);
	assert_int_equal(c->dependencies.recheck_ms, 2000);
	assert_int_equal(c->alerts.fetch_failing_after_ms, 15 * 60000);
	assert_string_equal(c->system.unit_file, "/etc/systemd/system/tend.service");
	assert_string_equal(c->listen.address, "127.0.0.1");
	assert_int_equal(c->listen.port, 8470);
	assert_false(c->alerts.email.configured);
	assert_int_equal(c->probes.liveness_interval_ms, 60000);
	assert_int_equal(c->history_limit, 100);
	tend_config_free(c);
	free(path);
	test_tmpdir_remove(dir);
}

/* Load text and expect failure with exactly this message (after "path:"). */
static void expect_error(const char *text, int code, const char *message)
{
	char *dir = test_tmpdir_make("config"), *path, *expect = NULL;
	tend_config *c = (tend_config *)1;

	path = write_config(dir, text);
	assert_int_equal(tend_config_load(&c, path), code);
	assert_null(c);
	assert_true(asprintf(&expect, "%s:%s", path, message) > 0);
	assert_string_equal(tend_error_last(), expect);
	free(expect);
	free(path);
	test_tmpdir_remove(dir);
}

static void test_unknown_keys(void **state)
{
	expect_error("host: a\nrepository: {url: x}\nstatedir: /s\n", TEND_EINVALID,
		     "3:1: unknown key 'statedir' in the configuration (did you mean 'state_dir'?)");
	expect_error("host: a\nrepository:\n  url: x\n  brnch: main\nstate_dir: /s\n", TEND_EINVALID,
		     "4:3: unknown key 'brnch' in repository (did you mean 'branch'?)");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nsystem:\n  frobnicate: 1\n",
		     TEND_EINVALID, "5:3: unknown key 'frobnicate' in system");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\n"
		     "alerts: {email: {to: a@b, from: c@d, smtp_url: smtp://x, pasword_file: /p}}\n",
		     TEND_EINVALID,
		     "4:58: unknown key 'pasword_file' in alerts.email (did you mean 'password_file'?)");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\ndependencies: {dedline: 1m}\n",
		     TEND_EINVALID,
		     "4:16: unknown key 'dedline' in dependencies (did you mean 'deadline'?)");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nalerts: {fetch_failing_aftr: 1m}\n",
		     TEND_EINVALID,
		     "4:10: unknown key 'fetch_failing_aftr' in alerts (did you mean 'fetch_failing_after'?)");
}

static void test_bad_values(void **state)
{
	expect_error("repository: {url: x}\nstate_dir: /s\n", TEND_EINVALID,
		     "1:1: missing required field 'host'");
	expect_error("host: a\nstate_dir: /s\n", TEND_EINVALID,
		     "1:1: missing required field 'repository'");
	expect_error("host: a\nrepository: {url: x}\n", TEND_EINVALID,
		     "1:1: missing required field 'state_dir'");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nnix: {build_timeout: soon}\n",
		     TEND_EINVALID,
		     "4:22: 'build_timeout': bad duration 'soon' (expected e.g. 500ms, 30s, 5m, 1h30m)");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nlisten: {port: 70000}\n",
		     TEND_EINVALID, "4:16: 'port': expected an integer from 0 to 65535, got '70000'");
	expect_error("host: a\nrepository: [x]\nstate_dir: /s\n", TEND_EINVALID,
		     "2:13: 'repository': expected a mapping, got a sequence");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\n"
		     "alerts: {email: {to: a@b, from: c@d, smtp_url: http://x}}\n",
		     TEND_EINVALID, "4:48: 'smtp_url' must start with smtp:// or smtps://");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nlisten: {port: '80'}\n",
		     TEND_EINVALID, "4:16: 'port': expected an integer from 0 to 65535, got '80'");
	expect_error("- a\n", TEND_EINVALID, "1:1: expected a mapping, got a sequence");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\npoll: {backoff_initial: 0s}\n",
		     TEND_EINVALID, "4:25: 'backoff_initial' must be more than 0");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\n"
		     "poll: {backoff_initial: 10s, backoff_max: 5s}\n",
		     TEND_EINVALID, "4:43: 'backoff_max' must not be less than 'backoff_initial'");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\npoll: {drift_interval: 00}\n",
		     TEND_EINVALID, "4:24: 'drift_interval': bad duration '00' (expected e.g. 500ms, 30s, 5m, 1h30m)");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\npoll: {drift_intervall: 1m}\n",
		     TEND_EINVALID, "4:8: unknown key 'drift_intervall' in poll (did you mean 'drift_interval'?)");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nprobes: {liveness_interval: often}\n",
		     TEND_EINVALID, "4:29: 'liveness_interval': bad duration 'often' (expected e.g. 500ms, 30s, 5m, 1h30m)");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nsecrets_storage: tmpfs\n",
		     TEND_EINVALID, "4:18: 'secrets_storage': 'tmpfs' is neither ram (a ramfs, the default) nor disk");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nprobes: {liveness_interval: 10ms}\n",
		     TEND_EINVALID, "4:29: 'liveness_interval' must be 0 (off) or at least 1s");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\ndependencies: {recheck: 0ms}\n",
		     TEND_EINVALID, "4:25: 'recheck' must be more than 0");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nalerts: {fetch_failing_after: 15}\n",
		     TEND_EINVALID, "4:31: 'fetch_failing_after': bad duration '15' "
		     "(expected e.g. 500ms, 30s, 5m, 1h30m)");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: '/var/lib/my tend'\n", TEND_EINVALID,
		     "3:12: 'state_dir': '/var/lib/my tend' may only hold letters, digits and / . _ + - "
		     "(nix builds revisions under it)");
}

/* CA files (repository.ca_file, probes.ca_file): resolved like every path and
 * checked when loading, so a typo is reported at its line. */
static void test_ca_files(void **state)
{
	char *dir = test_tmpdir_make("config"), *path, *expect = NULL;
	tend_config *c = NULL;

	test_write_file(dir, "certs/lab-ca.pem",
			"# the lab's CA\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	test_write_file(dir, "certs/lab-ca.key", "-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n");
	path = write_config(dir,
		"host: a\n"
		"repository: {url: 'https://git.lab.example/ops/fleet.git', ca_file: certs/lab-ca.pem}\n"
		"state_dir: /s\n"
		"probes: {ca_file: certs/lab-ca.pem}\n");
	if (tend_config_load(&c, path) != 0)
		fail_msg("%s", tend_error_last());
	assert_true(asprintf(&expect, "%s/certs/lab-ca.pem", dir) > 0);
	assert_string_equal(c->repository.ca_file, expect);
	assert_string_equal(c->probes.ca_file, expect);
	tend_config_free(c);
	free(expect);
	free(path);

	/* a private key instead of the certificate */
	path = write_config(dir, "host: a\nrepository: {url: x}\nstate_dir: /s\nprobes:\n  ca_file: certs/lab-ca.key\n");
	assert_int_equal(tend_config_load(&c, path), TEND_EINVALID);
	assert_true(asprintf(&expect, "%s:5:12: 'ca_file': %s/certs/lab-ca.key: holds no PEM certificate "
			     "(-----BEGIN CERTIFICATE-----)", path, dir) > 0);
	assert_string_equal(tend_error_last(), expect);
	free(expect);
	free(path);
	test_tmpdir_remove(dir);

	expect_error("host: a\nrepository:\n  url: x\n  ca_file: /nonexistent/ca.pem\nstate_dir: /s\n",
		     TEND_EINVALID, "4:12: 'ca_file': /nonexistent/ca.pem: No such file or directory");
	expect_error("host: a\nrepository: {url: x}\nstate_dir: /s\nprobes: {ca_file: /}\n",
		     TEND_EINVALID, "4:19: 'ca_file': /: not a regular file (a CA file is one PEM bundle)");
	expect_error("host: a\nrepository: {url: x, ca_fille: /x}\nstate_dir: /s\n", TEND_EINVALID,
		     "2:22: unknown key 'ca_fille' in repository (did you mean 'ca_file'?)");
}

static void test_missing_file(void **state)
{
	tend_config *c;

	assert_int_equal(tend_config_load(&c, "/nonexistent/tend.yaml"), TEND_ENOTFOUND);
	assert_non_null(strstr(tend_error_last(), "/nonexistent/tend.yaml"));
}

static void test_durations(void **state)
{
	uint64_t ms;

	assert_int_equal(tend_config_parse_duration(&ms, "1h2m3s4ms"), 0);
	assert_int_equal(ms, 3723004);
	assert_int_equal(tend_config_parse_duration(&ms, "250ms"), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(tend_config_parse_duration(&ms, "10"), TEND_EINVALID);
	assert_int_equal(tend_config_parse_duration(&ms, "s"), TEND_EINVALID);
	assert_int_equal(tend_config_parse_duration(&ms, ""), TEND_EINVALID);
	assert_int_equal(tend_config_parse_duration(&ms, "5x"), TEND_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_ca_files),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
