/*
 * main.c - picomaild: the picomail daemon.  Reads the configuration,
 * opens the listeners (as root if it must, for privileged ports or
 * sockets in Postfix's queue directory), drops privileges, starts the
 * dispatcher, ingest and IMAP threads, and serves until SIGTERM.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "imap_fetch.h"
#include "picomail/logmsg.h"
#include "picomail/mem.h"
#include "picomail/mime.h"
#include "scheduler.h"
#include "sender.h"
#include "web.h"

static void
usage(FILE *fp)
{
    fprintf(fp,
            "usage: picomaild [-c FILE] [--db FILE] [-d] [-n]\n"
            "  -c FILE    configuration file (default: $PICOMAIL_CONF, else\n"
            "             " SYSCONFDIR "/picomail/picomail.conf if present,\n"
            "             else the built-in defaults)\n"
            "  --db FILE  database file, overriding the configuration\n"
            "  -d         log debug lines too\n"
            "  -n         check the configuration and exit\n"
            "Runs in the foreground; logs to stderr or syslog (log = ...).\n"
            "SIGTERM/SIGINT: finish in-flight deliveries and stop; SIGHUP:\n"
            "re-read the configuration.\n");
}

/* make_parent_dir - the database's directory, if missing */
static void
make_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return;
    char *dir = xmemdup(path, (size_t)(slash - path));
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        logmsg(LOG_WARNING, "mkdir %s: %s", dir, strerror(errno));
    free(dir);
}

/* drop_privileges - become USER (from root), handing it the unix sockets
 * and the database directory; -1 on failure */
static int
drop_privileges(const char *user, struct listener *ls, size_t n_ls,
                const char *database)
{
    if (user == NULL)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        logmsg(LOG_ERR, "user = %s: no such user", user);
        return -1;
    }
    if (getuid() != 0) {
        if (getuid() == pw->pw_uid)
            return 0;
        logmsg(LOG_ERR, "user = %s: must start as root to change user",
               user);
        return -1;
    }
    for (size_t i = 0; i < n_ls; i++)
        if (ls[i].unix_path != NULL &&
            chown(ls[i].unix_path, pw->pw_uid, pw->pw_gid) != 0)
            logmsg(LOG_WARNING, "chown %s: %s", ls[i].unix_path,
                   strerror(errno));
    const char *slash = strrchr(database, '/');
    if (slash != NULL && slash != database) {
        char *dir = xmemdup(database, (size_t)(slash - database));
        if (chown(dir, pw->pw_uid, pw->pw_gid) != 0)
            logmsg(LOG_WARNING, "chown %s: %s", dir, strerror(errno));
        free(dir);
    }
    /* the database and SQLite's files beside it, if root made them */
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s", database, suffix[i]);
        if (chown(path, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT)
            logmsg(LOG_WARNING, "chown %s: %s", path, strerror(errno));
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
        initgroups(pw->pw_name, pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        logmsg(LOG_ERR, "cannot become %s: %s", user, strerror(errno));
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *conf_path = NULL, *db = NULL;
    bool debug = false, check_only = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 && i + 1 < argc) {
            conf_path = argv[++i];
        } else if (strcmp(a, "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(a, "-d") == 0) {
            debug = true;
        } else if (strcmp(a, "-n") == 0) {
            check_only = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "picomaild: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (conf_path == NULL)
        conf_path = conf_default_path();

    char err[1024] = "";
    struct settings *set = settings_load(conf_path, db, err, sizeof err);
    if (set == NULL) {
        fprintf(stderr, "picomaild: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("picomaild: %s: configuration ok\n",
               conf_path ? conf_path : "(built-in defaults)");
        struct settings *tmp = set;
        settings_install(tmp);
        settings_install(NULL);
        return 0;
    }
    logmsg_open("picomaild", set->log_syslog, debug);
    settings_install(set);

    /* every thread inherits this mask; the I/O thread reads the signals
       from a signalfd */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    mime_init();

    const struct settings *cur = settings_acquire();
    struct listener *ls = NULL;
    size_t n_ls = 0;
    int status = 1;
    struct dispatch *dispatch = NULL;
    struct server *sv = NULL;
    struct ingest *in = NULL;
    struct imap_fetcher *imap = NULL;
    struct sender *sender = NULL;
    struct scheduler *sched = NULL;
    struct web *web = NULL;
    static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

    if (listen_open(cur->lmtp_listen, LISTEN_LMTP, cur->unix_socket_mode, &ls,
                    &n_ls, err, sizeof err) != 0 ||
        listen_open(cur->socketmap_listen, LISTEN_SOCKETMAP,
                    cur->unix_socket_mode, &ls, &n_ls, err,
                    sizeof err) != 0) {
        logmsg(LOG_ERR, "listen: %s", err);
        goto out;
    }
    make_parent_dir(cur->database);
    if (drop_privileges(cur->user, ls, n_ls, cur->database) != 0)
        goto out;
    if ((dispatch = dispatch_start(&gate, err, sizeof err)) == NULL ||
        (sv = server_new(ls, n_ls, err, sizeof err)) == NULL ||
        (in = ingest_start(&gate, dispatch, server_ingest_done, sv, err,
                           sizeof err)) == NULL) {
        logmsg(LOG_ERR, "%s", err);
        goto out;
    }
    server_set_ingest(sv, in);
    if ((sender = sender_start(&gate, dispatch, err, sizeof err)) == NULL) {
        logmsg(LOG_ERR, "sender: %s", err);
        goto out;
    }
    dispatch_set_sender(dispatch, sender);
    if ((sched = scheduler_start(cur->database, &gate, dispatch, err,
                                 sizeof err)) == NULL) {
        logmsg(LOG_ERR, "scheduler: %s", err);
        goto out;
    }
    dispatch_set_scheduler(dispatch, sched);
    if (cur->http_listen != NULL &&
        (web = web_start(cur->http_listen, cur->http_max_body, dispatch, err,
                         sizeof err)) == NULL) {
        logmsg(LOG_ERR, "http_listen = %s: %s", cur->http_listen, err);
        goto out;
    }
    if (web != NULL)
        logmsg(LOG_INFO, "listening on %s (sky event/cloud http)",
               cur->http_listen);
    {
        struct conf *conf = conf_load(conf_path, err, sizeof err);
        struct imap_fetch_env env = {
            .database = cur->database, .write_gate = &gate,
            .mail_domain = cur->mail_domain,
            .inbox = {cur->trusted_authserv, cur->attachment_keep},
            .wake = dispatch_wake_cb, .wake_ctx = dispatch};
        imap = conf != NULL ? imap_fetch_start(conf, &env, err, sizeof err)
                            : NULL;
        conf_free(conf);
        if (imap == NULL) {
            logmsg(LOG_ERR, "imap: %s", err);
            goto out;
        }
    }
    for (size_t i = 0; i < n_ls; i++)
        logmsg(LOG_INFO, "listening on %s (%s)", ls[i].spec,
               ls[i].kind == LISTEN_LMTP ? "lmtp" : "socketmap");
    logmsg(LOG_INFO, "ready: database %s, mail domain %s", cur->database,
           cur->mail_domain);
    status = server_run(sv) == 0 ? 0 : 1;

out:
    /* the listener first: the events it started still need the dispatcher */
    web_stop(web);
    imap_fetch_stop(imap);
    ingest_stop(in);
    if (dispatch != NULL)
        dispatch_set_sender(dispatch, NULL);
    sender_stop(sender);
    if (dispatch != NULL)
        dispatch_set_scheduler(dispatch, NULL);
    scheduler_stop(sched);
    dispatch_stop(dispatch);
    ingest_free(in);
    server_free(sv);
    listen_close_all(ls, n_ls);
    settings_put(cur);
    settings_install(NULL);
    logmsg(LOG_INFO, "stopped");
    return status;
}
