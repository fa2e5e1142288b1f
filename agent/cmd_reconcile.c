/* tend reconcile rollback history: placeholder until its issue lands; keeps the contract visible. */
#include "agent/cli.h"

int tend_cmd_reconcile(int argc, char **argv)
{
	return tend_cli_not_implemented("reconcile", argc, argv);
}

int tend_cmd_rollback(int argc, char **argv)
{
	return tend_cli_not_implemented("rollback", argc, argv);
}

int tend_cmd_history(int argc, char **argv)
{
	return tend_cli_not_implemented("history", argc, argv);
}
