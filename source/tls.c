/* git over https: which CA file libgit2 trusts, and why it refused a server
 * certificate, in one line. Debian's libgit2 1.5 uses mbedTLS, which ignores
 * $SSL_CERT_FILE and knows only its compiled-in bundle, so the file is always
 * handed over explicitly; its reasons come from mbedtls_x509_crt_verify_info
 * (OpenSSL-built libgit2, as on NixOS, words them differently). */
#include "source/source.h"
#include "source/internal.h"
#include "util/error.h"
#include "util/tls.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* The CA file this process last handed to libgit2 (a process-wide setting),
 * as it was then: a long-lived checker (source/watch.c) looks every few
 * seconds, and mbedTLS parsing a system bundle costs more than the look
 * itself. A file replaced or rewritten since (another inode, size or
 * mtime) is read and handed over again. */
static struct {
	char path[4096];
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
} applied;

static int applied_is(const char *path, const struct stat *st)
{
	return !strcmp(applied.path, path) && applied.dev == st->st_dev && applied.ino == st->st_ino &&
	       applied.size == st->st_size && applied.mtime.tv_sec == st->st_mtim.tv_sec &&
	       applied.mtime.tv_nsec == st->st_mtim.tv_nsec;
}

int tend_source_tls_prepare(tend_source *s, const char *url)
{
	struct stat st;
	const char *ca;
	int error, have;

	free(s->ca_used);
	s->ca_used = NULL;
	free(s->tls_host);
	s->tls_host = NULL;
	if (strncasecmp(s->url, "https://", 8) != 0)
		return 0;
	if (!(ca = tend_tls_ca_file(s->ca_file))) {
		tend_error_prefix("%s: %s: ", url, s->step);
		return TEND_ENOTFOUND;
	}
	if (!(s->ca_used = strdup(ca))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	have = stat(ca, &st) == 0;
	if (have && applied_is(ca, &st))
		return 0;
	applied.path[0] = '\0';
	if ((error = tend_tls_ca_file_check(ca)) < 0) {
		tend_error_prefix("%s: %s: CA file ", url, s->step);
		return error;
	}
	/* Replaces (mbedTLS) or adds to (OpenSSL) the CAs libgit2 trusts; a
	 * failure leaves no connection attempt behind, never a laxer check. */
	if (git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, ca, NULL) < 0) {
		tend_error_set("%s: %s: CA file %s: %s", url, s->step, ca, tend_source_git_msg());
		return TEND_EINVALID;
	}
	/* Remembered as it was before it was read: a change while reading is
	 * seen at the next look. */
	if (have && strlen(ca) < sizeof(applied.path)) {
		snprintf(applied.path, sizeof(applied.path), "%s", ca);
		applied.dev = st.st_dev;
		applied.ino = st.st_ino;
		applied.size = st.st_size;
		applied.mtime = st.st_mtim;
	}
	return 0;
}

static int is_ip_literal(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* Append one reason to the sentence "the TLS certificate of H ...". */
static void add_reason(char *buf, size_t size, const char *fmt, ...) TEND_PRINTF(3, 4);
static void add_reason(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len)
		len += (size_t)snprintf(buf + len, size - len, "; and it ");
	if (len >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

int tend_source_tls_failed(tend_source *s, const char *url)
{
	const char *why = tend_source_git_msg(), *host = s->tls_host ? s->tls_host : "the server";
	const char *ca = s->ca_used ? s->ca_used : "(libgit2's default)";
	/* mbedTLS: "the SSL certificate is invalid: 0x08 - The certificate is not
	 * correctly signed by the trusted CA"; OpenSSL: "the SSL certificate is
	 * invalid" (the chain) or "hostname does not match certificate". */
	int mbed = strstr(why, "invalid: 0x") != NULL;
	int untrusted = strstr(why, "not correctly signed by the trusted CA") ||
			(!mbed && strstr(why, "certificate is invalid"));
	int mismatch = strstr(why, "Common Name (CN) does not match") ||
		       strstr(why, "hostname does not match");
	int expired = strstr(why, "has expired") || strstr(why, "validity starts in the future");
	char reason[1024], *p;

	reason[0] = '\0';
	if (untrusted && mbed)
		add_reason(reason, sizeof(reason), "is not trusted: no CA in %s signed it", ca);
	else if (untrusted)
		add_reason(reason, sizeof(reason), "is not trusted: it does not verify against the CAs "
			   "in %s (an unknown CA, or expired)", ca);
	if (mismatch)
		add_reason(reason, sizeof(reason), "%s", "is for another host name (hostname mismatch)");
	if (expired)
		add_reason(reason, sizeof(reason), "%s", "is expired or not yet valid");
	if (!*reason)
		add_reason(reason, sizeof(reason), "was refused: %s (CA file %s)", why, ca);
	if (mismatch && mbed && is_ip_literal(host))
		snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason),
			 "; note: this libgit2 (mbedTLS) matches an IP address against the "
			 "certificate's DNS names only, so a certificate for IP:%s needs DNS:%s too "
			 "(or connect by host name)", host, host);
	/* mbedTLS lists several reasons on separate lines: keep one line. */
	for (p = reason; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	tend_error_set("%s: %s: the TLS certificate of %s %s", url, s->step, host, reason);
	return TEND_EAUTH;
}
