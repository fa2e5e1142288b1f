/* Which CA bundle tend trusts for TLS (git over https, HTTPS probes) and a
 * check that a file is one. Shared so both paths name the same file in their
 * messages and fall back the same way: never to "trust anything". */
#ifndef TEND_UTIL_TLS_H
#define TEND_UTIL_TLS_H

/* The system bundles tried, in order, when nothing is configured (Debian,
 * Ubuntu, NixOS, Arch: the first; Fedora/RHEL; openSUSE; Alpine). */
#define TEND_TLS_SYSTEM_BUNDLES \
	"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", \
	"/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"

/* Largest CA file read (a full system bundle is about 200 KiB). */
#define TEND_TLS_CA_FILE_MAX (16u * 1024 * 1024)

/* The CA file to trust: configured when non-NULL; else $SSL_CERT_FILE when
 * set and non-empty (the convention of OpenSSL, curl and git); else the first
 * system bundle that exists. NULL when there is none, with the error set
 * ("no CA bundle found: ..."). The result points into configured, the
 * environment or a constant: copy it to keep it. */
const char *tend_tls_ca_file(const char *configured);

/* 0 when path is a readable regular file of at most TEND_TLS_CA_FILE_MAX bytes
 * holding at least one PEM certificate. Otherwise TEND_ENOTFOUND (absent),
 * TEND_ELIMIT or TEND_EINVALID with the error "PATH: <reason>". */
int tend_tls_ca_file_check(const char *path);

#endif
