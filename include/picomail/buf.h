/*
 * buf.h - growable byte buffer.
 *
 * A struct buf owns its bytes.  They are always NUL-terminated (the NUL is
 * not counted in len), so buf->data can be used as a C string when the
 * content has no NUL of its own.  Callers allocate the struct (usually on
 * the stack), call buf_init() and buf_release() when done, or
 * buf_take() to keep the bytes.
 */
#ifndef PICOMAIL_BUF_H
#define PICOMAIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;     /* NUL-terminated; read-only for callers */
    size_t len;     /* bytes used, without the NUL */
    size_t cap;     /* private */
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);
/* buf_take - hand the bytes (malloc'd, NUL-terminated) to the caller and
 * leave B empty; *LEN gets the length when LEN is not NULL */
char *buf_take(struct buf *b, size_t *len);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t len);
void buf_addc(struct buf *b, char c);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
