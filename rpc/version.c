/* Reports the TLS library rpc/ is built on. */
#include <openssl/crypto.h>

#include "rpc/rpc.h"

const char *rpc_tls_library_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
