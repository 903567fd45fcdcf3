/*
 * store.h - persistent storage: the only way the engine reaches the
 * database.  The embedded backend is SQLite in WAL mode (store_sqlite.c is
 * the only file that includes sqlite3.h); the interface is written so that
 * a second backend (PostgreSQL) could implement it unchanged.
 *
 * A struct store is one connection with its prepared statements.  It
 * belongs to one thread at a time; threads open their own.  Several
 * processes (picomaild and the picomail command) may open the same file.
 *
 * Transactions: store_begin() starts a write transaction (BEGIN IMMEDIATE),
 * store_commit()/store_rollback() end it.  Calls made outside a
 * transaction run in their own implicit one.  Everything the engine does
 * for one event happens between one begin and commit, so an event happens
 * wholly or not at all; several independent events may share one
 * transaction (group commit).
 *
 * Values (entity variables, configs, policies, event attributes, states)
 * are KRL values stored as JSON text (json.h, JSON_DATA): a function or
 * regexp cannot be stored (store_*_put returns STORE_EINVAL).
 *
 * Return values: 0 success, STORE_NOTFOUND when the thing is absent,
 * STORE_BUSY when the database stayed locked past the busy timeout (a
 * temporary failure: retry later, answer LMTP with 4xx), STORE_EINVAL for
 * invalid input, STORE_ERROR for anything else; store_errmsg() says why.
 * Strings and kvals returned through OUT parameters are owned by the caller
 * (kval_free, or the record's release function).
 */
#ifndef PICOMAIL_STORE_H
#define PICOMAIL_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "picomail/value.h"

enum {
    STORE_OK = 0,
    STORE_NOTFOUND = 1,
    STORE_DUPLICATE = 2,        /* store_inbox_add: the key is known */
    STORE_BUSY = -2,
    STORE_EINVAL = -3,
    STORE_ERROR = -1
};

struct store;

struct store_options {
    int busy_timeout_ms;        /* how long to wait on a lock; default 5000 */
    bool synchronous_full;      /* fsync at every commit (durable against
                                   power loss); default true */
    pthread_mutex_t *write_gate;    /* NULL, or a mutex shared by the
                                   connections of one process: each holds
                                   it for the length of its write
                                   transactions, so they take turns at
                                   once instead of sleeping in SQLite's
                                   busy handler (borrowed; outlives the
                                   connections) */
};

/* store_open - open (creating and migrating when needed) the database at
 * PATH; ":memory:" for a private in-memory one.  NULL on failure with a
 * message in ERRBUF. */
struct store *store_open(const char *path, const struct store_options *opt,
                         char *errbuf, size_t errlen);
struct store *store_close(struct store *s);
const char *store_errmsg(const struct store *s);

int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);
/* store_begin_read - a read transaction (BEGIN DEFERRED): one consistent
 * view for several reads; end it with store_rollback or store_commit */
int store_begin_read(struct store *s);
/* store_savepoint - a nested point inside the open transaction;
 * store_savepoint_release keeps what was done since, and
 * store_savepoint_rollback undoes it (both end the savepoint) */
int store_savepoint(struct store *s);
int store_savepoint_release(struct store *s);
int store_savepoint_rollback(struct store *s);

/* store_meta_get/put - small engine settings (e.g. "root_pico") */
int store_meta_get(struct store *s, const char *key, char **value);
int store_meta_put(struct store *s, const char *key, const char *value);

/* ---- picos ---- */

struct store_pico {
    char *id;
    char *parent_id;            /* NULL for a root pico */
    char *name;                 /* unique; NULL when unnamed */
    int64_t created_ms;
};
void store_pico_release(struct store_pico *p);

int store_pico_new(struct store *s, const char *id, const char *parent_id,
                   const char *name);
/* store_pico_get - by id, or else by name */
int store_pico_get(struct store *s, const char *id_or_name,
                   struct store_pico *out);
/* store_pico_children - an array of child pico ids (new reference) */
int store_pico_children(struct store *s, const char *id, kval *out);
/* store_pico_list - an array of {id, parent, name} maps, by creation */
int store_pico_list(struct store *s, kval *out);
int64_t store_pico_count(struct store *s);
/* store_pico_delete - the pico and everything it owns (channels,
 * installations, entity variables, event-expression states, schedules);
 * not its children: the caller deletes those first */
int store_pico_delete(struct store *s, const char *id);

/* ---- channels ---- */

struct store_channel {
    char *eci;                  /* lower case */
    char *pico_id;
    kval tags;                  /* array of strings */
    kval event_policy;          /* {allow: [{domain, name}], deny: [...]} */
    kval query_policy;          /* {allow: [{rid, name}], deny: [...]} */
    char *family_pico_id;       /* for family channels: the only pico that
                                   may use it; else NULL */
    char *alias;                /* unique mail alias, or NULL */
    kval senders;               /* array of accepted addresses/domains;
                                   empty: anyone */
    bool require_dkim;
    bool require_dmarc;
};
void store_channel_release(struct store_channel *c);

/* store_channel_put - insert or replace by eci */
int store_channel_put(struct store *s, const struct store_channel *c);
/* store_channel_get - by eci (matched case-insensitively) */
int store_channel_get(struct store *s, const char *eci,
                      struct store_channel *out);
int store_channel_get_by_alias(struct store *s, const char *alias,
                               struct store_channel *out);
/* store_channel_list - an array of channel maps {eci, pico_id, tags,
 * event_policy, query_policy, family_pico_id, alias, senders,
 * require_dkim, require_dmarc} of PICO_ID, by eci */
int store_channel_list(struct store *s, const char *pico_id, kval *out);
/* store_channel_list_family - the same for the family channels PICO_ID
 * may use (its own self channel, its parent's channel to it, its
 * children's channels to it) */
int store_channel_list_family(struct store *s, const char *pico_id,
                              kval *out);
int store_channel_delete(struct store *s, const char *eci);

/* ---- rulesets ---- */

struct store_ruleset {
    char *rid;
    char *hash;                 /* sha256 of the source, hex */
    char *version;              /* meta version, or NULL */
    char *source;               /* the KRL text */
    int64_t registered_ms;
};
void store_ruleset_release(struct store_ruleset *r);

/* store_ruleset_put - register SOURCE as the current version of RID
 * (older versions stay reachable by hash) */
int store_ruleset_put(struct store *s, const char *rid, const char *hash,
                      const char *version, const char *source);
/* store_ruleset_get - the current version of RID */
int store_ruleset_get(struct store *s, const char *rid,
                      struct store_ruleset *out);
int store_ruleset_get_hash(struct store *s, const char *hash,
                           struct store_ruleset *out);
/* store_ruleset_list - an array of {rid, hash, version, registered} maps
 * of the current versions, by rid */
int store_ruleset_list(struct store *s, kval *out);
/* store_ruleset_delete - forget RID (all versions); installed rulesets are
 * the caller's to check first */
int store_ruleset_delete(struct store *s, const char *rid);

/* ---- installations ---- */

/* store_install_put - install RID (at HASH, with CONFIG, a map) on a pico;
 * installing again updates hash and config and keeps the install order */
int store_install_put(struct store *s, const char *pico_id, const char *rid,
                      const char *hash, const kval *config);
int store_install_delete(struct store *s, const char *pico_id,
                         const char *rid);
/* store_install_list - an array of {rid, hash, config} maps in install
 * order */
int store_install_list(struct store *s, const char *pico_id, kval *out);
/* store_install_users - pico ids that have RID installed (array) */
int store_install_users(struct store *s, const char *rid, kval *out);

/* ---- entity variables (pico, rid, name) ---- */

int store_ent_get(struct store *s, const char *pico_id, const char *rid,
                  const char *name, kval *out);
int store_ent_put(struct store *s, const char *pico_id, const char *rid,
                  const char *name, const kval *value);
int store_ent_delete(struct store *s, const char *pico_id, const char *rid,
                     const char *name);
/* store_ent_list - a map name -> value of every variable of (pico, rid) */
int store_ent_list(struct store *s, const char *pico_id, const char *rid,
                   kval *out);
/* store_ent_delete_rid - every variable of (pico, rid) */
int store_ent_delete_rid(struct store *s, const char *pico_id,
                         const char *rid);

/* ---- event-expression state (pico, rid, rule) ---- */

/* store_ee_get - the state saved for HASH (the ruleset version); a state
 * saved for another version is STORE_NOTFOUND */
int store_ee_get(struct store *s, const char *pico_id, const char *rid,
                 const char *rule, const char *hash, kval *out);
int store_ee_put(struct store *s, const char *pico_id, const char *rid,
                 const char *rule, const char *hash, const kval *state);
int store_ee_delete_rid(struct store *s, const char *pico_id,
                        const char *rid);

/* ---- scheduled events ---- */

struct store_schedule {
    char *id;
    char *pico_id;
    char *rid;
    char *type;                 /* "at" or "repeat" */
    int64_t at_ms;              /* "at": when; "repeat": next firing */
    char *timespec;             /* "repeat": the cron text; else NULL */
    kval event;                 /* {eci, domain, name, attrs} */
};
void store_schedule_release(struct store_schedule *sc);

int store_schedule_put(struct store *s, const struct store_schedule *sc);
int store_schedule_delete(struct store *s, const char *id);
/* store_schedule_list - an array of entry maps {id, type, time|timespec,
 * event} of (pico, rid); RID NULL for every rid of the pico */
int store_schedule_list(struct store *s, const char *pico_id,
                        const char *rid, kval *out);
/* store_schedule_next_due - the entry with the smallest at_ms, if any */
int store_schedule_next_due(struct store *s, struct store_schedule *out);

/* ---- event log ---- */

struct store_log_entry {
    const char *eid;
    const char *pico_id;
    int64_t time_ms;
    const char *kind;           /* "event" or "query" */
    const char *domain;         /* event domain, or query rid */
    const char *name;           /* event type, or query name */
    const kval *attrs;          /* event attrs or query args; may be NULL */
    const kval *result;         /* directives or query result; may be NULL */
    const char *result_json;    /* the result already as JSON text, used
                                   instead of RESULT when not NULL */
    const char *error;          /* the error message, or NULL */
};

int store_log_add(struct store *s, const struct store_log_entry *e);
/* store_log_add_many - N entries in their order, as N store_log_add but
 * cheaper (a batch of events logs them together) */
int store_log_add_many(struct store *s, const struct store_log_entry *v,
                       size_t n);
/* store_log_list - the LIMIT most recent entries (of PICO_ID, or all when
 * NULL), newest first in the order they were logged, as maps {eid, pico_id, time, kind, domain, name,
 * attrs, result, error} */
int store_log_list(struct store *s, const char *pico_id, int limit,
                   kval *out);

/* ---- the mail inbox ----
 *
 * A message delivered over LMTP is stored raw once (store_mail_add) and
 * once per recipient as an inbox entry: the event it raises, pending until
 * the engine has processed it.  The engine marks an entry done in the
 * transaction of its event, so an entry is processed exactly once.
 * DEDUPE identifies a delivery (queue id, recipient, message digest): a
 * second delivery of the same one is STORE_DUPLICATE and stores nothing.
 * Attachment contents are kept by their sha256 (once, however often they
 * arrive).
 */

/* store_mail_add - the raw message; *ID its id */
int store_mail_add(struct store *s, const char *raw, size_t len,
                   int64_t *id);
/* store_mail_get - the raw message ID (*RAW malloc'd, *LEN its size) */
int store_mail_get(struct store *s, int64_t id, char **raw, size_t *len);
/* store_attachment_put - keep DATA (LEN bytes, the first bytes of an
 * attachment of SIZE bytes) under SHA256; a known sha256 is left as is */
int store_attachment_put(struct store *s, const char *sha256,
                         const char *content_type, size_t size,
                         const void *data, size_t len);
/* store_attachment_get - {sha256, content_type, size, data (bytes kept,
 * as a string; a lone byte that is not UTF-8 becomes U+FFFD)} */
int store_attachment_get(struct store *s, const char *sha256, kval *out);

struct store_inbox_entry {
    const char *dedupe;         /* unique key of the delivery (hex) */
    int64_t mail_id;            /* store_mail_add's id, or 0 */
    const char *eci;
    const char *domain;
    const char *type;
    const kval *attrs;          /* the event attributes (a map) */
    const char *queue_id;       /* the MTA's, or NULL */
    const char *rcpt;           /* the envelope recipient */
    const char *eid;            /* the id its event will have */
    const char *from_pico;      /* the pico sending it (event:send), which
                                   may use its family channels; or NULL */
};

/* store_inbox_add - a pending entry; *ID its id.  STORE_DUPLICATE (and
 * *ID the first delivery's id) when DEDUPE is already known. */
int store_inbox_add(struct store *s, const struct store_inbox_entry *e,
                    int64_t *id);
/* store_inbox_eid - the event id of entry ID, in OUT (OUTLEN bytes) */
int store_inbox_eid(struct store *s, int64_t id, char *out, size_t outlen);
/* store_inbox_pending - up to LIMIT pending entries with ids above
 * AFTER_ID, oldest first: an array of {id, eid, eci, domain, type, attrs,
 * received, from_pico} */
int store_inbox_pending(struct store *s, int64_t after_id, int limit,
                        kval *out);
/* store_inbox_done - claim pending entry ID as processed (in the
 * transaction of its event); NOTFOUND when it is not pending */
int store_inbox_done(struct store *s, int64_t id);
/* store_inbox_failed - record why the event of claimed entry ID failed */
int store_inbox_failed(struct store *s, int64_t id, const char *error);
/* store_inbox_list - the LIMIT most recent entries, newest first: {id,
 * state ("pending", "done", "failed"), eci, domain, type, rcpt, queue_id,
 * received, eid, error} */
int store_inbox_list(struct store *s, int limit, kval *out);
/* store_inbox_count - entries in STATE ("pending", "done", "failed") */
int64_t store_inbox_count(struct store *s, const char *state);
/* store_inbox_prune - forget entries processed before BEFORE_MS (and so
 * their dedupe keys), then raw messages no entry refers to */
int store_inbox_prune(struct store *s, int64_t before_ms);

/* ---- the outbox ----
 *
 * An outbound effect of an event (KIND "email", "sms", "http", "event")
 * is a pending row added in the event's transaction; the sender takes the
 * due rows after the commit and marks each sent, to retry later, or
 * failed for good.  REQUEST is the kind's own map.
 */

struct store_outbox_entry {
    const char *pico_id;        /* the sending pico, or NULL */
    const char *eci;            /* the channel of the event that sent it */
    const char *eid;            /* that event */
    const char *kind;
    const kval *request;        /* a map */
    const char *rate_key;       /* what rate limits count (e.g. replies
                                   to one sender), or NULL */
    int64_t lifetime_ms;        /* give up after this (0: 5 days) */
    int64_t now_ms;             /* 0: now */
};

int store_outbox_add(struct store *s, const struct store_outbox_entry *e,
                     int64_t *id);
/* store_outbox_recent - rows of PICO_ID with RATE_KEY made since
 * SINCE_MS (-1 on error) */
int64_t store_outbox_recent(struct store *s, const char *pico_id,
                            const char *rate_key, int64_t since_ms);
/* store_outbox_due - up to LIMIT pending rows due at NOW, soonest first:
 * maps {id, pico_id, eci, eid, kind, request, state, attempts, created,
 * next, expires, last_error, result} */
int store_outbox_due(struct store *s, int64_t now, int limit, kval *out);
/* store_outbox_next_due - the earliest next try of a pending row, or -1 */
int64_t store_outbox_next_due(struct store *s);
/* Each NOTFOUND when ID is not pending. */
int store_outbox_sent(struct store *s, int64_t id, const char *result);
int store_outbox_retry(struct store *s, int64_t id, const char *error,
                       int64_t next_ms);
int store_outbox_failed(struct store *s, int64_t id, const char *error);
/* store_outbox_requeue - a failed row pending again, due now (with at
 * least a day to live); NOTFOUND when ID has not failed */
int store_outbox_requeue(struct store *s, int64_t id);
/* store_outbox_list - the LIMIT most recent rows (of PICO_ID, or all) */
int store_outbox_list(struct store *s, const char *pico_id, int limit,
                      kval *out);
int64_t store_outbox_count(struct store *s, const char *state);
/* store_outbox_prune - forget rows sent or failed before BEFORE_MS */
int store_outbox_prune(struct store *s, int64_t before_ms);

#endif
