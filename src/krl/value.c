/*
 * value.c - the KRL value type (value.h): constructors, reference counting,
 * UTF-8 strings measured in UTF-16 code units, copy-on-write arrays and
 * insertion-ordered maps, function and error values, deep equality.
 * Number text (kval_num_format/kval_num_parse) lives in numfmt.c.
 */
#include "picomail/value.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/mem.h"
#include "picomail/regexp.h"

/* Common header of every heap block. */
struct kv_heap {
    size_t refcnt;
    uint8_t kind;
};

/* Checkpoint for UTF-16 indexing of non-ASCII strings. */
struct kv_mark {
    size_t off;                 /* byte offset of a character start */
    size_t unit;                /* its UTF-16 index */
};

#define MARK_STEP 32

struct kv_string {
    struct kv_heap h;
    char *s;                    /* WTF-8, NUL-terminated */
    size_t len;                 /* bytes */
    size_t cap;                 /* bytes allocated for s */
    size_t len16;               /* UTF-16 code units */
    bool ascii;
    bool hashed;
    uint32_t hash;
    struct kv_mark *marks;      /* lazily built; NULL for ASCII */
    size_t n_marks;
    char small[24];             /* s for short strings: one allocation */
};

#define STR_SMALL_MAX (sizeof ((struct kv_string *)0)->small - 1)

struct kv_regexp {
    struct kv_heap h;
    struct krl_regexp *re;
};

struct kv_array {
    struct kv_heap h;
    size_t len, cap;
    kval *items;
};

struct kv_entry {
    kval key;                   /* always a string */
    kval val;
    uint32_t hash;
};

#define MAP_INDEX_MIN 8         /* linear scan up to this many entries */

struct kv_map {
    struct kv_heap h;
    size_t len, cap;
    struct kv_entry *ents;
    size_t *index;              /* open addressing: entry index + 1, 0 free */
    size_t index_cap;           /* power of two, or 0 without an index */
    size_t n_intkeys;           /* keys that are canonical array indexes */
};

struct kv_func {
    struct kv_heap h;
    kval_call_fn *call;
    void *data;
    kval_data_free_fn *dfree;
    unsigned kinds;
    char *name;
    char **params;
    size_t n_params;
};

struct kv_error {
    struct kv_heap h;
    char *msg;
};

static void
misuse(const char *what)
{
    /* A type mismatch here is a bug in the caller, not a KRL error. */
    fprintf(stderr, "picomail: value.c: %s\n", what);
    abort();
}

static bool
is_heap(uint8_t kind)
{
    return kind >= KV_STRING && kind <= KV_ERROR;
}

static kval
mkheap(uint8_t kind, struct kv_heap *h)
{
    kval v;
    memset(&v, 0, sizeof v);
    h->refcnt = 1;
    h->kind = kind;
    v.kind = kind;
    v.u.p = h;
    return v;
}

/* Blocks and small item/entry vectors come from mem.h's small-block
 * lists: a batch of events makes and drops thousands of them. */
static size_t
block_size(uint8_t kind)
{
    switch ((enum kval_kind)kind) {
    case KV_STRING:
        return sizeof(struct kv_string);
    case KV_REGEXP:
        return sizeof(struct kv_regexp);
    case KV_ARRAY:
        return sizeof(struct kv_array);
    case KV_MAP:
        return sizeof(struct kv_map);
    case KV_FUNCTION:
        return sizeof(struct kv_func);
    case KV_ERROR:
        return sizeof(struct kv_error);
    case KV_NULL:
    case KV_BOOL:
    case KV_NUMBER:
        break;
    }
    return 0;
}

static void *
block_new(uint8_t kind)
{
    return mem_small_calloc(block_size(kind));
}

/* vec_resize - a vector of OLD_CAP elements of SIZE bytes (P may be NULL)
 * grown or shrunk to NEW_CAP, keeping the first KEEP elements */
static void *
vec_resize(void *p, size_t old_cap, size_t new_cap, size_t keep, size_t size)
{
    if (size != 0 && new_cap > SIZE_MAX / size)
        misuse("vector too large");
    void *q = mem_small_alloc(new_cap * size);
    if (keep > 0)
        memcpy(q, p, keep * size);
    mem_small_free(p, old_cap * size);
    return q;
}

static void
vec_free(void *p, size_t cap, size_t size)
{
    mem_small_free(p, cap * size);
}

#define STR(v) ((struct kv_string *)(void *)(v)->u.p)
#define ARR(v) ((struct kv_array *)(void *)(v)->u.p)
#define MAP(v) ((struct kv_map *)(void *)(v)->u.p)
#define FUN(v) ((struct kv_func *)(void *)(v)->u.p)

/* ---- scalars ---- */

kval
kval_null(void)
{
    kval v;
    memset(&v, 0, sizeof v);
    v.kind = KV_NULL;
    return v;
}

/* flags bit of a null read from JSON (see kval_null_json) */
#define NULL_FLAG_JSON 0x01

kval
kval_null_json(void)
{
    kval v = kval_null();
    v.flags = NULL_FLAG_JSON;
    return v;
}

bool
kval_null_is_json(const kval *v)
{
    return v->kind == KV_NULL && (v->flags & NULL_FLAG_JSON) != 0;
}

kval
kval_bool(bool b)
{
    kval v = kval_null();
    v.kind = KV_BOOL;
    v.u.b = b;
    return v;
}

kval
kval_number(double d)
{
    kval v = kval_null();
    if (isnan(d))
        return v;
    v.kind = KV_NUMBER;
    v.u.num = d;
    return v;
}

/* ---- UTF-8 / WTF-8 ---- */

/*
 * Decode one sequence at P (N bytes left).  Returns the bytes used and the
 * code point in *CP, or *CP = -1 with the length of the maximal invalid
 * subpart (as WHATWG decoders do, so one U+FFFD replaces it).  Encoded
 * surrogates (ED A0..BF xx) are accepted: they are our lone surrogates.
 */
static size_t
utf8_next(const unsigned char *p, size_t n, long *cp)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t need, i;
    uint32_t v;

    if (c < 0x80) {
        *cp = (long)c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        *cp = -1;
        return 1;
    }
    for (i = 1; i <= need; i++) {
        unsigned d;
        if (i >= n) {
            *cp = -1;
            return i;
        }
        d = p[i];
        if (d < lo || d > hi) {
            *cp = -1;
            return i;
        }
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (d & 0x3F);
    }
    *cp = (long)v;
    return need + 1;
}

/* Decode one sequence of a string known to be valid WTF-8. */
static size_t
wtf8_dec(const unsigned char *p, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] < 0xE0) {
        *cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if (p[0] < 0xF0) {
        *cp = ((uint32_t)(p[0] & 0x0F) << 12) |
              ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
          ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    return 4;
}

static size_t
wtf8_enc(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool
is_high(long cp)
{
    return cp >= 0xD800 && cp <= 0xDBFF;
}

static bool
is_low(long cp)
{
    return cp >= 0xDC00 && cp <= 0xDFFF;
}

/*
 * Is S already in our canonical form: valid WTF-8 where no encoded high
 * surrogate is directly followed by an encoded low one (that pair must be
 * one 4-byte character, as the same UTF-16 string would be)?
 */
static bool
wtf8_canonical(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    long prev = 0;

    while (i < len) {
        long cp;
        if (p[i] < 0x80) {
            i++;
            prev = 0;
            continue;
        }
        i += utf8_next(p + i, len - i, &cp);
        if (cp < 0 || (is_high(prev) && is_low(cp)))
            return false;
        prev = cp;
    }
    return true;
}

/* Append S to OUT in canonical form (see wtf8_canonical). */
static void
wtf8_repair(struct buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    char tmp[4];

    while (i < len) {
        long cp;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (cp < 0) {
            buf_add(out, "\xEF\xBF\xBD", 3);
            i += n;
            continue;
        }
        if (is_high(cp) && i + n < len) {
            long cp2;
            size_t n2 = utf8_next(p + i + n, len - i - n, &cp2);
            if (is_low(cp2)) {
                uint32_t c = 0x10000 + (((uint32_t)cp - 0xD800) << 10) +
                             ((uint32_t)cp2 - 0xDC00);
                buf_add(out, tmp, wtf8_enc(c, tmp));
                i += n + n2;
                continue;
            }
        }
        buf_add(out, s + i, n);
        i += n;
    }
}

/* Fill in ascii/len16 of a string block from its bytes. */
static void
str_measure(struct kv_string *st)
{
    const unsigned char *p = (const unsigned char *)st->s;
    size_t i = 0, n16 = 0;
    bool ascii = true;

    while (i < st->len) {
        if (p[i] < 0x80) {
            i++;
            n16++;
            continue;
        }
        ascii = false;
        if (p[i] >= 0xF0) {
            i += 4;
            n16 += 2;
        } else {
            i += p[i] >= 0xE0 ? 3 : 2;
            n16++;
        }
    }
    st->ascii = ascii;
    st->len16 = n16;
}

/* Adopt S (canonical WTF-8, malloc'd, CAP bytes, NUL at LEN). */
static kval
str_adopt(char *s, size_t len, size_t cap)
{
    struct kv_string *st = block_new(KV_STRING);
    st->s = s;
    st->len = len;
    st->cap = cap;
    str_measure(st);
    return mkheap(KV_STRING, &st->h);
}

/* A string from bytes known to be canonical WTF-8: short ones live in
 * the string block itself (most keys and many values), saving a malloc. */
static kval
str_raw(const char *s, size_t len)
{
    if (len > STR_SMALL_MAX)
        return str_adopt(xmemdup(s, len), len, len + 1);
    struct kv_string *st = block_new(KV_STRING);
    memcpy(st->small, s, len);
    st->small[len] = '\0';
    st->s = st->small;
    st->len = len;
    st->cap = sizeof st->small;
    str_measure(st);
    return mkheap(KV_STRING, &st->h);
}

static bool
all_ascii(const char *s, size_t len)
{
    unsigned char any = 0;
    for (size_t i = 0; i < len; i++)
        any |= (unsigned char)s[i];
    return any < 0x80;
}

/* str_ascii - str_raw for bytes known to be ASCII: nothing to check or
 * measure (most strings an event makes: ids, names, keys) */
static kval
str_ascii(const char *s, size_t len)
{
    if (len > STR_SMALL_MAX)
        return str_raw(s, len);
    struct kv_string *st = block_new(KV_STRING);
    memcpy(st->small, s, len);
    st->small[len] = '\0';
    st->s = st->small;
    st->len = len;
    st->cap = sizeof st->small;
    st->ascii = true;
    st->len16 = len;
    return mkheap(KV_STRING, &st->h);
}

kval
kval_str(const char *s, size_t len)
{
    struct buf b;
    size_t n;
    char *p;

    if (len == 0 || s == NULL)
        return str_raw("", 0);
    if (all_ascii(s, len))
        return str_ascii(s, len);
    if (wtf8_canonical(s, len))
        return str_raw(s, len);
    buf_init(&b);
    wtf8_repair(&b, s, len);
    p = buf_take(&b, &n);
    return str_adopt(p, n, n + 1);
}

kval
kval_cstr(const char *s)
{
    return kval_str(s, s ? strlen(s) : 0);
}

kval
kval_str_take(char *s, size_t len)
{
    kval v;
    if (wtf8_canonical(s, len))
        return str_adopt(s, len, len + 1);
    v = kval_str(s, len);
    free(s);
    return v;
}

kval
kval_str_fmt(const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    kval v;

    buf_init(&b);
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    v = kval_str(b.data, b.len);
    buf_release(&b);
    return v;
}

kval
kval_str_from16(const uint16_t *units, size_t n)
{
    struct buf b;
    size_t i, len;
    char tmp[4];
    char *p;

    buf_init(&b);
    for (i = 0; i < n; i++) {
        uint32_t c = units[i];
        if (is_high(c) && i + 1 < n && is_low(units[i + 1])) {
            c = 0x10000 + ((c - 0xD800) << 10) + (units[i + 1] - 0xDC00u);
            i++;
        }
        buf_add(&b, tmp, wtf8_enc(c, tmp));
    }
    p = buf_take(&b, &len);
    return str_adopt(p, len, len + 1);
}

const char *
kval_str_ptr(const kval *v)
{
    if (v->kind != KV_STRING)
        return "";
    return STR(v)->s;
}

size_t
kval_str_bytes(const kval *v)
{
    return v->kind == KV_STRING ? STR(v)->len : 0;
}

size_t
kval_str_len16(const kval *v)
{
    return v->kind == KV_STRING ? STR(v)->len16 : 0;
}

/* Build the UTF-16 checkpoints of a non-ASCII string. */
static void
build_marks(struct kv_string *st)
{
    const unsigned char *p = (const unsigned char *)st->s;
    size_t n = st->len16 / MARK_STEP + 2, k = 0, off = 0, unit = 0;

    st->marks = xreallocarray(NULL, n, sizeof *st->marks);
    while (off < st->len) {
        uint32_t cp;
        size_t used;
        while (k * MARK_STEP <= unit) {
            st->marks[k].off = off;
            st->marks[k].unit = unit;
            k++;
        }
        used = wtf8_dec(p + off, &cp);
        off += used;
        unit += cp >= 0x10000 ? 2 : 1;
    }
    while (k < n) {
        st->marks[k].off = st->len;
        st->marks[k].unit = st->len16;
        k++;
    }
    st->n_marks = n;
}

/* Byte offset and UTF-16 index of the character holding code unit I. */
static size_t
locate16(struct kv_string *st, size_t i, size_t *unit_out)
{
    const unsigned char *p = (const unsigned char *)st->s;
    size_t k, off, unit;

    if (st->marks == NULL)
        build_marks(st);
    k = i / MARK_STEP;
    if (k > 0 && st->marks[k].unit > i)
        k--;
    off = st->marks[k].off;
    unit = st->marks[k].unit;
    while (off < st->len) {
        uint32_t cp;
        size_t used = wtf8_dec(p + off, &cp);
        size_t w = cp >= 0x10000 ? 2 : 1;
        if (i < unit + w)
            break;
        off += used;
        unit += w;
    }
    *unit_out = unit;
    return off;
}

uint16_t
kval_str_unit16(const kval *v, size_t i)
{
    struct kv_string *st;
    size_t off, unit;
    uint32_t cp;

    if (v->kind != KV_STRING || i >= STR(v)->len16)
        return 0;
    st = STR(v);
    if (st->ascii)
        return (unsigned char)st->s[i];
    off = locate16(st, i, &unit);
    wtf8_dec((const unsigned char *)st->s + off, &cp);
    if (cp < 0x10000)
        return (uint16_t)cp;
    cp -= 0x10000;
    return (uint16_t)(i == unit ? 0xD800 + (cp >> 10) : 0xDC00 + (cp & 0x3FF));
}

kval
kval_str_substr16(const kval *v, size_t start, size_t len)
{
    struct kv_string *st;
    size_t end, off, unit, endoff, endunit, n;
    struct buf b;
    char tmp[4];
    uint32_t cp;
    char *p;

    if (v->kind != KV_STRING)
        return str_raw("", 0);
    st = STR(v);
    if (start > st->len16)
        start = st->len16;
    end = len > st->len16 - start ? st->len16 : start + len;
    if (st->ascii)
        return str_raw(st->s + start, end - start);
    if (start == end)
        return str_raw("", 0);

    buf_init(&b);
    off = locate16(st, start, &unit);
    if (unit < start) {
        /* START is the low half of a pair: it stands alone now */
        off += wtf8_dec((const unsigned char *)st->s + off, &cp);
        buf_add(&b, tmp, wtf8_enc(0xDC00 + ((cp - 0x10000) & 0x3FF), tmp));
        start++;
    }
    if (start < end) {
        endoff = locate16(st, end - 1, &endunit);
        wtf8_dec((const unsigned char *)st->s + endoff, &cp);
        if (cp >= 0x10000 && endunit == end - 1) {
            /* END cuts a pair: keep its high half alone */
            buf_add(&b, st->s + off, endoff - off);
            buf_add(&b, tmp, wtf8_enc(0xD800 + ((cp - 0x10000) >> 10), tmp));
        } else {
            endoff += cp >= 0x10000 ? 4 : cp >= 0x800 ? 3 : cp >= 0x80 ? 2 : 1;
            buf_add(&b, st->s + off, endoff - off);
        }
    }
    p = buf_take(&b, &n);
    return str_adopt(p, n, n + 1);
}

size_t
kval_str_byte_to16(const kval *v, size_t off)
{
    struct kv_string *st;
    const unsigned char *p;
    size_t lo, hi, pos, unit;

    if (v->kind != KV_STRING)
        return 0;
    st = STR(v);
    if (off > st->len)
        off = st->len;
    if (st->ascii)
        return off;
    if (st->marks == NULL)
        build_marks(st);
    /* the last checkpoint at or before OFF */
    lo = 0;
    hi = st->n_marks;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->marks[mid].off <= off)
            lo = mid;
        else
            hi = mid;
    }
    p = (const unsigned char *)st->s;
    pos = st->marks[lo].off;
    unit = st->marks[lo].unit;
    while (pos < off) {
        uint32_t cp;
        pos += wtf8_dec(p + pos, &cp);
        unit += cp >= 0x10000 ? 2 : 1;
    }
    return unit;
}

bool
kval_str_eq(const kval *a, const kval *b)
{
    if (a->kind != KV_STRING || b->kind != KV_STRING)
        return false;
    if (a->u.p == b->u.p)
        return true;
    return STR(a)->len == STR(b)->len &&
           memcmp(STR(a)->s, STR(b)->s, STR(a)->len) == 0;
}

static uint32_t
hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t
kval_str_hash(const kval *v)
{
    struct kv_string *st;
    if (v->kind != KV_STRING)
        return 0;
    st = STR(v);
    if (!st->hashed) {
        st->hash = hash_bytes(st->s, st->len);
        st->hashed = true;
    }
    return st->hash;
}

kval
kval_str_concat(kval a, kval b)
{
    struct kv_string *sa, *sb;
    size_t blen;

    if (a.kind != KV_STRING || b.kind != KV_STRING)
        misuse("kval_str_concat on a non-string");
    sa = STR(&a);
    sb = STR(&b);
    if (sb->len == 0) {
        kval_free(b);
        return a;
    }
    if (sa->len == 0) {
        kval_free(a);
        return b;
    }
    /* a high surrogate meeting a low one becomes one character */
    if (sa->len >= 3 && sb->len >= 3 &&
        (unsigned char)sa->s[sa->len - 3] == 0xED &&
        ((unsigned char)sa->s[sa->len - 2] & 0xF0) == 0xA0 &&
        (unsigned char)sb->s[0] == 0xED &&
        ((unsigned char)sb->s[1] & 0xF0) == 0xB0) {
        struct buf buf;
        kval v;
        buf_init(&buf);
        buf_add(&buf, sa->s, sa->len);
        buf_add(&buf, sb->s, sb->len);
        v = kval_str(buf.data, buf.len);
        buf_release(&buf);
        kval_free(a);
        kval_free(b);
        return v;
    }
    blen = sb->len;
    if (sa->h.refcnt == 1) {
        /* sole owner: grow in place (string building loops stay linear) */
        size_t need = sa->len + blen + 1;
        if (need > sa->cap) {
            size_t cap = sa->cap * 2 > need ? sa->cap * 2 : need;
            if (sa->s == sa->small) {
                sa->s = xmalloc(cap);
                memcpy(sa->s, sa->small, sa->len + 1);
            } else {
                sa->s = xrealloc(sa->s, cap);
            }
            sa->cap = cap;
        }
        memcpy(sa->s + sa->len, sb->s, blen);
        sa->len += blen;
        sa->s[sa->len] = '\0';
        sa->len16 += sb->len16;
        sa->ascii = sa->ascii && sb->ascii;
        sa->hashed = false;
        free(sa->marks);
        sa->marks = NULL;
        sa->n_marks = 0;
        kval_free(b);
        return a;
    } else {
        char *p = xmalloc(sa->len + blen + 1);
        kval v;
        memcpy(p, sa->s, sa->len);
        memcpy(p + sa->len, sb->s, blen);
        p[sa->len + blen] = '\0';
        v = str_adopt(p, sa->len + blen, sa->len + blen + 1);
        kval_free(a);
        kval_free(b);
        return v;
    }
}

/* Next UTF-16 code unit of the string at *OFF; *PEND holds a pending
 * low surrogate (0 when none). */
static uint16_t
next_unit(const unsigned char *p, size_t *off, uint16_t *pend)
{
    uint32_t cp;
    if (*pend != 0) {
        uint16_t u = *pend;
        *pend = 0;
        return u;
    }
    *off += wtf8_dec(p + *off, &cp);
    if (cp < 0x10000)
        return (uint16_t)cp;
    cp -= 0x10000;
    *pend = (uint16_t)(0xDC00 + (cp & 0x3FF));
    return (uint16_t)(0xD800 + (cp >> 10));
}

/* UTF-16 code unit order, as JavaScript compares strings.  This is byte
 * order except around supplementary characters, so compare bytes up to the
 * first difference and units from the character holding it. */
int
kval_str_cmp16(const kval *a, const kval *b)
{
    const unsigned char *p = (const unsigned char *)kval_str_ptr(a);
    const unsigned char *q = (const unsigned char *)kval_str_ptr(b);
    size_t la = kval_str_bytes(a), lb = kval_str_bytes(b);
    size_t i = 0, n = la < lb ? la : lb, oa, ob;
    uint16_t pa = 0, pb = 0;

    while (i < n && p[i] == q[i])
        i++;
    if (i == n)
        return la < lb ? -1 : la > lb ? 1 : 0;
    while (i > 0 && (p[i] & 0xC0) == 0x80)
        i--;
    oa = ob = i;
    for (;;) {
        uint16_t ua, ub;
        bool ea = oa >= la && pa == 0, eb = ob >= lb && pb == 0;
        if (ea || eb)
            return ea && eb ? 0 : ea ? -1 : 1;
        ua = next_unit(p, &oa, &pa);
        ub = next_unit(q, &ob, &pb);
        if (ua != ub)
            return ua < ub ? -1 : 1;
    }
}

/* ---- regexps ---- */

kval
kval_regexp(const char *source, size_t len, const char *flags)
{
    char err[256];
    struct krl_regexp *re;
    struct kv_regexp *r;

    err[0] = '\0';
    re = regexp_compile(source, len, flags ? flags : "", err, sizeof err);
    if (re == NULL)
        return kval_error("SyntaxError: %s",
                          err[0] ? err : "Invalid regular expression");
    r = block_new(KV_REGEXP);
    r->re = re;
    return mkheap(KV_REGEXP, &r->h);
}

struct krl_regexp *
kval_get_regexp(const kval *v)
{
    if (v->kind != KV_REGEXP)
        return NULL;
    return ((struct kv_regexp *)(void *)v->u.p)->re;
}

/* ---- arrays ---- */

kval
kval_array(void)
{
    return kval_array_sized(0);
}

kval
kval_array_sized(size_t capacity)
{
    struct kv_array *a = block_new(KV_ARRAY);
    if (capacity > 0) {
        a->items = vec_resize(NULL, 0, capacity, 0, sizeof *a->items);
        a->cap = capacity;
    }
    return mkheap(KV_ARRAY, &a->h);
}

size_t
kval_array_len(const kval *v)
{
    return v->kind == KV_ARRAY ? ARR(v)->len : 0;
}

const kval *
kval_array_get(const kval *v, size_t i)
{
    if (v->kind != KV_ARRAY || i >= ARR(v)->len)
        return NULL;
    return &ARR(v)->items[i];
}

/* Make ARR's block private to the caller (copy-on-write). */
static struct kv_array *
arr_own(kval *arr)
{
    struct kv_array *a, *c;
    size_t i;

    if (arr->kind != KV_ARRAY)
        misuse("array operation on a non-array");
    a = ARR(arr);
    if (a->h.refcnt == 1)
        return a;
    *arr = kval_array_sized(a->len);
    c = ARR(arr);
    for (i = 0; i < a->len; i++)
        c->items[i] = kval_copy(&a->items[i]);
    c->len = a->len;
    a->h.refcnt--;              /* it was shared, so it stays alive */
    return c;
}

kval
kval_array_append(kval arr, kval item)
{
    struct kv_array *a = arr_own(&arr);
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        a->items = vec_resize(a->items, a->cap, cap, a->len,
                              sizeof *a->items);
        a->cap = cap;
    }
    a->items[a->len++] = item;
    return arr;
}

kval
kval_array_set(kval arr, size_t i, kval item)
{
    struct kv_array *a = arr_own(&arr);
    if (i >= a->len)
        misuse("kval_array_set index out of range");
    kval_free(a->items[i]);
    a->items[i] = item;
    return arr;
}

kval
kval_array_slice(const kval *arr, size_t start, size_t end)
{
    size_t len = kval_array_len(arr), i;
    kval out;

    if (end > len)
        end = len;
    if (start > end)
        start = end;
    out = kval_array_sized(end - start);
    for (i = start; i < end; i++)
        ARR(&out)->items[i - start] = kval_copy(&ARR(arr)->items[i]);
    ARR(&out)->len = end - start;
    return out;
}

/* ---- maps ---- */

/* Is KEY a canonical array index ("0", "42"; not "01", "-1", 2^32-1)? */
static bool
intlike(const char *s, size_t len, uint32_t *out)
{
    uint64_t n = 0;
    size_t i;

    if (len == 0 || len > 10 || (len > 1 && s[0] == '0'))
        return false;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if (n >= 4294967295u)
        return false;
    if (out)
        *out = (uint32_t)n;
    return true;
}

kval
kval_map(void)
{
    struct kv_map *m = block_new(KV_MAP);
    return mkheap(KV_MAP, &m->h);
}

size_t
kval_map_len(const kval *v)
{
    return v->kind == KV_MAP ? MAP(v)->len : 0;
}

static void
index_rebuild(struct kv_map *m)
{
    size_t cap, i;

    free(m->index);
    m->index = NULL;
    m->index_cap = 0;
    if (m->len <= MAP_INDEX_MIN)
        return;
    cap = 16;
    while (cap < m->len * 2)
        cap *= 2;
    m->index = xcalloc(cap, sizeof *m->index);
    m->index_cap = cap;
    for (i = 0; i < m->len; i++) {
        size_t j = m->ents[i].hash & (cap - 1);
        while (m->index[j] != 0)
            j = (j + 1) & (cap - 1);
        m->index[j] = i + 1;
    }
}

/* Entry index of KEY, or -1. */
static long
map_find(const struct kv_map *m, const char *key, size_t len, uint32_t h)
{
    size_t i;

    if (m->index_cap == 0) {
        for (i = 0; i < m->len; i++) {
            const struct kv_string *k = STR(&m->ents[i].key);
            if (m->ents[i].hash == h && k->len == len &&
                memcmp(k->s, key, len) == 0)
                return (long)i;
        }
        return -1;
    }
    i = h & (m->index_cap - 1);
    while (m->index[i] != 0) {
        const struct kv_entry *e = &m->ents[m->index[i] - 1];
        const struct kv_string *k = STR(&e->key);
        if (e->hash == h && k->len == len && memcmp(k->s, key, len) == 0)
            return (long)(m->index[i] - 1);
        i = (i + 1) & (m->index_cap - 1);
    }
    return -1;
}

const kval *
kval_map_get(const kval *map, const char *key, size_t len)
{
    long i;
    if (map->kind != KV_MAP)
        return NULL;
    i = map_find(MAP(map), key, len, hash_bytes(key, len));
    return i < 0 ? NULL : &MAP(map)->ents[i].val;
}

const kval *
kval_map_get_str(const kval *map, const char *key)
{
    return kval_map_get(map, key, strlen(key));
}

bool
kval_map_has(const kval *map, const kval *key)
{
    if (key->kind != KV_STRING)
        return false;
    return kval_map_get(map, STR(key)->s, STR(key)->len) != NULL;
}

static struct kv_map *
map_own(kval *map)
{
    struct kv_map *m, *c;
    size_t i;

    if (map->kind != KV_MAP)
        misuse("map operation on a non-map");
    m = MAP(map);
    if (m->h.refcnt == 1)
        return m;
    *map = kval_map();
    c = MAP(map);
    c->ents = vec_resize(NULL, 0, m->len ? m->len : 1, 0, sizeof *c->ents);
    c->cap = m->len ? m->len : 1;
    for (i = 0; i < m->len; i++) {
        c->ents[i].key = kval_copy(&m->ents[i].key);
        c->ents[i].val = kval_copy(&m->ents[i].val);
        c->ents[i].hash = m->ents[i].hash;
    }
    c->len = m->len;
    c->n_intkeys = m->n_intkeys;
    index_rebuild(c);
    m->h.refcnt--;
    return c;
}

kval
kval_map_put(kval map, kval key, kval val)
{
    struct kv_map *m;
    struct kv_string *k;
    uint32_t h;
    long i;

    if (key.kind != KV_STRING)
        misuse("kval_map_put with a non-string key");
    m = map_own(&map);
    k = STR(&key);
    h = kval_str_hash(&key);
    i = map_find(m, k->s, k->len, h);
    if (i >= 0) {
        kval_free(m->ents[i].val);
        m->ents[i].val = val;
        kval_free(key);
        return map;
    }
    if (m->len == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4;
        m->ents = vec_resize(m->ents, m->cap, cap, m->len, sizeof *m->ents);
        m->cap = cap;
    }
    m->ents[m->len].key = key;
    m->ents[m->len].val = val;
    m->ents[m->len].hash = h;
    m->len++;
    if (intlike(k->s, k->len, NULL))
        m->n_intkeys++;
    if (m->len > MAP_INDEX_MIN && m->len * 2 > m->index_cap) {
        index_rebuild(m);
    } else if (m->index_cap != 0) {
        size_t j = h & (m->index_cap - 1);
        while (m->index[j] != 0)
            j = (j + 1) & (m->index_cap - 1);
        m->index[j] = m->len;
    }
    return map;
}

kval
kval_map_put_str(kval map, const char *key, kval val)
{
    return kval_map_put(map, kval_cstr(key), val);
}

kval
kval_map_delete(kval map, const char *key, size_t len)
{
    struct kv_map *m;
    long i;

    if (map.kind != KV_MAP)
        misuse("kval_map_delete on a non-map");
    if (map_find(MAP(&map), key, len, hash_bytes(key, len)) < 0)
        return map;
    m = map_own(&map);
    i = map_find(m, key, len, hash_bytes(key, len));
    if (intlike(key, len, NULL))
        m->n_intkeys--;
    kval_free(m->ents[i].key);
    kval_free(m->ents[i].val);
    memmove(&m->ents[i], &m->ents[i + 1],
            (m->len - (size_t)i - 1) * sizeof *m->ents);
    m->len--;
    index_rebuild(m);
    return map;
}

struct order_key {
    uint32_t num;
    size_t idx;
};

static int
cmp_order_key(const void *a, const void *b)
{
    const struct order_key *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

void
kval_map_iter_init(struct kval_map_iter *it, const kval *map)
{
    const struct kv_map *m;
    struct order_key *ints;
    size_t i, n = 0, k = 0;

    it->map = map;
    it->pos = 0;
    it->order = NULL;
    it->n = kval_map_len(map);
    if (map->kind != KV_MAP || MAP(map)->n_intkeys == 0)
        return;
    m = MAP(map);
    ints = xreallocarray(NULL, m->n_intkeys, sizeof *ints);
    it->order = xreallocarray(NULL, m->len, sizeof *it->order);
    for (i = 0; i < m->len; i++) {
        const struct kv_string *ks = STR(&m->ents[i].key);
        uint32_t num;
        if (intlike(ks->s, ks->len, &num)) {
            ints[n].num = num;
            ints[n].idx = i;
            n++;
        }
    }
    qsort(ints, n, sizeof *ints, cmp_order_key);
    for (i = 0; i < n; i++)
        it->order[k++] = ints[i].idx;
    for (i = 0; i < m->len; i++) {
        const struct kv_string *ks = STR(&m->ents[i].key);
        if (!intlike(ks->s, ks->len, NULL))
            it->order[k++] = i;
    }
    free(ints);
}

bool
kval_map_iter_next(struct kval_map_iter *it, const kval **key,
                   const kval **val)
{
    const struct kv_entry *e;
    if (it->pos >= it->n)
        return false;
    e = &MAP(it->map)->ents[it->order ? it->order[it->pos] : it->pos];
    it->pos++;
    if (key)
        *key = &e->key;
    if (val)
        *val = &e->val;
    return true;
}

void
kval_map_iter_done(struct kval_map_iter *it)
{
    free(it->order);
    it->order = NULL;
    it->n = 0;
}

/* ---- functions ---- */

kval
kval_func_new(kval_call_fn *call, void *data, kval_data_free_fn *dfree,
              unsigned kinds, const char *name, const char *const *params,
              size_t n_params)
{
    struct kv_func *f = block_new(KV_FUNCTION);
    size_t i;

    f->call = call;
    f->data = data;
    f->dfree = dfree;
    f->kinds = kinds;
    f->name = xstrdup(name ? name : "");
    f->n_params = n_params;
    if (n_params > 0) {
        f->params = xreallocarray(NULL, n_params, sizeof *f->params);
        for (i = 0; i < n_params; i++)
            f->params[i] = xstrdup(params[i] ? params[i] : "");
    }
    return mkheap(KV_FUNCTION, &f->h);
}

unsigned
kval_func_kinds(const kval *fn)
{
    return fn->kind == KV_FUNCTION ? FUN(fn)->kinds : 0;
}

const char *
kval_func_name(const kval *fn)
{
    return fn->kind == KV_FUNCTION ? FUN(fn)->name : "";
}

size_t
kval_func_n_params(const kval *fn)
{
    return fn->kind == KV_FUNCTION ? FUN(fn)->n_params : 0;
}

const char *
kval_func_param(const kval *fn, size_t i)
{
    if (fn->kind != KV_FUNCTION || i >= FUN(fn)->n_params)
        return NULL;
    return FUN(fn)->params[i];
}

void *
kval_func_data(const kval *fn)
{
    return fn->kind == KV_FUNCTION ? FUN(fn)->data : NULL;
}

kval
kval_func_call(struct krl_vm *vm, const kval *fn, const kval *args,
               size_t n_args)
{
    if (fn->kind != KV_FUNCTION)
        return kval_error("TypeError: %s is not a function", kval_typeof(fn));
    return FUN(fn)->call(vm, FUN(fn)->data, args, n_args);
}

/* ---- errors ---- */

kval
kval_error(const char *fmt, ...)
{
    struct kv_error *e = block_new(KV_ERROR);
    struct buf b;
    va_list ap;

    buf_init(&b);
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    e->msg = buf_take(&b, NULL);
    return mkheap(KV_ERROR, &e->h);
}

const char *
kval_error_msg(const kval *v)
{
    if (v->kind != KV_ERROR)
        return "";
    return ((struct kv_error *)(void *)v->u.p)->msg;
}

/* ---- reference counting ---- */

kval
kval_copy(const kval *v)
{
    if (is_heap(v->kind))
        v->u.p->refcnt++;
    return *v;
}

size_t
kval_refcount(const kval *v)
{
    return is_heap(v->kind) ? v->u.p->refcnt : 0;
}

/* Explicit work stack, so freeing deep nesting uses no C stack. */
struct free_stack {
    kval *items;
    size_t n, cap;
    kval small[16];
};

static void
push_release(struct free_stack *st, const kval *v)
{
    if (!is_heap(v->kind))
        return;
    if (v->u.p->refcnt > 1) {
        v->u.p->refcnt--;       /* still shared: nothing to walk */
        return;
    }
    if (st->n == st->cap) {
        size_t cap = st->cap * 2;
        if (st->items == st->small) {
            st->items = xreallocarray(NULL, cap, sizeof *st->items);
            memcpy(st->items, st->small, st->n * sizeof *st->items);
        } else {
            st->items = xreallocarray(st->items, cap, sizeof *st->items);
        }
        st->cap = cap;
    }
    st->items[st->n++] = *v;
}

static void
destroy(struct free_stack *st, kval v)
{
    size_t i;

    switch ((enum kval_kind)v.kind) {
    case KV_STRING:
        if (STR(&v)->s != STR(&v)->small)
            free(STR(&v)->s);
        free(STR(&v)->marks);
        break;
    case KV_REGEXP:
        regexp_unref(((struct kv_regexp *)(void *)v.u.p)->re);
        break;
    case KV_ARRAY:
        for (i = 0; i < ARR(&v)->len; i++)
            push_release(st, &ARR(&v)->items[i]);
        vec_free(ARR(&v)->items, ARR(&v)->cap, sizeof *ARR(&v)->items);
        break;
    case KV_MAP:
        for (i = 0; i < MAP(&v)->len; i++) {
            push_release(st, &MAP(&v)->ents[i].key);
            push_release(st, &MAP(&v)->ents[i].val);
        }
        vec_free(MAP(&v)->ents, MAP(&v)->cap, sizeof *MAP(&v)->ents);
        free(MAP(&v)->index);
        break;
    case KV_FUNCTION:
        if (FUN(&v)->dfree)
            FUN(&v)->dfree(FUN(&v)->data);
        free(FUN(&v)->name);
        for (i = 0; i < FUN(&v)->n_params; i++)
            free(FUN(&v)->params[i]);
        free(FUN(&v)->params);
        break;
    case KV_ERROR:
        free(((struct kv_error *)(void *)v.u.p)->msg);
        break;
    case KV_NULL:
    case KV_BOOL:
    case KV_NUMBER:
        return;
    }
    mem_small_free(v.u.p, block_size(v.kind));
}

void
kval_free(kval v)
{
    struct free_stack st;

    if (!is_heap(v.kind))
        return;
    if (--v.u.p->refcnt > 0)
        return;
    st.items = st.small;
    st.n = 0;
    st.cap = sizeof st.small / sizeof st.small[0];
    destroy(&st, v);
    while (st.n > 0)
        destroy(&st, st.items[--st.n]);
    if (st.items != st.small)
        free(st.items);
}

/* ---- inspection ---- */

bool
kval_get_bool(const kval *v)
{
    return v->kind == KV_BOOL && v->u.b;
}

double
kval_get_number(const kval *v)
{
    return v->kind == KV_NUMBER ? v->u.num : 0.0;
}

const char *
kval_typeof(const kval *v)
{
    switch ((enum kval_kind)v->kind) {
    case KV_NULL:
        return "Null";
    case KV_BOOL:
        return "Boolean";
    case KV_NUMBER:
        /* the reference's isNumber is _.isFinite: Infinity is a JSObject */
        return isfinite(v->u.num) ? "Number" : "JSObject";
    case KV_STRING:
        /* not the reference's Hex quirk (a string like "0x1F" reporting
           Hex, krl-language.md §12): a string is a String */
        return "String";
    case KV_REGEXP:
        return "RegExp";
    case KV_ARRAY:
        return "Array";
    case KV_MAP:
        return "Map";
    case KV_FUNCTION:
        switch (FUN(v)->kinds & (KV_FN_FUNCTION | KV_FN_ACTION)) {
        case KV_FN_FUNCTION | KV_FN_ACTION:
            return "ActionFunction";
        case KV_FN_ACTION:
            return "Action";
        default:
            return "Function";
        }
    case KV_ERROR:
        return "Error";
    }
    return "JSObject";
}

bool
kval_truthy(const kval *v)
{
    switch ((enum kval_kind)v->kind) {
    case KV_NULL:
        return false;
    case KV_BOOL:
        return v->u.b;
    case KV_NUMBER:
        return v->u.num != 0.0;
    case KV_STRING:
        return STR(v)->len > 0;
    case KV_ERROR:
        return false;
    case KV_REGEXP:
    case KV_ARRAY:
    case KV_MAP:
    case KV_FUNCTION:
        return true;
    }
    return false;
}

/* ---- equality ---- */

struct eq_pair {
    const kval *a, *b;
};

static bool
shallow_equal(const kval *a, const kval *b)
{
    if (a->kind != b->kind)
        return false;
    switch ((enum kval_kind)a->kind) {
    case KV_NULL:
        return true;
    case KV_BOOL:
        return a->u.b == b->u.b;
    case KV_NUMBER:
        return a->u.num == b->u.num;
    case KV_STRING:
        return kval_str_eq(a, b);
    case KV_REGEXP: {
        const struct krl_regexp *x = kval_get_regexp(a);
        const struct krl_regexp *y = kval_get_regexp(b);
        return x == y ||
               (strcmp(regexp_source(x), regexp_source(y)) == 0 &&
                regexp_global(x) == regexp_global(y) &&
                regexp_ignore_case(x) == regexp_ignore_case(y));
    }
    case KV_ARRAY:
        return ARR(a)->len == ARR(b)->len;
    case KV_MAP:
        return MAP(a)->len == MAP(b)->len;
    case KV_FUNCTION:
    case KV_ERROR:
        return a->u.p == b->u.p;
    }
    return false;
}

bool
kval_equal(const kval *a, const kval *b)
{
    struct eq_pair small[32], *stack = small, *grow;
    size_t n = 0, cap = 32, i;
    bool eq = true;

    stack[n].a = a;
    stack[n].b = b;
    n++;
    while (eq && n > 0) {
        const kval *x, *y;
        size_t need;
        n--;
        x = stack[n].a;
        y = stack[n].b;
        if (!shallow_equal(x, y)) {
            eq = false;
            break;
        }
        if (x->kind != KV_ARRAY && x->kind != KV_MAP)
            continue;
        if (x->u.p == y->u.p)
            continue;
        need = n + (x->kind == KV_ARRAY ? ARR(x)->len : MAP(x)->len);
        if (need > cap) {
            while (cap < need)
                cap *= 2;
            grow = xreallocarray(stack == small ? NULL : stack, cap,
                                 sizeof *stack);
            if (stack == small)
                memcpy(grow, small, n * sizeof *stack);
            stack = grow;
        }
        if (x->kind == KV_ARRAY) {
            for (i = 0; i < ARR(x)->len; i++) {
                stack[n].a = &ARR(x)->items[i];
                stack[n].b = &ARR(y)->items[i];
                n++;
            }
        } else {
            for (i = 0; i < MAP(x)->len; i++) {
                const struct kv_entry *e = &MAP(x)->ents[i];
                long j = map_find(MAP(y), STR(&e->key)->s, STR(&e->key)->len,
                                  e->hash);
                if (j < 0) {
                    eq = false;
                    break;
                }
                stack[n].a = &e->val;
                stack[n].b = &MAP(y)->ents[j].val;
                n++;
            }
        }
    }
    if (stack != small)
        free(stack);
    return eq;
}
