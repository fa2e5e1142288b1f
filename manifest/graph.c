/* Questions the rest of tend asks of a loaded fleet's dependency graph: a
 * service's dependencies, a deterministic dependency order, and which hosts
 * a host needs. The graph was built (and checked acyclic) by validate.c. */
#include "manifest/internal.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int tend_manifest_service_deps(const char ***out, size_t *n, const tend_manifest *m,
			       const tend_service *svc)
{
	const tend_manifest_priv *p = m->priv;
	size_t i, k, cnt;
	const char **names;

	*out = NULL;
	*n = 0;
	if (svc < m->services || svc >= m->services + m->n_services) {
		tend_error_set("service is not part of this manifest");
		return TEND_EINVALID;
	}
	i = (size_t)(svc - m->services);
	cnt = p->off[i + 1] - p->off[i];
	/* edges are deduplicated and sorted by target index, which is name order */
	if (!(names = malloc((cnt ? cnt : 1) * sizeof(*names)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (k = 0; k < cnt; k++)
		names[k] = m->services[p->edges[p->off[i] + k].to].name;
	*out = names;
	*n = cnt;
	return 0;
}

/* a binary min-heap of service indices: ties in the order go by name */
static void heap_push(size_t *h, size_t *n, size_t x)
{
	size_t i = (*n)++;

	while (i > 0 && h[(i - 1) / 2] > x) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = x;
}

static size_t heap_pop(size_t *h, size_t *n)
{
	size_t top = h[0], x = h[--(*n)], i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (h[c] >= x)
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = x;
	return top;
}

int tend_manifest_service_order(const char ***out, const tend_manifest *m)
{
	const tend_manifest_priv *p = m->priv;
	size_t ns = m->n_services, i, k, nheap = 0, done = 0;
	size_t *pending = NULL, *roff = NULL, *rfrom = NULL, *heap = NULL;
	const char **names = NULL;
	int error = TEND_ERROR;

	*out = NULL;
	if (!(pending = calloc(ns + 1, sizeof(size_t))) || !(roff = calloc(ns + 2, sizeof(size_t))) ||
	    !(rfrom = malloc((p->n_edges ? p->n_edges : 1) * sizeof(size_t))) ||
	    !(heap = malloc((ns ? ns : 1) * sizeof(size_t))) ||
	    !(names = calloc(ns + 1, sizeof(*names)))) {
		tend_error_set("out of memory");
		goto out;
	}
	/* reverse edges: who depends on service i */
	for (i = 0; i < p->n_edges; i++)
		roff[p->edges[i].to + 1]++;
	for (i = 0; i < ns; i++)
		roff[i + 1] += roff[i];
	for (i = 0; i < ns; i++) {
		for (k = p->off[i]; k < p->off[i + 1]; k++)
			rfrom[roff[p->edges[k].to] + pending[p->edges[k].to]++] = i;
	}
	for (i = 0; i < ns; i++) {
		pending[i] = p->off[i + 1] - p->off[i];
		if (!pending[i])
			heap_push(heap, &nheap, i);
	}
	while (nheap) {
		size_t s = heap_pop(heap, &nheap);
		names[done++] = m->services[s].name;
		for (k = roff[s]; k < roff[s + 1]; k++)
			if (--pending[rfrom[k]] == 0)
				heap_push(heap, &nheap, rfrom[k]);
	}
	if (done != ns) {
		tend_error_set("the service graph has a cycle");
		goto out;
	}
	*out = names;
	names = NULL;
	error = 0;
out:
	free(pending);
	free(roff);
	free(rfrom);
	free(heap);
	free(names);
	return error;
}

int tend_manifest_host_deps(const char ***out, size_t *n, const tend_manifest *m,
			    const char *host)
{
	const tend_manifest_priv *p = m->priv;
	const tend_host *h = tend_manifest_host(m, host);
	const char **names;
	size_t i, k, cnt;

	*out = NULL;
	*n = 0;
	if (!h) {
		tend_error_set("unknown host '%s'", host);
		return TEND_ENOTFOUND;
	}
	i = (size_t)(h - m->hosts);
	cnt = p->host_off[i + 1] - p->host_off[i];
	if (!(names = malloc((cnt ? cnt : 1) * sizeof(*names)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (k = 0; k < cnt; k++)
		names[k] = m->hosts[p->host_to[p->host_off[i] + k]].name;
	*out = names;
	*n = cnt;
	return 0;
}
