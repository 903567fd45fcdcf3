/*
 * address.h - channel mail addresses (DESIGN.md §4).
 *
 *   ECI@MAIL_DOMAIN               raises mail:received on the channel
 *   ECI+DOMAIN.TYPE@MAIL_DOMAIN   raises DOMAIN:TYPE
 *   ALIAS@..., ALIAS+DOMAIN.TYPE@...  the same through a channel alias
 *
 * Mail systems may fold the case of an address, so the channel part is
 * lower-cased; the event domain and type keep their case.  Pure functions.
 */
#ifndef PICOMAIL_ADDRESS_H
#define PICOMAIL_ADDRESS_H

#define MAIL_PART_MAX 64        /* longest channel part, event domain, type */

struct mail_rcpt {
    char channel[MAIL_PART_MAX + 1];    /* ECI or alias, lower case */
    char domain[MAIL_PART_MAX + 1];     /* event domain ("mail") */
    char type[MAIL_PART_MAX + 1];       /* event type ("received") */
};

enum mail_rcpt_status {
    MAIL_RCPT_OK = 0,
    MAIL_RCPT_OTHER_DOMAIN = -1,    /* not an address of MAIL_DOMAIN */
    MAIL_RCPT_MALFORMED = -2        /* ours, but no channel address */
};

/* mail_rcpt_parse - ADDR (optionally in angle brackets) as a channel
 * address of MAIL_DOMAIN (compared case-insensitively) */
enum mail_rcpt_status mail_rcpt_parse(const char *addr,
                                      const char *mail_domain,
                                      struct mail_rcpt *out);

#endif
