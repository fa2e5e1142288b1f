/* libFuzzer target: the SSHSIG parser (armor, base64, wire format) and the
 * verifier, fed with what a pushed commit's gpgsig header can contain. Input
 * starting with "SSHSIG" goes straight to the binary parser, so that the
 * fuzzer reaches the wire format without having to produce base64. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "source/sshsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tend_sshsig sig;
	static const char msg[] = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nfuzz\n";

	int rc = size >= 6 && !memcmp(data, "SSHSIG", 6) ? tend_sshsig_parse_blob(&sig, data, size)
							 : tend_sshsig_parse(&sig, (const char *)data, size);

	if (rc == 0) {
		char fp[TEND_SSH_FINGERPRINT_SIZE];

		tend_ssh_fingerprint(fp, sig.pubkey, sig.pubkey_len);
		tend_sshsig_verify(&sig, "git", msg, sizeof(msg) - 1);
		tend_sshsig_dispose(&sig);
	}
	return 0;
}
