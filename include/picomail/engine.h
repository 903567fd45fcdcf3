/*
 * engine.h - the pico engine: picos, channels, rulesets and installations,
 * and the processing of events and queries (krl-language.md §7-§8).
 *
 * An engine is one open database (store.h) plus caches of compiled
 * rulesets and their instances.  It belongs to one thread at a time;
 * several engines (threads or processes) may share one database file, and
 * SQLite's write lock serialises their transactions.
 *
 * Every function returns a new kval reference: its result, or a KV_ERROR
 * whose message is meant for the user ("ECI not found x", "Not allowed by
 * channel policy", a KRL runtime error).  PICO arguments accept a pico id
 * or a pico name.
 *
 * One event is one store transaction: entity variables, event-expression
 * states, raised events, schedules and the event log commit together.  A
 * rule that fails is rolled back (a savepoint per rule), so it leaves no
 * partial writes; rules that completed before it keep their effects, and
 * the event's result is the error, as in the reference engine.
 */
#ifndef PICOMAIL_ENGINE_H
#define PICOMAIL_ENGINE_H

#include <stdint.h>

#include "picomail/eval.h"
#include "picomail/store.h"
#include "picomail/value.h"

struct engine;

struct engine_options {
    const char *database;       /* file path, or ":memory:" */
    struct krl_limits limits;   /* per event or query */
    bool synchronous_full;      /* see store_options */
    pthread_mutex_t *write_gate;    /* see store_options; NULL: none */
    const char *mail_domain;    /* of channel addresses: the From of mail
                                   picos send; NULL: picos.localhost */
    const char *mail_sender;    /* a fixed From for that mail instead;
                                   NULL: the channel's address */
};

void engine_options_default(struct engine_options *opt);
/* engine_open - NULL on failure with a message in ERRBUF */
struct engine *engine_open(const struct engine_options *opt, char *errbuf,
                           size_t errlen);
struct engine *engine_close(struct engine *e);
/* engine_store - the engine's store connection (borrowed) */
struct store *engine_store(struct engine *e);

/* ---- picos ---- */

/* engine_init - the root pico, made (with its self channel) if missing:
 * {"root": ID} */
kval engine_init(struct engine *e);
/* engine_pico_new - a child of PARENT (NULL: the root): {"id", "name"} */
kval engine_pico_new(struct engine *e, const char *name, const char *parent);
kval engine_pico_list(struct engine *e);
/* engine_pico_show - {id, name, parent, children, channels, rulesets} */
kval engine_pico_show(struct engine *e, const char *pico);
/* engine_pico_rm - the pico and its descendants */
kval engine_pico_rm(struct engine *e, const char *pico);
/* engine_pico_id - the id of PICO (an id or a name) */
kval engine_pico_id(struct engine *e, const char *pico);

/* ---- channels ---- */

/* engine_channel_new - SPEC is a map: {"tags": [..], "eventPolicy":
 * {allow, deny}, "queryPolicy": {allow, deny}, "alias": NAME, "senders":
 * [..], "requireDkim": BOOL, "requireDmarc": BOOL} (mail_accept.h says
 * what the last three mean); missing policies allow everything.
 * Result: the channel map. */
kval engine_channel_new(struct engine *e, const char *pico, const kval *spec);
kval engine_channel_list(struct engine *e, const char *pico);
kval engine_channel_rm(struct engine *e, const char *eci);

/* ---- rulesets ---- */

/* engine_ruleset_register - compile SRC; on success store it as the
 * current version of its rid: {"rid", "hash"}; a compile error's message
 * holds every FILE:LINE:COL: diagnostic */
kval engine_ruleset_register(struct engine *e, const char *file,
                             const char *src, size_t len);
kval engine_ruleset_list(struct engine *e);
kval engine_ruleset_show(struct engine *e, const char *rid);
/* engine_ruleset_flush - move every pico using RID to its current version */
kval engine_ruleset_flush(struct engine *e, const char *rid);
/* engine_install - install the current version of RID with CONFIG (a map
 * or NULL): {"pico", "rid"} */
kval engine_install(struct engine *e, const char *pico, const char *rid,
                    const kval *config);
kval engine_uninstall(struct engine *e, const char *pico, const char *rid);

/* ---- events and queries ---- */

/* engine_event - raise DOMAIN:TYPE with ATTRS (a map or NULL) on the
 * channel ECI at TIME_MS (0: now): {"eid", "directives": [...]} with the
 * reference's directive shape {type, name, options, meta} */
kval engine_event(struct engine *e, const char *eci, const char *domain,
                  const char *type, const kval *attrs, int64_t time_ms);
/* One event of a batch (all borrowed). */
struct engine_event_req {
    const char *eci;
    const char *domain;
    const char *type;
    const kval *attrs;          /* a map, or NULL */
    int64_t time_ms;            /* 0: now */
    const char *from_pico;      /* the pico sending it (ctx:event), which
                                   may use its family channels; NULL from
                                   outside (mail, HTTP, the command line) */
    int64_t inbox_id;           /* the inbox entry (store.h) this event
                                   processes, marked done in the event's
                                   transaction; 0: none.  An entry that is
                                   no longer pending is not run again
                                   (result: an error saying so). */
    const char *eid;            /* the event's id (as the inbox promised
                                   it); NULL: a new one */
};

/* engine_event_batch - N independent events committed together (group
 * commit: one fsync for all); an array of N results as engine_event gives
 * them, or an error when the transaction itself failed (then none of them
 * happened) */
kval engine_event_batch(struct engine *e, const struct engine_event_req *reqs,
                        size_t n);
/* engine_query - call shared NAME of RID through channel ECI with ARGS */
kval engine_query(struct engine *e, const char *eci, const char *rid,
                  const char *name, const kval *args);

/* ---- inspection ---- */

/* engine_ent - one entity variable, or (NAME NULL) a map of all of them */
kval engine_ent(struct engine *e, const char *pico, const char *rid,
                const char *name);
/* engine_log - recent events and queries of PICO (NULL: all), newest first */
kval engine_log(struct engine *e, const char *pico, int limit);

#endif
