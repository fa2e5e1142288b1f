/* The positioned YAML tree: positions, duplicate keys, and the caps that stop
 * YAML bombs (aliases, depth, expanded size) quickly. */
#include "tests/support/support.h"
#include "util/yaml.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_positions(void **state)
{
	const char *src = "fleet: lab\nhosts:\n  db1:\n    address: 10.0.0.2\n";
	tend_yaml_doc *doc;
	const tend_yaml_node *root, *hosts, *db1, *addr;

	assert_int_equal(tend_yaml_parse(&doc, "fleet.yaml", src, strlen(src), NULL, NULL), 0);
	root = tend_yaml_doc_root(doc);
	assert_int_equal(root->kind, TEND_YAML_MAP);
	hosts = tend_yaml_map_get(root, "hosts");
	db1 = tend_yaml_map_get(hosts, "db1");
	addr = tend_yaml_map_get(db1, "address");
	assert_string_equal(addr->value, "10.0.0.2");
	assert_int_equal(addr->line, 4);
	assert_int_equal(addr->col, 14);
	assert_int_equal(db1->keys[0]->line, 4);
	assert_int_equal(db1->keys[0]->col, 5);
	assert_null(tend_yaml_map_get(root, "missing"));
	tend_yaml_doc_free(doc);
}

static void test_duplicate_key(void **state)
{
	const char *src = "a: 1\nb: 2\na: 3\n";
	tend_yaml_doc *doc;
	tend_yaml_error err;

	assert_int_equal(tend_yaml_parse(&doc, "x.yaml", src, strlen(src), NULL, &err), TEND_EINVALID);
	assert_int_equal(err.line, 3);
	assert_int_equal(err.col, 1);
	assert_string_equal(tend_error_last(), "x.yaml:3:1: duplicate key 'a' (first defined at line 1)");
}

static void test_syntax_error_position(void **state)
{
	const char *src = "a: [1, 2\nb: 3\n";
	tend_yaml_doc *doc;
	tend_yaml_error err;

	assert_int_equal(tend_yaml_parse(&doc, "s.yaml", src, strlen(src), NULL, &err), TEND_EINVALID);
	assert_true(err.line >= 1);
	assert_non_null(strstr(tend_error_last(), "s.yaml:"));
}

/* Issue 17 F5: everything after a second document was ignored, even
 * garbage. Fails on 247ba6c (both parsed, as the first document alone). */
static void test_second_document_refused(void **state)
{
	const char *two = "a: 1\n---\nb: 2\n", *garbage = "a: 1\n...\n: : [\n";
	tend_yaml_doc *doc;
	tend_yaml_error err;

	(void)state;
	assert_int_equal(tend_yaml_parse(&doc, "m.yaml", two, strlen(two), NULL, &err), TEND_EINVALID);
	assert_string_equal(tend_error_last(),
			    "m.yaml:2:1: a second YAML document: tend reads one document a file");
	assert_int_equal(err.line, 2);
	assert_int_equal(tend_yaml_parse(&doc, "m.yaml", garbage, strlen(garbage), NULL, &err),
			 TEND_EINVALID);
	assert_int_equal(err.line, 3);
	/* one document with explicit markers is still one */
	assert_int_equal(tend_yaml_parse(&doc, "m.yaml", "---\na: 1\n...\n", 13, NULL, &err), 0);
	tend_yaml_doc_free(doc);
}

/* Issue 17 F6: a NUL, a control character or invalid UTF-8 was reported at
 * 1:1 wherever it was. Fails on 247ba6c (1:1 for all three). */
static void test_bad_byte_position(void **state)
{
	static const struct { const char *src; size_t len; unsigned line, col; const char *msg; } cases[] = {
		{ "a: 1\nb: x\0y\n", 12, 2, 5, "b.yaml:2:5: control characters are not allowed (byte 0x00)" },
		{ "a: 1\nbb: 2\nc: \x01\n", 16, 3, 4, "b.yaml:3:4: control characters are not allowed (byte 0x01)" },
		{ "a: \xc3\xa9t\xc3\xa9\nb: \xff\n", 14, 2, 4, NULL },
		{ "a: 1\nb: x\xc2\x80\n", 12, 2, 5, "b.yaml:2:5: control characters are not allowed (U+0080)" },
	};
	tend_yaml_doc *doc;
	tend_yaml_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(tend_yaml_parse(&doc, "b.yaml", cases[i].src, cases[i].len, NULL, &err),
				 TEND_EINVALID);
		if (cases[i].msg)
			assert_string_equal(tend_error_last(), cases[i].msg);
		assert_int_equal(err.line, cases[i].line);
		assert_int_equal(err.col, cases[i].col);
	}
}

static void test_alias_shared_and_counted(void **state)
{
	const char *src = "base: &b {x: 1}\nuse: *b\n";
	tend_yaml_doc *doc;
	const tend_yaml_node *root;

	assert_int_equal(tend_yaml_parse(&doc, "a.yaml", src, strlen(src), NULL, NULL), 0);
	root = tend_yaml_doc_root(doc);
	assert_ptr_equal(tend_yaml_map_get(root, "base"), tend_yaml_map_get(root, "use"));
	tend_yaml_doc_free(doc);
}

static void test_recursive_alias_refused(void **state)
{
	const char *src = "a: &a [1, *a]\n";
	tend_yaml_doc *doc;

	assert_int_equal(tend_yaml_parse(&doc, "r.yaml", src, strlen(src), NULL, NULL), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "enclosing"));
}

/* billion laughs: each level doubles ten times; refused on expanded size or alias count */
static void test_bomb_refused_fast(void **state)
{
	tend_buf b = TEND_BUF_INIT;
	tend_yaml_doc *doc;
	struct timespec t0, t1;
	int i, j, rc;
	double secs;

	tend_buf_puts(&b, "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (i = 1; i < 10; i++) {
		tend_buf_printf(&b, "l%d: &l%d [", i, i);
		for (j = 0; j < 10; j++)
			tend_buf_printf(&b, "%s*l%d", j ? ", " : "", i - 1);
		tend_buf_puts(&b, "]\n");
	}
	/* pad to about 1 MB with a harmless comment so size alone is realistic */
	while (b.size < 1000000)
		tend_buf_puts(&b, "# padding padding padding padding padding padding padding padding\n");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = tend_yaml_parse(&doc, "bomb.yaml", b.ptr, b.size, NULL, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(rc, TEND_ELIMIT);
	assert_true(secs < 1.0);
	tend_buf_dispose(&b);
}

static void test_depth_cap(void **state)
{
	tend_buf b = TEND_BUF_INIT;
	tend_yaml_doc *doc;
	int i;

	for (i = 0; i < 100000; i++)
		tend_buf_putc(&b, '[');
	assert_int_equal(tend_yaml_parse(&doc, "deep.yaml", b.ptr, b.size, NULL, NULL), TEND_ELIMIT);
	assert_non_null(strstr(tend_error_last(), "nesting deeper than 64"));
	tend_buf_dispose(&b);
}

static void test_size_cap(void **state)
{
	tend_yaml_limits lim = tend_yaml_default_limits;
	tend_yaml_doc *doc;

	lim.max_bytes = 4;
	assert_int_equal(tend_yaml_parse(&doc, "big.yaml", "a: 12345", 8, &lim, NULL), TEND_ELIMIT);
}

static void test_empty_document(void **state)
{
	tend_yaml_doc *doc;

	assert_int_equal(tend_yaml_parse(&doc, "e.yaml", "", 0, NULL, NULL), 0);
	assert_null(tend_yaml_doc_root(doc));
	tend_yaml_doc_free(doc);
}

static void test_nonscalar_key(void **state)
{
	const char *src = "? [a, b]\n: 1\n";
	tend_yaml_doc *doc;

	assert_int_equal(tend_yaml_parse(&doc, "k.yaml", src, strlen(src), NULL, NULL), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "mapping keys must be scalars"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_syntax_error_position),
		cmocka_unit_test(test_second_document_refused),
		cmocka_unit_test(test_bad_byte_position),
		cmocka_unit_test(test_alias_shared_and_counted),
		cmocka_unit_test(test_recursive_alias_refused),
		cmocka_unit_test(test_bomb_refused_fast),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_size_cap),
		cmocka_unit_test(test_empty_document),
		cmocka_unit_test(test_nonscalar_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
