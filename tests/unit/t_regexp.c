/*
 * t_regexp.c - unit tests for regexp.c: JavaScript semantics on PCRE2.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "picomail/regexp.h"
#include "tap.h"

/* A pattern, its flags, a subject and what group 0 (and group 1) should
 * be; NULL want0 means "no match"; "ERR" in flags column of want0 means the
 * pattern must not compile. */
struct mcase {
    const char *pat;
    const char *flags;
    const char *subj;
    const char *want0;
    const char *want1;
};

static const struct mcase mcases[] = {
    /* basics */
    {"abc", "", "xxabcxx", "abc", NULL},
    {"a(b)c", "", "abc", "abc", "b"},
    {"a(x)?c", "", "ac", "ac", "(unset)"},
    {"ABC", "i", "xabcx", "abc", NULL},
    {"ABC", "", "xabcx", NULL, NULL},
    {"é", "i", "É", "É", NULL},
    {"straße", "i", "STRAßE", "STRAßE", NULL},
    /* $ only at the very end (no m) */
    {"a$", "", "a\n", NULL, NULL},
    {"a$", "m", "a\nb", NULL, NULL},
    {"^b", "m", "a\nb", NULL, NULL},
    {"a$", "", "ba", "a", NULL},
    /* . excludes the four JavaScript line terminators only */
    {"a.c", "", "a\nc", NULL, NULL},
    {"a.c", "", "a\rc", NULL, NULL},
    {"a.c", "", "a\xe2\x80\xa8" "c", NULL, NULL},
    {"a.c", "", "a\tc", "a\tc", NULL},
    {"a.c", "", "a\xc3\xa9" "c", "a\xc3\xa9" "c", NULL},
    {"a.c", "", "a\xf0\x9f\x98\x80" "c", "a\xf0\x9f\x98\x80" "c", NULL},
    {"[.]", "", "a.b", ".", NULL},
    /* \d and \w are ASCII */
    {"\\d+", "", "x\xd9\xa3" "42", "42", NULL},
    {"\\w+", "", "\xc3\xa9" "ab_1\xc3\xa9", "ab_1", NULL},
    {"\\W", "", "ab\xc3\xa9", "\xc3\xa9", NULL},
    {"\\bé", "", "aé", "é", NULL},
    {"a\\bb", "", "ab a b", NULL, NULL},
    {"\\B", "", "é", "", NULL},
    /* \s is JavaScript's Unicode white space */
    {"a\\sb", "", "a\xc2\xa0" "b", "a\xc2\xa0" "b", NULL},
    {"a\\sb", "", "a\xe3\x80\x80" "b", "a\xe3\x80\x80" "b", NULL},
    {"a\\sb", "", "a\xef\xbb\xbf" "b", "a\xef\xbb\xbf" "b", NULL},
    {"a\\sb", "", "a\x0b" "b", "a\x0b" "b", NULL},
    {"a\\sb", "", "a\xc2\x85" "b", NULL, NULL},
    {"a\\sb", "", "a\xe1\xa0\x8e" "b", NULL, NULL},
    {"\\S+", "", "  x\xc2\xa0y", "x", NULL},
    {"[\\s]+", "", "ab \xe2\x80\x83\tc", " \xe2\x80\x83\t", NULL},
    {"[^\\s]+", "", "  ab c", "ab", NULL},
    {"[\\S]+", "", "  a\xf0\x9f\x98\x80" "b c", "a\xf0\x9f\x98\x80" "b", NULL},
    {"[^\\S]+", "", "ab \xc2\xa0" "c", " \xc2\xa0", NULL},
    {"[\\s-z]+", "", "a-z -b", "-z -", NULL},
    {"[\\d-z]+", "", "a-z1-b", "-z1-", NULL},
    /* \v is vertical tab only */
    {"\\v", "", "a\nb\x0b", "\x0b", NULL},
    /* \u escapes, surrogate pairs, \u{...} as in JavaScript without u */
    {"\\u0041", "", "xA", "A", NULL},
    {"[\\u0041-\\u0043]+", "", "xABCD", "ABC", NULL},
    {"\\u00e9", "", "caf\xc3\xa9", "\xc3\xa9", NULL},
    {"\\uD83D\\uDE00", "", "x\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", NULL},
    {"[\\uD83D\\uDE00]", "", "x\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", NULL},
    {"a\\uD800?b", "", "ab", "ab", NULL},
    {"\\uD800", "", "a\xed\xa0\x80" "b", NULL, NULL},
    {"\\u{3}", "", "auuu", "uuu", NULL},
    {"\\u12", "", "u12", "u12", NULL},
    {"\\x41", "", "A", "A", NULL},
    {"\\xg", "", "xg", "xg", NULL},
    /* identity escapes of letters JavaScript does not know */
    {"\\a\\e\\h\\p\\z", "", "aehpz", "aehpz", NULL},
    {"\\Qa\\E", "", "QaE", "QaE", NULL},
    {"\\A", "", "A", "A", NULL},
    {"\\K", "", "aK", "K", NULL},
    {"\\p{L}", "", "p{L}", "p{L}", NULL},
    {"[\\B]", "", "aB", "B", NULL},
    {"\\/", "", "a/b", "/", NULL},
    {"\\.", "", "a.b", ".", NULL},
    {"\\c", "", "\\c", "\\c", NULL},
    {"\\cJ", "", "\n", "\n", NULL},
    /* backreferences and legacy octal */
    {"(a)\\1", "", "aa", "aa", "a"},
    {"\\1(a)", "", "a", "a", "a"},
    {"(a)|\\1b", "", "b", "b", "(unset)"},
    {"\\2(a)", "", "\x02" "a", "\x02" "a", "a"},
    {"\\101", "", "A", "A", NULL},
    {"\\0", "", "a\0", "\0", NULL},
    {"\\8", "", "8", "8", NULL},
    {"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\\10", "", "abcdefghijj",
     "abcdefghijj", "a"},
    {"(a)\\10", "", "a\x08", "a\x08", "a"},
    {"\\k", "", "k", "k", NULL},
    {"(?<x>a)\\k<x>", "", "aa", "aa", "a"},
    /* classes: [ literal, empty classes */
    {"[[:alpha:]]+", "", "x:al[", NULL, NULL},
    {"[[:alpha:]]+", "", "xp]]", "p]]", NULL},
    {"a[]", "", "a", NULL, NULL},
    {"a[^]c", "", "a\nc", "a\nc", NULL},
    {"[^a]", "", "a\xc3\xa9", "\xc3\xa9", NULL},
    /* lookaround, groups */
    {"a(?=b)", "", "acab", "a", NULL},
    {"a(?!b)", "", "abac", "a", NULL},
    {"(?<=a)b", "", "cbab", "b", NULL},
    {"(?:a)(b)", "", "ab", "ab", "b"},
    {"(?<name>b)", "", "ab", "b", "b"},
    {"a{", "", "a{", "a{", NULL},
    {"a{,2}", "", "a{,2}", "a{,2}", NULL},
    {"x*", "", "", "", NULL},
    /* errors */
    {"(", "", "", "ERR", NULL},
    {"a)", "", "", "ERR", NULL},
    {"*", "", "", "ERR", NULL},
    {"[b-a]", "", "", "ERR", NULL},
    {"a", "x", "", "ERR", NULL},
    {"a", "s", "", "ERR", NULL},
    {"a", "gg", "", "ERR", NULL},
    {"[\\uD800]", "", "", "ERR", NULL},
    {"\\", "", "", "ERR", NULL},
    {"(?<=a+)b", "", "", "ERR", NULL},
    /* PCRE2-only syntax is a JavaScript syntax error */
    {"(?i)a", "", "", "ERR", NULL},
    {"(?x)", "", "", "ERR", NULL},
    {"(?>a)", "", "", "ERR", NULL},
    {"(?|a)", "", "", "ERR", NULL},
    {"(?#c)", "", "", "ERR", NULL},
    {"(?P<n>a)", "", "", "ERR", NULL},
    {"(*UTF)a", "", "", "ERR", NULL},
    {"(?R)", "", "", "ERR", NULL},
    {"a(?", "", "", "ERR", NULL},
    {"[(?i)]", "", "(", "(", NULL},
    {"\\\\(?:a)", "", "x\\a", "\\a", NULL},
};

static void
check_case(const struct mcase *c)
{
    char name[256], err[256];
    struct regexp_match m;
    struct krl_regexp *re;
    int rc;

    snprintf(name, sizeof name, "/%s/%s on \"%s\"", c->pat, c->flags,
             c->subj);
    err[0] = '\0';
    re = regexp_compile(c->pat, strlen(c->pat), c->flags, err, sizeof err);
    if (c->want0 != NULL && strcmp(c->want0, "ERR") == 0) {
        t_ok(re == NULL, name);
        t_ok(err[0] != '\0', "error message set");
        regexp_unref(re);
        return;
    }
    if (re == NULL) {
        t_ok(0, name);
        printf("  # %s\n", err);
        return;
    }
    /* subjects with an embedded NUL are exactly their visible bytes + 1 */
    size_t slen = strlen(c->subj);
    if (strcmp(c->pat, "\\0") == 0)
        slen = 2;
    rc = regexp_exec(re, c->subj, slen, 0, &m);
    if (c->want0 == NULL) {
        t_eq_int(rc, 0, name);
    } else {
        t_eq_int(rc, 1, name);
        if (rc == 1) {
            char got[128];
            size_t n = (size_t)(m.end[0] - m.start[0]);
            size_t wn = strcmp(c->pat, "\\0") == 0 ? 1 : strlen(c->want0);
            t_ok(n == wn && n < sizeof got &&
                 memcmp(c->subj + m.start[0], c->want0, n) == 0, name);
            if (c->want1 != NULL) {
                if (strcmp(c->want1, "(unset)") == 0) {
                    t_ok(m.n_groups >= 2 && m.start[1] == -1 &&
                         m.end[1] == -1, name);
                } else {
                    n = (size_t)(m.end[1] - m.start[1]);
                    t_ok(m.start[1] >= 0 && n == strlen(c->want1) &&
                         memcmp(c->subj + m.start[1], c->want1, n) == 0,
                         name);
                }
            }
        }
    }
    regexp_unref(re);
}

/* Error messages use V8's wording, as the reference's SyntaxError does */
static const struct {
    const char *pat;
    const char *msg;
} msgs[] = {
    {"(", "Invalid regular expression: /(/: Unterminated group"},
    {"[", "Invalid regular expression: /[/: Unterminated character class"},
    {"*", "Invalid regular expression: /*/: Nothing to repeat"},
    {"a**", "Invalid regular expression: /a**/: Nothing to repeat"},
    {"a)", "Invalid regular expression: /a)/: Unmatched ')'"},
    {"\\", "Invalid regular expression: /\\/: \\ at end of pattern"},
    {"[b-a]", "Invalid regular expression: /[b-a]/: Range out of order in "
              "character class"},
    {"a{2,1}", "Invalid regular expression: /a{2,1}/: numbers out of order "
               "in {} quantifier"},
    {"(?x)", "Invalid regular expression: /(?x)/: Invalid group"},
    {"(*UTF)", "Invalid regular expression: /(*UTF)/: Nothing to repeat"},
    {"(?<a>x)(?<a>y)", "Invalid regular expression: /(?<a>x)(?<a>y)/: "
                       "Duplicate capture group name"},
    {"(?<a", "Invalid regular expression: /(?<a/: Invalid capture group "
             "name"},
    {"\\k<a>(?<b>x)", "Invalid regular expression: /\\k<a>(?<b>x)/: "
                        "Invalid named capture referenced"},
};

static void
test_messages(void)
{
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        char err[256] = "";
        struct krl_regexp *re = regexp_compile(msgs[i].pat,
                                               strlen(msgs[i].pat), "", err,
                                               sizeof err);
        t_ok(re == NULL, msgs[i].pat);
        t_eq_str(err, msgs[i].msg, msgs[i].pat);
        regexp_unref(re);
    }
}

static void
test_flags_and_source(void)
{
    char err[128];
    struct krl_regexp *re;

    re = regexp_compile("a\\.b#", 5, "gi", err, sizeof err);
    t_ok(re != NULL, "gi compiles");
    t_eq_str(regexp_source(re), "a\\.b#", "source kept as written");
    t_ok(regexp_global(re), "g remembered");
    t_ok(regexp_ignore_case(re), "i remembered");
    regexp_unref(re);

    re = regexp_compile("x", 1, "m", err, sizeof err);
    t_ok(re != NULL && !regexp_global(re) && !regexp_ignore_case(re),
         "m accepted, neither g nor i");
    regexp_unref(re);

    re = regexp_compile("x", 1, NULL, err, sizeof err);
    t_ok(re != NULL, "NULL flags means none");
    regexp_unref(re);

    re = regexp_compile("", 0, "", err, sizeof err);
    t_ok(re != NULL, "empty pattern compiles");
    t_eq_str(regexp_source(re), "", "empty source");
    regexp_unref(re);

    re = regexp_compile("(", 1, "", err, sizeof err);
    t_ok(re == NULL, "bad pattern");
    t_ok(strstr(err, "Invalid regular expression: /(/") != NULL,
         "message names the pattern");

    re = regexp_compile("a", 1, "q", err, sizeof err);
    t_ok(re == NULL, "bad flag");
    t_ok(strstr(err, "Invalid flags") != NULL, "flag message");

    /* a small err buffer is never overrun, NULL err is allowed */
    char tiny[8];
    memset(tiny, 'z', sizeof tiny);
    t_ok(regexp_compile("(", 1, "", tiny, 4) == NULL, "tiny err");
    t_ok(tiny[3] == '\0' && tiny[4] == 'z', "err truncated");
    t_ok(regexp_compile("(", 1, "", NULL, 0) == NULL, "NULL err");

    /* source with a NUL and non-UTF-8 bytes */
    re = regexp_compile("a\0b", 3, "", err, sizeof err);
    t_ok(re != NULL, "pattern with NUL");
    if (re != NULL) {
        struct regexp_match m;
        t_eq_int(regexp_exec(re, "xa\0b", 4, 0, &m), 1, "NUL matches");
        t_eq_int(m.start[0], 1, "NUL match start");
        regexp_unref(re);
    }
    t_ok(regexp_compile("\xff", 1, "", err, sizeof err) == NULL,
         "invalid UTF-8 pattern refused");

    /* too many groups */
    char many[200];
    size_t n = 0;
    for (int i = 0; i < REGEXP_MAX_GROUPS; i++) {
        many[n++] = '(';
        many[n++] = ')';
    }
    t_ok(regexp_compile(many, n, "", err, sizeof err) == NULL,
         "too many groups refused");
    re = regexp_compile(many, n - 2, "", err, sizeof err);
    t_ok(re != NULL, "31 groups allowed");
    if (re != NULL) {
        struct regexp_match m;
        t_eq_int(regexp_exec(re, "", 0, 0, &m), 1, "31 groups match");
        t_eq_int(m.n_groups, REGEXP_MAX_GROUPS, "n_groups counts group 0");
        regexp_unref(re);
    }
}

static void
test_refcount(void)
{
    char err[64];
    struct krl_regexp *re = regexp_compile("a", 1, "", err, sizeof err);
    t_ok(regexp_ref(re) == re, "ref returns the regexp");
    regexp_unref(re);
    struct regexp_match m;
    t_eq_int(regexp_exec(re, "a", 1, 0, &m), 1, "still alive after unref");
    regexp_unref(re);
    regexp_unref(NULL);
    t_ok(regexp_ref(NULL) == NULL, "ref NULL");
}

static void
test_exec_offsets(void)
{
    char err[64];
    struct regexp_match m;
    struct krl_regexp *re = regexp_compile("b(c)?", 5, "g", err, sizeof err);
    const char *s = "abcab";

    t_eq_int(regexp_exec(re, s, 5, 0, &m), 1, "first");
    t_eq_int(m.start[0], 1, "first start");
    t_eq_int(m.end[0], 3, "first end");
    t_eq_int(m.start[1], 2, "group start");
    t_eq_int(m.n_groups, 2, "two groups");
    t_eq_int(regexp_exec(re, s, 5, 3, &m), 1, "second");
    t_eq_int(m.start[0], 4, "second start");
    t_eq_int(m.start[1], -1, "unset group");
    t_eq_int(m.end[1], -1, "unset group end");
    t_eq_int(regexp_exec(re, s, 5, 5, &m), 0, "at end");
    t_eq_int(regexp_exec(re, s, 5, 6, &m), 0, "past end");
    regexp_unref(re);

    /* ^ anchors at the subject start, not at START */
    re = regexp_compile("^a", 2, "", err, sizeof err);
    t_eq_int(regexp_exec(re, "aa", 2, 1, &m), 0, "^ not at offset");
    regexp_unref(re);

    /* invalid UTF-8 and lone surrogates (WTF-8) in the subject */
    re = regexp_compile("b", 1, "", err, sizeof err);
    t_eq_int(regexp_exec(re, "\xff\xed\xa0\x80" "b", 5, 0, &m), 1,
             "invalid UTF-8 subject");
    t_eq_int(m.start[0], 4, "offset past invalid bytes");
    regexp_unref(re);
    re = regexp_compile(".", 1, "", err, sizeof err);
    t_eq_int(regexp_exec(re, "\xed\xa0\x80", 3, 0, &m), 0,
             ". does not match a lone surrogate");
    regexp_unref(re);
}

static void
test_backtracking_limit(void)
{
    char err[64], subj[80];
    struct regexp_match m;
    /* no single required last character, so PCRE2 cannot shortcut */
    struct krl_regexp *re = regexp_compile("(a+)+(b|c)", 10, "", err,
                                           sizeof err);
    clock_t t0 = clock();

    memset(subj, 'a', 40);
    subj[40] = 'd';
    t_eq_int(regexp_exec(re, subj, 41, 0, &m), -1,
             "catastrophic backtracking stops");
    t_ok((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0, "and stops soon");
    regexp_unref(re);

    re = regexp_compile("^(a|aa)*$", 9, "", err, sizeof err);
    memset(subj, 'a', 60);
    subj[60] = 'b';
    t_eq_int(regexp_exec(re, subj, 61, 0, &m), -1, "second bomb stops");
    regexp_unref(re);
}

int
main(void)
{
    for (size_t i = 0; i < sizeof mcases / sizeof mcases[0]; i++)
        check_case(&mcases[i]);
    test_messages();
    test_flags_and_source();
    test_refcount();
    test_exec_offsets();
    test_backtracking_limit();
    return tap_done();
}
