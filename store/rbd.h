/* store/rbd: the Ceph RBD backend — images, snapshots, templates, clones
 * and fencing — over librados/librbd.
 *
 * Every call blocks on network round trips, for seconds when the cluster is
 * sick: callers run them on cairn's storage pool, never on the loop nor on
 * libuv's threadpool. A connection may be used by several pool threads at
 * once (librados and librbd lock internally; the handle is not changed
 * after store_rbd_connect).
 *
 * Names of images and snapshots are 1..STORE_RBD_NAME_MAX-1 characters of
 * [A-Za-z0-9._-] not starting with '.' or '-'; anything else is refused
 * with -EINVAL before it reaches Ceph. Errors are negative errno values with
 * a message naming the image and the librbd call:
 *   "rbd image vm-100-disk-0: rbd_open: No such file or directory". */
#ifndef CAIRN_STORE_RBD_H
#define CAIRN_STORE_RBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lib.h"

#define STORE_RBD_NAME_MAX    96 /* librbd's RBD_MAX_IMAGE_NAME_SIZE */
#define STORE_RBD_MONHOST_MAX 1024
#define STORE_RBD_ADDR_MAX    128
#define STORE_RBD_KEY_MAX     128 /* a cephx key, base64 */
#define STORE_RBD_SERVERS_MAX 8
#define STORE_RBD_VMID_MAX    999999999u
/* The protected snapshot a template's linked clones hang from. */
#define STORE_RBD_BASE_SNAP "__base__"

struct store_rbd_config {
	/* Monitors, in librados mon_host syntax: "10.0.0.1 10.0.0.2",
	 * "10.0.0.1:6789;10.0.0.2:6789" or "[v2:10.0.0.1:3300,v1:...]".
	 * Required. */
	const char *monhost;
	const char *username; /* without "client."; NULL: "admin" */
	/* Exactly one of these: the path of a keyring file holding
	 * [client.USERNAME] key = ..., or the base64 key itself. */
	const char *keyring;
	const char *key;
	const char *pool;           /* NULL: "rbd" */
	const char *namespace_name; /* NULL or "": the pool's default one */
	/* Seconds before a dead monitor or OSD turns into an error
	 * (client_mount_timeout, rados_mon_op_timeout, rados_osd_op_timeout).
	 * 0: 5. At most 300. */
	unsigned timeout_s;
};

/* Checks one connection setting before it is stored, by the rules
 * store_rbd_connect applies: option "monhost" (printable, below
 * STORE_RBD_MONHOST_MAX bytes), "pool" or "namespace" (names below
 * STORE_RBD_NAME_MAX; namespace may be ""), or "username" (a name below
 * 64 bytes, without "client."). -EINVAL with a message that says what is
 * allowed; an unknown option is -EINVAL too. */
int store_rbd_option_check(const char *option, const char *value,
                           struct err *e);

/* A connection to one pool (and namespace) as one user. */
struct store_rbd;

/* Connects: fails after about timeout_s when no monitor answers, with
 * -ENOENT when the pool does not exist, -EINVAL on a bad config (the
 * message names the field). On success *out is the caller's, released with
 * store_rbd_close. The config's strings are copied. */
int store_rbd_connect(const struct store_rbd_config *c, struct store_rbd **out,
                      struct err *e);
/* Closes the connection (NULL: nothing) and wipes the key from memory. */
void store_rbd_close(struct store_rbd *r);

/* ------------------------------------------------------------------------
 * Images. */

struct store_rbd_image {
	char name[STORE_RBD_NAME_MAX];
	uint64_t size; /* bytes */
	/* store_rbd_info only: "IMAGE@SNAP" of a linked clone, else "". */
	char parent[2 * STORE_RBD_NAME_MAX];
};

/* Creates an image of `bytes` (> 0) for guest vmid (1..STORE_RBD_VMID_MAX)
 * with layering, exclusive-lock, object-map, fast-diff and deep-flatten.
 * name NULL picks the first free vm-VMID-disk-N (N from 0, skipping names
 * of base- images too); a given name must start with "vm-VMID-" or
 * "base-VMID-". The name made is written to image_out (size bytes, at
 * least STORE_RBD_NAME_MAX). -EEXIST when a given name exists. */
int store_rbd_alloc(struct store_rbd *r, unsigned vmid, uint64_t bytes,
                    const char *name, char *image_out, size_t size,
                    struct err *e);
/* Removes an image. Refused with -EBUSY, naming them, while it has
 * snapshots (other than a template's own __base__, removed with it) or
 * linked clones, or while a client has it open. */
int store_rbd_free(struct store_rbd *r, const char *image, struct err *e);
/* Grows an image to `bytes`; the same size is a no-op, a smaller one
 * -EINVAL (shrinking would cut off a guest's file system). */
int store_rbd_resize(struct store_rbd *r, const char *image, uint64_t bytes,
                     struct err *e);
int store_rbd_info(struct store_rbd *r, const char *image,
                   struct store_rbd_image *out, struct err *e);

/* Called once per image; a non-zero return stops the listing and is
 * returned by store_rbd_list. */
typedef int (*store_rbd_image_cb)(void *data,
                                  const struct store_rbd_image *image);
/* Lists the images of the pool (namespace) with their sizes, in librbd's
 * order; vmid non-zero keeps only vm-VMID-* and base-VMID-*. Images
 * removed while listing are skipped. */
int store_rbd_list(struct store_rbd *r, unsigned vmid, store_rbd_image_cb cb,
                   void *data, struct err *e);

/* ------------------------------------------------------------------------
 * Snapshots. The name __base__ is reserved for templates. */

struct store_rbd_snap {
	char name[STORE_RBD_NAME_MAX];
	uint64_t id;
	uint64_t size; /* the image's size when it was taken */
	bool is_protected;
};

typedef int (*store_rbd_snap_cb)(void *data, const struct store_rbd_snap *snap);

int store_rbd_snap_create(struct store_rbd *r, const char *image,
                          const char *snap, struct err *e);
/* Refused with -EBUSY while a client (a running guest) has the image open:
 * librbd would take the image's lock from it and change its disk under
 * it. */
int store_rbd_snap_rollback(struct store_rbd *r, const char *image,
                            const char *snap, struct err *e);
int store_rbd_snap_delete(struct store_rbd *r, const char *image,
                          const char *snap, struct err *e);
int store_rbd_snap_list(struct store_rbd *r, const char *image,
                        store_rbd_snap_cb cb, void *data, struct err *e);

/* ------------------------------------------------------------------------
 * Templates and clones. */

/* Turns vm-VMID-disk-N into the template base-VMID-disk-N: renames it and
 * creates and protects its __base__ snapshot; -EBUSY while a client has
 * it open. Repeating it on the base- image finishes an interrupted
 * conversion. The base name goes to base_out. */
int store_rbd_template(struct store_rbd *r, const char *image, char *base_out,
                       size_t size, struct err *e);
/* A linked clone of template `base` (its protected __base__ snapshot) for
 * guest vmid; name as for store_rbd_alloc. */
int store_rbd_clone_linked(struct store_rbd *r, const char *base, unsigned vmid,
                           const char *name, char *image_out, size_t size,
                           struct err *e);
/* A full, independent copy of `image` (at snapshot `snap` when not NULL)
 * for guest vmid; name as for store_rbd_alloc. */
int store_rbd_clone_full(struct store_rbd *r, const char *image,
                         const char *snap, unsigned vmid, const char *name,
                         char *image_out, size_t size, struct err *e);

/* ------------------------------------------------------------------------
 * Fencing: the second layer after a node has lost its lease. The HA
 * manager blocklists a dead node's RADOS client before it restarts that
 * node's guests elsewhere, so that a node that was only cut off cannot
 * write to their disks any more; it removes the entry when the node
 * rejoins. */

/* This connection's client address as the OSDs see it
 * ("127.0.0.1:0/3710147553"): what another node blocklists to fence this
 * one. */
int store_rbd_client_addr(struct store_rbd *r, char *out, size_t size,
                          struct err *e);
/* The host of a client address ("10.0.0.2:0/3710147553", "[fd00::2]:0/12",
 * optionally "v1:"/"v2:"/"any:"-prefixed): "10.0.0.2", "fd00::2". -EINVAL
 * when it has none; -ENOSPC when out is too small. */
int store_rbd_addr_host(const char *addr, char *out, size_t size,
                        struct err *e);
/* Whether a host (from store_rbd_addr_host) can stand for one node in a
 * fence: not loopback, unspecified or link-local (what every host has, or
 * not what the OSDs see of a remote one), and an IPv4 or IPv6 address. */
bool store_rbd_host_fenceable(const char *host);
/* Blocklists addr — one client ("IP:PORT/NONCE") or every client of a host
 * (a bare "IP") — for expire_s seconds (0: the cluster's default, an hour).
 * Takes effect on each OSD when it has the new OSD map; on return this
 * connection has it, so ops it sends from then on (and those of clients
 * that connect later, such as a guest restarted elsewhere) are served by
 * an OSD only once that OSD refuses the fenced client. */
int store_rbd_blocklist_add(struct store_rbd *r, const char *addr,
                            unsigned expire_s, struct err *e);
/* Removes addr from the blocklist (0 also when it was not there). */
int store_rbd_blocklist_rm(struct store_rbd *r, const char *addr,
                           struct err *e);

struct store_rbd_locker {
	char client[64];               /* "client.4123" */
	char cookie[128];              /* "auto 140201..." for exclusive-lock */
	char addr[STORE_RBD_ADDR_MAX]; /* what to blocklist to fence it */
	bool is_exclusive;
};

/* Who holds an image's lock (the exclusive-lock feature's, taken by the
 * first writer): fills out[0..max) and sets *count to the number of lock
 * holders (0: nobody), which may exceed max. */
int store_rbd_lock_owners(struct store_rbd *r, const char *image,
                          struct store_rbd_locker *out, size_t max,
                          size_t *count, struct err *e);

/* ------------------------------------------------------------------------
 * Space and attachment. */

/* The pool's space as Proxmox reports it: used = data stored (before
 * replication), avail = what can still be stored (after replication), total
 * = used + avail. */
int store_rbd_status(struct store_rbd *r, uint64_t *total, uint64_t *used,
                     uint64_t *avail, struct err *e);

struct store_rbd_server {
	char host[64]; /* an IPv4 or IPv6 address or a name, no brackets */
	uint16_t port; /* a msgr1 port, or 3300 for msgr2 */
};

/* What QEMU needs to open an image:
 *   -object secret,id=S,file=KEY_FILE,format=base64
 *   -blockdev driver=rbd,pool=POOL,[namespace=NS,]image=IMAGE,user=ID,
 *             server.0.host=H,server.0.port=P,...,key-secret=S
 * QEMU hands each server to librados as "host:port", which librados reads
 * as msgr1 unless the port is 3300: so servers carry each monitor's msgr1
 * address, or its msgr2 one on port 3300 (a monitor with neither is an
 * -EINVAL). The key never appears on a command line (/proc/PID/cmdline is
 * readable by every user). */
struct store_rbd_attach {
	char pool[STORE_RBD_NAME_MAX];
	char namespace_name[STORE_RBD_NAME_MAX]; /* "" for none */
	char image[STORE_RBD_NAME_MAX];
	char id[64];                         /* the user, without "client." */
	char monhost[STORE_RBD_MONHOST_MAX]; /* as configured */
	struct store_rbd_server servers[STORE_RBD_SERVERS_MAX];
	size_t server_count;
};

/* Fills *out for image (which must exist) and writes the user's key,
 * base64 without a newline, to key_file (created or truncated, mode 0600,
 * not followed if a symlink). */
int store_rbd_attach_spec(struct store_rbd *r, const char *image,
                          const char *key_file, struct store_rbd_attach *out,
                          struct err *e);

#endif /* CAIRN_STORE_RBD_H */
