/*
 * t_util.c - the small utilities: arena (alignment, zeroing, big blocks,
 * marks and release, cleanup order), buf (growth, printf, take) and
 * diagnostics (formatting).
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/arena.h"
#include "picomail/buf.h"
#include "picomail/diag.h"
#include "tap.h"

static char order[16];
static size_t n_order;

static void
record(void *p)
{
    order[n_order++] = *(char *)p;
}

static void
test_arena(void)
{
    struct arena *a = arena_new();
    char *p = arena_alloc(a, 3);
    long double *q = arena_alloc(a, sizeof *q);
    t_ok(((uintptr_t)q % alignof(max_align_t)) == 0, "arena aligns");
    t_ok(p[0] == 0 && p[2] == 0, "arena zero-fills");
    char *big = arena_alloc(a, 1 << 20);
    big[(1 << 20) - 1] = 1;
    t_ok(big[0] == 0, "arena serves a block larger than a chunk");
    t_eq_str(arena_strndup(a, "hello world", 5), "hello", "arena_strndup");
    size_t before = arena_bytes(a);
    struct arena_mark m = arena_mark(a);
    static char x = 'x', y = 'y', z = 'z';
    arena_cleanup_add(a, record, &x);
    for (int i = 0; i < 1000; i++)
        arena_alloc(a, 1000);
    arena_cleanup_add(a, record, &y);
    arena_release(a, m);
    t_eq_int(arena_bytes(a), before, "release returns to the mark");
    t_eq_int(n_order, 2, "release runs the hooks added after the mark");
    t_ok(order[0] == 'y' && order[1] == 'x', "hooks run newest first");
    arena_cleanup_add(a, record, &z);
    arena_free(a);
    t_eq_int(n_order, 3, "free runs the remaining hooks");
    t_ok(arena_free(NULL) == NULL, "arena_free(NULL)");
}

static void
test_buf(void)
{
    struct buf b;
    buf_init(&b);
    t_eq_str(b.data, "", "empty buf is an empty string");
    for (int i = 0; i < 1000; i++)
        buf_addc(&b, 'a');
    t_eq_int(b.len, 1000, "buf grows");
    buf_reset(&b);
    buf_printf(&b, "%d-%s", 42, "x");
    buf_add(&b, "\0z", 2);
    t_eq_int(b.len, 6, "buf_add keeps NUL bytes");
    t_eq_str(b.data, "42-x", "buf_printf");
    size_t len;
    char *s = buf_take(&b, &len);
    t_eq_int(len, 6, "buf_take length");
    t_eq_int(b.len, 0, "buf_take empties");
    free(s);
    buf_release(&b);
    s = buf_take(&b, NULL);
    t_eq_str(s, "", "buf_take of an empty buf");
    free(s);
}

static void
test_diags(void)
{
    struct krl_diags d;
    krl_diags_init(&d);
    krl_diags_add(&d, "a.krl", 3, 7, "Expected `%s`", "}");
    krl_diags_add(&d, NULL, 1, 1, "second");
    struct buf b;
    buf_init(&b);
    krl_diags_format(&d, &b);
    t_eq_str(b.data, "a.krl:3:7: Expected `}`\n<input>:1:1: second\n",
             "diagnostics format");
    buf_release(&b);
    krl_diags_release(&d);
    t_eq_int(d.n, 0, "release empties");
}

int
main(void)
{
    test_arena();
    test_buf();
    test_diags();
    return tap_done();
}
