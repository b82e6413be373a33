/* Reports the versions of the Ceph client libraries store/ owns. */
#include <stdio.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "store/store.h"

void store_ceph_library_versions(char *out, size_t size)
{
	int rados_major, rados_minor, rados_extra;
	int rbd_major, rbd_minor, rbd_extra;

	rados_version(&rados_major, &rados_minor, &rados_extra);
	rbd_version(&rbd_major, &rbd_minor, &rbd_extra);
	snprintf(out, size, "librados %d.%d.%d, librbd %d.%d.%d", rados_major,
	         rados_minor, rados_extra, rbd_major, rbd_minor, rbd_extra);
}
