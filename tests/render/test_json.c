/* The JSON writers of render/json.c: the document dump is jansson's own
 * json_dumps(JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENSURE_ASCII) text, the
 * streaming writer gives the same bytes as the dump without a document (and
 * refuses keys out of order rather than write other bytes), strings are
 * escaped and checked as jansson does, and service settings stream as their
 * document dumps. */
#include "tests/render/fixture.h"
#include "render/render_int.h"

#include <limits.h>

static char *jansson_text(const json_t *doc)
{
	char *s = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENSURE_ASCII), *t = NULL;

	assert_non_null(s);
	assert_true(asprintf(&t, "%s\n", s) > 0);
	free(s);
	return t;
}

/* Stream a document through the writer, members in strcmp order. */
static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void stream(tend_jw *w, const json_t *v)
{
	size_t i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char **keys, *k;
		json_t *item;

		n = json_object_size(v);
		keys = calloc(n + 1, sizeof(*keys));
		i = 0;
		json_object_foreach((json_t *)v, k, item)
			keys[i++] = k;
		qsort(keys, n, sizeof(*keys), cmp_key);
		tend_jw_obj(w);
		for (i = 0; i < n; i++) {
			tend_jw_key(w, keys[i]);
			stream(w, json_object_get(v, keys[i]));
		}
		tend_jw_end(w);
		free(keys);
		break;
	}
	case JSON_ARRAY:
		tend_jw_arr(w);
		for (i = 0; i < json_array_size(v); i++)
			stream(w, json_array_get(v, i));
		tend_jw_end(w);
		break;
	case JSON_STRING:
		tend_jw_strn(w, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		tend_jw_int(w, json_integer_value(v));
		break;
	case JSON_REAL:
		tend_jw_real(w, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		tend_jw_bool(w, json_is_true(v));
		break;
	case JSON_NULL:
		tend_jw_null(w);
		break;
	}
}

static json_t *tricky_doc(void)
{
	static const char *const strings[] = {
		"", "a", "quote \" and backslash \\", "ctl \x01\x1f\x7f tab\t nl\n cr\r bs\b ff\f",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "/slash/", "<>&'",
	};
	json_t *doc = json_object(), *arr = json_array(), *nest = json_object();
	char key[32], run[40];
	size_t i;

	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		snprintf(key, sizeof(key), "s%zu", i);
		json_object_set_new(doc, key, json_string(strings[i]));
		json_array_append_new(arr, json_string(strings[i]));
	}
	/* runs around the eight-byte scan, each with an escape at every place */
	for (i = 0; i < 20; i++) {
		memset(run, 'x', i);
		run[i] = '\0';
		json_array_append_new(arr, json_string(run));
		if (i) {
			run[i / 2] = '"';
			json_array_append_new(arr, json_string(run));
			run[i / 2] = '\x02';
			json_array_append_new(arr, json_string(run));
		}
	}
	json_array_append_new(arr, json_stringn("nul\0inside", 10));
	json_object_set_new(doc, "array", arr);
	json_object_set_new(doc, "empty_object", json_object());
	json_object_set_new(doc, "empty_array", json_array());
	json_object_set_new(doc, "ints", json_pack("[I, I, I, I, I]", (json_int_t)0, (json_int_t)-1,
						  (json_int_t)65535, (json_int_t)LLONG_MAX, (json_int_t)LLONG_MIN));
	json_object_set_new(doc, "bools", json_pack("[b, b, n]", 1, 0));
	json_object_set_new(nest, "key \"quoted\"\n", json_pack("{s: {s: []}}", "a", "b"));
	json_object_set_new(nest, "Z", json_true());
	json_object_set_new(nest, "\xc3\xa9", json_false());
	json_object_set_new(doc, "nested", nest);
	return doc;
}

static void test_dump_is_janssons_text(void **state)
{
	json_t *doc = tricky_doc();
	char *want = jansson_text(doc), *got = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(tend_render_json_dump(&got, &len, doc), 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(got, want);
	free(got);
	free(want);
	json_decref(doc);
}

static void test_stream_is_the_dump(void **state)
{
	json_t *doc = tricky_doc();
	tend_buf b = TEND_BUF_INIT;
	tend_jw w;
	char *want = NULL;
	size_t len = 0;

	(void)state;
	json_array_append_new(json_object_get(doc, "array"), json_real(0.1));   /* reals: the dump's form */
	json_array_append_new(json_object_get(doc, "array"), json_real(-2.5e-300));
	assert_int_equal(tend_render_json_dump(&want, &len, doc), 0);
	tend_jw_init(&w, &b);
	stream(&w, doc);
	assert_int_equal(tend_jw_finish(&w), 0);
	assert_int_equal(b.size, len);
	assert_memory_equal(b.ptr, want, len);
	tend_buf_dispose(&b);
	free(want);
	json_decref(doc);
}

/* A literal key is written as tend_jw_key writes it, and checked the same. */
static void test_plain_keys(void **state)
{
	tend_buf a = TEND_BUF_INIT, b = TEND_BUF_INIT;
	tend_jw w;

	(void)state;
	tend_jw_init(&w, &a);
	tend_jw_obj(&w);
	tend_jw_key(&w, "a");
	tend_jw_obj(&w);
	tend_jw_key(&w, "inner_key");
	tend_jw_int(&w, 1);
	tend_jw_key(&w, "z9");
	tend_jw_arr(&w);
	tend_jw_end(&w);
	tend_jw_end(&w);
	tend_jw_key(&w, "b");
	tend_jw_null(&w);
	tend_jw_end(&w);
	assert_int_equal(tend_jw_finish(&w), 0);
	tend_jw_init(&w, &b);
	tend_jw_obj(&w);
	TEND_JW_KEY(&w, "a");
	tend_jw_obj(&w);
	TEND_JW_KEY(&w, "inner_key");
	tend_jw_int(&w, 1);
	TEND_JW_KEY(&w, "z9");
	tend_jw_arr(&w);
	tend_jw_end(&w);
	tend_jw_end(&w);
	TEND_JW_KEY(&w, "b");
	tend_jw_null(&w);
	tend_jw_end(&w);
	assert_int_equal(tend_jw_finish(&w), 0);
	assert_string_equal(a.ptr, b.ptr);
	tend_buf_clear(&b);
	tend_jw_init(&w, &b);
	tend_jw_obj(&w);
	TEND_JW_KEY(&w, "b");
	tend_jw_null(&w);
	TEND_JW_KEY(&w, "a");
	assert_int_equal(tend_jw_finish(&w), TEND_ERROR);
	tend_buf_dispose(&a);
	tend_buf_dispose(&b);
}

static void test_stream_refuses_misuse(void **state)
{
	tend_buf b = TEND_BUF_INIT;
	tend_jw w;

	(void)state;
	/* keys out of order, a key twice: an error, not different bytes */
	tend_jw_init(&w, &b);
	tend_jw_obj(&w);
	tend_jw_key(&w, "b");
	tend_jw_null(&w);
	tend_jw_key(&w, "a");
	tend_jw_null(&w);
	tend_jw_end(&w);
	assert_int_equal(tend_jw_finish(&w), TEND_ERROR);
	assert_non_null(strstr(tend_error_last(), "'a' written after 'b'"));
	tend_buf_clear(&b);
	tend_jw_init(&w, &b);
	tend_jw_obj(&w);
	tend_jw_key(&w, "a");
	tend_jw_null(&w);
	tend_jw_key(&w, "a");
	tend_jw_null(&w);
	tend_jw_end(&w);
	assert_int_equal(tend_jw_finish(&w), TEND_ERROR);
	/* unbalanced, a value without its key, a missing required string */
	tend_buf_clear(&b);
	tend_jw_init(&w, &b);
	tend_jw_arr(&w);
	assert_int_equal(tend_jw_finish(&w), TEND_ERROR);
	tend_buf_clear(&b);
	tend_jw_init(&w, &b);
	tend_jw_obj(&w);
	tend_jw_null(&w);
	assert_int_equal(tend_jw_finish(&w), TEND_ERROR);
	tend_buf_clear(&b);
	tend_jw_init(&w, &b);
	tend_jw_str(&w, NULL);
	assert_int_equal(tend_jw_finish(&w), TEND_EINVALID);
	tend_buf_dispose(&b);
}

static void test_invalid_utf8_refused(void **state)
{
	static const char *const bad[] = {
		"\x80", "a\xc0\x80", "\xc3", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80", "ok\xe2\x82",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tend_buf b = TEND_BUF_INIT;
		tend_jw w;

		tend_jw_init(&w, &b);
		tend_jw_str(&w, bad[i]);
		assert_int_equal(tend_jw_finish(&w), TEND_EINVALID);
		assert_null(json_string(bad[i]));   /* what jansson refuses too */
		tend_buf_dispose(&b);
	}
}

static void test_settings_stream_as_dumped(void **state)
{
	tend_buf y = TEND_BUF_INIT, b = TEND_BUF_INIT;
	tend_yaml_doc *doc = NULL;
	json_t *v;
	tend_jw w;
	char *want = NULL, *msg;
	size_t len = 0, i;

	(void)state;
	tend_buf_puts(&y, "port: 8080\nratio: 0.25\nexp: 1e3\nhex: 0x1F\noct: 0o17\nneg: -12\n"
		      "yes_word: yes\nt: True\nf: FALSE\nn: ~\nnul: null\nempty:\nq: '8080'\n"
		      "str: !!str 12\nbig: 123456789012345678901234567890\nesc: \"a\\tb\\0c\"\n"
		      "list: [1, '2', three, {deep: 1.5}, [], {}]\nnested: {b: {c: [x]}, a: 1}\n"
		      "\"k\\\"ey\": 1\n");
	for (i = 0; i < 20; i++)   /* more keys than the small sort handles */
		tend_buf_printf(&y, "key%02zu: %zu\n", (i * 7) % 20, i);
	assert_int_equal(tend_yaml_parse(&doc, "s.yaml", y.ptr, y.size, NULL, NULL), 0);
	assert_non_null(v = tend_render_yaml_to_json(tend_yaml_doc_root(doc)));
	assert_int_equal(tend_render_json_dump(&want, &len, v), 0);
	tend_jw_init(&w, &b);
	assert_int_equal(tend_render_yaml_write_json(&w, tend_yaml_doc_root(doc)), 0);
	assert_int_equal(tend_jw_finish(&w), 0);
	assert_int_equal(b.size, len);
	assert_memory_equal(b.ptr, want, len);
	json_decref(v);
	free(want);
	tend_yaml_doc_free(doc);

	/* the error, with its position, is the document builder's */
	tend_buf_clear(&y);
	tend_buf_puts(&y, "z: .nan\na: .inf\n");
	assert_int_equal(tend_yaml_parse(&doc, "s.yaml", y.ptr, y.size, NULL, NULL), 0);
	assert_null(tend_render_yaml_to_json(tend_yaml_doc_root(doc)));
	msg = strdup(tend_error_last());
	tend_buf_clear(&b);
	tend_jw_init(&w, &b);
	assert_int_equal(tend_render_yaml_write_json(&w, tend_yaml_doc_root(doc)), TEND_EINVALID);
	assert_string_equal(tend_error_last(), msg);
	assert_string_equal(msg, "line 1, column 4: '.nan' has no JSON form");
	free(msg);
	tend_yaml_doc_free(doc);
	tend_buf_dispose(&b);
	tend_buf_dispose(&y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_is_janssons_text),
		cmocka_unit_test(test_stream_is_the_dump),
		cmocka_unit_test(test_plain_keys),
		cmocka_unit_test(test_stream_refuses_misuse),
		cmocka_unit_test(test_invalid_utf8_refused),
		cmocka_unit_test(test_settings_stream_as_dumped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
