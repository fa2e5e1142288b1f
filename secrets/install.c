/* Secret generations under <root>.d, on a ramfs, and <root> the link to the current one
 * (secrets/install.h). Names come from validated manifests and are still checked here: a
 * generation is written beneath its own directory only, without following links. */
#include "secrets/install.h"
#include "util/beneath.h"
#include "util/error.h"
#include "util/buf.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define RAMFS_MAGIC_ 0x858458f6
#define DIR_MODE 0751
#define MAX_GENERATION 4000000000u
#define MAX_SECRET_BYTES (64u << 20)

static char *store_dir(const char *root)
{
	char *d = NULL;

	if (asprintf(&d, "%s.d", root) < 0) {
		tend_error_set("out of memory");
		return NULL;
	}
	return d;
}

static const char *fs_name(long type)
{
	switch ((unsigned long)type) {
	case 0xEF53: return "ext4";
	case 0x01021994: return "tmpfs (swappable)";
	case 0x9123683E: return "btrfs";
	case 0x58465342: return "xfs";
	case 0x794c7630: return "overlayfs";
	case 0x2fc12fc1: return "zfs";
	case 0x6969: return "nfs";
	}
	return NULL;
}

static int migrate_plain(const char *root);

int tend_secrets_store_prepare(const char *root, tend_secrets_storage storage)
{
	struct statfs sf;
	char *dir = store_dir(root), fsbuf[32];
	const char *fs;
	int error = TEND_ERROR, err;

	if (!dir)
		return TEND_ERROR;
	if (tend_dir_create_all(dir, DIR_MODE) < 0)
		goto out;
	if (storage == TEND_SECRETS_DISK) {
		error = 0;
		goto out;
	}
	if (statfs(dir, &sf) < 0) {
		tend_error_set_errno("statfs %s", dir);
		goto out;
	}
	if ((unsigned long)sf.f_type == RAMFS_MAGIC_) {
		error = 0;
		goto out;
	}
	/* as sops-nix's activation does for /run/secrets.d */
	if (mount("none", dir, "ramfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, "mode=0751") == 0) {
		error = 0;
		goto out;
	}
	err = errno;
	fs = fs_name(sf.f_type);
	if (!fs) {
		snprintf(fsbuf, sizeof(fsbuf), "file system 0x%lx", (unsigned long)sf.f_type);
		fs = fsbuf;
	}
	tend_error_set("secrets: %s is on %s and mounting a ramfs there failed (%s): decrypted "
		       "secrets are kept in RAM only; run tend as root, or set secrets_storage: disk "
		       "to keep them on this file system", dir, fs, strerror(err));
	error = TEND_EREFUSED;
out:
	if (error == 0)
		error = migrate_plain(root);
	free(dir);
	return error;
}

/* "<N>" with N in 1..MAX_GENERATION, digits only: 0 otherwise. */
static unsigned gen_parse(const char *s)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
		return 0;
	v = strtoull(s, &end, 10);
	return v <= MAX_GENERATION ? (unsigned)v : 0;
}

/* The next generation's number: past every one present and past the clock's seconds, so a
 * number is not used twice across reboots (the ramfs starts empty): a generation recorded
 * before a reboot is then missing, never one with other contents under its number. */
static unsigned gen_next(unsigned max)
{
	time_t now = time(NULL);
	unsigned next = max + 1;

	if (now > 0 && (unsigned long long)now < MAX_GENERATION && (unsigned)now > next)
		next = (unsigned)now;
	return next;
}

int tend_secrets_generation_current(unsigned *out, const char *root)
{
	char target[PATH_MAX], *dir = store_dir(root);
	const char *base;
	ssize_t n;
	size_t dlen;

	*out = 0;
	if (!dir)
		return TEND_ERROR;
	n = readlink(root, target, sizeof(target) - 1);
	if (n < 0) {
		free(dir);
		if (errno == ENOENT || errno == EINVAL)   /* absent, or a plain directory */
			return 0;
		tend_error_set_errno("readlink %s", root);
		return TEND_ERROR;
	}
	target[n] = '\0';
	dlen = strlen(dir);
	if (!strncmp(target, dir, dlen) && target[dlen] == '/') {
		base = target + dlen + 1;
		*out = gen_parse(base);
	}
	free(dir);
	return 0;
}

/* The largest generation present in dir (0: none). */
static int gen_max(unsigned *out, const char *dir)
{
	DIR *d;
	struct dirent *e;

	*out = 0;
	if (!(d = opendir(dir))) {
		if (errno == ENOENT)
			return 0;
		tend_error_set_errno("%s", dir);
		return TEND_ERROR;
	}
	while ((e = readdir(d)) != NULL) {
		unsigned g = gen_parse(e->d_name);
		if (g > *out)
			*out = g;
	}
	closedir(d);
	return 0;
}

/* rel is "<service>/<name>": two plain components. */
static int rel_ok(const char *rel)
{
	const char *slash = strchr(rel, '/');

	return tend_path_rel_check(rel) == 0 && slash && !strchr(slash + 1, '/');
}

static int write_one(int gfd, const char *gpath, const tend_secret_file *f)
{
	char svc[256], *path = NULL;
	size_t slen = (size_t)(strchr(f->rel, '/') - f->rel);
	int sfd = -1, error = TEND_ERROR;

	if (slen >= sizeof(svc)) {
		tend_error_set("secrets: '%s': service name too long", f->rel);
		return TEND_EINVALID;
	}
	memcpy(svc, f->rel, slen);
	svc[slen] = '\0';
	if (mkdirat(gfd, svc, DIR_MODE) < 0 && errno != EEXIST) {
		tend_error_set_errno("mkdir %s/%s", gpath, svc);
		return TEND_ERROR;
	}
	if ((sfd = openat(gfd, svc, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		tend_error_set_errno("%s/%s", gpath, svc);
		return TEND_ERROR;
	}
	if (fchmod(sfd, DIR_MODE) < 0) {   /* not the umask's */
		tend_error_set_errno("chmod %s/%s", gpath, svc);
		goto out;
	}
	if (!(path = tend_path_join(gpath, f->rel)))
		goto out;
	error = tend_file_write_atomic_at(sfd, f->rel + slen + 1, path, f->data, f->len,
					  f->mode ? f->mode : 0400, f->uid, f->gid);
out:
	free(path);
	close(sfd);
	return error;
}

int tend_secrets_generation_write(unsigned *out, const char *root, const tend_secret_file *files,
				  size_t count)
{
	char *dir = store_dir(root), *gpath = NULL, name[16];
	unsigned max;
	size_t i;
	int gfd = -1, error = TEND_ERROR;

	*out = 0;
	if (!dir || gen_max(&max, dir) < 0)
		goto out;
	if (max >= MAX_GENERATION) {
		tend_error_set("secrets: %s: generation %u is the last one; remove the directory "
			       "(tend writes all secrets again)", dir, max);
		goto out;
	}
	max = gen_next(max) - 1;
	snprintf(name, sizeof(name), "%u", max + 1);
	if (!(gpath = tend_path_join(dir, name)))
		goto out;
	if (mkdir(gpath, DIR_MODE) < 0) {
		tend_error_set_errno("mkdir %s", gpath);
		goto out;
	}
	if ((gfd = open(gpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fchmod(gfd, DIR_MODE) < 0) {
		tend_error_set_errno("%s", gpath);
		goto fail;
	}
	for (i = 0; i < count; i++) {
		if (!rel_ok(files[i].rel)) {
			tend_error_set("secrets: '%s' is not <service>/<name>", files[i].rel);
			error = TEND_EINVALID;
			goto fail;
		}
		if ((error = write_one(gfd, gpath, &files[i])) < 0)
			goto fail;
	}
	*out = max + 1;
	error = 0;
	goto out;
fail:
	if (error == 0)
		error = TEND_ERROR;
	tend_dir_remove_all(gpath);
out:
	if (gfd >= 0)
		close(gfd);
	free(gpath);
	free(dir);
	return error;
}

int tend_secrets_generation_switch(const char *root, unsigned n)
{
	char *dir = store_dir(root), *target = NULL, *tmp = NULL, *old = NULL, name[16];
	struct stat st;
	int error = TEND_ERROR;

	if (!dir)
		return TEND_ERROR;
	if (asprintf(&tmp, "%s.tmp-link", root) < 0 || asprintf(&old, "%s.old", root) < 0) {
		tmp = old = NULL;
		tend_error_set("out of memory");
		goto out;
	}
	if (n == 0) {
		if (unlink(root) < 0 && errno != ENOENT && (errno != EISDIR ||
							    tend_dir_remove_all(root) < 0)) {
			tend_error_set_errno("removing %s", root);
			goto out;
		}
		error = 0;
		goto out;
	}
	snprintf(name, sizeof(name), "%u", n);
	if (!(target = tend_path_join(dir, name)))
		goto out;
	if (lstat(target, &st) < 0 || !S_ISDIR(st.st_mode)) {
		/* a reboot emptied the ramfs since: no link to nothing */
		tend_error_set("secrets: generation %s is gone", target);
		error = TEND_ENOTFOUND;
		goto out;
	}
	unlink(tmp);
	if (symlink(target, tmp) < 0) {
		tend_error_set_errno("symlink %s -> %s", tmp, target);
		goto out;
	}
	/* an older tend's plain directory: out of the way first (once) */
	if (lstat(root, &st) == 0 && S_ISDIR(st.st_mode)) {
		tend_dir_remove_all(old);
		if (rename(root, old) < 0) {
			tend_error_set_errno("moving %s aside", root);
			unlink(tmp);
			goto out;
		}
	}
	if (rename(tmp, root) < 0) {
		tend_error_set_errno("rename %s -> %s", tmp, root);
		unlink(tmp);
		goto out;
	}
	tend_dir_remove_all(old);
	error = 0;
out:
	free(target);
	free(tmp);
	free(old);
	free(dir);
	return error;
}

int tend_secrets_generation_prune(const char *root, unsigned keep, unsigned keep2)
{
	char *dir = store_dir(root), *path;
	DIR *d;
	struct dirent *e;
	int error = 0;

	if (!dir)
		return TEND_ERROR;
	if (!(d = opendir(dir))) {
		free(dir);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		unsigned g = gen_parse(e->d_name);

		if (!g || g == keep || g == keep2)
			continue;
		if (!(path = tend_path_join(dir, e->d_name)) || tend_dir_remove_all(path) < 0)
			error = TEND_ERROR;
		free(path);
	}
	closedir(d);
	free(dir);
	return error;
}

int tend_secrets_generation_remove(const char *root, unsigned n)
{
	char *dir = store_dir(root), *path = NULL, name[16];
	int error = TEND_ERROR;

	snprintf(name, sizeof(name), "%u", n);
	if (dir && n && (path = tend_path_join(dir, name)))
		error = tend_dir_remove_all(path);
	free(path);
	free(dir);
	return error;
}

int tend_secrets_current_add(const char *root, const tend_secret_file *f)
{
	char *dir = store_dir(root), *gpath = NULL, name[16];
	unsigned gen;
	int gfd = -1, error = TEND_ERROR;

	if (!dir || tend_secrets_generation_current(&gen, root) < 0)
		goto out;
	if (!gen) {
		tend_error_set("secrets: %s links to no generation", root);
		error = TEND_ENOTFOUND;
		goto out;
	}
	if (!rel_ok(f->rel)) {
		tend_error_set("secrets: '%s' is not <service>/<name>", f->rel);
		error = TEND_EINVALID;
		goto out;
	}
	snprintf(name, sizeof(name), "%u", gen);
	if (!(gpath = tend_path_join(dir, name)))
		goto out;
	if ((gfd = open(gpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		tend_error_set_errno("%s", gpath);
		goto out;
	}
	error = write_one(gfd, gpath, f);
out:
	if (gfd >= 0)
		close(gfd);
	free(gpath);
	free(dir);
	return error;
}

/* The regular files two levels under dir (<service>/<name>), each passed to fn with its
 * bytes and stat; links and anything else skipped. */
static int each_file(const char *dir, int (*fn)(void *, const char *, const char *, size_t,
						 const struct stat *), void *payload)
{
	DIR *d = opendir(dir), *sd;
	struct dirent *e, *f;
	tend_buf b = TEND_BUF_INIT;
	int error = 0;

	if (!d)
		return errno == ENOENT ? 0 : TEND_ERROR;
	while (!error && (e = readdir(d)) != NULL) {
		int sfd;

		if (e->d_name[0] == '.' ||
		    (sfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			continue;
		if (!(sd = fdopendir(sfd))) {
			close(sfd);
			continue;
		}
		while (!error && (f = readdir(sd)) != NULL) {
			struct stat st;
			char rel[600];
			int fd;

			if (f->d_name[0] == '.' ||
			    (fd = openat(dirfd(sd), f->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
				continue;
			if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			    snprintf(rel, sizeof(rel), "%s/%s", e->d_name, f->d_name) < (int)sizeof(rel) &&
			    tend_fd_read(&b, fd, rel, MAX_SECRET_BYTES) == 0)
				error = fn(payload, rel, b.ptr ? b.ptr : "", b.size, &st);
			tend_error_clear();
			tend_buf_dispose_secure(&b);
			close(fd);
		}
		closedir(sd);
	}
	closedir(d);
	return error;
}

typedef struct {
	tend_secret_file *files;
	char **rels;
	void **datas;
	size_t n, cap;
} plain_set;

static int plain_add(void *payload, const char *rel, const char *data, size_t len,
		     const struct stat *st)
{
	plain_set *p = payload;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		tend_secret_file *files = realloc(p->files, cap * sizeof(*files));
		char **rels;
		void **datas;

		if (!files)
			return TEND_ERROR;
		p->files = files;
		if (!(rels = realloc(p->rels, cap * sizeof(*rels))))
			return TEND_ERROR;
		p->rels = rels;
		if (!(datas = realloc(p->datas, cap * sizeof(*datas))))
			return TEND_ERROR;
		p->datas = datas;
		p->cap = cap;
	}
	if (!(p->rels[p->n] = strdup(rel)) || !(p->datas[p->n] = malloc(len ? len : 1))) {
		free(p->rels[p->n]);
		return TEND_ERROR;
	}
	memcpy(p->datas[p->n], data, len);
	p->files[p->n].rel = p->rels[p->n];
	p->files[p->n].data = p->datas[p->n];
	p->files[p->n].len = len;
	p->files[p->n].mode = st->st_mode & 07777;
	p->files[p->n].uid = st->st_uid;
	p->files[p->n].gid = st->st_gid;
	p->n++;
	return 0;
}

/* An older tend kept plain files in a directory at <root>: they become the first generation,
 * so that a rollback of the first change after the upgrade has them to go back to. */
static int migrate_plain(const char *root)
{
	plain_set p = { NULL, NULL, NULL, 0, 0 };
	struct stat st;
	unsigned gen;
	size_t i;
	int error;

	if (lstat(root, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if ((error = each_file(root, plain_add, &p)) < 0) {
		tend_error_set("secrets: reading %s (kept by an older tend) failed", root);
		goto out;
	}
	if ((error = tend_secrets_generation_write(&gen, root, p.files, p.n)) == 0 &&
	    (error = tend_secrets_generation_switch(root, gen)) < 0)
		tend_secrets_generation_remove(root, gen);
out:
	for (i = 0; i < p.n; i++) {
		if (p.datas[i])
			sodium_memzero(p.datas[i], p.files[i].len);
		free(p.datas[i]);
		free(p.rels[i]);
	}
	free(p.files);
	free(p.rels);
	free(p.datas);
	return error;
}

typedef struct {
	int (*fn)(void *, const char *, size_t);
	void *payload;
} values_ctx;

static int value_one(void *payload, const char *rel, const char *data, size_t len,
		     const struct stat *st)
{
	values_ctx *v = payload;

	(void)rel;
	(void)st;
	return v->fn(v->payload, data, len);
}

int tend_secrets_store_values(const char *root, int (*fn)(void *payload, const char *data, size_t len),
			      void *payload)
{
	char *dir = store_dir(root), *path;
	values_ctx v = { fn, payload };
	struct dirent *e;
	DIR *d;
	int error = 0;

	if (!dir)
		return TEND_ERROR;
	if (!(d = opendir(dir))) {
		free(dir);
		return 0;
	}
	while (!error && (e = readdir(d)) != NULL) {
		if (!gen_parse(e->d_name) || !(path = tend_path_join(dir, e->d_name)))
			continue;
		error = each_file(path, value_one, &v);
		free(path);
	}
	closedir(d);
	free(dir);
	return error;
}
