/* The agent's log: one line per event on stderr, with journald's "<N>"
 * priority prefix when systemd reads the stream, a timestamp otherwise. */
#ifndef TEND_AGENT_LOG_H
#define TEND_AGENT_LOG_H

#include "util/error.h"

enum {
	TEND_LOG_ERR = 3,
	TEND_LOG_WARNING = 4,
	TEND_LOG_NOTICE = 5,
	TEND_LOG_INFO = 6,
	TEND_LOG_DEBUG = 7
};

/* Decide the line format from the environment: journald prefixes when
 * JOURNAL_STREAM or NOTIFY_SOCKET is set (we run under systemd). */
void tend_log_init(void);
/* Force a format (tests): 1 journald prefixes, 0 timestamps. */
void tend_log_set_journal(int on);
/* Lines above this priority are dropped; default TEND_LOG_INFO. */
void tend_log_set_level(int max_priority);

/* One line; control characters in the message are replaced so that an
 * event is always exactly one line. Thread-safe (one write(2) per line). */
void tend_log(int priority, const char *fmt, ...) TEND_PRINTF(2, 3);

#endif
