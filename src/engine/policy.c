/*
 * policy.c - channel tags and policies; see policy.h.
 */
#include "picomail/policy.h"

#include <ctype.h>
#include <string.h>

#include "picomail/buf.h"

static const char *
first_key(enum policy_kind kind)
{
    return kind == POLICY_EVENT ? "domain" : "rid";
}

kval
policy_allow_all(enum policy_kind kind)
{
    kval rule = kval_map();
    rule = kval_map_put_str(rule, first_key(kind), kval_cstr("*"));
    rule = kval_map_put_str(rule, "name", kval_cstr("*"));
    kval allow = kval_array_append(kval_array(), rule);
    kval p = kval_map();
    p = kval_map_put_str(p, "allow", allow);
    return kval_map_put_str(p, "deny", kval_array());
}

/* trimmed - S without surrounding white space, or an error if blank */
static kval
trimmed(const kval *s, const char *what)
{
    if (kval_kind(s) != KV_STRING)
        return kval_error("Error: Policy %s must be a string", what);
    const char *p = kval_str_ptr(s);
    size_t n = kval_str_bytes(s);
    while (n > 0 && isspace((unsigned char)*p)) {
        p++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    if (n == 0)
        return kval_error("Error: Policy %s cannot be blank", what);
    return kval_str(p, n);
}

static kval
normalize_list(const kval *list, enum policy_kind kind)
{
    if (list == NULL || kval_is_null(list))
        return kval_array();
    if (kval_kind(list) != KV_ARRAY)
        return kval_error("Error: Policy rules must be an array");
    kval out = kval_array();
    for (size_t i = 0; i < kval_array_len(list); i++) {
        const kval *rule = kval_array_get(list, i);
        if (kval_kind(rule) != KV_MAP || kval_map_len(rule) != 2) {
            kval_free(out);
            return kval_error("Error: Policy rules must be maps of %s and "
                              "name", first_key(kind));
        }
        const kval *a = kval_map_get_str(rule, first_key(kind));
        const kval *b = kval_map_get_str(rule, "name");
        if (a == NULL || b == NULL) {
            kval_free(out);
            return kval_error("Error: Policy rules must be maps of %s and "
                              "name", first_key(kind));
        }
        kval ta = trimmed(a, first_key(kind));
        kval tb = trimmed(b, "name");
        if (kval_is_error(&ta) || kval_is_error(&tb)) {
            kval err = kval_is_error(&ta) ? ta : tb;
            kval_free(kval_is_error(&ta) ? tb : ta);
            kval_free(out);
            return err;
        }
        kval r = kval_map();
        r = kval_map_put_str(r, first_key(kind), ta);
        r = kval_map_put_str(r, "name", tb);
        out = kval_array_append(out, r);
    }
    return out;
}

kval
policy_normalize(const kval *spec, enum policy_kind kind)
{
    if (spec == NULL || kval_is_null(spec))
        return policy_allow_all(kind);
    if (kval_kind(spec) != KV_MAP)
        return kval_error("Error: A policy must be a map of allow and deny");
    struct kval_map_iter it;
    const kval *k, *v;
    kval_map_iter_init(&it, spec);
    while (kval_map_iter_next(&it, &k, &v)) {
        if (strcmp(kval_str_ptr(k), "allow") != 0 &&
            strcmp(kval_str_ptr(k), "deny") != 0) {
            kval_map_iter_done(&it);
            return kval_error("Error: Policy has an unknown key: %s",
                              kval_str_ptr(k));
        }
    }
    kval_map_iter_done(&it);
    kval allow = normalize_list(kval_map_get_str(spec, "allow"), kind);
    if (kval_is_error(&allow))
        return allow;
    kval deny = normalize_list(kval_map_get_str(spec, "deny"), kind);
    if (kval_is_error(&deny)) {
        kval_free(allow);
        return deny;
    }
    kval p = kval_map();
    p = kval_map_put_str(p, "allow", allow);
    return kval_map_put_str(p, "deny", deny);
}

static bool
field_matches(const kval *rule, const char *key, const char *value)
{
    const kval *f = kval_map_get_str(rule, key);
    if (f == NULL || kval_kind(f) != KV_STRING)
        return false;
    const char *s = kval_str_ptr(f);
    return strcmp(s, "*") == 0 || strcmp(s, value) == 0;
}

static bool
any_matches(const kval *list, enum policy_kind kind, const char *a,
            const char *b)
{
    if (list == NULL || kval_kind(list) != KV_ARRAY)
        return false;
    for (size_t i = 0; i < kval_array_len(list); i++) {
        const kval *rule = kval_array_get(list, i);
        if (field_matches(rule, first_key(kind), a) &&
            field_matches(rule, "name", b))
            return true;
    }
    return false;
}

kval
policy_check(const kval *policy, enum policy_kind kind, const char *a,
             const char *b)
{
    if (any_matches(kval_map_get_str(policy, "deny"), kind, a, b))
        return kval_error("Error: Denied by channel policy");
    if (!any_matches(kval_map_get_str(policy, "allow"), kind, a, b))
        return kval_error("Error: Not allowed by channel policy");
    return kval_null();
}

static kval
tag_normalize(const kval *tag, bool system_ok)
{
    if (kval_kind(tag) != KV_STRING)
        return kval_error("Error: Channel tags must be strings");
    const char *p = kval_str_ptr(tag);
    struct buf b;
    buf_init(&b);
    bool dash = false;
    for (size_t i = 0; i < kval_str_bytes(tag); i++) {
        unsigned char c = (unsigned char)p[i];
        if (isalnum(c) || c == '_' || c == '-') {
            if (dash && b.len > 0)
                buf_addc(&b, '-');
            dash = false;
            buf_addc(&b, c == '-' ? '-' : (char)tolower(c));
        } else {
            dash = true;        /* white space and other characters */
        }
    }
    /* collapse repeated dashes and strip them at the ends */
    struct buf out;
    buf_init(&out);
    for (size_t i = 0; i < b.len; i++) {
        if (b.data[i] == '-' && (out.len == 0 || out.data[out.len - 1] == '-'))
            continue;
        buf_addc(&out, b.data[i]);
    }
    while (out.len > 0 && out.data[out.len - 1] == '-')
        out.data[--out.len] = '\0';
    buf_release(&b);
    kval result;
    if (out.len == 0)
        result = kval_error("Error: Channel tags cannot be blank");
    else if (!system_ok && strcmp(out.data, "system") == 0)
        result = kval_error("Error: Tag not allowed: system");
    else
        result = kval_str(out.data, out.len);
    buf_release(&out);
    return result;
}

kval
tags_normalize(const kval *tags, bool system_ok)
{
    kval out = kval_array();
    if (tags == NULL || kval_is_null(tags))
        return out;
    if (kval_kind(tags) == KV_STRING) {
        kval t = tag_normalize(tags, system_ok);
        if (kval_is_error(&t)) {
            kval_free(out);
            return t;
        }
        return kval_array_append(out, t);
    }
    if (kval_kind(tags) != KV_ARRAY) {
        kval_free(out);
        return kval_error("Error: Channel tags must be an array of strings");
    }
    for (size_t i = 0; i < kval_array_len(tags); i++) {
        kval t = tag_normalize(kval_array_get(tags, i), system_ok);
        if (kval_is_error(&t)) {
            kval_free(out);
            return t;
        }
        out = kval_array_append(out, t);
    }
    return out;
}
