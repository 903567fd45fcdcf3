/*
 * t_cron.c - unit tests for cron.c: next firings of many expressions
 * (5 and 6 fields, steps, ranges, lists, names, ?, L, #, the Vixie rule
 * for day of month and day of week), month ends, leap years (2100 is not
 * one), year ends, times before 1970 and past 9999, refused expressions
 * with their messages, and a cross-check of the jumping search against a
 * minute-by-minute scan with gmtime_r over generated expressions.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/cron.h"
#include "tap.h"

#define N_(a) (sizeof(a) / sizeof((a)[0]))

/* ms_of - "YYYY-MM-DDTHH:MM:SS[.mmm]" (UTC) in ms since the epoch */
static int64_t
ms_of(const char *iso)
{
    struct tm tm;
    int msec = 0;

    memset(&tm, 0, sizeof tm);
    if (sscanf(iso, "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &msec) < 6) {
        fprintf(stderr, "bad test time %s\n", iso);
        exit(2);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + msec;
}

/* iso_of - MS as "YYYY-MM-DDTHH:MM:SS[.mmm]" in BUF, or "none" for -1 */
static const char *
iso_of(int64_t ms, char *buf, size_t len)
{
    if (ms == -1) {
        snprintf(buf, len, "none");
        return buf;
    }
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)t * 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac != 0)
        snprintf(buf + n, len - n, ".%03d", frac);
    return buf;
}

/* next_of - the next firing of SPEC after AFTER as text ("error: ..."
 * when SPEC is refused) */
static const char *
next_of(const char *spec, const char *after, char *buf, size_t len)
{
    struct cron c;
    char err[CRON_ERR_SIZE];
    if (cron_parse(spec, &c, err, sizeof err) != 0) {
        snprintf(buf, len, "error: %s", err);
        return buf;
    }
    return iso_of(cron_next(&c, ms_of(after)), buf, len);
}

static const struct {
    const char *spec, *after, *want;
} cases[] = {
    /* every second, every minute, strictly after */
    {"* * * * * *", "2024-01-01T00:00:00", "2024-01-01T00:00:01"},
    {"* * * * * *", "2024-01-01T00:00:00.500", "2024-01-01T00:00:01"},
    {"* * * * * *", "2024-12-31T23:59:59.999", "2025-01-01T00:00:00"},
    {"* * * * *", "2024-01-01T00:00:00", "2024-01-01T00:01:00"},
    {"* * * * *", "2024-01-01T00:00:59.999", "2024-01-01T00:01:00"},
    {"* * * * *", "2024-01-01T00:00:30", "2024-01-01T00:01:00"},
    /* yearly, with the year rolling over */
    {"0 0 1 1 *", "2024-06-15T12:00:00", "2025-01-01T00:00:00"},
    {"0 0 1 1 *", "2024-01-01T00:00:00", "2025-01-01T00:00:00"},
    {"0 0 1 1 *", "2023-12-31T23:59:59.999", "2024-01-01T00:00:00"},
    {"59 23 31 12 *", "2024-12-31T23:59:00", "2025-12-31T23:59:00"},
    {"59 59 23 * * *", "2024-12-31T23:59:59", "2025-01-01T23:59:59"},
    /* month ends */
    {"0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"},
    {"0 0 31 * *", "2024-05-31T00:00:00", "2024-07-31T00:00:00"},
    {"0 0 30 * *", "2024-01-30T00:00:00", "2024-03-30T00:00:00"},
    {"0 0 L * *", "2024-02-01T00:00:00", "2024-02-29T00:00:00"},
    {"0 0 L * *", "2023-02-01T00:00:00", "2023-02-28T00:00:00"},
    {"0 0 L * *", "2024-04-30T00:00:00", "2024-05-31T00:00:00"},
    {"0 0 L * *", "2024-12-31T00:00:00", "2025-01-31T00:00:00"},
    {"0 0 1,L * *", "2024-06-01T00:00:00", "2024-06-30T00:00:00"},
    /* leap years: 2100 is not one, 2000 was */
    {"0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"},
    {"0 0 29 2 *", "2096-03-01T00:00:00", "2104-02-29T00:00:00"},
    {"0 0 29 2 *", "1999-01-01T00:00:00", "2000-02-29T00:00:00"},
    {"0 0 29 FEB *", "2023-02-28T00:00:00", "2024-02-29T00:00:00"},
    {"0 0 L 2 *", "2100-01-01T00:00:00", "2100-02-28T00:00:00"},
    /* weekdays; 2024-06-14 is a Friday, 2024-09-01 a Sunday */
    {"0 12 * * MON-FRI", "2024-06-14T12:00:00", "2024-06-17T12:00:00"},
    {"0 12 * * mon-fri", "2024-06-14T11:00:00", "2024-06-14T12:00:00"},
    {"0 0 * * 5", "2024-09-01T00:00:00", "2024-09-06T00:00:00"},
    {"0 0 * * 0", "2024-09-01T00:00:00", "2024-09-08T00:00:00"},
    {"0 0 * * 7", "2024-09-01T00:00:00", "2024-09-08T00:00:00"},
    {"0 0 * * SUN", "2024-08-31T23:00:00", "2024-09-01T00:00:00"},
    {"0 0 * * 5-7", "2024-09-06T00:00:00", "2024-09-07T00:00:00"},
    {"0 0 * * 6-7", "2024-09-07T00:00:00", "2024-09-08T00:00:00"},
    {"0 0 * * 1/2", "2024-09-03T00:00:00", "2024-09-04T00:00:00"},
    {"0 0 * * 1/2", "2024-09-06T00:00:00", "2024-09-08T00:00:00"},
    {"0 0 ? * MON", "2024-09-01T00:00:00", "2024-09-02T00:00:00"},
    {"0 0 * * TUE,thu", "2024-09-03T00:00:00", "2024-09-05T00:00:00"},
    /* day of month and day of week: either when both are restricted */
    {"0 0 13 * FRI", "2024-09-01T00:00:00", "2024-09-06T00:00:00"},
    {"0 0 13 * FRI", "2024-09-06T00:00:00", "2024-09-13T00:00:00"},
    {"0 0 13 * FRI", "2024-09-13T00:00:00", "2024-09-20T00:00:00"},
    {"0 0 13 * *", "2024-09-01T00:00:00", "2024-09-13T00:00:00"},
    {"0 0 13 * ?", "2024-09-01T00:00:00", "2024-09-13T00:00:00"},
    /* a list covering every day counts as "*" (cron-parser) */
    {"0 0 1-31 * FRI", "2024-09-01T00:00:00", "2024-09-06T00:00:00"},
    {"0 0 13 * 0-7", "2024-09-01T00:00:00", "2024-09-13T00:00:00"},
    {"0 0 */10 * MON", "2024-09-01T00:00:00", "2024-09-02T00:00:00"},
    {"0 0 */10 * MON", "2024-09-02T00:00:00", "2024-09-09T00:00:00"},
    {"0 0 */10 * MON", "2024-09-09T00:00:00", "2024-09-11T00:00:00"},
    {"0 0 L * SAT", "2024-09-21T00:00:00", "2024-09-28T00:00:00"},
    {"0 0 L * SAT", "2024-09-28T00:00:00", "2024-09-30T00:00:00"},
    /* N-th weekday of the month; 2024-10-01 is a Tuesday */
    {"0 0 * * MON#1", "2024-09-02T00:00:00", "2024-10-07T00:00:00"},
    {"0 0 * * 1#1", "2024-09-01T00:00:00", "2024-09-02T00:00:00"},
    {"0 0 * * FRI#5", "2024-09-01T00:00:00", "2024-11-29T00:00:00"},
    {"0 0 * * sun#2", "2024-09-01T00:00:00", "2024-09-08T00:00:00"},
    /* steps, ranges and lists */
    {"*/15 * * * *", "2024-01-01T10:07:00", "2024-01-01T10:15:00"},
    {"*/15 * * * *", "2024-01-01T10:45:00", "2024-01-01T11:00:00"},
    {"5/20 * * * *", "2024-01-01T10:45:00", "2024-01-01T11:05:00"},
    {"5/20 * * * *", "2024-01-01T10:05:00", "2024-01-01T10:25:00"},
    {"*/90 * * * *", "2024-01-01T10:00:00", "2024-01-01T11:00:00"},
    {"30 */20 * * * *", "2024-01-01T10:00:30", "2024-01-01T10:20:30"},
    {"30 */20 * * * *", "2024-01-01T10:00:29", "2024-01-01T10:00:30"},
    {"0 0 9-17/4 * * *", "2024-01-01T13:00:00", "2024-01-01T17:00:00"},
    {"0 0 9-17/4 * * *", "2024-01-01T17:00:00", "2024-01-02T09:00:00"},
    {"5,35 1,13 * * *", "2024-01-01T01:35:00", "2024-01-01T13:05:00"},
    {"5,35 1,13 * * *", "2024-01-01T13:35:00", "2024-01-02T01:05:00"},
    {"0 0 1 JAN,jul *", "2024-01-01T00:00:00", "2024-07-01T00:00:00"},
    {"0 0 1 jan-mar/2 *", "2024-01-01T00:00:00", "2024-03-01T00:00:00"},
    {"0 0 1 NOV-DEC *", "2024-02-10T00:00:00", "2024-11-01T00:00:00"},
    {"15-17 0 0 * * *", "2024-01-01T00:00:15", "2024-01-01T00:00:16"},
    {"15-17 0 0 * * *", "2024-01-01T00:00:17", "2024-01-02T00:00:15"},
    {"7-7 * * * *", "2024-01-01T00:07:00", "2024-01-01T01:07:00"},
    {"0,30 * * * * *", "2024-01-01T00:00:45", "2024-01-01T00:01:00"},
    {"*/1 * * * * *", "2024-01-01T00:00:00", "2024-01-01T00:00:01"},
    {"   */10   *  * * *  ", "2024-01-01T00:00:00", "2024-01-01T00:10:00"},
    {"*\t*\t*\t*\t*", "2024-01-01T00:00:00", "2024-01-01T00:01:00"},
    /* predefined */
    {"@hourly", "2024-01-01T10:00:00", "2024-01-01T11:00:00"},
    {"@daily", "2024-01-01T10:00:00", "2024-01-02T00:00:00"},
    {"@weekly", "2024-09-03T10:00:00", "2024-09-08T00:00:00"},
    {"@monthly", "2024-01-31T10:00:00", "2024-02-01T00:00:00"},
    {"@yearly", "2024-01-31T10:00:00", "2025-01-01T00:00:00"},
    /* before 1970, and nothing after 9999 */
    {"0 0 1 1 *", "1969-06-01T00:00:00", "1970-01-01T00:00:00"},
    {"* * * * * *", "1969-12-31T23:59:59.500", "1970-01-01T00:00:00"},
    {"0 0 * * THU", "1969-12-29T00:00:00", "1970-01-01T00:00:00"},
    {"0 0 1 1 *", "9999-06-01T00:00:00", "none"},
    {"59 59 23 31 12 *", "9999-12-31T23:59:58", "9999-12-31T23:59:59"},
};

static void
test_cases(void)
{
    char got[CRON_ERR_SIZE + 16], name[160];
    for (size_t i = 0; i < N_(cases); i++) {
        snprintf(name, sizeof name, "\"%s\" after %s", cases[i].spec,
                 cases[i].after);
        t_eq_str(next_of(cases[i].spec, cases[i].after, got, sizeof got),
                 cases[i].want, name);
    }
}

/* each must be refused, with a message holding NEEDLE */
static const struct {
    const char *spec, *needle;
} bad[] = {
    {"", "fields"},
    {"   ", "fields"},
    {"* * * *", "got 4"},
    {"* * * * * * *", "more than 6"},
    {"60 * * * *", "minute: 60 is out of range 0-59"},
    {"61 * * * * *", "second: 61 is out of range 0-59"},
    {"* 24 * * *", "hour: 24 is out of range 0-23"},
    {"* * 0 * *", "day of month: 0 is out of range 1-31"},
    {"* * 32 * *", "day of month: 32"},
    {"* * * 13 *", "month: 13"},
    {"* * * 0 *", "month: 0"},
    {"* * * * 8", "day of week: 8"},
    {"99999999999999999999 * * * *", "out of range"},
    {"5-2 * * * *", "backwards"},
    {"* * * * FRI-MON", "backwards"},
    {"*/0 * * * *", "step"},
    {"*/ * * * *", "step"},
    {"*/x * * * *", "step"},
    {"a * * * *", "unknown name"},
    {"* * * FOO *", "unknown name \"FOO\""},
    {"* * * * MONDAY", "unknown name"},
    {"* * * JANUARY *", "unknown name"},
    {"* * * * JAN", "unknown name"},
    {"* * MON * *", "unknown name"},
    {"1,,2 * * * *", "empty"},
    {"1, * * * *", "empty"},
    {",1 * * * *", "empty"},
    {"? * * * *", "day fields only"},
    {"* * * ? *", "day fields only"},
    {"* * * * L", "unknown name"},
    {"* * L/2 * *", "\"L\" takes no range or step"},
    {"* * L-5 * *", "\"L\" takes no range or step"},
    {"0 0 30 2 *", "never fires"},
    {"0 0 31 4,6,9,11 *", "never fires"},
    {"0 0 31 2 *", "never fires"},
    {"* * * * MON#6", "occurrence 1-5"},
    {"* * * * MON#0", "occurrence 1-5"},
    {"* * * * MON#", "occurrence 1-5"},
    {"* * 1#2 * *", "day of week only"},
    {"1-2-3 * * * *", "unexpected \"-\""},
    {"-5 * * * *", "unexpected \"-\""},
    {"1-* * * * *", "unexpected \"*\""},
    {"5- * * * *", "missing"},
    {"** * * * *", "unexpected \"*\""},
    {"1.5 * * * *", "unexpected \".\""},
    {"@often", "unknown \"@often\""},
    {"@daily extra", "unknown"},
    {"* * * * * x", "unknown name"},
};

static void
test_bad(void)
{
    char err[CRON_ERR_SIZE], name[160];
    struct cron c;
    for (size_t i = 0; i < N_(bad); i++) {
        snprintf(name, sizeof name, "\"%s\" refused", bad[i].spec);
        err[0] = '\0';
        int rc = cron_parse(bad[i].spec, &c, err, sizeof err);
        t_ok(rc == -1, name);
        snprintf(name, sizeof name, "\"%s\": message says \"%s\"",
                 bad[i].spec, bad[i].needle);
        bool has = strncmp(err, "bad cron \"", 10) == 0 &&
                   strstr(err, bad[i].needle) != NULL;
        tap_result(has, __FILE__, __LINE__, name, has ? NULL : err);
    }
    /* a long expression: refused, and its message stays bounded */
    char longspec[2048];
    memset(longspec, '1', sizeof longspec - 1);
    longspec[sizeof longspec - 1] = '\0';
    t_ok(cron_parse(longspec, &c, err, sizeof err) == -1 &&
             strstr(err, "longer than") != NULL && strlen(err) < 200,
         "a 2047-byte expression is refused with a short message");
    t_ok(cron_parse(NULL, &c, err, sizeof err) == -1, "NULL is refused");
    /* a tiny buffer is never overrun */
    char small[8];
    memset(small, 'x', sizeof small);
    t_ok(cron_parse("60 * * * *", &c, small, sizeof small) == -1 &&
             small[7] == '\0', "the message is cut to the buffer");
}

/* ---- the search against a plain scan ---- */

/* brute_day - whether the day of TM is one of C's days (the rule of
 * cron.h, with the calendar of gmtime_r) */
static bool
brute_day(const struct cron *c, const struct tm *tm, time_t t)
{
    time_t tomorrow = t + 86400;
    struct tm tm2;
    gmtime_r(&tomorrow, &tm2);
    bool dom = (c->dom >> tm->tm_mday & 1) ||
               (c->dom_last && tm2.tm_mday == 1);
    bool dow = c->dow[tm->tm_wday] >> ((tm->tm_mday - 1) / 7) & 1;
    if (c->dom_any && c->dow_any)
        return true;
    if (c->dom_any)
        return dow;
    if (c->dow_any)
        return dom;
    return dom || dow;
}

/* brute_next - the first firing after AFTER_MS, minute by minute, up to
 * MAX_MINUTES later; -2 when none is that close */
static int64_t
brute_next(const struct cron *c, int64_t after_ms, long max_minutes)
{
    int64_t after_s = after_ms / 1000;  /* AFTER_MS >= 0 here */
    time_t t = (time_t)(after_s - after_s % 60);
    for (long i = 0; i <= max_minutes; i++, t += 60) {
        struct tm tm;
        gmtime_r(&t, &tm);
        if (!(c->mon >> (tm.tm_mon + 1) & 1) ||
            !(c->hour >> tm.tm_hour & 1) || !(c->min >> tm.tm_min & 1) ||
            !brute_day(c, &tm, t))
            continue;
        for (int s = 0; s < 60; s++)
            if ((c->sec >> s & 1) && (int64_t)(t + s) > after_s)
                return (int64_t)(t + s) * 1000;
    }
    return -2;
}

static uint32_t rng_state = 12345;

static uint32_t
rng(uint32_t n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

/* gen_field - a random item list for a field of LO..HI into BUF */
static void
gen_field(char *buf, size_t len, int lo, int hi, bool day)
{
    int a = lo + (int)rng((uint32_t)(hi - lo + 1));
    int b = a + (int)rng((uint32_t)(hi - a + 1));
    switch (rng(day ? 7 : 6)) {
    case 0:
    case 1:
        snprintf(buf, len, "*");
        break;
    case 2:
        snprintf(buf, len, "%d", a);
        break;
    case 3:
        snprintf(buf, len, "%d-%d", a, b);
        break;
    case 4:
        snprintf(buf, len, "*/%d", 1 + (int)rng(12));
        break;
    case 5:
        snprintf(buf, len, "%d,%d-%d/%d", b, a, b, 1 + (int)rng(4));
        break;
    default:
        snprintf(buf, len, "?");
        break;
    }
}

static void
test_against_scan(void)
{
    int compared = 0, mismatches = 0;
    char spec[256], f[6][40], got[64], want[64], detail[400];

    for (int i = 0; i < 400; i++) {
        gen_field(f[0], sizeof f[0], 0, 59, false);
        gen_field(f[1], sizeof f[1], 0, 59, false);
        gen_field(f[2], sizeof f[2], 0, 23, false);
        gen_field(f[3], sizeof f[3], 1, 31, true);
        /* months mostly open, so the scan stays short */
        if (rng(4) == 0)
            gen_field(f[4], sizeof f[4], 1, 12, false);
        else
            snprintf(f[4], sizeof f[4], "*");
        gen_field(f[5], sizeof f[5], 0, 7, true);
        if (rng(8) == 0)
            snprintf(f[5], sizeof f[5], "%d#%d", (int)rng(7),
                     1 + (int)rng(4));
        snprintf(spec, sizeof spec, "%s %s %s %s %s %s", f[0], f[1], f[2],
                 f[3], f[4], f[5]);
        struct cron c;
        char err[CRON_ERR_SIZE];
        if (cron_parse(spec, &c, err, sizeof err) != 0)
            continue;           /* e.g. a month without that day */
        /* a start between 2023 and 2029, not on a whole second */
        int64_t after = ms_of("2023-01-01T00:00:00") +
                        (int64_t)rng(6 * 365) * 86400000 +
                        (int64_t)rng(86400) * 1000 + rng(1000);
        for (int k = 0; k < 3; k++) {
            long window = 366L * 24 * 60;
            int64_t want_ms = brute_next(&c, after, window);
            int64_t got_ms = cron_next(&c, after);
            bool ok = want_ms == -2 ? got_ms > after + window * 60000
                                    : got_ms == want_ms;
            if (!ok) {
                mismatches++;
                snprintf(detail, sizeof detail,
                         "\"%s\" after %s: got %s, scan %s", spec,
                         iso_of(after, got, sizeof got),
                         iso_of(got_ms, want, sizeof want),
                         want_ms == -2 ? "none within a year"
                                       : iso_of(want_ms, detail + 300, 100));
                tap_result(0, __FILE__, __LINE__, "search = scan", detail);
                break;
            }
            compared++;
            if (got_ms < 0)
                break;
            after = got_ms + (k == 1 ? 0 : 999);  /* on and off a second */
        }
    }
    t_ok(compared > 600, "hundreds of generated expressions compared");
    t_eq_int(mismatches, 0, "the search agrees with a minute-by-minute scan");
}

static void
test_misc(void)
{
    struct cron c;
    char err[CRON_ERR_SIZE];

    /* the fields the parse gives */
    t_ok(cron_parse("* * * * *", &c, err, sizeof err) == 0 && c.sec == 1 &&
             c.dom_any && c.dow_any, "5 fields: second 0, every day");
    t_ok(cron_parse("0 0 13 * ?", &c, err, sizeof err) == 0 && !c.dom_any &&
             c.dow_any, "? is every day of the week");
    t_ok(cron_parse("0 0 ? * 1-5", &c, err, sizeof err) == 0 && c.dom_any &&
             !c.dow_any, "? is every day of the month");
    t_ok(cron_parse("0 0 * * 0,7", &c, err, sizeof err) == 0 &&
             c.dow[0] == 0x1f && c.dow[6] == 0, "0 and 7 are both Sunday");
    /* a whole year of an every-second expression is 31,622,400 firings
       in a leap year: walk a day of them */
    if (cron_parse("* * * * * *", &c, err, sizeof err) == 0) {
        int64_t t = ms_of("2024-02-29T00:00:00") - 1;
        int n = 0;
        while ((t = cron_next(&c, t)) < ms_of("2024-03-01T00:00:00"))
            n++;
        t_eq_int(n, 86400, "every second of 2024-02-29 once");
    }
    /* every firing of a year for a sparse expression, checked by count */
    if (cron_parse("0 30 9 L * *", &c, err, sizeof err) == 0) {
        int64_t t = ms_of("2024-01-01T00:00:00");
        int n = 0;
        while ((t = cron_next(&c, t)) < ms_of("2025-01-01T00:00:00"))
            n++;
        t_eq_int(n, 12, "the last day of each month of 2024, once each");
    }
    /* a repeat missed for a long time: next is after "now", once */
    if (cron_parse("0 * * * * *", &c, err, sizeof err) == 0) {
        int64_t now = ms_of("2024-05-05T05:05:05.005");
        char buf[64];
        t_eq_str(iso_of(cron_next(&c, now), buf, sizeof buf),
                 "2024-05-05T05:06:00", "next minute after a time off");
    }
}

int
main(void)
{
    test_cases();
    test_bad();
    test_misc();
    test_against_scan();
    return tap_done();
}
