/* The subcommand table with each command's usage (the contract operators'
 * scripts rely on), and the helpers every command shares. */
#include "agent/cli.h"
#include "agent/config.h"
#include "util/error.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

const tend_cli_command tend_cli_commands[] = {
	{ "validate", "check the fleet's manifests and report every problem",
	  "usage: tend validate [--repo DIR] [--json]\n"
	  "\n"
	  "Parse fleet.yaml and services/*/service.yaml and report every problem as\n"
	  "path:line:col: error: message. Exit 0 when the fleet is valid, 1 otherwise.\n"
	  "\n"
	  "  --repo DIR   the fleet repository (default: the current directory)\n"
	  "  --json       print the diagnostics as JSON on stdout\n",
	  tend_cmd_validate },
	{ "render", "write one host's rendered outputs (no secrets) into a directory",
	  "usage: tend render --repo DIR --host NAME --out DIR [--commit REV]\n"
	  "\n"
	  "Render what the manifests imply for one host: proxy routes (Traefik or Caddy)\n"
	  "and the host's NixOS inputs (hosts/<host>.json). Secrets are never rendered.\n"
	  "\n"
	  "  --repo DIR     the fleet repository (a git work tree when --commit is given)\n"
	  "  --host NAME    a host named in fleet.yaml\n"
	  "  --out DIR      where to write the outputs (hosts/<host>.json, routes/...);\n"
	  "                 each written file is printed with its destination on the host\n"
	  "  --commit REV   render that commit instead of the files in DIR\n",
	  tend_cmd_render },
	{ "diff", "show what changes between two commits, per host",
	  "usage: tend diff --repo DIR FROM TO [--host NAME] [--json]\n"
	  "\n"
	  "For each host, a unified diff of every rendered output that differs between\n"
	  "commits FROM and TO (the generated-from stamp aside), then a summary line per\n"
	  "host (\"gateway: routes +1 ~0 -0\": added, changed, removed). Exit 0 when\n"
	  "nothing differs, 2 when something does, 1 on error (e.g. invalid manifests).\n"
	  "\n"
	  "  --repo DIR     the fleet repository (any git repository holding both commits)\n"
	  "  --host NAME    only this host\n"
	  "  --json         the diffs, paths and counts per host as JSON\n",
	  tend_cmd_diff },
	{ "plan", "show the ordered actions a reconcile would take on this host",
	  "usage: tend plan --config FILE [--json]\n"
	  "\n"
	  "Compare what the newest commit wants with what this host runs and print the\n"
	  "ordered actions: files and secrets to write or remove (drift: a file edited by\n"
	  "hand), units to restart, the system switch (store path A -> B), probes. Nothing\n"
	  "on the host changes. Exit 0 when there is nothing to do, 2 when there is, 1 on error.\n",
	  tend_cmd_plan },
	{ "reconcile", "fetch, verify, render and converge this host once",
	  "usage: tend reconcile --once --config FILE [--retry] [--allow-non-fast-forward] [--now]\n"
	  "\n"
	  "Run one reconcile. Exit 0 when the host converged (or had nothing to do),\n"
	  "1 on error or when a change was rolled back.\n"
	  "\n"
	  "  --retry                    apply a commit that failed before\n"
	  "  --allow-non-fast-forward   accept a branch head that does not descend from\n"
	  "                             the applied commit, for this reconcile only\n"
	  "  --now                      apply even outside the host's apply_window\n"
	  "                             (fleet.yaml); without it a closed window means\n"
	  "                             outcome waiting, exit 1\n",
	  tend_cmd_reconcile },
	{ "run", "run the agent: poll, reconcile, alert, serve status",
	  "usage: tend run --config FILE [-n]\n"
	  "\n"
	  "Run the agent until SIGTERM: poll the repository (interval + jitter, backoff\n"
	  "after failures), reconcile after the hosts this one depends on run the new\n"
	  "commit, serve /healthz, /v1/status, /metrics and the signed webhook POST\n"
	  "/v1/hook, and mail alerts once per host, commit and kind of failure.\n"
	  "SIGHUP re-reads the configuration (kept when the new one is invalid).\n"
	  "Logs one line per event on stderr (journald priorities under systemd).\n"
	  "\n"
	  "  -n   check the configuration and exit (0 valid, 1 not)\n",
	  tend_cmd_run },
	{ "status", "show this host's status, or every host's with --fleet",
	  "usage: tend status --config FILE [--fleet] [--json]\n"
	  "\n"
	  "Ask this host's agent (listen address and port of the configuration), or\n"
	  "with --fleet every host's agent (address and agent_port of fleet.yaml at the\n"
	  "applied commit), for its status and print a table. Exit 0 when every agent\n"
	  "answered and is converged, 1 otherwise.\n",
	  tend_cmd_status },
	{ "history", "list past reconciles on this host",
	  "usage: tend history --config FILE [--json] [--limit N]\n"
	  "\n"
	  "Newest first: commit, outcome (applied, rolled-back, rollback-failed, failed,\n"
	  "refused, manual-rollback), generations, the failing probe and its output.\n",
	  tend_cmd_history },
	{ "rollback", "re-activate a previous generation by hand",
	  "usage: tend rollback --config FILE [--to GENERATION]\n"
	  "\n"
	  "Set the system profile back to a generation's store path and run its\n"
	  "switch-to-configuration (default: the latest earlier generation with another\n"
	  "system), restore the files of the commit it came from when the history knows\n"
	  "it, and probe. The commit rolled away from is not re-applied until a new commit\n"
	  "arrives or 'tend reconcile --once --retry'. Exit 0 when healthy, 1 otherwise.\n",
	  tend_cmd_rollback },
	{ "resume", "lift a hold: switch a host an operator rolled back forward again",
	  "usage: tend resume --config FILE\n"
	  "\n"
	  "A host that runs another system than the one tend applied (an older generation\n"
	  "booted from the boot menu, or 'nixos-rebuild switch --rollback') is held: tend\n"
	  "does not switch it forward again until a new commit arrives. 'tend resume' lifts\n"
	  "the hold: the agent's next reconcile (within a poll interval) switches to the\n"
	  "applied commit's system again. Exit 0 when the hold was lifted.\n",
	  tend_cmd_resume },
	{ "secret", "decrypt an age or sops file; install the applied commit's secrets",
	  "usage: tend secret decrypt [-i IDENTITY]... [--passphrase-file F] FILE [--extract PATH]\n"
	  "       tend secret install --config FILE\n"
	  "\n"
	  "install: write this host's secrets of the commit it runs (from the state\n"
	  "directory's mirror, with the configured identities; no network, no build)\n"
	  "where they are missing or differ. The NixOS module's tend-secrets unit runs\n"
	  "it at boot, before the services; the agent does it when it starts.\n"
	  "\n"
	  "Print the plaintext of an age file, or the decrypted sops document (or one\n"
	  "value with --extract '[\"a\"][\"b\"]'). The format is detected: age (binary or\n"
	  "armored), or sops YAML, JSON, dotenv or binary (printed in its own format).\n"
	  "A tampered file prints nothing. Exit 1 with \"no identity matched\" and the\n"
	  "file's recipients when no identity opens it.\n"
	  "\n"
	  "  -i, --identity FILE     an age key file (AGE-SECRET-KEY-1...), possibly itself\n"
	  "                          age-encrypted, or an unencrypted OpenSSH Ed25519 private\n"
	  "                          key such as a host key (used both natively and the\n"
	  "                          ssh-to-age way); repeatable\n"
	  "  --passphrase-file FILE  passphrase (first line) for scrypt-encrypted age files\n"
	  "                          and encrypted identity files\n"
	  "  --extract PATH          one value of a sops document, e.g. '[\"db\"][\"password\"]'\n"
	  "                          or '[\"hosts\"][0]'\n",
	  tend_cmd_secret },
	{ "worker", "internal: 'tend run' does its work in these short-lived processes; not for use by hand",
	  "usage: tend worker reconcile|deps|mail ... (internal)\n"
	  "\n"
	  "Run by 'tend run' for each reconcile, dependency check and alert mail, with\n"
	  "the configuration the agent adopted (or the mail) on stdin; prints one JSON\n"
	  "document.\n"
	  "Not for use by hand: its arguments and output may change in any release.\n",
	  tend_cmd_worker },
	{ NULL, NULL, NULL, NULL }
};

const tend_cli_command *tend_cli_command_find(const char *name)
{
	const tend_cli_command *c;

	for (c = tend_cli_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

void tend_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("tend: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int tend_cli_usage(const char *name, FILE *to, int code)
{
	const tend_cli_command *c = tend_cli_command_find(name);

	if (c)
		fputs(c->usage, to);
	return code;
}

int tend_cli_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	}
	return 0;
}

int tend_cli_not_implemented(const char *name, int argc, char **argv)
{
	if (tend_cli_wants_help(argc, argv))
		return tend_cli_usage(name, stdout, TEND_EXIT_OK);
	tend_cli_error("'tend %s' is not implemented yet", name);
	return TEND_EXIT_ERROR;
}

int tend_cli_print_json(json_t *root)
{
	char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	json_decref(root);
	if (!text) {
		tend_cli_error("out of memory");
		return -1;
	}
	puts(text);
	free(text);
	return 0;
}

static int config_load(tend_config **out, const char *cmd, const char *usage_name,
		       const char *config, int stray_args)
{
	*out = NULL;
	if (!config || stray_args) {
		tend_cli_error("%s: --config FILE is required and takes no other arguments", cmd);
		return tend_cli_usage(usage_name, stderr, TEND_EXIT_ERROR);
	}
	if (tend_config_load(out, config) < 0) {
		tend_cli_error("%s", tend_error_last());
		return TEND_EXIT_ERROR;
	}
	return TEND_EXIT_OK;
}

int tend_cli_config_only(tend_config **out, const char *cmd, const char *usage_name,
			 int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = NULL;
	int c;

	*out = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'h': return tend_cli_usage(usage_name, stdout, TEND_EXIT_OK);
		default: return tend_cli_usage(usage_name, stderr, TEND_EXIT_ERROR);
		}
	}
	return config_load(out, cmd, usage_name, config, optind != argc);
}

int tend_cli_config_load(tend_config **out, const char *cmd, const char *config, int stray_args)
{
	return config_load(out, cmd, cmd, config, stray_args);
}
