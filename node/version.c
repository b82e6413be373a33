/* The versions of every library the agent links, for `cairnd --version`. */
#define H2O_USE_LIBUV 1
#include <h2o/version.h>
#include <jansson.h>
#include <uv.h>

#include "consensus/consensus.h"
#include "ct/ct.h"
#include "node/node.h"
#include "proto/proto.h"
#include "rpc/rpc.h"
#include "store/store.h"

int node_versions(struct buf *out)
{
	char ceph[128];

	store_ceph_library_versions(ceph, sizeof ceph);
	return buf_printf(out,
	                  "libuv %s\ndqlite %s\nsqlite %s\n%s\nprotobuf-c %s\n"
	                  "jansson %s\nh2o %s\nlxc %s\n%s\n",
	                  uv_version_string(), consensus_dqlite_version(),
	                  consensus_sqlite_version(), rpc_tls_library_version(),
	                  proto_library_version(), jansson_version_str(),
	                  H2O_VERSION, ct_lxc_library_version(), ceph);
}
