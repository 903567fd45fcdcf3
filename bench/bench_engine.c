/*
 * bench_engine.c - events per second through the whole engine on one pico,
 * durably (SQLite WAL, synchronous=FULL, in a temporary directory):
 *
 *   hello    a rule that sends one directive
 *   counter  a rule that also writes one entity variable
 *
 * each with events sent one at a time (one commit per event) and with 100
 * in flight (committed together, as the daemon's group commit does).
 * Then the same with PICOS picos in the database (default 1,000,000; set
 * BENCH_PICOS to change): the time to open the engine and run its first
 * event, and events/s again.  Prints medians of RUNS runs (wall clock,
 * and the process's CPU time per event beside it: the difference is
 * mostly the wait for fsync) and peak RSS.  BENCH_ONLY=hello or counter
 * runs only that ruleset with 100 in flight (for profiling).
 * A benchmark: it prints figures and asserts nothing.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "picomail/engine.h"
#include "picomail/ids.h"
#include "picomail/json.h"
#include "picomail/store.h"

#define RUNS 5
#define IN_FLIGHT 100

static char dir[] = "/tmp/bench_engine.XXXXXX";

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static const char *hello_krl =
    "ruleset bench.hello {\n"
    "  rule hello {\n"
    "    select when echo hello\n"
    "    send_directive(\"say\", {\"something\": \"Hello World\"})\n"
    "  }\n"
    "}\n";

static const char *counter_krl =
    "ruleset bench.counter {\n"
    "  rule inc {\n"
    "    select when echo hello\n"
    "    send_directive(\"say\", {\"n\": ent:n.defaultsTo(0) + 1})\n"
    "    fired { ent:n := ent:n.defaultsTo(0) + 1 }\n"
    "  }\n"
    "}\n";

static struct engine *
open_engine(const char *db)
{
    struct engine_options o;
    engine_options_default(&o);
    o.database = db;
    o.synchronous_full = true;
    char err[256];
    struct engine *e = engine_open(&o, err, sizeof err);
    if (e == NULL) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    return e;
}

static void
check(kval v, const char *what)
{
    if (kval_is_error(&v)) {
        fprintf(stderr, "bench: %s: %s\n", what, kval_error_msg(&v));
        exit(1);
    }
    kval_free(v);
}

/* setup - a pico named NAME with SRC installed; its channel's ECI */
static char *
setup(struct engine *e, const char *name, const char *src)
{
    kval r = engine_ruleset_register(e, name, src, strlen(src));
    if (kval_is_error(&r)) {
        fprintf(stderr, "bench: %s\n", kval_error_msg(&r));
        exit(1);
    }
    char rid[128];
    snprintf(rid, sizeof rid, "%s", kval_str_ptr(kval_map_get_str(&r, "rid")));
    kval_free(r);
    check(engine_pico_new(e, name, NULL), "pico new");
    check(engine_install(e, name, rid, NULL), "install");
    kval c = engine_channel_new(e, name, NULL);
    char *eci = strdup(kval_str_ptr(kval_map_get_str(&c, "eci")));
    kval_free(c);
    return eci;
}

/* rate - events/s of N events on ECI, BATCH at a time; *CPU_US gets the
 * CPU time per event in microseconds */
static double
rate(struct engine *e, const char *eci, int n, int batch, double *cpu_us)
{
    kval attrs = kval_map();
    struct engine_event_req reqs[IN_FLIGHT];
    for (int i = 0; i < batch; i++)
        reqs[i] = (struct engine_event_req){.eci = eci, .domain = "echo",
                                            .type = "hello", .attrs = &attrs};
    double t0 = now_s(), c0 = cpu_s();
    for (int done = 0; done < n; done += batch) {
        kval r = engine_event_batch(e, reqs, (size_t)batch);
        if (kval_is_error(&r)) {
            fprintf(stderr, "bench: event: %s\n", kval_error_msg(&r));
            exit(1);
        }
        if (kval_is_error(kval_array_get(&r, 0))) {
            fprintf(stderr, "bench: event: %s\n",
                    kval_error_msg(kval_array_get(&r, 0)));
            exit(1);
        }
        kval_free(r);
    }
    double secs = now_s() - t0;
    *cpu_us = (cpu_s() - c0) * 1e6 / n;
    kval_free(attrs);
    return n / secs;
}

static void
report(const char *label, double *rates, double *cpu)
{
    double r = median(rates, RUNS);
    printf("%-36s %8.0f events/s %7.1f us/event (cpu %5.1f)\n", label, r,
           1e6 / r, median(cpu, RUNS));
}

static void
bench_pair(struct engine *e, const char *eci, const char *name, bool one)
{
    double one_r[RUNS], one_c[RUNS], many_r[RUNS], many_c[RUNS];
    for (int i = 0; i < RUNS; i++) {
        if (one)
            one_r[i] = rate(e, eci, 2000, 1, &one_c[i]);
        many_r[i] = rate(e, eci, 20000, IN_FLIGHT, &many_c[i]);
    }
    char label[64];
    if (one) {
        snprintf(label, sizeof label, "%s, one at a time", name);
        report(label, one_r, one_c);
    }
    snprintf(label, sizeof label, "%s, %d in flight", name, IN_FLIGHT);
    report(label, many_r, many_c);
}

/* fill - N more picos, each with a channel, straight through the store */
static void
fill(const char *db, long n)
{
    struct store_options so = {5000, false, NULL};
    char err[256];
    struct store *s = store_open(db, &so, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    kval tags = kval_array();
    kval none = kval_null();
    for (long i = 0; i < n; i++) {
        if (i % 100000 == 0) {
            if (i > 0)
                store_commit(s);
            store_begin(s);
        }
        char id[ID_BUFSIZE], eci[ID_BUFSIZE];
        id_new(id);
        id_new(eci);
        store_pico_new(s, id, NULL, NULL);
        struct store_channel ch = {.eci = eci, .pico_id = id, .tags = tags,
                                   .event_policy = none,
                                   .query_policy = none, .senders = tags};
        store_channel_put(s, &ch);
    }
    store_commit(s);
    kval_free(tags);
    store_close(s);
}

int
main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char db[256];
    snprintf(db, sizeof db, "%s/bench.db", dir);
    printf("engine benchmark: durable (WAL, synchronous=FULL), median of "
           "%d runs\n", RUNS);
    struct engine *e = open_engine(db);
    check(engine_init(e), "init");
    char *hello = setup(e, "hello", hello_krl);
    char *counter = setup(e, "counter", counter_krl);
    const char *only = getenv("BENCH_ONLY");
    if (only != NULL) {
        bench_pair(e, strcmp(only, "counter") == 0 ? counter : hello, only,
                   false);
        engine_close(e);
    } else {
        bench_pair(e, hello, "hello", true);
        bench_pair(e, counter, "counter", true);
        engine_close(e);
    }

    const char *env = getenv("BENCH_PICOS");
    long n = env ? strtol(env, NULL, 10) : 1000000;
    if (only == NULL) {
        printf("\nfilling the database to %ld picos...\n", n);
        fflush(stdout);
        double t0 = now_s();
        fill(db, n);
        printf("(filled in %.1f s)\n", now_s() - t0);
        t0 = now_s();
        e = open_engine(db);
        kval attrs = kval_map();
        check(engine_event(e, hello, "echo", "hello", &attrs, 0),
              "first event");
        printf("%-36s %8.1f ms\n", "open + first event",
               (now_s() - t0) * 1e3);
        kval_free(attrs);
        bench_pair(e, hello, "hello, many picos", true);
        bench_pair(e, counter, "counter, many picos", true);
        engine_close(e);
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    char path[300];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", db, suffix[i]);
        unlink(path);
    }
    rmdir(dir);
    free(hello);
    free(counter);
    return 0;
}
