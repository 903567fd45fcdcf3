/*
 * ops.c - KRL operators and coercions (ops.h), following the reference
 * stdlib.ts / krl.ts: toString, toNumberOrNull, + - * / % unary -, <=>,
 * cmp, like and ><, with the reference's TypeError texts.
 */
#include "picomail/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/mem.h"
#include "picomail/regexp.h"

/* The reference's isNumber is _.isFinite. */
static bool
is_number(const kval *v)
{
    return kval_kind(v) == KV_NUMBER && isfinite(kval_get_number(v));
}

kval
op_to_string(const kval *v)
{
    char num[KVAL_NUM_BUFSIZE];
    const char *type;

    switch (kval_kind(v)) {
    case KV_STRING:
    case KV_ERROR:
        return kval_copy(v);
    case KV_NULL:
        return kval_cstr("null");
    case KV_BOOL:
        return kval_cstr(kval_get_bool(v) ? "true" : "false");
    case KV_NUMBER:
        if (!is_number(v))
            break;
        return kval_str(num, kval_num_format(kval_get_number(v), num));
    case KV_REGEXP: {
        const struct krl_regexp *re = kval_get_regexp(v);
        return kval_str_fmt("re#%s#%s%s", regexp_source(re),
                            regexp_global(re) ? "g" : "",
                            regexp_ignore_case(re) ? "i" : "");
    }
    case KV_ARRAY:
    case KV_MAP:
    case KV_FUNCTION:
        break;
    }
    type = kval_typeof(v);
    return kval_str_fmt("[%s]", type);
}

bool
op_to_number(const kval *v, double *out)
{
    double d;

    switch (kval_kind(v)) {
    case KV_NULL:
        *out = 0;
        return true;
    case KV_BOOL:
        *out = kval_get_bool(v) ? 1 : 0;
        return true;
    case KV_NUMBER:
        if (!is_number(v))
            return false;
        *out = kval_get_number(v);
        return true;
    case KV_STRING:
        /* Hex strings (parseInt base 16) read the same as Number() here */
        if (!kval_num_parse(kval_str_ptr(v), kval_str_bytes(v), &d) ||
            !isfinite(d))
            return false;
        *out = d;
        return true;
    case KV_ARRAY:
        *out = (double)kval_array_len(v);
        return true;
    case KV_MAP:
        *out = (double)kval_map_len(v);
        return true;
    case KV_REGEXP:
    case KV_FUNCTION:
    case KV_ERROR:
        break;
    }
    return false;
}

/* An error operand propagates; returns true and sets *OUT if one is. */
static bool
error_operand(const kval *a, const kval *b, kval *out)
{
    if (kval_is_error(a)) {
        *out = kval_copy(a);
        return true;
    }
    if (b != NULL && kval_is_error(b)) {
        *out = kval_copy(b);
        return true;
    }
    return false;
}

kval
op_add(const kval *a, const kval *b)
{
    kval r;

    if (error_operand(a, b, &r))
        return r;
    if (is_number(a) && is_number(b))
        return kval_number(kval_get_number(a) + kval_get_number(b));
    return kval_str_concat(op_to_string(a), op_to_string(b));
}

/* "TypeError: PRE<toString X>MID<toString Y>" */
static kval
type_error(const char *pre, const kval *x, const char *mid, const kval *y)
{
    kval sx = op_to_string(x);
    kval sy = y != NULL ? op_to_string(y) : kval_cstr("");
    kval e = kval_error("TypeError: %s%s%s%s", pre, kval_str_ptr(&sx), mid,
                        kval_str_ptr(&sy));
    kval_free(sx);
    kval_free(sy);
    return e;
}

kval
op_sub(const kval *a, const kval *b)
{
    double x, y;
    kval r;

    if (error_operand(a, b, &r))
        return r;
    if (!op_to_number(a, &x) || !op_to_number(b, &y))
        return type_error("", b, " cannot be subtracted from ", a);
    return kval_number(x - y);
}

kval
op_mul(const kval *a, const kval *b)
{
    double x, y;
    kval r;

    if (error_operand(a, b, &r))
        return r;
    if (!op_to_number(a, &x) || !op_to_number(b, &y))
        return type_error("", a, " cannot be multiplied by ", b);
    return kval_number(x * y);
}

kval
op_div(const kval *a, const kval *b)
{
    double x, y;
    kval r;

    if (error_operand(a, b, &r))
        return r;
    if (!op_to_number(a, &x) || !op_to_number(b, &y))
        return type_error("", a, " cannot be divided by ", b);
    if (y == 0)
        return kval_number(0);  /* the reference logs and returns 0 */
    return kval_number(x / y);
}

kval
op_mod(const kval *a, const kval *b)
{
    double x, y;
    kval r;

    if (error_operand(a, b, &r))
        return r;
    if (!op_to_number(a, &x) || !op_to_number(b, &y))
        return type_error("Cannot calculate ", a, " modulo ", b);
    if (y == 0)
        return kval_number(0);
    /* fmod has JavaScript's %: the sign of the dividend, x % Inf is x */
    return kval_number(fmod(x, y));
}

kval
op_neg(const kval *a)
{
    double x;
    kval r;

    if (error_operand(a, NULL, &r))
        return r;
    if (!op_to_number(a, &x))
        return type_error("Cannot negate ", a, "", NULL);
    return kval_number(-x);
}

int
op_compare(const kval *a, const kval *b)
{
    double x, y;
    kval sa, sb;
    int c;

    if (op_to_number(a, &x) && op_to_number(b, &y))
        return x == y ? 0 : x > y ? 1 : -1;
    sa = op_to_string(a);
    sb = op_to_string(b);
    c = kval_str_cmp16(&sa, &sb);
    kval_free(sa);
    kval_free(sb);
    return c;
}

int
op_cmp(const kval *a, const kval *b)
{
    kval sa = op_to_string(a);
    kval sb = op_to_string(b);
    int c = kval_str_cmp16(&sa, &sb);
    kval_free(sa);
    kval_free(sb);
    return c;
}

kval
op_like(const kval *a, const kval *b)
{
    struct regexp_match m;
    kval re, subject, r;
    int rc;

    if (error_operand(a, b, &r))
        return r;
    if (kval_kind(b) == KV_REGEXP) {
        re = kval_copy(b);
    } else {
        /* new RegExp(toString(b)): no flags */
        kval src = op_to_string(b);
        re = kval_regexp(kval_str_ptr(&src), kval_str_bytes(&src), "");
        kval_free(src);
        if (kval_is_error(&re))
            return re;
    }
    subject = op_to_string(a);
    rc = regexp_exec(kval_get_regexp(&re), kval_str_ptr(&subject),
                     kval_str_bytes(&subject), 0, &m);
    kval_free(subject);
    kval_free(re);
    if (rc < 0)
        return kval_error("RangeError: regular expression too complex");
    return kval_bool(rc == 1);
}

/* lodash _.has on an array of keys: each one an own property. */
static bool
has_path(const kval *obj, const kval *const *keys, size_t n)
{
    const kval *cur = obj;
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++) {
        kval k = op_to_string(keys[i]);
        const char *s = kval_str_ptr(&k);
        size_t len = kval_str_bytes(&k);
        const kval *next = NULL;

        if (kval_kind(cur) == KV_MAP) {
            next = kval_map_get(cur, s, len);
        } else if (kval_kind(cur) == KV_ARRAY) {
            /* an own index: canonical digits below the length */
            size_t idx = 0, j;
            bool ok = len > 0 && len < 16 && (len == 1 || s[0] != '0');
            for (j = 0; ok && j < len; j++) {
                ok = s[j] >= '0' && s[j] <= '9';
                idx = idx * 10 + (size_t)(s[j] - '0');
            }
            if (ok)
                next = kval_array_get(cur, idx);
        }
        kval_free(k);
        if (next == NULL)
            return false;
        cur = next;
    }
    return true;
}

bool
op_contains(const kval *a, const kval *b)
{
    size_t i, n;

    if (kval_kind(a) == KV_ARRAY) {
        n = kval_array_len(a);
        for (i = 0; i < n; i++)
            if (kval_equal(kval_array_get(a, i), b))
                return true;
        return false;
    }
    if (kval_kind(a) != KV_MAP)
        return false;
    if (kval_kind(b) == KV_ARRAY) {
        const kval **keys;
        bool r;
        n = kval_array_len(b);
        keys = xreallocarray(NULL, n ? n : 1, sizeof *keys);
        for (i = 0; i < n; i++)
            keys[i] = kval_array_get(b, i);
        r = has_path(a, keys, n);
        free(keys);
        return r;
    } else {
        kval k = op_to_string(b);
        const char *s = kval_str_ptr(&k);
        size_t len = kval_str_bytes(&k);
        bool r = kval_map_get(a, s, len) != NULL;

        /* lodash reads an absent "a.b" as the path a -> b */
        if (!r && memchr(s, '.', len) != NULL && memchr(s, '[', len) == NULL) {
            kval parts = kval_array();
            const kval **keys;
            size_t start = 0, j;
            for (j = 0; j <= len; j++) {
                if (j == len || s[j] == '.') {
                    parts = kval_array_append(parts, kval_str(s + start,
                                                              j - start));
                    start = j + 1;
                }
            }
            n = kval_array_len(&parts);
            keys = xreallocarray(NULL, n, sizeof *keys);
            for (i = 0; i < n; i++)
                keys[i] = kval_array_get(&parts, i);
            r = has_path(a, keys, n);
            free(keys);
            kval_free(parts);
        }
        kval_free(k);
        return r;
    }
}
