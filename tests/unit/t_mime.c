/*
 * t_mime.c - tests for src/mail/mime.c: each message of tests/mail/corpus/
 * parsed and its event attributes checked (as JSON, one path at a time),
 * attachment records and their kept content, Authentication-Results trust,
 * refusal of what is not mail, and no crash on every prefix of every
 * message of the corpus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/mime.h"
#include "picomail/value.h"
#include "tap.h"

#ifndef CORPUS_DIR
#define CORPUS_DIR "tests/mail/corpus"
#endif

#define TRUSTED "mx.picos.example.org"
#define ABSENT "<absent>"

static char *
read_corpus(const char *name, size_t *len)
{
    char path[512];
    char chunk[8192];
    struct buf b;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, name);
    fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        buf_add(&b, chunk, n);
    fclose(fp);
    return buf_take(&b, len);
}

/* The value at a dotted PATH ("headers.received.1"), or NULL. */
static const kval *
lookup(const kval *v, const char *path)
{
    char part[256];

    while (v != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");
        if (n >= sizeof part)
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        path += n + (path[n] == '.');
        if (kval_kind(v) == KV_MAP) {
            v = kval_map_get_str(v, part);
        } else if (kval_kind(v) == KV_ARRAY) {
            char *end;
            unsigned long i = strtoul(part, &end, 10);
            if (*end != '\0' || i >= kval_array_len(v))
                return NULL;
            v = kval_array_get(v, i);
        } else {
            return NULL;
        }
    }
    return v;
}

/* JSON of the value at PATH; "null" for null, ABSENT when missing. */
static char *
json_at(const kval *attrs, const char *path)
{
    const kval *v = lookup(attrs, path);
    char *s;

    if (v == NULL)
        return xstrdup(ABSENT);
    if (kval_is_null(v))
        return xstrdup("null");
    s = json_to_cstr(v, JSON_DATA);
    return s != NULL ? s : xstrdup("<refused>");
}

struct check {
    const char *path;
    const char *json;               /* expected JSON text, or ABSENT */
};

struct corpus_case {
    const char *file;
    struct check checks[24];
};

/* clang-format off */
static const struct corpus_case cases[] = {
    { "plain.eml", {
        { "from", "\"alice@example.net\"" },
        { "from_name", "\"Alice Example\"" },
        { "to", "[\"abc123@picos.example.org\",\"bob@example.com\"]" },
        { "cc", "[\"carol@example.com\",\"dave@example.com\","
                "\"erin@example.com\"]" },
        { "reply_to", "\"replies@example.net\"" },
        { "subject", "\"Plain hello\"" },
        { "date", "\"2026-03-03T10:00:00Z\"" },
        { "message_id", "\"m1.20260303@example.net\"" },
        { "in_reply_to", "\"m0.20260302@example.net\"" },
        { "references", "[\"r1@example.net\",\"r2@example.net\","
                        "\"m0.20260302@example.net\"]" },
        { "text", "\"Hello pico,\\nthis is a plain message.\\n\"" },
        { "html", "null" },
        { "attachments", "[]" },
        { "headers.subject", "\"Plain hello\"" },
        { "headers.return-path", "\"<alice@example.net>\"" },
        { "headers.received.1", "\"from laptop by mx1.example.net; "
                                "Tue, 3 Mar 2026 09:59:58 +0000\"" },
        { "headers.received.2", ABSENT },
        { "headers.references", "\"<r1@example.net> <r2@example.net> "
                                "<m0.20260302@example.net>\"" },
        { "headers.content-type", "\"text/plain; charset=us-ascii\"" },
        { "auth.dkim", "null" },
        { "auth.spf", "null" },
        { "auth.dmarc", "null" },
        { "envelope", ABSENT },
    } },
    { "alternative.eml", {
        { "from", "\"bob@example.com\"" },
        { "from_name", "null" },
        { "date", "\"2026-03-05T04:30:00Z\"" },
        { "text", "\"Caf\xc3\xa9 plain\"" },
        { "html", "\"<p>Caf\xc3\xa9 <b>html</b></p>\\n\"" },
        { "attachments", "[]" },
        { "cc", "[]" },
        { "references", "[]" },
        { "in_reply_to", "null" },
    } },
    { "nested.eml", {
        { "from_name", "\"Carol C.\"" },
        { "date", "\"2026-03-05T08:00:00Z\"" },
        { "text", "\"Body text\"" },
        { "html", "\"<p>Body html</p>\"" },
        { "attachments.0", "{\"content_type\":\"image/png\",\"size\":17,"
          "\"sha256\":\"e8576083af442d5889e0ed9b4a707a00"
          "7f0ada763f481615dbad81b69316541e\"}" },
        { "attachments.0.filename", "null" },
        { "attachments.1", "{\"filename\":\"report.pdf\","
          "\"content_type\":\"application/pdf\",\"size\":23,"
          "\"sha256\":\"1555091150ebfc9ac0e20e795f5c21af"
          "025b7cacb5a830a9a2e249819f1c259c\"}" },
        { "attachments.2", "{\"filename\":\"na\xc3\xafve notes.txt\","
          "\"content_type\":\"text/plain\",\"size\":14,"
          "\"sha256\":\"311ab1a6cbbf4402f3a89762cea2cc14"
          "2932037b82d1ae1d26002c6fc970111e\"}" },
        { "attachments.3.filename", "\"fwd.eml\"" },
        { "attachments.3.content_type", "\"message/rfc822\"" },
        { "attachments.4", ABSENT },
    } },
    { "encoded-words.eml", {
        { "from", "\"francois@example.fr\"" },
        { "from_name", "\"Fran\xc3\xa7ois M\xc3\xbcller\"" },
        { "to", "[\"zoe@example.org\"]" },
        { "subject", "\"Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 \xe6\x97\xa5"
                     "\xe6\x9c\xac und Stra\xc3\x9f" "e\"" },
        { "headers.subject", "\"Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 "
                     "\xe6\x97\xa5\xe6\x9c\xac und Stra\xc3\x9f" "e\"" },
        { "headers.x-note", "\"caf\xc3\xa9 plain\"" },
        { "text", "\"Body.\\n\"" },
    } },
    { "latin1-body.eml", {
        { "text", "\"Gr\xc3\xbc\xc3\x9f" "e, na\xc3\xafve caf\xc3\xa9.\\n\"" },
        { "subject", "\"latin1\"" },
        { "date", "null" },
        { "message_id", "null" },
    } },
    { "cp1252-body.eml", {
        { "text", "\"\xe2\x80\x9cQuoted\xe2\x80\x9d costs \xe2\x82\xac"
                  "5 \xe2\x80\x93 ok\\n\"" },
    } },
    { "unknown-charset.eml", {
        { "text", "\"plain ascii \xef\xbf\xbd\\n\"" },
    } },
    { "broken-boundary.eml", {
        { "text", "\"first part\"" },
        { "attachments.0.filename", "\"cut.bin\"" },
        { "attachments.0.size", "3" },
        { "attachments.0.sha256", "\"ba7816bf8f01cfea414140de5dae2223"
                                  "b00361a396177a9cb410ff61f20015ad\"" },
    } },
    { "bad-base64.eml", {
        { "subject", "\"bad base64\"" },
        { "attachments.0.filename", "\"x.bin\"" },
        { "attachments.0.size", "0" },
        { "attachments.0.sha256", "\"e3b0c44298fc1c149afbf4c8996fb924"
                                  "27ae41e4649b934ca495991b7852b855\"" },
    } },
    { "invalid-utf8.eml", {
        { "from", "\"bad@example.net\"" },
        { "text", "\"ok \xef\xbf\xbd( \xf0\x9f\x98\x80 \xef\xbf\xbd\\n\"" },
        /* undeclared 8-bit header bytes that are not UTF-8: U+FFFD, not a
         * guess at Latin-1 that would depend on the locale */
        { "from_name", "\"\xef\xbf\xbd\xef\xbf\xbd Bad\"" },
        { "subject", "\"bad \xef\xbf\xbd( bytes \xef\xbf\xbd\xef\xbf\xbd"
                     "\xef\xbf\xbd end\"" },
        { "headers.x-raw", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
    } },
    { "huge-header.eml", {
        { "subject", "\"huge\"" },
        { "text", "\"small body\\n\"" },
    } },
    { "repeated-headers.eml", {
        { "headers.received", "[\"hop 0\",\"hop 1\",\"hop 2\"]" },
        { "headers.x-spam.0", "\"0\"" },
        { "headers.x-spam.99", "\"99\"" },
        { "headers.x-spam.100", ABSENT },
        { "headers.subject", "[\"repeated\",\"second subject\"]" },
        { "subject", "\"repeated\"" },
        { "text", "\"body\\n\"" },
    } },
    { "json-body.eml", {
        { "temperature", "21.5" },
        { "unit", "\"C\"" },
        { "nested", "{\"a\":[1,2]}" },
        { "subject", "\"reading\"" },
        { "envelope", ABSENT },
        { "text", "null" },
        { "attachments.0.content_type", "\"application/json\"" },
        { "to", "[\"abc123+sensor.reading@picos.example.org\"]" },
    } },
    { "json-text-body.eml", {
        { "humidity", "40" },
        { "from", "\"iot@example.net\"" },
        { "attachments", "[]" },
    } },
    { "auth-trusted.eml", {
        { "auth", "{\"dkim\":\"pass\",\"spf\":\"softfail\","
                  "\"dmarc\":\"pass\"}" },
        { "headers.authentication-results.1",
          "\"other.example; dkim=fail; spf=fail; dmarc=fail\"" },
    } },
    { "auth-untrusted.eml", {
        { "auth.dkim", "null" },
        { "auth.spf", "null" },
        { "auth.dmarc", "null" },
        { "auth", "{}" },
    } },
    { "deep-nesting.eml", {
        { "subject", "\"deep\"" },
        { "text", "null" },
        { "attachments", "[]" },
    } },
    { "bad-date.eml", {
        { "date", "null" },
        { "message_id", "\"no-brackets@example.net\"" },
        { "to", "[]" },
        { "reply_to", "null" },
    } },
};
/* clang-format on */

static int
parse_file(const char *file, const struct mime_options *opt,
           struct mime_result *r)
{
    char err[256];
    size_t len;
    char *msg = read_corpus(file, &len);
    int rc;

    if (msg == NULL) {
        t_ok(0, file);
        return -1;
    }
    err[0] = '\0';
    rc = mime_parse(msg, len, opt, r, err, sizeof err);
    free(msg);
    if (rc != 0)
        printf("# %s: %s\n", file, err);
    return rc;
}

static void
test_corpus(void)
{
    struct mime_options opt = { 0, TRUSTED };
    size_t i, j;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mime_result r;
        char name[256];

        snprintf(name, sizeof name, "%s parses", cases[i].file);
        t_eq_int(parse_file(cases[i].file, &opt, &r), 0, name);
        if (kval_kind(&r.attrs) != KV_MAP) {
            mime_result_release(&r);
            continue;
        }
        for (j = 0; j < 24 && cases[i].checks[j].path != NULL; j++) {
            char *got = json_at(&r.attrs, cases[i].checks[j].path);
            snprintf(name, sizeof name, "%s: %s", cases[i].file,
                     cases[i].checks[j].path);
            t_eq_str(got, cases[i].checks[j].json, name);
            free(got);
        }
        /* the whole attribute map always encodes (valid UTF-8 only) */
        {
            char *all = json_to_cstr(&r.attrs, JSON_DATA);
            snprintf(name, sizeof name, "%s: attrs encode as JSON",
                     cases[i].file);
            t_ok(all != NULL, name);
            free(all);
        }
        mime_result_release(&r);
    }
}

/* Messages without a header block are refused with a message. */
static void
test_refused(void)
{
    static const char *const files[] = {
        "no-headers.eml", "blank-first-line.eml", "mbox-from-line.eml",
    };
    static const struct {
        const char *text;
        size_t len;
    } inline_msgs[] = {
        { "", 0 },
        { ":", 1 },
        { "no colon here\n\nbody\n", 20 },
        { " Folded: at start\n\nx\n", 21 },
        { "Subject\n", 8 },
    };
    size_t i;

    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct mime_result r;
        t_eq_int(parse_file(files[i], NULL, &r), -1, files[i]);
        t_ok(kval_is_null(&r.attrs) && r.n_attachments == 0, files[i]);
        mime_result_release(&r);
    }
    for (i = 0; i < sizeof inline_msgs / sizeof inline_msgs[0]; i++) {
        struct mime_result r;
        char err[128] = "";
        int rc = mime_parse(inline_msgs[i].text, inline_msgs[i].len, NULL,
                            &r, err, sizeof err);
        t_eq_int(rc, -1, inline_msgs[i].text);
        t_ok(err[0] != '\0', "refusal says why");
        mime_result_release(&r);
    }
    {
        struct mime_result r;
        char err[128] = "";
        t_eq_int(mime_parse(NULL, 5, NULL, &r, err, sizeof err), -1,
                 "NULL message refused");
        mime_result_release(&r);
    }
    /* the smallest message that is mail */
    {
        struct mime_result r;
        char err[128] = "";
        t_eq_int(mime_parse("X: y", 4, NULL, &r, err, sizeof err), 0,
                 "one header, no body");
        t_eq_str(kval_str_ptr(kval_map_get_str(
                     kval_map_get_str(&r.attrs, "headers"), "x")),
                 "y", "one header value");
        mime_result_release(&r);
    }
}

/* Attachment records and the content kept up to max_attachment_keep. */
static void
test_attachment_keep(void)
{
    static const struct {
        size_t keep;
        size_t pdf_len;             /* bytes kept of the 23-byte PDF */
        size_t png_len;             /* of the 17-byte PNG */
    } keeps[] = {
        { 0, 0, 0 }, { 1, 1, 1 }, { 10, 10, 10 }, { 17, 17, 17 },
        { 23, 23, 17 }, { 24, 23, 17 }, { 1 << 20, 23, 17 },
    };
    static const char pdf[] = "%PDF-1.4 picomail test\n";
    static const unsigned char png[] = "\x89PNG\r\n\x1a\nfakeimage";
    size_t i;

    for (i = 0; i < sizeof keeps / sizeof keeps[0]; i++) {
        struct mime_options opt = { keeps[i].keep, NULL };
        struct mime_result r;
        char name[128];

        snprintf(name, sizeof name, "keep %zu: parses", keeps[i].keep);
        if (parse_file("nested.eml", &opt, &r) != 0) {
            t_ok(0, name);
            continue;
        }
        t_eq_int(r.n_attachments, 4, "four attachments");
        if (r.n_attachments == 4) {
            const struct mime_attachment *a = r.attachments;
            snprintf(name, sizeof name, "keep %zu: pdf", keeps[i].keep);
            t_eq_int(a[1].data_len, keeps[i].pdf_len, name);
            t_ok(a[1].data_len == 0 ? a[1].data == NULL
                 : memcmp(a[1].data, pdf, a[1].data_len) == 0, name);
            snprintf(name, sizeof name, "keep %zu: png", keeps[i].keep);
            t_eq_int(a[0].data_len, keeps[i].png_len, name);
            t_ok(a[0].data_len == 0 ? a[0].data == NULL
                 : memcmp(a[0].data, png, a[0].data_len) == 0, name);
            t_eq_int(a[1].size, 23, "size independent of keep");
            t_eq_str(a[1].sha256, "1555091150ebfc9ac0e20e795f5c21af"
                     "025b7cacb5a830a9a2e249819f1c259c", "pdf sha256");
            t_eq_str(a[1].filename, "report.pdf", "pdf filename");
            t_eq_str(a[1].content_type, "application/pdf", "pdf type");
            t_ok(a[0].filename == NULL, "png has no filename");
            t_eq_str(a[2].filename, "na\xc3\xafve notes.txt",
                     "RFC 2231 filename");
            t_eq_str(a[3].content_type, "message/rfc822", "message type");
            t_ok(a[3].size > 30 && strlen(a[3].sha256) == 64,
                 "attached message has size and hash");
        }
        mime_result_release(&r);
    }
}

/* Only the configured authserv-id counts. */
static void
test_auth_trust(void)
{
    static const struct {
        const char *trusted;
        const char *file;
        const char *want;
    } rows[] = {
        { NULL, "auth-trusted.eml", "{}" },
        { "other.example", "auth-trusted.eml",
          "{\"dkim\":\"fail\",\"spf\":\"fail\",\"dmarc\":\"fail\"}" },
        { "MX.PICOS.EXAMPLE.ORG", "auth-trusted.eml",
          "{\"dkim\":\"pass\",\"spf\":\"softfail\",\"dmarc\":\"pass\"}" },
        { "mx.picos.example", "auth-trusted.eml", "{}" },
        { "other.example", "auth-untrusted.eml",
          "{\"dkim\":\"pass\",\"spf\":\"pass\",\"dmarc\":\"pass\"}" },
        { "evil", "auth-untrusted.eml", "{\"dkim\":\"pass\"}" },
        { TRUSTED, "auth-untrusted.eml", "{}" },
    };
    size_t i;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct mime_options opt = { 0, rows[i].trusted };
        struct mime_result r;
        char name[128];

        snprintf(name, sizeof name, "auth %s trusting %s", rows[i].file,
                 rows[i].trusted ? rows[i].trusted : "(none)");
        if (parse_file(rows[i].file, &opt, &r) != 0) {
            t_ok(0, name);
            continue;
        }
        {
            char *got = json_at(&r.attrs, "auth");
            t_eq_str(got, rows[i].want, name);
            free(got);
        }
        mime_result_release(&r);
    }
}

/* Header values are capped; a 100 KB header does not come through whole. */
static void
test_caps(void)
{
    struct mime_result r;
    const kval *h, *v;

    if (parse_file("huge-header.eml", NULL, &r) != 0) {
        t_ok(0, "huge-header parses");
        return;
    }
    h = kval_map_get_str(&r.attrs, "headers");
    v = h != NULL ? kval_map_get_str(h, "x-huge") : NULL;
    t_ok(v != NULL && kval_kind(v) == KV_STRING, "x-huge kept");
    if (v != NULL && kval_kind(v) == KV_STRING) {
        t_eq_int(kval_str_bytes(v), 64 * 1024, "x-huge capped at 64 KiB");
        t_ok(strspn(kval_str_ptr(v), "x") == 64 * 1024, "x-huge content");
    }
    v = h != NULL ? kval_map_get_str(h, "x-folded") : NULL;
    t_ok(v != NULL && strncmp(kval_str_ptr(v), "word0 word1 word2", 17) == 0,
         "folded header unfolded");
    mime_result_release(&r);

    if (parse_file("invalid-utf8.eml", NULL, &r) == 0) {
        const kval *s = kval_map_get_str(&r.attrs, "subject");
        t_ok(s != NULL && strstr(kval_str_ptr(s), "bad ") != NULL
             && strstr(kval_str_ptr(s), " end") != NULL,
             "invalid UTF-8 subject kept around the bad bytes");
    } else {
        t_ok(0, "invalid-utf8 parses");
    }
    mime_result_release(&r);
}

/* A text part LEVELS multiparts deep; the walk stops at 32 levels. */
static void
test_nesting(void)
{
    static const struct {
        int levels;
        const char *text;           /* NULL: not reached */
    } rows[] = {
        { 0, "found\n" }, { 1, "found" }, { 31, "found" }, { 32, "found" },
        { 33, NULL }, { 3000, NULL },
    };
    size_t i;
    int k;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct buf b;
        struct mime_result r;
        char err[128], name[64];
        const kval *text;

        buf_init(&b);
        buf_adds(&b, "From: a@example.net\nMIME-Version: 1.0\n");
        for (k = 0; k < rows[i].levels; k++)
            buf_printf(&b, "Content-Type: multipart/mixed; "
                       "boundary=\"b%d\"\n\n--b%d\n", k, k);
        buf_adds(&b, "Content-Type: text/plain\n\nfound\n");
        for (k = rows[i].levels - 1; k >= 0; k--)
            buf_printf(&b, "--b%d--\n", k);
        snprintf(name, sizeof name, "nesting %d", rows[i].levels);
        if (mime_parse(b.data, b.len, NULL, &r, err, sizeof err) != 0) {
            t_ok(0, name);
            buf_release(&b);
            continue;
        }
        text = kval_map_get_str(&r.attrs, "text");
        t_ok(text != NULL, name);
        if (text != NULL && rows[i].text != NULL)
            t_eq_str(kval_is_null(text) ? "(null)" : kval_str_ptr(text),
                     rows[i].text, name);
        else if (text != NULL)
            t_ok(kval_is_null(text), name);
        mime_result_release(&r);
        buf_release(&b);
    }
}

/* Every prefix of every message: a result or a refusal, never a crash. */
static void
test_prefixes(void)
{
    static const char *const files[] = {
        "plain.eml", "alternative.eml", "nested.eml", "encoded-words.eml",
        "latin1-body.eml", "cp1252-body.eml", "broken-boundary.eml",
        "bad-base64.eml", "invalid-utf8.eml", "huge-header.eml",
        "repeated-headers.eml", "json-body.eml", "auth-trusted.eml",
        "deep-nesting.eml",
    };
    struct mime_options opt = { 8, TRUSTED };
    size_t i, cut, bad = 0, runs = 0;

    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len, step;
        char *msg = read_corpus(files[i], &len);

        if (msg == NULL) {
            t_ok(0, files[i]);
            continue;
        }
        step = len / 40 + 1;
        for (cut = 0; cut <= len; cut += step) {
            struct mime_result r;
            char err[128];
            /* a heap copy of exactly CUT bytes, so ASan sees overreads */
            char *copy = xmalloc(cut + 1);
            int rc;

            memcpy(copy, msg, cut);
            rc = mime_parse(copy, cut, &opt, &r, err, sizeof err);
            runs++;
            if (rc == 0) {
                char *all = json_to_cstr(&r.attrs, JSON_DATA);
                if (all == NULL || kval_kind(&r.attrs) != KV_MAP) {
                    printf("# %s cut %zu: bad result\n", files[i], cut);
                    bad++;
                }
                free(all);
            } else if (cut > (size_t)(strchr(msg, ':') - msg)
                       || !kval_is_null(&r.attrs)) {
                /* refused although the header block had begun */
                printf("# %s cut %zu: %s\n", files[i], cut, err);
                bad++;
            }
            mime_result_release(&r);
            free(copy);
        }
        free(msg);
    }
    t_ok(runs > 400, "prefixes parsed");
    t_eq_int(bad, 0, "every prefix gives a sane result or a refusal");
}

int
main(void)
{
    mime_init();
    mime_init();
    test_corpus();
    test_refused();
    test_attachment_keep();
    test_auth_trust();
    test_caps();
    test_nesting();
    test_prefixes();
    return tap_done();
}
