/*
 * sender.c - the outbox sender: a thread that delivers what picos send
 * (store.h outbox rows) with libcurl, after the events that queued them
 * have committed; see sender.h.
 *
 *   email  SMTP to smtp_relay (one handle, so the connection is reused),
 *          with the message composed when it was queued
 *   sms    a form POST to a Twilio-compatible Messages endpoint
 *   event  a Sky Event POST to another pico engine
 *
 * Each attempt ends as sent, retry (4xx, 429, 5xx from an HTTP server, a
 * refused or broken connection: exponential backoff from 1 s up to an
 * hour, at least any Retry-After) or failed (a permanent refusal, or the
 * row's lifetime is over).  A failure raises system:delivery_failed on
 * the pico, through the channel of the event that sent it, as an inbox
 * entry written in the same transaction that marks the row failed.  Rows
 * are marked after the attempt, so a crash between the two sends that
 * row again at the next start (mail keeps its Message-ID).  The sender
 * runs apart from the rule engine and the LMTP listener: a slow relay or
 * provider delays only other sends.
 */
#include "sender.h"
#include "waker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "picomail/compose.h"
#include "picomail/json.h"
#include "picomail/logmsg.h"
#include "picomail/mem.h"

#define BATCH 20
#define IDLE_WAIT_MS 5000       /* look for rows added by other processes */
#define MAX_BACKOFF_MS (3600 * 1000)

enum outcome { SENT, RETRY, FAILED };

struct attempt {
    enum outcome outcome;
    char detail[512];           /* the result, or why it did not go */
    long retry_after_ms;        /* from a Retry-After header, or 0 */
};

struct sender {
    pthread_t thread;
    struct waker w;
    struct store *st;
    struct dispatch *dispatch;
    CURL *smtp;                 /* reused: keeps the relay connection */
    CURL *http;
};


static const char *
str_of(const kval *map, const char *key)
{
    const kval *v = map != NULL ? kval_map_get_str(map, key) : NULL;
    return v != NULL && kval_kind(v) == KV_STRING ? kval_str_ptr(v) : NULL;
}

/* secret - the first line of FILE, else the value of the environment
 * variable ENV; NULL when neither gives one (malloc'd) */
static char *
secret(const char *file, const char *env)
{
    if (file != NULL && *file != '\0') {
        FILE *fp = fopen(file, "re");
        char line[1024];
        if (fp == NULL) {
            logmsg(LOG_WARNING, "%s: %s", file, strerror(errno));
            return NULL;
        }
        char *got = fgets(line, sizeof line, fp);
        fclose(fp);
        if (got == NULL)
            return NULL;
        line[strcspn(line, "\r\n")] = '\0';
        return xstrdup(line);
    }
    const char *v = env != NULL && *env != '\0' ? getenv(env) : NULL;
    return v != NULL ? xstrdup(v) : NULL;
}

/* ---- SMTP ---- */

struct upload {
    const char *data;
    size_t len, off;
};

static size_t
read_upload(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct upload *u = arg;
    size_t n = size * nmemb;
    if (n > u->len - u->off)
        n = u->len - u->off;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

static void
send_email(struct sender *s, const struct settings *set, const kval *req,
           struct attempt *a)
{
    const char *from = str_of(req, "mail_from");
    const char *message = str_of(req, "message");
    const kval *rcpts = kval_map_get_str(req, "rcpts");
    size_t n = rcpts != NULL && kval_kind(rcpts) == KV_ARRAY
                   ? kval_array_len(rcpts)
                   : 0;
    const char *why = NULL;
    if (from == NULL || message == NULL || n == 0) {
        a->outcome = FAILED;
        snprintf(a->detail, sizeof a->detail, "malformed outbox row");
        return;
    }
    /* libcurl puts envelope addresses into SMTP commands as they are
       (CR/LF included): every one is checked again here */
    if (*from != '\0' && !addr_valid(from, &why)) {
        a->outcome = FAILED;
        snprintf(a->detail, sizeof a->detail, "bad sender: %s", why);
        return;
    }
    struct curl_slist *list = NULL;
    char addr[512];
    for (size_t i = 0; i < n; i++) {
        const kval *r = kval_array_get(rcpts, i);
        if (kval_kind(r) != KV_STRING || !addr_valid(kval_str_ptr(r), &why)) {
            curl_slist_free_all(list);
            a->outcome = FAILED;
            snprintf(a->detail, sizeof a->detail, "bad recipient: %s",
                     why ? why : "not a string");
            return;
        }
        snprintf(addr, sizeof addr, "<%s>", kval_str_ptr(r));
        list = curl_slist_append(list, addr);
    }
    char url[1024], mail_from[512], errbuf[CURL_ERROR_SIZE] = "";
    /* the URL's path is the EHLO name: ours unless the URL gives one */
    const char *scheme_end = strstr(set->smtp_relay, "://");
    bool has_path = scheme_end != NULL && strchr(scheme_end + 3, '/');
    snprintf(url, sizeof url, "%s%s%s", set->smtp_relay, has_path ? "" : "/",
             has_path ? "" : set->hostname);
    snprintf(mail_from, sizeof mail_from, "<%s>", from);
    struct upload up = {message, strlen(message), 0};
    CURL *h = s->smtp;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, mail_from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, list);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     strcmp(set->smtp_tls, "yes") == 0 ? (long)CURLUSESSL_ALL
                     : strcmp(set->smtp_tls, "no") == 0
                         ? (long)CURLUSESSL_NONE
                         : (long)CURLUSESSL_TRY);
    char *password = NULL;
    if (set->smtp_user != NULL) {
        password = secret(set->smtp_password_file, set->smtp_password_env);
        curl_easy_setopt(h, CURLOPT_USERNAME, set->smtp_user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, password ? password : "");
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(list);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (password != NULL) {
        memset(password, 0, strlen(password));
        free(password);
    }
    if (rc == CURLE_OK) {
        a->outcome = SENT;
        snprintf(a->detail, sizeof a->detail, "%ld", code);
        return;
    }
    /* a 5xx is the relay refusing for good; everything else (4xx, no
       connection, a timeout) may work later */
    a->outcome = code >= 500 && code < 600 ? FAILED : RETRY;
    snprintf(a->detail, sizeof a->detail, "smtp %ld: %s", code,
             *errbuf ? errbuf : curl_easy_strerror(rc));
}

/* ---- HTTP (SMS and events) ---- */

struct response {
    struct buf body;
    long retry_after_s;
};

static size_t
write_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct response *r = arg;
    size_t n = size * nmemb;
    if (r->body.len < 64 * 1024)
        buf_add(&r->body, p, n);
    return n;
}

static size_t
read_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct response *r = arg;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        r->retry_after_s = strtol(p + 12, NULL, 10);
    return n;
}

/* post - POST BODY to URL; the HTTP status (0: no answer) */
static long
post(struct sender *s, const char *url, const char *content_type,
     const char *body, const char *user, const char *password,
     struct response *resp, char *errbuf)
{
    CURL *h = s->http;
    struct curl_slist *hdrs = NULL;
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
    hdrs = curl_slist_append(hdrs, ct);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (user != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, password ? password : "");
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    return code;
}

/* http_outcome - what an HTTP status means for the row */
static void
http_outcome(long code, const struct response *resp, const char *errbuf,
             struct attempt *a)
{
    if (code >= 200 && code < 300) {
        a->outcome = SENT;
    } else if (code == 0 || code == 408 || code == 429 || code >= 500) {
        a->outcome = RETRY;
        a->retry_after_ms = resp->retry_after_s > 0
                                ? resp->retry_after_s * 1000
                                : 0;
    } else {
        a->outcome = FAILED;
    }
    if (code == 0)
        snprintf(a->detail, sizeof a->detail, "no answer: %s", errbuf);
    else
        snprintf(a->detail, sizeof a->detail, "http %ld: %.*s", code,
                 (int)(resp->body.len < 300 ? resp->body.len : 300),
                 resp->body.data ? resp->body.data : "");
}

static void
send_sms(struct sender *s, const struct settings *set, const kval *req,
         struct attempt *a)
{
    const char *to = str_of(req, "to"), *body = str_of(req, "body");
    if (set->sms_url == NULL || set->sms_from == NULL) {
        a->outcome = FAILED;
        snprintf(a->detail, sizeof a->detail,
                 "no SMS provider configured (sms_url, sms_from)");
        return;
    }
    if (to == NULL || body == NULL) {
        a->outcome = FAILED;
        snprintf(a->detail, sizeof a->detail, "malformed outbox row");
        return;
    }
    char *e_to = curl_easy_escape(s->http, to, 0);
    char *e_from = curl_easy_escape(s->http, set->sms_from, 0);
    char *e_body = curl_easy_escape(s->http, body, 0);
    struct buf form;
    buf_init(&form);
    buf_printf(&form, "To=%s&From=%s&Body=%s", e_to, e_from, e_body);
    curl_free(e_to);
    curl_free(e_from);
    curl_free(e_body);
    char *token = secret(set->sms_token_file, set->sms_token_env);
    struct response resp = {{0}, 0};
    buf_init(&resp.body);
    char errbuf[CURL_ERROR_SIZE] = "";
    long code = post(s, set->sms_url, "application/x-www-form-urlencoded",
                     form.data, set->sms_account, token, &resp, errbuf);
    http_outcome(code, &resp, errbuf, a);
    if (a->outcome == SENT) {
        /* keep the provider's message id */
        kval r = json_parse(resp.body.data ? resp.body.data : "",
                            resp.body.len);
        const char *sid = kval_kind(&r) == KV_MAP ? str_of(&r, "sid") : NULL;
        snprintf(a->detail, sizeof a->detail, "http %ld%s%s", code,
                 sid ? " sid " : "", sid ? sid : "");
        kval_free(r);
    }
    if (token != NULL) {
        memset(token, 0, strlen(token));
        free(token);
    }
    buf_release(&form);
    buf_release(&resp.body);
}

static void
send_event(struct sender *s, const kval *req, const char *eid,
           struct attempt *a)
{
    const char *host = str_of(req, "host"), *eci = str_of(req, "eci"),
               *domain = str_of(req, "domain"), *type = str_of(req, "type");
    const kval *attrs = kval_map_get_str(req, "attrs");
    if (host == NULL || eci == NULL || domain == NULL || type == NULL) {
        a->outcome = FAILED;
        snprintf(a->detail, sizeof a->detail, "malformed outbox row");
        return;
    }
    char *e_eci = curl_easy_escape(s->http, eci, 0);
    char *e_domain = curl_easy_escape(s->http, domain, 0);
    char *e_type = curl_easy_escape(s->http, type, 0);
    struct buf url, body;
    buf_init(&url);
    buf_init(&body);
    size_t hl = strlen(host);
    buf_printf(&url, "%.*s/sky/event/%s/%s/%s/%s",
               (int)(hl > 0 && host[hl - 1] == '/' ? hl - 1 : hl), host,
               e_eci, eid ? eid : "none", e_domain, e_type);
    curl_free(e_eci);
    curl_free(e_domain);
    curl_free(e_type);
    kval empty = kval_map();
    json_encode(attrs ? attrs : &empty, JSON_DATA, 0, &body);
    kval_free(empty);
    buf_addc(&body, '\0');
    struct response resp;
    memset(&resp, 0, sizeof resp);
    buf_init(&resp.body);
    char errbuf[CURL_ERROR_SIZE] = "";
    long code = post(s, url.data, "application/json", body.data, NULL, NULL,
                     &resp, errbuf);
    http_outcome(code, &resp, errbuf, a);
    buf_release(&url);
    buf_release(&body);
    buf_release(&resp.body);
}

/* ---- the loop ---- */

static int64_t
backoff_ms(int attempts, long retry_after_ms)
{
    int64_t b = 1000;
    for (int i = 0; i < attempts && b < MAX_BACKOFF_MS; i++)
        b *= 2;
    if (b > MAX_BACKOFF_MS)
        b = MAX_BACKOFF_MS;
    /* spread retries of many rows: 80% to 120% */
    b = b * (80 + rand() % 41) / 100;
    return b > retry_after_ms ? b : retry_after_ms;
}

/* failure_event - system:delivery_failed for the pico that sent ROW */
static int
failure_event(struct sender *s, const kval *row, const char *why)
{
    const char *eci = str_of(row, "eci");
    if (eci == NULL)
        return STORE_OK;
    const kval *req = kval_map_get_str(row, "request");
    double id = kval_get_number(kval_map_get_str(row, "id"));
    kval attrs = kval_map_put_str(kval_map(), "outbox_id", kval_number(id));
    attrs = kval_map_put_str(attrs, "kind",
                             kval_cstr(str_of(row, "kind") ? str_of(row, "kind")
                                                           : ""));
    attrs = kval_map_put_str(attrs, "error", kval_cstr(why));
    const char *eid_sent = str_of(row, "eid");
    if (eid_sent != NULL)
        attrs = kval_map_put_str(attrs, "eid", kval_cstr(eid_sent));
    static const char *const keep[] = {"to", "subject", "message_id", "host",
                                       "eci", "domain", "type"};
    kval request = kval_map();
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const kval *v = req ? kval_map_get_str(req, keep[i]) : NULL;
        if (v != NULL)
            request = kval_map_put_str(request, keep[i], kval_copy(v));
    }
    attrs = kval_map_put_str(attrs, "request", request);
    char key[64], eid[ID_BUFSIZE];
    snprintf(key, sizeof key, "delivery_failed:%.0f", id);
    id_new(eid);
    struct store_inbox_entry e = {.dedupe = key, .eci = eci,
                                  .domain = "system",
                                  .type = "delivery_failed",
                                  .attrs = &attrs, .rcpt = "", .eid = eid};
    int64_t entry;
    int rc = store_inbox_add(s->st, &e, &entry);
    kval_free(attrs);
    return rc == STORE_DUPLICATE ? STORE_OK : rc;
}

/* record - the attempt's outcome for ROW, in one transaction */
static void
record(struct sender *s, const kval *row, struct attempt *a)
{
    int64_t id = (int64_t)kval_get_number(kval_map_get_str(row, "id"));
    int attempts = (int)kval_get_number(kval_map_get_str(row, "attempts"));
    int64_t expires = (int64_t)kval_get_number(kval_map_get_str(row, "expires"));
    int64_t next = now_ms() + backoff_ms(attempts, a->retry_after_ms);
    if (a->outcome == RETRY && next > expires) {
        a->outcome = FAILED;
        char last[sizeof a->detail];
        memcpy(last, a->detail, sizeof last);
        snprintf(a->detail, sizeof a->detail,
                 "expired after %d attempts: %.400s", attempts + 1, last);
    }
    int rc = store_begin(s->st);
    if (rc == STORE_OK) {
        switch (a->outcome) {
        case SENT:
            rc = store_outbox_sent(s->st, id, a->detail);
            break;
        case RETRY:
            rc = store_outbox_retry(s->st, id, a->detail, next);
            break;
        case FAILED:
            rc = store_outbox_failed(s->st, id, a->detail);
            if (rc == STORE_OK)
                rc = failure_event(s, row, a->detail);
            break;
        }
    }
    if (rc == STORE_OK)
        rc = store_commit(s->st);
    if (rc != STORE_OK) {
        logmsg(LOG_ERR, "outbox %lld: cannot record the attempt: %s",
               (long long)id, store_errmsg(s->st));
        store_rollback(s->st);
        return;
    }
    logmsg(LOG_INFO, "outbox id=%lld kind=%s eid=%s status=%s %s",
           (long long)id, str_of(row, "kind"),
           str_of(row, "eid") ? str_of(row, "eid") : "-",
           a->outcome == SENT ? "sent" : a->outcome == RETRY ? "retry"
                                                            : "failed",
           a->detail);
    if (a->outcome == FAILED && s->dispatch != NULL)
        dispatch_wake(s->dispatch);
}

static void
attempt_row(struct sender *s, const struct settings *set, const kval *row)
{
    struct attempt a;
    memset(&a, 0, sizeof a);
    const char *kind = str_of(row, "kind");
    const kval *req = kval_map_get_str(row, "request");
    if (kind != NULL && strcmp(kind, "email") == 0) {
        send_email(s, set, req, &a);
    } else if (kind != NULL && strcmp(kind, "sms") == 0) {
        send_sms(s, set, req, &a);
    } else if (kind != NULL && strcmp(kind, "event") == 0) {
        send_event(s, req, str_of(row, "eid"), &a);
    } else {
        a.outcome = FAILED;
        snprintf(a.detail, sizeof a.detail, "unknown kind %s",
                 kind ? kind : "(none)");
    }
    record(s, row, &a);
}

static void *
sender_main(void *arg)
{
    struct sender *s = arg;

    while (!waker_stopping(&s->w)) {
        kval due;
        if (store_outbox_due(s->st, now_ms(), BATCH, &due) != STORE_OK) {
            logmsg(LOG_ERR, "reading the outbox: %s", store_errmsg(s->st));
            due = kval_array();
        }
        const struct settings *set = settings_acquire();
        for (size_t i = 0; i < kval_array_len(&due); i++) {
            if (waker_stopping(&s->w))
                break;
            attempt_row(s, set, kval_array_get(&due, i));
        }
        settings_put(set);
        size_t n = kval_array_len(&due);
        kval_free(due);
        if (n == BATCH)
            continue;
        /* sleep until the next row is due, a wake-up, or a while (rows
           may come from the picomail command too) */
        int64_t next = store_outbox_next_due(s->st);
        int64_t wait = IDLE_WAIT_MS;
        if (next >= 0 && next - now_ms() < wait)
            wait = next - now_ms();
        if (wait > 0 && waker_wait(&s->w, wait))
            break;
    }
    return NULL;
}

struct sender *
sender_start(pthread_mutex_t *gate, struct dispatch *dispatch, char *err,
             size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl cannot start");
        return NULL;
    }
    const struct settings *set = settings_acquire();
    struct store_options so = {5000, true, gate};
    struct store *st = store_open(set->database, &so, err, errlen);
    settings_put(set);
    if (st == NULL)
        return NULL;
    struct sender *s = xcalloc(1, sizeof *s);
    waker_init(&s->w);
    s->st = st;
    s->dispatch = dispatch;
    s->smtp = curl_easy_init();
    s->http = curl_easy_init();
    if (s->smtp == NULL || s->http == NULL ||
        pthread_create(&s->thread, NULL, sender_main, s) != 0) {
        snprintf(err, errlen, "cannot start the sender");
        curl_easy_cleanup(s->smtp);
        curl_easy_cleanup(s->http);
        store_close(st);
        waker_destroy(&s->w);
        free(s);
        return NULL;
    }
    return s;
}

void
sender_wake(struct sender *s)
{
    if (s != NULL)
        waker_wake(&s->w);
}

void
sender_stop(struct sender *s)
{
    if (s == NULL)
        return;
    waker_stop(&s->w);
    pthread_join(s->thread, NULL);
    curl_easy_cleanup(s->smtp);
    curl_easy_cleanup(s->http);
    store_close(s->st);
    waker_destroy(&s->w);
    free(s);
    curl_global_cleanup();
}
