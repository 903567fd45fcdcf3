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
#include "picomail/logmsg.h"
#include "picomail/mem.h"

#define BATCH 100
#define PRUNE_EVERY_S 3600

struct dispatch {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool woken;
    bool stop;
    struct engine *engine;
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
log_result(const kval *entry, const kval *result)
{
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
        pthread_mutex_lock(&d->lock);
        bool stop = d->stop;
        pthread_mutex_unlock(&d->lock);
        if (stop)
            return 0;
        kval pending;
        int rc = store_inbox_pending(st, 0, BATCH, &pending);
        if (rc != STORE_OK) {
            logmsg(LOG_ERR, "reading the inbox: %s", store_errmsg(st));
            return -1;
        }
        size_t n = kval_array_len(&pending);
        if (n == 0) {
            kval_free(pending);
            return 0;
        }
        struct engine_event_req *reqs = xcalloc(n, sizeof *reqs);
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
        }
        kval results = engine_event_batch(d->engine, reqs, n);
        free(reqs);
        if (kval_is_error(&results)) {
            logmsg(LOG_ERR, "event transaction of %zu entries failed: %s",
                   n, kval_error_msg(&results));
            kval_free(results);
            kval_free(pending);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            log_result(kval_array_get(&pending, i),
                       kval_array_get(&results, i));
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
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long wait_ms = failures > 0 ? 100L << (failures < 5 ? failures : 5)
                                    : 5000;
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&d->lock);
        while (!d->woken && !d->stop &&
               pthread_cond_timedwait(&d->cond, &d->lock, &until) !=
                   ETIMEDOUT)
            ;
        bool stop = d->stop;
        d->woken = false;
        pthread_mutex_unlock(&d->lock);
        if (stop)
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
    struct engine *e = engine_open(&opt, err, errlen);
    settings_put(set);
    if (e == NULL)
        return NULL;
    struct dispatch *d = xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
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
    pthread_mutex_lock(&d->lock);
    d->woken = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
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
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    engine_close(d->engine);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    free(d);
}
