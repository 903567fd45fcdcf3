/*
 * t_value.c - unit tests for value.c and numfmt.c: constructors, refcounts,
 * copy-on-write, UTF-16 string indexing, map order, deep nesting, equality,
 * functions, errors, JavaScript number formatting and parsing.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"
#include "picomail/value.h"
#include "tap.h"

#define N_(a) (sizeof(a) / sizeof((a)[0]))

static void
test_scalars(void)
{
    kval v;

    v = kval_null();
    t_ok(kval_is_null(&v), "null is null");
    t_eq_str(kval_typeof(&v), "Null", "typeof null");
    t_eq_int(kval_refcount(&v), 0, "null has no refcount");
    v = kval_number(NAN);
    t_ok(kval_is_null(&v), "NaN becomes null");
    v = kval_number(-0.0);
    t_eq_int(kval_kind(&v), KV_NUMBER, "-0 is a number");
    t_ok(!kval_truthy(&v), "-0 is falsy");
    v = kval_number(INFINITY);
    t_eq_str(kval_typeof(&v), "JSObject", "Infinity is not a Number");
    v = kval_number(2.5);
    t_ok(kval_get_number(&v) == 2.5, "number value");
    v = kval_bool(true);
    t_ok(kval_get_bool(&v), "bool value");
    t_eq_str(kval_typeof(&v), "Boolean", "typeof bool");
    v = kval_null_json();
    t_ok(kval_is_null(&v) && kval_null_is_json(&v), "json null");
    v = kval_null();
    t_ok(!kval_null_is_json(&v), "krl null is not json null");
}

static kval
nop_call(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    (void)args;
    return kval_number((double)n);
}

static void
test_typeof_truthy(void)
{
    struct {
        kval v;
        const char *type;
        int truthy;
    } t[] = {
        {kval_null(), "Null", 0},
        {kval_bool(false), "Boolean", 0},
        {kval_bool(true), "Boolean", 1},
        {kval_number(0), "Number", 0},
        {kval_number(1), "Number", 1},
        {kval_number(-1.5), "Number", 1},
        {kval_cstr(""), "String", 0},
        {kval_cstr("0"), "String", 1},
        {kval_cstr("false"), "String", 1},
        {kval_cstr("0x1F"), "String", 1},
        {kval_cstr("0XaB"), "String", 1},
        {kval_cstr("0x"), "String", 1},
        {kval_cstr("0x1G"), "String", 1},
        {kval_cstr(" 0x1"), "String", 1},
        {kval_array(), "Array", 1},
        {kval_map(), "Map", 1},
        {kval_regexp("a", 1, ""), "RegExp", 1},
        {kval_func_new(nop_call, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0),
         "Function", 1},
        {kval_func_new(nop_call, NULL, NULL, KV_FN_ACTION, "a", NULL, 0),
         "Action", 1},
        {kval_func_new(nop_call, NULL, NULL, KV_FN_ACTION | KV_FN_FUNCTION,
                       "af", NULL, 0), "ActionFunction", 1},
        {kval_error("TypeError: x"), "Error", 0},
    };
    size_t i;
    char name[64];

    for (i = 0; i < N_(t); i++) {
        snprintf(name, sizeof name, "typeof #%zu", i);
        t_eq_str(kval_typeof(&t[i].v), t[i].type, name);
        snprintf(name, sizeof name, "truthy #%zu (%s)", i, t[i].type);
        t_eq_int(kval_truthy(&t[i].v), t[i].truthy, name);
        kval_free(t[i].v);
    }
}

static void
test_string_construct(void)
{
    struct {
        const char *in;
        size_t len;
        const char *out;
        size_t out_len;
        size_t len16;
    } t[] = {
        {"", 0, "", 0, 0},
        {"abc", 3, "abc", 3, 3},
        {"caf\xC3\xA9", 5, "caf\xC3\xA9", 5, 4},
        {"\xF0\x9F\x98\x80", 4, "\xF0\x9F\x98\x80", 4, 2},
        {"a\0b", 3, "a\0b", 3, 3},
        {"\xFF", 1, "\xEF\xBF\xBD", 3, 1},
        {"a\xFF" "b", 3, "a\xEF\xBF\xBD" "b", 5, 3},
        {"\xE2\x82", 2, "\xEF\xBF\xBD", 3, 1},          /* truncated */
        {"\xE2\x82x", 3, "\xEF\xBF\xBDx", 4, 2},
        {"\xC0\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD", 6, 2},  /* overlong */
        {"\xF5\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD", 6, 2},
        {"\xF0\x9F\x98", 3, "\xEF\xBF\xBD", 3, 1},
        {"\x80", 1, "\xEF\xBF\xBD", 3, 1},
        {"\xED\xA0\x80", 3, "\xED\xA0\x80", 3, 1},      /* lone surrogate */
        {"\xED\xB8\x80", 3, "\xED\xB8\x80", 3, 1},
        /* a WTF-8 surrogate pair is one character */
        {"\xED\xA0\xBD\xED\xB8\x80", 6, "\xF0\x9F\x98\x80", 4, 2},
        {"\xF4\x8F\xBF\xBF", 4, "\xF4\x8F\xBF\xBF", 4, 2},
        {"\xF4\x90\x80\x80", 4,
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 12, 4},
        {"\xE0\x80\x80", 3,
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9, 3},
    };
    size_t i;
    char name[64];

    for (i = 0; i < N_(t); i++) {
        kval s = kval_str(t[i].in, t[i].len);
        snprintf(name, sizeof name, "str #%zu bytes", i);
        t_eq_int(kval_str_bytes(&s), t[i].out_len, name);
        snprintf(name, sizeof name, "str #%zu content", i);
        t_ok(kval_str_bytes(&s) == t[i].out_len &&
             memcmp(kval_str_ptr(&s), t[i].out, t[i].out_len) == 0, name);
        snprintf(name, sizeof name, "str #%zu len16", i);
        t_eq_int(kval_str_len16(&s), t[i].len16, name);
        snprintf(name, sizeof name, "str #%zu NUL-terminated", i);
        t_ok(kval_str_ptr(&s)[t[i].out_len] == '\0', name);
        /* kval_str_take repairs the same way */
        {
            kval s2 = kval_str_take(xmemdup(t[i].in, t[i].len), t[i].len);
            snprintf(name, sizeof name, "str_take #%zu", i);
            t_ok(kval_str_eq(&s, &s2), name);
            kval_free(s2);
        }
        kval_free(s);
    }
    {
        kval s = kval_str_fmt("%d-%s", 42, "x");
        t_eq_str(kval_str_ptr(&s), "42-x", "str_fmt");
        kval_free(s);
        s = kval_cstr(NULL);
        t_eq_int(kval_str_bytes(&s), 0, "cstr NULL is empty");
        kval_free(s);
    }
}

static void
test_from16(void)
{
    static const uint16_t u1[] = {'a', 0xD83D, 0xDE00, 'b'};
    static const uint16_t u2[] = {0xD800};
    static const uint16_t u3[] = {0xDC00, 0xD800};
    static const uint16_t u4[] = {0xE9, 0x20AC, 0};
    kval s;

    s = kval_str_from16(u1, 4);
    t_eq_str(kval_str_ptr(&s), "a\xF0\x9F\x98\x80" "b", "from16 pair");
    t_eq_int(kval_str_len16(&s), 4, "from16 pair len16");
    kval_free(s);
    s = kval_str_from16(u2, 1);
    t_eq_str(kval_str_ptr(&s), "\xED\xA0\x80", "from16 lone high");
    t_eq_int(kval_str_unit16(&s, 0), 0xD800, "lone high unit");
    kval_free(s);
    s = kval_str_from16(u3, 2);
    t_eq_str(kval_str_ptr(&s), "\xED\xB0\x80\xED\xA0\x80",
             "from16 low then high stay apart");
    t_eq_int(kval_str_len16(&s), 2, "reversed pair len16");
    kval_free(s);
    s = kval_str_from16(u4, 3);
    t_eq_int(kval_str_bytes(&s), 6, "from16 with NUL bytes");
    t_ok(memcmp(kval_str_ptr(&s), "\xC3\xA9\xE2\x82\xAC\0", 6) == 0,
         "from16 with NUL content");
    kval_free(s);
    s = kval_str_from16(NULL, 0);
    t_eq_int(kval_str_bytes(&s), 0, "from16 empty");
    kval_free(s);
}

/* Compare the string's UTF-16 view with the units it was built from. */
static void
test_utf16_index(void)
{
    uint16_t units[3000];
    size_t n = 0, i, bad = 0;
    unsigned seed = 12345;
    kval s;

    while (n < 2990) {
        seed = seed * 1103515245u + 12345u;
        switch ((seed >> 16) % 5) {
        case 0:
            units[n++] = 'a' + (uint16_t)((seed >> 8) % 26);
            break;
        case 1:
            units[n++] = 0xE9;
            break;
        case 2:
            units[n++] = 0x20AC;
            break;
        case 3:
            units[n++] = 0xD83D;
            units[n++] = (uint16_t)(0xDE00 + (seed >> 20) % 64);
            break;
        default:
            units[n++] = 0xFFFD;
            break;
        }
    }
    s = kval_str_from16(units, n);
    t_eq_int(kval_str_len16(&s), n, "long string len16");
    for (i = 0; i < n; i++)
        if (kval_str_unit16(&s, i) != units[i])
            bad++;
    t_eq_int(bad, 0, "every unit16 of a long mixed string");
    t_eq_int(kval_str_unit16(&s, n), 0, "unit16 past the end is 0");

    /* substr16 must equal from16 of the same slice, surrogate cuts too */
    bad = 0;
    for (i = 0; i < 400; i++) {
        size_t a, len;
        kval sub, want;
        seed = seed * 1103515245u + 12345u;
        a = (seed >> 8) % (n + 5);
        seed = seed * 1103515245u + 12345u;
        len = (seed >> 8) % 70;
        sub = kval_str_substr16(&s, a, len);
        if (a > n)
            a = n;
        if (len > n - a)
            len = n - a;
        want = kval_str_from16(units + a, len);
        if (!kval_str_eq(&sub, &want) || kval_str_len16(&sub) != len)
            bad++;
        kval_free(sub);
        kval_free(want);
    }
    t_eq_int(bad, 0, "400 random substr16 slices");

    /* byte_to16 at every character start */
    {
        const unsigned char *p = (const unsigned char *)kval_str_ptr(&s);
        size_t off = 0, unit = 0;
        bad = 0;
        while (off < kval_str_bytes(&s)) {
            size_t w = p[off] < 0x80 ? 1 : p[off] < 0xE0 ? 2
                     : p[off] < 0xF0 ? 3 : 4;
            if (kval_str_byte_to16(&s, off) != unit)
                bad++;
            unit += w == 4 ? 2 : 1;
            off += w;
        }
        t_eq_int(bad, 0, "byte_to16 at every character");
        t_eq_int(kval_str_byte_to16(&s, kval_str_bytes(&s)), n,
                 "byte_to16 at the end");
        t_eq_int(kval_str_byte_to16(&s, kval_str_bytes(&s) + 10), n,
                 "byte_to16 past the end clamps");
    }
    kval_free(s);
}

static void
test_substr_table(void)
{
    struct {
        const char *s;
        size_t start, len;
        const char *want;
    } t[] = {
        {"hello", 1, 3, "ell"},
        {"hello", 0, 0, ""},
        {"hello", 4, 10, "o"},
        {"hello", 5, 1, ""},
        {"hello", 9, 1, ""},
        {"hello", 2, SIZE_MAX, "llo"},
        {"caf\xC3\xA9!", 3, 1, "\xC3\xA9"},
        {"caf\xC3\xA9!", 3, 2, "\xC3\xA9!"},
        {"a\xF0\x9F\x98\x80" "b", 1, 2, "\xF0\x9F\x98\x80"},
        {"a\xF0\x9F\x98\x80" "b", 0, 2, "a\xED\xA0\xBD"},
        {"a\xF0\x9F\x98\x80" "b", 2, 2, "\xED\xB8\x80" "b"},
        {"a\xF0\x9F\x98\x80" "b", 2, 0, ""},
        {"\xF0\x9F\x98\x80", 1, 0, ""},
        {"\xF0\x9F\x98\x80", 0, 1, "\xED\xA0\xBD"},
        {"\xF0\x9F\x98\x80", 1, 1, "\xED\xB8\x80"},
        {"\xF0\x9F\x98\x80\xF0\x9F\x98\x81", 1, 2,
         "\xED\xB8\x80\xED\xA0\xBD"},
    };
    size_t i;
    char name[64];

    for (i = 0; i < N_(t); i++) {
        kval s = kval_cstr(t[i].s);
        kval sub = kval_str_substr16(&s, t[i].start, t[i].len);
        snprintf(name, sizeof name, "substr16 #%zu", i);
        t_eq_str(kval_str_ptr(&sub), t[i].want, name);
        kval_free(sub);
        kval_free(s);
    }
    {
        kval s = kval_cstr("a\xF0\x9F\x98\x80" "b");
        t_eq_int(kval_str_unit16(&s, 0), 'a', "unit16 0");
        t_eq_int(kval_str_unit16(&s, 1), 0xD83D, "unit16 high");
        t_eq_int(kval_str_unit16(&s, 2), 0xDE00, "unit16 low");
        t_eq_int(kval_str_unit16(&s, 3), 'b', "unit16 3");
        t_eq_int(kval_str_byte_to16(&s, 5), 3, "byte_to16 after pair");
        kval_free(s);
    }
}

static void
test_concat_cmp(void)
{
    kval a, b, c, keep;

    /* halves of a pair meet again */
    a = kval_cstr("x\xED\xA0\xBD");
    b = kval_cstr("\xED\xB8\x80y");
    c = kval_str_concat(a, b);
    t_eq_str(kval_str_ptr(&c), "x\xF0\x9F\x98\x80y", "concat joins a pair");
    t_eq_int(kval_str_len16(&c), 4, "joined pair len16");
    kval_free(c);

    /* sole owner grows in place; a shared left side is untouched */
    a = kval_cstr("ab");
    keep = kval_copy(&a);
    c = kval_str_concat(a, kval_cstr("c\xC3\xA9"));
    t_eq_str(kval_str_ptr(&keep), "ab", "shared string unchanged by concat");
    t_eq_str(kval_str_ptr(&c), "abc\xC3\xA9", "concat result");
    t_eq_int(kval_str_len16(&c), 4, "concat len16");
    t_eq_int(kval_refcount(&keep), 1, "shared string refcount back to 1");
    c = kval_str_concat(c, kval_cstr(""));
    c = kval_str_concat(kval_cstr(""), c);
    t_eq_str(kval_str_ptr(&c), "abc\xC3\xA9", "concat with empty");
    {
        int i;
        for (i = 0; i < 1000; i++)
            c = kval_str_concat(c, kval_cstr("\xF0\x9F\x98\x80"));
        t_eq_int(kval_str_len16(&c), 2004, "1000 appends len16");
        t_eq_int(kval_str_unit16(&c, 2003), 0xDE00, "unit after appends");
        t_eq_int(kval_str_hash(&c) != 0, 1, "hash");
    }
    kval_free(c);
    kval_free(keep);

    {
        struct {
            const char *a, *b;
            int want;
        } t[] = {
            {"a", "b", -1},
            {"b", "a", 1},
            {"", "", 0},
            {"", "a", -1},
            {"abc", "ab", 1},
            {"B", "a", -1},
            {"10", "9", -1},
            {"\xC3\xA9", "z", 1},
            /* U+E000 sorts after a surrogate pair in UTF-16 order */
            {"\xEE\x80\x80", "\xF0\x9F\x98\x80", 1},
            {"\xF0\x9F\x98\x80", "\xEF\xBF\xBF", -1},
            {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x81", -1},
            {"x\xF0\x9F\x98\x80", "x\xEE\x80\x80", -1},
            {"\xED\xA0\xBD", "\xF0\x9F\x98\x80", -1},
            {"\xED\xA0\xBD" "z", "\xF0\x9F\x98\x80", -1},
        };
        size_t i;
        char name[64];
        for (i = 0; i < N_(t); i++) {
            kval x = kval_cstr(t[i].a), y = kval_cstr(t[i].b);
            snprintf(name, sizeof name, "cmp16 #%zu", i);
            t_eq_int(kval_str_cmp16(&x, &y), t[i].want, name);
            snprintf(name, sizeof name, "cmp16 #%zu reversed", i);
            t_eq_int(kval_str_cmp16(&y, &x), -t[i].want, name);
            kval_free(x);
            kval_free(y);
        }
    }
    {
        kval x = kval_str("a\0b", 3), y = kval_str("a\0c", 3);
        t_ok(!kval_str_eq(&x, &y), "strings with NUL differ after it");
        t_eq_int(kval_str_cmp16(&x, &y), -1, "cmp16 past NUL");
        t_ok(kval_str_hash(&x) != kval_str_hash(&y), "hash past NUL");
        kval_free(x);
        kval_free(y);
    }
}

static void
test_arrays(void)
{
    kval a = kval_array(), b, s;
    size_t i;

    for (i = 0; i < 100; i++)
        a = kval_array_append(a, kval_number((double)i));
    t_eq_int(kval_array_len(&a), 100, "array len");
    t_ok(kval_get_number(kval_array_get(&a, 42)) == 42, "array get");
    t_ok(kval_array_get(&a, 100) == NULL, "array get out of range");
    b = kval_copy(&a);
    t_eq_int(kval_refcount(&a), 2, "copy shares the block");
    b = kval_array_set(b, 0, kval_cstr("zero"));
    t_eq_int(kval_refcount(&a), 1, "set on shared copy detaches");
    t_eq_int(kval_kind(kval_array_get(&a, 0)), KV_NUMBER, "original unchanged");
    t_eq_str(kval_str_ptr(kval_array_get(&b, 0)), "zero", "copy changed");
    b = kval_array_append(b, kval_null());
    t_eq_int(kval_array_len(&a), 100, "original length unchanged");
    t_eq_int(kval_array_len(&b), 101, "copy length");
    kval_free(b);

    /* elements are shared by refcount between the copies */
    s = kval_cstr("shared");
    a = kval_array_set(a, 1, kval_copy(&s));
    b = kval_copy(&a);
    b = kval_array_append(b, kval_bool(true));
    t_eq_int(kval_refcount(&s), 3, "element shared by both arrays");
    kval_free(b);
    t_eq_int(kval_refcount(&s), 2, "element released with the copy");
    {
        kval sl = kval_array_slice(&a, 1, 3), e;
        t_eq_int(kval_array_len(&sl), 2, "slice len");
        t_eq_str(kval_str_ptr(kval_array_get(&sl, 0)), "shared", "slice[0]");
        kval_free(sl);
        sl = kval_array_slice(&a, 90, 500);
        t_eq_int(kval_array_len(&sl), 10, "slice clamped end");
        kval_free(sl);
        sl = kval_array_slice(&a, 500, 10);
        t_eq_int(kval_array_len(&sl), 0, "slice start past end");
        kval_free(sl);
        e = kval_null();
        t_eq_int(kval_array_len(&e), 0, "len of non-array");
        t_ok(kval_array_get(&e, 0) == NULL, "get on non-array");
    }
    kval_free(a);
    t_eq_int(kval_refcount(&s), 1, "element released with the array");
    kval_free(s);
    a = kval_array_sized(10);
    t_eq_int(kval_array_len(&a), 0, "array_sized is empty");
    kval_free(a);
}

static const char *
keys_of(const kval *m, char *out, size_t cap)
{
    struct kval_map_iter it;
    const kval *k, *v;
    size_t n = 0;

    out[0] = '\0';
    kval_map_iter_init(&it, m);
    while (kval_map_iter_next(&it, &k, &v)) {
        int w = snprintf(out + n, cap - n, "%s%s", n ? "," : "",
                         kval_str_ptr(k));
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    kval_map_iter_done(&it);
    return out;
}

static kval
map_of(const char *csv)
{
    kval m = kval_map();
    const char *p = csv;
    double i = 0;

    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        m = kval_map_put(m, kval_str(p, len), kval_number(i++));
        p += len + (e ? 1 : 0);
    }
    return m;
}

static void
test_map_order(void)
{
    struct {
        const char *in, *want;
    } t[] = {
        {"b,a,2,10,1", "1,2,10,b,a"},
        {"z,y,x", "z,y,x"},
        {"01,1,-1,1.5,0", "0,1,01,-1,1.5"},
        {"4294967295,4294967294,7", "7,4294967294,4294967295"},
        {"99999999999,3", "3,99999999999"},
        {"a,0,b,0", "0,a,b"},
        {"", ""},
    };
    size_t i;
    char buf[256], name[64];

    for (i = 0; i < N_(t); i++) {
        kval m = map_of(t[i].in);
        snprintf(name, sizeof name, "map order #%zu", i);
        t_eq_str(keys_of(&m, buf, sizeof buf), t[i].want, name);
        kval_free(m);
    }
}

static void
test_maps(void)
{
    kval m = kval_map(), c;
    char key[32], buf[256];
    size_t i, bad = 0;
    const kval *v;

    m = kval_map_put_str(m, "b", kval_number(1));
    m = kval_map_put_str(m, "a", kval_number(2));
    m = kval_map_put_str(m, "b", kval_number(3));
    t_eq_int(kval_map_len(&m), 2, "overwrite keeps len");
    t_eq_str(keys_of(&m, buf, sizeof buf), "b,a", "overwrite keeps place");
    t_ok(kval_get_number(kval_map_get_str(&m, "b")) == 3, "overwritten value");
    t_ok(kval_map_get_str(&m, "c") == NULL, "absent key");
    {
        kval k = kval_cstr("a"), k2 = kval_cstr("zz"), n = kval_number(1);
        t_ok(kval_map_has(&m, &k), "has a");
        t_ok(!kval_map_has(&m, &k2), "has not zz");
        t_ok(!kval_map_has(&m, &n), "has with a non-string key");
        kval_free(k);
        kval_free(k2);
    }
    /* copy-on-write */
    c = kval_copy(&m);
    c = kval_map_put_str(c, "new", kval_null());
    t_eq_int(kval_map_len(&m), 2, "original map unchanged by put");
    t_eq_int(kval_map_len(&c), 3, "copy has the new key");
    t_eq_int(kval_refcount(&m), 1, "map detached");
    c = kval_map_delete(c, "b", 1);
    t_ok(kval_map_get_str(&m, "b") != NULL, "original keeps deleted key");
    t_eq_str(keys_of(&c, buf, sizeof buf), "a,new", "delete keeps order");
    c = kval_map_delete(c, "nope", 4);
    t_eq_int(kval_map_len(&c), 2, "deleting an absent key");
    kval_free(c);
    {
        kval shared = kval_copy(&m);
        shared = kval_map_delete(shared, "nope", 4);
        t_eq_int(kval_refcount(&m), 2, "delete of absent key does not copy");
        kval_free(shared);
    }

    /* big map: hash index, deletes, order */
    for (i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        m = kval_map_put_str(m, key, kval_number((double)i));
    }
    t_eq_int(kval_map_len(&m), 2002, "big map len");
    for (i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        v = kval_map_get_str(&m, key);
        if (v == NULL || kval_get_number(v) != (double)i)
            bad++;
    }
    t_eq_int(bad, 0, "big map lookups");
    c = kval_copy(&m);
    for (i = 0; i < 2000; i += 2) {
        snprintf(key, sizeof key, "k%zu", i);
        c = kval_map_delete(c, key, strlen(key));
    }
    t_eq_int(kval_map_len(&c), 1002, "big map after deletes");
    t_eq_int(kval_map_len(&m), 2002, "big map original intact");
    bad = 0;
    for (i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        v = kval_map_get_str(&c, key);
        if ((v != NULL) != (i % 2 == 1))
            bad++;
    }
    t_eq_int(bad, 0, "big map lookups after deletes");
    {
        struct kval_map_iter it;
        const kval *k;
        size_t n = 0, prev = 0;
        bool ordered = true;
        kval_map_iter_init(&it, &c);
        while (kval_map_iter_next(&it, &k, &v)) {
            if (n >= 2) {
                size_t num = (size_t)kval_get_number(v);
                if (n > 2 && num <= prev)
                    ordered = false;
                prev = num;
            }
            n++;
        }
        kval_map_iter_done(&it);
        t_eq_int(n, 1002, "big map iterates all");
        t_ok(ordered, "big map iterates in insertion order");
    }
    kval_free(c);
    kval_free(m);
    {
        kval e = kval_null();
        t_eq_int(kval_map_len(&e), 0, "map_len of non-map");
        t_ok(kval_map_get_str(&e, "a") == NULL, "map_get of non-map");
    }
}

static void
test_deep(void)
{
    kval a = kval_array(), b = kval_array(), m = kval_map();
    int i;

    for (i = 0; i < 100000; i++) {
        kval na = kval_array_append(kval_array(), a);
        kval nb = kval_array_append(kval_array(), b);
        a = na;
        b = nb;
        m = kval_map_put_str(kval_map(), "x", m);
    }
    t_ok(kval_equal(&a, &b), "deep arrays equal (no recursion)");
    b = kval_array_append(b, kval_null());
    t_ok(!kval_equal(&a, &b), "deep arrays differ at the top");
    kval_free(a);
    kval_free(b);
    /* a recursive free would overflow the stack here (ASan checks it) */
    kval_free(m);
}

static void
test_equal(void)
{
    kval a, b;
    struct {
        kval x, y;
        int want;
    } t[12];
    size_t i, n = 0;
    char name[64];

    t[n].x = kval_null();
    t[n].y = kval_null_json();
    t[n++].want = 1;
    t[n].x = kval_number(0);
    t[n].y = kval_number(-0.0);
    t[n++].want = 1;
    t[n].x = kval_number(1);
    t[n].y = kval_cstr("1");
    t[n++].want = 0;
    t[n].x = kval_bool(false);
    t[n].y = kval_number(0);
    t[n++].want = 0;
    t[n].x = kval_cstr("caf\xC3\xA9");
    t[n].y = kval_str("caf\xC3\xA9", 5);
    t[n++].want = 1;
    t[n].x = kval_regexp("a+", 2, "gi");
    t[n].y = kval_regexp("a+", 2, "ig");
    t[n++].want = 1;
    t[n].x = kval_regexp("a+", 2, "g");
    t[n].y = kval_regexp("a+", 2, "");
    t[n++].want = 0;
    t[n].x = kval_map_put_str(kval_map_put_str(kval_map(), "a", kval_number(1)),
                              "b", kval_array());
    t[n].y = kval_map_put_str(kval_map_put_str(kval_map(), "b", kval_array()),
                              "a", kval_number(1));
    t[n++].want = 1;
    t[n].x = kval_map_put_str(kval_map(), "a", kval_null());
    t[n].y = kval_map_put_str(kval_map(), "b", kval_null());
    t[n++].want = 0;
    t[n].x = kval_array_append(kval_array(), kval_cstr("x"));
    t[n].y = kval_array_append(kval_array(), kval_cstr("y"));
    t[n++].want = 0;
    t[n].x = kval_array();
    t[n].y = kval_map();
    t[n++].want = 0;
    t[n].x = kval_error("E");
    t[n].y = kval_error("E");
    t[n++].want = 0;
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof name, "equal #%zu", i);
        t_eq_int(kval_equal(&t[i].x, &t[i].y), t[i].want, name);
        snprintf(name, sizeof name, "equal #%zu symmetric", i);
        t_eq_int(kval_equal(&t[i].y, &t[i].x), t[i].want, name);
        kval_free(t[i].x);
        kval_free(t[i].y);
    }
    a = kval_func_new(nop_call, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0);
    b = kval_copy(&a);
    t_ok(kval_equal(&a, &b), "function equals itself");
    kval_free(b);
    b = kval_func_new(nop_call, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0);
    t_ok(!kval_equal(&a, &b), "functions compare by identity");
    kval_free(a);
    kval_free(b);
}

static int freed_data;

static void
count_free(void *data)
{
    freed_data += *(int *)data;
    free(data);
}

static kval
sum_call(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    double s = *(int *)data;
    size_t i;
    (void)vm;
    for (i = 0; i < n; i++)
        s += kval_get_number(&args[i]);
    return kval_number(s);
}

static void
test_functions_errors(void)
{
    const char *params[] = {"x", "y"};
    char name[8] = "adder";
    int *data = xmalloc(sizeof *data);
    kval f, r, args[2];

    *data = 100;
    f = kval_func_new(sum_call, data, count_free, KV_FN_FUNCTION, name,
                      params, 2);
    name[0] = 'X';                      /* the name was copied */
    t_eq_str(kval_func_name(&f), "adder", "function name copied");
    t_eq_int(kval_func_n_params(&f), 2, "n params");
    t_eq_str(kval_func_param(&f, 1), "y", "param 1");
    t_ok(kval_func_param(&f, 2) == NULL, "param out of range");
    t_eq_int(kval_func_kinds(&f), KV_FN_FUNCTION, "kinds");
    t_ok(kval_func_data(&f) == data, "data");
    args[0] = kval_number(1);
    args[1] = kval_number(2);
    r = kval_func_call(NULL, &f, args, 2);
    t_ok(kval_get_number(&r) == 103, "call");
    r = kval_func_call(NULL, &args[0], args, 0);
    t_ok(kval_is_error(&r), "calling a number is an error");
    kval_free(r);
    freed_data = 0;
    kval_free(f);
    t_eq_int(freed_data, 100, "data freed with the function");
    f = kval_func_new(nop_call, NULL, NULL, KV_FN_ACTION, NULL, NULL, 0);
    t_eq_str(kval_func_name(&f), "", "NULL name is empty");
    kval_free(f);

    r = kval_error("TypeError: %s is %d", "x", 5);
    t_eq_str(kval_error_msg(&r), "TypeError: x is 5", "error message");
    t_ok(kval_is_error(&r), "is error");
    kval_free(r);
    r = kval_regexp("(", 1, "");
    t_ok(kval_is_error(&r), "bad regexp is an error");
    t_ok(strncmp(kval_error_msg(&r), "SyntaxError: ", 13) == 0,
         "bad regexp message");
    kval_free(r);
    r = kval_regexp("a", 1, "x");
    t_ok(kval_is_error(&r), "bad regexp flag is an error");
    kval_free(r);
    r = kval_regexp("a", 1, "gi");
    t_ok(kval_get_regexp(&r) != NULL, "regexp handle");
    kval_free(r);
}

static void
test_num_format(void)
{
    struct {
        double d;
        const char *want;
    } t[] = {
        {0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-1, "-1"},
        {3.0, "3"},
        {100, "100"},
        {0.5, "0.5"},
        {-1.5, "-1.5"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3, "0.3333333333333333"},
        {2.0 / 3, "0.6666666666666666"},
        {123456789012345680000.0, "123456789012345680000"},
        {1e21, "1e+21"},
        {1.5e21, "1.5e+21"},
        {1e20, "100000000000000000000"},
        {999999999999999900000.0, "999999999999999900000"},
        {1e-6, "0.000001"},
        {1.5e-6, "0.0000015"},
        {1e-7, "1e-7"},
        {1.5e-7, "1.5e-7"},
        {-1e-7, "-1e-7"},
        {5e-324, "5e-324"},
        {1.7976931348623157e+308, "1.7976931348623157e+308"},
        {9007199254740992.0, "9007199254740992"},
        {9007199254740993.0, "9007199254740992"},
        {123.456, "123.456"},
        {1e100, "1e+100"},
        {12.75, "12.75"},
        {4.35, "4.35"},
        {0.000123, "0.000123"},
        {1234.5678e10, "12345678000000"},
        {2.5e-5, "0.000025"},
        {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"},
        {NAN, "NaN"},
        {1.0e15 + 0.3, "1000000000000000.2"},
        {0.000001234, "0.000001234"},
        {1e-10, "1e-10"},
        {42, "42"},
    };
    size_t i;
    char buf[KVAL_NUM_BUFSIZE], name[64];

    for (i = 0; i < N_(t); i++) {
        size_t n = kval_num_format(t[i].d, buf);
        snprintf(name, sizeof name, "num_format %s", t[i].want);
        t_eq_str(buf, t[i].want, name);
        snprintf(name, sizeof name, "num_format length %s", t[i].want);
        t_eq_int(n, strlen(t[i].want), name);
    }
    /* round trip of many doubles */
    {
        size_t bad = 0;
        unsigned long long x = 88172645463325252ull;
        for (i = 0; i < 20000; i++) {
            double d, back;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(&d, &x, sizeof d);
            if (!isfinite(d))
                continue;
            kval_num_format(d, buf);
            if (!kval_num_parse(buf, strlen(buf), &back) ||
                (back != d && !(d == 0 && back == 0)))
                bad++;
        }
        t_eq_int(bad, 0, "20000 random doubles round-trip");
    }
}

static void
test_num_parse(void)
{
    struct {
        const char *s;
        int ok;
        double want;
    } t[] = {
        {"", 1, 0},
        {"   ", 1, 0},
        {"\t\n\v\f\r ", 1, 0},
        {"42", 1, 42},
        {" 7 ", 1, 7},
        {"-3.5", 1, -3.5},
        {"+3.5", 1, 3.5},
        {"5.", 1, 5},
        {".5", 1, 0.5},
        {"-.5", 1, -0.5},
        {"1e3", 1, 1000},
        {"-1E-2", 1, -0.01},
        {"1e+2", 1, 100},
        {"0x1F", 1, 31},
        {"0X1f", 1, 31},
        {"0o17", 1, 15},
        {"0O17", 1, 15},
        {"0b101", 1, 5},
        {"0B11", 1, 3},
        {"007", 1, 7},
        {"Infinity", 1, INFINITY},
        {"+Infinity", 1, INFINITY},
        {"-Infinity", 1, -INFINITY},
        {"\xC2\xA0" "12" "\xEF\xBB\xBF", 1, 12},
        {"\xE2\x80\xA8" "1\xE3\x80\x80", 1, 1},
        {"1e400", 1, INFINITY},
        {"1e-400", 1, 0},
        {"1,000", 0, 0},
        {"12px", 0, 0},
        {"0x", 0, 0},
        {"0xG", 0, 0},
        {"-0x10", 0, 0},
        {"+0x10", 0, 0},
        {"0b2", 0, 0},
        {"0o8", 0, 0},
        {"inf", 0, 0},
        {"infinity", 0, 0},
        {"nan", 0, 0},
        {"NaN", 0, 0},
        {"1e", 0, 0},
        {"1e+", 0, 0},
        {".", 0, 0},
        {"-", 0, 0},
        {"+", 0, 0},
        {"e5", 0, 0},
        {"0x1p3", 0, 0},
        {"1.2.3", 0, 0},
        {"1 2", 0, 0},
        {"seven", 0, 0},
        {"--1", 0, 0},
        {"1_000", 0, 0},
        {"\xE2\x80\x8B" "1", 0, 0},           /* U+200B is not space */
    };
    size_t i;
    char name[64];

    for (i = 0; i < N_(t); i++) {
        double d = -999;
        bool ok = kval_num_parse(t[i].s, strlen(t[i].s), &d);
        snprintf(name, sizeof name, "num_parse ok '%s'", t[i].s);
        t_eq_int(ok, t[i].ok, name);
        if (t[i].ok) {
            snprintf(name, sizeof name, "num_parse value '%s'", t[i].s);
            t_ok(d == t[i].want, name);
        }
    }
    {
        double d;
        t_ok(!kval_num_parse("1\0", 2, &d), "embedded NUL is not a number");
        t_ok(kval_num_parse("12", 1, &d) && d == 1, "length respected");
        t_ok(kval_num_parse("-0", 2, &d) && d == 0 && signbit(d), "-0");
    }
}

int
main(void)
{
    test_scalars();
    test_typeof_truthy();
    test_string_construct();
    test_from16();
    test_utf16_index();
    test_substr_table();
    test_concat_cmp();
    test_arrays();
    test_map_order();
    test_maps();
    test_deep();
    test_equal();
    test_functions_errors();
    test_num_format();
    test_num_parse();
    return tap_done();
}
