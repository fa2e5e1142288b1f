/* What a commit wants on this host: its manifest (validated), the rendered
 * files that land on the host (proxy routes), the per-host NixOS inputs
 * written into the revision's .tend/ directory, and the system built from the
 * revision's flake. The inputs are rendered without the commit stamp so a
 * host's store path changes exactly when what it is told changes. */
#include "reconcile/internal.h"
#include "reconcile/nix.h"
#include "render/render.h"
#include "util/error.h"
#include "util/fs.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void want_file_dispose(tend_want_file *f)
{
	size_t i;

	if (f->data && f->secret)
		sodium_memzero(f->data, f->len);
	free(f->data);
	free(f->path);
	free(f->service);
	for (i = 0; i < f->n_restart; i++)
		free(f->restart[i]);
	free(f->restart);
}

void tend_desired_dispose(tend_desired *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n_files; i++)
		want_file_dispose(&d->files[i]);
	free(d->files);
	free(d->order);
	free(d->system);
	free(d->flake_attr);
	free(d->rev_dir);
	tend_manifest_free(d->manifest);
	memset(d, 0, sizeof(*d));
}

size_t tend_desired_service_rank(const tend_desired *d, const char *service)
{
	size_t i;

	for (i = 0; service && i < d->n_order; i++)
		if (!strcmp(d->order[i], service))
			return i;
	return d->n_order;
}

int tend_desired_load(tend_desired *d, const tend_config *cfg, const char *rev_dir,
		      const char *commit)
{
	tend_diags diags = { 0 };
	const tend_host *host;
	const char **all = NULL;
	size_t i, n = 0;
	int error = TEND_ERROR;

	memset(d, 0, sizeof(*d));
	snprintf(d->commit, sizeof(d->commit), "%s", commit ? commit : "");
	if (!(d->rev_dir = strdup(rev_dir)))
		goto oom;
	error = tend_manifest_load(&d->manifest, &diags, rev_dir);
	if (error < 0) {
		if (diags.errors) {
			char *first = NULL;
			tend_diags_sort(&diags);
			for (i = 0; i < diags.count && !first; i++)
				if (diags.items[i].severity == TEND_DIAG_ERROR)
					first = tend_diag_format(&diags.items[i]);
			tend_error_set("commit %.12s: the manifests are invalid (%zu error%s): %s", commit,
				       diags.errors, diags.errors == 1 ? "" : "s", first ? first : "?");
			free(first);
			error = TEND_EINVALID;
		}
		goto out;
	}
	if (!(host = tend_manifest_host(d->manifest, cfg->host))) {
		tend_error_set("commit %.12s: host '%s' (the configuration's 'host') is not in fleet.yaml",
			       commit, cfg->host);
		error = TEND_ENOTFOUND;
		goto out;
	}
	if (!(d->flake_attr = strdup(host->flake_attr ? host->flake_attr : host->name)))
		goto oom;
	if ((error = tend_manifest_service_order(&all, d->manifest)) < 0)
		goto out;
	for (i = 0; all[i]; i++)
		;
	if (!(d->order = calloc(i + 1, sizeof(*d->order))))
		goto oom;
	for (i = 0; all[i]; i++) {
		const tend_service *s = tend_manifest_service(d->manifest, all[i]);
		if (s && !strcmp(s->host, cfg->host))
			d->order[n++] = all[i];
	}
	d->n_order = n;
	error = 0;
	goto out;
oom:
	tend_error_set("out of memory");
	error = TEND_ERROR;
out:
	free(all);
	tend_diags_dispose(&diags);
	return error;
}

static int add_file(tend_desired *d, const char *path, const char *data, size_t len,
		    unsigned mode, tend_state_file_kind kind, const char *service)
{
	tend_want_file *grown, *f;

	if (!(grown = realloc(d->files, (d->n_files + 1) * sizeof(*grown))))
		goto oom;
	d->files = grown;
	f = &d->files[d->n_files];
	memset(f, 0, sizeof(*f));
	f->uid = (uid_t)-1;
	f->gid = (gid_t)-1;
	f->mode = mode;
	f->kind = kind;
	f->len = len;
	if (!(f->path = strdup(path)) || !(f->data = malloc(len + 1)) ||
	    (service && !(f->service = strdup(service)))) {
		want_file_dispose(f);
		goto oom;
	}
	memcpy(f->data, data, len);
	f->data[len] = '\0';
	tend_sha256_hex(f->sha256, data, len);
	d->n_files++;
	return 0;
oom:
	tend_error_set("out of memory");
	return TEND_ERROR;
}

/* The host's NixOS inputs (every host's: a flake may read its peers') into
 * <rev>/.tend/, unstamped. */
static int write_inputs(const tend_desired *d, const tend_render_result *r)
{
	size_t i;

	for (i = 0; i < r->n_outputs; i++) {
		const tend_render_output *o = &r->outputs[i];
		char *path, *slash;
		int error;

		if (o->kind != TEND_OUTPUT_HOST_INPUTS || o->dest_absolute)
			continue;
		if (strstr(o->dest, "..") || !(path = tend_path_join(d->rev_dir, o->dest))) {
			tend_error_set("render: bad destination %s", o->dest);
			return TEND_ERROR;
		}
		slash = strrchr(path, '/');
		*slash = '\0';
		error = tend_dir_create_all(path, 0755);
		*slash = '/';
		if (!error)
			error = tend_file_write_atomic(path, o->data, o->len, 0644, (uid_t)-1, (gid_t)-1);
		free(path);
		if (error < 0)
			return error;
	}
	return 0;
}

static int collect_routes(tend_desired *d, const tend_config *cfg, const tend_render_result *r)
{
	const tend_render_output *o;
	size_t n, i;

	o = tend_render_result_host(r, cfg->host, &n);
	for (i = 0; i < n; i++) {
		char *dest;
		int error;

		if (o[i].kind != TEND_OUTPUT_ROUTES || !o[i].dest_absolute)
			continue;
		if (!(dest = tend_path_join(cfg->root, o[i].dest))) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		error = add_file(d, dest, o[i].data, o[i].len, o[i].mode ? o[i].mode : 0644,
				 TEND_FILE_ROUTE,
				 d->manifest->proxy ? d->manifest->proxy->service : NULL);
		free(dest);
		if (error < 0)
			return error;
		d->files[d->n_files - 1].equivalent_ok = 1;
	}
	return 0;
}

/* Secrets of this host's services. Decryption and installation come from the
 * secrets area; until it is wired in, a host with secrets is refused rather
 * than converged without them. */
static int collect_secrets(tend_desired *d, const tend_config *cfg)
{
	size_t i;

	for (i = 0; i < d->n_order; i++) {
		const tend_service *s = tend_manifest_service(d->manifest, d->order[i]);
		if (s && s->n_secrets) {
			tend_error_set("%s: service '%s' declares secrets, and installing secrets is "
				       "not implemented in reconcile yet", s->pos.file ? s->pos.file : "?",
				       s->name);
			return TEND_EUNSUPPORTED;
		}
	}
	(void)cfg;
	return 0;
}

int tend_desired_prepare(tend_desired *d, const tend_config *cfg, tend_buf *build_log)
{
	tend_render_options ro = TEND_RENDER_OPTIONS_INIT;
	tend_render_result *stamped = NULL, *plain = NULL;
	int error;

	ro.secrets_root = cfg->secrets_root;
	if ((error = tend_render_fleet_opts(&stamped, d->manifest, d->commit, &ro)) < 0 ||
	    (error = tend_render_fleet_opts(&plain, d->manifest, NULL, &ro)) < 0) {
		tend_error_prefix("commit %.12s: render: ", d->commit);
		goto out;
	}
	if ((error = write_inputs(d, plain)) < 0 ||
	    (error = collect_routes(d, cfg, stamped)) < 0 ||
	    (error = collect_secrets(d, cfg)) < 0)
		goto out;
	if ((error = tend_nix_build_system(&d->system, cfg, d->rev_dir, d->flake_attr, build_log)) < 0)
		tend_error_prefix("commit %.12s: ", d->commit);
out:
	tend_render_result_free(stamped);
	tend_render_result_free(plain);
	return error;
}
