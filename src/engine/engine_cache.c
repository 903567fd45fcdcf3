/*
 * engine_cache.c - bounded caches of channels and of each pico's installed
 * rulesets, so an event does not read and parse them from the store every
 * time; and the entity variables of one batch of events.
 *
 * Correctness across processes: every change to picos, channels or
 * installations (by any process) bumps the "generation" counter in the
 * store's meta table, inside the changing transaction.  engine_cache_sync()
 * reads it at the start of each batch of events and empties the caches
 * when it moved.  A change made by this engine during a batch marks the
 * caches stale: from then until the next sync every lookup goes to the
 * store, and nothing cached is freed while an event may still hold it.
 *
 * Bounds: two direct-mapped tables of CACHE_SLOTS entries; a collision
 * replaces the older entry (freed only at a sync, kept on a free list till
 * then).
 *
 * Entity variables (engine_ents_*): a batch is one write transaction, so
 * no other process changes the store under it.  Its variables are read
 * from the store once and then kept; writes stay here and go to the store
 * at commit (engine_ents_flush), once per variable however many events of
 * the batch wrote it (a counter bumped by 100 events is one upsert).  A
 * rule that fails gets its writes undone here (the rule's first change to
 * each variable is logged).  Deleting a ruleset's or a pico's variables
 * in the store is mirrored by engine_ents_forget.  A value is kept as it
 * reads back from the store (its JSON round trip), so what later events
 * see does not change.  Past ENT_MAX variables a batch reads and writes
 * the store directly, as without the cache.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/json.h"
#include "picomail/mem.h"

#include "engine_internal.h"

#define CACHE_SLOTS 4096

struct chan_entry {
    struct store_channel ch;
    bool used;
    /* the last A:B of kind ok_kind the channel's policy let through (a
       policy is a pure function of the channel, which a change would have
       dropped from the cache), or ok_a NULL */
    int ok_kind;
    char *ok_a, *ok_b;
};

struct installs_entry {
    char pico_id[64];
    struct inst_ref *v;
    size_t n;
    bool used;
};

struct engine_cache {
    uint64_t generation;
    bool stale;
    struct chan_entry chans[CACHE_SLOTS];
    struct installs_entry installs[CACHE_SLOTS];
    /* entries replaced since the last sync, freed at the next one */
    struct store_channel *old_chans;
    size_t n_old_chans, cap_old_chans;
    struct installs_entry *old_installs;
    size_t n_old_installs, cap_old_installs;
};

static uint32_t
hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void
free_installs(struct inst_ref *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].rid);
        kval_free(v[i].config);
    }
    free(v);
}

static void
drop_old(struct engine_cache *c)
{
    for (size_t i = 0; i < c->n_old_chans; i++)
        store_channel_release(&c->old_chans[i]);
    c->n_old_chans = 0;
    for (size_t i = 0; i < c->n_old_installs; i++)
        free_installs(c->old_installs[i].v, c->old_installs[i].n);
    c->n_old_installs = 0;
}

static void
forget_allowed(struct chan_entry *ce)
{
    free(ce->ok_a);
    free(ce->ok_b);
    ce->ok_a = ce->ok_b = NULL;
}

static void
clear_all(struct engine_cache *c)
{
    drop_old(c);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (c->chans[i].used)
            store_channel_release(&c->chans[i].ch);
        c->chans[i].used = false;
        forget_allowed(&c->chans[i]);
        if (c->installs[i].used)
            free_installs(c->installs[i].v, c->installs[i].n);
        c->installs[i].used = false;
    }
    c->stale = false;
}

void
engine_cache_free(struct engine *e)
{
    engine_ents_free(e);
    free(e->logs);              /* emptied at the end of every batch */
    e->logs = NULL;
    e->n_logs = e->cap_logs = 0;
    kval_free(e->last_domain);
    kval_free(e->last_type);
    e->last_domain = e->last_type = kval_null();
    if (e->cache == NULL)
        return;
    clear_all(e->cache);
    free(e->cache->old_chans);
    free(e->cache->old_installs);
    free(e->cache);
    e->cache = NULL;
}

static uint64_t
read_generation(struct engine *e)
{
    char *v = NULL;
    uint64_t g = 0;
    if (store_meta_get(e->st, "generation", &v) == STORE_OK) {
        g = strtoull(v, NULL, 10);
        free(v);
    }
    return g;
}

void
engine_cache_sync(struct engine *e)
{
    if (e->cache == NULL)
        e->cache = xcalloc(1, sizeof *e->cache);
    uint64_t g = read_generation(e);
    if (g != e->cache->generation || e->cache->stale) {
        clear_all(e->cache);
        e->cache->generation = g;
    }
    drop_old(e->cache);
}

kval
engine_changed(struct engine *e)
{
    uint64_t g = read_generation(e) + 1;
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)g);
    int rc = store_meta_put(e->st, "generation", buf);
    if (e->cache != NULL)
        e->cache->stale = true;
    return rc == STORE_OK ? kval_null() : engine_store_error(e, rc);
}

/* usable - whether the cache may answer now */
static bool
usable(struct engine *e)
{
    return e->cache != NULL && !e->cache->stale;
}

int
engine_channel_cached(struct engine *e, const char *eci,
                      const struct store_channel **out,
                      struct store_channel *scratch)
{
    if (!usable(e)) {
        int rc = store_channel_get(e->st, eci, scratch);
        *out = rc == STORE_OK ? scratch : NULL;
        return rc;
    }
    /* ECIs are case-insensitive: key the slot by the lower-case form */
    char key[128];
    size_t n = strlen(eci);
    if (n >= sizeof key) {
        int rc = store_channel_get(e->st, eci, scratch);
        *out = rc == STORE_OK ? scratch : NULL;
        return rc;
    }
    for (size_t i = 0; i <= n; i++)
        key[i] = (char)(eci[i] >= 'A' && eci[i] <= 'Z' ? eci[i] + 32 : eci[i]);
    struct chan_entry *slot = &e->cache->chans[hash_str(key) % CACHE_SLOTS];
    if (slot->used && strcmp(slot->ch.eci, key) == 0) {
        *out = &slot->ch;
        return STORE_OK;
    }
    struct store_channel ch;
    int rc = store_channel_get(e->st, key, &ch);
    if (rc != STORE_OK) {
        *out = NULL;
        return rc;
    }
    struct engine_cache *c = e->cache;
    if (slot->used) {
        if (c->n_old_chans == c->cap_old_chans) {
            c->cap_old_chans = c->cap_old_chans ? c->cap_old_chans * 2 : 16;
            c->old_chans = xreallocarray(c->old_chans, c->cap_old_chans,
                                         sizeof *c->old_chans);
        }
        c->old_chans[c->n_old_chans++] = slot->ch;
    }
    forget_allowed(slot);
    slot->ch = ch;
    slot->used = true;
    *out = &slot->ch;
    return STORE_OK;
}

bool
engine_installs_cached(struct engine *e, const char *pico_id,
                       struct inst_ref **v, size_t *n)
{
    if (!usable(e) || strlen(pico_id) >= 64)
        return false;
    struct installs_entry *slot =
        &e->cache->installs[hash_str(pico_id) % CACHE_SLOTS];
    if (!slot->used || strcmp(slot->pico_id, pico_id) != 0)
        return false;
    *v = slot->v;
    *n = slot->n;
    return true;
}

bool
engine_installs_keep(struct engine *e, const char *pico_id,
                     struct inst_ref *v, size_t n)
{
    if (!usable(e) || strlen(pico_id) >= 64)
        return false;
    struct engine_cache *c = e->cache;
    struct installs_entry *slot =
        &c->installs[hash_str(pico_id) % CACHE_SLOTS];
    if (slot->used) {
        if (c->n_old_installs == c->cap_old_installs) {
            c->cap_old_installs = c->cap_old_installs
                                      ? c->cap_old_installs * 2
                                      : 16;
            c->old_installs = xreallocarray(c->old_installs,
                                            c->cap_old_installs,
                                            sizeof *c->old_installs);
        }
        c->old_installs[c->n_old_installs++] = *slot;
    }
    snprintf(slot->pico_id, sizeof slot->pico_id, "%s", pico_id);
    slot->v = v;
    slot->n = n;
    slot->used = true;
    return true;
}

/* entry_of - the cache entry CH is the channel of, or NULL (a scratch
 * copy) */
static struct chan_entry *
entry_of(struct engine *e, const struct store_channel *ch)
{
    if (e->cache == NULL)
        return NULL;
    struct chan_entry *first = e->cache->chans;
    uintptr_t p = (uintptr_t)ch, lo = (uintptr_t)first,
              hi = (uintptr_t)(first + CACHE_SLOTS);
    if (p < lo || p >= hi || (p - lo) % sizeof *first != 0)
        return NULL;
    return &first[(p - lo) / sizeof *first];
}

bool
engine_channel_allows(struct engine *e, const struct store_channel *ch,
                      int kind, const char *a, const char *b)
{
    struct chan_entry *ce = entry_of(e, ch);
    return ce != NULL && ce->ok_a != NULL && ce->ok_kind == kind &&
           strcmp(ce->ok_a, a) == 0 && strcmp(ce->ok_b, b) == 0;
}

void
engine_channel_allowed(struct engine *e, const struct store_channel *ch,
                       int kind, const char *a, const char *b)
{
    struct chan_entry *ce = entry_of(e, ch);
    if (ce == NULL)
        return;
    forget_allowed(ce);
    ce->ok_kind = kind;
    ce->ok_a = xstrdup(a);
    ce->ok_b = xstrdup(b);
}

/* ---- entity variables of a batch ---- */

#define ENT_MAX 4096
#define ENT_INDEX (2 * ENT_MAX)     /* power of two */

struct ent_entry {
    char *key;                  /* pico_id NUL rid NUL name NUL (owned) */
    size_t pico_len, rid_len;   /* offsets: rid at pico_len + 1, ... */
    uint32_t hash;
    bool cached;                /* false: not known here (ask the store) */
    bool present;               /* the variable exists */
    bool dirty;                 /* differs from the store */
    kval value;                 /* when present */
    uint64_t logged;            /* the rule that logged its undo */
};

/* The state of one entry before the running rule first changed it. */
struct ent_undo {
    size_t entry;
    bool cached, present, dirty;
    kval value;
};

struct ent_cache {
    bool active;                /* inside a batch */
    uint64_t rule;              /* the running rule (0: none) */
    uint64_t rules;             /* rules run so far: each its own number */
    bool unguarded;             /* the rule runs without a store savepoint */
    bool opened;                /* ... and needed one after all (opened) */
    struct ent_entry *v;
    size_t n;
    uint32_t index[ENT_INDEX];  /* entry + 1, 0 free */
    struct ent_undo *undo;
    size_t n_undo, cap_undo;
    struct buf js;              /* scratch for the storable check */
};

static uint32_t
ent_hash(const char *pico_id, const char *rid, const char *name)
{
    uint32_t h = hash_str(pico_id);
    h = (h ^ 0x1f) * 16777619u;
    for (const char *p = rid; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0x1f) * 16777619u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

static bool
ent_is(const struct ent_entry *x, const char *pico_id, const char *rid,
       const char *name)
{
    return strcmp(x->key, pico_id) == 0 &&
           strcmp(x->key + x->pico_len + 1, rid) == 0 &&
           strcmp(x->key + x->pico_len + x->rid_len + 2, name) == 0;
}

/* ent_find - the entry of the variable, or NULL; with ADD, a new one
 * (not cached) when there is room */
static struct ent_entry *
ent_find(struct ent_cache *c, const char *pico_id, const char *rid,
         const char *name, bool add)
{
    uint32_t h = ent_hash(pico_id, rid, name);
    size_t i = h & (ENT_INDEX - 1);
    while (c->index[i] != 0) {
        struct ent_entry *x = &c->v[c->index[i] - 1];
        if (x->hash == h && ent_is(x, pico_id, rid, name))
            return x;
        i = (i + 1) & (ENT_INDEX - 1);
    }
    if (!add || c->n == ENT_MAX)
        return NULL;
    struct ent_entry *x = &c->v[c->n++];
    size_t lp = strlen(pico_id), lr = strlen(rid), ln = strlen(name);
    x->key = xmalloc(lp + lr + ln + 3);
    memcpy(x->key, pico_id, lp + 1);
    memcpy(x->key + lp + 1, rid, lr + 1);
    memcpy(x->key + lp + lr + 2, name, ln + 1);
    x->pico_len = lp;
    x->rid_len = lr;
    x->hash = h;
    x->cached = x->present = x->dirty = false;
    x->value = kval_null();
    x->logged = 0;
    c->index[i] = (uint32_t)c->n;
    return x;
}

/* log_undo - remember X as it was before the running rule changed it */
static void
log_undo(struct ent_cache *c, struct ent_entry *x)
{
    if (c->rule == 0 || x->logged == c->rule)
        return;
    if (c->n_undo == c->cap_undo) {
        c->cap_undo = c->cap_undo ? 2 * c->cap_undo : 16;
        c->undo = xreallocarray(c->undo, c->cap_undo, sizeof *c->undo);
    }
    c->undo[c->n_undo++] = (struct ent_undo){
        (size_t)(x - c->v), x->cached, x->present, x->dirty,
        kval_copy(&x->value)};
    x->logged = c->rule;
}

static void
drop_undo(struct ent_cache *c)
{
    for (size_t i = 0; i < c->n_undo; i++)
        kval_free(c->undo[i].value);
    c->n_undo = 0;
}

void
engine_ents_begin(struct engine *e)
{
    if (e->ents == NULL) {
        e->ents = xcalloc(1, sizeof *e->ents);
        e->ents->v = xcalloc(ENT_MAX, sizeof *e->ents->v);
        buf_init(&e->ents->js);
    }
    engine_ents_end(e);
    e->ents->active = true;
}

void
engine_ents_end(struct engine *e)
{
    struct ent_cache *c = e->ents;
    if (c == NULL)
        return;
    drop_undo(c);
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].key);
        kval_free(c->v[i].value);
    }
    if (c->n > 0)
        memset(c->index, 0, sizeof c->index);
    c->n = 0;
    c->rule = 0;
    c->active = false;
}

void
engine_ents_free(struct engine *e)
{
    if (e->ents == NULL)
        return;
    engine_ents_end(e);
    free(e->ents->v);
    free(e->ents->undo);
    buf_release(&e->ents->js);
    free(e->ents);
    e->ents = NULL;
}

int
engine_ents_flush(struct engine *e)
{
    struct ent_cache *c = e->ents;
    if (c == NULL || !c->active)
        return STORE_OK;
    for (size_t i = 0; i < c->n; i++) {
        struct ent_entry *x = &c->v[i];
        if (!x->cached || !x->dirty)
            continue;
        const char *rid = x->key + x->pico_len + 1;
        const char *name = rid + x->rid_len + 1;
        int rc = x->present
                     ? store_ent_put(e->st, x->key, rid, name, &x->value)
                     : store_ent_delete(e->st, x->key, rid, name);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
        x->dirty = false;
    }
    return STORE_OK;
}

bool
engine_ents_active(const struct engine *e)
{
    return e->ents != NULL && e->ents->active;
}

void
engine_ents_rule_begin(struct engine *e, bool unguarded)
{
    if (e->ents == NULL || !e->ents->active)
        return;
    drop_undo(e->ents);
    e->ents->rule = ++e->ents->rules;
    e->ents->unguarded = unguarded;
    e->ents->opened = false;
}

bool
engine_ents_rule_end(struct engine *e, bool failed)
{
    struct ent_cache *c = e->ents;
    if (c == NULL || !c->active)
        return false;
    bool opened = c->opened;
    c->unguarded = c->opened = false;
    for (size_t i = c->n_undo; failed && i-- > 0;) {
        struct ent_undo *u = &c->undo[i];
        struct ent_entry *x = &c->v[u->entry];
        kval_free(x->value);
        x->value = u->value;
        u->value = kval_null();
        x->cached = u->cached;
        x->present = u->present;
        x->dirty = u->dirty;
    }
    drop_undo(c);
    c->rule = 0;
    return opened;
}

int
engine_ent_get(struct engine *e, const char *pico_id, const char *rid,
               const char *name, kval *out)
{
    struct ent_cache *c = e->ents;
    if (c == NULL || !c->active)
        return store_ent_get(e->st, pico_id, rid, name, out);
    struct ent_entry *x = ent_find(c, pico_id, rid, name, true);
    if (x != NULL && x->cached) {
        *out = x->present ? kval_copy(&x->value) : kval_null();
        return x->present ? STORE_OK : STORE_NOTFOUND;
    }
    int rc = store_ent_get(e->st, pico_id, rid, name, out);
    if (x != NULL && (rc == STORE_OK || rc == STORE_NOTFOUND)) {
        x->cached = true;
        x->present = rc == STORE_OK;
        x->dirty = false;
        kval_free(x->value);
        x->value = x->present ? kval_copy(out) : kval_null();
    }
    return rc;
}

/* lone_surrogate - as the store refuses: a \uD800-\uDFFF escape in JSON
 * text (json.c prints a lone surrogate so and it cannot be read back) */
static bool
lone_surrogate(const struct buf *b)
{
    const char *p = b->data, *end = b->data + b->len;
    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p >= 4 && p[1] == 'u' && (p[2] == 'd' || p[2] == 'D') &&
            p[3] != '\0' && strchr("89abcdefABCDEF", p[3]) != NULL)
            return true;
        p += 2;
        if (p >= end)
            break;
    }
    return false;
}

/* stored_form - V as it reads back from the store, or an error when the
 * store would refuse it (STORE_EINVAL) */
static int
stored_form(struct ent_cache *c, const kval *v, kval *out)
{
    c->js.len = 0;
    if (json_encode(v, JSON_DATA, 0, &c->js) < 0 || lone_surrogate(&c->js))
        return STORE_EINVAL;
    /* most values read back as they are; the others are parsed back */
    bool same = kval_kind(v) == KV_BOOL || kval_kind(v) == KV_STRING ||
                (kval_kind(v) == KV_NUMBER && isfinite(kval_get_number(v)) &&
                 !(kval_get_number(v) == 0 && signbit(kval_get_number(v))));
    if (same) {
        *out = kval_copy(v);
        return STORE_OK;
    }
    *out = json_parse(c->js.data, c->js.len);
    if (kval_is_error(out)) {
        kval_free(*out);
        *out = kval_null();
        return STORE_EINVAL;
    }
    return STORE_OK;
}

int
engine_ent_put(struct engine *e, const char *pico_id, const char *rid,
               const char *name, const kval *v)
{
    struct ent_cache *c = e->ents;
    struct ent_entry *x = c != NULL && c->active
                              ? ent_find(c, pico_id, rid, name, true)
                              : NULL;
    if (x == NULL) {
        /* no batch, or a full cache: straight to the store, under the
           rule's savepoint (opened now if the rule runs without) */
        if (c != NULL && c->active && c->unguarded && !c->opened) {
            int rc = store_savepoint(e->st);
            if (rc != STORE_OK)
                return rc;
            c->opened = true;
        }
        return kval_is_null(v) ? store_ent_delete(e->st, pico_id, rid, name)
                               : store_ent_put(e->st, pico_id, rid, name, v);
    }
    kval stored = kval_null();
    if (!kval_is_null(v)) {
        int rc = stored_form(c, v, &stored);
        if (rc != STORE_OK)
            return rc;
    }
    log_undo(c, x);
    kval_free(x->value);
    x->value = stored;
    x->cached = true;
    x->present = !kval_is_null(v);
    x->dirty = true;
    return STORE_OK;
}

void
engine_ents_forget(struct engine *e, const char *pico_id, const char *rid)
{
    struct ent_cache *c = e->ents;
    if (c == NULL || !c->active)
        return;
    for (size_t i = 0; i < c->n; i++) {
        struct ent_entry *x = &c->v[i];
        if (!x->cached || strcmp(x->key, pico_id) != 0 ||
            (rid != NULL && strcmp(x->key + x->pico_len + 1, rid) != 0))
            continue;
        /* the store has none of them now */
        log_undo(c, x);
        kval_free(x->value);
        x->value = kval_null();
        x->present = x->dirty = false;
    }
}
