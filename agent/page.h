/* The fleet page the agent serves at GET / (agent/page.c): every host's phase, commits,
 * reboot need and last error, the dependency order as SVG, each host's liveness and recent
 * history with what its switches changed. Self-contained HTML, all remote text escaped. */
#ifndef TEND_AGENT_PAGE_H
#define TEND_AGENT_PAGE_H

#include <stddef.h>
#include "agent/status.h"

/* The page from st (locks it). Caller frees. */
int tend_agent_page_html(char **out, tend_agent_status *st);

/* The base64 SHA-256 of the page's one inline script, for its Content-Security-Policy
 * ('sha256-<this>'); size at least 45. */
void tend_agent_page_script_hash(char *out, size_t size);

#endif
