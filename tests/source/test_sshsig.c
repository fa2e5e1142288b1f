/* SSHSIG parsing and verification, and allowed_signers (source/sshsig.c,
 * source/allowed_signers.c), against signatures and fingerprints made by the
 * real ssh-keygen. */
#include "tests/support/support.h"
#include "source/sshsig.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	char *tmp;
	char *msg;       /* the signed message */
	char *sig_git;   /* ed25519 signature, namespace git */
	char *sig_file;  /* ed25519 signature, namespace file */
	char *sig_ecdsa; /* ecdsa signature, namespace git */
	char *sig_256;   /* ed25519 signature over a SHA-256 hash */
	char *pub;       /* ed25519 public key line */
	char *pub_other; /* a second ed25519 key, never used to sign */
} fixture;

static char *read_in(const char *dir, const char *rel)
{
	char *p = tend_path_join(dir, rel), *s = test_read_file(p);

	assert_non_null(s);
	free(p);
	return s;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->tmp = test_tmpdir_make("sshsig");
	test_write_file(f->tmp, "msg", "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@example.org> 1 +0000\n\nhello\n");
	assert_int_equal(test_sh(NULL, f->tmp,
				 "ssh-keygen -q -t ed25519 -N '' -C signer -f key && "
				 "ssh-keygen -q -t ed25519 -N '' -C other -f other && "
				 "ssh-keygen -q -t ecdsa -N '' -f ekey && "
				 "ssh-keygen -q -Y sign -f key -n git msg && mv msg.sig git.sig && "
				 "ssh-keygen -q -Y sign -f key -n file msg && mv msg.sig file.sig && "
				 "ssh-keygen -q -Y sign -f ekey -n git msg && mv msg.sig ecdsa.sig && "
				 "ssh-keygen -q -Y sign -f key -n git -O hashalg=sha256 msg && mv msg.sig sha256.sig"), 0);
	f->msg = read_in(f->tmp, "msg");
	f->sig_git = read_in(f->tmp, "git.sig");
	f->sig_file = read_in(f->tmp, "file.sig");
	f->sig_ecdsa = read_in(f->tmp, "ecdsa.sig");
	f->sig_256 = read_in(f->tmp, "sha256.sig");
	f->pub = read_in(f->tmp, "key.pub");
	f->pub_other = read_in(f->tmp, "other.pub");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	free(f->msg);
	free(f->sig_git);
	free(f->sig_file);
	free(f->sig_ecdsa);
	free(f->sig_256);
	free(f->pub);
	free(f->pub_other);
	test_tmpdir_remove(f->tmp);
	free(f);
	return 0;
}

static void test_verify_good_and_fingerprint(void **state)
{
	fixture *f = *state;
	tend_sshsig sig;
	char fp[TEND_SSH_FINGERPRINT_SIZE];
	tend_buf out = TEND_BUF_INIT;

	assert_int_equal(tend_sshsig_parse(&sig, f->sig_git, strlen(f->sig_git)), 0);
	assert_string_equal(sig.keytype, "ssh-ed25519");
	assert_string_equal(sig.namespace, "git");
	assert_int_equal(tend_sshsig_verify(&sig, "git", f->msg, strlen(f->msg)), 0);
	/* The fingerprint is the one ssh-keygen -l prints. */
	tend_ssh_fingerprint(fp, sig.pubkey, sig.pubkey_len);
	assert_int_equal(test_sh(&out, f->tmp, "ssh-keygen -l -E sha256 -f key.pub | cut -d' ' -f2 | tr -d '\\n'"), 0);
	assert_string_equal(fp, out.ptr);
	tend_buf_dispose(&out);
	tend_sshsig_dispose(&sig);

	/* The same key over a SHA-256 hash. */
	assert_int_equal(tend_sshsig_parse(&sig, f->sig_256, strlen(f->sig_256)), 0);
	assert_string_equal(sig.hash_alg, "sha256");
	assert_int_equal(tend_sshsig_verify(&sig, "git", f->msg, strlen(f->msg)), 0);
	assert_int_equal(tend_sshsig_verify(&sig, "git", f->msg, strlen(f->msg) - 1), TEND_EAUTH);
	tend_sshsig_dispose(&sig);
}

static void test_verify_rejects(void **state)
{
	fixture *f = *state;
	tend_sshsig sig;
	char *tampered = strdup(f->msg);

	/* One changed byte of the message. */
	tampered[strlen(tampered) - 2] = 'O';
	assert_int_equal(tend_sshsig_parse(&sig, f->sig_git, strlen(f->sig_git)), 0);
	assert_int_equal(tend_sshsig_verify(&sig, "git", tampered, strlen(tampered)), TEND_EAUTH);
	assert_string_equal(tend_error_last(), "bad signature");
	tend_sshsig_dispose(&sig);
	free(tampered);

	/* Right key and message, wrong namespace. */
	assert_int_equal(tend_sshsig_parse(&sig, f->sig_file, strlen(f->sig_file)), 0);
	assert_int_equal(tend_sshsig_verify(&sig, "git", f->msg, strlen(f->msg)), TEND_EAUTH);
	assert_non_null(strstr(tend_error_last(), "namespace is \"file\""));
	tend_sshsig_dispose(&sig);

	/* ECDSA parses but is not accepted. */
	assert_int_equal(tend_sshsig_parse(&sig, f->sig_ecdsa, strlen(f->sig_ecdsa)), 0);
	assert_int_equal(tend_sshsig_verify(&sig, "git", f->msg, strlen(f->msg)), TEND_EUNSUPPORTED);
	assert_non_null(strstr(tend_error_last(), "ecdsa-sha2-nistp256"));
	tend_sshsig_dispose(&sig);
}

static void test_parse_malformed(void **state)
{
	fixture *f = *state;
	tend_sshsig sig;
	char *cut = strdup(f->sig_git);
	char *p;

	assert_int_equal(tend_sshsig_parse(&sig, "hello", 5), TEND_EINVALID);
	assert_int_equal(tend_sshsig_parse(&sig, "-----BEGIN PGP SIGNATURE-----\n", 30), TEND_EINVALID);
	/* Truncated body: drop the second base64 line. */
	p = strchr(strchr(cut, '\n') + 1, '\n');
	memmove(strchr(cut, '\n') + 1, p + 1, strlen(p + 1) + 1);
	assert_int_equal(tend_sshsig_parse(&sig, cut, strlen(cut)), TEND_EINVALID);
	/* A character outside base64. */
	strcpy(cut, f->sig_git);
	cut[strlen("-----BEGIN SSH SIGNATURE-----\n") + 3] = '*';
	assert_int_equal(tend_sshsig_parse(&sig, cut, strlen(cut)), TEND_EINVALID);
	free(cut);
}

static char *key_field(const char *pub)
{
	/* "ssh-ed25519 AAAA... comment\n" -> "ssh-ed25519 AAAA..." */
	char *s = strdup(pub), *sp = strchr(strchr(s, ' ') + 1, ' ');

	if (sp)
		*sp = '\0';
	else
		s[strcspn(s, "\n")] = '\0';
	return s;
}

static void test_allowed_signers(void **state)
{
	fixture *f = *state;
	tend_allowed_signers *as = NULL;
	tend_sshsig sig;
	char *key = key_field(f->pub), *other = key_field(f->pub_other), *text = NULL;
	tend_buf out = TEND_BUF_INIT;

	assert_int_equal(tend_sshsig_parse(&sig, f->sig_git, strlen(f->sig_git)), 0);

	/* Listed with a namespace restriction that includes git; the same file
	 * is accepted by ssh-keygen -Y verify. */
	assert_true(asprintf(&text, "# operators\n\nalice@example.org,\"bob@example.org\" namespaces=\"git,file\" %s alice key\n"
			     "carol@example.org %s\n", key, other) > 0);
	test_write_file(f->tmp, "allowed", text);
	assert_int_equal(test_sh(&out, f->tmp, "ssh-keygen -Y verify -f allowed -I alice@example.org -n git -s git.sig < msg"), 0);
	tend_buf_dispose(&out);
	assert_int_equal(tend_allowed_signers_parse(&as, "allowed", text, strlen(text)), 0);
	assert_int_equal(tend_allowed_signers_count(as), 2);
	assert_int_equal(tend_allowed_signers_check(as, sig.pubkey, sig.pubkey_len, "git", 1700000000, 1700000000), 0);
	assert_int_equal(tend_allowed_signers_check(as, sig.pubkey, sig.pubkey_len, "mail", 1700000000, 1700000000), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "allowed:3"));
	tend_allowed_signers_free(as);
	free(text);

	/* Only the other key: not listed, named by fingerprint. */
	assert_true(asprintf(&text, "carol@example.org %s\n", other) > 0);
	assert_int_equal(tend_allowed_signers_parse(&as, "allowed", text, strlen(text)), 0);
	assert_int_equal(tend_allowed_signers_check(as, sig.pubkey, sig.pubkey_len, "git", 1700000000, 1700000000), TEND_ENOMATCH);
	assert_non_null(strstr(tend_error_last(), "not in allowed_signers (SHA256:"));
	tend_allowed_signers_free(as);
	free(text);

	/* A validity window is honoured against the given time. */
	assert_true(asprintf(&text, "a@x valid-after=\"20230101Z\",valid-before=\"20240101000000Z\" %s\n", key) > 0);
	assert_int_equal(tend_allowed_signers_parse(&as, "allowed", text, strlen(text)), 0);
	assert_int_equal(tend_allowed_signers_check(as, sig.pubkey, sig.pubkey_len, "git", 1690000000, 1690000000), 0);
	assert_int_equal(tend_allowed_signers_check(as, sig.pubkey, sig.pubkey_len, "git", 1600000000, 1600000000), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "valid-after"));
	assert_int_equal(tend_allowed_signers_check(as, sig.pubkey, sig.pubkey_len, "git", 1704067200, 1704067200), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "valid-before"));
	/* issue 17 F10: inside the window at the (signer-chosen) commit time is
	 * not enough; this host's clock must be inside it too. 247ba6c had no
	 * such check and accepted both. */
	assert_int_equal(tend_allowed_signers_check(as, sig.pubkey, sig.pubkey_len, "git", 1690000000,
						    1704067200), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "expired (valid-before) by this host's clock"));
	assert_int_equal(tend_allowed_signers_check(as, sig.pubkey, sig.pubkey_len, "git", 1690000000,
						    1600000000), TEND_EREFUSED);
	assert_non_null(strstr(tend_error_last(), "not yet valid (valid-after) by this host's clock"));
	tend_allowed_signers_free(as);
	free(text);

	/* Refused clearly, naming the line. */
	assert_true(asprintf(&text, "a@x %s\nb@x cert-authority %s\n", key, key) > 0);
	assert_int_equal(tend_allowed_signers_parse(&as, "allowed", text, strlen(text)), TEND_EINVALID);
	assert_string_equal(tend_error_last(), "allowed:2: cert-authority entries are not supported");
	free(text);
	text = strdup("\n\na@x ssh-ed25519 AAAA!!!!\n");
	assert_int_equal(tend_allowed_signers_parse(&as, "allowed", text, strlen(text)), TEND_EINVALID);
	assert_string_equal(tend_error_last(), "allowed:3: invalid base64 key");
	free(text);
	/* The key type must agree with the key data. */
	assert_true(asprintf(&text, "a@x ssh-rsa %s\n", strchr(key, ' ') + 1) > 0);
	assert_int_equal(tend_allowed_signers_parse(&as, "allowed", text, strlen(text)), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "allowed:1: key data does not match"));
	free(text);
	text = strdup("a@x valid-after=\"2023\" ssh-ed25519 AAAA\n");
	assert_int_equal(tend_allowed_signers_parse(&as, "allowed", text, strlen(text)), TEND_EINVALID);
	assert_non_null(strstr(tend_error_last(), "allowed:1: invalid valid-after"));
	free(text);
	text = strdup("lonely@x\n");
	assert_int_equal(tend_allowed_signers_parse(&as, "allowed", text, strlen(text)), TEND_EINVALID);
	free(text);

	/* A missing file is named. */
	assert_int_equal(tend_allowed_signers_load(&as, "/nonexistent/allowed_signers"), TEND_ENOTFOUND);
	assert_non_null(strstr(tend_error_last(), "/nonexistent/allowed_signers"));

	tend_sshsig_dispose(&sig);
	free(key);
	free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_good_and_fingerprint),
		cmocka_unit_test(test_verify_rejects),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_allowed_signers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
