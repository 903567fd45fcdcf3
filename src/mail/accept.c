/*
 * accept.c - whether mail to a channel address may be accepted; see
 * mail_accept.h.
 */
#include "picomail/mail_accept.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "picomail/policy.h"

void
mail_channel_release(struct mail_channel *ch)
{
    kval_free(ch->senders);
    ch->senders = kval_null();
}

/* shown - ADDR made safe to quote in a reply line: no control
 * characters, at most 200 bytes */
static void
shown(const char *addr, char *out, size_t outlen)
{
    size_t n = 0;

    for (const char *p = addr; *p != '\0' && n + 1 < outlen && n < 200; p++)
        out[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
    out[n] = '\0';
}

static enum mail_verdict_code
refuse(char *reply, enum mail_verdict_code code, const char *status,
       const char *addr, const char *why)
{
    char a[256];

    shown(addr, a, sizeof a);
    snprintf(reply, MAIL_REPLY_MAX, "%s <%s>: %s", status, a, why);
    return code;
}

bool
mail_sender_matches(const kval *rules, const char *addr)
{
    size_t n = rules != NULL && kval_kind(rules) == KV_ARRAY
                   ? kval_array_len(rules)
                   : 0;
    if (n == 0)
        return true;
    if (addr == NULL)
        return false;
    const char *at = strrchr(addr, '@');
    const char *domain = at != NULL ? at + 1 : NULL;
    for (size_t i = 0; i < n; i++) {
        const kval *r = kval_array_get(rules, i);
        if (kval_kind(r) != KV_STRING)
            continue;
        const char *rule = kval_str_ptr(r);
        if (*rule == '@')
            rule++;
        if (strchr(rule, '@') != NULL) {
            if (strcasecmp(rule, addr) == 0)
                return true;
        } else if (domain != NULL && *rule == '.') {
            size_t dl = strlen(domain), rl = strlen(rule);
            if (dl > rl && strcasecmp(domain + dl - rl, rule) == 0)
                return true;
        } else if (domain != NULL && *rule != '\0' &&
                   strcasecmp(domain, rule) == 0) {
            return true;
        }
    }
    return false;
}

enum mail_verdict_code
mail_accept_rcpt(struct store *st, const char *mail_domain, const char *addr,
                 const char *sender, struct mail_channel *ch, char *reply)
{
    memset(ch, 0, sizeof *ch);
    ch->senders = kval_null();
    *reply = '\0';
    switch (mail_rcpt_parse(addr, mail_domain, &ch->rcpt)) {
    case MAIL_RCPT_OK:
        break;
    case MAIL_RCPT_OTHER_DOMAIN:
        return refuse(reply, MAIL_REFUSE, "550 5.1.2", addr,
                      "not a channel address of this host");
    case MAIL_RCPT_MALFORMED:
    default:
        return refuse(reply, MAIL_REFUSE, "550 5.1.3", addr,
                      "malformed channel address");
    }

    struct store_channel c;
    int rc = store_channel_get(st, ch->rcpt.channel, &c);
    if (rc == STORE_NOTFOUND)
        rc = store_channel_get_by_alias(st, ch->rcpt.channel, &c);
    if (rc == STORE_NOTFOUND)
        return refuse(reply, MAIL_REFUSE, "550 5.1.1", addr,
                      "no such channel");
    if (rc != STORE_OK)
        return refuse(reply, MAIL_TEMPFAIL, "451 4.3.0", addr,
                      "channels temporarily unavailable, try again later");

    enum mail_verdict_code code = MAIL_ACCEPT;
    kval denied = policy_check(&c.event_policy, POLICY_EVENT,
                               ch->rcpt.domain, ch->rcpt.type);
    if (c.family_pico_id != NULL) {
        code = refuse(reply, MAIL_REFUSE, "550 5.7.1", addr,
                      "channel not open to mail");
    } else if (!kval_is_null(&denied)) {
        code = refuse(reply, MAIL_REFUSE, "550 5.7.1", addr,
                      "event not allowed by channel policy");
    } else if (sender != NULL && !mail_sender_matches(&c.senders, sender)) {
        code = refuse(reply, MAIL_REFUSE, "550 5.7.1", addr,
                      "sender not accepted by this channel");
    } else {
        snprintf(ch->eci, sizeof ch->eci, "%s", c.eci);
        ch->senders = kval_copy(&c.senders);
        ch->require_dkim = c.require_dkim;
        ch->require_dmarc = c.require_dmarc;
    }
    kval_free(denied);
    store_channel_release(&c);
    return code;
}

/* passed - whether AUTH says METHOD passed */
static bool
passed(const kval *auth, const char *method)
{
    const kval *v = auth != NULL && kval_kind(auth) == KV_MAP
                        ? kval_map_get_str(auth, method)
                        : NULL;
    return v != NULL && kval_kind(v) == KV_STRING &&
           strcmp(kval_str_ptr(v), "pass") == 0;
}

enum mail_verdict_code
mail_accept_message(const struct mail_channel *ch, const char *addr,
                    const char *from, const kval *auth, char *reply)
{
    *reply = '\0';
    if (!mail_sender_matches(&ch->senders, from))
        return refuse(reply, MAIL_REFUSE, "550 5.7.1", addr,
                      "From: address not accepted by this channel");
    if (ch->require_dkim && !passed(auth, "dkim"))
        return refuse(reply, MAIL_REFUSE, "550 5.7.1", addr,
                      "this channel requires a DKIM pass");
    if (ch->require_dmarc && !passed(auth, "dmarc"))
        return refuse(reply, MAIL_REFUSE, "550 5.7.1", addr,
                      "this channel requires a DMARC pass");
    return MAIL_ACCEPT;
}
