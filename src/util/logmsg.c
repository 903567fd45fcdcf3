/*
 * logmsg.c - the daemons' log; see logmsg.h.
 */
#include "picomail/logmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "picomail";
static bool log_syslog;
static bool log_debug;

void
logmsg_open(const char *program, bool to_syslog, bool debug)
{
    log_program = program;
    log_syslog = to_syslog;
    log_debug = debug;
    if (to_syslog)
        openlog(program, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static const char *
level_name(int priority)
{
    switch (priority) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
        return "fatal: ";
    case LOG_ERR:
        return "error: ";
    case LOG_WARNING:
        return "warning: ";
    case LOG_DEBUG:
        return "debug: ";
    default:
        return "";
    }
}

void
logmsg(int priority, const char *fmt, ...)
{
    char text[2048], line[2304];
    va_list ap;

    if (priority == LOG_DEBUG && !log_debug)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* the text may quote peers: no control characters in a log line */
    for (char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (log_syslog) {
        syslog(priority, "%s%s", level_name(priority), text);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(line, sizeof line, "%s.%03ldZ %s[%ld]: %s%s\n", when,
                     ts.tv_nsec / 1000000L, log_program, (long)getpid(),
                     level_name(priority), text);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    /* one write per line, so lines of several threads do not mix */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
