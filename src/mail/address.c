/*
 * address.c - channel mail addresses; see address.h.
 */
#include "picomail/address.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool
word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* copy_word - S[0..LEN) into OUT if it is 1..MAIL_PART_MAX word
 * characters; LOWER folds ASCII case */
static bool
copy_word(const char *s, size_t len, char *out, bool lower)
{
    if (len == 0 || len > MAIL_PART_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!word_char(s[i]))
            return false;
        out[i] = lower && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32)
                                                     : s[i];
    }
    out[len] = '\0';
    return true;
}

enum mail_rcpt_status
mail_rcpt_parse(const char *addr, const char *mail_domain,
                struct mail_rcpt *out)
{
    size_t len = strlen(addr);
    if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>') {
        addr++;
        len -= 2;
    }
    const char *at = memchr(addr, '@', len);
    if (at == NULL)
        return MAIL_RCPT_OTHER_DOMAIN;
    if (memchr(at + 1, '@', len - (size_t)(at - addr) - 1) != NULL)
        return MAIL_RCPT_MALFORMED;
    const char *dom = at + 1;
    size_t dom_len = len - (size_t)(dom - addr);
    if (dom_len != strlen(mail_domain) ||
        strncasecmp(dom, mail_domain, dom_len) != 0)
        return MAIL_RCPT_OTHER_DOMAIN;
    size_t local_len = (size_t)(at - addr);
    const char *plus = memchr(addr, '+', local_len);
    size_t chan_len = plus ? (size_t)(plus - addr) : local_len;
    if (!copy_word(addr, chan_len, out->channel, true))
        return MAIL_RCPT_MALFORMED;
    if (plus == NULL) {
        memcpy(out->domain, "mail", 5);
        memcpy(out->type, "received", 9);
        return MAIL_RCPT_OK;
    }
    const char *ext = plus + 1;
    size_t ext_len = local_len - chan_len - 1;
    const char *dot = memchr(ext, '.', ext_len);
    if (dot == NULL ||
        !copy_word(ext, (size_t)(dot - ext), out->domain, false) ||
        !copy_word(dot + 1, ext_len - (size_t)(dot - ext) - 1, out->type,
                   false))
        return MAIL_RCPT_MALFORMED;
    return MAIL_RCPT_OK;
}
