/* The loop. Signal handlers set sig_atomic_t flags and write to an eventfd so
 * that poll(2) returns at once; everything else happens in the loop. While a
 * step runs, a helper thread keeps the systemd watchdog fed, but only up to
 * step_limit_ms, so a hung step still gets the agent restarted. */
#include "agent/daemon.h"
#include "agent/log.h"
#include "agent/mem.h"
#include "agent/notify.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* Set by the handlers, which run only on the loop's thread: every other
 * thread of the agent is created with these signals blocked. */
static volatile sig_atomic_t got_term, got_hup;
/* Set from other threads (the HTTP server's, tests): lock-free atomics, which
 * are also safe to touch from a signal handler. */
static atomic_int wake_requested, stop_requested;
static atomic_int wake_fd = -1;

static void poke(void)
{
	uint64_t one = 1;
	int fd = atomic_load(&wake_fd), saved = errno;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* Counter saturated: the loop wakes anyway. */
	}
	errno = saved;
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
	poke();
}

void tend_daemon_wake(void)
{
	atomic_store(&wake_requested, 1);
	poke();
}

void tend_daemon_stop(void)
{
	atomic_store(&stop_requested, 1);
	poke();
}

static int stopping(void)
{
	return got_term || atomic_load(&stop_requested);
}

/* Block the signals the loop handles in the calling thread (so that threads
 * created meanwhile inherit the block); old receives the previous mask. */
static void block_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

const char *tend_daemon_trigger_name(tend_daemon_trigger t)
{
	switch (t) {
	case TEND_TRIGGER_STARTUP: return "startup";
	case TEND_TRIGGER_TIMER: return "timer";
	case TEND_TRIGGER_RETRY: return "retry";
	case TEND_TRIGGER_WAKE: return "webhook";
	}
	return "unknown";
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t jitter(uint64_t max_ms)
{
	if (max_ms == 0)
		return 0;
	if (max_ms >= UINT32_MAX)
		max_ms = UINT32_MAX - 1;
	return randombytes_uniform((uint32_t)max_ms + 1);
}

uint64_t tend_daemon_backoff_ms(const tend_daemon *d, unsigned failures)
{
	uint64_t min = d->backoff_min_ms ? d->backoff_min_ms : 1000;
	uint64_t max = d->backoff_max_ms ? d->backoff_max_ms : 300000;
	unsigned shift = failures > 0 ? failures - 1 : 0;

	if (shift > 30)
		shift = 30;
	return (min << shift) > max ? max : (min << shift);
}

static int lock_take(int *out, const char *dir)
{
	char *path = NULL, pid[32];
	int fd = -1, error = TEND_ERROR;

	if ((error = tend_dir_create_all(dir, 0700)) < 0)
		return error;
	error = TEND_ERROR;
	if (!(path = tend_path_join(dir, "agent.lock")))
		return TEND_ERROR;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		tend_error_set_errno("cannot open %s", path);
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			tend_error_set("another tend agent already runs for %s (lock %s)", dir, path);
			error = TEND_ELOCKED;
		} else {
			tend_error_set_errno("cannot lock %s", path);
		}
		goto out;
	}
	/* The holder's pid, for an operator wondering who holds it. */
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || write(fd, pid, strlen(pid)) < 0) {
		/* Informational only. */
	}
	*out = fd;
	fd = -1;
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return error;
}

/* Watchdog pings while a step runs, up to a limit. */
typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	uint64_t every_ms, limit_ms;
} guard;

static void *guard_main(void *arg)
{
	guard *g = arg;
	uint64_t start = now_ms();
	struct timespec ts;

	pthread_mutex_lock(&g->lock);
	while (!g->done) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(g->every_ms / 1000);
		ts.tv_nsec += (long)(g->every_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->cond, &g->lock, &ts);
		if (g->done)
			break;
		if (now_ms() - start < g->limit_ms)
			tend_notify("WATCHDOG=1");
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* A step (between 0) or the work between steps (1), the watchdog fed meanwhile. */
static int run_step(tend_daemon *d, tend_daemon_trigger trigger, unsigned failures,
		    uint64_t watchdog_every, int between)
{
	tend_daemon_step_args args;
	guard g;
	pthread_t th;
	int have_thread = 0, rc;

	args.trigger = trigger;
	args.failures = failures;
	args.abort = &got_term;
	if (watchdog_every) {
		memset(&g, 0, sizeof(g));
		pthread_mutex_init(&g.lock, NULL);
		pthread_cond_init(&g.cond, NULL);
		g.every_ms = watchdog_every;
		g.limit_ms = d->step_limit_ms ? d->step_limit_ms : 2 * 3600 * 1000;
		sigset_t old;

		block_signals(&old);
		have_thread = pthread_create(&th, NULL, guard_main, &g) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	rc = between ? d->between(d->between_ctx, &got_term) : d->step(d->step_ctx, &args);
	tend_agent_mem_release();   /* idle until the next step: give back what it freed */
	if (have_thread) {
		pthread_mutex_lock(&g.lock);
		g.done = 1;
		pthread_cond_signal(&g.cond);
		pthread_mutex_unlock(&g.lock);
		pthread_join(th, NULL);
	}
	if (watchdog_every) {
		pthread_mutex_destroy(&g.lock);
		pthread_cond_destroy(&g.cond);
	}
	return rc;
}

int tend_daemon_run(tend_daemon *d)
{
	struct sigaction sa, old_term, old_int, old_hup, old_pipe;
	uint64_t next, now, watchdog_ms, ping_every = 0, next_ping = 0, next_between = 0;
	tend_daemon_trigger trigger = TEND_TRIGGER_STARTUP;
	unsigned failures = 0;
	sigset_t old_mask;
	int lock_fd = -1, efd = -1, have_signals = 0, have_mask = 0, error = TEND_ERROR, rc;

	if (!d->step || !d->lock_dir) {
		tend_error_set("daemon: no step or lock directory");
		return TEND_EINVALID;
	}
	if ((error = lock_take(&lock_fd, d->lock_dir)) < 0)
		return error;
	/* Threads the start hook creates (HTTP, mail) must never take our signals. */
	block_signals(&old_mask);
	have_mask = 1;
	if (d->start && (error = d->start(d->start_ctx)) < 0)
		goto out;
	error = TEND_ERROR;
	if ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		tend_error_set_errno("eventfd");
		goto out;
	}
	got_term = got_hup = 0;
	atomic_store(&wake_requested, 0);
	atomic_store(&stop_requested, 0);
	atomic_store(&wake_fd, efd);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGHUP, &sa, &old_hup);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);
	have_signals = 1;
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	have_mask = 0;

	watchdog_ms = tend_notify_watchdog_ms();
	if (watchdog_ms)
		ping_every = watchdog_ms / 2 ? watchdog_ms / 2 : 1;
	if (tend_notify("READY=1") < 0)
		tend_log(TEND_LOG_WARNING, "sd_notify: %s", tend_error_last());
	tend_log(TEND_LOG_INFO, "agent started (pid %ld, poll every %llus + up to %llus jitter)",
		 (long)getpid(), (unsigned long long)(d->interval_ms / 1000),
		 (unsigned long long)(d->jitter_ms / 1000));
	next = now_ms();
	next_ping = next;
	while (!stopping()) {
		struct pollfd pfd;
		uint64_t timeout;

		if (got_hup) {
			got_hup = 0;
			if (!d->reload) {
				tend_log(TEND_LOG_NOTICE, "SIGHUP: nothing to reload");
			} else if (d->reload(d->reload_ctx) < 0) {
				tend_log(TEND_LOG_ERR, "SIGHUP: keeping the previous configuration: %s",
					 tend_error_last());
			} else {
				tend_log(TEND_LOG_NOTICE, "SIGHUP: configuration reloaded");
			}
		}
		if (atomic_exchange(&wake_requested, 0)) {
			trigger = TEND_TRIGGER_WAKE;
			next = now_ms();
		}
		now = now_ms();
		if (now >= next) {
			tend_log(trigger == TEND_TRIGGER_WAKE ? TEND_LOG_INFO : TEND_LOG_DEBUG,
				 "reconcile triggered by %s", tend_daemon_trigger_name(trigger));
			rc = run_step(d, trigger, failures, ping_every, 0);
			now = now_ms();
			if (stopping() || d->reexec || d->restart)
				break;
			if (rc >= 0) {
				failures = 0;
				trigger = TEND_TRIGGER_TIMER;
				next = now + d->interval_ms + jitter(d->jitter_ms);
			} else {
				uint64_t delay = tend_daemon_backoff_ms(d, ++failures);

				trigger = TEND_TRIGGER_RETRY;
				next = now + delay;
				tend_log(TEND_LOG_WARNING, "step failed (%u in a row); retrying in %llu ms",
					 failures, (unsigned long long)delay);
			}
		}
		if (!d->between || !d->between_interval_ms) {
			next_between = 0;
		} else if (!next_between || next_between > now + d->between_interval_ms) {
			next_between = now + d->between_interval_ms;
		} else if (now >= next_between && now < next) {
			run_step(d, trigger, failures, ping_every, 1);
			now = now_ms();
			if (stopping())
				break;
			next_between = now + d->between_interval_ms;
		}
		if (ping_every && now >= next_ping) {
			tend_notify("WATCHDOG=1");
			next_ping = now + ping_every;
		}
		timeout = next > now ? next - now : 0;
		if (next_between && (next_between > now ? next_between - now : 0) < timeout)
			timeout = next_between > now ? next_between - now : 0;
		if (ping_every && (next_ping > now ? next_ping - now : 0) < timeout)
			timeout = next_ping > now ? next_ping - now : 0;
		if (timeout > 60000)
			timeout = 60000;
		pfd.fd = efd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)timeout) > 0) {
			uint64_t v;

			if (read(efd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another reader drained it; the flags tell what happened. */
			}
		}
	}
	if (d->restart && !stopping()) {
		/* Said why in the step; systemd sees the main process exit. */
		d->reexec = 0;
	} else if (d->reexec && !stopping()) {
		tend_notify("RELOADING=1");
	} else {
		d->restart = 0;
		d->reexec = 0;
		tend_log(TEND_LOG_INFO, "agent stopping");
		tend_notify("STOPPING=1");
	}
	error = 0;
out:
	if (have_signals) {
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGHUP, &old_hup, NULL);
		sigaction(SIGPIPE, &old_pipe, NULL);
	}
	if (have_mask)
		pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	atomic_store(&wake_fd, -1);
	if (efd >= 0)
		close(efd);
	if (lock_fd >= 0)
		close(lock_fd);
	return error;
}
