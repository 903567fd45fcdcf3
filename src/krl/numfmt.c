/*
 * numfmt.c - numbers as JavaScript prints and reads them: kval_num_format
 * is Number.prototype.toString() (ECMAScript Number::toString, radix 10)
 * and kval_num_parse is Number(string) (StringToNumber).
 */
#include "picomail/value.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"

/*
 * Shortest decimal digits that read back as D (D finite, > 0): DIGITS gets
 * them without a point or trailing zeros, the return value is their count
 * and *POINT the ES "n" (the value is 0.DIGITS * 10^n).
 */
static int
shortest_digits(double d, char *digits, int *point)
{
    char tmp[40];
    int prec, k = 0, i;
    char *e;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* tmp is "D.DDDDe[+-]XX" (or "De[+-]XX" when prec is 1) */
    for (i = 0; tmp[i] != 'e'; i++)
        if (tmp[i] >= '0' && tmp[i] <= '9')
            digits[k++] = tmp[i];
    e = tmp + i + 1;
    *point = (int)strtol(e, NULL, 10) + 1;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    return k;
}

size_t
kval_num_format(double d, char *buf)
{
    char digits[24];
    char *o = buf;
    int k, n, i;

    if (isnan(d)) {
        memcpy(buf, "NaN", 4);
        return 3;
    }
    if (d == 0) {
        memcpy(buf, "0", 2);            /* also -0 */
        return 1;
    }
    if (d < 0) {
        *o++ = '-';
        d = -d;
    }
    if (isinf(d)) {
        memcpy(o, "Infinity", 9);
        return (size_t)(o - buf) + 8;
    }
    if (d < 9007199254740992.0 && d == (double)(uint64_t)d) {
        /* a safe integer, the common case: its decimal digits are the
           shortest round-trip form, no search needed */
        char tmp[24];
        uint64_t u = (uint64_t)d;
        int len = 0;
        while (u > 0) {
            tmp[len++] = (char)('0' + u % 10);
            u /= 10;
        }
        for (i = 0; i < len; i++)
            o[i] = tmp[len - 1 - i];
        o[len] = '\0';
        return (size_t)(o - buf) + (size_t)len;
    }
    k = shortest_digits(d, digits, &n);
    if (k <= n && n <= 21) {
        /* an integer: digits then n-k zeros */
        memcpy(o, digits, (size_t)k);
        o += k;
        for (i = k; i < n; i++)
            *o++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(o, digits, (size_t)n);
        o += n;
        *o++ = '.';
        memcpy(o, digits + n, (size_t)(k - n));
        o += k - n;
    } else if (-6 < n && n <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (i = n; i < 0; i++)
            *o++ = '0';
        memcpy(o, digits, (size_t)k);
        o += k;
    } else {
        int x = n - 1;
        char ex[8];
        int el;
        *o++ = digits[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(k - 1));
            o += k - 1;
        }
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        el = snprintf(ex, sizeof ex, "%d", x < 0 ? -x : x);
        memcpy(o, ex, (size_t)el);
        o += el;
    }
    *o = '\0';
    return (size_t)(o - buf);
}

/* Length of the JS WhiteSpace/LineTerminator character at P, or 0. */
static size_t
space_at(const unsigned char *p, size_t n)
{
    if (n >= 1 && (p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')))
        return 1;
    if (n >= 2 && p[0] == 0xC2 && p[1] == 0xA0)
        return 2;                               /* U+00A0 */
    if (n >= 3) {
        unsigned c = ((unsigned)p[0] << 16) | ((unsigned)p[1] << 8) | p[2];
        if (c == 0xE19A80 ||                    /* U+1680 */
            (c >= 0xE28080 && c <= 0xE2808A) || /* U+2000..U+200A */
            c == 0xE280A8 || c == 0xE280A9 ||   /* U+2028, U+2029 */
            c == 0xE280AF || c == 0xE2819F ||   /* U+202F, U+205F */
            c == 0xE38080 ||                    /* U+3000 */
            c == 0xEFBBBF)                      /* U+FEFF */
            return 3;
    }
    return 0;
}

/* Same, for the character ending at P + N. */
static size_t
space_before(const unsigned char *p, size_t n)
{
    size_t w;
    for (w = 1; w <= 3 && w <= n; w++)
        if (space_at(p + n - w, w) == w)
            return w;
    return 0;
}

static int
digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    return 99;
}

static bool
parse_radix(const char *s, size_t len, int base, double *out)
{
    double v = 0;
    size_t i;

    if (len == 0)
        return false;
    for (i = 0; i < len; i++) {
        int dv = digit_value(s[i]);
        if (dv >= base)
            return false;
        v = v * base + dv;
    }
    *out = v;
    return true;
}

/* Is S a StrDecimalLiteral without "Infinity"? */
static bool
decimal_syntax(const char *s, size_t len)
{
    size_t i = 0, int_digits = 0, frac_digits = 0, exp_digits = 0;

    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        int_digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            frac_digits++;
        }
    }
    if (int_digits + frac_digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0)
            return false;
    }
    return i == len;
}

bool
kval_num_parse(const char *s, size_t len, double *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w;
    char *copy;

    while (len > 0 && (w = space_at(p, len)) > 0) {
        p += w;
        len -= w;
    }
    while (len > 0 && (w = space_before(p, len)) > 0)
        len -= w;
    s = (const char *)p;
    if (len == 0) {
        *out = 0;
        return true;
    }
    if (len >= 2 && s[0] == '0') {
        int base = s[1] == 'x' || s[1] == 'X' ? 16
                 : s[1] == 'o' || s[1] == 'O' ? 8
                 : s[1] == 'b' || s[1] == 'B' ? 2 : 0;
        if (base != 0)
            return parse_radix(s + 2, len - 2, base, out);
    }
    if ((len == 8 && memcmp(s, "Infinity", 8) == 0) ||
        (len == 9 && memcmp(s, "+Infinity", 9) == 0)) {
        *out = INFINITY;
        return true;
    }
    if (len == 9 && memcmp(s, "-Infinity", 9) == 0) {
        *out = -INFINITY;
        return true;
    }
    /* checked first, so strtod never sees hex floats, "inf" or "nan" */
    if (!decimal_syntax(s, len))
        return false;
    copy = xmemdup(s, len);
    *out = strtod(copy, NULL);
    free(copy);
    return true;
}
