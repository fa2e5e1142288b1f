/* tend_reconcile_report <-> JSON, field for field, so that a report crosses
 * a process boundary (the agent's worker, agent/worker.c) unchanged. Reading
 * is strict: a document from another tend build that does not fit is refused
 * with the field named, never half-read. */
#include "reconcile/report_json.h"
#include "reconcile/internal.h"
#include "reconcile/closure.h"
#include "util/error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The same names as `tend plan --json` (reconcile/plan.c). */
static const char *const kind_names[] = {
	"", "write_file", "remove_file", "install_secret", "remove_secret", "restart_unit",
	"switch", "probe"
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

int tend_reconcile_outcome_parse(const char *name)
{
	int o;

	for (o = TEND_RECONCILE_NOTHING; o <= TEND_RECONCILE__LAST; o++)
		if (!strcmp(name, tend_reconcile_outcome_name((tend_reconcile_outcome)o)))
			return o;
	return -1;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* json_object_set_new that remembers a failure (NULL value: out of memory). */
static void put(json_t *o, const char *key, json_t *v, int *failed)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		*failed = 1;
}

static json_t *action_json(const tend_action *a, int *failed)
{
	json_t *o = json_object();

	if (!o || (unsigned)a->kind >= N_KINDS || a->kind == 0) {
		json_decref(o);
		*failed = 1;
		return NULL;
	}
	put(o, "action", json_string(kind_names[a->kind]), failed);
	put(o, "service", str_or_null(a->service), failed);
	put(o, "path", str_or_null(a->path), failed);
	put(o, "from", str_or_null(a->from), failed);
	put(o, "to", str_or_null(a->to), failed);
	put(o, "reason", str_or_null(a->reason), failed);
	if (a->closure)
		put(o, "closure", tend_closure_diff_to_json(a->closure), failed);
	return o;
}

static json_t *health_json(const tend_service_health *h, int *failed)
{
	json_t *o = json_object();

	if (!o) {
		*failed = 1;
		return NULL;
	}
	put(o, "service", str_or_null(h->service), failed);
	put(o, "health", json_string(tend_health_name(h->health)), failed);
	put(o, "probe", str_or_null(h->probe), failed);
	put(o, "checked_at", json_integer((json_int_t)h->checked_at), failed);
	return o;
}

json_t *tend_reconcile_report_to_json(const tend_reconcile_report *r)
{
	json_t *o = json_object(), *plan = json_array(), *svcs = json_array();
	int failed = !o || !plan || !svcs;
	size_t i;

	for (i = 0; !failed && i < r->plan.count; i++)
		if (json_array_append_new(plan, action_json(&r->plan.items[i], &failed)) < 0)
			failed = 1;
	for (i = 0; !failed && i < r->n_services; i++)
		if (json_array_append_new(svcs, health_json(&r->services[i], &failed)) < 0)
			failed = 1;
	if (!failed) {
		put(o, "outcome", json_string(tend_reconcile_outcome_name(r->outcome)), &failed);
		put(o, "commit", json_string(r->commit), &failed);
		put(o, "applied_commit", json_string(r->applied_commit), &failed);
		put(o, "message", str_or_null(r->message), &failed);
		put(o, "probe_output", str_or_null(r->probe_output), &failed);
		put(o, "failed_probe", str_or_null(r->failed_probe), &failed);
		put(o, "generation_before", json_integer(r->generation_before), &failed);
		put(o, "generation_after", json_integer(r->generation_after), &failed);
		put(o, "system_before", str_or_null(r->system_before), &failed);
		put(o, "system_after", str_or_null(r->system_after), &failed);
		put(o, "plan", json_incref(plan), &failed);
		put(o, "services", json_incref(svcs), &failed);
		put(o, "planned_beside_agent", json_boolean(r->planned_beside_agent), &failed);
		put(o, "reboot_required", json_boolean(r->reboot_required), &failed);
		put(o, "switched", json_boolean(r->switched), &failed);
		put(o, "window_opens", json_integer(r->window_opens), &failed);
	}
	json_decref(plan);
	json_decref(svcs);
	if (failed) {
		json_decref(o);
		tend_error_set("reconcile report: out of memory");
		return NULL;
	}
	return o;
}

/* ---- reading ---- */

static int bad(const char *field, const char *what)
{
	tend_error_set("reconcile report: '%s' %s", field, what);
	return TEND_EINVALID;
}

/* An optional string: NULL stays NULL. */
static int get_str(char **out, const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bad(key, "is not a string");
	if (!(*out = strdup(json_string_value(v)))) {
		tend_error_set("reconcile report: out of memory");
		return TEND_ERROR;
	}
	return 0;
}

/* A commit id field: "" or up to 40 characters. */
static int get_commit(char out[41], const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	const char *s;

	out[0] = '\0';
	if (!v || !json_is_string(v))
		return bad(key, "is not a string");
	s = json_string_value(v);
	if (strlen(s) > 40)
		return bad(key, "is longer than a commit id");
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int get_int(long long *out, const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (!v || !json_is_integer(v))
		return bad(key, "is not an integer");
	*out = json_integer_value(v);
	return 0;
}

static int action_from_json(tend_plan *plan, const json_t *a)
{
	const char *kind = json_string_value(json_object_get(a, "action"));
	char *s[5] = { NULL, NULL, NULL, NULL, NULL };
	static const char *const keys[5] = { "service", "path", "from", "to", "reason" };
	size_t k;
	int error = TEND_EINVALID, i;

	if (!json_is_object(a))
		return bad("plan", "holds something that is not an object");
	for (k = 1; kind && k < N_KINDS; k++)
		if (!strcmp(kind, kind_names[k]))
			break;
	if (!kind || k == N_KINDS)
		return bad("plan", "names an unknown action");
	for (i = 0; i < 5; i++)
		if ((error = get_str(&s[i], a, keys[i])) < 0)
			goto out;
	if ((error = tend_plan_add(plan, (tend_action_kind)k, s[0], s[1], s[2], s[3], s[4])) < 0)
		goto out;
	if (json_object_get(a, "closure") && !json_is_null(json_object_get(a, "closure")) &&
	    (error = tend_closure_diff_from_json(&plan->items[plan->count - 1].closure,
						 json_object_get(a, "closure"))) < 0)
		tend_error_prefix("report: plan: ");
out:
	for (i = 0; i < 5; i++)
		free(s[i]);
	return error;
}

static int health_from_json(tend_service_health *h, const json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "health"));
	long long at;
	int error;

	if (!json_is_object(o))
		return bad("services", "holds something that is not an object");
	if (!name)
		return bad("health", "is not a string");
	if (!strcmp(name, "healthy"))
		h->health = TEND_HEALTH_HEALTHY;
	else if (!strcmp(name, "failing"))
		h->health = TEND_HEALTH_FAILING;
	else if (!strcmp(name, "unknown"))
		h->health = TEND_HEALTH_UNKNOWN;
	else
		return bad("health", "is not healthy, failing or unknown");
	if ((error = get_str(&h->service, o, "service")) < 0 ||
	    (error = get_str(&h->probe, o, "probe")) < 0 ||
	    (error = get_int(&at, o, "checked_at")) < 0)
		return error;
	if (!h->service)
		return bad("service", "is missing");
	h->checked_at = (int64_t)at;
	return 0;
}

int tend_reconcile_report_from_json(tend_reconcile_report *out, const json_t *j)
{
	const json_t *plan, *svcs, *v;
	const char *name;
	long long gb, ga;
	size_t i, n;
	int o, error = TEND_EINVALID;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j))
		return bad("report", "is not an object");
	name = json_string_value(json_object_get(j, "outcome"));
	if (!name || (o = tend_reconcile_outcome_parse(name)) < 0) {
		error = bad("outcome", "is not a reconcile outcome");
		goto fail;
	}
	out->outcome = (tend_reconcile_outcome)o;
	if ((error = get_commit(out->commit, j, "commit")) < 0 ||
	    (error = get_commit(out->applied_commit, j, "applied_commit")) < 0 ||
	    (error = get_str(&out->message, j, "message")) < 0 ||
	    (error = get_str(&out->probe_output, j, "probe_output")) < 0 ||
	    (error = get_str(&out->failed_probe, j, "failed_probe")) < 0 ||
	    (error = get_int(&gb, j, "generation_before")) < 0 ||
	    (error = get_int(&ga, j, "generation_after")) < 0 ||
	    (error = get_str(&out->system_before, j, "system_before")) < 0 ||
	    (error = get_str(&out->system_after, j, "system_after")) < 0)
		goto fail;
	out->generation_before = (long)gb;
	out->generation_after = (long)ga;
	plan = json_object_get(j, "plan");
	svcs = json_object_get(j, "services");
	if (!json_is_array(plan) || !json_is_array(svcs)) {
		error = bad(json_is_array(plan) ? "services" : "plan", "is not an array");
		goto fail;
	}
	for (i = 0; i < json_array_size(plan); i++)
		if ((error = action_from_json(&out->plan, json_array_get(plan, i))) < 0)
			goto fail;
	if ((n = json_array_size(svcs)) > 0) {
		if (!(out->services = calloc(n, sizeof(*out->services)))) {
			tend_error_set("reconcile report: out of memory");
			error = TEND_ERROR;
			goto fail;
		}
		out->n_services = n;
		for (i = 0; i < n; i++)
			if ((error = health_from_json(&out->services[i], json_array_get(svcs, i))) < 0)
				goto fail;
	}
	v = json_object_get(j, "planned_beside_agent");
	if (!json_is_boolean(v)) {
		error = bad("planned_beside_agent", "is not true or false");
		goto fail;
	}
	out->planned_beside_agent = json_is_true(v);
	v = json_object_get(j, "reboot_required");
	if (v && !json_is_boolean(v)) {
		error = bad("reboot_required", "is not true or false");
		goto fail;
	}
	out->reboot_required = json_is_true(v);
	v = json_object_get(j, "switched");
	if (v && !json_is_boolean(v)) {
		error = bad("switched", "is not true or false");
		goto fail;
	}
	out->switched = json_is_true(v);
	v = json_object_get(j, "window_opens");
	if (v && !json_is_integer(v)) {
		error = bad("window_opens", "is not an integer");
		goto fail;
	}
	out->window_opens = v ? (int64_t)json_integer_value(v) : 0;
	return 0;
fail:
	tend_reconcile_report_dispose(out);
	return error;
}
