/*
 * lmtp.c - the server side of LMTP (RFC 2033) as an I/O-free state
 * machine; see lmtp.h.
 *
 * Input is appended to s->in and consumed from s->pos: whole command
 * lines in command state, message lines (or, for lines longer than
 * LMTP_LINE_MAX, chunks of them) in data state.  Once the final "." is
 * seen the session waits for lmtp_delivered() and leaves the rest of the
 * input untouched, so pipelined commands behind a message are answered
 * after its per-recipient replies, in order.
 */
#include "picomail/lmtp.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"

#define MAX_ERRORS 20           /* bad commands in a row before 421 */
#define ADDR_MAX 256            /* RFC 5321 path limit */

enum state {
    ST_CMD,
    ST_DATA,
    ST_WAIT,                    /* message complete, lmtp_delivered next */
    ST_CLOSED
};

/* The XFORWARD attributes we advertise, in the advertised order. */
static const char *const xf_names[] = {
    "NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"
};
#define N_XF (sizeof xf_names / sizeof xf_names[0])

struct lmtp_session {
    char *host;
    struct lmtp_limits lim;
    lmtp_rcpt_fn *rcpt_fn;
    void *ctx;

    enum state state;
    struct buf in;              /* received, not yet consumed from pos */
    size_t pos;
    int discarding;             /* rest of an overlong command line */
    int errors;                 /* bad commands in a row */

    char *lhlo;                 /* NULL before LHLO */
    char *xf[N_XF];             /* NULL when not given */

    /* the transaction */
    char *from;                 /* NULL before MAIL */
    char **rcpts;
    size_t n_rcpts, cap_rcpts;
    struct buf msg;
    size_t msg_size;            /* bytes seen, kept or not */
    int too_big;
    int mid_line;               /* data: not at the start of a line */
};

static int
ci_eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'a' && x <= 'z')
            x = (unsigned char)(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z')
            y = (unsigned char)(y - 'a' + 'A');
        if (x != y)
            return 0;
    }
    return 1;
}

/* ci_prefix - does S (LEN bytes) start with P, ignoring case? */
static int
ci_prefix(const char *s, size_t len, const char *p)
{
    size_t plen = strlen(p);
    return len >= plen && ci_eq(s, plen, p);
}

static void
reply(struct buf *out, const char *line)
{
    buf_adds(out, line);
    buf_add(out, "\r\n", 2);
}

/* reply_clean - a reply line from a caller: never let CR/LF split it */
static void
reply_clean(struct buf *out, const char *line)
{
    for (const char *p = line; *p != '\0'; p++)
        buf_addc(out, *p == '\r' || *p == '\n' ? ' ' : *p);
    buf_add(out, "\r\n", 2);
}

static void
reset_xforward(struct lmtp_session *s)
{
    for (size_t i = 0; i < N_XF; i++) {
        free(s->xf[i]);
        s->xf[i] = NULL;
    }
}

static void
reset_transaction(struct lmtp_session *s)
{
    free(s->from);
    s->from = NULL;
    for (size_t i = 0; i < s->n_rcpts; i++)
        free(s->rcpts[i]);
    s->n_rcpts = 0;
    buf_release(&s->msg);
    s->msg_size = 0;
    s->too_big = 0;
    s->mid_line = 0;
}

struct lmtp_session *
lmtp_session_new(const char *hostname, const struct lmtp_limits *lim,
                 lmtp_rcpt_fn *rcpt, void *ctx)
{
    struct lmtp_session *s = xcalloc(1, sizeof *s);
    s->host = xstrdup(hostname);
    s->lim = *lim;
    s->rcpt_fn = rcpt;
    s->ctx = ctx;
    s->state = ST_CMD;
    buf_init(&s->in);
    buf_init(&s->msg);
    return s;
}

struct lmtp_session *
lmtp_session_free(struct lmtp_session *s)
{
    if (s == NULL)
        return NULL;
    reset_transaction(s);
    reset_xforward(s);
    free(s->rcpts);
    free(s->lhlo);
    free(s->host);
    buf_release(&s->in);
    free(s);
    return NULL;
}

void
lmtp_greeting(struct lmtp_session *s, struct buf *out)
{
    buf_printf(out, "220 %s LMTP picomail ready\r\n", s->host);
}

/*
 * bad - reply to a bad command and count it; too many in a row close the
 * session (a peer that speaks no LMTP must not keep us busy)
 */
static void
bad(struct lmtp_session *s, struct buf *out, const char *line)
{
    reply(out, line);
    if (++s->errors >= MAX_ERRORS) {
        reply(out, "421 4.7.0 Too many errors");
        s->state = ST_CLOSED;
    }
}

static void
good(struct lmtp_session *s, struct buf *out, const char *line)
{
    reply(out, line);
    s->errors = 0;
}

/* skip_sp - skip spaces and tabs from *P up to END */
static const char *
skip_sp(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/*
 * parse_path - "<addr>" at P (after "FROM:" or "TO:"); the address goes
 * to *ADDR (malloc'd; a source route "@a,@b:" is dropped) and *REST
 * points after the '>'.  Returns 0, or -1 on bad syntax.
 */
static int
parse_path(const char *p, const char *end, char **addr, const char **rest)
{
    p = skip_sp(p, end);
    if (p == end || *p != '<')
        return -1;
    p++;
    const char *close = memchr(p, '>', (size_t)(end - p));
    if (close == NULL || close - p > ADDR_MAX)
        return -1;
    for (const char *q = p; q < close; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= ' ' || c == 0x7f || c == '<')
            return -1;
    }
    if (p < close && *p == '@') {
        const char *colon = memchr(p, ':', (size_t)(close - p));
        if (colon == NULL)
            return -1;
        p = colon + 1;
    }
    *addr = xmemdup(p, (size_t)(close - p));
    *rest = close + 1;
    return 0;
}

/*
 * next_param - the next "KEY[=VALUE]" word in [*P, END): sets key/klen
 * and val/vlen (val NULL without '=').  Returns 0 at the end, 1 for a
 * word, -1 when words are not separated by a space.
 */
static int
next_param(const char **p, const char *end, const char **key, size_t *klen,
           const char **val, size_t *vlen)
{
    const char *q = *p;
    if (q == end)
        return 0;
    if (*q != ' ' && *q != '\t')
        return -1;
    q = skip_sp(q, end);
    if (q == end)
        return 0;
    const char *w = q;
    while (q < end && *q != ' ' && *q != '\t')
        q++;
    const char *eq = memchr(w, '=', (size_t)(q - w));
    *key = w;
    *klen = (size_t)((eq ? eq : q) - w);
    *val = eq ? eq + 1 : NULL;
    *vlen = eq ? (size_t)(q - eq - 1) : 0;
    *p = q;
    return 1;
}

static void
cmd_mail(struct lmtp_session *s, const char *arg, const char *end,
         struct buf *out)
{
    if (s->lhlo == NULL) {
        bad(s, out, "503 5.5.1 Send LHLO first");
        return;
    }
    if (s->from != NULL) {
        bad(s, out, "503 5.5.1 Nested MAIL command");
        return;
    }
    char *addr;
    const char *p;
    if (!ci_prefix(arg, (size_t)(end - arg), "FROM:") ||
        parse_path(arg + 5, end, &addr, &p) != 0) {
        bad(s, out, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    const char *key, *val;
    size_t klen, vlen;
    int r, too_big = 0;
    while ((r = next_param(&p, end, &key, &klen, &val, &vlen)) == 1) {
        if (ci_eq(key, klen, "SIZE") && val != NULL && vlen > 0) {
            size_t n = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (val[i] < '0' || val[i] > '9') {
                    r = -1;
                    break;
                }
                /* saturate: a huge SIZE is simply too big */
                if (n > s->lim.max_message / 10 + 1)
                    too_big = 1;
                else
                    n = n * 10 + (size_t)(val[i] - '0');
            }
            if (r < 0)
                break;
            if (n > s->lim.max_message)
                too_big = 1;
        } else if (ci_eq(key, klen, "BODY") && val != NULL &&
                   (ci_eq(val, vlen, "7BIT") || ci_eq(val, vlen, "8BITMIME"))) {
            continue;
        } else if (ci_eq(key, klen, "SMTPUTF8") && val == NULL) {
            continue;
        } else {
            r = -1;
            break;
        }
    }
    if (r < 0) {
        free(addr);
        bad(s, out, "501 5.5.4 Invalid MAIL parameter");
        return;
    }
    if (too_big) {
        free(addr);
        bad(s, out, "552 5.3.4 Message size exceeds fixed limit");
        return;
    }
    s->from = addr;
    good(s, out, "250 2.1.0 OK");
}

static void
cmd_rcpt(struct lmtp_session *s, const char *arg, const char *end,
         struct buf *out)
{
    if (s->from == NULL) {
        bad(s, out, "503 5.5.1 Need MAIL command");
        return;
    }
    char *addr;
    const char *p;
    if (!ci_prefix(arg, (size_t)(end - arg), "TO:") ||
        parse_path(arg + 3, end, &addr, &p) != 0) {
        bad(s, out, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    const char *key, *val;
    size_t klen, vlen;
    int r;
    /* ORCPT is harmless to ignore; nothing else is advertised */
    while ((r = next_param(&p, end, &key, &klen, &val, &vlen)) == 1) {
        if (!ci_eq(key, klen, "ORCPT") || val == NULL) {
            r = -1;
            break;
        }
    }
    if (r < 0 || addr[0] == '\0') {
        free(addr);
        bad(s, out, "501 5.5.4 Invalid RCPT parameter or address");
        return;
    }
    if (s->n_rcpts >= s->lim.max_rcpts) {
        free(addr);
        reply(out, "452 4.5.3 Too many recipients");
        return;
    }
    struct buf why;
    buf_init(&why);
    if (s->rcpt_fn(s->ctx, addr, &why) != 0) {
        /* an empty refusal fails temporarily: never bounce by accident */
        reply_clean(out, why.len ? why.data : "451 4.3.0 Recipient refused");
        buf_release(&why);
        free(addr);
        s->errors = 0;
        return;
    }
    buf_release(&why);
    if (s->n_rcpts == s->cap_rcpts) {
        s->cap_rcpts = s->cap_rcpts ? s->cap_rcpts * 2 : 8;
        s->rcpts = xreallocarray(s->rcpts, s->cap_rcpts, sizeof *s->rcpts);
    }
    s->rcpts[s->n_rcpts++] = addr;
    good(s, out, "250 2.1.5 OK");
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* xtext_decode - RFC 3461 xtext into *RES (malloc'd); -1 when malformed
 * or decoding to a control character */
static int
xtext_decode(const char *v, size_t len, char **res)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '+') {
            int hi = i + 2 < len ? hexval(v[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(v[i + 2]) : -1;
            if (lo < 0) {
                buf_release(&b);
                return -1;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < ' ' || c == 0x7f) {
            buf_release(&b);
            return -1;
        }
        buf_addc(&b, (char)c);
    }
    *res = buf_take(&b, NULL);
    return 0;
}

static void
cmd_xforward(struct lmtp_session *s, const char *arg, const char *end,
             struct buf *out)
{
    if (s->lhlo == NULL) {
        bad(s, out, "503 5.5.1 Send LHLO first");
        return;
    }
    if (s->from != NULL) {
        bad(s, out, "503 5.5.1 XFORWARD not allowed in a transaction");
        return;
    }
    /* decode everything first so a bad attribute changes nothing */
    char *vals[N_XF] = { 0 };
    int seen = 0, ok = 1;
    const char *p = arg;
    for (;;) {
        p = skip_sp(p, end);
        if (p == end)
            break;
        const char *key = p;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        const char *eq = memchr(key, '=', (size_t)(p - key));
        size_t klen = (size_t)((eq ? eq : p) - key);
        const char *val = eq ? eq + 1 : NULL;
        size_t vlen = eq ? (size_t)(p - eq - 1) : 0;
        size_t i;
        for (i = 0; i < N_XF; i++)
            if (ci_eq(key, klen, xf_names[i]))
                break;
        char *v;
        if (i == N_XF || val == NULL || xtext_decode(val, vlen, &v) != 0) {
            ok = 0;
            break;
        }
        free(vals[i]);
        vals[i] = v;
        seen++;
    }
    if (!ok || seen == 0) {
        for (size_t i = 0; i < N_XF; i++)
            free(vals[i]);
        bad(s, out, "501 5.5.4 Bad XFORWARD attribute");
        return;
    }
    for (size_t i = 0; i < N_XF; i++) {
        if (vals[i] == NULL)
            continue;
        free(s->xf[i]);
        s->xf[i] = NULL;
        /* Postfix's way of saying "unknown" */
        if (strcmp(vals[i], "[UNAVAILABLE]") == 0 ||
            strcmp(vals[i], "[TEMPUNAVAIL]") == 0)
            free(vals[i]);
        else
            s->xf[i] = vals[i];
    }
    good(s, out, "250 2.0.0 OK");
}

static void
cmd_lhlo(struct lmtp_session *s, const char *arg, const char *end,
         struct buf *out)
{
    arg = skip_sp(arg, end);
    while (end > arg && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (arg == end) {
        bad(s, out, "501 5.5.4 Syntax: LHLO hostname");
        return;
    }
    free(s->lhlo);
    s->lhlo = xmemdup(arg, (size_t)(end - arg));
    reset_transaction(s);
    reset_xforward(s);
    s->errors = 0;
    buf_printf(out, "250-%s\r\n", s->host);
    buf_adds(out, "250-PIPELINING\r\n"
             "250-ENHANCEDSTATUSCODES\r\n"
             "250-8BITMIME\r\n"
             "250-SMTPUTF8\r\n");
    buf_printf(out, "250-SIZE %zu\r\n", s->lim.max_message);
    buf_adds(out, "250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\r\n");
}

static void
command(struct lmtp_session *s, const char *line, size_t len,
        struct buf *out)
{
    if (memchr(line, '\0', len) != NULL) {
        bad(s, out, "500 5.5.2 Syntax error (NUL in command)");
        return;
    }
    const char *end = line + len;
    const char *sp = line;
    while (sp < end && *sp != ' ' && *sp != '\t')
        sp++;
    size_t vlen = (size_t)(sp - line);
    const char *arg = sp < end ? sp + 1 : end;

    if (ci_eq(line, vlen, "LHLO")) {
        cmd_lhlo(s, arg, end, out);
    } else if (ci_eq(line, vlen, "MAIL")) {
        cmd_mail(s, arg, end, out);
    } else if (ci_eq(line, vlen, "RCPT")) {
        cmd_rcpt(s, arg, end, out);
    } else if (ci_eq(line, vlen, "DATA")) {
        if (s->from == NULL) {
            bad(s, out, "503 5.5.1 Need MAIL command");
        } else if (s->n_rcpts == 0) {
            bad(s, out, "503 5.5.1 No valid recipients");
        } else if (skip_sp(sp, end) != end) {
            bad(s, out, "501 5.5.4 Syntax: DATA");
        } else {
            good(s, out, "354 End data with <CR><LF>.<CR><LF>");
            s->state = ST_DATA;
            s->mid_line = 0;
        }
    } else if (ci_eq(line, vlen, "XFORWARD")) {
        cmd_xforward(s, arg, end, out);
    } else if (ci_eq(line, vlen, "RSET")) {
        reset_transaction(s);
        reset_xforward(s);
        good(s, out, "250 2.0.0 OK");
    } else if (ci_eq(line, vlen, "NOOP")) {
        good(s, out, "250 2.0.0 OK");
    } else if (ci_eq(line, vlen, "VRFY")) {
        good(s, out, "252 2.5.2 Cannot VRFY user");
    } else if (ci_eq(line, vlen, "QUIT")) {
        reply(out, "221 2.0.0 Bye");
        s->state = ST_CLOSED;
    } else if (ci_eq(line, vlen, "HELO") || ci_eq(line, vlen, "EHLO")) {
        bad(s, out, "500 5.5.1 Use LHLO");
    } else {
        bad(s, out, "500 5.5.2 Unknown command");
    }
}

/* cmd_step - handle one command line; 0 when a whole line is not there */
static int
cmd_step(struct lmtp_session *s, struct buf *out)
{
    const char *p = s->in.data + s->pos;
    size_t n = s->in.len - s->pos;
    const char *lf = memchr(p, '\n', n);
    if (lf == NULL) {
        if (s->discarding) {
            s->pos += n;
            return 0;
        }
        if (n >= LMTP_LINE_MAX) {
            s->pos += n;
            s->discarding = 1;
            bad(s, out, "500 5.5.2 Line too long");
            return 1;
        }
        return 0;
    }
    size_t k = (size_t)(lf - p);
    s->pos += k + 1;
    if (s->discarding) {
        s->discarding = 0;
        return 1;
    }
    if (k + 1 > LMTP_LINE_MAX) {
        bad(s, out, "500 5.5.2 Line too long");
        return 1;
    }
    if (k > 0 && p[k - 1] == '\r')
        k--;
    command(s, p, k, out);
    return 1;
}

/* add_data - keep LEN bytes of message (and its line end) if it fits */
static void
add_data(struct lmtp_session *s, const char *p, size_t len, int eol)
{
    size_t add = len + (eol ? 2 : 0);
    if (s->too_big || add > s->lim.max_message - s->msg_size) {
        if (!s->too_big)
            buf_release(&s->msg);
        s->too_big = 1;
        return;
    }
    s->msg_size += add;
    buf_add(&s->msg, p, len);
    if (eol)
        buf_add(&s->msg, "\r\n", 2);
}

/* data_step - consume one message line or chunk; 0 when more input is
 * needed */
static int
data_step(struct lmtp_session *s)
{
    const char *p = s->in.data + s->pos;
    size_t n = s->in.len - s->pos;
    const char *lf = memchr(p, '\n', n);
    if (lf == NULL) {
        /* a very long line goes in chunks so memory stays bounded; a
         * trailing CR waits in case an LF follows */
        if (n < LMTP_LINE_MAX)
            return 0;
        size_t m = p[n - 1] == '\r' ? n - 1 : n;
        s->pos += m;
        if (!s->mid_line && p[0] == '.') {
            p++;
            m--;
        }
        add_data(s, p, m, 0);
        s->mid_line = 1;
        return 1;
    }
    size_t k = (size_t)(lf - p);
    s->pos += k + 1;
    bool crlf = k > 0 && p[k - 1] == '\r';
    if (crlf)
        k--;
    /* only CR LF . CR LF ends the data: a "." line with a bare LF is
       data, so a message cannot smuggle a second one past a relay that
       reads line ends differently (mail-integration.md §6.1) */
    if (!s->mid_line && k == 1 && p[0] == '.' && crlf) {
        s->state = ST_WAIT;
        return 1;
    }
    if (!s->mid_line && k > 0 && p[0] == '.') {
        p++;
        k--;
    }
    add_data(s, p, k, 1);
    s->mid_line = 0;
    return 1;
}

static enum lmtp_status
run(struct lmtp_session *s, struct buf *out)
{
    for (;;) {
        int progress = 0;
        if (s->state == ST_CMD)
            progress = cmd_step(s, out);
        else if (s->state == ST_DATA)
            progress = data_step(s);
        if (!progress || s->state == ST_WAIT || s->state == ST_CLOSED)
            break;
    }
    if (s->state == ST_CLOSED) {
        buf_reset(&s->in);
        s->pos = 0;
        return LMTP_CLOSE;
    }
    if (s->pos == s->in.len) {
        buf_reset(&s->in);
        s->pos = 0;
    } else if (s->state != ST_WAIT && s->pos > 0) {
        memmove(s->in.data, s->in.data + s->pos, s->in.len - s->pos);
        s->in.len -= s->pos;
        s->in.data[s->in.len] = '\0';
        s->pos = 0;
    }
    return s->state == ST_WAIT ? LMTP_MESSAGE : LMTP_MORE;
}

enum lmtp_status
lmtp_feed(struct lmtp_session *s, const char *data, size_t len,
          struct buf *out)
{
    if (s->state == ST_CLOSED)
        return LMTP_CLOSE;
    buf_add(&s->in, data, len);
    if (s->state == ST_WAIT)
        return LMTP_MESSAGE;    /* caller error: keep the input for later */
    return run(s, out);
}

const char *
lmtp_mail_from(const struct lmtp_session *s)
{
    return s->from != NULL ? s->from : "";
}

size_t
lmtp_n_rcpts(const struct lmtp_session *s)
{
    return s->n_rcpts;
}

const char *
lmtp_rcpt(const struct lmtp_session *s, size_t i)
{
    return i < s->n_rcpts ? s->rcpts[i] : NULL;
}

const char *
lmtp_message(const struct lmtp_session *s, size_t *len)
{
    if (s->too_big) {
        *len = 0;
        return "";
    }
    *len = s->msg.len;
    return s->msg.data;
}

int
lmtp_too_big(const struct lmtp_session *s)
{
    return s->too_big;
}

const char *
lmtp_xforward(const struct lmtp_session *s, const char *name)
{
    for (size_t i = 0; i < N_XF; i++)
        if (ci_eq(name, strlen(name), xf_names[i]))
            return s->xf[i];
    return NULL;
}

/* lmtp_lhlo_name - NULL before LHLO */
const char *
lmtp_lhlo_name(const struct lmtp_session *s)
{
    return s->lhlo;
}

/*
 * An oversized message gets 552 for every recipient whatever REPLIES
 * says (its content was not kept, so nothing can have been delivered);
 * a missing reply becomes a temporary failure, never silence: the client
 * waits for exactly one reply per accepted recipient.
 */
enum lmtp_status
lmtp_delivered(struct lmtp_session *s, const char *const *replies,
               struct buf *out)
{
    if (s->state == ST_WAIT) {
        for (size_t i = 0; i < s->n_rcpts; i++) {
            if (s->too_big)
                reply(out, "552 5.3.4 Message size exceeds fixed limit");
            else if (replies == NULL || replies[i] == NULL)
                reply(out, "451 4.3.0 Internal error");
            else
                reply_clean(out, replies[i]);
        }
        reset_transaction(s);
        reset_xforward(s);
        s->state = ST_CMD;
    }
    if (s->state == ST_CLOSED)
        return LMTP_CLOSE;
    return run(s, out);
}
