/* libFuzzer target: the fast YAML path against libyaml. Whatever the fast
 * path accepts, libyaml must accept with the same tree (kinds, positions,
 * styles, values, counts, weights); it may decline anything. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "util/yaml.h"
#include "util/yaml_fast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const tend_yaml_node *a, const tend_yaml_node *b)
{
	size_t i;

	if (!a || !b) {
		if (a != b)
			abort();
		return;
	}
	if (a->kind != b->kind || a->line != b->line || a->col != b->col || a->plain != b->plain ||
	    a->len != b->len || a->count != b->count || a->weight != b->weight ||
	    !a->value != !b->value || (a->value && memcmp(a->value, b->value, a->len + 1)) ||
	    !a->tag != !b->tag || (a->tag && strcmp(a->tag, b->tag)))
		abort();
	for (i = 0; i < a->count; i++) {
		if (a->kind == TEND_YAML_MAP)
			same(a->keys[i], b->keys[i]);
		same(a->items[i], b->items[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tend_yaml_doc *fast = NULL, *slow = NULL;
	int rc = tend_yaml__parse_fast(&fast, "fuzz.yaml", (const char *)data, size, NULL);

	if (rc == TEND_YAML_DECLINED)
		return 0;
	if (rc < 0)
		abort();
	if (tend_yaml__parse_libyaml(&slow, "fuzz.yaml", (const char *)data, size, NULL, NULL) < 0)
		abort();   /* accepted what libyaml refuses */
	same(tend_yaml_doc_root(fast), tend_yaml_doc_root(slow));
	tend_yaml_doc_free(fast);
	tend_yaml_doc_free(slow);
	return 0;
}
