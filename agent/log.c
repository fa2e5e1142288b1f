/* One line per event on stderr: "<N>message" under systemd (journald maps N to
 * the priority), "2026-01-02T03:04:05Z level: message" otherwise. */
#include "agent/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static int log_journal;
static int log_level = TEND_LOG_INFO;

void tend_log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM"), *ns = getenv("NOTIFY_SOCKET");

	log_journal = (js && *js) || (ns && *ns);
}

void tend_log_set_journal(int on)
{
	log_journal = on;
}

void tend_log_set_level(int max_priority)
{
	log_level = max_priority;
}

static const char *level_name(int priority)
{
	switch (priority) {
	case TEND_LOG_ERR: return "error";
	case TEND_LOG_WARNING: return "warning";
	case TEND_LOG_NOTICE: return "notice";
	case TEND_LOG_INFO: return "info";
	default: return "debug";
	}
}

void tend_log(int priority, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t len, i, start;
	va_list ap;
	int n;

	if (priority > log_level)
		return;
	if (log_journal) {
		n = snprintf(line, sizeof(line), "<%d>", priority);
	} else {
		struct tm tm;
		time_t now = time(NULL);

		gmtime_r(&now, &tm);
		n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s: ", level_name(priority));
	}
	start = (size_t)n;
	va_start(ap, fmt);
	vsnprintf(line + start, sizeof(line) - start - 1, fmt, ap);
	va_end(ap);
	len = strlen(line);
	/* A message carries text from elsewhere (git, nix, a probe): keep it one line. */
	for (i = start; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report it. */
	}
}
