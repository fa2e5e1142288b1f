/* The bare mirror and its remote: credentials from files or ssh-agent, host
 * keys checked against known_hosts (through libssh2's parser: plain, hashed
 * and [host]:port entries), ls-remote first and a fetch only when the tracked
 * branch moved, time limits from libgit2's callbacks. */
#include "source/source.h"
#include "source/internal.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <libssh2.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_LS_MS 30000
#define DEFAULT_FETCH_MS 300000
#define DEFAULT_EXPORT_MS 120000
#define MAX_SECRET_FILE 4096
#define MAX_CRED_ATTEMPTS 2

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ssh:// or scp-style user@host:path (a ':' before any '/', not a drive-less local path). */
static int url_is_ssh(const char *url)
{
	const char *colon, *slash;

	if (!strncmp(url, "ssh://", 6) || !strncmp(url, "ssh+git://", 10) || !strncmp(url, "git+ssh://", 10))
		return 1;
	if (strstr(url, "://") || url[0] == '/' || url[0] == '.')
		return 0;
	colon = strchr(url, ':');
	slash = strchr(url, '/');
	return colon && (!slash || colon < slash);
}

/* The URL for messages, without a password (https://user:secret@host). */
char *tend_source_url_display(const char *url)
{
	const char *scheme = strstr(url, "://"), *at, *colon, *hostpart;
	char *out = NULL;

	if (!scheme)
		return strdup(url);
	hostpart = scheme + 3;
	at = strchr(hostpart, '@');
	if (at && (!strchr(hostpart, '/') || at < strchr(hostpart, '/'))) {
		colon = memchr(hostpart, ':', (size_t)(at - hostpart));
		if (colon && asprintf(&out, "%.*s:***%s", (int)(colon - url), url, at) >= 0)
			return out;
	}
	return strdup(url);
}

/* The port of an ssh URL (22 unless ssh://host:port/). */
static int ssh_port(const char *url)
{
	const char *p = strstr(url, "://"), *end;

	if (!p)
		return 22;
	p += 3;
	end = strchr(p, '/');
	if (!end)
		end = p + strlen(p);
	if (memchr(p, '@', (size_t)(end - p)))
		p = (const char *)memchr(p, '@', (size_t)(end - p)) + 1;
	if (*p == '[') {
		p = memchr(p, ']', (size_t)(end - p));
		if (!p)
			return 22;
	}
	p = memchr(p, ':', (size_t)(end - p));
	if (!p || p + 1 == end)
		return 22;
	return atoi(p + 1);
}

int tend_source_open(tend_source **out, const tend_source_opts *opts)
{
	tend_source *s = NULL;
	int error = -1;

	*out = NULL;
	tend_source_git_init();
	if (!opts->url || !*opts->url || !opts->mirror_dir) {
		tend_error_set("source: url and mirror_dir are required");
		return TEND_EINVALID;
	}
	if (url_is_ssh(opts->url) && !opts->known_hosts) {
		tend_error_set("source %s: an ssh remote needs a known_hosts file (host keys are never accepted unchecked)",
			       opts->url);
		return TEND_EINVALID;
	}
	if (url_is_ssh(opts->url) && !(git_libgit2_features() & GIT_FEATURE_SSH)) {
		tend_error_set("source %s: this libgit2 was built without ssh support", opts->url);
		return TEND_EUNSUPPORTED;
	}
	if (!strncmp(opts->url, "https://", 8) && !(git_libgit2_features() & GIT_FEATURE_HTTPS)) {
		tend_error_set("source %s: this libgit2 was built without https support", opts->url);
		return TEND_EUNSUPPORTED;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return -1;
	s->progress_fd = -1;
	s->url = strdup(opts->url);
	s->branch = strdup(opts->branch && *opts->branch ? opts->branch : "main");
	s->mirror_dir = strdup(opts->mirror_dir);
	if (!s->url || !s->branch || !s->mirror_dir)
		goto out;
	s->known_hosts = dup_or_null(opts->known_hosts);
	s->ssh_key = dup_or_null(opts->ssh_key);
	s->ssh_passphrase_file = dup_or_null(opts->ssh_passphrase_file);
	s->https_token_file = dup_or_null(opts->https_token_file);
	s->https_basic_file = dup_or_null(opts->https_basic_file);
	s->allowed_signers_path = dup_or_null(opts->allowed_signers);
	s->ca_file = dup_or_null(opts->ca_file);
	s->ssh_agent = opts->ssh_agent;
	s->ls_remote_timeout_ms = opts->ls_remote_timeout_ms > 0 ? opts->ls_remote_timeout_ms : DEFAULT_LS_MS;
	s->fetch_timeout_ms = opts->fetch_timeout_ms > 0 ? opts->fetch_timeout_ms : DEFAULT_FETCH_MS;
	s->export_timeout_ms = opts->export_timeout_ms > 0 ? opts->export_timeout_ms : DEFAULT_EXPORT_MS;
	{
		char *full = NULL;
		int valid = 0;

		if (asprintf(&full, "refs/heads/%s", s->branch) < 0)
			goto out;
		git_reference_name_is_valid(&valid, full);
		free(full);
		if (!valid) {
			tend_error_set("source %s: invalid branch name '%s'", s->url, s->branch);
			error = TEND_EINVALID;
			goto out;
		}
	}
	if (s->allowed_signers_path &&
	    (error = tend_allowed_signers_load(&s->signers, s->allowed_signers_path)) < 0)
		goto out;
	*out = s;
	s = NULL;
	error = 0;
out:
	tend_source_free(s);
	return error;
}

void tend_source_free(tend_source *s)
{
	if (!s)
		return;
	git_repository_free(s->repo);
	tend_allowed_signers_free(s->signers);
	free(s->url);
	free(s->branch);
	free(s->mirror_dir);
	free(s->known_hosts);
	free(s->ssh_key);
	free(s->ssh_passphrase_file);
	free(s->https_token_file);
	free(s->https_basic_file);
	free(s->allowed_signers_path);
	free(s->ca_file);
	free(s->ca_used);
	free(s->tls_host);
	free(s->cb_error);
	free(s);
}

const char *tend_source_mirror_dir(const tend_source *s)
{
	return s->mirror_dir;
}

const char *tend_source_branch(const tend_source *s)
{
	return s->branch;
}

int tend_source_mirror_open(tend_source *s)
{
	if (s->repo)
		return 0;
	if (git_repository_open_bare(&s->repo, s->mirror_dir) == 0)
		return 0;
	if (tend_path_exists(s->mirror_dir)) {
		char *head = tend_path_join(s->mirror_dir, "HEAD");
		int exists = head && tend_path_exists(head);

		free(head);
		if (exists) {
			tend_error_set("mirror %s: %s", s->mirror_dir, tend_source_git_msg());
			return TEND_ERROR;
		}
	}
	if (tend_dir_create_all(s->mirror_dir, 0700) < 0)
		return TEND_ERROR;
	if (git_repository_init(&s->repo, s->mirror_dir, 1) < 0) {
		tend_error_set("mirror %s: init: %s", s->mirror_dir, tend_source_git_msg());
		s->repo = NULL;
		return TEND_ERROR;
	}
	return 0;
}

/* ---- callbacks ---------------------------------------------------------- */

/* Record why a callback failed; code: TEND_EAUTH (credentials, host keys) or TEND_ERROR. */
static void cb_fail(tend_source *s, int code, const char *fmt, ...) TEND_PRINTF(3, 4);
static void cb_fail(tend_source *s, int code, const char *fmt, ...)
{
	va_list ap;

	s->cb_code = code;
	free(s->cb_error);
	s->cb_error = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s->cb_error, fmt, ap) < 0)
		s->cb_error = NULL;
	va_end(ap);
}

static int deadline_passed(tend_source *s)
{
	if (s->deadline_ms && tend_source_now_ms() > s->deadline_ms) {
		s->timed_out = 1;
		return 1;
	}
	return 0;
}

/* A small secret file (token, password, passphrase) without its trailing newline. */
static int read_secret(tend_buf *out, const char *path)
{
	int error = tend_file_read(out, path, MAX_SECRET_FILE);

	if (error < 0)
		return error;
	if (!out->ptr && tend_buf_puts(out, "") < 0) /* an empty file: "" rather than NULL */
		return -1;
	while (out->size > 0 && (out->ptr[out->size - 1] == '\n' || out->ptr[out->size - 1] == '\r'))
		out->ptr[--out->size] = '\0';
	return 0;
}

static int cb_credentials(git_credential **out, const char *url, const char *username_from_url,
			  unsigned int allowed_types, void *payload)
{
	tend_source *s = payload;
	tend_buf secret = TEND_BUF_INIT;
	const char *user = username_from_url && *username_from_url ? username_from_url : NULL;
	int error = GIT_EUSER;

	if (deadline_passed(s))
		return GIT_EUSER;
	if (++s->cred_attempts > MAX_CRED_ATTEMPTS) {
		if (s->ssh_agent)
			cb_fail(s, TEND_EAUTH, "authentication failed: the server accepted no key from ssh-agent");
		else if (s->ssh_key && (allowed_types & GIT_CREDENTIAL_SSH_KEY))
			cb_fail(s, TEND_EAUTH, "authentication failed: the server rejected the key %s", s->ssh_key);
		else
			cb_fail(s, TEND_EAUTH, "authentication failed: the server rejected the credentials from %s",
				s->https_basic_file ? s->https_basic_file :
				s->https_token_file ? s->https_token_file : "(none)");
		return GIT_EUSER;
	}
	if (allowed_types & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user ? user : "git");
	if (allowed_types & GIT_CREDENTIAL_SSH_KEY) {
		if (s->ssh_agent)
			return git_credential_ssh_key_from_agent(out, user ? user : "git");
		if (s->ssh_key) {
			char *pub = NULL;

			if (s->ssh_passphrase_file && read_secret(&secret, s->ssh_passphrase_file) < 0) {
				cb_fail(s, TEND_ERROR, "ssh passphrase: %s", tend_error_last());
				goto out;
			}
			if (asprintf(&pub, "%s.pub", s->ssh_key) < 0)
				goto out;
			error = git_credential_ssh_key_new(out, user ? user : "git",
							   tend_path_exists(pub) ? pub : NULL, s->ssh_key,
							   secret.ptr);
			free(pub);
			goto out;
		}
		cb_fail(s, TEND_EAUTH, "the ssh server wants a key: configure an ssh key file or ssh-agent");
		goto out;
	}
	if (allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
		if (s->https_basic_file) {
			char *colon;

			if (read_secret(&secret, s->https_basic_file) < 0) {
				cb_fail(s, TEND_ERROR, "basic auth: %s", tend_error_last());
				goto out;
			}
			if (!(colon = strchr(secret.ptr, ':'))) {
				cb_fail(s, TEND_EAUTH, "basic auth file %s: expected user:password", s->https_basic_file);
				goto out;
			}
			*colon = '\0';
			error = git_credential_userpass_plaintext_new(out, secret.ptr, colon + 1);
			goto out;
		}
		if (s->https_token_file) {
			if (read_secret(&secret, s->https_token_file) < 0) {
				cb_fail(s, TEND_ERROR, "token: %s", tend_error_last());
				goto out;
			}
			error = git_credential_userpass_plaintext_new(out, user ? user : "x-access-token", secret.ptr);
			goto out;
		}
		cb_fail(s, TEND_EAUTH, "the server wants a password: configure a token or basic-auth file");
		goto out;
	}
	cb_fail(s, TEND_EAUTH, "no usable credential type offered by the server");
out:
	tend_buf_dispose_secure(&secret);
	return error;
}

static int hostkey_type(git_cert_ssh_raw_type_t t, const char **name)
{
	switch (t) {
	case GIT_CERT_SSH_RAW_TYPE_RSA: *name = "ssh-rsa"; return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case GIT_CERT_SSH_RAW_TYPE_DSS: *name = "ssh-dss"; return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: *name = "ecdsa-sha2-nistp256"; return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: *name = "ecdsa-sha2-nistp384"; return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: *name = "ecdsa-sha2-nistp521"; return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: *name = "ssh-ed25519"; return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default: *name = "unknown"; return -1;
	}
}

/* Check an ssh host key against known_hosts. 0 if listed; otherwise the
 * failure is recorded (host and fingerprint) and GIT_ECERTIFICATE returned. */
static int check_known_host(tend_source *s, const git_cert_hostkey *hk, const char *host)
{
	LIBSSH2_SESSION *session = NULL;
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	char fp[TEND_SSH_FINGERPRINT_SIZE], where[300];
	const char *tname;
	int port = ssh_port(s->url), ktype, rc, error = GIT_ECERTIFICATE;

	if (port == 22)
		snprintf(where, sizeof(where), "%s", host);
	else
		snprintf(where, sizeof(where), "[%s]:%d", host, port);
	if (!(hk->type & GIT_CERT_SSH_RAW) || !hk->hostkey || hk->hostkey_len == 0) {
		cb_fail(s, TEND_EAUTH, "host key of %s not available for checking", where);
		return GIT_ECERTIFICATE;
	}
	tend_ssh_fingerprint(fp, (const unsigned char *)hk->hostkey, hk->hostkey_len);
	if ((ktype = hostkey_type(hk->raw_type, &tname)) < 0) {
		cb_fail(s, TEND_EAUTH, "host %s offers an unsupported host key type (%s)", where, fp);
		return GIT_ECERTIFICATE;
	}
	if (!(session = libssh2_session_init()) || !(kh = libssh2_knownhost_init(session))) {
		cb_fail(s, TEND_ERROR, "cannot initialise libssh2 to check the host key of %s", where);
		goto out;
	}
	if (libssh2_knownhost_readfile(kh, s->known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		char *msg = NULL;

		libssh2_session_last_error(session, &msg, NULL, 0);
		cb_fail(s, TEND_ERROR, "cannot read known_hosts %s: %s", s->known_hosts, msg ? msg : "error");
		goto out;
	}
	/* Looked up by the name OpenSSH records ("[host]:port" off port 22),
	 * with port -1 so that libssh2 does not fall back to the bare host name. */
	rc = libssh2_knownhost_checkp(kh, where, -1, hk->hostkey, hk->hostkey_len,
				      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | ktype, NULL);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		error = 0;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		cb_fail(s, TEND_EAUTH, "host key for %s changed: %s %s does not match %s (key rotated, or someone is intercepting)",
			where, tname, fp, s->known_hosts);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		cb_fail(s, TEND_EAUTH, "unknown host key for %s: %s %s is not in %s", where, tname, fp, s->known_hosts);
		break;
	default:
		cb_fail(s, TEND_ERROR, "checking the host key of %s (%s) against %s failed", where, fp, s->known_hosts);
		break;
	}
out:
	if (kh)
		libssh2_knownhost_free(kh);
	if (session)
		libssh2_session_free(session);
	return error;
}

static int cb_certificate(git_cert *cert, int valid, const char *host, void *payload)
{
	tend_source *s = payload;

	if (deadline_passed(s))
		return GIT_EUSER;
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
		if (!s->known_hosts) {
			cb_fail(s, TEND_EAUTH, "no known_hosts file to check the host key of %s", host);
			return GIT_ECERTIFICATE;
		}
		return check_known_host(s, (const git_cert_hostkey *)cert, host);
	}
	/* TLS: libgit2 has checked the chain against the CA file
	 * (tend_source_tls_prepare) and the host name. Its reason is only
	 * kept when we pass: it then fails the connection with that reason,
	 * which tend_source_tls_failed words for the operator. */
	if (!valid) {
		free(s->tls_host);
		s->tls_host = strdup(host ? host : "the server");
		return GIT_PASSTHROUGH;
	}
	return 0;
}

static int cb_sideband(const char *str, int len, void *payload)
{
	return deadline_passed(payload) ? GIT_EUSER : 0;
}

static int cb_transfer(const git_indexer_progress *stats, void *payload)
{
	tend_source *s = payload;

	s->received_objects = stats->received_objects;
	return deadline_passed(s) ? GIT_EUSER : 0;
}

/* ---- poll --------------------------------------------------------------- */

static void begin_step(tend_source *s, const char *step, int timeout_ms)
{
	s->step = step;
	s->deadline_ms = tend_source_now_ms() + timeout_ms;
	if (s->progress_fd >= 0) {
		/* Tell the supervising parent which step (and time limit) runs now. */
		char line[64];
		int n = snprintf(line, sizeof(line), "S %s\n", step);

		if (write(s->progress_fd, line, (size_t)n) < 0)
			s->progress_fd = -1;
	}
	s->timed_out = 0;
	s->cred_attempts = 0;
	free(s->cb_error);
	s->cb_error = NULL;
	s->cb_code = TEND_ERROR;
	free(s->tls_host);
	s->tls_host = NULL;
}

/* Report a libgit2 failure with the remote, the step and the best message. */
static int step_failed(tend_source *s, int timeout_ms)
{
	char *url = tend_source_url_display(s->url);
	int error = TEND_ERROR;

	if (s->timed_out) {
		tend_error_set("%s: %s: time limit of %d ms exceeded", url ? url : s->url, s->step, timeout_ms);
		error = TEND_ETIMEOUT;
	} else if (s->tls_host) {
		error = tend_source_tls_failed(s, url ? url : s->url);
	} else if (s->cb_error) {
		tend_error_set("%s: %s: %s", url ? url : s->url, s->step, s->cb_error);
		error = s->cb_code;
	} else {
		const git_error *e = git_error_last();

		/* scp-style URLs cannot name a port: say which one was tried. */
		int scp_connect = url_is_ssh(s->url) && !strstr(s->url, "://") && e &&
				  strstr(e->message, "failed to connect");

		tend_error_set("%s: %s: %s%s", url ? url : s->url, s->step, tend_source_git_msg(),
			       scp_connect ? " (port 22: an scp-style URL cannot name a port; "
					     "use ssh://user@host:PORT/path for another)" : "");
		if (e && e->klass == GIT_ERROR_SSH && strstr(e->message, "authentic"))
			error = TEND_EAUTH;
	}
	free(url);
	return error;
}

int tend_source_poll_direct(tend_source *s, char out_head[41], int *out_fetched)
{
	git_remote *remote = NULL;
	git_remote_callbacks cbs;
	git_fetch_options fo;
	const git_remote_head **heads = NULL;
	git_reference *ref = NULL;
	git_odb *odb = NULL;
	git_oid remote_oid, local_oid;
	char *want = NULL, *refspec = NULL, *url = NULL;
	git_strarray specs;
	size_t i, n = 0;
	int found = 0, error = -1;

	if (out_fetched)
		*out_fetched = 0;
	s->received_objects = 0;
	if ((error = tend_source_mirror_open(s)) < 0)
		goto out;
	error = -1;
	if (asprintf(&want, "refs/heads/%s", s->branch) < 0 ||
	    asprintf(&refspec, "+refs/heads/%s:refs/heads/%s", s->branch, s->branch) < 0)
		goto out;
	if (!(url = tend_source_url_display(s->url)))
		goto out;
	git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	cbs.credentials = cb_credentials;
	cbs.certificate_check = cb_certificate;
	cbs.sideband_progress = cb_sideband;
	cbs.transfer_progress = cb_transfer;
	cbs.payload = s;

	begin_step(s, "ls-remote", s->ls_remote_timeout_ms);
	if ((error = tend_source_tls_prepare(s, url)) < 0)
		goto out;
	error = -1;
	if (git_remote_create_anonymous(&remote, s->repo, s->url) < 0 ||
	    git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, NULL, NULL) < 0 ||
	    git_remote_ls(&heads, &n, remote) < 0) {
		error = step_failed(s, s->ls_remote_timeout_ms);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!strcmp(heads[i]->name, want)) {
			git_oid_cpy(&remote_oid, &heads[i]->oid);
			found = 1;
			break;
		}
	}
	if (!found) {
		tend_error_set("%s: ls-remote: the remote has no branch '%s'", url, s->branch);
		error = TEND_ENOTFOUND;
		goto out;
	}
	if (git_repository_odb(&odb, s->repo) < 0) {
		tend_error_set("mirror %s: %s", s->mirror_dir, tend_source_git_msg());
		goto out;
	}
	if (git_reference_name_to_id(&local_oid, s->repo, want) == 0 &&
	    git_oid_equal(&local_oid, &remote_oid) && git_odb_exists(odb, &remote_oid)) {
		git_oid_tostr(out_head, 41, &remote_oid);
		error = 0;
		goto out;
	}

	begin_step(s, "fetch", s->fetch_timeout_ms);
	specs.strings = &refspec;
	specs.count = 1;
	fo.callbacks = cbs;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	if (git_remote_download(remote, &specs, &fo) < 0) {
		error = step_failed(s, s->fetch_timeout_ms);
		goto out;
	}
	if (!git_odb_exists(odb, &remote_oid)) {
		tend_error_set("%s: fetch: the remote did not send %s", url, git_oid_tostr_s(&remote_oid));
		goto out;
	}
	/* Only now, with every object in place, does the mirror's ref move. */
	if (git_reference_create(&ref, s->repo, want, &remote_oid, 1, "tend: fetch") < 0) {
		tend_error_set("mirror %s: update %s: %s", s->mirror_dir, want, tend_source_git_msg());
		goto out;
	}
	if (out_fetched)
		*out_fetched = 1;
	git_oid_tostr(out_head, 41, &remote_oid);
	error = 0;
out:
	if (remote) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
	s->deadline_ms = 0;
	git_reference_free(ref);
	git_odb_free(odb);
	free(want);
	free(refspec);
	free(url);
	return error;
}

int tend_source_export(char **out_dir, tend_source *s, const char *commit, const char *revs_dir)
{
	git_oid oid;
	char *dest = NULL;
	int error;

	*out_dir = NULL;
	if (!commit || strlen(commit) != GIT_OID_HEXSZ || git_oid_fromstr(&oid, commit) < 0) {
		tend_error_set("export: '%s' is not a full commit hash", commit ? commit : "(null)");
		return TEND_EINVALID;
	}
	if ((error = tend_source_mirror_open(s)) < 0)
		return error;
	if ((error = tend_dir_create_all(revs_dir, 0755)) < 0)
		return error;
	if (!(dest = tend_path_join(revs_dir, commit)))
		return -1;
	/* A revision directory only ever appears complete (rename), so an
	 * existing one is the exact tree and is reused. */
	if (!tend_path_exists(dest)) {
		error = tend_source_export_oid(s->repo, &oid, dest,
					       tend_source_now_ms() + s->export_timeout_ms);
		if (error < 0) {
			char *url = tend_source_url_display(s->url);

			tend_error_prefix("%s: export: ", url ? url : s->url);
			free(url);
			free(dest);
			return error;
		}
	}
	*out_dir = dest;
	return 0;
}
