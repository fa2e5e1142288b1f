/* The reconcile report as JSON and back (reconcile/report_json.c), as the
 * agent's worker hands it to the supervisor: every field survives the trip,
 * NULLs stay NULL, and a document that does not fit is refused naming the
 * field, with nothing half-read. */
#include "tests/support/support.h"
#include "reconcile/report_json.h"
#include "reconcile/internal.h"
#include "reconcile/closure.h"
#include "util/error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void fill(tend_reconcile_report *r)
{
	memset(r, 0, sizeof(*r));
	r->outcome = TEND_RECONCILE_ROLLED_BACK;
	memcpy(r->commit, "0123456789abcdef0123456789abcdef01234567", 41);
	memcpy(r->applied_commit, "89abcdef0123456789abcdef0123456789abcdef", 41);
	r->message = strdup("probe web: HTTP 500 (expected 200); rolled back");
	r->probe_output = strdup("line one\nline \"two\"\ttabbed \xc3\xa9\n");
	r->failed_probe = strdup("web: http http://127.0.0.1:8080/");
	r->generation_before = 41;
	r->generation_after = 43;
	r->system_before = strdup("/nix/store/aaaa-nixos-system-web1");
	r->system_after = NULL;   /* stays NULL */
	assert_int_equal(tend_plan_add(&r->plan, TEND_ACTION_WRITE_FILE, "web", "/etc/traefik/tend.yml",
				       "0000", "1111", "changed"), 0);
	assert_int_equal(tend_plan_add(&r->plan, TEND_ACTION_SWITCH, NULL, NULL, NULL,
				       "/nix/store/bbbb-nixos-system-web1", NULL), 0);
	assert_int_equal(tend_plan_add(&r->plan, TEND_ACTION_PROBE, "web", NULL, NULL, NULL, NULL), 0);
	/* the switch's closure diff */
	{
		char *before[] = { "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nginx-1.24.0" };
		char *after[] = { "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nginx-1.26.1" };
		tend_closure_diff *d = calloc(1, sizeof(*d));

		assert_int_equal(tend_closure_diff_packages(d, before, 1, after, 1), 0);
		r->plan.items[1].closure = d;
	}
	r->n_services = 2;
	r->services = calloc(2, sizeof(*r->services));
	r->services[0].service = strdup("db");
	r->services[0].health = TEND_HEALTH_HEALTHY;
	r->services[0].probe = strdup("tcp 127.0.0.1:5432");
	r->services[0].checked_at = 1767323045;
	r->services[1].service = strdup("web");
	r->services[1].health = TEND_HEALTH_FAILING;
	r->services[1].probe = NULL;
	r->planned_beside_agent = 1;
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void test_round_trip(void **state)
{
	tend_reconcile_report in, out;
	json_t *j, *j2, *parsed;
	char *text;
	size_t i;

	(void)state;
	fill(&in);
	j = tend_reconcile_report_to_json(&in);
	assert_non_null(j);
	/* Through text, as across the pipe. */
	text = json_dumps(j, JSON_COMPACT);
	parsed = json_loads(text, 0, NULL);
	assert_non_null(parsed);
	assert_int_equal(tend_reconcile_report_from_json(&out, parsed), 0);
	assert_int_equal(out.outcome, in.outcome);
	assert_string_equal(out.commit, in.commit);
	assert_string_equal(out.applied_commit, in.applied_commit);
	assert_string_equal(out.message, in.message);
	assert_string_equal(out.probe_output, in.probe_output);
	assert_string_equal(out.failed_probe, in.failed_probe);
	assert_int_equal(out.generation_before, 41);
	assert_int_equal(out.generation_after, 43);
	assert_string_equal(out.system_before, in.system_before);
	assert_null(out.system_after);
	assert_int_equal(out.plan.count, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(out.plan.items[i].kind, in.plan.items[i].kind);
		assert_str_or_null(out.plan.items[i].service, in.plan.items[i].service);
		assert_str_or_null(out.plan.items[i].path, in.plan.items[i].path);
		assert_str_or_null(out.plan.items[i].from, in.plan.items[i].from);
		assert_str_or_null(out.plan.items[i].to, in.plan.items[i].to);
		assert_str_or_null(out.plan.items[i].reason, in.plan.items[i].reason);
	}
	/* The plan reads as the original does (what `tend plan` would print). */
	{
		char *a = tend_plan_format(&in.plan), *b = tend_plan_format(&out.plan);

		assert_non_null(strstr(b, "switch system (none) -> /nix/store/bbbb-nixos-system-web1\n"
				       "  package nginx 1.24.0 -> 1.26.1\n"));
		assert_string_equal(a, b);
		free(a);
		free(b);
	}
	assert_int_equal(out.n_services, 2);
	assert_string_equal(out.services[0].service, "db");
	assert_int_equal(out.services[0].health, TEND_HEALTH_HEALTHY);
	assert_string_equal(out.services[0].probe, "tcp 127.0.0.1:5432");
	assert_int_equal(out.services[0].checked_at, 1767323045);
	assert_string_equal(out.services[1].service, "web");
	assert_int_equal(out.services[1].health, TEND_HEALTH_FAILING);
	assert_null(out.services[1].probe);
	assert_int_equal(out.planned_beside_agent, 1);
	/* And back again: the same document. */
	j2 = tend_reconcile_report_to_json(&out);
	assert_true(json_equal(j, j2));
	json_decref(j);
	json_decref(j2);
	json_decref(parsed);
	free(text);
	tend_reconcile_report_dispose(&in);
	tend_reconcile_report_dispose(&out);
}

/* Every outcome by name, and an empty report (a failed fetch: no commit). */
static void test_outcomes_and_empty(void **state)
{
	tend_reconcile_report in, out;
	int o;

	(void)state;
	for (o = TEND_RECONCILE_NOTHING; o <= TEND_RECONCILE_BLOCKED; o++) {
		json_t *j;

		memset(&in, 0, sizeof(in));
		in.outcome = (tend_reconcile_outcome)o;
		j = tend_reconcile_report_to_json(&in);
		assert_string_equal(json_string_value(json_object_get(j, "outcome")),
				    tend_reconcile_outcome_name((tend_reconcile_outcome)o));
		assert_int_equal(tend_reconcile_report_from_json(&out, j), 0);
		assert_int_equal(out.outcome, o);
		assert_string_equal(out.commit, "");
		assert_null(out.message);
		assert_int_equal(out.plan.count, 0);
		assert_int_equal(out.n_services, 0);
		assert_null(out.services);
		tend_reconcile_report_dispose(&out);
		json_decref(j);
	}
	assert_int_equal(tend_reconcile_outcome_parse("rolled-back"), TEND_RECONCILE_ROLLED_BACK);
	assert_int_equal(tend_reconcile_outcome_parse("rolled_back"), -1);
}

/* A field that does not fit: refused, the field named, out left empty. */
static void expect_refused(const char *key, json_t *value, const char *field)
{
	tend_reconcile_report in, out;
	json_t *j;

	fill(&in);
	j = tend_reconcile_report_to_json(&in);
	json_object_set_new(j, key, value);
	assert_int_equal(tend_reconcile_report_from_json(&out, j), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), field));
	assert_null(out.message);
	assert_int_equal(out.plan.count, 0);
	assert_null(out.services);
	json_decref(j);
	tend_reconcile_report_dispose(&in);
}

static void test_refuses_what_does_not_fit(void **state)
{
	(void)state;
	expect_refused("outcome", json_string("exploded"), "'outcome'");
	expect_refused("commit", json_string("0123456789abcdef0123456789abcdef012345678"), "'commit'");
	expect_refused("message", json_integer(3), "'message'");
	expect_refused("generation_after", json_string("43"), "'generation_after'");
	expect_refused("plan", json_pack("[{s:s}]", "action", "reboot"), "'plan'");
	expect_refused("plan", json_object(), "'plan'");
	expect_refused("services", json_pack("[{s:s, s:s, s:I}]", "service", "web", "health", "meh",
					     "checked_at", (json_int_t)0), "'health'");
	expect_refused("planned_beside_agent", json_integer(1), "'planned_beside_agent'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_outcomes_and_empty),
		cmocka_unit_test(test_refuses_what_does_not_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
