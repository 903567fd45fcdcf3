/*
 * diag.c - diagnostics list; see diag.h.
 */
#include "picomail/diag.h"

#include <stdarg.h>
#include <stdlib.h>

#include "picomail/mem.h"

void
krl_diags_init(struct krl_diags *d)
{
    d->items = NULL;
    d->n = 0;
    d->cap = 0;
}

void
krl_diags_release(struct krl_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].file);
        free(d->items[i].msg);
    }
    free(d->items);
    krl_diags_init(d);
}

void
krl_diags_add(struct krl_diags *d, const char *file, int line, int col,
              const char *fmt, ...)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4;
        d->items = xreallocarray(d->items, d->cap, sizeof *d->items);
    }
    struct buf b;
    buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    struct krl_diag *g = &d->items[d->n++];
    g->file = xstrdup(file ? file : "<input>");
    g->line = line;
    g->col = col;
    g->msg = buf_take(&b, NULL);
}

void
krl_diags_format(const struct krl_diags *d, struct buf *out)
{
    for (size_t i = 0; i < d->n; i++)
        buf_printf(out, "%s:%d:%d: %s\n", d->items[i].file, d->items[i].line,
                   d->items[i].col, d->items[i].msg);
}
