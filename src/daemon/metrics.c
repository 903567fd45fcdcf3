/*
 * metrics.c - picomaild's counters and their Prometheus text; see
 * metrics.h.
 */
#include "metrics.h"

static _Atomic uint64_t counters[M__COUNT];

void
metric_add(enum metric m, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[m], n, memory_order_relaxed);
}

static uint64_t
get(enum metric m)
{
    return atomic_load_explicit(&counters[m], memory_order_relaxed);
}

static void
gauge(struct buf *out, const char *name, const char *help, int64_t v)
{
    if (v < 0)
        return;         /* the store could not say: leave it out */
    buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help,
               name, name, (long long)v);
}

void
metrics_render(struct store *st, struct buf *out)
{
    buf_printf(out,
               "# HELP picomail_events_total Events run by the engine.\n"
               "# TYPE picomail_events_total counter\n"
               "picomail_events_total{status=\"done\"} %llu\n"
               "picomail_events_total{status=\"failed\"} %llu\n",
               (unsigned long long)get(M_EVENTS_DONE),
               (unsigned long long)get(M_EVENTS_FAILED));
    buf_printf(out,
               "# HELP picomail_queries_total Queries answered.\n"
               "# TYPE picomail_queries_total counter\n"
               "picomail_queries_total{status=\"done\"} %llu\n"
               "picomail_queries_total{status=\"failed\"} %llu\n",
               (unsigned long long)get(M_QUERIES_DONE),
               (unsigned long long)get(M_QUERIES_FAILED));
    buf_printf(out,
               "# HELP picomail_lmtp_deliveries_total LMTP replies to "
               "recipients after DATA, by class.\n"
               "# TYPE picomail_lmtp_deliveries_total counter\n"
               "picomail_lmtp_deliveries_total{status=\"2xx\"} %llu\n"
               "picomail_lmtp_deliveries_total{status=\"4xx\"} %llu\n"
               "picomail_lmtp_deliveries_total{status=\"5xx\"} %llu\n",
               (unsigned long long)get(M_LMTP_2XX),
               (unsigned long long)get(M_LMTP_4XX),
               (unsigned long long)get(M_LMTP_5XX));
    buf_printf(out,
               "# HELP picomail_http_requests_total HTTP requests served.\n"
               "# TYPE picomail_http_requests_total counter\n"
               "picomail_http_requests_total %llu\n",
               (unsigned long long)get(M_HTTP_REQUESTS));
    gauge(out, "picomail_inbox_pending", "Inbox entries waiting for the "
          "engine.", store_inbox_count(st, "pending"));
    gauge(out, "picomail_outbox_pending", "Outbox entries waiting to be "
          "sent.", store_outbox_count(st, "pending"));
    gauge(out, "picomail_outbox_failed", "Outbox entries that failed for "
          "good (kept for inbox_retention_days).",
          store_outbox_count(st, "failed"));
}
