/*
 * logmsg.h - the daemons' log: one line per message, to stderr (with a
 * timestamp and the program name) or to syslog (facility mail), chosen
 * once at start-up.  Thread-safe: each message is written with one call.
 */
#ifndef PICOMAIL_LOGMSG_H
#define PICOMAIL_LOGMSG_H

#include <stdbool.h>
#include <syslog.h>

/* logmsg_open - PROGRAM names the lines; TO_SYSLOG sends them to syslog
 * instead of stderr; DEBUG lets LOG_DEBUG lines through */
void logmsg_open(const char *program, bool to_syslog, bool debug);
/* logmsg - PRIORITY is a syslog(3) level (LOG_ERR, LOG_WARNING, LOG_INFO,
 * LOG_DEBUG) */
void logmsg(int priority, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
