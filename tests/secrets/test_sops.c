/* sops decryption: the real sops-nix file with an age key and with an SSH
 * host key (ssh-to-age), tampering (a value, the MAC, a moved value), wrong
 * keys, Shamir refusal, and YAML/JSON/dotenv/binary documents with typed
 * values built here with the real age CLI for the data key and OpenSSL for
 * the values; their MAC input is written out by hand as sops defines it. */
#include "tests/support/support.h"
#include "secrets/sops.h"
#include "secrets/decrypt.h"
#include "secrets/identity.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <sodium.h>

#define NIX TEND_VECTORS_DIR "/sops-nix"

static char *read_all(const char *path)
{
	tend_buf b = TEND_BUF_INIT;

	assert_int_equal(tend_file_read(&b, path, 1u << 20), 0);
	return tend_buf_detach(&b);
}

static tend_age_identities *ids_from(const char *path)
{
	tend_age_identities *ids;

	assert_int_equal(tend_age_identities_new(&ids), 0);
	assert_int_equal(tend_age_identities_add_file(ids, path), 0);
	return ids;
}

static const char *str_at(const tend_sops_doc *doc, const char *path)
{
	const tend_sops_node *n;

	assert_int_equal(tend_sops_extract(&n, doc, path), 0);
	return n->value;
}

static void check_nix_plaintext(const tend_sops_doc *doc)
{
	const tend_sops_node *n;

	assert_string_equal(str_at(doc, "[\"test_key\"]"), "test_value");
	assert_string_equal(str_at(doc, "[\"nested\"][\"test\"][\"file\"]"), "another value");
	assert_int_equal(tend_sops_extract(&n, doc, "[\"a_list\"]"), 0);
	assert_int_equal(n->kind, TEND_SOPS_SEQ);
	assert_int_equal(n->count, 2);
	assert_string_equal(str_at(doc, "[\"a_list\"][0]"), "e1");
	assert_string_equal(str_at(doc, "[\"a_list\"][1]"), "e3");
	assert_int_equal(tend_sops_extract(&n, doc, "[\"a_list\"][2]"), TEND_ENOTFOUND);
	/* the metadata is not part of the document */
	assert_int_equal(tend_sops_extract(&n, doc, "[\"sops\"]"), TEND_ENOTFOUND);
}

static void test_sops_nix_age_key(void **state)
{
	char *data = read_all(NIX "/secrets.yaml");
	tend_age_identities *ids = ids_from(NIX "/age-keys.txt");
	tend_sops_doc *doc;
	tend_buf out = TEND_BUF_INIT;

	assert_int_equal(tend_sops_detect(data, strlen(data), "secrets.yaml"), TEND_SOPS_YAML);
	assert_int_equal(tend_sops_decrypt(&doc, data, strlen(data), "secrets.yaml", TEND_SOPS_AUTO, ids, NULL), 0);
	check_nix_plaintext(doc);
	assert_int_equal(tend_sops_emit(&out, doc), 0);
	assert_string_equal(out.ptr, "test_key: test_value\na_list:\n- e1\n- e3\nnested:\n    test:\n"
				     "        file: another value\n");
	tend_buf_dispose(&out);
	tend_sops_doc_free(doc);
	tend_age_identities_free(ids);
	free(data);
}

static void test_sops_nix_ssh_host_key(void **state)
{
	char *dir = test_tmpdir_make("sops-ssh"), *key = read_all(NIX "/ssh-ed25519-key"), path[1024];
	char *data = read_all(NIX "/secrets.yaml");
	tend_age_identities *ids;
	tend_sops_doc *doc;
	char recipient[100];
	unsigned char pk[64];
	size_t pk_len;
	char *pub = read_all(NIX "/ssh-ed25519-key.pub"), *b64 = strchr(pub, ' ') + 1;

	test_write_file(dir, "host_key", key);
	snprintf(path, sizeof(path), "%s/host_key", dir);
	ids = ids_from(path);
	assert_int_equal(tend_sops_decrypt(&doc, data, strlen(data), "secrets.yaml", TEND_SOPS_AUTO, ids, NULL), 0);
	check_nix_plaintext(doc);
	tend_sops_doc_free(doc);

	/* the ssh-to-age recipient of the public key is the file's second recipient */
	b64[strcspn(b64, " \n")] = '\0';
	assert_int_equal(sodium_base642bin(pk, sizeof(pk), b64, strlen(b64), NULL, &pk_len, NULL,
					   sodium_base64_VARIANT_ORIGINAL), 0);
	assert_int_equal(pk_len, 51);
	assert_int_equal(tend_age_ssh_to_age_recipient(recipient, sizeof(recipient), pk + 19), 0);
	assert_string_equal(recipient, "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs");

	tend_age_identities_free(ids);
	free(pub);
	free(key);
	free(data);
	test_tmpdir_remove(dir);
}

/* Flip one base64 character inside the field that follows `anchor`. */
static char *tampered(const char *data, const char *anchor, const char *field)
{
	char *copy = strdup(data), *p = strstr(copy, anchor);

	assert_non_null(p);
	p = strstr(p, field);
	assert_non_null(p);
	p += strlen(field) + 2;
	*p = *p == 'A' ? 'B' : 'A';
	return copy;
}

static void test_sops_tamper(void **state)
{
	char *data = read_all(NIX "/secrets.yaml"), *bad, *moved;
	tend_age_identities *ids = ids_from(NIX "/age-keys.txt");
	tend_sops_doc *doc = (tend_sops_doc *)1;
	const char *cases[][2] = {
		{ "test_key:", "data:" }, { "test_key:", "tag:" }, { "file:", "iv:" },
		{ "mac:", "data:" }, { "mac:", "tag:" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad = tampered(data, cases[i][0], cases[i][1]);
		doc = (tend_sops_doc *)1;
		assert_int_equal(tend_sops_decrypt(&doc, bad, strlen(bad), "secrets.yaml", TEND_SOPS_AUTO, ids, NULL),
				 TEND_EAUTH);
		assert_null(doc);
		/* no plaintext in the message */
		assert_null(strstr(tend_error_last(), "test_value"));
		assert_null(strstr(tend_error_last(), "another value"));
		free(bad);
	}
	/* a value moved to another key fails: its path is authenticated */
	moved = strdup(data);
	memcpy(strstr(moved, "test_key:"), "test_kez:", 9);
	assert_int_equal(tend_sops_decrypt(&doc, moved, strlen(moved), "secrets.yaml", TEND_SOPS_AUTO, ids, NULL),
			 TEND_EAUTH);
	assert_non_null(strstr(tend_error_last(), "secrets.yaml:1:11: value at 'test_kez:'"));
	free(moved);
	/* a changed lastmodified breaks the MAC's additional data */
	moved = strdup(data);
	memcpy(strstr(moved, "2021-09-30"), "2021-09-29", 10);
	assert_int_equal(tend_sops_decrypt(&doc, moved, strlen(moved), "secrets.yaml", TEND_SOPS_AUTO, ids, NULL),
			 TEND_EAUTH);
	free(moved);
	tend_age_identities_free(ids);
	free(data);
}

static void test_sops_wrong_key_and_shamir(void **state)
{
	char *data = read_all(NIX "/secrets.yaml"), *shamir;
	tend_age_identities *ids = ids_from(TEND_VECTORS_DIR "/sops-keysource/identity.txt");
	tend_sops_doc *doc;
	tend_buf b = TEND_BUF_INIT;

	assert_int_equal(tend_sops_decrypt(&doc, data, strlen(data), "secrets.yaml", TEND_SOPS_AUTO, ids, NULL),
			 TEND_ENOMATCH);
	assert_non_null(strstr(tend_error_last(), "no identity matched"));
	assert_non_null(strstr(tend_error_last(), "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw"));
	assert_non_null(strstr(tend_error_last(), "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"));

	tend_buf_puts(&b, data);
	tend_buf_puts(&b, "    shamir_threshold: 2\n");
	shamir = tend_buf_detach(&b);
	assert_int_equal(tend_sops_decrypt(&doc, shamir, strlen(shamir), "secrets.yaml", TEND_SOPS_AUTO, ids, NULL),
			 TEND_EUNSUPPORTED);
	assert_non_null(strstr(tend_error_last(), "Shamir"));
	free(shamir);
	tend_age_identities_free(ids);
	free(data);
}

/* ---- documents built here: sops's format, our encryption ---- */

typedef struct {
	unsigned char key[32];
	char *enc;          /* armored age file holding the key */
	char *recipient;
	char *dir;
	char *identity;     /* path of the age key file */
} fixture;

static void fixture_make(fixture *f)
{
	tend_buf out = TEND_BUF_INIT;
	char path[1024];
	FILE *fp;

	if (!test_have("age") || !test_have("age-keygen")) {
		printf("SKIP: age CLI not installed\n");
		skip();
	}
	f->dir = test_tmpdir_make("sops-built");
	randombytes_buf(f->key, sizeof(f->key));
	assert_int_equal(test_sh(&out, f->dir, "age-keygen -o key.txt 2>&1 && age-keygen -y key.txt"), 0);
	f->recipient = strdup(strstr(out.ptr, "age1"));
	*strchr(f->recipient, '\n') = '\0';
	tend_buf_dispose(&out);
	snprintf(path, sizeof(path), "%s/datakey", f->dir);
	fp = fopen(path, "wb");
	fwrite(f->key, 1, 32, fp);
	fclose(fp);
	assert_int_equal(test_sh(NULL, f->dir, "age -a -r %s -o datakey.age datakey", f->recipient), 0);
	snprintf(path, sizeof(path), "%s/datakey.age", f->dir);
	f->enc = read_all(path);
	snprintf(path, sizeof(path), "%s/key.txt", f->dir);
	f->identity = strdup(path);
}

static void fixture_free(fixture *f)
{
	free(f->enc);
	free(f->recipient);
	free(f->identity);
	test_tmpdir_remove(f->dir);
}

/* sops's value format with a 32-byte IV, encrypted with OpenSSL here */
static char *enc_value(const fixture *f, const char *plain, size_t len, const char *aad, const char *type)
{
	unsigned char iv[32], tag[16], *ct = malloc(len + 1);
	char b_ct[4096], b_iv[64], b_tag[32], *out;
	int n;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	randombytes_buf(iv, sizeof(iv));
	assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 32, NULL), 1);
	assert_int_equal(EVP_EncryptInit_ex(ctx, NULL, NULL, f->key, iv), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, ct, &n, (const unsigned char *)plain, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, ct + n, &n), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
	EVP_CIPHER_CTX_free(ctx);
	sodium_bin2base64(b_ct, sizeof(b_ct), ct, len, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b_iv, sizeof(b_iv), iv, 32, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b_tag, sizeof(b_tag), tag, 16, sodium_base64_VARIANT_ORIGINAL);
	assert_true(asprintf(&out, "ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]", b_ct, b_iv, b_tag, type) > 0);
	free(ct);
	return out;
}

/* The MAC sops stores: upper-case hex SHA-512 of the concatenated values,
 * encrypted with lastmodified as additional data. */
static char *mac_value(const fixture *f, const char *mac_input, const char *lastmodified)
{
	unsigned char h[64];
	char hex[129];
	size_t i;

	crypto_hash_sha512(h, (const unsigned char *)mac_input, strlen(mac_input));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	for (i = 0; hex[i]; i++)
		if (hex[i] >= 'a')
			hex[i] = (char)(hex[i] - 32);
	return enc_value(f, hex, 128, lastmodified, "str");
}

static char *indent(const char *s, const char *pad)
{
	tend_buf b = TEND_BUF_INIT;

	int at_start = 1;

	for (; *s; s++) {
		if (at_start)
			tend_buf_puts(&b, pad);
		tend_buf_putc(&b, *s);
		at_start = *s == '\n';
	}
	return tend_buf_detach(&b);
}

static tend_sops_doc *decrypt_ok(const fixture *f, const char *text, const char *name)
{
	tend_age_identities *ids = ids_from(f->identity);
	tend_sops_doc *doc = NULL;

	if (tend_sops_decrypt(&doc, text, strlen(text), name, TEND_SOPS_AUTO, ids, NULL) != 0)
		fail_msg("%s: %s", name, tend_error_last());
	tend_age_identities_free(ids);
	return doc;
}

static void test_sops_built_yaml_types(void **state)
{
	fixture f;
	tend_buf y = TEND_BUF_INIT, out = TEND_BUF_INIT;
	char *v[6], *mac, *enc;
	const char *lm = "2024-01-02T03:04:05Z";
	tend_sops_doc *doc;
	const tend_sops_node *n;

	fixture_make(&f);
	v[0] = enc_value(&f, "s3cret", 6, "db:password:", "str");
	v[1] = enc_value(&f, "5432", 4, "db:port:", "int");
	v[2] = enc_value(&f, "True", 4, "db:tls:", "bool");
	v[3] = enc_value(&f, "1.5", 3, "db:ratio:", "float");
	v[4] = enc_value(&f, "line1\nline2\n", 12, "hosts:", "str");
	v[5] = enc_value(&f, "x", 1, "hosts:", "str");
	/* values in tree order, the unencrypted ones included, as sops's ToBytes spells them */
	/* plain YAML numbers count as yaml.v3 reads them: 0x1F is 31, 017 is octal, 1e3 a float */
	mac = mac_value(&f, "s3cret" "5432" "True" "1.5" "line1\nline2\n" "x" "plain" "7" "False"
			"31" "15" "1000" "1000", lm);
	enc = indent(f.enc, "            ");
	tend_buf_printf(&y, "db:\n    password: %s\n    port: %s\n    tls: %s\n    ratio: %s\n"
			    "hosts:\n    - %s\n    - %s\nnote_unencrypted: plain\ncount_unencrypted: 7\n"
			    "flag_unencrypted: false\nnothing_unencrypted: null\n"
			    "hex_unencrypted: 0x1F\noct_unencrypted: 017\nbig_unencrypted: 1_000\nsci_unencrypted: 1e3\n"
			    "sops:\n    age:\n        - recipient: %s\n          enc: |\n%s"
			    "    lastmodified: \"%s\"\n    mac: %s\n    unencrypted_suffix: _unencrypted\n"
			    "    version: 3.7.3\n",
			v[0], v[1], v[2], v[3], v[4], v[5], f.recipient, enc, lm, mac);
	doc = decrypt_ok(&f, y.ptr, "built.yaml");
	assert_int_equal(tend_sops_extract(&n, doc, "[\"db\"][\"port\"]"), 0);
	assert_int_equal(n->kind, TEND_SOPS_INT);
	assert_int_equal(tend_sops_extract(&n, doc, "[\"db\"][\"tls\"]"), 0);
	assert_int_equal(n->kind, TEND_SOPS_BOOL);
	assert_int_equal(tend_sops_emit(&out, doc), 0);
	assert_string_equal(out.ptr,
			    "db:\n    password: s3cret\n    port: 5432\n    tls: true\n    ratio: 1.5\n"
			    "hosts:\n- |\n    line1\n    line2\n- x\nnote_unencrypted: plain\ncount_unencrypted: 7\n"
			    "flag_unencrypted: false\nnothing_unencrypted: null\n"
			    "hex_unencrypted: 31\noct_unencrypted: 15\nbig_unencrypted: 1000\nsci_unencrypted: 1e3\n");
	tend_sops_doc_free(doc);
	tend_buf_dispose(&out);
	tend_buf_dispose(&y);
	for (size_t i = 0; i < 6; i++)
		free(v[i]);
	free(mac);
	free(enc);
	fixture_free(&f);
}

static char *json_escape(const char *s)
{
	tend_buf b = TEND_BUF_INIT;

	for (; *s; s++) {
		if (*s == '\n')
			tend_buf_puts(&b, "\\n");
		else
			tend_buf_putc(&b, *s);
	}
	return tend_buf_detach(&b);
}

/* Which values are encrypted: encrypted_regex, encrypted_suffix and
 * mac_only_encrypted; a single key group; an encrypted YAML comment. */
static void test_sops_built_selection(void **state)
{
	fixture f;
	tend_buf y = TEND_BUF_INIT, out = TEND_BUF_INIT;
	char *pw, *tok, *cmt, *mac, *enc;
	const char *lm = "2024-01-02T03:04:05Z";
	tend_sops_doc *doc;

	fixture_make(&f);
	enc = indent(f.enc, "                  ");

	/* encrypted_regex: only keys matching ^password$ (and what is under them) */
	pw = enc_value(&f, "pw1", 3, "db:password:", "str");
	mac = mac_value(&f, "alice" "pw1" "5432", lm);
	cmt = enc_value(&f, " a comment", 10, "", "comment");
	tend_buf_printf(&y, "db:\n    user: alice\n    #%s\n    password: %s\n    port: 5432\n"
			    "sops:\n    key_groups:\n        - age:\n            - recipient: %s\n"
			    "              enc: |\n%s    lastmodified: \"%s\"\n    mac: %s\n"
			    "    encrypted_regex: ^password$\n    version: 3.8.1\n",
			cmt, pw, f.recipient, enc, lm, mac);
	doc = decrypt_ok(&f, y.ptr, "regex.yaml");
	assert_int_equal(tend_sops_emit(&out, doc), 0);
	assert_string_equal(out.ptr, "db:\n    user: alice\n    password: pw1\n    port: 5432\n");
	tend_sops_doc_free(doc);
	free(pw), free(mac), free(cmt);
	tend_buf_clear(&y);
	tend_buf_clear(&out);

	/* encrypted_suffix with mac_only_encrypted: the plain values are not in the MAC */
	pw = enc_value(&f, "s", 1, "api_secret:", "str");
	tok = enc_value(&f, "t", 1, "nested_secret:inner:", "str");
	mac = mac_value(&f, "s" "t", lm);
	tend_buf_printf(&y, "api_secret: %s\npublic: hello\nnested_secret:\n    inner: %s\n"
			    "sops:\n    age:\n        - recipient: %s\n          enc: |\n%s"
			    "    lastmodified: \"%s\"\n    mac: %s\n    encrypted_suffix: _secret\n"
			    "    mac_only_encrypted: true\n    version: 3.9.0\n",
			pw, tok, f.recipient, enc, lm, mac);
	doc = decrypt_ok(&f, y.ptr, "suffix.yaml");
	assert_int_equal(tend_sops_emit(&out, doc), 0);
	assert_string_equal(out.ptr, "api_secret: s\npublic: hello\nnested_secret:\n    inner: t\n");
	tend_sops_doc_free(doc);
	tend_buf_dispose(&out);
	tend_buf_dispose(&y);
	free(pw), free(tok), free(mac), free(enc);
	fixture_free(&f);
}

static void test_sops_built_json_dotenv_binary(void **state)
{
	fixture f;
	tend_buf t = TEND_BUF_INIT, out = TEND_BUF_INIT;
	char *a, *b, *c, *mac, *enc_json, *enc_env;
	const char *lm = "2024-01-02T03:04:05Z";
	tend_sops_doc *doc;

	fixture_make(&f);
	enc_json = json_escape(f.enc);
	enc_env = json_escape(f.enc);

	/* JSON: a nested object, a number and a list */
	a = enc_value(&f, "pw", 2, "app:password:", "str");
	b = enc_value(&f, "42", 2, "app:workers:", "int");
	c = enc_value(&f, "z", 1, "app:list:", "str");
	mac = mac_value(&f, "pw" "42" "z" "1", lm);
	tend_buf_printf(&t, "{\n \"app\": {\"password\": \"%s\", \"workers\": \"%s\", \"list\": [\"%s\"]},\n"
			    " \"public_unencrypted\": 1,\n"
			    " \"sops\": {\"age\": [{\"recipient\": \"%s\", \"enc\": \"%s\"}],"
			    " \"lastmodified\": \"%s\", \"mac\": \"%s\", \"unencrypted_suffix\": \"_unencrypted\","
			    " \"version\": \"3.7.3\"}\n}\n", a, b, c, f.recipient, enc_json, lm, mac);
	assert_int_equal(tend_sops_detect(t.ptr, t.size, "app.json"), TEND_SOPS_JSON);
	doc = decrypt_ok(&f, t.ptr, "app.json");
	assert_int_equal(tend_sops_emit(&out, doc), 0);
	assert_string_equal(out.ptr, "{\n    \"app\": {\n        \"password\": \"pw\",\n        \"workers\": 42,\n"
				     "        \"list\": [\n            \"z\"\n        ]\n    },\n"
				     "    \"public_unencrypted\": 1\n}\n");
	tend_sops_doc_free(doc);
	tend_buf_clear(&out);
	tend_buf_clear(&t);
	free(a), free(b), free(c), free(mac);

	/* dotenv: flattened metadata, escaped newlines */
	a = enc_value(&f, "multi\nline", 10, "SECRET:", "str");
	b = enc_value(&f, "v", 1, "TOKEN:", "str");
	mac = mac_value(&f, "multi\nline" "v", lm);
	tend_buf_printf(&t, "SECRET=%s\nTOKEN=%s\n#a comment\nsops_age__list_0__map_enc=%s\n"
			    "sops_age__list_0__map_recipient=%s\nsops_lastmodified=%s\nsops_mac=%s\n"
			    "sops_unencrypted_suffix=_unencrypted\nsops_version=3.7.3\n",
			a, b, enc_env, f.recipient, lm, mac);
	assert_int_equal(tend_sops_detect(t.ptr, t.size, "app.env"), TEND_SOPS_DOTENV);
	doc = decrypt_ok(&f, t.ptr, "app.env");
	assert_int_equal(tend_sops_emit(&out, doc), 0);
	assert_string_equal(out.ptr, "SECRET=multi\\nline\nTOKEN=v\n");
	tend_sops_doc_free(doc);
	tend_buf_clear(&out);
	tend_buf_clear(&t);
	free(a), free(b), free(mac);

	/* binary: {"data": ..., "sops": ...}, printed raw */
	a = enc_value(&f, "\x01\x02raw\n", 6, "data:", "str");
	mac = mac_value(&f, "\x01\x02raw\n", lm);
	tend_buf_printf(&t, "{\"data\": \"%s\", \"sops\": {\"age\": [{\"recipient\": \"%s\", \"enc\": \"%s\"}],"
			    " \"lastmodified\": \"%s\", \"mac\": \"%s\", \"version\": \"3.7.3\"}}\n",
			a, f.recipient, enc_json, lm, mac);
	assert_int_equal(tend_sops_detect(t.ptr, t.size, "blob.bin"), TEND_SOPS_BINARY);
	doc = decrypt_ok(&f, t.ptr, "blob.bin");
	assert_int_equal(tend_sops_emit(&out, doc), 0);
	assert_int_equal(out.size, 6);
	assert_memory_equal(out.ptr, "\x01\x02raw\n", 6);
	tend_sops_doc_free(doc);
	free(a), free(mac);

	tend_buf_dispose(&out);
	tend_buf_dispose(&t);
	free(enc_json);
	free(enc_env);
	fixture_free(&f);
}

/* the reconcile helper's entry point: a whole file or one key, nothing on failure */
static void test_secret_decrypt_entry(void **state)
{
	tend_age_identities *ids = ids_from(NIX "/age-keys.txt");
	tend_buf out = TEND_BUF_INIT;
	char *data = read_all(NIX "/secrets.yaml"), *p;

	assert_int_equal(tend_secret_decrypt_file(&out, NIX "/secrets.yaml", "secrets.yaml",
						  "[\"nested\"][\"test\"][\"file\"]", ids), 0);
	assert_string_equal(out.ptr, "another value");
	tend_buf_clear(&out);
	assert_int_equal(tend_secret_decrypt_file(&out, NIX "/secrets.yaml", NULL, "[\"missing\"]", ids),
			 TEND_ENOTFOUND);
	assert_int_equal(out.size, 0);
	p = strstr(data, "mac: ENC[AES256_GCM,data:") + 25;
	*p = *p == 'A' ? 'B' : 'A';
	assert_int_equal(tend_secret_decrypt(&out, data, strlen(data), "secrets.yaml", NULL, ids), TEND_EAUTH);
	assert_int_equal(out.size, 0);
	tend_buf_dispose(&out);
	tend_age_identities_free(ids);
	free(data);
}

static void test_format_float(void **state)
{
	char out[512];

	tend_sops_format_float(out, sizeof(out), 1.5);
	assert_string_equal(out, "1.5");
	tend_sops_format_float(out, sizeof(out), 1e21);
	assert_string_equal(out, "1000000000000000000000");
	tend_sops_format_float(out, sizeof(out), 0.000001);
	assert_string_equal(out, "0.000001");
	tend_sops_format_float(out, sizeof(out), -2.0);
	assert_string_equal(out, "-2");
	tend_sops_format_float(out, sizeof(out), 0.1);
	assert_string_equal(out, "0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sops_nix_age_key),
		cmocka_unit_test(test_sops_nix_ssh_host_key),
		cmocka_unit_test(test_sops_tamper),
		cmocka_unit_test(test_sops_wrong_key_and_shamir),
		cmocka_unit_test(test_sops_built_yaml_types),
		cmocka_unit_test(test_sops_built_selection),
		cmocka_unit_test(test_sops_built_json_dotenv_binary),
		cmocka_unit_test(test_secret_decrypt_entry),
		cmocka_unit_test(test_format_float),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
