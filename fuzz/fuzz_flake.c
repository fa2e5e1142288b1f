/* libFuzzer target: flake.nix's inputs against flake.lock (manifest/flake.c), the
 * hand-written Nix lexer on hostile text. The input is flake.nix, or flake.nix,
 * a NUL byte and flake.lock. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "manifest/flake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nul = memchr(data, '\0', size);
	tend_diags diags = { NULL, 0, 0, 0 };
	size_t nix_len = nul ? (size_t)(nul - text) : size;

	tend_manifest_check_flake_text(&diags, text, nix_len, nul ? nul + 1 : NULL,
				       nul ? size - nix_len - 1 : 0);
	tend_diags_dispose(&diags);
	return 0;
}
