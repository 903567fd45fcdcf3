/*
 * driver.c - serves the Sky API (src/http/sky_http.c) from an engine on a
 * database, for tests/http/sky.py and bench/http.sh (the listener
 * without the rest of picomaild).
 *
 *   driver --db FILE [--listen HOST:PORT] [--max-body N] [--threads N]
 *          [--sync | --done-now] [--done-inline] [--no-query-start]
 *
 * Prints "port N" once it listens; stops on SIGTERM or SIGINT.  For tests
 * and measuring: --sync leaves out the backend's event_start (so the
 * listener's threads wait in event()); --done-now makes event_start call
 * its done callback before it returns; --done-inline calls the callbacks
 * on the engine thread instead of a completion thread; --no-query-start
 * leaves out query_start (queries block a polling thread); --threads N
 * sets the listener's threads (sky_http.h: -1 one per connection, 0
 * automatic, N a pool).
 *
 * The backend is what a daemon would do, small: events go to one engine
 * thread, which takes every event waiting (up to BATCH) and runs them as
 * one engine_event_batch (group commit: concurrent clients share a
 * transaction), then wakes each one's waiting caller (event) or hands
 * it to a completion thread that calls its done callback (event_start),
 * so that the engine thread goes on with the next batch at once.  Queries
 * run on QUERY_THREADS threads with an engine each (query_start), or on
 * the caller's thread with an engine from a pool (query); SQLite readers
 * run in parallel under WAL.  Values cross threads only as detached
 * copies (sky_value_detach), since kval reference counts are not atomic.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/engine.h"
#include "picomail/ids.h"
#include "picomail/logmsg.h"
#include "picomail/mem.h"
#include "../../src/http/sky_http.h"

#define BATCH 256
#define QUERY_THREADS 2         /* for query_start, each with an engine */

/* One event waiting for the engine thread. */
struct job {
    char *eci, *domain, *type;
    kval attrs;                 /* detached: the engine thread frees it */
    char eid[ID_BUFSIZE];
    bool wait;                  /* a caller waits (else: free when run) */
    sky_done_fn *done_fn;       /* or this gets the result */
    void *done_arg;
    bool done;
    kval result;                /* detached */
    pthread_cond_t cond;        /* done */
    struct job *next;
};

/* One query waiting for a query thread. */
struct qjob {
    char *eci, *rid, *name;
    kval args;                  /* detached */
    sky_done_fn *done;
    void *arg;
    struct qjob *next;
};

struct backend {
    const char *db;
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct job *head, **tail;
    bool stop;
    pthread_t thread;
    struct engine *events;      /* the engine thread's */
    /* the completion thread calls the done callbacks, so that the engine
       thread goes on to the next batch at once */
    pthread_t done_thread;
    pthread_cond_t done_work;
    struct job *done_head, **done_tail;
    bool done_stop;
    bool done_inline;           /* --done-inline: no completion thread */
    /* query_start: QUERY_THREADS threads take queries from a queue */
    pthread_t qthreads[QUERY_THREADS];
    pthread_cond_t qwork;
    struct qjob *qhead, **qtail;
    bool qstop;
    pthread_mutex_t pool_lock;
    struct engine **idle;       /* query engines not in use */
    size_t n_idle, cap_idle;
    atomic_ulong n_events, n_events_failed, n_queries, n_queries_failed,
        n_batches;
};

static struct engine *
open_engine(const char *db, char *err, size_t errlen)
{
    struct engine_options opt;
    engine_options_default(&opt);
    opt.database = db;
    return engine_open(&opt, err, errlen);
}

static void
job_free(struct job *j)
{
    free(j->eci);
    free(j->domain);
    free(j->type);
    kval_free(j->attrs);
    kval_free(j->result);
    if (j->wait)
        pthread_cond_destroy(&j->cond);
    free(j);
}

/* run_batch - the events of LIST (N of them) in one transaction */
static void
run_batch(struct backend *b, struct job *list, size_t n)
{
    struct engine_event_req *reqs = xcalloc(n, sizeof *reqs);
    size_t i = 0;
    for (struct job *j = list; j != NULL; j = j->next, i++)
        reqs[i] = (struct engine_event_req){.eci = j->eci,
                                            .domain = j->domain,
                                            .type = j->type,
                                            .attrs = &j->attrs,
                                            .eid = j->eid};
    kval rs = engine_event_batch(b->events, reqs, n);
    free(reqs);
    atomic_fetch_add(&b->n_batches, 1);
    i = 0;
    for (struct job *j = list; j != NULL; j = j->next, i++) {
        j->result = sky_value_detach(kval_is_error(&rs)
                                         ? &rs
                                         : kval_array_get(&rs, i));
        atomic_fetch_add(kval_is_error(&j->result) ? &b->n_events_failed
                                                   : &b->n_events,
                         1);
        kval_free(j->attrs);
        j->attrs = kval_null();
    }
    kval_free(rs);
    pthread_mutex_lock(&b->lock);
    bool any_done = false;
    while (list != NULL) {
        struct job *next = list->next;
        if (list->done_fn != NULL && b->done_inline) {
            pthread_mutex_unlock(&b->lock);
            list->done_fn(list->done_arg, list->result);
            list->result = kval_null();
            job_free(list);
            pthread_mutex_lock(&b->lock);
        } else if (list->done_fn != NULL) {
            list->next = NULL;
            *b->done_tail = list;
            b->done_tail = &list->next;
            any_done = true;
        } else if (list->wait) {
            list->done = true;
            pthread_cond_signal(&list->cond);
        } else {
            job_free(list);
        }
        list = next;
    }
    if (any_done)
        pthread_cond_signal(&b->done_work);
    pthread_mutex_unlock(&b->lock);
}

static void *
done_main(void *arg)
{
    struct backend *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (b->done_head == NULL && !b->done_stop)
            pthread_cond_wait(&b->done_work, &b->lock);
        struct job *list = b->done_head;
        if (list == NULL)
            break;
        b->done_head = NULL;
        b->done_tail = &b->done_head;
        pthread_mutex_unlock(&b->lock);
        while (list != NULL) {
            struct job *next = list->next;
            list->done_fn(list->done_arg, list->result);
            list->result = kval_null();
            job_free(list);
            list = next;
        }
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

static void *
engine_main(void *arg)
{
    struct backend *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        while (b->head == NULL && !b->stop)
            pthread_cond_wait(&b->work, &b->lock);
        if (b->head == NULL) {
            pthread_mutex_unlock(&b->lock);
            break;
        }
        struct job *list = b->head, **cut = &b->head;
        size_t n = 0;
        while (*cut != NULL && n < BATCH) {
            cut = &(*cut)->next;
            n++;
        }
        b->head = *cut;
        *cut = NULL;
        if (b->head == NULL)
            b->tail = &b->head;
        pthread_mutex_unlock(&b->lock);
        run_batch(b, list, n);
    }
    return NULL;
}

/* submit - queue an event; with WAIT, its result; with DONE, it gets
 * the result */
static kval
submit(struct backend *b, const char *eci, const char *domain,
       const char *type, const kval *attrs, bool wait, sky_done_fn *done,
       void *done_arg)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->eci = xstrdup(eci);
    j->domain = xstrdup(domain);
    j->type = xstrdup(type);
    j->attrs = sky_value_detach(attrs);
    j->result = kval_null();
    j->wait = wait;
    j->done_fn = done;
    j->done_arg = done_arg;
    id_new(j->eid);
    kval r = wait ? kval_null()
                  : kval_map_put_str(kval_map(), "eid", kval_cstr(j->eid));
    if (wait)
        pthread_cond_init(&j->cond, NULL);
    pthread_mutex_lock(&b->lock);
    if (b->stop) {
        pthread_mutex_unlock(&b->lock);
        job_free(j);
        kval_free(r);
        r = kval_error("Error: the server is stopping");
        if (done != NULL) {
            done(done_arg, r);
            r = kval_null();
        }
        return r;
    }
    *b->tail = j;
    b->tail = &j->next;
    pthread_cond_signal(&b->work);
    if (wait) {
        while (!j->done)
            pthread_cond_wait(&j->cond, &b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    if (wait) {
        r = j->result;
        j->result = kval_null();
        job_free(j);
    }
    return r;
}

static kval
be_event(void *ctx, const char *eci, const char *domain, const char *type,
         const kval *attrs)
{
    return submit(ctx, eci, domain, type, attrs, true, NULL, NULL);
}

static kval
be_event_async(void *ctx, const char *eci, const char *domain,
               const char *type, const kval *attrs)
{
    return submit(ctx, eci, domain, type, attrs, false, NULL, NULL);
}

static void
be_event_start(void *ctx, const char *eci, const char *domain,
               const char *type, const kval *attrs, sky_done_fn *done,
               void *arg)
{
    kval r = submit(ctx, eci, domain, type, attrs, false, done, arg);
    kval_free(r);
}

/* be_event_start_now - event_start that calls DONE before it returns
 * (--done-now: the listener must cope with that too) */
static void
be_event_start_now(void *ctx, const char *eci, const char *domain,
                   const char *type, const kval *attrs, sky_done_fn *done,
                   void *arg)
{
    done(arg, submit(ctx, eci, domain, type, attrs, true, NULL, NULL));
}

static kval
be_query(void *ctx, const char *eci, const char *rid, const char *name,
         const kval *args)
{
    struct backend *b = ctx;
    struct engine *e = NULL;
    pthread_mutex_lock(&b->pool_lock);
    if (b->n_idle > 0)
        e = b->idle[--b->n_idle];
    pthread_mutex_unlock(&b->pool_lock);
    if (e == NULL) {
        char err[256];
        e = open_engine(b->db, err, sizeof err);
        if (e == NULL)
            return kval_error("Error: %s", err);
    }
    kval r = engine_query(e, eci, rid, name, args);
    /* the result may share blocks with the engine's caches, and the
       engine goes to another thread next */
    kval d = sky_value_detach(&r);
    kval_free(r);
    atomic_fetch_add(kval_is_error(&d) ? &b->n_queries_failed
                                       : &b->n_queries,
                     1);
    pthread_mutex_lock(&b->pool_lock);
    if (b->n_idle == b->cap_idle) {
        b->cap_idle = b->cap_idle ? b->cap_idle * 2 : 8;
        b->idle = xreallocarray(b->idle, b->cap_idle, sizeof *b->idle);
    }
    b->idle[b->n_idle++] = e;
    pthread_mutex_unlock(&b->pool_lock);
    return d;
}

/* query_main - a query thread: its own engine, queries one at a time */
static void *
query_main(void *arg)
{
    struct backend *b = arg;
    char err[256];
    struct engine *e = open_engine(b->db, err, sizeof err);
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (b->qhead == NULL && !b->qstop)
            pthread_cond_wait(&b->qwork, &b->lock);
        struct qjob *j = b->qhead;
        if (j == NULL)
            break;
        b->qhead = j->next;
        if (b->qhead == NULL)
            b->qtail = &b->qhead;
        pthread_mutex_unlock(&b->lock);
        kval d;
        if (e == NULL) {
            d = kval_error("Error: %s", err);
        } else {
            kval r = engine_query(e, j->eci, j->rid, j->name, &j->args);
            d = sky_value_detach(&r);
            kval_free(r);
        }
        atomic_fetch_add(kval_is_error(&d) ? &b->n_queries_failed
                                           : &b->n_queries,
                         1);
        j->done(j->arg, d);
        free(j->eci);
        free(j->rid);
        free(j->name);
        kval_free(j->args);
        free(j);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    engine_close(e);
    return NULL;
}

static void
be_query_start(void *ctx, const char *eci, const char *rid,
               const char *name, const kval *args, sky_done_fn *done,
               void *arg)
{
    struct backend *b = ctx;
    struct qjob *j = xcalloc(1, sizeof *j);
    j->eci = xstrdup(eci);
    j->rid = xstrdup(rid);
    j->name = xstrdup(name);
    j->args = sky_value_detach(args);
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&b->lock);
    *b->qtail = j;
    b->qtail = &j->next;
    pthread_cond_signal(&b->qwork);
    pthread_mutex_unlock(&b->lock);
}

static void
be_metrics(void *ctx, struct buf *out)
{
    struct backend *b = ctx;
    buf_printf(out,
               "# TYPE picomail_events_total counter\n"
               "picomail_events_total{status=\"done\"} %lu\n"
               "picomail_events_total{status=\"failed\"} %lu\n"
               "# TYPE picomail_queries_total counter\n"
               "picomail_queries_total{status=\"done\"} %lu\n"
               "picomail_queries_total{status=\"failed\"} %lu\n"
               "# TYPE picomail_event_batches_total counter\n"
               "picomail_event_batches_total %lu\n",
               atomic_load(&b->n_events), atomic_load(&b->n_events_failed),
               atomic_load(&b->n_queries), atomic_load(&b->n_queries_failed),
               atomic_load(&b->n_batches));
}

static int
usage(void)
{
    fprintf(stderr, "usage: driver --db FILE [--listen HOST:PORT] "
                    "[--max-body N] [--threads N] [--sync | --done-now] "
                    "[--done-inline] [--no-query-start]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *db = NULL, *listen_spec = "127.0.0.1:0";
    size_t max_body = 1024 * 1024;
    long threads = SKY_HTTP_AUTO;
    bool sync = false, done_inline = false, done_now = false;
    bool no_query_start = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sync") == 0) {
            sync = true;
            continue;
        }
        if (strcmp(argv[i], "--done-inline") == 0) {
            done_inline = true;
            continue;
        }
        if (strcmp(argv[i], "--done-now") == 0) {
            done_now = true;
            continue;
        }
        if (strcmp(argv[i], "--no-query-start") == 0) {
            no_query_start = true;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--db") == 0)
            db = argv[++i];
        else if (strcmp(argv[i], "--listen") == 0)
            listen_spec = argv[++i];
        else if (strcmp(argv[i], "--max-body") == 0)
            max_body = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = strtol(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (db == NULL)
        return usage();
    logmsg_open("http-driver", false, false);
    /* signals are taken by sigwait below, in no other thread */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct backend b;
    memset(&b, 0, sizeof b);
    b.db = db;
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.work, NULL);
    pthread_mutex_init(&b.pool_lock, NULL);
    pthread_cond_init(&b.done_work, NULL);
    pthread_cond_init(&b.qwork, NULL);
    b.qtail = &b.qhead;
    b.tail = &b.head;
    b.done_tail = &b.done_head;
    b.done_inline = done_inline;
    char err[512];
    b.events = open_engine(db, err, sizeof err);
    if (b.events == NULL) {
        fprintf(stderr, "driver: %s: %s\n", db, err);
        return 1;
    }
    bool started = pthread_create(&b.thread, NULL, engine_main, &b) == 0 &&
                   pthread_create(&b.done_thread, NULL, done_main, &b) == 0;
    for (int i = 0; started && i < QUERY_THREADS; i++)
        started = pthread_create(&b.qthreads[i], NULL, query_main, &b) == 0;
    if (!started) {
        fprintf(stderr, "driver: cannot start the engine thread\n");
        return 1;
    }
    struct sky_backend sb = {.event = be_event,
                             .event_async = be_event_async,
                             .query = be_query,
                             .metrics = be_metrics,
                             .event_start = sync       ? NULL
                                            : done_now ? be_event_start_now
                                                       : be_event_start,
                             .query_start = sync || no_query_start
                                                ? NULL
                                                : be_query_start,
                             .ctx = &b};
    struct sky_http *h = sky_http_start_threads(listen_spec, max_body, &sb,
                                                (int)threads, err,
                                                sizeof err);
    int status = 0;
    if (h == NULL) {
        fprintf(stderr, "driver: %s\n", err);
        status = 1;
    } else {
        printf("port %d\n", sky_http_port(h));
        fflush(stdout);
        int sig;
        sigwait(&set, &sig);
        sky_http_stop(h);
    }
    pthread_mutex_lock(&b.lock);
    b.stop = true;
    pthread_cond_signal(&b.work);
    pthread_mutex_unlock(&b.lock);
    pthread_join(b.thread, NULL);
    pthread_mutex_lock(&b.lock);
    b.done_stop = true;
    pthread_cond_signal(&b.done_work);
    pthread_mutex_unlock(&b.lock);
    pthread_join(b.done_thread, NULL);
    pthread_mutex_lock(&b.lock);
    b.qstop = true;
    pthread_cond_broadcast(&b.qwork);
    pthread_mutex_unlock(&b.lock);
    for (int i = 0; i < QUERY_THREADS; i++)
        pthread_join(b.qthreads[i], NULL);
    engine_close(b.events);
    for (size_t i = 0; i < b.n_idle; i++)
        engine_close(b.idle[i]);
    free(b.idle);
    return status;
}
