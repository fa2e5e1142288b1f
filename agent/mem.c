/* Malloc settings for the agent, a long-running process that idles between
 * polls: what it frees after a reconcile should not stay resident until the
 * next one. Measured with bench/run (`tend run`, VmRSS and RssAnon). */
#include "agent/mem.h"

#include <malloc.h>

void tend_agent_mem_init(void)
{
	/* One arena for every thread. glibc gives each new thread that allocates
	 * (the HTTP server's, the mail sender's, the per-step watchdog) an arena of
	 * its own, and memory freed into one is reused only by that thread: each
	 * arena keeps its own high-water mark resident. These threads allocate
	 * little and rarely, so sharing the main arena costs no contention worth
	 * measuring. */
	mallopt(M_ARENA_MAX, 1);
}

void tend_agent_mem_release(void)
{
	/* A reconcile loads, renders and plans a whole fleet and frees it all;
	 * glibc only gives back the top of the heap beyond M_TRIM_THRESHOLD and
	 * keeps the free pages in between resident. malloc_trim(0) releases every
	 * whole free page (madvise MADV_DONTNEED), in every arena; the next step
	 * faults them in again, which costs far less than a poll. */
	malloc_trim(0);
}
