/* Bech32 encoding and decoding (BIP 173 checksum) for age keys, by hand as
 * the brief allows: a polymod over GF(32) and 8<->5-bit regrouping. */
#include "secrets/bech32.h"
#include "util/error.h"

#include <ctype.h>
#include <string.h>

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static unsigned long polymod_step(unsigned long pre)
{
	unsigned long b = pre >> 25;

	return ((pre & 0x1ffffffUL) << 5) ^
	       (-((b >> 0) & 1) & 0x3b6a57b2UL) ^
	       (-((b >> 1) & 1) & 0x26508e6dUL) ^
	       (-((b >> 2) & 1) & 0x1ea119faUL) ^
	       (-((b >> 3) & 1) & 0x3d4233ddUL) ^
	       (-((b >> 4) & 1) & 0x2a1462b3UL);
}

static unsigned long hrp_polymod(const char *hrp, size_t hrp_len)
{
	unsigned long chk = 1;
	size_t i;

	for (i = 0; i < hrp_len; i++)
		chk = polymod_step(chk) ^ ((unsigned char)hrp[i] >> 5);
	chk = polymod_step(chk);
	for (i = 0; i < hrp_len; i++)
		chk = polymod_step(chk) ^ ((unsigned char)hrp[i] & 0x1f);
	return chk;
}

int tend_bech32_decode(char *hrp_out, size_t hrp_size, unsigned char *data, size_t data_size,
		       size_t *data_len, const char *str, size_t len)
{
	int has_lower = 0, has_upper = 0;
	size_t i, sep = 0, hrp_len, out = 0;
	unsigned long chk, acc = 0;
	unsigned bits = 0;
	char hrp[128];

	*data_len = 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c < 33 || c > 126) {
			tend_error_set("bech32: invalid character at offset %zu", i);
			return TEND_EINVALID;
		}
		if (islower(c))
			has_lower = 1;
		if (isupper(c))
			has_upper = 1;
		if (c == '1')
			sep = i;
	}
	if (has_lower && has_upper) {
		tend_error_set("bech32: mixed upper and lower case");
		return TEND_EINVALID;
	}
	if (sep == 0 || sep + 7 > len) {
		tend_error_set("bech32: missing separator or checksum");
		return TEND_EINVALID;
	}
	hrp_len = sep;
	if (hrp_len >= sizeof(hrp) || hrp_len >= hrp_size) {
		tend_error_set("bech32: human-readable part too long");
		return TEND_ELIMIT;
	}
	for (i = 0; i < hrp_len; i++)
		hrp[i] = (char)tolower((unsigned char)str[i]);
	hrp[hrp_len] = '\0';
	chk = hrp_polymod(hrp, hrp_len);
	for (i = sep + 1; i < len; i++) {
		const char *p = strchr(charset, tolower((unsigned char)str[i]));
		unsigned v;
		if (!p || !*p) {
			tend_error_set("bech32: invalid character at offset %zu", i);
			return TEND_EINVALID;
		}
		v = (unsigned)(p - charset);
		chk = polymod_step(chk) ^ v;
		if (i + 6 < len) {
			/* data part (the last 6 symbols are the checksum) */
			acc = ((acc << 5) | v) & 0xfff;
			bits += 5;
			if (bits >= 8) {
				bits -= 8;
				if (out >= data_size) {
					tend_error_set("bech32: payload too long");
					return TEND_ELIMIT;
				}
				data[out++] = (unsigned char)((acc >> bits) & 0xff);
			}
		}
	}
	if (chk != 1) {
		tend_error_set("bech32: invalid checksum");
		return TEND_EINVALID;
	}
	if (bits >= 5 || (acc & ((1UL << bits) - 1))) {
		tend_error_set("bech32: invalid padding");
		return TEND_EINVALID;
	}
	memcpy(hrp_out, hrp, hrp_len + 1);
	*data_len = out;
	return 0;
}

int tend_bech32_encode(char *out, size_t out_size, const char *hrp,
		       const unsigned char *data, size_t data_len)
{
	size_t hrp_len = strlen(hrp), n = 0, i;
	unsigned long chk, acc = 0;
	unsigned bits = 0;

	if (hrp_len + 1 + (data_len * 8 + 4) / 5 + 6 + 1 > out_size) {
		tend_error_set("bech32: output buffer too small");
		return TEND_ELIMIT;
	}
	chk = hrp_polymod(hrp, hrp_len);
	memcpy(out, hrp, hrp_len);
	n = hrp_len;
	out[n++] = '1';
	for (i = 0; i < data_len; i++) {
		acc = ((acc << 8) | data[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			unsigned v;
			bits -= 5;
			v = (acc >> bits) & 0x1f;
			chk = polymod_step(chk) ^ v;
			out[n++] = charset[v];
		}
	}
	if (bits) {
		unsigned v = (acc << (5 - bits)) & 0x1f;
		chk = polymod_step(chk) ^ v;
		out[n++] = charset[v];
	}
	for (i = 0; i < 6; i++)
		chk = polymod_step(chk);
	chk ^= 1;
	for (i = 0; i < 6; i++)
		out[n++] = charset[(chk >> (5 * (5 - i))) & 0x1f];
	out[n] = '\0';
	return 0;
}
