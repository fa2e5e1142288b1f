/* libFuzzer target: the manifest loader on one service.yaml (from memory, via
 * tend_manifest_load_sources) next to a fixed fleet.yaml, so the parser, the
 * typed getters and the cross-reference rules all see hostile input. An input
 * starting with "#fleet\n" is used as fleet.yaml instead (with fixed services):
 * its proxy.routes_file reaches the plain-path check (util/beneath.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "manifest/manifest.h"
#include "util/beneath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fleet[] =
	"fleet: fuzz\ndomain: lab.example.net\n"
	"hosts:\n  apps1: {address: 10.0.0.3}\n  db1: {address: 10.0.0.2}\n  gateway: {address: 10.0.0.1}\n"
	"proxy:\n  service: traefik\n  kind: traefik\n  routes_file: /var/lib/traefik/tend.yml\n"
	"  tls:\n    internal-ca: {kind: internal, suffixes: [.lab.example.net]}\n"
	"    letsencrypt: {kind: acme}\n"
	"auth: {service: authentik, forward_auth_url: 'http://10.0.0.3:9000/auth'}\n";

static const char traefik[] = "name: traefik\nhost: gateway\n";
static const char postgresql[] = "name: postgresql\nhost: db1\nprovides: [postgresql]\n";
static const char authentik[] =
	"name: authentik\nhost: apps1\nprovides: [oidc, forward-auth]\n"
	"database: {engine: postgresql, name: ak, user: ak}\n";

/* The loader's own lookup is beneath the repository without links
 * (util/beneath.h); here its lexical half, on the fuzzed secret paths. */
static int exists(const char *rel, void *payload)
{
	(void)payload;
	while (*rel == '/')
		rel++;
	return strncmp(rel, "secrets/", 8) == 0 && tend_path_rel_check(rel) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tend_manifest_source src[4] = {
		{ "authentik", authentik, sizeof(authentik) - 1 },
		{ "postgresql", postgresql, sizeof(postgresql) - 1 },
		{ "traefik", traefik, sizeof(traefik) - 1 },
		{ "app", (const char *)data, size },
	};
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;
	size_t i;

	if (size >= 7 && !memcmp(data, "#fleet\n", 7)) {
		tend_manifest_load_sources(&m, &diags, (const char *)data, size, src, 3, exists, NULL);
	} else {
		tend_manifest_load_sources(&m, &diags, fleet, sizeof(fleet) - 1, src, 4, exists, NULL);
	}
	if (m) {
		const char **order = NULL, **deps = NULL;
		size_t n;
		if (tend_manifest_service_order(&order, m) == 0)
			free(order);
		for (i = 0; i < m->n_services; i++)
			if (tend_manifest_service_deps(&deps, &n, m, &m->services[i]) == 0)
				free(deps);
		for (i = 0; i < m->n_hosts; i++)
			if (tend_manifest_host_deps(&deps, &n, m, m->hosts[i].name) == 0)
				free(deps);
	}
	for (i = 0; i < diags.count; i++)
		free(tend_diag_format(&diags.items[i]));
	tend_manifest_free(m);
	tend_diags_dispose(&diags);
	return 0;
}
