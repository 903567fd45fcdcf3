/*
 * web.c - picomaild's backend for the Sky Event / Sky Cloud listener
 * (src/http/sky_http.h): events go to the dispatcher, which runs them in
 * its batches (so they share commits with mail) and hands the result
 * back; queries run on the calling HTTP thread with an engine of that
 * thread's own, in a read transaction, so they never wait for events.
 */
#include "web.h"

#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"
#include "picomail/engine.h"
#include "picomail/logmsg.h"
#include "picomail/mem.h"

struct web {
    struct dispatch *dispatch;
    struct sky_http *http;
    pthread_key_t engine_key;   /* each HTTP thread's query engine */
};

static void
close_engine(void *e)
{
    engine_close(e);
}

/* thread_engine - this thread's engine for queries, opened on first use */
static struct engine *
thread_engine(struct web *w, char *err, size_t errlen)
{
    struct engine *e = pthread_getspecific(w->engine_key);
    if (e != NULL)
        return e;
    const struct settings *set = settings_acquire();
    struct engine_options opt;
    engine_options_default(&opt);
    opt.database = set->database;
    opt.mail_domain = set->mail_domain;
    e = engine_open(&opt, err, errlen);
    settings_put(set);
    if (e != NULL)
        pthread_setspecific(w->engine_key, e);
    return e;
}

static kval
web_event(void *ctx, const char *eci, const char *domain, const char *type,
          const kval *attrs)
{
    struct web *w = ctx;
    metric_add(M_HTTP_REQUESTS, 1);
    return dispatch_event_wait(w->dispatch, eci, domain, type, attrs);
}

static void
web_event_start(void *ctx, const char *eci, const char *domain,
                const char *type, const kval *attrs, sky_done_fn *done,
                void *arg)
{
    struct web *w = ctx;
    metric_add(M_HTTP_REQUESTS, 1);
    dispatch_event_start(w->dispatch, eci, domain, type, attrs, done, arg);
}

static kval
web_event_async(void *ctx, const char *eci, const char *domain,
                const char *type, const kval *attrs)
{
    struct web *w = ctx;
    metric_add(M_HTTP_REQUESTS, 1);
    return dispatch_event_async(w->dispatch, eci, domain, type, attrs);
}

static kval
web_query(void *ctx, const char *eci, const char *rid, const char *name,
          const kval *args)
{
    struct web *w = ctx;
    char err[512];
    metric_add(M_HTTP_REQUESTS, 1);
    struct engine *e = thread_engine(w, err, sizeof err);
    if (e == NULL) {
        metric_add(M_QUERIES_FAILED, 1);
        return kval_error("Error: %s", err);
    }
    kval r = engine_query(e, eci, rid, name, args);
    metric_add(kval_is_error(&r) ? M_QUERIES_FAILED : M_QUERIES_DONE, 1);
    return r;
}

static void
web_metrics(void *ctx, struct buf *out)
{
    struct web *w = ctx;
    char err[512];
    metric_add(M_HTTP_REQUESTS, 1);
    struct engine *e = thread_engine(w, err, sizeof err);
    if (e != NULL)
        metrics_render(engine_store(e), out);
}

struct web *
web_start(const char *listen, size_t max_body, struct dispatch *dispatch,
          char *err, size_t errlen)
{
    struct web *w = xcalloc(1, sizeof *w);
    w->dispatch = dispatch;
    if (pthread_key_create(&w->engine_key, close_engine) != 0) {
        snprintf(err, errlen, "pthread_key_create failed");
        free(w);
        return NULL;
    }
    struct sky_backend b = {.event = web_event,
                            .event_start = web_event_start,
                            .event_async = web_event_async,
                            .query = web_query,
                            .metrics = web_metrics,
                            .ctx = w};
    w->http = sky_http_start(listen, max_body, &b, err, errlen);
    if (w->http == NULL) {
        pthread_key_delete(w->engine_key);
        free(w);
        return NULL;
    }
    return w;
}

void
web_stop(struct web *w)
{
    if (w == NULL)
        return;
    sky_http_stop(w->http);
    /* the HTTP threads are gone; their engines went with them through the
       key's destructor */
    pthread_key_delete(w->engine_key);
    free(w);
}
