/*
 * cli.h - the picomail command's subcommands (src/cli/).
 *
 * Each cmd_* gets the arguments after the command word (argv[0] is the
 * command word itself) and returns the process exit status.
 */
#ifndef PICOMAIL_CLI_H
#define PICOMAIL_CLI_H

#include <stddef.h>

int cmd_check(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_pico(int argc, char **argv);
int cmd_channel(int argc, char **argv);
int cmd_ruleset(int argc, char **argv);
int cmd_install(int argc, char **argv);
int cmd_uninstall(int argc, char **argv);
int cmd_event(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_ent(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_inbox(int argc, char **argv);
int cmd_outbox(int argc, char **argv);
int cmd_replay(int argc, char **argv);

/* cli_wants_help - print the usage of NAME if ARGV has --help */
int cli_wants_help(int argc, char **argv, const char *name);
/* cli_read_file - the whole file in a malloc'd NUL-terminated buffer, or
 * NULL with a message on stderr */
char *cli_read_file(const char *path, size_t *len);

#endif
