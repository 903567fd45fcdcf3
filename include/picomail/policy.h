/*
 * policy.h - channel tags and event/query policies (krl-language.md §8.1).
 *
 * An event policy is {"allow": [{"domain", "name"}], "deny": [...]}; a
 * query policy the same with "rid" and "name".  "*" matches anything in
 * its field.  A matching deny wins; otherwise an allow must match.
 * Arguments are borrowed; results are new references (KV_ERROR with the
 * reference's wording when invalid or refused).  Pure functions.
 */
#ifndef PICOMAIL_POLICY_H
#define PICOMAIL_POLICY_H

#include "picomail/value.h"

enum policy_kind {
    POLICY_EVENT,               /* rules have domain and name */
    POLICY_QUERY                /* rules have rid and name */
};

/* policy_allow_all - {"allow": [{"domain|rid": "*", "name": "*"}],
 * "deny": []} */
kval policy_allow_all(enum policy_kind kind);
/* policy_normalize - check SPEC (NULL or null: allow all) and return it
 * with trimmed strings and both lists present */
kval policy_normalize(const kval *spec, enum policy_kind kind);
/* policy_check - null when POLICY lets A:B through, else the error */
kval policy_check(const kval *policy, enum policy_kind kind, const char *a,
                  const char *b);
/* tags_normalize - tags as the reference cleans them: trimmed, runs of
 * characters outside [a-z0-9_-] made "-", lower case; "" and "system"
 * refused (SYSTEM_OK lets the engine make its own family channels) */
kval tags_normalize(const kval *tags, bool system_ok);

#endif
