/* flake.nix's inputs against flake.lock (manifest/flake.c): the inputs nix
 * would see (inputs.<name>, inputs = { ... }, outputs' formals), none seen in
 * comments, strings or let bindings, the messages and their positions, and the
 * check inside tend_manifest_load, which the agent's reconcile runs too. */
#include "tests/support/support.h"
#include "manifest/flake.h"
#include "manifest/manifest.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HINT "run 'nix flake lock' and commit flake.lock (tend builds with " \
	"--no-update-lock-file, so every host uses the same inputs)"

#define LOCK_NIXPKGS "{\"nodes\": {\"nixpkgs\": {\"locked\": {\"type\": \"path\", \"path\": \"/x\"}}, " \
	"\"root\": {\"inputs\": {\"nixpkgs\": \"nixpkgs\"}}}, \"root\": \"root\", \"version\": 7}"
#define LOCK_EMPTY "{\"nodes\": {\"root\": {}}, \"root\": \"root\", \"version\": 7}"

/* The diagnostics for the texts, formatted, one a line, sorted ("" for none). */
static char *check(const char *nix, const char *lock)
{
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_buf out = TEND_BUF_INIT;
	size_t i;

	assert_int_equal(tend_manifest_check_flake_text(&diags, nix, strlen(nix), lock,
							lock ? strlen(lock) : 0), 0);
	tend_diags_sort(&diags);
	for (i = 0; i < diags.count; i++) {
		char *line = tend_diag_format(&diags.items[i]);

		tend_buf_printf(&out, "%s\n", line);
		free(line);
	}
	tend_diags_dispose(&diags);
	return out.ptr ? tend_buf_detach(&out) : strdup("");
}

static void expect(const char *nix, const char *lock, const char *want)
{
	char *got = check(nix, lock);

	if (strcmp(got, want))
		fail_msg("flake.nix:\n%s\nflake.lock: %s\ngot:\n%s\nwant:\n%s", nix, lock ? lock : "(none)",
			 got, want);
	free(got);
}

static void test_no_lock(void **state)
{
	(void)state;
	/* the message points at `inputs`, whichever way it is written */
	expect("{\n  description = \"x\";\n  inputs.nixpkgs.url = \"github:NixOS/nixpkgs\";\n"
	       "  outputs = { self, nixpkgs }: { };\n}\n", NULL,
	       "flake.nix:3:3: error: the flake has inputs but no flake.lock: " HINT "\n");
	expect("{\n  inputs = {\n    nixpkgs.url = \"path:/x\";\n  };\n  outputs = inputs: { };\n}\n", NULL,
	       "flake.nix:2:3: error: the flake has inputs but no flake.lock: " HINT "\n");
	expect("{ \"inputs\".dep.url = \"path:/x\"; outputs = _: { }; }", NULL,
	       "flake.nix:1:3: error: the flake has inputs but no flake.lock: " HINT "\n");
	/* an argument of outputs is an input nix resolves through the flake registry */
	expect("{\n  outputs = { self, nixpkgs }: { };\n}\n", NULL,
	       "flake.nix:2:21: error: the flake has inputs but no flake.lock: " HINT "\n");
	expect("rec {\n  outputs = inputs@{ self, dep ? null, ... }: { };\n}\n", NULL,
	       "flake.nix:2:28: error: the flake has inputs but no flake.lock: " HINT "\n");
}

/* What is not an input: no error without a lock, and none with an empty one. */
static void test_no_inputs(void **state)
{
	static const char *const flakes[] = {
		"{ outputs = { self }: { }; }",
		"{ inputs = { }; outputs = { self, ... }: { }; }",
		"{ outputs = inputs: { }; }",
		/* in comments and strings */
		"# inputs.nixpkgs.url = \"x\";\n{\n  /* inputs.a.url = \"b\"; */\n"
		"  description = \"inputs.nixpkgs.url = 1; ${\"}\"} inputs = {\";\n"
		"  nixConfig.x = ''\n    inputs.b.url = \"c\"; ''${x} '''\n  '';\n  outputs = { self }: { };\n}\n",
		/* in outputs: bindings of let, with, a nested set, attribute selection */
		"{\n  outputs = { self }: let inputs = { a = 1; }; x = with inputs; a; in\n"
		"    { inputs.b = 1; c = self.inputs or { }; d = (let inputs.e = 2; in 1); };\n}\n",
		/* URIs, paths and operators that hold ':' '/' '=' '#' */
		"{ description = \"d\"; nixConfig.u = https://x.test/a?b=c; p = ./a/b.nix;\n"
		"  q = a/b; r = 1 == 2 || 3 != 4 || 5 <= 6 || 7 >= 8; s = x: x; outputs = { self }: { }; }",
		NULL
	};
	size_t i;

	(void)state;
	for (i = 0; flakes[i]; i++) {
		expect(flakes[i], NULL, "");
		expect(flakes[i], LOCK_EMPTY, "");
	}
}

static void test_lock(void **state)
{
	(void)state;
	/* locked: nothing to say */
	expect("{ inputs.nixpkgs.url = \"github:NixOS/nixpkgs\"; outputs = { self, nixpkgs }: { }; }",
	       LOCK_NIXPKGS, "");
	expect("{ inputs.nixpkgs.url = \"x\"; inputs.nixpkgs.flake = false; outputs = _: { }; }",
	       LOCK_NIXPKGS, "");
	/* an input added to flake.nix, not to the lock */
	expect("{\n  inputs.nixpkgs.url = \"x\";\n  inputs.home-manager = {\n    url = \"y\";\n"
	       "    inputs.nixpkgs.follows = \"nixpkgs\";\n  };\n  outputs = { self, ... }: { };\n}\n",
	       LOCK_NIXPKGS,
	       "flake.lock: error: input 'home-manager' (flake.nix:3:10) is not locked: " HINT "\n");
	expect("{ outputs = { self, nixpkgs, dep }: { }; }", LOCK_NIXPKGS,
	       "flake.lock: error: input 'dep' (flake.nix:1:30) is not locked: " HINT "\n");
	/* an input gone from flake.nix, still locked */
	expect("{ outputs = { self }: { }; }", LOCK_NIXPKGS,
	       "flake.lock: error: input 'nixpkgs' is locked but flake.nix does not declare it: " HINT "\n");
	/* ... unless flake.nix has inputs the text does not name */
	expect("{ inputs.${\"nix\" + \"pkgs\"}.url = \"x\"; outputs = { self, ... }: { }; }", LOCK_NIXPKGS, "");
	expect("{ outputs = import ./outputs.nix; }", LOCK_NIXPKGS, "");
	/* not a lock file */
	expect("{ outputs = { self }: { }; }", "{\"nodes\": ",
	       "flake.lock:1:10: error: not valid JSON (unexpected token near end of file): " HINT "\n");
	expect("{ outputs = { self }: { }; }", "{\"version\": 7}",
	       "flake.lock: error: no nodes.root: not a lock file nix wrote: " HINT "\n");
}

/* Not a literal set, or text that is not Nix: nothing said either way, and
 * every prefix of a flake is read without going past its end. */
static void test_unreadable_text(void **state)
{
	static const char flake[] =
		"{\n  description = \"a ${b {c} \"d\"} e\"; /* f */ # g\n"
		"  inputs = { a.url = ''x''${y}''; \"b\".url = \"\\\"\"; };\n"
		"  outputs = { self, a ? { x = 1; }, ... }@inputs: let z = 1; in { };\n}\n";
	size_t i;

	(void)state;
	expect("import ./flake-body.nix", NULL, "");
	expect("let inputs.a.url = \"x\"; in { inputs = inputs; outputs = _: { }; }", NULL, "");
	for (i = 0; i < sizeof(flake) - 1; i++) {
		tend_diags diags = { NULL, 0, 0, 0 };
		char *copy = malloc(i ? i : 1);   /* exactly the prefix: a read past it is caught */

		assert_non_null(copy);
		memcpy(copy, flake, i);
		assert_int_equal(tend_manifest_check_flake_text(&diags, copy, i, NULL, 0), 0);
		tend_diags_dispose(&diags);
		free(copy);
	}
	/* whole, it has inputs a and b (and no lock) */
	expect(flake, NULL, "flake.nix:3:3: error: the flake has inputs but no flake.lock: " HINT "\n");
}

/* From a repository: tend_manifest_load counts it with the manifests' errors,
 * so validate and the agent's reconcile (which loads the exported commit)
 * refuse the fleet; with the lock nix writes, it loads. */
static void test_load(void **state)
{
	char *dir = test_tmpdir_make("flake-load");
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;
	char *line;

	(void)state;
	test_write_file(dir, "fleet.yaml", "fleet: t\ndomain: lab.test\nhosts:\n  h1: {address: 10.0.0.1}\n");
	test_write_file(dir, "services/web/service.yaml", "name: web\nhost: h1\n");
	test_write_file(dir, "flake.nix", "{\n  inputs.nixpkgs.url = \"path:/x\";\n  outputs = { self, nixpkgs }: { };\n}\n");
	assert_int_equal(tend_manifest_load(&m, &diags, dir), TEND_EINVALID);
	assert_null(m);
	assert_int_equal(diags.errors, 1);
	line = tend_diag_format(&diags.items[0]);
	assert_string_equal(line, "flake.nix:2:3: error: the flake has inputs but no flake.lock: " HINT);
	free(line);
	tend_diags_dispose(&diags);

	test_write_file(dir, "flake.lock", LOCK_NIXPKGS);
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(tend_manifest_load(&m, &diags, dir), 0);
	assert_non_null(m);
	assert_int_equal(diags.errors, 0);
	tend_manifest_free(m);
	tend_diags_dispose(&diags);

	/* a flake.lock that is a link is not read */
	test_write_file(dir, "elsewhere.lock", LOCK_NIXPKGS);
	assert_int_equal(test_sh(NULL, dir, "ln -sf elsewhere.lock flake.lock"), 0);
	memset(&diags, 0, sizeof(diags));
	assert_int_equal(tend_manifest_load(&m, &diags, dir), TEND_EINVALID);
	line = tend_diag_format(&diags.items[0]);
	assert_string_equal(line, "flake.lock: error: a symbolic link (or one on its path): tend follows "
			    "no link in the repository");
	free(line);
	tend_diags_dispose(&diags);
	test_tmpdir_remove(dir);
}

/* Real flakes: tend's own (inputs, no lock: it is not a fleet), the test fleet's
 * and the example fleet's (no inputs). */
static void test_real_flakes(void **state)
{
	char *text = test_read_file(TEND_SOURCE_DIR "/flake.nix"), *want = NULL, *p, *q, *got;
	unsigned line = 1;

	(void)state;
	assert_non_null(text);
	assert_non_null(p = strstr(text, "\n  inputs.nixpkgs.url"));
	for (q = text; q <= p; q++)
		line += *q == '\n';
	assert_true(asprintf(&want, "flake.nix:%u:3: error: the flake has inputs but no flake.lock: "
			     HINT "\n", line) > 0);
	expect(text, NULL, want);
	free(want);
	free(text);

	text = test_read_file(TEND_SOURCE_DIR "/tests/fixtures/flake/flake.nix");
	got = test_read_file(TEND_SOURCE_DIR "/tests/fixtures/flake/flake.lock");
	expect(text, got, "");
	free(got);
	free(text);
	text = test_read_file(TEND_SOURCE_DIR "/examples/homelab/flake.nix");
	expect(text, NULL, "");
	expect(text, LOCK_NIXPKGS, "flake.lock: error: input 'nixpkgs' is locked but flake.nix does not "
	       "declare it: " HINT "\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_lock),
		cmocka_unit_test(test_no_inputs),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_unreadable_text),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_real_flakes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
