/*
 * engine_host.c - the KRL host of the pico engine: what `domain:name`
 * means while a pico runs an event or a query (krl-language.md §7), and
 * the effects of postlude statements.
 *
 * ent:      entity variables of (pico, running ruleset), read and written
 *           through the store inside the event's transaction
 * event:    the current event (null in queries and in module code)
 * meta:     eci, picoId, rid, ruleName, inEvent, inQuery, txnId, ...
 * ctx:      the pico's place in the world: picos, channels, rulesets,
 *           queries and events to other picos
 * schedule: the pico's scheduled events of the running ruleset
 * time: math: random: the stateless modules (modules.h)
 * ALIAS:    what a module used with `use module R alias ALIAS` provides
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/builtin.h"
#include "picomail/cron.h"
#include "picomail/ids.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/modules.h"
#include "picomail/ops.h"
#include "picomail/policy.h"

#include "engine_internal.h"

static struct txn *
txn_of(struct krl_vm *vm)
{
    return krl_vm_host_ctx(vm);
}

static const char *
running_rid(struct txn *t, struct krl_vm *vm)
{
    const char *rid = vm != NULL ? krl_vm_current_rid(vm) : NULL;
    return rid != NULL ? rid : t->cur_rid;
}

static struct inst_ref *
installed(struct txn *t, const char *rid)
{
    for (size_t i = 0; i < t->n_installs; i++)
        if (strcmp(t->installs[i].rid, rid) == 0)
            return &t->installs[i];
    return NULL;
}

static kval
str_arg(const kval *args, size_t n, size_t i, const char *fn,
        const char *what)
{
    const kval *v = builtin_arg(args, n, i);
    if (kval_kind(v) != KV_STRING)
        return kval_error("TypeError: %s needs %s as a string", fn, what);
    return kval_copy(v);
}

/* ------------------------------------------------------------------ */
/* ent:                                                                */

static struct ent_seen *
ent_seen(struct txn *t, const char *rid, const char *name)
{
    for (size_t i = 0; i < t->n_seen; i++)
        if (strcmp(t->seen[i].name, name) == 0 &&
            strcmp(t->seen[i].rid, rid) == 0)
            return &t->seen[i];
    return NULL;
}

/* remember - V (borrowed) as the current value of (RID, NAME) */
static void
remember(struct txn *t, const char *rid, const char *name, const kval *v)
{
    struct ent_seen *s = ent_seen(t, rid, name);
    if (s == NULL) {
        if (t->n_seen == TXN_ENT_SEEN)
            return;             /* a busy event: read the rest from the store */
        s = &t->seen[t->n_seen++];
        s->rid = xstrdup(rid);
        s->name = xstrdup(name);
        s->value = kval_null();
    }
    kval_free(s->value);
    s->value = kval_copy(v);
}

static kval
ent_read(struct txn *t, const char *rid, const char *name)
{
    struct ent_seen *s = ent_seen(t, rid, name);
    if (s != NULL)
        return kval_copy(&s->value);
    kval v;
    int rc = engine_ent_get(t->e, t->pico_id, rid, name, &v);
    if (rc == STORE_NOTFOUND)
        v = kval_null();
    else if (rc != STORE_OK)
        return engine_store_error(t->e, rc);
    remember(t, rid, name, &v);
    return v;
}

static kval
ent_write(struct txn *t, const char *rid, const char *name, const kval *v)
{
    int rc = engine_ent_put(t->e, t->pico_id, rid, name, v);
    if (rc == STORE_EINVAL)
        return kval_error("TypeError: ent:%s cannot hold a %s", name,
                          kval_typeof(v));
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return engine_store_error(t->e, rc);
    remember(t, rid, name, v);
    return kval_null();
}

static kval
host_ent_set(void *ctx, const char *name, const kval *path, const kval *value)
{
    struct txn *t = ctx;
    const char *rid = running_rid(t, t->vm);
    if (path == NULL)
        return ent_write(t, rid, name, value);
    kval old = ent_read(t, rid, name);
    if (kval_is_error(&old))
        return old;
    kval args[3] = {kval_is_null(&old) ? kval_map() : old, kval_copy(path),
                    kval_copy(value)};
    const struct krl_builtin *set = builtin_lookup("set");
    kval updated = set->fn(t->vm, NULL, args, 3);
    for (int i = 0; i < 3; i++)
        kval_free(args[i]);
    if (kval_is_error(&updated))
        return updated;
    kval r = ent_write(t, rid, name, &updated);
    kval_free(updated);
    return r;
}

static kval
host_ent_clear(void *ctx, const char *name, const kval *path)
{
    struct txn *t = ctx;
    const char *rid = running_rid(t, t->vm);
    kval none = kval_null();
    if (path == NULL)
        return ent_write(t, rid, name, &none);
    kval old = ent_read(t, rid, name);
    if (kval_is_error(&old) || kval_is_null(&old))
        return old;
    kval args[2] = {old, kval_copy(path)};
    const struct krl_builtin *del = builtin_lookup("delete");
    kval updated = del->fn(t->vm, NULL, args, 2);
    kval_free(args[0]);
    kval_free(args[1]);
    if (kval_is_error(&updated))
        return updated;
    kval r = ent_write(t, rid, name, &updated);
    kval_free(updated);
    return r;
}

/* ------------------------------------------------------------------ */
/* raise, schedule, log, error                                         */

static kval
host_raise(void *ctx, const char *domain, const char *type, const kval *attrs,
           const kval *for_rid)
{
    struct txn *t = ctx;
    if (!kval_is_null(attrs) && kval_kind(attrs) != KV_MAP)
        return kval_error("TypeError: raise attributes must be a map");
    /* `for RID` sends the event to that ruleset alone (the reference's
       1.x compiler ignores it, a known bug) */
    const char *only = NULL;
    if (for_rid != NULL && kval_kind(for_rid) == KV_STRING)
        only = kval_str_ptr(for_rid);
    engine_schedule_event(t, domain, type, attrs, only, engine_now_ms());
    return kval_null();
}

/* time_ms_of - epoch ms from a number or an ISO 8601 date string */
static bool
time_ms_of(const kval *v, int64_t *ms)
{
    if (kval_kind(v) == KV_NUMBER) {
        *ms = (int64_t)kval_get_number(v);
        return true;
    }
    if (kval_kind(v) != KV_STRING)
        return false;
    const struct krl_module_entry *tn = module_lookup("time", "new");
    if (tn == NULL)
        return false;
    kval iso = tn->fn(NULL, NULL, v, 1);
    bool ok = false;
    /* time:new gives "YYYY-MM-DDTHH:MM:SS.sssZ" */
    if (kval_kind(&iso) == KV_STRING && kval_str_bytes(&iso) >= 19) {
        const char *p = kval_str_ptr(&iso);
        static const int at[] = {0, 5, 8, 11, 14, 17};
        static const int len[] = {4, 2, 2, 2, 2, 2};
        int f[6];
        ok = true;
        for (int i = 0; i < 6 && ok; i++) {
            f[i] = 0;
            for (int j = 0; j < len[i]; j++) {
                char c = p[at[i] + j];
                if (c < '0' || c > '9')
                    ok = false;
                f[i] = f[i] * 10 + (c - '0');
            }
        }
        if (ok) {
            struct tm tm;
            memset(&tm, 0, sizeof tm);
            tm.tm_year = f[0] - 1900;
            tm.tm_mon = f[1] - 1;
            tm.tm_mday = f[2];
            tm.tm_hour = f[3];
            tm.tm_min = f[4];
            tm.tm_sec = f[5];
            int msec = p[19] == '.' ? (int)strtol(p + 20, NULL, 10) : 0;
            *ms = (int64_t)timegm(&tm) * 1000 + msec;
        }
    }
    kval_free(iso);
    return ok;
}

static kval
host_schedule(void *ctx, const char *domain, const char *type, const kval *at,
              const kval *timespec, const kval *attrs)
{
    struct txn *t = ctx;
    char id[ID_BUFSIZE];
    id_new(id);
    kval event = kval_map();
    event = kval_map_put_str(event, "eci", kval_cstr(t->eci));
    event = kval_map_put_str(event, "domain", kval_cstr(domain));
    event = kval_map_put_str(event, "name", kval_cstr(type));
    event = kval_map_put_str(event, "attrs", kval_kind(attrs) == KV_MAP
                                                 ? kval_copy(attrs)
                                                 : kval_map());
    struct store_schedule sc = {
        .id = id,
        .pico_id = t->pico_id,
        .rid = (char *)running_rid(t, t->vm),
        .event = event,
    };
    kval entry = kval_map_put_str(kval_map(), "id", kval_cstr(id));
    kval spec = kval_null();
    if (!kval_is_null(at)) {
        int64_t ms;
        if (!time_ms_of(at, &ms)) {
            kval_free(event);
            kval_free(entry);
            return kval_error("TypeError: schedule at needs a time");
        }
        sc.type = "at";
        sc.at_ms = ms;
        entry = kval_map_put_str(entry, "type", kval_cstr("at"));
        entry = kval_map_put_str(entry, "time", kval_number((double)ms));
    } else {
        spec = op_to_string(timespec);
        sc.type = "repeat";
        sc.timespec = (char *)kval_str_ptr(&spec);
        /* the first firing (UTC, cron.h); the scheduler moves the row
           on each time it fires */
        struct cron cron;
        char why[CRON_ERR_SIZE];
        bool ok = cron_parse(sc.timespec, &cron, why, sizeof why) == 0;
        if (ok && (sc.at_ms = cron_next(&cron, engine_now_ms())) < 0) {
            snprintf(why, sizeof why, "bad cron \"%.64s\": no firing after "
                     "now", sc.timespec);
            ok = false;
        }
        if (!ok) {
            kval err = kval_error("Error: %s", why);
            kval_free(event);
            kval_free(entry);
            kval_free(spec);
            return err;
        }
        entry = kval_map_put_str(entry, "type", kval_cstr("repeat"));
        entry = kval_map_put_str(entry, "timespec", kval_copy(&spec));
    }
    entry = kval_map_put_str(entry, "event", kval_copy(&event));
    int rc = store_schedule_put(t->e->st, &sc);
    kval_free(event);
    kval_free(spec);
    if (rc != STORE_OK) {
        kval_free(entry);
        return engine_store_error(t->e, rc);
    }
    return entry;
}

static void
host_log(void *ctx, const char *level, const kval *message)
{
    struct txn *t = ctx;
    kval s = op_to_string(message);
    fprintf(stderr, "picomail: log %s pico=%s rid=%s: %s\n", level,
            t->pico_id, t->cur_rid ? t->cur_rid : "-", kval_str_ptr(&s));
    kval_free(s);
}

static kval
host_error(void *ctx, const char *level, const kval *message,
           const char *rule_name)
{
    struct txn *t = ctx;
    if (strcmp(level, "error") == 0) {
        /* error error clears the pending schedule */
        for (size_t i = t->head; i < t->n; i++)
            kval_free(t->sched[i].event);
        t->head = t->n = 0;
    }
    kval attrs = kval_map();
    attrs = kval_map_put_str(attrs, "level", kval_cstr(level));
    attrs = kval_map_put_str(attrs, "data", kval_copy(message));
    attrs = kval_map_put_str(attrs, "rid", kval_cstr(t->cur_rid));
    attrs = kval_map_put_str(attrs, "rule_name", kval_cstr(rule_name));
    attrs = kval_map_put_str(attrs, "genus", kval_cstr("user"));
    engine_schedule_event(t, "system", "error", &attrs, t->cur_rid,
                          engine_now_ms());
    kval_free(attrs);
    return kval_null();
}

/* ------------------------------------------------------------------ */
/* event:, meta:                                                       */

static kval
event_get(struct txn *t, struct krl_vm *vm, const char *name)
{
    /* module code and queries have no current event */
    if (t->event == NULL || strcmp(running_rid(t, vm), t->cur_rid) != 0)
        return kval_null();
    if (strcmp(name, "eci") == 0)
        return kval_cstr(t->eci);
    if (strcmp(name, "eid") == 0)
        return kval_cstr(t->eid);
    if (strcmp(name, "domain") == 0 || strcmp(name, "name") == 0 ||
        strcmp(name, "attrs") == 0 || strcmp(name, "time") == 0) {
        const kval *v = kval_map_get_str(t->event, name);
        return v ? kval_copy(v) : kval_null();
    }
    return kval_error("Error: event:%s is not defined", name);
}

static kval
meta_get(struct txn *t, struct krl_vm *vm, const char *name)
{
    const char *rid = running_rid(t, vm);
    if (strcmp(name, "eci") == 0)
        return kval_cstr(t->eci);
    if (strcmp(name, "picoId") == 0)
        return kval_cstr(t->pico_id);
    if (strcmp(name, "rid") == 0)
        return rid ? kval_cstr(rid) : kval_null();
    if (strcmp(name, "ruleName") == 0)
        return t->cur_rule ? kval_cstr(t->cur_rule) : kval_null();
    if (strcmp(name, "inEvent") == 0)
        return kval_bool(!t->in_query);
    if (strcmp(name, "inQuery") == 0)
        return kval_bool(t->in_query);
    if (strcmp(name, "txnId") == 0)
        return kval_cstr(t->eid);
    if (strcmp(name, "host") == 0)
        return kval_null();
    if (strcmp(name, "rulesetConfig") == 0) {
        struct inst_ref *r = rid ? installed(t, rid) : NULL;
        return r ? kval_copy(&r->config) : kval_null();
    }
    return kval_error("Error: meta:%s is not defined", name);
}

/* ------------------------------------------------------------------ */
/* ctx:                                                                */

/* channels_of - the pico's channels in the reference's shape */
static kval
channels_of(struct txn *t, const char *pico_id)
{
    kval list;
    int rc = store_channel_list(t->e->st, pico_id, &list);
    if (rc != STORE_OK)
        return engine_store_error(t->e, rc);
    kval out = kval_array();
    for (size_t i = 0; i < kval_array_len(&list); i++) {
        const kval *c = kval_array_get(&list, i);
        kval m = kval_map();
        m = kval_map_put_str(m, "id", kval_copy(kval_map_get_str(c, "eci")));
        m = kval_map_put_str(m, "tags",
                             kval_copy(kval_map_get_str(c, "tags")));
        m = kval_map_put_str(m, "eventPolicy",
                             kval_copy(kval_map_get_str(c, "event_policy")));
        m = kval_map_put_str(m, "queryPolicy",
                             kval_copy(kval_map_get_str(c, "query_policy")));
        const kval *fam = kval_map_get_str(c, "family_pico_id");
        m = kval_map_put_str(m, "familyChannelPicoID",
                             fam ? kval_copy(fam) : kval_null());
        out = kval_array_append(out, m);
    }
    kval_free(list);
    return out;
}

/* family_ecis - ECIs of the family channels tagged TAG that the pico may
 * use: "parent" is the one its parent owns for it, "child" those its
 * children own for it */
static kval
family_ecis(struct txn *t, const char *tag)
{
    kval raw;
    int rc = store_channel_list_family(t->e->st, t->pico_id, &raw);
    if (rc != STORE_OK)
        return engine_store_error(t->e, rc);
    kval list = kval_array();
    for (size_t i = 0; i < kval_array_len(&raw); i++) {
        const kval *c = kval_array_get(&raw, i);
        kval m = kval_map_put_str(kval_map(), "id",
                                  kval_copy(kval_map_get_str(c, "eci")));
        m = kval_map_put_str(m, "tags",
                             kval_copy(kval_map_get_str(c, "tags")));
        m = kval_map_put_str(m, "familyChannelPicoID",
                             kval_copy(kval_map_get_str(c,
                                                        "family_pico_id")));
        list = kval_array_append(list, m);
    }
    kval_free(raw);
    kval out = kval_array();
    for (size_t i = 0; i < kval_array_len(&list); i++) {
        const kval *c = kval_array_get(&list, i);
        const kval *tags = kval_map_get_str(c, "tags");
        kval want = kval_cstr(tag);
        bool has = false;
        for (size_t j = 0; tags && j < kval_array_len(tags); j++)
            if (kval_equal(kval_array_get(tags, j), &want))
                has = true;
        kval_free(want);
        const kval *fam = kval_map_get_str(c, "familyChannelPicoID");
        if (has && fam != NULL && !kval_is_null(fam))
            out = kval_array_append(out,
                                    kval_copy(kval_map_get_str(c, "id")));
    }
    kval_free(list);
    return out;
}

static kval
ctx_query(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval eci = str_arg(args, n, 0, "ctx:query", "an eci");
    if (kval_is_error(&eci))
        return eci;
    kval rid = str_arg(args, n, 1, "ctx:query", "a rid");
    kval name = str_arg(args, n, 2, "ctx:query", "a name");
    kval result;
    if (kval_is_error(&rid) || kval_is_error(&name)) {
        result = kval_is_error(&rid) ? kval_copy(&rid) : kval_copy(&name);
    } else {
        /* inside the event's transaction: a sub-context on the other pico */
        struct txn sub;
        memset(&sub, 0, sizeof sub);
        sub.e = t->e;
        sub.in_query = true;
        sub.deferred = kval_array();
        snprintf(sub.eid, sizeof sub.eid, "%s", t->eid);
        sub.vm = krl_vm_new(&t->e->lim);
        krl_vm_set_host(sub.vm, &engine_krl_host, &sub);
        struct store_channel ch;
        int rc = store_channel_get(t->e->st, kval_str_ptr(&eci), &ch);
        if (rc == STORE_NOTFOUND) {
            result = kval_error("Error: ECI not found %s", kval_str_ptr(&eci));
        } else if (rc != STORE_OK) {
            result = engine_store_error(t->e, rc);
        } else {
            if (ch.family_pico_id != NULL &&
                strcmp(ch.family_pico_id, t->pico_id) != 0)
                result = kval_error("Error: This is a family channel and "
                                    "only the owner can use it.");
            else
                result = policy_check(&ch.query_policy, POLICY_QUERY,
                                      kval_str_ptr(&rid),
                                      kval_str_ptr(&name));
            snprintf(sub.pico_id, sizeof sub.pico_id, "%s", ch.pico_id);
            snprintf(sub.eci, sizeof sub.eci, "%s", ch.eci);
            store_channel_release(&ch);
            if (!kval_is_error(&result))
                result = engine_load_installs(&sub);
            if (!kval_is_error(&result))
                result = engine_query_in(&sub, kval_str_ptr(&rid),
                                         kval_str_ptr(&name),
                                         builtin_arg(args, n, 3));
        }
        engine_txn_release(&sub);
    }
    kval_free(eci);
    kval_free(rid);
    kval_free(name);
    return result;
}

static kval
ctx_event(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval d = kval_map();
    const char *keys[] = {"eci", "domain", "name"};
    for (size_t i = 0; i < 3; i++) {
        kval s = str_arg(args, n, i, "ctx:event", keys[i]);
        if (kval_is_error(&s)) {
            kval_free(d);
            return s;
        }
        d = kval_map_put_str(d, keys[i], s);
    }
    struct store_channel ch;
    int rc = store_channel_get(t->e->st, kval_str_ptr(kval_map_get_str(&d,
                                                                       "eci")),
                               &ch);
    if (rc != STORE_OK) {
        kval err = rc == STORE_NOTFOUND
                       ? kval_error("Error: ECI not found %s",
                                    kval_str_ptr(kval_map_get_str(&d, "eci")))
                       : engine_store_error(t->e, rc);
        kval_free(d);
        return err;
    }
    store_channel_release(&ch);
    const kval *attrs = builtin_arg(args, n, 3);
    d = kval_map_put_str(d, "attrs", kval_kind(attrs) == KV_MAP
                                         ? kval_copy(attrs)
                                         : kval_map());
    d = kval_map_put_str(d, "from", kval_cstr(t->pico_id));
    /* fire and forget: sent once this event has committed */
    t->deferred = kval_array_append(t->deferred, d);
    return kval_null();
}

static kval
ctx_new_pico(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval p = engine_new_pico(t->e, NULL, t->pico_id);
    if (kval_is_error(&p))
        return p;
    kval child_id = kval_copy(kval_map_get_str(&p, "id"));
    kval_free(p);
    /* install the requested rulesets, by rid: [{rid|url, config}] */
    const kval *rulesets = builtin_arg(args, n, 0);
    for (size_t i = 0; kval_kind(rulesets) == KV_ARRAY &&
                       i < kval_array_len(rulesets);
         i++) {
        const kval *r = kval_array_get(rulesets, i);
        const kval *rid = kval_kind(r) == KV_MAP ? kval_map_get_str(r, "rid")
                                                 : r;
        if (rid == NULL && kval_kind(r) == KV_MAP)
            rid = kval_map_get_str(r, "url");
        if (rid == NULL || kval_kind(rid) != KV_STRING)
            continue;
        struct store_ruleset rs;
        if (store_ruleset_get(t->e->st, kval_str_ptr(rid), &rs) != STORE_OK)
            continue;   /* install errors are reported, not thrown */
        const kval *config = kval_kind(r) == KV_MAP
                                 ? kval_map_get_str(r, "config")
                                 : NULL;
        kval none = kval_map();
        store_install_put(t->e->st, kval_str_ptr(&child_id), rs.rid, rs.hash,
                          config && kval_kind(config) == KV_MAP ? config
                                                                : &none);
        kval_free(none);
        store_ruleset_release(&rs);
    }
    kval changed = engine_changed(t->e);
    if (kval_is_error(&changed)) {
        kval_free(child_id);
        return changed;
    }
    /* the result is the parent's channel to the child */
    kval list;
    kval eci = kval_null();
    if (store_channel_list(t->e->st, kval_str_ptr(&child_id), &list) ==
        STORE_OK) {
        for (size_t i = 0; i < kval_array_len(&list); i++) {
            const kval *c = kval_array_get(&list, i);
            const kval *fam = kval_map_get_str(c, "family_pico_id");
            if (fam && kval_kind(fam) == KV_STRING &&
                strcmp(kval_str_ptr(fam), t->pico_id) == 0)
                eci = kval_copy(kval_map_get_str(c, "eci"));
        }
        kval_free(list);
    }
    kval_free(child_id);
    return eci;
}

static kval
ctx_del_pico(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval eci = str_arg(args, n, 0, "ctx:delPico", "an eci");
    if (kval_is_error(&eci))
        return eci;
    struct store_channel ch;
    int rc = store_channel_get(t->e->st, kval_str_ptr(&eci), &ch);
    kval result;
    if (rc != STORE_OK || ch.family_pico_id == NULL ||
        strcmp(ch.family_pico_id, t->pico_id) != 0 ||
        strcmp(ch.pico_id, t->pico_id) == 0) {
        result = kval_error("Error: delPico(%s) is not a child of this pico",
                            kval_str_ptr(&eci));
    } else {
        result = engine_delete_pico(t->e, ch.pico_id);
    }
    if (rc == STORE_OK)
        store_channel_release(&ch);
    kval_free(eci);
    return result;
}

static kval
ctx_new_channel(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval spec = kval_map();
    spec = kval_map_put_str(spec, "tags", kval_copy(builtin_arg(args, n, 0)));
    spec = kval_map_put_str(spec, "eventPolicy",
                            kval_copy(builtin_arg(args, n, 1)));
    spec = kval_map_put_str(spec, "queryPolicy",
                            kval_copy(builtin_arg(args, n, 2)));
    kval r = engine_channel_new_in(t->e, t->pico_id, &spec);
    kval_free(spec);
    return r;
}

static kval
ctx_del_channel(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval eci = str_arg(args, n, 0, "ctx:delChannel", "an eci");
    if (kval_is_error(&eci))
        return eci;
    struct store_channel ch;
    int rc = store_channel_get(t->e->st, kval_str_ptr(&eci), &ch);
    kval result;
    if (rc != STORE_OK || strcmp(ch.pico_id, t->pico_id) != 0)
        result = kval_error("Error: ECI not found %s", kval_str_ptr(&eci));
    else if (ch.family_pico_id != NULL)
        result = kval_error("Error: Cannot delete a family channel");
    else {
        int drc = store_channel_delete(t->e->st, ch.eci);
        result = drc == STORE_OK ? engine_changed(t->e)
                                 : engine_store_error(t->e, drc);
    }
    if (rc == STORE_OK)
        store_channel_release(&ch);
    kval_free(eci);
    return result;
}

static kval
ctx_install(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval rid = str_arg(args, n, 0, "ctx:install", "a rid");
    if (kval_is_error(&rid))
        return rid;
    kval r = engine_install_in(t->e, t->pico_id, kval_str_ptr(&rid),
                               builtin_arg(args, n, 1));
    if (!kval_is_error(&r)) {
        kval_free(r);
        r = kval_copy(&rid);
    }
    kval_free(rid);
    return r;
}

static kval
ctx_uninstall(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval rid = str_arg(args, n, 0, "ctx:uninstall", "a rid");
    if (kval_is_error(&rid))
        return rid;
    kval r = engine_uninstall_one(t->e, t->pico_id, kval_str_ptr(&rid));
    kval_free(rid);
    return r;
}

static const struct {
    const char *name;
    kval_call_fn *fn;
    unsigned kinds;
    const char *params[5];
} ctx_fns[] = {
    {"query", ctx_query, KV_FN_FUNCTION, {"eci", "rid", "name", "args"}},
    {"event", ctx_event, KV_FN_ACTION,
     {"eci", "domain", "name", "attrs"}},
    {"newPico", ctx_new_pico, KV_FN_ACTION, {"rulesets"}},
    {"delPico", ctx_del_pico, KV_FN_ACTION, {"eci"}},
    {"newChannel", ctx_new_channel, KV_FN_ACTION,
     {"tags", "eventPolicy", "queryPolicy"}},
    {"delChannel", ctx_del_channel, KV_FN_ACTION, {"eci"}},
    {"install", ctx_install, KV_FN_ACTION, {"url", "config"}},
    {"uninstall", ctx_uninstall, KV_FN_ACTION, {"rid"}},
};

static kval
rid_meta(struct txn *t, struct krl_vm *vm, const char *what)
{
    const char *rid = running_rid(t, vm);
    struct inst_ref *r = rid ? installed(t, rid) : NULL;
    if (r == NULL)
        return kval_null();
    const struct ast_meta *m = &krl_ruleset_ast(r->c->rs)->meta;
    const struct ast_expr *e = strcmp(what, "name") == 0 ? m->name
                               : strcmp(what, "version") == 0 ? m->version
                               : strcmp(what, "author") == 0 ? m->author
                                                             : m->description;
    if (e == NULL || e->kind != AST_STRING)
        return kval_null();
    return kval_str(e->u.string.s, e->u.string.len);
}

static kval
ctx_get(struct txn *t, struct krl_vm *vm, const char *name)
{
    for (size_t i = 0; i < sizeof ctx_fns / sizeof ctx_fns[0]; i++)
        if (strcmp(ctx_fns[i].name, name) == 0) {
            size_t np = 0;
            while (np < 5 && ctx_fns[i].params[np] != NULL)
                np++;
            return kval_func_new(ctx_fns[i].fn, NULL, NULL, ctx_fns[i].kinds,
                                 ctx_fns[i].name, ctx_fns[i].params, np);
        }
    if (strcmp(name, "picoId") == 0)
        return kval_cstr(t->pico_id);
    if (strcmp(name, "rid") == 0)
        return running_rid(t, vm) ? kval_cstr(running_rid(t, vm))
                                  : kval_null();
    if (strcmp(name, "rid_config") == 0)
        return meta_get(t, vm, "rulesetConfig");
    if (strncmp(name, "rid_", 4) == 0)
        return rid_meta(t, vm, name + 4);
    if (strcmp(name, "channels") == 0)
        return channels_of(t, t->pico_id);
    if (strcmp(name, "children") == 0)
        return family_ecis(t, "child");
    if (strcmp(name, "parent") == 0) {
        kval p = family_ecis(t, "parent");
        kval r = kval_array_len(&p) > 0 ? kval_copy(kval_array_get(&p, 0))
                                        : kval_null();
        kval_free(p);
        return r;
    }
    if (strcmp(name, "rulesets") == 0) {
        kval out = kval_array();
        for (size_t i = 0; i < t->n_installs; i++) {
            kval m = kval_map_put_str(kval_map(), "rid",
                                      kval_cstr(t->installs[i].rid));
            m = kval_map_put_str(m, "config",
                                 kval_copy(&t->installs[i].config));
            m = kval_map_put_str(m, "hash", kval_cstr(t->installs[i].c->hash));
            out = kval_array_append(out, m);
        }
        return out;
    }
    return kval_error("Error: ctx:%s is not defined", name);
}

/* ------------------------------------------------------------------ */
/* schedule:                                                           */

static kval
schedule_list(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    (void)args;
    (void)n;
    struct txn *t = txn_of(vm);
    kval out;
    int rc = store_schedule_list(t->e->st, t->pico_id, running_rid(t, vm),
                                 &out);
    return rc == STORE_OK ? out : engine_store_error(t->e, rc);
}

static kval
schedule_remove(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)data;
    struct txn *t = txn_of(vm);
    kval id = str_arg(args, n, 0, "schedule:remove", "an id");
    if (kval_is_error(&id))
        return id;
    /* exactly that entry (the reference drops the rid's whole list) */
    int rc = store_schedule_delete(t->e->st, kval_str_ptr(&id));
    kval_free(id);
    if (rc == STORE_NOTFOUND)
        return kval_bool(false);
    return rc == STORE_OK ? kval_bool(true) : engine_store_error(t->e, rc);
}

static kval
schedule_get(struct txn *t, const char *name)
{
    static const char *const none[] = {NULL};
    static const char *const id_param[] = {"id"};
    (void)t;
    if (strcmp(name, "list") == 0)
        return kval_func_new(schedule_list, NULL, NULL, KV_FN_FUNCTION,
                             "list", none, 0);
    if (strcmp(name, "remove") == 0)
        return kval_func_new(schedule_remove, NULL, NULL, KV_FN_ACTION,
                             "remove", id_param, 1);
    return kval_error("Error: schedule:%s is not defined", name);
}

/* ------------------------------------------------------------------ */
/* used modules                                                        */

/* module_get - NAME provided by the module used under ALIAS by the running
 * ruleset, or NULL-kind null when ALIAS is not one of its aliases */
static bool
module_get(struct txn *t, struct krl_vm *vm, const char *alias,
           const char *name, kval *out)
{
    struct inst_ref *me = installed(t, running_rid(t, vm));
    struct compiled *c = me ? me->c : t->cur_compiled;
    if (c == NULL)
        return false;
    const struct ast_ruleset *ast = krl_ruleset_ast(c->rs);
    for (size_t i = 0; i < ast->meta.n_uses; i++) {
        const struct ast_use *u = &ast->meta.uses[i];
        const char *a = u->alias.s ? u->alias.s : u->rid.s;
        if (strcmp(a, alias) != 0)
            continue;
        struct inst_ref *mod = installed(t, u->rid.s);
        if (mod == NULL) {
            *out = kval_error("Error: Module not found: %s", u->rid.s);
            return true;
        }
        kval config = krl_ruleset_use_config(c->rs, i, &t->e->lim);
        if (kval_is_error(&config)) {
            *out = config;
            return true;
        }
        kval err = kval_null();
        struct krl_instance *inst = engine_instance(t, mod->c, &config, &err);
        kval_free(config);
        *out = inst ? krl_instance_provided(inst, name) : err;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ */

static kval
host_get(void *ctx, struct krl_vm *vm, const char *domain, const char *name)
{
    struct txn *t = ctx;
    kval v;
    if (module_get(t, vm, domain, name, &v))
        return v;
    if (engine_outbound_get(t, domain, name, &v))
        return v;
    if (strcmp(domain, "ent") == 0)
        return ent_read(t, running_rid(t, vm), name);
    if (strcmp(domain, "event") == 0)
        return event_get(t, vm, name);
    if (strcmp(domain, "meta") == 0)
        return meta_get(t, vm, name);
    if (strcmp(domain, "ctx") == 0)
        return ctx_get(t, vm, name);
    if (strcmp(domain, "schedule") == 0)
        return schedule_get(t, name);
    if (module_has(domain)) {
        const struct krl_module_entry *m = module_lookup(domain, name);
        if (m == NULL)
            return kval_error("Error: %s:%s is not defined", domain, name);
        return module_value(m);
    }
    return kval_error("Error: Module not found: %s", domain);
}

const struct krl_host engine_krl_host = {
    .get = host_get,
    .ent_set = host_ent_set,
    .ent_clear = host_ent_clear,
    .raise = host_raise,
    .schedule = host_schedule,
    .log = host_log,
    .error = host_error,
};
