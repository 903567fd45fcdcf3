/*
 * store_sqlite.c - the SQLite backend of store.h: schema and migrations,
 * the per-connection prepared-statement cache, transactions, and the
 * mapping of SQLite errors to STORE_* codes.  The only file in picomail
 * that includes sqlite3.h.
 *
 * Every statement is a constant text in stmt_sql[] with bound parameters,
 * prepared once per connection on first use and reset after each call, so
 * that no statement keeps a read snapshot open between calls.  Nothing is
 * read at open beyond the schema version: open time does not depend on
 * the size of the database.
 *
 * Integrity is left to SQLite's foreign keys: everything a pico owns
 * references picos(id) ON DELETE CASCADE (one DELETE removes it all,
 * atomically), and parent_id references picos(id) without a cascade, so a
 * pico that still has children cannot be deleted.
 */
#include "picomail/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "picomail/buf.h"
#include "picomail/json.h"
#include "picomail/mem.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000

/*
 * Migrations: migrations[i] takes the schema from version i to i + 1 and
 * ends by setting user_version.  They run in one BEGIN IMMEDIATE
 * transaction, so two processes opening a new file at once cannot both
 * apply them.  Append new versions; never edit a released one.
 */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ") WITHOUT ROWID;"

    /* seq gives creation order, stable across VACUUM */
    "CREATE TABLE picos ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  parent_id TEXT REFERENCES picos(id),"
    "  name TEXT UNIQUE,"
    "  created_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX picos_parent ON picos(parent_id);"

    "CREATE TABLE channels ("
    "  eci TEXT PRIMARY KEY,"
    "  pico_id TEXT NOT NULL REFERENCES picos(id) ON DELETE CASCADE,"
    "  tags TEXT NOT NULL,"
    "  event_policy TEXT,"
    "  query_policy TEXT,"
    "  family_pico_id TEXT,"
    "  alias TEXT UNIQUE,"
    "  senders TEXT NOT NULL,"
    "  require_dkim INTEGER NOT NULL DEFAULT 0,"
    "  require_dmarc INTEGER NOT NULL DEFAULT 0"
    ") WITHOUT ROWID;"
    "CREATE INDEX channels_pico ON channels(pico_id);"

    /* every registered version; sources are large, so a rowid table */
    "CREATE TABLE rulesets ("
    "  seq INTEGER PRIMARY KEY,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  rid TEXT NOT NULL,"
    "  version TEXT,"
    "  source TEXT NOT NULL,"
    "  registered_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX rulesets_rid ON rulesets(rid);"
    "CREATE TABLE ruleset_current ("
    "  rid TEXT PRIMARY KEY,"
    "  hash TEXT NOT NULL REFERENCES rulesets(hash)"
    ") WITHOUT ROWID;"
    "CREATE INDEX ruleset_current_hash ON ruleset_current(hash);"

    "CREATE TABLE installs ("
    "  pico_id TEXT NOT NULL REFERENCES picos(id) ON DELETE CASCADE,"
    "  rid TEXT NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  config TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY (pico_id, rid)"
    ") WITHOUT ROWID;"
    "CREATE INDEX installs_rid ON installs(rid);"

    "CREATE TABLE entvars ("
    "  pico_id TEXT NOT NULL REFERENCES picos(id) ON DELETE CASCADE,"
    "  rid TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (pico_id, rid, name)"
    ") WITHOUT ROWID;"

    "CREATE TABLE ee_state ("
    "  pico_id TEXT NOT NULL REFERENCES picos(id) ON DELETE CASCADE,"
    "  rid TEXT NOT NULL,"
    "  rule TEXT NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  PRIMARY KEY (pico_id, rid, rule)"
    ") WITHOUT ROWID;"

    "CREATE TABLE schedules ("
    "  id TEXT PRIMARY KEY,"
    "  pico_id TEXT NOT NULL REFERENCES picos(id) ON DELETE CASCADE,"
    "  rid TEXT NOT NULL,"
    "  type TEXT NOT NULL CHECK (type IN ('at', 'repeat')),"
    "  at_ms INTEGER NOT NULL,"
    "  timespec TEXT,"
    "  event TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX schedules_at ON schedules(at_ms);"
    "CREATE INDEX schedules_pico ON schedules(pico_id, rid);"

    /* not owned by the pico: the log outlives it */
    "CREATE TABLE event_log ("
    "  seq INTEGER PRIMARY KEY,"
    "  eid TEXT NOT NULL,"
    "  pico_id TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('event', 'query')),"
    "  domain TEXT,"
    "  name TEXT,"
    "  attrs TEXT,"
    "  result TEXT,"
    "  error TEXT"
    ");"
    "CREATE INDEX event_log_pico ON event_log(pico_id, time_ms);"
    "CREATE INDEX event_log_time ON event_log(time_ms);"

    "PRAGMA user_version = 1;",

    /* 1 -> 2: the log is read newest first by insertion order, so one
       index on (pico_id, seq) serves both listings and each event writes
       one index entry instead of two */
    "DROP INDEX event_log_pico;"
    "DROP INDEX event_log_time;"
    "CREATE INDEX event_log_pico_seq ON event_log(pico_id, seq);"
    "PRAGMA user_version = 2;",

    /* 2 -> 3: the mail inbox.  A raw message is stored once; each of its
       recipients is an inbox entry, pending until the engine marks it in
       its event's transaction.  The partial index makes finding pending
       entries cost nothing however many processed ones are kept. */
    "CREATE TABLE mail_messages ("
    "  id INTEGER PRIMARY KEY,"
    "  received_ms INTEGER NOT NULL,"
    "  raw BLOB NOT NULL"
    ");"
    "CREATE TABLE inbox ("
    "  id INTEGER PRIMARY KEY,"
    "  dedupe TEXT NOT NULL UNIQUE,"
    "  mail_id INTEGER REFERENCES mail_messages(id) ON DELETE SET NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  eci TEXT NOT NULL,"
    "  domain TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  attrs TEXT NOT NULL,"
    "  queue_id TEXT,"
    "  rcpt TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending',"
    "  eid TEXT,"
    "  error TEXT,"
    "  done_ms INTEGER"
    ");"
    "CREATE INDEX inbox_pending ON inbox(id) WHERE state = 'pending';"
    "CREATE INDEX inbox_done ON inbox(done_ms) WHERE state <> 'pending';"
    "CREATE INDEX inbox_mail ON inbox(mail_id);"
    "CREATE TABLE attachments ("
    "  sha256 TEXT PRIMARY KEY,"
    "  content_type TEXT,"
    "  size INTEGER NOT NULL,"
    "  data BLOB NOT NULL"
    ") WITHOUT ROWID;"
    "PRAGMA user_version = 3;",

    /* 3 -> 4: the outbox.  Every outbound effect of an event (mail, SMS,
       HTTP, an event for another daemon) is a row committed with the
       event; the sender works through the due ones.  The partial index
       keeps finding due rows cheap however many old ones are kept. */
    "CREATE TABLE outbox ("
    "  id INTEGER PRIMARY KEY,"
    "  pico_id TEXT,"
    "  eci TEXT,"
    "  eid TEXT,"
    "  kind TEXT NOT NULL,"
    "  request TEXT NOT NULL,"
    "  rate_key TEXT,"
    "  state TEXT NOT NULL DEFAULT 'pending',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  next_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  last_error TEXT,"
    "  result TEXT,"
    "  done_ms INTEGER"
    ");"
    "CREATE INDEX outbox_due ON outbox(next_ms) WHERE state = 'pending';"
    /* picos find the family channels they may use (ctx:parent,
       ctx:children) by family_pico_id */
    "CREATE INDEX channels_family ON channels(family_pico_id);"
    /* the pico that sent an event with event:send, which may use its
       family channels */
    "ALTER TABLE inbox ADD COLUMN from_pico TEXT;"
    "CREATE INDEX outbox_pico ON outbox(pico_id, id);"
    "CREATE INDEX outbox_rate ON outbox(pico_id, rate_key, created_ms) "
    "WHERE rate_key IS NOT NULL;"
    "CREATE INDEX outbox_done ON outbox(done_ms) WHERE state <> 'pending';"
    "PRAGMA user_version = 4;"
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_BEGIN_READ,
    ST_RULE_SAVEPOINT,
    ST_RULE_RELEASE,
    ST_RULE_ROLLBACK_TO,
    ST_META_GET,
    ST_META_PUT,
    ST_PICO_NEW,
    ST_PICO_GET_ID,
    ST_PICO_GET_NAME,
    ST_PICO_CHILDREN,
    ST_PICO_LIST,
    ST_PICO_COUNT,
    ST_PICO_DELETE,
    ST_CHAN_PUT,
    ST_CHAN_GET,
    ST_CHAN_GET_ALIAS,
    ST_CHAN_LIST,
    ST_CHAN_LIST_FAMILY,
    ST_CHAN_DELETE,
    ST_RS_RID_OF_HASH,
    ST_RS_INSERT,
    ST_RS_SET_CURRENT,
    ST_RS_GET,
    ST_RS_GET_HASH,
    ST_RS_LIST,
    ST_RS_DEL_CURRENT,
    ST_RS_DEL_VERSIONS,
    ST_INST_PUT,
    ST_INST_DELETE,
    ST_INST_LIST,
    ST_INST_USERS,
    ST_ENT_GET,
    ST_ENT_PUT,
    ST_ENT_DELETE,
    ST_ENT_LIST,
    ST_ENT_DELETE_RID,
    ST_EE_GET,
    ST_EE_PUT,
    ST_EE_DELETE_RID,
    ST_SCHED_PUT,
    ST_SCHED_DELETE,
    ST_SCHED_LIST_RID,
    ST_SCHED_LIST_PICO,
    ST_SCHED_NEXT,
    ST_LOG_ADD,
    ST_LOG_ADD_MANY,
    ST_LOG_LIST_PICO,
    ST_LOG_LIST_ALL,
    ST_MAIL_ADD,
    ST_MAIL_GET,
    ST_ATT_PUT,
    ST_ATT_GET,
    ST_INBOX_ADD,
    ST_INBOX_FIND,
    ST_INBOX_EID,
    ST_INBOX_PENDING,
    ST_INBOX_DONE,
    ST_INBOX_FAILED,
    ST_INBOX_LIST,
    ST_INBOX_COUNT,
    ST_INBOX_PRUNE,
    ST_MAIL_PRUNE,
    ST_OUT_ADD,
    ST_OUT_RECENT,
    ST_OUT_DUE,
    ST_OUT_NEXT,
    ST_OUT_SENT,
    ST_OUT_RETRY,
    ST_OUT_FAILED,
    ST_OUT_REQUEUE,
    ST_OUT_LIST,
    ST_OUT_LIST_PICO,
    ST_OUT_COUNT,
    ST_OUT_PRUNE,
    ST__COUNT
};

#define CHAN_COLS                                                           \
    "eci, pico_id, tags, event_policy, query_policy, family_pico_id, "     \
    "alias, senders, require_dkim, require_dmarc"
#define SCHED_COLS "id, pico_id, rid, type, at_ms, timespec, event"
#define OUT_COLS                                                            \
    "id, pico_id, eci, eid, kind, request, state, attempts, created_ms, "  \
    "next_ms, expires_ms, last_error, result, done_ms"
#define LOG_COLS                                                            \
    "eid, pico_id, time_ms, kind, domain, name, attrs, result, error"
/* ST_LOG_ADD_MANY inserts LOG_CHUNK rows at once: one statement run for
 * many rows is a third cheaper per row than a run for each */
#define LOG_CHUNK 32
#define LOG_ROW "(?,?,?,?,?,?,?,?,?)"
#define LOG_ROWS4 LOG_ROW "," LOG_ROW "," LOG_ROW "," LOG_ROW
#define LOG_ROWS32                                                          \
    LOG_ROWS4 "," LOG_ROWS4 "," LOG_ROWS4 "," LOG_ROWS4 ","                \
    LOG_ROWS4 "," LOG_ROWS4 "," LOG_ROWS4 "," LOG_ROWS4

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT store_op",
    [ST_RELEASE] = "RELEASE store_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO store_op",
    [ST_BEGIN_READ] = "BEGIN DEFERRED",
    [ST_RULE_SAVEPOINT] = "SAVEPOINT store_user",
    [ST_RULE_RELEASE] = "RELEASE store_user",
    [ST_RULE_ROLLBACK_TO] = "ROLLBACK TO store_user",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_PUT] =
        "INSERT INTO meta (key, value) VALUES (?1, ?2) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_PICO_NEW] =
        "INSERT INTO picos (id, parent_id, name, created_ms) "
        "VALUES (?1, ?2, ?3, ?4)",
    [ST_PICO_GET_ID] =
        "SELECT id, parent_id, name, created_ms FROM picos WHERE id = ?1",
    [ST_PICO_GET_NAME] =
        "SELECT id, parent_id, name, created_ms FROM picos WHERE name = ?1",
    [ST_PICO_CHILDREN] =
        "SELECT id FROM picos WHERE parent_id = ?1 ORDER BY seq",
    [ST_PICO_LIST] = "SELECT id, parent_id, name FROM picos ORDER BY seq",
    [ST_PICO_COUNT] = "SELECT count(*) FROM picos",
    [ST_PICO_DELETE] = "DELETE FROM picos WHERE id = ?1",
    [ST_CHAN_PUT] =
        "INSERT INTO channels (" CHAN_COLS ") "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
        /* an upsert on eci only: OR REPLACE would silently delete another
         * channel holding the same alias */
        "ON CONFLICT (eci) DO UPDATE SET pico_id = excluded.pico_id, "
        "tags = excluded.tags, event_policy = excluded.event_policy, "
        "query_policy = excluded.query_policy, "
        "family_pico_id = excluded.family_pico_id, alias = excluded.alias, "
        "senders = excluded.senders, require_dkim = excluded.require_dkim, "
        "require_dmarc = excluded.require_dmarc",
    [ST_CHAN_GET] = "SELECT " CHAN_COLS " FROM channels WHERE eci = ?1",
    [ST_CHAN_GET_ALIAS] =
        "SELECT " CHAN_COLS " FROM channels WHERE alias = ?1",
    [ST_CHAN_LIST] =
        "SELECT " CHAN_COLS " FROM channels WHERE pico_id = ?1 ORDER BY eci",
    [ST_CHAN_LIST_FAMILY] =
        "SELECT " CHAN_COLS " FROM channels WHERE family_pico_id = ?1 "
        "ORDER BY eci",
    [ST_CHAN_DELETE] = "DELETE FROM channels WHERE eci = ?1",
    [ST_RS_RID_OF_HASH] = "SELECT rid FROM rulesets WHERE hash = ?1",
    [ST_RS_INSERT] =
        "INSERT INTO rulesets (hash, rid, version, source, registered_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_RS_SET_CURRENT] =
        "INSERT INTO ruleset_current (rid, hash) VALUES (?1, ?2) "
        "ON CONFLICT (rid) DO UPDATE SET hash = excluded.hash",
    [ST_RS_GET] =
        "SELECT r.rid, r.hash, r.version, r.source, r.registered_ms "
        "FROM ruleset_current c JOIN rulesets r ON r.hash = c.hash "
        "WHERE c.rid = ?1",
    [ST_RS_GET_HASH] =
        "SELECT rid, hash, version, source, registered_ms FROM rulesets "
        "WHERE hash = ?1",
    [ST_RS_LIST] =
        "SELECT c.rid, r.hash, r.version, r.registered_ms "
        "FROM ruleset_current c JOIN rulesets r ON r.hash = c.hash "
        "ORDER BY c.rid",
    [ST_RS_DEL_CURRENT] = "DELETE FROM ruleset_current WHERE rid = ?1",
    [ST_RS_DEL_VERSIONS] = "DELETE FROM rulesets WHERE rid = ?1",
    [ST_INST_PUT] =
        "INSERT INTO installs (pico_id, rid, hash, config, seq) "
        "VALUES (?1, ?2, ?3, ?4, (SELECT coalesce(max(seq), 0) + 1 "
        "FROM installs WHERE pico_id = ?1)) "
        "ON CONFLICT (pico_id, rid) DO UPDATE SET hash = excluded.hash, "
        "config = excluded.config",
    [ST_INST_DELETE] = "DELETE FROM installs WHERE pico_id = ?1 AND rid = ?2",
    [ST_INST_LIST] =
        "SELECT rid, hash, config FROM installs WHERE pico_id = ?1 "
        "ORDER BY seq",
    [ST_INST_USERS] =
        "SELECT pico_id FROM installs WHERE rid = ?1 ORDER BY pico_id",
    [ST_ENT_GET] =
        "SELECT value FROM entvars "
        "WHERE pico_id = ?1 AND rid = ?2 AND name = ?3",
    [ST_ENT_PUT] =
        "INSERT INTO entvars (pico_id, rid, name, value) "
        "VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (pico_id, rid, name) DO UPDATE SET value = excluded.value",
    [ST_ENT_DELETE] =
        "DELETE FROM entvars WHERE pico_id = ?1 AND rid = ?2 AND name = ?3",
    [ST_ENT_LIST] =
        "SELECT name, value FROM entvars WHERE pico_id = ?1 AND rid = ?2 "
        "ORDER BY name",
    [ST_ENT_DELETE_RID] =
        "DELETE FROM entvars WHERE pico_id = ?1 AND rid = ?2",
    [ST_EE_GET] =
        "SELECT state FROM ee_state "
        "WHERE pico_id = ?1 AND rid = ?2 AND rule = ?3 AND hash = ?4",
    [ST_EE_PUT] =
        "INSERT INTO ee_state (pico_id, rid, rule, hash, state) "
        "VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (pico_id, rid, rule) DO UPDATE SET hash = excluded.hash, "
        "state = excluded.state",
    [ST_EE_DELETE_RID] =
        "DELETE FROM ee_state WHERE pico_id = ?1 AND rid = ?2",
    [ST_SCHED_PUT] =
        "INSERT INTO schedules (" SCHED_COLS ") "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
        "ON CONFLICT (id) DO UPDATE SET pico_id = excluded.pico_id, "
        "rid = excluded.rid, type = excluded.type, at_ms = excluded.at_ms, "
        "timespec = excluded.timespec, event = excluded.event",
    [ST_SCHED_DELETE] = "DELETE FROM schedules WHERE id = ?1",
    [ST_SCHED_LIST_RID] =
        "SELECT " SCHED_COLS " FROM schedules "
        "WHERE pico_id = ?1 AND rid = ?2 ORDER BY at_ms, id",
    [ST_SCHED_LIST_PICO] =
        "SELECT " SCHED_COLS " FROM schedules "
        "WHERE pico_id = ?1 ORDER BY at_ms, id",
    [ST_SCHED_NEXT] =
        "SELECT " SCHED_COLS " FROM schedules ORDER BY at_ms, id LIMIT 1",
    [ST_LOG_ADD] =
        "INSERT INTO event_log (" LOG_COLS ") "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_LOG_ADD_MANY] =
        "INSERT INTO event_log (" LOG_COLS ") VALUES " LOG_ROWS32,
    [ST_LOG_LIST_PICO] =
        "SELECT " LOG_COLS " FROM event_log WHERE pico_id = ?1 "
        "ORDER BY seq DESC LIMIT ?2",
    [ST_LOG_LIST_ALL] =
        "SELECT " LOG_COLS " FROM event_log "
        "ORDER BY seq DESC LIMIT ?1",
    [ST_MAIL_ADD] =
        "INSERT INTO mail_messages (received_ms, raw) VALUES (?1, ?2)",
    [ST_MAIL_GET] = "SELECT raw FROM mail_messages WHERE id = ?1",
    [ST_ATT_PUT] =
        "INSERT INTO attachments (sha256, content_type, size, data) "
        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (sha256) DO NOTHING",
    [ST_ATT_GET] =
        "SELECT content_type, size, data FROM attachments WHERE sha256 = ?1",
    [ST_INBOX_ADD] =
        "INSERT INTO inbox (dedupe, mail_id, received_ms, eci, domain, type, "
        "attrs, queue_id, rcpt, eid, from_pico) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
        "ON CONFLICT (dedupe) DO NOTHING",
    [ST_INBOX_FIND] = "SELECT id FROM inbox WHERE dedupe = ?1",
    [ST_INBOX_EID] = "SELECT eid FROM inbox WHERE id = ?1",
    [ST_INBOX_PENDING] =
        "SELECT id, eci, domain, type, attrs, received_ms, eid, from_pico "
        "FROM inbox "
        "WHERE state = 'pending' AND id > ?1 ORDER BY id LIMIT ?2",
    [ST_INBOX_DONE] =
        "UPDATE inbox SET state = 'done', done_ms = ?2 "
        "WHERE id = ?1 AND state = 'pending'",
    [ST_INBOX_FAILED] =
        "UPDATE inbox SET state = 'failed', error = ?2 WHERE id = ?1",
    [ST_INBOX_LIST] =
        "SELECT id, state, eci, domain, type, rcpt, queue_id, received_ms, "
        "eid, error FROM inbox ORDER BY id DESC LIMIT ?1",
    [ST_INBOX_COUNT] = "SELECT count(*) FROM inbox WHERE state = ?1",
    [ST_INBOX_PRUNE] =
        "DELETE FROM inbox WHERE state <> 'pending' AND done_ms < ?1",
    [ST_MAIL_PRUNE] =
        "DELETE FROM mail_messages WHERE received_ms < ?1 AND NOT EXISTS "
        "(SELECT 1 FROM inbox WHERE inbox.mail_id = mail_messages.id)",
    [ST_OUT_ADD] =
        "INSERT INTO outbox (pico_id, eci, eid, kind, request, created_ms, "
        "next_ms, expires_ms, rate_key) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
    [ST_OUT_RECENT] =
        "SELECT count(*) FROM outbox WHERE pico_id = ?1 AND rate_key = ?2 "
        "AND created_ms >= ?3",
    [ST_OUT_DUE] =
        "SELECT " OUT_COLS " FROM outbox WHERE state = 'pending' "
        "AND next_ms <= ?1 ORDER BY next_ms, id LIMIT ?2",
    [ST_OUT_NEXT] =
        "SELECT min(next_ms) FROM outbox WHERE state = 'pending'",
    [ST_OUT_SENT] =
        "UPDATE outbox SET state = 'sent', attempts = attempts + 1, "
        "result = ?2, last_error = NULL, done_ms = ?3 "
        "WHERE id = ?1 AND state = 'pending'",
    [ST_OUT_RETRY] =
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, "
        "next_ms = ?3 WHERE id = ?1 AND state = 'pending'",
    [ST_OUT_FAILED] =
        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, "
        "last_error = ?2, done_ms = ?3 WHERE id = ?1 AND state = 'pending'",
    [ST_OUT_REQUEUE] =
        "UPDATE outbox SET state = 'pending', next_ms = ?2, done_ms = NULL, "
        "expires_ms = max(expires_ms, ?3) WHERE id = ?1 AND state = 'failed'",
    [ST_OUT_LIST] =
        "SELECT " OUT_COLS " FROM outbox ORDER BY id DESC LIMIT ?1",
    [ST_OUT_LIST_PICO] =
        "SELECT " OUT_COLS " FROM outbox WHERE pico_id = ?1 "
        "ORDER BY id DESC LIMIT ?2",
    [ST_OUT_COUNT] = "SELECT count(*) FROM outbox WHERE state = ?1",
    [ST_OUT_PRUNE] =
        "DELETE FROM outbox WHERE state <> 'pending' AND done_ms < ?1",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];    /* prepared on first use */
    pthread_mutex_t *gate;          /* store_options.write_gate */
    bool gated;                     /* holding GATE */
    char err[256];
};

/* ---- errors ---- */

static void
set_msg(struct store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_msg(struct store *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

/* fail - record why WHAT failed with SQLite code RC and map RC to a
 * STORE_* code */
static int
fail(struct store *s, int rc, const char *what)
{
    const char *hint = "";

    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        hint = " (no such pico, or a pico that still has children)";
    set_msg(s, "%s: %s%s", what, sqlite3_errmsg(s->db), hint);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
        return STORE_EINVAL;
    default:
        return STORE_ERROR;
    }
}

static int
einval(struct store *s, const char *what, const char *why)
{
    set_msg(s, "%s: %s", what, why);
    return STORE_EINVAL;
}

/* ---- statements ---- */

static int
prep(struct store *s, enum stmt_id id, sqlite3_stmt **out)
{
    int rc;

    if (s->st[id] == NULL) {
        rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1,
                                SQLITE_PREPARE_PERSISTENT, &s->st[id], NULL);
        if (rc != SQLITE_OK) {
            s->st[id] = NULL;
            return fail(s, rc, "prepare");
        }
    }
    *out = s->st[id];
    return 0;
}

/* done - make ST reusable and drop its read snapshot and bound pointers */
static void
done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Binders keep the first error in *RC so a run of binds is checked once.
 * Text is bound SQLITE_STATIC: the caller keeps it alive until done(). */
static void
bind_str(sqlite3_stmt *st, int i, const char *v, int *rc)
{
    if (*rc != SQLITE_OK)
        return;
    *rc = v != NULL ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC)
                    : sqlite3_bind_null(st, i);
}

static void
bind_buf(sqlite3_stmt *st, int i, const struct buf *b, int *rc)
{
    if (*rc != SQLITE_OK)
        return;
    *rc = sqlite3_bind_text64(st, i, b->data, b->len, SQLITE_STATIC,
                              SQLITE_UTF8);
}

static void
bind_i64(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
    if (*rc != SQLITE_OK)
        return;
    *rc = sqlite3_bind_int64(st, i, v);
}

/* run - step a statement that returns no rows */
static int
run(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : fail(s, rc, what);

    done(st);
    return ret;
}

/* run_one - run a statement that changes at most one row; NOTFOUND when it
 * changed none */
static int
run_one(struct store *s, sqlite3_stmt *st, const char *what)
{
    int ret = run(s, st, what);

    if (ret == 0 && sqlite3_changes(s->db) == 0) {
        set_msg(s, "%s: not found", what);
        ret = STORE_NOTFOUND;
    }
    return ret;
}

/* simple - a statement without parameters (transaction control) */
static int
simple(struct store *s, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st;
    int ret = prep(s, id, &st);

    return ret != 0 ? ret : run(s, st, what);
}

/* ---- values ---- */

/* lone_surrogate - true when JSON text holds a \uD800-\uDFFF escape:
 * json.c prints a lone surrogate that way (paired ones are raw UTF-8) and
 * jansson refuses to read it back, so it must not be stored */
static bool
lone_surrogate(const struct buf *b)
{
    const char *p = b->data, *end = b->data + b->len;

    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p >= 4 && p[1] == 'u' && (p[2] == 'd' || p[2] == 'D') &&
            p[3] != '\0' && strchr("89abcdefABCDEF", p[3]) != NULL)
            return true;
        p += 2;                 /* skip the escaped character */
        if (p >= end)
            break;
    }
    return false;
}

/* encode - V as JSON text in B (initialised by the caller) */
static int
encode(struct store *s, const kval *v, struct buf *b, const char *what)
{
    if (json_encode(v, JSON_DATA, 0, b) < 0)
        return einval(s, what, "a function, regexp or error cannot be stored");
    if (lone_surrogate(b))
        return einval(s, what, "a string with a lone surrogate cannot be "
                      "stored");
    return 0;
}

/* col_json - column I parsed as JSON; SQL NULL gives null */
static int
col_json(struct store *s, sqlite3_stmt *st, int i, kval *out,
         const char *what)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    kval v;

    if (t == NULL) {
        *out = kval_null();
        return 0;
    }
    v = json_parse(t, (size_t)sqlite3_column_bytes(st, i));
    if (kval_is_error(&v)) {
        set_msg(s, "%s: bad JSON in column %s: %s", what,
                sqlite3_column_name(st, i), kval_error_msg(&v));
        kval_free(v);
        *out = kval_null();
        return STORE_ERROR;
    }
    *out = v;
    return 0;
}

/* col_dup - column I as a new C string, NULL for SQL NULL */
static char *
col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    return t != NULL ? xmemdup(t, (size_t)sqlite3_column_bytes(st, i))
                     : NULL;
}

/* col_kstr - column I as a string value, null for SQL NULL */
static kval
col_kstr(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);

    return t != NULL ? kval_str(t, (size_t)sqlite3_column_bytes(st, i))
                     : kval_null();
}

/* lower_dup - ASCII lower-case copy: ECIs and aliases match
 * case-insensitively, whatever lower() does in this SQLite build */
static char *
lower_dup(const char *s)
{
    char *d = xstrdup(s), *p;

    for (p = d; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* gate_release - let the next connection of this process write */
static void
gate_release(struct store *s)
{
    if (s->gated) {
        s->gated = false;
        pthread_mutex_unlock(s->gate);
    }
}

/* ---- atomic multi-statement operations ---- */

/* op_begin - its own write transaction in autocommit mode, else a
 * savepoint inside the caller's transaction; *OWN says which */
static int
op_begin(struct store *s, bool *own)
{
    *own = sqlite3_get_autocommit(s->db) != 0;
    return *own ? store_begin(s) : simple(s, ST_SAVEPOINT, "begin");
}

/* op_end - commit or undo the operation; returns RET, or the commit's
 * failure */
static int
op_end(struct store *s, bool own, int ret)
{
    char saved[sizeof s->err];
    int rc;

    if (ret == 0) {
        rc = own ? store_commit(s) : simple(s, ST_RELEASE, "commit");
        if (rc == 0)
            return 0;
        ret = rc;
    }
    /* keep the first error's message, not the rollback's */
    memcpy(saved, s->err, sizeof saved);
    if (own) {
        store_rollback(s);
    } else if (simple(s, ST_ROLLBACK_TO, "rollback") == 0) {
        simple(s, ST_RELEASE, "rollback");
    }
    memcpy(s->err, saved, sizeof saved);
    return ret;
}

/* ---- open and close ---- */

static int
user_version(struct store *s, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);

    if (rc != SQLITE_OK)
        return fail(s, rc, "read schema version");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        rc = fail(s, rc, "read schema version");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc;
}

static int
migrate(struct store *s)
{
    int v, ret, rc;

    ret = user_version(s, &v);
    if (ret == 0 && v == SCHEMA_VERSION)
        return 0;               /* the usual case: no write lock taken */
    if (ret == 0 && v > SCHEMA_VERSION) {
        set_msg(s, "database schema version %d is newer than this "
                "program's (%d)", v, SCHEMA_VERSION);
        return STORE_ERROR;
    }
    if (ret != 0)
        return ret;
    rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc, "begin migration");
    /* another process may have migrated while we waited for the lock */
    ret = user_version(s, &v);
    for (; ret == 0 && v < SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            ret = fail(s, rc, "migrate schema");
    }
    if (ret == 0) {
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            ret = fail(s, rc, "commit migration");
    }
    if (ret != 0 && sqlite3_get_autocommit(s->db) == 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

/* setup - connection settings, then the schema */
static int
setup(struct store *s, const struct store_options *opt)
{
    int timeout = DEFAULT_BUSY_TIMEOUT_MS, rc;
    bool full = true;
    sqlite3_stmt *st;
    const char *mode;

    /* a zeroed options struct keeps the default timeout: waiting 0 ms
     * would turn every concurrent write into a temporary failure */
    if (opt != NULL) {
        if (opt->busy_timeout_ms > 0)
            timeout = opt->busy_timeout_ms;
        full = opt->synchronous_full;
        s->gate = opt->write_gate;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, timeout);

    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st,
                            NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc, "set WAL mode");
    /* several processes opening a new file at once: switching it to WAL
     * needs an exclusive lock, and SQLite answers BUSY at once (without
     * the busy handler) where waiting could deadlock, so wait here */
    for (int waited = 0;; waited += 10) {
        rc = sqlite3_step(st);
        if ((rc & 0xff) != SQLITE_BUSY || waited >= timeout)
            break;
        sqlite3_reset(st);
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (rc != SQLITE_ROW) {
        rc = fail(s, rc, "set WAL mode");
        sqlite3_finalize(st);
        return rc;
    }
    mode = (const char *)sqlite3_column_text(st, 0);
    /* an in-memory database reports "memory" and needs no WAL */
    if (mode == NULL ||
        (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
        set_msg(s, "cannot use WAL mode (journal mode is %s)",
                mode != NULL ? mode : "unknown");
        sqlite3_finalize(st);
        return STORE_ERROR;
    }
    sqlite3_finalize(st);

    rc = sqlite3_exec(s->db, full ? "PRAGMA synchronous = FULL"
                                  : "PRAGMA synchronous = NORMAL",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL,
                          NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc, "set pragmas");
    return migrate(s);
}

struct store *
store_open(const char *path, const struct store_options *opt, char *errbuf,
           size_t errlen)
{
    struct store *s;
    int rc;

    s = xcalloc(1, sizeof *s);
    if (path == NULL) {
        set_msg(s, "no database path");
        goto fail;
    }
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        set_msg(s, "%s: %s", path,
                s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    if (setup(s, opt) != 0) {
        char why[sizeof s->err];

        memcpy(why, s->err, sizeof why);
        set_msg(s, "%s: %s", path, why);
        goto fail;
    }
    return s;

fail:
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s", s->err);
    store_close(s);
    return NULL;
}

struct store *
store_close(struct store *s)
{
    int i;

    if (s == NULL)
        return NULL;
    for (i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    /* an open transaction is rolled back by the close */
    sqlite3_close(s->db);
    gate_release(s);
    free(s);
    return NULL;
}

const char *
store_errmsg(const struct store *s)
{
    return s != NULL ? s->err : "no store";
}

/* ---- transactions ---- */

int
store_begin(struct store *s)
{
    int ret;

    if (sqlite3_get_autocommit(s->db) == 0)
        return einval(s, "begin", "a transaction is already open");
    if (s->gate != NULL) {
        pthread_mutex_lock(s->gate);
        s->gated = true;
    }
    if ((ret = simple(s, ST_BEGIN, "begin")) != 0)
        gate_release(s);
    return ret;
}

int
store_commit(struct store *s)
{
    if (sqlite3_get_autocommit(s->db) != 0)
        return einval(s, "commit", "no transaction is open");
    /* on STORE_BUSY the transaction stays open: retry or roll back */
    int ret = simple(s, ST_COMMIT, "commit");
    if (sqlite3_get_autocommit(s->db) != 0)
        gate_release(s);
    return ret;
}

int
store_rollback(struct store *s)
{
    /* SQLite itself rolls back on some errors (disk full, I/O): rolling
     * back what is already gone is not an error */
    int ret = 0;
    if (sqlite3_get_autocommit(s->db) == 0)
        ret = simple(s, ST_ROLLBACK, "rollback");
    gate_release(s);
    return ret;
}

int
store_begin_read(struct store *s)
{
    if (sqlite3_get_autocommit(s->db) == 0)
        return einval(s, "begin", "a transaction is already open");
    return simple(s, ST_BEGIN_READ, "begin");
}

/* The caller's savepoints are named apart from the ones the store takes
 * for its own multi-statement writes, so the two never meet. */
int
store_savepoint(struct store *s)
{
    if (sqlite3_get_autocommit(s->db) != 0)
        return einval(s, "savepoint", "no transaction is open");
    return simple(s, ST_RULE_SAVEPOINT, "savepoint");
}

int
store_savepoint_release(struct store *s)
{
    return simple(s, ST_RULE_RELEASE, "release");
}

int
store_savepoint_rollback(struct store *s)
{
    /* ROLLBACK TO keeps the savepoint open: release it too */
    int rc = simple(s, ST_RULE_ROLLBACK_TO, "rollback to");
    if (rc != STORE_OK)
        return rc;
    return simple(s, ST_RULE_RELEASE, "release");
}

/* ---- meta ---- */

int
store_meta_get(struct store *s, const char *key, char **value)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *value = NULL;
    if (key == NULL)
        return einval(s, "meta get", "no key");
    if ((ret = prep(s, ST_META_GET, &st)) != 0)
        return ret;
    bind_str(st, 1, key, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = col_dup(st, 0);
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "meta get: no key %s", key);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, "meta get");
    }
    done(st);
    return ret;
}

int
store_meta_put(struct store *s, const char *key, const char *value)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if (key == NULL || value == NULL)
        return einval(s, "meta put", "no key or value");
    if ((ret = prep(s, ST_META_PUT, &st)) != 0)
        return ret;
    bind_str(st, 1, key, &rc);
    bind_str(st, 2, value, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, "meta put");
    }
    return run(s, st, "meta put");
}

/* ---- picos ---- */

void
store_pico_release(struct store_pico *p)
{
    if (p == NULL)
        return;
    free(p->id);
    free(p->parent_id);
    free(p->name);
    memset(p, 0, sizeof *p);
}

int
store_pico_new(struct store *s, const char *id, const char *parent_id,
               const char *name)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if (id == NULL || *id == '\0')
        return einval(s, "pico new", "no id");
    if ((ret = prep(s, ST_PICO_NEW, &st)) != 0)
        return ret;
    bind_str(st, 1, id, &rc);
    bind_str(st, 2, parent_id, &rc);
    bind_str(st, 3, name, &rc);
    bind_i64(st, 4, now_ms(), &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, "pico new");
    }
    return run(s, st, "pico new");
}

/* pico_get_by - one row of ST_PICO_GET_ID or ST_PICO_GET_NAME */
static int
pico_get_by(struct store *s, enum stmt_id id, const char *key,
            struct store_pico *out)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if ((ret = prep(s, id, &st)) != 0)
        return ret;
    bind_str(st, 1, key, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->id = col_dup(st, 0);
        out->parent_id = col_dup(st, 1);
        out->name = col_dup(st, 2);
        out->created_ms = sqlite3_column_int64(st, 3);
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "pico get: no pico %s", key);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, "pico get");
    }
    done(st);
    return ret;
}

int
store_pico_get(struct store *s, const char *id_or_name,
               struct store_pico *out)
{
    int ret;

    memset(out, 0, sizeof *out);
    if (id_or_name == NULL)
        return einval(s, "pico get", "no id");
    ret = pico_get_by(s, ST_PICO_GET_ID, id_or_name, out);
    if (ret == STORE_NOTFOUND)
        ret = pico_get_by(s, ST_PICO_GET_NAME, id_or_name, out);
    return ret;
}

/* string_column_list - column 0 of every row of ST (bound by the caller)
 * as an array of strings */
static int
string_column_list(struct store *s, sqlite3_stmt *st, kval *out,
                   const char *what)
{
    kval arr = kval_array();
    int rc, ret = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        arr = kval_array_append(arr, col_kstr(st, 0));
    if (rc != SQLITE_DONE) {
        ret = fail(s, rc, what);
        kval_free(arr);
        arr = kval_null();
    }
    done(st);
    *out = arr;
    return ret;
}

int
store_pico_children(struct store *s, const char *id, kval *out)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (id == NULL)
        return einval(s, "pico children", "no id");
    if ((ret = prep(s, ST_PICO_CHILDREN, &st)) != 0)
        return ret;
    bind_str(st, 1, id, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, "pico children");
    }
    return string_column_list(s, st, out, "pico children");
}

int
store_pico_list(struct store *s, kval *out)
{
    sqlite3_stmt *st;
    kval arr, m;
    int ret, rc;

    *out = kval_null();
    if ((ret = prep(s, ST_PICO_LIST, &st)) != 0)
        return ret;
    arr = kval_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m = kval_map_put_str(kval_map(), "id", col_kstr(st, 0));
        m = kval_map_put_str(m, "parent", col_kstr(st, 1));
        m = kval_map_put_str(m, "name", col_kstr(st, 2));
        arr = kval_array_append(arr, m);
    }
    if (rc != SQLITE_DONE) {
        ret = fail(s, rc, "pico list");
        kval_free(arr);
        arr = kval_null();
    }
    done(st);
    *out = arr;
    return ret;
}

int64_t
store_pico_count(struct store *s)
{
    sqlite3_stmt *st;
    int64_t n;
    int ret, rc;

    if ((ret = prep(s, ST_PICO_COUNT, &st)) != 0)
        return ret;
    rc = sqlite3_step(st);
    n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                         : fail(s, rc, "pico count");
    done(st);
    return n;
}

int
store_pico_delete(struct store *s, const char *id)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if (id == NULL)
        return einval(s, "pico delete", "no id");
    if ((ret = prep(s, ST_PICO_DELETE, &st)) != 0)
        return ret;
    bind_str(st, 1, id, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, "pico delete");
    }
    /* the foreign keys cascade to everything the pico owns within this
     * one statement, and refuse while it still has children */
    return run_one(s, st, "pico delete");
}

/* ---- channels ---- */

void
store_channel_release(struct store_channel *c)
{
    if (c == NULL)
        return;
    free(c->eci);
    free(c->pico_id);
    kval_free(c->tags);
    kval_free(c->event_policy);
    kval_free(c->query_policy);
    free(c->family_pico_id);
    free(c->alias);
    kval_free(c->senders);
    memset(c, 0, sizeof *c);
}

/* encode_array - an array value as JSON; null stands for [] */
static int
encode_array(struct store *s, const kval *v, struct buf *b,
             const char *what)
{
    if (kval_is_null(v)) {
        buf_adds(b, "[]");
        return 0;
    }
    if (kval_kind(v) != KV_ARRAY)
        return einval(s, what, "tags and senders must be arrays");
    return encode(s, v, b, what);
}

/* encode_map_or_null - a map as JSON, or NULL data for null */
static int
encode_map_or_null(struct store *s, const kval *v, struct buf *b,
                   const char *what)
{
    if (kval_is_null(v))
        return 0;
    if (kval_kind(v) != KV_MAP)
        return einval(s, what, "a policy must be a map");
    return encode(s, v, b, what);
}

int
store_channel_put(struct store *s, const struct store_channel *c)
{
    static const char what[] = "channel put";
    struct buf tags, epol, qpol, senders;
    char *eci = NULL, *alias = NULL;
    sqlite3_stmt *st = NULL;
    int ret, rc = SQLITE_OK;

    buf_init(&tags);
    buf_init(&epol);
    buf_init(&qpol);
    buf_init(&senders);
    if (c->eci == NULL || *c->eci == '\0' || c->pico_id == NULL) {
        ret = einval(s, what, "no eci or pico id");
        goto out;
    }
    if ((ret = encode_array(s, &c->tags, &tags, what)) != 0 ||
        (ret = encode_map_or_null(s, &c->event_policy, &epol, what)) != 0 ||
        (ret = encode_map_or_null(s, &c->query_policy, &qpol, what)) != 0 ||
        (ret = encode_array(s, &c->senders, &senders, what)) != 0)
        goto out;
    if ((ret = prep(s, ST_CHAN_PUT, &st)) != 0)
        goto out;
    eci = lower_dup(c->eci);
    alias = c->alias != NULL ? lower_dup(c->alias) : NULL;
    bind_str(st, 1, eci, &rc);
    bind_str(st, 2, c->pico_id, &rc);
    bind_buf(st, 3, &tags, &rc);
    if (kval_is_null(&c->event_policy))
        bind_str(st, 4, NULL, &rc);
    else
        bind_buf(st, 4, &epol, &rc);
    if (kval_is_null(&c->query_policy))
        bind_str(st, 5, NULL, &rc);
    else
        bind_buf(st, 5, &qpol, &rc);
    bind_str(st, 6, c->family_pico_id, &rc);
    bind_str(st, 7, alias, &rc);
    bind_buf(st, 8, &senders, &rc);
    bind_i64(st, 9, c->require_dkim, &rc);
    bind_i64(st, 10, c->require_dmarc, &rc);
    if (rc != SQLITE_OK) {
        ret = fail(s, rc, what);
        done(st);
        goto out;
    }
    ret = run(s, st, what);

out:
    free(eci);
    free(alias);
    buf_release(&tags);
    buf_release(&epol);
    buf_release(&qpol);
    buf_release(&senders);
    return ret;
}

/* channel_row - the CHAN_COLS of the current row into OUT */
static int
channel_row(struct store *s, sqlite3_stmt *st, struct store_channel *out)
{
    static const char what[] = "channel get";
    int ret;

    out->eci = col_dup(st, 0);
    out->pico_id = col_dup(st, 1);
    out->family_pico_id = col_dup(st, 5);
    out->alias = col_dup(st, 6);
    out->require_dkim = sqlite3_column_int(st, 8) != 0;
    out->require_dmarc = sqlite3_column_int(st, 9) != 0;
    if ((ret = col_json(s, st, 2, &out->tags, what)) != 0 ||
        (ret = col_json(s, st, 3, &out->event_policy, what)) != 0 ||
        (ret = col_json(s, st, 4, &out->query_policy, what)) != 0 ||
        (ret = col_json(s, st, 7, &out->senders, what)) != 0)
        store_channel_release(out);
    return ret;
}

static int
channel_get_by(struct store *s, enum stmt_id id, const char *key,
               struct store_channel *out)
{
    sqlite3_stmt *st;
    char *low;
    int ret, rc = SQLITE_OK;

    memset(out, 0, sizeof *out);
    if (key == NULL)
        return einval(s, "channel get", "no eci or alias");
    if ((ret = prep(s, id, &st)) != 0)
        return ret;
    low = lower_dup(key);
    bind_str(st, 1, low, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret = channel_row(s, st, out);
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "channel get: no channel %s", key);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, "channel get");
    }
    done(st);
    free(low);
    return ret;
}

int
store_channel_get(struct store *s, const char *eci, struct store_channel *out)
{
    return channel_get_by(s, ST_CHAN_GET, eci, out);
}

int
store_channel_get_by_alias(struct store *s, const char *alias,
                           struct store_channel *out)
{
    return channel_get_by(s, ST_CHAN_GET_ALIAS, alias, out);
}

/* opt_str - a C string as a value, null for NULL */
static kval
opt_str(const char *p)
{
    return p != NULL ? kval_cstr(p) : kval_null();
}

/* channel_list - the channels of statement ID (ST_CHAN_LIST: owned by
 * PICO_ID; ST_CHAN_LIST_FAMILY: family channels PICO_ID may use) */
static int
channel_list(struct store *s, enum stmt_id id, const char *pico_id, kval *out)
{
    struct store_channel c;
    sqlite3_stmt *st;
    kval arr, m;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (pico_id == NULL)
        return einval(s, "channel list", "no pico id");
    if ((ret = prep(s, id, &st)) != 0)
        return ret;
    bind_str(st, 1, pico_id, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, "channel list");
    }
    arr = kval_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&c, 0, sizeof c);
        if ((ret = channel_row(s, st, &c)) != 0)
            break;
        m = kval_map_put_str(kval_map(), "eci", kval_cstr(c.eci));
        m = kval_map_put_str(m, "pico_id", kval_cstr(c.pico_id));
        m = kval_map_put_str(m, "tags", kval_copy(&c.tags));
        m = kval_map_put_str(m, "event_policy", kval_copy(&c.event_policy));
        m = kval_map_put_str(m, "query_policy", kval_copy(&c.query_policy));
        m = kval_map_put_str(m, "family_pico_id", opt_str(c.family_pico_id));
        m = kval_map_put_str(m, "alias", opt_str(c.alias));
        m = kval_map_put_str(m, "senders", kval_copy(&c.senders));
        m = kval_map_put_str(m, "require_dkim", kval_bool(c.require_dkim));
        m = kval_map_put_str(m, "require_dmarc",
                             kval_bool(c.require_dmarc));
        arr = kval_array_append(arr, m);
        store_channel_release(&c);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(s, rc, "channel list");
    done(st);
    if (ret != 0) {
        kval_free(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

int
store_channel_list(struct store *s, const char *pico_id, kval *out)
{
    return channel_list(s, ST_CHAN_LIST, pico_id, out);
}

int
store_channel_list_family(struct store *s, const char *pico_id, kval *out)
{
    return channel_list(s, ST_CHAN_LIST_FAMILY, pico_id, out);
}

int
store_channel_delete(struct store *s, const char *eci)
{
    sqlite3_stmt *st;
    char *low;
    int ret, rc = SQLITE_OK;

    if (eci == NULL)
        return einval(s, "channel delete", "no eci");
    if ((ret = prep(s, ST_CHAN_DELETE, &st)) != 0)
        return ret;
    low = lower_dup(eci);
    bind_str(st, 1, low, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        ret = fail(s, rc, "channel delete");
    } else {
        ret = run_one(s, st, "channel delete");
    }
    free(low);
    return ret;
}

/* ---- rulesets ---- */

void
store_ruleset_release(struct store_ruleset *r)
{
    if (r == NULL)
        return;
    free(r->rid);
    free(r->hash);
    free(r->version);
    free(r->source);
    memset(r, 0, sizeof *r);
}

/* ruleset_put_steps - the statements of store_ruleset_put, inside the
 * operation's transaction */
static int
ruleset_put_steps(struct store *s, const char *rid, const char *hash,
                  const char *version, const char *source)
{
    static const char what[] = "ruleset put";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;
    bool known = false;

    if ((ret = prep(s, ST_RS_RID_OF_HASH, &st)) != 0)
        return ret;
    bind_str(st, 1, hash, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        known = true;
        if (strcmp((const char *)sqlite3_column_text(st, 0), rid) != 0)
            ret = einval(s, what, "hash already registered for another rid");
    } else if (rc != SQLITE_DONE) {
        ret = fail(s, rc, what);
    }
    done(st);
    if (ret != 0)
        return ret;

    /* a known hash is the same source: the version row stays as it was */
    if (!known) {
        if ((ret = prep(s, ST_RS_INSERT, &st)) != 0)
            return ret;
        rc = SQLITE_OK;
        bind_str(st, 1, hash, &rc);
        bind_str(st, 2, rid, &rc);
        bind_str(st, 3, version, &rc);
        bind_str(st, 4, source, &rc);
        bind_i64(st, 5, now_ms(), &rc);
        if (rc != SQLITE_OK) {
            done(st);
            return fail(s, rc, what);
        }
        if ((ret = run(s, st, what)) != 0)
            return ret;
    }

    if ((ret = prep(s, ST_RS_SET_CURRENT, &st)) != 0)
        return ret;
    rc = SQLITE_OK;
    bind_str(st, 1, rid, &rc);
    bind_str(st, 2, hash, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run(s, st, what);
}

int
store_ruleset_put(struct store *s, const char *rid, const char *hash,
                  const char *version, const char *source)
{
    bool own;
    int ret;

    if (rid == NULL || *rid == '\0' || hash == NULL || *hash == '\0' ||
        source == NULL)
        return einval(s, "ruleset put", "no rid, hash or source");
    if ((ret = op_begin(s, &own)) != 0)
        return ret;
    ret = ruleset_put_steps(s, rid, hash, version, source);
    return op_end(s, own, ret);
}

static int
ruleset_get_by(struct store *s, enum stmt_id id, const char *key,
               struct store_ruleset *out)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    memset(out, 0, sizeof *out);
    if (key == NULL)
        return einval(s, "ruleset get", "no rid or hash");
    if ((ret = prep(s, id, &st)) != 0)
        return ret;
    bind_str(st, 1, key, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->rid = col_dup(st, 0);
        out->hash = col_dup(st, 1);
        out->version = col_dup(st, 2);
        out->source = col_dup(st, 3);
        out->registered_ms = sqlite3_column_int64(st, 4);
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "ruleset get: no ruleset %s", key);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, "ruleset get");
    }
    done(st);
    return ret;
}

int
store_ruleset_get(struct store *s, const char *rid, struct store_ruleset *out)
{
    return ruleset_get_by(s, ST_RS_GET, rid, out);
}

int
store_ruleset_get_hash(struct store *s, const char *hash,
                       struct store_ruleset *out)
{
    return ruleset_get_by(s, ST_RS_GET_HASH, hash, out);
}

int
store_ruleset_list(struct store *s, kval *out)
{
    sqlite3_stmt *st;
    kval arr, m;
    int ret, rc;

    *out = kval_null();
    if ((ret = prep(s, ST_RS_LIST, &st)) != 0)
        return ret;
    arr = kval_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m = kval_map_put_str(kval_map(), "rid", col_kstr(st, 0));
        m = kval_map_put_str(m, "hash", col_kstr(st, 1));
        m = kval_map_put_str(m, "version", col_kstr(st, 2));
        m = kval_map_put_str(m, "registered",
                             kval_number((double)sqlite3_column_int64(st, 3)));
        arr = kval_array_append(arr, m);
    }
    if (rc != SQLITE_DONE) {
        ret = fail(s, rc, "ruleset list");
        kval_free(arr);
        arr = kval_null();
    }
    done(st);
    *out = arr;
    return ret;
}

/* rid_statement - run statement ID with RID bound to ?1 */
static int
rid_statement(struct store *s, enum stmt_id id, const char *rid,
              const char *what)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if ((ret = prep(s, id, &st)) != 0)
        return ret;
    bind_str(st, 1, rid, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run(s, st, what);
}

int
store_ruleset_delete(struct store *s, const char *rid)
{
    static const char what[] = "ruleset delete";
    bool own;
    int ret;

    if (rid == NULL)
        return einval(s, what, "no rid");
    if ((ret = op_begin(s, &own)) != 0)
        return ret;
    ret = rid_statement(s, ST_RS_DEL_CURRENT, rid, what);
    if (ret == 0)
        ret = rid_statement(s, ST_RS_DEL_VERSIONS, rid, what);
    if (ret == 0 && sqlite3_changes(s->db) == 0) {
        set_msg(s, "%s: no ruleset %s", what, rid);
        ret = STORE_NOTFOUND;
    }
    return op_end(s, own, ret);
}

/* ---- installations ---- */

int
store_install_put(struct store *s, const char *pico_id, const char *rid,
                  const char *hash, const kval *config)
{
    static const char what[] = "install put";
    sqlite3_stmt *st;
    struct buf cfg;
    int ret, rc = SQLITE_OK;

    buf_init(&cfg);
    if (pico_id == NULL || rid == NULL || *rid == '\0' || hash == NULL) {
        ret = einval(s, what, "no pico id, rid or hash");
        goto out;
    }
    if (config == NULL || kval_is_null(config)) {
        buf_adds(&cfg, "{}");
    } else if (kval_kind(config) != KV_MAP) {
        ret = einval(s, what, "config must be a map");
        goto out;
    } else if ((ret = encode(s, config, &cfg, what)) != 0) {
        goto out;
    }
    if ((ret = prep(s, ST_INST_PUT, &st)) != 0)
        goto out;
    bind_str(st, 1, pico_id, &rc);
    bind_str(st, 2, rid, &rc);
    bind_str(st, 3, hash, &rc);
    bind_buf(st, 4, &cfg, &rc);
    if (rc != SQLITE_OK) {
        ret = fail(s, rc, what);
        done(st);
        goto out;
    }
    ret = run(s, st, what);

out:
    buf_release(&cfg);
    return ret;
}

/* pico_rid_statement - run statement ID with PICO_ID and RID bound */
static int
pico_rid_statement(struct store *s, enum stmt_id id, const char *pico_id,
                   const char *rid, bool need_one, const char *what)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if (pico_id == NULL || rid == NULL)
        return einval(s, what, "no pico id or rid");
    if ((ret = prep(s, id, &st)) != 0)
        return ret;
    bind_str(st, 1, pico_id, &rc);
    bind_str(st, 2, rid, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return need_one ? run_one(s, st, what) : run(s, st, what);
}

int
store_install_delete(struct store *s, const char *pico_id, const char *rid)
{
    return pico_rid_statement(s, ST_INST_DELETE, pico_id, rid, true,
                              "install delete");
}

int
store_install_list(struct store *s, const char *pico_id, kval *out)
{
    static const char what[] = "install list";
    sqlite3_stmt *st;
    kval arr, m, cfg;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (pico_id == NULL)
        return einval(s, what, "no pico id");
    if ((ret = prep(s, ST_INST_LIST, &st)) != 0)
        return ret;
    bind_str(st, 1, pico_id, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    arr = kval_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((ret = col_json(s, st, 2, &cfg, what)) != 0)
            break;
        m = kval_map_put_str(kval_map(), "rid", col_kstr(st, 0));
        m = kval_map_put_str(m, "hash", col_kstr(st, 1));
        m = kval_map_put_str(m, "config", cfg);
        arr = kval_array_append(arr, m);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(s, rc, what);
    done(st);
    if (ret != 0) {
        kval_free(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

int
store_install_users(struct store *s, const char *rid, kval *out)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (rid == NULL)
        return einval(s, "install users", "no rid");
    if ((ret = prep(s, ST_INST_USERS, &st)) != 0)
        return ret;
    bind_str(st, 1, rid, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, "install users");
    }
    return string_column_list(s, st, out, "install users");
}

/* ---- entity variables ---- */

/* bind_key3 - (pico_id, rid, name) to ?1..?3 */
static void
bind_key3(sqlite3_stmt *st, const char *a, const char *b, const char *c,
          int *rc)
{
    bind_str(st, 1, a, rc);
    bind_str(st, 2, b, rc);
    bind_str(st, 3, c, rc);
}

int
store_ent_get(struct store *s, const char *pico_id, const char *rid,
              const char *name, kval *out)
{
    static const char what[] = "entity get";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (pico_id == NULL || rid == NULL || name == NULL)
        return einval(s, what, "no pico id, rid or name");
    if ((ret = prep(s, ST_ENT_GET, &st)) != 0)
        return ret;
    bind_key3(st, pico_id, rid, name, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret = col_json(s, st, 0, out, what);
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "%s: no variable %s:%s", what, rid, name);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, what);
    }
    done(st);
    return ret;
}

int
store_ent_put(struct store *s, const char *pico_id, const char *rid,
              const char *name, const kval *value)
{
    static const char what[] = "entity put";
    sqlite3_stmt *st;
    struct buf js;
    int ret, rc = SQLITE_OK;

    buf_init(&js);
    if (pico_id == NULL || rid == NULL || name == NULL || value == NULL) {
        ret = einval(s, what, "no pico id, rid, name or value");
        goto out;
    }
    if ((ret = encode(s, value, &js, what)) != 0)
        goto out;
    if ((ret = prep(s, ST_ENT_PUT, &st)) != 0)
        goto out;
    bind_key3(st, pico_id, rid, name, &rc);
    bind_buf(st, 4, &js, &rc);
    if (rc != SQLITE_OK) {
        ret = fail(s, rc, what);
        done(st);
        goto out;
    }
    ret = run(s, st, what);

out:
    buf_release(&js);
    return ret;
}

int
store_ent_delete(struct store *s, const char *pico_id, const char *rid,
                 const char *name)
{
    static const char what[] = "entity delete";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if (pico_id == NULL || rid == NULL || name == NULL)
        return einval(s, what, "no pico id, rid or name");
    if ((ret = prep(s, ST_ENT_DELETE, &st)) != 0)
        return ret;
    bind_key3(st, pico_id, rid, name, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run_one(s, st, what);
}

int
store_ent_list(struct store *s, const char *pico_id, const char *rid,
               kval *out)
{
    static const char what[] = "entity list";
    sqlite3_stmt *st;
    kval map, v;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (pico_id == NULL || rid == NULL)
        return einval(s, what, "no pico id or rid");
    if ((ret = prep(s, ST_ENT_LIST, &st)) != 0)
        return ret;
    bind_str(st, 1, pico_id, &rc);
    bind_str(st, 2, rid, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    map = kval_map();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((ret = col_json(s, st, 1, &v, what)) != 0)
            break;
        map = kval_map_put(map, col_kstr(st, 0), v);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(s, rc, what);
    done(st);
    if (ret != 0) {
        kval_free(map);
        return ret;
    }
    *out = map;
    return 0;
}

int
store_ent_delete_rid(struct store *s, const char *pico_id, const char *rid)
{
    return pico_rid_statement(s, ST_ENT_DELETE_RID, pico_id, rid, false,
                              "entity delete rid");
}

/* ---- event-expression state ---- */

int
store_ee_get(struct store *s, const char *pico_id, const char *rid,
             const char *rule, const char *hash, kval *out)
{
    static const char what[] = "ee state get";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (pico_id == NULL || rid == NULL || rule == NULL || hash == NULL)
        return einval(s, what, "no pico id, rid, rule or hash");
    if ((ret = prep(s, ST_EE_GET, &st)) != 0)
        return ret;
    bind_key3(st, pico_id, rid, rule, &rc);
    bind_str(st, 4, hash, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret = col_json(s, st, 0, out, what);
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "%s: no state for %s:%s at this version", what, rid,
                rule);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, what);
    }
    done(st);
    return ret;
}

int
store_ee_put(struct store *s, const char *pico_id, const char *rid,
             const char *rule, const char *hash, const kval *state)
{
    static const char what[] = "ee state put";
    sqlite3_stmt *st;
    struct buf js;
    int ret, rc = SQLITE_OK;

    buf_init(&js);
    if (pico_id == NULL || rid == NULL || rule == NULL || hash == NULL ||
        state == NULL) {
        ret = einval(s, what, "no pico id, rid, rule, hash or state");
        goto out;
    }
    if ((ret = encode(s, state, &js, what)) != 0)
        goto out;
    if ((ret = prep(s, ST_EE_PUT, &st)) != 0)
        goto out;
    bind_key3(st, pico_id, rid, rule, &rc);
    bind_str(st, 4, hash, &rc);
    bind_buf(st, 5, &js, &rc);
    if (rc != SQLITE_OK) {
        ret = fail(s, rc, what);
        done(st);
        goto out;
    }
    ret = run(s, st, what);

out:
    buf_release(&js);
    return ret;
}

int
store_ee_delete_rid(struct store *s, const char *pico_id, const char *rid)
{
    return pico_rid_statement(s, ST_EE_DELETE_RID, pico_id, rid, false,
                              "ee state delete rid");
}

/* ---- schedules ---- */

void
store_schedule_release(struct store_schedule *sc)
{
    if (sc == NULL)
        return;
    free(sc->id);
    free(sc->pico_id);
    free(sc->rid);
    free(sc->type);
    free(sc->timespec);
    kval_free(sc->event);
    memset(sc, 0, sizeof *sc);
}

int
store_schedule_put(struct store *s, const struct store_schedule *sc)
{
    static const char what[] = "schedule put";
    sqlite3_stmt *st;
    struct buf js;
    bool repeat;
    int ret, rc = SQLITE_OK;

    buf_init(&js);
    if (sc->id == NULL || *sc->id == '\0' || sc->pico_id == NULL ||
        sc->rid == NULL || sc->type == NULL) {
        ret = einval(s, what, "no id, pico id, rid or type");
        goto out;
    }
    repeat = strcmp(sc->type, "repeat") == 0;
    if (!repeat && strcmp(sc->type, "at") != 0) {
        ret = einval(s, what, "type must be \"at\" or \"repeat\"");
        goto out;
    }
    if (repeat != (sc->timespec != NULL)) {
        ret = einval(s, what, "a timespec goes with \"repeat\" only");
        goto out;
    }
    if ((ret = encode(s, &sc->event, &js, what)) != 0)
        goto out;
    if ((ret = prep(s, ST_SCHED_PUT, &st)) != 0)
        goto out;
    bind_str(st, 1, sc->id, &rc);
    bind_str(st, 2, sc->pico_id, &rc);
    bind_str(st, 3, sc->rid, &rc);
    bind_str(st, 4, sc->type, &rc);
    bind_i64(st, 5, sc->at_ms, &rc);
    bind_str(st, 6, sc->timespec, &rc);
    bind_buf(st, 7, &js, &rc);
    if (rc != SQLITE_OK) {
        ret = fail(s, rc, what);
        done(st);
        goto out;
    }
    ret = run(s, st, what);

out:
    buf_release(&js);
    return ret;
}

int
store_schedule_delete(struct store *s, const char *id)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if (id == NULL)
        return einval(s, "schedule delete", "no id");
    if ((ret = prep(s, ST_SCHED_DELETE, &st)) != 0)
        return ret;
    bind_str(st, 1, id, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, "schedule delete");
    }
    return run_one(s, st, "schedule delete");
}

/* schedule_row - the SCHED_COLS of the current row into OUT */
static int
schedule_row(struct store *s, sqlite3_stmt *st, struct store_schedule *out)
{
    int ret;

    memset(out, 0, sizeof *out);
    out->id = col_dup(st, 0);
    out->pico_id = col_dup(st, 1);
    out->rid = col_dup(st, 2);
    out->type = col_dup(st, 3);
    out->at_ms = sqlite3_column_int64(st, 4);
    out->timespec = col_dup(st, 5);
    if ((ret = col_json(s, st, 6, &out->event, "schedule get")) != 0)
        store_schedule_release(out);
    return ret;
}

int
store_schedule_list(struct store *s, const char *pico_id, const char *rid,
                    kval *out)
{
    static const char what[] = "schedule list";
    struct store_schedule sc;
    sqlite3_stmt *st;
    kval arr, m;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (pico_id == NULL)
        return einval(s, what, "no pico id");
    ret = prep(s, rid != NULL ? ST_SCHED_LIST_RID : ST_SCHED_LIST_PICO, &st);
    if (ret != 0)
        return ret;
    bind_str(st, 1, pico_id, &rc);
    if (rid != NULL)
        bind_str(st, 2, rid, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    arr = kval_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((ret = schedule_row(s, st, &sc)) != 0)
            break;
        m = kval_map_put_str(kval_map(), "id", kval_cstr(sc.id));
        m = kval_map_put_str(m, "type", kval_cstr(sc.type));
        if (sc.timespec != NULL)
            m = kval_map_put_str(m, "timespec", kval_cstr(sc.timespec));
        else
            m = kval_map_put_str(m, "time", kval_number((double)sc.at_ms));
        m = kval_map_put_str(m, "event", kval_copy(&sc.event));
        arr = kval_array_append(arr, m);
        store_schedule_release(&sc);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(s, rc, what);
    done(st);
    if (ret != 0) {
        kval_free(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

int
store_schedule_next_due(struct store *s, struct store_schedule *out)
{
    sqlite3_stmt *st;
    int ret, rc;

    memset(out, 0, sizeof *out);
    if ((ret = prep(s, ST_SCHED_NEXT, &st)) != 0)
        return ret;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret = schedule_row(s, st, out);
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "schedule next due: nothing scheduled");
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, "schedule next due");
    }
    done(st);
    return ret;
}

/* ---- event log ---- */

/* log_encode - the JSON columns of E into ATTRS and RESULT (initialised
 * by the caller) */
static int
log_encode(struct store *s, const struct store_log_entry *e,
           struct buf *attrs, struct buf *result, const char *what)
{
    int ret;

    if (e->eid == NULL || e->pico_id == NULL || e->kind == NULL)
        return einval(s, what, "no eid, pico id or kind");
    if (e->attrs != NULL && (ret = encode(s, e->attrs, attrs, what)) != 0)
        return ret;
    if (e->result_json == NULL && e->result != NULL &&
        (ret = encode(s, e->result, result, what)) != 0)
        return ret;
    return 0;
}

/* log_bind - E's nine columns from parameter AT + 1 on */
static void
log_bind(sqlite3_stmt *st, int at, const struct store_log_entry *e,
         const struct buf *attrs, const struct buf *result, int *rc)
{
    bind_str(st, at + 1, e->eid, rc);
    bind_str(st, at + 2, e->pico_id, rc);
    bind_i64(st, at + 3, e->time_ms, rc);
    bind_str(st, at + 4, e->kind, rc);
    bind_str(st, at + 5, e->domain, rc);
    bind_str(st, at + 6, e->name, rc);
    if (e->attrs != NULL)
        bind_buf(st, at + 7, attrs, rc);
    else
        bind_str(st, at + 7, NULL, rc);
    if (e->result_json != NULL)
        bind_str(st, at + 8, e->result_json, rc);
    else if (e->result != NULL)
        bind_buf(st, at + 8, result, rc);
    else
        bind_str(st, at + 8, NULL, rc);
    bind_str(st, at + 9, e->error, rc);
}

int
store_log_add(struct store *s, const struct store_log_entry *e)
{
    return store_log_add_many(s, e, 1);
}

int
store_log_add_many(struct store *s, const struct store_log_entry *v,
                   size_t n)
{
    static const char what[] = "log add";
    struct buf attrs[LOG_CHUNK], result[LOG_CHUNK];
    const struct store_log_entry *rows[LOG_CHUNK];
    size_t used = n < LOG_CHUNK ? n : LOG_CHUNK;   /* buffers in use */
    int first = 0;

    for (size_t i = 0; i < used; i++) {
        buf_init(&attrs[i]);
        buf_init(&result[i]);
    }
    for (size_t done_n = 0; done_n < n;) {
        /* up to LOG_CHUNK rows that encode; one that does not is left
           out (its error returned at the end), as a lone add fails */
        size_t k = 0;
        for (; done_n < n && k < LOG_CHUNK; done_n++) {
            attrs[k].len = 0;
            result[k].len = 0;
            int ret = log_encode(s, &v[done_n], &attrs[k], &result[k], what);
            if (ret != 0) {
                if (first == 0)
                    first = ret;
                continue;
            }
            rows[k++] = &v[done_n];
        }
        for (size_t i = 0; i < k;) {
            bool chunk = k - i == LOG_CHUNK;
            sqlite3_stmt *st;
            int rc = SQLITE_OK;
            int ret = prep(s, chunk ? ST_LOG_ADD_MANY : ST_LOG_ADD, &st);
            if (ret != 0) {
                if (first == 0)
                    first = ret;
                goto out;
            }
            size_t m = chunk ? LOG_CHUNK : 1;
            for (size_t j = 0; j < m; j++)
                log_bind(st, (int)j * 9, rows[i + j], &attrs[i + j],
                         &result[i + j], &rc);
            if (rc != SQLITE_OK) {
                ret = fail(s, rc, what);
                done(st);
            } else {
                ret = run(s, st, what);
            }
            if (ret != 0 && first == 0)
                first = ret;
            i += m;
        }
    }
out:
    for (size_t i = 0; i < used; i++) {
        buf_release(&attrs[i]);
        buf_release(&result[i]);
    }
    return first;
}

int
store_log_list(struct store *s, const char *pico_id, int limit, kval *out)
{
    static const char what[] = "log list";
    sqlite3_stmt *st;
    kval arr, m, attrs, result;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (limit < 0)
        return einval(s, what, "negative limit");
    ret = prep(s, pico_id != NULL ? ST_LOG_LIST_PICO : ST_LOG_LIST_ALL, &st);
    if (ret != 0)
        return ret;
    if (pico_id != NULL) {
        bind_str(st, 1, pico_id, &rc);
        bind_i64(st, 2, limit, &rc);
    } else {
        bind_i64(st, 1, limit, &rc);
    }
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    arr = kval_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((ret = col_json(s, st, 6, &attrs, what)) != 0)
            break;
        if ((ret = col_json(s, st, 7, &result, what)) != 0) {
            kval_free(attrs);
            break;
        }
        m = kval_map_put_str(kval_map(), "eid", col_kstr(st, 0));
        m = kval_map_put_str(m, "pico_id", col_kstr(st, 1));
        m = kval_map_put_str(m, "time",
                             kval_number((double)sqlite3_column_int64(st, 2)));
        m = kval_map_put_str(m, "kind", col_kstr(st, 3));
        m = kval_map_put_str(m, "domain", col_kstr(st, 4));
        m = kval_map_put_str(m, "name", col_kstr(st, 5));
        m = kval_map_put_str(m, "attrs", attrs);
        m = kval_map_put_str(m, "result", result);
        m = kval_map_put_str(m, "error", col_kstr(st, 8));
        arr = kval_array_append(arr, m);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(s, rc, what);
    done(st);
    if (ret != 0) {
        kval_free(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

/* ---- the mail inbox ---- */

int
store_mail_add(struct store *s, const char *raw, size_t len, int64_t *id)
{
    static const char what[] = "mail add";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *id = 0;
    if ((ret = prep(s, ST_MAIL_ADD, &st)) != 0)
        return ret;
    bind_i64(st, 1, now_ms(), &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 2, raw, len, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    if ((ret = run(s, st, what)) == 0)
        *id = sqlite3_last_insert_rowid(s->db);
    return ret;
}

int
store_mail_get(struct store *s, int64_t id, char **raw, size_t *len)
{
    static const char what[] = "mail get";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *raw = NULL;
    *len = 0;
    if ((ret = prep(s, ST_MAIL_GET, &st)) != 0)
        return ret;
    bind_i64(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 0);
        *len = (size_t)sqlite3_column_bytes(st, 0);
        *raw = xmalloc(*len + 1);
        if (*len > 0)
            memcpy(*raw, b, *len);
        (*raw)[*len] = '\0';
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "%s: no message %lld", what, (long long)id);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, what);
    }
    done(st);
    return ret;
}

int
store_attachment_put(struct store *s, const char *sha256,
                     const char *content_type, size_t size, const void *data,
                     size_t len)
{
    static const char what[] = "attachment put";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if (sha256 == NULL || strlen(sha256) != 64)
        return einval(s, what, "no sha256");
    if ((ret = prep(s, ST_ATT_PUT, &st)) != 0)
        return ret;
    bind_str(st, 1, sha256, &rc);
    bind_str(st, 2, content_type, &rc);
    bind_i64(st, 3, (int64_t)size, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 4, len > 0 ? data : "", len,
                                 SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run(s, st, what);
}

int
store_attachment_get(struct store *s, const char *sha256, kval *out)
{
    static const char what[] = "attachment get";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if ((ret = prep(s, ST_ATT_GET, &st)) != 0)
        return ret;
    bind_str(st, 1, sha256, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *b = sqlite3_column_blob(st, 2);
        size_t n = (size_t)sqlite3_column_bytes(st, 2);
        kval m = kval_map_put_str(kval_map(), "sha256", kval_cstr(sha256));
        m = kval_map_put_str(m, "content_type", col_kstr(st, 0));
        m = kval_map_put_str(m, "size",
                             kval_number((double)sqlite3_column_int64(st, 1)));
        m = kval_map_put_str(m, "data", kval_str(n > 0 ? b : "", n));
        *out = m;
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "%s: no attachment %s", what, sha256);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, what);
    }
    done(st);
    return ret;
}

int
store_inbox_add(struct store *s, const struct store_inbox_entry *e,
                int64_t *id)
{
    static const char what[] = "inbox add";
    sqlite3_stmt *st;
    struct buf attrs;
    int ret, rc = SQLITE_OK;

    *id = 0;
    buf_init(&attrs);
    if (e->dedupe == NULL || e->eci == NULL || e->domain == NULL ||
        e->type == NULL || e->rcpt == NULL || e->attrs == NULL ||
        e->eid == NULL ||
        kval_kind(e->attrs) != KV_MAP) {
        ret = einval(s, what, "no dedupe key, eci, domain, type, "
                     "recipient, attribute map or event id");
        goto out;
    }
    if ((ret = encode(s, e->attrs, &attrs, what)) != 0)
        goto out;
    if ((ret = prep(s, ST_INBOX_ADD, &st)) != 0)
        goto out;
    bind_str(st, 1, e->dedupe, &rc);
    if (rc == SQLITE_OK)
        rc = e->mail_id > 0 ? sqlite3_bind_int64(st, 2, e->mail_id)
                            : sqlite3_bind_null(st, 2);
    bind_i64(st, 3, now_ms(), &rc);
    bind_str(st, 4, e->eci, &rc);
    bind_str(st, 5, e->domain, &rc);
    bind_str(st, 6, e->type, &rc);
    bind_buf(st, 7, &attrs, &rc);
    bind_str(st, 8, e->queue_id, &rc);
    bind_str(st, 9, e->rcpt, &rc);
    bind_str(st, 10, e->eid, &rc);
    bind_str(st, 11, e->from_pico, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        ret = fail(s, rc, what);
        goto out;
    }
    if ((ret = run(s, st, what)) != 0)
        goto out;
    if (sqlite3_changes(s->db) == 1) {
        *id = sqlite3_last_insert_rowid(s->db);
        goto out;
    }
    /* a delivery seen before: report the first one's id */
    if ((ret = prep(s, ST_INBOX_FIND, &st)) != 0)
        goto out;
    bind_str(st, 1, e->dedupe, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        set_msg(s, "%s: a duplicate of entry %lld", what, (long long)*id);
        ret = STORE_DUPLICATE;
    } else {
        ret = fail(s, rc, what);
    }
    done(st);

out:
    buf_release(&attrs);
    return ret;
}

int
store_inbox_pending(struct store *s, int64_t after_id, int limit, kval *out)
{
    static const char what[] = "inbox pending";
    sqlite3_stmt *st;
    kval arr, m, attrs;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if ((ret = prep(s, ST_INBOX_PENDING, &st)) != 0)
        return ret;
    bind_i64(st, 1, after_id, &rc);
    bind_i64(st, 2, limit, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    arr = kval_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((ret = col_json(s, st, 4, &attrs, what)) != 0)
            break;
        m = kval_map_put_str(kval_map(), "id",
                             kval_number((double)sqlite3_column_int64(st, 0)));
        m = kval_map_put_str(m, "eci", col_kstr(st, 1));
        m = kval_map_put_str(m, "domain", col_kstr(st, 2));
        m = kval_map_put_str(m, "type", col_kstr(st, 3));
        m = kval_map_put_str(m, "attrs", attrs);
        m = kval_map_put_str(m, "received",
                             kval_number((double)sqlite3_column_int64(st, 5)));
        m = kval_map_put_str(m, "eid", col_kstr(st, 6));
        m = kval_map_put_str(m, "from_pico", col_kstr(st, 7));
        arr = kval_array_append(arr, m);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(s, rc, what);
    done(st);
    if (ret != 0) {
        kval_free(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

int
store_inbox_eid(struct store *s, int64_t id, char *out, size_t outlen)
{
    static const char what[] = "inbox eid";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if (outlen > 0)
        *out = '\0';
    if ((ret = prep(s, ST_INBOX_EID, &st)) != 0)
        return ret;
    bind_i64(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        snprintf(out, outlen, "%s", t != NULL ? t : "");
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        set_msg(s, "%s: no entry %lld", what, (long long)id);
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(s, rc, what);
    }
    done(st);
    return ret;
}

int
store_inbox_done(struct store *s, int64_t id)
{
    static const char what[] = "inbox done";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if ((ret = prep(s, ST_INBOX_DONE, &st)) != 0)
        return ret;
    bind_i64(st, 1, id, &rc);
    bind_i64(st, 2, now_ms(), &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run_one(s, st, what);
}

int
store_inbox_failed(struct store *s, int64_t id, const char *error)
{
    static const char what[] = "inbox failed";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if ((ret = prep(s, ST_INBOX_FAILED, &st)) != 0)
        return ret;
    bind_i64(st, 1, id, &rc);
    bind_str(st, 2, error, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run_one(s, st, what);
}

int
store_inbox_list(struct store *s, int limit, kval *out)
{
    static const char what[] = "inbox list";
    sqlite3_stmt *st;
    kval arr, m;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (limit < 0)
        return einval(s, what, "negative limit");
    if ((ret = prep(s, ST_INBOX_LIST, &st)) != 0)
        return ret;
    bind_i64(st, 1, limit, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    arr = kval_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m = kval_map_put_str(kval_map(), "id",
                             kval_number((double)sqlite3_column_int64(st, 0)));
        m = kval_map_put_str(m, "state", col_kstr(st, 1));
        m = kval_map_put_str(m, "eci", col_kstr(st, 2));
        m = kval_map_put_str(m, "domain", col_kstr(st, 3));
        m = kval_map_put_str(m, "type", col_kstr(st, 4));
        m = kval_map_put_str(m, "rcpt", col_kstr(st, 5));
        m = kval_map_put_str(m, "queue_id", col_kstr(st, 6));
        m = kval_map_put_str(m, "received",
                             kval_number((double)sqlite3_column_int64(st, 7)));
        m = kval_map_put_str(m, "eid", col_kstr(st, 8));
        m = kval_map_put_str(m, "error", col_kstr(st, 9));
        arr = kval_array_append(arr, m);
    }
    ret = rc == SQLITE_DONE ? 0 : fail(s, rc, what);
    done(st);
    if (ret != 0) {
        kval_free(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

/* count_in_state - the count(*) statement ID for STATE; -1 on error */
static int64_t
count_in_state(struct store *s, enum stmt_id id, const char *state)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    int rc = SQLITE_OK;

    if (prep(s, id, &st) != 0)
        return -1;
    bind_str(st, 1, state, &rc);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    done(st);
    return n;
}

int64_t
store_inbox_count(struct store *s, const char *state)
{
    return count_in_state(s, ST_INBOX_COUNT, state);
}

int
store_inbox_prune(struct store *s, int64_t before_ms)
{
    static const char what[] = "inbox prune";
    sqlite3_stmt *st;
    bool own;
    int ret, rc = SQLITE_OK;

    if ((ret = op_begin(s, &own)) != 0)
        return ret;
    if ((ret = prep(s, ST_INBOX_PRUNE, &st)) == 0) {
        bind_i64(st, 1, before_ms, &rc);
        if (rc != SQLITE_OK) {
            done(st);
            ret = fail(s, rc, what);
        } else {
            ret = run(s, st, what);
        }
    }
    if (ret == 0 && (ret = prep(s, ST_MAIL_PRUNE, &st)) == 0) {
        bind_i64(st, 1, before_ms, &rc);
        if (rc != SQLITE_OK) {
            done(st);
            ret = fail(s, rc, what);
        } else {
            ret = run(s, st, what);
        }
    }
    return op_end(s, own, ret);
}

/* ---- the outbox ---- */

int
store_outbox_add(struct store *s, const struct store_outbox_entry *e,
                 int64_t *id)
{
    static const char what[] = "outbox add";
    sqlite3_stmt *st;
    struct buf req;
    int ret, rc = SQLITE_OK;

    *id = 0;
    buf_init(&req);
    if (e->kind == NULL || e->request == NULL ||
        kval_kind(e->request) != KV_MAP) {
        ret = einval(s, what, "no kind or request map");
        goto out;
    }
    if ((ret = encode(s, e->request, &req, what)) != 0)
        goto out;
    if ((ret = prep(s, ST_OUT_ADD, &st)) != 0)
        goto out;
    int64_t now = e->now_ms > 0 ? e->now_ms : now_ms();
    bind_str(st, 1, e->pico_id, &rc);
    bind_str(st, 2, e->eci, &rc);
    bind_str(st, 3, e->eid, &rc);
    bind_str(st, 4, e->kind, &rc);
    bind_buf(st, 5, &req, &rc);
    bind_i64(st, 6, now, &rc);
    bind_i64(st, 7, now + (e->lifetime_ms > 0 ? e->lifetime_ms
                                              : 5LL * 86400 * 1000), &rc);
    bind_str(st, 8, e->rate_key, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        ret = fail(s, rc, what);
        goto out;
    }
    if ((ret = run(s, st, what)) == 0)
        *id = sqlite3_last_insert_rowid(s->db);

out:
    buf_release(&req);
    return ret;
}

/* outbox_rows - the rows of ST (OUT_COLS) as an array of maps */
static int
outbox_rows(struct store *s, sqlite3_stmt *st, const char *what, kval *out)
{
    kval arr = kval_array(), req;
    int ret = 0, rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((ret = col_json(s, st, 5, &req, what)) != 0)
            break;
        kval m = kval_map_put_str(
            kval_map(), "id",
            kval_number((double)sqlite3_column_int64(st, 0)));
        m = kval_map_put_str(m, "pico_id", col_kstr(st, 1));
        m = kval_map_put_str(m, "eci", col_kstr(st, 2));
        m = kval_map_put_str(m, "eid", col_kstr(st, 3));
        m = kval_map_put_str(m, "kind", col_kstr(st, 4));
        m = kval_map_put_str(m, "request", req);
        m = kval_map_put_str(m, "state", col_kstr(st, 6));
        m = kval_map_put_str(m, "attempts",
                             kval_number((double)sqlite3_column_int64(st, 7)));
        m = kval_map_put_str(m, "created",
                             kval_number((double)sqlite3_column_int64(st, 8)));
        m = kval_map_put_str(m, "next",
                             kval_number((double)sqlite3_column_int64(st, 9)));
        m = kval_map_put_str(m, "expires",
                             kval_number((double)sqlite3_column_int64(st, 10)));
        m = kval_map_put_str(m, "last_error", col_kstr(st, 11));
        m = kval_map_put_str(m, "result", col_kstr(st, 12));
        arr = kval_array_append(arr, m);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = fail(s, rc, what);
    done(st);
    if (ret != 0) {
        kval_free(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

int64_t
store_outbox_recent(struct store *s, const char *pico_id,
                    const char *rate_key, int64_t since_ms)
{
    sqlite3_stmt *st;
    int64_t n = -1;
    int rc = SQLITE_OK;

    if (prep(s, ST_OUT_RECENT, &st) != 0)
        return -1;
    bind_str(st, 1, pico_id, &rc);
    bind_str(st, 2, rate_key, &rc);
    bind_i64(st, 3, since_ms, &rc);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    done(st);
    return n;
}

int
store_outbox_due(struct store *s, int64_t now, int limit, kval *out)
{
    static const char what[] = "outbox due";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if ((ret = prep(s, ST_OUT_DUE, &st)) != 0)
        return ret;
    bind_i64(st, 1, now, &rc);
    bind_i64(st, 2, limit, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return outbox_rows(s, st, what, out);
}

int64_t
store_outbox_next_due(struct store *s)
{
    sqlite3_stmt *st;
    int64_t next = -1;

    if (prep(s, ST_OUT_NEXT, &st) != 0)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) != SQLITE_NULL)
        next = sqlite3_column_int64(st, 0);
    done(st);
    return next;
}

/* outbox_update - one of the state changes of a pending row */
static int
outbox_update(struct store *s, enum stmt_id id, int64_t row, const char *text,
              int64_t when, const char *what)
{
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if ((ret = prep(s, id, &st)) != 0)
        return ret;
    bind_i64(st, 1, row, &rc);
    bind_str(st, 2, text, &rc);
    bind_i64(st, 3, when, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run_one(s, st, what);
}

int
store_outbox_sent(struct store *s, int64_t id, const char *result)
{
    return outbox_update(s, ST_OUT_SENT, id, result, now_ms(), "outbox sent");
}

int
store_outbox_retry(struct store *s, int64_t id, const char *error,
                   int64_t next_ms)
{
    return outbox_update(s, ST_OUT_RETRY, id, error, next_ms, "outbox retry");
}

int
store_outbox_failed(struct store *s, int64_t id, const char *error)
{
    return outbox_update(s, ST_OUT_FAILED, id, error, now_ms(),
                         "outbox failed");
}

int
store_outbox_requeue(struct store *s, int64_t id)
{
    static const char what[] = "outbox requeue";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;
    int64_t now = now_ms();

    if ((ret = prep(s, ST_OUT_REQUEUE, &st)) != 0)
        return ret;
    bind_i64(st, 1, id, &rc);
    bind_i64(st, 2, now, &rc);
    bind_i64(st, 3, now + 86400LL * 1000, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run_one(s, st, what);
}

int
store_outbox_list(struct store *s, const char *pico_id, int limit, kval *out)
{
    static const char what[] = "outbox list";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    *out = kval_null();
    if (limit < 0)
        return einval(s, what, "negative limit");
    ret = prep(s, pico_id ? ST_OUT_LIST_PICO : ST_OUT_LIST, &st);
    if (ret != 0)
        return ret;
    if (pico_id != NULL) {
        bind_str(st, 1, pico_id, &rc);
        bind_i64(st, 2, limit, &rc);
    } else {
        bind_i64(st, 1, limit, &rc);
    }
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return outbox_rows(s, st, what, out);
}

int64_t
store_outbox_count(struct store *s, const char *state)
{
    return count_in_state(s, ST_OUT_COUNT, state);
}

int
store_outbox_prune(struct store *s, int64_t before_ms)
{
    static const char what[] = "outbox prune";
    sqlite3_stmt *st;
    int ret, rc = SQLITE_OK;

    if ((ret = prep(s, ST_OUT_PRUNE, &st)) != 0)
        return ret;
    bind_i64(st, 1, before_ms, &rc);
    if (rc != SQLITE_OK) {
        done(st);
        return fail(s, rc, what);
    }
    return run(s, st, what);
}
