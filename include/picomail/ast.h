/*
 * ast.h - the syntax tree of a KRL ruleset (or of a lone expression).
 *
 * The parser builds the tree in one arena: every node, array and string
 * below lives in the arena passed to parse_ruleset()/parse_expression() and
 * dies with it.  Strings are NUL-terminated with an explicit length (a KRL
 * string may contain NUL).  Arrays are a pointer plus a count.  Every node
 * carries the line and column (1-based, columns in bytes) where it starts.
 *
 * The resolver (resolve.c) later fills the fields marked "resolver" and
 * may attach kval constants (released by an arena cleanup hook); the
 * parser leaves them zero.
 */
#ifndef PICOMAIL_AST_H
#define PICOMAIL_AST_H

#include <stdbool.h>
#include <stddef.h>

struct ast_pos {
    int line;
    int col;
};

struct ast_str {
    const char *s;              /* NUL-terminated, in the arena */
    size_t len;
};

struct ast_expr;
struct ast_decl;
struct ast_action_block;

/* ---------------------------------------------------------------- */
/* Expressions                                                       */

enum ast_expr_kind {
    AST_NULL,                   /* null */
    AST_BOOL,                   /* true, false:          u.boolean */
    AST_NUMBER,                 /* 1, 2.5, .5:           u.number */
    AST_STRING,                 /* "..." (escapes done): u.string */
    AST_REGEXP,                 /* re#...#gi:            u.regexp */
    AST_CHEVRON,                /* << a #{e} b >>:       u.chevron */
    AST_ARRAY,                  /* [a, b]:               u.list */
    AST_MAP,                    /* {"k": v}:             u.map */
    AST_IDENT,                  /* x:                    u.ident */
    AST_DOMAIN_IDENT,           /* ent:x, event:attrs, time:now: u.dident */
    AST_CALL,                   /* f(a, b = c), x.f(a):  u.call */
    AST_DOT,                    /* x.name (no call):     u.dot */
    AST_PATH,                   /* x{e}:                 u.member */
    AST_INDEX,                  /* x[e]:                 u.member */
    AST_UNARY,                  /* -x, +x, not x:        u.unary */
    AST_BINARY,                 /* a op b:               u.binary */
    AST_TERNARY,                /* c => a | b:           u.ternary */
    AST_FUNCTION,               /* function(p) {...}:    u.function */
    AST_DEFACTION               /* defaction(p) {...}:   u.defaction */
};

enum ast_unop {
    AST_NEG,                    /* - */
    AST_PLUS,                   /* + */
    AST_NOT                     /* not */
};

enum ast_binop {
    AST_OR,                     /* ||  (short-circuit, returns an operand) */
    AST_AND,                    /* &&  (short-circuit, returns an operand) */
    AST_EQ, AST_NE,             /* == != */
    AST_LT, AST_LE, AST_GT, AST_GE,     /* < <= > >= */
    AST_LIKE,                   /* like */
    AST_CONTAINS,               /* >< */
    AST_COMPARE,                /* <=> */
    AST_CMP,                    /* cmp */
    AST_ADD, AST_SUB,           /* + - */
    AST_MUL, AST_DIV, AST_MOD   /* * / % */
};

struct ast_arg {
    struct ast_pos pos;
    struct ast_str name;        /* named argument "x = e"; s == NULL if
                                   positional */
    struct ast_expr *value;
};

struct ast_param {
    struct ast_pos pos;
    struct ast_str name;
    struct ast_expr *dflt;      /* default value, or NULL */
};

/* What an identifier refers to (filled by the resolver). */
enum ast_binding {
    AST_BIND_NONE = 0,          /* not resolved yet */
    AST_BIND_LOCAL,             /* a slot in an enclosing frame */
    AST_BIND_BUILTIN,           /* a standard library function */
    AST_BIND_MODULE             /* a name provided by a used module */
};

struct ast_expr {
    enum ast_expr_kind kind;
    struct ast_pos pos;
    const void *konst;          /* resolver: the kval of a string or regexp
                                   literal, made once */
    union {
        bool boolean;
        double number;
        struct ast_str string;
        struct {
            struct ast_str source;  /* the pattern, \# already made # */
            char flags[4];          /* some of "g", "i", "m", NUL-terminated */
        } regexp;
        struct {
            /* alternating literal text and beestings, in order; literal
               parts are AST_STRING nodes (escapes done), beestings any
               expression */
            struct ast_expr **parts;
            size_t n_parts;
        } chevron;
        struct {
            struct ast_expr **items;
            size_t n_items;
        } list;
        struct {
            struct ast_str *keys;   /* string-literal keys */
            struct ast_expr **values;
            size_t n;
        } map;
        struct {
            struct ast_str name;
            enum ast_binding binding;   /* resolver */
            int depth;                  /* resolver: frames to walk up */
            int slot;                   /* resolver: slot in that frame */
            const void *target;         /* resolver: builtin or module */
        } ident;
        struct {
            struct ast_str domain;  /* "ent", "event", "time", an alias ... */
            struct ast_str name;
            const void *target;     /* resolver */
        } dident;
        struct {
            struct ast_expr *callee;    /* AST_IDENT, AST_DOMAIN_IDENT or any
                                           expression yielding a function */
            struct ast_arg *args;       /* for x.f(a): x is args[0] */
            size_t n_args;
            bool is_dot_call;           /* written as x.f(...) */
        } call;
        struct {
            struct ast_expr *object;
            struct ast_str name;
        } dot;
        struct {
            struct ast_expr *object;
            struct ast_expr *key;
        } member;
        struct {
            enum ast_unop op;
            struct ast_expr *operand;
        } unary;
        struct {
            enum ast_binop op;
            struct ast_expr *left;
            struct ast_expr *right;
        } binary;
        struct {
            struct ast_expr *cond;
            struct ast_expr *then;
            struct ast_expr *otherwise;
        } ternary;
        struct {
            struct ast_param *params;
            size_t n_params;
            struct ast_decl *decls;     /* body declarations */
            size_t n_decls;
            struct ast_expr *result;    /* the final expression */
            int frame_size;             /* resolver */
        } function;
        struct {
            struct ast_param *params;
            size_t n_params;
            struct ast_decl *decls;
            size_t n_decls;
            struct ast_action_block *actions;
            struct ast_expr **returns;  /* "return e" / "returns a, b"; at
                                           most one in the 1.x dialect */
            size_t n_returns;
            int frame_size;             /* resolver */
        } defaction;
    } u;
};

/* id = expr (in global, pre, function bodies, postludes, configure, with) */
struct ast_decl {
    struct ast_pos pos;
    struct ast_str name;
    struct ast_expr *value;
    int slot;                   /* resolver */
};

/* ---------------------------------------------------------------- */
/* Event expressions                                                 */

enum ast_ee_kind {
    AST_EE_PRIM,                /* domain type attr re#..# setting(..) where */
    AST_EE_OR,
    AST_EE_AND,
    AST_EE_BEFORE,
    AST_EE_THEN,
    AST_EE_AFTER,
    AST_EE_BETWEEN,             /* a between(b, c): items a, b, c */
    AST_EE_NOT_BETWEEN,         /* a not between(b, c): items a, b, c */
    AST_EE_ANY,                 /* any N (e1, ...) */
    AST_EE_COUNT,               /* count N (prim) [agg(v...)] */
    AST_EE_REPEAT               /* repeat N (prim) [agg(v...)] */
};

enum ast_agg {
    AST_AGG_NONE,
    AST_AGG_MAX,
    AST_AGG_MIN,
    AST_AGG_SUM,
    AST_AGG_AVG,
    AST_AGG_PUSH
};

struct ast_attr_match {
    struct ast_pos pos;
    struct ast_str attr;        /* attribute name */
    struct ast_expr *regexp;    /* an AST_REGEXP */
};

struct ast_ee {
    enum ast_ee_kind kind;
    struct ast_pos pos;
    /* AST_EE_PRIM */
    struct ast_str domain;
    struct ast_str type;
    struct ast_attr_match *matches;
    size_t n_matches;
    struct ast_str *setting;    /* setting(a, b): capture variables */
    size_t n_setting;
    struct ast_expr *where;     /* or NULL */
    /* operators: the operands, in the order written (2 or more for
       or/and/before/then/after, 3 for between, N for any) */
    struct ast_ee **items;
    size_t n_items;
    /* AST_EE_ANY, AST_EE_COUNT, AST_EE_REPEAT */
    struct ast_expr *n;         /* the count, a number literal */
    /* AST_EE_COUNT, AST_EE_REPEAT: items[0] is the primitive */
    enum ast_agg agg;
    struct ast_str *agg_vars;
    size_t n_agg_vars;
    int *setting_slots;         /* resolver: a slot per setting name */
    int *agg_slots;             /* resolver: a slot per aggregator name */
};

/* ---------------------------------------------------------------- */
/* Action blocks                                                     */

enum ast_block_kind {
    AST_BLOCK_SINGLE,           /* one action, no keyword */
    AST_BLOCK_EVERY,
    AST_BLOCK_SAMPLE,
    AST_BLOCK_CHOOSE
};

struct ast_action {
    struct ast_pos pos;
    struct ast_str label;       /* "label =>"; s == NULL when absent */
    struct ast_expr *callee;    /* AST_IDENT or AST_DOMAIN_IDENT */
    struct ast_arg *args;
    size_t n_args;
    struct ast_str *setting;    /* setting(v): 0 or 1 names */
    size_t n_setting;
    int setting_slot;           /* resolver */
};

struct ast_action_block {
    struct ast_pos pos;
    struct ast_expr *cond;      /* "if cond then", or NULL */
    enum ast_block_kind kind;
    struct ast_expr *choose;    /* the discriminant of choose */
    struct ast_action *actions;
    size_t n_actions;
};

/* ---------------------------------------------------------------- */
/* Postludes                                                         */

enum ast_stmt_kind {
    AST_STMT_DECL,              /* id = expr */
    AST_STMT_ENT_SET,           /* ent:x := e, ent:x{path} := e */
    AST_STMT_CLEAR,             /* clear ent:x, clear ent:x{path} */
    AST_STMT_RAISE,
    AST_STMT_SCHEDULE,
    AST_STMT_LOG,
    AST_STMT_ERROR,
    AST_STMT_LAST
};

enum ast_guard {
    AST_GUARD_NONE,
    AST_GUARD_IF,               /* stmt if expr */
    AST_GUARD_ON_FINAL          /* stmt on final */
};

struct ast_stmt {
    enum ast_stmt_kind kind;
    struct ast_pos pos;
    enum ast_guard guard;
    struct ast_expr *guard_expr;    /* for AST_GUARD_IF */
    struct ast_decl decl;           /* AST_STMT_DECL */
    /* AST_STMT_ENT_SET, AST_STMT_CLEAR */
    struct ast_str ent_name;        /* x of ent:x */
    struct ast_expr *ent_path;      /* the {path}, or NULL */
    struct ast_expr *value;         /* ENT_SET: the value; LOG, ERROR: the
                                       message */
    /* AST_STMT_RAISE, AST_STMT_SCHEDULE */
    struct ast_str event_domain;    /* raise DOMAIN event TYPE; s == NULL in
                                       the dynamic form "raise event E" */
    struct ast_expr *event_type;    /* TYPE (any expression), or the "d:t"
                                       expression of the dynamic form */
    struct ast_expr *for_rid;       /* "for E", or NULL */
    struct ast_expr *attributes;    /* "attributes E", or NULL */
    struct ast_expr *at;            /* schedule ... at E */
    struct ast_expr *repeat;        /* schedule ... repeat E */
    struct ast_str setting;         /* schedule ... setting(v); s may be NULL */
    /* AST_STMT_LOG, AST_STMT_ERROR */
    struct ast_str level;           /* error, warn, info, debug */
    int setting_slot;               /* resolver: schedule ... setting(v) */
};

enum ast_postlude_kind {
    AST_POST_NONE,
    AST_POST_FIRED,             /* fired { } [else { }] [finally { }] */
    AST_POST_NOTFIRED,          /* notfired { } [else { }] [finally { }] */
    AST_POST_ALWAYS             /* always { } */
};

struct ast_postlude {
    enum ast_postlude_kind kind;
    struct ast_pos pos;
    struct ast_stmt *stmts;     /* the fired / notfired / always block */
    size_t n_stmts;
    struct ast_stmt *else_stmts;
    size_t n_else;
    struct ast_stmt *finally_stmts;
    size_t n_finally;
};

/* ---------------------------------------------------------------- */
/* Rules and rulesets                                                */

enum ast_period {
    AST_PERIOD_NONE,
    AST_PERIOD_SECONDS,
    AST_PERIOD_MINUTES,
    AST_PERIOD_HOURS,
    AST_PERIOD_DAYS,
    AST_PERIOD_WEEKS,
    AST_PERIOD_MONTHS,
    AST_PERIOD_YEARS
};

struct ast_foreach {
    struct ast_pos pos;
    struct ast_expr *collection;
    struct ast_str value_var;   /* setting(v, k): v */
    struct ast_str key_var;     /* k; s == NULL when absent */
    int value_slot;             /* resolver */
    int key_slot;               /* resolver */
};

struct ast_rule {
    struct ast_pos pos;
    struct ast_str name;
    bool inactive;              /* "rule x is inactive" */
    bool has_select;
    struct ast_ee *select_when; /* select when ...; or NULL */
    struct ast_expr *select_where;  /* select where ...; or NULL */
    struct ast_expr *within;    /* within N period, or NULL */
    enum ast_period within_period;
    struct ast_foreach *foreach;
    size_t n_foreach;
    struct ast_decl *pre;
    size_t n_pre;
    struct ast_action_block *actions;   /* or NULL */
    struct ast_postlude postlude;       /* kind AST_POST_NONE when absent */
    int frame_size;             /* resolver: slots of the rule's frame */
};

struct ast_use {
    struct ast_pos pos;
    struct ast_str rid;
    struct ast_str alias;       /* s == NULL when absent (the rid is used) */
    struct ast_decl *with;      /* with a = e and b = e */
    size_t n_with;
};

struct ast_meta {
    struct ast_expr *name;      /* each NULL when absent */
    struct ast_expr *description;
    struct ast_expr *author;
    struct ast_expr *version;
    bool has_logging;           /* logging on|off (deprecated) */
    bool logging_on;
    struct ast_use *uses;
    size_t n_uses;
    struct ast_decl *configure; /* configure using a = e b = e */
    size_t n_configure;
    struct ast_str *provides;
    struct ast_pos *provides_pos;
    size_t n_provides;
    struct ast_str *shares;
    struct ast_pos *shares_pos;
    size_t n_shares;
};

struct ast_ruleset {
    struct ast_pos pos;
    struct ast_str rid;
    struct ast_meta meta;
    struct ast_decl *globals;
    size_t n_globals;
    struct ast_rule *rules;
    size_t n_rules;
    const char *file;           /* the name used in messages */
    int global_frame_size;      /* resolver: configure + global slots */
};

#endif
