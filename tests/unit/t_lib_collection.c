/*
 * t_lib_collection.c - unit tests of the KRL collection library
 * (src/krl/lib_collection.c), ported from the reference engine's
 * krl-stdlib test.ts "collection operators" and from the conformance cases
 * arr_basic, arr_sort_sets, arr_higher and map_ops.
 *
 * Arguments and expected results are JSON; KRL function arguments are
 * native function values called with vm = NULL.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/builtin.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/ops.h"
#include "picomail/value.h"
#include "tap.h"

#ifdef T_OWN_BUILTIN_ARG
/* builtin.c cannot be linked before every lib_*.c exists */
static const kval null_arg;

const kval *
builtin_arg(const kval *args, size_t n_args, size_t i)
{
    return i < n_args ? &args[i] : &null_arg;
}
#endif

/* ---- helpers ---- */

static kval
J(const char *text)
{
    kval v = json_parse(text, strlen(text));
    if (kval_is_error(&v)) {
        fprintf(stderr, "bad test JSON %s: %s\n", text, kval_error_msg(&v));
        abort();
    }
    return v;
}

static const struct krl_builtin *
find(const char *name)
{
    for (size_t i = 0; lib_collection_builtins[i].name != NULL; i++)
        if (strcmp(lib_collection_builtins[i].name, name) == 0)
            return &lib_collection_builtins[i];
    fprintf(stderr, "no builtin %s\n", name);
    abort();
}

/* Call builtin NAME with the N values in ARGV (borrowed). */
static kval
callv(const char *name, const kval *argv, size_t n)
{
    return find(name)->fn(NULL, NULL, argv, n);
}

/* Call builtin NAME with the elements of the JSON array ARGS. */
static kval
callj(const char *name, const char *args)
{
    kval a = J(args);
    kval argv[8];
    size_t n = kval_array_len(&a);
    kval r;

    for (size_t i = 0; i < n && i < 8; i++)
        argv[i] = *kval_array_get(&a, i);
    r = callv(name, argv, n);
    kval_free(a);
    return r;
}

static char *
show(const kval *v)
{
    if (kval_is_error(v)) {
        size_t n = strlen(kval_error_msg(v)) + 8;
        char *s = xmalloc(n);
        snprintf(s, n, "!%s", kval_error_msg(v));
        return s;
    }
    char *s = json_to_cstr(v, JSON_KRL);
    return s != NULL ? s : xstrdup("(unencodable)");
}

/*
 * Check R (consumed) against WANT: JSON text (compared both as text, for
 * order, and with kval_equal, for nulls), or "!message" for an error.
 */
static void
expect(kval r, const char *want, const char *name)
{
    char *got = show(&r);

    if (want[0] == '!') {
        t_eq_str(got, want, name);
    } else {
        kval w = J(want);
        char *ws = show(&w);
        int ok = strcmp(got, ws) == 0 && !kval_is_error(&r) &&
                 kval_equal(&r, &w);
        if (!ok)
            t_eq_str(got, ws, name);
        else
            t_ok(1, name);
        free(ws);
        kval_free(w);
    }
    free(got);
    kval_free(r);
}

/* ---- native KRL functions for the tests ---- */

static int calls;               /* how many times the test functions ran */
static kval last_args[4];       /* copies of the last call's arguments */
static size_t last_n;

static void
record(const kval *args, size_t n)
{
    calls++;
    for (size_t i = 0; i < last_n; i++)
        kval_free(last_args[i]);
    last_n = n < 4 ? n : 4;
    for (size_t i = 0; i < last_n; i++)
        last_args[i] = kval_copy(&args[i]);
}

/* drop the recorded arguments (they hold references) */
static void
forget(void)
{
    for (size_t i = 0; i < last_n; i++)
        kval_free(last_args[i]);
    last_n = 0;
}

static double
num_arg(const kval *args, size_t n, size_t i)
{
    double d = 0;
    if (i < n)
        op_to_number(&args[i], &d);
    return d;
}

#define NATIVE(fname, expr)                                                \
    static kval                                                            \
    fname(struct krl_vm *vm, void *data, const kval *args, size_t n)       \
    {                                                                      \
        (void)vm;                                                          \
        (void)data;                                                        \
        record(args, n);                                                   \
        return expr;                                                       \
    }

NATIVE(f_lt10, kval_bool(num_arg(args, n, 0) < 10))
NATIVE(f_gt3, kval_bool(num_arg(args, n, 0) > 3))
NATIVE(f_gt5, kval_bool(num_arg(args, n, 0) > 5))
NATIVE(f_gt10, kval_bool(num_arg(args, n, 0) > 10))
NATIVE(f_lt5, kval_bool(num_arg(args, n, 0) < 5))
NATIVE(f_even, kval_bool((long long)num_arg(args, n, 0) % 2 == 0))
NATIVE(f_odd, kval_bool((long long)num_arg(args, n, 0) % 2 != 0))
NATIVE(f_plus2, kval_number(num_arg(args, n, 0) + 2))
NATIVE(f_double, kval_number(num_arg(args, n, 0) * 2))
NATIVE(f_add, op_add(&args[0], &args[1]))
NATIVE(f_sub, op_sub(&args[0], &args[1]))
NATIVE(f_xy, kval_cstr(num_arg(args, n, 0) < 5 ? "x" : "y"))
NATIVE(f_boom, kval_error("TypeError: boom"))
NATIVE(f_null, kval_null())
NATIVE(f_cmp_asc, kval_number(op_compare(&args[0], &args[1])))
NATIVE(f_cmp_desc, kval_number(-op_compare(&args[0], &args[1])))
NATIVE(f_cmp_sub, op_sub(&args[1], &args[0]))
NATIVE(f_cmp_str, kval_cstr(op_compare(&args[0], &args[1]) <= 0 ? "-1" : "1"))
NATIVE(f_key_is_b, kval_bool(n > 1 && kval_kind(&args[1]) == KV_STRING &&
                             strcmp(kval_str_ptr(&args[1]), "b") == 0))
NATIVE(f_idx_gt1, kval_bool(num_arg(args, n, 1) > 1))
NATIVE(f_v_plus_k, op_add(&args[0], &args[1]))
NATIVE(f_first_char, kval_str_substr16(&args[0], 0, 1))
NATIVE(f_ident, kval_copy(&args[0]))

/* a comparator on length() */
static kval
f_by_len(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    kval a, b, r;

    (void)vm;
    (void)data;
    record(args, n);
    a = callv("length", &args[0], 1);
    b = callv("length", &args[1], 1);
    r = kval_number(op_compare(&a, &b));
    kval_free(a);
    kval_free(b);
    return r;
}

static kval
f_pair(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    kval a = kval_array();
    (void)vm;
    (void)data;
    record(args, n);
    for (size_t i = 0; i < n; i++)
        a = kval_array_append(a, kval_copy(&args[i]));
    return a;
}

/* reduce(acc + v * i) */
static kval
f_weighted(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    record(args, n);
    return kval_number(num_arg(args, n, 0) +
                       num_arg(args, n, 1) * num_arg(args, n, 2));
}

/* a comparator on the "age" member of maps */
static kval
f_by_age(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    record(args, n);
    return kval_number(op_compare(kval_map_get_str(&args[0], "age"),
                                  kval_map_get_str(&args[1], "age")));
}

/* fails on the third call: errors must stop the iteration */
static kval
f_fail3(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    record(args, n);
    if (calls >= 3)
        return kval_error("TypeError: third call");
    return kval_number(op_compare(&args[0], &args[1]));
}

static kval
fnv(kval_call_fn *f, unsigned kinds)
{
    static const char *const params[] = {"a", "b", "c", "d"};
    return kval_func_new(f, NULL, NULL, kinds, "test", params, 4);
}

static kval
fn(kval_call_fn *f)
{
    return fnv(f, KV_FN_FUNCTION);
}

/* Call NAME(J(recv), F, rest...) where REST is a JSON array of more args */
static kval
callf(const char *name, const char *recv, kval_call_fn *f, const char *rest)
{
    kval argv[8], fv = fn(f), r = J(recv), more = J(rest ? rest : "[]");
    size_t n = 2;

    argv[0] = r;
    argv[1] = fv;
    for (size_t i = 0; i < kval_array_len(&more) && n < 8; i++)
        argv[n++] = *kval_array_get(&more, i);
    kval out = callv(name, argv, n);
    kval_free(fv);
    kval_free(r);
    kval_free(more);
    return out;
}

/* ---- table-driven cases without function arguments ---- */

struct tcase {
    const char *fn;
    const char *args;           /* JSON array of arguments */
    const char *want;           /* JSON, or "!error message" */
};

static const struct tcase cases[] = {
    /* all/any/... on non-collections and empty collections */
    {"all", "[[]]", "true"},
    {"all", "[{}]", "true"},
    {"all", "[null]", "!TypeError: only works on collections"},
    {"all", "[\"abc\"]", "!TypeError: only works on collections"},
    {"notall", "[[]]", "false"},
    {"notall", "[{}]", "false"},
    {"notall", "[null]", "!TypeError: only works on collections"},
    {"any", "[[]]", "false"},
    {"any", "[{}]", "false"},
    {"any", "[null]", "!TypeError: only works on collections"},
    {"none", "[[]]", "true"},
    {"none", "[{}]", "true"},
    {"none", "[5]", "!TypeError: only works on collections"},
    /* a missing function is called: an error on a non-empty collection */
    {"all", "[[1]]", "!TypeError: null is not a function"},
    {"any", "[[1], 5]", "!TypeError: 5 is not a function"},

    /* append */
    {"append", "[[\"a\",\"b\"],[\"c\",\"a\"]]", "[\"a\",\"b\",\"c\",\"a\"]"},
    {"append", "[[\"a\",\"b\"],10,11]", "[\"a\",\"b\",10,11]"},
    {"append", "[10,11]", "[10,11]"},
    {"append", "[[3,4,5],[6]]", "[3,4,5,6]"},
    {"append", "[[3,4,5],[[]]]", "[3,4,5,[]]"},
    {"append", "[null,[]]", "[null]"},
    {"append", "[null]", "[null]"},
    {"append", "[[],[]]", "[]"},
    {"append", "[[]]", "[]"},
    {"append", "[[],[[]]]", "[[]]"},
    {"append", "[[\"a\"],\"b\"]", "[\"a\",\"b\"]"},
    {"append", "[[{\"0\":\"a\"},\"b\"]]", "[{\"0\":\"a\"},\"b\"]"},
    {"append", "[[[\"a\"]],\"b\"]", "[[\"a\"],\"b\"]"},
    {"append", "[null,\"b\"]", "[null,\"b\"]"},
    {"append", "[[null],\"b\"]", "[null,\"b\"]"},
    {"append", "[[],\"b\"]", "[\"b\"]"},
    {"append", "[[1,2],3]", "[1,2,3]"},
    {"append", "[[1],[2,3]]", "[1,2,3]"},
    {"append", "[[1],[[2]]]", "[1,[2]]"},
    {"append", "[\"a\",\"b\"]", "[\"a\",\"b\"]"},
    {"append", "[[1],2,[3,4],5]", "[1,2,3,4,5]"},
    {"append", "[[1],2,3,4,5,6]", "[1,2,3,4,5,6]"},
    {"append", "[]", "[]"},
    {"append", "[{\"a\":1},{\"b\":2}]", "[{\"a\":1},{\"b\":2}]"},

    /* collect without a function groups by identity */
    {"collect", "[[1,2,2,3,3,3]]", "{\"1\":[1],\"2\":[2,2],\"3\":[3,3,3]}"},
    {"collect", "[[]]", "{}"},
    {"collect", "[null]", "!TypeError: only works on collections"},
    {"collect", "[[\"b\",\"a\",\"b\",10,2]]",
     "{\"2\":[2],\"10\":[10],\"b\":[\"b\",\"b\"],\"a\":[\"a\"]}"},
    {"collect", "[[1,\"1\",true,\"true\"]]",
     "{\"1\":[1,\"1\"],\"true\":[true,\"true\"]}"},
    {"collect", "[[[1,2],\"1,2\",{},{\"a\":1}]]",
     "{\"1,2\":[[1,2],\"1,2\"],\"[object Object]\":[{},{\"a\":1}]}"},
    {"collect", "[{\"x\":\"k\",\"y\":\"k\",\"z\":\"j\"}]",
     "{\"k\":[\"k\",\"k\"],\"j\":[\"j\"]}"},

    /* filter and map default to the identity */
    {"filter", "[[0,1,\"\",\"a\",null,false,[],{}]]", "[1,\"a\",[],{}]"},
    {"filter", "[{\"a\":0,\"b\":2}]", "{\"b\":2}"},
    {"map", "[[3,4,null]]", "[3,4,null]"},
    {"map", "[[]]", "[]"},
    {"map", "[{}]", "{}"},
    {"map", "[null]", "!TypeError: only works on collections"},
    {"map", "[\"012\"]", "!TypeError: only works on collections"},
    {"filter", "[true]", "!TypeError: only works on collections"},

    /* head, tail */
    {"head", "[[3,4,5]]", "3"},
    {"head", "[[null,{}]]", "null"},
    {"head", "[\"string\"]", "\"string\""},
    {"head", "[{\"0\":null}]", "{\"0\":null}"},
    {"head", "[[]]", "null"},
    {"head", "[]", "null"},
    {"head", "[[[1,2],3]]", "[1,2]"},
    {"tail", "[[3,4,5]]", "[4,5]"},
    {"tail", "[{\"a\":1,\"b\":2}]", "[]"},
    {"tail", "[\"string\"]", "[]"},
    {"tail", "[[]]", "[]"},
    {"tail", "[[1]]", "[]"},
    {"tail", "[null]", "[]"},

    /* index */
    {"index", "[[3,4,5],5]", "2"},
    {"index", "[[3,4,5],6]", "-1"},
    {"index", "[[0,null],null]", "1"},
    {"index", "[[[[0],0],[0,[0]],[[0],0],[0,[0]]],[0,[0]]]", "1"},
    {"index", "[[[1],{\"a\":2},[1]],{\"a\":2}]", "1"},
    {"index", "[[1,\"1\"],\"1\"]", "1"},
    {"index", "[[]]", "-1"},
    {"index", "[{\"a\":1}]", "!TypeError: only works on Arrays"},
    {"index", "[\"abc\",\"b\"]", "!TypeError: only works on Arrays"},

    /* join */
    {"join", "[[3,4,5],\";\"]", "\"3;4;5\""},
    {"join", "[[3,4,5]]", "\"3,4,5\""},
    {"join", "[[3,4,5],null]", "\"3,4,5\""},
    {"join", "[null]", "\"null\""},
    {"join", "[5]", "\"5\""},
    {"join", "[{\"a\":1}]", "\"[Map]\""},
    {"join", "[[5,3,9,1,7],\"\"]", "\"53917\""},
    {"join", "[[5,3,9,1,7],\" + \"]", "\"5 + 3 + 9 + 1 + 7\""},
    {"join", "[[],\"-\"]", "\"\""},
    {"join", "[[\"a\",[\"b\"],{\"c\":1},true,null],\"/\"]",
     "\"a/[Array]/[Map]/true/null\""},
    {"join", "[[\"solo\"],\",\"]", "\"solo\""},
    {"join", "[[1,2],0]", "\"102\""},
    {"join", "[[1.5,\"\\u00e9\"],\"\\ud83d\\ude00\"]",
     "\"1.5\\ud83d\\ude00\\u00e9\""},

    /* length */
    {"length", "[[3,4,5]]", "3"},
    {"length", "[[null,7]]", "2"},
    {"length", "[\"\\\"\"]", "1"},
    {"length", "[\"\"]", "0"},
    {"length", "[\"\\u00e9t\\u00e9\"]", "3"},
    {"length", "[\"\\ud83d\\ude00\"]", "2"},
    {"length", "[{\"a\":1,\"b\":2}]", "2"},
    {"length", "[null]", "0"},
    {"length", "[42]", "0"},
    {"length", "[true]", "0"},
    {"length", "[]", "0"},

    /* isEmpty */
    {"isEmpty", "[null]", "true"},
    {"isEmpty", "[]", "true"},
    {"isEmpty", "[0]", "true"},
    {"isEmpty", "[1]", "true"},
    {"isEmpty", "[true]", "true"},
    {"isEmpty", "[false]", "true"},
    {"isEmpty", "[[]]", "true"},
    {"isEmpty", "[[1,2]]", "false"},
    {"isEmpty", "[[null]]", "false"},
    {"isEmpty", "[{}]", "true"},
    {"isEmpty", "[{\"a\":1}]", "false"},
    {"isEmpty", "[\"\"]", "true"},
    {"isEmpty", "[\" \"]", "false"},

    /* pairwise errors */
    {"pairwise", "[{}]",
     "!TypeError: The .pairwise() operator cannot be called on [Map]"},
    {"pairwise", "[\"ab\"]",
     "!TypeError: The .pairwise() operator cannot be called on ab"},
    {"pairwise", "[[[]]]",
     "!TypeError: The .pairwise() operator needs a longer array"},
    {"pairwise", "[[]]",
     "!TypeError: The .pairwise() operator needs a longer array"},
    {"pairwise", "[[[],[]]]",
     "!TypeError: The .pairwise() operator cannot use null as a function"},
    {"pairwise", "[[[],[]],\"f\"]",
     "!TypeError: The .pairwise() operator cannot use f as a function"},

    /* reduce without a usable function */
    {"reduce", "[42]", "!TypeError: only works on Arrays"},
    {"reduce", "[{\"a\":1}]", "!TypeError: only works on Arrays"},
    {"reduce", "[[]]", "0"},
    {"reduce", "[[],null]", "0"},
    {"reduce", "[[],null,\"init\"]", "\"init\""},
    {"reduce", "[[],null,null]", "null"},
    {"reduce", "[[42]]", "!Error: The .reduce() operator cannot use null as "
     "a function"},
    {"reduce", "[[42],5]", "!Error: The .reduce() operator cannot use 5 as "
     "a function"},
    {"reduce", "[[1,2],\"x\",0]", "!Error: The .reduce() operator cannot "
     "use x as a function"},
    {"reduce", "[[42],null,1]", "!TypeError: null is not a function"},

    /* reverse */
    {"reverse", "[[3,4,5]]", "[5,4,3]"},
    {"reverse", "[[]]", "[]"},
    {"reverse", "[[[1],{\"a\":null}]]", "[{\"a\":null},[1]]"},
    {"reverse", "[42]", "!TypeError: only works on Arrays"},
    {"reverse", "[\"abc\"]", "!TypeError: only works on Arrays"},

    /* slice */
    {"slice", "[[\"corn\",\"tomato\",\"tomato\",\"tomato\",\"sprouts\","
     "\"lettuce\",\"sprouts\"],1,4]",
     "[\"tomato\",\"tomato\",\"tomato\",\"sprouts\"]"},
    {"slice", "[[\"corn\",\"tomato\",\"tomato\",\"tomato\"],2,0]",
     "[\"corn\",\"tomato\",\"tomato\"]"},
    {"slice", "[[\"corn\",\"tomato\",\"tomato\",\"tomato\"],2]",
     "[\"corn\",\"tomato\",\"tomato\"]"},
    {"slice", "[[\"corn\",\"tomato\"],0,0]", "[\"corn\"]"},
    {"slice", "[[\"corn\",\"tomato\"],null,null]", "[\"corn\"]"},
    {"slice", "[[],0,0]", "[]"},
    {"slice", "[[]]", "[]"},
    {"slice", "[[1,2]]", "[1,2]"},
    {"slice", "[{\"0\":\"0\"},0,0]", "!TypeError: only works on Arrays"},
    {"slice", "[[1,2],\"x\"]",
     "!TypeError: The .slice() operator cannot use x as an index"},
    {"slice", "[[1,2],{\"a\":1}]", "[1,2]"},
    {"slice", "[[1,2],1,\"y\"]",
     "!TypeError: The .slice() operator cannot use y as the other index"},
    {"slice", "[[1,2,3,4,5,6,7],14]", "[]"},
    {"slice", "[[1,2,3,4,5,6,7],7]", "[1,2,3,4,5,6,7]"},
    {"slice", "[[1,2,3,4,5,6,7],2,-1]", "[]"},
    {"slice", "[[1,2,3,4,5,6,7],-1]", "[]"},
    {"slice", "[[1,2,3,4,5],-3]", "[1,2,3]"},
    {"slice", "[[1,2,3,4,5],\"1\",\"2\"]", "[2,3]"},
    {"slice", "[[1,2,3,4,5],1.7,3.2]", "[2,3,4]"},
    {"slice", "[[5,3,9,1,7],2]", "[5,3,9]"},
    {"slice", "[[5,3,9,1,7],1,3]", "[3,9,1]"},
    {"slice", "[[5,3,9,1,7],3,1]", "[3,9,1]"},
    {"slice", "[[5,3,9,1,7],0,0]", "[5]"},
    {"slice", "[[5,3,9,1,7],4,4]", "[7]"},
    {"slice", "[[5,3,9,1,7],9]", "[]"},
    {"slice", "[[5,3,9,1,7],2,99]", "[]"},
    {"slice", "[[5,3,9,1,7],4,5]", "[]"},

    /* splice */
    {"splice", "[[\"corn\",\"tomato\",\"tomato\",\"tomato\",\"sprouts\","
     "\"lettuce\",\"sprouts\"],1,4]", "[\"corn\",\"lettuce\",\"sprouts\"]"},
    {"splice", "[[\"corn\",\"tomato\",\"tomato\",\"sprouts\"],2,0,"
     "[\"corn\",\"tomato\"]]",
     "[\"corn\",\"tomato\",\"corn\",\"tomato\",\"tomato\",\"sprouts\"]"},
    {"splice", "[[\"corn\",\"tomato\",\"tomato\"],2,0,\"liver\"]",
     "[\"corn\",\"tomato\",\"liver\",\"tomato\"]"},
    {"splice", "[[\"corn\",\"tomato\",\"tomato\",\"tomato\",\"sprouts\"],"
     "2,2,\"liver\"]", "[\"corn\",\"tomato\",\"liver\",\"sprouts\"]"},
    {"splice", "[[\"corn\",\"tomato\",\"x\"],1,10]", "[\"corn\"]"},
    {"splice", "[[\"corn\",\"tomato\",\"x\"],1,10,\"liver\"]",
     "[\"corn\",\"liver\"]"},
    {"splice", "[[\"corn\",\"tomato\",\"x\"],1,10,[]]", "[\"corn\"]"},
    {"splice", "[[],0,1]", "[]"},
    {"splice", "[[],null]", "[]"},
    {"splice", "[]", "!TypeError: only works on Arrays"},
    {"splice", "[{\"a\":1},0,1]", "!TypeError: only works on Arrays"},
    {"splice", "[[1,2],\"x\",1]",
     "!TypeError: The .splice() operator cannot use xas an index"},
    {"splice", "[[1,2],1,\"many\"]",
     "!TypeError: The .splice() operator cannot use manyas a number of "
     "elements"},
    {"splice", "[[1,2,3],0,0]", "[1,2,3]"},
    {"splice", "[[1,2,3],0,3]", "[]"},
    {"splice", "[[1,2,3],0,999]", "[]"},
    {"splice", "[[1,2,3],0,-1]", "[]"},
    {"splice", "[[1,2,3],0,-999]", "[]"},
    {"splice", "[[1,2,3],-1,0]", "[1,2,3]"},
    {"splice", "[[1,2,3],-999,0]", "[1,2,3]"},
    {"splice", "[[1,2,3],99,1]", "[1,2]"},
    {"splice", "[[1,2,3],1]", "[1,2,3]"},
    {"splice", "[[5,3,9,1,7],1,2]", "[5,1,7]"},
    {"splice", "[[5,3,9,1,7],0,0,100]", "[100,5,3,9,1,7]"},
    {"splice", "[[5,3,9,1,7],2,1,[\"x\",\"y\"]]",
     "[5,3,\"x\",\"y\",1,7]"},
    {"splice", "[[5,3,9,1,7],3,10]", "[5,3,9]"},
    {"splice", "[[5,3,9,1,7],4,1,[[0]]]", "[5,3,9,1,[0]]"},
    {"splice", "[[5,3,9,1,7],5,0,\"end\"]", "[5,3,9,1,\"end\",7]"},
    {"splice", "[[1,2,3],1,1,null]", "[1,null,3]"},

    /* delete */
    {"delete", "[{\"colors\":\"many\",\"pi\":[3,1,4],\"foo\":{\"bar\":"
     "{\"10\":\"I like cheese\"}}},[\"foo\",\"bar\",10]]",
     "{\"colors\":\"many\",\"pi\":[3,1,4],\"foo\":{\"bar\":{}}}"},
    {"delete", "[{\"0\":null},\"1\"]", "{\"0\":null}"},
    {"delete", "[{\"a\":1,\"b\":2},\"a\"]", "{\"b\":2}"},
    {"delete", "[{\"a\":1,\"b\":2},[\"a\"]]", "{\"b\":2}"},
    {"delete", "[{\"a\":{\"b\":1}},[\"missing\",\"key\"]]",
     "{\"a\":{\"b\":1}}"},
    {"delete", "[{\"a\":{\"b\":1}},[\"a\",\"b\",\"c\"]]",
     "{\"a\":{\"b\":1}}"},
    {"delete", "[{\"fruit\":{\"apple\":3,\"pear\":0}},[\"fruit\",\"pear\"]]",
     "{\"fruit\":{\"apple\":3}}"},
    {"delete", "[{\"null\":1,\"a\":2}]", "{\"a\":2}"},
    {"delete", "[{\"null\":1,\"a\":2},null]", "{\"a\":2}"},
    {"delete", "[{\"undefined\":1,\"a\":2},[]]", "{\"a\":2}"},
    {"delete", "[{\"a\":[1,2,3]},[\"a\",1]]", "{\"a\":[1,null,3]}"},
    {"delete", "[[1,2,3],\"0\"]", "[null,2,3]"},
    {"delete", "[[1,2,3],5]", "[1,2,3]"},
    {"delete", "[[1,2,3],\"x\"]", "[1,2,3]"},
    {"delete", "[[{\"a\":1,\"b\":2}],[0,\"a\"]]", "[{\"b\":2}]"},
    {"delete", "[\"str\",\"s\"]", "\"str\""},
    {"delete", "[null,\"a\"]", "null"},
    {"delete", "[5]", "5"},

    /* keys, values */
    {"keys", "[{\"colors\":\"many\",\"pi\":[3,1,4],\"foo\":{\"bar\":"
     "{\"10\":\"x\"}}}]", "[\"colors\",\"pi\",\"foo\"]"},
    {"keys", "[{\"colors\":\"many\",\"foo\":{\"bar\":{\"10\":\"x\"}}},"
     "[\"foo\",\"bar\"]]", "[\"10\"]"},
    {"keys", "[{\"pi\":[3,1,4,1,5,9,3]},[\"pi\"]]",
     "[\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]"},
    {"keys", "[{\"foo\":{}},[\"foo\",\"not\"]]", "[]"},
    {"keys", "[[\"wat\",{\"da\":\"heck\"}]]", "[\"0\",\"1\"]"},
    {"keys", "[null]", "[]"},
    {"keys", "[\"abc\"]", "[]"},
    {"keys", "[{\"a\":\"b\"},\"not-found\"]", "[]"},
    {"keys", "[{\"a\":\"xyz\"},\"a\"]", "[\"0\",\"1\",\"2\"]"},
    {"keys", "[{\"a\":1},\"a\"]", "[]"},
    {"keys", "[{\"a\":1,\"b\":2},0]", "[\"a\",\"b\"]"},
    {"keys", "[{\"a\":1,\"b\":2},\"\"]", "[\"a\",\"b\"]"},
    {"keys", "[{\"a\":1,\"b\":2},[]]", "[]"},
    {"keys", "[{\"b\":1,\"10\":2,\"a\":3,\"2\":4}]",
     "[\"2\",\"10\",\"b\",\"a\"]"},
    {"keys", "[{\"fruit\":{\"apple\":3,\"pear\":0},\"veg\":{\"kale\":2}},"
     "\"veg\"]", "[\"kale\"]"},
    {"values", "[{\"colors\":\"many\",\"pi\":[3,1],\"foo\":{\"bar\":1}}]",
     "[\"many\",[3,1],{\"bar\":1}]"},
    {"values", "[{\"foo\":{\"bar\":{\"10\":\"I like cheese\"}}},"
     "[\"foo\",\"bar\"]]", "[\"I like cheese\"]"},
    {"values", "[{\"pi\":[3,1,4,1,5,9,3]},[\"pi\"]]", "[3,1,4,1,5,9,3]"},
    {"values", "[{\"foo\":{}},[\"foo\",\"not\"]]", "[]"},
    {"values", "[[\"an\",\"array\"]]", "[\"an\",\"array\"]"},
    {"values", "[null]", "[]"},
    {"values", "[{\"b\":1,\"10\":2,\"a\":3,\"2\":4}]", "[4,2,1,3]"},
    {"values", "[{\"s\":\"h\\u00e9\"},\"s\"]", "[\"h\",\"\\u00e9\"]"},
    {"keys", "[{\"s\":\"\\ud83d\\ude00\"},\"s\"]", "[\"0\",\"1\"]"},
    {"values", "[{\"a\":{\"x\":null}},\"a\"]", "[null]"},

    /* intersection, union, difference, has */
    {"intersection", "[[[2],2,1,null],[[2],\"1\",2,null]]", "[[2],2,null]"},
    {"intersection", "[[[0],{}],[[1],[]]]", "[]"},
    {"intersection", "[[]]", "[]"},
    {"intersection", "[[{}]]", "[]"},
    {"intersection", "[{},[{}]]", "[{}]"},
    {"intersection", "[[1,1,2,2,3],[2,1]]", "[1,2]"},
    {"intersection", "[[1,2,3,4],[4,2,6]]", "[2,4]"},
    {"intersection", "[[{\"a\":1,\"b\":2}],[{\"b\":2,\"a\":1}]]",
     "[{\"a\":1,\"b\":2}]"},
    {"intersection", "[[0],[-0]]", "[0]"},
    {"union", "[[2],[1,2]]", "[2,1]"},
    {"union", "[[1,2],[1,4]]", "[1,2,4]"},
    {"union", "[[{\"x\":2}],[{\"x\":1}]]", "[{\"x\":2},{\"x\":1}]"},
    {"union", "[[]]", "[]"},
    {"union", "[[],{\"x\":1}]", "[{\"x\":1}]"},
    {"union", "[{\"x\":1},[]]", "[{\"x\":1}]"},
    {"union", "[{\"x\":1}]", "{\"x\":1}"},
    {"union", "[[1,2,3],[3,4,1,5]]", "[1,2,3,4,5]"},
    {"union", "[[{\"a\":1}],[{\"a\":1},{\"b\":2}]]", "[{\"a\":1},{\"b\":2}]"},
    {"union", "[[1,1],[1]]", "[1]"},
    {"union", "[[1,\"1\"],[[1],[\"1\"]]]", "[1,\"1\",[1],[\"1\"]]"},
    {"difference", "[[2,1],[2,3]]", "[1]"},
    {"difference", "[[2,1],2]", "[1]"},
    {"difference", "[[{\"x\":2},{\"x\":1}],[{\"x\":2},{\"x\":3}]]",
     "[{\"x\":1}]"},
    {"difference", "[{\"x\":null},[]]", "[{\"x\":null}]"},
    {"difference", "[{\"x\":null}]", "{\"x\":null}"},
    {"difference", "[[1,2,3,4],[2,4,6]]", "[1,3]"},
    {"difference", "[[1,2,3],2]", "[1,3]"},
    {"difference", "[[1,1,2,3,3],[2]]", "[1,1,3,3]"},
    {"has", "[[1,2,3,4],[4,2]]", "true"},
    {"has", "[[1,2,3,4],[4,5]]", "false"},
    {"has", "[[[null,[1]]],[[null,[1]]]]", "true"},
    {"has", "[[],[]]", "true"},
    {"has", "[[],null]", "false"},
    {"has", "[[]]", "false"},
    {"has", "[[1,2,3],[3,1]]", "true"},
    {"has", "[[1,2,3],[3,9]]", "false"},
    {"has", "[[1],[]]", "true"},
    {"has", "[5,5]", "true"},
    {"has", "[[null],null]", "true"},

    /* once, duplicates, unique */
    {"once", "[[1,2,1,3,4,4]]", "[2,3]"},
    {"once", "[{\"a\":null}]", "{\"a\":null}"},
    {"once", "[[1,null,\"a\"]]", "[1,null,\"a\"]"},
    {"once", "[[1,2,2,3,3,3,4]]", "[1,4]"},
    {"once", "[[\"a\",\"b\",\"a\",\"c\",\"b\",\"a\"]]", "[\"c\"]"},
    {"once", "[[]]", "[]"},
    {"once", "[[\"x\"]]", "[\"x\"]"},
    {"once", "[[true,false,true]]", "[false]"},
    {"once", "[[1,\"1\",2]]", "[2]"},
    {"once", "[[\"b\",3,\"a\",1]]", "[1,3,\"b\",\"a\"]"},
    {"once", "[\"str\"]", "\"str\""},
    {"duplicates", "[[1,2,1,3,4,4]]", "[1,4]"},
    {"duplicates", "[{\"0\":1,\"1\":1}]", "[]"},
    {"duplicates", "[[1,3,null,null,null,3]]", "[3,null]"},
    {"duplicates", "[[1,2,2,3,3,3,4]]", "[2,3]"},
    {"duplicates", "[[\"a\",\"b\",\"a\",\"c\",\"b\",\"a\"]]",
     "[\"a\",\"b\"]"},
    {"duplicates", "[[]]", "[]"},
    {"duplicates", "[[true,false,true]]", "[true]"},
    {"duplicates", "[[\"b\",\"b\",2,2]]", "[2,\"b\"]"},
    {"duplicates", "[[[1],\"1\",{\"a\":1},{\"b\":2}]]", "[[1],{\"a\":1}]"},
    {"unique", "[[1,2,1,[3],[4],[4]]]", "[1,2,[3],[4]]"},
    {"unique", "[{\"0\":1,\"1\":1}]", "{\"0\":1,\"1\":1}"},
    {"unique", "[[3,1,3,2,1,[1],[1]]]", "[3,1,2,[1]]"},
    {"unique", "[[1,\"1\",true,\"true\",null,null]]",
     "[1,\"1\",true,\"true\",null]"},
    {"unique", "[[{\"a\":1,\"b\":[2]},{\"b\":[2],\"a\":1},{\"a\":1}]]",
     "[{\"a\":1,\"b\":[2]},{\"a\":1}]"},
    {"unique", "[[]]", "[]"},
    {"unique", "[null]", "null"},

    /* get */
    {"get", "[{\"foo\":{\"bar\":{\"10\":\"I like cheese\"}}},"
     "[\"foo\",\"bar\",\"10\"]]", "\"I like cheese\""},
    {"get", "[{\"colors\":\"many\"},\"colors\"]", "\"many\""},
    {"get", "[{\"pi\":[3,1,4]},[\"pi\",2]]", "4"},
    {"get", "[[\"a\",\"b\",{\"c\":[\"d\",\"e\"]}],[2,\"c\",1]]", "\"e\""},
    {"get", "[[\"a\",\"b\",{\"c\":[\"d\",\"e\"]}],[\"2\",\"c\",\"1\"]]",
     "\"e\""},
    {"get", "[[\"a\",\"b\"],\"01\"]", "null"},
    {"get", "[[\"a\",\"b\"],-1]", "null"},
    {"get", "[[\"a\",\"b\"],2]", "null"},
    {"get", "[{\"nope\":1},[\"nope\",\"deeper\"]]", "null"},
    {"get", "[{\"a\":1},[]]", "null"},
    {"get", "[{\"null\":1}]", "1"},
    {"get", "[\"abc\",0]", "null"},
    {"get", "[null,\"a\"]", "null"},
    {"get", "[{\"1\":\"one\"},1]", "\"one\""},
    {"get", "[{\"1.5\":\"x\"},1.5]", "\"x\""},
    {"get", "[{\"true\":\"t\"},true]", "\"t\""},

    /* set (lodash _.set) */
    {"set", "[{\"colors\":\"many\",\"foo\":{\"bar\":{\"10\":\"x\"}}},"
     "[\"foo\",\"baz\"],\"qux\"]",
     "{\"colors\":\"many\",\"foo\":{\"bar\":{\"10\":\"x\"},\"baz\":\"qux\"}}"},
    {"set", "[{\"colors\":\"many\"},\"flop\",12]",
     "{\"colors\":\"many\",\"flop\":12}"},
    {"set", "[{\"colors\":\"many\",\"x\":1},\"colors\",[\"R\",\"G\",\"B\"]]",
     "{\"colors\":[\"R\",\"G\",\"B\"],\"x\":1}"},
    {"set", "[{\"foo\":{\"bar\":{\"10\":\"x\"}}},[\"foo\",\"bar\",\"10\"],"
     "\"modified\"]", "{\"foo\":{\"bar\":{\"10\":\"modified\"}}}"},
    {"set", "[{\"pi\":[3,1,4,1,5]},[\"pi\",4,\"a\"],\"wat?\"]",
     "{\"pi\":[3,1,4,1,{\"a\":\"wat?\"}]}"},
    {"set", "[[\"a\",\"b\",\"c\"],[1],\"wat?\"]", "[\"a\",\"wat?\",\"c\"]"},
    {"set", "[[\"a\",\"b\",\"c\"],[\"1\"],\"wat?\"]",
     "[\"a\",\"wat?\",\"c\"]"},
    {"set", "[[{\"a\":[{\"b\":1}]}],[0,\"a\",0,\"b\"],\"wat?\"]",
     "[{\"a\":[{\"b\":\"wat?\"}]}]"},
    {"set", "[{\"a\":1},[\"b\",\"c\"],2]", "{\"a\":1,\"b\":{\"c\":2}}"},
    {"set", "[{\"a\":{\"b\":1}},[\"a\",\"b\"],5]", "{\"a\":{\"b\":5}}"},
    {"set", "[{},\"k\",\"v\"]", "{\"k\":\"v\"}"},
    {"set", "[null,[\"rows\",\"0\",\"c\"],\"x\"]",
     "{\"rows\":[{\"c\":\"x\"}]}"},
    {"set", "[null,\"a\",1]", "{\"a\":1}"},
    {"set", "[\"str\",\"a\",1]", "{\"a\":1}"},
    {"set", "[{\"langs\":[\"en\"]},[\"langs\",1],\"fr\"]",
     "{\"langs\":[\"en\",\"fr\"]}"},
    {"set", "[[{\"id\":\"a\",\"qty\":1},{\"id\":\"b\",\"qty\":2}],[1,\"qty\"],"
     "20]", "[{\"id\":\"a\",\"qty\":1},{\"id\":\"b\",\"qty\":20}]"},
    {"set", "[{\"a\":5},[\"a\",\"b\"],1]", "{\"a\":{\"b\":1}}"},
    {"set", "[{\"a\":5},[\"a\",\"01\"],1]", "{\"a\":{\"01\":1}}"},
    {"set", "[{\"a\":1},[],2]", "{\"a\":1}"},
    {"set", "[[1],[3],2]", "[1,null,null,2]"},
    {"set", "[[1],[\"x\"],2]", "{\"0\":1,\"x\":2}"},
    {"set", "[{},[\"a\",\"99999999\"],2]", "{\"a\":{\"99999999\":2}}"},
    {"set", "[{\"a\":1},null,2]", "{\"a\":1,\"null\":2}"},

    /* put */
    {"put", "[{\"key\":5},{\"foo\":\"bar\"}]", "{\"key\":5,\"foo\":\"bar\"}"},
    {"put", "[{\"key\":5},[],{\"foo\":\"bar\"}]",
     "{\"key\":5,\"foo\":\"bar\"}"},
    {"put", "[{\"key\":5},[\"baz\"],{\"foo\":\"bar\"}]",
     "{\"key\":5,\"baz\":{\"foo\":\"bar\"}}"},
    {"put", "[{\"key\":5},[\"qux\"],\"wat?\"]",
     "{\"key\":5,\"qux\":\"wat?\"}"},
    {"put", "[{\"key\":5},[null],\"wat?\"]",
     "{\"key\":5,\"null\":\"wat?\"}"},
    {"put", "[{\"colors\":\"many\",\"foo\":{\"bar\":{\"10\":\"x\"}}},"
     "[\"foo\"],{\"baz\":\"qux\"}]",
     "{\"colors\":\"many\",\"foo\":{\"baz\":\"qux\"}}"},
    {"put", "[{\"foo\":{\"bar\":{\"10\":\"x\"}}},[\"foo\",\"bar\",11],"
     "\"wat?\"]", "{\"foo\":{\"bar\":{\"10\":\"x\",\"11\":\"wat?\"}}}"},
    {"put", "[{\"foo\":{\"bar\":{\"10\":\"x\"}}},[\"foo\",\"bar\",10],"
     "\"no cheese\"]", "{\"foo\":{\"bar\":{\"10\":\"no cheese\"}}}"},
    {"put", "[{\"colors\":\"many\"},{\"flop\":12}]",
     "{\"colors\":\"many\",\"flop\":12}"},
    {"put", "[{},[\"key1\"],\"value2\"]", "{\"key1\":\"value2\"}"},
    {"put", "[{},[],{\"key2\":\"value3\"}]", "{\"key2\":\"value3\"}"},
    {"put", "[{\"key\":5},\"foo\",{\"key2\":\"value3\"}]",
     "{\"key\":5,\"foo\":{\"key2\":\"value3\"}}"},
    {"put", "[{\"key\":5},\"key\",7]", "{\"key\":7}"},
    {"put", "[{\"key\":5},[\"key\"],9]", "{\"key\":9}"},
    {"put", "[5,[\"key\"],9]", "5"},
    {"put", "[\"wat\",[\"key\"],9]", "\"wat\""},
    {"put", "[null,[\"key\"],9]", "null"},
    {"put", "[{\"a\":null,\"b\":1}]", "{\"a\":null,\"b\":1}"},
    {"put", "[{},[\"0\",\"0\"],\"foo\"]", "{\"0\":{\"0\":\"foo\"}}"},
    {"put", "[{},[0,1],\"foo\"]", "{\"0\":{\"1\":\"foo\"}}"},
    {"put", "[[],[0,0],\"foo\"]", "[{\"0\":\"foo\"}]"},
    {"put", "[[[\"wat?\"]],[0,0],\"foo\"]", "[[\"foo\"]]"},
    {"put", "[{},[\"a\",\"b\"],[]]", "{\"a\":{\"b\":[]}}"},
    {"put", "[[],[0],[\"foo\"]]", "[[\"foo\"]]"},
    {"put", "[[],[],[\"foo\"]]", "[\"foo\"]"},
    {"put", "[{},\"foo\",[0]]", "{\"foo\":[0]}"},
    {"put", "[{},\"foo\",[\"bar\"]]", "{\"foo\":[\"bar\"]}"},
    {"put", "[[{\"foo\":1},{\"bar\":2}],[1,\"bar\",\"baz\"],4]",
     "[{\"foo\":1},{\"bar\":{\"baz\":4}}]"},
    {"put", "[{\"one\":[2,3]},[\"one\",1],4]", "{\"one\":[2,4]}"},
    {"put", "[{\"one\":[2,3]},[\"one\",\"1\"],4]", "{\"one\":[2,4]}"},
    {"put", "[{\"one\":[2,3]},[\"one\",\"2\"],4]", "{\"one\":[2,3,4]}"},
    {"put", "[{\"one\":[2,3]},[\"one\",\"3\"],4]",
     "{\"one\":{\"0\":2,\"1\":3,\"3\":4}}"},
    {"put", "[{\"one\":[2,3]},[\"one\",\"foo\"],4]",
     "{\"one\":{\"0\":2,\"1\":3,\"foo\":4}}"},
    {"put", "[{\"one\":[2,3]},[\"one\",\"foo\",\"0\"],4]",
     "{\"one\":{\"0\":2,\"1\":3,\"foo\":{\"0\":4}}}"},
    {"put", "[{\"a\":1},{\"b\":2,\"a\":9}]", "{\"a\":9,\"b\":2}"},
    {"put", "[{\"a\":1},\"b\",2]", "{\"a\":1,\"b\":2}"},
    {"put", "[{\"a\":1},[\"a\"],{\"x\":1}]", "{\"a\":{\"x\":1}}"},
    {"put", "[{},[\"p\",\"q\",\"r\"],true]", "{\"p\":{\"q\":{\"r\":true}}}"},
    {"put", "[{\"a\":{\"b\":1}},[\"a\"],{\"c\":2}]", "{\"a\":{\"c\":2}}"},
    {"put", "[{\"list\":[1,2]},[\"list\",1],20]", "{\"list\":[1,20]}"},
    {"put", "[[1,2,3],[9]]", "[9,2,3]"},
    {"put", "[[1],[],[7,8]]", "[7,8]"},
    {"put", "[[1,2],{\"a\":1}]", "{\"a\":1}"},
    {"put", "[{\"a\":1},[1,2]]", "[1,2]"},
    {"put", "[{\"a\":1},5]", "5"},
    {"put", "[{\"a\":\"s\"},[\"a\",\"b\"],1]", "{\"a\":{\"b\":1}}"},
    {"put", "[[1,2],[\"x\"],3]", "{\"0\":1,\"1\":2,\"x\":3}"},
    {"put", "[[1,2],[2],3]", "[1,2,3]"},
    {"put", "[{\"a\":1},[\"b\"],null]", "{\"a\":1,\"b\":null}"},

    /* sort with built-in orders */
    {"sort", "[null,\"numeric\"]", "null"},
    {"sort", "[\"str\"]", "\"str\""},
    {"sort", "[[5,3,4,1,12]]", "[1,12,3,4,5]"},
    {"sort", "[[5,3,4,1,12],\"default\"]", "[1,12,3,4,5]"},
    {"sort", "[[5,3,4,1,12],\"bogus\"]", "[1,12,3,4,5]"},
    {"sort", "[[5,3,4,1,12],\"reverse\"]", "[5,4,3,12,1]"},
    {"sort", "[[5,3,4,1,12],\"numeric\"]", "[1,3,4,5,12]"},
    {"sort", "[[5,3,4,1,12],\"ciremun\"]", "[12,5,4,3,1]"},
    {"sort", "[[\"pear\",\"Apple\",\"banana\",10,9,\"100\",\"apple\"]]",
     "[10,\"100\",9,\"Apple\",\"apple\",\"banana\",\"pear\"]"},
    {"sort", "[[\"pear\",\"Apple\",\"banana\",10,9,\"100\",\"apple\"],"
     "\"reverse\"]",
     "[\"pear\",\"banana\",\"apple\",\"Apple\",9,\"100\",10]"},
    {"sort", "[[10,2,33,4.5,-1],\"numeric\"]", "[-1,2,4.5,10,33]"},
    {"sort", "[[10,2,33,4.5,-1],\"ciremun\"]", "[33,10,4.5,2,-1]"},
    {"sort", "[[10,2,33,4.5,-1]]", "[-1,10,2,33,4.5]"},
    {"sort", "[[]]", "[]"},
    {"sort", "[[1]]", "[1]"},
    {"sort", "[[\"10\",9,\"8\",true],\"numeric\"]", "[true,\"8\",9,\"10\"]"},
    /* stable: equal keys keep their order */
    {"sort", "[[1,\"1\",1.0,\"01\"],\"numeric\"]", "[1,\"1\",1,\"01\"]"},
    {"sort", "[[\"b\",[1],{\"a\":1},[2]]]",
     "[[1],[2],{\"a\":1},\"b\"]"},
    /* UTF-16 order: U+FF61 sorts after the surrogate pair of U+1F600 */
    {"sort", "[[\"\\uff61\",\"\\ud83d\\ude00\",\"a\"]]",
     "[\"a\",\"\\ud83d\\ude00\",\"\\uff61\"]"},
};

static void
test_table(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[512];
        snprintf(name, sizeof name, "%s(%s)", cases[i].fn, cases[i].args);
        expect(callj(cases[i].fn, cases[i].args), cases[i].want, name);
    }
}

/* ---- cases with function arguments ---- */

static void
test_quantifiers(void)
{
    expect(callf("all", "[3,4,5]", f_lt10, NULL), "true", "all < 10");
    expect(callf("all", "[3,4,5]", f_gt3, NULL), "false", "all > 3");
    expect(callf("all", "[3,4,5]", f_gt10, NULL), "false", "all > 10");
    expect(callf("notall", "[3,4,5]", f_lt10, NULL), "false", "notall < 10");
    expect(callf("notall", "[3,4,5]", f_gt3, NULL), "true", "notall > 3");
    expect(callf("notall", "[3,4,5]", f_gt10, NULL), "true", "notall > 10");
    expect(callf("any", "[3,4,5]", f_lt10, NULL), "true", "any < 10");
    expect(callf("any", "[3,4,5]", f_gt3, NULL), "true", "any > 3");
    expect(callf("any", "[3,4,5]", f_gt10, NULL), "false", "any > 10");
    expect(callf("none", "[3,4,5]", f_lt10, NULL), "false", "none < 10");
    expect(callf("none", "[3,4,5]", f_gt3, NULL), "false", "none > 3");
    expect(callf("none", "[3,4,5]", f_gt10, NULL), "true", "none > 10");

    /* conformance arr_higher predicates */
    expect(callf("any", "[2,4,6]", f_even, NULL), "true", "any even 246");
    expect(callf("all", "[2,4,6]", f_even, NULL), "true", "all even 246");
    expect(callf("none", "[1,2,3]", f_even, NULL), "false", "none even 123");
    expect(callf("notall", "[1,3]", f_even, NULL), "true", "notall even 13");
    expect(callf("all", "[]", f_even, NULL), "true", "all even []");
    expect(callf("any", "{\"a\":1,\"b\":2}", f_gt3, NULL), "false",
           "any map");
    expect(callf("all", "{\"a\":5,\"b\":20}", f_gt3, NULL), "true",
           "all map");

    /* short-circuit: any stops at the first truthy result */
    calls = 0;
    expect(callf("any", "[1,20,30,40]", f_gt10, NULL), "true", "any stops");
    t_eq_int(calls, 2, "any called until the first match");
    calls = 0;
    expect(callf("all", "[1,20,30,40]", f_gt10, NULL), "false", "all stops");
    t_eq_int(calls, 1, "all stops at the first miss");
    calls = 0;
    expect(callf("all", "[]", f_boom, NULL), "true", "all [] no call");
    t_eq_int(calls, 0, "all on [] calls nothing");

    /* the function gets (value, key, collection) */
    expect(callf("any", "{\"k\":7}", f_null, NULL), "false", "any args");
    t_eq_int(last_n, 3, "iter gets three arguments");
    t_eq_str(kval_str_ptr(&last_args[1]), "k", "map key is passed");
    t_ok(kval_kind(&last_args[2]) == KV_MAP, "collection is passed");
    expect(callf("any", "[5,6]", f_null, NULL), "false", "any args array");
    t_ok(kval_kind(&last_args[1]) == KV_NUMBER &&
         kval_get_number(&last_args[1]) == 1, "array index is a number");

    /* errors propagate */
    expect(callf("all", "[1]", f_boom, NULL), "!TypeError: boom", "all err");
    expect(callf("none", "{\"a\":1}", f_boom, NULL), "!TypeError: boom",
           "none err");
}

static void
test_collect_filter_map(void)
{
    kval a;

    expect(callf("collect", "[7,4,3,5,2,1,6]", f_xy, NULL),
           "{\"y\":[7,5,6],\"x\":[4,3,2,1]}", "collect x/y");
    expect(callf("collect", "[]", f_boom, NULL), "{}", "collect [] no call");
    expect(callf("collect", "[1,2,3,4,5]", f_gt3, NULL),
           "{\"false\":[1,2,3],\"true\":[4,5]}", "collect by boolean");
    expect(callf("collect", "[\"apple\",\"avocado\",\"banana\",\"cherry\","
                 "\"blueberry\"]", f_first_char, NULL),
           "{\"a\":[\"apple\",\"avocado\"],\"b\":[\"banana\",\"blueberry\"],"
           "\"c\":[\"cherry\"]}", "collect first letter");
    expect(callf("collect", "[1,2]", f_boom, NULL), "!TypeError: boom",
           "collect err");
    expect(callf("collect", "[1,2]", f_null, NULL), "{\"null\":[1,2]}",
           "collect null key");

    expect(callf("filter", "[3,4,5]", f_lt5, NULL), "[3,4]", "filter < 5");
    expect(callf("filter", "[3,4,5]", f_gt5, NULL), "[]", "filter > 5");
    expect(callf("filter", "{\"a\":1,\"b\":2,\"c\":3}", f_odd, NULL),
           "{\"a\":1,\"c\":3}", "filter map odd");
    expect(callf("filter", "{\"a\":1,\"b\":2,\"c\":3}", f_key_is_b, NULL),
           "{\"b\":2}", "filter map by key");
    expect(callf("filter", "[1,2,3,4,5,6]", f_even, NULL), "[2,4,6]",
           "filter even");
    expect(callf("filter", "[\"a\",\"b\",\"c\",\"d\"]", f_idx_gt1, NULL),
           "[\"c\",\"d\"]", "filter by index");
    expect(callf("filter", "{\"b\":1,\"10\":2,\"a\":3}", f_gt3, NULL),
           "{}", "filter map none");
    expect(callf("filter", "[1,2]", f_boom, NULL), "!TypeError: boom",
           "filter err");

    expect(callf("map", "[3,4,5]", f_plus2, NULL), "[5,6,7]", "map + 2");
    expect(callf("map", "[]", f_boom, NULL), "[]", "map [] no call");
    expect(callf("map", "{}", f_boom, NULL), "{}", "map {} no call");
    expect(callf("map", "{\"a\":1,\"b\":2,\"c\":3}", f_v_plus_k, NULL),
           "{\"a\":\"1a\",\"b\":\"2b\",\"c\":\"3c\"}", "map v + k");
    expect(callf("map", "[\"x\",\"y\"]", f_v_plus_k, NULL),
           "[\"x0\",\"y1\"]", "map v + i");
    expect(callf("map", "{\"b\":1,\"10\":2,\"a\":3}", f_double, NULL),
           "{\"10\":4,\"b\":2,\"a\":6}", "map keeps enumeration order");
    expect(callf("map", "[1,2,3]", f_fail3, NULL), "!TypeError: third call",
           "map err mid-way");

    /* arguments are not modified */
    a = J("[3,4,5]");
    kval f = fn(f_plus2), argv[2] = {a, f};
    kval r = callv("map", argv, 2);
    expect(r, "[5,6,7]", "map result");
    expect(kval_copy(&a), "[3,4,5]", "map does not modify its argument");
    forget();
    t_eq_int(kval_refcount(&a), 1, "map leaves no reference behind");
    kval_free(f);
    kval_free(a);
}

static void
test_pairwise_reduce(void)
{
    expect(callf("pairwise", "[[3,4,5],[6,7,8]]", f_add, NULL), "[9,11,13]",
           "pairwise add");
    expect(callf("pairwise", "[[3,4,5],[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]]",
                 f_add, NULL),
           "[\"3a\",\"4b\",\"5c\",\"nulld\",\"nulle\",\"nullf\"]",
           "pairwise uneven");
    expect(callf("pairwise", "[[],[]]", f_boom, NULL), "[]",
           "pairwise empty");
    expect(callf("pairwise", "[[],1]", f_pair, NULL), "[[null,1]]",
           "pairwise scalar");
    expect(callf("pairwise", "[[1,2,3],[10,20,30]]", f_add, NULL),
           "[11,22,33]", "pairwise conformance 1");
    expect(callf("pairwise", "[[\"a\",\"b\"],[\"x\",\"y\"],[\"1\",\"2\"]]",
                 f_pair, NULL),
           "[[\"a\",\"x\",\"1\"],[\"b\",\"y\",\"2\"]]", "pairwise three");
    expect(callf("pairwise", "[[1],[2]]", f_boom, NULL), "!TypeError: boom",
           "pairwise err");
    kval act = fnv(f_add, KV_FN_ACTION), arrs = J("[[1],[2]]");
    kval argv[2] = {arrs, act};
    expect(callv("pairwise", argv, 2),
           "!TypeError: The .pairwise() operator cannot use [Action] as a "
           "function", "pairwise action");
    kval_free(act);
    kval_free(arrs);

    expect(callf("reduce", "[3,4,5]", f_add, NULL), "12", "reduce add");
    expect(callf("reduce", "[3,4,5]", f_add, "[10]"), "22", "reduce add 10");
    expect(callf("reduce", "[3,4,5]", f_sub, NULL), "-6", "reduce sub");
    expect(callf("reduce", "[]", f_boom, NULL), "0", "reduce [] no call");
    expect(callf("reduce", "[]", f_boom, "[0]"), "0", "reduce [] 0");
    expect(callf("reduce", "[1,2,3,4]", f_add, "[100]"), "110",
           "reduce sum_init");
    expect(callf("reduce", "[\"a\",\"b\"]", f_add, "[\"\"]"), "\"ab\"",
           "reduce concat");
    expect(callf("reduce", "[]", f_add, "[\"init\"]"), "\"init\"",
           "reduce empty init");
    expect(callf("reduce", "[42]", f_add, NULL), "42", "reduce single");
    expect(callf("reduce", "[42]", f_add, "[1]"), "43", "reduce single init");
    expect(callf("reduce", "[10,20,30]", f_weighted, "[0]"), "80",
           "reduce with index");
    t_eq_int(last_n, 4, "reduce fn gets four arguments");
    t_ok(kval_kind(&last_args[3]) == KV_ARRAY, "reduce passes the array");
    expect(callf("reduce", "[1,2,3]", f_fail3, NULL), "!TypeError: third "
           "call", "reduce err");
    calls = 0;
    expect(callf("reduce", "[1,2,3,4]", f_fail3, NULL),
           "!TypeError: third call", "reduce stops at the error");
    t_eq_int(calls, 3, "reduce made no call after the error");
}

static void
test_sort_functions(void)
{
    expect(callf("sort", "[5,3,4,1,12]", f_cmp_asc, NULL), "[1,3,4,5,12]",
           "sort asc");
    expect(callf("sort", "[5,3,4,1,12]", f_cmp_desc, NULL), "[12,5,4,3,1]",
           "sort desc");
    expect(callf("sort", "[]", f_cmp_asc, NULL), "[]", "sort [] fn");
    expect(callf("sort", "[1]", f_boom, NULL), "[1]", "sort [1] no call");
    expect(callf("sort", "[2,1]", f_cmp_asc, NULL), "[1,2]", "sort 2");
    expect(callf("sort", "[2,3,1]", f_cmp_asc, NULL), "[1,2,3]", "sort 3");
    expect(callf("sort", "[5,2,8]", f_cmp_sub, NULL), "[8,5,2]",
           "sort b - a");
    expect(callf("sort", "[\"ccc\",\"a\",\"bb\"]", f_by_len, NULL),
           "[\"a\",\"bb\",\"ccc\"]", "sort by length");
    expect(callf("sort", "[3,1,2]", f_cmp_str, NULL), "[1,2,3]",
           "sort string results");
    expect(callf("sort", "[3,1,2]", f_null, NULL), "[3,1,2]",
           "sort null results keep order");
    expect(callf("sort", "[{\"name\":\"Cleo\",\"age\":31},{\"name\":\"Abe\","
                 "\"age\":45},{\"name\":\"Bea\",\"age\":31},{\"name\":\"Dan\","
                 "\"age\":7}]", f_by_age, NULL),
           "[{\"name\":\"Dan\",\"age\":7},{\"name\":\"Cleo\",\"age\":31},"
           "{\"name\":\"Bea\",\"age\":31},{\"name\":\"Abe\",\"age\":45}]",
           "sort stable by age");
    calls = 0;
    expect(callf("sort", "[5,4,3,2,1]", f_fail3, NULL),
           "!TypeError: third call", "sort comparator error");
    t_eq_int(calls, 3, "sort stops at the comparator error");
    expect(callf("sort", "[3,1,2]", f_boom, NULL), "!TypeError: boom",
           "sort err");

    /* an action is not a comparator: default order */
    kval act = fnv(f_boom, KV_FN_ACTION), arr = J("[5,3,4,1,12]");
    kval argv[2] = {arr, act};
    expect(callv("sort", argv, 2), "[1,12,3,4,5]", "sort action default");
    expect(kval_copy(&arr), "[5,3,4,1,12]", "sort does not modify");
    kval_free(act);
    kval_free(arr);
}

static void
test_non_json_values(void)
{
    kval re = kval_regexp("|", 1, "");
    kval arr = J("[\"<\",\">\"]");
    kval f = fn(f_ident);
    kval argv[3];

    argv[0] = arr;
    argv[1] = re;
    expect(callv("join", argv, 2), "\"<re#|#>\"", "join with a regexp");
    argv[0] = f;
    expect(callv("length", argv, 1), "0", "length of a function");
    expect(callv("isEmpty", argv, 1), "false", "isEmpty of a function");
    expect(callv("keys", argv, 1), "[]", "keys of a function");
    expect(callv("values", argv, 1), "[]", "values of a function");
    argv[0] = re;
    expect(callv("length", argv, 1), "0", "length of a regexp");
    expect(callv("isEmpty", argv, 1), "true", "isEmpty of a regexp");

    /* a function element: unique and has compare it by identity */
    kval fa = kval_array_append(kval_array(), kval_copy(&f));
    fa = kval_array_append(fa, kval_copy(&f));
    argv[0] = fa;
    kval u = callv("unique", argv, 1);
    t_eq_int(kval_array_len(&u), 1, "unique of the same function twice");
    kval_free(u);
    argv[1] = fa;
    expect(callv("has", argv, 2), "true", "has with functions");

    /* put with a function key uses its toString */
    kval m = J("{\"key\":5}"), path = kval_array_append(kval_array(),
                                                       kval_copy(&f));
    kval w = kval_cstr("wat?");
    argv[0] = m;
    argv[1] = path;
    argv[2] = w;
    expect(callv("put", argv, 3), "{\"key\":5,\"[Function]\":\"wat?\"}",
           "put function key");

    /* regexps: unique by source and flags */
    kval rs = kval_array_append(kval_array(), kval_regexp("a", 1, "g"));
    rs = kval_array_append(rs, kval_regexp("a", 1, "g"));
    rs = kval_array_append(rs, kval_regexp("a", 1, "i"));
    argv[0] = rs;
    u = callv("unique", argv, 1);
    t_eq_int(kval_array_len(&u), 2, "unique regexps");
    kval_free(u);
    expect(callv("collect", argv, 1),
           "{\"/a/g\":[\"re#a#g\",\"re#a#g\"],\"/a/i\":[\"re#a#i\"]}",
           "collect regexps by JS String()");

    kval_free(rs);
    kval_free(m);
    kval_free(path);
    kval_free(w);
    kval_free(fa);
    kval_free(f);
    kval_free(arr);
    kval_free(re);
}

/* Results must not share mutable state with the arguments. */
static void
test_no_mutation(void)
{
    static const struct {
        const char *fn, *args;
    } calls_[] = {
        {"put", "[{\"a\":{\"b\":[1,2]}},[\"a\",\"b\",0],9]"},
        {"put", "[{\"a\":{\"b\":[1,2]}},{\"c\":1}]"},
        {"put", "[[1,2],[5]]"},
        {"set", "[{\"a\":{\"b\":[1,2]}},[\"a\",\"b\",0],9]"},
        {"set", "[[[1]],[0,0],2]"},
        {"delete", "[{\"a\":{\"b\":[1,2]}},[\"a\",\"b\",0]]"},
        {"delete", "[{\"a\":{\"b\":[1,2]}},[\"a\",\"b\"]]"},
        {"splice", "[[1,2,3],1,1,[7]]"},
        {"reverse", "[[1,2,3]]"},
        {"sort", "[[3,2,1]]"},
        {"append", "[[1],[2]]"},
        {"tail", "[[1,2,3]]"},
        {"union", "[[1],[2]]"},
    };
    for (size_t i = 0; i < sizeof calls_ / sizeof calls_[0]; i++) {
        kval a = J(calls_[i].args);
        char *before = show(&a), *after;
        kval argv[8];
        size_t n = kval_array_len(&a);
        for (size_t j = 0; j < n; j++)
            argv[j] = *kval_array_get(&a, j);
        kval r = callv(calls_[i].fn, argv, n);
        after = show(&a);
        char name[256];
        snprintf(name, sizeof name, "%s does not modify %s", calls_[i].fn,
                 calls_[i].args);
        t_eq_str(after, before, name);
        kval_free(r);
        free(before);
        free(after);
        kval_free(a);
    }

    /* the result of put can be changed without touching the argument */
    kval m = J("{\"a\":{\"b\":1}}"), p = J("[\"a\",\"c\"]"), v = J("2");
    kval argv[3] = {m, p, v};
    kval r = callv("put", argv, 3);
    t_eq_int(kval_refcount(&m), 1, "put holds no reference to its argument");
    r = kval_map_put(r, kval_cstr("z"), kval_null());
    expect(kval_copy(&m), "{\"a\":{\"b\":1}}", "put argument unchanged");
    kval_free(r);
    kval_free(m);
    kval_free(p);
    kval_free(v);
}

/* Large inputs: linear (or n log n) work, no quadratic behaviour. */
static void
test_large(void)
{
    enum { N = 100000 };
    kval arr = kval_array_sized(N), strs = kval_array_sized(N);
    kval f, argv[3], r;
    clock_t t0 = clock();

    for (size_t i = 0; i < N; i++) {
        arr = kval_array_append(arr, kval_number((double)((i * 7919) % N)));
        strs = kval_array_append(strs, kval_str_fmt("k%zu", i % (N / 2)));
    }
    f = fn(f_double);
    argv[0] = arr;
    argv[1] = f;
    r = callv("map", argv, 2);
    t_eq_int(kval_array_len(&r), N, "map 100000");
    t_ok(kval_get_number(kval_array_get(&r, 1)) == 2.0 * 7919,
         "map 100000 value");
    kval_free(r);
    kval_free(f);

    f = fn(f_even);
    argv[1] = f;
    r = callv("filter", argv, 2);
    t_eq_int(kval_array_len(&r), N / 2, "filter 100000");
    kval_free(r);
    kval_free(f);

    f = fn(f_add);
    argv[1] = f;
    r = callv("reduce", argv, 2);
    t_ok(kval_get_number(&r) == (double)N * (N - 1) / 2, "reduce 100000");
    kval_free(r);
    kval_free(f);

    r = callv("unique", argv, 1);
    t_eq_int(kval_array_len(&r), N, "unique 100000 numbers");
    kval_free(r);

    argv[0] = strs;
    r = callv("unique", argv, 1);
    t_eq_int(kval_array_len(&r), N / 2, "unique 100000 strings");
    kval_free(r);
    r = callv("duplicates", argv, 1);
    t_eq_int(kval_array_len(&r), N / 2, "duplicates 100000 strings");
    kval_free(r);
    argv[1] = arr;
    r = callv("difference", argv, 2);
    t_eq_int(kval_array_len(&r), N, "difference 100000");
    kval_free(r);

    argv[0] = arr;
    argv[1] = kval_cstr("numeric");
    r = callv("sort", argv, 2);
    t_ok(kval_get_number(kval_array_get(&r, N - 1)) == N - 1,
         "sort numeric 100000");
    kval_free(r);
    kval_free(argv[1]);
    r = callv("sort", argv, 1);
    t_ok(kval_get_number(kval_array_get(&r, 1)) == 1, "sort default 100000");
    kval_free(r);

    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("# large inputs took %.2f s\n", secs);
    t_ok(secs < 30, "large inputs finish in reasonable time");
    kval_free(arr);
    kval_free(strs);
}

/* Deeply nested values: no recursion on the C stack that they can blow. */
static void
test_deep(void)
{
    enum { DEPTH = 20000 };
    kval deep1 = kval_null(), deep2 = kval_null(), list, r;

    for (size_t i = 0; i < DEPTH; i++) {
        deep1 = kval_array_append(kval_array(), deep1);
        deep2 = kval_array_append(kval_array(), deep2);
    }
    list = kval_array_append(kval_array(), kval_copy(&deep1));
    list = kval_array_append(list, kval_copy(&deep2));
    list = kval_array_append(list, kval_number(1));
    r = callv("unique", &list, 1);
    t_eq_int(kval_array_len(&r), 2, "unique of deep equal arrays");
    kval_free(r);
    r = callv("once", &list, 1);
    t_eq_int(kval_array_len(&r), 1, "once groups deep arrays by String()");
    kval_free(r);
    kval argv[2] = {list, deep2};
    r = callv("index", argv, 2);
    expect(r, "0", "index of a deep array");
    kval_free(list);
    kval_free(deep1);
    kval_free(deep2);
}

static void
test_table_shape(void)
{
    const char *const want[] = {
        "all", "notall", "any", "none", "append", "collect", "filter", "map",
        "head", "tail", "index", "join", "length", "isEmpty", "pairwise",
        "reduce", "reverse", "slice", "splice", "delete", "keys", "values",
        "intersection", "union", "difference", "has", "once", "duplicates",
        "unique", "put", "sort", "get", "set"
    };
    size_t n = 0;
    while (lib_collection_builtins[n].name != NULL)
        n++;
    t_eq_int(n, sizeof want / sizeof want[0], "collection table size");
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct krl_builtin *b = find(want[i]);
        t_ok(b->kinds == KV_FN_FUNCTION && b->params[0] != NULL,
             want[i]);
    }
    t_eq_str(find("get")->params[0], "obj", "get receiver is obj");
    t_eq_str(find("splice")->params[2], "nElements", "splice param 3");
    t_eq_str(find("put")->params[2], "toSet", "put param 3");
    t_eq_str(find("intersection")->params[1], "b", "intersection param 2");
}

int
main(void)
{
    test_table_shape();
    test_table();
    test_quantifiers();
    test_collect_filter_map();
    test_pairwise_reduce();
    test_sort_functions();
    test_non_json_values();
    test_no_mutation();
    test_large();
    test_deep();
    forget();
    return tap_done();
}
