/* tend secret: placeholder until its issue lands; keeps the contract visible. */
#include "agent/cli.h"

int tend_cmd_secret(int argc, char **argv)
{
	return tend_cli_not_implemented("secret", argc, argv);
}
