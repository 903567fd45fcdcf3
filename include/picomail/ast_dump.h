/*
 * ast_dump.h - the syntax tree (ast.h) as S-expression text, for tests and
 * `picomail parse --dump`.
 *
 * Expressions, event expressions, action blocks and statements print on
 * one line; a ruleset prints one meta property, global and rule per line,
 * and one rule section per line.  Examples:
 *   a + b * c          (+ a (* b c))
 *   x.f(1, y = 2)      (dotcall f x 1 (= y 2))
 *   c => a | b         (? c a b)
 *   "a\"b"             "a\"b"    (strings re-escaped: \" \\ \n \t \r \u00XX)
 *   e:t a re#x#i       (ee e t (match a re#x#i))
 * Appends to OUT; never fails.  The tree is walked recursively (the parser
 * bounds its height).
 */
#ifndef PICOMAIL_AST_DUMP_H
#define PICOMAIL_AST_DUMP_H

#include "picomail/ast.h"
#include "picomail/buf.h"

void ast_dump_expr(struct buf *out, const struct ast_expr *e);
void ast_dump_ee(struct buf *out, const struct ast_ee *ee);
void ast_dump_action_block(struct buf *out, const struct ast_action_block *b);
void ast_dump_stmt(struct buf *out, const struct ast_stmt *s);
void ast_dump_rule(struct buf *out, const struct ast_rule *r);
void ast_dump_ruleset(struct buf *out, const struct ast_ruleset *rs);

#endif
