/*
 * lexer.c - KRL tokenizer; see lexer.h.
 *
 * Follows the reference tokenizer (pico-engine krl-parser tokenizer.ts)
 * rule by rule: the order of the tests in the main loop matters (numbers
 * before ".", regexps before symbols, "<<" before "<", beesting braces
 * before raw punctuation).  Chevrons are context-dependent: inside << >>
 * the text is raw up to "#{" or ">>"; inside a beesting normal tokens
 * resume until the "}" that balances it, so a stack of brace counters is
 * kept (one per open beesting, heap-allocated: nesting is unbounded here,
 * the parser bounds it).
 *
 * Line and column of each token are computed lazily from its offset; the
 * offsets of pushed tokens only grow, so that scan is linear overall.
 */
#include "picomail/lexer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/mem.h"

struct bee {
    size_t curly;               /* unbalanced "{" inside this beesting */
    size_t chevron_off;         /* where its chevron opened */
    int chevron_line;
    int chevron_col;
};

struct lexer {
    const char *src;
    size_t len;
    size_t i;                   /* next byte to read */
    size_t scanned;             /* line tracking: bytes already counted */
    int line;
    size_t line_start;
    struct lex_tokens *out;
    struct bee *bees;
    size_t n_bees;
    size_t cap_bees;
    bool stopped;               /* an error token was pushed */
};

static const struct {
    const char *text;
    size_t len;
    enum lex_punct punct;
} raw_toks[] = {
    {"<=>", 3, LEX_P_CMP},
    {"<=", 2, LEX_P_LE},
    {"<", 1, LEX_P_LT},
    {"||", 2, LEX_P_OROR},
    {"|", 1, LEX_P_PIPE},
    {"==", 2, LEX_P_EQEQ},
    {"=>", 2, LEX_P_ARROW},
    {"=", 1, LEX_P_EQ},
    {":=", 2, LEX_P_ASSIGN},
    {":", 1, LEX_P_COLON},
    {">=", 2, LEX_P_GE},
    {"><", 2, LEX_P_CONTAINS},
    {">", 1, LEX_P_GT},
    {"&&", 2, LEX_P_ANDAND},
    {"!=", 2, LEX_P_NE},
    {"(", 1, LEX_P_LPAREN},
    {")", 1, LEX_P_RPAREN},
    {"{", 1, LEX_P_LBRACE},
    {"}", 1, LEX_P_RBRACE},
    {"[", 1, LEX_P_LBRACKET},
    {"]", 1, LEX_P_RBRACKET},
    {",", 1, LEX_P_COMMA},
    {"/", 1, LEX_P_SLASH},
    {".", 1, LEX_P_DOT},
    {"-", 1, LEX_P_MINUS},
    {"%", 1, LEX_P_PERCENT},
    {"+", 1, LEX_P_PLUS},
    {";", 1, LEX_P_SEMI},
    {"*", 1, LEX_P_STAR},
};

#define N_RAW_TOKS (sizeof raw_toks / sizeof raw_toks[0])

static bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_sym_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '$';
}

static bool
is_sym_char(unsigned char c)
{
    return is_sym_start(c) || is_digit(c);
}

/* space_len - bytes of the whitespace character at I, or 0.  JavaScript's
 * \s: ASCII blanks plus the Unicode spaces (NBSP, BOM, U+2000-200A, ...),
 * which the reference accepts anywhere whitespace is allowed. */
static size_t
space_len(const struct lexer *lx, size_t i)
{
    const unsigned char *s = (const unsigned char *)lx->src + i;
    size_t left = lx->len - i;

    switch (s[0]) {
    case ' ': case '\t': case '\n': case '\v': case '\f': case '\r':
        return 1;
    case 0xC2:
        return left >= 2 && s[1] == 0xA0 ? 2 : 0;
    case 0xE1:
        return left >= 3 && s[1] == 0x9A && s[2] == 0x80 ? 3 : 0;
    case 0xE2:
        if (left < 3)
            return 0;
        if (s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 ||
                             s[2] == 0xA9 || s[2] == 0xAF))
            return 3;
        if (s[1] == 0x81 && s[2] == 0x9F)
            return 3;
        return 0;
    case 0xE3:
        return left >= 3 && s[1] == 0x80 && s[2] == 0x80 ? 3 : 0;
    case 0xEF:
        return left >= 3 && s[1] == 0xBB && s[2] == 0xBF ? 3 : 0;
    default:
        return 0;
    }
}

/* position - line and column of byte OFF (never below the last call's) */
static void
position(struct lexer *lx, size_t off, int *line, int *col)
{
    for (size_t k = lx->scanned; k < off; k++) {
        if (lx->src[k] == '\n') {
            lx->line++;
            lx->line_start = k + 1;
        }
    }
    if (off > lx->scanned)
        lx->scanned = off;
    *line = lx->line;
    *col = (int)(off - lx->line_start + 1);
}

static struct lex_token *
push_at(struct lexer *lx, enum lex_kind kind, size_t off, size_t len,
        int line, int col)
{
    struct lex_tokens *t = lx->out;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->items = xreallocarray(t->items, t->cap, sizeof *t->items);
    }
    struct lex_token *tok = &t->items[t->n++];
    tok->kind = kind;
    tok->punct = LEX_P_NONE;
    tok->off = off;
    tok->len = len;
    tok->line = line;
    tok->col = col;
    tok->msg = NULL;
    return tok;
}

static struct lex_token *
push(struct lexer *lx, enum lex_kind kind, size_t off, size_t len)
{
    int line, col;
    position(lx, off, &line, &col);
    return push_at(lx, kind, off, len, line, col);
}

static void
error_at(struct lexer *lx, size_t off, size_t len, int line, int col,
         const char *msg)
{
    struct lex_token *tok = push_at(lx, LEX_ERROR, off, len, line, col);
    tok->msg = msg;
    lx->stopped = true;
}

static void
error(struct lexer *lx, size_t off, size_t len, const char *msg)
{
    int line, col;
    position(lx, off, &line, &col);
    error_at(lx, off, len, line, col, msg);
}

/* skip_escaped - from J, the offset of the first unescaped TERM byte (a
 * backslash escapes the next byte), or LEN when there is none */
static size_t
skip_escaped(const struct lexer *lx, size_t j, char term)
{
    while (j < lx->len) {
        if (lx->src[j] == '\\') {
            j += 2;
            continue;
        }
        if (lx->src[j] == term)
            return j;
        j++;
    }
    return lx->len;
}

/* chevron_body - raw text up to "#{" (push a beesting) or ">>" */
static void
chevron_body(struct lexer *lx, size_t open_off, int open_line, int open_col)
{
    const char *s = lx->src;
    size_t j = lx->i;

    while (j < lx->len) {
        if (s[j] == '\\') {
            j += 2;
            continue;
        }
        if (j + 1 < lx->len && ((s[j] == '#' && s[j + 1] == '{') ||
                                (s[j] == '>' && s[j + 1] == '>')))
            break;
        j++;
    }
    if (j > lx->len)
        j = lx->len;
    if (j > lx->i)
        push(lx, LEX_CHEVRON_STRING, lx->i, j - lx->i);
    if (j >= lx->len) {
        error_at(lx, open_off, 2, open_line, open_col, "Missing close >>");
        lx->i = lx->len;
        return;
    }
    if (s[j] == '#') {
        push(lx, LEX_BEESTING_OPEN, j, 2);
        if (lx->n_bees == lx->cap_bees) {
            lx->cap_bees = lx->cap_bees ? lx->cap_bees * 2 : 8;
            lx->bees = xreallocarray(lx->bees, lx->cap_bees, sizeof *lx->bees);
        }
        struct bee *b = &lx->bees[lx->n_bees++];
        b->curly = 0;
        b->chevron_off = open_off;
        b->chevron_line = open_line;
        b->chevron_col = open_col;
    } else {
        push(lx, LEX_CHEVRON_CLOSE, j, 2);
    }
    lx->i = j + 2;
}

/* one_token - read whatever starts at lx->i */
static void
one_token(struct lexer *lx)
{
    const char *s = lx->src;
    size_t i = lx->i;
    size_t len = lx->len;
    unsigned char c = (unsigned char)s[i];
    unsigned char next = i + 1 < len ? (unsigned char)s[i + 1] : 0;
    size_t j;

    if ((j = space_len(lx, i)) > 0) {
        lx->i = i + j;
        return;
    }
    if (c == '/' && next == '/') {
        for (j = i + 2; j < len && s[j] != '\n' && s[j] != '\r'; j++)
            continue;
        lx->i = j < len ? j + 1 : len;
        return;
    }
    if (c == '/' && next == '*') {
        for (j = i + 2; j + 1 < len; j++) {
            if (s[j] == '*' && s[j + 1] == '/')
                break;
        }
        if (j + 1 >= len) {
            error(lx, i, len - i, "Missing close */");
            lx->i = len;
            return;
        }
        lx->i = j + 2;
        return;
    }
    if (is_digit(c) || (c == '.' && is_digit(next))) {
        j = i;
        while (j < len && is_digit((unsigned char)s[j]))
            j++;
        if (j + 1 < len && s[j] == '.' && is_digit((unsigned char)s[j + 1])) {
            j++;
            while (j < len && is_digit((unsigned char)s[j]))
                j++;
        }
        push(lx, LEX_NUMBER, i, j - i);
        lx->i = j;
        return;
    }
    if (c == '"') {
        j = skip_escaped(lx, i + 1, '"');
        if (j >= len) {
            error(lx, i, len - i, "Missing close \"");
            lx->i = len;
            return;
        }
        push(lx, LEX_STRING, i, j + 1 - i);
        lx->i = j + 1;
        return;
    }
    if (c == 'r' && next == 'e' && i + 2 < len && s[i + 2] == '#') {
        j = skip_escaped(lx, i + 3, '#');
        if (j >= len) {
            error(lx, i, len - i, "Missing close #");
            lx->i = len;
            return;
        }
        j++;
        while (j < len && (s[j] == 'g' || s[j] == 'i' || s[j] == 'm'))
            j++;
        push(lx, LEX_REGEXP, i, j - i);
        lx->i = j;
        return;
    }
    if (c == '<' && next == '<') {
        struct lex_token *open = push(lx, LEX_CHEVRON_OPEN, i, 2);
        lx->i = i + 2;
        chevron_body(lx, i, open->line, open->col);
        return;
    }
    if (is_sym_start(c)) {
        for (j = i + 1; j < len && is_sym_char((unsigned char)s[j]); j++)
            continue;
        push(lx, LEX_SYMBOL, i, j - i);
        lx->i = j;
        return;
    }
    if (lx->n_bees > 0) {
        struct bee *b = &lx->bees[lx->n_bees - 1];
        if (c == '{') {
            b->curly++;
        } else if (c == '}') {
            if (b->curly == 0) {
                struct bee closed = *b;
                push(lx, LEX_BEESTING_CLOSE, i, 1);
                lx->n_bees--;
                lx->i = i + 1;
                chevron_body(lx, closed.chevron_off, closed.chevron_line,
                             closed.chevron_col);
                return;
            }
            b->curly--;
        }
    }
    for (size_t k = 0; k < N_RAW_TOKS; k++) {
        if (raw_toks[k].len <= len - i &&
            memcmp(s + i, raw_toks[k].text, raw_toks[k].len) == 0) {
            struct lex_token *tok = push(lx, LEX_PUNCT, i, raw_toks[k].len);
            tok->punct = raw_toks[k].punct;
            lx->i = i + raw_toks[k].len;
            return;
        }
    }
    error(lx, i, 1, "Unsupported characters");
    lx->i = len;
}

void
lex_tokenize(const char *src, size_t len, struct lex_tokens *out)
{
    struct lexer lx;

    memset(&lx, 0, sizeof lx);
    lx.src = src;
    lx.len = len;
    lx.line = 1;
    lx.out = out;
    out->items = NULL;
    out->n = 0;
    out->cap = 0;

    while (lx.i < len && !lx.stopped)
        one_token(&lx);

    /* The reference reports an error at the end of input on its last
     * character, not one past it. */
    size_t eof_at = len > 0 ? len - 1 : 0;
    int line, col;
    if (eof_at < lx.scanned)
        eof_at = lx.scanned;
    position(&lx, eof_at, &line, &col);
    push_at(&lx, LEX_EOF, len, 0, line, col);
    free(lx.bees);
}

void
lex_tokens_release(struct lex_tokens *t)
{
    free(t->items);
    t->items = NULL;
    t->n = 0;
    t->cap = 0;
}

const char *
lex_kind_name(enum lex_kind kind)
{
    switch (kind) {
    case LEX_EOF: return "EOF";
    case LEX_SYMBOL: return "SYMBOL";
    case LEX_NUMBER: return "NUMBER";
    case LEX_STRING: return "STRING";
    case LEX_REGEXP: return "REGEXP";
    case LEX_CHEVRON_OPEN: return "CHEVRON-OPEN";
    case LEX_CHEVRON_STRING: return "CHEVRON-STRING";
    case LEX_BEESTING_OPEN: return "CHEVRON-BEESTING-OPEN";
    case LEX_BEESTING_CLOSE: return "CHEVRON-BEESTING-CLOSE";
    case LEX_CHEVRON_CLOSE: return "CHEVRON-CLOSE";
    case LEX_PUNCT: return "RAW";
    case LEX_ERROR: return "ERROR";
    }
    return "?";
}

const char *
lex_punct_text(enum lex_punct punct)
{
    for (size_t k = 0; k < N_RAW_TOKS; k++) {
        if (raw_toks[k].punct == punct)
            return raw_toks[k].text;
    }
    return "";
}
