/* TLS for tests: a throwaway CA and server certificates made at test time by
 * the openssl CLI in the test's temp directory (no key is ever committed), and
 * starting the python TLS servers on 127.0.0.1. Header-only, like the other
 * shared test fixtures (the test glob builds only test_*.c). */
#ifndef TEND_TESTS_SUPPORT_TLS_H
#define TEND_TESTS_SUPPORT_TLS_H

#include "tests/support/support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Skip the calling test, loudly, without the openssl CLI or python3. */
static inline void tls_require_tools(void)
{
	if (!test_have("openssl") || !test_have("python3")) {
		fprintf(stderr, "\n*** SKIPPING a TLS test: needs the openssl CLI and python3 ***\n\n");
		skip();
	}
}

/* dir/<name>.pem and dir/<name>.key: a self-signed CA (P-256, two days). */
static inline void tls_make_ca(const char *dir, const char *name)
{
	tend_buf out = TEND_BUF_INIT;

	if (test_sh(&out, dir,
		    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
		    "-keyout %s.key -out %s.pem -subj '/CN=tend test CA %s' "
		    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
		    name, name, name) != 0)
		fail_msg("openssl (CA %s): %s", name, out.ptr ? out.ptr : "");
	tend_buf_dispose(&out);
}

/* dir/<name>.pem and dir/<name>.key: a server certificate issued by the CA
 * dir/<ca>.pem for subject_alt_name (e.g. "DNS:127.0.0.1,IP:127.0.0.1"). */
static inline void tls_make_cert(const char *dir, const char *ca, const char *name,
				 const char *subject_alt_name)
{
	tend_buf out = TEND_BUF_INIT;

	if (test_sh(&out, dir,
		    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key "
		    "-out %s.csr -subj '/CN=tend test server' && "
		    "printf 'subjectAltName=%s\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > %s.ext && "
		    "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -days 2 "
		    "-extfile %s.ext -out %s.pem",
		    name, name, subject_alt_name, name, name, ca, ca, name, name) != 0)
		fail_msg("openssl (certificate %s): %s", name, out.ptr ? out.ptr : "");
	tend_buf_dispose(&out);
}

/* Run argv (a server that writes its port to portfile once it listens);
 * returns its pid and the port in *out_port. Fails the test after 10 s. */
static inline pid_t tls_start_server(char *const argv[], const char *portfile, int *out_port)
{
	char *port = NULL;
	pid_t pid;
	int i;

	unlink(portfile);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	for (i = 0; i < 400 && !(port = test_read_file(portfile)); i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			fail_msg("%s exited before it listened", argv[1] ? argv[1] : argv[0]);
		usleep(25000);
	}
	if (!port) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("%s did not start within 10 s", argv[1] ? argv[1] : argv[0]);
	}
	*out_port = atoi(port);
	free(port);
	return pid;
}

static inline void tls_stop_server(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

#endif
