/*
 * arena.h - region allocator for things that die together.
 *
 * An arena hands out memory by bumping a pointer through large chunks.
 * Nothing is freed one by one: arena_free() releases every chunk at once,
 * after running the cleanup hooks registered with arena_cleanup_add() in
 * reverse order (they release references that arena memory holds, such as
 * kval constants in an AST).  arena_mark()/arena_release() give stack
 * discipline: memory handed out after a mark is reclaimed when released to
 * it (cleanup hooks added after the mark run at that point).
 *
 * The arena owns all its memory; pointers into it stay valid until
 * arena_free() or a release to an earlier mark.  Not thread-safe: one
 * arena belongs to one thread at a time.
 */
#ifndef PICOMAIL_ARENA_H
#define PICOMAIL_ARENA_H

#include <stddef.h>

struct arena;

struct arena_mark {
    void *chunk;        /* private */
    size_t used;        /* private */
    void *cleanup;      /* private */
    size_t total;       /* private */
};

typedef void arena_cleanup_fn(void *data);

struct arena *arena_new(void);
/* arena_free - run the cleanup hooks, release everything; returns NULL */
struct arena *arena_free(struct arena *a);
/* arena_alloc - SIZE bytes, aligned for any object, zero-filled */
void *arena_alloc(struct arena *a, size_t size);
void *arena_allocarray(struct arena *a, size_t count, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);
void arena_cleanup_add(struct arena *a, arena_cleanup_fn *fn, void *data);
/* arena_bytes - bytes handed out and not released (for memory limits) */
size_t arena_bytes(const struct arena *a);
struct arena_mark arena_mark(struct arena *a);
void arena_release(struct arena *a, struct arena_mark mark);

#endif
