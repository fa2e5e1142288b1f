/* Benchmark helper: n small sops YAML files in sops's own format (values
 * AES-256-GCM with a 32-byte IV and their path as additional data, the MAC
 * over the values), all with one data key that the age CLI wrapped. Not part
 * of tend: it only makes inputs for bench/gen-fleet and bench_secrets.
 *   bench_sops_gen DATAKEY DATAKEY.age RECIPIENT OUTDIR N */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char key[32];

static int enc_value(char *out, size_t outsz, const char *plain, const char *aad, const char *type)
{
	unsigned char iv[32], tag[16], ct[512];
	char b_ct[1024], b_iv[64], b_tag[32];
	size_t len = strlen(plain);
	int n, ok;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx || len > 256)
		return -1;
	randombytes_buf(iv, sizeof(iv));
	ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 32, NULL) == 1 &&
	     EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv) == 1 &&
	     EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
	     EVP_EncryptUpdate(ctx, ct, &n, (const unsigned char *)plain, (int)len) == 1 &&
	     EVP_EncryptFinal_ex(ctx, ct + n, &n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		return -1;
	sodium_bin2base64(b_ct, sizeof(b_ct), ct, len, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b_iv, sizeof(b_iv), iv, 32, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b_tag, sizeof(b_tag), tag, 16, sodium_base64_VARIANT_ORIGINAL);
	return snprintf(out, outsz, "ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]", b_ct, b_iv, b_tag,
			type) < (int)outsz ? 0 : -1;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (!fp)
		return NULL;
	buf = calloc(1, 1 << 16);
	n = fread(buf, 1, (1 << 16) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

int main(int argc, char **argv)
{
	char *enc, v1[1024], v2[1024], mac[1024], hex[129], plain1[64], plain2[64], path[4096];
	char macin[256];
	const char *lm = "2026-01-01T00:00:00Z";
	unsigned char h[64];
	FILE *fp;
	long i, n;

	if (argc != 6 || sodium_init() < 0) {
		fprintf(stderr, "usage: bench_sops_gen DATAKEY DATAKEY.age RECIPIENT OUTDIR N\n");
		return 2;
	}
	fp = fopen(argv[1], "rb");
	if (!fp || fread(key, 1, 32, fp) != 32) {
		fprintf(stderr, "bench_sops_gen: %s: cannot read 32 bytes\n", argv[1]);
		return 1;
	}
	fclose(fp);
	if (!(enc = slurp(argv[2]))) {
		fprintf(stderr, "bench_sops_gen: %s: cannot read\n", argv[2]);
		return 1;
	}
	n = strtol(argv[5], NULL, 10);
	for (i = 0; i < n; i++) {
		char *line, *save = NULL, *copy = strdup(enc);

		snprintf(plain1, sizeof(plain1), "client-secret-%05ld", i);
		snprintf(plain2, sizeof(plain2), "api-token-%05ld", i);
		snprintf(macin, sizeof(macin), "%s%s", plain1, plain2);
		crypto_hash_sha512(h, (const unsigned char *)macin, strlen(macin));
		sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
		for (size_t k = 0; hex[k]; k++)
			if (hex[k] >= 'a')
				hex[k] = (char)(hex[k] - 32);
		if (enc_value(v1, sizeof(v1), plain1, "client_secret:", "str") < 0 ||
		    enc_value(v2, sizeof(v2), plain2, "api_token:", "str") < 0 ||
		    enc_value(mac, sizeof(mac), hex, lm, "str") < 0)
			return 1;
		snprintf(path, sizeof(path), "%s/s%05ld.yaml", argv[4], i);
		if (!(fp = fopen(path, "w")))
			return 1;
		fprintf(fp, "client_secret: %s\napi_token: %s\nsops:\n    age:\n        - recipient: %s\n"
			    "          enc: |\n", v1, v2, argv[3]);
		for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			fprintf(fp, "            %s\n", line);
		fprintf(fp, "    lastmodified: \"%s\"\n    mac: %s\n    unencrypted_suffix: _unencrypted\n"
			    "    version: 3.7.3\n", lm, mac);
		free(copy);
		if (fclose(fp) != 0)
			return 1;
	}
	free(enc);
	return 0;
}
