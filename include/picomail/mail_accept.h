/*
 * mail_accept.h - whether mail to a channel address may be accepted
 * (DESIGN.md §4), decided the same way by the LMTP server, the socketmap
 * and the milter, so Postfix can reject before queueing exactly what the
 * delivery agent would refuse.
 *
 * At RCPT time (mail_accept_rcpt): the address must be one of MAIL_DOMAIN,
 * name a channel by ECI or alias, the channel must not be a family
 * channel (those are for picos only), its event policy must allow the
 * event the address raises, and when the channel lists accepted senders
 * the envelope sender must be one of them.  After the message
 * (mail_accept_message): the From: address must be an accepted sender too,
 * and DKIM/DMARC must have passed when the channel requires it.
 *
 * A sender rule is an address ("alice@example.net", matched whole), a
 * domain ("example.net", that domain only) or ".example.net" (its
 * subdomains), all case-insensitive.
 *
 * Refusals carry a whole reply line for LMTP/SMTP: "550 5.1.1" unknown
 * channel, "550 5.7.1" refused by policy or sender, "451 4.3.0" when the
 * store is temporarily unavailable.
 */
#ifndef PICOMAIL_MAIL_ACCEPT_H
#define PICOMAIL_MAIL_ACCEPT_H

#include <stdbool.h>

#include "picomail/address.h"
#include "picomail/store.h"
#include "picomail/value.h"

#define MAIL_REPLY_MAX 512

enum mail_verdict_code {
    MAIL_ACCEPT = 0,
    MAIL_REFUSE = 5,            /* permanent: 5xx */
    MAIL_TEMPFAIL = 4           /* try again later: 4xx */
};

/* What mail_accept_rcpt found; filled by it, owned by the caller. */
struct mail_channel {
    struct mail_rcpt rcpt;              /* the parsed address */
    char eci[MAIL_PART_MAX + 1];        /* the channel's ECI */
    kval senders;                       /* accepted senders (array) */
    bool require_dkim;
    bool require_dmarc;
};

void mail_channel_release(struct mail_channel *ch);

/* mail_accept_rcpt - may mail from SENDER (the envelope sender, "" for
 * <>; NULL when not known yet) to ADDR be accepted?  MAIL_ACCEPT with CH
 * filled (release it), or a refusal with REPLY (MAIL_REPLY_MAX bytes)
 * holding the reply line without CRLF.  ST is read only. */
enum mail_verdict_code mail_accept_rcpt(struct store *st,
                                        const char *mail_domain,
                                        const char *addr, const char *sender,
                                        struct mail_channel *ch,
                                        char *reply);

/* mail_accept_message - after the message: FROM is the From: address
 * (NULL when none), AUTH the {dkim, spf, dmarc} results of the trusted
 * Authentication-Results (null when none).  MAIL_ACCEPT or MAIL_REFUSE
 * with REPLY filled for recipient ADDR. */
enum mail_verdict_code mail_accept_message(const struct mail_channel *ch,
                                           const char *addr,
                                           const char *from,
                                           const kval *auth, char *reply);

/* mail_sender_matches - whether ADDR matches one of RULES (an array of
 * strings); an empty array matches everything */
bool mail_sender_matches(const kval *rules, const char *addr);

#endif
