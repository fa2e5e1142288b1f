/* HKDF-SHA-256 and HMAC-SHA-256 against Wycheproof's vectors, and Bech32
 * round trips and rejections. */
#include "tests/support/support.h"
#include "secrets/hkdf.h"
#include "secrets/bech32.h"
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

static json_t *load(const char *name)
{
	char path[512];
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/wycheproof/%s", TEND_VECTORS_DIR, name);
	j = json_load_file(path, 0, &err);
	assert_non_null(j);
	return j;
}

static void test_wycheproof_hkdf(void **state)
{
	json_t *doc = load("hkdf_sha256_test.json"), *groups = json_object_get(doc, "testGroups"), *g, *t;
	size_t gi, ti, valid = 0, invalid = 0;

	json_array_foreach(groups, gi, g) {
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			size_t ikm_len, salt_len, info_len, okm_len;
			unsigned char *ikm = hex(json_string_value(json_object_get(t, "ikm")), &ikm_len);
			unsigned char *salt = hex(json_string_value(json_object_get(t, "salt")), &salt_len);
			unsigned char *info = hex(json_string_value(json_object_get(t, "info")), &info_len);
			unsigned char *okm = hex(json_string_value(json_object_get(t, "okm")), &okm_len);
			size_t size = (size_t)json_integer_value(json_object_get(t, "size"));
			unsigned char *out = malloc(size + 1);
			int rc = tend_hkdf_sha256(out, size, salt, salt_len, ikm, ikm_len, info, info_len);

			if (!strcmp(json_string_value(json_object_get(t, "result")), "valid")) {
				assert_int_equal(rc, 0);
				assert_int_equal(size, okm_len);
				assert_memory_equal(out, okm, size);
				valid++;
			} else {
				/* the invalid cases ask for more than 255 blocks */
				assert_int_not_equal(rc, 0);
				invalid++;
			}
			free(ikm), free(salt), free(info), free(okm), free(out);
		}
	}
	printf("wycheproof HKDF-SHA-256: %zu valid and %zu invalid vectors checked\n", valid, invalid);
	assert_true(valid > 50);
	json_decref(doc);
}

static void test_wycheproof_hmac(void **state)
{
	json_t *doc = load("hmac_sha256_test.json"), *groups = json_object_get(doc, "testGroups"), *g, *t;
	size_t gi, ti, count = 0;

	json_array_foreach(groups, gi, g) {
		size_t tag_bytes = (size_t)json_integer_value(json_object_get(g, "tagSize")) / 8;
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			size_t key_len, msg_len, tag_len;
			unsigned char *key = hex(json_string_value(json_object_get(t, "key")), &key_len);
			unsigned char *msg = hex(json_string_value(json_object_get(t, "msg")), &msg_len);
			unsigned char *tag = hex(json_string_value(json_object_get(t, "tag")), &tag_len);
			unsigned char mac[32];
			int valid = !strcmp(json_string_value(json_object_get(t, "result")), "valid");
			int same;

			tend_hmac_sha256(mac, key, key_len, msg, msg_len);
			same = tag_len == tag_bytes && !memcmp(mac, tag, tag_bytes);
			assert_int_equal(same, valid);
			count++;
			free(key), free(msg), free(tag);
		}
	}
	printf("wycheproof HMAC-SHA-256: %zu vectors checked\n", count);
	assert_true(count > 100);
	json_decref(doc);
}

static void test_bech32(void **state)
{
	unsigned char data[64], key[32];
	char hrp[32], enc[128];
	size_t n;
	const char *r = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";
	char bad[128];

	assert_int_equal(tend_bech32_decode(hrp, sizeof(hrp), data, sizeof(data), &n, r, strlen(r)), 0);
	assert_string_equal(hrp, "age");
	assert_int_equal(n, 32);
	assert_int_equal(tend_bech32_encode(enc, sizeof(enc), "age", data, n), 0);
	assert_string_equal(enc, r);
	/* one changed character breaks the checksum; mixed case is refused */
	snprintf(bad, sizeof(bad), "%s", r);
	bad[10] = bad[10] == 'q' ? 'p' : 'q';
	assert_int_equal(tend_bech32_decode(hrp, sizeof(hrp), data, sizeof(data), &n, bad, strlen(bad)),
			 TEND_EINVALID);
	snprintf(bad, sizeof(bad), "%s", r);
	bad[5] = 'Z';
	assert_int_equal(tend_bech32_decode(hrp, sizeof(hrp), data, sizeof(data), &n, bad, strlen(bad)),
			 TEND_EINVALID);
	/* upper case secret keys decode to the lower-case hrp */
	randombytes_buf(key, sizeof(key));
	assert_int_equal(tend_bech32_encode(enc, sizeof(enc), "age-secret-key-", key, 32), 0);
	for (n = 0; enc[n]; n++)
		enc[n] = (char)(enc[n] >= 'a' && enc[n] <= 'z' ? enc[n] - 32 : enc[n]);
	assert_int_equal(tend_bech32_decode(hrp, sizeof(hrp), data, sizeof(data), &n, enc, strlen(enc)), 0);
	assert_string_equal(hrp, "age-secret-key-");
	assert_memory_equal(data, key, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wycheproof_hkdf),
		cmocka_unit_test(test_wycheproof_hmac),
		cmocka_unit_test(test_bech32),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
