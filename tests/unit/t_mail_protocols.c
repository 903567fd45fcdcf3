/*
 * t_mail_protocols.c - channel mail addresses (address.c) and the Postfix
 * socketmap protocol (socketmap.c): whole, pipelined and split requests,
 * every reply kind, and the ways a stream breaks.
 */
#include <stdio.h>
#include <string.h>

#include "picomail/address.h"
#include "picomail/socketmap.h"
#include "tap.h"

static void
test_addresses(void)
{
    static const struct {
        const char *addr;
        int status;
        const char *channel, *domain, *type;
    } cases[] = {
        {"ckabc123@picos.localhost", MAIL_RCPT_OK, "ckabc123", "mail",
         "received"},
        {"<CKAbc123@PICOS.localhost>", MAIL_RCPT_OK, "ckabc123", "mail",
         "received"},
        {"ckabc+truck.unlock@picos.localhost", MAIL_RCPT_OK, "ckabc",
         "truck", "unlock"},
        {"alice+Notification.Status@picos.localhost", MAIL_RCPT_OK, "alice",
         "Notification", "Status"},
        {"my_alias-2@picos.localhost", MAIL_RCPT_OK, "my_alias-2", "mail",
         "received"},
        {"ckabc@example.org", MAIL_RCPT_OTHER_DOMAIN, "", "", ""},
        {"ckabc", MAIL_RCPT_OTHER_DOMAIN, "", "", ""},
        {"ckabc@picos.localhost.evil", MAIL_RCPT_OTHER_DOMAIN, "", "", ""},
        {"@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"a@b@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"ck abc@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"\"ck\"@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"ckabc+noDot@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"ckabc+.type@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"ckabc+dom.@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"ckabc+d.t.x@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"ckabc+d\r.t@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "@picos.localhost", MAIL_RCPT_MALFORMED, "", "", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mail_rcpt r;
        memset(&r, 0, sizeof r);
        int st = mail_rcpt_parse(cases[i].addr, "picos.localhost", &r);
        char name[160];
        snprintf(name, sizeof name, "address %s", cases[i].addr);
        t_eq_int(st, cases[i].status, name);
        if (st == MAIL_RCPT_OK && cases[i].status == MAIL_RCPT_OK) {
            t_eq_str(r.channel, cases[i].channel, name);
            t_eq_str(r.domain, cases[i].domain, name);
            t_eq_str(r.type, cases[i].type, name);
        }
    }
}

/* A map answering: "known" found with data, "temp" a temporary failure,
 * "perm" a permanent one, anything else not found; counts its calls. */
static int calls;

static int
lookup(void *ctx, const char *map, const char *key, struct buf *answer)
{
    (void)ctx;
    calls++;
    if (strcmp(map, "picomail") != 0) {
        buf_adds(answer, "no such map");
        return -2;
    }
    if (strcmp(key, "known@picos.localhost") == 0) {
        buf_adds(answer, "channel");
        return 1;
    }
    if (strcmp(key, "temp") == 0) {
        buf_adds(answer, "database busy");
        return -1;
    }
    if (strcmp(key, "perm") == 0) {
        buf_adds(answer, "refused");
        return -2;
    }
    return 0;
}

/* ask - feed INPUT in pieces of STEP bytes; the replies, or "BROKEN" */
static void
ask(const char *input, size_t step, const char *want, const char *name)
{
    struct socketmap_conn c;
    struct buf out;
    socketmap_conn_init(&c);
    buf_init(&out);
    size_t len = strlen(input);
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i += step) {
        size_t n = len - i < step ? len - i : step;
        rc = socketmap_feed(&c, input + i, n, lookup, NULL, &out);
    }
    if (rc != 0)
        buf_adds(&out, "BROKEN");
    t_eq_str(out.data, want, name);
    buf_release(&out);
    socketmap_conn_release(&c);
}

static void
test_socketmap(void)
{
    ask("30:picomail known@picos.localhost,", 1000,
        "10:OK channel,", "found");
    ask("30:picomail other@picos.localhost,", 1000, "9:NOTFOUND ,",
        "not found");
    ask("13:picomail temp,", 1000, "18:TEMP database busy,", "temporary");
    ask("13:picomail perm,", 1000, "12:PERM refused,", "permanent");
    ask("9:other key,", 1000, "16:PERM no such map,", "unknown map");
    ask("7:nospace,", 1000, "22:PERM malformed request,", "no space");
    ask("30:picomail known@picos.localhost,13:picomail temp,", 1000,
        "10:OK channel,18:TEMP database busy,", "pipelined");
    for (size_t step = 1; step <= 5; step++) {
        char name[64];
        snprintf(name, sizeof name, "split in pieces of %zu", step);
        ask("30:picomail known@picos.localhost,9:other key,", step,
            "10:OK channel,16:PERM no such map,", name);
    }
    ask("30:picomail known@picos.localhost", 1000, "",
        "incomplete request waits");
    ask("x:abc,", 1000, "BROKEN", "not a netstring");
    ask("3:abcd,", 1000, "BROKEN", "missing comma");
    ask("03:a b,", 1000, "BROKEN", "leading zero");
    ask("999999999999:", 1000, "BROKEN", "too long");
    ask(":abc,", 1000, "BROKEN", "no length");
    calls = 0;
    ask("9:other key,x", 1000, "16:PERM no such map,BROKEN",
        "answers before the break");
    t_eq_int(calls, 1, "lookup called once");
    struct buf b;
    buf_init(&b);
    socketmap_netstring(&b, "", 0);
    t_eq_str(b.data, "0:,", "empty netstring");
    buf_release(&b);
}

int
main(void)
{
    test_addresses();
    test_socketmap();
    return tap_done();
}
