/* The agent's main loop, OpenBSD-daemon style: signal handlers only set
 * flags (and poke a wake-up eventfd); one loop polls at an interval with
 * jitter, backs off exponentially after failures, runs a step at once when
 * woken (webhook), re-reads the configuration on SIGHUP and stops on SIGTERM.
 * The step is a callback, so the loop is independent of what it reconciles. */
#ifndef TEND_AGENT_DAEMON_H
#define TEND_AGENT_DAEMON_H

#include <signal.h>
#include <stdint.h>

typedef enum {
	TEND_TRIGGER_STARTUP = 0,
	TEND_TRIGGER_TIMER,        /* the steady poll interval */
	TEND_TRIGGER_RETRY,        /* backoff after a failed step */
	TEND_TRIGGER_WAKE          /* tend_daemon_wake(): a webhook */
} tend_daemon_trigger;

const char *tend_daemon_trigger_name(tend_daemon_trigger t);

typedef struct {
	tend_daemon_trigger trigger;
	unsigned failures;                 /* consecutive failed steps before this one */
	volatile sig_atomic_t *abort;      /* nonzero once SIGTERM/SIGINT arrived: stop
					      waiting, finish or undo, return */
} tend_daemon_step_args;

/* One unit of work (a reconcile). >= 0: success, next run after the interval;
 * < 0: failure, next run after the backoff. */
typedef int (*tend_daemon_step_fn)(void *ctx, const tend_daemon_step_args *args);
/* SIGHUP: re-read the configuration. 0 when the new one was swapped in (it
 * may change the fields of tend_daemon below); negative, with the error set,
 * when the old one is kept. */
typedef int (*tend_daemon_reload_fn)(void *ctx);

typedef struct {
	const char *lock_dir;          /* one agent per directory: flock(lock_dir/agent.lock) */
	uint64_t interval_ms;          /* steady poll interval */
	uint64_t jitter_ms;            /* + uniform random [0, jitter_ms] */
	uint64_t backoff_min_ms;       /* first retry after a failure; doubles... */
	uint64_t backoff_max_ms;       /* ...up to this (never above interval unless set so) */
	uint64_t step_limit_ms;        /* watchdog pings continue during a step up to this; 0: 2 h */
	tend_daemon_step_fn step;
	void *step_ctx;
	tend_daemon_reload_fn reload;  /* may be NULL */
	void *reload_ctx;
	/* Called once the lock is held, before READY=1 (start serving HTTP);
	 * a negative return stops the daemon with that error. May be NULL. */
	int (*start)(void *ctx);
	void *start_ctx;
	/* Work between steps (the liveness probes), in the loop like a step, every
	 * between_interval_ms (0: never; a reload may change it). Its return is only logged
	 * by the callee; it never changes the poll schedule. May be NULL. */
	int (*between)(void *ctx, volatile sig_atomic_t *abort);
	void *between_ctx;
	uint64_t between_interval_ms;
	/* Set by a step: leave the loop after it (sending RELOADING=1, not
	 * STOPPING=1) so that the caller can re-execute the agent. */
	int reexec;
	/* Set by a step: leave the loop after it and return 0 without
	 * RELOADING=1 or STOPPING=1, so that the caller exits and systemd
	 * (Restart=always) starts the unit anew. */
	int restart;
} tend_daemon;

/* The wait before the retry after `failures` consecutive failed steps (>= 1):
 * backoff_min_ms doubled per failure, capped at backoff_max_ms. */
uint64_t tend_daemon_backoff_ms(const tend_daemon *d, unsigned failures);

/* Run until SIGTERM/SIGINT (or tend_daemon_stop). Returns 0 on a clean stop,
 * TEND_ELOCKED when another agent holds the lock, negative on setup errors.
 * Sends READY=1, WATCHDOG=1 and STOPPING=1 when NOTIFY_SOCKET is set. */
int tend_daemon_run(tend_daemon *d);

/* Run a step as soon as possible. Thread-safe and async-signal-safe. */
void tend_daemon_wake(void);
/* Ask the loop to stop (after the step in progress, which is not aborted as
 * by SIGTERM). Thread-safe and async-signal-safe. */
void tend_daemon_stop(void);

#endif
