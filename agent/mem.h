/* The agent's resident memory while it idles: one malloc arena for its few
 * threads, and freed memory handed back to the kernel after every step. */
#ifndef TEND_AGENT_MEM_H
#define TEND_AGENT_MEM_H

/* Before any thread starts: malloc settings for a long-running, mostly idle
 * process (see mem.c). */
void tend_agent_mem_init(void);
/* After a step (a reconcile, a poll): return freed heap pages to the kernel. */
void tend_agent_mem_release(void);

#endif
