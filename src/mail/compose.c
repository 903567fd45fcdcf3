/*
 * compose.c - outbound mail built with GMime 3 (DESIGN.md §3-§4).
 *
 * Owns: addr_valid, compose_message.  Every address, message id and extra
 * header is checked here before GMime sees it (GMime's own parser is
 * lenient: "a@b@c" becomes "a@b"), and free text that lands in a header
 * (display name, subject) has its control characters replaced by spaces
 * so that nothing in it can start a header of its own.  GLib/GMime objects
 * never leave this file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sys/random.h>

#include <gmime/gmime.h>

#include "picomail/buf.h"
#include "picomail/compose.h"
#include "picomail/mime.h"
#include "picomail/mem.h"

#define MAX_LOCAL 64
#define MAX_DOMAIN 253
#define MAX_LABEL 63                /* DNS label limit */
#define MAX_MSGID 998
#define MAX_HEADER_NAME 76
#define MSGID_RANDOM 16             /* bytes of randomness: 128 bits */

/* Headers this module sets itself; an extra header may not repeat them. */
static const char *const reserved_headers[] = {
    "From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID",
    "In-Reply-To", "References", "Auto-Submitted", "MIME-Version",
    "Sender", "Bcc",
};

static void
set_why(const char **why, const char *msg)
{
    if (why != NULL)
        *why = msg;
}

/* Length of the valid UTF-8 sequence at S (a non-ASCII lead byte), or 0. */
static size_t
utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n, i;
    unsigned cp;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    /* C1 controls are controls too */
    if (cp >= 0x80 && cp <= 0x9F)
        return 0;
    return n;
}

static bool
domain_valid(const char *d, size_t len, const char **why)
{
    size_t i, label = 0;

    if (len == 0) {
        set_why(why, "empty domain");
        return false;
    }
    if (len > MAX_DOMAIN) {
        set_why(why, "domain longer than 253 bytes");
        return false;
    }
    for (i = 0; i <= len; i++) {
        char c = i < len ? d[i] : '.';

        if (c == '.') {
            if (label == 0) {
                set_why(why, "empty domain label");
                return false;
            }
            if (d[i - 1] == '-') {
                set_why(why, "domain label ends with a hyphen");
                return false;
            }
            label = 0;
            continue;
        }
        if (c == '-' && label == 0) {
            set_why(why, "domain label starts with a hyphen");
            return false;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-')) {
            set_why(why, "invalid character in domain");
            return false;
        }
        if (++label > MAX_LABEL) {
            set_why(why, "domain label longer than 63 bytes");
            return false;
        }
    }
    return true;
}

bool
addr_valid(const char *addr, const char **why)
{
    const unsigned char *p;
    const char *at = NULL;
    size_t local;

    if (addr == NULL || *addr == '\0') {
        set_why(why, "empty address");
        return false;
    }
    for (p = (const unsigned char *)addr; *p != '\0'; p++) {
        if (*p >= 0x80) {
            size_t n = utf8_seq(p);
            if (n == 0) {
                set_why(why, "invalid UTF-8 in address");
                return false;
            }
            p += n - 1;
            continue;
        }
        if (*p == '\r' || *p == '\n') {
            set_why(why, "CR or LF in address");
            return false;
        }
        if (*p <= 0x20 || *p == 0x7F) {
            set_why(why, "white space or control character in address");
            return false;
        }
        if (strchr("<>,;()\"\\", *p) != NULL) {
            set_why(why, "forbidden character in address");
            return false;
        }
        if (*p == '@') {
            if (at != NULL) {
                set_why(why, "more than one @ in address");
                return false;
            }
            at = (const char *)p;
        }
    }
    if (at == NULL) {
        set_why(why, "no @ in address");
        return false;
    }
    local = (size_t)(at - addr);
    if (local == 0) {
        set_why(why, "empty local part");
        return false;
    }
    if (local > MAX_LOCAL) {
        set_why(why, "local part longer than 64 bytes");
        return false;
    }
    return domain_valid(at + 1, strlen(at + 1), why);
}

/* A message id without <>: printable ASCII, no white space or brackets,
 * one "@" is not demanded (ids in the wild lack it). */
static bool
msgid_valid(const char *id)
{
    size_t n = 0;

    if (id == NULL || *id == '\0')
        return false;
    for (; *id != '\0'; id++, n++) {
        unsigned char c = (unsigned char)*id;
        if (c <= 0x20 || c >= 0x7F || c == '<' || c == '>' || c == '"' ||
            c == '\\' || c == '(' || c == ')' || c == ',' || c == ';')
            return false;
    }
    return n <= MAX_MSGID;
}

static bool
token_valid(const char *s)
{
    size_t n = 0;

    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++, n++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return n <= MAX_HEADER_NAME;
}

static bool
header_reserved(const char *name)
{
    size_t i;

    if (strncasecmp(name, "Content-", 8) == 0)
        return true;
    for (i = 0; i < sizeof reserved_headers / sizeof reserved_headers[0]; i++)
        if (strcasecmp(name, reserved_headers[i]) == 0)
            return true;
    return false;
}

/* A header value: no CR/LF and no other control except TAB, valid UTF-8. */
static bool
header_value_valid(const char *v)
{
    const unsigned char *p;

    if (v == NULL)
        return false;
    for (p = (const unsigned char *)v; *p != '\0'; p++) {
        if (*p >= 0x80) {
            size_t n = utf8_seq(p);
            if (n == 0)
                return false;
            p += n - 1;
        } else if ((*p < 0x20 && *p != '\t') || *p == 0x7F) {
            return false;
        }
    }
    return true;
}

/* S with every control character (and invalid UTF-8 byte) turned into a
 * space: defence in depth for text that lands in a header. */
static char *
header_text(const char *s)
{
    char *out = xstrdup(s != NULL ? s : "");
    unsigned char *p;

    for (p = (unsigned char *)out; *p != '\0'; p++) {
        if (*p >= 0x80) {
            size_t n = utf8_seq(p);
            if (n == 0)
                *p = ' ';
            else
                p += n - 1;
        } else if (*p < 0x20 || *p == 0x7F) {
            *p = ' ';
        }
    }
    return out;
}

/* BODY with CRLF and lone CR turned into LF: GMime's DOS newline format
 * then writes every line end as CRLF, with no CRCRLF. */
static char *
body_text(const char *s)
{
    struct buf b;

    buf_init(&b);
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '\r') {
            buf_addc(&b, '\n');
            if (s[1] == '\n')
                s++;
        } else {
            buf_addc(&b, *s);
        }
    }
    return buf_take(&b, NULL);
}

static int
fail(char *err, size_t errlen, const char *what, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s", what, why);
    return -1;
}

static int
check_spec(const struct compose_spec *s, char *err, size_t errlen)
{
    const char *why = NULL;
    size_t i;

    if (!addr_valid(s->from, &why))
        return fail(err, errlen, "from", why);
    if (s->n_to == 0 || s->to == NULL)
        return fail(err, errlen, "to", "no recipient");
    for (i = 0; i < s->n_to; i++)
        if (!addr_valid(s->to[i], &why))
            return fail(err, errlen, "to", why);
    if (s->n_cc > 0 && s->cc == NULL)
        return fail(err, errlen, "cc", "missing list");
    for (i = 0; i < s->n_cc; i++)
        if (!addr_valid(s->cc[i], &why))
            return fail(err, errlen, "cc", why);
    if (s->reply_to != NULL && !addr_valid(s->reply_to, &why))
        return fail(err, errlen, "reply_to", why);
    if (s->message_id_domain == NULL ||
        !domain_valid(s->message_id_domain, strlen(s->message_id_domain),
                      &why))
        return fail(err, errlen, "message_id_domain",
                    why != NULL ? why : "missing");
    if (s->in_reply_to != NULL && !msgid_valid(s->in_reply_to))
        return fail(err, errlen, "in_reply_to", "invalid message id");
    if (s->message_id != NULL && !msgid_valid(s->message_id))
        return fail(err, errlen, "message_id", "invalid message id");
    if (s->n_references > 0 && s->references == NULL)
        return fail(err, errlen, "references", "missing list");
    for (i = 0; i < s->n_references; i++)
        if (!msgid_valid(s->references[i]))
            return fail(err, errlen, "references", "invalid message id");
    if (s->auto_submitted != NULL && !token_valid(s->auto_submitted))
        return fail(err, errlen, "auto_submitted", "not a token");
    if (s->n_extra > 0 && s->extra_headers == NULL)
        return fail(err, errlen, "extra header", "missing list");
    for (i = 0; i < s->n_extra; i++) {
        const char *name = s->extra_headers[2 * i];
        const char *value = s->extra_headers[2 * i + 1];

        if (!token_valid(name))
            return fail(err, errlen, "extra header", "invalid name");
        if (header_reserved(name))
            return fail(err, errlen, "extra header", "reserved name");
        if (!header_value_valid(value))
            return fail(err, errlen, "extra header", "invalid value");
    }
    return 0;
}

/* A fresh Message-ID "<hex>@DOMAIN" without <>. */
static int
new_message_id(const char *domain, struct buf *id)
{
    unsigned char rnd[MSGID_RANDOM];
    size_t got = 0, i;

    while (got < sizeof rnd) {
        ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    for (i = 0; i < sizeof rnd; i++)
        buf_printf(id, "%02x", rnd[i]);
    buf_printf(id, "@%s", domain);
    return 0;
}

static GMimeObject *
text_part(const char *subtype, const char *content)
{
    GMimeTextPart *part = g_mime_text_part_new_with_subtype(subtype);
    char *text = body_text(content);
    GMimeStream *stream;
    GMimeDataWrapper *wrapper;
    GMimeContentEncoding enc;

    /* not g_mime_text_part_set_text: it recodes to the "best" charset
     * (e.g. iso-8859-1); we promise utf-8, so the bytes go in as they are */
    stream = g_mime_stream_mem_new_with_buffer(text, strlen(text));
    wrapper = g_mime_data_wrapper_new_with_stream(stream,
                                                  GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(GMIME_PART(part), wrapper);
    g_object_unref(wrapper);
    g_object_unref(stream);
    g_mime_text_part_set_charset(part, "utf-8");
    /* 7bit when it is, else QP or base64: safe for any relay */
    enc = g_mime_part_get_best_content_encoding(GMIME_PART(part),
                                                GMIME_ENCODING_CONSTRAINT_7BIT);
    g_mime_part_set_content_encoding(GMIME_PART(part), enc);
    free(text);
    return GMIME_OBJECT(part);
}

static GMimeObject *
body_part(const struct compose_spec *s)
{
    GMimeMultipart *alt;
    GMimeObject *part;

    if (s->html == NULL)
        return text_part("plain", s->text);
    alt = g_mime_multipart_new_with_subtype("alternative");
    part = text_part("plain", s->text);
    g_mime_multipart_add(alt, part);
    g_object_unref(part);
    part = text_part("html", s->html);
    g_mime_multipart_add(alt, part);
    g_object_unref(part);
    return GMIME_OBJECT(alt);
}

static void
set_date(GMimeMessage *msg, long long date_ms)
{
    GDateTime *dt;
    gint64 secs;

    if (date_ms == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        secs = (gint64)ts.tv_sec;
    } else {
        /* floor, also for dates before 1970 */
        secs = (gint64)(date_ms / 1000 - (date_ms % 1000 < 0));
    }
    dt = g_date_time_new_from_unix_utc(secs);
    if (dt == NULL)
        dt = g_date_time_new_from_unix_utc(0);
    g_mime_message_set_date(msg, dt);
    g_date_time_unref(dt);
}

static void
set_threading(GMimeMessage *msg, const struct compose_spec *s)
{
    GMimeObject *obj = GMIME_OBJECT(msg);
    struct buf v;
    size_t i;

    buf_init(&v);
    if (s->in_reply_to != NULL) {
        buf_printf(&v, "<%s>", s->in_reply_to);
        g_mime_object_set_header(obj, "In-Reply-To", v.data, NULL);
    }
    if (s->n_references > 0) {
        buf_reset(&v);
        for (i = 0; i < s->n_references; i++)
            buf_printf(&v, "%s<%s>", i > 0 ? " " : "", s->references[i]);
        g_mime_object_set_header(obj, "References", v.data, NULL);
    }
    buf_release(&v);
}

static GMimeMessage *
build(const struct compose_spec *s, const char *msgid)
{
    GMimeMessage *msg = g_mime_message_new(TRUE);
    GMimeObject *obj = GMIME_OBJECT(msg);
    GMimeObject *body;
    char *text;
    size_t i;

    text = header_text(s->from_name);
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM,
                               *text != '\0' ? text : NULL, s->from);
    free(text);
    for (i = 0; i < s->n_to; i++)
        g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL,
                                   s->to[i]);
    for (i = 0; i < s->n_cc; i++)
        g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_CC, NULL,
                                   s->cc[i]);
    if (s->reply_to != NULL)
        g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_REPLY_TO, NULL,
                                   s->reply_to);
    text = header_text(s->subject);
    g_mime_message_set_subject(msg, text, "utf-8");
    free(text);
    set_date(msg, s->date_ms);
    g_mime_message_set_message_id(msg, msgid);
    set_threading(msg, s);
    if (s->auto_submitted != NULL)
        g_mime_object_set_header(obj, "Auto-Submitted", s->auto_submitted,
                                 NULL);
    for (i = 0; i < s->n_extra; i++)
        g_mime_object_append_header(obj, s->extra_headers[2 * i],
                                    s->extra_headers[2 * i + 1], "utf-8");
    body = body_part(s);
    g_mime_message_set_mime_part(msg, body);
    g_object_unref(body);
    return msg;
}

int
compose_message(const struct compose_spec *spec, struct buf *out,
                struct buf *message_id, char *err, size_t errlen)
{
    GMimeFormatOptions *fmt;
    GMimeMessage *msg;
    GMimeStream *stream;
    GByteArray *bytes;
    struct buf id;
    int rc = 0;

    if (spec == NULL || out == NULL)
        return fail(err, errlen, "compose", "no message");
    mime_init();    /* once per process; callers need not know GMime */
    if (check_spec(spec, err, errlen) != 0)
        return -1;
    buf_init(&id);
    if (spec->message_id != NULL) {
        buf_adds(&id, spec->message_id);
    } else if (new_message_id(spec->message_id_domain, &id) != 0) {
        buf_release(&id);
        return fail(err, errlen, "message-id", "no randomness");
    }
    msg = build(spec, id.data);
    fmt = g_mime_format_options_clone(g_mime_format_options_get_default());
    g_mime_format_options_set_newline_format(fmt, GMIME_NEWLINE_FORMAT_DOS);
    bytes = g_byte_array_new();
    stream = g_mime_stream_mem_new_with_byte_array(bytes);
    /* the stream owns BYTES until we take them back below */
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
    if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), fmt, stream) < 0 ||
        g_mime_stream_flush(stream) != 0) {
        rc = fail(err, errlen, "compose", "GMime could not write the message");
    } else {
        buf_reset(out);
        buf_add(out, bytes->data, bytes->len);
        if (message_id != NULL) {
            buf_reset(message_id);
            buf_add(message_id, id.data, id.len);
        }
    }
    g_object_unref(stream);
    g_byte_array_free(bytes, TRUE);
    g_mime_format_options_free(fmt);
    g_object_unref(msg);
    buf_release(&id);
    return rc;
}
