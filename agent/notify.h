/* systemd's sd_notify protocol without libsystemd: one datagram to the
 * AF_UNIX socket named by NOTIFY_SOCKET (Type=notify readiness, watchdog). */
#ifndef TEND_AGENT_NOTIFY_H
#define TEND_AGENT_NOTIFY_H

#include <stdint.h>

/* Send state ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=..."). Returns 0
 * when sent or when NOTIFY_SOCKET is unset, a negative TEND_E* otherwise. */
int tend_notify(const char *state);

/* The watchdog interval systemd expects pings within (WATCHDOG_USEC, honouring
 * WATCHDOG_PID), in milliseconds; 0 when no watchdog is configured. */
uint64_t tend_notify_watchdog_ms(void);

#endif
