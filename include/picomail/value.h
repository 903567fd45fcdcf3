/*
 * value.h - the KRL value type.
 *
 * A kval is a small handle passed by value (jq's jv is the model).  Null,
 * booleans and numbers live inside the handle; strings, regexps, arrays,
 * maps, functions and errors live in refcounted heap blocks.  Values are
 * acyclic and immutable as seen from KRL; the C functions that "modify" an
 * array or map copy it first when it is shared (refcount > 1) and work in
 * place otherwise.
 *
 * Ownership, visible in every signature:
 *   - a parameter of type `kval` is CONSUMED: the callee owns that reference
 *     and releases it (or stores it);
 *   - a parameter of type `const kval *` is BORROWED: the callee only looks
 *     and must not keep the pointer (it may kval_copy() what it wants);
 *   - a returned `kval` is a NEW reference that the caller owns and must
 *     release with kval_free() (or pass on by value);
 *   - a returned `const kval *` or `const char *` is borrowed from an argument
 *     and valid while that argument is.
 *
 * Strings are UTF-8 in memory.  KRL (like JavaScript) measures strings in
 * UTF-16 code units: kval_str_len16(), kval_str_substr16() and friends count
 * those.  A lone surrogate is kept as its 3-byte WTF-8 form.
 *
 * Maps keep insertion order; kval_map_iter() enumerates them the way the
 * reference engine (a JavaScript object) does: integer-like keys first in
 * ascending numeric order, then the other keys in insertion order.
 *
 * Errors are values too (KV_ERROR): a message for the user.  An error is
 * never stored, compared or printed as data; the evaluator propagates it.
 *
 * Reference counts are not atomic: a value belongs to one thread at a time.
 */
#ifndef PICOMAIL_VALUE_H
#define PICOMAIL_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kval_kind {
    KV_NULL = 0,
    KV_BOOL,
    KV_NUMBER,
    KV_STRING,
    KV_REGEXP,
    KV_ARRAY,
    KV_MAP,
    KV_FUNCTION,                /* functions, actions and both */
    KV_ERROR
};

/* Fields are private to value.c; use the functions below. */
typedef struct kval {
    uint8_t kind;               /* enum kval_kind */
    uint8_t flags;              /* private */
    uint16_t pad;               /* private */
    uint32_t aux;               /* private */
    union {
        double num;
        bool b;
        struct kv_heap *p;
    } u;
} kval;

/* The evaluation context a function runs in.  Opaque here: value.c only
 * passes it through to the function's implementation. */
struct krl_vm;

/*
 * A function value's implementation.  ARGS are borrowed; the result is a new
 * reference (a KV_ERROR value reports a KRL runtime error).  DATA is the
 * pointer given to kval_func_new().
 */
typedef kval kval_call_fn(struct krl_vm *vm, void *data, const kval *args,
                          size_t n_args);
/* Releases DATA when the last reference to the function value goes. */
typedef void kval_data_free_fn(void *data);

/* Kinds of callable, as typeof() reports them. */
#define KV_FN_FUNCTION  0x01    /* callable in an expression */
#define KV_FN_ACTION    0x02    /* callable in an action block */

/* ---- constructors (each returns a new reference) ---- */

kval kval_null(void);
kval kval_bool(bool b);
/* kval_number - NaN becomes null, as the reference treats NaN as Null */
kval kval_number(double d);
/* kval_str - copy LEN bytes of UTF-8 (invalid sequences become U+FFFD) */
kval kval_str(const char *s, size_t len);
kval kval_cstr(const char *s);
/* kval_str_take - adopt a malloc'd NUL-terminated UTF-8 buffer of LEN bytes */
kval kval_str_take(char *s, size_t len);
kval kval_str_fmt(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* kval_str_from16 - build from UTF-16 code units */
kval kval_str_from16(const uint16_t *units, size_t n);
kval kval_array(void);
kval kval_array_sized(size_t capacity);
kval kval_map(void);
kval kval_func_new(kval_call_fn *call, void *data, kval_data_free_fn *dfree,
                   unsigned kinds, const char *name, const char *const *params,
                   size_t n_params);
/* kval_error - a runtime error; the message reads like "TypeError: ..." */
kval kval_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- reference counting ---- */

kval kval_copy(const kval *v);
void kval_free(kval v);
/* kval_refcount - for tests; 0 for values held inside the handle */
size_t kval_refcount(const kval *v);

/* ---- inspection ---- */

static inline enum kval_kind
kval_kind(const kval *v)
{
    return (enum kval_kind)v->kind;
}

static inline bool
kval_is_null(const kval *v)
{
    return v->kind == KV_NULL;
}

static inline bool
kval_is_error(const kval *v)
{
    return v->kind == KV_ERROR;
}

bool kval_get_bool(const kval *v);       /* the bool of a KV_BOOL */
double kval_get_number(const kval *v);   /* the double of a KV_NUMBER */
/* kval_typeof - "Null", "Boolean", "Number", "String", "RegExp", "Array",
 * "Map", "Function", "Action", "ActionFunction" (errors: "Error") */
const char *kval_typeof(const kval *v);
/* kval_truthy - JavaScript truthiness: false, 0, "" and null are false */
bool kval_truthy(const kval *v);
const char *kval_error_msg(const kval *v);

/* ---- strings ---- */

const char *kval_str_ptr(const kval *v);    /* NUL-terminated UTF-8 */
size_t kval_str_bytes(const kval *v);       /* length in bytes */
size_t kval_str_len16(const kval *v);       /* length in UTF-16 code units */
/* kval_str_unit16 - the code unit at UTF-16 index I (I < len16) */
uint16_t kval_str_unit16(const kval *v, size_t i);
/* kval_str_substr16 - code units [START, START+LEN) clamped to the string */
kval kval_str_substr16(const kval *v, size_t start, size_t len);
/* kval_str_byte_to16 - UTF-16 index of byte offset OFF (for regexp offsets) */
size_t kval_str_byte_to16(const kval *v, size_t off);
bool kval_str_eq(const kval *a, const kval *b);
/* kval_str_concat - A followed by B (both strings) */
kval kval_str_concat(kval a, kval b);
uint32_t kval_str_hash(const kval *v);

/* ---- regexps (see regexp.h for matching) ---- */

/* kval_regexp - compile SOURCE (ECMAScript syntax) with FLAGS ("g", "i",
 * "gi", ...); a bad pattern gives a KV_ERROR "SyntaxError: ..." */
kval kval_regexp(const char *source, size_t len, const char *flags);
struct krl_regexp *kval_get_regexp(const kval *v);   /* borrowed */

/* ---- arrays ---- */

size_t kval_array_len(const kval *v);
/* kval_array_get - borrowed element I (I < len) */
const kval *kval_array_get(const kval *v, size_t i);
kval kval_array_append(kval arr, kval item);
/* kval_array_set - replace element I (I < len) */
kval kval_array_set(kval arr, size_t i, kval item);
/* kval_array_slice - new array of elements [START, END) clamped */
kval kval_array_slice(const kval *arr, size_t start, size_t end);

/* ---- maps (keys are strings) ---- */

size_t kval_map_len(const kval *v);
/* kval_map_get - borrowed value of KEY, or NULL when absent */
const kval *kval_map_get(const kval *map, const char *key, size_t len);
const kval *kval_map_get_str(const kval *map, const char *key);
bool kval_map_has(const kval *map, const kval *key);
/* kval_map_put - set KEY (a string) to VAL; an existing key keeps its place */
kval kval_map_put(kval map, kval key, kval val);
kval kval_map_put_str(kval map, const char *key, kval val);
kval kval_map_delete(kval map, const char *key, size_t len);

/*
 * Enumeration in the reference engine's order.  The iterator borrows the
 * map; KEY and VAL are borrowed for the life of the map.
 *
 *     struct kval_map_iter it;
 *     kval_map_iter_init(&it, &map);
 *     while (kval_map_iter_next(&it, &key, &val)) ...
 *     kval_map_iter_done(&it);
 */
struct kval_map_iter {
    const kval *map;            /* private */
    size_t pos;                 /* private */
    size_t *order;              /* private: slot order, NULL if insertion */
    size_t n;                   /* private */
};
void kval_map_iter_init(struct kval_map_iter *it, const kval *map);
bool kval_map_iter_next(struct kval_map_iter *it, const kval **key,
                        const kval **val);
void kval_map_iter_done(struct kval_map_iter *it);

/* ---- functions ---- */

unsigned kval_func_kinds(const kval *fn);           /* KV_FN_* bits */
const char *kval_func_name(const kval *fn);         /* may be "" */
size_t kval_func_n_params(const kval *fn);
const char *kval_func_param(const kval *fn, size_t i);
void *kval_func_data(const kval *fn);
/* kval_func_call - call FN with borrowed ARGS; a new reference */
kval kval_func_call(struct krl_vm *vm, const kval *fn, const kval *args,
                    size_t n_args);

/* ---- equality ---- */

/* kval_equal - KRL ==: deep structural equality, no coercion */
bool kval_equal(const kval *a, const kval *b);

/* ---- numbers as JavaScript prints and reads them ---- */

/* kval_num_format - shortest round-trip form, as Number.prototype.toString;
 * BUF must hold KVAL_NUM_BUFSIZE bytes; returns the length */
#define KVAL_NUM_BUFSIZE 32
size_t kval_num_format(double d, char *buf);
/* kval_num_parse - JavaScript Number(string): trims, "" is 0, 0x/0o/0b,
 * "Infinity"; returns false when the text is not a number (NaN) */
bool kval_num_parse(const char *s, size_t len, double *out);

/* ---- additions (values) ---- */

/* kval_str_cmp16 - -1, 0 or 1 comparing two strings in UTF-16 code unit
 * order, as JavaScript's < does (non-strings compare as "") */
int kval_str_cmp16(const kval *a, const kval *b);

/* kval_null_json - a null read from JSON text.  It is null in every way
 * (kval_is_null, ==), but JSON_DATA output keeps it as a map member where a
 * KRL null (JavaScript undefined) is dropped: the reference's decode()
 * gives JS null, which JSON.stringify prints. */
kval kval_null_json(void);
bool kval_null_is_json(const kval *v);

#endif
