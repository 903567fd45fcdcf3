/*
 * parser.c - KRL tokens to syntax tree; see parser.h and ast.h.
 *
 * A Pratt (TDOP) parser shaped like the reference krl-parser (krl.ts): the
 * same productions, binding powers, quirks and error messages.  Tokens
 * come from lexer.c, all at once.  Errors do not unwind: the first one is
 * recorded in p->failed plus one diagnostic, and every production returns
 * NULL/false as soon as p->failed is set, so callers only test and return.
 *
 * Two bounds keep hostile input from hurting us or the tree walkers that
 * come later: p->depth counts nested expression()/event_expression()
 * calls, and every expression and event-expression node records its height
 * (in a private wrapper around the public struct).  Either going past
 * PARSE_MAX_DEPTH stops the parse with "Nesting too deep".
 *
 * Every node, array and string lives in the caller's arena; the only
 * malloc'd memory is the token array, released before returning.
 */
#include "picomail/parser.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/lexer.h"

struct parser {
    struct arena *a;
    const char *file;
    const char *src;
    struct lex_tokens toks;
    size_t i;                   /* current token */
    struct krl_diags *diags;
    bool failed;
    int depth;                  /* nested expression parses */
};

/* Expression and event-expression nodes are allocated with their height
 * (1 for a leaf) right after the public struct. */
struct enode {
    struct ast_expr e;
    int height;
};

struct eenode {
    struct ast_ee ee;
    int height;
};

/* A growable array in the arena (doubling; the old copies stay in the
 * arena until it dies, at most doubling the space). */
struct vec {
    void *items;
    size_t n;
    size_t cap;
};

static struct ast_expr *expression(struct parser *p, int rbp,
                                   const char *errmsg);
static struct ast_ee *event_expression(struct parser *p, int rbp);
static struct ast_action_block *action_block(struct parser *p);
static bool arguments_base(struct parser *p, struct vec *args);

/* ---------------------------------------------------------------- */
/* Tokens and errors                                                 */

static const struct lex_token *
cur(const struct parser *p)
{
    return &p->toks.items[p->i];
}

static void
fail_at(struct parser *p, int line, int col, const char *msg)
{
    if (p->failed)
        return;
    p->failed = true;
    krl_diags_add(p->diags, p->file, line, col, "%s", msg);
}

static void
fail(struct parser *p, const struct lex_token *tok, const char *msg)
{
    fail_at(p, tok->line, tok->col, msg);
}

static void
fail_pos(struct parser *p, struct ast_pos pos, const char *msg)
{
    fail_at(p, pos.line, pos.col, msg);
}

static struct ast_pos
tok_pos(const struct lex_token *tok)
{
    struct ast_pos pos = {tok->line, tok->col};
    return pos;
}

/* advance - to the next token; reaching a lexical error is an error */
static void
advance(struct parser *p)
{
    if (p->failed)
        return;
    if (cur(p)->kind != LEX_EOF)
        p->i++;
    if (cur(p)->kind == LEX_ERROR)
        fail(p, cur(p), cur(p)->msg);
}

/* lookahead - the token K places ahead; like the reference, looking at a
 * lexical error is an error */
static const struct lex_token *
lookahead(struct parser *p, size_t k)
{
    size_t j = p->i;
    for (size_t n = 0; n < k && p->toks.items[j].kind != LEX_EOF; n++) {
        j++;
        if (p->toks.items[j].kind == LEX_ERROR)
            fail(p, &p->toks.items[j], p->toks.items[j].msg);
    }
    return &p->toks.items[j];
}

static bool
is_punct(const struct lex_token *tok, enum lex_punct punct)
{
    return tok->kind == LEX_PUNCT && tok->punct == punct;
}

static bool
tok_eq(const struct parser *p, const struct lex_token *tok, const char *word)
{
    size_t n = strlen(word);
    return tok->len == n && memcmp(p->src + tok->off, word, n) == 0;
}

static bool
is_sym(const struct parser *p, const struct lex_token *tok, const char *word)
{
    return tok->kind == LEX_SYMBOL && tok_eq(p, tok, word);
}

static bool
sym_in(const struct parser *p, const struct lex_token *tok,
       const char *const *words)
{
    if (tok->kind != LEX_SYMBOL)
        return false;
    for (size_t k = 0; words[k] != NULL; k++) {
        if (tok_eq(p, tok, words[k]))
            return true;
    }
    return false;
}

static const char *const reserved_words[] = {
    "defaction", "function", "return", "not", "setting", "null", "true",
    "false", NULL
};

/* Words the reference looks up as operator rules before SYMBOL: they
 * have no expression nud, so they cannot be read back as identifiers. */
static const char *const operator_words[] = {
    "like", "cmp", "or", "and", "before", "then", "after", "between", "any",
    "count", "repeat", NULL
};

static bool
is_reserved(const struct parser *p, const struct lex_token *tok)
{
    return sym_in(p, tok, reserved_words);
}

/* is_plain_symbol - a SYMBOL that the reference handles with its SYMBOL
 * rule (not a keyword with a rule of its own) */
static bool
is_plain_symbol(const struct parser *p, const struct lex_token *tok)
{
    static const char *const own_rule[] = {
        "function", "defaction", "true", "false", "null", "not", NULL
    };
    return tok->kind == LEX_SYMBOL && !sym_in(p, tok, operator_words) &&
           !sym_in(p, tok, own_rule);
}

static bool
accept_punct(struct parser *p, enum lex_punct punct)
{
    if (p->failed || !is_punct(cur(p), punct))
        return false;
    advance(p);
    return !p->failed;
}

static void
expected(struct parser *p, const char *what)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "Expected `%s`", what);
    fail(p, cur(p), b.data);
    buf_release(&b);
}

static bool
expect_punct(struct parser *p, enum lex_punct punct)
{
    if (p->failed)
        return false;
    if (!is_punct(cur(p), punct)) {
        expected(p, lex_punct_text(punct));
        return false;
    }
    advance(p);
    return !p->failed;
}

static bool
accept_sym(struct parser *p, const char *word)
{
    if (p->failed || !is_sym(p, cur(p), word))
        return false;
    advance(p);
    return !p->failed;
}

static bool
expect_sym(struct parser *p, const char *word)
{
    if (p->failed)
        return false;
    if (!is_sym(p, cur(p), word)) {
        expected(p, word);
        return false;
    }
    advance(p);
    return !p->failed;
}

static struct ast_str
mkstr(struct parser *p, const char *s, size_t len)
{
    struct ast_str str;
    str.s = arena_strndup(p->a, s, len);
    str.len = len;
    return str;
}

static struct ast_str
tok_str(struct parser *p, const struct lex_token *tok)
{
    return mkstr(p, p->src + tok->off, tok->len);
}

static void *
vec_push(struct parser *p, struct vec *v, size_t size)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void *items = arena_allocarray(p->a, cap, size);
        if (v->n > 0)
            memcpy(items, v->items, v->n * size);
        v->items = items;
        v->cap = cap;
    }
    return (char *)v->items + v->n++ * size;
}

/* ---------------------------------------------------------------- */
/* Nodes and heights                                                 */

static struct ast_expr *
new_expr(struct parser *p, enum ast_expr_kind kind, struct ast_pos pos)
{
    struct enode *n = arena_alloc(p->a, sizeof *n);
    n->e.kind = kind;
    n->e.pos = pos;
    n->height = 1;
    return &n->e;
}

static int
height(const struct ast_expr *e)
{
    return e != NULL ? ((const struct enode *)e)->height : 0;
}

static int
max_int(int a, int b)
{
    return a > b ? a : b;
}

/* set_height - record 1 + the tallest child; too tall is an error */
static struct ast_expr *
set_height(struct parser *p, struct ast_expr *e, int tallest_child)
{
    if (e == NULL)
        return NULL;
    ((struct enode *)e)->height = tallest_child + 1;
    if (tallest_child + 1 > PARSE_MAX_DEPTH) {
        fail_pos(p, e->pos, "Nesting too deep");
        return NULL;
    }
    return e;
}

static struct ast_ee *
new_ee(struct parser *p, enum ast_ee_kind kind, struct ast_pos pos)
{
    struct eenode *n = arena_alloc(p->a, sizeof *n);
    n->ee.kind = kind;
    n->ee.pos = pos;
    n->height = 1;
    return &n->ee;
}

static int
ee_height(const struct ast_ee *ee)
{
    return ee != NULL ? ((const struct eenode *)ee)->height : 0;
}

static struct ast_ee *
set_ee_height(struct parser *p, struct ast_ee *ee, int tallest_child)
{
    ((struct eenode *)ee)->height = tallest_child + 1;
    if (tallest_child + 1 > PARSE_MAX_DEPTH) {
        fail_pos(p, ee->pos, "Nesting too deep");
        return NULL;
    }
    return ee;
}

static int
decls_height(const struct ast_decl *d, size_t n)
{
    int h = 0;
    for (size_t k = 0; k < n; k++)
        h = max_int(h, height(d[k].value));
    return h;
}

static int
args_height(const struct ast_arg *args, size_t n)
{
    int h = 0;
    for (size_t k = 0; k < n; k++)
        h = max_int(h, height(args[k].value));
    return h;
}

/* ---------------------------------------------------------------- */
/* Small productions                                                 */

/* identifier -> SYMBOL (not reserved) */
static bool
identifier(struct parser *p, struct ast_str *name, struct ast_pos *pos)
{
    const struct lex_token *tok = cur(p);
    if (p->failed)
        return false;
    if (tok->kind != LEX_SYMBOL || is_reserved(p, tok)) {
        fail(p, tok, "Expected Identifier");
        return false;
    }
    *name = tok_str(p, tok);
    if (pos != NULL)
        *pos = tok_pos(tok);
    advance(p);
    return !p->failed;
}

/* word -> any SYMBOL (event domains, types, attribute names) */
static bool
word(struct parser *p, const char *what, struct ast_str *name,
     struct ast_pos *pos)
{
    const struct lex_token *tok = cur(p);
    if (p->failed)
        return false;
    if (tok->kind != LEX_SYMBOL) {
        struct buf b;
        buf_init(&b);
        buf_printf(&b, "Expected %s", what);
        fail(p, tok, b.data);
        buf_release(&b);
        return false;
    }
    *name = tok_str(p, tok);
    if (pos != NULL)
        *pos = tok_pos(tok);
    advance(p);
    return !p->failed;
}

/* ident_or_domain_ident -> identifier [":" identifier] */
static struct ast_expr *
ident_or_domain_ident(struct parser *p)
{
    struct ast_str first;
    struct ast_pos pos;
    if (!identifier(p, &first, &pos))
        return NULL;
    if (!accept_punct(p, LEX_P_COLON)) {
        if (p->failed)
            return NULL;
        struct ast_expr *e = new_expr(p, AST_IDENT, pos);
        e->u.ident.name = first;
        return e;
    }
    struct ast_str second;
    if (!identifier(p, &second, NULL))
        return NULL;
    struct ast_expr *e = new_expr(p, AST_DOMAIN_IDENT, pos);
    e->u.dident.domain = first;
    e->u.dident.name = second;
    return e;
}

/* identifier_list -> identifier ("," identifier)* */
static bool
identifier_list(struct parser *p, struct ast_str **names,
                struct ast_pos **positions, size_t *n)
{
    struct vec vn = {0}, vp = {0};
    do {
        struct ast_str name;
        struct ast_pos pos;
        if (!identifier(p, &name, &pos))
            return false;
        *(struct ast_str *)vec_push(p, &vn, sizeof name) = name;
        *(struct ast_pos *)vec_push(p, &vp, sizeof pos) = pos;
    } while (accept_punct(p, LEX_P_COMMA));
    if (p->failed)
        return false;
    *names = vn.items;
    if (positions != NULL)
        *positions = vp.items;
    *n = vn.n;
    return true;
}

/* declaration -> identifier "=" expression */
static bool
declaration(struct parser *p, struct ast_decl *d)
{
    const struct lex_token *left = cur(p);
    if (p->failed)
        return false;
    if (left->kind != LEX_SYMBOL || is_reserved(p, left)) {
        fail(p, left, "Expected a declaration");
        return false;
    }
    d->pos = tok_pos(left);
    d->name = tok_str(p, left);
    advance(p);
    if (p->failed)
        return false;
    if (!accept_punct(p, LEX_P_EQ)) {
        fail(p, left, "Expected a declaration");
        return false;
    }
    d->value = expression(p, 0, NULL);
    return d->value != NULL;
}

/* declaration_list -> (declaration [";"])*   while "id =" is ahead */
static bool
declaration_list(struct parser *p, struct ast_decl **decls, size_t *n)
{
    struct vec v = {0};
    while (!p->failed && cur(p)->kind != LEX_EOF) {
        if (cur(p)->kind != LEX_SYMBOL || is_reserved(p, cur(p)))
            break;
        const struct lex_token *next = lookahead(p, 1);
        if (p->failed || !is_punct(next, LEX_P_EQ))
            break;
        struct ast_decl *d = vec_push(p, &v, sizeof *d);
        if (!declaration(p, d))
            return false;
        accept_punct(p, LEX_P_SEMI);
    }
    if (p->failed)
        return false;
    *decls = v.items;
    *n = v.n;
    return true;
}

/* parameters -> "(" [param ("," param)* [","]] ")"
 * param -> identifier ["=" expression] */
static bool
parameters(struct parser *p, struct ast_param **params, size_t *n, int *h)
{
    struct vec v = {0};
    *h = 0;
    if (!expect_punct(p, LEX_P_LPAREN))
        return false;
    while (!p->failed && cur(p)->kind != LEX_EOF) {
        if (is_punct(cur(p), LEX_P_RPAREN))
            break;
        struct ast_param *pm = vec_push(p, &v, sizeof *pm);
        if (!identifier(p, &pm->name, &pm->pos))
            return false;
        if (accept_punct(p, LEX_P_EQ)) {
            pm->dflt = expression(p, 0, NULL);
            if (pm->dflt == NULL)
                return false;
            *h = max_int(*h, height(pm->dflt));
        }
        if (!accept_punct(p, LEX_P_COMMA))
            break;
    }
    if (!expect_punct(p, LEX_P_RPAREN))
        return false;
    *params = v.items;
    *n = v.n;
    return true;
}

/* arguments_base -> [arg ("," arg)* [","]] ")"   (after the "(")
 * arg -> expression | identifier "=" expression */
static bool
arguments_base(struct parser *p, struct vec *args)
{
    bool named = false;
    while (!p->failed && cur(p)->kind != LEX_EOF) {
        if (is_punct(cur(p), LEX_P_RPAREN))
            break;
        struct ast_expr *e = expression(p, 0, NULL);
        if (e == NULL)
            return false;
        struct ast_arg *arg = vec_push(p, args, sizeof *arg);
        arg->pos = e->pos;
        if (e->kind == AST_IDENT && is_punct(cur(p), LEX_P_EQ)) {
            advance(p);
            arg->name = e->u.ident.name;
            arg->value = expression(p, 0, NULL);
            if (arg->value == NULL)
                return false;
            named = true;
        } else if (named) {
            fail_pos(p, e->pos,
                     "Once you used a named arg, all following must be named.");
            return false;
        } else {
            arg->value = e;
        }
        if (!accept_punct(p, LEX_P_COMMA))
            break;
    }
    return expect_punct(p, LEX_P_RPAREN);
}

/* ---------------------------------------------------------------- */
/* Literals                                                          */

/* replace_all - S with every FROM (2 or 3 bytes) replaced by TO, scanning
 * left to right without overlap, like JavaScript's replace(/x/g) */
static void
replace_all(struct parser *p, struct ast_str *s, const char *from,
            const char *to)
{
    size_t nf = strlen(from), nt = strlen(to);
    if (s->len < nf || memchr(s->s, from[0], s->len) == NULL)
        return;
    char *out = arena_alloc(p->a, s->len + 1);
    size_t o = 0;
    for (size_t k = 0; k < s->len;) {
        if (k + nf <= s->len && memcmp(s->s + k, from, nf) == 0) {
            memcpy(out + o, to, nt);
            o += nt;
            k += nf;
        } else {
            out[o++] = s->s[k++];
        }
    }
    out[o] = '\0';
    s->s = out;
    s->len = o;
}

static struct ast_expr *
string_node(struct parser *p, const struct lex_token *tok)
{
    struct ast_expr *e = new_expr(p, AST_STRING, tok_pos(tok));
    struct ast_str s;
    s.s = p->src + tok->off + 1;
    s.len = tok->len - 2;
    replace_all(p, &s, "\\\"", "\"");
    replace_all(p, &s, "\\\\", "\\");
    e->u.string = mkstr(p, s.s, s.len);
    return e;
}

static struct ast_expr *
number_node(struct parser *p, const struct lex_token *tok)
{
    struct ast_expr *e = new_expr(p, AST_NUMBER, tok_pos(tok));
    /* digits and at most one dot: strtod reads all of it (C locale) */
    char *text = arena_strndup(p->a, p->src + tok->off, tok->len);
    e->u.number = strtod(text, NULL);
    return e;
}

static struct ast_expr *
regexp_node(struct parser *p, const struct lex_token *tok)
{
    const char *raw = p->src + tok->off;
    size_t hash = tok->len - 1;     /* the last '#' */
    while (raw[hash] != '#')
        hash--;
    struct ast_expr *e = new_expr(p, AST_REGEXP, tok_pos(tok));
    struct ast_str s;
    s.s = raw + 3;
    s.len = hash - 3;
    replace_all(p, &s, "\\#", "#");
    e->u.regexp.source = mkstr(p, s.s, s.len);
    size_t nflags = tok->len - hash - 1;
    for (size_t k = 0; k < nflags; k++) {
        char f = raw[hash + 1 + k];
        if (nflags > 3 || memchr(raw + hash + 1, f, k) != NULL) {
            fail(p, tok, "Invalid regular expression flags");
            return NULL;
        }
        e->u.regexp.flags[k] = f;
    }
    return e;
}

/* chevron -> "<<" (CHEVRON-STRING | "#{" expression "}")* ">>" */
static struct ast_expr *
chevron(struct parser *p, const struct lex_token *open)
{
    struct vec parts = {0};
    int h = 0;
    while (!p->failed) {
        const struct lex_token *tok = cur(p);
        if (tok->kind == LEX_CHEVRON_STRING) {
            struct ast_expr *s = new_expr(p, AST_STRING, tok_pos(tok));
            struct ast_str str;
            str.s = p->src + tok->off;
            str.len = tok->len;
            replace_all(p, &str, "\\>", ">");
            replace_all(p, &str, "\\#{", "#{");
            replace_all(p, &str, "\\\\", "\\");
            s->u.string = mkstr(p, str.s, str.len);
            *(struct ast_expr **)vec_push(p, &parts, sizeof s) = s;
            advance(p);
        } else if (tok->kind == LEX_BEESTING_OPEN) {
            advance(p);
            struct ast_expr *e = expression(p, 0, NULL);
            if (e == NULL)
                return NULL;
            h = max_int(h, height(e));
            *(struct ast_expr **)vec_push(p, &parts, sizeof e) = e;
            if (cur(p)->kind != LEX_BEESTING_CLOSE) {
                expected(p, "}");
                return NULL;
            }
            advance(p);
        } else {
            break;
        }
    }
    if (p->failed)
        return NULL;
    if (cur(p)->kind != LEX_CHEVRON_CLOSE) {
        expected(p, ">>");
        return NULL;
    }
    advance(p);
    struct ast_expr *e = new_expr(p, AST_CHEVRON, tok_pos(open));
    e->u.chevron.parts = parts.items;
    e->u.chevron.n_parts = parts.n;
    return set_height(p, e, h);
}

/* map -> "{" [STRING ":" expression ("," STRING ":" expression)* [","]] "}" */
static struct ast_expr *
map_literal(struct parser *p, const struct lex_token *open)
{
    struct vec keys = {0}, values = {0};
    int h = 0;
    while (!p->failed && !is_punct(cur(p), LEX_P_RBRACE)) {
        const struct lex_token *tok = cur(p);
        if (tok->kind != LEX_STRING) {
            fail(p, tok, "Expected String");
            return NULL;
        }
        advance(p);
        struct ast_expr *key = string_node(p, tok);
        if (!expect_punct(p, LEX_P_COLON))
            return NULL;
        struct ast_expr *val = expression(p, 0, NULL);
        if (val == NULL)
            return NULL;
        h = max_int(h, height(val));
        *(struct ast_str *)vec_push(p, &keys, sizeof key->u.string) =
            key->u.string;
        *(struct ast_expr **)vec_push(p, &values, sizeof val) = val;
        if (!is_punct(cur(p), LEX_P_COMMA))
            break;
        advance(p);
    }
    if (!expect_punct(p, LEX_P_RBRACE))
        return NULL;
    struct ast_expr *e = new_expr(p, AST_MAP, tok_pos(open));
    e->u.map.keys = keys.items;
    e->u.map.values = values.items;
    e->u.map.n = keys.n;
    return set_height(p, e, h);
}

/* array -> "[" [expression ("," expression)* [","]] "]" */
static struct ast_expr *
array_literal(struct parser *p, const struct lex_token *open)
{
    struct vec items = {0};
    int h = 0;
    while (!p->failed && !is_punct(cur(p), LEX_P_RBRACKET)) {
        struct ast_expr *val = expression(p, 0, NULL);
        if (val == NULL)
            return NULL;
        h = max_int(h, height(val));
        *(struct ast_expr **)vec_push(p, &items, sizeof val) = val;
        if (!is_punct(cur(p), LEX_P_COMMA))
            break;
        advance(p);
    }
    if (!expect_punct(p, LEX_P_RBRACKET))
        return NULL;
    struct ast_expr *e = new_expr(p, AST_ARRAY, tok_pos(open));
    e->u.list.items = items.items;
    e->u.list.n_items = items.n;
    return set_height(p, e, h);
}

/* function -> "function" parameters "{" declaration_list ["return"]
 *             expression [";"] "}" */
static struct ast_expr *
function_literal(struct parser *p, const struct lex_token *kw)
{
    struct ast_expr *e = new_expr(p, AST_FUNCTION, tok_pos(kw));
    int h;
    if (!parameters(p, &e->u.function.params, &e->u.function.n_params, &h))
        return NULL;
    if (!expect_punct(p, LEX_P_LBRACE))
        return NULL;
    if (!declaration_list(p, &e->u.function.decls, &e->u.function.n_decls))
        return NULL;
    accept_sym(p, "return");
    e->u.function.result =
        expression(p, 0, "Expected the function return expression");
    if (e->u.function.result == NULL)
        return NULL;
    accept_punct(p, LEX_P_SEMI);
    if (!expect_punct(p, LEX_P_RBRACE))
        return NULL;
    h = max_int(h, decls_height(e->u.function.decls, e->u.function.n_decls));
    h = max_int(h, height(e->u.function.result));
    return set_height(p, e, h);
}

static int
block_height(const struct ast_action_block *b)
{
    int h = max_int(height(b->cond), height(b->choose));
    for (size_t k = 0; k < b->n_actions; k++)
        h = max_int(h, args_height(b->actions[k].args, b->actions[k].n_args));
    return h;
}

/* defaction -> "defaction" parameters "{" declaration_list action_block
 *              ["return" expression [";"]] "}" */
static struct ast_expr *
defaction_literal(struct parser *p, const struct lex_token *kw)
{
    struct ast_expr *e = new_expr(p, AST_DEFACTION, tok_pos(kw));
    int h;
    if (!parameters(p, &e->u.defaction.params, &e->u.defaction.n_params, &h))
        return NULL;
    if (!expect_punct(p, LEX_P_LBRACE))
        return NULL;
    if (!declaration_list(p, &e->u.defaction.decls,
                          &e->u.defaction.n_decls))
        return NULL;
    e->u.defaction.actions = action_block(p);
    if (e->u.defaction.actions == NULL)
        return NULL;
    h = max_int(h, decls_height(e->u.defaction.decls,
                                e->u.defaction.n_decls));
    h = max_int(h, block_height(e->u.defaction.actions));
    if (accept_punct(p, LEX_P_RBRACE))
        return set_height(p, e, h);
    if (accept_sym(p, "returns")) {
        fail(p, cur(p), "defaction can only return one value");
        return NULL;
    }
    if (!expect_sym(p, "return"))
        return NULL;
    struct ast_expr *r = expression(p, 0, NULL);
    if (r == NULL)
        return NULL;
    if (is_punct(cur(p), LEX_P_COMMA)) {
        fail(p, cur(p), "defaction can only return one value");
        return NULL;
    }
    accept_punct(p, LEX_P_SEMI);
    if (!expect_punct(p, LEX_P_RBRACE))
        return NULL;
    e->u.defaction.returns = arena_alloc(p->a, sizeof r);
    e->u.defaction.returns[0] = r;
    e->u.defaction.n_returns = 1;
    return set_height(p, e, max_int(h, height(r)));
}

/* ---------------------------------------------------------------- */
/* Expressions (Pratt)                                               */

static int
lbp(const struct parser *p, const struct lex_token *tok)
{
    if (tok->kind == LEX_SYMBOL)
        return is_sym(p, tok, "like") || is_sym(p, tok, "cmp") ? 40 : 0;
    if (tok->kind != LEX_PUNCT)
        return 0;
    switch (tok->punct) {
    case LEX_P_LPAREN:
        return 90;
    case LEX_P_DOT: case LEX_P_LBRACE: case LEX_P_LBRACKET:
        return 80;
    case LEX_P_STAR: case LEX_P_SLASH: case LEX_P_PERCENT:
        return 60;
    case LEX_P_PLUS: case LEX_P_MINUS:
        return 50;
    case LEX_P_EQEQ: case LEX_P_NE: case LEX_P_LT: case LEX_P_LE:
    case LEX_P_GT: case LEX_P_GE: case LEX_P_CONTAINS: case LEX_P_CMP:
        return 40;
    case LEX_P_ANDAND:
        return 30;
    case LEX_P_OROR:
        return 20;
    case LEX_P_ARROW:
        return 10;
    default:
        return 0;
    }
}

static struct ast_expr *
prefix(struct parser *p, const struct lex_token *op, enum ast_unop unop)
{
    struct ast_expr *operand = expression(p, 70, NULL);
    if (operand == NULL)
        return NULL;
    struct ast_expr *e = new_expr(p, AST_UNARY, tok_pos(op));
    e->u.unary.op = unop;
    e->u.unary.operand = operand;
    return set_height(p, e, height(operand));
}

/* nud - the expression that starts with the current token */
static struct ast_expr *
nud(struct parser *p, const char *errmsg)
{
    const struct lex_token *tok = cur(p);
    struct ast_expr *e;

    switch (tok->kind) {
    case LEX_NUMBER:
        advance(p);
        return number_node(p, tok);
    case LEX_STRING:
        advance(p);
        return string_node(p, tok);
    case LEX_REGEXP:
        advance(p);
        return regexp_node(p, tok);
    case LEX_CHEVRON_OPEN:
        advance(p);
        return chevron(p, tok);
    case LEX_PUNCT:
        switch (tok->punct) {
        case LEX_P_LPAREN:
            advance(p);
            e = expression(p, 0, NULL);
            if (e == NULL || !expect_punct(p, LEX_P_RPAREN))
                return NULL;
            return e;
        case LEX_P_LBRACKET:
            advance(p);
            return array_literal(p, tok);
        case LEX_P_LBRACE:
            advance(p);
            return map_literal(p, tok);
        case LEX_P_MINUS:
            advance(p);
            return prefix(p, tok, AST_NEG);
        case LEX_P_PLUS:
            advance(p);
            return prefix(p, tok, AST_PLUS);
        default:
            break;
        }
        break;
    case LEX_SYMBOL:
        if (sym_in(p, tok, operator_words))
            break;
        advance(p);
        if (p->failed)
            return NULL;
        if (tok_eq(p, tok, "function"))
            return function_literal(p, tok);
        if (tok_eq(p, tok, "defaction"))
            return defaction_literal(p, tok);
        if (tok_eq(p, tok, "not"))
            return prefix(p, tok, AST_NOT);
        if (tok_eq(p, tok, "null"))
            return new_expr(p, AST_NULL, tok_pos(tok));
        if (tok_eq(p, tok, "true") || tok_eq(p, tok, "false")) {
            e = new_expr(p, AST_BOOL, tok_pos(tok));
            e->u.boolean = tok_eq(p, tok, "true");
            return e;
        }
        if (is_reserved(p, tok)) {
            fail(p, tok, "Reserved word");
            return NULL;
        }
        if (accept_punct(p, LEX_P_COLON)) {
            e = new_expr(p, AST_DOMAIN_IDENT, tok_pos(tok));
            e->u.dident.domain = tok_str(p, tok);
            if (!identifier(p, &e->u.dident.name, NULL))
                return NULL;
            return e;
        }
        if (p->failed)
            return NULL;
        e = new_expr(p, AST_IDENT, tok_pos(tok));
        e->u.ident.name = tok_str(p, tok);
        return e;
    default:
        break;
    }
    fail(p, tok, errmsg != NULL ? errmsg : "Expected an expression");
    return NULL;
}

static bool
binop_of(const struct parser *p, const struct lex_token *tok,
         enum ast_binop *op)
{
    if (tok->kind == LEX_SYMBOL) {
        if (is_sym(p, tok, "like"))
            *op = AST_LIKE;
        else if (is_sym(p, tok, "cmp"))
            *op = AST_CMP;
        else
            return false;
        return true;
    }
    switch (tok->punct) {
    case LEX_P_OROR: *op = AST_OR; return true;
    case LEX_P_ANDAND: *op = AST_AND; return true;
    case LEX_P_EQEQ: *op = AST_EQ; return true;
    case LEX_P_NE: *op = AST_NE; return true;
    case LEX_P_LT: *op = AST_LT; return true;
    case LEX_P_LE: *op = AST_LE; return true;
    case LEX_P_GT: *op = AST_GT; return true;
    case LEX_P_GE: *op = AST_GE; return true;
    case LEX_P_CONTAINS: *op = AST_CONTAINS; return true;
    case LEX_P_CMP: *op = AST_COMPARE; return true;
    case LEX_P_PLUS: *op = AST_ADD; return true;
    case LEX_P_MINUS: *op = AST_SUB; return true;
    case LEX_P_STAR: *op = AST_MUL; return true;
    case LEX_P_SLASH: *op = AST_DIV; return true;
    case LEX_P_PERCENT: *op = AST_MOD; return true;
    default: return false;
    }
}

/* call - CALLEE "(" arguments_base; a dot callee x.f becomes f(x, ...) */
static struct ast_expr *
call(struct parser *p, struct ast_expr *callee, struct ast_expr *object,
     struct ast_pos pos)
{
    struct vec args = {0};
    if (object != NULL) {
        struct ast_arg *self = vec_push(p, &args, sizeof *self);
        self->pos = object->pos;
        self->value = object;
    }
    if (!arguments_base(p, &args))
        return NULL;
    struct ast_expr *e = new_expr(p, AST_CALL, pos);
    e->u.call.callee = callee;
    e->u.call.args = args.items;
    e->u.call.n_args = args.n;
    e->u.call.is_dot_call = object != NULL;
    return set_height(p, e, max_int(height(callee),
                                    args_height(args.items, args.n)));
}

/* led - continue LEFT with the operator OP (already consumed) */
static struct ast_expr *
led(struct parser *p, const struct lex_token *op, struct ast_expr *left)
{
    struct ast_expr *e, *r;
    enum ast_binop bop;

    if (op->kind == LEX_PUNCT) {
        switch (op->punct) {
        case LEX_P_DOT: {
            struct ast_expr *prop = ident_or_domain_ident(p);
            if (prop == NULL)
                return NULL;
            if (prop->kind == AST_DOMAIN_IDENT) {
                /* x.mod:f(...) only makes sense as a call */
                if (!expect_punct(p, LEX_P_LPAREN))
                    return NULL;
                return call(p, prop, left, left->pos);
            }
            e = new_expr(p, AST_DOT, left->pos);
            e->u.dot.object = left;
            e->u.dot.name = prop->u.ident.name;
            return set_height(p, e, height(left));
        }
        case LEX_P_LPAREN:
            if (left->kind == AST_DOT) {
                struct ast_expr *f = new_expr(p, AST_IDENT, left->pos);
                f->u.ident.name = left->u.dot.name;
                return call(p, f, left->u.dot.object, left->pos);
            }
            return call(p, left, NULL, left->pos);
        case LEX_P_LBRACKET:
        case LEX_P_LBRACE:
            r = expression(p, 0, NULL);
            if (r == NULL)
                return NULL;
            if (!expect_punct(p, op->punct == LEX_P_LBRACE ? LEX_P_RBRACE
                                                           : LEX_P_RBRACKET))
                return NULL;
            e = new_expr(p, op->punct == LEX_P_LBRACE ? AST_PATH : AST_INDEX,
                         left->pos);
            e->u.member.object = left;
            e->u.member.key = r;
            return set_height(p, e, max_int(height(left), height(r)));
        case LEX_P_ARROW: {
            struct ast_expr *then = expression(p, 10, NULL);
            if (then == NULL || !expect_punct(p, LEX_P_PIPE))
                return NULL;
            struct ast_expr *otherwise = expression(p, 0, NULL);
            if (otherwise == NULL)
                return NULL;
            e = new_expr(p, AST_TERNARY, left->pos);
            e->u.ternary.cond = left;
            e->u.ternary.then = then;
            e->u.ternary.otherwise = otherwise;
            return set_height(p, e, max_int(height(left),
                                            max_int(height(then),
                                                    height(otherwise))));
        }
        default:
            break;
        }
    }
    if (!binop_of(p, op, &bop)) {
        fail(p, op, "Expected an expression");
        return NULL;
    }
    r = expression(p, lbp(p, op), NULL);
    if (r == NULL)
        return NULL;
    e = new_expr(p, AST_BINARY, left->pos);
    e->u.binary.op = bop;
    e->u.binary.left = left;
    e->u.binary.right = r;
    return set_height(p, e, max_int(height(left), height(r)));
}

/* expression -> nud led*   while the next operator binds tighter than RBP */
static struct ast_expr *
expression(struct parser *p, int rbp, const char *errmsg)
{
    if (p->failed)
        return NULL;
    if (p->depth >= PARSE_MAX_DEPTH) {
        fail(p, cur(p), "Nesting too deep");
        return NULL;
    }
    p->depth++;
    struct ast_expr *left = nud(p, errmsg);
    while (left != NULL && !p->failed && rbp < lbp(p, cur(p))) {
        const struct lex_token *op = cur(p);
        advance(p);
        if (p->failed)
            break;
        left = led(p, op, left);
    }
    p->depth--;
    return p->failed ? NULL : left;
}

/* ---------------------------------------------------------------- */
/* Event expressions                                                 */

static int
event_lbp(const struct parser *p, const struct lex_token *tok)
{
    if (tok->kind != LEX_SYMBOL)
        return 0;
    if (tok_eq(p, tok, "or"))
        return 20;
    if (tok_eq(p, tok, "and"))
        return 30;
    if (tok_eq(p, tok, "before") || tok_eq(p, tok, "then") ||
        tok_eq(p, tok, "after"))
        return 40;
    if (tok_eq(p, tok, "between") || tok_eq(p, tok, "not"))
        return 50;
    return 0;
}

/* positive_integer -> NUMBER made of digits only */
static struct ast_expr *
positive_integer(struct parser *p)
{
    const struct lex_token *tok = cur(p);
    if (p->failed)
        return NULL;
    if (tok->kind != LEX_NUMBER ||
        memchr(p->src + tok->off, '.', tok->len) != NULL) {
        fail(p, tok, "Expected a positive integer");
        return NULL;
    }
    advance(p);
    return number_node(p, tok);
}

/* event_primitive -> DOMAIN [":"] TYPE (ATTR REGEXP)* [where expression]
 *                    [setting "(" ids ")"] [where expression]
 * (the first "where" is the deprecated order) */
static struct ast_ee *
event_primitive(struct parser *p, const struct lex_token *domain)
{
    struct ast_ee *ee = new_ee(p, AST_EE_PRIM, tok_pos(domain));
    struct vec matches = {0};
    int h = 0;

    ee->domain = tok_str(p, domain);
    bool colon = accept_punct(p, LEX_P_COLON);
    if (!word(p, colon ? "a bare word for the event type" : "`:`",
              &ee->type, NULL))
        return NULL;
    for (;;) {
        const struct lex_token *next = lookahead(p, 1);
        if (p->failed)
            return NULL;
        if (cur(p)->kind != LEX_SYMBOL || next->kind != LEX_REGEXP)
            break;
        struct ast_attr_match *m = vec_push(p, &matches, sizeof *m);
        if (!word(p, "Attribute", &m->attr, &m->pos))
            return NULL;
        const struct lex_token *retok = cur(p);
        m->regexp = expression(p, 0, NULL);
        if (m->regexp == NULL)
            return NULL;
        if (m->regexp->kind != AST_REGEXP) {
            fail(p, retok, "Expected a regular expression");
            return NULL;
        }
    }
    ee->matches = matches.items;
    ee->n_matches = matches.n;
    if (accept_sym(p, "where")) {
        ee->where = expression(p, 0, NULL);
        if (ee->where == NULL)
            return NULL;
    }
    if (accept_sym(p, "setting")) {
        if (!expect_punct(p, LEX_P_LPAREN) ||
            !identifier_list(p, &ee->setting, NULL, &ee->n_setting) ||
            !expect_punct(p, LEX_P_RPAREN))
            return NULL;
    }
    if (ee->where == NULL && accept_sym(p, "where")) {
        ee->where = expression(p, 0, NULL);
        if (ee->where == NULL)
            return NULL;
    }
    if (p->failed)
        return NULL;
    h = height(ee->where);
    return set_ee_height(p, ee, h);
}

/* variadic -> "(" event_expression ("," event_expression)* ")" */
static struct ast_ee *
event_variadic(struct parser *p, struct ast_ee *ee)
{
    struct vec items = {0};
    int h = height(ee->n);
    if (!expect_punct(p, LEX_P_LPAREN))
        return NULL;
    do {
        struct ast_ee *item = event_expression(p, 0);
        if (item == NULL)
            return NULL;
        h = max_int(h, ee_height(item));
        *(struct ast_ee **)vec_push(p, &items, sizeof item) = item;
    } while (accept_punct(p, LEX_P_COMMA));
    if (!expect_punct(p, LEX_P_RPAREN))
        return NULL;
    ee->items = items.items;
    ee->n_items = items.n;
    return set_ee_height(p, ee, h);
}

/* group -> ("count" | "repeat") N "(" event_primitive ")" [AGG "(" ids ")"] */
static struct ast_ee *
event_group(struct parser *p, struct ast_ee *ee)
{
    static const struct {
        const char *name;
        enum ast_agg agg;
    } aggs[] = {
        {"max", AST_AGG_MAX}, {"min", AST_AGG_MIN}, {"sum", AST_AGG_SUM},
        {"avg", AST_AGG_AVG}, {"push", AST_AGG_PUSH},
    };
    ee->n = positive_integer(p);
    if (ee->n == NULL || !expect_punct(p, LEX_P_LPAREN))
        return NULL;
    const struct lex_token *domain = cur(p);
    struct ast_str ignored;
    if (!word(p, "a bare word for the event domain", &ignored, NULL))
        return NULL;
    struct ast_ee *prim = event_primitive(p, domain);
    if (prim == NULL || !expect_punct(p, LEX_P_RPAREN))
        return NULL;
    ee->items = arena_alloc(p->a, sizeof prim);
    ee->items[0] = prim;
    ee->n_items = 1;
    for (size_t k = 0; k < sizeof aggs / sizeof aggs[0]; k++) {
        if (is_sym(p, cur(p), aggs[k].name)) {
            advance(p);
            ee->agg = aggs[k].agg;
            if (!expect_punct(p, LEX_P_LPAREN) ||
                !identifier_list(p, &ee->agg_vars, NULL, &ee->n_agg_vars) ||
                !expect_punct(p, LEX_P_RPAREN))
                return NULL;
            break;
        }
    }
    if (p->failed)
        return NULL;
    return set_ee_height(p, ee, ee_height(prim));
}

static struct ast_ee *
event_nud(struct parser *p)
{
    static const struct {
        const char *name;
        enum ast_ee_kind kind;
    } variadic[] = {
        {"and", AST_EE_AND}, {"or", AST_EE_OR}, {"before", AST_EE_BEFORE},
        {"then", AST_EE_THEN}, {"after", AST_EE_AFTER},
    };
    static const char *const no_event_nud[] = {
        "like", "cmp", "between", "not", "function", "defaction", "true",
        "false", "null", NULL
    };
    const struct lex_token *tok = cur(p);
    struct ast_ee *ee;

    if (is_punct(tok, LEX_P_LPAREN)) {
        advance(p);
        ee = event_expression(p, 0);
        if (ee == NULL || !expect_punct(p, LEX_P_RPAREN))
            return NULL;
        return ee;
    }
    if (tok->kind != LEX_SYMBOL || sym_in(p, tok, no_event_nud)) {
        fail(p, tok, "Expected an event expression");
        return NULL;
    }
    advance(p);
    if (p->failed)
        return NULL;
    for (size_t k = 0; k < sizeof variadic / sizeof variadic[0]; k++) {
        if (tok_eq(p, tok, variadic[k].name))
            return event_variadic(p, new_ee(p, variadic[k].kind,
                                            tok_pos(tok)));
    }
    if (tok_eq(p, tok, "any")) {
        ee = new_ee(p, AST_EE_ANY, tok_pos(tok));
        ee->n = positive_integer(p);
        if (ee->n == NULL)
            return NULL;
        return event_variadic(p, ee);
    }
    if (tok_eq(p, tok, "count"))
        return event_group(p, new_ee(p, AST_EE_COUNT, tok_pos(tok)));
    if (tok_eq(p, tok, "repeat"))
        return event_group(p, new_ee(p, AST_EE_REPEAT, tok_pos(tok)));
    return event_primitive(p, tok);
}

static struct ast_ee *
event_led(struct parser *p, const struct lex_token *op, struct ast_ee *left)
{
    struct ast_ee *ee;
    int h;

    if (tok_eq(p, op, "between") || tok_eq(p, op, "not")) {
        bool negated = tok_eq(p, op, "not");
        if (negated && !expect_sym(p, "between"))
            return NULL;
        if (!expect_punct(p, LEX_P_LPAREN))
            return NULL;
        struct ast_ee *one = event_expression(p, 0);
        if (one == NULL || !expect_punct(p, LEX_P_COMMA))
            return NULL;
        struct ast_ee *two = event_expression(p, 0);
        if (two == NULL || !expect_punct(p, LEX_P_RPAREN))
            return NULL;
        ee = new_ee(p, negated ? AST_EE_NOT_BETWEEN : AST_EE_BETWEEN,
                    left->pos);
        ee->items = arena_allocarray(p->a, 3, sizeof *ee->items);
        ee->items[0] = left;
        ee->items[1] = one;
        ee->items[2] = two;
        ee->n_items = 3;
        h = max_int(ee_height(left), max_int(ee_height(one), ee_height(two)));
        return set_ee_height(p, ee, h);
    }
    enum ast_ee_kind kind;
    if (tok_eq(p, op, "or"))
        kind = AST_EE_OR;
    else if (tok_eq(p, op, "and"))
        kind = AST_EE_AND;
    else if (tok_eq(p, op, "before"))
        kind = AST_EE_BEFORE;
    else if (tok_eq(p, op, "then"))
        kind = AST_EE_THEN;
    else
        kind = AST_EE_AFTER;
    struct ast_ee *right = event_expression(p, event_lbp(p, op));
    if (right == NULL)
        return NULL;
    ee = new_ee(p, kind, left->pos);
    ee->items = arena_allocarray(p->a, 2, sizeof *ee->items);
    ee->items[0] = left;
    ee->items[1] = right;
    ee->n_items = 2;
    return set_ee_height(p, ee, max_int(ee_height(left), ee_height(right)));
}

/* event_expression -> event_nud event_led*   (or 20, and 30,
 * before/then/after 40, between/not between 50) */
static struct ast_ee *
event_expression(struct parser *p, int rbp)
{
    if (p->failed)
        return NULL;
    if (p->depth >= PARSE_MAX_DEPTH) {
        fail(p, cur(p), "Nesting too deep");
        return NULL;
    }
    p->depth++;
    struct ast_ee *left = event_nud(p);
    while (left != NULL && !p->failed && rbp < event_lbp(p, cur(p))) {
        const struct lex_token *op = cur(p);
        advance(p);
        if (p->failed)
            break;
        left = event_led(p, op, left);
    }
    p->depth--;
    return p->failed ? NULL : left;
}

/* ---------------------------------------------------------------- */
/* Actions                                                           */

/* action -> [identifier "=>"] name "(" arguments ")" [setting "(" id ")"]
 *           [";"]       name -> identifier [":" identifier] */
static bool
action(struct parser *p, struct ast_action *act)
{
    act->pos = tok_pos(cur(p));
    act->callee = ident_or_domain_ident(p);
    if (act->callee == NULL)
        return false;
    if (act->callee->kind == AST_IDENT && accept_punct(p, LEX_P_ARROW)) {
        act->label = act->callee->u.ident.name;
        act->callee = ident_or_domain_ident(p);
        if (act->callee == NULL)
            return false;
    }
    if (!expect_punct(p, LEX_P_LPAREN))
        return false;
    struct vec args = {0};
    if (!arguments_base(p, &args))
        return false;
    act->args = args.items;
    act->n_args = args.n;
    if (accept_sym(p, "setting")) {
        act->setting = arena_alloc(p->a, sizeof *act->setting);
        act->n_setting = 1;
        if (!expect_punct(p, LEX_P_LPAREN) ||
            !identifier(p, &act->setting[0], NULL) ||
            !expect_punct(p, LEX_P_RPAREN))
            return false;
    }
    accept_punct(p, LEX_P_SEMI);
    return !p->failed;
}

/* action_list -> "{" action* "}" */
static bool
action_list(struct parser *p, struct ast_action_block *b)
{
    struct vec v = {0};
    if (!expect_punct(p, LEX_P_LBRACE))
        return false;
    while (!p->failed && cur(p)->kind != LEX_EOF &&
           !is_punct(cur(p), LEX_P_RBRACE)) {
        if (!action(p, vec_push(p, &v, sizeof(struct ast_action))))
            return false;
    }
    if (!expect_punct(p, LEX_P_RBRACE))
        return false;
    b->actions = v.items;
    b->n_actions = v.n;
    return true;
}

/* action_block -> ["if" expression "then"]
 *                 ( "every" action_list | "sample" action_list
 *                 | "choose" expression(80) action_list | action ) */
static struct ast_action_block *
action_block(struct parser *p)
{
    struct ast_action_block *b = arena_alloc(p->a, sizeof *b);
    b->pos = tok_pos(cur(p));
    b->kind = AST_BLOCK_EVERY;
    if (accept_sym(p, "if")) {
        b->cond = expression(p, 0, NULL);
        if (b->cond == NULL || !expect_sym(p, "then"))
            return NULL;
    }
    if (p->failed)
        return NULL;
    const struct lex_token *tok = cur(p);
    if (tok->kind == LEX_SYMBOL) {
        if (tok_eq(p, tok, "every") || tok_eq(p, tok, "sample")) {
            b->kind = tok_eq(p, tok, "every") ? AST_BLOCK_EVERY
                                              : AST_BLOCK_SAMPLE;
            advance(p);
            if (!action_list(p, b))
                return NULL;
        } else if (tok_eq(p, tok, "choose")) {
            b->kind = AST_BLOCK_CHOOSE;
            advance(p);
            b->choose = expression(p, 80, NULL);
            if (b->choose == NULL || !action_list(p, b))
                return NULL;
        } else if (!tok_eq(p, tok, "always") && !tok_eq(p, tok, "fired") &&
                   !tok_eq(p, tok, "notfired")) {
            b->kind = AST_BLOCK_SINGLE;
            b->actions = arena_alloc(p->a, sizeof *b->actions);
            b->n_actions = 1;
            if (!action(p, b->actions))
                return NULL;
        }
    }
    if (b->cond != NULL && b->n_actions == 0) {
        if (is_punct(cur(p), LEX_P_LBRACE))
            fail(p, cur(p), "Expected `every`, `sample`, or `choose`");
        else
            fail(p, cur(p), "Expected an action after `if ... then`");
        return NULL;
    }
    return b;
}

/* ---------------------------------------------------------------- */
/* Postludes                                                         */

/* path -> ["{" expression "}"] */
static bool
path_expression(struct parser *p, struct ast_expr **path)
{
    *path = NULL;
    if (!accept_punct(p, LEX_P_LBRACE))
        return !p->failed;
    *path = expression(p, 0, NULL);
    return *path != NULL && expect_punct(p, LEX_P_RBRACE);
}

/* ent_var -> "ent" ":" identifier   (any domain parses; only ent works) */
static bool
ent_var(struct parser *p, struct ast_stmt *s, const char *msg)
{
    struct ast_str domain;
    const struct lex_token *tok = cur(p);
    if (!identifier(p, &domain, NULL) || !expect_punct(p, LEX_P_COLON) ||
        !identifier(p, &s->ent_name, NULL))
        return false;
    if (strcmp(domain.s, "ent") != 0) {
        fail(p, tok, msg);
        return false;
    }
    return true;
}

static bool
log_level(struct parser *p, struct ast_str *level)
{
    static const char *const levels[] = {
        "error", "warn", "info", "debug", NULL
    };
    if (!sym_in(p, cur(p), levels)) {
        fail(p, cur(p), "Expected error or warn or info or debug");
        return false;
    }
    *level = tok_str(p, cur(p));
    advance(p);
    return !p->failed;
}

/* event_target -> "event" expression | identifier "event" expression */
static bool
event_target(struct parser *p, struct ast_stmt *s, bool is_raise)
{
    if (!accept_sym(p, "event")) {
        if (p->failed)
            return false;
        if (is_raise &&
            (cur(p)->kind != LEX_SYMBOL || is_reserved(p, cur(p)))) {
            expected(p, "event");
            return false;
        }
        if (!identifier(p, &s->event_domain, NULL) ||
            !expect_sym(p, "event"))
            return false;
    }
    s->event_type = expression(p, 0, NULL);
    return s->event_type != NULL;
}

/* statement_core -> clear | raise | schedule | log | error | last
 *                 | ent_var [path] ":=" expression | declaration */
static bool
statement_core(struct parser *p, struct ast_stmt *s)
{
    const struct lex_token *tok = cur(p);
    s->pos = tok_pos(tok);
    if (tok->kind == LEX_SYMBOL) {
        if (tok_eq(p, tok, "clear")) {
            s->kind = AST_STMT_CLEAR;
            advance(p);
            return ent_var(p, s, "ClearPersistentVariable only works for "
                                 "`ent:`") &&
                   path_expression(p, &s->ent_path);
        }
        if (tok_eq(p, tok, "raise")) {
            s->kind = AST_STMT_RAISE;
            advance(p);
            if (!event_target(p, s, true))
                return false;
            if (accept_sym(p, "for")) {
                s->for_rid = expression(p, 0, NULL);
                if (s->for_rid == NULL)
                    return false;
            }
            if (accept_sym(p, "attributes")) {
                s->attributes = expression(p, 0, NULL);
                if (s->attributes == NULL)
                    return false;
            }
            return !p->failed;
        }
        if (tok_eq(p, tok, "schedule")) {
            s->kind = AST_STMT_SCHEDULE;
            advance(p);
            if (!event_target(p, s, false))
                return false;
            if (accept_sym(p, "at")) {
                s->at = expression(p, 0, NULL);
            } else if (accept_sym(p, "repeat")) {
                s->repeat = expression(p, 0, NULL);
            } else {
                fail(p, cur(p), "Expected `at` or `repeat`");
                return false;
            }
            if (p->failed)
                return false;
            if (accept_sym(p, "attributes")) {
                s->attributes = expression(p, 0, NULL);
                if (s->attributes == NULL)
                    return false;
            }
            if (accept_sym(p, "setting")) {
                if (!expect_punct(p, LEX_P_LPAREN) ||
                    !identifier(p, &s->setting, NULL) ||
                    !expect_punct(p, LEX_P_RPAREN))
                    return false;
            }
            return !p->failed;
        }
        if (tok_eq(p, tok, "log") || tok_eq(p, tok, "error")) {
            s->kind = tok_eq(p, tok, "log") ? AST_STMT_LOG : AST_STMT_ERROR;
            advance(p);
            if (!log_level(p, &s->level))
                return false;
            s->value = expression(p, 0, NULL);
            return s->value != NULL;
        }
        if (tok_eq(p, tok, "last")) {
            s->kind = AST_STMT_LAST;
            advance(p);
            return !p->failed;
        }
        const struct lex_token *colon = lookahead(p, 1);
        const struct lex_token *name = lookahead(p, 2);
        if (p->failed)
            return false;
        if (is_punct(colon, LEX_P_COLON) && name->kind == LEX_SYMBOL) {
            s->kind = AST_STMT_ENT_SET;
            if (!ent_var(p, s, "PersistentVariableAssignment - only works "
                               "on ent:* variables") ||
                !path_expression(p, &s->ent_path) ||
                !expect_punct(p, LEX_P_ASSIGN))
                return false;
            s->value = expression(p, 0, NULL);
            return s->value != NULL;
        }
    }
    s->kind = AST_STMT_DECL;
    return declaration(p, &s->decl);
}

/* statement -> statement_core ["on" "final" | "if" expression] */
static bool
statement(struct parser *p, struct ast_stmt *s)
{
    if (!statement_core(p, s))
        return false;
    const struct lex_token *next = lookahead(p, 1);
    if (p->failed)
        return false;
    if (is_sym(p, cur(p), "on") && is_sym(p, next, "final")) {
        advance(p);
        advance(p);
        s->guard = AST_GUARD_ON_FINAL;
        return !p->failed;
    }
    if (accept_sym(p, "if")) {
        s->guard = AST_GUARD_IF;
        s->guard_expr = expression(p, 0, NULL);
        return s->guard_expr != NULL;
    }
    return !p->failed;
}

/* statements -> "{" (statement [";"])* "}" */
static bool
statements(struct parser *p, struct ast_stmt **stmts, size_t *n)
{
    struct vec v = {0};
    if (!expect_punct(p, LEX_P_LBRACE))
        return false;
    while (!p->failed && cur(p)->kind != LEX_EOF &&
           !is_punct(cur(p), LEX_P_RBRACE)) {
        if (!statement(p, vec_push(p, &v, sizeof(struct ast_stmt))))
            return false;
        accept_punct(p, LEX_P_SEMI);
    }
    if (!expect_punct(p, LEX_P_RBRACE))
        return false;
    *stmts = v.items;
    *n = v.n;
    return true;
}

/* postlude -> "always" stmts
 *           | ("fired" | "notfired") stmts ["else" stmts] ["finally" stmts] */
static bool
postlude(struct parser *p, struct ast_postlude *post)
{
    const struct lex_token *tok = cur(p);
    post->pos = tok_pos(tok);
    if (accept_sym(p, "always")) {
        post->kind = AST_POST_ALWAYS;
        return statements(p, &post->stmts, &post->n_stmts);
    }
    if (is_sym(p, tok, "fired") || is_sym(p, tok, "notfired")) {
        post->kind = tok_eq(p, tok, "fired") ? AST_POST_FIRED
                                             : AST_POST_NOTFIRED;
        advance(p);
        if (!statements(p, &post->stmts, &post->n_stmts))
            return false;
        if (accept_sym(p, "else") &&
            !statements(p, &post->else_stmts, &post->n_else))
            return false;
        if (accept_sym(p, "finally") &&
            !statements(p, &post->finally_stmts, &post->n_finally))
            return false;
    }
    return !p->failed;
}

/* ---------------------------------------------------------------- */
/* Rules                                                             */

static const struct {
    const char *name;
    enum ast_period period;
} periods[] = {
    {"day", AST_PERIOD_DAYS}, {"days", AST_PERIOD_DAYS},
    {"hour", AST_PERIOD_HOURS}, {"hours", AST_PERIOD_HOURS},
    {"minute", AST_PERIOD_MINUTES}, {"minutes", AST_PERIOD_MINUTES},
    {"month", AST_PERIOD_MONTHS}, {"months", AST_PERIOD_MONTHS},
    {"second", AST_PERIOD_SECONDS}, {"seconds", AST_PERIOD_SECONDS},
    {"week", AST_PERIOD_WEEKS}, {"weeks", AST_PERIOD_WEEKS},
    {"year", AST_PERIOD_YEARS}, {"years", AST_PERIOD_YEARS},
};

/* select -> "select" ("when" event_expression [within]
 *                    | "where" expression)
 * within -> "within" expression PERIOD */
static bool
rule_select(struct parser *p, struct ast_rule *r)
{
    r->has_select = true;
    if (accept_sym(p, "where")) {
        r->select_where = expression(p, 0, NULL);
        return r->select_where != NULL;
    }
    if (!accept_sym(p, "when")) {
        if (!p->failed)
            fail(p, cur(p), "Expected `when` or `where`");
        return false;
    }
    r->select_when = event_expression(p, 0);
    if (r->select_when == NULL)
        return false;
    if (!accept_sym(p, "within"))
        return !p->failed;
    r->within = expression(p, 0, NULL);
    if (r->within == NULL)
        return false;
    for (size_t k = 0; k < sizeof periods / sizeof periods[0]; k++) {
        if (is_sym(p, cur(p), periods[k].name)) {
            r->within_period = periods[k].period;
            advance(p);
            return !p->failed;
        }
    }
    fail(p, cur(p), "Expected time period: [day,days,hour,hours,minute,"
                    "minutes,month,months,second,seconds,week,weeks,year,"
                    "years]");
    return false;
}

/* foreach -> "foreach" expression "setting" "(" id ["," id] ")" */
static bool
rule_foreach(struct parser *p, struct ast_foreach *f)
{
    f->collection = expression(p, 0, NULL);
    if (f->collection == NULL || !expect_sym(p, "setting") ||
        !expect_punct(p, LEX_P_LPAREN) ||
        !identifier(p, &f->value_var, NULL))
        return false;
    if (accept_punct(p, LEX_P_COMMA) && !identifier(p, &f->key_var, NULL))
        return false;
    return expect_punct(p, LEX_P_RPAREN);
}

/* rule -> "rule" identifier ["is" ("active" | "inactive")] "{" [select]
 *         foreach* ["pre" "{" declaration_list "}"] [action_block]
 *         [postlude] "}" */
static bool
rule(struct parser *p, struct ast_rule *r)
{
    r->pos = tok_pos(cur(p));
    advance(p);
    if (!identifier(p, &r->name, NULL))
        return false;
    if (accept_sym(p, "is")) {
        if (is_sym(p, cur(p), "active") || is_sym(p, cur(p), "inactive")) {
            r->inactive = is_sym(p, cur(p), "inactive");
            advance(p);
        } else {
            fail(p, cur(p), "Expected active and inactive");
        }
    }
    if (!expect_punct(p, LEX_P_LBRACE))
        return false;
    if (accept_sym(p, "select") && !rule_select(p, r))
        return false;

    struct vec fe = {0};
    while (is_sym(p, cur(p), "foreach") && !p->failed) {
        struct ast_foreach *f = vec_push(p, &fe, sizeof *f);
        f->pos = tok_pos(cur(p));
        advance(p);
        if (!rule_foreach(p, f))
            return false;
    }
    r->foreach = fe.items;
    r->n_foreach = fe.n;

    if (accept_sym(p, "pre")) {
        if (!expect_punct(p, LEX_P_LBRACE) ||
            !declaration_list(p, &r->pre, &r->n_pre))
            return false;
        if (!accept_punct(p, LEX_P_RBRACE)) {
            fail(p, cur(p), "Expected a declaration");
            return false;
        }
    }
    if (p->failed)
        return false;

    static const char *const postlude_words[] = {
        "fired", "notfired", "else", "finally", "always", NULL
    };
    if (cur(p)->kind == LEX_SYMBOL && !sym_in(p, cur(p), postlude_words)) {
        r->actions = action_block(p);
        if (r->actions == NULL)
            return false;
    }
    if (!postlude(p, &r->postlude))
        return false;
    return expect_punct(p, LEX_P_RBRACE);
}

/* ---------------------------------------------------------------- */
/* Rulesets                                                          */

/* rid -> SYMBOL (("." | "-") SYMBOL)*   with no space in between */
static bool
ruleset_id(struct parser *p, struct ast_str *rid, struct ast_pos *pos)
{
    const struct lex_token *tok = cur(p);
    if (p->failed)
        return false;
    if (tok->kind != LEX_SYMBOL) {
        fail(p, tok, "Expected RulesetID");
        return false;
    }
    if (pos != NULL)
        *pos = tok_pos(tok);
    size_t start = tok->off, end = tok->off + tok->len;
    for (;;) {
        const struct lex_token *sep = &p->toks.items[p->i + 1];
        if (sep->off != end || !(is_punct(sep, LEX_P_DOT) ||
                                 is_punct(sep, LEX_P_MINUS)))
            break;
        const struct lex_token *next = &p->toks.items[p->i + 2];
        if (next->off != end + 1 || next->kind != LEX_SYMBOL) {
            struct buf b;
            buf_init(&b);
            buf_printf(&b, "RulesetID cannot end with a `%s`\nValid ruleset "
                       "IDs are reverse domain name. i.e. "
                       "`io.picolabs.some.cool.name`",
                       lex_punct_text(sep->punct));
            if (next->off == end + 1)
                fail(p, next, b.data);
            else
                fail_at(p, sep->line, sep->col + 1, b.data);
            buf_release(&b);
            return false;
        }
        p->i += 2;
        end = next->off + next->len;
    }
    *rid = mkstr(p, p->src + start, end - start);
    advance(p);
    return !p->failed;
}

static bool
meta_once(struct parser *p, const struct lex_token *key, bool seen)
{
    if (!seen)
        return true;
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "only 1 meta.%.*s allowed", (int)key->len,
               p->src + key->off);
    fail(p, key, b.data);
    buf_release(&b);
    return false;
}

static void
unsupported_meta(struct parser *p, const struct lex_token *key,
                 const char *what)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "RulesetMetaProperty not supported: %s", what);
    fail(p, key, b.data);
    buf_release(&b);
}

/* Lists of the meta block, collected across repeated properties. */
struct meta_lists {
    struct vec uses;            /* struct ast_use */
    struct vec configure;       /* struct ast_decl */
    struct vec provides;        /* struct ast_str */
    struct vec provides_pos;    /* struct ast_pos */
    struct vec shares;
    struct vec shares_pos;
};

static void
push_all(struct parser *p, struct vec *v, const void *items, size_t n,
         size_t size)
{
    for (size_t k = 0; k < n; k++)
        memcpy(vec_push(p, v, size), (const char *)items + k * size, size);
}

/* use -> "module" rid ["alias" identifier]
 *        ["with" declaration (["and"] declaration)*] */
static bool
meta_use(struct parser *p, struct meta_lists *ml, const struct lex_token *key)
{
    struct ast_use u;
    memset(&u, 0, sizeof u);
    u.pos = tok_pos(key);
    if (!expect_sym(p, "module") || !ruleset_id(p, &u.rid, NULL))
        return false;
    if (accept_sym(p, "alias") && !identifier(p, &u.alias, NULL))
        return false;
    if (accept_sym(p, "with")) {
        struct vec v = {0};
        bool saw_and = false;
        for (;;) {
            if (!saw_and) {
                if (cur(p)->kind != LEX_SYMBOL || is_reserved(p, cur(p)))
                    break;
                const struct lex_token *next = lookahead(p, 1);
                if (p->failed)
                    return false;
                if (!is_punct(next, LEX_P_EQ))
                    break;
            }
            if (!declaration(p, vec_push(p, &v, sizeof(struct ast_decl))))
                return false;
            saw_and = accept_sym(p, "and");
        }
        if (p->failed)
            return false;
        if (v.n == 0) {
            fail(p, cur(p), "Expected declarations after `with`");
            return false;
        }
        u.with = v.items;
        u.n_with = v.n;
    }
    if (p->failed)
        return false;
    push_all(p, &ml->uses, &u, 1, sizeof u);
    return true;
}

/* meta_property -> KEY value   (see the switch); false at the end */
static bool
meta_property(struct parser *p, struct ast_meta *m, struct meta_lists *ml)
{
    const struct lex_token *key = cur(p);
    if (!is_plain_symbol(p, key))
        return false;
    advance(p);
    if (p->failed)
        return false;

    struct ast_expr **slot = NULL;
    if (tok_eq(p, key, "name"))
        slot = &m->name;
    else if (tok_eq(p, key, "description"))
        slot = &m->description;
    else if (tok_eq(p, key, "author"))
        slot = &m->author;
    else if (tok_eq(p, key, "version"))
        slot = &m->version;
    if (slot != NULL) {
        if (!meta_once(p, key, *slot != NULL))
            return false;
        *slot = expression(p, 0, NULL);
        return *slot != NULL;
    }
    if (tok_eq(p, key, "logging")) {
        if (!is_sym(p, cur(p), "on") && !is_sym(p, cur(p), "off")) {
            fail(p, cur(p), "Expected `on` or `off`");
            return false;
        }
        if (!meta_once(p, key, m->has_logging))
            return false;
        m->has_logging = true;
        m->logging_on = is_sym(p, cur(p), "on");
        advance(p);
        return !p->failed;
    }
    if (tok_eq(p, key, "key") || tok_eq(p, key, "keys")) {
        /* parsed by the reference, refused by its compiler */
        if (cur(p)->kind != LEX_SYMBOL) {
            fail(p, cur(p), "Expected key name");
            return false;
        }
        advance(p);
        if (expression(p, 0, NULL) != NULL)
            unsupported_meta(p, key, "keys");
        return false;
    }
    if (tok_eq(p, key, "use"))
        return meta_use(p, ml, key);
    if (tok_eq(p, key, "errors")) {
        struct ast_str rid;
        if (expect_sym(p, "to") && ruleset_id(p, &rid, NULL))
            unsupported_meta(p, key, "errors");
        return false;
    }
    if (tok_eq(p, key, "configure")) {
        struct ast_decl *d;
        size_t n;
        if (!expect_sym(p, "using") || !declaration_list(p, &d, &n))
            return false;
        push_all(p, &ml->configure, d, n, sizeof *d);
        return true;
    }
    if (tok_eq(p, key, "provide") || tok_eq(p, key, "provides") ||
        tok_eq(p, key, "share") || tok_eq(p, key, "shares")) {
        bool provides = tok_eq(p, key, "provide") ||
                        tok_eq(p, key, "provides");
        struct ast_str *ids;
        struct ast_pos *pos;
        size_t n;
        if (provides && accept_sym(p, "keys")) {
            struct ast_str rid;
            if (identifier_list(p, &ids, &pos, &n) && expect_sym(p, "to") &&
                ruleset_id(p, &rid, NULL))
                unsupported_meta(p, key, "provides_keys");
            return false;
        }
        if (!identifier_list(p, &ids, &pos, &n))
            return false;
        push_all(p, provides ? &ml->provides : &ml->shares, ids, n,
                 sizeof *ids);
        push_all(p, provides ? &ml->provides_pos : &ml->shares_pos, pos, n,
                 sizeof *pos);
        return true;
    }
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "Unsupported meta key: %.*s", (int)key->len,
               p->src + key->off);
    fail(p, key, b.data);
    buf_release(&b);
    return false;
}

/* ruleset -> "ruleset" rid "{" ["version" STRING] ["meta" "{" prop* "}"]
 *            ["global" "{" declaration_list "}"] rule* "}" */
static struct ast_ruleset *
ruleset(struct parser *p)
{
    struct ast_ruleset *rs = arena_alloc(p->a, sizeof *rs);
    rs->pos = tok_pos(cur(p));
    rs->file = p->file != NULL ? arena_strdup(p->a, p->file) : NULL;
    if (!expect_sym(p, "ruleset") || !ruleset_id(p, &rs->rid, NULL) ||
        !expect_punct(p, LEX_P_LBRACE))
        return NULL;
    if (accept_sym(p, "version")) {
        if (cur(p)->kind != LEX_STRING) {
            fail(p, cur(p), "Expected String");
            return NULL;
        }
        rs->meta.version = expression(p, 0, NULL);
        if (rs->meta.version == NULL)
            return NULL;
    }
    if (accept_sym(p, "meta")) {
        struct meta_lists ml;
        memset(&ml, 0, sizeof ml);
        if (!expect_punct(p, LEX_P_LBRACE))
            return NULL;
        while (meta_property(p, &rs->meta, &ml))
            continue;
        if (!expect_punct(p, LEX_P_RBRACE))
            return NULL;
        rs->meta.uses = ml.uses.items;
        rs->meta.n_uses = ml.uses.n;
        rs->meta.configure = ml.configure.items;
        rs->meta.n_configure = ml.configure.n;
        rs->meta.provides = ml.provides.items;
        rs->meta.provides_pos = ml.provides_pos.items;
        rs->meta.n_provides = ml.provides.n;
        rs->meta.shares = ml.shares.items;
        rs->meta.shares_pos = ml.shares_pos.items;
        rs->meta.n_shares = ml.shares.n;
    }
    if (accept_sym(p, "global")) {
        if (!expect_punct(p, LEX_P_LBRACE) ||
            !declaration_list(p, &rs->globals, &rs->n_globals))
            return NULL;
        if (!accept_punct(p, LEX_P_RBRACE)) {
            fail(p, cur(p), "Expected a declaration");
            return NULL;
        }
    }
    struct vec rules = {0};
    while (!p->failed && is_sym(p, cur(p), "rule")) {
        if (!rule(p, vec_push(p, &rules, sizeof(struct ast_rule))))
            return NULL;
    }
    rs->rules = rules.items;
    rs->n_rules = rules.n;
    if (!expect_punct(p, LEX_P_RBRACE))
        return NULL;
    return rs;
}

/* ---------------------------------------------------------------- */
/* Entry points                                                      */

static void
parser_init(struct parser *p, struct arena *a, const char *file,
            const char *src, size_t len, struct krl_diags *diags)
{
    memset(p, 0, sizeof *p);
    p->a = a;
    p->file = file;
    p->src = src;
    p->diags = diags;
    lex_tokenize(src, len, &p->toks);
    if (cur(p)->kind == LEX_ERROR)
        fail(p, cur(p), cur(p)->msg);
}

/* parser_finish - the whole input must be used; frees the tokens */
static bool
parser_finish(struct parser *p)
{
    if (!p->failed && cur(p)->kind != LEX_EOF)
        expected(p, "(end)");
    lex_tokens_release(&p->toks);
    return !p->failed;
}

struct ast_ruleset *
parse_ruleset(struct arena *a, const char *file, const char *src, size_t len,
              struct krl_diags *diags)
{
    struct parser p;
    parser_init(&p, a, file, src, len, diags);
    struct ast_ruleset *rs = p.failed ? NULL : ruleset(&p);
    if (!parser_finish(&p))
        return NULL;
    return rs;
}

struct ast_expr *
parse_body(struct arena *a, const char *file, const char *src, size_t len,
           struct krl_diags *diags)
{
    struct parser p;
    parser_init(&p, a, file, src, len, diags);
    struct ast_expr *e = NULL;
    if (!p.failed) {
        e = new_expr(&p, AST_FUNCTION, tok_pos(cur(&p)));
        if (declaration_list(&p, &e->u.function.decls,
                             &e->u.function.n_decls)) {
            accept_sym(&p, "return");
            e->u.function.result =
                expression(&p, 0, "Expected the function return expression");
            accept_punct(&p, LEX_P_SEMI);
        }
        if (!p.failed) {
            int h = max_int(decls_height(e->u.function.decls,
                                         e->u.function.n_decls),
                            height(e->u.function.result));
            e = set_height(&p, e, h);
        }
    }
    if (!parser_finish(&p))
        return NULL;
    return e;
}
