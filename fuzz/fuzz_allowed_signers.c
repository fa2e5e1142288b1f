/* libFuzzer target: the allowed_signers parser (principals, quoted options,
 * validity times, base64 keys) and the key check against a fixed key. */
#include <stddef.h>
#include <stdint.h>
#include "source/sshsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The wire blob of an Ed25519 public key (type string + 32 bytes). */
	static const unsigned char blob[51] = {
		0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2', '5', '5', '1', '9', 0, 0, 0, 32,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
	};
	tend_allowed_signers *as = NULL;

	if (tend_allowed_signers_parse(&as, "fuzz", (const char *)data, size) == 0) {
		tend_allowed_signers_check(as, blob, sizeof(blob), "git", 1700000000, 1800000000);
		tend_allowed_signers_free(as);
	}
	return 0;
}
