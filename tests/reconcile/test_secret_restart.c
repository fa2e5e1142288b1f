/* Secrets' `restart:` units, end to end with the real tend binary, git, age
 * and nix: a `systemctl` shim first in PATH logs each restart with the content
 * of the service's secret at that moment; like systemd, try-restart leaves a
 * failed unit (one whose restart failed) alone, so a rollback must restart it.
 * A new secret restarts nothing; a changed one try-restarts its units once
 * each, in dependency order, after the new generation is current; a rollback
 * restarts them again with the old value; a failing restart rolls the change
 * back. (tests/host/test_first_start.c does this on a real systemd.) */
#include "tests/reconcile/e2e.h"

typedef struct {
	char *old_path;
	char *log;
} shim;

/* Write bin/systemctl: logs "<unit> <content of secrets/<service>/token>" (the
 * service is the unit name up to the first '.' or '-'); fail_when: a shell
 * condition on $value that makes it exit 1 (NULL: never). */
static void shim_install(shim *s, e2e *e, const char *fail_when)
{
	char *script = NULL, *path = NULL;

	free(s->log);
	assert_true(asprintf(&s->log, "%s/systemctl.log", e->dir) > 0);
	assert_true(asprintf(&script,
		"#!/bin/sh\n"
		"# systemd's verbs as tend uses them: is-failed, try-restart (nothing for a failed unit),\n"
		"# restart; a unit whose restart failed is failed (a marker file) until one succeeds\n"
		"failed='%s/failed-'\"$4\"\n"
		"if [ \"$1\" = is-failed ] && [ \"$2\" = --quiet ] && [ \"$3\" = -- ]; then [ -e \"$failed\" ]; exit; fi\n"
		"{ [ \"$1\" = try-restart ] || [ \"$1\" = restart ]; } && [ \"$2\" = -- ] || { echo \"unexpected: $*\" >&2; exit 2; }\n"
		"failed='%s/failed-'\"$3\"\n"
		"[ \"$1\" = try-restart ] && [ -e \"$failed\" ] && exit 0\n"
		"svc=${3%%%%.*}; svc=${svc%%%%-*}\n"
		"value=$(cat '%s/secrets/'\"$svc\"/token 2>/dev/null || echo '(none)')\n"
		"echo \"$3 $value\" >> '%s'\n"
		"if %s; then touch \"$failed\"; echo \"Job for $3 failed because the control process exited with error code.\"; exit 1; fi\n"
		"rm -f \"$failed\"\n"
		"exit 0\n",
		e->dir, e->dir, e->dir, s->log, fail_when ? fail_when : "false") > 0);
	test_write_file(e->dir, "bin/systemctl", script);
	assert_true(asprintf(&path, "%s/bin/systemctl", e->dir) > 0);
	assert_int_equal(chmod(path, 0755), 0);
	free(path);
	free(script);
	if (!s->old_path)
		s->old_path = strdup(getenv("PATH"));
	assert_true(asprintf(&path, "%s/bin:%s", e->dir, s->old_path) > 0);
	setenv("PATH", path, 1);
	free(path);
}

static void shim_remove(shim *s)
{
	setenv("PATH", s->old_path, 1);
	free(s->old_path);
	free(s->log);
}

/* The restarts logged so far ("" for none), and the log emptied. */
static char *shim_take(shim *s)
{
	char *text = test_read_file(s->log);

	unlink(s->log);
	return text ? text : strdup("");
}

static void expect_log(shim *s, const char *want)
{
	char *got = shim_take(s);

	if (strcmp(got, want))
		fail_msg("systemctl restarts:\n%s\nexpected:\n%s", got, want);
	free(got);
}

static char *read_secret(e2e *e, const char *service)
{
	char *path = NULL, *text;

	assert_true(asprintf(&path, "%s/secrets/%s/token", e->dir, service) > 0);
	text = test_read_file(path);
	free(path);
	return text;
}

/* traefik <- web <- aaa (aaa depends on web): alphabetical order is not the
 * dependency order. web's and aaa's secrets both name web.service. */
static void write_services(e2e *e, int web_status)
{
	test_write_file(e->repo, "services/traefik/service.yaml",
		"name: traefik\nhost: web1\n"
		"secrets:\n  - {name: token, file: secrets/traefik.age, restart: [traefik.service]}\n");
	test_write_file(e->repo, "services/aaa/service.yaml",
		"name: aaa\nhost: web1\ndepends_on: [web]\n"
		"secrets:\n  - {name: token, file: secrets/aaa.age, restart: [aaa.service, web.service]}\n");
	write_web(e, web_status, web_status == 200 ? "one" : "broken",
		  "secrets:\n  - {name: token, file: secrets/web.age, restart: [web.service, web-worker.service]}\n");
}

static void test_restart_on_change(void **state)
{
	e2e *e = *state;
	shim s = { NULL, NULL };
	char *out = NULL, *v;

	shim_install(&s, e, NULL);
	encrypt_secret(e, "secrets/traefik.age", "t1");
	encrypt_secret(e, "secrets/web.age", "w1");
	encrypt_secret(e, "secrets/aaa.age", "a1");
	write_services(e, 200);
	free(commit(e, "three services with secrets"));

	/* first install: the secrets are new, the switch starts the services
	 * (which read them); nothing is restarted */
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "install secret ");
	assert_null(strstr(out, "restart unit"));
	free(out);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "applied");
	free(out);
	expect_log(&s, "");
	v = read_secret(e, "web");
	assert_string_equal(v, "w1");
	free(v);

	/* a commit that changes nothing about the secrets restarts nothing */
	test_write_file(e->repo, "services/other/service.yaml",
			"name: other\nhost: web2\nsettings: {colour: red}\n");
	free(commit(e, "other is red"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	expect_log(&s, "");
	/* re-encrypting the same value (new ciphertext, same content) neither */
	encrypt_secret(e, "secrets/web.age", "w1");
	free(commit(e, "web token re-encrypted"));
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 0);
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	expect_log(&s, "");

	/* all three change: dependency order, each unit once, new value in place */
	encrypt_secret(e, "secrets/traefik.age", "t2");
	encrypt_secret(e, "secrets/web.age", "w2");
	encrypt_secret(e, "secrets/aaa.age", "a2");
	free(commit(e, "rotate all tokens"));
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "restart unit traefik.service");
	assert_true(strstr(out, "restart unit traefik.service") < strstr(out, "restart unit web.service"));
	assert_true(strstr(out, "restart unit web-worker.service") < strstr(out, "restart unit aaa.service"));
	assert_null(strstr(strstr(out, "restart unit web.service") + 1, "restart unit web.service"));
	free(out);
	expect_log(&s, "");   /* planning restarts nothing */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "applied");
	free(out);
	expect_log(&s, "traefik.service t2\nweb.service w2\nweb-worker.service w2\naaa.service a2\n");

	/* only web's: only web's units */
	encrypt_secret(e, "secrets/web.age", "w3");
	free(commit(e, "rotate web token"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	expect_log(&s, "web.service w3\nweb-worker.service w3\n");

	/* a hand-edited secret is put back and its units restarted */
	{
		char *path = NULL;
		assert_true(asprintf(&path, "%s/secrets/aaa/token", e->dir) > 0);
		assert_int_equal(chmod(path, 0600), 0);
		free(path);
	}
	test_write_file(e->dir, "secrets/aaa/token", "tampered");
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	expect_log(&s, "aaa.service a2\nweb.service w3\n");

	/* a new web token in a commit whose probe fails: restarted with the new
	 * value, rolled back, restarted again with the restored one */
	encrypt_secret(e, "secrets/web.age", "w4");
	write_services(e, 500);
	free(commit(e, "new web token, web broken"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "healthy again");
	free(out);
	expect_log(&s, "web.service w4\nweb-worker.service w4\nweb.service w3\nweb-worker.service w3\n");
	v = read_secret(e, "web");
	assert_string_equal(v, "w3");
	free(v);
	v = web_body(e);
	assert_string_equal(v, "one");
	free(v);

	shim_remove(&s);
}

static void test_restart_failure(void **state)
{
	e2e *e = *state;
	shim s = { NULL, NULL };
	char *out = NULL, *v, *c1, *c2;
	tend_state *st;

	/* the unit fails to start with a bad secret (and starts with a good one) */
	shim_install(&s, e, "[ \"$value\" = bad ]");
	encrypt_secret(e, "secrets/traefik.age", "t1");
	encrypt_secret(e, "secrets/web.age", "w1");
	encrypt_secret(e, "secrets/aaa.age", "a1");
	write_services(e, 200);
	c1 = commit(e, "services with secrets");
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	expect_log(&s, "");

	encrypt_secret(e, "secrets/web.age", "bad");
	c2 = commit(e, "bad web token");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "systemctl try-restart web.service failed (exit 1)");
	free(out);
	/* stopped at the failing unit; after the rollback both are restarted with the old value */
	expect_log(&s, "web.service bad\nweb.service w1\nweb-worker.service w1\n");
	v = read_secret(e, "web");
	assert_string_equal(v, "w1");
	free(v);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c1);
	assert_true(tend_state_failed_has(st, c2));
	assert_string_equal(st->history[st->n_history - 1].outcome, "rolled-back");
	expect_contains(st->history[st->n_history - 1].switch_output, "Job for web.service failed");
	tend_state_free(st);
	/* not retried */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "blocked");
	free(out);
	expect_log(&s, "");

	/* a unit that cannot be restarted even with the old value: the files are
	 * back, but the rollback is reported as failed */
	shim_install(&s, e, "true");
	encrypt_secret(e, "secrets/web.age", "w2");
	free(commit(e, "another web token"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rollback-failed");
	expect_contains(out, "systemctl try-restart web.service failed (exit 1)");
	free(out);
	expect_log(&s, "web.service w2\nweb.service w1\nweb-worker.service w1\n");
	v = read_secret(e, "web");
	assert_string_equal(v, "w1");
	free(v);
	assert_int_equal(tend(e, &out, "history", NULL, NULL), 0);
	expect_contains(out, "rollback-failed");
	free(out);

	free(c1);
	free(c2);
	shim_remove(&s);
}

/* An older tend kept the secrets as plain files in a directory at secrets_root: the first
 * change after the upgrade that rolls back puts the old values back. */
static void test_upgrade_from_plain_directory(void **state)
{
	e2e *e = *state;
	shim s = { NULL, NULL };
	char *out = NULL, *v;

	shim_install(&s, e, NULL);
	encrypt_secret(e, "secrets/traefik.age", "t1");
	encrypt_secret(e, "secrets/web.age", "w1");
	encrypt_secret(e, "secrets/aaa.age", "a1");
	write_services(e, 200);
	free(commit(e, "services with secrets"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	/* as an older tend left it: a directory of plain files, no generations */
	assert_int_equal(test_sh(NULL, e->dir, "cp -rL secrets secrets.plain && rm secrets && "
				 "rm -rf secrets.d && mv secrets.plain secrets && test -d secrets && "
				 "test ! -L secrets"), 0);
	encrypt_secret(e, "secrets/web.age", "w2");
	write_services(e, 500);
	free(commit(e, "new web token, web broken"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	free(out);
	v = read_secret(e, "web");
	assert_non_null(v);
	assert_string_equal(v, "w1");
	free(v);
	v = read_secret(e, "traefik");
	assert_non_null(v);
	assert_string_equal(v, "t1");
	free(v);
	shim_remove(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_restart_on_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_plain_directory, setup, teardown),
	};
	if (!test_have("nix") || !test_have("git") || !test_have("curl") || !test_have("python3") ||
	    !test_have("age")) {
		fprintf(stderr, "SKIP: needs nix, git, curl, python3 and age\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
