/* One email through libcurl: we build the message ourselves (RFC 5322 headers,
 * CRLF, 998-octet line limit); libcurl speaks SMTP, does the dot-stuffing and
 * enforces STARTTLS. */
#include "agent/smtp.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/curl_lazy.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SMTP_LINE_MAX 998
#define SMTP_PASSWORD_MAX 4096

/* Header values: printable ASCII only, so that nothing can inject a header. */
static int put_header(tend_buf *b, const char *name, const char *value)
{
	const unsigned char *p;

	if (tend_buf_printf(b, "%s: ", name) < 0)
		return -1;
	for (p = (const unsigned char *)value; *p && p - (const unsigned char *)value < 900; p++)
		if (tend_buf_putc(b, (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?') < 0)
			return -1;
	return tend_buf_puts(b, "\r\n");
}

static int valid_address(const char *a)
{
	const char *at;

	if (!a || !*a || strlen(a) > 254)
		return 0;
	if (strpbrk(a, "<>\r\n ,;\"()") || !(at = strchr(a, '@')) || at == a || !at[1])
		return 0;
	return strchr(at + 1, '@') == NULL;
}

static int check_opts(const tend_smtp_opts *o)
{
	size_t i;

	if (!o->url || (strncmp(o->url, "smtp://", 7) && strncmp(o->url, "smtps://", 8))) {
		tend_error_set("email: smtp_url '%s' must start with smtp:// or smtps://",
			       o->url ? o->url : "");
		return TEND_EINVALID;
	}
	if (!valid_address(o->from)) {
		tend_error_set("email: sender '%s' is not an address like tend@example.org",
			       o->from ? o->from : "");
		return TEND_EINVALID;
	}
	if (o->n_to == 0) {
		tend_error_set("email: no recipients");
		return TEND_EINVALID;
	}
	for (i = 0; i < o->n_to; i++)
		if (!valid_address(o->to[i])) {
			tend_error_set("email: recipient '%s' is not an address", o->to[i]);
			return TEND_EINVALID;
		}
	return 0;
}

int tend_smtp_message_build(char **out, const tend_smtp_opts *o, const char *subject,
			    const char *body)
{
	tend_buf b = TEND_BUF_INIT, to = TEND_BUF_INIT;
	unsigned char rnd[16];
	char date[64], id[33];
	struct tm tm;
	time_t now = time(NULL);
	const char *p, *domain;
	size_t i, col;
	int error = TEND_ERROR;

	*out = NULL;
	if ((error = check_opts(o)) < 0)
		return error;
	error = TEND_ERROR;
	gmtime_r(&now, &tm);
	/* RFC 5322 date-time; the C locale gives English names (main sets it). */
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(id, sizeof(id), rnd, sizeof(rnd));
	domain = strchr(o->from, '@') + 1;
	for (i = 0; i < o->n_to; i++)
		if (tend_buf_printf(&to, "%s%s", i ? ", " : "", o->to[i]) < 0)
			goto out;
	if (put_header(&b, "Date", date) < 0 || put_header(&b, "From", o->from) < 0 ||
	    put_header(&b, "To", to.ptr) < 0 || put_header(&b, "Subject", subject) < 0 ||
	    tend_buf_printf(&b, "Message-ID: <%s.%s@%s>\r\n", id, "tend", domain) < 0 ||
	    put_header(&b, "X-Mailer", "tend " TEND_VERSION) < 0 ||
	    tend_buf_puts(&b, "MIME-Version: 1.0\r\n"
			  "Content-Type: text/plain; charset=utf-8\r\n"
			  "Content-Transfer-Encoding: 8bit\r\n\r\n") < 0)
		goto out;
	/* Body: LF or CRLF in, CRLF out; lines past the limit are wrapped. */
	col = 0;
	for (p = body; *p; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n') {
			if (tend_buf_puts(&b, "\r\n") < 0)
				goto out;
			col = 0;
			continue;
		}
		if (col == SMTP_LINE_MAX - 2) {
			if (tend_buf_puts(&b, "\r\n") < 0)
				goto out;
			col = 0;
		}
		if (tend_buf_putc(&b, *p) < 0)
			goto out;
		col++;
	}
	if (col && tend_buf_puts(&b, "\r\n") < 0)
		goto out;
	*out = tend_buf_detach(&b);
	error = 0;
out:
	tend_buf_dispose(&b);
	tend_buf_dispose(&to);
	return error;
}

typedef struct {
	const char *data;
	size_t len, pos;
} upload;

static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	upload *u = userdata;
	size_t n = size * nmemb;

	if (n > u->len - u->pos)
		n = u->len - u->pos;
	memcpy(ptr, u->data + u->pos, n);
	u->pos += n;
	return n;
}

static int read_password(tend_buf *out, const char *path)
{
	int error;

	out->max = SMTP_PASSWORD_MAX;
	if ((error = tend_file_read(out, path, SMTP_PASSWORD_MAX)) < 0) {
		tend_error_prefix("email: password_file: ");
		return error;
	}
	while (out->size && (out->ptr[out->size - 1] == '\n' || out->ptr[out->size - 1] == '\r'))
		out->ptr[--out->size] = '\0';
	return 0;
}

int tend_smtp_send(const tend_smtp_opts *o, const char *subject, const char *body)
{
	CURL *curl = NULL;
	struct curl_slist *rcpt = NULL;
	char *msg = NULL, errbuf[CURL_ERROR_SIZE] = "";
	tend_buf password = TEND_BUF_INIT;
	upload up;
	CURLcode rc;
	size_t i;
	int error;

	if ((error = tend_smtp_message_build(&msg, o, subject, body)) < 0)
		return error;
	error = TEND_ERROR;
	if (o->username && o->password_file && read_password(&password, o->password_file) < 0)
		goto out;
	if (!(curl = curl_easy_init())) {
		tend_error_set("email: %s", tend_curl_lazy_error() ? tend_curl_lazy_error() : "cannot initialise libcurl");
		goto out;
	}
	for (i = 0; i < o->n_to; i++) {
		char addr[300];

		snprintf(addr, sizeof(addr), "<%s>", o->to[i]);
		struct curl_slist *n = curl_slist_append(rcpt, addr);
		if (!n)
			goto out;
		rcpt = n;
	}
	up.data = msg;
	up.len = strlen(msg);
	up.pos = 0;
	curl_easy_setopt(curl, CURLOPT_URL, o->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	/* smtp:// must upgrade with STARTTLS unless the operator allowed plain text. */
	if (!strncmp(o->url, "smtp://", 7))
		curl_easy_setopt(curl, CURLOPT_USE_SSL, o->allow_plain ? (long)CURLUSESSL_TRY
								       : (long)CURLUSESSL_ALL);
	if (o->ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, o->ca_file);
	if (o->username) {
		curl_easy_setopt(curl, CURLOPT_USERNAME, o->username);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, password.ptr ? password.ptr : "");
	}
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, o->from);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(curl, CURLOPT_READDATA, &up);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE, (long)up.len);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 30000L);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		tend_error_set("email: sending through %s failed: %s", o->url,
			       errbuf[0] ? errbuf : curl_easy_strerror(rc));
		error = rc == CURLE_LOGIN_DENIED ? TEND_EAUTH :
			rc == CURLE_OPERATION_TIMEDOUT ? TEND_ETIMEOUT :
			rc == CURLE_USE_SSL_FAILED ? TEND_EREFUSED : TEND_ERROR;
		goto out;
	}
	error = 0;
out:
	if (curl) {
		/* libcurl copied the password; overwrite its copy before freeing. */
		curl_easy_setopt(curl, CURLOPT_PASSWORD, "");
		curl_easy_cleanup(curl);
	}
	curl_slist_free_all(rcpt);
	free(msg);
	tend_buf_dispose_secure(&password);
	return error;
}
