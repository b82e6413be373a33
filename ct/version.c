/* Reports the liblxc version ct/ is built on. */
#include <lxc/lxccontainer.h>

#include "ct/ct.h"

const char *ct_lxc_library_version(void)
{
	return lxc_get_version();
}
