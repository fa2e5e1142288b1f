/* Shared by the render tests: small fleet repositories written into temporary
 * directories, loaded with the real manifest loader, rendered; and ajv. */
#ifndef TEND_TESTS_RENDER_FIXTURE_H
#define TEND_TESTS_RENDER_FIXTURE_H

#include "tests/support/support.h"
#include "manifest/manifest.h"
#include "render/render.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write fleet.yaml and services: pairs of (name, service.yaml text), NULL-terminated.
 * Every secret file a test mentions must be written by it (fx_file). */
static inline char *fx_repo(const char *label, const char *fleet, const char *const *services)
{
	char *dir = test_tmpdir_make(label), rel[256];
	size_t i;

	test_write_file(dir, "fleet.yaml", fleet);
	for (i = 0; services && services[i]; i += 2) {
		snprintf(rel, sizeof(rel), "services/%s/service.yaml", services[i]);
		test_write_file(dir, rel, services[i + 1]);
	}
	return dir;
}

static inline tend_manifest *fx_load(const char *dir)
{
	tend_manifest *m = NULL;
	tend_diags diags;
	size_t i;
	int rc;

	memset(&diags, 0, sizeof(diags));
	rc = tend_manifest_load(&m, &diags, dir);
	for (i = 0; i < diags.count; i++) {
		char *s = tend_diag_format(&diags.items[i]);
		fprintf(stderr, "%s\n", s);
		free(s);
	}
	if (rc < 0)
		fprintf(stderr, "load: %s\n", tend_error_last());
	assert_int_equal(rc, 0);
	tend_diags_dispose(&diags);
	return m;
}

static inline tend_render_result *fx_render(const tend_manifest *m, const char *commit,
					    const tend_render_options *opts)
{
	tend_render_result *r = NULL;
	int rc = tend_render_fleet_opts(&r, m, commit, opts);

	if (rc < 0)
		fprintf(stderr, "render: %s\n", tend_error_last());
	assert_int_equal(rc, 0);
	return r;
}

/* A rendered output as a NUL-terminated string (asserts it exists). */
static inline const char *fx_output(const tend_render_result *r, const char *host, const char *path)
{
	const tend_render_output *o = tend_render_result_find(r, host, path);

	if (!o)
		fprintf(stderr, "no output %s for host %s\n", path, host);
	assert_non_null(o);
	return o->data;
}

static inline json_t *fx_json(const tend_render_result *r, const char *host, const char *path)
{
	const tend_render_output *o = tend_render_result_find(r, host, path);
	json_error_t err;
	json_t *j;

	assert_non_null(o);
	j = json_loadb(o->data, o->len, 0, &err);
	if (!j)
		fprintf(stderr, "%s: %s\n", path, err.text);
	assert_non_null(j);
	return j;
}

/* The ajv binary: $TEND_AJV, else the bootstrap's build/npm install; NULL when absent. */
static inline char *fx_ajv(void)
{
	const char *env = getenv("TEND_AJV");
	char *path = NULL;

	if (env && *env && access(env, X_OK) == 0)
		return strdup(env);
	assert_true(asprintf(&path, "%s/build/npm/node_modules/.bin/ajv", TEND_SOURCE_DIR) > 0);
	if (access(path, X_OK) == 0)
		return path;
	free(path);
	return NULL;
}

/* Validate a file (.json or .yml) against the Traefik v3 file-provider schema. */
static inline int fx_ajv_validate(const char *ajv, const char *file, tend_buf *out)
{
	return test_sh(out, NULL, "%s validate --spec=draft7 -c ajv-formats --errors=text -s "
		       "%s/schemas/traefik-v3-file-provider.json -d %s", ajv, TEND_VECTORS_DIR, file);
}

#endif
