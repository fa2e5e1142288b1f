/* libcurl loaded on first use rather than linked (util/curl_lazy.c says why):
 * the curl_* functions tend calls are defined there; this says what failed
 * when libcurl could not be loaded. */
#ifndef TEND_UTIL_CURL_LAZY_H
#define TEND_UTIL_CURL_LAZY_H

/* NULL once libcurl is loaded (loading it now if it was not), else why it
 * cannot be ("cannot load libcurl: ..."). */
const char *tend_curl_lazy_error(void);

#endif
