/*
 * t_lmtp.c - tests for the LMTP server state machine (lmtp.c): sessions
 * driven as scripts, input bytes in, expected replies out, fed whole and
 * one byte at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/lmtp.h"
#include "tap.h"

static const struct lmtp_limits lim = { 200, 3 };

/* accept addresses at picos.localhost, refuse the rest */
static int
rcpt_cb(void *ctx, const char *addr, struct buf *reply)
{
    (void)ctx;
    const char *at = strrchr(addr, '@');
    if (at != NULL && strcmp(at + 1, "picos.localhost") == 0)
        return 0;
    buf_printf(reply, "550 5.1.1 <%s>: no such channel", addr);
    return 1;
}

/*
 * session - run INPUT (LEN bytes) through a new session, CHUNK bytes per
 * feed (0: all at once).  Returns the replies; each delivered message is
 * logged to LOG as "from|rcpt,rcpt|message|xf-addr|xf-ident|too_big\n"
 * and gets "250 2.0.0 <rcpt> OK" per recipient.  *CLOSED is set when the
 * session asked to close.
 */
static char *
session(const char *input, size_t len, size_t chunk, struct buf *log,
        int *closed)
{
    struct lmtp_session *s = lmtp_session_new("mx.test", &lim, rcpt_cb,
                                              NULL);
    struct buf out;
    buf_init(&out);
    lmtp_greeting(s, &out);
    *closed = 0;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len && !*closed;) {
        size_t n = len - off < chunk ? len - off : chunk;
        enum lmtp_status st = lmtp_feed(s, input + off, n, &out);
        off += n;
        while (st == LMTP_MESSAGE) {
            size_t mlen, nr = lmtp_n_rcpts(s);
            const char *m = lmtp_message(s, &mlen);
            const char *xa = lmtp_xforward(s, "ADDR");
            const char *xi = lmtp_xforward(s, "ident");
            buf_adds(log, lmtp_mail_from(s));
            buf_addc(log, '|');
            char **rep = calloc(nr + 1, sizeof *rep);
            for (size_t i = 0; i < nr; i++) {
                struct buf r;
                buf_init(&r);
                buf_printf(&r, "250 2.0.0 <%s> OK", lmtp_rcpt(s, i));
                rep[i] = buf_take(&r, NULL);
                buf_printf(log, "%s%s", i ? "," : "", lmtp_rcpt(s, i));
            }
            buf_addc(log, '|');
            buf_add(log, m, mlen);
            buf_printf(log, "|%s|%s|%d\n", xa ? xa : "-", xi ? xi : "-",
                       lmtp_too_big(s));
            st = lmtp_delivered(s, (const char *const *)rep, &out);
            for (size_t i = 0; i < nr; i++)
                free(rep[i]);
            free(rep);
        }
        if (st == LMTP_CLOSE)
            *closed = 1;
    }
    lmtp_session_free(s);
    return buf_take(&out, NULL);
}

#define G "220 mx.test LMTP picomail ready\r\n"
#define LHLO_IN "LHLO client.test\r\n"
#define LHLO_OUT "250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n" \
    "250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 200\r\n" \
    "250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\r\n"
#define OK_MAIL "250 2.1.0 OK\r\n"
#define OK_RCPT "250 2.1.5 OK\r\n"
#define GO_DATA "354 End data with <CR><LF>.<CR><LF>\r\n"
#define OK "250 2.0.0 OK\r\n"
#define BYE "221 2.0.0 Bye\r\n"

struct script {
    const char *name;
    const char *in;
    size_t len;                 /* 0: strlen(in) */
    const char *out;
    const char *log;            /* delivered messages */
    int closed;
    size_t loglen;              /* 0: strlen(log) */
};

#define NUL_IN LHLO_IN "NO\0OP\r\nMAIL FROM:<a@b>\r\n" \
    "RCPT TO:<1@picos.localhost>\r\nDATA\r\na\0b\r\n.\r\n"
#define NUL_LOG "a@b|1@picos.localhost|a\0b\r\n|-|-|0\n"

static const struct script scripts[] = {
    { "normal flow",
      LHLO_IN "MAIL FROM:<alice@example.net>\r\n"
      "RCPT TO:<a@picos.localhost>\r\nDATA\r\n"
      "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n", 0,
      G LHLO_OUT OK_MAIL OK_RCPT GO_DATA
      "250 2.0.0 <a@picos.localhost> OK\r\n" BYE,
      "alice@example.net|a@picos.localhost|Subject: hi\r\n\r\nbody\r\n|-|-|0\n",
      1, 0 },
    { "mixed recipients, one reply per accepted one",
      LHLO_IN "MAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n"
      "RCPT TO:<a@picos.localhost>\r\nRCPT TO:<x@elsewhere.org>\r\n"
      "RCPT TO:<b@PICOS.localhost>\r\nRCPT TO:<b@picos.localhost>\r\n"
      "DATA\r\nx\r\n.\r\n", 0,
      G LHLO_OUT OK_MAIL OK_RCPT
      "550 5.1.1 <x@elsewhere.org>: no such channel\r\n"
      "550 5.1.1 <b@PICOS.localhost>: no such channel\r\n" OK_RCPT GO_DATA
      "250 2.0.0 <a@picos.localhost> OK\r\n"
      "250 2.0.0 <b@picos.localhost> OK\r\n",
      "|a@picos.localhost,b@picos.localhost|x\r\n|-|-|0\n", 0, 0 },
    { "too many recipients",
      LHLO_IN "MAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\n"
      "RCPT TO:<2@picos.localhost>\r\nRCPT TO:<3@picos.localhost>\r\n"
      "RCPT TO:<4@picos.localhost>\r\nRSET\r\n", 0,
      G LHLO_OUT OK_MAIL OK_RCPT OK_RCPT OK_RCPT
      "452 4.5.3 Too many recipients\r\n" OK, "", 0, 0 },
    { "two transactions, RSET mid-transaction",
      LHLO_IN "MAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\nRSET\r\n"
      "DATA\r\nMAIL FROM:<c@d>\r\nRCPT TO:<2@picos.localhost>\r\n"
      "DATA\r\none\r\n.\r\nMAIL FROM:<e@f>\r\n"
      "RCPT TO:<3@picos.localhost>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n", 0,
      G LHLO_OUT OK_MAIL OK_RCPT OK "503 5.5.1 Need MAIL command\r\n"
      OK_MAIL OK_RCPT GO_DATA "250 2.0.0 <2@picos.localhost> OK\r\n"
      OK_MAIL OK_RCPT GO_DATA "250 2.0.0 <3@picos.localhost> OK\r\n" BYE,
      "c@d|2@picos.localhost|one\r\n|-|-|0\ne@f|3@picos.localhost|two\r\n|-|-|0\n",
      1, 0 },
    { "dot-stuffing and bare LF (a bare-LF dot line is data)",
      LHLO_IN "MAIL FROM:<a@b>\nRCPT TO:<1@picos.localhost>\nDATA\n"
      "..\n..x\n.y\nend.\r\n. \r\nlf\n.\nmore\n.\r\nNOOP\n", 0,
      G LHLO_OUT OK_MAIL OK_RCPT GO_DATA
      "250 2.0.0 <1@picos.localhost> OK\r\n" OK,
      "a@b|1@picos.localhost|.\r\n.x\r\ny\r\nend.\r\n \r\nlf\r\n"
      "\r\nmore\r\n|-|-|0\n", 0, 0 },
    { "NUL bytes in data are kept, in commands refused",
      NUL_IN, sizeof NUL_IN - 1,
      G LHLO_OUT "500 5.5.2 Syntax error (NUL in command)\r\n" OK_MAIL
      OK_RCPT GO_DATA "250 2.0.0 <1@picos.localhost> OK\r\n",
      NUL_LOG, 0, sizeof NUL_LOG - 1 },
    { "oversized message: 552 per recipient, session goes on",
      LHLO_IN "MAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\n"
      "RCPT TO:<2@picos.localhost>\r\nDATA\r\n"
      "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
      "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
      "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
      ".\r\nNOOP\r\n", 0,
      G LHLO_OUT OK_MAIL OK_RCPT OK_RCPT GO_DATA
      "552 5.3.4 Message size exceeds fixed limit\r\n"
      "552 5.3.4 Message size exceeds fixed limit\r\n" OK,
      "a@b|1@picos.localhost,2@picos.localhost||-|-|1\n", 0, 0 },
    { "SIZE= over the limit, bad parameters",
      LHLO_IN "MAIL FROM:<a@b> SIZE=201\r\n"
      "MAIL FROM:<a@b> SIZE=99999999999999999999999999\r\n"
      "MAIL FROM:<a@b> SIZE=12x\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\n"
      "MAIL FROM:<a@b> FOO=1\r\nMAIL FROM:<a@b>SIZE=1\r\n"
      "MAIL FROM:<a@b> SIZE=200\r\n", 0,
      G LHLO_OUT "552 5.3.4 Message size exceeds fixed limit\r\n"
      "552 5.3.4 Message size exceeds fixed limit\r\n"
      "501 5.5.4 Invalid MAIL parameter\r\n"
      "501 5.5.4 Invalid MAIL parameter\r\n"
      "501 5.5.4 Invalid MAIL parameter\r\n"
      "501 5.5.4 Invalid MAIL parameter\r\n" OK_MAIL, "", 0, 0 },
    { "sequence errors",
      "MAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\nDATA\r\n"
      LHLO_IN "RCPT TO:<1@picos.localhost>\r\nDATA\r\n"
      "MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\nDATA\r\n"
      "RCPT TO:<x@y.z>\r\nDATA\r\nXFORWARD ADDR=1.2.3.4\r\n", 0,
      G "503 5.5.1 Send LHLO first\r\n503 5.5.1 Need MAIL command\r\n"
      "503 5.5.1 Need MAIL command\r\n" LHLO_OUT
      "503 5.5.1 Need MAIL command\r\n503 5.5.1 Need MAIL command\r\n"
      OK_MAIL "503 5.5.1 Nested MAIL command\r\n"
      "503 5.5.1 No valid recipients\r\n"
      "550 5.1.1 <x@y.z>: no such channel\r\n"
      "503 5.5.1 No valid recipients\r\n"
      "503 5.5.1 XFORWARD not allowed in a transaction\r\n", "", 0, 0 },
    { "syntax errors",
      LHLO_IN "LHLO\r\nMAIL\r\nMAIL FROM:a@b\r\nMAIL FROM:<a b>\r\n"
      "MAIL TO:<a@b>\r\nmail from: <a@b>\r\nRCPT TO:<>\r\n"
      "RCPT TO:<1@picos.localhost> NOTIFY=NEVER\r\n"
      "RCPT TO:<@r1,@r2:1@picos.localhost> ORCPT=rfc822;x@y\r\n"
      "DATA x\r\n", 0,
      G LHLO_OUT "501 5.5.4 Syntax: LHLO hostname\r\n"
      "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
      "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
      "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
      "501 5.5.4 Syntax: MAIL FROM:<address>\r\n" OK_MAIL
      "501 5.5.4 Invalid RCPT parameter or address\r\n"
      "501 5.5.4 Invalid RCPT parameter or address\r\n" OK_RCPT
      "501 5.5.4 Syntax: DATA\r\n", "", 0, 0 },
    { "HELO/EHLO refused, unknown command, VRFY, case-insensitive",
      "HELO x\r\nEHLO x\r\nFOO\r\n\r\nlhlo c\r\nvrfy x\r\nnoop\r\nquit\r\n"
      "NOOP\r\n", 0,
      G "500 5.5.1 Use LHLO\r\n500 5.5.1 Use LHLO\r\n"
      "500 5.5.2 Unknown command\r\n500 5.5.2 Unknown command\r\n"
      "250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
      "250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 200\r\n"
      "250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\r\n"
      "252 2.5.2 Cannot VRFY user\r\n" OK BYE, "", 1, 0 },
    { "XFORWARD values and xtext",
      LHLO_IN "XFORWARD NAME=localhost ADDR=127.0.0.1 PORT=40990\r\n"
      "XFORWARD PROTO=ESMTP HELO=vm IDENT=B2B+2B9+3D SOURCE=LOCAL\r\n"
      "XFORWARD ADDR=1.2.3.4 BOGUS=1\r\nXFORWARD IDENT=+4\r\n"
      "XFORWARD IDENT=+0A\r\nXFORWARD\r\nXFORWARD ADDR\r\n"
      "MAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\nDATA\r\nm\r\n.\r\n"
      "MAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\nDATA\r\nn\r\n.\r\n"
      "XFORWARD addr=[UNAVAILABLE] ident=Q1\r\n"
      "MAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\nDATA\r\no\r\n.\r\n",
      0,
      G LHLO_OUT OK OK "501 5.5.4 Bad XFORWARD attribute\r\n"
      "501 5.5.4 Bad XFORWARD attribute\r\n"
      "501 5.5.4 Bad XFORWARD attribute\r\n"
      "501 5.5.4 Bad XFORWARD attribute\r\n"
      "501 5.5.4 Bad XFORWARD attribute\r\n"
      OK_MAIL OK_RCPT GO_DATA "250 2.0.0 <1@picos.localhost> OK\r\n"
      OK_MAIL OK_RCPT GO_DATA "250 2.0.0 <1@picos.localhost> OK\r\n"
      OK OK_MAIL OK_RCPT GO_DATA "250 2.0.0 <1@picos.localhost> OK\r\n",
      "a@b|1@picos.localhost|m\r\n|127.0.0.1|B2B+9=|0\n"
      "a@b|1@picos.localhost|n\r\n|-|-|0\n"
      "a@b|1@picos.localhost|o\r\n|-|Q1|0\n", 0, 0 },
    { "end of input mid-message delivers nothing",
      LHLO_IN "MAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\nDATA\r\n"
      "Subject: x\r\n\r\npartial\r\n.", 0,
      G LHLO_OUT OK_MAIL OK_RCPT GO_DATA, "", 0, 0 },
};

static void
test_scripts(void)
{
    static const size_t chunks[] = { 0, 1, 2, 7 };
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        const struct script *sc = &scripts[i];
        size_t len = sc->len ? sc->len : strlen(sc->in);
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            struct buf log;
            int closed;
            char name[200];
            buf_init(&log);
            char *out = session(sc->in, len, chunks[c], &log, &closed);
            snprintf(name, sizeof name, "%s (chunk %zu): replies", sc->name,
                     chunks[c]);
            t_eq_str(out, sc->out, name);
            snprintf(name, sizeof name, "%s (chunk %zu): delivered",
                     sc->name, chunks[c]);
            /* the log may hold NULs: compare bytes */
            size_t want = sc->loglen ? sc->loglen : strlen(sc->log);
            t_ok(log.len == want && memcmp(log.data, sc->log, want) == 0,
                 name);
            snprintf(name, sizeof name, "%s (chunk %zu): closed", sc->name,
                     chunks[c]);
            t_eq_int(closed, sc->closed, name);
            free(out);
            buf_release(&log);
        }
    }
}

/* feed - feed a C string, expecting STATUS */
static void
feed(struct lmtp_session *s, const char *in, struct buf *out,
     enum lmtp_status want, const char *name)
{
    t_eq_int(lmtp_feed(s, in, strlen(in), out), want, name);
}

static void
test_long_lines(void)
{
    struct lmtp_session *s = lmtp_session_new("h", &lim, rcpt_cb, NULL);
    struct buf out, in;
    buf_init(&out);
    buf_init(&in);
    /* exactly LMTP_LINE_MAX with CRLF is fine */
    buf_adds(&in, "NOOP ");
    while (in.len < LMTP_LINE_MAX - 2)
        buf_addc(&in, 'x');
    buf_adds(&in, "\r\n");
    t_eq_int(lmtp_feed(s, in.data, in.len, &out), LMTP_MORE, "max line");
    t_eq_str(out.data, OK, "max line: accepted");
    /* one more byte, fed in pieces: one reply, rest discarded */
    buf_reset(&out);
    buf_reset(&in);
    buf_adds(&in, "NOOP ");
    while (in.len < 3 * LMTP_LINE_MAX)
        buf_addc(&in, 'y');
    for (size_t off = 0; off < in.len; off += 100) {
        size_t n = in.len - off < 100 ? in.len - off : 100;
        lmtp_feed(s, in.data + off, n, &out);
    }
    feed(s, "yyy\r\nNOOP\r\n", &out, LMTP_MORE, "after long line");
    t_eq_str(out.data, "500 5.5.2 Line too long\r\n" OK,
             "long line: one error, next command works");
    /* a whole overlong line in one feed */
    buf_reset(&out);
    buf_reset(&in);
    while (in.len < LMTP_LINE_MAX - 1)
        buf_addc(&in, 'z');
    buf_adds(&in, "\r\nNOOP\r\n");
    lmtp_feed(s, in.data, in.len, &out);
    t_eq_str(out.data, "500 5.5.2 Line too long\r\n" OK,
             "long line in one feed");
    buf_release(&in);
    buf_release(&out);
    lmtp_session_free(s);
}

static void
test_long_data_line(void)
{
    struct lmtp_limits big = { 100000, 10 };
    struct lmtp_session *s = lmtp_session_new("h", &big, rcpt_cb, NULL);
    struct buf out, in;
    buf_init(&out);
    buf_init(&in);
    feed(s, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\n"
         "DATA\r\n", &out, LMTP_MORE, "long data line: setup");
    /* a 10000-byte line starting with a stuffed dot, then "." alone */
    buf_adds(&in, "..");
    while (in.len < 10000)
        buf_addc(&in, 'q');
    buf_adds(&in, "\r\n.\r\n");
    enum lmtp_status st = LMTP_MORE;
    for (size_t off = 0; off < in.len; off += 333) {
        size_t n = in.len - off < 333 ? in.len - off : 333;
        st = lmtp_feed(s, in.data + off, n, &out);
    }
    t_eq_int(st, LMTP_MESSAGE, "long data line: message");
    size_t len;
    const char *m = lmtp_message(s, &len);
    t_eq_int(len, 10001, "long data line: length");
    t_ok(len == 10001 && m[0] == '.' && m[1] == 'q' &&
         memcmp(m + 9998, "q\r\n", 3) == 0, "long data line: content");
    t_eq_str(lmtp_lhlo_name(s), "c", "lhlo name");
    t_ok(lmtp_rcpt(s, 1) == NULL, "rcpt out of range");
    /* pipelined input while waiting is kept for after delivery */
    feed(s, "NOOP\r\n", &out, LMTP_MESSAGE, "feed while waiting");
    buf_reset(&out);
    const char *rep[] = { "451 4.3.0 try\r\nagain" };
    t_eq_int(lmtp_delivered(s, rep, &out), LMTP_MORE, "delivered");
    t_eq_str(out.data, "451 4.3.0 try  again\r\n" OK,
             "reply cleaned, pipelined NOOP answered");
    buf_release(&in);
    buf_release(&out);
    lmtp_session_free(s);
}

static void
test_too_many_errors(void)
{
    struct lmtp_session *s = lmtp_session_new("h", &lim, rcpt_cb, NULL);
    struct buf out;
    buf_init(&out);
    /* a good command resets the count */
    for (int i = 0; i < 19; i++)
        feed(s, "BAD\r\n", &out, LMTP_MORE, "bad command");
    feed(s, "NOOP\r\n", &out, LMTP_MORE, "noop resets");
    for (int i = 0; i < 19; i++)
        feed(s, "BAD\r\n", &out, LMTP_MORE, "bad command again");
    buf_reset(&out);
    feed(s, "BAD\r\nNOOP\r\n", &out, LMTP_CLOSE, "20th error closes");
    t_eq_str(out.data, "500 5.5.2 Unknown command\r\n"
             "421 4.7.0 Too many errors\r\n", "421 after errors");
    buf_reset(&out);
    feed(s, "NOOP\r\n", &out, LMTP_CLOSE, "closed stays closed");
    t_eq_int(out.len, 0, "no reply after close");
    buf_release(&out);
    lmtp_session_free(s);
}

static void
test_delivered_edge(void)
{
    struct lmtp_session *s = lmtp_session_new("h", &lim, rcpt_cb, NULL);
    struct buf out;
    buf_init(&out);
    feed(s, "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<1@picos.localhost>\r\n"
         "RCPT TO:<2@picos.localhost>\r\nDATA\r\n.\r\nQUIT\r\n", &out,
         LMTP_MESSAGE, "empty message");
    size_t len = 99;
    lmtp_message(s, &len);
    t_eq_int(len, 0, "empty message length");
    t_eq_int(lmtp_n_rcpts(s), 2, "two recipients");
    buf_reset(&out);
    /* missing replies fail temporarily, QUIT behind the message */
    t_eq_int(lmtp_delivered(s, NULL, &out), LMTP_CLOSE, "then QUIT");
    t_eq_str(out.data, "451 4.3.0 Internal error\r\n"
             "451 4.3.0 Internal error\r\n" BYE, "NULL replies");
    t_eq_int(lmtp_n_rcpts(s), 0, "transaction reset");
    t_ok(lmtp_session_free(s) == NULL, "free returns NULL");
    t_ok(lmtp_session_free(NULL) == NULL, "free NULL");
    buf_release(&out);
}

int
main(void)
{
    test_scripts();
    test_long_lines();
    test_long_data_line();
    test_too_many_errors();
    test_delivered_edge();
    return tap_done();
}
