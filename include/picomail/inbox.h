/*
 * inbox.h - a delivered message made into pending events: the durable
 * half of a delivery, shared by the LMTP server and the IMAP fetcher.
 *
 * inbox_prepare() parses the message once (mime.h) and decides, per
 * target, the reply: the event's attributes (the message's plus
 * "envelope") or a refusal by the channel's From:/DKIM/DMARC rules.  It
 * touches no store and may run on any thread.  inbox_store() then writes
 * the raw message, kept attachment contents and one inbox entry per
 * accepted target inside the caller's write transaction (several messages
 * may share one: group commit).  The replies are final only once that
 * transaction has committed; if it fails, every target gets a 4xx.
 *
 * Deduplication: a target's entry is keyed by sha256(queue id, recipient,
 * sha256 of the message), so the same message delivered again (Postfix
 * retrying after a crash between our commit and its reading the reply)
 * stores nothing and is answered 250 with the first delivery's event id.
 *
 * A struct inbox_message is filled and owned by the caller; what
 * inbox_prepare() adds is released by inbox_message_release().
 */
#ifndef PICOMAIL_INBOX_H
#define PICOMAIL_INBOX_H

#include <stddef.h>
#include <stdint.h>

#include "picomail/ids.h"
#include "picomail/mail_accept.h"
#include "picomail/store.h"
#include "picomail/value.h"

struct inbox_options {
    const char *trusted_authserv;   /* see mime_options; NULL: none */
    size_t attachment_keep;         /* bytes of each attachment kept */
};

/* One recipient of a message. */
struct inbox_target {
    const char *rcpt;               /* envelope recipient (borrowed) */
    const struct mail_channel *ch;  /* its channel (borrowed), accepted by
                                       mail_accept_rcpt */
    /* results */
    char reply[MAIL_REPLY_MAX];     /* the reply line, without CRLF */
    char eid[ID_BUFSIZE];           /* the event's id, once accepted */
    int64_t entry_id;               /* the inbox entry, after inbox_store */
    kval attrs;                     /* private: the event's attributes */
    int accepted;                   /* private */
};

struct inbox_message {
    const char *data;               /* the message, CRLF lines (borrowed) */
    size_t len;
    const char *mail_from;          /* envelope sender, "" for <> */
    const char *client_addr;        /* the SMTP client's, or NULL */
    const char *queue_id;           /* the MTA's queue id (or another
                                       stable id of this delivery), or
                                       NULL */
    struct inbox_target *targets;   /* N_TARGETS, filled by the caller */
    size_t n_targets;
    /* private: the parse */
    void *parsed;
    char digest[65];
};

/* inbox_prepare - parse M and fill each target's reply (and, for the
 * accepted ones, the event).  0, or -1 when the message is not mail at
 * all: then every target's reply is a refusal (554 5.6.0). */
int inbox_prepare(struct inbox_message *m, const struct inbox_options *opt);
/* inbox_store - inside the caller's open write transaction, store M's
 * accepted targets.  0 (replies stand until the commit), or a STORE_*
 * error: roll back and call inbox_tempfail() on every message of the
 * transaction. */
int inbox_store(struct store *st, struct inbox_message *m);
/* inbox_tempfail - every accepted target of M answered 451 4.3.0 (the
 * transaction that held it failed) */
void inbox_tempfail(struct inbox_message *m, const char *why);
void inbox_message_release(struct inbox_message *m);

#endif
