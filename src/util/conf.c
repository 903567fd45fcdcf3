/*
 * conf.c - picomail.conf reader; see conf.h.
 */
#include "picomail/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "picomail/buf.h"
#include "picomail/mem.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

/* The documented defaults (DESIGN.md §8; conf/picomail.conf). */
static const char *const defaults[][2] = {
    {"database", "./var/picomail.db"},
    {"mail_domain", "picos.localhost"},
    {"lmtp_listen", "127.0.0.1:2424"},
    {"socketmap_listen", "127.0.0.1:2425"},
    {"http_listen", "127.0.0.1:8080"},
    {"smtp_relay", "smtp://127.0.0.1:25"},
    {"max_message_size", "26214400"},
    {"http_max_body", "1048576"},
    {"log", "stderr"},
    {"max_recipients", "1000"},
    {"max_connections", "100"},
    {"idle_timeout", "300"},
    {"unix_socket_mode", "0666"},
    {"attachment_keep_size", "1048576"},
    {"inbox_retention_days", "7"},
    {"trusted_authserv_id", ""},
    {"myhostname", ""},
    {"user", ""},
    {"mail_sender", ""},
    {"smtp_tls", "try"},
    {"smtp_user", ""},
    {"smtp_password_file", ""},
    {"smtp_password_env", "PICOMAIL_SMTP_PASSWORD"},
    {"sms_url", ""},
    {"sms_account", ""},
    {"sms_token_file", ""},
    {"sms_token_env", "PICOMAIL_SMS_TOKEN"},
    {"sms_from", ""},
    {"milter_listen", "inet:2426@127.0.0.1"},
    /* the IMAP fetcher's keys and defaults belong to
       src/daemon/imap_fetch.c */
};

struct entry {
    char *key;
    char *value;
};

struct conf {
    struct entry *v;
    size_t n, cap;
};

void
conf_set(struct conf *c, const char *key, const char *value)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].key, key) == 0) {
            free(c->v[i].value);
            c->v[i].value = xstrdup(value);
            return;
        }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = xreallocarray(c->v, c->cap, sizeof *c->v);
    }
    c->v[c->n].key = xstrdup(key);
    c->v[c->n].value = xstrdup(value);
    c->n++;
}

const char *
conf_get(const struct conf *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].key, key) == 0)
            return c->v[i].value;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (strcmp(defaults[i][0], key) == 0)
            return defaults[i][1];
    return NULL;
}

struct conf *
conf_free(struct conf *c)
{
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].key);
        free(c->v[i].value);
    }
    free(c->v);
    free(c);
    return NULL;
}

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* parse_line - one logical line "key = value" */
static int
parse_line(struct conf *c, char *line, const char *path, int lineno,
           char *errbuf, size_t errlen)
{
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        snprintf(errbuf, errlen, "%s:%d: expected \"key = value\"", path,
                 lineno);
        return -1;
    }
    *eq = '\0';
    char *key = trim(line), *value = trim(eq + 1);
    for (char *k = key; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_') {
            snprintf(errbuf, errlen, "%s:%d: bad key \"%s\"", path, lineno,
                     key);
            return -1;
        }
    if (*key == '\0') {
        snprintf(errbuf, errlen, "%s:%d: missing key", path, lineno);
        return -1;
    }
    conf_set(c, key, value);
    return 0;
}

struct conf *
conf_load(const char *path, char *errbuf, size_t errlen)
{
    struct conf *c = xcalloc(1, sizeof *c);
    if (path == NULL)
        return c;
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return conf_free(c);
    }
    struct buf logical;
    buf_init(&logical);
    char line[4096];
    int lineno = 0, start = 0, status = 0;
    while (status == 0 && fgets(line, sizeof line, fp) != NULL) {
        lineno++;
        if (line[0] == '#')
            continue;
        bool continuation = line[0] == ' ' || line[0] == '\t';
        char *t = trim(line);
        if (*t == '\0')
            continue;
        if (continuation && logical.len > 0) {
            buf_addc(&logical, ' ');
            buf_adds(&logical, t);
            continue;
        }
        if (logical.len > 0)
            status = parse_line(c, logical.data, path, start, errbuf, errlen);
        buf_reset(&logical);
        buf_adds(&logical, t);
        start = lineno;
    }
    if (status == 0 && logical.len > 0)
        status = parse_line(c, logical.data, path, start, errbuf, errlen);
    buf_release(&logical);
    fclose(fp);
    if (status != 0)
        return conf_free(c);
    return c;
}

const char *
conf_default_path(void)
{
    const char *env = getenv("PICOMAIL_CONF");
    if (env != NULL && *env != '\0')
        return env;
    static const char sys[] = SYSCONFDIR "/picomail/picomail.conf";
    return access(sys, R_OK) == 0 ? sys : NULL;
}
