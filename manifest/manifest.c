/* Loading a fleet: read fleet.yaml and services/ *\/service.yaml (from a
 * directory or from memory), parse each into the model, sort, validate the
 * cross-references and (from a directory) flake.lock against flake.nix, and
 * hand out the model only when it has no errors. */
#include "manifest/internal.h"
#include "manifest/flake.h"
#include "util/error.h"
#include "util/beneath.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	tend_service svc;
	tend_svc_aux aux;
} svc_slot;

static int slot_cmp(const void *a, const void *b)
{
	return strcmp(((const svc_slot *)a)->svc.name, ((const svc_slot *)b)->svc.name);
}

typedef struct {
	tend_host host;
	tend_host_aux aux;
} host_slot;

static int host_slot_cmp(const void *a, const void *b)
{
	return strcmp(((const host_slot *)a)->host.name, ((const host_slot *)b)->host.name);
}

/* Parse one document into the context's file, turning YAML errors and caps
 * into diagnostics. Returns the document (caller frees) or NULL. */
static tend_yaml_doc *parse_doc(tend_mctx *c, const char *data, size_t len)
{
	tend_yaml_doc *doc = NULL;
	tend_yaml_error err;
	int rc = tend_yaml_parse(&doc, c->file, data, len, NULL, &err);

	if (rc < 0) {
		tend_pos p = { c->file, err.line, err.col };
		tend_diags_add(c->diags, TEND_DIAG_ERROR, &p, "%s",
			       err.message[0] ? err.message : "cannot parse YAML");
		return NULL;
	}
	return doc;
}

void tend_manifest_free(tend_manifest *m)
{
	tend_manifest_priv *priv;

	if (!m)
		return;
	priv = m->priv;
	if (priv) {
		free(priv->off);
		free(priv->edges);
		free(priv->svc_host);
		free(priv->host_off);
		free(priv->host_to);
		tend_arena_free(priv->arena);
		free(priv);
	}
	free(m);
}

/* fleet_reported: fleet.yaml could not be read and a diagnostic says why */
static int load_impl(tend_manifest **out, tend_diags *diags,
		     size_t errors_before, const char *fleet_yaml, size_t fleet_len, int fleet_reported,
		     const tend_manifest_source *services, size_t n_services,
		     tend_manifest_exists_fn exists, void *payload)
{
	tend_manifest *m = NULL;
	tend_manifest_priv *priv;
	tend_fleet_aux fa;
	tend_host_aux *haux = NULL, *haux_sorted = NULL;
	svc_slot *slots = NULL;
	tend_svc_aux *saux = NULL;
	host_slot *hslots = NULL;
	tend_mctx c;
	size_t i, unreadable = 0;
	int error = TEND_ERROR;

	*out = NULL;
	memset(&fa, 0, sizeof(fa));
	fa.partial = 1;     /* until fleet.yaml parses as a mapping with hosts */
	memset(&c, 0, sizeof(c));
	if (!(m = calloc(1, sizeof(*m))) || !(priv = calloc(1, sizeof(*priv)))) {
		tend_error_set("out of memory");
		goto out;
	}
	m->priv = priv;
	if (!(priv->arena = tend_arena_new()))
		goto out;
	c.arena = priv->arena;
	c.diags = diags;

	c.file = "fleet.yaml";
	m->agent_port = 8470;
	if (!fleet_yaml && !fleet_reported) {
		tend_pos p = { "fleet.yaml", 0, 0 };
		tend_diags_add(diags, TEND_DIAG_ERROR, &p,
			       "no fleet.yaml at the repository root (is this a fleet repository?)");
	} else if (fleet_yaml) {
		tend_yaml_doc *doc = parse_doc(&c, fleet_yaml, fleet_len);
		if (doc) {
			error = tend_manifest__parse_fleet(m, &fa, &haux, &c, tend_yaml_doc_root(doc));
			tend_yaml_doc_free(doc);
			if (error < 0)
				goto out;
			error = TEND_ERROR;
		}
	}
	/* hosts sorted by name, their positions following them */
	if (m->n_hosts) {
		if (!(hslots = malloc(m->n_hosts * sizeof(*hslots))) ||
		    !(haux_sorted = tend_arena_alloc(priv->arena, m->n_hosts * sizeof(*haux_sorted)))) {
			tend_error_set("out of memory");
			goto out;
		}
		for (i = 0; i < m->n_hosts; i++) {
			hslots[i].host = m->hosts[i];
			hslots[i].aux = haux[i];
		}
		qsort(hslots, m->n_hosts, sizeof(*hslots), host_slot_cmp);
		for (i = 0; i < m->n_hosts; i++) {
			m->hosts[i] = hslots[i].host;
			haux_sorted[i] = hslots[i].aux;
		}
	}

	if (n_services && !(slots = calloc(n_services, sizeof(*slots)))) {
		tend_error_set("out of memory");
		goto out;
	}
	for (i = 0; i < n_services; i++) {
		const tend_manifest_source *src = &services[i];
		tend_yaml_doc *doc = NULL;

		if (!(c.file = tend_mctx_concat(priv->arena, "services/", src->name, "/service.yaml", NULL)))
			goto out;
		c.plen = 0;
		c.path[0] = '\0';
		if (src->data && (doc = parse_doc(&c, src->data, src->len))) {
			error = tend_manifest__parse_service(&slots[i].svc, &slots[i].aux, &c,
							     tend_yaml_doc_root(doc), src->name);
			tend_yaml_doc_free(doc);
		} else {
			/* a placeholder, so that references to it do not cascade; the
			 * reason (unreadable, YAML error) is already reported */
			tend_diags scratch = { NULL, 0, 0, 0 };
			unreadable += src->data == NULL;
			c.diags = &scratch;
			error = tend_manifest__parse_service(&slots[i].svc, &slots[i].aux, &c, NULL,
							     src->name);
			c.diags = diags;
			tend_diags_dispose(&scratch);
		}
		if (error < 0)
			goto out;
		error = TEND_ERROR;
	}
	if (n_services > 1)
		qsort(slots, n_services, sizeof(*slots), slot_cmp);
	if (n_services) {
		m->services = tend_arena_alloc(priv->arena, n_services * sizeof(*m->services));
		saux = tend_arena_alloc(priv->arena, n_services * sizeof(*saux));
		if (!m->services || !saux)
			goto out;
	}
	for (i = 0; i < n_services; i++) {
		if (i > 0 && !strcmp(slots[i].svc.name, slots[i - 1].svc.name)) {
			tend_diags_add(diags, TEND_DIAG_ERROR, &slots[i].svc.pos,
				       "service '%s' is defined twice", slots[i].svc.name);
			continue;
		}
		m->services[m->n_services] = slots[i].svc;
		saux[m->n_services++] = slots[i].aux;
	}

	if ((error = tend_manifest__validate(m, &fa, haux_sorted, saux, diags, exists, payload)) < 0)
		goto out;
	tend_diags_sort(diags);
	/* an unreadable document makes the fleet invalid even when the caller's
	 * diagnostic about it was added before errors_before was taken */
	if (diags->errors > errors_before || unreadable || (!fleet_yaml && fleet_reported)) {
		size_t n = diags->errors - errors_before;
		error = TEND_EINVALID;
		if (n)
			tend_error_set("the fleet has %zu error%s", n, n == 1 ? "" : "s");
		else
			tend_error_set("the fleet has documents that could not be read");
		goto out;
	}
	*out = m;
	m = NULL;
	error = 0;
out:
	free(slots);
	free(hslots);
	tend_manifest_free(m);
	return error;
}

int tend_manifest_load_sources(tend_manifest **out, tend_diags *diags,
			       const char *fleet_yaml, size_t fleet_len,
			       const tend_manifest_source *services, size_t n_services,
			       tend_manifest_exists_fn exists, void *payload)
{
	return load_impl(out, diags, diags->errors, fleet_yaml, fleet_len, 0, services, n_services, exists, payload);
}

/* ---- from a directory ---------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const tend_manifest_source *)a)->name, ((const tend_manifest_source *)b)->name);
}

/* Paths are resolved beneath a descriptor of the repository, following no
 * symbolic link at any component (util/beneath.h): a committed link to a
 * directory or file outside the repository must not make a secret or a
 * manifest "exist" (docs/security.md, symbolic links). */
typedef struct {
	int repo_fd;
} repo_paths;

static int file_exists(const char *rel, void *payload)
{
	repo_paths *rp = payload;

	while (*rel == '/')   /* relative to the repository, as tend_path_join made it */
		rel++;
	return tend_beneath_is_file(rp->repo_fd, rel);
}

/* Read a document (name relative to dir_fd, reached without following a
 * link) under the YAML size cap; on
 * failure add a diagnostic and return 1 (so the caller keeps a placeholder),
 * or a negative code. path names it in errors. */
static int read_doc(tend_buf *buf, tend_diags *diags, int dir_fd, const char *name,
		    const char *path, const char *rel)
{
	size_t max = tend_yaml_default_limits.max_bytes;
	struct stat st;
	tend_pos p = { rel, 0, 0 };
	int fd, rc = 1;

	/* O_NONBLOCK: a FIFO in its place must not block the open; fstat rejects it */
	if ((rc = tend_beneath_open(&fd, dir_fd, ".", name, O_RDONLY | O_NONBLOCK, 0)) < 0) {
		if (rc == TEND_ENOTFOUND) {
			tend_error_clear();
			tend_diags_add(diags, TEND_DIAG_ERROR, &p, "file not found");
			return 1;
		}
		if (rc == TEND_EREFUSED) {   /* never read: its target could be any host file */
			tend_error_clear();
			tend_diags_add(diags, TEND_DIAG_ERROR, &p, "a symbolic link (or one on its path): "
				       "tend follows no link in the repository");
			return 1;
		}
		if (errno == ENXIO) {   /* a socket */
			tend_error_clear();
			tend_diags_add(diags, TEND_DIAG_ERROR, &p, "not a regular file");
			return 1;
		}
		tend_error_set_errno("cannot read %s", path);
		return TEND_ERROR;
	}
	rc = 1;
	if (fstat(fd, &st) < 0) {
		tend_error_set_errno("cannot read %s", path);
		rc = TEND_ERROR;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		tend_diags_add(diags, TEND_DIAG_ERROR, &p, "not a regular file");
		goto out;
	}
	if ((size_t)st.st_size > max) {
		tend_diags_add(diags, TEND_DIAG_ERROR, &p,
			       "file is %lld bytes, larger than the limit of %zu",
			       (long long)st.st_size, max);
		goto out;
	}
	/* a byte more than the size: a short read then shows the end (below) */
	if (tend_buf_grow(buf, (size_t)st.st_size + 1) < 0) {
		rc = TEND_ERROR;
		goto out;
	}
	for (;;) {   /* to the end: the file may have grown since fstat */
		size_t room;
		ssize_t n;

		if (buf->size > max) {
			tend_diags_add(diags, TEND_DIAG_ERROR, &p, "%s: file is larger than the limit "
				       "of %zu bytes", path, max);
			goto out;
		}
		if (buf->size + 1 >= buf->asize && tend_buf_grow(buf, buf->size + 4096) < 0) {
			rc = TEND_ERROR;
			goto out;
		}
		room = buf->asize - buf->size - 1;
		if (room > max + 1 - buf->size)
			room = max + 1 - buf->size;
		n = read(fd, buf->ptr + buf->size, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tend_diags_add(diags, TEND_DIAG_ERROR, &p, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		buf->size += (size_t)n;
		/* a regular file reads short only at its end: no read to see 0 */
		if ((size_t)n < room)
			break;
	}
	buf->ptr[buf->size] = '\0';
	rc = 0;
out:
	close(fd);
	return rc;
}

int tend_manifest_load(tend_manifest **out, tend_diags *diags, const char *repo_dir)
{
	tend_buf fleet = TEND_BUF_INIT;
	tend_buf *bufs = NULL;
	tend_manifest_source *srcs = NULL;
	size_t n = 0, cap = 0, i;
	char *path = NULL, *sdir = NULL;
	DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	size_t errors_before = diags->errors;
	repo_paths rp;
	int error = TEND_ERROR, rc, fleet_rc, repo_fd = -1, sdir_fd = -1;

	*out = NULL;
	if ((repo_fd = open(repo_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		tend_error_set("%s: not a directory", repo_dir);
		return TEND_ENOTFOUND;
	}
	if (!(path = tend_path_join(repo_dir, "fleet.yaml")) ||
	    !(sdir = tend_path_join(repo_dir, "services")))
		goto out;
	if (fstatat(repo_fd, "fleet.yaml", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if ((fleet_rc = read_doc(&fleet, diags, repo_fd, "fleet.yaml", path, "fleet.yaml")) < 0)
			goto out;
	} else {
		fleet_rc = -1;  /* absent: load_impl says so */
	}

	if ((sdir_fd = openat(repo_fd, "services", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0 &&
	    (d = fdopendir(sdir_fd))) {
		sdir_fd = -1;   /* owned by d now */
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			/* the type from the directory entry when the file system gives
			 * it; lstat otherwise. A link is kept: reading it is refused
			 * with a diagnostic, rather than the service silently missing */
			if (de->d_type != DT_DIR && de->d_type != DT_LNK) {
				if (de->d_type != DT_UNKNOWN)
					continue;
				rc = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW);
				if (rc < 0 || !(S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)))
					continue;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				tend_manifest_source *ns = realloc(srcs, ncap * sizeof(*ns));
				if (!ns)
					goto out;
				srcs = ns;
				cap = ncap;
			}
			memset(&srcs[n], 0, sizeof(srcs[n]));
			if (!(srcs[n].name = strdup(de->d_name)))
				goto out;
			n++;
		}
	} else if (errno == ELOOP) {
		tend_error_set("%s: a symbolic link: tend follows no link in the repository", sdir);
		error = TEND_EREFUSED;
		goto out;
	} else if (errno != ENOENT) {
		tend_error_set_errno("cannot list %s", sdir);
		goto out;
	}
	if (n > 1)
		qsort(srcs, n, sizeof(*srcs), name_cmp);
	if (n && !(bufs = calloc(n, sizeof(*bufs))))
		goto out;
	for (i = 0; i < n; i++) {
		char *rel = NULL, *full = NULL;
		if (asprintf(&rel, "services/%s/service.yaml", srcs[i].name) < 0)
			goto out;
		full = tend_path_join(repo_dir, rel);
		rc = full ? read_doc(&bufs[i], diags, repo_fd, rel, full, rel) : TEND_ERROR;
		free(rel);
		free(full);
		if (rc < 0)
			goto out;
		if (rc == 0) {
			srcs[i].data = bufs[i].ptr ? bufs[i].ptr : "";
			srcs[i].len = bufs[i].size;
		}
	}
	/* flake.nix's inputs locked by flake.lock: the build takes no other
	 * (manifest/flake.h); counted with the manifests' errors */
	if ((error = tend_manifest_check_flake(diags, repo_dir)) < 0)
		goto out;
	rp.repo_fd = repo_fd;
	error = load_impl(out, diags, errors_before, fleet_rc == 0 ? (fleet.ptr ? fleet.ptr : "") : NULL, fleet.size,
			  fleet_rc > 0, srcs, n, file_exists, &rp);
out:
	if (d)
		closedir(d);
	if (sdir_fd >= 0)
		close(sdir_fd);
	if (repo_fd >= 0)
		close(repo_fd);
	for (i = 0; i < n; i++) {
		free((char *)srcs[i].name);
		if (bufs)
			tend_buf_dispose(&bufs[i]);
	}
	free(bufs);
	free(srcs);
	tend_buf_dispose(&fleet);
	free(path);
	free(sdir);
	return error;
}

/* ---- lookups --------------------------------------------------------------- */

static int host_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const tend_host *)elem)->name);
}

static int service_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const tend_service *)elem)->name);
}

const tend_host *tend_manifest_host(const tend_manifest *m, const char *name)
{
	if (!m || !name || !m->n_hosts)
		return NULL;
	return bsearch(name, m->hosts, m->n_hosts, sizeof(*m->hosts), host_key_cmp);
}

const tend_service *tend_manifest_service(const tend_manifest *m, const char *name)
{
	if (!m || !name || !m->n_services)
		return NULL;
	return bsearch(name, m->services, m->n_services, sizeof(*m->services), service_key_cmp);
}
