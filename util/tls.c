/* Choosing and checking the CA bundle for TLS peers (see util/tls.h). Only
 * the PEM armour is looked at here; the TLS library parses the certificates. */
#include "util/tls.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *tend_tls_ca_file(const char *configured)
{
	static const char *const bundles[] = { TEND_TLS_SYSTEM_BUNDLES, NULL };
	const char *env = getenv("SSL_CERT_FILE");
	size_t i;

	if (configured && *configured)
		return configured;
	if (env && *env)
		return env;
	for (i = 0; bundles[i]; i++)
		if (is_file(bundles[i]))
			return bundles[i];
	tend_error_set("no CA bundle found (none of %s, %s, %s, %s exists and SSL_CERT_FILE is not set): "
		       "configure a CA file", TEND_TLS_SYSTEM_BUNDLES);
	return NULL;
}

int tend_tls_ca_file_check(const char *path)
{
	tend_buf b = TEND_BUF_INIT;
	int error;

	if (!path || !*path) {
		tend_error_set("no CA file given");
		return TEND_EINVALID;
	}
	if (!is_file(path) && tend_path_exists(path)) {
		tend_error_set("%s: not a regular file (a CA file is one PEM bundle)", path);
		return TEND_EINVALID;
	}
	if ((error = tend_file_read(&b, path, TEND_TLS_CA_FILE_MAX)) < 0)
		return error;
	/* tend_buf keeps a NUL after the data; a NUL inside ends the search,
	 * which only makes a binary file fail, as it should. */
	if (!b.ptr || !strstr(b.ptr, "-----BEGIN CERTIFICATE-----")) {
		tend_error_set("%s: holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path);
		error = TEND_EINVALID;
	}
	tend_buf_dispose(&b);
	return error;
}
