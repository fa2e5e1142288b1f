/* libmicrohttpd request handling. Bodies are only accepted on /v1/hook and
 * are capped (Content-Length checked up front, chunked bodies counted); the
 * webhook's HMAC is checked over the exact bytes received. Connection caps,
 * the request deadline and the webhook's dedupe and rate limit: http_guard.c. */
#include "agent/http.h"
#include "agent/http_guard.h"
#include "agent/log.h"
#include "agent/page.h"
#include "agent/webhook.h"
#include "util/buf.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tend_http {
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;         /* guards secret */
	unsigned char *secret;
	size_t secret_len;
	size_t max_body;
	void (*on_hook)(void *ctx);
	void *hook_ctx;
	tend_agent_status *status;
	tend_http_guard *guard;
	int port;
};

typedef struct {
	tend_buf body;
	int too_big;
} request;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int code, const char *type,
			     char *text, int take)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), text,
					    take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	if (!r) {
		if (take)
			free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned int code, const char *msg)
{
	char *text = NULL;
	if (asprintf(&text, "{\"error\": \"%s\"}\n", msg) < 0)
		return MHD_NO;
	return reply(c, code, "application/json", text, 1);
}

static void count_hook(tend_http *h, int accepted)
{
	if (!h->status)
		return;
	tend_agent_status_lock(h->status);
	if (accepted)
		h->status->webhooks_accepted++;
	else
		h->status->webhooks_rejected++;
	tend_agent_status_unlock(h->status);
}

static enum MHD_Result handle_hook(tend_http *h, struct MHD_Connection *c, request *req)
{
	const char *sig, *id;
	int ok;

	if (req->too_big) {
		count_hook(h, 0);
		tend_log(TEND_LOG_WARNING, "webhook refused: body larger than %zu bytes", h->max_body);
		return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large");
	}
	sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Hub-Signature-256");
	if (!sig)
		sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Tend-Signature");
	pthread_mutex_lock(&h->lock);
	ok = h->secret && tend_webhook_verify(h->secret, h->secret_len, req->body.ptr ? req->body.ptr : "",
					      req->body.size, sig) == 0;
	pthread_mutex_unlock(&h->lock);
	count_hook(h, ok);
	if (!ok) {
		tend_log(TEND_LOG_WARNING, "webhook refused: %s", h->secret ? "bad or missing signature"
							: "no webhook secret configured");
		return reply_error(c, MHD_HTTP_UNAUTHORIZED, "signature required");
	}
	id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-GitHub-Delivery");
	if (!id)
		id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Gitea-Delivery");
	if (!id)
		id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Gogs-Delivery");
	if (!id)
		id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Tend-Delivery");
	switch (tend_http_guard_hook(h->guard, id)) {
	case TEND_HOOK_DUPLICATE:
		/* a replay (or a redelivery): answered, so a sender stops retrying */
		tend_log(TEND_LOG_INFO, "webhook: delivery seen before, ignored");
		return reply(c, MHD_HTTP_OK, "application/json", "{\"triggered\": false, \"duplicate\": true}\n", 0);
	case TEND_HOOK_FOLDED:
		tend_log(TEND_LOG_DEBUG, "webhook accepted: folded into the next fetch");
		break;
	case TEND_HOOK_FIRED:
		tend_log(TEND_LOG_INFO, "webhook accepted: fetching now");
		break;
	}
	return reply(c, MHD_HTTP_ACCEPTED, "application/json", "{\"triggered\": true}\n", 0);
}

/* The fleet page, with a policy that lets only its own inline script and style run. */
static enum MHD_Result reply_page(tend_http *h, struct MHD_Connection *c)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text = NULL, hash[64], csp[160];

	if (!h->status || tend_agent_page_html(&text, h->status) < 0)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "page unavailable");
	if (!(r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE))) {
		free(text);
		return MHD_NO;
	}
	tend_agent_page_script_hash(hash, sizeof(hash));
	snprintf(csp, sizeof(csp), "default-src 'none'; style-src 'unsafe-inline'; "
		 "script-src 'sha256-%s'", hash);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "Content-Security-Policy", csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle_get(tend_http *h, struct MHD_Connection *c, const char *url)
{
	char *text = NULL;

	if (!strcmp(url, "/"))
		return reply_page(h, c);
	if (!strcmp(url, "/healthz"))
		return reply(c, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n", 0);
	if (!strcmp(url, "/v1/status")) {
		if (!h->status || tend_agent_status_json(&text, h->status) < 0)
			return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "status unavailable");
		return reply(c, MHD_HTTP_OK, "application/json", text, 1);
	}
	if (!strcmp(url, "/metrics")) {
		if (!h->status || tend_agent_status_metrics(&text, h->status) < 0)
			return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable");
		return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, 1);
	}
	return reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	tend_http *h = cls;
	request *req = *con_cls;
	int is_hook = !strcmp(url, "/v1/hook");

	if (!req) {
		const char *cl;

		if (!(req = calloc(1, sizeof(*req))))
			return MHD_NO;
		req->body.max = h->max_body;
		*con_cls = req;
		if (is_hook && strcmp(method, MHD_HTTP_METHOD_POST))
			return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only");
		if (!is_hook && strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
		/* Refuse an announced oversized body before reading it. */
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (is_hook && cl && strtoull(cl, NULL, 10) > h->max_body) {
			req->too_big = 1;
			return handle_hook(h, c, req);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!is_hook || req->too_big ||
		    tend_buf_put(&req->body, upload_data, *upload_data_size) < 0)
			req->too_big = 1;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (is_hook)
		return handle_hook(h, c, req);
	return handle_get(h, c, url);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	tend_http *h = cls;
	request *req = *con_cls;

	(void)toe;
	tend_http_guard_request_done(h->guard, c);
	if (req) {
		tend_buf_dispose(&req->body);
		free(req);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap) TEND_PRINTF(2, 0);

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	tend_log(TEND_LOG_WARNING, "http: %s", msg);
}

int tend_http_set_hook_secret(tend_http *h, const unsigned char *secret, size_t len)
{
	unsigned char *copy = NULL;

	if (secret && len && !(copy = malloc(len))) {
		tend_error_set("http: out of memory");
		return TEND_ERROR;
	}
	if (copy)
		memcpy(copy, secret, len);
	pthread_mutex_lock(&h->lock);
	if (h->secret) {
		sodium_memzero(h->secret, h->secret_len);
		free(h->secret);
	}
	h->secret = copy;
	h->secret_len = copy ? len : 0;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

int tend_http_start(tend_http **out, const tend_http_opts *opts)
{
	const char *addr = opts->address && *opts->address ? opts->address : "127.0.0.1";
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	sigset_t all, old_mask;
	tend_http *h;

	*out = NULL;
	if (opts->port < 0 || opts->port > 65535) {
		tend_error_set("listen: port %d is out of range", opts->port);
		return TEND_EINVALID;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)opts->port);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)opts->port);
		flags |= MHD_USE_IPv6;
	} else {
		tend_error_set("listen: address '%s' is not an IPv4 or IPv6 literal", addr);
		return TEND_EINVALID;
	}
	if (!(h = calloc(1, sizeof(*h))))
		return TEND_ERROR;
	pthread_mutex_init(&h->lock, NULL);
	h->max_body = opts->max_body ? opts->max_body : TEND_HTTP_BODY_MAX;
	h->on_hook = opts->on_hook;
	h->hook_ctx = opts->hook_ctx;
	h->status = opts->status;
	if (tend_http_set_hook_secret(h, opts->hook_secret, opts->hook_secret_len) < 0 ||
	    tend_http_guard_new(&h->guard, h->on_hook, h->hook_ctx) < 0)
		goto fail;
	/* The server's thread must never run the agent's signal handlers. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old_mask);
	h->mhd = MHD_start_daemon(flags, 0, tend_http_guard_accept, h->guard, handler, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)TEND_HTTP_MAX_CONNECTIONS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)TEND_HTTP_MAX_PER_ADDRESS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)TEND_HTTP_IDLE_TIMEOUT_S,
				  MHD_OPTION_NOTIFY_COMPLETED, completed, h,
				  MHD_OPTION_NOTIFY_CONNECTION, tend_http_guard_notify, h->guard,
				  MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (!h->mhd) {
		tend_error_set("listen: cannot serve HTTP on %s%s%s:%d (address in use or not local?)",
			       sin6->sin6_family == AF_INET6 ? "[" : "", addr,
			       sin6->sin6_family == AF_INET6 ? "]" : "", opts->port);
		goto fail;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : opts->port;
	*out = h;
	return 0;
fail:
	tend_http_stop(h);
	return TEND_ERROR;
}

int tend_http_port(const tend_http *h)
{
	return h->port;
}

void tend_http_stop(tend_http *h)
{
	if (!h)
		return;
	tend_http_guard_stop(h->guard);   /* no socket shut down while the daemon stops */
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	tend_http_guard_free(h->guard);
	tend_http_set_hook_secret(h, NULL, 0);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
