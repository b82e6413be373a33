/* node/resources: Proxmox's /cluster/resources and /nodes rows, built from
 * the config DB's rows and the live status channel's figures; pure (no
 * I/O, no loop), private to node/. */
#ifndef CAIRN_NODE_RESOURCES_H
#define CAIRN_NODE_RESOURCES_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/lib.h"
#include "proto/proto.h"

#define RES_NAME_MAX 128

/* What /cluster/resources shows of a guest's configuration. */
struct res_guest {
	uint32_t vmid;
	char type[8]; /* "qemu", "lxc" */
	char node[64];
	char name[RES_NAME_MAX];
	char tags[256];   /* ';'-separated, "" when none */
	char lock[32];    /* "" when none */
	char hastate[16]; /* "" when not HA-managed */
	bool is_template;
	uint64_t maxmem; /* bytes */
	uint32_t maxcpu;
	uint64_t maxdisk; /* bytes, the boot disk; 0 when unknown */
};

/* Reads a guest's config (a JSON object of Proxmox config keys, values as
 * Proxmox's config files carry them: strings, numbers accepted too) into
 * g's name, tags, template flag, maxmem (`memory`, MiB; default 512),
 * maxcpu (qemu: cores x sockets, default 1; lxc: cores, default 1) and
 * maxdisk (qemu: the `bootdisk`, else the first of scsi0, virtio0, sata0,
 * ide0 that is not a CD-ROM; lxc: rootfs; from its `size=` option).
 * vmid, type and node must be set first. -EINVAL when config is not a
 * JSON object; odd values are ignored (the row still shows). */
int res_guest_from_config(struct res_guest *g, const char *config, size_t len,
                          struct err *e);

/* Proxmox's sizes: "32G", "512M", "1T", "1024K", "100" (bytes). -EINVAL
 * when malformed or above 2^60. */
int res_parse_size(const char *text, size_t len, uint64_t *bytes);

/* One node: the member, and its last status push (NULL: none yet). */
struct res_node {
	char name[64];
	uint32_t nodeid;
	bool is_online;
	char fingerprint[96]; /* its certificate's, "AA:BB:..." */
	const Cairn__NodeRuntime *runtime;
};

/* One storage definition from the DB. */
struct res_storage {
	char id[65];
	char type[8]; /* "dir", "rbd" */
	char content[128];
	bool is_shared;
	bool is_disabled;
	char nodes[256];    /* "" for every node, else comma-separated */
	char options[2048]; /* the backend's own settings, a JSON object */
	char digest[65];
	char secret[256]; /* rbd: the cephx key (cluster_secrets); "" none */
};

/* Is the storage enabled on node (its `nodes` list, "" for every node)? */
bool res_storage_on_node(const struct res_storage *s, const char *node);

struct res_input {
	const struct res_guest *guests;
	size_t nguests;
	const struct res_node *nodes;
	size_t nnodes;
	const struct res_storage *storage;
	size_t nstorage;
};

enum res_filter {
	RES_ALL,
	RES_VM,
	RES_NODE,
	RES_STORAGE,
	RES_SDN, /* Proxmox's; cairn has none: [] */
};

/* "vm", "node", "storage", "sdn" (NULL: all); -EINVAL for anything else. */
int res_filter_parse(const char *text, enum res_filter *out);

/* The rows of /cluster/resources, in Proxmox's order (nodes, storage,
 * guests by vmid): a new array, or NULL when out of memory. A guest on an
 * offline node shows status "unknown"; on an online node it shows what the
 * node pushed, or "stopped" when the node does not list it. Unset keys
 * (tags, lock, hastate) are absent. */
json_t *res_build(const struct res_input *in, enum res_filter filter);

/* The rows of GET /nodes. */
json_t *res_build_nodes(const struct res_input *in);

/* Formats a "sha256:hex" fingerprint as Proxmox's "AA:BB:..." (out has
 * room for 96 bytes); "" when it is not one. */
void res_fingerprint_colons(const char *fingerprint, char out[96]);

#endif /* CAIRN_NODE_RESOURCES_H */
