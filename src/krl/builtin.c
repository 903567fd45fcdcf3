/*
 * builtin.c - the standard library's lookup table; see builtin.h.
 *
 * The per-file tables are joined once into one array sorted by name, so a
 * lookup is a binary search.  The join happens on first use under
 * pthread_once; after that everything is read-only.  Function values for
 * builtins are created on demand (they are cheap: no data, no free).
 */
#include "picomail/builtin.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"

static const struct krl_builtin *const *all;   /* sorted by name */
static size_t n_all;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const kval null_value;   /* all-zero: KV_NULL */

static int
by_name(const void *a, const void *b)
{
    const struct krl_builtin *x = *(const struct krl_builtin *const *)a;
    const struct krl_builtin *y = *(const struct krl_builtin *const *)b;
    return strcmp(x->name, y->name);
}

static size_t
table_len(const struct krl_builtin *t)
{
    size_t n = 0;
    while (t[n].name != NULL)
        n++;
    return n;
}

static void
join_tables(void)
{
    const struct krl_builtin *tables[] = {
        lib_type_builtins, lib_string_builtins, lib_collection_builtins
    };
    size_t n = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        n += table_len(tables[t]);
    const struct krl_builtin **v = xcalloc(n, sizeof *v);
    size_t k = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (size_t i = 0; tables[t][i].name != NULL; i++)
            v[k++] = &tables[t][i];
    qsort(v, n, sizeof *v, by_name);
    all = v;
    n_all = n;
}

const kval *
builtin_arg(const kval *args, size_t n_args, size_t i)
{
    return i < n_args ? &args[i] : &null_value;
}

const struct krl_builtin *
builtin_lookup(const char *name)
{
    pthread_once(&once, join_tables);
    size_t lo = 0, hi = n_all;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, all[mid]->name);
        if (c == 0)
            return all[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

kval
builtin_value(const struct krl_builtin *b)
{
    size_t n = 0;
    while (n < BUILTIN_MAX_PARAMS && b->params[n] != NULL)
        n++;
    return kval_func_new(b->fn, NULL, NULL, b->kinds, b->name, b->params, n);
}

size_t
builtin_count(void)
{
    pthread_once(&once, join_tables);
    return n_all;
}

const struct krl_builtin *
builtin_at(size_t i)
{
    pthread_once(&once, join_tables);
    return i < n_all ? all[i] : NULL;
}
