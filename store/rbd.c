/* The RBD backend: Proxmox's rbd storage semantics over librados/librbd. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "store/rbd.h"

#define DEFAULT_USER      "admin"
#define DEFAULT_POOL      "rbd"
#define DEFAULT_TIMEOUT_S 5
#define MAX_TIMEOUT_S     300
#define KEYRING_MAX       (64 * 1024)
#define MON_REPLY_MAX     (8 * 1024 * 1024)
#define USER_MAX          64
/* librbd's "size too small, try again" answers are retried this often: the
 * list can grow between two calls, but not forever. */
#define LIST_ATTEMPTS 8
/* Free names are picked by listing; another node may take the same name
 * between our listing and our create, which then fails with -EEXIST. */
#define CREATE_ATTEMPTS 8
#define DISK_N_MAX      100000
#define LOCKERS_BUF_MAX (64 * 1024)

#define FEATURES                                             \
	(RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | \
	 RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF |    \
	 RBD_FEATURE_DEEP_FLATTEN)

struct store_rbd {
	rados_t cluster;
	rados_ioctx_t io;
	char user[USER_MAX];
	char pool[STORE_RBD_NAME_MAX];
	char ns[STORE_RBD_NAME_MAX];
	char monhost[STORE_RBD_MONHOST_MAX];
	/* Kept for store_rbd_attach_spec, wiped on close. */
	char key[STORE_RBD_KEY_MAX];
};

/* ------------------------------------------------------------------------
 * Names and messages. */

/* ASCII only, whatever the locale. */
static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool is_name_char(char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

/* Image, snapshot, pool and user names: what librbd, librados and a QEMU
 * option string all take without quoting. */
static bool name_ok(const char *s, size_t max)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (i + 1 >= max || !is_name_char(s[i]))
			return false;
	return true;
}

/* A name is echoed in a message only when it is harmless to print. */
static const char *printable(const char *s)
{
	size_t i;

	if (s == NULL)
		return "(null)";
	for (i = 0; s[i] != '\0'; i++)
		if (i >= 128 || !isprint((unsigned char)s[i]))
			return "(unprintable)";
	return s;
}

static int check_name(const char *what, const char *s, struct err *e)
{
	if (name_ok(s, STORE_RBD_NAME_MAX))
		return 0;
	return err_set(e, -EINVAL,
	               "bad %s name '%s': 1-%d of letters, digits, '.', '_', "
	               "'-', not starting with '.' or '-'",
	               what, printable(s), STORE_RBD_NAME_MAX - 1);
}

static int check_snap_name(const char *snap, struct err *e)
{
	int rv = check_name("snapshot", snap, e);

	if (rv != 0)
		return rv;
	if (strcmp(snap, STORE_RBD_BASE_SNAP) == 0)
		return err_set(e, -EINVAL,
		               "snapshot name " STORE_RBD_BASE_SNAP
		               " is reserved for templates");
	return 0;
}

static int check_vmid(unsigned vmid, struct err *e)
{
	if (vmid == 0 || vmid > STORE_RBD_VMID_MAX)
		return err_set(e, -EINVAL, "bad vmid %u", vmid);
	return 0;
}

/* "rbd image POOL[/NAMESPACE]/IMAGE: CALL: strerror". */
static int image_err(struct err *e, int rv, const struct store_rbd *r,
                     const char *image, const char *call)
{
	return err_sys(e, rv, "rbd image %s%s%s/%s: %s", r->pool,
	               r->ns[0] != '\0' ? "/" : "", r->ns, image, call);
}

static int copy_out(char *out, size_t size, const char *s, struct err *e)
{
	size_t len = strlen(s);

	if (len >= size)
		return err_set(e, -ENOSPC, "'%s' does not fit in %zu bytes", s,
		               size);
	memcpy(out, s, len + 1);
	return 0;
}

/* Parses "PREFIX-VMID-disk-N" exactly; true with *n on a match. */
static bool parse_disk_name(const char *name, const char *prefix, unsigned vmid,
                            unsigned *n)
{
	char head[48];
	const char *p;
	unsigned long v = 0;

	snprintf(head, sizeof head, "%s-%u-disk-", prefix, vmid);
	if (strncmp(name, head, strlen(head)) != 0)
		return false;
	p = name + strlen(head);
	if (!isdigit((unsigned char)*p) || (p[0] == '0' && p[1] != '\0'))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v >= DISK_N_MAX)
			return false;
	}
	if (*p != '\0')
		return false;
	*n = (unsigned)v;
	return true;
}

static bool owned_by(const char *name, unsigned vmid)
{
	char vm[32], base[32];

	snprintf(vm, sizeof vm, "vm-%u-", vmid);
	snprintf(base, sizeof base, "base-%u-", vmid);
	return strncmp(name, vm, strlen(vm)) == 0 ||
	       strncmp(name, base, strlen(base)) == 0;
}

/* ------------------------------------------------------------------------
 * Connecting. */

static bool key_ok(const char *key)
{
	size_t i;

	for (i = 0; key[i] != '\0'; i++)
		if (i + 1 >= STORE_RBD_KEY_MAX ||
		    !(is_alnum(key[i]) || key[i] == '+' || key[i] == '/' ||
		      key[i] == '='))
			return false;
	return i > 0;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* The key of [client.USER] in a keyring file (Ceph's ini syntax:
 * `key = AQ...==` inside the section). */
static int key_from_keyring(const char *path, const char *user, char *out,
                            size_t size, struct err *e)
{
	struct buf text;
	char section[USER_MAX + 16];
	char *line, *next, *s, *value;
	bool in_section = false;
	int rv;

	buf_init(&text, KEYRING_MAX);
	rv = file_read_all(path, KEYRING_MAX, &text, e);
	if (rv != 0)
		goto out;
	rv = err_set(e, -ENOENT, "keyring %s has no key for client.%s", path,
	             user);
	if (text.data == NULL)
		goto out;
	snprintf(section, sizeof section, "[client.%s]", user);
	for (line = text.data; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		s = trim(line);
		if (s[0] == '[') {
			in_section = strcmp(s, section) == 0;
			continue;
		}
		if (!in_section || strncmp(s, "key", 3) != 0)
			continue;
		value = trim(s + 3);
		if (value[0] != '=')
			continue;
		value = trim(value + 1);
		if (!key_ok(value)) {
			rv = err_set(e, -EINVAL,
			             "keyring %s: the key of client.%s is not "
			             "base64",
			             path, user);
			goto out;
		}
		err_clear(e);
		rv = copy_out(out, size, value, e);
		goto out;
	}
out:
	if (text.data != NULL)
		explicit_bzero(text.data, text.len);
	buf_free(&text);
	return rv;
}

int store_rbd_option_check(const char *option, const char *value, struct err *e)
{
	size_t i;

	if (value == NULL)
		return err_set(e, -EINVAL, "%s: no value", option);
	if (strcmp(option, "monhost") == 0) {
		for (i = 0; value[i] != '\0'; i++)
			if (i + 1 >= STORE_RBD_MONHOST_MAX ||
			    !isprint((unsigned char)value[i]))
				break;
		if (value[0] != '\0' && value[i] == '\0')
			return 0;
		return err_set(e, -EINVAL,
		               "monitor addresses: printable text of 1-%d "
		               "bytes",
		               STORE_RBD_MONHOST_MAX - 1);
	}
	if (strcmp(option, "namespace") == 0 && value[0] == '\0')
		return 0;
	if (strcmp(option, "pool") == 0 || strcmp(option, "namespace") == 0 ||
	    strcmp(option, "username") == 0) {
		size_t max = strcmp(option, "username") == 0
		                     ? USER_MAX
		                     : STORE_RBD_NAME_MAX;

		if (name_ok(value, max))
			return 0;
		return err_set(e, -EINVAL,
		               "1-%zu of letters, digits, '.', '_', '-', not "
		               "starting with '.' or '-'",
		               max - 1);
	}
	return err_set(e, -EINVAL, "%s: not an rbd connection setting", option);
}

static int check_config(const struct store_rbd_config *c, struct err *e)
{
	size_t i;

	if (c->monhost == NULL || c->monhost[0] == '\0')
		return err_set(e, -EINVAL, "rbd: monhost is missing");
	for (i = 0; c->monhost[i] != '\0'; i++)
		if (i + 1 >= STORE_RBD_MONHOST_MAX ||
		    !isprint((unsigned char)c->monhost[i]))
			return err_set(e, -EINVAL,
			               "rbd: monhost is not printable text of "
			               "at most %d bytes",
			               STORE_RBD_MONHOST_MAX - 1);
	if (c->username != NULL && !name_ok(c->username, USER_MAX))
		return err_set(e, -EINVAL, "rbd: bad username '%s'",
		               printable(c->username));
	if (c->pool != NULL && !name_ok(c->pool, STORE_RBD_NAME_MAX))
		return err_set(e, -EINVAL, "rbd: bad pool name '%s'",
		               printable(c->pool));
	if (c->namespace_name != NULL && c->namespace_name[0] != '\0' &&
	    !name_ok(c->namespace_name, STORE_RBD_NAME_MAX))
		return err_set(e, -EINVAL, "rbd: bad namespace '%s'",
		               printable(c->namespace_name));
	if ((c->keyring == NULL) == (c->key == NULL))
		return err_set(e, -EINVAL,
		               "rbd: give exactly one of keyring and key");
	if (c->key != NULL && !key_ok(c->key))
		return err_set(e, -EINVAL, "rbd: the key is not base64");
	if (c->timeout_s > MAX_TIMEOUT_S)
		return err_set(e, -EINVAL, "rbd: timeout %u s is over %d s",
		               c->timeout_s, MAX_TIMEOUT_S);
	return 0;
}

static int conf_set(struct store_rbd *r, const char *option, const char *value,
                    struct err *e)
{
	int rv = rados_conf_set(r->cluster, option, value);

	if (rv < 0)
		return err_sys(e, rv, "rbd: rados_conf_set %s", option);
	return 0;
}

int store_rbd_connect(const struct store_rbd_config *c, struct store_rbd **out,
                      struct err *e)
{
	struct store_rbd *r;
	char entity[USER_MAX + 8], timeout[16];
	/* Nothing of the client goes to a file or stderr (cairnd's log has
	 * its own format), and no admin socket: several connections live in
	 * one process. */
	static const char *const quiet[][2] = {
	        {"log_to_stderr", "false"}, {"err_to_stderr", "false"},
	        {"log_to_syslog", "false"}, {"log_file", ""},
	        {"admin_socket", ""},
	};
	static const char *const timeouts[] = {
	        "client_mount_timeout",
	        "rados_mon_op_timeout",
	        "rados_osd_op_timeout",
	};
	/* An op sent to an OSD that has restarted on the same port waits on
	 * a connection in reconnect backoff (0.2 s doubling up to 15 s)
	 * until the client learns the OSD's new address. The objecter asks
	 * the monitor for a new map only for ops older than objecter_timeout
	 * (10 s), looked for every objecter_tick_interval (5 s): an idle
	 * connection's first op after an OSD restart failed with the 5 s op
	 * timeout (seen in tests/integration/store/test_rbd). */
	static const char *const stale_map[][2] = {
	        {"objecter_tick_interval", "1"},
	        {"objecter_timeout", "1"},
	};
	size_t i;
	int rv;

	rv = check_config(c, e);
	if (rv != 0)
		return rv;
	r = mem_calloc(1, sizeof *r);
	if (r == NULL)
		return err_set(e, -ENOMEM, "rbd: out of memory");
	snprintf(r->user, sizeof r->user, "%s",
	         c->username != NULL ? c->username : DEFAULT_USER);
	snprintf(r->pool, sizeof r->pool, "%s",
	         c->pool != NULL ? c->pool : DEFAULT_POOL);
	snprintf(r->ns, sizeof r->ns, "%s",
	         c->namespace_name != NULL ? c->namespace_name : "");
	snprintf(r->monhost, sizeof r->monhost, "%s", c->monhost);
	if (c->key != NULL)
		rv = copy_out(r->key, sizeof r->key, c->key, e);
	else
		rv = key_from_keyring(c->keyring, r->user, r->key,
		                      sizeof r->key, e);
	if (rv != 0)
		goto err_after_alloc;

	snprintf(entity, sizeof entity, "client.%s", r->user);
	rv = rados_create2(&r->cluster, "ceph", entity, 0);
	if (rv < 0) {
		err_sys(e, rv, "rbd: rados_create2");
		goto err_after_alloc;
	}
	snprintf(timeout, sizeof timeout, "%u",
	         c->timeout_s != 0 ? c->timeout_s : DEFAULT_TIMEOUT_S);
	for (i = 0; i < CAIRN_ARRAY_SIZE(quiet) && rv == 0; i++)
		rv = conf_set(r, quiet[i][0], quiet[i][1], e);
	for (i = 0; i < CAIRN_ARRAY_SIZE(timeouts) && rv == 0; i++)
		rv = conf_set(r, timeouts[i], timeout, e);
	for (i = 0; i < CAIRN_ARRAY_SIZE(stale_map) && rv == 0; i++)
		rv = conf_set(r, stale_map[i][0], stale_map[i][1], e);
	if (rv == 0)
		rv = conf_set(r, "mon_host", r->monhost, e);
	if (rv == 0)
		rv = conf_set(r, "key", r->key, e);
	if (rv != 0)
		goto err_after_create;
	rv = rados_connect(r->cluster);
	if (rv < 0) {
		err_sys(e, rv, "rbd: connect to %s as %s", r->monhost, entity);
		goto err_after_create;
	}
	rv = rados_ioctx_create(r->cluster, r->pool, &r->io);
	if (rv < 0) {
		if (rv == -ENOENT)
			err_set(e, rv, "rbd: pool '%s' does not exist",
			        r->pool);
		else
			err_sys(e, rv, "rbd: pool %s", r->pool);
		goto err_after_create;
	}
	rados_ioctx_set_namespace(r->io, r->ns);
	*out = r;
	return 0;

err_after_create:
	/* Also right after a failed rados_connect: it frees the handle. */
	rados_shutdown(r->cluster);
err_after_alloc:
	explicit_bzero(r->key, sizeof r->key);
	mem_free(r);
	return rv;
}

void store_rbd_close(struct store_rbd *r)
{
	if (r == NULL)
		return;
	rados_ioctx_destroy(r->io);
	rados_shutdown(r->cluster);
	explicit_bzero(r->key, sizeof r->key);
	mem_free(r);
}

/* ------------------------------------------------------------------------
 * Helpers over librbd. */

static int open_image(struct store_rbd *r, const char *name, const char *snap,
                      bool read_only, rbd_image_t *img, struct err *e)
{
	int rv;

	if (read_only)
		rv = rbd_open_read_only(r->io, name, img, snap);
	else
		rv = rbd_open(r->io, name, img, snap);
	if (rv < 0)
		return image_err(e, rv, r, name,
		                 read_only ? "rbd_open_read_only" : "rbd_open");
	return 0;
}

/* Every image name of the pool; *names is released with
 * rbd_image_spec_list_cleanup + mem_free. */
static int list_names(struct store_rbd *r, rbd_image_spec_t **names,
                      size_t *count, struct err *e)
{
	rbd_image_spec_t *specs = NULL;
	size_t max = 0;
	int attempt, rv = -ERANGE;

	for (attempt = 0; attempt < LIST_ATTEMPTS && rv == -ERANGE; attempt++) {
		mem_free(specs);
		specs = NULL;
		if (max > 0) {
			specs = mem_calloc(max, sizeof *specs);
			if (specs == NULL)
				return err_set(e, -ENOMEM,
				               "rbd: out of memory");
		}
		rv = rbd_list2(r->io, specs, &max);
	}
	if (rv < 0) {
		mem_free(specs);
		return err_sys(e, rv, "rbd pool %s: rbd_list2", r->pool);
	}
	*names = specs;
	*count = max;
	return 0;
}

static void free_names(rbd_image_spec_t *names, size_t count)
{
	if (names != NULL)
		rbd_image_spec_list_cleanup(names, count);
	mem_free(names);
}

/* The user-visible snapshots of an open image; released with
 * rbd_snap_list_end + mem_free. */
static int list_snaps(struct store_rbd *r, const char *image, rbd_image_t img,
                      rbd_snap_info_t **snaps, int *count, struct err *e)
{
	rbd_snap_info_t *info = NULL;
	int max = 8, attempt, rv = -ERANGE;

	for (attempt = 0; attempt < LIST_ATTEMPTS && rv == -ERANGE; attempt++) {
		mem_free(info);
		info = mem_calloc((size_t)max, sizeof *info);
		if (info == NULL)
			return err_set(e, -ENOMEM, "rbd: out of memory");
		rv = rbd_snap_list(img, info, &max);
	}
	if (rv < 0) {
		mem_free(info);
		return image_err(e, rv, r, image, "rbd_snap_list");
	}
	*snaps = info;
	*count = rv;
	return 0;
}

static void free_snaps(rbd_snap_info_t *snaps)
{
	if (snaps != NULL)
		rbd_snap_list_end(snaps);
	mem_free(snaps);
}

/* Clones hanging from snapshot `snap` of an open image, as
 * "pool/image, ..." into out (empty when none). */
static int list_children(struct store_rbd *r, const char *image,
                         rbd_image_t img, const char *snap, struct buf *out,
                         size_t *count, struct err *e)
{
	rbd_linked_image_spec_t *kids = NULL;
	size_t max = 4, i;
	int attempt, rv;

	rv = rbd_snap_set(img, snap);
	if (rv < 0)
		return image_err(e, rv, r, image, "rbd_snap_set");
	rv = -ERANGE;
	for (attempt = 0; attempt < LIST_ATTEMPTS && rv == -ERANGE; attempt++) {
		mem_free(kids);
		kids = mem_calloc(max, sizeof *kids);
		if (kids == NULL) {
			rv = err_set(e, -ENOMEM, "rbd: out of memory");
			goto out;
		}
		rv = rbd_list_children3(img, kids, &max);
	}
	if (rv < 0) {
		mem_free(kids);
		kids = NULL;
		rv = image_err(e, rv, r, image, "rbd_list_children3");
		goto out;
	}
	*count = max;
	for (i = 0; i < max && rv == 0; i++)
		rv = buf_printf(out, "%s%s/%s%s", i > 0 ? ", " : "",
		                kids[i].pool_name, kids[i].image_name,
		                kids[i].trash ? " (in the trash)" : "");
	if (rv != 0)
		rv = err_set(e, rv, "rbd: out of memory");
	rbd_linked_image_spec_list_cleanup(kids, max);
	mem_free(kids);
out:
	/* back to the image's head, for whatever the caller does next */
	rbd_snap_set(img, NULL);
	return rv;
}

/* -EBUSY naming a client that has the image open (read-write: read-only
 * opens, ours included, register no watch). The image's lock is no test:
 * it is taken only at the first write, and librbd hands it over to any
 * client that asks. */
static int refuse_if_open(struct store_rbd *r, const char *image,
                          rbd_image_t img, const char *doing, struct err *e)
{
	rbd_image_watcher_t watchers[4];
	size_t count = CAIRN_ARRAY_SIZE(watchers);
	int rv;

	rv = rbd_watchers_list(img, watchers, &count);
	if (rv == -ERANGE)
		return err_set(e, -EBUSY,
		               "rbd image %s: cannot %s: open by %zu clients",
		               image, doing, count);
	if (rv < 0)
		return image_err(e, rv, r, image, "rbd_watchers_list");
	if (count > 0)
		rv = err_set(
		        e, -EBUSY,
		        "rbd image %s: cannot %s: open by client.%lld at %s",
		        image, doing, (long long)watchers[0].id,
		        watchers[0].addr);
	rbd_watchers_list_cleanup(watchers, count);
	return rv;
}

static int refuse_if_open_by_name(struct store_rbd *r, const char *image,
                                  const char *doing, struct err *e)
{
	rbd_image_t img;
	int rv;

	rv = open_image(r, image, NULL, true, &img, e);
	if (rv != 0)
		return rv;
	rv = refuse_if_open(r, image, img, doing, e);
	rbd_close(img);
	return rv;
}

static int make_options(rbd_image_options_t *opts, struct err *e)
{
	int rv;

	rbd_image_options_create(opts);
	rv = rbd_image_options_set_uint64(*opts, RBD_IMAGE_OPTION_FORMAT, 2);
	if (rv == 0)
		rv = rbd_image_options_set_uint64(
		        *opts, RBD_IMAGE_OPTION_FEATURES, FEATURES);
	if (rv < 0) {
		rbd_image_options_destroy(*opts);
		return err_sys(e, rv, "rbd: rbd_image_options_set_uint64");
	}
	return 0;
}

/* The first vm-VMID-disk-N whose N no vm- or base- image of vmid uses. */
static int next_free_disk(struct store_rbd *r, unsigned vmid, char *out,
                          size_t size, struct err *e)
{
	rbd_image_spec_t *names;
	size_t count, i;
	unsigned n, candidate;
	bool taken, used;
	int rv;

	rv = list_names(r, &names, &count, e);
	if (rv != 0)
		return rv;
	for (candidate = 0; candidate < DISK_N_MAX; candidate++) {
		taken = false;
		for (i = 0; i < count && !taken; i++) {
			n = UINT32_MAX;
			used = parse_disk_name(names[i].name, "vm", vmid, &n) ||
			       parse_disk_name(names[i].name, "base", vmid, &n);
			taken = used && n == candidate;
		}
		if (!taken)
			break;
	}
	free_names(names, count);
	if (candidate == DISK_N_MAX)
		return err_set(e, -ENOSPC,
		               "rbd: vmid %u has no free disk number", vmid);
	if (snprintf(out, size, "vm-%u-disk-%u", vmid, candidate) >= (int)size)
		return err_set(e, -ENOSPC, "rbd: image name too long");
	return 0;
}

/* Makes an image named `name`, returning -EEXIST when it exists. */
typedef int (*create_cb)(struct store_rbd *r, const char *name, void *data,
                         struct err *e);

/* Runs create with the given name, or with free names until one is not
 * taken in the meantime; the name made goes to image_out. */
static int create_named(struct store_rbd *r, unsigned vmid, const char *name,
                        create_cb create, void *data, char *image_out,
                        size_t size, struct err *e)
{
	char picked[STORE_RBD_NAME_MAX];
	int attempt, rv;

	rv = check_vmid(vmid, e);
	if (rv != 0)
		return rv;
	if (size < STORE_RBD_NAME_MAX)
		return err_set(e, -ENOSPC,
		               "rbd: name buffer of %zu bytes is too small",
		               size);
	if (name != NULL) {
		rv = check_name("image", name, e);
		if (rv != 0)
			return rv;
		if (!owned_by(name, vmid))
			return err_set(e, -EINVAL,
			               "rbd image %s: a name for vmid %u must "
			               "start with vm-%u- or base-%u-",
			               name, vmid, vmid, vmid);
		rv = create(r, name, data, e);
		return rv != 0 ? rv : copy_out(image_out, size, name, e);
	}
	for (attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
		rv = next_free_disk(r, vmid, picked, sizeof picked, e);
		if (rv != 0)
			return rv;
		rv = create(r, picked, data, e);
		if (rv != -EEXIST)
			break;
	}
	return rv != 0 ? rv : copy_out(image_out, size, picked, e);
}

/* ------------------------------------------------------------------------
 * Images. */

static int create_image(struct store_rbd *r, const char *name, void *data,
                        struct err *e)
{
	uint64_t bytes = *(const uint64_t *)data;
	rbd_image_options_t opts;
	int rv;

	rv = make_options(&opts, e);
	if (rv != 0)
		return rv;
	rv = rbd_create4(r->io, name, bytes, opts);
	rbd_image_options_destroy(opts);
	if (rv < 0)
		return image_err(e, rv, r, name, "rbd_create4");
	return 0;
}

int store_rbd_alloc(struct store_rbd *r, unsigned vmid, uint64_t bytes,
                    const char *name, char *image_out, size_t size,
                    struct err *e)
{
	if (bytes == 0)
		return err_set(e, -EINVAL, "rbd: size 0");
	return create_named(r, vmid, name, create_image, &bytes, image_out,
	                    size, e);
}

int store_rbd_free(struct store_rbd *r, const char *image, struct err *e)
{
	rbd_image_t img;
	rbd_snap_info_t *snaps = NULL;
	struct buf names;
	size_t kids = 0;
	bool has_base = false;
	int count = 0, i, rv;

	rv = check_name("image", image, e);
	if (rv != 0)
		return rv;
	buf_init(&names, 64 * 1024);
	rv = open_image(r, image, NULL, true, &img, e);
	if (rv != 0)
		goto out;
	/* before rbd_remove, which would take the lock from the guest */
	rv = refuse_if_open(r, image, img, "remove it", e);
	if (rv != 0)
		goto out_close;
	rv = list_snaps(r, image, img, &snaps, &count, e);
	if (rv != 0)
		goto out_close;
	for (i = 0; i < count && rv == 0; i++) {
		if (strcmp(snaps[i].name, STORE_RBD_BASE_SNAP) == 0)
			has_base = true;
		else
			rv = buf_printf(&names, "%s%s", names.len ? ", " : "",
			                snaps[i].name);
	}
	if (rv != 0) {
		rv = err_set(e, rv, "rbd: out of memory");
		goto out_close;
	}
	if (names.len > 0) {
		rv = err_set(e, -EBUSY, "rbd image %s has snapshots: %s", image,
		             names.data);
		goto out_close;
	}
	if (has_base) {
		rv = list_children(r, image, img, STORE_RBD_BASE_SNAP, &names,
		                   &kids, e);
		if (rv == 0 && kids > 0)
			rv = err_set(e, -EBUSY,
			             "rbd image %s is the base of linked "
			             "clones: %s",
			             image, names.data);
	}
out_close:
	free_snaps(snaps);
	rbd_close(img);
	if (rv != 0)
		goto out;

	if (has_base) {
		/* A clone made since the check makes unprotect fail: the
		 * template stays whole. */
		rv = open_image(r, image, NULL, false, &img, e);
		if (rv != 0)
			goto out;
		rv = rbd_snap_unprotect(img, STORE_RBD_BASE_SNAP);
		if (rv == -EBUSY)
			rv = err_set(e, rv,
			             "rbd image %s became the base of a linked "
			             "clone",
			             image);
		else if (rv < 0 && rv != -EINVAL) /* -EINVAL: not protected */
			rv = image_err(e, rv, r, image, "rbd_snap_unprotect");
		else if ((rv = rbd_snap_remove(img, STORE_RBD_BASE_SNAP)) < 0)
			rv = image_err(e, rv, r, image, "rbd_snap_remove");
		rbd_close(img);
		if (rv < 0)
			goto out;
	}
	rv = rbd_remove(r->io, image);
	if (rv == -EBUSY)
		rv = err_set(e, rv, "rbd image %s is open by a client", image);
	else if (rv < 0)
		rv = image_err(e, rv, r, image, "rbd_remove");
out:
	buf_free(&names);
	return rv;
}

int store_rbd_resize(struct store_rbd *r, const char *image, uint64_t bytes,
                     struct err *e)
{
	rbd_image_t img;
	uint64_t now;
	int rv;

	rv = check_name("image", image, e);
	if (rv != 0)
		return rv;
	if (bytes == 0)
		return err_set(e, -EINVAL, "rbd: size 0");
	rv = open_image(r, image, NULL, false, &img, e);
	if (rv != 0)
		return rv;
	rv = rbd_get_size(img, &now);
	if (rv < 0) {
		rv = image_err(e, rv, r, image, "rbd_get_size");
	} else if (bytes < now) {
		rv = err_set(e, -EINVAL,
		             "rbd image %s: shrinking from %" PRIu64
		             " to %" PRIu64 " bytes is refused",
		             image, now, bytes);
	} else if (bytes > now) {
		rv = rbd_resize2(img, bytes, false, NULL, NULL);
		if (rv < 0)
			rv = image_err(e, rv, r, image, "rbd_resize2");
	}
	rbd_close(img);
	return rv;
}

int store_rbd_info(struct store_rbd *r, const char *image,
                   struct store_rbd_image *out, struct err *e)
{
	rbd_image_t img;
	rbd_linked_image_spec_t parent;
	rbd_snap_spec_t parent_snap;
	int rv;

	rv = check_name("image", image, e);
	if (rv != 0)
		return rv;
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", image);
	rv = open_image(r, image, NULL, true, &img, e);
	if (rv != 0)
		return rv;
	rv = rbd_get_size(img, &out->size);
	if (rv < 0) {
		rv = image_err(e, rv, r, image, "rbd_get_size");
		goto out;
	}
	rv = rbd_get_parent(img, &parent, &parent_snap);
	if (rv == 0) {
		snprintf(out->parent, sizeof out->parent, "%s@%s",
		         parent.image_name, parent_snap.name);
		rbd_linked_image_spec_cleanup(&parent);
		rbd_snap_spec_cleanup(&parent_snap);
	} else if (rv == -ENOENT) {
		rv = 0; /* no parent */
	} else {
		rv = image_err(e, rv, r, image, "rbd_get_parent");
	}
out:
	rbd_close(img);
	return rv;
}

int store_rbd_list(struct store_rbd *r, unsigned vmid, store_rbd_image_cb cb,
                   void *data, struct err *e)
{
	rbd_image_spec_t *names;
	struct store_rbd_image entry;
	rbd_image_t img;
	size_t count, i;
	int rv;

	rv = list_names(r, &names, &count, e);
	if (rv != 0)
		return rv;
	for (i = 0; i < count && rv == 0; i++) {
		if (vmid != 0 && !owned_by(names[i].name, vmid))
			continue;
		if (!name_ok(names[i].name, STORE_RBD_NAME_MAX))
			continue; /* not made by us, and not nameable */
		memset(&entry, 0, sizeof entry);
		snprintf(entry.name, sizeof entry.name, "%s", names[i].name);
		rv = rbd_open_read_only(r->io, names[i].name, &img, NULL);
		if (rv == -ENOENT) {
			rv = 0; /* removed since the listing */
			continue;
		}
		if (rv < 0) {
			rv = image_err(e, rv, r, names[i].name,
			               "rbd_open_read_only");
			break;
		}
		rv = rbd_get_size(img, &entry.size);
		rbd_close(img);
		if (rv < 0) {
			rv = image_err(e, rv, r, names[i].name, "rbd_get_size");
			break;
		}
		rv = cb(data, &entry);
	}
	free_names(names, count);
	return rv;
}

/* ------------------------------------------------------------------------
 * Snapshots. */

/* The names checked (a rollback may name a template's own snapshot), then
 * image opened for writing. */
static int open_for_snap(struct store_rbd *r, const char *image,
                         const char *snap, bool is_rollback, rbd_image_t *img,
                         struct err *e)
{
	int rv = check_name("image", image, e);

	if (rv == 0)
		rv = is_rollback ? check_name("snapshot", snap, e)
		                 : check_snap_name(snap, e);
	/* librbd would ask a running guest's librbd for the lock, and get
	 * it: the guest's disk would change under it. */
	if (rv == 0 && is_rollback)
		rv = refuse_if_open_by_name(r, image, "roll back", e);
	if (rv == 0)
		rv = open_image(r, image, NULL, false, img, e);
	return rv;
}

int store_rbd_snap_create(struct store_rbd *r, const char *image,
                          const char *snap, struct err *e)
{
	rbd_image_t img;
	int rv = open_for_snap(r, image, snap, false, &img, e);

	if (rv != 0)
		return rv;
	rv = rbd_snap_create(img, snap);
	if (rv < 0)
		rv = image_err(e, rv, r, image, "rbd_snap_create");
	rbd_close(img);
	return rv;
}

int store_rbd_snap_rollback(struct store_rbd *r, const char *image,
                            const char *snap, struct err *e)
{
	rbd_image_t img;
	int rv = open_for_snap(r, image, snap, true, &img, e);

	if (rv != 0)
		return rv;
	rv = rbd_snap_rollback(img, snap);
	if (rv < 0)
		rv = image_err(e, rv, r, image, "rbd_snap_rollback");
	rbd_close(img);
	return rv;
}

int store_rbd_snap_delete(struct store_rbd *r, const char *image,
                          const char *snap, struct err *e)
{
	rbd_image_t img;
	int rv = open_for_snap(r, image, snap, false, &img, e);

	if (rv != 0)
		return rv;
	rv = rbd_snap_remove(img, snap);
	if (rv == -EBUSY)
		rv = err_set(e, rv, "rbd image %s: snapshot %s is protected",
		             image, snap);
	else if (rv < 0)
		rv = image_err(e, rv, r, image, "rbd_snap_remove");
	rbd_close(img);
	return rv;
}

int store_rbd_snap_list(struct store_rbd *r, const char *image,
                        store_rbd_snap_cb cb, void *data, struct err *e)
{
	rbd_image_t img;
	rbd_snap_info_t *snaps = NULL;
	rbd_snap_namespace_type_t type;
	struct store_rbd_snap entry;
	int count = 0, i, prot, rv;

	rv = check_name("image", image, e);
	if (rv == 0)
		rv = open_image(r, image, NULL, true, &img, e);
	if (rv != 0)
		return rv;
	rv = list_snaps(r, image, img, &snaps, &count, e);
	for (i = 0; i < count && rv == 0; i++) {
		/* Only user snapshots: clone v2 keeps removed parents'
		 * snapshots in a trash namespace until their clones go. */
		rv = rbd_snap_get_namespace_type(img, snaps[i].id, &type);
		if (rv < 0) {
			rv = image_err(e, rv, r, image,
			               "rbd_snap_get_namespace_type");
			break;
		}
		if (type != RBD_SNAP_NAMESPACE_TYPE_USER)
			continue;
		rv = rbd_snap_is_protected(img, snaps[i].name, &prot);
		if (rv < 0) {
			rv = image_err(e, rv, r, image,
			               "rbd_snap_is_protected");
			break;
		}
		memset(&entry, 0, sizeof entry);
		snprintf(entry.name, sizeof entry.name, "%s", snaps[i].name);
		entry.id = snaps[i].id;
		entry.size = snaps[i].size;
		entry.is_protected = prot != 0;
		rv = cb(data, &entry);
	}
	free_snaps(snaps);
	rbd_close(img);
	return rv;
}

/* ------------------------------------------------------------------------
 * Templates and clones. */

int store_rbd_template(struct store_rbd *r, const char *image, char *base_out,
                       size_t size, struct err *e)
{
	char base[STORE_RBD_NAME_MAX];
	rbd_image_t img;
	bool exists;
	int prot, rv;

	rv = check_name("image", image, e);
	if (rv != 0)
		return rv;
	if (strncmp(image, "vm-", 3) == 0) {
		if (snprintf(base, sizeof base, "base-%s", image + 3) >=
		    (int)sizeof base)
			return err_set(e, -EINVAL,
			               "rbd image %s: name too long for a "
			               "template",
			               image);
		rv = refuse_if_open_by_name(r, image, "make a template", e);
		if (rv != 0)
			return rv;
		rv = rbd_rename(r->io, image, base);
		if (rv < 0)
			return image_err(e, rv, r, image, "rbd_rename");
	} else if (strncmp(image, "base-", 5) == 0) {
		snprintf(base, sizeof base, "%s", image);
	} else {
		return err_set(e, -EINVAL,
		               "rbd image %s: only vm- images become "
		               "templates",
		               image);
	}

	rv = open_image(r, base, NULL, false, &img, e);
	if (rv != 0)
		return rv;
	rv = rbd_snap_exists(img, STORE_RBD_BASE_SNAP, &exists);
	if (rv < 0) {
		rv = image_err(e, rv, r, base, "rbd_snap_exists");
		goto out;
	}
	if (!exists) {
		rv = rbd_snap_create(img, STORE_RBD_BASE_SNAP);
		if (rv < 0) {
			rv = image_err(e, rv, r, base, "rbd_snap_create");
			goto out;
		}
	}
	rv = rbd_snap_is_protected(img, STORE_RBD_BASE_SNAP, &prot);
	if (rv < 0) {
		rv = image_err(e, rv, r, base, "rbd_snap_is_protected");
		goto out;
	}
	if (!prot) {
		rv = rbd_snap_protect(img, STORE_RBD_BASE_SNAP);
		if (rv < 0)
			rv = image_err(e, rv, r, base, "rbd_snap_protect");
	}
out:
	rbd_close(img);
	return rv != 0 ? rv : copy_out(base_out, size, base, e);
}

struct clone_linked {
	const char *base;
};

static int create_linked(struct store_rbd *r, const char *name, void *data,
                         struct err *e)
{
	const struct clone_linked *c = data;
	rbd_image_options_t opts;
	int rv;

	rv = make_options(&opts, e);
	if (rv != 0)
		return rv;
	rv = rbd_clone3(r->io, c->base, STORE_RBD_BASE_SNAP, r->io, name, opts);
	rbd_image_options_destroy(opts);
	if (rv < 0)
		return image_err(e, rv, r, name, "rbd_clone3");
	return 0;
}

int store_rbd_clone_linked(struct store_rbd *r, const char *base, unsigned vmid,
                           const char *name, char *image_out, size_t size,
                           struct err *e)
{
	struct clone_linked c = {.base = base};
	rbd_image_t img;
	bool exists = false;
	int prot = 0, rv;

	rv = check_name("image", base, e);
	if (rv == 0)
		rv = open_image(r, base, NULL, true, &img, e);
	if (rv != 0)
		return rv;
	rv = rbd_snap_exists(img, STORE_RBD_BASE_SNAP, &exists);
	if (rv == 0 && exists)
		rv = rbd_snap_is_protected(img, STORE_RBD_BASE_SNAP, &prot);
	rbd_close(img);
	if (rv < 0)
		return image_err(e, rv, r, base, "rbd_snap_is_protected");
	if (!exists || !prot)
		return err_set(
		        e, -EINVAL,
		        "rbd image %s is not a template (no protected " STORE_RBD_BASE_SNAP
		        " snapshot)",
		        base);
	return create_named(r, vmid, name, create_linked, &c, image_out, size,
	                    e);
}

static int create_copy(struct store_rbd *r, const char *name, void *data,
                       struct err *e)
{
	rbd_image_t src = data;
	rbd_image_options_t opts;
	int rv;

	rv = make_options(&opts, e);
	if (rv != 0)
		return rv;
	rv = rbd_copy3(src, r->io, name, opts);
	rbd_image_options_destroy(opts);
	if (rv < 0)
		return image_err(e, rv, r, name, "rbd_copy3");
	return 0;
}

int store_rbd_clone_full(struct store_rbd *r, const char *image,
                         const char *snap, unsigned vmid, const char *name,
                         char *image_out, size_t size, struct err *e)
{
	rbd_image_t src;
	int rv;

	rv = check_name("image", image, e);
	if (rv == 0 && snap != NULL)
		rv = check_name("snapshot", snap, e);
	if (rv == 0)
		rv = open_image(r, image, snap, true, &src, e);
	if (rv != 0)
		return rv;
	rv = create_named(r, vmid, name, create_copy, src, image_out, size, e);
	rbd_close(src);
	return rv;
}

/* ------------------------------------------------------------------------
 * Fencing. */

int store_rbd_client_addr(struct store_rbd *r, char *out, size_t size,
                          struct err *e)
{
	char *addrs = NULL;
	int rv;

	rv = rados_getaddrs(r->cluster, &addrs);
	if (rv < 0)
		return err_sys(e, rv, "rbd: rados_getaddrs");
	rv = copy_out(out, size, addrs, e);
	rados_buffer_free(addrs);
	return rv;
}

static bool addr_ok(const char *addr)
{
	size_t i;

	for (i = 0; addr[i] != '\0'; i++)
		if (i + 1 >= STORE_RBD_ADDR_MAX ||
		    !(isxdigit((unsigned char)addr[i]) ||
		      strchr(".:/[],v", addr[i]) != NULL))
			return false;
	return i > 0;
}

bool store_rbd_host_fenceable(const char *host)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
	                                         0, 0, 0, 0, 0xff, 0xff};
	unsigned char b[16];
	const unsigned char *v4 = NULL;
	size_t i;

	if (inet_pton(AF_INET, host, b) == 1) {
		v4 = b;
	} else if (inet_pton(AF_INET6, host, b) == 1) {
		if (memcmp(b, mapped, sizeof mapped) == 0) {
			v4 = b + 12;
		} else {
			for (i = 0; i < 15 && b[i] == 0; i++)
				;
			if (i == 15 && b[15] <= 1) /* :: and ::1 */
				return false;
			return !(b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
		}
	} else {
		return false;
	}
	return !(v4[0] == 127 || v4[0] == 0 || (v4[0] == 169 && v4[1] == 254));
}

int store_rbd_addr_host(const char *addr, char *out, size_t size, struct err *e)
{
	const char *p = addr, *end, *colon;
	size_t len;

	/* An address vector "[v2:H:P/N,v1:H:P/N]": its first entry. */
	if (p[0] == '[' &&
	    (strncmp(p + 1, "v1:", 3) == 0 || strncmp(p + 1, "v2:", 3) == 0 ||
	     strncmp(p + 1, "any:", 4) == 0))
		p++;
	if (strncmp(p, "v1:", 3) == 0 || strncmp(p, "v2:", 3) == 0)
		p += 3;
	else if (strncmp(p, "any:", 4) == 0)
		p += 4;
	end = p + strcspn(p, ",]/");
	if (p[0] == '[') { /* [IPv6]:PORT */
		p++;
		end = strchr(p, ']');
		if (end == NULL)
			return err_set(e, -EINVAL,
			               "rbd: no host in client address '%s'",
			               addr);
	} else {
		colon = NULL;
		for (const char *q = p; q < end; q++)
			if (*q == ':')
				colon = q;
		if (colon != NULL)
			end = colon;
	}
	len = (size_t)(end - p);
	if (len == 0)
		return err_set(e, -EINVAL,
		               "rbd: no host in client address '%s'", addr);
	if (len >= size)
		return err_set(e, -ENOSPC, "rbd: client address '%s' too long",
		               addr);
	memcpy(out, p, len);
	out[len] = '\0';
	if (!addr_ok(out))
		return err_set(e, -EINVAL,
		               "rbd: bad host in client address '%s'", addr);
	return 0;
}

/* Runs a monitor command given as a JSON object (taken over); the reply's
 * data goes to *reply (mem_free it) when reply is not NULL. The message
 * carries the monitor's own words. */
static int mon_command(struct store_rbd *r, json_t *cmd, const char *what,
                       char **reply, size_t *reply_len, struct err *e)
{
	char *text, *outbuf = NULL, *outs = NULL;
	size_t outbuf_len = 0, outs_len = 0;
	const char *argv[1];
	int rv;

	if (cmd == NULL)
		return err_set(e, -ENOMEM, "rbd: out of memory");
	text = json_to_text(cmd);
	json_decref(cmd);
	if (text == NULL)
		return err_set(e, -ENOMEM, "rbd: out of memory");
	argv[0] = text;
	rv = rados_mon_command(r->cluster, argv, 1, "", 0, &outbuf, &outbuf_len,
	                       &outs, &outs_len);
	mem_free(text);
	if (rv < 0) {
		if (outs_len > 0)
			err_set(e, rv, "rbd: %s: %.*s", what,
			        (int)(outs_len > 300 ? 300 : outs_len), outs);
		else
			err_sys(e, rv, "rbd: %s", what);
	} else if (reply != NULL) {
		if (outbuf_len > MON_REPLY_MAX) {
			rv = err_set(e, -E2BIG, "rbd: %s: reply of %zu bytes",
			             what, outbuf_len);
		} else {
			*reply = mem_strndup(outbuf != NULL ? outbuf : "",
			                     outbuf_len);
			*reply_len = outbuf_len;
			if (*reply == NULL)
				rv = err_set(e, -ENOMEM, "rbd: out of memory");
		}
	}
	rados_buffer_free(outbuf);
	rados_buffer_free(outs);
	return rv;
}

int store_rbd_blocklist_add(struct store_rbd *r, const char *addr,
                            unsigned expire_s, struct err *e)
{
	json_t *cmd;
	char what[STORE_RBD_ADDR_MAX + 32];
	int rv;

	if (addr == NULL || !addr_ok(addr))
		return err_set(e, -EINVAL, "rbd: bad client address '%s'",
		               printable(addr));
	snprintf(what, sizeof what, "blocklist %s", addr);
	cmd = json_pack("{s:s, s:s, s:s}", "prefix", "osd blocklist",
	                "blocklistop", "add", "addr", addr);
	if (cmd != NULL && expire_s > 0 &&
	    json_object_set_new(cmd, "expire", json_real(expire_s)) != 0) {
		json_decref(cmd);
		cmd = NULL;
	}
	rv = mon_command(r, cmd, what, NULL, NULL, e);
	if (rv != 0)
		return rv;
	/* Our next ops, and those of clients connecting from now on, carry
	 * an epoch with the entry: an OSD serves them only once it has that
	 * map, and from then on refuses the fenced client. */
	rv = rados_wait_for_latest_osdmap(r->cluster);
	if (rv < 0)
		return err_sys(e, rv, "rbd: %s: rados_wait_for_latest_osdmap",
		               what);
	return 0;
}

int store_rbd_blocklist_rm(struct store_rbd *r, const char *addr, struct err *e)
{
	char what[STORE_RBD_ADDR_MAX + 32];

	if (addr == NULL || !addr_ok(addr))
		return err_set(e, -EINVAL, "rbd: bad client address '%s'",
		               printable(addr));
	snprintf(what, sizeof what, "unblocklist %s", addr);
	return mon_command(r,
	                   json_pack("{s:s, s:s, s:s}", "prefix",
	                             "osd blocklist", "blocklistop", "rm",
	                             "addr", addr),
	                   what, NULL, NULL, e);
}

/* Copies the i-th of the NUL-separated strings in list[0..len). */
static void nth_string(const char *list, size_t len, size_t i, char *out,
                       size_t size)
{
	size_t at = 0;

	while (i > 0 && at < len) {
		at += strnlen(list + at, len - at) + 1;
		i--;
	}
	if (at >= len)
		out[0] = '\0';
	else
		snprintf(out, size, "%.*s", (int)strnlen(list + at, len - at),
		         list + at);
}

int store_rbd_lock_owners(struct store_rbd *r, const char *image,
                          struct store_rbd_locker *out, size_t max,
                          size_t *count, struct err *e)
{
	rbd_image_t img;
	char *tag = NULL, *clients = NULL, *cookies = NULL, *addrs = NULL;
	size_t tag_len = 256, clients_len = 1024, cookies_len = 1024,
	       addrs_len = 1024, i;
	ssize_t n = -ERANGE;
	int exclusive = 0, attempt, rv;

	*count = 0;
	rv = check_name("image", image, e);
	if (rv == 0)
		rv = open_image(r, image, NULL, true, &img, e);
	if (rv != 0)
		return rv;
	for (attempt = 0; attempt < LIST_ATTEMPTS && n == -ERANGE; attempt++) {
		if (tag_len > LOCKERS_BUF_MAX ||
		    clients_len > LOCKERS_BUF_MAX ||
		    cookies_len > LOCKERS_BUF_MAX ||
		    addrs_len > LOCKERS_BUF_MAX)
			break;
		mem_free(tag);
		mem_free(clients);
		mem_free(cookies);
		mem_free(addrs);
		tag = mem_alloc(tag_len);
		clients = mem_alloc(clients_len);
		cookies = mem_alloc(cookies_len);
		addrs = mem_alloc(addrs_len);
		if (tag == NULL || clients == NULL || cookies == NULL ||
		    addrs == NULL) {
			n = -ENOMEM;
			break;
		}
		n = rbd_list_lockers(img, &exclusive, tag, &tag_len, clients,
		                     &clients_len, cookies, &cookies_len, addrs,
		                     &addrs_len);
	}
	if (n == -ENOMEM) {
		rv = err_set(e, -ENOMEM, "rbd: out of memory");
	} else if (n < 0) {
		rv = image_err(e, n == -ERANGE ? -E2BIG : (int)n, r, image,
		               "rbd_list_lockers");
	} else {
		*count = (size_t)n;
		for (i = 0; i < (size_t)n && i < max; i++) {
			memset(&out[i], 0, sizeof out[i]);
			nth_string(clients, clients_len, i, out[i].client,
			           sizeof out[i].client);
			nth_string(cookies, cookies_len, i, out[i].cookie,
			           sizeof out[i].cookie);
			nth_string(addrs, addrs_len, i, out[i].addr,
			           sizeof out[i].addr);
			out[i].is_exclusive = exclusive != 0;
		}
	}
	mem_free(tag);
	mem_free(clients);
	mem_free(cookies);
	mem_free(addrs);
	rbd_close(img);
	return rv;
}

/* ------------------------------------------------------------------------
 * Space and attachment. */

int store_rbd_status(struct store_rbd *r, uint64_t *total, uint64_t *used,
                     uint64_t *avail, struct err *e)
{
	char *reply = NULL;
	size_t reply_len = 0, i;
	json_t *root = NULL, *pools, *pool, *stats;
	const char *name;
	int64_t stored, max_avail;
	int rv;

	rv = mon_command(
	        r, json_pack("{s:s, s:s}", "prefix", "df", "format", "json"),
	        "df", &reply, &reply_len, e);
	if (rv != 0)
		return rv;
	rv = json_parse_bounded(reply, reply_len, MON_REPLY_MAX,
	                        JSON_DEFAULT_MAX_DEPTH, &root, e);
	mem_free(reply);
	if (rv != 0)
		return err_wrap(e, "rbd: df");
	pools = json_object_get(root, "pools");
	rv = err_set(e, -ENOENT, "rbd: df does not list pool %s", r->pool);
	json_array_foreach(pools, i, pool)
	{
		if (json_get_str(pool, "name", &name, NULL) != 0 ||
		    strcmp(name, r->pool) != 0)
			continue;
		stats = json_object_get(pool, "stats");
		rv = json_get_int(stats, "stored", 0, INT64_MAX, &stored, e);
		if (rv == 0)
			rv = json_get_int(stats, "max_avail", 0, INT64_MAX,
			                  &max_avail, e);
		if (rv != 0) {
			err_wrap(e, "rbd: df of pool %s", r->pool);
			break;
		}
		*used = (uint64_t)stored;
		*avail = (uint64_t)max_avail;
		*total = *used + *avail;
		err_clear(e);
		break;
	}
	json_decref(root);
	return rv;
}

/* Parses "HOST", "HOST:PORT", "[V6]", "[V6]:PORT", with an optional
 * "/NONCE", into a server; no port means the msgr1 default, 6789. */
static int parse_server(const char *s, size_t len, struct store_rbd_server *out,
                        struct err *e)
{
	const char *host = s, *colon = NULL, *end = s + len, *slash;
	size_t host_len;
	unsigned long port = 6789;
	char digits[8];

	slash = memchr(s, '/', len);
	if (slash != NULL)
		end = slash;
	if (end > s && s[0] == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));

		if (close == NULL)
			goto bad;
		host = s + 1;
		host_len = (size_t)(close - host);
		if (close + 1 < end) {
			if (close[1] != ':')
				goto bad;
			colon = close + 1;
		}
	} else {
		const char *c = memchr(s, ':', (size_t)(end - s));

		/* two colons: a bare IPv6 address, no port */
		if (c != NULL && memchr(c + 1, ':', (size_t)(end - c - 1)))
			c = NULL;
		colon = c;
		host_len = (size_t)((colon != NULL ? colon : end) - host);
	}
	if (colon != NULL) {
		size_t n = (size_t)(end - colon - 1);

		if (n == 0 || n >= sizeof digits)
			goto bad;
		memcpy(digits, colon + 1, n);
		digits[n] = '\0';
		if (strspn(digits, "0123456789") != n)
			goto bad;
		port = strtoul(digits, NULL, 10);
		if (port == 0 || port > 65535)
			goto bad;
	}
	if (host_len == 0 || host_len >= sizeof out->host)
		goto bad;
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	if (strspn(out->host,
	           "0123456789abcdefABCDEF.:-"
	           "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ") != host_len)
		goto bad;
	out->port = (uint16_t)port;
	return 0;
bad:
	return err_set(e, -EINVAL, "rbd: bad monitor address '%.*s'", (int)len,
	               s);
}

/* One monitor of mon_host: a plain address, a typed "v1:..." / "v2:...",
 * or a vector "[v2:...,v1:...]" of which the msgr1 address is taken (QEMU
 * cannot say msgr2 on a port other than 3300). */
static int parse_monitor(const char *s, size_t len,
                         struct store_rbd_server *out, struct err *e)
{
	const char *p, *end = s + len, *comma;
	bool is_vector = len > 4 && s[0] == '[' &&
	                 (strncmp(s + 1, "v1:", 3) == 0 ||
	                  strncmp(s + 1, "v2:", 3) == 0);
	bool has_v2 = false;
	struct store_rbd_server v2 = {.port = 0};
	int rv;

	if (!is_vector) {
		if (len > 3 && strncmp(s, "v1:", 3) == 0)
			return parse_server(s + 3, len - 3, out, e);
		if (len > 3 && strncmp(s, "v2:", 3) == 0) {
			rv = parse_server(s + 3, len - 3, out, e);
			if (rv == 0 && out->port != 3300)
				goto v2_only;
			return rv;
		}
		return parse_server(s, len, out, e);
	}
	if (s[len - 1] != ']')
		return err_set(e, -EINVAL, "rbd: bad monitor address '%.*s'",
		               (int)len, s);
	end = s + len - 1;
	for (p = s + 1; p < end; p = comma + 1) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == NULL)
			comma = end;
		if (comma - p > 3 && strncmp(p, "v1:", 3) == 0)
			return parse_server(p + 3, (size_t)(comma - p - 3), out,
			                    e);
		if (comma - p > 3 && strncmp(p, "v2:", 3) == 0) {
			rv = parse_server(p + 3, (size_t)(comma - p - 3), &v2,
			                  e);
			if (rv != 0)
				return rv;
			has_v2 = true;
		}
	}
	if (has_v2 && v2.port == 3300) {
		*out = v2;
		return 0;
	}
v2_only:
	return err_set(e, -EINVAL,
	               "rbd: monitor '%.*s' has no msgr1 address and no "
	               "msgr2 one on port 3300: QEMU cannot reach it",
	               (int)len, s);
}

static int parse_monhost(const char *monhost, struct store_rbd_attach *out,
                         struct err *e)
{
	const char *p = monhost, *start;
	int depth;
	int rv;

	out->server_count = 0;
	for (;;) {
		while (*p != '\0' && strchr(" \t,;", *p) != NULL)
			p++;
		if (*p == '\0')
			break;
		start = p;
		depth = 0;
		for (; *p != '\0'; p++) {
			if (*p == '[')
				depth++;
			else if (*p == ']')
				depth--;
			else if (depth == 0 && strchr(" \t,;", *p) != NULL)
				break;
		}
		if (out->server_count == STORE_RBD_SERVERS_MAX)
			return err_set(e, -EINVAL,
			               "rbd: more than %d monitors in monhost",
			               STORE_RBD_SERVERS_MAX);
		rv = parse_monitor(start, (size_t)(p - start),
		                   &out->servers[out->server_count], e);
		if (rv != 0)
			return rv;
		out->server_count++;
	}
	if (out->server_count == 0)
		return err_set(e, -EINVAL, "rbd: monhost names no monitor");
	return 0;
}

static int write_key_file(const char *path, const char *key, struct err *e)
{
	size_t len = strlen(key), done = 0;
	ssize_t n;
	int fd, rv = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd < 0)
		return err_sys(e, -errno, "rbd: key file %s", path);
	/* An existing file keeps its mode through open: narrow it first. */
	if (fchmod(fd, 0600) != 0)
		rv = err_sys(e, -errno, "rbd: chmod key file %s", path);
	while (rv == 0 && done < len) {
		n = write(fd, key + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rv = err_sys(e, -errno, "rbd: write key file %s", path);
		else
			done += (size_t)n;
	}
	if (close(fd) != 0 && rv == 0)
		rv = err_sys(e, -errno, "rbd: close key file %s", path);
	return rv;
}

int store_rbd_attach_spec(struct store_rbd *r, const char *image,
                          const char *key_file, struct store_rbd_attach *out,
                          struct err *e)
{
	struct store_rbd_image info;
	int rv;

	memset(out, 0, sizeof *out);
	if (key_file == NULL || key_file[0] != '/')
		return err_set(e, -EINVAL,
		               "rbd: the key file must be an absolute path");
	rv = store_rbd_info(r, image, &info, e);
	if (rv != 0)
		return rv;
	rv = parse_monhost(r->monhost, out, e);
	if (rv != 0)
		return rv;
	snprintf(out->pool, sizeof out->pool, "%s", r->pool);
	snprintf(out->namespace_name, sizeof out->namespace_name, "%s", r->ns);
	snprintf(out->image, sizeof out->image, "%s", image);
	snprintf(out->id, sizeof out->id, "%s", r->user);
	snprintf(out->monhost, sizeof out->monhost, "%s", r->monhost);
	return write_key_file(key_file, r->key, e);
}
