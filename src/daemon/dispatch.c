/*
 * dispatch.c - the dispatcher thread: runs the rule engine on pending
 * inbox entries; see daemon.h.
 *
 * Entries are taken oldest first, up to BATCH at a time, and processed
 * with engine_event_batch(): their events and the marking of the entries
 * as done commit together, so a crash at any point leaves each entry
 * either pending (processed again after the restart, from scratch) or
 * done with all its effects.  Entries left pending by a previous run are
 * picked up at start-up.  Old processed entries are pruned now and then.
 *
 * One engine on one thread: events run one at a time in arrival order,
 * which is also per-pico order.  Running the events of different picos in
 * parallel is not built yet (issue 3).
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/engine.h"
#include "picomail/ids.h"
#include "picomail/logmsg.h"
#include "picomail/mem.h"
#include "metrics.h"
#include "scheduler.h"
#include "sender.h"
#include "waker.h"
#include "../http/sky_http.h"

#define BATCH 100
#define PRUNE_EVERY_S 3600

/* An event raised directly, and its result once run. */
struct direct {
    char *eci, *domain, *type;
    kval attrs;
    char eid[ID_BUFSIZE];
    bool waiting;               /* a caller waits (else: free when run) */
    dispatch_done_fn *done_fn;  /* or a callback takes the result */
    void *done_arg;
    bool done;
    kval result;
    struct direct *next;
};

struct dispatch {
    pthread_t thread;
    struct waker w;             /* its lock also guards the fields below */
    struct engine *engine;
    struct sender *sender;      /* woken after each batch, or NULL */
    struct scheduler *scheduler;    /* the same */
    pthread_cond_t done_cond;   /* a direct event finished */
    struct direct *direct, **direct_tail;
    size_t n_direct;
};

static void
direct_free(struct direct *r)
{
    free(r->eci);
    free(r->domain);
    free(r->type);
    kval_free(r->attrs);
    kval_free(r->result);
    free(r);
}

/* take_direct - up to MAX queued direct events */
static struct direct *
take_direct(struct dispatch *d, size_t max, size_t *n)
{
    pthread_mutex_lock(&d->w.lock);
    struct direct *head = d->direct, **tail = &d->direct;
    *n = 0;
    while (*tail != NULL && *n < max) {
        tail = &(*tail)->next;
        (*n)++;
    }
    d->direct = *tail;
    *tail = NULL;
    if (d->direct == NULL)
        d->direct_tail = &d->direct;
    d->n_direct -= *n;
    pthread_mutex_unlock(&d->w.lock);
    return head;
}

/* finish_direct - hand results to their callers (or drop them) */
static void
finish_direct(struct dispatch *d, struct direct *list, const kval *results,
              size_t offset)
{
    size_t i = offset;
    pthread_mutex_lock(&d->w.lock);
    while (list != NULL) {
        struct direct *next = list->next;
        /* the caller's thread gets a copy sharing nothing with ours:
           reference counts are not atomic */
        list->result = results != NULL && !kval_is_error(results)
                           ? sky_value_detach(kval_array_get(results, i))
                       : results != NULL ? sky_value_detach(results)
                                         : kval_error("Error: stopped");
        i++;
        metric_add(kval_is_error(&list->result) ? M_EVENTS_FAILED
                                                : M_EVENTS_DONE,
                   1);
        if (list->waiting) {
            list->done = true;
        } else if (list->done_fn != NULL) {
            kval r = list->result;
            list->result = kval_null();
            list->done_fn(list->done_arg, r);
            direct_free(list);
        } else {
            if (kval_is_error(&list->result))
                logmsg(LOG_INFO, "event eid=%s eci=%s status=failed: %s",
                       list->eid, list->eci, kval_error_msg(&list->result));
            direct_free(list);
        }
        list = next;
    }
    pthread_cond_broadcast(&d->done_cond);
    pthread_mutex_unlock(&d->w.lock);
}


static void
log_result(const kval *entry, const kval *result)
{
    metric_add(kval_is_error(result) ? M_EVENTS_FAILED : M_EVENTS_DONE, 1);
    const kval *id = kval_map_get_str(entry, "id");
    const char *eid = kval_str_ptr(kval_map_get_str(entry, "eid"));
    const char *eci = kval_str_ptr(kval_map_get_str(entry, "eci"));
    if (kval_is_error(result)) {
        logmsg(LOG_INFO, "event entry=%.0f eid=%s eci=%s status=failed: %s",
               kval_get_number(id), eid, eci, kval_error_msg(result));
        return;
    }
    const kval *dirs = kval_map_get_str(result, "directives");
    logmsg(LOG_INFO, "event entry=%.0f eid=%s eci=%s status=done "
           "directives=%zu", kval_get_number(id), eid, eci,
           dirs != NULL ? kval_array_len(dirs) : 0);
}

/* run_pending - process pending entries until none is left (or a stop);
 * -1 when the store failed */
static int
run_pending(struct dispatch *d)
{
    struct store *st = engine_store(d->engine);

    for (;;) {
        if (waker_stopping(&d->w))
            return 0;
        kval pending;
        int rc = store_inbox_pending(st, 0, BATCH, &pending);
        if (rc != STORE_OK) {
            logmsg(LOG_ERR, "reading the inbox: %s", store_errmsg(st));
            return -1;
        }
        size_t n = kval_array_len(&pending), n_direct = 0;
        struct direct *direct = take_direct(d, BATCH, &n_direct);
        if (n == 0 && n_direct == 0) {
            kval_free(pending);
            return 0;
        }
        struct engine_event_req *reqs =
            xcalloc(n + n_direct, sizeof *reqs);
        size_t k = n;
        for (struct direct *r = direct; r != NULL; r = r->next, k++)
            reqs[k] = (struct engine_event_req){
                .eci = r->eci, .domain = r->domain, .type = r->type,
                .attrs = &r->attrs, .eid = r->eid};
        for (size_t i = 0; i < n; i++) {
            const kval *e = kval_array_get(&pending, i);
            reqs[i].eci = kval_str_ptr(kval_map_get_str(e, "eci"));
            reqs[i].domain = kval_str_ptr(kval_map_get_str(e, "domain"));
            reqs[i].type = kval_str_ptr(kval_map_get_str(e, "type"));
            reqs[i].attrs = kval_map_get_str(e, "attrs");
            reqs[i].time_ms =
                (int64_t)kval_get_number(kval_map_get_str(e, "received"));
            reqs[i].inbox_id = (int64_t)kval_get_number(kval_map_get_str(e, "id"));
            reqs[i].eid = kval_str_ptr(kval_map_get_str(e, "eid"));
            const kval *from = kval_map_get_str(e, "from_pico");
            reqs[i].from_pico = from != NULL && kval_kind(from) == KV_STRING
                                    ? kval_str_ptr(from)
                                    : NULL;
        }
        kval results = engine_event_batch(d->engine, reqs, n + n_direct);
        free(reqs);
        finish_direct(d, direct, &results, n);
        if (kval_is_error(&results)) {
            logmsg(LOG_ERR, "event transaction of %zu entries failed: %s",
                   n + n_direct, kval_error_msg(&results));
            kval_free(results);
            kval_free(pending);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            log_result(kval_array_get(&pending, i),
                       kval_array_get(&results, i));
        sender_wake(d->sender);
        scheduler_wake(d->scheduler);
        kval_free(results);
        kval_free(pending);
    }
}

static void
prune(struct dispatch *d)
{
    const struct settings *set = settings_acquire();
    int64_t before = now_ms() - (int64_t)set->inbox_retention_days * 86400000;
    settings_put(set);
    struct store *st = engine_store(d->engine);
    if (store_inbox_prune(st, before) != STORE_OK)
        logmsg(LOG_WARNING, "pruning the inbox: %s", store_errmsg(st));
    if (store_outbox_prune(st, before) != STORE_OK)
        logmsg(LOG_WARNING, "pruning the outbox: %s", store_errmsg(st));
}

static void *
dispatch_main(void *arg)
{
    struct dispatch *d = arg;
    time_t last_prune = 0;
    int failures = 0;

    for (;;) {
        if (run_pending(d) < 0)
            failures++;
        else
            failures = 0;
        time_t now = time(NULL);
        if (now - last_prune >= PRUNE_EVERY_S) {
            prune(d);
            last_prune = now;
        }
        /* wait for new entries; after a failure retry within a second or
           so (backing off), and look anyway now and then in case an
           entry was added by another process */
        if (waker_wait(&d->w, failures > 0
                                  ? 100L << (failures < 5 ? failures : 5)
                                  : 5000))
            break;
    }
    return NULL;
}

struct dispatch *
dispatch_start(pthread_mutex_t *gate, char *err, size_t errlen)
{
    const struct settings *set = settings_acquire();
    struct engine_options opt;
    engine_options_default(&opt);
    opt.database = set->database;
    opt.write_gate = gate;
    opt.mail_domain = set->mail_domain;
    opt.mail_sender = set->mail_sender;
    struct engine *e = engine_open(&opt, err, errlen);
    settings_put(set);
    if (e == NULL)
        return NULL;
    struct dispatch *d = xcalloc(1, sizeof *d);
    waker_init(&d->w);
    pthread_cond_init(&d->done_cond, NULL);
    d->direct_tail = &d->direct;
    d->engine = e;
    if (pthread_create(&d->thread, NULL, dispatch_main, d) != 0) {
        snprintf(err, errlen, "cannot start the dispatcher thread");
        engine_close(e);
        free(d);
        return NULL;
    }
    return d;
}

void
dispatch_wake(struct dispatch *d)
{
    waker_wake(&d->w);
}

void
dispatch_set_scheduler(struct dispatch *d, struct scheduler *s)
{
    pthread_mutex_lock(&d->w.lock);
    d->scheduler = s;
    pthread_mutex_unlock(&d->w.lock);
}

void
dispatch_set_sender(struct dispatch *d, struct sender *s)
{
    pthread_mutex_lock(&d->w.lock);
    d->sender = s;
    pthread_mutex_unlock(&d->w.lock);
}

void
dispatch_wake_cb(void *d)
{
    dispatch_wake(d);
}

void
dispatch_stop(struct dispatch *d)
{
    if (d == NULL)
        return;
    waker_stop(&d->w);
    pthread_join(d->thread, NULL);
    /* direct events never run: their callers get an error */
    size_t n;
    finish_direct(d, take_direct(d, SIZE_MAX, &n), NULL, 0);
    engine_close(d->engine);
    waker_destroy(&d->w);
    pthread_cond_destroy(&d->done_cond);
    free(d);
}

#define DIRECT_MAX 10000        /* queued direct events before refusing */

static struct direct *
direct_new(const char *eci, const char *domain, const char *type,
           const kval *attrs)
{
    struct direct *r = xcalloc(1, sizeof *r);
    r->eci = xstrdup(eci);
    r->domain = xstrdup(domain);
    r->type = xstrdup(type);
    /* a copy of the caller's attributes that shares nothing with them */
    r->attrs = attrs != NULL && kval_kind(attrs) == KV_MAP
                   ? sky_value_detach(attrs)
                   : kval_map();
    r->result = kval_null();
    id_new(r->eid);
    return r;
}

/* queue_direct - false when the dispatcher is stopping or too far behind */
static bool
queue_direct(struct dispatch *d, struct direct *r)
{
    pthread_mutex_lock(&d->w.lock);
    bool ok = !d->w.stop && d->n_direct < DIRECT_MAX;
    if (ok) {
        *d->direct_tail = r;
        d->direct_tail = &r->next;
        d->n_direct++;
        d->w.woken = true;
        pthread_cond_signal(&d->w.cond);
    }
    pthread_mutex_unlock(&d->w.lock);
    return ok;
}

kval
dispatch_event_wait(struct dispatch *d, const char *eci, const char *domain,
                    const char *type, const kval *attrs)
{
    struct direct *r = direct_new(eci, domain, type, attrs);
    r->waiting = true;
    if (!queue_direct(d, r)) {
        direct_free(r);
        return kval_error("Error: the engine is busy or stopping, try again");
    }
    pthread_mutex_lock(&d->w.lock);
    while (!r->done)
        pthread_cond_wait(&d->done_cond, &d->w.lock);
    pthread_mutex_unlock(&d->w.lock);
    kval result = r->result;
    r->result = kval_null();
    direct_free(r);
    return result;
}

void
dispatch_event_start(struct dispatch *d, const char *eci, const char *domain,
                     const char *type, const kval *attrs,
                     dispatch_done_fn *done, void *arg)
{
    struct direct *r = direct_new(eci, domain, type, attrs);
    r->done_fn = done;
    r->done_arg = arg;
    if (!queue_direct(d, r)) {
        direct_free(r);
        done(arg, kval_error("Error: the engine is busy or stopping, try "
                             "again"));
    }
}

kval
dispatch_event_async(struct dispatch *d, const char *eci, const char *domain,
                     const char *type, const kval *attrs)
{
    struct direct *r = direct_new(eci, domain, type, attrs);
    kval eid = kval_cstr(r->eid);
    if (!queue_direct(d, r)) {
        direct_free(r);
        kval_free(eid);
        return kval_error("Error: the engine is busy or stopping, try again");
    }
    return kval_map_put_str(kval_map(), "eid", eid);
}
