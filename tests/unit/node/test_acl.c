/* Permissions as Proxmox VE computes them: privilege lists, built-in roles,
 * ACL paths, the ACL walk, tokens and GET /access/permissions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node/acl.h"

/* ------------------------------------------------------------- fixture */

#define WORLD_MAX 16

/* A small ACL world built entry by entry. */
struct world {
	struct acl_entry entries[WORLD_MAX];
	struct acl_role roles[WORLD_MAX];
	struct acl_group_member members[WORLD_MAX];
	struct acl_pool_member pool_members[WORLD_MAX];
	struct acl_world w;
};

static struct world *world_new(void)
{
	struct world *wd = test_calloc(1, sizeof *wd);

	wd->w.entries = wd->entries;
	wd->w.roles = wd->roles;
	wd->w.members = wd->members;
	return wd;
}

static void acl(struct world *wd, const char *path, enum acl_ugid_type type,
                const char *ugid, const char *roleid, bool propagate)
{
	struct acl_entry *en = &wd->entries[wd->w.nentries++];

	assert_true(wd->w.nentries <= WORLD_MAX);
	snprintf(en->path, sizeof en->path, "%s", path);
	en->type = type;
	snprintf(en->ugid, sizeof en->ugid, "%s", ugid);
	snprintf(en->roleid, sizeof en->roleid, "%s", roleid);
	en->propagate = propagate;
}

static void role(struct world *wd, const char *roleid, const char *privs)
{
	struct acl_role *r = &wd->roles[wd->w.nroles++];
	struct err e;

	assert_true(wd->w.nroles <= WORLD_MAX);
	snprintf(r->roleid, sizeof r->roleid, "%s", roleid);
	assert_int_equal(acl_privs_parse(privs, &r->privs, &e), 0);
}

static void member(struct world *wd, const char *groupid, const char *userid)
{
	struct acl_group_member *m = &wd->members[wd->w.nmembers++];

	assert_true(wd->w.nmembers <= WORLD_MAX);
	snprintf(m->groupid, sizeof m->groupid, "%s", groupid);
	snprintf(m->userid, sizeof m->userid, "%s", userid);
}

static void pool_member(struct world *wd, const char *poolid, const char *path)
{
	struct acl_pool_member *m = &wd->pool_members[wd->w.npool_members++];

	assert_true(wd->w.npool_members <= WORLD_MAX);
	wd->w.pool_members = wd->pool_members;
	snprintf(m->poolid, sizeof m->poolid, "%s", poolid);
	snprintf(m->path, sizeof m->path, "%s", path);
}

static struct acl_principal user(const char *userid)
{
	struct acl_principal p;

	memset(&p, 0, sizeof p);
	snprintf(p.userid, sizeof p.userid, "%s", userid);
	return p;
}

static struct acl_principal token(const char *userid, const char *tokenid,
                                  bool privsep)
{
	struct acl_principal p = user(userid);

	snprintf(p.tokenid, sizeof p.tokenid, "%s", tokenid);
	p.privsep = privsep;
	return p;
}

static acl_privs_t privs(const char *text)
{
	acl_privs_t out;
	struct err e;

	assert_int_equal(acl_privs_parse(text, &out, &e), 0);
	return out;
}

static acl_privs_t builtin(const char *roleid)
{
	acl_privs_t out;

	assert_true(acl_role_builtin(roleid, &out));
	return out;
}

/* The privileges of principal on path, formatted, for readable asserts. */
static const char *at(const struct world *wd, struct acl_principal p,
                      const char *path)
{
	static char text[ACL_PRIVS_TEXT_MAX];

	assert_int_equal(acl_privs_format(acl_privs_at(&wd->w, &p, path), text,
	                                  sizeof text),
	                 0);
	return text;
}

/* ---------------------------------------------------------- privileges */

static void test_priv_table_is_pve9s_sorted_and_fits_the_bitset(void **state)
{
	size_t i;

	(void)state;
	assert_int_equal(acl_priv_count(), 47);
	assert_true(acl_priv_count() <= 64);
	for (i = 0; i < acl_priv_count(); i++) {
		const char *name = acl_priv_name((int)i);

		assert_non_null(name);
		assert_int_equal(acl_priv_find(name), (int)i);
		if (i > 0)
			assert_true(strcmp(acl_priv_name((int)i - 1), name) <
			            0);
	}
	assert_null(acl_priv_name(-1));
	assert_null(acl_priv_name((int)acl_priv_count()));
	assert_int_equal(acl_priv_find("VM.Audit"), ACL_PRIV_VM_AUDIT);
	assert_int_equal(acl_priv_find("Sys.Incoming"), ACL_PRIV_SYS_INCOMING);
	assert_int_equal(acl_priv_find("vm.audit"), -1);
	assert_int_equal(acl_priv_find("VM.Monitor"), -1); /* gone in PVE 9 */
	assert_int_equal(acl_priv_find(""), -1);
	assert_int_equal(acl_priv_find(NULL), -1);
}

static void test_privs_parse_accepts_proxmox_separators(void **state)
{
	acl_privs_t out = 1;
	struct err e;

	(void)state;
	assert_int_equal(acl_privs_parse("VM.Audit,Sys.Audit;Datastore.Audit  "
	                                 "VM.Console\tPool.Audit,,; \n",
	                                 &out, &e),
	                 0);
	assert_true(out == (ACL_PRIV(ACL_PRIV_VM_AUDIT) |
	                    ACL_PRIV(ACL_PRIV_SYS_AUDIT) |
	                    ACL_PRIV(ACL_PRIV_DATASTORE_AUDIT) |
	                    ACL_PRIV(ACL_PRIV_VM_CONSOLE) |
	                    ACL_PRIV(ACL_PRIV_POOL_AUDIT)));
	assert_int_equal(acl_privs_parse("", &out, &e), 0);
	assert_true(out == 0);
	assert_int_equal(acl_privs_parse(" ,; ", &out, &e), 0);
	assert_true(out == 0);
	assert_int_equal(acl_privs_parse("VM.Audit VM.Audit", &out, &e), 0);
	assert_true(out == ACL_PRIV(ACL_PRIV_VM_AUDIT));
}

static void test_privs_parse_names_the_unknown_privilege(void **state)
{
	static const char *const bad[] = {
	        "VM.Audit,VM.Monitor",
	        "VM.Config.*",
	        "vm.audit",
	        "VM.Audit!",
	        "Sys.Audit,Sys.Audit.",
	        "VM.Audit:VM.Clone",
	};
	char longname[300];
	acl_privs_t out = 7;
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		err_clear(&e);
		assert_int_equal(acl_privs_parse(bad[i], &out, &e), -EINVAL);
		assert_non_null(strstr(e.msg, "invalid privilege '"));
	}
	assert_true(out == 7); /* untouched on failure */
	assert_int_equal(acl_privs_parse("VM.Audit,VM.Monitor", &out, &e),
	                 -EINVAL);
	assert_string_equal(e.msg, "invalid privilege 'VM.Monitor'");

	memset(longname, 'A', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(acl_privs_parse(longname, &out, &e), -EINVAL);
	assert_true(strlen(e.msg) < 80);
}

static void test_privs_format_in_table_order(void **state)
{
	char text[ACL_PRIVS_TEXT_MAX], small[12];
	acl_privs_t back;
	struct err e;

	(void)state;
	assert_int_equal(acl_privs_format(0, text, sizeof text), 0);
	assert_string_equal(text, "");
	assert_int_equal(acl_privs_format(privs("VM.Clone Datastore.Audit "
	                                        "Sys.Audit"),
	                                  text, sizeof text),
	                 0);
	assert_string_equal(text, "Datastore.Audit,Sys.Audit,VM.Clone");

	assert_int_equal(acl_privs_format(ACL_PRIVS_ALL, text, sizeof text), 0);
	assert_int_equal(acl_privs_parse(text, &back, &e), 0);
	assert_true(back == ACL_PRIVS_ALL);
	/* Bits beyond the table are not privileges. */
	assert_int_equal(acl_privs_format(~(acl_privs_t)0, text, sizeof text),
	                 0);
	assert_int_equal(acl_privs_parse(text, &back, &e), 0);
	assert_true(back == ACL_PRIVS_ALL);

	assert_int_equal(
	        acl_privs_format(privs("VM.Audit"), small, sizeof small), 0);
	assert_string_equal(small, "VM.Audit");
	assert_int_equal(acl_privs_format(privs("VM.Audit,VM.Clone"), small,
	                                  sizeof small),
	                 -ERANGE);
	assert_string_equal(small, "");
	/* Exactly fits: "VM.Audit" + NUL is 9 bytes. */
	assert_int_equal(acl_privs_format(privs("VM.Audit"), small, 9), 0);
	assert_int_equal(acl_privs_format(privs("VM.Audit"), small, 8),
	                 -ERANGE);
	assert_int_equal(acl_privs_format(0, small, 0), -ERANGE);
}

/* --------------------------------------------------------------- roles */

/* PVE 9.1's special roles, as `pveum role list` prints them. */
static const struct {
	const char *roleid;
	const char *privs;
} pve_roles[] = {
        {"Administrator",
         "Datastore.Allocate,Datastore.AllocateSpace,"
         "Datastore.AllocateTemplate,Datastore.Audit,Group.Allocate,"
         "Mapping.Audit,Mapping.Modify,Mapping.Use,Permissions.Modify,"
         "Pool.Allocate,Pool.Audit,Realm.Allocate,Realm.AllocateUser,"
         "SDN.Allocate,SDN.Audit,SDN.Use,Sys.AccessNetwork,Sys.Audit,"
         "Sys.Console,Sys.Incoming,Sys.Modify,Sys.PowerMgmt,Sys.Syslog,"
         "User.Modify,VM.Allocate,VM.Audit,VM.Backup,VM.Clone,"
         "VM.Config.CDROM,VM.Config.CPU,VM.Config.Cloudinit,VM.Config.Disk,"
         "VM.Config.HWType,VM.Config.Memory,VM.Config.Network,"
         "VM.Config.Options,VM.Console,VM.GuestAgent.Audit,"
         "VM.GuestAgent.FileRead,VM.GuestAgent.FileSystemMgmt,"
         "VM.GuestAgent.FileWrite,VM.GuestAgent.Unrestricted,VM.Migrate,"
         "VM.PowerMgmt,VM.Replicate,VM.Snapshot,VM.Snapshot.Rollback"},
        {"NoAccess", ""},
        {"PVEAdmin",
         "Datastore.Allocate,Datastore.AllocateSpace,"
         "Datastore.AllocateTemplate,Datastore.Audit,Group.Allocate,"
         "Mapping.Audit,Mapping.Use,Pool.Allocate,Pool.Audit,"
         "Realm.AllocateUser,SDN.Allocate,SDN.Audit,SDN.Use,Sys.Audit,"
         "Sys.Console,Sys.Syslog,User.Modify,VM.Allocate,VM.Audit,VM.Backup,"
         "VM.Clone,VM.Config.CDROM,VM.Config.CPU,VM.Config.Cloudinit,"
         "VM.Config.Disk,VM.Config.HWType,VM.Config.Memory,"
         "VM.Config.Network,VM.Config.Options,VM.Console,"
         "VM.GuestAgent.Audit,VM.GuestAgent.FileRead,"
         "VM.GuestAgent.FileSystemMgmt,VM.GuestAgent.FileWrite,"
         "VM.GuestAgent.Unrestricted,VM.Migrate,VM.PowerMgmt,VM.Replicate,"
         "VM.Snapshot,VM.Snapshot.Rollback"},
        {"PVEAuditor", "Datastore.Audit,Mapping.Audit,Pool.Audit,SDN.Audit,"
                       "Sys.Audit,VM.Audit,VM.GuestAgent.Audit"},
        {"PVEDatastoreAdmin", "Datastore.Allocate,Datastore.AllocateSpace,"
                              "Datastore.AllocateTemplate,Datastore.Audit"},
        {"PVEDatastoreUser", "Datastore.AllocateSpace,Datastore.Audit"},
        {"PVEMappingAdmin", "Mapping.Audit,Mapping.Modify,Mapping.Use"},
        {"PVEMappingUser", "Mapping.Audit,Mapping.Use"},
        {"PVEPoolAdmin", "Pool.Allocate,Pool.Audit"},
        {"PVEPoolUser", "Pool.Audit"},
        {"PVESDNAdmin", "SDN.Allocate,SDN.Audit,SDN.Use"},
        {"PVESDNUser", "SDN.Audit,SDN.Use"},
        {"PVESysAdmin", "Sys.Audit,Sys.Console,Sys.Syslog"},
        {"PVETemplateUser", "VM.Audit,VM.Clone"},
        {"PVEUserAdmin", "Group.Allocate,Realm.AllocateUser,User.Modify"},
        {"PVEVMAdmin",
         "VM.Allocate,VM.Audit,VM.Backup,VM.Clone,VM.Config.CDROM,"
         "VM.Config.CPU,VM.Config.Cloudinit,VM.Config.Disk,VM.Config.HWType,"
         "VM.Config.Memory,VM.Config.Network,VM.Config.Options,VM.Console,"
         "VM.GuestAgent.Audit,VM.GuestAgent.FileRead,"
         "VM.GuestAgent.FileSystemMgmt,VM.GuestAgent.FileWrite,"
         "VM.GuestAgent.Unrestricted,VM.Migrate,VM.PowerMgmt,VM.Replicate,"
         "VM.Snapshot,VM.Snapshot.Rollback"},
        {"PVEVMUser",
         "VM.Audit,VM.Backup,VM.Config.CDROM,VM.Config.Cloudinit,VM.Console,"
         "VM.GuestAgent.Audit,VM.GuestAgent.FileRead,"
         "VM.GuestAgent.FileSystemMgmt,VM.GuestAgent.FileWrite,"
         "VM.PowerMgmt"},
};

static void test_every_builtin_role_holds_pves_privileges(void **state)
{
	char text[ACL_PRIVS_TEXT_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(pve_roles); i++) {
		acl_privs_t p = builtin(pve_roles[i].roleid);

		assert_int_equal(acl_privs_format(p, text, sizeof text), 0);
		assert_string_equal(text, pve_roles[i].privs);
	}
	assert_true(acl_role_builtin("PVEVMUser", NULL));
}

static void test_other_roles_are_not_builtin(void **state)
{
	acl_privs_t p = 42;

	(void)state;
	assert_false(acl_role_builtin("pveadmin", &p));
	assert_false(acl_role_builtin("PVESysUser", &p)); /* PVE has none */
	assert_false(acl_role_builtin("PVEUserUser", &p));
	assert_false(acl_role_builtin("Terraform", &p));
	assert_false(acl_role_builtin("", &p));
	assert_false(acl_role_builtin(NULL, &p));
	assert_true(p == 42);
}

/* --------------------------------------------------------------- paths */

static void test_path_normalize_accepts_pve_paths(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"/", "/"},
	        {"//", "/"},
	        {"/vms/100", "/vms/100"},
	        {"/vms/100/", "/vms/100"},
	        {"//vms///100//", "/vms/100"},
	        {"/vms", "/vms"},
	        {"/vms/999999", "/vms/999999"},
	        {"/nodes", "/nodes"},
	        {"/nodes/pve-1.example_x", "/nodes/pve-1.example_x"},
	        {"/storage/local-lvm", "/storage/local-lvm"},
	        {"/access", "/access"},
	        {"/access/groups", "/access/groups"},
	        {"/access/groups/admins", "/access/groups/admins"},
	        {"/access/realm/pve", "/access/realm/pve"},
	        {"/pool/tenant", "/pool/tenant"},
	        {"/pool/a/b/c", "/pool/a/b/c"},
	        {"/sdn", "/sdn"},
	        {"/sdn/zones/z1/vnet1/4094", "/sdn/zones/z1/vnet1/4094"},
	        {"/sdn/controllers/evpn_1", "/sdn/controllers/evpn_1"},
	        {"/sdn/ipams/pve", "/sdn/ipams/pve"},
	        {"/sdn/prefix-lists", "/sdn/prefix-lists"},
	        {"/mapping/pci/gpu0", "/mapping/pci/gpu0"},
	        {"/storage/...", "/storage/..."},
	};
	char out[ACL_PATH_MAX + 1];
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(cases); i++) {
		err_clear(&e);
		memset(out, 'x', sizeof out);
		if (acl_path_normalize(cases[i].in, out, sizeof out, &e) != 0)
			fail_msg("%s: %s", cases[i].in, e.msg);
		assert_string_equal(out, cases[i].out);
	}
}

static void test_path_normalize_refuses_hostile_and_unknown(void **state)
{
	static const char *const bad[] = {
	        "",
	        "vms/100",
	        " /vms",
	        "/..",
	        "/vms/..",
	        "/vms/../",
	        "/vms/100/..",
	        "/./vms",
	        "/vms/.",
	        "/storage/../access",
	        "/vms/100 ",
	        "/vms/1\n00",
	        "/vms/\x7f",
	        "/vms/\xc3\xa9",
	        "/vms/100;rm",
	        "/storage/a*b",
	        "/storage/a\\b",
	        "/storage/a%2fb",
	        "/nodes/n1:x",  /* ':' and '@' are path bytes, but */
	        "/storage/a@b", /* no check_path row takes them */
	        "/vms/99",      /* vmids start at 100 */
	        "/vms/0100",
	        "/vms/abc",
	        "/vms/100/disk",
	        "/nodes/n1/qemu",
	        "/cluster",
	        "/Vms/100",
	        "/access/users",
	        "/access/groups/a/b",
	        "/pool/a/b/c/d",
	        "/sdn/zones/z/v/0",
	        "/sdn/zones/z/v/10000",
	        "/sdn/dns/a-b",
	        "/mapping/pci/gpu/0",
	        "/sdn/zones/z/v/1/x/y/z",
	};
	char out[ACL_PATH_MAX + 1];
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		err_clear(&e);
		if (acl_path_normalize(bad[i], out, sizeof out, &e) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(e.msg[0] != '\0');
	}
	assert_int_equal(acl_path_normalize(NULL, out, sizeof out, &e),
	                 -EINVAL);
	assert_int_equal(acl_path_normalize("/vms/..", out, sizeof out, &e),
	                 -EINVAL);
	assert_string_equal(e.msg, "ACL path: '.' and '..' are not allowed");
	assert_int_equal(acl_path_normalize("/cluster", out, sizeof out, &e),
	                 -EINVAL);
	assert_string_equal(e.msg, "invalid ACL path '/cluster'");
}

static void test_path_normalize_limits_length(void **state)
{
	char in[4096], out[ACL_PATH_MAX + 1];
	struct err e;

	(void)state;
	/* "/storage/" + 247 bytes is 256: the limit. */
	memset(in, 0, sizeof in);
	memcpy(in, "/storage/", 9);
	memset(in + 9, 'a', 247);
	assert_int_equal(acl_path_normalize(in, out, sizeof out, &e), 0);
	assert_int_equal(strlen(out), ACL_PATH_MAX);
	in[9 + 247] = 'a';
	assert_int_equal(acl_path_normalize(in, out, sizeof out, &e), -EINVAL);
	/* Slashes collapse before the length counts. */
	memset(in, '/', sizeof in - 1);
	in[sizeof in - 1] = '\0';
	memcpy(in + 3000, "vms/100", 7);
	assert_int_equal(acl_path_normalize(in, out, sizeof out, &e), 0);
	assert_string_equal(out, "/vms/100");
	/* Many short segments, and one huge one. */
	for (size_t i = 0; i + 2 < sizeof in; i += 2)
		memcpy(in + i, "/a", 2);
	assert_int_equal(acl_path_normalize(in, out, sizeof out, &e), -EINVAL);
	memset(in + 1, 'a', sizeof in - 2);
	assert_int_equal(acl_path_normalize(in, out, sizeof out, &e), -EINVAL);
	/* A valid path that does not fit out. */
	assert_int_equal(acl_path_normalize("/vms/100", out, 8, &e), -ERANGE);
	assert_int_equal(acl_path_normalize("/vms/100", out, 9, &e), 0);
}

/* ---------------------------------------------------------- evaluation */

static void test_root_pam_holds_everything_everywhere(void **state)
{
	struct world *wd = world_new();
	acl_privs_t propagated = 0;

	(void)state;
	acl(wd, "/", ACL_USER, "root@pam", "NoAccess", true);
	assert_true(acl_privs_at(&wd->w,
	                         &(struct acl_principal){"root@pam", "", false},
	                         "/vms/100") == ACL_PRIVS_ALL);
	assert_true(acl_privs_at_full(
	                    &wd->w,
	                    &(struct acl_principal){"root@pam", "", false}, "/",
	                    &propagated) == ACL_PRIVS_ALL);
	assert_true(propagated == ACL_PRIVS_ALL);
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"root@pam", "tf", false},
	                     "/storage/local") == ACL_PRIVS_ALL);
	/* A privsep token of root holds only what its own ACL gives. */
	assert_string_equal(at(wd, token("root@pam", "tf", true), "/vms/100"),
	                    "");
	acl(wd, "/vms", ACL_TOKEN, "root@pam!tf", "PVETemplateUser", true);
	assert_string_equal(at(wd, token("root@pam", "tf", true), "/vms/100"),
	                    "VM.Audit,VM.Clone");
	/* Only root@pam: not root@pve, not a look-alike. */
	acl(wd, "/", ACL_USER, "root@pve", "PVEAuditor", false);
	assert_string_equal(at(wd, user("root@pve"), "/vms/100"), "");
	assert_true(acl_privs_at(&wd->w,
	                         &(struct acl_principal){"Root@pam", "", false},
	                         "/") == 0);
	test_free(wd);
}

static void test_propagate_reaches_deeper_paths_only_when_set(void **state)
{
	struct world *wd = world_new();

	(void)state;
	acl(wd, "/vms", ACL_USER, "alice@pve", "PVEVMUser", false);
	acl(wd, "/storage", ACL_USER, "alice@pve", "PVEDatastoreUser", true);
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/vms") == builtin("PVEVMUser"));
	assert_string_equal(at(wd, user("alice@pve"), "/vms/100"), "");
	assert_string_equal(at(wd, user("alice@pve"), "/"), "");
	assert_string_equal(at(wd, user("alice@pve"), "/storage"),
	                    "Datastore.AllocateSpace,Datastore.Audit");
	assert_string_equal(at(wd, user("alice@pve"), "/storage/local"),
	                    "Datastore.AllocateSpace,Datastore.Audit");
	/* Queries are walked by segment, whatever their slashes. */
	assert_string_equal(at(wd, user("alice@pve"), "//storage///local/"),
	                    "Datastore.AllocateSpace,Datastore.Audit");
	/* Not a prefix match: /storagex is not below /storage. */
	assert_string_equal(at(wd, user("alice@pve"), "/storagex"), "");
	test_free(wd);
}

static void test_propagation_reaches_very_long_paths(void **state)
{
	struct world *wd = world_new();
	char path[2048];

	(void)state;
	acl(wd, "/", ACL_USER, "alice@pve", "PVEAuditor", true);
	memset(path, 0, sizeof path);
	for (size_t i = 0; i + 3 < sizeof path; i += 3)
		memcpy(path + i, "/ab", 3);
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     path) == builtin("PVEAuditor"));
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     NULL) == 0);
	test_free(wd);
}

static void test_user_entries_override_group_entries_at_one_level(void **state)
{
	struct world *wd = world_new();

	(void)state;
	member(wd, "admins", "alice@pve");
	acl(wd, "/vms", ACL_GROUP, "admins", "PVEVMAdmin", true);
	acl(wd, "/vms", ACL_USER, "alice@pve", "PVETemplateUser", true);
	assert_string_equal(at(wd, user("alice@pve"), "/vms/100"),
	                    "VM.Audit,VM.Clone");
	test_free(wd);
}

static void test_group_entries_apply_when_the_users_do_not(void **state)
{
	struct world *wd = world_new();

	(void)state;
	member(wd, "ops", "alice@pve");
	/* At /vms alice's own entry does not propagate to /vms/100, so
	 * there her group's propagating entry is what applies. */
	acl(wd, "/vms", ACL_USER, "alice@pve", "PVEAuditor", false);
	acl(wd, "/vms", ACL_GROUP, "ops", "PVETemplateUser", true);
	assert_string_equal(at(wd, user("alice@pve"), "/vms/100"),
	                    "VM.Audit,VM.Clone");
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/vms") == builtin("PVEAuditor"));
	test_free(wd);
}

static void test_deeper_level_replaces_higher_one(void **state)
{
	struct world *wd = world_new();

	(void)state;
	member(wd, "ops", "alice@pve");
	acl(wd, "/", ACL_USER, "alice@pve", "PVEAdmin", true);
	acl(wd, "/vms/100", ACL_USER, "alice@pve", "PVETemplateUser", false);
	acl(wd, "/vms/200", ACL_GROUP, "ops", "PVEAuditor", false);
	/* Replaced, not added: no Sys.Audit from / at /vms/100. */
	assert_string_equal(at(wd, user("alice@pve"), "/vms/100"),
	                    "VM.Audit,VM.Clone");
	/* The deepest level wins even when it is a group's. */
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/vms/200") == builtin("PVEAuditor"));
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/vms/300") == builtin("PVEAdmin"));
	test_free(wd);
}

static void test_roles_at_one_level_add_up(void **state)
{
	struct world *wd = world_new();

	(void)state;
	member(wd, "a", "bob@pve");
	member(wd, "b", "bob@pve");
	acl(wd, "/", ACL_USER, "alice@pve", "PVEPoolUser", true);
	acl(wd, "/", ACL_USER, "alice@pve", "PVETemplateUser", true);
	acl(wd, "/", ACL_GROUP, "a", "PVEPoolUser", true);
	acl(wd, "/", ACL_GROUP, "b", "PVESDNUser", true);
	assert_string_equal(at(wd, user("alice@pve"), "/vms/100"),
	                    "Pool.Audit,VM.Audit,VM.Clone");
	assert_string_equal(at(wd, user("bob@pve"), "/sdn"),
	                    "Pool.Audit,SDN.Audit,SDN.Use");
	test_free(wd);
}

static void test_noaccess_wins_at_its_level_and_yields_below(void **state)
{
	struct world *wd = world_new();

	(void)state;
	member(wd, "ops", "alice@pve");
	acl(wd, "/", ACL_USER, "alice@pve", "PVEAdmin", true);
	acl(wd, "/", ACL_USER, "alice@pve", "NoAccess", true);
	acl(wd, "/vms/100", ACL_GROUP, "ops", "PVEVMUser", false);
	assert_string_equal(at(wd, user("alice@pve"), "/"), "");
	assert_string_equal(at(wd, user("alice@pve"), "/storage/local"), "");
	/* A deeper level replaces the NoAccess, as in PVE. */
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/vms/100") == builtin("PVEVMUser"));
	/* A group's NoAccess at the same level as its other roles. */
	acl(wd, "/storage", ACL_GROUP, "ops", "NoAccess", false);
	acl(wd, "/storage", ACL_GROUP, "ops", "PVEDatastoreAdmin", false);
	assert_string_equal(at(wd, user("alice@pve"), "/storage"), "");
	test_free(wd);
}

static void test_group_entries_need_membership(void **state)
{
	struct world *wd = world_new();

	(void)state;
	member(wd, "ops", "alice@pve");
	member(wd, "dev", "bob@pve");
	acl(wd, "/", ACL_GROUP, "ops", "PVEAuditor", true);
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/nodes/n1") == builtin("PVEAuditor"));
	assert_string_equal(at(wd, user("bob@pve"), "/nodes/n1"), "");
	/* Groups are not users: a user named like the group gets nothing. */
	assert_string_equal(at(wd, user("ops"), "/nodes/n1"), "");
	test_free(wd);
}

static void test_privsep_token_holds_its_acl_and_its_users(void **state)
{
	struct world *wd = world_new();

	(void)state;
	member(wd, "ops", "alice@pve");
	acl(wd, "/", ACL_USER, "alice@pve", "PVEVMUser", true);
	acl(wd, "/", ACL_TOKEN, "alice@pve!tf", "PVETemplateUser", true);
	/* VM.Clone is the token's but not alice's; VM.Audit is both's. */
	assert_string_equal(at(wd, token("alice@pve", "tf", true), "/vms/100"),
	                    "VM.Audit");
	/* Another token of alice's has no ACL: nothing. */
	assert_string_equal(at(wd, token("alice@pve", "ci", true), "/vms/100"),
	                    "");
	/* A token is in no group, and alice's own entries are not its. */
	acl(wd, "/vms", ACL_GROUP, "ops", "PVEVMAdmin", true);
	assert_string_equal(at(wd, token("alice@pve", "ci", true), "/vms/100"),
	                    "");
	/* The intersection follows the user's own walk. */
	assert_string_equal(at(wd, token("alice@pve", "tf", true), "/vms/100"),
	                    "VM.Audit,VM.Clone");
	test_free(wd);
}

static void test_token_without_privsep_is_its_user(void **state)
{
	struct world *wd = world_new();

	(void)state;
	acl(wd, "/", ACL_USER, "alice@pve", "PVEVMUser", true);
	acl(wd, "/", ACL_TOKEN, "alice@pve!tf", "PVETemplateUser", true);
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "tf", false},
	                     "/vms/100") == builtin("PVEVMUser"));
	test_free(wd);
}

static void test_unknown_roles_are_ignored(void **state)
{
	struct world *wd = world_new();

	(void)state;
	acl(wd, "/", ACL_USER, "alice@pve", "PVEAuditor", true);
	/* Dropped like PVE drops such user.cfg lines: /vms keeps /'s. */
	acl(wd, "/vms", ACL_USER, "alice@pve", "Gone", true);
	acl(wd, "/vms", ACL_USER, "alice@pve", "pveadmin", true);
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/vms/100") == builtin("PVEAuditor"));
	test_free(wd);
}

static void test_custom_roles(void **state)
{
	struct world *wd = world_new();

	(void)state;
	role(wd, "Terraform",
	     "VM.Allocate VM.Clone VM.Config.CDROM "
	     "Datastore.AllocateSpace Sys.Audit");
	/* Built-ins cannot be shadowed. */
	wd->roles[wd->w.nroles] = (struct acl_role){"PVEAuditor", ~0ull};
	wd->w.nroles++;
	acl(wd, "/", ACL_USER, "tf@pve", "Terraform", true);
	acl(wd, "/", ACL_USER, "audit@pve", "PVEAuditor", true);
	assert_string_equal(at(wd, user("tf@pve"), "/vms/100"),
	                    "Datastore.AllocateSpace,Sys.Audit,VM.Allocate,"
	                    "VM.Clone,VM.Config.CDROM");
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"audit@pve", "", false},
	                     "/") == builtin("PVEAuditor"));
	test_free(wd);
}

static void test_pool_roles_reach_pool_members(void **state)
{
	struct world *wd = world_new();

	(void)state;
	pool_member(wd, "tenant", "/vms/100");
	pool_member(wd, "tenant", "/storage/local");
	pool_member(wd, "locked", "/vms/300");
	acl(wd, "/pool/tenant", ACL_USER, "alice@pve", "PVEVMUser", false);
	acl(wd, "/", ACL_USER, "alice@pve", "PVEAuditor", true);
	acl(wd, "/pool/locked", ACL_USER, "alice@pve", "NoAccess", false);
	/* Pool roles add to the path's own. */
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/vms/100") ==
	        (builtin("PVEVMUser") | builtin("PVEAuditor")));
	assert_true(
	        acl_privs_at(&wd->w,
	                     &(struct acl_principal){"alice@pve", "", false},
	                     "/vms/200") == builtin("PVEAuditor"));
	/* A NoAccess on the pool forbids its members. */
	assert_string_equal(at(wd, user("alice@pve"), "/vms/300"), "");
	/* ... and a NoAccess on the member is not trumped by the pool. */
	acl(wd, "/vms/100", ACL_USER, "alice@pve", "NoAccess", false);
	assert_string_equal(at(wd, user("alice@pve"), "/vms/100"), "");
	test_free(wd);
}

/* ----------------------------------------------------- /access/permissions */

static json_t *privs_of(json_t *res, const char *path)
{
	json_t *obj = json_object_get(res, path);

	assert_non_null(obj);
	return obj;
}

static void test_permissions_json_for_a_small_world(void **state)
{
	struct world *wd = world_new();
	struct acl_principal alice = user("alice@pve");
	struct acl_principal root = user("root@pam");
	json_t *res, *obj;

	(void)state;
	member(wd, "ops", "alice@pve");
	acl(wd, "/", ACL_USER, "alice@pve", "PVEAuditor", true);
	acl(wd, "/vms/100", ACL_GROUP, "ops", "PVETemplateUser", false);
	acl(wd, "/storage/local", ACL_USER, "bob@pve", "PVEDatastoreUser",
	    false);
	acl(wd, "/nodes/n1", ACL_USER, "bob@pve", "PVESysAdmin", false);
	acl(wd, "/nodes/n1", ACL_USER, "alice@pve", "NoAccess", true);
	acl(wd, "/pool/p/sub", ACL_USER, "bob@pve", "Gone", true);

	res = acl_permissions(&wd->w, &alice, NULL);
	assert_non_null(res);
	/* The top paths, plus ACL paths (anyone's) and their parents, where
	 * alice holds anything; not /nodes/n1 (NoAccess) nor /pool/p
	 * (its only entry names an unknown role). */
	assert_int_equal(json_object_size(res), 10);
	obj = privs_of(res, "/");
	assert_int_equal(json_object_size(obj), 7);
	assert_int_equal(json_integer_value(json_object_get(obj, "Sys.Audit")),
	                 1);
	privs_of(res, "/access");
	privs_of(res, "/access/groups");
	privs_of(res, "/nodes");
	privs_of(res, "/pool");
	privs_of(res, "/sdn");
	privs_of(res, "/storage");
	privs_of(res, "/vms");
	privs_of(res, "/storage/local");
	assert_null(json_object_get(res, "/nodes/n1"));
	assert_null(json_object_get(res, "/pool/p"));
	/* At /vms/100 the group's unpropagated role: flags are 0. */
	obj = privs_of(res, "/vms/100");
	assert_int_equal(json_object_size(obj), 2);
	assert_int_equal(json_integer_value(json_object_get(obj, "VM.Clone")),
	                 0);
	assert_int_equal(json_integer_value(json_object_get(obj, "VM.Audit")),
	                 0);
	json_decref(res);

	/* One path: answered even when empty. */
	res = acl_permissions(&wd->w, &alice, "/nodes/n1");
	assert_int_equal(json_object_size(res), 1);
	assert_int_equal(json_object_size(privs_of(res, "/nodes/n1")), 0);
	json_decref(res);
	res = acl_permissions(&wd->w, &alice, "/vms/200");
	assert_int_equal(json_object_size(privs_of(res, "/vms/200")), 7);
	json_decref(res);

	/* root@pam: every privilege, propagated, at every path listed. */
	res = acl_permissions(&wd->w, &root, NULL);
	assert_int_equal(json_object_size(res), 11);
	assert_null(json_object_get(res, "/pool/p")); /* a dropped entry's */
	json_decref(res);
	res = acl_permissions(&wd->w, &root, "/vms/100");
	obj = privs_of(res, "/vms/100");
	assert_int_equal(json_object_size(obj), acl_priv_count());
	assert_int_equal(
	        json_integer_value(json_object_get(obj, "Permissions.Modify")),
	        1);
	json_decref(res);
	test_free(wd);
}

static void test_permissions_json_lists_pool_members(void **state)
{
	struct world *wd = world_new();
	struct acl_principal alice = user("alice@pve");
	json_t *res, *obj;

	(void)state;
	pool_member(wd, "tenant", "/vms/100");
	acl(wd, "/pool/tenant", ACL_USER, "alice@pve", "PVEVMUser", true);
	res = acl_permissions(&wd->w, &alice, NULL);
	assert_non_null(res);
	assert_non_null(json_object_get(res, "/pool/tenant"));
	obj = privs_of(res, "/vms/100");
	/* Pool-derived privileges never propagate. */
	assert_int_equal(json_integer_value(json_object_get(obj, "VM.Console")),
	                 0);
	assert_null(json_object_get(res, "/vms"));
	json_decref(res);
	test_free(wd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_priv_table_is_pve9s_sorted_and_fits_the_bitset),
	        cmocka_unit_test(test_privs_parse_accepts_proxmox_separators),
	        cmocka_unit_test(test_privs_parse_names_the_unknown_privilege),
	        cmocka_unit_test(test_privs_format_in_table_order),
	        cmocka_unit_test(test_every_builtin_role_holds_pves_privileges),
	        cmocka_unit_test(test_other_roles_are_not_builtin),
	        cmocka_unit_test(test_path_normalize_accepts_pve_paths),
	        cmocka_unit_test(
	                test_path_normalize_refuses_hostile_and_unknown),
	        cmocka_unit_test(test_path_normalize_limits_length),
	        cmocka_unit_test(test_root_pam_holds_everything_everywhere),
	        cmocka_unit_test(
	                test_propagate_reaches_deeper_paths_only_when_set),
	        cmocka_unit_test(test_propagation_reaches_very_long_paths),
	        cmocka_unit_test(
	                test_user_entries_override_group_entries_at_one_level),
	        cmocka_unit_test(
	                test_group_entries_apply_when_the_users_do_not),
	        cmocka_unit_test(test_deeper_level_replaces_higher_one),
	        cmocka_unit_test(test_roles_at_one_level_add_up),
	        cmocka_unit_test(
	                test_noaccess_wins_at_its_level_and_yields_below),
	        cmocka_unit_test(test_group_entries_need_membership),
	        cmocka_unit_test(
	                test_privsep_token_holds_its_acl_and_its_users),
	        cmocka_unit_test(test_token_without_privsep_is_its_user),
	        cmocka_unit_test(test_unknown_roles_are_ignored),
	        cmocka_unit_test(test_custom_roles),
	        cmocka_unit_test(test_pool_roles_reach_pool_members),
	        cmocka_unit_test(test_permissions_json_for_a_small_world),
	        cmocka_unit_test(test_permissions_json_lists_pool_members),
	};

	return cmocka_run_group_tests_name("node/acl", tests, NULL, NULL);
}
