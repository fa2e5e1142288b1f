/* `tend worker`: internal, run by `tend run` (agent/worker.c), never by hand.
 * One reconcile or one dependency check with the configuration document the
 * supervisor adopted (read from stdin, parsed against the directory given),
 * the answer as one JSON document on stdout. SIGTERM and SIGINT stop it as
 * they stop `tend reconcile --once`: it finishes or undoes, records its
 * state, answers and exits. Decrypted secrets only ever exist here. */
#include "agent/cli.h"
#include "agent/config.h"
#include "agent/fleet_status.h"
#include "manifest/manifest.h"
#include "reconcile/report_json.h"
#include "source/source.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* As agent/config.c's cap on a configuration file. */
#define CONFIG_MAX (256u * 1024)

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* The supervisor spawns us with SIGTERM and SIGINT blocked: take them over,
 * then let any that arrived meanwhile through. SIGHUP is the supervisor's
 * (configuration reload): a terminal hang-up must not kill a switch midway. */
static void catch_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static int read_config(tend_config **out, const char *name, const char *base)
{
	tend_buf b = TEND_BUF_INIT;
	char chunk[8192];
	int error = TEND_ERROR;

	b.max = CONFIG_MAX;
	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tend_error_set_errno("worker: cannot read the configuration from stdin");
			goto out;
		}
		if (n == 0)
			break;
		if ((error = tend_buf_put(&b, chunk, (size_t)n)) < 0) {
			tend_error_set("%s: larger than %u KiB", name, CONFIG_MAX / 1024);
			goto out;
		}
		error = TEND_ERROR;
	}
	error = tend_config_parse(out, name, b.ptr ? b.ptr : "", b.size, base);
out:
	tend_buf_dispose(&b);
	return error;
}

/* Hosts this host depends on at commit: READY when none or all run it. */
static int deps_check(tend_deps_verdict *v, char **reason, const tend_config *cfg,
		      const char *commit)
{
	char *mirror = tend_path_join(cfg->state_dir, "mirror"), *tmp = NULL;
	tend_manifest *m = NULL;
	tend_diags diags;
	int error = TEND_ERROR;

	memset(&diags, 0, sizeof(diags));
	*v = TEND_DEPS_READY;
	*reason = NULL;
	if (!mirror || asprintf(&tmp, "%s/agent-deps.XXXXXX", cfg->state_dir) < 0 || !mkdtemp(tmp)) {
		tend_error_set_errno("cannot create a directory under %s", cfg->state_dir);
		goto out;
	}
	if ((error = tend_source_export_commit(mirror, commit, tmp)) < 0 ||
	    (error = tend_manifest_load(&m, &diags, tmp)) < 0)
		goto out;
	error = tend_fleet_deps_check(v, reason, m, cfg->host, commit, mirror, 3000);
out:
	if (tmp)
		tend_dir_remove_all(tmp);
	free(tmp);
	free(mirror);
	tend_manifest_free(m);
	tend_diags_dispose(&diags);
	return error;
}

static const char *verdict_name(tend_deps_verdict v)
{
	switch (v) {
	case TEND_DEPS_READY: return "ready";
	case TEND_DEPS_WAITING: return "waiting";
	case TEND_DEPS_BLOCKED: return "blocked";
	}
	return "unknown";
}

/* The answer: {"return": code, "error": message or null, ...}. One line. */
static int answer(json_t *doc, int error)
{
	char *text;
	int rc = TEND_EXIT_ERROR;

	if (!doc)
		return TEND_EXIT_ERROR;
	json_object_set_new(doc, "return", json_integer(error));
	json_object_set_new(doc, "error", error < 0 ? json_string(tend_error_last()) : json_null());
	if ((text = json_dumps(doc, JSON_COMPACT))) {
		if (fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0)
			rc = TEND_EXIT_OK;
		free(text);
	}
	json_decref(doc);
	return rc;
}

int tend_cmd_worker(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "base", required_argument, NULL, 'b' },
		{ "plan-only", no_argument, NULL, 'p' },
		{ "settle-unchanged", no_argument, NULL, 's' },
		{ "no-fetch", no_argument, NULL, 'n' },
		{ "retry", no_argument, NULL, 'r' },
		{ "allow-non-fast-forward", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	tend_reconcile_opts ro = TEND_RECONCILE_OPTS_INIT;
	const char *config = NULL, *base = NULL, *what;
	tend_config *cfg = NULL;
	json_t *doc = json_object();
	int c, error;

	catch_signals();
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:b:psnrfh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'b': base = optarg; break;
		case 'p': ro.plan_only = 1; break;
		case 's': ro.settle_unchanged = 1; break;
		case 'n': ro.no_fetch = 1; break;
		case 'r': ro.retry = 1; break;
		case 'f': ro.allow_non_fast_forward = 1; break;
		case 'h': json_decref(doc); return tend_cli_usage("worker", stdout, TEND_EXIT_OK);
		default: json_decref(doc); return tend_cli_usage("worker", stderr, TEND_EXIT_ERROR);
		}
	}
	what = optind < argc ? argv[optind] : "";
	if (!config || !base || base[0] != '/' ||
	    !((!strcmp(what, "reconcile") && optind + 1 == argc) ||
	      (!strcmp(what, "deps") && optind + 2 == argc))) {
		json_decref(doc);
		tend_cli_error("worker: internal to 'tend run'; not for use by hand");
		return tend_cli_usage("worker", stderr, TEND_EXIT_ERROR);
	}
	if ((error = read_config(&cfg, config, base)) < 0)
		return answer(doc, error);
	if (!strcmp(what, "reconcile")) {
		tend_reconcile_report rep;

		ro.abort = &stop_requested;
		error = tend_reconcile_once(&rep, cfg, &ro);
		/* On an error too: the commit it got to tells a failed fetch from a failed reconcile. */
		if (json_object_set_new(doc, "report", tend_reconcile_report_to_json(&rep)) < 0) {
			json_decref(doc);
			doc = NULL;
		}
		tend_reconcile_report_dispose(&rep);
	} else {
		tend_deps_verdict v;
		char *reason = NULL;

		if ((error = deps_check(&v, &reason, cfg, argv[optind + 1])) == 0) {
			json_object_set_new(doc, "verdict", json_string(verdict_name(v)));
			json_object_set_new(doc, "reason", reason ? json_string(reason) : json_null());
		}
		free(reason);
	}
	tend_config_free(cfg);
	return answer(doc, error);
}
