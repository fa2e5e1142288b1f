/* libFuzzer target: the agent configuration loader (strict keys, durations,
 * paths, alerts) on arbitrary YAML. */
#include <stddef.h>
#include <stdint.h>
#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tend_config *cfg = NULL;

	if (tend_config_parse(&cfg, "fuzz.yaml", (const char *)data, size, "/etc/tend") == 0)
		tend_config_free(cfg);
	return 0;
}
