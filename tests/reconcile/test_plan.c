/* Planning without nix: a real manifest and real files on disk against a
 * state, for every reason a file is (or is not) written, removals, the switch
 * decision, the order (dependencies first, switch after files, probes last)
 * and both output formats. */
#include "tests/reconcile/fixture.h"
#include "agent/config.h"
#include "reconcile/internal.h"
#include "util/error.h"

typedef struct {
	char *dir;
	tend_config *cfg;
	tend_desired d;
	tend_state *st;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	char *path;

	f->dir = test_tmpdir_make("plan");
	test_write_file(f->dir, "rev/fleet.yaml",
		"fleet: t\ndomain: lab.test\nhosts:\n  h1: {address: 127.0.0.1}\n");
	test_write_file(f->dir, "rev/services/db/service.yaml",
		"name: db\nhost: h1\nhealth:\n  startup:\n    - tcp: {host: 127.0.0.1, port: 5432}\n");
	test_write_file(f->dir, "rev/services/app/service.yaml",
		"name: app\nhost: h1\ndepends_on: [db]\nhealth:\n  startup:\n"
		"    - http: {url: 'http://127.0.0.1:1/'}\n");
	/* the files below live beneath both roots (util/beneath.h) */
	if (asprintf(&path, "host: h1\nrepository: {url: x}\nstate_dir: state\nroot: %s\n"
		     "secrets_root: %s\nsecrets_storage: disk\n", f->dir, f->dir) < 0)
		fail();
	test_write_file(f->dir, "agent.yaml", path);
	free(path);
	path = tend_path_join(f->dir, "agent.yaml");
	assert_int_equal(tend_config_load(&f->cfg, path), 0);
	free(path);
	path = tend_path_join(f->dir, "rev");
	if (tend_desired_load(&f->d, f->cfg, path, "1111111111111111111111111111111111111111") < 0)
		fail_msg("%s", tend_error_last());
	free(path);
	assert_int_equal(f->d.n_order, 2);
	assert_string_equal(f->d.order[0], "db");
	f->st = tend_state_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	tend_desired_dispose(&f->d);
	tend_state_free(f->st);
	tend_config_free(f->cfg);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* A wanted file at dir/rel with content, belonging to service. */
static void want(fx *f, const char *rel, const char *content, const char *service,
		 tend_state_file_kind kind)
{
	tend_want_file *w;

	f->d.files = realloc(f->d.files, (f->d.n_files + 1) * sizeof(*w));
	w = &f->d.files[f->d.n_files++];
	memset(w, 0, sizeof(*w));
	w->path = tend_path_join(f->dir, rel);
	w->data = strdup(content);
	w->len = strlen(content);
	w->mode = 0644;
	w->uid = (uid_t)-1;
	w->gid = (gid_t)-1;
	w->kind = kind;
	w->service = service ? strdup(service) : NULL;
	w->secret = kind == TEND_FILE_SECRET;
	tend_sha256_hex(w->sha256, content, w->len);
}

/* Record in the state that tend wrote content at dir/rel. */
static void wrote(fx *f, const char *rel, const char *content, tend_state_file_kind kind)
{
	char sha[65], *path = tend_path_join(f->dir, rel);

	tend_sha256_hex(sha, content, strlen(content));
	assert_int_equal(tend_state_file_set(f->st, path, sha, NULL, kind), 0);
	free(path);
}

static const tend_action *find(const tend_plan *p, tend_action_kind kind, const char *suffix)
{
	size_t i;

	for (i = 0; i < p->count; i++) {
		const tend_action *a = &p->items[i];
		if (a->kind != kind)
			continue;
		if (!suffix || (a->path && strlen(a->path) >= strlen(suffix) &&
				!strcmp(a->path + strlen(a->path) - strlen(suffix), suffix)))
			return a;
	}
	return NULL;
}

static void test_reasons(void **state)
{
	fx *f = *state;
	tend_plan p;
	const tend_action *a;

	want(f, "new.txt", "N", "app", TEND_FILE_ROUTE);          /* absent, unknown: new */
	want(f, "same.txt", "S", "app", TEND_FILE_ROUTE);         /* right bytes on disk */
	test_write_file(f->dir, "same.txt", "S");
	wrote(f, "same.txt", "S", TEND_FILE_ROUTE);
	want(f, "drift.txt", "D2", "app", TEND_FILE_ROUTE);       /* edited by hand */
	test_write_file(f->dir, "drift.txt", "hand edit");
	wrote(f, "drift.txt", "D1", TEND_FILE_ROUTE);
	want(f, "changed.txt", "C2", "db", TEND_FILE_ROUTE);      /* tend's old version */
	test_write_file(f->dir, "changed.txt", "C1");
	wrote(f, "changed.txt", "C1", TEND_FILE_ROUTE);
	want(f, "missing.txt", "M", "db", TEND_FILE_SECRET);      /* deleted by hand */
	wrote(f, "missing.txt", "M", TEND_FILE_SECRET);
	want(f, "foreign.txt", "F", "db", TEND_FILE_ROUTE);       /* someone else's file */
	test_write_file(f->dir, "foreign.txt", "not tend's");
	test_write_file(f->dir, "gone.txt", "G");                 /* tend wrote it, no longer wanted */
	wrote(f, "gone.txt", "G", TEND_FILE_SECRET);
	wrote(f, "vanished.txt", "V", TEND_FILE_ROUTE);           /* and already gone: nothing */
	test_write_file(f->dir, "edited.txt", "hand edit");       /* tend's, edited since: kept */
	wrote(f, "edited.txt", "E", TEND_FILE_ROUTE);

	assert_int_equal(tend_plan_compute(&p, f->cfg, f->st, &f->d, "/nix/store/a"), 0);
	assert_null(find(&p, TEND_ACTION_WRITE_FILE, "/same.txt"));
	assert_string_equal(find(&p, TEND_ACTION_WRITE_FILE, "/new.txt")->reason, "new");
	assert_string_equal(find(&p, TEND_ACTION_WRITE_FILE, "/drift.txt")->reason, "drift");
	assert_string_equal(find(&p, TEND_ACTION_WRITE_FILE, "/changed.txt")->reason, "changed");
	assert_string_equal(find(&p, TEND_ACTION_INSTALL_SECRET, "/missing.txt")->reason, "missing");
	assert_string_equal(find(&p, TEND_ACTION_WRITE_FILE, "/foreign.txt")->reason, "replace");
	a = find(&p, TEND_ACTION_REMOVE_SECRET, "/gone.txt");
	assert_non_null(a);
	assert_string_equal(a->reason, "no longer wanted");
	/* issue 17 F9: no digest of a secret's plaintext, in either direction
	 * (247ba6c showed sha256("M") and sha256("G") here, and in plan --json) */
	assert_null(a->from);
	a = find(&p, TEND_ACTION_INSTALL_SECRET, "/missing.txt");
	assert_null(a->from);
	assert_null(a->to);
	{
		char *json = tend_plan_format_json(&p), sha[65];

		tend_sha256_hex(sha, "M", 1);
		assert_null(strstr(json, sha));
		tend_sha256_hex(sha, "G", 1);
		assert_null(strstr(json, sha));
		tend_sha256_hex(sha, "C2", 2);   /* a route's digest stays: not a secret */
		assert_non_null(strstr(json, sha));
		free(json);
	}
	assert_null(find(&p, TEND_ACTION_REMOVE_FILE, "/vanished.txt"));
	/* issue 17 F13 with root "/" (every path beneath it): a recorded file
	 * whose content is not what tend wrote is not deleted. 247ba6c removed
	 * it as "no longer wanted". */
	assert_null(find(&p, TEND_ACTION_REMOVE_FILE, "/edited.txt"));
	assert_null(find(&p, TEND_ACTION_SWITCH, NULL));          /* no system built: none */
	assert_true(tend_plan_changes(&p));
	tend_plan_dispose(&p);
}

static void test_order_and_switch(void **state)
{
	fx *f = *state;
	tend_plan p;
	char *text, *json;
	size_t i;

	want(f, "z-db.txt", "1", "db", TEND_FILE_ROUTE);
	want(f, "a-app.txt", "2", "app", TEND_FILE_ROUTE);
	want(f, "m-db.txt", "3", "db", TEND_FILE_SECRET);
	f->d.system = strdup("/nix/store/bbb-system");
	assert_int_equal(tend_plan_compute(&p, f->cfg, f->st, &f->d, "/nix/store/aaa-system"), 0);
	assert_int_equal(p.count, 6);
	/* db's files (by path), then app's, then the switch, then db's probes, then app's */
	assert_true(strstr(p.items[0].path, "/m-db.txt") != NULL);
	assert_true(strstr(p.items[1].path, "/z-db.txt") != NULL);
	assert_true(strstr(p.items[2].path, "/a-app.txt") != NULL);
	assert_int_equal(p.items[3].kind, TEND_ACTION_SWITCH);
	assert_string_equal(p.items[3].from, "/nix/store/aaa-system");
	assert_string_equal(p.items[3].to, "/nix/store/bbb-system");
	assert_int_equal(p.items[4].kind, TEND_ACTION_PROBE);
	assert_string_equal(p.items[4].service, "db");
	assert_string_equal(p.items[5].service, "app");
	text = tend_plan_format(&p);
	assert_non_null(strstr(text, "install secret "));
	assert_non_null(strstr(text, "/m-db.txt (db, new)\n"));
	assert_non_null(strstr(text, "switch system /nix/store/aaa-system -> /nix/store/bbb-system (changed)\n"));
	assert_non_null(strstr(text, "probe db\nprobe app\n"));
	free(text);
	json = tend_plan_format_json(&p);
	assert_non_null(strstr(json, "\"action\": \"install_secret\""));
	assert_non_null(strstr(json, "\"to\": \"/nix/store/bbb-system\""));
	free(json);
	tend_plan_dispose(&p);

	/* the same system running and the files in place: nothing, not even probes */
	for (i = 0; i < f->d.n_files; i++) {
		test_write_file("/", f->d.files[i].path, f->d.files[i].data);
		assert_int_equal(tend_state_file_set(f->st, f->d.files[i].path, f->d.files[i].sha256,
						     NULL, f->d.files[i].kind), 0);
	}
	assert_int_equal(tend_plan_compute(&p, f->cfg, f->st, &f->d, "/nix/store/bbb-system"), 0);
	assert_int_equal(p.count, 0);
	assert_false(tend_plan_changes(&p));
	text = tend_plan_format(&p);
	assert_string_equal(text, "");
	free(text);
	tend_plan_dispose(&p);

	/* nothing running yet: a first activation */
	assert_int_equal(tend_plan_compute(&p, f->cfg, f->st, &f->d, NULL), 0);
	assert_int_equal(p.items[0].kind, TEND_ACTION_SWITCH);
	assert_null(p.items[0].from);
	assert_string_equal(p.items[0].reason, "first activation");
	tend_plan_dispose(&p);
}

static void test_host_not_in_fleet(void **state)
{
	fx *f = *state;
	tend_desired d;
	char *rev = tend_path_join(f->dir, "rev");

	free(f->cfg->host);
	f->cfg->host = strdup("h9");
	assert_int_equal(tend_desired_load(&d, f->cfg, rev, "2222222222222222222222222222222222222222"),
			 TEND_ENOTFOUND);
	assert_non_null(strstr(tend_error_last(), "host 'h9'"));
	tend_desired_dispose(&d);
	test_write_file(f->dir, "rev/services/app/service.yaml", "name: app\nhost: h1\nbogus: 1\n");
	assert_int_equal(tend_desired_load(&d, f->cfg, rev, "2222222222222222222222222222222222222222"),
			 TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "services/app/service.yaml:3:1"));
	tend_desired_dispose(&d);
	free(rev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reasons, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_and_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_not_in_fleet, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
