/*
 * select.h - event expressions (`select when ...`) as state machines.
 *
 * sel_compile() turns the event expression of one rule into an immutable
 * machine (in the ruleset's arena, shareable between threads).  The state of
 * that machine for one pico is a plain KRL value - a map that JSON can carry
 * - so the engine stores it between events and it survives a restart (the
 * reference engine keeps it in memory only).  State values are owned by the
 * caller; sel_step() consumes the old state and returns the new one.
 *
 * Semantics are those of the reference engine's select-when library
 * (krl-language.md §3.1): primitives match domain and type exactly, then
 * attribute regexps (a missing attribute is "", others go through KRL
 * toString), then `where`; a failing primitive resets the whole machine;
 * or/and/before/then/after/between/not between/any/count/repeat with the
 * aggregators max/min/sum/avg/push; setting variables persist in the state
 * until the rule fires; `within` measures event time from the event that
 * left the start state and resets when the difference is strictly greater
 * than the limit.
 */
#ifndef PICOMAIL_SELECT_H
#define PICOMAIL_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "picomail/arena.h"
#include "picomail/ast.h"
#include "picomail/diag.h"
#include "picomail/value.h"

struct sel_machine;

/* The event being matched (all borrowed). */
struct sel_event {
    const char *domain;
    const char *type;
    const kval *attrs;          /* a map */
    int64_t time_ms;            /* event time, ms since the epoch */
};

/*
 * The `where` clause of primitive PRIM, with CAPTURES (an array of the
 * primitive's regexp captures, borrowed) bound to PRIM's setting variables:
 * the engine evaluates it.  Returns 1 (truthy), 0 (falsy) or -1 with a
 * KRL error in *ERR.
 */
typedef int sel_where_fn(void *ctx, const struct ast_ee *prim,
                         const kval *captures, kval *err);

/* sel_compile - the machine for RULE's select when (RULE->select_when must
 * not be NULL); NULL with a diagnostic for an invalid expression (e.g.
 * any N with N not below the number of operands) */
struct sel_machine *sel_compile(struct arena *a, const struct ast_rule *rule,
                                const char *file, struct krl_diags *diags);

/* sel_salient - whether an event DOMAIN:TYPE can affect the machine */
bool sel_salient(const struct sel_machine *m, const char *domain,
                 const char *type);
/* sel_n_salient/sel_salient_at - the (domain, type) pairs, for indexing */
size_t sel_n_salient(const struct sel_machine *m);
void sel_salient_at(const struct sel_machine *m, size_t i,
                    const char **domain, const char **type);

/* sel_initial - the start state (a new reference) */
kval sel_initial(const struct sel_machine *m);

/*
 * sel_step - feed one salient event.  STATE is consumed; *NEXT gets the new
 * state.  WITHIN_MS is the rule's `within` limit in ms, or -1 for none.
 * Returns 1 when the rule is selected: then *BINDINGS gets a map from
 * setting-variable name (and aggregator variable name) to value - names of
 * a branch that did not match are present with null - and the setting
 * variables are cleared from *NEXT.  Returns 0 when not selected (*BINDINGS
 * is null), -1 on an error from a `where` clause (in *ERR; *NEXT is the
 * state as before the event).
 */
int sel_step(const struct sel_machine *m, kval state,
             const struct sel_event *ev, int64_t within_ms,
             sel_where_fn *where, void *ctx, kval *next, kval *bindings,
             kval *err);

/* sel_is_lone - whether M is one primitive without aggregator (start,
 * the primitive, end) */
bool sel_is_lone(const struct sel_machine *m);
/*
 * sel_match_lone - for such a machine, sel_step from the start state when
 * the state after it is not wanted (a rule whose select is one primitive
 * keeps none): the same result, *BINDINGS and *ERR, without building state
 * values.  *BINDINGS is null, not an empty map, when M has no setting or
 * aggregator variables (nothing to bind).
 */
int sel_match_lone(const struct sel_machine *m, const struct sel_event *ev,
                   sel_where_fn *where, void *ctx, kval *bindings, kval *err);

#endif
