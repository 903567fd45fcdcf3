/*
 * t_store.c - unit tests for store_sqlite.c: every store.h function, value
 * round trips through JSON, not-found and invalid cases, case-insensitive
 * ECIs and aliases, transactions (rollback, two connections in WAL mode,
 * BUSY), the schema version, concurrent opens from several processes, and
 * an open over 100,000 picos that must not load them.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "picomail/buf.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/store.h"
#include "picomail/value.h"
#include "tap.h"

#define N_(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[] = "/tmp/t_store.XXXXXX";

/* db_path - a new path NAME in the test directory */
static char *
db_path(const char *name)
{
    struct buf b;

    buf_init(&b);
    buf_printf(&b, "%s/%s", tmpdir, name);
    return buf_take(&b, NULL);
}

static void
rm_db(const char *path)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    struct buf b;
    size_t i;

    buf_init(&b);
    for (i = 0; i < N_(sfx); i++) {
        buf_reset(&b);
        buf_printf(&b, "%s%s", path, sfx[i]);
        unlink(b.data);
    }
    buf_release(&b);
}

static struct store *
open_ok(const char *path, int busy_ms)
{
    struct store_options o = {busy_ms, false, NULL};
    char err[256] = "";
    struct store *s = store_open(path, &o, err, sizeof err);

    if (s == NULL)
        printf("# store_open %s: %s\n", path, err);
    return s;
}

static kval
J(const char *text)
{
    kval v = json_parse(text, strlen(text));

    if (kval_is_error(&v)) {
        printf("# bad test JSON %s\n", text);
        abort();
    }
    return v;
}

/* enc - V as compact JSON (malloc'd), "REFUSED" when JSON refuses it */
static char *
enc(const kval *v)
{
    struct buf b;

    buf_init(&b);
    if (json_encode(v, JSON_DATA, 0, &b) < 0) {
        buf_release(&b);
        return xstrdup("REFUSED");
    }
    return buf_take(&b, NULL);
}

/* check_json - V prints as WANT */
static void
check_json(const kval *v, const char *want, const char *name)
{
    char *got = enc(v);

    t_eq_str(got, want, name);
    free(got);
}

static kval
dummy_fn(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    (void)args;
    (void)n;
    return kval_null();
}

/* read_user_version - the schema version from the file header (big-endian
 * at offset 60); valid once the last connection has closed and
 * checkpointed the WAL */
static long
read_user_version(const char *path)
{
    unsigned char h[4];
    int fd = open(path, O_RDONLY);
    long v = -1;

    if (fd >= 0 && pread(fd, h, 4, 60) == 4)
        v = ((long)h[0] << 24) | ((long)h[1] << 16) | ((long)h[2] << 8) |
            (long)h[3];
    if (fd >= 0)
        close(fd);
    return v;
}

static void
write_user_version(const char *path, unsigned v)
{
    unsigned char h[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    int fd = open(path, O_WRONLY);

    if (fd < 0 || pwrite(fd, h, 4, 60) != 4)
        printf("# cannot patch %s\n", path);
    if (fd >= 0)
        close(fd);
}

/* ---- open ---- */

static void
test_open(void)
{
    char err[256];
    char *p = db_path("open.db"), *bad = db_path("garbage.db");
    struct store *s;
    int fd;

    err[0] = '\0';
    s = store_open("/nonexistent-dir/x/y.db", NULL, err, sizeof err);
    t_ok(s == NULL, "open: missing directory fails");
    t_ok(err[0] != '\0', "open: missing directory has a message");

    err[0] = '\0';
    s = store_open(NULL, NULL, err, sizeof err);
    t_ok(s == NULL && err[0] != '\0', "open: NULL path fails");

    s = store_open(":memory:", NULL, err, sizeof err);
    t_ok(s != NULL, "open: :memory:");
    t_eq_int(store_pico_count(s), 0, "open: :memory: is empty");
    t_eq_int(store_pico_new(s, "p1", NULL, NULL), 0, "open: :memory: writes");
    t_eq_int(store_pico_count(s), 1, "open: :memory: counts");
    s = store_close(s);
    t_ok(s == NULL, "close returns NULL");
    t_ok(store_close(NULL) == NULL, "close(NULL)");

    fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        const char junk[] = "this is not an SQLite database, not at all......"
                            "................................................";
        if (write(fd, junk, sizeof junk) != (ssize_t)sizeof junk)
            printf("# short write\n");
        close(fd);
    }
    err[0] = '\0';
    s = store_open(bad, NULL, err, sizeof err);
    t_ok(s == NULL, "open: a non-database file fails");
    t_ok(strstr(err, "not a database") != NULL, "open: says not a database");
    store_close(s);

    /* schema version, migration once, refusal of a newer schema */
    s = open_ok(p, 0);
    t_ok(s != NULL, "open: new file");
    store_meta_put(s, "k", "v");
    store_close(s);
    t_eq_int(read_user_version(p), 4, "open: schema version 4 in header");
    s = open_ok(p, 0);
    t_ok(s != NULL, "open: reopen a migrated file");
    if (s != NULL) {
        char *v = NULL;
        t_eq_int(store_meta_get(s, "k", &v), 0, "open: data kept on reopen");
        t_eq_str(v, "v", "open: data value kept");
        free(v);
    }
    store_close(s);
    write_user_version(p, 99);
    err[0] = '\0';
    s = store_open(p, NULL, err, sizeof err);
    t_ok(s == NULL, "open: newer schema refused");
    t_ok(strstr(err, "newer") != NULL, "open: newer schema message");
    store_close(s);

    rm_db(p);
    rm_db(bad);
    free(p);
    free(bad);
}

/* ---- meta ---- */

static void
test_meta(struct store *s)
{
    char *v = (char *)"x";

    t_eq_int(store_meta_get(s, "root_pico", &v), STORE_NOTFOUND,
             "meta: absent key");
    t_ok(v == NULL, "meta: absent key gives NULL");
    t_ok(store_errmsg(s)[0] != '\0', "meta: not-found message");
    t_eq_int(store_meta_put(s, "root_pico", "cabc"), 0, "meta: put");
    t_eq_int(store_meta_get(s, "root_pico", &v), 0, "meta: get");
    t_eq_str(v, "cabc", "meta: value");
    free(v);
    t_eq_int(store_meta_put(s, "root_pico", "ü✓"), 0, "meta: overwrite");
    t_eq_int(store_meta_get(s, "root_pico", &v), 0, "meta: get again");
    t_eq_str(v, "ü✓", "meta: overwritten value");
    free(v);
    t_eq_int(store_meta_put(s, "empty", ""), 0, "meta: empty value");
    t_eq_int(store_meta_get(s, "empty", &v), 0, "meta: get empty");
    t_eq_str(v, "", "meta: empty value kept");
    free(v);
    t_eq_int(store_meta_put(s, NULL, "x"), STORE_EINVAL, "meta: NULL key");
    t_eq_int(store_meta_put(s, "x", NULL), STORE_EINVAL, "meta: NULL value");
    t_eq_int(store_meta_get(s, NULL, &v), STORE_EINVAL, "meta: get NULL key");
}

/* ---- picos ---- */

static void
test_picos(struct store *s)
{
    struct store_pico p;
    kval v;

    t_eq_int(store_pico_new(s, "root", NULL, "Root"), 0, "pico: new root");
    t_eq_int(store_pico_new(s, "c1", "root", "child one"), 0, "pico: child 1");
    t_eq_int(store_pico_new(s, "c0", "root", NULL), 0, "pico: child 2");
    t_eq_int(store_pico_new(s, "g1", "c1", NULL), 0, "pico: grandchild");
    t_eq_int(store_pico_new(s, "root", NULL, NULL), STORE_EINVAL,
             "pico: duplicate id");
    t_eq_int(store_pico_new(s, "other", NULL, "Root"), STORE_EINVAL,
             "pico: duplicate name");
    t_eq_int(store_pico_new(s, "orphan", "nope", NULL), STORE_EINVAL,
             "pico: unknown parent");
    t_ok(strstr(store_errmsg(s), "FOREIGN KEY") != NULL,
         "pico: unknown parent message");
    t_eq_int(store_pico_new(s, "", NULL, NULL), STORE_EINVAL, "pico: empty id");
    t_eq_int(store_pico_new(s, NULL, NULL, NULL), STORE_EINVAL,
             "pico: NULL id");
    t_eq_int(store_pico_count(s), 4, "pico: count");

    t_eq_int(store_pico_get(s, "c1", &p), 0, "pico: get by id");
    t_eq_str(p.id, "c1", "pico: id");
    t_eq_str(p.parent_id, "root", "pico: parent");
    t_eq_str(p.name, "child one", "pico: name");
    t_ok(p.created_ms > 1600000000000LL, "pico: created_ms is epoch ms");
    store_pico_release(&p);
    t_eq_int(store_pico_get(s, "Root", &p), 0, "pico: get by name");
    t_eq_str(p.id, "root", "pico: by name id");
    t_ok(p.parent_id == NULL, "pico: root has no parent");
    store_pico_release(&p);
    t_eq_int(store_pico_get(s, "c0", &p), 0, "pico: unnamed");
    t_ok(p.name == NULL, "pico: unnamed name NULL");
    store_pico_release(&p);
    t_eq_int(store_pico_get(s, "root ", &p), STORE_NOTFOUND, "pico: not found");
    t_ok(p.id == NULL, "pico: not found leaves out empty");
    store_pico_release(&p);

    t_eq_int(store_pico_children(s, "root", &v), 0, "pico: children");
    check_json(&v, "[\"c1\",\"c0\"]", "pico: children in creation order");
    kval_free(v);
    t_eq_int(store_pico_children(s, "g1", &v), 0, "pico: no children");
    check_json(&v, "[]", "pico: empty children");
    kval_free(v);
    t_eq_int(store_pico_list(s, &v), 0, "pico: list");
    check_json(&v,
               "[{\"id\":\"root\",\"name\":\"Root\"},"
               "{\"id\":\"c1\",\"parent\":\"root\",\"name\":\"child one\"},"
               "{\"id\":\"c0\",\"parent\":\"root\"},"
               "{\"id\":\"g1\",\"parent\":\"c1\"}]",
               "pico: list by creation");
    if (kval_array_len(&v) == 4) {
        const kval *m = kval_array_get(&v, 0);
        const kval *par = kval_map_get_str(m, "parent");
        t_ok(par != NULL && kval_is_null(par), "pico: list root parent null");
    }
    kval_free(v);

    t_eq_int(store_pico_delete(s, "c1"), STORE_EINVAL,
             "pico: delete with children refused");
    t_eq_int(store_pico_count(s), 4, "pico: refused delete kept it");
    t_eq_int(store_pico_delete(s, "g1"), 0, "pico: delete leaf");
    t_eq_int(store_pico_delete(s, "g1"), STORE_NOTFOUND, "pico: delete again");
    t_eq_int(store_pico_delete(s, NULL), STORE_EINVAL, "pico: delete NULL");
    t_eq_int(store_pico_get(s, "g1", &p), STORE_NOTFOUND, "pico: deleted gone");
    store_pico_release(&p);
    t_eq_int(store_pico_delete(s, "c1"), 0, "pico: delete now-leaf");
    t_eq_int(store_pico_count(s), 2, "pico: count after deletes");
}

/* ---- channels ---- */

static void
fill_channel(struct store_channel *c, const char *eci, const char *pico,
             const char *alias)
{
    memset(c, 0, sizeof *c);
    c->eci = (char *)eci;
    c->pico_id = (char *)pico;
    c->alias = (char *)alias;
}

static void
test_channels(struct store *s)
{
    struct store_channel c, g;
    kval v;

    fill_channel(&c, "CkXyW1ABC", "root", "Sales@Example.ORG");
    c.tags = J("[\"mail\",\"sales\"]");
    c.event_policy = J("{\"allow\":[{\"domain\":\"email\",\"name\":\"*\"}],"
                       "\"deny\":[]}");
    c.query_policy =
        J("{\"allow\":[],\"deny\":[{\"rid\":\"*\",\"name\":\"*\"}]}");
    c.senders = J("[\"example.com\",\"bob@x.org\"]");
    c.require_dkim = true;
    c.family_pico_id = (char *)"c0";
    t_eq_int(store_channel_put(s, &c), 0, "chan: put");

    t_eq_int(store_channel_get(s, "ckxyw1abc", &g), 0, "chan: get lower");
    t_eq_str(g.eci, "ckxyw1abc", "chan: eci stored lower-case");
    t_eq_str(g.pico_id, "root", "chan: pico id");
    t_eq_str(g.alias, "sales@example.org", "chan: alias stored lower-case");
    t_eq_str(g.family_pico_id, "c0", "chan: family pico");
    check_json(&g.tags, "[\"mail\",\"sales\"]", "chan: tags");
    check_json(&g.event_policy,
               "{\"allow\":[{\"domain\":\"email\",\"name\":\"*\"}],"
               "\"deny\":[]}",
               "chan: event policy");
    check_json(&g.query_policy,
               "{\"allow\":[],\"deny\":[{\"rid\":\"*\",\"name\":\"*\"}]}",
               "chan: query policy");
    check_json(&g.senders, "[\"example.com\",\"bob@x.org\"]", "chan: senders");
    t_ok(g.require_dkim && !g.require_dmarc, "chan: dkim/dmarc flags");
    store_channel_release(&g);
    t_eq_int(store_channel_get(s, "CKXYW1ABC", &g), 0, "chan: get upper");
    store_channel_release(&g);
    t_eq_int(store_channel_get_by_alias(s, "SALES@example.org", &g), 0,
             "chan: alias any case");
    t_eq_str(g.eci, "ckxyw1abc", "chan: alias finds the channel");
    store_channel_release(&g);
    t_eq_int(store_channel_get(s, "ckxyw1ab", &g), STORE_NOTFOUND,
             "chan: unknown eci");
    t_ok(g.eci == NULL, "chan: not found leaves out empty");
    t_eq_int(store_channel_get_by_alias(s, "nobody@example.org", &g),
             STORE_NOTFOUND, "chan: unknown alias");
    t_eq_int(store_channel_get(s, NULL, &g), STORE_EINVAL, "chan: NULL eci");

    /* replace by eci: new values, alias dropped */
    kval_free(c.tags);
    c.tags = kval_null();
    c.alias = NULL;
    c.require_dkim = false;
    c.require_dmarc = true;
    c.family_pico_id = NULL;
    kval_free(c.senders);
    c.senders = kval_null();
    kval_free(c.query_policy);
    c.query_policy = kval_null();
    c.eci = (char *)"ckxyw1abc";
    t_eq_int(store_channel_put(s, &c), 0, "chan: replace");
    t_eq_int(store_channel_get(s, "ckxyw1abc", &g), 0, "chan: get replaced");
    check_json(&g.tags, "[]", "chan: null tags stored as []");
    check_json(&g.senders, "[]", "chan: null senders stored as []");
    t_ok(kval_is_null(&g.query_policy), "chan: null policy stays null");
    t_ok(g.alias == NULL && g.family_pico_id == NULL, "chan: NULLs kept");
    t_ok(!g.require_dkim && g.require_dmarc, "chan: flags replaced");
    store_channel_release(&g);
    t_eq_int(store_channel_get_by_alias(s, "sales@example.org", &g),
             STORE_NOTFOUND, "chan: dropped alias gone");

    /* alias uniqueness, case-insensitively; a conflict replaces nothing */
    fill_channel(&g, "E2", "root", "Help@x.org");
    t_eq_int(store_channel_put(s, &g), 0, "chan: second channel");
    fill_channel(&g, "E3", "c0", "HELP@X.ORG");
    t_eq_int(store_channel_put(s, &g), STORE_EINVAL, "chan: alias taken");
    t_eq_int(store_channel_get(s, "e2", &g), 0, "chan: alias owner intact");
    store_channel_release(&g);
    t_eq_int(store_channel_get(s, "e3", &g), STORE_NOTFOUND,
             "chan: conflicting channel not stored");

    /* invalid values */
    fill_channel(&g, "E4", "root", NULL);
    g.tags = J("{\"a\":1}");
    t_eq_int(store_channel_put(s, &g), STORE_EINVAL, "chan: tags not array");
    kval_free(g.tags);
    g.tags = kval_null();
    g.event_policy = kval_func_new(dummy_fn, NULL, NULL, KV_FN_FUNCTION, "f",
                                   NULL, 0);
    t_eq_int(store_channel_put(s, &g), STORE_EINVAL, "chan: function policy");
    kval_free(g.event_policy);
    g.event_policy = kval_cstr("allow");
    t_eq_int(store_channel_put(s, &g), STORE_EINVAL, "chan: string policy");
    kval_free(g.event_policy);
    g.event_policy = kval_null();
    g.pico_id = (char *)"no-such-pico";
    t_eq_int(store_channel_put(s, &g), STORE_EINVAL, "chan: unknown pico");
    g.pico_id = NULL;
    t_eq_int(store_channel_put(s, &g), STORE_EINVAL, "chan: NULL pico");

    fill_channel(&g, "Aa1", "root", NULL);
    t_eq_int(store_channel_put(s, &g), 0, "chan: third channel");
    t_eq_int(store_channel_list(s, "root", &v), 0, "chan: list");
    t_eq_int(kval_array_len(&v), 3, "chan: list length");
    if (kval_array_len(&v) == 3) {
        const kval *m0 = kval_array_get(&v, 0), *m2 = kval_array_get(&v, 2);
        t_eq_str(kval_str_ptr(kval_map_get_str(m0, "eci")), "aa1",
                 "chan: list by eci (first)");
        t_eq_str(kval_str_ptr(kval_map_get_str(m2, "eci")), "e2",
                 "chan: list by eci (last)");
        check_json(m2,
                   "{\"eci\":\"e2\",\"pico_id\":\"root\",\"tags\":[],"
                   "\"alias\":\"help@x.org\",\"senders\":[],"
                   "\"require_dkim\":false,\"require_dmarc\":false}",
                   "chan: list map");
        t_ok(kval_map_get_str(m2, "family_pico_id") != NULL,
             "chan: list map has family_pico_id");
    }
    kval_free(v);
    t_eq_int(store_channel_list(s, "nobody", &v), 0, "chan: list none");
    check_json(&v, "[]", "chan: empty list");
    kval_free(v);

    t_eq_int(store_channel_delete(s, "AA1"), 0, "chan: delete any case");
    t_eq_int(store_channel_delete(s, "aa1"), STORE_NOTFOUND,
             "chan: delete again");
    t_eq_int(store_channel_delete(s, NULL), STORE_EINVAL, "chan: delete NULL");

    kval_free(c.event_policy);
}

/* ---- rulesets ---- */

static void
test_rulesets(struct store *s)
{
    struct store_ruleset r;
    kval v;

    t_eq_int(store_ruleset_put(s, "io.x", "h1", "1.0", "ruleset io.x {}"), 0,
             "rs: put v1");
    t_eq_int(store_ruleset_put(s, "io.x", "h2", NULL, "ruleset io.x { }"), 0,
             "rs: put v2");
    t_eq_int(store_ruleset_put(s, "a.b", "h9", "2", "ruleset a.b {}"), 0,
             "rs: put other rid");
    t_eq_int(store_ruleset_get(s, "io.x", &r), 0, "rs: get current");
    t_eq_str(r.hash, "h2", "rs: current is v2");
    t_ok(r.version == NULL, "rs: NULL version");
    t_eq_str(r.source, "ruleset io.x { }", "rs: source");
    t_ok(r.registered_ms > 1600000000000LL, "rs: registered_ms");
    store_ruleset_release(&r);
    t_eq_int(store_ruleset_get_hash(s, "h1", &r), 0, "rs: old by hash");
    t_eq_str(r.rid, "io.x", "rs: old rid");
    t_eq_str(r.version, "1.0", "rs: old version");
    t_eq_str(r.source, "ruleset io.x {}", "rs: old source");
    store_ruleset_release(&r);
    t_eq_int(store_ruleset_get(s, "io.y", &r), STORE_NOTFOUND, "rs: no rid");
    t_eq_int(store_ruleset_get_hash(s, "h3", &r), STORE_NOTFOUND,
             "rs: no hash");
    t_eq_int(store_ruleset_put(s, "io.y", "h1", NULL, "x"), STORE_EINVAL,
             "rs: hash of another rid");
    t_eq_int(store_ruleset_get(s, "io.y", &r), STORE_NOTFOUND,
             "rs: refused put left nothing");
    t_eq_int(store_ruleset_put(s, "io.y", NULL, NULL, "x"), STORE_EINVAL,
             "rs: NULL hash");

    /* the old version becomes current again */
    t_eq_int(store_ruleset_put(s, "io.x", "h1", "1.0", "ruleset io.x {}"), 0,
             "rs: re-put v1");
    t_eq_int(store_ruleset_get(s, "io.x", &r), 0, "rs: get after re-put");
    t_eq_str(r.hash, "h1", "rs: v1 current again");
    store_ruleset_release(&r);

    t_eq_int(store_ruleset_list(s, &v), 0, "rs: list");
    t_eq_int(kval_array_len(&v), 2, "rs: list has current versions only");
    if (kval_array_len(&v) == 2) {
        const kval *m = kval_array_get(&v, 0);
        t_eq_str(kval_str_ptr(kval_map_get_str(m, "rid")), "a.b",
                 "rs: list by rid");
        t_eq_str(kval_str_ptr(kval_map_get_str(kval_array_get(&v, 1),
                                               "hash")),
                 "h1", "rs: list current hash");
        t_ok(kval_kind(kval_map_get_str(m, "registered")) == KV_NUMBER,
             "rs: list registered number");
    }
    kval_free(v);

    t_eq_int(store_ruleset_delete(s, "io.x"), 0, "rs: delete");
    t_eq_int(store_ruleset_get(s, "io.x", &r), STORE_NOTFOUND,
             "rs: deleted rid");
    t_eq_int(store_ruleset_get_hash(s, "h2", &r), STORE_NOTFOUND,
             "rs: all versions deleted");
    t_eq_int(store_ruleset_delete(s, "io.x"), STORE_NOTFOUND,
             "rs: delete again");
    /* inside a caller's transaction, a failed put is undone alone */
    t_eq_int(store_begin(s), 0, "rs: begin");
    t_eq_int(store_ruleset_put(s, "io.z", "hz", NULL, "z"), 0, "rs: put in tx");
    t_eq_int(store_ruleset_put(s, "io.q", "hz", NULL, "q"), STORE_EINVAL,
             "rs: bad put in tx");
    t_eq_int(store_commit(s), 0, "rs: commit");
    t_eq_int(store_ruleset_get(s, "io.z", &r), 0, "rs: good put kept");
    store_ruleset_release(&r);
}

/* ---- installs ---- */

static void
test_installs(struct store *s)
{
    kval v, cfg = J("{\"k\":[1,2],\"n\":null}");
    kval fn = kval_func_new(dummy_fn, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0);
    kval badcfg = kval_map_put_str(kval_map(), "f", kval_copy(&fn));

    t_eq_int(store_install_put(s, "root", "io.b", "hb", &cfg), 0, "inst: b");
    t_eq_int(store_install_put(s, "root", "io.a", "ha", NULL), 0, "inst: a");
    t_eq_int(store_install_put(s, "root", "io.c", "hc", NULL), 0, "inst: c");
    t_eq_int(store_install_put(s, "c0", "io.a", "ha", NULL), 0, "inst: c0 a");
    t_eq_int(store_install_put(s, "root", "io.b", "hb2", NULL), 0,
             "inst: reinstall b");
    t_eq_int(store_install_list(s, "root", &v), 0, "inst: list");
    check_json(&v,
               "[{\"rid\":\"io.b\",\"hash\":\"hb2\",\"config\":{}},"
               "{\"rid\":\"io.a\",\"hash\":\"ha\",\"config\":{}},"
               "{\"rid\":\"io.c\",\"hash\":\"hc\",\"config\":{}}]",
               "inst: install order kept on reinstall");
    kval_free(v);
    t_eq_int(store_install_put(s, "root", "io.a", "ha", &cfg), 0,
             "inst: config update");
    t_eq_int(store_install_list(s, "root", &v), 0, "inst: list again");
    if (kval_array_len(&v) == 3)
        check_json(kval_map_get_str(kval_array_get(&v, 1), "config"),
                   "{\"k\":[1,2],\"n\":null}", "inst: config round trip");
    kval_free(v);

    t_eq_int(store_install_put(s, "root", "io.d", "hd", &badcfg), STORE_EINVAL,
             "inst: function in config");
    t_eq_int(store_install_put(s, "root", "io.d", "hd", &fn), STORE_EINVAL,
             "inst: config not a map");
    t_eq_int(store_install_put(s, "ghost", "io.d", "hd", NULL), STORE_EINVAL,
             "inst: unknown pico");
    t_eq_int(store_install_put(s, "root", NULL, "hd", NULL), STORE_EINVAL,
             "inst: NULL rid");

    t_eq_int(store_install_users(s, "io.a", &v), 0, "inst: users");
    check_json(&v, "[\"c0\",\"root\"]", "inst: users sorted");
    kval_free(v);
    t_eq_int(store_install_users(s, "io.zz", &v), 0, "inst: no users");
    check_json(&v, "[]", "inst: no users empty");
    kval_free(v);

    t_eq_int(store_install_delete(s, "root", "io.a"), 0, "inst: delete");
    t_eq_int(store_install_delete(s, "root", "io.a"), STORE_NOTFOUND,
             "inst: delete again");
    t_eq_int(store_install_put(s, "root", "io.a", "ha", NULL), 0,
             "inst: install again");
    t_eq_int(store_install_list(s, "root", &v), 0, "inst: list after");
    check_json(&v,
               "[{\"rid\":\"io.b\",\"hash\":\"hb2\",\"config\":{}},"
               "{\"rid\":\"io.c\",\"hash\":\"hc\",\"config\":{}},"
               "{\"rid\":\"io.a\",\"hash\":\"ha\",\"config\":{}}]",
               "inst: reinstall after delete goes last");
    kval_free(v);
    t_eq_int(store_install_list(s, "nobody", &v), 0, "inst: list none");
    check_json(&v, "[]", "inst: empty list");
    kval_free(v);
    kval_free(cfg);
    kval_free(badcfg);
    kval_free(fn);
}

/* ---- entity variables ---- */

static void
test_entvars(struct store *s)
{
    static const struct {
        const char *in, *want;
    } t[] = {
        {"null", "null"},
        {"true", "true"},
        {"false", "false"},
        {"0", "0"},
        {"-0", "0"},
        {"0.1", "0.1"},
        {"1e21", "1e+21"},
        {"1e-7", "1e-7"},
        {"123456789012345680000", "123456789012345680000"},
        {"9007199254740993", "9007199254740992"},
        {"-1.5", "-1.5"},
        {"5e-324", "5e-324"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"\"\"", "\"\""},
        {"\"h\\u00e9llo \\u2603 \\ud83d\\ude00\"", "\"héllo ☃ 😀\""},
        {"\"tab\\t nl\\n q\\\" bs\\\\ nul\\u0000\"",
         "\"tab\\t nl\\n q\\\" bs\\\\ nul\\u0000\""},
        {"[]", "[]"},
        {"{}", "{}"},
        {"[1,null,\"x\",[[]],{}]", "[1,null,\"x\",[[]],{}]"},
        {"{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}},\"e\":true}",
         "{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}},\"e\":true}"},
        {"{\"b\":1,\"10\":2,\"a\":3,\"2\":4}",
         "{\"2\":4,\"10\":2,\"b\":1,\"a\":3}"},
        {"{\"ключ\":\"значение\",\"😀\":[0.5]}",
         "{\"ключ\":\"значение\",\"😀\":[0.5]}"},
    };
    char name[128];
    size_t i;
    kval v, got, fn, re, err, m;

    for (i = 0; i < N_(t); i++) {
        v = J(t[i].in);
        snprintf(name, sizeof name, "ent: put %s", t[i].in);
        t_eq_int(store_ent_put(s, "root", "io.v", "x", &v), 0, name);
        snprintf(name, sizeof name, "ent: get %s", t[i].in);
        t_eq_int(store_ent_get(s, "root", "io.v", "x", &got), 0, name);
        snprintf(name, sizeof name, "ent: round trip %s", t[i].in);
        check_json(&got, t[i].want, name);
        snprintf(name, sizeof name, "ent: equal after trip %s", t[i].in);
        t_ok(kval_equal(&v, &got), name);
        kval_free(v);
        kval_free(got);
    }

    /* a KRL null member is dropped (JSON.stringify drops undefined) */
    m = kval_map_put_str(kval_map(), "keep", kval_number(1));
    m = kval_map_put_str(m, "gone", kval_null());
    t_eq_int(store_ent_put(s, "root", "io.v", "m", &m), 0, "ent: put krl null");
    t_eq_int(store_ent_get(s, "root", "io.v", "m", &got), 0, "ent: get map");
    check_json(&got, "{\"keep\":1}", "ent: krl null member dropped");
    kval_free(got);
    kval_free(m);

    /* refused values leave the old value alone */
    fn = kval_func_new(dummy_fn, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0);
    re = kval_regexp("a+", 2, "g");
    err = kval_error("TypeError: nope");
    v = kval_array_append(kval_array(), kval_copy(&fn));
    t_eq_int(store_ent_put(s, "root", "io.v", "x", &fn), STORE_EINVAL,
             "ent: function refused");
    t_ok(store_errmsg(s)[0] != '\0', "ent: refusal message");
    t_eq_int(store_ent_put(s, "root", "io.v", "x", &re), STORE_EINVAL,
             "ent: regexp refused");
    t_eq_int(store_ent_put(s, "root", "io.v", "x", &err), STORE_EINVAL,
             "ent: error refused");
    t_eq_int(store_ent_put(s, "root", "io.v", "x", &v), STORE_EINVAL,
             "ent: nested function refused");
    kval_free(v);
    v = kval_str("a\xed\xa0\x80z", 5);  /* a lone surrogate (WTF-8) */
    t_eq_int(store_ent_put(s, "root", "io.v", "x", &v), STORE_EINVAL,
             "ent: lone surrogate refused");
    kval_free(v);
    v = kval_cstr("back\\slash \\ud800 text");
    t_eq_int(store_ent_put(s, "root", "io.v", "y", &v), 0,
             "ent: escaped backslash-u text is fine");
    t_eq_int(store_ent_get(s, "root", "io.v", "y", &got), 0, "ent: get it");
    t_ok(kval_equal(&v, &got), "ent: backslash text round trip");
    kval_free(v);
    kval_free(got);
    t_eq_int(store_ent_get(s, "root", "io.v", "x", &got), 0,
             "ent: value after refusals");
    check_json(&got, t[N_(t) - 1].want, "ent: old value intact");
    kval_free(got);
    kval_free(fn);
    kval_free(re);
    kval_free(err);

    t_eq_int(store_ent_get(s, "root", "io.v", "nope", &got), STORE_NOTFOUND,
             "ent: unknown name");
    t_ok(kval_is_null(&got), "ent: not found gives null");
    t_eq_int(store_ent_get(s, "root", "io.w", "x", &got), STORE_NOTFOUND,
             "ent: other rid");
    t_eq_int(store_ent_get(s, "c0", "io.v", "x", &got), STORE_NOTFOUND,
             "ent: other pico");
    v = kval_number(1);
    t_eq_int(store_ent_put(s, "ghost", "io.v", "x", &v), STORE_EINVAL,
             "ent: unknown pico");
    t_eq_int(store_ent_put(s, "root", NULL, "x", &v), STORE_EINVAL,
             "ent: NULL rid");
    t_eq_int(store_ent_put(s, "root", "io.v", "x", NULL), STORE_EINVAL,
             "ent: NULL value");
    t_eq_int(store_ent_put(s, "root", "io.w", "x", &v), 0, "ent: put io.w");
    t_eq_int(store_ent_put(s, "root", "io.v", "a", &v), 0, "ent: put a");

    t_eq_int(store_ent_list(s, "root", "io.v", &got), 0, "ent: list");
    t_eq_int(kval_map_len(&got), 4, "ent: list size");
    t_ok(kval_map_get_str(&got, "a") != NULL &&
             kval_map_get_str(&got, "m") != NULL &&
             kval_map_get_str(&got, "y") != NULL,
         "ent: list names");
    check_json(kval_map_get_str(&got, "m"), "{\"keep\":1}", "ent: list value");
    kval_free(got);
    t_eq_int(store_ent_list(s, "root", "io.none", &got), 0, "ent: list none");
    check_json(&got, "{}", "ent: empty list");
    kval_free(got);

    t_eq_int(store_ent_delete(s, "root", "io.v", "a"), 0, "ent: delete");
    t_eq_int(store_ent_delete(s, "root", "io.v", "a"), STORE_NOTFOUND,
             "ent: delete again");
    t_eq_int(store_ent_delete_rid(s, "root", "io.v"), 0, "ent: delete rid");
    t_eq_int(store_ent_list(s, "root", "io.v", &got), 0, "ent: list after");
    t_eq_int(kval_map_len(&got), 0, "ent: rid emptied");
    kval_free(got);
    t_eq_int(store_ent_get(s, "root", "io.w", "x", &got), 0,
             "ent: other rid untouched");
    kval_free(got);
    t_eq_int(store_ent_delete_rid(s, "root", "io.v"), 0,
             "ent: delete empty rid is fine");
}

/* ---- event-expression state ---- */

static void
test_ee(struct store *s)
{
    kval st = J("{\"state\":\"s1\",\"counts\":[1,2],\"t\":[1700000000000]}");
    kval got, fn;

    t_eq_int(store_ee_put(s, "root", "io.a", "r1", "hA", &st), 0, "ee: put");
    t_eq_int(store_ee_get(s, "root", "io.a", "r1", "hA", &got), 0, "ee: get");
    t_ok(kval_equal(&st, &got), "ee: round trip");
    kval_free(got);
    t_eq_int(store_ee_get(s, "root", "io.a", "r1", "hB", &got), STORE_NOTFOUND,
             "ee: other hash is not found");
    t_eq_int(store_ee_get(s, "root", "io.a", "r2", "hA", &got), STORE_NOTFOUND,
             "ee: other rule");
    t_eq_int(store_ee_put(s, "root", "io.a", "r1", "hB", &st), 0,
             "ee: put new version");
    t_eq_int(store_ee_get(s, "root", "io.a", "r1", "hA", &got), STORE_NOTFOUND,
             "ee: old version gone");
    t_eq_int(store_ee_get(s, "root", "io.a", "r1", "hB", &got), 0,
             "ee: new version");
    kval_free(got);
    t_eq_int(store_ee_put(s, "root", "io.a", "r2", "hB", &st), 0, "ee: r2");
    t_eq_int(store_ee_put(s, "root", "io.b", "r1", "hX", &st), 0, "ee: io.b");
    fn = kval_func_new(dummy_fn, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0);
    t_eq_int(store_ee_put(s, "root", "io.a", "r1", "hB", &fn), STORE_EINVAL,
             "ee: function refused");
    kval_free(fn);
    t_eq_int(store_ee_put(s, "root", "io.a", "r1", NULL, &st), STORE_EINVAL,
             "ee: NULL hash");
    t_eq_int(store_ee_delete_rid(s, "root", "io.a"), 0, "ee: delete rid");
    t_eq_int(store_ee_get(s, "root", "io.a", "r2", "hB", &got), STORE_NOTFOUND,
             "ee: rid deleted");
    t_eq_int(store_ee_get(s, "root", "io.b", "r1", "hX", &got), 0,
             "ee: other rid kept");
    kval_free(got);
    kval_free(st);
}

/* ---- schedules ---- */

static int
sched_put(struct store *s, const char *id, const char *pico, const char *rid,
          const char *type, int64_t at, const char *spec)
{
    struct store_schedule sc;
    int rc;

    memset(&sc, 0, sizeof sc);
    sc.id = (char *)id;
    sc.pico_id = (char *)pico;
    sc.rid = (char *)rid;
    sc.type = (char *)type;
    sc.at_ms = at;
    sc.timespec = (char *)spec;
    sc.event = J("{\"eci\":\"e1\",\"domain\":\"d\",\"name\":\"n\","
                 "\"attrs\":{\"k\":\"v\"}}");
    rc = store_schedule_put(s, &sc);
    kval_free(sc.event);
    return rc;
}

static void
test_schedules(struct store *s)
{
    struct store_schedule sc;
    kval v;

    t_eq_int(store_schedule_next_due(s, &sc), STORE_NOTFOUND,
             "sched: none due");
    t_eq_int(sched_put(s, "s3", "root", "io.a", "at", 3000, NULL), 0,
             "sched: s3");
    t_eq_int(sched_put(s, "s1", "root", "io.a", "at", 5000, NULL), 0,
             "sched: s1");
    t_eq_int(sched_put(s, "s2", "root", "io.b", "repeat", 2000, "* * * * *"),
             0, "sched: s2 repeat");
    t_eq_int(sched_put(s, "s4", "c0", "io.a", "at", 4000, NULL), 0,
             "sched: s4");
    t_eq_int(store_schedule_next_due(s, &sc), 0, "sched: next due");
    t_eq_str(sc.id, "s2", "sched: smallest at_ms first");
    t_eq_str(sc.type, "repeat", "sched: type");
    t_eq_str(sc.timespec, "* * * * *", "sched: timespec");
    t_eq_str(sc.pico_id, "root", "sched: pico");
    t_eq_str(sc.rid, "io.b", "sched: rid");
    t_eq_int(sc.at_ms, 2000, "sched: at_ms");
    check_json(&sc.event,
               "{\"eci\":\"e1\",\"domain\":\"d\",\"name\":\"n\","
               "\"attrs\":{\"k\":\"v\"}}",
               "sched: event");
    store_schedule_release(&sc);
    /* a repeat moves to its next firing */
    t_eq_int(sched_put(s, "s2", "root", "io.b", "repeat", 9000, "* * * * *"),
             0, "sched: update s2");
    t_eq_int(store_schedule_next_due(s, &sc), 0, "sched: next due again");
    t_eq_str(sc.id, "s3", "sched: next after update");
    t_ok(sc.timespec == NULL, "sched: at has no timespec");
    store_schedule_release(&sc);

    t_eq_int(store_schedule_list(s, "root", "io.a", &v), 0, "sched: list rid");
    check_json(&v,
               "[{\"id\":\"s3\",\"type\":\"at\",\"time\":3000,\"event\":"
               "{\"eci\":\"e1\",\"domain\":\"d\",\"name\":\"n\","
               "\"attrs\":{\"k\":\"v\"}}},"
               "{\"id\":\"s1\",\"type\":\"at\",\"time\":5000,\"event\":"
               "{\"eci\":\"e1\",\"domain\":\"d\",\"name\":\"n\","
               "\"attrs\":{\"k\":\"v\"}}}]",
               "sched: list of (pico, rid) by time");
    kval_free(v);
    t_eq_int(store_schedule_list(s, "root", NULL, &v), 0, "sched: list pico");
    t_eq_int(kval_array_len(&v), 3, "sched: list every rid");
    if (kval_array_len(&v) == 3)
        t_eq_str(kval_str_ptr(kval_map_get_str(kval_array_get(&v, 2),
                                               "timespec")),
                 "* * * * *", "sched: repeat lists its timespec");
    kval_free(v);

    t_eq_int(sched_put(s, "s5", "root", "io.a", "every", 1, NULL),
             STORE_EINVAL, "sched: bad type");
    t_eq_int(sched_put(s, "s5", "root", "io.a", "repeat", 1, NULL),
             STORE_EINVAL, "sched: repeat without timespec");
    t_eq_int(sched_put(s, "s5", "root", "io.a", "at", 1, "* * * * *"),
             STORE_EINVAL, "sched: at with timespec");
    t_eq_int(sched_put(s, "s5", "ghost", "io.a", "at", 1, NULL), STORE_EINVAL,
             "sched: unknown pico");
    t_eq_int(sched_put(s, NULL, "root", "io.a", "at", 1, NULL), STORE_EINVAL,
             "sched: NULL id");

    t_eq_int(store_schedule_delete(s, "s3"), 0, "sched: delete");
    t_eq_int(store_schedule_delete(s, "s3"), STORE_NOTFOUND,
             "sched: delete again");
    t_eq_int(store_schedule_next_due(s, &sc), 0, "sched: next after delete");
    t_eq_str(sc.id, "s4", "sched: next is another pico's");
    store_schedule_release(&sc);
}

/* ---- event log ---- */

static void
test_log(struct store *s)
{
    struct store_log_entry e;
    kval attrs = J("{\"a\":[1,\"ü\"]}"), res = J("[{\"name\":\"d\"}]");
    kval fn, v;
    char eid[32];
    int i;

    t_eq_int(store_log_list(s, NULL, 10, &v), 0, "log: empty");
    check_json(&v, "[]", "log: empty list");
    kval_free(v);
    for (i = 0; i < 6; i++) {
        memset(&e, 0, sizeof e);
        snprintf(eid, sizeof eid, "eid%d", i);
        e.eid = eid;
        e.pico_id = i % 2 ? "root" : "c0";
        e.time_ms = 1000 + i * 10;
        e.kind = i == 5 ? "query" : "event";
        e.domain = "email";
        e.name = "received";
        e.attrs = i == 4 ? &attrs : NULL;
        e.result = i == 4 ? &res : NULL;
        e.error = i == 2 ? "TypeError: x" : NULL;
        t_eq_int(store_log_add(s, &e), 0, "log: add");
    }
    /* logged last, with an older time: the log's order is the order
       entries were logged */
    e.eid = "eid6";
    e.pico_id = "c0";
    e.time_ms = 1040;
    e.kind = "event";
    e.attrs = NULL;
    e.result = NULL;
    e.error = NULL;
    t_eq_int(store_log_add(s, &e), 0, "log: add same time");

    t_eq_int(store_log_list(s, NULL, 3, &v), 0, "log: list all");
    t_eq_int(kval_array_len(&v), 3, "log: limit");
    if (kval_array_len(&v) == 3) {
        t_eq_str(kval_str_ptr(kval_map_get_str(kval_array_get(&v, 0), "eid")),
                 "eid6", "log: last logged first");
        t_eq_str(kval_str_ptr(kval_map_get_str(kval_array_get(&v, 1), "eid")),
                 "eid5", "log: then the one before");
        check_json(kval_array_get(&v, 2),
                   "{\"eid\":\"eid4\",\"pico_id\":\"c0\",\"time\":1040,"
                   "\"kind\":\"event\",\"domain\":\"email\","
                   "\"name\":\"received\",\"attrs\":{\"a\":[1,\"ü\"]},"
                   "\"result\":[{\"name\":\"d\"}]}",
                   "log: entry map");
    }
    kval_free(v);
    t_eq_int(store_log_list(s, "c0", 100, &v), 0, "log: list pico");
    t_eq_int(kval_array_len(&v), 4, "log: pico entries only");
    if (kval_array_len(&v) == 4) {
        t_eq_str(kval_str_ptr(kval_map_get_str(kval_array_get(&v, 3), "eid")),
                 "eid0", "log: oldest last");
        t_eq_str(kval_str_ptr(kval_map_get_str(kval_array_get(&v, 2),
                                               "error")),
                 "TypeError: x", "log: error kept");
    }
    kval_free(v);
    t_eq_int(store_log_list(s, "c0", 0, &v), 0, "log: limit 0");
    t_eq_int(kval_array_len(&v), 0, "log: limit 0 is empty");
    kval_free(v);
    t_eq_int(store_log_list(s, "c0", -1, &v), STORE_EINVAL, "log: bad limit");

    memset(&e, 0, sizeof e);
    e.eid = "x";
    e.pico_id = "root";
    e.kind = "rumour";
    t_eq_int(store_log_add(s, &e), STORE_EINVAL, "log: bad kind");
    e.kind = "event";
    fn = kval_func_new(dummy_fn, NULL, NULL, KV_FN_FUNCTION, "f", NULL, 0);
    e.result = &fn;
    t_eq_int(store_log_add(s, &e), STORE_EINVAL, "log: function result");
    kval_free(fn);
    e.result = NULL;
    e.eid = NULL;
    t_eq_int(store_log_add(s, &e), STORE_EINVAL, "log: NULL eid");
    kval_free(attrs);
    kval_free(res);
}

/* ---- pico delete cascades ---- */

static void
test_cascade(struct store *s)
{
    struct store_channel c;
    struct store_pico p;
    kval v = kval_number(7), got;

    t_eq_int(store_pico_new(s, "doomed", "root", NULL), 0, "cascade: new");
    t_eq_int(store_pico_new(s, "keeper", "root", NULL), 0, "cascade: keeper");
    fill_channel(&c, "DOOM1", "doomed", "doom@x.org");
    t_eq_int(store_channel_put(s, &c), 0, "cascade: channel");
    fill_channel(&c, "KEEP1", "keeper", NULL);
    t_eq_int(store_channel_put(s, &c), 0, "cascade: keeper channel");
    t_eq_int(store_install_put(s, "doomed", "io.a", "ha", NULL), 0,
             "cascade: install");
    t_eq_int(store_install_put(s, "keeper", "io.a", "ha", NULL), 0,
             "cascade: keeper install");
    t_eq_int(store_ent_put(s, "doomed", "io.a", "x", &v), 0, "cascade: ent");
    t_eq_int(store_ent_put(s, "keeper", "io.a", "x", &v), 0,
             "cascade: keeper ent");
    t_eq_int(store_ee_put(s, "doomed", "io.a", "r", "ha", &v), 0,
             "cascade: ee");
    t_eq_int(sched_put(s, "sd", "doomed", "io.a", "at", 1, NULL), 0,
             "cascade: schedule");

    /* inside a transaction that is rolled back, nothing happens */
    t_eq_int(store_begin(s), 0, "cascade: begin");
    t_eq_int(store_pico_delete(s, "doomed"), 0, "cascade: delete in tx");
    t_eq_int(store_channel_get(s, "doom1", &c), STORE_NOTFOUND,
             "cascade: gone inside tx");
    t_eq_int(store_rollback(s), 0, "cascade: rollback");
    t_eq_int(store_channel_get(s, "doom1", &c), 0,
             "cascade: channel back after rollback");
    store_channel_release(&c);

    t_eq_int(store_pico_delete(s, "doomed"), 0, "cascade: delete");
    t_eq_int(store_pico_get(s, "doomed", &p), STORE_NOTFOUND,
             "cascade: pico gone");
    t_eq_int(store_channel_get(s, "doom1", &c), STORE_NOTFOUND,
             "cascade: channel gone");
    t_eq_int(store_channel_get_by_alias(s, "doom@x.org", &c), STORE_NOTFOUND,
             "cascade: alias gone");
    t_eq_int(store_install_list(s, "doomed", &got), 0, "cascade: installs");
    t_eq_int(kval_array_len(&got), 0, "cascade: installs gone");
    kval_free(got);
    t_eq_int(store_ent_get(s, "doomed", "io.a", "x", &got), STORE_NOTFOUND,
             "cascade: ent gone");
    t_eq_int(store_ee_get(s, "doomed", "io.a", "r", "ha", &got),
             STORE_NOTFOUND, "cascade: ee gone");
    t_eq_int(store_schedule_list(s, "doomed", NULL, &got), 0,
             "cascade: schedules");
    t_eq_int(kval_array_len(&got), 0, "cascade: schedules gone");
    kval_free(got);
    t_eq_int(store_schedule_delete(s, "sd"), STORE_NOTFOUND,
             "cascade: schedule row gone");
    t_eq_int(store_install_users(s, "io.a", &got), 0, "cascade: users");
    check_json(&got, "[\"c0\",\"keeper\",\"root\"]",
               "cascade: the deleted pico no longer uses io.a");
    kval_free(got);
    t_eq_int(store_channel_get(s, "keep1", &c), 0, "cascade: keeper intact");
    store_channel_release(&c);
    t_eq_int(store_ent_get(s, "keeper", "io.a", "x", &got), 0,
             "cascade: keeper ent intact");
    kval_free(got);
}

/* ---- transactions ---- */

static void
test_tx(struct store *s)
{
    kval v = kval_cstr("tx"), got;

    t_eq_int(store_commit(s), STORE_EINVAL, "tx: commit without begin");
    t_eq_int(store_rollback(s), 0, "tx: rollback without begin is harmless");
    t_eq_int(store_begin(s), 0, "tx: begin");
    t_eq_int(store_begin(s), STORE_EINVAL, "tx: nested begin refused");
    t_eq_int(store_ent_put(s, "root", "io.t", "a", &v), 0, "tx: put");
    t_eq_int(store_pico_new(s, "txp", NULL, NULL), 0, "tx: new pico");
    t_eq_int(store_ent_get(s, "root", "io.t", "a", &got), 0,
             "tx: visible inside");
    kval_free(got);
    t_eq_int(store_rollback(s), 0, "tx: rollback");
    t_eq_int(store_ent_get(s, "root", "io.t", "a", &got), STORE_NOTFOUND,
             "tx: rollback discards the variable");
    t_eq_int(store_pico_get(s, "txp", &(struct store_pico){0}),
             STORE_NOTFOUND, "tx: rollback discards the pico");

    t_eq_int(store_begin(s), 0, "tx: begin 2");
    t_eq_int(store_ent_put(s, "root", "io.t", "a", &v), 0, "tx: put 2");
    /* a failed call inside the transaction does not end it */
    t_eq_int(store_pico_new(s, "root", NULL, NULL), STORE_EINVAL,
             "tx: failing call inside");
    t_eq_int(store_ent_put(s, "root", "io.t", "b", &v), 0, "tx: put after");
    t_eq_int(store_commit(s), 0, "tx: commit");
    t_eq_int(store_ent_get(s, "root", "io.t", "a", &got), 0, "tx: committed a");
    kval_free(got);
    t_eq_int(store_ent_get(s, "root", "io.t", "b", &got), 0, "tx: committed b");
    kval_free(got);
    kval_free(v);
}

static void
test_two_connections(void)
{
    char *p = db_path("two.db");
    struct store *a = open_ok(p, 0), *b = open_ok(p, 0);
    kval v = kval_number(42), got;
    char *m = NULL;

    t_ok(a != NULL && b != NULL, "two: both open");
    if (a == NULL || b == NULL)
        goto out;
    t_eq_int(store_pico_new(a, "p", NULL, NULL), 0, "two: A writes");
    t_eq_int(store_pico_count(b), 1, "two: B sees A's autocommit write");
    t_eq_int(store_begin(a), 0, "two: A begins");
    t_eq_int(store_ent_put(a, "p", "r", "x", &v), 0, "two: A writes in tx");
    t_eq_int(store_meta_put(a, "k", "v"), 0, "two: A meta in tx");
    t_eq_int(store_ent_get(b, "p", "r", "x", &got), STORE_NOTFOUND,
             "two: B does not see uncommitted");
    t_eq_int(store_meta_get(b, "k", &m), STORE_NOTFOUND,
             "two: B reads while A writes (WAL)");
    t_eq_int(store_commit(a), 0, "two: A commits");
    t_eq_int(store_ent_get(b, "p", "r", "x", &got), 0, "two: B sees commit");
    check_json(&got, "42", "two: B reads the value");
    kval_free(got);
    t_eq_int(store_ent_put(b, "p", "r", "x", &v), 0, "two: B writes");
    t_eq_int(store_ent_get(a, "p", "r", "x", &got), 0, "two: A sees B");
    kval_free(got);
out:
    store_close(a);
    store_close(b);
    rm_db(p);
    free(p);
    kval_free(v);
}

static void
test_busy(void)
{
    char *p = db_path("busy.db");
    struct store *a = open_ok(p, 0), *b = open_ok(p, 50), *c;
    kval v = kval_number(1), got;

    t_ok(a != NULL && b != NULL, "busy: both open");
    if (a == NULL || b == NULL)
        goto out;
    t_eq_int(store_pico_new(a, "p", NULL, NULL), 0, "busy: setup");
    t_eq_int(store_begin(a), 0, "busy: A holds BEGIN IMMEDIATE");
    t_eq_int(store_begin(b), STORE_BUSY, "busy: B begin is BUSY");
    c = open_ok(p, 50);
    t_ok(c != NULL, "busy: a third connection opens while A writes");
    t_eq_int(store_pico_count(c), 1, "busy: and reads");
    c = store_close(c);
    t_ok(strstr(store_errmsg(b), "lock") != NULL, "busy: message");
    t_eq_int(store_ent_put(b, "p", "r", "x", &v), STORE_BUSY,
             "busy: B autocommit write is BUSY");
    t_eq_int(store_ruleset_put(b, "r", "h", NULL, "src"), STORE_BUSY,
             "busy: B multi-statement write is BUSY");
    t_eq_int(store_pico_count(b), 1, "busy: B can still read");
    t_eq_int(store_commit(a), 0, "busy: A commits");
    t_eq_int(store_begin(b), 0, "busy: B begins after");
    t_eq_int(store_ent_put(b, "p", "r", "x", &v), 0, "busy: B writes");
    t_eq_int(store_commit(b), 0, "busy: B commits");
    t_eq_int(store_ent_get(a, "p", "r", "x", &got), 0, "busy: A sees it");
    kval_free(got);
out:
    store_close(a);
    store_close(b);
    rm_db(p);
    free(p);
}

/* several processes open a new file at once: one migrates, all work */
static void
test_concurrent_open(void)
{
    enum { N_PROC = 6 };
    char *p = db_path("race.db");
    pid_t pid[N_PROC];
    struct store *s;
    int i, status, ok = 0;

    for (i = 0; i < N_PROC; i++) {
        pid[i] = fork();
        if (pid[i] == 0) {
            char id[16];
            int rc;

            s = open_ok(p, 10000);
            snprintf(id, sizeof id, "p%d", i);
            rc = s != NULL ? store_pico_new(s, id, NULL, NULL) : -1;
            if (rc != 0 && s != NULL)
                printf("# child %d: %s\n", i, store_errmsg(s));
            store_close(s);
            free(p);    /* the child's copy: leak checkers look at it too */
            fflush(stdout);     /* _exit does not flush what it printed */
            _exit(rc == 0 ? 0 : 1);
        }
    }
    for (i = 0; i < N_PROC; i++)
        if (pid[i] > 0 && waitpid(pid[i], &status, 0) == pid[i] &&
            WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ok++;
    t_eq_int(ok, N_PROC, "race: every process opened and wrote");
    s = open_ok(p, 0);
    t_eq_int(store_pico_count(s), N_PROC, "race: every write landed");
    store_close(s);
    t_eq_int(read_user_version(p), 4, "race: schema version 4");
    rm_db(p);
    free(p);
}

/* open must not load the picos: build 100,000, reopen, look one up */
static void
test_scale(void)
{
    enum { N_PICOS = 100000 };
    char *p = db_path("scale.db");
    struct store *s = open_ok(p, 0);
    struct store_channel c;
    char id[32], eci[32];
    kval v;
    int i, rc = 0;

    t_ok(s != NULL, "scale: open");
    if (s == NULL)
        goto out;
    t_eq_int(store_begin(s), 0, "scale: begin");
    for (i = 0; i < N_PICOS && rc == 0; i++) {
        snprintf(id, sizeof id, "cpico%07d", i);
        snprintf(eci, sizeof eci, "ECI%07dX", i);
        fill_channel(&c, eci, id, NULL);
        v = kval_number(i);
        rc = store_pico_new(s, id, NULL, NULL);
        if (rc == 0)
            rc = store_channel_put(s, &c);
        if (rc == 0)
            rc = store_ent_put(s, id, "io.n", "n", &v);
    }
    t_eq_int(rc, 0, "scale: 100,000 picos written");
    t_eq_int(store_commit(s), 0, "scale: commit");
    s = store_close(s);

    s = open_ok(p, 0);
    t_ok(s != NULL, "scale: reopen");
    if (s == NULL)
        goto out;
    t_eq_int(store_channel_get(s, "eci0076543x", &c), 0, "scale: lookup");
    t_eq_str(c.pico_id, "cpico0076543", "scale: channel's pico");
    store_channel_release(&c);
    t_eq_int(store_ent_get(s, "cpico0076543", "io.n", "n", &v), 0,
             "scale: entity variable");
    check_json(&v, "76543", "scale: entity value");
    kval_free(v);
    t_eq_int(store_pico_count(s), N_PICOS, "scale: count");
out:
    store_close(s);
    rm_db(p);
    free(p);
}

int
main(void)
{
    char *p;
    struct store *s;

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_open();

    p = db_path("main.db");
    s = store_open(p, NULL, NULL, 0);   /* defaults: FULL, 5000 ms */
    t_ok(s != NULL, "main store opens");
    if (s != NULL) {
        test_meta(s);
        test_picos(s);
        test_channels(s);
        test_rulesets(s);
        test_installs(s);
        test_entvars(s);
        test_ee(s);
        test_schedules(s);
        test_log(s);
        test_cascade(s);
        test_tx(s);
    }
    store_close(s);
    rm_db(p);
    free(p);

    test_two_connections();
    test_busy();
    test_concurrent_open();
    test_scale();
    rmdir(tmpdir);
    return tap_done();
}
