/*
 * cron.h - cron expressions, for `schedule ... repeat "SPEC"`: parsing,
 * and the next firing after a given time.
 *
 * The syntax is the one the reference engine's cron library (node-schedule
 * over cron-parser) accepts:
 *
 *   [SEC] MIN HOUR DOM MON DOW      5 fields (SEC is 0) or 6 fields
 *   @yearly @monthly @weekly @daily @hourly
 *
 * A field is a comma-separated list of items: `*`, `N`, `A-B`, each with
 * an optional step `/S` (`*` / `A-B` every S-th value; `A/S` from A to the
 * field's maximum).  MON takes JAN-DEC and DOW SUN-SAT (any case); DOW 0
 * and 7 are Sunday.  DOM and DOW also take `?` (the same as `*`); DOM
 * takes `L` (the last day of the month) and DOW `D#N` (the N-th weekday D
 * of the month, N 1-5).  Fields of seconds, minutes and hours range 0-59,
 * 0-59, 0-23; DOM 1-31, MON 1-12.
 *
 * Days: when DOM or DOW allows every value (`*`, `?`, or a list that
 * covers them all) the other field alone decides; when both are
 * restricted, a day matches when either does (Vixie cron, and
 * cron-parser).
 *
 * All times are in UTC, in milliseconds since the epoch: the engine has no
 * per-pico time zone, and UTC has no daylight saving time, so no firing
 * is ever skipped or doubled.  (The reference fires in the server's local
 * time zone.)
 *
 * Differences from cron-parser, on purpose: fewer than 5 fields are
 * refused (cron-parser fills them from the left); `A/S` runs to the
 * maximum (cron-parser 2.x takes A alone); 7 in a DOW range is Sunday too;
 * `A-A` is a one-value range; an expression that can never fire (e.g.
 * "0 0 30 2 *") is refused.
 */
#ifndef PICOMAIL_CRON_H
#define PICOMAIL_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed expression: a plain value, filled by cron_parse; its fields
 * are private to cron.c. */
struct cron {
    uint64_t sec;               /* bit N: second N */
    uint64_t min;               /* bit N: minute N */
    uint32_t hour;              /* bit N: hour N */
    uint32_t dom;               /* bit N: day of month N (1-31) */
    uint16_t mon;               /* bit N: month N (1-12) */
    uint8_t dow[7];             /* dow[D] (0 Sunday): bit K when the
                                   (K+1)-th weekday D of a month matches */
    bool dom_last;              /* L: the last day of the month */
    bool dom_any;               /* DOM allows every day */
    bool dow_any;               /* DOW allows every day */
};

/* CRON_ERR_SIZE - enough for any cron_parse message (the expression is
 * quoted up to 64 bytes) */
#define CRON_ERR_SIZE 256

/* cron_parse - parse SPEC into OUT; 0, or -1 with a message in ERR
 * ("bad cron \"SPEC\": minute: 61 is out of range 0-59") */
int cron_parse(const char *spec, struct cron *out, char *err, size_t errlen);

/* cron_next - the first firing strictly after AFTER_MS (UTC ms since the
 * epoch; a firing is on a whole second), or -1 when there is none up to
 * the year 9999 */
int64_t cron_next(const struct cron *c, int64_t after_ms);

#endif
