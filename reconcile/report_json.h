/* The reconcile report as a JSON document and back: how the agent's worker
 * process (agent/worker.c) hands a whole tend_reconcile_report to the
 * long-running supervisor, which maps it onto status, logs and alerts. */
#ifndef TEND_RECONCILE_REPORT_JSON_H
#define TEND_RECONCILE_REPORT_JSON_H

#include "reconcile/reconcile.h"

struct json_t;

/* Every field of r as one JSON object (outcome and actions by name). NULL
 * when out of memory (the error is set). */
struct json_t *tend_reconcile_report_to_json(const tend_reconcile_report *r);

/* The report back from what tend_reconcile_report_to_json made (out is
 * disposed with tend_reconcile_report_dispose). 0, or TEND_EINVALID with the
 * error naming the field and out left empty. */
int tend_reconcile_report_from_json(tend_reconcile_report *out, const struct json_t *j);

/* tend_reconcile_outcome_name backwards: -1 for an unknown name. */
int tend_reconcile_outcome_parse(const char *name);

#endif
