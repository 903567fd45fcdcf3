/*
 * t_lib_type.c - unit tests of the KRL type library (src/krl/lib_type.c):
 * as, isnull, typeof, defaultsTo and the JS String() helper.  Ported from
 * the reference engine's krl-stdlib test.ts "type operators" and
 * "defaultsTo", and from the conformance cases str_convert,
 * coerce_truthiness, coerce_mixed and map_ops.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/builtin.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/regexp.h"
#include "picomail/value.h"
#include "../../src/krl/lib_type_internal.h"
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
    for (size_t i = 0; lib_type_builtins[i].name != NULL; i++)
        if (strcmp(lib_type_builtins[i].name, name) == 0)
            return &lib_type_builtins[i];
    fprintf(stderr, "no builtin %s\n", name);
    abort();
}

static kval
callv(const char *name, const kval *argv, size_t n)
{
    return find(name)->fn(NULL, NULL, argv, n);
}

static kval
callj(const char *name, const char *args)
{
    kval a = J(args), argv[8], r;
    size_t n = kval_array_len(&a);

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

/* R (consumed) against JSON WANT (text and ==), or "!error message". */
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
                 kval_equal(&r, &w) && kval_kind(&r) == kval_kind(&w);
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

static kval
f_dummy(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    (void)args;
    (void)n;
    return kval_null();
}

static kval
fnv(unsigned kinds)
{
    return kval_func_new(f_dummy, NULL, NULL, kinds, "f", NULL, 0);
}

struct tcase {
    const char *fn;
    const char *args;
    const char *want;
};

static const struct tcase cases[] = {
    /* as: missing type, same type */
    {"as", "[{\"a\":1}]", "{\"a\":1}"},
    {"as", "[[1,null],\"Array\"]", "[1,null]"},
    {"as", "[{},\"Map\"]", "{}"},
    {"as", "[null,\"Null\"]", "null"},
    {"as", "[true,\"Boolean\"]", "true"},
    {"as", "[\"s\",\"String\"]", "\"s\""},
    {"as", "[7,\"Number\"]", "7"},

    /* as String */
    {"as", "[1,\"String\"]", "\"1\""},
    {"as", "[0.32,\"String\"]", "\"0.32\""},
    {"as", "[0,\"String\"]", "\"0\""},
    {"as", "[null,\"String\"]", "\"null\""},
    {"as", "[true,\"String\"]", "\"true\""},
    {"as", "[false,\"String\"]", "\"false\""},
    {"as", "[\"str\",\"String\"]", "\"str\""},
    {"as", "[[1,2],\"String\"]", "\"[Array]\""},
    {"as", "[{},\"String\"]", "\"[Map]\""},
    {"as", "[1.0,\"String\"]", "\"1\""},
    {"as", "[-2,\"String\"]", "\"-2\""},
    {"as", "[1000000,\"String\"]", "\"1000000\""},
    {"as", "[0.25,\"String\"]", "\"0.25\""},
    {"as", "[12.75,\"String\"]", "\"12.75\""},
    {"as", "[1e21,\"String\"]", "\"1e+21\""},
    {"as", "[\"\\u00e9\\ud83d\\ude00\",\"String\"]",
     "\"\\u00e9\\ud83d\\ude00\""},

    /* as Number */
    {"as", "[\"-1.23\",\"Number\"]", "-1.23"},
    {"as", "[42,\"Number\"]", "42"},
    {"as", "[true,\"Number\"]", "1"},
    {"as", "[false,\"Number\"]", "0"},
    {"as", "[null,\"Number\"]", "0"},
    {"as", "[\"foo\",\"Number\"]", "null"},
    {"as", "[{},\"Number\"]", "0"},
    {"as", "[[1,2],\"Number\"]", "2"},
    {"as", "[{\"a\":\"b\",\"z\":\"y\",\"c\":\"d\"},\"Number\"]", "3"},
    {"as", "[\"\",\"Number\"]", "0"},
    {"as", "[\"2018-03-07\",\"Number\"]", "null"},
    {"as", "[\"1,000\",\"Number\"]", "null"},
    {"as", "[\"1,000.25\",\"Number\"]", "null"},
    {"as", "[\"1000.25\",\"Number\"]", "1000.25"},
    {"as", "[\" 123 \",\"Number\"]", "123"},
    {"as", "[\" 1 2 \",\"Number\"]", "null"},
    {"as", "[\" +5  \",\"Number\"]", "5"},
    {"as", "[\" + 5  \",\"Number\"]", "null"},
    {"as", "[\"0xAF\",\"Number\"]", "175"},
    {"as", "[\"0o72\",\"Number\"]", "58"},
    {"as", "[\"0b01101\",\"Number\"]", "13"},
    {"as", "[\"0b02101\",\"Number\"]", "null"},
    {"as", "[\"42\",\"Number\"]", "42"},
    {"as", "[\"-3.5\",\"Number\"]", "-3.5"},
    {"as", "[\" 7 \",\"Number\"]", "7"},
    {"as", "[\"seven\",\"Number\"]", "null"},
    {"as", "[\"1.5e1\",\"Number\"]", "15"},

    /* as Boolean */
    {"as", "[\"true\",\"Boolean\"]", "true"},
    {"as", "[\"false\",\"Boolean\"]", "false"},
    {"as", "[\"FALSE\",\"Boolean\"]", "true"},
    {"as", "[0,\"Boolean\"]", "false"},
    {"as", "[2,\"Boolean\"]", "true"},
    {"as", "[-0.5,\"Boolean\"]", "true"},
    {"as", "[\"x\",\"Boolean\"]", "true"},
    {"as", "[\"\",\"Boolean\"]", "false"},
    {"as", "[\"0\",\"Boolean\"]", "true"},
    {"as", "[[],\"Boolean\"]", "true"},
    {"as", "[{},\"Boolean\"]", "true"},
    {"as", "[null,\"Boolean\"]", "false"},

    /* as: unknown type names */
    {"as", "[\"0\",\"num\"]",
     "!TypeError: Cannot use the .as(\"num\") operator with 0 (type String)"},
    {"as", "[\"abc\",\"Widget\"]",
     "!TypeError: Cannot use the .as(\"Widget\") operator with abc "
     "(type String)"},
    {"as", "[[],\"Map\"]",
     "!TypeError: Cannot use the .as(\"Map\") operator with [Array] "
     "(type Array)"},
    {"as", "[1,\"Hex\"]",
     "!TypeError: Cannot use the .as(\"Hex\") operator with 1 (type Number)"},
    {"as", "[1,\"string\"]",
     "!TypeError: Cannot use the .as(\"string\") operator with 1 "
     "(type Number)"},
    {"as", "[null,5]",
     "!TypeError: Cannot use the .as(\"5\") operator with null (type Null)"},
    {"as", "[true,[\"a\",null,\"b\"]]",
     "!TypeError: Cannot use the .as(\"a,,b\") operator with true "
     "(type Boolean)"},
    {"as", "[1,{}]",
     "!TypeError: Cannot use the .as(\"[object Object]\") operator with 1 "
     "(type Number)"},
    {"as", "[1,null]",
     "!TypeError: Cannot use the .as(\"null\") operator with 1 (type Number)"},

    /* isnull */
    {"isnull", "[]", "true"},
    {"isnull", "[null]", "true"},
    {"isnull", "[false]", "false"},
    {"isnull", "[0]", "false"},
    {"isnull", "[\"\"]", "false"},
    {"isnull", "[{}]", "false"},
    {"isnull", "[[]]", "false"},
    {"isnull", "[\"null\"]", "false"},

    /* typeof */
    {"typeof", "[\"\"]", "\"String\""},
    {"typeof", "[\"1\"]", "\"String\""},
    {"typeof", "[\"5\"]", "\"String\""},
    {"typeof", "[\"0x1F\"]", "\"String\""},
    {"typeof", "[\"ABC\"]", "\"String\""},
    {"typeof", "[0]", "\"Number\""},
    {"typeof", "[-0.01]", "\"Number\""},
    {"typeof", "[10e10]", "\"Number\""},
    {"typeof", "[1.5]", "\"Number\""},
    {"typeof", "[true]", "\"Boolean\""},
    {"typeof", "[false]", "\"Boolean\""},
    {"typeof", "[null]", "\"Null\""},
    {"typeof", "[]", "\"Null\""},
    {"typeof", "[[]]", "\"Array\""},
    {"typeof", "[{}]", "\"Map\""},
    {"typeof", "[{\"five\":5}]", "\"Map\""},

    /* defaultsTo */
    {"defaultsTo", "[null,42]", "42"},
    {"defaultsTo", "[null,42,\"message 1\"]", "42"},
    {"defaultsTo", "[null,42,null]", "42"},
    {"defaultsTo", "[[null]]", "[null]"},
    {"defaultsTo", "[null]", "null"},
    {"defaultsTo", "[]", "null"},
    {"defaultsTo", "[\"given\",\"default!\"]", "\"given\""},
    {"defaultsTo", "[0,\"default!\"]", "0"},
    {"defaultsTo", "[false,\"default!\"]", "false"},
    {"defaultsTo", "[\"\",\"default!\"]", "\"\""},
    {"defaultsTo", "[null,\"default!\"]", "\"default!\""},
    {"defaultsTo", "[null,{\"a\":[1]}]", "{\"a\":[1]}"},
};

static void
test_table(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s(%s)", cases[i].fn, cases[i].args);
        expect(callj(cases[i].fn, cases[i].args), cases[i].want, name);
    }
}

/* as(v, "RegExp"): the source of the result, or "!error" */
static void
expect_regexp(const kval *v, const char *want, const char *name)
{
    kval type = kval_cstr("RegExp"), argv[2] = {*v, type};
    kval r = callv("as", argv, 2);

    if (kval_is_error(&r)) {
        char *got = show(&r);
        t_eq_str(got, want, name);
        free(got);
    } else if (kval_kind(&r) != KV_REGEXP) {
        t_ok(0, name);
    } else {
        t_eq_str(regexp_source(kval_get_regexp(&r)), want, name);
        t_ok(!regexp_global(kval_get_regexp(&r)) ||
             kval_kind(v) == KV_REGEXP, "as RegExp has no flags");
    }
    kval_free(r);
    kval_free(type);
}

static void
test_as_regexp(void)
{
    kval v, f;

    v = kval_cstr("^a.*z$");
    expect_regexp(&v, "^a.*z$", "string as RegExp");
    kval_free(v);
    v = kval_null();
    expect_regexp(&v, "null", "null as RegExp");
    v = kval_number(123);
    expect_regexp(&v, "123", "number as RegExp");
    f = fnv(KV_FN_FUNCTION);
    expect_regexp(&f, "\\[Function\\]", "function as RegExp");
    kval_free(f);
    f = fnv(KV_FN_ACTION);
    expect_regexp(&f, "\\[Action\\]", "action as RegExp");
    kval_free(f);
    v = J("[1]");
    expect_regexp(&v, "\\[Array\\]", "array as RegExp");
    kval_free(v);
    v = kval_cstr("[Function]");
    expect_regexp(&v, "[Function]", "string [Function] stays a class");
    kval_free(v);
    v = kval_cstr("(");
    {
        kval type = kval_cstr("RegExp"), argv[2] = {v, type};
        kval r = callv("as", argv, 2);
        t_ok(kval_is_error(&r) &&
             strncmp(kval_error_msg(&r), "SyntaxError", 11) == 0,
             "a bad pattern is a SyntaxError");
        kval_free(r);
        kval_free(type);
    }
    kval_free(v);

    /* a regexp is returned as it is */
    v = kval_regexp("^a.*z$", 6, "gi");
    {
        kval type = kval_cstr("RegExp"), argv[2] = {v, type};
        kval r = callv("as", argv, 2);
        t_ok(kval_kind(&r) == KV_REGEXP &&
             kval_get_regexp(&r) == kval_get_regexp(&v),
             "a regexp as RegExp is the same regexp");
        kval_free(r);
        kval_free(type);
        type = kval_cstr("String");
        argv[1] = type;
        expect(callv("as", argv, 2), "\"re#^a.*z$#gi\"", "regexp as String");
        kval_free(type);
    }
    kval_free(v);
    v = kval_regexp("^a.*b", 5, "");
    {
        kval type = kval_cstr("String"), argv[2] = {v, type};
        expect(callv("as", argv, 2), "\"re#^a.*b#\"", "regexp as String 2");
        type = kval_cstr("Number");
        kval_free(argv[1]);
        argv[1] = type;
        expect(callv("as", argv, 2), "null", "regexp as Number");
        kval_free(type);
    }
    kval_free(v);

    /* the type name may be a regexp: JS prints it /src/flags */
    v = J("{}");
    {
        kval re = kval_regexp("boolean", 7, ""), argv[2] = {v, re};
        expect(callv("as", argv, 2),
               "!TypeError: Cannot use the .as(\"/boolean/\") operator with "
               "[Map] (type Map)", "as with a regexp type");
        kval_free(re);
    }
    kval_free(v);

    /* "x".as("RegExp").typeof() */
    v = kval_cstr("x");
    {
        kval type = kval_cstr("RegExp"), argv[2] = {v, type};
        kval r = callv("as", argv, 2);
        expect(callv("typeof", &r, 1), "\"RegExp\"", "as RegExp typeof");
        kval_free(r);
        kval_free(type);
    }
    kval_free(v);
}

static void
test_functions(void)
{
    kval f = fnv(KV_FN_FUNCTION), a = fnv(KV_FN_ACTION);
    kval af = fnv(KV_FN_FUNCTION | KV_FN_ACTION), re = kval_regexp("a", 1, "");
    kval type;

    expect(callv("typeof", &f, 1), "\"Function\"", "typeof function");
    expect(callv("typeof", &a, 1), "\"Action\"", "typeof action");
    expect(callv("typeof", &af, 1), "\"ActionFunction\"",
           "typeof action function");
    expect(callv("typeof", &re, 1), "\"RegExp\"", "typeof regexp");
    expect(callv("isnull", &f, 1), "false", "isnull function");

    type = kval_cstr("String");
    {
        kval argv[2] = {f, type};
        expect(callv("as", argv, 2), "\"[Function]\"", "function as String");
        argv[0] = a;
        expect(callv("as", argv, 2), "\"[Action]\"", "action as String");
    }
    kval_free(type);
    type = kval_cstr("Function");
    {
        kval argv[2] = {f, type};
        kval r = callv("as", argv, 2);
        t_ok(kval_kind(&r) == KV_FUNCTION && kval_refcount(&f) == 2,
             "function as Function is itself");
        kval_free(r);
        argv[0] = a;
        expect(callv("as", argv, 2),
               "!TypeError: Cannot use the .as(\"Function\") operator with "
               "[Action] (type Action)", "action as Function");
    }
    kval_free(type);
    type = kval_cstr("Boolean");
    {
        kval argv[2] = {f, type};
        expect(callv("as", argv, 2), "true", "function as Boolean");
    }
    kval_free(type);
    {
        kval n = kval_null(), argv[3] = {n, f, n};
        kval r = callv("defaultsTo", argv, 3);
        t_ok(kval_kind(&r) == KV_FUNCTION, "defaultsTo a function");
        kval_free(r);
    }

    /* results are new references, arguments keep their count */
    {
        kval m = J("{\"a\":[1]}");
        kval r = callv("defaultsTo", &m, 1);
        t_eq_int(kval_refcount(&m), 2, "defaultsTo returns a reference");
        kval_free(r);
        t_eq_int(kval_refcount(&m), 1, "and it was the only one");
        kval_free(m);
    }
    kval_free(f);
    kval_free(a);
    kval_free(af);
    kval_free(re);
}

static void
test_js_string(void)
{
    static const struct {
        const char *json, *want;
    } cases_[] = {
        {"null", "null"},
        {"true", "true"},
        {"false", "false"},
        {"0", "0"},
        {"-1.5", "-1.5"},
        {"1e21", "1e+21"},
        {"\"text\"", "text"},
        {"\"\"", ""},
        {"[]", ""},
        {"[1,2]", "1,2"},
        {"[null]", ""},
        {"[1,[2,[3,null]],\"x\"]", "1,2,3,,x"},
        {"[{}]", "[object Object]"},
        {"{}", "[object Object]"},
        {"{\"a\":1}", "[object Object]"},
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof cases_[0]; i++) {
        kval v = J(cases_[i].json);
        struct buf b;
        buf_init(&b);
        lib_type_js_string(&v, &b);
        t_eq_str(b.data, cases_[i].want, cases_[i].json);
        buf_release(&b);
        kval_free(v);
    }

    kval re = kval_regexp("a/b", 3, "gi");
    struct buf b;
    buf_init(&b);
    lib_type_js_string(&re, &b);
    t_eq_str(b.data, "/a/b/gi", "js string of a regexp");
    buf_release(&b);
    kval_free(re);
}

static void
test_table_shape(void)
{
    size_t n = 0;

    while (lib_type_builtins[n].name != NULL)
        n++;
    t_eq_int(n, 4, "type table size");
    t_eq_str(find("as")->params[0], "val", "as param 1");
    t_eq_str(find("as")->params[1], "type", "as param 2");
    t_ok(find("as")->params[2] == NULL, "as has two params");
    t_eq_str(find("isnull")->params[0], "val", "isnull param");
    t_eq_str(find("typeof")->params[0], "val", "typeof param");
    t_eq_str(find("defaultsTo")->params[1], "defaultVal", "defaultsTo p2");
    t_eq_str(find("defaultsTo")->params[2], "message", "defaultsTo p3");
    for (size_t i = 0; i < n; i++)
        t_ok(lib_type_builtins[i].kinds == KV_FN_FUNCTION,
             lib_type_builtins[i].name);
    for (size_t i = 0; lib_collection_builtins[i].name != NULL; i++)
        for (size_t j = 0; j < n; j++)
            t_ok(strcmp(lib_collection_builtins[i].name,
                        lib_type_builtins[j].name) != 0,
                 "no name in both tables");
}

int
main(void)
{
    test_table_shape();
    test_table();
    test_as_regexp();
    test_functions();
    test_js_string();
    return tap_done();
}
