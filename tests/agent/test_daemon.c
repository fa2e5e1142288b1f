/* The daemon loop with a step that records its calls: steady interval,
 * exponential backoff after failures, an immediate run when woken, the lock,
 * and real signals to a real process: SIGTERM during a (fake) probe wait exits
 * 0 at once, SIGHUP with a broken configuration keeps the old one and says why,
 * sd_notify datagrams. */
#include "tests/agent/helpers.h"
#include "agent/daemon.h"
#include "agent/log.h"
#include "util/error.h"

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/un.h>

/* ---- in-process: the loop in a thread, stopped with tend_daemon_stop() ---- */

typedef struct {
	pthread_mutex_t lock;
	long long at[32];
	tend_daemon_trigger trig[32];
	int n, fail_first;
	tend_daemon d;
	int rc;
} rec;

static int rec_step(void *ctx, const tend_daemon_step_args *a)
{
	rec *r = ctx;
	int i;

	pthread_mutex_lock(&r->lock);
	i = r->n;
	if (r->n < 32) {
		r->at[r->n] = test_now_ms();
		r->trig[r->n] = a->trigger;
		r->n++;
	}
	pthread_mutex_unlock(&r->lock);
	return i < r->fail_first ? -1 : 0;
}

static int rec_count(rec *r)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void *loop_main(void *arg)
{
	rec *r = arg;

	r->rc = tend_daemon_run(&r->d);
	return NULL;
}

static int wait_calls(rec *r, int n, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;

	while (rec_count(r) < n && test_now_ms() < end)
		test_sleep_ms(5);
	return rec_count(r) >= n;
}

static void test_interval_backoff_and_wake(void **state)
{
	char *dir = test_tmpdir_make("daemon");
	rec *r = calloc(1, sizeof(*r));
	pthread_t th;
	long long woke;
	int i;

	pthread_mutex_init(&r->lock, NULL);
	r->fail_first = 3;
	r->d.lock_dir = dir;
	r->d.interval_ms = 2000;
	r->d.jitter_ms = 0;
	r->d.backoff_min_ms = 60;
	r->d.backoff_max_ms = 150;
	r->d.step = rec_step;
	r->d.step_ctx = r;
	assert_int_equal(pthread_create(&th, NULL, loop_main, r), 0);
	/* startup, 3 retries (60, 120, 150 ms), then the steady interval (2 s). */
	assert_true(wait_calls(r, 5, 10000));
	assert_int_equal(r->trig[0], TEND_TRIGGER_STARTUP);
	for (i = 1; i <= 3; i++)
		assert_int_equal(r->trig[i], TEND_TRIGGER_RETRY);
	assert_int_equal(r->trig[4], TEND_TRIGGER_TIMER);
	/* The exact schedule is test_backoff_schedule's; here, on a machine that
	 * may be loaded, each retry waits at least its backoff and comes well
	 * before the steady interval, which the next step respects. */
	assert_in_range(r->at[1] - r->at[0], 60, 1900);
	assert_in_range(r->at[2] - r->at[1], 120, 1900);
	assert_in_range(r->at[3] - r->at[2], 150, 1900);
	assert_true(r->at[4] - r->at[3] >= 2000);
	/* A wake runs a step at once, before the next interval would. */
	woke = test_now_ms();
	tend_daemon_wake();
	assert_true(wait_calls(r, 6, 2000));
	assert_int_equal(r->trig[5], TEND_TRIGGER_WAKE);
	assert_true(r->at[5] - woke < 1900);
	tend_daemon_stop();
	pthread_join(th, NULL);
	assert_int_equal(r->rc, 0);
	pthread_mutex_destroy(&r->lock);
	free(r);
	test_tmpdir_remove(dir);
}

/* Work between steps (liveness): at its own interval while the poll interval is long, never
 * in place of a step, and not at all with an interval of 0. */
typedef struct {
	rec r;
	int between;
	long long first;
} brec;

static int rec_between(void *ctx, volatile sig_atomic_t *abort)
{
	brec *b = ctx;

	(void)abort;
	pthread_mutex_lock(&b->r.lock);
	if (!b->between++)
		b->first = test_now_ms();
	pthread_mutex_unlock(&b->r.lock);
	return 0;
}

static void test_between_steps(void **state)
{
	char *dir = test_tmpdir_make("daemon-between");
	brec *b = calloc(1, sizeof(*b));
	pthread_t th;
	long long t0 = test_now_ms(), end;
	int n;

	(void)state;
	pthread_mutex_init(&b->r.lock, NULL);
	b->r.d.lock_dir = dir;
	b->r.d.interval_ms = 60000;
	b->r.d.backoff_min_ms = 60;
	b->r.d.backoff_max_ms = 150;
	b->r.d.step = rec_step;
	b->r.d.step_ctx = &b->r;
	b->r.d.between = rec_between;
	b->r.d.between_ctx = b;
	b->r.d.between_interval_ms = 200;
	assert_int_equal(pthread_create(&th, NULL, loop_main, &b->r), 0);
	end = test_now_ms() + 5000;
	do {
		test_sleep_ms(20);
		pthread_mutex_lock(&b->r.lock);
		n = b->between;
		pthread_mutex_unlock(&b->r.lock);
	} while (n < 5 && test_now_ms() < end);
	tend_daemon_stop();
	pthread_join(th, NULL);
	assert_true(n >= 5);
	/* the first one an interval after the start, and the poll step ran once (startup) */
	assert_true(b->first - t0 >= 200);
	assert_int_equal(rec_count(&b->r), 1);
	/* interval 0: never */
	b->between = 0;
	b->r.n = 0;
	b->r.d.between_interval_ms = 0;
	b->r.d.interval_ms = 100;
	assert_int_equal(pthread_create(&th, NULL, loop_main, &b->r), 0);
	assert_true(wait_calls(&b->r, 4, 5000));
	tend_daemon_stop();
	pthread_join(th, NULL);
	assert_int_equal(b->between, 0);
	pthread_mutex_destroy(&b->r.lock);
	free(b);
	test_tmpdir_remove(dir);
}

static void test_backoff_schedule(void **state)
{
	tend_daemon d;

	memset(&d, 0, sizeof(d));
	d.backoff_min_ms = 60;
	d.backoff_max_ms = 150;
	assert_int_equal(tend_daemon_backoff_ms(&d, 1), 60);
	assert_int_equal(tend_daemon_backoff_ms(&d, 2), 120);
	assert_int_equal(tend_daemon_backoff_ms(&d, 3), 150);   /* capped */
	assert_int_equal(tend_daemon_backoff_ms(&d, 40), 150);  /* no overflow */
	d.backoff_min_ms = 5000;
	d.backoff_max_ms = 300000;
	assert_int_equal(tend_daemon_backoff_ms(&d, 1), 5000);
	assert_int_equal(tend_daemon_backoff_ms(&d, 5), 80000);
	assert_int_equal(tend_daemon_backoff_ms(&d, 7), 300000);
}

static void test_jitter_stays_in_range(void **state)
{
	char *dir = test_tmpdir_make("daemon");
	rec *r = calloc(1, sizeof(*r));
	pthread_t th;
	int i;

	pthread_mutex_init(&r->lock, NULL);
	r->d.lock_dir = dir;
	r->d.interval_ms = 20;
	r->d.jitter_ms = 60;
	r->d.step = rec_step;
	r->d.step_ctx = r;
	assert_int_equal(pthread_create(&th, NULL, loop_main, r), 0);
	assert_true(wait_calls(r, 12, 10000));
	tend_daemon_stop();
	pthread_join(th, NULL);
	for (i = 1; i < 12; i++)
		assert_in_range(r->at[i] - r->at[i - 1], 20, 20 + 60 + 1500); /* slack for load */
	pthread_mutex_destroy(&r->lock);
	free(r);
	test_tmpdir_remove(dir);
}

static void test_one_agent_per_state_dir(void **state)
{
	char *dir = test_tmpdir_make("daemon");
	rec *r = calloc(1, sizeof(*r));
	tend_daemon second;
	pthread_t th;

	pthread_mutex_init(&r->lock, NULL);
	r->d.lock_dir = dir;
	r->d.interval_ms = 60000;
	r->d.step = rec_step;
	r->d.step_ctx = r;
	assert_int_equal(pthread_create(&th, NULL, loop_main, r), 0);
	assert_true(wait_calls(r, 1, 5000));
	second = r->d;
	assert_int_equal(tend_daemon_run(&second), TEND_ELOCKED);
	assert_non_null(strstr(tend_error_last(), dir));
	tend_daemon_stop();
	pthread_join(th, NULL);
	/* Released on exit: a new agent may start. */
	assert_int_equal(pthread_create(&th, NULL, loop_main, r), 0);
	assert_true(wait_calls(r, 2, 5000));
	tend_daemon_stop();
	pthread_join(th, NULL);
	assert_int_equal(r->rc, 0);
	pthread_mutex_destroy(&r->lock);
	free(r);
	test_tmpdir_remove(dir);
}

/* ---- a real process receiving real signals ---- */

typedef struct {
	const char *dir;
	char current[64];
} child_ctx;

/* A step that behaves like a probe wait: 30 s unless aborted. */
static int probe_step(void *ctx, const tend_daemon_step_args *a)
{
	child_ctx *c = ctx;
	long long end = test_now_ms() + 30000;

	test_write_file(c->dir, "events", "probe-wait\n");
	while (!*a->abort && test_now_ms() < end)
		test_sleep_ms(10);
	test_write_file(c->dir, "events", *a->abort ? "probe-wait\nabandoned\n" : "probe-wait\ndone\n");
	return 0;
}

/* The "configuration" is a file; valid when it starts with "interval:". */
static int file_reload(void *ctx)
{
	child_ctx *c = ctx;
	char *path = NULL, *text;

	assert_true(asprintf(&path, "%s/config", c->dir) > 0);
	text = test_read_file(path);
	free(path);
	if (!text || strncmp(text, "interval:", 9)) {
		tend_error_set("%s/config:1:1: expected 'interval:'", c->dir);
		free(text);
		return TEND_EINVALID;
	}
	snprintf(c->current, sizeof(c->current), "%.*s", (int)strcspn(text, "\n"), text);
	free(text);
	return 0;
}

static int idle_step(void *ctx, const tend_daemon_step_args *a)
{
	child_ctx *c = ctx;
	char line[128];

	snprintf(line, sizeof(line), "config in use: %s\n", c->current);
	test_write_file(c->dir, "events", line);
	return 0;
}

static pid_t start_child(const char *dir, int probe)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		static child_ctx c;
		tend_daemon d;
		char *log = NULL;
		int fd;

		/* Never outlive a failed test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (asprintf(&log, "%s/log", dir) < 0)
			_exit(3);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		tend_log_set_level(TEND_LOG_DEBUG);
		memset(&d, 0, sizeof(d));
		c.dir = dir;
		snprintf(c.current, sizeof(c.current), "interval: 1s");
		d.lock_dir = dir;
		d.interval_ms = probe ? 60000 : 100;
		d.step = probe ? probe_step : idle_step;
		d.step_ctx = &c;
		d.reload = file_reload;
		d.reload_ctx = &c;
		_exit(tend_daemon_run(&d) == 0 ? 0 : 1);
	}
	return pid;
}

static int wait_file_has(const char *dir, const char *rel, const char *needle, long timeout_ms)
{
	long long end = test_now_ms() + timeout_ms;
	char *path = NULL;
	int found = 0;

	assert_true(asprintf(&path, "%s/%s", dir, rel) > 0);
	do {
		char *text = test_read_file(path);

		found = text && strstr(text, needle);
		free(text);
		if (!found)
			test_sleep_ms(10);
	} while (!found && test_now_ms() < end);
	free(path);
	return found;
}

static void test_sigterm_during_probe_wait(void **state)
{
	char *dir = test_tmpdir_make("daemon");
	pid_t pid = start_child(dir, 1);
	long long sent;
	int status;

	assert_true(wait_file_has(dir, "events", "probe-wait", 10000));
	sent = test_now_ms();
	status = test_signal_wait(pid, SIGTERM, 5000);
	assert_true(status != -1);
	assert_true(test_now_ms() - sent < 4000); /* not the probe wait's 30 s */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(wait_file_has(dir, "events", "abandoned", 0));
	assert_true(wait_file_has(dir, "log", "agent stopping", 0));
	test_tmpdir_remove(dir);
}

static void test_sighup_broken_config_keeps_old(void **state)
{
	char *dir = test_tmpdir_make("daemon");
	pid_t pid;
	int status;

	test_write_file(dir, "config", "interval: 1s\n");
	pid = start_child(dir, 0);
	assert_true(wait_file_has(dir, "events", "config in use: interval: 1s", 10000));
	test_write_file(dir, "config", "intervl: 5s\n");
	kill(pid, SIGHUP);
	assert_true(wait_file_has(dir, "log", "SIGHUP: keeping the previous configuration: ", 5000));
	assert_true(wait_file_has(dir, "log", "config:1:1: expected 'interval:'", 0));
	test_sleep_ms(300);
	/* Still running, on the old configuration. */
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
	/* The step rewrites the file every 100 ms: a read may fall between the
	 * truncation and the write, so look for a while. */
	assert_true(wait_file_has(dir, "events", "config in use: interval: 1s", 2000));
	/* A valid one is swapped in. */
	test_write_file(dir, "config", "interval: 2s\n");
	kill(pid, SIGHUP);
	assert_true(wait_file_has(dir, "log", "SIGHUP: configuration reloaded", 5000));
	assert_true(wait_file_has(dir, "events", "config in use: interval: 2s", 5000));
	status = test_signal_wait(pid, SIGTERM, 5000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	test_tmpdir_remove(dir);
}

static void test_sd_notify(void **state)
{
	char *dir = test_tmpdir_make("daemon"), *sock = NULL, buf[256];
	struct sockaddr_un sa;
	int fd, status, ready = 0, watchdog = 0, stopping = 0;
	struct timeval tv = { 0, 100000 };
	long long end;
	pid_t pid;

	assert_true(asprintf(&sock, "%s/notify", dir) > 0);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("NOTIFY_SOCKET", sock, 1);
	setenv("WATCHDOG_USEC", "200000", 1);   /* ping every 100 ms */
	unsetenv("WATCHDOG_PID");
	pid = start_child(dir, 1);              /* the step waits: pings come from the guard */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	end = test_now_ms() + 5000;
	while (test_now_ms() < end && (!ready || watchdog < 3)) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n <= 0)
			continue;
		buf[n] = '\0';
		ready += !strcmp(buf, "READY=1");
		watchdog += !strcmp(buf, "WATCHDOG=1");
	}
	assert_int_equal(ready, 1);
	assert_true(watchdog >= 3);
	kill(pid, SIGTERM);
	end = test_now_ms() + 5000;
	while (test_now_ms() < end && !stopping) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n > 0) {
			buf[n] = '\0';
			stopping = !strcmp(buf, "STOPPING=1");
		}
	}
	assert_true(stopping);
	status = test_signal_wait(pid, 0, 5000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
	free(sock);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interval_backoff_and_wake),
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_between_steps),
		cmocka_unit_test(test_jitter_stays_in_range),
		cmocka_unit_test(test_one_agent_per_state_dir),
		cmocka_unit_test(test_sigterm_during_probe_wait),
		cmocka_unit_test(test_sighup_broken_config_keeps_old),
		cmocka_unit_test(test_sd_notify),
	};

	tend_log_set_level(TEND_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
