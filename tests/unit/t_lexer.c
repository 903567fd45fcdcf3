/*
 * t_lexer.c - unit tests of the KRL tokenizer (lexer.c).
 *
 * Each case renders the token stream as "KIND:text" items (punctuation as
 * its text, errors as ERROR(msg)@line:col, the end as EOF@line:col) and
 * compares it with the expected string.  Many cases are the reference
 * tokenizer's own tests (krl-parser test/tokenizer.ts), rewritten.
 */
#include <stdio.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/lexer.h"
#include "tap.h"

static void
render(const char *src, size_t len, struct buf *out)
{
    struct lex_tokens t;
    lex_tokenize(src, len, &t);
    for (size_t k = 0; k < t.n; k++) {
        const struct lex_token *tok = &t.items[k];
        if (k > 0)
            buf_addc(out, ' ');
        switch (tok->kind) {
        case LEX_PUNCT:
            buf_adds(out, lex_punct_text(tok->punct));
            break;
        case LEX_EOF:
            buf_printf(out, "EOF@%d:%d", tok->line, tok->col);
            break;
        case LEX_ERROR:
            buf_printf(out, "ERROR(%s)@%d:%d", tok->msg, tok->line, tok->col);
            break;
        default:
            buf_printf(out, "%s:", lex_kind_name(tok->kind));
            buf_add(out, src + tok->off, tok->len);
        }
    }
    lex_tokens_release(&t);
}

struct lcase {
    const char *name;
    const char *src;
    size_t len;                 /* 0: strlen(src) */
    const char *want;
};

static const struct lcase cases[] = {
    {"empty", "", 0, "EOF@1:1"},
    {"only spaces", "  \t\n ", 0, "EOF@2:1"},
    {"strings", "hello \"world\"\"two\"", 0,
     "SYMBOL:hello STRING:\"world\" STRING:\"two\" EOF@1:18"},
    {"empty string", "\"\"", 0, "STRING:\"\" EOF@1:2"},
    {"string escapes stay raw", "\"a\\\"b\" \"c\\\\\" d", 0,
     "STRING:\"a\\\"b\" STRING:\"c\\\\\" SYMBOL:d EOF@1:14"},
    {"string spans lines", "\"a\nb\" c", 0,
     "STRING:\"a\nb\" SYMBOL:c EOF@2:4"},
    {"line comment", "hello//some comment \"not a string\" ok\nok", 0,
     "SYMBOL:hello SYMBOL:ok EOF@2:2"},
    {"line comment ends at CR", "a // x\rb", 0,
     "SYMBOL:a SYMBOL:b EOF@1:8"},
    {"line comment at end", "a // x", 0, "SYMBOL:a EOF@1:6"},
    {"block comment", "hello/* /* wat? * // c\n \"no\" ok*/ok", 0,
     "SYMBOL:hello SYMBOL:ok EOF@2:12"},
    {"block comment /*/ is not closed", "/*/ a */b", 0,
     "SYMBOL:b EOF@1:9"},
    {"block comment /**/", "a/**/b", 0, "SYMBOL:a SYMBOL:b EOF@1:6"},
    {"comments between", "1; //some comment\n2/*another*/;3", 0,
     "NUMBER:1 ; NUMBER:2 ; NUMBER:3 EOF@2:14"},
    {"numbers", "123 1.5 .5 0.25 007", 0,
     "NUMBER:123 NUMBER:1.5 NUMBER:.5 NUMBER:0.25 NUMBER:007 EOF@1:19"},
    {"number then dot call", "1.isnull()", 0,
     "NUMBER:1 . SYMBOL:isnull ( ) EOF@1:10"},
    {"number with trailing dot", "1.", 0, "NUMBER:1 . EOF@1:2"},
    {"two decimals", "1.5.3", 0, "NUMBER:1.5 NUMBER:.3 EOF@1:5"},
    {"no exponent", "1e5", 0, "NUMBER:1 SYMBOL:e5 EOF@1:3"},
    {"minus is an operator", "-1", 0, "- NUMBER:1 EOF@1:2"},
    {"symbols", "$a_1 _b $ A9", 0,
     "SYMBOL:$a_1 SYMBOL:_b SYMBOL:$ SYMBOL:A9 EOF@1:12"},
    {"punctuation longest match",
     "<=> <= < || | == => = := : >= >< > && != ( ) { } [ ] , / . - % + ; *",
     0,
     "<=> <= < || | == => = := : >= >< > && != ( ) { } [ ] , / . - % + ; * "
     "EOF@1:68"},
    {"punctuation packed", "a<=>b>=c:=d", 0,
     "SYMBOL:a <=> SYMBOL:b >= SYMBOL:c := SYMBOL:d EOF@1:11"},
    {"regexp with flags", "re#a\\#b#gi re#x#m re#y# z", 0,
     "REGEXP:re#a\\#b#gi REGEXP:re#x#m REGEXP:re#y# SYMBOL:z EOF@1:25"},
    {"regexp flag run", "re#a#gimx", 0, "REGEXP:re#a#gim SYMBOL:x EOF@1:9"},
    {"regexp escaped backslash", "re#a\\\\#i", 0,
     "REGEXP:re#a\\\\#i EOF@1:8"},
    {"re without hash is a symbol", "re rex", 0,
     "SYMBOL:re SYMBOL:rex EOF@1:6"},
    {"chevron plain", "<<some chevron\n\"?\"//string\nok?>>ok", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:some chevron\n\"?\"//string\nok? "
     "CHEVRON-CLOSE:>> SYMBOL:ok EOF@3:7"},
    {"chevron beesting", "<<This #{\"is\"} a beesting>>", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:This  CHEVRON-BEESTING-OPEN:#{ "
     "STRING:\"is\" CHEVRON-BEESTING-CLOSE:} CHEVRON-STRING: a beesting "
     "CHEVRON-CLOSE:>> EOF@1:27"},
    {"chevron path in beesting", "<<This #{x{\"flip\"}} that >\\> >>", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:This  CHEVRON-BEESTING-OPEN:#{ "
     "SYMBOL:x { STRING:\"flip\" } CHEVRON-BEESTING-CLOSE:} "
     "CHEVRON-STRING: that >\\>  CHEVRON-CLOSE:>> EOF@1:31"},
    {"chevron escaped close", "<<a >\\>>>", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:a >\\> CHEVRON-CLOSE:>> EOF@1:9"},
    {"chevron brace counting", "<<#{ x }{#{{{{}}}}}>>", 0,
     "CHEVRON-OPEN:<< CHEVRON-BEESTING-OPEN:#{ SYMBOL:x "
     "CHEVRON-BEESTING-CLOSE:} CHEVRON-STRING:{ CHEVRON-BEESTING-OPEN:#{ "
     "{ { { } } } CHEVRON-BEESTING-CLOSE:} CHEVRON-STRING:} "
     "CHEVRON-CLOSE:>> EOF@1:21"},
    {"chevron escaped beesting", "<<a \\#{b} c>>", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:a \\#{b} c CHEVRON-CLOSE:>> EOF@1:13"},
    {"chevron comments are text", "<<This /* wat */\n//ok\n>>", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:This /* wat */\n//ok\n "
     "CHEVRON-CLOSE:>> EOF@3:2"},
    {"nested chevrons", "<<a#{<<b#{c}>>}d>>", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:a CHEVRON-BEESTING-OPEN:#{ "
     "CHEVRON-OPEN:<< CHEVRON-STRING:b CHEVRON-BEESTING-OPEN:#{ SYMBOL:c "
     "CHEVRON-BEESTING-CLOSE:} CHEVRON-CLOSE:>> CHEVRON-BEESTING-CLOSE:} "
     "CHEVRON-STRING:d CHEVRON-CLOSE:>> EOF@1:18"},
    {"string in beesting hides brace", "<<#{\"}\"}>>", 0,
     "CHEVRON-OPEN:<< CHEVRON-BEESTING-OPEN:#{ STRING:\"}\" "
     "CHEVRON-BEESTING-CLOSE:} CHEVRON-CLOSE:>> EOF@1:10"},
    {"empty chevron", "<<>>", 0,
     "CHEVRON-OPEN:<< CHEVRON-CLOSE:>> EOF@1:4"},
    {"unclosed beesting is the parser's business", "<<a #{ b", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:a  CHEVRON-BEESTING-OPEN:#{ SYMBOL:b "
     "EOF@1:8"},
    {"positions across lines", "a\n  b\r\n\tc", 0,
     "SYMBOL:a SYMBOL:b SYMBOL:c EOF@3:2"},
    {"unicode whitespace", "a\xc2\xa0" "b\xe2\x80\x83" "c\xef\xbb\xbf", 0,
     "SYMBOL:a SYMBOL:b SYMBOL:c EOF@1:11"},
    {"utf-8 inside strings", "\"h\xc3\xa9\" <<\xe2\x82\xac>> re#\xc3\xa9#", 0,
     "STRING:\"h\xc3\xa9\" CHEVRON-OPEN:<< CHEVRON-STRING:\xe2\x82\xac "
     "CHEVRON-CLOSE:>> REGEXP:re#\xc3\xa9# EOF@1:20"},
    {"invalid utf-8 inside a string", "\"\xff\xfe\" x", 0,
     "STRING:\"\xff\xfe\" SYMBOL:x EOF@1:6"},
    {"utf-8 outside strings", "a \xc3\xa9", 0,
     "SYMBOL:a ERROR(Unsupported characters)@1:3 EOF@1:4"},
    {"illegal character", "a @ b", 0,
     "SYMBOL:a ERROR(Unsupported characters)@1:3 EOF@1:5"},
    {"lone bang and ampersand", "!", 0,
     "ERROR(Unsupported characters)@1:1 EOF@1:1"},
    {"hash outside regexp", "#", 0,
     "ERROR(Unsupported characters)@1:1 EOF@1:1"},
    {"lexing stops at the first error", "@ \"abc", 0,
     "ERROR(Unsupported characters)@1:1 EOF@1:6"},
    {"missing close string", "a \"abc", 0,
     "SYMBOL:a ERROR(Missing close \")@1:3 EOF@1:6"},
    {"missing close string after backslash", "\"abc\\", 0,
     "ERROR(Missing close \")@1:1 EOF@1:5"},
    {"escaped quote does not close", "\"a\\\"", 0,
     "ERROR(Missing close \")@1:1 EOF@1:4"},
    {"missing close comment", "x\n/* abc", 0,
     "SYMBOL:x ERROR(Missing close */)@2:1 EOF@2:6"},
    {"missing close comment /*/", "/*/", 0,
     "ERROR(Missing close */)@1:1 EOF@1:3"},
    {"missing close regexp", "re#abc\\#", 0,
     "ERROR(Missing close #)@1:1 EOF@1:8"},
    {"missing close chevron", "x = <<abc", 0,
     "SYMBOL:x = CHEVRON-OPEN:<< CHEVRON-STRING:abc "
     "ERROR(Missing close >>)@1:5 EOF@1:9"},
    {"missing close chevron after a beesting", "<<a #{b} c\n d", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:a  CHEVRON-BEESTING-OPEN:#{ SYMBOL:b "
     "CHEVRON-BEESTING-CLOSE:} CHEVRON-STRING: c\n d "
     "ERROR(Missing close >>)@1:1 EOF@2:2"},
    {"chevron ending in backslash", "<<abc\\", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:abc\\ ERROR(Missing close >>)@1:1 "
     "EOF@1:6"},
    {"chevron single > at end", "<<a>", 0,
     "CHEVRON-OPEN:<< CHEVRON-STRING:a> ERROR(Missing close >>)@1:1 "
     "EOF@1:4"},
    {"NUL outside a string", "a\0b", 3,
     "SYMBOL:a ERROR(Unsupported characters)@1:2 EOF@1:3"},
};

static void
test_table(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct lcase *c = &cases[k];
        size_t len = c->len ? c->len : strlen(c->src);
        struct buf got, want;
        buf_init(&got);
        buf_init(&want);
        render(c->src, len, &got);
        buf_adds(&want, c->want);
        int ok = got.len == want.len &&
                 memcmp(got.data, want.data, got.len) == 0;
        t_ok(ok, c->name);
        if (!ok)
            printf("  got  %s\n  want %s\n", got.data, want.data);
        buf_release(&got);
        buf_release(&want);
    }
}

/* a NUL byte inside a string is kept (it is not the end of input) */
static void
test_nul_in_string(void)
{
    static const char src[] = "\"a\0b\" c";
    static const char want[] = "STRING:\"a\0b\" SYMBOL:c EOF@1:7";
    struct buf got;
    buf_init(&got);
    render(src, sizeof src - 1, &got);
    t_ok(got.len == sizeof want - 1 && memcmp(got.data, want, got.len) == 0,
         "NUL inside a string");
    buf_release(&got);
}

/* token fields: offsets, lengths, punct codes */
static void
test_fields(void)
{
    const char *src = "ruleset a.b {\n  x = 1 }";
    struct lex_tokens t;
    lex_tokenize(src, strlen(src), &t);
    t_eq_int(t.n, 10, "field test: token count");
    t_eq_int(t.items[0].kind, LEX_SYMBOL, "first is SYMBOL");
    t_eq_int(t.items[0].off, 0, "ruleset offset");
    t_eq_int(t.items[0].len, 7, "ruleset length");
    t_eq_int(t.items[2].punct, LEX_P_DOT, "dot punct");
    t_eq_int(t.items[2].off, 9, "dot offset");
    t_eq_int(t.items[5].line, 2, "x line");
    t_eq_int(t.items[5].col, 3, "x col");
    t_eq_int(t.items[6].punct, LEX_P_EQ, "= punct");
    t_eq_int(t.items[7].kind, LEX_NUMBER, "1 is NUMBER");
    t_eq_int(t.items[8].punct, LEX_P_RBRACE, "} punct");
    t_eq_int(t.items[9].kind, LEX_EOF, "ends with EOF");
    t_eq_int(t.items[9].off, strlen(src), "EOF offset is the length");
    lex_tokens_release(&t);
    t_ok(t.items == NULL && t.n == 0, "release empties");
    lex_tokens_release(&t);
    t_ok(1, "release twice is harmless");

    t_eq_str(lex_kind_name(LEX_PUNCT), "RAW", "kind name RAW");
    t_eq_str(lex_kind_name(LEX_CHEVRON_CLOSE), "CHEVRON-CLOSE",
             "kind name chevron close");
    t_eq_str(lex_punct_text(LEX_P_CMP), "<=>", "punct text <=>");
    t_eq_str(lex_punct_text(LEX_P_NONE), "", "punct text none");
}

/* a big input is linear: many tokens, deep beesting nesting */
static void
test_big(void)
{
    struct buf b;
    buf_init(&b);
    for (int k = 0; k < 20000; k++)
        buf_adds(&b, "<<#{");
    struct lex_tokens t;
    lex_tokenize(b.data, b.len, &t);
    t_eq_int(t.n, 40001, "20000 nested beestings: 2 tokens each + EOF");
    t_eq_int(t.items[t.n - 1].kind, LEX_EOF, "deep nesting ends with EOF");
    lex_tokens_release(&t);

    buf_reset(&b);
    for (int k = 0; k < 100000; k++)
        buf_adds(&b, "a+1;");
    lex_tokenize(b.data, b.len, &t);
    t_eq_int(t.n, 400001, "400000 tokens");
    lex_tokens_release(&t);
    buf_release(&b);
}

int
main(void)
{
    test_table();
    test_nul_in_string();
    test_fields();
    test_big();
    return tap_done();
}
