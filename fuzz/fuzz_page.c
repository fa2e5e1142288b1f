/* libFuzzer target: the fleet page from other agents' status documents (untrusted, from the
 * network, kept as the fleet snapshot) rendered to HTML. Whatever they hold, the page has
 * exactly one script element (its own), no element a document brought in, and no attribute
 * value a document's quote ended early. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "agent/page.h"
#include "agent/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strstr(s, needle))) {
		n++;
		s++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tend_agent_status st;
	char *html = NULL;

	if (tend_agent_status_init(&st, "self") < 0)
		return 0;
	st.fleet = malloc(size + 1);
	if (st.fleet) {
		memcpy(st.fleet, data, size);
		st.fleet[size] = '\0';
	}
	if (tend_agent_page_html(&html, &st) == 0) {
		if (count(html, "<script") != 1 || count(html, "<img") || count(html, "<iframe") ||
		    count(html, "=\"alert") || count(html, "onmouseover=\""))
			abort();
		free(html);
	}
	tend_agent_status_dispose(&st);
	return 0;
}
