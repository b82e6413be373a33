/* Small file helpers: the data-dir lock, mkdir -p, bounded whole-file
 * reads, new files that appear whole or not at all. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib.h"

int file_lock_exclusive(const char *path, struct err *e)
{
	char text[32];
	ssize_t n;
	int fd, len;

	/* O_CLOEXEC: a child (a guest that outlives us) must never hold the
	 * lock, or no new agent could start while it runs. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int code = -errno;

		if (code == -EWOULDBLOCK) {
			n = pread(fd, text, sizeof text - 1, 0);
			text[n > 0 ? n : 0] = '\0';
			text[strcspn(text, "\n")] = '\0';
			close(fd);
			if (n > 0)
				return err_set(e, code,
				               "%s is locked by another "
				               "process (pid %s)",
				               path, text);
			return err_set(e, code,
			               "%s is locked by another "
			               "process",
			               path);
		}
		close(fd);
		return err_sys(e, code, "flock %s", path);
	}
	len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
		int code = -errno;

		close(fd);
		return err_sys(e, code, "write pid to %s", path);
	}
	return fd;
}

int file_mkdir_p(const char *path, mode_t mode, struct err *e)
{
	char copy[PATH_MAX];
	struct stat st;
	size_t len = strlen(path);
	char *p;

	if (len == 0 || len >= sizeof copy)
		return err_set(e, -EINVAL, "bad directory path '%s'", path);
	memcpy(copy, path, len + 1);
	for (p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(copy, mode) == 0) {
			/* The umask must not narrow what the caller asked for.
			 */
			if (chmod(copy, mode) != 0)
				return err_sys(e, -errno, "chmod %s", copy);
		} else if (errno != EEXIST) {
			return err_sys(e, -errno, "mkdir %s", copy);
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	if (stat(path, &st) != 0)
		return err_sys(e, -errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, -ENOTDIR, "%s exists and is not a directory",
		               path);
	return 0;
}

int file_read_all(const char *path, size_t max, struct buf *out, struct err *e)
{
	char chunk[8192];
	ssize_t n;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", path);
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = err_sys(e, -errno, "read %s", path);
			break;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max) {
			rv = err_set(e, -E2BIG, "%s is larger than %zu bytes",
			             path, max);
			break;
		}
		rv = buf_append(out, chunk, (size_t)n);
		if (rv != 0) {
			rv = err_set(e, rv, "read %s: %s", path,
			             rv == -ENOMEM ? "out of memory"
			                           : "too large");
			break;
		}
	}
	close(fd);
	return rv;
}

/* ------------------------------------------------------------------------
 * New files that appear whole or not at all. */

int file_new_open(struct file_new *f, const char *dir, const char *name,
                  mode_t mode, unsigned flags, struct err *e)
{
	unsigned char rnd[8];
	char hex[17];
	struct stat sb;
	size_t i;
	int n;

	f->fd = -1;
	f->tmp[0] = '\0';
	if (name[0] == '\0' || strchr(name, '/') != NULL)
		return err_set(e, -EINVAL, "'%s': not a file name", name);
	n = snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof f->path)
		return err_set(e, -ENAMETOOLONG, "%s/%s: name too long", dir,
		               name);
	if (lstat(f->path, &sb) == 0)
		return err_set(e, -EEXIST, "%s: already exists", f->path);
	if (!(flags & FILE_NEW_NAMED)) {
		f->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
		if (f->fd >= 0)
			return 0;
		/* no O_TMPFILE here: the hidden name */
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return err_sys(e, -errno, "%s", dir);
	}
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return err_sys(e, -errno, "getrandom");
	for (i = 0; i < sizeof rnd; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	n = snprintf(f->tmp, sizeof f->tmp, "%s/.tmp-%s-%s", dir, hex, name);
	if (n < 0 || (size_t)n >= sizeof f->tmp) {
		f->tmp[0] = '\0';
		return err_set(e, -ENAMETOOLONG, "%s/%s: name too long", dir,
		               name);
	}
	f->fd = open(f->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	             mode);
	if (f->fd < 0) {
		n = -errno;
		f->tmp[0] = '\0';
		return err_sys(e, n, "%s", f->path);
	}
	return 0;
}

int file_new_commit(struct file_new *f, struct err *e)
{
	char proc[64], dir[sizeof f->path], *slash;
	int rv, dfd;

	if (fsync(f->fd) != 0) {
		rv = err_sys(e, -errno, "sync %s", f->path);
		goto err_discard;
	}
	if (f->tmp[0] != '\0') {
		rv = link(f->tmp, f->path);
	} else {
		/* Naming an O_TMPFILE: AT_EMPTY_PATH needs
		 * CAP_DAC_READ_SEARCH, /proc/self/fd does not. */
		rv = linkat(f->fd, "", AT_FDCWD, f->path, AT_EMPTY_PATH);
		if (rv != 0 && errno != EEXIST) {
			snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
			rv = linkat(AT_FDCWD, proc, AT_FDCWD, f->path,
			            AT_SYMLINK_FOLLOW);
		}
	}
	if (rv != 0) {
		rv = errno == EEXIST ? err_set(e, -EEXIST, "%s: already exists",
		                               f->path)
		                     : err_sys(e, -errno, "%s", f->path);
		goto err_discard;
	}
	file_new_discard(f); /* the temporary name, the fd */
	snprintf(dir, sizeof dir, "%s", f->path);
	slash = strrchr(dir, '/');
	if (slash != NULL)
		*slash = '\0';
	dfd = open(slash != NULL && dir[0] != '\0' ? dir : "/",
	           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
err_discard:
	file_new_discard(f);
	return rv;
}

void file_new_discard(struct file_new *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->tmp[0] != '\0')
		unlink(f->tmp);
	f->tmp[0] = '\0';
}
