/*
 * mem.c - allocation wrappers and the small-block free lists; see mem.h.
 */
#include "picomail/mem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

/* AddressSanitizer must see every block to find misuse: no lists then */
#if defined(__SANITIZE_ADDRESS__)
#define SMALL_LISTS_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SMALL_LISTS_OFF 1
#endif
#endif

static void
out_of_memory(size_t size)
{
    fprintf(stderr, "picomail: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        out_of_memory(size);
    return p;
}

void *
xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        out_of_memory(count * size);
    return p;
}

void *
xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        out_of_memory(size);
    return p;
}

void *
xreallocarray(void *ptr, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        out_of_memory(SIZE_MAX);
    return xrealloc(ptr, count * size);
}

char *
xstrdup(const char *s)
{
    return xmemdup(s, strlen(s));
}

char *
xmemdup(const void *p, size_t len)
{
    char *s = xmalloc(len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

/* ---- small blocks ---- */

#define SMALL_GRAIN 16
#define SMALL_CLASSES (MEM_SMALL_MAX / SMALL_GRAIN)

struct small_block {
    struct small_block *next;
};

/* One thread's free lists.  state: 0 not yet set up, 1 in use, 2 the
 * thread is exiting (blocks go straight back to free()), 3 plain malloc
 * for every block (under a memory checker). */
struct small_lists {
    int state;
    size_t kept;                        /* bytes on the lists */
    struct small_block *head[SMALL_CLASSES];
};

static _Thread_local struct small_lists lists;
static pthread_key_t lists_key;
static pthread_once_t lists_once = PTHREAD_ONCE_INIT;
static bool plain;              /* set once, under lists_once */

/* drain - a thread exits: give its blocks back */
static void
drain(void *arg)
{
    struct small_lists *l = arg;
    for (size_t c = 0; c < SMALL_CLASSES; c++)
        while (l->head[c] != NULL) {
            struct small_block *b = l->head[c];
            l->head[c] = b->next;
            free(b);
        }
    l->kept = 0;
    l->state = 2;
}

static void
setup_once(void)
{
#if defined(SMALL_LISTS_OFF)
    plain = true;
#else
#if defined(HAVE_VALGRIND_H)
    plain = RUNNING_ON_VALGRIND != 0;
#endif
    /* PICOMAIL_SMALL_LISTS=1 keeps them under valgrind (to profile with
       callgrind), =0 turns them off */
    const char *env = getenv("PICOMAIL_SMALL_LISTS");
    if (env != NULL && (env[0] == '0' || env[0] == '1'))
        plain = env[0] == '0';
#endif
    if (!plain && pthread_key_create(&lists_key, drain) != 0)
        plain = true;
}

/* lists_state - this thread's state, set up on first use */
static int
lists_state(void)
{
    if (lists.state == 0) {
        pthread_once(&lists_once, setup_once);
        if (plain)
            lists.state = 3;
        else
            lists.state = pthread_setspecific(lists_key, &lists) == 0 ? 1
                                                                      : 2;
    }
    return lists.state;
}

static size_t
class_of(size_t size)
{
    return size == 0 ? 0 : (size - 1) / SMALL_GRAIN;
}

void *
mem_small_alloc(size_t size)
{
    int state = lists_state();
    if (size > MEM_SMALL_MAX || state == 3)
        return xmalloc(size);
    size_t c = class_of(size);
    if (state == 1 && lists.head[c] != NULL) {
        struct small_block *b = lists.head[c];
        lists.head[c] = b->next;
        lists.kept -= (c + 1) * SMALL_GRAIN;
        return b;
    }
    /* the whole class size: any request of the class may reuse it */
    return xmalloc((c + 1) * SMALL_GRAIN);
}

void *
mem_small_calloc(size_t size)
{
    void *p = mem_small_alloc(size);
    memset(p, 0, size);
    return p;
}

void
mem_small_free(void *p, size_t size)
{
    if (p == NULL)
        return;
    size_t c = class_of(size), bytes = (c + 1) * SMALL_GRAIN;
    if (size > MEM_SMALL_MAX || lists_state() != 1 ||
        lists.kept + bytes > MEM_SMALL_KEEP) {
        free(p);
        return;
    }
    struct small_block *b = p;
    b->next = lists.head[c];
    lists.head[c] = b;
    lists.kept += bytes;
}
