/* cairn's version and the commit it was built from, set by configure. */
#include "lib.h"

const char *cairn_version(void)
{
	return PACKAGE_VERSION;
}

const char *cairn_repoid(void)
{
	return CAIRN_REPOID;
}
