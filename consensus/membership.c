/* Membership policy: join as spare then promote once reachable, keep three
 * voters, remove safely. Nothing here runs because a node went offline. */
#include <errno.h>
#include <string.h>

#include "consensus/consensus.h"

#define MEMBERS_MAX       64
#define PROBE_TIMEOUT_MS  1000
#define REACHABLE_WAIT_MS 10000
#define TRANSFER_TRIES    5
#define TRANSFER_RETRY_MS 300

static unsigned count_role(const struct db_member *m, unsigned n,
                           enum wire_role role)
{
	unsigned i, count = 0;

	for (i = 0; i < n; i++)
		count += m[i].role == role;
	return count;
}

static const struct db_member *find(const struct db_member *m, unsigned n,
                                    uint64_t id)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (m[i].id == id)
			return &m[i];
	}
	return NULL;
}

static int wait_reachable(struct db_client *c, const char *address,
                          struct err *e)
{
	uint64_t deadline = clock_mono_ms(clock_real()) + REACHABLE_WAIT_MS;
	int rv;

	for (;;) {
		rv = db_probe(c, address, PROBE_TIMEOUT_MS, e);
		if (rv == 0 || clock_mono_ms(clock_real()) >= deadline)
			return rv;
		uv_sleep(100);
	}
}

int db_membership_join(struct db_client *c, uint64_t id, const char *address,
                       struct err *e)
{
	struct db_member members[MEMBERS_MAX];
	enum wire_role role;
	unsigned i, n;
	int rv;

	rv = db_cluster(c, members, MEMBERS_MAX, &n, e);
	if (rv != 0)
		return err_wrap(e, "join node %llu", (unsigned long long)id);
	for (i = 0; i < n; i++) {
		if (members[i].id == id)
			return err_set(e, -EEXIST,
			               "join: node id %llu is "
			               "already a member (at %s)",
			               (unsigned long long)id,
			               members[i].address);
		if (strcmp(members[i].address, address) == 0)
			return err_set(e, -EEXIST,
			               "join: address %s already "
			               "belongs to node %llu",
			               address,
			               (unsigned long long)members[i].id);
	}
	rv = db_add(c, id, address, e);
	if (rv != 0)
		return err_wrap(e, "join node %llu at %s",
		                (unsigned long long)id, address);
	/* ASSIGN of an unreachable node blocks every configuration change
	 * for 50 s (notes/dqlite.md trap 8): promote only once it answers. */
	rv = wait_reachable(c, address, e);
	if (rv != 0)
		return err_wrap(e,
		                "join: node %llu was added as a spare but "
		                "is not reachable at %s, so it was not "
		                "promoted",
		                (unsigned long long)id, address);
	role = count_role(members, n, WIRE_ROLE_VOTER) < DB_TARGET_VOTERS
	               ? WIRE_ROLE_VOTER
	               : WIRE_ROLE_STANDBY;
	rv = db_assign(c, id, role, e);
	if (rv != 0)
		return err_wrap(e, "join: promote node %llu",
		                (unsigned long long)id);
	LOG_INFO("db", "node joined", "id=%llu address=%s role=%s",
	         (unsigned long long)id, address,
	         role == WIRE_ROLE_VOTER ? "voter" : "standby");
	return 0;
}

/* A reachable standby (preferred) or spare to take a leaving voter's
 * place; NULL when none. */
static const struct db_member *replacement(struct db_client *c,
                                           const struct db_member *m,
                                           unsigned n, uint64_t leaving)
{
	enum wire_role order[] = {WIRE_ROLE_STANDBY, WIRE_ROLE_SPARE};
	struct err ignored;
	unsigned r, i;

	for (r = 0; r < CAIRN_ARRAY_SIZE(order); r++) {
		for (i = 0; i < n; i++) {
			if (m[i].id != leaving && m[i].role == order[r] &&
			    db_probe(c, m[i].address, PROBE_TIMEOUT_MS,
			             &ignored) == 0)
				return &m[i];
		}
	}
	return NULL;
}

int db_membership_remove(struct db_client *c, uint64_t id, struct err *e)
{
	struct db_member members[MEMBERS_MAX];
	const struct db_member *target, *spare;
	char leader_address[128];
	uint64_t leader_id;
	unsigned i, n, voters;
	int rv;

	rv = db_cluster(c, members, MEMBERS_MAX, &n, e);
	if (rv != 0)
		return err_wrap(e, "remove node %llu", (unsigned long long)id);
	target = find(members, n, id);
	if (target == NULL)
		return err_set(e, -ENOENT, "remove: node %llu is not a member",
		               (unsigned long long)id);
	voters = count_role(members, n, WIRE_ROLE_VOTER);
	if (target->role == WIRE_ROLE_VOTER && voters == 1)
		return err_set(e, -EPERM,
		               "remove: node %llu is the last voter; "
		               "removing it would leave no quorum",
		               (unsigned long long)id);

	rv = db_leader(c, &leader_id, leader_address, sizeof leader_address, e);
	if (rv != 0)
		return err_wrap(e, "remove node %llu", (unsigned long long)id);
	if (leader_id == id) {
		uint64_t to = 0;

		for (i = 0; i < n && to == 0; i++) {
			if (members[i].id != id &&
			    members[i].role == WIRE_ROLE_VOTER)
				to = members[i].id;
		}
		/* A transfer fails when the target is not caught up yet or
		 * an election is under way: give it a few tries. */
		for (i = 0; i < TRANSFER_TRIES; i++) {
			rv = db_transfer(c, to, e);
			if (rv == 0)
				break;
			uv_sleep(TRANSFER_RETRY_MS);
			/* It may have moved all the same. */
			if (db_leader(c, &leader_id, leader_address,
			              sizeof leader_address, e) == 0 &&
			    leader_id != 0 && leader_id != id) {
				rv = 0;
				break;
			}
		}
		if (rv != 0)
			return err_wrap(e,
			                "remove: move leadership away from "
			                "node %llu",
			                (unsigned long long)id);
	}
	if (target->role == WIRE_ROLE_VOTER) {
		spare = replacement(c, members, n, id);
		if (spare != NULL) {
			rv = db_assign(c, spare->id, WIRE_ROLE_VOTER, e);
			if (rv != 0)
				return err_wrap(e,
				                "remove: promote node %llu "
				                "in place of %llu",
				                (unsigned long long)spare->id,
				                (unsigned long long)id);
		}
	}
	/* A leadership change can cut the request short with its outcome
	 * unknown: look whether the node is gone, else ask again. */
	for (i = 0; i < TRANSFER_TRIES; i++) {
		rv = db_remove(c, id, e);
		if (rv == 0 || (rv != -ECONNABORTED && rv != -ENOTCONN &&
		                rv != -EHOSTDOWN && rv != -ETIMEDOUT))
			break;
		uv_sleep(TRANSFER_RETRY_MS);
		{
			struct err ignored;

			if (db_cluster(c, members, MEMBERS_MAX, &n, &ignored) ==
			            0 &&
			    find(members, n, id) == NULL) {
				rv = 0;
				break;
			}
		}
	}
	if (rv != 0)
		return err_wrap(e, "remove node %llu", (unsigned long long)id);
	LOG_INFO("db", "node removed", "id=%llu", (unsigned long long)id);
	return 0;
}
