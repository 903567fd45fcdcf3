/*
 * bench_krl.c - speed of the KRL core: parsing (MB/s of KRL source) and
 * evaluation (ns per element of map, filter and reduce over a 100,000
 * element array).  Prints the median of RUNS runs of each and the peak RSS.
 * A benchmark, not a test: nothing here asserts a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "picomail/arena.h"
#include "picomail/buf.h"
#include "picomail/diag.h"
#include "picomail/eval.h"
#include "picomail/parser.h"

#define RUNS 7
#define N_ELEMENTS 100000

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

/* synthetic_ruleset - a large ruleset using most of the grammar */
static void
synthetic_ruleset(struct buf *b, int n)
{
    buf_adds(b, "ruleset bench.parse {\n  meta {\n    name \"bench\"\n"
                "    shares f0\n  }\n  global {\n");
    for (int i = 0; i < n; i++)
        buf_printf(b,
                   "    f%d = function(x, y = %d) {\n"
                   "      a = x.map(function(v, k) { v * y + k });\n"
                   "      b = {\"k%d\": a, \"s\": <<text #{y} and #{a.length()}>>};\n"
                   "      b{\"k%d\"}.filter(function(v) { v %% 2 == 0 })"
                   ".reduce(function(p, q) { p + q }, 0) > 10 => \"big\" "
                   "| \"small\".uc()\n    }\n",
                   i, i, i, i);
    buf_adds(b, "  }\n");
    for (int i = 0; i < n; i++)
        buf_printf(b,
                   "  rule r%d {\n"
                   "    select when web%d hello name re#^(\\w+)$# setting(nm)"
                   " before (web%d bye or web%d later)\n"
                   "    foreach [1, 2, 3] setting(item, idx)\n"
                   "    pre { msg = \"hi \" + nm + item; }\n"
                   "    if msg.length() > 2 then every {\n"
                   "      send_directive(\"say\", {\"msg\": msg});\n"
                   "      noop()\n    }\n"
                   "    fired { ent:count{[\"n\", idx]} := ent:count + 1;"
                   " raise web event \"done\" attributes {\"i\": idx} "
                   "on final } else { last }\n  }\n",
                   i, i, i, i);
    buf_adds(b, "}\n");
}

static void
bench_parse(void)
{
    struct buf src;
    buf_init(&src);
    synthetic_ruleset(&src, 500);
    double secs[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_s();
        int reps = 0;
        while (now_s() - t0 < 0.3 || reps < 3) {
            struct arena *a = arena_new();
            struct krl_diags d;
            krl_diags_init(&d);
            if (parse_ruleset(a, "bench.krl", src.data, src.len, &d) ==
                NULL) {
                struct buf out;
                buf_init(&out);
                krl_diags_format(&d, &out);
                fprintf(stderr, "bench: parse failed: %s", out.data);
                exit(1);
            }
            krl_diags_release(&d);
            arena_free(a);
            reps++;
        }
        secs[r] = (now_s() - t0) / reps;
    }
    double s = median(secs, RUNS);
    printf("parse:   %8.1f MB/s  (%zu bytes of KRL, %.2f ms per parse)\n",
           (double)src.len / s / 1e6, src.len, s * 1e3);
    buf_release(&src);
}

static const char *eval_src =
    "ruleset bench.eval {\n"
    "  meta { shares mapped, filtered, reduced }\n"
    "  global {\n"
    "    arr = range(0, 99999)\n"
    "    mapped = function() { arr.map(function(x) { x * 2 }).length() }\n"
    "    filtered = function() {\n"
    "      arr.filter(function(x) { x % 3 == 0 }).length() }\n"
    "    reduced = function() { arr.reduce(function(a, b) { a + b }, 0) }\n"
    "  }\n"
    "}\n";

static void
bench_eval(void)
{
    struct krl_diags d;
    krl_diags_init(&d);
    struct krl_ruleset *rs = krl_ruleset_compile("bench.krl", eval_src,
                                                 strlen(eval_src), &d);
    if (rs == NULL) {
        fprintf(stderr, "bench: compile failed\n");
        exit(1);
    }
    kval err;
    struct krl_instance *inst = krl_instance_new(rs, NULL, NULL, &err);
    if (inst == NULL) {
        fprintf(stderr, "bench: init failed: %s\n", kval_error_msg(&err));
        exit(1);
    }
    const char *names[] = {"mapped", "filtered", "reduced"};
    for (size_t q = 0; q < 3; q++) {
        double secs[RUNS];
        for (int r = 0; r < RUNS; r++) {
            struct krl_vm *vm = krl_vm_new(NULL);
            double t0 = now_s();
            kval v = krl_instance_query(inst, vm, names[q], NULL);
            secs[r] = now_s() - t0;
            if (kval_is_error(&v)) {
                fprintf(stderr, "bench: %s: %s\n", names[q],
                        kval_error_msg(&v));
                exit(1);
            }
            kval_free(v);
            krl_vm_free(vm);
        }
        printf("%-8s %8.1f ns/element  (%d elements)\n", names[q],
               median(secs, RUNS) / N_ELEMENTS * 1e9, N_ELEMENTS);
    }
    krl_instance_free(inst);
    krl_ruleset_free(rs);
    krl_diags_release(&d);
}

int
main(void)
{
    printf("KRL core benchmark, median of %d runs\n", RUNS);
    bench_parse();
    bench_eval();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    return 0;
}
