/*
 * bench_store.c - speed of the SQLite store (store_sqlite.c): entity
 * variable writes per second with one transaction per write (synchronous
 * FULL and NORMAL) and with 100 writes per transaction, reads per second,
 * channel lookups per second with 1,000,000 channels, and store_open time
 * over 1,000,000 picos.  Prints medians of RUNS runs.  A benchmark, not a
 * test: nothing here asserts a time.
 *
 * The databases go to a fresh directory under /tmp, or under the directory
 * given as the first argument (to measure a particular disk), and are
 * removed at the end.  The 1,000,000-pico database is built once (picos,
 * one channel each, in one transaction), which takes most of the run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "picomail/buf.h"
#include "picomail/mem.h"
#include "picomail/store.h"
#include "picomail/value.h"

#define RUNS 5
#define N_SMALL_PICOS 1000
#define N_VARS 10
#define N_BIG 1000000

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* xorshift: a fixed sequence, so runs are comparable */
static uint64_t rng = 88172645463325252ULL;

static uint64_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void
base36(char *out, uint64_t v, int width)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    int i;

    for (i = width - 1; i >= 0; i--) {
        out[i] = digits[v % 36];
        v /= 36;
    }
    out[width] = '\0';
}

/* cuid-like ids: a rising prefix (as cuid's timestamp and counter) and a
 * scrambled tail, derived from I so that a lookup can rebuild them */
static void
make_id(char *out, char tag, uint64_t i)
{
    out[0] = 'c';
    base36(out + 1, i, 8);
    out[9] = tag;
    base36(out + 10, (i * 2654435761ULL) ^ 0x5bd1e995ULL, 10);
}

static struct store *
open_or_die(const char *path, bool full)
{
    struct store_options o = {5000, full, NULL};
    char err[256];
    struct store *s = store_open(path, &o, err, sizeof err);

    if (s == NULL) {
        fprintf(stderr, "bench_store: %s\n", err);
        exit(1);
    }
    return s;
}

static void
check(struct store *s, int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench_store: %s: %d %s\n", what, rc,
                store_errmsg(s));
        exit(1);
    }
}

static void
rm_db(const char *path)
{
    static const char *const sfx[] = {"", "-wal", "-shm"};
    struct buf b;
    size_t i;

    buf_init(&b);
    for (i = 0; i < 3; i++) {
        buf_reset(&b);
        buf_printf(&b, "%s%s", path, sfx[i]);
        unlink(b.data);
    }
    buf_release(&b);
}

static double
file_mb(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
}

/* a typical small entity value */
static kval
sample_value(uint64_t i)
{
    kval m = kval_map();

    m = kval_map_put_str(m, "count", kval_number((double)i));
    m = kval_map_put_str(m, "from", kval_cstr("someone@example.org"));
    m = kval_map_put_str(m, "tags", kval_array_append(kval_array(),
                                                       kval_cstr("inbox")));
    return m;
}

static void
small_db(const char *path)
{
    struct store *s = open_or_die(path, false);
    char id[32], name[16];
    kval v;
    int i, j;

    check(s, store_begin(s), "begin");
    for (i = 0; i < N_SMALL_PICOS; i++) {
        make_id(id, 'p', (uint64_t)i);
        check(s, store_pico_new(s, id, NULL, NULL), "pico new");
        for (j = 0; j < N_VARS; j++) {
            snprintf(name, sizeof name, "v%d", j);
            v = sample_value((uint64_t)j);
            check(s, store_ent_put(s, id, "io.bench", name, &v), "ent put");
            kval_free(v);
        }
    }
    check(s, store_commit(s), "commit");
    store_close(s);
}

/* ent_writes - writes per second, BATCH writes per transaction (1: each
 * write its own implicit transaction) */
static double
ent_writes(const char *path, bool full, int n, int batch)
{
    struct store *s = open_or_die(path, full);
    double t[RUNS], t0;
    char id[32], name[16];
    kval v;
    int r, i;

    for (r = 0; r < RUNS; r++) {
        t0 = now_s();
        for (i = 0; i < n; i++) {
            if (batch > 1 && i % batch == 0)
                check(s, store_begin(s), "begin");
            make_id(id, 'p', rnd() % N_SMALL_PICOS);
            snprintf(name, sizeof name, "v%d", (int)(rnd() % N_VARS));
            v = sample_value((uint64_t)i);
            check(s, store_ent_put(s, id, "io.bench", name, &v), "ent put");
            kval_free(v);
            if (batch > 1 && (i % batch == batch - 1 || i == n - 1))
                check(s, store_commit(s), "commit");
        }
        t[r] = (double)n / (now_s() - t0);
    }
    store_close(s);
    return median(t, RUNS);
}

static double
ent_reads(const char *path, int n)
{
    struct store *s = open_or_die(path, false);
    double t[RUNS], t0;
    char id[32], name[16];
    kval v;
    int r, i;

    for (r = 0; r < RUNS; r++) {
        t0 = now_s();
        for (i = 0; i < n; i++) {
            make_id(id, 'p', rnd() % N_SMALL_PICOS);
            snprintf(name, sizeof name, "v%d", (int)(rnd() % N_VARS));
            check(s, store_ent_get(s, id, "io.bench", name, &v), "ent get");
            kval_free(v);
        }
        t[r] = (double)n / (now_s() - t0);
    }
    store_close(s);
    return median(t, RUNS);
}

static double
big_db(const char *path)
{
    struct store *s = open_or_die(path, false);
    struct store_channel c;
    char id[32], eci[32];
    double t0 = now_s();
    int i;

    check(s, store_begin(s), "begin");
    for (i = 0; i < N_BIG; i++) {
        make_id(id, 'p', (uint64_t)i);
        make_id(eci, 'e', (uint64_t)i);
        memset(&c, 0, sizeof c);
        c.eci = eci;
        c.pico_id = id;
        check(s, store_pico_new(s, id, NULL, NULL), "pico new");
        check(s, store_channel_put(s, &c), "channel put");
    }
    check(s, store_commit(s), "commit");
    store_close(s);
    return now_s() - t0;
}

static double
channel_lookups(const char *path, int n)
{
    struct store *s = open_or_die(path, false);
    struct store_channel c;
    double t[RUNS], t0;
    char eci[32];
    int r, i;

    for (r = 0; r < RUNS; r++) {
        t0 = now_s();
        for (i = 0; i < n; i++) {
            make_id(eci, 'e', rnd() % N_BIG);
            check(s, store_channel_get(s, eci, &c), "channel get");
            store_channel_release(&c);
        }
        t[r] = (double)n / (now_s() - t0);
    }
    store_close(s);
    return median(t, RUNS);
}

/* open_times - medians of store_open alone and of open + one lookup */
static void
open_times(const char *path, double *open_ms, double *first_ms)
{
    double t[RUNS], u[RUNS], t0;
    struct store_channel c;
    struct store *s;
    char eci[32];
    int r;

    for (r = 0; r < RUNS; r++) {
        t0 = now_s();
        s = open_or_die(path, true);
        t[r] = (now_s() - t0) * 1e3;
        make_id(eci, 'e', rnd() % N_BIG);
        check(s, store_channel_get(s, eci, &c), "channel get");
        u[r] = (now_s() - t0) * 1e3;
        store_channel_release(&c);
        store_close(s);
    }
    *open_ms = median(t, RUNS);
    *first_ms = median(u, RUNS);
}

int
main(int argc, char **argv)
{
    struct buf dir, small, big;
    struct rusage ru;
    double build_s, open_ms, first_ms;

    buf_init(&dir);
    buf_init(&small);
    buf_init(&big);
    buf_printf(&dir, "%s/bench_store.XXXXXX", argc > 1 ? argv[1] : "/tmp");
    if (mkdtemp(dir.data) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    buf_printf(&small, "%s/small.db", dir.data);
    buf_printf(&big, "%s/big.db", dir.data);

    printf("store benchmark (%s), medians of %d runs\n", dir.data, RUNS);
    small_db(small.data);
    printf("entity writes, 1 per transaction, synchronous=FULL:   %9.0f /s\n",
           ent_writes(small.data, true, 300, 1));
    printf("entity writes, 1 per transaction, synchronous=NORMAL: %9.0f /s\n",
           ent_writes(small.data, false, 3000, 1));
    printf("entity writes, 100 per transaction, FULL:             %9.0f /s\n",
           ent_writes(small.data, true, 30000, 100));
    printf("entity writes, 100 per transaction, NORMAL:           %9.0f /s\n",
           ent_writes(small.data, false, 30000, 100));
    printf("entity reads (%d picos x %d vars):                 %9.0f /s\n",
           N_SMALL_PICOS, N_VARS, ent_reads(small.data, 100000));
    rm_db(small.data);

    build_s = big_db(big.data);
    printf("build: %d picos + %d channels in one transaction: %.1f s "
           "(%.0f MB)\n", N_BIG, N_BIG, build_s, file_mb(big.data));
    printf("channel lookups with %d channels:              %9.0f /s\n",
           N_BIG, channel_lookups(big.data, 200000));
    open_times(big.data, &open_ms, &first_ms);
    printf("store_open with %d picos:                      %9.3f ms\n",
           N_BIG, open_ms);
    printf("store_open + first channel lookup:                   %9.3f ms\n",
           first_ms);
    rm_db(big.data);
    rmdir(dir.data);

    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %ld MB\n", ru.ru_maxrss / 1024);
    buf_release(&dir);
    buf_release(&small);
    buf_release(&big);
    return 0;
}
