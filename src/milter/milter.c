/*
 * milter.c - picomail-milter: a libmilter filter for Postfix's smtpd that
 * refuses, before the message is queued, the channel mail that picomaild's
 * LMTP server would refuse after it (DESIGN.md §1, §4), so refused mail is
 * a clean 5xx to the real client instead of a bounce.
 *
 * Owns: the command line and configuration of the program, the
 * per-connection state, the pool of store connections, and the decisions
 * at RCPT and at end of message.  The rules themselves are
 * mail_accept_rcpt() and mail_accept_message() (mail_accept.h), the same
 * ones the LMTP server and the socketmap apply.
 *
 *   envfrom   remember the envelope sender (bare, "" for <>)
 *   envrcpt   a recipient not of mail_domain: not ours, continue.
 *             Otherwise mail_accept_rcpt(): a refusal is that recipient's
 *             reply (550 reject, 451 tempfail); an accepted one is
 *             remembered with its channel.
 *   header    keep the first From: and the Authentication-Results fields,
 *             the only ones the end-of-message rule reads (bounded: a
 *             From: over MAX_FROM_FIELD counts as no From:, A-R fields
 *             past MAX_AR_FIELDS or MAX_AR_BYTES are not read)
 *   eom       rebuild those fields into a header block and let mime_parse
 *             find the From: address and the trusted A-R results exactly
 *             as the LMTP side will; then mail_accept_message() per
 *             accepted recipient.  All refused (and no recipient of other
 *             domains): reject the message with the first refusal.  Some
 *             refused: delete those recipients and let the rest through.
 *
 * libmilter runs one thread per SMTP connection.  A SQLite connection
 * belongs to one thread at a time, so store connections are borrowed from a
 * small mutex-protected pool for one lookup and given back.  Nothing is
 * shared between connection threads otherwise.  SIGTERM, SIGHUP and
 * SIGINT are handled by libmilter's own signal thread (it blocks them in
 * every other thread), which does what smfi_stop() does: stop listening
 * and let smfi_main return.  A handler of ours would never run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "picomail/buf.h"
#include "picomail/conf.h"
#include "picomail/logmsg.h"
#include "picomail/mail_accept.h"
#include "picomail/mem.h"
#include "picomail/mime.h"
#include "picomail/store.h"
#include "picomail/value.h"

#define PROGRAM "picomail-milter"

/* Defaults of the keys this program reads (conf/picomail.conf documents
 * them; repeated here so the program works with an older conf.c). */
#define DEFAULT_LISTEN "inet:2426@127.0.0.1"
#define DEFAULT_LOG "stderr"

/* Bounds on what one message may make us keep (hostile input). */
#define MAX_RCPTS 1000              /* our recipients per message */
#define MAX_ADDR 512                /* longer envelope addresses are cut */
#define MAX_FROM_FIELD (128 * 1024) /* above Postfix's header_size_limit */
#define MAX_AR_FIELD (64 * 1024)    /* mime.c ignores longer A-R fields */
#define MAX_AR_FIELDS 50            /* A-R fields kept per message */
#define MAX_AR_BYTES (1024 * 1024)  /* and their bytes */
#define POOL_MAX 16                 /* idle store connections kept */

/* ---- configuration (read once in main, then read-only) ---- */

static const char *cfg_database;        /* absolute path */
static const char *cfg_mail_domain;
static const char *cfg_trusted_authserv;    /* NULL: no A-R is trusted */

/* ---- the store pool ---- */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store *pool[POOL_MAX];
static size_t pool_n;

/* store_borrow - an idle connection, or a new one; NULL (ERR filled) when
 * the database cannot be opened */
static struct store *
store_borrow(char *err, size_t errlen)
{
    struct store *st = NULL;

    pthread_mutex_lock(&pool_lock);
    if (pool_n > 0)
        st = pool[--pool_n];
    pthread_mutex_unlock(&pool_lock);
    if (st == NULL) {
        struct store_options opt = { .busy_timeout_ms = 5000,
                                     .synchronous_full = false,
                                     .write_gate = NULL };
        st = store_open(cfg_database, &opt, err, errlen);
    }
    return st;
}

/* store_give_back - return ST to the pool; BROKEN (it just failed) or a
 * full pool closes it instead */
static void
store_give_back(struct store *st, bool broken)
{
    if (st == NULL)
        return;
    if (!broken) {
        pthread_mutex_lock(&pool_lock);
        if (pool_n < POOL_MAX) {
            pool[pool_n++] = st;
            st = NULL;
        }
        pthread_mutex_unlock(&pool_lock);
    }
    store_close(st);
}

static void
pool_close_all(void)
{
    pthread_mutex_lock(&pool_lock);
    while (pool_n > 0)
        store_close(pool[--pool_n]);
    pthread_mutex_unlock(&pool_lock);
}

/* ---- per-connection state ---- */

/* One accepted recipient of ours. */
struct rcpt {
    char *arg;                  /* as given in RCPT TO (for smfi_delrcpt) */
    char *addr;                 /* bare address */
    struct mail_channel ch;     /* what mail_accept_rcpt found */
};

struct conn {
    /* the message being received */
    bool in_message;            /* after MAIL FROM */
    char *sender;               /* bare envelope sender; "" for <> */
    struct rcpt *rcpts;
    size_t n_rcpts, cap_rcpts;
    size_t n_other;             /* recipients of other domains */
    struct buf fields;          /* From: and A-R fields, rebuilt */
    bool have_from;
    size_t n_ar, ar_bytes;
    bool from_cut;              /* From: too long to judge */
    bool ar_cut;                /* A-R fields past the bounds ignored */
};

static void
message_reset(struct conn *c)
{
    free(c->sender);
    c->sender = NULL;
    for (size_t i = 0; i < c->n_rcpts; i++) {
        free(c->rcpts[i].arg);
        free(c->rcpts[i].addr);
        mail_channel_release(&c->rcpts[i].ch);
    }
    c->n_rcpts = 0;
    c->n_other = 0;
    buf_release(&c->fields);
    c->have_from = false;
    c->n_ar = 0;
    c->ar_bytes = 0;
    c->from_cut = false;
    c->ar_cut = false;
    c->in_message = false;
}

/* conn_of - the connection state of CTX, made on first use */
static struct conn *
conn_of(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);

    if (c == NULL) {
        c = xcalloc(1, sizeof *c);
        buf_init(&c->fields);
        smfi_setpriv(ctx, c);
    }
    return c;
}

/* ---- small helpers ---- */

/* bare_address - the address of an SMTP path argument: angle brackets and
 * a source route ("@a,@b:") dropped, cut at MAX_ADDR bytes; malloc'd */
static char *
bare_address(const char *arg)
{
    const char *p = arg, *end;

    while (*p == ' ')
        p++;
    if (*p == '<')
        p++;
    end = p + strlen(p);
    while (end > p && end[-1] == ' ')
        end--;
    if (end > p && end[-1] == '>')
        end--;
    if (p < end && *p == '@') {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon != NULL)
            p = colon + 1;
    }
    size_t n = (size_t)(end - p);
    return xmemdup(p, n > MAX_ADDR ? MAX_ADDR : n);
}

/* queue_id - the "i" macro, or NOQUEUE before Postfix has assigned one */
static const char *
queue_id(SMFICTX *ctx)
{
    const char *id = smfi_getsymval(ctx, "i");
    return id != NULL && *id != '\0' ? id : "NOQUEUE";
}

/*
 * set_reply - make REPLY ("550 5.1.1 text") this filter's SMTP reply for
 * a rejection (TEMPORARY: a tempfail).  A reply line without a usable code
 * gets 550 5.7.1 (451 4.3.0) and is all text.  libmilter treats the text
 * as a format, so '%' is doubled to show as itself.
 */
static void
set_reply(SMFICTX *ctx, const char *reply, bool temporary)
{
    char code[4], xcode[16];
    const char *text = reply;
    struct buf t;

    snprintf(code, sizeof code, "%s", temporary ? "451" : "550");
    snprintf(xcode, sizeof xcode, "%s", temporary ? "4.3.0" : "5.7.1");
    if (strlen(reply) >= 4 && reply[3] == ' ' &&
        reply[0] == (temporary ? '4' : '5') &&
        strspn(reply, "0123456789") == 3) {
        memcpy(code, reply, 3);
        code[3] = '\0';
        text = reply + 4;
        size_t xl = strcspn(text, " ");
        if (xl >= 5 && xl < sizeof xcode && text[0] == reply[0] &&
            text[1] == '.' && strspn(text, "0123456789.") == xl) {
            memcpy(xcode, text, xl);
            xcode[xl] = '\0';
            text += xl;
            while (*text == ' ')
                text++;
        }
    }
    buf_init(&t);
    for (const char *p = text; *p != '\0' && t.len < 900; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '%')
            buf_adds(&t, "%%");
        else
            buf_addc(&t, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
    }
    if (smfi_setreply(ctx, code, xcode, t.data) != MI_SUCCESS)
        logmsg(LOG_WARNING, "smfi_setreply refused \"%s %s %s\"", code,
               xcode, t.data);
    buf_release(&t);
}

/* ---- callbacks ---- */

static sfsistat
on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    (void)addr;
    conn_of(ctx);
    logmsg(LOG_DEBUG, "connect from %s", host != NULL ? host : "?");
    return SMFIS_CONTINUE;
}

static sfsistat
on_envfrom(SMFICTX *ctx, char **argv)
{
    struct conn *c = conn_of(ctx);

    message_reset(c);
    c->sender = bare_address(argv != NULL && argv[0] != NULL ? argv[0] : "");
    c->in_message = true;
    return SMFIS_CONTINUE;
}

static sfsistat
on_envrcpt(SMFICTX *ctx, char **argv)
{
    struct conn *c = conn_of(ctx);
    const char *arg = argv != NULL && argv[0] != NULL ? argv[0] : "";
    char *addr = bare_address(arg);
    struct mail_rcpt parsed;
    char reply[MAIL_REPLY_MAX], err[256];

    if (mail_rcpt_parse(addr, cfg_mail_domain, &parsed) ==
        MAIL_RCPT_OTHER_DOMAIN) {
        /* not ours: never interfere with other mail */
        c->n_other++;
        free(addr);
        return SMFIS_CONTINUE;
    }
    const char *qid = queue_id(ctx);
    const char *sender = c->in_message ? c->sender : NULL;
    if (c->n_rcpts >= MAX_RCPTS) {
        snprintf(reply, sizeof reply, "452 4.5.3 too many recipients");
        logmsg(LOG_INFO, "%s: RCPT from=<%s> to=<%s>: tempfail: %s", qid,
               sender != NULL ? sender : "", addr, reply);
        set_reply(ctx, reply, true);
        free(addr);
        return SMFIS_TEMPFAIL;
    }

    struct mail_channel ch;
    enum mail_verdict_code v;
    struct store *st = store_borrow(err, sizeof err);
    if (st == NULL) {
        logmsg(LOG_ERR, "%s: cannot open the database: %s", qid, err);
        snprintf(reply, sizeof reply,
                 "451 4.3.0 channels temporarily unavailable, try again "
                 "later");
        memset(&ch, 0, sizeof ch);
        ch.senders = kval_null();
        v = MAIL_TEMPFAIL;
    } else {
        v = mail_accept_rcpt(st, cfg_mail_domain, addr, sender, &ch, reply);
        if (v == MAIL_TEMPFAIL)
            logmsg(LOG_ERR, "%s: store: %s", qid, store_errmsg(st));
        store_give_back(st, v == MAIL_TEMPFAIL);
    }

    if (v != MAIL_ACCEPT) {
        bool temp = v == MAIL_TEMPFAIL;
        logmsg(LOG_INFO, "%s: RCPT from=<%s> to=<%s>: %s: %s", qid,
               sender != NULL ? sender : "", addr,
               temp ? "tempfail" : "reject", reply);
        set_reply(ctx, reply, temp);
        mail_channel_release(&ch);
        free(addr);
        return temp ? SMFIS_TEMPFAIL : SMFIS_REJECT;
    }
    logmsg(LOG_INFO, "%s: RCPT from=<%s> to=<%s>: accept (channel %s)", qid,
           sender != NULL ? sender : "", addr, ch.eci);
    if (c->n_rcpts == c->cap_rcpts) {
        c->cap_rcpts = c->cap_rcpts ? c->cap_rcpts * 2 : 4;
        c->rcpts = xreallocarray(c->rcpts, c->cap_rcpts, sizeof *c->rcpts);
    }
    struct rcpt *r = &c->rcpts[c->n_rcpts++];
    r->arg = xstrdup(arg);
    r->addr = addr;
    r->ch = ch;
    return SMFIS_CONTINUE;
}

/* keep_field - append "NAME: VALUE" to the rebuilt header block.  Folded
 * lines keep their fold; a line break not followed by white space (which a
 * sane MTA never sends) becomes a fold, so one field cannot end the block
 * or start another field. */
static void
keep_field(struct buf *b, const char *name, const char *value)
{
    buf_adds(b, name);
    buf_adds(b, ":");
    if (*value != ' ' && *value != '\t')
        buf_addc(b, ' ');
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\r')
            continue;
        buf_addc(b, *p);
        if (*p == '\n' && p[1] != ' ' && p[1] != '\t')
            buf_addc(b, ' ');
    }
    buf_addc(b, '\n');
}

static sfsistat
on_header(SMFICTX *ctx, char *name, char *value)
{
    struct conn *c = conn_of(ctx);

    if (c->n_rcpts == 0 || name == NULL || value == NULL)
        return SMFIS_CONTINUE;      /* nothing of ours to judge */
    if (strcasecmp(name, "From") == 0) {
        /* mime.c reads the first From: only */
        if (c->have_from)
            return SMFIS_CONTINUE;
        c->have_from = true;
        if (strlen(value) > MAX_FROM_FIELD)
            c->from_cut = true;
        else
            keep_field(&c->fields, "From", value);
    } else if (strcasecmp(name, "Authentication-Results") == 0) {
        size_t len = strlen(value), folds = 0;
        for (const char *p = value; *p != '\0'; p++)
            folds += *p == '\n';
        /* mime.c ignores a field whose raw value (with a CR per fold and
         * the leading space) is longer: so do we, erring on the short side */
        if (len + folds + 2 > MAX_AR_FIELD)
            return SMFIS_CONTINUE;
        /* Past the bounds the rest is ignored.  A "pass" beats the other
         * results, so reading fewer fields can only lose a pass: the
         * milter may then refuse what the LMTP side would take, never the
         * reverse.  Our own milters' fields come first anyway. */
        if (c->n_ar >= MAX_AR_FIELDS || c->ar_bytes + len > MAX_AR_BYTES) {
            c->ar_cut = true;
            return SMFIS_CONTINUE;
        }
        c->n_ar++;
        c->ar_bytes += len;
        keep_field(&c->fields, "Authentication-Results", value);
    }
    return SMFIS_CONTINUE;
}

/*
 * message_facts - the From: address (FROM, malloc'd or NULL) and the
 * trusted A-R results (AUTH, a map or null) of the kept fields, as
 * mime_parse finds them in the whole message
 */
static void
message_facts(struct conn *c, const char *qid, char **from, kval *auth)
{
    struct mime_options opt = { 0, cfg_trusted_authserv };
    struct mime_result res;
    char err[256];

    *from = NULL;
    *auth = kval_null();
    if (c->fields.len == 0)
        return;
    buf_addc(&c->fields, '\n');     /* end of the header block, no body */
    if (mime_parse(c->fields.data, c->fields.len, &opt, &res, err,
                   sizeof err) != 0) {
        logmsg(LOG_WARNING, "%s: From:/Authentication-Results unreadable: %s",
               qid, err);
        return;
    }
    const kval *f = kval_map_get_str(&res.attrs, "from");
    if (!c->from_cut && f != NULL && kval_kind(f) == KV_STRING)
        *from = xstrdup(kval_str_ptr(f));
    const kval *a = kval_map_get_str(&res.attrs, "auth");
    if (a != NULL)
        *auth = kval_copy(a);
    mime_result_release(&res);
}

static sfsistat
on_eom(SMFICTX *ctx)
{
    struct conn *c = conn_of(ctx);
    sfsistat ret = SMFIS_CONTINUE;

    if (c->n_rcpts == 0) {
        message_reset(c);
        return SMFIS_CONTINUE;
    }
    const char *qid = queue_id(ctx);
    char *from;
    kval auth;
    message_facts(c, qid, &from, &auth);
    if (c->from_cut)
        logmsg(LOG_WARNING, "%s: From: field over %d bytes: taken as none",
               qid, MAX_FROM_FIELD);
    if (c->ar_cut)
        logmsg(LOG_WARNING, "%s: Authentication-Results fields past the "
               "first %zu ignored", qid, c->n_ar);

    /* why[i]: the refusal of recipient i, NULL when accepted */
    char **why = xcalloc(c->n_rcpts, sizeof *why);
    char reply[MAIL_REPLY_MAX];
    size_t n_refused = 0, first = 0;
    const kval *a = kval_is_null(&auth) ? NULL : &auth;
    for (size_t i = 0; i < c->n_rcpts; i++) {
        struct rcpt *r = &c->rcpts[i];
        if (mail_accept_message(&r->ch, r->addr, from, a, reply) ==
            MAIL_ACCEPT)
            continue;
        why[i] = xstrdup(reply);
        if (n_refused++ == 0)
            first = i;
    }

    const char *sender = c->sender != NULL ? c->sender : "";
    const char *hfrom = from != NULL ? from : "";
    if (n_refused == c->n_rcpts && c->n_other == 0) {
        /* nobody left to deliver to: a clean 5xx for the whole message */
        for (size_t i = 0; i < c->n_rcpts; i++)
            logmsg(LOG_INFO, "%s: EOM from=<%s> to=<%s> header_from=<%s>: "
                   "reject: %s", qid, sender, c->rcpts[i].addr, hfrom,
                   why[i]);
        set_reply(ctx, why[first], false);
        ret = SMFIS_REJECT;
    } else {
        for (size_t i = 0; i < c->n_rcpts; i++) {
            struct rcpt *r = &c->rcpts[i];
            if (why[i] == NULL) {
                logmsg(LOG_INFO, "%s: EOM from=<%s> to=<%s> header_from=<%s>:"
                       " accept", qid, sender, r->addr, hfrom);
            } else if (smfi_delrcpt(ctx, r->arg) == MI_SUCCESS) {
                logmsg(LOG_INFO, "%s: EOM from=<%s> to=<%s> header_from=<%s>:"
                       " recipient removed: %s", qid, sender, r->addr, hfrom,
                       why[i]);
            } else {
                /* cannot drop it: better later than to the wrong place */
                logmsg(LOG_ERR, "%s: EOM to=<%s>: smfi_delrcpt failed: "
                       "tempfail", qid, r->addr);
                set_reply(ctx, "451 4.3.0 cannot remove a refused recipient,"
                          " try again later", true);
                ret = SMFIS_TEMPFAIL;
                break;
            }
        }
    }
    for (size_t i = 0; i < c->n_rcpts; i++)
        free(why[i]);
    free(why);
    free(from);
    kval_free(auth);
    message_reset(c);
    return ret;
}

static sfsistat
on_abort(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);
    if (c != NULL)
        message_reset(c);
    return SMFIS_CONTINUE;
}

static sfsistat
on_close(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);
    if (c != NULL) {
        message_reset(c);
        buf_release(&c->fields);
        free(c->rcpts);
        free(c);
        smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

/* ---- the program ---- */

static void
usage(FILE *to)
{
    fprintf(to,
            "usage: " PROGRAM " [-c FILE] [-f] [-d]\n"
            "  -c FILE  configuration file (default: $PICOMAIL_CONF, else\n"
            "           the installed picomail.conf, else built-in defaults)\n"
            "  -f       stay in the foreground\n"
            "  -d       debug log lines\n");
}

/* conf_value - KEY of C, or DEF when the key has no value */
static const char *
conf_value(const struct conf *c, const char *key, const char *def)
{
    const char *v = conf_get(c, key);
    return v != NULL ? v : def;
}

/* unix_path - the socket path of a libmilter connection spec
 * ("unix:PATH", "local:PATH" or a bare PATH), or NULL for inet */
static const char *
unix_path(const char *spec)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return spec + 5;
    if (strncmp(spec, "local:", 6) == 0)
        return spec + 6;
    if (strchr(spec, ':') == NULL)
        return spec;
    return NULL;
}

/* detach - run in the background: a new session, stdin and stdout (and
 * stderr unless the log goes there) on /dev/null */
static int
detach(bool keep_stderr)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -1;
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return -1;
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (!keep_stderr)
        dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
    return chdir("/");
}

int
main(int argc, char **argv)
{
    const char *conf_path = NULL;
    bool foreground = false, debug = false;
    int opt;

    while ((opt = getopt(argc, argv, "c:fdh")) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'd':
            debug = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    char err[512];
    struct conf *conf = conf_load(conf_path != NULL ? conf_path
                                                    : conf_default_path(),
                                  err, sizeof err);
    if (conf == NULL) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        return 1;
    }
    const char *log_to = conf_value(conf, "log", DEFAULT_LOG);
    bool to_syslog = strcmp(log_to, "syslog") == 0;
    if (!to_syslog && strcmp(log_to, "stderr") != 0) {
        fprintf(stderr, PROGRAM ": log must be stderr or syslog, not \"%s\"\n",
                log_to);
        conf_free(conf);
        return 1;
    }
    const char *db = conf_value(conf, "database", "./var/picomail.db");
    cfg_mail_domain = xstrdup(conf_value(conf, "mail_domain",
                                         "picos.localhost"));
    const char *trusted = conf_value(conf, "trusted_authserv_id", "");
    cfg_trusted_authserv = *trusted != '\0' ? xstrdup(trusted) : NULL;
    char *listen = xstrdup(conf_value(conf, "milter_listen", DEFAULT_LISTEN));

    /* The database must exist (picomail init made it): the milter only
     * reads it, and an empty new file would refuse every channel.  Its
     * absolute path survives the chdir of detach(). */
    char real[PATH_MAX];
    if (realpath(db, real) == NULL) {
        fprintf(stderr, PROGRAM ": database %s: %s\n", db, strerror(errno));
        conf_free(conf);
        return 1;
    }
    cfg_database = xstrdup(real);
    conf_free(conf);

    /* one connection now, so a bad database is an error at start-up; it
     * is closed again before any fork (SQLite connections must not cross
     * one) */
    struct store *st = store_open(cfg_database, NULL, err, sizeof err);
    if (st == NULL) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        return 1;
    }
    store_close(st);

    struct smfiDesc desc = {
        .xxfi_name = (char *)PROGRAM,
        .xxfi_version = SMFI_VERSION,
        .xxfi_flags = SMFIF_DELRCPT,
        .xxfi_connect = on_connect,
        .xxfi_envfrom = on_envfrom,
        .xxfi_envrcpt = on_envrcpt,
        .xxfi_header = on_header,
        .xxfi_eom = on_eom,
        .xxfi_abort = on_abort,
        .xxfi_close = on_close,
    };
    if (smfi_setconn(listen) != MI_SUCCESS || smfi_register(desc) !=
        MI_SUCCESS) {
        fprintf(stderr, PROGRAM ": cannot use milter_listen \"%s\"\n",
                listen);
        return 1;
    }
    /* open the listener before detaching, so a bad address or a port in
     * use is reported to whoever started us */
    if (smfi_opensocket(true) != MI_SUCCESS) {
        fprintf(stderr, PROGRAM ": cannot listen on \"%s\"\n", listen);
        return 1;
    }
    /* the socket to remove at exit, as an absolute path (detach changes
     * the directory) */
    char *sock = NULL;
    const char *path = unix_path(listen);
    if (path != NULL && *path == '/') {
        sock = xstrdup(path);
    } else if (path != NULL && *path != '\0') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) != NULL) {
            struct buf b;
            buf_init(&b);
            buf_printf(&b, "%s/%s", cwd, path);
            sock = buf_take(&b, NULL);
        }
    }
    mime_init();
    logmsg_open(PROGRAM, to_syslog, debug);
    if (!foreground && detach(!to_syslog) != 0) {
        logmsg(LOG_ERR, "cannot run in the background: %s", strerror(errno));
        return 1;
    }
    logmsg(LOG_INFO, "listening on %s, mail_domain %s, database %s%s%s",
           listen, cfg_mail_domain, cfg_database,
           cfg_trusted_authserv != NULL ? ", trusting A-R of " : "",
           cfg_trusted_authserv != NULL ? cfg_trusted_authserv : "");

    int rc = smfi_main();
    pool_close_all();
    /* libmilter leaves its UNIX socket behind */
    if (sock != NULL)
        unlink(sock);
    free(sock);
    logmsg(rc == MI_SUCCESS ? LOG_INFO : LOG_ERR, "stopped%s",
           rc == MI_SUCCESS ? "" : " after an error");
    free(listen);
    return rc == MI_SUCCESS ? 0 : 1;
}
