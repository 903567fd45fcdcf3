/*
 * modules.h - the KRL library modules that need no pico state: time:,
 * math: and random: (krl-language.md §7.6).  The engine's host looks names
 * up here; modules that need the engine (ent:, event:, meta:, ctx:,
 * schedule:, http:, email:, ...) live in src/engine/.
 *
 * Each module file (mod_*.c) exports a table ending with an entry whose
 * name is NULL.  A function or action entry is called like a builtin
 * (builtin.h): ARGS borrowed, missing trailing arguments are null, a new
 * reference returned, KV_ERROR for a KRL error.  A property entry has fn
 * NULL and a value() that makes its value.  Tables are immutable;
 * functions are thread-safe.
 */
#ifndef PICOMAIL_MODULES_H
#define PICOMAIL_MODULES_H

#include "picomail/value.h"

#define MODULE_MAX_PARAMS 8

struct krl_module_entry {
    const char *name;
    kval_call_fn *fn;                   /* NULL for a property */
    unsigned kinds;                     /* KV_FN_FUNCTION and/or KV_FN_ACTION */
    const char *params[MODULE_MAX_PARAMS]; /* names, NULL-terminated */
    kval (*value)(void);                /* a property's value */
};

/* module_lookup - the entry DOMAIN:NAME, or NULL */
const struct krl_module_entry *module_lookup(const char *domain,
                                             const char *name);
/* module_has - whether DOMAIN is one of these modules */
int module_has(const char *domain);
/* module_value - a property's value, or a function value for a function or
 * action entry (a new reference) */
kval module_value(const struct krl_module_entry *e);

extern const struct krl_module_entry mod_time_entries[];
extern const struct krl_module_entry mod_math_entries[];
extern const struct krl_module_entry mod_random_entries[];

#endif
