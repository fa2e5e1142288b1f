/* tend validate: placeholder until its issue lands; keeps the contract visible. */
#include "agent/cli.h"

int tend_cmd_validate(int argc, char **argv)
{
	return tend_cli_not_implemented("validate", argc, argv);
}
