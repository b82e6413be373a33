/* Version facts owned by proto/: the API level answer and protobuf-c's version.
 */
#include <protobuf-c/protobuf-c.h>

#include "lib/lib.h"
#include "proto/proto.h"

void proto_version_response_fill(Cairn__VersionResponse *r)
{
	cairn__version_response__init(r);
	r->version = (char *)PROTO_PVE_API_LEVEL;
	r->release = (char *)PROTO_PVE_API_LEVEL;
	r->repoid = (char *)cairn_repoid();
	r->cairn = (char *)cairn_version();
}

const char *proto_library_version(void)
{
	return protobuf_c_version();
}
