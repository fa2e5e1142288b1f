/* tend run status: placeholder until its issue lands; keeps the contract visible. */
#include "agent/cli.h"

int tend_cmd_run(int argc, char **argv)
{
	return tend_cli_not_implemented("run", argc, argv);
}

int tend_cmd_status(int argc, char **argv)
{
	return tend_cli_not_implemented("status", argc, argv);
}
