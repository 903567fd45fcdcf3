/*
 * lib_type_internal.h - private helpers of the KRL type library shared with
 * the other lib_*.c files.  Not part of any public contract.
 */
#ifndef PICOMAIL_LIB_TYPE_INTERNAL_H
#define PICOMAIL_LIB_TYPE_INTERNAL_H

#include "picomail/buf.h"
#include "picomail/value.h"

/*
 * lib_type_js_string - append JavaScript's String(V) to OUT (not KRL
 * toString): regexps print as /src/flags, arrays as their elements joined
 * with "," (null elements empty), maps as "[object Object]".  The reference
 * engine uses it where JS coerces a value to a property key (collect,
 * once, duplicates) and in a few error messages.
 */
void lib_type_js_string(const kval *v, struct buf *out);

#endif
