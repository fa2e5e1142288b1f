/* Sending one plain-text email with libcurl's SMTP client: smtp:// with
 * STARTTLS required unless explicitly relaxed, smtps://, optional login with a
 * password read from a file, several recipients, and time limits. */
#ifndef TEND_AGENT_SMTP_H
#define TEND_AGENT_SMTP_H

#include <stddef.h>

typedef struct {
	const char *url;            /* smtp://host[:port] or smtps://host[:port] */
	const char *from;           /* envelope and header sender: addr@domain */
	const char *const *to;      /* recipients */
	size_t n_to;
	const char *username;       /* NULL: no AUTH */
	const char *password_file;  /* read at send time; trailing newline dropped */
	int allow_plain;            /* 1: smtp:// may proceed without STARTTLS (loopback tests) */
	const char *ca_file;        /* NULL: the system's CA bundle */
	long timeout_ms;            /* whole transfer; <= 0: 30 s */
} tend_smtp_opts;

/* Build the RFC 5322 message (Date, Message-ID, From, To, Subject, MIME
 * headers, CRLF lines, long lines wrapped) into a malloc'd string. */
int tend_smtp_message_build(char **out, const tend_smtp_opts *opts,
			    const char *subject, const char *body);

/* Send subject and body to every recipient. TEND_EINVALID for bad options,
 * TEND_EAUTH for a rejected login, TEND_ETIMEOUT, TEND_ERROR otherwise; the
 * error names the server. */
int tend_smtp_send(const tend_smtp_opts *opts, const char *subject, const char *body);

#endif
