/* What a commit wants on this host: its manifest (validated), the rendered
 * files that land on the host (proxy routes), the per-host NixOS inputs
 * written into the revision's .tend/ directory, and the system built from the
 * revision's flake. The inputs are rendered without the commit stamp but with
 * the commit as "revision" (for system.configurationRevision): a flake that
 * leaves "revision" out of the system keeps a host's store path changing
 * exactly when what it is told changes. */
#include "reconcile/internal.h"
#include "reconcile/nix.h"
#include "render/render.h"
#include "secrets/age.h"
#include "secrets/identity.h"
#include "secrets/sops.h"
#include "util/error.h"
#include "util/beneath.h"
#include "util/fs.h"
#include "util/rewrite.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void want_file_dispose(tend_want_file *f)
{
	size_t i;

	if (f->data && f->secret)
		sodium_memzero(f->data, f->len);
	free(f->data);
	free(f->path);
	free(f->service);
	free(f->owner);
	free(f->group);
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

/* The NixOS inputs of every host (a host's flake may read its peers':
 * docs/render.md promises .tend/hosts/<host>.json for every host) into
 * <rev>/.tend/, unstamped; beneath the revision without following a link (a
 * committed .tend link to elsewhere is refused, not written through). */
static int write_inputs(const tend_desired *d, const tend_render_result *r)
{
	int rev_fd = -1, dfd = -1, error = 0;
	char *made = NULL;   /* the last directory opened: all inputs share one */
	size_t i;

	if ((rev_fd = open(d->rev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		tend_error_set_errno("%s", d->rev_dir);
		return TEND_ERROR;
	}
	for (i = 0; i < r->n_outputs && !error; i++) {
		const tend_render_output *o = &r->outputs[i];
		const char *slash, *name;
		char *path;

		if (o->kind != TEND_OUTPUT_HOST_INPUTS || o->dest_absolute)
			continue;
		if (!(slash = strrchr(o->dest, '/')) || tend_path_rel_check(o->dest) < 0) {
			tend_error_set("render: bad destination %s", o->dest);
			error = TEND_ERROR;
			break;
		}
		if (!made || strncmp(made, o->dest, (size_t)(slash - o->dest)) ||
		    made[slash - o->dest]) {
			free(made);
			if (dfd >= 0)
				close(dfd);
			dfd = -1;
			if (!(made = strndup(o->dest, (size_t)(slash - o->dest)))) {
				tend_error_set("out of memory");
				error = TEND_ERROR;
				break;
			}
			if ((error = tend_beneath_parent(&dfd, &name, rev_fd, d->rev_dir, o->dest, 0755)) < 0)
				break;
		}
		if (!(path = tend_path_join(d->rev_dir, o->dest))) {
			error = TEND_ERROR;
			break;
		}
		/* no fsync: the exported revision is a re-creatable build
		 * input, not state (made again from the commit), and every plan
		 * or reconcile compares each input here before the Nix step
		 * reads it (util/rewrite.h) */
		error = tend_file_rewrite_at(dfd, slash + 1, path, o->data, o->len, 0644);
		free(path);
	}
	if (dfd >= 0)
		close(dfd);
	close(rev_fd);
	free(made);
	return error;
}

static int collect_routes(tend_desired *d, const tend_config *cfg, const tend_render_result *r)
{
	const tend_render_output *o;
	size_t n, i;

	o = tend_render_result_host(r, cfg->host, &n);
	for (i = 0; i < n; i++) {
		const char *root, *rel;
		char *dest;
		int error;

		if (o[i].kind != TEND_OUTPUT_ROUTES || !o[i].dest_absolute)
			continue;
		if (!(dest = tend_path_join(cfg->root, o[i].dest))) {
			tend_error_set("out of memory");
			return TEND_ERROR;
		}
		/* validate refuses such a routes_file already; this is the
		 * last line before a write outside the root */
		if (tend_reconcile_file_where(&root, &rel, cfg, dest, 0) < 0) {
			free(dest);
			tend_error_prefix("proxy.routes_file %s: ", o[i].dest);
			return TEND_EREFUSED;
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

/* Decrypt one declared secret from the revision (age or sops, one value with
 * `key`). out gets the plaintext (wiped by the caller). */
static int decrypt_secret(tend_buf *out, const tend_desired *d, const tend_service *s,
			  const tend_secret_decl *decl, const tend_age_identities *ids)
{
	tend_buf raw = TEND_BUF_INIT;
	tend_sops_doc *doc = NULL;
	const tend_sops_node *node;
	tend_sops_format fmt;
	const char *rel = decl->file;
	int error = TEND_ERROR;

	while (*rel == '/')   /* relative to the repository, as validate took it */
		rel++;
	/* beneath the revision, no link followed: a committed link (to a
	 * directory on the way, or the file itself) could name any file of the
	 * host, which would be decrypted and installed */
	if ((error = tend_beneath_read(&raw, d->rev_dir, rel, 16u << 20)) < 0)
		goto out;
	if ((fmt = tend_sops_detect(raw.ptr, raw.size, decl->file)) != TEND_SOPS_AUTO) {
		if ((error = tend_sops_decrypt(&doc, raw.ptr, raw.size, decl->file, fmt, ids, NULL)) < 0)
			goto out;
		if (decl->key) {
			if ((error = tend_sops_extract(&node, doc, decl->key)) < 0 ||
			    (error = tend_sops_emit_node(out, doc, node)) < 0)
				goto out;
		} else if ((error = tend_sops_emit(out, doc)) < 0) {
			goto out;
		}
	} else if (tend_age_detect(raw.ptr, raw.size)) {
		if (decl->key) {
			tend_error_set("%s: secret '%s': 'key' needs a sops file, %s is an age file",
				       s->pos.file, decl->name, decl->file);
			error = TEND_EINVALID;
			goto out;
		}
		if ((error = tend_age_decrypt(out, raw.ptr, raw.size, decl->file, ids, NULL)) < 0)
			goto out;
	} else {
		tend_error_set("%s: neither an age nor a sops file", decl->file);
		error = TEND_EINVALID;
		goto out;
	}
	error = 0;
out:
	if (error < 0) {
		tend_buf_dispose_secure(out);
		tend_error_prefix("service %s, secret %s: ", s->name, decl->name);
	}
	tend_sops_doc_free(doc);
	tend_buf_dispose(&raw);
	return error;
}

/* The last owner and group looked up: most secrets of a host have the same
 * owner, and each getpwnam reads the user database again. Within one
 * preparation only. */
typedef struct {
	const char *owner, *group;   /* names in the manifest; NULL: none yet */
	uid_t uid;
	gid_t gid, group_gid;
} owner_memo;

static int resolve_owner(uid_t *uid, gid_t *gid, owner_memo *memo, const tend_service *s,
			 const tend_secret_decl *decl)
{
	const char *owner = decl->owner ? decl->owner : "root";
	struct passwd *pw;
	struct group *gr;

	if (!memo->owner || strcmp(memo->owner, owner)) {
		if (!(pw = getpwnam(owner))) {
			tend_error_set("service %s, secret %s: no user '%s' on this host", s->name,
				       decl->name, owner);
			return TEND_ENOTFOUND;
		}
		memo->owner = owner;
		memo->uid = pw->pw_uid;
		memo->gid = pw->pw_gid;
	}
	*uid = memo->uid;
	*gid = memo->gid;
	if (decl->group) {
		if (!memo->group || strcmp(memo->group, decl->group)) {
			if (!(gr = getgrnam(decl->group))) {
				tend_error_set("service %s, secret %s: no group '%s' on this host", s->name,
					       decl->name, decl->group);
				return TEND_ENOTFOUND;
			}
			memo->group = decl->group;
			memo->group_gid = gr->gr_gid;
		}
		*gid = memo->group_gid;
	}
	return 0;
}

/* Secrets of this host's services, decrypted with the configured identities,
 * destined for <secrets_root>/<service>/<name>. */
static int collect_secrets(tend_desired *d, const tend_config *cfg)
{
	tend_age_identities *ids = NULL;
	owner_memo memo = { NULL, NULL, 0, 0, 0 };
	size_t i, k, r;
	int error = 0;

	for (i = 0; i < d->n_order && !error; i++) {
		const tend_service *s = tend_manifest_service(d->manifest, d->order[i]);

		for (k = 0; s && k < s->n_secrets && !error; k++) {
			const tend_secret_decl *decl = &s->secrets[k];
			tend_buf plain = TEND_BUF_INIT;
			tend_want_file *f;
			char *dest = NULL;
			uid_t uid = (uid_t)-1;
			gid_t gid = (gid_t)-1;
			int pending = 0;

			if (!ids) {
				if ((error = tend_age_identities_new(&ids)) < 0)
					break;
				for (r = 0; r < cfg->n_age_identities && !error; r++)
					error = tend_age_identities_add_file(ids, cfg->age_identities[r]);
				if (error)
					break;
			}
			/* An owner the same commit creates (a NixOS module's user) exists only
			 * after the switch: the secret is installed then, as sops-nix installs
			 * secrets after users and groups. */
			if ((error = resolve_owner(&uid, &gid, &memo, s, decl)) == TEND_ENOTFOUND) {
				tend_error_clear();
				pending = 1;
				uid = (uid_t)-1;
				gid = (gid_t)-1;
				error = 0;
			}
			if (error < 0 || (error = decrypt_secret(&plain, d, s, decl, ids)) < 0)
				break;
			if (asprintf(&dest, "%s/%s/%s", cfg->secrets_root, s->name, decl->name) < 0) {
				dest = NULL;
				error = TEND_ERROR;
			}
			if (!error)
				error = add_file(d, dest, plain.ptr ? plain.ptr : "", plain.size,
						 decl->mode ? decl->mode : 0400, TEND_FILE_SECRET, s->name);
			tend_buf_dispose_secure(&plain);
			free(dest);
			if (error)
				break;
			f = &d->files[d->n_files - 1];
			f->secret = 1;
			f->uid = uid;
			f->gid = gid;
			if (pending) {
				f->owner_pending = 1;
				if (!(f->owner = strdup(decl->owner ? decl->owner : "root")) ||
				    (decl->group && !(f->group = strdup(decl->group)))) {
					error = TEND_ERROR;
					break;
				}
			}
			if (decl->n_restart && !(f->restart = calloc(decl->n_restart, sizeof(char *)))) {
				error = TEND_ERROR;
				break;
			}
			for (r = 0; r < decl->n_restart; r++)
				if ((f->restart[f->n_restart] = strdup(decl->restart[r])))
					f->n_restart++;
		}
	}
	tend_age_identities_free(ids);
	return error;
}

/* ---- builds already made ---------------------------------------------------
 * <state_dir>/builds/<commit>.<flake attr>.<key>: the store path a build of that commit gave. The
 * system is a function of the commit's tree and the attribute, so the agent's converge pass, a
 * recheck while dependencies are not ready and `tend plan` take it instead of evaluating the
 * flake again (tens of seconds and a gigabyte on a real NixOS host). Trusted only while the
 * store path is there (a garbage collection may take it); the newest BUILDS_KEPT are kept. */

#define BUILDS_KEPT 16

/* <state_dir>/builds/<commit>.<attr>.<what else the render depends on>: the secrets root
 * (rendered into the inputs) and tend's version (its render). */
static char *build_record_path(const tend_config *cfg, const char *commit, const char *attr)
{
	char *p = NULL, *what = NULL, sha[65];

	if (!attr[0] || attr[0] == '.' || strchr(attr, '/'))   /* a file name, nothing else */
		return NULL;
	if (asprintf(&what, "%s\n%s", TEND_VERSION, cfg->secrets_root) < 0)
		return NULL;
	tend_sha256_hex(sha, what, strlen(what));
	free(what);
	if (asprintf(&p, "%s/builds/%s.%s.%.16s", cfg->state_dir, commit, attr, sha) < 0)
		return NULL;
	return p;
}

static int build_cached(char **out, const tend_config *cfg, const char *commit, const char *attr)
{
	tend_buf b = TEND_BUF_INIT;
	char *path = build_record_path(cfg, commit, attr);
	struct stat st;
	int hit = 0;

	if (path && tend_file_read(&b, path, 4096) == 0 && b.size > 11 && b.ptr &&
	    !strncmp(b.ptr, "/nix/store/", 11) && !memchr(b.ptr, '\n', b.size) &&
	    lstat(b.ptr, &st) == 0 && (*out = strdup(b.ptr)))
		hit = 1;
	tend_error_clear();
	tend_buf_dispose(&b);
	free(path);
	return hit;
}

struct build_entry {
	time_t t;
	char name[256];
};

static int newest_first(const void *a, const void *b)
{
	const struct build_entry *x = a, *y = b;

	return x->t < y->t ? 1 : x->t > y->t ? -1 : strcmp(x->name, y->name);
}

static void build_remember(const tend_config *cfg, const char *commit, const char *attr,
			   const char *system)
{
	struct build_entry *list = NULL;
	char *path = build_record_path(cfg, commit, attr), *dir = NULL, *old;
	size_t n = 0, cap = 0, i;
	struct dirent *e;
	struct stat st;
	DIR *dd;

	if (!path || strncmp(system, "/nix/store/", 11) || !(dir = tend_path_join(cfg->state_dir, "builds")) ||
	    tend_dir_create_all(dir, 0700) < 0 ||
	    tend_file_write_atomic(path, system, strlen(system), 0600, (uid_t)-1, (gid_t)-1) < 0 ||
	    !(dd = opendir(dir)))
		goto out;
	while ((e = readdir(dd)) != NULL) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(list->name) ||
		    fstatat(dirfd(dd), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (n == cap) {
			struct build_entry *bigger = realloc(list, (cap = cap ? cap * 2 : 32) * sizeof(*list));
			if (!bigger)
				break;
			list = bigger;
		}
		list[n].t = st.st_mtime;
		snprintf(list[n].name, sizeof(list[n].name), "%s", e->d_name);
		n++;
	}
	closedir(dd);
	if (n > BUILDS_KEPT) {
		qsort(list, n, sizeof(*list), newest_first);
		for (i = BUILDS_KEPT; i < n; i++)
			if ((old = tend_path_join(dir, list[i].name))) {
				unlink(old);
				free(old);
			}
	}
out:
	tend_error_clear();   /* a cache: a failure only costs an evaluation */
	free(list);
	free(dir);
	free(path);
}

int tend_desired_prepare(tend_desired *d, const tend_config *cfg, const char *known_system,
			 tend_buf *build_log)
{
	tend_render_options ro = TEND_RENDER_OPTIONS_INIT;
	tend_render_result *r = NULL;
	int error;

	ro.secrets_root = cfg->secrets_root;
	/* the routes file when this host runs the proxy, stamped; every host's
	 * inputs, unstamped, with the commit as "revision"; in one pass (routes
	 * and index collected once) */
	if ((error = tend_render_agent_opts(&r, d->manifest, cfg->host, d->commit, NULL, &ro)) < 0) {
		tend_error_prefix("commit %.12s: render: ", d->commit);
		goto out;
	}
	if ((error = write_inputs(d, r)) < 0 ||
	    (error = collect_routes(d, cfg, r)) < 0 ||
	    (error = collect_secrets(d, cfg)) < 0)
		goto out;
	if (known_system) {
		if (!(d->system = strdup(known_system))) {
			tend_error_set("out of memory");
			error = TEND_ERROR;
		}
		goto out;
	}
	/* built already (the agent's plan pass, tend plan): one evaluation per change */
	if (build_cached(&d->system, cfg, d->commit, d->flake_attr))
		goto out;
	if ((error = tend_nix_build_system(&d->system, cfg, d->rev_dir, d->flake_attr, build_log)) < 0)
		tend_error_prefix("commit %.12s: ", d->commit);
	else
		build_remember(cfg, d->commit, d->flake_attr, d->system);
out:
	tend_render_result_free(r);
	return error;
}
