/* Line diffs (render/diff.c) and per-host render diffs (render/diffsum.c):
 * exact unified output on small cases, random cases checked by `git apply`
 * (the real consumer of unified diffs), and the stamp-insensitive comparison. */
#include "tests/render/fixture.h"


#if defined(__SANITIZE_ADDRESS__)
#define BIG_LINES 8000     /* sanitizer builds are several times slower */
#else
#define BIG_LINES 30000
#endif

static char *udiff(const char *a, const char *b, int *changed)
{
	tend_buf out = TEND_BUF_INIT;

	assert_int_equal(tend_render_diff_unified(&out, changed, "a/f", a, strlen(a), "b/f", b, strlen(b)), 0);
	if (!out.ptr)
		return strdup("");
	return tend_buf_detach(&out);
}

static void expect(const char *a, const char *b, const char *want)
{
	int changed;
	char *got = udiff(a, b, &changed);

	assert_true(changed);
	if (strcmp(got, want))
		fprintf(stderr, "want:\n%s\ngot:\n%s\n", want, got);
	assert_string_equal(got, want);
	free(got);
}

static void test_equal_gives_nothing(void **state)
{
	int changed = 1;
	char *d = udiff("x\ny\n", "x\ny\n", &changed);

	assert_false(changed);
	assert_string_equal(d, "");
	free(d);
	d = udiff("", "", &changed);
	assert_false(changed);
	free(d);
}

static void test_small_cases(void **state)
{
	expect("a\nb\nc\n", "a\nB\nc\n", "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
	expect("", "x\ny\n", "--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+x\n+y\n");
	expect("x\n", "", "--- a/f\n+++ b/f\n@@ -1 +0,0 @@\n-x\n");
	expect("a\nb", "a\nb\n", "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
	/* Two changes far apart: two hunks with three lines of context each. */
	expect("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "1\nX\n3\n4\n5\n6\n7\n8\n9\n10\nY\n12\n",
	       "--- a/f\n+++ b/f\n"
	       "@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n 4\n 5\n"
	       "@@ -8,5 +8,5 @@\n 8\n 9\n 10\n-11\n+Y\n 12\n");
	/* Six unchanged lines between changes: one hunk; seven: two (as GNU diff -u). */
	expect("1\n2\n3\n4\n5\n6\n7\n8\n", "X\n2\n3\n4\n5\n6\n7\nY\n",
	       "--- a/f\n+++ b/f\n@@ -1,8 +1,8 @@\n-1\n+X\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+Y\n");
	expect("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "X\n2\n3\n4\n5\n6\n7\n8\nY\n",
	       "--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n-1\n+X\n 2\n 3\n 4\n@@ -6,4 +6,4 @@\n 6\n 7\n 8\n-9\n+Y\n");
	/* An insertion between lines is an insertion, not a rewrite. */
	expect("a\nb\nc\nd\n", "a\nb\nnew\nc\nd\n", "--- a/f\n+++ b/f\n@@ -1,4 +1,5 @@\n a\n b\n+new\n c\n d\n");
}

static unsigned long rng_state = 12345;

static unsigned rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005UL + 1442695040888963407UL;
	return (unsigned)((rng_state >> 33) % n);
}

static char *random_text(unsigned lines, int final_newline)
{
	tend_buf b = TEND_BUF_INIT;
	unsigned i;

	for (i = 0; i < lines; i++)
		tend_buf_printf(&b, "line %u\n", rnd(8));
	if (!final_newline && b.size)
		b.ptr[--b.size] = '\0';
	if (!b.ptr)
		return strdup("");
	return tend_buf_detach(&b);
}

/* Random edits: what `git apply` makes of our diff must be exactly the new text. */
static void test_random_cases_apply(void **state)
{
	char *dir = test_tmpdir_make("udiff");
	char *fpath = tend_path_join(dir, "f");
	int round;

	for (round = 0; round < 60; round++) {
		char *a = random_text(rnd(40), rnd(5) != 0), *b, *d, *got;
		tend_buf mut = TEND_BUF_INIT;
		const char *p = a;
		int changed;

		/* b: a with lines dropped, replaced and inserted at random. */
		while (*p) {
			const char *nl = strchr(p, '\n');
			size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
			unsigned r = rnd(10);

			if (r == 0)
				tend_buf_printf(&mut, "inserted %u\n", rnd(3));
			if (r != 1)
				tend_buf_put(&mut, p, len);
			if (r == 2)
				tend_buf_printf(&mut, "line %u\n", rnd(8));
			p += len;
		}
		if (rnd(4) == 0)
			tend_buf_puts(&mut, "tail\n");
		b = mut.ptr ? tend_buf_detach(&mut) : strdup("");
		d = udiff(a, b, &changed);
		assert_int_equal(changed, strcmp(a, b) != 0);
		if (changed) {
			test_write_file(dir, "f", a);
			test_write_file(dir, "d.patch", d);
			if (test_sh(NULL, dir, "git apply --unsafe-paths d.patch") != 0)
				fprintf(stderr, "a:\n%s\nb:\n%s\ndiff:\n%s\n", a, b, d);
			got = test_read_file(fpath);
			assert_non_null(got);
			assert_string_equal(got, b);
			free(got);
		}
		free(a);
		free(b);
		free(d);
	}
	free(fpath);
	test_tmpdir_remove(dir);
}

/* Nothing in common: the search is bounded (not quadratic) and the diff still applies. */
static void test_large_unrelated_inputs(void **state)
{
	tend_buf a = TEND_BUF_INIT, b = TEND_BUF_INIT, d = TEND_BUF_INIT;
	char *dir = test_tmpdir_make("udiff-big"), *fpath = tend_path_join(dir, "f"), *got;
	int i, changed;

	for (i = 0; i < BIG_LINES; i++) {
		tend_buf_printf(&a, "a %d\n", i);
		tend_buf_printf(&b, i % 1000 ? "b %d\n" : "a %d\n", i);
	}
	/* a quadratic search would not finish within ctest's time limit */
	assert_int_equal(tend_render_diff_unified(&d, &changed, "a/f", a.ptr, a.size, "b/f", b.ptr, b.size), 0);
	assert_true(changed);
	test_write_file(dir, "f", a.ptr);
	test_write_file(dir, "d.patch", d.ptr);
	assert_int_equal(test_sh(NULL, dir, "git apply d.patch"), 0);
	got = test_read_file(fpath);
	assert_non_null(got);
	assert_true(!strcmp(got, b.ptr));
	free(got);
	free(fpath);
	tend_buf_dispose(&a);
	tend_buf_dispose(&b);
	tend_buf_dispose(&d);
	test_tmpdir_remove(dir);
}

static void test_equivalent_ignores_stamps(void **state)
{
	const char *y1 = "# Generated by tend from commit aaa. Do not edit: changes are overwritten.\nhttp: {}\n";
	const char *y2 = "# Generated by tend from commit bbb. Do not edit: changes are overwritten.\nhttp: {}\n";
	const char *y3 = "# Generated by tend from commit bbb. Do not edit: changes are overwritten.\nhttp: []\n";
	const char *j1 = "{\n  \"commit\": \"aaa\",\n  \"x\": 1\n}\n";
	const char *j2 = "{\n  \"commit\": null,\n  \"x\": 1\n}\n";
	const char *j3 = "{\n  \"commit\": null,\n  \"x\": 2\n}\n";
	const char *j4 = "{\n  \"x\": {\n    \"commit\": 1\n  }\n}\n";
	const char *j5 = "{\n  \"x\": {\n    \"commit\": 2\n  }\n}\n";

	assert_true(tend_render_output_equivalent(y1, strlen(y1), y2, strlen(y2)));
	assert_false(tend_render_output_equivalent(y1, strlen(y1), y3, strlen(y3)));
	assert_true(tend_render_output_equivalent(j1, strlen(j1), j2, strlen(j2)));
	assert_false(tend_render_output_equivalent(j1, strlen(j1), j3, strlen(j3)));
	assert_false(tend_render_output_equivalent(j4, strlen(j4), j5, strlen(j5)));   /* nested: not a stamp */
	assert_false(tend_render_output_equivalent(j1, strlen(j1), "", 0));
}

/* Two renders of small fleets: per-host categories and diffs. */
static void test_diff_compute(void **state)
{
	static const char *const fleet =
		"fleet: d\ndomain: lab.test\nhosts:\n  gw: {address: 10.0.0.1}\n  db: {address: 10.0.0.2}\n"
		"  apps: {address: 10.0.0.3}\n"
		"proxy: {service: traefik, kind: traefik, routes_file: /etc/traefik/tend.yml}\n";
	static const char *const before[] = {
		"traefik", "name: traefik\nhost: gw\n",
		"pg", "name: pg\nhost: db\nprovides: [postgresql]\n",
		"old", "name: old\nhost: apps\nproxy: {domain: old.lab.test, port: 81}\n",
		"keep", "name: keep\nhost: apps\nsettings: {a: 1}\n",
		NULL
	};
	static const char *const after[] = {
		"traefik", "name: traefik\nhost: gw\n",
		"pg", "name: pg\nhost: db\nprovides: [postgresql]\n",
		"new", "name: new\nhost: apps\nproxy: {domain: new.lab.test, port: 82}\n"
		       "database: {engine: postgresql, name: new, user: new}\n",
		"keep", "name: keep\nhost: apps\nsettings: {a: 2}\n",
		NULL
	};
	char *da = fx_repo("diff-a", fleet, before), *db = fx_repo("diff-b", fleet, after), *s;
	tend_manifest *ma = fx_load(da), *mb = fx_load(db);
	tend_render_result *ra = fx_render(ma, "one", NULL), *rb = fx_render(mb, "two", NULL);
	tend_render_diff *d;

	assert_int_equal(tend_render_diff_compute(&d, ra, rb, NULL), 0);
	assert_true(d->differs);
	assert_int_equal(d->n_hosts, 3);
	assert_string_equal(d->hosts[0].host, "apps");
	s = tend_render_host_diff_summary(&d->hosts[0]);
	assert_string_equal(s, "apps: services +1 ~1 -1");
	free(s);
	s = tend_render_host_diff_summary(&d->hosts[1]);
	assert_string_equal(s, "db: databases +1 ~0 -0");
	free(s);
	s = tend_render_host_diff_summary(&d->hosts[2]);
	assert_string_equal(s, "gw: routes +1 ~0 -1");
	free(s);
	assert_int_equal(d->hosts[2].n_paths, 2);
	assert_non_null(strstr(d->hosts[2].diff, "--- a/routes/traefik.yml\n+++ b/routes/traefik.yml\n"));
	assert_non_null(strstr(d->hosts[2].diff, "\n+      rule: \"Host(`new.lab.test`)\"\n"));
	assert_non_null(strstr(d->hosts[2].diff, "\n-      rule: \"Host(`old.lab.test`)\"\n"));
	/* The stamps differ ("one" and "two") but are not a change. */
	assert_null(strstr(d->hosts[2].diff, "-# Generated by tend"));
	assert_null(strstr(d->hosts[2].diff, "+# Generated by tend"));
	assert_null(strstr(d->hosts[0].diff, "\"commit\""));
	tend_render_diff_free(d);

	/* One host only; and the same render against itself. */
	assert_int_equal(tend_render_diff_compute(&d, ra, rb, "db"), 0);
	assert_int_equal(d->n_hosts, 1);
	tend_render_diff_free(d);
	assert_int_equal(tend_render_diff_compute(&d, ra, ra, NULL), 0);
	assert_false(d->differs);
	s = tend_render_host_diff_summary(&d->hosts[0]);
	assert_string_equal(s, "apps: no changes");
	free(s);
	assert_string_equal(d->hosts[0].diff, "");
	tend_render_diff_free(d);

	tend_render_result_free(ra);
	tend_render_result_free(rb);
	tend_manifest_free(ma);
	tend_manifest_free(mb);
	test_tmpdir_remove(da);
	test_tmpdir_remove(db);
}

/* A host that appears (or goes away) is diffed against nothing. */
static void test_host_added(void **state)
{
	static const char *const before[] = { "a", "name: a\nhost: gw\n", NULL };
	static const char *const after[] = { "a", "name: a\nhost: gw\n", "b", "name: b\nhost: extra\n", NULL };
	char *da = fx_repo("diff-h1", "fleet: h\ndomain: t\nhosts:\n  gw: {address: 10.0.0.1}\n", before);
	char *db = fx_repo("diff-h2", "fleet: h\ndomain: t\nhosts:\n  gw: {address: 10.0.0.1}\n"
			   "  extra: {address: 10.0.0.2}\n", after);
	tend_manifest *ma = fx_load(da), *mb = fx_load(db);
	tend_render_result *ra = fx_render(ma, NULL, NULL), *rb = fx_render(mb, NULL, NULL);
	tend_render_diff *d;
	char *s;

	assert_int_equal(tend_render_diff_compute(&d, ra, rb, NULL), 0);
	assert_int_equal(d->n_hosts, 2);
	assert_string_equal(d->hosts[0].host, "extra");
	assert_non_null(strstr(d->hosts[0].diff, "--- /dev/null\n+++ b/hosts/extra.json\n@@ -0,0 +1,"));
	s = tend_render_host_diff_summary(&d->hosts[0]);
	assert_string_equal(s, "extra: services +1 ~0 -0, other +1 ~0 -0");
	free(s);
	assert_false(d->hosts[1].differs);
	tend_render_diff_free(d);
	assert_int_equal(tend_render_diff_compute(&d, rb, ra, NULL), 0);
	assert_non_null(strstr(d->hosts[0].diff, "--- a/hosts/extra.json\n+++ /dev/null\n"));
	s = tend_render_host_diff_summary(&d->hosts[0]);
	assert_string_equal(s, "extra: services +0 ~0 -1, other +0 ~0 -1");
	free(s);
	tend_render_diff_free(d);
	tend_render_result_free(ra);
	tend_render_result_free(rb);
	tend_manifest_free(ma);
	tend_manifest_free(mb);
	test_tmpdir_remove(da);
	test_tmpdir_remove(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equal_gives_nothing),
		cmocka_unit_test(test_small_cases),
		cmocka_unit_test(test_random_cases_apply),
		cmocka_unit_test(test_large_unrelated_inputs),
		cmocka_unit_test(test_equivalent_ignores_stamps),
		cmocka_unit_test(test_diff_compute),
		cmocka_unit_test(test_host_added),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
