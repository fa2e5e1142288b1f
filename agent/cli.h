/* The command line: one function per subcommand, shared exit codes and
 * helpers for usage, errors and stubs. Results go to stdout, errors to stderr. */
#ifndef TEND_AGENT_CLI_H
#define TEND_AGENT_CLI_H

#include <stdio.h>

enum {
	TEND_EXIT_OK = 0,
	TEND_EXIT_ERROR = 1,
	TEND_EXIT_CHANGES = 2   /* plan/diff: there are changes (terraform's -detailed-exitcode) */
};

typedef struct {
	const char *name;
	const char *summary;
	const char *usage;      /* full --help text */
	int (*run)(int argc, char **argv);
} tend_cli_command;

/* The table of subcommands, NULL-terminated by name. */
extern const tend_cli_command tend_cli_commands[];
const tend_cli_command *tend_cli_command_find(const char *name);

/* "tend: error: ..." on stderr. */
void tend_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the command's usage to `to`; returns the exit code to use. */
int tend_cli_usage(const char *name, FILE *to, int code);
/* 1 if argv has -h or --help before any "--". */
int tend_cli_wants_help(int argc, char **argv);
/* Print a JSON document (indented, keys in insertion order) on stdout and
 * release it; NULL counts as out of memory. 0, or -1 with the error printed. */
struct json_t;
int tend_cli_print_json(struct json_t *root);

/* The --config FILE every host command takes: refuse (with the usage) when it
 * is missing or other arguments follow, else load it. Returns TEND_EXIT_OK
 * with *out set, or the exit code to return (the error already printed). */
struct tend_config;
int tend_cli_config_load(struct tend_config **out, const char *cmd, const char *config,
			 int stray_args);

/* A command whose only option is --config FILE (and --help): parse argv and load it, as
 * tend_cli_config_load. usage_name names the usage text printed for --help or a bad option.
 * *out is NULL when the command is done already (help, error): return the exit code. */
int tend_cli_config_only(struct tend_config **out, const char *cmd, const char *usage_name,
			 int argc, char **argv);

/* For subcommands a later issue fills in: honours --help, otherwise says so and exits 1. */
int tend_cli_not_implemented(const char *name, int argc, char **argv);

int tend_cmd_validate(int argc, char **argv);
int tend_cmd_render(int argc, char **argv);
int tend_cmd_diff(int argc, char **argv);
int tend_cmd_plan(int argc, char **argv);
int tend_cmd_reconcile(int argc, char **argv);
int tend_cmd_run(int argc, char **argv);
int tend_cmd_status(int argc, char **argv);
int tend_cmd_history(int argc, char **argv);
int tend_cmd_rollback(int argc, char **argv);
int tend_cmd_resume(int argc, char **argv);
int tend_cmd_secret(int argc, char **argv);
/* Internal: the agent's worker process (agent/cmd_worker.c, agent/worker.h). */
int tend_cmd_worker(int argc, char **argv);

#endif
