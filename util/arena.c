/* Bump allocator over a list of blocks; large requests get a block of their own. */
#include "util/arena.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK (64 * 1024)
#define ARENA_ALIGN 16

typedef struct arena_block {
	struct arena_block *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
} arena_block;

struct tend_arena {
	arena_block *head;
};

tend_arena *tend_arena_new(void)
{
	tend_arena *a = calloc(1, sizeof(*a));
	if (!a)
		tend_error_set("out of memory");
	return a;
}

void *tend_arena_alloc(tend_arena *arena, size_t size)
{
	arena_block *b = arena->head;
	void *p;

	size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (size == 0)
		size = ARENA_ALIGN;
	if (!b || b->size - b->used < size) {
		size_t bsize = size > ARENA_BLOCK / 4 ? size : ARENA_BLOCK;
		if (size > SIZE_MAX - sizeof(arena_block) ||
		    !(b = malloc(sizeof(arena_block) + bsize))) {
			tend_error_set("out of memory");
			return NULL;
		}
		b->size = bsize;
		b->used = 0;
		if (bsize > ARENA_BLOCK && arena->head) {
			/* keep the current block in front: it still has room for small requests */
			b->next = arena->head->next;
			arena->head->next = b;
		} else {
			b->next = arena->head;
			arena->head = b;
		}
	}
	p = b->data + b->used;
	b->used += size;
	memset(p, 0, size);
	return p;
}

char *tend_arena_strndup(tend_arena *arena, const char *s, size_t len)
{
	char *p = tend_arena_alloc(arena, len + 1);
	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

char *tend_arena_strdup(tend_arena *arena, const char *s)
{
	return s ? tend_arena_strndup(arena, s, strlen(s)) : NULL;
}

char *tend_arena_printf(tend_arena *arena, const char *fmt, ...)
{
	va_list ap;
	int len;
	char *p;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0 || !(p = tend_arena_alloc(arena, (size_t)len + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return p;
}

void tend_arena_free(tend_arena *arena)
{
	arena_block *b, *next;

	if (!arena)
		return;
	for (b = arena->head; b; b = next) {
		next = b->next;
		free(b);
	}
	free(arena);
}
