/*
 * cmd_krl.c - `picomail check` and `picomail eval`: the KRL front end and
 * evaluator from the command line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/diag.h"
#include "picomail/eval.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/ops.h"

#include "cli.h"

char *
cli_read_file(const char *path, size_t *len)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "picomail: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct buf b;
    buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        buf_add(&b, chunk, n);
    int failed = ferror(fp);
    if (fp != stdin)
        fclose(fp);
    if (failed) {
        fprintf(stderr, "picomail: %s: read error\n", path);
        buf_release(&b);
        return NULL;
    }
    return buf_take(&b, len);
}

int
cmd_check(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: picomail check FILE.krl...\n");
        return 2;
    }
    int status = 0;
    for (int i = 1; i < argc; i++) {
        size_t len;
        char *src = cli_read_file(argv[i], &len);
        if (src == NULL) {
            status = 1;
            continue;
        }
        struct krl_diags diags;
        krl_diags_init(&diags);
        struct krl_ruleset *rs = krl_ruleset_compile(argv[i], src, len,
                                                     &diags);
        if (rs == NULL) {
            struct buf out;
            buf_init(&out);
            krl_diags_format(&diags, &out);
            fputs(out.data, stderr);
            buf_release(&out);
            status = 1;
        }
        krl_ruleset_free(rs);
        krl_diags_release(&diags);
        free(src);
    }
    return status;
}

int
cmd_eval(int argc, char **argv)
{
    const char *file = NULL, *text = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            continue;   /* the output is always JSON */
        else if (text == NULL && file == NULL)
            text = argv[i];
        else {
            fprintf(stderr, "usage: picomail eval 'EXPR' | -f FILE\n");
            return 2;
        }
    }
    if ((text == NULL) == (file == NULL)) {
        fprintf(stderr, "usage: picomail eval 'EXPR' | -f FILE\n");
        return 2;
    }
    size_t len;
    char *src = file != NULL ? cli_read_file(file, &len)
                             : xmemdup(text, len = strlen(text));
    if (src == NULL)
        return 1;
    struct krl_diags diags;
    krl_diags_init(&diags);
    struct krl_body *body = krl_body_compile(file ? file : "<eval>", src,
                                             len, &diags);
    int status = 0;
    if (body == NULL) {
        struct buf out;
        buf_init(&out);
        krl_diags_format(&diags, &out);
        fputs(out.data, stderr);
        buf_release(&out);
        status = 1;
    } else {
        struct krl_vm *vm = krl_vm_new(NULL);
        kval v = krl_body_eval(vm, body);
        if (kval_is_error(&v)) {
            fprintf(stderr, "%s\n", kval_error_msg(&v));
            status = 1;
        } else {
            struct buf out;
            buf_init(&out);
            if (kval_is_null(&v))
                buf_adds(&out, "null");
            else
                json_encode(&v, JSON_KRL, 0, &out);
            puts(out.data);
            buf_release(&out);
        }
        kval_free(v);
        krl_vm_free(vm);
    }
    krl_body_free(body);
    krl_diags_release(&diags);
    free(src);
    return status;
}
