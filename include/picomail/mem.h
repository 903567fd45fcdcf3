/*
 * mem.h - allocation that never returns NULL.
 *
 * Every allocation in picomail goes through these wrappers.  Running out of
 * memory is fatal (a message on stderr, then abort()): a daemon that dies
 * leaves Postfix to retry, which is safer than limping on.  Sizes are
 * overflow-checked.  Memory returned is owned by the caller and released
 * with free().
 */
#ifndef PICOMAIL_MEM_H
#define PICOMAIL_MEM_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* xreallocarray - realloc for COUNT elements of SIZE bytes, overflow-checked */
void *xreallocarray(void *ptr, size_t count, size_t size);
char *xstrdup(const char *s);
/* xmemdup - copy LEN bytes and add a NUL terminator */
char *xmemdup(const void *p, size_t len);

/*
 * Small blocks for values that come and go by the thousand (value.c): a
 * released block goes on a free list of the releasing thread, by size
 * class, and the next request of that class takes it back, which costs a
 * few instructions where malloc's slow paths cost hundreds once a batch of
 * events has released more blocks than malloc keeps cached.  The lists
 * are bounded (MEM_SMALL_KEEP bytes a thread; beyond, blocks go back to
 * free()) and a thread's lists are freed when it exits.  Under
 * AddressSanitizer or valgrind every call is plain malloc/free, so those
 * tools still see each block (environment PICOMAIL_SMALL_LISTS=1 keeps the
 * lists under valgrind, for profiling; =0 turns them off).
 *
 * mem_small_alloc - SIZE bytes (not zeroed); SIZE may be 0 or larger than
 * MEM_SMALL_MAX (then it is xmalloc).  mem_small_free - release P (may be
 * NULL), given the SIZE it was allocated with.
 */
#define MEM_SMALL_MAX 256
#define MEM_SMALL_KEEP (2u << 20)
void *mem_small_alloc(size_t size);
void *mem_small_calloc(size_t size);
void mem_small_free(void *p, size_t size);

#endif
