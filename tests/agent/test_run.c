/* `tend run` end to end with the real binary: a real git repository, real nix
 * builds and switches of the test flake, a real service and probes, a real
 * SMTP server on loopback. A signed webhook triggers a reconcile within a
 * second, a wrong one nothing; a rollback mails once (with the probe output),
 * a repeat of the same failure does not; the fix mails "resolved" once the
 * mail server is back; SIGHUP with a broken configuration keeps the old one;
 * SIGTERM during a probe wait exits 0. Also -n, the lock, tend status. */
#define TEST_WITH_HTTP_CLIENT
#include "tests/agent/helpers.h"
#include "tests/reconcile/fixture.h"

#include <jansson.h>

static const char *hook_secret = "webhook-secret-for-the-test-fleet";

typedef struct {
	char *dir, *repo, *root, *config, *maildir, *log;
	int port, agent_port, smtp_port;
	char base[64];
	const char *probes;        /* the configuration's probes mapping; NULL: {deadline: 60s} */
} run;

static void write_web(run *r, int status, const char *body, int retries)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"name: web\nhost: web1\ndepends_on: [traefik]\n"
		"proxy: {domain: web.lab.test, port: %d}\n"
		"health:\n  startup:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n      timeout: 1s\n      retries: %d\n"
		"settings: {test_port: %d, test_status: %d, test_body: '%s', test_package: web-%d.0}\n",
		r->port, r->port, retries, r->port, status, body, status) > 0);
	test_write_file(r->repo, "services/web/service.yaml", text);
	free(text);
}

static void write_config(run *r, const char *extra)
{
	char *yaml = NULL;

	assert_true(asprintf(&yaml,
		"host: web1\n"
		"repository: {url: repo, branch: main}\n"
		"state_dir: state\n"
		"root: hostroot\n"
		"secrets_root: secrets\n"
		"secrets_storage: disk\n"
		"nix: {extra_options: [--option, substituters, ''], build_timeout: 2m}\n"
		"system: {profile: profiles/system, current_system: run/web1/current-system, switch_timeout: 20s}\n"
		"probes: %s\n"
		"age_identities: [age.key]\n"
		"poll: {interval: 1h, jitter: 0s}\n"
		"listen: {address: 127.0.0.1, port: %d}\n"
		"webhook_secret_file: hook.secret\n"
		"alerts:\n"
		"  email:\n"
		"    to: [ops@lab.test, oncall@lab.test]\n"
		"    from: tend@lab.test\n"
		"    smtp_url: smtp://127.0.0.1:%d\n"
		"    starttls: false\n"
		"%s", r->probes ? r->probes : "{deadline: 60s}", r->agent_port, r->smtp_port,
		extra ? extra : "") > 0);
	test_write_file(r->dir, "agent.yaml", yaml);
	free(yaml);
}

static int setup(void **state)
{
	run *r = calloc(1, sizeof(*r));

	if (!test_have_aiosmtpd() || !test_have("nix") || !test_have("age-keygen")) {
		free(r);
		return -1;
	}
	r->dir = test_tmpdir_make("run");
	assert_true(asprintf(&r->repo, "%s/repo", r->dir) > 0);
	assert_true(asprintf(&r->root, "%s/run", r->dir) > 0);
	assert_true(asprintf(&r->config, "%s/agent.yaml", r->dir) > 0);
	assert_true(asprintf(&r->maildir, "%s/mail", r->dir) > 0);
	assert_true(asprintf(&r->log, "%s/agent.log", r->dir) > 0);
	setenv("TEND_TEST_ROOT", r->root, 1);
	r->port = test_free_port();
	r->agent_port = test_free_port();
	r->smtp_port = test_free_port();
	snprintf(r->base, sizeof(r->base), "http://127.0.0.1:%d", r->agent_port);
	assert_int_equal(test_sh(NULL, r->dir, "git init -q -b main repo && age-keygen -o age.key 2>/dev/null"), 0);
	test_write_file(r->dir, "hook.secret", hook_secret);
	fx_copy_flake(r->repo);
	test_write_file(r->repo, "fleet.yaml",
		"fleet: test\ndomain: lab.test\nhosts:\n  web1: {address: 127.0.0.1}\n"
		"proxy:\n  service: traefik\n  kind: traefik\n  routes_file: /etc/traefik/tend.yml\n"
		"  tls:\n    internal-ca: {kind: internal, suffixes: [.lab.test]}\n");
	test_write_file(r->repo, "services/traefik/service.yaml", "name: traefik\nhost: web1\n");
	write_config(r, NULL);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	run *r = *state;

	fx_stop_services(r->root);
	free(r->repo);
	free(r->root);
	free(r->config);
	free(r->maildir);
	free(r->log);
	test_tmpdir_remove(r->dir);
	free(r);
	return 0;
}

/* A service's entry in /v1/status: "health probe" ("healthy http http://..."),
 * with checked_at required when probed. Caller frees. */
static char *service_health(run *r, const char *name)
{
	json_t *j = test_agent_status(r->base), *svc;
	char *out = NULL;

	assert_non_null(j);
	svc = json_object_get(json_object_get(j, "services"), name);
	if (svc) {
		const char *h = json_string_value(json_object_get(svc, "health"));
		const char *p = json_string_value(json_object_get(svc, "probe"));
		const char *at = json_string_value(json_object_get(svc, "checked_at"));

		assert_non_null(h);
		if (p)
			assert_true(at && strlen(at) == 20 && at[19] == 'Z');
		assert_true(asprintf(&out, "%s %s", h, p ? p : "-") > 0);
	}
	json_decref(j);
	return out ? out : strdup("absent");
}

static void expect_health(run *r, const char *name, const char *health, int probe_port)
{
	char *got = service_health(r, name), *want = NULL;

	if (probe_port)
		assert_true(asprintf(&want, "%s http http://127.0.0.1:%d/", health, probe_port) > 0);
	else
		assert_true(asprintf(&want, "%s -", health) > 0);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static int log_count(run *r, const char *needle)
{
	char *log = test_read_file(r->log), *p;
	int n = 0;

	for (p = log; p && (p = strstr(p, needle)); p++)
		n++;
	free(log);
	return n;
}

static int wait_log_count(run *r, const char *needle, int n, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;

	while (log_count(r, needle) < n && test_now_ms() < end)
		test_sleep_ms(20);
	return log_count(r, needle) >= n;
}

static int wait_mails(run *r, int n, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;

	while (test_maildir_count(r->maildir, NULL) < n && test_now_ms() < end)
		test_sleep_ms(100);
	return test_maildir_count(r->maildir, NULL);
}

/* POST /v1/hook signed with key (computed by Python's hmac). */
static long hook(run *r, const char *key)
{
	const char *body = "{\"ref\":\"refs/heads/main\"}";
	tend_buf sig = TEND_BUF_INIT;
	char hdr[160], url[96];
	const char *headers[] = { hdr, NULL };
	long code;

	assert_int_equal(test_sh(&sig, NULL, "/usr/bin/python3 -c 'import hmac, hashlib, sys; "
				 "sys.stdout.write(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), "
				 "hashlib.sha256).hexdigest())' '%s' '%s'", key, body), 0);
	snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: sha256=%s", sig.ptr);
	snprintf(url, sizeof(url), "%s/v1/hook", r->base);
	code = test_http("POST", url, headers, body, strlen(body), NULL);
	tend_buf_dispose(&sig);
	return code;
}

static char *web_body(run *r)
{
	tend_buf out = TEND_BUF_INIT;
	char url[64], *s;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", r->port);
	test_http("GET", url, NULL, NULL, 0, &out);
	s = strdup(out.ptr ? out.ptr : "");
	tend_buf_dispose(&out);
	return s;
}

static void test_check_config(void **state)
{
	run *r = *state;
	const char *ok[] = { "run", "-n", "--config", r->config, NULL };
	tend_proc_result res;

	assert_int_equal(test_tend(&res, NULL, ok), 0);
	assert_int_equal(res.exit_code, 0);
	assert_non_null(strstr(res.out.ptr, "configuration ok"));
	tend_proc_result_dispose(&res);
	write_config(r, "polll: {interval: 5s}\n");
	assert_int_equal(test_tend(&res, NULL, ok), 0);
	assert_int_equal(res.exit_code, 1);
	assert_non_null(strstr(res.err.ptr, "agent.yaml:"));
	assert_non_null(strstr(res.err.ptr, "polll"));
	tend_proc_result_dispose(&res);
	/* A webhook secret file that is missing is caught too. */
	write_config(r, NULL);
	assert_int_equal(test_sh(NULL, r->dir, "rm hook.secret"), 0);
	assert_int_equal(test_tend(&res, NULL, ok), 0);
	assert_int_equal(res.exit_code, 1);
	assert_non_null(strstr(res.err.ptr, "hook.secret"));
	tend_proc_result_dispose(&res);
}

static void test_agent_end_to_end(void **state)
{
	run *r = *state;
	char *argv[] = { (char *)TEND_BINARY, "run", "--config", r->config, NULL };
	const char *second[] = { "run", "--config", r->config, NULL };
	const char *st_args[] = { "status", "--config", r->config, NULL };
	char *c1, *c2, *c3, *body;
	tend_buf mails = TEND_BUF_INIT;
	tend_proc_result res;
	pid_t agent, smtpd;
	long long t0, sent;
	int wstatus;

	write_web(r, 200, "one", 15);
	c1 = test_git_commit_all(r->repo, "web one");
	smtpd = test_smtp_start(r->smtp_port, r->maildir, NULL);
	agent = test_spawn(argv, r->log);
	test_agent_wait_phase(r->base, r->log, "converged", c1, 240000);
	body = web_body(r);
	assert_string_equal(body, "one");
	free(body);
	/* Per-service health from the probes of the apply; traefik has none. */
	expect_health(r, "web", "healthy", r->port);
	expect_health(r, "traefik", "unknown", 0);

	/* One agent per state directory. */
	assert_int_equal(test_tend(&res, NULL, second), 0);
	assert_int_equal(res.exit_code, 1);
	assert_non_null(strstr(res.err.ptr, "another tend agent already runs"));
	tend_proc_result_dispose(&res);
	/* tend status asks the agent. */
	assert_int_equal(test_tend(&res, NULL, st_args), 0);
	assert_int_equal(res.exit_code, 0);
	assert_non_null(strstr(res.out.ptr, "web1"));
	assert_non_null(strstr(res.out.ptr, "converged"));
	tend_proc_result_dispose(&res);

	/* A broken commit, announced by a signed webhook: reconciled at once,
	 * rolled back, one mail with the probe's output. */
	write_web(r, 500, "broken", 15);
	c2 = test_git_commit_all(r->repo, "web broken");
	t0 = test_now_ms();
	assert_int_equal(hook(r, hook_secret), 202);
	assert_true(wait_log_count(r, "reconcile triggered by webhook", 1, 1000));
	assert_true(test_now_ms() - t0 < 1000);
	test_agent_wait_phase(r->base, r->log, "rolled-back", c1, 120000);
	assert_int_equal(wait_mails(r, 1, 20000), 1);
	assert_int_equal(test_maildir_count(r->maildir, &mails), 1);
	assert_non_null(strstr(mails.ptr, "Subject: [tend] web1: rolled back at "));
	assert_non_null(strstr(mails.ptr, "HTTP 500 (expected 200)"));
	assert_non_null(strstr(mails.ptr, c2));
	assert_non_null(strstr(mails.ptr, "X-RcptTo: ops@lab.test, oncall@lab.test"));
	/* what the undone switch changed: the closure diff */
	assert_non_null(strstr(mails.ptr, "What the switch changed (undone):\n  package web 200.0 -> 500.0\n"));
	{
		json_t *j = test_agent_status(r->base), *h;

		assert_string_equal(json_string_value(json_object_get(j, "changes")),
				    "package web 200.0 -> 500.0\n");
		h = json_array_get(json_object_get(j, "history"), 0);
		assert_string_equal(json_string_value(json_object_get(h, "commit")), c2);
		assert_string_equal(json_string_value(json_object_get(h, "outcome")), "rolled-back");
		assert_string_equal(json_string_value(json_object_get(h, "changes")),
				    "package web 200.0 -> 500.0\n");
		h = json_array_get(json_object_get(j, "history"), 1);
		assert_string_equal(json_string_value(json_object_get(h, "commit")), c1);
		assert_string_equal(json_string_value(json_object_get(h, "outcome")), "applied");
		json_decref(j);
	}
	body = web_body(r);
	assert_string_equal(body, "one");
	free(body);
	/* The service whose probe failed the commit is named failing. */
	expect_health(r, "web", "failing", r->port);
	expect_health(r, "traefik", "unknown", 0);

	/* A wrong signature: 401 and no reconcile. */
	assert_int_equal(hook(r, "not-the-secret-at-all"), 401);
	test_sleep_ms(1000);
	assert_int_equal(log_count(r, "reconcile triggered by webhook"), 1);

	/* The same failure seen again: no second mail. */
	assert_int_equal(hook(r, hook_secret), 202);
	assert_true(wait_log_count(r, "not retried", 1, 60000));
	test_sleep_ms(1500);
	assert_int_equal(test_maildir_count(r->maildir, NULL), 1);

	/* The fix while the mail server is down: converges anyway; the
	 * "resolved" mail arrives once the server is back. */
	test_smtp_stop(smtpd);
	write_web(r, 200, "fixed", 15);
	c3 = test_git_commit_all(r->repo, "web fixed");
	assert_int_equal(hook(r, hook_secret), 202);
	test_agent_wait_phase(r->base, r->log, "converged", c3, 120000);
	expect_health(r, "web", "healthy", r->port);
	assert_true(wait_log_count(r, "alert not sent", 1, 20000));
	smtpd = test_smtp_start(r->smtp_port, r->maildir, NULL);
	assert_int_equal(wait_mails(r, 2, 30000), 2);
	tend_buf_clear(&mails);
	test_maildir_count(r->maildir, &mails);
	assert_non_null(strstr(mails.ptr, "Subject: [tend] web1: resolved, healthy at "));
	test_smtp_stop(smtpd);

	/* SIGHUP with a broken configuration: kept, and the log says why. */
	write_config(r, "poll: {interval: soon}\n");
	kill(agent, SIGHUP);
	assert_true(wait_log_count(r, "SIGHUP: keeping the previous configuration: ", 1, 5000));
	assert_true(log_count(r, "agent.yaml:") >= 1);
	assert_int_equal(waitpid(agent, &wstatus, WNOHANG), 0);
	test_agent_wait_phase(r->base, r->log, "converged", c3, 1000);
	write_config(r, NULL);

	/* SIGTERM while the probes of a new commit wait (30 s of retries): exit 0 at once. */
	write_web(r, 500, "slow", 300);
	free(test_git_commit_all(r->repo, "web slow to fail"));
	assert_int_equal(hook(r, hook_secret), 202);
	t0 = test_now_ms();
	do {
		body = web_body(r);
		if (!strcmp(body, "slow")) {
			free(body);
			break;
		}
		free(body);
		test_sleep_ms(100);
	} while (test_now_ms() - t0 < 120000);
	test_sleep_ms(500);
	sent = test_now_ms();
	wstatus = test_signal_wait(agent, SIGTERM, 10000);
	assert_true(wstatus != -1);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);
	assert_true(test_now_ms() - sent < 5000);
	assert_true(log_count(r, "agent stopping") == 1);
	/* Being stopped is not a failure to mail about. */
	assert_int_equal(log_count(r, "alert queued: [tend] web1: reconcile failed"), 0);

	tend_buf_dispose(&mails);
	free(c1);
	free(c2);
	free(c3);
}

/* A switch that installs another unit for tend (system.unit_file, a link
 * like NixOS's /etc/systemd/system/tend.service, now leads elsewhere): the
 * agent records the reconcile, says why in one line and exits 0, so that
 * systemd (Restart=always) starts the new unit. A missing unit file is not watched. */
static void test_exit_after_unit_change(void **state)
{
	run *r = *state;
	char *argv[] = { (char *)TEND_BINARY, "run", "--config", r->config, NULL };
	char *c1, *c2, *c3, *st_path = NULL, *st_text, *want = NULL;
	pid_t agent;
	int wstatus;

	assert_int_equal(test_sh(NULL, r->dir, "mkdir -p store/a store/b && "
				 "echo '[Service]' > store/a/tend.service && "
				 "echo '[Service]' > store/b/tend.service && "
				 "mkdir -p etc && ln -s ../store/a/tend.service etc/tend.service"), 0);
	assert_int_equal(test_sh(NULL, r->dir, "sed -i 's|switch_timeout: 20s}|switch_timeout: 20s, "
				 "unit_file: etc/tend.service}|' agent.yaml && grep -q unit_file agent.yaml"), 0);
	write_web(r, 200, "one", 15);
	c1 = test_git_commit_all(r->repo, "web one");
	agent = test_spawn(argv, r->log);
	test_agent_wait_phase(r->base, r->log, "converged", c1, 240000);

	/* A commit whose switch leaves the unit alone: the agent stays. */
	write_web(r, 200, "two", 15);
	c2 = test_git_commit_all(r->repo, "web two");
	assert_int_equal(hook(r, hook_secret), 202);
	test_agent_wait_phase(r->base, r->log, "converged", c2, 120000);
	assert_int_equal(waitpid(agent, &wstatus, WNOHANG), 0);

	/* The next switch brings a new unit. */
	assert_int_equal(test_sh(NULL, r->dir, "ln -sfn ../store/b/tend.service etc/tend.service"), 0);
	write_web(r, 200, "three", 15);
	c3 = test_git_commit_all(r->repo, "web three");
	assert_int_equal(hook(r, hook_secret), 202);
	wstatus = test_signal_wait(agent, 0, 120000);
	assert_true(wstatus != -1);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);
	assert_int_equal(log_count(r, "changed ("), 1);
	assert_int_equal(log_count(r, "so that systemd starts the new unit"), 1);
	assert_int_equal(log_count(r, "store/b/tend.service): exiting after this reconcile"), 1);
	assert_int_equal(log_count(r, "re-executing"), 0);
	/* The reconcile was recorded before the exit. */
	assert_true(asprintf(&st_path, "%s/state/state.json", r->dir) > 0);
	st_text = test_read_file(st_path);
	assert_non_null(st_text);
	assert_true(asprintf(&want, "\"applied_commit\": \"%s\"", c3) > 0);
	assert_non_null(strstr(st_text, want));
	free(st_text);
	free(want);
	free(st_path);
	free(c1);
	free(c2);
	free(c3);
}

/* The timing keys reach the running agent: with poll.backoff_* short and
 * alerts.fetch_failing_after 1s, a repository that cannot be fetched is
 * retried 200 ms, 400 ms, 400 ms ... apart and mailed about within seconds, once. */
static void test_fetch_failing_timing(void **state)
{
	run *r = *state;
	char *argv[] = { (char *)TEND_BINARY, "run", "--config", r->config, NULL };
	tend_buf mails = TEND_BUF_INIT;
	long long t0;
	pid_t agent, smtpd;
	int wstatus;

	/* The extra line lands in the alerts: mapping that ends the file. */
	write_config(r, "  fetch_failing_after: 1s\n");
	assert_int_equal(test_sh(NULL, r->dir, "sed -i -e 's|url: repo,|url: no-such-repo,|' -e "
				 "'s|^poll: .*|poll: {interval: 1h, jitter: 0s, backoff_initial: 200ms, "
				 "backoff_max: 400ms}|' agent.yaml"), 0);
	smtpd = test_smtp_start(r->smtp_port, r->maildir, NULL);
	t0 = test_now_ms();
	agent = test_spawn(argv, r->log);
	assert_int_equal(wait_mails(r, 1, 15000), 1);
	assert_true(test_now_ms() - t0 < 15000);
	assert_int_equal(test_maildir_count(r->maildir, &mails), 1);
	assert_non_null(strstr(mails.ptr, "fetches failing"));
	assert_non_null(strstr(mails.ptr, "no-such-repo"));
	assert_true(wait_log_count(r, "retrying in 200 ms", 1, 1000));
	assert_true(wait_log_count(r, "retrying in 400 ms", 3, 5000));
	/* Still failing: no second mail. */
	test_sleep_ms(1500);
	assert_int_equal(test_maildir_count(r->maildir, NULL), 1);
	wstatus = test_signal_wait(agent, SIGTERM, 10000);
	assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
	test_smtp_stop(smtpd);
	tend_buf_dispose(&mails);
}

/* A switch that replaces tend's own binary: the agent finishes the reconcile,
 * then re-executes the new binary under the same pid. */
static void test_reexec_after_binary_change(void **state)
{
	run *r = *state;
	char *bin = NULL, *exe = NULL, *c1, *c2, link[4096], *body;
	char *argv[] = { NULL, "run", "--config", r->config, NULL };
	char pidline[64];
	pid_t agent;
	ssize_t n;
	int wstatus;

	assert_int_equal(test_sh(NULL, r->dir, "mkdir -p v1 v2 && cp '%s' v1/tend && cp '%s' v2/tend && "
				 "ln -s v1 current", TEND_BINARY, TEND_BINARY), 0);
	assert_true(asprintf(&bin, "%s/current/tend", r->dir) > 0);
	argv[0] = bin;
	write_web(r, 200, "one", 15);
	c1 = test_git_commit_all(r->repo, "web one");
	agent = test_spawn(argv, r->log);
	test_agent_wait_phase(r->base, r->log, "converged", c1, 240000);
	snprintf(pidline, sizeof(pidline), "agent started (pid %ld,", (long)agent);
	assert_int_equal(log_count(r, pidline), 1);

	/* The "switch" installs a new tend: the path it was started as moves on. */
	assert_int_equal(test_sh(NULL, r->dir, "ln -sfn v2 current"), 0);
	write_web(r, 200, "two", 15);
	c2 = test_git_commit_all(r->repo, "web two");
	assert_int_equal(hook(r, hook_secret), 202);
	assert_true(wait_log_count(r, "re-executing", 2, 120000));
	/* Same process, new binary, serving again, the reconcile recorded first. */
	assert_true(wait_log_count(r, pidline, 2, 20000));
	test_agent_wait_phase(r->base, r->log, "converged", c2, 60000);
	assert_true(asprintf(&exe, "/proc/%ld/exe", (long)agent) > 0);
	n = readlink(exe, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_non_null(strstr(link, "/v2/tend"));
	body = web_body(r);
	assert_string_equal(body, "two");
	free(body);
	wstatus = test_signal_wait(agent, SIGTERM, 10000);
	assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
	free(exe);
	free(bin);
	free(c1);
	free(c2);
}

/* Liveness between reconciles: a service killed by hand puts the host in phase degraded
 * within probes.liveness_interval, with one mail and tend_probe_up 0, and nothing is rolled
 * back; restarted by hand, the host is converged again with one "recovered" mail. */
static void test_liveness_degraded_and_recovered(void **state)
{
	run *r = *state;
	char *argv[] = { (char *)TEND_BINARY, "run", "--config", r->config, NULL };
	char *text = NULL, *c1, *pidfile = NULL, *pid, metric[64];
	tend_buf mails = TEND_BUF_INIT;
	json_t *j;
	pid_t agent, smtpd;
	long long t0;
	int wstatus;

	r->probes = "{deadline: 60s, liveness_interval: 1s}";
	write_config(r, NULL);
	assert_true(asprintf(&text,
		"name: web\nhost: web1\ndepends_on: [traefik]\n"
		"proxy: {domain: web.lab.test, port: %d}\n"
		"health:\n"
		"  startup:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 100ms\n      timeout: 1s\n      retries: 15\n"
		"  liveness:\n    - http: {url: 'http://127.0.0.1:%d/', status: 200}\n"
		"      interval: 200ms\n      timeout: 1s\n      retries: 2\n"
		"settings: {test_port: %d, test_status: 200, test_body: 'alive'}\n",
		r->port, r->port, r->port, r->port) > 0);
	test_write_file(r->repo, "services/web/service.yaml", text);
	free(text);
	c1 = test_git_commit_all(r->repo, "web with a liveness probe");
	smtpd = test_smtp_start(r->smtp_port, r->maildir, NULL);
	agent = test_spawn(argv, r->log);
	test_agent_wait_phase(r->base, r->log, "converged", c1, 240000);
	snprintf(metric, sizeof(metric), "tend_probe_up{service=\"web\"}");
	t0 = test_now_ms();
	while (test_agent_metric(r->base, metric) != 1 && test_now_ms() - t0 < 20000)
		test_sleep_ms(100);
	assert_true(test_agent_metric(r->base, metric) == 1);
	assert_int_equal(test_maildir_count(r->maildir, NULL), 0);

	/* Killed by hand. */
	assert_true(asprintf(&pidfile, "%s/web1/service.pid", r->root) > 0);
	pid = test_read_file(pidfile);
	assert_non_null(pid);
	assert_int_equal(kill((pid_t)strtol(pid, NULL, 10), SIGKILL), 0);
	free(pid);
	t0 = test_now_ms();
	test_agent_wait_phase(r->base, r->log, "degraded", c1, 20000);
	/* liveness_interval 1 s, then two tries 200 ms apart */
	assert_true(test_now_ms() - t0 < 5000);
	assert_true(test_agent_metric(r->base, metric) == 0);
	j = test_agent_status(r->base);
	assert_false(json_is_true(json_object_get(json_object_get(json_object_get(j, "liveness"), "web"), "up")));
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(json_object_get(j, "liveness"), "web"), "error")),
			       "service web"));
	assert_string_equal(json_string_value(json_object_get(j, "applied_commit")), c1);
	json_decref(j);
	assert_int_equal(wait_mails(r, 1, 20000), 1);
	/* Still down a few runs later: no second mail, no rollback. */
	test_sleep_ms(3000);
	assert_int_equal(test_maildir_count(r->maildir, &mails), 1);
	assert_non_null(strstr(mails.ptr, "Subject: [tend] web1: degraded at "));
	assert_non_null(strstr(mails.ptr, "1 service down: web"));
	assert_non_null(strstr(mails.ptr, "does not roll back"));
	assert_int_equal(log_count(r, "rolled back"), 0);

	/* Restarted by hand: converged again, one "recovered" mail. */
	assert_int_equal(test_sh(NULL, r->dir, "TEND_TEST_ROOT='%s' '%s/web1/current-system/bin/switch-to-configuration' test",
				 r->root, r->root), 0);
	test_agent_wait_phase(r->base, r->log, "converged", c1, 20000);
	assert_true(test_agent_metric(r->base, metric) == 1);
	assert_int_equal(wait_mails(r, 2, 20000), 2);
	tend_buf_clear(&mails);
	assert_int_equal(test_maildir_count(r->maildir, &mails), 2);
	assert_non_null(strstr(mails.ptr, "Subject: [tend] web1: recovered at "));
	assert_true(wait_log_count(r, "liveness: service web answers again", 1, 1000));
	wstatus = test_signal_wait(agent, SIGTERM, 10000);
	assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
	test_smtp_stop(smtpd);
	tend_buf_dispose(&mails);
	free(pidfile);
	free(c1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_end_to_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reexec_after_binary_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_failing_timing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_after_unit_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_liveness_degraded_and_recovered, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
