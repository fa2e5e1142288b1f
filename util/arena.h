/* A bump allocator: many small allocations freed all at once. Used by parsed
 * documents and the manifest model, whose nodes share one lifetime. */
#ifndef TEND_UTIL_ARENA_H
#define TEND_UTIL_ARENA_H

#include <stddef.h>

typedef struct tend_arena tend_arena;

tend_arena *tend_arena_new(void);
/* Zeroed memory, aligned for any type; NULL (with the error set) when out of memory. */
void *tend_arena_alloc(tend_arena *arena, size_t size);
char *tend_arena_strndup(tend_arena *arena, const char *s, size_t len);
char *tend_arena_strdup(tend_arena *arena, const char *s);
char *tend_arena_printf(tend_arena *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tend_arena_free(tend_arena *arena);

#endif
