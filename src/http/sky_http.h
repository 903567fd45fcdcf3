/*
 * sky_http.h - the Sky Event / Sky Cloud HTTP listener (libmicrohttpd):
 * the reference engine's routes and JSON shapes (krl-language.md §9),
 * with real status codes (DESIGN.md §5).
 *
 *   /sky/event/ECI/EID/DOMAIN/TYPE          event, waiting: {eid, directives}
 *   /sky/cloud/ECI/RID/FUNCTION[.ext]       query: the value (.json, .txt,
 *                                           .html)
 *   /c/ECI/event/DOMAIN/TYPE                event, not waiting: "EID"
 *   /c/ECI/event-wait/DOMAIN/TYPE           as /sky/event (EID "none")
 *   /c/ECI/query/RID/NAME[.ext]             as /sky/cloud
 *   /c/ECI/event/DOMAIN/TYPE/query/RID/NAME event, then query with the
 *                                           same attrs as args
 *   /metrics                                backend->metrics (Prometheus)
 *
 * Any method works; OPTIONS is 200; every answer has the CORS headers.
 * Attributes are the query string (parsed as Express's "extended" qs:
 * a[b]=c nests, a[]=x makes arrays) overlaid by the body (a JSON object,
 * or a urlencoded form), plus "_headers": the request headers with
 * lower-case names.  Errors are {"error": "..."} with 400 (bad input:
 * bad JSON, bad percent-encoding, malformed path), 403 (channel policy),
 * 404 (unknown ECI, rid, function or route), 413 (body over max_body),
 * 503 (storage busy, or stopping) or 500 (anything else).
 *
 * Threads: the listener runs its own threads (libmicrohttpd's); the
 * backend's functions are called from several of them at once, each call
 * with values that belong to the calling thread.  kval reference counts
 * are not atomic, so a backend that hands ATTRS to another thread, or
 * returns values another thread still holds (an engine's caches), passes
 * them through sky_value_detach().
 *
 * With event_start and query_start, the listener's threads never wait
 * for the engine: a request waiting for its event or query holds no
 * thread, one polling thread serves every connection, and the backend
 * sees all the waiting events at once (to commit them together).  With
 * only the blocking functions, each connection has a thread of its own.
 * sky_http_stop() waits for the events and queries started: stop the
 * listener before the backend.
 */
#ifndef PICOMAIL_SKY_HTTP_H
#define PICOMAIL_SKY_HTTP_H

#include <stddef.h>

#include "picomail/buf.h"
#include "picomail/value.h"

/* sky_done_fn - hands back the result of event_start or query_start:
 * RESULT (consumed) is what event() or query() would return, and shares
 * no heap block with anything the backend keeps (sky_value_detach) */
typedef void sky_done_fn(void *arg, kval result);

/* Fill it with designated initializers: members may be added. */
struct sky_backend {
    /* raise DOMAIN:TYPE on ECI with ATTRS (a map, borrowed) and wait for
       it: {"eid", "directives": [...]} or a KV_ERROR whose message is the
       engine's */
    kval (*event)(void *ctx, const char *eci, const char *domain,
                  const char *type, const kval *attrs);
    /* the same without waiting: {"eid"} or an error */
    kval (*event_async)(void *ctx, const char *eci, const char *domain,
                        const char *type, const kval *attrs);
    /* a query: the value or a KV_ERROR */
    kval (*query)(void *ctx, const char *eci, const char *rid,
                  const char *name, const kval *args);
    /* the text of /metrics (Prometheus format), appended to OUT; NULL:
       no /metrics */
    void (*metrics)(void *ctx, struct buf *out);
    /* optional: start DOMAIN:TYPE on ECI with ATTRS (borrowed for the
       call) and return at once; call DONE(ARG, result) exactly once, from
       any thread (also from within event_start), when it has run */
    void (*event_start)(void *ctx, const char *eci, const char *domain,
                        const char *type, const kval *attrs,
                        sky_done_fn *done, void *arg);
    /* optional, with event_start: the same for a query (RESULT: the
       value or an error); without it, query() runs on a polling thread */
    void (*query_start)(void *ctx, const char *eci, const char *rid,
                        const char *name, const kval *args,
                        sky_done_fn *done, void *arg);
    void *ctx;
};

struct sky_http;

/* The THREADS of sky_http_start_threads. */
#define SKY_HTTP_AUTO 0             /* one polling thread with event_start
                                       and query_start, two with
                                       event_start only (queries block
                                       one), else a thread per
                                       connection */
#define SKY_HTTP_PER_CONNECTION (-1)

/* sky_http_start - listen on LISTEN ("host:port", "[v6addr]:port"; port 0
 * picks a free one) and serve B (copied; B->ctx must outlive the
 * listener).  Bodies over MAX_BODY bytes get 413.  NULL on failure with a
 * message in ERR. */
struct sky_http *sky_http_start(const char *listen, size_t max_body,
                                const struct sky_backend *b, char *err,
                                size_t errlen);
/* sky_http_start_threads - the same with THREADS threads polling the
 * connections (epoll), SKY_HTTP_PER_CONNECTION or SKY_HTTP_AUTO */
struct sky_http *sky_http_start_threads(const char *listen, size_t max_body,
                                        const struct sky_backend *b,
                                        int threads, char *err,
                                        size_t errlen);
/* sky_http_port - the port it listens on */
int sky_http_port(const struct sky_http *h);
/* sky_http_stop - stop accepting, let the events started finish (the
 * backend must still run them), close the connections; NULL is fine */
void sky_http_stop(struct sky_http *h);

/* sky_error_status - the HTTP status for an engine error message MSG
 * about a request on ECI (for the query part: RID; else NULL) */
int sky_error_status(const char *msg, const char *eci, const char *rid);

/* sky_value_detach - a deep copy of V that shares no heap block with it,
 * to hand to another thread (regexps and functions become their KRL
 * text, as JSON output shows them) */
kval sky_value_detach(const kval *v);

#endif
