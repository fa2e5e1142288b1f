/* The sops AES-256-GCM wrapper against Wycheproof's AES-GCM vectors with
 * 256-bit keys, including the 256-bit IVs sops uses. */
#include "tests/support/support.h"
#include "secrets/aesgcm.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

static unsigned char *hex(const char *s, size_t *len)
{
	size_t n = strlen(s) / 2;
	unsigned char *b = malloc(n + 1);

	assert_int_equal(sodium_hex2bin(b, n + 1, s, strlen(s), NULL, len, NULL), 0);
	return b;
}

static void test_wycheproof_aes256gcm(void **state)
{
	char path[512];
	json_error_t err;
	json_t *doc, *g, *t;
	size_t gi, ti, checked = 0, iv256 = 0, skipped = 0;

	snprintf(path, sizeof(path), "%s/wycheproof/aes_gcm_test.json", TEND_VECTORS_DIR);
	assert_non_null(doc = json_load_file(path, 0, &err));
	json_array_foreach(json_object_get(doc, "testGroups"), gi, g) {
		if (json_integer_value(json_object_get(g, "keySize")) != 256 ||
		    json_integer_value(json_object_get(g, "tagSize")) != 128)
			continue;
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
			unsigned char *key = hex(json_string_value(json_object_get(t, "key")), &key_len);
			unsigned char *iv = hex(json_string_value(json_object_get(t, "iv")), &iv_len);
			unsigned char *aad = hex(json_string_value(json_object_get(t, "aad")), &aad_len);
			unsigned char *msg = hex(json_string_value(json_object_get(t, "msg")), &msg_len);
			unsigned char *ct = hex(json_string_value(json_object_get(t, "ct")), &ct_len);
			unsigned char *tag = hex(json_string_value(json_object_get(t, "tag")), &tag_len);
			unsigned char *out = malloc(ct_len + 1);
			int valid = !strcmp(json_string_value(json_object_get(t, "result")), "valid");
			int rc;

			if (iv_len > 128) {
				/* OpenSSL's GCM takes IVs up to 128 bytes; sops uses 32 */
				skipped++;
				free(key), free(iv), free(aad), free(msg), free(ct), free(tag), free(out);
				continue;
			}
			rc = tag_len == 16
				 ? tend_aes256gcm_open(out, key, iv, iv_len, aad, aad_len, ct, ct_len, tag)
				 : TEND_EINVALID;

			if (valid) {
				if (rc)
					printf("tcId %lld: %s\n", json_integer_value(json_object_get(t, "tcId")),
					       tend_error_last());
				assert_int_equal(rc, 0);
				assert_int_equal(msg_len, ct_len);
				assert_memory_equal(out, msg, msg_len);
			} else {
				assert_int_not_equal(rc, 0);
			}
			if (iv_len == 32)
				iv256++;
			checked++;
			free(key), free(iv), free(aad), free(msg), free(ct), free(tag), free(out);
		}
	}
	printf("wycheproof AES-256-GCM: %zu vectors checked (%zu with 256-bit IVs), %zu skipped (IV over 128 bytes)\n",
	       checked, iv256, skipped);
	assert_true(checked > 50);
	assert_true(iv256 > 0);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wycheproof_aes256gcm),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
