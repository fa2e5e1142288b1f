/* Golden outputs: examples/homelab rendered for commit GOLDEN_COMMIT must match
 * tests/golden/homelab/ byte for byte, render twice identically, and its
 * Traefik file must pass the schema. To regenerate after an intended change:
 *   TEND_GOLDEN_UPDATE=1 build/plain/tests/render_test_golden
 * then review `git diff tests/golden`. */
#include "tests/render/fixture.h"

#include <dirent.h>

#define GOLDEN_COMMIT "0123456789abcdef0123456789abcdef01234567"

static char *golden_dir(void)
{
	return tend_path_join(TEND_SOURCE_DIR, "tests/golden/homelab");
}

static tend_render_result *render_homelab(tend_manifest **out_m)
{
	char *dir = tend_path_join(TEND_SOURCE_DIR, "examples/homelab");
	tend_manifest *m = fx_load(dir);
	tend_render_result *r = fx_render(m, GOLDEN_COMMIT, NULL);

	free(dir);
	*out_m = m;
	return r;
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void test_matches_golden(void **state)
{
	tend_manifest *m;
	tend_render_result *r = render_homelab(&m);
	char *gdir = golden_dir(), *sub;
	size_t i, files;
	int update = getenv("TEND_GOLDEN_UPDATE") != NULL, mismatches = 0;

	if (update)
		assert_int_equal(tend_dir_remove_all(gdir), 0);
	for (i = 0; i < r->n_outputs; i++) {
		const tend_render_output *o = &r->outputs[i];
		char *path = tend_path_join(gdir, o->path), *want;

		if (update) {
			test_write_file(gdir, o->path, o->data);
			fprintf(stderr, "wrote %s\n", path);
		}
		want = test_read_file(path);
		if (!want || strlen(want) != o->len || memcmp(want, o->data, o->len)) {
			tend_buf d = TEND_BUF_INIT;
			int changed;

			tend_render_diff_unified(&d, &changed, path, want ? want : "", want ? strlen(want) : 0,
						 o->path, o->data, o->len);
			fprintf(stderr, "%s differs from the golden file (regenerate: TEND_GOLDEN_UPDATE=1 %s):\n%s\n",
				o->path, "build/plain/tests/render_test_golden", d.ptr ? d.ptr : "");
			tend_buf_dispose(&d);
			mismatches++;
		}
		free(want);
		free(path);
	}
	/* Nothing stale is left in the golden directory either. */
	sub = tend_path_join(gdir, "hosts");
	files = count_files(sub);
	free(sub);
	sub = tend_path_join(gdir, "routes");
	files += count_files(sub);
	free(sub);
	assert_int_equal(files, r->n_outputs);
	assert_int_equal(mismatches, 0);
	/* The homelab: five hosts' inputs and the gateway's Traefik file. */
	assert_int_equal(r->n_outputs, 6);
	assert_non_null(tend_render_result_find(r, "gateway", "routes/traefik.yml"));
	free(gdir);
	tend_render_result_free(r);
	tend_manifest_free(m);
}

static void test_twice_identical(void **state)
{
	tend_manifest *m1, *m2;
	tend_render_result *a = render_homelab(&m1), *b = render_homelab(&m2);
	size_t i;

	assert_int_equal(a->n_outputs, b->n_outputs);
	for (i = 0; i < a->n_outputs; i++) {
		assert_string_equal(a->outputs[i].host, b->outputs[i].host);
		assert_string_equal(a->outputs[i].path, b->outputs[i].path);
		assert_string_equal(a->outputs[i].dest, b->outputs[i].dest);
		assert_int_equal(a->outputs[i].len, b->outputs[i].len);
		assert_memory_equal(a->outputs[i].data, b->outputs[i].data, a->outputs[i].len);
	}
	tend_render_result_free(a);
	tend_render_result_free(b);
	tend_manifest_free(m1);
	tend_manifest_free(m2);
}

static void test_golden_traefik_passes_schema(void **state)
{
	char *ajv = fx_ajv(), *gdir = golden_dir(), *file;
	tend_buf out = TEND_BUF_INIT;

	if (!ajv) {
		fprintf(stderr, "SKIP: ajv not installed (scripts/bootstrap.sh deps installs it)\n");
		free(gdir);
		skip();
	}
	file = tend_path_join(gdir, "routes/traefik.yml");
	if (fx_ajv_validate(ajv, file, &out) != 0)
		fprintf(stderr, "%s\n", out.ptr);
	assert_int_equal(fx_ajv_validate(ajv, file, NULL), 0);
	tend_buf_dispose(&out);
	free(file);
	free(gdir);
	free(ajv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches_golden),
		cmocka_unit_test(test_twice_identical),
		cmocka_unit_test(test_golden_traefik_passes_schema),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
