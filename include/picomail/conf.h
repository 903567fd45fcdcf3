/*
 * conf.h - picomail.conf: "key = value" lines in the style of Postfix's
 * main.cf ("#" starts a comment line; a line starting with white space
 * continues the previous value).  Keys not in the file take their
 * documented defaults (conf/picomail.conf), which are compiled in here too.
 * A struct conf owns its strings; one thread at a time.
 */
#ifndef PICOMAIL_CONF_H
#define PICOMAIL_CONF_H

#include <stddef.h>

struct conf;

/* conf_load - read PATH (NULL: only the defaults).  NULL on a read or
 * syntax error, with a message in ERRBUF naming the file and line. */
struct conf *conf_load(const char *path, char *errbuf, size_t errlen);
struct conf *conf_free(struct conf *c);
/* conf_get - the value of KEY (the default when unset; NULL for a key
 * that has no default and is unset) */
const char *conf_get(const struct conf *c, const char *key);
/* conf_set - override KEY (e.g. from a command-line option) */
void conf_set(struct conf *c, const char *key, const char *value);
/* conf_default_path - the configuration file used when no -c is given:
 * $PICOMAIL_CONF, else SYSCONFDIR/picomail/picomail.conf if it exists,
 * else NULL (the compiled-in defaults) */
const char *conf_default_path(void);

#endif
