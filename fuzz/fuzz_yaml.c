/* libFuzzer target: the positioned YAML tree under its caps (manifests, agent
 * configuration and sops files all go through it). */
#include <stddef.h>
#include <stdint.h>
#include "util/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tend_yaml_doc *doc = NULL;

	if (tend_yaml_parse(&doc, "fuzz.yaml", (const char *)data, size, NULL, NULL) == 0)
		tend_yaml_doc_free(doc);
	return 0;
}
