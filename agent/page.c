/* The fleet page (GET /): one self-contained HTML document, no external asset, built from
 * this agent's live status and the fleet as its last liveness run saw it (agent/status.h
 * "fleet"). Every piece of text from a status document, ours or a peer's, is escaped; the
 * one inline script (a reload timer) is allowed by its hash in the Content-Security-Policy. */
#include "agent/page.h"
#include "util/buf.h"
#include "util/error.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REFRESH_S 15
#define HISTORY_SHOWN 5
#define NODE_W 150
#define NODE_H 36
#define COL_W 200
#define ROW_H 56

#define STR2(x) #x
#define STR(x) STR2(x)
/* Marks the page live (the policy let it run), then reloads it. */
static const char script[] = "document.documentElement.dataset.live='1';"
	"setTimeout(function(){location.reload();}," STR(REFRESH_S) "000);";

static const char style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}"
	"h1{font-size:1.4em;margin:0}h2{font-size:1.1em;margin:1.4em 0 .4em}"
	"table{border-collapse:collapse;background:#fff}"
	"th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}"
	"code,pre{font:12px/1.3 ui-monospace,monospace}pre{margin:.2em 0 .4em 1em;color:#444}"
	".phase{font-weight:600}.ok{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e}"
	".gone{color:#888}article{background:#fff;border:1px solid #ddd;padding:.5em 1em;"
	"margin:.6em 0}article h3{margin:.2em 0}ul,ol{margin:.2em 0;padding-left:1.4em}"
	"svg text{font:12px system-ui,sans-serif}.muted{color:#777}";

/* The page being built; an append that failed (out of memory) fails the whole page. */
typedef struct {
	tend_buf b;
	int failed;
} page;

static void page_puts(page *p, const char *s)
{
	if (tend_buf_puts(&p->b, s) < 0)
		p->failed = 1;
}

static void page_putc(page *p, char c)
{
	if (tend_buf_putc(&p->b, c) < 0)
		p->failed = 1;
}

static void page_printf(page *p, const char *fmt, ...) TEND_PRINTF(2, 3);

static void page_printf(page *p, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		p->failed = 1;
	else
		page_puts(p, s);
	free(s);
}

static void esc(page *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': page_puts(b, "&amp;"); break;
		case '<': page_puts(b, "&lt;"); break;
		case '>': page_puts(b, "&gt;"); break;
		case '"': page_puts(b, "&quot;"); break;
		case '\'': page_puts(b, "&#39;"); break;
		default:
			/* control characters but newline and tab are dropped */
			if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
				page_putc(b, *s);
		}
	}
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A CSS class for a phase: ok, warn, bad, or gone (no answer). */
static const char *phase_class(const char *phase)
{
	if (!phase)
		return "gone";
	if (!strcmp(phase, "converged"))
		return "ok";
	if (!strcmp(phase, "failed") || !strcmp(phase, "rolled-back"))
		return "bad";
	return "warn";
}

static const char *phase_color(const char *phase)
{
	const char *c = phase_class(phase);

	return !strcmp(c, "ok") ? "#dafbe1" : !strcmp(c, "bad") ? "#ffebe9"
		: !strcmp(c, "warn") ? "#fff8c5" : "#eee";
}

/* The status document of hosts[i]: ours (live) for self, the peer's as last fetched. */
static const json_t *host_status(const json_t *host, const char *self, const json_t *own)
{
	return !strcmp(jstr(host, "name") ? jstr(host, "name") : "", self) ? own
		: json_object_get(host, "status");
}

static long host_index(const json_t *hosts, const char *name)
{
	size_t j;

	for (j = 0; name && j < json_array_size(hosts); j++)
		if (jstr(json_array_get(hosts, j), "name") &&
		    !strcmp(jstr(json_array_get(hosts, j), "name"), name))
			return (long)j;
	return -1;
}

/* Each host's depth in the dependency order: 0 for a host needing nobody, else 1 + its
 * deepest need, at most MAX_DEPTH (the fleet is acyclic; a snapshot that is not still ends). */
#define MAX_DEPTH 64

static void depths(int *d, const json_t *hosts)
{
	size_t n = json_array_size(hosts), i, k;
	int round, changed = 1;
	const json_t *dep;

	for (round = 0; changed && round < MAX_DEPTH; round++) {
		changed = 0;
		for (i = 0; i < n; i++)
			json_array_foreach(json_object_get(json_array_get(hosts, i), "depends_on"), k, dep) {
				long j = host_index(hosts, json_string_value(dep));

				if (j >= 0 && d[j] + 1 > d[i] && d[j] < MAX_DEPTH) {
					d[i] = d[j] + 1;
					changed = 1;
				}
			}
	}
}

static void graph(page *b, const json_t *hosts, const char *self, const json_t *own)
{
	size_t n = json_array_size(hosts), i, k, j;
	int *x = calloc(n ? n : 1, sizeof(int)), *y = calloc(n ? n : 1, sizeof(int));
	int *dep = calloc(n ? n : 1, sizeof(int)), rows[MAX_DEPTH + 1] = { 0 }, maxd = 0, maxr = 1;
	const json_t *d;

	if (!x || !y || !dep)
		goto out;
	depths(dep, hosts);
	for (i = 0; i < n; i++) {
		int dd = dep[i];

		x[i] = 10 + dd * COL_W;
		y[i] = 10 + rows[dd]++ * ROW_H;
		maxd = dd > maxd ? dd : maxd;
		maxr = rows[dd] > maxr ? rows[dd] : maxr;
	}
	page_printf(b, "<svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
			"height=\"%d\" role=\"img\" aria-label=\"hosts in dependency order\">"
			"<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
			"markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" "
			"fill=\"#666\"/></marker></defs>", 20 + (maxd + 1) * COL_W, 20 + maxr * ROW_H);
	/* An edge from each host a host needs to the host: the order tend switches them in. */
	for (i = 0; i < n; i++)
		json_array_foreach(json_object_get(json_array_get(hosts, i), "depends_on"), k, d)
			for (j = 0; j < n; j++) {
				const char *name = jstr(json_array_get(hosts, j), "name");

				if (!name || !json_string_value(d) || strcmp(name, json_string_value(d)))
					continue;
				page_printf(b, "<line class=\"edge\" data-from=\"");
				esc(b, name);
				page_puts(b, "\" data-to=\"");
				esc(b, jstr(json_array_get(hosts, i), "name"));
				page_printf(b, "\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#666\" "
						"marker-end=\"url(#arrow)\"/>", x[j] + NODE_W, y[j] + NODE_H / 2,
						x[i], y[i] + NODE_H / 2);
			}
	for (i = 0; i < n; i++) {
		const json_t *h = json_array_get(hosts, i), *s = host_status(h, self, own);
		const char *phase = s ? jstr(s, "phase") : NULL;

		page_puts(b, "<g class=\"node\" data-host=\"");
		esc(b, jstr(h, "name"));
		page_printf(b, "\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"6\" "
				"fill=\"%s\" stroke=\"#888\"/><text x=\"%d\" y=\"%d\">", x[i], y[i], NODE_W,
				NODE_H, phase_color(phase), x[i] + 8, y[i] + 15);
		esc(b, jstr(h, "name"));
		page_printf(b, "</text><text x=\"%d\" y=\"%d\" fill=\"#555\">", x[i] + 8, y[i] + 30);
		esc(b, phase ? phase : "no answer");
		page_puts(b, "</text></g>");
	}
	page_puts(b, "</svg>\n");
out:
	free(x);
	free(y);
	free(dep);
}

/* A commit as its first 12 hex digits, the whole in its title. */
static void short_commit(page *b, const char *c)
{
	char s[13];

	if (!c || !*c) {
		page_puts(b, "<span class=\"muted\">none</span>");
		return;
	}
	snprintf(s, sizeof(s), "%s", c);
	/* a peer's text is not always hex: never cut a character in two */
	for (size_t n = strlen(s); n && ((unsigned char)c[n] & 0xC0) == 0x80; n--)
		s[n - 1] = '\0';
	page_puts(b, "<code title=\"");
	esc(b, c);
	page_puts(b, "\">");
	esc(b, s);
	page_puts(b, "</code>");
}

static void host_row(page *b, const json_t *h, const json_t *s)
{
	const char *phase = s ? jstr(s, "phase") : NULL;

	page_puts(b, "<tr class=\"host\" data-host=\"");
	esc(b, jstr(h, "name"));
	page_puts(b, "\" data-phase=\"");
	esc(b, phase ? phase : "unreachable");
	page_puts(b, "\"><td>");
	esc(b, jstr(h, "name"));
	page_printf(b, "</td><td class=\"phase %s\">", phase_class(phase));
	esc(b, phase ? phase : "no answer");
	page_puts(b, "</td><td>");
	short_commit(b, s ? jstr(s, "applied_commit") : NULL);
	page_puts(b, "</td><td>");
	short_commit(b, s ? jstr(s, "target_commit") : NULL);
	page_printf(b, "</td><td class=\"reboot\">%s</td><td class=\"error\">",
			s && json_is_true(json_object_get(s, "reboot_required")) ? "needed" : "no");
	if (!s)
		esc(b, jstr(h, "error") ? jstr(h, "error") : "not asked yet");
	else
		esc(b, jstr(s, "last_error") ? jstr(s, "last_error") : "");
	page_puts(b, "</td></tr>\n");
}

static void host_detail(page *b, const json_t *h, const json_t *s)
{
	const json_t *live = s ? json_object_get(s, "liveness") : NULL, *hist, *e, *v;
	const char *key;
	size_t i;

	page_puts(b, "<article class=\"detail\" data-host=\"");
	esc(b, jstr(h, "name"));
	page_puts(b, "\"><h3>");
	esc(b, jstr(h, "name"));
	page_puts(b, "</h3>");
	if (!s) {
		page_puts(b, "<p class=\"gone\">");
		esc(b, jstr(h, "error") ? jstr(h, "error") : "not asked yet");
		page_puts(b, "</p></article>\n");
		return;
	}
	page_puts(b, "<h4>Liveness</h4>");
	if (!json_is_object(live) || !json_object_size(live)) {
		page_puts(b, "<p class=\"muted\">no liveness probes run</p>");
	} else {
		page_puts(b, "<ul class=\"liveness\">");
		json_object_foreach((json_t *)live, key, v) {
			int up = json_is_true(json_object_get(v, "up"));

			page_printf(b, "<li class=\"%s\" data-service=\"", up ? "ok" : "bad");
			esc(b, key);
			page_puts(b, "\" data-up=\"");
			page_puts(b, up ? "1" : "0");
			page_puts(b, "\">");
			esc(b, key);
			page_puts(b, up ? ": up" : ": down");
			if (jstr(v, "probe")) {
				page_puts(b, " <span class=\"muted\">(");
				esc(b, jstr(v, "probe"));
				page_puts(b, ")</span>");
			}
			if (!up && jstr(v, "error")) {
				page_puts(b, ": ");
				esc(b, jstr(v, "error"));
			}
			page_puts(b, "</li>");
		}
		page_puts(b, "</ul>");
	}
	page_puts(b, "<h4>Recent history</h4>");
	hist = json_object_get(s, "history");
	if (!json_array_size(hist))
		page_puts(b, "<p class=\"muted\">no reconcile yet</p>");
	else
		page_puts(b, "<ol class=\"history\">");
	json_array_foreach(hist, i, e) {
		if (i >= HISTORY_SHOWN)
			break;
		page_puts(b, "<li><time>");
		esc(b, jstr(e, "time"));
		page_puts(b, "</time> ");
		short_commit(b, jstr(e, "commit"));
		page_puts(b, " <b>");
		esc(b, jstr(e, "outcome"));
		page_puts(b, "</b>: ");
		esc(b, jstr(e, "message"));
		if (jstr(e, "changes")) {
			page_puts(b, "<pre class=\"changes\">");
			esc(b, jstr(e, "changes"));
			page_puts(b, "</pre>");
		}
		page_puts(b, "</li>");
	}
	if (json_array_size(hist))
		page_puts(b, "</ol>");
	page_puts(b, "</article>\n");
}

void tend_agent_page_script_hash(char *out, size_t size)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)script, sizeof(script) - 1);
	sodium_bin2base64(out, size, h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
}

int tend_agent_page_html(char **out, tend_agent_status *st)
{
	page b = { TEND_BUF_INIT, 0 };
	json_t *own = NULL, *fleet = NULL, *hosts, *h;
	char *own_text = NULL, *fleet_text = NULL, when[32] = "", asked[32] = "";
	const char *self;
	time_t now = time(NULL), checked;
	struct tm tm;
	size_t i;
	int error = TEND_ERROR;

	*out = NULL;
	if (tend_agent_status_json(&own_text, st) < 0)
		goto out;
	if (!(own = json_loads(own_text, 0, NULL))) {
		tend_error_set("fleet page: out of memory");
		goto out;
	}
	tend_agent_status_lock(st);
	fleet_text = st->fleet ? strdup(st->fleet) : NULL;
	tend_agent_status_unlock(st);
	fleet = fleet_text ? json_loads(fleet_text, 0, NULL) : NULL;
	self = jstr(own, "host") ? jstr(own, "host") : "";
	hosts = json_object_get(fleet, "hosts");
	if (!json_is_array(hosts)) {
		/* No liveness run yet: this host alone. */
		json_decref(fleet);
		fleet = json_pack("{s:[{s:s, s:[]}]}", "hosts", "name", self, "depends_on");
		hosts = json_object_get(fleet, "hosts");
	}
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	checked = (time_t)json_integer_value(json_object_get(fleet, "checked_at"));
	if (checked && gmtime_r(&checked, &tm))
		strftime(asked, sizeof(asked), "%Y-%m-%d %H:%M:%S UTC", &tm);
	page_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		      "<meta name=\"viewport\" content=\"width=device-width\"><title>tend: ");
	esc(&b, self);
	page_printf(&b, "</title><style>%s</style></head>\n<body><header><h1>tend fleet</h1>"
			"<p class=\"muted\">Served by <b id=\"self\">", style);
	esc(&b, self);
	page_printf(&b, "</b> at %s; other hosts as their agents answered %s%s. "
			"The page reloads every %d s.</p></header>\n", when, asked[0] ? "at " : "",
			asked[0] ? asked : "(not asked yet: after the first liveness run)", REFRESH_S);
	page_puts(&b, "<h2>Dependency order</h2>\n");
	graph(&b, hosts, self, own);
	page_puts(&b, "<h2>Hosts</h2>\n<table id=\"hosts\"><thead><tr><th>Host</th><th>Phase</th>"
		      "<th>Applied</th><th>Target</th><th>Reboot</th><th>Last error</th></tr></thead>"
		      "<tbody>\n");
	json_array_foreach(hosts, i, h)
		host_row(&b, h, host_status(h, self, own));
	page_puts(&b, "</tbody></table>\n<h2>Services and history</h2>\n");
	json_array_foreach(hosts, i, h)
		host_detail(&b, h, host_status(h, self, own));
	page_printf(&b, "<script>%s</script>\n</body></html>\n", script);
	if (b.failed || !b.b.ptr) {
		tend_error_set("fleet page: out of memory");
		goto out;
	}
	*out = tend_buf_detach(&b.b);
	error = 0;
out:
	tend_buf_dispose(&b.b);
	json_decref(own);
	json_decref(fleet);
	free(own_text);
	free(fleet_text);
	return error;
}
