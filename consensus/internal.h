/* consensus/internal: the pure pieces of the schema code (no I/O), shared
 * between consensus/'s files and their unit tests; nothing outside
 * consensus/ and tests/unit/consensus/ includes this. */
#ifndef CAIRN_CONSENSUS_INTERNAL_H
#define CAIRN_CONSENSUS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "consensus/consensus.h"

/* One row of schema_support: the highest migration a node's cairnd knows. */
struct db__schema_support {
	uint64_t node_id;
	unsigned max_version;
};

/* Checks that a migration list can be applied in order: versions are 1, 2,
 * ... n without gaps, each with a name and SQL. An empty list is valid (the
 * node supports version 0). -EINVAL names the first bad entry. */
int db__schema_list_check(const struct db_migration *migrations, unsigned n,
                          struct err *e);

/* The highest version in a checked list, 0 for an empty one. */
unsigned db__schema_list_newest(const struct db_migration *migrations,
                                unsigned n);

/* Refuses to run against a cluster schema newer than this node knows:
 * -EPROTONOSUPPORT with a message naming both versions. */
int db__schema_check_current(unsigned current, unsigned newest, struct err *e);

/* The gate of migration `version`: which of the members hold it back. A
 * member holds it back when it has no schema_support row (it has not said
 * what it knows) or its row's max_version is below `version`. The first
 * `max` holders, in member order, are written to held (may be NULL when
 * max is 0); the return value is the number of holders, which may exceed
 * max. With no members nothing holds a migration back: callers must not
 * take an empty member list for consent. */
unsigned db__schema_holders(const uint64_t *member_ids, unsigned nmembers,
                            const struct db__schema_support *support,
                            unsigned nsupport, unsigned version, uint64_t *held,
                            unsigned max);

/* Writes ids as "2, 3, 7" into out (size > 0, always NUL-terminated); when
 * they do not all fit, ends with "..." after the last id that fits whole.
 * total (>= n) is how many there were in all: ids beyond n are announced
 * with " and N more". */
void db__schema_ids_format(const uint64_t *ids, unsigned n, unsigned total,
                           char *out, size_t size);

#endif /* CAIRN_CONSENSUS_INTERNAL_H */
