/*
 * t_parser.c - unit tests of the KRL parser (parser.c) and the tree
 * printer (ast_dump.c).
 *
 * Tables of source text and the expected S-expression of the tree
 * (expressions through parse_body, rule sections inside a small ruleset),
 * a table of broken inputs with the expected message and line:col, checks
 * of node fields and positions, the nesting limits, robustness on every
 * prefix and on random mutations of a ruleset, every conformance ruleset,
 * and the time to parse a 1 MB ruleset.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/arena.h"
#include "picomail/ast_dump.h"
#include "picomail/buf.h"
#include "picomail/mem.h"
#include "picomail/parser.h"
#include "tap.h"

/* ---------------------------------------------------------------- */
/* Helpers                                                           */

/* dump_body - the tree of a body: the final expression alone when there
 * are no declarations; the diagnostic "L:C: msg" on error */
static void
dump_body(const char *src, size_t len, struct buf *out)
{
    struct arena *a = arena_new();
    struct krl_diags d;
    krl_diags_init(&d);
    struct ast_expr *e = parse_body(a, "t.krl", src, len, &d);
    if (e == NULL) {
        if (d.n == 1)
            buf_printf(out, "%d:%d: %s", d.items[0].line, d.items[0].col,
                       d.items[0].msg);
        else
            buf_printf(out, "NULL with %zu diagnostics", d.n);
    } else if (d.n != 0) {
        buf_printf(out, "tree with %zu diagnostics", d.n);
    } else if (e->u.function.n_decls == 0) {
        ast_dump_expr(out, e->u.function.result);
    } else {
        ast_dump_expr(out, e);
    }
    krl_diags_release(&d);
    arena_free(a);
}

/* dump_ruleset - the whole tree, or "L:C: msg" */
static void
dump_ruleset(const char *src, size_t len, struct buf *out)
{
    struct arena *a = arena_new();
    struct krl_diags d;
    krl_diags_init(&d);
    struct ast_ruleset *rs = parse_ruleset(a, "t.krl", src, len, &d);
    if (rs == NULL) {
        if (d.n == 1)
            buf_printf(out, "%d:%d: %s", d.items[0].line, d.items[0].col,
                       d.items[0].msg);
        else
            buf_printf(out, "NULL with %zu diagnostics", d.n);
    } else if (d.n != 0) {
        buf_printf(out, "tree with %zu diagnostics", d.n);
    } else {
        ast_dump_ruleset(out, rs);
    }
    krl_diags_release(&d);
    arena_free(a);
}

/* ---------------------------------------------------------------- */
/* Expressions                                                       */

struct ecase {
    const char *src;
    const char *want;
};

static const struct ecase exprs[] = {
    {"null",
     "null"},
    {"true",
     "true"},
    {"false",
     "false"},
    {"123",
     "123"},
    {"1.5",
     "1.5"},
    {".5",
     "0.5"},
    {"007",
     "7"},
    {"\"hi\"",
     "\"hi\""},
    {"\"\"",
     "\"\""},
    {"\"a\\\"b\"",
     "\"a\\\"b\""},
    {"\"a\\\\b\"",
     "\"a\\\\b\""},
    {"\"a\\nb\"",
     "\"a\\\\nb\""},
    {"\"a\\\\\\\"b\"",
     "\"a\\\\\\\"b\""},
    {"re#^a\\#b$#gi",
     "re#^a\\#b$#gi"},
    {"re#x#m",
     "re#x#m"},
    {"re#x#igm",
     "re#x#igm"},
    {"<<>>",
     "(chevron)"},
    {"<<plain text>>",
     "(chevron \"plain text\")"},
    {"<<hi #{name}!>>",
     "(chevron \"hi \" name \"!\")"},
    {"<<a \\#{b} c\\>d \\\\ e>>",
     "(chevron \"a #{b} c>d \\\\ e\")"},
    {"<<#{ {\"a\":1}{\"a\"} }>>",
     "(chevron (path (map (\"a\" 1)) \"a\"))"},
    {"<<x#{<<y#{z}>>}>>",
     "(chevron \"x\" (chevron \"y\" z))"},
    {"[]",
     "(array)"},
    {"[1, 2, 3,]",
     "(array 1 2 3)"},
    {"[[1], [2, [3]]]",
     "(array (array 1) (array 2 (array 3)))"},
    {"{}",
     "(map)"},
    {"{\"a\": 1, \"b\": [2],}",
     "(map (\"a\" 1) (\"b\" (array 2)))"},
    {"{\"a\": {\"b\": {\"c\": null}}}",
     "(map (\"a\" (map (\"b\" (map (\"c\" null))))))"},
    {"x",
     "x"},
    {"$x_1",
     "$x_1"},
    {"ent:counter",
     "ent:counter"},
    {"event:attrs{\"a\"}",
     "(path event:attrs \"a\")"},
    {"time:now()",
     "(call time:now)"},
    {"f()",
     "(call f)"},
    {"f(1, 2,)",
     "(call f 1 2)"},
    {"f(a, b = 2, c = 3)",
     "(call f a (= b 2) (= c 3))"},
    {"f(x = 1)",
     "(call f (= x 1))"},
    {"a.b",
     "(dot a b)"},
    {"a.b.c",
     "(dot (dot a b) c)"},
    {"x.f()",
     "(dotcall f x)"},
    {"x.f(1, 2)",
     "(dotcall f x 1 2)"},
    {"x.mod:f(1)",
     "(dotcall mod:f x 1)"},
    {"\"bob\".my_module:sayHello()",
     "(dotcall my_module:sayHello \"bob\")"},
    {"1.isnull()",
     "(dotcall isnull 1)"},
    {"(x.f)(1)",
     "(dotcall f x 1)"},
    {"f(1)(2)",
     "(call (call f 1) 2)"},
    {"a[0]",
     "(index a 0)"},
    {"a{\"b\"}{\"c\"}",
     "(path (path a \"b\") \"c\")"},
    {"a[0].b{\"c\"}[1]",
     "(index (path (dot (index a 0) b) \"c\") 1)"},
    {"ent:x{[\"a\", \"b\"]}",
     "(path ent:x (array \"a\" \"b\"))"},
    {"-x",
     "(neg x)"},
    {"+x",
     "(pos x)"},
    {"not x",
     "(not x)"},
    {"- -x",
     "(neg (neg x))"},
    {"not not x",
     "(not (not x))"},
    {"-x.f()",
     "(neg (dotcall f x))"},
    {"-x[0]",
     "(neg (index x 0))"},
    {"a + b",
     "(+ a b)"},
    {"a - b - c",
     "(- (- a b) c)"},
    {"a + b * c",
     "(+ a (* b c))"},
    {"(a + b) * c",
     "(* (+ a b) c)"},
    {"a * b / c % d",
     "(% (/ (* a b) c) d)"},
    {"a == b",
     "(== a b)"},
    {"a != b",
     "(!= a b)"},
    {"a < b <= c",
     "(<= (< a b) c)"},
    {"a > b >= c",
     "(>= (> a b) c)"},
    {"a like re#x#",
     "(like a re#x#)"},
    {"a >< b",
     "(>< a b)"},
    {"a <=> b",
     "(<=> a b)"},
    {"a cmp b",
     "(cmp a b)"},
    {"a && b || c",
     "(|| (&& a b) c)"},
    {"a || b && c",
     "(|| a (&& b c))"},
    {"not a == b",
     "(== (not a) b)"},
    {"a == b && c != d",
     "(&& (== a b) (!= c d))"},
    {"c => a | b",
     "(? c a b)"},
    {"c => a | d => b | e",
     "(? c a (? d b e))"},
    {"a || b => c | d",
     "(? (|| a b) c d)"},
    {"x = 1; x",
     "(function (params) (= x 1) x)"},
    {"x = 1 y = 2; [x, y]",
     "(function (params) (= x 1) (= y 2) (array x y))"},
    {"return 5",
     "5"},
    {"a = 1; return a;",
     "(function (params) (= a 1) a)"},
    {"function() { 1 }",
     "(function (params) 1)"},
    {"function(a, b = 2,) { c = a + b; return c }",
     "(function (params a (= b 2)) (= c (+ a b)) c)"},
    {"function(x) { x = x; x; }",
     "(function (params x) (= x x) x)"},
    {"function(){ one = 1; {\"two\": one} }",
     "(function (params) (= one 1) (map (\"two\" one)))"},
    {"function(){ one = 1; [index] }",
     "(function (params) (= one 1) (array index))"},
    {"defaction(a) { noop() }",
     "(defaction (params a) (single (action noop)))"},
    {"defaction() { every { send_directive(\"a\"); send_directive(\"b\") } }",
     "(defaction (params) (every (action send_directive \"a\") (action send_directive \"b\")))"},
    {"defaction(x) { if x then noop() return x }",
     "(defaction (params x) (if x (single (action noop))) (return x))"},
    {"defaction(x) { y = 2; send_directive(\"c\") setting(d) return d }",
     "(defaction (params x) (= y 2) (single (action send_directive \"c\" (setting d))) (return d))"},
    {"defaction() { }",
     "(defaction (params) (every))"},
    {"defaction() { choose x { a => noop() b => noop() } }",
     "(defaction (params) (choose x (action a => noop) (action b => noop)))"},
    {"defaction() { sample { noop() } return 1; }",
     "(defaction (params) (sample (action noop)) (return 1))"},
    {"count = 3; x",
     "(function (params) (= count 3) x)"},
    {"arr.any(f)",
     "(dotcall any arr f)"},
    {"x.like(y)",
     "(dotcall like x y)"},
};

static void
test_exprs(void)
{
    for (size_t k = 0; k < sizeof exprs / sizeof exprs[0]; k++) {
        struct buf got;
        buf_init(&got);
        dump_body(exprs[k].src, strlen(exprs[k].src), &got);
        t_eq_str(got.data, exprs[k].want, exprs[k].src);
        buf_release(&got);
    }
}

/* ---------------------------------------------------------------- */
/* Rules: SRC is the body of "ruleset t { rule r { SRC } }"; in the   */
/* expected dump, rule sections are separated by " | "               */

static const struct ecase rules[] = {
    {"select when a b",
     "(rule r | (select when (ee a b)))"},
    {"select when a:b",
     "(rule r | (select when (ee a b)))"},
    {"select when a b or c d",
     "(rule r | (select when (or (ee a b) (ee c d))))"},
    {"select when a b and c d or e f",
     "(rule r | (select when (or (and (ee a b) (ee c d)) (ee e f))))"},
    {"select when a b before c d then e f after g h",
     "(rule r | (select when (after (then (before (ee a b) (ee c d)) (ee e f)) (ee g h))))"},
    {"select when a b or (c d and e f)",
     "(rule r | (select when (or (ee a b) (and (ee c d) (ee e f)))))"},
    {"select when a b between(c d, e f)",
     "(rule r | (select when (between (ee a b) (ee c d) (ee e f))))"},
    {"select when a b not between(c d, e f)",
     "(rule r | (select when (not-between (ee a b) (ee c d) (ee e f))))"},
    {"select when a b or c d between(e f, g h)",
     "(rule r | (select when (or (ee a b) (between (ee c d) (ee e f) (ee g h)))))"},
    {"select when and(a b, c d, e f)",
     "(rule r | (select when (and (ee a b) (ee c d) (ee e f))))"},
    {"select when or(a b, c d)",
     "(rule r | (select when (or (ee a b) (ee c d))))"},
    {"select when after(a b, c d)",
     "(rule r | (select when (after (ee a b) (ee c d))))"},
    {"select when any 2 (a b, c d, e f)",
     "(rule r | (select when (any 2 (ee a b) (ee c d) (ee e f))))"},
    {"select when count 3 (a b)",
     "(rule r | (select when (count 3 (ee a b))))"},
    {"select when count 3 (a b c re#(\\d+)#) max(m)",
     "(rule r | (select when (count 3 (ee a b (match c re#(\\d+)#)) (max m))))"},
    {"select when repeat 2 (a b c re#(.+)# d re#(.+)#) push(x, y)",
     "(rule r | (select when (repeat 2 (ee a b (match c re#(.+)#) (match d re#(.+)#)) (push x y))))"},
    {"select when repeat 2 (a:b) min(m) sum(n)",
     "(rule r | (select when (repeat 2 (ee a b) (min m))) | (single (action sum n)))"},
    {"select when count 1 (a b) avg(q)",
     "(rule r | (select when (count 1 (ee a b) (avg q))))"},
    {"select when a b c re#^(.*)$#i setting(x)",
     "(rule r | (select when (ee a b (match c re#^(.*)$#i) (setting x))))"},
    {"select when a b c re#(.)# d re#(.)# setting(x, y) where x == y",
     "(rule r | (select when (ee a b (match c re#(.)#) (match d re#(.)#) (setting x y) (where (== x y)))))"},
    {"select when a b where attr > 3 setting(z)",
     "(rule r | (select when (ee a b (setting z) (where (> attr 3)))))"},
    {"select when a b where c",
     "(rule r | (select when (ee a b (where c))))"},
    {"select when setting b",
     "(rule r | (select when (ee setting b)))"},
    {"select when a b within 5 minutes",
     "(rule r | (select when (ee a b) (within 5 minutes)))"},
    {"select when a b or c d within 1 + 3 second",
     "(rule r | (select when (or (ee a b) (ee c d)) (within (+ 1 3) seconds)))"},
    {"select when a b within n days",
     "(rule r | (select when (ee a b) (within n days)))"},
    {"select where event:name == \"x\"",
     "(rule r | (select where (== event:name \"x\")))"},
    {"select where true",
     "(rule r | (select where true))"},
    {"foreach [1, 2] setting(x)",
     "(rule r | (foreach (array 1 2) x))"},
    {"foreach {\"a\": 1} setting(v, k) foreach v setting(w)",
     "(rule r | (foreach (map (\"a\" 1)) v k) | (foreach v w))"},
    {"pre { a = 1; b = a + 1 c = [a, b] }",
     "(rule r | (pre (= a 1) (= b (+ a 1)) (= c (array a b))))"},
    {"pre { }",
     "(rule r)"},
    {"noop()",
     "(rule r | (single (action noop)))"},
    {"send_directive(\"hi\", {\"a\": 1}) setting(d);",
     "(rule r | (single (action send_directive \"hi\" (map (\"a\" 1)) (setting d))))"},
    {"http:post(\"u\", body = {}) setting(r)",
     "(rule r | (single (action http:post \"u\" (= body (map)) (setting r))))"},
    {"if x then noop()",
     "(rule r | (if x (single (action noop))))"},
    {"if x > 1 then every { a(); b() c() }",
     "(rule r | (if (> x 1) (every (action a) (action b) (action c))))"},
    {"every { l1 => noop(); l2 => x:y() }",
     "(rule r | (every (action l1 => noop) (action l2 => x:y)))"},
    {"sample { a() b() }",
     "(rule r | (sample (action a) (action b)))"},
    {"choose x { a => noop() b => noop() }",
     "(rule r | (choose x (action a => noop) (action b => noop)))"},
    {"every { }",
     "(rule r | (every))"},
    {"always { }",
     "(rule r | (always))"},
    {"always { x = 1; ent:y := x; ent:z{\"k\"} := 2 ent:w{[\"a\", \"b\"]} := 3 }",
     "(rule r | (always (= x 1) (:= ent:y x) (:= ent:z \"k\" 2) (:= ent:w (array \"a\" \"b\") 3)))"},
    {"fired { raise a event \"b\" } else { raise event \"a:b\" attributes {} } finally { last }",
     "(rule r | (fired (raise a \"b\")) | (else (raise event \"a:b\" (attributes (map)))) | (finally (last)))"},
    {"notfired { last } else { clear ent:x }",
     "(rule r | (notfired (last)) | (else (clear ent:x)))"},
    {"notfired { log debug \"x\" } finally { error error \"bad\" }",
     "(rule r | (notfired (log debug \"x\")) | (finally (error error \"bad\")))"},
    {"fired { raise a event \"b\" for \"other.rid\" attributes {\"x\": 1} }",
     "(rule r | (fired (raise a \"b\" (for \"other.rid\") (attributes (map (\"x\" 1))))))"},
    {"fired { raise a event b.c() }",
     "(rule r | (fired (raise a (dotcall c b))))"},
    {"fired { schedule a event \"b\" at time:add(time:now(), {\"minutes\": 5}) attributes {} setting(id) }",
     "(rule r | (fired (schedule a \"b\" (at (call time:add (call time:now) (map (\"minutes\" 5)))) (attributes (map)) (setting id))))"},
    {"fired { schedule a event \"b\" repeat \"0 0 * * *\" }",
     "(rule r | (fired (schedule a \"b\" (repeat \"0 0 * * *\"))))"},
    {"fired { schedule event \"a:b\" at 1 }",
     "(rule r | (fired (schedule event \"a:b\" (at 1))))"},
    {"fired { ent:x := 1 if y; ent:z := 2 on final; last if z == 1 }",
     "(rule r | (fired (guard (:= ent:x 1) y) (on-final (:= ent:z 2)) (guard (last) (== z 1))))"},
    {"fired { log info \"a\"; log warn <<b #{c}>>; error info 3 }",
     "(rule r | (fired (log info \"a\") (log warn (chevron \"b \" c)) (error info 3)))"},
    {"fired { clear ent:x; clear ent:y{\"a\"}; }",
     "(rule r | (fired (clear ent:x) (clear ent:y \"a\")))"},
    {"fired { on = 1 }",
     "(rule r | (fired (= on 1)))"},
    {"select when a b pre { x = 1 } noop() fired { last }",
     "(rule r | (select when (ee a b)) | (pre (= x 1)) | (single (action noop)) | (fired (last)))"},
};

static void
test_rules(void)
{
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        struct buf src, got, flat;
        buf_init(&src);
        buf_init(&got);
        buf_init(&flat);
        buf_printf(&src, "ruleset t { rule r { %s } }", rules[k].src);
        dump_ruleset(src.data, src.len, &got);
        /* "(ruleset t\n  (rule r\n    A\n    B))" -> "(rule r | A | B)" */
        const char *s = strstr(got.data, "(rule ");
        if (s == NULL) {
            buf_adds(&flat, got.data);
        } else {
            for (; *s != '\0'; s++) {
                if (strncmp(s, "\n    ", 5) == 0) {
                    buf_adds(&flat, " | ");
                    s += 4;
                } else {
                    buf_addc(&flat, *s);
                }
            }
            if (flat.len > 0)
                flat.len--;     /* the ruleset's ")" */
            flat.data[flat.len] = '\0';
        }
        t_eq_str(flat.data, rules[k].want, rules[k].src);
        buf_release(&src);
        buf_release(&got);
        buf_release(&flat);
    }
}

/* ---------------------------------------------------------------- */
/* Whole rulesets                                                    */

static const struct ecase rulesets[] = {
    {"ruleset a {}", "(ruleset a)"},
    {"ruleset a { meta { } global { } }", "(ruleset a)"},
    {"ruleset a-b.c_d.e1 { }", "(ruleset a-b.c_d.e1)"},
    {"// c\nruleset /* c */ a { version \"2\" meta { name \"n\" } } // end",
     "(ruleset a\n  (meta (name \"n\") (version \"2\")))"},
    {"ruleset io.picolabs.test-error-messages {\n"
     "  meta {\n"
     "    name \"x\" description <<d>> author \"me\" version \"1.0\" "
     "logging off\n"
     "    use module a.b alias c with d = 1 and e = 2\n"
     "    use module x\n"
     "    use module y with z = 1 w = 2\n"
     "    configure using f = 3 g = 4\n"
     "    provides h, i\n"
     "    provide j\n"
     "    shares k\n"
     "    share l, m\n"
     "  }\n"
     "  global { n = 1; o = function(p) { p } }\n"
     "  rule q is active { select when a b }\n"
     "  rule s is inactive { }\n"
     "}",
     "(ruleset io.picolabs.test-error-messages\n"
     "  (meta (name \"x\") (description (chevron \"d\")) (author \"me\") "
     "(version \"1.0\") (logging off)\n"
     "    (use a.b alias c (with (= d 1) (= e 2)))\n"
     "    (use x)\n"
     "    (use y (with (= z 1) (= w 2)))\n"
     "    (configure (= f 3) (= g 4))\n"
     "    (provides h i j)\n"
     "    (shares k l m))\n"
     "  (global\n"
     "    (= n 1)\n"
     "    (= o (function (params p) p)))\n"
     "  (rule q\n"
     "    (select when (ee a b)))\n"
     "  (rule s inactive))"},
    {"ruleset a { meta { logging on configure using x = 1 configure using "
     "y = 2 } global { count = 1 any = 2 } }",
     "(ruleset a\n  (meta (logging on)\n    (configure (= x 1) (= y 2)))\n"
     "  (global\n    (= count 1)\n    (= any 2)))"},
};

static void
test_rulesets(void)
{
    for (size_t k = 0; k < sizeof rulesets / sizeof rulesets[0]; k++) {
        struct buf got;
        buf_init(&got);
        dump_ruleset(rulesets[k].src, strlen(rulesets[k].src), &got);
        t_eq_str(got.data, rulesets[k].want, rulesets[k].src);
        buf_release(&got);
    }
}

/* ---------------------------------------------------------------- */
/* Broken input: message and place                                   */

struct errcase {
    char kind;                  /* 'r': parse_ruleset, 'b': parse_body */
    const char *src;
    const char *want;           /* "line:col: message" */
};

static const struct errcase errors[] = {
    /* the reference's own error tests (krl-parser test/errors.ts) */
    {'r', "ruleset a{rule b{fired{ent:c=1}}}", "1:29: Expected `:=`"},
    {'r', "ruleset a{rule b{fired{ent:c:=}}}", "1:31: Expected an expression"},
    {'r', "ruleset a{rule b{fired{wat}}}", "1:24: Expected a declaration"},
    {'r', "ruleset a{rule b{fired{raise}}}", "1:29: Expected `event`"},
    {'r', "ruleset a{global{foo()}}", "1:18: Expected a declaration"},
    {'r', "ruleset a{rule b{pre{foo()}}}", "1:22: Expected a declaration"},
    {'b', "function(){a = one [i]}",
     "1:23: Expected the function return expression"},
    {'b', "function(){a = one {path}}",
     "1:26: Expected the function return expression"},
    {'r', "ruleset a{", "1:10: Expected `}`"},
    /* lexical errors */
    {'r', "ruleset a { global { x = \"abc } }", "1:26: Missing close \""},
    {'r', "ruleset a {\n global { x = /* abc } }", "2:15: Missing close */"},
    {'r', "ruleset a { global { x = re#abc } }", "1:26: Missing close #"},
    {'r', "ruleset a { global { x = << abc } }", "1:26: Missing close >>"},
    {'r', "ruleset a { global { x = @ } }", "1:26: Unsupported characters"},
    {'r', "ruleset a { global { x = \xc3\xa9 } }",
     "1:26: Unsupported characters"},
    {'b', "x = 1;\n  y = #", "2:7: Unsupported characters"},
    /* a syntax error before a lexical one wins, as in the reference */
    {'r', "ruleset a { rule } \"open", "1:18: Expected Identifier"},
    /* rulesets and meta */
    {'r', "", "1:1: Expected `ruleset`"},
    {'r', "rulesat a {}", "1:1: Expected `ruleset`"},
    {'r', "ruleset {}", "1:9: Expected RulesetID"},
    {'r', "ruleset a. { }",
     "1:11: RulesetID cannot end with a `.`\nValid ruleset IDs are reverse "
     "domain name. i.e. `io.picolabs.some.cool.name`"},
    {'r', "ruleset a . b { }", "1:11: Expected `{`"},
    {'r', "ruleset a { global { x = 1 } } junk", "1:32: Expected `(end)`"},
    {'r', "ruleset a { meta { foo 1 } }", "1:20: Unsupported meta key: foo"},
    {'r', "ruleset a { meta { name \"a\" name \"b\" } }",
     "1:29: only 1 meta.name allowed"},
    {'r', "ruleset a { version \"1\" meta { version \"2\" } }",
     "1:32: only 1 meta.version allowed"},
    {'r', "ruleset a { meta { and } }", "1:20: Expected `}`"},
    {'r', "ruleset a { meta { logging maybe } }",
     "1:28: Expected `on` or `off`"},
    {'r', "ruleset a { meta { keys k \"v\" } }",
     "1:20: RulesetMetaProperty not supported: keys"},
    {'r', "ruleset a { meta { errors to b.c } }",
     "1:20: RulesetMetaProperty not supported: errors"},
    {'r', "ruleset a { meta { use modul a } }", "1:24: Expected `module`"},
    {'r', "ruleset a { meta { use module x with } }",
     "1:38: Expected declarations after `with`"},
    {'r', "ruleset a { meta { configure x = 1 } }", "1:30: Expected `using`"},
    {'r', "ruleset a { meta { provides 1 } }", "1:29: Expected Identifier"},
    {'r', "ruleset a { global { ent:x = 1 } }", "1:22: Expected a declaration"},
    {'r', "ruleset a { global { x = 1 } global { y = 2 } }",
     "1:30: Expected `}`"},
    /* rules */
    {'r', "ruleset a { rule r is sleeping {} }",
     "1:23: Expected active and inactive"},
    {'r', "ruleset a { rule b { select } }",
     "1:29: Expected `when` or `where`"},
    {'r', "ruleset a { rule b { select when a b within 5 fortnights } }",
     "1:47: Expected time period: [day,days,hour,hours,minute,minutes,month,"
     "months,second,seconds,week,weeks,year,years]"},
    {'r', "ruleset a { rule b { foreach x } }", "1:32: Expected `setting`"},
    {'r', "ruleset a { rule b { foreach x setting(a, b, c) } }",
     "1:44: Expected `)`"},
    {'r', "ruleset a { rule b { if x then {} } }",
     "1:32: Expected `every`, `sample`, or `choose`"},
    {'r', "ruleset a { rule b { if x then } }",
     "1:32: Expected an action after `if ... then`"},
    {'r', "ruleset a { rule b { \"x\" } }", "1:22: Expected `}`"},
    {'r', "ruleset a { rule b { x = 1 } }", "1:24: Expected `(`"},
    {'r', "ruleset a { rule b { choose x{\"k\"} { a => noop() } } }",
     "1:31: Expected Identifier"},
    {'r', "ruleset a { rule b { noop() setting(a, b) } }",
     "1:38: Expected `)`"},
    {'r', "ruleset a { rule b { else { } } }", "1:22: Expected `}`"},
    /* postludes */
    {'r', "ruleset a { rule b { always { log x \"a\" } } }",
     "1:35: Expected error or warn or info or debug"},
    {'r', "ruleset a { rule b { always { foo:x := 1 } } }",
     "1:31: PersistentVariableAssignment - only works on ent:* variables"},
    {'r', "ruleset a { rule b { fired { clear app:x } } }",
     "1:36: ClearPersistentVariable only works for `ent:`"},
    {'r', "ruleset a { rule b { fired { clear x } } }", "1:38: Expected `:`"},
    {'r', "ruleset a { rule b { fired { ent:x{\"a\" := 1 } } }",
     "1:40: Expected `}`"},
    {'r', "ruleset a { rule b { fired { raise event } } }",
     "1:42: Expected an expression"},
    {'r', "ruleset a { rule b { fired { raise null event \"x\" } } }",
     "1:36: Expected `event`"},
    {'r', "ruleset a { rule b { fired { raise a \"x\" } } }",
     "1:38: Expected `event`"},
    {'r', "ruleset a { rule b { fired { schedule d event \"t\" } } }",
     "1:51: Expected `at` or `repeat`"},
    {'r', "ruleset a { rule b { fired { last on } } }",
     "1:35: Expected a declaration"},
    {'r', "ruleset a { rule b { fired { x = 1 } else } }",
     "1:43: Expected `{`"},
    /* event expressions */
    {'r', "ruleset a { rule b { select when a } }", "1:36: Expected `:`"},
    {'r', "ruleset a { rule b { select when a: } }",
     "1:37: Expected a bare word for the event type"},
    {'r', "ruleset a { rule b { select when like b } }",
     "1:34: Expected an event expression"},
    {'r', "ruleset a { rule b { select when 1 } }",
     "1:34: Expected an event expression"},
    {'r', "ruleset a { rule b { select when count x (a b) } }",
     "1:40: Expected a positive integer"},
    {'r', "ruleset a { rule b { select when count 1.5 (a b) } }",
     "1:40: Expected a positive integer"},
    {'r', "ruleset a { rule b { select when count 2 (1) } }",
     "1:43: Expected a bare word for the event domain"},
    {'r', "ruleset a { rule b { select when a b c re#x# == 1 } }",
     "1:40: Expected a regular expression"},
    {'r', "ruleset a { rule b { select when a b setting x } }",
     "1:46: Expected `(`"},
    {'r', "ruleset a { rule b { select when a b not c d } }",
     "1:42: Expected `between`"},
    {'r', "ruleset a { rule b { select when a b between(c d) } }",
     "1:49: Expected `,`"},
    {'r', "ruleset a { rule b { select when and(a b,) } }",
     "1:42: Expected an event expression"},
    {'r', "ruleset a { rule b { select when (a b } }", "1:39: Expected `)`"},
    {'r', "ruleset a { rule b { select when before(a b, c d) then(e f, g h) "
     "} }", "1:59: Expected `)`"},
    /* expressions */
    {'b', "", "1:1: Expected the function return expression"},
    {'b', "1 +", "1:3: Expected an expression"},
    {'b', "(1", "1:2: Expected `)`"},
    {'b', "[1, 2", "1:5: Expected `]`"},
    {'b', "{a: 1}", "1:2: Expected String"},
    {'b', "{\"a\" 1}", "1:6: Expected `:`"},
    {'b', "f(1, 2", "1:6: Expected `)`"},
    {'b', "f(b = 2, a)", "1:10: Once you used a named arg, all following "
     "must be named."},
    {'b', "x = setting", "1:5: Reserved word"},
    {'b', "x = return", "1:5: Reserved word"},
    {'b', "x = 1; like", "1:8: Expected the function return expression"},
    {'b', "count", "1:1: Expected the function return expression"},
    {'b', "f(count = 1)", "1:3: Expected an expression"},
    {'b', "a.(b)", "1:3: Expected Identifier"},
    {'b', "a.1", "1:2: Expected `(end)`"},          /* .1 is a number */
    {'b', "x = 1; x like = 2", "1:15: Expected an expression"},
    {'b', "x.a:b", "1:5: Expected `(`"},
    {'b', "c => a", "1:6: Expected `|`"},
    {'b', "a ? b", "1:3: Unsupported characters"},
    {'b', "1 2", "1:3: Expected `(end)`"},
    {'b', "ent:null", "1:5: Expected Identifier"},
    {'b', "re#a#gg", "1:1: Invalid regular expression flags"},
    {'b', "<<a #{ b >>", "1:11: Expected an expression"},
    {'b', "<<a #{ }>>", "1:8: Expected an expression"},
    {'b', "<<a #{ b", "1:8: Expected `}`"},
    {'b', "function(a b) { a }", "1:12: Expected `)`"},
    {'b', "function(1) { 1 }", "1:10: Expected Identifier"},
    {'b', "function() { x = 1 }",
     "1:20: Expected the function return expression"},
    {'b', "function() 1", "1:12: Expected `{`"},
    {'b', "defaction() { noop() returns 1 }",
     "1:30: defaction can only return one value"},
    {'b', "defaction() { noop() return 1, 2 }",
     "1:30: defaction can only return one value"},
    {'b', "defaction() { noop() 1 }", "1:22: Expected `return`"},
    {'b', "defaction() { if x then }",
     "1:25: Expected an action after `if ... then`"},
};

static void
test_errors(void)
{
    size_t kinds = 0;
    for (size_t k = 0; k < sizeof errors / sizeof errors[0]; k++) {
        const struct errcase *c = &errors[k];
        struct buf got;
        buf_init(&got);
        if (c->kind == 'r')
            dump_ruleset(c->src, strlen(c->src), &got);
        else
            dump_body(c->src, strlen(c->src), &got);
        t_eq_str(got.data, c->want, c->src);
        buf_release(&got);
        kinds++;
    }
    t_ok(kinds >= 25, "at least 25 kinds of broken input");
}

/* the diagnostic carries the file name, and formats as FILE:L:C: msg */
static void
test_diag_format(void)
{
    struct arena *a = arena_new();
    struct krl_diags d;
    krl_diags_init(&d);
    const char *src = "ruleset a {\n  rule b {\n    select when\n  }\n}\n";
    t_ok(parse_ruleset(a, "io.x.krl", src, strlen(src), &d) == NULL,
         "broken ruleset gives NULL");
    t_eq_int(d.n, 1, "exactly one diagnostic");
    struct buf out;
    buf_init(&out);
    krl_diags_format(&d, &out);
    t_eq_str(out.data, "io.x.krl:4:3: Expected an event expression\n",
             "formatted diagnostic");
    buf_release(&out);
    krl_diags_release(&d);

    /* an error at the end of input points at its last character */
    src = "x = 1 +\n";
    t_ok(parse_body(a, NULL, src, strlen(src), &d) == NULL, "body error");
    t_eq_int(d.n, 1, "one diagnostic for the body");
    t_eq_int(d.items[0].line, 1, "EOF error line is the last character's");
    t_eq_int(d.items[0].col, 8, "EOF error col is the last character's");
    t_eq_str(d.items[0].file, "<input>", "NULL file name");
    krl_diags_release(&d);
    arena_free(a);
}

/* ---------------------------------------------------------------- */
/* Fields and positions                                              */

static void
test_fields(void)
{
    struct arena *a = arena_new();
    struct krl_diags d;
    krl_diags_init(&d);
    const char *src =
        "ruleset a.b {\n"                           /* 1 */
        "  meta { shares f, g }\n"                  /* 2 */
        "  global {\n"                              /* 3 */
        "    f = function(x) { x + 1 }\n"           /* 4 */
        "  }\n"                                     /* 5 */
        "  rule r1 {\n"                             /* 6 */
        "    select when web hello name re#(.+)# setting(n)\n" /* 7 */
        "    send_directive(\"hi\", {\"n\": n})\n"  /* 8 */
        "    fired { ent:c := ent:c.defaultsTo(0) + 1 }\n"   /* 9 */
        "  }\n"                                     /* 10 */
        "}\n";
    struct ast_ruleset *rs = parse_ruleset(a, "f.krl", src, strlen(src), &d);
    t_ok(rs != NULL && d.n == 0, "field ruleset parses");
    if (rs == NULL) {
        krl_diags_release(&d);
        arena_free(a);
        return;
    }
    t_eq_str(rs->rid.s, "a.b", "rid");
    t_eq_int(rs->rid.len, 3, "rid length");
    t_eq_str(rs->file, "f.krl", "file name kept in the arena");
    t_eq_int(rs->pos.line, 1, "ruleset line");
    t_eq_int(rs->meta.n_shares, 2, "two shares");
    t_eq_str(rs->meta.shares[1].s, "g", "second share");
    t_eq_int(rs->meta.shares_pos[1].line, 2, "share g line");
    t_eq_int(rs->meta.shares_pos[1].col, 20, "share g col");
    t_eq_int(rs->n_globals, 1, "one global");
    t_eq_int(rs->globals[0].pos.line, 4, "global line");
    t_eq_int(rs->globals[0].pos.col, 5, "global col");
    const struct ast_expr *fn = rs->globals[0].value;
    t_eq_int(fn->kind, AST_FUNCTION, "global is a function");
    t_eq_int(fn->pos.col, 9, "function col");
    t_eq_int(fn->u.function.n_params, 1, "one parameter");
    t_ok(fn->u.function.params[0].dflt == NULL, "no default");
    t_eq_int(fn->u.function.params[0].pos.col, 18, "param col");
    const struct ast_expr *sum = fn->u.function.result;
    t_eq_int(sum->kind, AST_BINARY, "body is binary");
    t_eq_int(sum->u.binary.op, AST_ADD, "body is +");
    t_eq_int(sum->pos.col, 23, "binary starts at its left operand");
    t_eq_int(sum->u.binary.right->u.number, 1, "right is 1");
    t_eq_int(sum->u.function.frame_size, 0, "resolver fields zero");

    t_eq_int(rs->n_rules, 1, "one rule");
    const struct ast_rule *r = &rs->rules[0];
    t_eq_str(r->name.s, "r1", "rule name");
    t_eq_int(r->pos.line, 6, "rule line");
    t_eq_int(r->pos.col, 3, "rule col");
    t_ok(r->has_select && !r->inactive, "rule selects, active");
    const struct ast_ee *ee = r->select_when;
    t_eq_int(ee->kind, AST_EE_PRIM, "primitive");
    t_eq_str(ee->domain.s, "web", "domain");
    t_eq_str(ee->type.s, "hello", "type");
    t_eq_int(ee->pos.line, 7, "ee line");
    t_eq_int(ee->pos.col, 17, "ee col");
    t_eq_int(ee->n_matches, 1, "one attribute match");
    t_eq_str(ee->matches[0].attr.s, "name", "attr name");
    t_eq_int(ee->matches[0].pos.col, 27, "attr col");
    t_eq_str(ee->matches[0].regexp->u.regexp.source.s, "(.+)", "regexp");
    t_eq_str(ee->matches[0].regexp->u.regexp.flags, "", "no flags");
    t_eq_int(ee->n_setting, 1, "one setting");
    t_eq_str(ee->setting[0].s, "n", "setting n");
    t_ok(ee->where == NULL, "no where");
    t_ok(r->within == NULL && r->within_period == AST_PERIOD_NONE,
         "no within");

    const struct ast_action_block *b = r->actions;
    t_eq_int(b->kind, AST_BLOCK_SINGLE, "single action");
    t_ok(b->cond == NULL && b->choose == NULL, "no cond, no choose");
    t_eq_int(b->n_actions, 1, "one action");
    t_eq_int(b->actions[0].pos.line, 8, "action line");
    t_eq_int(b->actions[0].pos.col, 5, "action col");
    t_ok(b->actions[0].label.s == NULL, "no label");
    t_eq_int(b->actions[0].n_args, 2, "two args");
    t_eq_int(b->actions[0].args[1].pos.col, 26, "second arg col");
    t_eq_int(b->actions[0].args[1].value->kind, AST_MAP, "second is a map");
    t_eq_str(b->actions[0].args[1].value->u.map.keys[0].s, "n", "map key");

    const struct ast_postlude *post = &r->postlude;
    t_eq_int(post->kind, AST_POST_FIRED, "fired postlude");
    t_eq_int(post->pos.line, 9, "postlude line");
    t_eq_int(post->n_stmts, 1, "one statement");
    t_eq_int(post->n_else + post->n_finally, 0, "no else, no finally");
    const struct ast_stmt *s = &post->stmts[0];
    t_eq_int(s->kind, AST_STMT_ENT_SET, "ent set");
    t_eq_str(s->ent_name.s, "c", "ent name");
    t_ok(s->ent_path == NULL, "no path");
    t_eq_int(s->guard, AST_GUARD_NONE, "no guard");
    t_eq_int(s->pos.col, 13, "statement col");
    const struct ast_expr *v = s->value;
    t_eq_int(v->kind, AST_BINARY, "value is binary");
    const struct ast_expr *dc = v->u.binary.left;
    t_eq_int(dc->kind, AST_CALL, "dot call");
    t_ok(dc->u.call.is_dot_call, "is_dot_call");
    t_eq_int(dc->u.call.n_args, 2, "receiver plus one arg");
    t_eq_int(dc->u.call.args[0].value->kind, AST_DOMAIN_IDENT,
             "receiver is ent:c");
    t_eq_str(dc->u.call.args[0].value->u.dident.domain.s, "ent",
             "receiver domain");
    t_eq_str(dc->u.call.callee->u.ident.name.s, "defaultsTo", "callee");
    t_eq_int(dc->u.call.callee->u.ident.binding, AST_BIND_NONE,
             "not resolved");
    krl_diags_release(&d);
    arena_free(a);
}

/* strings keep NUL bytes and report their length */
static void
test_strings(void)
{
    struct arena *a = arena_new();
    struct krl_diags d;
    krl_diags_init(&d);
    static const char src[] = "\"a\0b\\\"\\\\c\\n\"";
    struct ast_expr *e = parse_body(a, NULL, src, sizeof src - 1, &d);
    t_ok(e != NULL, "string with NUL parses");
    if (e != NULL) {
        const struct ast_str *s = &e->u.function.result->u.string;
        t_eq_int(s->len, 8, "length counts the NUL");
        t_ok(memcmp(s->s, "a\0b\"\\c\\n", 9) == 0,
             "escapes \\\" and \\\\ done, \\n kept, NUL-terminated");
    }
    static const char chev[] = "<<x\\>y\\#{z}\\\\#{1}>>";
    e = parse_body(a, NULL, chev, sizeof chev - 1, &d);
    t_ok(e != NULL, "chevron parses");
    if (e != NULL) {
        const struct ast_expr *c = e->u.function.result;
        t_eq_int(c->u.chevron.n_parts, 2, "text and beesting");
        t_eq_str(c->u.chevron.parts[0]->u.string.s, "x>y#{z}\\",
                 "chevron escapes");
        t_eq_int(c->u.chevron.parts[1]->u.number, 1, "beesting value");
    }
    static const char re[] = "re#\\#a\\d#mig";
    e = parse_body(a, NULL, re, sizeof re - 1, &d);
    t_ok(e != NULL, "regexp parses");
    if (e != NULL) {
        t_eq_str(e->u.function.result->u.regexp.source.s, "#a\\d",
                 "regexp \\# made #, other escapes kept");
        t_eq_str(e->u.function.result->u.regexp.flags, "mig", "flags");
    }
    t_eq_int(d.n, 0, "no diagnostics");
    krl_diags_release(&d);
    arena_free(a);
}

/* ---------------------------------------------------------------- */
/* Limits                                                            */

static void
repeat(struct buf *b, const char *s, int n)
{
    for (int k = 0; k < n; k++)
        buf_adds(b, s);
}

static void
expect_nesting(const char *name, struct buf *src, char kind, bool ok)
{
    struct buf got;
    buf_init(&got);
    if (kind == 'r')
        dump_ruleset(src->data, src->len, &got);
    else
        dump_body(src->data, src->len, &got);
    if (ok)
        t_ok(strstr(got.data, "Nesting too deep") == NULL &&
             strchr(got.data, ':') == NULL, name);
    else
        t_ok(strstr(got.data, ": Nesting too deep") != NULL, name);
    buf_release(&got);
    buf_reset(src);
}

static void
test_limits(void)
{
    struct buf s;
    buf_init(&s);

    repeat(&s, "[", 199);
    repeat(&s, "]", 199);
    expect_nesting("199 nested arrays are fine", &s, 'b', true);
    repeat(&s, "[", 200);
    repeat(&s, "]", 200);
    expect_nesting("200 nested arrays (plus the body) are too deep", &s, 'b',
                   false);
    repeat(&s, "(", 100000);
    buf_adds(&s, "1");
    repeat(&s, ")", 100000);
    expect_nesting("100000 parentheses: an error, not a crash", &s, 'b',
                   false);
    repeat(&s, "-", 100000);
    buf_adds(&s, "1");
    expect_nesting("100000 prefix minus", &s, 'b', false);
    buf_adds(&s, "1");
    repeat(&s, " + 1", 150);
    expect_nesting("a chain of 150 additions is fine", &s, 'b', true);
    buf_adds(&s, "1");
    repeat(&s, " + 1", 100000);
    expect_nesting("a chain of 100000 additions is too tall", &s, 'b',
                   false);
    buf_adds(&s, "x");
    repeat(&s, ".f()", 300);
    expect_nesting("300 chained dot calls", &s, 'b', false);
    repeat(&s, "<<#{", 50000);
    expect_nesting("50000 nested chevrons", &s, 'b', false);
    repeat(&s, "function(){", 300);
    buf_adds(&s, "1");
    repeat(&s, "}", 300);
    expect_nesting("300 nested functions", &s, 'b', false);
    repeat(&s, "{\"a\":", 300);
    buf_adds(&s, "1");
    repeat(&s, "}", 300);
    expect_nesting("300 nested maps", &s, 'b', false);

    buf_adds(&s, "ruleset a { rule b { select when ");
    repeat(&s, "(", 100000);
    buf_adds(&s, "a b");
    repeat(&s, ")", 100000);
    buf_adds(&s, " } }");
    expect_nesting("100000 parenthesised event expressions", &s, 'r', false);
    buf_adds(&s, "ruleset a { rule b { select when a b");
    repeat(&s, " or a b", 100);
    buf_adds(&s, " } }");
    expect_nesting("100 or'ed primitives are fine", &s, 'r', true);
    buf_adds(&s, "ruleset a { rule b { select when a b");
    repeat(&s, " or a b", 50000);
    buf_adds(&s, " } }");
    expect_nesting("50000 or'ed primitives are too tall", &s, 'r', false);
    buf_adds(&s, "ruleset a { rule b { select when ");
    repeat(&s, "and(", 300);
    buf_adds(&s, "a b");
    repeat(&s, ")", 300);
    buf_adds(&s, " } }");
    expect_nesting("300 nested and()", &s, 'r', false);
    buf_adds(&s, "ruleset a { rule b { select when a b where ");
    repeat(&s, "not ", 300);
    buf_adds(&s, "x } }");
    expect_nesting("a deep where clause", &s, 'r', false);

    /* the position of the error */
    struct buf got;
    buf_init(&got);
    repeat(&s, "[", 250);
    dump_body(s.data, s.len, &got);
    t_eq_str(got.data, "1:201: Nesting too deep", "deep nesting position");
    buf_release(&got);
    buf_release(&s);
}

/* ---------------------------------------------------------------- */
/* Robustness: prefixes and mutations never crash and always give    */
/* either a tree and no diagnostic, or NULL and exactly one          */

static const char sample[] =
    "ruleset io.sample-one {\n"
    "  meta { name \"s\" use module m alias n with a = 1 and b = <<x#{2}>>\n"
    "    configure using c = {\"d\": [1, 2.5, .5]} shares f provides g }\n"
    "  global { f = function(x, y = 2) { z = x.put([\"a\"], y); z{\"a\"} }\n"
    "    g = defaction(v) { if v then every { send_directive(\"a\") "
    "setting(r) } return r }\n"
    "    h = re#^a\\#b$#gi; i = not a == b => -1 | +2 * 3 % 4 cmp 5 }\n"
    "  rule r1 is active {\n"
    "    select when a b c re#(.*)# setting(q) where q like \"x\" or "
    "count 2 (d e) max(m) within 5 minutes\n"
    "    foreach [1] setting(v, k)\n"
    "    pre { w = v + k }\n"
    "    choose w { l => n:act(1, p = 2); m => noop() }\n"
    "    fired { ent:x{[\"a\"]} := w if w > 1; raise d event \"t\" for \"r\" "
    "attributes {}; schedule d event \"u\" repeat \"* *\" setting(s); "
    "clear ent:y; log info <<#{w}>> on final; error warn 1; last }\n"
    "    else { z = 1 } finally { last }\n"
    "  }\n"
    "  rule r2 { select when any 1 (a b, c d) pre { } noop() always { } }\n"
    "}\n";

static bool
consistent(const char *src, size_t len, char kind)
{
    struct arena *a = arena_new();
    struct krl_diags d;
    krl_diags_init(&d);
    bool ok;
    if (kind == 'r') {
        struct ast_ruleset *rs = parse_ruleset(a, "m", src, len, &d);
        ok = rs != NULL ? d.n == 0 : d.n == 1;
    } else {
        struct ast_expr *e = parse_body(a, "m", src, len, &d);
        ok = e != NULL ? d.n == 0 : d.n == 1;
    }
    if (ok && d.n == 1)
        ok = d.items[0].line >= 1 && d.items[0].col >= 1;
    krl_diags_release(&d);
    arena_free(a);
    return ok;
}

static void
test_robustness(void)
{
    size_t len = sizeof sample - 1;
    struct buf got;
    buf_init(&got);
    dump_ruleset(sample, len, &got);
    t_ok(strncmp(got.data, "(ruleset io.sample-one", 22) == 0,
         "the sample parses");
    buf_release(&got);

    bool all = true;
    for (size_t k = 0; k < len; k++) {
        if (!consistent(sample, k, 'r') || !consistent(sample + k, len - k,
                                                       'b'))
            all = false;
    }
    t_ok(all, "every prefix and suffix: tree xor one diagnostic");

    static const char *const bits[] = {
        "{", "}", "(", ")", "[", "]", "<<", ">>", "#{", "\"", "re#", "#",
        "=>", "|", ":", ":=", ",", ";", ".", "/*", "*/", "//", "\\", "\n",
        "\0", "\xff", "not", "setting", "and", "function", "x", "1", " ",
    };
    char *buf = xmalloc(len + 16);
    unsigned long seed = 12345;
    all = true;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, sample, len);
        size_t n = len;
        int edits = 1 + iter % 4;
        for (int e = 0; e < edits; e++) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            size_t at = (size_t)(seed >> 33) % n;
            const char *b = bits[(seed >> 20) % (sizeof bits / sizeof bits[0])];
            size_t bl = b[0] == '\0' ? 1 : strlen(b);
            if (at + bl > n)
                continue;
            memcpy(buf + at, b, bl);
        }
        if (!consistent(buf, n, 'r') || !consistent(buf, n, 'b'))
            all = false;
    }
    free(buf);
    t_ok(all, "3000 mutated rulesets: tree xor one diagnostic");
}

/* ---------------------------------------------------------------- */
/* Conformance rulesets                                              */

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct buf b;
    buf_init(&b);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_add(&b, tmp, n);
    fclose(f);
    return buf_take(&b, len);
}

static void
test_conformance(void)
{
    static const char dir[] = "../shared/conformance/cases";
    DIR *dp = opendir(dir);
    if (dp == NULL) {
        printf("# skip: %s not found (run from the repository root)\n", dir);
        return;
    }
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 4, ".krl") != 0)
            continue;
        struct buf path;
        buf_init(&path);
        buf_printf(&path, "%s/%s", dir, de->d_name);
        size_t len;
        char *src = read_file(path.data, &len);
        struct arena *a = arena_new();
        struct krl_diags d;
        krl_diags_init(&d);
        struct ast_ruleset *rs =
            src != NULL ? parse_ruleset(a, path.data, src, len, &d) : NULL;
        struct buf name;
        buf_init(&name);
        buf_printf(&name, "conformance %s", de->d_name);
        if (rs == NULL && d.n > 0)
            printf("# %s:%d:%d: %s\n", de->d_name, d.items[0].line,
                   d.items[0].col, d.items[0].msg);
        t_ok(rs != NULL && d.n == 0 && rs->rid.len > 0, name.data);
        buf_release(&name);
        krl_diags_release(&d);
        arena_free(a);
        free(src);
        buf_release(&path);
        n++;
    }
    closedir(dp);
    t_ok(n > 0, "found conformance rulesets");
}

/* ---------------------------------------------------------------- */
/* A 1 MB ruleset parses well under a second                         */

static void
test_performance(void)
{
    struct buf s;
    buf_init(&s);
    buf_adds(&s, "ruleset big.one {\n global {\n");
    for (int k = 0; k < 2000; k++)
        buf_printf(&s, "  f%d = function(x, y = 2) { z = x * y + %d; "
                   "[z, {\"a\": z}, <<v #{z} >>, re#^a\\#b$#gi] }\n", k, k);
    buf_adds(&s, " }\n");
    for (int k = 0; s.len < 1000000; k++)
        buf_printf(&s, " rule r%d {\n  select when a%d b c re#(.*)# "
                   "setting(v) or d e\n  foreach [1, 2] setting(x)\n"
                   "  pre { y = x.as(\"String\") + v }\n"
                   "  if y then every { send_directive(\"d\", {\"y\": y}) }\n"
                   "  fired { ent:n{[\"a\", y]} := ent:n{[\"a\", y]} "
                   ".defaultsTo(0) + 1; raise e event \"f\" attributes "
                   "{\"y\": y} } else { last }\n }\n", k, k);
    buf_adds(&s, "}\n");

    struct arena *a = arena_new();
    struct krl_diags d;
    krl_diags_init(&d);
    clock_t t0 = clock();
    struct ast_ruleset *rs = parse_ruleset(a, "big", s.data, s.len, &d);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    t_ok(rs != NULL && rs->n_globals == 2000 && rs->n_rules > 1000,
         "1 MB ruleset parses");
    printf("# 1 MB ruleset (%zu bytes) parsed in %.3f s\n", s.len, secs);
    t_ok(secs < 1.0, "1 MB ruleset parses in under a second");
    krl_diags_release(&d);
    arena_free(a);
    buf_release(&s);
}

int
main(void)
{
    test_exprs();
    test_rules();
    test_rulesets();
    test_errors();
    test_diag_format();
    test_fields();
    test_strings();
    test_limits();
    test_robustness();
    test_conformance();
    test_performance();
    return tap_done();
}
