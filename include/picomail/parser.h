/*
 * parser.h - KRL source text to syntax tree (ast.h).
 *
 * A hand-written Pratt (TDOP) parser with the reference engine's binding
 * powers (krl-language.md §4.2 and §3.1).  Every node, array and string of
 * the result lives in the arena A.  On a syntax error the parser stops and
 * returns NULL after adding one diagnostic ("Expected `}`", "Missing close
 * comment", ...) with FILE, line and column to DIAGS.  Input is untrusted: the
 * parser never reads past LEN, bounds its recursion (PARSE_MAX_DEPTH) and
 * never crashes.  Reentrant: no global state.
 */
#ifndef PICOMAIL_PARSER_H
#define PICOMAIL_PARSER_H

#include <stddef.h>

#include "picomail/arena.h"
#include "picomail/ast.h"
#include "picomail/diag.h"

#define PARSE_MAX_DEPTH 200

/* parse_ruleset - a whole file: "ruleset RID { meta global rules }" */
struct ast_ruleset *parse_ruleset(struct arena *a, const char *file,
                                  const char *src, size_t len,
                                  struct krl_diags *diags);

/* parse_body - declarations followed by one expression, as in a function
 * body ("x = 1; y = x + 1; [x, y]"); returned as an AST_FUNCTION node with
 * no parameters.  Used by `picomail eval`. */
struct ast_expr *parse_body(struct arena *a, const char *file,
                            const char *src, size_t len,
                            struct krl_diags *diags);

#endif
