/* consensus: the embedded dqlite node, the client of dqlite's wire protocol,
 * the schema and its migrations, membership and leases. dqlite is used only
 * from here. */
#ifndef CAIRN_CONSENSUS_H
#define CAIRN_CONSENSUS_H

/* dqlite's and SQLite's versions, for `--version` output. dqlite's comes
 * from pkg-config at build time: dqlite_version_number() says 1.10.0 for
 * 1.11.1. */
const char *consensus_dqlite_version(void);
const char *consensus_sqlite_version(void);

#endif /* CAIRN_CONSENSUS_H */
