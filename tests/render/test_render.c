/* The render entry points: one host's outputs (what its agent writes) and
 * every host's inputs are byte for byte the same outputs as the whole fleet's
 * render (examples/homelab, with and without a commit stamp), so is what an
 * agent renders in one pass (inputs unstamped but for their "revision", its
 * routes stamped), and writing a host's outputs again leaves the files alone. */
#include "tests/render/fixture.h"

#include <sys/stat.h>

static tend_manifest *homelab(void)
{
	char *dir = tend_path_join(TEND_SOURCE_DIR, "examples/homelab");
	tend_manifest *m = fx_load(dir);

	free(dir);
	return m;
}

static void assert_same_output(const tend_render_output *a, const tend_render_output *b)
{
	assert_string_equal(a->host, b->host);
	assert_string_equal(a->path, b->path);
	assert_string_equal(a->dest, b->dest);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->dest_absolute, b->dest_absolute);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->data, b->data, a->len);
}

static void check_hosts(const tend_manifest *m, const char *commit)
{
	tend_render_result *all = fx_render(m, commit, NULL), *one = NULL, *inputs = NULL;
	size_t h, i, n, n_inputs = 0, routes_seen = 0;

	for (h = 0; h < m->n_hosts; h++) {
		const tend_render_output *want = tend_render_result_host(all, m->hosts[h].name, &n);

		assert_int_equal(tend_render_host_opts(&one, m, m->hosts[h].name, commit, NULL), 0);
		assert_int_equal(one->n_outputs, n);   /* its inputs, and routes when it is the proxy */
		for (i = 0; i < n; i++) {
			assert_same_output(&one->outputs[i], &want[i]);
			routes_seen += want[i].kind == TEND_OUTPUT_ROUTES;
		}
		tend_render_result_free(one);
		one = NULL;
	}
	assert_int_equal(routes_seen, m->proxy ? 1 : 0);

	assert_int_equal(tend_render_inputs_opts(&inputs, m, commit, NULL), 0);
	for (i = 0; i < all->n_outputs; i++) {
		const tend_render_output *o = &all->outputs[i], *got;

		if (o->kind != TEND_OUTPUT_HOST_INPUTS)
			continue;
		n_inputs++;
		assert_non_null(got = tend_render_result_find(inputs, o->host, o->path));
		assert_same_output(got, o);
	}
	assert_int_equal(inputs->n_outputs, n_inputs);
	assert_int_equal(n_inputs, m->n_hosts);
	tend_render_result_free(inputs);
	tend_render_result_free(all);
}

/* The unstamped render of an output with its "revision" the commit. */
static char *with_revision(const tend_render_output *o, const char *commit)
{
	static const char null_rev[] = "\n  \"revision\": null,\n";
	const char *at = strstr(o->data, null_rev);
	char *s = NULL;

	assert_non_null(at);
	assert_true(asprintf(&s, "%.*s\n  \"revision\": \"%s\",\n%s", (int)(at - o->data), o->data,
			     commit, at + strlen(null_rev)) > 0);
	return s;
}

/* What an agent renders in one pass: every host's inputs unstamped with the
 * commit as "revision", its own routes file stamped; each output the fleet
 * render's with that stamp (and the inputs' "revision"). */
static void check_agent(const tend_manifest *m, const char *commit)
{
	tend_render_result *stamped = fx_render(m, commit, NULL), *plain = fx_render(m, NULL, NULL);
	tend_render_result *r = NULL;
	size_t h, i, routes_seen = 0;

	for (h = 0; h < m->n_hosts; h++) {
		const char *host = m->hosts[h].name;
		size_t want = m->n_hosts;

		assert_int_equal(tend_render_agent_opts(&r, m, host, commit, NULL, NULL), 0);
		for (i = 0; i < r->n_outputs; i++) {
			const tend_render_output *o = &r->outputs[i];
			const tend_render_result *ref = o->kind == TEND_OUTPUT_ROUTES ? stamped : plain;
			tend_render_output exp = *tend_render_result_find(ref, o->host, o->path);
			char *data = NULL;

			if (o->kind == TEND_OUTPUT_ROUTES) {
				assert_string_equal(o->host, host);
				routes_seen++;
				want++;
			} else {
				exp.data = data = with_revision(&exp, commit);
				exp.len = strlen(data);
			}
			assert_same_output(o, &exp);
			free(data);
		}
		assert_int_equal(r->n_outputs, want);
		tend_render_result_free(r);
		r = NULL;
	}
	assert_int_equal(routes_seen, m->proxy ? 1 : 0);
	assert_int_equal(tend_render_agent_opts(&r, m, "no-such-host", commit, NULL, NULL), TEND_ENOTFOUND);
	assert_null(r);
	tend_render_result_free(stamped);
	tend_render_result_free(plain);
}

static void test_host_and_inputs_match_fleet(void **state)
{
	tend_manifest *m = homelab();

	(void)state;
	assert_true(m->n_hosts > 1);
	check_hosts(m, "0123456789abcdef0123456789abcdef01234567");
	check_hosts(m, NULL);
	check_agent(m, "0123456789abcdef0123456789abcdef01234567");
	tend_manifest_free(m);
}

static void test_unknown_host(void **state)
{
	tend_manifest *m = homelab();
	tend_render_result *r = NULL;

	(void)state;
	assert_int_equal(tend_render_host_opts(&r, m, "no-such-host", NULL, NULL), TEND_ENOTFOUND);
	assert_null(r);
	assert_non_null(strstr(tend_error_last(), "no-such-host"));
	tend_manifest_free(m);
}

static void test_write_again_keeps_files(void **state)
{
	tend_manifest *m = homelab();
	tend_render_result *r = fx_render(m, NULL, NULL);
	char *dir = test_tmpdir_make("render-write"), *path, *got, rel[300];
	struct stat a, b;

	(void)state;
	snprintf(rel, sizeof(rel), "hosts/%s.json", m->hosts[0].name);
	path = tend_path_join(dir, rel);
	assert_int_equal(tend_render_result_write_host(r, m->hosts[0].name, dir), 0);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(a.st_mode & 07777, 0644);
	assert_int_equal(tend_render_result_write_host(r, m->hosts[0].name, dir), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino == b.st_ino);   /* unchanged: not rewritten */
	/* a changed file is put back */
	test_write_file(dir, rel, "{}\n");
	assert_int_equal(tend_render_result_write_host(r, m->hosts[0].name, dir), 0);
	got = test_read_file(path);
	assert_string_equal(fx_output(r, m->hosts[0].name, rel), got);
	free(got);
	free(path);
	test_tmpdir_remove(dir);
	tend_render_result_free(r);
	tend_manifest_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_and_inputs_match_fleet),
		cmocka_unit_test(test_unknown_host),
		cmocka_unit_test(test_write_again_keeps_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
