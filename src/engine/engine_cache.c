/*
 * engine_cache.c - bounded caches of channels and of each pico's installed
 * rulesets, so an event does not read and parse them from the store every
 * time.
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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"

#include "engine_internal.h"

#define CACHE_SLOTS 4096

struct chan_entry {
    struct store_channel ch;
    bool used;
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
clear_all(struct engine_cache *c)
{
    drop_old(c);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (c->chans[i].used)
            store_channel_release(&c->chans[i].ch);
        c->chans[i].used = false;
        if (c->installs[i].used)
            free_installs(c->installs[i].v, c->installs[i].n);
        c->installs[i].used = false;
    }
    c->stale = false;
}

void
engine_cache_free(struct engine *e)
{
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
