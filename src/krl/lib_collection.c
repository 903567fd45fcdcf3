/*
 * lib_collection.c - the KRL collection library (krl-language.md §5
 * "Collection functions"), with the semantics of the reference engine's
 * stdlib.ts: iteration with a KRL function (all, any, map, filter, collect,
 * reduce, pairwise), array functions (head, tail, slice, splice, sort, ...),
 * deep-equality set operations, and path access (get, put, set, delete,
 * keys, values).
 *
 * Arguments are borrowed and never modified: results are built fresh or
 * with the copy-on-write functions of value.h.  Errors returned by a KRL
 * function argument are passed back at once.
 *
 * Where JavaScript would build something a KRL value cannot hold, we pick
 * the nearest value:
 *   - a string key put or set on an array turns the array into a map
 *     ({"0": ..., "1": ..., "key": ...}), as put already does for
 *     intermediate levels;
 *   - an index past the end of an array pads it with nulls (a sparse JS
 *     array prints its holes as null), or turns it into a map when the gap
 *     is over SPARSE_MAX, so a path cannot make us allocate gigabytes;
 *   - deleting an array element leaves null in its place (JS `delete`
 *     leaves a hole);
 *   - get walks only arrays and maps (no "length" or string indexing).
 */
#include "picomail/builtin.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/mem.h"
#include "picomail/ops.h"
#include "picomail/regexp.h"
#include "picomail/value.h"
#include "lib_type_internal.h"

#define SPARSE_MAX 65536

/* ---- small helpers ---- */

static bool
is_coll(const kval *v)
{
    return kval_kind(v) == KV_ARRAY || kval_kind(v) == KV_MAP;
}

static bool
is_array(const kval *v)
{
    return kval_kind(v) == KV_ARRAY;
}

static bool
is_krl_function(const kval *v)
{
    return kval_kind(v) == KV_FUNCTION &&
           (kval_func_kinds(v) & KV_FN_FUNCTION) != 0;
}

/* An error message BEFORE toString(V) AFTER. */
static kval
err_with_value(const char *before, const kval *v, const char *after)
{
    kval s = op_to_string(v);
    kval e = kval_error("%s%s%s", before, kval_str_ptr(&s), after);
    kval_free(s);
    return e;
}

#define ERR_COLLECTIONS "TypeError: only works on collections"
#define ERR_ARRAYS "TypeError: only works on Arrays"

/* Call FN with borrowed ARGV; a non-function is a TypeError as in JS. */
static kval
call(struct krl_vm *vm, const kval *fn, const kval *argv, size_t n)
{
    if (kval_kind(fn) != KV_FUNCTION)
        return err_with_value("TypeError: ", fn, " is not a function");
    return kval_func_call(vm, fn, argv, n);
}

/* FN(value, key, collection); a null FN is the identity. */
static kval
call_iter(struct krl_vm *vm, const kval *fn, const kval *v, const kval *k,
          const kval *coll)
{
    kval argv[3];

    if (kval_is_null(fn))
        return kval_copy(v);
    argv[0] = *v;
    argv[1] = *k;
    argv[2] = *coll;
    return call(vm, fn, argv, 3);
}

/* JavaScript's String(V) as a new string value. */
static kval
js_string(const kval *v)
{
    struct buf b;
    kval s;

    if (kval_kind(v) == KV_STRING)
        return kval_copy(v);
    buf_init(&b);
    lib_type_js_string(v, &b);
    s = kval_str(b.data, b.len);
    buf_release(&b);
    return s;
}

/*
 * Iteration over an array (keys are index numbers) or a map (keys are
 * strings, in the reference's enumeration order).
 */
struct coll_iter {
    const kval *coll;
    bool is_map;
    size_t i;
    size_t n;
    kval index;
    struct kval_map_iter mi;
};

static void
ci_init(struct coll_iter *it, const kval *coll)
{
    it->coll = coll;
    it->is_map = kval_kind(coll) == KV_MAP;
    it->i = 0;
    it->n = it->is_map ? 0 : kval_array_len(coll);
    if (it->is_map)
        kval_map_iter_init(&it->mi, coll);
}

static bool
ci_next(struct coll_iter *it, const kval **k, const kval **v)
{
    if (it->is_map)
        return kval_map_iter_next(&it->mi, k, v);
    if (it->i >= it->n)
        return false;
    it->index = kval_number((double)it->i);
    *k = &it->index;
    *v = kval_array_get(it->coll, it->i);
    it->i++;
    return true;
}

static void
ci_done(struct coll_iter *it)
{
    if (it->is_map)
        kval_map_iter_done(&it->mi);
}

/* ---- all, notall, any, none ---- */

/*
 * Look for an element whose FN result has truthiness WANT; *FOUND tells.
 * Returns null, or the error to pass on.
 */
static kval
find_truthy(struct krl_vm *vm, const kval *val, const kval *fn, bool want,
            bool *found)
{
    struct coll_iter it;
    const kval *k, *v;
    kval err = kval_null();

    *found = false;
    if (!is_coll(val))
        return kval_error(ERR_COLLECTIONS);
    ci_init(&it, val);
    while (ci_next(&it, &k, &v)) {
        /* no identity default here: the reference calls FN regardless */
        kval argv[3] = {*v, *k, *val};
        kval r = call(vm, fn, argv, 3);
        if (kval_is_error(&r)) {
            err = r;
            break;
        }
        bool t = kval_truthy(&r);
        kval_free(r);
        if (t == want) {
            *found = true;
            break;
        }
    }
    ci_done(&it);
    return err;
}

static kval
quantifier(struct krl_vm *vm, const kval *args, size_t n_args, bool want,
           bool negate)
{
    bool found;
    kval err = find_truthy(vm, builtin_arg(args, n_args, 0),
                           builtin_arg(args, n_args, 1), want, &found);
    if (kval_is_error(&err))
        return err;
    return kval_bool(found != negate);
}

static kval
fn_all(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)data;
    return quantifier(vm, args, n_args, false, true);
}

static kval
fn_notall(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)data;
    return quantifier(vm, args, n_args, false, false);
}

static kval
fn_any(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)data;
    return quantifier(vm, args, n_args, true, false);
}

static kval
fn_none(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)data;
    return quantifier(vm, args, n_args, true, true);
}

/* ---- append, collect, filter, map ---- */

/* _.concat: arrays are spread one level, anything else is one element. */
static kval
fn_append(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    size_t n = n_args < 6 ? n_args : 6;
    size_t total = 0;
    kval out;

    (void)vm;
    (void)data;
    for (size_t i = 0; i < n; i++)
        total += is_array(&args[i]) ? kval_array_len(&args[i]) : 1;
    out = kval_array_sized(total);
    for (size_t i = 0; i < n; i++) {
        if (!is_array(&args[i])) {
            out = kval_array_append(out, kval_copy(&args[i]));
            continue;
        }
        for (size_t j = 0; j < kval_array_len(&args[i]); j++)
            out = kval_array_append(out,
                                    kval_copy(kval_array_get(&args[i], j)));
    }
    return out;
}

/*
 * Groups are keyed by JS String() of FN's result, as a JS object property
 * would be; the result map enumerates them in the reference's order.
 */
static kval
fn_collect(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *fn = builtin_arg(args, n_args, 1);
    struct coll_iter it;
    const kval *k, *v;
    kval index, out;
    kval *groups = NULL, *names = NULL;
    size_t n = 0, cap = 0;

    (void)data;
    if (!is_coll(val))
        return kval_error(ERR_COLLECTIONS);
    index = kval_map();
    out = kval_null();
    ci_init(&it, val);
    while (ci_next(&it, &k, &v)) {
        kval r = call_iter(vm, fn, v, k, val);
        if (kval_is_error(&r)) {
            out = r;
            break;
        }
        kval name = js_string(&r);
        kval_free(r);
        const kval *gi = kval_map_get(&index, kval_str_ptr(&name),
                                      kval_str_bytes(&name));
        if (gi != NULL) {
            size_t g = (size_t)kval_get_number(gi);
            groups[g] = kval_array_append(groups[g], kval_copy(v));
            kval_free(name);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            groups = xreallocarray(groups, cap, sizeof *groups);
            names = xreallocarray(names, cap, sizeof *names);
        }
        groups[n] = kval_array_append(kval_array(), kval_copy(v));
        names[n] = kval_copy(&name);
        index = kval_map_put(index, name, kval_number((double)n));
        n++;
    }
    ci_done(&it);
    if (!kval_is_error(&out)) {
        out = kval_map();
        for (size_t g = 0; g < n; g++)
            out = kval_map_put(out, names[g], groups[g]);
    } else {
        for (size_t g = 0; g < n; g++) {
            kval_free(names[g]);
            kval_free(groups[g]);
        }
    }
    free(groups);
    free(names);
    kval_free(index);
    return out;
}

/* filter (KEEP_RESULT false) and map (true): the result keeps the shape. */
static kval
filter_map(struct krl_vm *vm, const kval *args, size_t n_args,
           bool keep_result)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *fn = builtin_arg(args, n_args, 1);
    struct coll_iter it;
    const kval *k, *v;
    kval out;
    bool arr = is_array(val);

    if (!is_coll(val))
        return kval_error(ERR_COLLECTIONS);
    out = arr ? kval_array_sized(kval_array_len(val)) : kval_map();
    ci_init(&it, val);
    while (ci_next(&it, &k, &v)) {
        kval r = call_iter(vm, fn, v, k, val);
        if (kval_is_error(&r)) {
            kval_free(out);
            out = r;
            break;
        }
        if (!keep_result) {
            bool t = kval_truthy(&r);
            kval_free(r);
            if (!t)
                continue;
            r = kval_copy(v);
        }
        if (arr)
            out = kval_array_append(out, r);
        else
            out = kval_map_put(out, kval_copy(k), r);
    }
    ci_done(&it);
    return out;
}

static kval
fn_filter(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)data;
    return filter_map(vm, args, n_args, false);
}

static kval
fn_map(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)data;
    return filter_map(vm, args, n_args, true);
}

/* ---- head, tail, index, join, length, isEmpty, reverse ---- */

static kval
fn_head(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);

    (void)vm;
    (void)data;
    if (!is_array(val))
        return kval_copy(val);
    if (kval_array_len(val) == 0)
        return kval_null();
    return kval_copy(kval_array_get(val, 0));
}

static kval
fn_tail(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);

    (void)vm;
    (void)data;
    if (!is_array(val) || kval_array_len(val) == 0)
        return kval_array();
    return kval_array_slice(val, 1, kval_array_len(val));
}

static kval
fn_index(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *elm = builtin_arg(args, n_args, 1);

    (void)vm;
    (void)data;
    if (!is_array(val))
        return kval_error(ERR_ARRAYS);
    for (size_t i = 0; i < kval_array_len(val); i++)
        if (kval_equal(kval_array_get(val, i), elm))
            return kval_number((double)i);
    return kval_number(-1);
}

static void
add_to_string(struct buf *b, const kval *v)
{
    kval s = op_to_string(v);
    buf_add(b, kval_str_ptr(&s), kval_str_bytes(&s));
    kval_free(s);
}

static kval
fn_join(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *sep = builtin_arg(args, n_args, 1);
    struct buf b;
    kval sep_s;
    size_t len;

    (void)vm;
    (void)data;
    if (!is_array(val))
        return op_to_string(val);
    sep_s = kval_is_null(sep) ? kval_cstr(",") : op_to_string(sep);
    buf_init(&b);
    for (size_t i = 0; i < kval_array_len(val); i++) {
        if (i > 0)
            buf_add(&b, kval_str_ptr(&sep_s), kval_str_bytes(&sep_s));
        add_to_string(&b, kval_array_get(val, i));
    }
    kval_free(sep_s);
    char *s = buf_take(&b, &len);
    return kval_str_take(s, len);
}

static kval
fn_length(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);

    (void)vm;
    (void)data;
    switch (kval_kind(val)) {
    case KV_ARRAY:
        return kval_number((double)kval_array_len(val));
    case KV_MAP:
        return kval_number((double)kval_map_len(val));
    case KV_STRING:
        return kval_number((double)kval_str_len16(val));
    default:
        return kval_number(0);
    }
}

/*
 * lodash isEmpty.  Numbers, booleans and regexps are "empty".  A KRL
 * function is not: the reference marks its functions with an enumerable
 * own property, which isEmpty counts.
 */
static kval
fn_is_empty(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);

    (void)vm;
    (void)data;
    switch (kval_kind(val)) {
    case KV_STRING:
        return kval_bool(kval_str_bytes(val) == 0);
    case KV_ARRAY:
        return kval_bool(kval_array_len(val) == 0);
    case KV_MAP:
        return kval_bool(kval_map_len(val) == 0);
    case KV_FUNCTION:
        return kval_bool(false);
    default:
        return kval_bool(true);
    }
}

static kval
fn_reverse(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    size_t n;
    kval out;

    (void)vm;
    (void)data;
    if (!is_array(val))
        return kval_error(ERR_ARRAYS);
    n = kval_array_len(val);
    out = kval_array_sized(n);
    while (n > 0)
        out = kval_array_append(out, kval_copy(kval_array_get(val, --n)));
    return out;
}

/* ---- pairwise, reduce ---- */

static kval
fn_pairwise(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *fn = builtin_arg(args, n_args, 1);
    size_t m, max_len = 0;
    kval *argv;
    kval out;

    (void)data;
    if (!is_array(val))
        return err_with_value("TypeError: The .pairwise() operator cannot "
                              "be called on ", val, "");
    m = kval_array_len(val);
    if (m < 2)
        return kval_error("TypeError: The .pairwise() operator needs a "
                          "longer array");
    if (!is_krl_function(fn))
        return err_with_value("TypeError: The .pairwise() operator cannot "
                              "use ", fn, " as a function");
    for (size_t j = 0; j < m; j++) {
        const kval *a = kval_array_get(val, j);
        size_t len = is_array(a) ? kval_array_len(a) : 1;
        if (len > max_len)
            max_len = len;
    }
    argv = xcalloc(m, sizeof *argv);
    out = kval_array_sized(max_len);
    for (size_t i = 0; i < max_len; i++) {
        /* a non-array counts as a one-element array; holes are null */
        for (size_t j = 0; j < m; j++) {
            const kval *a = kval_array_get(val, j);
            if (is_array(a))
                argv[j] = i < kval_array_len(a) ? *kval_array_get(a, i)
                                                : kval_null();
            else
                argv[j] = i == 0 ? *a : kval_null();
        }
        kval r = call(vm, fn, argv, m);
        if (kval_is_error(&r)) {
            kval_free(out);
            out = r;
            break;
        }
        out = kval_array_append(out, r);
    }
    free(argv);
    return out;
}

static kval
fn_reduce(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *fn = builtin_arg(args, n_args, 1);
    const kval *dflt = builtin_arg(args, n_args, 2);
    bool no_default = n_args < 3;
    size_t n, i;
    kval acc, argv[4];

    (void)data;
    if (!is_array(val))
        return kval_error(ERR_ARRAYS);
    n = kval_array_len(val);
    if (n == 0)
        return no_default ? kval_number(0) : kval_copy(dflt);
    /* the reference throws a plain Error here, not a TypeError */
    if (!is_krl_function(fn) && (no_default || n > 1))
        return err_with_value("Error: The .reduce() operator cannot use ",
                              fn, " as a function");
    if (no_default) {
        acc = kval_copy(kval_array_get(val, 0));
        i = 1;
    } else {
        acc = kval_copy(dflt);
        i = 0;
    }
    for (; i < n; i++) {
        argv[0] = acc;
        argv[1] = *kval_array_get(val, i);
        argv[2] = kval_number((double)i);
        argv[3] = *val;
        kval r = call(vm, fn, argv, 4);
        kval_free(acc);
        acc = r;
        if (kval_is_error(&acc))
            break;
    }
    return acc;
}

/* ---- slice, splice ---- */

/* lodash toInteger for a finite-or-infinite double */
static double
to_integer(double d)
{
    if (isinf(d))
        return d > 0 ? 1.7976931348623157e308 : -1.7976931348623157e308;
    return trunc(d);
}

/* lodash _.slice(ARR, START, END) */
static kval
lo_slice(const kval *arr, double start, double end)
{
    double len = (double)kval_array_len(arr);

    start = to_integer(start);
    end = to_integer(end);
    if (start < 0)
        start = -start > len ? 0 : len + start;
    if (end > len)
        end = len;
    if (end < 0)
        end += len;
    if (start >= end)
        return kval_array();
    return kval_array_slice(arr, (size_t)start, (size_t)end);
}

/* slice(start, end): inclusive indexes, swapped bounds allowed */
static kval
fn_slice(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *start = builtin_arg(args, n_args, 1);
    const kval *end = builtin_arg(args, n_args, 2);
    double first, second, len;

    (void)vm;
    (void)data;
    if (!is_array(val))
        return kval_error(ERR_ARRAYS);
    len = (double)kval_array_len(val);
    if (len == 0)
        return kval_array();
    if (n_args < 2)
        return kval_copy(val);
    if (!op_to_number(start, &first))
        return err_with_value("TypeError: The .slice() operator cannot use ",
                              start, " as an index");
    if (n_args < 3) {
        if (first > len)
            return kval_array();
        return lo_slice(val, 0, first + 1);
    }
    if (!op_to_number(end, &second))
        return err_with_value("TypeError: The .slice() operator cannot use ",
                              end, " as the other index");
    if (first > second) {
        double t = first;
        first = second;
        second = t;
    }
    if (first >= 0 && second < len)
        return lo_slice(val, first, second + 1);
    return kval_array();
}

static kval
append_all(kval out, const kval *arr)
{
    for (size_t i = 0; i < kval_array_len(arr); i++)
        out = kval_array_append(out, kval_copy(kval_array_get(arr, i)));
    return out;
}

static kval
fn_splice(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *start = builtin_arg(args, n_args, 1);
    const kval *count = builtin_arg(args, n_args, 2);
    const kval *value = builtin_arg(args, n_args, 3);
    double s, n, len;
    kval out, rest;

    (void)vm;
    (void)data;
    if (!is_array(val))
        return kval_error(ERR_ARRAYS);
    len = (double)kval_array_len(val);
    if (len == 0)
        return kval_array();
    /* the missing space before "as" is the reference's wording */
    if (!op_to_number(start, &s))
        return err_with_value("TypeError: The .splice() operator cannot use ",
                              start, "as an index");
    s = fmin(fmax(s, 0), len - 1);
    if (!op_to_number(count, &n))
        return err_with_value("TypeError: The .splice() operator cannot use ",
                              count, "as a number of elements");
    if (n < 0 || s + n > len)
        n = len - s;
    out = lo_slice(val, 0, s);
    if (n_args >= 4) {
        if (is_array(value))
            out = append_all(out, value);
        else
            out = kval_array_append(out, kval_copy(value));
    }
    rest = lo_slice(val, s + n, len);
    out = append_all(out, &rest);
    kval_free(rest);
    return out;
}

/* ---- paths: get, put, set, delete, keys, values ---- */

struct path {
    kval *keys;                 /* strings, owned */
    size_t n;
};

/* toKeyPath: a single key or an array of keys, each through toString */
static void
path_init(struct path *p, const kval *path)
{
    if (is_array(path)) {
        p->n = kval_array_len(path);
        p->keys = xcalloc(p->n ? p->n : 1, sizeof *p->keys);
        for (size_t i = 0; i < p->n; i++)
            p->keys[i] = op_to_string(kval_array_get(path, i));
    } else {
        p->n = 1;
        p->keys = xcalloc(1, sizeof *p->keys);
        p->keys[0] = op_to_string(path);
    }
}

static void
path_release(struct path *p)
{
    for (size_t i = 0; i < p->n; i++)
        kval_free(p->keys[i]);
    free(p->keys);
}

/* A canonical array index: "0" or [1-9][0-9]*, below 2^53. */
static bool
parse_index(const kval *key, size_t *out)
{
    const char *s = kval_str_ptr(key);
    size_t len = kval_str_bytes(key);
    uint64_t v = 0;

    if (len == 0 || len > 16 || (s[0] == '0' && len > 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v >= (UINT64_C(1) << 53) || v > SIZE_MAX)
        return false;
    *out = (size_t)v;
    return true;
}

/* The member KEY of a collection NODE, borrowed, or NULL. */
static const kval *
child_get(const kval *node, const kval *key)
{
    size_t i;

    if (kval_kind(node) == KV_MAP)
        return kval_map_get(node, kval_str_ptr(key), kval_str_bytes(key));
    if (kval_kind(node) == KV_ARRAY && parse_index(key, &i) &&
        i < kval_array_len(node))
        return kval_array_get(node, i);
    return NULL;
}

/* The value at the end of the path, borrowed, or NULL (_.get). */
static const kval *
path_get(const kval *root, const struct path *p)
{
    const kval *cur = root;

    if (p->n == 0)
        return NULL;
    for (size_t i = 0; i < p->n && cur != NULL; i++)
        cur = child_get(cur, &p->keys[i]);
    return cur;
}

/* {"0": a[0], "1": a[1], ...}, as Object.assign({}, array) */
static kval
array_to_map(kval arr)
{
    kval map = kval_map();

    for (size_t i = 0; i < kval_array_len(&arr); i++)
        map = kval_map_put(map, kval_str_fmt("%zu", i),
                           kval_copy(kval_array_get(&arr, i)));
    kval_free(arr);
    return map;
}

/* NODE[KEY] = VAL on a collection; see the file comment for arrays. */
static kval
node_put(kval node, const kval *key, kval val)
{
    size_t i, len;

    if (kval_kind(&node) == KV_ARRAY) {
        len = kval_array_len(&node);
        if (parse_index(key, &i) && i < len)
            return kval_array_set(node, i, val);
        if (parse_index(key, &i) && i - len <= SPARSE_MAX) {
            while (len++ < i)
                node = kval_array_append(node, kval_null());
            return kval_array_append(node, val);
        }
        node = array_to_map(node);
    }
    return kval_map_put(node, kval_copy(key), val);
}

/*
 * Store VAL at path P in ROOT (a collection, consumed).  Missing or scalar
 * intermediate levels are created: as maps for put, as arrays when the next
 * key is an index for set (LODASH_SET, lodash _.set).  put also turns an
 * array into a map when the next key is not an index at most its length.
 *
 * Each level is taken out of its parent before it is changed, so that it
 * is not shared and copy-on-write copies only what the caller shares.
 */
static kval
path_store(kval root, const struct path *p, kval val, bool lodash_set)
{
    size_t n = p->n, i, idx;
    kval *stack = xcalloc(n, sizeof *stack);
    kval out;

    stack[0] = root;
    for (i = 0; i + 1 < n; i++) {
        const kval *key = &p->keys[i], *next_key = &p->keys[i + 1];
        const kval *child = child_get(&stack[i], key);
        kval next;

        if (child != NULL && is_coll(child)) {
            next = kval_copy(child);
            stack[i] = node_put(stack[i], key, kval_null());
            if (!lodash_set && is_array(&next) &&
                !(parse_index(next_key, &idx) &&
                  idx <= kval_array_len(&next)))
                next = array_to_map(next);
        } else if (lodash_set && parse_index(next_key, &idx)) {
            next = kval_array();
        } else {
            next = kval_map();
        }
        stack[i + 1] = next;
    }
    stack[n - 1] = node_put(stack[n - 1], &p->keys[n - 1], val);
    for (i = n - 1; i > 0; i--)
        stack[i - 1] = node_put(stack[i - 1], &p->keys[i - 1], stack[i]);
    out = stack[0];
    free(stack);
    return out;
}

static kval
fn_get(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *obj = builtin_arg(args, n_args, 0);
    struct path p;
    const kval *found;
    kval out;

    (void)vm;
    (void)data;
    if (!is_coll(obj))
        return kval_null();
    path_init(&p, builtin_arg(args, n_args, 1));
    found = path_get(obj, &p);
    out = found != NULL ? kval_copy(found) : kval_null();
    path_release(&p);
    return out;
}

/* put(path, toSet) merges at the top when the path is [] or missing. */
static kval
put_merge(const kval *val, const kval *to_set)
{
    struct kval_map_iter it;
    const kval *k, *v;
    kval out;

    if (kval_kind(to_set) == KV_MAP && kval_kind(val) == KV_MAP) {
        out = kval_copy(val);
        kval_map_iter_init(&it, to_set);
        while (kval_map_iter_next(&it, &k, &v))
            out = kval_map_put(out, kval_copy(k), kval_copy(v));
        kval_map_iter_done(&it);
        return out;
    }
    if (is_array(to_set) && is_array(val)) {
        /* Object.assign([], val, toSet): toSet overwrites index by index */
        out = kval_copy(val);
        for (size_t i = 0; i < kval_array_len(to_set); i++) {
            kval e = kval_copy(kval_array_get(to_set, i));
            if (i < kval_array_len(&out))
                out = kval_array_set(out, i, e);
            else
                out = kval_array_append(out, e);
        }
        return out;
    }
    return kval_copy(to_set);
}

static kval
fn_put(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *path = builtin_arg(args, n_args, 1);
    const kval *to_set = builtin_arg(args, n_args, 2);
    struct path p;
    kval out;

    (void)vm;
    (void)data;
    if (!is_coll(val) || n_args < 2)
        return kval_copy(val);
    if (n_args < 3)
        return put_merge(val, path);
    path_init(&p, path);
    if (p.n == 0)
        out = put_merge(val, to_set);
    else
        out = path_store(kval_copy(val), &p, kval_copy(to_set), false);
    path_release(&p);
    return out;
}

static kval
fn_set(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *obj = builtin_arg(args, n_args, 0);
    struct path p;
    kval root, out;

    (void)vm;
    (void)data;
    root = is_coll(obj) ? kval_copy(obj) : kval_map();
    path_init(&p, builtin_arg(args, n_args, 1));
    if (p.n == 0)
        out = root;             /* _.set with an empty path changes nothing */
    else
        out = path_store(root, &p,
                         kval_copy(builtin_arg(args, n_args, 2)), true);
    path_release(&p);
    return out;
}

/* _.unset on a copy: a missing path leaves the value as it is. */
static kval
fn_delete(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *parent = val, *last;
    struct path p;
    kval *stack, undef, out;
    size_t n, idx;

    (void)vm;
    (void)data;
    if (!is_coll(val))
        return kval_copy(val);
    path_init(&p, builtin_arg(args, n_args, 1));
    n = p.n;
    if (n == 0) {
        /* _.unset(obj, []) deletes the key "undefined" */
        undef = kval_cstr("undefined");
        last = &undef;
        n = 1;
    } else {
        undef = kval_null();
        for (size_t i = 0; i + 1 < n && parent != NULL; i++)
            parent = child_get(parent, &p.keys[i]);
        last = &p.keys[n - 1];
    }
    if (parent == NULL || child_get(parent, last) == NULL) {
        out = kval_copy(val);
        goto out;
    }
    stack = xcalloc(n, sizeof *stack);
    stack[0] = kval_copy(val);
    for (size_t i = 0; i + 1 < n; i++) {
        kval next = kval_copy(child_get(&stack[i], &p.keys[i]));
        stack[i] = node_put(stack[i], &p.keys[i], kval_null());
        stack[i + 1] = next;
    }
    if (kval_kind(&stack[n - 1]) == KV_MAP)
        stack[n - 1] = kval_map_delete(stack[n - 1], kval_str_ptr(last),
                                       kval_str_bytes(last));
    else if (parse_index(last, &idx))
        stack[n - 1] = kval_array_set(stack[n - 1], idx, kval_null());
    for (size_t i = n - 1; i > 0; i--)
        stack[i - 1] = node_put(stack[i - 1], &p.keys[i - 1], stack[i]);
    out = stack[0];
    free(stack);
out:
    kval_free(undef);
    path_release(&p);
    return out;
}

/*
 * _.keys / _.values of the value at PATH (when PATH is truthy): arrays and
 * strings give their indexes, maps their keys in enumeration order.
 */
static kval
keys_values(const kval *args, size_t n_args, bool want_keys)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *path = builtin_arg(args, n_args, 1);
    const kval *target = val;
    struct path p;
    kval out;
    size_t n;

    if (!is_coll(val))
        return kval_array();
    p.n = 0;
    p.keys = NULL;
    if (kval_truthy(path)) {
        path_init(&p, path);
        target = path_get(val, &p);
    }
    out = kval_array();
    if (target == NULL) {
        /* nothing there */
    } else if (kval_kind(target) == KV_MAP) {
        struct kval_map_iter it;
        const kval *k, *v;
        kval_map_iter_init(&it, target);
        while (kval_map_iter_next(&it, &k, &v))
            out = kval_array_append(out, kval_copy(want_keys ? k : v));
        kval_map_iter_done(&it);
    } else if (is_array(target) || kval_kind(target) == KV_STRING) {
        bool str = kval_kind(target) == KV_STRING;
        n = str ? kval_str_len16(target) : kval_array_len(target);
        for (size_t i = 0; i < n; i++) {
            kval e;
            if (want_keys)
                e = kval_str_fmt("%zu", i);
            else if (str)
                e = kval_str_substr16(target, i, 1);
            else
                e = kval_copy(kval_array_get(target, i));
            out = kval_array_append(out, e);
        }
    }
    path_release(&p);
    return out;
}

static kval
fn_keys(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return keys_values(args, n_args, true);
}

static kval
fn_values(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return keys_values(args, n_args, false);
}

/* ---- deep-equality sets ---- */

static uint64_t
mix(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

static uint64_t
bytes_hash(const char *s, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/*
 * A hash consistent with kval_equal: equal values hash alike.  Map members
 * are combined without regard to order; functions all hash alike and are
 * told apart by kval_equal.  Below HASH_DEPTH levels a container hashes by
 * its kind and size only, so that deep values cannot exhaust the C stack
 * (kval_equal, which is iterative, still decides).
 */
#define HASH_DEPTH 32

static uint64_t
deep_hash(const kval *v, int depth)
{
    uint64_t h, bits;
    double d;

    switch (kval_kind(v)) {
    case KV_NULL:
        return 0x6e756c6c;
    case KV_BOOL:
        return kval_get_bool(v) ? 0x74727565 : 0x66616c73;
    case KV_NUMBER:
        d = kval_get_number(v);
        if (d == 0)
            d = 0;              /* -0 == 0 */
        memcpy(&bits, &d, sizeof bits);
        return mix(bits ^ 0x4e554d);
    case KV_STRING:
        return mix(kval_str_hash(v));
    case KV_REGEXP: {
        const char *src = regexp_source(kval_get_regexp(v));
        return mix(bytes_hash(src, strlen(src)) ^ 0x5245);
    }
    case KV_ARRAY:
        h = mix(0x415252 + kval_array_len(v));
        if (depth >= HASH_DEPTH)
            return h;
        for (size_t i = 0; i < kval_array_len(v); i++)
            h = mix(h * 31 + deep_hash(kval_array_get(v, i), depth + 1));
        return h;
    case KV_MAP: {
        struct kval_map_iter it;
        const kval *k, *e;
        h = mix(0x4d4150 + kval_map_len(v));
        if (depth >= HASH_DEPTH)
            return h;
        kval_map_iter_init(&it, v);
        while (kval_map_iter_next(&it, &k, &e))
            h += mix(mix(kval_str_hash(k)) ^ deep_hash(e, depth + 1));
        kval_map_iter_done(&it);
        return h;
    }
    default:
        return 0x46554e43;
    }
}

/* An open-addressing set of borrowed values under kval_equal. */
struct vset {
    const kval **items;         /* slot contents, NULL when empty */
    uint64_t *hashes;
    size_t cap;                 /* a power of two */
    size_t n;
};

static void
vset_init(struct vset *s, size_t expect)
{
    s->cap = 16;
    while (s->cap < expect * 2)
        s->cap *= 2;
    s->items = xcalloc(s->cap, sizeof *s->items);
    s->hashes = xcalloc(s->cap, sizeof *s->hashes);
    s->n = 0;
}

static void
vset_release(struct vset *s)
{
    free(s->items);
    free(s->hashes);
}

static size_t
vset_slot(const struct vset *s, const kval *v, uint64_t h)
{
    size_t i = (size_t)h & (s->cap - 1);

    while (s->items[i] != NULL &&
           !(s->hashes[i] == h && kval_equal(s->items[i], v)))
        i = (i + 1) & (s->cap - 1);
    return i;
}

static bool
vset_has(const struct vset *s, const kval *v)
{
    return s->items[vset_slot(s, v, deep_hash(v, 0))] != NULL;
}

/* Add V unless present; true when it was added. */
static bool
vset_add(struct vset *s, const kval *v)
{
    uint64_t h = deep_hash(v, 0);
    size_t i = vset_slot(s, v, h);

    if (s->items[i] != NULL)
        return false;
    if ((s->n + 1) * 2 > s->cap) {
        struct vset big;
        vset_init(&big, s->n + 1);
        for (size_t j = 0; j < s->cap; j++)
            if (s->items[j] != NULL) {
                size_t k = (size_t)s->hashes[j] & (big.cap - 1);
                while (big.items[k] != NULL)
                    k = (k + 1) & (big.cap - 1);
                big.items[k] = s->items[j];
                big.hashes[k] = s->hashes[j];
            }
        big.n = s->n;
        vset_release(s);
        *s = big;
        i = vset_slot(s, v, h);
    }
    s->items[i] = v;
    s->hashes[i] = h;
    s->n++;
    return true;
}

/* Set operations see a non-array as a one-element array. */
static size_t
list_len(const kval *v)
{
    return is_array(v) ? kval_array_len(v) : 1;
}

static const kval *
list_at(const kval *v, size_t i)
{
    return is_array(v) ? kval_array_get(v, i) : v;
}

static kval
unique_of(const kval *a, const kval *b)
{
    size_t na = list_len(a), nb = b != NULL ? list_len(b) : 0;
    struct vset seen;
    kval out = kval_array();

    vset_init(&seen, na + nb);
    for (size_t i = 0; i < na + nb; i++) {
        const kval *e = i < na ? list_at(a, i) : list_at(b, i - na);
        if (vset_add(&seen, e))
            out = kval_array_append(out, kval_copy(e));
    }
    vset_release(&seen);
    return out;
}

/* Elements of A (in A's order) that are in B (KEEP) or are not. */
static kval
filter_by(const kval *a, const kval *b, bool keep, bool dedupe)
{
    struct vset in_b, seen;
    kval out = kval_array();

    vset_init(&in_b, list_len(b));
    vset_init(&seen, dedupe ? list_len(a) : 0);
    for (size_t i = 0; i < list_len(b); i++)
        vset_add(&in_b, list_at(b, i));
    for (size_t i = 0; i < list_len(a); i++) {
        const kval *e = list_at(a, i);
        if (vset_has(&in_b, e) != keep)
            continue;
        if (dedupe && !vset_add(&seen, e))
            continue;
        out = kval_array_append(out, kval_copy(e));
    }
    vset_release(&in_b);
    vset_release(&seen);
    return out;
}

static kval
fn_unique(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);

    (void)vm;
    (void)data;
    if (!is_array(val))
        return kval_copy(val);
    return unique_of(val, NULL);
}

static kval
fn_union(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    if (n_args < 2)
        return kval_copy(builtin_arg(args, n_args, 0));
    return unique_of(&args[0], &args[1]);
}

static kval
fn_intersection(struct krl_vm *vm, void *data, const kval *args,
                size_t n_args)
{
    (void)vm;
    (void)data;
    if (n_args < 2)
        return kval_array();
    return filter_by(&args[0], &args[1], true, true);
}

static kval
fn_difference(struct krl_vm *vm, void *data, const kval *args,
              size_t n_args)
{
    (void)vm;
    (void)data;
    if (n_args < 2)
        return kval_copy(builtin_arg(args, n_args, 0));
    return filter_by(&args[0], &args[1], false, false);
}

/* has(other): every element of OTHER is in VAL */
static kval
fn_has(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *other = builtin_arg(args, n_args, 1);
    kval d = filter_by(other, val, false, false);
    bool all_in = kval_array_len(&d) == 0;

    (void)vm;
    (void)data;
    kval_free(d);
    return kval_bool(all_in);
}

/*
 * once and duplicates group with _.groupBy, that is by JS String() of each
 * element (so 1 and "1" fall together), and list the groups in the order a
 * JS object enumerates them.
 */
static kval
group_count(const kval *val, bool want_once)
{
    size_t n = kval_array_len(val);
    size_t *count = xcalloc(n ? n : 1, sizeof *count);
    size_t *first = xcalloc(n ? n : 1, sizeof *first);
    size_t ng = 0;
    kval index = kval_map(), out = kval_array();
    struct kval_map_iter it;
    const kval *k, *v;

    for (size_t i = 0; i < n; i++) {
        kval name = js_string(kval_array_get(val, i));
        const kval *gi = kval_map_get(&index, kval_str_ptr(&name),
                                      kval_str_bytes(&name));
        if (gi != NULL) {
            count[(size_t)kval_get_number(gi)]++;
            kval_free(name);
            continue;
        }
        count[ng] = 1;
        first[ng] = i;
        index = kval_map_put(index, name, kval_number((double)ng));
        ng++;
    }
    kval_map_iter_init(&it, &index);
    while (kval_map_iter_next(&it, &k, &v)) {
        size_t g = (size_t)kval_get_number(v);
        if ((count[g] == 1) == want_once)
            out = kval_array_append(out,
                                    kval_copy(kval_array_get(val, first[g])));
    }
    kval_map_iter_done(&it);
    kval_free(index);
    free(count);
    free(first);
    return out;
}

static kval
fn_once(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);

    (void)vm;
    (void)data;
    if (!is_array(val))
        return kval_copy(val);
    return group_count(val, true);
}

static kval
fn_duplicates(struct krl_vm *vm, void *data, const kval *args,
              size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);

    (void)vm;
    (void)data;
    if (!is_array(val))
        return kval_array();
    return group_count(val, false);
}

/* ---- sort ---- */

enum sort_how { SORT_DEFAULT, SORT_REVERSE, SORT_NUMERIC, SORT_CIREMUN,
                SORT_CUSTOM };

struct sorter {
    enum sort_how how;
    const kval *arr;
    kval *strs;                 /* toString of each element (cmp sorts) */
    struct krl_vm *vm;
    const kval *fn;
    kval err;                   /* the comparator's error, if any */
};

/* JS `r <= 0` for a comparator's result R */
static bool
le_zero(const kval *r)
{
    double d;
    kval s;
    bool ok;

    switch (kval_kind(r)) {
    case KV_NULL:
        return true;
    case KV_BOOL:
        return !kval_get_bool(r);
    case KV_NUMBER:
        return kval_get_number(r) <= 0;
    default:
        s = js_string(r);
        ok = kval_num_parse(kval_str_ptr(&s), kval_str_bytes(&s), &d);
        kval_free(s);
        return ok && d <= 0;
    }
}

/* Whether element A goes before (or stays before) B; -1 on error. */
static int
in_order(struct sorter *s, size_t a, size_t b)
{
    const kval *x = kval_array_get(s->arr, a), *y = kval_array_get(s->arr, b);
    kval argv[2], r;
    bool le;

    switch (s->how) {
    case SORT_DEFAULT:
        return op_cmp(&s->strs[a], &s->strs[b]) <= 0;
    case SORT_REVERSE:
        return -op_cmp(&s->strs[a], &s->strs[b]) <= 0;
    case SORT_NUMERIC:
        return op_compare(x, y) <= 0;
    case SORT_CIREMUN:
        return -op_compare(x, y) <= 0;
    default:
        argv[0] = *x;
        argv[1] = *y;
        r = call(s->vm, s->fn, argv, 2);
        if (kval_is_error(&r)) {
            s->err = r;
            return -1;
        }
        le = le_zero(&r);
        kval_free(r);
        return le;
    }
}

/* A stable bottom-up merge sort of the index array IDX; -1 on error. */
static int
merge_sort(struct sorter *s, size_t *idx, size_t n)
{
    size_t *tmp = xcalloc(n ? n : 1, sizeof *tmp), *src = idx, *dst = tmp;
    int rc = 0;

    for (size_t width = 1; width < n && rc == 0; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = mid + width < n ? mid + width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int ord = in_order(s, src[i], src[j]);
                if (ord < 0) {
                    rc = -1;
                    goto out;
                }
                dst[k++] = ord ? src[i++] : src[j++];
            }
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
out:
    if (rc == 0 && src != idx)
        memcpy(idx, src, n * sizeof *idx);
    free(tmp);
    return rc;
}

static bool
str_eq(const kval *v, const char *s)
{
    return kval_kind(v) == KV_STRING && kval_str_bytes(v) == strlen(s) &&
           memcmp(kval_str_ptr(v), s, strlen(s)) == 0;
}

static kval
fn_sort(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *by = builtin_arg(args, n_args, 1);
    struct sorter s;
    size_t n, *idx;
    kval out;

    (void)data;
    if (!is_array(val))
        return kval_copy(val);
    memset(&s, 0, sizeof s);
    s.arr = val;
    s.vm = vm;
    s.fn = by;
    s.err = kval_null();
    if (str_eq(by, "reverse"))
        s.how = SORT_REVERSE;
    else if (str_eq(by, "numeric"))
        s.how = SORT_NUMERIC;
    else if (str_eq(by, "ciremun"))
        s.how = SORT_CIREMUN;
    else if (is_krl_function(by))
        s.how = SORT_CUSTOM;    /* an action is not: it sorts by default */
    else
        s.how = SORT_DEFAULT;
    n = kval_array_len(val);
    idx = xcalloc(n ? n : 1, sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    if (s.how == SORT_DEFAULT || s.how == SORT_REVERSE) {
        /* convert once, not at every comparison */
        s.strs = xcalloc(n ? n : 1, sizeof *s.strs);
        for (size_t i = 0; i < n; i++)
            s.strs[i] = op_to_string(kval_array_get(val, i));
    }
    if (merge_sort(&s, idx, n) < 0) {
        out = s.err;
    } else {
        out = kval_array_sized(n);
        for (size_t i = 0; i < n; i++)
            out = kval_array_append(out,
                                    kval_copy(kval_array_get(val, idx[i])));
    }
    if (s.strs != NULL) {
        for (size_t i = 0; i < n; i++)
            kval_free(s.strs[i]);
        free(s.strs);
    }
    free(idx);
    return out;
}

const struct krl_builtin lib_collection_builtins[] = {
    {"all", fn_all, KV_FN_FUNCTION, {"val", "iter", NULL}},
    {"notall", fn_notall, KV_FN_FUNCTION, {"val", "iter", NULL}},
    {"any", fn_any, KV_FN_FUNCTION, {"val", "iter", NULL}},
    {"none", fn_none, KV_FN_FUNCTION, {"val", "iter", NULL}},
    {"append", fn_append, KV_FN_FUNCTION,
     {"val", "a", "b", "c", "d", "e", NULL}},
    {"collect", fn_collect, KV_FN_FUNCTION, {"val", "iter", NULL}},
    {"filter", fn_filter, KV_FN_FUNCTION, {"val", "iter", NULL}},
    {"map", fn_map, KV_FN_FUNCTION, {"val", "iter", NULL}},
    {"head", fn_head, KV_FN_FUNCTION, {"val", NULL}},
    {"tail", fn_tail, KV_FN_FUNCTION, {"val", NULL}},
    {"index", fn_index, KV_FN_FUNCTION, {"val", "elm", NULL}},
    {"join", fn_join, KV_FN_FUNCTION, {"val", "str", NULL}},
    {"length", fn_length, KV_FN_FUNCTION, {"val", NULL}},
    {"isEmpty", fn_is_empty, KV_FN_FUNCTION, {"val", NULL}},
    {"pairwise", fn_pairwise, KV_FN_FUNCTION, {"val", "iter", NULL}},
    {"reduce", fn_reduce, KV_FN_FUNCTION, {"val", "iter", "dflt", NULL}},
    {"reverse", fn_reverse, KV_FN_FUNCTION, {"val", NULL}},
    {"slice", fn_slice, KV_FN_FUNCTION, {"val", "start", "end", NULL}},
    {"splice", fn_splice, KV_FN_FUNCTION,
     {"val", "start", "nElements", "value", NULL}},
    {"delete", fn_delete, KV_FN_FUNCTION, {"val", "path", NULL}},
    {"keys", fn_keys, KV_FN_FUNCTION, {"val", "path", NULL}},
    {"values", fn_values, KV_FN_FUNCTION, {"val", "path", NULL}},
    {"intersection", fn_intersection, KV_FN_FUNCTION, {"a", "b", NULL}},
    {"union", fn_union, KV_FN_FUNCTION, {"a", "b", NULL}},
    {"difference", fn_difference, KV_FN_FUNCTION, {"a", "b", NULL}},
    {"has", fn_has, KV_FN_FUNCTION, {"val", "other", NULL}},
    {"once", fn_once, KV_FN_FUNCTION, {"val", NULL}},
    {"duplicates", fn_duplicates, KV_FN_FUNCTION, {"val", NULL}},
    {"unique", fn_unique, KV_FN_FUNCTION, {"val", NULL}},
    {"put", fn_put, KV_FN_FUNCTION, {"val", "path", "toSet", NULL}},
    {"sort", fn_sort, KV_FN_FUNCTION, {"val", "sortBy", NULL}},
    {"get", fn_get, KV_FN_FUNCTION, {"obj", "path", NULL}},
    {"set", fn_set, KV_FN_FUNCTION, {"obj", "path", "val", NULL}},
    {NULL, NULL, 0, {NULL}}
};
