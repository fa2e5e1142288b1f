/* tend run (the agent) and tend status (this host's agent, or every host's
 * with --fleet, asked over HTTP). */
#include "agent/agent.h"
#include "agent/cli.h"
#include "agent/mem.h"
#include "agent/config.h"
#include "agent/fleet_status.h"
#include "agent/log.h"
#include "manifest/manifest.h"
#include "source/source.h"
#include "state/state.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/text.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tend_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = NULL;
	tend_agent *a = NULL;
	int check = 0, c, code = TEND_EXIT_ERROR;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'n': check = 1; break;
		case 'h': return tend_cli_usage("run", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("run", stderr, TEND_EXIT_ERROR);
		}
	}
	if (!config || optind != argc) {
		tend_cli_error("run: --config FILE is required");
		return tend_cli_usage("run", stderr, TEND_EXIT_ERROR);
	}
	if (check) {
		if (tend_agent_check_config(config) < 0) {
			tend_cli_error("%s", tend_error_last());
			return TEND_EXIT_ERROR;
		}
		printf("%s: configuration ok\n", config);
		return TEND_EXIT_OK;
	}
	tend_log_init();
	tend_agent_mem_init();   /* before the agent starts its threads */
	if (tend_agent_open(&a, config) < 0 || tend_agent_set_args(a, argc, argv) < 0 ||
	    tend_agent_run(a) < 0) {
		tend_log(TEND_LOG_ERR, "%s", tend_error_last());
		goto out;
	}
	code = TEND_EXIT_OK;
out:
	tend_agent_free(a);
	return code;
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* A peer's fields are stripped when fetched (agent/fleet_status.c); this
 * host's own status too, through the same fetch. Stripped again here so no
 * path to the table can print an escape. */
static void print_row(const tend_fleet_host_status *st)
{
	char gen[32] = "-";
	char *phase = tend_text_clean_dup(st->reachable ? st->phase : "unreachable", 0);
	char *applied = tend_text_clean_dup(or_dash(st->applied_commit), 0);
	char *target = tend_text_clean_dup(or_dash(st->target_commit), 0);
	char *err = tend_text_clean_dup(st->reachable ? or_dash(st->last_error) : or_dash(st->error), 0);

	if (st->generation >= 0)
		snprintf(gen, sizeof(gen), "%lld", st->generation);
	printf("%-16s %-22s %-15s %-12.12s %-12.12s %-5s %-6s %s\n", st->host, st->address,
	       or_dash(phase), or_dash(applied), or_dash(target), gen,
	       !st->reachable ? "-" : st->reboot_required ? "yes" : "no", or_dash(err));
	free(phase);
	free(applied);
	free(target);
	free(err);
}

static json_t *row_json(const tend_fleet_host_status *st)
{
	json_t *o = json_object();

	json_object_set_new(o, "host", json_string(st->host));
	json_object_set_new(o, "address", json_string(st->address));
	json_object_set_new(o, "port", json_integer(st->port));
	json_object_set_new(o, "reachable", json_boolean(st->reachable));
	json_object_set_new(o, "phase", st->phase ? json_string(st->phase) : json_null());
	json_object_set_new(o, "applied_commit", st->applied_commit ? json_string(st->applied_commit) : json_null());
	json_object_set_new(o, "target_commit", st->target_commit ? json_string(st->target_commit) : json_null());
	json_object_set_new(o, "generation", st->generation >= 0 ? json_integer(st->generation) : json_null());
	json_object_set_new(o, "reboot_required", json_boolean(st->reboot_required));
	json_object_set_new(o, "last_error", st->last_error ? json_string(st->last_error) : json_null());
	json_object_set_new(o, "error", st->error ? json_string(st->error) : json_null());
	return o;
}

/* The fleet as this host last applied it (its mirror at the applied commit). */
static int load_fleet(tend_manifest **out, const tend_config *cfg)
{
	tend_state *st = NULL;
	tend_diags diags;
	char *mirror = tend_path_join(cfg->state_dir, "mirror"), *tmp = NULL, head[41];
	const char *rev;
	int error = TEND_ERROR;

	memset(&diags, 0, sizeof(diags));
	*out = NULL;
	if ((error = tend_state_load(&st, cfg->state_dir)) < 0)
		goto out;
	rev = st->applied_commit[0] ? st->applied_commit : NULL;
	if (!rev) {
		if ((error = tend_source_resolve(head, mirror, cfg->repository.branch)) < 0) {
			tend_error_set("%s: nothing applied or fetched yet; run the agent first", cfg->state_dir);
			goto out;
		}
		rev = head;
	}
	error = TEND_ERROR;
	if (asprintf(&tmp, "%s/status-fleet.XXXXXX", cfg->state_dir) < 0 || !mkdtemp(tmp)) {
		tend_error_set_errno("cannot create a directory under %s", cfg->state_dir);
		goto out;
	}
	if ((error = tend_source_export_commit(mirror, rev, tmp)) < 0 ||
	    (error = tend_manifest_load(out, &diags, tmp)) < 0)
		goto out;
out:
	if (tmp)
		tend_dir_remove_all(tmp);
	free(tmp);
	free(mirror);
	tend_diags_dispose(&diags);
	tend_state_free(st);
	return error;
}

int tend_cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "fleet", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = NULL;
	tend_config *cfg = NULL;
	tend_manifest *m = NULL;
	json_t *rows = NULL;
	int fleet = 0, json = 0, c, code = TEND_EXIT_ERROR, all_ok = 1;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:fjh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'f': fleet = 1; break;
		case 'j': json = 1; break;
		case 'h': return tend_cli_usage("status", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("status", stderr, TEND_EXIT_ERROR);
		}
	}
	if ((code = tend_cli_config_load(&cfg, "status", config, optind != argc)) != TEND_EXIT_OK)
		return code;
	code = TEND_EXIT_ERROR;
	if (fleet && load_fleet(&m, cfg) < 0) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	rows = json_array();
	if (!json)
		printf("%-16s %-22s %-15s %-12s %-12s %-5s %-6s %s\n", "HOST", "ADDRESS", "PHASE",
		       "APPLIED", "TARGET", "GEN", "REBOOT", "LAST ERROR");
	for (i = 0; i < (fleet ? m->n_hosts : 1); i++) {
		tend_fleet_host_status st;
		char addr[300];

		if (fleet) {
			const tend_host *h = &m->hosts[i];

			tend_fleet_status_fetch(&st, h->name, h->address,
						h->agent_port ? h->agent_port : m->agent_port, 3000);
			snprintf(addr, sizeof(addr), "%s:%d", h->address, st.port);
		} else {
			tend_fleet_status_fetch(&st, cfg->host, cfg->listen.address, cfg->listen.port, 3000);
			snprintf(addr, sizeof(addr), "%s:%d", cfg->listen.address, cfg->listen.port);
		}
		free(st.address);
		st.address = strdup(addr);
		all_ok &= st.reachable && !strcmp(st.phase, "converged");
		if (json)
			json_array_append_new(rows, row_json(&st));
		else
			print_row(&st);
		tend_fleet_host_status_dispose(&st);
	}
	if (json) {
		char *text = json_dumps(fleet ? rows : json_array_get(rows, 0), JSON_INDENT(2));

		if (text)
			printf("%s\n", text);
		free(text);
	}
	/* Like a health check: 0 only when every host answered and converged. */
	code = all_ok ? TEND_EXIT_OK : TEND_EXIT_ERROR;
out:
	json_decref(rows);
	tend_manifest_free(m);
	tend_config_free(cfg);
	return code;
}
