/* Other agents' /v1/status over HTTP (libcurl, capped body, time limit) and
 * the dependency verdict built on it. The remote document is untrusted: it is
 * parsed with jansson and every field is optional. */
#include "agent/fleet_status.h"
#include "agent/status.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/curl_lazy.h"
#include "util/text.h"

#include <curl/curl.h>
#include <git2.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLEET_STATUS_MAX (256 * 1024)

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	tend_buf *b = ud;

	return tend_buf_put(b, p, size * n) < 0 ? 0 : size * n;
}

static char *jdup(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? strdup(s) : NULL;
}

int tend_fleet_status_fetch(tend_fleet_host_status *out, const char *host,
			    const char *address, int port, long timeout_ms)
{
	tend_buf body = TEND_BUF_INIT;
	char url[300], errbuf[CURL_ERROR_SIZE] = "";
	json_error_t jerr;
	json_t *j = NULL;
	CURL *c;
	CURLcode rc;
	long code = 0;

	memset(out, 0, sizeof(*out));
	out->host = strdup(host);
	out->address = strdup(address);
	out->port = port;
	out->generation = -1;
	snprintf(url, sizeof(url), strchr(address, ':') ? "http://[%s]:%d/v1/status"
			: "http://%s:%d/v1/status", address, port);
	body.max = FLEET_STATUS_MAX;
	if (!(c = curl_easy_init())) {
		out->error = strdup(tend_curl_lazy_error() ? tend_curl_lazy_error() : "cannot initialise libcurl");
		return 0;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		if (asprintf(&out->error, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc)) < 0)
			out->error = NULL;
		goto out;
	}
	if (code != 200) {
		if (asprintf(&out->error, "%s: HTTP %ld", url, code) < 0)
			out->error = NULL;
		goto out;
	}
	if (!(j = json_loadb(body.ptr ? body.ptr : "", body.size, 0, &jerr)) || !json_is_object(j)) {
		if (asprintf(&out->error, "%s: not a status document (%s)", url,
			     j ? "not an object" : jerr.text) < 0)
			out->error = NULL;
		goto out;
	}
	/* a peer's text goes to terminals (tend status --fleet) and logs:
	 * stripped of control characters here, where it enters */
	out->applied_commit = jdup(j, "applied_commit");
	out->target_commit = jdup(j, "target_commit");
	out->phase = jdup(j, "phase");
	out->last_error = jdup(j, "last_error");
	tend_text_strip_controls(out->applied_commit, 0);
	tend_text_strip_controls(out->target_commit, 0);
	tend_text_strip_controls(out->phase, 0);
	tend_text_strip_controls(out->last_error, 0);
	if (json_is_integer(json_object_get(j, "generation")))
		out->generation = json_integer_value(json_object_get(j, "generation"));
	out->reboot_required = json_is_true(json_object_get(j, "reboot_required"));
	out->reachable = out->phase != NULL;
	if (!out->reachable && asprintf(&out->error, "%s: no phase in the status document", url) < 0)
		out->error = NULL;
	if (out->reachable)
		out->doc = json_incref(j);
out:
	tend_text_strip_controls(out->error, 0);   /* may quote the body (a JSON error) */
	json_decref(j);
	tend_buf_dispose(&body);
	return 0;
}

void tend_fleet_host_status_dispose(tend_fleet_host_status *st)
{
	if (!st)
		return;
	free(st->host);
	free(st->address);
	free(st->error);
	free(st->applied_commit);
	free(st->target_commit);
	free(st->phase);
	free(st->last_error);
	json_decref(st->doc);
	memset(st, 0, sizeof(*st));
}

/* 1 when have is commit or descends from it in the mirror. */
static int at_or_after(const char *mirror_dir, const char *have, const char *commit)
{
	git_repository *repo = NULL;
	git_oid a, b;
	int r = 0;

	if (!have || !*have)
		return 0;
	if (!strcmp(have, commit))
		return 1;
	if (!mirror_dir || git_oid_fromstr(&a, have) < 0 || git_oid_fromstr(&b, commit) < 0)
		return 0;
	git_libgit2_init();
	if (git_repository_open_bare(&repo, mirror_dir) == 0 ||
	    git_repository_open(&repo, mirror_dir) == 0)
		r = git_graph_descendant_of(repo, &a, &b) == 1;
	git_repository_free(repo);
	git_libgit2_shutdown();
	return r;
}

int tend_fleet_deps_check(tend_deps_verdict *out, char **reason, const tend_manifest *m,
			  const char *host, const char *commit, const char *mirror_dir,
			  long timeout_ms)
{
	const char **deps = NULL;
	size_t n = 0, i;
	tend_buf why = TEND_BUF_INIT;
	int error;

	*out = TEND_DEPS_READY;
	*reason = NULL;
	if ((error = tend_manifest_host_deps(&deps, &n, m, host)) < 0)
		return error;
	for (i = 0; i < n; i++) {
		const tend_host *h = tend_manifest_host(m, deps[i]);
		tend_fleet_host_status st;

		if (!h)
			continue;
		tend_fleet_status_fetch(&st, h->name, h->address,
					h->agent_port ? h->agent_port : m->agent_port, timeout_ms);
		if (!st.reachable) {
			*out = *out == TEND_DEPS_BLOCKED ? *out : TEND_DEPS_WAITING;
			tend_buf_printf(&why, "%shost %s unreachable (%s)", why.size ? "; " : "",
					h->name, st.error ? st.error : "?");
		} else if (!strcmp(st.phase, "converged") &&
			   (at_or_after(mirror_dir, st.applied_commit, commit) ||
			    at_or_after(mirror_dir, st.target_commit, commit))) {
			/* Ready: it runs commit, or it considered commit (or a later
			 * one) and had nothing to change for it. */
		} else if (st.target_commit && !strcmp(st.target_commit, commit) &&
			   (!strcmp(st.phase, "failed") || !strcmp(st.phase, "rolled-back"))) {
			*out = TEND_DEPS_BLOCKED;
			tend_buf_printf(&why, "%shost %s %s commit %.12s: %s", why.size ? "; " : "",
					h->name, !strcmp(st.phase, "failed") ? "failed" : "rolled back",
					commit, st.last_error ? st.last_error : "");
		} else {
			*out = *out == TEND_DEPS_BLOCKED ? *out : TEND_DEPS_WAITING;
			tend_buf_printf(&why, "%swaiting for host %s (%s at %.12s) to run %.12s",
					why.size ? "; " : "", h->name, st.phase,
					st.applied_commit ? st.applied_commit : "nothing", commit);
		}
		tend_fleet_host_status_dispose(&st);
	}
	free(deps);
	if (*out != TEND_DEPS_READY)
		*reason = tend_buf_detach(&why);
	tend_buf_dispose(&why);
	return 0;
}
