/* Proxmox VE's permission model: which roles an ACL gives whom on a path,
 * and what privileges those roles hold. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node/acl.h"

_Static_assert(ACL_PRIV_COUNT <= 64, "acl_privs_t is a 64-bit set");

/* ------------------------------------------------------------ privileges */

static const char *const acl_priv_names[ACL_PRIV_COUNT] = {
        [ACL_PRIV_DATASTORE_ALLOCATE] = "Datastore.Allocate",
        [ACL_PRIV_DATASTORE_ALLOCATESPACE] = "Datastore.AllocateSpace",
        [ACL_PRIV_DATASTORE_ALLOCATETEMPLATE] = "Datastore.AllocateTemplate",
        [ACL_PRIV_DATASTORE_AUDIT] = "Datastore.Audit",
        [ACL_PRIV_GROUP_ALLOCATE] = "Group.Allocate",
        [ACL_PRIV_MAPPING_AUDIT] = "Mapping.Audit",
        [ACL_PRIV_MAPPING_MODIFY] = "Mapping.Modify",
        [ACL_PRIV_MAPPING_USE] = "Mapping.Use",
        [ACL_PRIV_PERMISSIONS_MODIFY] = "Permissions.Modify",
        [ACL_PRIV_POOL_ALLOCATE] = "Pool.Allocate",
        [ACL_PRIV_POOL_AUDIT] = "Pool.Audit",
        [ACL_PRIV_REALM_ALLOCATE] = "Realm.Allocate",
        [ACL_PRIV_REALM_ALLOCATEUSER] = "Realm.AllocateUser",
        [ACL_PRIV_SDN_ALLOCATE] = "SDN.Allocate",
        [ACL_PRIV_SDN_AUDIT] = "SDN.Audit",
        [ACL_PRIV_SDN_USE] = "SDN.Use",
        [ACL_PRIV_SYS_ACCESSNETWORK] = "Sys.AccessNetwork",
        [ACL_PRIV_SYS_AUDIT] = "Sys.Audit",
        [ACL_PRIV_SYS_CONSOLE] = "Sys.Console",
        [ACL_PRIV_SYS_INCOMING] = "Sys.Incoming",
        [ACL_PRIV_SYS_MODIFY] = "Sys.Modify",
        [ACL_PRIV_SYS_POWERMGMT] = "Sys.PowerMgmt",
        [ACL_PRIV_SYS_SYSLOG] = "Sys.Syslog",
        [ACL_PRIV_USER_MODIFY] = "User.Modify",
        [ACL_PRIV_VM_ALLOCATE] = "VM.Allocate",
        [ACL_PRIV_VM_AUDIT] = "VM.Audit",
        [ACL_PRIV_VM_BACKUP] = "VM.Backup",
        [ACL_PRIV_VM_CLONE] = "VM.Clone",
        [ACL_PRIV_VM_CONFIG_CDROM] = "VM.Config.CDROM",
        [ACL_PRIV_VM_CONFIG_CPU] = "VM.Config.CPU",
        [ACL_PRIV_VM_CONFIG_CLOUDINIT] = "VM.Config.Cloudinit",
        [ACL_PRIV_VM_CONFIG_DISK] = "VM.Config.Disk",
        [ACL_PRIV_VM_CONFIG_HWTYPE] = "VM.Config.HWType",
        [ACL_PRIV_VM_CONFIG_MEMORY] = "VM.Config.Memory",
        [ACL_PRIV_VM_CONFIG_NETWORK] = "VM.Config.Network",
        [ACL_PRIV_VM_CONFIG_OPTIONS] = "VM.Config.Options",
        [ACL_PRIV_VM_CONSOLE] = "VM.Console",
        [ACL_PRIV_VM_GUESTAGENT_AUDIT] = "VM.GuestAgent.Audit",
        [ACL_PRIV_VM_GUESTAGENT_FILEREAD] = "VM.GuestAgent.FileRead",
        [ACL_PRIV_VM_GUESTAGENT_FILESYSTEMMGMT] =
                "VM.GuestAgent.FileSystemMgmt",
        [ACL_PRIV_VM_GUESTAGENT_FILEWRITE] = "VM.GuestAgent.FileWrite",
        [ACL_PRIV_VM_GUESTAGENT_UNRESTRICTED] = "VM.GuestAgent.Unrestricted",
        [ACL_PRIV_VM_MIGRATE] = "VM.Migrate",
        [ACL_PRIV_VM_POWERMGMT] = "VM.PowerMgmt",
        [ACL_PRIV_VM_REPLICATE] = "VM.Replicate",
        [ACL_PRIV_VM_SNAPSHOT] = "VM.Snapshot",
        [ACL_PRIV_VM_SNAPSHOT_ROLLBACK] = "VM.Snapshot.Rollback",
};

int acl_priv_find(const char *name)
{
	int i;

	if (name == NULL)
		return -1;
	for (i = 0; i < ACL_PRIV_COUNT; i++) {
		if (strcmp(acl_priv_names[i], name) == 0)
			return i;
	}
	return -1;
}

const char *acl_priv_name(int i)
{
	if (i < 0 || i >= ACL_PRIV_COUNT)
		return NULL;
	return acl_priv_names[i];
}

size_t acl_priv_count(void)
{
	return ACL_PRIV_COUNT;
}

/* Proxmox's split_list: commas, semicolons and whitespace. */
#define PRIV_SEPARATORS ",; \t\n\v\f\r"

int acl_privs_parse(const char *text, acl_privs_t *out, struct err *e)
{
	acl_privs_t privs = 0;
	const char *p = text != NULL ? text : "";
	char name[64];
	int i;

	while (*p != '\0') {
		size_t n;

		if (strchr(PRIV_SEPARATORS, *p) != NULL) {
			p++;
			continue;
		}
		n = strcspn(p, PRIV_SEPARATORS);
		if (n >= sizeof name)
			return err_set(e, -EINVAL,
			               "invalid privilege '%.40s...'", p);
		memcpy(name, p, n);
		name[n] = '\0';
		i = acl_priv_find(name);
		if (i < 0)
			return err_set(e, -EINVAL, "invalid privilege '%s'",
			               name);
		privs |= ACL_PRIV(i);
		p += n;
	}
	*out = privs;
	return 0;
}

int acl_privs_format(acl_privs_t privs, char *out, size_t size)
{
	size_t len = 0;
	int i;

	if (size == 0)
		return -ERANGE;
	out[0] = '\0';
	for (i = 0; i < ACL_PRIV_COUNT; i++) {
		size_t n;

		if (!(privs & ACL_PRIV(i)))
			continue;
		n = strlen(acl_priv_names[i]);
		if (len + (len > 0) + n >= size) {
			out[0] = '\0';
			return -ERANGE;
		}
		if (len > 0)
			out[len++] = ',';
		memcpy(out + len, acl_priv_names[i], n + 1);
		len += n;
	}
	return 0;
}

/* ----------------------------------------------------------------- roles */

#define PRIV(x) ACL_PRIV(ACL_PRIV_##x)

/* PVE builds its special roles from $privgroups, each category's privileges
 * split into root / admin / user / audit tiers: PVE<Cat>Admin gets admin +
 * user + audit, PVE<Cat>User user + audit (only for categories that have
 * user privileges), PVEAuditor every audit privilege, PVEAdmin every
 * PVE<Cat>Admin privilege but Mapping.Modify; root tiers (Sys.Modify,
 * Sys.PowerMgmt, Sys.Incoming, Sys.AccessNetwork, Realm.Allocate) and
 * Permissions.Modify only come with Administrator. */
#define VM_AUDIT (PRIV(VM_AUDIT) | PRIV(VM_GUESTAGENT_AUDIT))
#define VM_USER                                                               \
	(PRIV(VM_CONFIG_CDROM) | PRIV(VM_CONFIG_CLOUDINIT) |                  \
	 PRIV(VM_CONSOLE) | PRIV(VM_BACKUP) | PRIV(VM_GUESTAGENT_FILEREAD) |  \
	 PRIV(VM_GUESTAGENT_FILESYSTEMMGMT) | PRIV(VM_GUESTAGENT_FILEWRITE) | \
	 PRIV(VM_POWERMGMT))
#define VM_ADMIN                                                               \
	(PRIV(VM_CONFIG_DISK) | PRIV(VM_CONFIG_CPU) | PRIV(VM_CONFIG_MEMORY) | \
	 PRIV(VM_CONFIG_NETWORK) | PRIV(VM_CONFIG_HWTYPE) |                    \
	 PRIV(VM_CONFIG_OPTIONS) | PRIV(VM_ALLOCATE) | PRIV(VM_CLONE) |        \
	 PRIV(VM_GUESTAGENT_UNRESTRICTED) | PRIV(VM_MIGRATE) |                 \
	 PRIV(VM_REPLICATE) | PRIV(VM_SNAPSHOT) | PRIV(VM_SNAPSHOT_ROLLBACK))
#define SYS_ADMIN      (PRIV(SYS_CONSOLE) | PRIV(SYS_SYSLOG) | PRIV(SYS_AUDIT))
#define DATASTORE_USER (PRIV(DATASTORE_ALLOCATESPACE) | PRIV(DATASTORE_AUDIT))
#define DATASTORE_ADMIN                              \
	(DATASTORE_USER | PRIV(DATASTORE_ALLOCATE) | \
	 PRIV(DATASTORE_ALLOCATETEMPLATE))
#define SDN_USER  (PRIV(SDN_USE) | PRIV(SDN_AUDIT))
#define SDN_ADMIN (SDN_USER | PRIV(SDN_ALLOCATE))
#define USER_ADMIN \
	(PRIV(USER_MODIFY) | PRIV(GROUP_ALLOCATE) | PRIV(REALM_ALLOCATEUSER))
#define POOL_USER     PRIV(POOL_AUDIT)
#define POOL_ADMIN    (POOL_USER | PRIV(POOL_ALLOCATE))
#define MAPPING_USER  (PRIV(MAPPING_USE) | PRIV(MAPPING_AUDIT))
#define MAPPING_ADMIN (MAPPING_USER | PRIV(MAPPING_MODIFY))

static const struct acl_role builtin_roles[] = {
        {"Administrator", ACL_PRIVS_ALL},
        {"NoAccess", 0},
        {"PVEAdmin", VM_ADMIN | VM_USER | VM_AUDIT | SYS_ADMIN |
                             DATASTORE_ADMIN | SDN_ADMIN | USER_ADMIN |
                             POOL_ADMIN | MAPPING_USER},
        {"PVEAuditor", VM_AUDIT | PRIV(SYS_AUDIT) | PRIV(DATASTORE_AUDIT) |
                               PRIV(SDN_AUDIT) | PRIV(POOL_AUDIT) |
                               PRIV(MAPPING_AUDIT)},
        {"PVEDatastoreAdmin", DATASTORE_ADMIN},
        {"PVEDatastoreUser", DATASTORE_USER},
        {"PVEMappingAdmin", MAPPING_ADMIN},
        {"PVEMappingUser", MAPPING_USER},
        {"PVEPoolAdmin", POOL_ADMIN},
        {"PVEPoolUser", POOL_USER},
        {"PVESDNAdmin", SDN_ADMIN},
        {"PVESDNUser", SDN_USER},
        {"PVESysAdmin", SYS_ADMIN},
        {"PVETemplateUser", PRIV(VM_CLONE) | PRIV(VM_AUDIT)},
        {"PVEUserAdmin", USER_ADMIN},
        {"PVEVMAdmin", VM_ADMIN | VM_USER | VM_AUDIT},
        {"PVEVMUser", VM_USER | VM_AUDIT},
};

bool acl_role_builtin(const char *roleid, acl_privs_t *privs)
{
	size_t i;

	if (roleid == NULL)
		return false;
	for (i = 0; i < CAIRN_ARRAY_SIZE(builtin_roles); i++) {
		if (strcmp(builtin_roles[i].roleid, roleid) == 0) {
			if (privs != NULL)
				*privs = builtin_roles[i].privs;
			return true;
		}
	}
	return false;
}

/* ----------------------------------------------------------------- paths */

/* Segment classes of PVE's check_path, as the first byte of a pattern. */
#define SEG_NAME  "\001" /* [[:alnum:]._-]+ */
#define SEG_ID    "\002" /* [[:alnum:]_-]+ */
#define SEG_ALNUM "\003" /* [[:alnum:]]+ */
#define SEG_VMID  "\004" /* [1-9][0-9]{2,} */
#define SEG_VLAN  "\005" /* [1-9][0-9]{0,3} */

#define KNOWN_PATH_DEPTH 5

/* PVE 9's check_path, one row per alternative of its regex; {NULL} is "/". */
static const char *const known_paths[][KNOWN_PATH_DEPTH] = {
        {NULL},
        {"access"},
        {"access", "groups"},
        {"access", "groups", SEG_NAME},
        {"access", "realm"},
        {"access", "realm", SEG_NAME},
        {"nodes"},
        {"nodes", SEG_NAME},
        {"pool"},
        {"pool", SEG_NAME},
        {"pool", SEG_NAME, SEG_NAME},
        {"pool", SEG_NAME, SEG_NAME, SEG_NAME},
        {"sdn"},
        {"sdn", "controllers"},
        {"sdn", "controllers", SEG_ID},
        {"sdn", "dns"},
        {"sdn", "dns", SEG_ALNUM},
        {"sdn", "fabrics"},
        {"sdn", "fabrics", SEG_ALNUM},
        {"sdn", "ipams"},
        {"sdn", "ipams", SEG_ALNUM},
        {"sdn", "prefix-lists"},
        {"sdn", "prefix-lists", SEG_ALNUM},
        {"sdn", "route-maps"},
        {"sdn", "route-maps", SEG_ALNUM},
        {"sdn", "zones"},
        {"sdn", "zones", SEG_NAME},
        {"sdn", "zones", SEG_NAME, SEG_NAME},
        {"sdn", "zones", SEG_NAME, SEG_NAME, SEG_VLAN},
        {"storage"},
        {"storage", SEG_NAME},
        {"vms"},
        {"vms", SEG_VMID},
        {"mapping"},
        {"mapping", SEG_NAME},
        {"mapping", SEG_NAME, SEG_NAME},
};

struct segment {
	const char *text;
	size_t len;
};

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Bytes every stored segment is made of (ctype would follow the locale). */
static bool is_path_char(char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '@' ||
	       c == '-';
}

static bool all_of(const struct segment *s, const char *extra)
{
	size_t i;

	for (i = 0; i < s->len; i++) {
		if (!is_alnum(s->text[i]) && strchr(extra, s->text[i]) == NULL)
			return false;
	}
	return true;
}

/* [1-9][0-9]*, at most max_len digits (0: no limit) and at least min_len. */
static bool is_number(const struct segment *s, size_t min_len, size_t max_len)
{
	size_t i;

	if (s->text[0] < '1' || s->text[0] > '9' || s->len < min_len ||
	    (max_len > 0 && s->len > max_len))
		return false;
	for (i = 1; i < s->len; i++) {
		if (!is_digit(s->text[i]))
			return false;
	}
	return true;
}

static bool segment_matches(const char *pattern, const struct segment *s)
{
	if (s->len == 0)
		return false;
	if (pattern[0] == SEG_NAME[0])
		return all_of(s, "._-");
	if (pattern[0] == SEG_ID[0])
		return all_of(s, "_-");
	if (pattern[0] == SEG_ALNUM[0])
		return all_of(s, "");
	if (pattern[0] == SEG_VMID[0])
		return is_number(s, 3, 0);
	if (pattern[0] == SEG_VLAN[0])
		return is_number(s, 1, 4);
	return strlen(pattern) == s->len &&
	       memcmp(pattern, s->text, s->len) == 0;
}

static bool is_known_path(const struct segment *segs, size_t nsegs)
{
	size_t i, j;

	if (nsegs > KNOWN_PATH_DEPTH)
		return false;
	for (i = 0; i < CAIRN_ARRAY_SIZE(known_paths); i++) {
		const char *const *row = known_paths[i];

		for (j = 0; j < nsegs && j < KNOWN_PATH_DEPTH; j++) {
			if (row[j] == NULL ||
			    !segment_matches(row[j], &segs[j]))
				break;
		}
		if (j == nsegs && (j == KNOWN_PATH_DEPTH || row[j] == NULL))
			return true;
	}
	return false;
}

int acl_path_normalize(const char *in, char *out, size_t size, struct err *e)
{
	/* Each segment takes at least two bytes ("/x") of the result. */
	struct segment segs[ACL_PATH_MAX / 2];
	char norm[ACL_PATH_MAX + 1];
	size_t len = 0, nsegs = 0, i;
	const char *p;

	if (in == NULL || in[0] != '/')
		return err_set(e, -EINVAL, "ACL path must start with '/'");
	for (p = in; *p != '\0';) {
		size_t n;

		if (*p == '/') {
			p++;
			continue;
		}
		n = strcspn(p, "/");
		if (len + 1 + n > ACL_PATH_MAX)
			return err_set(e, -EINVAL,
			               "ACL path longer than %d bytes",
			               ACL_PATH_MAX);
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return err_set(
			        e, -EINVAL,
			        "ACL path: '.' and '..' are not allowed");
		for (i = 0; i < n; i++) {
			if (!is_path_char(p[i]))
				return err_set(e, -EINVAL,
				               "ACL path: invalid character "
				               "0x%02x",
				               (unsigned char)p[i]);
		}
		CAIRN_ASSERT(nsegs < CAIRN_ARRAY_SIZE(segs));
		norm[len++] = '/';
		memcpy(norm + len, p, n);
		segs[nsegs].text = norm + len;
		segs[nsegs].len = n;
		nsegs++;
		len += n;
		p += n;
	}
	if (len == 0)
		norm[len++] = '/';
	norm[len] = '\0';
	if (!is_known_path(segs, nsegs))
		return err_set(e, -EINVAL, "invalid ACL path '%s'", norm);
	if (len >= size)
		return err_set(e, -ERANGE, "ACL path '%s': no room", norm);
	memcpy(out, norm, len + 1);
	return 0;
}

/* Whether two paths name the same ACL node, whatever their slashes. */
static bool same_path(const char *a, const char *b)
{
	for (;;) {
		size_t na, nb;

		while (*a == '/')
			a++;
		while (*b == '/')
			b++;
		na = strcspn(a, "/");
		nb = strcspn(b, "/");
		if (na != nb || memcmp(a, b, na) != 0)
			return false;
		if (na == 0)
			return true;
		a += na;
		b += nb;
	}
}

/* ------------------------------------------------------------ evaluation */

/* The roles a walk has settled on, as the privileges they hold. */
struct grant {
	acl_privs_t privs;
	acl_privs_t propagated; /* privs some propagating role gave */
	bool is_noaccess;
};

static bool role_privs(const struct acl_world *w, const char *roleid,
                       acl_privs_t *privs)
{
	size_t i;

	if (acl_role_builtin(roleid, privs))
		return true;
	for (i = 0; i < w->nroles; i++) {
		if (strcmp(w->roles[i].roleid, roleid) == 0) {
			*privs = w->roles[i].privs & ACL_PRIVS_ALL;
			return true;
		}
	}
	return false;
}

static bool is_member(const struct acl_world *w, const char *groupid,
                      const char *userid)
{
	size_t i;

	for (i = 0; i < w->nmembers; i++) {
		if (strcmp(w->members[i].groupid, groupid) == 0 &&
		    strcmp(w->members[i].userid, userid) == 0)
			return true;
	}
	return false;
}

/* Sets *out to the roles that entries of one kind for ugid (for ACL_GROUP:
 * for the groups ugid is a member of) give at level; false, leaving *out
 * alone, when none applies there. An entry applies at its own path, and
 * below it when it propagates. */
static bool level_grant(const struct acl_world *w, const char *level,
                        bool is_final, enum acl_ugid_type type,
                        const char *ugid, struct grant *out)
{
	struct grant g = {0, 0, false};
	bool is_set = false;
	acl_privs_t privs;
	size_t i;

	for (i = 0; i < w->nentries; i++) {
		const struct acl_entry *en = &w->entries[i];

		if (en->type != type || (!is_final && !en->propagate) ||
		    !same_path(en->path, level))
			continue;
		if (type == ACL_GROUP ? !is_member(w, en->ugid, ugid)
		                      : strcmp(en->ugid, ugid) != 0)
			continue;
		/* user.cfg's reader drops lines naming unknown roles. */
		if (!role_privs(w, en->roleid, &privs))
			continue;
		if (strcmp(en->roleid, "NoAccess") == 0)
			g.is_noaccess = true;
		g.privs |= privs;
		if (en->propagate)
			g.propagated |= privs;
		is_set = true;
	}
	if (is_set)
		*out = g;
	return is_set;
}

/* PVE's AccessControl::roles: from "/" down to path, each level where the
 * principal's own entries apply, or else (users only) its groups' entries,
 * replaces what the levels above gave. type is ACL_USER or ACL_TOKEN. */
static struct grant walk(const struct acl_world *w, enum acl_ugid_type type,
                         const char *ugid, const char *path)
{
	struct grant g = {0, 0, false};
	char level[ACL_PATH_MAX + 1] = "/";
	bool is_final, fits = true;
	const char *p = path;
	size_t len = 0, n;

	for (;;) {
		while (*p == '/')
			p++;
		is_final = *p == '\0';
		/* A level longer than any ACL path has no entries. */
		if (fits && !level_grant(w, level, is_final, type, ugid, &g) &&
		    type == ACL_USER)
			level_grant(w, level, is_final, ACL_GROUP, ugid, &g);
		if (is_final)
			break;
		n = strcspn(p, "/");

		if (fits && len + 1 + n <= ACL_PATH_MAX) {
			level[len] = '/';
			memcpy(level + len + 1, p, n);
			len += n + 1;
			level[len] = '\0';
		} else {
			fits = false;
		}
		p += n;
	}
	if (g.is_noaccess)
		g.privs = g.propagated = 0;
	return g;
}

/* walk, plus the roles held on the pools that hold path: they add to
 * path's own, never propagated, and a NoAccess on a pool forbids all;
 * a NoAccess on path itself is not trumped by pools. */
static struct grant path_grant(const struct acl_world *w,
                               enum acl_ugid_type type, const char *ugid,
                               const char *path)
{
	struct grant g = walk(w, type, ugid, path), pool = {0, 0, false};
	char pool_path[sizeof "/pool/" + sizeof w->pool_members->poolid];
	size_t i;

	if (g.is_noaccess || w->pool_members == NULL)
		return g;
	for (i = 0; i < w->npool_members; i++) {
		struct grant pg;

		if (!same_path(w->pool_members[i].path, path))
			continue;
		snprintf(pool_path, sizeof pool_path, "/pool/%s",
		         w->pool_members[i].poolid);
		pg = walk(w, type, ugid, pool_path);
		pool.is_noaccess |= pg.is_noaccess;
		pool.privs |= pg.privs;
	}
	if (pool.is_noaccess) {
		g.privs = g.propagated = 0;
		g.is_noaccess = true;
	} else {
		g.privs |= pool.privs;
	}
	return g;
}

acl_privs_t acl_privs_at_full(const struct acl_world *w,
                              const struct acl_principal *p, const char *path,
                              acl_privs_t *propagated)
{
	struct grant user, token;
	char tokenid[sizeof p->userid + 1 + sizeof p->tokenid];
	acl_privs_t unused;

	CAIRN_ASSERT(w != NULL && p != NULL);
	if (propagated == NULL)
		propagated = &unused;
	*propagated = 0;
	if (path == NULL)
		return 0;
	if (strcmp(p->userid, "root@pam") == 0) {
		user.privs = user.propagated = ACL_PRIVS_ALL;
		user.is_noaccess = false;
	} else {
		user = path_grant(w, ACL_USER, p->userid, path);
	}
	if (p->tokenid[0] == '\0' || !p->privsep) {
		*propagated = user.propagated;
		return user.privs;
	}
	snprintf(tokenid, sizeof tokenid, "%s!%s", p->userid, p->tokenid);
	token = path_grant(w, ACL_TOKEN, tokenid, path);
	*propagated = token.propagated & user.propagated;
	return token.privs & user.privs;
}

acl_privs_t acl_privs_at(const struct acl_world *w,
                         const struct acl_principal *p, const char *path)
{
	return acl_privs_at_full(w, p, path, NULL);
}

/* Adds path -> {priv: propagate} to res unless it is there already, or p
 * holds nothing there and !keep_empty. -ENOMEM when out of memory. */
static int add_path(const struct acl_world *w, const struct acl_principal *p,
                    json_t *res, const char *path, bool keep_empty)
{
	acl_privs_t privs, propagated;
	json_t *obj;
	int i;

	if (json_object_get(res, path) != NULL)
		return 0;
	privs = acl_privs_at_full(w, p, path, &propagated);
	if (privs == 0 && !keep_empty)
		return 0;
	obj = json_object();
	if (obj == NULL)
		return -ENOMEM;
	for (i = 0; i < ACL_PRIV_COUNT; i++) {
		if (!(privs & ACL_PRIV(i)))
			continue;
		if (json_object_set_new(
		            obj, acl_priv_names[i],
		            json_integer((propagated & ACL_PRIV(i)) ? 1 : 0)) !=
		    0)
			goto err_after_obj;
	}
	if (json_object_set_new(res, path, obj) != 0)
		return -ENOMEM;
	return 0;
err_after_obj:
	json_decref(obj);
	return -ENOMEM;
}

/* add_path for an ACL entry's path and each of its parents, as PVE's
 * iterate_acl_tree visits every node of the tree. */
static int add_path_and_parents(const struct acl_world *w,
                                const struct acl_principal *p, json_t *res,
                                const char *path)
{
	char buf[ACL_PATH_MAX + 1];
	size_t i, len = strlen(path);
	int rv;

	if (len >= sizeof buf)
		return 0;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (i < len && buf[i] != '/')
			continue;
		buf[i] = '\0';
		rv = add_path(w, p, res, buf, false);
		if (i < len)
			buf[i] = '/';
		if (rv != 0)
			return rv;
	}
	return 0;
}

json_t *acl_permissions(const struct acl_world *w,
                        const struct acl_principal *p, const char *only_path)
{
	/* PVE's get_effective_permissions always looks at these. */
	static const char *const top_paths[] = {
	        "/",     "/access", "/access/groups", "/nodes",
	        "/pool", "/sdn",    "/storage",       "/vms",
	};
	json_t *res = json_object();
	acl_privs_t unused;
	size_t i;

	if (res == NULL)
		return NULL;
	if (only_path != NULL) {
		if (add_path(w, p, res, only_path, true) != 0)
			goto err_after_res;
		return res;
	}
	for (i = 0; i < CAIRN_ARRAY_SIZE(top_paths); i++) {
		if (add_path(w, p, res, top_paths[i], false) != 0)
			goto err_after_res;
	}
	for (i = 0; i < w->nentries; i++) {
		if (!role_privs(w, w->entries[i].roleid, &unused))
			continue;
		if (add_path_and_parents(w, p, res, w->entries[i].path) != 0)
			goto err_after_res;
	}
	for (i = 0; w->pool_members != NULL && i < w->npool_members; i++) {
		if (add_path(w, p, res, w->pool_members[i].path, false) != 0)
			goto err_after_res;
	}
	return res;
err_after_res:
	json_decref(res);
	return NULL;
}
