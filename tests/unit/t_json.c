/*
 * t_json.c - unit tests for json.c: parsing (member order, duplicates,
 * errors, depth), printing like JSON.stringify (escapes, numbers, dropped
 * null members, indentation, modes) and round trips.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/value.h"
#include "tap.h"

#define N_(a) (sizeof(a) / sizeof((a)[0]))

static kval
dummy(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    (void)args;
    (void)n;
    return kval_null();
}

/* Parse then print compactly in MODE; "ERR" on a parse error, "REFUSED"
 * when the printer refuses.  The result is malloc'd. */
static char *
reprint(const char *text, size_t len, enum json_mode mode, int indent)
{
    kval v = json_parse(text, len);
    struct buf b;

    if (kval_is_error(&v)) {
        kval_free(v);
        return xstrdup("ERR");
    }
    buf_init(&b);
    if (json_encode(&v, mode, indent, &b) < 0) {
        buf_release(&b);
        kval_free(v);
        return xstrdup("REFUSED");
    }
    kval_free(v);
    return buf_take(&b, NULL);
}

static void
test_parse_print(void)
{
    struct {
        const char *in, *want;
    } t[] = {
        {"1", "1"},
        {"-0", "0"},
        {"1.0", "1"},
        {"1e2", "100"},
        {"1E-7", "1e-7"},
        {"0.1", "0.1"},
        {"12345678901234567890", "12345678901234567000"},
        {"-12.75", "-12.75"},
        {"true", "true"},
        {"false", "false"},
        {"null", "null"},
        {"\"a\"", "\"a\""},
        {"\"\"", "\"\""},
        {"[]", "[]"},
        {"{}", "{}"},
        {" [1, 2 ,3] ", "[1,2,3]"},
        {"\n{ \"x\" : [ ] }\t", "{\"x\":[]}"},
        {"{\"b\":1,\"a\":2}", "{\"b\":1,\"a\":2}"},
        {"{\"b\":1,\"a\":2,\"1\":3,\"0\":4}", "{\"0\":4,\"1\":3,\"b\":1,\"a\":2}"},
        {"{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}"},
        {"{\"a\":null}", "{\"a\":null}"},
        {"[null,1]", "[null,1]"},
        {"{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}",
         "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}"},
        {"\"\\u00e9\"", "\"\xC3\xA9\""},
        {"\"\\ud83d\\ude00\"", "\"\xF0\x9F\x98\x80\""},
        {"\"\xF0\x9F\x98\x80\"", "\"\xF0\x9F\x98\x80\""},
        {"\"\\u0000\"", "\"\\u0000\""},
        {"\"\\u001f\\u0001\"", "\"\\u001f\\u0001\""},
        {"\"\\/\"", "\"/\""},
        {"\"\\b\\f\\n\\r\\t\"", "\"\\b\\f\\n\\r\\t\""},
        {"\"\\\"\\\\\"", "\"\\\"\\\\\""},
        {"\"\\u007f\"", "\"\x7f\""},
        {"\"\\u2028\"", "\"\xE2\x80\xA8\""},
        /* jansson refuses NUL in keys (JSON.parse takes it; see json.c) */
        {"{\"k\\u0000y\":1}", "ERR"},
        {"[[[[]]]]", "[[[[]]]]"},
        {"[1e308]", "[1e+308]"},
        {"5e-324", "5e-324"},
        /* errors */
        {"{broken", "ERR"},
        {"", "ERR"},
        {"   ", "ERR"},
        {"[1,]", "ERR"},
        {"{\"a\":1,}", "ERR"},
        {"[1] x", "ERR"},
        {"nul", "ERR"},
        {"'a'", "ERR"},
        {"{a:1}", "ERR"},
        {"\"\x01\"", "ERR"},
        {"NaN", "ERR"},
        {"[", "ERR"},
        {"\"abc", "ERR"},
    };
    size_t i;
    char name[128];

    for (i = 0; i < N_(t); i++) {
        char *got = reprint(t[i].in, strlen(t[i].in), JSON_DATA, 0);
        snprintf(name, sizeof name, "json %s", t[i].in);
        t_eq_str(got, t[i].want, name);
        free(got);
    }
    {
        char *got = reprint("\"a\0b\"", 5, JSON_DATA, 0);
        t_eq_str(got, "ERR", "raw NUL in JSON text is an error");
        free(got);
    }
}

static void
test_parse_values(void)
{
    kval v;
    const kval *e;

    {
        static const char txt[] =
            "{\"s\":\"caf\\u00e9\",\"n\":-2.5,\"a\":[true,null]}";
        v = json_parse(txt, strlen(txt));
    }
    t_eq_int(kval_kind(&v), KV_MAP, "parse map kind");
    e = kval_map_get_str(&v, "s");
    t_ok(e != NULL && kval_str_len16(e) == 4, "parsed string len16");
    e = kval_map_get_str(&v, "n");
    t_ok(e != NULL && kval_get_number(e) == -2.5, "parsed number");
    e = kval_map_get_str(&v, "a");
    t_ok(e != NULL && kval_array_len(e) == 2, "parsed array");
    t_ok(e != NULL && kval_null_is_json(kval_array_get(e, 1)),
         "parsed null is JSON null");
    kval_free(v);

    v = json_parse("{broken", 7);
    t_ok(kval_is_error(&v), "parse error is an error value");
    t_ok(strstr(kval_error_msg(&v), "line 1") != NULL,
         "parse error names the line");
    t_ok(strncmp(kval_error_msg(&v), "SyntaxError", 11) == 0,
         "parse error is a SyntaxError");
    kval_free(v);
    v = json_parse("[1,\n2,\n x]", 10);
    t_ok(strstr(kval_error_msg(&v), "line 3") != NULL, "error on line 3");
    kval_free(v);

    /* member order of a larger object is the text order */
    {
        struct buf in;
        char key[16], *out;
        int i;
        buf_init(&in);
        buf_addc(&in, '{');
        for (i = 0; i < 200; i++) {
            snprintf(key, sizeof key, "k%d", (i * 37) % 200);
            buf_printf(&in, "%s\"%s\":%d", i ? "," : "", key, i);
        }
        buf_addc(&in, '}');
        out = reprint(in.data, in.len, JSON_DATA, 0);
        t_eq_str(out, in.data, "200 members keep their order");
        free(out);
        buf_release(&in);
    }
}

static char *
nested(const char *open, const char *close, int depth)
{
    struct buf b;
    int i;

    buf_init(&b);
    for (i = 0; i < depth; i++)
        buf_adds(&b, open);
    buf_adds(&b, "1");
    for (i = 0; i < depth; i++)
        buf_adds(&b, close);
    return buf_take(&b, NULL);
}

static void
test_depth(void)
{
    char *txt, *out;
    kval v, deep;
    struct buf b;
    int i;

    txt = nested("[", "]", JSON_MAX_DEPTH);
    out = reprint(txt, strlen(txt), JSON_DATA, 0);
    t_eq_str(out, txt, "JSON_MAX_DEPTH arrays parse and print");
    free(out);
    free(txt);
    txt = nested("[", "]", JSON_MAX_DEPTH + 1);
    v = json_parse(txt, strlen(txt));
    t_ok(kval_is_error(&v), "one level deeper is an error");
    t_ok(strstr(kval_error_msg(&v), "deep") != NULL, "depth error message");
    kval_free(v);
    free(txt);
    txt = nested("{\"a\":", "}", JSON_MAX_DEPTH + 1);
    v = json_parse(txt, strlen(txt));
    t_ok(kval_is_error(&v), "deep objects are an error");
    kval_free(v);
    free(txt);
    txt = nested("[", "]", 100000);
    v = json_parse(txt, strlen(txt));
    t_ok(kval_is_error(&v), "100000 levels are an error, not a crash");
    kval_free(v);
    free(txt);

    /* the printer refuses (DATA) or cuts with null (KRL) */
    deep = kval_number(1);
    for (i = 0; i < JSON_MAX_DEPTH + 1; i++)
        deep = kval_array_append(kval_array(), deep);
    buf_init(&b);
    t_eq_int(json_encode(&deep, JSON_DATA, 0, &b), -1,
             "encoder refuses too deep data");
    buf_reset(&b);
    t_eq_int(json_encode(&deep, JSON_KRL, 0, &b), 0, "KRL encode of deep");
    t_ok(b.len == 2 * JSON_MAX_DEPTH + 4 &&
         strstr(b.data, "[null]") != NULL, "deep KRL encode prints null");
    buf_release(&b);
    kval_free(deep);
}

static char *
enc(const kval *v, enum json_mode mode, int indent)
{
    struct buf b;
    buf_init(&b);
    if (json_encode(v, mode, indent, &b) < 0) {
        buf_release(&b);
        return xstrdup("REFUSED");
    }
    return buf_take(&b, NULL);
}

static void
check_enc(kval v, enum json_mode mode, int indent, const char *want,
          const char *name)
{
    char *got = enc(&v, mode, indent);
    t_eq_str(got, want, name);
    free(got);
    kval_free(v);
}

static void
test_encode(void)
{
    static const uint16_t lone[] = {'a', 0xD800, 'b', 0xDFFF};
    kval m;

    m = kval_map_put_str(kval_map(), "a", kval_null());
    m = kval_map_put_str(m, "b", kval_number(1));
    check_enc(kval_copy(&m), JSON_DATA, 0, "{\"b\":1}",
              "KRL null member dropped");
    check_enc(kval_copy(&m), JSON_KRL, 0, "{\"a\":null,\"b\":1}",
              "KRL encode keeps null members");
    kval_free(m);
    m = kval_map_put_str(kval_map(), "a", kval_null());
    check_enc(kval_copy(&m), JSON_DATA, 0, "{}", "all members dropped");
    check_enc(m, JSON_DATA, 2, "{}", "all members dropped, indented");
    check_enc(kval_array_append(kval_array(), kval_null()), JSON_DATA, 0,
              "[null]", "null array element kept");
    check_enc(kval_null(), JSON_DATA, 0, "null", "top-level null");
    check_enc(kval_number(INFINITY), JSON_DATA, 0, "null", "Infinity is null");
    check_enc(kval_number(-INFINITY), JSON_DATA, 0, "null", "-Infinity");
    check_enc(kval_number(INFINITY), JSON_KRL, 0, "\"[JSObject]\"",
              "KRL encode of Infinity");
    check_enc(kval_number(-0.0), JSON_DATA, 0, "0", "-0 prints 0");
    check_enc(kval_number(0.1 + 0.2), JSON_DATA, 0, "0.30000000000000004",
              "shortest digits");
    check_enc(kval_regexp("a+", 2, "ig"), JSON_DATA, 0, "REFUSED",
              "regexp refused in data");
    check_enc(kval_regexp("a+", 2, "ig"), JSON_KRL, 0, "\"re#a+#gi\"",
              "regexp as its toString");
    check_enc(kval_func_new(dummy, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0),
              JSON_DATA, 0, "REFUSED", "function refused in data");
    check_enc(kval_array_append(kval_array(),
                                kval_func_new(dummy, NULL, NULL,
                                              KV_FN_FUNCTION, "f", NULL, 0)),
              JSON_KRL, 0, "[\"[Function]\"]", "function in KRL encode");
    check_enc(kval_map_put_str(kval_map(), "x",
                               kval_func_new(dummy, NULL, NULL, KV_FN_ACTION,
                                             "f", NULL, 0)),
              JSON_DATA, 0, "REFUSED", "action inside a map refused");
    check_enc(kval_error("boom"), JSON_DATA, 0, "REFUSED", "error refused");
    check_enc(kval_str_from16(lone, 4), JSON_DATA, 0, "\"a\\ud800b\\udfff\"",
              "lone surrogates escaped");
    check_enc(kval_str("a\0b\x1b\x7f", 5), JSON_DATA, 0,
              "\"a\\u0000b\\u001b\x7f\"", "control characters");
    check_enc(kval_cstr("\xED\x9F\xBF"), JSON_DATA, 0, "\"\xED\x9F\xBF\"",
              "U+D7FF is not a surrogate");
    check_enc(kval_cstr("tab\there \"q\" back\\slash\n"), JSON_DATA, 0,
              "\"tab\\there \\\"q\\\" back\\\\slash\\n\"", "escapes");
    check_enc(kval_cstr("</script>\xE2\x80\xA8"), JSON_DATA, 0,
              "\"</script>\xE2\x80\xA8\"", "no needless escapes");
    check_enc(kval_map_put_str(kval_map(), "k\"ey", kval_bool(true)),
              JSON_DATA, 0, "{\"k\\\"ey\":true}", "escaped key");
    {
        char *s;
        m = kval_map_put_str(kval_map(), "a", kval_cstr("b"));
        s = json_to_cstr(&m, JSON_DATA);
        t_eq_str(s, "{\"a\":\"b\"}", "json_string");
        free(s);
        kval_free(m);
        m = kval_regexp("x", 1, "");
        t_ok(json_to_cstr(&m, JSON_DATA) == NULL, "json_string refuses");
        s = json_to_cstr(&m, JSON_KRL);
        t_eq_str(s, "\"re#x#\"", "json_string KRL");
        free(s);
        kval_free(m);
    }
}

static void
test_indent(void)
{
    struct {
        const char *in;
        int indent;
        const char *want;
    } t[] = {
        {"{\"a\":1}", 2, "{\n  \"a\": 1\n}"},
        {"[1,{\"a\":2}]", 1, "[\n 1,\n {\n  \"a\": 2\n }\n]"},
        {"{\"n\":{\"m\":[]}}", 2, "{\n  \"n\": {\n    \"m\": []\n  }\n}"},
        {"[]", 4, "[]"},
        {"{}", 4, "{}"},
        {"5", 4, "5"},
        {"[[1,2],[]]", 2, "[\n  [\n    1,\n    2\n  ],\n  []\n]"},
        {"[1]", 20, "[\n          1\n]"},
        {"[1]", 0, "[1]"},
        {"[1]", -3, "[1]"},
        {"{\"a\":[{}]}", 3, "{\n   \"a\": [\n      {}\n   ]\n}"},
    };
    size_t i;
    char name[128];

    for (i = 0; i < N_(t); i++) {
        char *got = reprint(t[i].in, strlen(t[i].in), JSON_DATA,
                            t[i].indent);
        snprintf(name, sizeof name, "indent %d %s", t[i].indent, t[i].in);
        t_eq_str(got, t[i].want, name);
        free(got);
    }
}

/* The reference's recorded encode() results (conformance str_convert). */
static void
test_conformance(void)
{
    struct {
        const char *in;
        int indent;
        const char *want;
    } t[] = {
        {"{\"b\":[1,2.5,\"x\"],\"a\":true}", 0,
         "{\"b\":[1,2.5,\"x\"],\"a\":true}"},
        {"[]", 0, "[]"},
        {"\"str\"", 0, "\"str\""},
        {"12", 0, "12"},
        {"true", 0, "true"},
        {"{\"n\":{\"m\":[]}}", 0, "{\"n\":{\"m\":[]}}"},
        {"[1,{\"a\":2}]", 1, "[\n 1,\n {\n  \"a\": 2\n }\n]"},
    };
    size_t i;
    char name[128];

    for (i = 0; i < N_(t); i++) {
        char *got = reprint(t[i].in, strlen(t[i].in), JSON_KRL, t[i].indent);
        snprintf(name, sizeof name, "conformance encode %s", t[i].in);
        t_eq_str(got, t[i].want, name);
        free(got);
    }
}

/* encode -> parse gives an equal value */
static void
test_round_trip(void)
{
    unsigned seed = 7;
    size_t i, bad = 0;

    for (i = 0; i < 200; i++) {
        kval v = kval_array(), back;
        char *s;
        int j;
        for (j = 0; j < 20; j++) {
            kval m = kval_map();
            char key[16];
            double d;
            seed = seed * 1103515245u + 12345u;
            d = (double)(int)(seed >> 8) / ((seed >> 4) % 1000 + 1);
            snprintf(key, sizeof key, "%u", (seed >> 12) % 50);
            m = kval_map_put_str(m, key, kval_number(d));
            m = kval_map_put_str(m, "s", kval_cstr("\xF0\x9F\x98\x80\"\n\x01"));
            m = kval_map_put_str(m, "b", kval_bool(seed & 1));
            v = kval_array_append(v, m);
            v = kval_array_append(v, kval_null());
        }
        s = json_to_cstr(&v, JSON_DATA);
        back = json_parse(s, strlen(s));
        if (!kval_equal(&v, &back))
            bad++;
        free(s);
        kval_free(back);
        kval_free(v);
    }
    t_eq_int(bad, 0, "200 random values round-trip");
}

int
main(void)
{
    test_parse_print();
    test_parse_values();
    test_depth();
    test_encode();
    test_indent();
    test_conformance();
    test_round_trip();
    return tap_done();
}
