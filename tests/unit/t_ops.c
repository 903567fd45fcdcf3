/*
 * t_ops.c - unit tests for ops.c: KRL toString/toNumber coercions and the
 * operators, with expected values from the reference stdlib semantics
 * (krl-language.md §4.3, stdlib.ts).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/json.h"
#include "picomail/ops.h"
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

/*
 * An operand from a short spec: "null", "true", "false", "inf", "fn",
 * "act", "actfn", "n:<number>", "s:<string>", "j:<json>", "re:<src>/<flags>",
 * "err:<message>".
 */
static kval
mk(const char *spec)
{
    if (strcmp(spec, "null") == 0)
        return kval_null();
    if (strcmp(spec, "true") == 0)
        return kval_bool(true);
    if (strcmp(spec, "false") == 0)
        return kval_bool(false);
    if (strcmp(spec, "inf") == 0)
        return kval_number(INFINITY);
    if (strcmp(spec, "fn") == 0)
        return kval_func_new(dummy, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0);
    if (strcmp(spec, "act") == 0)
        return kval_func_new(dummy, NULL, NULL, KV_FN_ACTION, "a", NULL, 0);
    if (strcmp(spec, "actfn") == 0)
        return kval_func_new(dummy, NULL, NULL, KV_FN_ACTION | KV_FN_FUNCTION,
                             "af", NULL, 0);
    if (strncmp(spec, "n:", 2) == 0)
        return kval_number(strtod(spec + 2, NULL));
    if (strncmp(spec, "s:", 2) == 0)
        return kval_cstr(spec + 2);
    if (strncmp(spec, "j:", 2) == 0)
        return json_parse(spec + 2, strlen(spec + 2));
    if (strncmp(spec, "err:", 4) == 0)
        return kval_error("%s", spec + 4);
    if (strncmp(spec, "re:", 3) == 0) {
        const char *slash = strrchr(spec, '/');
        return kval_regexp(spec + 3, (size_t)(slash - spec - 3), slash + 1);
    }
    fprintf(stderr, "bad spec %s\n", spec);
    abort();
}

/* A result as text, consuming it: "N:3", "S:abc", "B:true", "null",
 * "E:message", or "T:<typeof>". */
static const char *
show(kval v, char *buf, size_t cap)
{
    char num[KVAL_NUM_BUFSIZE];

    switch (kval_kind(&v)) {
    case KV_NULL:
        snprintf(buf, cap, "null");
        break;
    case KV_BOOL:
        snprintf(buf, cap, "B:%s", kval_get_bool(&v) ? "true" : "false");
        break;
    case KV_NUMBER:
        kval_num_format(kval_get_number(&v), num);
        snprintf(buf, cap, "N:%s", num);
        break;
    case KV_STRING:
        snprintf(buf, cap, "S:%s", kval_str_ptr(&v));
        break;
    case KV_ERROR:
        snprintf(buf, cap, "E:%s", kval_error_msg(&v));
        break;
    default:
        snprintf(buf, cap, "T:%s", kval_typeof(&v));
        break;
    }
    kval_free(v);
    return buf;
}

static void
test_to_string(void)
{
    struct {
        const char *in, *want;
    } t[] = {
        {"null", "null"},
        {"true", "true"},
        {"false", "false"},
        {"n:1.5", "1.5"},
        {"n:-0", "0"},
        {"n:1e21", "1e+21"},
        {"n:0.1", "0.1"},
        {"n:-42", "-42"},
        {"s:abc", "abc"},
        {"s:", ""},
        {"s:0x1F", "0x1F"},
        {"j:[1,2]", "[Array]"},
        {"j:[]", "[Array]"},
        {"j:{}", "[Map]"},
        {"j:{\"a\":1}", "[Map]"},
        {"re:a+/gi", "re#a+#gi"},
        {"re:a+/ig", "re#a+#gi"},
        {"re:a+/i", "re#a+#i"},
        {"re:^x$/", "re#^x$#"},
        {"re:a#b/g", "re#a#b#g"},
        {"fn", "[Function]"},
        {"act", "[Action]"},
        {"actfn", "[ActionFunction]"},
        {"inf", "[JSObject]"},
    };
    size_t i;
    char name[64];

    for (i = 0; i < N_(t); i++) {
        kval v = mk(t[i].in);
        kval s = op_to_string(&v);
        snprintf(name, sizeof name, "toString %s", t[i].in);
        t_eq_str(kval_str_ptr(&s), t[i].want, name);
        t_eq_int(kval_kind(&s), KV_STRING, name);
        kval_free(s);
        kval_free(v);
    }
    {
        kval e = mk("err:boom"), s = op_to_string(&e);
        t_ok(kval_is_error(&s), "toString of an error propagates it");
        kval_free(s);
        kval_free(e);
    }
}

static void
test_to_number(void)
{
    struct {
        const char *in;
        int ok;
        double want;
    } t[] = {
        {"null", 1, 0},
        {"true", 1, 1},
        {"false", 1, 0},
        {"n:5", 1, 5},
        {"n:-2.5", 1, -2.5},
        {"s:42", 1, 42},
        {"s: 7 ", 1, 7},
        {"s:", 1, 0},
        {"s:0x1F", 1, 31},
        {"s:0b11", 1, 3},
        {"s:1e3", 1, 1000},
        {"s:1,000", 0, 0},
        {"s:abc", 0, 0},
        {"s:Infinity", 0, 0},
        {"s:-Infinity", 0, 0},
        {"s:1e400", 0, 0},
        {"j:[1,2,3]", 1, 3},
        {"j:[]", 1, 0},
        {"j:{\"a\":1,\"b\":2}", 1, 2},
        {"re:a/", 0, 0},
        {"fn", 0, 0},
        {"act", 0, 0},
        {"inf", 0, 0},
        {"err:x", 0, 0},
    };
    size_t i;
    char name[64];

    for (i = 0; i < N_(t); i++) {
        kval v = mk(t[i].in);
        double d = -999;
        bool ok = op_to_number(&v, &d);
        snprintf(name, sizeof name, "toNumber ok %s", t[i].in);
        t_eq_int(ok, t[i].ok, name);
        if (t[i].ok) {
            snprintf(name, sizeof name, "toNumber value %s", t[i].in);
            t_ok(d == t[i].want, name);
        }
        kval_free(v);
    }
}

enum binop { ADD, SUB, MUL, DIV, MOD, NEG };

static kval
apply(enum binop op, const kval *a, const kval *b)
{
    switch (op) {
    case ADD:
        return op_add(a, b);
    case SUB:
        return op_sub(a, b);
    case MUL:
        return op_mul(a, b);
    case DIV:
        return op_div(a, b);
    case MOD:
        return op_mod(a, b);
    case NEG:
        return op_neg(a);
    }
    return kval_null();
}

static void
test_arith(void)
{
    struct {
        enum binop op;
        const char *a, *b, *want;
    } t[] = {
        {ADD, "n:1", "n:2", "N:3"},
        {ADD, "n:0.1", "n:0.2", "N:0.30000000000000004"},
        {ADD, "n:1", "null", "S:1null"},
        {ADD, "null", "n:1", "S:null1"},
        {ADD, "null", "null", "S:nullnull"},
        {ADD, "s:wat", "n:100", "S:wat100"},
        {ADD, "s:5", "n:5", "S:55"},
        {ADD, "n:5", "s:5", "S:55"},
        {ADD, "j:{}", "j:[]", "S:[Map][Array]"},
        {ADD, "true", "n:1", "S:true1"},
        {ADD, "s:a", "re:x/g", "S:are#x#g"},
        {ADD, "fn", "s:!", "S:[Function]!"},
        {ADD, "inf", "n:1", "S:[JSObject]1"},
        {ADD, "s:caf\xC3\xA9", "s:\xF0\x9F\x98\x80", "S:caf\xC3\xA9\xF0\x9F\x98\x80"},
        {ADD, "n:1e21", "s:", "S:1e+21"},
        {ADD, "err:boom", "n:1", "E:boom"},
        {ADD, "n:1", "err:bang", "E:bang"},
        {SUB, "n:5", "n:3", "N:2"},
        {SUB, "s:5", "s:2", "N:3"},
        {SUB, "null", "n:1", "N:-1"},
        {SUB, "true", "false", "N:1"},
        {SUB, "j:[1,2]", "n:1", "N:1"},
        {SUB, "j:{\"a\":1}", "j:{}", "N:1"},
        {SUB, "s:0x10", "n:1", "N:15"},
        {SUB, "s: 3 ", "s:", "N:3"},
        {SUB, "s:a", "n:1", "E:TypeError: 1 cannot be subtracted from a"},
        {SUB, "n:1", "re:x/",
         "E:TypeError: re#x# cannot be subtracted from 1"},
        {SUB, "n:1", "s:1,000",
         "E:TypeError: 1,000 cannot be subtracted from 1"},
        {SUB, "err:e1", "s:a", "E:e1"},
        {MUL, "s:2", "s:3", "N:6"},
        {MUL, "n:1.5", "n:2", "N:3"},
        {MUL, "null", "n:7", "N:0"},
        {MUL, "s:x", "n:2", "E:TypeError: x cannot be multiplied by 2"},
        {MUL, "fn", "n:2",
         "E:TypeError: [Function] cannot be multiplied by 2"},
        {MUL, "n:2", "act", "E:TypeError: 2 cannot be multiplied by [Action]"},
        {MUL, "n:1e200", "n:1e200", "N:Infinity"},
        {DIV, "n:1", "n:0", "N:0"},
        {DIV, "n:-1", "n:0", "N:0"},
        {DIV, "n:1", "null", "N:0"},
        {DIV, "n:1", "s:", "N:0"},
        {DIV, "n:6", "s:3", "N:2"},
        {DIV, "n:1", "n:3", "N:0.3333333333333333"},
        {DIV, "n:1", "n:8", "N:0.125"},
        {DIV, "s:two", "n:1", "E:TypeError: two cannot be divided by 1"},
        {DIV, "n:1", "j:{}", "N:0"},
        {DIV, "n:1", "inf", "E:TypeError: 1 cannot be divided by [JSObject]"},
        {MOD, "n:7", "n:3", "N:1"},
        {MOD, "n:-7", "n:3", "N:-1"},
        {MOD, "n:7", "n:-3", "N:1"},
        {MOD, "n:5.5", "n:2", "N:1.5"},
        {MOD, "n:7", "n:0", "N:0"},
        {MOD, "s:9", "s:4", "N:1"},
        {MOD, "s:a", "n:2", "E:TypeError: Cannot calculate a modulo 2"},
        {MOD, "n:2", "null", "N:0"},
        {NEG, "n:5", NULL, "N:-5"},
        {NEG, "n:-5", NULL, "N:5"},
        {NEG, "s:5", NULL, "N:-5"},
        {NEG, "null", NULL, "N:0"},
        {NEG, "true", NULL, "N:-1"},
        {NEG, "j:[1,2]", NULL, "N:-2"},
        {NEG, "s:zero", NULL, "E:TypeError: Cannot negate zero"},
        {NEG, "re:x/i", NULL, "E:TypeError: Cannot negate re#x#i"},
        {NEG, "fn", NULL, "E:TypeError: Cannot negate [Function]"},
        {NEG, "err:z", NULL, "E:z"},
    };
    static const char *opname[] = {"+", "-", "*", "/", "%", "neg"};
    size_t i;
    char name[128], buf[256];

    for (i = 0; i < N_(t); i++) {
        kval a = mk(t[i].a), b = t[i].b ? mk(t[i].b) : kval_null();
        snprintf(name, sizeof name, "%s %s %s", t[i].a, opname[t[i].op],
                 t[i].b ? t[i].b : "");
        t_eq_str(show(apply(t[i].op, &a, &b), buf, sizeof buf), t[i].want,
                 name);
        kval_free(a);
        kval_free(b);
    }
    {
        kval a = kval_number(-7), b = kval_number(7), r = op_mod(&a, &b);
        t_ok(signbit(kval_get_number(&r)), "-7 % 7 is -0 as in JavaScript");
        kval_free(r);
        a = kval_number(0);
        r = op_neg(&a);
        t_ok(signbit(kval_get_number(&r)), "neg 0 is -0");
        kval_free(r);
    }
}

static void
test_compare(void)
{
    struct {
        const char *a, *b;
        int cmp3, cmp;          /* <=> and cmp */
    } t[] = {
        {"n:5", "s:5", 0, 0},
        {"s:5", "s:10", -1, 1},
        {"n:2", "n:10", -1, 1},
        {"n:20", "n:3", 1, -1},
        {"j:[0,1]", "j:[1,1]", 0, 0},
        {"n:1", "s:a", -1, -1},
        {"s:b", "s:a", 1, 1},
        {"s:abc", "s:abd", -1, -1},
        {"null", "n:0", 0, 1},
        {"null", "s:a", 1, 1},
        {"null", "s:null", 0, 0},
        {"true", "n:1", 0, 1},
        {"re:x/", "s:re#x#", 0, 0},
        {"j:{}", "j:[]", 0, 1},
        {"j:[]", "s:[Array]", 0, 0},
        {"s:\xEE\x80\x80", "s:\xF0\x9F\x98\x80", 1, 1},
        {"s:Infinity", "s:z", -1, -1},
        {"n:1.5", "s:1.5", 0, 0},
        {"s: 1", "n:1", 0, -1},
        {"s:", "null", 0, -1},
        {"fn", "act", 1, 1},
        {"inf", "n:1", 1, 1},
        {"n:-1", "n:-2", 1, -1},
    };
    size_t i;
    char name[128];

    for (i = 0; i < N_(t); i++) {
        kval a = mk(t[i].a), b = mk(t[i].b);
        snprintf(name, sizeof name, "%s <=> %s", t[i].a, t[i].b);
        t_eq_int(op_compare(&a, &b), t[i].cmp3, name);
        snprintf(name, sizeof name, "%s <=> %s reversed", t[i].a, t[i].b);
        t_eq_int(op_compare(&b, &a), -t[i].cmp3, name);
        snprintf(name, sizeof name, "%s cmp %s", t[i].a, t[i].b);
        t_eq_int(op_cmp(&a, &b), t[i].cmp, name);
        kval_free(a);
        kval_free(b);
    }
}

static void
test_like(void)
{
    struct {
        const char *a, *b, *want;
    } t[] = {
        {"s:hello", "re:ell/", "B:true"},
        {"s:hello", "re:^ell/", "B:false"},
        {"s:hello", "s:^h", "B:true"},
        {"s:hello", "s:^e", "B:false"},
        {"n:123", "s:^12", "B:true"},
        {"n:1.5", "s:^1\\.5$", "B:true"},
        {"null", "s:nu", "B:true"},
        {"s:x", "null", "B:false"},
        {"s:null", "null", "B:true"},
        {"s:ABC", "re:abc/i", "B:true"},
        {"s:ABC", "re:abc/g", "B:false"},
        {"s:ABC", "s:abc", "B:false"},
        {"j:[1]", "s:Array", "B:true"},
        {"j:{}", "s:^\\[Map\\]$", "B:true"},
        {"s:caf\xC3\xA9", "s:^caf.$", "B:true"},
        {"true", "s:^t", "B:true"},
        {"s:x", "s:(", "E:SyntaxError: Invalid regular expression"},
        {"err:bad", "s:x", "E:bad"},
    };
    size_t i;
    char name[128], buf[256];

    for (i = 0; i < N_(t); i++) {
        kval a = mk(t[i].a), b = mk(t[i].b);
        const char *got = show(op_like(&a, &b), buf, sizeof buf);
        snprintf(name, sizeof name, "%s like %s", t[i].a, t[i].b);
        if (strncmp(t[i].want, "E:", 2) == 0)
            t_ok(strncmp(got, t[i].want, strlen(t[i].want)) == 0, name);
        else
            t_eq_str(got, t[i].want, name);
        kval_free(a);
        kval_free(b);
    }
}

static void
test_contains(void)
{
    struct {
        const char *a, *b;
        int want;
    } t[] = {
        {"j:[1,2,3]", "n:2", 1},
        {"j:[1,2,3]", "s:2", 0},
        {"j:[1,2,3]", "n:4", 0},
        {"j:[[1],{\"a\":1}]", "j:{\"a\":1}", 1},
        {"j:[[1],{\"a\":1}]", "j:[1]", 1},
        {"j:[[1],{\"a\":1}]", "j:{\"a\":2}", 0},
        {"j:[null]", "null", 1},
        {"j:[]", "null", 0},
        {"j:{\"a\":1}", "s:a", 1},
        {"j:{\"a\":1}", "s:b", 0},
        {"j:{\"1\":1}", "n:1", 1},
        {"j:{\"null\":1}", "null", 1},
        {"j:{\"true\":1}", "true", 1},
        {"j:{\"a\":{\"b\":1}}", "j:[\"a\",\"b\"]", 1},
        {"j:{\"a\":{\"b\":1}}", "j:[\"a\",\"c\"]", 0},
        {"j:{\"a\":{\"b\":1}}", "s:a.b", 1},
        {"j:{\"a\":{\"b\":1}}", "s:a.c", 0},
        {"j:{\"a.b\":1}", "s:a.b", 1},
        {"j:{\"a\":[5,6]}", "j:[\"a\",1]", 1},
        {"j:{\"a\":[5,6]}", "j:[\"a\",2]", 0},
        {"j:{\"a\":[5,6]}", "j:[\"a\",\"01\"]", 0},
        {"j:{\"a\":1}", "j:[]", 0},
        {"s:abc", "s:a", 0},
        {"n:5", "n:5", 0},
        {"null", "null", 0},
    };
    size_t i;
    char name[128];

    for (i = 0; i < N_(t); i++) {
        kval a = mk(t[i].a), b = mk(t[i].b);
        snprintf(name, sizeof name, "%s >< %s", t[i].a, t[i].b);
        t_eq_int(op_contains(&a, &b), t[i].want, name);
        kval_free(a);
        kval_free(b);
    }
}

int
main(void)
{
    test_to_string();
    test_to_number();
    test_arith();
    test_compare();
    test_like();
    test_contains();
    return tap_done();
}
