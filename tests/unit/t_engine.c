/*
 * t_engine.c - the pico engine on a real SQLite file: state that survives
 * a restart (entity variables and a half-matched `a before b`), a failing
 * rule that leaves no partial writes, two picos with one ruleset keeping
 * separate state, channel policies, a runaway ruleset stopped by the
 * limits with the next event still running, family channels, modules,
 * raise ordering, and the administrative errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "picomail/engine.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "tap.h"

static char dir[] = "/tmp/t_engine.XXXXXX";
static char db[256];

static struct engine *
open_db(void)
{
    struct engine_options o;
    engine_options_default(&o);
    o.database = db;
    o.synchronous_full = false;
    o.limits.max_steps = 200000;
    o.limits.max_ms = 5000;
    char err[256];
    struct engine *e = engine_open(&o, err, sizeof err);
    if (e == NULL)
        printf("engine_open: %s\n", err);
    return e;
}

/* text - V as JSON, or its error message; consumes V */
static char *
text(kval v)
{
    char *s = kval_is_error(&v) ? xstrdup(kval_error_msg(&v))
                                : json_to_cstr(&v, JSON_KRL);
    kval_free(v);
    return s ? s : xstrdup("(unprintable)");
}

static void
t_eq_text(kval v, const char *want, const char *name)
{
    char *got = text(v);
    t_eq_str(got, want, name);
    free(got);
}

/* directive_names - "a,b,c" from an event result; consumes R */
static char *
directive_names(kval r)
{
    if (kval_is_error(&r))
        return text(r);
    const kval *ds = kval_map_get_str(&r, "directives");
    char buf[1024] = "";
    size_t used = 0;
    for (size_t i = 0; ds && i < kval_array_len(ds); i++) {
        const kval *name = kval_map_get_str(kval_array_get(ds, i), "name");
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s",
                                 i ? "," : "", kval_str_ptr(name));
        if (used >= sizeof buf)
            break;
    }
    kval_free(r);
    return xstrdup(buf);
}

static void
t_directives(kval r, const char *want, const char *name)
{
    char *got = directive_names(r);
    t_eq_str(got, want, name);
    free(got);
}

static kval
attrs(const char *json)
{
    return json_parse(json, strlen(json));
}

static char *
register_src(struct engine *e, const char *src)
{
    kval r = engine_ruleset_register(e, "t.krl", src, strlen(src));
    if (kval_is_error(&r)) {
        printf("register: %s\n", kval_error_msg(&r));
        kval_free(r);
        return NULL;
    }
    char *rid = xstrdup(kval_str_ptr(kval_map_get_str(&r, "rid")));
    kval_free(r);
    return rid;
}

static char *
new_pico_eci(struct engine *e, const char *name, const kval *spec)
{
    kval p = engine_pico_new(e, name, NULL);
    if (kval_is_error(&p)) {
        printf("pico new: %s\n", kval_error_msg(&p));
        kval_free(p);
        return NULL;
    }
    kval c = engine_channel_new(e, name, spec);
    kval_free(p);
    if (kval_is_error(&c)) {
        printf("channel new: %s\n", kval_error_msg(&c));
        kval_free(c);
        return NULL;
    }
    char *eci = xstrdup(kval_str_ptr(kval_map_get_str(&c, "eci")));
    kval_free(c);
    return eci;
}

static const char *counter_krl =
    "ruleset t.counter {\n"
    "  meta { shares total, log }\n"
    "  global {\n"
    "    total = function() { ent:n.defaultsTo(0) }\n"
    "    log = function() { ent:log.defaultsTo([]) }\n"
    "  }\n"
    "  rule inc {\n"
    "    select when c inc\n"
    "    send_directive(\"inc\", {\"n\": total() + 1})\n"
    "    fired { ent:n := total() + 1 }\n"
    "  }\n"
    "  rule ab {\n"
    "    select when c a before c b\n"
    "    send_directive(\"a then b\")\n"
    "  }\n"
    "  rule failing {\n"
    "    select when c fail\n"
    "    always {\n"
    "      ent:log := log().append(\"before\");\n"
    "      ent:n := 1000;\n"
    "      x = event:attrs{\"f\"}(1);\n"
    "      ent:log := log().append(\"after\")\n"
    "    }\n"
    "  }\n"
    "  rule loop {\n"
    "    select when c loop\n"
    "    pre { f = function(n) { f(n + 1) + 1 } }\n"
    "    send_directive(\"never\", {\"v\": f(0)})\n"
    "  }\n"
    "  rule spin {\n"
    "    select when c spin\n"
    "    pre { g = function(n) { n <= 0 => 0 | g(n - 1) + g(n - 1) } }\n"
    "    send_directive(\"never\", {\"v\": g(60)})\n"
    "  }\n"
    "}\n";

static void
test_restart_and_isolation(void)
{
    struct engine *e = open_db();
    if (e == NULL)
        return;
    kval r = engine_init(e);
    t_ok(!kval_is_error(&r), "init");
    kval_free(r);
    char *rid = register_src(e, counter_krl);
    t_ok(rid != NULL, "register counter");
    char *eci1 = new_pico_eci(e, "one", NULL);
    char *eci2 = new_pico_eci(e, "two", NULL);
    t_ok(eci1 && eci2, "two picos with channels");
    if (!rid || !eci1 || !eci2)
        return;
    kval ir = engine_install(e, "one", rid, NULL);
    t_ok(!kval_is_error(&ir) && kval_map_get_str(&ir, "rid") != NULL,
         "install");
    kval_free(ir);
    kval_free(engine_install(e, "two", rid, NULL));
    kval none = kval_map();
    t_directives(engine_event(e, eci1, "c", "inc", &none, 0), "inc",
                 "event runs");
    /* each directive's meta names its own event (the vm is reused) */
    for (int i = 0; i < 2; i++) {
        kval ev = engine_event(e, i ? eci2 : eci1, "c", "inc", &none, 0);
        const kval *ds = kval_map_get_str(&ev, "directives");
        const kval *meta = ds && kval_array_len(ds) > 0
                               ? kval_map_get_str(kval_array_get(ds, 0),
                                                  "meta")
                               : NULL;
        t_ok(meta != NULL &&
                 kval_equal(kval_map_get_str(meta, "txnId"),
                            kval_map_get_str(&ev, "eid")) &&
                 strcmp(kval_str_ptr(kval_map_get_str(meta, "rid")),
                        "t.counter") == 0 &&
                 strcmp(kval_str_ptr(kval_map_get_str(meta, "rule_name")),
                        "inc") == 0,
             "directive meta: rid, rule, this event's eid");
        kval_free(ev);
    }
    t_eq_text(engine_query(e, eci1, rid, "total", &none), "2",
              "pico one counted 2");
    t_eq_text(engine_query(e, eci2, rid, "total", &none), "1",
              "pico two keeps its own state");
    /* half of `a before b`, then a restart */
    t_directives(engine_event(e, eci1, "c", "a", &none, 0), "",
                 "a alone selects nothing");
    engine_close(e);

    e = open_db();
    if (e == NULL)
        return;
    t_eq_text(engine_query(e, eci1, rid, "total", &none), "2",
              "entity variable survives a restart");
    t_directives(engine_event(e, eci1, "c", "b", &none, 0), "a then b",
                 "a before b completes across a restart");
    t_directives(engine_event(e, eci1, "c", "b", &none, 0), "",
                 "and starts over after firing");

    /* a failing rule leaves no partial writes */
    kval fa = attrs("{\"f\": \"not a function\"}");
    kval fr = engine_event(e, eci1, "c", "fail", &fa, 0);
    t_ok(kval_is_error(&fr), "failing rule gives an error");
    kval_free(fr);
    kval_free(fa);
    t_eq_text(engine_query(e, eci1, rid, "log", &none), "[]",
              "failing rule rolled back its first write");
    t_eq_text(engine_query(e, eci1, rid, "total", &none), "2",
              "failing rule rolled back its second write");

    /* runaway rulesets: an error, and the next event still runs */
    kval lr = engine_event(e, eci1, "c", "loop", &none, 0);
    t_ok(kval_is_error(&lr) &&
             strstr(kval_error_msg(&lr), "Maximum call stack") != NULL,
         "infinite recursion is an error");
    kval_free(lr);
    kval sr = engine_event(e, eci1, "c", "spin", &none, 0);
    t_ok(kval_is_error(&sr), "exponential work hits a limit");
    kval_free(sr);
    t_directives(engine_event(e, eci1, "c", "inc", &none, 0), "inc",
                 "the next event runs");
    t_eq_text(engine_query(e, eci1, rid, "total", &none), "3",
              "and commits");
    kval_free(none);
    free(rid);
    free(eci1);
    free(eci2);
    engine_close(e);
}

static void
test_policies(void)
{
    struct engine *e = open_db();
    if (e == NULL)
        return;
    char *rid = register_src(e, counter_krl);
    kval spec = attrs("{\"eventPolicy\": {\"allow\": [{\"domain\": \"c\", "
                      "\"name\": \"*\"}], \"deny\": [{\"domain\": \"c\", "
                      "\"name\": \"loop\"}]}, \"queryPolicy\": {\"allow\": "
                      "[{\"rid\": \"t.counter\", \"name\": \"total\"}]}}");
    char *eci = new_pico_eci(e, "guarded", &spec);
    kval_free(spec);
    if (rid == NULL || eci == NULL)
        return;
    kval_free(engine_install(e, "guarded", rid, NULL));
    kval none = kval_map();
    t_directives(engine_event(e, eci, "c", "inc", &none, 0), "inc",
                 "allowed event");
    t_eq_text(engine_event(e, eci, "c", "loop", &none, 0),
              "Error: Denied by channel policy", "deny wins");
    t_eq_text(engine_event(e, eci, "other", "x", &none, 0),
              "Error: Not allowed by channel policy", "not allowed");
    t_eq_text(engine_query(e, eci, rid, "total", &none), "1",
              "allowed query");
    t_eq_text(engine_query(e, eci, rid, "log", &none),
              "Error: Not allowed by channel policy", "query not allowed");
    t_eq_text(engine_event(e, "nosuchchannel", "c", "inc", &none, 0),
              "Error: ECI not found nosuchchannel", "unknown ECI");
    /* the pico's own family channel refuses outsiders */
    kval show = engine_pico_show(e, "guarded");
    const kval *id = kval_map_get_str(&show, "id");
    t_eq_text(engine_event(e, kval_str_ptr(id), "c", "inc", &none, 0),
              "Error: This is a family channel and only the owner can use "
              "it.", "family channel refuses callers from outside");
    kval_free(show);
    kval bad = attrs("{\"eventPolicy\": {\"allow\": [{\"domain\": \" \", "
                     "\"name\": \"x\"}]}}");
    kval r = engine_channel_new(e, "guarded", &bad);
    t_ok(kval_is_error(&r), "blank policy field refused");
    kval_free(r);
    kval_free(bad);
    kval_free(none);
    free(rid);
    free(eci);
    engine_close(e);
}

static const char *module_krl =
    "ruleset t.mod {\n"
    "  meta {\n"
    "    configure using greeting = \"hello\"\n"
    "    provides greet, remember\n"
    "  }\n"
    "  global {\n"
    "    greet = function(who) { greeting + \" \" + who }\n"
    "    remember = defaction(v) { send_directive(\"remembered\", {\"v\": v})"
    " }\n"
    "  }\n"
    "}\n";

static const char *user_krl =
    "ruleset t.user {\n"
    "  meta {\n"
    "    use module t.mod alias m with greeting = \"hi\"\n"
    "    shares hello\n"
    "  }\n"
    "  global { hello = function(w) { m:greet(w) } }\n"
    "  rule r1 {\n"
    "    select when u go\n"
    "    m:remember(1)\n"
    "    fired { raise u event \"next\" }\n"
    "  }\n"
    "  rule r2 { select when u next  send_directive(\"next\") }\n"
    "  rule r3 { select when u go  send_directive(\"r3\") }\n"
    "}\n";

static void
test_modules_and_admin(void)
{
    struct engine *e = open_db();
    if (e == NULL)
        return;
    char *mod = register_src(e, module_krl);
    char *user = register_src(e, user_krl);
    char *eci = new_pico_eci(e, "modpico", NULL);
    if (!mod || !user || !eci)
        return;
    kval r = engine_install(e, "modpico", user, NULL);
    t_ok(kval_is_error(&r), "a module must be installed first");
    kval_free(r);
    kval_free(engine_install(e, "modpico", mod, NULL));
    r = engine_install(e, "modpico", user, NULL);
    t_ok(!kval_is_error(&r), "then the user installs");
    kval_free(r);
    kval args = attrs("{\"w\": \"bob\"}");
    t_eq_text(engine_query(e, eci, user, "hello", &args), "\"hi bob\"",
              "module function with configure using");
    kval_free(args);
    kval none = kval_map();
    t_directives(engine_event(e, eci, "u", "go", &none, 0),
                 "remembered,r3,next",
                 "module action, rule order, raise after");
    kval_free(none);
    r = engine_uninstall(e, "modpico", mod);
    t_ok(kval_is_error(&r) && strstr(kval_error_msg(&r), "depends on"),
         "uninstalling a used module is refused");
    kval_free(r);
    r = engine_pico_new(e, "modpico", NULL);
    t_ok(kval_is_error(&r), "pico names are unique");
    kval_free(r);
    r = engine_pico_rm(e, "modpico");
    t_ok(!kval_is_error(&r), "pico rm");
    kval_free(r);
    kval q = kval_map();
    r = engine_query(e, eci, user, "hello", &q);
    t_ok(kval_is_error(&r), "its channels are gone");
    kval_free(r);
    kval_free(q);
    free(mod);
    free(user);
    free(eci);
    engine_close(e);
}

static const char *parent_krl =
    "ruleset t.parent {\n"
    "  meta { shares kids, kidPokes, kidSecret }\n"
    "  global {\n"
    "    kids = function() { ctx:children }\n"
    "    kidPokes = function() {\n"
    "      ctx:query(ent:kid, \"t.child\", \"pokes\", {}) }\n"
    "    kidSecret = function() { ent:kid }\n"
    "  }\n"
    "  rule make {\n"
    "    select when p make\n"
    "    ctx:newPico([{\"rid\": \"t.child\"}]) setting(eci)\n"
    "    fired { ent:kid := eci }\n"
    "  }\n"
    "  rule ask {\n"
    "    select when p ask\n"
    "    pre { a = ctx:query(ent:kid, \"t.child\", \"hello\",\n"
    "                        {\"name\": \"dad\"}) }\n"
    "    send_directive(\"answer\", {\"a\": a})\n"
    "  }\n"
    "  rule tell {\n"
    "    select when p tell\n"
    "    ctx:event(ent:kid, \"c\", \"poke\", {\"n\": 1})\n"
    "  }\n"
    "  rule drop {\n"
    "    select when p drop\n"
    "    ctx:delPico(ent:kid)\n"
    "  }\n"
    "}\n";

static const char *child_krl =
    "ruleset t.child {\n"
    "  meta { shares hello, pokes }\n"
    "  global {\n"
    "    hello = function(name) { \"hi \" + name }\n"
    "    pokes = function() { ent:pokes.defaultsTo(0) }\n"
    "  }\n"
    "  rule poke {\n"
    "    select when c poke\n"
    "    fired { ent:pokes := pokes() + event:attrs{\"n\"} }\n"
    "  }\n"
    "}\n";

/* ctx: through real rulesets: a parent makes a child, queries it, sends
 * it an event on their family channel, and deletes it; outsiders cannot
 * use that channel */
static void
test_ctx(void)
{
    struct engine *e = open_db();
    if (e == NULL)
        return;
    char *child = register_src(e, child_krl);
    char *parent = register_src(e, parent_krl);
    char *eci = new_pico_eci(e, "parent", NULL);
    if (!child || !parent || !eci)
        return;
    kval_free(engine_install(e, "parent", parent, NULL));
    kval none = kval_map();
    t_directives(engine_event(e, eci, "p", "make", &none, 0), "",
                 "ctx:newPico");
    kval kids = engine_query(e, eci, parent, "kids", &none);
    t_ok(kval_kind(&kids) == KV_ARRAY && kval_array_len(&kids) == 1,
         "ctx:children lists the child");
    kval_free(kids);
    kval ask = engine_event(e, eci, "p", "ask", &none, 0);
    const kval *ds = kval_map_get_str(&ask, "directives");
    const kval *opts = ds && kval_array_len(ds) == 1
                           ? kval_map_get_str(kval_array_get(ds, 0),
                                              "options")
                           : NULL;
    const kval *a = opts ? kval_map_get_str(opts, "a") : NULL;
    t_ok(a != NULL && kval_kind(a) == KV_STRING &&
             strcmp(kval_str_ptr(a), "hi dad") == 0,
         "ctx:query of the child, during an event");
    kval_free(ask);
    t_directives(engine_event(e, eci, "p", "tell", &none, 0), "",
                 "ctx:event to the child");
    t_eq_text(engine_query(e, eci, parent, "kidPokes", &none), "1",
              "the child got it (after the parent's event committed)");
    kval secret = engine_query(e, eci, parent, "kidSecret", &none);
    if (kval_kind(&secret) == KV_STRING)
        t_eq_text(engine_event(e, kval_str_ptr(&secret), "c", "poke", &none,
                               0),
                  "Error: This is a family channel and only the owner can "
                  "use it.",
                  "outsiders cannot use the parent's channel to the child");
    kval_free(secret);
    kval list = engine_pico_list(e);
    size_t before = kval_array_len(&list);
    kval_free(list);
    t_directives(engine_event(e, eci, "p", "drop", &none, 0), "",
                 "ctx:delPico");
    list = engine_pico_list(e);
    t_eq_int(kval_array_len(&list), before - 1, "the child is gone");
    kval_free(list);
    kval_free(none);
    free(child);
    free(parent);
    free(eci);
    engine_close(e);
}

/* two engines on one database file (the daemon and the command line):
 * each sees the other's changes although it caches channels and installs */
static void
test_two_engines(void)
{
    struct engine *a = open_db(), *b = open_db();
    if (a == NULL || b == NULL)
        return;
    char *rid = register_src(a, counter_krl);
    char *eci = new_pico_eci(a, "shared", NULL);
    if (rid == NULL || eci == NULL)
        return;
    kval_free(engine_install(a, "shared", rid, NULL));
    kval none = kval_map();
    t_directives(engine_event(b, eci, "c", "inc", &none, 0), "inc",
                 "second engine runs the event (and caches the channel)");
    kval r = engine_uninstall(a, "shared", rid);
    t_ok(!kval_is_error(&r), "first engine uninstalls");
    kval_free(r);
    t_directives(engine_event(b, eci, "c", "inc", &none, 0), "",
                 "second engine sees the uninstall");
    r = engine_channel_rm(a, eci);
    t_ok(!kval_is_error(&r), "first engine removes the channel");
    kval_free(r);
    char want[128];
    snprintf(want, sizeof want, "Error: ECI not found %s", eci);
    t_eq_text(engine_event(b, eci, "c", "inc", &none, 0), want,
              "second engine sees the channel gone");
    kval_free(none);
    free(rid);
    free(eci);
    engine_close(a);
    engine_close(b);
}

int
main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db, sizeof db, "%s/picomail.db", dir);
    test_restart_and_isolation();
    test_policies();
    test_modules_and_admin();
    test_two_engines();
    test_ctx();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/picomail.db", dir);
    unlink(cmd);
    snprintf(cmd, sizeof cmd, "%s/picomail.db-wal", dir);
    unlink(cmd);
    snprintf(cmd, sizeof cmd, "%s/picomail.db-shm", dir);
    unlink(cmd);
    rmdir(dir);
    return tap_done();
}
