/* tend render diff: placeholder until its issue lands; keeps the contract visible. */
#include "agent/cli.h"

int tend_cmd_render(int argc, char **argv)
{
	return tend_cli_not_implemented("render", argc, argv);
}

int tend_cmd_diff(int argc, char **argv)
{
	return tend_cli_not_implemented("diff", argc, argv);
}
