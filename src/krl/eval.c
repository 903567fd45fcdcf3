/*
 * eval.c - the KRL evaluator: a tree walk over a resolved syntax tree.
 *
 * Frames.  Every function call, rule, ruleset instance and eval body gets a
 * frame: an array of kval slots (laid out by resolve.c) and a link to the
 * frame it was defined in.  Frames live in an arena.  A closure (a function
 * or defaction value) holds a borrowed pointer to its defining frame, so
 * frames can only be reclaimed when no closure can see them: when a call
 * returns and no closure was made during it, its frame's slots are freed
 * and the arena is released back to where the call started; otherwise the
 * frame stays until the arena dies (a cleanup hook frees its slots).  This
 * keeps recursion and map/filter over large arrays in constant memory
 * while closures stay correct, with no reference cycles.
 *
 * Limits.  Every expression evaluated counts one step; every call counts
 * one level of depth; the wall clock is read every 1024 steps; strings and
 * collections built by operators are capped by max_bytes, as is the arena.
 * Going over a limit is a KRL error, not a crash.
 */
#include "picomail/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/buf.h"
#include "picomail/builtin.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/ops.h"
#include "picomail/parser.h"

#include "eval_internal.h"

struct frame {
    struct frame *parent;
    int n_slots;
    kval slots[];
};

struct closure {
    const struct ast_expr *fn;      /* AST_FUNCTION or AST_DEFACTION */
    struct frame *env;              /* defining frame (borrowed) */
    const char *rid;                /* ruleset it was made in, whose
                                       entity variables it sees */
};

/* Strings every directive uses, made once per vm (a vm is one thread's,
 * so sharing them by reference count is safe). */
enum vm_word {
    W_TYPE, W_NAME, W_OPTIONS, W_META, W_RID, W_RULE_NAME, W_TXNID,
    W_DIRECTIVE, W__COUNT
};
static const char *const vm_words[W__COUNT] = {
    "type", "name", "options", "meta", "rid", "rule_name", "txnId",
    "directive"
};

/* A string value kept while it equals the C string asked for (the rid,
 * rule and transaction id of directive metas repeat from one directive to
 * the next). */
struct cstr_memo {
    kval value;                 /* null until first made */
};

struct krl_vm {
    kval words[W__COUNT];
    struct cstr_memo memo[3];       /* rid, rule name, txn id */
    struct krl_limits lim;
    struct arena *arena;            /* frames and closures */
    bool owns_arena;
    uint64_t steps;
    unsigned depth;
    uint64_t closures_made;
    struct timespec deadline;
    bool has_deadline;
    kval directives;                /* array of directive maps */
    struct arena_mark base;         /* the arena as it was given */
    const struct krl_host *host;
    void *host_ctx;
    const char *rid;                /* for directive meta (borrowed) */
    const char *rule_name;
    const char *txn_id;
};

struct krl_instance {
    const struct krl_ruleset *rs;
    struct arena *arena;            /* the global frame and its closures */
    struct frame *globals;
};

static kval eval_expr(struct krl_vm *vm, struct frame *f,
                      const struct ast_expr *e);
static kval call_value(struct krl_vm *vm, const kval *fn,
                       const struct ast_arg *arg_nodes, kval *args,
                       size_t n_args, bool as_action);
static kval invoke_closure(struct krl_vm *vm, const struct closure *cl,
                           const kval *args, const char *const *names,
                           size_t n_args);
static kval call_named(struct krl_vm *vm, const struct ast_expr *ident,
                       const kval *args, size_t n);
static bool has_named(const struct ast_arg *arg_nodes, size_t n);

/* ------------------------------------------------------------------ */
/* Limits                                                              */

void
krl_limits_default(struct krl_limits *lim)
{
    lim->max_steps = 10 * 1000 * 1000;
    lim->max_depth = 1000;
    lim->max_bytes = 64u * 1024 * 1024;
    lim->max_ms = 10 * 1000;
}

static bool
past_deadline(const struct krl_vm *vm)
{
    if (!vm->has_deadline)
        return false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > vm->deadline.tv_sec ||
           (now.tv_sec == vm->deadline.tv_sec &&
            now.tv_nsec >= vm->deadline.tv_nsec);
}

/* step - count one evaluation; an error value when a limit is passed */
static bool
step(struct krl_vm *vm, kval *err)
{
    vm->steps++;
    if (vm->steps > vm->lim.max_steps) {
        *err = kval_error("Error: evaluation stopped after %llu steps "
                          "(limit)", (unsigned long long)vm->lim.max_steps);
        return false;
    }
    if ((vm->steps & 1023) == 0) {
        if (past_deadline(vm)) {
            *err = kval_error("Error: evaluation stopped after %u ms "
                              "(time limit)", vm->lim.max_ms);
            return false;
        }
        if (arena_bytes(vm->arena) > vm->lim.max_bytes) {
            *err = kval_error("Error: evaluation stopped: over %zu bytes "
                              "of frames (memory limit)", vm->lim.max_bytes);
            return false;
        }
    }
    return true;
}

/* check_size - a value built by an operator must fit the memory limit */
static kval
check_size(struct krl_vm *vm, kval v)
{
    size_t size = 0;
    switch (kval_kind(&v)) {
    case KV_STRING:
        size = kval_str_bytes(&v);
        break;
    case KV_ARRAY:
        size = kval_array_len(&v) * sizeof(kval);
        break;
    case KV_MAP:
        size = kval_map_len(&v) * 2 * sizeof(kval);
        break;
    default:
        return v;
    }
    if (size > vm->lim.max_bytes) {
        kval_free(v);
        return kval_error("Error: value of %zu bytes is over the memory "
                          "limit", size);
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* The vm                                                              */

static void set_deadline(struct krl_vm *vm);

static struct krl_vm *
vm_new(const struct krl_limits *lim, struct arena *arena)
{
    struct krl_vm *vm = xcalloc(1, sizeof *vm);
    if (lim != NULL)
        vm->lim = *lim;
    else
        krl_limits_default(&vm->lim);
    vm->arena = arena != NULL ? arena : arena_new();
    vm->owns_arena = arena == NULL;
    vm->base = arena_mark(vm->arena);
    for (int i = 0; i < W__COUNT; i++)
        vm->words[i] = kval_cstr(vm_words[i]);
    vm->directives = kval_array();
    set_deadline(vm);
    return vm;
}

struct krl_vm *
krl_vm_new(const struct krl_limits *lim)
{
    return vm_new(lim, NULL);
}

void
krl_vm_reset(struct krl_vm *vm)
{
    kval_free(vm->directives);
    vm->directives = kval_array();
    arena_release(vm->arena, vm->base);
    vm->steps = 0;
    vm->depth = 0;
    vm->rid = vm->rule_name = vm->txn_id = NULL;
    set_deadline(vm);
}

static void
set_deadline(struct krl_vm *vm)
{
    vm->has_deadline = false;
    if (vm->lim.max_ms != 0) {
        clock_gettime(CLOCK_MONOTONIC, &vm->deadline);
        vm->deadline.tv_sec += vm->lim.max_ms / 1000;
        vm->deadline.tv_nsec += (long)(vm->lim.max_ms % 1000) * 1000000L;
        if (vm->deadline.tv_nsec >= 1000000000L) {
            vm->deadline.tv_sec++;
            vm->deadline.tv_nsec -= 1000000000L;
        }
        vm->has_deadline = true;
    }
}

struct krl_vm *
krl_vm_free(struct krl_vm *vm)
{
    if (vm == NULL)
        return NULL;
    kval_free(vm->directives);
    for (int i = 0; i < W__COUNT; i++)
        kval_free(vm->words[i]);
    for (int i = 0; i < 3; i++)
        kval_free(vm->memo[i].value);
    if (vm->owns_arena)
        arena_free(vm->arena);
    free(vm);
    return NULL;
}

const kval *
krl_vm_directives(const struct krl_vm *vm)
{
    return &vm->directives;
}

uint64_t
krl_vm_steps(const struct krl_vm *vm)
{
    return vm->steps;
}

void
krl_vm_set_host(struct krl_vm *vm, const struct krl_host *host, void *ctx)
{
    vm->host = host;
    vm->host_ctx = ctx;
}

void
krl_vm_set_context(struct krl_vm *vm, const char *rid, const char *rule_name,
                   const char *txn_id)
{
    vm->rid = rid;
    vm->rule_name = rule_name;
    vm->txn_id = txn_id;
}

static kval
no_host(const char *domain, const char *name)
{
    return kval_error("Error: %s:%s is not available here", domain, name);
}

/* host_get - a domain identifier read as a property */
static kval
host_get(struct krl_vm *vm, const char *domain, const char *name)
{
    if (vm->host == NULL || vm->host->get == NULL)
        return no_host(domain, name);
    return vm->host->get(vm->host_ctx, vm, domain, name);
}

void *
krl_vm_host_ctx(const struct krl_vm *vm)
{
    return vm->host_ctx;
}

const char *
krl_vm_current_rid(const struct krl_vm *vm)
{
    return vm->rid;
}

/* ------------------------------------------------------------------ */
/* Frames and closures                                                 */

static void
frame_clear(void *p)
{
    struct frame *f = p;
    for (int i = 0; i < f->n_slots; i++) {
        kval_free(f->slots[i]);
        f->slots[i] = kval_null();
    }
}

static struct frame *
frame_new(struct krl_vm *vm, struct frame *parent, int n_slots)
{
    struct frame *f = arena_alloc(vm->arena,
                                  sizeof *f + (size_t)n_slots * sizeof(kval));
    f->parent = parent;
    f->n_slots = n_slots;
    return f;   /* arena memory is zeroed: every slot is null */
}

/* frame_keep - the frame outlives its call: free its slots with the arena */
static void
frame_keep(struct krl_vm *vm, struct frame *f)
{
    arena_cleanup_add(vm->arena, frame_clear, f);
}

static void
slot_set(struct frame *f, int slot, kval v)
{
    kval_free(f->slots[slot]);
    f->slots[slot] = v;
}

static kval
closure_call(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    return invoke_closure(vm, data, args, NULL, n);
}

static kval
make_closure(struct krl_vm *vm, struct frame *env, const struct ast_expr *fn)
{
    struct closure *cl = arena_alloc(vm->arena, sizeof *cl);
    cl->fn = fn;
    cl->env = env;
    cl->rid = vm->rid;
    vm->closures_made++;
    bool is_fn = fn->kind == AST_FUNCTION;
    const struct ast_param *params =
        is_fn ? fn->u.function.params : fn->u.defaction.params;
    size_t n = is_fn ? fn->u.function.n_params : fn->u.defaction.n_params;
    const char *small[8];
    const char **names = n <= 8 ? small : xcalloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = params[i].name.s;
    kval fv = kval_func_new(closure_call, cl, NULL,
                            is_fn ? KV_FN_FUNCTION : KV_FN_ACTION, "", names,
                            n);
    if (names != small)
        free(names);
    return fv;
}

static bool
is_hoisted(const struct ast_decl *d)
{
    return d->value->kind == AST_FUNCTION || d->value->kind == AST_DEFACTION;
}

/* eval_decls - a declaration block into F: functions first (hoisted), then
 * the other declarations in order */
static kval
eval_decls(struct krl_vm *vm, struct frame *f, const struct ast_decl *decls,
           size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_hoisted(&decls[i]))
            slot_set(f, decls[i].slot, make_closure(vm, f, decls[i].value));
    for (size_t i = 0; i < n; i++) {
        if (is_hoisted(&decls[i]))
            continue;
        kval v = eval_expr(vm, f, decls[i].value);
        if (kval_is_error(&v))
            return v;
        slot_set(f, decls[i].slot, v);
    }
    return kval_null();
}

/* ------------------------------------------------------------------ */
/* Actions                                                             */

/* memo_str - S as a string value (null for NULL), remade only when S
 * differs from last time */
static kval
memo_str(struct cstr_memo *m, const char *s)
{
    if (s == NULL)
        return kval_null();
    if (kval_kind(&m->value) != KV_STRING ||
        strcmp(kval_str_ptr(&m->value), s) != 0) {
        kval_free(m->value);
        m->value = kval_cstr(s);
    }
    return kval_copy(&m->value);
}

static kval
send_directive(struct krl_vm *vm, const kval *name, const kval *options)
{
    kval *w = vm->words;
    kval d = kval_map();
    d = kval_map_put(d, kval_copy(&w[W_TYPE]), kval_copy(&w[W_DIRECTIVE]));
    d = kval_map_put(d, kval_copy(&w[W_NAME]), op_to_string(name));
    kval opts = kval_is_null(options) ? kval_map() : kval_copy(options);
    d = kval_map_put(d, kval_copy(&w[W_OPTIONS]), opts);
    kval meta = kval_map();
    meta = kval_map_put(meta, kval_copy(&w[W_RID]),
                        memo_str(&vm->memo[0], vm->rid));
    meta = kval_map_put(meta, kval_copy(&w[W_RULE_NAME]),
                        memo_str(&vm->memo[1], vm->rule_name));
    meta = kval_map_put(meta, kval_copy(&w[W_TXNID]),
                        memo_str(&vm->memo[2], vm->txn_id));
    d = kval_map_put(d, kval_copy(&w[W_META]), meta);
    vm->directives = kval_array_append(vm->directives, kval_copy(&d));
    return d;
}

/* run_actions - an action block; *FIRED tells whether the rule fired */
static kval
run_actions(struct krl_vm *vm, struct frame *f,
            const struct ast_action_block *b, bool *fired)
{
    *fired = true;
    if (b == NULL)
        return kval_null();
    if (b->cond != NULL) {
        kval c = eval_expr(vm, f, b->cond);
        if (kval_is_error(&c))
            return c;
        *fired = kval_truthy(&c);
        kval_free(c);
        if (!*fired)
            return kval_null();
    }
    size_t first = 0, last = b->n_actions;
    if (b->kind == AST_BLOCK_CHOOSE) {
        kval which = eval_expr(vm, f, b->choose);
        if (kval_is_error(&which))
            return which;
        first = last;
        for (size_t i = 0; i < b->n_actions; i++) {
            const struct ast_str *label = &b->actions[i].label;
            if (kval_kind(&which) == KV_STRING && label->s != NULL &&
                kval_str_bytes(&which) == label->len &&
                memcmp(kval_str_ptr(&which), label->s, label->len) == 0) {
                first = i;
                last = i + 1;
                break;
            }
        }
        kval_free(which);
    } else if (b->kind == AST_BLOCK_SAMPLE && b->n_actions > 0) {
        unsigned r = 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (unsigned)ts.tv_nsec ^ (unsigned)vm->steps;
        first = r % b->n_actions;
        last = first + 1;
    }
    kval result = kval_null();
    for (size_t i = first; i < last; i++) {
        const struct ast_action *act = &b->actions[i];
        const struct ast_expr *callee = act->callee;
        /* a builtin or native named directly (send_directive, noop, ...)
           is called without making a function value for it */
        bool direct = callee->kind == AST_IDENT &&
                      callee->u.ident.binding == AST_BIND_BUILTIN &&
                      !has_named(act->args, act->n_args);
        kval fn = direct ? kval_null() : eval_expr(vm, f, callee);
        if (kval_is_error(&fn))
            goto fail_fn;
        size_t n = act->n_args;
        kval argv_small[8];
        kval *argv = n <= 8 ? argv_small : xcalloc(n, sizeof(kval));
        size_t got = 0;
        kval err = kval_null();
        for (; got < n; got++) {
            argv[got] = eval_expr(vm, f, act->args[got].value);
            if (kval_is_error(&argv[got])) {
                err = argv[got];
                break;
            }
        }
        kval v;
        if (got < n)
            v = err;
        else if (direct)
            v = call_named(vm, callee, argv, n);
        else
            v = call_value(vm, &fn, act->args, argv, n, true);
        for (size_t k = 0; k < got; k++)
            kval_free(argv[k]);
        if (argv != argv_small)
            free(argv);
        kval_free(fn);
        if (kval_is_error(&v)) {
            kval_free(result);
            return v;
        }
        if (act->setting_slot >= 0)
            slot_set(f, act->setting_slot, kval_copy(&v));
        kval_free(result);
        result = v;
        continue;
    fail_fn:
        kval_free(result);
        return fn;
    }
    return result;
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */

/* invoke_closure - call CL with ARGS (borrowed), named by NAMES[i] when
 * NAMES is given and NAMES[i] is not NULL, positional otherwise */
static kval
invoke_closure(struct krl_vm *vm, const struct closure *cl, const kval *args,
               const char *const *names, size_t n_args)
{
    const struct ast_expr *fn = cl->fn;
    bool is_fn = fn->kind == AST_FUNCTION;
    const struct ast_param *params =
        is_fn ? fn->u.function.params : fn->u.defaction.params;
    size_t n_params = is_fn ? fn->u.function.n_params
                            : fn->u.defaction.n_params;
    int frame_size = is_fn ? fn->u.function.frame_size
                           : fn->u.defaction.frame_size;

    if (vm->depth >= vm->lim.max_depth)
        return kval_error("RangeError: Maximum call stack size exceeded");
    vm->depth++;
    const char *saved_rid = vm->rid;
    if (cl->rid != NULL)
        vm->rid = cl->rid;
    struct arena_mark mark = arena_mark(vm->arena);
    uint64_t closures_before = vm->closures_made;
    struct frame *f = frame_new(vm, cl->env, frame_size);

    /* bind arguments: positional in order, then named by parameter name */
    size_t pos = 0;
    for (size_t i = 0; i < n_args; i++) {
        if (names != NULL && names[i] != NULL) {
            for (size_t p = 0; p < n_params; p++)
                if (strcmp(params[p].name.s, names[i]) == 0) {
                    slot_set(f, (int)p, kval_copy(&args[i]));
                    break;
                }
        } else if (pos < n_params) {
            slot_set(f, (int)pos++, kval_copy(&args[i]));
        }
    }
    kval result = kval_null();
    for (size_t p = 0; p < n_params; p++) {
        if (!kval_is_null(&f->slots[p]) || params[p].dflt == NULL)
            continue;
        kval d = eval_expr(vm, f, params[p].dflt);
        if (kval_is_error(&d)) {
            result = d;
            goto out;
        }
        slot_set(f, (int)p, d);
    }
    if (is_fn) {
        result = eval_decls(vm, f, fn->u.function.decls,
                            fn->u.function.n_decls);
        if (kval_is_error(&result))
            goto out;
        result = eval_expr(vm, f, fn->u.function.result);
    } else {
        result = eval_decls(vm, f, fn->u.defaction.decls,
                            fn->u.defaction.n_decls);
        if (kval_is_error(&result))
            goto out;
        bool fired;
        result = run_actions(vm, f, fn->u.defaction.actions, &fired);
        if (kval_is_error(&result))
            goto out;
        if (fn->u.defaction.n_returns > 0) {
            kval_free(result);
            result = eval_expr(vm, f, fn->u.defaction.returns[0]);
        } else {
            kval_free(result);
            result = kval_null();
        }
    }
out:
    if (vm->closures_made == closures_before) {
        frame_clear(f);
        arena_release(vm->arena, mark);
    } else {
        frame_keep(vm, f);
    }
    vm->rid = saved_rid;
    vm->depth--;
    return result;
}

/* map_named - reorder ARGS for a builtin by its parameter names; returns
 * the number of slots filled in OUT (borrowed pointers into ARGS) */
static size_t
map_named(const struct krl_builtin *b, const struct ast_arg *arg_nodes,
          const kval *args, size_t n_args, const kval **out, size_t max_out)
{
    static const kval null_value;
    size_t n_out = 0;
    for (size_t i = 0; i < max_out; i++)
        out[i] = &null_value;
    size_t pos = 0;
    for (size_t i = 0; i < n_args; i++) {
        size_t at = max_out;
        if (arg_nodes != NULL && arg_nodes[i].name.s != NULL) {
            for (size_t p = 0; p < BUILTIN_MAX_PARAMS && b->params[p]; p++)
                if (strcmp(b->params[p], arg_nodes[i].name.s) == 0)
                    at = p;
        } else {
            at = pos++;
        }
        if (at < max_out) {
            out[at] = &args[i];
            if (at + 1 > n_out)
                n_out = at + 1;
        }
    }
    return n_out;
}

static bool
has_named(const struct ast_arg *arg_nodes, size_t n)
{
    if (arg_nodes == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (arg_nodes[i].name.s != NULL)
            return true;
    return false;
}

static kval
call_builtin(struct krl_vm *vm, const struct krl_builtin *b,
             const struct ast_arg *arg_nodes, const kval *args, size_t n)
{
    if (!has_named(arg_nodes, n))
        return b->fn(vm, NULL, args, n);
    const kval *ptrs[BUILTIN_MAX_PARAMS];
    size_t m = map_named(b, arg_nodes, args, n, ptrs, BUILTIN_MAX_PARAMS);
    kval flat[BUILTIN_MAX_PARAMS];
    for (size_t i = 0; i < m; i++)
        flat[i] = *ptrs[i];     /* shallow: borrowed for the call */
    return b->fn(vm, NULL, flat, m);
}

/* call_value - call function value FN with ARGS (borrowed) */
static kval
call_value(struct krl_vm *vm, const kval *fn, const struct ast_arg *arg_nodes,
           kval *args, size_t n_args, bool as_action)
{
    if (kval_kind(fn) != KV_FUNCTION) {
        kval s = op_to_string(fn);
        kval err = kval_error("TypeError: %s is not %s", kval_str_ptr(&s),
                              as_action ? "an action" : "a function");
        kval_free(s);
        return err;
    }
    unsigned kinds = kval_func_kinds(fn);
    if (as_action && !(kinds & KV_FN_ACTION))
        return kval_error("TypeError: %s is not an action",
                          kval_func_name(fn)[0] ? kval_func_name(fn)
                                                : "[Function]");
    if (!as_action && !(kinds & KV_FN_FUNCTION))
        return kval_error("TypeError: %s is not a function",
                          kval_func_name(fn)[0] ? kval_func_name(fn)
                                                : "[Action]");
    if (has_named(arg_nodes, n_args)) {
        /* reorder by the function's parameter names; a parameter nobody
           named stays null, which (as in the reference) means its default */
        size_t np = kval_func_n_params(fn);
        size_t cap = np + n_args;
        kval *flat = xcalloc(cap + 1, sizeof(kval));
        size_t pos = 0, m = 0;
        for (size_t i = 0; i < n_args; i++) {
            size_t at = cap;
            if (arg_nodes[i].name.s != NULL) {
                for (size_t p = 0; p < np; p++)
                    if (strcmp(kval_func_param(fn, p),
                               arg_nodes[i].name.s) == 0)
                        at = p;
            } else {
                at = pos++;
            }
            if (at < cap) {
                flat[at] = args[i];     /* borrowed for the call */
                if (at + 1 > m)
                    m = at + 1;
            }
        }
        kval v = kval_func_call(vm, fn, flat, m);
        free(flat);
        return v;
    }
    return kval_func_call(vm, fn, args, n_args);
}

static kval
eval_call(struct krl_vm *vm, struct frame *f, const struct ast_expr *e)
{
    const struct ast_expr *callee = e->u.call.callee;
    size_t n = e->u.call.n_args;
    kval argv_small[8];
    kval *argv = n <= 8 ? argv_small : xcalloc(n, sizeof(kval));
    kval result;
    size_t got = 0;
    for (; got < n; got++) {
        argv[got] = eval_expr(vm, f, e->u.call.args[got].value);
        if (kval_is_error(&argv[got])) {
            result = argv[got];
            goto out;
        }
    }
    if (callee->kind == AST_IDENT &&
        callee->u.ident.binding == AST_BIND_BUILTIN &&
        callee->u.ident.target != NULL) {
        result = call_builtin(vm, callee->u.ident.target, e->u.call.args,
                              argv, n);
    } else {
        kval fn = eval_expr(vm, f, callee);
        if (kval_is_error(&fn)) {
            result = fn;
            goto out;
        }
        result = call_value(vm, &fn, e->u.call.args, argv, n, false);
        kval_free(fn);
    }
out:
    for (size_t i = 0; i < got; i++)
        kval_free(argv[i]);
    if (argv != argv_small)
        free(argv);
    return result;
}

/* ------------------------------------------------------------------ */
/* Natives the evaluator provides                                      */

static kval
native_klog(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    const kval *val = builtin_arg(args, n, 0);
    const kval *msg = builtin_arg(args, n, 1);
    char *json = json_to_cstr(val, JSON_KRL);
    kval m = kval_is_null(msg) ? kval_cstr("klog") : op_to_string(msg);
    fprintf(stderr, "klog: %s %s\n", kval_str_ptr(&m), json ? json : "?");
    free(json);
    kval_free(m);
    return kval_copy(val);
}

static kval
native_send_directive(struct krl_vm *vm, void *data, const kval *args,
                      size_t n)
{
    (void)data;
    return send_directive(vm, builtin_arg(args, n, 0),
                          builtin_arg(args, n, 1));
}

static kval
native_noop(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    (void)args;
    (void)n;
    return kval_null();
}

static const struct {
    const char *name;
    enum eval_native id;
    unsigned kinds;
    kval_call_fn *fn;
    const char *params[3];
} natives[] = {
    {"klog", EVAL_NATIVE_KLOG, KV_FN_FUNCTION, native_klog, {"val", "message"}},
    {"send_directive", EVAL_NATIVE_SEND_DIRECTIVE, KV_FN_ACTION,
     native_send_directive, {"name", "options"}},
    {"noop", EVAL_NATIVE_NOOP, KV_FN_FUNCTION | KV_FN_ACTION, native_noop, {0}},
};

enum eval_native
eval_native_lookup(const char *name, unsigned *kinds)
{
    for (size_t i = 0; i < sizeof natives / sizeof natives[0]; i++)
        if (strcmp(natives[i].name, name) == 0) {
            *kinds = natives[i].kinds;
            return natives[i].id;
        }
    return EVAL_NATIVE_NONE;
}

static kval
native_value(enum eval_native id)
{
    for (size_t i = 0; i < sizeof natives / sizeof natives[0]; i++)
        if (natives[i].id == id) {
            size_t n = 0;
            while (n < 3 && natives[i].params[n] != NULL)
                n++;
            return kval_func_new(natives[i].fn, NULL, NULL, natives[i].kinds,
                                 natives[i].name, natives[i].params, n);
        }
    return kval_error("Error: unknown native");
}

/* call_named - call the builtin or native IDENT (resolved to one) as an
 * action with positional ARGS */
static kval
call_named(struct krl_vm *vm, const struct ast_expr *ident, const kval *args,
           size_t n)
{
    const struct krl_builtin *b = ident->u.ident.target;
    if (b != NULL) {
        if (!(b->kinds & KV_FN_ACTION))
            return kval_error("TypeError: %s is not an action", b->name);
        return b->fn(vm, NULL, args, n);
    }
    for (size_t i = 0; i < sizeof natives / sizeof natives[0]; i++)
        if ((int)natives[i].id == ident->u.ident.slot) {
            if (!(natives[i].kinds & KV_FN_ACTION))
                return kval_error("TypeError: %s is not an action",
                                  natives[i].name);
            return natives[i].fn(vm, NULL, args, n);
        }
    return kval_error("Error: unknown native");
}

/* ------------------------------------------------------------------ */
/* Expressions                                                         */

static kval
eval_ident(struct krl_vm *vm, struct frame *f, const struct ast_expr *e)
{
    (void)vm;
    switch (e->u.ident.binding) {
    case AST_BIND_LOCAL: {
        for (int d = e->u.ident.depth; d > 0; d--)
            f = f->parent;
        return kval_copy(&f->slots[e->u.ident.slot]);
    }
    case AST_BIND_BUILTIN:
        if (e->u.ident.target != NULL)
            return builtin_value(e->u.ident.target);
        return native_value((enum eval_native)e->u.ident.slot);
    default:
        return kval_error("Error: unresolved identifier %s",
                          e->u.ident.name.s);
    }
}

static const struct krl_builtin *
get_builtin(void)
{
    static const struct krl_builtin *get;
    if (get == NULL)
        get = builtin_lookup("get");
    return get;
}

static kval
eval_binary(struct krl_vm *vm, struct frame *f, const struct ast_expr *e)
{
    enum ast_binop op = e->u.binary.op;
    kval l = eval_expr(vm, f, e->u.binary.left);
    if (kval_is_error(&l))
        return l;
    if (op == AST_OR || op == AST_AND) {
        bool t = kval_truthy(&l);
        if ((op == AST_OR) == t)
            return l;
        kval_free(l);
        return eval_expr(vm, f, e->u.binary.right);
    }
    kval r = eval_expr(vm, f, e->u.binary.right);
    if (kval_is_error(&r)) {
        kval_free(l);
        return r;
    }
    kval v;
    switch (op) {
    case AST_EQ:
        v = kval_bool(kval_equal(&l, &r));
        break;
    case AST_NE:
        v = kval_bool(!kval_equal(&l, &r));
        break;
    case AST_LT:
        v = kval_bool(op_compare(&l, &r) < 0);
        break;
    case AST_LE:
        v = kval_bool(op_compare(&l, &r) <= 0);
        break;
    case AST_GT:
        v = kval_bool(op_compare(&l, &r) > 0);
        break;
    case AST_GE:
        v = kval_bool(op_compare(&l, &r) >= 0);
        break;
    case AST_COMPARE:
        v = kval_number(op_compare(&l, &r));
        break;
    case AST_CMP:
        v = kval_number(op_cmp(&l, &r));
        break;
    case AST_LIKE:
        v = op_like(&l, &r);
        break;
    case AST_CONTAINS:
        v = kval_bool(op_contains(&l, &r));
        break;
    case AST_ADD:
        v = check_size(vm, op_add(&l, &r));
        break;
    case AST_SUB:
        v = op_sub(&l, &r);
        break;
    case AST_MUL:
        v = op_mul(&l, &r);
        break;
    case AST_DIV:
        v = op_div(&l, &r);
        break;
    case AST_MOD:
        v = op_mod(&l, &r);
        break;
    default:
        v = kval_error("Error: bad operator");
        break;
    }
    kval_free(l);
    kval_free(r);
    return v;
}

static kval
eval_expr(struct krl_vm *vm, struct frame *f, const struct ast_expr *e)
{
    kval err;
    if (!step(vm, &err))
        return err;
    switch (e->kind) {
    case AST_NULL:
        return kval_null();
    case AST_BOOL:
        return kval_bool(e->u.boolean);
    case AST_NUMBER:
        return kval_number(e->u.number);
    case AST_STRING:
    case AST_REGEXP:
        if (e->konst == NULL)
            return kval_error("Error: literal was not compiled");
        return kval_copy(e->konst);
    case AST_CHEVRON: {
        kval s = kval_cstr("");
        for (size_t i = 0; i < e->u.chevron.n_parts; i++) {
            kval part = eval_expr(vm, f, e->u.chevron.parts[i]);
            if (kval_is_error(&part)) {
                kval_free(s);
                return part;
            }
            kval text = kval_kind(&part) == KV_STRING ? part
                                                       : op_to_string(&part);
            if (kval_kind(&part) != KV_STRING)
                kval_free(part);
            s = check_size(vm, kval_str_concat(s, text));
            if (kval_is_error(&s))
                return s;
        }
        return s;
    }
    case AST_ARRAY: {
        kval a = kval_array_sized(e->u.list.n_items);
        for (size_t i = 0; i < e->u.list.n_items; i++) {
            kval v = eval_expr(vm, f, e->u.list.items[i]);
            if (kval_is_error(&v)) {
                kval_free(a);
                return v;
            }
            a = kval_array_append(a, v);
        }
        return a;
    }
    case AST_MAP: {
        kval m = kval_map();
        for (size_t i = 0; i < e->u.map.n; i++) {
            kval v = eval_expr(vm, f, e->u.map.values[i]);
            if (kval_is_error(&v)) {
                kval_free(m);
                return v;
            }
            m = kval_map_put(m, kval_str(e->u.map.keys[i].s,
                                         e->u.map.keys[i].len), v);
        }
        return m;
    }
    case AST_IDENT:
        return eval_ident(vm, f, e);
    case AST_DOMAIN_IDENT:
        return host_get(vm, e->u.dident.domain.s, e->u.dident.name.s);
    case AST_CALL:
        return eval_call(vm, f, e);
    case AST_DOT: {
        kval obj = eval_expr(vm, f, e->u.dot.object);
        if (kval_is_error(&obj))
            return obj;
        kval v = kval_null();
        if (kval_kind(&obj) == KV_MAP) {
            const kval *got = kval_map_get(&obj, e->u.dot.name.s,
                                           e->u.dot.name.len);
            if (got != NULL)
                v = kval_copy(got);
        } else if (strcmp(e->u.dot.name.s, "length") == 0 &&
                   (kval_kind(&obj) == KV_STRING ||
                    kval_kind(&obj) == KV_ARRAY)) {
            v = kval_number((double)(kval_kind(&obj) == KV_STRING
                                         ? kval_str_len16(&obj)
                                         : kval_array_len(&obj)));
        }
        kval_free(obj);
        return v;
    }
    case AST_PATH:
    case AST_INDEX: {
        kval pair[2];
        pair[0] = eval_expr(vm, f, e->u.member.object);
        if (kval_is_error(&pair[0]))
            return pair[0];
        pair[1] = eval_expr(vm, f, e->u.member.key);
        if (kval_is_error(&pair[1])) {
            kval_free(pair[0]);
            return pair[1];
        }
        const struct krl_builtin *get = get_builtin();
        kval v = get != NULL ? get->fn(vm, NULL, pair, 2)
                             : kval_error("Error: no get builtin");
        kval_free(pair[0]);
        kval_free(pair[1]);
        return v;
    }
    case AST_UNARY: {
        kval v = eval_expr(vm, f, e->u.unary.operand);
        if (kval_is_error(&v))
            return v;
        kval r;
        switch (e->u.unary.op) {
        case AST_NOT:
            r = kval_bool(!kval_truthy(&v));
            break;
        case AST_NEG:
            r = op_neg(&v);
            break;
        default:
            r = kval_copy(&v);
            break;
        }
        kval_free(v);
        return r;
    }
    case AST_BINARY:
        return eval_binary(vm, f, e);
    case AST_TERNARY: {
        kval c = eval_expr(vm, f, e->u.ternary.cond);
        if (kval_is_error(&c))
            return c;
        bool t = kval_truthy(&c);
        kval_free(c);
        return eval_expr(vm, f, t ? e->u.ternary.then
                                  : e->u.ternary.otherwise);
    }
    case AST_FUNCTION:
    case AST_DEFACTION:
        return make_closure(vm, f, e);
    }
    return kval_error("Error: unknown expression");
}

/* ------------------------------------------------------------------ */
/* Compiling                                                           */

/* ---- what a rule body can reach (krl_rule_ents_only) ---- */

static bool expr_ents_only(const struct ast_expr *e);

static bool
args_ents_only(const struct ast_arg *args, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!expr_ents_only(args[i].value))
            return false;
    return true;
}

/* expr_ents_only - E (NULL allowed) evaluated in a rule frame reaches the
 * host only through ent:, event: and meta: reads */
static bool
expr_ents_only(const struct ast_expr *e)
{
    if (e == NULL)
        return true;
    switch (e->kind) {
    case AST_NULL:
    case AST_BOOL:
    case AST_NUMBER:
    case AST_STRING:
    case AST_REGEXP:
        return true;
    case AST_CHEVRON:
        for (size_t i = 0; i < e->u.chevron.n_parts; i++)
            if (!expr_ents_only(e->u.chevron.parts[i]))
                return false;
        return true;
    case AST_ARRAY:
        for (size_t i = 0; i < e->u.list.n_items; i++)
            if (!expr_ents_only(e->u.list.items[i]))
                return false;
        return true;
    case AST_MAP:
        for (size_t i = 0; i < e->u.map.n; i++)
            if (!expr_ents_only(e->u.map.values[i]))
                return false;
        return true;
    case AST_IDENT:
        /* the rule's own variables (whose values come from expressions
           like these, so hold no host function) and builtins; a global
           may hold anything */
        return e->u.ident.binding == AST_BIND_BUILTIN ||
               (e->u.ident.binding == AST_BIND_LOCAL &&
                e->u.ident.depth == 0);
    case AST_DOMAIN_IDENT: {
        const char *d = e->u.dident.domain.s, *n = e->u.dident.name.s;
        if (strcmp(d, "ent") == 0 || strcmp(d, "meta") == 0)
            return true;
        return strcmp(d, "event") == 0 &&
               (strcmp(n, "eci") == 0 || strcmp(n, "eid") == 0 ||
                strcmp(n, "domain") == 0 || strcmp(n, "name") == 0 ||
                strcmp(n, "attrs") == 0 || strcmp(n, "time") == 0);
    }
    case AST_CALL:
        return e->u.call.callee->kind == AST_IDENT &&
               expr_ents_only(e->u.call.callee) &&
               args_ents_only(e->u.call.args, e->u.call.n_args);
    case AST_DOT:
        return expr_ents_only(e->u.dot.object);
    case AST_PATH:
    case AST_INDEX:
        return expr_ents_only(e->u.member.object) &&
               expr_ents_only(e->u.member.key);
    case AST_UNARY:
        return expr_ents_only(e->u.unary.operand);
    case AST_BINARY:
        return expr_ents_only(e->u.binary.left) &&
               expr_ents_only(e->u.binary.right);
    case AST_TERNARY:
        return expr_ents_only(e->u.ternary.cond) &&
               expr_ents_only(e->u.ternary.then) &&
               expr_ents_only(e->u.ternary.otherwise);
    case AST_FUNCTION:
    case AST_DEFACTION:
        return false;
    }
    return false;
}

static bool
stmts_ents_only(const struct ast_stmt *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct ast_stmt *st = &v[i];
        if (!expr_ents_only(st->guard_expr))
            return false;
        switch (st->kind) {
        case AST_STMT_DECL:
            if (!expr_ents_only(st->decl.value))
                return false;
            break;
        case AST_STMT_ENT_SET:
        case AST_STMT_CLEAR:
            if (!expr_ents_only(st->ent_path) || !expr_ents_only(st->value))
                return false;
            break;
        case AST_STMT_RAISE:
            if (!expr_ents_only(st->event_type) ||
                !expr_ents_only(st->for_rid) ||
                !expr_ents_only(st->attributes))
                return false;
            break;
        case AST_STMT_LOG:
        case AST_STMT_ERROR:
            if (!expr_ents_only(st->value))
                return false;
            break;
        case AST_STMT_LAST:
            break;
        case AST_STMT_SCHEDULE:
        default:
            return false;
        }
    }
    return true;
}

static bool
rule_ents_only(const struct ast_rule *r)
{
    for (size_t i = 0; i < r->n_foreach; i++)
        if (!expr_ents_only(r->foreach[i].collection))
            return false;
    for (size_t i = 0; i < r->n_pre; i++)
        if (!expr_ents_only(r->pre[i].value))
            return false;
    const struct ast_action_block *b = r->actions;
    if (b != NULL) {
        if (!expr_ents_only(b->cond) || !expr_ents_only(b->choose))
            return false;
        for (size_t i = 0; i < b->n_actions; i++) {
            const struct ast_action *a = &b->actions[i];
            /* send_directive, noop and the like, named directly */
            if (a->callee->kind != AST_IDENT ||
                a->callee->u.ident.binding != AST_BIND_BUILTIN ||
                !args_ents_only(a->args, a->n_args))
                return false;
        }
    }
    const struct ast_postlude *p = &r->postlude;
    return stmts_ents_only(p->stmts, p->n_stmts) &&
           stmts_ents_only(p->else_stmts, p->n_else) &&
           stmts_ents_only(p->finally_stmts, p->n_finally);
}

struct krl_ruleset *
krl_ruleset_compile(const char *file, const char *src, size_t len,
                    struct krl_diags *diags)
{
    struct arena *a = arena_new();
    struct ast_ruleset *ast = parse_ruleset(a, file, src, len, diags);
    if (ast == NULL || resolve_ruleset(ast, a, diags) != 0) {
        arena_free(a);
        return NULL;
    }
    struct krl_ruleset *rs = xcalloc(1, sizeof *rs);
    rs->arena = a;
    rs->ast = ast;
    rs->ents_only = arena_allocarray(a, ast->n_rules + 1,
                                     sizeof *rs->ents_only);
    bool shadowed = false;      /* a module alias hides ent:, event: or meta: */
    for (size_t i = 0; i < ast->meta.n_uses; i++) {
        const struct ast_use *u = &ast->meta.uses[i];
        const char *alias = u->alias.s ? u->alias.s : u->rid.s;
        shadowed = shadowed || strcmp(alias, "ent") == 0 ||
                   strcmp(alias, "event") == 0 || strcmp(alias, "meta") == 0;
    }
    for (size_t i = 0; i < ast->n_rules; i++)
        rs->ents_only[i] = !shadowed && rule_ents_only(&ast->rules[i]);
    return rs;
}

bool
krl_rule_ents_only(const struct krl_ruleset *rs, size_t i)
{
    return i < rs->ast->n_rules && rs->ents_only[i];
}

struct krl_ruleset *
krl_ruleset_free(struct krl_ruleset *rs)
{
    if (rs == NULL)
        return NULL;
    arena_free(rs->arena);
    free(rs);
    return NULL;
}

const char *
krl_ruleset_rid(const struct krl_ruleset *rs)
{
    return rs->ast->rid.s;
}

const struct ast_ruleset *
krl_ruleset_ast(const struct krl_ruleset *rs)
{
    return rs->ast;
}

struct krl_body *
krl_body_compile(const char *file, const char *src, size_t len,
                 struct krl_diags *diags)
{
    struct arena *a = arena_new();
    struct ast_expr *fn = parse_body(a, file, src, len, diags);
    if (fn == NULL || resolve_body(fn, file, a, diags) != 0) {
        arena_free(a);
        return NULL;
    }
    struct krl_body *b = xcalloc(1, sizeof *b);
    b->arena = a;
    b->fn = fn;
    return b;
}

struct krl_body *
krl_body_free(struct krl_body *b)
{
    if (b == NULL)
        return NULL;
    arena_free(b->arena);
    free(b);
    return NULL;
}

kval
krl_body_eval(struct krl_vm *vm, const struct krl_body *b)
{
    struct closure cl = {b->fn, NULL, NULL};
    return invoke_closure(vm, &cl, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Instances and queries                                               */

struct krl_instance *
krl_instance_new(const struct krl_ruleset *rs, const kval *config,
                 const struct krl_limits *lim, kval *error)
{
    return krl_instance_new_hosted(rs, config, lim, NULL, NULL, error);
}

struct krl_instance *
krl_instance_new_hosted(const struct krl_ruleset *rs, const kval *config,
                        const struct krl_limits *lim,
                        const struct krl_host *host, void *host_ctx,
                        kval *error)
{
    struct krl_instance *inst = xcalloc(1, sizeof *inst);
    inst->rs = rs;
    inst->arena = arena_new();
    struct krl_vm *vm = vm_new(lim, inst->arena);
    krl_vm_set_host(vm, host, host_ctx);
    vm->rid = rs->ast->rid.s;
    const struct ast_ruleset *ast = rs->ast;
    struct frame *g = frame_new(vm, NULL, ast->global_frame_size);
    frame_keep(vm, g);
    inst->globals = g;
    kval r = kval_null();
    /* configure using: the caller's value, else the default */
    for (size_t i = 0; i < ast->meta.n_configure; i++) {
        const struct ast_decl *d = &ast->meta.configure[i];
        const kval *given = config != NULL && kval_kind(config) == KV_MAP
                                ? kval_map_get(config, d->name.s, d->name.len)
                                : NULL;
        kval v = given != NULL ? kval_copy(given) : eval_expr(vm, g, d->value);
        if (kval_is_error(&v)) {
            r = v;
            goto fail;
        }
        slot_set(g, d->slot, v);
    }
    r = eval_decls(vm, g, ast->globals, ast->n_globals);
    if (kval_is_error(&r))
        goto fail;
    krl_vm_free(vm);
    return inst;
fail:
    krl_vm_free(vm);
    krl_instance_free(inst);
    if (error != NULL)
        *error = r;
    else
        kval_free(r);
    return NULL;
}

struct krl_instance *
krl_instance_free(struct krl_instance *inst)
{
    if (inst == NULL)
        return NULL;
    arena_free(inst->arena);
    free(inst);
    return NULL;
}

static const struct ast_decl *
find_global(const struct ast_ruleset *ast, const char *name)
{
    for (size_t i = 0; i < ast->n_globals; i++)
        if (strcmp(ast->globals[i].name.s, name) == 0)
            return &ast->globals[i];
    for (size_t i = 0; i < ast->meta.n_configure; i++)
        if (strcmp(ast->meta.configure[i].name.s, name) == 0)
            return &ast->meta.configure[i];
    return NULL;
}

kval
krl_instance_query(struct krl_instance *inst, struct krl_vm *vm,
                   const char *name, const kval *args)
{
    const struct ast_ruleset *ast = inst->rs->ast;
    bool shared = false;
    for (size_t i = 0; i < ast->meta.n_shares; i++)
        if (strcmp(ast->meta.shares[i].s, name) == 0)
            shared = true;
    const struct ast_decl *d = shared ? find_global(ast, name) : NULL;
    if (d == NULL)
        return kval_error("Error: Ruleset %s does not have query function "
                          "\"%s\"", ast->rid.s, name);
    const kval *v = &inst->globals->slots[d->slot];
    if (kval_kind(v) != KV_FUNCTION)
        return kval_copy(v);
    /* bind ARGS by parameter name */
    size_t n = kval_func_n_params(v);
    kval *argv = xcalloc(n + 1, sizeof(kval));
    for (size_t i = 0; i < n; i++) {
        const kval *a = NULL;
        if (args != NULL && kval_kind(args) == KV_MAP)
            a = kval_map_get_str(args, kval_func_param(v, i));
        argv[i] = a != NULL ? kval_copy(a) : kval_null();
    }
    kval r = kval_func_call(vm, v, argv, n);
    for (size_t i = 0; i < n; i++)
        kval_free(argv[i]);
    free(argv);
    return r;
}


/* ------------------------------------------------------------------ */
/* Rules                                                               */

const struct krl_ruleset *
krl_instance_ruleset(const struct krl_instance *inst)
{
    return inst->rs;
}

/* One run of a rule body. */
struct rule_run {
    struct krl_vm *vm;
    const struct ast_rule *rule;
    struct frame *f;            /* the rule's frame */
    kval err;                   /* set when a statement fails */
};

enum run_status {
    RUN_OK,
    RUN_LAST,
    RUN_ERROR
};

/* bind_settings - the select's setting variables from BINDINGS by name */
static void
bind_settings(const struct ast_ee *ee, struct frame *f, const kval *bindings)
{
    if (ee == NULL)
        return;
    for (size_t i = 0; i < ee->n_setting; i++) {
        const kval *v = kval_map_get(bindings, ee->setting[i].s,
                                     ee->setting[i].len);
        slot_set(f, ee->setting_slots[i], v ? kval_copy(v) : kval_null());
    }
    for (size_t i = 0; i < ee->n_agg_vars; i++) {
        const kval *v = kval_map_get(bindings, ee->agg_vars[i].s,
                                     ee->agg_vars[i].len);
        slot_set(f, ee->agg_slots[i], v ? kval_copy(v) : kval_null());
    }
    for (size_t i = 0; i < ee->n_items; i++)
        bind_settings(ee->items[i], f, bindings);
}

static enum run_status
fail(struct rule_run *r, kval err)
{
    r->err = err;
    return RUN_ERROR;
}

/* host_effect - check a host is there for a postlude effect */
static bool
has_effect(struct rule_run *r, const void *fn, const char *what)
{
    if (r->vm->host != NULL && fn != NULL)
        return true;
    r->err = kval_error("Error: %s is not available here", what);
    return false;
}

/* event_name - the domain and type of a raise or schedule statement:
 * "raise d event t" or the dynamic "raise event "d:t"" (whitespace
 * removed, split at the first colon) */
static enum run_status
event_name(struct rule_run *r, const struct ast_stmt *st, kval *domain,
           kval *type)
{
    kval t = eval_expr(r->vm, r->f, st->event_type);
    if (kval_is_error(&t))
        return fail(r, t);
    kval text = op_to_string(&t);
    kval_free(t);
    if (st->event_domain.s != NULL) {
        *domain = kval_str(st->event_domain.s, st->event_domain.len);
        *type = text;
        return RUN_OK;
    }
    struct buf b;
    buf_init(&b);
    const char *p = kval_str_ptr(&text);
    for (size_t i = 0; i < kval_str_bytes(&text); i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            buf_addc(&b, p[i]);
    kval_free(text);
    const char *colon = memchr(b.data, ':', b.len);
    if (colon == NULL) {
        buf_release(&b);
        return fail(r, kval_error("Error: raise event needs \"domain:type\""));
    }
    *domain = kval_str(b.data, (size_t)(colon - b.data));
    *type = kval_str(colon + 1, b.len - (size_t)(colon - b.data) - 1);
    buf_release(&b);
    return RUN_OK;
}

/* eval_opt - evaluate E, or null when E is NULL */
static kval
eval_opt(struct rule_run *r, const struct ast_expr *e)
{
    return e != NULL ? eval_expr(r->vm, r->f, e) : kval_null();
}

static enum run_status
run_stmt(struct rule_run *r, const struct ast_stmt *st)
{
    struct krl_vm *vm = r->vm;
    const struct krl_host *h = vm->host;
    void *ctx = vm->host_ctx;
    kval v = kval_null(), path = kval_null(), res = kval_null();
    kval domain = kval_null(), type = kval_null();
    kval attrs = kval_null(), extra = kval_null();
    enum run_status status = RUN_OK;

    switch (st->kind) {
    case AST_STMT_DECL:
        v = eval_expr(vm, r->f, st->decl.value);
        if (kval_is_error(&v))
            return fail(r, v);
        slot_set(r->f, st->decl.slot, v);
        return RUN_OK;
    case AST_STMT_ENT_SET:
    case AST_STMT_CLEAR:
        path = eval_opt(r, st->ent_path);
        if (kval_is_error(&path))
            return fail(r, path);
        if (st->kind == AST_STMT_ENT_SET) {
            v = eval_expr(vm, r->f, st->value);
            if (kval_is_error(&v)) {
                status = fail(r, v);
                v = kval_null();
            } else if (has_effect(r, h ? (const void *)h->ent_set : NULL,
                                  "ent:")) {
                res = h->ent_set(ctx, st->ent_name.s,
                                 st->ent_path ? &path : NULL, &v);
            } else {
                status = RUN_ERROR;
            }
        } else if (has_effect(r, h ? (const void *)h->ent_clear : NULL,
                              "ent:")) {
            res = h->ent_clear(ctx, st->ent_name.s,
                               st->ent_path ? &path : NULL);
        } else {
            status = RUN_ERROR;
        }
        break;
    case AST_STMT_RAISE:
    case AST_STMT_SCHEDULE: {
        bool is_raise = st->kind == AST_STMT_RAISE;
        if (!has_effect(r, h ? (is_raise ? (const void *)h->raise
                                         : (const void *)h->schedule)
                             : NULL,
                        is_raise ? "raise" : "schedule"))
            return RUN_ERROR;
        if (event_name(r, st, &domain, &type) != RUN_OK)
            return RUN_ERROR;
        attrs = eval_opt(r, st->attributes);
        if (kval_is_error(&attrs)) {
            status = fail(r, attrs);
            attrs = kval_null();
            break;
        }
        extra = eval_opt(r, is_raise ? st->for_rid
                                     : (st->at ? st->at : st->repeat));
        if (kval_is_error(&extra)) {
            status = fail(r, extra);
            extra = kval_null();
            break;
        }
        if (is_raise) {
            res = h->raise(ctx, kval_str_ptr(&domain), kval_str_ptr(&type),
                           &attrs, &extra);
        } else {
            kval none = kval_null();
            res = h->schedule(ctx, kval_str_ptr(&domain), kval_str_ptr(&type),
                              st->at ? &extra : &none,
                              st->at ? &none : &extra, &attrs);
            if (!kval_is_error(&res) && st->setting_slot >= 0) {
                slot_set(r->f, st->setting_slot, res);
                res = kval_null();
            }
        }
        break;
    }
    case AST_STMT_LOG:
    case AST_STMT_ERROR:
        v = eval_expr(vm, r->f, st->value);
        if (kval_is_error(&v))
            return fail(r, v);
        if (st->kind == AST_STMT_LOG) {
            if (h != NULL && h->log != NULL)
                h->log(ctx, st->level.s, &v);
            break;
        }
        if (!has_effect(r, h ? (const void *)h->error : NULL, "error")) {
            status = RUN_ERROR;
            break;
        }
        res = h->error(ctx, st->level.s, &v, r->rule->name.s);
        if (strcmp(st->level.s, "error") == 0)
            status = RUN_LAST;
        break;
    case AST_STMT_LAST:
        return RUN_LAST;
    }
    if (kval_is_error(&res)) {
        status = fail(r, res);
        res = kval_null();
    }
    kval_free(v);
    kval_free(path);
    kval_free(res);
    kval_free(domain);
    kval_free(type);
    kval_free(attrs);
    kval_free(extra);
    return status;
}

static enum run_status
run_stmts(struct rule_run *r, const struct ast_stmt *stmts, size_t n,
          bool is_final)
{
    for (size_t i = 0; i < n; i++) {
        const struct ast_stmt *st = &stmts[i];
        if (st->guard == AST_GUARD_ON_FINAL && !is_final)
            continue;
        if (st->guard == AST_GUARD_IF) {
            kval g = eval_expr(r->vm, r->f, st->guard_expr);
            if (kval_is_error(&g))
                return fail(r, g);
            bool go = kval_truthy(&g);
            kval_free(g);
            if (!go)
                continue;
        }
        enum run_status s = run_stmt(r, st);
        if (s != RUN_OK)
            return s;
    }
    return RUN_OK;
}

/* run_body - pre, actions and postlude, once */
static enum run_status
run_body(struct rule_run *r, bool is_final)
{
    const struct ast_rule *rule = r->rule;
    kval v = eval_decls(r->vm, r->f, rule->pre, rule->n_pre);
    if (kval_is_error(&v))
        return fail(r, v);
    bool fired;
    v = run_actions(r->vm, r->f, rule->actions, &fired);
    if (kval_is_error(&v))
        return fail(r, v);
    kval_free(v);
    const struct ast_postlude *p = &rule->postlude;
    enum run_status s = RUN_OK;
    switch (p->kind) {
    case AST_POST_NONE:
        return RUN_OK;
    case AST_POST_ALWAYS:
        return run_stmts(r, p->stmts, p->n_stmts, is_final);
    case AST_POST_FIRED:
    case AST_POST_NOTFIRED:
        if (fired == (p->kind == AST_POST_FIRED))
            s = run_stmts(r, p->stmts, p->n_stmts, is_final);
        else
            s = run_stmts(r, p->else_stmts, p->n_else, is_final);
        if (s != RUN_OK)
            return s;
        return run_stmts(r, p->finally_stmts, p->n_finally, is_final);
    }
    return RUN_OK;
}

/* run_loops - the foreach loops from LEVEL in, then the body; IS_FINAL is
 * whether every enclosing loop is on its last iteration */
static enum run_status
run_loops(struct rule_run *r, size_t level, bool is_final)
{
    const struct ast_rule *rule = r->rule;
    if (level == rule->n_foreach)
        return run_body(r, is_final);
    const struct ast_foreach *fe = &rule->foreach[level];
    kval coll = eval_expr(r->vm, r->f, fe->collection);
    if (kval_is_error(&coll))
        return fail(r, coll);
    enum run_status s = RUN_OK;
    if (kval_kind(&coll) == KV_ARRAY) {
        size_t n = kval_array_len(&coll);
        for (size_t i = 0; i < n && s == RUN_OK; i++) {
            slot_set(r->f, fe->value_slot,
                     kval_copy(kval_array_get(&coll, i)));
            if (fe->key_slot >= 0)
                slot_set(r->f, fe->key_slot, kval_number((double)i));
            s = run_loops(r, level + 1, is_final && i + 1 == n);
        }
    } else if (kval_kind(&coll) == KV_MAP) {
        size_t n = kval_map_len(&coll), i = 0;
        struct kval_map_iter it;
        const kval *k, *v;
        kval_map_iter_init(&it, &coll);
        while (s == RUN_OK && kval_map_iter_next(&it, &k, &v)) {
            slot_set(r->f, fe->value_slot, kval_copy(v));
            if (fe->key_slot >= 0)
                slot_set(r->f, fe->key_slot, kval_copy(k));
            i++;
            s = run_loops(r, level + 1, is_final && i == n);
        }
        kval_map_iter_done(&it);
    }
    /* anything else (null, a string, a number) gives no iteration, as
       lodash's toPairs does for the values KRL can hold */
    kval_free(coll);
    return s;
}

/* rule_frame_enter/leave - the rule's frame, reclaimed as calls are */
struct rule_frame_mark {
    struct arena_mark mark;
    uint64_t closures;
};

static struct frame *
rule_frame_enter(struct krl_instance *inst, struct krl_vm *vm,
                 const struct ast_rule *rule, struct rule_frame_mark *m)
{
    m->mark = arena_mark(vm->arena);
    m->closures = vm->closures_made;
    return frame_new(vm, inst->globals, rule->frame_size);
}

static void
rule_frame_leave(struct krl_vm *vm, struct frame *f,
                 const struct rule_frame_mark *m)
{
    if (vm->closures_made == m->closures) {
        frame_clear(f);
        arena_release(vm->arena, m->mark);
    } else {
        frame_keep(vm, f);
    }
}

enum krl_rule_end
krl_rule_run(struct krl_instance *inst, struct krl_vm *vm,
             const struct ast_rule *rule, const kval *bindings, kval *err)
{
    struct rule_frame_mark m;
    struct rule_run r = {vm, rule, rule_frame_enter(inst, vm, rule, &m),
                         kval_null()};
    if (bindings != NULL && kval_kind(bindings) == KV_MAP)
        bind_settings(rule->select_when, r.f, bindings);
    enum run_status s = run_loops(&r, 0, true);
    rule_frame_leave(vm, r.f, &m);
    if (s == RUN_ERROR) {
        *err = r.err;
        return KRL_RULE_ERROR;
    }
    kval_free(r.err);
    return s == RUN_LAST ? KRL_RULE_LAST : KRL_RULE_DONE;
}

/* eval_truth - 1 when E is truthy in F, 0 when not, -1 with *ERR */
static int
eval_truth(struct krl_vm *vm, struct frame *f, const struct ast_expr *e,
           kval *err)
{
    kval v = eval_expr(vm, f, e);
    if (kval_is_error(&v)) {
        *err = v;
        return -1;
    }
    int result = kval_truthy(&v) ? 1 : 0;
    kval_free(v);
    return result;
}

int
krl_rule_select_where(struct krl_instance *inst, struct krl_vm *vm,
                      const struct ast_rule *rule, kval *err)
{
    if (rule->select_where == NULL)
        return 1;
    struct rule_frame_mark m;
    struct frame *f = rule_frame_enter(inst, vm, rule, &m);
    int result = eval_truth(vm, f, rule->select_where, err);
    rule_frame_leave(vm, f, &m);
    return result;
}

int
krl_instance_where(struct krl_instance *inst, struct krl_vm *vm,
                   const struct ast_rule *rule, const struct ast_ee *prim,
                   const kval *captures, kval *err)
{
    if (prim->where == NULL)
        return 1;
    struct rule_frame_mark m;
    struct frame *f = rule_frame_enter(inst, vm, rule, &m);
    size_t n_caps = captures != NULL && kval_kind(captures) == KV_ARRAY
                        ? kval_array_len(captures)
                        : 0;
    for (size_t i = 0; i < prim->n_setting && i < n_caps; i++)
        slot_set(f, prim->setting_slots[i],
                 kval_copy(kval_array_get(captures, i)));
    int result = eval_truth(vm, f, prim->where, err);
    rule_frame_leave(vm, f, &m);
    return result;
}

int
krl_rule_within_ms(struct krl_instance *inst, struct krl_vm *vm,
                   const struct ast_rule *rule, int64_t *ms, kval *err)
{
    static const double period_ms[] = {
        [AST_PERIOD_NONE] = 0,
        [AST_PERIOD_SECONDS] = 1000.0,
        [AST_PERIOD_MINUTES] = 60 * 1000.0,
        [AST_PERIOD_HOURS] = 3600 * 1000.0,
        [AST_PERIOD_DAYS] = 86400 * 1000.0,
        [AST_PERIOD_WEEKS] = 7 * 86400 * 1000.0,
        [AST_PERIOD_MONTHS] = 30 * 86400 * 1000.0,
        [AST_PERIOD_YEARS] = 365 * 86400 * 1000.0,
    };
    *ms = -1;
    if (rule->within == NULL)
        return 0;
    struct rule_frame_mark m;
    struct frame *f = rule_frame_enter(inst, vm, rule, &m);
    kval v = eval_expr(vm, f, rule->within);
    rule_frame_leave(vm, f, &m);
    if (kval_is_error(&v)) {
        *err = v;
        return -1;
    }
    double n;
    if (!op_to_number(&v, &n)) {
        kval_free(v);
        *err = kval_error("TypeError: within needs a number");
        return -1;
    }
    kval_free(v);
    *ms = (int64_t)(n * period_ms[rule->within_period]);
    return 0;
}

kval
krl_instance_provided(const struct krl_instance *inst, const char *name)
{
    const struct ast_ruleset *ast = inst->rs->ast;
    for (size_t i = 0; i < ast->meta.n_provides; i++)
        if (strcmp(ast->meta.provides[i].s, name) == 0) {
            const struct ast_decl *d = find_global(ast, name);
            if (d != NULL)
                return kval_copy(&inst->globals->slots[d->slot]);
        }
    return kval_error("Error: Module %s does not provide %s", ast->rid.s,
                      name);
}

kval
krl_ruleset_use_config(const struct krl_ruleset *rs, size_t i,
                       const struct krl_limits *lim)
{
    const struct ast_ruleset *ast = rs->ast;
    if (i >= ast->meta.n_uses)
        return kval_error("Error: no such use");
    const struct ast_use *use = &ast->meta.uses[i];
    struct krl_vm *vm = vm_new(lim, NULL);
    vm->rid = ast->rid.s;
    struct frame *g = frame_new(vm, NULL, ast->global_frame_size);
    kval config = kval_map();
    for (size_t j = 0; j < use->n_with; j++) {
        kval v = eval_expr(vm, g, use->with[j].value);
        if (kval_is_error(&v)) {
            kval_free(config);
            config = v;
            break;
        }
        config = kval_map_put(config, kval_str(use->with[j].name.s,
                                               use->with[j].name.len), v);
    }
    frame_clear(g);
    krl_vm_free(vm);
    return config;
}
