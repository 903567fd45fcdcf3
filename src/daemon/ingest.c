/*
 * ingest.c - the ingest thread: complete LMTP messages in, inbox entries
 * stored with group commit, per-recipient replies out; see daemon.h.
 *
 * Everything queued while the previous transaction was committing goes
 * into the next one, so under load one fsync covers many messages and
 * with a single sender the latency is one commit.  Each message has its
 * own savepoint: one that cannot be stored (say, attributes the store
 * refuses) is refused alone, while a store that is busy or failing
 * refuses the whole batch with 451, which Postfix retries.
 */
#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/logmsg.h"
#include "picomail/mail_accept.h"
#include "picomail/mem.h"
#include "metrics.h"

#define BATCH_MAX 256           /* messages in one transaction */

struct ingest {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct delivery *queue, **queue_tail;
    struct delivery *done, **done_tail;
    bool stop;
    pthread_mutex_t *gate;
    struct dispatch *dispatch;
    void (*notify)(void *ctx);
    void *notify_ctx;
    struct store *st;
};

/* One message being stored: the delivery and its inbox form. */
struct work {
    struct delivery *d;
    struct mail_channel *chans;     /* per recipient */
    bool *looked_up;                /* chans[i] needs releasing */
    struct inbox_target *targets;   /* the accepted recipients */
    size_t *target_of;              /* recipient i -> target, or SIZE_MAX */
    struct inbox_message msg;
    bool parsed;
};

struct delivery *
delivery_free(struct delivery *d)
{
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < d->n_rcpts; i++) {
        free(d->rcpts[i]);
        if (d->replies != NULL)
            free(d->replies[i]);
        if (d->eids != NULL)
            free(d->eids[i]);
        if (d->ecis != NULL)
            free(d->ecis[i]);
    }
    free(d->rcpts);
    free(d->replies);
    free(d->eids);
    free(d->ecis);
    free(d->mail_from);
    free(d->data);
    free(d->client_addr);
    free(d->queue_id);
    free(d);
    return NULL;
}

/* prepare - look up each recipient's channel again (it may have changed
 * since RCPT) and parse the message */
static void
prepare(struct ingest *in, const struct settings *set, struct work *w)
{
    struct delivery *d = w->d;
    size_t n = d->n_rcpts;

    d->replies = xcalloc(n, sizeof *d->replies);
    d->eids = xcalloc(n, sizeof *d->eids);
    d->ecis = xcalloc(n, sizeof *d->ecis);
    w->chans = xcalloc(n, sizeof *w->chans);
    w->looked_up = xcalloc(n, sizeof *w->looked_up);
    w->targets = xcalloc(n, sizeof *w->targets);
    w->target_of = xcalloc(n, sizeof *w->target_of);
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        char reply[MAIL_REPLY_MAX];
        w->target_of[i] = SIZE_MAX;
        if (mail_accept_rcpt(in->st, set->mail_domain, d->rcpts[i],
                             d->mail_from, &w->chans[i], reply) !=
            MAIL_ACCEPT) {
            d->replies[i] = xstrdup(reply);
            continue;
        }
        w->looked_up[i] = true;
        w->targets[nt].rcpt = d->rcpts[i];
        w->targets[nt].ch = &w->chans[i];
        w->target_of[i] = nt++;
    }
    w->msg = (struct inbox_message){
        .data = d->data, .len = d->len, .mail_from = d->mail_from,
        .client_addr = d->client_addr, .queue_id = d->queue_id,
        .targets = w->targets, .n_targets = nt};
    if (nt > 0) {
        struct inbox_options opt = {set->trusted_authserv,
                                    set->attachment_keep};
        inbox_prepare(&w->msg, &opt);
        w->parsed = true;
    }
}

/* finish - the replies, event ids and log lines of a stored message */
static void
finish(struct work *w)
{
    struct delivery *d = w->d;

    for (size_t i = 0; i < d->n_rcpts; i++) {
        size_t t = w->target_of[i];
        if (t != SIZE_MAX) {
            struct inbox_target *tg = &w->targets[t];
            d->replies[i] = xstrdup(tg->reply);
            if (tg->entry_id > 0)
                d->eids[i] = xstrdup(tg->eid);
            d->ecis[i] = xstrdup(w->chans[i].eci);
        }
        metric_add(d->replies[i][0] == '2'   ? M_LMTP_2XX
                   : d->replies[i][0] == '4' ? M_LMTP_4XX
                                             : M_LMTP_5XX,
                   1);
        logmsg(LOG_INFO, "delivery queue_id=%s from=<%s> rcpt=<%s> eci=%s "
               "event=%s status=%s",
               d->queue_id != NULL ? d->queue_id : "-", d->mail_from,
               d->rcpts[i], d->ecis[i] != NULL ? d->ecis[i] : "-",
               d->eids[i] != NULL ? d->eids[i] : "-", d->replies[i]);
    }
    if (w->parsed)
        inbox_message_release(&w->msg);
    for (size_t i = 0; i < d->n_rcpts; i++)
        if (w->looked_up[i])
            mail_channel_release(&w->chans[i]);
    free(w->chans);
    free(w->looked_up);
    free(w->targets);
    free(w->target_of);
}

/* store_batch - one transaction for the N messages of W; true when some
 * inbox entry was added */
static bool
store_batch(struct ingest *in, struct work *w, size_t n)
{
    bool added = false;
    int rc = store_begin(in->st);
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        if (w[i].msg.n_targets == 0 || w[i].msg.parsed == NULL)
            continue;
        if ((rc = store_savepoint(in->st)) != STORE_OK)
            break;
        rc = inbox_store(in->st, &w[i].msg);
        if (rc == STORE_EINVAL) {
            /* this message alone cannot be stored: refuse it for good */
            logmsg(LOG_WARNING, "queue_id=%s: cannot store: %s",
                   w[i].d->queue_id ? w[i].d->queue_id : "-",
                   store_errmsg(in->st));
            store_savepoint_rollback(in->st);
            for (size_t t = 0; t < w[i].msg.n_targets; t++)
                snprintf(w[i].targets[t].reply, sizeof w[i].targets[t].reply,
                         "554 5.6.0 <%s> message cannot be stored",
                         w[i].targets[t].rcpt);
            for (size_t t = 0; t < w[i].msg.n_targets; t++)
                w[i].targets[t].entry_id = 0;
            rc = STORE_OK;
            continue;
        }
        if (rc == STORE_OK)
            rc = store_savepoint_release(in->st);
    }
    if (rc == STORE_OK)
        rc = store_commit(in->st);
    if (rc != STORE_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", store_errmsg(in->st));
        logmsg(LOG_ERR, "inbox transaction of %zu messages failed: %s", n,
               why);
        store_rollback(in->st);
        for (size_t i = 0; i < n; i++)
            if (w[i].msg.parsed != NULL)
                inbox_tempfail(&w[i].msg, "storage unavailable");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < w[i].msg.n_targets; t++)
            added |= w[i].targets[t].entry_id > 0;
    return added;
}

static void *
ingest_main(void *arg)
{
    struct ingest *in = arg;
    struct work *w = xcalloc(BATCH_MAX, sizeof *w);

    for (;;) {
        pthread_mutex_lock(&in->lock);
        while (in->queue == NULL && !in->stop)
            pthread_cond_wait(&in->cond, &in->lock);
        if (in->queue == NULL && in->stop) {
            pthread_mutex_unlock(&in->lock);
            break;
        }
        size_t n = 0;
        while (in->queue != NULL && n < BATCH_MAX) {
            struct delivery *d = in->queue;
            in->queue = d->next;
            d->next = NULL;
            memset(&w[n], 0, sizeof w[n]);
            w[n++].d = d;
        }
        if (in->queue == NULL)
            in->queue_tail = &in->queue;
        pthread_mutex_unlock(&in->lock);

        const struct settings *set = settings_acquire();
        for (size_t i = 0; i < n; i++)
            prepare(in, set, &w[i]);
        bool added = store_batch(in, w, n);
        for (size_t i = 0; i < n; i++)
            finish(&w[i]);
        settings_put(set);
        if (added && in->dispatch != NULL)
            dispatch_wake(in->dispatch);

        pthread_mutex_lock(&in->lock);
        for (size_t i = 0; i < n; i++) {
            *in->done_tail = w[i].d;
            in->done_tail = &w[i].d->next;
        }
        pthread_mutex_unlock(&in->lock);
        in->notify(in->notify_ctx);
    }
    free(w);
    return NULL;
}

struct ingest *
ingest_start(pthread_mutex_t *gate, struct dispatch *dispatch,
             void (*done)(void *ctx), void *ctx, char *err, size_t errlen)
{
    const struct settings *set = settings_acquire();
    struct store_options so = {5000, true, gate};
    struct store *st = store_open(set->database, &so, err, errlen);
    settings_put(set);
    if (st == NULL)
        return NULL;
    struct ingest *in = xcalloc(1, sizeof *in);
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->cond, NULL);
    in->queue_tail = &in->queue;
    in->done_tail = &in->done;
    in->gate = gate;
    in->dispatch = dispatch;
    in->notify = done;
    in->notify_ctx = ctx;
    in->st = st;
    if (pthread_create(&in->thread, NULL, ingest_main, in) != 0) {
        snprintf(err, errlen, "cannot start the ingest thread");
        store_close(st);
        free(in);
        return NULL;
    }
    return in;
}

void
ingest_submit(struct ingest *in, struct delivery *d)
{
    d->next = NULL;
    pthread_mutex_lock(&in->lock);
    *in->queue_tail = d;
    in->queue_tail = &d->next;
    pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

struct delivery *
ingest_take_done(struct ingest *in)
{
    pthread_mutex_lock(&in->lock);
    struct delivery *d = in->done;
    in->done = NULL;
    in->done_tail = &in->done;
    pthread_mutex_unlock(&in->lock);
    return d;
}

void
ingest_stop(struct ingest *in)
{
    if (in == NULL)
        return;
    pthread_mutex_lock(&in->lock);
    in->stop = true;
    pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->lock);
    pthread_join(in->thread, NULL);
}

void
ingest_free(struct ingest *in)
{
    if (in == NULL)
        return;
    struct delivery *d = ingest_take_done(in);
    while (d != NULL) {
        struct delivery *next = d->next;
        delivery_free(d);
        d = next;
    }
    store_close(in->st);
    pthread_mutex_destroy(&in->lock);
    pthread_cond_destroy(&in->cond);
    free(in);
}
