/* libFuzzer target: the webhook signature header (untrusted, from the
 * network) through the parser and the verifier. Input: header NUL body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "agent/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char secret[] = "fuzzing-secret-0123456789";
	const uint8_t *nul = memchr(data, 0, size);
	size_t hlen = nul ? (size_t)(nul - data) : size;
	unsigned char sig[32];
	char *header = malloc(hlen + 1);

	if (!header)
		return 0;
	memcpy(header, data, hlen);
	header[hlen] = '\0';
	tend_webhook_signature_parse(sig, header, hlen);
	tend_webhook_verify(secret, sizeof(secret) - 1, nul ? nul + 1 : data,
			    nul ? size - hlen - 1 : 0, header);
	free(header);
	return 0;
}
