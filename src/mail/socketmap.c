/*
 * socketmap.c - the Postfix socketmap protocol without I/O; see
 * socketmap.h.
 *
 * The input buffer holds what arrived and was not yet a whole netstring.
 * Each complete request is answered in order, so pipelined requests get
 * their replies in the order they were asked.
 */
#include "picomail/socketmap.h"

#include <string.h>

void
socketmap_conn_init(struct socketmap_conn *c)
{
    buf_init(&c->in);
    c->broken = false;
}

void
socketmap_conn_release(struct socketmap_conn *c)
{
    buf_release(&c->in);
}

void
socketmap_netstring(struct buf *out, const char *s, size_t len)
{
    buf_printf(out, "%zu:", len);
    buf_add(out, s, len);
    buf_addc(out, ',');
}

/* reply - one reply netstring: WORD, a space, then TEXT */
static void
reply(struct buf *out, const char *word, const char *text, size_t len)
{
    struct buf r;
    buf_init(&r);
    buf_adds(&r, word);
    buf_addc(&r, ' ');
    buf_add(&r, text, len);
    if (r.len > SOCKETMAP_MAX) {
        buf_reset(&r);
        buf_adds(&r, "PERM reply too long");
    }
    socketmap_netstring(out, r.data, r.len);
    buf_release(&r);
}

/* answer - one request "<name> <key>" */
static void
answer(const char *req, size_t len, socketmap_lookup_fn *lookup, void *ctx,
       struct buf *out)
{
    const char *space = memchr(req, ' ', len);
    if (space == NULL || space == req || space + 1 == req + len ||
        memchr(req, '\0', len) != NULL) {
        static const char msg[] = "malformed request";
        reply(out, "PERM", msg, sizeof msg - 1);
        return;
    }
    struct buf map, key, data;
    buf_init(&map);
    buf_init(&key);
    buf_init(&data);
    buf_add(&map, req, (size_t)(space - req));
    buf_add(&key, space + 1, len - (size_t)(space - req) - 1);
    int rc = lookup(ctx, map.data, key.data, &data);
    switch (rc) {
    case 1:
        reply(out, "OK", data.data, data.len);
        break;
    case 0:
        reply(out, "NOTFOUND", "", 0);
        break;
    case -1:
        reply(out, "TEMP", data.data, data.len);
        break;
    default:
        reply(out, "PERM", data.data, data.len);
        break;
    }
    buf_release(&map);
    buf_release(&key);
    buf_release(&data);
}

int
socketmap_feed(struct socketmap_conn *c, const char *data, size_t len,
               socketmap_lookup_fn *lookup, void *ctx, struct buf *out)
{
    if (c->broken)
        return -1;
    buf_add(&c->in, data, len);
    size_t pos = 0;
    for (;;) {
        const char *p = c->in.data + pos;
        size_t avail = c->in.len - pos;
        size_t n = 0, digits = 0;
        while (digits < avail && p[digits] >= '0' && p[digits] <= '9') {
            n = n * 10 + (size_t)(p[digits] - '0');
            digits++;
            if (n > SOCKETMAP_MAX) {
                c->broken = true;
                return -1;
            }
        }
        if (digits == avail)
            break;                      /* the length is not complete yet */
        if (digits == 0 || p[digits] != ':' ||
            (digits > 1 && p[0] == '0')) {
            c->broken = true;
            return -1;
        }
        if (avail < digits + 1 + n + 1)
            break;                      /* the body is not complete yet */
        if (p[digits + 1 + n] != ',') {
            c->broken = true;
            return -1;
        }
        answer(p + digits + 1, n, lookup, ctx, out);
        pos += digits + 1 + n + 1;
    }
    /* keep only the unconsumed tail */
    if (pos > 0) {
        size_t rest = c->in.len - pos;
        memmove(c->in.data, c->in.data + pos, rest);
        c->in.len = rest;
        c->in.data[rest] = '\0';
    }
    return 0;
}
