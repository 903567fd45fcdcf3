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
/* krl_vm_directives - the directives sent so far, an array (borrowed) */
const kval *krl_vm_directives(const struct krl_vm *vm);
/* krl_vm_steps - expression evaluations so far */
uint64_t krl_vm_steps(const struct krl_vm *vm);

/*
 * The host (the pico engine) answers domain identifiers: properties such as
 * ent:x or event:attrs (IS_CALL false) and module functions and actions
 * such as time:now() (IS_CALL true; AS_ACTION when called in an action
 * block).  ARGS are borrowed and positional; the result is a new reference.
 * Without a host every domain identifier is a runtime error.
 */
typedef kval krl_host_fn(void *ctx, struct krl_vm *vm, const char *domain,
                         const char *name, bool is_call, bool as_action,
                         const kval *args, size_t n_args);
void krl_vm_set_host(struct krl_vm *vm, krl_host_fn *fn, void *ctx);

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
struct krl_instance *krl_instance_free(struct krl_instance *inst);

/* krl_instance_query - the value of shared NAME, called with ARGS (a map of
 * parameter name to value) when it is a function */
kval krl_instance_query(struct krl_instance *inst, struct krl_vm *vm,
                        const char *name, const kval *args);

#endif
