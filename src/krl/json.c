/*
 * json.c - JSON text to and from KRL values (json.h).
 *
 * Parsing goes through jansson (which keeps object members in insertion
 * order since 2.8; a repeated key keeps its first place and takes the last
 * value, as JSON.parse does).  Printing is our own, so that it matches
 * JSON.stringify: numbers as JavaScript prints them, its string escapes,
 * its indentation layout.
 *
 * Known differences from JSON.parse, all coming from jansson: a lone
 * surrogate escape ("\ud800"), a number too large for a double ("1e400",
 * which JavaScript reads as Infinity) and "\u0000" inside an object key
 * are parse errors here.
 */
#include "picomail/json.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"
#include "picomail/ops.h"

static kval
from_jansson(json_t *j, int depth)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        kval map;
        void *it;
        if (depth > JSON_MAX_DEPTH)
            break;
        map = kval_map();
        for (it = json_object_iter(j); it != NULL;
             it = json_object_iter_next(j, it)) {
            kval v = from_jansson(json_object_iter_value(it), depth + 1);
            if (kval_is_error(&v)) {
                kval_free(map);
                return v;
            }
            map = kval_map_put(map, kval_str(json_object_iter_key(it),
                                             json_object_iter_key_len(it)),
                               v);
        }
        return map;
    }
    case JSON_ARRAY: {
        kval arr;
        size_t i, n = json_array_size(j);
        if (depth > JSON_MAX_DEPTH)
            break;
        arr = kval_array_sized(n);
        for (i = 0; i < n; i++) {
            kval v = from_jansson(json_array_get(j, i), depth + 1);
            if (kval_is_error(&v)) {
                kval_free(arr);
                return v;
            }
            arr = kval_array_append(arr, v);
        }
        return arr;
    }
    case JSON_STRING:
        return kval_str(json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return kval_number((double)json_integer_value(j));
    case JSON_REAL:
        return kval_number(json_real_value(j));
    case JSON_TRUE:
        return kval_bool(true);
    case JSON_FALSE:
        return kval_bool(false);
    case JSON_NULL:
        return kval_null_json();
    }
    return kval_error("SyntaxError: JSON nested deeper than %d levels",
                      JSON_MAX_DEPTH);
}

kval
json_parse(const char *text, size_t len)
{
    json_error_t err;
    json_t *j;
    kval v;

    j = json_loadb(text, len,
                   JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL,
                   &err);
    if (j == NULL)
        return kval_error("SyntaxError: bad JSON: %s at line %d, column %d",
                          err.text, err.line, err.column);
    v = from_jansson(j, 1);
    json_decref(j);
    return v;
}

/* ---- printing ---- */

static void
put_string(struct buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i, run = 0;

    buf_addc(out, '"');
    for (i = 0; i < len; i++) {
        unsigned c = p[i];
        const char *esc = NULL;
        char u[6];

        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            break;
        }
        if (esc == NULL && c >= 0x20 &&
            !(c == 0xED && i + 2 < len && p[i + 1] >= 0xA0))
            continue;           /* printed raw with its run */
        buf_add(out, s + run, i - run);
        if (esc != NULL) {
            buf_adds(out, esc);
            run = i + 1;
        } else if (c < 0x20) {
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            buf_add(out, u, 6);
            run = i + 1;
        } else {
            /* a lone surrogate (WTF-8 ED A0..BF xx) prints as \udxxx */
            unsigned cp = ((c & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) |
                          (p[i + 2] & 0x3Fu);
            u[0] = '\\';
            u[1] = 'u';
            u[2] = hex[(cp >> 12) & 15];
            u[3] = hex[(cp >> 8) & 15];
            u[4] = hex[(cp >> 4) & 15];
            u[5] = hex[cp & 15];
            buf_add(out, u, 6);
            i += 2;
            run = i + 1;
        }
    }
    buf_add(out, s + run, len - run);
    buf_addc(out, '"');
}

static void
newline(struct buf *out, int indent, int depth)
{
    int i;
    buf_addc(out, '\n');
    for (i = 0; i < indent * depth; i++)
        buf_addc(out, ' ');
}

static int
encode(const kval *v, enum json_mode mode, int indent, int depth,
       struct buf *out)
{
    char num[KVAL_NUM_BUFSIZE];
    size_t i, n;

    if (depth > JSON_MAX_DEPTH &&
        (kval_kind(v) == KV_ARRAY || kval_kind(v) == KV_MAP)) {
        if (mode == JSON_DATA)
            return -1;
        buf_adds(out, "null");
        return 0;
    }
    switch (kval_kind(v)) {
    case KV_NULL:
        buf_adds(out, "null");
        return 0;
    case KV_BOOL:
        buf_adds(out, kval_get_bool(v) ? "true" : "false");
        return 0;
    case KV_NUMBER:
        if (isfinite(kval_get_number(v)))
            buf_add(out, num, kval_num_format(kval_get_number(v), num));
        else if (mode == JSON_KRL)
            put_string(out, "[JSObject]", 10);  /* the reference's replacer */
        else
            buf_adds(out, "null");
        return 0;
    case KV_STRING:
        put_string(out, kval_str_ptr(v), kval_str_bytes(v));
        return 0;
    case KV_REGEXP:
    case KV_FUNCTION: {
        kval s;
        if (mode == JSON_DATA)
            return -1;
        s = op_to_string(v);
        put_string(out, kval_str_ptr(&s), kval_str_bytes(&s));
        kval_free(s);
        return 0;
    }
    case KV_ERROR:
        if (mode == JSON_DATA)
            return -1;
        put_string(out, kval_error_msg(v), strlen(kval_error_msg(v)));
        return 0;
    case KV_ARRAY:
        n = kval_array_len(v);
        if (n == 0) {
            buf_adds(out, "[]");
            return 0;
        }
        buf_addc(out, '[');
        for (i = 0; i < n; i++) {
            if (i > 0)
                buf_addc(out, ',');
            if (indent > 0)
                newline(out, indent, depth);
            if (encode(kval_array_get(v, i), mode, indent, depth + 1,
                       out) < 0)
                return -1;
        }
        if (indent > 0)
            newline(out, indent, depth - 1);
        buf_addc(out, ']');
        return 0;
    case KV_MAP: {
        struct kval_map_iter it;
        const kval *key, *val;
        bool first = true;
        int rc = 0;

        kval_map_iter_init(&it, v);
        while (kval_map_iter_next(&it, &key, &val)) {
            /* JSON.stringify drops undefined (KRL null) members; the
             * reference's encode() replacer turns them into null first */
            if (mode == JSON_DATA && kval_is_null(val) &&
                !kval_null_is_json(val))
                continue;
            buf_addc(out, first ? '{' : ',');
            first = false;
            if (indent > 0)
                newline(out, indent, depth);
            put_string(out, kval_str_ptr(key), kval_str_bytes(key));
            buf_adds(out, indent > 0 ? ": " : ":");
            if (encode(val, mode, indent, depth + 1, out) < 0) {
                rc = -1;
                break;
            }
        }
        kval_map_iter_done(&it);
        if (rc < 0)
            return -1;
        if (first) {
            buf_adds(out, "{}");
            return 0;
        }
        if (indent > 0)
            newline(out, indent, depth - 1);
        buf_addc(out, '}');
        return 0;
    }
    }
    return -1;
}

int
json_encode(const kval *v, enum json_mode mode, int indent, struct buf *out)
{
    /* JSON.stringify uses at most 10 spaces */
    if (indent > 10)
        indent = 10;
    if (indent < 0)
        indent = 0;
    return encode(v, mode, indent, 1, out);
}

char *
json_to_cstr(const kval *v, enum json_mode mode)
{
    struct buf b;

    buf_init(&b);
    if (json_encode(v, mode, 0, &b) < 0) {
        buf_release(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}
