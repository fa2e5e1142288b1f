/* libcurl, loaded on first use. tend is one binary, but most processes it
 * runs never speak HTTP: the `tend run` supervisor, its ls-remote checker and
 * a reconcile without HTTPS probes. Linking libcurl would map it and its own
 * libraries (nghttp2, rtmp, psl, libssl, ldap, sasl2, zstd, brotli: about
 * 1 MiB resident, every relocation resolved at start) into each of them, and
 * the supervisor's resident memory is held under 10 MB (docs/benchmarks.md).
 *
 * These are the libcurl functions tend calls, defined here: the first call
 * dlopen()s the libcurl this build was configured with (its absolute path, so
 * that a Nix build keeps it in its closure and finds it without a search
 * path) and every later call goes straight to it. If it cannot be loaded the
 * calls fail the way libcurl reports running out of memory (NULL, or
 * CURLE_FAILED_INIT), and tend_curl_lazy_error() says why. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "util/curl_lazy.h"

#ifndef TEND_LIBCURL_PATH
#error "TEND_LIBCURL_PATH (the libcurl.so.4 to load) is set by util/CMakeLists.txt"
#endif

static struct {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	CURLcode (*easy_perform)(CURL *);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	void (*free_)(void *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLU *(*url)(void);
	void (*url_cleanup)(CURLU *);
	CURLUcode (*url_get)(CURLU *, CURLUPart, char **, unsigned int);
	CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char load_error[512];

#define RESOLVE(field, name)                                                   \
	do {                                                                   \
		*(void **)&fn.field = dlsym(h, name);                          \
		if (!fn.field) {                                               \
			snprintf(load_error, sizeof(load_error), "%s: no %s",  \
				 TEND_LIBCURL_PATH, name);                     \
			return;                                                \
		}                                                              \
	} while (0)

static void load(void)
{
	/* Never unloaded: OpenSSL, under it, pins itself anyway. */
	void *h = dlopen(TEND_LIBCURL_PATH, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *e = dlerror();

		snprintf(load_error, sizeof(load_error), "cannot load libcurl: %s",
			 e ? e : TEND_LIBCURL_PATH);
		return;
	}
	RESOLVE(easy_init, "curl_easy_init");
	RESOLVE(easy_setopt, "curl_easy_setopt");
	RESOLVE(easy_getinfo, "curl_easy_getinfo");
	RESOLVE(easy_perform, "curl_easy_perform");
	RESOLVE(easy_cleanup, "curl_easy_cleanup");
	RESOLVE(easy_strerror, "curl_easy_strerror");
	RESOLVE(free_, "curl_free");
	RESOLVE(slist_append, "curl_slist_append");
	RESOLVE(slist_free_all, "curl_slist_free_all");
	RESOLVE(url, "curl_url");
	RESOLVE(url_cleanup, "curl_url_cleanup");
	RESOLVE(url_get, "curl_url_get");
	RESOLVE(url_set, "curl_url_set");
	loaded = 1;
}

static int ready(void)
{
	pthread_once(&once, load);
	return loaded;
}

const char *tend_curl_lazy_error(void)
{
	return ready() ? NULL : load_error;
}

CURL *curl_easy_init(void)
{
	return ready() ? fn.easy_init() : NULL;
}

/* The value's type follows from the option's number, as in libcurl itself
 * (CURLOPTTYPE_*): below 10000 a long, below 30000 a pointer (data, string,
 * list or callback), below 40000 a curl_off_t, then a blob pointer. */
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
	CURLcode rc;
	va_list ap;

	if (!ready())
		return CURLE_FAILED_INIT;
	va_start(ap, option);
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = fn.easy_setopt(curl, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_OFF_T)
		rc = fn.easy_setopt(curl, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_BLOB)
		rc = fn.easy_setopt(curl, option, va_arg(ap, curl_off_t));
	else
		rc = fn.easy_setopt(curl, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
	CURLcode rc;
	va_list ap;

	if (!ready())
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = fn.easy_getinfo(curl, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_perform(CURL *curl)
{
	return ready() ? fn.easy_perform(curl) : CURLE_FAILED_INIT;
}

void curl_easy_cleanup(CURL *curl)
{
	if (curl && ready())
		fn.easy_cleanup(curl);
}

const char *curl_easy_strerror(CURLcode code)
{
	return ready() ? fn.easy_strerror(code) : load_error;
}

void curl_free(void *p)
{
	if (p && ready())
		fn.free_(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	return ready() ? fn.slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (list && ready())
		fn.slist_free_all(list);
}

CURLU *curl_url(void)
{
	return ready() ? fn.url() : NULL;
}

void curl_url_cleanup(CURLU *u)
{
	if (u && ready())
		fn.url_cleanup(u);
}

CURLUcode curl_url_get(CURLU *u, CURLUPart what, char **part, unsigned int flags)
{
	return ready() ? fn.url_get(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

CURLUcode curl_url_set(CURLU *u, CURLUPart what, const char *part, unsigned int flags)
{
	return ready() ? fn.url_set(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}
