/*
 * compose.h - outbound mail built with GMime (email:send, reply and
 * forward directives; DESIGN.md §3-§4), and the strict address check that
 * every address passes before it goes near a header or an SMTP envelope.
 *
 * compose_message() returns the whole RFC 5322 message (CRLF line ends) in
 * a struct buf the caller owns.  Thread-safe (it runs mime_init()).
 */
#ifndef PICOMAIL_COMPOSE_H
#define PICOMAIL_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>

#include "picomail/buf.h"

/*
 * addr_valid - ADDR is one bare mailbox "local@domain": printable ASCII
 * (or UTF-8 for SMTPUTF8) with no white space, no CR/LF, no NUL, no "<>",
 * ",", ";", "(", ")", "\"", "\\", exactly one "@", a local part of 1..64
 * bytes and a domain of 1..253 bytes made of dot-separated labels of
 * letters, digits and hyphens (no empty label, no leading or trailing
 * hyphen).  WHY (may be NULL) gets a short reason on failure.
 */
bool addr_valid(const char *addr, const char **why);

struct compose_spec {
    const char *from;           /* mailbox (checked) */
    const char *from_name;      /* display name, UTF-8; may be NULL */
    const char *const *to;      /* mailboxes (checked); n_to >= 1 */
    size_t n_to;
    const char *const *cc;      /* may be NULL */
    size_t n_cc;
    const char *reply_to;       /* may be NULL */
    const char *subject;        /* UTF-8 (RFC 2047-encoded when needed) */
    const char *text;           /* the text/plain body, UTF-8 */
    const char *html;           /* optional text/html alternative */
    const char *in_reply_to;    /* a message id without <>, or NULL */
    const char *const *references;  /* message ids without <> */
    size_t n_references;
    const char *auto_submitted; /* e.g. "auto-replied"; NULL for none */
    const char *const *extra_headers;   /* "Name: value" pairs as 2n
                                           strings (name, value), checked:
                                           no CR/LF, a token name, not one
                                           of the headers set above */
    size_t n_extra;
    const char *message_id_domain;  /* the domain of the new Message-ID */
    const char *message_id;     /* the Message-ID to use, without <>
                                   (checked), so that a retried send is
                                   the same message; NULL: a new one */
    long long date_ms;          /* the Date header; 0: now */
};

/* compose_message - 0 with the message in OUT (and its Message-ID,
 * without <>, in MESSAGE_ID when not NULL), or -1 with a reason in ERR
 * (an invalid address or header is refused, never sent) */
int compose_message(const struct compose_spec *spec, struct buf *out,
                    struct buf *message_id, char *err, size_t errlen);

#endif
