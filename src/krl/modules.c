/*
 * modules.c - lookup of the stateless KRL library modules (time:, math:,
 * random:) by domain and name, and the helpers their files share
 * (modules_internal.h): JavaScript number coercion and rounding, KRL
 * toString, and randomness from getrandom(2).
 */
#include "picomail/modules.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "picomail/buf.h"
#include "picomail/ops.h"
#include "picomail/value.h"
#include "lib_type_internal.h"
#include "modules_internal.h"

struct module_domain {
    const char *domain;
    const struct krl_module_entry *entries;
};

static const struct module_domain domains[] = {
    {"time", mod_time_entries},
    {"math", mod_math_entries},
    {"random", mod_random_entries},
};

static const struct module_domain *
find_domain(const char *domain)
{
    if (domain == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof domains / sizeof domains[0]; i++)
        if (strcmp(domains[i].domain, domain) == 0)
            return &domains[i];
    return NULL;
}

const struct krl_module_entry *
module_lookup(const char *domain, const char *name)
{
    const struct module_domain *d = find_domain(domain);

    if (d == NULL || name == NULL)
        return NULL;
    for (const struct krl_module_entry *e = d->entries; e->name != NULL; e++)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

int
module_has(const char *domain)
{
    return find_domain(domain) != NULL;
}

kval
module_value(const struct krl_module_entry *e)
{
    size_t n = 0;

    if (e->fn == NULL)
        return e->value();
    while (n < MODULE_MAX_PARAMS && e->params[n] != NULL)
        n++;
    return kval_func_new(e->fn, NULL, NULL, e->kinds, e->name, e->params, n);
}

/* ---- shared helpers ---- */

double
mod_js_number(const kval *v)
{
    struct buf b;
    double d;

    switch (kval_kind(v)) {
    case KV_NULL:
        return 0;
    case KV_BOOL:
        return kval_get_bool(v) ? 1 : 0;
    case KV_NUMBER:
        return kval_get_number(v);
    case KV_STRING:
        return kval_num_parse(kval_str_ptr(v), kval_str_bytes(v), &d) ? d
                                                                       : NAN;
    case KV_ARRAY:
        /* ToPrimitive of an array is its join(",") */
        buf_init(&b);
        lib_type_js_string(v, &b);
        if (!kval_num_parse(b.data, b.len, &d))
            d = NAN;
        buf_release(&b);
        return d;
    default:
        return NAN;
    }
}

double
mod_js_round(double x)
{
    double r;

    if (!isfinite(x) || x == 0)
        return x;
    if (x < 0 && x >= -0.5)
        return -0.0;
    r = floor(x);
    /* x - floor(x) is exact for doubles, so no x + 0.5 rounding error */
    if (x - r >= 0.5)
        r += 1;
    return r;
}

void
mod_krl_string(const kval *v, struct buf *out)
{
    kval s = op_to_string(v);

    buf_add(out, kval_str_ptr(&s), kval_str_bytes(&s));
    kval_free(s);
}

void
mod_random_bytes(void *p, size_t n)
{
    unsigned char *q = p;

    while (n > 0) {
        ssize_t got = getrandom(q, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            /* the kernel has had getrandom since 3.17: nothing to fall
               back to that would be as good */
            abort();
        }
        q += got;
        n -= (size_t)got;
    }
}

double
mod_random_unit(void)
{
    uint64_t r;

    mod_random_bytes(&r, sizeof r);
    return (double)(r >> 11) / 9007199254740992.0;     /* 2^53 */
}
