/*
 * fuzz_parser.c - libFuzzer harness for the KRL lexer, parser and tree
 * printer.
 *
 * Each input is parsed twice, as a ruleset and as a body; a tree is
 * printed with ast_dump (walking every node), then the arena and the
 * diagnostics are released, so leaks and overflows show up under ASan.
 * The parser must give a tree and no diagnostic, or NULL and exactly one.
 *
 *   clang -fsanitize=fuzzer,address,undefined -iquote include \
 *       tests/fuzz/fuzz_parser.c src/util/arena.c src/util/buf.c \
 *       src/util/mem.c src/krl/diag.c src/krl/lexer.c src/krl/parser.c \
 *       src/krl/ast_dump.c -lm
 *
 * Built with -DFUZZ_STANDALONE it gets a main() that runs the files named
 * on the command line (the regress/ inputs) without libFuzzer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "picomail/arena.h"
#include "picomail/ast_dump.h"
#include "picomail/buf.h"
#include "picomail/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    struct krl_diags d;
    struct buf out;

    krl_diags_init(&d);
    buf_init(&out);

    struct arena *a = arena_new();
    struct ast_ruleset *rs = parse_ruleset(a, "fuzz", src, size, &d);
    if ((rs != NULL) != (d.n == 0) || d.n > 1)
        abort();
    if (rs != NULL)
        ast_dump_ruleset(&out, rs);
    a = arena_free(a);
    krl_diags_release(&d);

    a = arena_new();
    struct ast_expr *e = parse_body(a, "fuzz", src, size, &d);
    if ((e != NULL) != (d.n == 0) || d.n > 1)
        abort();
    if (e != NULL)
        ast_dump_expr(&out, e);
    arena_free(a);
    krl_diags_release(&d);
    buf_release(&out);
    return 0;
}

#ifdef FUZZ_STANDALONE
int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        struct buf b;
        buf_init(&b);
        char tmp[4096];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
            buf_add(&b, tmp, n);
        fclose(f);
        LLVMFuzzerTestOneInput((const uint8_t *)b.data, b.len);
        buf_release(&b);
    }
    printf("%d inputs ok\n", argc - 1);
    return 0;
}
#endif
