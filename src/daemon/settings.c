/*
 * settings.c - picomaild's settings from picomail.conf, and the current
 * snapshot shared by its threads; see daemon.h.
 */
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "picomail/mem.h"

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct settings *current;

static void
settings_free(struct settings *s)
{
    if (s == NULL)
        return;
    free(s->conf_path);
    free(s->database);
    free(s->mail_domain);
    free(s->mail_sender);
    free(s->hostname);
    free(s->lmtp_listen);
    free(s->socketmap_listen);
    free(s->user);
    free(s->trusted_authserv);
    free(s->smtp_relay);
    free(s->smtp_tls);
    free(s->smtp_user);
    free(s->smtp_password_file);
    free(s->smtp_password_env);
    free(s->sms_url);
    free(s->sms_account);
    free(s->sms_token_file);
    free(s->sms_token_env);
    free(s->sms_from);
    free(s->http_listen);
    free(s);
}

/* number - KEY's value as an unsigned number in [MIN, MAX] */
static int
number(const struct conf *c, const char *key, unsigned long long min,
       unsigned long long max, unsigned long long *out, char *err,
       size_t errlen)
{
    const char *v = conf_get(c, key);
    char *end;

    if (v == NULL) {
        snprintf(err, errlen, "%s: no value", key);
        return -1;
    }
    errno = 0;
    unsigned long long n = strtoull(v, &end, 0);
    if (errno != 0 || end == v || *end != '\0' || *v == '-' || n < min ||
        n > max) {
        snprintf(err, errlen, "%s = %s: not a number from %llu to %llu", key,
                 v, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

static char *
opt_dup(const char *v)
{
    return v != NULL && *v != '\0' ? xstrdup(v) : NULL;
}

struct settings *
settings_load(const char *path, const char *db_override, char *err,
              size_t errlen)
{
    struct conf *c = conf_load(path, err, errlen);
    if (c == NULL)
        return NULL;
    struct settings *s = xcalloc(1, sizeof *s);
    s->refs = 1;
    s->conf_path = path != NULL ? xstrdup(path) : NULL;
    s->database = xstrdup(db_override != NULL ? db_override
                                              : conf_get(c, "database"));
    s->mail_domain = xstrdup(conf_get(c, "mail_domain"));
    s->lmtp_listen = xstrdup(conf_get(c, "lmtp_listen"));
    s->socketmap_listen = xstrdup(conf_get(c, "socketmap_listen"));
    s->user = opt_dup(conf_get(c, "user"));
    s->mail_sender = opt_dup(conf_get(c, "mail_sender"));
    s->smtp_relay = xstrdup(conf_get(c, "smtp_relay"));
    s->smtp_tls = xstrdup(conf_get(c, "smtp_tls"));
    s->smtp_user = opt_dup(conf_get(c, "smtp_user"));
    s->smtp_password_file = opt_dup(conf_get(c, "smtp_password_file"));
    s->smtp_password_env = opt_dup(conf_get(c, "smtp_password_env"));
    s->sms_url = opt_dup(conf_get(c, "sms_url"));
    s->sms_account = opt_dup(conf_get(c, "sms_account"));
    s->sms_token_file = opt_dup(conf_get(c, "sms_token_file"));
    s->sms_token_env = opt_dup(conf_get(c, "sms_token_env"));
    s->sms_from = opt_dup(conf_get(c, "sms_from"));
    s->http_listen = opt_dup(conf_get(c, "http_listen"));
    s->trusted_authserv = opt_dup(conf_get(c, "trusted_authserv_id"));
    const char *host = conf_get(c, "myhostname");
    char hn[256];
    if (host == NULL || *host == '\0') {
        if (gethostname(hn, sizeof hn) != 0)
            snprintf(hn, sizeof hn, "localhost");
        hn[sizeof hn - 1] = '\0';
        host = hn;
    }
    s->hostname = xstrdup(host);
    const char *log = conf_get(c, "log");
    int ret = 0;
    if (log == NULL || strcmp(log, "stderr") == 0) {
        s->log_syslog = false;
    } else if (strcmp(log, "syslog") == 0) {
        s->log_syslog = true;
    } else {
        snprintf(err, errlen, "log = %s: must be stderr or syslog", log);
        ret = -1;
    }
    unsigned long long n;
    if (ret == 0 && (ret = number(c, "max_message_size", 1024, SIZE_MAX / 2,
                                  &n, err, errlen)) == 0)
        s->max_message_size = (size_t)n;
    if (ret == 0 && (ret = number(c, "max_recipients", 1, 100000, &n, err,
                                  errlen)) == 0)
        s->max_recipients = (size_t)n;
    if (ret == 0 && (ret = number(c, "max_connections", 1, 100000, &n, err,
                                  errlen)) == 0)
        s->max_connections = (size_t)n;
    if (ret == 0 && (ret = number(c, "attachment_keep_size", 0, SIZE_MAX / 2,
                                  &n, err, errlen)) == 0)
        s->attachment_keep = (size_t)n;
    if (ret == 0 && (ret = number(c, "http_max_body", 1024, SIZE_MAX / 2,
                                  &n, err, errlen)) == 0)
        s->http_max_body = (size_t)n;
    if (ret == 0 && (ret = number(c, "idle_timeout", 1, 86400, &n, err,
                                  errlen)) == 0)
        s->idle_timeout_s = (int)n;
    if (ret == 0 && (ret = number(c, "inbox_retention_days", 1, 3650, &n,
                                  err, errlen)) == 0)
        s->inbox_retention_days = (int)n;
    if (ret == 0 && (ret = number(c, "unix_socket_mode", 0, 0777, &n, err,
                                  errlen)) == 0)
        s->unix_socket_mode = (unsigned)n;
    if (ret == 0 && strncmp(s->smtp_relay, "smtp://", 7) != 0 &&
        strncmp(s->smtp_relay, "smtps://", 8) != 0) {
        snprintf(err, errlen, "smtp_relay = %s: must be smtp://HOST[:PORT] "
                 "or smtps://...", s->smtp_relay);
        ret = -1;
    }
    if (ret == 0 && strcmp(s->smtp_tls, "no") != 0 &&
        strcmp(s->smtp_tls, "try") != 0 && strcmp(s->smtp_tls, "yes") != 0) {
        snprintf(err, errlen, "smtp_tls = %s: must be no, try or yes",
                 s->smtp_tls);
        ret = -1;
    }
    if (ret == 0 && *s->mail_domain == '\0') {
        snprintf(err, errlen, "mail_domain is empty");
        ret = -1;
    }
    conf_free(c);
    if (ret != 0) {
        settings_free(s);
        return NULL;
    }
    return s;
}

void
settings_install(struct settings *s)
{
    pthread_mutex_lock(&current_lock);
    struct settings *old = current;
    current = s;
    if (old != NULL && --old->refs == 0)
        settings_free(old);
    pthread_mutex_unlock(&current_lock);
}

const struct settings *
settings_acquire(void)
{
    pthread_mutex_lock(&current_lock);
    struct settings *s = current;
    if (s != NULL)
        s->refs++;
    pthread_mutex_unlock(&current_lock);
    return s;
}

void
settings_put(const struct settings *cs)
{
    if (cs == NULL)
        return;
    pthread_mutex_lock(&current_lock);
    /* the snapshot is shared read-only; only its count changes, under
       the lock */
    struct settings *s = (struct settings *)cs;
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&current_lock);
    if (last)
        settings_free(s);
}
