/*
 * t_engine_parts.c - the engine's small modules on their own: channel
 * tags and policies (policy.c), identifiers (ids.c) and the configuration
 * file reader (conf.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "picomail/conf.h"
#include "picomail/ids.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/policy.h"
#include "tap.h"

static kval
js(const char *text)
{
    return json_parse(text, strlen(text));
}

/* show - V as JSON or its error message (consumes V) */
static char *
show(kval v)
{
    char *s = kval_is_error(&v) ? xstrdup(kval_error_msg(&v))
                                : json_to_cstr(&v, JSON_KRL);
    kval_free(v);
    return s;
}

static void
t_show(kval v, const char *want, const char *name)
{
    char *got = show(v);
    t_eq_str(got, want, name);
    free(got);
}

static void
test_tags(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"[\"Mail\"]", "[\"mail\"]"},
        {"[\"  two  words \"]", "[\"two-words\"]"},
        {"[\"a!!b\", \"x_y-z\"]", "[\"a-b\",\"x_y-z\"]"},
        {"[\"--lead--\"]", "[\"lead\"]"},
        {"\"single\"", "[\"single\"]"},
        {"null", "[]"},
        {"[\"\"]", "Error: Channel tags cannot be blank"},
        {"[\"!!!\"]", "Error: Channel tags cannot be blank"},
        {"[\"System\"]", "Error: Tag not allowed: system"},
        {"[1]", "Error: Channel tags must be strings"},
        {"{}", "Error: Channel tags must be an array of strings"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kval in = js(cases[i].in);
        char name[64];
        snprintf(name, sizeof name, "tags %s", cases[i].in);
        t_show(tags_normalize(&in, false), cases[i].want, name);
        kval_free(in);
    }
    kval sys = js("[\"system\", \"self\"]");
    t_show(tags_normalize(&sys, true), "[\"system\",\"self\"]",
           "the engine may tag its own channels system");
    kval_free(sys);
}

static void
test_policies(void)
{
    t_show(policy_normalize(NULL, POLICY_EVENT),
           "{\"allow\":[{\"domain\":\"*\",\"name\":\"*\"}],\"deny\":[]}",
           "no policy allows everything");
    kval q = js("{\"allow\": [{\"rid\": \" r1 \", \"name\": \"f\"}]}");
    t_show(policy_normalize(&q, POLICY_QUERY),
           "{\"allow\":[{\"rid\":\"r1\",\"name\":\"f\"}],\"deny\":[]}",
           "query policy trimmed, deny added");
    kval_free(q);
    static const char *const bad[] = {
        "[]", "{\"allow\": 1}", "{\"other\": []}",
        "{\"allow\": [{\"domain\": \"a\"}]}",
        "{\"allow\": [{\"domain\": \"a\", \"name\": \" \"}]}",
        "{\"allow\": [{\"domain\": 1, \"name\": \"b\"}]}",
        "{\"allow\": [{\"domain\": \"a\", \"name\": \"b\", \"x\": 1}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kval p = js(bad[i]);
        kval r = policy_normalize(&p, POLICY_EVENT);
        char name[96];
        snprintf(name, sizeof name, "bad policy refused: %s", bad[i]);
        t_ok(kval_is_error(&r), name);
        kval_free(r);
        kval_free(p);
    }
    kval spec = js("{\"allow\": [{\"domain\": \"mail\", \"name\": \"*\"}, "
                   "{\"domain\": \"*\", \"name\": \"ping\"}], \"deny\": "
                   "[{\"domain\": \"mail\", \"name\": \"spam\"}]}");
    kval p = policy_normalize(&spec, POLICY_EVENT);
    static const struct {
        const char *d, *t, *want;
    } checks[] = {
        {"mail", "received", "null"},
        {"other", "ping", "null"},
        {"mail", "spam", "Error: Denied by channel policy"},
        {"other", "pong", "Error: Not allowed by channel policy"},
        {"Mail", "received", "Error: Not allowed by channel policy"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "policy check %s:%s", checks[i].d,
                 checks[i].t);
        t_show(policy_check(&p, POLICY_EVENT, checks[i].d, checks[i].t),
               checks[i].want, name);
    }
    kval_free(p);
    kval_free(spec);
}

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_ids(void)
{
    char a[ID_BUFSIZE], b[ID_BUFSIZE];
    id_new(a);
    id_new(b);
    t_eq_int(strlen(a), ID_LEN, "id length");
    t_ok(a[0] == 'c', "id starts with c");
    bool lower = true;
    for (size_t i = 0; i < ID_LEN; i++)
        if (!((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9')))
            lower = false;
    t_ok(lower, "id is lower-case letters and digits");
    t_ok(strcmp(a, b) != 0, "two ids differ");
    /* many ids, all distinct: sort and compare neighbours */
    enum { N = 20000 };
    char (*many)[ID_BUFSIZE] = xcalloc(N, ID_BUFSIZE);
    for (int i = 0; i < N; i++)
        id_new(many[i]);
    qsort(many, N, ID_BUFSIZE, cmp_id);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += strcmp(many[i - 1], many[i]) == 0;
    t_eq_int(dups, 0, "20,000 ids are distinct");
    free(many);
    t_ok(id_valid_eci("ckabc-DEF_9"), "valid eci");
    t_ok(!id_valid_eci(""), "empty eci invalid");
    t_ok(!id_valid_eci("a@b"), "eci with @ invalid");
    t_ok(!id_valid_eci("a b"), "eci with a space invalid");
}

static char *
write_conf(const char *text)
{
    char *path = xstrdup("/tmp/t_conf.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return path;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n)
        perror("write");
    close(fd);
    return path;
}

static void
test_conf(void)
{
    char err[256] = "";
    struct conf *c = conf_load(NULL, err, sizeof err);
    t_eq_str(conf_get(c, "database"), "./var/picomail.db", "default database");
    t_eq_str(conf_get(c, "mail_domain"), "picos.localhost", "default domain");
    t_ok(conf_get(c, "no_such_key") == NULL, "unknown key has no value");
    conf_set(c, "database", "/x.db");
    t_eq_str(conf_get(c, "database"), "/x.db", "conf_set overrides");
    conf_free(c);

    char *p = write_conf("# comment\n\nmail_domain = example.org\n"
                         "lmtp_listen = 127.0.0.1:24,\n"
                         "   unix:/run/picomail.sock\n"
                         "max_message_size=1000  \n");
    c = conf_load(p, err, sizeof err);
    t_ok(c != NULL, "conf loads");
    if (c != NULL) {
        t_eq_str(conf_get(c, "mail_domain"), "example.org", "value read");
        t_eq_str(conf_get(c, "lmtp_listen"),
                 "127.0.0.1:24, unix:/run/picomail.sock",
                 "continuation line joined");
        t_eq_str(conf_get(c, "max_message_size"), "1000", "trimmed value");
        t_eq_str(conf_get(c, "database"), "./var/picomail.db",
                 "unset key keeps its default");
    }
    conf_free(c);
    unlink(p);
    free(p);

    p = write_conf("mail_domain = a\nthis line has no equals sign\n");
    c = conf_load(p, err, sizeof err);
    t_ok(c == NULL && strstr(err, ":2:") != NULL,
         "syntax error names the line");
    conf_free(c);
    unlink(p);
    free(p);
    p = write_conf("bad-key = 1\n");
    c = conf_load(p, err, sizeof err);
    t_ok(c == NULL && strstr(err, "bad key") != NULL, "bad key refused");
    conf_free(c);
    unlink(p);
    free(p);
    c = conf_load("/nonexistent/picomail.conf", err, sizeof err);
    t_ok(c == NULL && strstr(err, "/nonexistent/picomail.conf") != NULL,
         "missing file named in the error");
}

int
main(void)
{
    test_tags();
    test_policies();
    test_ids();
    test_conf();
    return tap_done();
}
