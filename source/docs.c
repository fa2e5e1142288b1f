/* The fleet's manifests of one commit read from the repository's objects (fleet.yaml and
 * services/<name>/service.yaml), nothing written: what a host waiting for its dependencies
 * reads at every recheck, where exporting the whole tree (files written and fsynced, then
 * deleted) cost more than the check. Capped like an export; links and odd modes refused. */
#include "source/source.h"
#include "source/internal.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define DOC_MAX_BYTES (1u << 20)
#define DOC_MAX_SERVICES 10000

void tend_source_docs_free(tend_source_doc *docs, size_t n)
{
	size_t i;

	for (i = 0; docs && i < n; i++) {
		free(docs[i].name);
		free(docs[i].data);
	}
	free(docs);
}

/* The regular file at path in tree into doc->data (absent: data NULL, 0). */
static int read_blob(tend_source_doc *doc, git_repository *repo, const git_tree *tree,
		     const char *path)
{
	git_tree_entry *e = NULL;
	git_blob *blob = NULL;
	git_filemode_t mode;
	int error = TEND_ERROR;
	size_t len;

	if (git_tree_entry_bypath(&e, tree, path) < 0) {
		git_error_clear();
		return 0;
	}
	mode = git_tree_entry_filemode(e);
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
		tend_error_set("%s: not a regular file (mode %o): tend follows no link in the "
			       "repository", path, (unsigned)mode);
		error = TEND_EREFUSED;
		goto out;
	}
	if (git_blob_lookup(&blob, repo, git_tree_entry_id(e)) < 0) {
		tend_error_set("%s: %s", path, tend_source_git_msg());
		goto out;
	}
	len = (size_t)git_blob_rawsize(blob);
	if (len > DOC_MAX_BYTES) {
		tend_error_set("%s: %zu bytes, more than the %u a manifest may have", path, len,
			       DOC_MAX_BYTES);
		error = TEND_ELIMIT;
		goto out;
	}
	if (!(doc->data = malloc(len + 1))) {
		tend_error_set("out of memory");
		goto out;
	}
	memcpy(doc->data, git_blob_rawcontent(blob), len);
	doc->data[len] = '\0';
	doc->len = len;
	error = 0;
out:
	git_blob_free(blob);
	git_tree_entry_free(e);
	return error;
}

int tend_source_read_manifests(tend_source_doc *fleet, tend_source_doc **out, size_t *n,
			       const char *repo_dir, const char *commit)
{
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_tree *tree = NULL, *services = NULL;
	git_tree_entry *se = NULL;
	tend_source_doc *docs = NULL;
	size_t count = 0, i, k = 0;
	git_oid oid;
	int error = TEND_ERROR;

	memset(fleet, 0, sizeof(*fleet));
	*out = NULL;
	*n = 0;
	tend_source_git_init();
	if (git_repository_open_ext(&repo, repo_dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_oid_fromstr(&oid, commit) < 0 || git_commit_lookup(&c, repo, &oid) < 0 ||
	    git_commit_tree(&tree, c) < 0) {
		tend_error_set("%s: commit %s: %s", repo_dir, commit, tend_source_git_msg());
		error = TEND_ENOTFOUND;
		goto out;
	}
	if ((error = read_blob(fleet, repo, tree, "fleet.yaml")) < 0)
		goto out;
	error = TEND_ERROR;
	if (git_tree_entry_bypath(&se, tree, "services") == 0) {
		if (git_tree_entry_type(se) != GIT_OBJECT_TREE ||
		    git_tree_lookup(&services, repo, git_tree_entry_id(se)) < 0) {
			tend_error_set("services: not a directory");
			error = TEND_EREFUSED;
			goto out;
		}
		count = git_tree_entrycount(services);
		if (count > DOC_MAX_SERVICES) {
			tend_error_set("services/: %zu entries, more than %u", count, DOC_MAX_SERVICES);
			error = TEND_ELIMIT;
			goto out;
		}
	}
	git_error_clear();
	if (count && !(docs = calloc(count, sizeof(*docs)))) {
		tend_error_set("out of memory");
		goto out;
	}
	for (i = 0; i < count; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(services, i);
		const char *name = git_tree_entry_name(e);
		git_tree *sub = NULL;

		if (name[0] == '.' || git_tree_entry_type(e) != GIT_OBJECT_TREE)
			continue;
		if (!(docs[k].name = strdup(name)) ||
		    git_tree_lookup(&sub, repo, git_tree_entry_id(e)) < 0) {
			tend_error_set("services/%s: %s", name, tend_source_git_msg());
			k++;
			goto out;
		}
		error = read_blob(&docs[k], repo, sub, "service.yaml");
		git_tree_free(sub);
		k++;
		if (error < 0) {
			tend_error_prefix("services/%s/", name);
			goto out;
		}
		error = TEND_ERROR;
	}
	*out = docs;
	*n = k;
	docs = NULL;
	error = 0;
out:
	if (error < 0) {
		free(fleet->data);
		memset(fleet, 0, sizeof(*fleet));
	}
	tend_source_docs_free(docs, k);
	git_tree_entry_free(se);
	git_tree_free(services);
	git_tree_free(tree);
	git_commit_free(c);
	git_repository_free(repo);
	return error;
}
