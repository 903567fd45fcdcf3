/*
 * scheduler.c - the scheduler thread: fires scheduled events (store.h
 * schedules, written by `schedule ... at TIME` and `schedule ... repeat
 * "CRON"`); see scheduler.h.
 *
 * The thread sleeps until the earliest row is due (store_schedule_next_due,
 * one indexed row), a wake-up, or IDLE_WAIT_MS at most: rows are also
 * added by the picomail command, another process, which cannot wake it.
 * It never polls faster than that and never busy-waits.
 *
 * Firing takes the due rows, BATCH at a time, in one transaction each:
 * every row's event becomes a pending inbox entry (the dispatcher runs it
 * like any other event, on the schedule's channel), an `at` row is
 * deleted and a `repeat` row moves to its next firing after now (cron.h,
 * UTC).  So a crash either leaves the rows as they were (they fire at the
 * next start) or commits both; the inbox entry's dedupe key
 * "schedule:ID:AT_MS" keeps one firing from ever becoming two events.
 * Because a repeat moves past now, one that was missed while the daemon
 * was down fires once, not once per missed slot; an `at` in the past fires
 * once at start-up.  Nothing is read at start-up beyond the due rows and
 * the next one, so a million waiting schedules cost no start-up time.
 *
 * A row that can never run is dropped with a log line instead of firing:
 * its channel is gone (the reference's issue #450), its event lacks a
 * domain or type or is refused by the inbox, or its cron text no longer
 * parses.  Rows of a deleted
 * pico are gone already (ON DELETE CASCADE).  Each firing and each drop
 * is one log line, written after the commit.
 */
#include "scheduler.h"
#include "waker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/buf.h"
#include "picomail/cron.h"
#include "picomail/ids.h"
#include "picomail/logmsg.h"
#include "picomail/mem.h"
#include "picomail/store.h"

#define BATCH 100
#define IDLE_WAIT_MS 2000       /* look for rows other processes added */
#define MAX_BACKOFF_MS 30000    /* after store failures */

struct scheduler {
    pthread_t thread;
    struct waker w;
    struct store *st;
    struct dispatch *dispatch;  /* borrowed, or NULL */
};


static bool
stopping(struct scheduler *s)
{
    return waker_stopping(&s->w);
}

static const char *
str_of(const kval *map, const char *key)
{
    const kval *v = kval_kind(map) == KV_MAP ? kval_map_get_str(map, key)
                                             : NULL;
    return v != NULL && kval_kind(v) == KV_STRING ? kval_str_ptr(v) : NULL;
}

/* iso - MS as an ISO 8601 UTC time in BUF (for the log) */
static const char *
iso(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, len, "%lld", (long long)ms);
        return buf;
    }
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
    return buf;
}

/* drop - delete row SC that can never run, and say why in LOG */
static int
drop(struct scheduler *s, const struct store_schedule *sc, const char *why,
     struct buf *log)
{
    int rc = store_schedule_delete(s->st, sc->id);
    if (rc == STORE_NOTFOUND)
        rc = STORE_OK;
    if (rc == STORE_OK)
        buf_printf(log, "schedule id=%s pico=%s rid=%s type=%s "
                   "status=dropped: %s\n", sc->id, sc->pico_id, sc->rid,
                   sc->type, why);
    return rc;
}

/* fire - due row SC, inside the open transaction: its event as an inbox
 * entry, then the row deleted (at) or moved past NOW (repeat); *ADDED
 * counts the entries added; a store status */
static int
fire(struct scheduler *s, const struct store_schedule *sc, int64_t now,
     struct buf *log, size_t *added)
{
    const char *eci = str_of(&sc->event, "eci");
    const char *domain = str_of(&sc->event, "domain");
    const char *type = str_of(&sc->event, "name");
    bool repeat = strcmp(sc->type, "repeat") == 0;
    int64_t next = -1;
    char why[CRON_ERR_SIZE + 32];

    if (eci == NULL || *eci == '\0' || domain == NULL || *domain == '\0' ||
        type == NULL || *type == '\0')
        return drop(s, sc, "the event has no eci, domain or type", log);
    if (repeat) {
        struct cron c;
        char err[CRON_ERR_SIZE];
        if (sc->timespec == NULL ||
            cron_parse(sc->timespec, &c, err, sizeof err) != 0) {
            snprintf(why, sizeof why, "%s",
                     sc->timespec != NULL ? err : "no cron text");
            return drop(s, sc, why, log);
        }
        if ((next = cron_next(&c, now)) < 0)
            return drop(s, sc, "the cron never fires again", log);
    }
    struct store_channel ch;
    int rc = store_channel_get(s->st, eci, &ch);
    if (rc == STORE_NOTFOUND) {
        snprintf(why, sizeof why, "channel %.64s is gone", eci);
        return drop(s, sc, why, log);
    }
    if (rc != STORE_OK)
        return rc;

    const kval *attrs = kval_kind(&sc->event) == KV_MAP
                            ? kval_map_get_str(&sc->event, "attrs")
                            : NULL;
    kval empty = kval_map();
    if (attrs == NULL || kval_kind(attrs) != KV_MAP)
        attrs = &empty;
    char key[ID_BUFSIZE + 64], eid[ID_BUFSIZE];
    snprintf(key, sizeof key, "schedule:%.64s:%lld", sc->id,
             (long long)sc->at_ms);
    id_new(eid);
    /* a family channel serves one pico only: the event that made the
       schedule came from that pico, so its firing does too (the
       reference raises it on the pico with no channel check at all) */
    struct store_inbox_entry e = {.dedupe = key, .eci = eci,
                                  .domain = domain, .type = type,
                                  .attrs = attrs, .rcpt = "", .eid = eid,
                                  .from_pico = ch.family_pico_id};
    int64_t entry = 0;
    rc = store_inbox_add(s->st, &e, &entry);
    kval_free(empty);
    store_channel_release(&ch);
    if (rc == STORE_EINVAL) {
        /* refused before any write: this row can never fire, and must
           not hold up the others */
        snprintf(why, sizeof why, "%s", store_errmsg(s->st));
        return drop(s, sc, why, log);
    }
    bool duplicate = rc == STORE_DUPLICATE;
    if (rc != STORE_OK && !duplicate)
        return rc;
    if (!duplicate)
        (*added)++;
    if (repeat) {
        struct store_schedule moved = *sc;
        moved.at_ms = next;
        rc = store_schedule_put(s->st, &moved);
    } else {
        rc = store_schedule_delete(s->st, sc->id);
        if (rc == STORE_NOTFOUND)
            rc = STORE_OK;
    }
    if (rc != STORE_OK)
        return rc;
    char due_s[40], next_s[40];
    buf_printf(log, "schedule id=%s pico=%s rid=%s type=%s due=%s "
               "event=%s:%s eci=%s entry=%lld eid=%s status=%s",
               sc->id, sc->pico_id, sc->rid, sc->type,
               iso(sc->at_ms, due_s, sizeof due_s), domain, type, eci,
               (long long)entry, duplicate ? "-" : eid,
               duplicate ? "fired-before" : "fired");
    if (repeat)
        buf_printf(log, " next=%s", iso(next, next_s, sizeof next_s));
    buf_addc(log, '\n');
    return STORE_OK;
}

/* fire_batch - up to BATCH rows due at NOW in one transaction; 0, or -1
 * when the store failed (nothing happened) */
static int
fire_batch(struct scheduler *s, int64_t now)
{
    struct store *st = s->st;
    struct buf log;
    size_t added = 0;
    int rc;

    buf_init(&log);
    rc = store_begin(st);
    for (int n = 0; rc == STORE_OK && n < BATCH; n++) {
        struct store_schedule sc;
        rc = store_schedule_next_due(st, &sc);
        if (rc == STORE_NOTFOUND) {
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK)
            break;
        bool due = sc.at_ms <= now;
        if (due)
            rc = fire(s, &sc, now, &log, &added);
        store_schedule_release(&sc);
        if (!due)
            break;
    }
    if (rc == STORE_OK)
        rc = store_commit(st);
    if (rc != STORE_OK) {
        logmsg(LOG_ERR, "schedule: firing failed, will retry: %s",
               store_errmsg(st));
        store_rollback(st);
        buf_release(&log);
        return -1;
    }
    /* one line per firing, now that it happened */
    char *text = buf_take(&log, NULL);
    char *line = text;
    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl++ = '\0';
        logmsg(LOG_INFO, "%s", line);
        line = nl;
    }
    free(text);
    if (added > 0 && s->dispatch != NULL)
        dispatch_wake(s->dispatch);
    return 0;
}

/* run_due - fire everything due; *NEXT the time of the earliest row left
 * (-1: none); 0, or -1 when the store failed */
static int
run_due(struct scheduler *s, int64_t *next)
{
    *next = -1;
    while (!stopping(s)) {
        struct store_schedule sc;
        int64_t now = now_ms();
        int rc = store_schedule_next_due(s->st, &sc);
        if (rc == STORE_NOTFOUND)
            return 0;
        if (rc != STORE_OK) {
            logmsg(LOG_ERR, "schedule: reading the schedules: %s",
                   store_errmsg(s->st));
            return -1;
        }
        int64_t at = sc.at_ms;
        store_schedule_release(&sc);
        if (at > now) {
            *next = at;
            return 0;
        }
        if (fire_batch(s, now) != 0)
            return -1;
    }
    return 0;
}

static void *
scheduler_main(void *arg)
{
    struct scheduler *s = arg;
    int failures = 0;

    for (;;) {
        if (waker_stopping(&s->w))
            break;
        int64_t next, wait;
        if (run_due(s, &next) != 0) {
            failures++;
            wait = 100L << (failures < 8 ? failures : 8);
            if (wait > MAX_BACKOFF_MS)
                wait = MAX_BACKOFF_MS;
        } else {
            failures = 0;
            wait = IDLE_WAIT_MS;
            if (next >= 0 && next - now_ms() < wait)
                wait = next - now_ms();
        }
        if (wait > 0 && waker_wait(&s->w, wait))
            break;
    }
    return NULL;
}

struct scheduler *
scheduler_start(const char *database, pthread_mutex_t *gate,
                struct dispatch *dispatch, char *err, size_t errlen)
{
    struct store_options so = {5000, true, gate};
    struct store *st = store_open(database, &so, err, errlen);
    if (st == NULL)
        return NULL;
    struct scheduler *s = xcalloc(1, sizeof *s);
    waker_init(&s->w);
    s->st = st;
    s->dispatch = dispatch;
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        snprintf(err, errlen, "cannot start the scheduler thread");
        store_close(st);
        waker_destroy(&s->w);
        free(s);
        return NULL;
    }
    return s;
}

void
scheduler_wake(struct scheduler *s)
{
    if (s != NULL)
        waker_wake(&s->w);
}

void
scheduler_stop(struct scheduler *s)
{
    if (s == NULL)
        return;
    waker_stop(&s->w);
    pthread_join(s->thread, NULL);
    store_close(s->st);
    waker_destroy(&s->w);
    free(s);
}
