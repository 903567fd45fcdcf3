/*
 * mod_time.c - the KRL time: module (krl-language.md §7.6): now, new, add
 * and strftime as the reference engine does them with moment.js and the
 * strftime package.
 *
 * Times are JavaScript time values (milliseconds since the epoch, at most
 * 8.64e15 either way) on the proleptic Gregorian calendar, computed here
 * rather than with the C library so the whole JavaScript range works.  The
 * reference reads zone-less strings and prints strftime fields in the host's
 * local zone; a pico engine host runs in UTC, so this module uses UTC for
 * both.  time:now({"tz": name}) reads the zone from /usr/share/zoneinfo
 * itself (no setenv/tzset, so it is thread-safe).
 */
#include "picomail/modules.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/buf.h"
#include "picomail/builtin.h"
#include "picomail/mem.h"
#include "picomail/ops.h"
#include "picomail/value.h"
#include "modules_internal.h"

#define MS_PER_DAY 86400000LL
#define MAX_TIME 8640000000000000LL     /* the JavaScript Date range */

/* ---- calendar arithmetic ---- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t
floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

/* Days since 1970-01-01 of year Y, month MON0 (0-based, any value: it
 * carries into the year) and day D (any value), as Date.UTC counts. */
static int64_t
days_from_civil(int64_t y, int64_t mon0, int64_t d)
{
    int64_t q = floor_div(mon0, 12), m, era, yoe, doy, doe;

    y += q;
    m = mon0 - q * 12 + 1;
    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *mon0, int *d)
{
    int64_t era, doe, yoe, doy, mp;
    int m;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (m <= 2);
    *mon0 = m - 1;
}

static bool
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t
days_in_year(int64_t y)
{
    return is_leap(y) ? 366 : 365;
}

/* moment's daysInMonth: MON0 may be out of 0..11 */
static int
days_in_month(int64_t y, int64_t mon0)
{
    int64_t m = floor_mod(mon0, 12);

    y += (mon0 - m) / 12;
    if (m == 1)
        return is_leap(y) ? 29 : 28;
    return 31 - (int)((m % 7) % 2);
}

/* 0 for Sunday, as getUTCDay */
static int
week_day(int64_t days)
{
    return (int)floor_mod(days + 4, 7);
}

struct fields {
    int64_t year;
    int mon, mday, hour, min, sec, ms, wday;
};

static void
split_time(int64_t t, struct fields *f)
{
    int64_t days = floor_div(t, MS_PER_DAY);
    int64_t rem = t - days * MS_PER_DAY;

    civil_from_days(days, &f->year, &f->mon, &f->mday);
    f->hour = (int)(rem / 3600000);
    f->min = (int)(rem / 60000 % 60);
    f->sec = (int)(rem / 1000 % 60);
    f->ms = (int)(rem % 1000);
    f->wday = week_day(days);
}

static bool
time_ok(int64_t t)
{
    return t >= -MAX_TIME && t <= MAX_TIME;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* toISOString: ±YYYYYY outside years 0..9999; OFF_MIN is the zone offset
 * to print instead of "Z" when HAS_OFF */
static void
add_iso(struct buf *b, int64_t t, bool has_off, long off_min)
{
    struct fields f;

    split_time(has_off ? t + off_min * 60000 : t, &f);
    if (f.year >= 0 && f.year <= 9999)
        buf_printf(b, "%04lld", (long long)f.year);
    else
        buf_printf(b, "%c%06lld", f.year < 0 ? '-' : '+',
                   (long long)llabs(f.year));
    buf_printf(b, "-%02d-%02dT%02d:%02d:%02d.%03d", f.mon + 1, f.mday,
               f.hour, f.min, f.sec, f.ms);
    if (!has_off) {
        buf_addc(b, 'Z');
        return;
    }
    buf_printf(b, "%c%02ld:%02ld", off_min < 0 ? '-' : '+',
               labs(off_min) / 60, labs(off_min) % 60);
}

static kval
iso_value(int64_t t)
{
    struct buf b;
    kval r;

    buf_init(&b);
    add_iso(&b, t, false, 0);
    r = kval_str(b.data, b.len);
    buf_release(&b);
    return r;
}

/* ---- ISO 8601 parsing as moment(str, moment.ISO_8601) ---- */

/* the length of one JavaScript \s character at S, or 0 */
static size_t
js_space(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;

    if (n == 0)
        return 0;
    if (p[0] == ' ' || (p[0] >= 0x09 && p[0] <= 0x0D))
        return 1;
    if (n >= 2 && p[0] == 0xC2 && p[1] == 0xA0)
        return 2;
    if (n >= 3 && (p[0] & 0xF0) == 0xE0) {
        cp = ((uint32_t)(p[0] & 0x0F) << 12) |
             ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
            cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 ||
            cp == 0xFEFF)
            return 3;
    }
    return 0;
}

static bool
digit_at(const char *s, size_t n, size_t p)
{
    return p < n && s[p] >= '0' && s[p] <= '9';
}

static bool
digits_at(const char *s, size_t n, size_t p, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (!digit_at(s, n, p + i))
            return false;
    return true;
}

/* whether PAT matches at S+P: 'd' a digit, 's' a sign, others literally */
static bool
shape_at(const char *s, size_t n, size_t p, const char *pat)
{
    for (; *pat != '\0'; pat++, p++) {
        if (p >= n)
            return false;
        if (*pat == 'd' ? !digit_at(s, n, p)
            : *pat == 's' ? (s[p] != '+' && s[p] != '-')
            : s[p] != *pat)
            return false;
    }
    return true;
}

/* an unanchored search for PAT in S */
static bool
shape_in(const char *s, size_t n, const char *pat)
{
    for (size_t p = 0; p < n; p++)
        if (shape_at(s, n, p, pat))
            return true;
    return false;
}

struct iso_match {
    size_t date_off, date_len;
    size_t time_off, time_len;  /* time_len 0: no time */
    char sep;
    bool has_tz;
};

/* (?:(T| )(time)(tz)?)?$ from Q; the nested optional groups are greedy and
 * nothing shorter could reach the end, so no backtracking is needed */
static bool
iso_rest(const char *s, size_t n, size_t q, bool ext, struct iso_match *m)
{
    size_t p, z, k;

    m->time_len = 0;
    m->has_tz = false;
    if (q == n)
        return true;
    if (s[q] != 'T' && s[q] != ' ')
        return false;
    m->sep = s[q];
    p = q + 1;
    if (!digits_at(s, n, p, 2))
        return false;
    m->time_off = p;
    p += 2;
    for (int part = 0; part < 2; part++) {
        size_t c = p + (ext ? 1 : 0);
        if ((ext && (p >= n || s[p] != ':')) || !digits_at(s, n, c, 2))
            break;
        p = c + 2;
        if (part == 1 && p < n && (s[p] == '.' || s[p] == ',') &&
            digit_at(s, n, p + 1)) {
            p += 2;
            while (digit_at(s, n, p))
                p++;
        }
    }
    m->time_len = p - m->time_off;
    z = p;
    if (p < n && (s[p] == '+' || s[p] == '-') && digits_at(s, n, p + 1, 2)) {
        p += 3;
        if (p < n && s[p] == ':' && digits_at(s, n, p + 1, 2))
            p += 3;
        else if (digits_at(s, n, p, 2))
            p += 2;
    } else {
        while ((k = js_space(s + p, n - p)) > 0)
            p += k;
        if (p < n && s[p] == 'Z')
            p++;
        else
            p = z;
    }
    m->has_tz = p > z;
    return p == n;
}

/* moment's extendedIsoRegex (EXT) or basicIsoRegex */
static bool
iso_regex(const char *s, size_t n, bool ext, struct iso_match *m)
{
    static const char *const ext_alts[] = {"dd-dd", "Wdd-d", "Wdd", "ddd",
                                           "dd", NULL};
    static const char *const basic_alts[] = {"dddd", "Wddd", "Wdd", "ddd",
                                             "dd", "", NULL};
    const char *const *alts = ext ? ext_alts : basic_alts;
    size_t p = 0, k, d0;

    while ((k = js_space(s + p, n - p)) > 0)
        p += k;
    d0 = p;
    if (p < n && (s[p] == '+' || s[p] == '-')) {
        if (!digits_at(s, n, p + 1, 6))
            return false;
        p += 7;
    } else {
        if (!digits_at(s, n, p, 4))
            return false;
        p += 4;
    }
    if (ext) {
        if (p >= n || s[p] != '-')
            return false;
        p++;
    }
    for (; *alts != NULL; alts++) {
        size_t len = strlen(*alts);
        if (shape_at(s, n, p, *alts) && iso_rest(s, n, p + len, ext, m)) {
            m->date_off = d0;
            m->date_len = p + len - d0;
            return true;
        }
    }
    return false;
}

/*
 * moment's isoDates and isoTimes: a shape searched for in the matched date
 * or time, and the format it selects.  Format letters: X YYYYYY, Y YYYY,
 * M MM, D DD, J DDD, G GGGG, w WW, E E, H HH, m mm, s ss, S SSSS, Z Z;
 * anything else is a literal.
 */
static const struct {
    const char *shape, *format;
    bool allow_time;
} iso_dates[] = {
    {"sdddddd-dd-dd", "X-M-D", true}, {"dddd-dd-dd", "Y-M-D", true},
    {"dddd-Wdd-d", "G-Ww-E", true}, {"dddd-Wdd", "G-Ww", false},
    {"dddd-ddd", "Y-J", true}, {"dddd-dd", "Y-M", false},
    {"sdddddddddd", "XMD", true}, {"dddddddd", "YMD", true},
    {"ddddWddd", "GWwE", true}, {"ddddWdd", "GWw", false},
    {"ddddddd", "YJ", true}, {"dddddd", "YM", false}, {"dddd", "Y", false},
};

static const struct {
    const char *shape, *format;
} iso_times[] = {
    {"dd:dd:dd.d", "H:m:s.S"}, {"dd:dd:dd,d", "H:m:s,S"},
    {"dd:dd:dd", "H:m:s"}, {"dd:dd", "H:m"}, {"dddddd.d", "Hms.S"},
    {"dddddd,d", "Hms,S"}, {"dddddd", "Hms"}, {"dddd", "Hm"}, {"dd", "H"},
};

enum { A_YEAR, A_MONTH, A_DATE, A_HOUR, A_MINUTE, A_SECOND, A_MS, A_N };

struct parsed {
    bool has[A_N];
    int64_t a[A_N];
    bool has_doy, has_week, has_gg, has_ww, has_e, has_tzm;
    int64_t doy, gg, ww, e, tzm;
};

/* Where token TOK's non-strict regex first matches in S from CUR. */
static bool
token_find(const char *s, size_t n, size_t cur, char tok, size_t *start,
           size_t *len)
{
    size_t max = 0;

    switch (tok) {
    case 'X':           /* [+-]?\d{1,6} */
        for (size_t i = cur; i < n; i++) {
            size_t p = i;
            if ((s[i] == '+' || s[i] == '-') && digit_at(s, n, i + 1))
                p++;
            else if (!digit_at(s, n, i))
                continue;
            size_t k = 0;
            while (k < 6 && digit_at(s, n, p + k))
                k++;
            *start = i;
            *len = p - i + k;
            return true;
        }
        return false;
    case 'Z':           /* Z|[+-]\d\d(?::?\d\d)?, ignoring case */
        for (size_t i = cur; i < n; i++) {
            if (s[i] == 'Z' || s[i] == 'z') {
                *start = i;
                *len = 1;
                return true;
            }
            if ((s[i] == '+' || s[i] == '-') && digits_at(s, n, i + 1, 2)) {
                size_t p = i + 3;
                if (p < n && s[p] == ':' && digits_at(s, n, p + 1, 2))
                    p += 3;
                else if (digits_at(s, n, p, 2))
                    p += 2;
                *start = i;
                *len = p - i;
                return true;
            }
        }
        return false;
    case 'Y': case 'G':
        max = 4;
        break;
    case 'M': case 'D': case 'w': case 'H': case 'm': case 's':
        max = 2;
        break;
    case 'J':
        max = 3;
        break;
    case 'E':
        max = 1;
        break;
    case 'S':
        max = SIZE_MAX;
        break;
    default: {          /* a literal character */
        const char *p = cur < n ? memchr(s + cur, tok, n - cur) : NULL;
        if (p == NULL)
            return false;
        *start = (size_t)(p - s);
        *len = 1;
        return true;
    }
    }
    for (size_t i = cur; i < n; i++) {
        if (!digit_at(s, n, i))
            continue;
        size_t k = 0;
        while (k < max && digit_at(s, n, i + k))
            k++;
        *start = i;
        *len = k;
        return true;
    }
    return false;
}

/* moment's toInt of a short signed digit string */
static int64_t
to_int(const char *s, size_t len)
{
    int64_t v = 0;
    bool neg = false;
    size_t i = 0;

    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    for (; i < len; i++)
        v = v * 10 + (s[i] - '0');
    return neg ? -v : v;
}

static void
apply_token(struct parsed *r, char tok, const char *s, size_t len)
{
    struct buf b;
    double d;
    int64_t v = tok == 'S' || tok == 'Z' ? 0 : to_int(s, len);

    switch (tok) {
    case 'X': case 'Y':
        r->a[A_YEAR] = v, r->has[A_YEAR] = true;
        break;
    case 'M':
        r->a[A_MONTH] = v - 1, r->has[A_MONTH] = true;
        break;
    case 'D':
        r->a[A_DATE] = v, r->has[A_DATE] = true;
        break;
    case 'H':
        r->a[A_HOUR] = v, r->has[A_HOUR] = true;
        break;
    case 'm':
        r->a[A_MINUTE] = v, r->has[A_MINUTE] = true;
        break;
    case 's':
        r->a[A_SECOND] = v, r->has[A_SECOND] = true;
        break;
    case 'J':
        r->doy = v, r->has_doy = true;
        break;
    case 'G':
        r->gg = v, r->has_gg = r->has_week = true;
        break;
    case 'w':
        r->ww = v, r->has_ww = r->has_week = true;
        break;
    case 'E':
        r->e = v, r->has_e = r->has_week = true;
        break;
    case 'S':
        /* toInt(('0.' + input) * 1000), floating-point error and all */
        buf_init(&b);
        buf_adds(&b, "0.");
        buf_add(&b, s, len);
        if (!kval_num_parse(b.data, b.len, &d))
            d = 0;
        buf_release(&b);
        r->a[A_MS] = (int64_t)trunc(d * 1000);
        r->has[A_MS] = true;
        break;
    case 'Z': {
        /* offsetFromString: the sign and up to two pairs of digits */
        int64_t minutes = 0;
        if (len >= 3) {
            minutes = to_int(s + 1, 2) * 60;
            if (len > 3)
                minutes += to_int(s + len - 2, 2);
        }
        r->tzm = len >= 3 && s[0] == '-' ? -minutes : minutes;
        r->has_tzm = true;
        break;
    }
    default:
        break;
    }
}

/* moment's firstWeekOffset for ISO weeks (dow 1, doy 4) */
static int64_t
first_week_offset(int64_t y)
{
    int64_t fwdlw = (7 + week_day(days_from_civil(y, 0, 4)) - 1) % 7;
    return 3 - fwdlw;
}

static int64_t
weeks_in_year(int64_t y)
{
    return (days_in_year(y) - first_week_offset(y) +
            first_week_offset(y + 1)) / 7;
}

/* configFromArray and checkOverflow: the time value, or false */
static bool
parsed_time(struct parsed *r, int64_t *out)
{
    bool overflow = false;
    int64_t *a = r->a, t;
    int i;

    if (r->has_week && !r->has[A_DATE] && !r->has[A_MONTH]) {
        int64_t wy = r->has_gg ? r->gg : r->has[A_YEAR] ? a[A_YEAR] : 1970;
        int64_t week = r->has_ww ? r->ww : 1, wd = r->has_e ? r->e : 1;
        if (week < 1 || week > weeks_in_year(wy) || wd < 1 || wd > 7) {
            overflow = true;
        } else {
            int64_t doy = 1 + 7 * (week - 1) + (7 + wd - 1) % 7 +
                          first_week_offset(wy);
            if (doy <= 0) {
                wy--;
                doy += days_in_year(wy);
            } else if (doy > days_in_year(wy)) {
                doy -= days_in_year(wy);
                wy++;
            }
            a[A_YEAR] = wy;
            r->has[A_YEAR] = true;
            r->doy = doy;
            r->has_doy = true;
        }
    }
    if (r->has_doy) {
        int64_t y = r->has[A_YEAR] ? a[A_YEAR] : 1970, yy;
        int mon, day;
        if (r->doy > days_in_year(y) || r->doy == 0)
            overflow = true;
        civil_from_days(days_from_civil(y, 0, r->doy), &yy, &mon, &day);
        a[A_MONTH] = mon;
        a[A_DATE] = day;
        r->has[A_MONTH] = r->has[A_DATE] = true;
    }
    /* a year is always parsed; days and times default */
    for (i = 0; i < A_N; i++)
        if (!r->has[i])
            a[i] = i == A_DATE ? 1 : i == A_YEAR ? 1970 : 0;
    if (overflow || a[A_MONTH] < 0 || a[A_MONTH] > 11 || a[A_DATE] < 1 ||
        a[A_DATE] > days_in_month(a[A_YEAR], a[A_MONTH]) ||
        a[A_HOUR] < 0 || a[A_HOUR] > 24 || a[A_MINUTE] > 59 ||
        a[A_SECOND] > 59 || a[A_MS] > 999)
        return false;
    /* 24:00 is the end of the day, the next day's 00:00 */
    if (a[A_HOUR] == 24 &&
        (a[A_MINUTE] != 0 || a[A_SECOND] != 0 || a[A_MS] != 0))
        return false;
    t = days_from_civil(a[A_YEAR], a[A_MONTH], a[A_DATE]) * MS_PER_DAY +
        a[A_HOUR] * 3600000 + a[A_MINUTE] * 60000 + a[A_SECOND] * 1000 +
        a[A_MS];
    if (!time_ok(t))
        return false;
    if (r->has_tzm)
        t -= r->tzm * 60000;
    *out = t;
    return time_ok(t);
}

/* moment.utc(S, moment.ISO_8601): the time value, or false if invalid */
static bool
parse_iso(const char *s, size_t n, int64_t *out)
{
    struct iso_match m;
    struct parsed r;
    char format[32];
    const char *date_fmt = NULL, *time_fmt = NULL;
    bool allow_time = false;
    size_t cur = 0, fl;

    if (!iso_regex(s, n, true, &m) && !iso_regex(s, n, false, &m))
        return false;
    for (size_t i = 0; i < sizeof iso_dates / sizeof iso_dates[0]; i++) {
        if (shape_in(s + m.date_off, m.date_len, iso_dates[i].shape)) {
            date_fmt = iso_dates[i].format;
            allow_time = iso_dates[i].allow_time;
            break;
        }
    }
    if (date_fmt == NULL)
        return false;
    if (m.time_len > 0) {
        for (size_t i = 0; i < sizeof iso_times / sizeof iso_times[0]; i++) {
            if (shape_in(s + m.time_off, m.time_len, iso_times[i].shape)) {
                time_fmt = iso_times[i].format;
                break;
            }
        }
        if (time_fmt == NULL || !allow_time)
            return false;
    }
    fl = strlen(date_fmt);
    memcpy(format, date_fmt, fl);
    if (time_fmt != NULL) {
        format[fl++] = m.sep;
        memcpy(format + fl, time_fmt, strlen(time_fmt));
        fl += strlen(time_fmt);
    }
    if (m.has_tz)
        format[fl++] = 'Z';
    format[fl] = '\0';

    /* configFromStringAndFormat, not strict: each token takes the first
     * match of its regex in what is left of the string */
    memset(&r, 0, sizeof r);
    for (const char *f = format; *f != '\0'; f++) {
        size_t start, len;
        if (!token_find(s, n, cur, *f, &start, &len))
            continue;
        apply_token(&r, *f, s + start, len);
        cur = start + len;
    }
    return parsed_time(&r, out);
}

/* the reference's newDate: the string itself, else as a time of today
 * (extended, then basic form) */
static bool
new_date(const char *s, size_t n, int64_t *out)
{
    struct buf b, today;
    bool ok;

    if (parse_iso(s, n, out))
        return true;
    buf_init(&today);
    add_iso(&today, now_ms(), false, 0);
    today.len = (size_t)(strchr(today.data, 'T') - today.data);
    buf_init(&b);
    buf_add(&b, today.data, today.len);
    buf_addc(&b, 'T');
    buf_add(&b, s, n);
    ok = parse_iso(b.data, b.len, out);
    if (!ok) {
        buf_reset(&b);
        for (size_t i = 0; i < today.len; i++)
            if (today.data[i] != '-')
                buf_addc(&b, today.data[i]);
        buf_addc(&b, 'T');
        buf_add(&b, s, n);
        ok = parse_iso(b.data, b.len, out);
    }
    buf_release(&b);
    buf_release(&today);
    return ok;
}

/* parse DATE for function FN, or make its error in *ERR */
static bool
date_arg(const char *fn, const kval *date, int64_t *t, kval *err)
{
    kval s = op_to_string(date);
    bool ok = new_date(kval_str_ptr(&s), kval_str_bytes(&s), t);

    if (!ok) {
        if (kval_kind(date) == KV_STRING)
            *err = kval_error("Error: time:%s was given an invalid date "
                              "string (%s)", fn, kval_str_ptr(&s));
        else
            *err = kval_error("TypeError: time:%s was given %s instead of a "
                              "date string", fn, kval_str_ptr(&s));
    }
    kval_free(s);
    return ok;
}

/* ---- time zones for time:now ---- */

static bool
tz_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 200 || name[0] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+' ||
              c == '/'))
            return false;
        if (c == '/' && (i + 1 == len || name[i + 1] == '/'))
            return false;
    }
    return true;
}

static int64_t
be_int(const unsigned char *p, int size)
{
    uint64_t v = 0;

    for (int i = 0; i < size; i++)
        v = (v << 8) | p[i];
    if (size == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

struct tz_rule_day {
    char kind;          /* 'J', 'n' or 'M' */
    int a, b, c;        /* day, or month week weekday */
    long secs;          /* the time of day of the change */
};

struct tz_rule {
    long std_off, dst_off;      /* seconds east of UTC */
    bool has_dst;
    struct tz_rule_day start, end;
};

static bool
tz_num(const char **p, long *out)
{
    long v = 0;
    int k = 0;

    while (**p >= '0' && **p <= '9' && k < 7) {
        v = v * 10 + (**p - '0');
        (*p)++;
        k++;
    }
    *out = v;
    return k > 0;
}

/* [+-]hh[:mm[:ss]] in seconds */
static bool
tz_hms(const char **p, long *out)
{
    long sign = 1, h, m = 0, s = 0;

    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (!tz_num(p, &h))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!tz_num(p, &m))
            return false;
        if (**p == ':') {
            (*p)++;
            if (!tz_num(p, &s))
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

static bool
tz_abbr(const char **p)
{
    const char *s = *p;

    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (e == NULL)
            return false;
        *p = e + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

static bool
tz_day(const char **p, struct tz_rule_day *d)
{
    long a, b = 0, c = 0;

    d->kind = 'n';
    if (**p == 'J' || **p == 'M')
        d->kind = *(*p)++;
    if (!tz_num(p, &a))
        return false;
    if (d->kind == 'M') {
        if (*(*p)++ != '.' || !tz_num(p, &b) || *(*p)++ != '.' ||
            !tz_num(p, &c) || a < 1 || a > 12 || b < 1 || b > 5 || c > 6)
            return false;
    }
    d->a = (int)a;
    d->b = (int)b;
    d->c = (int)c;
    d->secs = 7200;
    if (**p == '/') {
        (*p)++;
        return tz_hms(p, &d->secs);
    }
    return true;
}

/* a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" */
static bool
tz_parse_rule(const char *s, struct tz_rule *r)
{
    const char *p = s;
    long off;

    if (!tz_abbr(&p) || !tz_hms(&p, &off))
        return false;
    r->std_off = -off;
    r->has_dst = *p != '\0';
    if (!r->has_dst)
        return true;
    if (!tz_abbr(&p))
        return false;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (!tz_hms(&p, &off))
            return false;
        r->dst_off = -off;
    }
    if (*p == '\0') {
        /* no rules given: POSIX leaves them to the implementation; use
           the US ones as glibc does */
        r->start = (struct tz_rule_day){'M', 3, 2, 0, 7200};
        r->end = (struct tz_rule_day){'M', 11, 1, 0, 7200};
        return true;
    }
    if (*p++ != ',' || !tz_day(&p, &r->start) || *p++ != ',' ||
        !tz_day(&p, &r->end))
        return false;
    return *p == '\0';
}

static int64_t
rule_day(int64_t y, const struct tz_rule_day *d)
{
    int64_t jan1 = days_from_civil(y, 0, 1), first, day;

    switch (d->kind) {
    case 'J':
        return jan1 + d->a - 1 + (is_leap(y) && d->a >= 60 ? 1 : 0);
    case 'n':
        return jan1 + d->a;
    default:
        first = days_from_civil(y, d->a - 1, 1);
        day = first + (d->c - week_day(first) + 7) % 7 + (d->b - 1) * 7;
        while (day >= first + days_in_month(y, d->a - 1))
            day -= 7;
        return day;
    }
}

static long
tz_rule_offset(const struct tz_rule *r, int64_t t)
{
    int64_t y, start, end;
    int mon, day;
    bool dst;

    if (!r->has_dst)
        return r->std_off;
    civil_from_days(floor_div(t + r->std_off, 86400), &y, &mon, &day);
    start = rule_day(y, &r->start) * 86400 + r->start.secs - r->std_off;
    end = rule_day(y, &r->end) * 86400 + r->end.secs - r->dst_off;
    if (start < end)
        dst = t >= start && t < end;
    else
        dst = !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

/* The UTC offset (seconds) of zone NAME at T (seconds), from its TZif file
 * (RFC 8536); false when there is no such zone. */
static bool
tz_offset(const char *name, size_t len, int64_t t, long *off)
{
    enum { MAX_TZIF = 1 << 20 };
    struct buf path;
    unsigned char *data;
    size_t n, p, need;
    uint32_t cnt[6];            /* isut, isstd, leap, time, type, char */
    int tsize = 4;
    FILE *f;
    bool ok = false;

    if (!tz_name_ok(name, len))
        return false;
    buf_init(&path);
    buf_adds(&path, "/usr/share/zoneinfo/");
    buf_add(&path, name, len);
    f = fopen(path.data, "rb");
    buf_release(&path);
    if (f == NULL)
        return false;
    data = xmalloc(MAX_TZIF);
    n = fread(data, 1, MAX_TZIF, f);
    fclose(f);
    p = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (n < p + 44 || memcmp(data + p, "TZif", 4) != 0)
            goto out;
        for (int i = 0; i < 6; i++)
            cnt[i] = (uint32_t)be_int(data + p + 20 + 4 * i, 4);
        need = (size_t)cnt[3] * (size_t)(tsize + 1) + (size_t)cnt[4] * 6 +
               cnt[5] + (size_t)cnt[2] * (size_t)(tsize + 4) + cnt[1] +
               cnt[0];
        if (n < p + 44 + need || cnt[4] == 0)
            goto out;
        if (pass == 1 || data[4] < '2')
            break;
        p += 44 + need;         /* skip the 32-bit data for the 64-bit */
        tsize = 8;
    }
    {
        const unsigned char *trans = data + p + 44;
        const unsigned char *idx = trans + (size_t)cnt[3] * (size_t)tsize;
        const unsigned char *types = idx + cnt[3];
        const unsigned char *end = data + p + 44 + need;
        size_t lo = 0, hi = cnt[3];
        unsigned type = 0;

        /* the last transition at or before T */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (be_int(trans + mid * (size_t)tsize, tsize) <= t)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == cnt[3] && tsize == 8 && end < data + n && *end == '\n') {
            /* after the last transition the footer's rule holds */
            const unsigned char *nl = memchr(end + 1, '\n',
                                             (size_t)(data + n - end - 1));
            struct tz_rule rule;
            if (nl != NULL && nl > end + 1) {
                char *rs = xmemdup(end + 1, (size_t)(nl - end - 1));
                if (tz_parse_rule(rs, &rule)) {
                    *off = tz_rule_offset(&rule, t);
                    ok = true;
                }
                free(rs);
                if (ok)
                    goto out;
            }
        }
        if (lo > 0)
            type = idx[lo - 1];
        if (type < cnt[4]) {
            *off = (long)be_int(types + 6 * type, 4);
            ok = true;
        }
    }
out:
    free(data);
    return ok;
}

/* ---- now, new, add ---- */

static kval
time_now(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    const kval *opts = builtin_arg(args, n, 0);
    int64_t t = now_ms();
    long off;

    (void)vm;
    (void)data;
    if (kval_truthy(opts)) {
        const kval *tz;
        if (kval_kind(opts) != KV_MAP) {
            kval s = op_to_string(opts);
            kval e = kval_error("TypeError: time:now was given %s instead "
                                "of an opts map", kval_str_ptr(&s));
            kval_free(s);
            return e;
        }
        /* the reference ignores tz (a bug): here a known zone gives the
           same instant with that zone's offset; an unknown one UTC */
        tz = kval_map_get_str(opts, "tz");
        if (tz != NULL && kval_kind(tz) == KV_STRING &&
            tz_offset(kval_str_ptr(tz), kval_str_bytes(tz),
                      floor_div(t, 1000), &off)) {
            struct buf b;
            kval r;
            buf_init(&b);
            add_iso(&b, t, true, off / 60);
            r = kval_str(b.data, b.len);
            buf_release(&b);
            return r;
        }
    }
    return iso_value(t);
}

static kval
time_new(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    const kval *date = builtin_arg(args, n, 0);
    int64_t t;
    kval err;

    (void)vm;
    (void)data;
    if (!kval_truthy(date))
        return kval_error("Error: time:new needs a date string");
    if (kval_kind(date) == KV_NUMBER && isfinite(kval_get_number(date))) {
        /* new Date(ms): TimeClip */
        double d = kval_get_number(date);
        if (fabs(d) > (double)MAX_TIME)
            return kval_error("RangeError: Invalid time value");
        return iso_value((int64_t)trunc(d));
    }
    if (!date_arg("new", date, &t, &err))
        return err;
    return iso_value(t);
}

enum unit {
    U_YEAR, U_QUARTER, U_MONTH, U_WEEK, U_ISOWEEK, U_DAY, U_HOUR, U_MINUTE,
    U_SECOND, U_MS, U_N
};

/* moment's unit aliases that a duration uses: the exact key, else the key
 * in lower case */
static int
unit_of(const char *key)
{
    static const struct {
        const char *alias;
        int unit;
    } aliases[] = {
        {"year", U_YEAR}, {"years", U_YEAR}, {"y", U_YEAR},
        {"quarter", U_QUARTER}, {"quarters", U_QUARTER}, {"Q", U_QUARTER},
        {"month", U_MONTH}, {"months", U_MONTH}, {"M", U_MONTH},
        {"week", U_WEEK}, {"weeks", U_WEEK}, {"w", U_WEEK},
        {"isoweek", U_ISOWEEK}, {"isoweeks", U_ISOWEEK}, {"W", U_ISOWEEK},
        {"day", U_DAY}, {"days", U_DAY}, {"d", U_DAY},
        {"hour", U_HOUR}, {"hours", U_HOUR}, {"h", U_HOUR},
        {"minute", U_MINUTE}, {"minutes", U_MINUTE}, {"m", U_MINUTE},
        {"second", U_SECOND}, {"seconds", U_SECOND}, {"s", U_SECOND},
        {"millisecond", U_MS}, {"milliseconds", U_MS}, {"ms", U_MS},
    };
    char lower[32];
    size_t len = strlen(key);

    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(aliases[i].alias, key) == 0)
            return aliases[i].unit;
    if (len >= sizeof lower)
        return -1;
    for (size_t i = 0; i <= len; i++)
        lower[i] = key[i] >= 'A' && key[i] <= 'Z' ? (char)(key[i] + 32)
                                                   : key[i];
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(aliases[i].alias, lower) == 0)
            return aliases[i].unit;
    return -1;
}

static double
abs_round(double d)
{
    return d < 0 ? -mod_js_round(-d) : mod_js_round(d);
}

/* moment's add(duration): months (the day clamped to the month's end),
 * then days, then milliseconds; false when it leaves the Date range */
static bool
add_duration(int64_t *tp, const kval *spec)
{
    const kval *by_unit[U_N] = {NULL};
    double v[U_N], ms, days, months;
    struct kval_map_iter it;
    const kval *key, *val;
    int64_t t = *tp;

    kval_map_iter_init(&it, spec);
    while (kval_map_iter_next(&it, &key, &val)) {
        int u = unit_of(kval_str_ptr(key));
        if (u >= 0)
            by_unit[u] = val;
    }
    kval_map_iter_done(&it);
    /* `normalizedInput.unit || 0`, then JavaScript arithmetic */
    for (int u = 0; u < U_N; u++)
        v[u] = by_unit[u] != NULL && kval_truthy(by_unit[u])
               ? mod_js_number(by_unit[u]) : 0;
    ms = v[U_MS] + v[U_SECOND] * 1e3 + v[U_MINUTE] * 6e4 +
         v[U_HOUR] * 1000 * 60 * 60;
    days = v[U_DAY] + (v[U_WEEK] != 0 ? v[U_WEEK] : v[U_ISOWEEK]) * 7;
    months = abs_round(v[U_MONTH] + v[U_QUARTER] * 3 + v[U_YEAR] * 12);
    days = abs_round(days);

    if (!isnan(months) && months != 0) {
        struct fields f;
        int64_t tod = floor_mod(t, MS_PER_DAY), mon;
        if (fabs(months) > 4e6)
            return false;
        split_time(t, &f);
        mon = f.mon + (int64_t)months;
        int dim = days_in_month(f.year, mon);
        t = days_from_civil(f.year, mon, f.mday < dim ? f.mday : dim) *
            MS_PER_DAY + tod;
        if (!time_ok(t))
            return false;
    }
    if (!isnan(days) && days != 0) {
        if (fabs(days) > 2e8)
            return false;
        t += (int64_t)days * MS_PER_DAY;
        if (!time_ok(t))
            return false;
    }
    if (!isnan(ms) && ms != 0) {
        double d = (double)t + ms;
        if (!(fabs(d) <= (double)MAX_TIME))
            return false;
        t = (int64_t)trunc(d);
    }
    *tp = t;
    return true;
}

static kval
time_add(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    const kval *date = builtin_arg(args, n, 0);
    const kval *spec = builtin_arg(args, n, 1);
    int64_t t;
    kval err;

    (void)vm;
    (void)data;
    if (!kval_truthy(date))
        return kval_error("Error: time:add needs a date string");
    if (!kval_truthy(spec))
        return kval_error("Error: time:add needs a spec map");
    if (!date_arg("add", date, &t, &err))
        return err;
    if (kval_kind(spec) != KV_MAP) {
        kval s = op_to_string(spec);
        err = kval_error("TypeError: time:add was given %s instead of a spec "
                         "map", kval_str_ptr(&s));
        kval_free(s);
        return err;
    }
    /* moment's toISOString gives null for a date outside the range */
    if (!add_duration(&t, spec))
        return kval_null();
    return iso_value(t);
}

/* ---- strftime, as the strftime package (en_US) prints ---- */

static const char *const day_names[] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday"
};
static const char *const month_names[] = {
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December"
};

/* padTill2: PAD is 0 for the default, else '0', ' ' or '-' (none) */
static void
pad2(struct buf *b, int64_t v, char pad, char dflt)
{
    if (pad == 0)
        pad = dflt;
    if (pad != '-' && v <= 9)
        buf_addc(b, pad);
    buf_printf(b, "%lld", (long long)v);
}

static void
pad3(struct buf *b, int64_t v)
{
    if (v <= 99)
        buf_adds(b, v > 9 ? "0" : "00");
    buf_printf(b, "%lld", (long long)v);
}

/* JavaScript's Date(y, ...) and Date.UTC(y, ...) read years 0..99 as
 * 1900..1999 */
static int64_t
js_year(int64_t y)
{
    return y >= 0 && y <= 99 ? y + 1900 : y;
}

static int64_t
week_number(const struct fields *f, bool monday)
{
    int wd = f->wday;
    int64_t y = js_year(f->year), yday;

    if (monday)
        wd = wd == 0 ? 6 : wd - 1;
    yday = days_from_civil(y, f->mon, f->mday) - days_from_civil(y, 0, 1);
    return floor_div(yday + 7 - wd, 7);
}

static const char *
ordinal(int d)
{
    int i = d % 10, ii = d % 100;

    if ((ii >= 11 && ii <= 13) || i == 0 || i >= 4)
        return "th";
    return i == 1 ? "st" : i == 2 ? "nd" : "rd";
}

static void strf(struct buf *b, const char *fmt, size_t n, int64_t t);

/* a locale format, expanded in a scope of its own */
static void
strf_s(struct buf *b, const char *fmt, int64_t t)
{
    strf(b, fmt, strlen(fmt), t);
}

static void
strf(struct buf *b, const char *fmt, size_t n, int64_t t)
{
    struct fields f;
    bool in_scope = false, ext_tz = false;
    char pad = 0;
    int64_t hour12;

    split_time(t, &f);
    hour12 = f.hour == 0 ? 12 : f.hour > 12 ? f.hour - 12 : f.hour;
    for (size_t i = 0; i < n; i++) {
        char c = fmt[i];
        if (!in_scope) {
            if (c == '%')
                in_scope = true;
            else
                buf_addc(b, c);
            continue;
        }
        switch (c) {
        case '-':
            pad = '-';
            continue;
        case '_':
            pad = ' ';
            continue;
        case '0':
            pad = '0';
            continue;
        case ':':
            ext_tz = true;
            continue;
        case '%': buf_addc(b, '%'); break;
        case 'A': buf_adds(b, day_names[f.wday]); break;
        case 'B': buf_adds(b, month_names[f.mon]); break;
        case 'C': pad2(b, floor_div(f.year, 100), pad, '0'); break;
        case 'D': strf_s(b, "%m/%d/%y", t); break;
        case 'F': strf_s(b, "%Y-%m-%d", t); break;
        case 'H': pad2(b, f.hour, pad, '0'); break;
        case 'I': pad2(b, hour12, pad, '0'); break;
        case 'L': pad3(b, t % 1000); break;
        case 'M': pad2(b, f.min, pad, '0'); break;
        case 'P': buf_adds(b, f.hour < 12 ? "am" : "pm"); break;
        case 'R': strf_s(b, "%H:%M", t); break;
        case 'S': pad2(b, f.sec, pad, '0'); break;
        case 'T': strf_s(b, "%H:%M:%S", t); break;
        case 'U': pad2(b, week_number(&f, false), pad, '0'); break;
        case 'W': pad2(b, week_number(&f, true), pad, '0'); break;
        case 'X': strf_s(b, "%r", t); break;
        case 'Y': buf_printf(b, "%lld", (long long)f.year); break;
        /* the reference prints the host zone's long name from
           Date.toString(); the host runs in UTC */
        case 'Z': buf_adds(b, "Coordinated Universal Time"); break;
        case 'a': buf_add(b, day_names[f.wday], 3); break;
        case 'b': case 'h': buf_add(b, month_names[f.mon], 3); break;
        case 'c': strf_s(b, "%a %d %b %Y %X %Z", t); break;
        case 'd': pad2(b, f.mday, pad, '0'); break;
        case 'e': pad2(b, f.mday, pad, ' '); break;
        case 'j': {
            /* Math.ceil of the days since Date(year, 0, 1) */
            int64_t jan1 = days_from_civil(js_year(f.year), 0, 1) *
                           MS_PER_DAY;
            int64_t diff = t - jan1;
            pad3(b, floor_div(diff, MS_PER_DAY) +
                        (floor_mod(diff, MS_PER_DAY) != 0));
            break;
        }
        case 'k': pad2(b, f.hour, pad, ' '); break;
        case 'l': pad2(b, hour12, pad, ' '); break;
        case 'm': pad2(b, f.mon + 1, pad, '0'); break;
        case 'n': buf_addc(b, '\n'); break;
        case 'o': buf_printf(b, "%d%s", f.mday, ordinal(f.mday)); break;
        case 'p': buf_adds(b, f.hour < 12 ? "AM" : "PM"); break;
        case 'r': strf_s(b, "%I:%M:%S %p", t); break;
        case 's': buf_printf(b, "%lld", (long long)floor_div(t, 1000)); break;
        case 't': buf_addc(b, '\t'); break;
        case 'u': buf_printf(b, "%d", f.wday == 0 ? 7 : f.wday); break;
        case 'v': strf_s(b, "%e-%b-%Y", t); break;
        case 'w': buf_printf(b, "%d", f.wday); break;
        case 'x': strf_s(b, "%D", t); break;
        case 'y': pad2(b, f.year % 100, pad, '0'); break;
        case 'z': buf_adds(b, ext_tz ? "+00:00" : "+0000"); break;
        default:
            buf_addc(b, '%');
            buf_addc(b, c);
            break;
        }
        pad = 0;
        in_scope = false;
    }
}

static kval
time_strftime(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    const kval *date = builtin_arg(args, n, 0);
    const kval *fmt = builtin_arg(args, n, 1);
    struct buf b;
    int64_t t;
    kval r;

    (void)vm;
    (void)data;
    if (!kval_truthy(date))
        return kval_error("Error: time:strftime needs a date string");
    if (!kval_truthy(fmt))
        return kval_error("Error: time:strftime needs a fmt string");
    if (!date_arg("strftime", date, &t, &r))
        return r;
    if (kval_kind(fmt) != KV_STRING) {
        kval s = op_to_string(fmt);
        r = kval_error("TypeError: time:strftime was given %s instead of a "
                       "fmt string", kval_str_ptr(&s));
        kval_free(s);
        return r;
    }
    buf_init(&b);
    strf(&b, kval_str_ptr(fmt), kval_str_bytes(fmt), t);
    r = kval_str(b.data, b.len);
    buf_release(&b);
    return r;
}

#define FN KV_FN_FUNCTION

const struct krl_module_entry mod_time_entries[] = {
    {"now", time_now, FN, {"opts"}, NULL},
    {"new", time_new, FN, {"date"}, NULL},
    {"add", time_add, FN, {"date", "spec"}, NULL},
    {"strftime", time_strftime, FN, {"date", "fmt"}, NULL},
    {NULL, NULL, 0, {NULL}, NULL},
};
