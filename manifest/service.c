/* services/<name>/service.yaml into the model: host, depends_on, provides,
 * and the typed needs (database, proxy route, OIDC client, health probes,
 * secrets) plus free-form settings. Cross-references are checked later. */
#include "manifest/internal.h"
#include "util/error.h"

#include <string.h>

/* ---- services/<name>/service.yaml ---------------------------------------- */

static const char *const service_keys[] = { "name", "host", "depends_on", "provides", "database",
					    "proxy", "oidc", "health", "secrets", "settings", "units",
					    NULL };
static const char *const database_keys[] = { "engine", "name", "user", "password_secret",
					     "provider", "extensions", NULL };
static const char *const route_keys[] = { "domain", "path_prefix", "port", "upstream", "tls",
					  "auth", "middlewares", NULL };
static const char *const oidc_keys[] = { "provider", "client_id", "redirect_uris",
					 "client_secret", NULL };
static const char *const health_keys[] = { "startup", "liveness", "start_timeout", NULL };
static const char *const probe_keys[] = { "http", "tcp", "command", "interval", "timeout",
					  "retries", "grace", NULL };
static const char *const http_probe_keys[] = { "url", "status", "body", NULL };
static const char *const tcp_probe_keys[] = { "host", "port", NULL };
static const char *const secret_keys[] = { "name", "file", "key", "owner", "group", "mode",
					   "restart", NULL };
static const char *const capabilities[] = { "postgresql", "mysql", "oidc", "forward-auth", NULL };
static const char *const engines[] = { "postgresql", "mysql", NULL };

static void parse_database(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
			   const tend_yaml_node *root)
{
	const tend_yaml_node *d = tend_mctx_enter_map(c, root, "database", 0, database_keys);
	tend_database_req *db;
	size_t old;

	if (!d || !(db = tend_arena_alloc(c->arena, sizeof(*db))))
		return;
	svc->database = db;
	db->pos = tend_mctx_key_pos(c, root, "database");
	old = tend_mctx_push(c, "database");
	if (tend_mctx_string(&db->engine, &aux->db_engine, c, d, "engine", 1) == 0 &&
	    strcmp(db->engine, "postgresql") && strcmp(db->engine, "mysql")) {
		const char *hint = tend_suggest_list(db->engine, engines);
		size_t o2 = tend_mctx_push(c, "engine");
		if (hint)
			tend_mctx_error(c, tend_yaml_map_get(d, "engine"),
					"unknown engine '%s' (did you mean '%s'?)", db->engine, hint);
		else
			tend_mctx_error(c, tend_yaml_map_get(d, "engine"),
					"unknown engine '%s' (expected postgresql or mysql)", db->engine);
		tend_mctx_pop(c, o2);
		db->engine = NULL;
	}
	tend_mctx_string(&db->name, NULL, c, d, "name", 1);
	tend_mctx_string(&db->user, NULL, c, d, "user", 1);
	tend_mctx_string(&db->password_secret, &aux->db_password, c, d, "password_secret", 0);
	tend_mctx_string(&db->provider, &aux->db_provider, c, d, "provider", 0);
	tend_mctx_string_list(&db->extensions, &db->n_extensions, NULL, c, d, "extensions", 0);
	tend_mctx_pop(c, old);
}

int tend_manifest_route_text_ok(const char *s)
{
	for (; s && *s; s++)
		if (*s == '`' || *s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return s != NULL;
}

static void parse_route(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
			const tend_yaml_node *root)
{
	const tend_yaml_node *r = tend_mctx_enter_map(c, root, "proxy", 0, route_keys);
	tend_proxy_req *px;
	size_t old;

	if (!r || !(px = tend_arena_alloc(c->arena, sizeof(*px))))
		return;
	svc->proxy = px;
	px->pos = tend_mctx_key_pos(c, root, "proxy");
	old = tend_mctx_push(c, "proxy");
	if (tend_mctx_string(&px->domain, &aux->proxy_domain, c, r, "domain", 1) == 0 &&
	    tend_check_dns_name(px->domain) < 0) {
		size_t o2 = tend_mctx_push(c, "domain");
		tend_mctx_error(c, tend_yaml_map_get(r, "domain"), "'%s' is not a DNS name", px->domain);
		tend_mctx_pop(c, o2);
		px->domain = NULL;
	}
	if (tend_mctx_string(&px->path_prefix, NULL, c, r, "path_prefix", 0) == 0 && px->path_prefix &&
	    px->path_prefix[0] != '/') {
		size_t o2 = tend_mctx_push(c, "path_prefix");
		tend_mctx_error(c, tend_yaml_map_get(r, "path_prefix"), "must start with '/'");
		tend_mctx_pop(c, o2);
	} else if (px->path_prefix && !tend_manifest_route_text_ok(px->path_prefix)) {
		/* what render would refuse: refused here, with its position */
		size_t o2 = tend_mctx_push(c, "path_prefix");
		tend_mctx_error(c, tend_yaml_map_get(r, "path_prefix"),
				"cannot be rendered safely (no '`', '\"', '\\', control character or DEL)");
		tend_mctx_pop(c, o2);
	}
	if (!px->path_prefix)
		px->path_prefix = "/";
	tend_mctx_port(&px->port, &aux->proxy_port, c, r, "port", 0);
	tend_mctx_url(&px->upstream, NULL, c, r, "upstream", 0, tend_http_schemes);
	if (tend_yaml_map_get(r, "port") && tend_yaml_map_get(r, "upstream"))
		tend_mctx_error(c, tend_yaml_map_get(r, "upstream"),
				"give either 'port' or 'upstream', not both");
	else if (!tend_mctx_field(c, r, "port", 0) && !tend_mctx_field(c, r, "upstream", 0))
		tend_mctx_error(c, r, "missing required field 'port' (or 'upstream')");
	tend_mctx_string(&px->tls, &aux->proxy_tls, c, r, "tls", 0);
	tend_mctx_bool(&px->auth, &aux->proxy_auth, c, r, "auth");
	tend_mctx_string_list(&px->middlewares, &px->n_middlewares, NULL, c, r, "middlewares", 0);
	tend_mctx_pop(c, old);
}

static void parse_oidc(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
		       const tend_yaml_node *root)
{
	const tend_yaml_node *o = tend_mctx_enter_map(c, root, "oidc", 0, oidc_keys), *list;
	tend_oidc_req *oi;
	size_t old, i;

	if (!o || !(oi = tend_arena_alloc(c->arena, sizeof(*oi))))
		return;
	svc->oidc = oi;
	oi->pos = tend_mctx_key_pos(c, root, "oidc");
	old = tend_mctx_push(c, "oidc");
	tend_mctx_string(&oi->provider, &aux->oidc_provider, c, o, "provider", 0);
	tend_mctx_string(&oi->client_id, NULL, c, o, "client_id", 1);
	if (tend_mctx_string_list(&oi->redirect_uris, &oi->n_redirect_uris, NULL, c, o, "redirect_uris", 1) == 0) {
		list = tend_yaml_map_get(o, "redirect_uris");
		for (i = 0; i < oi->n_redirect_uris; i++) {
			if (tend_check_url(oi->redirect_uris[i], tend_http_schemes) == 0)
				continue;
			size_t o2 = tend_mctx_push(c, "redirect_uris");
			size_t o3 = tend_mctx_push_index(c, i);
			tend_mctx_error(c, list->items[i], "'%s' is not a valid http:// URL",
					oi->redirect_uris[i]);
			tend_mctx_pop(c, o3);
			tend_mctx_pop(c, o2);
		}
	}
	tend_mctx_string(&oi->client_secret, &aux->oidc_secret, c, o, "client_secret", 0);
	tend_mctx_pop(c, old);
}

static void parse_probe(tend_probe *pr, tend_mctx *c, const tend_yaml_node *v)
{
	const tend_yaml_node *kind_node = NULL, *sub;
	const char *kinds[] = { "http", "tcp", "command" };
	int n_kinds = 0, i, retries = 3;

	pr->pos = tend_mctx_pos(c, v);
	pr->interval_ms = 2000;
	pr->timeout_ms = 5000;
	pr->grace_ms = 0;
	pr->retries = 3;
	pr->expect_status = 200;
	if (tend_mctx_expect_kind(c, v, TEND_YAML_MAP) < 0)
		return;
	tend_mctx_check_keys(c, v, probe_keys);
	for (i = 0; i < 3; i++) {
		if (tend_yaml_map_get(v, kinds[i])) {
			n_kinds++;
			if (!kind_node) {
				kind_node = tend_yaml_map_get(v, kinds[i]);
				pr->kind = (tend_probe_kind)(i + 1);
			}
		}
	}
	if (n_kinds != 1) {
		tend_mctx_error(c, v, n_kinds ? "a probe has exactly one of 'http', 'tcp' or 'command'"
					      : "missing required field 'http', 'tcp' or 'command'");
		return;
	}
	if (pr->kind == TEND_PROBE_HTTP) {
		if ((sub = tend_mctx_enter_map(c, v, "http", 1, http_probe_keys))) {
			size_t old = tend_mctx_push(c, "http");
			tend_mctx_url(&pr->url, NULL, c, sub, "url", 1, tend_http_schemes);
			tend_mctx_int(&pr->expect_status, c, sub, "status", 0, 100, 599, "an HTTP status");
			tend_mctx_string(&pr->body_match, NULL, c, sub, "body", 0);
			tend_mctx_pop(c, old);
		}
	} else if (pr->kind == TEND_PROBE_TCP) {
		if ((sub = tend_mctx_enter_map(c, v, "tcp", 1, tcp_probe_keys))) {
			size_t old = tend_mctx_push(c, "tcp");
			if (tend_mctx_string(&pr->host, NULL, c, sub, "host", 1) == 0 &&
			    tend_check_address(pr->host) < 0) {
				size_t o2 = tend_mctx_push(c, "host");
				tend_mctx_error(c, tend_yaml_map_get(sub, "host"),
						"'%s' is neither an IP address nor a DNS name", pr->host);
				tend_mctx_pop(c, o2);
			}
			tend_mctx_port(&pr->port, NULL, c, sub, "port", 1);
			tend_mctx_pop(c, old);
		}
	} else {
		char **argv = NULL;
		size_t argc = 0;
		if (tend_mctx_string_list(&argv, &argc, NULL, c, v, "command", 1) == 0) {
			pr->argv = argv;
			pr->argc = argc;
			argv[argc] = NULL;
		}
	}
	tend_mctx_duration(&pr->interval_ms, c, v, "interval");
	tend_mctx_duration(&pr->timeout_ms, c, v, "timeout");
	tend_mctx_duration(&pr->grace_ms, c, v, "grace");
	if (tend_mctx_int(&retries, c, v, "retries", 0, 1, 10000, "a number of tries") == 0)
		pr->retries = (unsigned)retries;
}

static void parse_health(tend_service *svc, tend_mctx *c, const tend_yaml_node *root)
{
	const tend_yaml_node *h = tend_mctx_enter_map(c, root, "health", 0, health_keys), *lists[2];
	const char *names[2] = { "startup", "liveness" };
	size_t total = 0, old, i, p;

	svc->start_timeout_ms = 60000;
	if (!h)
		return;
	old = tend_mctx_push(c, "health");
	tend_mctx_duration(&svc->start_timeout_ms, c, h, "start_timeout");
	for (p = 0; p < 2; p++) {
		lists[p] = tend_mctx_field(c, h, names[p], 0);
		if (lists[p]) {
			size_t o2 = tend_mctx_push(c, names[p]);
			if (tend_mctx_expect_kind(c, lists[p], TEND_YAML_SEQ) < 0)
				lists[p] = NULL;
			else
				total += lists[p]->count;
			tend_mctx_pop(c, o2);
		}
	}
	if (total && (svc->probes = tend_arena_alloc(c->arena, total * sizeof(*svc->probes)))) {
		for (p = 0; p < 2; p++) {
			size_t o2;
			if (!lists[p])
				continue;
			o2 = tend_mctx_push(c, names[p]);
			for (i = 0; i < lists[p]->count; i++) {
				tend_probe *pr = &svc->probes[svc->n_probes++];
				size_t o3 = tend_mctx_push_index(c, i);
				pr->phase = p == 0 ? TEND_PROBE_STARTUP : TEND_PROBE_LIVENESS;
				parse_probe(pr, c, lists[p]->items[i]);
				tend_mctx_pop(c, o3);
			}
			tend_mctx_pop(c, o2);
		}
	}
	tend_mctx_pop(c, old);
}

static int secret_name_ok(const char *s)
{
	const char *p;

	if (!strcmp(s, ".") || !strcmp(s, "..") || strlen(s) > 128)
		return 0;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

static int repo_path_ok(const char *s)
{
	const char *p = s;

	if (s[0] == '/')
		return 0;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* A systemd unit name as systemd accepts one (unit_name_is_valid): a name of letters, digits
 * and ":-_.\\@", then a known type suffix; at most 255 bytes. */
static int unit_name_ok(const char *n)
{
	static const char *const types[] = { ".service", ".socket", ".target", ".mount", ".timer",
					     ".path", ".automount", ".swap", ".slice", ".scope",
					     ".device", NULL };
	size_t len = strlen(n), i;

	if (!len || len > 255 || n[0] == '.')   /* "-.mount", "-.slice" are systemd's own */
		return 0;
	if (strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@") != len)
		return 0;
	for (i = 0; types[i]; i++) {
		size_t tl = strlen(types[i]);
		if (len > tl && !strcmp(n + len - tl, types[i]))
			return 1;
	}
	return 0;
}

/* Each name of a list of unit names (units, secrets[].restart) checked where it is written. */
static void check_unit_names(tend_mctx *c, const tend_yaml_node *map, const char *key,
			     char **names, size_t n)
{
	const tend_yaml_node *list = tend_yaml_map_get(map, key);
	size_t i;

	for (i = 0; list && i < n && i < list->count; i++) {
		size_t o, o2;

		if (unit_name_ok(names[i]))
			continue;
		o = tend_mctx_push(c, key);
		o2 = tend_mctx_push_index(c, i);
		tend_mctx_error(c, list->items[i], "'%s' is not a systemd unit name (e.g. "
				"grafana.service: letters, digits, ':-_.\\@', then .service, .socket, "
				".target, .mount, .timer, ...)", names[i]);
		tend_mctx_pop(c, o2);
		tend_mctx_pop(c, o);
	}
}

static void parse_secret(tend_secret_decl *s, tend_pos *file_pos, tend_mctx *c,
			 const tend_yaml_node *v)
{
	const tend_yaml_node *mode;

	s->pos = tend_mctx_pos(c, v);
	s->owner = "root";
	s->group = "root";
	s->mode = 0400;
	if (tend_mctx_expect_kind(c, v, TEND_YAML_MAP) < 0)
		return;
	tend_mctx_check_keys(c, v, secret_keys);
	if (tend_mctx_string(&s->name, NULL, c, v, "name", 1) == 0 && !secret_name_ok(s->name)) {
		size_t o = tend_mctx_push(c, "name");
		tend_mctx_error(c, tend_yaml_map_get(v, "name"),
				"invalid secret name '%s' (a file name of letters, digits, '.', '_', '-')",
				s->name);
		tend_mctx_pop(c, o);
	}
	if (tend_mctx_string(&s->file, file_pos, c, v, "file", 1) == 0 && !repo_path_ok(s->file)) {
		size_t o = tend_mctx_push(c, "file");
		tend_mctx_error(c, tend_yaml_map_get(v, "file"),
				"'%s' must be a path inside the repository (relative, without '..')", s->file);
		tend_mctx_pop(c, o);
		s->file = NULL;
	}
	if (tend_mctx_string(&s->key, NULL, c, v, "key", 0) == 0 && s->key && s->file &&
	    has_suffix(s->file, ".age")) {
		size_t o = tend_mctx_push(c, "key");
		tend_mctx_error(c, tend_yaml_map_get(v, "key"),
				"only sops files have keys; '%s' is an age file (decrypted whole)", s->file);
		tend_mctx_pop(c, o);
	}
	tend_mctx_string(&s->owner, NULL, c, v, "owner", 0);
	tend_mctx_string(&s->group, NULL, c, v, "group", 0);
	if ((mode = tend_mctx_field(c, v, "mode", 0))) {
		size_t o = tend_mctx_push(c, "mode");
		if (tend_mctx_expect_kind(c, mode, TEND_YAML_SCALAR) == 0 && tend_parse_mode(&s->mode, mode->value) < 0)
			tend_mctx_error(c, mode, "invalid mode '%s' (an octal file mode such as \"0400\", at most 0777)",
					mode->value);
		tend_mctx_pop(c, o);
	}
	if (tend_mctx_string_list(&s->restart, &s->n_restart, NULL, c, v, "restart", 0) == 0)
		check_unit_names(c, v, "restart", s->restart, s->n_restart);
}

static void parse_secrets(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
			  const tend_yaml_node *root)
{
	const tend_yaml_node *list = tend_mctx_field(c, root, "secrets", 0);
	size_t old, i, j;

	if (!list)
		return;
	old = tend_mctx_push(c, "secrets");
	if (tend_mctx_expect_kind(c, list, TEND_YAML_SEQ) == 0 && list->count) {
		svc->secrets = tend_arena_alloc(c->arena, list->count * sizeof(*svc->secrets));
		aux->secret_file = tend_arena_alloc(c->arena, list->count * sizeof(tend_pos));
		for (i = 0; svc->secrets && aux->secret_file && i < list->count; i++) {
			size_t o2 = tend_mctx_push_index(c, i);
			parse_secret(&svc->secrets[i], &aux->secret_file[i], c, list->items[i]);
			for (j = 0; j < i && svc->secrets[i].name; j++) {
				if (svc->secrets[j].name && !strcmp(svc->secrets[j].name, svc->secrets[i].name)) {
					size_t o3 = tend_mctx_push(c, "name");
					tend_mctx_error(c, tend_yaml_map_get(list->items[i], "name"),
							"secret '%s' is already declared at line %u",
							svc->secrets[i].name, svc->secrets[j].pos.line);
					tend_mctx_pop(c, o3);
					break;
				}
			}
			tend_mctx_pop(c, o2);
		}
		svc->n_secrets = svc->secrets ? list->count : 0;
	}
	tend_mctx_pop(c, old);
}

int tend_manifest__parse_service(tend_service *svc, tend_svc_aux *aux, tend_mctx *c,
				 const tend_yaml_node *root, const char *dir_name)
{
	const tend_yaml_node *v;
	char *name = NULL;
	size_t i;

	svc->name = tend_arena_strdup(c->arena, dir_name);
	svc->dir = tend_mctx_concat(c->arena, "services/", dir_name, NULL);
	svc->pos.file = c->file;
	svc->pos.line = root ? root->line : 0;
	svc->pos.col = root ? root->col : 0;
	if (!svc->name || !svc->dir)
		return TEND_ERROR;
	if (!root) {
		tend_pos p = { c->file, 0, 0 };
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p,
			       "empty document (expected a mapping with 'name' and 'host')");
		return 0;
	}
	if (tend_mctx_expect_kind(c, root, TEND_YAML_MAP) < 0)
		return 0;
	aux->parsed = 1;
	tend_mctx_check_keys(c, root, service_keys);
	if (tend_mctx_string(&name, &aux->name, c, root, "name", 1) == 0 && tend_check_name(name) < 0) {
		size_t old = tend_mctx_push(c, "name");
		tend_mctx_error(c, tend_yaml_map_get(root, "name"),
				"invalid service name '%s' (a letter or digit, then letters, digits, "
				"'-', '_', '.'; at most 63)", name);
		tend_mctx_pop(c, old);
	} else if (name && strcmp(name, dir_name)) {
		size_t old = tend_mctx_push(c, "name");
		tend_mctx_error(c, tend_yaml_map_get(root, "name"),
				"'%s' does not match its directory services/%s/ (rename one of them)",
				name, dir_name);
		tend_mctx_pop(c, old);
	}
	tend_mctx_string(&svc->host, &aux->host, c, root, "host", 1);
	tend_mctx_string_list(&svc->depends_on, &svc->n_depends_on, &svc->depends_on_pos, c, root,
			"depends_on", 0);
	if (tend_mctx_string_list(&svc->provides, &svc->n_provides, &aux->provides, c, root, "provides", 0) == 0) {
		for (i = 0; i < svc->n_provides; i++) {
			const char *hint;
			size_t old, o2, j;
			for (j = 0; capabilities[j] && strcmp(capabilities[j], svc->provides[i]); j++)
				;
			if (capabilities[j])
				continue;
			hint = tend_suggest_list(svc->provides[i], capabilities);
			v = tend_yaml_map_get(root, "provides")->items[i];
			old = tend_mctx_push(c, "provides");
			o2 = tend_mctx_push_index(c, i);
			if (hint)
				tend_mctx_error(c, v, "unknown capability '%s' (did you mean '%s'?)",
						svc->provides[i], hint);
			else
				tend_mctx_error(c, v, "unknown capability '%s' (expected postgresql, mysql, oidc or forward-auth)",
						svc->provides[i]);
			tend_mctx_pop(c, o2);
			tend_mctx_pop(c, old);
			svc->provides[i] = "";
		}
	}
	parse_database(svc, aux, c, root);
	parse_route(svc, aux, c, root);
	parse_oidc(svc, aux, c, root);
	parse_health(svc, c, root);
	parse_secrets(svc, aux, c, root);
	if (tend_mctx_string_list(&svc->units, &svc->n_units, NULL, c, root, "units", 0) == 0)
		check_unit_names(c, root, "units", svc->units, svc->n_units);
	if ((v = tend_mctx_enter_map(c, root, "settings", 0, NULL)))
		svc->settings = tend_mctx_copy_node(c->arena, v);
	return 0;
}
