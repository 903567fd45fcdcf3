/*
 * t_compose.c - tests for src/mail/compose.c: the strict address check
 * (table), messages composed and parsed back with mime_parse to the same
 * attributes, CRLF line ends, Date and Message-ID, and refusal of bad
 * addresses, message ids and extra headers (header injection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "picomail/buf.h"
#include "picomail/compose.h"
#include "picomail/mem.h"
#include "picomail/mime.h"
#include "picomail/value.h"
#include "tap.h"

struct addr_case {
    const char *addr;
    bool valid;
};

static void
test_addr_valid(void)
{
    static char local65[80], local64[80], dom254[300], dom253[300];
    static char label64[100], label63[100];
    const struct addr_case cases[] = {
        {"a@b", true},
        {"alice@example.org", true},
        {"first.last+tag@sub.example.co.uk", true},
        {"a-b_c=d@x-y.example", true},
        {"user%host@example.org", true},
        {"123@456.789", true},
        {"\xc3\xa9l\xc3\xa8ve@example.org", true},     /* UTF-8 local */
        {"\xe7\x94\xa8\xe6\x88\xb7@example.org", true},
        {"\xf0\x9f\x98\x80@example.org", true},         /* 4-byte UTF-8 */
        {"", false},
        {"a", false},
        {"@example.org", false},
        {"alice@", false},
        {"a@b@c", false},
        {"alice@example.org\r\nRCPT TO:<x@y>", false},
        {"\r\nalice@example.org", false},
        {"alice\n@example.org", false},
        {"alice@exa\rmple.org", false},
        {"alice@example.org\n", false},
        {"al ice@example.org", false},
        {"alice@example.org ", false},
        {"\talice@example.org", false},
        {"<alice@example.org>", false},
        {"alice@example.org>", false},
        {"a,b@example.org", false},
        {"a@b.org,c@d.org", false},
        {"a;b@example.org", false},
        {"\"a\"@example.org", false},
        {"\"a@b\"@evil.example", false},
        {"a\\b@example.org", false},
        {"(c)a@example.org", false},
        {"a\x7f@example.org", false},
        {"a\x01@example.org", false},
        {"user@[127.0.0.1]", false},
        {"alice@-example.org", false},
        {"alice@example-.org", false},
        {"alice@ex.-a.org", false},
        {"alice@example..org", false},
        {"alice@.example.org", false},
        {"alice@example.org.", false},
        {"alice@exa_mple.org", false},
        {"alice@\xc3\xa9xample.org", false},           /* no U-labels */
        {"\xc3@example.org", false},                    /* cut UTF-8 */
        {"\xc0\xaf@example.org", false},                /* overlong */
        {"\xed\xa0\x80@example.org", false},            /* surrogate */
        {"\xc2\x85@example.org", false},                /* C1 NEL */
        {"\xff@example.org", false},
        {local65, false},
        {local64, true},
        {dom254, false},
        {dom253, true},
        {label64, false},
        {label63, true},
    };
    size_t i;
    char name[160];

    /* 65 and 64 byte local parts */
    memset(local65, 'l', 65);
    memcpy(local65 + 65, "@example.org", 13);
    memset(local64, 'l', 64);
    memcpy(local64 + 64, "@example.org", 13);
    /* domains of 254 and 253 bytes: "a@" then labels of 49 + '.' */
    {
        size_t n = 0, k;
        dom253[n++] = 'a';
        dom253[n++] = '@';
        for (k = 0; k < 5; k++) {
            memset(dom253 + n, 'd', 49);
            n += 49;
            dom253[n++] = '.';
        }
        memset(dom253 + n, 'e', 3);    /* 5*50 + 3 = 253 */
        n += 3;
        dom253[n] = '\0';
        memcpy(dom254, dom253, n);
        dom254[n] = 'e';
        dom254[n + 1] = '\0';
    }
    memcpy(label64, "a@", 2);
    memset(label64 + 2, 'x', 64);
    memcpy(label64 + 66, ".org", 5);
    memcpy(label63, "a@", 2);
    memset(label63 + 2, 'x', 63);
    memcpy(label63 + 65, ".org", 5);

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = NULL;
        bool got = addr_valid(cases[i].addr, &why);
        snprintf(name, sizeof name, "addr_valid #%zu %.60s", i,
                 cases[i].addr);
        t_eq_int(got, cases[i].valid, name);
        if (!cases[i].valid)
            t_ok(why != NULL && *why != '\0', "a reason is given");
    }
    t_ok(!addr_valid(NULL, NULL), "NULL address refused, NULL why ok");
}

/* The string attribute PATH of the parsed message, or NULL. */
static const char *
attr_str(const struct mime_result *r, const char *key)
{
    const kval *v = kval_map_get_str(&r->attrs, key);
    if (v == NULL || kval_kind(v) != KV_STRING)
        return NULL;
    return kval_str_ptr(v);
}

static const char *
attr_elem(const struct mime_result *r, const char *key, size_t i)
{
    const kval *v = kval_map_get_str(&r->attrs, key);
    if (v == NULL || kval_kind(v) != KV_ARRAY || i >= kval_array_len(v))
        return NULL;
    v = kval_array_get(v, i);
    return kval_kind(v) == KV_STRING ? kval_str_ptr(v) : NULL;
}

static size_t
attr_len(const struct mime_result *r, const char *key)
{
    const kval *v = kval_map_get_str(&r->attrs, key);
    if (v == NULL || kval_kind(v) != KV_ARRAY)
        return (size_t)-1;
    return kval_array_len(v);
}

static const char *
header_str(const struct mime_result *r, const char *name)
{
    const kval *h = kval_map_get_str(&r->attrs, "headers");
    const kval *v;
    if (h == NULL || kval_kind(h) != KV_MAP)
        return NULL;
    v = kval_map_get_str(h, name);
    if (v == NULL || kval_kind(v) != KV_STRING)
        return NULL;
    return kval_str_ptr(v);
}

/* Every "\n" is preceded by "\r" and no "\r" stands alone. */
static bool
all_crlf(const char *s, size_t len)
{
    size_t i;

    if (len < 2 || s[len - 2] != '\r' || s[len - 1] != '\n')
        return false;
    for (i = 0; i < len; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            return false;
        if (s[i] == '\r' && (i + 1 >= len || s[i + 1] != '\n'))
            return false;
    }
    return true;
}

/* Headers block of MSG (up to the blank line) has a line starting NAME. */
static bool
has_header_line(const char *msg, const char *name)
{
    const char *end = strstr(msg, "\r\n\r\n");
    const char *p = msg;
    size_t n = strlen(name);

    while (p != NULL && (end == NULL || p < end)) {
        if (strncasecmp(p, name, n) == 0)
            return true;
        p = strstr(p, "\r\n");
        if (p != NULL)
            p += 2;
    }
    return false;
}

static void
base_spec(struct compose_spec *s)
{
    static const char *const to[] = {"bob@example.net", "carol@example.com"};
    static const char *const cc[] = {"dave@example.org"};

    memset(s, 0, sizeof *s);
    s->from = "alice@picos.example.org";
    s->from_name = "Alice";
    s->to = to;
    s->n_to = 2;
    s->cc = cc;
    s->n_cc = 1;
    s->subject = "Hello";
    s->text = "plain text\nsecond line\n";
    s->message_id_domain = "picos.example.org";
    s->date_ms = 1700000000123LL;
}

static int
compose_parse(const struct compose_spec *s, struct buf *out,
              struct buf *id, struct mime_result *r)
{
    char err[256];
    struct mime_options opt = {0, NULL};

    err[0] = '\0';
    if (compose_message(s, out, id, err, sizeof err) != 0) {
        printf("# compose: %s\n", err);
        return -1;
    }
    if (mime_parse(out->data, out->len, &opt, r, err, sizeof err) != 0) {
        printf("# parse: %s\n", err);
        return -1;
    }
    return 0;
}

static void
test_roundtrip_ascii(void)
{
    static const char *const refs[] = {"r1@x.example", "orig@y.example"};
    static const char *const extra[] = {"X-Picos-Loop", "chan1",
                                        "X-Auto-Response-Suppress", "All"};
    struct compose_spec s;
    struct buf out, id;
    struct mime_result r;
    const char *v;

    base_spec(&s);
    s.reply_to = "replies@picos.example.org";
    s.in_reply_to = "orig@y.example";
    s.references = refs;
    s.n_references = 2;
    s.auto_submitted = "auto-replied";
    s.extra_headers = extra;
    s.n_extra = 2;
    buf_init(&out);
    buf_init(&id);
    if (compose_parse(&s, &out, &id, &r) != 0) {
        t_ok(0, "ascii message composes and parses");
        buf_release(&out);
        buf_release(&id);
        return;
    }
    t_ok(all_crlf(out.data, out.len), "every line ends in CRLF");
    t_eq_str(attr_str(&r, "from"), "alice@picos.example.org", "from");
    t_eq_str(attr_str(&r, "from_name"), "Alice", "from_name");
    t_eq_int(attr_len(&r, "to"), 2, "two to");
    t_eq_str(attr_elem(&r, "to", 0), "bob@example.net", "to 0");
    t_eq_str(attr_elem(&r, "to", 1), "carol@example.com", "to 1");
    t_eq_int(attr_len(&r, "cc"), 1, "one cc");
    t_eq_str(attr_elem(&r, "cc", 0), "dave@example.org", "cc 0");
    t_eq_str(attr_str(&r, "reply_to"), "replies@picos.example.org",
             "reply_to");
    t_eq_str(attr_str(&r, "subject"), "Hello", "subject");
    t_eq_str(attr_str(&r, "in_reply_to"), "orig@y.example", "in_reply_to");
    t_eq_int(attr_len(&r, "references"), 2, "two references");
    t_eq_str(attr_elem(&r, "references", 0), "r1@x.example", "ref 0");
    t_eq_str(attr_elem(&r, "references", 1), "orig@y.example", "ref 1");
    t_eq_str(attr_str(&r, "message_id"), id.data, "message id returned");
    t_ok(id.len == 32 + 1 + strlen("picos.example.org") &&
             strcmp(id.data + 33, "picos.example.org") == 0 &&
             strspn(id.data, "0123456789abcdef") == 32,
         "message id is 128 random bits @ domain");
    t_eq_str(attr_str(&r, "date"), "2023-11-14T22:13:20Z", "date UTC");
    t_ok(strstr(out.data, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n")
             != NULL, "Date header RFC 5322 in UTC");
    v = attr_str(&r, "text");
    t_ok(v != NULL && strstr(v, "plain text") != NULL &&
             strstr(v, "second line") != NULL, "text body");
    t_ok(kval_is_null(kval_map_get_str(&r.attrs, "html")) ||
             kval_map_get_str(&r.attrs, "html") == NULL, "no html");
    t_eq_str(header_str(&r, "auto-submitted"), "auto-replied",
             "auto-submitted");
    t_eq_str(header_str(&r, "x-picos-loop"), "chan1", "extra header");
    t_eq_str(header_str(&r, "x-auto-response-suppress"), "All",
             "second extra header");
    t_eq_str(header_str(&r, "mime-version"), "1.0", "MIME-Version");
    /* 7bit is the default: GMime writes no Content-Transfer-Encoding */
    t_ok(strstr(out.data, "quoted-printable") == NULL &&
             strstr(out.data, "base64") == NULL &&
             strstr(out.data, "plain text\r\nsecond line\r\n") != NULL,
         "ASCII body is 7bit, as written");
    t_ok(strstr(out.data, "charset=utf-8") != NULL, "charset utf-8");
    mime_result_release(&r);

    /* a second message gets a different id */
    {
        struct buf out2, id2;
        char err[128];
        buf_init(&out2);
        buf_init(&id2);
        t_eq_int(compose_message(&s, &out2, &id2, err, sizeof err), 0,
                 "second compose");
        t_ok(strcmp(id.data, id2.data) != 0, "message ids differ");
        buf_release(&out2);
        buf_release(&id2);
    }
    buf_release(&out);
    buf_release(&id);
}

static void
test_roundtrip_utf8(void)
{
    struct compose_spec s;
    struct buf out;
    struct mime_result r;
    const char *v;
    const char *subject = "R\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80"
                          " caf\xc3\xa9";
    const char *name = "Jos\xc3\xa9 M\xc3\xbcller";
    const char *text = "Gr\xc3\xbc\xc3\x9f""e\r\nzweite Zeile\rdritte\n";

    base_spec(&s);
    s.subject = subject;
    s.from_name = name;
    s.text = text;
    s.html = "<p>Gr\xc3\xbc\xc3\x9f""e</p>\n";
    s.n_cc = 0;
    s.cc = NULL;
    s.date_ms = 0;
    buf_init(&out);
    if (compose_parse(&s, &out, NULL, &r) != 0) {
        t_ok(0, "utf-8 message composes and parses");
        buf_release(&out);
        return;
    }
    t_ok(all_crlf(out.data, out.len), "utf-8: every line ends in CRLF");
    t_eq_str(attr_str(&r, "subject"), subject, "utf-8 subject");
    t_eq_str(attr_str(&r, "from_name"), name, "utf-8 from_name");
    t_ok(strstr(out.data, "=?") != NULL, "encoded words used");
    t_ok(strstr(out.data, "Jos\xc3\xa9") == NULL &&
             strstr(out.data, "R\xc3\xa9sum") == NULL,
         "no raw 8-bit in the headers or body");
    t_ok(strstr(out.data, "multipart/alternative") != NULL, "alternative");
    v = attr_str(&r, "text");
    t_ok(v != NULL && strstr(v, "Gr\xc3\xbc\xc3\x9f""e") != NULL &&
             strstr(v, "zweite Zeile") != NULL && strstr(v, "dritte") != NULL,
         "utf-8 text body");
    v = attr_str(&r, "html");
    t_ok(v != NULL && strstr(v, "<p>Gr\xc3\xbc\xc3\x9f""e</p>") != NULL,
         "html body");
    t_eq_int(attr_len(&r, "cc"), 0, "no cc");
    t_ok(attr_str(&r, "reply_to") == NULL, "no reply_to");
    t_ok(header_str(&r, "auto-submitted") == NULL, "no auto-submitted");
    t_ok(attr_str(&r, "date") != NULL, "date now");
    mime_result_release(&r);
    buf_release(&out);
}

/* CR/LF in the subject and display name must not create a header. */
static void
test_injection(void)
{
    struct compose_spec s;
    struct buf out;
    struct mime_result r;
    const char *v;

    base_spec(&s);
    s.subject = "Hi\r\nBcc: victim@evil.example\r\nX-Injected: yes";
    s.from_name = "Eve\r\nX-Injected2: yes";
    s.text = "body\r\n.\r\nMAIL FROM:<x@y>\r\n";
    buf_init(&out);
    if (compose_parse(&s, &out, NULL, &r) != 0) {
        t_ok(0, "injection message composes and parses");
        buf_release(&out);
        return;
    }
    t_ok(header_str(&r, "x-injected") == NULL, "no injected header");
    t_ok(header_str(&r, "x-injected2") == NULL, "no injected header (name)");
    t_ok(header_str(&r, "bcc") == NULL, "no injected bcc");
    t_ok(!has_header_line(out.data, "Bcc:") &&
             !has_header_line(out.data, "X-Injected"),
         "no injected header line");
    v = attr_str(&r, "subject");
    t_ok(v != NULL && strchr(v, '\r') == NULL && strchr(v, '\n') == NULL &&
             strncmp(v, "Hi", 2) == 0, "subject folded to one line");
    t_ok(all_crlf(out.data, out.len), "injection: CRLF");
    mime_result_release(&r);
    buf_release(&out);
}

struct refusal {
    const char *what;
    int field;          /* which spec field the value goes into */
    const char *a, *b;
};

enum { F_FROM, F_TO, F_CC, F_REPLY, F_IRT, F_REF, F_AUTO, F_EXTRA, F_DOM };

static void
test_refusals(void)
{
    const struct refusal cases[] = {
        {"from a@b@c", F_FROM, "a@b@c", NULL},
        {"from CRLF", F_FROM, "a@b.org\r\nRCPT TO:<x@y.org>", NULL},
        {"from empty", F_FROM, "", NULL},
        {"from NULL", F_FROM, NULL, NULL},
        {"to angle", F_TO, "<bob@example.net>", NULL},
        {"to comma", F_TO, "a@b.org,c@d.org", NULL},
        {"cc space", F_CC, "da ve@example.org", NULL},
        {"reply_to quoted", F_REPLY, "\"x\"@example.org", NULL},
        {"in_reply_to CRLF", F_IRT, "a@b\r\nX-I: y", NULL},
        {"in_reply_to brackets", F_IRT, "<a@b>", NULL},
        {"in_reply_to empty", F_IRT, "", NULL},
        {"reference space", F_REF, "a b@c", NULL},
        {"auto_submitted CRLF", F_AUTO, "auto-replied\r\nX-I: y", NULL},
        {"extra name colon", F_EXTRA, "X-A:B", "v"},
        {"extra name space", F_EXTRA, "X A", "v"},
        {"extra name empty", F_EXTRA, "", "v"},
        {"extra name CRLF", F_EXTRA, "X-A\r\nBcc", "v"},
        {"extra name unicode", F_EXTRA, "X-\xc3\xa9", "v"},
        {"extra value CRLF", F_EXTRA, "X-A", "v\r\nBcc: e@evil.example"},
        {"extra value LF", F_EXTRA, "X-A", "v\nBcc: e@evil.example"},
        {"extra value CR", F_EXTRA, "X-A", "v\r"},
        {"extra value DEL", F_EXTRA, "X-A", "v\x7f"},
        {"extra value NULL", F_EXTRA, "X-A", NULL},
        {"extra value bad UTF-8", F_EXTRA, "X-A", "v\xff"},
        {"extra From", F_EXTRA, "From", "x@y.org"},
        {"extra to (case)", F_EXTRA, "to", "x@y.org"},
        {"extra Bcc", F_EXTRA, "Bcc", "x@y.org"},
        {"extra Subject", F_EXTRA, "SUBJECT", "x"},
        {"extra Message-ID", F_EXTRA, "Message-Id", "<x@y>"},
        {"extra References", F_EXTRA, "References", "<x@y>"},
        {"extra Auto-Submitted", F_EXTRA, "Auto-Submitted", "no"},
        {"extra MIME-Version", F_EXTRA, "mime-version", "1.0"},
        {"extra Content-Type", F_EXTRA, "Content-Type", "text/html"},
        {"extra content-transfer", F_EXTRA, "content-transfer-encoding",
         "8bit"},
        {"extra Date", F_EXTRA, "Date", "x"},
        {"extra Reply-To", F_EXTRA, "Reply-To", "x@y.org"},
        {"extra In-Reply-To", F_EXTRA, "In-Reply-To", "<x@y>"},
        {"message_id_domain bad", F_DOM, "bad domain", NULL},
        {"message_id_domain NULL", F_DOM, NULL, NULL},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *one[1];
        const char *pair[2];
        struct compose_spec s;
        struct buf out;
        char err[256];
        int rc;

        base_spec(&s);
        one[0] = cases[i].a;
        pair[0] = cases[i].a;
        pair[1] = cases[i].b;
        switch (cases[i].field) {
        case F_FROM: s.from = cases[i].a; break;
        case F_TO: s.to = one; s.n_to = 1; break;
        case F_CC: s.cc = one; s.n_cc = 1; break;
        case F_REPLY: s.reply_to = cases[i].a; break;
        case F_IRT: s.in_reply_to = cases[i].a; break;
        case F_REF: s.references = one; s.n_references = 1; break;
        case F_AUTO: s.auto_submitted = cases[i].a; break;
        case F_EXTRA: s.extra_headers = pair; s.n_extra = 1; break;
        case F_DOM: s.message_id_domain = cases[i].a; break;
        default: break;
        }
        buf_init(&out);
        err[0] = '\0';
        rc = compose_message(&s, &out, NULL, err, sizeof err);
        t_eq_int(rc, -1, cases[i].what);
        t_ok(err[0] != '\0' && out.len == 0, "reason given, nothing out");
        buf_release(&out);
    }
    {
        struct compose_spec s;
        struct buf out;
        char err[64];

        base_spec(&s);
        s.n_to = 0;
        buf_init(&out);
        t_eq_int(compose_message(&s, &out, NULL, err, sizeof err), -1,
                 "no recipient refused");
        t_eq_int(compose_message(NULL, &out, NULL, err, sizeof err), -1,
                 "NULL spec refused");
        buf_release(&out);
    }
}

/* A long ASCII line and 8-bit text still give CRLF and 7-bit output. */
static void
test_body_encodings(void)
{
    struct compose_spec s;
    struct buf out, text;
    struct mime_result r;
    size_t i;

    buf_init(&text);
    for (i = 0; i < 1200; i++)
        buf_addc(&text, (char)('a' + i % 26));
    buf_adds(&text, "\n\xe2\x82\xac end\n");
    base_spec(&s);
    s.text = text.data;
    buf_init(&out);
    if (compose_parse(&s, &out, NULL, &r) != 0) {
        t_ok(0, "long line composes");
    } else {
        const char *v = attr_str(&r, "text");
        bool short_lines = true;
        const char *p = out.data;
        while (p != NULL && *p != '\0') {
            const char *e = strstr(p, "\r\n");
            if (e == NULL || e - p > 998)
                short_lines = false;
            p = e != NULL ? e + 2 : NULL;
        }
        t_ok(short_lines, "no line over 998 bytes");
        t_ok(all_crlf(out.data, out.len), "long line: CRLF");
        for (i = 0; i < out.len; i++)
            if ((unsigned char)out.data[i] >= 0x80)
                break;
        t_eq_int(i, out.len, "7-bit output");
        t_ok(v != NULL && strncmp(v, text.data, 1200) == 0 &&
                 strstr(v, "\xe2\x82\xac end") != NULL,
             "long line decoded back");
        mime_result_release(&r);
    }
    buf_release(&out);
    buf_release(&text);
}

int
main(void)
{
    mime_init();
    test_addr_valid();
    test_roundtrip_ascii();
    test_roundtrip_utf8();
    test_injection();
    test_refusals();
    test_body_encodings();
    return tap_done();
}
