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
    {"init", cmd_init,
     "init [--db FILE] [-c CONF] [--json]\n"
     "    Make the database and its root pico (once); print the root's id."},
    {"pico", cmd_pico,
     "pico new NAME [--parent PICO] | pico list | pico show PICO | "
     "pico rm PICO\n"
     "    Make, list, show or remove picos (PICO: an id or a name)."},
    {"channel", cmd_channel,
     "channel new PICO [--tag T]... [--allow D:T]... [--deny D:T]...\n"
     "        [--alias NAME] [--sender ADDR_OR_DOMAIN]... [--require-dkim]\n"
     "        [--require-dmarc] | channel list PICO | channel rm ECI\n"
     "    Make (printing its ECI and mail address), list or remove channels;\n"
     "    D:T are event domain:type, * for any."},
    {"ruleset", cmd_ruleset,
     "ruleset register FILE.krl | ruleset list | ruleset show RID | "
     "ruleset flush RID\n"
     "    Register a ruleset's source (rid and sha256), list or show them;\n"
     "    flush moves every pico using RID to its current version."},
    {"install", cmd_install,
     "install PICO RID [--config JSON]\n"
     "    Install a registered ruleset on a pico."},
    {"uninstall", cmd_uninstall,
     "uninstall PICO RID\n"
     "    Uninstall it (refused while another installed ruleset uses it)."},
    {"event", cmd_event,
     "event ECI DOMAIN TYPE [NAME=VALUE | NAME:=JSON]... [--time MS]\n"
     "    Raise an event on a channel; print its eid and directives."},
    {"query", cmd_query,
     "query ECI RID NAME [NAME=VALUE | NAME:=JSON]...\n"
     "    Call a shared function (or read a shared value) of a ruleset."},
    {"ent", cmd_ent,
     "ent PICO RID [NAME]\n"
     "    Print an entity variable, or all of the ruleset's on the pico."},
    {"log", cmd_log,
     "log [PICO] [--limit N]\n"
     "    Recent events with their directives or errors, newest first."},
    {"outbox", cmd_outbox,
     "outbox [--pico PICO] [--limit N] | outbox retry ID\n"
     "    What picos send (mail, SMS, events to other hosts), newest first,\n"
     "    with its state and last error; retry requeues a failed entry."},
    {"inbox", cmd_inbox,
     "inbox [--limit N]\n"
     "    Recent mail deliveries (one per recipient), newest first: pending,\n"
     "    done or failed, with the event id and any error."},
    {"replay", cmd_replay,
     "replay RULESET.krl[,MORE.krl...] EVENTS.jsonl [--db FILE]\n"
     "    Run a conformance case: a fresh pico with the rulesets installed\n"
     "    in order, one JSON line out per event or query line in."},
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
    fprintf(out, "usage: picomail COMMAND [ARGS]\n\n"
                 "Commands that use the database take --db FILE (default: "
                 "`database` of\npicomail.conf), -c CONF and --json.\n\n"
                 "commands:\n");
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

/* hoist - options given before the command word (--db FILE, -c FILE,
 * --json) are moved after it, where the commands read them: returns the
 * new argc; ARGV is rewritten in place */
static int
hoist(int argc, char **argv)
{
    int i = 1;
    while (i < argc) {
        if (strcmp(argv[i], "--json") == 0)
            i++;
        else if ((strcmp(argv[i], "--db") == 0 ||
                  strcmp(argv[i], "-c") == 0) && i + 1 < argc)
            i += 2;
        else
            break;
    }
    if (i == 1 || i >= argc)
        return argc;
    /* argv[1..i) are options, argv[i] the command: rotate the options to
       the end, keeping their order */
    int n_opts = i - 1;
    char *opts[64];
    if (n_opts > 64)
        return argc;
    for (int k = 0; k < n_opts; k++)
        opts[k] = argv[1 + k];
    for (int k = i; k < argc; k++)
        argv[k - n_opts] = argv[k];
    for (int k = 0; k < n_opts; k++)
        argv[argc - n_opts + k] = opts[k];
    return argc;
}

int
main(int argc, char **argv)
{
    argc = hoist(argc, argv);
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
