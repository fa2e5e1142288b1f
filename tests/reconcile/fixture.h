/* Helpers shared by the reconcile tests (header-only: the test glob builds
 * only test_*.c): the test flake copied into a revision directory, free
 * loopback ports, agent configurations, and stopping the test services. */
#ifndef TEND_TESTS_RECONCILE_FIXTURE_H
#define TEND_TESTS_RECONCILE_FIXTURE_H

#include "tests/support/support.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Copy the test flake (tests/fixtures/flake) into dir with this machine's system. */
static inline void fx_copy_flake(const char *dir)
{
	static const char *const files[] = { "flake.nix", "flake.lock", "switch.sh", "service.py", NULL };
	struct utsname u;
	char system[128];
	size_t i;

	for (i = 0; files[i]; i++) {
		char *src = NULL, *text;
		assert_true(asprintf(&src, "%s/tests/fixtures/flake/%s", TEND_SOURCE_DIR, files[i]) > 0);
		text = test_read_file(src);
		assert_non_null(text);
		test_write_file(dir, files[i], text);
		free(text);
		free(src);
	}
	assert_int_equal(uname(&u), 0);
	snprintf(system, sizeof(system), "%s-linux\n", u.machine);
	test_write_file(dir, "system.txt", system);
}

/* Stop every test service started under root (root/<host>/service.pid). */
static inline void fx_stop_services(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *path = NULL, *pid;
		if (de->d_name[0] == '.')
			continue;
		assert_true(asprintf(&path, "%s/%s/service.pid", root, de->d_name) > 0);
		if ((pid = test_read_file(path))) {
			long p = strtol(pid, NULL, 10);
			if (p > 1)
				kill((pid_t)p, SIGKILL);
			free(pid);
		}
		free(path);
	}
	closedir(d);
}

/* Wait up to ms for something to accept on 127.0.0.1:port. */
static inline int fx_wait_listening(int port, int ms)
{
	struct timespec ts = { 0, 50 * 1000000L };
	int waited;

	for (waited = 0; waited <= ms; waited += 50) {
		struct sockaddr_in sa;
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

#endif
