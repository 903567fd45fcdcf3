/*
 * ops.h - KRL operators and coercions, with the reference engine's rules
 * (krl-language.md §4.3).
 *
 * All arguments are borrowed; returned kvals are new references.  A
 * KV_ERROR result is a KRL TypeError with the reference's wording.
 */
#ifndef PICOMAIL_OPS_H
#define PICOMAIL_OPS_H

#include <stdbool.h>

#include "picomail/value.h"

/* op_to_string - KRL toString: "null", "true", JS numbers, re#src#gi,
 * strings as they are, "[Array]", "[Map]", "[Function]", "[Action]" */
kval op_to_string(const kval *v);
/* op_to_number - toNumberOrNull: null 0, booleans 1/0, strings as JS
 * Number() (Hex strings base 16), arrays and maps their size; false when
 * the result would be null */
bool op_to_number(const kval *v, double *out);

kval op_add(const kval *a, const kval *b);   /* numbers add, else concat */
kval op_sub(const kval *a, const kval *b);
kval op_mul(const kval *a, const kval *b);
kval op_div(const kval *a, const kval *b);   /* x / 0 is 0 */
kval op_mod(const kval *a, const kval *b);   /* x % 0 is 0 */
kval op_neg(const kval *a);
/* op_compare - <=>: numerically when both convert, else as strings */
int op_compare(const kval *a, const kval *b);
/* op_cmp - cmp: always as strings */
int op_cmp(const kval *a, const kval *b);
/* op_like - toString(a) tested against b (a regexp, or RegExp(toString b)) */
kval op_like(const kval *a, const kval *b);
/* op_contains - ><: array deep membership, map key; else false */
bool op_contains(const kval *a, const kval *b);

#endif
