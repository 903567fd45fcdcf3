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

#endif
