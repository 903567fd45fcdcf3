/*
 * lexer.h - KRL source bytes to tokens (the reference tokenizer.ts rules).
 *
 * lex_tokenize() turns the whole input into an array of significant tokens
 * (whitespace and comments dropped) that always ends with one LEX_EOF
 * token.  A lexical error (an unsupported character, an unterminated
 * comment, string, regexp or chevron) becomes one LEX_ERROR token carrying
 * the message; the stream ends with LEX_EOF right after it, and the parser
 * reports the error only if it gets that far, as the reference does.
 *
 * Tokens point into the caller's source (offset and length); the source
 * must outlive them.  The token array is malloc'd and owned by the struct
 * lex_tokens; release it with lex_tokens_release().  Reentrant.
 */
#ifndef PICOMAIL_LEXER_H
#define PICOMAIL_LEXER_H

#include <stddef.h>

enum lex_kind {
    LEX_EOF,
    LEX_SYMBOL,             /* [a-zA-Z_$][a-zA-Z0-9_$]* */
    LEX_NUMBER,             /* 123  1.5  .5 */
    LEX_STRING,             /* "..." with the quotes, escapes not done */
    LEX_REGEXP,             /* re#...#flags, raw text */
    LEX_CHEVRON_OPEN,       /* << */
    LEX_CHEVRON_STRING,     /* raw text between << >> / beestings */
    LEX_BEESTING_OPEN,      /* #{ */
    LEX_BEESTING_CLOSE,     /* } closing a beesting */
    LEX_CHEVRON_CLOSE,      /* >> */
    LEX_PUNCT,              /* an operator or punctuation: see punct */
    LEX_ERROR               /* msg says what is wrong */
};

/* Punctuation, in the reference's longest-match-first order. */
enum lex_punct {
    LEX_P_NONE,
    LEX_P_CMP,              /* <=> */
    LEX_P_LE,               /* <= */
    LEX_P_LT,               /* < */
    LEX_P_OROR,             /* || */
    LEX_P_PIPE,             /* | */
    LEX_P_EQEQ,             /* == */
    LEX_P_ARROW,            /* => */
    LEX_P_EQ,               /* = */
    LEX_P_ASSIGN,           /* := */
    LEX_P_COLON,            /* : */
    LEX_P_GE,               /* >= */
    LEX_P_CONTAINS,         /* >< */
    LEX_P_GT,               /* > */
    LEX_P_ANDAND,           /* && */
    LEX_P_NE,               /* != */
    LEX_P_LPAREN,           /* ( */
    LEX_P_RPAREN,           /* ) */
    LEX_P_LBRACE,           /* { */
    LEX_P_RBRACE,           /* } */
    LEX_P_LBRACKET,         /* [ */
    LEX_P_RBRACKET,         /* ] */
    LEX_P_COMMA,            /* , */
    LEX_P_SLASH,            /* / */
    LEX_P_DOT,              /* . */
    LEX_P_MINUS,            /* - */
    LEX_P_PERCENT,          /* % */
    LEX_P_PLUS,             /* + */
    LEX_P_SEMI,             /* ; */
    LEX_P_STAR              /* * */
};

struct lex_token {
    enum lex_kind kind;
    enum lex_punct punct;   /* LEX_PUNCT only */
    size_t off;             /* start in the source */
    size_t len;             /* bytes of source text */
    int line;               /* 1-based */
    int col;                /* 1-based, in bytes */
    const char *msg;        /* LEX_ERROR: static message */
};

struct lex_tokens {
    struct lex_token *items;    /* owned */
    size_t n;
    size_t cap;                 /* private */
};

/* lex_tokenize - tokenize SRC[0..LEN) into OUT (initialised here) */
void lex_tokenize(const char *src, size_t len, struct lex_tokens *out);
void lex_tokens_release(struct lex_tokens *t);
/* lex_kind_name - "SYMBOL", "STRING", ... for messages and tests */
const char *lex_kind_name(enum lex_kind kind);
/* lex_punct_text - "<=>", "{", ...; "" for LEX_P_NONE */
const char *lex_punct_text(enum lex_punct punct);

#endif
