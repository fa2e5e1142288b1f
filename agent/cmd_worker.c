/* `tend worker`: internal, run by `tend run` (agent/worker.c), never by hand.
 * One reconcile or one dependency check with the configuration document the
 * supervisor adopted (read from stdin, parsed against the directory given),
 * or one alert mail (its request on stdin); the answer is one JSON document
 * on stdout. SIGTERM and SIGINT stop it as they stop `tend reconcile --once`:
 * it finishes or undoes, records its state, answers and exits. Decrypted
 * secrets and the SMTP password only ever exist here. */
#include "agent/cli.h"
#include "agent/config.h"
#include "agent/fleet_status.h"
#include "agent/smtp.h"
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* As agent/config.c's cap on a configuration file. */
#define CONFIG_MAX (256u * 1024)
/* A mail's request: settings, a subject and a body of capped parts. */
#define MAIL_MAX (4u << 20)

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

/* All of stdin, up to max bytes. */
static int read_input(tend_buf *b, size_t max, const char *what)
{
	char chunk[8192];
	int error;

	b->max = max;
	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tend_error_set_errno("worker: cannot read %s from stdin", what);
			return TEND_ERROR;
		}
		if (n == 0)
			return 0;
		if ((error = tend_buf_put(b, chunk, (size_t)n)) < 0) {
			tend_error_set("%s: larger than %zu KiB", what, max / 1024);
			return error;
		}
	}
}

static int read_config(tend_config **out, const char *name, const char *base)
{
	tend_buf b = TEND_BUF_INIT;
	int error;

	if ((error = read_input(&b, CONFIG_MAX, name)) == 0)
		error = tend_config_parse(out, name, b.ptr ? b.ptr : "", b.size, base);
	tend_buf_dispose(&b);
	return error;
}

/* {"smtp": {...}, "subject": ..., "body": ...} -> tend_smtp_send. */
static int send_mail(void)
{
	tend_buf b = TEND_BUF_INIT;
	tend_smtp_opts o;
	const char **to = NULL;
	json_t *req = NULL, *list = NULL;
	json_error_t jerr;
	json_int_t timeout = 0;
	int allow_plain = 0, error;
	size_t i;

	memset(&o, 0, sizeof(o));
	memset(&jerr, 0, sizeof(jerr));
	if ((error = read_input(&b, MAIL_MAX, "the mail")) < 0)
		goto out;
	error = TEND_EINVALID;
	if (!(req = json_loadb(b.ptr ? b.ptr : "", b.size, 0, &jerr)) ||
	    json_unpack_ex(req, &jerr, 0, "{s:{s:s, s:s, s:o, s?:s, s?:s, s:b, s?:s, s:I}}", "smtp",
			   "url", &o.url, "from", &o.from, "to", &list, "username", &o.username,
			   "password_file", &o.password_file, "allow_plain", &allow_plain,
			   "ca_file", &o.ca_file, "timeout_ms", &timeout) < 0 ||
	    !json_is_array(list) || !json_string_value(json_object_get(req, "subject")) ||
	    !json_string_value(json_object_get(req, "body"))) {
		tend_error_set("worker: not a mail request%s%s", jerr.text[0] ? ": " : "", jerr.text);
		goto out;
	}
	o.n_to = json_array_size(list);
	if (!(to = calloc(o.n_to + 1, sizeof(*to)))) {
		error = TEND_ERROR;
		goto out;
	}
	for (i = 0; i < o.n_to; i++)
		if (!(to[i] = json_string_value(json_array_get(list, i)))) {
			tend_error_set("worker: not a mail request: 'to' holds a non-string");
			goto out;
		}
	o.to = to;
	o.allow_plain = allow_plain;
	o.timeout_ms = (long)timeout;
	error = tend_smtp_send(&o, json_string_value(json_object_get(req, "subject")),
			       json_string_value(json_object_get(req, "body")));
out:
	free(to);
	json_decref(req);
	tend_buf_dispose(&b);
	return error;
}

/* The manifests of commit, read from the mirror's objects: a host waiting for its
 * dependencies rechecks every few seconds, and the commit was validated whole already. */
static int manifest_at(tend_manifest **out, const tend_config *cfg, const char *commit)
{
	char *mirror = tend_path_join(cfg->state_dir, "mirror");
	tend_manifest_source *srcs = NULL;
	tend_source_doc fleet, *docs = NULL;
	tend_diags diags;
	size_t n = 0, i;
	int error = TEND_ERROR;

	memset(&diags, 0, sizeof(diags));
	memset(&fleet, 0, sizeof(fleet));
	*out = NULL;
	if (!mirror) {
		tend_error_set("out of memory");
		goto out;
	}
	if ((error = tend_source_read_manifests(&fleet, &docs, &n, mirror, commit)) < 0)
		goto out;
	error = TEND_ERROR;
	if (n && !(srcs = calloc(n, sizeof(*srcs)))) {
		tend_error_set("out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		srcs[i].name = docs[i].name;
		srcs[i].data = docs[i].data ? docs[i].data : "";
		srcs[i].len = docs[i].len;
	}
	error = tend_manifest_load_sources(out, &diags, fleet.data, fleet.len, srcs, n, NULL, NULL);
	if (error < 0 && diags.errors) {
		char *first = NULL;

		tend_diags_sort(&diags);
		for (i = 0; i < diags.count && !first; i++)
			if (diags.items[i].severity == TEND_DIAG_ERROR)
				first = tend_diag_format(&diags.items[i]);
		tend_error_set("commit %.12s: the manifests are invalid: %s", commit,
			       first ? first : "?");
		free(first);
	}
out:
	free(srcs);
	tend_source_docs_free(docs, n);
	free(fleet.data);
	free(mirror);
	tend_diags_dispose(&diags);
	return error;
}

/* Hosts this host depends on at commit: READY when none or all run it. */
static int deps_check(tend_deps_verdict *v, char **reason, const tend_config *cfg,
		      const char *commit)
{
	char *mirror = tend_path_join(cfg->state_dir, "mirror");
	tend_manifest *m = NULL;
	int error;

	*v = TEND_DEPS_READY;
	*reason = NULL;
	if ((error = manifest_at(&m, cfg, commit)) == 0)
		error = tend_fleet_deps_check(v, reason, m, cfg->host, commit, mirror, 3000);
	free(mirror);
	tend_manifest_free(m);
	return error;
}

/* What the fleet page shows of a peer's status document: no nested fleet, nothing else. */
static json_t *peer_view(const json_t *doc)
{
	static const char *const keep[] = { "phase", "applied_commit", "target_commit",
		"reboot_required", "last_error", "last_message", "generation", "last_reconcile",
		"changes", "history", "liveness", "services", NULL };
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && keep[i]; i++)
		if (json_object_get(doc, keep[i]))
			json_object_set(o, keep[i], json_object_get(doc, keep[i]));
	return o;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The fleet page's map: {"hosts": [{name, address, port, depends_on, reachable, error,
 * status}]}, every other host's agent asked for its status (this host's is live), 2 s each,
 * all within budget_ms: a run must not hold the agent's loop for long. */
static json_t *fleet_json(const tend_manifest *m, const char *self, int64_t budget_ms)
{
	int64_t end = mono_ms() + budget_ms;
	json_t *hosts = json_array();
	size_t i, k;

	for (i = 0; hosts && i < m->n_hosts; i++) {
		const tend_host *h = &m->hosts[i];
		int port = h->agent_port ? h->agent_port : m->agent_port;
		const char **deps = NULL;
		json_t *d = json_array(), *o;
		size_t n = 0;

		if (tend_manifest_host_deps(&deps, &n, m, h->name) == 0)
			for (k = 0; d && k < n; k++)
				json_array_append_new(d, json_string(deps[k]));
		free(deps);
		o = json_pack("{s:s, s:s, s:i, s:o}", "name", h->name, "address", h->address,
			      "port", port, "depends_on", d ? d : json_array());
		if (o && strcmp(h->name, self) && end - mono_ms() < 100) {
			json_object_set_new(o, "reachable", json_false());
			json_object_set_new(o, "error", json_string("not asked: the liveness run had no "
								    "time left"));
		} else if (o && strcmp(h->name, self)) {
			tend_fleet_host_status st;
			int64_t left = end - mono_ms();

			tend_fleet_status_fetch(&st, h->name, h->address, port, left < 2000 ? (long)left : 2000);
			json_object_set_new(o, "reachable", json_boolean(st.reachable));
			json_object_set_new(o, "error", st.error ? json_string(st.error) : json_null());
			if (st.doc)
				json_object_set_new(o, "status", peer_view(st.doc));
			tend_fleet_host_status_dispose(&st);
		}
		json_array_append_new(hosts, o);
	}
	return json_pack("{s:o, s:I}", "hosts", hosts ? hosts : json_array(),
			 "checked_at", (json_int_t)time(NULL));
}

/* The liveness probes of this host's services at commit, and the fleet's map. */
static int liveness(json_t *doc, const tend_config *cfg, const char *commit)
{
	tend_service_health *svcs = NULL;
	tend_manifest *m = NULL;
	char **errors = NULL;
	json_t *arr;
	size_t n = 0, i;
	int error;

	if ((error = manifest_at(&m, cfg, commit)) < 0 ||
	    (error = tend_reconcile_liveness_host(&svcs, &errors, &n, cfg, m, cfg->host,
						  &stop_requested)) < 0)
		goto out;
	arr = json_array();
	for (i = 0; arr && i < n; i++) {
		json_t *e = json_pack("{s:s, s:b, s:o, s:o, s:I}",
			"service", svcs[i].service, "up", svcs[i].health == TEND_HEALTH_HEALTHY,
			"probe", svcs[i].probe ? json_string(svcs[i].probe) : json_null(),
			"error", errors[i] ? json_string(errors[i]) : json_null(),
			"checked_at", (json_int_t)svcs[i].checked_at);

		/* a service left out would pass for one without liveness probes */
		if (!e || json_array_append_new(arr, e) < 0) {
			tend_error_set("liveness: cannot report service %s", svcs[i].service);
			json_decref(arr);
			error = TEND_ERROR;
			goto out;
		}
	}
	if (!arr) {
		tend_error_set("out of memory");
		error = TEND_ERROR;
		goto out;
	}
	json_object_set_new(doc, "services", arr);
	json_object_set_new(doc, "fleet", fleet_json(m, cfg->host,
			    cfg->probes.liveness_interval_ms > 2000 ? (int64_t)cfg->probes.liveness_interval_ms
			    : 2000));
out:
	for (i = 0; errors && i < n; i++)
		free(errors[i]);
	free(errors);
	tend_service_health_free(svcs, n);
	tend_manifest_free(m);
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
	if (!strcmp(what, "mail") && optind + 1 == argc)
		return answer(doc, send_mail());
	if (!config || !base || base[0] != '/' ||
	    !((!strcmp(what, "reconcile") && optind + 1 == argc) ||
	      ((!strcmp(what, "deps") || !strcmp(what, "liveness")) && optind + 2 == argc))) {
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
	} else if (!strcmp(what, "liveness")) {
		error = liveness(doc, cfg, argv[optind + 1]);
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
