/* Unit tests for consensus/schema's pure pieces (the migration list, the
 * version check, the gate, the id list in log lines) and for cairn's
 * migrations themselves, run on a plain in-memory SQLite. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* ------------------------------------------------------------------------
 * The migration list. */

static void test_schema_list_of_cairn_is_valid(void **state)
{
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(
	        db__schema_list_check(db_migrations, db_migrations_count, &e),
	        0);
	assert_true(db_migrations_count >= 1);
}

static void test_schema_newest_is_the_last_migration(void **state)
{
	(void)state;
	assert_int_equal(db_schema_newest(),
	                 db_migrations[db_migrations_count - 1].version);
	assert_int_equal(db_schema_newest(), db_migrations_count);
}

static void test_schema_list_empty_is_valid_and_knows_version_zero(void **state)
{
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_list_check(NULL, 0, &e), 0);
	assert_int_equal(db__schema_list_newest(NULL, 0), 0);
}

static void test_schema_list_with_gap_fails_naming_the_entry(void **state)
{
	const struct db_migration list[] = {
	        {1, "one", "SELECT 1"},
	        {3, "three", "SELECT 3"},
	};
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_list_check(list, 2, &e), -EINVAL);
	assert_int_equal(e.code, -EINVAL);
	assert_non_null(strstr(e.msg, "migration 2 of the list has version 3"));
}

static void test_schema_list_starting_at_zero_fails(void **state)
{
	const struct db_migration list[] = {{0, "zero", "SELECT 0"}};
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_list_check(list, 1, &e), -EINVAL);
}

static void test_schema_list_out_of_order_fails(void **state)
{
	const struct db_migration list[] = {
	        {2, "two", "SELECT 2"},
	        {1, "one", "SELECT 1"},
	};
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_list_check(list, 2, &e), -EINVAL);
}

static void test_schema_list_without_name_fails(void **state)
{
	const struct db_migration nameless[] = {{1, "", "SELECT 1"}};
	const struct db_migration null_name[] = {{1, NULL, "SELECT 1"}};
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_list_check(nameless, 1, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "migration 1 has no name"));
	assert_int_equal(db__schema_list_check(null_name, 1, &e), -EINVAL);
}

static void test_schema_list_without_sql_fails_naming_it(void **state)
{
	const struct db_migration list[] = {
	        {1, "one", "SELECT 1"},
	        {2, "two", NULL},
	};
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_list_check(list, 2, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "migration 2 (two) has no SQL"));
}

/* ------------------------------------------------------------------------
 * Refusing a newer schema. */

static void test_schema_current_equal_to_newest_is_accepted(void **state)
{
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_check_current(3, 3, &e), 0);
	assert_int_equal(db__schema_check_current(0, 3, &e), 0);
	assert_int_equal(db__schema_check_current(0, 0, &e), 0);
	assert_int_equal(e.code, 0);
}

static void
test_schema_current_newer_than_known_is_refused_naming_both(void **state)
{
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_check_current(5, 3, &e), -EPROTONOSUPPORT);
	assert_int_equal(e.code, -EPROTONOSUPPORT);
	assert_string_equal(e.msg,
	                    "database schema is at version 5, but this cairnd "
	                    "knows versions up to 3: upgrade cairnd on this "
	                    "node");
}

static void test_schema_any_schema_is_too_new_for_an_empty_list(void **state)
{
	struct err e;

	(void)state;
	err_clear(&e);
	assert_int_equal(db__schema_check_current(1, 0, &e), -EPROTONOSUPPORT);
}

/* ------------------------------------------------------------------------
 * The gate. */

static void test_schema_gate_opens_when_every_member_supports_it(void **state)
{
	const uint64_t members[] = {1, 2, 3};
	const struct db__schema_support support[] = {{3, 4}, {1, 2}, {2, 7}};
	uint64_t held[4];

	(void)state;
	assert_int_equal(db__schema_holders(members, 3, support, 3, 2, held, 4),
	                 0);
}

static void test_schema_gate_is_held_by_a_member_with_a_lower_max(void **state)
{
	const uint64_t members[] = {1, 2, 3};
	const struct db__schema_support support[] = {{1, 3}, {2, 2}, {3, 3}};
	uint64_t held[4] = {0};

	(void)state;
	assert_int_equal(db__schema_holders(members, 3, support, 3, 3, held, 4),
	                 1);
	assert_int_equal(held[0], 2);
}

static void test_schema_gate_is_held_by_a_member_without_a_row(void **state)
{
	const uint64_t members[] = {1, 2, 3};
	const struct db__schema_support support[] = {{1, 9}, {3, 9}};
	uint64_t held[4] = {0};

	(void)state;
	assert_int_equal(db__schema_holders(members, 3, support, 2, 1, held, 4),
	                 1);
	assert_int_equal(held[0], 2);
}

static void
test_schema_gate_opens_at_exactly_the_supported_version(void **state)
{
	const uint64_t members[] = {7};
	const struct db__schema_support support[] = {{7, 4}};

	(void)state;
	assert_int_equal(db__schema_holders(members, 1, support, 1, 4, NULL, 0),
	                 0);
	assert_int_equal(db__schema_holders(members, 1, support, 1, 5, NULL, 0),
	                 1);
}

static void test_schema_gate_ignores_rows_of_former_members(void **state)
{
	/* Node 9 left the cluster with an old cairnd: it no longer gates. */
	const uint64_t members[] = {1, 2};
	const struct db__schema_support support[] = {{1, 5}, {9, 1}, {2, 5}};

	(void)state;
	assert_int_equal(db__schema_holders(members, 2, support, 3, 5, NULL, 0),
	                 0);
}

static void
test_schema_gate_lists_holders_in_member_order_up_to_max(void **state)
{
	const uint64_t members[] = {10, 11, 12, 13, 14};
	const struct db__schema_support support[] = {{12, 9}};
	uint64_t held[2] = {0};

	(void)state;
	assert_int_equal(db__schema_holders(members, 5, support, 1, 2, held, 2),
	                 4);
	assert_int_equal(held[0], 10);
	assert_int_equal(held[1], 11);
}

static void test_schema_gate_handles_ids_above_int64_max(void **state)
{
	/* Raft ids derived from addresses use all 64 bits; they go through
	 * SQLite's signed INTEGER by bit pattern and must still match. */
	const uint64_t big = UINT64_C(0xfedcba9876543210);
	const uint64_t members[] = {big};
	const struct db__schema_support support[] = {
	        {(uint64_t)(int64_t)big, 2}};

	(void)state;
	assert_int_equal(db__schema_holders(members, 1, support, 1, 2, NULL, 0),
	                 0);
}

static void test_schema_gate_with_no_members_holds_nothing(void **state)
{
	(void)state;
	assert_int_equal(db__schema_holders(NULL, 0, NULL, 0, 1, NULL, 0), 0);
}

/* ------------------------------------------------------------------------
 * Ids in log lines. */

static void test_schema_ids_format_lists_ids_with_commas(void **state)
{
	const uint64_t ids[] = {2, 3, UINT64_MAX};
	char out[64];

	(void)state;
	db__schema_ids_format(ids, 3, 3, out, sizeof out);
	assert_string_equal(out, "2, 3, 18446744073709551615");
	db__schema_ids_format(ids, 0, 0, out, sizeof out);
	assert_string_equal(out, "");
}

static void test_schema_ids_format_announces_ids_left_out(void **state)
{
	const uint64_t ids[] = {2, 3};
	char out[64];

	(void)state;
	db__schema_ids_format(ids, 2, 5, out, sizeof out);
	assert_string_equal(out, "2, 3 and 3 more");
}

static void test_schema_ids_format_cuts_with_dots_when_short(void **state)
{
	const uint64_t ids[] = {1111, 2222, 3333};
	char out[12], exact[11], small[4];
	char tiny[1];

	(void)state;
	db__schema_ids_format(ids, 3, 3, out, sizeof out);
	assert_string_equal(out, "1111, ...");
	/* The last id needs no room for dots after it. */
	db__schema_ids_format(ids, 2, 2, exact, sizeof exact);
	assert_string_equal(exact, "1111, 2222");
	db__schema_ids_format(ids, 1, 1, small, sizeof small);
	assert_string_equal(small, "...");
	db__schema_ids_format(ids, 3, 3, tiny, sizeof tiny);
	assert_string_equal(tiny, "");
}

/* ------------------------------------------------------------------------
 * cairn's migrations on a plain SQLite (the same engine dqlite runs). */

static sqlite3 *db_with_migrations(void)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	unsigned i;

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	for (i = 0; i < db_migrations_count; i++) {
		int rc = sqlite3_exec(db, db_migrations[i].sql, NULL, NULL,
		                      &msg);

		if (rc != SQLITE_OK) {
			print_error("migration %u (%s): %s\n",
			            db_migrations[i].version,
			            db_migrations[i].name,
			            msg != NULL ? msg : "?");
			sqlite3_free(msg);
			sqlite3_close(db);
			fail();
		}
	}
	return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

static void test_schema_migrations_apply_in_order_on_sqlite(void **state)
{
	static const char *const tables[] = {
	        "cluster",       "nodes",    "guests",   "storage",
	        "ha_resources",  "ha_rules", "ha_state", "node_leases",
	        "users",         "tokens",   "roles",    "groups",
	        "group_members", "acl",      "tasks"};
	char sql[128];
	sqlite3 *db;
	size_t i;

	(void)state;
	db = db_with_migrations();
	for (i = 0; i < CAIRN_ARRAY_SIZE(tables); i++) {
		snprintf(sql, sizeof sql,
		         "SELECT COUNT(*) FROM sqlite_master "
		         "WHERE type = 'table' AND name = '%s'",
		         tables[i]);
		if (query_int(db, sql) != 1)
			print_error("no table %s\n", tables[i]);
		assert_int_equal(query_int(db, sql), 1);
	}
	sqlite3_close(db);
}

static void test_schema_migrations_declare_no_type_dqlite_retypes(void **state)
{
	/* dqlite 1.11.1 types values by these declared types and can abort
	 * on a mismatch (notes/dqlite.md, trap 3). */
	static const char *const forbidden[] = {"BOOLEAN", "DATETIME", "DATE",
	                                        "TIMESTAMP"};
	sqlite3_stmt *tables = NULL, *cols = NULL;
	char sql[256];
	sqlite3 *db;
	int ncols = 0;

	(void)state;
	db = db_with_migrations();
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT name FROM sqlite_master "
	                                    "WHERE type = 'table'",
	                                    -1, &tables, NULL),
	                 SQLITE_OK);
	while (sqlite3_step(tables) == SQLITE_ROW) {
		const char *table =
		        (const char *)sqlite3_column_text(tables, 0);

		snprintf(sql, sizeof sql,
		         "SELECT name, type FROM "
		         "pragma_table_info('%s')",
		         table);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &cols, NULL),
		                 SQLITE_OK);
		while (sqlite3_step(cols) == SQLITE_ROW) {
			const char *type =
			        (const char *)sqlite3_column_text(cols, 1);

			ncols++;
			for (size_t i = 0; i < CAIRN_ARRAY_SIZE(forbidden);
			     i++) {
				if (strcasecmp(type, forbidden[i]) == 0)
					print_error(
					        "%s.%s is %s\n", table,
					        sqlite3_column_text(cols, 0),
					        type);
				assert_int_not_equal(
				        strcasecmp(type, forbidden[i]), 0);
			}
			/* Only the types the schema means to use. */
			assert_true(strcmp(type, "INTEGER") == 0 ||
			            strcmp(type, "TEXT") == 0);
		}
		sqlite3_finalize(cols);
	}
	sqlite3_finalize(tables);
	assert_true(ncols > 50);
	sqlite3_close(db);
}

static void test_schema_migration_1_creates_the_single_cluster_row(void **state)
{
	sqlite3 *db;

	(void)state;
	db = db_with_migrations();
	assert_int_equal(query_int(db, "SELECT COUNT(*) FROM cluster"), 1);
	assert_int_equal(query_int(db, "SELECT revision FROM cluster "
	                               "WHERE id = 1"),
	                 0);
	assert_int_equal(query_int(db, "SELECT name = '' FROM cluster"), 1);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO cluster (id) VALUES (2)",
	                              NULL, NULL, NULL),
	                 SQLITE_CONSTRAINT);
	sqlite3_close(db);
}

static void test_schema_revision_bump_moves_the_cluster_row_by_one(void **state)
{
	sqlite3 *db;

	(void)state;
	db = db_with_migrations();
	assert_int_equal(sqlite3_exec(db,
	                              "UPDATE cluster SET revision = "
	                              "revision + 1 WHERE id = 1",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	assert_int_equal(query_int(db, "SELECT revision FROM cluster"), 1);
	sqlite3_close(db);
}

/* Each statement must fail with a CHECK or NOT NULL constraint. */
static void test_schema_constraints_refuse_bad_rows(void **state)
{
	static const char *const bad[] = {
	        "INSERT INTO guests VALUES (99, 'qemu', 'n1', '', 'd', NULL)",
	        "INSERT INTO guests VALUES (1000000000, 'qemu', 'n1', '', 'd',"
	        " NULL)",
	        "INSERT INTO guests VALUES (100, 'kvm', 'n1', '', 'd', NULL)",
	        "INSERT INTO storage (id, type, shared, digest)"
	        " VALUES ('s', 'dir', 2, 'd')",
	        "INSERT INTO storage (id, type, digest) VALUES ('s', 'nfs', 'd')",
	        "INSERT INTO storage (id, type, options, digest)"
	        " VALUES ('s', 'dir', '{not json', 'd')",
	        "INSERT INTO nodes (id, name, db_id, rpc_address, api_address,"
	        " db_address, role, cert_fingerprint)"
	        " VALUES (1, 'n1', 1, 'a', 'a', 'a', 'leader', 'f')",
	        "UPDATE cluster SET settings = 'nope'",
	        "UPDATE cluster SET revision = -1",
	        "INSERT INTO ha_resources (sid, vmid, state, digest)"
	        " VALUES ('vm:100', 100, 'running', 'd')",
	        "INSERT INTO ha_resources (sid, vmid, digest)"
	        " VALUES ('xx:100', 100, 'd')",
	        "INSERT INTO ha_state (sid, node, state, crm_epoch)"
	        " VALUES ('vm:100', 'n1', 'lost', 1)",
	        "INSERT INTO users (userid) VALUES ('root')",
	        "INSERT INTO tokens (userid, tokenid, digest, privsep)"
	        " VALUES ('root@pam', 't', 'd', 3)",
	        "INSERT INTO acl (path, ugid_type, ugid, roleid)"
	        " VALUES ('vms', 'user', 'root@pam', 'Admin')",
	        "INSERT INTO tasks (upid, node, type, user, starttime)"
	        " VALUES ('x', 'n1', 'qmstart', 'root@pam', 0)",
	        "INSERT INTO tokens (userid, tokenid) VALUES ('root@pam', 't')",
	};
	sqlite3 *db;
	size_t i;

	(void)state;
	db = db_with_migrations();
	for (i = 0; i < CAIRN_ARRAY_SIZE(bad); i++) {
		int rc = sqlite3_exec(db, bad[i], NULL, NULL, NULL);

		if (rc != SQLITE_CONSTRAINT)
			print_error("accepted or failed otherwise (%d): %s\n",
			            rc, bad[i]);
		assert_int_equal(rc, SQLITE_CONSTRAINT);
	}
	sqlite3_close(db);
}

static void test_schema_constraints_accept_good_rows(void **state)
{
	static const char *const good[] = {
	        "INSERT INTO nodes (id, name, db_id, addresses, rpc_address,"
	        " api_address, db_address, role, cert_fingerprint)"
	        " VALUES (1, 'n1', -81985529216486896, '[\"10.0.0.1\"]',"
	        " '10.0.0.1:8016', '10.0.0.1:8006', '10.0.0.1:8017', 'voter',"
	        " 'ab:cd')",
	        "INSERT INTO guests VALUES (100, 'qemu', 'n1', 'memory: 512',"
	        " 'd', NULL)",
	        "INSERT INTO guests VALUES (999999999, 'lxc', 'n1', '', 'd',"
	        " 'migrate')",
	        "INSERT INTO storage (id, type, content, shared, options, digest)"
	        " VALUES ('ceph', 'rbd', 'images,rootdir', 1,"
	        " '{\"pool\":\"rbd\"}', 'd')",
	        "INSERT INTO ha_resources (sid, vmid, digest)"
	        " VALUES ('vm:100', 100, 'd')",
	        "INSERT INTO ha_rules (rule, type, resources, nodes, strict,"
	        " digest) VALUES ('r1', 'node-affinity', '[\"vm:100\"]',"
	        " '{\"n1\":2}', 1, 'd')",
	        "INSERT INTO ha_state (sid, node, state, crm_epoch)"
	        " VALUES ('vm:100', 'n1', 'started', 3)",
	        "INSERT INTO node_leases (node, counter) VALUES ('n1', 1)",
	        "INSERT INTO users (userid) VALUES ('root@pam')",
	        "INSERT INTO tokens (userid, tokenid, digest)"
	        " VALUES ('root@pam', 'ci', 'e3b0c442')",
	        "INSERT INTO roles (roleid, privs, special)"
	        " VALUES ('Administrator', 'VM.PowerMgmt', 1)",
	        "INSERT INTO groups (groupid) VALUES ('admins')",
	        "INSERT INTO group_members VALUES ('admins', 'root@pam')",
	        "INSERT INTO acl (path, ugid_type, ugid, roleid)"
	        " VALUES ('/vms/100', 'token', 'root@pam!ci', 'PVEVMUser')",
	        "INSERT INTO tasks (upid, node, type, id, user, starttime)"
	        " VALUES ('UPID:n1:00001234:00005678:65A0B1C2:qmstart:100:"
	        "root@pam:', 'n1', 'qmstart', '100', 'root@pam', 1700000000)",
	        "UPDATE cluster SET name = 'c1', crm_epoch = 1,"
	        " settings = '{\"ha\":{\"t_dead_ms\":10000}}'",
	};
	sqlite3 *db;
	size_t i;

	(void)state;
	db = db_with_migrations();
	for (i = 0; i < CAIRN_ARRAY_SIZE(good); i++) {
		char *msg = NULL;
		int rc = sqlite3_exec(db, good[i], NULL, NULL, &msg);

		if (rc != SQLITE_OK)
			print_error("refused (%s): %s\n", msg, good[i]);
		sqlite3_free(msg);
		assert_int_equal(rc, SQLITE_OK);
	}
	/* The big Raft id came back with its bit pattern. */
	assert_int_equal((uint64_t)query_int(db, "SELECT db_id FROM nodes"),
	                 UINT64_C(0xfedcba9876543210));
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_schema_list_of_cairn_is_valid),
	        cmocka_unit_test(test_schema_newest_is_the_last_migration),
	        cmocka_unit_test(
	                test_schema_list_empty_is_valid_and_knows_version_zero),
	        cmocka_unit_test(
	                test_schema_list_with_gap_fails_naming_the_entry),
	        cmocka_unit_test(test_schema_list_starting_at_zero_fails),
	        cmocka_unit_test(test_schema_list_out_of_order_fails),
	        cmocka_unit_test(test_schema_list_without_name_fails),
	        cmocka_unit_test(test_schema_list_without_sql_fails_naming_it),
	        cmocka_unit_test(
	                test_schema_current_equal_to_newest_is_accepted),
	        cmocka_unit_test(
	                test_schema_current_newer_than_known_is_refused_naming_both),
	        cmocka_unit_test(
	                test_schema_any_schema_is_too_new_for_an_empty_list),
	        cmocka_unit_test(
	                test_schema_gate_opens_when_every_member_supports_it),
	        cmocka_unit_test(
	                test_schema_gate_is_held_by_a_member_with_a_lower_max),
	        cmocka_unit_test(
	                test_schema_gate_is_held_by_a_member_without_a_row),
	        cmocka_unit_test(
	                test_schema_gate_opens_at_exactly_the_supported_version),
	        cmocka_unit_test(
	                test_schema_gate_ignores_rows_of_former_members),
	        cmocka_unit_test(
	                test_schema_gate_lists_holders_in_member_order_up_to_max),
	        cmocka_unit_test(test_schema_gate_handles_ids_above_int64_max),
	        cmocka_unit_test(
	                test_schema_gate_with_no_members_holds_nothing),
	        cmocka_unit_test(test_schema_ids_format_lists_ids_with_commas),
	        cmocka_unit_test(test_schema_ids_format_announces_ids_left_out),
	        cmocka_unit_test(
	                test_schema_ids_format_cuts_with_dots_when_short),
	        cmocka_unit_test(
	                test_schema_migrations_apply_in_order_on_sqlite),
	        cmocka_unit_test(
	                test_schema_migrations_declare_no_type_dqlite_retypes),
	        cmocka_unit_test(
	                test_schema_migration_1_creates_the_single_cluster_row),
	        cmocka_unit_test(
	                test_schema_revision_bump_moves_the_cluster_row_by_one),
	        cmocka_unit_test(test_schema_constraints_refuse_bad_rows),
	        cmocka_unit_test(test_schema_constraints_accept_good_rows),
	};

	return cmocka_run_group_tests_name("consensus/schema", tests, NULL,
	                                   NULL);
}
