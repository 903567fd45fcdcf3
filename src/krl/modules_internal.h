/*
 * modules_internal.h - helpers shared by the time:, math: and random:
 * module files (mod_*.c).  Not part of any public contract.
 */
#ifndef PICOMAIL_MODULES_INTERNAL_H
#define PICOMAIL_MODULES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "picomail/buf.h"
#include "picomail/value.h"

/* mod_js_number - JavaScript's Number(V): null 0, booleans 1/0, strings
 * as Number(), arrays through their String() form, anything else NaN */
double mod_js_number(const kval *v);
/* mod_js_round - JavaScript's Math.round (halves go up, -0 kept) */
double mod_js_round(double x);
/* mod_krl_string - KRL toString(V) appended to OUT */
void mod_krl_string(const kval *v, struct buf *out);
/* mod_random_bytes - fill P with N bytes from getrandom(2) */
void mod_random_bytes(void *p, size_t n);
/* mod_random_unit - a uniform double in [0, 1) */
double mod_random_unit(void);

#endif
