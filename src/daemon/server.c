/*
 * server.c - picomaild's I/O thread: accepts LMTP and socketmap
 * connections and runs their protocols over non-blocking sockets with
 * epoll; see daemon.h.
 *
 * An LMTP connection whose message is complete stops being read until
 * the ingest thread has stored it: its replies come back through
 * ingest_take_done() (woken by an eventfd), and only then does the
 * session go on with any pipelined input.  RCPT commands and socketmap
 * lookups are answered here from a store connection of this thread,
 * which only reads, so they never wait for a writer.
 *
 * Signals arrive on a signalfd: SIGTERM/SIGINT stop accepting, close idle
 * connections with 421, wait (at most SHUTDOWN_GRACE_S) for the messages
 * being stored, send their replies and exit; SIGHUP installs freshly read
 * settings (the listeners and the database stay as they are).
 */
#define _GNU_SOURCE 1 /* accept4 */
#include "daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "picomail/logmsg.h"
#include "picomail/mail_accept.h"
#include "picomail/mem.h"
#include "picomail/socketmap.h"
#include "metrics.h"

#define READ_CHUNK 65536
#define SHUTDOWN_GRACE_S 30
#define OUT_HIGH_WATER (1 << 20)    /* stop reading a peer that does not
                                       read its replies */

enum watch_kind { W_LISTENER, W_CONN, W_SIGNAL, W_WAKE };

struct watch {
    enum watch_kind kind;
    void *p;
};

struct conn {
    struct watch w;
    uint64_t id;
    int fd;
    int kind;                   /* LISTEN_LMTP or LISTEN_SOCKETMAP */
    struct server *sv;
    struct lmtp_session *lmtp;
    struct socketmap_conn smap;
    struct buf out;
    size_t out_off;             /* bytes of OUT already sent */
    bool waiting;               /* a message is with the ingest thread */
    bool closing;               /* close once OUT is sent */
    bool peer_gone;             /* the peer closed; drop after the wait */
    bool dead;                  /* closed; freed at the end of the round */
    uint32_t events;            /* what epoll watches now */
    time_t last_active;
    char peer[64];
    struct conn *prev, *next;
};

struct server {
    int ep;
    int sigfd;
    int wakefd;
    struct watch sig_w, wake_w;
    struct listener *ls;
    size_t n_ls;
    struct watch *ls_w;
    struct conn *conns;
    size_t n_conns;
    struct conn *dead;          /* closed this round, to free */
    uint64_t next_id;
    struct ingest *ingest;
    struct store *rd;           /* read-only lookups */
    bool stopping;
    time_t stop_deadline;
};

static void conn_close(struct conn *c);

/* ---- output ---- */

static void
watch_set(struct conn *c, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = &c->w};
    epoll_ctl(c->sv->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

/* update_watch - read unless waiting, closing or backed up; write while
 * output is pending */
static void
update_watch(struct conn *c)
{
    uint32_t ev = 0;
    size_t pending = c->out.len - c->out_off;
    if (!c->waiting && !c->closing && !c->peer_gone &&
        pending < OUT_HIGH_WATER)
        ev |= EPOLLIN;
    if (pending > 0)
        ev |= EPOLLOUT;
    watch_set(c, ev);
}

/* flush - send what we can; false when the connection was closed */
static bool
flush(struct conn *c)
{
    if (c->dead)
        return false;
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == EINTR)
            continue;
        conn_close(c);
        return false;
    }
    if (c->out_off == c->out.len) {
        buf_reset(&c->out);
        c->out_off = 0;
        if (c->closing && !c->waiting) {
            conn_close(c);
            return false;
        }
    }
    update_watch(c);
    return true;
}

/* ---- LMTP ---- */

static int
on_rcpt(void *ctx, const char *addr, struct buf *reply)
{
    struct conn *c = ctx;
    const struct settings *set = settings_acquire();
    struct mail_channel ch;
    char why[MAIL_REPLY_MAX];
    enum mail_verdict_code v = mail_accept_rcpt(
        c->sv->rd, set->mail_domain, addr, lmtp_mail_from(c->lmtp), &ch, why);
    settings_put(set);
    if (v == MAIL_ACCEPT) {
        mail_channel_release(&ch);
        return 0;
    }
    buf_adds(reply, why);
    logmsg(LOG_INFO, "refused rcpt=<%s> from=<%s> peer=%s: %s", addr,
           lmtp_mail_from(c->lmtp), c->peer, why);
    return 1;
}

static char *
dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

/* submit - hand the complete message to the ingest thread */
static void
submit(struct conn *c)
{
    struct lmtp_session *s = c->lmtp;
    struct delivery *d = xcalloc(1, sizeof *d);
    size_t len;
    const char *msg = lmtp_message(s, &len);

    d->conn_id = c->id;
    d->mail_from = xstrdup(lmtp_mail_from(s));
    d->n_rcpts = lmtp_n_rcpts(s);
    d->rcpts = xcalloc(d->n_rcpts, sizeof *d->rcpts);
    for (size_t i = 0; i < d->n_rcpts; i++)
        d->rcpts[i] = xstrdup(lmtp_rcpt(s, i));
    d->data = xmemdup(msg, len);
    d->len = len;
    d->client_addr = dup_or_null(lmtp_xforward(s, "ADDR"));
    d->queue_id = dup_or_null(lmtp_xforward(s, "IDENT"));
    c->waiting = true;
    ingest_submit(c->sv->ingest, d);
}

/* lmtp_status - act on what the session said after feeding it */
static void
lmtp_status(struct conn *c, enum lmtp_status st)
{
    while (st == LMTP_MESSAGE) {
        if (!lmtp_too_big(c->lmtp)) {
            submit(c);
            break;
        }
        logmsg(LOG_INFO, "refused message from=<%s> peer=%s: over "
               "max_message_size", lmtp_mail_from(c->lmtp), c->peer);
        metric_add(M_LMTP_5XX, lmtp_n_rcpts(c->lmtp));
        st = lmtp_delivered(c->lmtp, NULL, &c->out);
    }
    if (st == LMTP_CLOSE)
        c->closing = true;
}

/* ---- reading ---- */

static int
smap_lookup(void *ctx, const char *map, const char *key, struct buf *answer)
{
    struct conn *c = ctx;
    const struct settings *set = settings_acquire();
    struct mail_channel ch;
    char why[MAIL_REPLY_MAX];
    (void)map;              /* any map name: one table of channel addresses */
    enum mail_verdict_code v =
        mail_accept_rcpt(c->sv->rd, set->mail_domain, key, NULL, &ch, why);
    settings_put(set);
    if (v == MAIL_ACCEPT) {
        buf_adds(answer, ch.eci);
        mail_channel_release(&ch);
        return 1;
    }
    if (v == MAIL_TEMPFAIL) {
        buf_adds(answer, "channel lookup temporarily unavailable");
        return -1;
    }
    return 0;
}

static void
on_readable(struct conn *c)
{
    if (c->dead)
        return;
    char data[READ_CHUNK];
    ssize_t n = recv(c->fd, data, sizeof data, 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->waiting) {
            /* the message is being stored all the same; Postfix, which
               never saw the replies, will deliver it again (deduplicated) */
            c->peer_gone = true;
            update_watch(c);
        } else {
            conn_close(c);
        }
        return;
    }
    c->last_active = time(NULL);
    if (c->kind == LISTEN_SOCKETMAP) {
        if (socketmap_feed(&c->smap, data, (size_t)n, smap_lookup, c,
                           &c->out) < 0) {
            logmsg(LOG_WARNING, "socketmap peer=%s: broken request stream, "
                   "closing", c->peer);
            c->closing = true;
        }
    } else {
        lmtp_status(c, lmtp_feed(c->lmtp, data, (size_t)n, &c->out));
    }
    flush(c);
}

/* ---- connections ---- */

/* conn_close - close C now; its memory lives until the end of the
 * current round of events, which may still name it */
static void
conn_close(struct conn *c)
{
    struct server *sv = c->sv;

    if (c->dead)
        return;
    c->dead = true;
    epoll_ctl(sv->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        sv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    sv->n_conns--;
    c->prev = NULL;
    c->next = sv->dead;
    sv->dead = c;
}

static void
free_dead(struct server *sv)
{
    while (sv->dead != NULL) {
        struct conn *c = sv->dead;
        sv->dead = c->next;
        lmtp_session_free(c->lmtp);
        socketmap_conn_release(&c->smap);
        buf_release(&c->out);
        free(c);
    }
}

static void
peer_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";

    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(out, outlen, "?");
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, outlen, "unix");
    }
}

static void
on_accept(struct server *sv, struct listener *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                logmsg(LOG_WARNING, "accept on %s: %s", l->spec,
                       strerror(errno));
            return;
        }
        const struct settings *set = settings_acquire();
        if (sv->n_conns >= set->max_connections) {
            static const char busy[] = "421 4.3.2 Too many connections, "
                                       "try again later\r\n";
            if (l->kind == LISTEN_LMTP) {
                ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
                (void)w;
            }
            close(fd);
            settings_put(set);
            logmsg(LOG_WARNING, "%s: over max_connections (%zu), refused",
                   l->spec, set->max_connections);
            continue;
        }
        struct conn *c = xcalloc(1, sizeof *c);
        c->w = (struct watch){W_CONN, c};
        c->id = ++sv->next_id;
        c->fd = fd;
        c->kind = l->kind;
        c->sv = sv;
        c->last_active = time(NULL);
        buf_init(&c->out);
        socketmap_conn_init(&c->smap);
        peer_name(fd, c->peer, sizeof c->peer);
        if (l->kind == LISTEN_LMTP) {
            struct lmtp_limits lim = {set->max_message_size,
                                      set->max_recipients};
            c->lmtp = lmtp_session_new(set->hostname, &lim, on_rcpt, c);
            lmtp_greeting(c->lmtp, &c->out);
        }
        settings_put(set);
        c->next = sv->conns;
        if (sv->conns != NULL)
            sv->conns->prev = c;
        sv->conns = c;
        sv->n_conns++;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->w};
        c->events = EPOLLIN;
        epoll_ctl(sv->ep, EPOLL_CTL_ADD, fd, &ev);
        logmsg(LOG_DEBUG, "connect %s from %s", l->spec, c->peer);
        flush(c);
    }
}

static struct conn *
find_conn(struct server *sv, uint64_t id)
{
    for (struct conn *c = sv->conns; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/* on_delivered - replies of stored messages go back to their sessions */
static void
on_delivered(struct server *sv)
{
    uint64_t count;
    ssize_t r = read(sv->wakefd, &count, sizeof count);
    (void)r;
    struct delivery *d = ingest_take_done(sv->ingest);
    while (d != NULL) {
        struct delivery *next = d->next;
        struct conn *c = find_conn(sv, d->conn_id);
        if (c != NULL && c->peer_gone) {
            conn_close(c);
        } else if (c != NULL) {
            c->waiting = false;
            c->last_active = time(NULL);
            enum lmtp_status st = lmtp_delivered(
                c->lmtp, (const char *const *)d->replies, &c->out);
            lmtp_status(c, st);
            if (sv->stopping && !c->waiting && !c->closing) {
                buf_adds(&c->out, "421 4.3.2 Service shutting down\r\n");
                c->closing = true;
            }
            flush(c);
        }
        delivery_free(d);
        d = next;
    }
}

/* ---- signals ---- */

static void
reload(void)
{
    const struct settings *cur = settings_acquire();
    char err[512];
    struct settings *fresh = settings_load(cur->conf_path, cur->database, err,
                                           sizeof err);
    if (fresh == NULL) {
        logmsg(LOG_ERR, "reload: %s (keeping the running settings)", err);
    } else {
        /* what only a restart changes */
        if (strcmp(fresh->lmtp_listen, cur->lmtp_listen) != 0 ||
            strcmp(fresh->socketmap_listen, cur->socketmap_listen) != 0)
            logmsg(LOG_WARNING, "reload: listener changes take effect at "
                   "the next start");
        settings_install(fresh);
        logmsg(LOG_INFO, "reloaded %s",
               cur->conf_path ? cur->conf_path : "the default settings");
    }
    settings_put(cur);
}

static void
begin_shutdown(struct server *sv)
{
    if (sv->stopping)
        return;
    sv->stopping = true;
    sv->stop_deadline = time(NULL) + SHUTDOWN_GRACE_S;
    logmsg(LOG_INFO, "shutting down: finishing %zu connection(s)",
           sv->n_conns);
    for (size_t i = 0; i < sv->n_ls; i++) {
        epoll_ctl(sv->ep, EPOLL_CTL_DEL, sv->ls[i].fd, NULL);
        close(sv->ls[i].fd);
        sv->ls[i].fd = -1;
    }
    struct conn *next;
    for (struct conn *c = sv->conns; c != NULL; c = next) {
        next = c->next;
        if (c->waiting)
            continue;
        if (c->kind == LISTEN_LMTP)
            buf_adds(&c->out, "421 4.3.2 Service shutting down\r\n");
        c->closing = true;
        flush(c);
    }
}

static void
on_signal(struct server *sv)
{
    struct signalfd_siginfo si;

    while (read(sv->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP)
            reload();
        else
            begin_shutdown(sv);
    }
}

/* idle_sweep - close connections idle past idle_timeout (not those
 * waiting for a store: that is our delay, not theirs) */
static void
idle_sweep(struct server *sv)
{
    const struct settings *set = settings_acquire();
    time_t now = time(NULL);
    struct conn *next;
    for (struct conn *c = sv->conns; c != NULL; c = next) {
        next = c->next;
        if (c->waiting || now - c->last_active < set->idle_timeout_s)
            continue;
        if (c->closing) {
            conn_close(c);  /* a peer that does not read its replies */
            continue;
        }
        logmsg(LOG_INFO, "peer=%s: idle timeout", c->peer);
        if (c->kind == LISTEN_LMTP)
            buf_adds(&c->out, "421 4.4.2 Idle timeout, closing\r\n");
        c->closing = true;
        flush(c);
    }
    settings_put(set);
}

/* ---- the loop ---- */

void
server_ingest_done(void *arg)
{
    struct server *sv = arg;
    uint64_t one = 1;
    ssize_t w = write(sv->wakefd, &one, sizeof one);
    (void)w;
}

struct server *
server_new(struct listener *ls, size_t n_ls, char *err, size_t errlen)
{
    struct server *sv = xcalloc(1, sizeof *sv);
    sv->ep = sv->sigfd = sv->wakefd = -1;
    sv->ls = ls;
    sv->n_ls = n_ls;

    const struct settings *set = settings_acquire();
    /* a reader only: no write gate, and a short busy wait (readers in
       WAL mode are not blocked by writers anyway) */
    struct store_options so = {1000, true, NULL};
    sv->rd = store_open(set->database, &so, err, errlen);
    settings_put(set);
    if (sv->rd == NULL)
        return server_free(sv);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sv->ep = epoll_create1(EPOLL_CLOEXEC);
    sv->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    sv->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sv->ep < 0 || sv->sigfd < 0 || sv->wakefd < 0) {
        snprintf(err, errlen, "epoll/signalfd/eventfd: %s", strerror(errno));
        return server_free(sv);
    }
    sv->sig_w = (struct watch){W_SIGNAL, sv};
    sv->wake_w = (struct watch){W_WAKE, sv};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &sv->sig_w};
    epoll_ctl(sv->ep, EPOLL_CTL_ADD, sv->sigfd, &ev);
    ev.data.ptr = &sv->wake_w;
    epoll_ctl(sv->ep, EPOLL_CTL_ADD, sv->wakefd, &ev);
    sv->ls_w = xcalloc(n_ls, sizeof *sv->ls_w);
    for (size_t i = 0; i < n_ls; i++) {
        sv->ls_w[i] = (struct watch){W_LISTENER, &ls[i]};
        ev.data.ptr = &sv->ls_w[i];
        epoll_ctl(sv->ep, EPOLL_CTL_ADD, ls[i].fd, &ev);
    }
    return sv;
}

void
server_set_ingest(struct server *sv, struct ingest *in)
{
    sv->ingest = in;
}

static bool
any_waiting(struct server *sv)
{
    for (struct conn *c = sv->conns; c != NULL; c = c->next)
        if (c->waiting || c->out.len > c->out_off)
            return true;
    return false;
}

int
server_run(struct server *sv)
{
    struct epoll_event evs[64];
    time_t last_sweep = time(NULL);

    for (;;) {
        if (sv->stopping &&
            (!any_waiting(sv) || time(NULL) >= sv->stop_deadline))
            break;
        int n = epoll_wait(sv->ep, evs, 64, 1000);
        if (n < 0 && errno != EINTR) {
            logmsg(LOG_ERR, "epoll_wait: %s", strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct watch *w = evs[i].data.ptr;
            switch (w->kind) {
            case W_LISTENER:
                if (!sv->stopping)
                    on_accept(sv, w->p);
                break;
            case W_SIGNAL:
                on_signal(sv);
                break;
            case W_WAKE:
                on_delivered(sv);
                break;
            case W_CONN: {
                struct conn *c = w->p;
                if (c->dead)
                    break;      /* closed earlier in this round */
                if ((evs[i].events & EPOLLOUT) && !flush(c))
                    break;
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    on_readable(c);
                break;
            }
            }
        }
        free_dead(sv);
        time_t now = time(NULL);
        if (now != last_sweep) {
            idle_sweep(sv);
            last_sweep = now;
        }
    }
    /* past the deadline: whoever is still waiting gets no reply (Postfix
       retries; the message, if stored, is deduplicated) */
    while (sv->conns != NULL)
        conn_close(sv->conns);
    free_dead(sv);
    return 0;
}

struct server *
server_free(struct server *sv)
{
    if (sv == NULL)
        return NULL;
    while (sv->conns != NULL)
        conn_close(sv->conns);
    free_dead(sv);
    if (sv->ep >= 0)
        close(sv->ep);
    if (sv->sigfd >= 0)
        close(sv->sigfd);
    if (sv->wakefd >= 0)
        close(sv->wakefd);
    store_close(sv->rd);
    free(sv->ls_w);
    free(sv);
    return NULL;
}
