/* The HTTP endpoint over real loopback requests: /healthz, /v1/status as
 * JSON, /metrics checked by a strict Prometheus text-format parser, and
 * methods/paths that must be refused. */
#define TEST_WITH_HTTP_CLIENT
#include "tests/agent/helpers.h"
#include "agent/http.h"
#include "agent/log.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- A strict parser for the Prometheus text exposition format 0.0.4 ----
 * Checks: metric and label names, label value escapes, float values, HELP and
 * TYPE at most once per family and before its samples, families contiguous,
 * no duplicate series, every line newline-terminated. Fails the test on any
 * violation; returns the samples as "name{labels}" -> value. */
typedef struct {
	char series[1024];
	double value;
} sample;

typedef struct {
	sample s[256];
	size_t n;
} samples;

static int is_name_start(int c) { return isalpha(c) || c == '_' || c == ':'; }
static int is_name_char(int c) { return isalnum(c) || c == '_' || c == ':'; }

static const char *parse_name(const char *p, char *out, size_t max, int allow_colon)
{
	size_t n = 0;

	if (!is_name_start((unsigned char)*p) || (!allow_colon && *p == ':'))
		return NULL;
	while (is_name_char((unsigned char)*p) && (allow_colon || *p != ':')) {
		if (n + 1 >= max)
			return NULL;
		out[n++] = *p++;
	}
	out[n] = '\0';
	return p;
}

static int parse_float(const char *s, double *out)
{
	char *end;

	if (!strcmp(s, "NaN")) { *out = NAN; return 0; }
	if (!strcmp(s, "+Inf")) { *out = INFINITY; return 0; }
	if (!strcmp(s, "-Inf")) { *out = -INFINITY; return 0; }
	if (!*s || isspace((unsigned char)*s))
		return -1;
	*out = strtod(s, &end);
	return *end ? -1 : 0;
}

static const char *family_of(const char *name, char types[][128], char (*kinds)[16], size_t nt,
			     const char **kind)
{
	size_t i;

	for (i = 0; i < nt; i++)
		if (!strcmp(types[i], name)) {
			*kind = kinds[i];
			return types[i];
		}
	return NULL;
}

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "metrics line invalid (%s): %s\n", #c, where); return -1; } } while (0)

/* 0 when text is valid exposition format; -1 (with a message) otherwise. */
static int prom_parse(samples *out, const char *text)
{
	static char types[128][128], kinds[128][16], helps[128][128];
	size_t nt = 0, nh = 0, i;
	char current[128] = "", done[128][128];
	size_t ndone = 0;
	const char *line = text, *where = text;

	out->n = 0;
	CHECK(*text);
	CHECK((text[strlen(text) - 1]) == ('\n'));
	while (*line) {
		const char *nl = strchr(line, '\n');
		char buf[1024], name[128], labels[512] = "", *p;
		const char *q, *kind = NULL;
		double v;

		CHECK((nl) != NULL);
		CHECK((size_t)(nl - line) < sizeof(buf));
		memcpy(buf, line, (size_t)(nl - line));
		buf[nl - line] = '\0';
		where = buf;
		line = nl + 1;
		if (!buf[0])
			continue;
		if (!strncmp(buf, "# HELP ", 7) || !strncmp(buf, "# TYPE ", 7)) {
			int is_type = buf[2] == 'T';

			q = parse_name(buf + 7, name, sizeof(name), 1);
			CHECK((q) != NULL);
			CHECK((*q) == (' '));
			if (is_type) {
				CHECK(!strcmp(q + 1, "counter") || !strcmp(q + 1, "gauge") ||
				      !strcmp(q + 1, "histogram") || !strcmp(q + 1, "summary") ||
				      !strcmp(q + 1, "untyped"));
				for (i = 0; i < nt; i++)
					CHECK(strcmp(types[i], name) != 0);   /* once */
				/* TYPE before the family's first sample. */
				for (i = 0; i < ndone; i++)
					CHECK(strcmp(done[i], name) != 0);
				CHECK(strcmp(current, name) != 0);
				snprintf(types[nt], sizeof(types[nt]), "%s", name);
				snprintf(kinds[nt++], sizeof(kinds[0]), "%s", q + 1);
			} else {
				for (i = 0; i < nh; i++)
					CHECK(strcmp(helps[i], name) != 0);
				snprintf(helps[nh++], sizeof(helps[0]), "%s", name);
				/* HELP text escapes: only \\ and \n. */
				for (p = (char *)q + 1; *p; p++)
					if (*p == '\\') {
						p++;
						CHECK(*p == '\\' || *p == 'n');
					}
			}
			continue;
		}
		if (buf[0] == '#')
			continue;   /* plain comment */
		q = parse_name(buf, name, sizeof(name), 1);
		CHECK((q) != NULL);
		if (*q == '{') {
			size_t n = 0;
			char lname[128];

			labels[n++] = '{';
			q++;
			while (*q != '}') {
				q = parse_name(q, lname, sizeof(lname), 0);
				CHECK((q) != NULL);
				CHECK(strncmp(lname, "__", 2) != 0);
				n += (size_t)snprintf(labels + n, sizeof(labels) - n, "%s%s=\"",
						      n > 1 ? "," : "", lname);
				CHECK((*q++) == ('='));
				CHECK((*q++) == ('"'));
				while (*q != '"') {
					CHECK(*q && *q != '\n');
					if (*q == '\\') {
						CHECK(q[1] == '\\' || q[1] == '"' || q[1] == 'n');
						labels[n++] = *q++;
					}
					labels[n++] = *q++;
					CHECK(n < sizeof(labels) - 8);
				}
				labels[n++] = '"';
				q++;
				if (*q == ',')
					q++;
				else
					CHECK((*q) == ('}'));
			}
			labels[n++] = '}';
			labels[n] = '\0';
			q++;
		}
		CHECK((*q) == (' '));
		q++;
		p = strchr(q, ' ');
		if (p) {
			/* Optional timestamp: an integer. */
			char *end;

			*p = '\0';
			strtoll(p + 1, &end, 10);
			CHECK(p[1] && !*end);
		}
		CHECK(parse_float(q, &v) == 0);
		/* Every family is typed here; a family's samples are contiguous. */
		CHECK((family_of(name, types, kinds, nt, &kind)) != NULL);
		if (!strcmp(kind, "counter"))
			CHECK(v >= 0);
		if (strcmp(current, name)) {
			for (i = 0; i < ndone; i++)
				CHECK(strcmp(done[i], name) != 0);
			if (current[0])
				snprintf(done[ndone++], sizeof(done[0]), "%s", current);
			snprintf(current, sizeof(current), "%s", name);
		}
		CHECK(out->n < 256);
		snprintf(out->s[out->n].series, sizeof(out->s[0].series), "%s%s", name, labels);
		for (i = 0; i < out->n; i++)
			CHECK(strcmp(out->s[i].series, out->s[out->n].series) != 0);
		out->s[out->n++].value = v;
	}
	return 0;
}

#undef CHECK

static double prom_get(const samples *s, const char *series)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->s[i].series, series))
			return s->s[i].value;
	fail_msg("series %s not in /metrics", series);
	return NAN;
}

/* ---- the endpoint ---- */

typedef struct {
	tend_agent_status st;
	tend_http *http;
	char base[64];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	tend_http_opts o = { 0 };

	tend_log_set_level(TEND_LOG_ERR);
	assert_int_equal(tend_agent_status_init(&f->st, "db1"), 0);
	o.status = &f->st;
	assert_int_equal(tend_http_start(&f->http, &o), 0);
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", tend_http_port(f->http));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tend_http_stop(f->http);
	tend_agent_status_dispose(&f->st);
	free(f);
	return 0;
}

static long get(fixture *f, const char *method, const char *path, tend_buf *out)
{
	char url[128];

	snprintf(url, sizeof(url), "%s%s", f->base, path);
	return test_http(method, url, NULL, NULL, 0, out);
}

static void test_healthz_and_refusals(void **state)
{
	fixture *f = *state;
	tend_buf b = TEND_BUF_INIT;

	assert_int_equal(get(f, "GET", "/healthz", &b), 200);
	assert_string_equal(b.ptr, "ok\n");
	assert_int_equal(get(f, "GET", "/nope", NULL), 404);
	assert_int_equal(get(f, "DELETE", "/v1/status", NULL), 405);
	assert_int_equal(get(f, "GET", "/v1/hook", NULL), 405);
	tend_buf_dispose(&b);
}

static void test_status_json(void **state)
{
	fixture *f = *state;
	tend_buf b = TEND_BUF_INIT;
	tend_service_health svcs[3] = {
		{ "postgres", TEND_HEALTH_HEALTHY, "tcp 127.0.0.1:5432", 1700000000 },
		{ "web", TEND_HEALTH_FAILING, "http http://127.0.0.1:8080/health", 1700000060 },
		{ "worker", TEND_HEALTH_UNKNOWN, NULL, 0 },
	};
	json_error_t jerr;
	json_t *j, *s;

	/* Before any reconcile. */
	assert_int_equal(get(f, "GET", "/v1/status", &b), 200);
	j = json_loads(b.ptr, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "host")), "db1");
	assert_string_equal(json_string_value(json_object_get(j, "phase")), "starting");
	assert_true(json_is_null(json_object_get(j, "applied_commit")));
	json_decref(j);
	tend_buf_clear(&b);

	/* The daemon's update is what the next request sees. */
	tend_agent_status_lock(&f->st);
	tend_agent_status_set_str(&f->st.applied_commit, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
	tend_agent_status_set_str(&f->st.last_error, "probe web failed: \"503\"");
	tend_agent_status_set_services(&f->st, svcs, 3);
	f->st.phase = TEND_PHASE_ROLLED_BACK;
	f->st.generation = 42;
	tend_agent_status_unlock(&f->st);
	assert_int_equal(get(f, "GET", "/v1/status", &b), 200);
	j = json_loads(b.ptr, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "phase")), "rolled-back");
	assert_string_equal(json_string_value(json_object_get(j, "applied_commit")),
			    "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
	assert_string_equal(json_string_value(json_object_get(j, "last_error")), "probe web failed: \"503\"");
	assert_int_equal(json_integer_value(json_object_get(j, "generation")), 42);
	s = json_object_get(j, "services");
	assert_int_equal(json_object_size(s), 3);
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "web"), "health")),
			    "failing");
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "web"), "probe")),
			    "http http://127.0.0.1:8080/health");
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "web"), "checked_at")),
			    "2023-11-14T22:14:20Z");
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "postgres"), "health")),
			    "healthy");
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "worker"), "health")),
			    "unknown");
	assert_true(json_is_null(json_object_get(json_object_get(s, "worker"), "probe")));
	assert_true(json_is_null(json_object_get(json_object_get(s, "worker"), "checked_at")));
	json_decref(j);
	tend_buf_dispose(&b);
}

static void test_metrics_parse(void **state)
{
	fixture *f = *state;
	tend_buf b = TEND_BUF_INIT;
	samples *s = calloc(1, sizeof(*s));
	tend_service_health svc[2] = { { "web\"x\\y", TEND_HEALTH_HEALTHY, "tcp 127.0.0.1:1", 1 },
				       { "idle", TEND_HEALTH_UNKNOWN, NULL, 0 } };

	assert_int_equal(get(f, "GET", "/metrics", &b), 200);
	assert_int_equal(prom_parse(s, b.ptr), 0);
	assert_true(prom_get(s, "tend_last_reconcile_success") == 0);
	assert_true(prom_get(s, "tend_phase{phase=\"starting\"}") == 1);
	assert_true(prom_get(s, "tend_applied_commit_info{host=\"db1\",commit=\"\"}") == 1);
	tend_buf_clear(&b);

	tend_agent_status_lock(&f->st);
	tend_agent_status_set_str(&f->st.applied_commit, "abc\"def\nx");   /* hostile label */
	tend_agent_status_set_services(&f->st, svc, 2);
	f->st.phase = TEND_PHASE_CONVERGED;
	f->st.last_outcome = TEND_OUTCOME_SUCCESS;
	f->st.last_duration_s = 12.5;
	f->st.reconciles[TEND_OUTCOME_SUCCESS] = 7;
	f->st.reconciles[TEND_OUTCOME_ROLLED_BACK] = 2;
	f->st.rollbacks = 2;
	f->st.fetch_failures = 3;
	f->st.refused_commits = 1;
	f->st.alerts_sent = 4;
	tend_agent_status_unlock(&f->st);
	assert_int_equal(get(f, "GET", "/metrics", &b), 200);
	assert_int_equal(prom_parse(s, b.ptr), 0);
	assert_true(prom_get(s, "tend_last_reconcile_success") == 1);
	assert_true(prom_get(s, "tend_last_reconcile_duration_seconds") == 12.5);
	assert_true(prom_get(s, "tend_reconciles_total{outcome=\"success\"}") == 7);
	assert_true(prom_get(s, "tend_reconciles_total{outcome=\"rolled-back\"}") == 2);
	assert_true(prom_get(s, "tend_rollbacks_total") == 2);
	assert_true(prom_get(s, "tend_fetch_failures_total") == 3);
	assert_true(prom_get(s, "tend_refused_commits_total") == 1);
	assert_true(prom_get(s, "tend_alerts_sent_total") == 4);
	assert_true(prom_get(s, "tend_phase{phase=\"converged\"}") == 1);
	assert_true(prom_get(s, "tend_phase{phase=\"starting\"}") == 0);
	assert_true(prom_get(s, "tend_applied_commit_info{host=\"db1\",commit=\"abc\\\"def\\nx\"}") == 1);
	assert_true(prom_get(s, "tend_service_healthy{service=\"web\\\"x\\\\y\"}") == 1);
	assert_null(strstr(b.ptr, "service=\"idle\""));   /* not probed: no sample */
	free(s);
	tend_buf_dispose(&b);
}

static void test_parser_rejects_bad_exposition(void **state)
{
	/* The parser must be able to fail: run it in a child on broken text. */
	const char *bad[] = {
		"tend_x 1\n",                                            /* untyped family */
		"# TYPE tend_x gauge\ntend_x{a=\"1\"} one\n",              /* bad value */
		"# TYPE tend_x gauge\ntend_x{a=\"1\\q\"} 1\n",             /* bad escape */
		"# TYPE tend_x gauge\ntend_x 1\n# TYPE tend_y gauge\ntend_y 1\ntend_x 2\n", /* split */
		"# TYPE tend_x gauge\ntend_x 1",                          /* no final newline */
		"# TYPE tend_x counter\ntend_x -1\n",                     /* negative counter */
	};
	size_t i;

	samples *s = calloc(1, sizeof(*s));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(prom_parse(s, bad[i]), -1);
	free(s);
}

static void test_bind_errors(void **state)
{
	fixture *f = *state;
	tend_http *h = NULL;
	tend_http_opts o = { 0 };

	o.status = &f->st;
	o.address = "not-an-ip";
	assert_int_equal(tend_http_start(&h, &o), TEND_EINVALID);
	o.address = "127.0.0.1";
	o.port = tend_http_port(f->http);   /* taken */
	assert_int_equal(tend_http_start(&h, &o), TEND_ERROR);
	assert_non_null(strstr(tend_error_last(), "127.0.0.1:"));
	o.address = "::1";
	o.port = 0;
	if (tend_http_start(&h, &o) == 0) {   /* hosts without IPv6 loopback skip this */
		char url[64];

		snprintf(url, sizeof(url), "http://[::1]:%d/healthz", tend_http_port(h));
		assert_int_equal(test_http("GET", url, NULL, NULL, 0, NULL), 200);
		tend_http_stop(h);
	}
}

/* ---- slow clients ---- */

/* Connections from 127.0.0.<first>..<first+n_addr-1>, per_addr each, that
 * send the start of a request and then one byte at a time, never finishing
 * it; a thread keeps them trickling and counts those the server closed. */
typedef struct {
	int fds[512];
	int n, closed;
	int stop;
	pthread_mutex_t lock;
	pthread_t thread;
} trickle;

static void *trickle_main(void *arg)
{
	trickle *t = arg;
	int i, stop = 0;

	while (!stop) {
		pthread_mutex_lock(&t->lock);
		for (i = 0; i < t->n; i++) {
			char b;

			if (t->fds[i] < 0)
				continue;
			if (send(t->fds[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ||
			    recv(t->fds[i], &b, 1, MSG_DONTWAIT) == 0) {
				close(t->fds[i]);
				t->fds[i] = -1;
				t->closed++;
			}
		}
		stop = t->stop;
		pthread_mutex_unlock(&t->lock);
		test_sleep_ms(300);
	}
	return NULL;
}

static void trickle_start(trickle *t, int port, int first, int n_addr, int per_addr)
{
	const char *start = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	int a, k;

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	for (a = 0; a < n_addr; a++)
		for (k = 0; k < per_addr; k++) {
			struct sockaddr_in src = { 0 }, dst = { 0 };
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

			assert_true(fd >= 0);
			src.sin_family = dst.sin_family = AF_INET;
			src.sin_addr.s_addr = htonl(0x7f000000u | (unsigned)(first + a));
			dst.sin_addr.s_addr = htonl(0x7f000001u);
			dst.sin_port = htons((uint16_t)port);
			assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
			assert_int_equal(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
			send(fd, start, strlen(start), MSG_NOSIGNAL);
			t->fds[t->n++] = fd;
		}
	assert_int_equal(pthread_create(&t->thread, NULL, trickle_main, t), 0);
}

static int trickle_closed(trickle *t)
{
	int n;

	pthread_mutex_lock(&t->lock);
	n = t->closed;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void trickle_stop(trickle *t)
{
	int i;

	pthread_mutex_lock(&t->lock);
	t->stop = 1;
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	for (i = 0; i < t->n; i++)
		if (t->fds[i] >= 0)
			close(t->fds[i]);
	pthread_mutex_destroy(&t->lock);
}

/* Issue 17 F11: 80 connections from 5 loopback addresses trickling a byte
 * at a time kept /healthz unreachable for the whole attack (only idle time
 * counted). Now /healthz and /v1/status answer during it, and every
 * trickling connection is cut by the request deadline while it still
 * trickles. Fails on 247ba6c (/healthz got no answer). */
static void test_slow_clients_do_not_starve(void **state)
{
	fixture *f = *state;
	trickle t;
	long long until;

	trickle_start(&t, tend_http_port(f->http), 2, 5, 16);
	test_sleep_ms(500);   /* the attack is in place: every slot it can get */
	assert_int_equal(get(f, "GET", "/healthz", NULL), 200);
	assert_int_equal(get(f, "GET", "/v1/status", NULL), 200);
	/* the deadline cuts them all, however they trickle (a bound of three
	 * deadlines: a liveness check, not a timing one) */
	until = test_now_ms() + 3 * TEND_HTTP_REQUEST_DEADLINE_MS + 2000;
	while (trickle_closed(&t) < t.n && test_now_ms() < until)
		test_sleep_ms(100);
	assert_int_equal(trickle_closed(&t), t.n);
	trickle_stop(&t);
}

/* The same from many addresses, each within the per-address cap, filling
 * the total: the fair share keeps room for a new address. */
static void test_many_addresses_leave_room(void **state)
{
	fixture *f = *state;
	trickle t;

	trickle_start(&t, tend_http_port(f->http), 10,
		      TEND_HTTP_MAX_CONNECTIONS / 4, 4);   /* as many as the total cap */
	test_sleep_ms(500);
	assert_int_equal(get(f, "GET", "/healthz", NULL), 200);
	trickle_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_healthz_and_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_parse, setup, teardown),
		cmocka_unit_test(test_parser_rejects_bad_exposition),
		cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_clients_do_not_starve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_addresses_leave_room, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
