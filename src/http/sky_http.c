/*
 * sky_http.c - the Sky Event / Sky Cloud listener on libmicrohttpd; see
 * sky_http.h.
 *
 * libmicrohttpd calls on_request() several times for one request: once
 * the headers are in (we refuse a Content-Length over max_body there),
 * once per piece of body (kept up to max_body), and once at the end,
 * when the request is answered.  The raw request target (path and query
 * string, not yet unescaped by libmicrohttpd) comes from the URI log
 * callback, which also makes the per-request state: percent-decoding is
 * ours, so that an escaped '/' in a segment and a malformed escape can be
 * told apart from the path's own structure.
 *
 * Threads.  With a backend that has event_start (and query_start), one
 * thread polls every connection (epoll); a request for an event or a
 * query suspends its connection, and the backend's done callback stores
 * the result and resumes it, after which on_request is called once more
 * and answers.  So no request holds a thread while it waits, a slow
 * query holds up no other request, and the backend sees every waiting
 * event at once (to commit them together).  Without them, the backend's
 * event() and query() block the caller, and each connection gets a
 * thread, so that concurrent requests still reach the backend together.
 * bench/http.sh measured the choices on 2 cores, hello event at 64
 * connections: one polling thread with event_start about 35-45k
 * events/s (30 us of CPU an event, engine included); a thread per
 * connection about 16-18k (65 us, mostly switching threads); a pool of
 * polling threads blocking in event() 2-12k (the backend rarely sees two
 * events at once, so each commits alone).
 */
#include "sky_http.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "picomail/json.h"
#include "picomail/logmsg.h"
#include "picomail/mem.h"
#include "picomail/ops.h"
#include "sky_parse.h"

#define CONN_TIMEOUT_S 60       /* an idle connection is closed */
#define CONN_LIMIT 4096         /* connections at once */
#define CONN_LIMIT_THREADS 512  /* ... when each has a thread */
#define CONN_MEMORY (16 * 1024) /* request line + headers + read buffer;
                                   libmicrohttpd clears it per request */
#define LISTEN_BACKLOG 1024

static const char cors_methods[] = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
static const char cors_headers[] =
    "Origin, X-Requested-With, Content-Type, Accept";
static const char json_type[] = "application/json; charset=utf-8";

/* answers counted by class for /metrics */
enum { C_2XX, C_3XX, C_400, C_403, C_404, C_413, C_4XX, C_500, C_503,
       C_5XX, N_CLASSES };
static const char *const class_label[N_CLASSES] = {
    "2xx", "3xx", "400", "403", "404", "413", "4xx", "500", "503", "5xx"
};

struct sky_http {
    struct MHD_Daemon *d;
    struct sky_backend be;
    size_t max_body;
    int port;
    bool suspend;               /* events through be.event_start */
    pthread_mutex_t lock;       /* guards the three below */
    pthread_cond_t idle;        /* in_flight dropped to 0 */
    size_t in_flight;           /* requests suspended for the backend and
                                   not yet taken up again */
    bool stopping;              /* no new suspensions */
    atomic_ulong answers[N_CLASSES];
};

/* One request in progress. */
struct request {
    struct sky_http *h;
    struct MHD_Connection *conn;
    char *uri;                  /* the raw request target */
    bool started;               /* on_request saw the headers */
    bool answered;              /* on_request queued the answer */
    bool too_big;               /* the body went past max_body */
    size_t seen;                /* body bytes received, kept or not */
    struct buf body;
    /* while suspended for the backend (event_start, query_start) */
    enum { W_NONE, W_EVENT, W_QUERY } wait;
    struct sky_path path;
    kval attrs;
    kval result;                /* set by on_done */
};

/* What we answer. */
struct reply {
    int status;
    const char *ctype;          /* static */
    struct buf body;
    char *location;             /* a redirect, or NULL */
    kval cookies;               /* Set-Cookie values (array), or null */
};

/* ---- the status of an engine error ---- */

/* has_prefix - whether S starts with P; *REST gets what follows */
static bool
has_prefix(const char *s, const char *p, const char **rest)
{
    size_t n = strlen(p);
    if (strncmp(s, p, n) != 0)
        return false;
    if (rest != NULL)
        *rest = s + n;
    return true;
}

/*
 * sky_error_status - the engine's messages (src/engine/, src/krl/eval.c)
 * that are not a 500:
 *   404 "Error: ECI not found ECI" (the request's own ECI; a rule that
 *         fails to reach another ECI is a runtime error, 500)
 *   404 "Error: Pico doesn't have RID installed." (the queried RID)
 *   404 "Error: Ruleset RID does not have query function \"NAME\""
 *         (the function is not shared, or not there)
 *   403 "Error: Not allowed by channel policy",
 *       "Error: Denied by channel policy",
 *       "Error: This is a family channel and only the owner can use it."
 *   400 "Error: missing event.eci|domain|name", "Error: missing
 *       query.eci|rid|name" (a blank segment such as %20),
 *       "Error: event.attrs must be a map", "Error: query.args must be a
 *       map"
 *   503 "Error: the database is busy; try again", and the backends'
 *       "Error: the engine is busy or stopping, try again" (picomaild's
 *       dispatcher, src/daemon/dispatch.c) and "Error: the server is
 *       stopping" (tests/http/driver.c)
 * Anything else (KRL runtime errors, storage errors) is 500.
 */
int
sky_error_status(const char *msg, const char *eci, const char *rid)
{
    const char *rest;
    if (msg == NULL)
        return 500;
    if (has_prefix(msg, "Error: ECI not found ", &rest))
        return eci != NULL && strcmp(rest, eci) == 0 ? 404 : 500;
    if (rid != NULL && has_prefix(msg, "Error: Pico doesn't have ", &rest)) {
        size_t n = strlen(rid);
        return strncmp(rest, rid, n) == 0 &&
                       strcmp(rest + n, " installed.") == 0
                   ? 404
                   : 500;
    }
    if (rid != NULL && has_prefix(msg, "Error: Ruleset ", &rest)) {
        size_t n = strlen(rid);
        return strncmp(rest, rid, n) == 0 &&
                       has_prefix(rest + n, " does not have query function ",
                                  NULL)
                   ? 404
                   : 500;
    }
    if (strcmp(msg, "Error: Not allowed by channel policy") == 0 ||
        strcmp(msg, "Error: Denied by channel policy") == 0 ||
        strcmp(msg, "Error: This is a family channel and only the owner "
                    "can use it.") == 0)
        return 403;
    if (has_prefix(msg, "Error: missing event.", NULL) ||
        has_prefix(msg, "Error: missing query.", NULL) ||
        strcmp(msg, "Error: event.attrs must be a map") == 0 ||
        strcmp(msg, "Error: query.args must be a map") == 0)
        return 400;
    if (strcmp(msg, "Error: the database is busy; try again") == 0 ||
        strcmp(msg, "Error: the engine is busy or stopping, try again") ==
            0 ||
        strcmp(msg, "Error: the server is stopping") == 0)
        return 503;
    return 500;
}

/* ---- values between threads ---- */

kval
sky_value_detach(const kval *v)
{
    switch (kval_kind(v)) {
    case KV_NULL:
        return kval_null_is_json(v) ? kval_null_json() : kval_null();
    case KV_BOOL:
    case KV_NUMBER:
        return kval_copy(v);    /* held in the handle */
    case KV_STRING:
        return kval_str(kval_str_ptr(v), kval_str_bytes(v));
    case KV_ERROR:
        return kval_error("%s", kval_error_msg(v));
    case KV_REGEXP:
    case KV_FUNCTION: {
        kval s = op_to_string(v);
        kval r = kval_str(kval_str_ptr(&s), kval_str_bytes(&s));
        kval_free(s);
        return r;
    }
    case KV_ARRAY: {
        size_t n = kval_array_len(v);
        kval a = kval_array_sized(n);
        for (size_t i = 0; i < n; i++)
            a = kval_array_append(a, sky_value_detach(kval_array_get(v, i)));
        return a;
    }
    case KV_MAP:
        break;
    }
    kval m = kval_map();
    struct kval_map_iter it;
    const kval *key, *val;
    kval_map_iter_init(&it, v);
    while (kval_map_iter_next(&it, &key, &val))
        m = kval_map_put(m, sky_value_detach(key), sky_value_detach(val));
    kval_map_iter_done(&it);
    return m;
}

/* ---- replies ---- */

static void
reply_init(struct reply *r)
{
    r->status = 200;
    r->ctype = json_type;
    buf_init(&r->body);
    r->location = NULL;
    r->cookies = kval_null();
}

static void
reply_release(struct reply *r)
{
    buf_release(&r->body);
    free(r->location);
    kval_free(r->cookies);
}

/* reply_error - STATUS with {"error": MSG} */
static void
reply_error(struct reply *r, int status, const char *msg)
{
    kval m = kval_map_put_str(kval_map(), "error", kval_cstr(msg));
    r->status = status;
    r->ctype = json_type;
    buf_reset(&r->body);
    json_encode(&m, JSON_KRL, 0, &r->body);
    kval_free(m);
}

/* reply_failed - the error value E (borrowed) of a request on ECI/RID */
static void
reply_failed(struct reply *r, const kval *e, const char *eci,
             const char *rid)
{
    const char *msg = kval_error_msg(e);
    reply_error(r, sky_error_status(msg, eci, rid), msg);
}

/* reply_json - V as JSON; null is an empty body */
static void
reply_json(struct reply *r, const kval *v)
{
    if (!kval_is_null(v))
        json_encode(v, JSON_KRL, 0, &r->body);
}

/* reply_value - a query's value V in FORMAT: .txt and .html send a
 * string as it is (other values as JSON) */
static void
reply_value(struct reply *r, const kval *v, enum sky_format format)
{
    if (format == SKY_F_JSON) {
        reply_json(r, v);
        return;
    }
    r->ctype = format == SKY_F_TXT ? "text/plain; charset=utf-8"
                                   : "text/html; charset=utf-8";
    if (kval_kind(v) == KV_STRING)
        buf_add(&r->body, kval_str_ptr(v), kval_str_bytes(v));
    else
        reply_json(r, v);
}

/* reply_event - {eid, directives}; with SPECIAL, the _cookie and
 * _redirect directives act on the answer as in the reference */
static void
reply_event(struct reply *r, const kval *res, bool special)
{
    const kval *ds = kval_map_get_str(res, "directives");
    size_t n = special && ds != NULL && kval_kind(ds) == KV_ARRAY
                   ? kval_array_len(ds)
                   : 0;
    for (size_t i = 0; i < n; i++) {
        const kval *d = kval_array_get(ds, i);
        const kval *name = kval_map_get_str(d, "name");
        const kval *opt = kval_map_get_str(d, "options");
        if (name == NULL || kval_kind(name) != KV_STRING || opt == NULL ||
            kval_kind(opt) != KV_MAP)
            continue;
        const kval *cookie = kval_map_get_str(opt, "cookie");
        const kval *url = kval_map_get_str(opt, "url");
        if (strcmp(kval_str_ptr(name), "_cookie") == 0 && cookie != NULL &&
            kval_kind(cookie) == KV_STRING) {
            if (kval_is_null(&r->cookies))
                r->cookies = kval_array();
            r->cookies = kval_array_append(r->cookies, kval_copy(cookie));
        } else if (strcmp(kval_str_ptr(name), "_redirect") == 0 &&
                   url != NULL && kval_kind(url) == KV_STRING &&
                   r->location == NULL) {
            r->location = xstrdup(kval_str_ptr(url));
            r->status = 302;
        }
    }
    reply_json(r, res);
}

/* ---- requests ---- */

struct header_ctx {
    kval headers;
};

static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key,
           const char *value)
{
    struct header_ctx *hc = cls;
    (void)kind;
    hc->headers = sky_headers_put(hc->headers, key, value ? value : "");
    return MHD_YES;
}

/* request_attrs - the attrs of request R: query string, body, headers */
static kval
request_attrs(struct MHD_Connection *c, struct request *r)
{
    const char *q = strchr(r->uri, '?');
    kval query = q != NULL ? sky_parse_qs(q + 1, strlen(q + 1)) : kval_map();
    if (kval_is_error(&query))
        return query;
    kval body = sky_body_attrs(
        MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_CONTENT_TYPE),
        r->body.data, r->body.len);
    if (kval_is_error(&body)) {
        kval_free(query);
        return body;
    }
    struct header_ctx hc = {kval_map()};
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, &hc);
    return sky_merge_attrs(query, body, hc.headers);
}

/* on_done - the backend has the result of a suspended request */
static void
on_done(void *arg, kval result)
{
    struct request *r = arg;
    r->result = result;
    /* from here on R belongs to libmicrohttpd's thread again */
    MHD_resume_connection(r->conn);
}

/* back - a request suspended for the backend is back in libmicrohttpd's
 * hands (resumed and answered, or closed): no longer in flight.  Not
 * in on_done: a connection resumed but not yet taken up again by its
 * polling thread still counts as suspended for MHD_stop_daemon, and once
 * that runs, answers are dropped. */
static void
back(struct sky_http *h)
{
    pthread_mutex_lock(&h->lock);
    if (--h->in_flight == 0)
        pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->lock);
}

/* suspend - suspend R's connection to wait for the backend (WAIT);
 * false when the listener is stopping */
static bool
suspend(struct sky_http *h, struct request *r, int wait)
{
    pthread_mutex_lock(&h->lock);
    bool ok = !h->stopping;
    if (ok)
        h->in_flight++;
    pthread_mutex_unlock(&h->lock);
    if (!ok)
        return false;
    kval_free(r->result);
    r->result = kval_null();
    r->wait = wait;
    MHD_suspend_connection(r->conn);
    return true;
}

/* query_now - the query of route P with ARGS; false when it was started
 * (query_start) and R waits for it */
static bool
query_now(struct sky_http *h, struct request *r, const struct sky_path *p,
          const kval *args, struct reply *out)
{
    if (h->suspend && h->be.query_start != NULL) {
        if (!suspend(h, r, W_QUERY)) {
            reply_error(out, 503, "Error: the server is stopping");
            return true;
        }
        h->be.query_start(h->be.ctx, p->eci, p->rid, p->name, args, on_done,
                          r);
        return false;
    }
    kval v = h->be.query(h->be.ctx, p->eci, p->rid, p->name, args);
    if (kval_is_error(&v))
        reply_failed(out, &v, p->eci, p->rid);
    else
        reply_value(out, &v, p->format);
    kval_free(v);
    return true;
}

/* event_answer - OUT for the event of R's route with result RES
 * (borrowed): the event routes answer it, /c/.../query/... runs its query
 * now; false when R waits for that query */
static bool
event_answer(struct sky_http *h, struct request *r, const kval *res,
             struct reply *out)
{
    if (kval_is_error(res)) {
        reply_failed(out, res, r->path.eci, NULL);
        return true;
    }
    if (r->path.route != SKY_R_EVENT_QUERY) {
        reply_event(out, res, true);
        return true;
    }
    return query_now(h, r, &r->path, &r->attrs, out);
}

/* resumed - answer R, resumed with the backend's result; false when it
 * waits again (the query of /c/.../query/...) */
static bool
resumed(struct sky_http *h, struct request *r, struct reply *out)
{
    int wait = r->wait;
    r->wait = W_NONE;
    if (wait == W_QUERY) {
        if (kval_is_error(&r->result))
            reply_failed(out, &r->result, r->path.eci, r->path.rid);
        else
            reply_value(out, &r->result, r->path.format);
        return true;
    }
    kval res = r->result;
    r->result = kval_null();
    bool done = event_answer(h, r, &res, out);
    kval_free(res);
    return done;
}

/* route - answer request R (complete) into OUT; false when it waits for
 * the backend instead (suspended) */
static bool
route(struct sky_http *h, struct MHD_Connection *c, const char *method,
      struct request *r, struct reply *out)
{
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) {
        out->ctype = "text/plain; charset=utf-8";
        buf_adds(&out->body, "OK");
        return true;
    }
    const char *q = strchr(r->uri, '?');
    size_t plen = q != NULL ? (size_t)(q - r->uri) : strlen(r->uri);
    struct sky_path p;
    char err[256];
    int status = sky_path_parse(r->uri, plen, &p, err, sizeof err);
    if (status == 0 && p.route == SKY_R_METRICS && h->be.metrics == NULL)
        status = 404;
    if (status == 404) {
        /* Express's words for an unknown route */
        snprintf(err, sizeof err, "Error: Cannot %.20s %.*s", method,
                 (int)(plen < 200 ? plen : 200), r->uri);
    }
    if (status != 0) {
        reply_error(out, status, err);
        sky_path_release(&p);
        return true;
    }
    if (p.route == SKY_R_METRICS) {
        out->ctype = "text/plain; version=0.0.4; charset=utf-8";
        h->be.metrics(h->be.ctx, &out->body);
        buf_printf(&out->body,
                   "# HELP picomail_http_responses_total answers of the Sky "
                   "API listener by status\n"
                   "# TYPE picomail_http_responses_total counter\n");
        for (int i = 0; i < N_CLASSES; i++)
            buf_printf(&out->body,
                       "picomail_http_responses_total{code=\"%s\"} %lu\n",
                       class_label[i], atomic_load(&h->answers[i]));
        sky_path_release(&p);
        return true;
    }
    r->path = p;
    r->attrs = request_attrs(c, r);
    if (kval_is_error(&r->attrs)) {
        reply_error(out, 400, kval_error_msg(&r->attrs));
        return true;
    }
    const struct sky_path *rp = &r->path;
    kval res = kval_null();
    bool replied = true;
    switch (rp->route) {
    case SKY_R_SKY_EVENT:
    case SKY_R_EVENT_WAIT:
    case SKY_R_EVENT_QUERY:
        if (rp->eid != NULL && strcmp(rp->eid, "none") != 0 &&
            kval_map_get_str(&r->attrs, "__eid") == NULL)
            r->attrs = kval_map_put_str(r->attrs, "__eid",
                                        kval_cstr(rp->eid));
        if (h->suspend) {
            if (!suspend(h, r, W_EVENT)) {
                reply_error(out, 503, "Error: the server is stopping");
                break;
            }
            h->be.event_start(h->be.ctx, rp->eci, rp->domain, rp->type,
                              &r->attrs, on_done, r);
            replied = false;
            break;
        }
        res = h->be.event(h->be.ctx, rp->eci, rp->domain, rp->type,
                          &r->attrs);
        replied = event_answer(h, r, &res, out);
        break;
    case SKY_R_EVENT:
        res = h->be.event_async(h->be.ctx, rp->eci, rp->domain, rp->type,
                                &r->attrs);
        if (kval_is_error(&res)) {
            reply_failed(out, &res, rp->eci, NULL);
        } else {
            const kval *eid = kval_map_get_str(&res, "eid");
            if (eid != NULL)
                reply_json(out, eid);
        }
        break;
    case SKY_R_SKY_CLOUD:
    case SKY_R_QUERY:
        replied = query_now(h, r, rp, &r->attrs, out);
        break;
    case SKY_R_NONE:
    case SKY_R_METRICS:
        break;
    }
    kval_free(res);
    return replied;
}

static int
status_class(int status)
{
    switch (status) {
    case 400: return C_400;
    case 403: return C_403;
    case 404: return C_404;
    case 413: return C_413;
    case 500: return C_500;
    case 503: return C_503;
    default: break;
    }
    if (status < 300)
        return C_2XX;
    if (status < 400)
        return C_3XX;
    return status < 500 ? C_4XX : C_5XX;
}

/* queue - send OUT on C (OUT's body passes to libmicrohttpd) */
static enum MHD_Result
queue(struct sky_http *h, struct MHD_Connection *c, const char *method,
      const char *uri, struct reply *out)
{
    size_t len = out->body.len;
    char *data = buf_take(&out->body, NULL);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (resp == NULL) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, out->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN,
                            "*");
    MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                            cors_methods);
    const char *asked = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    /* a preflight gets the headers it asks for (libmicrohttpd refuses
       values with CR or LF) */
    if (asked == NULL ||
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                asked) != MHD_YES)
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                cors_headers);
    if (out->location != NULL &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
                                out->location) != MHD_YES)
        out->status = 200;      /* a URL no header can carry */
    for (size_t i = 0; !kval_is_null(&out->cookies) &&
                       i < kval_array_len(&out->cookies);
         i++)
        MHD_add_response_header(
            resp, MHD_HTTP_HEADER_SET_COOKIE,
            kval_str_ptr(kval_array_get(&out->cookies, i)));
    atomic_fetch_add(&h->answers[status_class(out->status)], 1);
    if (out->status >= 500) {
        char shown[128];
        size_t n = 0;
        for (const char *p = uri; *p != '\0' && n + 1 < sizeof shown; p++)
            shown[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
        shown[n] = '\0';
        logmsg(LOG_WARNING, "http: %.20s %s: %d", method, shown, out->status);
    }
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)out->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static struct request *
request_new(struct sky_http *h, struct MHD_Connection *c, const char *uri)
{
    struct request *r = xcalloc(1, sizeof *r);
    r->h = h;
    r->conn = c;
    r->uri = xstrdup(uri);
    buf_init(&r->body);
    r->attrs = kval_null();
    r->result = kval_null();
    return r;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
           const char *method, const char *version, const char *upload,
           size_t *upload_size, void **req_cls)
{
    struct sky_http *h = cls;
    struct request *r = *req_cls;
    (void)version;
    if (r == NULL)              /* the URI log callback always makes it */
        *req_cls = r = request_new(h, c, url);
    if (!r->started) {
        r->started = true;
        r->conn = c;
        const char *cl = MHD_lookup_connection_value(
            c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno != 0 || *end != '\0' || n > h->max_body)
                r->too_big = true;
        }
        if (!r->too_big)
            return MHD_YES;     /* the body, if any, comes next */
    } else if (*upload_size > 0) {
        r->seen += *upload_size;
        if (r->body.len + *upload_size > h->max_body)
            r->too_big = true;
        else if (!r->too_big)
            buf_add(&r->body, upload, *upload_size);
        *upload_size = 0;
        /* a chunked body that goes on far past the limit: stop reading
           (no answer can be queued in the middle of a body) */
        return r->seen > 2 * h->max_body + 65536 ? MHD_NO : MHD_YES;
    }
    if (r->answered)
        return MHD_NO;          /* called again: the daemon is stopping and
                                   dropped the answer; close */
    struct reply out;
    reply_init(&out);
    bool was_waiting = r->wait != W_NONE;
    enum MHD_Result rc = MHD_YES;
    if (was_waiting) {
        if (!resumed(h, r, &out))
            goto out;           /* suspended again, for the query */
    } else if (r->too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "Error: the body is larger than %zu bytes",
                 h->max_body);
        reply_error(&out, 413, msg);
    } else if (!route(h, c, method, r, &out)) {
        goto out;               /* suspended until on_done */
    }
    rc = queue(h, c, method, r->uri, &out);
    r->answered = true;
out:
    reply_release(&out);
    /* only now, with the answer queued (or the request suspended again),
       may sky_http_stop go on to stop libmicrohttpd */
    if (was_waiting)
        back(h);
    return rc;
}

/* on_uri - the raw request target; makes the request's state */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    return request_new(cls, c, uri);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct request *r = *req_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (r == NULL)
        return;
    if (r->wait != W_NONE)
        back(r->h);             /* resumed, then closed before an answer */
    free(r->uri);
    buf_release(&r->body);
    sky_path_release(&r->path);
    kval_free(r->attrs);
    kval_free(r->result);
    free(r);
    *req_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void
on_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    logmsg(LOG_WARNING, "http: %s", line);
}

/* ---- starting and stopping ---- */

/* open_listener - a listening TCP socket for SPEC; -1 with ERR */
static int
open_listener(const char *spec, int *family, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon[1] == '\0') {
        snprintf(err, errlen, "http_listen %s: expected host:port", spec);
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || errno != 0 || port > 65535 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        snprintf(err, errlen, "http_listen %s: bad port", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    const char *hp = spec;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        hp++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        snprintf(err, errlen, "http_listen %s: host name too long", spec);
        return -1;
    }
    memcpy(host, hp, hl);
    host[hl] = '\0';
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(hl == 0 || strcmp(host, "*") == 0 ? NULL : host,
                          colon + 1, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "http_listen %s: %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        char why[128] = "";
        strerror_r(errno, why, sizeof why);
        snprintf(err, errlen, "http_listen %s: %s", spec, why);
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    *family = ai->ai_family;
    freeaddrinfo(ai);
    return fd;
}

static int
bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

struct sky_http *
sky_http_start_threads(const char *listen_spec, size_t max_body,
                       const struct sky_backend *b, int threads, char *err,
                       size_t errlen)
{
    int family = AF_INET;
    int fd = open_listener(listen_spec, &family, err, errlen);
    if (fd < 0)
        return NULL;
    struct sky_http *h = xcalloc(1, sizeof *h);
    h->be = *b;
    h->max_body = max_body;
    h->port = bound_port(fd);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->idle, NULL);
    for (int i = 0; i < N_CLASSES; i++)
        atomic_init(&h->answers[i], 0);
    if (threads == SKY_HTTP_AUTO)
        threads = b->event_start == NULL   ? SKY_HTTP_PER_CONNECTION
                  : b->query_start != NULL ? 1
                                           : 2;  /* a slow query holds up
                                                    half, not all */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    unsigned limit = CONN_LIMIT;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (threads < 1) {
        /* suspending a connection needs libmicrohttpd's polling */
        flags |= MHD_USE_THREAD_PER_CONNECTION;
        limit = CONN_LIMIT_THREADS;
    } else {
        h->suspend = b->event_start != NULL;
        flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                     ? MHD_USE_EPOLL | MHD_USE_TURBO
                     : MHD_USE_POLL;
        if (h->suspend)
            flags |= MHD_ALLOW_SUSPEND_RESUME;
    }
    /* a pool only past one thread (libmicrohttpd warns of size 0 or 1) */
    struct MHD_OptionItem pool[] = {
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         threads > 1 ? threads : 0, NULL},
        {MHD_OPTION_END, 0, NULL}
    };
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, on_log, (void *)h,  /* first, to log
                                                           the others */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)h,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, errlen, "http_listen %s: libmicrohttpd did not start",
                 listen_spec);
        close(fd);
        pthread_cond_destroy(&h->idle);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
    }
    return h;
}

struct sky_http *
sky_http_start(const char *listen_spec, size_t max_body,
               const struct sky_backend *b, char *err, size_t errlen)
{
    return sky_http_start_threads(listen_spec, max_body, b, SKY_HTTP_AUTO,
                                  err, errlen);
}

int
sky_http_port(const struct sky_http *h)
{
    return h->port;
}

void
sky_http_stop(struct sky_http *h)
{
    if (h == NULL)
        return;
    /* libmicrohttpd must not be stopped with connections suspended: let
       what the backend has started finish (its done callbacks resume the
       connections) and the polling threads take them up again; start no
       more */
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    while (h->in_flight > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        if (pthread_cond_timedwait(&h->idle, &h->lock, &until) == ETIMEDOUT)
            logmsg(LOG_WARNING, "http: stopping: still waiting for %zu "
                   "events", h->in_flight);
    }
    pthread_mutex_unlock(&h->lock);
    MHD_stop_daemon(h->d);
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
