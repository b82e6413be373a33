/* Reports the versions of the database libraries consensus/ owns. */
#include <sqlite3.h>

#include "consensus/consensus.h"

const char *consensus_dqlite_version(void)
{
	return CAIRN_DQLITE_VERSION;
}

const char *consensus_sqlite_version(void)
{
	return sqlite3_libversion();
}
