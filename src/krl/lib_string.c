/*
 * lib_string.c - the KRL string library (krl-language.md §5 "String
 * functions", plus sprintf, chr, range and the 32-bit bitwise functions),
 * with the semantics of the reference's stdlib.ts.
 *
 * The receiver is converted with KRL toString.  Strings are UTF-8 here but
 * JavaScript strings are UTF-16, so every length, index and offset a KRL
 * program can see is counted in UTF-16 code units (value.h's *16
 * functions).  Regexps follow JavaScript through regexp.c; replacement
 * templates expand $$ $& $` $' $n $nn as String.prototype.replace does.
 *
 * Known differences from the reference:
 *   - `replace` with a function and a global regexp that matches the empty
 *     string loops forever in the reference; here it moves on by one
 *     character, as String.prototype.replace does;
 *   - an empty match is skipped by one code point, not one UTF-16 unit;
 *   - `range` refuses to build more than RANGE_MAX elements;
 *   - the Final_Sigma rule of lc() uses an approximation of Unicode's
 *     "cased" and "case-ignorable" properties (see final_sigma()).
 */
#include "picomail/builtin.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/ops.h"
#include "picomail/regexp.h"
#include "picomail/value.h"
#include "lib_string_case.h"
#include "lib_type_internal.h"

/* The most elements range() builds: JavaScript would run out of memory. */
#define RANGE_MAX 10000000

#define LIMIT_MSG "Error: regular expression match limit exceeded"

/* ---- UTF-8 (WTF-8) helpers ---- */

/* Decode one code point at S (N > 0 bytes); returns its length.  Stray
 * bytes decode as themselves, one byte long (canonical strings have none;
 * lone surrogates are 3-byte WTF-8 and decode normally). */
static size_t
dec(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len;
    uint32_t c;

    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    if (u[0] >= 0xF0 && u[0] < 0xF5) {
        len = 4;
        c = u[0] & 0x07;
    } else if (u[0] >= 0xE0 && u[0] < 0xF0) {
        len = 3;
        c = u[0] & 0x0F;
    } else if (u[0] >= 0xC2 && u[0] < 0xE0) {
        len = 2;
        c = u[0] & 0x1F;
    } else {
        *cp = u[0];
        return 1;
    }
    if (len > n) {
        *cp = u[0];
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = u[0];
            return 1;
        }
        c = (c << 6) | (u[i] & 0x3F);
    }
    *cp = c;
    return len;
}

/* The start of the code point that ends at S[END-1] */
static size_t
prev_start(const char *s, size_t end)
{
    size_t i = end - 1;
    size_t lim = end >= 4 ? end - 4 : 0;

    while (i > lim && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

static void
enc(struct buf *b, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_add(b, u, n);
}

/* The first occurrence of Q[0..QN) in P[0..N), or NULL (memmem is not
 * POSIX) */
static const char *
find_bytes(const char *p, size_t n, const char *q, size_t qn)
{
    if (qn == 0)
        return p;
    for (size_t i = 0; qn <= n && i <= n - qn; i++) {
        const char *h = memchr(p + i, q[0], n - qn + 1 - i);
        if (h == NULL)
            return NULL;
        i = (size_t)(h - p);
        if (memcmp(h, q, qn) == 0)
            return h;
    }
    return NULL;
}

/* JavaScript's WhiteSpace and LineTerminator (String.prototype.trim, \s) */
static bool
is_js_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 ||
           c == 0xFEFF;
}

/* ---- case mapping ---- */

static const struct case_run *
find_run(const struct case_run *runs, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < runs[mid].lo) {
            hi = mid;
        } else if (c > runs[mid].hi) {
            lo = mid + 1;
        } else {
            if ((c - runs[mid].lo) % runs[mid].stride == 0)
                return &runs[mid];
            return NULL;
        }
    }
    return NULL;
}

static const char *
find_special(const struct case_special *sp, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < sp[mid].cp)
            hi = mid;
        else if (c > sp[mid].cp)
            lo = mid + 1;
        else
            return sp[mid].to;
    }
    return NULL;
}

#define N_OF(a) (sizeof (a) / sizeof (a)[0])

/* Append the full upper- or lower-case mapping of C */
static void
map_char(struct buf *out, uint32_t c, bool upper)
{
    const char *sp = upper ? find_special(upper_special, N_OF(upper_special),
                                          c)
                           : find_special(lower_special, N_OF(lower_special),
                                          c);
    const struct case_run *r;

    if (sp != NULL) {
        buf_adds(out, sp);
        return;
    }
    r = upper ? find_run(upper_runs, N_OF(upper_runs), c)
              : find_run(lower_runs, N_OF(lower_runs), c);
    enc(out, r != NULL ? (uint32_t)((int32_t)c + r->delta) : c);
}

/* Approximately Unicode's "Cased": the letter has another case. */
static bool
is_cased(uint32_t c)
{
    return find_run(upper_runs, N_OF(upper_runs), c) != NULL ||
           find_run(lower_runs, N_OF(lower_runs), c) != NULL ||
           find_special(upper_special, N_OF(upper_special), c) != NULL ||
           find_special(lower_special, N_OF(lower_special), c) != NULL;
}

/* Approximately Unicode's "Case_Ignorable": apostrophes, dots, combining
 * diacritical marks and the like. */
static bool
is_case_ignorable(uint32_t c)
{
    return c == '\'' || c == '.' || c == ':' || c == '^' || c == '`' ||
           c == 0xA8 || c == 0xAD || c == 0xAF || c == 0xB4 || c == 0xB7 ||
           c == 0xB8 || (c >= 0x300 && c <= 0x36F) || c == 0x2018 ||
           c == 0x2019 || c == 0x2024 || c == 0x2027;
}

/*
 * Final_Sigma: a capital sigma at the end of a word lower-cases to ς.  It
 * must follow a cased letter and not precede one (case-ignorable
 * characters in between are skipped).
 */
static bool
final_sigma(const char *s, size_t n, size_t at, size_t len)
{
    uint32_t c;
    size_t i = at;
    bool before = false;

    while (i > 0) {
        i = prev_start(s, i);
        dec(s + i, n - i, &c);
        if (is_case_ignorable(c))
            continue;
        before = is_cased(c);
        break;
    }
    if (!before)
        return false;
    for (i = at + len; i < n;) {
        i += dec(s + i, n - i, &c);
        if (is_case_ignorable(c))
            continue;
        return !is_cased(c);
    }
    return true;
}

static kval
map_case(const kval *str, bool upper)
{
    const char *s = kval_str_ptr(str);
    size_t n = kval_str_bytes(str);
    struct buf out;
    char *p;
    size_t len;

    buf_init(&out);
    buf_reserve(&out, n);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = dec(s + i, n - i, &c);
        if (c >= 0xD800 && c <= 0xDFFF)
            buf_add(&out, s + i, k);    /* lone surrogates stay */
        else if (!upper && c == 0x3A3 && final_sigma(s, n, i, k))
            enc(&out, 0x3C2);
        else
            map_char(&out, c, upper);
        i += k;
    }
    p = buf_take(&out, &len);
    return kval_str_take(p, len);
}

/* ---- arguments ---- */

static kval
arg_str(const kval *args, size_t n, size_t i)
{
    return op_to_string(builtin_arg(args, n, i));
}

static kval
str_of(const char *s, size_t len)
{
    return kval_str(s, len);
}

static kval
buf_to_str(struct buf *b)
{
    size_t len;
    char *p = buf_take(b, &len);
    return kval_str_take(p, len);
}

/* V as a regexp: a regexp as it is, anything else RegExp(toString(V)) */
static kval
to_regexp(const kval *v)
{
    kval s, re;

    if (kval_kind(v) == KV_REGEXP)
        return kval_copy(v);
    s = op_to_string(v);
    re = kval_regexp(kval_str_ptr(&s), kval_str_bytes(&s), "");
    kval_free(s);
    return re;
}

/* Where the next search starts after an empty match at END */
static size_t
skip_empty(const char *s, size_t n, size_t end)
{
    uint32_t c;

    if (end >= n)
        return end + 1;
    return end + dec(s + end, n - end, &c);
}

static kval
group_str(const char *s, const struct regexp_match *m, int g)
{
    if (g >= m->n_groups || m->start[g] < 0)
        return kval_null();
    return str_of(s + m->start[g], (size_t)(m->end[g] - m->start[g]));
}

/* ---- replacement templates (GetSubstitution) ---- */

static void
add_group(struct buf *out, const char *s, const struct regexp_match *m,
          int g)
{
    if (g < m->n_groups && m->start[g] >= 0)
        buf_add(out, s + m->start[g], (size_t)(m->end[g] - m->start[g]));
}

/*
 * The number of the group called NAME in the regexp source SRC; 0 when
 * there is no such group, -1 when SRC has no named group at all.
 * regexp.h does not expose names, so the source is scanned as JavaScript
 * numbers groups: each "(" that is not "(?" opens one, and so does "(?<"
 * unless it starts a lookbehind.
 */
static int
named_group(const char *src, const char *name, size_t nlen)
{
    bool in_class = false, any = false;
    int n = 0, found = 0;

    for (size_t i = 0; src[i] != '\0'; i++) {
        if (src[i] == '\\') {
            if (src[i + 1] != '\0')
                i++;
        } else if (in_class) {
            in_class = src[i] != ']';
        } else if (src[i] == '[') {
            in_class = true;
        } else if (src[i] == '(' && src[i + 1] != '?') {
            n++;
        } else if (src[i] == '(' && src[i + 2] == '<' && src[i + 3] != '=' &&
                   src[i + 3] != '!' && src[i + 3] != '\0') {
            const char *nm = src + i + 3;
            size_t k = strcspn(nm, ">");
            n++;
            any = true;
            if (found == 0 && k == nlen && memcmp(nm, name, nlen) == 0)
                found = n;
        }
    }
    return any ? found : -1;
}

/* TPL expanded for match M of S[0..N); SRC is the regexp source (NULL for
 * a string pattern) */
static void
expand(struct buf *out, const char *tpl, size_t tlen, const char *s,
       size_t n, const struct regexp_match *m, const char *src)
{
    int ncap = m->n_groups - 1;

    for (size_t i = 0; i < tlen;) {
        char d;
        if (tpl[i] != '$' || i + 1 >= tlen) {
            buf_addc(out, tpl[i++]);
            continue;
        }
        d = tpl[i + 1];
        if (d == '$') {
            buf_addc(out, '$');
            i += 2;
        } else if (d == '&') {
            add_group(out, s, m, 0);
            i += 2;
        } else if (d == '`') {
            buf_add(out, s, (size_t)m->start[0]);
            i += 2;
        } else if (d == '\'') {
            buf_add(out, s + m->end[0], n - (size_t)m->end[0]);
            i += 2;
        } else if (d == '<' && src != NULL &&
                   memchr(tpl + i + 2, '>', tlen - i - 2) != NULL) {
            const char *nm = tpl + i + 2;
            size_t k = (size_t)((const char *)memchr(nm, '>', tlen - i - 2) -
                                nm);
            int g = named_group(src, nm, k);
            if (g < 0) {
                /* no named groups: "$<" is literal */
                buf_addc(out, '$');
                i++;
                continue;
            }
            if (g > 0)
                add_group(out, s, m, g);
            i += 3 + k;
        } else if (d >= '0' && d <= '9') {
            int d1 = d - '0';
            if (i + 2 < tlen && tpl[i + 2] >= '0' && tpl[i + 2] <= '9') {
                int nn = d1 * 10 + (tpl[i + 2] - '0');
                if (nn >= 1 && nn <= ncap) {
                    add_group(out, s, m, nn);
                    i += 3;
                    continue;
                }
            }
            if (d1 >= 1 && d1 <= ncap) {
                add_group(out, s, m, d1);
                i += 2;
            } else {
                buf_addc(out, '$');
                i++;
            }
        } else {
            buf_addc(out, '$');
            i++;
        }
    }
}

/* Replace the first match of RE in S[0..N) (every match when ALL) with
 * the expansion of TPL.  -1 when the match limit was hit. */
static int
replace_re(struct buf *out, const struct krl_regexp *re, const char *s,
           size_t n, const char *tpl, size_t tlen, bool all)
{
    struct regexp_match m;
    size_t last = 0, from = 0;
    int rc = 0;

    while (from <= n && (rc = regexp_exec(re, s, n, from, &m)) == 1) {
        size_t st = (size_t)m.start[0], en = (size_t)m.end[0];
        buf_add(out, s + last, st - last);
        expand(out, tpl, tlen, s, n, &m, regexp_source(re));
        last = en;
        if (!all)
            break;
        from = en > st ? en : skip_empty(s, n, en);
    }
    if (rc < 0)
        return -1;
    buf_add(out, s + last, n - last);
    return 0;
}

/* ---- sprintf ---- */

/* The reference's sprintfBase: every SPEC not after a backslash becomes
 * VAL ("\\" is a backslash, "\%d" a literal "%d").  It is done with the
 * same regexp and "$1" + VAL template, so its quirks (a template "$&" in
 * VAL, "%d%d" replacing only the first) are kept. */
static kval
sprintf_base(const kval *val, const kval *tmpl, const char *spec)
{
    const char *t = kval_str_ptr(tmpl);
    size_t n = kval_str_bytes(tmpl);
    char pat[32], err[128];
    struct krl_regexp *re;
    struct buf rep, joined, out;
    size_t start = 0;

    buf_init(&rep);
    buf_adds(&rep, "$1");
    buf_add(&rep, kval_str_ptr(val), kval_str_bytes(val));
    snprintf(pat, sizeof pat, "(^|[^\\\\])%s", spec);
    re = regexp_compile(pat, strlen(pat), "g", err, sizeof err);
    if (re == NULL) {
        buf_release(&rep);
        return kval_error("Error: %s", err);
    }

    buf_init(&joined);
    for (;;) {
        const char *bs = NULL;
        for (size_t i = start; i + 1 < n; i++) {
            if (t[i] == '\\' && t[i + 1] == '\\') {
                bs = t + i;
                break;
            }
        }
        size_t end = bs != NULL ? (size_t)(bs - t) : n;
        if (replace_re(&joined, re, t + start, end - start, rep.data, rep.len,
                       true) < 0) {
            regexp_unref(re);
            buf_release(&rep);
            buf_release(&joined);
            return kval_error(LIMIT_MSG);
        }
        if (bs == NULL)
            break;
        buf_addc(&joined, '\\');
        start = end + 2;
    }
    regexp_unref(re);
    buf_release(&rep);

    /* "\%d" -> "%d" */
    size_t sl = strlen(spec);
    buf_init(&out);
    for (size_t i = 0; i < joined.len;) {
        if (joined.data[i] == '\\' && i + 1 + sl <= joined.len &&
            memcmp(joined.data + i + 1, spec, sl) == 0) {
            buf_adds(&out, spec);
            i += 1 + sl;
        } else {
            buf_addc(&out, joined.data[i++]);
        }
    }
    buf_release(&joined);
    return buf_to_str(&out);
}

static kval
fn_sprintf(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    const kval *tpl = builtin_arg(args, n_args, 1);
    kval t, s, r;

    (void)vm;
    (void)data;
    if (kval_is_null(tpl))
        return kval_cstr("");
    t = op_to_string(tpl);
    if (kval_kind(val) == KV_NUMBER) {
        s = op_to_string(val);
        r = sprintf_base(&s, &t, "%d");
        kval_free(s);
    } else if (kval_kind(val) == KV_STRING) {
        r = sprintf_base(val, &t, "%s");
    } else {
        return t;
    }
    kval_free(t);
    return r;
}

/* ---- case, JSON ---- */

static kval
fn_capitalize(struct krl_vm *vm, void *data, const kval *args,
              size_t n_args)
{
    kval s = arg_str(args, n_args, 0);
    const char *p = kval_str_ptr(&s);
    size_t n = kval_str_bytes(&s);
    uint16_t u;
    uint32_t c;
    size_t k;
    struct buf out;

    (void)vm;
    (void)data;
    if (kval_str_len16(&s) == 0)
        return s;
    /* val[0].toUpperCase(): the first UTF-16 unit; half a pair stays */
    u = kval_str_unit16(&s, 0);
    if (u >= 0xD800 && u <= 0xDFFF)
        return s;
    k = dec(p, n, &c);
    buf_init(&out);
    map_char(&out, c, true);
    buf_add(&out, p + k, n - k);
    kval_free(s);
    return buf_to_str(&out);
}

static kval
fn_lc(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    kval s = arg_str(args, n_args, 0);
    kval r = map_case(&s, false);

    (void)vm;
    (void)data;
    kval_free(s);
    return r;
}

static kval
fn_uc(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    kval s = arg_str(args, n_args, 0);
    kval r = map_case(&s, true);

    (void)vm;
    (void)data;
    kval_free(s);
    return r;
}

static kval
fn_decode(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *val = builtin_arg(args, n_args, 0);
    kval r;

    (void)vm;
    (void)data;
    if (kval_kind(val) != KV_STRING)
        return kval_copy(val);
    r = json_parse(kval_str_ptr(val), kval_str_bytes(val));
    if (kval_is_error(&r)) {
        kval_free(r);
        return kval_copy(val);
    }
    return r;
}

/* JavaScript parseInt(text, 10), or 0 where it gives NaN */
static long
parse_int(const char *s, size_t n)
{
    size_t i = 0;
    bool neg = false;
    long v = 0;

    while (i < n) {
        uint32_t c;
        size_t k = dec(s + i, n - i, &c);
        if (!is_js_space(c))
            break;
        i += k;
    }
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v < 1000000)
            v = v * 10 + (s[i] - '0');
        i++;
    }
    return neg ? -v : v;
}

/* _.parseInt(indent, 10) || 0: lodash turns the value into text first
 * (null is "", an array joins its elements) */
static long
indent_of(const kval *v)
{
    struct buf b;
    long r;

    if (kval_is_null(v) || kval_kind(v) == KV_BOOL)
        return 0;
    buf_init(&b);
    lib_type_js_string(v, &b);
    r = parse_int(b.data, b.len);
    buf_release(&b);
    return r;
}

static kval
fn_encode(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    long indent = indent_of(builtin_arg(args, n_args, 1));
    struct buf out;

    (void)vm;
    (void)data;
    /* JSON.stringify uses at most 10 spaces, none below 1 */
    if (indent < 0)
        indent = 0;
    if (indent > 10)
        indent = 10;
    buf_init(&out);
    if (json_encode(builtin_arg(args, n_args, 0), JSON_KRL, (int)indent,
                    &out) < 0) {
        buf_release(&out);
        return kval_error("TypeError: value cannot be encoded as JSON");
    }
    return buf_to_str(&out);
}

/* ---- regexps ---- */

static kval
fn_extract(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    kval s, rv, arr;
    const struct krl_regexp *re;
    struct regexp_match m;
    const char *p;
    size_t n, from = 0;
    int rc;

    (void)vm;
    (void)data;
    if (n_args < 2)
        return kval_array();
    rv = to_regexp(builtin_arg(args, n_args, 1));
    if (kval_is_error(&rv))
        return rv;
    re = kval_get_regexp(&rv);
    s = arg_str(args, n_args, 0);
    p = kval_str_ptr(&s);
    n = kval_str_bytes(&s);
    arr = kval_array();
    if (regexp_global(re)) {
        /* String.prototype.match with g: every whole match */
        while ((rc = regexp_exec(re, p, n, from, &m)) == 1) {
            arr = kval_array_append(arr, group_str(p, &m, 0));
            from = m.end[0] > m.start[0] ? (size_t)m.end[0]
                                         : skip_empty(p, n, (size_t)m.end[0]);
            if (from > n)
                break;
        }
    } else {
        rc = regexp_exec(re, p, n, 0, &m);
        for (int g = 1; rc == 1 && g < m.n_groups; g++)
            arr = kval_array_append(arr, group_str(p, &m, g));
    }
    kval_free(s);
    kval_free(rv);
    if (rc < 0) {
        kval_free(arr);
        return kval_error(LIMIT_MSG);
    }
    return arr;
}

static kval
fn_match(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *rx = builtin_arg(args, n_args, 1);
    struct regexp_match m;
    kval rv, s;
    int rc;

    (void)vm;
    (void)data;
    if (kval_kind(rx) != KV_STRING && kval_kind(rx) != KV_REGEXP)
        return kval_bool(false);
    rv = to_regexp(rx);
    if (kval_is_error(&rv))
        return rv;
    s = arg_str(args, n_args, 0);
    rc = regexp_exec(kval_get_regexp(&rv), kval_str_ptr(&s),
                     kval_str_bytes(&s), 0, &m);
    kval_free(s);
    kval_free(rv);
    if (rc < 0)
        return kval_error(LIMIT_MSG);
    return kval_bool(rc == 1);
}

/* ---- characters ---- */

static kval
fn_ord(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    kval s = arg_str(args, n_args, 0);
    kval r;

    (void)vm;
    (void)data;
    if (kval_str_len16(&s) == 0)
        r = kval_null();
    else
        r = kval_number(kval_str_unit16(&s, 0));
    kval_free(s);
    return r;
}

static kval
fn_chr(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    double d;
    uint16_t u;

    (void)vm;
    (void)data;
    if (!op_to_number(builtin_arg(args, n_args, 0), &d))
        return kval_null();
    /* String.fromCharCode: ToUint16 */
    if (!isfinite(d)) {
        d = 0;
    } else {
        d = fmod(trunc(d), 65536.0);
        if (d < 0)
            d += 65536.0;
    }
    u = (uint16_t)d;
    return kval_str_from16(&u, 1);
}

static kval
fn_range(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    double a, b, step, count;
    kval arr;

    (void)vm;
    (void)data;
    if (n_args < 2 || !op_to_number(builtin_arg(args, n_args, 0), &a) ||
        !op_to_number(builtin_arg(args, n_args, 1), &b))
        return kval_array();
    /* _.range(a, b + 1) or _.range(a, b - 1), inclusive of b */
    b = a < b ? b + 1 : b - 1;
    step = a < b ? 1 : -1;
    count = ceil((b - a) / step);
    if (!(count >= 0))
        count = 0;
    if (count > RANGE_MAX)
        return kval_error("RangeError: Invalid array length");
    arr = kval_array_sized((size_t)count);
    for (size_t i = 0; i < (size_t)count; i++) {
        arr = kval_array_append(arr, kval_number(a));
        a += step;
    }
    return arr;
}

/* ---- split, substr ---- */

static kval
split_string(const kval *s, const kval *sep)
{
    const char *p = kval_str_ptr(s), *q = kval_str_ptr(sep);
    size_t n = kval_str_bytes(s), qn = kval_str_bytes(sep);
    size_t start = 0;
    kval arr = kval_array();

    if (qn == 0) {
        /* every UTF-16 code unit on its own */
        size_t n16 = kval_str_len16(s);
        for (size_t i = 0; i < n16; i++)
            arr = kval_array_append(arr, kval_str_substr16(s, i, 1));
        return arr;
    }
    for (;;) {
        const char *hit = find_bytes(p + start, n - start, q, qn);
        if (hit == NULL)
            break;
        arr = kval_array_append(arr, str_of(p + start,
                                            (size_t)(hit - (p + start))));
        start = (size_t)(hit - p) + qn;
    }
    return kval_array_append(arr, str_of(p + start, n - start));
}

/* String.prototype.split with a regexp (the @@split algorithm) */
static kval
split_regexp(const kval *s, const struct krl_regexp *re)
{
    const char *p = kval_str_ptr(s);
    size_t n = kval_str_bytes(s);
    size_t last = 0, q = 0;
    struct regexp_match m;
    kval arr = kval_array();
    int rc;

    if (n == 0) {
        rc = regexp_exec(re, p, 0, 0, &m);
        if (rc < 0) {
            kval_free(arr);
            return kval_error(LIMIT_MSG);
        }
        return rc == 1 ? arr : kval_array_append(arr, kval_cstr(""));
    }
    while (q < n) {
        rc = regexp_exec(re, p, n, q, &m);
        if (rc < 0) {
            kval_free(arr);
            return kval_error(LIMIT_MSG);
        }
        if (rc == 0 || (size_t)m.start[0] >= n)
            break;
        size_t st = (size_t)m.start[0], en = (size_t)m.end[0];
        if (en == last) {
            /* an empty match where the last piece ended: move on */
            q = skip_empty(p, n, st);
            continue;
        }
        arr = kval_array_append(arr, str_of(p + last, st - last));
        for (int g = 1; g < m.n_groups; g++)
            arr = kval_array_append(arr, group_str(p, &m, g));
        last = en;
        q = en > st ? en : skip_empty(p, n, en);
    }
    return kval_array_append(arr, str_of(p + last, n - last));
}

static kval
fn_split(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *sep = builtin_arg(args, n_args, 1);
    kval s = arg_str(args, n_args, 0);
    kval r;

    (void)vm;
    (void)data;
    if (kval_kind(sep) == KV_REGEXP) {
        r = split_regexp(&s, kval_get_regexp(sep));
    } else {
        kval t = op_to_string(sep);
        r = split_string(&s, &t);
        kval_free(t);
    }
    kval_free(s);
    return r;
}

/* ToIntegerOrInfinity clamped to [0, LEN], as String.prototype.substring */
static size_t
clamp_index(double d, size_t len)
{
    if (isnan(d) || d <= 0)
        return 0;
    d = trunc(d);
    return d >= (double)len ? len : (size_t)d;
}

static kval
fn_substr(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    kval s = arg_str(args, n_args, 0);
    size_t len16 = kval_str_len16(&s);
    double start, len, end;
    bool has_len;
    size_t a, b;
    kval r;

    (void)vm;
    (void)data;
    if (!op_to_number(builtin_arg(args, n_args, 1), &start))
        return s;
    if (start > (double)len16) {
        kval_free(s);
        return kval_cstr("");
    }
    has_len = op_to_number(builtin_arg(args, n_args, 2), &len);
    if (!has_len)
        end = (double)len16;
    else if (len > 0)
        end = start + len;
    else
        end = (double)len16 + len;    /* a 0 length also means "to the end" */
    a = clamp_index(start, len16);
    b = clamp_index(end, len16);
    if (a > b) {
        size_t t = a;
        a = b;
        b = t;
    }
    r = kval_str_substr16(&s, a, b - a);
    kval_free(s);
    return r;
}

/* ---- trim, tests ---- */

static kval
trim(const kval *args, size_t n_args, bool lead, bool trail)
{
    kval s = arg_str(args, n_args, 0);
    const char *p = kval_str_ptr(&s);
    size_t a = 0, b = kval_str_bytes(&s);
    kval r;
    uint32_t c;

    while (lead && a < b) {
        size_t k = dec(p + a, b - a, &c);
        if (!is_js_space(c))
            break;
        a += k;
    }
    while (trail && b > a) {
        size_t st = prev_start(p, b);
        dec(p + st, b - st, &c);
        if (!is_js_space(c))
            break;
        b = st;
    }
    if (a == 0 && b == kval_str_bytes(&s))
        return s;
    r = str_of(p + a, b - a);
    kval_free(s);
    return r;
}

static kval
fn_trim(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return trim(args, n_args, true, true);
}

static kval
fn_trim_leading(struct krl_vm *vm, void *data, const kval *args,
                size_t n_args)
{
    (void)vm;
    (void)data;
    return trim(args, n_args, true, false);
}

static kval
fn_trim_trailing(struct krl_vm *vm, void *data, const kval *args,
                 size_t n_args)
{
    (void)vm;
    (void)data;
    return trim(args, n_args, false, true);
}

enum str_test { STARTS, ENDS, CONTAINS };

static kval
str_test(const kval *args, size_t n_args, enum str_test how)
{
    kval s = arg_str(args, n_args, 0);
    kval t = arg_str(args, n_args, 1);
    const char *p = kval_str_ptr(&s), *q = kval_str_ptr(&t);
    size_t n = kval_str_bytes(&s), qn = kval_str_bytes(&t);
    bool r;

    if (qn > n)
        r = false;
    else if (how == STARTS)
        r = memcmp(p, q, qn) == 0;
    else if (how == ENDS)
        r = memcmp(p + n - qn, q, qn) == 0;
    else
        r = find_bytes(p, n, q, qn) != NULL;
    kval_free(s);
    kval_free(t);
    return kval_bool(r);
}

static kval
fn_starts_with(struct krl_vm *vm, void *data, const kval *args,
               size_t n_args)
{
    (void)vm;
    (void)data;
    return str_test(args, n_args, STARTS);
}

static kval
fn_ends_with(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return str_test(args, n_args, ENDS);
}

static kval
fn_contains(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return str_test(args, n_args, CONTAINS);
}

/* ---- replace ---- */

/* Call FN with (match, groups..., offset, string) for the first match of
 * RE (each match when it is global); its result, as JavaScript's String(),
 * replaces the match. */
static kval
replace_fn(struct krl_vm *vm, const kval *s, const struct krl_regexp *re,
           const kval *fn)
{
    const char *p = kval_str_ptr(s);
    size_t n = kval_str_bytes(s);
    size_t last = 0, from = 0;
    struct regexp_match m;
    kval fargs[REGEXP_MAX_GROUPS + 2];
    struct buf out;
    int rc = 0;

    buf_init(&out);
    while (from <= n && (rc = regexp_exec(re, p, n, from, &m)) == 1) {
        size_t st = (size_t)m.start[0], en = (size_t)m.end[0];
        size_t k = 0;
        kval r;

        for (int g = 0; g < m.n_groups; g++)
            fargs[k++] = group_str(p, &m, g);
        fargs[k++] = kval_number((double)kval_str_byte_to16(s, st));
        fargs[k++] = kval_copy(s);
        r = kval_func_call(vm, fn, fargs, k);
        for (size_t i = 0; i < k; i++)
            kval_free(fargs[i]);
        if (kval_is_error(&r)) {
            buf_release(&out);
            return r;
        }
        buf_add(&out, p + last, st - last);
        lib_type_js_string(&r, &out);
        kval_free(r);
        last = en;
        if (!regexp_global(re))
            break;
        from = en > st ? en : skip_empty(p, n, en);
    }
    if (rc < 0) {
        buf_release(&out);
        return kval_error(LIMIT_MSG);
    }
    buf_add(&out, p + last, n - last);
    return buf_to_str(&out);
}

/* String.prototype.replace with a string pattern: the first occurrence */
static kval
replace_literal(const kval *s, const kval *pat, const char *tpl,
                size_t tlen)
{
    const char *p = kval_str_ptr(s), *q = kval_str_ptr(pat);
    size_t n = kval_str_bytes(s), qn = kval_str_bytes(pat);
    const char *hit = find_bytes(p, n, q, qn);
    struct regexp_match m;
    struct buf out;

    if (hit == NULL)
        return kval_copy(s);
    m.n_groups = 1;
    m.start[0] = hit - p;
    m.end[0] = m.start[0] + (long)qn;
    buf_init(&out);
    buf_add(&out, p, (size_t)m.start[0]);
    expand(&out, tpl, tlen, p, n, &m, NULL);
    buf_add(&out, p + m.end[0], n - (size_t)m.end[0]);
    return buf_to_str(&out);
}

static kval
fn_replace(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *rx = builtin_arg(args, n_args, 1);
    const kval *repl = builtin_arg(args, n_args, 2);
    kval s, pat, tpl, r;

    (void)data;
    if (n_args < 2)
        return kval_copy(builtin_arg(args, n_args, 0));
    s = arg_str(args, n_args, 0);
    if (kval_kind(repl) == KV_FUNCTION) {
        pat = to_regexp(rx);
        if (kval_is_error(&pat)) {
            kval_free(s);
            return pat;
        }
        r = replace_fn(vm, &s, kval_get_regexp(&pat), repl);
        kval_free(pat);
        kval_free(s);
        return r;
    }
    pat = kval_kind(rx) == KV_REGEXP ? kval_copy(rx) : op_to_string(rx);
    tpl = kval_is_null(repl) ? kval_cstr("") : op_to_string(repl);
    if (kval_kind(&pat) == KV_REGEXP) {
        const struct krl_regexp *re = kval_get_regexp(&pat);
        struct buf out;
        buf_init(&out);
        if (replace_re(&out, re, kval_str_ptr(&s), kval_str_bytes(&s),
                       kval_str_ptr(&tpl), kval_str_bytes(&tpl),
                       regexp_global(re)) < 0) {
            buf_release(&out);
            r = kval_error(LIMIT_MSG);
        } else {
            r = buf_to_str(&out);
        }
    } else {
        r = replace_literal(&s, &pat, kval_str_ptr(&tpl),
                            kval_str_bytes(&tpl));
    }
    kval_free(tpl);
    kval_free(pat);
    kval_free(s);
    return r;
}

/* ---- 32-bit integer operations ---- */

/* ToInt32 */
static int32_t
to_int32(double d)
{
    double m;

    if (!isfinite(d))
        return 0;
    m = fmod(trunc(d), 4294967296.0);
    if (m < 0)
        m += 4294967296.0;
    if (m >= 2147483648.0)
        return (int32_t)(int64_t)(m - 4294967296.0);
    return (int32_t)m;
}

enum bitop { SHR, SHL, AND, OR, XOR };

static kval
bit_error(const kval *a, const kval *b, const char *mid)
{
    kval sa = op_to_string(a), sb = op_to_string(b);
    kval e = kval_error("TypeError: %s %s %s", kval_str_ptr(&sa), mid,
                        kval_str_ptr(&sb));
    kval_free(sa);
    kval_free(sb);
    return e;
}

static kval
bitop(const kval *args, size_t n_args, enum bitop op)
{
    const kval *a = builtin_arg(args, n_args, 0);
    const kval *b = builtin_arg(args, n_args, 1);
    double x, y;
    int32_t l, r, v;
    unsigned sh;

    if (!op_to_number(a, &x) || !op_to_number(b, &y))
        return bit_error(a, b, op == SHR || op == SHL
                               ? "cannot be shifted by"
                               : "cannot be bitwise anded");
    l = to_int32(x);
    r = to_int32(y);
    sh = (uint32_t)r & 31u;
    switch (op) {
    case SHR:
        /* arithmetic shift, written so that it does not depend on the
         * compiler's choice for negative numbers */
        v = l >= 0 ? l >> sh : ~(~l >> sh);
        break;
    case SHL:
        v = to_int32((double)(uint32_t)((uint32_t)l << sh));
        break;
    case AND:
        v = l & r;
        break;
    case OR:
        v = l | r;
        break;
    default:
        v = l ^ r;
        break;
    }
    return kval_number(v);
}

static kval
fn_shift_right(struct krl_vm *vm, void *data, const kval *args,
               size_t n_args)
{
    (void)vm;
    (void)data;
    return bitop(args, n_args, SHR);
}

static kval
fn_shift_left(struct krl_vm *vm, void *data, const kval *args,
              size_t n_args)
{
    (void)vm;
    (void)data;
    return bitop(args, n_args, SHL);
}

static kval
fn_band(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return bitop(args, n_args, AND);
}

static kval
fn_bor(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return bitop(args, n_args, OR);
}

static kval
fn_bxor(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    (void)vm;
    (void)data;
    return bitop(args, n_args, XOR);
}

static kval
fn_bnot(struct krl_vm *vm, void *data, const kval *args, size_t n_args)
{
    const kval *a = builtin_arg(args, n_args, 0);
    double x;

    (void)vm;
    (void)data;
    if (!op_to_number(a, &x)) {
        kval s = op_to_string(a);
        kval e = kval_error("TypeError: %s cannot be inverted ",
                            kval_str_ptr(&s));
        kval_free(s);
        return e;
    }
    return kval_number(~to_int32(x));
}

const struct krl_builtin lib_string_builtins[] = {
    {"sprintf", fn_sprintf, KV_FN_FUNCTION, {"val", "template"}},
    {"capitalize", fn_capitalize, KV_FN_FUNCTION, {"val"}},
    {"lc", fn_lc, KV_FN_FUNCTION, {"val"}},
    {"uc", fn_uc, KV_FN_FUNCTION, {"val"}},
    {"decode", fn_decode, KV_FN_FUNCTION, {"val"}},
    {"encode", fn_encode, KV_FN_FUNCTION, {"val", "indent"}},
    {"extract", fn_extract, KV_FN_FUNCTION, {"val", "regex"}},
    {"match", fn_match, KV_FN_FUNCTION, {"val", "regex"}},
    {"ord", fn_ord, KV_FN_FUNCTION, {"val"}},
    {"chr", fn_chr, KV_FN_FUNCTION, {"val"}},
    {"range", fn_range, KV_FN_FUNCTION, {"val", "end"}},
    {"split", fn_split, KV_FN_FUNCTION, {"val", "splitOn"}},
    {"substr", fn_substr, KV_FN_FUNCTION, {"val", "start", "len"}},
    {"trim", fn_trim, KV_FN_FUNCTION, {"val"}},
    {"trimLeading", fn_trim_leading, KV_FN_FUNCTION, {"val"}},
    {"trimTrailing", fn_trim_trailing, KV_FN_FUNCTION, {"val"}},
    {"startsWith", fn_starts_with, KV_FN_FUNCTION, {"val", "target"}},
    {"endsWith", fn_ends_with, KV_FN_FUNCTION, {"val", "target"}},
    {"contains", fn_contains, KV_FN_FUNCTION, {"val", "target"}},
    {"replace", fn_replace, KV_FN_FUNCTION,
     {"val", "regex", "replacement"}},
    {"shiftRight", fn_shift_right, KV_FN_FUNCTION, {"left", "right"}},
    {"shiftLeft", fn_shift_left, KV_FN_FUNCTION, {"left", "right"}},
    {"band", fn_band, KV_FN_FUNCTION, {"left", "right"}},
    {"bor", fn_bor, KV_FN_FUNCTION, {"left", "right"}},
    {"bxor", fn_bxor, KV_FN_FUNCTION, {"left", "right"}},
    {"bnot", fn_bnot, KV_FN_FUNCTION, {"left"}},
    {NULL, NULL, 0, {NULL}},
};
