/* The loader and the model: defaults, sorting, lookups, resolution of TLS
 * resolvers and upstreams, and every validation rule (each checked for its
 * exact message), from documents in memory and the example fleet. */
#include "tests/manifest/fixture.h"
#include "manifest/manifest.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void expect_errors(const char *fleet, const char *const *svcs, const char *expected)
{
	char *text;
	tend_manifest *m = load(&text, fleet, svcs);

	if (m || strcmp(text, expected))
		fail_msg("got:\n%s\nexpected:\n%s", text, expected);
	free(text);
}

static tend_manifest *load_ok(const char *fleet, const char *const *svcs)
{
	char *text;
	tend_manifest *m = load(&text, fleet, svcs);

	if (!m)
		fail_msg("unexpected errors:\n%s", text);
	free(text);
	return m;
}

/* ---- model and defaults ---------------------------------------------------- */

static void test_defaults_and_sorting(void **state)
{
	const char *svcs[] = {
		"web", "name: web\nhost: apps1\nproxy:\n  domain: www.example.org\n  port: 8080\n"
		       "health:\n  startup:\n    - http: {url: http://127.0.0.1:8080/}\n"
		       "  liveness:\n    - command: [true]\n      interval: 1m30s\n      retries: 7\n"
		       "      grace: 250ms\n      timeout: 1h\n"
		       "secrets:\n  - name: token\n    file: secrets/web/token.age\n  - name: key\n"
		       "    file: secrets/web.yaml\n    key: '[\"k\"]'\n    mode: 640\n    owner: www\n"
		       "settings:\n  colour: blue\n  list: [1, 2]\n",
		"authentik", "name: authentik\nhost: apps1\nprovides: [oidc, forward-auth]\n"
			     "proxy:\n  domain: auth.lab.example.net\n  path_prefix: /sso\n  upstream: http://[::1]:9000\n",
		"traefik", "name: traefik\nhost: gateway\n",
		NULL
	};
	tend_manifest *m = load_ok(FLEET PROXY, svcs);
	const tend_service *web, *ak;
	const tend_probe *p;

	(void)state;
	assert_string_equal(m->fleet, "lab");
	assert_int_equal(m->agent_port, 8470);
	assert_int_equal(m->n_hosts, 3);
	assert_string_equal(m->hosts[0].name, "apps1");
	assert_string_equal(m->hosts[1].name, "db1");
	assert_string_equal(m->hosts[2].name, "gateway");
	assert_string_equal(m->hosts[0].flake_attr, "apps1");
	assert_int_equal(m->hosts[0].agent_port, 8470);
	assert_string_equal(m->hosts[2].flake_attr, "gw");
	assert_int_equal(m->hosts[2].agent_port, 9000);
	assert_string_equal(m->hosts[2].pos.file, "fleet.yaml");
	assert_int_equal(m->hosts[2].pos.line, 8);

	assert_int_equal(m->n_services, 3);
	assert_string_equal(m->services[0].name, "authentik");
	assert_string_equal(m->services[1].name, "traefik");
	assert_string_equal(m->services[2].name, "web");
	assert_string_equal(m->services[2].dir, "services/web");
	assert_ptr_equal(tend_manifest_service(m, "traefik"), &m->services[1]);
	assert_null(tend_manifest_service(m, "nope"));
	assert_ptr_equal(tend_manifest_host(m, "db1"), &m->hosts[1]);
	assert_null(tend_manifest_host(m, "db2"));

	assert_non_null(m->proxy);
	assert_int_equal(m->proxy->kind, TEND_PROXY_TRAEFIK);
	assert_string_equal(m->proxy->entry_http, "web");
	assert_string_equal(m->proxy->entry_https, "websecure");
	assert_int_equal(m->proxy->http_port, 80);
	assert_int_equal(m->proxy->https_port, 443);
	assert_int_equal(m->proxy->redirect_http, 1);
	assert_int_equal(m->proxy->n_resolvers, 2);
	assert_string_equal(m->proxy->resolvers[0].name, "internal-ca");
	assert_int_equal(m->proxy->resolvers[0].kind, TEND_TLS_INTERNAL);

	web = tend_manifest_service(m, "web");
	assert_string_equal(web->pos.file, "services/web/service.yaml");
	assert_string_equal(web->proxy->path_prefix, "/");
	assert_string_equal(web->proxy->upstream, "http://10.0.0.3:8080");
	assert_int_equal(web->proxy->port, 8080);
	assert_string_equal(web->proxy->tls, "letsencrypt");   /* no internal suffix matches */
	assert_int_equal(web->proxy->auth, 0);
	assert_int_equal(web->n_probes, 2);
	p = &web->probes[0];
	assert_int_equal(p->kind, TEND_PROBE_HTTP);
	assert_int_equal(p->phase, TEND_PROBE_STARTUP);
	assert_int_equal(p->expect_status, 200);
	assert_null(p->body_match);
	assert_int_equal(p->interval_ms, 2000);
	assert_int_equal(p->timeout_ms, 5000);
	assert_int_equal(p->grace_ms, 0);
	assert_int_equal(p->retries, 3);
	p = &web->probes[1];
	assert_int_equal(p->kind, TEND_PROBE_COMMAND);
	assert_int_equal(p->phase, TEND_PROBE_LIVENESS);
	assert_int_equal(p->argc, 1);
	assert_string_equal(p->argv[0], "true");
	assert_null(p->argv[1]);
	assert_int_equal(p->interval_ms, 90000);
	assert_int_equal(p->timeout_ms, 3600000);
	assert_int_equal(p->grace_ms, 250);
	assert_int_equal(p->retries, 7);
	assert_int_equal(web->n_secrets, 2);
	assert_string_equal(web->secrets[0].owner, "root");
	assert_string_equal(web->secrets[0].group, "root");
	assert_int_equal(web->secrets[0].mode, 0400);
	assert_null(web->secrets[0].key);
	assert_int_equal(web->secrets[1].mode, 0640);
	assert_string_equal(web->secrets[1].owner, "www");
	assert_string_equal(web->secrets[1].key, "[\"k\"]");
	assert_non_null(web->settings);
	assert_int_equal(web->settings->kind, TEND_YAML_MAP);
	assert_string_equal(tend_yaml_map_get(web->settings, "colour")->value, "blue");
	assert_int_equal(tend_yaml_map_get(web->settings, "list")->count, 2);

	ak = tend_manifest_service(m, "authentik");
	assert_string_equal(ak->proxy->tls, "internal-ca");
	assert_string_equal(ak->proxy->upstream, "http://[::1]:9000");
	assert_int_equal(ak->proxy->port, 0);
	assert_string_equal(ak->proxy->path_prefix, "/sso");
	assert_null(ak->database);
	assert_null(ak->oidc);
	tend_manifest_free(m);
}

static void test_homelab_model(void **state)
{
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;
	const tend_service *s;
	const char **order, **deps;
	size_t i, n, pos_pg = 0, pos_ak = 0, pos_gr = 0;

	(void)state;
	assert_int_equal(tend_manifest_load(&m, &diags, TEND_SOURCE_DIR "/examples/homelab"), 0);
	assert_int_equal(diags.count, 0);
	assert_int_equal(m->n_hosts, 5);
	s = tend_manifest_service(m, "vaultwarden");
	assert_string_equal(s->database->provider, "postgresql");
	assert_string_equal(s->proxy->upstream, "http://10.10.0.3:8222");
	assert_string_equal(s->proxy->tls, "internal-ca");
	s = tend_manifest_service(m, "nextcloud");
	assert_string_equal(s->proxy->tls, "letsencrypt");
	assert_int_equal(tend_manifest_service_order(&order, m), 0);
	for (i = 0; order[i]; i++) {
		if (!strcmp(order[i], "postgresql")) pos_pg = i;
		if (!strcmp(order[i], "authentik")) pos_ak = i;
		if (!strcmp(order[i], "grafana")) pos_gr = i;
	}
	assert_int_equal(i, m->n_services);
	assert_true(pos_pg < pos_ak && pos_ak < pos_gr);
	free(order);
	assert_int_equal(tend_manifest_host_deps(&deps, &n, m, "apps1"), 0);
	assert_int_equal(n, 1);
	assert_string_equal(deps[0], "db1");
	free(deps);
	tend_manifest_free(m);
	tend_diags_dispose(&diags);
}

/* A document the caller could not read (data NULL) makes the fleet invalid
 * even though the caller's own diagnostic is the only one. */
static void test_unreadable_source_is_invalid(void **state)
{
	tend_manifest_source src[2] = { { "a", "name: a\nhost: apps1\ndepends_on: [b]\n", 0 },
					{ "b", NULL, 0 } };
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;

	(void)state;
	src[0].len = strlen(src[0].data);
	assert_int_equal(tend_manifest_load_sources(&m, &diags, FLEET, strlen(FLEET), src, 2, NULL, NULL),
			 TEND_EINVALID);
	assert_null(m);
	assert_int_equal(diags.count, 0);    /* and no "unknown service 'b'" cascade */
	tend_diags_dispose(&diags);
}

static void target_symlink(const char *dir, const char *rel, const char *link)
{
	char *target = tend_path_join(dir, rel);

	assert_int_equal(symlink(target, link), 0);
	free(target);
}

/* Secret files are looked up in the repository directory: regular files
 * only, reached without a link (a link as the file is refused, and so is a
 * link to a directory on the way: issue 17 F3, it could lead out of the
 * repository), in any directory, each lookup for itself. */
static void test_secret_files_on_disk(void **state)
{
	char *dir = test_tmpdir_make("manifest-secrets"), *target, *link, *text = NULL;
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;
	tend_buf out = TEND_BUF_INIT;
	size_t i;

	(void)state;
	test_write_file(dir, "fleet.yaml", FLEET);
	test_write_file(dir, "services/a/service.yaml",
			"name: a\nhost: apps1\nsecrets:\n"
			"  - {name: one, file: secrets/a/one.age}\n"
			"  - {name: two, file: vault/two.age}\n"
			"  - {name: three, file: secrets/a/three.age}\n"
			"  - {name: gone, file: secrets/a/gone.age}\n"
			"  - {name: link, file: secrets/a/link.age}\n"
			"  - {name: dir, file: secrets/a}\n"
			"  - {name: via, file: linked/a/one.age}\n"
			"  - {name: top, file: top.age}\n");
	test_write_file(dir, "secrets/a/one.age", "x");
	test_write_file(dir, "secrets/a/three.age", "x");
	test_write_file(dir, "vault/two.age", "x");
	test_write_file(dir, "top.age", "x");
	target = tend_path_join(dir, "secrets/a/one.age");
	link = tend_path_join(dir, "secrets/a/link.age");
	assert_int_equal(symlink(target, link), 0);
	free(link);
	free(target);
	link = tend_path_join(dir, "linked");
	assert_int_equal(symlink("secrets", link), 0);
	free(link);
	assert_int_equal(tend_manifest_load(&m, &diags, dir), TEND_EINVALID);
	for (i = 0; i < diags.count; i++) {
		char *line = tend_diag_format(&diags.items[i]);
		tend_buf_puts(&out, line);
		tend_buf_putc(&out, '\n');
		free(line);
	}
	text = out.ptr;
	assert_string_equal(text,
		"services/a/service.yaml:7:24: error: secrets[3].file: 'secrets/a/gone.age' does not exist in the repository\n"
		"services/a/service.yaml:8:24: error: secrets[4].file: 'secrets/a/link.age' does not exist in the repository\n"
		"services/a/service.yaml:9:23: error: secrets[5].file: 'secrets/a' does not exist in the repository\n"
		"services/a/service.yaml:10:23: error: secrets[6].file: 'linked/a/one.age' does not exist in the repository\n");
	tend_buf_dispose(&out);
	tend_diags_dispose(&diags);
	test_tmpdir_remove(dir);
}

/* ---- rules --------------------------------------------------------------------- */

/* issue 17 F4: fleet.yaml or a service.yaml committed as a link to a host
 * file (or a service directory that is a link) is refused without being
 * read: its content appears in no diagnostic. */
static void test_linked_manifests_not_read(void **state)
{
	char *dir = test_tmpdir_make("manifest-links"), *outside, *link, *text = NULL;
	tend_diags diags = { NULL, 0, 0, 0 };
	tend_manifest *m = NULL;
	tend_buf out = TEND_BUF_INIT;
	size_t i;

	(void)state;
	outside = test_tmpdir_make("manifest-links-outside");
	test_write_file(outside, "host-file", "name: leaked-host-secret\n  : [\n");
	test_write_file(outside, "svc/service.yaml", "name: c\nhost: apps1\nleaked-host-secret: 1\n");
	test_write_file(dir, "real/fleet.yaml", FLEET);
	test_write_file(dir, "services/a/service.yaml", "name: a\nhost: apps1\n");
	link = tend_path_join(dir, "services/b");
	assert_int_equal(mkdir(link, 0755), 0);
	free(link);
	link = tend_path_join(dir, "services/b/service.yaml");
	target_symlink(outside, "host-file", link);
	free(link);
	link = tend_path_join(dir, "services/c");
	target_symlink(outside, "svc", link);
	free(link);
	link = tend_path_join(dir, "fleet.yaml");
	assert_int_equal(symlink("real/fleet.yaml", link), 0);   /* even inside the repository */
	free(link);
	assert_int_equal(tend_manifest_load(&m, &diags, dir), TEND_EINVALID);
	assert_null(m);
	tend_diags_sort(&diags);
	for (i = 0; i < diags.count; i++) {
		char *line = tend_diag_format(&diags.items[i]);
		tend_buf_puts(&out, line);
		tend_buf_putc(&out, '\n');
		free(line);
	}
	text = out.ptr;
	assert_null(strstr(text, "leaked-host-secret"));
	assert_non_null(strstr(text, "fleet.yaml: error: a symbolic link (or one on its path): "
			       "tend follows no link in the repository\n"));
	assert_non_null(strstr(text, "services/b/service.yaml: error: a symbolic link"));
	assert_non_null(strstr(text, "services/c/service.yaml: error: a symbolic link"));
	tend_buf_dispose(&out);
	tend_diags_dispose(&diags);
	test_tmpdir_remove(outside);
	test_tmpdir_remove(dir);
}

static void test_rule_unknown_keys_everywhere(void **state)
{
	const char *svcs[] = { "a", "name: a\nhost: apps1\nproxy:\n  domian: x.lab.example.net\n  port: 1\n"
			       "health:\n  startup:\n    - tcp: {host: 127.0.0.1, prot: 1}\n"
			       "secrets:\n  - {name: s, file: secrets/s.age, mdoe: \"0400\"}\n"
			       "frobnicate: 1\n", NULL };
	(void)state;
	expect_errors(FLEET "proxy: {service: a, kind: traefik, routes_file: /x, entrypionts: {}}\n",
		      svcs,
		      "fleet.yaml:12:53: error: proxy: unknown key 'entrypionts' (did you mean 'entrypoints'?)\n"
		      "services/a/service.yaml:4:3: error: proxy: missing required field 'domain'\n"
		      "services/a/service.yaml:4:3: error: proxy: unknown key 'domian' (did you mean 'domain'?)\n"
		      "services/a/service.yaml:8:12: error: health.startup[0].tcp: missing required field 'port'\n"
		      "services/a/service.yaml:8:30: error: health.startup[0].tcp: unknown key 'prot' (did you mean 'port'?)\n"
		      "services/a/service.yaml:10:36: error: secrets[0]: unknown key 'mdoe' (did you mean 'mode'?)\n"
		      "services/a/service.yaml:11:1: error: unknown key 'frobnicate'\n");
}


/* apply_window: the fleet's default, a host's own, and a bad one named where it is. */
static void test_apply_window(void **state)
{
	const char *svcs[] = { NULL };
	tend_manifest *m;
	char *text;

	(void)state;
	m = load_ok("fleet: lab\ndomain: lab.example.net\napply_window: Sun 03:00-05:00\nhosts:\n"
		    "  a:\n    address: 10.0.0.3\n"
		    "  b:\n    address: 10.0.0.2\n    apply_window: Mon-Fri 22:00-02:00\n", svcs);
	assert_string_equal(m->apply_window, "Sun 03:00-05:00");
	assert_string_equal(tend_manifest_host(m, "a")->apply_window, "Sun 03:00-05:00");
	assert_string_equal(tend_manifest_host(m, "b")->apply_window, "Mon-Fri 22:00-02:00");
	tend_manifest_free(m);
	m = load_ok(FLEET, svcs);
	assert_null(tend_manifest_host(m, "db1")->apply_window);
	tend_manifest_free(m);

	m = load(&text, "fleet: lab\ndomain: lab.example.net\nhosts:\n"
		 "  a:\n    address: 10.0.0.3\n    apply_window: Sun 3:00-05:00\n", svcs);
	assert_null(m);
	if (!strstr(text, "fleet.yaml:6:19: error: hosts.a.apply_window: 'Sun 3:00-05:00': expected a span "
			  "like 03:00-05:00"))
		fail_msg("got:\n%s", text);
	free(text);
	m = load(&text, "fleet: lab\ndomain: lab.example.net\napply_window: Sunday 03:00-05:00\nhosts:\n"
		 "  a:\n    address: 10.0.0.3\n", svcs);
	assert_null(m);
	if (!strstr(text, "fleet.yaml:3:15: error: apply_window: 'Sunday 03:00-05:00': expected days"))
		fail_msg("got:\n%s", text);
	free(text);
}

/* operation and reboot_window: a fleet default, a host's own, and clear errors. */
static void test_operation_reboot_window(void **state)
{
	const char *svcs[] = { NULL };
	tend_manifest *m;
	char *text;

	(void)state;
	m = load_ok("fleet: lab\ndomain: lab.example.net\noperation: boot\nreboot_window: Sun 03:00-05:00\n"
		    "hosts:\n  a:\n    address: 10.0.0.3\n"
		    "  b:\n    address: 10.0.0.2\n    operation: switch\n    reboot_window: daily 02:00-03:00\n",
		    svcs);
	assert_int_equal(tend_manifest_host(m, "a")->operation, TEND_OPERATION_BOOT);
	assert_string_equal(tend_manifest_host(m, "a")->reboot_window, "Sun 03:00-05:00");
	assert_int_equal(tend_manifest_host(m, "b")->operation, TEND_OPERATION_SWITCH);
	assert_string_equal(tend_manifest_host(m, "b")->reboot_window, "daily 02:00-03:00");
	assert_int_equal(tend_manifest_host(m, "b")->reboot.start, 120);
	tend_manifest_free(m);
	m = load_ok(FLEET, svcs);
	assert_int_equal(tend_manifest_host(m, "db1")->operation, TEND_OPERATION_SWITCH);
	assert_null(tend_manifest_host(m, "db1")->reboot_window);
	tend_manifest_free(m);

	m = load(&text, "fleet: lab\ndomain: lab.example.net\nhosts:\n"
		 "  a:\n    address: 10.0.0.3\n    operation: reboot\n", svcs);
	assert_null(m);
	if (!strstr(text, "fleet.yaml:6:16: error: hosts.a.operation: unknown operation 'reboot' "
			  "(expected switch or boot)"))
		fail_msg("got:\n%s", text);
	free(text);
	m = load(&text, "fleet: lab\ndomain: lab.example.net\nreboot_window: Sun 3-5\nhosts:\n"
		 "  a:\n    address: 10.0.0.3\n", svcs);
	assert_null(m);
	if (!strstr(text, "fleet.yaml:3:16: error: reboot_window: 'Sun 3-5'"))
		fail_msg("got:\n%s", text);
	free(text);
}

typedef struct {
	const char *name;
	const char *fleet;
	const char *svcs[12];
	const char *expected;
} rule_case;

#define PG "postgresql", "name: postgresql\nhost: db1\nprovides: [postgresql]\n"
#define TRAEFIK "traefik", "name: traefik\nhost: gateway\n"
#define AK "authentik", "name: authentik\nhost: apps1\nprovides: [oidc, forward-auth]\n"

static const rule_case rule_cases[] = {
	{ "wrong types", FLEET, { "a", "name: a\nhost: [apps1]\ndepends_on: x\nprovides: {}\nsettings: [1]\n"
				   "health: []\nsecrets: {}\n" },
	  "services/a/service.yaml:2:7: error: host: expected a scalar, got a sequence\n"
	  "services/a/service.yaml:3:13: error: depends_on: expected a sequence, got a plain scalar\n"
	  "services/a/service.yaml:4:11: error: provides: expected a sequence, got a mapping\n"
	  "services/a/service.yaml:5:11: error: settings: expected a mapping, got a sequence\n"
	  "services/a/service.yaml:6:9: error: health: expected a mapping, got a sequence\n"
	  "services/a/service.yaml:7:10: error: secrets: expected a sequence, got a mapping\n" },
	{ "missing fields", "hosts: {}\n", { "a", "{}\n" },
	  "fleet.yaml:1:1: error: missing required field 'domain'\n"
	  "fleet.yaml:1:1: error: missing required field 'fleet'\n"
	  "fleet.yaml:1:8: error: hosts: a fleet needs at least one host\n"
	  "services/a/service.yaml:1:1: error: missing required field 'host'\n"
	  "services/a/service.yaml:1:1: error: missing required field 'name'\n" },
	{ "top level not a mapping", "- fleet\n", { "a", "just text\n" },
	  "fleet.yaml:1:1: error: expected a mapping, got a sequence\n"
	  "services/a/service.yaml:1:1: error: expected a mapping, got a plain scalar\n" },
	{ "empty documents", "", { "a", "# nothing\n" },
	  "fleet.yaml: error: empty document (expected a mapping with 'fleet', 'domain' and 'hosts')\n"
	  "services/a/service.yaml: error: empty document (expected a mapping with 'name' and 'host')\n" },
	{ "no fleet.yaml", NULL, { NULL },
	  "fleet.yaml: error: no fleet.yaml at the repository root (is this a fleet repository?)\n" },
	{ "duplicate yaml key", FLEET, { "a", "name: a\nhost: apps1\nhost: db1\n" },
	  "services/a/service.yaml:3:1: error: duplicate key 'host' (first defined at line 2)\n" },
	{ "host values", "fleet: lab\ndomain: lab..example\nagent_port: 0\nnetwork: {internal_cidrs: [10.0.0.0/33, 10.1.0.0/16]}\n"
	  "hosts:\n  a:\n    address: 10.0.0.300\n    age_recipient: nope\n  b c:\n    address: host-b.lab\n"
	  "    agent_port: http\n", { NULL },
	  "fleet.yaml:2:9: error: domain: 'lab..example' is not a DNS name\n"
	  "fleet.yaml:3:13: error: agent_port: 0 is out of range (1-65535)\n"
	  "fleet.yaml:4:28: error: network.internal_cidrs[0]: '10.0.0.0/33' is not a CIDR such as 10.0.0.0/24\n"
	  "fleet.yaml:7:14: error: hosts.a.address: '10.0.0.300' is neither an IP address nor a DNS name\n"
	  "fleet.yaml:8:20: error: hosts.a.age_recipient: expected an age recipient (age1...) or an SSH public key\n"
	  "fleet.yaml:9:3: error: hosts.b c: invalid host name (use letters, digits, '-', '_', '.')\n"
	  "fleet.yaml:11:17: error: hosts.b c.agent_port: expected a port number (1-65535), got 'http'\n" },
	{ "duplicate address ignores case", "fleet: lab\ndomain: lab.example.net\nhosts:\n  a: {address: NAS.lab}\n"
	  "  b: {address: nas.LAB}\n  c: {address: nas.lab}\n", { NULL },
	  "fleet.yaml:5:16: error: hosts.b.address: nas.LAB is already the address of host 'a'\n"
	  "fleet.yaml:6:16: error: hosts.c.address: nas.lab is already the address of host 'a'\n" },
	{ "fleet proxy and auth", FLEET "proxy: {service: traefk, kind: nginx, routes_file: tend.yml, redirect_http: maybe,\n"
	  "  ports: {http: 80, https: 99999}, tls: {x: {kind: acme, suffixes: [.a]}, y: {kind: other}}}\n"
	  "auth: {service: authentic, forward_auth_url: 'ftp://x'}\nalerts: {email: {to: [], smtp_url: 'http://x'}}\n",
	  { TRAEFIK, AK },
	  "fleet.yaml:12:18: error: proxy.service: unknown service 'traefk' (did you mean 'traefik'?)\n"
	  "fleet.yaml:12:32: error: proxy.kind: unknown proxy kind 'nginx' (expected traefik or caddy)\n"
	  "fleet.yaml:12:52: error: proxy.routes_file: must be an absolute path on the proxy's host\n"
	  "fleet.yaml:12:77: error: proxy.redirect_http: expected true or false, got 'maybe'\n"
	  "fleet.yaml:13:28: error: proxy.ports.https: 99999 is out of range (1-65535)\n"
	  "fleet.yaml:13:68: error: proxy.tls.x.suffixes: only internal resolvers take suffixes (an acme resolver serves every other domain)\n"
	  "fleet.yaml:13:85: error: proxy.tls.y.kind: unknown resolver kind 'other' (expected internal or acme)\n"
	  "fleet.yaml:14:17: error: auth.service: unknown service 'authentic' (did you mean 'authentik'?)\n"
	  "fleet.yaml:14:46: error: auth.forward_auth_url: 'ftp://x' is not a valid http:// URL\n"
	  "fleet.yaml:15:22: error: alerts.email.to: must not be empty\n"
	  "fleet.yaml:15:36: error: alerts.email.smtp_url: 'http://x' is not a valid smtp:// URL\n" },
	{ "unknown capability and engine", FLEET, { "a", "name: a\nhost: apps1\nprovides: [postgres, ldap]\n"
						    "database: {engine: postgre, name: a, user: a}\n" },
	  "services/a/service.yaml:3:12: error: provides[0]: unknown capability 'postgres' (did you mean 'postgresql'?)\n"
	  "services/a/service.yaml:3:22: error: provides[1]: unknown capability 'ldap' (expected postgresql, mysql, oidc or forward-auth)\n"
	  "services/a/service.yaml:4:20: error: database.engine: unknown engine 'postgre' (expected postgresql or mysql)\n" },
	{ "no provider", FLEET, { "a", "name: a\nhost: apps1\ndatabase: {engine: mysql, name: a, user: a}\n"
				  "oidc: {client_id: a, redirect_uris: ['https://a.example/cb']}\n" },
	  "services/a/service.yaml:3:1: error: database: no service provides 'mysql' (a service declares 'provides: [mysql]')\n"
	  "services/a/service.yaml:4:1: error: oidc: no service provides 'oidc' (a service declares 'provides: [oidc]')\n" },
	{ "two providers", FLEET, { PG, "pg2", "name: pg2\nhost: db1\nprovides: [postgresql]\n",
				    "a", "name: a\nhost: apps1\ndatabase: {engine: postgresql, name: a, user: a}\n" },
	  "services/a/service.yaml:3:1: error: database: 2 services provide 'postgresql' ('pg2', 'postgresql'); choose one with 'database.provider'\n" },
	{ "named provider", FLEET, { PG, AK, "a", "name: a\nhost: apps1\n"
				     "database: {engine: postgresql, name: a, user: a, provider: authentik}\n"
				     "oidc: {client_id: a, redirect_uris: ['https://a.example/cb'], provider: authentk}\n" },
	  "services/a/service.yaml:3:60: error: database.provider: service 'authentik' does not provide 'postgresql' (add 'postgresql' to its 'provides')\n"
	  "services/a/service.yaml:4:73: error: oidc.provider: unknown service 'authentk' (did you mean 'authentik'?)\n" },
	{ "secret references", FLEET, { PG, AK, "a", "name: a\nhost: apps1\n"
					"database: {engine: postgresql, name: a, user: a, password_secret: db}\n"
					"oidc: {client_id: a, redirect_uris: ['https://a.example/cb', 'x'], client_secret: oidc}\n"
					"secrets:\n  - {name: dbpw, file: secrets/db.age}\n  - {name: dbpw, file: ../etc/shadow}\n"
					"  - {name: ../x, file: /etc/passwd}\n  - {name: k, file: secrets/k.age, key: '[\"a\"]'}\n"
					"  - {name: gone, file: vault/gone.age}\n" },
	  "services/a/service.yaml:3:67: error: database.password_secret: 'db' is not one of this service's secrets\n"
	  "services/a/service.yaml:4:62: error: oidc.redirect_uris[1]: 'x' is not a valid http:// URL\n"
	  "services/a/service.yaml:4:83: error: oidc.client_secret: 'oidc' is not one of this service's secrets\n"
	  "services/a/service.yaml:7:12: error: secrets[1].name: secret 'dbpw' is already declared at line 6\n"
	  "services/a/service.yaml:7:24: error: secrets[1].file: '../etc/shadow' must be a path inside the repository (relative, without '..')\n"
	  "services/a/service.yaml:8:12: error: secrets[2].name: invalid secret name '../x' (a file name of letters, digits, '.', '_', '-')\n"
	  "services/a/service.yaml:8:24: error: secrets[2].file: '/etc/passwd' must be a path inside the repository (relative, without '..')\n"
	  "services/a/service.yaml:9:41: error: secrets[3].key: only sops files have keys; 'secrets/k.age' is an age file (decrypted whole)\n"
	  "services/a/service.yaml:10:24: error: secrets[4].file: 'vault/gone.age' does not exist in the repository\n" },
	{ "routes without proxy or auth", FLEET, { "a", "name: a\nhost: apps1\nproxy: {domain: a.example.org, port: 80, auth: true}\n" },
	  "services/a/service.yaml:3:1: error: proxy: fleet.yaml has no 'proxy' to route a.example.org through\n" },
	{ "route fields", FLEET PROXY, { TRAEFIK, AK,
		"a", "name: a\nhost: apps1\nproxy: {domain: a.example.org, port: 80, upstream: 'http://x:1', tls: letsencrpyt, path_prefix: app}\n",
		"b", "name: b\nhost: apps1\nproxy: {domain: 'b_.example.org.', middlewares: [1, {x: y}]}\n",
		"c", "name: c\nhost: apps1\nproxy: {domain: a.example.org, path_prefix: /app/, port: 81}\n" },
	  "services/a/service.yaml:3:52: error: proxy: give either 'port' or 'upstream', not both\n"
	  "services/a/service.yaml:3:71: error: proxy.tls: unknown TLS resolver 'letsencrpyt' (did you mean 'letsencrypt'?)\n"
	  "services/a/service.yaml:3:97: error: proxy.path_prefix: must start with '/'\n"
	  "services/b/service.yaml:3:8: error: proxy: missing required field 'port' (or 'upstream')\n"
	  "services/b/service.yaml:3:17: error: proxy.domain: 'b_.example.org.' is not a DNS name\n"
	  "services/b/service.yaml:3:53: error: proxy.middlewares[1]: expected a string, got a mapping\n" },
	{ "duplicate route, trailing slash", FLEET PROXY, { TRAEFIK, AK,
		"a", "name: a\nhost: apps1\nproxy: {domain: A.lab.example.net, path_prefix: /app, port: 80}\n",
		"b", "name: b\nhost: apps1\nproxy: {domain: a.lab.example.net, path_prefix: /app/, port: 81}\n",
		"c", "name: c\nhost: apps1\nproxy: {domain: a.lab.example.net, path_prefix: /, port: 82}\n" },
	  "services/b/service.yaml:3:17: error: proxy: route a.lab.example.net/app is already claimed by service 'a' (services/a/service.yaml:3:17)\n" },
	{ "no resolver serves the domain", FLEET "proxy: {service: traefik, kind: caddy, routes_file: /etc/caddy/tend,\n"
	  "  tls: {ca: {kind: internal, suffixes: [.lab.example.net]}, le1: {kind: acme}, le2: {kind: acme}}}\n",
	  { TRAEFIK, "a", "name: a\nhost: apps1\nproxy: {domain: a.example.org, port: 80}\n",
	    "b", "name: b\nhost: apps1\nproxy: {domain: lab.example.net, port: 80}\n" },
	  "services/a/service.yaml:3:17: error: proxy.domain: 2 acme resolvers could serve 'a.example.org'; choose one with 'proxy.tls'\n" },
	{ "probes", FLEET, { "a", "name: a\nhost: apps1\nhealth:\n  startup:\n"
			     "    - {http: {url: 'http://x/'}, tcp: {host: x, port: 1}}\n"
			     "    - {interval: 1s}\n"
			     "    - {http: {url: 'http://x/', status: 700}, retries: 0}\n"
			     "    - {command: [], grace: -1s}\n"
			     "    - {tcp: {host: 'no host', port: 1}, timeout: 1d}\n"
			     "  readiness: []\n" },
	  "services/a/service.yaml:5:7: error: health.startup[0]: a probe has exactly one of 'http', 'tcp' or 'command'\n"
	  "services/a/service.yaml:6:7: error: health.startup[1]: missing required field 'http', 'tcp' or 'command'\n"
	  "services/a/service.yaml:7:41: error: health.startup[2].http.status: 700 is out of range (100-599)\n"
	  "services/a/service.yaml:7:56: error: health.startup[2].retries: 0 is out of range (1-10000)\n"
	  "services/a/service.yaml:8:17: error: health.startup[3].command: must not be empty\n"
	  "services/a/service.yaml:8:28: error: health.startup[3].grace: invalid duration '-1s' (use a number with ms, s, m or h, such as 500ms, 2s or 1m30s)\n"
	  "services/a/service.yaml:9:20: error: health.startup[4].tcp.host: 'no host' is neither an IP address nor a DNS name\n"
	  "services/a/service.yaml:9:50: error: health.startup[4].timeout: invalid duration '1d' (use a number with ms, s, m or h, such as 500ms, 2s or 1m30s)\n"
	  "services/a/service.yaml:10:3: error: health: unknown key 'readiness'\n" },
	{ "unit names", FLEET, { "a", "name: a\nhost: apps1\nunits: [a.service, 'a;rm', grafana, 'x y.service', 'postgresql@16.service', -.mount]\n"
			     "secrets:\n  - {name: s, file: secrets/s.age, restart: [web]}\n" },
	  "services/a/service.yaml:3:20: error: units[1]: 'a;rm' is not a systemd unit name (e.g. grafana.service: letters, digits, ':-_.\\@', then .service, .socket, .target, .mount, .timer, ...)\n"
	  "services/a/service.yaml:3:28: error: units[2]: 'grafana' is not a systemd unit name (e.g. grafana.service: letters, digits, ':-_.\\@', then .service, .socket, .target, .mount, .timer, ...)\n"
	  "services/a/service.yaml:3:37: error: units[3]: 'x y.service' is not a systemd unit name (e.g. grafana.service: letters, digits, ':-_.\\@', then .service, .socket, .target, .mount, .timer, ...)\n"
	  "services/a/service.yaml:5:46: error: secrets[0].restart[0]: 'web' is not a systemd unit name (e.g. grafana.service: letters, digits, ':-_.\\@', then .service, .socket, .target, .mount, .timer, ...)\n" },
	{ "self dependency", FLEET, { "a", "name: a\nhost: apps1\ndepends_on: [a]\n" },
	  "services/a/service.yaml:3:14: error: dependency cycle: a -> a\n" },
	{ "cycle through implied needs", FLEET PROXY, { TRAEFIK,
		"authentik", "name: authentik\nhost: apps1\nprovides: [oidc]\ndepends_on: [wiki]\n",
		"wiki", "name: wiki\nhost: apps1\noidc: {client_id: w, redirect_uris: ['https://w.example/cb']}\n" },
	  "services/authentik/service.yaml:4:14: error: dependency cycle: authentik -> wiki -> authentik\n" },
	{ "two independent cycles", FLEET, {
		"a", "name: a\nhost: apps1\ndepends_on: [b]\n", "b", "name: b\nhost: apps1\ndepends_on: [a]\n",
		"c", "name: c\nhost: db1\ndepends_on: [d, a]\n", "d", "name: d\nhost: db1\ndepends_on: [c]\n" },
	  "services/a/service.yaml:3:14: error: dependency cycle: a -> b -> a\n"
	  "services/c/service.yaml:3:14: error: dependency cycle: c -> d -> c\n" },
	{ "three-host cycle", FLEET, {
		"a", "name: a\nhost: apps1\ndepends_on: [b]\n", "b", "name: b\nhost: db1\ndepends_on: [c]\n",
		"c", "name: c\nhost: gateway\n", "d", "name: d\nhost: gateway\ndepends_on: [e]\n",
		"e", "name: e\nhost: apps1\n" },
	  "services/a/service.yaml:3:14: error: a NixOS host switches as a whole, so hosts cannot depend on each other in a cycle: apps1 -> db1 (a needs b), db1 -> gateway (b needs c) and gateway -> apps1 (d needs e)\n" },
	{ "a broken fleet.yaml does not cascade", "fleet: lab\nhosts: [\n",
	  { "a", "name: a\nhost: apps1\nproxy: {domain: a.lab.example.net, port: 1, auth: true}\n" },
	  "fleet.yaml:3:1: error: did not find expected node content while parsing a flow node\n" },
	{ "a fleet.yaml without hosts mapping does not cascade", "fleet: lab\ndomain: x.y\nhosts: [a]\n"
	  "proxy: [x]\nauth: 1\n",
	  { "a", "name: a\nhost: apps1\nproxy: {domain: a.lab.example.net, port: 1, auth: true}\n" },
	  "fleet.yaml:3:8: error: hosts: expected a mapping, got a sequence\n"
	  "fleet.yaml:4:8: error: proxy: expected a mapping, got a sequence\n"
	  "fleet.yaml:5:7: error: auth: expected a mapping, got a plain scalar\n" },
	{ "no fleet.yaml does not cascade", NULL, { "a", "name: a\nhost: apps1\nproxy: {domain: a.b, port: 1}\n" },
	  "fleet.yaml: error: no fleet.yaml at the repository root (is this a fleet repository?)\n" },
	{ "a broken provider does not cascade", FLEET, {
		"postgresql", "name: postgresql\nhost: db1\nprovides: [postgresql\n",
		"a", "name: a\nhost: apps1\ndatabase: {engine: postgresql, name: a, user: a}\n",
		"b", "name: b\nhost: apps1\ndatabase: {engine: postgresql, name: b, user: b, provider: postgresql}\n" },
	  "services/postgresql/service.yaml:4:1: error: did not find expected ',' or ']' while parsing a flow sequence\n" },
	/* issue 17 F1: validate accepted it and reconcile wrote two levels above root */
	{ "a routes_file leaving the root", FLEET "proxy: {service: a, kind: traefik, routes_file: /../../victim/x.yml}\n",
	  { "a", "name: a\nhost: apps1\nproxy: {domain: a.lab.example.net, port: 1}\n" },
	  "fleet.yaml:12:49: error: proxy.routes_file: must be a plain absolute path (no '..', '.' or empty component)\n" },
	/* issue 17 F7: validate accepted what render refused */
	{ "a path_prefix render cannot quote", FLEET "proxy: {service: a, kind: traefik, routes_file: /x.yml}\n",
	  { "a", "name: a\nhost: apps1\nproxy: {domain: a.lab.example.net, port: 1, path_prefix: '/a`) || Host(`evil'}\n" },
	  "services/a/service.yaml:3:58: error: proxy.path_prefix: cannot be rendered safely (no '`', '\"', '\\', control character or DEL)\n" },
	{ "invalid service name", FLEET, { "my app", "name: my app\nhost: apps1\n" },
	  "services/my app/service.yaml:1:7: error: name: invalid service name 'my app' (a letter or digit, then letters, digits, '-', '_', '.'; at most 63)\n" },
	{ "unknown names do not cascade", FLEET, { "a", "name: a\nhost: apps1\ndepends_on: [broken]\n",
						   "broken", "name: broken\nhost: apps1\n  bad: indent\n" },
	  "services/broken/service.yaml:3:6: error: mapping values are not allowed in this context\n" },
};

static void test_rules(void **state)
{
	size_t i, failed = 0;

	(void)state;
	for (i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		char *text;
		tend_manifest *m = load(&text, rule_cases[i].fleet, rule_cases[i].svcs);
		if (m || strcmp(text, rule_cases[i].expected)) {
			fprintf(stderr, "%s: got:\n%s\nexpected:\n%s\n", rule_cases[i].name, text,
				rule_cases[i].expected);
			failed++;
		}
		tend_manifest_free(m);
		free(text);
	}
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_sorting),
		cmocka_unit_test(test_homelab_model),
		cmocka_unit_test(test_unreadable_source_is_invalid),
		cmocka_unit_test(test_secret_files_on_disk),
		cmocka_unit_test(test_linked_manifests_not_read),
		cmocka_unit_test(test_rule_unknown_keys_everywhere),
		cmocka_unit_test(test_apply_window),
		cmocka_unit_test(test_operation_reboot_window),
		cmocka_unit_test(test_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
