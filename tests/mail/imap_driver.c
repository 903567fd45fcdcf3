/*
 * imap_driver.c - runs the IMAP fetcher of picomaild (src/daemon/
 * imap_fetch.c) alone, for tests/mail/imap.sh.
 *
 *   imap_driver CONF COUNT TIMEOUT_S
 *
 * Starts the fetcher with the imap_* keys of CONF on its database, and
 * runs until the inbox holds COUNT entries (exit 0), SIGTERM or SIGINT
 * (exit 0) or TIMEOUT_S seconds passed (exit 1); a bad configuration
 * exits 2.  Then it stops the fetcher and prints one JSON object:
 * {"count": N, "wakes": N, "stop_ms": N, "entries": [pending entries]}.
 * The fetcher logs to stderr, with debug lines.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/conf.h"
#include "picomail/json.h"
#include "picomail/logmsg.h"
#include "picomail/store.h"

#include "../../src/daemon/imap_fetch.h"

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
    got_signal = sig;
}

static void
count_wake(void *ctx)
{
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static long long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
entries(struct store *st)
{
    return store_inbox_count(st, "pending") + store_inbox_count(st, "done") +
           store_inbox_count(st, "failed");
}

int
main(int argc, char **argv)
{
    char err[512];

    if (argc != 4) {
        fprintf(stderr, "usage: imap_driver CONF COUNT TIMEOUT_S\n");
        return 2;
    }
    long want = atol(argv[2]);
    long long deadline = now_ms() + atol(argv[3]) * 1000LL;

    logmsg_open("imap_driver", false, true);
    struct conf *conf = conf_load(argv[1], err, sizeof err);
    if (conf == NULL) {
        fprintf(stderr, "imap_driver: %s\n", err);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    static atomic_int wakes;
    struct imap_fetch_env env = {
        .database = conf_get(conf, "database"),
        .write_gate = &gate,
        .mail_domain = conf_get(conf, "mail_domain"),
        .inbox = {.trusted_authserv = NULL, .attachment_keep = 65536},
        .wake = count_wake,
        .wake_ctx = &wakes,
    };
    struct store_options so = {.busy_timeout_ms = 5000,
                               .synchronous_full = true,
                               .write_gate = &gate};
    struct store *st = store_open(env.database, &so, err, sizeof err);
    if (st == NULL) {
        fprintf(stderr, "imap_driver: %s\n", err);
        return 2;
    }
    struct imap_fetcher *f = imap_fetch_start(conf, &env, err, sizeof err);
    if (f == NULL) {
        fprintf(stderr, "imap_driver: %s\n", err);
        store_close(st);
        conf_free(conf);
        return 2;
    }

    int status = 1;
    struct timespec tick = {0, 20 * 1000000};
    while (now_ms() < deadline) {
        if (got_signal != 0) {
            status = 0;
            break;
        }
        if (want > 0 && entries(st) >= want) {
            status = 0;
            break;
        }
        nanosleep(&tick, NULL);
    }
    long long t0 = now_ms();
    imap_fetch_stop(f);
    long long stop_ms = now_ms() - t0;

    kval list;
    if (store_inbox_pending(st, 0, 10000, &list) != STORE_OK) {
        fprintf(stderr, "imap_driver: %s\n", store_errmsg(st));
        list = kval_array();
        status = 1;
    }
    char *json = json_to_cstr(&list, JSON_DATA);
    printf("{\"count\": %lld, \"wakes\": %d, \"stop_ms\": %lld, "
           "\"entries\": %s}\n",
           (long long)entries(st), atomic_load(&wakes), stop_ms,
           json != NULL ? json : "null");
    free(json);
    kval_free(list);
    store_close(st);
    conf_free(conf);
    return status;
}
