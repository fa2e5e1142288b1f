/* What keeps the HTTP endpoint answering under abuse (agent/http.c uses it):
 * connection accounting with a fair-share accept policy, a whole-request
 * deadline enforced by a timer thread, and webhook dedupe and rate limit. */
#ifndef TEND_AGENT_HTTP_GUARD_H
#define TEND_AGENT_HTTP_GUARD_H

#include <microhttpd.h>
#include <sys/socket.h>

typedef struct tend_http_guard tend_http_guard;

typedef enum {
	TEND_HOOK_FIRED,       /* the trigger ran now */
	TEND_HOOK_FOLDED,      /* within the interval: one trigger at its end */
	TEND_HOOK_DUPLICATE    /* a delivery id seen before: nothing */
} tend_hook_verdict;

/* fire(ctx) is the webhook trigger (may be NULL); called from the HTTP
 * thread or the guard's own. */
int tend_http_guard_new(tend_http_guard **out, void (*fire)(void *ctx), void *ctx);
/* Stop the timer thread (before the daemon stops: no socket is shut down
 * afterwards). NULL is fine. */
void tend_http_guard_stop(tend_http_guard *g);
/* Free; after the daemon stopped (its close notifications use the guard). */
void tend_http_guard_free(tend_http_guard *g);

/* libmicrohttpd callbacks: cls is the guard. */
enum MHD_Result tend_http_guard_accept(void *cls, const struct sockaddr *addr, socklen_t len);
void tend_http_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
			    enum MHD_ConnectionNotificationCode code);
/* A response was queued on c: its next request's deadline starts now. */
void tend_http_guard_request_done(tend_http_guard *g, struct MHD_Connection *c);

/* An accepted (signature checked) delivery, with its id header (may be NULL). */
tend_hook_verdict tend_http_guard_hook(tend_http_guard *g, const char *delivery_id);

#endif
