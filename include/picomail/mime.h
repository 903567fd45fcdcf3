/*
 * mime.h - a mail message (RFC 5322 with MIME) turned into the attributes
 * of the event it raises (DESIGN.md §4), with GMime.
 *
 * mime_parse() reads the whole message from memory and fills a struct
 * mime_result the caller owns and releases with mime_result_release().
 * The message is untrusted: malformed MIME, bad charsets, invalid UTF-8,
 * huge or repeated headers never crash it; what cannot be decoded is
 * replaced (U+FFFD) or left out, and only a message that is not mail at
 * all (no header block) is refused.  Thread-safe once mime_init() ran.
 */
#ifndef PICOMAIL_MIME_H
#define PICOMAIL_MIME_H

#include <stddef.h>

#include "picomail/value.h"

struct mime_options {
    size_t max_attachment_keep;     /* bytes of each attachment's content
                                       kept in the result (0: none) */
    const char *trusted_authserv;   /* authserv-id whose
                                       Authentication-Results count; NULL:
                                       none counts */
};

struct mime_attachment {
    char *filename;                 /* may be NULL */
    char *content_type;             /* "type/subtype" */
    size_t size;                    /* decoded size in bytes */
    char sha256[65];                /* of the decoded content, hex */
    unsigned char *data;            /* the first min(size, keep) bytes */
    size_t data_len;
};

struct mime_result {
    /*
     * The event attributes: from, from_name, to (array), cc (array),
     * reply_to, subject, date (ISO 8601 UTC), message_id, in_reply_to,
     * references (array), text (plain body, UTF-8), html, headers (map of
     * lower-case name to value, or array of values when repeated; values
     * decoded to UTF-8), attachments (array of {filename, content_type,
     * size, sha256}), auth ({dkim, spf, dmarc} from the trusted host's
     * Authentication-Results, each "pass"/"fail"/... or null) and, when the
     * body or an application/json part is a JSON object, its members (never
     * overriding the above).  The LMTP layer adds envelope.
     */
    kval attrs;
    struct mime_attachment *attachments;
    size_t n_attachments;
};

/* mime_init - once per process, before any mime_parse (initialises GMime) */
void mime_init(void);
/* mime_parse - 0 and *OUT filled, or -1 with a message in ERR */
int mime_parse(const char *msg, size_t len, const struct mime_options *opt,
               struct mime_result *out, char *err, size_t errlen);
void mime_result_release(struct mime_result *r);

#endif
