/* The three probe kinds and the retry loop around them, and a host's health
 * after a change. Waits are sliced so the abort flag is seen within 50 ms;
 * outputs are capped; HTTP is limited to http/https without redirects, so a
 * probe cannot be pointed elsewhere. */
#include "reconcile/probe.h"
#include "reconcile/internal.h"
#include "util/error.h"
#include "util/proc.h"
#include "util/text.h"
#include "util/tls.h"
#include "util/curl_lazy.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t tend_probe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tend_probe_result_dispose(tend_probe_result *res)
{
	if (res)
		tend_buf_dispose(&res->output);
}

char *tend_probe_describe(const tend_probe *p)
{
	tend_buf b = TEND_BUF_INIT;
	size_t i;

	switch (p->kind) {
	case TEND_PROBE_HTTP:
		tend_buf_printf(&b, "http %s", p->url ? p->url : "?");
		break;
	case TEND_PROBE_TCP:
		tend_buf_printf(&b, strchr(p->host ? p->host : "", ':') ? "tcp [%s]:%d" : "tcp %s:%d",
				p->host ? p->host : "?", p->port);
		break;
	case TEND_PROBE_COMMAND:
		tend_buf_puts(&b, "command");
		for (i = 0; i < p->argc; i++)
			tend_buf_printf(&b, " %s", p->argv[i]);
		break;
	default:
		tend_buf_puts(&b, "unknown probe");
	}
	return tend_buf_detach(&b);
}

static int aborted(const tend_probe_opts *o)
{
	return o->abort && *o->abort;
}

/* Sleep ms in slices, returning early (1) when aborted. */
static int wait_ms(int64_t ms, const tend_probe_opts *o)
{
	int64_t end = tend_probe_now_ms() + ms;

	while (!aborted(o)) {
		int64_t left = end - tend_probe_now_ms();
		struct timespec ts;
		if (left <= 0)
			return 0;
		if (left > 50)
			left = 50;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		nanosleep(&ts, NULL);
	}
	return 1;
}

/* Append to a capped report, keeping what fits (tend_buf_put would refuse
 * the whole chunk). */
static void rput(tend_buf *b, const void *data, size_t len)
{
	size_t room = b->max > b->size ? b->max - b->size : 0;

	if (data && len && room)
		tend_buf_put(b, data, len < room ? len : room);
}

static void rprintf(tend_buf *b, const char *fmt, ...) TEND_PRINTF(2, 3);

static void rprintf(tend_buf *b, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		rput(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* ---- HTTP ----------------------------------------------------------- */

typedef struct {
	tend_buf *body;
	size_t limit;
} body_sink;

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	body_sink *s = ctx;
	size_t len = size * n, room = s->limit > s->body->size ? s->limit - s->body->size : 0;

	/* Past the cap the rest is read and dropped: the status still counts. */
	tend_buf_put(s->body, data, len < room ? len : room);
	return len;
}

/* OpenSSL's X509_V_ERR_* values as libcurl (OpenSSL backend) reports them. */
#define X509_NOT_YET_VALID 9
#define X509_EXPIRED 10

/* One line on why the TLS handshake of an https probe failed: trust, host
 * name or validity, with the CA file and libcurl's own words. */
static void report_tls(tend_buf *report, CURL *curl, CURLcode rc, const char *url, const char *ca,
		       const char *why)
{
	CURLU *u = curl_url();
	char *host = NULL;
	long verify = 0;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
		curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_easy_getinfo(curl, CURLINFO_SSL_VERIFYRESULT, &verify);
	if (rc == CURLE_SSL_CACERT_BADFILE)
		rprintf(report, "TLS: cannot use the CA file %s: %s", ca, why);
	else if (rc != CURLE_PEER_FAILED_VERIFICATION)
		rprintf(report, "TLS: handshake with %s failed (CA file %s): %s", host ? host : "the server",
			ca, why);
	else if (strstr(why, "subject name") || strstr(why, "does not match"))
		rprintf(report, "TLS: the certificate of %s is for another host name "
			"(hostname mismatch; CA file %s): %s", host ? host : "the server", ca, why);
	else if (verify == X509_EXPIRED || verify == X509_NOT_YET_VALID)
		rprintf(report, "TLS: the certificate of %s is expired or not yet valid (CA file %s): %s",
			host ? host : "the server", ca, why);
	else
		rprintf(report, "TLS: the certificate of %s is not trusted (CA file %s): %s",
			host ? host : "the server", ca, why);
	curl_free(host);
	curl_url_cleanup(u);
}

static int try_http(const tend_probe *p, int timeout_ms, size_t body_limit, const char *ca_file,
		    tend_buf *report)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	tend_buf body = TEND_BUF_INIT;
	body_sink sink = { &body, body_limit };
	CURL *curl = NULL;
	const char *ca = NULL;
	long status = 0;
	CURLcode rc;
	int ok = 0;

	/* https: only the CAs of one named file (no CA directory beside it), so
	 * that a failure can say exactly what was trusted. No file: no try. */
	if (p->url && !strncasecmp(p->url, "https://", 8) && !(ca = tend_tls_ca_file(ca_file))) {
		rprintf(report, "TLS: %s", tend_error_last());
		return 0;
	}
	if (!(curl = curl_easy_init())) {
		rprintf(report, "%s", tend_curl_lazy_error() ? tend_curl_lazy_error() : "cannot initialise libcurl");
		return 0;
	}
	if (ca) {
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
		curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	curl_easy_setopt(curl, CURLOPT_URL, p->url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "tend-probe/" TEND_VERSION);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		const char *why = *errbuf ? errbuf : curl_easy_strerror(rc);

		if (ca && (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
			   rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CERTPROBLEM))
			report_tls(report, curl, rc, p->url, ca, why);
		else
			rprintf(report, "%s", why);
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != p->expect_status) {
		rprintf(report, "HTTP %ld (expected %d)\n", status, p->expect_status);
		rput(report, body.ptr, body.size);
		goto out;
	}
	if (p->body_match && (!body.ptr || !strstr(body.ptr, p->body_match))) {
		rprintf(report, "HTTP %ld but the body does not contain \"%s\"\n", status,
				p->body_match);
		rput(report, body.ptr, body.size);
		goto out;
	}
	ok = 1;
out:
	tend_buf_dispose(&body);
	curl_easy_cleanup(curl);
	return ok;
}

/* ---- TCP ------------------------------------------------------------ */

static int connect_one(const struct addrinfo *ai, int timeout_ms, int *err)
{
	struct pollfd pfd;
	socklen_t len = sizeof(*err);
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	int ok = 0;

	if (fd < 0) {
		*err = errno;
		return 0;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		ok = 1;
	} else if (errno != EINPROGRESS) {
		*err = errno;
	} else {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, timeout_ms) <= 0)
			*err = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &len) == 0 && *err == 0)
			ok = 1;
	}
	close(fd);
	return ok;
}

static int try_tcp(const tend_probe *p, int timeout_ms, tend_buf *report)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int rc, err = 0, ok = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", p->port);
	if ((rc = getaddrinfo(p->host, port, &hints, &res)) != 0) {
		rprintf(report, "cannot resolve %s: %s", p->host, gai_strerror(rc));
		return 0;
	}
	for (ai = res; ai && !ok; ai = ai->ai_next)
		ok = connect_one(ai, timeout_ms, &err);
	if (!ok)
		rprintf(report, "connect %s:%d: %s", p->host, p->port,
				err == ETIMEDOUT ? "no answer within the timeout" : strerror(err));
	freeaddrinfo(res);
	return ok;
}

/* ---- command -------------------------------------------------------- */

static int try_command(const tend_probe *p, int timeout_ms, size_t limit, tend_buf *report)
{
	tend_proc_opts opts = TEND_PROC_OPTS_INIT;
	tend_proc_result res;
	int ok = 0;

	if (!p->argc || !p->argv || !p->argv[0]) {
		rprintf(report, "%s", "empty command");
		return 0;
	}
	opts.timeout_ms = timeout_ms;
	opts.merge_stderr = 1;
	opts.max_output = limit;
	if (tend_proc_run(&res, p->argv, &opts) < 0) {
		rprintf(report, "%s", tend_error_last());
		return 0;
	}
	if (res.timed_out)
		rprintf(report, "no result within %d ms\n", timeout_ms);
	else if (res.exit_code != 0)
		rprintf(report, "exit %d\n", res.exit_code);
	else
		ok = 1;
	if (!ok)
		rput(report, res.out.ptr, res.out.size);
	tend_proc_result_dispose(&res);
	return ok;
}

/* ---- the loop ------------------------------------------------------- */

static void first_line(char *dst, size_t size, const tend_buf *b)
{
	size_t n = b->ptr ? strcspn(b->ptr, "\n") : 0;

	snprintf(dst, size, "%.*s", (int)n, b->ptr ? b->ptr : "");
}

int tend_probe_run(tend_probe_result *out, const tend_probe *p, const tend_probe_opts *opts)
{
	tend_probe_opts defaults = TEND_PROBE_OPTS_INIT;
	size_t out_limit, body_limit;
	unsigned retries;
	char *what = NULL, line[300];
	int error = TEND_ERROR;

	if (!opts)
		opts = &defaults;
	memset(out, 0, sizeof(*out));
	out_limit = opts->output_limit ? opts->output_limit : 4096;
	body_limit = opts->body_limit ? opts->body_limit : 64 * 1024;
	out->output.max = out_limit;
	retries = p->retries ? p->retries : 1;
	what = tend_probe_describe(p);
	if (p->grace_ms && wait_ms((int64_t)p->grace_ms, opts))
		goto aborted;
	while (out->tries < retries) {
		int64_t now = tend_probe_now_ms(), timeout = p->timeout_ms ? (int64_t)p->timeout_ms : 5000;
		int ok = 0;

		if (aborted(opts))
			goto aborted;
		if (opts->deadline_ms && now >= opts->deadline_ms) {
			tend_error_set("probe %s: deadline reached after %u tries%s%s", what,
				       out->tries, out->tries ? ": " : "",
				       (first_line(line, sizeof(line), &out->output), line));
			error = TEND_ETIMEOUT;
			goto out;
		}
		if (opts->deadline_ms && opts->deadline_ms - now < timeout)
			timeout = opts->deadline_ms - now;
		if (timeout > INT_MAX)
			timeout = INT_MAX;
		tend_buf_clear(&out->output);
		out->tries++;
		switch (p->kind) {
		case TEND_PROBE_HTTP:
			ok = try_http(p, (int)timeout, body_limit, opts->ca_file, &out->output);
			break;
		case TEND_PROBE_TCP:
			ok = try_tcp(p, (int)timeout, &out->output);
			break;
		case TEND_PROBE_COMMAND:
			ok = try_command(p, (int)timeout, out_limit, &out->output);
			break;
		default:
			rprintf(&out->output, "unknown probe kind");
		}
		/* a probed body or command output is shown in terminals (tend
		 * reconcile, tend history), kept and mailed: no escapes */
		if (out->output.ptr) {
			tend_text_strip_controls(out->output.ptr, 1);
			out->output.size = strlen(out->output.ptr);
		}
		if (ok) {
			out->healthy = 1;
			tend_buf_clear(&out->output);
			error = 0;
			goto out;
		}
		if (out->tries < retries && wait_ms((int64_t)p->interval_ms, opts))
			goto aborted;
	}
	first_line(line, sizeof(line), &out->output);
	tend_error_set("probe %s failed after %u %s: %s", what, out->tries,
		       out->tries == 1 ? "try" : "tries", line);
	goto out;
aborted:
	out->aborted = 1;
	tend_error_set("probe %s: stopped (the agent is shutting down)", what);
out:
	free(what);
	return error;
}

/* ---- a host's health --------------------------------------------------
 * Every service's startup probes (or its liveness probes when it has no
 * startup ones), services in dependency order, all under the configured
 * overall deadline. The first failure stops the run: its dependents would
 * fail for the same reason. */

const char *tend_health_name(tend_health h)
{
	switch (h) {
	case TEND_HEALTH_HEALTHY: return "healthy";
	case TEND_HEALTH_FAILING: return "failing";
	case TEND_HEALTH_UNKNOWN: break;
	}
	return "unknown";
}

void tend_service_health_free(tend_service_health *list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++) {
		free(list[i].service);
		free(list[i].probe);
	}
	free(list);
}

void tend_probe_failure_dispose(tend_probe_failure *f)
{
	if (!f)
		return;
	free(f->failed_probe);
	free(f->output);
	tend_service_health_free(f->services, f->n_services);
	memset(f, 0, sizeof(*f));
}

/* One startup probe of a service that names units: while every unit runs, a failing probe is
 * a start still under way (a Type=simple service migrating before it listens), so its tries
 * go on, round after round, for up to health.start_timeout; a unit that fails or stops ends
 * it at once, and then the unit is the reason (*unit set). */
static int run_while_units_run(tend_probe_result *r, const char **unit, const tend_service *s,
			       const tend_probe *p, const tend_probe_opts *po)
{
	int64_t until = tend_probe_now_ms() + (int64_t)s->start_timeout_ms;
	tend_probe q = *p;
	int error;

	*unit = NULL;
	for (;;) {
		error = tend_probe_run(r, &q, po);
		q.grace_ms = 0;   /* the grace comes before the first try only */
		if (error == 0 || r->aborted || error == TEND_ETIMEOUT)
			return error;
		if (tend_reconcile_units_check(unit, s) < 0)
			return TEND_ERROR;
		if (tend_probe_now_ms() + (int64_t)p->interval_ms >= until)
			return error;
		if (wait_ms((int64_t)p->interval_ms, po)) {
			r->aborted = 1;
			return error;
		}
		tend_probe_result_dispose(r);
	}
}

static int probe_service(tend_probe_failure *out, const tend_service *s, tend_probe_phase phase,
			 const tend_probe_opts *po, int *ran, tend_service_health *h)
{
	size_t i;

	for (i = 0; i < s->n_probes; i++) {
		const tend_probe *p = &s->probes[i];
		const char *unit = NULL;
		tend_probe_result r;
		char *what;
		int error;

		if (p->phase != phase)
			continue;
		*ran = 1;
		if (phase == TEND_PROBE_STARTUP && s->n_units)
			error = run_while_units_run(&r, &unit, s, p, po);
		else
			error = tend_probe_run(&r, p, po);
		what = unit ? NULL : tend_probe_describe(p);
		if (unit && asprintf(&what, "unit %s", unit) < 0)
			what = NULL;
		if (h) {
			free(h->probe);
			h->probe = what ? strdup(what) : NULL;
			h->checked_at = (int64_t)time(NULL);
			h->health = error == 0 ? TEND_HEALTH_HEALTHY : TEND_HEALTH_FAILING;
		}
		if (error == 0) {
			free(what);
			tend_probe_result_dispose(&r);
			continue;
		}
		if (asprintf(&out->failed_probe, "%s: %s", s->name, what ? what : "?") < 0)
			out->failed_probe = NULL;
		free(what);
		out->output = unit ? tend_reconcile_unit_journal(unit, po->output_limit)
			: r.output.ptr ? strdup(r.output.ptr) : NULL;
		out->aborted = r.aborted;
		tend_probe_result_dispose(&r);
		tend_error_prefix("service %s: ", s->name);
		return error;
	}
	return 0;
}

/* The service's units ready before its probes run (units: in service.yaml). */
static int units_ready(tend_probe_failure *out, const tend_service *s, const tend_probe_opts *po,
		       tend_service_health *h)
{
	const char *unit = NULL;
	char *journal = NULL;
	int error;

	if (!s->n_units || (error = tend_reconcile_units_wait(&journal, &unit, s, po)) == 0)
		return 0;
	if (unit) {
		free(h->probe);
		h->probe = NULL;
		if (asprintf(&h->probe, "unit %s", unit) < 0)
			h->probe = NULL;
		if (asprintf(&out->failed_probe, "%s: unit %s", s->name, unit) < 0)
			out->failed_probe = NULL;
	}
	h->checked_at = (int64_t)time(NULL);
	h->health = TEND_HEALTH_FAILING;
	out->output = journal;
	out->aborted = po->abort && *po->abort;
	tend_error_prefix("service %s: ", s->name);
	return error;
}

int tend_reconcile_probe_host(tend_probe_failure *out, const tend_config *cfg,
			      const tend_manifest *m, const char *host,
			      volatile sig_atomic_t *abort)
{
	tend_probe_opts po = TEND_PROBE_OPTS_INIT;
	const char **order = NULL;
	size_t i, n = 0;
	int error;

	memset(out, 0, sizeof(*out));
	po.output_limit = cfg->probes.output_limit;
	po.body_limit = cfg->probes.body_limit;
	po.ca_file = cfg->probes.ca_file;
	po.abort = abort;
	if (cfg->probes.deadline_ms)
		po.deadline_ms = tend_probe_now_ms() + (int64_t)cfg->probes.deadline_ms;
	if ((error = tend_manifest_service_order(&order, m)) < 0)
		return error;
	/* Every service of the host gets an entry, probed or not. */
	for (i = 0; order[i]; i++)
		n++;
	if (n && !(out->services = calloc(n, sizeof(*out->services)))) {
		free(order);
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (i = 0; order[i]; i++) {
		const tend_service *s = tend_manifest_service(m, order[i]);
		tend_service_health *h;
		int ran = 0;

		if (!s || strcmp(s->host, host))
			continue;
		h = &out->services[out->n_services++];
		h->service = strdup(s->name);
		if (error < 0)
			continue;   /* after a failure: listed, not probed (unknown) */
		if ((error = units_ready(out, s, &po, h)) < 0)
			continue;
		if ((error = probe_service(out, s, TEND_PROBE_STARTUP, &po, &ran, h)) < 0)
			continue;
		if (!ran)
			error = probe_service(out, s, TEND_PROBE_LIVENESS, &po, &ran, h);
	}
	free(order);
	return error;
}

/* One service's liveness probes, each with no grace and its tries spread over at most one
 * liveness interval, so that a run ends (and a failure shows) within about that interval. */
static int liveness_service(tend_service_health *h, char **why, const tend_service *s,
			    const tend_probe_opts *po, uint64_t interval_ms)
{
	const char *unit;
	size_t k;

	if (s->n_units && tend_reconcile_units_check(&unit, s) < 0) {
		free(h->probe);
		if (asprintf(&h->probe, "unit %s", unit ? unit : "?") < 0)
			h->probe = NULL;
		h->checked_at = (int64_t)time(NULL);
		h->health = TEND_HEALTH_FAILING;
		tend_error_prefix("service %s: ", s->name);
		*why = tend_text_clean_dup(tend_error_last(), 0);
		return TEND_ERROR;
	}
	if (s->n_units) {   /* up as far as systemd knows; its probes, if any, say more */
		free(h->probe);
		if (asprintf(&h->probe, "unit %s", s->units[0]) < 0)
			h->probe = NULL;
		h->checked_at = (int64_t)time(NULL);
		h->health = TEND_HEALTH_HEALTHY;
	}
	for (k = 0; k < s->n_probes; k++) {
		tend_probe q = s->probes[k];
		tend_probe_result r;
		char *what;
		int error;

		if (q.phase != TEND_PROBE_LIVENESS)
			continue;
		q.grace_ms = 0;
		if (interval_ms && q.retries > 1 && q.interval_ms > interval_ms / q.retries)
			q.interval_ms = interval_ms / q.retries;
		if (interval_ms && q.timeout_ms > interval_ms)
			q.timeout_ms = interval_ms;
		error = tend_probe_run(&r, &q, po);
		what = tend_probe_describe(&q);
		free(h->probe);
		h->probe = what;
		h->checked_at = (int64_t)time(NULL);
		h->health = error == 0 ? TEND_HEALTH_HEALTHY : TEND_HEALTH_FAILING;
		tend_probe_result_dispose(&r);
		if (error < 0) {
			tend_error_prefix("service %s: ", s->name);
			/* one line of valid UTF-8: a probed body may hold anything */
			*why = tend_text_clean_dup(tend_error_last(), 0);
			return error;
		}
	}
	return 0;
}

int tend_reconcile_liveness_host(tend_service_health **out, char ***errors, size_t *n,
				 const tend_config *cfg, const tend_manifest *m, const char *host,
				 volatile sig_atomic_t *abort)
{
	tend_probe_opts po = TEND_PROBE_OPTS_INIT;
	const char **order = NULL;
	size_t i, count = 0;
	int error;

	*out = NULL;
	*errors = NULL;
	*n = 0;
	po.output_limit = cfg->probes.output_limit;
	po.body_limit = cfg->probes.body_limit;
	po.ca_file = cfg->probes.ca_file;
	po.abort = abort;
	/* a run ends within about one interval, however many services (no try starts later) */
	if (cfg->probes.deadline_ms || cfg->probes.liveness_interval_ms)
		po.deadline_ms = tend_probe_now_ms() + (int64_t)(cfg->probes.liveness_interval_ms &&
			(!cfg->probes.deadline_ms || cfg->probes.liveness_interval_ms < cfg->probes.deadline_ms)
			? cfg->probes.liveness_interval_ms : cfg->probes.deadline_ms);
	if ((error = tend_manifest_service_order(&order, m)) < 0)
		return error;
	for (i = 0; order[i]; i++)
		count++;
	if (count && (!(*out = calloc(count, sizeof(**out))) ||
		      !(*errors = calloc(count, sizeof(**errors))))) {
		free(*out);
		*out = NULL;
		free(order);
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (i = 0; order[i] && !(abort && *abort); i++) {
		const tend_service *s = tend_manifest_service(m, order[i]);
		size_t k;
		int has = 0;

		if (!s || strcmp(s->host, host))
			continue;
		for (k = 0; k < s->n_probes; k++)
			has |= s->probes[k].phase == TEND_PROBE_LIVENESS;
		has |= s->n_units > 0;   /* a unit that failed or was stopped is down */
		if (!has)
			continue;
		if (!((*out)[*n].service = strdup(s->name))) {
			tend_error_set("out of memory");
			error = TEND_ERROR;
			break;
		}
		liveness_service(&(*out)[*n], &(*errors)[*n], s, &po, cfg->probes.liveness_interval_ms);
		(*n)++;
	}
	free(order);
	return error < 0 ? error : 0;
}
