/*
 * socketmap.h - the Postfix socketmap protocol (socketmap_table(5)) as a
 * parser and replier, without I/O: the daemon feeds it the bytes a
 * connection received and sends what it appends to OUT.
 *
 * A request is one netstring "<len>:<name> <key>," and its reply one
 * netstring: "OK <data>", "NOTFOUND ", "TEMP <reason>" or
 * "PERM <reason>".  Postfix keeps a connection open for many requests
 * and may send them in pieces; a netstring longer than SOCKETMAP_MAX or
 * one that is not a netstring makes the connection broken (the daemon
 * closes it).  A struct socketmap_conn is owned by the caller (init and
 * release); one per connection; not thread-safe.
 */
#ifndef PICOMAIL_SOCKETMAP_H
#define PICOMAIL_SOCKETMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "picomail/buf.h"

#define SOCKETMAP_MAX 100000    /* the protocol's limit on a netstring */

/*
 * Answer one lookup of KEY in the map called MAP: 1 when found (ANSWER
 * holds the data, which may be empty), 0 when not found, -1 on a temporary
 * failure (ANSWER holds the reason), -2 on a permanent one (likewise).
 */
typedef int socketmap_lookup_fn(void *ctx, const char *map, const char *key,
                                struct buf *answer);

struct socketmap_conn {
    struct buf in;              /* private: bytes not yet consumed */
    bool broken;                /* private */
};

void socketmap_conn_init(struct socketmap_conn *c);
void socketmap_conn_release(struct socketmap_conn *c);
/* socketmap_feed - take DATA, answer every complete request (appending
 * the replies to OUT); 0 while the stream is sound, -1 once it is broken */
int socketmap_feed(struct socketmap_conn *c, const char *data, size_t len,
                   socketmap_lookup_fn *lookup, void *ctx, struct buf *out);
/* socketmap_netstring - append S (LEN bytes) to OUT as a netstring */
void socketmap_netstring(struct buf *out, const char *s, size_t len);

#endif
