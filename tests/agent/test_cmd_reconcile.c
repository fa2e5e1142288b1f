/* The reconcile family's text output (agent/cmd_reconcile.c): `tend
 * history` prints what the state holds with control characters stripped,
 * whatever wrote it (a history from before stripping, a hand edit). */
#include "tests/support/support.h"
#include "state/state.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Issue 17 F12: `tend history` printed a probed body's terminal escapes
 * (a retitle, a screen clear) raw. Fails on 247ba6c (ESC and BEL in the
 * output). */
static void test_history_stripped(void **state)
{
	char *dir = test_tmpdir_make("cmd-history"), *sdir = tend_path_join(dir, "state");
	char *config = tend_path_join(dir, "agent.yaml");
	const char *args[] = { "history", "--config", config, NULL };
	tend_state_history h;
	tend_proc_result res;
	tend_state *st;

	(void)state;
	test_write_file(dir, "agent.yaml", "host: h1\nrepository: {url: x}\nstate_dir: state\n");
	assert_int_equal(mkdir(sdir, 0700), 0);
	st = tend_state_new();
	memset(&h, 0, sizeof(h));
	snprintf(h.commit, sizeof(h.commit), "%s", "1111111111111111111111111111111111111111");
	h.start = h.end = 1700000000;
	h.outcome = "rolled-back";
	h.message = "probe web failed: \x1b]0;owned\x07";
	h.failed_probe = "http \x1b[31mred";
	h.probe_output = "line one\n\x1b[2Jcleared\n";
	h.rollback_target = "/nix/store/x\x1b[A";
	assert_int_equal(tend_state_history_add(st, &h), 0);
	assert_int_equal(tend_state_save(st, sdir, 0), 0);
	tend_state_free(st);
	assert_int_equal(test_tend(&res, dir, args), 0);
	assert_int_equal(res.exit_code, 0);
	assert_null(strchr(res.out.ptr, '\x1b'));
	assert_null(strchr(res.out.ptr, '\x07'));
	assert_non_null(strstr(res.out.ptr, "probe web failed: ?]0;owned?"));
	assert_non_null(strstr(res.out.ptr, "failing probe: http ?[31mred"));
	assert_non_null(strstr(res.out.ptr, "      ?[2Jcleared\n"));
	assert_non_null(strstr(res.out.ptr, "rolled back to: /nix/store/x?[A"));
	tend_proc_result_dispose(&res);
	free(config);
	free(sdir);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_history_stripped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
