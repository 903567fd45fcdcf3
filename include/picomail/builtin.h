/*
 * builtin.h - the KRL standard library: operators-as-functions, type,
 * string, number and collection functions (krl-language.md §5).
 *
 * Each library file (lib_*.c) exports a table of struct krl_builtin; this
 * module joins them for lookup by name.  A builtin is called like any
 * function value: ARGS borrowed, the receiver of a dot call is args[0],
 * fewer arguments than parameters means the missing ones are null (use
 * builtin_arg()), the result is a new reference and a KV_ERROR reports a
 * KRL TypeError.  Tables are static and immutable: thread-safe.
 */
#ifndef PICOMAIL_BUILTIN_H
#define PICOMAIL_BUILTIN_H

#include <stddef.h>

#include "picomail/value.h"

#define BUILTIN_MAX_PARAMS 8

struct krl_builtin {
    const char *name;
    kval_call_fn *fn;                   /* called with data == NULL */
    unsigned kinds;                     /* KV_FN_FUNCTION and/or KV_FN_ACTION */
    const char *params[BUILTIN_MAX_PARAMS]; /* parameter names, for named
                                               arguments; NULL-terminated */
};

/* builtin_arg - borrowed argument I, or a null when it was not passed */
const kval *builtin_arg(const kval *args, size_t n_args, size_t i);

/* builtin_lookup - the builtin called NAME, or NULL */
const struct krl_builtin *builtin_lookup(const char *name);
/* builtin_value - a function value for B (a new reference) */
kval builtin_value(const struct krl_builtin *b);
/* builtin_count/builtin_at - enumerate every builtin (for tests and docs) */
size_t builtin_count(void);
const struct krl_builtin *builtin_at(size_t i);

/* The tables, one per library file; each ends with an entry whose name is
 * NULL. */
extern const struct krl_builtin lib_type_builtins[];
extern const struct krl_builtin lib_string_builtins[];
extern const struct krl_builtin lib_collection_builtins[];

#endif
