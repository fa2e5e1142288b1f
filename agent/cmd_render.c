/* tend render and tend diff: render one revision (the files in a directory or
 * an exported commit) for one host, or compare two commits' renders host by
 * host with unified diffs and a summary line per host. */
#include "agent/cli.h"
#include "manifest/manifest.h"
#include "render/render.h"
#include "source/source.h"
#include "util/error.h"
#include "util/fs.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_diags(const tend_diags *d, const char *context)
{
	size_t i;

	for (i = 0; i < d->count; i++) {
		char *s = tend_diag_format(&d->items[i]);

		if (context)
			fprintf(stderr, "%s: ", context);
		fprintf(stderr, "%s\n", s ? s : d->items[i].message);
		free(s);
	}
}

/* Load the fleet in dir; on invalid manifests print every diagnostic. */
static int load_fleet(tend_manifest **out, const char *dir, const char *context)
{
	tend_diags diags;
	int error;

	memset(&diags, 0, sizeof(diags));
	error = tend_manifest_load(out, &diags, dir);
	if (error == TEND_EINVALID) {
		print_diags(&diags, context);
		if (context)
			tend_cli_error("%s: the manifests are invalid (%zu error%s)", context, diags.errors,
				       diags.errors == 1 ? "" : "s");
		else
			tend_cli_error("the manifests are invalid (%zu error%s)", diags.errors,
				       diags.errors == 1 ? "" : "s");
	} else if (error < 0) {
		tend_cli_error("%s%s%s", context ? context : "", context ? ": " : "", tend_error_last());
	} else {
		print_diags(&diags, context);   /* warnings */
	}
	tend_diags_dispose(&diags);
	return error;
}

static char *make_tmpdir(const char *label)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = NULL;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&tmpl, "%s/tend-%s-XXXXXX", base, label) < 0)
		return NULL;
	if (!mkdtemp(tmpl)) {
		tend_error_set_errno("cannot create a temporary directory in %s", base);
		free(tmpl);
		return NULL;
	}
	return tmpl;
}

/* Resolve rev in repo and export its tree to tmp/<name>; hex gets the full hash. */
static int export_rev(char **out_dir, char hex[41], const char *repo, const char *rev,
		      const char *tmp, const char *name)
{
	char *dir = tend_path_join(tmp, name);
	int error;

	*out_dir = NULL;
	if (!dir) {
		tend_cli_error("out of memory");
		return TEND_ERROR;
	}
	if ((error = tend_source_resolve(hex, repo, rev)) < 0 ||
	    (error = tend_source_export_commit(repo, hex, dir)) < 0) {
		tend_cli_error("%s", tend_error_last());
		free(dir);
		return error;
	}
	*out_dir = dir;
	return 0;
}

static int host_known(const tend_manifest *m, const char *host)
{
	size_t i;

	for (i = 0; i < m->n_hosts; i++)
		if (!strcmp(m->hosts[i].name, host))
			return 1;
	return 0;
}

static void unknown_host(const tend_manifest *m, const char *host)
{
	size_t i;

	fprintf(stderr, "tend: error: no host named '%s' in fleet.yaml (hosts:", host);
	for (i = 0; i < m->n_hosts; i++)
		fprintf(stderr, " %s", m->hosts[i].name);
	fputs(")\n", stderr);
}

int tend_cmd_render(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repo", required_argument, NULL, 'r' }, { "host", required_argument, NULL, 'H' },
		{ "out", required_argument, NULL, 'o' }, { "commit", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	const char *repo = NULL, *host = NULL, *outdir = NULL, *commit = NULL;
	char *tmp = NULL, *dir = NULL, hex[41];
	tend_manifest *m = NULL;
	tend_render_result *r = NULL;
	const tend_render_output *o;
	size_t n, i;
	int c, code = TEND_EXIT_ERROR;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'H': host = optarg; break;
		case 'o': outdir = optarg; break;
		case 'c': commit = optarg; break;
		case 'h': return tend_cli_usage("render", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("render", stderr, TEND_EXIT_ERROR);
		}
	}
	if (optind != argc || !repo || !host || !outdir) {
		tend_cli_error("render needs --repo, --host and --out");
		return tend_cli_usage("render", stderr, TEND_EXIT_ERROR);
	}
	if (commit) {
		if (!(tmp = make_tmpdir("render"))) {
			tend_cli_error("%s", tend_error_last());
			goto out;
		}
		if (export_rev(&dir, hex, repo, commit, tmp, "rev") < 0)
			goto out;
	}
	if (load_fleet(&m, dir ? dir : repo, commit ? commit : NULL) < 0)
		goto out;
	if (!host_known(m, host)) {
		unknown_host(m, host);
		goto out;
	}
	if (tend_render_fleet(&r, m, commit ? hex : NULL) < 0 ||
	    tend_render_result_write_host(r, host, outdir) < 0) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	o = tend_render_result_host(r, host, &n);
	for (i = 0; i < n; i++)
		printf("%s/%s\t%s%s\n", outdir, o[i].path, o[i].dest_absolute ? "" : "<revision>/", o[i].dest);
	code = TEND_EXIT_OK;
out:
	tend_render_result_free(r);
	tend_manifest_free(m);
	if (tmp)
		tend_dir_remove_all(tmp);
	free(tmp);
	free(dir);
	return code;
}

static json_t *counts_json(const tend_render_counts *c)
{
	return json_pack("{s:i, s:i, s:i}", "added", (int)c->added, "changed", (int)c->changed,
			 "removed", (int)c->removed);
}

static int print_json(const tend_render_diff *d, const char *from, const char *to)
{
	json_t *doc = json_pack("{s:s, s:s, s:b, s:[]}", "from", from, "to", to, "changed", d->differs, "hosts");
	json_t *hosts = json_object_get(doc, "hosts");
	char *s;
	size_t i, k;

	for (i = 0; doc && i < d->n_hosts; i++) {
		const tend_render_host_diff *h = &d->hosts[i];
		char *summary = tend_render_host_diff_summary(h);
		json_t *paths = json_array();

		for (k = 0; paths && k < h->n_paths; k++)
			json_array_append_new(paths, json_string(h->paths[k]));
		json_array_append_new(hosts, json_pack("{s:s, s:b, s:s?, s:o, s:s, s:{s:o, s:o, s:o, s:o, s:o}}",
			"host", h->host, "changed", h->differs, "summary", summary, "outputs", paths,
			"diff", h->diff ? h->diff : "", "counts",
			"services", counts_json(&h->services), "databases", counts_json(&h->databases),
			"oidc_clients", counts_json(&h->oidc_clients), "routes", counts_json(&h->routes),
			"other", counts_json(&h->other)));
		free(summary);
	}
	if (!doc || !(s = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2)))) {
		json_decref(doc);
		tend_cli_error("out of memory");
		return -1;
	}
	puts(s);
	free(s);
	json_decref(doc);
	return 0;
}

int tend_cmd_diff(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repo", required_argument, NULL, 'r' }, { "host", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *repo = NULL, *host = NULL, *from, *to;
	char *tmp = NULL, *dir_a = NULL, *dir_b = NULL, hex_a[41], hex_b[41], ctx_a[64], ctx_b[64];
	tend_manifest *ma = NULL, *mb = NULL;
	tend_render_result *ra = NULL, *rb = NULL;
	tend_render_diff *d = NULL;
	int c, json = 0, code = TEND_EXIT_ERROR;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'H': host = optarg; break;
		case 'j': json = 1; break;
		case 'h': return tend_cli_usage("diff", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("diff", stderr, TEND_EXIT_ERROR);
		}
	}
	if (!repo || argc - optind != 2) {
		tend_cli_error("diff needs --repo and two commits, FROM and TO");
		return tend_cli_usage("diff", stderr, TEND_EXIT_ERROR);
	}
	from = argv[optind];
	to = argv[optind + 1];
	if (!(tmp = make_tmpdir("diff"))) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	if (export_rev(&dir_a, hex_a, repo, from, tmp, "from") < 0 ||
	    export_rev(&dir_b, hex_b, repo, to, tmp, "to") < 0)
		goto out;
	snprintf(ctx_a, sizeof(ctx_a), "%s (%.12s)", from, hex_a);
	snprintf(ctx_b, sizeof(ctx_b), "%s (%.12s)", to, hex_b);
	if (load_fleet(&ma, dir_a, ctx_a) < 0 || load_fleet(&mb, dir_b, ctx_b) < 0)
		goto out;
	if (host && !host_known(ma, host) && !host_known(mb, host)) {
		unknown_host(mb, host);
		goto out;
	}
	/* Both sides without the commit stamp: the diff shows what the commits change. */
	if (tend_render_fleet(&ra, ma, NULL) < 0) {
		tend_cli_error("%s: %s", ctx_a, tend_error_last());
		goto out;
	}
	if (tend_render_fleet(&rb, mb, NULL) < 0) {
		tend_cli_error("%s: %s", ctx_b, tend_error_last());
		goto out;
	}
	if (tend_render_diff_compute(&d, ra, rb, host) < 0) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	if (json) {
		if (print_json(d, hex_a, hex_b) < 0)
			goto out;
	} else {
		for (i = 0; i < d->n_hosts; i++)
			fwrite(d->hosts[i].diff, 1, d->hosts[i].diff_len, stdout);
		if (d->differs)
			putchar('\n');
		printf("Summary %.12s..%.12s:\n", hex_a, hex_b);
		for (i = 0; i < d->n_hosts; i++) {
			char *s = tend_render_host_diff_summary(&d->hosts[i]);

			printf("%s\n", s ? s : d->hosts[i].host);
			free(s);
		}
	}
	code = d->differs ? TEND_EXIT_CHANGES : TEND_EXIT_OK;
out:
	fflush(stdout);
	tend_render_diff_free(d);
	tend_render_result_free(ra);
	tend_render_result_free(rb);
	tend_manifest_free(ma);
	tend_manifest_free(mb);
	if (tmp)
		tend_dir_remove_all(tmp);
	free(tmp);
	free(dir_a);
	free(dir_b);
	return code;
}
