/*
 * resolve.c - compile-time pass over a parsed ruleset or body.
 *
 * Every identifier is bound to a frame slot (counted in frames up from where
 * it is used), to a standard-library builtin, or to an evaluator native.
 * Frames are made at run time for: the ruleset's globals (configure
 * variables first, then the global block), each rule (its setting, foreach,
 * pre, action-setting and postlude variables), each function or defaction
 * call, and a body evaluated by `picomail eval`.
 *
 * Declaration blocks follow the reference compiler: function and defaction
 * declarations are hoisted (visible everywhere in the block), any other
 * declaration is visible only after it, and a name may be declared once per
 * block.  The checks of krl-language.md §4.5 are made here: undefined
 * identifiers, duplicate declarations, parameters and rules, a known
 * function used as an action or a known action called as a function, and
 * shares or provides of names the global block does not define.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/builtin.h"
#include "picomail/mem.h"

#include "eval_internal.h"

struct entry {
    const char *name;
    size_t len;
    int slot;
    int index;          /* position in its declaration block */
    bool hoisted;       /* visible before its declaration */
    unsigned kinds;     /* KV_FN_* when known, 0 when unknown */
};

struct scope {
    struct scope *parent;
    struct entry *v;
    size_t n, cap;
    int n_slots;
    int limit;          /* non-hoisted entries with index >= limit are not
                           yet visible */
};

struct resolver {
    const char *file;
    struct arena *a;
    struct krl_diags *diags;
    int errors;
    struct scope *top;
};

static void resolve_expr(struct resolver *r, struct ast_expr *e);
static void resolve_action_block(struct resolver *r,
                                 struct ast_action_block *b);

static void error_at(struct resolver *r, struct ast_pos pos, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));

static void
error_at(struct resolver *r, struct ast_pos pos, const char *fmt, ...)
{
    struct buf msg;
    buf_init(&msg);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    krl_diags_add(r->diags, r->file, pos.line, pos.col, "%s", msg.data);
    buf_release(&msg);
    r->errors++;
}

static void
scope_push(struct resolver *r, struct scope *s)
{
    memset(s, 0, sizeof *s);
    s->parent = r->top;
    s->limit = INT_MAX;
    r->top = s;
}

static void
scope_pop(struct resolver *r, struct scope *s)
{
    r->top = s->parent;
    free(s->v);
}

static struct entry *
scope_find(struct scope *s, const char *name, size_t len)
{
    for (size_t i = s->n; i-- > 0;)
        if (s->v[i].len == len && memcmp(s->v[i].name, name, len) == 0)
            return &s->v[i];
    return NULL;
}

/* declare - add NAME to the innermost scope; a second declaration in the
 * same block is an error unless ALLOW_AGAIN (setting variables may be
 * named by several primitives of one rule) */
static int
declare(struct resolver *r, struct ast_str name, struct ast_pos pos,
        int index, bool hoisted, unsigned kinds, bool allow_again)
{
    struct scope *s = r->top;
    struct entry *old = scope_find(s, name.s, name.len);
    if (old != NULL) {
        if (!allow_again)
            error_at(r, pos, "Duplicate declaration: %s", name.s);
        old->index = index < old->index ? index : old->index;
        old->hoisted = old->hoisted || hoisted;
        if (old->kinds != kinds)
            old->kinds = 0;
        return old->slot;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = xreallocarray(s->v, s->cap, sizeof *s->v);
    }
    struct entry *e = &s->v[s->n++];
    e->name = name.s;
    e->len = name.len;
    e->slot = s->n_slots++;
    e->index = index;
    e->hoisted = hoisted;
    e->kinds = kinds;
    return e->slot;
}

static unsigned
kinds_of_value(const struct ast_expr *e)
{
    if (e == NULL)
        return 0;
    if (e->kind == AST_FUNCTION)
        return KV_FN_FUNCTION;
    if (e->kind == AST_DEFACTION)
        return KV_FN_ACTION;
    return 0;
}

/* bind_ident - resolve an AST_IDENT; returns the known kinds (0 unknown) */
static unsigned
bind_ident(struct resolver *r, struct ast_expr *e)
{
    struct ast_str name = e->u.ident.name;
    int depth = 0;
    for (struct scope *s = r->top; s != NULL; s = s->parent, depth++) {
        struct entry *en = scope_find(s, name.s, name.len);
        if (en == NULL)
            continue;
        if (!en->hoisted && en->index >= s->limit)
            continue;       /* declared later in a block being resolved */
        e->u.ident.binding = AST_BIND_LOCAL;
        e->u.ident.depth = depth;
        e->u.ident.slot = en->slot;
        return en->kinds;
    }
    unsigned kinds = 0;
    enum eval_native native = eval_native_lookup(name.s, &kinds);
    if (native != EVAL_NATIVE_NONE) {
        e->u.ident.binding = AST_BIND_BUILTIN;
        e->u.ident.target = NULL;
        e->u.ident.slot = (int)native;
        return kinds;
    }
    const struct krl_builtin *b = builtin_lookup(name.s);
    if (b != NULL) {
        e->u.ident.binding = AST_BIND_BUILTIN;
        e->u.ident.target = b;
        return b->kinds;
    }
    error_at(r, e->pos, "Undefined id: %s", name.s);
    return 0;
}

static void
free_konst(void *p)
{
    kval_free(*(kval *)p);
}

/* make_konst - keep V (consumed) in the arena for the life of the tree */
static const kval *
make_konst(struct resolver *r, kval v)
{
    kval *k = arena_alloc(r->a, sizeof *k);
    *k = v;
    arena_cleanup_add(r->a, free_konst, k);
    return k;
}

static void
resolve_args(struct resolver *r, struct ast_arg *args, size_t n)
{
    bool named = false;
    for (size_t i = 0; i < n; i++) {
        if (args[i].name.s != NULL)
            named = true;
        else if (named)
            error_at(r, args[i].pos,
                     "Positional argument after a named one");
        resolve_expr(r, args[i].value);
    }
}

/* resolve_decls - a declaration block in the innermost scope */
static void
resolve_decls(struct resolver *r, struct ast_decl *decls, size_t n)
{
    struct scope *s = r->top;
    int base = (int)s->n;    /* indexes continue after earlier entries */
    for (size_t i = 0; i < n; i++) {
        unsigned k = kinds_of_value(decls[i].value);
        decls[i].slot = declare(r, decls[i].name, decls[i].pos,
                                base + (int)i, k != 0, k, false);
    }
    int saved = s->limit;
    for (size_t i = 0; i < n; i++) {
        if (kinds_of_value(decls[i].value) != 0)
            continue;
        s->limit = base + (int)i;
        resolve_expr(r, decls[i].value);
    }
    s->limit = saved;
    for (size_t i = 0; i < n; i++)
        if (kinds_of_value(decls[i].value) != 0)
            resolve_expr(r, decls[i].value);
}

static void
resolve_params(struct resolver *r, struct ast_param *params, size_t n)
{
    bool had_default = false;
    for (size_t i = 0; i < n; i++) {
        if (scope_find(r->top, params[i].name.s, params[i].name.len))
            error_at(r, params[i].pos, "Duplicate parameter: %s",
                     params[i].name.s);
        declare(r, params[i].name, params[i].pos, -1, true, 0, true);
        if (params[i].dflt != NULL) {
            had_default = true;
            resolve_expr(r, params[i].dflt);
        } else if (had_default) {
            error_at(r, params[i].pos,
                     "Parameter %s without a default after one with a "
                     "default", params[i].name.s);
        }
    }
}

static void
resolve_function(struct resolver *r, struct ast_expr *e)
{
    struct scope s;
    scope_push(r, &s);
    if (e->kind == AST_FUNCTION) {
        resolve_params(r, e->u.function.params, e->u.function.n_params);
        resolve_decls(r, e->u.function.decls, e->u.function.n_decls);
        resolve_expr(r, e->u.function.result);
        e->u.function.frame_size = s.n_slots;
    } else {
        resolve_params(r, e->u.defaction.params, e->u.defaction.n_params);
        resolve_decls(r, e->u.defaction.decls, e->u.defaction.n_decls);
        resolve_action_block(r, e->u.defaction.actions);
        for (size_t i = 0; i < e->u.defaction.n_returns; i++)
            resolve_expr(r, e->u.defaction.returns[i]);
        e->u.defaction.frame_size = s.n_slots;
    }
    scope_pop(r, &s);
}

static void
resolve_expr(struct resolver *r, struct ast_expr *e)
{
    if (e == NULL)
        return;
    switch (e->kind) {
    case AST_NULL:
    case AST_BOOL:
    case AST_NUMBER:
    case AST_DOMAIN_IDENT:
        break;
    case AST_STRING:
        e->konst = make_konst(r, kval_str(e->u.string.s, e->u.string.len));
        break;
    case AST_REGEXP: {
        kval re = kval_regexp(e->u.regexp.source.s, e->u.regexp.source.len,
                              e->u.regexp.flags);
        if (kval_is_error(&re)) {
            error_at(r, e->pos, "Invalid regular expression: %s",
                     kval_error_msg(&re));
            kval_free(re);
            break;
        }
        e->konst = make_konst(r, re);
        break;
    }
    case AST_CHEVRON:
        for (size_t i = 0; i < e->u.chevron.n_parts; i++)
            resolve_expr(r, e->u.chevron.parts[i]);
        break;
    case AST_ARRAY:
        for (size_t i = 0; i < e->u.list.n_items; i++)
            resolve_expr(r, e->u.list.items[i]);
        break;
    case AST_MAP:
        for (size_t i = 0; i < e->u.map.n; i++)
            resolve_expr(r, e->u.map.values[i]);
        break;
    case AST_IDENT:
        bind_ident(r, e);
        break;
    case AST_CALL: {
        struct ast_expr *callee = e->u.call.callee;
        if (callee->kind == AST_IDENT) {
            unsigned k = bind_ident(r, callee);
            if (k == KV_FN_ACTION)
                error_at(r, callee->pos, "Not a function: %s (an Action)",
                         callee->u.ident.name.s);
        } else {
            resolve_expr(r, callee);
        }
        resolve_args(r, e->u.call.args, e->u.call.n_args);
        break;
    }
    case AST_DOT:
        resolve_expr(r, e->u.dot.object);
        break;
    case AST_PATH:
    case AST_INDEX:
        resolve_expr(r, e->u.member.object);
        resolve_expr(r, e->u.member.key);
        break;
    case AST_UNARY:
        resolve_expr(r, e->u.unary.operand);
        break;
    case AST_BINARY:
        resolve_expr(r, e->u.binary.left);
        resolve_expr(r, e->u.binary.right);
        break;
    case AST_TERNARY:
        resolve_expr(r, e->u.ternary.cond);
        resolve_expr(r, e->u.ternary.then);
        resolve_expr(r, e->u.ternary.otherwise);
        break;
    case AST_FUNCTION:
    case AST_DEFACTION:
        resolve_function(r, e);
        break;
    }
}

static void
resolve_action_block(struct resolver *r, struct ast_action_block *b)
{
    if (b == NULL)
        return;
    resolve_expr(r, b->cond);
    resolve_expr(r, b->choose);
    for (size_t i = 0; i < b->n_actions; i++) {
        struct ast_action *act = &b->actions[i];
        if (act->callee->kind == AST_IDENT) {
            unsigned k = bind_ident(r, act->callee);
            if (k == KV_FN_FUNCTION)
                error_at(r, act->callee->pos,
                         "Not an action: %s (a Function)",
                         act->callee->u.ident.name.s);
        } else {
            resolve_expr(r, act->callee);
        }
        resolve_args(r, act->args, act->n_args);
        if (b->kind == AST_BLOCK_CHOOSE && act->label.s == NULL)
            error_at(r, act->pos, "Every action of choose needs a label");
        /* an action's setting variable is seen by the actions after it
           and by the postlude */
        act->setting_slot = -1;
        if (act->n_setting > 0)
            act->setting_slot = declare(r, act->setting[0], act->pos, -1,
                                        true, 0, true);
    }
}

static void
resolve_ee(struct resolver *r, struct ast_ee *ee)
{
    if (ee == NULL)
        return;
    if (ee->kind == AST_EE_PRIM) {
        ee->setting_slots = arena_allocarray(r->a, ee->n_setting + 1,
                                             sizeof(int));
        for (size_t i = 0; i < ee->n_setting; i++)
            ee->setting_slots[i] = declare(r, ee->setting[i], ee->pos, -1,
                                           true, 0, true);
        for (size_t i = 0; i < ee->n_matches; i++)
            resolve_expr(r, ee->matches[i].regexp);
        resolve_expr(r, ee->where);
        return;
    }
    for (size_t i = 0; i < ee->n_items; i++)
        resolve_ee(r, ee->items[i]);
    resolve_expr(r, ee->n);
    ee->agg_slots = arena_allocarray(r->a, ee->n_agg_vars + 1, sizeof(int));
    for (size_t i = 0; i < ee->n_agg_vars; i++)
        ee->agg_slots[i] = declare(r, ee->agg_vars[i], ee->pos, -1, true, 0,
                                   true);
}

static void
resolve_stmts(struct resolver *r, struct ast_stmt *stmts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ast_stmt *st = &stmts[i];
        resolve_expr(r, st->guard_expr);
        st->setting_slot = -1;
        switch (st->kind) {
        case AST_STMT_DECL:
            resolve_expr(r, st->decl.value);
            st->decl.slot = declare(r, st->decl.name, st->decl.pos, -1, true,
                                    kinds_of_value(st->decl.value), true);
            break;
        case AST_STMT_ENT_SET:
        case AST_STMT_CLEAR:
        case AST_STMT_LOG:
        case AST_STMT_ERROR:
        case AST_STMT_LAST:
            resolve_expr(r, st->ent_path);
            resolve_expr(r, st->value);
            break;
        case AST_STMT_RAISE:
        case AST_STMT_SCHEDULE:
            resolve_expr(r, st->event_type);
            resolve_expr(r, st->for_rid);
            resolve_expr(r, st->attributes);
            resolve_expr(r, st->at);
            resolve_expr(r, st->repeat);
            if (st->setting.s != NULL)
                st->setting_slot = declare(r, st->setting, st->pos, -1, true,
                                           0, true);
            break;
        }
    }
}

static void
resolve_rule(struct resolver *r, struct ast_rule *rule)
{
    struct scope s;
    scope_push(r, &s);
    if (!rule->has_select && !rule->inactive)
        error_at(r, rule->pos, "rule %s is missing a `select`",
                 rule->name.s);
    resolve_ee(r, rule->select_when);
    resolve_expr(r, rule->select_where);
    resolve_expr(r, rule->within);
    for (size_t i = 0; i < rule->n_foreach; i++) {
        struct ast_foreach *f = &rule->foreach[i];
        resolve_expr(r, f->collection);
        f->value_slot = declare(r, f->value_var, f->pos, -1, true, 0, true);
        f->key_slot = -1;
        if (f->key_var.s != NULL)
            f->key_slot = declare(r, f->key_var, f->pos, -1, true, 0, true);
    }
    resolve_decls(r, rule->pre, rule->n_pre);
    resolve_action_block(r, rule->actions);
    resolve_stmts(r, rule->postlude.stmts, rule->postlude.n_stmts);
    resolve_stmts(r, rule->postlude.else_stmts, rule->postlude.n_else);
    resolve_stmts(r, rule->postlude.finally_stmts,
                  rule->postlude.n_finally);
    rule->frame_size = s.n_slots;
    scope_pop(r, &s);
}

static bool
is_global(struct scope *globals, struct ast_str name)
{
    return scope_find(globals, name.s, name.len) != NULL;
}

int
resolve_ruleset(struct ast_ruleset *rs, struct arena *a,
                struct krl_diags *diags)
{
    struct resolver r = {rs->file, a, diags, 0, NULL};
    struct scope globals;
    scope_push(&r, &globals);
    struct ast_meta *m = &rs->meta;
    resolve_expr(&r, m->name);
    resolve_expr(&r, m->description);
    resolve_expr(&r, m->author);
    resolve_expr(&r, m->version);
    for (size_t i = 0; i < m->n_uses; i++)
        for (size_t j = 0; j < m->uses[i].n_with; j++)
            resolve_expr(&r, m->uses[i].with[j].value);
    resolve_decls(&r, m->configure, m->n_configure);
    resolve_decls(&r, rs->globals, rs->n_globals);
    rs->global_frame_size = globals.n_slots;

    for (size_t i = 0; i < m->n_provides; i++)
        if (!is_global(&globals, m->provides[i]))
            error_at(&r, m->provides_pos[i],
                     "Trying to provide: %s but it's not defined in global",
                     m->provides[i].s);
    for (size_t i = 0; i < m->n_shares; i++) {
        struct ast_str name = m->shares[i];
        struct entry *en = scope_find(&globals, name.s, name.len);
        if (en == NULL && strcmp(name.s, "__testing") != 0)
            error_at(&r, m->shares_pos[i],
                     "Trying to share: %s but it's not defined in global",
                     name.s);
        else if (en != NULL && en->kinds == KV_FN_ACTION)
            error_at(&r, m->shares_pos[i],
                     "Actions cannot be shared: %s", name.s);
    }
    for (size_t i = 0; i < rs->n_rules; i++) {
        for (size_t j = 0; j < i; j++)
            if (rs->rules[j].name.len == rs->rules[i].name.len &&
                memcmp(rs->rules[j].name.s, rs->rules[i].name.s,
                       rs->rules[i].name.len) == 0) {
                error_at(&r, rs->rules[i].pos, "Duplicate rule name: %s",
                         rs->rules[i].name.s);
                break;
            }
        resolve_rule(&r, &rs->rules[i]);
    }
    scope_pop(&r, &globals);
    return r.errors;
}

int
resolve_body(struct ast_expr *fn, const char *file, struct arena *a,
             struct krl_diags *diags)
{
    struct resolver r = {file, a, diags, 0, NULL};
    resolve_function(&r, fn);
    return r.errors;
}
