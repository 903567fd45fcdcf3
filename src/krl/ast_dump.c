/*
 * ast_dump.c - S-expression printer of the syntax tree; see ast_dump.h.
 *
 * The output is meant to be compared as a string in tests, so it is
 * canonical: one space between items, numbers in their shortest
 * round-tripping form, strings re-escaped.
 */
#include "picomail/ast_dump.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void
put_str(struct buf *out, const struct ast_str *s)
{
    buf_add(out, s->s, s->len);
}

static void
put_quoted(struct buf *out, const struct ast_str *s)
{
    buf_addc(out, '"');
    for (size_t k = 0; k < s->len; k++) {
        unsigned char c = (unsigned char)s->s[k];
        switch (c) {
        case '"': buf_adds(out, "\\\""); break;
        case '\\': buf_adds(out, "\\\\"); break;
        case '\n': buf_adds(out, "\\n"); break;
        case '\t': buf_adds(out, "\\t"); break;
        case '\r': buf_adds(out, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                buf_printf(out, "\\u%04x", c);
            else
                buf_addc(out, (char)c);
        }
    }
    buf_addc(out, '"');
}

static void
put_number(struct buf *out, double d)
{
    if (isnan(d)) {
        buf_adds(out, "nan");
        return;
    }
    if (isinf(d)) {
        buf_adds(out, d < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[64];
    if (d == floor(d) && fabs(d) < 1e21) {
        snprintf(tmp, sizeof tmp, "%.0f", d);
        buf_adds(out, tmp);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    buf_adds(out, tmp);
}

static const char *
binop_text(enum ast_binop op)
{
    switch (op) {
    case AST_OR: return "||";
    case AST_AND: return "&&";
    case AST_EQ: return "==";
    case AST_NE: return "!=";
    case AST_LT: return "<";
    case AST_LE: return "<=";
    case AST_GT: return ">";
    case AST_GE: return ">=";
    case AST_LIKE: return "like";
    case AST_CONTAINS: return "><";
    case AST_COMPARE: return "<=>";
    case AST_CMP: return "cmp";
    case AST_ADD: return "+";
    case AST_SUB: return "-";
    case AST_MUL: return "*";
    case AST_DIV: return "/";
    case AST_MOD: return "%";
    }
    return "?";
}

static void
put_args(struct buf *out, const struct ast_arg *args, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        buf_addc(out, ' ');
        if (args[k].name.s != NULL) {
            buf_adds(out, "(= ");
            put_str(out, &args[k].name);
            buf_addc(out, ' ');
            ast_dump_expr(out, args[k].value);
            buf_addc(out, ')');
        } else {
            ast_dump_expr(out, args[k].value);
        }
    }
}

static void
put_decl(struct buf *out, const struct ast_decl *d)
{
    buf_adds(out, "(= ");
    put_str(out, &d->name);
    buf_addc(out, ' ');
    ast_dump_expr(out, d->value);
    buf_addc(out, ')');
}

static void
put_decls(struct buf *out, const struct ast_decl *d, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        buf_addc(out, ' ');
        put_decl(out, &d[k]);
    }
}

static void
put_params(struct buf *out, const struct ast_param *params, size_t n)
{
    buf_adds(out, "(params");
    for (size_t k = 0; k < n; k++) {
        buf_addc(out, ' ');
        if (params[k].dflt != NULL) {
            buf_adds(out, "(= ");
            put_str(out, &params[k].name);
            buf_addc(out, ' ');
            ast_dump_expr(out, params[k].dflt);
            buf_addc(out, ')');
        } else {
            put_str(out, &params[k].name);
        }
    }
    buf_addc(out, ')');
}

static void
put_names(struct buf *out, const char *head, const struct ast_str *names,
          size_t n)
{
    buf_addc(out, '(');
    buf_adds(out, head);
    for (size_t k = 0; k < n; k++) {
        buf_addc(out, ' ');
        put_str(out, &names[k]);
    }
    buf_addc(out, ')');
}

void
ast_dump_expr(struct buf *out, const struct ast_expr *e)
{
    if (e == NULL) {
        buf_adds(out, "<null>");
        return;
    }
    switch (e->kind) {
    case AST_NULL:
        buf_adds(out, "null");
        break;
    case AST_BOOL:
        buf_adds(out, e->u.boolean ? "true" : "false");
        break;
    case AST_NUMBER:
        put_number(out, e->u.number);
        break;
    case AST_STRING:
        put_quoted(out, &e->u.string);
        break;
    case AST_REGEXP:
        buf_adds(out, "re#");
        for (size_t k = 0; k < e->u.regexp.source.len; k++) {
            if (e->u.regexp.source.s[k] == '#')
                buf_addc(out, '\\');
            buf_addc(out, e->u.regexp.source.s[k]);
        }
        buf_addc(out, '#');
        buf_adds(out, e->u.regexp.flags);
        break;
    case AST_CHEVRON:
        buf_adds(out, "(chevron");
        for (size_t k = 0; k < e->u.chevron.n_parts; k++) {
            buf_addc(out, ' ');
            ast_dump_expr(out, e->u.chevron.parts[k]);
        }
        buf_addc(out, ')');
        break;
    case AST_ARRAY:
        buf_adds(out, "(array");
        for (size_t k = 0; k < e->u.list.n_items; k++) {
            buf_addc(out, ' ');
            ast_dump_expr(out, e->u.list.items[k]);
        }
        buf_addc(out, ')');
        break;
    case AST_MAP:
        buf_adds(out, "(map");
        for (size_t k = 0; k < e->u.map.n; k++) {
            buf_adds(out, " (");
            put_quoted(out, &e->u.map.keys[k]);
            buf_addc(out, ' ');
            ast_dump_expr(out, e->u.map.values[k]);
            buf_addc(out, ')');
        }
        buf_addc(out, ')');
        break;
    case AST_IDENT:
        put_str(out, &e->u.ident.name);
        break;
    case AST_DOMAIN_IDENT:
        put_str(out, &e->u.dident.domain);
        buf_addc(out, ':');
        put_str(out, &e->u.dident.name);
        break;
    case AST_CALL:
        buf_adds(out, e->u.call.is_dot_call ? "(dotcall " : "(call ");
        ast_dump_expr(out, e->u.call.callee);
        put_args(out, e->u.call.args, e->u.call.n_args);
        buf_addc(out, ')');
        break;
    case AST_DOT:
        buf_adds(out, "(dot ");
        ast_dump_expr(out, e->u.dot.object);
        buf_addc(out, ' ');
        put_str(out, &e->u.dot.name);
        buf_addc(out, ')');
        break;
    case AST_PATH:
    case AST_INDEX:
        buf_adds(out, e->kind == AST_PATH ? "(path " : "(index ");
        ast_dump_expr(out, e->u.member.object);
        buf_addc(out, ' ');
        ast_dump_expr(out, e->u.member.key);
        buf_addc(out, ')');
        break;
    case AST_UNARY:
        buf_adds(out, e->u.unary.op == AST_NEG    ? "(neg "
                      : e->u.unary.op == AST_PLUS ? "(pos "
                                                  : "(not ");
        ast_dump_expr(out, e->u.unary.operand);
        buf_addc(out, ')');
        break;
    case AST_BINARY:
        buf_addc(out, '(');
        buf_adds(out, binop_text(e->u.binary.op));
        buf_addc(out, ' ');
        ast_dump_expr(out, e->u.binary.left);
        buf_addc(out, ' ');
        ast_dump_expr(out, e->u.binary.right);
        buf_addc(out, ')');
        break;
    case AST_TERNARY:
        buf_adds(out, "(? ");
        ast_dump_expr(out, e->u.ternary.cond);
        buf_addc(out, ' ');
        ast_dump_expr(out, e->u.ternary.then);
        buf_addc(out, ' ');
        ast_dump_expr(out, e->u.ternary.otherwise);
        buf_addc(out, ')');
        break;
    case AST_FUNCTION:
        buf_adds(out, "(function ");
        put_params(out, e->u.function.params, e->u.function.n_params);
        put_decls(out, e->u.function.decls, e->u.function.n_decls);
        buf_addc(out, ' ');
        ast_dump_expr(out, e->u.function.result);
        buf_addc(out, ')');
        break;
    case AST_DEFACTION:
        buf_adds(out, "(defaction ");
        put_params(out, e->u.defaction.params, e->u.defaction.n_params);
        put_decls(out, e->u.defaction.decls, e->u.defaction.n_decls);
        buf_addc(out, ' ');
        ast_dump_action_block(out, e->u.defaction.actions);
        for (size_t k = 0; k < e->u.defaction.n_returns; k++) {
            buf_adds(out, " (return ");
            ast_dump_expr(out, e->u.defaction.returns[k]);
            buf_addc(out, ')');
        }
        buf_addc(out, ')');
        break;
    }
}

static const char *
ee_kind_text(enum ast_ee_kind kind)
{
    switch (kind) {
    case AST_EE_PRIM: return "ee";
    case AST_EE_OR: return "or";
    case AST_EE_AND: return "and";
    case AST_EE_BEFORE: return "before";
    case AST_EE_THEN: return "then";
    case AST_EE_AFTER: return "after";
    case AST_EE_BETWEEN: return "between";
    case AST_EE_NOT_BETWEEN: return "not-between";
    case AST_EE_ANY: return "any";
    case AST_EE_COUNT: return "count";
    case AST_EE_REPEAT: return "repeat";
    }
    return "?";
}

static const char *
agg_text(enum ast_agg agg)
{
    switch (agg) {
    case AST_AGG_NONE: return "none";
    case AST_AGG_MAX: return "max";
    case AST_AGG_MIN: return "min";
    case AST_AGG_SUM: return "sum";
    case AST_AGG_AVG: return "avg";
    case AST_AGG_PUSH: return "push";
    }
    return "?";
}

void
ast_dump_ee(struct buf *out, const struct ast_ee *ee)
{
    if (ee == NULL) {
        buf_adds(out, "<null>");
        return;
    }
    buf_addc(out, '(');
    buf_adds(out, ee_kind_text(ee->kind));
    if (ee->kind == AST_EE_PRIM) {
        buf_addc(out, ' ');
        put_str(out, &ee->domain);
        buf_addc(out, ' ');
        put_str(out, &ee->type);
        for (size_t k = 0; k < ee->n_matches; k++) {
            buf_adds(out, " (match ");
            put_str(out, &ee->matches[k].attr);
            buf_addc(out, ' ');
            ast_dump_expr(out, ee->matches[k].regexp);
            buf_addc(out, ')');
        }
        if (ee->n_setting > 0) {
            buf_addc(out, ' ');
            put_names(out, "setting", ee->setting, ee->n_setting);
        }
        if (ee->where != NULL) {
            buf_adds(out, " (where ");
            ast_dump_expr(out, ee->where);
            buf_addc(out, ')');
        }
        buf_addc(out, ')');
        return;
    }
    if (ee->n != NULL) {
        buf_addc(out, ' ');
        ast_dump_expr(out, ee->n);
    }
    for (size_t k = 0; k < ee->n_items; k++) {
        buf_addc(out, ' ');
        ast_dump_ee(out, ee->items[k]);
    }
    if (ee->agg != AST_AGG_NONE) {
        buf_addc(out, ' ');
        put_names(out, agg_text(ee->agg), ee->agg_vars, ee->n_agg_vars);
    }
    buf_addc(out, ')');
}

static void
put_action(struct buf *out, const struct ast_action *a)
{
    buf_adds(out, "(action ");
    if (a->label.s != NULL) {
        put_str(out, &a->label);
        buf_adds(out, " => ");
    }
    ast_dump_expr(out, a->callee);
    put_args(out, a->args, a->n_args);
    if (a->n_setting > 0) {
        buf_addc(out, ' ');
        put_names(out, "setting", a->setting, a->n_setting);
    }
    buf_addc(out, ')');
}

void
ast_dump_action_block(struct buf *out, const struct ast_action_block *b)
{
    static const char *const kinds[] = {"single", "every", "sample",
                                        "choose"};
    if (b == NULL) {
        buf_adds(out, "<null>");
        return;
    }
    if (b->cond != NULL) {
        buf_adds(out, "(if ");
        ast_dump_expr(out, b->cond);
        buf_addc(out, ' ');
    }
    buf_addc(out, '(');
    buf_adds(out, kinds[b->kind]);
    if (b->choose != NULL) {
        buf_addc(out, ' ');
        ast_dump_expr(out, b->choose);
    }
    for (size_t k = 0; k < b->n_actions; k++) {
        buf_addc(out, ' ');
        put_action(out, &b->actions[k]);
    }
    buf_addc(out, ')');
    if (b->cond != NULL)
        buf_addc(out, ')');
}

static void
put_opt(struct buf *out, const char *head, const struct ast_expr *e)
{
    if (e == NULL)
        return;
    buf_adds(out, " (");
    buf_adds(out, head);
    buf_addc(out, ' ');
    ast_dump_expr(out, e);
    buf_addc(out, ')');
}

static void
put_ent(struct buf *out, const struct ast_stmt *s)
{
    buf_adds(out, "ent:");
    put_str(out, &s->ent_name);
    if (s->ent_path != NULL) {
        buf_addc(out, ' ');
        ast_dump_expr(out, s->ent_path);
    }
}

static void
put_stmt_core(struct buf *out, const struct ast_stmt *s)
{
    switch (s->kind) {
    case AST_STMT_DECL:
        put_decl(out, &s->decl);
        break;
    case AST_STMT_ENT_SET:
        buf_adds(out, "(:= ");
        put_ent(out, s);
        buf_addc(out, ' ');
        ast_dump_expr(out, s->value);
        buf_addc(out, ')');
        break;
    case AST_STMT_CLEAR:
        buf_adds(out, "(clear ");
        put_ent(out, s);
        buf_addc(out, ')');
        break;
    case AST_STMT_RAISE:
    case AST_STMT_SCHEDULE:
        buf_adds(out, s->kind == AST_STMT_RAISE ? "(raise " : "(schedule ");
        if (s->event_domain.s != NULL)
            put_str(out, &s->event_domain);
        else
            buf_adds(out, "event");
        buf_addc(out, ' ');
        ast_dump_expr(out, s->event_type);
        put_opt(out, "for", s->for_rid);
        put_opt(out, "at", s->at);
        put_opt(out, "repeat", s->repeat);
        put_opt(out, "attributes", s->attributes);
        if (s->setting.s != NULL) {
            buf_adds(out, " (setting ");
            put_str(out, &s->setting);
            buf_addc(out, ')');
        }
        buf_addc(out, ')');
        break;
    case AST_STMT_LOG:
    case AST_STMT_ERROR:
        buf_adds(out, s->kind == AST_STMT_LOG ? "(log " : "(error ");
        put_str(out, &s->level);
        buf_addc(out, ' ');
        ast_dump_expr(out, s->value);
        buf_addc(out, ')');
        break;
    case AST_STMT_LAST:
        buf_adds(out, "(last)");
        break;
    }
}

void
ast_dump_stmt(struct buf *out, const struct ast_stmt *s)
{
    if (s->guard == AST_GUARD_IF) {
        buf_adds(out, "(guard ");
        put_stmt_core(out, s);
        buf_addc(out, ' ');
        ast_dump_expr(out, s->guard_expr);
        buf_addc(out, ')');
    } else if (s->guard == AST_GUARD_ON_FINAL) {
        buf_adds(out, "(on-final ");
        put_stmt_core(out, s);
        buf_addc(out, ')');
    } else {
        put_stmt_core(out, s);
    }
}

static void
put_stmts(struct buf *out, const char *indent, const char *head,
          const struct ast_stmt *stmts, size_t n)
{
    buf_adds(out, indent);
    buf_addc(out, '(');
    buf_adds(out, head);
    for (size_t k = 0; k < n; k++) {
        buf_addc(out, ' ');
        ast_dump_stmt(out, &stmts[k]);
    }
    buf_addc(out, ')');
}

static const char *
period_text(enum ast_period period)
{
    switch (period) {
    case AST_PERIOD_NONE: return "none";
    case AST_PERIOD_SECONDS: return "seconds";
    case AST_PERIOD_MINUTES: return "minutes";
    case AST_PERIOD_HOURS: return "hours";
    case AST_PERIOD_DAYS: return "days";
    case AST_PERIOD_WEEKS: return "weeks";
    case AST_PERIOD_MONTHS: return "months";
    case AST_PERIOD_YEARS: return "years";
    }
    return "?";
}

void
ast_dump_rule(struct buf *out, const struct ast_rule *r)
{
    const char *in = "\n    ";

    buf_adds(out, "(rule ");
    put_str(out, &r->name);
    if (r->inactive)
        buf_adds(out, " inactive");
    if (r->select_when != NULL) {
        buf_adds(out, in);
        buf_adds(out, "(select when ");
        ast_dump_ee(out, r->select_when);
        if (r->within != NULL) {
            buf_adds(out, " (within ");
            ast_dump_expr(out, r->within);
            buf_addc(out, ' ');
            buf_adds(out, period_text(r->within_period));
            buf_addc(out, ')');
        }
        buf_addc(out, ')');
    }
    if (r->select_where != NULL) {
        buf_adds(out, in);
        buf_adds(out, "(select where ");
        ast_dump_expr(out, r->select_where);
        buf_addc(out, ')');
    }
    for (size_t k = 0; k < r->n_foreach; k++) {
        buf_adds(out, in);
        buf_adds(out, "(foreach ");
        ast_dump_expr(out, r->foreach[k].collection);
        buf_addc(out, ' ');
        put_str(out, &r->foreach[k].value_var);
        if (r->foreach[k].key_var.s != NULL) {
            buf_addc(out, ' ');
            put_str(out, &r->foreach[k].key_var);
        }
        buf_addc(out, ')');
    }
    if (r->n_pre > 0) {
        buf_adds(out, in);
        buf_adds(out, "(pre");
        put_decls(out, r->pre, r->n_pre);
        buf_addc(out, ')');
    }
    if (r->actions != NULL) {
        buf_adds(out, in);
        ast_dump_action_block(out, r->actions);
    }
    const struct ast_postlude *post = &r->postlude;
    switch (post->kind) {
    case AST_POST_NONE:
        break;
    case AST_POST_ALWAYS:
        put_stmts(out, in, "always", post->stmts, post->n_stmts);
        break;
    case AST_POST_FIRED:
    case AST_POST_NOTFIRED:
        put_stmts(out, in, post->kind == AST_POST_FIRED ? "fired" : "notfired",
                  post->stmts, post->n_stmts);
        if (post->else_stmts != NULL || post->n_else > 0)
            put_stmts(out, in, "else", post->else_stmts, post->n_else);
        if (post->finally_stmts != NULL || post->n_finally > 0)
            put_stmts(out, in, "finally", post->finally_stmts,
                      post->n_finally);
        break;
    }
    buf_addc(out, ')');
}

static void
put_meta(struct buf *out, const struct ast_meta *m)
{
    const char *in = "\n    ";

    buf_adds(out, "\n  (meta");
    put_opt(out, "name", m->name);
    put_opt(out, "description", m->description);
    put_opt(out, "author", m->author);
    put_opt(out, "version", m->version);
    if (m->has_logging)
        buf_adds(out, m->logging_on ? " (logging on)" : " (logging off)");
    for (size_t k = 0; k < m->n_uses; k++) {
        const struct ast_use *u = &m->uses[k];
        buf_adds(out, in);
        buf_adds(out, "(use ");
        put_str(out, &u->rid);
        if (u->alias.s != NULL) {
            buf_adds(out, " alias ");
            put_str(out, &u->alias);
        }
        if (u->n_with > 0) {
            buf_adds(out, " (with");
            put_decls(out, u->with, u->n_with);
            buf_addc(out, ')');
        }
        buf_addc(out, ')');
    }
    if (m->n_configure > 0) {
        buf_adds(out, in);
        buf_adds(out, "(configure");
        put_decls(out, m->configure, m->n_configure);
        buf_addc(out, ')');
    }
    if (m->n_provides > 0) {
        buf_adds(out, in);
        put_names(out, "provides", m->provides, m->n_provides);
    }
    if (m->n_shares > 0) {
        buf_adds(out, in);
        put_names(out, "shares", m->shares, m->n_shares);
    }
    buf_addc(out, ')');
}

void
ast_dump_ruleset(struct buf *out, const struct ast_ruleset *rs)
{
    const struct ast_meta *m = &rs->meta;

    buf_adds(out, "(ruleset ");
    put_str(out, &rs->rid);
    if (m->name != NULL || m->description != NULL || m->author != NULL ||
        m->version != NULL || m->has_logging || m->n_uses > 0 ||
        m->n_configure > 0 || m->n_provides > 0 || m->n_shares > 0)
        put_meta(out, m);
    if (rs->n_globals > 0) {
        buf_adds(out, "\n  (global");
        for (size_t k = 0; k < rs->n_globals; k++) {
            buf_adds(out, "\n    ");
            put_decl(out, &rs->globals[k]);
        }
        buf_addc(out, ')');
    }
    for (size_t k = 0; k < rs->n_rules; k++) {
        buf_adds(out, "\n  ");
        ast_dump_rule(out, &rs->rules[k]);
    }
    buf_addc(out, ')');
}
