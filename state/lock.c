/* The state directory's lock: an flock on <state_dir>/lock, held for as long
 * as one tend process acts on the host. The holder's pid is written into the
 * file so that the refusal can name it. */
#include "state/state.h"
#include "util/error.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct tend_state_lock {
	int fd;
};

int tend_state_lock_take(tend_state_lock **out, const char *dir)
{
	tend_state_lock *lock = NULL;
	char *path = NULL, pid[32] = "";
	int fd = -1, error = TEND_ERROR, len;
	ssize_t n;

	*out = NULL;
	if (tend_dir_create_all(dir, 0700) < 0)
		return TEND_ERROR;
	if (!(path = tend_path_join(dir, TEND_STATE_LOCK)))
		return TEND_ERROR;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		tend_error_set_errno("cannot open the lock %s", path);
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			tend_error_set("the state directory %s is locked by another tend process%s%s%s",
				       dir, *pid ? " (pid " : "", pid, *pid ? ")" : "");
			error = TEND_ELOCKED;
		} else {
			tend_error_set_errno("cannot lock %s", path);
		}
		goto out;
	}
	len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		tend_error_set_errno("cannot write the lock %s", path);
		goto out;
	}
	if (!(lock = malloc(sizeof(*lock)))) {
		tend_error_set("out of memory");
		goto out;
	}
	lock->fd = fd;
	fd = -1;
	*out = lock;
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return error;
}

void tend_state_lock_release(tend_state_lock *lock)
{
	if (!lock)
		return;
	/* Leave the file: removing it would race with a process opening it. */
	if (ftruncate(lock->fd, 0) < 0) {
		/* nothing to do: the pid is only used in messages */
	}
	close(lock->fd);
	free(lock);
}
