/*
 * lmtp.h - the server side of LMTP (RFC 2033) as a state machine, without
 * I/O: the daemon feeds it the bytes a connection received and sends what
 * it appends to OUT.  Extensions: PIPELINING, ENHANCEDSTATUSCODES,
 * 8BITMIME, SMTPUTF8, SIZE, XFORWARD (ADDR, NAME, HELO, PROTO, IDENT,
 * SOURCE, PORT: Postfix sends the client address and, as IDENT, the
 * original queue id).
 *
 * Delivery is asynchronous: when a message's final "." arrives, lmtp_feed
 * stops consuming input and returns LMTP_MESSAGE; the caller reads the
 * envelope and the message with the accessors, stores the event(s), and
 * then calls lmtp_delivered() with one reply per accepted recipient, which
 * appends them (RFC 2033: one reply per recipient after DATA) and goes on
 * with any input that was pipelined behind the message.
 *
 * A struct lmtp_session is owned by the caller (lmtp_session_new/free);
 * one per connection; not thread-safe.  Message lines may end in CR LF or
 * a bare LF (stored as CR LF), but only CR LF "." CR LF ends the data, so
 * no message can be smuggled behind another.  All input is untrusted and
 * bounded: command lines of more than LMTP_LINE_MAX bytes get
 * "500 5.5.2 Line too long"; a message over the size limit is read to its
 * end and then refused for every recipient with "552 5.3.4"; more than
 * max_rcpts recipients get "452 4.5.3 Too many recipients".
 */
#ifndef PICOMAIL_LMTP_H
#define PICOMAIL_LMTP_H

#include <stddef.h>

#include "picomail/buf.h"

#define LMTP_LINE_MAX 2048      /* a command line, CRLF included */

struct lmtp_session;

struct lmtp_limits {
    size_t max_message;         /* bytes of message data (SIZE) */
    size_t max_rcpts;           /* recipients per transaction */
};

/*
 * Checks one RCPT TO address (without angle brackets, as given).  Returns
 * 0 to accept it (the session replies "250 2.1.5 OK"), or fills REPLY with
 * a whole reply line without CRLF (e.g. "550 5.1.1 <x@y>: no such
 * channel") and returns non-zero to refuse it.
 */
typedef int lmtp_rcpt_fn(void *ctx, const char *addr, struct buf *reply);

/* What lmtp_feed() did with the input it was given. */
enum lmtp_status {
    LMTP_MORE,                  /* everything consumed; feed more */
    LMTP_MESSAGE,               /* a message is complete: deliver it, then
                                   call lmtp_delivered() */
    LMTP_CLOSE                  /* QUIT was answered (or the peer broke the
                                   protocol beyond repair): close after
                                   sending OUT */
};

struct lmtp_session *lmtp_session_new(const char *hostname,
                                      const struct lmtp_limits *lim,
                                      lmtp_rcpt_fn *rcpt, void *ctx);
struct lmtp_session *lmtp_session_free(struct lmtp_session *s);
/* lmtp_greeting - append the "220 HOSTNAME LMTP ..." banner */
void lmtp_greeting(struct lmtp_session *s, struct buf *out);
/* lmtp_feed - consume DATA (LEN bytes; the session keeps what it cannot
 * use yet) and append replies to OUT */
enum lmtp_status lmtp_feed(struct lmtp_session *s, const char *data,
                           size_t len, struct buf *out);

/* After LMTP_MESSAGE, until lmtp_delivered(): */
const char *lmtp_mail_from(const struct lmtp_session *s);  /* "" for <> */
size_t lmtp_n_rcpts(const struct lmtp_session *s);         /* accepted */
const char *lmtp_rcpt(const struct lmtp_session *s, size_t i);
/* lmtp_message - the message, dot-stuffing removed, lines ending in CRLF
 * (a bare LF in the input became CRLF) */
const char *lmtp_message(const struct lmtp_session *s, size_t *len);
/* lmtp_too_big - the message went over max_message (its content is then
 * not kept, and lmtp_delivered() answers 552 5.3.4 for every recipient
 * whatever replies it is given) */
int lmtp_too_big(const struct lmtp_session *s);
/* lmtp_xforward - an XFORWARD attribute ("ADDR", "IDENT", ...) or NULL */
const char *lmtp_xforward(const struct lmtp_session *s, const char *name);
/* lmtp_lhlo_name - the name the client gave in LHLO, NULL before it */
const char *lmtp_lhlo_name(const struct lmtp_session *s);

/*
 * lmtp_delivered - REPLIES[i] is the whole reply line (without CRLF) for
 * accepted recipient i, e.g. "250 2.0.0 <x@y> OK eid" or "451 4.3.0 ...";
 * they are appended to OUT in order, the transaction is reset, and any
 * pipelined input is processed as lmtp_feed would.
 */
enum lmtp_status lmtp_delivered(struct lmtp_session *s,
                                const char *const *replies,
                                struct buf *out);

#endif
