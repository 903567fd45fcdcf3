/*
 * arena.c - region allocator; see arena.h.
 *
 * Chunks form a singly linked list, newest first.  A chunk larger than
 * CHUNK_SIZE is made for a single big request.  Cleanup hooks form a list
 * too, newest first, so running them in list order is reverse order of
 * registration.
 */
#include "picomail/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"

#define CHUNK_SIZE  (64 * 1024 - 64)
#define ALIGN       alignof(max_align_t)

struct chunk {
    struct chunk *next;
    size_t size;                /* bytes in data[] */
    size_t used;                /* bytes handed out from data[] */
    alignas(max_align_t) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    arena_cleanup_fn *fn;
    void *data;
};

struct arena {
    struct chunk *chunks;       /* newest first */
    struct chunk *spare;        /* one released standard chunk, kept so a
                                   reset-and-reuse cycle does not call
                                   malloc and free every time */
    struct cleanup *cleanups;   /* newest first */
    size_t total;               /* bytes handed out */
};

struct arena *
arena_new(void)
{
    struct arena *a = xcalloc(1, sizeof *a);
    return a;
}

static void
run_cleanups_until(struct arena *a, struct cleanup *stop)
{
    while (a->cleanups != stop) {
        struct cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->data);
    }
}

struct arena *
arena_free(struct arena *a)
{
    if (a == NULL)
        return NULL;
    run_cleanups_until(a, NULL);
    struct chunk *c = a->chunks;
    while (c != NULL) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a->spare);
    free(a);
    return NULL;
}

static struct chunk *
chunk_new(size_t size)
{
    struct chunk *c = xmalloc(sizeof *c + size);
    c->size = size;
    c->used = 0;
    c->next = NULL;
    return c;
}

void *
arena_alloc(struct arena *a, size_t size)
{
    size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need < size)
        need = SIZE_MAX;        /* xmalloc reports the overflow */
    struct chunk *c = a->chunks;
    if (c == NULL || c->size - c->used < need) {
        if (need <= CHUNK_SIZE && a->spare != NULL) {
            c = a->spare;
            a->spare = NULL;
            c->used = 0;
        } else {
            c = chunk_new(need > CHUNK_SIZE ? need : CHUNK_SIZE);
        }
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->total += need;
    memset(p, 0, size);
    return p;
}

void *
arena_allocarray(struct arena *a, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return arena_alloc(a, SIZE_MAX);
    return arena_alloc(a, count * size);
}

char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

void
arena_cleanup_add(struct arena *a, arena_cleanup_fn *fn, void *data)
{
    struct cleanup *c = arena_alloc(a, sizeof *c);
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t
arena_bytes(const struct arena *a)
{
    return a->total;
}

struct arena_mark
arena_mark(struct arena *a)
{
    struct arena_mark m;
    m.chunk = a->chunks;
    m.used = a->chunks ? a->chunks->used : 0;
    m.cleanup = a->cleanups;
    m.total = a->total;
    return m;
}

void
arena_release(struct arena *a, struct arena_mark mark)
{
    run_cleanups_until(a, mark.cleanup);
    while (a->chunks != mark.chunk) {
        struct chunk *c = a->chunks;
        a->chunks = c->next;
        if (a->spare == NULL && c->size == CHUNK_SIZE) {
            a->spare = c;
        } else {
            free(c);
        }
    }
    if (a->chunks != NULL)
        a->chunks->used = mark.used;
    a->total = mark.total;
}
