/* The endpoint's guard: connection accounting, a whole-request deadline cut
 * by a timer thread with shutdown(2), the fair-share accept policy, and the
 * webhook's delivery-id dedupe and trigger interval. */
#include "agent/http_guard.h"
#include "agent/http.h"
#include "agent/log.h"
#include "util/error.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct guard_conn {
	struct guard_conn *prev, *next;
	int fd;
	int64_t since_ms;        /* the current request's start */
	int cut;
	struct sockaddr_storage addr;
	socklen_t addr_len;
} guard_conn;

struct tend_http_guard {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t timer;
	int running, stopping;
	guard_conn *conns;
	size_t n_conns;
	void (*fire)(void *ctx);
	void *ctx;
	int64_t last_fire_ms;    /* 0: never */
	int pending;             /* a folded delivery waits for the interval's end */
	char ids[TEND_HTTP_HOOK_IDS][129];
	size_t next_id;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int same_address(const struct sockaddr *a, socklen_t alen, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return 0;
	if (a->sa_family == AF_INET && alen >= (socklen_t)sizeof(struct sockaddr_in))
		return !memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			       &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr));
	if (a->sa_family == AF_INET6 && alen >= (socklen_t)sizeof(struct sockaddr_in6))
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
	return 0;
}

/* Every 200 ms: cut connections past their deadline, fire a folded delivery
 * whose interval ended. libmicrohttpd's own timeout counts only idle time, so
 * a client sending a byte every few seconds held a connection for ever. The
 * socket is shut down, never closed: libmicrohttpd sees the end and closes
 * it. An entry leaves the list under the lock in the close notification,
 * before libmicrohttpd closes the descriptor, so a shutdown never reaches a
 * reused descriptor. */
static void *timer_main(void *arg)
{
	tend_http_guard *g = arg;
	guard_conn *c;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		struct timespec until;
		int64_t now = now_ms();
		int fire = 0;

		for (c = g->conns; c; c = c->next)
			if (!c->cut && now - c->since_ms > TEND_HTTP_REQUEST_DEADLINE_MS) {
				shutdown(c->fd, SHUT_RDWR);
				c->cut = 1;
			}
		if (g->pending && now - g->last_fire_ms >= TEND_HTTP_HOOK_INTERVAL_MS) {
			g->pending = 0;
			g->last_fire_ms = now;
			fire = 1;
		}
		if (fire && g->fire) {
			pthread_mutex_unlock(&g->lock);
			g->fire(g->ctx);
			pthread_mutex_lock(&g->lock);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->wake, &g->lock, &until);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int tend_http_guard_new(tend_http_guard **out, void (*fire)(void *ctx), void *ctx)
{
	tend_http_guard *g;

	*out = NULL;
	if (!(g = calloc(1, sizeof(*g)))) {
		tend_error_set("http: out of memory");
		return TEND_ERROR;
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->wake, NULL);
	g->fire = fire;
	g->ctx = ctx;
	if (pthread_create(&g->timer, NULL, timer_main, g) != 0) {
		tend_error_set("http: cannot start the request timer");
		tend_http_guard_free(g);
		return TEND_ERROR;
	}
	g->running = 1;
	*out = g;
	return 0;
}

void tend_http_guard_stop(tend_http_guard *g)
{
	if (!g || !g->running)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->timer, NULL);
	g->running = 0;
}

void tend_http_guard_free(tend_http_guard *g)
{
	guard_conn *c, *next;

	if (!g)
		return;
	tend_http_guard_stop(g);
	for (c = g->conns; c; c = next) {   /* none once the daemon stopped */
		next = c->next;
		free(c);
	}
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

enum MHD_Result tend_http_guard_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	tend_http_guard *g = cls;
	const guard_conn *c;
	size_t mine = 0;
	enum MHD_Result ok = MHD_YES;

	pthread_mutex_lock(&g->lock);
	if (g->n_conns >= TEND_HTTP_MAX_CONNECTIONS * 3 / 4) {
		for (c = g->conns; c && mine < 2; c = c->next)
			if (same_address(addr, len, &c->addr))
				mine++;
		if (mine >= 2)
			ok = MHD_NO;
	}
	pthread_mutex_unlock(&g->lock);
	return ok;
}

void tend_http_guard_notify(void *cls, struct MHD_Connection *mc, void **socket_context,
			    enum MHD_ConnectionNotificationCode code)
{
	tend_http_guard *g = cls;
	guard_conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ad = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		if (!fd || !(c = calloc(1, sizeof(*c))))
			return;   /* untracked: the idle timeout still applies */
		c->fd = fd->connect_fd;
		c->since_ms = now_ms();
		if (ad && ad->client_addr) {
			c->addr_len = ad->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
									       : sizeof(struct sockaddr_in);
			memcpy(&c->addr, ad->client_addr, c->addr_len);
		}
		pthread_mutex_lock(&g->lock);
		c->next = g->conns;
		if (g->conns)
			g->conns->prev = c;
		g->conns = c;
		g->n_conns++;
		pthread_mutex_unlock(&g->lock);
		*socket_context = c;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
		pthread_mutex_lock(&g->lock);
		if (c->prev)
			c->prev->next = c->next;
		else
			g->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		g->n_conns--;
		pthread_mutex_unlock(&g->lock);
		free(c);
		*socket_context = NULL;
	}
}

void tend_http_guard_request_done(tend_http_guard *g, struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ctx = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	guard_conn *c = ctx ? ctx->socket_context : NULL;

	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	c->since_ms = now_ms();
	pthread_mutex_unlock(&g->lock);
}

tend_hook_verdict tend_http_guard_hook(tend_http_guard *g, const char *id)
{
	tend_hook_verdict v = TEND_HOOK_FOLDED;
	int64_t now = now_ms();
	size_t i;

	pthread_mutex_lock(&g->lock);
	if (id && *id) {
		for (i = 0; i < TEND_HTTP_HOOK_IDS; i++)
			if (!strncmp(g->ids[i], id, sizeof(g->ids[i]) - 1) && g->ids[i][0]) {
				pthread_mutex_unlock(&g->lock);
				return TEND_HOOK_DUPLICATE;
			}
		strncpy(g->ids[g->next_id], id, sizeof(g->ids[0]) - 1);
		g->ids[g->next_id][sizeof(g->ids[0]) - 1] = '\0';
		g->next_id = (g->next_id + 1) % TEND_HTTP_HOOK_IDS;
	}
	if (!g->last_fire_ms || now - g->last_fire_ms >= TEND_HTTP_HOOK_INTERVAL_MS) {
		g->last_fire_ms = now;
		v = TEND_HOOK_FIRED;
	} else {
		g->pending = 1;   /* the timer fires it when the interval ends */
	}
	pthread_mutex_unlock(&g->lock);
	if (v == TEND_HOOK_FIRED && g->fire)
		g->fire(g->ctx);
	return v;
}
