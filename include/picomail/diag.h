/*
 * diag.h - diagnostics of the KRL front end: a file, a place and a message.
 *
 * The caller owns a struct krl_diags and releases it with
 * krl_diags_release().  Messages are copied in.
 */
#ifndef PICOMAIL_DIAG_H
#define PICOMAIL_DIAG_H

#include <stddef.h>

#include "picomail/buf.h"

struct krl_diag {
    char *file;                 /* owned */
    int line;
    int col;
    char *msg;                  /* owned; e.g. "Expected `}`" */
};

struct krl_diags {
    struct krl_diag *items;     /* owned */
    size_t n;
    size_t cap;
};

void krl_diags_init(struct krl_diags *d);
void krl_diags_release(struct krl_diags *d);
void krl_diags_add(struct krl_diags *d, const char *file, int line, int col,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* krl_diags_format - "FILE:LINE:COL: message\n" for each, appended to OUT */
void krl_diags_format(const struct krl_diags *d, struct buf *out);

#endif
