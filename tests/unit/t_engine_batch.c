/*
 * t_engine_batch.c - entity variables inside one batch of events (one
 * store transaction), which the engine keeps in memory and writes at the
 * commit: each event sees the writes of the events before it; a failing
 * rule's writes are undone whether it ran under a store savepoint or not;
 * values read back as the store gives them; uninstalling a ruleset or
 * deleting a pico in the middle of the batch drops its variables; more
 * variables than the cache holds go to the store directly (and are rolled
 * back with a failing rule); everything survives a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "picomail/buf.h"
#include "picomail/engine.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "tap.h"

static char dir[] = "/tmp/t_engine_batch.XXXXXX";
static char db[256];

static struct engine *
open_db(void)
{
    struct engine_options o;
    engine_options_default(&o);
    o.database = db;
    o.synchronous_full = false;
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
new_pico_eci(struct engine *e, const char *name)
{
    kval p = engine_pico_new(e, name, NULL);
    if (kval_is_error(&p)) {
        kval_free(p);
        return NULL;
    }
    kval_free(p);
    kval c = engine_channel_new(e, name, NULL);
    if (kval_is_error(&c)) {
        kval_free(c);
        return NULL;
    }
    char *eci = xstrdup(kval_str_ptr(kval_map_get_str(&c, "eci")));
    kval_free(c);
    return eci;
}

static kval
attrs(const char *json)
{
    return json_parse(json, strlen(json));
}

/* opt - the options member NAME of directive I of result R, as JSON */
static char *
opt(const kval *r, size_t i, const char *name)
{
    if (kval_is_error(r))
        return xstrdup(kval_error_msg(r));
    const kval *ds = kval_map_get_str(r, "directives");
    if (ds == NULL || i >= kval_array_len(ds))
        return xstrdup("(no directive)");
    const kval *o = kval_map_get_str(kval_array_get(ds, i), "options");
    const kval *v = o ? kval_map_get_str(o, name) : NULL;
    if (v == NULL)
        return xstrdup("(absent)");
    return text(kval_copy(v));
}

static void
t_opt(const kval *r, size_t i, const char *name, const char *want,
      const char *what)
{
    char *got = opt(r, i, name);
    t_eq_str(got, want, what);
    free(got);
}

static const char *counter_krl =
    "ruleset t.bcount {\n"
    "  meta { shares total, log, odd }\n"
    "  global {\n"
    "    total = function() { ent:n.defaultsTo(0) }\n"
    "    log = function() { ent:log.defaultsTo([]) }\n"
    "    odd = function() { ent:m }\n"
    "  }\n"
    /* entity variables only: no savepoint needed */
    "  rule inc {\n"
    "    select when c inc\n"
    "    send_directive(\"inc\", {\"n\": ent:n.defaultsTo(0) + 1})\n"
    "    fired { ent:n := ent:n.defaultsTo(0) + 1 }\n"
    "  }\n"
    "  rule fail_light {\n"
    "    select when c fail_light\n"
    "    always {\n"
    "      ent:log := ent:log.defaultsTo([]).append(\"before\");\n"
    "      ent:n := 1000;\n"
    "      x = [1].map(event:attrs{\"f\"});\n"
    "      ent:log := ent:log.defaultsTo([]).append(\"after\")\n"
    "    }\n"
    "  }\n"
    /* calls a global function: runs under a savepoint */
    "  rule fail_guarded {\n"
    "    select when c fail_guarded\n"
    "    always {\n"
    "      ent:log := log().append(\"before\");\n"
    "      ent:n := 2000;\n"
    "      x = event:attrs{\"f\"}(1);\n"
    "      ent:log := log().append(\"after\")\n"
    "    }\n"
    "  }\n"
    "  rule set_odd {\n"
    "    select when c set_odd\n"
    "    fired { ent:m := {\"a\": null, \"b\": [1, null]} }\n"
    "  }\n"
    "  rule show_odd {\n"
    "    select when c show_odd\n"
    "    send_directive(\"odd\", {\"m\": ent:m, \"keys\": ent:m.keys()})\n"
    "  }\n"
    "  rule clear_n {\n"
    "    select when c clear_n\n"
    "    fired { clear ent:n }\n"
    "  }\n"
    "}\n";

static struct engine_event_req
req(const char *eci, const char *type, const kval *a)
{
    return (struct engine_event_req){.eci = eci, .domain = "c",
                                     .type = type, .attrs = a};
}

/* the events of a batch see each other's writes; failing rules undo
 * theirs, with or without a savepoint */
static void
test_counter(void)
{
    struct engine *e = open_db();
    if (e == NULL)
        return;
    kval_free(engine_init(e));
    char *rid = register_src(e, counter_krl);
    char *eci = new_pico_eci(e, "counter");
    if (rid == NULL || eci == NULL)
        return;
    kval_free(engine_install(e, "counter", rid, NULL));
    kval none = kval_map();
    kval bad = attrs("{\"f\": \"not a function\"}");

    struct engine_event_req v[100];
    for (int i = 0; i < 100; i++)
        v[i] = req(eci, "inc", &none);
    kval r = engine_event_batch(e, v, 100);
    t_ok(kval_kind(&r) == KV_ARRAY && kval_array_len(&r) == 100,
         "a batch of 100 gives 100 results");
    char want[16];
    int right = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(want, sizeof want, "%d", i + 1);
        char *got = opt(kval_array_get(&r, (size_t)i), 0, "n");
        right += strcmp(got, want) == 0;
        free(got);
    }
    t_eq_int(right, 100, "each event saw the writes of those before it");
    kval_free(r);
    t_eq_text(engine_query(e, eci, rid, "total", &none), "100",
              "the batch committed its last value");

    struct engine_event_req w[] = {
        req(eci, "inc", &none), req(eci, "fail_light", &bad),
        req(eci, "inc", &none), req(eci, "fail_guarded", &bad),
        req(eci, "inc", &none)};
    r = engine_event_batch(e, w, 5);
    t_opt(kval_array_get(&r, 0), 0, "n", "101", "inc before the failures");
    t_ok(kval_is_error(kval_array_get(&r, 1)),
         "a rule writing entity variables only fails");
    t_opt(kval_array_get(&r, 2), 0, "n", "102",
          "its writes were undone for the next event");
    t_ok(kval_is_error(kval_array_get(&r, 3)),
         "a rule under a savepoint fails");
    t_opt(kval_array_get(&r, 4), 0, "n", "103",
          "its writes were undone too");
    kval_free(r);
    t_eq_text(engine_query(e, eci, rid, "total", &none), "103",
              "committed without the failed writes");
    t_eq_text(engine_query(e, eci, rid, "log", &none), "[]",
              "neither failing rule left its first write");

    /* values as they read back from the store, in the batch and after */
    struct engine_event_req o[] = {req(eci, "set_odd", &none),
                                   req(eci, "show_odd", &none)};
    r = engine_event_batch(e, o, 2);
    char *in_batch = opt(kval_array_get(&r, 1), 0, "m");
    char *keys_batch = opt(kval_array_get(&r, 1), 0, "keys");
    kval_free(r);
    r = engine_event(e, eci, "c", "show_odd", &none, 0);
    t_opt(&r, 0, "m", in_batch, "a map with a null member: as stored");
    t_opt(&r, 0, "keys", keys_batch, "the stored map's keys");
    kval_free(r);
    t_eq_str(keys_batch, "[\"b\"]", "the null member is gone");
    free(in_batch);
    free(keys_batch);

    /* clear in a batch */
    struct engine_event_req c[] = {req(eci, "clear_n", &none),
                                   req(eci, "inc", &none)};
    r = engine_event_batch(e, c, 2);
    t_opt(kval_array_get(&r, 1), 0, "n", "1", "a cleared variable is gone");
    kval_free(r);
    engine_close(e);

    e = open_db();
    if (e == NULL)
        return;
    t_eq_text(engine_query(e, eci, rid, "total", &none), "1",
              "the batches' writes survive a restart");
    kval_free(none);
    kval_free(bad);
    free(rid);
    free(eci);
    engine_close(e);
}

static const char *admin_krl =
    "ruleset t.badmin {\n"
    "  rule drop_counter {\n"
    "    select when a drop\n"
    "    ctx:uninstall(\"t.bcount\")\n"
    "  }\n"
    "  rule add_counter {\n"
    "    select when a add\n"
    "    ctx:install(\"t.bcount\")\n"
    "  }\n"
    "}\n";

/* uninstalling in the middle of a batch drops the ruleset's variables */
static void
test_uninstall(void)
{
    struct engine *e = open_db();
    if (e == NULL)
        return;
    char *rid = register_src(e, counter_krl);
    char *admin = register_src(e, admin_krl);
    char *eci = new_pico_eci(e, "both");
    if (rid == NULL || admin == NULL || eci == NULL)
        return;
    kval_free(engine_install(e, "both", rid, NULL));
    kval_free(engine_install(e, "both", admin, NULL));
    kval none = kval_map();
    struct engine_event_req v[] = {
        req(eci, "inc", &none), req(eci, "inc", &none),
        {.eci = eci, .domain = "a", .type = "drop", .attrs = &none},
        {.eci = eci, .domain = "a", .type = "add", .attrs = &none},
        req(eci, "inc", &none)};
    kval r = engine_event_batch(e, v, 5);
    t_ok(kval_kind(&r) == KV_ARRAY && kval_array_len(&r) == 5,
         "the batch commits");
    t_opt(kval_array_get(&r, 1), 0, "n", "2", "counted to 2");
    t_ok(!kval_is_error(kval_array_get(&r, 2)) &&
             !kval_is_error(kval_array_get(&r, 3)),
         "uninstall and install again in the batch");
    t_opt(kval_array_get(&r, 4), 0, "n", "1",
          "the reinstalled ruleset starts from nothing");
    kval_free(r);
    t_eq_text(engine_query(e, eci, rid, "total", &none), "1",
              "and so does what was committed");
    kval_free(none);
    free(rid);
    free(admin);
    free(eci);
    engine_close(e);
}

static const char *parent_krl =
    "ruleset t.bparent {\n"
    "  meta { shares kid }\n"
    "  global { kid = function() { ent:kid } }\n"
    "  rule make {\n"
    "    select when p make\n"
    "    ctx:newPico([{\"rid\": \"t.bcount\"}]) setting(eci)\n"
    "    fired { ent:kid := eci }\n"
    "  }\n"
    "  rule drop {\n"
    "    select when p drop\n"
    "    ctx:delPico(ent:kid)\n"
    "  }\n"
    "}\n";

/* a pico deleted in the middle of a batch: its variables, written earlier
 * in the batch, are not written back at the commit */
static void
test_delete_pico(void)
{
    struct engine *e = open_db();
    if (e == NULL)
        return;
    char *rid = register_src(e, counter_krl);
    char *parent = register_src(e, parent_krl);
    char *eci = new_pico_eci(e, "parent");
    if (rid == NULL || parent == NULL || eci == NULL)
        return;
    kval_free(engine_install(e, "parent", parent, NULL));
    kval none = kval_map();
    kval_free(engine_event(e, eci, "p", "make", &none, 0));
    kval kid = engine_query(e, eci, parent, "kid", &none);
    kval pico = engine_pico_show(e, "parent");
    const kval *pid = kval_map_get_str(&pico, "id");
    t_ok(kval_kind(&kid) == KV_STRING && pid != NULL,
         "a child and its family channel");
    if (kval_kind(&kid) != KV_STRING || pid == NULL)
        return;
    kval list = engine_pico_list(e);
    size_t before = kval_array_len(&list);
    kval_free(list);
    struct engine_event_req v[] = {
        {.eci = kval_str_ptr(&kid), .domain = "c", .type = "inc",
         .attrs = &none, .from_pico = kval_str_ptr(pid)},
        {.eci = eci, .domain = "p", .type = "drop", .attrs = &none}};
    kval r = engine_event_batch(e, v, 2);
    t_ok(!kval_is_error(&r), "the batch commits");
    if (!kval_is_error(&r)) {
        t_opt(kval_array_get(&r, 0), 0, "n", "1", "the child counted");
        t_ok(!kval_is_error(kval_array_get(&r, 1)), "the parent deleted it");
    }
    kval_free(r);
    list = engine_pico_list(e);
    t_eq_int(kval_array_len(&list), before - 1, "the child is gone");
    kval_free(list);
    kval_free(pico);
    kval_free(kid);
    kval_free(none);
    free(rid);
    free(parent);
    free(eci);
    engine_close(e);
}

/* more variables in one batch than the engine keeps: the rest go to the
 * store directly, and a failing rule rolls them back too */
#define MANY 5000

static char *
many_krl(void)
{
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "ruleset t.bmany {\n"
                 "  meta { shares get }\n"
                 "  global { get = function(k) { ent:v0 + \",\" + ent:v4999 } }\n"
                 "  rule fill {\n"
                 "    select when m fill\n"
                 "    always {\n");
    for (int i = 0; i < MANY; i++) {
        char line[80];
        snprintf(line, sizeof line, "      ent:v%d := event:attrs{\"x\"};\n",
                 i);
        buf_adds(&b, line);
    }
    buf_adds(&b, "      x = [1].map(event:attrs{\"f\"})\n"
                 "    }\n"
                 "  }\n"
                 "  rule show {\n"
                 "    select when m show\n"
                 "    send_directive(\"v\", {\"v\": ent:v0 + \",\" + ent:v4999})\n"
                 "  }\n"
                 "}\n");
    return buf_take(&b, NULL);
}

static void
test_many(void)
{
    struct engine *e = open_db();
    if (e == NULL)
        return;
    char *src = many_krl();
    char *rid = register_src(e, src);
    free(src);
    char *eci = new_pico_eci(e, "many");
    if (rid == NULL || eci == NULL)
        return;
    kval_free(engine_install(e, "many", rid, NULL));
    kval none = kval_map();
    kval ok = attrs("{\"x\": \"a\", \"f\": null}");
    kval ok2 = attrs("{\"x\": \"b\", \"f\": null}");
    kval bad = attrs("{\"x\": \"c\", \"f\": 1}");
    struct engine_event_req v[] = {
        {.eci = eci, .domain = "m", .type = "fill", .attrs = &ok},
        {.eci = eci, .domain = "m", .type = "show", .attrs = &none},
        {.eci = eci, .domain = "m", .type = "fill", .attrs = &bad},
        {.eci = eci, .domain = "m", .type = "show", .attrs = &none}};
    /* [1].map(null) is no error: fill with ok succeeds */
    kval r = engine_event_batch(e, v, 4);
    t_ok(!kval_is_error(kval_array_get(&r, 0)), "5000 variables written");
    t_opt(kval_array_get(&r, 1), 0, "v", "\"a,a\"",
          "the first and the last read back in the batch");
    t_ok(kval_is_error(kval_array_get(&r, 2)), "the second fill fails");
    t_opt(kval_array_get(&r, 3), 0, "v", "\"a,a\"",
          "and none of its writes stayed");
    kval_free(r);
    t_eq_text(engine_query(e, eci, rid, "get", &none), "\"a,a\"",
              "committed");
    struct engine_event_req w[] = {
        {.eci = eci, .domain = "m", .type = "fill", .attrs = &ok2}};
    r = engine_event_batch(e, w, 1);
    kval_free(r);
    t_eq_text(engine_query(e, eci, rid, "get", &none), "\"b,b\"",
              "a second batch overwrites them all");
    kval_free(none);
    kval_free(ok);
    kval_free(ok2);
    kval_free(bad);
    free(rid);
    free(eci);
    engine_close(e);
}

int
main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db, sizeof db, "%s/t.db", dir);
    test_counter();
    test_uninstall();
    test_delete_pico();
    test_many();
    char path[300];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", db, suffix[i]);
        unlink(path);
    }
    rmdir(dir);
    return tap_done();
}
