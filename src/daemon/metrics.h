/*
 * metrics.h - picomaild's counters for /metrics (private to src/daemon/):
 * plain atomic counters bumped where things happen, rendered in the
 * Prometheus text format with a few gauges read from the store.
 */
#ifndef PICOMAIL_DAEMON_METRICS_H
#define PICOMAIL_DAEMON_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "picomail/buf.h"
#include "picomail/store.h"

enum metric {
    M_EVENTS_DONE,              /* events run, by outcome */
    M_EVENTS_FAILED,
    M_QUERIES_DONE,
    M_QUERIES_FAILED,
    M_LMTP_2XX,                 /* LMTP replies to recipients, by class */
    M_LMTP_4XX,
    M_LMTP_5XX,
    M_HTTP_REQUESTS,
    M__COUNT
};

/* metric_add - count N more of M (any thread) */
void metric_add(enum metric m, uint64_t n);
/* metrics_render - the Prometheus text, with gauges read through ST */
void metrics_render(struct store *st, struct buf *out);

#endif
