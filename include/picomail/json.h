/*
 * json.h - JSON text to and from KRL values.
 *
 * Parsing goes through jansson; objects keep member order.  Printing is
 * our own, so that numbers come out as JavaScript prints them and the
 * reference engine's rules hold: a map member whose value is null is
 * dropped (JSON.stringify drops undefined), null in an array prints null.
 */
#ifndef PICOMAIL_JSON_H
#define PICOMAIL_JSON_H

#include <stddef.h>

#include "picomail/buf.h"
#include "picomail/value.h"

/* json_parse - a new value, or a KV_ERROR naming the problem and its place;
 * nesting deeper than JSON_MAX_DEPTH is an error */
#define JSON_MAX_DEPTH 512
kval json_parse(const char *text, size_t len);

/* How json_encode treats regexps, functions and errors. */
enum json_mode {
    JSON_DATA,      /* refuse them: json_encode returns -1 */
    JSON_KRL        /* KRL encode(): they print as their toString text */
};

/* json_encode - append V to OUT; INDENT > 0 pretty-prints with that many
 * spaces per level (as JSON.stringify).  Returns 0, or -1 (with OUT
 * unspecified) when JSON_DATA meets a value JSON cannot carry */
int json_encode(const kval *v, enum json_mode mode, int indent,
                struct buf *out);
/* json_to_cstr - V as compact JSON in a malloc'd string; NULL on refusal */
char *json_to_cstr(const kval *v, enum json_mode mode);

#endif
