/* `tend render` and `tend diff` (agent/cmd_render.c) on a real git repository:
 * the example homelab, then a commit adding one service with a route and a
 * database: the diff shows exactly that, per host; identical commits exit 0;
 * invalid manifests at FROM are reported and exit 1. */
#include "tests/render/fixture.h"
#include "source/source.h"

#define GIT "git -c user.name=Test -c user.email=test@example.org -c init.defaultBranch=main -c commit.gpgsign=false"

static const char WIKI[] =
	"name: wiki\n"
	"host: apps1\n"
	"database:\n"
	"  engine: postgresql\n"
	"  name: wiki\n"
	"  user: wiki\n"
	"  password_secret: db-password\n"
	"proxy:\n"
	"  domain: wiki.lab.example.net\n"
	"  port: 8095\n"
	"secrets:\n"
	"  - name: db-password\n"
	"    file: secrets/wiki/db-password.age\n"
	"    owner: wiki\n";

typedef struct {
	char *tmp, *repo;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->tmp = test_tmpdir_make("cli");
	f->repo = tend_path_join(f->tmp, "repo");
	/* 1: the homelab; 2: + wiki; 3: a comment only; 4: a broken service. */
	assert_int_equal(test_sh(NULL, f->tmp, "cp -r %s/examples/homelab repo && cd repo && " GIT " init -q . && "
				 GIT " add -A && " GIT " commit -q -m homelab", TEND_SOURCE_DIR), 0);
	test_write_file(f->repo, "services/wiki/service.yaml", WIKI);
	assert_int_equal(test_sh(NULL, f->repo, "cp secrets/vaultwarden/db-password.age secrets/wiki-db.age && "
				 "mkdir -p secrets/wiki && mv secrets/wiki-db.age secrets/wiki/db-password.age && "
				 GIT " add -A && " GIT " commit -q -m 'add wiki' && " GIT " tag wiki"), 0);
	assert_int_equal(test_sh(NULL, f->repo, "printf '# a comment\\n' >> fleet.yaml && " GIT " commit -qam comment"), 0);
	test_write_file(f->repo, "services/broken/service.yaml", "name: broken\nhost: nowhere\n");
	assert_int_equal(test_sh(NULL, f->repo, GIT " add -A && " GIT " commit -q -m broken"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	free(f->repo);
	test_tmpdir_remove(f->tmp);
	free(f);
	return 0;
}

static int run(tend_proc_result *res, const char *const *args)
{
	int rc = test_tend(res, NULL, args);

	assert_int_equal(rc, 0);
	assert_false(res->timed_out);
	return res->exit_code;
}

static void test_diff_adding_a_service(void **state)
{
	fixture *f = *state;
	const char *args[] = { "diff", "--repo", f->repo, "wiki~1", "wiki", NULL };
	tend_proc_result res;
	const char *p, *summary;
	char *line = NULL;

	assert_int_equal(run(&res, args), 2);
	p = res.out.ptr;
	summary = strstr(p, "\nSummary ");
	assert_non_null(summary);
	assert_non_null(strstr(summary, "\napps1: services +1 ~0 -0\n"));
	assert_non_null(strstr(summary, "\ndb1: databases +1 ~0 -0\n"));
	assert_non_null(strstr(summary, "\ngateway: routes +1 ~0 -0\n"));
	assert_non_null(strstr(summary, "\nhome1: no changes\n"));
	assert_non_null(strstr(summary, "\nnas1: no changes\n"));
	/* Exactly these four files differ. */
	assert_non_null(strstr(p, "--- a/hosts/apps1.json\n+++ b/hosts/apps1.json\n"));
	assert_non_null(strstr(p, "--- a/hosts/db1.json\n+++ b/hosts/db1.json\n"));
	assert_non_null(strstr(p, "--- a/hosts/gateway.json\n+++ b/hosts/gateway.json\n"));
	assert_non_null(strstr(p, "--- a/routes/traefik.yml\n+++ b/routes/traefik.yml\n"));
	assert_null(strstr(p, "home1.json"));
	assert_null(strstr(p, "nas1.json"));
	/* The route, the database and its user are there... */
	assert_non_null(strstr(p, "\n+      rule: \"Host(`wiki.lab.example.net`)\"\n"));
	assert_non_null(strstr(p, "\n+          - url: \"http://10.10.0.3:8095\"\n"));
	assert_non_null(strstr(p, "\n+      \"name\": \"wiki\",\n"));
	assert_non_null(strstr(p, "\n+      \"user\": \"wiki\"\n"));
	assert_non_null(strstr(p, "\n+      \"password_file\": \"/run/tend/secrets/wiki/db-password\",\n"));
	/* ...and nothing else is removed: a '-' line only ever gains a JSON comma. */
	for (; p < summary; p = strchr(p, '\n') + 1) {
		const char *nl = strchr(p, '\n');

		if (p[0] == '-' && strncmp(p, "--- ", 4)) {
			free(line);
			assert_true(asprintf(&line, "\n+%.*s,\n", (int)(nl - p - 1), p + 1) > 0);
			if (!strstr(res.out.ptr, line))
				fprintf(stderr, "unexpected removal: %.*s\n", (int)(nl - p), p);
			assert_non_null(strstr(res.out.ptr, line));
		}
	}
	free(line);
	tend_proc_result_dispose(&res);
}

static void test_diff_json_and_host(void **state)
{
	fixture *f = *state;
	const char *args[] = { "diff", "--repo", f->repo, "--json", "--host", "gateway", "wiki~1", "wiki", NULL };
	tend_proc_result res;
	json_t *doc, *h;

	assert_int_equal(run(&res, args), 2);
	doc = json_loads(res.out.ptr, 0, NULL);
	assert_non_null(doc);
	assert_true(json_is_true(json_object_get(doc, "changed")));
	assert_int_equal(json_array_size(json_object_get(doc, "hosts")), 1);
	h = json_array_get(json_object_get(doc, "hosts"), 0);
	assert_string_equal(json_string_value(json_object_get(h, "host")), "gateway");
	assert_int_equal(json_array_size(json_object_get(h, "outputs")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(h, "counts"), "routes"),
							    "added")), 1);
	assert_string_equal(json_string_value(json_object_get(h, "summary")), "gateway: routes +1 ~0 -0");
	assert_int_equal(strlen(json_string_value(json_object_get(doc, "from"))), 40);
	json_decref(doc);
	tend_proc_result_dispose(&res);
}

static void test_no_changes_exit_0(void **state)
{
	fixture *f = *state;
	const char *same[] = { "diff", "--repo", f->repo, "wiki", "wiki", NULL };
	const char *comment[] = { "diff", "--repo", f->repo, "wiki", "wiki~-1", NULL };
	const char *comment2[] = { "diff", "--repo", f->repo, "wiki", "HEAD~1", NULL };
	tend_proc_result res;

	assert_int_equal(run(&res, same), 0);
	assert_non_null(strstr(res.out.ptr, "apps1: no changes\n"));
	assert_null(strstr(res.out.ptr, "--- a/"));
	tend_proc_result_dispose(&res);
	/* A bad revision is an error, named. */
	assert_int_equal(run(&res, comment), 1);
	assert_non_null(strstr(res.err.ptr, "tend: error: "));
	tend_proc_result_dispose(&res);
	/* Only a comment changed: the renders are the same. */
	assert_int_equal(run(&res, comment2), 0);
	tend_proc_result_dispose(&res);
}

static void test_invalid_from_is_an_error(void **state)
{
	fixture *f = *state;
	const char *args[] = { "diff", "--repo", f->repo, "HEAD", "wiki", NULL };
	tend_proc_result res;

	assert_int_equal(run(&res, args), 1);
	assert_non_null(strstr(res.err.ptr, "services/broken/service.yaml:2:7: error: "));
	assert_non_null(strstr(res.err.ptr, "the manifests are invalid"));
	assert_non_null(strstr(res.err.ptr, "HEAD ("));
	tend_proc_result_dispose(&res);
}

static void test_render_one_host(void **state)
{
	fixture *f = *state;
	char *out = tend_path_join(f->tmp, "out"), *file, *data, hash[41];
	const char *args[] = { "render", "--repo", f->repo, "--host", "db1", "--out", out, "--commit", "wiki", NULL };
	const char *args_old[] = { "render", "--repo", f->repo, "--host", "gateway", "--out", out, "--commit", "wiki~1", NULL };
	const char *bad_host[] = { "render", "--repo", f->repo, "--host", "db9", "--out", out, "--commit", "wiki", NULL };
	const char *worktree_broken[] = { "render", "--repo", f->repo, "--host", "db1", "--out", out, NULL };
	tend_proc_result res;
	json_t *doc;

	assert_int_equal(run(&res, args), 0);
	tend_proc_result_dispose(&res);
	file = tend_path_join(out, "hosts/db1.json");
	doc = json_load_file(file, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(tend_source_resolve(hash, f->repo, "wiki"), 0);
	assert_string_equal(json_string_value(json_object_get(doc, "commit")), hash);
	/* the full commit the tag names, for the flake's system.configurationRevision */
	assert_string_equal(json_string_value(json_object_get(doc, "revision")), hash);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(doc, "databases"), 6),
							      "name")), "wiki");
	json_decref(doc);
	free(file);
	file = tend_path_join(out, "routes/traefik.yml");
	assert_false(tend_path_exists(file));   /* db1 is not the proxy host */

	assert_int_equal(run(&res, args_old), 0);
	tend_proc_result_dispose(&res);
	data = test_read_file(file);
	assert_non_null(data);
	assert_null(strstr(data, "wiki"));
	assert_int_equal(tend_source_resolve(hash, f->repo, "wiki~1"), 0);
	assert_non_null(strstr(data, hash));
	free(data);
	free(file);

	assert_int_equal(run(&res, bad_host), 1);
	assert_non_null(strstr(res.err.ptr, "no host named 'db9'"));
	tend_proc_result_dispose(&res);
	/* The work tree (with the broken service checked out) is refused with diagnostics. */
	assert_int_equal(run(&res, worktree_broken), 1);
	assert_non_null(strstr(res.err.ptr, "services/broken/service.yaml:2:7: error: "));
	tend_proc_result_dispose(&res);

	/* Without --commit: the files as they are, stamped as the working tree. */
	{
		char *example = tend_path_join(TEND_SOURCE_DIR, "examples/homelab");
		const char *plain[] = { "render", "--repo", example, "--host", "gateway", "--out", out, NULL };

		assert_int_equal(run(&res, plain), 0);
		assert_non_null(strstr(res.out.ptr, "routes/traefik.yml\t/var/lib/traefik/dynamic/tend.yml\n"));
		assert_non_null(strstr(res.out.ptr, "hosts/gateway.json\t<revision>/.tend/hosts/gateway.json\n"));
		tend_proc_result_dispose(&res);
		file = tend_path_join(out, "routes/traefik.yml");
		data = test_read_file(file);
		assert_non_null(data);
		assert_non_null(strstr(data, "# Generated by tend from commit (working tree)."));
		free(data);
		free(file);
		file = tend_path_join(out, "hosts/gateway.json");
		doc = json_load_file(file, 0, NULL);
		assert_non_null(doc);
		assert_true(json_is_null(json_object_get(doc, "revision")));   /* no commit: null */
		json_decref(doc);
		free(file);
		free(example);
	}
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_adding_a_service),
		cmocka_unit_test(test_diff_json_and_host),
		cmocka_unit_test(test_no_changes_exit_0),
		cmocka_unit_test(test_invalid_from_is_an_error),
		cmocka_unit_test(test_render_one_host),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
