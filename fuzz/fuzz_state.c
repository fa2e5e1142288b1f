/* libFuzzer target: the state file reader (what a crash, a full disk or a
 * hand edit may leave in <state_dir>/state.json), the check of the paths it
 * records against the roots (reconcile/reconcile.c, util/beneath.h), and
 * writing back what it read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "agent/config.h"
#include "reconcile/internal.h"
#include "state/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tend_state *st = NULL;
	tend_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.root = "/srv/root";
	cfg.secrets_root = "/run/tend/secrets";
	cfg.state_dir = "/var/lib/tend";
	if (tend_state_parse(&st, "state.json", (const char *)data, size) == 0) {
		tend_reconcile_state_check(&cfg, st);
		tend_state_free(st);
	}
	return 0;
}
