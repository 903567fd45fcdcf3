/*
 * inbox.c - a delivered message made into pending events; see inbox.h.
 */
#include "picomail/inbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "picomail/mem.h"
#include "picomail/mime.h"

static void
hex(const unsigned char *md, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * n] = '\0';
}

/* digest - sha256 (hex) of the NUL-separated PARTS */
static void
digest(const char *const *parts, size_t n, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    if (ctx == NULL)
        abort();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < n; i++)
        EVP_DigestUpdate(ctx, parts[i] != NULL ? parts[i] : "",
                         strlen(parts[i] != NULL ? parts[i] : "") + 1);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    hex(md, mdlen, out);
}

static kval
str_or_null(const char *s)
{
    return s != NULL ? kval_cstr(s) : kval_null();
}

int
inbox_prepare(struct inbox_message *m, const struct inbox_options *opt)
{
    struct mime_options mo = {opt->attachment_keep, opt->trusted_authserv};
    struct mime_result *r = xcalloc(1, sizeof *r);
    char err[256];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    for (size_t i = 0; i < m->n_targets; i++) {
        m->targets[i].attrs = kval_null();
        m->targets[i].accepted = 0;
        m->targets[i].entry_id = 0;
        m->targets[i].eid[0] = '\0';
    }
    if (mime_parse(m->data, m->len, &mo, r, err, sizeof err) != 0) {
        free(r);
        for (size_t i = 0; i < m->n_targets; i++)
            snprintf(m->targets[i].reply, sizeof m->targets[i].reply,
                     "554 5.6.0 message refused: %s", err);
        return -1;
    }
    m->parsed = r;
    EVP_Digest(m->data, m->len, md, &mdlen, EVP_sha256(), NULL);
    hex(md, mdlen, m->digest);

    const kval *from = kval_map_get_str(&r->attrs, "from");
    const kval *auth = kval_map_get_str(&r->attrs, "auth");
    const char *from_addr =
        from != NULL && kval_kind(from) == KV_STRING ? kval_str_ptr(from)
                                                     : NULL;
    for (size_t i = 0; i < m->n_targets; i++) {
        struct inbox_target *t = &m->targets[i];
        if (mail_accept_message(t->ch, t->rcpt, from_addr, auth, t->reply) !=
            MAIL_ACCEPT)
            continue;
        kval env = kval_map_put_str(kval_map(), "mail_from",
                                    kval_cstr(m->mail_from));
        env = kval_map_put_str(env, "rcpt_to", kval_cstr(t->rcpt));
        env = kval_map_put_str(env, "client_addr",
                               str_or_null(m->client_addr));
        env = kval_map_put_str(env, "queue_id", str_or_null(m->queue_id));
        t->attrs = kval_map_put_str(kval_copy(&r->attrs), "envelope", env);
        id_new(t->eid);
        t->accepted = 1;
        snprintf(t->reply, sizeof t->reply, "250 2.0.0 <%s> event %s",
                 t->rcpt, t->eid);
    }
    return 0;
}

int
inbox_store(struct store *st, struct inbox_message *m)
{
    struct mime_result *r = m->parsed;
    int64_t mail_id = 0;
    int rc = STORE_OK;
    size_t n_accepted = 0;

    for (size_t i = 0; i < m->n_targets; i++)
        n_accepted += m->targets[i].accepted != 0;
    if (r == NULL || n_accepted == 0)
        return STORE_OK;
    for (size_t i = 0; i < m->n_targets && rc == STORE_OK; i++) {
        struct inbox_target *t = &m->targets[i];
        if (!t->accepted)
            continue;
        char key[65];
        const char *parts[] = {m->queue_id, t->rcpt, m->digest};
        digest(parts, 3, key);
        /* the raw message is stored with the first new entry only, so a
           duplicate delivery stores nothing */
        if (mail_id == 0) {
            rc = store_mail_add(st, m->data, m->len, &mail_id);
            if (rc != STORE_OK)
                break;
        }
        struct store_inbox_entry e = {
            .dedupe = key, .mail_id = mail_id, .eci = t->ch->eci,
            .domain = t->ch->rcpt.domain, .type = t->ch->rcpt.type,
            .attrs = &t->attrs, .queue_id = m->queue_id, .rcpt = t->rcpt,
            .eid = t->eid};
        rc = store_inbox_add(st, &e, &t->entry_id);
        if (rc == STORE_DUPLICATE) {
            /* answered as the first delivery was */
            char first[ID_BUFSIZE];
            if (store_inbox_eid(st, t->entry_id, first, sizeof first) ==
                STORE_OK)
                memcpy(t->eid, first, sizeof first);
            snprintf(t->reply, sizeof t->reply,
                     "250 2.0.0 <%s> event %s (already delivered)", t->rcpt,
                     t->eid);
            rc = STORE_OK;
        }
    }
    for (size_t i = 0; i < r->n_attachments && rc == STORE_OK; i++) {
        const struct mime_attachment *a = &r->attachments[i];
        if (a->data_len > 0)
            rc = store_attachment_put(st, a->sha256, a->content_type, a->size,
                                      a->data, a->data_len);
    }
    return rc;
}

void
inbox_tempfail(struct inbox_message *m, const char *why)
{
    for (size_t i = 0; i < m->n_targets; i++) {
        struct inbox_target *t = &m->targets[i];
        if (!t->accepted)
            continue;
        snprintf(t->reply, sizeof t->reply,
                 "451 4.3.0 <%s> not stored, try again later: %s", t->rcpt,
                 why != NULL ? why : "storage unavailable");
        t->entry_id = 0;
    }
}

void
inbox_message_release(struct inbox_message *m)
{
    for (size_t i = 0; i < m->n_targets; i++) {
        kval_free(m->targets[i].attrs);
        m->targets[i].attrs = kval_null();
    }
    if (m->parsed != NULL) {
        mime_result_release(m->parsed);
        free(m->parsed);
        m->parsed = NULL;
    }
}
