/*
 * tap.h - a tiny test harness for the unit tests (one binary per module).
 *
 * Each check prints "ok" or "not ok" with its name and place; main()
 * returns tap_done(), which prints "N passed, N failed" and exits non-zero
 * when anything failed.  Header-only so each test program stays alone.
 */
#ifndef PICOMAIL_TAP_H
#define PICOMAIL_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_passed, tap_failed;
static int tap_verbose = -1;

static void
tap_result(int ok, const char *file, int line, const char *name,
           const char *detail)
{
    if (tap_verbose < 0) {
        const char *v = getenv("TAP_VERBOSE");
        tap_verbose = v != NULL && v[0] == '1';
    }
    if (ok) {
        tap_passed++;
        if (tap_verbose)
            printf("ok - %s\n", name);
    } else {
        tap_failed++;
        printf("not ok - %s (%s:%d)%s%s\n", name, file, line,
               detail ? "\n  " : "", detail ? detail : "");
    }
}

#define t_ok(cond, name) tap_result(!!(cond), __FILE__, __LINE__, (name), NULL)

#define t_eq_int(got, want, name)                                          \
    do {                                                                   \
        long long g_ = (long long)(got), w_ = (long long)(want);           \
        char d_[128];                                                      \
        snprintf(d_, sizeof d_, "got %lld, want %lld", g_, w_);            \
        tap_result(g_ == w_, __FILE__, __LINE__, (name), g_ == w_ ? NULL : d_); \
    } while (0)

#define t_eq_str(got, want, name)                                          \
    do {                                                                   \
        const char *g_ = (got), *w_ = (want);                              \
        int ok_ = g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0;         \
        char d_[1024];                                                     \
        snprintf(d_, sizeof d_, "got  %s\n  want %s", g_ ? g_ : "(null)",  \
                 w_ ? w_ : "(null)");                                      \
        tap_result(ok_, __FILE__, __LINE__, (name), ok_ ? NULL : d_);      \
    } while (0)

static int
tap_done(void)
{
    printf("%d passed, %d failed\n", tap_passed, tap_failed);
    return tap_failed ? 1 : 0;
}

#endif
