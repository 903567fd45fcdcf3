/*
 * lib_type.c - the KRL type library (krl-language.md §5 "Type functions"):
 * as, isnull, typeof and defaultsTo, plus JavaScript's String() coercion
 * for the other library files (lib_type_internal.h).
 *
 * klog is not here: it logs, so the evaluator owns it.  The reference's
 * "Hex" type quirk is deliberately not copied: "0x1F" is a String.
 */
#include "picomail/builtin.h"

#include <stdbool.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/ops.h"
#include "picomail/regexp.h"
#include "picomail/value.h"
#include "lib_type_internal.h"

static bool
str_is(const kval *v, const char *s)
{
    size_t n = strlen(s);
    return kval_kind(v) == KV_STRING && kval_str_bytes(v) == n &&
           memcmp(kval_str_ptr(v), s, n) == 0;
}

static void
add_kval_str(struct buf *out, const kval *s)
{
    buf_add(out, kval_str_ptr(s), kval_str_bytes(s));
}

/* Deeper arrays print as "" (JS itself would overflow its stack). */
#define JS_STRING_DEPTH 512

static void
js_string(const kval *v, struct buf *out, int depth)
{
    char num[KVAL_NUM_BUFSIZE];
    struct krl_regexp *re;

    switch (kval_kind(v)) {
    case KV_NULL:
        buf_adds(out, "null");
        break;
    case KV_BOOL:
        buf_adds(out, kval_get_bool(v) ? "true" : "false");
        break;
    case KV_NUMBER:
        buf_add(out, num, kval_num_format(kval_get_number(v), num));
        break;
    case KV_STRING:
        add_kval_str(out, v);
        break;
    case KV_REGEXP:
        re = kval_get_regexp(v);
        buf_addc(out, '/');
        buf_adds(out, regexp_source(re));
        buf_addc(out, '/');
        if (regexp_global(re))
            buf_addc(out, 'g');
        if (regexp_ignore_case(re))
            buf_addc(out, 'i');
        break;
    case KV_ARRAY:
        /* Array.prototype.join(","): null and undefined print as "" */
        if (depth >= JS_STRING_DEPTH)
            break;
        for (size_t i = 0; i < kval_array_len(v); i++) {
            const kval *e = kval_array_get(v, i);
            if (i > 0)
                buf_addc(out, ',');
            if (!kval_is_null(e))
                js_string(e, out, depth + 1);
        }
        break;
    case KV_MAP:
        buf_adds(out, "[object Object]");
        break;
    default: {
        /* functions: JS would print their source; KRL's text is closer */
        kval s = op_to_string(v);
        add_kval_str(out, &s);
        kval_free(s);
        break;
    }
    }
}

void
lib_type_js_string(const kval *v, struct buf *out)
{
    js_string(v, out, 0);
}

/* Matches /^\[[a-z]+\]$/i, the reference's test for "[Array]"-like text. */
static bool
is_bracket_word(const char *s, size_t len)
{
    if (len < 3 || s[0] != '[' || s[len - 1] != ']')
        return false;
    for (size_t i = 1; i + 1 < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

static kval
as_regexp(const kval *val)
{
    kval src = op_to_string(val);
    const char *s = kval_str_ptr(&src);
    size_t len = kval_str_bytes(&src);
    kval re;

    if (kval_kind(val) != KV_STRING && is_bracket_word(s, len)) {
        /* "[Function]" would be a character class; escape the brackets */
        struct buf b;
        buf_init(&b);
        buf_adds(&b, "\\[");
        buf_add(&b, s + 1, len - 2);
        buf_adds(&b, "\\]");
        re = kval_regexp(b.data, b.len, "");
        buf_release(&b);
    } else {
        re = kval_regexp(s, len, "");
    }
    kval_free(src);
    return re;
}

static kval
as_error(const kval *val, const kval *type)
{
    struct buf t;
    kval s = op_to_string(val);
    kval err;

    buf_init(&t);
    lib_type_js_string(type, &t);
    err = kval_error("TypeError: Cannot use the .as(\"%s\") operator with %s "
                     "(type %s)", t.data, kval_str_ptr(&s),
                     kval_typeof(val));
    buf_release(&t);
    kval_free(s);
    return err;
}

static kval
fn_as(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *type = builtin_arg(args, n_args, 1);
    double d;

    (void)vm;
    (void)data;
    if (n_args < 2 || str_is(type, kval_typeof(val)))
        return kval_copy(val);
    if (str_is(type, "Boolean")) {
        if (str_is(val, "false"))
            return kval_bool(false);
        if (kval_kind(val) == KV_NUMBER)
            return kval_bool(kval_get_number(val) != 0);
        return kval_bool(kval_truthy(val));
    }
    if (str_is(type, "String"))
        return op_to_string(val);
    if (str_is(type, "Number"))
        return op_to_number(val, &d) ? kval_number(d) : kval_null();
    if (str_is(type, "RegExp"))
        return as_regexp(val);
    return as_error(val, type);
}

static kval
fn_isnull(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return kval_bool(kval_is_null(builtin_arg(args, n_args, 0)));
}

static kval
fn_typeof(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return kval_cstr(kval_typeof(builtin_arg(args, n_args, 0)));
}

/*
 * The reference also logs MESSAGE at debug level when it falls back; the
 * library has no logger, so the message is accepted and not logged.
 */
static kval
fn_defaults_to(struct krl_vm *vm, void *data, const kval *args,
               size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);

    (void)vm;
    (void)data;
    if (!kval_is_null(val))
        return kval_copy(val);
    return kval_copy(builtin_arg(args, n_args, 1));
}

const struct krl_builtin lib_type_builtins[] = {
    {"as", fn_as, KV_FN_FUNCTION, {"val", "type", NULL}},
    {"isnull", fn_isnull, KV_FN_FUNCTION, {"val", NULL}},
    {"typeof", fn_typeof, KV_FN_FUNCTION, {"val", NULL}},
    {"defaultsTo", fn_defaults_to, KV_FN_FUNCTION,
     {"val", "defaultVal", "message", NULL}},
    {NULL, NULL, 0, {NULL}}
};
