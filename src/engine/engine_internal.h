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
    kval last_domain, last_type;    /* of the last event made: most events
                                       repeat them (null until then) */
    struct engine_cache *cache; /* channels and installs (engine_cache.c) */
    struct ent_cache *ents;     /* entity variables of the running batch
                                   (engine_cache.c) */
    struct pending_log *logs;   /* the running batch's event-log rows,
                                   written together before its commit */
    size_t n_logs, cap_logs;
    char *mail_domain;          /* of channel addresses (owned) */
    char *mail_sender;          /* From of what picos send, or NULL */
};

/* An event-log row waiting for the end of its batch: the entry's eid and
 * pico_id point here when it is written; its domain, name and attrs are
 * the request's (alive for the batch). */
struct pending_log {
    struct store_log_entry le;
    char eid[32];
    char pico_id[64];
    char *result_json;          /* owned */
    char *error;                /* owned */
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
    struct sel_event sel;       /* the same, borrowed from EVENT */
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
    struct sel_event sel;       /* the same, as select.h matches it */
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

/* engine_outbound.c */
/* engine_outbound_get - email:NAME, sms:NAME, event:send and
 * mail:attachment for the KRL host; false when DOMAIN:NAME is none of
 * these */
bool engine_outbound_get(struct txn *t, const char *domain, const char *name,
                         kval *out);
/* engine_outbound_directives - the reply and forward directives of an
 * event raised by mail (ATTRS has an envelope) become outbox rows, inside
 * the event's transaction */
void engine_outbound_directives(struct txn *t, const kval *attrs,
                                const kval *result);

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
/* engine_channel_allows - whether CH (from engine_channel_cached) is known
 * to let A:B of policy KIND through; engine_channel_allowed - remember
 * that it does (both do nothing for a scratch copy) */
bool engine_channel_allows(struct engine *e, const struct store_channel *ch,
                           int kind, const char *a, const char *b);
void engine_channel_allowed(struct engine *e, const struct store_channel *ch,
                            int kind, const char *a, const char *b);
/*
 * Entity variables of a batch (see engine_cache.c).  engine_ents_begin
 * after the batch's transaction began; engine_ents_flush writes what
 * changed, before the commit; engine_ents_end drops it all (after the
 * commit or a rollback).  engine_ents_rule_begin/_end(failed) bracket a
 * rule body: a failed rule's writes are undone.  A rule begun UNGUARDED
 * runs without a store savepoint (krl_rule_ents_only: its only writes are
 * entity variables, kept here); should it write the store after all (a
 * full cache), a savepoint is opened then, and _end returns true: the
 * caller releases it or rolls it back.  engine_ent_get/put are
 * store_ent_get and store_ent_put/delete (V null) through the cache, with
 * the same results (STORE_EINVAL for a value the store would refuse);
 * outside a batch they are the store's.  engine_ents_forget - the store's
 * variables of PICO_ID (and RID; NULL: every ruleset) were deleted.
 */
void engine_ents_begin(struct engine *e);
int engine_ents_flush(struct engine *e);
void engine_ents_end(struct engine *e);
void engine_ents_free(struct engine *e);
bool engine_ents_active(const struct engine *e);
void engine_ents_rule_begin(struct engine *e, bool unguarded);
bool engine_ents_rule_end(struct engine *e, bool failed);
int engine_ent_get(struct engine *e, const char *pico_id, const char *rid,
                   const char *name, kval *out);
int engine_ent_put(struct engine *e, const char *pico_id, const char *rid,
                   const char *name, const kval *v);
void engine_ents_forget(struct engine *e, const char *pico_id,
                        const char *rid);
bool engine_installs_cached(struct engine *e, const char *pico_id,
                            struct inst_ref **v, size_t *n);
/* engine_installs_keep - hand V to the cache; false when it would not take
 * it (then the caller keeps ownership) */
bool engine_installs_keep(struct engine *e, const char *pico_id,
                          struct inst_ref *v, size_t n);

#endif
