/* Alert deduplication and delivery. State (open problems, pending mails) is a
 * small JSON file rewritten atomically after every change, so a restart
 * neither repeats a mail nor loses one. Everything is under one mutex, which
 * is never held while talking to the mail server: a sender thread (or a
 * caller of tend_alerter_flush) copies the mail out, sends, then updates. */
#include "agent/alert.h"
#include "agent/log.h"
#include "util/buf.h"
#include "util/fs.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define ALERT_TEXT_MAX (16 * 1024)
#define ALERT_SUMMARY_MAX 200
#define ALERT_PENDING_MAX 64
#define ALERT_OPEN_MAX 256
#define ALERT_STATE_MAX (4 * 1024 * 1024)

typedef struct {
	tend_alert_kind kind;
	char *commit;
	char *summary;
	time_t since;
} problem;

typedef struct {
	tend_alert_kind kind;
	char *commit;
	char *subject;
	char *body;
	unsigned attempts;
	time_t created, next_try;
	uint64_t id;             /* finds it again after the lock was dropped */
} pending;

struct tend_alerter {
	char *path, *host;
	int have_smtp;
	tend_smtp_opts smtp;     /* deep copy */
	char **smtp_to;
	problem *open;
	size_t n_open;
	pending *queue;
	size_t n_queue;
	unsigned backoff_base, backoff_max;
	uint64_t sent, next_id;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int running, stopping;
	void (*on_sent)(void *ctx);
	void *on_sent_ctx;
	tend_alert_send_fn send;  /* NULL: tend_smtp_send */
	void *send_ctx;
};

static const char *const kind_names[TEND_ALERT__COUNT] = {
	"reconcile-failed", "rollback", "refused-commit", "dependency-blocked",
	"fetch-failing", "reboot-required", "switch-overdue", "held", "degraded", "resolved",
	"recovered"
};

static const char *const kind_titles[TEND_ALERT__COUNT] = {
	"reconcile failed", "rolled back", "commit refused", "blocked on a dependency",
	"fetches failing", "reboot required", "switch running long", "held (operator's rollback kept)",
	"degraded", "resolved", "recovered"
};

const char *tend_alert_kind_name(tend_alert_kind kind)
{
	return (unsigned)kind < TEND_ALERT__COUNT ? kind_names[kind] : NULL;
}

static int kind_from_name(const char *name)
{
	int i;

	for (i = 0; name && i < TEND_ALERT__COUNT; i++)
		if (!strcmp(kind_names[i], name))
			return i;
	return -1;
}

/* Copy text for a mail: at most max bytes, valid UTF-8 only, no control
 * characters but newline and tab (single_line: not even those). */
static char *sanitise(const char *s, size_t max, int single_line)
{
	tend_buf b = TEND_BUF_INIT;
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p), i = 0;

	while (i < len && b.size < max) {
		unsigned char c = p[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
			   (c & 0xf8) == 0xf0 ? 4 : 0;
		size_t k;

		if (n == 1) {
			if ((c == '\n' || c == '\t') && !single_line)
				tend_buf_putc(&b, (char)c);
			else if (c < 0x20 || c == 0x7f)
				tend_buf_putc(&b, ' ');
			else
				tend_buf_putc(&b, (char)c);
			i++;
			continue;
		}
		for (k = 1; n && k < n; k++)
			if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
				n = 0;
		if (n == 2 && c < 0xc2)
			n = 0; /* overlong */
		if (!n) {
			tend_buf_putc(&b, '?');
			i++;
			continue;
		}
		tend_buf_put(&b, p + i, n);
		i += n;
	}
	if (i < len)
		tend_buf_puts(&b, single_line ? "..." : "\n[... truncated]");
	if (!b.ptr)
		tend_buf_puts(&b, "");
	return tend_buf_detach(&b);
}

static char *clean_commit(const char *c)
{
	char *s = sanitise(c ? c : "", 64, 1), *p;

	for (p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_' || *p == '.'))
			*p = '_';
	return s;
}

static void pending_dispose(pending *p)
{
	free(p->commit);
	free(p->subject);
	free(p->body);
}

static void smtp_dispose(tend_alerter *a)
{
	size_t i;

	if (!a->have_smtp)
		return;
	free((char *)a->smtp.url);
	free((char *)a->smtp.from);
	free((char *)a->smtp.username);
	free((char *)a->smtp.password_file);
	free((char *)a->smtp.ca_file);
	for (i = 0; i < a->smtp.n_to; i++)
		free(a->smtp_to[i]);
	free(a->smtp_to);
	a->smtp_to = NULL;
	a->have_smtp = 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int set_smtp(tend_alerter *a, const tend_smtp_opts *smtp)
{
	size_t i;

	smtp_dispose(a);
	memset(&a->smtp, 0, sizeof(a->smtp));
	if (!smtp)
		return 0;
	a->smtp = *smtp;
	a->smtp.url = dup_or_null(smtp->url);
	a->smtp.from = dup_or_null(smtp->from);
	a->smtp.username = dup_or_null(smtp->username);
	a->smtp.password_file = dup_or_null(smtp->password_file);
	a->smtp.ca_file = dup_or_null(smtp->ca_file);
	a->smtp_to = calloc(smtp->n_to ? smtp->n_to : 1, sizeof(char *));
	for (i = 0; a->smtp_to && i < smtp->n_to; i++)
		a->smtp_to[i] = strdup(smtp->to[i]);
	a->smtp.to = (const char *const *)a->smtp_to;
	a->have_smtp = 1;
	return 0;
}

int tend_alerter_set_smtp(tend_alerter *a, const tend_smtp_opts *smtp)
{
	int error;

	pthread_mutex_lock(&a->lock);
	error = set_smtp(a, smtp);
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return error;
}

void tend_alerter_set_backoff(tend_alerter *a, unsigned base_s, unsigned max_s)
{
	pthread_mutex_lock(&a->lock);
	a->backoff_base = base_s ? base_s : 1;
	a->backoff_max = max_s >= a->backoff_base ? max_s : a->backoff_base;
	pthread_mutex_unlock(&a->lock);
}

void tend_alerter_on_sent(tend_alerter *a, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&a->lock);
	a->on_sent = fn;
	a->on_sent_ctx = ctx;
	pthread_mutex_unlock(&a->lock);
}

void tend_alerter_set_sender(tend_alerter *a, tend_alert_send_fn fn, void *ctx)
{
	pthread_mutex_lock(&a->lock);
	a->send = fn;
	a->send_ctx = ctx;
	pthread_mutex_unlock(&a->lock);
}

static int save(tend_alerter *a)
{
	json_t *root = json_object(), *open = json_array(), *queue = json_array();
	char *text = NULL;
	size_t i;
	int error = TEND_ERROR;

	if (!root || !open || !queue)
		goto out;
	for (i = 0; i < a->n_open; i++)
		json_array_append_new(open, json_pack("{s:s, s:s, s:s, s:I}",
			"kind", kind_names[a->open[i].kind], "commit", a->open[i].commit,
			"summary", a->open[i].summary, "since", (json_int_t)a->open[i].since));
	for (i = 0; i < a->n_queue; i++) {
		pending *p = &a->queue[i];

		json_array_append_new(queue, json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:I}",
			"kind", kind_names[p->kind], "commit", p->commit, "subject", p->subject,
			"body", p->body, "attempts", (int)p->attempts,
			"created", (json_int_t)p->created, "next_try", (json_int_t)p->next_try));
	}
	json_object_set_new(root, "version", json_integer(1));
	json_object_set(root, "open", open);
	json_object_set(root, "pending", queue);
	if (!(text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS)))
		goto out;
	if ((error = tend_file_write_atomic(a->path, text, strlen(text), 0600, (uid_t)-1,
					    (gid_t)-1)) < 0)
		tend_log(TEND_LOG_ERR, "alerts: cannot save %s: %s", a->path, tend_error_last());
out:
	free(text);
	json_decref(open);
	json_decref(queue);
	json_decref(root);
	return error;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void load(tend_alerter *a)
{
	tend_buf text = TEND_BUF_INIT;
	json_error_t jerr;
	json_t *root = NULL, *v;
	size_t i;
	int error;

	if ((error = tend_file_read(&text, a->path, ALERT_STATE_MAX)) < 0) {
		if (error != TEND_ENOTFOUND)
			tend_log(TEND_LOG_WARNING, "alerts: %s; starting with no pending alerts",
				 tend_error_last());
		goto out;
	}
	if (!(root = json_loadb(text.ptr, text.size, 0, &jerr)) || !json_is_object(root)) {
		tend_log(TEND_LOG_WARNING, "alerts: %s:%d:%d: %s; starting with no pending alerts",
			 a->path, jerr.line, jerr.column, root ? "not a JSON object" : jerr.text);
		goto out;
	}
	json_array_foreach(json_object_get(root, "open"), i, v) {
		int k = kind_from_name(jstr(v, "kind"));

		if (k < 0 || k >= TEND_ALERT_RESOLVED || a->n_open >= ALERT_OPEN_MAX)
			continue;
		a->open[a->n_open].kind = (tend_alert_kind)k;
		a->open[a->n_open].commit = clean_commit(jstr(v, "commit"));
		a->open[a->n_open].summary = sanitise(jstr(v, "summary"), ALERT_SUMMARY_MAX, 1);
		a->open[a->n_open].since = (time_t)json_integer_value(json_object_get(v, "since"));
		a->n_open++;
	}
	json_array_foreach(json_object_get(root, "pending"), i, v) {
		int k = kind_from_name(jstr(v, "kind"));
		pending *p = &a->queue[a->n_queue];

		if (k < 0 || a->n_queue >= ALERT_PENDING_MAX)
			continue;
		p->kind = (tend_alert_kind)k;
		p->commit = clean_commit(jstr(v, "commit"));
		p->subject = sanitise(jstr(v, "subject"), ALERT_SUMMARY_MAX, 1);
		p->body = sanitise(jstr(v, "body"), ALERT_TEXT_MAX + 1024, 0);
		p->attempts = (unsigned)json_integer_value(json_object_get(v, "attempts"));
		p->created = (time_t)json_integer_value(json_object_get(v, "created"));
		p->next_try = (time_t)json_integer_value(json_object_get(v, "next_try"));
		p->id = ++a->next_id;
		a->n_queue++;
	}
out:
	json_decref(root);
	tend_buf_dispose(&text);
}

int tend_alerter_open(tend_alerter **out, const char *state_file, const char *host,
		      const tend_smtp_opts *smtp)
{
	tend_alerter *a;

	*out = NULL;
	if (!(a = calloc(1, sizeof(*a))) || !(a->path = strdup(state_file)) ||
	    !(a->host = sanitise(host, 64, 1)) ||
	    !(a->open = calloc(ALERT_OPEN_MAX, sizeof(problem))) ||
	    !(a->queue = calloc(ALERT_PENDING_MAX, sizeof(pending)))) {
		free(a ? a->path : NULL);
		free(a ? a->host : NULL);
		free(a ? a->open : NULL);
		free(a);
		tend_error_set("alerts: out of memory");
		return TEND_ERROR;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	tend_alerter_set_backoff(a, 30, 3600);
	set_smtp(a, smtp);
	load(a);
	*out = a;
	return 0;
}

void tend_alerter_free(tend_alerter *a)
{
	size_t i;

	if (!a)
		return;
	tend_alerter_stop(a);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	for (i = 0; a->open && i < a->n_open; i++) {
		free(a->open[i].commit);
		free(a->open[i].summary);
	}
	for (i = 0; a->queue && i < a->n_queue; i++)
		pending_dispose(&a->queue[i]);
	smtp_dispose(a);
	free(a->open);
	free(a->queue);
	free(a->path);
	free(a->host);
	free(a);
}

static void format_time(char out[32], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Append to the queue, dropping the oldest mail when full (logged). */
static int enqueue(tend_alerter *a, tend_alert_kind kind, const char *commit,
		   char *subject, char *body, time_t now)
{
	pending *p;

	if (!subject || !body) {
		free(subject);
		free(body);
		tend_error_set("alerts: out of memory");
		return TEND_ERROR;
	}
	if (a->n_queue == ALERT_PENDING_MAX) {
		tend_log(TEND_LOG_WARNING, "alerts: queue full, dropping unsent mail '%s'",
			 a->queue[0].subject);
		pending_dispose(&a->queue[0]);
		memmove(a->queue, a->queue + 1, (a->n_queue - 1) * sizeof(pending));
		a->n_queue--;
	}
	p = &a->queue[a->n_queue++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->commit = strdup(commit);
	p->subject = subject;
	p->body = body;
	p->created = now;
	p->next_try = now;
	p->id = ++a->next_id;
	pthread_cond_signal(&a->cond);
	return 0;
}

static int raise_locked(tend_alerter *a, tend_alert_kind kind, const char *commit,
			const char *summary, const char *detail, time_t now)
{
	char *c = NULL, *sum = NULL, *det = NULL, *subject = NULL, *body = NULL, when[32];
	size_t i;
	int error = TEND_ERROR;

	if ((unsigned)kind >= TEND_ALERT_RESOLVED) {
		tend_error_set("alerts: cannot raise alert kind %d", (int)kind);
		return TEND_EINVALID;
	}
	c = clean_commit(commit);
	for (i = 0; i < a->n_open; i++)
		if (a->open[i].kind == kind && !strcmp(a->open[i].commit, c)) {
			free(c);
			return 0;
		}
	if (a->n_open == ALERT_OPEN_MAX) {
		tend_log(TEND_LOG_WARNING, "alerts: too many open problems; not mailing %s for %s",
			 kind_names[kind], c);
		free(c);
		return 0;
	}
	sum = sanitise(summary, ALERT_SUMMARY_MAX, 1);
	det = sanitise(detail, ALERT_TEXT_MAX, 0);
	format_time(when, now);
	/* The subject stays short; the summary is in full in the body. */
	if (asprintf(&subject, "[tend] %s: %s at %.12s: %.80s%s", a->host, kind_titles[kind],
		     *c ? c : "(no commit)", sum, strlen(sum) > 80 ? "..." : "") < 0)
		subject = NULL;
	if (asprintf(&body,
		     "Host:    %s\nCommit:  %s\nAlert:   %s\nTime:    %s\nSummary: %s\n\n%s%s"
		     "\nYou get this mail once for this host, commit and kind of failure;\n"
		     "another mail follows when the host is healthy again.\n",
		     a->host, *c ? c : "(none)", kind_names[kind], when, sum, det,
		     *det && det[strlen(det) - 1] != '\n' ? "\n" : "") < 0)
		body = NULL;
	if ((error = enqueue(a, kind, c, subject, body, now)) < 0)
		goto out;
	a->open[a->n_open].kind = kind;
	a->open[a->n_open].commit = c;
	a->open[a->n_open].summary = sum;
	a->open[a->n_open].since = now;
	a->n_open++;
	c = sum = NULL;
	tend_log(TEND_LOG_NOTICE, "alert queued: %s", a->queue[a->n_queue - 1].subject);
	save(a);
	error = 1;
out:
	free(c);
	free(sum);
	free(det);
	return error;
}

/* Problems a healthy reconcile does not close: the one asked for, and a degraded service
 * (its liveness runs say when it is over). */
#define KEPT(kind, keep) ((int)(kind) == (keep) || (kind) == TEND_ALERT_DEGRADED)

static int resolve_locked(tend_alerter *a, const char *commit, time_t now, int keep)
{
	tend_buf b = TEND_BUF_INIT;
	char *c, *subject = NULL, when[32], since[32];
	size_t i, kept = 0;
	int error;

	for (i = 0; i < a->n_open; i++)
		kept += KEPT(a->open[i].kind, keep);
	if (a->n_open == kept)
		return 0;
	c = clean_commit(commit);
	format_time(when, now);
	tend_buf_printf(&b, "Host:    %s\nCommit:  %s\nTime:    %s\n\n"
			"The host is healthy again. Resolved:\n", a->host, c, when);
	for (i = 0; i < a->n_open; i++) {
		if (KEPT(a->open[i].kind, keep))
			continue;
		format_time(since, a->open[i].since);
		tend_buf_printf(&b, "  - %s at %s (since %s): %s\n", kind_names[a->open[i].kind],
				a->open[i].commit, since, a->open[i].summary);
	}
	if (asprintf(&subject, "[tend] %s: resolved, healthy at %.12s", a->host, c) < 0)
		subject = NULL;
	if ((error = enqueue(a, TEND_ALERT_RESOLVED, c, subject, tend_buf_detach(&b), now)) < 0)
		goto out;
	for (i = 0, kept = 0; i < a->n_open; i++) {
		if (KEPT(a->open[i].kind, keep)) {
			a->open[kept++] = a->open[i];
			continue;
		}
		free(a->open[i].commit);
		free(a->open[i].summary);
	}
	a->n_open = kept;
	tend_log(TEND_LOG_NOTICE, "alert queued: %s", a->queue[a->n_queue - 1].subject);
	save(a);
	error = 1;
out:
	free(c);
	tend_buf_dispose(&b);
	return error;
}

int tend_alerter_raise(tend_alerter *a, tend_alert_kind kind, const char *commit,
		       const char *summary, const char *detail, time_t now)
{
	int r;

	pthread_mutex_lock(&a->lock);
	r = raise_locked(a, kind, commit, summary, detail, now);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int tend_alerter_recover(tend_alerter *a, tend_alert_kind kind, const char *summary,
			 const char *detail, time_t now)
{
	tend_buf b = TEND_BUF_INIT;
	char *sum = NULL, *det = NULL, *subject = NULL, *c = NULL, when[32], since[32];
	size_t i, k;
	int error = 0;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_open && a->open[i].kind != kind; i++)
		;
	if (i == a->n_open)
		goto out;
	sum = sanitise(summary, ALERT_SUMMARY_MAX, 1);
	det = sanitise(detail, ALERT_TEXT_MAX, 0);
	c = strdup(a->open[i].commit);
	format_time(when, now);
	if (asprintf(&subject, "[tend] %s: %s at %.12s: %.80s", a->host, kind_titles[TEND_ALERT_RECOVERED],
		     c && *c ? c : "(none)", sum ? sum : "") < 0)
		subject = NULL;
	tend_buf_printf(&b, "Host:    %s\nCommit:  %s\nAlert:   %s\nTime:    %s\nSummary: %s\n\n%s%s",
			a->host, c && *c ? c : "(none)", kind_names[TEND_ALERT_RECOVERED], when,
			sum ? sum : "", det ? det : "",
			det && *det && det[strlen(det) - 1] != '\n' ? "\n\n" : det && *det ? "\n" : "");
	/* Every open problem of the kind is over (one per commit it was seen at). */
	for (k = i; k < a->n_open; k++) {
		if (a->open[k].kind != kind)
			continue;
		format_time(since, a->open[k].since);
		tend_buf_printf(&b, "Was %s since %s: %s\n", kind_names[kind], since,
				a->open[k].summary ? a->open[k].summary : "");
	}
	if ((error = enqueue(a, TEND_ALERT_RECOVERED, c ? c : "", subject, tend_buf_detach(&b), now)) < 0)
		goto out;
	for (i = 0, k = 0; i < a->n_open; i++) {
		if (a->open[i].kind != kind) {
			a->open[k++] = a->open[i];
			continue;
		}
		free(a->open[i].commit);
		free(a->open[i].summary);
	}
	a->n_open = k;
	tend_log(TEND_LOG_NOTICE, "alert queued: %s", a->queue[a->n_queue - 1].subject);
	save(a);
	error = 1;
out:
	pthread_mutex_unlock(&a->lock);
	tend_buf_dispose(&b);
	free(c);
	free(sum);
	free(det);
	return error;
}

int tend_alerter_is_open(tend_alerter *a, tend_alert_kind kind)
{
	size_t i;
	int open = 0;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_open && !open; i++)
		open = a->open[i].kind == kind;
	pthread_mutex_unlock(&a->lock);
	return open;
}

int tend_alerter_resolve(tend_alerter *a, const char *commit, time_t now)
{
	return tend_alerter_resolve_keep(a, commit, now, -1);
}

int tend_alerter_resolve_keep(tend_alerter *a, const char *commit, time_t now, int keep)
{
	int r;

	pthread_mutex_lock(&a->lock);
	r = resolve_locked(a, commit, now, keep);
	pthread_mutex_unlock(&a->lock);
	return r;
}

static pending *find(tend_alerter *a, uint64_t id, size_t *idx)
{
	size_t i;

	for (i = 0; i < a->n_queue; i++)
		if (a->queue[i].id == id) {
			*idx = i;
			return &a->queue[i];
		}
	return NULL;
}

static void drop(tend_alerter *a, size_t i)
{
	pending_dispose(&a->queue[i]);
	memmove(&a->queue[i], &a->queue[i + 1], (a->n_queue - i - 1) * sizeof(pending));
	a->n_queue--;
}

/* Send every due mail; the lock is dropped around each SMTP conversation.
 * Stops at the first failure (the server is down for the others too). */
int tend_alerter_flush(tend_alerter *a, time_t now)
{
	tend_smtp_opts smtp;
	tend_alerter copy;   /* only its smtp fields: a private copy of the settings */
	tend_alert_send_fn send;
	void *send_ctx;
	int sent = 0;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		pending *p = NULL;
		char *subject, *body;
		uint64_t id;
		size_t i, k;
		int rc;

		for (i = 0; i < a->n_queue && !p; i++)
			if (a->queue[i].next_try <= now)
				p = &a->queue[i];
		if (!p)
			break;
		i--;
		if (!a->have_smtp) {
			/* No mail configured: the log line is the alert. */
			tend_log(TEND_LOG_WARNING, "alert (email not configured): %s", p->subject);
			drop(a, i);
			save(a);
			continue;
		}
		id = p->id;
		subject = strdup(p->subject);
		body = strdup(p->body);
		memset(&copy, 0, sizeof(copy));
		set_smtp(&copy, &a->smtp);
		smtp = copy.smtp;
		send = a->send;
		send_ctx = a->send_ctx;
		pthread_mutex_unlock(&a->lock);
		rc = !subject || !body ? TEND_ERROR :
		     send ? send(send_ctx, &smtp, subject, body) : tend_smtp_send(&smtp, subject, body);
		pthread_mutex_lock(&a->lock);
		smtp_dispose(&copy);
		free(body);
		if (rc == 0) {
			tend_log(TEND_LOG_NOTICE, "alert sent: %s", subject);
			free(subject);
			a->sent++;
			sent++;
			if (find(a, id, &k))
				drop(a, k);
			save(a);
			if (a->on_sent) {
				void (*fn)(void *) = a->on_sent;
				void *ctx = a->on_sent_ctx;

				/* Not under our lock: the callback takes the caller's locks. */
				pthread_mutex_unlock(&a->lock);
				fn(ctx);
				pthread_mutex_lock(&a->lock);
			}
			continue;
		}
		free(subject);
		if ((p = find(a, id, &k))) {
			unsigned shift;
			time_t delay;

			p->attempts++;
			shift = p->attempts - 1 < 16 ? p->attempts - 1 : 16;
			delay = (time_t)a->backoff_base << shift;
			if (delay > (time_t)a->backoff_max)
				delay = a->backoff_max;
			p->next_try = now + delay;
			tend_log(TEND_LOG_ERR, "alert not sent (attempt %u, next in %llds): %s",
				 p->attempts, (long long)delay, tend_error_last());
			/* Retry the others together later instead of each timing out now. */
			for (i = 0; i < a->n_queue; i++)
				if (a->queue[i].next_try <= now)
					a->queue[i].next_try = p->next_try;
			save(a);
		}
		break;
	}
	pthread_mutex_unlock(&a->lock);
	return sent;
}

static void *sender_main(void *arg)
{
	tend_alerter *a = arg;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		time_t now = time(NULL), due = 0;
		struct timespec ts;
		size_t i;

		for (i = 0; i < a->n_queue; i++)
			if (!due || a->queue[i].next_try < due)
				due = a->queue[i].next_try;
		if (due && due <= now) {
			pthread_mutex_unlock(&a->lock);
			tend_alerter_flush(a, now);
			pthread_mutex_lock(&a->lock);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += due ? due - now : 3600;
		pthread_cond_timedwait(&a->cond, &a->lock, &ts);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int tend_alerter_start(tend_alerter *a)
{
	int error = 0;

	pthread_mutex_lock(&a->lock);
	if (!a->running) {
		a->stopping = 0;
		sigset_t all, old;
		int rc;

		/* The sender must never run the agent's signal handlers. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&a->thread, NULL, sender_main, a);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0) {
			tend_error_set("alerts: cannot start the sender thread");
			error = TEND_ERROR;
		} else {
			a->running = 1;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return error;
}

void tend_alerter_stop(tend_alerter *a)
{
	int running;

	pthread_mutex_lock(&a->lock);
	running = a->running;
	a->stopping = 1;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	if (running)
		pthread_join(a->thread, NULL);
	pthread_mutex_lock(&a->lock);
	a->running = 0;
	pthread_mutex_unlock(&a->lock);
}

time_t tend_alerter_next_due(const tend_alerter *a)
{
	tend_alerter *m = (tend_alerter *)a;
	time_t next = 0;
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < a->n_queue; i++)
		if (!next || a->queue[i].next_try < next)
			next = a->queue[i].next_try;
	pthread_mutex_unlock(&m->lock);
	return next;
}

size_t tend_alerter_pending(const tend_alerter *a)
{
	tend_alerter *m = (tend_alerter *)a;
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = a->n_queue;
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t tend_alerter_open_problems(const tend_alerter *a)
{
	tend_alerter *m = (tend_alerter *)a;
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = a->n_open;
	pthread_mutex_unlock(&m->lock);
	return n;
}

uint64_t tend_alerter_sent(const tend_alerter *a)
{
	tend_alerter *m = (tend_alerter *)a;
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	n = a->sent;
	pthread_mutex_unlock(&m->lock);
	return n;
}
