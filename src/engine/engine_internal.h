/*
 * engine_internal.h - what engine.c, engine_event.c and engine_host.c
 * share; private to src/engine.
 */
#ifndef PICOMAIL_ENGINE_INTERNAL_H
#define PICOMAIL_ENGINE_INTERNAL_H

#include <stdint.h>

#include "picomail/arena.h"
#include "picomail/engine.h"
#include "picomail/eval.h"
#include "picomail/select.h"
#include "picomail/store.h"

/* An instance of a compiled ruleset for one configuration. */
struct cached_inst {
    char *config_json;          /* the configuration, as compact JSON */
    struct krl_instance *inst;
    struct cached_inst *next;
};

/* A compiled ruleset version, cached by source hash. */
struct compiled {
    char *hash;
    struct krl_ruleset *rs;
    struct arena *arena;        /* the event-expression machines */
    size_t n_rules;
    struct sel_machine **machines;  /* per rule; NULL for select where */
    int64_t *within_ms;         /* per rule: -1 none, -2 not evaluated */
    kval *initial;              /* per rule: its machine's start state,
                                   made once (null until then) */
    struct cached_inst *insts;
    struct compiled *next;
};

/* Map keys every event uses, made once per engine (an engine is one
 * thread's, so sharing them by reference count is safe). */
enum engine_word {
    EW_DOMAIN, EW_NAME, EW_ATTRS, EW_TIME, EW_EID, EW_DIRECTIVES,
    EW_OPTIONS, EW__COUNT
};

struct engine {
    kval words[EW__COUNT];
    struct store *st;
    struct krl_limits lim;
    struct compiled *compiled;  /* cache; grows with the rulesets in use */
    struct krl_vm *vm;          /* reused by event after event */
    struct engine_cache *cache; /* channels and installs (engine_cache.c) */
};

/* One installed ruleset as an event sees it. */
struct inst_ref {
    char *rid;                  /* owned */
    struct compiled *c;         /* borrowed from the cache */
    struct krl_instance *inst;  /* borrowed from the cache */
    kval config;
};

/* A (ruleset, event) pair of the schedule. */
struct sched_item {
    size_t ruleset;             /* index into txn.installs */
    kval event;                 /* {domain, name, attrs, time} */
};

/* An entity variable as this event last read or wrote it. */
struct ent_seen {
    char *rid;                  /* owned */
    char *name;                 /* owned */
    kval value;                 /* null when the variable is unset */
};

#define TXN_ENT_SEEN 16

/* The context of one event or query: the KRL host's ctx. */
struct txn {
    struct engine *e;
    char pico_id[64];
    char eci[96];
    char eid[32];
    bool in_query;
    struct inst_ref *installs;
    size_t n_installs;
    bool installs_borrowed;     /* the array belongs to the cache */
    struct sched_item *sched;   /* a queue: [head, n) are pending */
    size_t head, n, cap;
    const kval *event;          /* the event being processed, or NULL */
    const char *cur_rid;        /* the ruleset whose turn it is */
    struct compiled *cur_compiled;
    const char *cur_rule;
    struct krl_vm *vm;
    bool vm_borrowed;           /* vm is the engine's, not to be freed */
    kval deferred;              /* events to send after commit: array of
                                   {eci, domain, name, attrs} */
    /* entity variables read or written so far (the pico's events run one
       at a time, so within the event these are the current values) */
    struct ent_seen seen[TXN_ENT_SEEN];
    size_t n_seen;
};

extern const struct krl_host engine_krl_host;

int64_t engine_now_ms(void);
kval engine_store_error(struct engine *e, int rc);
struct compiled *engine_compiled(struct engine *e, const char *hash,
                                 kval *err);
struct krl_instance *engine_instance(struct txn *t, struct compiled *c,
                                     const kval *config, kval *err);
/* engine_load_installs - the pico's installed rulesets into T */
kval engine_load_installs(struct txn *t);
void engine_txn_release(struct txn *t);
/* engine_forget_ents - drop the remembered entity variables (after a rule
 * was rolled back) */
void engine_forget_ents(struct txn *t);
/* engine_new_pico/engine_delete_pico/engine_uninstall_one - inside an open
 * transaction */
kval engine_new_pico(struct engine *e, const char *name,
                     const char *parent_id);
kval engine_delete_pico(struct engine *e, const char *id);
kval engine_uninstall_one(struct engine *e, const char *pico_id,
                          const char *rid);
kval engine_channel_new_in(struct engine *e, const char *pico_id,
                           const kval *spec);
kval engine_install_in(struct engine *e, const char *pico_id,
                       const char *rid, const kval *config);
/* engine_schedule_event - append an event for every installed ruleset (or
 * only FOR_RID when not NULL) */
void engine_schedule_event(struct txn *t, const char *domain,
                           const char *type, const kval *attrs,
                           const char *for_rid, int64_t time_ms);
/* engine_query_in - run a query of RID's NAME with ARGS on T's pico */
kval engine_query_in(struct txn *t, const char *rid, const char *name,
                     const kval *args);

/* engine_cache.c */
void engine_cache_sync(struct engine *e);
void engine_cache_free(struct engine *e);
/* engine_changed - picos, channels or installations changed: bump the
 * generation (inside the open transaction) so every engine drops its
 * caches */
kval engine_changed(struct engine *e);
/* engine_channel_cached - the channel ECI, borrowed from the cache (valid
 * until the next sync) or read into SCRATCH (then the caller releases it
 * when *OUT == SCRATCH) */
int engine_channel_cached(struct engine *e, const char *eci,
                          const struct store_channel **out,
                          struct store_channel *scratch);
bool engine_installs_cached(struct engine *e, const char *pico_id,
                            struct inst_ref **v, size_t *n);
/* engine_installs_keep - hand V to the cache; false when it would not take
 * it (then the caller keeps ownership) */
bool engine_installs_keep(struct engine *e, const char *pico_id,
                          struct inst_ref *v, size_t n);

#endif
