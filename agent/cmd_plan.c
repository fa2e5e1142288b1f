/* tend plan: fetch the branch head, prepare what it wants on this host
 * (render, build) and print the ordered actions a reconcile would take,
 * without changing the host. Exit 0 nothing to do, 2 changes, 1 error. */
#include "agent/cli.h"
#include "agent/config.h"
#include "reconcile/reconcile.h"
#include "util/error.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_json(const tend_config *cfg, const tend_reconcile_report *rep)
{
	json_t *root, *actions = NULL;
	char *text = tend_plan_format_json(&rep->plan);
	json_error_t jerr;

	if (text)
		actions = json_loads(text, 0, &jerr);
	free(text);
	root = json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:o}", "host", cfg->host,
			 "commit", rep->commit, "applied_commit",
			 rep->applied_commit[0] ? rep->applied_commit : NULL,
			 "outcome", tend_reconcile_outcome_name(rep->outcome),
			 "message", rep->message, "actions", actions ? actions : json_array());
	return tend_cli_print_json(root);
}

int tend_cmd_plan(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	tend_reconcile_opts ro = TEND_RECONCILE_OPTS_INIT;
	tend_reconcile_report rep;
	tend_config *cfg = NULL;
	const char *config = NULL;
	int json = 0, c, code = TEND_EXIT_ERROR;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'j': json = 1; break;
		case 'h': return tend_cli_usage("plan", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("plan", stderr, TEND_EXIT_ERROR);
		}
	}
	if ((code = tend_cli_config_load(&cfg, "plan", config, optind != argc)) != TEND_EXIT_OK)
		return code;
	code = TEND_EXIT_ERROR;
	ro.plan_only = 1;
	if (tend_reconcile_once(&rep, cfg, &ro) < 0) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	if (rep.planned_beside_agent)
		fprintf(stderr, "tend: note: the agent holds the state lock; planned from the mirror "
			"as it last fetched it\n");
	if (rep.outcome == TEND_RECONCILE_FAILED || rep.outcome == TEND_RECONCILE_REFUSED) {
		tend_cli_error("%s", rep.message ? rep.message : "plan failed");
		if (json)
			print_json(cfg, &rep);
		goto done;
	}
	if (json) {
		if (print_json(cfg, &rep) < 0)
			goto done;
	} else if (rep.outcome == TEND_RECONCILE_BLOCKED) {
		printf("%s: %s\n", cfg->host, rep.message);
	} else if (!rep.plan.count) {
		printf("%s: commit %.12s: nothing to do\n", cfg->host, rep.commit);
	} else {
		char *text = tend_plan_format(&rep.plan);
		printf("%s: commit %.12s (applied: %.12s): %zu action%s\n%s", cfg->host, rep.commit,
		       rep.applied_commit[0] ? rep.applied_commit : "none", rep.plan.count,
		       rep.plan.count == 1 ? "" : "s", text ? text : "");
		free(text);
	}
	code = rep.plan.count && rep.outcome == TEND_RECONCILE_PLANNED ? TEND_EXIT_CHANGES : TEND_EXIT_OK;
done:
	tend_reconcile_report_dispose(&rep);
out:
	tend_config_free(cfg);
	return code;
}
