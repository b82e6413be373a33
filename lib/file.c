/* Small file helpers: the data-dir lock, mkdir -p, bounded whole-file reads. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
