/* Dependency order across hosts: the verdict from other agents' real HTTP
 * endpoints (each on its own 127.0.0.x address, as fleet.yaml says), a real
 * fleet manifest, and a real git repository deciding "a descendant of X";
 * and `tend status --fleet` printing every host's agent. */
#define TEST_WITH_HTTP_CLIENT
#include "tests/agent/helpers.h"
#include "agent/fleet_status.h"
#include "agent/http.h"
#include "agent/log.h"
#include "manifest/manifest.h"

typedef struct {
	char *dir, *repo;
	char c1[41], c2[41];
	tend_agent_status db_st, cache_st;
	tend_http *db, *cache;
	tend_manifest *m;
} fixture;

static void rev_parse(char out[41], const char *repo)
{
	tend_buf b = TEND_BUF_INIT;

	assert_int_equal(test_sh(&b, repo, "git rev-parse HEAD"), 0);
	snprintf(out, 41, "%.40s", b.ptr);
	tend_buf_dispose(&b);
}

static tend_http *serve(tend_agent_status *st, const char *addr, const char *host)
{
	tend_http_opts o = { 0 };
	tend_http *h = NULL;

	assert_int_equal(tend_agent_status_init(st, host), 0);
	o.address = addr;
	o.status = st;
	assert_int_equal(tend_http_start(&h, &o), 0);
	return h;
}

static void set(tend_agent_status *st, tend_agent_phase phase, const char *applied,
		const char *target, const char *err)
{
	tend_agent_status_lock(st);
	st->phase = phase;
	tend_agent_status_set_str(&st->applied_commit, applied);
	tend_agent_status_set_str(&st->target_commit, target);
	tend_agent_status_set_str(&st->last_error, err);
	tend_agent_status_unlock(st);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	tend_diags diags;
	char *fleet = NULL;

	tend_log_set_level(TEND_LOG_ERR);
	f->dir = test_tmpdir_make("fleet");
	assert_true(asprintf(&f->repo, "%s/repo", f->dir) > 0);
	f->db = serve(&f->db_st, "127.0.0.2", "db1");
	f->cache = serve(&f->cache_st, "127.0.0.3", "cache1");
	assert_true(asprintf(&fleet,
		"fleet: test\ndomain: lab.test\nhosts:\n"
		"  db1: {address: 127.0.0.2, agent_port: %d}\n"
		"  cache1: {address: 127.0.0.3, agent_port: %d}\n"
		"  apps1: {address: 127.0.0.4}\n"
		"  lone1: {address: 127.0.0.5}\n",
		tend_http_port(f->db), tend_http_port(f->cache)) > 0);
	assert_int_equal(test_sh(NULL, f->dir, "git init -q -b main repo"), 0);
	test_write_file(f->repo, "fleet.yaml", fleet);
	test_write_file(f->repo, "services/db/service.yaml", "name: db\nhost: db1\n");
	test_write_file(f->repo, "services/cache/service.yaml", "name: cache\nhost: cache1\n");
	test_write_file(f->repo, "services/app/service.yaml",
			"name: app\nhost: apps1\ndepends_on: [db, cache]\n");
	test_write_file(f->repo, "services/tool/service.yaml", "name: tool\nhost: lone1\n");
	assert_int_equal(test_sh(NULL, f->repo, "git add -A && git -c user.name=t -c user.email=t@t "
				 "commit -qm one"), 0);
	rev_parse(f->c1, f->repo);
	assert_int_equal(test_sh(NULL, f->repo, "git -c user.name=t -c user.email=t@t "
				 "commit -q --allow-empty -m two"), 0);
	rev_parse(f->c2, f->repo);
	memset(&diags, 0, sizeof(diags));
	if (tend_manifest_load(&f->m, &diags, f->repo) < 0)
		fail_msg("manifest: %s", tend_error_last());
	tend_diags_dispose(&diags);
	free(fleet);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tend_http_stop(f->db);
	tend_http_stop(f->cache);
	tend_agent_status_dispose(&f->db_st);
	tend_agent_status_dispose(&f->cache_st);
	tend_manifest_free(f->m);
	free(f->repo);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static tend_deps_verdict check(fixture *f, const char *host, const char *commit, char **reason)
{
	tend_deps_verdict v;

	assert_int_equal(tend_fleet_deps_check(&v, reason, f->m, host, commit, f->repo, 2000), 0);
	return v;
}

static void test_waits_until_dependencies_run_the_commit(void **state)
{
	fixture *f = *state;
	char *why = NULL;

	/* db1 still on c1, cache1 on c2: apps1 waits for db1 before applying c2. */
	set(&f->db_st, TEND_PHASE_CONVERGED, f->c1, f->c1, NULL);
	set(&f->cache_st, TEND_PHASE_CONVERGED, f->c2, f->c2, NULL);
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_WAITING);
	assert_non_null(strstr(why, "waiting for host db1"));
	assert_null(strstr(why, "cache1"));
	free(why);
	/* db1 applying: still waiting. */
	set(&f->db_st, TEND_PHASE_APPLYING, f->c1, f->c2, NULL);
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_WAITING);
	free(why);
	/* Both run c2 and are converged: go. */
	set(&f->db_st, TEND_PHASE_CONVERGED, f->c2, f->c2, NULL);
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_READY);
	assert_null(why);
	/* A dependency already past c2 (a descendant) counts as ready for c1. */
	assert_int_equal(check(f, "apps1", f->c1, &why), TEND_DEPS_READY);
	/* But being on c1 is not ready for its descendant c2. */
	set(&f->cache_st, TEND_PHASE_CONVERGED, f->c1, f->c1, NULL);
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_WAITING);
	assert_non_null(strstr(why, "cache1"));
	free(why);
	/* A dependency that considered c2 and had nothing to change for it keeps
	 * c1 as its applied commit: converged at target c2 is ready. */
	set(&f->cache_st, TEND_PHASE_CONVERGED, f->c1, f->c2, NULL);
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_READY);
	/* ...but the same while still failing is not. */
	set(&f->cache_st, TEND_PHASE_FAILED, f->c1, f->c2, "nix build failed");
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_BLOCKED);
	free(why);
	/* Hosts without dependencies never wait; the hosts depended on neither. */
	assert_int_equal(check(f, "lone1", f->c2, &why), TEND_DEPS_READY);
	assert_int_equal(check(f, "db1", f->c2, &why), TEND_DEPS_READY);
}

static void test_failed_dependency_blocks(void **state)
{
	fixture *f = *state;
	char *why = NULL;

	set(&f->cache_st, TEND_PHASE_CONVERGED, f->c2, f->c2, NULL);
	set(&f->db_st, TEND_PHASE_ROLLED_BACK, f->c1, f->c2,
	    "service db: probe tcp 127.0.0.2:5432 failed after 10 tries");
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_BLOCKED);
	assert_non_null(strstr(why, "host db1 rolled back commit"));
	assert_non_null(strstr(why, "probe tcp 127.0.0.2:5432"));
	free(why);
	/* A failure of another commit does not block this one. */
	set(&f->db_st, TEND_PHASE_FAILED, f->c1, f->c1, "nix build failed");
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_WAITING);
	free(why);
}

static void test_unreachable_dependency_waits(void **state)
{
	fixture *f = *state;
	tend_fleet_host_status st;
	char *why = NULL;

	set(&f->cache_st, TEND_PHASE_CONVERGED, f->c2, f->c2, NULL);
	tend_http_stop(f->db);
	f->db = NULL;
	assert_int_equal(check(f, "apps1", f->c2, &why), TEND_DEPS_WAITING);
	assert_non_null(strstr(why, "host db1 unreachable"));
	free(why);
	assert_int_equal(tend_fleet_status_fetch(&st, "db1", "127.0.0.2", test_free_port(), 1000), 0);
	assert_false(st.reachable);
	assert_non_null(st.error);
	tend_fleet_host_status_dispose(&st);
}

/* Issue 17 F12: a peer's status text (its last error) reached `tend status
 * --fleet` and the fleet's waiting messages with its terminal escapes. Now
 * stripped where it enters. Fails on 247ba6c (ESC and BEL kept). */
static void test_peer_text_stripped(void **state)
{
	fixture *f = *state;
	tend_fleet_host_status st;

	set(&f->db_st, TEND_PHASE_FAILED, f->c1, f->c2, "boom \x1b]0;pwned\x07\x1b[2J done");
	assert_int_equal(tend_fleet_status_fetch(&st, "db1", "127.0.0.2", tend_http_port(f->db), 2000), 0);
	assert_true(st.reachable);
	assert_string_equal(st.last_error, "boom ?]0;pwned??[2J done");
	tend_fleet_host_status_dispose(&st);
}

static void test_not_a_status_document(void **state)
{
	fixture *f = *state;
	tend_fleet_host_status st;
	char addr[32];

	/* /v1/status of something that is not an agent: python's http.server lists files. */
	int port = test_free_port();
	char portstr[16];
	char *argv[] = { "/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.6", portstr, NULL };
	pid_t pid;

	snprintf(portstr, sizeof(portstr), "%d", port);
	pid = test_spawn(argv, NULL);
	snprintf(addr, sizeof(addr), "127.0.0.6");
	{
		long long end = test_now_ms() + 10000;

		do {
			assert_int_equal(tend_fleet_status_fetch(&st, "x", addr, port, 1000), 0);
			if (st.error && !strstr(st.error, "connect"))
				break;
			tend_fleet_host_status_dispose(&st);
			test_sleep_ms(100);
		} while (test_now_ms() < end);
	}
	test_signal_wait(pid, SIGTERM, 5000);
	assert_false(st.reachable);
	assert_non_null(strstr(st.error, "HTTP 404"));
	tend_fleet_host_status_dispose(&st);
	(void)f;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_waits_until_dependencies_run_the_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_dependency_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_dependency_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_status_document, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_text_stripped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
