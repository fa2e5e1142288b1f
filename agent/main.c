/* tend's entry point: global flags, then dispatch to a subcommand. */
#include "agent/cli.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

static int usage(FILE *to, int code)
{
	const tend_cli_command *c;

	fputs("usage: tend [--version] [--help] <command> [<args>]\n\n"
	      "tend reconciles NixOS hosts with a git repository of service manifests.\n\n"
	      "Commands:\n", to);
	for (c = tend_cli_commands; c->name; c++)
		fprintf(to, "  %-10s %s\n", c->name, c->summary);
	fputs("\nRun 'tend <command> --help' for a command's options.\n"
	      "Exit codes: 0 success, 1 error, 2 changes pending (plan, diff).\n", to);
	return code;
}

int main(int argc, char **argv)
{
	const tend_cli_command *c;

	setlocale(LC_ALL, "C");
	if (sodium_init() < 0) {
		tend_cli_error("libsodium failed to initialise");
		return TEND_EXIT_ERROR;
	}
	if (argc < 2)
		return usage(stderr, TEND_EXIT_ERROR);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
		return usage(stdout, TEND_EXIT_OK);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("tend %s\n", TEND_VERSION);
		return TEND_EXIT_OK;
	}
	if (!(c = tend_cli_command_find(argv[1]))) {
		tend_cli_error("unknown command '%s' (see 'tend --help')", argv[1]);
		return TEND_EXIT_ERROR;
	}
	return c->run(argc - 1, argv + 1);
}
