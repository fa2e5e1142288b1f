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

#define CCTV TEND_VECTORS_DIR "/age-cctv"

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


/* ---- round trips with the real age CLI ---- */

static tend_age_identities *ids_file(const char *dir, const char *name)
{
	tend_age_identities *ids;
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(tend_age_identities_new(&ids), 0);
	if (tend_age_identities_add_file(ids, path) != 0)
		fail_msg("%s: %s", path, tend_error_last());
	return ids;
}

static void write_random(const char *dir, const char *name, unsigned char *data, size_t len)
{
	char path[1024];
	FILE *f;

	randombytes_buf(data, len);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void decrypt_expect(const char *dir, const char *file, const tend_age_identities *ids,
			   const unsigned char *want, size_t want_len)
{
	tend_buf in = TEND_BUF_INIT, out = TEND_BUF_INIT;
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	assert_int_equal(tend_file_read(&in, path, 1u << 28), 0);
	if (tend_age_decrypt(&out, in.ptr ? in.ptr : "", in.size, file, ids, NULL) != 0)
		fail_msg("%s: %s", file, tend_error_last());
	assert_int_equal(out.size, want_len);
	if (want_len)
		assert_memory_equal(out.ptr, want, want_len);
	tend_buf_dispose(&in);
	tend_buf_dispose_secure(&out);
}

static char *recipient_of(const char *dir, const char *key)
{
	tend_buf out = TEND_BUF_INIT;
	char *r;

	assert_int_equal(test_sh(&out, dir, "age-keygen -y %s", key), 0);
	r = strdup(out.ptr);
	r[strcspn(r, "\n")] = '\0';
	tend_buf_dispose(&out);
	return r;
}

static void test_age_cli_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 2 * 65536, 5u << 20 };
	char *dir, *r;
	unsigned char *data = malloc(5u << 20);
	tend_age_identities *ids;
	size_t i;

	if (!test_have("age") || !test_have("age-keygen")) {
		printf("SKIP: age CLI not installed\n");
		free(data);
		skip();
	}
	dir = test_tmpdir_make("age-sizes");
	assert_int_equal(test_sh(NULL, dir, "age-keygen -o key.txt 2>/dev/null"), 0);
	r = recipient_of(dir, "key.txt");
	ids = ids_file(dir, "key.txt");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		write_random(dir, "plain", data, sizes[i]);
		assert_int_equal(test_sh(NULL, dir, "age -r %s -o f.age plain", r), 0);
		decrypt_expect(dir, "f.age", ids, data, sizes[i]);
		assert_int_equal(test_sh(NULL, dir, "age -a -r %s -o f.asc plain", r), 0);
		decrypt_expect(dir, "f.asc", ids, data, sizes[i]);
	}
	/* the payload cap: 5 MiB refused under a 1 MiB limit, as a limit */
	{
		tend_buf in = TEND_BUF_INIT, out = TEND_BUF_INIT;
		tend_age_limits lim = { 1u << 20, 0, 0, 0 };
		char path[1024];
		snprintf(path, sizeof(path), "%s/f.age", dir);
		assert_int_equal(tend_file_read(&in, path, 1u << 28), 0);
		assert_int_equal(tend_age_decrypt(&out, in.ptr, in.size, "f.age", ids, &lim), TEND_ELIMIT);
		assert_int_equal(out.size, 0);
		tend_buf_dispose(&out);
		tend_buf_dispose(&in);
	}
	tend_age_identities_free(ids);
	free(r);
	free(data);
	test_tmpdir_remove(dir);
}

static void test_age_cli_recipients_ssh_passphrase(void **state)
{
	char *dir, *r1, *r2, *r3;
	unsigned char data[1000];
	tend_age_identities *ids;
	tend_buf in = TEND_BUF_INIT, out = TEND_BUF_INIT;
	char path[1024];
	int i;

	if (!test_have("age") || !test_have("ssh-keygen") || !test_have("script")) {
		printf("SKIP: age, ssh-keygen or script not installed\n");
		skip();
	}
	dir = test_tmpdir_make("age-recipients");
	write_random(dir, "plain", data, sizeof(data));
	for (i = 1; i <= 3; i++)
		assert_int_equal(test_sh(NULL, dir, "age-keygen -o k%d.txt 2>/dev/null", i), 0);
	r1 = recipient_of(dir, "k1.txt");
	r2 = recipient_of(dir, "k2.txt");
	r3 = recipient_of(dir, "k3.txt");
	assert_int_equal(test_sh(NULL, dir, "ssh-keygen -q -t ed25519 -N '' -C test -f ssh_key"), 0);
	assert_int_equal(test_sh(NULL, dir, "age -r %s -r %s -R ssh_key.pub -r %s -o multi.age plain",
				 r1, r2, r3), 0);
	/* each identity alone opens it */
	for (i = 1; i <= 3; i++) {
		snprintf(path, sizeof(path), "k%d.txt", i);
		ids = ids_file(dir, path);
		decrypt_expect(dir, "multi.age", ids, data, sizeof(data));
		tend_age_identities_free(ids);
	}
	ids = ids_file(dir, "ssh_key");
	decrypt_expect(dir, "multi.age", ids, data, sizeof(data));
	tend_age_identities_free(ids);

	/* ssh-ed25519 alone, armored */
	assert_int_equal(test_sh(NULL, dir, "age -a -R ssh_key.pub -o ssh.age plain"), 0);
	ids = ids_file(dir, "ssh_key");
	decrypt_expect(dir, "ssh.age", ids, data, sizeof(data));
	tend_age_identities_free(ids);

	/* a key that is not a recipient: no match, and the message says what the file has */
	assert_int_equal(test_sh(NULL, dir, "age -r %s -R ssh_key.pub -o other.age plain", r1), 0);
	ids = ids_file(dir, "k2.txt");
	snprintf(path, sizeof(path), "%s/other.age", dir);
	assert_int_equal(tend_file_read(&in, path, 1u << 20), 0);
	assert_int_equal(tend_age_decrypt(&out, in.ptr, in.size, "other.age", ids, NULL), TEND_ENOMATCH);
	assert_non_null(strstr(tend_error_last(), "no identity matched"));
	assert_non_null(strstr(tend_error_last(), "X25519"));
	assert_non_null(strstr(tend_error_last(), "ssh-ed25519"));
	tend_buf_dispose(&in);
	tend_age_identities_free(ids);

	/* passphrase: age -p reads from the terminal, so run it under script(1),
	 * which gives it a pty and relays the passphrase (typed twice) from stdin */
	assert_int_equal(test_sh(NULL, dir, "printf 'correct horse\\ncorrect horse\\n' | "
				 "script -q -c 'age -p -o pass.age plain' /dev/null >/dev/null"), 0);
	assert_int_equal(tend_age_identities_new(&ids), 0);
	assert_int_equal(tend_age_identities_add_passphrase(ids, "correct horse", 13), 0);
	decrypt_expect(dir, "pass.age", ids, data, sizeof(data));
	tend_age_identities_free(ids);
	assert_int_equal(tend_age_identities_new(&ids), 0);
	assert_int_equal(tend_age_identities_add_passphrase(ids, "wrong horse", 11), 0);
	snprintf(path, sizeof(path), "%s/pass.age", dir);
	assert_int_equal(tend_file_read(&in, path, 1u << 20), 0);
	assert_int_equal(tend_age_decrypt(&out, in.ptr, in.size, "pass.age", ids, NULL), TEND_ENOMATCH);
	/* and the scrypt work factor cap */
	{
		tend_age_limits lim = { 0, 0, 0, 16 };
		assert_int_equal(tend_age_identities_add_passphrase(ids, "correct horse", 13), 0);
		assert_int_equal(tend_age_decrypt(&out, in.ptr, in.size, "pass.age", ids, &lim), TEND_EINVALID);
		assert_non_null(strstr(tend_error_last(), "work factor 18 is above the limit of 16"));
	}
	tend_buf_dispose(&in);
	tend_buf_dispose(&out);
	tend_age_identities_free(ids);

	free(r1), free(r2), free(r3);
	test_tmpdir_remove(dir);
}

static void test_age_identity_files(void **state)
{
	tend_age_identities *ids;
	const char *pq = "# post-quantum\nAGE-SECRET-KEY-PQ-1XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n";
	const char *bad = "# comment\n\nAGE-SECRET-KEY-1NOTVALID\n";

	assert_int_equal(tend_age_identities_new(&ids), 0);
	assert_int_equal(tend_age_identities_add_data(ids, pq, strlen(pq), "pq.txt"), TEND_EUNSUPPORTED);
	assert_string_equal(tend_error_last(),
			    "pq.txt:2: post-quantum identity (AGE-SECRET-KEY-PQ-...) is not supported");
	assert_int_equal(tend_age_identities_add_data(ids, bad, strlen(bad), "bad.txt"), TEND_EINVALID);
	/* the message names the line, never the key text */
	assert_string_equal(tend_error_last(), "bad.txt:3: not an age identity (expected AGE-SECRET-KEY-1...)");
	assert_int_equal(tend_age_identities_add_file(ids, TEND_VECTORS_DIR "/sops-keysource/recipient.txt"),
			 TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "public key"));
	assert_int_equal(tend_age_identities_count(ids), 0);
	if (test_have("ssh-keygen")) {
		char *dir = test_tmpdir_make("age-ident"), path[1024];
		assert_int_equal(test_sh(NULL, dir, "ssh-keygen -q -t ed25519 -N secret -f enc && "
					 "ssh-keygen -q -t ecdsa -N '' -f ec"), 0);
		snprintf(path, sizeof(path), "%s/enc", dir);
		assert_int_equal(tend_age_identities_add_file(ids, path), TEND_EUNSUPPORTED);
		assert_non_null(strstr(tend_error_last(), "passphrase-protected"));
		snprintf(path, sizeof(path), "%s/ec", dir);
		assert_int_equal(tend_age_identities_add_file(ids, path), TEND_EUNSUPPORTED);
		assert_non_null(strstr(tend_error_last(), "only ssh-ed25519 is supported"));
		test_tmpdir_remove(dir);
	}
	tend_age_identities_free(ids);
}

/* a post-quantum (age1pq) stanza is named as unsupported when nothing matches */
static void test_pq_stanza_named(void **state)
{
	const char hdr[] = "age-encryption.org/v1\n-> mlkem768x25519 AAAA\nAAAA\n"
			   "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n0123456789abcdef";
	tend_age_identities *ids;
	tend_buf out = TEND_BUF_INIT;

	assert_int_equal(tend_age_identities_new(&ids), 0);
	assert_int_equal(tend_age_identities_add_file(ids, TEND_VECTORS_DIR "/sops-keysource/identity.txt"), 0);
	assert_int_equal(tend_age_decrypt(&out, hdr, sizeof(hdr) - 1, "pq.age", ids, NULL), TEND_ENOMATCH);
	assert_non_null(strstr(tend_error_last(), "pq.age: no identity matched"));
	assert_non_null(strstr(tend_error_last(), "mlkem768x25519 stanza (post-quantum age1pq recipient: not supported)"));
	assert_non_null(strstr(tend_error_last(), "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun"));
	tend_buf_dispose(&out);
	tend_age_identities_free(ids);
}

static void test_header_caps(void **state)
{
	tend_buf b = TEND_BUF_INIT;
	tend_age_header hdr;
	tend_age_limits lim = { 0, 0, 4, 0 };
	int i;

	tend_buf_puts(&b, "age-encryption.org/v1\n");
	for (i = 0; i < 5; i++)
		tend_buf_puts(&b, "-> grease\n\n");
	tend_buf_puts(&b, "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n0123456789abcdef");
	assert_int_equal(tend_age_header_parse(&hdr, (unsigned char *)b.ptr, b.size, &lim), TEND_ELIMIT);
	lim.max_stanzas = 5;
	assert_int_equal(tend_age_header_parse(&hdr, (unsigned char *)b.ptr, b.size, &lim), 0);
	assert_int_equal(hdr.count, 5);
	tend_age_header_dispose(&hdr);
	lim.max_header = 40;
	assert_int_equal(tend_age_header_parse(&hdr, (unsigned char *)b.ptr, b.size, &lim), TEND_ELIMIT);
	/* one stanza whose body runs on for 100 full lines hits the header cap too */
	tend_buf_clear(&b);
	tend_buf_puts(&b, "age-encryption.org/v1\n-> X25519 AAAA\n");
	for (i = 0; i < 100; i++)
		tend_buf_puts(&b, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
	tend_buf_puts(&b, "\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n0123456789abcdef");
	lim.max_header = 1024;
	assert_int_equal(tend_age_header_parse(&hdr, (unsigned char *)b.ptr, b.size, &lim), TEND_ELIMIT);
	assert_non_null(strstr(tend_error_last(), "larger than 1024 bytes"));
	lim.max_header = 0;
	assert_int_equal(tend_age_header_parse(&hdr, (unsigned char *)b.ptr, b.size, &lim), 0);
	assert_int_equal(hdr.stanzas[0].body_len, 4800);
	tend_age_header_dispose(&hdr);
	tend_buf_dispose(&b);
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
		cmocka_unit_test(test_age_cli_sizes),
		cmocka_unit_test(test_age_cli_recipients_ssh_passphrase),
		cmocka_unit_test(test_age_identity_files),
		cmocka_unit_test(test_header_caps),
		cmocka_unit_test(test_pq_stanza_named),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
