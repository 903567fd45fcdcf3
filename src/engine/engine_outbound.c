/*
 * engine_outbound.c - the mail-side modules of KRL: what picos send out
 * (the email:send and sms:send actions, event:send, the reply and forward
 * directives of events raised by mail; DESIGN.md §3-§4) and
 * mail:attachment(sha256), the kept content of a received attachment.
 *
 * Nothing is sent from here: each send is checked (addresses, headers,
 * phone numbers) and becomes an outbox row (store.h) in the event's own
 * transaction, so it happens if and only if the event commits; the
 * daemon's sender delivers the rows afterwards.  A refused send is a KRL
 * error for the rule.  event:send to a pico of this daemon is an inbox
 * entry, processed as a new event after this one.
 *
 * Automatic replies follow RFC 3834 and the replier's rules of
 * mail-integration.md §3.5: never to an empty or MAILER-DAEMON-like
 * sender, to mail marked Auto-Submitted, to list or bulk mail, or to our
 * own mail domain (two picos cannot answer each other forever), and at
 * most REPLY_RATE replies per sender and pico an hour.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_internal.h"
#include "picomail/compose.h"
#include "picomail/ids.h"
#include "picomail/mem.h"

#define REPLY_RATE 5            /* automatic replies per sender per hour */
#define MAX_RCPTS 50
#define MAX_REFERENCES 10
#define SMS_MAX 1600            /* characters of one SMS body (Twilio) */

static struct txn *
txn_of(struct krl_vm *vm)
{
    return krl_vm_host_ctx(vm);
}

/* ---- arguments ---- */

/* addr_list - V (a string or an array of strings) appended to OUT after
 * each passed addr_valid; an error names FN and the bad address */
static kval
addr_list(const kval *v, const char *fn, const char *what, kval *out)
{
    size_t n = 0;
    const kval *one = v;
    if (v == NULL || kval_is_null(v))
        return kval_null();
    if (kval_kind(v) == KV_ARRAY)
        n = kval_array_len(v);
    else if (kval_kind(v) == KV_STRING)
        n = 1;
    else
        return kval_error("TypeError: %s needs %s as an address or an "
                          "array of addresses", fn, what);
    for (size_t i = 0; i < n; i++) {
        if (kval_kind(v) == KV_ARRAY)
            one = kval_array_get(v, i);
        if (kval_kind(one) != KV_STRING)
            return kval_error("TypeError: %s: %s must be strings", fn, what);
        const char *why = NULL;
        if (!addr_valid(kval_str_ptr(one), &why))
            return kval_error("Error: %s: invalid %s address: %s", fn, what,
                              why ? why : "refused");
        if (kval_array_len(out) >= MAX_RCPTS)
            return kval_error("Error: %s: more than %d recipients", fn,
                              MAX_RCPTS);
        *out = kval_array_append(*out, kval_copy(one));
    }
    return kval_null();
}

static const char *
opt_str(const kval *options, const char *key)
{
    const kval *v = options != NULL && kval_kind(options) == KV_MAP
                        ? kval_map_get_str(options, key)
                        : NULL;
    return v != NULL && kval_kind(v) == KV_STRING ? kval_str_ptr(v) : NULL;
}

/* c_strings - the strings of array V as a NULL-free C array (borrowed;
 * free the array itself) */
static const char **
c_strings(const kval *v, size_t *n)
{
    *n = v != NULL && kval_kind(v) == KV_ARRAY ? kval_array_len(v) : 0;
    const char **out = xcalloc(*n + 1, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        const kval *s = kval_array_get(v, i);
        if (kval_kind(s) == KV_STRING)
            out[k++] = kval_str_ptr(s);
    }
    *n = k;
    return out;
}

/* ---- queueing ---- */

static kval
queue(struct txn *t, const char *kind, kval request, const char *rate_key)
{
    struct store_outbox_entry e = {
        .pico_id = t->pico_id, .eci = t->eci, .eid = t->eid, .kind = kind,
        .request = &request, .rate_key = rate_key};
    int64_t id = 0;
    int rc = store_outbox_add(t->e->st, &e, &id);
    kval_free(request);
    if (rc != STORE_OK)
        return engine_store_error(t->e, rc);
    return kval_map_put_str(kval_map(), "outbox_id", kval_number((double)id));
}

/* the From address of what this pico sends: the configured sender, else
 * the address of the channel the event came through */
static void
from_address(struct txn *t, char *out, size_t outlen)
{
    if (t->e->mail_sender != NULL)
        snprintf(out, outlen, "%s", t->e->mail_sender);
    else
        snprintf(out, outlen, "%s@%s", t->eci, t->e->mail_domain);
}

struct mail_parts {
    const char *subject;
    const char *text;
    const char *html;
    const char *in_reply_to;
    const kval *references;
    const char *auto_submitted;
    const kval *headers;        /* map name -> string, or NULL */
    const char *envelope_from;  /* "" for <> */
    const char *reply_to;
};

/* queue_mail - compose now (so every check happens inside the rule) and
 * queue the message with its envelope */
static kval
queue_mail(struct txn *t, const char *fn, const kval *to, const kval *cc,
           const kval *bcc, const struct mail_parts *p, const char *rate_key)
{
    char from[320];
    from_address(t, from, sizeof from);
    kval rcpts = kval_array(), to_l = kval_array(), cc_l = kval_array();
    kval err = addr_list(to, fn, "to", &to_l);
    if (kval_is_null(&err))
        err = addr_list(cc, fn, "cc", &cc_l);
    if (kval_is_null(&err))
        err = addr_list(bcc, fn, "bcc", &rcpts);
    if (kval_is_null(&err) && kval_array_len(&to_l) == 0)
        err = kval_error("Error: %s: no recipient", fn);
    const char *why = NULL;
    if (kval_is_null(&err) && p->reply_to != NULL &&
        !addr_valid(p->reply_to, &why))
        err = kval_error("Error: %s: invalid reply_to address: %s", fn, why);
    if (!kval_is_null(&err)) {
        kval_free(rcpts);
        kval_free(to_l);
        kval_free(cc_l);
        return err;
    }
    /* extra headers: name, value pairs, checked by compose */
    size_t n_extra = 0;
    const char **extra = NULL;
    if (p->headers != NULL && kval_kind(p->headers) == KV_MAP) {
        extra = xcalloc(2 * kval_map_len(p->headers) + 1, sizeof *extra);
        struct kval_map_iter it;
        const kval *k, *v;
        kval bad = kval_null();
        kval_map_iter_init(&it, p->headers);
        while (kval_map_iter_next(&it, &k, &v)) {
            if (kval_kind(v) != KV_STRING) {
                bad = kval_error("TypeError: %s: header %s must be a "
                                 "string", fn, kval_str_ptr(k));
                break;
            }
            /* borrowed for the life of P->headers */
            extra[2 * n_extra] = kval_str_ptr(k);
            extra[2 * n_extra + 1] = kval_str_ptr(v);
            n_extra++;
        }
        kval_map_iter_done(&it);
        if (kval_is_error(&bad)) {
            free(extra);
            kval_free(rcpts);
            kval_free(to_l);
            kval_free(cc_l);
            return bad;
        }
    }
    size_t n_to, n_cc, n_ref;
    const char **to_c = c_strings(&to_l, &n_to);
    const char **cc_c = c_strings(&cc_l, &n_cc);
    const char **ref_c = c_strings(p->references, &n_ref);
    struct compose_spec spec = {
        .from = from, .to = to_c, .n_to = n_to, .cc = cc_c, .n_cc = n_cc,
        .reply_to = p->reply_to, .subject = p->subject ? p->subject : "",
        .text = p->text ? p->text : "", .html = p->html,
        .in_reply_to = p->in_reply_to, .references = ref_c,
        .n_references = n_ref, .auto_submitted = p->auto_submitted,
        .extra_headers = extra, .n_extra = n_extra,
        .message_id_domain = t->e->mail_domain};
    struct buf msg, msgid;
    buf_init(&msg);
    buf_init(&msgid);
    char cerr[256];
    int rc = compose_message(&spec, &msg, &msgid, cerr, sizeof cerr);
    free(to_c);
    free(cc_c);
    free(ref_c);
    free(extra);
    if (rc != 0) {
        buf_release(&msg);
        buf_release(&msgid);
        kval_free(rcpts);
        kval_free(to_l);
        kval_free(cc_l);
        return kval_error("Error: %s: %s", fn, cerr);
    }
    for (size_t i = kval_array_len(&cc_l); i > 0; i--)
        rcpts = kval_array_append(
            rcpts, kval_copy(kval_array_get(&cc_l, i - 1)));
    for (size_t i = kval_array_len(&to_l); i > 0; i--)
        rcpts = kval_array_append(
            rcpts, kval_copy(kval_array_get(&to_l, i - 1)));
    kval req = kval_map_put_str(kval_map(), "mail_from",
                                kval_cstr(p->envelope_from
                                              ? p->envelope_from
                                              : from));
    req = kval_map_put_str(req, "rcpts", rcpts);
    req = kval_map_put_str(req, "to", to_l);
    req = kval_map_put_str(req, "subject",
                           kval_cstr(p->subject ? p->subject : ""));
    req = kval_map_put_str(req, "message_id",
                           kval_str(msgid.data, msgid.len));
    req = kval_map_put_str(req, "message", kval_str(msg.data, msg.len));
    kval_free(cc_l);
    buf_release(&msg);
    buf_release(&msgid);
    return queue(t, "email", req, rate_key);
}

/* email:send(to, subject, body, options) */
static kval
email_send(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    const kval *to = n > 0 ? &args[0] : NULL;
    const kval *subject = n > 1 ? &args[1] : NULL;
    const kval *body = n > 2 ? &args[2] : NULL;
    const kval *opt = n > 3 && kval_kind(&args[3]) == KV_MAP ? &args[3]
                                                             : NULL;
    if (subject == NULL || kval_kind(subject) != KV_STRING)
        return kval_error("TypeError: email:send needs a subject string");
    if (body == NULL || kval_kind(body) != KV_STRING)
        return kval_error("TypeError: email:send needs a body string");
    struct mail_parts p = {
        .subject = kval_str_ptr(subject), .text = kval_str_ptr(body),
        .html = opt_str(opt, "html"),
        .in_reply_to = opt_str(opt, "in_reply_to"),
        .references = opt ? kval_map_get_str(opt, "references") : NULL,
        .auto_submitted = "auto-generated",
        .headers = opt ? kval_map_get_str(opt, "headers") : NULL,
        .reply_to = opt_str(opt, "reply_to")};
    return queue_mail(t, "email:send", to,
                      opt ? kval_map_get_str(opt, "cc") : NULL,
                      opt ? kval_map_get_str(opt, "bcc") : NULL, &p, NULL);
}

/* sms:send(to, body) - TO in E.164 ("+" and 8 to 15 digits) */
static kval
sms_send(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    if (n < 2 || kval_kind(&args[0]) != KV_STRING ||
        kval_kind(&args[1]) != KV_STRING)
        return kval_error("TypeError: sms:send needs a phone number and a "
                          "body as strings");
    const char *to = kval_str_ptr(&args[0]);
    size_t digits = 0;
    bool ok = to[0] == '+';
    for (const char *p = to + 1; ok && *p != '\0'; p++, digits++)
        ok = isdigit((unsigned char)*p);
    if (!ok || digits < 8 || digits > 15)
        return kval_error("Error: sms:send: the number must be in E.164 "
                          "form (+ and 8 to 15 digits): %s", to);
    if (kval_str_len16(&args[1]) > SMS_MAX)
        return kval_error("Error: sms:send: the body is longer than %d "
                          "characters", SMS_MAX);
    kval req = kval_map_put_str(kval_map(), "to", kval_copy(&args[0]));
    req = kval_map_put_str(req, "body", kval_copy(&args[1]));
    return queue(t, "sms", req, NULL);
}

/* event:send({"eci", "domain", "type", "attrs"}, host) */
static kval
event_send(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    const kval *ev = n > 0 ? &args[0] : NULL;
    if (ev == NULL || kval_kind(ev) != KV_MAP)
        return kval_error("TypeError: event:send needs a map {eci, domain, "
                          "type, attrs}");
    const char *eci = opt_str(ev, "eci");
    const char *domain = opt_str(ev, "domain");
    const char *type = opt_str(ev, "type");
    if (type == NULL)
        type = opt_str(ev, "name");     /* the reference's older spelling */
    const kval *attrs = kval_map_get_str(ev, "attrs");
    if (eci == NULL || domain == NULL || type == NULL || *eci == '\0' ||
        *domain == '\0' || *type == '\0')
        return kval_error("Error: event:send needs eci, domain and type");
    if (attrs != NULL && !kval_is_null(attrs) && kval_kind(attrs) != KV_MAP)
        return kval_error("TypeError: event:send: attrs must be a map");
    kval empty = kval_map();
    const kval *a = attrs != NULL && !kval_is_null(attrs) ? attrs : &empty;
    const kval *host = n > 1 ? &args[1] : NULL;
    kval r;
    if (host == NULL || kval_is_null(host)) {
        /* a pico of this daemon: a new event, after this one */
        char eid[ID_BUFSIZE], key[96];
        id_new(eid);
        snprintf(key, sizeof key, "event:%s", eid);
        struct store_inbox_entry e = {
            .dedupe = key, .eci = eci, .domain = domain, .type = type,
            .attrs = a, .rcpt = "", .eid = eid, .from_pico = t->pico_id};
        int64_t id = 0;
        int rc = store_inbox_add(t->e->st, &e, &id);
        r = rc == STORE_OK
                ? kval_map_put_str(kval_map(), "eid", kval_cstr(eid))
                : engine_store_error(t->e, rc);
    } else if (kval_kind(host) != KV_STRING ||
               (strncmp(kval_str_ptr(host), "http://", 7) != 0 &&
                strncmp(kval_str_ptr(host), "https://", 8) != 0)) {
        r = kval_error("Error: event:send: host must be an http:// or "
                       "https:// URL");
    } else {
        kval req = kval_map_put_str(kval_map(), "host", kval_copy(host));
        req = kval_map_put_str(req, "eci", kval_cstr(eci));
        req = kval_map_put_str(req, "domain", kval_cstr(domain));
        req = kval_map_put_str(req, "type", kval_cstr(type));
        req = kval_map_put_str(req, "attrs", kval_copy(a));
        r = queue(t, "event", req, NULL);
    }
    kval_free(empty);
    return r;
}

/* mail:attachment(sha256) - a kept attachment of delivered mail:
 * {sha256, content_type, size, data (the bytes kept, as text)}, or null */
static kval
mail_attachment(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    if (n < 1 || kval_kind(&args[0]) != KV_STRING)
        return kval_error("TypeError: mail:attachment needs a sha256 "
                          "string");
    kval out;
    int rc = store_attachment_get(t->e->st, kval_str_ptr(&args[0]), &out);
    if (rc == STORE_NOTFOUND)
        return kval_null();
    return rc == STORE_OK ? out : engine_store_error(t->e, rc);
}

bool
engine_outbound_get(struct txn *t, const char *domain, const char *name,
                    kval *out)
{
    static const char *const email_params[] = {"to", "subject", "body",
                                               "options"};
    static const char *const sms_params[] = {"to", "body"};
    static const char *const event_params[] = {"event", "host"};
    (void)t;
    if (strcmp(domain, "email") == 0) {
        *out = strcmp(name, "send") == 0
                   ? kval_func_new(email_send, NULL, NULL, KV_FN_ACTION,
                                   "send", email_params, 4)
                   : kval_error("Error: email:%s is not defined", name);
        return true;
    }
    if (strcmp(domain, "sms") == 0) {
        *out = strcmp(name, "send") == 0
                   ? kval_func_new(sms_send, NULL, NULL, KV_FN_ACTION,
                                   "send", sms_params, 2)
                   : kval_error("Error: sms:%s is not defined", name);
        return true;
    }
    if (strcmp(domain, "mail") == 0) {
        static const char *const att_params[] = {"sha256"};
        *out = strcmp(name, "attachment") == 0
                   ? kval_func_new(mail_attachment, NULL, NULL,
                                   KV_FN_FUNCTION, "attachment", att_params,
                                   1)
                   : kval_error("Error: mail:%s is not defined", name);
        return true;
    }
    if (strcmp(domain, "event") == 0 && strcmp(name, "send") == 0) {
        *out = kval_func_new(event_send, NULL, NULL, KV_FN_ACTION, "send",
                             event_params, 2);
        return true;
    }
    return false;
}

/* ---- reply and forward directives ---- */

static const char *
attr_str(const kval *map, const char *key)
{
    const kval *v = map != NULL && kval_kind(map) == KV_MAP
                        ? kval_map_get_str(map, key)
                        : NULL;
    return v != NULL && kval_kind(v) == KV_STRING ? kval_str_ptr(v) : NULL;
}

/* header - a header of the original mail (first value if repeated) */
static const char *
header(const kval *attrs, const char *name)
{
    const kval *h = kval_map_get_str(attrs, "headers");
    const kval *v = h != NULL && kval_kind(h) == KV_MAP
                        ? kval_map_get_str(h, name)
                        : NULL;
    if (v != NULL && kval_kind(v) == KV_ARRAY && kval_array_len(v) > 0)
        v = kval_array_get(v, 0);
    return v != NULL && kval_kind(v) == KV_STRING ? kval_str_ptr(v) : NULL;
}

/* no_auto_reply - why mail with ATTRS must not be answered
 * automatically (RFC 3834), or NULL */
static const char *
no_auto_reply(struct txn *t, const kval *attrs, const char *sender)
{
    static const char *const robots[] = {
        "mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply",
        "do-not-reply", "listserv", "majordomo"};
    if (sender == NULL || *sender == '\0')
        return "the sender is empty (a bounce)";
    const char *at = strrchr(sender, '@');
    size_t local = at ? (size_t)(at - sender) : strlen(sender);
    for (size_t i = 0; i < sizeof robots / sizeof robots[0]; i++)
        if (strlen(robots[i]) == local &&
            strncasecmp(sender, robots[i], local) == 0)
            return "the sender is a mail robot";
    if ((local > 8 && strncasecmp(sender + local - 8, "-request", 8) == 0) ||
        strncasecmp(sender, "owner-", 6) == 0 ||
        strstr(sender, "-bounces") != NULL)
        return "the sender is a list address";
    if (at != NULL && strcasecmp(at + 1, t->e->mail_domain) == 0)
        return "the sender is one of our own addresses";
    const char *as = header(attrs, "auto-submitted");
    if (as != NULL && strncasecmp(as, "no", 2) != 0)
        return "the mail is Auto-Submitted";
    const char *prec = header(attrs, "precedence");
    if (prec != NULL && (strcasecmp(prec, "bulk") == 0 ||
                         strcasecmp(prec, "list") == 0 ||
                         strcasecmp(prec, "junk") == 0))
        return "the mail is bulk or list mail";
    if (header(attrs, "list-id") != NULL ||
        header(attrs, "list-unsubscribe") != NULL ||
        header(attrs, "x-auto-response-suppress") != NULL)
        return "the mail is list mail";
    const char *ct = header(attrs, "content-type");
    if (ct != NULL && strncasecmp(ct, "multipart/report", 16) == 0)
        return "the mail is a delivery report";
    return NULL;
}

/* prefixed - SUBJECT with PREFIX ("Re: ") unless it has it already */
static kval
prefixed(const char *prefix, const char *subject)
{
    if (subject == NULL)
        subject = "";
    size_t pl = strlen(prefix);
    if (strncasecmp(subject, prefix, pl - 1) == 0)
        return kval_cstr(subject);
    return kval_str_fmt("%s%s", prefix, subject);
}

/* threading - References of a reply: the original's (at most the last
 * MAX_REFERENCES - 1), then its Message-ID */
static kval
threading(const kval *attrs)
{
    kval refs = kval_array();
    const kval *orig = kval_map_get_str(attrs, "references");
    size_t n = orig != NULL && kval_kind(orig) == KV_ARRAY
                   ? kval_array_len(orig)
                   : 0;
    size_t from = n > MAX_REFERENCES - 1 ? n - (MAX_REFERENCES - 1) : 0;
    for (size_t i = from; i < n; i++)
        refs = kval_array_append(refs, kval_copy(kval_array_get(orig, i)));
    const char *id = attr_str(attrs, "message_id");
    if (id != NULL)
        refs = kval_array_append(refs, kval_cstr(id));
    return refs;
}

static void
one_directive(struct txn *t, const kval *attrs, const kval *d)
{
    const char *name = attr_str(d, "name");
    const kval *opt = kval_map_get_str(d, "options");
    const kval *env = kval_map_get_str(attrs, "envelope");
    if (name == NULL || env == NULL)
        return;
    bool reply = strcmp(name, "reply") == 0;
    if (!reply && strcmp(name, "forward") != 0)
        return;
    const char *sender = attr_str(env, "mail_from");
    const char *subject = attr_str(attrs, "subject");
    kval subj = opt_str(opt, "subject") != NULL
                    ? kval_cstr(opt_str(opt, "subject"))
                    : prefixed(reply ? "Re: " : "Fwd: ", subject);
    kval refs = threading(attrs);
    kval to = kval_null();
    const char *skip = NULL;
    char rate_key[400];
    if (reply) {
        skip = no_auto_reply(t, attrs, sender);
        snprintf(rate_key, sizeof rate_key, "reply:%s",
                 sender ? sender : "");
        if (skip == NULL &&
            store_outbox_recent(t->e->st, t->pico_id, rate_key,
                                engine_now_ms() - 3600 * 1000) >= REPLY_RATE)
            skip = "too many replies to this sender in the last hour";
        if (skip == NULL)
            to = kval_cstr(sender);
    } else {
        const kval *fto = opt != NULL && kval_kind(opt) == KV_MAP
                              ? kval_map_get_str(opt, "to")
                              : NULL;
        to = fto != NULL ? kval_copy(fto) : kval_null();
        snprintf(rate_key, sizeof rate_key, "forward");
        if (kval_is_null(&to))
            skip = "a forward directive needs options.to";
        else if ((skip = no_auto_reply(t, attrs, sender)) != NULL &&
                 (sender == NULL || *sender == '\0' ||
                  header(attrs, "auto-submitted") == NULL))
            skip = NULL;    /* forwarding list mail is fine; loops are not */
    }
    if (skip != NULL) {
        fprintf(stderr, "picomail: eid %s: no %s: %s\n", t->eid, name, skip);
    } else {
        const char *text = opt_str(opt, "text");
        if (!reply && text == NULL)
            text = attr_str(attrs, "text");
        struct mail_parts p = {
            .subject = kval_str_ptr(&subj), .text = text ? text : "",
            .html = opt_str(opt, "html"),
            .in_reply_to = attr_str(attrs, "message_id"),
            .references = &refs,
            .auto_submitted = reply ? "auto-replied" : "auto-generated",
            /* an automatic reply that fails must not bounce back here */
            .envelope_from = ""};
        kval r = queue_mail(t, reply ? "reply" : "forward", &to, NULL, NULL,
                            &p, reply ? rate_key : NULL);
        if (kval_is_error(&r))
            fprintf(stderr, "picomail: eid %s: %s not sent: %s\n", t->eid,
                    name, kval_error_msg(&r));
        kval_free(r);
    }
    kval_free(to);
    kval_free(refs);
    kval_free(subj);
}

void
engine_outbound_directives(struct txn *t, const kval *attrs,
                           const kval *result)
{
    if (attrs == NULL || kval_kind(attrs) != KV_MAP ||
        kval_map_get_str(attrs, "envelope") == NULL ||
        kval_is_error(result))
        return;
    const kval *ds = kval_map_get_str(result, "directives");
    for (size_t i = 0; ds != NULL && i < kval_array_len(ds); i++)
        one_directive(t, attrs, kval_array_get(ds, i));
}
