/* tend secret decrypt: print an age file's plaintext or a sops document
 * (or one value of it), detecting the format, with the identities given.
 * tend secret install: the applied commit's secrets from local state (boot). */
#include "agent/cli.h"
#include "agent/config.h"
#include "reconcile/reconcile.h"
#include "secrets/decrypt.h"
#include "secrets/identity.h"
#include "util/error.h"
#include "util/fs.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, p, len);
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int decrypt(const char *file, const char *extract, tend_age_identities *ids)
{
	tend_buf out = TEND_BUF_INIT;
	int rc = TEND_EXIT_ERROR;

	if (tend_secret_decrypt_file(&out, file, NULL, extract, ids) < 0) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	if (write_all(out.ptr ? out.ptr : "", out.size) < 0) {
		tend_cli_error("writing to standard output failed");
		goto out;
	}
	rc = TEND_EXIT_OK;
out:
	tend_buf_dispose_secure(&out);
	return rc;
}

/* tend secret install --config FILE: what the module's tend-secrets unit runs at boot. */
static int install(int argc, char **argv)
{
	tend_secrets_restored r;
	tend_config *cfg = NULL;
	int code = tend_cli_config_only(&cfg, "secret install", "secret", argc, argv);

	if (!cfg)
		return code;
	if (tend_reconcile_secrets_restore(&r, cfg) < 0) {
		tend_cli_error("secret install: %s", tend_error_last());
		code = TEND_EXIT_ERROR;
	} else if (!r.commit[0]) {
		printf("%s: nothing applied yet: no secrets to install\n", cfg->host);
	} else {
		printf("%s: commit %.12s: %zu secret%s, %zu installed\n", cfg->host, r.commit,
		       r.secrets, r.secrets == 1 ? "" : "s", r.installed);
	}
	tend_config_free(cfg);
	return code;
}

int tend_cmd_secret(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "extract", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *idents[64], *pass_file = NULL, *extract = NULL;
	size_t nident = 0, i;
	tend_age_identities *ids = NULL;
	tend_buf pass = TEND_BUF_INIT;
	int c, rc = TEND_EXIT_ERROR;

	if (tend_cli_wants_help(argc, argv))
		return tend_cli_usage("secret", stdout, TEND_EXIT_OK);
	if (argc >= 2 && !strcmp(argv[1], "install"))
		return install(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "decrypt")) {
		tend_cli_error("expected 'tend secret decrypt ...' or 'tend secret install ...'");
		return tend_cli_usage("secret", stderr, TEND_EXIT_ERROR);
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (nident == sizeof(idents) / sizeof(idents[0])) {
				tend_cli_error("too many -i options (at most 64)");
				return TEND_EXIT_ERROR;
			}
			idents[nident++] = optarg;
			break;
		case 'p':
			pass_file = optarg;
			break;
		case 'x':
			extract = optarg;
			break;
		default:
			return tend_cli_usage("secret", stderr, TEND_EXIT_ERROR);
		}
	}
	if (optind != argc - 1) {
		tend_cli_error("expected exactly one FILE");
		return tend_cli_usage("secret", stderr, TEND_EXIT_ERROR);
	}
	if (!nident && !pass_file) {
		tend_cli_error("no identity: give -i IDENTITY (age key file or OpenSSH Ed25519 key) "
			       "or --passphrase-file");
		return TEND_EXIT_ERROR;
	}
	if (tend_age_identities_new(&ids) < 0)
		goto fail;
	if (pass_file) {
		/* the passphrase is the file's first line */
		if (tend_file_read(&pass, pass_file, 4096) < 0)
			goto fail;
		if (pass.size && pass.ptr[pass.size - 1] == '\n')
			pass.size--;
		if (pass.size && pass.ptr[pass.size - 1] == '\r')
			pass.size--;
		if (!pass.size) {
			tend_error_set("%s: empty passphrase", pass_file);
			goto fail;
		}
		if (tend_age_identities_add_passphrase(ids, pass.ptr, pass.size) < 0)
			goto fail;
	}
	for (i = 0; i < nident; i++)
		if (tend_age_identities_add_file(ids, idents[i]) < 0)
			goto fail;
	rc = decrypt(argv[optind], extract, ids);
	goto out;
fail:
	tend_cli_error("%s", tend_error_last());
out:
	tend_buf_dispose_secure(&pass);
	tend_age_identities_free(ids);
	return rc;
}
