/* libFuzzer target: the state file reader (what a crash, a full disk or a
 * hand edit may leave in <state_dir>/state.json), and writing back what it read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "state/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tend_state *st = NULL;

	if (tend_state_parse(&st, "state.json", (const char *)data, size) == 0)
		tend_state_free(st);
	return 0;
}
