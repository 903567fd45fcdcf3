/*
 * eval.h - compiling KRL and evaluating it.
 *
 * krl_ruleset_compile() parses a ruleset, resolves every identifier to a
 * frame slot, a builtin or a module name, and runs the compile-time checks
 * (undefined identifiers, duplicate declarations and rules, functions used
 * as actions and actions as functions, shares and provides of undefined
 * names).  A compiled ruleset is immutable and may be shared by threads.
 *
 * A struct krl_vm is one evaluation: it holds the limits (steps, call depth,
 * memory, wall time), the arena for call frames and closures, and the
 * directives sent so far.  Closures point into the vm's arena (or into the
 * instance that made them), so a function value must not outlive the vm or
 * instance it came from; json and the store refuse to keep functions, which
 * is what makes that safe.
 *
 * A struct krl_instance is a ruleset with its global block evaluated (once,
 * as the reference does at install and start-up).  It owns its global
 * frame and the closures made there.
 *
 * Errors are KV_ERROR values; every kval returned is a new reference.
 * Neither vms nor instances are thread-safe; one thread uses one at a time.
 */
#ifndef PICOMAIL_EVAL_H
#define PICOMAIL_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "picomail/ast.h"
#include "picomail/diag.h"
#include "picomail/value.h"

struct krl_limits {
    uint64_t max_steps;         /* expression evaluations per vm */
    unsigned max_depth;         /* nested function calls */
    size_t max_bytes;           /* frames and closures, and the size of any
                                   one string or collection built */
    unsigned max_ms;            /* wall time per vm; 0 for none */
};

void krl_limits_default(struct krl_limits *lim);

struct krl_ruleset;
struct krl_body;
struct krl_instance;
struct krl_vm;

/* ---- compiling ---- */

/* krl_ruleset_compile - NULL on errors, each added to DIAGS */
struct krl_ruleset *krl_ruleset_compile(const char *file, const char *src,
                                        size_t len, struct krl_diags *diags);
struct krl_ruleset *krl_ruleset_free(struct krl_ruleset *rs);
const char *krl_ruleset_rid(const struct krl_ruleset *rs);
const struct ast_ruleset *krl_ruleset_ast(const struct krl_ruleset *rs);

/* krl_body_compile - declarations then one expression (`picomail eval`) */
struct krl_body *krl_body_compile(const char *file, const char *src,
                                  size_t len, struct krl_diags *diags);
struct krl_body *krl_body_free(struct krl_body *b);

/* ---- evaluating ---- */

struct krl_vm *krl_vm_new(const struct krl_limits *lim);
struct krl_vm *krl_vm_free(struct krl_vm *vm);
/* krl_vm_reset - make VM as new (limits restart, directives and frames
 * dropped) while keeping its memory: one vm serves event after event.
 * Function values made in VM must be dead by then. */
void krl_vm_reset(struct krl_vm *vm);
/* krl_vm_directives - the directives sent so far, an array (borrowed) */
const kval *krl_vm_directives(const struct krl_vm *vm);
/* krl_vm_steps - expression evaluations so far */
uint64_t krl_vm_steps(const struct krl_vm *vm);

/*
 * The host (the pico engine) supplies what KRL reaches outside itself:
 * domain identifiers, and the effects of postlude statements.  get()
 * answers `domain:name`: a property such as ent:x or event:attrs is its
 * value; a module function or action such as time:now or ctx:newPico is a
 * function value (kval_func_new) that the evaluator then calls with its
 * arguments mapped by parameter name.  The function's implementation finds
 * the host's context with krl_vm_host_ctx().  Every operation returns a new
 * reference: a KV_ERROR for a KRL error, else a value (null when there is
 * nothing to return).  A NULL member, or no host at all, makes the
 * operation a runtime error.
 */
struct krl_host {
    kval (*get)(void *ctx, struct krl_vm *vm, const char *domain,
                const char *name);
    /* ent:NAME := VALUE, or ent:NAME{PATH} := VALUE (PATH NULL if none) */
    kval (*ent_set)(void *ctx, const char *name, const kval *path,
                    const kval *value);
    /* clear ent:NAME, clear ent:NAME{PATH} */
    kval (*ent_clear)(void *ctx, const char *name, const kval *path);
    /* raise DOMAIN event TYPE [for FOR_RID] [attributes ATTRS]; FOR_RID
     * and ATTRS may be null */
    kval (*raise)(void *ctx, const char *domain, const char *type,
                  const kval *attrs, const kval *for_rid);
    /* schedule DOMAIN event TYPE at AT | repeat TIMESPEC; the result is
     * the schedule entry (bound by `setting`) */
    kval (*schedule)(void *ctx, const char *domain, const char *type,
                     const kval *at, const kval *timespec, const kval *attrs);
    /* log LEVEL MESSAGE */
    void (*log)(void *ctx, const char *level, const kval *message);
    /* error LEVEL MESSAGE: raise system:error for this ruleset; at level
     * "error" the host also clears the pending schedule (the rule then
     * ends as with `last`) */
    kval (*error)(void *ctx, const char *level, const kval *message,
                  const char *rule_name);
};
void krl_vm_set_host(struct krl_vm *vm, const struct krl_host *host,
                     void *ctx);
/* krl_vm_host_ctx - the CTX given to krl_vm_set_host */
void *krl_vm_host_ctx(const struct krl_vm *vm);
/* krl_vm_current_rid - the ruleset whose code is running: a module's
 * function runs as its own ruleset (its ent: variables are its own) */
const char *krl_vm_current_rid(const struct krl_vm *vm);
/* krl_vm_set_context - the rid, rule and transaction id that directives
 * carry in their meta (borrowed; NULL for none) */
void krl_vm_set_context(struct krl_vm *vm, const char *rid,
                        const char *rule_name, const char *txn_id);

/* krl_body_eval - run B in VM; the result must not be a function that is
 * used after VM is freed */
kval krl_body_eval(struct krl_vm *vm, const struct krl_body *b);

/* krl_instance_new - evaluate the configure and global blocks of RS with
 * the module configuration CONFIG (a map; NULL for none).  NULL on a
 * runtime error, which goes to *ERROR. */
struct krl_instance *krl_instance_new(const struct krl_ruleset *rs,
                                      const kval *config,
                                      const struct krl_limits *lim,
                                      kval *error);
/* krl_instance_new_hosted - the same, with a host answering domain
 * identifiers met while evaluating the global block (e.g. module
 * functions of used modules) */
struct krl_instance *krl_instance_new_hosted(const struct krl_ruleset *rs,
                                             const kval *config,
                                             const struct krl_limits *lim,
                                             const struct krl_host *host,
                                             void *host_ctx, kval *error);
struct krl_instance *krl_instance_free(struct krl_instance *inst);
/* krl_instance_provided - the value of NAME if the ruleset provides it */
kval krl_instance_provided(const struct krl_instance *inst, const char *name);
/* krl_ruleset_use_config - the `with` values of the I-th `use module` of RS
 * as a map (they may use builtins only) */
kval krl_ruleset_use_config(const struct krl_ruleset *rs, size_t i,
                            const struct krl_limits *lim);

/* krl_instance_query - the value of shared NAME, called with ARGS (a map of
 * parameter name to value) when it is a function */
kval krl_instance_query(struct krl_instance *inst, struct krl_vm *vm,
                        const char *name, const kval *args);

/* krl_instance_where - evaluate the `where` clause of primitive PRIM of rule
 * RULE (a rule of INST's ruleset) with CAPTURES (an array, borrowed) bound
 * to PRIM's setting variables: 1 truthy, 0 falsy, -1 with *ERR set.  Has
 * the signature shape of select.h's sel_where_fn once bound to a rule. */
int krl_instance_where(struct krl_instance *inst, struct krl_vm *vm,
                       const struct ast_rule *rule, const struct ast_ee *prim,
                       const kval *captures, kval *err);

/* How a rule run ended. */
enum krl_rule_end {
    KRL_RULE_DONE,              /* ran (or did not fire) normally */
    KRL_RULE_LAST,              /* `last` or `error error`: skip the rest of
                                   this ruleset's rules for this event */
    KRL_RULE_ERROR              /* a runtime error, in *ERR */
};

/*
 * krl_rule_run - run the body of RULE (a rule of INST's ruleset) once it
 * was selected: foreach loops, pre, the action block, the postlude.
 * BINDINGS (a map, borrowed; may be NULL) gives the setting variables of
 * the select.  Effects go to the vm's host; directives to the vm.
 */
enum krl_rule_end krl_rule_run(struct krl_instance *inst, struct krl_vm *vm,
                               const struct ast_rule *rule,
                               const kval *bindings, kval *err);
/* krl_rule_select_where - evaluate the `select where` expression of RULE:
 * 1 truthy, 0 falsy, -1 with *ERR */
int krl_rule_select_where(struct krl_instance *inst, struct krl_vm *vm,
                          const struct ast_rule *rule, kval *err);
/* krl_instance_ruleset - the compiled ruleset INST was made from */
const struct krl_ruleset *krl_instance_ruleset(const struct krl_instance *i);
/* krl_rule_within_ms - the `within` limit of RULE in milliseconds (-1 when
 * it has none); 0 on success, -1 with *ERR */
int krl_rule_within_ms(struct krl_instance *inst, struct krl_vm *vm,
                       const struct ast_rule *rule, int64_t *ms, kval *err);
/*
 * krl_rule_ents_only - true when the body of rule I of RS (foreach, pre,
 * actions, postlude) can reach the host only by reading ent:, event: and
 * meta: values, writing ent: variables, raise, log, error and last: it
 * calls only builtins and natives, on values of its own, no module, no
 * global, no function or defaction it makes, and schedules nothing.  Such
 * a rule changes nothing else in the engine's store, so the engine need
 * not open a savepoint for it.  A conservative answer: false when unsure.
 */
bool krl_rule_ents_only(const struct krl_ruleset *rs, size_t i);

#endif
