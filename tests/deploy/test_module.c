/* The NixOS module and the flakes, with the real nix-instantiate: every Nix file
 * parses; the module, evaluated with a hand-written lib (tests/deploy/eval-module.nix),
 * yields the systemd unit and an agent configuration that the real tend accepts;
 * the top-level flake's outputs evaluate against a stand-in nixpkgs. */
#include "tests/support/support.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	char *dir;
	char *err;           /* nix-instantiate's stderr of the last failed evaluation */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = test_tmpdir_make("deploy");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	test_tmpdir_remove(f->dir);
	free(f->err);
	free(f);
	return 0;
}

/* Evaluate the module with services.tend = user (JSON) in a NixOS configuration
 * whose other options the module reads are system (JSON: nix.envVars,
 * networking.proxy.envVars, services.openssh.hostKeys; NULL: NixOS's defaults);
 * extra are more nix-instantiate arguments. Returns the result, or NULL with
 * f->err set. */
static json_t *eval_module_in(fixture *f, const char *user, const char *system, const char *extra)
{
	tend_buf out = TEND_BUF_INIT;
	json_error_t jerr;
	json_t *j = NULL;
	char *errpath = NULL;

	test_write_file(f->dir, "user.json", user);
	test_write_file(f->dir, "system.json", system ? system : "{}");
	assert_true(asprintf(&errpath, "%s/eval.err", f->dir) > 0);
	free(f->err);
	f->err = NULL;
	if (test_sh(&out, f->dir,
		    "nix-instantiate --eval --strict --json --read-write-mode %s/tests/deploy/eval-module.nix "
		    "--arg module %s/deploy/nixos-module.nix --arg user 'builtins.readFile %s/user.json' "
		    "--arg system 'builtins.readFile %s/system.json' %s 2>%s",
		    TEND_SOURCE_DIR, TEND_SOURCE_DIR, f->dir, f->dir, extra ? extra : "", errpath) == 0) {
		j = json_loads(out.ptr, 0, &jerr);
		assert_non_null(j);
	} else {
		f->err = test_read_file(errpath);
		assert_non_null(f->err);
	}
	tend_buf_dispose(&out);
	free(errpath);
	return j;
}

static json_t *eval_module(fixture *f, const char *user, const char *extra)
{
	return eval_module_in(f, user, NULL, extra);
}

static const char *str_at(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static int list_has(json_t *list, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return 1;
	return 0;
}

/* The dotted keys documented in docs/agent-config.md's table ("| `a.b` | ..."). */
static json_t *documented_keys(void)
{
	char *path = NULL, *doc, *p;
	json_t *keys = json_array();

	assert_true(asprintf(&path, "%s/docs/agent-config.md", TEND_SOURCE_DIR) > 0);
	doc = test_read_file(path);
	assert_non_null(doc);
	for (p = doc; (p = strstr(p, "\n| `")); ) {
		char *start = p + 4, *end = strchr(start, '`');
		assert_non_null(end);
		json_array_append_new(keys, json_stringn(start, (size_t)(end - start)));
		p = end;
	}
	assert_true(json_array_size(keys) > 20);
	free(doc);
	free(path);
	return keys;
}

/* Every leaf of cfg is a documented key (lists are leaves); no value is null. */
static void check_keys_documented(json_t *cfg, const char *prefix, json_t *documented)
{
	const char *k;
	json_t *v;

	json_object_foreach(cfg, k, v) {
		char *dotted = NULL;
		assert_true(asprintf(&dotted, "%s%s%s", prefix, *prefix ? "." : "", k) > 0);
		assert_false(json_is_null(v));
		if (json_is_object(v)) {
			check_keys_documented(v, dotted, documented);
		} else if (!list_has(documented, dotted)) {
			fail_msg("the module writes '%s', which docs/agent-config.md does not document", dotted);
		}
		free(dotted);
	}
}

/* Write the generated file and run the real loader on it: `tend run -n`. */
static int tend_check(fixture *f, const char *text, char **out_stderr)
{
	tend_proc_result res;
	char *path = NULL;
	const char *args[] = { "run", "-n", "--config", NULL, NULL };
	int code;

	test_write_file(f->dir, "agent.yaml", text);
	assert_true(asprintf(&path, "%s/agent.yaml", f->dir) > 0);
	args[3] = path;
	assert_int_equal(test_tend(&res, f->dir, args), 0);
	code = res.exit_code;
	if (out_stderr)
		*out_stderr = strdup(res.err.ptr ? res.err.ptr : "");
	tend_proc_result_dispose(&res);
	free(path);
	return code;
}

static void test_nix_files_parse(void **state)
{
	static const char *const files[] = { "deploy/nixos-module.nix", "flake.nix",
		"examples/homelab/flake.nix", "tests/deploy/eval-module.nix",
		"tests/deploy/eval-flake.nix", NULL };
	size_t i;

	(void)state;
	for (i = 0; files[i]; i++)
		assert_int_equal(test_sh(NULL, TEND_SOURCE_DIR, "nix-instantiate --parse %s >/dev/null", files[i]), 0);
	/* A broken file is refused: the check can fail. */
	assert_int_not_equal(test_sh(NULL, TEND_SOURCE_DIR,
				     "echo '{ a = ; }' | nix-instantiate --parse - >/dev/null 2>&1"), 0);
}

static void test_minimal_unit(void **state)
{
	fixture *f = *state;
	json_t *r = eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"ssh://git@git.lab/fleet.git\"}}", NULL);
	json_t *unit, *sc, *cfg, *documented;
	char *exec = NULL, *err = NULL;
	json_error_t jerr;

	assert_non_null(r);
	assert_true(json_is_true(json_object_get(r, "enabled")));
	unit = json_object_get(r, "unit");
	sc = json_object_get(unit, "serviceConfig");
	assert_string_equal(str_at(sc, "Type"), "notify");
	assert_string_equal(str_at(sc, "Restart"), "always");
	assert_non_null(json_object_get(sc, "RestartSec"));
	assert_string_equal(str_at(sc, "StateDirectory"), "tend");
	assert_string_equal(str_at(sc, "RuntimeDirectory"), "tend");
	assert_string_equal(str_at(sc, "User"), "root");
	assert_true(asprintf(&exec, "%s/bin/tend run --config /etc/tend/agent.yaml", str_at(r, "tendPackage")) > 0);
	assert_string_equal(str_at(sc, "ExecStart"), exec);
	assert_non_null(strstr(str_at(sc, "ExecReload"), "kill -HUP $MAINPID"));
	assert_true(json_is_false(json_object_get(unit, "restartIfChanged")));
	/* a switch (or a commit removing the unit) never stops the agent mid-switch; a stop
	 * signals the agent alone first */
	assert_true(json_is_false(json_object_get(json_object_get(unit, "unitConfig"), "X-StopOnRemoval")));
	assert_string_equal(str_at(sc, "KillMode"), "mixed");
	assert_true(list_has(json_object_get(unit, "after"), "network-online.target"));
	assert_true(list_has(json_object_get(unit, "wants"), "network-online.target"));
	assert_true(list_has(json_object_get(unit, "wantedBy"), "multi-user.target"));
	/* Options that would break switch-to-configuration (docs/security.md) are absent. */
	assert_null(json_object_get(sc, "NoNewPrivileges"));
	assert_null(json_object_get(sc, "ProtectSystem"));
	assert_null(json_object_get(sc, "PrivateTmp"));
	assert_null(json_object_get(sc, "RestrictSUIDSGID"));
	assert_int_equal(json_array_size(json_object_get(r, "firewallPorts")), 0);
	assert_int_equal(json_array_size(json_object_get(r, "failedAssertions")), 0);

	/* Secrets at boot: a oneshot before sysinit.target (so before every ordinary service) and
	 * before the agent, installing the applied commit's secrets from local state. */
	unit = json_object_get(r, "secretsUnit");
	sc = json_object_get(unit, "serviceConfig");
	assert_string_equal(str_at(sc, "Type"), "oneshot");
	assert_true(json_is_true(json_object_get(sc, "RemainAfterExit")));
	free(exec);
	assert_true(asprintf(&exec, "%s/bin/tend secret install --config /etc/tend/agent.yaml",
			     str_at(r, "tendPackage")) > 0);
	assert_string_equal(str_at(sc, "ExecStart"), exec);
	assert_true(json_is_false(json_object_get(json_object_get(unit, "unitConfig"), "DefaultDependencies")));
	assert_true(list_has(json_object_get(unit, "before"), "sysinit.target"));
	assert_true(list_has(json_object_get(unit, "before"), "tend.service"));
	assert_true(list_has(json_object_get(unit, "after"), "local-fs.target"));
	assert_true(list_has(json_object_get(unit, "wantedBy"), "sysinit.target"));

	/* The configuration file: JSON (hence YAML), documented keys only, defaults. */
	cfg = json_loads(str_at(r, "configFile"), 0, &jerr);
	assert_non_null(cfg);
	documented = documented_keys();
	check_keys_documented(cfg, "", documented);
	assert_string_equal(str_at(cfg, "host"), "db1"); /* networking.hostName */
	assert_string_equal(str_at(json_object_get(cfg, "repository"), "url"), "ssh://git@git.lab/fleet.git");
	assert_string_equal(str_at(json_object_get(cfg, "repository"), "branch"), "main");
	assert_string_equal(str_at(cfg, "state_dir"), "/var/lib/tend");
	assert_string_equal(str_at(json_object_get(cfg, "poll"), "drift_interval"), "10m");
	assert_string_equal(str_at(json_object_get(cfg, "system"), "reachability_timeout"), "60s");
	assert_string_equal(str_at(json_object_get(cfg, "probes"), "liveness_interval"), "60s");
	assert_true(list_has(json_object_get(cfg, "age_identities"), "/etc/ssh/ssh_host_ed25519_key"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(cfg, "listen"), "port")), 8470);
	assert_string_equal(str_at(json_object_get(cfg, "listen"), "address"), "127.0.0.1");
	assert_null(json_object_get(cfg, "alerts"));
	/* The real loader accepts it. */
	if (tend_check(f, str_at(r, "configFile"), &err) != 0)
		fail_msg("tend refused the generated configuration: %s", err);
	free(err);
	json_decref(documented);
	json_decref(cfg);
	json_decref(r);
	free(exec);
}

static void test_every_option(void **state)
{
	fixture *f = *state;
	char *user = NULL, *want = NULL;
	json_t *r;
	const char *d = f->dir;

	/* Secret files exist (tend run -n reads the webhook secret); paths under the test dir. */
	test_write_file(d, "keys/deploy", "not a real key\n");
	test_write_file(d, "keys/token", "token\n");
	test_write_file(d, "keys/hook", "hook-secret-0123456789abcdef\n");
	test_write_file(d, "keys/smtp", "smtp-password\n");
	test_write_file(d, "keys/lab-ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	assert_true(asprintf(&user,
		"{\"enable\": true, \"hostName\": \"apps1\",\n"
		" \"repository\": {\"url\": \"https://git.example.net/fleet.git\", \"branch\": \"prod\",\n"
		"   \"sshKeyFile\": \"%s/keys/deploy\", \"knownHosts\": \"/etc/tend/known_hosts\",\n"
		"   \"tokenFile\": \"%s/keys/token\", \"caFile\": \"%s/keys/lab-ca.pem\"},\n"
		" \"pollInterval\": \"5m\", \"driftInterval\": \"0\",\n"
		" \"allowedSigners\": [\"alice@example.net ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice\"],\n"
		" \"ageIdentityFiles\": [\"/etc/tend/age.key\", \"/etc/ssh/ssh_host_ed25519_key\"],\n"
		" \"secretsRoot\": \"/run/secrets/tend\",\n"
		" \"listen\": {\"address\": \"10.10.0.3\", \"port\": 9470, \"openFirewall\": true},\n"
		" \"webhookSecretFile\": \"%s/keys/hook\",\n"
		" \"alerts\": {\"email\": {\"to\": [\"ops@example.net\", \"oncall@example.net\"],\n"
		"   \"from\": \"tend@example.net\", \"smtpUrl\": \"smtps://mail.example.net:465\",\n"
		"   \"username\": \"tend\", \"passwordFile\": \"%s/keys/smtp\"}},\n"
		" \"settings\": {\"poll\": {\"jitter\": \"30s\"}, \"history_limit\": 500,\n"
		"   \"probes\": {\"deadline\": \"5m\"}, \"alerts\": {\"email\": {\"starttls\": true}}}}\n",
		d, d, d, d, d) > 0);
	r = eval_module(f, user, NULL);
	json_t *cfg, *repo, *email, *documented;
	json_error_t jerr;
	char *signers = NULL, *err = NULL;

	assert_non_null(r);
	cfg = json_loads(str_at(r, "configFile"), 0, &jerr);
	assert_non_null(cfg);
	documented = documented_keys();
	check_keys_documented(cfg, "", documented);
	assert_string_equal(str_at(cfg, "host"), "apps1");
	repo = json_object_get(cfg, "repository");
	assert_string_equal(str_at(repo, "branch"), "prod");
	assert_true(asprintf(&want, "%s/keys/deploy", d) > 0);
	assert_string_equal(str_at(repo, "ssh_key_file"), want);
	free(want);
	assert_string_equal(str_at(repo, "known_hosts"), "/etc/tend/known_hosts");
	assert_true(asprintf(&want, "%s/keys/token", d) > 0);
	assert_string_equal(str_at(repo, "token_file"), want);
	free(want);
	assert_true(asprintf(&want, "%s/keys/lab-ca.pem", d) > 0);
	assert_string_equal(str_at(repo, "ca_file"), want);
	free(want);
	/* The signer lines land in a store file holding exactly them. */
	signers = test_read_file(str_at(repo, "allowed_signers"));
	assert_non_null(signers);
	assert_string_equal(signers, "alice@example.net ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice\n");
	assert_int_equal(json_array_size(json_object_get(cfg, "age_identities")), 2);
	assert_string_equal(str_at(cfg, "secrets_root"), "/run/secrets/tend");
	assert_true(asprintf(&want, "%s/keys/hook", d) > 0);
	assert_string_equal(str_at(cfg, "webhook_secret_file"), want);
	free(want);
	/* settings merged key by key into the generated sections. */
	assert_string_equal(str_at(json_object_get(cfg, "poll"), "interval"), "5m");
	assert_string_equal(str_at(json_object_get(cfg, "poll"), "drift_interval"), "0");
	assert_string_equal(str_at(json_object_get(cfg, "poll"), "jitter"), "30s");
	assert_int_equal(json_integer_value(json_object_get(cfg, "history_limit")), 500);
	email = json_object_get(json_object_get(cfg, "alerts"), "email");
	assert_int_equal(json_array_size(json_object_get(email, "to")), 2);
	assert_string_equal(str_at(email, "smtp_url"), "smtps://mail.example.net:465");
	assert_true(asprintf(&want, "%s/keys/smtp", d) > 0);
	assert_string_equal(str_at(email, "password_file"), want);
	free(want);
	assert_string_equal(str_at(email, "from"), "tend@example.net");
	assert_true(json_is_true(json_object_get(email, "starttls")));
	/* Secrets only as paths: no secret file's content is in the configuration. */
	assert_null(strstr(str_at(r, "configFile"), "hook-secret"));
	assert_null(strstr(str_at(r, "configFile"), "smtp-password"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(cfg, "listen"), "port")), 9470);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(r, "firewallPorts"), 0)), 9470);
	if (tend_check(f, str_at(r, "configFile"), &err) != 0)
		fail_msg("tend refused the generated configuration: %s", err);
	free(err);
	free(user);
	free(signers);
	json_decref(documented);
	json_decref(cfg);
	json_decref(r);
}

static void test_disabled(void **state)
{
	fixture *f = *state;
	json_t *r = eval_module(f, "{\"repository\": {\"url\": \"/srv/fleet\"}}", NULL);

	assert_non_null(r);
	assert_true(json_is_false(json_object_get(r, "enabled")));
	assert_true(json_is_null(json_object_get(r, "unit")));
	assert_true(json_is_null(json_object_get(r, "configFile")));
	json_decref(r);
}

static void test_refusals(void **state)
{
	fixture *f = *state;
	json_t *r, *failed;
	char *err = NULL;

	/* A secret inside the store, and mail without a sender: assertions fail. */
	r = eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\",\n"
			"  \"sshKeyFile\": \"/nix/store/aaaa-deploy-key\"},\n"
			" \"alerts\": {\"email\": {\"to\": [\"ops@example.net\"]}}}", NULL);
	assert_non_null(r);
	failed = json_object_get(r, "failedAssertions");
	assert_int_equal(json_array_size(failed), 2);
	assert_non_null(strstr(json_string_value(json_array_get(failed, 0)), "/nix/store/aaaa-deploy-key"));
	assert_non_null(strstr(json_string_value(json_array_get(failed, 1)), "smtpUrl"));
	json_decref(r);

	/* Wrong types and unknown options are refused by the evaluation. */
	assert_null(eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}, \"listen\": {\"port\": \"http\"}}", NULL));
	assert_non_null(strstr(f->err, "services.tend.listen.port' is not of type `port'"));
	assert_null(eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}, \"pollIntervall\": \"5m\"}", NULL));
	assert_non_null(strstr(f->err, "services.tend.pollIntervall' does not exist"));
	assert_null(eval_module(f, "{\"enable\": true}", NULL));
	assert_non_null(strstr(f->err, "services.tend.repository.url' is used but not defined"));

	/* A misspelt settings key passes Nix but the agent refuses it, by line. */
	r = eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}, \"settings\": {\"pol\": {\"jitter\": \"1s\"}}}", NULL);
	assert_non_null(r);
	assert_int_equal(tend_check(f, str_at(r, "configFile"), &err), 1);
	assert_non_null(strstr(err, "unknown key 'pol' in the configuration (did you mean 'poll'?)"));
	free(err);
	json_decref(r);
}

static void test_inputs(void **state)
{
	fixture *f = *state;
	json_t *r;
	char *extra = NULL;

	/* Without inputsFile (a build outside tend) the inputs are empty. */
	r = eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}}", NULL);
	assert_non_null(r);
	assert_int_equal(json_object_size(json_object_get(r, "inputs")), 0);
	json_decref(r);

	/* With the rendered .tend/hosts/<host>.json, the host's configuration reads it. */
	test_write_file(f->dir, "tend/hosts/db1.json",
			"{\"host\": {\"name\": \"db1\"}, \"services\": {\"postgresql\": {\"settings\": {\"version\": 16}}}}");
	assert_true(asprintf(&extra, "--arg inputsDir %s/tend", f->dir) > 0);
	r = eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}}", extra);
	assert_non_null(r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(
		json_object_get(json_object_get(r, "inputs"), "services"), "postgresql"), "settings"), "version")), 16);
	json_decref(r);
	free(extra);
}

/* The age identities: by default the host's ed25519 SSH host keys (services.openssh.hostKeys),
 * as sops-nix; ageIdentityFiles wins over them. */
static void test_identities_from_host_keys(void **state)
{
	fixture *f = *state;
	const char *user = "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}}";
	json_t *r, *cfg, *ids;
	json_error_t jerr;

	/* NixOS's default host keys, an rsa and an ed25519 one: the ed25519 one alone. */
	r = eval_module(f, user, NULL);
	assert_non_null(r);
	cfg = json_loads(str_at(r, "configFile"), 0, &jerr);
	assert_non_null(cfg);
	ids = json_object_get(cfg, "age_identities");
	assert_int_equal(json_array_size(ids), 1);
	assert_string_equal(json_string_value(json_array_get(ids, 0)), "/etc/ssh/ssh_host_ed25519_key");
	json_decref(cfg);
	json_decref(r);

	/* Host keys kept elsewhere (an impermanence set-up): every ed25519 one, in order. */
	r = eval_module_in(f, user, "{\"services\": {\"openssh\": {\"hostKeys\": [\n"
			   "  {\"type\": \"ed25519\", \"path\": \"/persist/ssh/ssh_host_ed25519_key\"},\n"
			   "  {\"type\": \"rsa\", \"bits\": 4096, \"path\": \"/persist/ssh/ssh_host_rsa_key\"},\n"
			   "  {\"type\": \"ed25519\", \"path\": \"/persist/ssh/ssh_host_ed25519_key2\"}]}}}", NULL);
	assert_non_null(r);
	cfg = json_loads(str_at(r, "configFile"), 0, &jerr);
	assert_non_null(cfg);
	ids = json_object_get(cfg, "age_identities");
	assert_int_equal(json_array_size(ids), 2);
	assert_string_equal(json_string_value(json_array_get(ids, 0)), "/persist/ssh/ssh_host_ed25519_key");
	assert_string_equal(json_string_value(json_array_get(ids, 1)), "/persist/ssh/ssh_host_ed25519_key2");
	json_decref(cfg);
	json_decref(r);

	/* Set explicitly, the list replaces the host keys. */
	r = eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}, "
			"\"ageIdentityFiles\": [\"/etc/tend/age.key\"]}", NULL);
	assert_non_null(r);
	cfg = json_loads(str_at(r, "configFile"), 0, &jerr);
	assert_non_null(cfg);
	ids = json_object_get(cfg, "age_identities");
	assert_int_equal(json_array_size(ids), 1);
	assert_string_equal(json_string_value(json_array_get(ids, 0)), "/etc/tend/age.key");
	json_decref(cfg);
	json_decref(r);
}

/* Services of the host with secrets (the rendered inputs say so) and no identity: the
 * evaluation fails, telling the operator what to set. Without secrets, none is needed. */
static void test_identities_required_for_secrets(void **state)
{
	static const char *const rsa_only = "{\"services\": {\"openssh\": {\"hostKeys\": "
		"[{\"type\": \"rsa\", \"bits\": 4096, \"path\": \"/etc/ssh/ssh_host_rsa_key\"}]}}}";
	fixture *f = *state;
	const char *user = "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}}";
	json_t *r, *failed, *cfg;
	json_error_t jerr;
	const char *msg;
	char *extra = NULL, *err = NULL;

	test_write_file(f->dir, "tend/hosts/db1.json",
			"{\"host\": {\"name\": \"db1\"}, \"services\": {\n"
			" \"grafana\": {\"secrets\": [{\"name\": \"admin-password\", "
			"\"path\": \"/run/tend/secrets/grafana/admin-password\"}]},\n"
			" \"web\": {\"secrets\": []}}}");
	assert_true(asprintf(&extra, "--arg inputsDir %s/tend", f->dir) > 0);

	/* The default host keys give an identity: nothing to complain about. */
	r = eval_module_in(f, user, NULL, extra);
	assert_non_null(r);
	assert_int_equal(json_array_size(json_object_get(r, "failedAssertions")), 0);
	json_decref(r);

	/* No ed25519 host key, so no default identity. */
	r = eval_module_in(f, user, rsa_only, extra);
	assert_non_null(r);
	failed = json_object_get(r, "failedAssertions");
	assert_int_equal(json_array_size(failed), 1);
	msg = json_string_value(json_array_get(failed, 0));
	assert_non_null(strstr(msg, "(grafana)"));
	assert_non_null(strstr(msg, "set services.tend.ageIdentityFiles"));
	assert_non_null(strstr(msg, "add an ed25519 key to services.openssh.hostKeys"));
	json_decref(r);

	/* An explicitly empty list, whatever the host keys. */
	r = eval_module_in(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}, "
			   "\"ageIdentityFiles\": []}", NULL, extra);
	assert_non_null(r);
	failed = json_object_get(r, "failedAssertions");
	assert_int_equal(json_array_size(failed), 1);
	assert_non_null(strstr(json_string_value(json_array_get(failed, 0)), "services.tend.ageIdentityFiles"));
	json_decref(r);

	/* No service with secrets: no identity needed, and the agent takes the empty list. */
	test_write_file(f->dir, "tend/hosts/db1.json",
			"{\"host\": {\"name\": \"db1\"}, \"services\": {\"web\": {\"secrets\": []}}}");
	r = eval_module_in(f, user, rsa_only, extra);
	assert_non_null(r);
	assert_int_equal(json_array_size(json_object_get(r, "failedAssertions")), 0);
	cfg = json_loads(str_at(r, "configFile"), 0, &jerr);
	assert_non_null(cfg);
	assert_int_equal(json_array_size(json_object_get(cfg, "age_identities")), 0);
	if (tend_check(f, str_at(r, "configFile"), &err) != 0)
		fail_msg("tend refused the generated configuration: %s", err);
	free(err);
	json_decref(cfg);
	json_decref(r);
	free(extra);
}

/* The agent's unit gets what nixos-upgrade.service (system.autoUpgrade) gets, so that
 * git+ssh flake inputs and proxied hosts build under tend as under nixos-rebuild: git, ssh
 * and nix on its PATH, nix.envVars, the proxy variables and HOME=/root. */
static void test_unit_environment(void **state)
{
	fixture *f = *state;
	const char *user = "{\"enable\": true, \"repository\": {\"url\": \"ssh://git@git.lab/fleet.git\"}}";
	json_t *r, *unit, *env;
	tend_buf out = TEND_BUF_INIT;
	char *dumped;

	r = eval_module(f, user, NULL);
	assert_non_null(r);
	unit = json_object_get(r, "unit");
	assert_true(list_has(json_object_get(unit, "path"), str_at(r, "nixPackage")));
	assert_true(list_has(json_object_get(unit, "path"), str_at(r, "gitPackage")));
	/* ssh is programs.ssh.package, by default openssh */
	assert_true(list_has(json_object_get(unit, "path"), str_at(r, "sshPackage")));
	assert_non_null(strstr(str_at(r, "sshPackage"), "-openssh-"));
	env = json_object_get(unit, "environment");
	assert_string_equal(str_at(env, "HOME"), "/root");
	assert_null(json_object_get(env, "http_proxy"));
	json_decref(r);

	/* A host behind a proxy (networking.proxy) with nix.envVars of its own. */
	r = eval_module_in(f, user, "{\"networking\": {\"proxy\": {\"envVars\": {\n"
			   "  \"http_proxy\": \"http://proxy.lab:3128\", \"https_proxy\": \"http://proxy.lab:3128\",\n"
			   "  \"no_proxy\": \"127.0.0.1,localhost,.lab\"}}},\n"
			   " \"nix\": {\"envVars\": {\"NIX_SSL_CERT_FILE\": \"/etc/ssl/lab-ca.pem\"}}}", NULL);
	assert_non_null(r);
	env = json_object_get(json_object_get(r, "unit"), "environment");
	assert_string_equal(str_at(env, "http_proxy"), "http://proxy.lab:3128");
	assert_string_equal(str_at(env, "https_proxy"), "http://proxy.lab:3128");
	assert_string_equal(str_at(env, "no_proxy"), "127.0.0.1,localhost,.lab");
	assert_string_equal(str_at(env, "NIX_SSL_CERT_FILE"), "/etc/ssl/lab-ca.pem");
	assert_string_equal(str_at(env, "HOME"), "/root");
	/* The lab's copy of the unit (tests/host) carries the variables and no store path. */
	dumped = json_dumps(r, 0);
	assert_non_null(dumped);
	test_write_file(f->dir, "eval.json", dumped);
	free(dumped);
	assert_int_equal(test_sh(&out, f->dir, "python3 %s/tests/host/unit-from-module.py < eval.json",
				 TEND_SOURCE_DIR), 0);
	assert_non_null(strstr(out.ptr, "\nEnvironment=\"http_proxy=http://proxy.lab:3128\"\n"));
	assert_non_null(strstr(out.ptr, "\nEnvironment=\"HOME=/root\"\n"));
	assert_null(strstr(out.ptr, "/nix/store/"));
	tend_buf_dispose(&out);
	json_decref(r);

	/* NixOS's types hold: nix.envVars is an attribute set. */
	assert_null(eval_module_in(f, user, "{\"nix\": {\"envVars\": [\"NIX_X=1\"]}}", NULL));
	assert_non_null(strstr(f->err, "nix.envVars' is not of type `attribute set'"));
}

/* package: pkgs.tend unless set; a package set replaces it in both units. */
static void test_package_option(void **state)
{
	fixture *f = *state;
	const char *user = "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}}";
	json_t *r;
	const char *exec;

	r = eval_module(f, user, NULL);
	assert_non_null(r);
	assert_true(list_has(json_object_get(r, "systemPackages"), str_at(r, "tendPackage")));
	json_decref(r);

	r = eval_module(f, user, "--arg userNix '{ package = derivation { name = \"tend-patched\"; "
			"system = \"x86_64-linux\"; builder = \"/bin/sh\"; }; }'");
	assert_non_null(r);
	exec = str_at(json_object_get(json_object_get(r, "unit"), "serviceConfig"), "ExecStart");
	assert_non_null(strstr(exec, "-tend-patched/bin/tend run "));
	assert_null(strstr(exec, str_at(r, "tendPackage")));
	assert_non_null(strstr(str_at(json_object_get(json_object_get(r, "secretsUnit"), "serviceConfig"),
				      "ExecStart"), "-tend-patched/bin/tend secret install "));
	assert_non_null(strstr(json_string_value(json_array_get(json_object_get(r, "systemPackages"), 0)),
			       "-tend-patched"));
	json_decref(r);

	/* A name is not a package. */
	assert_null(eval_module(f, user, "--arg userNix '{ package = \"tend\"; }'"));
	assert_non_null(strstr(f->err, "services.tend.package' is not of type `package'"));
}

/* settings (RFC 42): any value YAML holds, nested, merged key by key over the generated
 * configuration; a null drops a generated key; what YAML cannot hold is refused. */
static void test_settings_type(void **state)
{
	fixture *f = *state;
	json_t *r, *cfg, *nix, *opts;
	json_error_t jerr;
	char *err = NULL;

	r = eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"},\n"
			" \"settings\": {\"nix\": {\"extra_options\": [\"--option\", \"substituters\", \"\"],\n"
			"   \"build_timeout\": \"1h\"},\n"
			"  \"system\": {\"reboot_command\": [\"systemctl\", \"kexec\"]},\n"
			"  \"probes\": {\"output_limit\": 8192, \"liveness_interval\": null}}}", NULL);
	assert_non_null(r);
	cfg = json_loads(str_at(r, "configFile"), 0, &jerr);
	assert_non_null(cfg);
	nix = json_object_get(cfg, "nix");
	/* the generated nix.command stays next to the added keys */
	assert_non_null(strstr(str_at(nix, "command"), "/bin/nix"));
	assert_string_equal(str_at(nix, "build_timeout"), "1h");
	opts = json_object_get(nix, "extra_options");
	assert_int_equal(json_array_size(opts), 3);
	assert_string_equal(json_string_value(json_array_get(opts, 2)), "");
	assert_string_equal(str_at(json_object_get(cfg, "system"), "reachability_timeout"), "60s");
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(cfg, "system"),
									     "reboot_command"), 1)), "kexec");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(cfg, "probes"), "output_limit")), 8192);
	assert_null(json_object_get(json_object_get(cfg, "probes"), "liveness_interval"));
	if (tend_check(f, str_at(r, "configFile"), &err) != 0)
		fail_msg("tend refused the generated configuration: %s", err);
	free(err);
	json_decref(cfg);
	json_decref(r);

	/* A function has no YAML form: the type refuses it, naming where it is. */
	assert_null(eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}}",
				"--arg userNix '{ settings.poll.jitter = x: x; }'"));
	assert_non_null(strstr(f->err, "services.tend.settings.poll' is not of type `YAML value'"));
	/* settings is a mapping, not any YAML value. */
	assert_null(eval_module(f, "{\"enable\": true, \"repository\": {\"url\": \"/srv/fleet\"}, "
				"\"settings\": [\"poll\"]}", NULL));
	assert_non_null(strstr(f->err, "services.tend.settings' is not of type `submodule'"));
}

/* The top-level flake's outputs against a stand-in nixpkgs (tests/deploy/eval-flake.nix). */
static void test_flake_outputs(void **state)
{
	static const char *const build_inputs[] = { "libgit2", "libyaml", "curl", "jansson", "libssh2",
		"libsodium", "openssl", "libmicrohttpd", "zlib", "cmocka", NULL };
	tend_buf out = TEND_BUF_INIT;
	json_error_t jerr;
	json_t *r, *pkg;
	size_t i;

	(void)state;
	assert_int_equal(test_sh(&out, TEND_SOURCE_DIR, "nix-instantiate --eval --strict --json "
				 "tests/deploy/eval-flake.nix --arg flake ./flake.nix 2>&1"), 0);
	r = json_loads(out.ptr, 0, &jerr);
	assert_non_null(r);
	assert_true(list_has(json_object_get(r, "systems"), "x86_64-linux"));
	assert_true(list_has(json_object_get(r, "systems"), "aarch64-linux"));
	pkg = json_object_get(r, "package");
	assert_string_equal(str_at(pkg, "drv"), "mkDerivation");
	assert_string_equal(str_at(pkg, "pname"), "tend");
	assert_true(list_has(json_object_get(pkg, "nativeBuildInputs"), "cmake"));
	assert_true(list_has(json_object_get(pkg, "nativeBuildInputs"), "pkg-config"));
	for (i = 0; build_inputs[i]; i++)
		assert_true(list_has(json_object_get(pkg, "buildInputs"), build_inputs[i]));
	assert_true(list_has(json_object_get(pkg, "cmakeFlags"), "-DTEND_TESTS=OFF"));
	/* The binary it installs is where CMake puts it (this build has it there too). */
	assert_non_null(strstr(str_at(pkg, "installPhase"), "install -Dm0755 agent/tend $out/bin/tend"));
	assert_non_null(strstr(TEND_BINARY, "/agent/tend"));
	assert_string_equal(str_at(r, "overlay"), "tend");
	assert_non_null(strstr(json_string_value(json_array_get(json_object_get(r, "moduleImports"), 0)),
			       "/deploy/nixos-module.nix"));
	assert_int_equal(json_integer_value(json_object_get(r, "moduleOverlays")), 1);
	assert_true(json_is_true(json_object_get(r, "bareModuleIsFunction")));
	assert_string_equal(str_at(json_object_get(r, "devShell"), "drv"), "mkShell");
	assert_true(list_has(json_object_get(json_object_get(r, "devShell"), "inputsFrom"), "tend"));
	json_decref(r);
	tend_buf_dispose(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nix_files_parse),
		cmocka_unit_test(test_flake_outputs),
		cmocka_unit_test_setup_teardown(test_minimal_unit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_option, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inputs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identities_from_host_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identities_required_for_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unit_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_package_option, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settings_type, setup, teardown),
	};

	if (!test_have("nix-instantiate")) {
		fprintf(stderr, "deploy tests need nix-instantiate (Debian nix-bin)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
