/*
 * imap_fetch.c - the IMAP fetcher (libetpan); see imap_fetch.h.
 *
 * Each configured mailbox has a thread that loops: connect (TCP, then
 * TLS as configured, the server certificate checked with OpenSSL because
 * Debian's libetpan (GnuTLS) checks none), log in, SELECT, then rounds of
 * UID SEARCH -> for each message: UID FETCH, raise, commit, flag or move
 * -> wait (IDLE, or NOOP every poll interval).  Any connection or store
 * error drops the connection and retries after a backoff that doubles up
 * to imap_reconnect_max.
 *
 * Stopping: the fetcher's stop pipe becomes readable (a byte written and
 * never read), so every wait of every thread (backoff, poll interval,
 * IDLE, connect) returns at once; a thread blocked inside libetpan is
 * woken by shutdown(2) of its socket, which imap_fetch_stop does under the
 * mailbox's lock.  libetpan's own network timeout (imap_timeout) bounds
 * everything else.
 *
 * The password is read from its file (or environment variable) at each
 * login, so a changed password needs no restart, and is wiped after use.
 */
#include "imap_fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libetpan/libetpan.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "picomail/address.h"
#include "picomail/buf.h"
#include "picomail/logmsg.h"
#include "picomail/mail_accept.h"
#include "picomail/mem.h"
#include "picomail/store.h"

#define NAME_MAX_LEN 64         /* a mailbox name in imap_mailboxes */
#define ADDR_MAX 256            /* RFC 5321 path limit */
#define PASSWORD_MAX 1024
#define STORE_RETRY_S 5         /* first wait when the store won't open */

enum tls_mode { TLS_IMAPS, TLS_STARTTLS, TLS_NONE };
enum after_mode { AFTER_SEEN, AFTER_MOVE };

/* One configured mailbox and its thread. */
struct mailbox {
    struct imap_fetcher *f;     /* owner */
    char *name;
    char *host;
    char port[8];
    enum tls_mode tls;
    bool tls_verify;
    char *tls_ca_file;          /* NULL: the system's trust store */
    char *user;
    char *password_file;        /* exactly one of these two */
    char *password_env;
    char *folder;
    char *rcpt;                 /* the channel address events are raised
                                   through: ECI[+DOMAIN.TYPE]@mail_domain */
    enum after_mode after;
    char *move_to;
    bool idle;
    int poll_s, idle_s, timeout_s, reconnect_max_s;
    size_t max_size;

    pthread_t thread;
    bool started;
    pthread_mutex_t lock;       /* guards fd */
    int fd;                     /* the current connection's socket, or -1 */
};

struct imap_fetcher {
    struct imap_fetch_env env;  /* strings borrowed */
    struct mailbox *mb;
    size_t n;
    int stop_pipe[2];
    atomic_bool stopping;
};

/* What became of one message. */
enum outcome {
    OUT_STORED,                 /* committed (or known already) */
    OUT_REFUSED,                /* permanently refused: flag it anyway */
    OUT_TEMPFAIL,               /* try again later */
    OUT_NOCHANNEL               /* the configured channel address is
                                   unknown: a configuration error, keep
                                   the message and try again later */
};

/* ---- configuration ---- */

/* Keys that a mailbox may leave to the shared imap_KEY, with the values
 * used when neither is set (conf.c may not know them). */
static const char *const shared_defaults[][2] = {
    {"port", ""},
    {"tls", "imaps"},
    {"tls_verify", "yes"},
    {"tls_ca_file", ""},
    {"folder", "INBOX"},
    {"event", "mail:received"},
    {"after", "seen"},
    {"move_to", ""},
    {"poll_interval", "60s"},
    {"idle", "yes"},
    {"idle_timeout", "25m"},
    {"timeout", "60s"},
    {"reconnect_max", "5m"},
};

/* mb_conf - the value of imap_NAME_KEY, else (for a shared key) of
 * imap_KEY, else its default; NULL when empty or unset */
static const char *
mb_conf(const struct conf *c, const char *name, const char *key)
{
    char k[160];
    const char *v;

    snprintf(k, sizeof k, "imap_%s_%s", name, key);
    v = conf_get(c, k);
    if (v != NULL && *v != '\0')
        return v;
    for (size_t i = 0; i < sizeof shared_defaults / sizeof *shared_defaults;
         i++) {
        if (strcmp(shared_defaults[i][0], key) != 0)
            continue;
        snprintf(k, sizeof k, "imap_%s", key);
        v = conf_get(c, k);
        if (v == NULL || *v == '\0')
            v = shared_defaults[i][1];
        return *v != '\0' ? v : NULL;
    }
    return NULL;
}

/* parse_time - "N" seconds or N with a unit s, m, h, d (Postfix style),
 * 1 s to 7 days; -1 when malformed */
static int
parse_time(const char *s, int *out)
{
    char *end;
    long mult = 1;

    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno != 0 || v < 0)
        return -1;
    if (*end != '\0') {
        switch (*end) {
        case 's': mult = 1; break;
        case 'm': mult = 60; break;
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        default: return -1;
        }
        if (end[1] != '\0')
            return -1;
    }
    if (v > 7 * 86400 / mult || v * mult < 1)
        return -1;
    *out = (int)(v * mult);
    return 0;
}

static int
parse_bool(const char *s, bool *out)
{
    if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 ||
        strcmp(s, "1") == 0 || strcasecmp(s, "on") == 0)
        *out = true;
    else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 ||
             strcmp(s, "0") == 0 || strcasecmp(s, "off") == 0)
        *out = false;
    else
        return -1;
    return 0;
}

static bool
is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 ||
           strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

static bool
is_ip_literal(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 ||
           inet_pton(AF_INET6, host, a) == 1;
}

/* read_password - MB's password in OUT (wipe it after use); 0, or -1
 * with ERR */
static int read_password(const struct mailbox *mb, char *out, size_t outlen,
                         char *err, size_t errlen);

static void
mailbox_release(struct mailbox *mb)
{
    free(mb->name);
    free(mb->host);
    free(mb->tls_ca_file);
    free(mb->user);
    free(mb->password_file);
    free(mb->password_env);
    free(mb->folder);
    free(mb->rcpt);
    free(mb->move_to);
    pthread_mutex_destroy(&mb->lock);
}

/* mailbox_conf - fill MB for mailbox NAME; 0, or -1 with ERR */
static int
mailbox_conf(struct mailbox *mb, const struct conf *c, const char *name,
             const char *mail_domain, char *err, size_t errlen)
{
    const char *v;

#define FAIL(key, ...)                                                     \
    do {                                                                   \
        int n_ = snprintf(err, errlen, "imap_%s_%s: ", name, key);         \
        if (n_ >= 0 && (size_t)n_ < errlen)                                \
            snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);          \
        return -1;                                                         \
    } while (0)

    mb->name = xstrdup(name);
    if ((v = mb_conf(c, name, "host")) == NULL)
        FAIL("host", "missing: the IMAP server's host name");
    mb->host = xstrdup(v);

    v = mb_conf(c, name, "tls");
    if (strcmp(v, "imaps") == 0)
        mb->tls = TLS_IMAPS;
    else if (strcmp(v, "starttls") == 0)
        mb->tls = TLS_STARTTLS;
    else if (strcmp(v, "none") == 0)
        mb->tls = TLS_NONE;
    else
        FAIL("tls", "\"%s\": use imaps, starttls or none", v);

    if ((v = mb_conf(c, name, "port")) == NULL)
        v = mb->tls == TLS_IMAPS ? "993" : "143";
    char *end;
    long port = strtol(v, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        FAIL("port", "\"%s\" is not a port number", v);
    snprintf(mb->port, sizeof mb->port, "%ld", port);

    if (parse_bool(mb_conf(c, name, "tls_verify"), &mb->tls_verify) != 0)
        FAIL("tls_verify", "use yes or no");
    if ((v = mb_conf(c, name, "tls_ca_file")) != NULL) {
        if (access(v, R_OK) != 0)
            FAIL("tls_ca_file", "%s: %s", v, strerror(errno));
        mb->tls_ca_file = xstrdup(v);
    }

    if ((v = mb_conf(c, name, "user")) == NULL)
        FAIL("user", "missing: the login name");
    mb->user = xstrdup(v);
    const char *pf = mb_conf(c, name, "password_file");
    const char *pe = mb_conf(c, name, "password_env");
    if ((pf == NULL) == (pe == NULL))
        FAIL("password_file",
             "give exactly one of imap_%s_password_file (a file holding the "
             "password) and imap_%s_password_env (an environment variable)",
             name, name);
    mb->password_file = pf != NULL ? xstrdup(pf) : NULL;
    mb->password_env = pe != NULL ? xstrdup(pe) : NULL;
    {
        char pw[PASSWORD_MAX], why[256];
        int rc = read_password(mb, pw, sizeof pw, why, sizeof why);
        explicit_bzero(pw, sizeof pw);
        if (rc != 0)
            FAIL(pf != NULL ? "password_file" : "password_env", "%s", why);
    }
    if (pf != NULL) {
        struct stat sb;
        if (stat(pf, &sb) == 0 && (sb.st_mode & S_IROTH) != 0)
            logmsg(LOG_WARNING, "imap %s: password file %s is readable by "
                   "everyone", name, pf);
    }

    mb->folder = xstrdup(mb_conf(c, name, "folder"));

    /* the channel and event make a channel address, so that the channel's
       policy applies exactly as to mail delivered over LMTP */
    const char *eci = mb_conf(c, name, "channel");
    if (eci == NULL)
        FAIL("channel", "missing: the ECI (or alias) of the channel the "
             "messages are raised on");
    const char *event = mb_conf(c, name, "event");
    const char *colon = strchr(event, ':');
    if (colon == NULL || colon == event || colon[1] == '\0')
        FAIL("event", "\"%s\": use DOMAIN:TYPE", event);
    struct buf a;
    buf_init(&a);
    if (strcmp(event, "mail:received") == 0)
        buf_printf(&a, "%s@%s", eci, mail_domain);
    else
        buf_printf(&a, "%s+%.*s.%s@%s", eci, (int)(colon - event), event,
                   colon + 1, mail_domain);
    mb->rcpt = buf_take(&a, NULL);
    struct mail_rcpt r;
    if (mail_rcpt_parse(mb->rcpt, mail_domain, &r) != MAIL_RCPT_OK ||
        strncmp(r.domain, event, (size_t)(colon - event)) != 0 ||
        r.domain[colon - event] != '\0' || strcmp(r.type, colon + 1) != 0)
        FAIL("channel", "\"%s\" with event %s makes no channel address",
             eci, event);

    v = mb_conf(c, name, "after");
    if (strcmp(v, "seen") == 0) {
        mb->after = AFTER_SEEN;
    } else if (strcmp(v, "move") == 0) {
        mb->after = AFTER_MOVE;
        if ((v = mb_conf(c, name, "move_to")) == NULL)
            FAIL("move_to", "missing: the folder messages are moved to");
        if (strcmp(v, mb->folder) == 0)
            FAIL("move_to", "the same folder as imap_%s_folder", name);
        mb->move_to = xstrdup(v);
    } else {
        FAIL("after", "\"%s\": use seen or move", v);
    }

    if (parse_bool(mb_conf(c, name, "idle"), &mb->idle) != 0)
        FAIL("idle", "use yes or no");
    static const char *const times[] = {"poll_interval", "idle_timeout",
                                        "timeout", "reconnect_max"};
    int *slots[] = {&mb->poll_s, &mb->idle_s, &mb->timeout_s,
                    &mb->reconnect_max_s};
    for (size_t i = 0; i < 4; i++) {
        v = mb_conf(c, name, times[i]);
        if (parse_time(v, slots[i]) != 0)
            FAIL(times[i], "\"%s\" is not a time (e.g. 60s, 5m, 1h)", v);
    }
    if (mb->idle_s > 29 * 60)       /* RFC 2177: re-issue within 29 min */
        mb->idle_s = 29 * 60;

    v = conf_get(c, "max_message_size");
    unsigned long long max = v != NULL ? strtoull(v, &end, 10) : 0;
    mb->max_size = v != NULL && *end == '\0' && max > 0 ? (size_t)max
                                                         : 26214400;

    if (mb->tls == TLS_NONE && !is_loopback(mb->host))
        logmsg(LOG_WARNING, "imap %s: imap_%s_tls = none: the password "
               "crosses the network in clear text", name, name);
    if (!mb->tls_verify && mb->tls != TLS_NONE)
        logmsg(LOG_WARNING, "imap %s: the certificate of %s is not checked",
               name, mb->host);
    return 0;
#undef FAIL
}

/* ---- waiting and stopping ---- */

static bool
stopping(struct imap_fetcher *f)
{
    return atomic_load(&f->stopping);
}

/* wait_stop - wait up to MS milliseconds; true when the fetcher stops */
static bool
wait_stop(struct imap_fetcher *f, int ms)
{
    struct pollfd p = {.fd = f->stop_pipe[0], .events = POLLIN};

    /* EINTR or not, the caller looks again at what it waits for */
    (void)poll(&p, 1, ms);
    return stopping(f);
}

/* ---- the connection ---- */

static int
read_password(const struct mailbox *mb, char *out, size_t outlen, char *err,
              size_t errlen)
{
    if (mb->password_env != NULL) {
        const char *v = getenv(mb->password_env);
        if (v == NULL || *v == '\0') {
            snprintf(err, errlen, "environment variable %s is not set",
                     mb->password_env);
            return -1;
        }
        if (strlen(v) >= outlen) {
            snprintf(err, errlen, "the password in %s is too long",
                     mb->password_env);
            return -1;
        }
        memcpy(out, v, strlen(v) + 1);
        return 0;
    }
    FILE *fp = fopen(mb->password_file, "re");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", mb->password_file, strerror(errno));
        return -1;
    }
    /* the first line of the file, without its line end */
    if (fgets(out, (int)outlen, fp) == NULL)
        out[0] = '\0';
    fclose(fp);
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0') {
        snprintf(err, errlen, "%s: no password on its first line",
                 mb->password_file);
        return -1;
    }
    return 0;
}

/* tcp_connect - a connected (blocking) socket to the server, or -1 with
 * ERR; gives up at once when the fetcher stops */
static int
tcp_connect(struct mailbox *mb, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res, *ai;
    int fd = -1, rc;

    rc = getaddrinfo(mb->host, mb->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", mb->host, gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "%s port %s: no address", mb->host, mb->port);
    for (ai = res; ai != NULL && !stopping(mb->f); ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        int e = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            e = errno;
            if (e == EINPROGRESS) {
                struct pollfd p[2] = {{.fd = fd, .events = POLLOUT},
                                      {.fd = mb->f->stop_pipe[0],
                                       .events = POLLIN}};
                int n;
                do
                    n = poll(p, 2, mb->timeout_s * 1000);
                while (n < 0 && errno == EINTR);
                socklen_t len = sizeof e;
                if (n == 0)
                    e = ETIMEDOUT;
                else if (n < 0)
                    e = errno;
                else if (p[1].revents != 0)
                    e = ECANCELED;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
                    e = errno;
            }
        }
        if (e == 0) {
            /* libetpan wants a blocking descriptor */
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0)
                break;
            e = errno;
        }
        snprintf(err, errlen, "connect to %s port %s: %s", mb->host,
                 mb->port, strerror(e));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void
sni_callback(struct mailstream_ssl_context *ctx, void *data)
{
    char *host = data;

    if (!is_ip_literal(host))
        mailstream_ssl_set_server_name(ctx, host);
}

/* verify_peer - the server's certificate chain (as sent) leads to a
 * trusted root and names the host; libetpan with GnuTLS checks nothing */
static int
verify_peer(mailstream *s, const struct mailbox *mb, char *err,
            size_t errlen)
{
    carray *chain = mailstream_get_certificate_chain(s);
    STACK_OF(X509) *rest = sk_X509_new_null();
    X509 *leaf = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    int ok = -1;

    if (rest == NULL)
        abort();
    if (chain == NULL || carray_count(chain) == 0) {
        snprintf(err, errlen, "%s sent no certificate", mb->host);
        goto out;
    }
    for (unsigned i = 0; i < carray_count(chain); i++) {
        MMAPString *der = carray_get(chain, i);
        const unsigned char *p = (const unsigned char *)der->str;
        X509 *x = d2i_X509(NULL, &p, (long)der->len);
        if (x == NULL) {
            snprintf(err, errlen, "%s sent an unreadable certificate",
                     mb->host);
            goto out;
        }
        if (i == 0)
            leaf = x;
        else if (sk_X509_push(rest, x) == 0)
            abort();
    }
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL)
        abort();
    if (mb->tls_ca_file != NULL
            ? X509_STORE_load_file(store, mb->tls_ca_file) != 1
            : X509_STORE_set_default_paths(store) != 1) {
        snprintf(err, errlen, "cannot load the trusted certificates %s",
                 mb->tls_ca_file != NULL ? mb->tls_ca_file : "");
        goto out;
    }
    if (X509_STORE_CTX_init(ctx, store, leaf, rest) != 1)
        abort();
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (is_ip_literal(mb->host))
        X509_VERIFY_PARAM_set1_ip_asc(param, mb->host);
    else
        X509_VERIFY_PARAM_set1_host(param, mb->host, 0);
    if (X509_verify_cert(ctx) != 1) {
        snprintf(err, errlen, "certificate of %s not trusted: %s", mb->host,
                 X509_verify_cert_error_string(
                     X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    ok = 0;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(leaf);
    sk_X509_pop_free(rest, X509_free);
    if (chain != NULL)
        mailstream_certificate_chain_free(chain);
    return ok;
}

/* server_says - the text of the server's last tagged reply, for logs */
static const char *
server_says(const mailimap *s)
{
    return s != NULL && s->imap_response != NULL ? s->imap_response : "";
}

/* imap_error - ERR describes libetpan's code R for WHAT */
static int
imap_error(const mailimap *s, int r, const char *what, char *err,
           size_t errlen)
{
    if (r == MAILIMAP_ERROR_STREAM)
        snprintf(err, errlen, "%s: connection lost", what);
    else if (r == MAILIMAP_ERROR_PARSE)
        snprintf(err, errlen, "%s: unreadable reply", what);
    else
        snprintf(err, errlen, "%s refused (%d): %.200s", what, r,
                 server_says(s));
    return -1;
}

/* conn_close - end the session (and its socket) */
static void
conn_close(struct mailbox *mb, mailimap *s, int fd)
{
    pthread_mutex_lock(&mb->lock);
    mb->fd = -1;
    pthread_mutex_unlock(&mb->lock);
    if (s != NULL && s->imap_stream != NULL) {
        /* closed here, not by mailimap_free, which would first say LOGOUT
           and wait for the reply of a server that may be gone */
        mailstream_close(s->imap_stream);       /* and FD */
        s->imap_stream = NULL;
        fd = -1;
    }
    if (s != NULL)
        mailimap_free(s);
    if (fd >= 0)
        close(fd);
}

/* conn_open - connected, logged in and FOLDER selected; NULL with ERR */
static mailimap *
conn_open(struct mailbox *mb, uint32_t *uidvalidity, char *err,
          size_t errlen)
{
    int fd = tcp_connect(mb, err, errlen);
    if (fd < 0)
        return NULL;
    pthread_mutex_lock(&mb->lock);
    bool stop = stopping(mb->f);
    if (!stop)
        mb->fd = fd;
    pthread_mutex_unlock(&mb->lock);
    if (stop) {
        close(fd);
        snprintf(err, errlen, "stopped");
        return NULL;
    }

    mailimap *s = mailimap_new(0, NULL);
    if (s == NULL)
        abort();
    mailimap_set_timeout(s, mb->timeout_s);
    mailstream *stream =
        mb->tls == TLS_IMAPS
            ? mailstream_ssl_open_with_callback_timeout(
                  fd, mb->timeout_s, sni_callback, mb->host)
            : mailstream_socket_open_timeout(fd, mb->timeout_s);
    if (stream == NULL) {
        snprintf(err, errlen, "%s port %s: %s failed", mb->host, mb->port,
                 mb->tls == TLS_IMAPS ? "TLS handshake" : "stream setup");
        conn_close(mb, s, fd);
        return NULL;
    }
    int r = mailimap_connect(s, stream);    /* S owns STREAM from here */
    if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
        if (r == MAILIMAP_NO_ERROR_AUTHENTICATED)
            snprintf(err, errlen, "%s greets with PREAUTH, which picomail "
                     "does not use", mb->host);
        else
            imap_error(s, r, "greeting", err, errlen);
        goto fail;
    }
    if (mb->tls == TLS_STARTTLS) {
        r = mailimap_socket_starttls_with_callback(s, sni_callback,
                                                   mb->host);
        if (r != MAILIMAP_NO_ERROR) {
            imap_error(s, r, "STARTTLS", err, errlen);
            goto fail;
        }
        /* anything read before the handshake but not yet used was sent in
           clear text and would be taken as said under TLS
           (CVE-2020-15953): refuse it */
        if (s->imap_stream->read_buffer_len != 0) {
            snprintf(err, errlen, "%s sent data after its STARTTLS reply",
                     mb->host);
            goto fail;
        }
    }
    if (mb->tls != TLS_NONE && mb->tls_verify &&
        verify_peer(s->imap_stream, mb, err, errlen) != 0)
        goto fail;

    char pw[PASSWORD_MAX];
    if (read_password(mb, pw, sizeof pw, err, errlen) != 0)
        goto fail;
    r = mailimap_login(s, mb->user, pw);
    explicit_bzero(pw, sizeof pw);
    if (r != MAILIMAP_NO_ERROR) {
        imap_error(s, r, "LOGIN", err, errlen);
        goto fail;
    }
    /* the capabilities after login (and after TLS) are the ones that
       count: IDLE, MOVE, UIDPLUS */
    struct mailimap_capability_data *cap = NULL;
    r = mailimap_capability(s, &cap);
    if (r != MAILIMAP_NO_ERROR) {
        imap_error(s, r, "CAPABILITY", err, errlen);
        goto fail;
    }
    mailimap_capability_data_free(cap);
    r = mailimap_select(s, mb->folder);
    if (r != MAILIMAP_NO_ERROR) {
        imap_error(s, r, "SELECT", err, errlen);
        goto fail;
    }
    *uidvalidity = s->imap_selection_info != NULL
                       ? s->imap_selection_info->sel_uidvalidity
                       : 0;
    if (*uidvalidity == 0) {
        snprintf(err, errlen, "%s has no UIDVALIDITY", mb->folder);
        goto fail;
    }
    return s;
fail:
    conn_close(mb, s, fd);
    return NULL;
}

/* ---- one message ---- */

/* crlf - DATA (LEN bytes) with every line ending CRLF, in OUT */
static void
crlf(const char *data, size_t len, struct buf *out)
{
    buf_reserve(out, len + len / 32 + 2);
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
            buf_addc(out, '\r');
        buf_addc(out, data[i]);
    }
}

/* return_path - the address of the message's first Return-Path: header
 * (the one its final delivery added) in OUT ("" for <>); false when there
 * is none or it is not a plain address */
static bool
return_path(const char *msg, size_t len, char *out, size_t outlen)
{
    static const char name[] = "return-path:";
    size_t n = sizeof name - 1;
    const char *p = msg, *end = msg + len;

    while (p < end && *p != '\r' && *p != '\n') {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol != NULL ? eol + 1 : end;
        /* the value runs over continuation lines */
        while (next < end && (*next == ' ' || *next == '\t')) {
            eol = memchr(next, '\n', (size_t)(end - next));
            next = eol != NULL ? eol + 1 : end;
        }
        if ((size_t)(next - p) > n && strncasecmp(p, name, n) == 0) {
            const char *v = p + n, *ve = next;
            while (v < ve && strchr(" \t\r\n", *v) != NULL)
                v++;
            while (ve > v && strchr(" \t\r\n", ve[-1]) != NULL)
                ve--;
            if (v < ve && *v == '<') {
                const char *close = memchr(v, '>', (size_t)(ve - v));
                if (close == NULL)
                    return false;
                v++;
                ve = close;
            }
            size_t alen = (size_t)(ve - v);
            if (alen > ADDR_MAX || alen >= outlen)
                return false;
            for (const char *q = v; q < ve; q++)
                if ((unsigned char)*q <= ' ' || *q == 0x7f || *q == '<' ||
                    *q == '>')
                    return false;
            memcpy(out, v, alen);
            out[alen] = '\0';
            return true;
        }
        p = next;
    }
    return false;
}

/* deliver - raise the message (DATA, LEN bytes) on the channel, stored
 * under QUEUE_ID; REPLY (MAIL_REPLY_MAX bytes) says what happened */
static enum outcome
deliver(struct mailbox *mb, struct store *st, const char *data, size_t len,
        const char *queue_id, char *reply)
{
    const struct imap_fetch_env *env = &mb->f->env;
    char rp[ADDR_MAX + 1];
    bool has_rp = return_path(data, len, rp, sizeof rp);
    struct mail_channel ch;
    enum outcome out;

    /* the envelope sender is the Return-Path when the message has one;
       without one only the From: rules of the channel apply */
    enum mail_verdict_code v = mail_accept_rcpt(
        st, env->mail_domain, mb->rcpt, has_rp ? rp : NULL, &ch, reply);
    if (v != MAIL_ACCEPT) {
        mail_channel_release(&ch);
        if (v == MAIL_TEMPFAIL)
            return OUT_TEMPFAIL;
        return strncmp(reply, "550 5.1.", 8) == 0 ? OUT_NOCHANNEL
                                                  : OUT_REFUSED;
    }

    struct inbox_target t = {.rcpt = mb->rcpt, .ch = &ch};
    struct inbox_message m = {.data = data, .len = len,
                              .mail_from = has_rp ? rp : "",
                              .client_addr = NULL, .queue_id = queue_id,
                              .targets = &t, .n_targets = 1};
    if (inbox_prepare(&m, &env->inbox) != 0 || t.reply[0] != '2') {
        out = OUT_REFUSED;
    } else {
        int rc = store_begin(st);
        if (rc == STORE_OK) {
            rc = inbox_store(st, &m);
            if (rc == STORE_OK)
                rc = store_commit(st);
            if (rc != STORE_OK)
                store_rollback(st);
        }
        if (rc == STORE_OK) {
            out = OUT_STORED;
            /* a duplicate (a message fetched again after a crash) wakes
               the engine for nothing, which is harmless */
            if (env->wake != NULL)
                env->wake(env->wake_ctx);
        } else {
            inbox_tempfail(&m, store_errmsg(st));
            out = OUT_TEMPFAIL;
        }
    }
    snprintf(reply, MAIL_REPLY_MAX, "%s", t.reply);
    inbox_message_release(&m);
    mail_channel_release(&ch);
    return out;
}

/* fetch_att - UID FETCH of ATT (taken) for message UID: the static
 * attribute of type TYPE in *ITEM, NULL when the message is gone; the
 * caller frees *RESULT with mailimap_fetch_list_free */
static int
fetch_att(mailimap *s, uint32_t uid, struct mailimap_fetch_att *att,
          int type, clist **result, struct mailimap_msg_att_static **item)
{
    struct mailimap_set *set = mailimap_set_new_single(uid);
    struct mailimap_fetch_type *ft =
        mailimap_fetch_type_new_fetch_att_list_empty();
    if (set == NULL || ft == NULL)
        abort();
    mailimap_fetch_type_new_fetch_att_list_add(ft,
                                               mailimap_fetch_att_new_uid());
    mailimap_fetch_type_new_fetch_att_list_add(ft, att);
    *result = NULL;
    *item = NULL;
    int r = mailimap_uid_fetch(s, set, ft, result);
    mailimap_fetch_type_free(ft);
    mailimap_set_free(set);
    if (r != MAILIMAP_NO_ERROR)
        return r;
    /* unsolicited FETCH replies (flag changes of other messages) may come
       along: take the one whose UID is ours */
    for (clistiter *i = clist_begin(*result); i != NULL; i = clist_next(i)) {
        struct mailimap_msg_att *ma = clist_content(i);
        struct mailimap_msg_att_static *found = NULL;
        bool ours = false;
        for (clistiter *j = clist_begin(ma->att_list); j != NULL;
             j = clist_next(j)) {
            struct mailimap_msg_att_item *it = clist_content(j);
            if (it->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC ||
                it->att_data.att_static == NULL)
                continue;
            struct mailimap_msg_att_static *sa = it->att_data.att_static;
            if (sa->att_type == MAILIMAP_MSG_ATT_UID)
                ours = sa->att_data.att_uid == uid;
            else if (sa->att_type == type)
                found = sa;
        }
        if (ours && found != NULL) {
            *item = found;
            break;
        }
    }
    return MAILIMAP_NO_ERROR;
}

/* flag_add - UID STORE +FLAGS.SILENT (\Seen [\Deleted]) */
static int
flag_add(mailimap *s, uint32_t uid, bool deleted)
{
    struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
    struct mailimap_set *set = mailimap_set_new_single(uid);
    if (fl == NULL || set == NULL)
        abort();
    mailimap_flag_list_add(fl, mailimap_flag_new_seen());
    if (deleted)
        mailimap_flag_list_add(fl, mailimap_flag_new_deleted());
    struct mailimap_store_att_flags *sa =
        mailimap_store_att_flags_new_add_flags_silent(fl);
    int r = mailimap_uid_store(s, set, sa);
    mailimap_store_att_flags_free(sa);
    mailimap_set_free(set);
    return r;
}

/* move - UID MOVE, or UID COPY + \Deleted (+ UID EXPUNGE with UIDPLUS:
 * without it the message stays, \Deleted, and is not fetched again) */
static int
move(mailimap *s, uint32_t uid, const char *to)
{
    struct mailimap_set *set = mailimap_set_new_single(uid);
    int r;

    if (set == NULL)
        abort();
    if (mailimap_has_extension(s, "MOVE")) {
        r = mailimap_uid_move(s, set, to);
    } else {
        r = mailimap_uid_copy(s, set, to);
        if (r == MAILIMAP_NO_ERROR)
            r = flag_add(s, uid, true);
        if (r == MAILIMAP_NO_ERROR && mailimap_has_uidplus(s))
            r = mailimap_uid_expunge(s, set);
    }
    mailimap_set_free(set);
    return r;
}

/* finish - flag or move message UID now that it is dealt with */
static int
finish(struct mailbox *mb, mailimap *s, uint32_t uid, char *err,
       size_t errlen)
{
    int r;

    if (mb->after == AFTER_SEEN) {
        r = flag_add(s, uid, false);
        return r == MAILIMAP_NO_ERROR
                   ? 0
                   : imap_error(s, r, "STORE \\Seen", err, errlen);
    }
    r = move(s, uid, mb->move_to);
    if (r != MAILIMAP_NO_ERROR && r != MAILIMAP_ERROR_STREAM &&
        r != MAILIMAP_ERROR_PARSE) {
        /* most likely the folder does not exist yet [TRYCREATE] */
        if (mailimap_create(s, mb->move_to) == MAILIMAP_NO_ERROR)
            logmsg(LOG_INFO, "imap %s: created folder %s", mb->name,
                   mb->move_to);
        r = move(s, uid, mb->move_to);
    }
    return r == MAILIMAP_NO_ERROR ? 0
                                  : imap_error(s, r, "move", err, errlen);
}

/* handle - fetch, raise and flag/move message UID; 0, or -1 with ERR
 * (connection error, or the message must wait: store unavailable,
 * channel unknown) */
static int
handle(struct mailbox *mb, mailimap *s, struct store *st,
       uint32_t uidvalidity, uint32_t uid, char *err, size_t errlen)
{
    clist *res;
    struct mailimap_msg_att_static *item;
    char reply[MAIL_REPLY_MAX];
    enum outcome out;

    int r = fetch_att(s, uid, mailimap_fetch_att_new_rfc822_size(),
                      MAILIMAP_MSG_ATT_RFC822_SIZE, &res, &item);
    if (r != MAILIMAP_NO_ERROR)
        return imap_error(s, r, "FETCH RFC822.SIZE", err, errlen);
    size_t size = item != NULL ? item->att_data.att_rfc822_size : 0;
    bool gone = item == NULL;
    if (res != NULL)
        mailimap_fetch_list_free(res);
    if (gone)
        return 0;               /* expunged meanwhile by another client */

    struct buf qid;
    buf_init(&qid);
    buf_printf(&qid, "imap:%s@%s/%s/%" PRIu32 "/%" PRIu32, mb->user,
               mb->host, mb->folder, uidvalidity, uid);
    if (size > mb->max_size) {
        /* refused as LMTP would refuse it (552), so flagged anyway */
        snprintf(reply, sizeof reply, "552 5.3.4 <%s> message too big "
                 "(%zu bytes, limit %zu)", mb->rcpt, size, mb->max_size);
        out = OUT_REFUSED;
    } else {
        struct mailimap_section *sec = mailimap_section_new(NULL);
        if (sec == NULL)
            abort();
        r = fetch_att(s, uid, mailimap_fetch_att_new_body_peek_section(sec),
                      MAILIMAP_MSG_ATT_BODY_SECTION, &res, &item);
        if (r != MAILIMAP_NO_ERROR) {
            buf_release(&qid);
            return imap_error(s, r, "FETCH BODY.PEEK[]", err, errlen);
        }
        const struct mailimap_msg_att_body_section *body =
            item != NULL ? item->att_data.att_body_section : NULL;
        if (body == NULL || body->sec_body_part == NULL) {
            if (res != NULL)
                mailimap_fetch_list_free(res);
            buf_release(&qid);
            return 0;           /* gone meanwhile */
        }
        struct buf msg;
        buf_init(&msg);
        crlf(body->sec_body_part, body->sec_length, &msg);
        mailimap_fetch_list_free(res);
        out = deliver(mb, st, msg.data, msg.len, qid.data, reply);
        buf_release(&msg);
    }

    int level = out == OUT_STORED ? LOG_INFO
                : out == OUT_REFUSED ? LOG_NOTICE
                                     : LOG_WARNING;
    logmsg(level, "imap %s: uid %" PRIu32 " queue_id=%s: %s%s", mb->name,
           uid, qid.data, reply,
           out == OUT_REFUSED   ? " (marked done in the mailbox anyway)"
           : out == OUT_STORED  ? ""
                                : " (left in the mailbox, tried again later)");
    buf_release(&qid);
    if (out == OUT_TEMPFAIL || out == OUT_NOCHANNEL) {
        snprintf(err, errlen, "%s", reply);
        return -1;
    }
    return finish(mb, s, uid, err, errlen);
}

/* ---- the session loop ---- */

static int
cmp_uid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* search_key - the messages still to fetch: UNSEEN UNDELETED (after =
 * seen) or UNDELETED (after = move: all that is left in the folder) */
static struct mailimap_search_key *
search_key(const struct mailbox *mb)
{
    struct mailimap_search_key *k = mailimap_search_key_new_multiple_empty();
    int types[2] = {MAILIMAP_SEARCH_KEY_UNDELETED, MAILIMAP_SEARCH_KEY_UNSEEN};
    size_t n = mb->after == AFTER_SEEN ? 2 : 1;

    if (k == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        struct mailimap_search_key *one = mailimap_search_key_new(
            types[i], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL,
            NULL, 0, NULL, NULL, NULL);
        if (one == NULL || mailimap_search_key_multiple_add(k, one) != 0)
            abort();
    }
    return k;
}

/* fetch_round - handle every message waiting in the folder; 0 or -1 */
static int
fetch_round(struct mailbox *mb, mailimap *s, struct store *st,
            uint32_t uidvalidity, char *err, size_t errlen)
{
    struct mailimap_search_key *key = search_key(mb);
    clist *found = NULL;
    int r = mailimap_uid_search(s, NULL, key, &found);
    mailimap_search_key_free(key);
    if (r != MAILIMAP_NO_ERROR)
        return imap_error(s, r, "SEARCH", err, errlen);

    size_t n = 0;
    uint32_t *uids = xreallocarray(NULL, (size_t)clist_count(found) + 1,
                                   sizeof *uids);
    for (clistiter *i = clist_begin(found); i != NULL; i = clist_next(i))
        uids[n++] = *(uint32_t *)clist_content(i);
    mailimap_search_result_free(found);
    qsort(uids, n, sizeof *uids, cmp_uid);      /* oldest first */

    int rc = 0;
    size_t done = 0;
    for (; done < n && rc == 0 && !stopping(mb->f); done++)
        rc = handle(mb, s, st, uidvalidity, uids[done], err, errlen);
    free(uids);
    if (rc == 0)
        logmsg(LOG_DEBUG, "imap %s: %s checked, %zu message(s) handled",
               mb->name, mb->folder, done);
    return rc;
}

/* wait_new - until something may have arrived: IDLE when the server has
 * it, else the poll interval then NOOP; 0, 1 when stopping, -1 on error */
static int
wait_new(struct mailbox *mb, mailimap *s, char *err, size_t errlen)
{
    int r;

    if (!mb->idle || !mailimap_has_idle(s)) {
        if (wait_stop(mb->f, mb->poll_s * 1000))
            return 1;
        r = mailimap_noop(s);
        return r == MAILIMAP_NO_ERROR ? 0
                                      : imap_error(s, r, "NOOP", err, errlen);
    }
    r = mailimap_idle(s);
    if (r != MAILIMAP_NO_ERROR)
        return imap_error(s, r, "IDLE", err, errlen);
    /* a notification may already sit in libetpan's buffer; one held
       inside GnuTLS is not seen until idle_timeout ends the IDLE */
    if (s->imap_stream->read_buffer_len == 0) {
        struct pollfd p[2] = {
            {.fd = mailimap_idle_get_fd(s), .events = POLLIN},
            {.fd = mb->f->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, mb->idle_s * 1000) < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
    if (stopping(mb->f))
        return 1;
    r = mailimap_idle_done(s);
    return r == MAILIMAP_NO_ERROR ? 0 : imap_error(s, r, "IDLE", err, errlen);
}

/* session - one connection's life; 0 when stopping, -1 with ERR when it
 * failed.  *BACKOFF goes back to 1 once a round went well. */
static int
session(struct mailbox *mb, struct store *st, int *backoff, char *err,
        size_t errlen)
{
    uint32_t uidvalidity;
    mailimap *s = conn_open(mb, &uidvalidity, err, errlen);
    if (s == NULL)
        return stopping(mb->f) ? 0 : -1;
    logmsg(LOG_INFO, "imap %s: logged in to %s port %s as %s (%s), folder "
           "%s uidvalidity %" PRIu32 ", %s", mb->name, mb->host, mb->port,
           mb->user,
           mb->tls == TLS_IMAPS      ? "imaps"
           : mb->tls == TLS_STARTTLS ? "starttls"
                                     : "no TLS",
           mb->folder, uidvalidity,
           mb->idle && mailimap_has_idle(s) ? "IDLE" : "polling");

    int rc = 0;
    while (!stopping(mb->f)) {
        /* an EXISTS seen during the round means more may have come */
        s->imap_selection_info->sel_has_exists = 0;
        rc = fetch_round(mb, s, st, uidvalidity, err, errlen);
        if (rc != 0)
            break;
        *backoff = 1;
        if (s->imap_selection_info->sel_has_exists)
            continue;
        rc = wait_new(mb, s, err, errlen);
        if (rc != 0)
            break;
    }
    conn_close(mb, s, -1);
    return rc < 0 && !stopping(mb->f) ? -1 : 0;
}

static void *
mailbox_main(void *arg)
{
    struct mailbox *mb = arg;
    const struct imap_fetch_env *env = &mb->f->env;
    struct store_options so = {.busy_timeout_ms = 5000,
                               .synchronous_full = true,
                               .write_gate = env->write_gate};
    char err[512];
    struct store *st = NULL;
    int wait_s = STORE_RETRY_S;

    while (!stopping(mb->f)) {
        st = store_open(env->database, &so, err, sizeof err);
        if (st != NULL)
            break;
        logmsg(LOG_ERR, "imap %s: cannot open %s: %s; trying again in %d s",
               mb->name, env->database, err, wait_s);
        if (wait_stop(mb->f, wait_s * 1000))
            return NULL;
        wait_s = wait_s * 2 > mb->reconnect_max_s ? mb->reconnect_max_s
                                                  : wait_s * 2;
    }
    int backoff = 1;
    while (st != NULL && !stopping(mb->f)) {
        if (session(mb, st, &backoff, err, sizeof err) == 0)
            continue;
        logmsg(LOG_WARNING, "imap %s: %s; reconnecting in %d s", mb->name,
               err, backoff);
        if (wait_stop(mb->f, backoff * 1000))
            break;
        backoff = backoff * 2 > mb->reconnect_max_s ? mb->reconnect_max_s
                                                    : backoff * 2;
    }
    store_close(st);
    return NULL;
}

/* ---- start and stop ---- */

struct imap_fetcher *
imap_fetch_start(const struct conf *conf, const struct imap_fetch_env *env,
                 char *err, size_t errlen)
{
    const char *list = conf_get(conf, "imap_mailboxes");

    if (env->database == NULL || env->mail_domain == NULL) {
        snprintf(err, errlen, "imap: no database or mail_domain");
        return NULL;
    }
    struct imap_fetcher *f = xcalloc(1, sizeof *f);
    f->env = *env;
    atomic_init(&f->stopping, false);
    if (pipe(f->stop_pipe) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        free(f);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(f->stop_pipe[i], F_SETFD, FD_CLOEXEC);
        fcntl(f->stop_pipe[i], F_SETFL, O_NONBLOCK);
    }

    /* the names: comma- or space-separated */
    char *names = xstrdup(list != NULL ? list : ""), *save = NULL;
    for (char *tok = strtok_r(names, ", \t\r\n", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t\r\n", &save)) {
        size_t len = strlen(tok);
        bool ok = len <= NAME_MAX_LEN;
        for (size_t i = 0; i < len && ok; i++)
            ok = (tok[i] >= 'a' && tok[i] <= 'z') ||
                 (tok[i] >= 'A' && tok[i] <= 'Z') ||
                 (tok[i] >= '0' && tok[i] <= '9');
        /* no '_': "imap_a_tls_verify" must not be both a's tls_verify and
           a_tls's verify */
        if (!ok) {
            snprintf(err, errlen, "imap_mailboxes: \"%.80s\" is not a "
                     "mailbox name (letters and digits, at most %d)",
                     tok, NAME_MAX_LEN);
            goto fail;
        }
        for (size_t i = 0; i < f->n; i++)
            if (strcmp(f->mb[i].name, tok) == 0) {
                snprintf(err, errlen, "imap_mailboxes: %s is listed twice",
                         tok);
                goto fail;
            }
        f->mb = xreallocarray(f->mb, f->n + 1, sizeof *f->mb);
        struct mailbox *mb = &f->mb[f->n++];
        memset(mb, 0, sizeof *mb);
        mb->f = f;
        mb->fd = -1;
        pthread_mutex_init(&mb->lock, NULL);
        if (mailbox_conf(mb, conf, tok, env->mail_domain, err, errlen) != 0)
            goto fail;
    }
    free(names);
    names = NULL;

    /* the threads take no signals: those are the daemon's main thread's */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (size_t i = 0; i < f->n; i++) {
        int rc = pthread_create(&f->mb[i].thread, NULL, mailbox_main,
                                &f->mb[i]);
        if (rc != 0) {
            snprintf(err, errlen, "imap %s: cannot start a thread: %s",
                     f->mb[i].name, strerror(rc));
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            goto fail;
        }
        f->mb[i].started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (f->n > 0)
        logmsg(LOG_INFO, "imap: fetching %zu mailbox(es)", f->n);
    return f;
fail:
    free(names);
    imap_fetch_stop(f);
    return NULL;
}

void
imap_fetch_stop(struct imap_fetcher *f)
{
    if (f == NULL)
        return;
    atomic_store(&f->stopping, true);
    /* never read: every poll on it returns from now on */
    ssize_t w = write(f->stop_pipe[1], "x", 1);
    (void)w;
    for (size_t i = 0; i < f->n; i++) {
        struct mailbox *mb = &f->mb[i];
        pthread_mutex_lock(&mb->lock);
        if (mb->fd >= 0)
            shutdown(mb->fd, SHUT_RDWR);
        pthread_mutex_unlock(&mb->lock);
    }
    for (size_t i = 0; i < f->n; i++)
        if (f->mb[i].started)
            pthread_join(f->mb[i].thread, NULL);
    for (size_t i = 0; i < f->n; i++)
        mailbox_release(&f->mb[i]);
    free(f->mb);
    close(f->stop_pipe[0]);
    close(f->stop_pipe[1]);
    free(f);
}
