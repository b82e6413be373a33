/* store/volid: Proxmox's storage ids, content types, volume ids and sizes,
 * parsed and formatted; pure (no I/O), so every other part of store/ can
 * trust a parsed volume id to name a file inside its storage and nothing
 * else. */
#ifndef CAIRN_STORE_VOLID_H
#define CAIRN_STORE_VOLID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lib.h"

#define STORE_ID_MAX    64   /* a storage id */
#define STORE_VOLID_MAX 1024 /* a whole "STORAGE:NAME", without its NUL */
#define STORE_FILE_MAX  255  /* one file or image name */
#define STORE_VMID_MIN  100
#define STORE_VMID_MAX  999999999u
#define STORE_DISK_NONE UINT32_MAX /* images that are not vm-VMID-disk-N */
#define STORE_SNAP_MAX  40         /* a snapshot name */

/* Storage ids as Proxmox's parse_storage_id: ^[a-z][a-z0-9\-_.]*[a-z0-9]$,
 * case-insensitive as in Proxmox (its regex has /i), 2..64 characters.
 * -EINVAL naming the problem. */
int store_id_check(const char *id, struct err *e);

/* Content types, each one bit, so that a set of them is a mask. */
enum store_content {
	STORE_CT_IMAGES = 1u << 0,
	STORE_CT_ROOTDIR = 1u << 1,
	STORE_CT_ISO = 1u << 2,
	STORE_CT_VZTMPL = 1u << 3,
	STORE_CT_BACKUP = 1u << 4,
	STORE_CT_SNIPPETS = 1u << 5,
	STORE_CT_IMPORT = 1u << 6,
};
#define STORE_CT_ALL 0x7fu

/* "images", "rootdir", ...; "" for anything but a single known bit. */
const char *store_content_name(enum store_content content);
/* "images,rootdir": names separated by commas, semicolons or spaces, any
 * order, repeats allowed; "" and "none" give 0. An unknown name fails with
 * -EINVAL naming it; *mask is left alone on failure. */
int store_content_parse(const char *list, unsigned *mask, struct err *e);
/* The names of the set bits, comma-separated, sorted as Proxmox's API
 * shows them (backup,images,import,iso,rootdir,snippets,vztmpl); "" for 0.
 * Truncated (still NUL-terminated) if size is too small; 64 always fits. */
void store_content_format(unsigned mask, char *out, size_t size);

/* A parsed volume id.
 *
 * Forms (STORAGE is a storage id, VMID 100..999999999 without leading
 * zeros, N a disk number):
 *   dir images   STORAGE:VMID/vm-VMID-disk-N.{raw,qcow2}
 *                STORAGE:VMID/base-VMID-disk-N.{raw,qcow2}   (template)
 *                STORAGE:VMID/vm-VMID-cloudinit.{raw,qcow2}
 *                STORAGE:VMID/vm-VMID-state-SNAP.{raw,qcow2}
 *                STORAGE:BVMID/base-BVMID-....EXT/VMID/vm-VMID-....qcow2
 *                    (a linked clone: Proxmox names its base in the id)
 *   rbd images   STORAGE:vm-VMID-disk-N, base-VMID-disk-N, vm-VMID-cloudinit,
 *                vm-VMID-state-SNAP; STORAGE:base-BVMID-.../vm-VMID-...
 *   iso          STORAGE:iso/NAME.{iso,img}            (any case)
 *   vztmpl       STORAGE:vztmpl/NAME.tar[.{gz,xz,zst,bz2}]
 *   backup       STORAGE:backup/NAME.{tgz,tar,vma}[.{gz,lzo,zst,bz2}]
 *                (vzdump-{qemu,lxc,openvz}-VMID-... carry their VMID)
 *   snippets     STORAGE:snippets/NAME
 *   import       STORAGE:import/NAME.{qcow2,raw,vmdk,ova,ovf}
 * The VMID of an image's directory must equal the one in its file name.
 *
 * Names are printable ASCII without whitespace and without any of
 * / , : = \ (a volume id is embedded in Proxmox property strings), do not
 * start with '.', contain no "..", are 1..255 bytes; the whole id is at
 * most STORE_VOLID_MAX bytes. */
struct store_volid {
	char storage[STORE_ID_MAX + 1];
	/* Proxmox's volname: everything after "STORAGE:". */
	char name[STORE_VOLID_MAX + 1];
	/* STORE_CT_IMAGES for every disk image: whether it is a container's
	 * rootdir is known only to whoever knows the guest's type. */
	enum store_content content;
	uint32_t vmid; /* owner; 0 for iso, vztmpl, snippets, import and
	                  backups not named vzdump-TYPE-VMID-... */
	bool is_base;  /* a template's image: base-VMID-... */
	uint32_t disk; /* N of ...-disk-N, else STORE_DISK_NONE */
	/* images: "raw", "qcow2" (rbd: "raw"); iso: "iso"; vztmpl: "tar",
	 * "tgz", "txz", "tzst", "tbz2"; backup: the extension ("vma.zst",
	 * "tgz"); snippets: "snippet"; import: the extension. As Proxmox's
	 * content listing shows them. */
	char format[8];
	/* The file (rbd: image) name: "vm-100-disk-0.qcow2", "x.iso". */
	char file[STORE_FILE_MAX + 1];
	/* Linked clones: the base image's owner and file; 0 and "" else. */
	uint32_t base_vmid;
	char base_file[STORE_FILE_MAX + 1];
};

/* Parses text as a volume id of a dir (is_rbd false) or rbd storage into
 * *out. -EINVAL with a message that names what is wrong; *out is
 * unspecified on failure. */
int store_volid_parse(const char *text, bool is_rbd, struct store_volid *out,
                      struct err *e);
/* The same for len bytes that need not be NUL-terminated (from a URL or a
 * form field): an embedded NUL is refused. */
int store_volid_parse_n(const char *text, size_t len, bool is_rbd,
                        struct store_volid *out, struct err *e);
/* Writes "STORAGE:NAME" from v's storage, content, vmid (images), file and
 * base_vmid/base_file; the other fields are derived from the file name and
 * not read. The result is parsed again, so a struct that would not
 * round-trip (vmid unlike the file's, a hostile name) fails with -EINVAL;
 * -ENOSPC when out is too small. */
int store_volid_format(const struct store_volid *v, bool is_rbd, char *out,
                       size_t size);

/* Snapshot names: [A-Za-z][A-Za-z0-9_-]{0,39}. -EINVAL naming the problem. */
int store_snap_name_check(const char *name, struct err *e);

/* Proxmox sizes: digits with an optional fraction ("1.5G") and an optional
 * unit K, M, G or T (also KiB, MiB, GiB, TiB); without a unit the number
 * counts default_unit bytes (1 for disk specs such as size=32G, 1024 for
 * POST .../content's size, which is in KiB). Fractions of a byte are
 * dropped, as Proxmox's int() does. 0 fails with -EINVAL "size 0", more
 * than INT64_MAX bytes with -ERANGE, anything malformed with -EINVAL. */
int store_size_parse(const char *text, uint64_t default_unit, uint64_t *bytes,
                     struct err *e);
/* Proxmox's format_size: the largest unit that divides exactly, "32G",
 * "4985424K", "1000" (bytes). 24 bytes always fit. */
void store_size_format(uint64_t bytes, char *out, size_t size);

#endif /* CAIRN_STORE_VOLID_H */
