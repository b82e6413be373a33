/* node/acl: Proxmox VE's permission model — privileges, built-in roles, ACL
 * paths and who may do what where; pure (no I/O, no DB), private to node/. */
#ifndef CAIRN_NODE_ACL_H
#define CAIRN_NODE_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lib.h"

/* ------------------------------------------------------------ privileges */

/* PVE 9's privileges (pve-access-control 9.1), in the byte order of their
 * names, which is the order Proxmox lists them in and the order
 * acl_privs_format writes. The values are stable bit indexes: a role
 * stored as a bitset keeps its meaning only while nobody reorders this. */
enum acl_priv {
	ACL_PRIV_DATASTORE_ALLOCATE,
	ACL_PRIV_DATASTORE_ALLOCATESPACE,
	ACL_PRIV_DATASTORE_ALLOCATETEMPLATE,
	ACL_PRIV_DATASTORE_AUDIT,
	ACL_PRIV_GROUP_ALLOCATE,
	ACL_PRIV_MAPPING_AUDIT,
	ACL_PRIV_MAPPING_MODIFY,
	ACL_PRIV_MAPPING_USE,
	ACL_PRIV_PERMISSIONS_MODIFY,
	ACL_PRIV_POOL_ALLOCATE,
	ACL_PRIV_POOL_AUDIT,
	ACL_PRIV_REALM_ALLOCATE,
	ACL_PRIV_REALM_ALLOCATEUSER,
	ACL_PRIV_SDN_ALLOCATE,
	ACL_PRIV_SDN_AUDIT,
	ACL_PRIV_SDN_USE,
	ACL_PRIV_SYS_ACCESSNETWORK,
	ACL_PRIV_SYS_AUDIT,
	ACL_PRIV_SYS_CONSOLE,
	ACL_PRIV_SYS_INCOMING,
	ACL_PRIV_SYS_MODIFY,
	ACL_PRIV_SYS_POWERMGMT,
	ACL_PRIV_SYS_SYSLOG,
	ACL_PRIV_USER_MODIFY,
	ACL_PRIV_VM_ALLOCATE,
	ACL_PRIV_VM_AUDIT,
	ACL_PRIV_VM_BACKUP,
	ACL_PRIV_VM_CLONE,
	ACL_PRIV_VM_CONFIG_CDROM,
	ACL_PRIV_VM_CONFIG_CPU,
	ACL_PRIV_VM_CONFIG_CLOUDINIT,
	ACL_PRIV_VM_CONFIG_DISK,
	ACL_PRIV_VM_CONFIG_HWTYPE,
	ACL_PRIV_VM_CONFIG_MEMORY,
	ACL_PRIV_VM_CONFIG_NETWORK,
	ACL_PRIV_VM_CONFIG_OPTIONS,
	ACL_PRIV_VM_CONSOLE,
	ACL_PRIV_VM_GUESTAGENT_AUDIT,
	ACL_PRIV_VM_GUESTAGENT_FILEREAD,
	ACL_PRIV_VM_GUESTAGENT_FILESYSTEMMGMT,
	ACL_PRIV_VM_GUESTAGENT_FILEWRITE,
	ACL_PRIV_VM_GUESTAGENT_UNRESTRICTED,
	ACL_PRIV_VM_MIGRATE,
	ACL_PRIV_VM_POWERMGMT,
	ACL_PRIV_VM_REPLICATE,
	ACL_PRIV_VM_SNAPSHOT,
	ACL_PRIV_VM_SNAPSHOT_ROLLBACK,
	ACL_PRIV_COUNT
};

/* A set of privileges: bit i is enum acl_priv i. */
typedef uint64_t acl_privs_t;

#define ACL_PRIV(i)   ((acl_privs_t)1 << (i))
#define ACL_PRIVS_ALL (ACL_PRIV(ACL_PRIV_COUNT) - 1)

/* Room acl_privs_format needs for every privilege, NUL included. */
#define ACL_PRIVS_TEXT_MAX 1024

/* The index of a privilege name (case-sensitive, as Proxmox's), or -1. */
int acl_priv_find(const char *name);
/* The name of privilege i, or NULL when i is out of range. */
const char *acl_priv_name(int i);
/* ACL_PRIV_COUNT. */
size_t acl_priv_count(void);

/* Parses a privilege list as Proxmox's `pveum role add -privs` and user.cfg
 * take it: names separated by commas, semicolons or whitespace; empty items
 * are skipped, so "" is the empty set. -EINVAL naming the first unknown
 * privilege (there are no wildcards). */
int acl_privs_parse(const char *text, acl_privs_t *out, struct err *e);

/* Writes privs as "A,B,C" in enum order ("" for none). -ERANGE, with out
 * set to "", when size is too small; ACL_PRIVS_TEXT_MAX always suffices. */
int acl_privs_format(acl_privs_t privs, char *out, size_t size);

/* ----------------------------------------------------------------- roles */

#define ACL_ROLEID_MAX 64

/* Proxmox's built-in ("special") roles, which users can neither change nor
 * shadow: Administrator, NoAccess and the PVE* roles. True and *privs set
 * (privs may be NULL) when roleid is one. */
bool acl_role_builtin(const char *roleid, acl_privs_t *privs);

/* ----------------------------------------------------------------- paths */

#define ACL_PATH_MAX 256

/* Normalizes an ACL path the way Proxmox stores it: duplicate slashes
 * collapsed, a trailing slash dropped ("/" stays "/"). Refuses with -EINVAL
 * a path that does not start with '/', has a "." or ".." segment, a byte
 * outside [A-Za-z0-9._:@-] in a segment, is longer than ACL_PATH_MAX once
 * normalized, or is not one of the paths PVE's check_path knows: /,
 * /access, /access/groups[/G], /access/realm[/R], /nodes[/N],
 * /pool[/P[/S[/S]]], /sdn/... (controllers, dns, fabrics, ipams,
 * prefix-lists, route-maps, zones[/Z[/VNET[/VLAN]]]), /storage[/S],
 * /vms[/VMID >= 100], /mapping[/TYPE[/ID]]. -ERANGE when out (size bytes)
 * cannot hold the result. */
int acl_path_normalize(const char *in, char *out, size_t size, struct err *e);

/* ------------------------------------------------------------ evaluation */

/* One ACL line of Proxmox's user.cfg, for one user, group or token and one
 * role. path is normalized (acl_path_normalize); ugid is "user@realm" for
 * ACL_USER, the group name without PVE's '@' for ACL_GROUP and
 * "user@realm!tokenid" for ACL_TOKEN. */
struct acl_entry {
	char path[ACL_PATH_MAX + 1];
	enum acl_ugid_type { ACL_USER, ACL_GROUP, ACL_TOKEN } type;
	char ugid[130];
	char roleid[ACL_ROLEID_MAX + 1];
	bool propagate;
};

/* A custom role; the built-ins are known here and take precedence. */
struct acl_role {
	char roleid[ACL_ROLEID_MAX + 1];
	acl_privs_t privs;
};

struct acl_group_member {
	char groupid[65];
	char userid[130];
};

/* A guest or storage in a resource pool: whoever holds a role on
 * /pool/POOL holds it, unpropagated, on path too (PVE's pool ACLs). */
struct acl_pool_member {
	char poolid[65];
	char path[ACL_PATH_MAX + 1]; /* "/vms/VMID" or "/storage/ID" */
};

/* The ACL world, borrowed for the duration of a call. Entries naming a role
 * that is neither built in nor in roles are ignored, as Proxmox drops them
 * when it reads user.cfg. pool_members may be NULL (no pools). */
struct acl_world {
	const struct acl_entry *entries;
	size_t nentries;
	const struct acl_role *roles;
	size_t nroles;
	const struct acl_group_member *members;
	size_t nmembers;
	const struct acl_pool_member *pool_members;
	size_t npool_members;
};

/* Who asks: a user, or one of its API tokens. */
struct acl_principal {
	char userid[130];
	char tokenid[65]; /* "" when a user, not a token */
	bool privsep;     /* tokens: limited to their own ACLs (PVE default) */
};

/* The privileges p holds on path, as PVE's RPCEnvironment::permissions:
 * root@pam (and its tokens without privsep) holds everything. Otherwise
 * the path is walked from "/" down; at each level the principal's own
 * entries, or failing those its groups' entries, that apply there (at the
 * path itself, or above it with propagate) replace the roles the levels
 * above gave. NoAccess among the final roles leaves nothing; pool roles add
 * to guests and storage in a pool unless a NoAccess forbids. A privsep
 * token holds what its own entries give and its user holds, both. */
acl_privs_t acl_privs_at(const struct acl_world *w,
                         const struct acl_principal *p, const char *path);

/* As acl_privs_at, and *propagated set to the privileges some role that
 * gave them carries with propagate (the flag GET /access/permissions
 * shows; informational, the walk already applied it). */
acl_privs_t acl_privs_at_full(const struct acl_world *w,
                              const struct acl_principal *p, const char *path,
                              acl_privs_t *propagated);

/* The data of PVE's GET /access/permissions: an object path -> {priv:
 * propagate (1 or 0)}. With only_path, {only_path: privileges there} even
 * when empty; without, the privileges at "/", /access, /access/groups,
 * /nodes, /pool, /sdn, /storage, /vms, at every path in the ACL (and its
 * parents) and every pool member's path, leaving out paths where p holds
 * nothing. A new reference, or NULL when out of memory. */
json_t *acl_permissions(const struct acl_world *w,
                        const struct acl_principal *p, const char *only_path);

#endif /* CAIRN_NODE_ACL_H */
