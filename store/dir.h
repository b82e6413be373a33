/* store/dir: the dir backend — volumes as files under a root directory laid
 * out as Proxmox's dir plugin lays it out, raw and qcow2 images through
 * qemu-img. Synchronous and blocking: callers run it on cairn's storage
 * thread pool, never on the loop.
 *
 * Layout under root:
 *   images/VMID/      disk images (content images and rootdir)
 *   template/iso/     iso
 *   template/cache/   vztmpl
 *   dump/             backup
 *   snippets/         snippets
 *   import/           import
 *
 * Every function that takes a volume id parses it first (store/volid.h) and
 * refuses anything that is not a well-formed dir volume id, so no path ever
 * leaves root. The root itself is configuration, trusted but checked: an
 * absolute path without control characters or "..".
 *
 * Concurrent operations on one volume are the caller's to serialise (as
 * Proxmox takes its storage lock); allocations of new names are safe
 * against each other: a name is taken with O_EXCL before qemu-img runs. */
#ifndef CAIRN_STORE_DIR_H
#define CAIRN_STORE_DIR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/lib.h"
#include "store/volid.h"

/* Creates the content subdirectories (0755) that are missing. -ENOENT when
 * root itself does not exist (an unmounted share must not be filled). */
int store_dir_activate(const char *root, struct err *e);

/* The file system's size, used (as df counts it) and available bytes. */
int store_dir_status(const char *root, uint64_t *total, uint64_t *used,
                     uint64_t *avail, struct err *e);

/* The file path of volume v (from store_volid_parse with is_rbd false; the
 * struct is checked again, so a hand-made one cannot escape root). */
int store_dir_path(const char *root, const struct store_volid *v, char *out,
                   size_t size, struct err *e);

/* Creates an image of format "raw" or "qcow2" of bytes (rounded up to a
 * whole KiB, as Proxmox sizes are in KiB) for vmid, named name
 * ("vm-VMID-disk-N.FMT" or another vm- image name with the format's
 * extension) or, with name NULL, the first free vm-VMID-disk-N.FMT (N is
 * free when no image of that VMID, of any format, uses it). images/VMID/ is
 * created when missing. raw is sparse (ftruncate); qcow2 is made by
 * `qemu-img create` with metadata preallocation, as Proxmox does. Writes
 * "STORAGE:VMID/NAME" into volid. An existing file is never overwritten:
 * -EEXIST. bytes 0: -EINVAL "size 0". */
int store_dir_alloc(const char *root, const char *storage, uint32_t vmid,
                    const char *format, uint64_t bytes, const char *name,
                    char *volid, size_t volid_size, struct err *e);

/* Deletes a volume's file (any content type); an image's VMID directory
 * goes too when that leaves it empty. -ENOENT when missing. A template's
 * (base-) image that a linked clone on this storage still uses is refused
 * with -EBUSY naming the clone. */
int store_dir_free(const char *root, const char *volid, struct err *e);

/* Grows an image to new_bytes (rounded up to a whole KiB) with `qemu-img
 * resize`. The same size is a no-op; a smaller one fails with -EINVAL
 * naming both sizes; templates (base-) are refused with -EINVAL. */
int store_dir_resize(const char *root, const char *volid, uint64_t new_bytes,
                     struct err *e);

/* An image's virtual size and format from `qemu-img info --output=json`
 * (told the format its volume id names, so that a guest-written raw image
 * is never probed as something else); other volumes' file size and
 * format as their volume id names it ("iso", "tzst"...). */
int store_dir_info(const char *root, const char *volid, uint64_t *size,
                   char *format, size_t fsize, struct err *e);

/* The volumes of content types in content_mask, as Proxmox's
 * GET /nodes/{node}/storage/{storage}/content rows, sorted by volume id
 * without regard to case: a new array in *rows (json_decref it).
 *
 * Every row has volid, format, size, ctime and content; images also have
 * vmid, used (allocated bytes) and, for linked clones, parent
 * ("../BASEVMID/BASEFILE"); backups have vmid when their name carries one
 * and subtype ("qemu", "lxc"). size is the virtual size of images (read
 * from the qcow2 header, not qemu-img: a listing does not run a program per
 * file) and the file size of anything else. A .qcow2 file that is not
 * qcow2 shows format "invalid" and its file size, as in Proxmox.
 *
 * vmid (0: all) keeps only that guest's images and backups and, as in
 * Proxmox, leaves out iso and vztmpl. Images are labelled "images" when
 * content_mask has STORE_CT_IMAGES, else "rootdir": which guest is a
 * container is known only to the caller, who relabels. Files whose names
 * are not volume ids are skipped. */
int store_dir_list(const char *root, const char *storage, unsigned content_mask,
                   uint32_t vmid, json_t **rows, struct err *e);

/* qcow2 internal snapshots through `qemu-img snapshot`. raw images fail with
 * -ENOTSUP "snapshots need qcow2"; names are checked with
 * store_snap_name_check; templates are refused (-EINVAL) except for
 * listing. Create fails with -EEXIST on a name in use (qemu-img would
 * happily make two), rollback and delete with -ENOENT on an unknown one.
 * These work on images no running QEMU has open; a running guest's
 * snapshots go through QMP. */
int store_dir_snapshot(const char *root, const char *volid, const char *name,
                       struct err *e);
int store_dir_snapshot_rollback(const char *root, const char *volid,
                                const char *name, struct err *e);
int store_dir_snapshot_delete(const char *root, const char *volid,
                              const char *name, struct err *e);
/* A new array of the snapshot names, oldest first. */
int store_dir_snapshot_list(const char *root, const char *volid, json_t **names,
                            struct err *e);

/* Turns image volid (on storage `storage`) into a template's: renames
 * vm-VMID-... to base-VMID-... (never over an existing file: -EEXIST) and
 * makes it read-only (0444). Writes the new volume id into out_volid.
 * -EINVAL when volid is not an image of that storage or already a base. */
int store_dir_template(const char *root, const char *storage, const char *volid,
                       char *out_volid, size_t size, struct err *e);

/* Clones image base_volid (on storage `storage`) for new_vmid as the first
 * free vm-NEWVMID-disk-N. linked: only from a template (base-) image; a new
 * qcow2 whose backing file is the relative "../BASEVMID/BASEFILE" with its
 * format given (-F), as Proxmox makes them; the new volume id names its
 * base: "STORAGE:BASEVMID/BASEFILE/NEWVMID/vm-NEWVMID-disk-N.qcow2". Full:
 * from any image, a copy in the same format by `qemu-img convert` (no time
 * limit: large images take long; it stops with -ECANCELED once *cancel,
 * which may be NULL, is true). */
int store_dir_clone(const char *root, const char *storage,
                    const char *base_volid, uint32_t new_vmid, bool linked,
                    const atomic_bool *cancel, char *out_volid, size_t size,
                    struct err *e);

#endif /* CAIRN_STORE_DIR_H */
