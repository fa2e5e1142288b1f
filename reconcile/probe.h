/* Health probes from the manifests: HTTP(S) via libcurl (status, optional body
 * substring), TCP connect, or a command's exit status; each with a grace
 * period, interval, per-try timeout and retries, bounded by a deadline, and
 * stoppable between tries by an abort flag (SIGTERM). */
#ifndef TEND_RECONCILE_PROBE_H
#define TEND_RECONCILE_PROBE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "manifest/manifest.h"
#include "util/buf.h"

typedef struct {
	int64_t deadline_ms;           /* CLOCK_MONOTONIC ms after which no try starts; 0: none */
	size_t output_limit;           /* bytes of the failing try's output kept; 0: 4096 */
	size_t body_limit;             /* bytes of an HTTP body read; 0: 64 KiB */
	volatile sig_atomic_t *abort;  /* when it becomes non-zero, stop at the next check */
	const char *ca_file;           /* https: PEM CAs to trust (only these); NULL: $SSL_CERT_FILE,
					  else the system bundle (util/tls.h) */
} tend_probe_opts;

#define TEND_PROBE_OPTS_INIT { 0, 0, 0, NULL, NULL }

typedef struct {
	int healthy;
	int aborted;                   /* stopped by the abort flag */
	unsigned tries;
	tend_buf output;               /* the last (failing) try's output, capped */
} tend_probe_result;

void tend_probe_result_dispose(tend_probe_result *res);

/* "http http://127.0.0.1:8222/alive", "tcp 127.0.0.1:5432", "command systemctl is-active x".
 * Caller frees. */
char *tend_probe_describe(const tend_probe *probe);

/* Run the probe: wait its grace, then try up to `retries` times, `interval`
 * apart, each try limited to `timeout`. Returns 0 when a try succeeded;
 * TEND_ERROR when every try failed, TEND_ETIMEOUT when the deadline ran out
 * first, with the error naming the probe and the last failure, and the
 * failing try's output in out. Aborting returns TEND_ERROR with out->aborted.
 * An https probe checks the server's certificate against the CA file and the
 * URL's host name; a failure says which, e.g. "TLS: the certificate of
 * 127.0.0.1 is not trusted (CA file /etc/ssl/certs/ca-certificates.crt):
 * SSL certificate problem: unable to get local issuer certificate". */
int tend_probe_run(tend_probe_result *out, const tend_probe *probe, const tend_probe_opts *opts);

/* CLOCK_MONOTONIC in milliseconds, for deadlines. */
int64_t tend_probe_now_ms(void);

#endif
