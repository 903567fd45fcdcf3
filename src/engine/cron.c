/*
 * cron.c - cron expressions: the parser and the next-firing search; see
 * cron.h for the syntax and the semantics.
 *
 * A parsed expression is a set of bit masks, one per field.  The search
 * walks forward from the second after the given time on a (day number,
 * second of day) pair in UTC and jumps: to the next allowed month, day,
 * hour, minute or second, never one second at a time.  The Gregorian
 * calendar repeats every 400 years (146097 days, a whole number of
 * weeks), so an expression that fires at all fires within any 400 years;
 * the search stops there, and cron_parse refuses an expression with no
 * firing in the first 400 years after 1970.
 */
#include "picomail/cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SPEC_MAX 512            /* a longer expression is refused */
#define OCC_ALL 0x1f            /* every occurrence (1st-5th) of a weekday */
#define DAYS_400Y 146097
/* 9999-12-31T23:59:59.999Z: no firing is looked for past it */
#define CRON_MAX_MS INT64_C(253402300799999)
/* 0000-01-01T00:00:00Z */
#define CRON_MIN_MS INT64_C(-62167219200000)

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, N_FIELDS };

static const struct {
    const char *name;
    int lo, hi;
} field_info[N_FIELDS] = {
    [F_SEC] = {"second", 0, 59},
    [F_MIN] = {"minute", 0, 59},
    [F_HOUR] = {"hour", 0, 23},
    [F_DOM] = {"day of month", 1, 31},
    [F_MON] = {"month", 1, 12},
    [F_DOW] = {"day of week", 0, 7},
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr",
                                          "may", "jun", "jul", "aug",
                                          "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat"};

static const struct {
    const char *name;
    const char *spec;
} predefined[] = {
    {"@yearly", "0 0 1 1 *"},  {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* ---- the calendar (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* days_from_civil - days since 1970-01-01 of Y-M-D */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * DAYS_400Y + (int64_t)doe - 719468;
}

/* civil_from_days - Y-M-D of day Z since 1970-01-01 */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, DAYS_400Y);
    unsigned doe = (unsigned)(z - era * DAYS_400Y);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned
days_in_month(int64_t y, unsigned m)
{
    static const unsigned n[] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
    bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return m == 2 && leap ? 29 : n[m - 1];
}

/* ---- parsing ---- */

struct parse {
    const char *spec;           /* the whole expression, for messages */
    const char *field;          /* the field being parsed, for messages */
    char *err;
    size_t errlen;
};

static int
fail(struct parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct parse *p, const char *fmt, ...)
{
    char detail[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (p->field != NULL)
        snprintf(p->err, p->errlen, "bad cron \"%.64s%s\": %s: %s", p->spec,
                 strlen(p->spec) > 64 ? "..." : "", p->field, detail);
    else
        snprintf(p->err, p->errlen, "bad cron \"%.64s%s\": %s", p->spec,
                 strlen(p->spec) > 64 ? "..." : "", detail);
    return -1;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* number - a decimal number at *S (advanced past it); -1 when there is
 * none.  Values past 9999 are kept at 10000: out of range anyway. */
static int
number(const char **s)
{
    const char *p = *s;
    int v = 0;

    if (!is_digit(*p))
        return -1;
    while (is_digit(*p)) {
        if (v < 10000)
            v = v * 10 + (*p - '0');
        p++;
    }
    *s = p;
    return v > 9999 ? 10000 : v;
}

/* value - a number or (month and weekday fields) a three-letter name at
 * *S, checked against the field's range; -1 after fail() */
static int
value(struct parse *p, int f, const char **s, int *out)
{
    const char *start = *s;
    if (is_alpha(**s)) {
        const char *const *names = f == F_MON ? month_names
                                 : f == F_DOW ? day_names : NULL;
        size_t n_names = f == F_MON ? 12 : 7;
        size_t len = 0;
        while (is_alpha(start[len]))
            len++;
        if (names != NULL && len == 3)
            for (size_t i = 0; i < n_names; i++)
                if (lower(start[0]) == names[i][0] &&
                    lower(start[1]) == names[i][1] &&
                    lower(start[2]) == names[i][2]) {
                    *out = (int)i + (f == F_MON ? 1 : 0);
                    *s = start + 3;
                    return 0;
                }
        return fail(p, "unknown name \"%.*s\"", (int)(len > 20 ? 20 : len),
                    start);
    }
    int v = number(s);
    if (v < 0) {
        if (**s == '\0')
            return fail(p, "a value is missing");
        return fail(p, "unexpected \"%c\"", **s);
    }
    if (v < field_info[f].lo || v > field_info[f].hi)
        return fail(p, "%d is out of range %d-%d", v, field_info[f].lo,
                    field_info[f].hi);
    *out = v;
    return 0;
}

/* item - one item of a comma-separated list (NUL-terminated ITEM) into
 * BITS (bit per value; for the weekday field, bit per weekday, with the
 * occurrences in OCC) and *LAST (DOM's L) */
static int
item(struct parse *p, int f, const char *s, uint64_t *bits, uint8_t occ[7],
     bool *last)
{
    int lo, hi, step = 1;

    if (*s == '\0')
        return fail(p, "an empty list item");
    if (*s == '*' || *s == '?') {
        if (*s == '?' && f != F_DOM && f != F_DOW)
            return fail(p, "\"?\" is for the day fields only");
        lo = field_info[f].lo;
        hi = field_info[f].hi;
        s++;
    } else if (f == F_DOM && lower(*s) == 'l' && !is_alpha(s[1])) {
        if (s[1] != '\0')
            return fail(p, "\"L\" takes no range or step");
        *last = true;
        return 0;
    } else {
        if (value(p, f, &s, &lo) != 0)
            return -1;
        hi = lo;
        if (*s == '#') {
            if (f != F_DOW)
                return fail(p, "\"#\" is for the day of week only");
            s++;
            int nth = number(&s);
            if (nth < 1 || nth > 5 || *s != '\0')
                return fail(p, "\"#\" needs an occurrence 1-5");
            occ[lo % 7] |= (uint8_t)(1u << (nth - 1));
            return 0;
        }
        if (*s == '-') {
            s++;
            if (value(p, f, &s, &hi) != 0)
                return -1;
            if (hi < lo)
                return fail(p, "range %d-%d goes backwards", lo, hi);
        } else if (*s == '/') {
            /* A/S: from A on, to the field's maximum */
            hi = field_info[f].hi;
        }
    }
    if (*s == '/') {
        s++;
        step = number(&s);
        if (step < 1)
            return fail(p, "a step must be a number of at least 1");
    }
    if (*s != '\0')
        return fail(p, "unexpected \"%c\"", *s);
    for (int v = lo; v <= hi; v += step) {
        if (f == F_DOW)
            occ[v % 7] = OCC_ALL;   /* 7 is Sunday too */
        else
            *bits |= UINT64_C(1) << v;
    }
    return 0;
}

/* field - the comma-separated list TEXT (LEN bytes) of field F */
static int
field(struct parse *p, int f, const char *text, size_t len, uint64_t *bits,
      uint8_t occ[7], bool *last)
{
    char buf[SPEC_MAX + 1];
    memcpy(buf, text, len);
    buf[len] = '\0';
    p->field = field_info[f].name;
    char *s = buf;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma != NULL)
            *comma = '\0';
        if (item(p, f, s, bits, occ, last) != 0)
            return -1;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    p->field = NULL;
    return 0;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

int
cron_parse(const char *spec, struct cron *out, char *err, size_t errlen)
{
    struct parse p = {spec != NULL ? spec : "", NULL, err, errlen};
    const char *text = p.spec;

    memset(out, 0, sizeof *out);
    if (strlen(text) > SPEC_MAX)
        return fail(&p, "longer than %d bytes", SPEC_MAX);
    while (is_space(*text))
        text++;
    if (*text == '@') {
        size_t len = strcspn(text, " \t\n\r\f\v");
        const char *rest = text + len;
        while (is_space(*rest))
            rest++;
        for (size_t i = 0; i < sizeof predefined / sizeof predefined[0]; i++)
            if (*rest == '\0' && strlen(predefined[i].name) == len &&
                strncmp(text, predefined[i].name, len) == 0)
                text = predefined[i].spec;
        if (*text == '@')
            return fail(&p, "unknown \"%.*s\" (@yearly, @monthly, @weekly, "
                        "@daily or @hourly)", (int)(len > 20 ? 20 : len),
                        text);
    }

    /* split into fields at runs of white space */
    const char *start[N_FIELDS + 1];
    size_t len[N_FIELDS + 1];
    int n = 0;
    while (*text != '\0') {
        if (n == N_FIELDS + 1)
            break;
        start[n] = text;
        while (*text != '\0' && !is_space(*text))
            text++;
        len[n] = (size_t)(text - start[n]);
        n++;
        while (is_space(*text))
            text++;
    }
    if (n < 5 || n > N_FIELDS)
        return fail(&p, "5 fields (minute hour day-of-month month "
                    "day-of-week) or 6 (with seconds first) expected, "
                    "got %s%d", n > N_FIELDS ? "more than " : "",
                    n > N_FIELDS ? N_FIELDS : n);

    uint64_t bits[N_FIELDS] = {0};
    int first = N_FIELDS - n;   /* 5 fields: the seconds are 0 */
    if (first == 1)
        bits[F_SEC] = 1;
    for (int i = 0; i < n; i++)
        if (field(&p, first + i, start[i], len[i], &bits[first + i],
                  out->dow, &out->dom_last) != 0) {
            memset(out, 0, sizeof *out);
            return -1;
        }
    out->sec = bits[F_SEC];
    out->min = bits[F_MIN];
    out->hour = (uint32_t)bits[F_HOUR];
    out->dom = (uint32_t)bits[F_DOM];
    out->mon = (uint16_t)bits[F_MON];
    out->dom_any = out->dom == UINT32_C(0xfffffffe);
    out->dow_any = true;
    for (int d = 0; d < 7; d++)
        if (out->dow[d] != OCC_ALL)
            out->dow_any = false;
    if (cron_next(out, 0) < 0) {
        memset(out, 0, sizeof *out);
        return fail(&p, "it never fires");
    }
    return 0;
}

/* ---- the search ---- */

/* next_bit - the smallest N in FROM..MAX with bit N of MASK set, or -1 */
static int
next_bit(uint64_t mask, int from, int max)
{
    for (int i = from; i <= max; i++)
        if (mask & (UINT64_C(1) << i))
            return i;
    return -1;
}

/* day_matches - whether day Y-M-D (weekday WDAY) is one of C's days */
static bool
day_matches(const struct cron *c, int64_t y, unsigned m, unsigned d,
            int wday)
{
    bool dom = (c->dom & (UINT32_C(1) << d)) != 0 ||
               (c->dom_last && d == days_in_month(y, m));
    bool dow = (c->dow[wday] & (1u << ((d - 1) / 7))) != 0;
    if (c->dom_any && c->dow_any)
        return true;
    if (c->dom_any)
        return dow;
    if (c->dow_any)
        return dom;
    return dom || dow;
}

int64_t
cron_next(const struct cron *c, int64_t after_ms)
{
    if (c->mon == 0 || c->hour == 0 || c->min == 0 || c->sec == 0)
        return -1;
    if (after_ms < CRON_MIN_MS)
        after_ms = CRON_MIN_MS;
    if (after_ms >= CRON_MAX_MS)
        return -1;
    /* the first whole second strictly after AFTER_MS */
    int64_t t = floor_div(after_ms, 1000) + 1;
    int64_t day = floor_div(t, 86400);
    int sod = (int)(t - day * 86400);
    int64_t limit = day + DAYS_400Y + 366;
    int64_t max_day = floor_div(CRON_MAX_MS, 86400000);
    if (limit > max_day)
        limit = max_day;

    while (day <= limit) {
        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        if (!(c->mon & (1u << m))) {
            int nm = next_bit(c->mon, (int)m + 1, 12);
            if (nm < 0) {
                y++;
                nm = next_bit(c->mon, 1, 12);
            }
            day = days_from_civil(y, (unsigned)nm, 1);
            sod = 0;
            continue;
        }
        /* 1970-01-01 was a Thursday; 0 is Sunday */
        int wday = (int)(day + 4 - floor_div(day + 4, 7) * 7);
        if (!day_matches(c, y, m, d, wday)) {
            day++;
            sod = 0;
            continue;
        }
        int h = sod / 3600, mi = sod / 60 % 60, s = sod % 60;
        if (!(c->hour & (UINT32_C(1) << h))) {
            int nh = next_bit(c->hour, h + 1, 23);
            if (nh < 0) {
                day++;
                sod = 0;
            } else {
                sod = nh * 3600;
            }
            continue;
        }
        if (!(c->min & (UINT64_C(1) << mi))) {
            int nmi = next_bit(c->min, mi + 1, 59);
            sod = nmi < 0 ? (h + 1) * 3600 : h * 3600 + nmi * 60;
            if (sod >= 86400) {
                day++;
                sod = 0;
            }
            continue;
        }
        if (!(c->sec & (UINT64_C(1) << s))) {
            int ns = next_bit(c->sec, s + 1, 59);
            sod = ns < 0 ? h * 3600 + (mi + 1) * 60 : h * 3600 + mi * 60 + ns;
            if (sod >= 86400) {
                day++;
                sod = 0;
            }
            continue;
        }
        return (day * 86400 + sod) * 1000;
    }
    return -1;
}
