/* Shared by the manifest tests: a small fleet, and loading documents from
 * memory into a model plus its diagnostics, one formatted line each. */
#ifndef TEND_TESTS_MANIFEST_FIXTURE_H
#define TEND_TESTS_MANIFEST_FIXTURE_H

#include "tests/support/support.h"
#include "manifest/manifest.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLEET \
	"fleet: lab\ndomain: lab.example.net\nhosts:\n" \
	"  apps1:\n    address: 10.0.0.3\n" \
	"  db1:\n    address: 10.0.0.2\n" \
	"  gateway:\n    address: 10.0.0.1\n    agent_port: 9000\n    flake_attr: gw\n"

#define PROXY \
	"proxy:\n  service: traefik\n  kind: traefik\n  routes_file: /var/lib/traefik/tend.yml\n" \
	"  tls:\n    internal-ca:\n      kind: internal\n      suffixes: [.lab.example.net]\n" \
	"    letsencrypt:\n      kind: acme\n" \
	"auth:\n  service: authentik\n  forward_auth_url: http://10.0.0.3:9000/outpost\n"

/* secrets under secrets/ exist; nothing else does */
static int exists_cb(const char *rel, void *payload)
{
	(void)payload;
	return !strncmp(rel, "secrets/", 8);
}

/* Load fleet + services given as name, yaml, name, yaml, ..., NULL. Returns
 * the model (or NULL) and the formatted diagnostics, one per line. */
static tend_manifest *load(char **diag_text, const char *fleet, const char *const *svcs)
{
	tend_manifest_source src[32];
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;
	tend_buf out = TEND_BUF_INIT;
	size_t n = 0, i;
	int rc;

	for (i = 0; svcs && svcs[i]; i += 2) {
		src[n].name = svcs[i];
		src[n].data = svcs[i + 1];
		src[n].len = strlen(svcs[i + 1]);
		n++;
	}
	rc = tend_manifest_load_sources(&m, &diags, fleet, fleet ? strlen(fleet) : 0, src, n,
					exists_cb, NULL);
	assert_true(rc == 0 || rc == TEND_EINVALID);
	assert_int_equal(rc == 0, m != NULL);
	assert_int_equal(rc == 0, diags.errors == 0);
	for (i = 0; i < diags.count; i++) {
		char *line = tend_diag_format(&diags.items[i]);
		tend_buf_puts(&out, line);
		tend_buf_putc(&out, '\n');
		free(line);
	}
	tend_diags_dispose(&diags);
	*diag_text = out.ptr ? tend_buf_detach(&out) : strdup("");
	return m;
}

#endif
