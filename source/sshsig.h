/* SSH signatures as git writes them with gpg.format=ssh (OpenSSH's SSHSIG
 * format, PROTOCOL.sshsig) and the allowed_signers file that says which keys
 * may sign (git's gpg.ssh.allowedSignersFile, ssh-keygen's ALLOWED SIGNERS).
 * Only Ed25519 signatures are verified (libsodium). */
#ifndef TEND_SOURCE_SSHSIG_H
#define TEND_SOURCE_SSHSIG_H

#include <stddef.h>
#include <stdint.h>

/* Caps on what a commit or a file can make us parse. */
#define TEND_SSHSIG_MAX_ARMORED 16384
#define TEND_ALLOWED_SIGNERS_MAX_FILE (1024 * 1024)
#define TEND_ALLOWED_SIGNERS_MAX_KEYS 10000

/* "SHA256:" + unpadded base64 of SHA-256 of the public key blob, like ssh-keygen -l. */
#define TEND_SSH_FINGERPRINT_SIZE 52
void tend_ssh_fingerprint(char out[TEND_SSH_FINGERPRINT_SIZE], const unsigned char *blob, size_t len);

typedef struct {
	unsigned char *pubkey;      /* public key blob (SSH wire format) */
	size_t pubkey_len;
	char keytype[64];           /* from the key blob, e.g. "ssh-ed25519" */
	unsigned char ed25519[32];  /* raw key when keytype is ssh-ed25519 */
	char namespace[64];
	char hash_alg[16];
	char sigtype[64];           /* from the signature blob */
	unsigned char sig[64];      /* raw Ed25519 signature */
	size_t sig_len;
} tend_sshsig;

/* Parse an armored SSHSIG ("-----BEGIN SSH SIGNATURE-----" ...). Returns
 * TEND_EINVALID with a message saying what is wrong. Free with _dispose. */
int tend_sshsig_parse(tend_sshsig *out, const char *armored, size_t len);
/* The same from the decoded binary blob (the armor's base64 content). */
int tend_sshsig_parse_blob(tend_sshsig *out, const unsigned char *blob, size_t len);
void tend_sshsig_dispose(tend_sshsig *sig);

/* Verify sig over msg: namespace must equal ns, hash sha256 or sha512, key
 * and signature Ed25519. TEND_EUNSUPPORTED (other key or hash types) or
 * TEND_EAUTH (wrong namespace, bad signature), with a message. */
int tend_sshsig_verify(const tend_sshsig *sig, const char *ns, const void *msg, size_t len);

typedef struct tend_allowed_signers tend_allowed_signers;

/* Parse allowed_signers text; name is used in messages (name:line: ...).
 * Lines: principals [options] keytype base64-key [comment]; '#' comments and
 * blank lines. Options: namespaces="pattern,...", valid-after="YYYYMMDD[HHMM[SS]][Z]",
 * valid-before=...; cert-authority and unknown options are refused (TEND_EINVALID). */
int tend_allowed_signers_parse(tend_allowed_signers **out, const char *name, const char *text, size_t len);
int tend_allowed_signers_load(tend_allowed_signers **out, const char *path);
void tend_allowed_signers_free(tend_allowed_signers *as);
size_t tend_allowed_signers_count(const tend_allowed_signers *as);

/* Is the key blob allowed to sign in namespace ns at time when (seconds since
 * the epoch; the commit's committer time) and still at now (this host's
 * clock: a committer date is whatever the signer wrote, so a key expired
 * today must not sign a commit dated back into its validity)? 0 if so;
 * TEND_ENOMATCH when the key is not listed, TEND_EREFUSED when listed but not
 * for ns or not at either time; the message says why. */
int tend_allowed_signers_check(const tend_allowed_signers *as, const unsigned char *blob, size_t len,
			       const char *ns, int64_t when, int64_t now);

#endif
