/* Helpers for the host-lab tests (header-only: the test glob builds only test_*.c): a lab VM
 * (tests/host/lab) running tend as the systemd unit deploy/nixos-module.nix declares, following a
 * fleet repository in the guest that the test pushes to over ssh, built from tests/host/flake. */
#ifndef TEND_TESTS_HOST_LAB_H
#define TEND_TESTS_HOST_LAB_H

#include "tests/support/support.h"
#include "util/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAB TEND_SOURCE_DIR "/tests/host/lab"

typedef struct {
	const char *vm;   /* the VM's name */
	char *dir;        /* the test's work directory on the host */
	char *repo;       /* the operator's repository (work tree) on the host */
	char *ssh;        /* GIT_SSH_COMMAND reaching the guest */
	int agent_port;   /* the guest's agent port forwarded to loopback */
	char *age_recipient; /* the public key of the guest's age identity (/etc/tend/age.key) */
	char *push;       /* where lab_push pushes when not the guest's /srv/fleet.git (a
			   * repository on the host the guest fetches from) */
} lab_host;

/* How lab_host_up_with sets a VM up; every field may be NULL (the default). */
typedef struct {
	const char *url;     /* the agent's repository.url (default /srv/fleet.git in the guest) */
	const char *push;    /* lab_host.push */
	const char *fleet;   /* fleet.yaml (default: this VM the only host, at 127.0.0.1) */
	const char *system;  /* the JSON members of the agent's settings.system (default a
			      * switch_timeout of 8s) */
	const char *repository; /* more JSON members of the module's repository option
				 * ("sshKeyFile": ..., "knownHosts": ...) */
	const char *settings;   /* more JSON members of the agent's settings ("poll": {...}) */
	const char *module;     /* more JSON members of services.tend ("livenessInterval": ...) */
} lab_opts;

/* A shell command with a time limit of its own (a VM's boot under TCG takes more than the
 * usual 120 s); its output in out when given. Returns the exit code. */
static inline int lab_sh(tend_buf *out, int timeout_s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline int lab_sh(tend_buf *out, int timeout_s, const char *fmt, ...)
{
	va_list ap;
	int code;

	va_start(ap, fmt);
	code = test_shv(out, NULL, timeout_s, fmt, ap);
	va_end(ap);
	return code;
}

/* cmd as one single-quoted word for the host's shell (the guest's shell reads it). */
static inline char *lab_quote(const char *cmd)
{
	tend_buf b = TEND_BUF_INIT;

	tend_buf_putc(&b, '\'');
	for (; *cmd; cmd++) {
		if (*cmd == '\'')
			tend_buf_puts(&b, "'\\''");
		else
			tend_buf_putc(&b, *cmd);
	}
	tend_buf_putc(&b, '\'');
	return tend_buf_detach(&b);
}

/* CMD run in the guest (lab run); its output (trimmed) in a malloc'd string, NULL on failure. */
static inline char *lab_out(lab_host *h, const char *cmd)
{
	tend_buf out = TEND_BUF_INIT;
	char *s = NULL, *q = lab_quote(cmd);
	int code = lab_sh(&out, 120, "%s run %s %s", LAB, h->vm, q);

	if (code == 0) {
		s = strdup(out.ptr ? out.ptr : "");
		while (*s && strchr("\n ", s[strlen(s) - 1]))
			s[strlen(s) - 1] = '\0';
	}
	tend_buf_dispose(&out);
	free(q);
	return s;
}

/* CMD's output in the guest printed to stderr (what a failing test shows), whatever its exit. */
static inline void lab_show(lab_host *h, const char *cmd)
{
	tend_buf out = TEND_BUF_INIT;
	char *q = lab_quote(cmd);

	lab_sh(&out, 120, "%s run %s %s", LAB, h->vm, q);
	fprintf(stderr, "--- %s\n%s", cmd, out.ptr ? out.ptr : "");
	tend_buf_dispose(&out);
	free(q);
}

static inline int lab_run(lab_host *h, const char *cmd)
{
	char *q = lab_quote(cmd);
	int code = lab_sh(NULL, 120, "%s run %s %s", LAB, h->vm, q);

	free(q);
	return code;
}

/* What the guest's HTTP service on 127.0.0.1:port answers (a malloc'd string, "" when nothing
 * answers). */
static inline char *lab_http(lab_host *h, int port)
{
	char *cmd = NULL, *s;

	assert_true(asprintf(&cmd, "python3 -c \"import urllib.request as u; "
			     "print(u.urlopen('http://127.0.0.1:%d/', timeout=3).read().decode(), end='')\" "
			     "2>/dev/null || true", port) > 0);
	s = lab_out(h, cmd);
	free(cmd);
	return s ? s : strdup("");
}

/* The web service (lab_write_web, port 8081) answers want. */
static inline void lab_expect_web(lab_host *h, const char *want)
{
	char *got = lab_http(h, 8081);

	if (strcmp(got, want))
		fail_msg("the web service answers '%s', not '%s'", got, want);
	free(got);
}

/* The agent's /v1/status field (phase, applied_commit, ...) as a string ("true"/"false" for a
 * boolean), NULL when absent. */
static inline char *lab_status(lab_host *h, const char *field)
{
	tend_buf out = TEND_BUF_INIT;
	json_t *j, *v;
	char *s = NULL;

	if (lab_sh(&out, 10, "curl -s --max-time 3 http://127.0.0.1:%d/v1/status", h->agent_port) == 0 &&
	    (j = json_loadb(out.ptr, out.size, 0, NULL))) {
		v = json_object_get(j, field);
		if (json_is_string(v))
			s = strdup(json_string_value(v));
		else if (json_is_boolean(v))
			s = strdup(json_is_true(v) ? "true" : "false");
		json_decref(j);
	}
	tend_buf_dispose(&out);
	return s;
}

/* Waits up to timeout_s for /v1/status to say phase with applied_commit commit. */
static inline int lab_wait_phase(lab_host *h, const char *phase, const char *commit, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;

	while (time(NULL) < end) {
		char *p = lab_status(h, "phase"), *c = lab_status(h, "applied_commit");
		int ok = p && c && !strcmp(p, phase) && !strcmp(c, commit);

		free(p);
		free(c);
		if (ok)
			return 1;
		sleep(1);
	}
	return 0;
}

/* Waits up to timeout_s for the guest command to succeed. */
static inline int lab_wait_guest(lab_host *h, const char *cmd, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;

	tend_buf quiet = TEND_BUF_INIT;
	char *q = lab_quote(cmd);
	int ok = 0;

	while (!ok && time(NULL) < end) {
		ok = lab_sh(&quiet, 30, "%s run %s %s", LAB, h->vm, q) == 0;
		tend_buf_clear(&quiet);
		if (!ok)
			sleep(1);
	}
	tend_buf_dispose(&quiet);
	free(q);
	return ok;
}

/* services/web: an HTTP service answering body on 127.0.0.1:8081 in the guest, probed; extra
 * settings appended (two-space indented lines). */
static inline void lab_write_web(lab_host *h, const char *body, const char *extra)
{
	char *text = NULL;

	assert_true(asprintf(&text,
		"name: web\n"
		"host: %s\n"
		"health:\n"
		"  startup:\n"
		"    - http: {url: 'http://127.0.0.1:8081/', status: 200}\n"
		"      interval: 500ms\n"
		"      timeout: 2s\n"
		"      retries: 60\n"
		"settings:\n"
		"  lab_port: 8081\n"
		"  lab_body: %s\n"
		"%s",
		h->vm, body, extra ? extra : "") > 0);
	test_write_file(h->repo, "services/web/service.yaml", text);
	free(text);
}

/* Commit everything and push it to the guest's repository; the commit (caller frees). */
static inline char *lab_push(lab_host *h, const char *message)
{
	char *c = test_git_commit_all(h->repo, message);

	if (h->push)
		assert_int_equal(lab_sh(NULL, 60, "cd %s && git push -q %s main", h->repo, h->push), 0);
	else
		assert_int_equal(lab_sh(NULL, 60, "cd %s && GIT_SSH_COMMAND='%s' git push -q "
					"root@127.0.0.1:/srv/fleet.git main", h->repo, h->ssh), 0);
	return c;
}

/* Boots a VM named vm with tend, and a fleet (by default one whose only host it is); tend
 * starts as its unit. */
static inline lab_host *lab_host_up_with(const char *vm, const lab_opts *o)
{
	lab_host *h = calloc(1, sizeof(*h));
	tend_buf out = TEND_BUF_INIT;
	char *user = NULL;
	int ssh_port;

	h->vm = vm;
	h->dir = test_tmpdir_make("lab");
	assert_true(asprintf(&h->repo, "%s/repo", h->dir) > 0);
	lab_sh(NULL, 60, "%s down %s", LAB, vm);
	assert_int_equal(lab_sh(NULL, 900, "TEND_BINARY=%s %s up %s", TEND_BINARY, LAB, vm), 0);
	assert_int_equal(lab_sh(&out, 10, "%s port %s 22", LAB, vm), 0);
	ssh_port = atoi(out.ptr);
	tend_buf_clear(&out);
	assert_int_equal(lab_sh(&out, 10, "%s port %s 8470", LAB, vm), 0);
	h->agent_port = atoi(out.ptr);
	tend_buf_dispose(&out);
	assert_true(asprintf(&h->ssh, "ssh -i /tmp/tend-lab/%s/id_ed25519 -p %d -o StrictHostKeyChecking=no "
			     "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes",
			     vm, ssh_port) > 0);

	/* The fleet: one host, the lab flake, and tend's own unit made from the NixOS module. */
	assert_int_equal(test_sh(NULL, NULL, "mkdir -p %s && cd %s && git init -q -b main && "
				 "cp %s/tests/host/flake/*.* . && mkdir -p lab", h->repo, h->repo, TEND_SOURCE_DIR), 0);
	if (o->fleet) {
		test_write_file(h->repo, "fleet.yaml", o->fleet);
	} else {
		char *fleet = NULL;

		assert_true(asprintf(&fleet, "fleet: lab\ndomain: lab.test\nhosts:\n  %s: {address: 127.0.0.1}\n",
				     vm) > 0);
		test_write_file(h->repo, "fleet.yaml", fleet);
		free(fleet);
	}
	if (o->push)
		h->push = strdup(o->push);
	assert_true(asprintf(&user,
		"{\"enable\": true, \"hostName\": \"%s\", \"repository\": {\"url\": \"%s\"%s%s}, "
		"\"pollInterval\": \"2s\", \"driftInterval\": \"10m\", "
		"\"ageIdentityFiles\": [\"/etc/tend/age.key\"], "
		"\"listen\": {\"address\": \"0.0.0.0\", \"port\": 8470}, "
		"\"settings\": {\"nix\": {\"command\": \"/usr/bin/nix\", \"build_timeout\": \"10m\"}, "
		"\"probes\": {\"deadline\": \"2m\"}, \"system\": {%s}%s%s}%s%s}", vm,
		o->url ? o->url : "/srv/fleet.git", o->repository ? ", " : "",
		o->repository ? o->repository : "",
		o->system ? o->system : "\"switch_timeout\": \"8s\"", o->settings ? ", " : "",
		o->settings ? o->settings : "", o->module ? ", " : "", o->module ? o->module : "") > 0);
	test_write_file(h->dir, "user.json", user);
	free(user);
	assert_int_equal(test_sh(NULL, h->dir,
		"nix-instantiate --eval --strict --json --read-write-mode %s/tests/deploy/eval-module.nix "
		"--arg module %s/deploy/nixos-module.nix --arg user 'builtins.readFile %s/user.json' "
		"--argstr hostName %s > eval.json && "
		"python3 -c 'import json,sys; print(json.load(open(\"eval.json\"))[\"configFile\"])' > agent.yaml && "
		"python3 %s/tests/host/unit-from-module.py < eval.json > %s/lab/tend.service && "
		"python3 %s/tests/host/unit-from-module.py --key secretsUnit < eval.json > tend-secrets.service && "
		"age-keygen -o age.key 2>/dev/null",
		TEND_SOURCE_DIR, TEND_SOURCE_DIR, h->dir, vm, TEND_SOURCE_DIR, h->repo, TEND_SOURCE_DIR), 0);
	assert_int_equal(test_sh(&out, h->dir, "sed -n 's/^# public key: //p' age.key"), 0);
	assert_true(out.ptr && !strncmp(out.ptr, "age1", 4));
	h->age_recipient = strndup(out.ptr, strcspn(out.ptr, "\n"));
	tend_buf_dispose(&out);

	/* The guest: a bare repository to push to, the agent's configuration, the same unit. */
	assert_int_equal(lab_run(h, "git init -q --bare -b main /srv/fleet.git && mkdir -p /etc/tend"), 0);
	assert_int_equal(lab_sh(NULL, 60, "%s copy %s %s/agent.yaml /etc/tend/agent.yaml && "
				"%s copy %s %s/age.key /etc/tend/age.key && "
				"%s copy %s %s/tend-secrets.service /etc/systemd/system/tend-secrets.service && "
				"%s copy %s %s/lab/tend.service /etc/systemd/system/tend.service",
				LAB, vm, h->dir, LAB, vm, h->dir, LAB, vm, h->dir, LAB, vm, h->repo), 0);
	assert_int_equal(lab_run(h, "chmod 0600 /etc/tend/age.key && systemctl daemon-reload && "
				    "systemctl enable -q tend-secrets.service tend.service"), 0);
	return h;
}

static inline lab_host *lab_host_up(const char *vm)
{
	lab_opts o = { NULL, NULL, NULL, NULL, NULL, NULL, NULL };

	return lab_host_up_with(vm, &o);
}

static inline void lab_host_down(lab_host *h)
{
	if (!h)
		return;
	if (getenv("TEND_LAB_KEEP") == NULL)
		lab_sh(NULL, 60, "%s down %s", LAB, h->vm);
	free(h->repo);
	free(h->ssh);
	free(h->age_recipient);
	free(h->push);
	test_tmpdir_remove(h->dir);
	free(h);
}

#endif
