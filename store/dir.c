/* The dir backend: Proxmox's dir plugin layout and rules over a root
 * directory, images made and changed with qemu-img run through store_run.
 *
 * Paths are only ever built from parsed volume ids (store/volid.c), whose
 * names cannot hold '/', "..", or leading dots, under a root that was
 * checked to be absolute and free of "..": no volume id reaches outside
 * root. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "store/dir.h"
#include "store/run.h"

#define QEMU_IMG "qemu-img"
/* qemu-img info, create, resize: metadata work, quick unless the disk
 * under the storage hangs, which must turn into an error. */
#define QUICK_MS 30000
/* Internal snapshots walk the image's tables: longer on big images. */
#define SNAPSHOT_MS 300000
/* As Proxmox's $MAX_VOLUMES_PER_GUEST. */
#define MAX_DISKS 1024
/* Room left in PATH_MAX for what the layout adds to root. */
#define ROOT_MAX (PATH_MAX - STORE_VOLID_MAX - 64)

static const struct {
	enum store_content content;
	const char *subdir;
} layout[] = {
        {STORE_CT_IMAGES, "images"},         {STORE_CT_ISO, "template/iso"},
        {STORE_CT_VZTMPL, "template/cache"}, {STORE_CT_BACKUP, "dump"},
        {STORE_CT_SNIPPETS, "snippets"},     {STORE_CT_IMPORT, "import"},
};

static const char *subdir_of(enum store_content content)
{
	size_t i;

	if (content == STORE_CT_ROOTDIR)
		content = STORE_CT_IMAGES;
	for (i = 0; i < CAIRN_ARRAY_SIZE(layout); i++) {
		if (layout[i].content == content)
			return layout[i].subdir;
	}
	return NULL;
}

static bool is_image(const struct store_volid *v)
{
	return v->content == STORE_CT_IMAGES || v->content == STORE_CT_ROOTDIR;
}

/* ------------------------------------------------------------ paths */

static int check_root(const char *root, struct err *e)
{
	size_t len, i;

	if (root == NULL || root[0] != '/')
		return err_set(e, -EINVAL,
		               "storage path must be an absolute path");
	len = strlen(root);
	if (len >= ROOT_MAX)
		return err_set(e, -ENAMETOOLONG, "storage path is too long");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)root[i];

		if (c < 0x20 || c == 0x7f)
			return err_set(e, -EINVAL,
			               "storage path has a control character");
		if (c == '.' && root[i - 1] == '/' && root[i + 1] == '.' &&
		    (root[i + 2] == '/' || root[i + 2] == '\0'))
			return err_set(e, -EINVAL,
			               "storage path '%s' contains '..'", root);
	}
	return 0;
}

static int root_exists(const char *root, struct err *e)
{
	struct stat st;

	if (stat(root, &st) != 0)
		return err_sys(e, -errno, "storage path %s", root);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, -ENOTDIR,
		               "storage path %s is not a directory", root);
	return 0;
}

/* vsnprintf into out, failing with code and message `what` when it does
 * not fit. */
static int vformat(char *out, size_t size, struct err *e, int code,
                   const char *what, const char *fmt, va_list ap)
        CAIRN_PRINTF(6, 0);

static int vformat(char *out, size_t size, struct err *e, int code,
                   const char *what, const char *fmt, va_list ap)
{
	int n = vsnprintf(out, size, fmt, ap);

	if (n < 0 || (size_t)n >= size)
		return err_set(e, code, "%s", what);
	return 0;
}

static int join(char *out, size_t size, struct err *e, const char *fmt, ...)
        CAIRN_PRINTF(4, 5);

static int join(char *out, size_t size, struct err *e, const char *fmt, ...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt);
	rv = vformat(out, size, e, -ENAMETOOLONG, "path too long", fmt, ap);
	va_end(ap);
	return rv;
}

/* The path of a parsed (trusted) volume id. */
static int volume_path(const char *root, const struct store_volid *v, char *out,
                       size_t size, struct err *e)
{
	const char *subdir = subdir_of(v->content);

	if (subdir == NULL)
		return err_set(e, -EINVAL, "volume %s:%s has no content type",
		               v->storage, v->name);
	if (is_image(v))
		return join(out, size, e, "%s/images/%u/%s", root, v->vmid,
		            v->file);
	return join(out, size, e, "%s/%s/%s", root, subdir, v->file);
}

int store_dir_path(const char *root, const struct store_volid *v, char *out,
                   size_t size, struct err *e)
{
	char text[STORE_VOLID_MAX + 1];
	struct store_volid checked;
	int rv;

	rv = check_root(root, e);
	if (rv != 0)
		return rv;
	/* Formatting parses again: a struct filled by hand with a hostile
	 * file name fails here. */
	if (store_volid_format(v, false, text, sizeof text) != 0)
		return err_set(e, -EINVAL, "not a valid dir volume");
	rv = store_volid_parse(text, false, &checked, e);
	if (rv != 0)
		return rv;
	return volume_path(root, &checked, out, size, e);
}

/* Creates one directory with exactly `mode`, or accepts one that exists. */
static int make_dir(const char *path, mode_t mode, struct err *e)
{
	struct stat st;

	if (mkdir(path, mode) == 0) {
		if (chmod(path, mode) != 0) /* not narrowed by the umask */
			return err_sys(e, -errno, "chmod %s", path);
		return 0;
	}
	if (errno != EEXIST)
		return err_sys(e, -errno, "mkdir %s", path);
	if (stat(path, &st) != 0)
		return err_sys(e, -errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, -ENOTDIR, "%s exists and is not a directory",
		               path);
	return 0;
}

/* images/VMID, and images itself if the storage was never activated. */
static int make_image_dir(const char *root, uint32_t vmid, char *dir,
                          size_t size, struct err *e)
{
	int rv;

	rv = join(dir, size, e, "%s/images", root);
	if (rv == 0)
		rv = make_dir(dir, 0755, e);
	if (rv == 0)
		rv = join(dir, size, e, "%s/images/%u", root, vmid);
	if (rv == 0)
		rv = make_dir(dir, 0755, e);
	return rv;
}

/* Drops an image's VMID directory when it has become empty. */
static void remove_image_dir_if_empty(const char *root, uint32_t vmid)
{
	char dir[PATH_MAX];

	if (join(dir, sizeof dir, NULL, "%s/images/%u", root, vmid) == 0)
		rmdir(dir); /* fails harmlessly when not empty */
}

/* Renames without replacing: renameat2's RENAME_NOREPLACE, or link and
 * unlink where the file system lacks it (NFS). */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (link(from, to) != 0)
		return -errno;
	if (unlink(from) != 0) {
		int code = -errno;

		unlink(to);
		return code;
	}
	return 0;
}

/* ------------------------------------------------------------ qemu-img */

static int qemu_img_info(const char *path, const char *format, json_t **info,
                         struct err *e)
{
	const char *argv[] = {QEMU_IMG, "info", "--output=json", "-f", format,
	                      path,     NULL};
	struct buf out;
	int rv;

	buf_init(&out, STORE_RUN_OUTPUT_MAX);
	rv = store_run(argv, QUICK_MS, &out, e);
	if (rv == 0)
		rv = json_parse_bounded(out.data != NULL ? out.data : "",
		                        out.len, STORE_RUN_OUTPUT_MAX,
		                        JSON_DEFAULT_MAX_DEPTH, info, e);
	if (rv == 0 && !json_is_object(*info)) {
		json_decref(*info);
		rv = err_set(e, -EIO, "qemu-img info %s: not a JSON object",
		             path);
	}
	buf_free(&out);
	return rv;
}

static int image_virtual_size(const char *path, const char *format,
                              uint64_t *size, char *real_format, size_t fsize,
                              struct err *e)
{
	const char *got;
	json_t *info;
	int64_t value;
	int rv;

	rv = qemu_img_info(path, format, &info, e);
	if (rv != 0)
		return rv;
	rv = json_get_int(info, "virtual-size", 0, INT64_MAX, &value, e);
	if (rv == 0 && real_format != NULL) {
		rv = json_get_str(info, "format", &got, e);
		if (rv == 0)
			snprintf(real_format, fsize, "%s", got);
	}
	if (rv != 0)
		rv = err_wrap(e, "qemu-img info %s", path);
	else
		*size = (uint64_t)value;
	json_decref(info);
	return rv;
}

/* What a listing needs from a qcow2 file, read from its header (the
 * format's fixed fields, big-endian): whether it is one, its virtual
 * size and its backing file name. */
struct qcow2_header {
	bool is_qcow2;
	uint64_t size;
	char backing[PATH_MAX]; /* "" when none */
};

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void read_qcow2_header(const char *path, struct qcow2_header *q)
{
	unsigned char h[32];
	uint64_t backing_offset;
	uint32_t backing_len, version;
	int fd;

	memset(q, 0, sizeof *q);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h ||
	    be32(h) != 0x514649fbu) /* "QFI\xfb" */
		goto out;
	version = be32(h + 4);
	if (version != 2 && version != 3)
		goto out;
	q->is_qcow2 = true;
	q->size = be64(h + 24);
	backing_offset = be64(h + 8);
	backing_len = be32(h + 16);
	if (backing_offset != 0 && backing_len > 0 &&
	    backing_len < sizeof q->backing && backing_offset < INT64_MAX &&
	    pread(fd, q->backing, backing_len, (off_t)backing_offset) ==
	            (ssize_t)backing_len)
		q->backing[backing_len] = '\0';
	else
		q->backing[0] = '\0';
out:
	close(fd);
}

/* ------------------------------------------------------------ volumes */

/* Parses volid as a dir volume id and checks root. */
static int parse_volume(const char *root, const char *volid,
                        struct store_volid *v, struct err *e)
{
	int rv;

	rv = check_root(root, e);
	if (rv == 0)
		rv = store_volid_parse(volid, false, v, e);
	return rv;
}

/* An existing volume: parsed, its path, and its file there. */
static int existing_volume(const char *root, const char *volid,
                           struct store_volid *v, char *path, size_t size,
                           struct err *e)
{
	struct stat st;
	int rv;

	rv = parse_volume(root, volid, v, e);
	if (rv == 0)
		rv = volume_path(root, v, path, size, e);
	if (rv != 0)
		return rv;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return err_set(e, -ENOENT, "volume %s does not exist",
			               volid);
		return err_sys(e, -errno, "volume %s: stat %s", volid, path);
	}
	if (!S_ISREG(st.st_mode))
		return err_set(e, -EINVAL, "volume %s: %s is not a file", volid,
		               path);
	return 0;
}

static int existing_image(const char *root, const char *volid,
                          struct store_volid *v, char *path, size_t size,
                          struct err *e)
{
	struct store_volid parsed;
	int rv;

	rv = parse_volume(root, volid, &parsed, e);
	if (rv != 0)
		return rv;
	if (!is_image(&parsed))
		return err_set(e, -EINVAL, "volume %s is not a disk image",
		               volid);
	return existing_volume(root, volid, v, path, size, e);
}

static int check_storage(const struct store_volid *v, const char *storage,
                         const char *volid, struct err *e)
{
	if (strcmp(v->storage, storage) != 0)
		return err_set(e, -EINVAL, "volume %s is not on storage %s",
		               volid, storage);
	return 0;
}

/* Calls fn for each image file under images/ (only VMID's directory when
 * vmid is not 0) whose name is a volume id; stops at fn's first non-zero
 * return and returns it. A missing images/ holds no images. */
typedef int (*image_fn)(void *data, const struct store_volid *v,
                        const char *path, const struct stat *st);

static int for_each_image(const char *root, const char *storage, uint32_t vmid,
                          image_fn fn, void *data, struct err *e)
{
	char dir[PATH_MAX];
	DIR *top;
	struct dirent *owner;
	int rv = 0;

	rv = join(dir, sizeof dir, e, "%s/images", root);
	if (rv != 0)
		return rv;
	top = opendir(dir);
	if (top == NULL) {
		if (errno == ENOENT)
			return 0;
		return err_sys(e, -errno, "opendir %s", dir);
	}
	while (rv == 0 && (owner = readdir(top)) != NULL) {
		char sub[PATH_MAX];
		struct dirent *file;
		unsigned long owner_vmid;
		char *end;
		DIR *d;

		if (!isdigit((unsigned char)owner->d_name[0]))
			continue;
		owner_vmid = strtoul(owner->d_name, &end, 10);
		if (*end != '\0' || (vmid != 0 && owner_vmid != vmid))
			continue;
		if (join(sub, sizeof sub, NULL, "%s/%s", dir, owner->d_name) !=
		    0)
			continue;
		d = opendir(sub);
		if (d == NULL)
			continue; /* a file, or gone meanwhile */
		while (rv == 0 && (file = readdir(d)) != NULL) {
			char text[STORE_VOLID_MAX + 1], path[PATH_MAX];
			struct store_volid v;
			struct stat st;

			if (file->d_name[0] == '.')
				continue;
			if (snprintf(text, sizeof text, "%s:%s/%s", storage,
			             owner->d_name,
			             file->d_name) >= (int)sizeof text ||
			    store_volid_parse(text, false, &v, NULL) != 0)
				continue;
			if (join(path, sizeof path, NULL, "%s/%s", sub,
			         file->d_name) != 0 ||
			    stat(path, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			rv = fn(data, &v, path, &st);
		}
		closedir(d);
	}
	closedir(top);
	return rv;
}

/* A linked clone's backing file, as Proxmox writes it, names its base:
 * "../BASEVMID/BASEFILE". Fills v's base fields from it when it is one. */
static bool backing_names_base(const char *backing, const char *storage,
                               struct store_volid *base)
{
	char text[STORE_VOLID_MAX + 1];

	if (strncmp(backing, "../", 3) != 0 ||
	    snprintf(text, sizeof text, "%s:%s", storage, backing + 3) >=
	            (int)sizeof text ||
	    store_volid_parse(text, false, base, NULL) != 0)
		return false;
	return base->is_base && base->base_vmid == 0;
}

struct base_use {
	const struct store_volid *base;
	char clone[STORE_VOLID_MAX + 1];
};

static int find_clone_of(void *data, const struct store_volid *v,
                         const char *path, const struct stat *st)
{
	struct base_use *use = data;
	struct qcow2_header q;
	struct store_volid parent;

	(void)st;
	if (strcmp(v->format, "qcow2") != 0)
		return 0;
	read_qcow2_header(path, &q);
	if (!q.is_qcow2 || !backing_names_base(q.backing, v->storage, &parent))
		return 0;
	if (parent.vmid != use->base->vmid ||
	    strcmp(parent.file, use->base->file) != 0)
		return 0;
	snprintf(use->clone, sizeof use->clone, "%s:%u/%s", v->storage, v->vmid,
	         v->file);
	return 1;
}

/* ------------------------------------------------------------ API */

int store_dir_activate(const char *root, struct err *e)
{
	char path[PATH_MAX];
	size_t i;
	int rv;

	rv = check_root(root, e);
	if (rv == 0)
		rv = root_exists(root, e);
	if (rv != 0)
		return rv;
	rv = join(path, sizeof path, e, "%s/template", root);
	if (rv == 0)
		rv = make_dir(path, 0755, e);
	for (i = 0; rv == 0 && i < CAIRN_ARRAY_SIZE(layout); i++) {
		rv = join(path, sizeof path, e, "%s/%s", root,
		          layout[i].subdir);
		if (rv == 0)
			rv = make_dir(path, 0755, e);
	}
	return rv != 0 ? err_wrap(e, "activate storage at %s", root) : 0;
}

int store_dir_status(const char *root, uint64_t *total, uint64_t *used,
                     uint64_t *avail, struct err *e)
{
	struct statvfs fs;
	int rv;

	rv = check_root(root, e);
	if (rv != 0)
		return rv;
	if (statvfs(root, &fs) != 0)
		return err_sys(e, -errno, "statvfs %s", root);
	*total = (uint64_t)fs.f_blocks * fs.f_frsize;
	*used = (uint64_t)(fs.f_blocks - fs.f_bfree) * fs.f_frsize;
	*avail = (uint64_t)fs.f_bavail * fs.f_frsize;
	return 0;
}

/* Bytes as Proxmox hands them to storage: whole KiB. */
static int round_size(uint64_t bytes, uint64_t *out, struct err *e)
{
	if (bytes == 0)
		return err_set(e, -EINVAL, "size 0");
	if (bytes > (uint64_t)INT64_MAX - 1023)
		return err_set(e, -ERANGE, "size %llu is too large",
		               (unsigned long long)bytes);
	*out = (bytes + 1023) / 1024 * 1024;
	return 0;
}

/* Takes the first free vm-VMID-disk-N.FORMAT in dir (images/VMID): the
 * file is created empty with O_EXCL, so two callers never get one name.
 * The directory is flock'ed meanwhile where the file system allows, so
 * that two formats do not take one number either. Returns the open fd. */
static int reserve_next_disk(const char *dir, const char *storage,
                             uint32_t vmid, const char *format, char *file,
                             size_t file_size, char *path, size_t path_size,
                             struct err *e)
{
	bool used[MAX_DISKS] = {false};
	struct dirent *entry;
	uint32_t n;
	int dir_fd, fd = -1;
	DIR *d;

	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return err_sys(e, -errno, "open %s", dir);
	flock(dir_fd, LOCK_EX); /* best effort: NFS may refuse */
	d = opendir(dir);
	if (d == NULL) {
		fd = err_sys(e, -errno, "opendir %s", dir);
		goto out;
	}
	while ((entry = readdir(d)) != NULL) {
		char text[STORE_VOLID_MAX + 1];
		struct store_volid v;

		if (snprintf(text, sizeof text, "%s:%u/%s", storage, vmid,
		             entry->d_name) < (int)sizeof text &&
		    store_volid_parse(text, false, &v, NULL) == 0 &&
		    v.disk < MAX_DISKS)
			used[v.disk] = true;
	}
	closedir(d);
	for (n = 0; n < MAX_DISKS; n++) {
		if (used[n])
			continue;
		snprintf(file, file_size, "vm-%u-disk-%u.%s", vmid, n, format);
		fd = join(path, path_size, e, "%s/%s", dir, file);
		if (fd != 0)
			goto out;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd >= 0)
			goto out;
		if (errno != EEXIST) {
			fd = err_sys(e, -errno, "create %s", path);
			goto out;
		}
	}
	fd = err_set(e, -ENOSPC, "no free disk name for VM %u (%d in use)",
	             vmid, MAX_DISKS);
out:
	close(dir_fd); /* drops the flock */
	return fd;
}

static int reserve_named(const char *dir, const char *file, const char *volid,
                         char *path, size_t path_size, struct err *e)
{
	int rv, fd;

	rv = join(path, path_size, e, "%s/%s", dir, file);
	if (rv != 0)
		return rv;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0 && errno == EEXIST)
		return err_set(e, -EEXIST, "volume %s already exists", volid);
	if (fd < 0)
		return err_sys(e, -errno, "create %s", path);
	return fd;
}

static int write_volid(char *out, size_t size, struct err *e, const char *fmt,
                       ...) CAIRN_PRINTF(4, 5);

static int write_volid(char *out, size_t size, struct err *e, const char *fmt,
                       ...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt);
	rv = vformat(out, size, e, -ENOSPC, "no room for the volume id", fmt,
	             ap);
	va_end(ap);
	return rv;
}

int store_dir_alloc(const char *root, const char *storage, uint32_t vmid,
                    const char *format, uint64_t bytes, const char *name,
                    char *volid, size_t volid_size, struct err *e)
{
	char dir[PATH_MAX], path[PATH_MAX], file[STORE_FILE_MAX + 1];
	char text[STORE_VOLID_MAX + 1], size_text[24];
	bool is_qcow2;
	int rv, fd;

	rv = check_root(root, e);
	if (rv == 0)
		rv = store_id_check(storage, e);
	if (rv != 0)
		return rv;
	if (vmid < STORE_VMID_MIN || vmid > STORE_VMID_MAX)
		return err_set(e, -EINVAL, "VMID %u is not in 100..999999999",
		               vmid);
	if (format == NULL ||
	    (strcmp(format, "raw") != 0 && strcmp(format, "qcow2") != 0))
		return err_set(e, -EINVAL, "format '%s': raw or qcow2",
		               format != NULL ? format : "");
	is_qcow2 = strcmp(format, "qcow2") == 0;
	rv = round_size(bytes, &bytes, e);
	if (rv != 0)
		return rv;
	if (name != NULL) {
		struct store_volid v;

		if (snprintf(text, sizeof text, "%s:%u/%s", storage, vmid,
		             name) >= (int)sizeof text)
			return err_set(e, -EINVAL, "name too long");
		rv = store_volid_parse(text, false, &v, e);
		if (rv != 0)
			return rv;
		if (v.is_base)
			return err_set(e, -EINVAL,
			               "name %s: templates (base-) are made "
			               "from images, not allocated",
			               name);
		if (strcmp(v.format, format) != 0)
			return err_set(e, -EINVAL,
			               "name %s: wrong extension for format %s",
			               name, format);
		snprintf(file, sizeof file, "%s", v.file);
	}
	rv = root_exists(root, e);
	if (rv == 0)
		rv = make_image_dir(root, vmid, dir, sizeof dir, e);
	if (rv != 0)
		return rv;
	if (name != NULL)
		fd = reserve_named(dir, file, text, path, sizeof path, e);
	else
		fd = reserve_next_disk(dir, storage, vmid, format, file,
		                       sizeof file, path, sizeof path, e);
	if (fd < 0) {
		remove_image_dir_if_empty(root, vmid);
		return fd;
	}
	rv = write_volid(volid, volid_size, e, "%s:%u/%s", storage, vmid, file);
	if (rv == 0 && !is_qcow2 && ftruncate(fd, (off_t)bytes) != 0)
		rv = err_sys(e, -errno, "truncate %s", path);
	close(fd);
	if (rv == 0 && is_qcow2) {
		const char *argv[] = {
		        QEMU_IMG, "create",  "-f",
		        "qcow2",  "-o",      "preallocation=metadata",
		        path,     size_text, NULL};

		snprintf(size_text, sizeof size_text, "%llu",
		         (unsigned long long)bytes);
		rv = store_run(argv, QUICK_MS, NULL, e);
	}
	if (rv != 0) {
		unlink(path);
		remove_image_dir_if_empty(root, vmid);
		return err_wrap(e, "allocate %s:%u/%s", storage, vmid, file);
	}
	return 0;
}

int store_dir_free(const char *root, const char *volid, struct err *e)
{
	char path[PATH_MAX];
	struct store_volid v;
	struct stat st;
	int rv;

	rv = parse_volume(root, volid, &v, e);
	if (rv == 0)
		rv = volume_path(root, &v, path, sizeof path, e);
	if (rv != 0)
		return rv;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return err_set(e, -ENOENT, "volume %s does not exist",
			               volid);
		return err_sys(e, -errno, "volume %s: stat %s", volid, path);
	}
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return err_set(e, -EINVAL, "volume %s: %s is not a file", volid,
		               path);
	if (is_image(&v) && v.is_base) {
		struct base_use use = {.base = &v};

		rv = for_each_image(root, v.storage, 0, find_clone_of, &use, e);
		if (rv < 0)
			return rv;
		if (rv > 0)
			return err_set(
			        e, -EBUSY,
			        "base volume %s is still in use by linked "
			        "clone %s",
			        volid, use.clone);
	}
	if (unlink(path) != 0)
		return err_sys(e, -errno, "free %s: unlink %s", volid, path);
	if (is_image(&v))
		remove_image_dir_if_empty(root, v.vmid);
	return 0;
}

int store_dir_resize(const char *root, const char *volid, uint64_t new_bytes,
                     struct err *e)
{
	char path[PATH_MAX], size_text[24], have[24], want[24];
	struct store_volid v;
	uint64_t current;
	int rv;

	rv = existing_image(root, volid, &v, path, sizeof path, e);
	if (rv != 0)
		return rv;
	if (v.is_base)
		return err_set(e, -EINVAL,
		               "volume %s is a template's (base-): not resized",
		               volid);
	rv = round_size(new_bytes, &new_bytes, e);
	if (rv == 0)
		rv = image_virtual_size(path, v.format, &current, NULL, 0, e);
	if (rv != 0)
		return rv;
	if (new_bytes < current) {
		store_size_format(current, have, sizeof have);
		store_size_format(new_bytes, want, sizeof want);
		return err_set(
		        e, -EINVAL,
		        "shrinking is not supported: %s is %s, asked for "
		        "%s",
		        volid, have, want);
	}
	if (new_bytes == current)
		return 0;
	snprintf(size_text, sizeof size_text, "%llu",
	         (unsigned long long)new_bytes);
	{
		const char *argv[] = {QEMU_IMG,
		                      "resize",
		                      "-f",
		                      v.format,
		                      strcmp(v.format, "qcow2") == 0
		                              ? "--preallocation=metadata"
		                              : "--preallocation=off",
		                      path,
		                      size_text,
		                      NULL};

		rv = store_run(argv, QUICK_MS, NULL, e);
	}
	return rv != 0 ? err_wrap(e, "resize %s", volid) : 0;
}

int store_dir_info(const char *root, const char *volid, uint64_t *size,
                   char *format, size_t fsize, struct err *e)
{
	char path[PATH_MAX];
	struct store_volid v;
	struct stat st;
	int rv;

	rv = existing_volume(root, volid, &v, path, sizeof path, e);
	if (rv != 0)
		return rv;
	if (is_image(&v))
		return image_virtual_size(path, v.format, size, format, fsize,
		                          e);
	if (stat(path, &st) != 0)
		return err_sys(e, -errno, "stat %s", path);
	*size = (uint64_t)st.st_size;
	if (format != NULL)
		snprintf(format, fsize, "%s", v.format);
	return 0;
}

/* ------------------------------------------------------------ listing */

struct lister {
	json_t *rows;
	const char *image_content; /* "images" or "rootdir" */
	bool is_oom;
};

static void set(struct lister *l, json_t *row, const char *key, json_t *value)
{
	if (value == NULL || json_object_set_new(row, key, value) != 0)
		l->is_oom = true;
}

static json_t *new_row(struct lister *l, const char *storage,
                       const struct store_volid *v, const char *format,
                       uint64_t size, int64_t ctime, const char *content)
{
	char volid[STORE_ID_MAX + 1 + STORE_VOLID_MAX + 1];
	json_t *row = json_object();

	if (row == NULL) {
		l->is_oom = true;
		return NULL;
	}
	snprintf(volid, sizeof volid, "%s:%s", storage, v->name);
	set(l, row, "volid", json_string(volid));
	set(l, row, "format", json_string(format));
	set(l, row, "size", json_integer((json_int_t)size));
	set(l, row, "ctime", json_integer(ctime));
	set(l, row, "content", json_string(content));
	if (json_array_append_new(l->rows, row) != 0) {
		l->is_oom = true;
		return NULL;
	}
	return row;
}

static int list_image(void *data, const struct store_volid *v, const char *path,
                      const struct stat *st)
{
	struct lister *l = data;
	struct store_volid shown = *v, base;
	struct qcow2_header q;
	const char *format = v->format;
	uint64_t size = (uint64_t)st->st_size;
	json_t *row;

	q.is_qcow2 = false;
	q.backing[0] = '\0';

	/* Listings are for what clients make of them: the owner a file's
	 * directory says and the base its header names. */
	if (strcmp(v->format, "qcow2") == 0) {
		read_qcow2_header(path, &q);
		if (!q.is_qcow2) {
			format = "invalid";
		} else {
			size = q.size;
			if (backing_names_base(q.backing, v->storage, &base)) {
				snprintf(shown.name, sizeof shown.name,
				         "%u/%s/%u/%s", base.vmid, base.file,
				         v->vmid, v->file);
			}
		}
	}
	row = new_row(l, v->storage, &shown, format, size,
	              (int64_t)st->st_ctim.tv_sec, l->image_content);
	if (row == NULL)
		return 0;
	set(l, row, "vmid", json_integer(v->vmid));
	set(l, row, "used", json_integer((json_int_t)st->st_blocks * 512));
	if (strcmp(format, "qcow2") == 0 && q.backing[0] != '\0')
		set(l, row, "parent", json_string(q.backing));
	return 0;
}

/* vzdump-TYPE-VMID-YYYY_MM_DD-HH_MM_SS.EXT names its time (local, as
 * vzdump writes it); Proxmox shows that as the backup's ctime. */
static bool vzdump_time(const struct store_volid *v, int64_t *ctime)
{
	const char *p = v->file;
	struct tm tm;
	int dashes = 0, n = 0;
	time_t t;

	while (*p != '\0' && dashes < 3) {
		if (*p++ == '-')
			dashes++;
	}
	memset(&tm, 0, sizeof tm);
	if (dashes != 3 ||
	    sscanf(p, "%4d_%2d_%2d-%2d_%2d_%2d%n", &tm.tm_year, &tm.tm_mon,
	           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19 || p[n] != '.' || strcmp(p + n + 1, v->format) != 0)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t == (time_t)-1)
		return false;
	*ctime = (int64_t)t;
	return true;
}

static const char *backup_subtype(const struct store_volid *v)
{
	static const char *const types[] = {"qemu", "lxc", "openvz"};
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(types); i++) {
		size_t n = strlen(types[i]);

		if (strncmp(v->file, "vzdump-", 7) == 0 &&
		    strncmp(v->file + 7, types[i], n) == 0 &&
		    v->file[7 + n] == '-')
			return types[i];
	}
	return "unknown";
}

static int list_files(struct lister *l, const char *root, const char *storage,
                      enum store_content content, uint32_t vmid, struct err *e)
{
	const char *type = store_content_name(content);
	char dir[PATH_MAX];
	struct dirent *entry;
	DIR *d;
	int rv;

	rv = join(dir, sizeof dir, e, "%s/%s", root, subdir_of(content));
	if (rv != 0)
		return rv;
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		return err_sys(e, -errno, "opendir %s", dir);
	}
	while ((entry = readdir(d)) != NULL && !l->is_oom) {
		char text[STORE_VOLID_MAX + 1], path[PATH_MAX];
		struct store_volid v;
		struct stat st;
		int64_t ctime;
		json_t *row;

		if (entry->d_name[0] == '.' ||
		    snprintf(text, sizeof text, "%s:%s/%s", storage, type,
		             entry->d_name) >= (int)sizeof text ||
		    store_volid_parse(text, false, &v, NULL) != 0 ||
		    v.content != content)
			continue;
		if (content == STORE_CT_BACKUP && vmid != 0 && v.vmid != vmid)
			continue;
		if (join(path, sizeof path, NULL, "%s/%s", dir,
		         entry->d_name) != 0 ||
		    stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		ctime = (int64_t)st.st_ctim.tv_sec;
		if (content == STORE_CT_BACKUP)
			vzdump_time(&v, &ctime);
		row = new_row(l, storage, &v, v.format, (uint64_t)st.st_size,
		              ctime, type);
		if (row == NULL || content != STORE_CT_BACKUP)
			continue;
		if (v.vmid != 0)
			set(l, row, "vmid", json_integer(v.vmid));
		set(l, row, "subtype", json_string(backup_subtype(&v)));
	}
	closedir(d);
	return 0;
}

static int by_volid(const void *a, const void *b)
{
	const json_t *ra = *(json_t *const *)a, *rb = *(json_t *const *)b;

	return strcasecmp(json_string_value(json_object_get(ra, "volid")),
	                  json_string_value(json_object_get(rb, "volid")));
}

/* Proxmox sorts content rows by volid, case-folded. */
static json_t *sorted(json_t *rows)
{
	size_t n = json_array_size(rows), i;
	json_t **items, *out;

	items = mem_calloc(n > 0 ? n : 1, sizeof *items);
	out = json_array();
	if (items == NULL || out == NULL)
		goto fail;
	for (i = 0; i < n; i++)
		items[i] = json_array_get(rows, i);
	qsort(items, n, sizeof *items, by_volid);
	for (i = 0; i < n; i++) {
		if (json_array_append(out, items[i]) != 0)
			goto fail;
	}
	mem_free(items);
	return out;
fail:
	mem_free(items);
	json_decref(out);
	return NULL;
}

int store_dir_list(const char *root, const char *storage, unsigned content_mask,
                   uint32_t vmid, json_t **rows, struct err *e)
{
	static const enum store_content file_types[] = {
	        STORE_CT_ISO, STORE_CT_VZTMPL, STORE_CT_BACKUP,
	        STORE_CT_SNIPPETS, STORE_CT_IMPORT};
	struct lister l = {0};
	json_t *out;
	size_t i;
	int rv;

	rv = check_root(root, e);
	if (rv == 0)
		rv = store_id_check(storage, e);
	if (rv == 0)
		rv = root_exists(root, e);
	if (rv != 0)
		return rv;
	l.rows = json_array();
	if (l.rows == NULL)
		return err_set(e, -ENOMEM, "list %s: out of memory", storage);
	l.image_content =
	        (content_mask & STORE_CT_IMAGES) != 0 ? "images" : "rootdir";
	if ((content_mask & (STORE_CT_IMAGES | STORE_CT_ROOTDIR)) != 0)
		rv = for_each_image(root, storage, vmid, list_image, &l, e);
	for (i = 0; rv == 0 && i < CAIRN_ARRAY_SIZE(file_types); i++) {
		enum store_content ct = file_types[i];

		if ((content_mask & ct) == 0)
			continue;
		/* As Proxmox: a guest's listing leaves out shared media. */
		if (vmid != 0 && (ct == STORE_CT_ISO || ct == STORE_CT_VZTMPL))
			continue;
		rv = list_files(&l, root, storage, ct, vmid, e);
	}
	if (rv == 0 && l.is_oom)
		rv = err_set(e, -ENOMEM, "list %s: out of memory", storage);
	out = rv == 0 ? sorted(l.rows) : NULL;
	if (rv == 0 && out == NULL)
		rv = err_set(e, -ENOMEM, "list %s: out of memory", storage);
	json_decref(l.rows);
	if (rv != 0)
		return rv;
	*rows = out;
	return 0;
}

/* ------------------------------------------------------------ snapshots */

static int snapshot_image(const char *root, const char *volid, const char *name,
                          bool is_change, struct store_volid *v, char *path,
                          size_t size, struct err *e)
{
	struct qcow2_header q;
	int rv;

	rv = existing_image(root, volid, v, path, size, e);
	if (rv != 0)
		return rv;
	if (strcmp(v->format, "qcow2") != 0)
		return err_set(e, -ENOTSUP, "snapshots need qcow2: %s is %s",
		               volid, v->format);
	read_qcow2_header(path, &q);
	if (!q.is_qcow2)
		return err_set(e, -EINVAL, "volume %s: %s is not a qcow2 image",
		               volid, path);
	if (is_change && v->is_base)
		return err_set(e, -EINVAL,
		               "volume %s is a template's (base-): no "
		               "snapshots",
		               volid);
	if (name != NULL)
		return store_snap_name_check(name, e);
	return 0;
}

static int snapshot_names(const char *path, json_t **names, struct err *e)
{
	json_t *info, *list, *snap, *out;
	size_t i;
	int rv;

	rv = qemu_img_info(path, "qcow2", &info, e);
	if (rv != 0)
		return rv;
	out = json_array();
	if (out == NULL) {
		json_decref(info);
		return err_set(e, -ENOMEM, "snapshots of %s: out of memory",
		               path);
	}
	list = json_object_get(info, "snapshots");
	json_array_foreach(list, i, snap)
	{
		const char *name;

		if (json_get_str(snap, "name", &name, NULL) != 0)
			continue;
		if (json_array_append_new(out, json_string(name)) != 0) {
			rv = err_set(e, -ENOMEM,
			             "snapshots of %s: out of memory", path);
			break;
		}
	}
	json_decref(info);
	if (rv != 0) {
		json_decref(out);
		return rv;
	}
	*names = out;
	return 0;
}

/* 1 when the image has a snapshot called name, 0 when not, or < 0. */
static int has_snapshot(const char *path, const char *name, struct err *e)
{
	json_t *names, *item;
	size_t i;
	int rv, found = 0;

	rv = snapshot_names(path, &names, e);
	if (rv != 0)
		return rv;
	json_array_foreach(names, i, item)
	{
		if (strcmp(json_string_value(item), name) == 0)
			found = 1;
	}
	json_decref(names);
	return found;
}

static int snapshot_change(const char *root, const char *volid,
                           const char *name, const char *op, bool must_exist,
                           struct err *e)
{
	char path[PATH_MAX];
	struct store_volid v;
	int rv;

	rv = snapshot_image(root, volid, name, true, &v, path, sizeof path, e);
	if (rv != 0)
		return rv;
	rv = has_snapshot(path, name, e);
	if (rv < 0)
		return rv;
	if (must_exist && rv == 0)
		return err_set(e, -ENOENT, "volume %s has no snapshot '%s'",
		               volid, name);
	if (!must_exist && rv == 1)
		return err_set(e, -EEXIST,
		               "volume %s already has a snapshot '%s'", volid,
		               name);
	{
		/* `qemu-img snapshot` takes no -f; it probes, and
		 * snapshot_image checked that the header is qcow2's. */
		const char *argv[] = {QEMU_IMG, "snapshot", op,
		                      name,     path,       NULL};

		rv = store_run(argv, SNAPSHOT_MS, NULL, e);
	}
	return rv != 0 ? err_wrap(e, "snapshot %s of %s", name, volid) : 0;
}

int store_dir_snapshot(const char *root, const char *volid, const char *name,
                       struct err *e)
{
	return snapshot_change(root, volid, name, "-c", false, e);
}

int store_dir_snapshot_rollback(const char *root, const char *volid,
                                const char *name, struct err *e)
{
	return snapshot_change(root, volid, name, "-a", true, e);
}

int store_dir_snapshot_delete(const char *root, const char *volid,
                              const char *name, struct err *e)
{
	return snapshot_change(root, volid, name, "-d", true, e);
}

int store_dir_snapshot_list(const char *root, const char *volid, json_t **names,
                            struct err *e)
{
	char path[PATH_MAX];
	struct store_volid v;
	int rv;

	rv = snapshot_image(root, volid, NULL, false, &v, path, sizeof path, e);
	if (rv != 0)
		return rv;
	return snapshot_names(path, names, e);
}

/* ------------------------------------------------------------ templates */

int store_dir_template(const char *root, const char *storage, const char *volid,
                       char *out_volid, size_t size, struct err *e)
{
	char path[PATH_MAX], new_path[PATH_MAX], text[STORE_VOLID_MAX + 1];
	struct store_volid v, base;
	int rv;

	rv = existing_image(root, volid, &v, path, sizeof path, e);
	if (rv == 0)
		rv = check_storage(&v, storage, volid, e);
	if (rv != 0)
		return rv;
	if (v.is_base)
		return err_set(e, -EINVAL, "volume %s is already a template's",
		               volid);
	if (v.base_vmid != 0) {
		struct qcow2_header q;
		char expected[PATH_MAX];

		/* As Proxmox: the id must tell the truth about the base. */
		read_qcow2_header(path, &q);
		snprintf(expected, sizeof expected, "../%u/%s", v.base_vmid,
		         v.base_file);
		if (!q.is_qcow2 || strcmp(q.backing, expected) != 0)
			return err_set(
			        e, -EINVAL,
			        "volume %s names base %s, but its backing "
			        "file is '%s'",
			        volid, expected, q.backing);
	}
	base = v;
	CAIRN_ASSERT(strncmp(v.file, "vm-", 3) == 0);
	if (strlen(v.file) + 2 > STORE_FILE_MAX)
		return err_set(e, -EINVAL,
		               "volume %s: name too long for a "
		               "template's",
		               volid);
	memcpy(base.file, "base-", 5);
	memcpy(base.file + 5, v.file + 3, strlen(v.file + 3) + 1);
	if (store_volid_format(&base, false, text, sizeof text) != 0)
		return err_set(e, -EINVAL, "volume %s: no template name for it",
		               volid);
	rv = store_volid_parse(text, false, &base, e);
	if (rv == 0)
		rv = volume_path(root, &base, new_path, sizeof new_path, e);
	if (rv == 0)
		rv = write_volid(out_volid, size, e, "%s", text);
	if (rv != 0)
		return rv;
	rv = rename_noreplace(path, new_path);
	if (rv == -EEXIST)
		return err_set(e, -EEXIST, "template volume %s already exists",
		               text);
	if (rv != 0)
		return err_sys(e, rv, "template %s: rename to %s", volid,
		               new_path);
	/* Nobody should write to a base image again (Proxmox also sets the
	 * immutable flag, which needs CAP_LINUX_IMMUTABLE; not here). */
	if (chmod(new_path, 0444) != 0)
		LOG_WARN("store", "cannot make template read-only",
		         "path=\"%s\" errno=%d", new_path, errno);
	return 0;
}

int store_dir_clone(const char *root, const char *storage,
                    const char *base_volid, uint32_t new_vmid, bool linked,
                    const atomic_bool *cancel, char *out_volid, size_t size,
                    struct err *e)
{
	char path[PATH_MAX], dir[PATH_MAX], new_path[PATH_MAX];
	char file[STORE_FILE_MAX + 1], backing[PATH_MAX];
	const char *new_format;
	struct store_volid v;
	int rv, fd;

	rv = existing_image(root, base_volid, &v, path, sizeof path, e);
	if (rv == 0)
		rv = check_storage(&v, storage, base_volid, e);
	if (rv != 0)
		return rv;
	if (new_vmid < STORE_VMID_MIN || new_vmid > STORE_VMID_MAX)
		return err_set(e, -EINVAL, "VMID %u is not in 100..999999999",
		               new_vmid);
	if (linked && !v.is_base)
		return err_set(e, -EINVAL,
		               "linked clones need a template's (base-) image; "
		               "%s is not one",
		               base_volid);
	new_format = linked ? "qcow2" : v.format;
	rv = make_image_dir(root, new_vmid, dir, sizeof dir, e);
	if (rv != 0)
		return rv;
	fd = reserve_next_disk(dir, storage, new_vmid, new_format, file,
	                       sizeof file, new_path, sizeof new_path, e);
	if (fd < 0) {
		remove_image_dir_if_empty(root, new_vmid);
		return fd;
	}
	close(fd);
	if (linked)
		rv = write_volid(out_volid, size, e, "%s:%u/%s/%u/%s", storage,
		                 v.vmid, v.file, new_vmid, file);
	else
		rv = write_volid(out_volid, size, e, "%s:%u/%s", storage,
		                 new_vmid, file);
	if (rv == 0 && linked) {
		/* Relative, so the pair can move together (and a shared
		 * storage mounted elsewhere still works); run from the new
		 * image's directory so that every qemu-img version resolves
		 * it the same way. */
		const char *argv[] = {
		        QEMU_IMG, "create",
		        "-F",     v.format,
		        "-b",     backing,
		        "-f",     "qcow2",
		        "-o",     "extended_l2=on,cluster_size=128k",
		        new_path, NULL};

		snprintf(backing, sizeof backing, "../%u/%s", v.vmid, v.file);
		rv = store_run_in(dir, argv, QUICK_MS, NULL, e);
	} else if (rv == 0) {
		const char *argv[] = {QEMU_IMG, "convert", "-f",
		                      v.format, "-O",      v.format,
		                      path,     new_path,  NULL};

		rv = store_run_cancellable(NULL, argv, 0, cancel, NULL, e);
	}
	if (rv != 0) {
		unlink(new_path);
		remove_image_dir_if_empty(root, new_vmid);
		return err_wrap(e, "%s clone of %s for VM %u",
		                linked ? "linked" : "full", base_volid,
		                new_vmid);
	}
	return 0;
}
