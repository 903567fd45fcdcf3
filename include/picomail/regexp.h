/*
 * regexp.h - ECMAScript-like regular expressions on PCRE2.
 *
 * A struct krl_regexp is immutable and refcounted; kval regexps hold one.
 * Patterns are compiled as UTF-8 with options chosen to behave like
 * JavaScript (flags "i" and "g"; "m" is accepted and ignored, as in the
 * reference's 1.x compiler).  Offsets are byte offsets into the subject.
 */
#ifndef PICOMAIL_REGEXP_H
#define PICOMAIL_REGEXP_H

#include <stdbool.h>
#include <stddef.h>

struct krl_regexp;

#define REGEXP_MAX_GROUPS 32

/* One match: group 0 is the whole match; an unset group has start == -1. */
struct regexp_match {
    int n_groups;                       /* groups including group 0 */
    long start[REGEXP_MAX_GROUPS];
    long end[REGEXP_MAX_GROUPS];
};

/* regexp_compile - NULL on a bad pattern or flag, with a message in ERR */
struct krl_regexp *regexp_compile(const char *src, size_t len,
                                  const char *flags, char *err,
                                  size_t errlen);
struct krl_regexp *regexp_ref(struct krl_regexp *re);
void regexp_unref(struct krl_regexp *re);
const char *regexp_source(const struct krl_regexp *re);   /* as written */
bool regexp_global(const struct krl_regexp *re);
bool regexp_ignore_case(const struct krl_regexp *re);
/* regexp_exec - search SUBJECT from byte offset START; 1 on a match, 0 on
 * none, -1 on a matching error (resource limit) */
int regexp_exec(const struct krl_regexp *re, const char *subject,
                size_t len, size_t start, struct regexp_match *m);

#endif
