/*
 * main.c - the picomail command: dispatch to subcommands.
 *
 * Each subcommand is a function taking argc/argv after the command word
 * and returning the exit status.  Errors go to stderr with a non-zero
 * exit; --help on any command prints its usage on stdout.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"check", cmd_check,
     "check FILE.krl...\n"
     "    Parse and compile rulesets; print FILE:LINE:COL: message for each\n"
     "    error; exit 1 when there is one."},
    {"eval", cmd_eval,
     "eval [--json] 'EXPR' | eval -f FILE\n"
     "    Evaluate declarations followed by one expression, e.g.\n"
     "    picomail eval 'x = [1, 2, 3]; x.map(function(n) { n * 2 })'\n"
     "    and print the result as JSON; a KRL error exits 1."},
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: picomail COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %s\n", commands[i].usage);
    fprintf(out, "\n'picomail COMMAND --help' shows one command.\n");
}

int
cli_wants_help(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
                if (strcmp(commands[c].name, name) == 0)
                    printf("usage: picomail %s\n", commands[c].usage);
            return 1;
        }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, argv[1]) == 0) {
            if (cli_wants_help(argc - 1, argv + 1, commands[i].name))
                return 0;
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "picomail: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
