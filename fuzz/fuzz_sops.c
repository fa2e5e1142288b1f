/* libFuzzer target: sops parsing (YAML, JSON, dotenv, binary), metadata,
 * data key recovery with a fixed identity (the seed corpus is encrypted to
 * it, so mutations reach value decryption and the MAC), --extract paths and
 * output in every format. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sodium.h>
#include "secrets/identity.h"
#include "secrets/sops.h"
#include "util/buf.h"

/* a key made for fuzzing only: the seeds in fuzz/corpus/fuzz_sops are encrypted to it */
static const char fuzz_key[] = "AGE-SECRET-KEY-128D6E522J5UPEY8N7VDSGUHD339WPX69ASJ79TMSRV6MNJ2FUZKSM43KE8";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static tend_age_identities *ids;
	tend_sops_limits lim = { 1u << 20, 32 };
	tend_sops_doc *doc = NULL;
	tend_buf out = TEND_BUF_INIT;
	const tend_sops_node *n;

	if (!ids) {
		if (sodium_init() < 0 || tend_age_identities_new(&ids) < 0 ||
		    tend_age_identities_add_data(ids, fuzz_key, strlen(fuzz_key), "fuzz") < 0)
			__builtin_trap();
	}
	if (tend_sops_decrypt(&doc, (const char *)data, size, "fuzz", TEND_SOPS_AUTO, ids, &lim) == 0) {
		tend_sops_emit(&out, doc);
		if (tend_sops_extract(&n, doc, "[\"a\"]") == 0)
			tend_sops_emit_node(&out, doc, n);
		tend_sops_doc_free(doc);
	}
	tend_buf_dispose_secure(&out);
	return 0;
}
