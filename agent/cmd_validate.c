/* tend validate: load the fleet's manifests and report every problem, as
 * "path:line:col: error: message" lines on stderr or as JSON on stdout. A
 * fleet that loads is rendered too (in memory): what render refuses, validate
 * refuses, with the position render names. */
#include "agent/cli.h"
#include "manifest/manifest.h"
#include "render/render.h"
#include "util/error.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_json(const tend_diags *diags, const tend_manifest *m)
{
	json_t *root = json_object(), *list = json_array();
	size_t i;
	char *text;

	if (!root || !list)
		goto oom;
	for (i = 0; i < diags->count; i++) {
		const tend_diag *d = &diags->items[i];
		json_t *o = json_pack("{s:s, s:s?, s:I, s:I, s:s}",
				      "severity", d->severity == TEND_DIAG_ERROR ? "error" : "warning",
				      "file", d->pos.file, "line", (json_int_t)d->pos.line,
				      "col", (json_int_t)d->pos.col, "message", d->message);
		if (!o || json_array_append_new(list, o) < 0)
			goto oom;
	}
	json_object_set_new(root, "valid", json_boolean(m != NULL));
	if (m) {
		json_object_set_new(root, "fleet", json_string(m->fleet));
		json_object_set_new(root, "hosts", json_integer((json_int_t)m->n_hosts));
		json_object_set_new(root, "services", json_integer((json_int_t)m->n_services));
	}
	json_object_set_new(root, "errors", json_integer((json_int_t)diags->errors));
	json_object_set_new(root, "diagnostics", list);
	list = NULL;
	if (!(text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
		goto oom;
	puts(text);
	free(text);
	json_decref(root);
	return 0;
oom:
	json_decref(list);
	json_decref(root);
	tend_cli_error("out of memory");
	return -1;
}

/* A render error ("file:line:col: message", or without the position) as a
 * diagnostic at that position. */
static void add_render_diag(tend_diags *diags, const char *msg)
{
	tend_pos pos = { NULL, 0, 0 };
	const char *p;
	char *file = NULL;

	for (p = strchr(msg, ':'); p; p = strchr(p + 1, ':')) {
		unsigned line, col;
		int used = 0;

		if (sscanf(p, ":%u:%u: %n", &line, &col, &used) == 2 && used > 0) {
			if (!(file = strndup(msg, (size_t)(p - msg))))
				break;
			pos.file = file;
			pos.line = line;
			pos.col = col;
			msg = p + used;
			break;
		}
	}
	tend_diags_add(diags, TEND_DIAG_ERROR, &pos, "%s", msg);
	free(file);
}

int tend_cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *repo = ".";
	tend_manifest *m = NULL;
	tend_render_result *r = NULL;
	tend_diags diags = { NULL, 0, 0, 0 };
	int json = 0, c, rc, code = TEND_EXIT_ERROR;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "r:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'j': json = 1; break;
		case 'h': return tend_cli_usage("validate", stdout, TEND_EXIT_OK);
		default: return tend_cli_usage("validate", stderr, TEND_EXIT_ERROR);
		}
	}
	if (optind != argc) {
		tend_cli_error("validate: unexpected argument '%s'", argv[optind]);
		return tend_cli_usage("validate", stderr, TEND_EXIT_ERROR);
	}
	rc = tend_manifest_load(&m, &diags, repo);
	if (rc < 0 && rc != TEND_EINVALID) {
		tend_cli_error("%s", tend_error_last());
		goto out;
	}
	if (m && (rc = tend_render_fleet(&r, m, NULL)) < 0) {
		if (rc != TEND_EINVALID) {
			tend_cli_error("%s", tend_error_last());
			goto out;
		}
		add_render_diag(&diags, tend_error_last());
		tend_manifest_free(m);
		m = NULL;
	}
	tend_diags_sort(&diags);
	if (json) {
		if (print_json(&diags, m) < 0)
			goto out;
	} else {
		for (i = 0; i < diags.count; i++) {
			char *line = tend_diag_format(&diags.items[i]);
			if (line)
				fprintf(stderr, "%s\n", line);
			free(line);
		}
		if (m)
			printf("%s: %zu host%s, %zu service%s, valid\n", m->fleet, m->n_hosts,
			       m->n_hosts == 1 ? "" : "s", m->n_services, m->n_services == 1 ? "" : "s");
	}
	code = m ? TEND_EXIT_OK : TEND_EXIT_ERROR;
out:
	tend_render_result_free(r);
	tend_manifest_free(m);
	tend_diags_dispose(&diags);
	return code;
}
