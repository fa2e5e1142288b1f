/* The agent's HTTP endpoint (libmicrohttpd, its own polling thread):
 * GET /healthz, GET /v1/status, GET /metrics, and POST /v1/hook, which
 * triggers an immediate fetch when the body is signed with the shared secret. */
#ifndef TEND_AGENT_HTTP_H
#define TEND_AGENT_HTTP_H

#include <stddef.h>
#include "agent/status.h"

#define TEND_HTTP_BODY_MAX (64 * 1024)

/* The endpoint's limits (docs/security.md, the HTTP endpoint): connections in
 * all and from one address; a connection idle this long is closed; a request
 * not answered this long after its connection (or its previous request)
 * began is cut, however it trickles; when three quarters of the connections
 * are in use, an address already holding two gets no more, so a new client
 * (a health check) still gets in. */
#define TEND_HTTP_MAX_CONNECTIONS 256
#define TEND_HTTP_MAX_PER_ADDRESS 8
#define TEND_HTTP_IDLE_TIMEOUT_S 5
#define TEND_HTTP_REQUEST_DEADLINE_MS 5000
/* Webhook deliveries: one with a delivery id seen before (X-GitHub-Delivery,
 * X-Gitea-Delivery, X-Gogs-Delivery, X-Tend-Delivery; the last this many) is
 * answered 200 and ignored; accepted ones trigger at most one fetch per
 * interval, the rest of an interval's deliveries folded into one trigger at
 * its end (never lost, never repeated). */
#define TEND_HTTP_HOOK_IDS 64
#define TEND_HTTP_HOOK_INTERVAL_MS 2000

typedef struct {
	const char *address;              /* IPv4 or IPv6 literal; NULL: 127.0.0.1 */
	int port;                         /* 0: an ephemeral port (see tend_http_port) */
	const unsigned char *hook_secret; /* copied; NULL: every hook gets 401 */
	size_t hook_secret_len;
	size_t max_body;                  /* 0: TEND_HTTP_BODY_MAX; larger bodies get 413 */
	void (*on_hook)(void *ctx);       /* called from the HTTP or its timer thread; quick */
	void *hook_ctx;
	tend_agent_status *status;        /* read under its mutex */
} tend_http_opts;

typedef struct tend_http tend_http;

/* Listen and serve in a background thread. TEND_EINVALID for a bad address,
 * TEND_ERROR when the socket cannot be bound (the error names address:port). */
int tend_http_start(tend_http **out, const tend_http_opts *opts);
/* The port actually bound. */
int tend_http_port(const tend_http *h);
/* Swap the webhook secret (configuration reload); copied, NULL disables. */
int tend_http_set_hook_secret(tend_http *h, const unsigned char *secret, size_t len);
/* Stop serving and free; NULL is fine. */
void tend_http_stop(tend_http *h);

#endif
