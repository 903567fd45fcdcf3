/*
 * sky_parse.c - request paths, query strings, forms, bodies and headers
 * of the Sky APIs; see sky_parse.h.
 *
 * The query string follows the qs library that Express uses ("extended"
 * parsing), step for step: the pairs are decoded and repeated names
 * combined into lists (parseValues), each name is split into bracket
 * segments and turned into a small object (parseKeys, parseObject), and
 * the objects are merged in order (utils.merge), which is where arrays
 * with holes, arrays turned into maps and the odd `map[string] = true`
 * come from.  To keep those JavaScript semantics exact, the merge works on
 * a tree of its own (struct qn) and turns into kvals at the end (holes
 * dropped, as qs's compact() does).  One difference: qs keeps a malformed
 * escape as it is, we answer 400.
 */
#include "sky_parse.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "picomail/json.h"
#include "picomail/mem.h"

/* ---- percent-decoding ---- */

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* utf8_ok - whether S is well-formed UTF-8 (no surrogates, no overlong
 * forms), as decodeURIComponent demands of the bytes it decodes */
static bool
utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

int
sky_pct_decode(const char *s, size_t len, bool plus, struct buf *out)
{
    size_t start = out->len;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            buf_add(out, s + run, i - run);
            buf_addc(out, (char)(hi << 4 | lo));
            i += 2;
            run = i + 1;
        } else if (plus && s[i] == '+') {
            buf_add(out, s + run, i - run);
            buf_addc(out, ' ');
            run = i + 1;
        }
    }
    buf_add(out, s + run, len - run);
    return utf8_ok((const unsigned char *)out->data + start, out->len - start)
               ? 0
               : -1;
}

/* decoded - the decoded text of S as a kval string, or an error */
static kval
decoded(const char *s, size_t len, const char *what)
{
    struct buf b;
    buf_init(&b);
    if (sky_pct_decode(s, len, true, &b) < 0) {
        buf_release(&b);
        return kval_error("Error: malformed percent-encoding in the %s",
                          what);
    }
    size_t n;
    char *p = buf_take(&b, &n);
    return kval_str_take(p, n);
}

/* ---- the qs tree ---- */

/* The names of Object.prototype's properties: qs (allowPrototypes false,
 * as in Express) drops a pair whose name has one as a segment. */
static const char *const proto_names[] = {
    "__defineGetter__", "__defineSetter__", "__lookupGetter__",
    "__lookupSetter__", "__proto__", "constructor", "hasOwnProperty",
    "isPrototypeOf", "propertyIsEnumerable", "toLocaleString", "toString",
    "valueOf"
};

static bool
is_proto_name(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof proto_names / sizeof proto_names[0]; i++)
        if (strlen(proto_names[i]) == len &&
            memcmp(proto_names[i], s, len) == 0)
            return true;
    return false;
}

enum qn_kind { QN_STR, QN_TRUE, QN_ARR, QN_OBJ };

struct qn;
struct qn_ent {
    char *key;                  /* QN_OBJ: the member's name */
    size_t idx;                 /* QN_ARR: the index */
    struct qn *v;
};

/* A JavaScript value as qs handles it: a string, true, an array (which
 * may have holes) or a plain object. */
struct qn {
    enum qn_kind kind;
    kval s;                     /* QN_STR */
    struct qn_ent *ents;        /* QN_ARR (by index, ascending) and QN_OBJ
                                   (in insertion order) */
    size_t n, cap;
    size_t alen;                /* QN_ARR: length (highest index + 1) */
};

static struct qn *
qn_new(enum qn_kind kind)
{
    struct qn *q = xcalloc(1, sizeof *q);
    q->kind = kind;
    q->s = kval_null();
    return q;
}

static struct qn *
qn_str(kval s)
{
    struct qn *q = qn_new(QN_STR);
    q->s = s;
    return q;
}

static void
qn_free(struct qn *q)
{
    if (q == NULL)
        return;
    kval_free(q->s);
    for (size_t i = 0; i < q->n; i++) {
        free(q->ents[i].key);
        qn_free(q->ents[i].v);
    }
    free(q->ents);
    free(q);
}

static bool
qn_is_obj(const struct qn *q)
{
    return q != NULL && (q->kind == QN_ARR || q->kind == QN_OBJ);
}

/* arr_find - the entry of index I of array A, or NULL (a hole) */
static struct qn_ent *
arr_find(struct qn *a, size_t i)
{
    for (size_t k = 0; k < a->n; k++)
        if (a->ents[k].idx == i)
            return &a->ents[k];
    return NULL;
}

static void
ents_grow(struct qn *q)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 4;
        q->ents = xreallocarray(q->ents, q->cap, sizeof *q->ents);
    }
}

/* arr_set - a[i] = v (consumed), keeping the entries sorted by index */
static void
arr_set(struct qn *a, size_t i, struct qn *v)
{
    struct qn_ent *e = arr_find(a, i);
    if (e != NULL) {
        qn_free(e->v);
        e->v = v;
        return;
    }
    ents_grow(a);
    size_t at = a->n;
    while (at > 0 && a->ents[at - 1].idx > i)
        at--;
    memmove(&a->ents[at + 1], &a->ents[at], (a->n - at) * sizeof *a->ents);
    a->ents[at] = (struct qn_ent){NULL, i, v};
    a->n++;
    if (i + 1 > a->alen)
        a->alen = i + 1;
}

static void
arr_push(struct qn *a, struct qn *v)
{
    arr_set(a, a->alen, v);
}

static struct qn_ent *
obj_find(struct qn *o, const char *key)
{
    for (size_t k = 0; k < o->n; k++)
        if (strcmp(o->ents[k].key, key) == 0)
            return &o->ents[k];
    return NULL;
}

/* obj_set - o[key] = v (consumed); an existing member keeps its place */
static void
obj_set(struct qn *o, const char *key, struct qn *v)
{
    struct qn_ent *e = obj_find(o, key);
    if (e != NULL) {
        qn_free(e->v);
        e->v = v;
        return;
    }
    ents_grow(o);
    o->ents[o->n++] = (struct qn_ent){xstrdup(key), 0, v};
}

/* index_key - the decimal text of I */
static void
index_key(size_t i, char *out, size_t outlen)
{
    snprintf(out, outlen, "%zu", i);
}

/* arr_to_obj - qs's arrayToObject: the same members under "0", "1"... */
static void
arr_to_obj(struct qn *a)
{
    a->kind = QN_OBJ;
    for (size_t k = 0; k < a->n; k++) {
        char key[32];
        index_key(a->ents[k].idx, key, sizeof key);
        a->ents[k].key = xstrdup(key);
    }
    a->alen = 0;
}

/* concat_into - [].concat(target, source) style: append SOURCE (consumed;
 * an array's elements one by one, holes skipped) to array A */
static void
concat_into(struct qn *a, struct qn *source)
{
    if (source->kind != QN_ARR) {
        arr_push(a, source);
        return;
    }
    for (size_t k = 0; k < source->n; k++) {
        arr_push(a, source->ents[k].v);
        source->ents[k].v = NULL;
    }
    qn_free(source);
}

/* merge - qs's utils.merge(target, source): both consumed, the result
 * returned */
static struct qn *
merge(struct qn *target, struct qn *source)
{
    if (source == NULL ||
        (source->kind == QN_STR && kval_str_bytes(&source->s) == 0)) {
        qn_free(source);        /* a falsy source: "" */
        return target;
    }
    if (!qn_is_obj(source)) {
        if (target->kind == QN_ARR) {
            arr_push(target, source);
        } else if (target->kind == QN_OBJ) {
            /* target[source] = true */
            const char *key =
                source->kind == QN_STR ? kval_str_ptr(&source->s) : "true";
            if (!is_proto_name(key, strlen(key)))
                obj_set(target, key, qn_new(QN_TRUE));
            qn_free(source);
        } else {
            struct qn *a = qn_new(QN_ARR);
            arr_push(a, target);
            arr_push(a, source);
            return a;
        }
        return target;
    }
    if (!qn_is_obj(target)) {
        struct qn *a = qn_new(QN_ARR);
        arr_push(a, target);
        concat_into(a, source);
        return a;
    }
    if (target->kind == QN_ARR && source->kind == QN_ARR) {
        for (size_t k = 0; k < source->n; k++) {
            struct qn *item = source->ents[k].v;
            source->ents[k].v = NULL;
            struct qn_ent *t = arr_find(target, source->ents[k].idx);
            if (t == NULL)
                arr_set(target, source->ents[k].idx, item);
            else if (qn_is_obj(t->v) && qn_is_obj(item))
                t->v = merge(t->v, item);
            else
                arr_push(target, item);
        }
        qn_free(source);
        return target;
    }
    if (target->kind == QN_ARR)
        arr_to_obj(target);
    for (size_t k = 0; k < source->n; k++) {
        char ibuf[32];
        const char *key = source->ents[k].key;
        if (source->kind == QN_ARR) {
            index_key(source->ents[k].idx, ibuf, sizeof ibuf);
            key = ibuf;
        }
        struct qn *v = source->ents[k].v;
        source->ents[k].v = NULL;
        struct qn_ent *t = obj_find(target, key);
        if (t != NULL)
            t->v = merge(t->v, v);
        else
            obj_set(target, key, v);
    }
    qn_free(source);
    return target;
}

/* array_index - I when ROOT is "[I]" with I a canonical decimal up to
 * the array limit; else -1 */
static long
array_index(const char *root, size_t len)
{
    if (len < 3 || root[0] != '[' || root[len - 1] != ']')
        return -1;
    const char *d = root + 1;
    size_t n = len - 2;
    if (n > 3 || (n > 1 && d[0] == '0'))
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)d[i]))
            return -1;
        v = v * 10 + (d[i] - '0');
    }
    return v <= SKY_QS_ARRAY_LIMIT ? v : -1;
}

/* next_bracket - the next "[...]" group (no brackets inside) of KEY at or
 * after FROM: its offset and length, or false */
static bool
next_bracket(const char *key, size_t len, size_t from, size_t *at,
             size_t *glen)
{
    for (size_t i = from; i < len; i++) {
        if (key[i] != '[')
            continue;
        size_t j = i + 1;
        while (j < len && key[j] != '[' && key[j] != ']')
            j++;
        if (j < len && key[j] == ']') {
            *at = i;
            *glen = j - i + 1;
            return true;
        }
    }
    return false;
}

struct seg {
    const char *p;
    size_t len;
    bool wrap;                  /* the rest past the depth: "[" p "]" */
};

/* parse_keys - qs's parseKeys + parseObject: the object that KEY = LEAF
 * (consumed) makes; NULL for an empty key */
static struct qn *
parse_keys(const char *key, size_t len, struct qn *leaf)
{
    struct seg segs[SKY_QS_DEPTH + 2];
    size_t n = 0, at, glen;
    bool found = next_bracket(key, len, 0, &at, &glen);
    size_t parent = found ? at : len;
    if (len == 0) {
        qn_free(leaf);
        return NULL;
    }
    if (parent > 0) {
        if (is_proto_name(key, parent))
            goto drop;
        segs[n++] = (struct seg){key, parent, false};
    }
    size_t depth = 0;
    while (found && depth < SKY_QS_DEPTH) {
        if (is_proto_name(key + at + 1, glen - 2))
            goto drop;
        segs[n++] = (struct seg){key + at, glen, false};
        depth++;
        found = next_bracket(key, len, at + glen, &at, &glen);
    }
    if (found)
        segs[n++] = (struct seg){key + at, len - at, true};
    for (size_t i = n; i-- > 0;) {
        const struct seg *s = &segs[i];
        struct qn *obj;
        if (!s->wrap && s->len == 2 && memcmp(s->p, "[]", 2) == 0) {
            obj = qn_new(QN_ARR);
            concat_into(obj, leaf);
        } else {
            long idx = s->wrap ? -1 : array_index(s->p, s->len);
            if (idx >= 0) {
                obj = qn_new(QN_ARR);
                arr_set(obj, (size_t)idx, leaf);
            } else {
                /* cleanRoot: without the brackets around it */
                char *name;
                if (s->wrap)
                    name = xmemdup(s->p, s->len);
                else if (s->len >= 2 && s->p[0] == '[' &&
                         s->p[s->len - 1] == ']')
                    name = xmemdup(s->p + 1, s->len - 2);
                else
                    name = xmemdup(s->p, s->len);
                obj = qn_new(QN_OBJ);
                obj_set(obj, name, leaf);
                free(name);
            }
        }
        leaf = obj;
    }
    return leaf;
drop:
    qn_free(leaf);
    return NULL;
}

/* qn_to_kval - the tree as KRL values; holes are dropped (compact) */
static kval
qn_to_kval(const struct qn *q)
{
    switch (q->kind) {
    case QN_STR:
        return kval_copy(&q->s);
    case QN_TRUE:
        return kval_bool(true);
    case QN_ARR: {
        kval a = kval_array_sized(q->n);
        for (size_t k = 0; k < q->n; k++)
            a = kval_array_append(a, qn_to_kval(q->ents[k].v));
        return a;
    }
    case QN_OBJ:
        break;
    }
    kval m = kval_map();
    for (size_t k = 0; k < q->n; k++)
        m = kval_map_put(m, kval_cstr(q->ents[k].key),
                         qn_to_kval(q->ents[k].v));
    return m;
}

/* One decoded name=value pair; repeated names collect their values. */
struct pair {
    kval key;
    struct qn *val;             /* QN_STR, or QN_ARR of them */
};

struct pairs {
    struct pair *v;
    size_t n, cap;
};

static void
pairs_release(struct pairs *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        kval_free(ps->v[i].key);
        qn_free(ps->v[i].val);
    }
    free(ps->v);
}

/* pairs_add - KEY = VAL (both consumed); a name seen before turns into a
 * list (utils.combine) */
static void
pairs_add(struct pairs *ps, kval key, kval val)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (!kval_str_eq(&ps->v[i].key, &key))
            continue;
        struct qn *old = ps->v[i].val;
        if (old->kind != QN_ARR) {
            struct qn *a = qn_new(QN_ARR);
            arr_push(a, old);
            ps->v[i].val = old = a;
        }
        arr_push(old, qn_str(val));
        kval_free(key);
        return;
    }
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = xreallocarray(ps->v, ps->cap, sizeof *ps->v);
    }
    ps->v[ps->n++] = (struct pair){key, qn_str(val)};
}

/* split_pairs - the &-separated pairs of S, decoded; QS: split at "]="
 * first, as qs does (so "a[b=c]=d" names "a[b=c]").  0, or an error. */
static kval
split_pairs(const char *s, size_t len, bool qs, const char *what,
            struct pairs *ps)
{
    size_t count = 0;
    size_t i = 0;
    while (i <= len && count < SKY_MAX_PARAMS) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - s) : len;
        const char *part = s + i;
        size_t plen = end - i;
        count++;
        if (plen > 0) {
            const char *eq = NULL;
            if (qs)
                for (size_t k = 0; k + 1 < plen; k++)
                    if (part[k] == ']' && part[k + 1] == '=') {
                        eq = part + k + 1;
                        break;
                    }
            if (eq == NULL)
                eq = memchr(part, '=', plen);
            size_t klen = eq != NULL ? (size_t)(eq - part) : plen;
            kval key = decoded(part, klen, what);
            if (kval_is_error(&key))
                return key;
            kval val = eq != NULL ? decoded(eq + 1, plen - klen - 1, what)
                                  : kval_cstr("");
            if (kval_is_error(&val)) {
                kval_free(key);
                return val;
            }
            if (kval_str_bytes(&key) == 0 && qs) {
                kval_free(key);         /* qs skips an empty name */
                kval_free(val);
            } else {
                pairs_add(ps, key, val);
            }
        }
        if (amp == NULL)
            break;
        i = end + 1;
    }
    return kval_null();
}

kval
sky_parse_qs(const char *s, size_t len)
{
    struct pairs ps = {NULL, 0, 0};
    kval err = split_pairs(s, len, true, "query string", &ps);
    if (kval_is_error(&err)) {
        pairs_release(&ps);
        return err;
    }
    struct qn *obj = qn_new(QN_OBJ);
    for (size_t i = 0; i < ps.n; i++) {
        struct qn *o = parse_keys(kval_str_ptr(&ps.v[i].key),
                                  kval_str_bytes(&ps.v[i].key),
                                  ps.v[i].val);
        ps.v[i].val = NULL;
        obj = merge(obj, o);
    }
    pairs_release(&ps);
    kval r = qn_to_kval(obj);
    qn_free(obj);
    return r;
}

kval
sky_parse_form(const char *s, size_t len)
{
    struct pairs ps = {NULL, 0, 0};
    kval err = split_pairs(s, len, false, "form body", &ps);
    if (kval_is_error(&err)) {
        pairs_release(&ps);
        return err;
    }
    kval m = kval_map();
    for (size_t i = 0; i < ps.n; i++)
        m = kval_map_put(m, kval_copy(&ps.v[i].key), qn_to_kval(ps.v[i].val));
    pairs_release(&ps);
    return m;
}

/* ---- paths ---- */

__attribute__((format(printf, 3, 4))) static void
path_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* split_ext - NAME.EXT: cut NAME at its first '.', as the reference
 * splits the function part; EXT picks the format */
static void
split_ext(char *name, enum sky_format *f)
{
    char *dot = strchr(name, '.');
    *f = SKY_F_JSON;
    if (dot == NULL)
        return;
    *dot = '\0';
    if (strncmp(dot + 1, "txt", 3) == 0 && (dot[4] == '\0' || dot[4] == '.'))
        *f = SKY_F_TXT;
    else if (strncmp(dot + 1, "html", 4) == 0 &&
             (dot[5] == '\0' || dot[5] == '.'))
        *f = SKY_F_HTML;
}

int
sky_path_parse(const char *path, size_t len, struct sky_path *p, char *err,
               size_t errlen)
{
    static const char *const shapes[] = {
        [SKY_R_SKY_EVENT] = "/sky/event/ECI/EID/DOMAIN/TYPE",
        [SKY_R_SKY_CLOUD] = "/sky/cloud/ECI/RID/FUNCTION",
        [SKY_R_EVENT] = "/c/ECI/event/DOMAIN/TYPE[/query/RID/NAME]",
        [SKY_R_EVENT_WAIT] = "/c/ECI/event-wait/DOMAIN/TYPE",
        [SKY_R_QUERY] = "/c/ECI/query/RID/NAME",
    };
    memset(p, 0, sizeof *p);
    if (len == 0 || path[0] != '/') {
        snprintf(err, errlen, "Error: malformed path");
        return 400;
    }
    /* the raw segments; a trailing '/' is allowed, as the reference's
       routes end in \/?$ */
    const char *raw[SKY_MAX_SEGS];
    size_t rawlen[SKY_MAX_SEGS];
    size_t n = 0;
    size_t i = 1;
    if (len > 1 && path[len - 1] == '/')
        len--;
    while (i <= len) {
        const char *slash = memchr(path + i, '/', len - i);
        size_t end = slash != NULL ? (size_t)(slash - path) : len;
        if (n == SKY_MAX_SEGS) {
            n++;
            break;
        }
        raw[n] = path + i;
        rawlen[n++] = end - i;
        i = end + 1;
    }
    /* the route, from the literal segments */
    enum sky_route r = SKY_R_NONE;
    size_t want = 0;
#define RAW_IS(k, lit)                                                     \
    (n > (k) && rawlen[k] == sizeof(lit) - 1 &&                            \
     memcmp(raw[k], (lit), sizeof(lit) - 1) == 0)
    if (RAW_IS(0, "metrics") && n == 1) {
        p->route = SKY_R_METRICS;
        return 0;
    } else if (RAW_IS(0, "sky") && RAW_IS(1, "event")) {
        r = SKY_R_SKY_EVENT;
        want = 6;
    } else if (RAW_IS(0, "sky") && RAW_IS(1, "cloud")) {
        r = SKY_R_SKY_CLOUD;
        want = 5;
    } else if (RAW_IS(0, "c") && RAW_IS(2, "event")) {
        r = n > 5 ? SKY_R_EVENT_QUERY : SKY_R_EVENT;
        want = n > 5 ? 8 : 5;
        if (n > 5 && !RAW_IS(5, "query"))
            want = 0;
    } else if (RAW_IS(0, "c") && RAW_IS(2, "event-wait")) {
        r = SKY_R_EVENT_WAIT;
        want = 5;
    } else if (RAW_IS(0, "c") && RAW_IS(2, "query")) {
        r = SKY_R_QUERY;
        want = 5;
    }
#undef RAW_IS
    if (r == SKY_R_NONE) {
        snprintf(err, errlen, "Error: no such route");
        return 404;
    }
    const char *shape = shapes[r == SKY_R_EVENT_QUERY ? SKY_R_EVENT : r];
    if (n != want) {
        path_error(err, errlen, "Error: malformed path: expected %s", shape);
        return 400;
    }
    for (size_t k = 0; k < n; k++) {
        struct buf b;
        buf_init(&b);
        int rc = sky_pct_decode(raw[k], rawlen[k], false, &b);
        if (rc < 0 || b.len != strlen(b.data) || strchr(b.data, '/')) {
            buf_release(&b);
            snprintf(err, errlen, rc < 0
                                      ? "Error: malformed percent-encoding "
                                        "in the path"
                                      : "Error: a path segment may not "
                                        "hold '/' or NUL");
            return 400;
        }
        p->segs[p->n_segs++] = buf_take(&b, NULL);
        if (p->segs[k][0] == '\0') {
            path_error(err, errlen,
                       "Error: malformed path: empty segment in %s", shape);
            return 400;
        }
    }
    p->route = r;
    switch (r) {
    case SKY_R_SKY_EVENT:
        p->eci = p->segs[2];
        p->eid = p->segs[3];
        p->domain = p->segs[4];
        p->type = p->segs[5];
        break;
    case SKY_R_SKY_CLOUD:
        p->eci = p->segs[2];
        p->rid = p->segs[3];
        p->name = p->segs[4];
        break;
    case SKY_R_EVENT_QUERY:
        p->rid = p->segs[6];
        p->name = p->segs[7];
        /* fall through */
    case SKY_R_EVENT:
    case SKY_R_EVENT_WAIT:
        p->eci = p->segs[1];
        p->domain = p->segs[3];
        p->type = p->segs[4];
        break;
    case SKY_R_QUERY:
        p->eci = p->segs[1];
        p->rid = p->segs[3];
        p->name = p->segs[4];
        break;
    case SKY_R_NONE:
    case SKY_R_METRICS:
        break;
    }
    if (p->name != NULL) {
        split_ext(p->name, &p->format);
        if (p->name[0] == '\0') {
            path_error(err, errlen,
                       "Error: malformed path: no function name in %s",
                       shape);
            return 400;
        }
    }
    return 0;
}

void
sky_path_release(struct sky_path *p)
{
    for (size_t i = 0; i < p->n_segs; i++)
        free(p->segs[i]);
    memset(p, 0, sizeof *p);
}

/* ---- bodies, headers, attributes ---- */

/* media_type_is - whether the media type of CT (before any ';',
 * case-insensitive, trimmed) is TYPE */
static bool
media_type_is(const char *ct, const char *type)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == strlen(type) && strncasecmp(ct, type, n) == 0;
}

kval
sky_body_attrs(const char *content_type, const char *body, size_t len)
{
    if (content_type == NULL || len == 0)
        return kval_map();
    if (media_type_is(content_type, "application/json") ||
        media_type_is(content_type, "application/octet-stream") ||
        media_type_is(content_type, "application/ssi-agent-wire")) {
        kval v = json_parse(body, len);
        if (kval_is_error(&v)) {
            kval e = kval_error("Error: the body is not valid JSON: %s",
                                kval_error_msg(&v));
            kval_free(v);
            return e;
        }
        if (kval_kind(&v) != KV_MAP) {
            kval_free(v);
            return kval_error("Error: the JSON body must be an object");
        }
        return v;
    }
    if (media_type_is(content_type, "application/x-www-form-urlencoded"))
        return sky_parse_form(body, len);
    return kval_map();
}

/* Headers Node.js keeps once (the first), from its _addHeaderLine. */
static const char *const once_headers[] = {
    "age", "authorization", "content-length", "content-type", "etag",
    "expires", "from", "host", "if-modified-since", "if-unmodified-since",
    "last-modified", "location", "max-forwards", "proxy-authorization",
    "referer", "retry-after", "server", "user-agent"
};

kval
sky_headers_put(kval headers, const char *name, const char *value)
{
    char lname[128];
    size_t n = strlen(name);
    if (n >= sizeof lname)
        n = sizeof lname - 1;
    for (size_t i = 0; i < n; i++)
        lname[i] = (char)tolower((unsigned char)name[i]);
    lname[n] = '\0';
    const kval *old = kval_map_get_str(&headers, lname);
    if (strcmp(lname, "set-cookie") == 0) {
        kval list = old != NULL ? kval_copy(old) : kval_array();
        list = kval_array_append(list, kval_cstr(value));
        return kval_map_put_str(headers, lname, list);
    }
    if (old == NULL)
        return kval_map_put_str(headers, lname, kval_cstr(value));
    for (size_t i = 0; i < sizeof once_headers / sizeof once_headers[0]; i++)
        if (strcmp(lname, once_headers[i]) == 0)
            return headers;
    kval joined = kval_str_fmt("%s%s%s", kval_str_ptr(old),
                               strcmp(lname, "cookie") == 0 ? "; " : ", ",
                               value);
    return kval_map_put_str(headers, lname, joined);
}

kval
sky_merge_attrs(kval query, kval body, kval headers)
{
    struct kval_map_iter it;
    const kval *k, *v;
    kval_map_iter_init(&it, &body);
    while (kval_map_iter_next(&it, &k, &v))
        query = kval_map_put(query, kval_copy(k), kval_copy(v));
    kval_map_iter_done(&it);
    kval_free(body);
    return kval_map_put_str(query, "_headers", headers);
}
