/* The fast YAML path (util/yaml_fast.c) against libyaml: every document the
 * fast path accepts must give libyaml's tree exactly (kinds, positions,
 * styles, values, weights), over hand-written corner cases, the repository's
 * YAML files and thousands of mutations of manifests; and manifests as tend
 * writes them must take the fast path. */
#include "tests/support/support.h"
#include "util/yaml.h"
#include "util/yaml_fast.h"
#include "util/fs.h"
#include "util/error.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int same_tree(const tend_yaml_node *a, const tend_yaml_node *b, char *why, size_t whylen)
{
	size_t i;

	if (!a || !b) {
		if (a != b)
			snprintf(why, whylen, "one root is NULL");
		return a == b;
	}
	if (a->kind != b->kind || a->line != b->line || a->col != b->col || a->plain != b->plain ||
	    a->len != b->len || a->count != b->count || a->weight != b->weight ||
	    (a->value && memcmp(a->value, b->value, a->len + 1)) || !a->value != !b->value ||
	    !a->tag != !b->tag || (a->tag && strcmp(a->tag, b->tag))) {
		snprintf(why, whylen, "node at %u:%u (fast) vs %u:%u (libyaml): kind %d/%d plain %d/%d "
			 "len %zu/%zu count %zu/%zu weight %zu/%zu value '%s'/'%s'", a->line, a->col,
			 b->line, b->col, a->kind, b->kind, a->plain, b->plain, a->len, b->len, a->count,
			 b->count, a->weight, b->weight, a->value ? a->value : "", b->value ? b->value : "");
		return 0;
	}
	for (i = 0; i < a->count; i++) {
		if (a->kind == TEND_YAML_MAP && !same_tree(a->keys[i], b->keys[i], why, whylen))
			return 0;
		if (!same_tree(a->items[i], b->items[i], why, whylen))
			return 0;
	}
	return 1;
}

/* 1 when the fast path took the document (and agreed with libyaml), 0 when
 * it declined; fails the test on any disagreement. */
static int check_doc(const char *data, size_t len, const char *what)
{
	tend_yaml_doc *fast = NULL, *slow = NULL;
	char why[512] = "";
	int rc = tend_yaml__parse_fast(&fast, "t.yaml", data, len, NULL), ok;

	assert_true(rc == 0 || rc == TEND_YAML_DECLINED);
	if (rc == TEND_YAML_DECLINED) {
		assert_null(fast);
		return 0;
	}
	if (tend_yaml__parse_libyaml(&slow, "t.yaml", data, len, NULL, NULL) < 0) {
		fprintf(stderr, "%s: fast path accepted what libyaml refuses (%s):\n%.*s\n", what,
			tend_error_last(), (int)len, data);
		fail();
	}
	ok = same_tree(tend_yaml_doc_root(fast), tend_yaml_doc_root(slow), why, sizeof(why));
	if (!ok)
		fprintf(stderr, "%s: trees differ: %s\n---\n%.*s\n---\n", what, why, (int)len, data);
	assert_true(ok);
	tend_yaml_doc_free(fast);
	tend_yaml_doc_free(slow);
	return 1;
}

static int check(const char *s)
{
	return check_doc(s, strlen(s), "case");
}

/* a service the way bench/gen-fleet and the examples write them */
static const char service_yaml[] =
	"name: app00001\n"
	"host: h003\n"
	"depends_on: [app00000, idp]\n"
	"database:\n"
	"  engine: postgresql\n"
	"  name: db_app00001\n"
	"  user: u_app00001\n"
	"  password_secret: db-password\n"
	"proxy:\n"
	"  domain: app00001.fleet.example.net\n"
	"  port: 10001\n"
	"  auth: true\n"
	"oidc:\n"
	"  client_id: app00001\n"
	"  redirect_uris: [\"https://app00001.fleet.example.net/oidc/callback\"]\n"
	"  client_secret: oidc-secret\n"
	"health:\n"
	"  startup:\n"
	"    - http: {url: \"http://127.0.0.1:10001/health\", status: 200}\n"
	"      retries: 10\n"
	"  liveness:\n"
	"    - tcp: {host: 127.0.0.1, port: 10001}\n"
	"secrets:\n"
	"  - name: db-password\n"
	"    file: secrets/app00001/db-password.age\n"
	"    owner: root\n"
	"    restart: [app00001.service]\n"
	"  - name: oidc-secret\n"
	"    file: secrets/app00001/oidc.yaml\n"
	"    key: '[\"client_secret\"]'\n"
	"settings:\n"
	"  workers: 2 # comment\n"
	"  log_level: info\n"
	"  features: [metrics, tracing]\n";

static void test_manifests_take_fast_path(void **state)
{
	(void)state;
	assert_true(check(service_yaml));
	assert_true(check("fleet: bench\ndomain: fleet.example.net\nnetwork:\n  internal_cidrs: [10.0.0.0/8]\n"
			  "hosts:\n  h000:\n    address: 10.0.0.0\n    age_recipient: age1xyz\n"));
	assert_true(check(""));
	assert_true(check("# only a comment\n\n"));
}

static void test_corner_cases(void **state)
{
	static const char *const taken[] = {
		"a: 1", "a:", "a:\n", "a:   \n", "a: # c\nb: 2\n", "- # c\n- x\n", "-\n- \n-   \n",
		"a:\n- x\n- y\nb: 1\n", "a:\n  - x\n  -\n    k: v\n", "- a: 1\n  b: 2\n- c\n",
		"-   a: 1\n    b:\n    - x\n", "a  : b\n", "'a''b': 'c''d'\n", "\"a\\\"b\": \"\\t\\n\\\\ \\0x\"\n",
		"a: [ x , y ]\n", "a: {k: v, 'q': \"r\"}\n", "a: [[1], {b: [c]}, []]\n", "a: {}\n",
		"a: x:y\n", "a: http://h:80/p?q#f\n", "a: x#y\n", "a: -5\n", "-a: b\n", "a: b  c \n",
		"a: b,c[d]{e}\n", "a:\n  b:\n    c:\n", "  a: 1\n  b: 2\n", "a: ~\nb: null\n",
		"key::\n", "a: 'x' # c\n", "a: \"\"\n", "a: ''\n", "a: [\"\", '']\n",
		"x: 1\n\n\n# end\n   \n", "a: .5\nb: 0x1F\nc: 1e3\n", "- [a, b]\n- {c: d}\n",
		"a:\n  # comment\n  b: 1\n", "a: 1\n# trailing\n", "- a\n-  b\n",
	};
	static const char *const declined[] = {
		"a: \xc3\xa9\n", "a:\tb\n", "a: b\r\n", "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: |\n  x\n",
		"a: >\n  x\n", "---\na: 1\n", "a: 1\n...\n", "%YAML 1.2\n---\na: 1\n", "a: b\n  c\n",
		"a:\n  b\n", "a: [1,\n 2]\n", "a: 'x\n  y'\n", "a: 1\na: 2\n", "? a\n: b\n", "- - a\n",
		"a: b: c\n", "a: [a: b]\n", "a: {b}\n", "a: {b: }\n", "a: [1, ]\n", "a: \"\\u00e9\"\n",
		"a: \"\\x41\"\n", "a: \"\\/\"\n", "just a scalar\n", "[1, 2]\n", "a: 1\n b: 2\n",
		"a:\n    b: 1\n  c: 2\n", "- a\nb: c\n", "a: - b\n", "a: @x\n", "a: `x`\n", "a: %x\n",
		"a: \"x\"y\n", "a: 'x'#c\n", "{a: 1}\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		if (!check(taken[i]))
			fail_msg("the fast path declined %s", taken[i]);
	}
	for (i = 0; i < sizeof(declined) / sizeof(declined[0]); i++) {
		if (check(declined[i]))
			fail_msg("the fast path took %s", declined[i]);
	}
}

/* Every .yaml/.yml file under dir (the repository's examples, fixtures and
 * corpora; the third-party vectors under tests/vectors). */
static void walk(const char *dir, size_t *files, size_t *taken)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *path;
		struct stat st;
		size_t nl = strlen(de->d_name);

		if (de->d_name[0] == '.' || !(path = tend_path_join(dir, de->d_name)))
			continue;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			walk(path, files, taken);
		} else if (S_ISREG(st.st_mode) && st.st_size < (1 << 20) &&
			   ((nl > 5 && !strcmp(de->d_name + nl - 5, ".yaml")) ||
			    (nl > 4 && !strcmp(de->d_name + nl - 4, ".yml")) || strstr(dir, "corpus"))) {
			tend_buf b = TEND_BUF_INIT;

			if (tend_file_read(&b, path, 0) == 0) {
				(*files)++;
				*taken += (size_t)check_doc(b.ptr, b.size, path);
			}
			tend_buf_dispose(&b);
		}
		free(path);
	}
	closedir(d);
}

static void test_files_on_disk(void **state)
{
	static const char *const dirs[] = { "examples", "tests", "fuzz/corpus", "docs" };
	size_t i, files = 0, taken = 0;

	(void)state;
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char *d = tend_path_join(TEND_SOURCE_DIR, dirs[i]);
		walk(d, &files, &taken);
		free(d);
	}
	assert_true(files > 20);
	assert_true(taken > 10);
}

/* Mutations of manifests: characters YAML cares about inserted, deleted and
 * replaced, lines duplicated and re-indented; each result checked. */
static void test_mutations(void **state)
{
	static const char alphabet[] = " -:#[]{},'\"\n\\&*!|>?%@`~.0a1Z_\t";
	static const char *const seeds[] = {
		service_yaml,
		"a:\n- x\n- y: 1\n  z: [1, {k: 'v'}]\nb: \"q\\\"r\"\n",
		"- a: 1\n  b:\n    - c\n    -\n      d: e\n- f\n",
	};
	unsigned long long rng = 0x9e3779b97f4a7c15ULL;
	size_t s, k, taken = 0, total = 0;
	char buf[4096];

	(void)state;
	for (s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		for (k = 0; k < 6000; k++) {
			size_t len = strlen(seeds[s]), edits, e;

			memcpy(buf, seeds[s], len);
			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			edits = 1 + (rng >> 60) % 3;
			for (e = 0; e < edits; e++) {
				size_t pos, op;
				char c;

				rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
				pos = len ? (size_t)(rng >> 33) % len : 0;
				op = (size_t)(rng >> 20) % 5;
				c = alphabet[(rng >> 8) % (sizeof(alphabet) - 1)];
				if (op == 0 && len + 1 < sizeof(buf)) {            /* insert */
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = c;
					len++;
				} else if (op == 1 && len) {                      /* delete */
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
				} else if (op == 2 && len) {                      /* replace */
					buf[pos] = c;
				} else if (op == 3 && len + 2 < sizeof(buf)) {    /* indent a line */
					while (pos > 0 && buf[pos - 1] != '\n')
						pos--;
					memmove(buf + pos + 2, buf + pos, len - pos);
					buf[pos] = buf[pos + 1] = ' ';
					len += 2;
				} else if (len) {                                 /* dedent a line */
					while (pos > 0 && buf[pos - 1] != '\n')
						pos--;
					if (buf[pos] == ' ') {
						memmove(buf + pos, buf + pos + 1, len - pos - 1);
						len--;
					}
				}
			}
			total++;
			taken += (size_t)check_doc(buf, len, "mutation");
		}
	}
	/* both parsers exercised: many mutations still take the fast path */
	assert_true(taken > total / 10);
	assert_true(taken < total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifests_take_fast_path),
		cmocka_unit_test(test_corner_cases),
		cmocka_unit_test(test_files_on_disk),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
