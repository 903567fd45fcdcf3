/*
 * daemon.h - the parts of picomaild and what they share (private to
 * src/daemon/).
 *
 * Threads:
 *   - the I/O thread (server.c) owns every socket: it accepts LMTP and
 *     socketmap connections, runs their protocols (lmtp.h, socketmap.h)
 *     and answers RCPT and socketmap lookups from a read-only store
 *     connection of its own;
 *   - the ingest thread (ingest.c) takes complete messages from the I/O
 *     thread, parses them and stores them as inbox entries, many messages
 *     per transaction (group commit), and hands the per-recipient replies
 *     back: a recipient gets 250 only after its commit;
 *   - the dispatcher (dispatch.c) runs the rule engine on pending inbox
 *     entries, marking each done in its event's transaction;
 *   - the IMAP fetcher (imap_fetch.c), one thread per mailbox.
 * Writers of this process take turns through one write gate (store.h).
 */
#ifndef PICOMAIL_DAEMON_H
#define PICOMAIL_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "picomail/buf.h"
#include "picomail/conf.h"
#include "picomail/inbox.h"
#include "picomail/lmtp.h"

/* The settings picomaild runs with (from picomail.conf; see there).  A
 * loaded struct settings is never changed: SIGHUP installs a new one, and
 * each thread takes a reference to the current one for a unit of work. */
struct settings {
    int refs;                   /* private: settings_acquire/put */
    char *conf_path;            /* the file read, or NULL for defaults */
    char *database;
    char *mail_domain;
    char *mail_sender;          /* From of what picos send; NULL: the
                                   channel's address */
    char *hostname;             /* in the LMTP greeting */
    char *lmtp_listen;
    char *socketmap_listen;
    char *user;                 /* drop privileges to; NULL: stay */
    char *trusted_authserv;     /* NULL: no Authentication-Results count */
    char *smtp_relay;           /* smtp://host:port or smtps:// */
    char *smtp_tls;             /* "no", "try" or "yes" */
    char *smtp_user;            /* NULL: no AUTH */
    char *smtp_password_file;
    char *smtp_password_env;
    char *sms_url;              /* the Messages endpoint; NULL: no SMS */
    char *sms_account;
    char *sms_token_file;
    char *sms_token_env;
    char *sms_from;
    unsigned unix_socket_mode;
    size_t max_message_size;
    size_t max_recipients;
    size_t max_connections;
    size_t attachment_keep;
    int idle_timeout_s;
    int inbox_retention_days;
    bool log_syslog;
    char *http_listen;          /* NULL: no Sky Event/Cloud listener */
    size_t http_max_body;
};

/* settings_load - read PATH (NULL: the defaults) with DB_OVERRIDE (or
 * NULL) as the database; NULL with a message in ERR */
struct settings *settings_load(const char *path, const char *db_override,
                               char *err, size_t errlen);
/* settings_install - make S (a new one, ownership passes) the current */
void settings_install(struct settings *s);
/* settings_acquire - a reference to the current settings; give it back
 * with settings_put */
const struct settings *settings_acquire(void);
void settings_put(const struct settings *s);

/* ---- listening sockets (listen.c) ---- */

struct listener {
    int fd;
    int kind;                   /* LISTEN_LMTP or LISTEN_SOCKETMAP */
    char *spec;                 /* as configured: "host:port" or
                                   "unix:PATH" */
    char *unix_path;            /* unlinked at exit; NULL for TCP */
};

enum { LISTEN_LMTP, LISTEN_SOCKETMAP };

/* listen_open - one listening socket per comma-separated item of SPECS
 * ("host:port", "[v6]:port", "unix:PATH"), appended to *LS (N_LS);
 * -1 with a message in ERR */
int listen_open(const char *specs, int kind, unsigned unix_mode,
                struct listener **ls, size_t *n_ls, char *err,
                size_t errlen);
void listen_close_all(struct listener *ls, size_t n);

/* ---- a message on its way from LMTP to the inbox (ingest.c) ---- */

struct delivery {
    uint64_t conn_id;           /* the LMTP connection waiting for it */
    char *mail_from;
    char **rcpts;
    size_t n_rcpts;
    char *data;                 /* the message (owned) */
    size_t len;
    char *client_addr;          /* XFORWARD ADDR, or NULL */
    char *queue_id;             /* XFORWARD IDENT, or NULL */
    bool too_big;
    /* filled by the ingest thread */
    char **replies;             /* one line per recipient */
    char **eids;                /* event id per recipient, or NULL */
    char **ecis;
    struct delivery *next;
};

struct delivery *delivery_free(struct delivery *d);

struct ingest;
struct dispatch;

/* ingest_start - the ingest thread; DONE(CTX) is called (from that
 * thread) whenever finished deliveries wait in ingest_take_done(), and
 * the dispatcher is woken after each commit that added entries */
struct ingest *ingest_start(pthread_mutex_t *gate, struct dispatch *dispatch,
                            void (*done)(void *ctx), void *ctx, char *err,
                            size_t errlen);
/* ingest_submit - queue D (ownership passes) */
void ingest_submit(struct ingest *in, struct delivery *d);
/* ingest_take_done - the finished deliveries, oldest first (owned by the
 * caller), or NULL */
struct delivery *ingest_take_done(struct ingest *in);
/* ingest_stop - finish what was submitted, then stop the thread; the
 * finished deliveries stay for ingest_take_done until ingest_free */
void ingest_stop(struct ingest *in);
void ingest_free(struct ingest *in);

/* dispatch_start - the rule engine's thread */
struct dispatch *dispatch_start(pthread_mutex_t *gate, char *err,
                                size_t errlen);
/* dispatch_wake - new inbox entries are committed (any thread) */
void dispatch_wake(struct dispatch *d);
/* dispatch_wake_cb - the same as a callback for imap_fetch_env */
void dispatch_wake_cb(void *d);
/* dispatch_event_wait - run DOMAIN:TYPE on ECI with ATTRS (borrowed) in
 * the next batch and wait for it: {eid, directives} or an error (any
 * thread) */
kval dispatch_event_wait(struct dispatch *d, const char *eci,
                         const char *domain, const char *type,
                         const kval *attrs);
/* dispatch_event_start - the same, calling DONE(ARG, result) from the
 * dispatcher's thread when it has run (or at once if it cannot be
 * queued); DONE gets a value that shares nothing with the dispatcher */
typedef void dispatch_done_fn(void *arg, kval result);
void dispatch_event_start(struct dispatch *d, const char *eci,
                          const char *domain, const char *type,
                          const kval *attrs, dispatch_done_fn *done,
                          void *arg);
/* dispatch_event_async - the same without waiting: {eid} at once */
kval dispatch_event_async(struct dispatch *d, const char *eci,
                          const char *domain, const char *type,
                          const kval *attrs);
/* dispatch_set_sender - woken after each batch (the batch may have
 * queued outbox rows) */
struct sender;
void dispatch_set_sender(struct dispatch *d, struct sender *s);
/* dispatch_set_scheduler - woken after each batch (the batch may have
 * added or removed schedules) */
struct scheduler;
void dispatch_set_scheduler(struct dispatch *d, struct scheduler *s);
/* dispatch_stop - let the current batch finish and stop */
void dispatch_stop(struct dispatch *d);

/* ---- the I/O thread (server.c) ---- */

struct server;

/* server_new - serve the listeners LS (borrowed); signals SIGTERM,
 * SIGINT and SIGHUP must be blocked in every thread (they are read from a
 * signalfd) */
struct server *server_new(struct listener *ls, size_t n_ls, char *err,
                          size_t errlen);
/* server_set_ingest - where complete messages go */
void server_set_ingest(struct server *sv, struct ingest *in);
/* server_ingest_done - callback for ingest_start: wakes the I/O loop */
void server_ingest_done(void *server);
/* server_run - serve until SIGTERM/SIGINT; then stop accepting, let the
 * deliveries in flight finish (up to a deadline) and close every
 * connection.  SIGHUP re-reads the configuration.  0, or -1 on a fatal
 * error. */
int server_run(struct server *sv);
struct server *server_free(struct server *sv);

#endif
