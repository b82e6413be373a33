/* node/multipart: multipart/form-data bodies (RFC 7578), as Proxmox's
 * upload takes them; pure, bounded, private to node/. */
#ifndef CAIRN_NODE_MULTIPART_H
#define CAIRN_NODE_MULTIPART_H

#include <stddef.h>

#include "lib/lib.h"

#define MULTIPART_PARTS_MAX    16
#define MULTIPART_NAME_MAX     64
#define MULTIPART_BOUNDARY_MAX 70 /* RFC 2046 */

struct multipart_part {
	char name[MULTIPART_NAME_MAX + 1];
	char filename[256]; /* "" when the part is no file */
	const char *data;   /* into the body */
	size_t len;
};

/* Reads the boundary from a Content-Type header value
 * ("multipart/form-data; boundary=XYZ", quoted or not). -EINVAL when it is
 * not multipart/form-data or has no valid boundary. */
int multipart_boundary(const char *content_type, size_t len,
                       char out[MULTIPART_BOUNDARY_MAX + 1], struct err *e);

/* Splits body into parts (borrowed pointers). -EINVAL when malformed (no
 * closing delimiter, a part without Content-Disposition form-data and a
 * name, a name or filename too long, more than MULTIPART_PARTS_MAX). */
int multipart_parse(const char *body, size_t len, const char *boundary,
                    struct multipart_part *parts, size_t *nparts,
                    struct err *e);

#endif /* CAIRN_NODE_MULTIPART_H */
