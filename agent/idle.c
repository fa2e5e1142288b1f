/* Idle polls (agent/idle.h): the decision whether a timer poll may only look
 * at the remote head, and the remote-head checker built from the repository
 * settings the workers use. */
#include "agent/idle.h"
#include "agent/config.h"
#include "agent/log.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The same remote, branch, credentials, known_hosts and CA file as the
 * worker's fetch (reconcile.c), with its default time limits. */
static int watch_open(tend_source_watch **out, const tend_config *cfg)
{
	tend_source_opts so = TEND_SOURCE_OPTS_INIT;

	so.url = cfg->repository.url;
	so.branch = cfg->repository.branch;
	so.known_hosts = cfg->repository.known_hosts;
	so.ssh_key = cfg->repository.ssh_key_file;
	so.ssh_passphrase_file = cfg->repository.ssh_passphrase_file;
	so.https_token_file = cfg->repository.token_file;
	so.https_basic_file = cfg->repository.basic_auth_file;
	so.ca_file = cfg->repository.ca_file;
	return tend_source_watch_open(out, &so);
}

static int resume_asked(const tend_config *cfg)
{
	char *path = tend_path_join(cfg->state_dir, TEND_RESUME_FILE);
	int asked = path && tend_path_exists(path);

	free(path);
	return asked;
}

static int look(tend_agent_idle *s, const tend_config *cfg, tend_daemon_trigger trigger)
{
	char head[41];

	if (trigger != TEND_TRIGGER_TIMER || s->force_full || !s->head[0] ||
	    !cfg->poll.drift_interval_ms || now_ms() - s->last_full_ms >= cfg->poll.drift_interval_ms)
		return 0;
	if (resume_asked(cfg))
		return 0;   /* tend resume: the hold is lifted by a full reconcile, now */
	if (s->window_opens && time(NULL) >= s->window_opens)
		return 0;   /* the apply window (or the reboot window) opened */
	if (!s->watch && watch_open(&s->watch, cfg) < 0) {
		tend_log(TEND_LOG_DEBUG, "remote head check: %s", tend_error_last());
		return 0;
	}
	if (tend_source_watch_head(s->watch, head) < 0) {
		tend_log(TEND_LOG_DEBUG, "remote head check: %s (reconciling)", tend_error_last());
		return 0;
	}
	if (strcmp(head, s->head)) {
		tend_log(TEND_LOG_INFO, "the branch moved: %.12s -> %.12s", s->head, head);
		return 0;
	}
	return 1;
}

int tend_agent_idle_begin(tend_agent_idle *s, const tend_config *cfg, tend_daemon_trigger trigger)
{
	if (look(s, cfg, trigger))
		return 1;
	s->head[0] = '\0';
	s->force_full = 0;
	s->window_opens = 0;
	s->last_full_ms = now_ms();
	return 0;
}

void tend_agent_idle_concluded(tend_agent_idle *s, const tend_reconcile_report *r, int aborted)
{
	if (!aborted && (r->outcome == TEND_RECONCILE_NOTHING || r->outcome == TEND_RECONCILE_APPLIED ||
	     r->outcome == TEND_RECONCILE_BLOCKED || r->outcome == TEND_RECONCILE_REBOOT_REQUIRED ||
	     r->outcome == TEND_RECONCILE_HELD ||
	     (r->outcome == TEND_RECONCILE_WAITING && r->window_opens)) && strlen(r->commit) == 40) {
		snprintf(s->head, sizeof(s->head), "%s", r->commit);
		/* an apply window, or the reboot_window a reboot waits for */
		s->window_opens = (time_t)r->window_opens;
	}
}

void tend_agent_idle_reset(tend_agent_idle *s)
{
	tend_source_watch_free(s->watch);
	s->watch = NULL;
	s->head[0] = '\0';
	s->force_full = 1;
}

void tend_agent_idle_dispose(tend_agent_idle *s)
{
	tend_source_watch_free(s->watch);
	memset(s, 0, sizeof(*s));
}
