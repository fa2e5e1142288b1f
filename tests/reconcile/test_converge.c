/* Converging end to end with the real tend binary, a real git repository
 * holding a fleet and the test flake, real `nix build`, real profiles (in a
 * temp dir), switch-to-configuration starting a real HTTP service, and real
 * probes: apply, plan, roll back a broken commit (probe or switch), do not
 * retry it, apply a fix, repair drift, skip an unchanged system, secrets,
 * roll back by hand. */
#include "tests/reconcile/e2e.h"

static void test_apply_rollback_fix_drift(void **state)
{
	e2e *e = *state;
	char *c1, *c2, *c3, *c4, *out = NULL, *sys1, *sys3, *body, *routes, *edited;
	tend_state *st;
	long gens_before;

	write_web(e, 200, "one", NULL);
	c1 = commit(e, "web one");

	/* a good commit: planned (exit 2), applied, probed healthy, recorded */
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "switch system (none) -> /nix/store/");
	expect_contains(out, "write file ");
	expect_contains(out, "/hostroot/etc/traefik/tend.yml (traefik, new)");
	expect_contains(out, "probe web");
	/* files first, then the switch, then the probes */
	assert_true(strstr(out, "write file ") < strstr(out, "switch system"));
	assert_true(strstr(out, "switch system") < strstr(out, "probe web"));
	free(out);
	/* planning changed nothing on the host */
	assert_null(current_system(e));
	assert_false(tend_path_exists(e->routes));
	assert_int_equal(tend(e, &out, "plan", "--json", NULL), 2);
	expect_contains(out, "\"action\": \"write_file\"");
	expect_contains(out, "\"action\": \"switch\"");
	expect_contains(out, "\"outcome\": \"planned\"");
	free(out);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "web1: applied: applied commit ");
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	sys1 = current_system(e);
	assert_non_null(sys1);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c1);
	assert_string_equal(st->system, sys1);
	assert_int_equal(st->generation, 1);
	assert_non_null(tend_state_file_get(st, e->routes));
	assert_false(st->inflight.active);
	tend_state_free(st);
	routes = test_read_file(e->routes);
	expect_contains(routes, "web.lab.test");
	/* nothing left to do */
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 0);
	expect_contains(out, "nothing to do");
	free(out);

	/* a commit that breaks the service: applied, probe fails, rolled back */
	write_web(e, 500, "broken", NULL);
	c2 = commit(e, "web broken");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "HTTP 500 (expected 200)");
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");          /* the previous generation answers again */
	free(body);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	assert_int_equal(tend(e, &out, "history", "--json", NULL), 0);
	expect_contains(out, "\"outcome\": \"rolled-back\"");
	expect_contains(out, "\"failed_probe\": \"web: http http://127.0.0.1:");
	expect_contains(out, "HTTP 500 (expected 200)\\nbroken");
	expect_contains(out, c2);
	free(out);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c1);
	assert_true(tend_state_failed_has(st, c2));
	assert_string_equal(st->history[st->n_history - 1].rollback_target, sys1);
	gens_before = st->generation;
	tend_state_free(st);

	/* the next poll does not re-apply it */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "blocked");
	expect_contains(out, "not retried");
	free(out);
	st = load_state(e);
	assert_int_equal(st->generation, gens_before);
	tend_state_free(st);
	/* while the head is blocked, drift of the applied commit is still repaired */
	test_write_file(e->dir, "hostroot/etc/traefik/tend.yml", "# edited by hand\n");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	{
		char short1[13];
		snprintf(short1, sizeof(short1), "%.12s", c1);
		expect_contains(out, short1);
	}
	free(out);
	edited = test_read_file(e->routes);
	assert_string_equal(edited, routes);
	free(edited);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "blocked");
	free(out);

	/* a fix is applied */
	write_web(e, 200, "fixed", NULL);
	c3 = commit(e, "web fixed");
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "fixed");
	free(body);
	sys3 = current_system(e);
	assert_string_not_equal(sys3, sys1);

	/* a hand-edited route file is drift: planned and put back */
	free(routes);
	routes = test_read_file(e->routes);
	test_write_file(e->dir, "hostroot/etc/traefik/tend.yml", "# edited by hand\n");
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "(traefik, drift)");
	assert_null(strstr(out, "switch system"));
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	edited = test_read_file(e->routes);
	/* the same routes; the "generated from commit" header names the commit applied now */
	assert_true(!strncmp(edited, "# Generated by tend from commit ", 32));
	assert_string_equal(strchr(edited, '\n'), strchr(routes, '\n'));
	free(edited);

	/* a commit that leaves web1's system as it is: no switch */
	test_write_file(e->repo, "services/other/service.yaml",
			"name: other\nhost: web2\nsettings: {colour: red}\n");
	c4 = commit(e, "other is red");
	st = load_state(e);
	gens_before = st->generation;
	tend_state_free(st);
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 0);
	expect_contains(out, "nothing to do");
	free(out);
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 0);
	expect_contains(out, "nothing to change");
	free(out);
	st = load_state(e);
	assert_string_equal(st->applied_commit, c4);
	assert_int_equal(st->generation, gens_before);
	assert_string_equal(st->system, sys3);
	tend_state_free(st);

	/* by hand: back to the generation before (commit 1's system and files) */
	assert_int_equal(tend(e, &out, "rollback", NULL, NULL), 0);
	expect_contains(out, "rolled back by hand to generation");
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	/* and the commit rolled away from is not re-applied by the next poll */
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "blocked");
	free(out);
	assert_int_equal(tend(e, &out, "history", NULL, NULL), 0);
	expect_contains(out, "manual-rollback");
	expect_contains(out, "rolled-back");
	expect_contains(out, "failing probe: web: http");
	free(out);

	free(routes);
	free(sys1);
	free(sys3);
	free(c1);
	free(c2);
	free(c3);
	free(c4);
}


static void test_secrets(void **state)
{
	e2e *e = *state;
	char *out = NULL, *token = NULL, *value;
	const char *decl = "secrets:\n  - {name: token, file: secrets/web.age, mode: '0440'}\n";
	struct stat sb;

	assert_true(asprintf(&token, "%s/secrets/web/token", e->dir) > 0);
	encrypt_secret(e, "secrets/web.age", "s3cret-one");
	write_web(e, 200, "one", decl);
	free(commit(e, "web with a token"));
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "install secret ");
	expect_contains(out, "/secrets/web/token (web, new)");
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	value = test_read_file(token);
	assert_string_equal(value, "s3cret-one");
	free(value);
	assert_int_equal(stat(token, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0440);

	/* a hand-edited secret is drift */
	assert_int_equal(chmod(token, 0600), 0);
	test_write_file(e->dir, "secrets/web/token", "tampered");
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "(web, drift)");
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	value = test_read_file(token);
	assert_string_equal(value, "s3cret-one");
	free(value);
	assert_int_equal(stat(token, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0440);

	/* a new secret in a commit that fails its probe: the old secret comes back */
	encrypt_secret(e, "secrets/web.age", "s3cret-two");
	write_web(e, 500, "broken", decl);
	free(commit(e, "new token, broken web"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	free(out);
	value = test_read_file(token);
	assert_string_equal(value, "s3cret-one");
	free(value);

	/* a secret no longer declared is removed */
	write_web(e, 200, "one", NULL);
	free(commit(e, "no token"));
	assert_int_equal(tend(e, &out, "plan", NULL, NULL), 2);
	expect_contains(out, "remove secret ");
	free(out);
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	assert_false(tend_path_exists(token));
	free(token);
}


/* Issue 17 F8: a probe whose output holds a secret value (the commit's new
 * one, or the installed one it replaces) kept it in history, the report and
 * the alert mail. Now each is "***". Fails on 247ba6c: the history's probe
 * output held both values. */
static void test_secret_masked_in_probe_output(void **state)
{
	e2e *e = *state;
	char *out = NULL;
	const char *decl = "secrets:\n  - {name: token, file: secrets/web.age}\n";
	tend_state *st;
	const tend_state_history *h;

	encrypt_secret(e, "secrets/web.age", "pin-4711-old");
	write_web(e, 200, "one", decl);
	free(commit(e, "web with a token"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	encrypt_secret(e, "secrets/web.age", "pin-0815-new");
	write_web(e, 500, "debug: token pin-0815-new, was pin-4711-old", decl);
	free(commit(e, "new token, web prints it"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "debug: token ***, was ***");
	assert_null(strstr(out, "pin-0815-new"));
	assert_null(strstr(out, "pin-4711-old"));
	free(out);
	st = load_state(e);
	h = &st->history[st->n_history - 1];
	assert_non_null(h->probe_output);
	assert_non_null(strstr(h->probe_output, "debug: token ***, was ***"));
	assert_null(strstr(h->probe_output, "pin-0815-new"));
	assert_null(strstr(h->probe_output, "pin-4711-old"));
	tend_state_free(st);
	assert_int_equal(tend(e, &out, "history", "--json", NULL), 0);
	assert_null(strstr(out, "pin-0815-new"));
	assert_null(strstr(out, "pin-4711-old"));
	free(out);
}

/* A switch that fails is rolled back like a failed probe; rollback --to picks
 * a generation by number. */
static void test_failed_switch_and_rollback_to(void **state)
{
	e2e *e = *state;
	char *out = NULL, *sys1, *sys2, *body;
	tend_state *st;

	write_web(e, 200, "one", NULL);
	free(commit(e, "web one"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys1 = current_system(e);
	write_web(e, 200, "two", "  test_switch_exit: 4\n");
	free(commit(e, "switch fails"));
	assert_int_equal(tend(e, &out, "reconcile", NULL, NULL), 1);
	expect_contains(out, "rolled-back");
	expect_contains(out, "switch failed");
	free(out);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	assert_true(fx_wait_listening(e->port, 5000));
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	assert_int_equal(tend(e, &out, "history", "--json", NULL), 0);
	expect_contains(out, "switch failed as the settings ask (exit 4)");
	free(out);

	write_web(e, 200, "three", NULL);
	free(commit(e, "web three"));
	assert_int_equal(tend(e, NULL, "reconcile", NULL, NULL), 0);
	sys2 = current_system(e);
	assert_string_not_equal(sys2, sys1);
	/* generation 1 is commit one's system */
	assert_int_equal(tend(e, &out, "rollback", "--to", "1"), 0);
	expect_contains(out, "rolled back by hand to generation 1");
	free(out);
	out = current_system(e);
	assert_string_equal(out, sys1);
	free(out);
	body = web_body(e);
	assert_string_equal(body, "one");
	free(body);
	assert_int_equal(tend(e, &out, "rollback", "--to", "99"), 1);
	expect_contains(out, "has no generation 99");
	free(out);
	st = load_state(e);
	assert_string_equal(st->system, sys1);
	tend_state_free(st);
	free(sys1);
	free(sys2);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_rollback_fix_drift, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_masked_in_probe_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_switch_and_rollback_to, setup, teardown),
	};
	if (!test_have("nix") || !test_have("git") || !test_have("curl") || !test_have("python3") ||
	    !test_have("age")) {
		fprintf(stderr, "SKIP: needs nix, git, curl, python3 and age\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
