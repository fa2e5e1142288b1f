/* tend reconcile --once, tend rollback and tend history: one converge of this
 * host, a hand-driven return to an earlier generation, and the record of past
 * reconciles from the state file. */
#include "agent/cli.h"
#include "agent/config.h"
#include "reconcile/reconcile.h"
#include "state/state.h"
#include "util/error.h"
#include "util/text.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* A label, then text with every line indented under it. */
/* Everything printed from a report or the history passes through here or
 * print_indented: a message, a probe's output or a peer's error may hold
 * terminal escapes (a probed body), stripped (util/text.h). s may be NULL. */
static void print_clean(const char *prefix, const char *s, const char *suffix)
{
	char *clean = tend_text_clean_dup(s ? s : "", 0);

	printf("%s%s%s", prefix, clean ? clean : "", suffix);
	free(clean);
}

static void print_indented(const char *label, const char *raw)
{
	char *text = tend_text_clean_dup(raw, 1);
	const char *p = text ? text : "";

	printf("%s\n", label);
	while (*p) {
		size_t n = strcspn(p, "\n");
		printf("      %.*s\n", (int)n, p);
		p += n;
		if (*p)
			p++;
	}
	free(text);
}

static void print_report(const tend_config *cfg, const tend_reconcile_report *rep)
{
	printf("%s: %s: ", cfg->host, tend_reconcile_outcome_name(rep->outcome));
	print_clean("", rep->message, "\n");
	if (rep->failed_probe)
		print_clean("  failing probe: ", rep->failed_probe, "\n");
	if (rep->probe_output && *rep->probe_output)
		print_indented("  probe output:", rep->probe_output);
}

static int exit_code(const tend_reconcile_report *rep)
{
	return rep->outcome == TEND_RECONCILE_NOTHING || rep->outcome == TEND_RECONCILE_APPLIED ||
	       rep->outcome == TEND_RECONCILE_REBOOT_REQUIRED
		? TEND_EXIT_OK : TEND_EXIT_ERROR;
}

int tend_cmd_reconcile(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "config", required_argument, NULL, 'c' },
		{ "retry", no_argument, NULL, 'r' },
		{ "allow-non-fast-forward", no_argument, NULL, 'f' },
		{ "now", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	tend_reconcile_opts ro = TEND_RECONCILE_OPTS_INIT;
	tend_reconcile_report rep;
	tend_config *cfg = NULL;
	const char *config = NULL;
	int once = 0, c, code = TEND_EXIT_ERROR;

	optind = 1;
	while ((c = getopt_long(argc, argv, "oc:rfnh", opts, NULL)) != -1) {
		switch (c) {
		case 'o': once = 1; break;
		case 'c': config = optarg; break;
		case 'n': ro.now = 1; break;
		case 'r': ro.retry = 1; break;
		case 'f': ro.allow_non_fast_forward = 1; break;
		case 'h': return tend_cli_usage("reconcile", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("reconcile", stderr, TEND_EXIT_ERROR);
		}
	}
	if (!once) {
		tend_cli_error("reconcile: --once is required (the agent loop is 'tend run')");
		return tend_cli_usage("reconcile", stderr, TEND_EXIT_ERROR);
	}
	if ((code = tend_cli_config_load(&cfg, "reconcile", config, optind != argc)) != TEND_EXIT_OK)
		return code;
	code = TEND_EXIT_ERROR;
	catch_stop_signals();
	ro.abort = &stop_requested;
	if (tend_reconcile_once(&rep, cfg, &ro) < 0) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	print_report(cfg, &rep);
	code = exit_code(&rep);
	tend_reconcile_report_dispose(&rep);
out:
	tend_config_free(cfg);
	return code;
}

int tend_cmd_rollback(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "to", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	tend_reconcile_opts ro = TEND_RECONCILE_OPTS_INIT;
	tend_reconcile_report rep;
	tend_config *cfg = NULL;
	const char *config = NULL;
	long generation = 0;
	char *end;
	int c, code = TEND_EXIT_ERROR;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 't':
			errno = 0;
			generation = strtol(optarg, &end, 10);
			if (errno || *end || generation <= 0) {
				tend_cli_error("rollback: --to wants a generation number, got '%s'", optarg);
				return TEND_EXIT_ERROR;
			}
			break;
		case 'h': return tend_cli_usage("rollback", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("rollback", stderr, TEND_EXIT_ERROR);
		}
	}
	if ((code = tend_cli_config_load(&cfg, "rollback", config, optind != argc)) != TEND_EXIT_OK)
		return code;
	code = TEND_EXIT_ERROR;
	catch_stop_signals();
	ro.abort = &stop_requested;
	if (tend_reconcile_rollback(&rep, cfg, generation, &ro) < 0) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	print_report(cfg, &rep);
	code = exit_code(&rep);
	tend_reconcile_report_dispose(&rep);
out:
	tend_config_free(cfg);
	return code;
}

int tend_cmd_resume(int argc, char **argv)
{
	tend_config *cfg = NULL;
	int code = tend_cli_config_only(&cfg, "resume", "resume", argc, argv);

	if (!cfg)
		return code;
	if (tend_reconcile_resume(cfg) < 0) {
		tend_cli_error("resume: %s", tend_error_last());
		code = TEND_EXIT_ERROR;
	} else {
		printf("%s: the hold is lifted: the next reconcile switches to the applied commit's "
		       "system again\n", cfg->host);
	}
	tend_config_free(cfg);
	return code;
}

static void fmt_time(char *dst, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) || !strftime(dst, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(dst, size, "-");
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int history_json(const tend_state *st, size_t first)
{
	json_t *arr = json_array();
	size_t i;

	for (i = st->n_history; i-- > first;) {
		const tend_state_history *h = &st->history[i];
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:o}",
			"commit", h->commit, "start", (json_int_t)h->start, "end", (json_int_t)h->end,
			"outcome", jstr(h->outcome), "message", jstr(h->message),
			"failed_probe", jstr(h->failed_probe), "probe_output", jstr(h->probe_output),
			"system_before", jstr(h->system_before), "system_after", jstr(h->system_after),
			"generation_before", (json_int_t)h->generation_before,
			"generation_after", (json_int_t)h->generation_after,
			"rollback_target", jstr(h->rollback_target), "switch_output", jstr(h->switch_output),
			"changes", jstr(h->changes)));
	}
	return tend_cli_print_json(arr);
}

int tend_cmd_history(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	tend_config *cfg = NULL;
	tend_state *st = NULL;
	const char *config = NULL;
	long limit = 0;
	size_t first = 0, i;
	char *end;
	int json = 0, c, code = TEND_EXIT_ERROR;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:jn:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'j': json = 1; break;
		case 'n':
			limit = strtol(optarg, &end, 10);
			if (*end || limit <= 0) {
				tend_cli_error("history: --limit wants a positive number, got '%s'", optarg);
				return TEND_EXIT_ERROR;
			}
			break;
		case 'h': return tend_cli_usage("history", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("history", stderr, TEND_EXIT_ERROR);
		}
	}
	if ((code = tend_cli_config_load(&cfg, "history", config, optind != argc)) != TEND_EXIT_OK)
		return code;
	code = TEND_EXIT_ERROR;
	if (tend_state_load(&st, cfg->state_dir) < 0) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	if (limit && (size_t)limit < st->n_history)
		first = st->n_history - (size_t)limit;
	if (json) {
		if (history_json(st, first) < 0)
			goto out;
	} else {
		if (st->n_history == 0)
			printf("%s: no reconciles yet\n", cfg->host);
		for (i = st->n_history; i-- > first;) {
			const tend_state_history *h = &st->history[i];
			char when[32];
			char *outcome = tend_text_clean_dup(h->outcome ? h->outcome : "?", 0);

			fmt_time(when, sizeof(when), h->start);
			printf("%s  %.12s  %-15s gen %ld -> %ld  ", when, h->commit,
			       outcome ? outcome : "?", h->generation_before, h->generation_after);
			free(outcome);
			print_clean("", h->message, "\n");
			if (h->failed_probe)
				print_clean("    failing probe: ", h->failed_probe, "\n");
			if (h->probe_output && *h->probe_output)
				print_indented("    probe output:", h->probe_output);
			if (h->rollback_target)
				print_clean("    rolled back to: ", h->rollback_target, "\n");
			if (h->changes)
				print_indented("    changes:", h->changes);
		}
	}
	code = TEND_EXIT_OK;
out:
	tend_state_free(st);
	tend_config_free(cfg);
	return code;
}
