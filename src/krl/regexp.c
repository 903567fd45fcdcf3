/*
 * regexp.c - ECMAScript-like regular expressions on PCRE2; see regexp.h.
 *
 * The reference engine compiles KRL regexps with JavaScript's
 * `new RegExp(source, flags)` (no "u" flag).  PCRE2 is close but not equal,
 * so the source is first translated into a PCRE2 pattern that matches what
 * the JavaScript one would:
 *   - `.` excludes \n \r U+2028 U+2029 (PCRE2 only excludes \n);
 *   - `\s` and `\S` use JavaScript's Unicode white space, while \d \w \b
 *     stay ASCII (PCRE2_UCP would widen those too, so it is not used);
 *   - `\v` is VT, not PCRE2's vertical-space class;
 *   - escapes JavaScript does not know (\a \e \h \p \Q \z ...) are the
 *     letter itself ("identity escapes");
 *   - `\N` beyond the number of groups is a legacy octal escape, \8 \9 are
 *     digits; `\k` is a literal k when there are no named groups;
 *   - `[` inside a class is literal (no POSIX [:alpha:]);
 *   - PCRE2-only syntax ((?i), (?>, (?|, (*VERB) ...) is refused;
 *   - the common syntax errors use V8's wording ("Unterminated group");
 *   - a `\uD83D\uDE00` surrogate pair becomes the character it encodes; a
 *     lone surrogate escape can never match UTF-8 text, so outside a class
 *     it becomes a group that never matches.
 * `\u{...}` is deliberately not PCRE2_EXTRA_ALT_BSUX: without the "u" flag
 * JavaScript reads it as `u` with a quantifier, and so do we.
 *
 * Known differences left: `.` and classes match a whole code point where
 * JavaScript (no "u" flag) matches one UTF-16 unit, so /a.c/ matches
 * "a\U0001F600c" here and a lone surrogate never matches; variable-length
 * lookbehind is refused (PCRE2 10.42); case-insensitive matching uses
 * Unicode case folding (so /k/i matches KELVIN SIGN, which JavaScript does
 * not); a lone surrogate escape inside a class is refused.
 *
 * A compiled regexp is immutable; its refcount is atomic and each match
 * uses its own match data, so one regexp may be used by several threads.
 */
#include "picomail/regexp.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/mem.h"

/* Backtracking budget: enough for any sane pattern, small enough that a
 * catastrophic one fails in well under a second. */
#define MATCH_LIMIT     2000000u
#define DEPTH_LIMIT     100000u
#define HEAP_LIMIT_KIB  20000u

struct krl_regexp {
    atomic_size_t refs;
    pcre2_code *code;
    pcre2_match_context *mctx;
    char *source;
    bool global;
    bool icase;
    int n_groups;
};

/* JavaScript WhiteSpace and LineTerminator, as class members */
#define JS_SPACE \
    "\\t\\n\\x0b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029" \
    "\\u202f\\u205f\\u3000\\ufeff"
/* Its complement over all code points, for \S inside a class; the last
 * range ends at U+10FFFF written as UTF-8. */
#define JS_NONSPACE \
    "\\x00-\\x08\\x0e-\\x1f!-\\x9f\\u00a1-\\u167f\\u1681-\\u1fff" \
    "\\u200b-\\u2027\\u202a-\\u202e\\u2030-\\u205e\\u2060-\\u2fff" \
    "\\u3001-\\ufefe\\uff00-\xf4\x8f\xbf\xbf"

struct xlat {
    const char *s;
    size_t len;
    size_t i;
    bool in_class;
    int n_groups;           /* capturing groups in the source */
    bool named;             /* the source has a named group */
    struct buf out;
    const char *err;        /* set when the source cannot be translated */
};

static bool
is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

static unsigned
hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (unsigned)(c - 'a' + 10);
    return (unsigned)(c - 'A' + 10);
}

static bool
is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The value of "\uXXXX" at S[I] (I at the backslash), or -1 */
static long
u_escape(const char *s, size_t len, size_t i)
{
    if (i + 6 > len || s[i] != '\\' || s[i + 1] != 'u')
        return -1;
    unsigned v = 0;
    for (size_t k = i + 2; k < i + 6; k++) {
        if (!is_hex(s[k]))
            return -1;
        v = v * 16 + hex_val(s[k]);
    }
    return (long)v;
}

static void
add_utf8(struct buf *b, unsigned long cp)
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

/* Count capturing groups and look for named ones, as JavaScript does
 * before it decides what \N and \k mean. */
static void
prescan(struct xlat *x)
{
    bool in_class = false;

    for (size_t i = 0; i < x->len; i++) {
        char c = x->s[i];
        if (c == '\\') {
            i++;
        } else if (in_class) {
            if (c == ']')
                in_class = false;
        } else if (c == '[') {
            in_class = true;
        } else if (c == '(') {
            if (i + 1 >= x->len || x->s[i + 1] != '?') {
                x->n_groups++;
            } else if (i + 3 < x->len && x->s[i + 2] == '<' &&
                       x->s[i + 3] != '=' && x->s[i + 3] != '!') {
                x->n_groups++;
                x->named = true;
            }
        }
    }
}

/* A legacy octal escape at S[I] (a digit after the backslash): up to three
 * octal digits while the value stays below 0400. */
static void
octal_escape(struct xlat *x)
{
    unsigned v = 0;
    int n = 0;

    while (n < 3 && x->i < x->len && x->s[x->i] >= '0' &&
           x->s[x->i] <= '7') {
        unsigned nv = v * 8 + (unsigned)(x->s[x->i] - '0');
        if (nv > 0377)
            break;
        v = nv;
        x->i++;
        n++;
    }
    buf_printf(&x->out, "\\x%02x", v);
}

/* After a class escape inside a class, a '-' is literal in JavaScript
 * (Annex B) but would start a range (or an error) in PCRE2. */
static void
class_dash(struct xlat *x)
{
    if (x->in_class && x->i + 1 < x->len && x->s[x->i] == '-' &&
        x->s[x->i + 1] != ']') {
        buf_adds(&x->out, "\\-");
        x->i++;
    }
}

/* Translate the escape at S[I] (the backslash). */
static void
escape(struct xlat *x)
{
    const char *s = x->s;
    size_t i = x->i;
    char e;

    if (i + 1 >= x->len) {
        /* a trailing backslash: let PCRE2 report it */
        buf_addc(&x->out, '\\');
        x->i++;
        return;
    }
    e = s[i + 1];
    switch (e) {
    case 'd': case 'D': case 'w': case 'W':
        buf_add(&x->out, s + i, 2);
        x->i += 2;
        class_dash(x);
        return;
    case 's': case 'S':
        if (x->in_class)
            buf_adds(&x->out, e == 's' ? JS_SPACE : JS_NONSPACE);
        else
            buf_adds(&x->out, e == 's' ? "[" JS_SPACE "]"
                                       : "[^" JS_SPACE "]");
        x->i += 2;
        class_dash(x);
        return;
    case 'B':
        /* \B inside a class is an identity escape */
        if (x->in_class)
            buf_addc(&x->out, 'B');
        else
            buf_adds(&x->out, "\\B");
        x->i += 2;
        return;
    case 'b': case 'f': case 'n': case 'r': case 't': case 'x':
        /* the same in both; PCRE2_ALT_BSUX makes a lone \x a literal x */
        buf_add(&x->out, s + i, 2);
        x->i += 2;
        return;
    case 'v':
        buf_adds(&x->out, "\\x0b");
        x->i += 2;
        return;
    case 'c':
        if (i + 2 < x->len && is_letter(s[i + 2])) {
            buf_add(&x->out, s + i, 3);
            x->i += 3;
        } else {
            /* not a control escape: a backslash, then a 'c' */
            buf_adds(&x->out, "\\\\");
            x->i += 1;
        }
        return;
    case 'u': {
        long u = u_escape(s, x->len, i);
        if (u < 0) {
            buf_addc(&x->out, 'u');
            x->i += 2;
        } else if (u >= 0xD800 && u <= 0xDBFF &&
                   u_escape(s, x->len, i + 6) >= 0xDC00 &&
                   u_escape(s, x->len, i + 6) <= 0xDFFF) {
            long lo = u_escape(s, x->len, i + 6);
            add_utf8(&x->out, 0x10000 + (((unsigned long)u - 0xD800) << 10) +
                              ((unsigned long)lo - 0xDC00));
            x->i += 12;
        } else if (u >= 0xD800 && u <= 0xDFFF) {
            if (x->in_class)
                x->err = "lone surrogate escape in a character class";
            else
                buf_adds(&x->out, "(?:(?!))");
            x->i += 6;
        } else {
            buf_add(&x->out, s + i, 6);
            x->i += 6;
        }
        return;
    }
    case 'k':
        if (x->named && !x->in_class)
            buf_adds(&x->out, "\\k");
        else
            buf_addc(&x->out, 'k');
        x->i += 2;
        return;
    default:
        break;
    }
    if (e >= '1' && e <= '9' && !x->in_class) {
        /* a backreference when that group exists */
        size_t k = i + 1;
        unsigned long n = 0;
        while (k < x->len && s[k] >= '0' && s[k] <= '9' && n < 100000) {
            n = n * 10 + (unsigned long)(s[k] - '0');
            k++;
        }
        if (n <= (unsigned long)x->n_groups) {
            buf_printf(&x->out, "\\g{%lu}", n);
            x->i = k;
            return;
        }
    }
    if (e >= '0' && e <= '7') {
        x->i++;
        octal_escape(x);
        return;
    }
    if (e == '8' || e == '9' || is_letter(e)) {
        /* identity escape: the character itself */
        buf_addc(&x->out, e);
        x->i += 2;
        return;
    }
    if ((unsigned char)e >= 0x80) {
        /* an escaped non-ASCII character is that character */
        x->i += 1;
        return;
    }
    /* escaped punctuation means the same in PCRE2 */
    buf_add(&x->out, s + i, 2);
    x->i += 2;
}

/* Only JavaScript's group forms: PCRE2's (?i) (?| (?> (*VERB) ... are
 * syntax errors there. */
static bool
group_ok(const struct xlat *x)
{
    const char *s = x->s + x->i;
    size_t n = x->len - x->i;

    if (n >= 2 && s[1] == '*')
        return false;
    if (n < 2 || s[1] != '?')
        return true;
    if (n >= 3 && (s[2] == ':' || s[2] == '=' || s[2] == '!'))
        return true;
    return n >= 4 && s[2] == '<';
}

static void
translate(struct xlat *x)
{
    prescan(x);
    while (x->i < x->len && x->err == NULL) {
        char c = x->s[x->i];
        if (c == '\\') {
            escape(x);
            continue;
        }
        if (x->in_class) {
            if (c == ']')
                x->in_class = false;
            if (c == '[')
                buf_adds(&x->out, "\\[");
            else
                buf_addc(&x->out, c);
            x->i++;
            continue;
        }
        if (c == '[') {
            x->in_class = true;
            buf_addc(&x->out, '[');
            x->i++;
            if (x->i < x->len && x->s[x->i] == '^') {
                buf_addc(&x->out, '^');
                x->i++;
            }
            continue;
        }
        if (c == '(' && !group_ok(x)) {
            x->err = x->i + 1 < x->len && x->s[x->i + 1] == '*'
                     ? "Nothing to repeat" : "Invalid group";
            break;
        }
        if (c == '.')
            buf_adds(&x->out, "[^\\n\\r\\u2028\\u2029]");
        else
            buf_addc(&x->out, c);
        x->i++;
    }
}

/* V8's wording for the errors a KRL author is likely to make */
static const char *
v8_message(int code)
{
    switch (code) {
    case PCRE2_ERROR_END_BACKSLASH:
        return "\\ at end of pattern";
    case PCRE2_ERROR_QUANTIFIER_OUT_OF_ORDER:
        return "numbers out of order in {} quantifier";
    case PCRE2_ERROR_MISSING_SQUARE_BRACKET:
        return "Unterminated character class";
    case PCRE2_ERROR_CLASS_RANGE_ORDER:
        return "Range out of order in character class";
    case PCRE2_ERROR_QUANTIFIER_INVALID:
        return "Nothing to repeat";
    case PCRE2_ERROR_INVALID_AFTER_PARENS_QUERY:
        return "Invalid group";
    case PCRE2_ERROR_MISSING_CLOSING_PARENTHESIS:
        return "Unterminated group";
    case PCRE2_ERROR_BAD_SUBPATTERN_REFERENCE:
        return "Invalid named capture referenced";
    case PCRE2_ERROR_UNMATCHED_CLOSING_PARENTHESIS:
        return "Unmatched ')'";
    case PCRE2_ERROR_MISSING_NAME_TERMINATOR:
    case PCRE2_ERROR_INVALID_SUBPATTERN_NAME:
    case PCRE2_ERROR_SUBPATTERN_NAME_EXPECTED:
        return "Invalid capture group name";
    case PCRE2_ERROR_DUPLICATE_SUBPATTERN_NAME:
        return "Duplicate capture group name";
    default:
        return NULL;
    }
}

/* The message JavaScript gives for a bad pattern */
static void
pattern_err(char *err, size_t errlen, const char *source, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "Invalid regular expression: /%s/: %s", source,
                 why);
}

struct krl_regexp *
regexp_compile(const char *src, size_t len, const char *flags, char *err,
               size_t errlen)
{
    bool global = false, icase = false, multi = false;
    struct xlat x;
    struct krl_regexp *re;
    pcre2_compile_context *cctx;
    pcre2_code *code;
    int errcode;
    PCRE2_SIZE erroff;
    uint32_t opts, ncap;
    char *source;

    if (flags == NULL)
        flags = "";
    for (const char *f = flags; *f != '\0'; f++) {
        bool *seen = *f == 'g' ? &global : *f == 'i' ? &icase
                   : *f == 'm' ? &multi : NULL;
        if (seen == NULL || *seen) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen,
                         "Invalid flags supplied to RegExp constructor '%s'",
                         flags);
            return NULL;
        }
        *seen = true;
    }

    source = xmemdup(src, len);
    memset(&x, 0, sizeof x);
    x.s = src;
    x.len = len;
    buf_init(&x.out);
    translate(&x);
    if (x.err != NULL) {
        pattern_err(err, errlen, source, x.err);
        buf_release(&x.out);
        free(source);
        return NULL;
    }

    /* m is accepted and ignored, as by the reference's compiler */
    opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ALT_BSUX |
           PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS |
           PCRE2_MATCH_UNSET_BACKREF | PCRE2_NEVER_UCP |
           PCRE2_NEVER_BACKSLASH_C;
    if (icase)
        opts |= PCRE2_CASELESS;
    cctx = pcre2_compile_context_create(NULL);
    if (cctx == NULL) {
        pattern_err(err, errlen, source, "out of memory");
        buf_release(&x.out);
        free(source);
        return NULL;
    }
    pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
    code = pcre2_compile((PCRE2_SPTR)x.out.data, x.out.len, opts, &errcode,
                         &erroff, cctx);
    pcre2_compile_context_free(cctx);
    buf_release(&x.out);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        const char *v8 = v8_message(errcode);
        if (v8 != NULL)
            snprintf((char *)msg, sizeof msg, "%s", v8);
        else if (pcre2_get_error_message(errcode, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", errcode);
        pattern_err(err, errlen, source, (const char *)msg);
        free(source);
        return NULL;
    }
    if (pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &ncap) != 0 ||
        ncap + 1 > REGEXP_MAX_GROUPS) {
        pattern_err(err, errlen, source, "too many capture groups");
        pcre2_code_free(code);
        free(source);
        return NULL;
    }

    re = xcalloc(1, sizeof *re);
    atomic_init(&re->refs, 1);
    re->code = code;
    re->source = source;
    re->global = global;
    re->icase = icase;
    re->n_groups = (int)ncap + 1;
    re->mctx = pcre2_match_context_create(NULL);
    if (re->mctx == NULL) {
        pattern_err(err, errlen, source, "out of memory");
        regexp_unref(re);
        return NULL;
    }
    pcre2_set_match_limit(re->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, DEPTH_LIMIT);
    pcre2_set_heap_limit(re->mctx, HEAP_LIMIT_KIB);
    return re;
}

struct krl_regexp *
regexp_ref(struct krl_regexp *re)
{
    if (re != NULL)
        atomic_fetch_add_explicit(&re->refs, 1, memory_order_relaxed);
    return re;
}

void
regexp_unref(struct krl_regexp *re)
{
    if (re == NULL)
        return;
    if (atomic_fetch_sub_explicit(&re->refs, 1, memory_order_acq_rel) != 1)
        return;
    pcre2_match_context_free(re->mctx);
    pcre2_code_free(re->code);
    free(re->source);
    free(re);
}

const char *
regexp_source(const struct krl_regexp *re)
{
    return re->source;
}

bool
regexp_global(const struct krl_regexp *re)
{
    return re->global;
}

bool
regexp_ignore_case(const struct krl_regexp *re)
{
    return re->icase;
}

int
regexp_exec(const struct krl_regexp *re, const char *subject, size_t len,
            size_t start, struct regexp_match *m)
{
    pcre2_match_data *md;
    PCRE2_SIZE *ov;
    int rc;

    if (start > len)
        return 0;
    md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (md == NULL)
        return -1;
    rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, start, 0, md,
                     re->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) {
        pcre2_match_data_free(md);
        return 0;
    }
    if (rc < 0) {
        pcre2_match_data_free(md);
        return -1;
    }
    ov = pcre2_get_ovector_pointer(md);
    m->n_groups = re->n_groups;
    for (int g = 0; g < re->n_groups; g++) {
        /* groups past rc did not take part in the match */
        if (g >= rc || ov[2 * g] == PCRE2_UNSET) {
            m->start[g] = -1;
            m->end[g] = -1;
        } else {
            m->start[g] = (long)ov[2 * g];
            m->end[g] = (long)ov[2 * g + 1];
        }
    }
    pcre2_match_data_free(md);
    return 1;
}
