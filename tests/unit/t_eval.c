/*
 * t_eval.c - the resolver and evaluator: compile-time checks with their
 * places, instances and queries, closures and frames, limits; and every
 * conformance case that consists of queries alone, replayed through
 * krl_instance_query and compared with the reference engine's recorded
 * output.  (Cases with events need the pico engine and run through
 * `picomail replay` once it exists.)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/eval.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "tap.h"

#define CASES_DIR "../shared/conformance/cases"

static char *
read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        buf_add(&b, chunk, n);
    fclose(fp);
    return buf_take(&b, len);
}

/* compile_error - compile SRC; the first diagnostic as "L:C: msg" */
static char *
compile_error(const char *src)
{
    struct krl_diags d;
    krl_diags_init(&d);
    struct krl_ruleset *rs = krl_ruleset_compile("t.krl", src, strlen(src),
                                                 &d);
    char *out;
    if (rs != NULL || d.n == 0) {
        out = xstrdup("(compiled)");
    } else {
        struct buf b;
        buf_init(&b);
        buf_printf(&b, "%d:%d: %s", d.items[0].line, d.items[0].col,
                   d.items[0].msg);
        out = buf_take(&b, NULL);
    }
    krl_ruleset_free(rs);
    krl_diags_release(&d);
    return out;
}

static void
test_compile_errors(void)
{
    static const struct {
        const char *src;
        const char *want;   /* prefix of "LINE:COL: message" */
    } cases[] = {
        {"ruleset a {\n  global {\n    x = y\n  }\n}",
         "3:9: Undefined id: y"},
        {"ruleset a {\n  global {\n    x = 1\n    x = 2\n  }\n}",
         "4:5: Duplicate declaration: x"},
        {"ruleset a {\n  meta {\n    shares nope\n  }\n}",
         "3:12: Trying to share: nope"},
        {"ruleset a {\n  meta {\n    provides nope\n  }\n}",
         "3:14: Trying to provide: nope"},
        {"ruleset a {\n  meta { shares d }\n  global {\n"
         "    d = defaction() { noop() }\n  }\n}",
         "2:17: Actions cannot be shared: d"},
        {"ruleset a {\n  rule r { select when a b }\n"
         "  rule r { select when a c }\n}",
         "3:3: Duplicate rule name: r"},
        {"ruleset a {\n  global { f = function() { 1 } }\n"
         "  rule r {\n    select when a b\n    f()\n  }\n}",
         "5:5: Not an action: f"},
        {"ruleset a {\n  global { d = defaction() { noop() }\n"
         "    x = d() }\n}",
         "3:9: Not a function: d"},
        {"ruleset a {\n  rule r {\n    select when a b\n"
         "    pre { x = zzz }\n  }\n}",
         "4:15: Undefined id: zzz"},
        {"ruleset a {\n  global { f = function(a, b = 1, c) { a } }\n}",
         "2:35: Parameter c without a default"},
        {"ruleset a {\n  global { x = re#(# }\n}",
         "2:16: Invalid regular expression"},
        {"ruleset a {\n  global {\n    g = function() { later }\n"
         "    later = 1\n  }\n  rule r { select when a b\n"
         "    send_directive(\"x\", {\"v\": undefinedthing}) }\n}",
         "7:31: Undefined id: undefinedthing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = compile_error(cases[i].src);
        int ok = strncmp(got, cases[i].want, strlen(cases[i].want)) == 0;
        char name[64];
        snprintf(name, sizeof name, "compile error %zu", i);
        t_ok(ok, name);
        if (!ok)
            printf("  got  %s\n  want %s\n", got, cases[i].want);
        free(got);
    }
    /* hoisting: a function may use a later declaration */
    char *got = compile_error("ruleset a {\n  global {\n"
                              "    g = function() { later }\n"
                              "    later = 1\n  }\n}");
    t_eq_str(got, "(compiled)", "functions are hoisted");
    free(got);
}

static kval
query(struct krl_instance *inst, const char *name, const char *args_json)
{
    struct krl_vm *vm = krl_vm_new(NULL);
    kval args = json_parse(args_json, strlen(args_json));
    kval v = krl_instance_query(inst, vm, name, &args);
    kval_free(args);
    krl_vm_free(vm);
    return v;
}

static void
t_eq_json(kval v, const char *want, const char *name)
{
    char *got = kval_is_error(&v) ? xstrdup(kval_error_msg(&v))
                                  : json_to_cstr(&v, JSON_KRL);
    t_eq_str(got, want, name);
    free(got);
    kval_free(v);
}

static void
test_instance(void)
{
    const char *src =
        "ruleset t.inst {\n"
        "  meta {\n"
        "    configure using factor = 2\n"
        "    shares scale, table, counter, fns, hidden_not\n"
        "  }\n"
        "  global {\n"
        "    table = [1, 2, 3].map(function(x) { scale(x) })\n"
        "    scale = function(x, by = factor) { x * by }\n"
        "    adder = function(n) { function(x) { x + n } }\n"
        "    counter = function(n) { adder(n)(100) }\n"
        "    fns = function() { [scale].map(function(f) { f(5) }) }\n"
        "    hidden = 1\n"
        "    hidden_not = function() { hidden + 1 }\n"
        "  }\n"
        "}\n";
    struct krl_diags d;
    krl_diags_init(&d);
    struct krl_ruleset *rs = krl_ruleset_compile("t.krl", src, strlen(src),
                                                 &d);
    t_ok(rs != NULL, "instance ruleset compiles");
    if (rs == NULL)
        return;
    t_eq_str(krl_ruleset_rid(rs), "t.inst", "rid");
    kval err = kval_null();
    struct krl_instance *inst = krl_instance_new(rs, NULL, NULL, &err);
    t_ok(inst != NULL, "instance initialises");
    if (inst != NULL) {
        t_eq_json(query(inst, "table", "{}"), "[2,4,6]",
                  "global computed at init");
        t_eq_json(query(inst, "scale", "{\"x\": 4}"), "8",
                  "query args by name, default from configure");
        t_eq_json(query(inst, "scale", "{\"x\": 4, \"by\": 3}"), "12",
                  "query args by name");
        t_eq_json(query(inst, "counter", "{\"n\": 5}"), "105", "closures");
        t_eq_json(query(inst, "fns", "{}"), "[10]", "functions as values");
        t_eq_json(query(inst, "hidden_not", "{}"), "2", "unshared global");
        kval v = query(inst, "hidden", "{}");
        t_ok(kval_is_error(&v), "unshared name is an error");
        kval_free(v);
        krl_instance_free(inst);
    }
    kval config = json_parse("{\"factor\": 10}", 14);
    inst = krl_instance_new(rs, &config, NULL, &err);
    t_ok(inst != NULL, "instance with config");
    if (inst != NULL) {
        t_eq_json(query(inst, "scale", "{\"x\": 4}"), "40",
                  "configure using takes the given value");
        krl_instance_free(inst);
    }
    kval_free(config);
    krl_ruleset_free(rs);
    krl_diags_release(&d);
}

static void
test_limits(void)
{
    struct krl_limits lim;
    krl_limits_default(&lim);
    lim.max_steps = 5000;
    const char *src = "f = function(n) { n == 0 => 0 | 1 + f(n - 1) }; "
                      "[f(100), f(100000)]";
    struct krl_diags d;
    krl_diags_init(&d);
    struct krl_body *b = krl_body_compile("t", src, strlen(src), &d);
    t_ok(b != NULL, "limits body compiles");
    if (b == NULL)
        return;
    struct krl_vm *vm = krl_vm_new(&lim);
    kval v = krl_body_eval(vm, b);
    t_ok(kval_is_error(&v), "step or depth limit stops a runaway");
    kval_free(v);
    krl_vm_free(vm);
    lim.max_steps = 10000000;
    lim.max_depth = 50;
    vm = krl_vm_new(&lim);
    v = krl_body_eval(vm, b);
    t_ok(kval_is_error(&v) &&
             strstr(kval_error_msg(&v), "Maximum call stack") != NULL,
         "depth limit");
    kval_free(v);
    krl_vm_free(vm);
    krl_body_free(b);
    krl_diags_release(&d);
}

/* ---- conformance cases made only of queries ---- */

static bool
same_json(const char *expected, const kval *got)
{
    kval want = json_parse(expected, strlen(expected));
    bool ok;
    if (kval_is_error(&want)) {
        ok = false;
    } else if (kval_kind(&want) == KV_MAP &&
               kval_map_get_str(&want, "error") != NULL) {
        ok = kval_is_error(got);
    } else if (kval_is_error(got)) {
        ok = false;
    } else {
        /* compare as the runner does: through JSON, so a null member and
           an absent one are the same */
        char *text = json_to_cstr(got, JSON_DATA);
        kval result = kval_map();
        kval back = text ? json_parse(text, strlen(text)) : kval_null();
        result = kval_map_put_str(result, "result", back);
        ok = kval_equal(&want, &result);
        kval_free(result);
        free(text);
    }
    kval_free(want);
    return ok;
}

static void
run_query_case(const char *name, int *cases_run)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.jsonl", CASES_DIR, name);
    size_t len;
    char *jsonl = read_file(path, &len);
    snprintf(path, sizeof path, "%s/%s.out", CASES_DIR, name);
    char *out = read_file(path, &len);
    snprintf(path, sizeof path, "%s/%s.krl", CASES_DIR, name);
    char *krl = read_file(path, &len);
    if (jsonl == NULL || out == NULL || krl == NULL)
        goto done;
    if (strstr(jsonl, "\"event\"") != NULL ||
        strstr(jsonl, "# rulesets:") != NULL)
        goto done;  /* needs the engine */
    (*cases_run)++;
    struct krl_diags d;
    krl_diags_init(&d);
    struct krl_ruleset *rs = krl_ruleset_compile(path, krl, len, &d);
    char label[300];
    snprintf(label, sizeof label, "%s compiles", name);
    t_ok(rs != NULL, label);
    if (rs == NULL) {
        struct buf b;
        buf_init(&b);
        krl_diags_format(&d, &b);
        printf("%s", b.data);
        buf_release(&b);
        krl_diags_release(&d);
        goto done;
    }
    kval err = kval_null();
    struct krl_instance *inst = krl_instance_new(rs, NULL, NULL, &err);
    snprintf(label, sizeof label, "%s initialises", name);
    t_ok(inst != NULL, label);
    char *in_save = NULL, *out_save = NULL;
    char *in_line = strtok_r(jsonl, "\n", &in_save);  /* checksrc: allow strtok_r - test input */
    char *out_line = strtok_r(out, "\n", &out_save);  /* checksrc: allow strtok_r - test input */
    int lineno = 0;
    for (; inst != NULL && in_line != NULL;
         in_line = strtok_r(NULL, "\n", &in_save)) { /* checksrc: allow strtok_r */
        if (in_line[0] == '#' || in_line[0] == '/' || in_line[0] == '\0')
            continue;
        lineno++;
        kval input = json_parse(in_line, strlen(in_line));
        const kval *q = kval_map_get_str(&input, "query");
        const kval *qname = q ? kval_map_get_str(q, "name") : NULL;
        const kval *args = q ? kval_map_get_str(q, "args") : NULL;
        struct krl_vm *vm = krl_vm_new(NULL);
        kval got = qname != NULL
                       ? krl_instance_query(inst, vm, kval_str_ptr(qname),
                                            args)
                       : kval_error("bad input line");
        snprintf(label, sizeof label, "%s line %d", name, lineno);
        bool ok = out_line != NULL && same_json(out_line, &got);
        t_ok(ok, label);
        if (!ok) {
            char *g = kval_is_error(&got) ? xstrdup(kval_error_msg(&got))
                                          : json_to_cstr(&got, JSON_KRL);
            printf("  input:    %s\n  expected: %s\n  got:      %s\n",
                   in_line, out_line ? out_line : "(none)", g ? g : "?");
            free(g);
        }
        kval_free(got);
        kval_free(input);
        krl_vm_free(vm);
        if (out_line != NULL)
            out_line = strtok_r(NULL, "\n", &out_save); /* checksrc: allow strtok_r */
    }
    kval_free(err);
    krl_instance_free(inst);
    krl_ruleset_free(rs);
    krl_diags_release(&d);
done:
    free(jsonl);
    free(out);
    free(krl);
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_conformance_queries(void)
{
    DIR *dir = opendir(CASES_DIR);
    if (dir == NULL) {
        printf("# %s not found: query conformance skipped\n", CASES_DIR);
        return;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && n < 256) {
        size_t l = strlen(de->d_name);
        if (l > 6 && strcmp(de->d_name + l - 6, ".jsonl") == 0)
            names[n++] = xmemdup(de->d_name, l - 6);
    }
    closedir(dir);
    qsort(names, n, sizeof *names, by_name);
    int cases_run = 0;
    for (size_t i = 0; i < n; i++) {
        run_query_case(names[i], &cases_run);
        free(names[i]);
    }
    t_ok(cases_run >= 10, "query-only conformance cases found");
}

int
main(void)
{
    test_compile_errors();
    test_instance();
    test_limits();
    test_conformance_queries();
    return tap_done();
}
