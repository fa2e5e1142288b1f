/* libFuzzer target: age header, stanza and armor parsing, stanza unwrapping
 * with a fixed X25519 identity (the seed corpus is encrypted to it), the
 * STREAM payload, and identity-file parsing (age keys, OpenSSH keys). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sodium.h>
#include "secrets/age.h"
#include "secrets/identity.h"
#include "util/buf.h"

/* a key made for fuzzing only: the .age seeds in fuzz/corpus/fuzz_age are encrypted to it */
static const char fuzz_key[] = "AGE-SECRET-KEY-128D6E522J5UPEY8N7VDSGUHD339WPX69ASJ79TMSRV6MNJ2FUZKSM43KE8";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static tend_age_identities *ids;
	tend_age_identities *scratch = NULL;
	tend_age_limits lim = { 1u << 20, 16u << 10, 32, 10 };
	tend_buf out = TEND_BUF_INIT;

	if (!ids) {
		if (sodium_init() < 0 || tend_age_identities_new(&ids) < 0 ||
		    tend_age_identities_add_data(ids, fuzz_key, strlen(fuzz_key), "fuzz") < 0)
			__builtin_trap();
	}
	tend_age_decrypt(&out, (const char *)data, size, "fuzz.age", ids, &lim);
	tend_buf_dispose_secure(&out);
	if (tend_age_identities_new(&scratch) == 0) {
		tend_age_identities_add_data(scratch, (const char *)data, size, "fuzz-identity");
		tend_age_identities_free(scratch);
	}
	return 0;
}
