/* Installing secret files: resolve owners first (nothing is written when one
 * is unknown), write changed files atomically with util/fs.h, fix owner and
 * mode in place when only those differ, prune undeclared files and service
 * directories, and report changes by content hash. */
#include "secrets/install.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	uid_t uid;
	gid_t gid;
} owner;

static int valid_component(const char *s)
{
	return s && *s && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/') && strlen(s) < 256;
}

static int resolve(owner *out, const tend_secret_file *f)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	const char *user = f->owner ? f->owner : "root";
	size_t size = 16384;
	char *buf = NULL;
	int rc, error = TEND_ENOTFOUND;

	/* grow the buffer on ERANGE (groups with many members) */
	for (;;) {
		char *n = realloc(buf, size);
		if (!n) {
			tend_error_set("out of memory");
			error = TEND_ERROR;
			goto out;
		}
		buf = n;
		rc = getpwnam_r(user, &pw, buf, size, &pwp);
		if (rc == 0 && pwp && f->group)
			rc = getgrnam_r(f->group, &gr, buf + size / 2, size / 2, &grp);
		if (rc != ERANGE || size >= (1u << 22))
			break;
		size *= 2;
	}
	if (rc != 0) {
		errno = rc;
		tend_error_set_errno("secret %s/%s: looking up '%s'", f->service, f->name,
				     pwp && f->group ? f->group : user);
		error = TEND_ERROR;
		goto out;
	}
	if (!pwp) {
		tend_error_set("secret %s/%s: unknown owner '%s'", f->service, f->name, user);
		goto out;
	}
	out->uid = pw.pw_uid;
	out->gid = pw.pw_gid;
	if (f->group) {
		if (!grp) {
			tend_error_set("secret %s/%s: unknown group '%s'", f->service, f->name, f->group);
			goto out;
		}
		out->gid = gr.gr_gid;
	}
	error = 0;
out:
	free(buf);
	return error;
}

static int push(tend_secret_report *r, const char *service, const char *name, const char *hash,
		tend_secret_status status)
{
	tend_secret_change *n = realloc(r->items, (r->count + 1) * sizeof(*n));

	if (!n) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	r->items = n;
	n = &r->items[r->count];
	memset(n, 0, sizeof(*n));
	if (!(n->service = strdup(service)) || !(n->name = strdup(name))) {
		free(n->service);
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	snprintf(n->sha256, sizeof(n->sha256), "%s", hash ? hash : "");
	n->status = status;
	r->count++;
	return 0;
}

void tend_secret_report_dispose(tend_secret_report *report)
{
	size_t i;

	if (!report)
		return;
	for (i = 0; i < report->count; i++) {
		free(report->items[i].service);
		free(report->items[i].name);
	}
	free(report->items);
	report->items = NULL;
	report->count = 0;
}

int tend_secret_report_changed(const tend_secret_report *report, const char *service,
			       const char *name)
{
	size_t i;

	for (i = 0; i < report->count; i++)
		if (!strcmp(report->items[i].service, service) && !strcmp(report->items[i].name, name))
			return report->items[i].status == TEND_SECRET_CREATED ||
			       report->items[i].status == TEND_SECRET_UPDATED;
	return 0;
}

static int install_one(tend_secret_report *r, const char *root, const tend_secret_file *f,
		       const owner *o)
{
	char *dir = tend_path_join(root, f->service), *path = NULL, hash[65], old[65];
	mode_t mode = f->mode ? f->mode : 0400;
	struct stat st;
	tend_secret_status status = TEND_SECRET_CREATED;
	int error = TEND_ERROR;

	if (!dir || !(path = tend_path_join(dir, f->name))) {
		tend_error_set("out of memory");
		goto out;
	}
	if ((error = tend_dir_create_all(dir, 0755)) < 0)
		goto out;
	tend_sha256_hex(hash, f->data, f->len);
	if (lstat(path, &st) == 0) {
		status = TEND_SECRET_UPDATED;
		if (S_ISREG(st.st_mode) && tend_file_sha256_hex(old, path) == 0 && !strcmp(old, hash)) {
			status = TEND_SECRET_UNCHANGED;
			if (st.st_uid != o->uid || st.st_gid != o->gid || (st.st_mode & 07777) != mode) {
				/* same content: fix ownership and mode without rewriting */
				if (chown(path, o->uid, o->gid) < 0 || chmod(path, mode) < 0) {
					tend_error_set_errno("secret %s/%s: %s", f->service, f->name, path);
					error = TEND_ERROR;
					goto out;
				}
				status = TEND_SECRET_PERMS;
			}
		} else if (S_ISDIR(st.st_mode) && (error = tend_dir_remove_all(path)) < 0) {
			goto out;
		}
	}
	if (status == TEND_SECRET_CREATED || status == TEND_SECRET_UPDATED) {
		if ((error = tend_file_write_atomic(path, f->data, f->len, mode, o->uid, o->gid)) < 0) {
			tend_error_prefix("secret %s/%s: ", f->service, f->name);
			goto out;
		}
	}
	error = push(r, f->service, f->name, hash, status);
out:
	free(dir);
	free(path);
	return error;
}

static int declared(const tend_secret_file *files, size_t count, const char *service, const char *name)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (!strcmp(files[i].service, service) && (!name || !strcmp(files[i].name, name)))
			return 1;
	return 0;
}

/* Remove every entry of dir (a service directory) that is not declared. */
static int prune_service(tend_secret_report *r, const char *root, const char *service,
			 const tend_secret_file *files, size_t count, int whole)
{
	char *dir = tend_path_join(root, service), *path;
	DIR *d;
	struct dirent *de;
	int error = 0;

	if (!dir) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	if (!(d = opendir(dir))) {
		free(dir);
		return 0;
	}
	while ((de = readdir(d)) && !error) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!whole && declared(files, count, service, de->d_name))
			continue;
		if (!(path = tend_path_join(dir, de->d_name))) {
			error = TEND_ERROR;
			break;
		}
		error = tend_dir_remove_all(path);
		/* leftover temporary files are not secrets anyone declared */
		if (!error && !strstr(de->d_name, ".tend-tmp."))
			error = push(r, service, de->d_name, NULL, TEND_SECRET_REMOVED);
		free(path);
	}
	closedir(d);
	if (!error && whole && rmdir(dir) < 0 && errno != ENOENT) {
		tend_error_set_errno("remove %s", dir);
		error = TEND_ERROR;
	}
	free(dir);
	return error;
}

static int prune(tend_secret_report *r, const char *root, const tend_secret_file *files, size_t count)
{
	DIR *d;
	struct dirent *de;
	int error = 0;

	if (!(d = opendir(root)))
		return 0;
	while ((de = readdir(d)) && !error) {
		char *path;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!(path = tend_path_join(root, de->d_name))) {
			error = TEND_ERROR;
			break;
		}
		if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
			/* a stray file directly under the root */
			error = tend_dir_remove_all(path);
		} else {
			error = prune_service(r, root, de->d_name, files, count,
					      !declared(files, count, de->d_name, NULL));
		}
		free(path);
	}
	closedir(d);
	return error;
}

int tend_secrets_install(tend_secret_report *out, const char *root,
			 const tend_secret_file *files, size_t count)
{
	tend_secret_report r = { NULL, 0 };
	owner *owners = NULL;
	size_t i, j;
	int error = TEND_EINVALID;

	memset(out, 0, sizeof(*out));
	if (!root)
		root = TEND_SECRETS_DEFAULT_ROOT;
	if (count && !(owners = calloc(count, sizeof(*owners)))) {
		tend_error_set("out of memory");
		return TEND_ERROR;
	}
	for (i = 0; i < count; i++) {
		const tend_secret_file *f = &files[i];
		if (!valid_component(f->service) || !valid_component(f->name)) {
			tend_error_set("secret %s/%s: service and secret names must be single path "
				       "components (no '/', not '.' or '..')",
				       f->service ? f->service : "", f->name ? f->name : "");
			goto out;
		}
		if (strstr(f->name, ".tend-tmp.")) {
			tend_error_set("secret %s/%s: the name is reserved for temporary files",
				       f->service, f->name);
			goto out;
		}
		if ((f->mode & ~(mode_t)0777) != 0) {
			tend_error_set("secret %s/%s: mode %o: only permission bits (0777) are allowed",
				       f->service, f->name, (unsigned)f->mode);
			goto out;
		}
		for (j = 0; j < i; j++) {
			if (!strcmp(files[j].service, f->service) && !strcmp(files[j].name, f->name)) {
				tend_error_set("secret %s/%s is declared twice", f->service, f->name);
				goto out;
			}
		}
		if ((error = resolve(&owners[i], f)) < 0)
			goto out;
		error = TEND_EINVALID;
	}
	if ((error = tend_dir_create_all(root, 0751)) < 0)
		goto out;
	for (i = 0; i < count; i++)
		if ((error = install_one(&r, root, &files[i], &owners[i])) < 0)
			goto out;
	if ((error = prune(&r, root, files, count)) < 0)
		goto out;
	*out = r;
	r.items = NULL;
	r.count = 0;
	error = 0;
out:
	tend_secret_report_dispose(&r);
	free(owners);
	return error;
}
