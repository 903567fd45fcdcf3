/*
 * eval_internal.h - what resolve.c and eval.c share; private to src/krl.
 *
 * A compiled ruleset or body owns the arena that holds its syntax tree;
 * the resolver has filled in the slots, depths and targets of ast.h.
 */
#ifndef PICOMAIL_EVAL_INTERNAL_H
#define PICOMAIL_EVAL_INTERNAL_H

#include "picomail/arena.h"
#include "picomail/ast.h"
#include "picomail/diag.h"
#include "picomail/eval.h"

struct krl_ruleset {
    struct arena *arena;        /* owns ast and everything it points to */
    struct ast_ruleset *ast;
    bool *ents_only;            /* per rule: krl_rule_ents_only() */
};

struct krl_body {
    struct arena *arena;
    struct ast_expr *fn;        /* an AST_FUNCTION with no parameters */
};

/* Names the evaluator provides itself (they need the vm). */
enum eval_native {
    EVAL_NATIVE_NONE = 0,
    EVAL_NATIVE_KLOG,
    EVAL_NATIVE_SEND_DIRECTIVE,
    EVAL_NATIVE_NOOP
};

/* resolve_ruleset/resolve_body - fill in the resolver fields and run the
 * compile-time checks; returns the number of errors added to DIAGS */
int resolve_ruleset(struct ast_ruleset *rs, struct arena *a,
                    struct krl_diags *diags);
int resolve_body(struct ast_expr *fn, const char *file, struct arena *a,
                 struct krl_diags *diags);

/* eval_native_lookup - an evaluator-provided name, its kinds (KV_FN_*) */
enum eval_native eval_native_lookup(const char *name, unsigned *kinds);

#endif
