/*
 * select.c - event expressions (`select when ...`) compiled into state
 * machines, and one step of such a machine (select.h).
 *
 * The construction follows the reference select-when library (0.1.9:
 * StateMachine.ts, expressions.ts) step for step - the same clones, joins,
 * optimisation and final ordering of transitions - because the order in
 * which transitions are tried shows through settings, aggregators and the
 * reset done by a failing primitive.  The per-pico state is a KRL map
 *     {"states": [ids], "setting": {..}, "aggregates": {..}, "starttime": ms}
 * where state 0 is the reference's "start", 1 its "end" and k + 2 its "sk".
 * An empty map stands for the reference's undefined state (after a reset).
 */
#include "picomail/select.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"
#include "picomail/ops.h"
#include "picomail/regexp.h"

/* Bounds on the machine built for one rule: `and`/`any` expand into every
 * permutation of their operands and count/repeat into N copies. */
#define SEL_MAX_TRANSITIONS 8192
#define SEL_MAX_COUNT 1000

#define ST_START 0
#define ST_END 1

/* ------------------------------------------------------------------ */
/* The compiled machine                                                */

enum on_kind {
    ON_EVENT,                   /* an atom */
    ON_NOT,                     /* left */
    ON_OR                       /* left, right (short-circuit) */
};

/* A transition's condition; interned, so equal conditions share an id. */
struct on_node {
    int kind;
    int atom;
    int left;
    int right;
};

/* An event matcher: a primitive without attribute matches, setting, where
 * or aggregator matches on domain and type alone and is shared by every
 * primitive with the same domain and type (the reference keys it
 * "domain:type"); any other primitive is its own atom. */
struct sel_atom {
    const char *domain;
    const char *type;
    const struct ast_ee *prim;      /* NULL for a plain domain:type */
    const kval **res;               /* prim's attribute regexps */
    enum ast_agg agg;               /* from the enclosing count/repeat */
    const struct ast_str *agg_vars;
    size_t n_agg_vars;
};

struct sel_trans {
    int on;
    int to;
};

struct sel_state {
    const struct sel_trans *t;      /* tried in this order */
    size_t n;
};

struct sel_pair {
    const char *domain;
    const char *type;
};

struct sel_machine {
    const struct sel_atom *atoms;
    const struct on_node *ons;
    const struct sel_state *states;
    size_t n_states;
    const struct sel_pair *salient;
    size_t n_salient;
    const char *const *vars;        /* setting and aggregator names */
    size_t n_vars;
    int lone;                       /* the atom of a machine that is just
                                       start --atom--> end (one primitive
                                       without aggregator), or -1 */
};

/* ------------------------------------------------------------------ */
/* Building: the reference's StateMachine                              */

struct trans {
    int from;
    int on;
    int to;
};

struct sm {
    int start;
    int end;
    struct trans *t;
    size_t n;
    size_t cap;
};

struct builder {
    struct arena *a;
    const char *file;
    struct krl_diags *diags;
    bool failed;
    bool too_big;
    int next_state;                 /* the reference's genState() */
    struct sel_atom *atoms;
    size_t n_atoms, cap_atoms;
    struct on_node *ons;
    size_t n_ons, cap_ons;
    const char **vars;
    size_t n_vars, cap_vars;
    int *map;                       /* clone(): old state -> new, or -1 */
    size_t cap_map;
};

static void
sm_init(struct builder *b, struct sm *s)
{
    s->start = b->next_state++;
    s->end = b->next_state++;
    s->t = NULL;
    s->n = 0;
    s->cap = 0;
}

static void
sm_release(struct sm *s)
{
    free(s->t);
    s->t = NULL;
    s->n = s->cap = 0;
}

static void
sm_add(struct builder *b, struct sm *s, int from, int on, int to)
{
    if (s->n >= SEL_MAX_TRANSITIONS) {
        b->too_big = true;
        b->failed = true;
        return;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->t = xreallocarray(s->t, s->cap, sizeof *s->t);
    }
    s->t[s->n].from = from;
    s->t[s->n].on = on;
    s->t[s->n].to = to;
    s->n++;
}

static void
sm_concat(struct builder *b, struct sm *s, const struct sm *other)
{
    for (size_t i = 0; i < other->n && !b->failed; i++)
        sm_add(b, s, other->t[i].from, other->t[i].on, other->t[i].to);
}

/* sm_join - state X becomes state Y */
static void
sm_join(struct sm *s, int x, int y)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->t[i].from == x)
            s->t[i].from = y;
        if (s->t[i].to == x)
            s->t[i].to = y;
    }
}

static int
clone_state(struct builder *b, int old)
{
    if (b->map[old] < 0)
        b->map[old] = b->next_state++;
    return b->map[old];
}

/* sm_clone - a copy of SRC with fresh states */
static void
sm_clone(struct builder *b, const struct sm *src, struct sm *dst)
{
    size_t need = (size_t)b->next_state;

    if (need > b->cap_map) {
        b->map = xreallocarray(b->map, need, sizeof *b->map);
        for (size_t i = b->cap_map; i < need; i++)
            b->map[i] = -1;
        b->cap_map = need;
    }
    sm_init(b, dst);
    b->map[src->start] = dst->start;
    b->map[src->end] = dst->end;
    for (size_t i = 0; i < src->n && !b->failed; i++) {
        int from = clone_state(b, src->t[i].from);
        int to = clone_state(b, src->t[i].to);
        sm_add(b, dst, from, src->t[i].on, to);
    }
    /* old states are below need: reset what this clone touched */
    b->map[src->start] = -1;
    b->map[src->end] = -1;
    for (size_t i = 0; i < src->n; i++) {
        b->map[src->t[i].from] = -1;
        b->map[src->t[i].to] = -1;
    }
}

/* A small open-addressing table from up to three ints to an int. */
struct ihash_ent {
    int k[3];
    int v;
    bool used;
};

struct ihash {
    struct ihash_ent *e;
    size_t cap;
};

static void
ihash_init(struct ihash *h, size_t n)
{
    h->cap = 16;
    while (h->cap < 2 * n + 1)
        h->cap *= 2;
    h->e = xcalloc(h->cap, sizeof *h->e);
}

/* ihash_get - the value stored under the key, storing V when absent */
static int
ihash_get(struct ihash *h, int k0, int k1, int k2, int v)
{
    uint32_t x = (uint32_t)k0 * 2654435761u;
    x ^= (uint32_t)k1 * 2246822519u + (x << 6) + (x >> 2);
    x ^= (uint32_t)k2 * 3266489917u + (x << 6) + (x >> 2);
    size_t i = x & (h->cap - 1);

    while (h->e[i].used) {
        if (h->e[i].k[0] == k0 && h->e[i].k[1] == k1 && h->e[i].k[2] == k2)
            return h->e[i].v;
        i = (i + 1) & (h->cap - 1);
    }
    h->e[i].used = true;
    h->e[i].k[0] = k0;
    h->e[i].k[1] = k1;
    h->e[i].k[2] = k2;
    h->e[i].v = v;
    return v;
}

static void
ihash_release(struct ihash *h)
{
    free(h->e);
    h->e = NULL;
}

struct ipair {
    int a;
    int b;
};

static int
cmp_ipair(const void *x, const void *y)
{
    const struct ipair *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return 0;
}

/* inputs - the distinct (from, on) pairs leading into STATE, sorted */
static size_t
inputs(const struct sm *s, int state, struct ipair *out)
{
    size_t n = 0, k = 0;

    for (size_t i = 0; i < s->n; i++) {
        if (s->t[i].to == state) {
            out[n].a = s->t[i].from;
            out[n].b = s->t[i].on;
            n++;
        }
    }
    qsort(out, n, sizeof *out, cmp_ipair);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || cmp_ipair(&out[k - 1], &out[i]) != 0)
            out[k++] = out[i];
    return k;
}

/* same_inputs - the reference's getStateInputSignature(x) == (y) */
static bool
same_inputs(const struct sm *s, int x, int y, struct ipair *bx,
            struct ipair *by)
{
    size_t nx = inputs(s, x, bx);
    size_t ny = inputs(s, y, by);
    return nx == ny && (nx == 0 || memcmp(bx, by, nx * sizeof *bx) == 0);
}

struct rank {
    int on_first;
    int from_first;
    int index;
};

static int
cmp_rank(const void *x, const void *y)
{
    const struct rank *p = x, *q = y;
    if (p->on_first != q->on_first)
        return p->on_first < q->on_first ? -1 : 1;
    if (p->from_first != q->from_first)
        return p->from_first < q->from_first ? -1 : 1;
    return p->index < q->index ? -1 : p->index > q->index;
}

/*
 * sm_optimize - the reference's optimize(): join the targets of equal
 * (from, on) pairs when nothing else leads into them, until nothing
 * changes; then drop duplicate transitions, regrouping them by condition,
 * then source, then target, each in order of first appearance (the
 * iteration order of the reference's nested objects).
 */
static void
sm_optimize(struct builder *b, struct sm *s)
{
    if (b->failed)
        return;
    struct ipair *bx = xcalloc(s->n + 1, sizeof *bx);
    struct ipair *by = xcalloc(s->n + 1, sizeof *by);
    struct ipair *to_join = xcalloc(s->n + 1, sizeof *to_join);

    for (;;) {
        struct ihash h;
        size_t n_join = 0;
        bool joined = false;

        ihash_init(&h, s->n);
        for (size_t i = 0; i < s->n; i++) {
            int first = ihash_get(&h, s->t[i].from, s->t[i].on, 0,
                                  s->t[i].to);
            if (first != s->t[i].to) {
                to_join[n_join].a = s->t[i].to;
                to_join[n_join].b = first;
                n_join++;
            }
        }
        ihash_release(&h);
        for (size_t j = 0; j < n_join; j++) {
            int x = to_join[j].a, y = to_join[j].b;
            if (!same_inputs(s, x, y, bx, by))
                continue;
            if ((x == s->start && y == s->end) ||
                (x == s->end && y == s->start))
                continue;           /* start and end stay apart */
            sm_join(s, x, y);
            joined = true;
        }
        if (!joined)
            break;
    }
    free(bx);
    free(by);
    free(to_join);

    struct ihash on_first, from_first, dup;
    struct rank *keep = xcalloc(s->n + 1, sizeof *keep);
    size_t n_keep = 0;

    ihash_init(&on_first, s->n);
    ihash_init(&from_first, s->n);
    ihash_init(&dup, s->n);
    for (size_t i = 0; i < s->n; i++) {
        int idx = (int)i;
        int of = ihash_get(&on_first, s->t[i].on, 0, 0, idx);
        int ff = ihash_get(&from_first, s->t[i].on, s->t[i].from, 0, idx);
        if (ihash_get(&dup, s->t[i].on, s->t[i].from, s->t[i].to, idx) !=
            idx)
            continue;
        keep[n_keep].on_first = of;
        keep[n_keep].from_first = ff;
        keep[n_keep].index = idx;
        n_keep++;
    }
    ihash_release(&on_first);
    ihash_release(&from_first);
    ihash_release(&dup);
    qsort(keep, n_keep, sizeof *keep, cmp_rank);
    struct trans *t = xcalloc(n_keep + 1, sizeof *t);
    for (size_t i = 0; i < n_keep; i++)
        t[i] = s->t[keep[i].index];
    free(keep);
    free(s->t);
    s->t = t;
    s->n = n_keep;
    s->cap = n_keep + 1;
}

/* intern - the id of the condition (KIND, ATOM, LEFT, RIGHT) */
static int
intern(struct builder *b, int kind, int atom, int left, int right)
{
    for (size_t i = 0; i < b->n_ons; i++) {
        const struct on_node *o = &b->ons[i];
        if (o->kind == kind && o->atom == atom && o->left == left &&
            o->right == right)
            return (int)i;
    }
    if (b->n_ons == b->cap_ons) {
        b->cap_ons = b->cap_ons ? 2 * b->cap_ons : 16;
        b->ons = xreallocarray(b->ons, b->cap_ons, sizeof *b->ons);
    }
    b->ons[b->n_ons].kind = kind;
    b->ons[b->n_ons].atom = atom;
    b->ons[b->n_ons].left = left;
    b->ons[b->n_ons].right = right;
    return (int)b->n_ons++;
}

static void
add_var(struct builder *b, const struct ast_str *name)
{
    for (size_t i = 0; i < b->n_vars; i++)
        if (strcmp(b->vars[i], name->s) == 0)
            return;
    if (b->n_vars == b->cap_vars) {
        b->cap_vars = b->cap_vars ? 2 * b->cap_vars : 8;
        b->vars = xreallocarray(b->vars, b->cap_vars, sizeof *b->vars);
    }
    b->vars[b->n_vars++] = name->s;
}

static void
free_kval(void *p)
{
    kval_free(*(kval *)p);
}

/* atom_for - the atom of primitive PRIM (GROUP: its count/repeat) */
static int
atom_for(struct builder *b, const struct ast_ee *prim,
         const struct ast_ee *group)
{
    bool has_agg = group != NULL && group->agg != AST_AGG_NONE;
    bool plain = prim->n_matches == 0 && prim->n_setting == 0 &&
                 prim->where == NULL && !has_agg;

    if (plain) {
        for (size_t i = 0; i < b->n_atoms; i++) {
            const struct sel_atom *x = &b->atoms[i];
            if (x->prim == NULL && strcmp(x->domain, prim->domain.s) == 0 &&
                strcmp(x->type, prim->type.s) == 0)
                return (int)i;
        }
    }
    if (b->n_atoms == b->cap_atoms) {
        b->cap_atoms = b->cap_atoms ? 2 * b->cap_atoms : 8;
        b->atoms = xreallocarray(b->atoms, b->cap_atoms, sizeof *b->atoms);
    }
    struct sel_atom *x = &b->atoms[b->n_atoms];
    memset(x, 0, sizeof *x);
    x->domain = prim->domain.s;
    x->type = prim->type.s;
    if (!plain) {
        x->prim = prim;
        x->res = arena_allocarray(b->a, prim->n_matches + 1, sizeof *x->res);
        for (size_t i = 0; i < prim->n_matches; i++) {
            const struct ast_expr *re = prim->matches[i].regexp;
            if (re->konst != NULL) {
                x->res[i] = re->konst;
                continue;
            }
            kval *k = arena_alloc(b->a, sizeof *k);
            *k = kval_regexp(re->u.regexp.source.s, re->u.regexp.source.len,
                             re->u.regexp.flags);
            arena_cleanup_add(b->a, free_kval, k);
            if (kval_is_error(k)) {
                krl_diags_add(b->diags, b->file, re->pos.line, re->pos.col,
                              "Invalid regular expression: %s",
                              kval_error_msg(k));
                b->failed = true;
            }
            x->res[i] = k;
        }
        if (has_agg) {
            x->agg = group->agg;
            x->agg_vars = group->agg_vars;
            x->n_agg_vars = group->n_agg_vars;
        }
    }
    return (int)b->n_atoms++;
}

/* count_of - N of any/count/repeat, or -1 with a diagnostic */
static long
count_of(struct builder *b, const struct ast_ee *ee, long max,
         const char *what)
{
    const struct ast_expr *n = ee->n;

    if (n == NULL || n->kind != AST_NUMBER || !isfinite(n->u.number) ||
        n->u.number != floor(n->u.number)) {
        krl_diags_add(b->diags, b->file, ee->pos.line, ee->pos.col,
                      "`%s` expects an integer", what);
        b->failed = true;
        return -1;
    }
    if (n->u.number < 0 || n->u.number > (double)max) {
        krl_diags_add(b->diags, b->file, ee->pos.line, ee->pos.col,
                      "`%s N` expects N from 0 to %ld", what, max);
        b->failed = true;
        return -1;
    }
    return (long)n->u.number;
}

/* chain - SUBS[ORDER[0]] then SUBS[ORDER[1]] ... from S's start to its
 * end (cloned unless CLONE is false); MERGE, when not NULL, gets the
 * start state of every part but the first */
static void
chain(struct builder *b, struct sm *s, struct sm *subs, const int *order,
      size_t len, bool clone, int *merge)
{
    int prev_end = -1;

    for (size_t j = 0; j < len && !b->failed; j++) {
        struct sm copy;
        struct sm *a = &subs[order[j]];
        if (clone) {
            sm_clone(b, a, &copy);
            a = &copy;
        }
        sm_concat(b, s, a);
        if (j == 0)
            sm_join(s, a->start, s->start);
        if (j == len - 1)
            sm_join(s, a->end, s->end);
        if (prev_end >= 0) {
            sm_join(s, prev_end, a->start);
            if (merge != NULL)
                merge[j - 1] = a->start;
        }
        prev_end = a->end;
        if (clone)
            sm_release(&copy);
    }
}

/* permutations - chain every K-permutation of the N machines SUBS, in
 * lexicographic order (the reference's permute() and, for any, the
 * distinct K-prefixes of its permutations) */
static void
permutations(struct builder *b, struct sm *s, struct sm *subs, size_t n,
             size_t k, int *idx, bool *used, size_t depth)
{
    if (depth == k) {
        if (k > 0)
            chain(b, s, subs, idx, k, true, NULL);
        return;
    }
    for (size_t i = 0; i < n && !b->failed; i++) {
        if (used[i])
            continue;
        used[i] = true;
        idx[depth] = (int)i;
        permutations(b, s, subs, n, k, idx, used, depth + 1);
        used[i] = false;
    }
}

/* then_merge - at merge point STATE, anything but what leads on goes back
 * to start: a transition on not(c1) or not(c2) ... */
static void
then_merge(struct builder *b, struct sm *s, const struct trans *snap,
           size_t n_snap, int state)
{
    int *nots = xcalloc(n_snap + 1, sizeof *nots);
    size_t n = 0;

    for (size_t i = 0; i < n_snap; i++) {
        if (snap[i].from != state)
            continue;
        int c = intern(b, ON_NOT, -1, snap[i].on, -1);
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = nots[j] == c;
        if (!seen)
            nots[n++] = c;
    }
    if (n > 0) {
        /* wrapInOr: or(n0, or(n1, ... n_last)) */
        int c = nots[n - 1];
        for (size_t j = n - 1; j-- > 0;)
            c = intern(b, ON_OR, -1, nots[j], c);
        sm_add(b, s, state, c, s->start);
    }
    free(nots);
}

static void build(struct builder *b, const struct ast_ee *ee,
                  const struct ast_ee *group, struct sm *out);

static void
build_items(struct builder *b, const struct ast_ee *ee, struct sm *subs)
{
    for (size_t i = 0; i < ee->n_items; i++) {
        if (b->failed)
            sm_init(b, &subs[i]);
        else
            build(b, ee->items[i], NULL, &subs[i]);
    }
}

static void
release_items(struct sm *subs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sm_release(&subs[i]);
    free(subs);
}

/* build - the reference's machine for EE (GROUP: the count/repeat whose
 * primitive EE is) */
static void
build(struct builder *b, const struct ast_ee *ee, const struct ast_ee *group,
      struct sm *s)
{
    size_t n = ee->n_items;
    struct sm *subs;
    int *idx;
    bool *used;
    long num;

    sm_init(b, s);
    if (b->failed)
        return;
    if (ee->kind == AST_EE_PRIM) {
        for (size_t i = 0; i < ee->n_setting; i++)
            add_var(b, &ee->setting[i]);
        if (group != NULL && group->agg != AST_AGG_NONE)
            for (size_t i = 0; i < group->n_agg_vars; i++)
                add_var(b, &group->agg_vars[i]);
        int atom = atom_for(b, ee, group);
        sm_add(b, s, s->start, intern(b, ON_EVENT, atom, -1, -1), s->end);
        return;
    }
    if (n == 0) {
        krl_diags_add(b->diags, b->file, ee->pos.line, ee->pos.col,
                      "Empty event expression");
        b->failed = true;
        return;
    }
    subs = xcalloc(n, sizeof *subs);
    idx = xcalloc(n + 1, sizeof *idx);
    used = xcalloc(n + 1, sizeof *used);
    switch (ee->kind) {
    case AST_EE_PRIM:
        break;
    case AST_EE_OR:
        build_items(b, ee, subs);
        for (size_t i = 0; i < n && !b->failed; i++) {
            sm_concat(b, s, &subs[i]);
            sm_join(s, subs[i].start, s->start);
            sm_join(s, subs[i].end, s->end);
        }
        break;
    case AST_EE_AND:
        build_items(b, ee, subs);
        permutations(b, s, subs, n, n, idx, used, 0);
        break;
    case AST_EE_BEFORE:
    case AST_EE_AFTER:
        build_items(b, ee, subs);
        for (size_t i = 0; i < n; i++)
            idx[i] = (int)(ee->kind == AST_EE_BEFORE ? i : n - 1 - i);
        chain(b, s, subs, idx, n, true, NULL);
        break;
    case AST_EE_THEN: {
        int *merge = xcalloc(n, sizeof *merge);
        build_items(b, ee, subs);
        for (size_t i = 0; i < n; i++)
            idx[i] = (int)i;
        chain(b, s, subs, idx, n, false, merge);
        if (!b->failed) {
            struct trans *snap = xcalloc(s->n + 1, sizeof *snap);
            size_t n_snap = s->n;
            memcpy(snap, s->t, n_snap * sizeof *snap);
            for (size_t i = 0; i + 1 < n && !b->failed; i++)
                then_merge(b, s, snap, n_snap, merge[i]);
            free(snap);
        }
        free(merge);
        break;
    }
    case AST_EE_BETWEEN:
    case AST_EE_NOT_BETWEEN:
        if (n != 3) {
            krl_diags_add(b->diags, b->file, ee->pos.line, ee->pos.col,
                          "`between` expects three event expressions");
            b->failed = true;
            break;
        }
        build_items(b, ee, subs);
        if (b->failed)
            break;
        for (size_t i = 0; i < 3; i++)
            sm_concat(b, s, &subs[i]);
        sm_join(s, subs[1].start, s->start);
        if (ee->kind == AST_EE_BETWEEN) {
            /* b, then a, then c */
            sm_join(s, subs[1].end, subs[0].start);
            sm_join(s, subs[0].end, subs[2].start);
            sm_join(s, subs[2].end, s->end);
        } else {
            /* b then c; an a in between goes back to start */
            sm_join(s, subs[1].end, subs[2].start);
            sm_join(s, subs[2].end, s->end);
            sm_join(s, subs[0].start, subs[2].start);
            sm_join(s, subs[0].end, s->start);
        }
        break;
    case AST_EE_ANY:
        num = count_of(b, ee, (long)n - 1, "any");
        if (num < 0)
            break;
        build_items(b, ee, subs);
        permutations(b, s, subs, n, (size_t)num, idx, used, 0);
        break;
    case AST_EE_COUNT:
    case AST_EE_REPEAT: {
        const char *what = ee->kind == AST_EE_COUNT ? "count" : "repeat";
        num = count_of(b, ee, SEL_MAX_COUNT, what);
        if (num < 0)
            break;
        if (num == 0) {
            /* the reference builds a machine that never starts */
            krl_diags_add(b->diags, b->file, ee->pos.line, ee->pos.col,
                          "`%s N` expects N of at least 1", what);
            b->failed = true;
            break;
        }
        if (ee->agg != AST_AGG_NONE && ee->items[0]->kind != AST_EE_PRIM) {
            krl_diags_add(b->diags, b->file, ee->pos.line, ee->pos.col,
                          "An aggregator needs a single event primitive");
            b->failed = true;
            break;
        }
        build(b, ee->items[0], ee, &subs[0]);
        int *zeros = xcalloc((size_t)num, sizeof *zeros);
        chain(b, s, subs, zeros, (size_t)num, true, NULL);
        free(zeros);
        if (ee->kind == AST_EE_REPEAT && !b->failed) {
            /* once at the end, every further occurrence matches again */
            sm_concat(b, s, &subs[0]);
            sm_join(s, subs[0].end, s->end);
            sm_join(s, subs[0].start, s->end);
        }
        break;
    }
    }
    release_items(subs, n);
    free(idx);
    free(used);
    sm_optimize(b, s);
}

/* ---- from the construction to the arena ---- */

static void
collect_atoms(const struct on_node *ons, int on, bool *used)
{
    const struct on_node *o = &ons[on];
    if (o->kind == ON_EVENT) {
        used[o->atom] = true;
        return;
    }
    collect_atoms(ons, o->left, used);
    if (o->kind != ON_NOT)
        collect_atoms(ons, o->right, used);
}

/* finish - the reference's compile(): states renamed in order of first
 * appearance (start 0, end 1, the others from 2) and each state's
 * transitions in order, sources ordered start, s0, s1, ..., end */
static struct sel_machine *
finish(struct builder *b, const struct sm *s)
{
    struct arena *a = b->a;
    struct sel_machine *m = arena_alloc(a, sizeof *m);
    int *name = xcalloc((size_t)b->next_state + 1, sizeof *name);
    int n_states = 2;

    for (int i = 0; i < b->next_state; i++)
        name[i] = -1;
    name[s->start] = ST_START;
    name[s->end] = ST_END;
    for (size_t i = 0; i < s->n; i++) {
        if (name[s->t[i].from] < 0)
            name[s->t[i].from] = n_states++;
        if (name[s->t[i].to] < 0)
            name[s->t[i].to] = n_states++;
    }

    struct sel_state *states = arena_allocarray(a, (size_t)n_states,
                                                sizeof *states);
    size_t *count = xcalloc((size_t)n_states, sizeof *count);
    for (size_t i = 0; i < s->n; i++)
        count[name[s->t[i].from]]++;
    struct sel_trans **fill = xcalloc((size_t)n_states, sizeof *fill);
    for (int st = 0; st < n_states; st++) {
        fill[st] = arena_allocarray(a, count[st] + 1, sizeof **fill);
        states[st].t = fill[st];
        states[st].n = 0;
    }
    for (size_t i = 0; i < s->n; i++) {
        int from = name[s->t[i].from];
        struct sel_trans *t = &fill[from][states[from].n++];
        t->on = s->t[i].on;
        t->to = name[s->t[i].to];
    }
    free(fill);
    free(count);
    free(name);
    m->states = states;
    m->n_states = (size_t)n_states;

    struct sel_atom *atoms = arena_allocarray(a, b->n_atoms + 1,
                                              sizeof *atoms);
    if (b->n_atoms > 0)
        memcpy(atoms, b->atoms, b->n_atoms * sizeof *atoms);
    m->atoms = atoms;
    struct on_node *ons = arena_allocarray(a, b->n_ons + 1, sizeof *ons);
    if (b->n_ons > 0)
        memcpy(ons, b->ons, b->n_ons * sizeof *ons);
    m->ons = ons;

    /* salient: the domain:type of every atom in a transition */
    bool *used = xcalloc(b->n_atoms + 1, sizeof *used);
    for (size_t i = 0; i < s->n; i++)
        collect_atoms(ons, s->t[i].on, used);
    struct sel_pair *sal = arena_allocarray(a, b->n_atoms + 1, sizeof *sal);
    size_t n_sal = 0;
    for (size_t i = 0; i < b->n_atoms; i++) {
        bool seen = false;
        if (!used[i])
            continue;
        for (size_t j = 0; j < n_sal && !seen; j++)
            seen = strcmp(sal[j].domain, atoms[i].domain) == 0 &&
                   strcmp(sal[j].type, atoms[i].type) == 0;
        if (!seen) {
            sal[n_sal].domain = atoms[i].domain;
            sal[n_sal].type = atoms[i].type;
            n_sal++;
        }
    }
    free(used);
    m->salient = sal;
    m->n_salient = n_sal;

    const char **vars = arena_allocarray(a, b->n_vars + 1, sizeof *vars);
    for (size_t i = 0; i < b->n_vars; i++)
        vars[i] = b->vars[i];
    m->vars = vars;
    m->n_vars = b->n_vars;

    m->lone = -1;
    if (n_states == 2 && states[ST_START].n == 1 && states[ST_END].n == 0 &&
        states[ST_START].t[0].to == ST_END) {
        const struct on_node *o = &ons[states[ST_START].t[0].on];
        if (o->kind == ON_EVENT && atoms[o->atom].agg == AST_AGG_NONE)
            m->lone = o->atom;
    }
    return m;
}

struct sel_machine *
sel_compile(struct arena *a, const struct ast_rule *rule, const char *file,
            struct krl_diags *diags)
{
    struct builder b;
    struct sm s;
    struct sel_machine *m = NULL;

    if (rule->select_when == NULL) {
        krl_diags_add(diags, file, rule->pos.line, rule->pos.col,
                      "Rule %s has no `select when`", rule->name.s);
        return NULL;
    }
    memset(&b, 0, sizeof b);
    b.a = a;
    b.file = file;
    b.diags = diags;
    build(&b, rule->select_when, NULL, &s);
    if (b.too_big)
        krl_diags_add(diags, file, rule->pos.line, rule->pos.col,
                      "The event expression of rule %s is too large",
                      rule->name.s);
    if (!b.failed)
        m = finish(&b, &s);
    sm_release(&s);
    free(b.atoms);
    free(b.ons);
    free(b.vars);
    free(b.map);
    return m;
}

bool
sel_salient(const struct sel_machine *m, const char *domain, const char *type)
{
    if (domain == NULL || type == NULL)
        return false;
    for (size_t i = 0; i < m->n_salient; i++)
        if (strcmp(m->salient[i].domain, domain) == 0 &&
            strcmp(m->salient[i].type, type) == 0)
            return true;
    return false;
}

size_t
sel_n_salient(const struct sel_machine *m)
{
    return m->n_salient;
}

void
sel_salient_at(const struct sel_machine *m, size_t i, const char **domain,
               const char **type)
{
    *domain = m->salient[i].domain;
    *type = m->salient[i].type;
}

/* ------------------------------------------------------------------ */
/* Running                                                             */

kval
sel_initial(const struct sel_machine *m)
{
    (void)m;
    kval states = kval_array_append(kval_array(), kval_number(ST_START));
    return kval_map_put_str(kval_map(), "states", states);
}

struct run {
    const struct sel_machine *m;
    const struct sel_event *ev;
    sel_where_fn *where;
    void *ctx;
    kval *err;
};

/* An int list for state sets. */
struct ilist {
    int *v;
    size_t n;
    size_t cap;
};

static void
ilist_push(struct ilist *l, int x)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
    }
    l->v[l->n++] = x;
}

static bool
ilist_has(const struct ilist *l, int x)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == x)
            return true;
    return false;
}

static kval
ilist_array(const struct ilist *l)
{
    kval arr = kval_array_sized(l->n);
    for (size_t i = 0; i < l->n; i++)
        arr = kval_array_append(arr, kval_number(l->v[i]));
    return arr;
}

/* state_ids - the integer members of STATE's "states" */
static void
state_ids(const kval *state, struct ilist *out)
{
    const kval *arr = kval_map_get_str(state, "states");

    if (arr == NULL || kval_kind(arr) != KV_ARRAY)
        return;
    for (size_t i = 0; i < kval_array_len(arr); i++) {
        const kval *x = kval_array_get(arr, i);
        double d;
        if (kval_kind(x) != KV_NUMBER)
            continue;
        d = kval_get_number(x);
        if (d >= 0 && d <= 1e9 && d == floor(d))
            ilist_push(out, (int)d);
    }
}

static double
to_float(const kval *v)
{
    double d;
    if (!op_to_number(v, &d) || d != d)
        return 0;
    return d;
}

/*
 * aggregate - the reference's aggregateEvent(): each aggregator variable
 * collects its capture - restarting at the start state, as a sliding window
 * at the end state (repeat) - and its aggregate goes into the setting.
 */
static kval
aggregate(kval state, const struct sel_atom *atom, const kval *captures)
{
    struct ilist ids = {0};
    const kval *old_aggs = kval_map_get_str(&state, "aggregates");
    const kval *old_set = kval_map_get_str(&state, "setting");
    kval aggs = kval_map();
    kval setting = old_set != NULL && kval_kind(old_set) == KV_MAP
                       ? kval_copy(old_set)
                       : kval_map();

    state_ids(&state, &ids);
    bool is_start = ilist_has(&ids, ST_START);
    bool is_end = ilist_has(&ids, ST_END);
    free(ids.v);
    for (size_t i = 0; i < atom->n_agg_vars; i++) {
        const char *name = atom->agg_vars[i].s;
        const kval *old = NULL;
        kval value = i < kval_array_len(captures)
                         ? kval_copy(kval_array_get(captures, i))
                         : kval_null();
        kval vals;

        if (old_aggs != NULL && kval_kind(old_aggs) == KV_MAP)
            old = kval_map_get_str(old_aggs, name);
        if (is_start) {
            vals = kval_array_append(kval_array(), value);
        } else {
            vals = old != NULL && kval_kind(old) == KV_ARRAY ? kval_copy(old)
                                                             : kval_array();
            vals = kval_array_append(vals, value);
            if (is_end) {
                /* a sliding window: one in, the oldest out */
                kval all = vals;
                vals = kval_array_slice(&all, 1, kval_array_len(&all));
                kval_free(all);
            }
        }

        size_t n = kval_array_len(&vals);
        kval result;
        if (atom->agg == AST_AGG_PUSH) {
            result = kval_copy(&vals);
        } else if (n == 0 && atom->agg != AST_AGG_SUM) {
            result = kval_null();   /* _.max([]) is undefined, 0/0 NaN */
        } else {
            double acc = atom->agg == AST_AGG_SUM || atom->agg == AST_AGG_AVG
                             ? 0
                             : to_float(kval_array_get(&vals, 0));
            for (size_t j = 0; j < n; j++) {
                double d = to_float(kval_array_get(&vals, j));
                if (atom->agg == AST_AGG_MAX)
                    acc = d > acc ? d : acc;
                else if (atom->agg == AST_AGG_MIN)
                    acc = d < acc ? d : acc;
                else
                    acc += d;
            }
            if (atom->agg == AST_AGG_AVG)
                acc /= (double)n;
            result = kval_number(acc);
        }
        aggs = kval_map_put_str(aggs, name, vals);
        setting = kval_map_put_str(setting, name, result);
    }
    state = kval_map_put_str(state, "aggregates", aggs);
    return kval_map_put_str(state, "setting", setting);
}

/* reset - a failing primitive forgets everything (the reference's
 * matcher answers no state at all) */
static void
reset(kval *state)
{
    kval_free(*state);
    *state = kval_map();
}

/* match_atom - 1 when the event matches ATOM, 0 when not, -1 on a where
 * error; *STATE is updated as the reference's matcher function does */
static int
match_atom(struct run *r, const struct sel_atom *atom, kval *state)
{
    const struct ast_ee *prim = atom->prim;
    const kval *attrs = r->ev->attrs;
    kval captures, setting;

    if (strcmp(atom->domain, r->ev->domain) != 0 ||
        strcmp(atom->type, r->ev->type) != 0)
        return 0;
    if (prim == NULL)
        return 1;

    captures = kval_array();
    for (size_t i = 0; i < prim->n_matches; i++) {
        const struct ast_str *name = &prim->matches[i].attr;
        const kval *v = NULL;
        struct regexp_match m;
        kval s;

        if (attrs != NULL && kval_kind(attrs) == KV_MAP)
            v = kval_map_get(attrs, name->s, name->len);
        s = v != NULL ? op_to_string(v) : kval_cstr("");
        if (kval_kind(&s) != KV_STRING) {
            kval_free(s);
            s = kval_cstr("");
        }
        const char *subject = kval_str_ptr(&s);
        int rc = regexp_exec(kval_get_regexp(atom->res[i]), subject,
                             kval_str_bytes(&s), 0, &m);
        if (rc <= 0) {
            /* no match (or a matching limit hit): the primitive fails */
            kval_free(s);
            kval_free(captures);
            reset(state);
            return 0;
        }
        for (int g = 1; g < m.n_groups; g++) {
            kval c = m.start[g] < 0
                         ? kval_null()
                         : kval_str(subject + m.start[g],
                                    (size_t)(m.end[g] - m.start[g]));
            captures = kval_array_append(captures, c);
        }
        kval_free(s);
    }

    if (prim->where != NULL) {
        int rc;
        if (r->where == NULL) {
            *r->err = kval_error("Error: no evaluator for `where`");
            rc = -1;
        } else {
            rc = r->where(r->ctx, prim, &captures, r->err);
        }
        if (rc <= 0) {
            kval_free(captures);
            if (rc < 0)
                return -1;
            reset(state);
            return 0;
        }
    }

    if (atom->agg != AST_AGG_NONE)
        *state = aggregate(*state, atom, &captures);

    /* setting variables are kept only by a primitive with attribute
     * matches (without, the reference has nothing to bind) */
    if (prim->n_matches > 0) {
        const kval *old = kval_map_get_str(state, "setting");
        setting = old != NULL && kval_kind(old) == KV_MAP ? kval_copy(old)
                                                           : kval_map();
        for (size_t i = 0; i < prim->n_setting; i++) {
            kval v = i < kval_array_len(&captures)
                         ? kval_copy(kval_array_get(&captures, i))
                         : kval_null();
            setting = kval_map_put_str(setting, prim->setting[i].s, v);
        }
        *state = kval_map_put_str(*state, "setting", setting);
    }
    kval_free(captures);
    return 1;
}

/* eval_on - the reference's evalExpr(): conditions left to right, each
 * primitive seeing the state the previous one left */
static int
eval_on(struct run *r, int on, kval *state)
{
    const struct on_node *o = &r->m->ons[on];
    int x;

    switch (o->kind) {
    case ON_EVENT:
        return match_atom(r, &r->m->atoms[o->atom], state);
    case ON_NOT:
        x = eval_on(r, o->left, state);
        return x < 0 ? x : !x;
    case ON_OR:
        x = eval_on(r, o->left, state);
        return x != 0 ? x : eval_on(r, o->right, state);
    default:
        return 0;
    }
}

/*
 * machine_step - the reference's stmMatcher(): every current state (those
 * without transitions dropped; none means start) tries its transitions in
 * order; reaching end is a match and leaves just end; other targets become
 * the new states; no target leaves the states as they were.
 */
static int
machine_step(struct run *r, kval *state)
{
    const struct sel_machine *m = r->m;
    struct ilist raw = {0}, cur = {0}, next = {0};
    int result = 0;

    state_ids(state, &raw);
    for (size_t i = 0; i < raw.n; i++)
        if ((size_t)raw.v[i] < m->n_states && m->states[raw.v[i]].n > 0)
            ilist_push(&cur, raw.v[i]);
    free(raw.v);
    if (cur.n == 0)
        ilist_push(&cur, ST_START);
    *state = kval_map_put_str(*state, "states", ilist_array(&cur));

    for (size_t i = 0; i < cur.n && result >= 0; i++) {
        const struct sel_state *st = &m->states[cur.v[i]];
        for (size_t j = 0; j < st->n; j++) {
            int x = eval_on(r, st->t[j].on, state);
            if (x < 0) {
                result = -1;
                break;
            }
            if (x == 1 && !ilist_has(&next, st->t[j].to))
                ilist_push(&next, st->t[j].to);
        }
    }
    if (result == 0 && ilist_has(&next, ST_END)) {
        next.n = 0;
        ilist_push(&next, ST_END);
        result = 1;
    }
    if (result >= 0 && next.n > 0)
        *state = kval_map_put_str(*state, "states", ilist_array(&next));
    free(cur.v);
    free(next.v);
    return result;
}

/*
 * within - the reference's within(): the clock is the starttime kept in the
 * state, set from the event whenever "start" is among the kept states; an
 * event more than WITHIN_MS after it resets the machine and its settings.
 * As in the reference, a machine that just matched still holds ["end"], so
 * the clock of the next round keeps running from the previous start.
 */
static void
within(kval *state, int64_t time_ms, int64_t within_ms)
{
    const kval *st = kval_map_get_str(state, "starttime");
    double now = (double)time_ms;
    double start = now;
    struct ilist ids = {0};

    if (st != NULL && kval_kind(st) == KV_NUMBER && kval_get_number(st) != 0)
        start = kval_get_number(st);
    state_ids(state, &ids);
    if (now - start > (double)within_ms) {
        ids.n = 0;
        ilist_push(&ids, ST_START);
        *state = kval_map_delete(*state, "setting", strlen("setting"));
    }
    if (ilist_has(&ids, ST_START))
        start = now;
    *state = kval_map_put_str(*state, "states", ilist_array(&ids));
    *state = kval_map_put_str(*state, "starttime", kval_number(start));
    free(ids.v);
}

bool
sel_is_lone(const struct sel_machine *m)
{
    return m->lone >= 0;
}

/* lone_bindings - what sel_step binds for SETTING (a map or NULL): every
 * variable, null where unset; null when the machine has none (nothing to
 * bind then) */
static kval
lone_bindings(const struct sel_machine *m, const kval *setting)
{
    if (m->n_vars == 0)
        return kval_null();
    kval b = kval_map();
    for (size_t i = 0; i < m->n_vars; i++) {
        const kval *v = NULL;
        if (setting != NULL && kval_kind(setting) == KV_MAP)
            v = kval_map_get_str(setting, m->vars[i]);
        b = kval_map_put_str(b, m->vars[i],
                             v != NULL ? kval_copy(v) : kval_null());
    }
    return b;
}

int
sel_match_lone(const struct sel_machine *m, const struct sel_event *ev,
               sel_where_fn *where, void *ctx, kval *bindings, kval *err)
{
    const struct sel_atom *atom = &m->atoms[m->lone];

    *bindings = kval_null();
    if (ev->domain == NULL || ev->type == NULL ||
        strcmp(atom->domain, ev->domain) != 0 ||
        strcmp(atom->type, ev->type) != 0)
        return 0;
    if (atom->prim == NULL ||
        (atom->prim->n_matches == 0 && atom->prim->where == NULL)) {
        *bindings = lone_bindings(m, NULL);
        return 1;
    }
    /* what machine_step does from the start state: the one transition's
       primitive, its setting left in the state */
    struct run r = {m, ev, where, ctx, err};
    kval state = kval_map();
    int rc = match_atom(&r, atom, &state);
    if (rc == 1)
        *bindings = lone_bindings(m, kval_map_get_str(&state, "setting"));
    kval_free(state);
    return rc;
}

int
sel_step(const struct sel_machine *m, kval state, const struct sel_event *ev,
         int64_t within_ms, sel_where_fn *where, void *ctx, kval *next,
         kval *bindings, kval *err)
{
    struct run r;
    kval before;
    int rc;

    *bindings = kval_null();
    if (!sel_salient(m, ev->domain, ev->type)) {
        *next = state;
        return 0;
    }
    before = kval_copy(&state);
    if (kval_kind(&state) != KV_MAP) {
        kval_free(state);
        state = kval_map();
    }
    if (within_ms >= 0)
        within(&state, ev->time_ms, within_ms);

    r.m = m;
    r.ev = ev;
    r.where = where;
    r.ctx = ctx;
    r.err = err;
    rc = machine_step(&r, &state);
    if (rc < 0) {
        kval_free(state);
        *next = before;
        return -1;
    }
    kval_free(before);
    if (rc == 1) {
        const kval *setting = kval_map_get_str(&state, "setting");
        kval b = kval_map();
        for (size_t i = 0; i < m->n_vars; i++) {
            const kval *v = NULL;
            if (setting != NULL && kval_kind(setting) == KV_MAP)
                v = kval_map_get_str(setting, m->vars[i]);
            b = kval_map_put_str(b, m->vars[i],
                                 v != NULL ? kval_copy(v) : kval_null());
        }
        *bindings = b;
        /* the rule read its settings: they start afresh */
        state = kval_map_delete(state, "setting", strlen("setting"));
    }
    *next = state;
    return rc;
}
