/* The Caddy renderer (render/caddy.c): the JSON passes `caddy validate`, and a
 * real `caddy run` on a loopback high port in front of small Python backends
 * sends each Host (and path prefix) to the right backend, and refuses an
 * `auth: true` route unless the auth backend approves. */
#include "tests/render/fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

static const char BACKENDS_PY[] =
	"import http.server, os, sys, threading\n"
	"portfile, names = sys.argv[1], sys.argv[2:]\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    def do_GET(self):\n"
	"        name = self.server.name\n"
	"        if name == 'auth':\n"
	"            if self.headers.get('Authorization') == 'Bearer good':\n"
	"                self.send_response(200)\n"
	"                self.send_header('X-User', 'alice')\n"
	"                self.send_header('Content-Length', '0')\n"
	"                self.end_headers()\n"
	"                return\n"
	"            body = ('denied uri=%s method=%s\\n' % (self.headers.get('X-Forwarded-Uri'),\n"
	"                    self.headers.get('X-Forwarded-Method'))).encode()\n"
	"            self.send_response(401)\n"
	"            self.send_header('Content-Length', str(len(body)))\n"
	"            self.end_headers()\n"
	"            self.wfile.write(body)\n"
	"            return\n"
	"        body = ('backend=%s host=%s path=%s user=%s\\n' % (name, self.headers.get('Host'),\n"
	"                self.path, self.headers.get('X-User'))).encode()\n"
	"        self.send_response(200)\n"
	"        self.send_header('Content-Length', str(len(body)))\n"
	"        self.end_headers()\n"
	"        self.wfile.write(body)\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"servers = []\n"
	"for n in names:\n"
	"    s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
	"    s.name = n\n"
	"    servers.append(s)\n"
	"with open(portfile + '.tmp', 'w') as f:\n"
	"    for s in servers:\n"
	"        f.write('%s %d\\n' % (s.name, s.server_address[1]))\n"
	"os.rename(portfile + '.tmp', portfile)\n"
	"for s in servers[1:]:\n"
	"    threading.Thread(target=s.serve_forever, daemon=True).start()\n"
	"servers[0].serve_forever()\n";

typedef struct {
	char *tmp;
	pid_t backends, caddy;
	int port_a, port_b, port_api, port_secure, port_auth, port_caddy;
	char *env_home;
} fixture;

static pid_t spawn(const char *log, char *const argv[], const char *home)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (home) {
			setenv("HOME", home, 1);
			setenv("XDG_DATA_HOME", home, 1);
			setenv("XDG_CONFIG_HOME", home, 1);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void stop(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char *portfile, *py, *log, *content = NULL, name[32];
	const char *p;
	int i, port, n;

	if (!test_have("caddy") || !test_have("python3") || !test_have("curl")) {
		fprintf(stderr, "SKIP: caddy, python3 and curl are needed\n");
		free(f);
		return -1;
	}
	f->tmp = test_tmpdir_make("caddy");
	f->env_home = tend_path_join(f->tmp, "home");
	assert_int_equal(tend_dir_create_all(f->env_home, 0700), 0);
	test_write_file(f->tmp, "backends.py", BACKENDS_PY);
	portfile = tend_path_join(f->tmp, "ports.txt");
	py = tend_path_join(f->tmp, "backends.py");
	log = tend_path_join(f->tmp, "backends.log");
	{
		char *argv[] = { "python3", py, portfile, "a", "b", "api", "secure", "auth", NULL };
		f->backends = spawn(log, argv, NULL);
	}
	for (i = 0; i < 200 && !(content = test_read_file(portfile)); i++)
		sleep_ms(50);
	assert_non_null(content);
	for (p = content; sscanf(p, "%31s %d%n", name, &port, &n) == 2; p += n) {
		if (!strcmp(name, "a")) f->port_a = port;
		else if (!strcmp(name, "b")) f->port_b = port;
		else if (!strcmp(name, "api")) f->port_api = port;
		else if (!strcmp(name, "secure")) f->port_secure = port;
		else if (!strcmp(name, "auth")) f->port_auth = port;
	}
	assert_true(f->port_a && f->port_b && f->port_api && f->port_secure && f->port_auth);
	f->port_caddy = test_free_port();
	free(content);
	free(portfile);
	free(py);
	free(log);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	stop(f->caddy);
	stop(f->backends);
	free(f->env_home);
	test_tmpdir_remove(f->tmp);
	free(f);
	return 0;
}

/* The test fleet: everything on 127.0.0.1, one internal CA resolver. */
static char *write_fleet(fixture *f)
{
	char *fleet = NULL, *svc_a = NULL, *svc_b = NULL, *svc_api = NULL, *svc_secure = NULL, *dir;

	assert_true(asprintf(&fleet,
		"fleet: loop\ndomain: lab.test\nhosts:\n  gw: {address: 127.0.0.1}\n"
		"proxy:\n  service: caddy\n  kind: caddy\n  routes_file: /etc/caddy/tend.json\n"
		"  tls:\n    inside: {kind: internal, suffixes: [.lab.test]}\n"
		"    public: {kind: acme, email: ops@example.org}\n"
		"    stepca: {kind: internal, suffixes: [.step.test], ca_url: \"https://127.0.0.1:9/acme/directory\"}\n"
		"auth:\n  service: sso\n  forward_auth_url: http://127.0.0.1:%d/verify?rd=1\n"
		"  response_headers: [X-User]\n", f->port_auth) > 0);
	assert_true(asprintf(&svc_a, "name: a\nhost: gw\nproxy: {domain: a.lab.test, port: %d}\n", f->port_a) > 0);
	assert_true(asprintf(&svc_b, "name: b\nhost: gw\nproxy: {domain: shop.example.org, port: %d}\n",
			     f->port_b) > 0);
	assert_true(asprintf(&svc_api, "name: api\nhost: gw\nproxy: {domain: shop.example.org, path_prefix: /api,"
			     " upstream: \"http://127.0.0.1:%d\"}\n", f->port_api) > 0);
	assert_true(asprintf(&svc_secure, "name: secure\nhost: gw\nproxy: {domain: s.lab.test, port: %d, auth: true}\n",
			     f->port_secure) > 0);
	{
		const char *const services[] = {
			"caddy", "name: caddy\nhost: gw\n",
			"sso", "name: sso\nhost: gw\nprovides: [forward-auth]\n",
			"a", svc_a, "b", svc_b, "api", svc_api, "secure", svc_secure,
			"stepped", "name: stepped\nhost: gw\nproxy: {domain: x.step.test, upstream: \"https://127.0.0.1:9\"}\n",
			NULL
		};
		dir = fx_repo("caddy-fleet", fleet, services);
	}
	free(fleet);
	free(svc_a);
	free(svc_b);
	free(svc_api);
	free(svc_secure);
	return dir;
}

static int caddy_validate(fixture *f, const char *file, tend_buf *out)
{
	return test_sh(out, f->tmp, "HOME=%s XDG_DATA_HOME=%s XDG_CONFIG_HOME=%s caddy validate --config %s"
		       "", f->env_home, f->env_home, f->env_home, file);
}

/* What production gets: HTTPS on 443, certificates per resolver. */
static void test_production_config_validates(void **state)
{
	fixture *f = *state;
	char *dir = write_fleet(f), *file;
	tend_manifest *m = fx_load(dir);
	tend_render_result *r = fx_render(m, "abc", NULL);
	const tend_render_output *o = tend_render_result_find(r, "gw", "routes/caddy.json");
	json_t *doc, *policies, *servers;
	tend_buf out = TEND_BUF_INIT;

	assert_non_null(o);
	assert_string_equal(o->dest, "/etc/caddy/tend.json");
	doc = fx_json(r, "gw", "routes/caddy.json");
	servers = json_object_get(json_object_get(json_object_get(doc, "apps"), "http"), "servers");
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(servers, "tend-https"),
		"listen"), 0)), ":443");
	/* Longer path prefixes first: /api before the bare domain. */
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(json_object_get(
		json_array_get(json_object_get(json_object_get(servers, "tend-https"), "routes"), 2), "match"), 0),
		"path"), 0)), "/api*");
	policies = json_object_get(json_object_get(json_object_get(json_object_get(doc, "apps"), "tls"),
				   "automation"), "policies");
	assert_int_equal(json_array_size(policies), 3);
	/* One policy per resolver, in the fleet's order: Caddy's own CA for an internal
	 * resolver, ACME against the internal CA when it has a ca_url, ACME for public names. */
	{
		const char *want_subject[] = { "a.lab.test", "shop.example.org", "x.step.test" };
		size_t i, k, found = 0;

		for (i = 0; i < 3; i++) {
			const json_t *pol = json_array_get(policies, i);
			const json_t *iss = json_array_get(json_object_get(pol, "issuers"), 0);
			const char *first = json_string_value(json_array_get(json_object_get(pol, "subjects"), 0));

			for (k = 0; k < 3; k++) {
				if (strcmp(first, want_subject[k]))
					continue;
				found++;
				if (k == 0) {
					assert_string_equal(json_string_value(json_object_get(iss, "module")), "internal");
					assert_int_equal(json_array_size(json_object_get(pol, "subjects")), 2);
				} else if (k == 1) {
					assert_string_equal(json_string_value(json_object_get(iss, "module")), "acme");
					assert_string_equal(json_string_value(json_object_get(iss, "email")), "ops@example.org");
					assert_null(json_object_get(iss, "ca"));
				} else {
					assert_string_equal(json_string_value(json_object_get(iss, "module")), "acme");
					assert_string_equal(json_string_value(json_object_get(iss, "ca")),
							    "https://127.0.0.1:9/acme/directory");
				}
			}
		}
		assert_int_equal(found, 3);
	}
	json_decref(doc);

	test_write_file(f->tmp, "prod.json", o->data);
	file = tend_path_join(f->tmp, "prod.json");
	if (caddy_validate(f, file, &out) != 0)
		fprintf(stderr, "%s\n", out.ptr);
	assert_int_equal(caddy_validate(f, file, NULL), 0);
	/* caddy validate is not a rubber stamp. */
	test_write_file(f->tmp, "bad.json", "{\"apps\": {\"http\": {\"servers\": {\"x\": {\"listen\": [\":1\"],"
			"\"routes\": [{\"handle\": [{\"handler\": \"reverse_proxi\"}]}]}}}}}");
	free(file);
	file = tend_path_join(f->tmp, "bad.json");
	tend_buf_clear(&out);
	assert_int_not_equal(caddy_validate(f, file, &out), 0);
	tend_buf_dispose(&out);
	free(file);
	tend_render_result_free(r);
	tend_manifest_free(m);
	test_tmpdir_remove(dir);
}

static int curl(tend_buf *out, fixture *f, const char *host, const char *path, const char *extra)
{
	tend_buf_clear(out);
	return test_sh(out, NULL, "curl -s -m 5 -H 'Host: %s' %s -w ' status=%%{http_code}' http://127.0.0.1:%d%s",
		       host, extra ? extra : "", f->port_caddy, path);
}

static void test_caddy_routes_traffic(void **state)
{
	fixture *f = *state;
	char *dir = write_fleet(f), *file, *log;
	tend_manifest *m = fx_load(dir);
	tend_render_options opts = TEND_RENDER_OPTIONS_INIT;
	tend_render_result *r;
	tend_buf out = TEND_BUF_INIT;
	int i, up = 0;

	opts.listen_address = "127.0.0.1";
	opts.http_port = f->port_caddy;
	opts.plain_http = 1;
	opts.caddy_admin = "off";
	r = fx_render(m, NULL, &opts);
	test_write_file(f->tmp, "loop.json", fx_output(r, "gw", "routes/caddy.json"));
	file = tend_path_join(f->tmp, "loop.json");
	log = tend_path_join(f->tmp, "caddy.log");
	if (caddy_validate(f, file, &out) != 0)
		fprintf(stderr, "%s\n", out.ptr);
	assert_int_equal(caddy_validate(f, file, NULL), 0);
	{
		char *argv[] = { "caddy", "run", "--config", file, NULL };
		f->caddy = spawn(log, argv, f->env_home);
	}
	for (i = 0; i < 200 && !up; i++) {
		up = curl(&out, f, "a.lab.test", "/", NULL) == 0 && strstr(out.ptr, "status=200");
		if (!up)
			sleep_ms(50);
	}
	if (!up) {
		char *l = test_read_file(log);
		fprintf(stderr, "caddy did not come up:\n%s\n", l ? l : "");
		free(l);
	}
	assert_true(up);

	assert_int_equal(curl(&out, f, "a.lab.test", "/hello", NULL), 0);
	assert_non_null(strstr(out.ptr, "backend=a host=a.lab.test path=/hello"));
	assert_int_equal(curl(&out, f, "shop.example.org", "/", NULL), 0);
	assert_non_null(strstr(out.ptr, "backend=b host=shop.example.org path=/ "));
	assert_int_equal(curl(&out, f, "shop.example.org", "/api/v1/items?q=1", NULL), 0);
	assert_non_null(strstr(out.ptr, "backend=api host=shop.example.org path=/api/v1/items?q=1"));
	/* PathPrefix semantics, like Traefik: /apix is under the /api prefix too. */
	assert_int_equal(curl(&out, f, "shop.example.org", "/apiary", NULL), 0);
	assert_non_null(strstr(out.ptr, "backend=api"));
	assert_int_equal(curl(&out, f, "shop.example.org", "/ap", NULL), 0);
	assert_non_null(strstr(out.ptr, "backend=b "));
	/* An unknown host reaches no backend. */
	assert_int_equal(curl(&out, f, "nobody.lab.test", "/", NULL), 0);
	assert_null(strstr(out.ptr, "backend="));

	/* auth: true: refused without the auth service's approval, its answer returned as is. */
	assert_int_equal(curl(&out, f, "s.lab.test", "/private", NULL), 0);
	assert_non_null(strstr(out.ptr, "status=401"));
	assert_non_null(strstr(out.ptr, "denied uri=/private method=GET"));
	assert_null(strstr(out.ptr, "backend="));
	assert_int_equal(curl(&out, f, "s.lab.test", "/private", "-H 'Authorization: Bearer bad'"), 0);
	assert_non_null(strstr(out.ptr, "status=401"));
	/* Approved: passes, with the auth service's X-User (a client's own X-User is replaced). */
	assert_int_equal(curl(&out, f, "s.lab.test", "/private",
			      "-H 'Authorization: Bearer good' -H 'X-User: mallory'"), 0);
	if (!strstr(out.ptr, "backend=secure host=s.lab.test path=/private user=alice\n status=200"))
		fprintf(stderr, "got: %s\n", out.ptr);
	assert_non_null(strstr(out.ptr, "backend=secure host=s.lab.test path=/private user=alice\n status=200"));

	tend_buf_dispose(&out);
	free(file);
	free(log);
	tend_render_result_free(r);
	tend_manifest_free(m);
	test_tmpdir_remove(dir);
}

/* Traefik middleware names mean nothing to Caddy: refused, naming the file. */
static void test_caddy_refuses_traefik_middlewares(void **state)
{
	static const char *const svcs[] = {
		"caddy", "name: caddy\nhost: gw\n",
		"app", "name: app\nhost: gw\nproxy: {domain: app.test, port: 8080, middlewares: [x]}\n",
		NULL
	};
	char *dir = fx_repo("caddy-mw", "fleet: p\ndomain: test\nhosts:\n  gw: {address: 10.1.1.1}\n"
			    "proxy: {service: caddy, kind: caddy, routes_file: /etc/caddy/tend.json}\n", svcs);
	tend_manifest *m = fx_load(dir);
	tend_render_result *r = NULL;

	assert_int_equal(tend_render_fleet(&r, m, NULL), TEND_EINVALID);
	assert_null(r);
	assert_non_null(strstr(tend_error_last(), "services/app/service.yaml:"));
	assert_non_null(strstr(tend_error_last(), "Traefik middlewares"));
	tend_manifest_free(m);
	test_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_production_config_validates),
		cmocka_unit_test(test_caddy_routes_traffic),
		cmocka_unit_test(test_caddy_refuses_traefik_middlewares),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
