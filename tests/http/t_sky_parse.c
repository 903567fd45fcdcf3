/*
 * t_sky_parse.c - the Sky API's request parsing without a network
 * (src/http/sky_parse.c) and the listener's helpers that need none
 * (sky_error_status, sky_value_detach).
 *
 * The query-string cases and their answers were produced by the qs
 * library (6.11, what Express 4 uses) with `qs.parse(case)`, and the form
 * cases by Node.js's querystring.parse: picomail must read a query string
 * exactly as the reference engine does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/json.h"
#include "tap.h"
#include "../../src/http/sky_http.h"
#include "../../src/http/sky_parse.h"

/* json_of - V as compact JSON (malloc'd) */
static char *
json_of(const kval *v)
{
    struct buf b;
    buf_init(&b);
    if (kval_is_error(v))
        buf_printf(&b, "ERROR %s", kval_error_msg(v));
    else
        json_encode(v, JSON_KRL, 0, &b);
    return buf_take(&b, NULL);
}

static const char *const qs_cases[][2] = {
    {"a=1", "{\"a\":\"1\"}"},
    {"a=1&b=2", "{\"a\":\"1\",\"b\":\"2\"}"},
    {"a=1&a=2", "{\"a\":[\"1\",\"2\"]}"},
    {"a=1&a=2&a=3", "{\"a\":[\"1\",\"2\",\"3\"]}"},
    {"a[b]=c", "{\"a\":{\"b\":\"c\"}}"},
    {"a[b][c]=d", "{\"a\":{\"b\":{\"c\":\"d\"}}}"},
    {"a[]=1&a[]=2", "{\"a\":[\"1\",\"2\"]}"},
    {"a[0]=x", "{\"a\":[\"x\"]}"},
    {"a[1]=b&a[0]=c", "{\"a\":[\"c\",\"b\"]}"},
    {"a[1]=b&a[5]=c", "{\"a\":[\"b\",\"c\"]}"},
    {"a[21]=x", "{\"a\":{\"21\":\"x\"}}"},
    {"a[20]=x", "{\"a\":[\"x\"]}"},
    {"a[]=1&a[b]=2", "{\"a\":{\"0\":\"1\",\"b\":\"2\"}}"},
    {"a[b]=1&a=2", "{\"a\":{\"2\":true,\"b\":\"1\"}}"},
    {"a=2&a[b]=1", "{\"a\":[\"2\",{\"b\":\"1\"}]}"},
    {"a[0][x]=1&a[0][y]=2", "{\"a\":[{\"x\":\"1\",\"y\":\"2\"}]}"},
    {"a[0]=1&a[0]=2", "{\"a\":[[\"1\",\"2\"]]}"},
    {"a[b][c][d][e][f][g][h]=i",
     "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"[g][h]\":\"i\"}}}}}}}"},
    {"a%5Bb%5D=c", "{\"a\":{\"b\":\"c\"}}"},
    {"x=a+b%20c", "{\"x\":\"a b c\"}"},
    {"=x&y", "{\"y\":\"\"}"},
    {"y", "{\"y\":\"\"}"},
    {"&&a=1&&", "{\"a\":\"1\"}"},
    {"a[b=c]=d", "{\"a\":{\"b=c\":\"d\"}}"},
    {"a[]=", "{\"a\":[\"\"]}"},
    {"a=&a[]=1", "{\"a\":[\"\",\"1\"]}"},
    {"[a]=b", "{\"a\":\"b\"}"},
    {"a[b]c[d]=e", "{\"a\":{\"b\":{\"d\":\"e\"}}}"},
    {"a[__proto__]=x", "{}"},
    {"toString=1&b=2", "{\"b\":\"2\"}"},
    {"a[hasOwnProperty]=1", "{}"},
    {"a[b]=1&a=toString", "{\"a\":{\"b\":\"1\"}}"},
    {"a[01]=x", "{\"a\":{\"01\":\"x\"}}"},
    {"a[-1]=x", "{\"a\":{\"-1\":\"x\"}}"},
    {"a[][b]=1", "{\"a\":[{\"b\":\"1\"}]}"},
    {"a.b=c", "{\"a.b\":\"c\"}"},
    {"a[b]=1&a[b]=2", "{\"a\":{\"b\":[\"1\",\"2\"]}}"},
    {"a[]=1&a[0]=2", "{\"a\":[\"1\",\"2\"]}"},
    {"a[0]=1&a[]=2", "{\"a\":[\"1\",\"2\"]}"},
    {"a=%E2%82%AC", "{\"a\":\"€\"}"},
    {"a[b][]=1&a[b][]=2&a[c]=3", "{\"a\":{\"b\":[\"1\",\"2\"],\"c\":\"3\"}}"},
    {"0=a&b=c", "{\"0\":\"a\",\"b\":\"c\"}"},
    {"a[x][0]=1&a[x][1]=2&a[y]=3", "{\"a\":{\"x\":[\"1\",\"2\"],\"y\":\"3\"}}"},
    {"name=x&name[first]=y", "{\"name\":[\"x\",{\"first\":\"y\"}]}"},
    {"a[]=1&a[]=2&a[1]=3", "{\"a\":[\"1\",\"2\",\"3\"]}"},
};

static void
test_qs(void)
{
    for (size_t i = 0; i < sizeof qs_cases / sizeof qs_cases[0]; i++) {
        kval v = sky_parse_qs(qs_cases[i][0], strlen(qs_cases[i][0]));
        char *got = json_of(&v);
        char name[128];
        snprintf(name, sizeof name, "qs: %s", qs_cases[i][0]);
        t_eq_str(got, qs_cases[i][1], name);
        free(got);
        kval_free(v);
    }
    /* where we differ from qs on purpose: a malformed escape is 400 */
    static const char *const bad[] = {"a=%zz", "a=%4", "a%=1", "a=%FF",
                                      "a=%ED%A0%80", "a=%C0%AF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kval v = sky_parse_qs(bad[i], strlen(bad[i]));
        char name[128];
        snprintf(name, sizeof name, "qs: %s is an error", bad[i]);
        t_ok(kval_is_error(&v), name);
        kval_free(v);
    }
    /* the parameter limit: the 1001st pair and later are ignored */
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 1005; i++)
        buf_printf(&b, "%sk%d=%d", i ? "&" : "", i, i);
    kval v = sky_parse_qs(b.data, b.len);
    t_eq_int(kval_map_len(&v), SKY_MAX_PARAMS, "qs: 1000 pairs at most");
    kval_free(v);
    buf_release(&b);
}

static void
test_form(void)
{
    static const char *const cases[][2] = {
        {"a=1&a=2&b=x+y", "{\"a\":[\"1\",\"2\"],\"b\":\"x y\"}"},
        {"a[b]=c", "{\"a[b]\":\"c\"}"},
        {"=x&y", "{\"\":\"x\",\"y\":\"\"}"},
        {"a=%E2%82%AC&&c", "{\"a\":\"\xe2\x82\xac\",\"c\":\"\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kval v = sky_parse_form(cases[i][0], strlen(cases[i][0]));
        char *got = json_of(&v);
        char name[128];
        snprintf(name, sizeof name, "form: %s", cases[i][0]);
        t_eq_str(got, cases[i][1], name);
        free(got);
        kval_free(v);
    }
    kval v = sky_parse_form("a=%zz", 5);
    t_ok(kval_is_error(&v), "form: a malformed escape is an error");
    kval_free(v);
}

static void
test_decode(void)
{
    struct buf b;
    buf_init(&b);
    t_eq_int(sky_pct_decode("a%20b+c", 7, false, &b), 0, "decode: path");
    t_eq_str(b.data, "a b+c", "decode: '+' stays in a path");
    buf_reset(&b);
    t_eq_int(sky_pct_decode("a%20b+c", 7, true, &b), 0, "decode: query");
    t_eq_str(b.data, "a b c", "decode: '+' is a space in a query");
    buf_reset(&b);
    t_eq_int(sky_pct_decode("%e2%82%ac", 9, false, &b), 0,
             "decode: lower-case hex");
    t_eq_str(b.data, "\xe2\x82\xac", "decode: UTF-8 kept");
    static const char *const bad[] = {"%", "%2", "%zz", "%FF", "%C3",
                                      "%E0%80%80", "%F4%90%80%80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_reset(&b);
        char name[64];
        snprintf(name, sizeof name, "decode: %s refused", bad[i]);
        t_eq_int(sky_pct_decode(bad[i], strlen(bad[i]), false, &b), -1, name);
    }
    buf_release(&b);
}

/* path_case - parse PATH; the status, and the route's fields as text */
static int
path_case(const char *path, char *out, size_t outlen)
{
    struct sky_path p;
    char err[256] = "";
    int st = sky_path_parse(path, strlen(path), &p, err, sizeof err);
    if (st != 0)
        snprintf(out, outlen, "%d %s", st, err);
    else
        snprintf(out, outlen, "%d eci=%s eid=%s d=%s t=%s rid=%s name=%s f=%d",
                 (int)p.route, p.eci ? p.eci : "-", p.eid ? p.eid : "-",
                 p.domain ? p.domain : "-", p.type ? p.type : "-",
                 p.rid ? p.rid : "-", p.name ? p.name : "-", (int)p.format);
    sky_path_release(&p);
    return st;
}

static void
test_paths(void)
{
    static const char *const cases[][2] = {
        {"/sky/event/E1/none/echo/hello",
         "1 eci=E1 eid=none d=echo t=hello rid=- name=- f=0"},
        {"/sky/event/E1/x/echo/hello/",
         "1 eci=E1 eid=x d=echo t=hello rid=- name=- f=0"},
        {"/sky/cloud/E1/my.rid/fn",
         "2 eci=E1 eid=- d=- t=- rid=my.rid name=fn f=0"},
        {"/sky/cloud/E1/my.rid/fn.json",
         "2 eci=E1 eid=- d=- t=- rid=my.rid name=fn f=0"},
        {"/sky/cloud/E1/my.rid/fn.txt",
         "2 eci=E1 eid=- d=- t=- rid=my.rid name=fn f=1"},
        {"/sky/cloud/E1/my.rid/fn.html",
         "2 eci=E1 eid=- d=- t=- rid=my.rid name=fn f=2"},
        {"/sky/cloud/E1/my.rid/fn.xml",
         "2 eci=E1 eid=- d=- t=- rid=my.rid name=fn f=0"},
        {"/c/E1/event/a%20b/t%C3%A9",
         "3 eci=E1 eid=- d=a b t=t\xc3\xa9 rid=- name=- f=0"},
        {"/c/E1/event-wait/d/t", "4 eci=E1 eid=- d=d t=t rid=- name=- f=0"},
        {"/c/E1/query/r/n.txt", "5 eci=E1 eid=- d=- t=- rid=r name=n f=1"},
        {"/c/E1/event/d/t/query/r/n",
         "6 eci=E1 eid=- d=d t=t rid=r name=n f=0"},
        {"/metrics", "7 eci=- eid=- d=- t=- rid=- name=- f=0"},
        {"/", "404 Error: no such route"},
        {"/nothing/here", "404 Error: no such route"},
        {"/c/E1/other/d/t", "404 Error: no such route"},
        {"/sky/events/E1/none/d/t", "404 Error: no such route"},
        {"sky/event/E1/none/d/t", "400 Error: malformed path"},
        {"/sky/event/E1/none/d",
         "400 Error: malformed path: expected /sky/event/ECI/EID/DOMAIN/TYPE"},
        {"/sky/event/E1/none/d/t/x",
         "400 Error: malformed path: expected /sky/event/ECI/EID/DOMAIN/TYPE"},
        {"/sky/event/E1//d/t", "400 Error: malformed path: empty segment in "
                               "/sky/event/ECI/EID/DOMAIN/TYPE"},
        {"/c/E1/event/d/t/quer/r/n",
         "400 Error: malformed path: expected "
         "/c/ECI/event/DOMAIN/TYPE[/query/RID/NAME]"},
        {"/sky/event/E%2F1/none/d/t",
         "400 Error: a path segment may not hold '/' or NUL"},
        {"/sky/event/E%001/none/d/t",
         "400 Error: a path segment may not hold '/' or NUL"},
        {"/sky/event/E%zz/none/d/t",
         "400 Error: malformed percent-encoding in the path"},
        {"/sky/event/E%FF/none/d/t",
         "400 Error: malformed percent-encoding in the path"},
        {"/sky/cloud/E1/r/.txt", "400 Error: malformed path: no function "
                                 "name in /sky/cloud/ECI/RID/FUNCTION"},
        {"/a/b/c/d/e/f/g/h/i/j/k", "404 Error: no such route"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[512];
        path_case(cases[i][0], got, sizeof got);
        char name[160];
        snprintf(name, sizeof name, "path: %s", cases[i][0]);
        t_eq_str(got, cases[i][1], name);
    }
}

static void
test_body(void)
{
    const char *json = "{\"a\":1,\"b\":[true,null]}";
    kval v = sky_body_attrs("application/json; charset=utf-8", json,
                            strlen(json));
    char *got = json_of(&v);
    t_eq_str(got, "{\"a\":1,\"b\":[true,null]}", "body: JSON");
    free(got);
    kval_free(v);
    v = sky_body_attrs("Application/X-WWW-Form-Urlencoded", "a=1&b=%C3%A9",
                       12);
    got = json_of(&v);
    t_eq_str(got, "{\"a\":\"1\",\"b\":\"\xc3\xa9\"}", "body: form");
    free(got);
    kval_free(v);
    v = sky_body_attrs("text/plain", "a=1", 3);
    t_eq_int(kval_map_len(&v), 0, "body: another type is ignored");
    kval_free(v);
    v = sky_body_attrs(NULL, "{\"a\":1}", 7);
    t_eq_int(kval_map_len(&v), 0, "body: no type is ignored");
    kval_free(v);
    v = sky_body_attrs("application/json", "", 0);
    t_ok(kval_kind(&v) == KV_MAP && kval_map_len(&v) == 0,
         "body: an empty JSON body is {}");
    kval_free(v);
    v = sky_body_attrs("application/json", "{\"a\":", 5);
    t_ok(kval_is_error(&v) &&
             strncmp(kval_error_msg(&v), "Error: the body is not valid JSON",
                     33) == 0,
         "body: bad JSON is an error");
    kval_free(v);
    v = sky_body_attrs("application/json", "[1,2]", 5);
    t_ok(kval_is_error(&v), "body: a JSON array is an error");
    kval_free(v);
    v = sky_body_attrs("application/octet-stream", "{\"x\":\"y\"}", 9);
    t_ok(kval_map_get_str(&v, "x") != NULL, "body: octet-stream is JSON");
    kval_free(v);
}

static void
test_headers(void)
{
    kval h = kval_map();
    h = sky_headers_put(h, "Host", "a");
    h = sky_headers_put(h, "HOST", "b");
    h = sky_headers_put(h, "X-Thing", "1");
    h = sky_headers_put(h, "x-thing", "2");
    h = sky_headers_put(h, "Cookie", "a=1");
    h = sky_headers_put(h, "Cookie", "b=2");
    h = sky_headers_put(h, "Set-Cookie", "c=3");
    kval q = sky_parse_qs("a=1&b=2", 7);
    kval body = kval_map_put_str(kval_map(), "b", kval_cstr("body"));
    kval attrs = sky_merge_attrs(q, body, h);
    char *got = json_of(&attrs);
    t_eq_str(got,
             "{\"a\":\"1\",\"b\":\"body\",\"_headers\":{\"host\":\"a\","
             "\"x-thing\":\"1, 2\",\"cookie\":\"a=1; b=2\","
             "\"set-cookie\":[\"c=3\"]}}",
             "headers and the merge");
    free(got);
    kval_free(attrs);
}

static void
test_status(void)
{
    static const struct {
        const char *msg, *eci, *rid;
        int want;
    } cases[] = {
        {"Error: ECI not found abc", "abc", NULL, 404},
        {"Error: ECI not found other", "abc", NULL, 500},
        {"Error: Not allowed by channel policy", "abc", NULL, 403},
        {"Error: Denied by channel policy", "abc", "r", 403},
        {"Error: This is a family channel and only the owner can use it.",
         "abc", NULL, 403},
        {"Error: Pico doesn't have my.rid installed.", "abc", "my.rid", 404},
        {"Error: Pico doesn't have x installed.", "abc", "my.rid", 500},
        {"Error: Pico doesn't have my.rid installed.", "abc", NULL, 500},
        {"Error: Ruleset my.rid does not have query function \"f\"", "abc",
         "my.rid", 404},
        {"Error: missing event.domain", "abc", NULL, 400},
        {"Error: missing query.name", "abc", "r", 400},
        {"Error: the database is busy; try again", "abc", NULL, 503},
        {"Error: the engine is busy or stopping, try again", "abc", NULL,
         503},
        {"TypeError: x is not a function", "abc", NULL, 500},
        {"Error: storage: disk I/O error", "abc", NULL, 500},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        t_eq_int(sky_error_status(cases[i].msg, cases[i].eci, cases[i].rid),
                 cases[i].want, cases[i].msg);
}

static void
test_detach(void)
{
    const char *text = "{\"a\":[1,\"two\",{\"x\":null}],\"b\":true,"
                       "\"\xc3\xa9\":\"long string long string long string "
                       "long string long\"}";
    kval v = json_parse(text, strlen(text));
    kval d = sky_value_detach(&v);
    char *a = json_of(&v), *b = json_of(&d);
    t_eq_str(b, a, "detach: the same value");
    t_ok(kval_equal(&v, &d), "detach: equal");
    t_eq_int(kval_refcount(kval_map_get_str(&v, "a")), 1,
             "detach: shares nothing");
    free(a);
    free(b);
    kval_free(v);
    kval_free(d);
    kval e = kval_error("Error: boom");
    kval de = sky_value_detach(&e);
    t_eq_str(kval_error_msg(&de), "Error: boom", "detach: errors");
    kval_free(e);
    kval_free(de);
}

int
main(void)
{
    test_qs();
    test_form();
    test_decode();
    test_paths();
    test_body();
    test_headers();
    test_status();
    test_detach();
    return tap_done();
}
